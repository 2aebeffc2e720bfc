// cuda_ops: normalisation, RoPE, pointwise, embedding, cross-entropy and
// AdamW kernels, each a transcription of the same op in ops_cpu.c.
//
// Row statistics (norm mean/variance, softmax sums) are reduced in fp64 as the
// CPU backend does, with one warp (norms) or one block (cross-entropy) per row.
// Reductions over rows (norm weight/bias gradients, bias gradients) are
// two-stage column sums over fixed chunks; the embedding gradient adds rows in
// token order exactly as the CPU loop does (same bits). No atomics.
#include "cuda_common.cuh"

// ----------------------------------------------------------------------------
// column sums over rows: dst[c] += sum_r f(r, c), fixed order

#define COLSUM_ROWS 256 // rows per chunk of the first stage (more past 65535 chunks)

// Block (32, 8) sums rows [chunk * rows, +rows) of 32 columns: thread (x, y)
// takes rows y, y+8, ... in order, then y = 0 adds the 8 partial sums in
// order -> partial (chunks, n).
template <typename F>
__global__ void colsum_partial_kernel(F f, int N, int n, int rows, float *partial) {
    __shared__ float s[8][33];
    int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
    int c = (int)blockIdx.x * 32 + tx;
    int r0 = (int)blockIdx.y * rows, r1 = lsc_imin(r0 + rows, N);
    float acc = 0.0f;
    if (c < n)
        for (int r = r0 + ty; r < r1; r += 8) acc += f(r, c);
    s[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && c < n) {
        float t = 0.0f;
        for (int k = 0; k < 8; k++) t += s[k][tx];
        partial[(size_t)blockIdx.y * n + c] = t;
    }
}

// partial (chunks, n) -> dst (n) += sums over chunks in chunk order
__global__ void colsum_finish_kernel(float *dst, const float *partial, int chunks, int n) {
    for (int c = (int)(blockIdx.x * blockDim.x + threadIdx.x); c < n;
         c += (int)(gridDim.x * blockDim.x)) {
        float t = 0.0f;
        for (int k = 0; k < chunks; k++) t += partial[(size_t)k * n + c];
        dst[c] += t;
    }
}

template <typename F> static void colsum_add(float *dst, F f, int N, int n) {
    if (N <= 0 || n <= 0) return;
    int rows = COLSUM_ROWS;
    while (lsc_cdiv((size_t)N, (size_t)rows) > 65535) rows *= 2; // grid.y limit
    int chunks = (int)lsc_cdiv((size_t)N, (size_t)rows);
    float *partial = (float *)lsc_scratch((size_t)chunks * n * sizeof(float));
    LSC_LAUNCH(colsum_partial_kernel<F>, dim3(lsc_cdiv((size_t)n, 32), (unsigned)chunks),
               dim3(32, 8), f, N, n, rows, partial);
    LSC_LAUNCH(colsum_finish_kernel, lsc_grid((size_t)n, 256), 256, dst, partial, chunks, n);
}

// summands of the column sums
struct colsum_plain { // x (N, n)
    const float *x;
    int n;
    __device__ float operator()(int r, int c) const { return x[(size_t)r * n + c]; }
};
struct colsum_layernorm_dw { // dout * (inp - mean) * rstd
    const float *g, *x, *mean, *rstd;
    int C;
    __device__ float operator()(int r, int c) const {
        size_t i = (size_t)r * C + c;
        return g[i] * (x[i] - mean[r]) * rstd[r];
    }
};
struct colsum_rmsnorm_dw { // dout * inp * rstd
    const float *g, *x, *rstd;
    int C;
    __device__ float operator()(int r, int c) const {
        size_t i = (size_t)r * C + c;
        return g[i] * x[i] * rstd[r];
    }
};

void lsc_colsum_add(float *dst, const float *src, int N, int n) {
    colsum_plain f = {src, n};
    colsum_add(dst, f, N, n);
}

// C (M,N), leading dimension ldc: C *= beta
__global__ void scale_matrix_kernel(float *C, int M, int N, int ldc, float beta) {
    size_t total = (size_t)M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        C[(i / N) * ldc + i % N] *= beta;
}

void lsc_scale_matrix(float *C, int M, int N, int ldc, float beta) {
    if (M <= 0 || N <= 0) return;
    LSC_LAUNCH(scale_matrix_kernel, lsc_grid((size_t)M * N, 256), 256, C, M, N, ldc, beta);
}

// ----------------------------------------------------------------------------
// normalisation: one warp per row, 8 rows per block

#define NORM_THREADS 256

// inp (N,C), weight (C), bias (C) -> out (N,C), mean (N), rstd (N)
__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                         const float *weight, const float *bias, int N, int C,
                                         float eps) {
    int lane = (int)threadIdx.x % LSC_WARP;
    int row = (int)blockIdx.x * ((int)blockDim.x / LSC_WARP) + (int)threadIdx.x / LSC_WARP;
    if (row >= N) return; // a whole warp leaves together
    const float *x = inp + (size_t)row * C;
    double s = 0.0;
    for (int i = lane; i < C; i += LSC_WARP) s += x[i];
    s = lsc_warp_sum(s);
    float m = (float)(s / C);
    double v = 0.0;
    for (int i = lane; i < C; i += LSC_WARP) {
        double d = x[i] - m;
        v += d * d;
    }
    v = lsc_warp_sum(v);
    float r = (float)(1.0 / sqrt(v / C + eps));
    float *o = out + (size_t)row * C;
    for (int i = lane; i < C; i += LSC_WARP)
        o[i] = (x[i] - m) * r * weight[i] + (bias ? bias[i] : 0.0f);
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

// dout (N,C) -> dinp (N,C) +=
__global__ void layernorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                               const float *weight, const float *mean,
                                               const float *rstd, int N, int C) {
    int lane = (int)threadIdx.x % LSC_WARP;
    int row = (int)blockIdx.x * ((int)blockDim.x / LSC_WARP) + (int)threadIdx.x / LSC_WARP;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C, *g = dout + (size_t)row * C;
    float m = mean[row], r = rstd[row];
    double sd = 0.0, sdn = 0.0;
    for (int i = lane; i < C; i += LSC_WARP) {
        float dn = weight[i] * g[i];
        sd += dn;
        sdn += dn * ((x[i] - m) * r);
    }
    sd = lsc_warp_sum(sd);
    sdn = lsc_warp_sum(sdn);
    float mdn = (float)(sd / C), mdnn = (float)(sdn / C);
    float *dx = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += LSC_WARP) {
        float nrm = (x[i] - m) * r;
        dx[i] += (weight[i] * g[i] - mdn - nrm * mdnn) * r;
    }
}

// inp (N,C), weight (C) -> out (N,C), rstd (N)
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp,
                                       const float *weight, int N, int C, float eps) {
    int lane = (int)threadIdx.x % LSC_WARP;
    int row = (int)blockIdx.x * ((int)blockDim.x / LSC_WARP) + (int)threadIdx.x / LSC_WARP;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    double ss = 0.0;
    for (int i = lane; i < C; i += LSC_WARP) ss += (double)x[i] * x[i];
    ss = lsc_warp_sum(ss);
    float r = (float)(1.0 / sqrt(ss / C + eps));
    float *o = out + (size_t)row * C;
    for (int i = lane; i < C; i += LSC_WARP) o[i] = weight[i] * (r * x[i]);
    if (lane == 0) rstd[row] = r;
}

// dout (N,C) -> dinp (N,C) +=
__global__ void rmsnorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                             const float *weight, const float *rstd, int N,
                                             int C) {
    int lane = (int)threadIdx.x % LSC_WARP;
    int row = (int)blockIdx.x * ((int)blockDim.x / LSC_WARP) + (int)threadIdx.x / LSC_WARP;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C, *g = dout + (size_t)row * C;
    float r = rstd[row];
    double s = 0.0;
    for (int i = lane; i < C; i += LSC_WARP) s += (double)(weight[i] * g[i]) * (x[i] * r);
    s = lsc_warp_sum(s);
    float mdnn = (float)(s / C);
    float *dx = dinp + (size_t)row * C;
    for (int i = lane; i < C; i += LSC_WARP) dx[i] += r * (weight[i] * g[i] - x[i] * r * mdnn);
}

static unsigned norm_blocks(int N) { return lsc_cdiv((size_t)N, NORM_THREADS / LSC_WARP); }

void lsc_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps) {
    if (N <= 0) return;
    LSC_LAUNCH(layernorm_forward_kernel, norm_blocks(N), NORM_THREADS, out, mean, rstd, inp,
               weight, bias, N, C, eps);
}

void lsc_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int N, int C) {
    if (N <= 0) return;
    if (dinp)
        LSC_LAUNCH(layernorm_backward_dinp_kernel, norm_blocks(N), NORM_THREADS, dinp, dout, inp,
                   weight, mean, rstd, N, C);
    if (dweight) {
        colsum_layernorm_dw f = {dout, inp, mean, rstd, C};
        colsum_add(dweight, f, N, C);
    }
    if (dbias) lsc_colsum_add(dbias, dout, N, C);
}

void lsc_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
                         int C, float eps) {
    if (N <= 0) return;
    LSC_LAUNCH(rmsnorm_forward_kernel, norm_blocks(N), NORM_THREADS, out, rstd, inp, weight, N,
               C, eps);
}

void lsc_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int N, int C) {
    if (N <= 0) return;
    if (dinp)
        LSC_LAUNCH(rmsnorm_backward_dinp_kernel, norm_blocks(N), NORM_THREADS, dinp, dout, inp,
                   weight, rstd, N, C);
    if (dweight) {
        colsum_rmsnorm_dw f = {dout, inp, rstd, C};
        colsum_add(dweight, f, N, C);
    }
}

// ----------------------------------------------------------------------------
// rotary position embedding (Su et al. 2021)

// x (B,T,row_heads,HS), cos/sin (P,HS/2): one thread per rotated pair
__global__ void rope_kernel(float *x, const float *cos_tab, const float *sin_tab, int B, int T,
                            int row_heads, int n_rot, int HS, int pos0, int interleaved,
                            float sign) {
    int half = HS / 2;
    size_t total = (size_t)B * T * n_rot * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        size_t rest = idx / half;
        int h = (int)(rest % n_rot);
        size_t bt = rest / n_rot;
        int t = (int)(bt % T);
        const float *c = cos_tab + (size_t)(pos0 + t) * half;
        const float *s = sin_tab + (size_t)(pos0 + t) * half;
        float *v = x + bt * row_heads * HS + (size_t)h * HS;
        int i0 = interleaved ? 2 * i : i;
        int i1 = interleaved ? 2 * i + 1 : i + half;
        float v0 = v[i0], v1 = v[i1], si = sign * s[i];
        v[i0] = v0 * c[i] - v1 * si;
        v[i1] = v0 * si + v1 * c[i];
    }
}

void lsc_rope_forward(float *x, const float *cos_tab, const float *sin_tab, int B, int T,
                      int row_heads, int n_rot, int HS, int pos0, int interleaved) {
    size_t total = (size_t)B * T * n_rot * (HS / 2);
    if (!total) return;
    LSC_LAUNCH(rope_kernel, lsc_grid(total, 256), 256, x, cos_tab, sin_tab, B, T, row_heads,
               n_rot, HS, pos0, interleaved, 1.0f);
}

// The rotation is orthogonal: its backward is the rotation by -angle.
void lsc_rope_backward(float *dx, const float *cos_tab, const float *sin_tab, int B, int T,
                       int row_heads, int n_rot, int HS, int pos0, int interleaved) {
    size_t total = (size_t)B * T * n_rot * (HS / 2);
    if (!total) return;
    LSC_LAUNCH(rope_kernel, lsc_grid(total, 256), 256, dx, cos_tab, sin_tab, B, T, row_heads,
               n_rot, HS, pos0, interleaved, -1.0f);
}

// ----------------------------------------------------------------------------
// pointwise

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

#define GELU_SCALING_FACTOR 0.7978845608028654f // sqrt(2/pi)

__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) {
        float x = inp[i];
        float cube = 0.044715f * x * x * x;
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALING_FACTOR * (x + cube)));
    }
}

// sech^2 = 1 - tanh^2 avoids cosh overflow for large |x|
__global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, size_t n) {
    GRID_STRIDE(i, n) {
        float x = inp[i];
        float cube = 0.044715f * x * x * x;
        float th = tanhf(GELU_SCALING_FACTOR * (x + cube));
        float sech2 = 1.0f - th * th;
        float local = 0.5f * (1.0f + th) +
                      x * 0.5f * sech2 * GELU_SCALING_FACTOR * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = local * dout[i];
    }
}

// inp (N,2H) [gate | up] -> out (N,H)
__global__ void swiglu_forward_kernel(float *out, const float *inp, int N, int H) {
    size_t n = (size_t)N * H;
    GRID_STRIDE(i, n) {
        size_t row = i / H, col = i % H;
        float g = inp[row * 2 * H + col], u = inp[row * 2 * H + H + col];
        out[i] = g / (1.0f + expf(-g)) * u;
    }
}

// dout (N,H) -> dinp (N,2H); silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g)))
__global__ void swiglu_backward_kernel(float *dinp, const float *inp, const float *dout, int N,
                                       int H) {
    size_t n = (size_t)N * H;
    GRID_STRIDE(i, n) {
        size_t row = i / H, col = i % H;
        size_t ig = row * 2 * H + col, iu = ig + H;
        float g = inp[ig], u = inp[iu], d = dout[i];
        float sg = 1.0f / (1.0f + expf(-g));
        dinp[iu] = d * g * sg;
        dinp[ig] = d * u * sg * (1.0f + g * (1.0f - sg));
    }
}

__global__ void residual_forward_kernel(float *out, const float *a, const float *b, size_t n) {
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(float *dst, const float *src, size_t n) {
    GRID_STRIDE(i, n) dst[i] += src[i];
}

__global__ void accumulate2_kernel(float *da, float *db, const float *src, size_t n) {
    GRID_STRIDE(i, n) {
        float g = src[i];
        da[i] += g;
        db[i] += g;
    }
}

// The counter-based hash of backend.h (ls_hash_uniform) on the device: the
// dropout mask depends only on (seed, i), so it equals the CPU backend's.
__device__ __forceinline__ float lsc_hash_uniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

__global__ void dropout_kernel(float *out, const float *inp, size_t n, float p, float keep_scale,
                               uint64_t seed) {
    GRID_STRIDE(i, n) out[i] = lsc_hash_uniform(seed, i) >= p ? inp[i] * keep_scale : 0.0f;
}

__global__ void axpy_kernel(float *out, const float *inp, size_t n, float alpha) {
    GRID_STRIDE(i, n) out[i] += alpha * inp[i];
}

__global__ void scale_kernel(float *x, size_t n, float alpha) {
    GRID_STRIDE(i, n) x[i] *= alpha;
}

void lsc_gelu_forward(float *out, const float *inp, size_t n) {
    if (n) LSC_LAUNCH(gelu_forward_kernel, lsc_grid(n, 256), 256, out, inp, n);
}

void lsc_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    if (n) LSC_LAUNCH(gelu_backward_kernel, lsc_grid(n, 256), 256, dinp, inp, dout, n);
}

void lsc_swiglu_forward(float *out, const float *inp, int N, int H) {
    size_t n = (size_t)N * H;
    if (n) LSC_LAUNCH(swiglu_forward_kernel, lsc_grid(n, 256), 256, out, inp, N, H);
}

void lsc_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H) {
    size_t n = (size_t)N * H;
    if (n) LSC_LAUNCH(swiglu_backward_kernel, lsc_grid(n, 256), 256, dinp, inp, dout, N, H);
}

void lsc_residual_forward(float *out, const float *a, const float *b, size_t n) {
    if (n) LSC_LAUNCH(residual_forward_kernel, lsc_grid(n, 256), 256, out, a, b, n);
}

void lsc_residual_backward(float *da, float *db, const float *dout, size_t n) {
    if (!n) return;
    if (da && db) LSC_LAUNCH(accumulate2_kernel, lsc_grid(n, 256), 256, da, db, dout, n);
    else if (da) LSC_LAUNCH(accumulate_kernel, lsc_grid(n, 256), 256, da, dout, n);
    else if (db) LSC_LAUNCH(accumulate_kernel, lsc_grid(n, 256), 256, db, dout, n);
}

void lsc_dropout(float *out, const float *inp, size_t n, float p, uint64_t seed) {
    if (!n) return;
    if (p <= 0.0f) { lsc_copy(out, inp, n); return; }
    if (p >= 1.0f) { LSC_CUDA(cudaMemset(out, 0, n * sizeof(float))); return; }
    float keep_scale = 1.0f / (1.0f - p);
    LSC_LAUNCH(dropout_kernel, lsc_grid(n, 256), 256, out, inp, n, p, keep_scale, seed);
}

__global__ void copy_rows_kernel(float *dst, size_t ld_dst, const float *src, size_t ld_src, int n, size_t total,
                                 int accumulate) {
    GRID_STRIDE(i, total) {
        size_t r = i / (size_t)n, c = i % (size_t)n;
        float x = src[r * ld_src + c];
        if (accumulate) dst[r * ld_dst + c] += x;
        else dst[r * ld_dst + c] = x;
    }
}

void lsc_copy_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, int rows, int n, int accumulate) {
    size_t total = (size_t)rows * (size_t)n;
    if (total)
        LSC_LAUNCH(copy_rows_kernel, lsc_grid(total, 256), 256, dst, ld_dst, src, ld_src, n, total, accumulate);
}

void lsc_axpy(float *out, const float *inp, size_t n, float alpha) {
    if (n) LSC_LAUNCH(axpy_kernel, lsc_grid(n, 256), 256, out, inp, n, alpha);
}

void lsc_scale(float *x, size_t n, float alpha) {
    if (n) LSC_LAUNCH(scale_kernel, lsc_grid(n, 256), 256, x, n, alpha);
}

// ----------------------------------------------------------------------------
// sum of squares: fp64 over fixed blocks of 4096 elements, then the blocks

#define SUMSQ_CHUNK 4096

__global__ void sumsq_partial_kernel(const float *x, size_t n, double *part) {
    __shared__ double sh[32];
    size_t start = (size_t)blockIdx.x * SUMSQ_CHUNK;
    size_t end = start + SUMSQ_CHUNK < n ? start + SUMSQ_CHUNK : n;
    double s = 0.0;
    for (size_t i = start + threadIdx.x; i < end; i += blockDim.x) s += (double)x[i] * x[i];
    s = lsc_block_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void sumsq_final_kernel(const double *part, size_t nb, double *out) {
    __shared__ double sh[32];
    double s = 0.0;
    for (size_t i = threadIdx.x; i < nb; i += blockDim.x) s += part[i];
    s = lsc_block_sum(s, sh);
    if (threadIdx.x == 0) *out = s;
}

double lsc_sumsq(const float *x, size_t n) {
    if (!n) return 0.0;
    size_t nb = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *part = (double *)lsc_scratch((nb + 1) * sizeof(double));
    LSC_LAUNCH(sumsq_partial_kernel, (unsigned)nb, 256, x, n, part);
    LSC_LAUNCH(sumsq_final_kernel, 1, 1024, part, nb, part + nb);
    double s = 0.0;
    LSC_CUDA(cudaMemcpy(&s, part + nb, sizeof(double), cudaMemcpyDeviceToHost));
    return s;
}

// ----------------------------------------------------------------------------
// embedding

// tokens (B,T), wte (V,C), wpe (P,C) or NULL -> out (B,T,C)
__global__ void embedding_forward_kernel(float *out, const int *tokens, const float *wte,
                                         const float *wpe, int BT, int T, int C, int pos0) {
    size_t n = (size_t)BT * C;
    GRID_STRIDE(i, n) {
        size_t bt = i / C, c = i % C;
        int t = (int)(bt % T);
        float v = wte[(size_t)tokens[bt] * C + c];
        if (wpe) v += wpe[(size_t)(pos0 + t) * C + c];
        out[i] = v;
    }
}

void lsc_embedding_forward(float *out, const int *tokens, const float *wte, const float *wpe,
                           int B, int T, int C, int pos0) {
    size_t n = (size_t)B * T * C;
    if (n)
        LSC_LAUNCH(embedding_forward_kernel, lsc_grid(n, 256), 256, out, tokens, wte, wpe, B * T,
                   T, C, pos0);
}

// One block row per distinct token: buckets uniq (U), start (U+1), order (BT)
// list, for each token, the positions bt holding it in increasing order.
// Each thread owns one column and adds the rows in that order onto dwte's
// value, exactly the CPU loop's sequence of additions (same bits).
__global__ void embedding_backward_wte_kernel(float *dwte, const float *dout, const int *uniq,
                                              const int *start, const int *order, int C) {
    int u = (int)blockIdx.x;
    int c = (int)(blockIdx.y * blockDim.x + threadIdx.x);
    if (c >= C) return;
    float *w = dwte + (size_t)uniq[u] * C + c;
    float acc = *w;
    for (int k = start[u]; k < start[u + 1]; k++) acc += dout[(size_t)order[k] * C + c];
    *w = acc;
}

// dwpe (P,C) += rows of dout at position t, in batch order
__global__ void embedding_backward_wpe_kernel(float *dwpe, const float *dout, int B, int T, int C) {
    int t = (int)blockIdx.x;
    int c = (int)(blockIdx.y * blockDim.x + threadIdx.x);
    if (c >= C) return;
    float *p = dwpe + (size_t)t * C + c;
    float acc = *p;
    for (int b = 0; b < B; b++) acc += dout[((size_t)b * T + t) * C + c];
    *p = acc;
}

static int compare_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

// Buckets the positions by token on the host (a few thousand ints per step).
static int build_token_buckets(const int *tokens, int BT) {
    if ((size_t)BT > lsc.tok_cap) {
        free(lsc.h_tokens);
        free(lsc.h_order);
        lsc.tok_cap = (size_t)BT;
        lsc.h_tokens = (int *)ls_malloc(lsc.tok_cap * sizeof(int));
        // h_order holds BT int64 keys while sorting, then uniq | start | order
        lsc.h_order = (int *)ls_malloc(lsc.tok_cap * 3 * sizeof(int64_t) + 2 * sizeof(int));
    }
    LSC_CUDA(cudaMemcpy(lsc.h_tokens, tokens, (size_t)BT * sizeof(int), cudaMemcpyDeviceToHost));
    int64_t *key = (int64_t *)lsc.h_order;
    for (int i = 0; i < BT; i++) key[i] = ((int64_t)lsc.h_tokens[i] << 32) | (int64_t)i;
    qsort(key, (size_t)BT, sizeof(int64_t), compare_i64);
    int *buckets = (int *)(key + BT); // uniq (<= BT) | start (<= BT+1) | order (BT)
    int *uniq = buckets, *start = buckets + BT, *order = buckets + 2 * BT + 1;
    int U = 0;
    for (int i = 0; i < BT; i++) {
        int tok = (int)(key[i] >> 32);
        order[i] = (int)(key[i] & 0xffffffff);
        if (U == 0 || uniq[U - 1] != tok) {
            uniq[U] = tok;
            start[U] = i;
            U++;
        }
    }
    start[U] = BT;
    size_t need = (size_t)3 * BT + 1;
    if (need > lsc.bucket_cap) {
        lsc_device_free(lsc.d_buckets);
        lsc.bucket_cap = need;
        lsc.d_buckets = (int *)lsc_device_alloc(need * sizeof(int));
    }
    // device layout: uniq (U) | start (U+1) | order (BT)
    LSC_CUDA(cudaMemcpy(lsc.d_buckets, uniq, (size_t)U * sizeof(int), cudaMemcpyHostToDevice));
    LSC_CUDA(cudaMemcpy(lsc.d_buckets + U, start, (size_t)(U + 1) * sizeof(int),
                        cudaMemcpyHostToDevice));
    LSC_CUDA(cudaMemcpy(lsc.d_buckets + 2 * U + 1, order, (size_t)BT * sizeof(int),
                        cudaMemcpyHostToDevice));
    return U;
}

void lsc_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
                            int B, int T, int C) {
    int BT = B * T;
    if (BT <= 0 || C <= 0) return;
    unsigned cblocks = lsc_cdiv((size_t)C, 128);
    if (dwte) {
        int U = build_token_buckets(tokens, BT);
        const int *uniq = lsc.d_buckets, *start = uniq + U, *order = start + U + 1;
        LSC_LAUNCH(embedding_backward_wte_kernel, dim3((unsigned)U, cblocks), 128, dwte, dout,
                   uniq, start, order, C);
    }
    if (dwpe)
        LSC_LAUNCH(embedding_backward_wpe_kernel, dim3((unsigned)T, cblocks), 128, dwpe, dout, B,
                   T, C);
}

// ----------------------------------------------------------------------------
// softmax cross-entropy with label smoothing, fused: one block per row, the
// probabilities are never stored (the backward recomputes them in place)

#define CE_THREADS 256

// logits (N,V), targets (N) -> losses (N)
__global__ void crossentropy_forward_kernel(float *losses, const float *logits,
                                            const int *targets, int V, float smoothing) {
    __shared__ float shf[32];
    __shared__ double shd[32];
    int n = (int)blockIdx.x, y = targets[n];
    if (y < 0) { // uniform over the block
        if (threadIdx.x == 0) losses[n] = 0.0f;
        return;
    }
    const float *l = logits + (size_t)n * V;
    float mx = -INFINITY;
    for (int j = (int)threadIdx.x; j < V; j += (int)blockDim.x) mx = fmaxf(mx, l[j]);
    mx = lsc_block_max(mx, shf);
    double se = 0.0, sl = 0.0;
    for (int j = (int)threadIdx.x; j < V; j += (int)blockDim.x) {
        se += (double)expf(l[j] - mx);
        sl += l[j];
    }
    se = lsc_block_sum(se, shd);
    sl = lsc_block_sum(sl, shd);
    if (threadIdx.x == 0) {
        double lse = mx + log(se);
        losses[n] = (float)(lse - (1.0 - smoothing) * l[y] - smoothing * sl / V);
    }
}

// dlosses (N) -> dlogits (N,V) = dloss (softmax - q); dlogits may alias logits:
// the whole row is read (max, sum) before the barriers of the reductions, and
// afterwards each element is read and written by the same thread.
__global__ void crossentropy_backward_kernel(float *dlogits, const float *logits,
                                             const int *targets, const float *dlosses, int V,
                                             float smoothing) {
    __shared__ float shf[32];
    __shared__ double shd[32];
    int n = (int)blockIdx.x, y = targets[n];
    float g = dlosses[n];
    const float *l = logits + (size_t)n * V;
    float *d = dlogits + (size_t)n * V;
    if (y < 0 || g == 0.0f) {
        for (int j = (int)threadIdx.x; j < V; j += (int)blockDim.x) d[j] = 0.0f;
        return;
    }
    float mx = -INFINITY;
    for (int j = (int)threadIdx.x; j < V; j += (int)blockDim.x) mx = fmaxf(mx, l[j]);
    mx = lsc_block_max(mx, shf);
    double se = 0.0;
    for (int j = (int)threadIdx.x; j < V; j += (int)blockDim.x) se += (double)expf(l[j] - mx);
    se = lsc_block_sum(se, shd);
    float inv = (float)(1.0 / se), off = smoothing / V;
    for (int j = (int)threadIdx.x; j < V; j += (int)blockDim.x) {
        float p = expf(l[j] - mx) * inv;
        d[j] = g * (p - off - (j == y ? 1.0f - smoothing : 0.0f));
    }
}

void lsc_crossentropy_forward(float *losses, const float *logits, const int *targets, int N,
                              int V, float smoothing) {
    if (N > 0)
        LSC_LAUNCH(crossentropy_forward_kernel, (unsigned)N, CE_THREADS, losses, logits, targets,
                   V, smoothing);
}

void lsc_crossentropy_backward(float *dlogits, const float *logits, const int *targets,
                               const float *dlosses, int N, int V, float smoothing) {
    if (N > 0)
        LSC_LAUNCH(crossentropy_backward_kernel, (unsigned)N, CE_THREADS, dlogits, logits,
                   targets, dlosses, V, smoothing);
}

// ----------------------------------------------------------------------------
// AdamW (Loshchilov & Hutter 2019), torch.optim.AdamW's single-tensor update

__global__ void adamw_kernel(float *params, const float *grads, float *m, float *v, size_t n,
                             float beta1, float beta2, float eps, float step_size,
                             float bc2_sqrt, float decay) {
    GRID_STRIDE(i, n) {
        float g = grads[i];
        float p = params[i] * decay;
        float mi = m[i] + (g - m[i]) * (1.0f - beta1); // torch's lerp_(grad, 1 - beta1)
        float vi = v[i] * beta2 + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] = p - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

void lsc_adamw(float *params, const float *grads, float *m, float *v, size_t n, float lr,
               float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2) {
    if (!n) return;
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2), decay = 1.0f - lr * weight_decay;
    LSC_LAUNCH(adamw_kernel, lsc_grid(n, 256), 256, params, grads, m, v, n, beta1, beta2, eps,
               step_size, bc2_sqrt, decay);
}
