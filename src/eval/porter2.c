// The Snowball English (Porter2) stemmer, written from the algorithm's
// published definition (porter2.h).
#include "eval/porter2.h"

#include <string.h>

// ----------------------------------------------------------------------------
// the word being stemmed: letters w[0 .. n), regions R1 = [p1, n), R2 = [p2, n)

typedef struct {
    char w[PORTER2_MAX_WORD + 4];
    int n, p1, p2;
} stem_word;

static int is_vowel(char c) {
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

static int ends_with(const stem_word *s, const char *suf) {
    int k = (int)strlen(suf);
    return k <= s->n && memcmp(s->w + s->n - k, suf, (size_t)k) == 0;
}

// The longest of the NULL-terminated suffixes the word ends with (its index), or -1.
static int longest_suffix(const stem_word *s, const char *const *sufs) {
    int best = -1, best_len = 0;
    for (int i = 0; sufs[i]; i++) {
        int k = (int)strlen(sufs[i]);
        if (k > best_len && ends_with(s, sufs[i])) best = i, best_len = k;
    }
    return best;
}

// Replaces the last k letters with rep.
static void replace_tail(stem_word *s, int k, const char *rep) {
    int r = (int)strlen(rep);
    memcpy(s->w + s->n - k, rep, (size_t)r);
    s->n += r - k;
    s->w[s->n] = 0;
}

// A short syllable ends at position end (exclusive): non-vowel, vowel,
// non-vowel other than w, x, Y; or a vowel at the word's start then a non-vowel.
static int short_syllable_at(const stem_word *s, int end) {
    if (end >= 3 && !is_vowel(s->w[end - 3]) && is_vowel(s->w[end - 2]) && !is_vowel(s->w[end - 1]) &&
        s->w[end - 1] != 'w' && s->w[end - 1] != 'x' && s->w[end - 1] != 'Y')
        return 1;
    return end == 2 && is_vowel(s->w[0]) && !is_vowel(s->w[1]);
}

static int has_vowel(const stem_word *s, int from, int to) {
    for (int i = from; i < to; i++)
        if (is_vowel(s->w[i])) return 1;
    return 0;
}

// The region after the first non-vowel that follows a vowel, searched from start.
static int region_after(const stem_word *s, int start) {
    for (int i = start; i + 1 < s->n; i++)
        if (is_vowel(s->w[i]) && !is_vowel(s->w[i + 1])) return i + 2;
    return s->n;
}

// ----------------------------------------------------------------------------
// prelude, regions, postlude

static void prelude(stem_word *s) {
    if (s->w[0] == '\'') {
        memmove(s->w, s->w + 1, (size_t)s->n);
        s->n--;
    }
    if (s->w[0] == 'y') s->w[0] = 'Y';
    for (int i = 1; i < s->n; i++)
        if (s->w[i] == 'y' && is_vowel(s->w[i - 1])) s->w[i] = 'Y';
}

static void mark_regions(stem_word *s) {
    static const char *const prefixes[] = {"gener", "commun", "arsen"};
    s->p1 = -1;
    for (int i = 0; i < 3; i++) {
        int k = (int)strlen(prefixes[i]);
        if (s->n >= k && !memcmp(s->w, prefixes[i], (size_t)k)) s->p1 = k;
    }
    if (s->p1 < 0) s->p1 = region_after(s, 0);
    s->p2 = region_after(s, s->p1);
}

// ----------------------------------------------------------------------------
// steps 0-1c

static void step_1a(stem_word *s) {
    static const char *const step0[] = {"'", "'s", "'s'", NULL};
    int k = longest_suffix(s, step0);
    if (k >= 0) replace_tail(s, (int)strlen(step0[k]), "");
    static const char *const sufs[] = {"sses", "ied", "ies", "s", "us", "ss", NULL};
    switch (longest_suffix(s, sufs)) {
    case 0: replace_tail(s, 4, "ss"); break;
    case 1:
    case 2: replace_tail(s, 3, s->n > 4 ? "i" : "ie"); break;
    case 3: // delete if a vowel occurs before the letter just before the s
        if (has_vowel(s, 0, s->n - 2)) replace_tail(s, 1, "");
        break;
    default: break;
    }
}

static void step_1b(stem_word *s) {
    static const char *const sufs[] = {"eed", "eedly", "ed", "edly", "ing", "ingly", NULL};
    int k = longest_suffix(s, sufs);
    if (k < 0) return;
    int len = (int)strlen(sufs[k]);
    if (k <= 1) {
        if (s->n - len >= s->p1) replace_tail(s, len, "ee");
        return;
    }
    if (!has_vowel(s, 0, s->n - len)) return;
    replace_tail(s, len, "");
    static const char *const after[] = {"at", "bl", "iz", "bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt", NULL};
    int a = longest_suffix(s, after);
    if (a >= 0 && a <= 2)
        replace_tail(s, 0, "e");
    else if (a > 2)
        replace_tail(s, 1, "");
    else if (s->n == s->p1 && short_syllable_at(s, s->n)) // a short word
        replace_tail(s, 0, "e");
}

static void step_1c(stem_word *s) {
    if (s->n >= 3 && (s->w[s->n - 1] == 'y' || s->w[s->n - 1] == 'Y') && !is_vowel(s->w[s->n - 2]))
        s->w[s->n - 1] = 'i';
}

// ----------------------------------------------------------------------------
// steps 2-5: suffixes inside R1 / R2

static void step_2(stem_word *s) {
    static const char *const sufs[] = {"tional", "enci", "anci", "abli", "entli", "izer", "ization",
                                       "ational", "ation", "ator", "alism", "aliti", "alli", "fulness",
                                       "ousli", "ousness", "iveness", "iviti", "biliti", "bli", "ogi",
                                       "fulli", "lessli", "li", NULL};
    static const char *const reps[] = {"tion", "ence", "ance", "able", "ent", "ize", "ize", "ate", "ate",
                                       "ate", "al", "al", "al", "ful", "ous", "ous", "ive", "ive", "ble",
                                       "ble", "og", "ful", "less", ""};
    int k = longest_suffix(s, sufs);
    if (k < 0) return;
    int len = (int)strlen(sufs[k]);
    if (s->n - len < s->p1) return;
    if (!strcmp(sufs[k], "ogi") && !(s->n - len > 0 && s->w[s->n - len - 1] == 'l')) return;
    if (!strcmp(sufs[k], "li") && !(s->n - len > 0 && strchr("cdeghkmnrt", s->w[s->n - len - 1]))) return;
    replace_tail(s, len, reps[k]);
}

static void step_3(stem_word *s) {
    static const char *const sufs[] = {"tional", "ational", "alize", "icate", "iciti", "ical", "ful", "ness",
                                       "ative", NULL};
    static const char *const reps[] = {"tion", "ate", "al", "ic", "ic", "ic", "", "", ""};
    int k = longest_suffix(s, sufs);
    if (k < 0) return;
    int len = (int)strlen(sufs[k]);
    if (s->n - len < s->p1) return;
    if (k == 8 && s->n - len < s->p2) return; // ative: in R2
    replace_tail(s, len, reps[k]);
}

static void step_4(stem_word *s) {
    static const char *const sufs[] = {"al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment",
                                       "ent", "ism", "ate", "iti", "ous", "ive", "ize", "ion", NULL};
    int k = longest_suffix(s, sufs);
    if (k < 0) return;
    int len = (int)strlen(sufs[k]);
    if (s->n - len < s->p2) return;
    if (!strcmp(sufs[k], "ion")) {
        char c = s->n - len > 0 ? s->w[s->n - len - 1] : 0;
        if (c != 's' && c != 't') return;
    }
    replace_tail(s, len, "");
}

static void step_5(stem_word *s) {
    if (ends_with(s, "e")) {
        int at = s->n - 1;
        if (at >= s->p2 || (at >= s->p1 && !short_syllable_at(s, at))) replace_tail(s, 1, "");
    } else if (ends_with(s, "l")) {
        int at = s->n - 1;
        if (at >= s->p2 && at > 0 && s->w[at - 1] == 'l') replace_tail(s, 1, "");
    }
}

// ----------------------------------------------------------------------------
// the stemmer

// Whole-word exceptions checked before any step; NULL stem = unchanged.
static const char *exception_1(const char *w) {
    static const char *const pairs[][2] = {
        {"skis", "ski"},     {"skies", "sky"},   {"dying", "die"},   {"lying", "lie"}, {"tying", "tie"},
        {"idly", "idl"},     {"gently", "gentl"}, {"ugly", "ugli"},  {"early", "earli"}, {"only", "onli"},
        {"singly", "singl"}, {"sky", "sky"},     {"news", "news"},   {"howe", "howe"},   {"atlas", "atlas"},
        {"cosmos", "cosmos"}, {"bias", "bias"},  {"andes", "andes"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (!strcmp(w, pairs[i][0])) return pairs[i][1];
    return NULL;
}

// Words left as they are after step 1a.
static int exception_2(const stem_word *s) {
    static const char *const words[] = {"inning", "outing", "canning", "herring", "earring",
                                        "proceed", "exceed", "succeed", NULL};
    for (int i = 0; words[i]; i++)
        if ((int)strlen(words[i]) == s->n && !memcmp(s->w, words[i], (size_t)s->n)) return 1;
    return 0;
}

static void copy_out(const char *src, size_t len, char *out, size_t cap) {
    if (cap == 0) return;
    if (len >= cap) len = cap - 1;
    memcpy(out, src, len);
    out[len] = 0;
}

void porter2_stem(const char *word, char *out, size_t cap) {
    size_t len = strlen(word);
    const char *ex = exception_1(word);
    if (ex || len < 3 || len > PORTER2_MAX_WORD) {
        ex = ex ? ex : word;
        copy_out(ex, strlen(ex), out, cap);
        return;
    }
    stem_word s;
    memcpy(s.w, word, len + 1);
    s.n = (int)len;
    prelude(&s);
    mark_regions(&s);
    step_1a(&s);
    if (!exception_2(&s)) {
        step_1b(&s);
        step_1c(&s);
        step_2(&s);
        step_3(&s);
        step_4(&s);
        step_5(&s);
    }
    for (int i = 0; i < s.n; i++)
        if (s.w[i] == 'Y') s.w[i] = 'y';
    copy_out(s.w, (size_t)s.n, out, cap);
}
