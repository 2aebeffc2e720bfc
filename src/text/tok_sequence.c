// tok_sequence: texts and text pairs as a model takes them -- special
// tokens, token types, longest-first truncation and padding, as Hugging
// Face's tokenizers library builds them (post-processor + truncation).
#include "text/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void tok_encoding_free(tok_encoding *e) {
    if (!e) return;
    free(e->ids);
    free(e->type_ids);
    free(e->attention_mask);
    memset(e, 0, sizeof *e);
}

// The special tokens around a single text or a pair: ids before a, between
// a and b, after b (or after a for a single text). Returns the total count,
// or -1 if the tokenizer has no pair form.
typedef struct {
    int pre[2], mid[2], post[2];
    int n_pre, n_mid, n_post;
} template_ids;

static int template_for(const tokenizer *t, int pair, template_ids *tp) {
    memset(tp, 0, sizeof *tp);
    switch (t->kind) {
    case TOK_WORDPIECE:   // [CLS] a [SEP] (b [SEP])
        tp->pre[tp->n_pre++] = t->bos;
        if (pair) tp->mid[tp->n_mid++] = t->eos;
        tp->post[tp->n_post++] = t->eos;
        break;
    case TOK_ROBERTA:     // <s> a </s> (</s> b </s>)
        tp->pre[tp->n_pre++] = t->bos;
        if (pair) { tp->mid[tp->n_mid++] = t->eos; tp->mid[tp->n_mid++] = t->eos; }
        tp->post[tp->n_post++] = t->eos;
        break;
    case TOK_LLAMA2C:   // BOS, if any, comes with the text (llama2c merges across it)
    case TOK_BYTE:
    case TOK_GPT2:
        if (pair) return -1;
        break;
    }
    return tp->n_pre + tp->n_mid + tp->n_post;
}

// HF's longest_first for a pair (tokenizers, utils/truncation.rs): budget m
// for both texts together; n1, n2 are cut down in place.
static void truncate_pair(int *n1, int *n2, int m) {
    if (*n1 + *n2 <= m) return;
    int a = *n1, b = *n2, swap = a > b;
    if (swap) { int x = a; a = b; b = x; }   // a: the shorter
    if (a > m) b = a;
    else b = a > m - a ? a : m - a;
    if (a + b > m) {
        a = m / 2;
        b = a + m % 2;
    }
    if (swap) { int x = a; a = b; b = x; }
    if (a < *n1) *n1 = a;
    if (b < *n2) *n2 = b;
}

static void put(tok_encoding *e, int id, int type, int mask) {
    e->ids[e->n] = id;
    e->type_ids[e->n] = type;
    e->attention_mask[e->n] = mask;
    e->n++;
}

int tok_encode_sequence(const tokenizer *t, const char *a, const char *b, const tok_sequence_opts *o,
                        tok_encoding *out) {
    memset(out, 0, sizeof *out);
    if (b && !b[0]) b = NULL;   // transformers treats an empty second text as none
    template_ids tp;
    int n_special = o->special ? template_for(t, b != NULL, &tp) : 0;
    if (!o->special) memset(&tp, 0, sizeof tp);
    if (n_special < 0)
        return ls_fail("tokenizer: expected a single text, found a pair (this tokenizer has no sentence-pair form)");
    if (o->max_length > 0 && o->max_length < n_special)
        return ls_fail("tokenizer: max_length %d: expected at least the %d special tokens", o->max_length, n_special);
    if (o->pad && o->max_length > 0 && t->pad < 0)
        return ls_fail("tokenizer: padding requested, but the tokenizer has no padding token");
    int na = 0, nb = 0;
    // A text of its own (llama2c: with its dummy prefix); the BOS of a
    // single-text tokenizer is encoded with it, so truncation keeps it.
    int *ia = tok_encode(t, a, o->special && t->add_bos, 0, &na), *ib = NULL;
    if (b) ib = tok_encode_continuation(t, b, &nb);
    if (o->max_length > 0) {
        int m = o->max_length - n_special;
        if (b) truncate_pair(&na, &nb, m);
        else if (na > m) na = m;
    }
    int total = n_special + na + nb;
    int len = o->pad && o->max_length > total ? o->max_length : total;
    size_t bytes = (size_t)(len > 0 ? len : 1) * sizeof(int);
    out->ids = ls_malloc(bytes);
    out->type_ids = ls_malloc(bytes);
    out->attention_mask = ls_malloc(bytes);
    for (int i = 0; i < tp.n_pre; i++) put(out, tp.pre[i], 0, 1);
    for (int i = 0; i < na; i++) put(out, ia[i], 0, 1);
    for (int i = 0; i < tp.n_mid; i++) put(out, tp.mid[i], 0, 1);
    int type_b = t->kind == TOK_WORDPIECE && o->special;
    for (int i = 0; i < nb; i++) put(out, ib[i], type_b, 1);
    for (int i = 0; i < tp.n_post; i++) put(out, tp.post[i], b ? type_b : 0, 1);
    while (out->n < len) put(out, t->pad, 0, 0);
    free(ia);
    free(ib);
    return 0;
}
