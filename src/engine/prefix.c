// prefix: attention with trainable prefix keys and values (prefix.h).
#include "engine/prefix.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

// ----------------------------------------------------------------------------
// the op pair

// Key / value j of (b, kh) among the P prefix entries then the sequence's T.
static const float *key_at(const float *qkv, const float *pk, int b, int j, int kh, int T, int P, int NH, int NKV,
                           int HS) {
    if (j < P) return pk + ((size_t)j * NKV + kh) * HS;
    return qkv + (((size_t)b * T + (j - P)) * (NH + 2 * NKV) + NH + kh) * HS;
}

static const float *value_at(const float *qkv, const float *pv, int b, int j, int kh, int T, int P, int NH, int NKV,
                             int HS) {
    if (j < P) return pv + ((size_t)j * NKV + kh) * HS;
    return qkv + (((size_t)b * T + (j - P)) * (NH + 2 * NKV) + NH + NKV + kh) * HS;
}

void prefix_attention_forward(float *out, float *att, const float *qkv, const float *pk, const float *pv, int B,
                              int T, int P, int NH, int NKV, int HS) {
    int RH = NH + 2 * NKV, S = P + T;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / (NH / NKV);
            for (int t = 0; t < T; t++) {
                const float *q = qkv + (((size_t)b * T + t) * RH + h) * HS;
                float *p = att + (((size_t)b * NH + h) * T + t) * S;
                int n = P + t + 1; // visible: every prefix entry, then 0..t
                double mx = -INFINITY, z = 0.0;
                for (int j = 0; j < n; j++) {
                    const float *k = key_at(qkv, pk, b, j, kh, T, P, NH, NKV, HS);
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += (double)q[i] * k[i];
                    p[j] = (float)(d * scale);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < n; j++) z += exp((double)p[j] - mx);
                for (int j = 0; j < n; j++) p[j] = (float)(exp((double)p[j] - mx) / z);
                for (int j = n; j < S; j++) p[j] = 0.0f;
                float *o = out + (((size_t)b * T + t) * NH + h) * HS;
                for (int i = 0; i < HS; i++) {
                    double acc = 0.0;
                    for (int j = 0; j < n; j++) acc += (double)p[j] * value_at(qkv, pv, b, j, kh, T, P, NH, NKV, HS)[i];
                    o[i] = (float)acc;
                }
            }
        }
}

void prefix_attention_backward(float *dqkv, float *dpk, float *dpv, float *dp, const float *dout, const float *qkv,
                               const float *pk, const float *pv, const float *att, int B, int T, int P, int NH,
                               int NKV, int HS) {
    int RH = NH + 2 * NKV, S = P + T;
    float scale = (float)(1.0 / sqrt((double)HS));
    memset(dqkv, 0, sizeof(float) * (size_t)B * T * RH * HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / (NH / NKV);
            for (int t = 0; t < T; t++) {
                const float *q = qkv + (((size_t)b * T + t) * RH + h) * HS, *p = att + (((size_t)b * NH + h) * T + t) * S;
                const float *g = dout + (((size_t)b * T + t) * NH + h) * HS;
                float *dq = dqkv + (((size_t)b * T + t) * RH + h) * HS;
                int n = P + t + 1;
                double sum = 0.0;
                for (int j = 0; j < n; j++) { // dp_j = dout . v_j; the softmax's Jacobian needs sum_j p_j dp_j
                    const float *v = value_at(qkv, pv, b, j, kh, T, P, NH, NKV, HS);
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += (double)g[i] * v[i];
                    dp[j] = (float)d;
                    sum += (double)p[j] * d;
                }
                for (int j = 0; j < n; j++) {
                    float ds = (float)((double)p[j] * ((double)dp[j] - sum)) * scale;
                    const float *k = key_at(qkv, pk, b, j, kh, T, P, NH, NKV, HS);
                    float *dk = j < P ? dpk + ((size_t)j * NKV + kh) * HS
                                      : dqkv + (((size_t)b * T + (j - P)) * RH + NH + kh) * HS;
                    float *dv = j < P ? dpv + ((size_t)j * NKV + kh) * HS
                                      : dqkv + (((size_t)b * T + (j - P)) * RH + NH + NKV + kh) * HS;
                    for (int i = 0; i < HS; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                        dv[i] += p[j] * g[i];
                    }
                }
            }
        }
}
