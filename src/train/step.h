// step: the engine's training step — one optimizer step, the same code for
// the training loop (train.c), `lorascope bench` (bench.c) and the GPU
// benchmark (kernels/bench/bench_train.c), so that what is timed is what
// trains.
//
// One step (Hu et al. 2021, Sec. 4: AdamW on the trainable parameters):
//   zero the trainable gradients;
//   for micro-batch k = 0 .. grad_accum-1, batch index idx = (step-1) grad_accum + k:
//     the batch source fills micro-batch idx (the data order follows idx);
//     LoRA dropout seed = ls_seed_mix(dropout_seed, idx);
//     forward (mean loss over the masked positions), backward with the loss
//     weighted 1/grad_accum (gradients accumulate);
//   global gradient norm, clipped to clip when clip > 0 (clip_grad_norm_);
//   one AdamW step at lr.
// An encoder classifies (model_classify_forward / _backward) and, with LoRA,
// also trains its head in full (PEFT's modules_to_save): the head has its own
// AdamW state and its gradients join the adapter's in the global norm and
// the clipping, as torch clips all of a PEFT model's trainable parameters.
// A non-finite loss or gradient norm stops the step before the update.
#ifndef LS_TRAIN_STEP_H
#define LS_TRAIN_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/lora.h"
#include "engine/model.h"
#include "engine/optim.h"

// What a step updates, and how. The caller owns every pointer.
typedef struct {
    ls_model *m;
    ls_lora *lo;            // the attached adapter, or NULL: full fine-tuning
    ls_adamw *opt;
    float *params, *grads;  // the trainable buffer: lo's, or the model's
    size_t n_trainable;
    int grad_accum;         // micro-batches per step, >= 1
    double clip;            // max global gradient norm; <= 0: measured, not clipped
    float label_smoothing;
    uint64_t dropout_seed;  // LoRA dropout stream (unused without dropout)
    // encoder with LoRA: the head's trainable span of m's parameters
    // (model_enable_head_grads, model_head_segments) and its optimiser; n_head 0: none
    ls_adamw *head_opt;
    float *head_params, *head_grads;
    size_t n_head;
    // BitFit / FT^Top-k: the trainable segments of params / grads (m's buffers;
    // opt from adamw_init_packed); n_segs 0: all n_trainable floats train
    const ls_param_segment *segs;
    int n_segs;
    struct ls_adapters *ad;  // Adapter^H / ^L: params, grads are its buffers (zeroed each step)
    struct ls_prefix *pf;    // prefix-layer: params, grads are its buffers (zeroed each step)
    struct ls_prompt *pr;    // prefix-embed: params, grads are its buffers (zeroed each step)
} train_step_spec;

// Sets s to train lo (or, lo NULL, every weight of m: model_enable_grads must
// have been called) with opt; one micro-batch, no clipping, no smoothing.
void train_step_spec_init(train_step_spec *s, ls_model *m, ls_lora *lo, ls_adamw *opt);

// One micro-batch: (B,T) token ids, targets (< 0: ignored) and mask (NULL:
// every position counts), all owned by the batch source; tokens = tokens of
// real input in it (padding excluded), for tokens/s. Classification (an
// encoder): labels (B) and keymask (B,T) set, targets and mask unused.
typedef struct {
    const int *inputs, *targets;
    const float *mask;
    int B, T;
    double tokens;
    const int *keymask, *labels;
} train_microbatch;

// Fills *mb with micro-batch batch_index. Returns 0, or -1 with ls_error().
typedef int (*train_batch_fn)(void *user, long batch_index, train_microbatch *mb);

// A batch source that hands out the same tokens every time (the benchmarks):
// user is a train_fixed_batch; targets as the model takes them, no mask; an
// encoder's batch has keymask (B,T) and labels (B) instead of targets.
typedef struct {
    const int *tokens, *targets;
    int B, T;
    const int *keymask, *labels;
} train_fixed_batch;
int train_fixed_batch_next(void *user, long batch_index, train_microbatch *mb);

// Encoder with LoRA: makes the head trainable beside the adapter (PEFT's
// modules_to_save: model_enable_head_grads), points s's head span at it and
// initialises hopt for it (with the head's weight-decay segments). Returns 0,
// or -1 with ls_error() for a model without a head. Free hopt with adamw_free.
int train_step_spec_add_head(train_step_spec *s, ls_adamw *hopt, float beta1, float beta2, float eps,
                             float weight_decay);

// BitFit / FT^Top-k: the model's own trainable segments under its grad scope
// (model_enable_grads_scope first): s trains m's buffers through segs
// (capacity LS_N_PARAM_TENSORS, owned by the caller, filled here) and opt is
// initialised packed over them. Returns the trainable count.
size_t train_step_spec_set_scope(train_step_spec *s, ls_param_segment *segs, float beta1, float beta2, float eps,
                                 float weight_decay);

// Adapter^H / ^L: s trains ad's buffer (zeroed each step) and opt is
// initialised over it with adapters_decay_segments (weights decayed, biases not).
void train_step_spec_set_adapters(train_step_spec *s, struct ls_adapters *ad, float beta1, float beta2, float eps,
                                  float weight_decay);

typedef struct {
    double loss;       // mean of the micro-batches' losses
    double tokens;     // sum of their tokens
    double grad_norm;  // global norm before clipping
} train_step_stats;

// Optimizer step `step` (1-based) at learning rate lr, its micro-batches from
// next(user, ...). Returns 0; 1 with msg set when the loss or the gradient
// norm is not finite (the parameters are then not updated); -1 with ls_error()
// when the batch source or the forward pass fails.
int train_step(const train_step_spec *s, long step, double lr, train_batch_fn next, void *user,
               train_step_stats *st, char *msg, size_t msg_size);

#endif
