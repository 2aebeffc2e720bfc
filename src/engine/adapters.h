// adapters: bottleneck adapter layers (Houlsby et al. 2019; Lin et al. 2020),
// the paper's Adapter^H and Adapter^L baselines (Tables 1-3).
//
//   adapter(h) = h + W_up act(W_down h + b_down) + b_up
//   W_down (r, C), b_down (r), W_up (C, r), b_up (C); r = the bottleneck size;
//   act = the family's GELU (gpt2: tanh approximation; bert/roberta: erf;
//   llama, which has no GELU of its own: the tanh approximation, as the
//   paper's GPT-2 adapters).
//   W_up and b_up start at zero, so the model starts as the base; W_down is
//   drawn N(0, 0.02^2) (init_range), b_down = 0.
//
// Placement: on a sublayer's output, after its output projection and before
// the residual add (Houlsby's Fig. 2), in both block layouts:
//   decoder (pre-norm gpt2, llama):  x2 = x + A_attn(O(attn(LN1 x)));  x3 = x2 + A_mlp(DOWN(mlp(LN2 x2)))
//   encoder (post-LN bert): x2 = LN1(x + A_attn(O(attn x)));  x3 = LN2(x2 + A_mlp(DOWN(mlp x2)))
// Adapter^H: both adapters in every layer; Adapter^L: only A_mlp (one
// adapter per block, after the MLP). The base, its LayerNorms included, stays
// frozen (Houlsby also trains the LayerNorms; here only the adapters, and an
// encoder's classifier as PEFT's modules_to_save). Adapters cannot be merged
// into W: they add latency at inference (Table 1).
//
// Memory: parameters and gradients in one buffer each, per site (layer l,
// slot j: 0 attention, 1 MLP) W_down, b_down, W_up, b_up; the forward saves
// each site's input and its bottleneck pre-activation and activation for the
// backward (adapters_reserve).
#ifndef LS_ENGINE_ADAPTERS_H
#define LS_ENGINE_ADAPTERS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/optim.h"
#include "io/safetensors.h"

struct ls_model;

typedef enum { LS_ADAPTERS_HOULSBY = 0, LS_ADAPTERS_LIN = 1 } ls_adapter_kind;

typedef struct ls_adapters {
    const ls_backend *be;
    ls_adapter_kind kind;
    int C, L, r;
    int erf;             // 1: exact GELU (encoders), 0: tanh GELU (gpt2)
    int n_sites;         // L * (2 for H, 1 for L)
    size_t per_site;     // floats of one site's parameters: 2 r C + r + C
    size_t n_params;
    float *params, *grads;
    int Ncap;            // activations for up to Ncap rows
    float *acts;         // per site: in (N, C), pre (N, r), act (N, r); then scratch dpre (N, r), dact (N, r), dx (N, C)
} ls_adapters;

// One adapter as an op pair, for any buffers (the shapes in the first line).
// inp (N,C) -> out (N,C) = inp + Wup act(Wdown inp + bdown) + bup; pre, act (N,r) saved.
void bottleneck_forward(const ls_backend *be, float *out, float *pre, float *act, const float *inp, const float *w,
                     int N, int C, int r, int erf);
// dout (N,C) -> dinp (N,C) overwritten = dout + Wdown^T (act'(pre) * Wup^T dout);
// dw (the site's gradient block) accumulates; dpre, dact (N,r) scratch.
void bottleneck_backward(const ls_backend *be, float *dinp, float *dw, float *dpre, float *dact, const float *dout,
                      const float *inp, const float *pre, const float *act, const float *w, int N, int C, int r,
                      int erf);

// Allocates and initialises the adapters of `kind` with bottleneck r on m's
// layers (seeded per site from seed) and attaches them (m->adapters). Returns
// 0, or -1 with ls_error() for r < 1 or r > C.
int adapters_build(ls_adapters *ad, struct ls_model *m, ls_adapter_kind kind, int r, uint64_t seed);
// Detaches from m and frees.
void adapters_free(ls_adapters *ad, struct ls_model *m);
// Sizes the saved activations for N rows (model_reserve calls it).
void adapters_reserve(ls_adapters *ad, int N);
void adapters_zero_grad(ls_adapters *ad);

// The site of (layer l, slot 0 attention / 1 MLP), or -1 when there is none.
int adapters_site(const ls_adapters *ad, int l, int slot);
// In place on a sublayer's output x (N, C) (model.c calls them).
void adapters_site_forward(ls_adapters *ad, int site, float *x, int N);
// dout (N,C) -> the gradient at the adapter's input, in the adapters' scratch (returned).
const float *adapters_site_backward(ls_adapters *ad, int site, const float *dout, int N);

// Tensor names of site s's four tensors in lorascope's adapter file:
// "<layer prefix>.<l>.adapter_{attn,mlp}.{down,up}.{weight,bias}".
void adapters_tensor_name(const ls_adapters *ad, const char *layer_prefix, int site, int k, char *out, size_t size);
// Writes the adapters to one safetensors file (atomic), metadata format
// "lorascope-adapters", kind, adapter_size and family (the model's). Returns 0 or -1.
int adapters_save(const ls_adapters *ad, const char *layer_prefix, const char *family, const char *path);

// AdamW's segments over the parameter buffer, into segs (capacity 4 n_sites):
// W_down and W_up decayed, the biases not (as HF Trainer groups them).
// Returns the count.
int adapters_decay_segments(const ls_adapters *ad, ls_param_segment *segs);

// Copies every site's four tensors, named key_prefix + adapters_tensor_name(),
// from f into the parameters after checking that each is there with its
// shape and finite. Returns 0, or -1 with ls_error() naming the file and the tensor.
int adapters_read(ls_adapters *ad, const st_file *f, const char *key_prefix, const char *layer_prefix);

// Builds adapters of the kind and size an adapters_save file states on m
// (adapters_build), attaches them and reads their tensors (adapters_read).
// family: the model's, checked against the file's metadata. Returns 0, or -1
// with ls_error() (nothing left attached).
int adapters_load(ls_adapters *ad, struct ls_model *m, const char *layer_prefix, const char *family, const char *path);

#endif
