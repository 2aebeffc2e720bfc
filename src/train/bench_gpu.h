// bench_gpu: the GPU benchmark's training step (issue 14's table), shared by
// `lorascope bench --backend cuda` and kernels/bench/bench_train: one shape,
// one mode, one precision, B x T random tokens, timed as
// kernels/bench/bench_peft_gpu.py times HF transformers + PEFT, so that the
// two sides' rows compare.
//
// Shapes (random weights; bench_peft_gpu.py builds the same ones):
//   gpt2-124m   GPT-2 small: 12 x 768, 12 heads, MLP 3072, vocab 50257, tied head
//   llama-124m  Llama layout: 12 x 768, 12 query / 4 kv heads, SwiGLU 2048,
//               vocab 32000, untied head
//   tiny        llama, 2 x 64, 8 / 4 heads, vocab 512 (a dry run, the emulator)
// Modes: lora (r = rank, alpha = 2 r, on c_attn for GPT-2 -- PEFT cannot adapt
// q and v apart inside GPT-2's fused projection -- and q, v for Llama; the
// frozen head's loss in chunks, as `train` runs it), full (every weight).
//
// A step is the training loop's own (train/step.h: gradients zeroed, forward,
// backward, the gradient norm measured but not clipped -- the PEFT side does
// not clip -- AdamW); each is timed between device synchronisations and the
// median reported. Model FLOPs per token (PaLM's accounting, Chowdhery et al.
// 2022, App. B, without halving for causality; bench_peft_gpu.py's too):
//   full: 6 N + 12 L T d     LoRA: 4 N + 12 L T d
// N = the parameters of every matrix product (LM head included, adapters
// neglected), L layers, T the sequence length, d the attention width.
#ifndef LS_TRAIN_BENCH_GPU_H
#define LS_TRAIN_BENCH_GPU_H

#include <stddef.h>

#include "engine/backend_registry.h"
#include "engine/model.h"

typedef struct {
    const char *shape;     // gpt2-124m | llama-124m | tiny
    const char *mode;      // lora | full
    const char *lora;      // LoRA modules (NULL: c_attn for GPT-2, q,v otherwise)
    int rank, batch, seq, steps, warmup;
} bench_gpu_request;

typedef struct {
    size_t params, trainable;
    double step_s;          // median seconds per timed step
    double tok_s;           // batch * seq / step_s
    double peak_bytes;      // the backend's peak allocation over the timed steps (CPU: peak RSS)
    double flops_per_token; // bench_gpu_flops_per_token
} bench_gpu_result;

// The shape's model configuration. Returns 0, or -1 with ls_error() naming
// the shapes there are.
int bench_gpu_shape(const char *name, ls_model_config *cfg);

// Model FLOPs per token of one step (above).
double bench_gpu_flops_per_token(const ls_model_config *cfg, int T, int full);

// Builds the shape on be (its precision set by the caller), times q->steps
// steps after q->warmup untimed ones, and reports; dev (NULL for the CPU) gives
// the peak memory. Returns 0, or -1 with ls_error().
int bench_gpu_run(const bench_gpu_request *q, const ls_backend *be, const ls_backend_device *dev,
                  bench_gpu_result *r);

#endif
