// Finite-difference checks of every backward op of the CPU backend, and
// forward checks against independent naive references.
//
// Method: each op's output is reduced to the scalar L = sum_i w_i out_i with
// fixed random weights w (so every output element matters); L is accumulated
// in double from the float outputs. The analytic gradient is the op's
// backward applied to dout = w. The numeric gradient of input element x_j is
// the central difference (L(x_j + h) - L(x_j - h)) / (x_j+ - x_j-), with the
// actual float perturbation in the denominator.
//
// Error budget (why the tolerances are what they are): the float forward has
// relative rounding ~6e-8 per output; only the k outputs that depend on x_j
// change, so L(x+h) - L(x-h) carries an error of about
// 6e-8 * sqrt(k) * |w·out| ~ 1e-6 for these sizes, i.e. ~1e-4 after dividing by
// 2h with h = 5e-3. Truncation is h^2 |L'''| / 6 ~ 4e-6 |L'''|, negligible for
// the smooth ops (0 for the linear ones). Hence: |fd - g| <= 2e-3 |g| + 5e-4 for
// the nonlinear ops; the linear ones (matmul, rope, residual, embedding,
// dropout) have no truncation error and get atol 2e-4 with h = 1e-2.
// Inputs are random N(0, 1) (never zero) so no gradient vanishes by
// construction.
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/adapters.h"
#include "engine/prefix.h"
#include "engine/backend.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "engine_testutil.h"
#include "harness.h"

static const ls_backend *be;

#define FD_LINEAR_H 1e-2f
#define FD_LINEAR_RTOL 1e-4
#define FD_LINEAR_ATOL 2e-4
#define FD_H 5e-3f
#define FD_RTOL 2e-3
#define FD_ATOL 5e-4

// ----------------------------------------------------------------------------
// matmul

typedef struct {
    int N, C, OC;
    float *inp, *w, *b, *out, *wout;
} mm_ctx;

static double mm_obj(void *p) {
    mm_ctx *c = p;
    be->matmul_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return et_dot(c->wout, c->out, (size_t)c->N * c->OC);
}

// Every path of the CPU product: one row, the few-rows kernels (W = 8 and
// 16, output rows in blocks of 4 and 8 with a ragged end: OC = 70), and sgemm.
static void test_matmul_forward_matches_naive_product(void) {
    static const int shapes[][3] = {{5, 7, 6}, {1, 37, 70}, {6, 37, 70}, {10, 37, 70}, {16, 37, 70}, {17, 37, 70}};
    for (int k = 0; k < (int)LS_COUNT(shapes); k++) {
        int N = shapes[k][0], C = shapes[k][1], OC = shapes[k][2];
        float *inp = et_randn(N * C, 1, 1), *w = et_randn(OC * C, 2, 1), *b = et_randn(OC, 3, 1),
              *out = malloc(sizeof(float) * N * OC);
        be->matmul_forward(out, inp, w, b, N, C, OC);
        double err = 0.0;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double s = b[o];
                for (int i = 0; i < C; i++) s += (double)inp[n * C + i] * w[o * C + i];
                err = fmax(err, fabs(out[n * OC + o] - s));
            }
        CHECK_MSG(err < 2e-5, "N %d, C %d, OC %d: off the double product by %.3g", N, C, OC, err);
        free(inp); free(w); free(b); free(out);
    }
}

static void test_matmul_backward_matches_finite_differences(void) {
    mm_ctx c = {.N = 5, .C = 7, .OC = 6};
    c.inp = et_randn(c.N * c.C, 11, 1);
    c.w = et_randn(c.OC * c.C, 12, 1);
    c.b = et_randn(c.OC, 13, 1);
    c.out = malloc(sizeof(float) * c.N * c.OC);
    c.wout = et_randn(c.N * c.OC, 14, 1);
    float *dinp = malloc(sizeof(float) * c.N * c.C);
    // weight and bias gradients accumulate: start from nonzero and subtract
    float *dw0 = et_randn(c.OC * c.C, 15, 1), *db0 = et_randn(c.OC, 16, 1);
    float *dw = malloc(sizeof(float) * c.OC * c.C), *db = malloc(sizeof(float) * c.OC);
    memcpy(dw, dw0, sizeof(float) * c.OC * c.C);
    memcpy(db, db0, sizeof(float) * c.OC);
    be->matmul_backward(dinp, dw, db, c.wout, c.inp, c.w, c.N, c.C, c.OC);
    for (int i = 0; i < c.OC * c.C; i++) dw[i] -= dw0[i];
    for (int i = 0; i < c.OC; i++) db[i] -= db0[i];
    CHECK(et_fd_check("dinp", mm_obj, &c, c.inp, dinp, c.N * c.C, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    CHECK(et_fd_check("dweight", mm_obj, &c, c.w, dw, c.OC * c.C, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    CHECK(et_fd_check("dbias", mm_obj, &c, c.b, db, c.OC, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    // NULL gradients are skipped and leave the others unchanged
    float *dinp2 = malloc(sizeof(float) * c.N * c.C);
    be->matmul_backward(dinp2, NULL, NULL, c.wout, c.inp, c.w, c.N, c.C, c.OC);
    CHECK(memcmp(dinp, dinp2, sizeof(float) * c.N * c.C) == 0);
    free(c.inp); free(c.w); free(c.b); free(c.out); free(c.wout);
    free(dinp); free(dinp2); free(dw0); free(db0); free(dw); free(db);
}

// ----------------------------------------------------------------------------
// norms

typedef struct {
    int N, C, rms;
    float eps;
    float *inp, *w, *b, *out, *mean, *rstd, *wout;
} norm_ctx;

static double norm_obj(void *p) {
    norm_ctx *c = p;
    if (c->rms) be->rmsnorm_forward(c->out, c->rstd, c->inp, c->w, c->N, c->C, c->eps);
    else be->layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, c->eps);
    return et_dot(c->wout, c->out, (size_t)c->N * c->C);
}

static void norm_check(int rms) {
    norm_ctx c = {.N = 4, .C = 8, .rms = rms, .eps = 1e-5f};
    c.inp = et_randn(c.N * c.C, 21, 1);
    c.w = et_randn(c.C, 22, 1);
    c.b = et_randn(c.C, 23, 1);
    c.out = malloc(sizeof(float) * c.N * c.C);
    c.mean = malloc(sizeof(float) * c.N);
    c.rstd = malloc(sizeof(float) * c.N);
    c.wout = et_randn(c.N * c.C, 24, 1);
    norm_obj(&c);
    // forward against the definition
    for (int n = 0; n < c.N; n++) {
        double m = 0, v = 0, ss = 0;
        for (int i = 0; i < c.C; i++) { m += c.inp[n * c.C + i]; ss += (double)c.inp[n * c.C + i] * c.inp[n * c.C + i]; }
        m /= c.C;
        for (int i = 0; i < c.C; i++) v += (c.inp[n * c.C + i] - m) * (c.inp[n * c.C + i] - m);
        v /= c.C;
        for (int i = 0; i < c.C; i++) {
            double x = c.inp[n * c.C + i];
            double ref = rms ? x / sqrt(ss / c.C + c.eps) * c.w[i]
                             : (x - m) / sqrt(v + c.eps) * c.w[i] + c.b[i];
            CHECK_NEAR(c.out[n * c.C + i], ref, 1e-5);
        }
    }
    // dinp accumulates: start from a nonzero buffer
    float *d0 = et_randn(c.N * c.C, 25, 1), *dinp = malloc(sizeof(float) * c.N * c.C),
          *dw = calloc(c.C, sizeof(float)), *db = calloc(c.C, sizeof(float));
    memcpy(dinp, d0, sizeof(float) * c.N * c.C);
    if (rms) be->rmsnorm_backward(dinp, dw, c.wout, c.inp, c.w, c.rstd, c.N, c.C);
    else be->layernorm_backward(dinp, dw, db, c.wout, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    for (int i = 0; i < c.N * c.C; i++) dinp[i] -= d0[i];
    CHECK(et_fd_check("dinp", norm_obj, &c, c.inp, dinp, c.N * c.C, FD_H, FD_RTOL, FD_ATOL) == 0);
    CHECK(et_fd_check("dweight", norm_obj, &c, c.w, dw, c.C, FD_H, FD_RTOL, FD_ATOL) == 0);
    if (!rms) CHECK(et_fd_check("dbias", norm_obj, &c, c.b, db, c.C, FD_H, FD_RTOL, FD_ATOL) == 0);
    free(c.inp); free(c.w); free(c.b); free(c.out); free(c.mean); free(c.rstd); free(c.wout);
    free(d0); free(dinp); free(dw); free(db);
}

static void test_layernorm_backward_matches_finite_differences(void) { norm_check(0); }
static void test_rmsnorm_backward_matches_finite_differences(void) { norm_check(1); }

// ----------------------------------------------------------------------------
// rope

typedef struct {
    int B, T, RH, NR, HS, pos0, inter;
    float *cos, *sin, *x, *y, *wout;
} rope_ctx;

static double rope_obj(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->B * c->T * c->RH * c->HS;
    memcpy(c->y, c->x, n * sizeof(float));
    be->rope_forward(c->y, c->cos, c->sin, c->B, c->T, c->RH, c->NR, c->HS, c->pos0, c->inter);
    return et_dot(c->wout, c->y, n);
}

static void make_rope_tables(int P, int HS, float **cs, float **sn) {
    int half = HS / 2;
    *cs = malloc(sizeof(float) * P * half);
    *sn = malloc(sizeof(float) * P * half);
    for (int p = 0; p < P; p++)
        for (int i = 0; i < half; i++) {
            double ang = p * pow(10000.0, -2.0 * i / HS);
            (*cs)[p * half + i] = (float)cos(ang);
            (*sn)[p * half + i] = (float)sin(ang);
        }
}

static void rope_check(int inter) {
    rope_ctx c = {.B = 2, .T = 3, .RH = 4, .NR = 3, .HS = 6, .pos0 = 2, .inter = inter};
    int n = c.B * c.T * c.RH * c.HS;
    make_rope_tables(8, c.HS, &c.cos, &c.sin);
    c.x = et_randn(n, 31, 1);
    c.y = malloc(sizeof(float) * n);
    c.wout = et_randn(n, 32, 1);
    rope_obj(&c);
    // forward against the definition: rotate pair (i0, i1) of position p by p*theta_i
    int half = c.HS / 2;
    for (int b = 0; b < c.B; b++)
        for (int t = 0; t < c.T; t++)
            for (int h = 0; h < c.RH; h++)
                for (int i = 0; i < half; i++) {
                    size_t base = (((size_t)b * c.T + t) * c.RH + h) * c.HS;
                    int i0 = inter ? 2 * i : i, i1 = inter ? 2 * i + 1 : i + half;
                    double ang = (c.pos0 + t) * pow(10000.0, -2.0 * i / c.HS);
                    double x0 = c.x[base + i0], x1 = c.x[base + i1];
                    double y0 = h < c.NR ? x0 * cos(ang) - x1 * sin(ang) : x0;
                    double y1 = h < c.NR ? x0 * sin(ang) + x1 * cos(ang) : x1;
                    CHECK_NEAR(c.y[base + i0], y0, 1e-5);
                    CHECK_NEAR(c.y[base + i1], y1, 1e-5);
                }
    float *g = malloc(sizeof(float) * n);
    memcpy(g, c.wout, sizeof(float) * n);
    be->rope_backward(g, c.cos, c.sin, c.B, c.T, c.RH, c.NR, c.HS, c.pos0, c.inter);
    CHECK(et_fd_check("dx", rope_obj, &c, c.x, g, n, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    free(c.cos); free(c.sin); free(c.x); free(c.y); free(c.wout); free(g);
}

static void test_rope_interleaved_backward_matches_finite_differences(void) { rope_check(1); }
static void test_rope_split_halves_backward_matches_finite_differences(void) { rope_check(0); }

// ----------------------------------------------------------------------------
// attention

typedef struct {
    int B, T, NH, NKV, HS;
    float *qkv, *att, *out, *wout;
} att_ctx;

static double att_obj(void *p) {
    att_ctx *c = p;
    be->attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->NH, c->NKV, c->HS);
    return et_dot(c->wout, c->out, (size_t)c->B * c->T * c->NH * c->HS);
}

// Naive causal attention in double, written from the definition.
static void attention_reference(double *out, const float *qkv, int B, int T, int NH, int NKV, int HS) {
    int RH = NH + 2 * NKV;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / (NH / NKV);
            for (int t = 0; t < T; t++) {
                double *s = malloc(sizeof(double) * T), mx = -1e300, z = 0;
                const float *q = qkv + ((size_t)(b * T + t) * RH + h) * HS;
                for (int u = 0; u <= t; u++) {
                    const float *k = qkv + ((size_t)(b * T + u) * RH + NH + kh) * HS;
                    double d = 0;
                    for (int i = 0; i < HS; i++) d += (double)q[i] * k[i];
                    s[u] = d / sqrt((double)HS);
                    if (s[u] > mx) mx = s[u];
                }
                for (int u = 0; u <= t; u++) { s[u] = exp(s[u] - mx); z += s[u]; }
                for (int i = 0; i < HS; i++) {
                    double o = 0;
                    for (int u = 0; u <= t; u++)
                        o += s[u] / z * qkv[((size_t)(b * T + u) * RH + NH + NKV + kh) * HS + i];
                    out[((size_t)(b * T + t) * NH + h) * HS + i] = o;
                }
                free(s);
            }
        }
}

static void attention_check(int NH, int NKV) {
    att_ctx c = {.B = 2, .T = 5, .NH = NH, .NKV = NKV, .HS = 4};
    int n_qkv = c.B * c.T * (NH + 2 * NKV) * c.HS, n_out = c.B * c.T * NH * c.HS;
    c.qkv = et_randn(n_qkv, 41 + NKV, 1);
    c.att = malloc(sizeof(float) * c.B * NH * c.T * c.T);
    c.out = malloc(sizeof(float) * n_out);
    c.wout = et_randn(n_out, 42, 1);
    att_obj(&c);
    double *ref = malloc(sizeof(double) * n_out);
    attention_reference(ref, c.qkv, c.B, c.T, NH, NKV, c.HS);
    for (int i = 0; i < n_out; i++) CHECK_NEAR(c.out[i], ref[i], 1e-5);
    for (int b = 0; b < c.B; b++) // causal: probabilities above the diagonal are 0, rows sum to 1
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < c.T; t++) {
                double s = 0;
                for (int u = 0; u < c.T; u++) {
                    float a = c.att[(((size_t)b * NH + h) * c.T + t) * c.T + u];
                    if (u > t) CHECK(a == 0.0f);
                    s += a;
                }
                CHECK_NEAR(s, 1.0, 1e-6);
            }
    float *dqkv = malloc(sizeof(float) * n_qkv), *datt = malloc(sizeof(float) * c.B * NH * c.T * c.T);
    be->attention_backward(dqkv, datt, c.wout, c.qkv, c.att, c.B, c.T, NH, NKV, c.HS);
    CHECK(et_fd_check("dqkv", att_obj, &c, c.qkv, dqkv, n_qkv, FD_H, FD_RTOL, FD_ATOL) == 0);
    free(c.qkv); free(c.att); free(c.out); free(c.wout); free(ref); free(dqkv); free(datt);
}

static void test_attention_backward_matches_finite_differences(void) { attention_check(4, 4); }
static void test_attention_gqa_backward_matches_finite_differences(void) { attention_check(4, 2); }

// Gradients of causal attention in double, from the definition: with
// P = softmax(Q K^T / sqrt(HS)) and out = P V,
// dV = P^T dout, dP = dout V^T, dS = P o (dP - rowsum(P o dP)),
// dQ = dS K / sqrt(HS), dK = dS^T Q / sqrt(HS).
static void attention_backward_reference(double *dqkv, const float *qkv, const float *dout, int B,
                                         int T, int NH, int NKV, int HS) {
    int RH = NH + 2 * NKV;
    double sc = 1.0 / sqrt((double)HS);
    double *P = malloc(sizeof(double) * T * T), *dS = malloc(sizeof(double) * T * T);
    memset(dqkv, 0, sizeof(double) * B * T * RH * HS);
#define QKV(b, t, head, i) ((((size_t)(b) * T + (t)) * RH + (head)) * HS + (i))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = NH + h / (NH / NKV), vh = kh + NKV;
            for (int t = 0; t < T; t++) {
                double mx = -1e300, z = 0;
                for (int u = 0; u <= t; u++) {
                    double d = 0;
                    for (int i = 0; i < HS; i++) d += (double)qkv[QKV(b, t, h, i)] * qkv[QKV(b, u, kh, i)];
                    P[t * T + u] = d * sc;
                    if (P[t * T + u] > mx) mx = P[t * T + u];
                }
                for (int u = 0; u <= t; u++) { P[t * T + u] = exp(P[t * T + u] - mx); z += P[t * T + u]; }
                for (int u = 0; u <= t; u++) P[t * T + u] /= z;
                const float *g = dout + (((size_t)b * T + t) * NH + h) * HS;
                double rs = 0;
                for (int u = 0; u <= t; u++) {
                    double dp = 0;
                    for (int i = 0; i < HS; i++) dp += (double)g[i] * qkv[QKV(b, u, vh, i)];
                    dS[t * T + u] = dp;
                    rs += P[t * T + u] * dp;
                }
                for (int u = 0; u <= t; u++) dS[t * T + u] = P[t * T + u] * (dS[t * T + u] - rs);
                for (int u = 0; u <= t; u++)
                    for (int i = 0; i < HS; i++) {
                        dqkv[QKV(b, t, h, i)] += sc * dS[t * T + u] * qkv[QKV(b, u, kh, i)];
                        dqkv[QKV(b, u, kh, i)] += sc * dS[t * T + u] * qkv[QKV(b, t, h, i)];
                        dqkv[QKV(b, u, vh, i)] += P[t * T + u] * g[i];
                    }
            }
        }
#undef QKV
    free(P);
    free(dS);
}

// The CPU backend works on causal blocks of 64 query rows; T = 150 gives two
// full blocks and a partial one, HS = 32 the head size of a real model's order.
// At this size finite differences drown in float rounding (each key feeds
// thousands of outputs), so the gradients are checked against the double
// reference above (the finite-difference tests validate the same formulas at
// T = 5). Tolerances: float sums of length <= 150 and 32 stay near 1e-6 of
// the largest value (observed ~1e-7 forward, ~1e-6 backward).
static void test_attention_multi_block_gqa_matches_reference(void) {
    int B = 2, T = 150, NH = 4, NKV = 2, HS = 32, RH = NH + 2 * NKV;
    int n_qkv = B * T * RH * HS, n_out = B * T * NH * HS, n_att = B * NH * T * T;
    float *qkv = et_randn(n_qkv, 47, 1), *dout = et_randn(n_out, 48, 1);
    float *out = malloc(sizeof(float) * n_out), *att = malloc(sizeof(float) * n_att),
          *datt = malloc(sizeof(float) * n_att), *dqkv = malloc(sizeof(float) * n_qkv);
    double *ref = malloc(sizeof(double) * n_out), *dref = malloc(sizeof(double) * n_qkv);
    be->attention_forward(out, att, qkv, B, T, NH, NKV, HS);
    attention_reference(ref, qkv, B, T, NH, NKV, HS);
    double d = 0, m = 0;
    for (int i = 0; i < n_out; i++) { d = fmax(d, fabs(out[i] - ref[i])); m = fmax(m, fabs(ref[i])); }
    CHECK_MSG(d <= 1e-5 * m, "out: max |diff| %.3g > 1e-5 * %.4g", d, m);
    for (int r = 0; r < B * NH * T; r++) { // causal rows of probabilities
        int t = r % T;
        double s = 0;
        for (int u = 0; u < T; u++) {
            if (u > t) CHECK(att[(size_t)r * T + u] == 0.0f);
            s += att[(size_t)r * T + u];
        }
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    be->attention_backward(dqkv, datt, dout, qkv, att, B, T, NH, NKV, HS);
    attention_backward_reference(dref, qkv, dout, B, T, NH, NKV, HS);
    d = 0, m = 0;
    for (int i = 0; i < n_qkv; i++) { d = fmax(d, fabs(dqkv[i] - dref[i])); m = fmax(m, fabs(dref[i])); }
    CHECK_MSG(d <= 1e-5 * m, "dqkv: max |diff| %.3g > 1e-5 * %.4g", d, m);
    if (getenv("LS_FD_VERBOSE")) fprintf(stderr, "  dqkv: max |diff| %.3g of max %.4g\n", d, m);
    free(qkv); free(dout); free(out); free(att); free(datt); free(dqkv); free(ref); free(dref);
}

// Attention's units of work are (batch, head); their arithmetic must not depend
// on how many threads share them.
static void test_attention_bits_do_not_depend_on_thread_count(void) {
    int B = 3, T = 100, NH = 4, NKV = 2, HS = 16, RH = NH + 2 * NKV;
    int n_qkv = B * T * RH * HS, n_out = B * T * NH * HS, n_att = B * NH * T * T;
    float *qkv = et_randn(n_qkv, 51, 1), *dout = et_randn(n_out, 52, 1);
    float *out[2], *att[2], *dqkv[2], *datt = malloc(sizeof(float) * n_att);
    int nt0 = omp_get_max_threads();
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k + 1);
        out[k] = malloc(sizeof(float) * n_out);
        att[k] = malloc(sizeof(float) * n_att);
        dqkv[k] = malloc(sizeof(float) * n_qkv);
        be->attention_forward(out[k], att[k], qkv, B, T, NH, NKV, HS);
        be->attention_backward(dqkv[k], datt, dout, qkv, att[k], B, T, NH, NKV, HS);
    }
    omp_set_num_threads(nt0);
    CHECK(memcmp(out[0], out[1], sizeof(float) * n_out) == 0);
    CHECK(memcmp(att[0], att[1], sizeof(float) * n_att) == 0);
    CHECK(memcmp(dqkv[0], dqkv[1], sizeof(float) * n_qkv) == 0);
    for (int k = 0; k < 2; k++) { free(out[k]); free(att[k]); free(dqkv[k]); }
    free(qkv); free(dout); free(datt);
}

static void test_attention_decode_matches_last_row_of_forward(void) {
    int B = 1, T = 6, NH = 4, NKV = 2, HS = 8, RH = NH + 2 * NKV;
    float *qkv = et_randn(T * RH * HS, 45, 1), *att = malloc(sizeof(float) * NH * T * T),
          *out = malloc(sizeof(float) * T * NH * HS);
    be->attention_forward(out, att, qkv, B, T, NH, NKV, HS);
    // caches (T, NKV, HS) from the key and value heads of every row
    float *kc = malloc(sizeof(float) * T * NKV * HS), *vc = malloc(sizeof(float) * T * NKV * HS),
          *o = malloc(sizeof(float) * NH * HS), *a = malloc(sizeof(float) * NH * T);
    for (int t = 0; t < T; t++) {
        memcpy(kc + t * NKV * HS, qkv + (t * RH + NH) * HS, sizeof(float) * NKV * HS);
        memcpy(vc + t * NKV * HS, qkv + (t * RH + NH + NKV) * HS, sizeof(float) * NKV * HS);
    }
    for (int t = 0; t < T; t++) {
        be->attention_decode(o, a, qkv + t * RH * HS, kc, vc, t + 1, NH, NKV, HS);
        for (int i = 0; i < NH * HS; i++) CHECK_NEAR(o[i], out[t * NH * HS + i], 1e-6);
    }
    free(qkv); free(att); free(out); free(kc); free(vc); free(o); free(a);
}

// ----------------------------------------------------------------------------
// pointwise

typedef struct {
    int N, H, which; // 0 gelu, 1 swiglu
    float *inp, *out, *wout;
} pw_ctx;

static double pw_obj(void *p) {
    pw_ctx *c = p;
    if (c->which == 0) be->gelu_forward(c->out, c->inp, (size_t)c->N * c->H);
    else be->swiglu_forward(c->out, c->inp, c->N, c->H);
    return et_dot(c->wout, c->out, (size_t)c->N * c->H);
}

static void test_gelu_backward_matches_finite_differences(void) {
    pw_ctx c = {.N = 4, .H = 10, .which = 0};
    c.inp = et_randn(c.N * c.H, 51, 2); // spread over the curved part of GELU
    c.out = malloc(sizeof(float) * c.N * c.H);
    c.wout = et_randn(c.N * c.H, 52, 1);
    pw_obj(&c);
    for (int i = 0; i < c.N * c.H; i++) {
        double x = c.inp[i];
        CHECK_NEAR(c.out[i], 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))), 1e-6);
    }
    float *g = malloc(sizeof(float) * c.N * c.H);
    be->gelu_backward(g, c.inp, c.wout, (size_t)c.N * c.H);
    CHECK(et_fd_check("dinp", pw_obj, &c, c.inp, g, c.N * c.H, FD_H, FD_RTOL, FD_ATOL) == 0);
    free(c.inp); free(c.out); free(c.wout); free(g);
}

// Over [-12, 12], including the tails where 1 + tanh(u) cancels in float:
// GELU against x / (1 + e^{-2u}) in double, the same function without the
// cancellation. 1e-6 relative to max(|GELU|, 1e-3) (the float rounding of u
// alone moves the far negative tail by ~1e-5 of its ~1e-30 size).
static void test_gelu_matches_definition_in_the_tails(void) {
    int n = 2401;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = -12.0f + 0.01f * i;
    be->gelu_forward(y, x, (size_t)n);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        double xd = x[i], u = sqrt(2 / M_PI) * (xd + 0.044715 * xd * xd * xd);
        double ref = xd / (1 + exp(-2 * u));
        if (!(fabs(y[i] - ref) <= 1e-6 * fmax(fabs(ref), 1e-3))) {
            if (bad++ < 3) fprintf(stderr, "  gelu(%.9g) = %.9g, reference %.9g\n", x[i], y[i], ref);
        }
    }
    CHECK_MSG(bad == 0, "%d of %d GELU values off", bad, n);
    free(x); free(y);
}

static void test_swiglu_backward_matches_finite_differences(void) {
    pw_ctx c = {.N = 4, .H = 6, .which = 1};
    c.inp = et_randn(c.N * 2 * c.H, 53, 2);
    c.out = malloc(sizeof(float) * c.N * c.H);
    c.wout = et_randn(c.N * c.H, 54, 1);
    pw_obj(&c);
    for (int n = 0; n < c.N; n++)
        for (int i = 0; i < c.H; i++) {
            double gt = c.inp[n * 2 * c.H + i], up = c.inp[n * 2 * c.H + c.H + i];
            CHECK_NEAR(c.out[n * c.H + i], gt / (1 + exp(-gt)) * up, 1e-6);
        }
    float *g = malloc(sizeof(float) * c.N * 2 * c.H);
    be->swiglu_backward(g, c.inp, c.wout, c.N, c.H);
    CHECK(et_fd_check("dinp", pw_obj, &c, c.inp, g, c.N * 2 * c.H, FD_H, FD_RTOL, FD_ATOL) == 0);
    free(c.inp); free(c.out); free(c.wout); free(g);
}

typedef struct {
    int n;
    float *a, *b, *out, *wout;
} res_ctx;

static double res_obj(void *p) {
    res_ctx *c = p;
    be->residual_forward(c->out, c->a, c->b, c->n);
    return et_dot(c->wout, c->out, c->n);
}

static void test_residual_backward_matches_finite_differences(void) {
    res_ctx c = {.n = 20};
    c.a = et_randn(c.n, 61, 1);
    c.b = et_randn(c.n, 62, 1);
    c.out = malloc(sizeof(float) * c.n);
    c.wout = et_randn(c.n, 63, 1);
    float *da = et_randn(c.n, 64, 1), *db = et_randn(c.n, 65, 1), *da0 = malloc(sizeof(float) * c.n),
          *db0 = malloc(sizeof(float) * c.n);
    memcpy(da0, da, sizeof(float) * c.n);
    memcpy(db0, db, sizeof(float) * c.n);
    be->residual_backward(da, db, c.wout, c.n); // accumulates
    for (int i = 0; i < c.n; i++) { da[i] -= da0[i]; db[i] -= db0[i]; }
    CHECK(et_fd_check("da", res_obj, &c, c.a, da, c.n, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    CHECK(et_fd_check("db", res_obj, &c, c.b, db, c.n, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    free(c.a); free(c.b); free(c.out); free(c.wout); free(da); free(db); free(da0); free(db0);
}

typedef struct {
    size_t n;
    float p;
    uint64_t seed;
    float *inp, *out, *wout;
} drop_ctx;

static double drop_obj(void *p) {
    drop_ctx *c = p;
    be->dropout(c->out, c->inp, c->n, c->p, c->seed);
    return et_dot(c->wout, c->out, c->n);
}

static void test_dropout_backward_matches_finite_differences_and_keeps_rate(void) {
    drop_ctx c = {.n = 64, .p = 0.3f, .seed = 77};
    c.inp = et_randn((int)c.n, 71, 1);
    c.out = malloc(sizeof(float) * c.n);
    c.wout = et_randn((int)c.n, 72, 1);
    float *g = malloc(sizeof(float) * c.n);
    be->dropout(g, c.wout, c.n, c.p, c.seed); // backward = same mask on dout
    CHECK(et_fd_check("dinp", drop_obj, &c, c.inp, g, (int)c.n, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    // the kept fraction over many elements is 1 - p (binomial sd ~ 0.0015 for n = 1e5)
    size_t big = 100000;
    float *ones = malloc(sizeof(float) * big), *o = malloc(sizeof(float) * big);
    for (size_t i = 0; i < big; i++) ones[i] = 1.0f;
    be->dropout(o, ones, big, c.p, 5);
    size_t kept = 0;
    for (size_t i = 0; i < big; i++) {
        if (o[i] != 0.0f) { kept++; CHECK_NEAR(o[i], 1.0 / (1.0 - c.p), 1e-6); }
    }
    CHECK_NEAR((double)kept / big, 1.0 - c.p, 0.008);
    free(c.inp); free(c.out); free(c.wout); free(g); free(ones); free(o);
}

// ----------------------------------------------------------------------------
// embedding

typedef struct {
    int B, T, C, V, P;
    int *tok;
    float *wte, *wpe, *out, *wout;
} emb_ctx;

static double emb_obj(void *p) {
    emb_ctx *c = p;
    be->embedding_forward(c->out, c->tok, c->wte, c->wpe, c->B, c->T, c->C, 0);
    return et_dot(c->wout, c->out, (size_t)c->B * c->T * c->C);
}

static void test_embedding_backward_matches_finite_differences(void) {
    int tok[8] = {3, 1, 3, 0, 2, 3, 1, 4}; // repeated ids: their gradients must add up
    emb_ctx c = {.B = 2, .T = 4, .C = 5, .V = 6, .P = 4, .tok = tok};
    c.wte = et_randn(c.V * c.C, 81, 1);
    c.wpe = et_randn(c.P * c.C, 82, 1);
    c.out = malloc(sizeof(float) * c.B * c.T * c.C);
    c.wout = et_randn(c.B * c.T * c.C, 83, 1);
    emb_obj(&c);
    for (int bt = 0; bt < 8; bt++)
        for (int i = 0; i < c.C; i++)
            CHECK(c.out[bt * c.C + i] == c.wte[tok[bt] * c.C + i] + c.wpe[(bt % c.T) * c.C + i]);
    float *dwte = calloc(c.V * c.C, sizeof(float)), *dwpe = calloc(c.P * c.C, sizeof(float));
    be->embedding_backward(dwte, dwpe, c.wout, tok, c.B, c.T, c.C);
    CHECK(et_fd_check("dwte", emb_obj, &c, c.wte, dwte, c.V * c.C, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    CHECK(et_fd_check("dwpe", emb_obj, &c, c.wpe, dwpe, c.P * c.C, FD_LINEAR_H, FD_LINEAR_RTOL, FD_LINEAR_ATOL) == 0);
    // token 5 never occurs: its row stays exactly zero
    for (int i = 0; i < c.C; i++) CHECK(dwte[5 * c.C + i] == 0.0f);
    free(c.wte); free(c.wpe); free(c.out); free(c.wout); free(dwte); free(dwpe);
}

// ----------------------------------------------------------------------------
// cross-entropy

typedef struct {
    int N, V;
    float smoothing;
    int *targets;
    float *logits, *losses, *wloss;
} ce_ctx;

static double ce_obj(void *p) {
    ce_ctx *c = p;
    be->crossentropy_forward(c->losses, c->logits, c->targets, c->N, c->V, c->smoothing);
    return et_dot(c->wloss, c->losses, c->N);
}

static void test_crossentropy_matches_definition_with_smoothing_and_ignore(void) {
    int targets[4] = {2, -1, 0, 6};
    ce_ctx c = {.N = 4, .V = 7, .smoothing = 0.1f, .targets = targets};
    c.logits = et_randn(c.N * c.V, 91, 2);
    c.losses = malloc(sizeof(float) * c.N);
    c.wloss = et_randn(c.N, 92, 1);
    ce_obj(&c);
    for (int n = 0; n < c.N; n++) {
        if (targets[n] < 0) { CHECK(c.losses[n] == 0.0f); continue; }
        double mx = -1e300, z = 0, ref = 0;
        for (int j = 0; j < c.V; j++) mx = fmax(mx, c.logits[n * c.V + j]);
        for (int j = 0; j < c.V; j++) z += exp(c.logits[n * c.V + j] - mx);
        for (int j = 0; j < c.V; j++) {
            double q = c.smoothing / c.V + (j == targets[n] ? 1.0 - c.smoothing : 0.0);
            ref -= q * (c.logits[n * c.V + j] - mx - log(z));
        }
        CHECK_NEAR(c.losses[n], ref, 1e-5);
    }
    free(c.logits); free(c.losses); free(c.wloss);
}

// GPT-2's vocabulary: the row sums run over many vector chunks; loss and
// gradient against the definition in double.
//
// The gradient's tolerance is the first-order rounding bound of the float
// computation d_j = fl(fl(e_j a) - b), e_j = expf(fl(l_j - mx)),
// a = fl(g / se), b = fl(g fl(s / V)), with u = 2^-24 (float's unit
// roundoff), x_j = |l_j - mx|, p_j, q_j the softmax and target weights:
//   fl(l_j - mx)         one rounding of the argument: u x_j relative in e_j
//   expf                 at most 4 u relative (Cephes-style polynomial)
//   se = sum_j e_j       the e_j's errors, p-weighted: u (sum_i p_i x_i + 4);
//                        the sum itself runs in float over chunks of at most
//                        256 terms (then double across the V / 256 chunks,
//                        negligible): at most 255 u relative, since all terms
//                        are positive. A plain float sum over all V terms
//                        would be V u ~ 3e-3; the chunks are what keep it small.
//   a, e_j a, - b        three roundings, u each, on p_j, p_j, p_j + q_j
//   b and the target's   fl(s / V), g fl(.), g (1 - s), d_y - .: 4 u on q_j
// so |d_j - g (p_j - q_j)| <= g u [p_j (x_j + sum_i p_i x_i + 8 + 255 + 2)
//                                  + (1 + 4) q_j + p_j].
// With |l| up to ~18 here this is ~(290 + x_j) u p_j ~ 2e-5 p_j: a float
// softmax cannot promise 1e-6 (a sanitizer build, summing without the
// vector lanes, missed it by one element at 1.1e-6). The loss check is
// unchanged: lse = mx + log(se) carries se's ~265 u, which relative to
// losses of ~19 (lse with |l| up to ~18) is ~8e-7, inside its 1e-6.
static void test_crossentropy_gpt2_vocab_matches_double_reference(void) {
    int N = 3, V = 50257, targets[3] = {5, 50256, -1};
    float smoothing = 0.1f, dl[3] = {1.0f, 0.5f, 1.0f};
    float *logits = et_randn(N * V, 95, 4), *losses = malloc(sizeof(float) * N),
          *d = malloc(sizeof(float) * N * V);
    be->crossentropy_forward(losses, logits, targets, N, V, smoothing);
    be->crossentropy_backward(d, logits, targets, dl, N, V, smoothing);
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        if (targets[n] < 0) {
            CHECK(losses[n] == 0.0f);
            for (int j = 0; j < V; j++) CHECK(d[(size_t)n * V + j] == 0.0f);
            continue;
        }
        double mx = -1e300, z = 0, ref = 0, px = 0;
        const double u = 0x1p-24;
        for (int j = 0; j < V; j++) mx = fmax(mx, l[j]);
        for (int j = 0; j < V; j++) z += exp(l[j] - mx);
        for (int j = 0; j < V; j++) px += exp(l[j] - mx) / z * (mx - l[j]); // sum_i p_i x_i
        int bad = 0;
        for (int j = 0; j < V; j++) {
            double q = smoothing / V + (j == targets[n] ? 1.0 - smoothing : 0.0);
            double p = exp(l[j] - mx) / z;
            ref -= q * (l[j] - mx - log(z));
            double g = dl[n] * (p - q), got = d[(size_t)n * V + j];
            double tol = dl[n] * u * (p * ((mx - l[j]) + px + 8 + 255 + 2) + 5 * q + p);
            if (!(fabs(got - g) <= tol)) {
                if (bad++ < 3)
                    fprintf(stderr, "  row %d dlogits[%d] = %.9g, reference %.9g, |diff| %.3g > bound %.3g\n",
                            n, j, got, g, fabs(got - g), tol);
            }
        }
        CHECK_MSG(bad == 0, "row %d: %d of %d gradient elements off", n, bad, V);
        CHECK_CLOSE(losses[n], ref, 1e-6, 0);
    }
    free(logits); free(losses); free(d);
}

// A NaN logit must give a NaN loss (training stops on it), not be skipped by
// the max or flushed to 0 by the exp.
static void test_crossentropy_nan_logit_gives_nan_loss_and_gradient(void) {
    int V = 1000, target = 3;
    float *logits = et_randn(V, 96, 1), loss, dl = 1.0f, *d = malloc(sizeof(float) * V);
    logits[517] = NAN;
    be->crossentropy_forward(&loss, logits, &target, 1, V, 0.0f);
    CHECK(isnan(loss));
    be->crossentropy_backward(d, logits, &target, &dl, 1, V, 0.0f);
    CHECK(isnan(d[0]) && isnan(d[target]));
    free(logits); free(d);
}

static void test_crossentropy_backward_matches_finite_differences(void) {
    int targets[5] = {2, -1, 0, 6, 3};
    for (int k = 0; k < 2; k++) {
        ce_ctx c = {.N = 5, .V = 7, .smoothing = k ? 0.1f : 0.0f, .targets = targets};
        c.logits = et_randn(c.N * c.V, 93, 2);
        c.losses = malloc(sizeof(float) * c.N);
        c.wloss = et_randn(c.N, 94, 1);
        float *d = malloc(sizeof(float) * c.N * c.V);
        be->crossentropy_backward(d, c.logits, targets, c.wloss, c.N, c.V, c.smoothing);
        CHECK(et_fd_check("dlogits", ce_obj, &c, c.logits, d, c.N * c.V, FD_H, FD_RTOL, FD_ATOL) == 0);
        // in place (dlogits aliasing logits) gives the same bits
        float *alias = malloc(sizeof(float) * c.N * c.V);
        memcpy(alias, c.logits, sizeof(float) * c.N * c.V);
        be->crossentropy_backward(alias, alias, targets, c.wloss, c.N, c.V, c.smoothing);
        CHECK(memcmp(alias, d, sizeof(float) * c.N * c.V) == 0);
        free(c.logits); free(c.losses); free(c.wloss); free(d); free(alias);
    }
}

// ----------------------------------------------------------------------------
// AdamW

// torch 1.13: p = tensor([0.5, -1.25, 2.0, 0.0]); AdamW([p], lr=0.1,
// betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01); three steps with the grads
// below; printed with %.9g. Derived by running PyTorch, not by this code.
static void test_adamw_matches_torch_three_steps(void) {
    float p[4] = {0.5f, -1.25f, 2.0f, 0.0f};
    const float grads[3][4] = {{0.3f, -0.2f, 1.5f, -0.01f}, {0.1f, 0.4f, -2.0f, 0.02f},
                               {-0.5f, 0.0f, 0.7f, 0.03f}};
    const double expect[4] = {0.329719543, -1.21132731, 1.91070616, -0.00490960479};
    ls_adamw opt;
    adamw_init(&opt, be, 4, 0.9f, 0.999f, 1e-8f, 0.01f);
    for (int s = 0; s < 3; s++) adamw_step(&opt, p, grads[s], 0.1f);
    for (int i = 0; i < 4; i++) CHECK_CLOSE(p[i], expect[i], 2e-6, 1e-7);
    CHECK_INT(opt.step, 3);
    adamw_free(&opt);
}

static void test_adamw_segments_skip_decay(void) {
    // zero gradient: only decoupled decay moves a parameter, p *= 1 - lr*wd
    float p[4] = {1, 2, 3, 4}, g[4] = {0, 0, 0, 0};
    ls_adamw opt;
    adamw_init(&opt, be, 4, 0.9f, 0.999f, 1e-8f, 0.5f);
    ls_param_segment seg[2] = {{0, 2, 1}, {2, 2, 0}};
    adamw_set_segments(&opt, seg, 2);
    adamw_step(&opt, p, g, 0.1f);
    CHECK(p[0] == 1.0f * (1.0f - 0.05f) && p[1] == 2.0f * (1.0f - 0.05f));
    CHECK(p[2] == 3.0f && p[3] == 4.0f);
    adamw_free(&opt);
}

static void test_grad_clipping_scales_to_max_norm(void) {
    size_t n = 10000;
    float *g = et_randn((int)n, 99, 1);
    double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    ref = sqrt(ref);
    double norm = clip_grad_norm(be, g, n, 1.0);
    CHECK_CLOSE(norm, ref, 1e-12, 0);
    CHECK_CLOSE(grad_norm(be, g, n), 1.0, 1e-5, 0);
    free(g);
}

// ----------------------------------------------------------------------------
// bottleneck adapter (engine/adapters.h): inp + Wup gelu(Wdown inp + bdown) + bup

typedef struct {
    int N, C, r, erf;
    float *inp, *w, *out, *pre, *act, *wout;
} ad_ctx;

static double ad_obj(void *p) {
    ad_ctx *c = p;
    bottleneck_forward(be, c->out, c->pre, c->act, c->inp, c->w, c->N, c->C, c->r, c->erf);
    return et_dot(c->wout, c->out, (size_t)c->N * c->C);
}

static void test_adapter_backward_matches_finite_differences(void) {
    for (int erf = 0; erf < 2; erf++) {
        ad_ctx c = {.N = 5, .C = 8, .r = 3, .erf = erf};
        size_t nw = 2 * (size_t)c.r * c.C + c.r + c.C;
        c.inp = et_randn(c.N * c.C, 31, 1);
        c.w = et_randn((int)nw, 32, 0.5f); // W_up, b_up nonzero: every path counts
        c.out = malloc(sizeof(float) * c.N * c.C);
        c.pre = malloc(sizeof(float) * c.N * c.r);
        c.act = malloc(sizeof(float) * c.N * c.r);
        c.wout = et_randn(c.N * c.C, 33, 1);
        float *dinp = malloc(sizeof(float) * c.N * c.C), *dw = calloc(nw, sizeof(float)),
              *dpre = malloc(sizeof(float) * c.N * c.r), *dact = malloc(sizeof(float) * c.N * c.r);
        ad_obj(&c);
        bottleneck_backward(be, dinp, dw, dpre, dact, c.wout, c.inp, c.pre, c.act, c.w, c.N, c.C, c.r, c.erf);
        CHECK(et_fd_check(erf ? "adapter dinp (erf)" : "adapter dinp", ad_obj, &c, c.inp, dinp, c.N * c.C, 1e-2f,
                          2e-2, 1e-4) == 0);
        CHECK(et_fd_check(erf ? "adapter dw (erf)" : "adapter dw", ad_obj, &c, c.w, dw, (int)nw, 1e-2f, 2e-2, 1e-4) ==
              0);
        // W_up = 0, b_up = 0: the identity, bit for bit (the model starts as the base)
        memset(c.w + (size_t)c.r * c.C + c.r, 0, sizeof(float) * ((size_t)c.r * c.C + c.C));
        ad_obj(&c);
        CHECK(memcmp(c.out, c.inp, sizeof(float) * c.N * c.C) == 0);
        free(c.inp); free(c.w); free(c.out); free(c.pre); free(c.act); free(c.wout);
        free(dinp); free(dw); free(dpre); free(dact);
    }
}

// ----------------------------------------------------------------------------
// prefix attention (engine/prefix.h): the prefix's keys and values before the sequence's

typedef struct {
    int B, T, P, NH, NKV, HS;
    float *qkv, *pk, *pv, *att, *out, *wout;
} pre_ctx;

static double pre_obj(void *p) {
    pre_ctx *c = p;
    prefix_attention_forward(c->out, c->att, c->qkv, c->pk, c->pv, c->B, c->T, c->P, c->NH, c->NKV, c->HS);
    return et_dot(c->wout, c->out, (size_t)c->B * c->T * c->NH * c->HS);
}

// Query t with a prefix of P attends to exactly what query P + t of causal
// attention over [prefix; sequence] attends to: the backend's attention on
// that longer sequence gives the same rows. Gradients of qkv, pk and pv
// match central finite differences (MHA and GQA); P = 0 is causal attention.
static void prefix_check(int P, int NKV) {
    pre_ctx c = {.B = 2, .T = 4, .P = P, .NH = 4, .NKV = NKV, .HS = 4};
    int RH = c.NH + 2 * NKV, n_qkv = c.B * c.T * RH * c.HS, n_out = c.B * c.T * c.NH * c.HS;
    int n_pre = (P ? P : 1) * NKV * c.HS, S = P + c.T;
    c.qkv = et_randn(n_qkv, 51 + NKV, 1);
    c.pk = et_randn(n_pre, 52, 1);
    c.pv = et_randn(n_pre, 53, 1);
    c.att = malloc(sizeof(float) * c.B * c.NH * c.T * S);
    c.out = malloc(sizeof(float) * n_out);
    c.wout = et_randn(n_out, 54, 1);
    pre_obj(&c);
    // the same rows from causal attention over the longer sequence
    size_t row = (size_t)RH * c.HS, ksz = (size_t)NKV * c.HS;
    float *ext = calloc((size_t)c.B * S * row, sizeof(float)), *eout = malloc(sizeof(float) * c.B * S * c.NH * c.HS);
    float *eatt = malloc(sizeof(float) * c.B * c.NH * S * S * 2);
    for (int b = 0; b < c.B; b++) {
        for (int j = 0; j < P; j++) {
            memcpy(ext + ((size_t)b * S + j) * row + (size_t)c.NH * c.HS, c.pk + j * ksz, sizeof(float) * ksz);
            memcpy(ext + ((size_t)b * S + j) * row + (size_t)(c.NH + NKV) * c.HS, c.pv + j * ksz, sizeof(float) * ksz);
        }
        memcpy(ext + ((size_t)b * S + P) * row, c.qkv + (size_t)b * c.T * row, sizeof(float) * c.T * row);
    }
    be->attention_forward(eout, eatt, ext, c.B, S, c.NH, NKV, c.HS);
    double worst = 0;
    for (int b = 0; b < c.B; b++)
        for (int i = 0; i < c.T * c.NH * c.HS; i++)
            worst = fmax(worst, fabs(c.out[(size_t)b * c.T * c.NH * c.HS + i] -
                                     eout[((size_t)b * S + P) * c.NH * c.HS + i]));
    CHECK_MSG(worst < 1e-6, "prefix %d: max |diff| %.3g against attention over [prefix; sequence]", P, worst);
    float *dqkv = malloc(sizeof(float) * n_qkv), *dpk = calloc(n_pre, sizeof(float)),
          *dpv = calloc(n_pre, sizeof(float)), *dp = malloc(sizeof(float) * S);
    prefix_attention_backward(dqkv, dpk, dpv, dp, c.wout, c.qkv, c.pk, c.pv, c.att, c.B, c.T, P, c.NH, NKV, c.HS);
    CHECK(et_fd_check("prefix dqkv", pre_obj, &c, c.qkv, dqkv, n_qkv, FD_H, FD_RTOL, FD_ATOL) == 0);
    if (P) {
        CHECK(et_fd_check("prefix dpk", pre_obj, &c, c.pk, dpk, n_pre, FD_H, FD_RTOL, FD_ATOL) == 0);
        CHECK(et_fd_check("prefix dpv", pre_obj, &c, c.pv, dpv, n_pre, FD_H, FD_RTOL, FD_ATOL) == 0);
    }
    free(c.qkv); free(c.pk); free(c.pv); free(c.att); free(c.out); free(c.wout);
    free(ext); free(eout); free(eatt); free(dqkv); free(dpk); free(dpv); free(dp);
}

static void test_prefix_attention_matches_attention_over_the_longer_sequence_and_fd(void) {
    prefix_check(3, 4);
    prefix_check(3, 2);
    prefix_check(0, 2);
}

static const ls_test tests[] = {
    LS_TEST(test_matmul_forward_matches_naive_product),
    LS_TEST(test_matmul_backward_matches_finite_differences),
    LS_TEST(test_adapter_backward_matches_finite_differences),
    LS_TEST(test_layernorm_backward_matches_finite_differences),
    LS_TEST(test_rmsnorm_backward_matches_finite_differences),
    LS_TEST(test_rope_interleaved_backward_matches_finite_differences),
    LS_TEST(test_rope_split_halves_backward_matches_finite_differences),
    LS_TEST(test_attention_backward_matches_finite_differences),
    LS_TEST(test_attention_gqa_backward_matches_finite_differences),
    LS_TEST(test_attention_multi_block_gqa_matches_reference),
    LS_TEST(test_attention_bits_do_not_depend_on_thread_count),
    LS_TEST(test_attention_decode_matches_last_row_of_forward),
    LS_TEST(test_gelu_backward_matches_finite_differences),
    LS_TEST(test_gelu_matches_definition_in_the_tails),
    LS_TEST(test_swiglu_backward_matches_finite_differences),
    LS_TEST(test_residual_backward_matches_finite_differences),
    LS_TEST(test_dropout_backward_matches_finite_differences_and_keeps_rate),
    LS_TEST(test_embedding_backward_matches_finite_differences),
    LS_TEST(test_crossentropy_matches_definition_with_smoothing_and_ignore),
    LS_TEST(test_crossentropy_backward_matches_finite_differences),
    LS_TEST(test_crossentropy_gpt2_vocab_matches_double_reference),
    LS_TEST(test_crossentropy_nan_logit_gives_nan_loss_and_gradient),
    LS_TEST(test_adamw_matches_torch_three_steps),
    LS_TEST(test_adamw_segments_skip_decay),
    LS_TEST(test_grad_clipping_scales_to_max_norm),
    LS_TEST(test_prefix_attention_matches_attention_over_the_longer_sequence_and_fd),
};

int main(int argc, char **argv) {
    be = ls_backend_cpu();
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
