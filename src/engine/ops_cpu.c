// ops_cpu: the CPU backend. Matrix products through OpenBLAS cblas_sgemm,
// everything else as plain loops parallelised with OpenMP over rows (or over
// columns, where a backward pass reduces over rows), llm.c style.
//
// The exp-heavy loops (softmaxes, cross-entropy, GELU, SiLU) use a
// vectorisable exp (ls_expf) and are compiled for AVX2 as well as baseline
// x86-64 (LS_VECTOR_CLONES); attention is sgemm per (batch, head).
//
// Determinism: no atomics and no reductions whose order depends on thread
// scheduling. Row-wise reductions (norm statistics, softmax) run inside one
// thread; reductions over rows (bias and norm-weight gradients, embedding
// gradients) are partitioned over the output elements, each summed by one
// thread in row order; attention works in (batch, head) units whose
// arithmetic does not depend on the thread that runs them. Only cpu_gemm's
// panels (and with them sgemm's blocking) depend on the thread count, so a
// given thread count always gives the same bits.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/backend.h"
#include "engine/ops_cpu_encoder.h"
#include "engine/ops_cpu_math.h"

// Parallelise a loop only when it has enough work to pay for the fork.
#define OMP_MIN_WORK 16384

// Reductions over rows (bias and norm-weight gradients) run on blocks of
// COL_BLOCK columns: rows outer, columns inner, so the loads are contiguous
// and vectorise while each column is still summed in row order by one thread.
#define COL_BLOCK 64

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
static void cpu_copy_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, int rows, int n,
                          int accumulate) {
    for (int r = 0; r < rows; r++) {
        float *d = dst + (size_t)r * ld_dst;
        const float *x = src + (size_t)r * ld_src;
        if (accumulate)
            for (int i = 0; i < n; i++) d[i] += x[i];
        else memcpy(d, x, (size_t)n * sizeof(float));
    }
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

// A product with few rows (decoding: one token per beam): sgemm would pack
// all of the weight for every call, most of a decode step's time at N <= 16.
// Here each weight row is read once for all N rows. One row: each dot
// product vectorised over c. More: xt (C, W) holds the rows transposed and
// zero-padded to W = 8 or 16, and R weight rows at a time keep R x W running
// sums vectorised across the rows, so that each sum runs over c in order.
// Compiled for AVX2 + FMA (and AVX-512 at W = 16) and for the baseline,
// picked at run time (GCC's target_clones cannot name the set); the bits are
// the machine's (FMA rounds once per product), the same for any thread count
// and any R. R is chosen so that 8 independent FMA chains are in flight
// (fewer wait on the FMA's latency): at W = 8 one register per weight row.
#define FEW_ROWS 16

#define ONE_ROW_BODY                                                                                                \
    for (int o = o0; o < o1; o++) {                                                                                 \
        const float *w = weight + (size_t)o * C;                                                                    \
        float acc = 0.0f;                                                                                           \
        _Pragma("omp simd reduction(+ : acc)") for (int c = 0; c < C; c++) acc = MADD(x[c], w[c], acc);            \
        out[o] = acc + (bias ? bias[o] : 0.0f);                                                                     \
    }

#define FEW_ROWS_BODY(W) FEW_ROWS_BODY_R(W, 4)
#define FEW_ROWS_BODY_R(W, R)                                                                                       \
    for (int o = o0; o < o1; o += R) {                                                                              \
        int nr = o1 - o < R ? o1 - o : R;                                                                           \
        const float *w[R];                                                                                          \
        for (int r = 0; r < R; r++) w[r] = weight + (size_t)(o + (r < nr ? r : 0)) * C;                            \
        float acc[R][W] = {{0}};                                                                                    \
        for (int c = 0; c < C; c++) {                                                                               \
            const float *xc = x + (size_t)c * W;                                                                    \
            for (int r = 0; r < R; r++) {                                                                           \
                float wv = w[r][c];                                                                                 \
                _Pragma("omp simd") for (int n = 0; n < W; n++) acc[r][n] = MADD(xc[n], wv, acc[r][n]);            \
            }                                                                                                       \
        }                                                                                                           \
        for (int r = 0; r < nr; r++)                                                                                \
            for (int n = 0; n < N; n++) out[(size_t)n * OC + o + r] = acc[r][n] + (bias ? bias[o + r] : 0.0f);     \
    }

// x: the row (W 1) or xt (C, W); weight rows o0..o1 -> out columns o0..o1
#define FEW_ROWS_PARAMS float *out, const float *x, const float *weight, const float *bias, int N, int C, int OC, int o0, int o1
#define MADD(a, b, c) ((a) * (b) + (c))
static void few_rows_base(FEW_ROWS_PARAMS, int W) {
    if (W == 1) { (void)N; (void)OC; ONE_ROW_BODY }
    else if (W == 8) { FEW_ROWS_BODY(8) }
    else { FEW_ROWS_BODY(16) }
}
#undef MADD
#if defined(__GNUC__) && defined(__x86_64__)
#define MADD(a, b, c) __builtin_fmaf(a, b, c)
__attribute__((target("avx2,fma"))) static void few_rows_fma(FEW_ROWS_PARAMS, int W) {
    if (W == 1) { (void)N; (void)OC; ONE_ROW_BODY }
    else if (W == 8) { FEW_ROWS_BODY_R(8, 8) }
    else { FEW_ROWS_BODY(16) }
}
// AVX-512: the 16 running sums of a weight row in one register, each lane the
// same chain of FMAs as in the AVX2 clone (the same bits); 8 weight rows at a
// time keep 8 independent FMA chains in flight (4 would wait on the FMA's
// latency). Beam search decodes 10 lanes, padded to W = 16.
__attribute__((target("avx512f,avx2,fma"))) static void few_rows_avx512(FEW_ROWS_PARAMS) {
    FEW_ROWS_BODY_R(16, 8)
}
#undef MADD
static int have_avx512(void) {
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx512f");
    return v;
}
static int have_fma(void) {
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return v;
}
#else
#define few_rows_fma few_rows_base
static int have_fma(void) { return 0; }
static int have_avx512(void) { return 0; }
#define few_rows_avx512(out, x, weight, bias, N, C, OC, o0, o1) few_rows_base(out, x, weight, bias, N, C, OC, o0, o1, 16)
#endif

static void matmul_few_rows(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                            int OC) {
    int W = N == 1 ? 1 : N <= 8 ? 8 : 16, spans = (OC + 63) / 64, fma = have_fma();
    int wide = W == 16 && fma && have_avx512();
    float *xt = NULL;
    if (N > 1) {
        xt = ls_calloc((size_t)C * W, sizeof(float));
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) xt[(size_t)c * W + n] = inp[(size_t)n * C + c];
    }
    const float *x = N > 1 ? xt : inp;
    #pragma omp parallel for if ((size_t)OC * C > OMP_MIN_WORK)
    for (int s = 0; s < spans; s++) {
        int o0 = s * 64, o1 = o0 + 64 < OC ? o0 + 64 : OC;
        if (wide) few_rows_avx512(out, x, weight, bias, N, C, OC, o0, o1);
        else if (fma) few_rows_fma(out, x, weight, bias, N, C, OC, o0, o1, W);
        else few_rows_base(out, x, weight, bias, N, C, OC, o0, o1, W);
    }
    free(xt);
}

// inp (N,C), weight (OC,C), bias (OC) -> out (N,OC)
static void cpu_matmul_forward(float *out, const float *inp, const float *weight,
                               const float *bias, int N, int C, int OC) {
    if (N <= FEW_ROWS) {
        matmul_few_rows(out, inp, weight, bias, N, C, OC);
        return;
    }
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
        int nblk = (OC + COL_BLOCK - 1) / COL_BLOCK;
        #pragma omp parallel for if ((size_t)N * OC > OMP_MIN_WORK)
        for (int k = 0; k < nblk; k++) {
            int o0 = k * COL_BLOCK, w = OC - o0 < COL_BLOCK ? OC - o0 : COL_BLOCK;
            float s[COL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * OC + o0;
                #pragma omp simd
                for (int i = 0; i < w; i++) s[i] += g[i];
            }
            for (int i = 0; i < w; i++) dbias[o0 + i] += s[i];
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
        int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
        #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
        for (int k = 0; k < nblk; k++) {
            int c0 = k * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
            float sw[COL_BLOCK] = {0}, sb[COL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * C + c0, *x = inp + (size_t)n * C + c0;
                float m = mean[n], r = rstd[n];
                #pragma omp simd
                for (int i = 0; i < w; i++) {
                    sw[i] += g[i] * (x[i] - m) * r;
                    sb[i] += g[i];
                }
            }
            for (int i = 0; i < w; i++) {
                if (dweight) dweight[c0 + i] += sw[i];
                if (dbias) dbias[c0 + i] += sb[i];
            }
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
        int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
        #pragma omp parallel for if ((size_t)N * C > OMP_MIN_WORK)
        for (int k = 0; k < nblk; k++) {
            int c0 = k * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
            float s[COL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * C + c0, *x = inp + (size_t)n * C + c0;
                float r = rstd[n];
                #pragma omp simd
                for (int i = 0; i < w; i++) s[i] += g[i] * x[i] * r;
            }
            for (int i = 0; i < w; i++) dweight[c0 + i] += s[i];
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
//
// With S = scale Q K^T, P = softmax(S) (causal), O = P V, the backward pass is
//   dV = P^T dO, dP = dO V^T, dS = P o (dP - rowsum(P o dP)),
//   dQ = scale dS K, dK = scale dS^T Q.
// Each product is an sgemm on Q, K, V read in place from the interleaved qkv
// rows (leading dimension (NH+2NKV)*HS), per (batch, head). Causality is used
// by blocks: query rows [i0, i1) only see keys [0, i1), so S is computed one
// row block of ATT_BLOCK queries at a time against the first i1 keys (5/8 of
// T x T at T = 256), and the products that reduce over queries (dV, dK)
// start at their key block's first query. Entries above the diagonal inside a
// computed block are exact zeros, so sgemm may read them. (Measured at
// stories260K's HS = 8, where sgemm's zeroing and packing cost as much as its
// multiplications, row-by-row loops over transposed K, V were still slower.)
//
// Units of work are (batch, head) forward and (batch, key/value head)
// backward; a backward unit owns the dK, dV rows of its kv head and the dQ
// rows of the query heads that share it, and adds those heads in order. A
// unit's arithmetic never depends on the thread that runs it, so the bits do
// not depend on the thread count.

#define ATT_BLOCK 64

// C (rows,cols) with leading dimension ld = 0. The S and dP products zero
// their block this way and then accumulate (beta = 1): OpenBLAS's own beta = 0
// pass is slower than memset, and at HS = 8 each element of S costs only 8
// multiply-adds (measured: 8% of attention at stories260K's shape).
static void zero_rows(float *C, int rows, int cols, int ld) {
    for (int i = 0; i < rows; i++) memset(C + (size_t)i * ld, 0, (size_t)cols * sizeof(float));
}


// att: the probabilities (B,NH,T,T); datt: dS (B,NH,T,T).
static void cpu_attention_sizes(int B, int T, int NH, int HS, size_t *att, size_t *datt) {
    (void)HS;
    *att = *datt = (size_t)B * NH * T * T;
}

// qkv (B,T,NH+2NKV,HS) -> att (B,NH,T,T), out (B,T,NH,HS)
static void cpu_attention_forward(float *out, float *att, const float *qkv, int B, int T,
                                  int NH, int NKV, int HS) {
    int RH = NH + 2 * NKV, group = NH / NKV, ldq = RH * HS, ldo = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * NH * T * T * HS > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            int kh = h / group;
            const float *base = qkv + (size_t)b * T * ldq;
            const float *Q = base + (size_t)h * HS, *K = base + (size_t)(NH + kh) * HS,
                        *V = base + (size_t)(NH + NKV + kh) * HS;
            float *P = att + ((size_t)b * NH + h) * T * T;
            float *O = out + (size_t)b * T * ldo + (size_t)h * HS;
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, rows = i1 - i0;
                float *Pb = P + (size_t)i0 * T;
                // S = scale Q K^T on the block, then the causal softmax row by row
                zero_rows(Pb, rows, i1, T);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, HS, scale,
                            Q + (size_t)i0 * ldq, ldq, K, ldq, 1.0f, Pb, T);
                for (int t = i0; t < i1; t++) softmax_row(P + (size_t)t * T, t + 1, T);
                // O = P V
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, i1, 1.0f,
                            Pb, T, V, ldq, 0.0f, O + (size_t)i0 * ldo, ldo);
            }
        }
    }
}

// dout (B,T,NH,HS) -> dqkv (B,T,NH+2NKV,HS); datt (B,NH,T,T) scratch (holds dS).
static void cpu_attention_backward(float *dqkv, float *datt, const float *dout,
                                   const float *qkv, const float *att, int B, int T, int NH,
                                   int NKV, int HS) {
    int RH = NH + 2 * NKV, group = NH / NKV, ldq = RH * HS, ldo = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * NH * T * T * HS > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int kh = 0; kh < NKV; kh++) {
            const float *base = qkv + (size_t)b * T * ldq;
            float *dbase = dqkv + (size_t)b * T * ldq;
            const float *K = base + (size_t)(NH + kh) * HS, *V = base + (size_t)(NH + NKV + kh) * HS;
            float *dK = dbase + (size_t)(NH + kh) * HS, *dV = dbase + (size_t)(NH + NKV + kh) * HS;
            for (int t = 0; t < T; t++) {
                memset(dK + (size_t)t * ldq, 0, HS * sizeof(float));
                memset(dV + (size_t)t * ldq, 0, HS * sizeof(float));
            }
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                const float *P = att + ((size_t)b * NH + h) * T * T;
                float *dS = datt + ((size_t)b * NH + h) * T * T;
                const float *dO = dout + (size_t)b * T * ldo + (size_t)h * HS;
                const float *Q = base + (size_t)h * HS;
                float *dQ = dbase + (size_t)h * HS;
                for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                    int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, rows = i1 - i0;
                    float *dSb = dS + (size_t)i0 * T;
                    // dP = dO V^T on the block
                    zero_rows(dSb, rows, i1, T);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, HS, 1.0f,
                                dO + (size_t)i0 * ldo, ldo, V, ldq, 1.0f, dSb, T);
                    // softmax backward with the scale folded in; zeros above the diagonal
                    for (int t = i0; t < i1; t++)
                        softmax_backward_row(dS + (size_t)t * T, P + (size_t)t * T, t + 1, i1, scale);
                    // dQ = dS K on the block
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, i1, 1.0f,
                                dSb, T, K, ldq, 0.0f, dQ + (size_t)i0 * ldq, ldq);
                }
                // dV += P^T dO, dK += dS^T Q: key block [j0, j1) is seen by queries [j0, T)
                for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
                    int j1 = j0 + ATT_BLOCK < T ? j0 + ATT_BLOCK : T;
                    size_t off = (size_t)j0 * T + j0;
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j1 - j0, HS, T - j0, 1.0f,
                                P + off, T, dO + (size_t)j0 * ldo, ldo, 1.0f, dV + (size_t)j0 * ldq, ldq);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, j1 - j0, HS, T - j0, 1.0f,
                                dS + off, T, Q + (size_t)j0 * ldq, ldq, 1.0f, dK + (size_t)j0 * ldq, ldq);
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
        #pragma omp simd reduction(+ : sum)
        for (int t = 0; t < n_ctx; t++) { a[t] = ls_expf(a[t] - mx); sum += a[t]; }
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

// GELU's tanh form is evaluated as a sigmoid, 0.5 (1 + tanh(u)) = 1 / (1 + e^{-2u}):
// one exp and no cancellation where tanh(u) is near -1 (the tanh form loses
// all digits there for x < -4), and tanh' = 4 s (1 - s) with s that sigmoid.

// Spans of GELU_SPAN elements are the parallel units (fixed boundaries).
#define GELU_SPAN 4096

LS_VECTOR_CLONES
static void gelu_forward_span(float *out, const float *inp, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALING_FACTOR * (x + 0.044715f * x * x * x);
        out[i] = x / (1.0f + ls_expf(-2.0f * u));
    }
}

// d/dx [x s] = s + x 2 s (1 - s) du/dx
LS_VECTOR_CLONES
static void gelu_backward_span(float *dinp, const float *inp, const float *dout, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_SCALING_FACTOR * (x + 0.044715f * x * x * x);
        float s = 1.0f / (1.0f + ls_expf(-2.0f * u));
        float local = s + x * 2.0f * s * (1.0f - s) * GELU_SCALING_FACTOR *
                              (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = local * dout[i];
    }
}

// inp (n) -> out (n)
static void cpu_gelu_forward(float *out, const float *inp, size_t n) {
    long spans = (long)((n + GELU_SPAN - 1) / GELU_SPAN);
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (long k = 0; k < spans; k++) {
        size_t i0 = (size_t)k * GELU_SPAN, len = n - i0 < GELU_SPAN ? n - i0 : GELU_SPAN;
        gelu_forward_span(out + i0, inp + i0, len);
    }
}

// dout (n) -> dinp (n)
static void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long spans = (long)((n + GELU_SPAN - 1) / GELU_SPAN);
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (long k = 0; k < spans; k++) {
        size_t i0 = (size_t)k * GELU_SPAN, len = n - i0 < GELU_SPAN ? n - i0 : GELU_SPAN;
        gelu_backward_span(dinp + i0, inp + i0, dout + i0, len);
    }
}

// g, u (H) -> o (H) = silu(g) u
LS_VECTOR_CLONES
static void swiglu_forward_row(float *o, const float *g, const float *u, int H) {
    #pragma omp simd
    for (int i = 0; i < H; i++) o[i] = g[i] / (1.0f + ls_expf(-g[i])) * u[i];
}

// silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g)))
LS_VECTOR_CLONES
static void swiglu_backward_row(float *dg, float *du, const float *g, const float *u,
                                const float *d, int H) {
    #pragma omp simd
    for (int i = 0; i < H; i++) {
        float sg = 1.0f / (1.0f + ls_expf(-g[i]));
        du[i] = d[i] * g[i] * sg;
        dg[i] = d[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
}

// inp (N,2H) [gate | up] -> out (N,H)
static void cpu_swiglu_forward(float *out, const float *inp, int N, int H) {
    #pragma omp parallel for if ((size_t)N * H > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H;
        swiglu_forward_row(out + (size_t)n * H, g, g + H, H);
    }
}

// dout (N,H) -> dinp (N,2H)
static void cpu_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H) {
    #pragma omp parallel for if ((size_t)N * H > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * H;
        float *dg = dinp + (size_t)n * 2 * H;
        swiglu_backward_row(dg, dg + H, g, g + H, dout + (size_t)n * H, H);
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

// Row statistics shared by forward and backward. Sums run in float within
// fixed chunks of CE_CHUNK columns (vectorised) and in double across chunks,
// so a 50257-word row keeps ~1e-7 relative accuracy.
#define CE_CHUNK 256

// sum_j e^{l_j - mx}; the terms are also written to e (NULL: not stored;
// e may alias l: each element is read before it is written).
LS_VECTOR_CLONES
static double row_sumexp(float *e, const float *l, int V, float mx) {
    double se = 0.0;
    for (int j0 = 0; j0 < V; j0 += CE_CHUNK) {
        int j1 = j0 + CE_CHUNK < V ? j0 + CE_CHUNK : V;
        float s = 0.0f;
        if (e) {
            #pragma omp simd reduction(+ : s)
            for (int j = j0; j < j1; j++) { float x = ls_expf(l[j] - mx); e[j] = x; s += x; }
        } else {
            #pragma omp simd reduction(+ : s)
            for (int j = j0; j < j1; j++) s += ls_expf(l[j] - mx);
        }
        se += s;
    }
    return se;
}

LS_VECTOR_CLONES
static double row_sum(const float *l, int V) {
    double sl = 0.0;
    for (int j0 = 0; j0 < V; j0 += CE_CHUNK) {
        int j1 = j0 + CE_CHUNK < V ? j0 + CE_CHUNK : V;
        float s = 0.0f;
        #pragma omp simd reduction(+ : s)
        for (int j = j0; j < j1; j++) s += l[j];
        sl += s;
    }
    return sl;
}

// d (V) = a d - b
LS_VECTOR_CLONES
static void row_affine(float *d, int V, float a, float b) {
    #pragma omp simd
    for (int j = 0; j < V; j++) d[j] = d[j] * a - b;
}

// logits (N,V), targets (N) -> losses (N)
static void cpu_crossentropy_forward(float *losses, const float *logits, const int *targets,
                                     int N, int V, float smoothing) {
    #pragma omp parallel for if ((size_t)N * V > OMP_MIN_WORK)
    for (int n = 0; n < N; n++) {
        int y = targets[n];
        if (y < 0) { losses[n] = 0.0f; continue; }
        const float *l = logits + (size_t)n * V;
        float mx = row_max(l, V);
        double se = row_sumexp(NULL, l, V, mx), sl = smoothing != 0.0f ? row_sum(l, V) : 0.0;
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
        float mx = row_max(l, V);
        // d holds e^{l - mx} from here on (l is gone if d aliases it)
        double se = row_sumexp(d, l, V, mx);
        row_affine(d, V, (float)(g / se), g * (smoothing / V));
        d[y] -= g * (1.0f - smoothing);
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
    .copy_rows = cpu_copy_rows,
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
    .attention_sizes = cpu_attention_sizes,
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
    .attention_bidir_forward = cpu_attention_bidir_forward,
    .attention_bidir_backward = cpu_attention_bidir_backward,
    .gelu_erf_forward = cpu_gelu_erf_forward,
    .gelu_erf_backward = cpu_gelu_erf_backward,
    .tanh_forward = cpu_tanh_forward,
    .tanh_backward = cpu_tanh_backward,
    .mean_pool_forward = cpu_mean_pool_forward,
    .mean_pool_backward = cpu_mean_pool_backward,
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
