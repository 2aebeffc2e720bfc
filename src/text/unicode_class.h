// unicode_class: the Unicode character classes that GPT-2's pre-tokenization
// regex needs (\p{L}, \p{N}, \s) and a strict UTF-8 decoder.
//
// iswalpha/iswdigit depend on the C library and the locale, so the letter
// and number classes come from a table of code point ranges generated once
// from Python's unicodedata (the generator is in unicode_class.c).
#ifndef LS_TEXT_UNICODE_CLASS_H
#define LS_TEXT_UNICODE_CLASS_H

#include <stddef.h>
#include <stdint.h>

// Returned by uc_decode for a byte that does not start a valid UTF-8 sequence.
#define UC_INVALID 0xFFFFFFFFu

// 1 if cp is in general category L (Lu, Ll, Lt, Lm, Lo).
int uc_is_letter(uint32_t cp);
// 1 if cp is in general category N (Nd, Nl, No).
int uc_is_number(uint32_t cp);
// 1 if cp matches \s of an ECMAScript regex (the GPT-2 reference encoder is
// JavaScript): \t \n \v \f \r, space, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF.
int uc_is_space(uint32_t cp);

// 1 if cp lies in one of the n sorted, disjoint, inclusive ranges r[i][0]..r[i][1].
int uc_in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp);

// Decodes the UTF-8 character at s[0..n) (n >= 1). Returns its byte length
// (1..4) with the code point in *cp; an invalid or truncated sequence, an
// overlong form, a surrogate or a value above U+10FFFF gives length 1 and
// *cp = UC_INVALID (the byte then stands for itself).
int uc_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
