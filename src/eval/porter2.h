// porter2: the Snowball English stemmer ("Porter2", snowballstem.org/
// algorithms/english/stemmer.html), the stemmer Meteor 1.5's stem module uses
// for English (org.tartarus.snowball.ext.englishStemmer).
//
// Letters are ASCII a-z; other bytes count as non-vowels, and a word with
// bytes >= 0x80 is stemmed byte by byte (Snowball works on UTF-16 units, so a
// non-ASCII letter can move R1/R2 by a position: rare in English text).
// Words of one or two characters are returned unchanged.
#ifndef LS_EVAL_PORTER2_H
#define LS_EVAL_PORTER2_H

#include <stddef.h>

#define PORTER2_MAX_WORD 256

// Writes the stem of the lowercase word into out (cap bytes, NUL-terminated;
// cap >= strlen(word) + 2 always suffices). A word longer than
// PORTER2_MAX_WORD bytes is copied unchanged.
void porter2_stem(const char *word, char *out, size_t cap);

#endif
