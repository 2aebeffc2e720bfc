// prefix: prefix-layer tuning (Li & Liang 2021; the paper's PreLayer baseline,
// Tables 2, 3) — l_p trainable key and value vectors per layer, prepended to
// attention's keys and values, so that every query also attends to them.
//
// PEFT's PREFIX_TUNING (prefix_projection false) keeps them as one tensor
// `prompt_embeddings` (l_p, 2 L C) in adapter_model.safetensors (a flat key,
// no base_model prefix; adapter_config: num_virtual_tokens l_p, num_layers L,
// token_dim C, num_attention_heads, num_transformer_submodules 1): row p viewed
// as (2L, NH, HS), entry 2l is layer l's key and 2l+1 its value for virtual
// token p, used as-is (a cache entry: no RoPE applied to it). With
// transformers the real tokens then sit at positions l_p .. l_p+T-1 (the
// cache's length offsets the position ids).
//
// Here: the attention op pair with a prefix, on host memory (the CPU
// backend's), finite-difference checked (tests/engine/test_ops_grad.c), and
// the prefix attached to a decoder (model.c: m->prefix; positions offset by
// l_p as with transformers, for GPT-2's learned positions and Llama's RoPE;
// in KV-cache decoding the prefix fills cache slots 0..l_p-1),
// checked against PEFT (tests/train/test_methods.c); trained by `train
// --method prefix-layer`, saved in PEFT's layout (export_prefix_peft) and
// attached again for eval (import_prefix, train/).
//
// Memory: parameters and gradients in one buffer each, (L, 2, l_p, NKV, HS):
// layer l's keys, then its values; the forward saves each layer's attention
// probabilities (B, NH, T, l_p + T).
#ifndef LS_ENGINE_PREFIX_H
#define LS_ENGINE_PREFIX_H

#include <stddef.h>
#include <stdint.h>

struct ls_model;

typedef struct ls_prefix {
    int P, L, NH, NKV, HS;  // P = l_p
    size_t per_layer;       // 2 P NKV HS
    size_t n_params;
    float *params, *grads;  // host memory (the CPU backend's)
    size_t att_cap;         // floats of one layer's saved probabilities
    float *att;             // (L, att_cap)
    float *dp;              // (P + Tcap) scratch
    int Tcap;
} ls_prefix;

// Allocates l_p = P prefix vectors per layer on m, drawn N(0, 1) from seed (as
// PEFT's nn.Embedding), and attaches them (m->prefix). Returns 0, or -1 with
// ls_error() for P < 1, an encoder, or a backend other than the CPU.
int prefix_build(ls_prefix *pf, struct ls_model *m, int P, uint64_t seed);
// Li & Liang's initialisation from real words (their Sec. 7.2): the prefix
// becomes the keys and values (after RoPE) that the model itself computes for
// tokens[0..P) at positions 0..P-1, i.e. the KV cache of that text, so that
// the prefixed model starts as the base model with the text as its prompt.
// Runs one forward of (1, P) on m with the prefix detached (m must have room
// for it: model_reserve). Returns 0, or -1 with ls_error() for a bad token.
int prefix_init_from_tokens(ls_prefix *pf, struct ls_model *m, const int *tokens);
// Detaches from m and frees.
void prefix_free(ls_prefix *pf, struct ls_model *m);
// Sizes the saved probabilities for (B, T) (model_reserve calls it).
void prefix_reserve(ls_prefix *pf, int B, int T);
void prefix_zero_grad(ls_prefix *pf);
// Layer l's keys and values (P, NKV, HS), and their gradients.
float *prefix_keys(const ls_prefix *pf, int l);
float *prefix_values(const ls_prefix *pf, int l);
float *prefix_dkeys(const ls_prefix *pf, int l);
float *prefix_dvalues(const ls_prefix *pf, int l);

// PEFT's prompt_embeddings (P, 2 L NKV HS) <-> buf, a buffer in this file's
// layout (pf->params or pf->grads); to_peft 1: buf -> peft, 0: peft -> buf.
void prefix_peft_layout(const ls_prefix *pf, float *buf, float *peft, int to_peft);

// Causal attention whose keys and values are the P prefix vectors, then the
// sequence's own: query t of a sequence attends to every prefix position and
// to positions 0..t. Scale 1/sqrt(HS); GQA as attention_forward (query head
// h reads key/value head h / (NH/NKV)).
// qkv (B,T,NH+2*NKV,HS), pk (P,NKV,HS), pv (P,NKV,HS) -> out (B,T,NH,HS);
// att (B,NH,T,P+T) the probabilities (prefix first; 0 above the diagonal).
// P = 0 is causal attention.
void prefix_attention_forward(float *out, float *att, const float *qkv, const float *pk, const float *pv, int B,
                              int T, int P, int NH, int NKV, int HS);

// dout (B,T,NH,HS) -> dqkv (B,T,NH+2*NKV,HS) overwritten; dpk, dpv (P,NKV,HS)
// accumulate (summed over the batch); att from the forward; dp (P+T) scratch.
void prefix_attention_backward(float *dqkv, float *dpk, float *dpv, float *dp, const float *dout, const float *qkv,
                               const float *pk, const float *pv, const float *att, int B, int T, int P, int NH,
                               int NKV, int HS);

#endif
