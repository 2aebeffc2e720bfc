// cuda_ops_encoder: the pointwise and pooling ops of the encoder family
// (BERT, RoBERTa): exact (erf) GELU, tanh (the pooler), masked mean pooling.
// Transcriptions of engine/ops_cpu_encoder.c; the bidirectional attention is
// in cuda_attention.cu.
//
// Mean pooling sums each (sequence, channel) over the tokens in token order
// in one thread, as the CPU loop does: the same additions, so the same bits.
#include "cuda_common.cuh"

#define ENC_THREADS 256
#define ENC_INV_SQRT2 0.70710678118654752f
#define ENC_INV_SQRT_2PI 0.39894228040143268f

// ----------------------------------------------------------------------------
// pointwise (grid-stride)

// inp (n) -> out (n) = 0.5 x (1 + erf(x / sqrt 2))
__global__ void gelu_erf_forward_kernel(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * ENC_INV_SQRT2));
}

// d/dx = Phi(x) + x phi(x)
__global__ void gelu_erf_backward_kernel(float *dinp, const float *inp, const float *dout,
                                         size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * ENC_INV_SQRT2));
        float pdf = ENC_INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}

__global__ void tanh_forward_kernel(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = tanhf(inp[i]);
}

// from the forward's output: d tanh = 1 - tanh^2
__global__ void tanh_backward_kernel(float *dinp, const float *out, const float *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

void lsc_gelu_erf_forward(float *out, const float *inp, size_t n) {
    if (n) LSC_LAUNCH(gelu_erf_forward_kernel, lsc_grid(n, ENC_THREADS), ENC_THREADS, out, inp, n);
}

void lsc_gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    if (n)
        LSC_LAUNCH(gelu_erf_backward_kernel, lsc_grid(n, ENC_THREADS), ENC_THREADS, dinp, inp,
                   dout, n);
}

void lsc_tanh_forward(float *out, const float *inp, size_t n) {
    if (n) LSC_LAUNCH(tanh_forward_kernel, lsc_grid(n, ENC_THREADS), ENC_THREADS, out, inp, n);
}

void lsc_tanh_backward(float *dinp, const float *out, const float *dout, size_t n) {
    if (n)
        LSC_LAUNCH(tanh_backward_kernel, lsc_grid(n, ENC_THREADS), ENC_THREADS, dinp, out, dout,
                   n);
}

// ----------------------------------------------------------------------------
// masked mean pooling (sentence-transformers' "mean")

// inp (B,T,C), mask (B,T) or NULL -> out (B,C) = sum of kept rows / max(1, kept).
// grid (channel blocks, B): one thread per (b, c), tokens in order.
__global__ void mean_pool_forward_kernel(float *out, const float *inp, const int *mask, int T,
                                         int C) {
    int b = (int)blockIdx.y, c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= C) return;
    const int *m = mask ? mask + (size_t)b * T : NULL;
    float acc = 0.0f;
    int count = 0;
    for (int t = 0; t < T; t++) {
        if (m && !m[t]) continue;
        acc += inp[((size_t)b * T + t) * C + c];
        count++;
    }
    out[(size_t)b * C + c] = acc * (1.0f / (float)(count > 0 ? count : 1));
}

// dout (B,C) -> dinp (B,T,C) = dout / kept on kept tokens, 0 elsewhere.
// grid (element blocks, B); the block counts its sequence's kept tokens first.
__global__ void mean_pool_backward_kernel(float *dinp, const float *dout, const int *mask, int T,
                                          int C) {
    __shared__ int sh[32];
    int b = (int)blockIdx.y;
    const int *m = mask ? mask + (size_t)b * T : NULL;
    int kept = 0;
    for (int t = (int)threadIdx.x; t < T; t += (int)blockDim.x) kept += !m || m[t];
    kept = lsc_block_sum(kept, sh);
    float inv = 1.0f / (float)(kept > 0 ? kept : 1);
    size_t n = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int t = (int)(i / C), c = (int)(i % C);
        dinp[(size_t)b * n + i] = !m || m[t] ? dout[(size_t)b * C + c] * inv : 0.0f;
    }
}

void lsc_mean_pool_forward(float *out, const float *inp, const int *mask, int B, int T, int C) {
    if (B <= 0 || C <= 0) return;
    dim3 grid(lsc_cdiv((size_t)C, 128), (unsigned)B);
    LSC_LAUNCH(mean_pool_forward_kernel, grid, 128, out, inp, mask, T, C);
}

void lsc_mean_pool_backward(float *dinp, const float *dout, const int *mask, int B, int T,
                            int C) {
    if (B <= 0 || T <= 0 || C <= 0) return;
    unsigned blocks = lsc_grid((size_t)T * C, ENC_THREADS);
    if (blocks > 1024) blocks = 1024; // a grid-stride loop per sequence; grid.y holds B
    LSC_LAUNCH(mean_pool_backward_kernel, dim3(blocks, (unsigned)B), ENC_THREADS, dinp, dout,
               mask, T, C);
}
