// tok_gguf: the tokenizer a GGUF file's metadata describes (llama.cpp keys):
//   tokenizer.ggml.model       "gpt2": byte-level BPE (tok_gpt2.c) from
//   tokenizer.ggml.tokens      the tokens (byte-to-unicode alphabet)
//   tokenizer.ggml.merges      and merges ("left right", in rank order)
//   tokenizer.ggml.pre         the pre-tokenization regex (below)
//                              "llama": SentencePiece (tok_llama2c.c) from
//   tokenizer.ggml.scores      the tokens' scores, byte fallback to <0xXX>
//   tokenizer.ggml.add_space_prefix
//   tokenizer.ggml.token_type  3 control / 4 user-defined: matched whole;
//                              6 byte pieces
//   tokenizer.ggml.{bos,eos,unknown}_token_id, tokenizer.ggml.add_bos_token
// What it encodes is what Hugging Face transformers builds from the same
// metadata (integrations/gguf/gguf_tokenizer_mapping.py), the reference.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/gguf.h"
#include "text/tok_internal.h"

// tokenizer.ggml.pre names and the regex each means (llama.cpp's llama-vocab.cpp
// and transformers' GGUF_PRE_TOKENIZER_SPLITS agree on them):
//   gpt2 (and no key): GPT-2's regex
//   smollm: ASCII digits one by one, then GPT-2's regex (SmolLM's Digits +
//           ByteLevel pre-tokenizer)
//   llama-bpe and its aliases: Llama 3's regex, numbers in runs of 1..3
//   qwen2 and its aliases: the same with single digits
static const struct {
    const char *name;
    gpt2_pre pre;
} PRE_NAMES[] = {
    {"gpt2", GPT2_PRE_GPT2},        {"default", GPT2_PRE_GPT2},       {"smollm", GPT2_PRE_SMOLLM},
    {"llama-bpe", GPT2_PRE_LLAMA3}, {"llama3", GPT2_PRE_LLAMA3},      {"llama-v3", GPT2_PRE_LLAMA3},
    {"smaug-bpe", GPT2_PRE_LLAMA3}, {"dbrx", GPT2_PRE_LLAMA3},        {"falcon3", GPT2_PRE_LLAMA3},
    {"pixtral", GPT2_PRE_LLAMA3},   {"qwen2", GPT2_PRE_QWEN2},        {"deepseek-r1-qwen", GPT2_PRE_QWEN2},
};
#define N_PRE (int)(sizeof PRE_NAMES / sizeof PRE_NAMES[0])

static int pre_by_name(gguf_str name, const char *path, gpt2_pre *out) {
    for (int i = 0; i < N_PRE; i++)
        if (gguf_str_eq(name, PRE_NAMES[i].name)) {
            *out = PRE_NAMES[i].pre;
            return 0;
        }
    return ls_fail("%s: key 'tokenizer.ggml.pre': expected gpt2, smollm, llama-bpe (llama3, llama-v3, smaug-bpe, "
                   "dbrx, falcon3, pixtral) or qwen2 (deepseek-r1-qwen), found \"%.*s\"", path,
                   (int)(name.len > 64 ? 64 : name.len), name.ptr);
}

// BOS / EOS ids: the key's value, which must name a token; -1 when absent.
static int special_id(const gguf_file *f, const char *key, int n, int *out) {
    int64_t v = -1;
    if (gguf_find(f, key) && gguf_get_int(f, key, 0, n - 1, &v)) return -1;
    *out = (int)v;
    return 0;
}

// Control (3) and user-defined (4) tokens written in the byte alphabet are
// matched whole, by their text, as transformers adds them.
static int add_specials(const gguf_file *f, gpt2_tok *g, const gguf_kv *tokens) {
    const gguf_kv *types;
    if (!gguf_find(f, "tokenizer.ggml.token_type")) return 0;
    if (gguf_get_array(f, "tokenizer.ggml.token_type", GGUF_INT64, &types)) return -1;
    if (types->n != tokens->n)
        return ls_fail("%s: key 'tokenizer.ggml.token_type': expected %llu entries (one per token), found %llu",
                       f->path, (unsigned long long)tokens->n, (unsigned long long)types->n);
    for (uint64_t i = 0; i < types->n; i++) {
        int64_t ty = gguf_array_int(types, i);
        gguf_str s = tokens->strs[i];
        if ((ty == 3 || ty == 4) && gpt2_text_in_alphabet(s.ptr, s.len)) gpt2_add_special(g, (int)i, s.ptr, s.len);
    }
    return 0;
}

static tokenizer *build_gpt2(const gguf_file *f, const char *pre_name) {
    const gguf_kv *tokens, *merges;
    if (gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_STRING, &tokens) ||
        gguf_get_array(f, "tokenizer.ggml.merges", GGUF_STRING, &merges))
        return NULL;
    if (tokens->n < 1 || tokens->n > (1u << 24) || merges->n > (1u << 24)) {
        ls_fail("%s: key 'tokenizer.ggml.tokens': expected 1..16777216 tokens with at most 16777216 merges, "
                "found %llu tokens, %llu merges", f->path, (unsigned long long)tokens->n,
                (unsigned long long)merges->n);
        return NULL;
    }
    gpt2_pre pre = GPT2_PRE_GPT2;
    gguf_str name;
    if (pre_name) {
        name.ptr = pre_name;
        name.len = strlen(pre_name);
        if (pre_by_name(name, f->path, &pre)) return NULL;
    } else if (gguf_find(f, "tokenizer.ggml.pre")) {
        if (gguf_get_string(f, "tokenizer.ggml.pre", &name) || pre_by_name(name, f->path, &pre)) return NULL;
    }
    int n = (int)tokens->n, bos, eos, add_bos = 0;
    if (special_id(f, "tokenizer.ggml.bos_token_id", n, &bos) || special_id(f, "tokenizer.ggml.eos_token_id", n, &eos))
        return NULL;
    if (gguf_find(f, "tokenizer.ggml.add_bos_token") && gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos))
        return NULL;
    gpt2_tok *g = gpt2_build(n, tokens->strs, (int)merges->n, merges->strs, f->path);
    if (!g) return NULL;
    gpt2_set_pre(g, pre);
    if (add_specials(f, g, tokens)) {
        gpt2_free(g);
        return NULL;
    }
    tokenizer *t = ls_calloc(1, sizeof *t);
    t->kind = TOK_GPT2;
    t->vocab_size = n;
    t->bos = add_bos ? bos : -1; // a model that does not start with BOS has none to add (SmolLM2)
    t->eos = eos;
    t->add_bos = add_bos;
    if (special_id(f, "tokenizer.ggml.padding_token_id", n, &t->pad) ||
        special_id(f, "tokenizer.ggml.unknown_token_id", n, &t->unk)) {
        gpt2_free(g);
        free(t);
        return NULL;
    }
    t->gpt2 = g;
    return t;
}

// Numeric per-token arrays (scores, types) as plain arrays of n; NULL if the key is absent.
static int per_token(const gguf_file *f, const char *key, gguf_type elem, uint64_t n, void **out) {
    const gguf_kv *kv;
    *out = NULL;
    if (!gguf_find(f, key)) return 0;
    if (gguf_get_array(f, key, elem, &kv)) return -1;
    if (kv->n != n)
        return ls_fail("%s: key '%s': expected %llu entries (one per token), found %llu", f->path, key,
                       (unsigned long long)n, (unsigned long long)kv->n);
    if (elem == GGUF_FLOAT64) {
        float *x = ls_malloc((size_t)(n ? n : 1) * sizeof(float));
        for (uint64_t i = 0; i < n; i++) {
            x[i] = (float)gguf_array_float(kv, i);
            if (!isfinite(x[i])) {
                free(x);
                return ls_fail("%s: key '%s': entry %llu is not a finite float32", f->path, key,
                               (unsigned long long)i);
            }
        }
        *out = x;
    } else {
        int *x = ls_malloc((size_t)(n ? n : 1) * sizeof(int));
        for (uint64_t i = 0; i < n; i++) {
            int64_t v = gguf_array_int(kv, i);
            x[i] = v < 0 || v > 7 ? 0 : (int)v; // llama.cpp's types are 1..6; others act as normal
        }
        *out = x;
    }
    return 0;
}

// tokenizer.ggml.model "llama": SentencePiece pieces with scores and byte fallback.
static tokenizer *build_llama(const gguf_file *f) {
    const gguf_kv *tokens;
    if (gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_STRING, &tokens)) return NULL;
    if (tokens->n < 1 || tokens->n > (1u << 24)) {
        ls_fail("%s: key 'tokenizer.ggml.tokens': expected 1..16777216 tokens, found %llu", f->path,
                (unsigned long long)tokens->n);
        return NULL;
    }
    int n = (int)tokens->n, bos, eos, unk = 0, add_bos = 1, add_prefix = 1;
    float *scores = NULL;
    int *types = NULL;
    tokenizer *t = NULL;
    if (special_id(f, "tokenizer.ggml.bos_token_id", n, &bos) || special_id(f, "tokenizer.ggml.eos_token_id", n, &eos) ||
        special_id(f, "tokenizer.ggml.unknown_token_id", n, &unk) ||
        (gguf_find(f, "tokenizer.ggml.add_bos_token") && gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos)) ||
        (gguf_find(f, "tokenizer.ggml.add_space_prefix") &&
         gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &add_prefix)) ||
        per_token(f, "tokenizer.ggml.scores", GGUF_FLOAT64, tokens->n, (void **)&scores) ||
        per_token(f, "tokenizer.ggml.token_type", GGUF_INT64, tokens->n, (void **)&types))
        goto done;
    if (!gguf_find(f, "tokenizer.ggml.unknown_token_id")) unk = 0;
    l2c_spec spec = {n, tokens->strs, scores, types, add_bos ? bos : -1, unk < 0 ? 0 : unk, add_prefix};
    l2c_tok *l = l2c_build(&spec, f->path);
    if (!l) goto done;
    t = ls_calloc(1, sizeof *t);
    t->kind = TOK_LLAMA2C;
    t->vocab_size = n;
    t->bos = add_bos ? bos : -1;
    t->eos = eos;
    t->add_bos = add_bos;
    t->unk = unk;
    if (special_id(f, "tokenizer.ggml.padding_token_id", n, &t->pad)) {
        l2c_free(l);
        free(t);
        t = NULL;
        goto done;
    }
    t->l2c = l;
done:
    free(scores);
    free(types);
    return t;
}

tokenizer *tok_from_gguf(const gguf_file *f, const char *pre) {
    gguf_str model;
    if (gguf_get_string(f, "tokenizer.ggml.model", &model)) return NULL;
    if (gguf_str_eq(model, "gpt2")) return build_gpt2(f, pre);
    if (gguf_str_eq(model, "llama")) return build_llama(f);
    ls_fail("%s: key 'tokenizer.ggml.model': expected \"gpt2\" (byte-level BPE) or \"llama\" (SentencePiece), "
            "found \"%.*s\"", f->path, (int)(model.len > 64 ? 64 : model.len), model.ptr);
    return NULL;
}

tokenizer *tok_load_gguf(const char *path, const char *pre) {
    gguf_file f;
    if (gguf_open(&f, path)) return NULL;
    tokenizer *t = tok_from_gguf(&f, pre);
    gguf_close(&f);
    return t;
}
