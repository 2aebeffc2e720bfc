// cuda_backend: device setup, memory, the matrix products (cuBLAS), and the
// ls_backend table that gathers the ops of cuda_ops.cu, cuda_ops_encoder.cu
// and cuda_attention.cu.
#include "cuda_common.cuh"

#include "base/clock.h"

lsc_state lsc;

// ----------------------------------------------------------------------------
// errors

void lsc_die(const char *what, const char *detail, const char *file, int line) {
    fprintf(stderr, "cuda backend: %s: %s (%s:%d)\n", what, detail, file, line);
    exit(1);
}

// ----------------------------------------------------------------------------
// allocation tracking (for ls_cuda_memory): a small table pointer -> bytes

typedef struct {
    void *p;
    size_t bytes;
} lsc_block;

static lsc_block *blocks;
static size_t n_blocks, cap_blocks, mem_current, mem_peak;

void *lsc_device_alloc(size_t bytes) {
    void *p = NULL;
    size_t b = bytes ? bytes : 1;
    cudaError_t e = cudaMalloc(&p, b);
    if (e != cudaSuccess) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s allocating %zu bytes (%zu already held)",
                 cudaGetErrorString(e), b, mem_current);
        lsc_die("cudaMalloc", msg, __FILE__, __LINE__);
    }
    if (n_blocks == cap_blocks) {
        cap_blocks = cap_blocks ? 2 * cap_blocks : 64;
        lsc_block *nb = (lsc_block *)ls_malloc(cap_blocks * sizeof(lsc_block));
        if (n_blocks) memcpy(nb, blocks, n_blocks * sizeof(lsc_block));
        free(blocks);
        blocks = nb;
    }
    blocks[n_blocks].p = p;
    blocks[n_blocks].bytes = b;
    n_blocks++;
    mem_current += b;
    if (mem_current > mem_peak) mem_peak = mem_current;
    return p;
}

void lsc_device_free(void *p) {
    if (!p) return;
    for (size_t i = n_blocks; i-- > 0;) {
        if (blocks[i].p != p) continue;
        mem_current -= blocks[i].bytes;
        blocks[i] = blocks[--n_blocks];
        LSC_CUDA(cudaFree(p));
        return;
    }
    lsc_die("free", "pointer not allocated by the CUDA backend", __FILE__, __LINE__);
}

void *lsc_scratch(size_t bytes) {
    if (bytes > lsc.scratch_bytes) {
        lsc_device_free(lsc.scratch);
        size_t grown = lsc.scratch_bytes + lsc.scratch_bytes / 2;
        lsc.scratch_bytes = bytes > grown ? bytes : grown;
        lsc.scratch = lsc_device_alloc(lsc.scratch_bytes);
    }
    return lsc.scratch;
}

extern "C" void ls_cuda_memory(size_t *current_bytes, size_t *peak_bytes) {
    if (current_bytes) *current_bytes = mem_current;
    if (peak_bytes) *peak_bytes = mem_peak;
}

extern "C" void ls_cuda_reset_peak(void) { mem_peak = mem_current; }

extern "C" void ls_cuda_synchronize(void) {
    if (lsc.ready) LSC_CUDA(cudaDeviceSynchronize());
}

// ----------------------------------------------------------------------------
// memory ops of the table

static float *cuda_alloc(size_t n) {
    float *p = (float *)lsc_device_alloc(n * sizeof(float));
    LSC_CUDA(cudaMemset(p, 0, (n ? n : 1) * sizeof(float)));
    return p;
}

static void cuda_free(float *p) { lsc_device_free(p); }

static void cuda_upload(float *dst, const float *host_src, size_t n) {
    if (n) LSC_CUDA(cudaMemcpy(dst, host_src, n * sizeof(float), cudaMemcpyHostToDevice));
}

static void cuda_download(float *host_dst, const float *src, size_t n) {
    if (n) LSC_CUDA(cudaMemcpy(host_dst, src, n * sizeof(float), cudaMemcpyDeviceToHost));
}

// memmove semantics, as the CPU backend: overlapping ranges go through scratch.
void lsc_copy(float *dst, const float *src, size_t n) {
    if (!n || dst == src) return;
    size_t bytes = n * sizeof(float);
    if (dst < src + n && src < dst + n) {
        void *tmp = lsc_scratch(bytes);
        LSC_CUDA(cudaMemcpy(tmp, src, bytes, cudaMemcpyDeviceToDevice));
        LSC_CUDA(cudaMemcpy(dst, tmp, bytes, cudaMemcpyDeviceToDevice));
        return;
    }
    LSC_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

static void cuda_zero(float *p, size_t n) {
    if (n) LSC_CUDA(cudaMemset(p, 0, n * sizeof(float)));
}

static int *cuda_alloc_int(size_t n) {
    int *p = (int *)lsc_device_alloc((n ? n : 1) * sizeof(int));
    LSC_CUDA(cudaMemset(p, 0, (n ? n : 1) * sizeof(int)));
    return p;
}

static void cuda_free_int(int *p) { lsc_device_free(p); }

static void cuda_upload_int(int *dst, const int *host_src, size_t n) {
    if (n) LSC_CUDA(cudaMemcpy(dst, host_src, n * sizeof(int), cudaMemcpyHostToDevice));
}

// ----------------------------------------------------------------------------
// matrix products

static cublasComputeType_t compute_type(void) {
    return lsc.precision == LS_CUDA_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// dst (rows, cols) packed bf16 <- src (rows, cols) fp32 with leading dimension ld
__global__ void to_bf16_kernel(__nv_bfloat16 *dst, const float *src, int rows, int cols, int ld) {
    size_t n = (size_t)rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16(src[(i / cols) * (size_t)ld + i % cols]);
}

// Operand `slot` of a bf16 product: src (rows, cols, ld) rounded into a packed
// grow-only buffer (leading dimension cols).
static const __nv_bfloat16 *bf16_operand(int slot, const float *src, int rows, int cols, int ld) {
    size_t bytes = (size_t)rows * cols * sizeof(__nv_bfloat16);
    if (bytes > lsc.bf16_bytes[slot]) {
        lsc_device_free(lsc.bf16_ops[slot]);
        size_t grown = lsc.bf16_bytes[slot] + lsc.bf16_bytes[slot] / 2;
        lsc.bf16_bytes[slot] = bytes > grown ? bytes : grown;
        lsc.bf16_ops[slot] = lsc_device_alloc(lsc.bf16_bytes[slot]);
    }
    __nv_bfloat16 *dst = (__nv_bfloat16 *)lsc.bf16_ops[slot];
    LSC_LAUNCH(to_bf16_kernel, lsc_grid((size_t)rows * cols, 256), 256, dst, src, rows, cols, ld);
    return dst;
}

// Row-major C (M,N) = alpha op(A) op(B) + beta C. cuBLAS is column-major: a
// row-major X with leading dimension ld is the column-major X^T, so computing
// C^T = op(B)^T op(A)^T swaps the operands and keeps each one's flag.
void lsc_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { // the CPU backend's meaning of K = 0: C *= beta
        lsc_scale_matrix(C, M, N, ldc, beta);
        return;
    }
    if (lsc.precision == LS_CUDA_BF16) { // bf16 operands (rounded copies), fp32 C and accumulation
        int ra = trans_a ? K : M, ca = trans_a ? M : K, rb = trans_b ? N : K, cb = trans_b ? K : N;
        const __nv_bfloat16 *a16 = bf16_operand(0, A, ra, ca, lda), *b16 = bf16_operand(1, B, rb, cb, ldb);
        LSC_CUBLAS(cublasGemmEx(lsc.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                N, M, K, &alpha, b16, CUDA_R_16BF, cb, a16, CUDA_R_16BF, ca, &beta, C, CUDA_R_32F,
                                ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return;
    }
    LSC_CUBLAS(cublasGemmEx(lsc.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                            trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, CUDA_R_32F,
                            ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc, compute_type(),
                            CUBLAS_GEMM_DEFAULT));
}

// x (n values) <- a fixed pattern in [-0.5, 0.5), for the peak's operands
__global__ void pattern_bf16_kernel(__nv_bfloat16 *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = __float2bfloat16((float)((i * 2654435761u) % 1024u) / 1024.0f - 0.5f);
}

// The card's bf16-storage product rate: C (n, n) bf16 = A B with A, B bf16 in
// memory and fp32 accumulation (what a bf16 framework's matmul runs), the
// best of 5 after one warm-up; FLOP/s, or -1 before a device is set up.
extern "C" double ls_cuda_bf16_gemm_flops(int n) {
    if (!lsc.ready || n < 1) return -1.0;
    size_t nn = (size_t)n * n;
    __nv_bfloat16 *a = (__nv_bfloat16 *)lsc_device_alloc(nn * sizeof *a);
    __nv_bfloat16 *b = (__nv_bfloat16 *)lsc_device_alloc(nn * sizeof *b);
    __nv_bfloat16 *c = (__nv_bfloat16 *)lsc_device_alloc(nn * sizeof *c);
    LSC_LAUNCH(pattern_bf16_kernel, lsc_grid(nn, 256), 256, a, nn);
    LSC_LAUNCH(pattern_bf16_kernel, lsc_grid(nn, 256), 256, b, nn);
    float one = 1.0f, zero = 0.0f;
    double best = 1e30;
    for (int k = 0; k < 6; k++) {
        LSC_CUDA(cudaDeviceSynchronize());
        double t0 = ls_now();
        LSC_CUBLAS(cublasGemmEx(lsc.blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b, CUDA_R_16BF, n, a, CUDA_R_16BF,
                                n, &zero, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        LSC_CUDA(cudaDeviceSynchronize());
        double t = ls_now() - t0;
        if (k > 0 && t < best) best = t;
    }
    lsc_device_free(a);
    lsc_device_free(b);
    lsc_device_free(c);
    return 2.0 * n * (double)nn / (best > 0 ? best : 1e-9);
}

// out (N,OC) rows <- bias (OC)
__global__ void broadcast_rows_kernel(float *out, const float *bias, int N, int OC) {
    size_t n = (size_t)N * OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias[i % OC];
}

// inp (N,C), weight (OC,C), bias (OC) -> out (N,OC) = inp weight^T + bias
void lsc_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int OC) {
    float beta = 0.0f;
    if (bias) { // as the CPU backend: the bias rows are sgemm's C with beta = 1
        LSC_LAUNCH(broadcast_rows_kernel, lsc_grid((size_t)N * OC, 256), 256, out, bias, N, OC);
        beta = 1.0f;
    }
    lsc_gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

// dout (N,OC), inp (N,C), weight (OC,C) -> dinp (N,C), dweight (OC,C) +=, dbias (OC) +=
void lsc_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC) {
    if (dinp) lsc_gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
    if (dweight) lsc_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) lsc_colsum_add(dbias, dout, N, OC);
}

// ----------------------------------------------------------------------------
// setup

static void apply_blas_settings(void) {
    LSC_CUBLAS(cublasSetAtomicsMode(lsc.blas, lsc.allow_atomics ? CUBLAS_ATOMICS_ALLOWED
                                                                : CUBLAS_ATOMICS_NOT_ALLOWED));
    LSC_CUBLAS(cublasSetWorkspace(lsc.blas, lsc.workspace, lsc.workspace_bytes));
}

int lsc_init(void) {
    if (lsc.ready) return 0;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return ls_fail("no CUDA device: %s", cudaGetErrorString(e));
    if (count == 0) return ls_fail("no CUDA device: %s", cudaGetErrorString(cudaErrorNoDevice));
    int dev = 0;
    e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaFree(0); // creates the context now, so failures show here
    if (e != cudaSuccess) return ls_fail("no CUDA device: %s", cudaGetErrorString(e));
    cublasStatus_t s = cublasCreate(&lsc.blas);
    if (s != CUBLAS_STATUS_SUCCESS)
        return ls_fail("no CUDA device: cublasCreate failed: %s", cublasGetStatusString(s));
#ifdef LS_CUDA_EMULATE
    snprintf(lsc.device_name, sizeof lsc.device_name, "%s", emu_device_name());
#else
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
        snprintf(lsc.device_name, sizeof lsc.device_name, "%s", prop.name);
#endif
    lsc.workspace_bytes = (size_t)32 << 20;
    lsc.workspace = lsc_device_alloc(lsc.workspace_bytes);
    lsc.ready = 1;
    apply_blas_settings();
    return 0;
}

extern "C" void ls_cuda_set_precision(ls_cuda_precision p) { lsc.precision = p; }
extern "C" ls_cuda_precision ls_cuda_get_precision(void) { return lsc.precision; }

extern "C" const char *ls_cuda_precision_name(ls_cuda_precision p) {
    switch (p) {
    case LS_CUDA_TF32: return "tf32";
    case LS_CUDA_BF16: return "bf16";
    default: return "fp32";
    }
}

extern "C" int ls_cuda_parse_precision(const char *s, ls_cuda_precision *p) {
    if (s && strcmp(s, "fp32") == 0) *p = LS_CUDA_FP32;
    else if (s && strcmp(s, "tf32") == 0) *p = LS_CUDA_TF32;
    else if (s && strcmp(s, "bf16") == 0) *p = LS_CUDA_BF16;
    else return ls_fail("precision: expected fp32, tf32 or bf16, found \"%s\"", s ? s : "");
    return 0;
}

extern "C" void ls_cuda_set_deterministic(int on) {
    lsc.allow_atomics = on == 0;
    if (lsc.ready) apply_blas_settings();
}

extern "C" const char *ls_cuda_device_name(void) { return lsc.device_name; }

// Filled by name at first use (C++ before C++20 has no designated initialisers,
// and by-name assignment survives reordering of backend.h).
static ls_backend cuda_backend;

static void fill_table(ls_backend *b) {
    b->kind = LS_BACKEND_CUDA;
#ifdef LS_CUDA_EMULATE
    b->name = "cuda-emu";
#else
    b->name = "cuda";
#endif
    b->alloc = cuda_alloc;
    b->free = cuda_free;
    b->upload = cuda_upload;
    b->download = cuda_download;
    b->copy = lsc_copy;
    b->zero = cuda_zero;
    b->copy_rows = lsc_copy_rows;
    b->alloc_int = cuda_alloc_int;
    b->free_int = cuda_free_int;
    b->upload_int = cuda_upload_int;
    b->gemm = lsc_gemm;
    b->matmul_forward = lsc_matmul_forward;
    b->matmul_backward = lsc_matmul_backward;
    b->layernorm_forward = lsc_layernorm_forward;
    b->layernorm_backward = lsc_layernorm_backward;
    b->rmsnorm_forward = lsc_rmsnorm_forward;
    b->rmsnorm_backward = lsc_rmsnorm_backward;
    b->rope_forward = lsc_rope_forward;
    b->rope_backward = lsc_rope_backward;
    b->attention_sizes = lsc_attention_sizes;
    b->attention_forward = lsc_attention_forward;
    b->attention_backward = lsc_attention_backward;
    b->attention_decode = lsc_attention_decode;
    b->gelu_forward = lsc_gelu_forward;
    b->gelu_backward = lsc_gelu_backward;
    b->swiglu_forward = lsc_swiglu_forward;
    b->swiglu_backward = lsc_swiglu_backward;
    b->residual_forward = lsc_residual_forward;
    b->residual_backward = lsc_residual_backward;
    b->dropout = lsc_dropout;
    b->axpy = lsc_axpy;
    b->scale = lsc_scale;
    b->sumsq = lsc_sumsq;
    b->embedding_forward = lsc_embedding_forward;
    b->embedding_backward = lsc_embedding_backward;
    b->crossentropy_forward = lsc_crossentropy_forward;
    b->crossentropy_backward = lsc_crossentropy_backward;
    b->adamw = lsc_adamw;
    b->attention_bidir_forward = lsc_attention_bidir_forward;
    b->attention_bidir_backward = lsc_attention_bidir_backward;
    b->gelu_erf_forward = lsc_gelu_erf_forward;
    b->gelu_erf_backward = lsc_gelu_erf_backward;
    b->tanh_forward = lsc_tanh_forward;
    b->tanh_backward = lsc_tanh_backward;
    b->mean_pool_forward = lsc_mean_pool_forward;
    b->mean_pool_backward = lsc_mean_pool_backward;
}

extern "C" const ls_backend *ls_backend_cuda(void) {
    if (lsc_init() != 0) return NULL;
    if (!cuda_backend.name) fill_table(&cuda_backend);
    return &cuda_backend;
}

extern "C" int ls_cuda_available(void) { return lsc_init() == 0; }
