// ops_cpu_encoder: the CPU backend's ops of the encoder family (BERT,
// RoBERTa; ARCHITECTURE.md, Model): bidirectional attention with a key
// padding mask, exact (erf) GELU, tanh (the pooler), masked mean pooling.
// Declared in ops_cpu_encoder.h, gathered into the table by ops_cpu.c.
//
// Determinism as in ops_cpu.c: attention works in (batch, head) units, the
// pointwise ops element by element, the pooling per (batch, channel) in token
// order; no result depends on the thread count except through sgemm panels.
#include "engine/ops_cpu_encoder.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "engine/ops_cpu_math.h"

#define OMP_MIN_WORK 16384

// ----------------------------------------------------------------------------
// bidirectional self-attention with a key padding mask (Devlin et al. 2019)
//
// S = scale Q K^T + (key j masked ? -inf : 0), P = softmax(S), O = P V, every
// query row (padding positions included, as HF computes them) over the keys
// that the mask keeps. Keys after a sequence's last kept key are never read:
// the products run over n = that key + 1 columns (right padding costs nothing).
// The backward pass is the causal one's without the triangle:
//   dV = P^T dO, dP = dO V^T, dS = P o (dP - rowsum(P o dP)),
//   dQ = scale dS K, dK = scale dS^T Q.
// A sequence whose keys are all masked gets P = 0 and O = 0.

// keys of sequence b that count: one past the last kept key
static int kept_keys(const int *keymask, int T) {
    int n = T;
    if (keymask)
        while (n > 0 && !keymask[n - 1]) n--;
    return n;
}

// bias (n) -> 0 for a kept key, -inf for a masked one (NULL keymask: all kept)
static void key_bias(float *bias, const int *keymask, int n) {
    for (int j = 0; j < n; j++) bias[j] = !keymask || keymask[j] ? 0.0f : -INFINITY;
}

// a (n) scores, bias (n) from key_bias -> probabilities over the kept keys, 0
// on masked ones (ls_expf(-inf) is 0); at least one key is kept
static void masked_softmax_row(float *a, const float *bias, int n) {
    for (int j = 0; j < n; j++) a[j] += bias[j];
    softmax_row(a, n, n);
}

// qkv (B,T,3NH,HS), keymask (B,T) or NULL -> att (B,NH,T,T) probabilities, out (B,T,NH,HS)
void cpu_attention_bidir_forward(float *out, float *att, const float *qkv, const int *keymask,
                                 int B, int T, int NH, int HS) {
    int ldq = 3 * NH * HS, ldo = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * NH * T * T * HS > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const int *km = keymask ? keymask + (size_t)b * T : NULL;
            int n = kept_keys(km, T);
            const float *base = qkv + (size_t)b * T * ldq;
            const float *Q = base + (size_t)h * HS, *K = base + (size_t)(NH + h) * HS,
                        *V = base + (size_t)(2 * NH + h) * HS;
            float *P = att + ((size_t)b * NH + h) * T * T;
            float *O = out + (size_t)b * T * ldo + (size_t)h * HS;
            if (n == 0) {
                memset(P, 0, (size_t)T * T * sizeof(float));
                for (int t = 0; t < T; t++) memset(O + (size_t)t * ldo, 0, HS * sizeof(float));
                continue;
            }
            for (int t = 0; n < T && t < T; t++) memset(P + (size_t)t * T + n, 0, (size_t)(T - n) * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, HS, scale, Q, ldq, K, ldq,
                        0.0f, P, T);
            float bias[n];
            key_bias(bias, km, n);
            for (int t = 0; t < T; t++) masked_softmax_row(P + (size_t)t * T, bias, n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, n, 1.0f, P, T, V, ldq,
                        0.0f, O, ldo);
        }
    }
}


// dout (B,T,NH,HS) -> dqkv (B,T,3NH,HS) overwritten; datt (B,NH,T,T) scratch (dS)
void cpu_attention_bidir_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                  const float *att, const int *keymask, int B, int T, int NH,
                                  int HS) {
    int ldq = 3 * NH * HS, ldo = NH * HS;
    float scale = 1.0f / sqrtf((float)HS);
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * NH * T * T * HS > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            int n = kept_keys(keymask ? keymask + (size_t)b * T : NULL, T);
            const float *base = qkv + (size_t)b * T * ldq;
            float *dbase = dqkv + (size_t)b * T * ldq;
            const float *Q = base + (size_t)h * HS, *K = base + (size_t)(NH + h) * HS,
                        *V = base + (size_t)(2 * NH + h) * HS;
            float *dQ = dbase + (size_t)h * HS, *dK = dbase + (size_t)(NH + h) * HS,
                  *dV = dbase + (size_t)(2 * NH + h) * HS;
            const float *P = att + ((size_t)b * NH + h) * T * T;
            float *dS = datt + ((size_t)b * NH + h) * T * T;
            const float *dO = dout + (size_t)b * T * ldo + (size_t)h * HS;
            // the products below write dQ's T rows and dK's, dV's first n rows
            for (int t = n == 0 ? 0 : n; t < T; t++) {
                if (n == 0) memset(dQ + (size_t)t * ldq, 0, HS * sizeof(float));
                memset(dK + (size_t)t * ldq, 0, HS * sizeof(float));
                memset(dV + (size_t)t * ldq, 0, HS * sizeof(float));
            }
            if (n == 0) continue;
            // dP = dO V^T, then dS = scale P o (dP - rowsum(P o dP)) row by row
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, HS, 1.0f, dO, ldo, V, ldq,
                        0.0f, dS, T);
            for (int t = 0; t < T; t++) softmax_backward_row(dS + (size_t)t * T, P + (size_t)t * T, n, n, scale);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, n, 1.0f, dS, T, K, ldq,
                        0.0f, dQ, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, HS, T, 1.0f, dS, T, Q, ldq,
                        0.0f, dK, ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, HS, T, 1.0f, P, T, dO, ldo,
                        0.0f, dV, ldq);
        }
    }
}

// ----------------------------------------------------------------------------
// pointwise

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

// Spans of GELU_SPAN elements are the parallel units (fixed boundaries, so
// the bits do not depend on the thread count).
#define GELU_SPAN 4096

LS_VECTOR_CLONES
static void gelu_erf_forward_span(float *out, const float *inp, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * INV_SQRT2));
}

// d/dx = Phi(x) + x phi(x)
LS_VECTOR_CLONES
static void gelu_erf_backward_span(float *dinp, const float *inp, const float *dout, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2)), pdf = INV_SQRT_2PI * ls_expf(-0.5f * x * x);
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}

// inp (n) -> out (n) = 0.5 x (1 + erf(x / sqrt 2)) (BERT's "gelu", PyTorch's exact GELU)
void cpu_gelu_erf_forward(float *out, const float *inp, size_t n) {
    long spans = (long)((n + GELU_SPAN - 1) / GELU_SPAN);
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (long k = 0; k < spans; k++) {
        size_t i0 = (size_t)k * GELU_SPAN, len = n - i0 < GELU_SPAN ? n - i0 : GELU_SPAN;
        gelu_erf_forward_span(out + i0, inp + i0, len);
    }
}

// dout (n) -> dinp (n) overwritten
void cpu_gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long spans = (long)((n + GELU_SPAN - 1) / GELU_SPAN);
    #pragma omp parallel for if (n > OMP_MIN_WORK)
    for (long k = 0; k < spans; k++) {
        size_t i0 = (size_t)k * GELU_SPAN, len = n - i0 < GELU_SPAN ? n - i0 : GELU_SPAN;
        gelu_erf_backward_span(dinp + i0, inp + i0, dout + i0, len);
    }
}

// inp (n) -> out (n) = tanh(inp)
void cpu_tanh_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

// out (n) the forward's output, dout (n) -> dinp (n) = dout (1 - out^2)
void cpu_tanh_backward(float *dinp, const float *out, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

// ----------------------------------------------------------------------------
// masked mean pooling (sentence-transformers' "mean" pooling)

// inp (B,T,C), mask (B,T) or NULL -> out (B,C) = sum_t mask inp / max(1, sum_t mask)
void cpu_mean_pool_forward(float *out, const float *inp, const int *mask, int B, int T, int C) {
    #pragma omp parallel for if ((size_t)B * T * C > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        int count = 0;
        memset(o, 0, (size_t)C * sizeof(float));
        for (int t = 0; t < T; t++) {
            if (mask && !mask[(size_t)b * T + t]) continue;
            const float *x = inp + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) o[c] += x[c];
            count++;
        }
        float inv = 1.0f / (float)(count > 0 ? count : 1);
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

// dout (B,C) -> dinp (B,T,C) overwritten (0 on masked tokens)
void cpu_mean_pool_backward(float *dinp, const float *dout, const int *mask, int B, int T, int C) {
    #pragma omp parallel for if ((size_t)B * T * C > OMP_MIN_WORK)
    for (int b = 0; b < B; b++) {
        int count = 0;
        for (int t = 0; t < T; t++) count += !mask || mask[(size_t)b * T + t];
        float inv = 1.0f / (float)(count > 0 ? count : 1);
        for (int t = 0; t < T; t++) {
            float *d = dinp + ((size_t)b * T + t) * C;
            int keep = !mask || mask[(size_t)b * T + t];
            for (int c = 0; c < C; c++) d[c] = keep ? dout[(size_t)b * C + c] * inv : 0.0f;
        }
    }
}
