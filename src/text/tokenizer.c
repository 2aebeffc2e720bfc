// tokenizer: the common interface and the byte tokenizer; the two BPE
// tokenizers live in tok_llama2c.c and tok_gpt2.c.
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void tok_ids_push(tok_ids *v, int id) {
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 64;
        int *p = ls_malloc((size_t)cap * sizeof(int));
        if (v->n) memcpy(p, v->ids, (size_t)v->n * sizeof(int));
        free(v->ids);
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
}

// ----------------------------------------------------------------------------
// build / free

tokenizer *tok_load_llama2c(const char *path, int vocab_size) {
    int n = 0;
    l2c_tok *l = l2c_load(path, vocab_size, &n);
    if (!l) return NULL;
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_LLAMA2C;
    t->vocab_size = n;
    t->bos = 1;   // llama2.c / SentencePiece convention
    t->eos = 2;
    t->l2c = l;
    return t;
}

tokenizer *tok_load_gpt2(const char *encoder_json, const char *vocab_bpe) {
    int n = 0, eot = -1;
    gpt2_tok *g = gpt2_load(encoder_json, vocab_bpe, &n, &eot);
    if (!g) return NULL;
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_GPT2;
    t->vocab_size = n;
    t->bos = eot;
    t->eos = eot;
    t->gpt2 = g;
    return t;
}

tokenizer *tok_byte(int with_bos_eos) {
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_BYTE;
    t->vocab_size = with_bos_eos ? 258 : 256;
    t->bos = with_bos_eos ? 256 : -1;
    t->eos = with_bos_eos ? 257 : -1;
    for (int b = 0; b < 256; b++) t->byte_pieces[2 * b] = (char)b;  // the rest stays "" (calloc)
    return t;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    if (t->l2c) l2c_free(t->l2c);
    if (t->gpt2) gpt2_free(t->gpt2);
    free(t);
}

// ----------------------------------------------------------------------------
// properties

tok_kind tok_type(const tokenizer *t) { return t->kind; }
int tok_vocab_size(const tokenizer *t) { return t->vocab_size; }
int tok_bos(const tokenizer *t) { return t->bos; }
int tok_eos(const tokenizer *t) { return t->eos; }

// ----------------------------------------------------------------------------
// encode / decode

static int *encode(const tokenizer *t, const char *text, int bos, int eos, int start, int *n_tokens) {
    ls_assert(text != NULL);
    tok_ids v = {0};
    switch (t->kind) {
    case TOK_LLAMA2C:
        if (l2c_is_spm(t->l2c)) { // a GGUF SentencePiece vocabulary (tok_gguf.c)
            if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
            l2c_encode_spm(t->l2c, text, start, &v);
            break;
        }
        // BOS takes part in run.c's merge loop, so the llama2c encoder adds it.
        l2c_encode(t->l2c, text, bos && t->bos >= 0, start, &v);
        break;
    case TOK_GPT2:
        if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
        gpt2_encode(t->gpt2, text, 1, &v);
        break;
    case TOK_BYTE:
        if (bos && t->bos >= 0) tok_ids_push(&v, t->bos);
        for (const unsigned char *p = (const unsigned char *)text; *p; p++) tok_ids_push(&v, *p);
        break;
    }
    if (eos && t->eos >= 0) tok_ids_push(&v, t->eos);
    if (!v.ids) v.ids = ls_malloc(sizeof(int));
    *n_tokens = v.n;
    return v.ids;
}

int *tok_encode(const tokenizer *t, const char *text, int bos, int eos, int *n_tokens) {
    return encode(t, text, bos, eos, 1, n_tokens);
}

int *tok_encode_continuation(const tokenizer *t, const char *text, int *n_tokens) {
    return encode(t, text, 0, 0, 0, n_tokens);
}

const char *tok_decode_piece(const tokenizer *t, int prev, int id, size_t *len) {
    size_t dummy;
    if (!len) len = &dummy;
    if (id < 0 || id >= t->vocab_size) { *len = 0; return ""; }
    switch (t->kind) {
    case TOK_LLAMA2C: return l2c_decode(t->l2c, prev, id, len);
    case TOK_GPT2: return gpt2_piece(t->gpt2, id, len);
    case TOK_BYTE: break;
    }
    *len = id < 256 ? 1 : 0;
    return &t->byte_pieces[2 * id];
}

char *tok_decode(const tokenizer *t, int prev, const int *ids, int n, size_t *len) {
    size_t total = 0, cap = 64;
    char *out = ls_malloc(cap);
    for (int i = 0; i < n; i++) {
        size_t k;
        const char *p = tok_decode_piece(t, prev, ids[i], &k);
        if (total + k + 1 > cap) {
            while (total + k + 1 > cap) cap *= 2;
            char *q = ls_malloc(cap);
            memcpy(q, out, total);
            free(out);
            out = q;
        }
        memcpy(out + total, p, k);
        total += k;
        prev = ids[i];
    }
    out[total] = 0;
    if (len) *len = total;
    return out;
}

const char *tok_piece(const tokenizer *t, int id) {
    if (id < 0 || id >= t->vocab_size) return NULL;
    switch (t->kind) {
    case TOK_LLAMA2C: return l2c_piece(t->l2c, id);
    case TOK_GPT2: return gpt2_piece(t->gpt2, id, NULL);
    case TOK_BYTE: break;
    }
    return &t->byte_pieces[2 * id];
}
