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

void l2c_encode(const l2c_tok *l, const char *text, int bos, int dummy_prefix, tok_ids *out) {
    tok_ids v = {0};
    if (bos) tok_ids_push(&v, 1);
    if (dummy_prefix && text[0] != '\0' && l->space_id >= 0) tok_ids_push(&v, l->space_id);

    // UTF-8 characters (run.c: a lead byte and up to 3 continuation bytes);
    // a character that is not a piece becomes its bytes' fallback ids.
    char *buf = ls_malloc(2 * (size_t)l->max_token_length + 8);
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

    int n = v.n;
    int *id = v.ids, *next = ls_malloc((size_t)(n + 1) * sizeof(int)), *prev = ls_malloc((size_t)(n + 1) * sizeof(int));
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
    free(v.ids);
}

// ----------------------------------------------------------------------------
// decode

const char *l2c_decode(const l2c_tok *l, int prev, int id, size_t *len) {
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
