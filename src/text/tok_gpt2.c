// tok_gpt2: GPT-2's byte-level BPE (Radford et al. 2019; OpenAI's encoder.py
// and the gpt-3-encoder npm package that made the reference encodings).
//
// Text -> chunks by the pre-tokenization regex, implemented by hand:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// each chunk's UTF-8 bytes -> one token per byte -> repeatedly merge every
// occurrence of the adjacent pair with the lowest merge rank. The merges
// work on ids: every merge's two sides and its result are vocabulary tokens.
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
    int byte_id[256];    // id of the token that is this single byte
    // merges: open-addressing table (left id, right id) -> rank, merged id
    uint64_t *mkey;      // (left << 32 | right) + 1; 0 = empty
    int *mrank, *mmerged;
    size_t mcap;
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

// Decodes a token written in the byte-to-unicode alphabet into raw bytes
// (out has room for strlen(s) bytes). Returns the byte count, or -1 with the
// offending code point in *bad.
static long unicode_to_bytes(const char *s, const int *cp_to_byte, char *out, uint32_t *bad) {
    size_t n = strlen(s), i = 0;
    long k = 0;
    while (i < n) {
        uint32_t cp;
        i += (size_t)uc_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp >= 512 || cp_to_byte[cp] < 0) { *bad = cp; return -1; }
        out[k++] = (char)cp_to_byte[cp];
    }
    return k;
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

gpt2_tok *gpt2_load(const char *encoder_json, const char *vocab_bpe, int *n_vocab, int *eot) {
    uint32_t byte_to_cp[256];
    int cp_to_byte[512];
    bytes_to_unicode(byte_to_cp);
    for (int i = 0; i < 512; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp[b]] = b;

    gpt2_tok *g = ls_calloc(1, sizeof *g);
    bytes_table bt = {0};
    if (load_encoder(g, encoder_json, cp_to_byte, eot)) goto fail;
    bt.cap = pow2_at_least(2 * (size_t)g->n);
    bt.slot = ls_calloc(bt.cap, sizeof(int));
    for (int id = 0; id < g->n; id++) {
        int other = bytes_insert(&bt, g, id);
        if (other >= 0) {
            ls_fail("%s: ids %d and %d: expected distinct tokens, found the same bytes", encoder_json, other, id);
            goto fail;
        }
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        g->byte_id[b] = bytes_find(&bt, g, &c, 1);
        if (g->byte_id[b] < 0) {
            ls_fail("%s: expected a token for every byte, found none for byte 0x%02X", encoder_json, b);
            goto fail;
        }
    }
    if (load_merges(g, vocab_bpe, cp_to_byte, &bt)) goto fail;
    free(bt.slot);
    *n_vocab = g->n;
    return g;
fail:
    free(bt.slot);
    gpt2_free(g);
    return NULL;
}

// ----------------------------------------------------------------------------
// pre-tokenization: the length in bytes of the regex match at s[0..n)
// (n >= 1). Alternatives are tried in the regex's order, as a backtracking
// engine does; every character starts some match.

typedef enum { CL_LETTER, CL_NUMBER, CL_SPACE, CL_OTHER } char_class;

static char_class classify(uint32_t cp) {
    if (cp == UC_INVALID) return CL_OTHER;
    if (uc_is_letter(cp)) return CL_LETTER;
    if (uc_is_number(cp)) return CL_NUMBER;
    if (uc_is_space(cp)) return CL_SPACE;
    return CL_OTHER;
}

// Class of the character at s[i] (i < n) and its byte length.
static char_class class_at(const char *s, size_t n, size_t i, int *len) {
    uint32_t cp;
    *len = uc_decode((const unsigned char *)s + i, n - i, &cp);
    return classify(cp);
}

static size_t match_length(const char *s, size_t n) {
    // 's|'t|'re|'ve|'m|'ll|'d  (case-sensitive, as the reference)
    if (s[0] == '\'' && n >= 2) {
        if (strchr("stmd", s[1])) return 2;
        if (n >= 3 && (!strncmp(s + 1, "re", 2) || !strncmp(s + 1, "ve", 2) || !strncmp(s + 1, "ll", 2)))
            return 3;
    }
    //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+  (the optional space is U+0020 only)
    size_t start = (s[0] == ' ' && n >= 2) ? 1 : 0;
    int len;
    char_class c = class_at(s, n, start, &len);
    if (c != CL_SPACE) {
        size_t i = start + (size_t)len;
        while (i < n && class_at(s, n, i, &len) == c) i += (size_t)len;
        return i;
    }
    // \s+(?!\S) | \s+ : a whitespace run; before a non-space it gives its
    // last character to the next match (" word"), unless it is one character.
    size_t i = 0, last = 0;
    while (i < n && class_at(s, n, i, &len) == CL_SPACE) { last = i; i += (size_t)len; }
    if (i == n || last == 0) return i;
    return last;
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

void gpt2_encode(const gpt2_tok *g, const char *text, tok_ids *out) {
    size_t n = strlen(text), cap = 0;
    int *w = NULL;
    for (size_t pos = 0; pos < n;) {
        size_t m = match_length(text + pos, n - pos);
        if (m > cap) {
            free(w);
            cap = m;
            w = ls_malloc(cap * sizeof(int));
        }
        for (size_t i = 0; i < m; i++) w[i] = g->byte_id[(unsigned char)text[pos + i]];
        int k = bpe_chunk(g, w, (int)m);
        for (int i = 0; i < k; i++) tok_ids_push(out, w[i]);
        pos += m;
    }
    free(w);
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
