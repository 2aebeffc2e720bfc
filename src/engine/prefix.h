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
// This file is the first step: the attention op pair with a prefix, on host
// memory (the CPU backend's), finite-difference checked
// (tests/engine/test_ops_grad.c). The model, the training method and PEFT
// export are to follow (ARCHITECTURE.md, "Training methods").
#ifndef LS_ENGINE_PREFIX_H
#define LS_ENGINE_PREFIX_H

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
