// bench: training throughput of the engine on fixed shapes — the training
// step itself (step.h: zero grads, forward, backward, clip 1.0, AdamW) on a
// random batch —
// with the FLOP count per token that bounds it and an sgemm probe that says
// what "peak" means on this machine.
//
// Shapes (B sequences of T tokens per step):
//   stories260K  the real checkpoint (llama, dim 64, 5 layers, 8/4 heads,
//                hidden 172, vocab 512), B 8, T 256
//   llama512     random llama, dim 512, 8 layers, 8 heads (8 kv), hidden 1376
//                (~8/3 dim, as Llama), vocab 32000, untied head, B 4, T 256
//   gpt2-768     random GPT-2 small shape: dim 768, 12 layers, 12 heads,
//                hidden 3072, vocab 50257, 1024 positions, B 4, T 256
//   smollm2-135m the real SmolLM2-135M-Instruct GGUF (dequantized; llama, dim
//                576, 30 layers, 9/3 heads, hidden 1536, vocab 49152, tied
//                head), B 4, T 256
//   minilm-l6    the real all-MiniLM-L6-v2 (BERT encoder, dim 384, 6 layers,
//                12 heads, hidden 1536) as a two-way sequence classifier
//                (SST-2's step: pooler, new classifier, cross-entropy over
//                the logits), B 16, T 128, every key kept
// LoRA: r = 8, alpha 16 on q and v of every layer (c_attn's q, v row blocks
// for GPT-2, as the paper's GPT-2 experiments), plus an encoder's classifier
// (PEFT's modules_to_save, as `train` runs it); full: every weight trainable.
#ifndef LS_TRAIN_BENCH_H
#define LS_TRAIN_BENCH_H

#include <stddef.h>

#include "engine/model.h"
#include "io/checkpoint.h"

typedef struct {
    const char *name;
    ls_model_config cfg;
    int B, T;
    const char *asset;   // checkpoint under the assets dir, or NULL (random weights)
} bench_shape;

// The median of v[0..n) (n >= 1), which it sorts in place: the benchmarks' statistic.
double bench_median(double *v, int n);

// The table above; *n gets its length.
const bench_shape *bench_shapes(int *n);
const bench_shape *bench_find_shape(const char *name);

typedef struct {
    double step_median_s;    // median seconds per timed step
    double step_min_s, step_max_s;  // the fastest and the slowest timed step
    double tok_s;            // B*T / step_median_s
    double tok_s_min, tok_s_max;    // B*T / step_max_s, B*T / step_min_s
    double peak_gflops;      // median GFLOP/s of the sgemm probes run before each timed step
    double peak_min, peak_max;      // the slowest and the fastest probe
    double flops_per_token;  // bench_flops_per_token
    double step_flops;       // the FLOPs of the products the step ran (bench_recorded_flops)
    double products_s;       // median seconds of those products replayed alone
    double products_peak;    // median GFLOP/s of the probes run before each replay
    size_t trainable;
    size_t params;
    int weights_real;        // 1: the checkpoint's weights, 0: random
} bench_result;

// Builds the model of the shape on backend be (NULL: the CPU): the
// checkpoint's weights when assets_dir (may be NULL) holds it (*real = 1),
// else random ones (seed 1234). Returns 0 or -1 with ls_error(); free with
// model_free.
int bench_build_model(ls_model *m, const bench_shape *s, const char *assets_dir, const ls_backend *be, int *real);

// FLOPs per trained token of one step (forward + backward; AdamW excluded,
// it is per step and memory-bound). N = weights of the linear maps of every
// layer plus the LM head:
//   full: 6 N + 6 L C (T+1)                (2N forward, 4N backward: dX and dW;
//                                           causal attention: QK^T and AV over
//                                           (T+1)/2 keys on average, x3 with backward)
//   lora: 4 N - 2 C QKV + 6 L C (T+1) + 6 r (d_in + d_out) per site
//        (no dW for the frozen W; no dX below layer 0's QKV)
// An encoder has no LM head in N (its pooler and classifier run once per
// sequence) and bidirectional attention: 12 L C T in place of 6 L C (T+1).
double bench_flops_per_token(const ls_model_config *cfg, int T, int full, int rank, int n_sites_per_layer);

// Builds the shape (real weights when assets_dir holds the checkpoint), runs
// one untimed step and then `steps` timed steps with `threads` threads, each
// after one sgemm probe (a 2048^3 product through the same gemm); reports the
// median step and the spread (fastest, slowest), and the probes' median: the
// peak that step is measured against. Then the products alone: the matrix
// products and attention ops that the warm-up step called, recorded with
// their buffers, replayed `steps` times on those same buffers, each replay
// after a probe of its own: their median time is what the step would take
// if every other op (norms, activations, residuals, loss, optimizer) cost
// nothing (and left the caches as the products leave them).
// Returns 0 or -1 with ls_error().
int bench_train(const bench_shape *s, const char *assets_dir, int full, int threads, int steps, bench_result *r);

#endif
