// tok_llama2c: llama2.c's tokenizer (tokenizer.bin), encoded and decoded as
// run.c does. The vocabulary is sorted once for bsearch lookups, as run.c's
// sorted_vocab; the merge loop uses a heap instead of run.c's full rescan.
#include "text/tok_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

typedef struct {
    const char *str;
    int id;
} l2c_index;

struct l2c_tok {
    int n;
    int max_token_length;
    char **vocab;        // NUL-terminated pieces (run.c treats them as C strings)
    float *scores;
    l2c_index *sorted;   // by strcmp, ties by id
    int space_id;        // id of " " (the dummy prefix), -1 if absent
    char byte_pieces[512];  // "b\0" per byte, what "<0xXX>" decodes to
    // SentencePiece vocabularies from GGUF metadata (l2c_build): pieces spell
    // a space as U+2581, byte-fallback pieces sit at any id, control tokens
    // are matched whole, and each piece's text is precomputed for decoding
    int spm;
    int add_prefix;      // prepend U+2581 to a text that does not start with a space
    int unk, bos;
    int byte_id[256];    // id of "<0xXX>", -1 if absent
    char **text;         // decoded piece: U+2581 -> ' ', "<0xXX>" -> the byte
    size_t *text_len;
    int n_special;
    int *special;        // ids of the control / user-defined tokens
    unsigned char special_first[256];
};

// ----------------------------------------------------------------------------
// build / free

static int read_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static float read_f32(const unsigned char *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}

static int compare_index(const void *a, const void *b) {
    const l2c_index *x = a, *y = b;
    int c = strcmp(x->str, y->str);
    if (c) return c;
    return (x->id > y->id) - (x->id < y->id);
}

// Lowest id whose piece equals s, or -1 (run.c's str_lookup).
static int str_lookup(const l2c_tok *l, const char *s) {
    size_t lo = 0, hi = (size_t)l->n;
    while (lo < hi) {   // first entry >= s
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(l->sorted[mid].str, s) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < (size_t)l->n && strcmp(l->sorted[lo].str, s) == 0) return l->sorted[lo].id;
    return -1;
}

void l2c_free(l2c_tok *l) {
    if (!l) return;
    if (l->vocab)
        for (int i = 0; i < l->n; i++) free(l->vocab[i]);
    free(l->vocab);
    if (l->text)
        for (int i = 0; i < l->n; i++) free(l->text[i]);
    free(l->text);
    free(l->text_len);
    free(l->special);
    free(l->scores);
    free(l->sorted);
    free(l);
}

l2c_tok *l2c_load(const char *path, int vocab_size, int *n_vocab) {
    size_t size;
    unsigned char *data = (unsigned char *)ls_read_file_max(path, &size, LS_READ_SMALL_MAX);
    if (!data) return NULL;
    l2c_tok *l = ls_calloc(1, sizeof *l);
    if (size < 4) {
        ls_fail("%s: max_token_length at offset 0: expected 4 bytes (int32), found %zu (file truncated)",
                path, size);
        goto fail;
    }
    l->max_token_length = read_i32(data);
    if (l->max_token_length <= 0 || l->max_token_length > (1 << 20)) {
        ls_fail("%s: max_token_length at offset 0: expected a positive int32, found %d",
                path, l->max_token_length);
        goto fail;
    }
    if (vocab_size < 0) {
        ls_fail("%s: vocab_size: expected >= 0 (0: read to the end), found %d", path, vocab_size);
        goto fail;
    }
    int cap = vocab_size > 0 ? vocab_size : 1024;
    l->vocab = ls_calloc((size_t)cap, sizeof(char *));
    l->scores = ls_malloc((size_t)cap * sizeof(float));
    size_t off = 4;
    while (vocab_size > 0 ? l->n < vocab_size : off < size) {
        int i = l->n;
        if (size - off < 8) {
            ls_fail("%s: token %d: score and length at offset %zu: expected 8 bytes, found %zu "
                    "(file truncated)", path, i, off, size - off);
            goto fail;
        }
        float score = read_f32(data + off);
        int len = read_i32(data + off + 4);
        if (len < 0 || len > l->max_token_length) {
            ls_fail("%s: token %d: length at offset %zu: expected 0..%d (max_token_length), found %d",
                    path, i, off + 4, l->max_token_length, len);
            goto fail;
        }
        if (!isfinite(score)) {
            ls_fail("%s: token %d: score at offset %zu: expected a finite float32, found %g", path, i, off, score);
            goto fail;
        }
        off += 8;
        if (size - off < (size_t)len) {
            ls_fail("%s: token %d: piece at offset %zu: expected %d bytes, found %zu (file truncated)",
                    path, i, off, len, size - off);
            goto fail;
        }
        if (i == cap) {
            cap *= 2;
            char **v = ls_calloc((size_t)cap, sizeof(char *));
            float *s = ls_malloc((size_t)cap * sizeof(float));
            memcpy(v, l->vocab, (size_t)i * sizeof(char *));
            memcpy(s, l->scores, (size_t)i * sizeof(float));
            free(l->vocab);
            free(l->scores);
            l->vocab = v;
            l->scores = s;
        }
        l->vocab[i] = ls_malloc((size_t)len + 1);
        memcpy(l->vocab[i], data + off, (size_t)len);
        l->vocab[i][len] = 0;
        l->scores[i] = score;
        l->n++;
        off += (size_t)len;
    }
    if (off < size) {
        ls_fail("%s: expected %d tokens (vocab_size) ending at offset %zu, found %zu more bytes",
                path, vocab_size, off, size - off);
        goto fail;
    }
    // Byte fallback maps byte b to id b + 3, so ids 0..258 must exist.
    if (l->n < 259) {
        ls_fail("%s: vocabulary: expected at least 259 tokens (<unk>, BOS, EOS, 256 byte pieces), found %d",
                path, l->n);
        goto fail;
    }
    free(data);
    data = NULL;

    l->sorted = ls_malloc((size_t)l->n * sizeof(l2c_index));
    for (int i = 0; i < l->n; i++) l->sorted[i] = (l2c_index){l->vocab[i], i};
    qsort(l->sorted, (size_t)l->n, sizeof(l2c_index), compare_index);
    l->space_id = str_lookup(l, " ");
    for (int b = 0; b < 256; b++) {
        l->byte_pieces[2 * b] = (char)b;
        l->byte_pieces[2 * b + 1] = 0;
    }
    *n_vocab = l->n;
    return l;
fail:
    free(data);
    l2c_free(l);
    return NULL;
}

// The byte b when piece is exactly "<0xXX>" (upper-case hex), else -1.
static int byte_piece_value(const char *piece) {
    unsigned v;
    char tail;
    if (strlen(piece) != 6 || strncmp(piece, "<0x", 3) || piece[5] != '>') return -1;
    if (sscanf(piece + 3, "%2X%c", &v, &tail) != 2 || tail != '>') return -1;
    return (int)v;
}

l2c_tok *l2c_build(const l2c_spec *spec, const char *src) {
    l2c_tok *l = ls_calloc(1, sizeof *l);
    l->spm = 1;
    l->n = spec->n;
    l->add_prefix = spec->add_prefix;
    l->unk = spec->unk;
    l->bos = spec->bos;
    l->space_id = -1;
    l->vocab = ls_calloc((size_t)l->n, sizeof(char *));
    l->scores = ls_malloc((size_t)l->n * sizeof(float));
    l->text = ls_calloc((size_t)l->n, sizeof(char *));
    l->text_len = ls_calloc((size_t)l->n, sizeof(size_t));
    l->special = ls_malloc((size_t)l->n * sizeof(int));
    for (int b = 0; b < 256; b++) l->byte_id[b] = -1;
    for (int i = 0; i < l->n; i++) {
        const char *p = spec->tokens[i].ptr;
        size_t len = spec->tokens[i].len;
        if (memchr(p, 0, len)) {
            ls_fail("%s: key 'tokenizer.ggml.tokens': token %d: expected no NUL byte in a piece", src, i);
            l2c_free(l);
            return NULL;
        }
        l->vocab[i] = ls_malloc(len + 1);
        memcpy(l->vocab[i], p, len);
        l->vocab[i][len] = 0;
        if ((int)len > l->max_token_length) l->max_token_length = (int)len;
        l->scores[i] = spec->scores ? spec->scores[i] : 0.0f;
        int type = spec->types ? spec->types[i] : 1, b = byte_piece_value(l->vocab[i]);
        if (b >= 0 && (type == 6 || !spec->types) && l->byte_id[b] < 0) l->byte_id[b] = i;
        // decoded text: a byte piece is its byte; U+2581 is a space
        l->text[i] = ls_malloc(len + 1);
        size_t k = 0;
        if (b >= 0 && type == 6) l->text[i][k++] = (char)b;
        else
            for (size_t j = 0; j < len; j++) {
                if (j + 2 < len && !memcmp(p + j, "\xe2\x96\x81", 3)) {
                    l->text[i][k++] = ' ';
                    j += 2;
                } else l->text[i][k++] = p[j];
            }
        l->text[i][k] = 0;
        l->text_len[i] = k;
        if ((type == 3 || type == 4) && len > 0) {
            l->special[l->n_special++] = i;
            l->special_first[(unsigned char)p[0]] = 1;
        }
    }
    l->sorted = ls_malloc((size_t)l->n * sizeof(l2c_index));
    for (int i = 0; i < l->n; i++) l->sorted[i] = (l2c_index){l->vocab[i], i};
    qsort(l->sorted, (size_t)l->n, sizeof(l2c_index), compare_index);
    for (int b = 0; b < 256; b++) {
        l->byte_pieces[2 * b] = (char)b;
        l->byte_pieces[2 * b + 1] = 0;
    }
    return l;
}

// ----------------------------------------------------------------------------
// encode
//
// run.c merges, while any adjacent pair's concatenation is in the vocab, the
// pair whose merged piece has the highest score (the leftmost on ties; pairs
// scoring <= -1e10 never merge). A max-heap keyed by (score, -position) over
// a linked list of symbols finds the same pair each step: positions keep
// their order because a merge keeps the left symbol and unlinks the right.
// Stale heap entries (a side already merged) are skipped when popped.

typedef struct {
    float score;
    int left, right;          // symbol (node) indices
    int left_id, right_id;    // their ids when pushed; a mismatch marks it stale
    int merged;
} l2c_pair;

typedef struct {
    l2c_pair *a;
    int n, cap;
} l2c_heap;

static int pair_before(const l2c_pair *x, const l2c_pair *y) {
    if (x->score != y->score) return x->score > y->score;
    return x->left < y->left;
}

static void heap_push(l2c_heap *h, l2c_pair p) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        l2c_pair *a = ls_malloc((size_t)cap * sizeof *a);
        if (h->n) memcpy(a, h->a, (size_t)h->n * sizeof *a);
        free(h->a);
        h->a = a;
        h->cap = cap;
    }
    int i = h->n++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!pair_before(&p, &h->a[parent])) break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = p;
}

static l2c_pair heap_pop(l2c_heap *h) {
    l2c_pair top = h->a[0], last = h->a[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pair_before(&h->a[c + 1], &h->a[c])) c++;
        if (!pair_before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0) h->a[i] = last;
    return top;
}

static void push_candidate(const l2c_tok *l, l2c_heap *h, char *buf, const int *id, int left, int right) {
    if (left < 0 || right < 0) return;
    size_t a = strlen(l->vocab[id[left]]), b = strlen(l->vocab[id[right]]);
    memcpy(buf, l->vocab[id[left]], a);
    memcpy(buf + a, l->vocab[id[right]], b + 1);
    int merged = str_lookup(l, buf);
    if (merged < 0) return;
    float score = l->scores[merged];
    if (!(score > -1e10f)) return;
    heap_push(h, (l2c_pair){score, left, right, id[left], id[right], merged});
}

// Merges the symbols v (ids) by score as run.c does; appends the result to out.
static void merge_symbols(const l2c_tok *l, tok_ids *v, tok_ids *out) {
    char *buf = ls_malloc(2 * (size_t)l->max_token_length + 8);
    int n = v->n;
    int *id = v->ids, *next = ls_malloc((size_t)(n + 1) * sizeof(int)), *prev = ls_malloc((size_t)(n + 1) * sizeof(int));
    for (int i = 0; i < n; i++) {
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
    }
    l2c_heap h = {0};
    for (int i = 0; i + 1 < n; i++) push_candidate(l, &h, buf, id, i, i + 1);
    while (h.n > 0) {
        l2c_pair p = heap_pop(&h);
        if (next[p.left] != p.right || id[p.left] != p.left_id || id[p.right] != p.right_id) continue;
        id[p.left] = p.merged;
        next[p.left] = next[p.right];
        if (next[p.right] >= 0) prev[next[p.right]] = p.left;
        next[p.right] = prev[p.right] = -2;   // unlinked
        id[p.right] = -1;
        push_candidate(l, &h, buf, id, prev[p.left], p.left);
        push_candidate(l, &h, buf, id, p.left, next[p.left]);
    }
    for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) tok_ids_push(out, id[i]);
    free(h.a);
    free(next);
    free(prev);
    free(buf);
}

void l2c_encode(const l2c_tok *l, const char *text, int bos, int dummy_prefix, tok_ids *out) {
    tok_ids v = {0};
    if (bos) tok_ids_push(&v, 1);
    if (dummy_prefix && text[0] != '\0' && l->space_id >= 0) tok_ids_push(&v, l->space_id);

    // UTF-8 characters (run.c: a lead byte and up to 3 continuation bytes);
    // a character that is not a piece becomes its bytes' fallback ids.
    char chr[8];
    size_t chr_len = 0;
    for (const char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) chr_len = 0;
        chr[chr_len++] = *c;
        chr[chr_len] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && chr_len < 4) continue;
        int id = str_lookup(l, chr);
        if (id != -1) {
            tok_ids_push(&v, id);
        } else {
            for (size_t i = 0; i < chr_len; i++) tok_ids_push(&v, (unsigned char)chr[i] + 3);
        }
        chr_len = 0;
    }
    merge_symbols(l, &v, out);
    free(v.ids);
}

// ----------------------------------------------------------------------------
// SentencePiece vocabularies from GGUF metadata, encoded as transformers'
// LlamaTokenizer does (BPE with merges in score order, byte fallback,
// Metaspace with prepend_scheme "first"): control tokens first (matched
// whole); in the text between them spaces become U+2581, and the text at
// the very start gets a U+2581 in front unless it starts with one; each
// character is a piece or its bytes' <0xXX> pieces (unk if absent, runs of
// unk fused); then the merges.

static void encode_spm_segment(const l2c_tok *l, const char *s, size_t n, int at_start, tok_ids *out) {
    if (n == 0) return;
    size_t cap = 3 * n + 4, k = 0;
    char *t = ls_malloc(cap);
    if (l->add_prefix && at_start && s[0] != ' ') {
        memcpy(t, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(t + k, "\xe2\x96\x81", 3);
            k += 3;
        } else t[k++] = s[i];
    }
    tok_ids v = {0};
    char chr[8];
    for (size_t i = 0; i < k;) {
        size_t len = 1;
        while (len < 4 && i + len < k && (t[i + len] & 0xC0) == 0x80) len++;
        memcpy(chr, t + i, len);
        chr[len] = 0;
        int id = str_lookup(l, chr);
        if (id >= 0) tok_ids_push(&v, id);
        else
            for (size_t b = 0; b < len; b++) {
                int bid = l->byte_id[(unsigned char)chr[b]];
                if (bid >= 0) tok_ids_push(&v, bid);
                else if (!(v.n > 0 && v.ids[v.n - 1] == l->unk)) tok_ids_push(&v, l->unk);
            }
        i += len;
    }
    merge_symbols(l, &v, out);
    free(v.ids);
    free(t);
}

void l2c_encode_spm(const l2c_tok *l, const char *text, int at_start, tok_ids *out) {
    size_t n = strlen(text), plain = 0;
    for (size_t pos = 0; pos < n;) {
        int best = -1;
        size_t best_len = 0;
        if (l->special_first[(unsigned char)text[pos]])
            for (int k = 0; k < l->n_special; k++) {
                const char *sp = l->vocab[l->special[k]];
                size_t len = strlen(sp);
                if (len > best_len && len <= n - pos && !memcmp(text + pos, sp, len)) {
                    best = l->special[k];
                    best_len = len;
                }
            }
        if (best < 0) {
            pos++;
            continue;
        }
        encode_spm_segment(l, text + plain, pos - plain, at_start && plain == 0, out);
        tok_ids_push(out, best);
        pos += best_len;
        plain = pos;
    }
    encode_spm_segment(l, text + plain, n - plain, at_start && plain == 0, out);
}

// ----------------------------------------------------------------------------
// decode

const char *l2c_decode(const l2c_tok *l, int prev, int id, size_t *len) {
    if (l->spm) { // transformers strips one leading space of the decoded text
        const char *t = l->text[id];
        *len = l->text_len[id];
        if ((prev < 0 || prev == l->bos) && *len > 0 && t[0] == ' ') {
            t++;
            (*len)--;
        }
        return t;
    }
    const char *piece = l->vocab[id];
    // After BOS, SentencePiece's decoder drops the leading space (llama2.c PR #89).
    if (prev == 1 && piece[0] == ' ') piece++;
    // Byte-fallback pieces look like "<0x0A>": print the byte itself.
    unsigned char byte_val;
    if (sscanf(piece, "<0x%02hhX>", &byte_val) == 1) {
        *len = 1;
        return &l->byte_pieces[2 * byte_val];
    }
    *len = strlen(piece);
    return piece;
}

const char *l2c_piece(const l2c_tok *l, int id) { return l->vocab[id]; }

int l2c_is_spm(const l2c_tok *l) { return l->spm; }
