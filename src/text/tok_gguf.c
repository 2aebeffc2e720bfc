// tok_gguf: the tokenizer a GGUF file's metadata describes (llama.cpp keys):
//   tokenizer.ggml.model       "gpt2": byte-level BPE (tok_gpt2.c) from
//   tokenizer.ggml.tokens      the tokens (byte-to-unicode alphabet)
//   tokenizer.ggml.merges      and merges ("left right", in rank order)
//   tokenizer.ggml.pre         the pre-tokenization regex (below)
//   tokenizer.ggml.token_type  3 control / 4 user-defined: matched whole
//   tokenizer.ggml.{bos,eos}_token_id, tokenizer.ggml.add_bos_token
// What it encodes is what Hugging Face transformers builds from the same
// metadata (integrations/gguf/gguf_tokenizer_mapping.py), the reference.
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
    if (tokens->n < 256 || tokens->n > (1u << 24) || merges->n > (1u << 24)) {
        ls_fail("%s: key 'tokenizer.ggml.tokens': expected 256..16777216 tokens with at most 16777216 merges, "
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
    t->gpt2 = g;
    return t;
}

tokenizer *tok_from_gguf(const gguf_file *f, const char *pre) {
    gguf_str model;
    if (gguf_get_string(f, "tokenizer.ggml.model", &model)) return NULL;
    if (gguf_str_eq(model, "gpt2")) return build_gpt2(f, pre);
    ls_fail("%s: key 'tokenizer.ggml.model': expected \"gpt2\" (byte-level BPE), found \"%.*s\"", f->path,
            (int)(model.len > 64 ? 64 : model.len), model.ptr);
    return NULL;
}

tokenizer *tok_load_gguf(const char *path, const char *pre) {
    gguf_file f;
    if (gguf_open(&f, path)) return NULL;
    tokenizer *t = tok_from_gguf(&f, pre);
    gguf_close(&f);
    return t;
}
