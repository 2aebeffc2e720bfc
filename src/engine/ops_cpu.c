// ops_cpu: the CPU backend. Matrix products through OpenBLAS cblas_sgemm,
// everything else as plain loops parallelised with OpenMP over rows (or over
// columns, where a backward pass reduces over rows), llm.c style.
//
// Determinism: no atomics and no reductions whose order depends on thread
// scheduling. Row-wise reductions (norm statistics, softmax) run inside one
// thread; reductions over rows (bias and norm-weight gradients, embedding
// gradients, key/value gradients of attention) are partitioned over the
// output elements, each summed by one thread in row order. Only sgemm's
// internal blocking depends on the OpenBLAS thread count.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "io/util.h"

// Parallelise a loop only when it has enough work to pay for the fork.
#define OMP_MIN_WORK 16384

// ----------------------------------------------------------------------------
// memory

static float *cpu_alloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "ops_cpu: out of memory allocating %zu bytes\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}
static void cpu_free(float *p) { free(p); }
static void cpu_copy(float *dst, const float *src, size_t n) {
    if (n) memmove(dst, src, n * sizeof(float));
}
static void cpu_zero(float *p, size_t n) {
    if (n) memset(p, 0, n * sizeof(float));
}
static int *cpu_alloc_int(size_t n) { return ls_calloc(n ? n : 1, sizeof(int)); }
static void cpu_free_int(int *p) { free(p); }
static void cpu_upload_int(int *dst, const int *src, size_t n) {
    if (n) memmove(dst, src, n * sizeof(int));
}

// ----------------------------------------------------------------------------
// matmul

// One thread pool: the backend runs OpenBLAS single-threaded (see
// ls_backend_cpu) and splits a product into column or row panels of C, one
// sgemm per OpenMP thread. Every element of C is computed by one thread over
// the full K, so the split never changes a sum's order across panels.
static void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { // sgemm with K = 0 only scales C; keep that meaning
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] *= beta;
        return;
    }
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    double work = (double)M * N * K;
    int nt = omp_get_max_threads();
    if (nt <= 1 || work < 2e6 || omp_in_parallel()) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int split_rows = M >= N; // split the longer side of C into panels of 16
    int len = split_rows ? M : N;
    int panels = (len + 15) / 16;
    if (nt > panels) nt = panels;
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int p0 = (int)((long)panels * t / n), p1 = (int)((long)panels * (t + 1) / n);
        int i0 = p0 * 16, i1 = p1 * 16 < len ? p1 * 16 : len;
        if (i1 > i0) {
            if (split_rows) {
                const float *Ap = trans_a ? A + i0 : A + (size_t)i0 * lda;
                cblas_sgemm(CblasRowMajor, ta, tb, i1 - i0, N, K, alpha, Ap, lda, B, ldb, beta,
                            C + (size_t)i0 * ldc, ldc);
            } else {
                const float *Bp = trans_b ? B + (size_t)i0 * ldb : B + i0;
                cblas_sgemm(CblasRowMajor, ta, tb, M, i1 - i0, K, alpha, A, lda, Bp, ldb, beta,
                            C + i0, ldc);
            }
        }
    }
}

// inp (N,C), weight (OC,C), bias (OC) -> out (N,OC)
static void cpu_matmul_forward(float *out, const float *inp, const float *weight,
                               const float *bias, int N, int C, int OC) {
    float beta = 0.0f;
    if (bias) {
        #pragma omp parallel for if ((size_t)N * OC > OMP_MIN_WORK)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, OC * sizeof(float));
        beta = 1.0f;
    }
    cpu_gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

// dout (N,OC), inp (N,C), weight (OC,C) -> dinp (N,C), dweight (OC,C) +=, dbias (OC) +=
static void cpu_matmul_backward(float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight,
                                int N, int C, int OC) {
    if (dinp) cpu_gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
    if (dweight) cpu_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        // each output channel summed by one thread in row order
        #pragma omp parallel for if ((size_t)N * OC > OMP_MIN_WORK)
        for (int o = 0; o < OC; o++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            dbias[o] += s;
        }
    }
}

// ----------------------------------------------------------------------------
// normalisation

// inp (N,C), weight (C), bias (C) -> out (N,C), mean (N), rstd (N)
static void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int N, int C,
                                  float eps) {
    #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += x[i];
        float m = (float)(s / C);
        double v = 0.0;
        for (int i = 0; i < C; i++) { double d = x[i] - m; v += d * d; }
        float r = (float)(1.0 / sqrt(v / C + eps));
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * r * weight[i] + (bias ? bias[i] : 0.0f);
        mean[n] = m;
        rstd[n] = r;
    }
}

// dout (N,C) -> dinp (N,C) +=, dweight (C) +=, dbias (C) +=
static void cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int N, int C) {
    if (dinp) {
        #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            double sd = 0.0, sdn = 0.0;
            for (int i = 0; i < C; i++) {
                float dn = weight[i] * g[i];
                sd += dn;
                sdn += dn * ((x[i] - m) * r);
            }
            float mdn = (float)(sd / C), mdnn = (float)(sdn / C);
            float *dx = dinp + (size_t)n * C;
            for (int i = 0; i < C; i++) {
                float nrm = (x[i] - m) * r;
                dx[i] += (weight[i] * g[i] - mdn - nrm * mdnn) * r;
            }
        }
    }
    if (dweight || dbias) {
        #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
        for (int i = 0; i < C; i++) {
            float sw = 0.0f, sb = 0.0f;
            for (int n = 0; n < N; n++) {
                float g = dout[(size_t)n * C + i];
                sw += g * (inp[(size_t)n * C + i] - mean[n]) * rstd[n];
                sb += g;
            }
            if (dweight) dweight[i] += sw;
            if (dbias) dbias[i] += sb;
        }
    }
}

// inp (N,C), weight (C) -> out (N,C), rstd (N)
static void cpu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                                int N, int C, float eps) {
    #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        float *o = out + (size_t)n * C;
        for (int i = 0; i < C; i++) o[i] = weight[i] * (r * x[i]);
        rstd[n] = r;
    }
}

// dout (N,C) -> dinp (N,C) +=, dweight (C) +=
static void cpu_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                                 const float *weight, const float *rstd, int N, int C) {
    if (dinp) {
        #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float r = rstd[n];
            double s = 0.0;
            for (int i = 0; i < C; i++) s += (double)(weight[i] * g[i]) * (x[i] * r);
            float mdnn = (float)(s / C);
            float *dx = dinp + (size_t)n * C;
            for (int i = 0; i < C; i++) dx[i] += r * (weight[i] * g[i] - x[i] * r * mdnn);
        }
    }
    if (dweight) {
        #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
        for (int i = 0; i < C; i++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++)
                s += dout[(size_t)n * C + i] * inp[(size_t)n * C + i] * rstd[n];
            dweight[i] += s;
        }
    }
}

// ----------------------------------------------------------------------------
// rotary position embedding (Su et al. 2021)

// x (B,T,row_heads,HS), cos/sin (P,HS/2); rotation by +angle (sign 1) or -angle (-1)
static void rope_rotate(float *x, const float *cos_tab, const float *sin_tab, int B, int T,
                        int row_heads, int n_rot, int HS, int pos0, int interleaved,
                        float sign) {
    int half = HS / 2;
    #pragma omp parallel for collapse(2) if ((size_t)B * T * n_rot * HS > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *c = cos_tab + (size_t)(pos0 + t) * half;
            const float *s = sin_tab + (size_t)(pos0 + t) * half;
            float *row = x + ((size_t)b * T + t) * row_heads * HS;
            for (int h = 0; h < n_rot; h++) {
                float *v = row + (size_t)h * HS;
                for (int i = 0; i < half; i++) {
                    int i0 = interleaved ? 2 * i : i;
                    int i1 = interleaved ? 2 * i + 1 : i + half;
                    float v0 = v[i0], v1 = v[i1], si = sign * s[i];
                    v[i0] = v0 * c[i] - v1 * si;
                    v[i1] = v0 * si + v1 * c[i];
                }
            }
        }
    }
}

static void cpu_rope_forward(float *x, const float *cos_tab, const float *sin_tab, int B, int T,
                             int row_heads, int n_rot, int HS, int pos0, int interleaved) {
    rope_rotate(x, cos_tab, sin_tab, B, T, row_heads, n_rot, HS, pos0, interleaved, 1.0f);
}

// The rotation is orthogonal, so its backward is the rotation by -angle.
static void cpu_rope_backward(float *dx, const float *cos_tab, const float *sin_tab, int B,
                              int T, int row_heads, int n_rot, int HS, int pos0,
                              int interleaved) {
    rope_rotate(dx, cos_tab, sin_tab, B, T, row_heads, n_rot, HS, pos0, interleaved, -1.0f);
}

// ----------------------------------------------------------------------------
// causal self-attention with grouped-query heads (Ainslie et al. 2023)

// qkv (B,T,NH+2NKV,HS) -> att (B,NH,T,T), out (B,T,NH,HS)
static void cpu_attention_forward(float *out, float *att, const float *qkv, int B, int T,
                                  int NH, int NKV, int HS) {
    int RH = NH + 2 * NKV, group = NH / NKV;
    size_t row = (size_t)RH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for collapse(3) schedule(dynamic, 4) if ((size_t)B * NH * T * T * HS > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                int kh = h / group;
                const float *q = qkv + ((size_t)b * T + t) * row + (size_t)h * HS;
                const float *kbase = qkv + (size_t)b * T * row + (size_t)(NH + kh) * HS;
                const float *vbase = qkv + (size_t)b * T * row + (size_t)(NH + NKV + kh) * HS;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                float mx = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = kbase + (size_t)t2 * row;
                    float s = 0.0f;
                    for (int i = 0; i < HS; i++) s += q[i] * k[i];
                    s *= scale;
                    a[t2] = s;
                    if (s > mx) mx = s;
                }
                float sum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) { a[t2] = expf(a[t2] - mx); sum += a[t2]; }
                float inv = 1.0f / sum;
                for (int t2 = 0; t2 <= t; t2++) a[t2] *= inv;
                for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0.0f;
                float *o = out + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
                for (int i = 0; i < HS; i++) o[i] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = vbase + (size_t)t2 * row;
                    float w = a[t2];
                    for (int i = 0; i < HS; i++) o[i] += w * v[i];
                }
            }
        }
    }
}

// dout (B,T,NH,HS) -> dqkv (B,T,NH+2NKV,HS); datt (B,NH,T,T) scratch.
// Parallel over (batch, key/value head): a unit owns the dk, dv rows of its kv
// head and the dq rows of the query heads that share it, so nothing races.
static void cpu_attention_backward(float *dqkv, float *datt, const float *dout,
                                   const float *qkv, const float *att, int B, int T, int NH,
                                   int NKV, int HS) {
    int RH = NH + 2 * NKV, group = NH / NKV;
    size_t row = (size_t)RH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((size_t)B * NH * T * T * HS > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int kh = 0; kh < NKV; kh++) {
            float *dkbase = dqkv + (size_t)b * T * row + (size_t)(NH + kh) * HS;
            float *dvbase = dqkv + (size_t)b * T * row + (size_t)(NH + NKV + kh) * HS;
            const float *kbase = qkv + (size_t)b * T * row + (size_t)(NH + kh) * HS;
            const float *vbase = qkv + (size_t)b * T * row + (size_t)(NH + NKV + kh) * HS;
            for (int t = 0; t < T; t++) {
                memset(dkbase + (size_t)t * row, 0, HS * sizeof(float));
                memset(dvbase + (size_t)t * row, 0, HS * sizeof(float));
            }
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                for (int t = 0; t < T; t++) {
                    const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                    float *da = datt + (((size_t)b * NH + h) * T + t) * T;
                    const float *g = dout + ((size_t)b * T + t) * NH * HS + (size_t)h * HS;
                    const float *q = qkv + ((size_t)b * T + t) * row + (size_t)h * HS;
                    float *dq = dqkv + ((size_t)b * T + t) * row + (size_t)h * HS;
                    // out = att V: datt = dout V^T, dV += att^T dout
                    float dot = 0.0f;
                    for (int t2 = 0; t2 <= t; t2++) {
                        const float *v = vbase + (size_t)t2 * row;
                        float *dv = dvbase + (size_t)t2 * row;
                        float s = 0.0f;
                        for (int i = 0; i < HS; i++) { s += g[i] * v[i]; dv[i] += a[t2] * g[i]; }
                        da[t2] = s;
                        dot += s * a[t2];
                    }
                    // softmax backward: dpre = att * (datt - sum(att * datt))
                    for (int i = 0; i < HS; i++) dq[i] = 0.0f;
                    for (int t2 = 0; t2 <= t; t2++) {
                        float dp = a[t2] * (da[t2] - dot) * scale;
                        const float *k = kbase + (size_t)t2 * row;
                        float *dk = dkbase + (size_t)t2 * row;
                        for (int i = 0; i < HS; i++) { dq[i] += dp * k[i]; dk[i] += dp * q[i]; }
                    }
                }
            }
        }
    }
}

// q (NH,HS), k_cache, v_cache (n_ctx,NKV,HS) -> out (NH,HS); att (NH,n_ctx) scratch
static void cpu_attention_decode(float *out, float *att, const float *q, const float *k_cache,
                                 const float *v_cache, int n_ctx, int NH, int NKV, int HS) {
    int group = NH / NKV;
    size_t row = (size_t)NKV * HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for if ((size_t)NH * n_ctx * HS > OMP_MIN_WORK)
    for (int h = 0; h < NH; h++) {
        int kh = h / group;
        const float *qh = q + (size_t)h * HS;
        float *a = att + (size_t)h * n_ctx;
        float mx = -INFINITY;
        for (int t = 0; t < n_ctx; t++) {
            const float *k = k_cache + (size_t)t * row + (size_t)kh * HS;
            float s = 0.0f;
            for (int i = 0; i < HS; i++) s += qh[i] * k[i];
            s *= scale;
            a[t] = s;
            if (s > mx) mx = s;
        }
        float sum = 0.0f;
        for (int t = 0; t < n_ctx; t++) { a[t] = expf(a[t] - mx); sum += a[t]; }
        float inv = 1.0f / sum;
        float *o = out + (size_t)h * HS;
        for (int i = 0; i < HS; i++) o[i] = 0.0f;
        for (int t = 0; t < n_ctx; t++) {
            const float *v = v_cache + (size_t)t * row + (size_t)kh * HS;
            float w = a[t] * inv;
            for (int i = 0; i < HS; i++) o[i] += w * v[i];
        }
    }
}

// ----------------------------------------------------------------------------
// pointwise

#define GELU_SCALING_FACTOR 0.7978845608028654f // sqrt(2/pi)

// inp (n) -> out (n)
static void cpu_gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cube = 0.044715f * x * x * x;
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALING_FACTOR * (x + cube)));
    }
}

// dout (n) -> dinp (n); sech^2 = 1 - tanh^2 avoids cosh overflow for large |x|
static void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
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
static void cpu_swiglu_forward(float *out, const float *inp, int N, int H) {
    #pragma omp parallel for if ((size_t)N * H > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H;
        float *o = out + (size_t)n * H;
        for (int i = 0; i < H; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

// dout (N,H) -> dinp (N,2H); silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g)))
static void cpu_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H) {
    #pragma omp parallel for if ((size_t)N * H > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H, *u = g + H, *d = dout + (size_t)n * H;
        float *dg = dinp + (size_t)n * 2 * H, *du = dg + H;
        for (int i = 0; i < H; i++) {
            float sg = 1.0f / (1.0f + expf(-g[i]));
            du[i] = d[i] * g[i] * sg;
            dg[i] = d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
    }
}

// a (n), b (n) -> out (n)
static void cpu_residual_forward(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// dout (n) -> da (n) +=, db (n) +=
static void cpu_residual_backward(float *da, float *db, const float *dout, size_t n) {
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}

// inp (n) -> out (n), mask from (seed, i)
static void cpu_dropout(float *out, const float *inp, size_t n, float p, uint64_t seed) {
    if (p <= 0.0f) { if (out != inp) memmove(out, inp, n * sizeof(float)); return; }
    if (p >= 1.0f) { memset(out, 0, n * sizeof(float)); return; }
    float keep_scale = 1.0f / (1.0f - p);
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        out[i] = ls_hash_uniform(seed, i) >= p ? inp[i] * keep_scale : 0.0f;
}

// inp (n) -> out (n) +=
static void cpu_axpy(float *out, const float *inp, size_t n, float alpha) {
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] += alpha * inp[i];
}

// x (n) in place
static void cpu_scale(float *x, size_t n, float alpha) {
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

// x (n) -> sum of squares. 256 fixed chunks (boundaries depend only on n),
// each summed in order by one thread, then the chunks in order: the same bits
// for any thread count, and no allocation.
static double cpu_sumsq(const float *x, size_t n) {
    enum { CHUNKS = 256 };
    double part[CHUNKS];
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (int c = 0; c < CHUNKS; c++) {
        size_t i0 = n * c / CHUNKS, i1 = n * (c + 1) / CHUNKS;
        double s = 0.0;
        for (size_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
        part[c] = s;
    }
    double s = 0.0;
    for (int c = 0; c < CHUNKS; c++) s += part[c];
    return s;
}

// ----------------------------------------------------------------------------
// embedding

// tokens (B,T), wte (V,C), wpe (P,C) -> out (B,T,C)
static void cpu_embedding_forward(float *out, const int *tokens, const float *wte,
                                  const float *wpe, int B, int T, int C, int pos0) {
    #pragma omp parallel for if ((size_t)B * T * C > OMP_MIN_WORK)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        const float *e = wte + (size_t)tokens[bt] * C;
        float *o = out + (size_t)bt * C;
        if (wpe) {
            const float *p = wpe + (size_t)(pos0 + t) * C;
            for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
        } else {
            memcpy(o, e, C * sizeof(float));
        }
    }
}

// dout (B,T,C) -> dwte (V,C) +=, dwpe (P,C) +=; parallel over column blocks
static void cpu_embedding_backward(float *dwte, float *dwpe, const float *dout,
                                   const int *tokens, int B, int T, int C) {
    const int cb = 16;
    int nblk = (C + cb - 1) / cb;
    #pragma omp parallel for if ((size_t)B * T * C > OMP_MIN_WORK)
    for (int k = 0; k < nblk; k++) {
        int c0 = k * cb, c1 = c0 + cb < C ? c0 + cb : C;
        for (int bt = 0; bt < B * T; bt++) {
            const float *g = dout + (size_t)bt * C;
            if (dwte) {
                float *w = dwte + (size_t)tokens[bt] * C;
                for (int i = c0; i < c1; i++) w[i] += g[i];
            }
            if (dwpe) {
                float *p = dwpe + (size_t)(bt % T) * C;
                for (int i = c0; i < c1; i++) p[i] += g[i];
            }
        }
    }
}

// ----------------------------------------------------------------------------
// softmax cross-entropy with label smoothing

// logits (N,V), targets (N) -> losses (N)
static void cpu_crossentropy_forward(float *losses, const float *logits, const int *targets,
                                     int N, int V, float smoothing) {
    #pragma omp parallel for if ((size_t)N * V > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        int y = targets[n];
        if (y < 0) { losses[n] = 0.0f; continue; }
        const float *l = logits + (size_t)n * V;
        float mx = -INFINITY;
        for (int j = 0; j < V; j++) if (l[j] > mx) mx = l[j];
        double se = 0.0, sl = 0.0;
        for (int j = 0; j < V; j++) { se += expf(l[j] - mx); sl += l[j]; }
        double lse = mx + log(se);
        losses[n] = (float)(lse - (1.0 - smoothing) * l[y] - smoothing * sl / V);
    }
}

// dlosses (N) -> dlogits (N,V) = dloss (softmax - q); may alias logits
static void cpu_crossentropy_backward(float *dlogits, const float *logits, const int *targets,
                                      const float *dlosses, int N, int V, float smoothing) {
    #pragma omp parallel for if ((size_t)N * V > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        int y = targets[n];
        const float *l = logits + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        float g = dlosses[n];
        if (y < 0 || g == 0.0f) { memset(d, 0, V * sizeof(float)); continue; }
        float mx = -INFINITY;
        for (int j = 0; j < V; j++) if (l[j] > mx) mx = l[j];
        double se = 0.0;
        for (int j = 0; j < V; j++) se += expf(l[j] - mx);
        float inv = (float)(1.0 / se), off = smoothing / V;
        for (int j = 0; j < V; j++) {
            float p = expf(l[j] - mx) * inv;
            d[j] = g * (p - off - (j == y ? 1.0f - smoothing : 0.0f));
        }
    }
}

// ----------------------------------------------------------------------------
// AdamW (Loshchilov & Hutter 2019), torch.optim.AdamW's single-tensor update

// params, grads, m, v (n) -> params, m, v updated in place
static void cpu_adamw(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                      float beta1, float beta2, float eps, float weight_decay, float bc1,
                      float bc2) {
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2), decay = 1.0f - lr * weight_decay;
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        float p = params[i] * decay;
        m[i] += (g - m[i]) * (1.0f - beta1); // torch's lerp_(grad, 1 - beta1)
        v[i] = v[i] * beta2 + (1.0f - beta2) * g * g;
        params[i] = p - step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

// ----------------------------------------------------------------------------

static const ls_backend cpu_backend = {
    .kind = LS_BACKEND_CPU,
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .alloc_int = cpu_alloc_int,
    .free_int = cpu_free_int,
    .upload_int = cpu_upload_int,
    .gemm = cpu_gemm,
    .matmul_forward = cpu_matmul_forward,
    .matmul_backward = cpu_matmul_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .rope_forward = cpu_rope_forward,
    .rope_backward = cpu_rope_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_decode = cpu_attention_decode,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .residual_forward = cpu_residual_forward,
    .residual_backward = cpu_residual_backward,
    .dropout = cpu_dropout,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .sumsq = cpu_sumsq,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .crossentropy_forward = cpu_crossentropy_forward,
    .crossentropy_backward = cpu_crossentropy_backward,
    .adamw = cpu_adamw,
};

// OpenBLAS (pthreads build) keeps its own thread pool; with OpenMP's pool
// beside it the two spin against each other on few cores (measured 1.5-2x
// slower on 2 cores). cpu_gemm parallelises over OpenMP instead, so the
// process's OpenBLAS runs single-threaded once the CPU backend is in use.

const ls_backend *ls_backend_cpu(void) {
    static int init = 0;
    if (!init) {
        openblas_set_num_threads(1);
        init = 1;
    }
    return &cpu_backend;
}
