// backend: the op interface that the model is written against.
//
// Model code (model.c, lora.c, optim.c) never touches tensor memory directly:
// it allocates through a backend, moves data with upload/download, and calls
// the ops below. The CPU backend (ops_cpu.c: OpenBLAS sgemm + OpenMP) is
// complete on its own; a CUDA backend fills the same table with cuBLAS and
// kernels/ (ARCHITECTURE.md, Backends).
//
// Conventions, for every op:
// - fp32, row-major, contiguous unless a leading dimension is passed.
// - Shapes: N = rows (B*T tokens), C = channels in, OC = channels out,
//   NH = query heads, NKV = key/value heads, HS = head size.
// - Backward ops ACCUMULATE (+=) into parameter gradients (dweight, dbias) so
//   that micro-batches add up; a NULL parameter-gradient pointer means "frozen,
//   skip it" (LoRA training leaves W0 frozen). Activation gradients are
//   OVERWRITTEN unless the op's comment says "accumulates" (the norms
//   accumulate into dinp, because their input is the residual stream whose
//   gradient also arrives through the skip connection).
// - Determinism: every reduction runs over a fixed partition in a fixed order
//   (no atomics), so a given thread count always gives the same bits. Ops
//   whose reductions run inside one thread give the same bits for any count.
#ifndef LS_ENGINE_BACKEND_H
#define LS_ENGINE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LS_BACKEND_CPU = 0, LS_BACKEND_CUDA = 1 } ls_backend_kind;

typedef struct ls_backend {
    ls_backend_kind kind;
    const char *name;

    // ---- memory ------------------------------------------------------------
    // Zero-filled, 64-byte aligned; never NULL (exits on out-of-memory, as ls_malloc).
    float *(*alloc)(size_t n_floats);
    void (*free)(float *p);
    // Host -> backend and backend -> host copies of n floats.
    void (*upload)(float *dst, const float *host_src, size_t n);
    void (*download)(float *host_dst, const float *src, size_t n);
    void (*copy)(float *dst, const float *src, size_t n);
    void (*zero)(float *p, size_t n);
    // src rows (rows, n) with row stride ld_src -> dst rows with row stride
    // ld_dst (floats), copied, or added (accumulate 1: dst += src). The ranges
    // must not overlap. (A prefix's keys into an interleaved qkv, prefix.c.)
    void (*copy_rows)(float *dst, size_t ld_dst, const float *src, size_t ld_src, int rows, int n,
                      int accumulate);
    // Integer uploads (token ids, targets): backend buffers from alloc_int.
    int *(*alloc_int)(size_t n);
    void (*free_int)(int *p);
    void (*upload_int)(int *dst, const int *host_src, size_t n);

    // ---- linear algebra ----------------------------------------------------
    // A (M,K) [or (K,M) if trans_a], B (K,N) [or (N,K) if trans_b] -> C (M,N):
    // C = alpha * op(A) op(B) + beta * C, row-major with leading dimensions.
    void (*gemm)(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
    // inp (N,C), weight (OC,C), bias (OC) or NULL -> out (N,OC) = inp weight^T + bias.
    void (*matmul_forward)(float *out, const float *inp, const float *weight,
                           const float *bias, int N, int C, int OC);
    // dout (N,OC), inp (N,C), weight (OC,C) -> dinp (N,C) overwritten (NULL: skip),
    // dweight (OC,C) += dout^T inp, dbias (OC) += column sums of dout (NULL: skip).
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp, const float *weight,
                            int N, int C, int OC);

    // ---- normalisation -----------------------------------------------------
    // inp (N,C), weight (C), bias (C) -> out (N,C), mean (N), rstd (N).
    // out = (inp - mean) * rstd * weight + bias, rstd = 1/sqrt(var + eps), biased var.
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps);
    // dout (N,C) -> dinp (N,C) accumulates, dweight (C) +=, dbias (C) += (NULLs skip).
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);
    // inp (N,C), weight (C) -> out (N,C), rstd (N): out = inp * rstd * weight,
    // rstd = 1/sqrt(mean(inp^2) + eps) (Zhang & Sennrich 2019; Llama).
    void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *weight,
                            int N, int C, float eps);
    // dout (N,C) -> dinp (N,C) accumulates, dweight (C) += (NULL skips).
    void (*rmsnorm_backward)(float *dinp, float *dweight, const float *dout, const float *inp,
                             const float *weight, const float *rstd, int N, int C);

    // ---- attention ---------------------------------------------------------
    // x (B,T,row_heads,HS) rotated in place on heads [0, n_rot); cos/sin (P,HS/2)
    // tables, row p for position p; token t of every sequence is at position pos0 + t.
    // interleaved = 1: pairs (2i, 2i+1) as llama2.c; 0: pairs (i, i+HS/2) as HF.
    void (*rope_forward)(float *x, const float *cos_tab, const float *sin_tab,
                         int B, int T, int row_heads, int n_rot, int HS, int pos0,
                         int interleaved);
    // Same shapes; dx rotated back in place (the transpose of the rotation).
    void (*rope_backward)(float *dx, const float *cos_tab, const float *sin_tab,
                          int B, int T, int row_heads, int n_rot, int HS, int pos0,
                          int interleaved);
    // The att buffer contract. attention_forward leaves in `att` what its
    // backward needs, in a layout of the backend's own: the CPU backend the
    // causal softmax probabilities (B,NH,T,T) (upper triangle 0); the CUDA
    // backend only per-row logsumexps (B,NH,T) and, when T > HS, a copy of the
    // output (B,NH,T,HS) (kernels/cuda_backend.h). Model code passes att from a
    // forward to the backward of the same batch and never reads it. `datt` is
    // the backward's scratch. attention_sizes gives the floats of both for a
    // batch (B, T); model.c reserves att per layer and one datt exactly so.
    // Both sizes grow with B and T, so a reservation for (Bcap, Tcap) holds
    // any smaller batch.
    void (*attention_sizes)(int B, int T, int NH, int HS, size_t *att, size_t *datt);
    // qkv (B,T,NH+2*NKV,HS): heads [0,NH) queries, then NKV keys, then NKV values;
    // -> att (see above), out (B,T,NH,HS). Query head h reads key/value head
    // h / (NH/NKV) (GQA).
    void (*attention_forward)(float *out, float *att, const float *qkv,
                              int B, int T, int NH, int NKV, int HS);
    // dout (B,T,NH,HS) -> dqkv (B,T,NH+2*NKV,HS) overwritten; att from the
    // forward, datt scratch (see above).
    void (*attention_backward)(float *dqkv, float *datt, const float *dout,
                               const float *qkv, const float *att,
                               int B, int T, int NH, int NKV, int HS);
    // One query token against a cache: q (NH,HS), k_cache and v_cache (n_ctx,NKV,HS)
    // -> out (NH,HS); att (NH,n_ctx) scratch. Attends to all n_ctx cached positions.
    void (*attention_decode)(float *out, float *att, const float *q, const float *k_cache,
                             const float *v_cache, int n_ctx, int NH, int NKV, int HS);

    // ---- pointwise -----------------------------------------------------------
    // inp (n) -> out (n) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's GELU).
    void (*gelu_forward)(float *out, const float *inp, size_t n);
    // dout (n) -> dinp (n) overwritten.
    void (*gelu_backward)(float *dinp, const float *inp, const float *dout, size_t n);
    // inp (N,2H): [gate | up] -> out (N,H) = silu(gate) * up (Shazeer 2020).
    void (*swiglu_forward)(float *out, const float *inp, int N, int H);
    // dout (N,H) -> dinp (N,2H) overwritten.
    void (*swiglu_backward)(float *dinp, const float *inp, const float *dout, int N, int H);
    // a (n), b (n) -> out (n) = a + b (out may alias a or b).
    void (*residual_forward)(float *out, const float *a, const float *b, size_t n);
    // dout (n) -> da (n) +=, db (n) += (accumulates: both inputs may have other consumers).
    void (*residual_backward)(float *da, float *db, const float *dout, size_t n);
    // inp (n) -> out (n) = inp * keep / (1 - p), keep = [u(seed, i) >= p] with u a
    // counter-based hash in [0,1): the mask depends only on (seed, i), never on
    // threads. The backward pass is the same call on dout with the same seed.
    void (*dropout)(float *out, const float *inp, size_t n, float p, uint64_t seed);
    // out (n) += alpha * inp (n).
    void (*axpy)(float *out, const float *inp, size_t n, float alpha);
    // x (n) *= alpha.
    void (*scale)(float *x, size_t n, float alpha);
    // Sum of squares of x (n), accumulated in double over a fixed partition (for clipping).
    double (*sumsq)(const float *x, size_t n);

    // ---- embedding -----------------------------------------------------------
    // tokens (B,T), wte (V,C), wpe (P,C) or NULL -> out (B,T,C) = wte[tok] + wpe[pos0+t].
    void (*embedding_forward)(float *out, const int *tokens, const float *wte,
                              const float *wpe, int B, int T, int C, int pos0);
    // dout (B,T,C) -> dwte (V,C) +=, dwpe (P,C) += (NULLs skip). Rows are added in
    // token order within each column block, so repeated tokens sum deterministically.
    void (*embedding_backward)(float *dwte, float *dwpe, const float *dout, const int *tokens,
                               int B, int T, int C);

    // ---- loss ------------------------------------------------------------------
    // logits (N,V), targets (N) -> losses (N): cross-entropy against the smoothed
    // target q = (1-eps) onehot(target) + eps/V (PyTorch's label_smoothing), i.e.
    // loss = -sum_j q_j log softmax(logits)_j. targets < 0 give loss 0.
    void (*crossentropy_forward)(float *losses, const float *logits, const int *targets,
                                 int N, int V, float smoothing);
    // dlosses (N) -> dlogits (N,V) overwritten = dlosses_i (softmax - q); dlogits
    // may alias logits (each row is read before it is written). Rows with
    // target < 0 or dlosses 0 get 0.
    void (*crossentropy_backward)(float *dlogits, const float *logits, const int *targets,
                                  const float *dlosses, int N, int V, float smoothing);

    // ---- optimiser ---------------------------------------------------------------
    // params, grads, m, v (n): one AdamW step with PyTorch's semantics:
    // p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    // p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), bc_i = 1 - b_i^t.
    void (*adamw)(float *params, const float *grads, float *m, float *v, size_t n,
                  float lr, float beta1, float beta2, float eps, float weight_decay,
                  float bc1, float bc2);

    // ---- encoder family (BERT, RoBERTa) ------------------------------------------
    // Every backend has these (the CPU and the CUDA backend).
    // qkv (B,T,3NH,HS): heads [0,NH) queries, then NH keys, then NH values;
    // keymask (B,T) backend ints, 1 = a token, 0 = padding (NULL: all tokens)
    // -> att, out (B,T,NH,HS). Bidirectional: every query row (padding rows
    // too) attends to every kept key; a sequence with no kept key gets out = 0
    // (and zero gradients). `att` follows the att buffer contract above, in
    // the same sizes (attention_sizes): the CPU backend the softmax
    // probabilities (B,NH,T,T) over the kept keys (0 on masked ones), the
    // CUDA backend its logsumexps and output copy.
    void (*attention_bidir_forward)(float *out, float *att, const float *qkv, const int *keymask,
                                    int B, int T, int NH, int HS);
    // dout (B,T,NH,HS) -> dqkv (B,T,3NH,HS) overwritten; att from the
    // forward, datt scratch (both as attention_backward's).
    void (*attention_bidir_backward)(float *dqkv, float *datt, const float *dout, const float *qkv,
                                     const float *att, const int *keymask, int B, int T, int NH,
                                     int HS);
    // inp (n) -> out (n) = 0.5 x (1 + erf(x / sqrt(2))) (BERT's exact GELU).
    void (*gelu_erf_forward)(float *out, const float *inp, size_t n);
    // dout (n) -> dinp (n) overwritten.
    void (*gelu_erf_backward)(float *dinp, const float *inp, const float *dout, size_t n);
    // inp (n) -> out (n) = tanh(inp) (the classification heads' pooler).
    void (*tanh_forward)(float *out, const float *inp, size_t n);
    // out (n) the forward's OUTPUT, dout (n) -> dinp (n) = dout (1 - out^2), overwritten.
    void (*tanh_backward)(float *dinp, const float *out, const float *dout, size_t n);
    // inp (B,T,C), mask (B,T) backend ints or NULL -> out (B,C): the mean over
    // the kept tokens (sentence-transformers' mean pooling); 0 if none is kept.
    void (*mean_pool_forward)(float *out, const float *inp, const int *mask, int B, int T, int C);
    // dout (B,C) -> dinp (B,T,C) overwritten (0 on masked tokens).
    void (*mean_pool_backward)(float *dinp, const float *dout, const int *mask, int B, int T, int C);
} ls_backend;

// The CPU backend (OpenBLAS + OpenMP). A static table; never NULL.
const ls_backend *ls_backend_cpu(void);

// Hash of (seed, i) to a uniform float in [0, 1) (splitmix64 finaliser, 24 bits):
// the dropout mask of every backend. Exposed for tests.
static inline float ls_hash_uniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

#endif
