// bench_latency: the paper's Table 1 — the inference latency of one forward
// pass (no gradient, no dropout) of a model with each kind of adapter, at
// several batch sizes, against the base model's.
//
// Variants (one model, its weights shared; r = the bottleneck / rank):
//   base            the model alone
//   merged LoRA     r on q and v (GPT-2: c_attn's q, v row blocks), ΔW = sBA
//                   folded into W (lora_merge): the base's computation, so the
//                   same cost (Sec. 4.1, "No additional inference latency")
//   unmerged LoRA   the same sites applied on the fly (x A^T B^T beside x W^T)
//   Adapter^H       Houlsby: a bottleneck adapter after attention and after
//                   the MLP of every block (engine/adapters.h)
//   Adapter^L       Lin: one, after the MLP
// The LM head (a decoder) or the classifier (an encoder) is part of the
// forward pass, as in the paper's measurement of a whole model. On the CUDA
// backend each pass ends with a 1-float download of the model's activations,
// which waits for its kernels (one stream), so the time is the GPU's.
//
// Timing: for each batch size, 1 untimed round then `repeats` timed rounds;
// a round runs every variant once in the order above, so slow drifts of the
// machine's load reach all variants alike. The median over the rounds is the
// latency, with the fastest and slowest round's time beside it.
#ifndef LS_TRAIN_BENCH_LATENCY_H
#define LS_TRAIN_BENCH_LATENCY_H

#include <stddef.h>

#include "train/bench.h"

#define BENCH_LATENCY_MAX_BATCHES 16

typedef enum {
    BL_BASE = 0,
    BL_LORA_MERGED,
    BL_LORA_UNMERGED,
    BL_ADAPTER_H,
    BL_ADAPTER_L,
    BL_N_VARIANTS
} bench_latency_variant;

// "base", "merged LoRA", "unmerged LoRA", "Adapter^H", "Adapter^L".
const char *bench_latency_variant_name(int v);

typedef struct {
    int batches[BENCH_LATENCY_MAX_BATCHES];
    int n_batches;
    int T;               // sequence length
    int repeats;         // timed rounds per batch size, >= 1
    int threads;
    int rank;            // LoRA rank = adapters' bottleneck size
    const char *assets;  // the shape's checkpoint under it when present, else random weights; may be NULL
    const ls_backend *be; // the backend to time (NULL: the CPU)
} bench_latency_req;

typedef struct {
    double median_ms[BL_N_VARIANTS][BENCH_LATENCY_MAX_BATCHES];  // NAN: variant not available
    double min_ms[BL_N_VARIANTS][BENCH_LATENCY_MAX_BATCHES];
    double max_ms[BL_N_VARIANTS][BENCH_LATENCY_MAX_BATCHES];
    size_t trainable[BL_N_VARIANTS];  // the variant's trainable parameters (0: base)
    size_t params;                    // the base model's
    int weights_real;
} bench_latency_result;

// Builds the shape once, attaches the variants, times them at every batch size
// of req (each <= 4096, T within the model's positions). Progress lines go to
// stderr. Returns 0 or -1 with ls_error().
int bench_latency(const bench_shape *s, const bench_latency_req *req, bench_latency_result *r);

#endif
