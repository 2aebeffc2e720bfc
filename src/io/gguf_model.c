// gguf_model: a llama-architecture GGUF file as a base checkpoint.
//
// The configuration comes from the `llama.*` metadata, the weights are the
// dequantized tensors (io/quant.h) under the canonical HF names of
// io/checkpoint.h:
//   token_embd.weight           model.embed_tokens.weight      (vocab, dim)
//   blk.N.attn_norm.weight      model.layers.N.input_layernorm.weight
//   blk.N.attn_{q,k,v,output}   model.layers.N.self_attn.{q,k,v,o}_proj.weight
//   blk.N.ffn_norm.weight       model.layers.N.post_attention_layernorm.weight
//   blk.N.ffn_{gate,up,down}    model.layers.N.mlp.{gate,up,down}_proj.weight
//   output_norm.weight          model.norm.weight
//   output.weight               lm_head.weight (absent: tied to the embedding)
// llama.cpp's converter permutes the rows of Wq and Wk so that its RoPE can
// rotate consecutive pairs; the permutation is undone here (as transformers
// does when it loads a GGUF), so the model is HF's: split-halves RoPE.
#include "io/gguf_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/gguf.h"
#include "io/quant.h"

// ----------------------------------------------------------------------------
// configuration

static int read_int(const gguf_file *f, const char *key, int64_t hi, int *out) {
    int64_t v;
    if (gguf_get_int(f, key, 1, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

// The `llama.*` hyper-parameters; the vocabulary size is the embedding's rows.
static int read_config(const gguf_file *f, ls_model_config *c) {
    memset(c, 0, sizeof *c);
    gguf_str arch;
    if (gguf_get_string(f, "general.architecture", &arch)) return -1;
    if (!gguf_str_eq(arch, "llama"))
        return ls_fail("%s: key 'general.architecture': expected \"llama\", found \"%.*s\"", f->path,
                       (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    c->family = LS_FAMILY_LLAMA;
    double eps, theta = 10000.0;
    if (read_int(f, "llama.embedding_length", CKPT_MAX_DIM, &c->dim) ||
        read_int(f, "llama.feed_forward_length", CKPT_MAX_HIDDEN, &c->hidden_dim) ||
        read_int(f, "llama.block_count", CKPT_MAX_LAYERS, &c->n_layers) ||
        read_int(f, "llama.attention.head_count", CKPT_MAX_HEADS, &c->n_heads) ||
        read_int(f, "llama.context_length", CKPT_MAX_POSITIONS, &c->max_seq_len) ||
        gguf_get_float(f, "llama.attention.layer_norm_rms_epsilon", 1e-12, 0.5, &eps))
        return -1;
    c->n_kv_heads = c->n_heads;
    if (gguf_find(f, "llama.attention.head_count_kv") &&
        read_int(f, "llama.attention.head_count_kv", CKPT_MAX_HEADS, &c->n_kv_heads))
        return -1;
    if (gguf_find(f, "llama.rope.freq_base") && gguf_get_float(f, "llama.rope.freq_base", 1e-3, 1e12, &theta))
        return -1;
    c->norm_eps = (float)eps;
    c->rope_theta = (float)theta;
    c->rope_interleaved = 0; // after the un-permutation below
    const gguf_kv *scaling = gguf_find(f, "llama.rope.scaling.type");
    if (scaling && !(scaling->type == GGUF_STRING && gguf_str_eq(scaling->strs[0], "none")))
        return ls_fail("%s: key 'llama.rope.scaling.type': expected \"none\" (RoPE scaling is not supported)",
                       f->path);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) return ls_fail("%s: missing tensor 'token_embd.weight' (expected the token embedding)", f->path);
    if (emb->ndim != 2 || emb->ne[1] > CKPT_MAX_VOCAB)
        return ls_fail("%s: tensor 'token_embd.weight': expected (vocab <= %d, dim) rows x cols", f->path,
                       CKPT_MAX_VOCAB);
    c->vocab_size = (int)emb->ne[1];
    int64_t v;
    if (gguf_find(f, "llama.vocab_size") && gguf_get_int(f, "llama.vocab_size", 1, CKPT_MAX_VOCAB, &v)) return -1;
    if (gguf_find(f, "llama.vocab_size") && v != c->vocab_size)
        return ls_fail("%s: key 'llama.vocab_size': expected %d (the rows of token_embd.weight), found %lld", f->path,
                       c->vocab_size, (long long)v);
    c->tied_embeddings = gguf_find_tensor(f, "output.weight") == NULL;
    if (ckpt_validate_config(c, f->path)) return -1;
    if (gguf_find(f, "llama.rope.dimension_count")) {
        int rot;
        if (read_int(f, "llama.rope.dimension_count", CKPT_MAX_DIM, &rot)) return -1;
        if (rot != c->dim / c->n_heads)
            return ls_fail("%s: key 'llama.rope.dimension_count': expected the head size %d (partial RoPE is not "
                           "supported), found %d", f->path, c->dim / c->n_heads, rot);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// tensors

// Undoes llama.cpp's permutation of the rows of Wq / Wk (rows x cols, n_head
// heads of 2 * half rows): GGUF row h*2*half + 2*j + i is HF row h*2*half + i*half + j.
static void unpermute_rows(float *w, int64_t rows, int64_t cols, int n_head) {
    int64_t half = rows / n_head / 2;
    float *tmp = ls_malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < half; j++)
                memcpy(tmp + ((h * 2 + i) * half + j) * cols, w + (h * 2 * half + 2 * j + i) * cols,
                       (size_t)cols * sizeof(float));
    memcpy(w, tmp, (size_t)(rows * cols) * sizeof(float));
    free(tmp);
}

// The GGUF name of canonical per-layer tensor t of layer i.
static void gguf_layer_name(const arch_tensor *t, int layer, char *out, size_t size) {
    const char *base = t->kind == ARCH_T_NORM1_W   ? "attn_norm"
                       : t->kind == ARCH_T_NORM2_W ? "ffn_norm"
                                                   : arch_module_by_role(LS_FAMILY_LLAMA, t->role)->gguf;
    snprintf(out, size, "blk.%d.%s.weight", layer, base);
}

// Loads GGUF tensor `gname` as canonical tensor `name` of shape (d0) or (d0, d1).
static int load_one(const gguf_file *f, const char *gname, const char *name, int ndim, int64_t d0, int64_t d1,
                    int permute_heads, ls_tensor *out) {
    const gguf_tensor *t = gguf_find_tensor(f, gname);
    if (!t) return ls_fail("%s: missing tensor '%s' (expected by a llama config)", f->path, gname);
    int ok = ndim == 1 ? t->ndim == 1 && t->ne[0] == d0 : t->ndim == 2 && t->ne[0] == d1 && t->ne[1] == d0;
    if (!ok) {
        if (ndim == 1)
            return ls_fail("%s: tensor '%s': expected ne (%lld), found %d dims (%lld, %lld)", f->path, gname,
                           (long long)d0, t->ndim, (long long)t->ne[0], (long long)t->ne[1]);
        return ls_fail("%s: tensor '%s': expected ne (%lld, %lld) (%lld rows of %lld), found %d dims (%lld, %lld)",
                       f->path, gname, (long long)d1, (long long)d0, (long long)d0, (long long)d1, t->ndim,
                       (long long)t->ne[0], (long long)t->ne[1]);
    }
    float *x = gguf_load_float(f, t);
    if (!x) return -1;
    if (permute_heads) unpermute_rows(x, d0, d1, permute_heads);
    memset(out, 0, sizeof *out);
    out->name = ls_strdup(name);
    out->ndim = ndim;
    out->shape[0] = d0;
    out->shape[1] = ndim > 1 ? d1 : 1;
    out->numel = d0 * out->shape[1];
    out->data = x;
    return 0;
}

// Every canonical tensor in the registry's order: embedding, layers, final
// norm, head. Tensors of the file that none of them uses are refused.
static int load_tensors(const gguf_file *f, ls_checkpoint *ck) {
    const ls_model_config *c = &ck->config;
    const arch_family *a = arch_family_of(LS_FAMILY_LLAMA);
    int n = 2 + c->n_layers * a->n_layer_tensors + !c->tied_embeddings;
    ck->tensors = ls_calloc((size_t)n, sizeof *ck->tensors);
    int64_t d = c->dim, v = c->vocab_size;
    if (load_one(f, "token_embd.weight", a->tok_embedding, 2, v, d, 0, &ck->tensors[ck->n_tensors])) return -1;
    ck->n_tensors++;
    for (int i = 0; i < c->n_layers; i++)
        for (int k = 0; k < a->n_layer_tensors; k++) {
            const arch_tensor *t = &a->layer_tensors[k];
            char gname[64], name[160];
            int ndim;
            int64_t d0, d1;
            arch_tensor_shape(LS_FAMILY_LLAMA, t, c, &ndim, &d0, &d1);
            gguf_layer_name(t, i, gname, sizeof gname);
            snprintf(name, sizeof name, "%s.%d.%s", a->layer_prefix, i, t->suffix);
            int heads = t->kind != ARCH_T_WEIGHT ? 0
                        : t->role == ARCH_Q      ? c->n_heads
                        : t->role == ARCH_K      ? c->n_kv_heads
                                                 : 0;
            if (load_one(f, gname, name, ndim, d0, d1, heads, &ck->tensors[ck->n_tensors])) return -1;
            ck->n_tensors++;
        }
    if (load_one(f, "output_norm.weight", a->final_norm_w, 1, d, 0, 0, &ck->tensors[ck->n_tensors])) return -1;
    ck->n_tensors++;
    if (!c->tied_embeddings) {
        if (load_one(f, "output.weight", a->lm_head, 2, v, d, 0, &ck->tensors[ck->n_tensors])) return -1;
        ck->n_tensors++;
    }
    if (f->n_tensors != ck->n_tensors) // every name used is distinct, so a count mismatch means extras
        for (int i = 0; i < f->n_tensors; i++) {
            const char *name = f->tensors[i].name;
            int layer, used = !strcmp(name, "token_embd.weight") || !strcmp(name, "output_norm.weight") ||
                              !strcmp(name, "output.weight");
            char rest[64];
            if (!used && sscanf(name, "blk.%d.%63s", &layer, rest) == 2 && layer >= 0 && layer < c->n_layers)
                for (int k = 0; k < a->n_layer_tensors && !used; k++) {
                    char gname[64];
                    gguf_layer_name(&a->layer_tensors[k], layer, gname, sizeof gname);
                    used = !strcmp(gname, name);
                }
            if (!used)
                return ls_fail("%s: unknown tensor '%s' (not part of a llama model with this config)", f->path,
                               name);
        }
    return 0;
}

// ----------------------------------------------------------------------------

int gguf_read_checkpoint(ls_checkpoint *ck, const gguf_file *f) {
    memset(ck, 0, sizeof *ck);
    if (read_config(f, &ck->config) || load_tensors(f, ck)) {
        ckpt_free(ck);
        return -1;
    }
    ck->path = ls_strdup(f->path);
    return 0;
}

int gguf_load_checkpoint(ls_checkpoint *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    gguf_file f;
    if (gguf_open(&f, path)) return -1;
    int rc = gguf_read_checkpoint(ck, &f);
    gguf_close(&f);
    return rc;
}
