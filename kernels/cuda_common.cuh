// cuda_common: what the files of the CUDA backend share (internal header).
//
// Error checks, the kernel launch macro (which the CPU emulator of
// emu/cuda_emu.h replaces), the backend's state, deterministic warp and
// block reductions, and the ops each .cu file contributes to the table.
#ifndef LS_KERNELS_CUDA_COMMON_CUH
#define LS_KERNELS_CUDA_COMMON_CUH

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LS_CUDA_EMULATE
#include "emu/cuda_emu.h"
#else
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>
#endif

extern "C" {
#include "engine/backend.h"
#include "base/util.h"
}
#include "cuda_backend.h"

// Full unrolling of loops with compile-time trip counts keeps per-row
// accumulators in registers (the emulator's compiler does not know the pragma).
#ifdef LS_CUDA_EMULATE
#define LSC_UNROLL
#else
#define LSC_UNROLL _Pragma("unroll")
#endif

#define LSC_WARP 32
#define LSC_FULL_MASK 0xffffffffu

// ----------------------------------------------------------------------------
// errors

// Prints "<what>: <detail> (file:line)" and exits 1 (see cuda_backend.h, Errors).
void lsc_die(const char *what, const char *detail, const char *file, int line);

#define LSC_CUDA(call) \
    do { cudaError_t e_ = (call); \
        if (e_ != cudaSuccess) lsc_die(#call, cudaGetErrorString(e_), __FILE__, __LINE__); \
    } while (0)

#define LSC_CUBLAS(call) \
    do { cublasStatus_t s_ = (call); \
        if (s_ != CUBLAS_STATUS_SUCCESS) lsc_die(#call, cublasGetStatusString(s_), __FILE__, __LINE__); \
    } while (0)

static inline void lsc_check_launch(const char *kernel, const char *file, int line) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) lsc_die(kernel, cudaGetErrorString(e), file, line);
}

// kernel<<<grid, block>>>(args...) on the default stream, then a launch check.
#ifdef LS_CUDA_EMULATE
#define LSC_LAUNCH(kernel, grid, block, ...) \
    do { emu_launch(dim3(grid), dim3(block), [&]() { kernel(__VA_ARGS__); }); \
        lsc_check_launch(#kernel, __FILE__, __LINE__); } while (0)
#else
#define LSC_LAUNCH(kernel, grid, block, ...) \
    do { kernel<<<(grid), (block)>>>(__VA_ARGS__); \
        lsc_check_launch(#kernel, __FILE__, __LINE__); } while (0)
#endif

// Blocks for a grid-stride loop over n items: enough to fill the GPU, and a
// grid size every device accepts.
static inline unsigned lsc_grid(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    if (b > 65536) b = 65536;
    return b ? (unsigned)b : 1u;
}

static inline unsigned lsc_cdiv(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

__device__ __forceinline__ int lsc_imin(int a, int b) { return a < b ? a : b; }

// ----------------------------------------------------------------------------
// attention (cuda_attention.cu, cuda_attention_tc.cu): which keys a query sees

// One past the last key a query of this sequence may see: causal, the tile's
// last row (the triangle does the rest); bidirectional, one past the last
// key the mask keeps (km NULL: every key).
__device__ __forceinline__ int keys_end(const int *km, int T, int causal, int q_last) {
    if (causal) return q_last + 1;
    int n = T;
    if (km)
        while (n > 0 && !km[n - 1]) n--;
    return n;
}

// Whether query t sees key t2 (both < T; t2 < keys_end): causal, t2 <= t;
// bidirectional, the mask keeps t2.
__device__ __forceinline__ int key_visible(const int *km, int causal, int t, int t2) {
    return causal ? t2 <= t : !km || km[t2];
}


// The bf16 tensor-core attention (cuda_attention_tc.cu): usable for precision
// bf16, head sizes that are multiples of 16 up to 128, and T > HS (where att
// holds the output copy, from which the backward's D comes). Both take
// cuda_attention.cu's arguments: lse (B,NH,T), ostash (B,NH,T,HS), keymask
// (B,T) or NULL, causal 1 for the decoder; D (B,NH,T) for the backward.
int lsc_attention_tc_usable(int T, int HS);
void lsc_attention_tc_forward(float *out, float *lse, float *ostash, const float *qkv, const int *keymask,
                              int causal, int B, int T, int NH, int NKV, int HS, float scale);
void lsc_attention_tc_backward(float *dqkv, const float *Dvec, const float *lse, const float *dout,
                               const float *qkv, const int *keymask, int causal, int B, int T, int NH, int NKV,
                               int HS, float scale);

// ----------------------------------------------------------------------------
// state (cuda_backend.cu)

typedef struct {
    int ready;
    cublasHandle_t blas;
    ls_cuda_precision precision;  // 0 = FP32 until set (may be set before init)
    int allow_atomics;            // 0 = deterministic mode (the default)
    void *workspace;              // cuBLAS workspace
    size_t workspace_bytes;
    void *scratch;                // grow-only scratch of the ops (lsc_scratch)
    size_t scratch_bytes;
    void *bf16_ops[2];            // precision bf16: lsc_gemm's operands as bf16 (grow-only)
    size_t bf16_bytes[2];
    // embedding backward: host staging of the token buckets (cuda_ops.cu)
    int *h_tokens;                // (tok_cap) token ids
    int *h_order;                 // sort keys, then uniq | start | order
    int *d_buckets;               // device: uniq (U) | start (U+1) | order (BT)
    size_t bucket_cap;            // ints allocated in d_buckets
    size_t tok_cap;               // positions the host arrays hold
    char device_name[256];
} lsc_state;

extern lsc_state lsc;

// Initialises the device, cuBLAS and the workspace once. Returns 0, or -1 with
// ls_error() = "no CUDA device: <reason>".
int lsc_init(void);

// Device scratch of at least `bytes`, valid until the next call (ops are
// serial, so one op owns it at a time). Grows, never shrinks.
void *lsc_scratch(size_t bytes);
// Device allocation tracked by ls_cuda_memory (exits on failure).
void *lsc_device_alloc(size_t bytes);
void lsc_device_free(void *p);

// dst (n) <- src (n) on the device with memmove semantics.
void lsc_copy(float *dst, const float *src, size_t n);

// Row-major C (M,N) = alpha op(A) op(B) + beta C in the current precision.
void lsc_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);

// ----------------------------------------------------------------------------
// deterministic reductions
//
// The xor butterfly leaves the same bits in every lane (each step adds the same
// two values in either order), and the block versions reduce the warps' results
// in warp order: no atomics, one fixed tree for a given block size.

template <typename T> __device__ __forceinline__ T lsc_warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(LSC_FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float lsc_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(LSC_FULL_MASK, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, y = z = 1); every thread
// gets the result. `shared` holds 32 values; reusable once this returns.
template <typename T> __device__ T lsc_block_sum(T v, T *shared) {
    int lane = (int)threadIdx.x % LSC_WARP, warp = (int)threadIdx.x / LSC_WARP;
    int nw = (int)blockDim.x / LSC_WARP;
    v = lsc_warp_sum(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    T t = lane < nw ? shared[lane] : (T)0;
    t = lsc_warp_sum(t);
    __syncthreads();
    return t;
}

__device__ inline float lsc_block_max(float v, float *shared) {
    int lane = (int)threadIdx.x % LSC_WARP, warp = (int)threadIdx.x / LSC_WARP;
    int nw = (int)blockDim.x / LSC_WARP;
    v = lsc_warp_max(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float t = lane < nw ? shared[lane] : -INFINITY;
    t = lsc_warp_max(t);
    __syncthreads();
    return t;
}

// ----------------------------------------------------------------------------
// ops of the table, by file (same signatures and contracts as backend.h)

// cuda_backend.cu
void lsc_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int OC);
void lsc_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC);

// cuda_ops.cu
void lsc_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps);
void lsc_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int N, int C);
void lsc_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
                         int C, float eps);
void lsc_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int N, int C);
void lsc_rope_forward(float *x, const float *cos_tab, const float *sin_tab, int B, int T,
                      int row_heads, int n_rot, int HS, int pos0, int interleaved);
void lsc_rope_backward(float *dx, const float *cos_tab, const float *sin_tab, int B, int T,
                       int row_heads, int n_rot, int HS, int pos0, int interleaved);
void lsc_gelu_forward(float *out, const float *inp, size_t n);
void lsc_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
void lsc_swiglu_forward(float *out, const float *inp, int N, int H);
void lsc_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H);
void lsc_residual_forward(float *out, const float *a, const float *b, size_t n);
void lsc_residual_backward(float *da, float *db, const float *dout, size_t n);
void lsc_dropout(float *out, const float *inp, size_t n, float p, uint64_t seed);
void lsc_axpy(float *out, const float *inp, size_t n, float alpha);
void lsc_copy_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, int rows, int n, int accumulate);
void lsc_scale(float *x, size_t n, float alpha);
double lsc_sumsq(const float *x, size_t n);
void lsc_embedding_forward(float *out, const int *tokens, const float *wte, const float *wpe,
                           int B, int T, int C, int pos0);
void lsc_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
                            int B, int T, int C);
void lsc_crossentropy_forward(float *losses, const float *logits, const int *targets, int N,
                              int V, float smoothing);
void lsc_crossentropy_backward(float *dlogits, const float *logits, const int *targets,
                               const float *dlosses, int N, int V, float smoothing);
void lsc_adamw(float *params, const float *grads, float *m, float *v, size_t n, float lr,
               float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2);
// dst (n) = column sums of src (N, n) added to dst: dst[c] += sum_r src[r*n + c],
// fixed-order two-stage reduction.
void lsc_colsum_add(float *dst, const float *src, int N, int n);
// C (M,N) with leading dimension ldc: C *= beta (sgemm with K = 0).
void lsc_scale_matrix(float *C, int M, int N, int ldc, float beta);

// cuda_attention.cu
void lsc_attention_sizes(int B, int T, int NH, int HS, size_t *att, size_t *datt);
void lsc_attention_forward(float *out, float *att, const float *qkv, int B, int T, int NH,
                           int NKV, int HS);
void lsc_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int T, int NH, int NKV, int HS);
void lsc_attention_decode(float *out, float *att, const float *q, const float *k_cache,
                          const float *v_cache, int n_ctx, int NH, int NKV, int HS);
void lsc_attention_bidir_forward(float *out, float *att, const float *qkv, const int *keymask,
                                 int B, int T, int NH, int HS);
void lsc_attention_bidir_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                  const float *att, const int *keymask, int B, int T, int NH,
                                  int HS);

// cuda_ops_encoder.cu
void lsc_gelu_erf_forward(float *out, const float *inp, size_t n);
void lsc_gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n);
void lsc_tanh_forward(float *out, const float *inp, size_t n);
void lsc_tanh_backward(float *dinp, const float *out, const float *dout, size_t n);
void lsc_mean_pool_forward(float *out, const float *inp, const int *mask, int B, int T, int C);
void lsc_mean_pool_backward(float *dinp, const float *dout, const int *mask, int B, int T, int C);

#endif
