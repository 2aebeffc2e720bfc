// cuda_emu: a CPU emulation of the small CUDA subset the kernels use, so that
// CI without a GPU runs the real kernel code (tests/cuda, suite 'cuda_emu').
//
// What it emulates, and how:
// - Kernels: every block runs on its own, one after another; the threads of a
//   block are fibers (cooperative, on one OS thread) switched only at
//   __syncthreads() and at warp shuffles. A barrier releases only when every
//   thread of the block (or the 32 lanes of the warp) has arrived; a barrier
//   that some thread skipped by exiting early aborts with a message, as does a
//   deadlock. The thread order between barriers is forward or reversed
//   (LS_CUDA_EMU_ORDER=reverse), so that a missing __syncthreads() shows up as
//   a wrong result in one of the two orders.
// - __shared__ is `static`: blocks never overlap, so a static per kernel
//   instantiation is exactly one block's shared memory.
// - Device memory is host memory; cudaMemcpy refuses overlapping ranges (the
//   real one's behaviour is undefined there).
// - cuBLAS: cublasGemmEx / cublasDgemm as column-major reference products with
//   double accumulation; FAST_TF32 / FAST_16BF round the inputs to TF32 / BF16
//   first, as tensor cores do, so that tolerances are exercised; A and B may
//   be bf16 (CUDA_R_16BF) with C fp32 or bf16.
// - cuSOLVER: geqrf / orgqr / gesvdj / gesvd through LAPACKE (column-major).
// - bf16 storage and warp matrix multiply-accumulate (wmma, 16 x 16 x 16, bf16
//   in, fp32 accumulate), below, for the tensor-core attention.
//
// Not emulated: timing, asynchrony, memory coalescing, bank conflicts, and any
// hardware behaviour beyond the documented semantics of these calls. Passing
// under emulation validates the kernels' logic and indexing, not the GPU.
//
// Only compiled with -DLS_CUDA_EMULATE (kernels/meson.build, emu library).
#ifndef LS_KERNELS_CUDA_EMU_H
#define LS_KERNELS_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>

// ----------------------------------------------------------------------------
// qualifiers and built-in variables

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct emu_builtins {
    uint3 thread, block;
    dim3 block_dim, grid_dim;
};
extern emu_builtins emu_cur; // set by the scheduler on every switch

#define threadIdx (emu_cur.thread)
#define blockIdx (emu_cur.block)
#define blockDim (emu_cur.block_dim)
#define gridDim (emu_cur.grid_dim)

// Runs body once per thread of every block of the grid.
void emu_launch(dim3 grid, dim3 block, const std::function<void()> &body);

void emu_block_barrier(void);
void emu_warp_barrier(void);
// This lane's 64-bit exchange slot in the current warp, and lane `src`'s.
uint64_t *emu_shfl_slot(int lane);
int emu_lane(void);
void emu_check_shfl(unsigned mask, int width);

static inline void __syncthreads(void) { emu_block_barrier(); }

// Warp shuffles: every lane writes its value, the warp meets, every lane
// reads its source, the warp meets again (so the next shuffle cannot
// overwrite a slot that is still to be read).
template <typename T> static inline T emu_shfl(T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of a value wider than 64 bits");
    int lane = emu_lane();
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    *emu_shfl_slot(lane) = bits;
    emu_warp_barrier();
    uint64_t got = *emu_shfl_slot(src);
    emu_warp_barrier();
    T r;
    memcpy(&r, &got, sizeof(T));
    return r;
}

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask,
                                                      int width = 32) {
    emu_check_shfl(mask, width);
    return emu_shfl(v, emu_lane() ^ lane_mask);
}

template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src_lane,
                                                  int width = 32) {
    emu_check_shfl(mask, width);
    return emu_shfl(v, src_lane & 31);
}

static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    emu_check_shfl(mask, 32);
    emu_warp_barrier();
}

#define __align__(n) __attribute__((aligned(n)))

// ----------------------------------------------------------------------------
// bf16 (cuda_bf16.h): storage and the two conversions, round to nearest even

struct __nv_bfloat16 {
    uint16_t bits;
};

static inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) { // NaN stays NaN (quiet)
        h.bits = (uint16_t)((u >> 16) | 0x40u);
        return h;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    h.bits = (uint16_t)(u >> 16);
    return h;
}

static inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// ----------------------------------------------------------------------------
// warp matrix multiply-accumulate (mma.h, nvcuda::wmma), 16 x 16 x 16 bf16 in,
// fp32 accumulate. The hardware spreads a fragment over the warp's lanes in an
// unspecified layout; here every lane holds the whole tile, and the kernels
// touch fragments only through these calls. A load reads every element of the
// tile, so an element another lane wrote without a __syncwarp() first is
// stale here as on the GPU; a store writes only this lane's share (element i
// by lane i % 32), so reading back another lane's share without a
// __syncwarp() is stale too. Products of bf16 values are exact in fp32; the
// sums run in k order in fp32 (the tensor cores' order differs within their
// fp32 rounding).

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K> struct emu_dims;
template <int M, int N, int K> struct emu_dims<matrix_a, M, N, K> { enum { R = M, C = K }; };
template <int M, int N, int K> struct emu_dims<matrix_b, M, N, K> { enum { R = K, C = N }; };
template <int M, int N, int K> struct emu_dims<accumulator, M, N, K> { enum { R = M, C = N }; };

// v: the tile, row-major, whatever the memory layout it came from.
template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    enum { R = emu_dims<Use, M, N, K>::R, C = emu_dims<Use, M, N, K>::C };
    float v[R * C];
};

static inline float emu_value(__nv_bfloat16 x) { return __bfloat162float(x); }
static inline float emu_value(float x) { return x; }

template <typename Use, int M, int N, int K, typename T, typename Layout>
static inline void emu_load(fragment<Use, M, N, K, T, Layout> &f, const T *p, unsigned ldm, int col_layout) {
    typedef fragment<Use, M, N, K, T, Layout> F;
    for (int r = 0; r < F::R; r++)
        for (int c = 0; c < F::C; c++)
            f.v[r * F::C + c] = emu_value(col_layout ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c]);
}

template <typename Use, int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, row_major> &f, const T *p, unsigned ldm) {
    emu_load(f, p, ldm, 0);
}
template <typename Use, int M, int N, int K, typename T>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, col_major> &f, const T *p, unsigned ldm) {
    emu_load(f, p, ldm, 1);
}
template <int M, int N, int K>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm,
                                    layout_t l) {
    emu_load(f, p, ldm, l == mem_col_major);
}

template <int M, int N, int K>
static inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm,
                                     layout_t l) {
    int lane = emu_lane();
    for (int i = lane; i < M * N; i += 32) {
        int r = i / N, c = i % N;
        p[l == mem_col_major ? (size_t)c * ldm + r : (size_t)r * ldm + c] = f.v[i];
    }
}

template <typename Use, int M, int N, int K, typename T, typename Layout>
static inline void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float value) {
    for (int i = 0; i < fragment<Use, M, N, K, T, Layout>::R * fragment<Use, M, N, K, T, Layout>::C; i++)
        f.v[i] = value;
}

// d = a b + c (d may be c)
template <int M, int N, int K, typename T, typename LA, typename LB>
static inline void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
                            const fragment<matrix_b, M, N, K, T, LB> &b,
                            const fragment<accumulator, M, N, K, float> &c) {
    float out[M * N];
    for (int r = 0; r < M; r++)
        for (int n = 0; n < N; n++) {
            float acc = c.v[r * N + n];
            for (int k = 0; k < K; k++) acc += a.v[r * K + k] * b.v[k * N + n];
            out[r * N + n] = acc;
        }
    memcpy(d.v, out, sizeof out);
}
} // namespace wmma
} // namespace nvcuda

// ----------------------------------------------------------------------------
// runtime

typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorNoDevice = 100,
} cudaError_t;

typedef enum {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
} cudaMemcpyKind;

typedef enum {
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
} cudaDeviceAttr;

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDevice(int *dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaFree(void *p);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int dev);
const char *cudaGetErrorString(cudaError_t e);
// The emulator's stand-in for cudaGetDeviceProperties(...).name.
const char *emu_device_name(void);

// ----------------------------------------------------------------------------
// cuBLAS (the calls the backend makes)

typedef struct emu_cublas_context *cublasHandle_t;
typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_ATOMICS_NOT_ALLOWED = 0, CUBLAS_ATOMICS_ALLOWED = 1 } cublasAtomicsMode_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16BF = 14 } cudaDataType;
typedef enum {
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
} cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasSetAtomicsMode(cublasHandle_t h, cublasAtomicsMode_t mode);
const char *cublasGetStatusString(cublasStatus_t s);
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo);
cublasStatus_t cublasDgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const double *alpha, const double *A, int lda,
                           const double *B, int ldb, const double *beta, double *C, int ldc);

// ----------------------------------------------------------------------------
// cuSOLVER (dense, double)

typedef struct emu_cusolver_context *cusolverDnHandle_t;
typedef struct emu_gesvdj_info *gesvdjInfo_t;
typedef enum {
    CUSOLVER_STATUS_SUCCESS = 0,
    CUSOLVER_STATUS_INVALID_VALUE = 3,
    CUSOLVER_STATUS_EXECUTION_FAILED = 6,
} cusolverStatus_t;
typedef enum { CUSOLVER_EIG_MODE_NOVECTOR = 0, CUSOLVER_EIG_MODE_VECTOR = 1 } cusolverEigMode_t;

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *h);
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t h);
cusolverStatus_t cusolverDnCreateGesvdjInfo(gesvdjInfo_t *info);
cusolverStatus_t cusolverDnDestroyGesvdjInfo(gesvdjInfo_t info);
cusolverStatus_t cusolverDnXgesvdjSetTolerance(gesvdjInfo_t info, double tol);
cusolverStatus_t cusolverDnXgesvdjSetMaxSweeps(gesvdjInfo_t info, int max_sweeps);
cusolverStatus_t cusolverDnDgeqrf_bufferSize(cusolverDnHandle_t h, int m, int n, double *A,
                                             int lda, int *lwork);
cusolverStatus_t cusolverDnDgeqrf(cusolverDnHandle_t h, int m, int n, double *A, int lda,
                                  double *tau, double *work, int lwork, int *dev_info);
cusolverStatus_t cusolverDnDorgqr_bufferSize(cusolverDnHandle_t h, int m, int n, int k,
                                             const double *A, int lda, const double *tau,
                                             int *lwork);
cusolverStatus_t cusolverDnDorgqr(cusolverDnHandle_t h, int m, int n, int k, double *A, int lda,
                                  const double *tau, double *work, int lwork, int *dev_info);
cusolverStatus_t cusolverDnDgesvdj_bufferSize(cusolverDnHandle_t h, cusolverEigMode_t jobz,
                                              int econ, int m, int n, const double *A, int lda,
                                              const double *S, const double *U, int ldu,
                                              const double *V, int ldv, int *lwork,
                                              gesvdjInfo_t params);
cusolverStatus_t cusolverDnDgesvdj(cusolverDnHandle_t h, cusolverEigMode_t jobz, int econ, int m,
                                   int n, double *A, int lda, double *S, double *U, int ldu,
                                   double *V, int ldv, double *work, int lwork, int *dev_info,
                                   gesvdjInfo_t params);
cusolverStatus_t cusolverDnDgesvd_bufferSize(cusolverDnHandle_t h, int m, int n, int *lwork);
cusolverStatus_t cusolverDnDgesvd(cusolverDnHandle_t h, signed char jobu, signed char jobvt,
                                  int m, int n, double *A, int lda, double *S, double *U,
                                  int ldu, double *VT, int ldvt, double *work, int lwork,
                                  double *rwork, int *dev_info);

#endif
