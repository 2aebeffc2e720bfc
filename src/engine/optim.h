// optim: AdamW (Loshchilov & Hutter 2019) with torch.optim.AdamW's semantics,
// and global gradient-norm clipping (torch.nn.utils.clip_grad_norm_).
//
// The optimiser works on one contiguous parameter buffer and its gradient
// buffer of the same layout (the model's base parameters for full
// fine-tuning, or an adapter's A/B buffer for LoRA). Segments let biases and
// norm weights skip weight decay, as HF Trainer does.
#ifndef LS_ENGINE_OPTIM_H
#define LS_ENGINE_OPTIM_H

#include <stddef.h>

#include "engine/backend.h"

typedef struct {
    size_t offset, n;   // in floats
    int decay;          // 1: apply weight decay
} ls_param_segment;

typedef struct {
    const ls_backend *be;
    size_t n;           // floats
    float *m, *v;       // first and second moments (backend memory, n each)
    long step;          // completed steps t (bias corrections use t + 1 on the next step)
    float beta1, beta2, eps, weight_decay;
    int n_segments;     // 0: one segment over everything, decayed
    ls_param_segment *segments;
    int packed;         // 1: m, v hold only the segments' elements, back to back (adamw_init_packed)
} ls_adamw;

// Allocates zeroed moments for n parameters. torch's defaults are
// beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0.01.
void adamw_init(ls_adamw *opt, const ls_backend *be, size_t n, float beta1, float beta2,
                float eps, float weight_decay);
void adamw_free(ls_adamw *opt);

// Replaces the decay segments (copied). Elements outside every segment are
// not updated at all, so the segments should cover [0, n).
void adamw_set_segments(ls_adamw *opt, const ls_param_segment *segs, int n);

// AdamW over a few segments of a large buffer (BitFit, FT^Top-k: the
// trainable tensors of the model's one parameter buffer): the segments are
// copied and the moments hold only their elements, in segment order
// (opt->n = their total). Segments must not overlap.
void adamw_init_packed(ls_adamw *opt, const ls_backend *be, const ls_param_segment *segs, int n, float beta1,
                       float beta2, float eps, float weight_decay);

// One step at learning rate lr: step += 1, then for each segment the update
// of backend.h's adamw op with bias corrections 1 - beta^step.
void adamw_step(ls_adamw *opt, float *params, const float *grads, float lr);

// Global L2 norm of grads (n floats), deterministic (fixed blocks).
double grad_norm(const ls_backend *be, const float *grads, size_t n);

// Scales grads by max_norm / (norm + 1e-6) when norm > max_norm
// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
double clip_grad_norm(const ls_backend *be, float *grads, size_t n, double max_norm);

#endif
