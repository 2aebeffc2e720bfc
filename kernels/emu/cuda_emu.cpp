// cuda_emu: fibers for the threads of a block, host memory for device memory,
// reference products for cuBLAS and LAPACKE for cuSOLVER (see cuda_emu.h).
//
// Fibers switch stacks with a six-register context switch on x86-64 (no
// signal-mask system call: a switch costs nanoseconds), and with
// swapcontext on other machines.
#include "cuda_emu.h"

#include <lapacke.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <vector>

emu_builtins emu_cur;

static void emu_fatal(const char *fmt, const char *detail) {
    fprintf(stderr, "cuda emulator: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, " (block %u,%u,%u thread %u,%u,%u)\n", emu_cur.block.x, emu_cur.block.y,
            emu_cur.block.z, emu_cur.thread.x, emu_cur.thread.y, emu_cur.thread.z);
    abort();
}

// ----------------------------------------------------------------------------
// context switch

#if defined(__x86_64__) && !defined(LS_CUDA_EMU_UCONTEXT)
// Saves the callee-saved registers of the System V ABI on the current stack,
// stores the stack pointer in *save, and resumes the stack `next` the same way.
extern "C" void lsc_emu_switch(void **save, void *next);
__asm__(".text\n"
        ".p2align 4\n"
        ".type lsc_emu_switch, @function\n"
        "lsc_emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size lsc_emu_switch, .-lsc_emu_switch\n");
typedef void *emu_ctx;
#else
typedef ucontext_t emu_ctx;
#endif

// ----------------------------------------------------------------------------
// fibers

enum { F_RUNNABLE = 0, F_AT_BLOCK = 1, F_AT_WARP = 2, F_DONE = 3 };

struct emu_fiber {
    int state;
    uint3 tid;
    emu_ctx ctx;
};

static const size_t STACK_BYTES = 256 * 1024;
static const int MAX_THREADS = 1024;

static std::vector<emu_fiber> fibers;
static char *stacks; // MAX_THREADS stacks, mapped once, pages touched on demand
static emu_ctx sched_ctx;
static int cur_fiber = -1;
static const std::function<void()> *cur_body;
static uint64_t shfl_slots[MAX_THREADS];

static void switch_to(emu_ctx *save, emu_ctx *next) {
#if defined(__x86_64__) && !defined(LS_CUDA_EMU_UCONTEXT)
    lsc_emu_switch(save, *next);
#else
    if (swapcontext(save, next) != 0) emu_fatal("%s failed", "swapcontext");
#endif
}

static void fiber_main(void) {
    (*cur_body)();
    fibers[cur_fiber].state = F_DONE;
    switch_to(&fibers[cur_fiber].ctx, &sched_ctx);
    emu_fatal("%s resumed", "a finished thread");
}

// Prepares fiber i to start fiber_main on its own stack at the next switch.
static void init_fiber(int i) {
    char *top = stacks + (size_t)(i + 1) * STACK_BYTES; // 16-byte aligned
#if defined(__x86_64__) && !defined(LS_CUDA_EMU_UCONTEXT)
    // what lsc_emu_switch pops: six registers, then the return address; after
    // the `ret` the stack pointer is top - 8, as at the entry of a called function
    void **sp = (void **)(top - 8);
    *--sp = (void *)fiber_main;
    for (int k = 0; k < 6; k++) *--sp = NULL;
    fibers[i].ctx = sp;
#else
    ucontext_t *uc = &fibers[i].ctx;
    if (getcontext(uc) != 0) emu_fatal("%s failed", "getcontext");
    uc->uc_stack.ss_sp = top - STACK_BYTES;
    uc->uc_stack.ss_size = STACK_BYTES;
    uc->uc_link = NULL;
    makecontext(uc, fiber_main, 0);
#endif
}

static void yield_with(int state) {
    if (cur_fiber < 0) emu_fatal("%s called outside a kernel", "a barrier");
    emu_fiber &f = fibers[cur_fiber];
    f.state = state;
    switch_to(&f.ctx, &sched_ctx);
}

void emu_block_barrier(void) { yield_with(F_AT_BLOCK); }
void emu_warp_barrier(void) { yield_with(F_AT_WARP); }

int emu_lane(void) { return cur_fiber % 32; }

uint64_t *emu_shfl_slot(int lane) { return &shfl_slots[(cur_fiber / 32) * 32 + lane]; }

void emu_check_shfl(unsigned mask, int width) {
    if (mask != 0xffffffffu) emu_fatal("%s: only full-warp shuffles are emulated", "shuffle");
    if (width != 32) emu_fatal("%s: only width 32 is emulated", "shuffle");
    if (emu_cur.block_dim.x * emu_cur.block_dim.y * emu_cur.block_dim.z % 32 != 0)
        emu_fatal("%s in a block whose size is not a multiple of 32", "shuffle");
}

static int reverse_order(void) {
    static int order = -1;
    if (order < 0) {
        const char *e = getenv("LS_CUDA_EMU_ORDER");
        order = e && strcmp(e, "reverse") == 0;
    }
    return order;
}

static void run_fiber(int i) {
    cur_fiber = i;
    emu_cur.thread = fibers[i].tid;
    switch_to(&sched_ctx, &fibers[i].ctx); // back when it yields or finishes
}

static void run_block(int n) {
    for (int i = 0; i < n; i++) {
        fibers[i].state = F_RUNNABLE;
        init_fiber(i);
    }
    int reverse = reverse_order();
    for (;;) {
        for (int k = 0; k < n; k++) {
            int i = reverse ? n - 1 - k : k;
            if (fibers[i].state == F_RUNNABLE) run_fiber(i);
        }
        int done = 0, at_block = 0;
        for (int i = 0; i < n; i++) {
            done += fibers[i].state == F_DONE;
            at_block += fibers[i].state == F_AT_BLOCK;
        }
        if (done == n) break;
        int released = 0;
        for (int w = 0; w * 32 < n; w++) {
            int lanes = n - w * 32 < 32 ? n - w * 32 : 32, at = 0, gone = 0;
            for (int l = 0; l < lanes; l++) {
                at += fibers[w * 32 + l].state == F_AT_WARP;
                gone += fibers[w * 32 + l].state == F_DONE;
            }
            if (at > 0 && at + gone == lanes) {
                if (gone) {
                    cur_fiber = w * 32;
                    emu_cur.thread = fibers[w * 32].tid;
                    emu_fatal("%s: a warp shuffles while some of its lanes have exited",
                              "shuffle");
                }
                for (int l = 0; l < lanes; l++) fibers[w * 32 + l].state = F_RUNNABLE;
                released = 1;
            }
        }
        if (released) continue;
        if (at_block > 0 && at_block + done == n) {
            if (done) emu_fatal("%s: some threads of the block exited before it", "__syncthreads");
            for (int i = 0; i < n; i++) fibers[i].state = F_RUNNABLE;
            continue;
        }
        emu_fatal("%s: threads wait at different barriers", "deadlock");
    }
    cur_fiber = -1;
}

void emu_launch(dim3 grid, dim3 block, const std::function<void()> &body) {
    int n = (int)(block.x * block.y * block.z);
    if (n <= 0 || n > MAX_THREADS) emu_fatal("%s: block size out of range", "launch");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) emu_fatal("%s: empty grid", "launch");
    if (!stacks) {
        void *p = mmap(NULL, STACK_BYTES * MAX_THREADS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) emu_fatal("%s: cannot map fiber stacks", "launch");
        stacks = (char *)p;
        fibers.resize(MAX_THREADS);
    }
    for (int i = 0; i < n; i++) {
        fibers[i].tid.x = (unsigned)i % block.x;
        fibers[i].tid.y = (unsigned)i / block.x % block.y;
        fibers[i].tid.z = (unsigned)i / (block.x * block.y);
    }
    cur_body = &body;
    emu_cur.block_dim = block;
    emu_cur.grid_dim = grid;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                emu_cur.block.x = x;
                emu_cur.block.y = y;
                emu_cur.block.z = z;
                run_block(n);
            }
    cur_body = NULL;
}

// ----------------------------------------------------------------------------
// runtime

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *dev) {
    *dev = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : cudaErrorInvalidValue; }

cudaError_t cudaMalloc(void **p, size_t bytes) {
    size_t b = (bytes + 255) & ~(size_t)255;
    *p = aligned_alloc(256, b ? b : 256);
    if (!*p) return cudaErrorMemoryAllocation;
    // Fresh device memory holds garbage: NaN bytes catch reads of unwritten memory.
    memset(*p, 0xff, b ? b : 256);
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    (void)kind;
    if (bytes == 0) return cudaSuccess;
    const char *d = (const char *)dst, *s = (const char *)src;
    if (d != s && d < s + bytes && s < d + bytes) return cudaErrorInvalidValue;
    memcpy(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = 0;
    *total_bytes = 0;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int dev) {
    (void)dev;
    switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 1; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 0; break;
    default: *value = 0; break;
    }
    return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    }
    return "unknown error";
}

const char *emu_device_name(void) { return "CUDA emulator (CPU)"; }

// ----------------------------------------------------------------------------
// cuBLAS

struct emu_cublas_context {
    int unused;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = (cublasHandle_t)calloc(1, sizeof(emu_cublas_context));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    (void)h;
    (void)ws;
    (void)bytes;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetAtomicsMode(cublasHandle_t h, cublasAtomicsMode_t mode) {
    (void)h;
    (void)mode;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}

// Rounds to TF32 (10 mantissa bits) or BF16 (7), nearest even: what tensor
// cores see of an fp32 input under the FAST compute types.
static float round_mantissa(float x, int keep_bits) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; // inf / nan
    int drop = 23 - keep_bits;
    uint32_t half = 1u << (drop - 1), lsb = (u >> drop) & 1u;
    u = (u + half - 1 + lsb) & ~((1u << drop) - 1);
    float r;
    memcpy(&r, &u, 4);
    return r;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo) {
    (void)h;
    (void)algo;
    int bf = at == CUDA_R_16BF && bt == CUDA_R_16BF; // bf16 operands, fp32 or bf16 C (compute 32F)
    int cbf = ct == CUDA_R_16BF;
    if (!(bf || (at == CUDA_R_32F && bt == CUDA_R_32F)) || !(ct == CUDA_R_32F || (bf && cbf)))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (bf && compute != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
        return CUBLAS_STATUS_INVALID_VALUE;
    int keep = compute == CUBLAS_COMPUTE_32F_FAST_TF32 ? 10
               : compute == CUBLAS_COMPUTE_32F_FAST_16BF ? 7 : 23;
    const float *a = (const float *)A, *b = (const float *)B;
    const __nv_bfloat16 *ah = (const __nv_bfloat16 *)A, *bh = (const __nv_bfloat16 *)B;
    float *c = (float *)C, al = *(const float *)alpha, be = *(const float *)beta;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                size_t ia = ta == CUBLAS_OP_N ? i + (size_t)p * lda : p + (size_t)i * lda;
                size_t ib = tb == CUBLAS_OP_N ? p + (size_t)j * ldb : j + (size_t)p * ldb;
                float x = bf ? __bfloat162float(ah[ia]) : a[ia], y = bf ? __bfloat162float(bh[ib]) : b[ib];
                if (keep < 23) { x = round_mantissa(x, keep); y = round_mantissa(y, keep); }
                s += (double)x * y;
            }
            // BLAS: beta == 0 means C is not read (it may hold NaN); a bf16 C is rounded once
            if (cbf) {
                __nv_bfloat16 *cij = (__nv_bfloat16 *)C + i + (size_t)j * ldc;
                double old = be == 0.0f ? 0.0 : (double)be * __bfloat162float(*cij);
                *cij = __float2bfloat16((float)(al * s + old));
                continue;
            }
            float *cij = c + i + (size_t)j * ldc;
            *cij = be == 0.0f ? (float)(al * s) : (float)(al * s + (double)be * *cij);
        }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const double *alpha, const double *A, int lda,
                           const double *B, int ldb, const double *beta, double *C, int ldc) {
    (void)h;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                double x = ta == CUBLAS_OP_N ? A[i + (size_t)p * lda] : A[p + (size_t)i * lda];
                double y = tb == CUBLAS_OP_N ? B[p + (size_t)j * ldb] : B[j + (size_t)p * ldb];
                s += x * y;
            }
            double *cij = C + i + (size_t)j * ldc;
            *cij = *beta == 0.0 ? *alpha * s : *alpha * s + *beta * *cij;
        }
    return CUBLAS_STATUS_SUCCESS;
}

// ----------------------------------------------------------------------------
// cuSOLVER through LAPACKE (column-major, as cuSOLVER)

struct emu_cusolver_context {
    int unused;
};
struct emu_gesvdj_info {
    double tol;
    int max_sweeps;
};

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *h) {
    *h = (cusolverDnHandle_t)calloc(1, sizeof(emu_cusolver_context));
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t h) {
    free(h);
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnCreateGesvdjInfo(gesvdjInfo_t *info) {
    *info = (gesvdjInfo_t)calloc(1, sizeof(emu_gesvdj_info));
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDestroyGesvdjInfo(gesvdjInfo_t info) {
    free(info);
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnXgesvdjSetTolerance(gesvdjInfo_t info, double tol) {
    info->tol = tol;
    return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnXgesvdjSetMaxSweeps(gesvdjInfo_t info, int max_sweeps) {
    info->max_sweeps = max_sweeps;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgeqrf_bufferSize(cusolverDnHandle_t h, int m, int n, double *A,
                                             int lda, int *lwork) {
    (void)h;
    (void)A;
    (void)lda;
    *lwork = m > n ? m : n;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgeqrf(cusolverDnHandle_t h, int m, int n, double *A, int lda,
                                  double *tau, double *work, int lwork, int *dev_info) {
    (void)h;
    (void)work;
    (void)lwork;
    *dev_info = (int)LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, A, lda, tau);
    return *dev_info < 0 ? CUSOLVER_STATUS_INVALID_VALUE : CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDorgqr_bufferSize(cusolverDnHandle_t h, int m, int n, int k,
                                             const double *A, int lda, const double *tau,
                                             int *lwork) {
    (void)h;
    (void)k;
    (void)A;
    (void)lda;
    (void)tau;
    *lwork = m > n ? m : n;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDorgqr(cusolverDnHandle_t h, int m, int n, int k, double *A, int lda,
                                  const double *tau, double *work, int lwork, int *dev_info) {
    (void)h;
    (void)work;
    (void)lwork;
    *dev_info = (int)LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, n, k, A, lda, tau);
    return *dev_info < 0 ? CUSOLVER_STATUS_INVALID_VALUE : CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgesvdj_bufferSize(cusolverDnHandle_t h, cusolverEigMode_t jobz,
                                              int econ, int m, int n, const double *A, int lda,
                                              const double *S, const double *U, int ldu,
                                              const double *V, int ldv, int *lwork,
                                              gesvdjInfo_t params) {
    (void)h; (void)jobz; (void)econ; (void)A; (void)lda; (void)S; (void)U; (void)ldu;
    (void)V; (void)ldv; (void)params;
    *lwork = m > n ? m : n;
    return CUSOLVER_STATUS_SUCCESS;
}

// gesvdj's contract: econ = 1 gives U (m x p), V (n x p) -- V itself, not V^T --
// singular values descending.
cusolverStatus_t cusolverDnDgesvdj(cusolverDnHandle_t h, cusolverEigMode_t jobz, int econ, int m,
                                   int n, double *A, int lda, double *S, double *U, int ldu,
                                   double *V, int ldv, double *work, int lwork, int *dev_info,
                                   gesvdjInfo_t params) {
    (void)h; (void)work; (void)lwork; (void)params;
    if (jobz != CUSOLVER_EIG_MODE_VECTOR || econ != 1) return CUSOLVER_STATUS_INVALID_VALUE;
    int p = m < n ? m : n;
    std::vector<double> vt((size_t)p * n), superb(p > 1 ? p - 1 : 1);
    lapack_int info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'S', 'S', m, n, A, lda, S, U, ldu,
                                     vt.data(), p, superb.data());
    *dev_info = (int)info;
    if (info < 0) return CUSOLVER_STATUS_INVALID_VALUE;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p; j++) V[i + (size_t)j * ldv] = vt[j + (size_t)i * p];
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgesvd_bufferSize(cusolverDnHandle_t h, int m, int n, int *lwork) {
    (void)h;
    *lwork = m > n ? m : n;
    return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgesvd(cusolverDnHandle_t h, signed char jobu, signed char jobvt,
                                  int m, int n, double *A, int lda, double *S, double *U,
                                  int ldu, double *VT, int ldvt, double *work, int lwork,
                                  double *rwork, int *dev_info) {
    (void)h; (void)work; (void)lwork; (void)rwork;
    if (m < n) return CUSOLVER_STATUS_INVALID_VALUE; // cuSOLVER's gesvd needs m >= n
    int p = n;
    std::vector<double> superb(p > 1 ? p - 1 : 1);
    lapack_int info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, (char)jobu, (char)jobvt, m, n, A, lda, S,
                                     U, ldu, VT, ldvt, superb.data());
    *dev_info = (int)info;
    return info < 0 ? CUSOLVER_STATUS_INVALID_VALUE : CUSOLVER_STATUS_SUCCESS;
}
