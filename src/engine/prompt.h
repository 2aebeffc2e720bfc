// prompt: prefix-embedding tuning (the paper's PreEmbed baseline, Hu et al.
// 2021 Sec. 5.1, Tables 2, 3; Lester et al. 2021's prompt tuning) — l_p
// trainable vectors of width C, "virtual tokens", placed before every input
// sequence at the embedding level; the base stays frozen.
//
// PEFT's PROMPT_TUNING (prompt_tuning_init RANDOM) keeps them as one tensor
// `prompt_embeddings` (l_p, C) in adapter_model.safetensors (a flat key;
// adapter_config: num_virtual_tokens l_p, token_dim C, num_transformer_
// submodules 1). PeftModelForCausalLM concatenates them before the real
// tokens' *word* embeddings (inputs_embeds): the model then runs on
// T' = l_p + T positions, the virtual tokens at positions 0..l_p-1 (GPT-2 adds
// its learned position embeddings 0..l_p-1 to them; llama's RoPE numbers them
// likewise) and the real tokens at l_p..l_p+T-1; the virtual positions carry
// no loss (label -100).
//
// Here the same, inside the model (model.c: m->prompt). The caller keeps
// passing (B, T) tokens; model_forward extends the batch to (B, l_p + T)
// (prompt_extend: placeholder ids, targets -1), the embedding op writes
// prompt[p] (+ wpe[p]) over the placeholders' rows (prompt_embed_forward),
// and the rest of the model runs unchanged, causal attention included. So
// the per-position outputs of a forward (logits, host_losses, host_weights)
// are (B, l_p + T): model_virtual_tokens (model.h) gives the offset. In KV
// decoding the virtual tokens' keys and values fill cache slots 0..l_p-1 when
// a sequence starts (pos 0), as a prefix-layer prefix's do, and token pos
// sits at l_p + pos (model_cache_offset); they do not depend on the sequence
// (causal attention), so prompt_cache_rows computes them once per sequence
// with one forward. Encoders (engine/encoder.c) as PEFT's SEQ_CLS: the
// virtual tokens before [CLS] (keymask 1, type 0, positions from the
// family's offset), the pooler reading the first of them. On either backend
// (the vectors in its memory, the op pair through its copy_rows); not beside
// a prefix-layer prefix.
//
// Memory: parameters and gradients in one buffer each, (l_p, C) in the
// backend's memory — PEFT's layout, row p the embedding of virtual token p;
// the extended batch's host arrays sized by prompt_reserve (nothing allocated
// inside a step).
#ifndef LS_ENGINE_PROMPT_H
#define LS_ENGINE_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"

struct ls_model;

typedef struct ls_prompt {
    int P, C;               // P = l_p
    size_t n_params;        // P C
    const ls_backend *be;   // the model's: params, grads and kv live in its memory
    float *params, *grads;  // (P, C)
    size_t cap;             // cells of the extended batch below
    int *tokens, *targets;  // (B, P + T) the batch model_forward runs
    float *mask;            // (B, P + T)
    int L, KV;              // decoding: layers, NKV HS
    float *kv;              // (L, 2, P, KV) the virtual tokens' keys, values (prompt_cache_rows) or NULL
} ls_prompt;

// Allocates l_p = P virtual token embeddings of width C on m, drawn N(0, 1)
// from seed (as PEFT's nn.Embedding for prompt_tuning_init RANDOM), attaches
// them (m->prompt) and grows m's reservation by P positions. Returns 0, or -1
// with ls_error() for P < 1 (--prefix-len), an encoder, or a prefix-layer
// prefix already attached.
int prompt_build(ls_prompt *pr, struct ls_model *m, int P, uint64_t seed);
// Initialises the virtual tokens as the word embeddings of tokens[0..P) (PEFT's
// prompt_tuning_init TEXT, with the ids given): the prompted model then starts
// as the base model with those tokens before every input. Returns 0, or -1
// with ls_error() for an id outside the vocabulary.
int prompt_init_from_tokens(ls_prompt *pr, struct ls_model *m, const int *tokens);
// Detaches from m and frees.
void prompt_free(ls_prompt *pr, struct ls_model *m);
// Sizes the extended batch for B rows of Tp = P + T positions (model_reserve calls it).
void prompt_reserve(ls_prompt *pr, int B, int Tp);
void prompt_zero_grad(ls_prompt *pr);

// The batch model_forward runs: tokens (B,T) -> (B,P+T) with placeholder id 0
// before each row, targets -1 there (no loss), mask 0 there; targets / mask
// NULL stay NULL. Repoints *tokens, *targets, *mask at pr's arrays and sets
// *T = P + T. Returns 0, or -1 with ls_error() when B (P + T) exceeds the
// reservation.
int prompt_extend(ls_prompt *pr, const int **tokens, const int **targets, const float **mask, int B, int *T);

// The op pair, on backend be's memory (its copy_rows). Rows at positions
// pos0 + t < P are virtual tokens: their word embedding is prompt[pos0 + t].
// prompt (P,C), wpe (>= P, C) or NULL, out (B,T,C) the embeddings of positions
// pos0..pos0+T-1 -> out's virtual rows overwritten with prompt[p] + wpe[p]
// (the other rows untouched). pos0 0: a training batch; pos0 = pos, T 1: decoding.
void prompt_embed_forward(const ls_backend *be, float *out, const float *prompt, const float *wpe, int B, int T,
                          int P, int C, int pos0);
// dout (B,T,C) d loss / d embeddings of positions 0..T-1 -> dprompt (P,C)
// accumulates the sum over the batch (in batch order) of the virtual rows
// (positions 0..P-1).
void prompt_embed_backward(const ls_backend *be, float *dprompt, const float *dout, int B, int T, int P, int C);

// Decoding: the virtual tokens' keys and values at every layer as the KV
// cache holds them (RoPE applied), into pr->kv, by one model_forward of a
// placeholder token after them (m's activations are overwritten; reserves
// (1, 1) if needed). Returns 0 or -1 with ls_error().
int prompt_cache_rows(ls_prompt *pr, struct ls_model *m);
// Layer l's keys and values (P, NKV HS) from the last prompt_cache_rows.
const float *prompt_cache_keys(const ls_prompt *pr, int l);
const float *prompt_cache_values(const ls_prompt *pr, int l);

#endif
