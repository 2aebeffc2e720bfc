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
// Encoders (BERT, RoBERTa) as PEFT's SEQ_CLS prefix tuning runs them on
// transformers: every query attends to the l_p prefix entries (mask 1) and
// to the sequence's kept keys; the real tokens sit at positions l_p .. (the
// cache's length offsets BERT's position ids too); the pooler reads the
// sequence's first token ([CLS]). Always the composed path, over the
// backend's bidirectional attention with a (B, l_p + T) key mask.
//
// Here: the attention op pair with a prefix, on host memory (the CPU
// backend's), finite-difference checked (tests/engine/test_ops_grad.c), and
// the prefix attached to a decoder or an encoder on either backend (the CUDA backend through
// the composed path: its own attention over [prefix; sequence], prefix_layer_*;
// model.c: m->prefix; positions offset by
// l_p as with transformers, for GPT-2's learned positions and Llama's RoPE;
// in KV-cache decoding the prefix fills cache slots 0..l_p-1),
// checked against PEFT (tests/train/test_methods.c); trained by `train
// --method prefix-layer`, saved in PEFT's layout (export_prefix_peft) and
// attached again for eval (import_prefix, train/).
//
// Memory: parameters and gradients in one buffer each, (L, 2, l_p, NKV, HS):
// layer l's keys, then its values, in the backend's memory; the forward saves
// each layer's attention probabilities (B, NH, T, l_p + T) (CPU), or the
// backend attention's state for l_p + T positions (composed path).
#ifndef LS_ENGINE_PREFIX_H
#define LS_ENGINE_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"

struct ls_model;

typedef struct ls_prefix {
    int P, L, NH, NKV, HS;  // P = l_p
    size_t per_layer;       // 2 P NKV HS
    size_t n_params;
    const ls_backend *be;   // the model's backend: params and grads live in its memory
    float *params, *grads;
    // composed 0: the host op pair below (the CPU backend); 1: the backend's
    // own causal attention over [prefix; sequence] (any backend, prefix_layer_*)
    int composed;
    int bidir;              // 1: an encoder's (bidirectional, masked) attention; always composed
    int *keymask2;          // bidir: (Bcap, P + Tcap) key mask, backend memory (prefix_set_keymask)
    size_t att_cap;         // floats of one layer's saved attention state
    float *att;             // (L, att_cap): composed 0, host; 1, backend memory
    float *dp;              // composed 0: (P + Tcap) scratch
    float *qkv2, *dqkv2;    // composed 1: (Bcap, P + Tcap, NH + 2 NKV, HS)
    float *out2, *dout2;    // composed 1: (Bcap, P + Tcap, NH, HS)
    float *datt2;           // composed 1: the backend attention's backward scratch
    int Bcap, Tcap;
} ls_prefix;

// Allocates l_p = P prefix vectors per layer on m (in its backend's memory),
// drawn N(0, 1) from seed (as PEFT's nn.Embedding), and attaches them
// (m->prefix). The CPU backend runs the host op pair below; any other backend
// the composed path (prefix_layer_forward), as does any encoder. Returns 0,
// or -1 with ls_error() for P < 1 or an encoder with grouped key-value heads.
int prefix_build(ls_prefix *pf, struct ls_model *m, int P, uint64_t seed);
// Chooses the path (composed 1 or 0; 0 needs the CPU backend) and resizes the
// buffers for the model's reservation. For tests: both paths on the CPU backend.
void prefix_set_composed(ls_prefix *pf, struct ls_model *m, int composed);
// Li & Liang's initialisation from real words (their Sec. 7.2): the prefix
// becomes the keys and values (after RoPE) that the model itself computes for
// tokens[0..P) at positions 0..P-1, i.e. the KV cache of that text, so that
// the prefixed model starts as the base model with the text as its prompt
// (a decoder exactly; an encoder's text does not see the sequence).
// Runs one forward of (1, P) on m with the prefix detached (m must have room
// for it: model_reserve). Returns 0, or -1 with ls_error() for a bad token.
int prefix_init_from_tokens(ls_prefix *pf, struct ls_model *m, const int *tokens);
// An encoder's key mask for the next forward: (B, P + T), 1 for the prefix
// entries, then keymask (B, T) (NULL: all kept).
void prefix_set_keymask(ls_prefix *pf, const int *keymask, int B, int T);
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

// PEFT's prompt_embeddings (P, 2 L NKV HS), host memory, <-> buf, a backend
// buffer in this file's layout (pf->params or pf->grads); to_peft 1: buf ->
// peft, 0: peft -> buf.
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

// Layer l's attention with the prefix, on the model's backend:
// qkv (B,T,NH+2NKV,HS) -> out (B,T,NH,HS), saving what the backward needs.
// Composed: the prefix's keys and values become rows 0..P-1 of each
// sequence of a (B, P+T) qkv (their queries 0), the backend's causal
// attention runs over it (query P+t sees the P prefix rows and rows P..P+t:
// exactly the prefix op's keys) and rows P.. are the output.
void prefix_layer_forward(ls_prefix *pf, int l, float *out, const float *qkv, int B, int T);
// dout (B,T,NH,HS) -> dqkv (B,T,NH+2NKV,HS) overwritten; layer l's prefix
// gradients accumulate, summed over the batch in batch order. Composed: the
// prefix rows get dout 0, so their queries add nothing to any key or value.
void prefix_layer_backward(ls_prefix *pf, int l, float *dqkv, const float *dout, const float *qkv, int B, int T);

#endif
