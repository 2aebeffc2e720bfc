// tok_wordpiece: BERT's WordPiece tokenizer as Hugging Face runs it
// (BertTokenizer / AutoTokenizer in transformers >= 5, i.e. the `tokenizers`
// library's BertNormalizer + BertPreTokenizer + WordPiece model).
//
//   text -> special tokens matched whole on the raw text ([CLS], [SEP], ...)
//        -> normalize each other span, character by character:
//             drop NUL, U+FFFD and control characters; whitespace -> ' ';
//             ' ' around CJK ideographs; strip accents (NFD, drop Mn);
//             lowercase
//        -> split on whitespace (dropped) and punctuation (kept, one
//           character a word)
//        -> WordPiece per word: greedy longest match first, continuations
//           prefixed "##"; a word of more than 100 characters, or one that
//           does not split into vocabulary pieces, is [UNK].
// The per-character tables come from tests/reference/make_wordpiece_tables.py.
#include "text/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "text/unicode_class.h"
#include "text/wordpiece_tables.h"

#define WP_MAX_WORD_CHARS 100      // HF's max_input_chars_per_word
#define WP_MAX_TOKEN_BYTES 1024    // longest vocab.txt line accepted
#define WP_N_SPECIAL 5

enum { SP_UNK, SP_CLS, SP_SEP, SP_PAD, SP_MASK };
static const char *const SPECIAL_KEYS[WP_N_SPECIAL] = {"unk_token", "cls_token", "sep_token", "pad_token",
                                                       "mask_token"};
static const char *const SPECIAL_DEFAULTS[WP_N_SPECIAL] = {"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"};

struct wp_tok {
    int n;
    char **spaced;         // " token\0": spaced[id] + 1 is the token itself
    size_t *lens;          // token length in bytes (without the leading space)
    int *slot;             // hash table: id + 1, 0 = empty
    size_t cap;
    int lowercase, strip_accents, cjk;
    char special[WP_N_SPECIAL][WP_MAX_TOKEN_BYTES + 1];
    int special_id[WP_N_SPECIAL];   // -1: not in the vocabulary (pad, mask may be absent)
};

// ----------------------------------------------------------------------------
// tables

#define IN_TABLE(t, cp) uc_in_ranges(t, sizeof t / sizeof t[0], cp)

// The replacement of cp in a map (bytes into *out, length returned), -1 if cp maps to itself.
static int map_lookup(const wp_map_entry *m, size_t n, const char *pool, uint32_t cp, const char **out) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < m[mid].cp) hi = mid;
        else if (cp > m[mid].cp) lo = mid + 1;
        else {
            *out = pool + m[mid].offset;
            return m[mid].length;
        }
    }
    return -1;
}

// ----------------------------------------------------------------------------
// vocabulary hash table

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;   // FNV-1a, then a 64-bit finalizer
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33;
    return h;
}

static int vocab_find(const wp_tok *w, const char *s, size_t n) {
    size_t i = hash_bytes(s, n) & (w->cap - 1);
    while (w->slot[i]) {
        int id = w->slot[i] - 1;
        if (w->lens[id] == n && memcmp(w->spaced[id] + 1, s, n) == 0) return id;
        i = (i + 1) & (w->cap - 1);
    }
    return -1;
}

// Inserts id; returns the id already holding the same token, or -1.
static int vocab_insert(wp_tok *w, int id) {
    const char *s = w->spaced[id] + 1;
    size_t i = hash_bytes(s, w->lens[id]) & (w->cap - 1);
    while (w->slot[i]) {
        int o = w->slot[i] - 1;
        if (w->lens[o] == w->lens[id] && memcmp(w->spaced[o] + 1, s, w->lens[id]) == 0) return o;
        i = (i + 1) & (w->cap - 1);
    }
    w->slot[i] = id + 1;
    return -1;
}

// ----------------------------------------------------------------------------
// build / free

void wp_free(wp_tok *w) {
    if (!w) return;
    if (w->spaced)
        for (int i = 0; i < w->n; i++) free(w->spaced[i]);
    free(w->spaced);
    free(w->lens);
    free(w->slot);
    free(w);
}

// Length of line[0..len) without trailing whitespace (Rust's trim_end, as
// the tokenizers library reads vocab.txt), or -1 if it is not valid UTF-8.
static long trimmed_length(const char *line, size_t len) {
    size_t i = 0, keep = 0;
    while (i < len) {
        uint32_t cp;
        int k = uc_decode((const unsigned char *)line + i, len - i, &cp);
        if (cp == UC_INVALID) return -1;
        i += (size_t)k;
        if (!IN_TABLE(wp_split_space, cp)) keep = i;
    }
    return (long)keep;
}

// vocab.txt: one token a line, id = line number - 1.
static int load_vocab(wp_tok *w, const char *path) {
    size_t size;
    char *text = ls_read_file_max(path, &size, LS_READ_SMALL_MAX);
    if (!text) return -1;
    if (size == 0) {
        free(text);
        return ls_fail("%s: expected one WordPiece token a line, found an empty file", path);
    }
    size_t lines = 0;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    lines += text[size - 1] != '\n';
    if (lines > (size_t)INT32_MAX / 2) {
        free(text);
        return ls_fail("%s: expected at most %d lines, found %zu", path, INT32_MAX / 2, lines);
    }
    w->spaced = ls_calloc(lines, sizeof(char *));
    w->lens = ls_calloc(lines, sizeof(size_t));
    w->cap = 16;
    while (w->cap < 2 * lines) w->cap *= 2;
    w->slot = ls_calloc(w->cap, sizeof(int));
    int rc = 0;
    size_t pos = 0;
    while (pos < size && rc == 0) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - line) : size - pos;
        pos += len + 1;
        int id = w->n, lineno = id + 1;
        long k = trimmed_length(line, len);
        if (k < 0) {
            rc = ls_fail("%s:%d: expected UTF-8 text, found an invalid byte sequence", path, lineno);
        } else if (k > WP_MAX_TOKEN_BYTES) {
            rc = ls_fail("%s:%d: expected a token of at most %d bytes, found %ld", path, lineno,
                         WP_MAX_TOKEN_BYTES, k);
        } else if (memchr(line, 0, (size_t)k)) {
            rc = ls_fail("%s:%d: expected a token, found a NUL byte", path, lineno);
        } else {
            w->spaced[id] = ls_malloc((size_t)k + 2);
            w->spaced[id][0] = ' ';
            memcpy(w->spaced[id] + 1, line, (size_t)k);
            w->spaced[id][k + 1] = 0;
            w->lens[id] = (size_t)k;
            w->n++;
            int other = vocab_insert(w, id);
            if (other >= 0)
                rc = ls_fail("%s:%d: expected each token once, found \"%.60s\" again (first on line %d)", path,
                             lineno, w->spaced[id] + 1, other + 1);
        }
    }
    free(text);
    return rc;
}

// A special token's text: a string, or an AddedToken object {"content": "..."}.
static const char *special_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

// tokenizer_config.json: do_lower_case (default true), strip_accents (null:
// follow do_lower_case), tokenize_chinese_chars (default true) and the
// special tokens' texts. Other keys are not read.
static int load_config(wp_tok *w, const char *path) {
    size_t size;
    char *text = ls_read_file_max(path, &size, LS_READ_SMALL_MAX);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail("%s: expected a JSON object, found %s", path, root ? "another JSON value" : "invalid JSON");
    }
    int rc = 0;
    const char *bools[3] = {"do_lower_case", "tokenize_chinese_chars", "strip_accents"};
    int *dest[3] = {&w->lowercase, &w->cjk, &w->strip_accents};
    for (int i = 0; i < 3 && rc == 0; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, bools[i]);
        if (!v || (i == 2 && cJSON_IsNull(v))) continue;
        if (!cJSON_IsBool(v))
            rc = ls_fail("%s: key \"%s\": expected true or false%s, found another JSON value", path, bools[i],
                         i == 2 ? " or null" : "");
        else *dest[i] = cJSON_IsTrue(v);
    }
    for (int s = 0; s < WP_N_SPECIAL && rc == 0; s++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, SPECIAL_KEYS[s]);
        if (!v || cJSON_IsNull(v)) continue;
        const char *t = special_text(v);
        if (!t || !t[0] || strlen(t) > WP_MAX_TOKEN_BYTES)
            rc = ls_fail("%s: key \"%s\": expected a token string (or {\"content\": string}) of 1 to %d bytes, "
                         "found %s", path, SPECIAL_KEYS[s], WP_MAX_TOKEN_BYTES, t ? "a string out of range" : "another JSON value");
        else snprintf(w->special[s], sizeof w->special[s], "%s", t);
    }
    cJSON_Delete(root);
    return rc;
}

wp_tok *wp_load(const char *vocab_txt, const char *config_json, int *n_vocab, int special_ids[5]) {
    wp_tok *w = ls_calloc(1, sizeof *w);
    w->lowercase = 1;        // BertTokenizer's defaults
    w->strip_accents = -1;   // -1: follow lowercase
    w->cjk = 1;
    for (int s = 0; s < WP_N_SPECIAL; s++) snprintf(w->special[s], sizeof w->special[s], "%s", SPECIAL_DEFAULTS[s]);
    if (config_json && load_config(w, config_json)) goto fail;
    if (w->strip_accents < 0) w->strip_accents = w->lowercase;
    if (load_vocab(w, vocab_txt)) goto fail;
    for (int s = 0; s < WP_N_SPECIAL; s++) {
        w->special_id[s] = vocab_find(w, w->special[s], strlen(w->special[s]));
        if (w->special_id[s] < 0 && s <= SP_SEP) {
            ls_fail("%s: expected the %s \"%s\"%s%s in the vocabulary, found none", vocab_txt, SPECIAL_KEYS[s],
                    w->special[s], config_json ? " named by " : "", config_json ? config_json : "");
            goto fail;
        }
    }
    *n_vocab = w->n;
    for (int s = 0; s < WP_N_SPECIAL; s++) special_ids[s] = w->special_id[s];
    return w;
fail:
    wp_free(w);
    return NULL;
}

// ----------------------------------------------------------------------------
// normalization (BertNormalizer), one character at a time

static int utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static void put_lowered(const wp_tok *w, ls_buf *b, uint32_t cp) {
    const char *r;
    int k = w->lowercase ? map_lookup(wp_lower, sizeof wp_lower / sizeof wp_lower[0], wp_lower_pool, cp, &r) : -1;
    if (k >= 0) { ls_buf_put(b, r, (size_t)k); return; }
    char u[4];
    ls_buf_put(b, u, (size_t)utf8_encode(cp, u));
}

// Accent stripping (NFD, Mn dropped), then lowercasing of each resulting character.
static void put_stripped(const wp_tok *w, ls_buf *b, uint32_t cp) {
    if (!w->strip_accents) { put_lowered(w, b, cp); return; }
    if (cp >= 0xAC00 && cp <= 0xD7A3) {   // Hangul syllable: L V (T), all Lo
        uint32_t s = cp - 0xAC00;
        put_lowered(w, b, 0x1100 + s / 588);
        put_lowered(w, b, 0x1161 + (s % 588) / 28);
        if (s % 28) put_lowered(w, b, 0x11A7 + s % 28);
        return;
    }
    const char *r;
    int k = map_lookup(wp_strip, sizeof wp_strip / sizeof wp_strip[0], wp_strip_pool, cp, &r);
    if (k < 0) { put_lowered(w, b, cp); return; }
    for (int i = 0; i < k;) {
        uint32_t c;
        i += uc_decode((const unsigned char *)r + i, (size_t)(k - i), &c);
        put_lowered(w, b, c);
    }
}

// Appends the normalized text of s[0..n) to b. A byte that is not valid
// UTF-8 counts as U+FFFD, which clean_text drops.
static void normalize(const wp_tok *w, const char *s, size_t n, ls_buf *b) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)uc_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp == UC_INVALID || IN_TABLE(wp_control, cp)) continue;
        if (IN_TABLE(wp_space, cp)) cp = ' ';
        int cjk = w->cjk && IN_TABLE(wp_cjk, cp);
        if (cjk) ls_buf_put(b, " ", 1);
        put_stripped(w, b, cp);
        if (cjk) ls_buf_put(b, " ", 1);
    }
}

// ----------------------------------------------------------------------------
// WordPiece

// Greedy longest-match-first split of one word; [UNK] for the whole word if
// it is too long or some position has no matching piece.
static void wordpiece_word(const wp_tok *w, const char *word, size_t n, ls_buf *scratch, tok_ids *out) {
    size_t n_chars = 0;
    for (size_t i = 0; i < n; i++) n_chars += ((unsigned char)word[i] & 0xC0) != 0x80;
    int first = out->n;
    if (n_chars > WP_MAX_WORD_CHARS) goto unknown;
    for (size_t start = 0; start < n;) {
        scratch->n = 0;
        if (start > 0) ls_buf_put(scratch, "##", 2);
        size_t prefix = scratch->n;
        ls_buf_put(scratch, word + start, n - start);
        int id = -1;
        size_t end = n;
        while (end > start) {
            id = vocab_find(w, scratch->s, prefix + (end - start));
            if (id >= 0) break;
            do end--; while (end > start && ((unsigned char)word[end] & 0xC0) == 0x80);
        }
        if (id < 0) goto unknown;
        tok_ids_push(out, id);
        start = end;
    }
    return;
unknown:
    out->n = first;
    tok_ids_push(out, w->special_id[SP_UNK]);
}

// Pre-tokenizes normalized text (BertPreTokenizer) and appends each word's pieces.
static void split_words(const wp_tok *w, const ls_buf *norm, ls_buf *scratch, tok_ids *out) {
    size_t word = 0;
    for (size_t i = 0; i < norm->n;) {
        uint32_t cp;
        int k = uc_decode((const unsigned char *)norm->s + i, norm->n - i, &cp);
        int space = IN_TABLE(wp_split_space, cp), punct = !space && IN_TABLE(wp_punct, cp);
        if (space || punct) {
            if (i > word) wordpiece_word(w, norm->s + word, i - word, scratch, out);
            if (punct) wordpiece_word(w, norm->s + i, (size_t)k, scratch, out);
            word = i + (size_t)k;
        }
        i += (size_t)k;
    }
    if (norm->n > word) wordpiece_word(w, norm->s + word, norm->n - word, scratch, out);
}

// The special token (longest first) that starts at s, or -1; its length in *len.
static int special_at(const wp_tok *w, const char *s, size_t *len) {
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < WP_N_SPECIAL; k++) {
        size_t l = strlen(w->special[k]);
        if (w->special_id[k] >= 0 && l > best_len && strncmp(s, w->special[k], l) == 0) {
            best = k;
            best_len = l;
        }
    }
    *len = best_len;
    return best;
}

void wp_encode(const wp_tok *w, const char *text, tok_ids *out) {
    ls_buf norm = {0}, scratch = {0};
    size_t n = strlen(text), span = 0;
    for (size_t i = 0; i <= n;) {
        size_t len = 0;
        int s = i < n ? special_at(w, text + i, &len) : -1;
        if (s < 0 && i < n) { i++; continue; }
        norm.n = 0;
        normalize(w, text + span, i - span, &norm);
        split_words(w, &norm, &scratch, out);
        if (s >= 0) tok_ids_push(out, w->special_id[s]);
        i += s >= 0 ? len : 1;
        span = i;
    }
    free(norm.s);
    free(scratch.s);
}

const char *wp_decode(const wp_tok *w, int prev, int id, size_t *len) {
    const char *t = w->spaced[id] + 1;
    size_t n = w->lens[id];
    if (n > 2 && t[0] == '#' && t[1] == '#') { *len = n - 2; return t + 2; }
    if (prev < 0) { *len = n; return t; }
    *len = n + 1;
    return w->spaced[id];
}

const char *wp_piece(const wp_tok *w, int id) { return w->spaced[id] + 1; }
