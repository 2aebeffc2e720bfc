// tok_gpt2: GPT-2's byte-level BPE (Radford et al. 2019; OpenAI's encoder.py
// and the gpt-3-encoder npm package that made the reference encodings).
//
// Text -> chunks by the pre-tokenization regex, implemented by hand:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// each chunk's UTF-8 bytes -> one token per byte -> repeatedly merge every
// occurrence of the adjacent pair with the lowest merge rank. The merges
// work on ids: every merge's two sides and its result are vocabulary tokens.
// Vocabularies from GGUF metadata (gpt2_build, text/tok_gguf.c) may use other
// pre-tokenization regexes (smollm: \p{N} characters alone first; llama-bpe
// and qwen2: Llama 3's regex), match their control tokens whole before
// pre-tokenization, and drop bytes their vocabulary lacks, as transformers does.
#include "text/tok_internal.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "text/unicode_class.h"

struct gpt2_tok {
    int n;
    char **bytes;        // raw bytes of each token, NUL-terminated
    size_t *lens;
    int byte_id[256];    // id of the token that is this single byte (-1: none)
    int allow_missing_bytes; // GGUF vocabularies may lack some bytes: they are
                             // dropped, as transformers' BPE without unk does
    // merges: open-addressing table (left id, right id) -> rank, merged id
    uint64_t *mkey;      // (left << 32 | right) + 1; 0 = empty
    int *mrank, *mmerged;
    size_t mcap;
    gpt2_pre pre;        // pre-tokenization regex (GGUF's tokenizer.ggml.pre)
    int hf_space;        // \s as Unicode White_Space (HF's regex engine), not ECMAScript's
    // special tokens matched whole before pre-tokenization (GGUF control and
    // user-defined tokens): their text as written in the vocabulary, and ids
    int n_special;
    char **special_text;
    size_t *special_len;
    int *special_id;
    unsigned char special_first[256]; // 1 if some special token starts with this byte
};

// ----------------------------------------------------------------------------
// byte <-> unicode (encoder.py's bytes_to_unicode): printable bytes map to
// themselves, the other 68 bytes to U+0100.. in byte order, so that every
// token is a printable string.

static void bytes_to_unicode(uint32_t byte_to_cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

// Decodes a token written in the byte-to-unicode alphabet (n bytes of s) into
// raw bytes (out has room for n bytes). Returns the byte count, or -1 with the
// offending code point in *bad.
static long unicode_to_bytes_n(const char *s, size_t n, const int *cp_to_byte, char *out, uint32_t *bad) {
    size_t i = 0;
    long k = 0;
    while (i < n) {
        uint32_t cp;
        i += (size_t)uc_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp >= 512 || cp_to_byte[cp] < 0) { *bad = cp; return -1; }
        out[k++] = (char)cp_to_byte[cp];
    }
    return k;
}

static long unicode_to_bytes(const char *s, const int *cp_to_byte, char *out, uint32_t *bad) {
    return unicode_to_bytes_n(s, strlen(s), cp_to_byte, out, bad);
}

static void byte_alphabet(int cp_to_byte[512]) {
    uint32_t byte_to_cp[256];
    bytes_to_unicode(byte_to_cp);
    for (int i = 0; i < 512; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp[b]] = b;
}

// ----------------------------------------------------------------------------
// hash tables

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;   // FNV-1a
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return mix64(h);
}

// Token bytes -> id, used while loading the merges.
typedef struct {
    int *slot;   // id + 1; 0 = empty
    size_t cap;
} bytes_table;

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

// Returns the id already stored for these bytes (or -1 after inserting id).
static int bytes_insert(bytes_table *t, const gpt2_tok *g, int id) {
    size_t i = hash_bytes(g->bytes[id], g->lens[id]) & (t->cap - 1);
    while (t->slot[i]) {
        int o = t->slot[i] - 1;
        if (g->lens[o] == g->lens[id] && memcmp(g->bytes[o], g->bytes[id], g->lens[id]) == 0) return o;
        i = (i + 1) & (t->cap - 1);
    }
    t->slot[i] = id + 1;
    return -1;
}

static int bytes_find(const bytes_table *t, const gpt2_tok *g, const char *s, size_t n) {
    size_t i = hash_bytes(s, n) & (t->cap - 1);
    while (t->slot[i]) {
        int o = t->slot[i] - 1;
        if (g->lens[o] == n && memcmp(g->bytes[o], s, n) == 0) return o;
        i = (i + 1) & (t->cap - 1);
    }
    return -1;
}

static size_t merge_slot(const gpt2_tok *g, int left, int right) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t i = mix64(key) & (g->mcap - 1);
    while (g->mkey[i] && g->mkey[i] != key) i = (i + 1) & (g->mcap - 1);
    return i;
}

// Rank of merging (left, right), INT_MAX if they do not merge.
static int merge_rank(const gpt2_tok *g, int left, int right, int *merged) {
    size_t i = merge_slot(g, left, right);
    if (!g->mkey[i]) return INT_MAX;
    *merged = g->mmerged[i];
    return g->mrank[i];
}

// ----------------------------------------------------------------------------
// build / free

void gpt2_free(gpt2_tok *g) {
    if (!g) return;
    if (g->bytes)
        for (int i = 0; i < g->n; i++) free(g->bytes[i]);
    free(g->bytes);
    free(g->lens);
    free(g->mkey);
    free(g->mrank);
    free(g->mmerged);
    for (int i = 0; i < g->n_special; i++) free(g->special_text[i]);
    free(g->special_text);
    free(g->special_len);
    free(g->special_id);
    free(g);
}

static int load_encoder(gpt2_tok *g, const char *path, const int *cp_to_byte, int *eot) {
    size_t size;
    char *text = ls_read_file_max(path, &size, LS_READ_SMALL_MAX);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail("%s: expected a JSON object {\"token\": id, ...}, found %s", path,
                       root ? "another JSON value" : "invalid JSON");
    }
    int n = cJSON_GetArraySize(root);
    g->n = n;
    g->bytes = ls_calloc((size_t)n, sizeof(char *));
    g->lens = ls_calloc((size_t)n, sizeof(size_t));
    *eot = -1;
    int rc = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!cJSON_IsNumber(it) || v < 0 || v >= n || v != (double)(int)v) {
            rc = ls_fail("%s: key \"%s\": expected an integer id in [0, %d), found %s", path, it->string, n,
                         cJSON_IsNumber(it) ? "a number outside it" : "a non-number");
            break;
        }
        int id = (int)v;
        if (g->bytes[id]) {
            rc = ls_fail("%s: key \"%s\": expected a unique id, found id %d already used", path, it->string, id);
            break;
        }
        size_t klen = strlen(it->string);
        g->bytes[id] = ls_malloc(klen + 1);
        uint32_t bad;
        long k = unicode_to_bytes(it->string, cp_to_byte, g->bytes[id], &bad);
        if (k < 0) {
            rc = ls_fail("%s: key \"%s\": expected characters of GPT-2's byte-to-unicode alphabet, found U+%04X",
                         path, it->string, (unsigned)bad);
            break;
        }
        g->bytes[id][k] = 0;
        g->lens[id] = (size_t)k;
        if (strcmp(it->string, "<|endoftext|>") == 0) *eot = id;
    }
    cJSON_Delete(root);
    // n entries with unique ids in [0, n) cover every id, so there are no holes.
    return rc;
}

static int load_merges(gpt2_tok *g, const char *path, const int *cp_to_byte, const bytes_table *bt) {
    size_t size;
    char *text = ls_read_file_max(path, &size, LS_READ_SMALL_MAX);
    if (!text) return -1;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    g->mcap = pow2_at_least(2 * lines);
    g->mkey = ls_calloc(g->mcap, sizeof(uint64_t));
    g->mrank = ls_malloc(g->mcap * sizeof(int));
    g->mmerged = ls_malloc(g->mcap * sizeof(int));
    char *left = ls_malloc(size + 1), *right = ls_malloc(size + 1), *both = ls_malloc(2 * size + 2);
    int rc = 0, rank = 0, lineno = 0;
    char *line = text;
    while (line && *line) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = 0;
        if (len == 0 || (lineno == 1 && strncmp(line, "#version", 8) == 0)) {
            line = end ? end + 1 : NULL;
            continue;
        }
        char *sp = strchr(line, ' ');
        if (!sp || sp == line || sp[1] == 0 || strchr(sp + 1, ' ')) {
            rc = ls_fail("%s:%d: expected \"left right\" (two tokens separated by one space), found \"%.60s\"",
                         path, lineno, line);
            break;
        }
        *sp = 0;
        uint32_t bad;
        long a = unicode_to_bytes(line, cp_to_byte, left, &bad), b = 0;
        if (a >= 0) b = unicode_to_bytes(sp + 1, cp_to_byte, right, &bad);
        if (a < 0 || b < 0) {
            rc = ls_fail("%s:%d: expected characters of GPT-2's byte-to-unicode alphabet, found U+%04X",
                         path, lineno, (unsigned)bad);
            break;
        }
        memcpy(both, left, (size_t)a);
        memcpy(both + a, right, (size_t)b);
        int ids[3] = {bytes_find(bt, g, left, (size_t)a), bytes_find(bt, g, right, (size_t)b),
                      bytes_find(bt, g, both, (size_t)(a + b))};
        const char *names[3] = {"left token", "right token", "merged token"};
        for (int k = 0; k < 3 && rc == 0; k++)
            if (ids[k] < 0)
                rc = ls_fail("%s:%d: merge \"%s %s\": expected its %s in the vocabulary, found none",
                             path, lineno, line, sp + 1, names[k]);
        if (rc) break;
        // A repeated pair keeps its last rank, like dict(zip(merges, range(n))).
        size_t s = merge_slot(g, ids[0], ids[1]);
        g->mkey[s] = ((uint64_t)(uint32_t)ids[0] << 32 | (uint32_t)ids[1]) + 1;
        g->mrank[s] = rank++;
        g->mmerged[s] = ids[2];
        line = end ? end + 1 : NULL;
    }
    free(left);
    free(right);
    free(both);
    free(text);
    return rc;
}

// The byte -> token table and the bytes -> id table, once the tokens are in.
static int index_vocab(gpt2_tok *g, bytes_table *bt, const char *src) {
    bt->cap = pow2_at_least(2 * (size_t)g->n);
    bt->slot = ls_calloc(bt->cap, sizeof(int));
    for (int id = 0; id < g->n; id++) {
        int other = bytes_insert(bt, g, id);
        if (other >= 0)
            return ls_fail("%s: ids %d and %d: expected distinct tokens, found the same bytes", src, other, id);
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        g->byte_id[b] = bytes_find(bt, g, &c, 1);
        if (g->byte_id[b] < 0 && !g->allow_missing_bytes)
            return ls_fail("%s: expected a token for every byte, found none for byte 0x%02X", src, b);
    }
    return 0;
}

gpt2_tok *gpt2_load(const char *encoder_json, const char *vocab_bpe, int *n_vocab, int *eot) {
    int cp_to_byte[512];
    byte_alphabet(cp_to_byte);
    gpt2_tok *g = ls_calloc(1, sizeof *g);
    bytes_table bt = {0};
    if (load_encoder(g, encoder_json, cp_to_byte, eot) || index_vocab(g, &bt, encoder_json) ||
        load_merges(g, vocab_bpe, cp_to_byte, &bt)) {
        free(bt.slot);
        gpt2_free(g);
        return NULL;
    }
    free(bt.slot);
    *n_vocab = g->n;
    return g;
}

// One GGUF merge "left right" (both in the byte-to-unicode alphabet) at rank `rank`.
static int add_merge_text(gpt2_tok *g, const bytes_table *bt, const int *cp_to_byte, gguf_str m, int rank,
                          const char *src, char *scratch) {
    const char *sp = memchr(m.ptr, ' ', m.len);
    size_t a_len = sp ? (size_t)(sp - m.ptr) : 0, b_len = sp ? m.len - a_len - 1 : 0;
    if (!sp || a_len == 0 || b_len == 0 || memchr(sp + 1, ' ', b_len))
        return ls_fail("%s: key 'tokenizer.ggml.merges': entry %d: expected \"left right\", found \"%.*s\"", src,
                       rank, (int)(m.len > 60 ? 60 : m.len), m.ptr);
    uint32_t bad;
    long a = unicode_to_bytes_n(m.ptr, a_len, cp_to_byte, scratch, &bad), b = 0;
    if (a >= 0) b = unicode_to_bytes_n(sp + 1, b_len, cp_to_byte, scratch + a, &bad);
    if (a < 0 || b < 0)
        return ls_fail("%s: key 'tokenizer.ggml.merges': entry %d: expected characters of the byte-to-unicode "
                       "alphabet, found U+%04X", src, rank, (unsigned)bad);
    int ids[3] = {bytes_find(bt, g, scratch, (size_t)a), bytes_find(bt, g, scratch + a, (size_t)b),
                  bytes_find(bt, g, scratch, (size_t)(a + b))};
    for (int k = 0; k < 3; k++)
        if (ids[k] < 0)
            return ls_fail("%s: key 'tokenizer.ggml.merges': entry %d \"%.*s\": expected its %s in the vocabulary",
                           src, rank, (int)(m.len > 60 ? 60 : m.len), m.ptr,
                           k == 0 ? "left token" : k == 1 ? "right token" : "merged token");
    size_t s = merge_slot(g, ids[0], ids[1]);
    g->mkey[s] = ((uint64_t)(uint32_t)ids[0] << 32 | (uint32_t)ids[1]) + 1;
    g->mrank[s] = rank;
    g->mmerged[s] = ids[2];
    return 0;
}

gpt2_tok *gpt2_build(int n, const gguf_str *tokens, int n_merges, const gguf_str *merges, const char *src) {
    int cp_to_byte[512];
    byte_alphabet(cp_to_byte);
    gpt2_tok *g = ls_calloc(1, sizeof *g);
    g->n = n;
    g->hf_space = 1;
    g->allow_missing_bytes = 1;
    g->bytes = ls_calloc((size_t)n, sizeof(char *));
    g->lens = ls_calloc((size_t)n, sizeof(size_t));
    size_t longest = 0;
    for (int id = 0; id < n; id++) {
        uint32_t bad;
        g->bytes[id] = ls_malloc(tokens[id].len + 1);
        long k = unicode_to_bytes_n(tokens[id].ptr, tokens[id].len, cp_to_byte, g->bytes[id], &bad);
        if (k < 0) { // outside the alphabet: the text stands for its own UTF-8 bytes (as transformers reads it)
            memcpy(g->bytes[id], tokens[id].ptr, tokens[id].len);
            k = (long)tokens[id].len;
        }
        g->bytes[id][k] = 0;
        g->lens[id] = (size_t)k;
        if (tokens[id].len > longest) longest = tokens[id].len;
    }
    bytes_table bt = {0};
    int rc = index_vocab(g, &bt, src);
    g->mcap = pow2_at_least(2 * (size_t)n_merges + 2);
    g->mkey = ls_calloc(g->mcap, sizeof(uint64_t));
    g->mrank = ls_malloc(g->mcap * sizeof(int));
    g->mmerged = ls_malloc(g->mcap * sizeof(int));
    char *scratch = ls_malloc(2 * longest + 2);
    for (int i = 0; i < n_merges && !rc; i++) {
        if (merges[i].len > 2 * longest + 1) // longer than any two tokens: cannot be a merge
            rc = ls_fail("%s: key 'tokenizer.ggml.merges': entry %d: expected two vocabulary tokens, found %zu "
                         "bytes", src, i, merges[i].len);
        else rc = add_merge_text(g, &bt, cp_to_byte, merges[i], i, src, scratch);
    }
    free(scratch);
    free(bt.slot);
    if (rc) {
        gpt2_free(g);
        return NULL;
    }
    return g;
}

int gpt2_text_in_alphabet(const char *s, size_t n) {
    int cp_to_byte[512];
    byte_alphabet(cp_to_byte);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)uc_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp >= 512 || cp_to_byte[cp] < 0) return 0;
    }
    return 1;
}

void gpt2_set_pre(gpt2_tok *g, gpt2_pre pre) { g->pre = pre; }

void gpt2_add_special(gpt2_tok *g, int id, const char *text, size_t len) {
    if (len == 0) return;
    int k = g->n_special++;
    g->special_text = realloc(g->special_text, (size_t)g->n_special * sizeof(char *));
    g->special_len = realloc(g->special_len, (size_t)g->n_special * sizeof(size_t));
    g->special_id = realloc(g->special_id, (size_t)g->n_special * sizeof(int));
    ls_assert(g->special_text && g->special_len && g->special_id);
    g->special_text[k] = ls_malloc(len + 1);
    memcpy(g->special_text[k], text, len);
    g->special_text[k][len] = 0;
    g->special_len[k] = len;
    g->special_id[k] = id;
    g->special_first[(unsigned char)text[0]] = 1;
}

// ----------------------------------------------------------------------------
// pre-tokenization: the length in bytes of the regex match at s[0..n)
// (n >= 1). Alternatives are tried in the regex's order, as a backtracking
// engine does; every character starts some match.

typedef enum { CL_LETTER, CL_NUMBER, CL_SPACE, CL_OTHER } char_class;

// \s: ECMAScript's class for GPT-2's files (the reference encoder is
// JavaScript); Unicode White_Space for GGUF vocabularies (transformers'
// regex engine): U+0085 is a space there, U+FEFF is not.
static char_class classify(uint32_t cp, int hf_space) {
    if (cp == UC_INVALID) return CL_OTHER;
    if (uc_is_letter(cp)) return CL_LETTER;
    if (uc_is_number(cp)) return CL_NUMBER;
    if (hf_space ? (uc_is_space(cp) && cp != 0xFEFF) || cp == 0x85 : uc_is_space(cp)) return CL_SPACE;
    return CL_OTHER;
}

typedef struct {
    const char *s;
    size_t n;
    int hf_space;
} span;

// Class of the character at s[i] (i < n) and its byte length.
static char_class class_at(const span *t, size_t i, int *len) {
    uint32_t cp;
    *len = uc_decode((const unsigned char *)t->s + i, t->n - i, &cp);
    return classify(cp, t->hf_space);
}

static int is_newline(const span *t, size_t i) { return t->s[i] == '\r' || t->s[i] == '\n'; }

// The end of the run of characters of class c starting at i.
static size_t run_end(const span *t, size_t i, char_class c) {
    int len;
    while (i < t->n && class_at(t, i, &len) == c) i += (size_t)len;
    return i;
}

// \s+(?!\S) | \s+ : a whitespace run; before a non-space it gives its last
// character to the next match (" word"), unless it is one character.
static size_t space_run(const span *t) {
    size_t i = 0, last = 0;
    int len;
    while (i < t->n && class_at(t, i, &len) == CL_SPACE) { last = i; i += (size_t)len; }
    if (i == t->n || last == 0) return i;
    return last;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
static size_t match_gpt2(const span *t) {
    const char *s = t->s;
    size_t n = t->n;
    if (s[0] == '\'' && n >= 2) { // case-sensitive, as the reference
        if (strchr("stmd", s[1])) return 2;
        if (n >= 3 && (!strncmp(s + 1, "re", 2) || !strncmp(s + 1, "ve", 2) || !strncmp(s + 1, "ll", 2)))
            return 3;
    }
    size_t start = (s[0] == ' ' && n >= 2) ? 1 : 0; // the optional space is U+0020 only
    int len;
    char_class c = class_at(t, start, &len);
    if (c != CL_SPACE) return run_end(t, start + (size_t)len, c);
    return space_run(t);
}

// llama-bpe (max_digits 3) and qwen2 (max_digits 1):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}
//   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
static size_t match_llama3(const span *t, int max_digits) {
    const char *s = t->s;
    size_t n = t->n;
    if (s[0] == '\'' && n >= 2) {
        char a = (char)(s[1] | 0x20), b = n >= 3 ? (char)(s[2] | 0x20) : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    int len, len1;
    char_class c0 = class_at(t, 0, &len);
    if (c0 == CL_LETTER) return run_end(t, (size_t)len, CL_LETTER);
    if (c0 != CL_NUMBER && !is_newline(t, 0) && (size_t)len < n && class_at(t, (size_t)len, &len1) == CL_LETTER)
        return run_end(t, (size_t)len, CL_LETTER);
    if (c0 == CL_NUMBER) {
        size_t i = (size_t)len;
        for (int k = 1; k < max_digits && i < n && class_at(t, i, &len1) == CL_NUMBER; k++) i += (size_t)len1;
        return i;
    }
    size_t start = s[0] == ' ' && n >= 2 ? 1 : 0;
    if (class_at(t, start, &len1) == CL_OTHER) {
        size_t i = run_end(t, start, CL_OTHER);
        while (i < n && is_newline(t, i)) i++;
        return i;
    }
    // \s*[\r\n]+ : up to and including the last \r or \n of the whitespace run
    size_t i = 0, after_newline = 0;
    while (i < n && class_at(t, i, &len1) == CL_SPACE) {
        if (is_newline(t, i)) after_newline = i + 1;
        i += (size_t)len1;
    }
    if (after_newline) return after_newline;
    return space_run(t);
}

static size_t match_length(const gpt2_tok *g, const char *s, size_t n) {
    span t = {s, n, g->hf_space};
    if (g->pre == GPT2_PRE_SMOLLM) {
        // Digits(individual_digits) first: a \p{N} character is a chunk of
        // its own, and GPT-2's regex runs on the text between them
        int len;
        if (class_at(&t, 0, &len) == CL_NUMBER) return (size_t)len;
        size_t k = (size_t)len;
        while (k < n && class_at(&t, k, &len) != CL_NUMBER) k += (size_t)len;
        t.n = k;
        return match_gpt2(&t);
    }
    if (g->pre == GPT2_PRE_LLAMA3) return match_llama3(&t, 3);
    if (g->pre == GPT2_PRE_QWEN2) return match_llama3(&t, 1);
    return match_gpt2(&t);
}

// ----------------------------------------------------------------------------
// encode

// BPE on one chunk: w holds its byte tokens; merges in place, returns the new length.
static int bpe_chunk(const gpt2_tok *g, int *w, int k) {
    while (k >= 2) {
        int best = INT_MAX, first = -1, second = -1, merged = -1;
        for (int i = 0; i + 1 < k; i++) {
            int m;
            int r = merge_rank(g, w[i], w[i + 1], &m);
            if (r < best) { best = r; first = w[i]; second = w[i + 1]; merged = m; }
        }
        if (best == INT_MAX) break;
        int j = 0;
        for (int i = 0; i < k; i++) {
            if (i + 1 < k && w[i] == first && w[i + 1] == second) { w[j++] = merged; i++; }
            else w[j++] = w[i];
        }
        k = j;
    }
    return k;
}

// Pre-tokenization and BPE of text[0..n) (no special tokens in it).
static void encode_plain(const gpt2_tok *g, const char *text, size_t n, tok_ids *out) {
    size_t cap = 0;
    int *w = NULL;
    for (size_t pos = 0; pos < n;) {
        size_t m = match_length(g, text + pos, n - pos);
        if (m > cap) {
            free(w);
            cap = m;
            w = ls_malloc(cap * sizeof(int));
        }
        int k = 0;
        for (size_t i = 0; i < m; i++)
            if (g->byte_id[(unsigned char)text[pos + i]] >= 0) w[k++] = g->byte_id[(unsigned char)text[pos + i]];
        k = bpe_chunk(g, w, k);
        for (int i = 0; i < k; i++) tok_ids_push(out, w[i]);
        pos += m;
    }
    free(w);
}

// The longest special token at text[0..n), or -1 (its length in *len).
static int special_at(const gpt2_tok *g, const char *text, size_t n, size_t *len) {
    int best = -1;
    *len = 0;
    if (!g->special_first[(unsigned char)text[0]]) return -1;
    for (int k = 0; k < g->n_special; k++)
        if (g->special_len[k] <= n && g->special_len[k] > *len && !memcmp(text, g->special_text[k], g->special_len[k])) {
            best = g->special_id[k];
            *len = g->special_len[k];
        }
    return best;
}

void gpt2_encode(const gpt2_tok *g, const char *text, int special, tok_ids *out) {
    size_t n = strlen(text), plain = 0;
    if (!special || g->n_special == 0) {
        encode_plain(g, text, n, out);
        return;
    }
    // special tokens first, leftmost-longest, then the text between them
    for (size_t pos = 0; pos < n;) {
        size_t len;
        int id = special_at(g, text + pos, n - pos, &len);
        if (id < 0) {
            pos++;
            continue;
        }
        encode_plain(g, text + plain, pos - plain, out);
        tok_ids_push(out, id);
        pos += len;
        plain = pos;
    }
    encode_plain(g, text + plain, n - plain, out);
}

int gpt2_find(const gpt2_tok *g, const char *s) {
    size_t n = strlen(s);
    for (int id = 0; id < g->n; id++)
        if (g->lens[id] == n && memcmp(g->bytes[id], s, n) == 0) return id;
    return -1;
}

const char *gpt2_piece(const gpt2_tok *g, int id, size_t *len) {
    if (len) *len = g->lens[id];
    return g->bytes[id];
}
