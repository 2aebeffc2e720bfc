// Tests for kernels/: the CUDA backend against the CPU backend (ops_cpu.c,
// ops_cpu_encoder.c), the cuSOLVER analyses against LAPACKE, whole training
// steps of both families (stories260K, a GPT-2 shape, tiny BERT and RoBERTa
// classifiers), forward passes of all-MiniLM-L6-v2 and SmolLM2-135M, and
// greedy decoding of the real stories260K model.
//
// Built twice from this one file (tests/cuda/meson.build):
//   test_cuda      the real backend (suite 'cuda'); every test skips (exit 77,
//                  "no CUDA device: ...") on a machine without a usable GPU;
//   test_cuda_emu  the same kernels on the CPU emulator of kernels/emu (suite
//                  'cuda_emu'), which runs everywhere and checks their logic.
//
// Every op test feeds both backends the same random inputs (no zeros),
// fills every output buffer with NaN first (an element the GPU forgets to
// write fails), and compares with a tolerance stated next to it:
//   fp32 ops              |gpu - cpu| <= tol * max|cpu|  (tol 1e-6 .. 1e-4)
//   exact ops             same bits (dropout mask, embedding sums, copies)
//   TF32 / BF16 products  normwise relative error <= 2e-3 / 1e-2
//   QR / SVD              max |gpu - lapacke| <= 1e-6
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cuda_analysis.h"
#include "cuda_backend.h"
#include "engine/backend.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "engine/rng.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "lowrank.h"
#include "text/tokenizer.h"
#include "train/bench_gpu.h"
#include "train/step.h"

static const ls_backend *cpu, *gpu;

static int have_gpu(void) {
    cpu = ls_backend_cpu();
    if (!gpu) gpu = ls_backend_cuda();
    return gpu != NULL;
}

#define NEED_GPU() do { if (!have_gpu()) SKIP("%s", ls_error()); } while (0)

// ----------------------------------------------------------------------------
// buffers held by both backends

typedef struct {
    float *c, *g; // CPU backend (host memory) and GPU backend copies
    size_t n;
} pair;

typedef struct {
    int *c, *g;
    size_t n;
} ipair;

// Uniform in ±[0.1, 1] * scale: random, never zero.
static float nonzero(ls_rng *r, float scale) {
    double u = ls_rng_uniform(r);
    double mag = 0.1 + 0.9 * ls_rng_uniform(r);
    return (float)((u < 0.5 ? -mag : mag) * scale);
}

static pair pair_from(const float *host, size_t n) {
    pair p = {cpu->alloc(n), gpu->alloc(n), n};
    memcpy(p.c, host, n * sizeof(float));
    gpu->upload(p.g, host, n);
    return p;
}

static pair pair_rand(size_t n, ls_rng *r, float scale) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = nonzero(r, scale);
    pair p = pair_from(h, n);
    free(h);
    return p;
}

static pair pair_fill(size_t n, float v) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = v;
    pair p = pair_from(h, n);
    free(h);
    return p;
}

static pair pair_nan(size_t n) { return pair_fill(n, NAN); }

static void pair_poison(pair *p) {
    float *h = malloc((p->n ? p->n : 1) * sizeof(float));
    for (size_t i = 0; i < p->n; i++) h[i] = NAN;
    memcpy(p->c, h, p->n * sizeof(float));
    gpu->upload(p->g, h, p->n);
    free(h);
}

static void pair_free(pair *p) {
    cpu->free(p->c);
    gpu->free(p->g);
    p->c = p->g = NULL;
}

static ipair ipair_from(const int *host, size_t n) {
    ipair p = {cpu->alloc_int(n), gpu->alloc_int(n), n};
    memcpy(p.c, host, n * sizeof(int));
    gpu->upload_int(p.g, host, n);
    return p;
}

static void ipair_free(ipair *p) {
    cpu->free_int(p->c);
    gpu->free_int(p->g);
}

static float *download(const float *dev, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    gpu->download(h, dev, n);
    return h;
}

// |got - want| <= tol * max|want| elementwise (NaN fails); prints the worst.
static void check_arrays(const char *what, const float *got, const float *want, size_t n,
                         double tol) {
    double scale = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    double bound = tol * (scale > 0.0 ? scale : 1.0), worst = 0.0;
    size_t worst_i = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= bound)) {
            bad++;
            if (!(d <= worst)) { worst = d; worst_i = i; }
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu elements differ by more than %.3g (tol %.1g x max %.4g); "
              "worst [%zu]: gpu %.9g cpu %.9g", what, bad, n, bound, tol, scale, worst_i,
              got[worst_i], want[worst_i]);
}

static void check_pair(const char *what, const pair *p, double tol) {
    float *g = download(p->g, p->n);
    check_arrays(what, g, p->c, p->n, tol);
    free(g);
}

static void check_pair_bits(const char *what, const pair *p) {
    float *g = download(p->g, p->n);
    size_t i = 0;
    while (i < p->n && memcmp(&g[i], &p->c[i], sizeof(float)) == 0) i++;
    CHECK_MSG(i == p->n, "%s: first differing element [%zu] of %zu: gpu %.9g cpu %.9g", what, i,
              p->n, i < p->n ? g[i] : 0.0f, i < p->n ? p->c[i] : 0.0f);
    free(g);
}

// ||got - want||_2 / ||want||_2
static double normwise_error(const float *got, const float *want, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

// ----------------------------------------------------------------------------
// memory

static void test_alloc_is_zeroed_and_copies_match_memmove(void) {
    NEED_GPU();
    const size_t n = 1000;
    float *g = gpu->alloc(n), *h = download(g, n);
    size_t nonzero_count = 0;
    for (size_t i = 0; i < n; i++) nonzero_count += h[i] != 0.0f;
    CHECK_INT(nonzero_count, 0);
    free(h);
    gpu->free(g);

    ls_rng r;
    ls_rng_seed(&r, 1);
    pair p = pair_rand(n, &r, 1.0f);
    // overlapping copies in both directions, as memmove
    memmove(p.c + 10, p.c, 500 * sizeof(float));
    gpu->copy(p.g + 10, p.g, 500);
    memmove(p.c + 200, p.c + 230, 400 * sizeof(float));
    gpu->copy(p.g + 200, p.g + 230, 400);
    memmove(p.c + 700, p.c + 100, 50 * sizeof(float));
    gpu->copy(p.g + 700, p.g + 100, 50);
    check_pair_bits("copy", &p);
    memset(p.c + 5, 0, 17 * sizeof(float));
    gpu->zero(p.g + 5, 17);
    check_pair_bits("zero", &p);
    pair_free(&p);
}

// ----------------------------------------------------------------------------
// matrix products

// One gemm on both backends: ld = columns + pad; C's padding holds 7 and must
// stay 7; with beta = 0, C starts as NaN (BLAS does not read it then).
static void gemm_case(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad,
                      double tol, int normwise) {
    ls_rng r;
    ls_rng_seed(&r, (uint64_t)(1000 + 100 * ta + 10 * tb + K));
    int arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    int lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    pair A = pair_rand((size_t)arows * lda, &r, 1.0f), B = pair_rand((size_t)brows * ldb, &r, 1.0f);
    float *hc = malloc((size_t)M * ldc * sizeof(float));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++)
            hc[(size_t)i * ldc + j] = j >= N ? 7.0f : beta == 0.0f ? NAN : nonzero(&r, 1.0f);
    pair C = pair_from(hc, (size_t)M * ldc);
    free(hc);
    cpu->gemm(ta, tb, M, N, K, alpha, A.c, lda, B.c, ldb, beta, C.c, ldc);
    gpu->gemm(ta, tb, M, N, K, alpha, A.g, lda, B.g, ldb, beta, C.g, ldc);
    char what[96];
    snprintf(what, sizeof what, "gemm ta=%d tb=%d %dx%dx%d beta=%g %s", ta, tb, M, N, K, beta,
             ls_cuda_precision_name(ls_cuda_get_precision()));
    float *g = download(C.g, C.n);
    if (normwise) {
        double e = normwise_error(g, C.c, C.n);
        CHECK_MSG(e <= tol, "%s: normwise error %.3g > %.3g", what, e, tol);
    } else {
        check_arrays(what, g, C.c, C.n, tol);
    }
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            CHECK_MSG(g[(size_t)i * ldc + j] == 7.0f, "%s: padding (%d, %d) changed to %g", what, i,
                      j, g[(size_t)i * ldc + j]);
    free(g);
    pair_free(&A);
    pair_free(&B);
    pair_free(&C);
}

// fp32: elementwise 1e-5 of the largest |C| (K <= 64 terms of O(1)).
static void test_gemm_matches_cpu_all_transposes_fp32(void) {
    NEED_GPU();
    ls_cuda_set_precision(LS_CUDA_FP32);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(ta, tb, 37, 29, 41, 0.7f, 0.3f, 3, 1e-5, 0);
            gemm_case(ta, tb, 8, 65, 64, 1.0f, 0.0f, 0, 1e-5, 0);
        }
    gemm_case(0, 1, 5, 6, 0, 1.0f, 0.5f, 2, 1e-6, 0); // K = 0: C *= beta
}

// TF32 keeps 10 mantissa bits (unit roundoff 2^-11), BF16 7 (2^-8): normwise
// errors of a few units of roundoff, bounded here by 2e-3 and 1e-2.
static void test_gemm_tf32_and_bf16_stay_within_their_precision(void) {
    NEED_GPU();
    ls_cuda_set_precision(LS_CUDA_TF32);
    gemm_case(0, 1, 64, 48, 96, 1.0f, 0.0f, 0, 2e-3, 1);
    gemm_case(1, 0, 33, 40, 50, 0.5f, 1.0f, 1, 2e-3, 1);
    ls_cuda_set_precision(LS_CUDA_BF16);
    gemm_case(0, 1, 64, 48, 96, 1.0f, 0.0f, 0, 1e-2, 1);
    gemm_case(0, 0, 33, 40, 50, 0.5f, 1.0f, 1, 1e-2, 1);
    ls_cuda_set_precision(LS_CUDA_FP32);
    ls_cuda_precision p;
    CHECK(ls_cuda_parse_precision("bf16", &p) == 0 && p == LS_CUDA_BF16);
    CHECK(ls_cuda_parse_precision("fp16", &p) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected fp32, tf32 or bf16");
}

// Forward with and without bias; backward overwrites dinp and accumulates
// into dweight and dbias (random starting values). Tol 1e-5 of max.
static void test_matmul_forward_backward_match_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 2);
    const int N = 33, C = 40, OC = 24;
    pair inp = pair_rand((size_t)N * C, &r, 1.0f), w = pair_rand((size_t)OC * C, &r, 0.5f);
    pair bias = pair_rand(OC, &r, 1.0f), out = pair_nan((size_t)N * OC);
    cpu->matmul_forward(out.c, inp.c, w.c, bias.c, N, C, OC);
    gpu->matmul_forward(out.g, inp.g, w.g, bias.g, N, C, OC);
    check_pair("matmul_forward with bias", &out, 1e-5);
    pair_poison(&out);
    cpu->matmul_forward(out.c, inp.c, w.c, NULL, N, C, OC);
    gpu->matmul_forward(out.g, inp.g, w.g, NULL, N, C, OC);
    check_pair("matmul_forward without bias", &out, 1e-5);

    pair dout = pair_rand((size_t)N * OC, &r, 1.0f), dinp = pair_nan((size_t)N * C);
    pair dw = pair_rand((size_t)OC * C, &r, 1.0f), db = pair_rand(OC, &r, 1.0f);
    cpu->matmul_backward(dinp.c, dw.c, db.c, dout.c, inp.c, w.c, N, C, OC);
    gpu->matmul_backward(dinp.g, dw.g, db.g, dout.g, inp.g, w.g, N, C, OC);
    check_pair("matmul_backward dinp", &dinp, 1e-5);
    check_pair("matmul_backward dweight", &dw, 1e-5);
    check_pair("matmul_backward dbias", &db, 1e-5);
    // frozen weight (NULL dweight), no input gradient
    cpu->matmul_backward(NULL, NULL, db.c, dout.c, inp.c, w.c, N, C, OC);
    gpu->matmul_backward(NULL, NULL, db.g, dout.g, inp.g, w.g, N, C, OC);
    check_pair("matmul_backward dbias only", &db, 1e-5);
    pair *all[] = {&inp, &w, &bias, &out, &dout, &dinp, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// ----------------------------------------------------------------------------
// normalisation (C = 70: not a multiple of the warp; 19 rows: a partial block)

static void test_layernorm_forward_backward_match_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 3);
    const int N = 19, C = 70;
    float *h = malloc((size_t)N * C * sizeof(float));
    for (int i = 0; i < N * C; i++) h[i] = 0.5f + 2.0f * nonzero(&r, 1.0f); // mean far from 0
    pair inp = pair_from(h, (size_t)N * C);
    free(h);
    pair w = pair_rand(C, &r, 1.0f), b = pair_rand(C, &r, 1.0f);
    pair out = pair_nan((size_t)N * C), mean = pair_nan(N), rstd = pair_nan(N);
    cpu->layernorm_forward(out.c, mean.c, rstd.c, inp.c, w.c, b.c, N, C, 1e-5f);
    gpu->layernorm_forward(out.g, mean.g, rstd.g, inp.g, w.g, b.g, N, C, 1e-5f);
    check_pair("layernorm out", &out, 1e-5);
    check_pair("layernorm mean", &mean, 1e-6);
    check_pair("layernorm rstd", &rstd, 1e-6);

    pair dout = pair_rand((size_t)N * C, &r, 1.0f), dinp = pair_rand((size_t)N * C, &r, 1.0f);
    pair dw = pair_rand(C, &r, 1.0f), db = pair_rand(C, &r, 1.0f);
    cpu->layernorm_backward(dinp.c, dw.c, db.c, dout.c, inp.c, w.c, mean.c, rstd.c, N, C);
    gpu->layernorm_backward(dinp.g, dw.g, db.g, dout.g, inp.g, w.g, mean.g, rstd.g, N, C);
    check_pair("layernorm dinp (accumulated)", &dinp, 1e-5);
    check_pair("layernorm dweight", &dw, 1e-5);
    check_pair("layernorm dbias", &db, 1e-5);
    cpu->layernorm_backward(NULL, dw.c, NULL, dout.c, inp.c, w.c, mean.c, rstd.c, N, C);
    gpu->layernorm_backward(NULL, dw.g, NULL, dout.g, inp.g, w.g, mean.g, rstd.g, N, C);
    check_pair("layernorm dweight only", &dw, 1e-5);
    pair *all[] = {&inp, &w, &b, &out, &mean, &rstd, &dout, &dinp, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

static void test_rmsnorm_forward_backward_match_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 4);
    const int N = 19, C = 70;
    pair inp = pair_rand((size_t)N * C, &r, 2.0f), w = pair_rand(C, &r, 1.0f);
    pair out = pair_nan((size_t)N * C), rstd = pair_nan(N);
    cpu->rmsnorm_forward(out.c, rstd.c, inp.c, w.c, N, C, 1e-5f);
    gpu->rmsnorm_forward(out.g, rstd.g, inp.g, w.g, N, C, 1e-5f);
    check_pair("rmsnorm out", &out, 1e-5);
    check_pair("rmsnorm rstd", &rstd, 1e-6);
    pair dout = pair_rand((size_t)N * C, &r, 1.0f), dinp = pair_rand((size_t)N * C, &r, 1.0f);
    pair dw = pair_rand(C, &r, 1.0f);
    cpu->rmsnorm_backward(dinp.c, dw.c, dout.c, inp.c, w.c, rstd.c, N, C);
    gpu->rmsnorm_backward(dinp.g, dw.g, dout.g, inp.g, w.g, rstd.g, N, C);
    check_pair("rmsnorm dinp (accumulated)", &dinp, 1e-5);
    check_pair("rmsnorm dweight", &dw, 1e-5);
    pair *all[] = {&inp, &w, &out, &rstd, &dout, &dinp, &dw};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// ----------------------------------------------------------------------------
// attention

// Both RoPE layouts, an offset position, and heads past n_rot left alone.
static void test_rope_both_layouts_match_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 5);
    const int B = 2, T = 5, RH = 6, NROT = 4, HS = 8, P = 16, POS0 = 3, half = HS / 2;
    float *c = malloc((size_t)P * half * sizeof(float)), *s = malloc((size_t)P * half * sizeof(float));
    for (int p = 0; p < P; p++)
        for (int i = 0; i < half; i++) {
            double ang = p * pow(10000.0, -2.0 * i / HS);
            c[p * half + i] = (float)cos(ang);
            s[p * half + i] = (float)sin(ang);
        }
    pair ct = pair_from(c, (size_t)P * half), st = pair_from(s, (size_t)P * half);
    free(c);
    free(s);
    for (int inter = 0; inter < 2; inter++) {
        pair x = pair_rand((size_t)B * T * RH * HS, &r, 1.0f);
        cpu->rope_forward(x.c, ct.c, st.c, B, T, RH, NROT, HS, POS0, inter);
        gpu->rope_forward(x.g, ct.g, st.g, B, T, RH, NROT, HS, POS0, inter);
        check_pair(inter ? "rope forward interleaved" : "rope forward split halves", &x, 1e-6);
        cpu->rope_backward(x.c, ct.c, st.c, B, T, RH, NROT, HS, POS0, inter);
        gpu->rope_backward(x.g, ct.g, st.g, B, T, RH, NROT, HS, POS0, inter);
        check_pair(inter ? "rope backward interleaved" : "rope backward split halves", &x, 1e-6);
        pair_free(&x);
    }
    pair_free(&ct);
    pair_free(&st);
}

typedef struct {
    int B, T, NH, NKV, HS;
} att_shape;

// T <= HS makes the backward recompute D (no room for the output copy);
// T > 32 spans several tiles; head sizes hit the 32, 64 and 128 buckets.
static const att_shape ATT_SHAPES[] = {
    {2, 7, 4, 2, 8},   // T <= HS, GQA groups of 2
    {1, 45, 4, 1, 16}, // output copy in att, two key tiles, one kv head for four queries
    {1, 70, 3, 3, 24}, // three query tiles, HS below its bucket, MHA
    {1, 40, 2, 2, 64}, // bucket 64
    {1, 33, 2, 1, 100}, // bucket 128, T <= HS
};

// Runs forward (and backward) on both backends for one shape; tol 1e-5 of
// max for the output, 1e-4 of max for dqkv (sums over T terms, two passes).
static void attention_case(const att_shape *sh, int backward) {
    int B = sh->B, T = sh->T, NH = sh->NH, NKV = sh->NKV, HS = sh->HS, RH = NH + 2 * NKV;
    ls_rng r;
    ls_rng_seed(&r, (uint64_t)(6 + T + HS));
    size_t nqkv = (size_t)B * T * RH * HS, nout = (size_t)B * T * NH * HS;
    size_t natt = (size_t)B * NH * T * T;
    pair qkv = pair_rand(nqkv, &r, 2.0f), out = pair_nan(nout), att = pair_nan(natt);
    cpu->attention_forward(out.c, att.c, qkv.c, B, T, NH, NKV, HS);
    gpu->attention_forward(out.g, att.g, qkv.g, B, T, NH, NKV, HS);
    char what[96];
    snprintf(what, sizeof what, "attention forward B%d T%d NH%d NKV%d HS%d", B, T, NH, NKV, HS);
    check_pair(what, &out, 1e-5);
    if (backward) {
        pair dout = pair_rand(nout, &r, 1.0f), dqkv = pair_nan(nqkv), datt = pair_nan(natt);
        cpu->attention_backward(dqkv.c, datt.c, dout.c, qkv.c, att.c, B, T, NH, NKV, HS);
        gpu->attention_backward(dqkv.g, datt.g, dout.g, qkv.g, att.g, B, T, NH, NKV, HS);
        snprintf(what, sizeof what, "attention backward B%d T%d NH%d NKV%d HS%d", B, T, NH, NKV, HS);
        check_pair(what, &dqkv, 1e-4);
        pair_free(&dout);
        pair_free(&dqkv);
        pair_free(&datt);
    }
    pair_free(&qkv);
    pair_free(&out);
    pair_free(&att);
}

static void test_attention_forward_matches_cpu(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof ATT_SHAPES / sizeof *ATT_SHAPES; i++)
        attention_case(&ATT_SHAPES[i], 0);
}

static void test_attention_backward_matches_cpu(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof ATT_SHAPES / sizeof *ATT_SHAPES; i++)
        attention_case(&ATT_SHAPES[i], 1);
}

// The att and datt sizes a backend states (attention_sizes) are all that its
// attention touches: a guard after each, filled with a sentinel, comes back
// unchanged, and the gradients still match the CPU's, which stores the full
// (B,NH,T,T) probabilities. This is what lets the model reserve only that.
static void test_attention_stays_within_its_stated_buffers(void) {
    NEED_GPU();
    const size_t guard = 257;
    float *sentinel = malloc(guard * sizeof(float)), *back = malloc(guard * sizeof(float));
    for (size_t i = 0; i < guard; i++) sentinel[i] = 1234.5f + (float)i;
    for (size_t k = 0; k < sizeof ATT_SHAPES / sizeof *ATT_SHAPES; k++) {
        const att_shape *sh = &ATT_SHAPES[k];
        int B = sh->B, T = sh->T, NH = sh->NH, NKV = sh->NKV, HS = sh->HS, RH = NH + 2 * NKV;
        size_t natt, ndatt, catt, cdatt;
        gpu->attention_sizes(B, T, NH, HS, &natt, &ndatt);
        cpu->attention_sizes(B, T, NH, HS, &catt, &cdatt);
        CHECK_MSG(natt <= catt && ndatt <= cdatt, "shape %zu: att %zu datt %zu above the CPU's %zu %zu", k,
                  natt, ndatt, catt, cdatt);
        ls_rng r;
        ls_rng_seed(&r, (uint64_t)(60 + k));
        size_t nqkv = (size_t)B * T * RH * HS, nout = (size_t)B * T * NH * HS;
        pair qkv = pair_rand(nqkv, &r, 2.0f), out = pair_nan(nout), dout = pair_rand(nout, &r, 1.0f),
             dqkv = pair_nan(nqkv);
        float *att_c = malloc(catt * sizeof(float)), *datt_c = malloc(cdatt * sizeof(float));
        float *att_g = gpu->alloc(natt + guard), *datt_g = gpu->alloc(ndatt + guard);
        gpu->upload(att_g + natt, sentinel, guard);
        gpu->upload(datt_g + ndatt, sentinel, guard);
        cpu->attention_forward(out.c, att_c, qkv.c, B, T, NH, NKV, HS);
        gpu->attention_forward(out.g, att_g, qkv.g, B, T, NH, NKV, HS);
        cpu->attention_backward(dqkv.c, datt_c, dout.c, qkv.c, att_c, B, T, NH, NKV, HS);
        gpu->attention_backward(dqkv.g, datt_g, dout.g, qkv.g, att_g, B, T, NH, NKV, HS);
        char what[96];
        snprintf(what, sizeof what, "attention in stated buffers B%d T%d NH%d NKV%d HS%d", B, T, NH, NKV, HS);
        check_pair(what, &dqkv, 1e-4);
        gpu->download(back, att_g + natt, guard);
        CHECK_MSG(!memcmp(back, sentinel, guard * sizeof(float)), "%s: wrote past att (%zu floats)", what, natt);
        gpu->download(back, datt_g + ndatt, guard);
        CHECK_MSG(!memcmp(back, sentinel, guard * sizeof(float)), "%s: wrote past datt (%zu floats)", what,
                  ndatt);
        gpu->free(att_g);
        gpu->free(datt_g);
        free(att_c);
        free(datt_c);
        pair_free(&qkv);
        pair_free(&out);
        pair_free(&dout);
        pair_free(&dqkv);
    }
    free(sentinel);
    free(back);
}

static void test_attention_decode_matches_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 7);
    const int n_ctx = 37, NH = 4, NKV = 2, HS = 16;
    pair q = pair_rand((size_t)NH * HS, &r, 2.0f);
    pair kc = pair_rand((size_t)n_ctx * NKV * HS, &r, 2.0f), vc = pair_rand((size_t)n_ctx * NKV * HS, &r, 1.0f);
    pair out = pair_nan((size_t)NH * HS), att = pair_nan((size_t)NH * n_ctx);
    cpu->attention_decode(out.c, att.c, q.c, kc.c, vc.c, n_ctx, NH, NKV, HS);
    gpu->attention_decode(out.g, att.g, q.g, kc.g, vc.g, n_ctx, NH, NKV, HS);
    check_pair("attention decode", &out, 1e-5);
    pair *all[] = {&q, &kc, &vc, &out, &att};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// ----------------------------------------------------------------------------
// pointwise

static void test_gelu_and_swiglu_match_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 8);
    const size_t n = 1000;
    pair x = pair_rand(n, &r, 4.0f), y = pair_nan(n), dy = pair_rand(n, &r, 1.0f), dx = pair_nan(n);
    cpu->gelu_forward(y.c, x.c, n);
    gpu->gelu_forward(y.g, x.g, n);
    check_pair("gelu forward", &y, 1e-6);
    cpu->gelu_backward(dx.c, x.c, dy.c, n);
    gpu->gelu_backward(dx.g, x.g, dy.g, n);
    check_pair("gelu backward", &dx, 1e-6);
    const int N = 13, H = 50;
    pair in = pair_rand((size_t)N * 2 * H, &r, 4.0f), o = pair_nan((size_t)N * H);
    pair dout = pair_rand((size_t)N * H, &r, 1.0f), din = pair_nan((size_t)N * 2 * H);
    cpu->swiglu_forward(o.c, in.c, N, H);
    gpu->swiglu_forward(o.g, in.g, N, H);
    check_pair("swiglu forward", &o, 1e-6);
    cpu->swiglu_backward(din.c, in.c, dout.c, N, H);
    gpu->swiglu_backward(din.g, in.g, dout.g, N, H);
    check_pair("swiglu backward", &din, 1e-6);
    pair *all[] = {&x, &y, &dy, &dx, &in, &o, &dout, &din};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// residual (out aliasing a), residual backward (+= into both or one), axpy, scale
static void test_residual_axpy_scale_match_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 9);
    const size_t n = 777;
    pair a = pair_rand(n, &r, 1.0f), b = pair_rand(n, &r, 1.0f), g = pair_rand(n, &r, 1.0f);
    cpu->residual_forward(a.c, a.c, b.c, n);
    gpu->residual_forward(a.g, a.g, b.g, n);
    check_pair_bits("residual forward in place", &a);
    cpu->residual_backward(a.c, b.c, g.c, n);
    gpu->residual_backward(a.g, b.g, g.g, n);
    check_pair_bits("residual backward da", &a);
    check_pair_bits("residual backward db", &b);
    cpu->residual_backward(NULL, b.c, g.c, n);
    gpu->residual_backward(NULL, b.g, g.g, n);
    cpu->residual_backward(a.c, NULL, g.c, n);
    gpu->residual_backward(a.g, NULL, g.g, n);
    check_pair_bits("residual backward da only", &a);
    check_pair_bits("residual backward db only", &b);
    cpu->axpy(a.c, g.c, n, 0.37f);
    gpu->axpy(a.g, g.g, n, 0.37f);
    check_pair("axpy", &a, 1e-7);
    cpu->scale(b.c, n, -1.5f);
    gpu->scale(b.g, n, -1.5f);
    check_pair_bits("scale", &b);
    pair_free(&a);
    pair_free(&b);
    pair_free(&g);
}

// copy_rows: strided rows copied and added (a prefix's keys into an
// interleaved qkv and its gradients back), the same bits as the CPU.
static void test_copy_rows_matches_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 10);
    pair dst = pair_rand(7 * 40, &r, 1.0f), src = pair_rand(7 * 33, &r, 1.0f);
    cpu->copy_rows(dst.c + 5, 40, src.c + 2, 33, 7, 24, 0);
    gpu->copy_rows(dst.g + 5, 40, src.g + 2, 33, 7, 24, 0);
    check_pair_bits("copy_rows", &dst);
    cpu->copy_rows(dst.c + 1, 40, src.c, 33, 6, 31, 1);
    gpu->copy_rows(dst.g + 1, 40, src.g, 33, 6, 31, 1);
    check_pair_bits("copy_rows accumulate", &dst);
    cpu->copy_rows(dst.c, 40, src.c, 33, 0, 31, 1); // nothing to do
    gpu->copy_rows(dst.g, 40, src.g, 33, 0, 31, 1);
    check_pair_bits("copy_rows of no rows", &dst);
    pair_free(&dst);
    pair_free(&src);
}

// The mask is a hash of (seed, index): the same bits on both backends,
// out of place, in place, and at p = 0 and p = 1.
static void test_dropout_mask_is_bit_identical_to_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 10);
    const size_t n = 10007;
    pair x = pair_rand(n, &r, 1.0f), y = pair_nan(n);
    cpu->dropout(y.c, x.c, n, 0.3f, 12345);
    gpu->dropout(y.g, x.g, n, 0.3f, 12345);
    check_pair_bits("dropout p=0.3", &y);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) kept += y.c[i] != 0.0f;
    CHECK_MSG(kept > 6600 && kept < 7400, "kept %zu of %zu at p = 0.3", kept, n);
    cpu->dropout(x.c, x.c, n, 0.5f, 99);
    gpu->dropout(x.g, x.g, n, 0.5f, 99);
    check_pair_bits("dropout in place", &x);
    pair_poison(&y);
    cpu->dropout(y.c, x.c, n, 0.0f, 1);
    gpu->dropout(y.g, x.g, n, 0.0f, 1);
    check_pair_bits("dropout p=0", &y);
    cpu->dropout(y.c, x.c, n, 1.0f, 1);
    gpu->dropout(y.g, x.g, n, 1.0f, 1);
    check_pair_bits("dropout p=1", &y);
    pair_free(&x);
    pair_free(&y);
}

// fp64 sums in a different order: relative 1e-12.
static void test_sumsq_matches_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 11);
    size_t sizes[] = {5, 4096, 100003};
    for (int k = 0; k < 3; k++) {
        pair x = pair_rand(sizes[k], &r, 3.0f);
        double c = cpu->sumsq(x.c, x.n), g = gpu->sumsq(x.g, x.n);
        CHECK_CLOSE(g, c, 1e-12, 0.0);
        pair_free(&x);
    }
}

// ----------------------------------------------------------------------------
// embedding: the same additions in the same order as the CPU loop: same bits

static void test_embedding_forward_backward_bit_identical_to_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 12);
    const int V = 13, C = 50, B = 3, T = 11, P = 20, POS0 = 2;
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (int)(ls_rng_next(&r) % V); // repeats: 33 draws of 13
    ipair tk = ipair_from(tok, B * T);
    pair wte = pair_rand((size_t)V * C, &r, 1.0f), wpe = pair_rand((size_t)P * C, &r, 1.0f);
    pair out = pair_nan((size_t)B * T * C);
    cpu->embedding_forward(out.c, tk.c, wte.c, wpe.c, B, T, C, POS0);
    gpu->embedding_forward(out.g, tk.g, wte.g, wpe.g, B, T, C, POS0);
    check_pair_bits("embedding forward with positions", &out);
    pair_poison(&out);
    cpu->embedding_forward(out.c, tk.c, wte.c, NULL, B, T, C, 0);
    gpu->embedding_forward(out.g, tk.g, wte.g, NULL, B, T, C, 0);
    check_pair_bits("embedding forward without positions", &out);
    pair dout = pair_rand((size_t)B * T * C, &r, 1.0f);
    pair dwte = pair_rand((size_t)V * C, &r, 1.0f), dwpe = pair_rand((size_t)P * C, &r, 1.0f);
    cpu->embedding_backward(dwte.c, dwpe.c, dout.c, tk.c, B, T, C);
    gpu->embedding_backward(dwte.g, dwpe.g, dout.g, tk.g, B, T, C);
    check_pair_bits("embedding backward dwte", &dwte);
    check_pair_bits("embedding backward dwpe", &dwpe);
    cpu->embedding_backward(dwte.c, NULL, dout.c, tk.c, B, T, C);
    gpu->embedding_backward(dwte.g, NULL, dout.g, tk.g, B, T, C);
    check_pair_bits("embedding backward dwte only", &dwte);
    ipair_free(&tk);
    pair *all[] = {&wte, &wpe, &out, &dout, &dwte, &dwpe};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// ----------------------------------------------------------------------------
// cross-entropy: smoothing 0 and 0.1, ignored targets, a zero dloss, and the
// backward written over the logits (the model's use). Tol 1e-5 of max.

static void crossentropy_case(int N, int V, float smoothing) {
    ls_rng r;
    ls_rng_seed(&r, (uint64_t)(13 + V));
    int tgt[16];
    for (int i = 0; i < N; i++) tgt[i] = (int)(ls_rng_next(&r) % V);
    tgt[1] = -1;
    tgt[N - 1] = -1;
    ipair t = ipair_from(tgt, N);
    pair logits = pair_rand((size_t)N * V, &r, 3.0f), losses = pair_nan(N);
    cpu->crossentropy_forward(losses.c, logits.c, t.c, N, V, smoothing);
    gpu->crossentropy_forward(losses.g, logits.g, t.g, N, V, smoothing);
    char what[80];
    snprintf(what, sizeof what, "crossentropy forward V=%d smoothing=%g", V, smoothing);
    check_pair(what, &losses, 1e-5);
    float *h = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) h[i] = nonzero(&r, 1.0f);
    h[2] = 0.0f;
    pair dl = pair_from(h, N);
    free(h);
    pair dlogits = pair_nan((size_t)N * V);
    cpu->crossentropy_backward(dlogits.c, logits.c, t.c, dl.c, N, V, smoothing);
    gpu->crossentropy_backward(dlogits.g, logits.g, t.g, dl.g, N, V, smoothing);
    snprintf(what, sizeof what, "crossentropy backward V=%d smoothing=%g", V, smoothing);
    check_pair(what, &dlogits, 1e-5);
    cpu->crossentropy_backward(logits.c, logits.c, t.c, dl.c, N, V, smoothing);
    gpu->crossentropy_backward(logits.g, logits.g, t.g, dl.g, N, V, smoothing);
    snprintf(what, sizeof what, "crossentropy backward in place V=%d", V);
    check_pair(what, &logits, 1e-5);
    ipair_free(&t);
    pair_free(&logits);
    pair_free(&losses);
    pair_free(&dl);
    pair_free(&dlogits);
}

static void test_crossentropy_matches_cpu_with_smoothing_and_ignore(void) {
    NEED_GPU();
    crossentropy_case(9, 300, 0.0f);
    crossentropy_case(9, 300, 0.1f);
    crossentropy_case(5, 2000, 0.1f);
}

// ----------------------------------------------------------------------------
// AdamW: three steps with bias corrections, random moments. Tol 1e-6 of max.

static void test_adamw_matches_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 14);
    const size_t n = 1000;
    pair p = pair_rand(n, &r, 1.0f), m = pair_rand(n, &r, 0.1f);
    float *h = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = fabsf(nonzero(&r, 0.01f));
    pair v = pair_from(h, n);
    free(h);
    for (int t = 1; t <= 3; t++) {
        pair g = pair_rand(n, &r, 1.0f);
        float bc1 = 1.0f - powf(0.9f, (float)t), bc2 = 1.0f - powf(0.999f, (float)t);
        cpu->adamw(p.c, g.c, m.c, v.c, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, bc1, bc2);
        gpu->adamw(p.g, g.g, m.g, v.g, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, bc1, bc2);
        pair_free(&g);
    }
    check_pair("adamw params", &p, 1e-6);
    check_pair("adamw m", &m, 1e-6);
    check_pair("adamw v", &v, 1e-6);
    pair_free(&p);
    pair_free(&m);
    pair_free(&v);
}

// ----------------------------------------------------------------------------
// determinism: reductions without atomics give the same bits on every run

static void test_reductions_give_the_same_bits_twice(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 15);
    const att_shape sh = {2, 45, 4, 2, 16};
    int RH = sh.NH + 2 * sh.NKV;
    size_t nqkv = (size_t)sh.B * sh.T * RH * sh.HS, nout = (size_t)sh.B * sh.T * sh.NH * sh.HS;
    size_t natt = (size_t)sh.B * sh.NH * sh.T * sh.T;
    pair qkv = pair_rand(nqkv, &r, 2.0f), dout = pair_rand(nout, &r, 1.0f);
    float *out = gpu->alloc(nout), *att = gpu->alloc(natt), *dqkv = gpu->alloc(nqkv),
          *datt = gpu->alloc(natt);
    float *first = NULL;
    for (int run = 0; run < 2; run++) {
        gpu->attention_forward(out, att, qkv.g, sh.B, sh.T, sh.NH, sh.NKV, sh.HS);
        gpu->attention_backward(dqkv, datt, dout.g, qkv.g, att, sh.B, sh.T, sh.NH, sh.NKV, sh.HS);
        float *h = download(dqkv, nqkv);
        if (run == 0) first = h;
        else {
            CHECK_MSG(memcmp(first, h, nqkv * sizeof(float)) == 0, "attention dqkv differs between runs");
            free(h);
        }
    }
    free(first);
    // column sums (bias and norm-weight gradients) from the same start
    const int N = 1000, C = 300;
    pair x = pair_rand((size_t)N * C, &r, 1.0f), g = pair_rand((size_t)N * C, &r, 1.0f);
    pair w = pair_rand(C, &r, 1.0f), rstd = pair_rand(N, &r, 1.0f);
    float *d1 = gpu->alloc(C), *d2 = gpu->alloc(C);
    gpu->rmsnorm_backward(NULL, d1, g.g, x.g, w.g, rstd.g, N, C);
    gpu->rmsnorm_backward(NULL, d2, g.g, x.g, w.g, rstd.g, N, C);
    gpu->matmul_backward(NULL, NULL, d1, g.g, x.g, w.g, N, C, C);
    gpu->matmul_backward(NULL, NULL, d2, g.g, x.g, w.g, N, C, C);
    float *h1 = download(d1, C), *h2 = download(d2, C);
    CHECK_MSG(memcmp(h1, h2, C * sizeof(float)) == 0, "column sums differ between runs");
    CHECK(gpu->sumsq(x.g, x.n) == gpu->sumsq(x.g, x.n));
    free(h1);
    free(h2);
    float *bufs[] = {out, att, dqkv, datt, d1, d2};
    for (int i = 0; i < 6; i++) gpu->free(bufs[i]);
    pair *all[] = {&qkv, &dout, &x, &g, &w, &rstd};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// ----------------------------------------------------------------------------
// encoder family ops: bidirectional attention under a key padding mask, exact
// GELU, tanh, masked mean pooling (ops_cpu_encoder.c on the CPU)

// Key padding patterns of one sequence of length T (1 = token, 0 = padding).
typedef enum { KEEP_ALL, KEEP_RIGHT_PAD, KEEP_HOLES, KEEP_NONE, KEEP_LEFT_PAD } keep_kind;

static void fill_keymask(int *m, int T, keep_kind k) {
    for (int t = 0; t < T; t++) {
        switch (k) {
        case KEEP_ALL: m[t] = 1; break;
        case KEEP_RIGHT_PAD: m[t] = t < (3 * T + 4) / 5; break; // 60% kept, then padding
        case KEEP_HOLES: m[t] = t % 3 != 1 && t < T - 4; break; // holes and right padding
        case KEEP_NONE: m[t] = 0; break;
        case KEEP_LEFT_PAD: m[t] = t >= T / 4; break;
        }
    }
}

typedef struct {
    int B, T, NH, HS;
    int masked;          // 0: keymask NULL
    keep_kind kinds[4];  // per sequence
} bidir_shape;

// Odd T, several heads, every head-size bucket, both backward routes (T <= HS
// recomputes D; T > HS keeps the output copy), several key and query tiles,
// a sequence whose keys are all masked, and no mask at all.
static const bidir_shape BIDIR_SHAPES[] = {
    {3, 7, 4, 8, 1, {KEEP_RIGHT_PAD, KEEP_NONE, KEEP_HOLES}},
    {4, 45, 3, 16, 1, {KEEP_ALL, KEEP_RIGHT_PAD, KEEP_HOLES, KEEP_LEFT_PAD}},
    {2, 71, 2, 24, 1, {KEEP_HOLES, KEEP_RIGHT_PAD}},
    {2, 41, 2, 64, 1, {KEEP_RIGHT_PAD, KEEP_NONE}},
    {1, 33, 2, 100, 1, {KEEP_HOLES}},
    {2, 37, 3, 32, 0, {KEEP_ALL, KEEP_ALL}},
};

// Forward and backward of one shape on both backends, the GPU's att and datt
// sized as it states (attention_sizes) with a sentinel guard after each that
// must come back unchanged; out to 1e-5 of max, dqkv to 1e-4 of max (as the
// causal attention); a second backward must give the same bits.
static void bidir_case(const bidir_shape *sh) {
    int B = sh->B, T = sh->T, NH = sh->NH, HS = sh->HS;
    ls_rng r;
    ls_rng_seed(&r, (uint64_t)(70 + T + HS));
    int *mask = malloc((size_t)B * T * sizeof(int));
    for (int b = 0; b < B; b++) fill_keymask(mask + (size_t)b * T, T, sh->kinds[b]);
    ipair km = ipair_from(mask, (size_t)B * T);
    free(mask);
    const int *kc = sh->masked ? km.c : NULL, *kg = sh->masked ? km.g : NULL;
    size_t nqkv = (size_t)B * T * 3 * NH * HS, nout = (size_t)B * T * NH * HS, natt, ndatt, catt, cdatt;
    gpu->attention_sizes(B, T, NH, HS, &natt, &ndatt);
    cpu->attention_sizes(B, T, NH, HS, &catt, &cdatt);
    const size_t guard = 131;
    float sentinel[131], back[131];
    for (size_t i = 0; i < guard; i++) sentinel[i] = 4321.5f + (float)i;
    pair qkv = pair_rand(nqkv, &r, 2.0f), out = pair_nan(nout), dout = pair_rand(nout, &r, 1.0f),
         dqkv = pair_nan(nqkv);
    float *att_c = malloc(catt * sizeof(float)), *datt_c = malloc(cdatt * sizeof(float));
    float *att_g = gpu->alloc(natt + guard), *datt_g = gpu->alloc(ndatt + guard);
    gpu->upload(att_g + natt, sentinel, guard);
    gpu->upload(datt_g + ndatt, sentinel, guard);
    char what[112];
    snprintf(what, sizeof what, "bidir attention B%d T%d NH%d HS%d%s", B, T, NH, HS,
             sh->masked ? " masked" : " no mask");
    cpu->attention_bidir_forward(out.c, att_c, qkv.c, kc, B, T, NH, HS);
    gpu->attention_bidir_forward(out.g, att_g, qkv.g, kg, B, T, NH, HS);
    check_pair(what, &out, 1e-5);
    cpu->attention_bidir_backward(dqkv.c, datt_c, dout.c, qkv.c, att_c, kc, B, T, NH, HS);
    gpu->attention_bidir_backward(dqkv.g, datt_g, dout.g, qkv.g, att_g, kg, B, T, NH, HS);
    check_pair(what, &dqkv, 1e-4);
    float *first = download(dqkv.g, nqkv);
    gpu->attention_bidir_backward(dqkv.g, datt_g, dout.g, qkv.g, att_g, kg, B, T, NH, HS);
    float *second = download(dqkv.g, nqkv);
    CHECK_MSG(!memcmp(first, second, nqkv * sizeof(float)), "%s: backward differs between runs", what);
    gpu->download(back, att_g + natt, guard);
    CHECK_MSG(!memcmp(back, sentinel, sizeof back), "%s: wrote past att (%zu floats)", what, natt);
    gpu->download(back, datt_g + ndatt, guard);
    CHECK_MSG(!memcmp(back, sentinel, sizeof back), "%s: wrote past datt (%zu floats)", what, ndatt);
    free(first);
    free(second);
    free(att_c);
    free(datt_c);
    gpu->free(att_g);
    gpu->free(datt_g);
    ipair_free(&km);
    pair *all[] = {&qkv, &out, &dout, &dqkv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// The bf16 tensor-core attention (kernels/cuda_attention_tc.cu), which runs
// at precision bf16 where T > HS and HS is a multiple of 16: causal with
// grouped-query heads and bidirectional under key padding (a sequence whose
// keys are all masked too), every head-size bucket (16 and 80 padded to 32 and
// 128), several query and key tiles, against the CPU's fp32. Q, K, V, dO, P
// and dS are rounded to bf16 (unit roundoff 2^-8 = 3.9e-3) and every sum is
// fp32, so the bound is a few roundoffs: out within 2e-2 of its largest
// element, dqkv within 2e-2 normwise (and 6e-2 of its largest element); a
// second backward gives the same bits.
typedef struct {
    int B, T, NH, NKV, HS, causal;
    keep_kind kinds[4]; // bidirectional: per sequence
} tc_shape;

static const tc_shape TC_SHAPES[] = {
    {2, 45, 4, 2, 16, 1, {KEEP_ALL}},
    {1, 77, 2, 1, 32, 1, {KEEP_ALL}},
    {1, 70, 3, 3, 64, 1, {KEEP_ALL}},
    {1, 140, 2, 2, 128, 1, {KEEP_ALL}},
    {1, 97, 2, 1, 80, 1, {KEEP_ALL}},
    {4, 45, 3, 3, 16, 0, {KEEP_ALL, KEEP_RIGHT_PAD, KEEP_NONE, KEEP_LEFT_PAD}},
    {2, 71, 2, 2, 64, 0, {KEEP_HOLES, KEEP_RIGHT_PAD}},
    {1, 150, 2, 2, 128, 0, {KEEP_HOLES}},
};

static void tc_case(const tc_shape *sh) {
    int B = sh->B, T = sh->T, NH = sh->NH, NKV = sh->NKV, HS = sh->HS, RH = NH + 2 * NKV;
    ls_rng r;
    ls_rng_seed(&r, (uint64_t)(90 + T + HS));
    int *mask = malloc((size_t)B * T * sizeof(int));
    for (int b = 0; b < B; b++) fill_keymask(mask + (size_t)b * T, T, sh->kinds[sh->causal ? 0 : b]);
    ipair km = ipair_from(mask, (size_t)B * T);
    free(mask);
    size_t nqkv = (size_t)B * T * RH * HS, nout = (size_t)B * T * NH * HS, natt, ndatt, catt, cdatt;
    gpu->attention_sizes(B, T, NH, HS, &natt, &ndatt);
    cpu->attention_sizes(B, T, NH, HS, &catt, &cdatt);
    pair qkv = pair_rand(nqkv, &r, 2.0f), out = pair_nan(nout), dout = pair_rand(nout, &r, 1.0f),
         dqkv = pair_nan(nqkv);
    float *att_c = malloc(catt * sizeof(float)), *datt_c = malloc(cdatt * sizeof(float));
    float *att_g = gpu->alloc(natt), *datt_g = gpu->alloc(ndatt);
    ls_cuda_set_precision(LS_CUDA_BF16);
    if (sh->causal) {
        cpu->attention_forward(out.c, att_c, qkv.c, B, T, NH, NKV, HS);
        gpu->attention_forward(out.g, att_g, qkv.g, B, T, NH, NKV, HS);
        cpu->attention_backward(dqkv.c, datt_c, dout.c, qkv.c, att_c, B, T, NH, NKV, HS);
        gpu->attention_backward(dqkv.g, datt_g, dout.g, qkv.g, att_g, B, T, NH, NKV, HS);
    } else {
        cpu->attention_bidir_forward(out.c, att_c, qkv.c, km.c, B, T, NH, HS);
        gpu->attention_bidir_forward(out.g, att_g, qkv.g, km.g, B, T, NH, HS);
        cpu->attention_bidir_backward(dqkv.c, datt_c, dout.c, qkv.c, att_c, km.c, B, T, NH, HS);
        gpu->attention_bidir_backward(dqkv.g, datt_g, dout.g, qkv.g, att_g, km.g, B, T, NH, HS);
    }
    char what[112];
    snprintf(what, sizeof what, "bf16 tensor-core %s attention B%d T%d NH%d NKV%d HS%d",
             sh->causal ? "causal" : "bidir", B, T, NH, NKV, HS);
    float *o = download(out.g, nout), *g = download(dqkv.g, nqkv);
    double eo = normwise_error(o, out.c, nout), eg = normwise_error(g, dqkv.c, nqkv);
    printf("  %s: out normwise %.3g, dqkv normwise %.3g\n", what, eo, eg);
    check_arrays(what, o, out.c, nout, 2e-2);
    CHECK_MSG(eg <= 2e-2, "%s: dqkv normwise error %.3g above 2e-2", what, eg);
    check_arrays(what, g, dqkv.c, nqkv, 6e-2);
    CHECK_MSG(eo > 0.0, "%s: out equals the fp32 result bit for bit: the bf16 path did not run", what);
    if (sh->causal) gpu->attention_backward(dqkv.g, datt_g, dout.g, qkv.g, att_g, B, T, NH, NKV, HS);
    else gpu->attention_bidir_backward(dqkv.g, datt_g, dout.g, qkv.g, att_g, km.g, B, T, NH, HS);
    float *again = download(dqkv.g, nqkv);
    CHECK_MSG(!memcmp(g, again, nqkv * sizeof(float)), "%s: backward differs between runs", what);
    ls_cuda_set_precision(LS_CUDA_FP32);
    free(o);
    free(g);
    free(again);
    free(att_c);
    free(datt_c);
    gpu->free(att_g);
    gpu->free(datt_g);
    ipair_free(&km);
    pair *all[] = {&qkv, &out, &dout, &dqkv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

static void test_attention_bf16_tensor_cores_match_cpu_within_bf16(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof TC_SHAPES / sizeof *TC_SHAPES; i++) tc_case(&TC_SHAPES[i]);
}

static void test_attention_bidir_with_key_padding_matches_cpu(void) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof BIDIR_SHAPES / sizeof *BIDIR_SHAPES; i++) bidir_case(&BIDIR_SHAPES[i]);
}

// A sequence without kept keys: out and its gradients are exactly 0 (the
// CPU's definition), never NaN, next to a normal sequence.
static void test_attention_bidir_fully_masked_sequence_gives_zeros(void) {
    NEED_GPU();
    const int B = 2, T = 9, NH = 2, HS = 16;
    ls_rng r;
    ls_rng_seed(&r, 77);
    int mask[2 * 9];
    fill_keymask(mask, T, KEEP_HOLES);
    fill_keymask(mask + T, T, KEEP_NONE);
    ipair km = ipair_from(mask, (size_t)B * T);
    size_t nqkv = (size_t)B * T * 3 * NH * HS, nout = (size_t)B * T * NH * HS, natt, ndatt;
    gpu->attention_sizes(B, T, NH, HS, &natt, &ndatt);
    pair qkv = pair_rand(nqkv, &r, 2.0f), dout = pair_rand(nout, &r, 1.0f);
    float *out = gpu->alloc(nout), *dqkv = gpu->alloc(nqkv), *att = gpu->alloc(natt), *datt = gpu->alloc(ndatt);
    gpu->attention_bidir_forward(out, att, qkv.g, km.g, B, T, NH, HS);
    gpu->attention_bidir_backward(dqkv, datt, dout.g, qkv.g, att, km.g, B, T, NH, HS);
    float *ho = download(out, nout), *hd = download(dqkv, nqkv);
    size_t bad = 0, zero_first = 0;
    for (size_t i = nout / 2; i < nout; i++) bad += ho[i] != 0.0f;
    for (size_t i = nqkv / 2; i < nqkv; i++) bad += hd[i] != 0.0f;
    for (size_t i = 0; i < nout / 2; i++) zero_first += ho[i] == 0.0f || !isfinite(ho[i]);
    CHECK_MSG(bad == 0, "%zu outputs or gradients of the fully masked sequence are not 0", bad);
    CHECK_MSG(zero_first == 0, "%zu outputs of the kept sequence are 0 or not finite", zero_first);
    free(ho);
    free(hd);
    float *bufs[] = {out, dqkv, att, datt};
    for (int i = 0; i < 4; i++) gpu->free(bufs[i]);
    ipair_free(&km);
    pair_free(&qkv);
    pair_free(&dout);
}

// Exact GELU and tanh (backward from each backend's own forward output): 1e-6 of max.
static void test_gelu_erf_and_tanh_match_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 78);
    const size_t n = 1001;
    pair x = pair_rand(n, &r, 4.0f), y = pair_nan(n), dy = pair_rand(n, &r, 1.0f), dx = pair_nan(n);
    cpu->gelu_erf_forward(y.c, x.c, n);
    gpu->gelu_erf_forward(y.g, x.g, n);
    check_pair("gelu_erf forward", &y, 1e-6);
    cpu->gelu_erf_backward(dx.c, x.c, dy.c, n);
    gpu->gelu_erf_backward(dx.g, x.g, dy.g, n);
    check_pair("gelu_erf backward", &dx, 1e-6);
    pair_poison(&y);
    pair_poison(&dx);
    cpu->tanh_forward(y.c, x.c, n);
    gpu->tanh_forward(y.g, x.g, n);
    check_pair("tanh forward", &y, 1e-6);
    cpu->tanh_backward(dx.c, y.c, dy.c, n);
    gpu->tanh_backward(dx.g, y.g, dy.g, n);
    check_pair("tanh backward", &dx, 1e-6);
    pair *all[] = {&x, &y, &dy, &dx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// The same additions in token order as the CPU loop: same bits, with a
// padded, a holed, a fully masked and a full sequence, and without a mask.
static void test_mean_pool_with_padding_bit_identical_to_cpu(void) {
    NEED_GPU();
    ls_rng r;
    ls_rng_seed(&r, 79);
    const int B = 4, T = 9, C = 70;
    int mask[4 * 9];
    keep_kind kinds[4] = {KEEP_RIGHT_PAD, KEEP_HOLES, KEEP_NONE, KEEP_ALL};
    for (int b = 0; b < B; b++) fill_keymask(mask + b * T, T, kinds[b]);
    ipair km = ipair_from(mask, (size_t)B * T);
    pair x = pair_rand((size_t)B * T * C, &r, 1.0f), y = pair_nan((size_t)B * C);
    pair dy = pair_rand((size_t)B * C, &r, 1.0f), dx = pair_nan((size_t)B * T * C);
    for (int masked = 1; masked >= 0; masked--) {
        const int *kc = masked ? km.c : NULL, *kg = masked ? km.g : NULL;
        cpu->mean_pool_forward(y.c, x.c, kc, B, T, C);
        gpu->mean_pool_forward(y.g, x.g, kg, B, T, C);
        check_pair_bits(masked ? "mean_pool forward masked" : "mean_pool forward no mask", &y);
        cpu->mean_pool_backward(dx.c, dy.c, kc, B, T, C);
        gpu->mean_pool_backward(dx.g, dy.g, kg, B, T, C);
        check_pair_bits(masked ? "mean_pool backward masked" : "mean_pool backward no mask", &dx);
        pair_poison(&y);
        pair_poison(&dx);
    }
    ipair_free(&km);
    pair *all[] = {&x, &y, &dy, &dx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pair_free(all[i]);
}

// ----------------------------------------------------------------------------
// analyses: cuSOLVER against LAPACKE, 1e-6

static an_mat gaussian_mat(int rows, int cols, uint64_t seed) {
    ls_rng r;
    ls_rng_seed(&r, seed);
    an_mat m = an_mat_alloc(rows, cols);
    for (int i = 0; i < rows * cols; i++) m.data[i] = ls_rng_normal(&r);
    return m;
}

static void check_mat(const char *what, const an_mat *got, const an_mat *want) {
    CHECK_MSG(got->rows == want->rows && got->cols == want->cols, "%s: %d x %d, expected %d x %d",
              what, got->rows, got->cols, want->rows, want->cols);
    double d = an_max_abs_diff(got, want);
    CHECK_MSG(d <= 1e-6, "%s: max |gpu - lapacke| = %.3g > 1e-6", what, d);
}

static void check_svd(const char *what, const an_svd *g, const an_svd *c) {
    CHECK_INT(g->nsv, c->nsv);
    if (g->nsv != c->nsv) return;
    double ds = 0.0;
    for (int i = 0; i < c->nsv; i++) ds = fmax(ds, fabs(g->S[i] - c->S[i]));
    CHECK_MSG(ds <= 1e-6, "%s: singular values differ by %.3g", what, ds);
    check_mat(what, &g->U, &c->U);
    check_mat(what, &g->V, &c->V);
}

static void test_cuda_qr_thin_matches_lapacke(void) {
    NEED_GPU();
    int shapes[3][2] = {{50, 7}, {6, 20}, {9, 9}};
    for (int k = 0; k < 3; k++) {
        an_mat X = gaussian_mat(shapes[k][0], shapes[k][1], 100 + k);
        an_mat Qc, Rc, Qg, Rg;
        CHECK(an_qr_thin(&X, &Qc, &Rc) == 0);
        int rc = an_cuda_qr_thin(&X, &Qg, &Rg);
        CHECK_MSG(rc == 0, "an_cuda_qr_thin: %s", an_error());
        if (rc == 0) {
            check_mat("QR Q", &Qg, &Qc);
            check_mat("QR R", &Rg, &Rc);
            an_mat_free(&Qg);
            an_mat_free(&Rg);
        }
        an_mat_free(&Qc);
        an_mat_free(&Rc);
        an_mat_free(&X);
    }
}

static void test_cuda_svd_thin_matches_lapacke(void) {
    NEED_GPU();
    int shapes[3][2] = {{40, 9}, {7, 33}, {12, 12}};
    for (int k = 0; k < 3; k++) {
        an_mat X = gaussian_mat(shapes[k][0], shapes[k][1], 200 + k);
        an_svd c, g;
        CHECK(an_svd_thin(&X, &c) == 0);
        int rc = an_cuda_svd_thin(&X, &g);
        CHECK_MSG(rc == 0, "an_cuda_svd_thin: %s", an_error());
        if (rc == 0) {
            char what[48];
            snprintf(what, sizeof what, "SVD %d x %d", X.rows, X.cols);
            check_svd(what, &g, &c);
            an_svd_free(&g);
        }
        an_svd_free(&c);
        an_mat_free(&X);
    }
}

static void test_cuda_delta_svd_matches_lapacke(void) {
    NEED_GPU();
    an_mat B = gaussian_mat(60, 6, 300), A = gaussian_mat(6, 45, 301);
    an_svd c, g;
    CHECK(an_delta_svd(&B, &A, 2.0, &c) == 0);
    int rc = an_cuda_delta_svd(&B, &A, 2.0, &g);
    CHECK_MSG(rc == 0, "an_cuda_delta_svd: %s", an_error());
    if (rc == 0) {
        CHECK_INT(g.rows, 60);
        CHECK_INT(g.cols, 45);
        check_svd("delta SVD", &g, &c);
        an_svd_free(&g);
    }
    an_svd_free(&c);
    an_mat_free(&A);
    an_mat_free(&B);
}

static void test_cuda_analysis_rejects_bad_input_like_cpu(void) {
    NEED_GPU();
    an_mat X = gaussian_mat(4, 5, 400);
    X.data[1 * 5 + 2] = NAN;
    an_svd s;
    CHECK(an_cuda_svd_thin(&X, &s) == -1);
    CHECK_STR_CONTAINS(an_error(), "entry (1, 2)");
    an_mat_free(&X);
    an_mat B = gaussian_mat(8, 3, 401), A = gaussian_mat(4, 9, 402);
    CHECK(an_cuda_delta_svd(&B, &A, 1.0, &s) == -1);
    CHECK_STR_CONTAINS(an_error(), "LoRA rank");
    an_mat_free(&A);
    an_mat_free(&B);
    an_mat E = an_mat_alloc(0, 3), Q, R;
    CHECK(an_cuda_qr_thin(&E, &Q, &R) == -1);
    CHECK_STR_CONTAINS(an_error(), "empty matrix");
    an_mat_free(&E);
}

// ----------------------------------------------------------------------------
// whole model: stories260K (llama family, real weights) and a GPT-2 small shape

static int load_stories(ls_checkpoint *ck) {
    const char *path = ls_test_asset("models/stories260K/stories260K.bin");
    if (!path) return 0;
    int rc = ckpt_load(ck, path);
    CHECK_MSG(rc == 0, "ckpt_load: %s", ls_error());
    return rc == 0;
}

// Next-token batch from a fixed stream: targets shifted by one, the last
// position ignored (-1), one position masked (weight 0), the rest weight 1.
static void make_batch(int V, int B, int T, uint64_t seed, int *tok, int *tgt, float *mask) {
    ls_rng r;
    ls_rng_seed(&r, seed);
    for (int b = 0; b < B; b++) {
        int stream[1025];
        for (int t = 0; t <= T; t++) stream[t] = (int)(ls_rng_next(&r) % (uint64_t)V);
        for (int t = 0; t < T; t++) {
            tok[b * T + t] = stream[t];
            tgt[b * T + t] = t == T - 1 && b == 0 ? -1 : stream[t + 1];
            mask[b * T + t] = t == 3 ? 0.0f : 1.0f;
        }
    }
}

// Per tensor: |gpu - cpu| <= tol * max|cpu| and normwise error <= tol.
static void check_grads(const char *what, const float *g, const float *c, size_t n, double tol) {
    check_arrays(what, g, c, n, tol);
    double e = normwise_error(g, c, n);
    CHECK_MSG(e <= tol, "%s: normwise error %.3g > %.3g", what, e, tol);
}

// Every site's dA and dB of the GPU adapter against the CPU one's (check_grads).
static void check_lora_grads(const ls_lora *lc, const ls_lora *lg, ls_family family, double gtol) {
    float *gg = download(lg->grads, lg->n_params);
    for (int i = 0; i < lc->n_sites; i++) {
        const ls_lora_site *s = &lc->sites[i];
        char what[96];
        snprintf(what, sizeof what, "layer %d %s dA", s->layer, lora_module_name(family, s->module));
        check_grads(what, gg + s->offset_A, lc->grads + s->offset_A, (size_t)s->rank * s->d_in, gtol);
        snprintf(what, sizeof what, "layer %d %s dB", s->layer, lora_module_name(family, s->module));
        check_grads(what, gg + s->offset_B, lc->grads + s->offset_B, (size_t)s->d_out * s->rank, gtol);
    }
    free(gg);
}

// One AdamW step of both adapters from their gradients: the update
// s = p_after - p_before normwise to 1e-3 (its first step is close to
// lr * sign(g), so elements whose gradient is ~0 may move either way).
static void check_adamw_update(ls_lora *lc, ls_lora *lg) {
    size_t n = lc->n_params;
    float *before = malloc(n * sizeof(float));
    memcpy(before, lc->params, n * sizeof(float));
    ls_adamw oc, og;
    adamw_init(&oc, cpu, n, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_init(&og, gpu, n, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_step(&oc, lc->params, lc->grads, 1e-3f);
    adamw_step(&og, lg->params, lg->grads, 1e-3f);
    float *pg = download(lg->params, n);
    for (size_t i = 0; i < n; i++) {
        pg[i] -= before[i];
        before[i] = lc->params[i] - before[i];
    }
    double e = normwise_error(pg, before, n);
    CHECK_MSG(e <= 1e-3, "AdamW update after one step: normwise error %.3g > 1e-3", e);
    free(pg);
    free(before);
    adamw_free(&oc);
    adamw_free(&og);
}

// Gives every LoRA B random values (B = 0 at init would zero dA), the same on both.
static void randomize_lora_b(ls_lora *lc, ls_lora *lg, uint64_t seed) {
    ls_rng r;
    ls_rng_seed(&r, seed);
    for (int i = 0; i < lc->n_sites; i++) {
        ls_lora_site *sc = &lc->sites[i], *sg = &lg->sites[i];
        float *A = malloc((size_t)sc->rank * sc->d_in * sizeof(float));
        float *B = malloc((size_t)sc->d_out * sc->rank * sizeof(float));
        lora_get_site(lc, sc, A, B);
        for (size_t j = 0; j < (size_t)sc->d_out * sc->rank; j++) B[j] = nonzero(&r, 0.05f);
        lora_set_site(lc, sc, A, B);
        lora_set_site(lg, sg, A, B);
        free(A);
        free(B);
    }
}

// LoRA forward + backward + one AdamW step on both backends. Loss to 1e-5
// relative; per-site gradients to `gtol` (see check_grads); the AdamW update
// as check_adamw_update.
// The same adapter (r 4, alpha 8, dropout 0.1, random B) on both models, in
// training mode with zero gradients. Returns 0, or -1 after a failed check.
static int lora_pair_build(ls_model *mc, ls_model *mg, const char *modules, ls_lora *lc,
                           ls_lora *lg) {
    ls_lora_config cfg;
    lora_config_default(&cfg);
    cfg.rank = 4;
    cfg.alpha = 8.0f;
    cfg.dropout = 0.1f;
    cfg.seed = 7;
    CHECK(lora_parse_modules(mc->cfg.family, modules, &cfg.modules) == 0);
    memset(lc, 0, sizeof *lc);
    memset(lg, 0, sizeof *lg);
    int rc1 = lora_build(lc, mc, &cfg), rc2 = lora_build(lg, mg, &cfg);
    CHECK_MSG(rc1 == 0 && rc2 == 0, "lora_build: %s", ls_error());
    if (rc1 || rc2) return -1;
    randomize_lora_b(lc, lg, 17);
    model_set_training(mc, 1);
    model_set_training(mg, 1);
    lora_set_dropout_seed(lc, 99);
    lora_set_dropout_seed(lg, 99);
    lora_zero_grad(lc);
    lora_zero_grad(lg);
    return 0;
}

static void lora_step_case(ls_model *mc, ls_model *mg, const char *modules, int B, int T,
                           double gtol) {
    ls_lora lc, lg;
    if (lora_pair_build(mc, mg, modules, &lc, &lg) != 0) return;
    int *tok = malloc((size_t)B * T * sizeof(int)), *tgt = malloc((size_t)B * T * sizeof(int));
    float *mask = malloc((size_t)B * T * sizeof(float));
    make_batch(mc->V, B, T, 5, tok, tgt, mask);
    float loss_c = model_forward(mc, tok, tgt, mask, B, T, 0.1f);
    float loss_g = model_forward(mg, tok, tgt, mask, B, T, 0.1f);
    CHECK_CLOSE(loss_g, loss_c, 1e-5, 0.0);
    model_backward(mc, 1.0f, 0.1f);
    model_backward(mg, 1.0f, 0.1f);
    check_lora_grads(&lc, &lg, mc->cfg.family, gtol);
    check_adamw_update(&lc, &lg);
    free(tok);
    free(tgt);
    free(mask);
    model_set_training(mc, 0);
    model_set_training(mg, 0);
    lora_free(&lc, mc);
    lora_free(&lg, mg);
}

// Every base gradient (per named view) of the GPU model against the CPU's.
// A tensor whose gradient vanishes in exact arithmetic (a key bias: the
// softmax does not see a shift that all keys share) holds rounding noise on
// both backends; where the CPU's is below 1e-7 of the model's largest
// gradient, the GPU's must be noise too (below 1e-6 of it).
static void check_model_grads(const ls_model *mc, const ls_model *mg, double gtol) {
    float *gg = download(mg->grads_memory, mg->n_params);
    double top = 0.0;
    for (size_t i = 0; i < mc->n_params; i++) top = fmax(top, fabs(mc->grads_memory[i]));
    for (int i = 0; i < mc->n_views; i++) {
        const ls_param_view *v = &mc->views[i];
        const float *g = gg + v->offset, *c = mc->grads_memory + v->offset;
        double cmax = 0.0, gmax = 0.0;
        for (size_t j = 0; j < v->numel; j++) {
            cmax = fmax(cmax, fabs(c[j]));
            gmax = fmax(gmax, fabs(g[j]));
        }
        if (cmax < 1e-7 * top)
            CHECK_MSG(gmax <= 1e-6 * top, "%s: gradient 0 up to rounding on the CPU (%.3g), %.3g on the GPU "
                      "(largest gradient %.3g)", v->name, cmax, gmax, top);
        else
            check_grads(v->name, g, c, v->numel, gtol);
    }
    free(gg);
}

// Full fine-tuning step: every base gradient (per named view) to `gtol`.
static void full_step_case(ls_model *mc, ls_model *mg, int B, int T, double gtol) {
    model_enable_grads(mc);
    model_enable_grads(mg);
    model_zero_grad(mc);
    model_zero_grad(mg);
    int *tok = malloc((size_t)B * T * sizeof(int)), *tgt = malloc((size_t)B * T * sizeof(int));
    float *mask = malloc((size_t)B * T * sizeof(float));
    make_batch(mc->V, B, T, 6, tok, tgt, mask);
    float loss_c = model_forward(mc, tok, tgt, mask, B, T, 0.0f);
    float loss_g = model_forward(mg, tok, tgt, mask, B, T, 0.0f);
    CHECK_CLOSE(loss_g, loss_c, 1e-5, 0.0);
    model_backward(mc, 1.0f, 0.0f);
    model_backward(mg, 1.0f, 0.0f);
    check_model_grads(mc, mg, gtol);
    free(tok);
    free(tgt);
    free(mask);
}

// stories260K on the CPU (mc) and the GPU (mg), reserved for (B, T); 0, or -1
// when the checkpoint is absent (nothing built).
static int stories_pair(ls_model *mc, ls_model *mg, int B, int T) {
    ls_checkpoint ck;
    if (!load_stories(&ck)) return -1;
    memset(mc, 0, sizeof *mc);
    memset(mg, 0, sizeof *mg);
    CHECK(model_build_from_checkpoint(mc, &ck, cpu) == 0);
    CHECK(model_build_from_checkpoint(mg, &ck, gpu) == 0);
    ckpt_free(&ck);
    CHECK(model_reserve(mc, B, T) == 0);
    CHECK(model_reserve(mg, B, T) == 0);
    return 0;
}

// stories260K: llama family with GQA (8 query heads, 4 kv heads), head size 8.
// Gradient tolerance 1e-4 (fp32 sums in another order through 5 layers).
static void test_stories260K_lora_training_step_matches_cpu(void) {
    NEED_GPU();
    ls_model mc, mg;
    if (stories_pair(&mc, &mg, 2, 48)) SKIP("stories260K.bin absent");
    lora_step_case(&mc, &mg, "all", 2, 48, 1e-4);
    model_free(&mc);
    model_free(&mg);
}

// Prefix-layer tuning and prefix-embedding tuning (l_p 3) on stories260K
// (GQA, RoPE shifted by l_p). Prefix-layer: the GPU runs the composed path
// (its own attention over [prefix; sequence], prefix.h), the CPU its prefix op
// pair; prefix-embed: the virtual tokens through copy_rows on both (prompt.h).
// Loss within 1e-5, the trained vectors' gradients within 1e-4 (normwise),
// one AdamW step of them, and KV-cache decoding with them cached (logits
// within 1e-4).
static void prefix_method_case(int embed) {
    NEED_GPU();
    enum { B = 2, T = 40 };
    ls_model mc, mg;
    if (stories_pair(&mc, &mg, B, T)) SKIP("stories260K.bin absent");
    ls_prefix pc, pg;
    ls_prompt qc, qg;
    float *params[2], *grads[2];
    size_t n;
    if (embed) {
        CHECK_MSG(prompt_build(&qc, &mc, 3, 11) == 0 && prompt_build(&qg, &mg, 3, 11) == 0, "%s", ls_error());
        params[0] = qc.params, params[1] = qg.params, grads[0] = qc.grads, grads[1] = qg.grads, n = qc.n_params;
    } else {
        CHECK_MSG(prefix_build(&pc, &mc, 3, 11) == 0 && prefix_build(&pg, &mg, 3, 11) == 0, "%s", ls_error());
        CHECK(!pc.composed && pg.composed);
        params[0] = pc.params, params[1] = pg.params, grads[0] = pc.grads, grads[1] = pg.grads, n = pc.n_params;
    }
    int tok[B * T], tgt[B * T];
    float mask[B * T];
    make_batch(mc.V, B, T, 8, tok, tgt, mask);
    float lc = model_forward(&mc, tok, tgt, mask, B, T, 0.0f), lg = model_forward(&mg, tok, tgt, mask, B, T, 0.0f);
    CHECK_CLOSE(lg, lc, 1e-5, 0.0);
    model_backward(&mc, 1.0f, 0.0f);
    model_backward(&mg, 1.0f, 0.0f);
    float *g = download(grads[1], n);
    check_grads(embed ? "prompt gradients" : "prefix gradients", g, grads[0], n, 1e-4);
    free(g);
    ls_adamw oc, og;
    adamw_init(&oc, cpu, n, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_init(&og, gpu, n, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_step(&oc, params[0], grads[0], 1e-2f);
    adamw_step(&og, params[1], grads[1], 1e-2f);
    float *p = download(params[1], n);
    check_grads("after one AdamW step", p, params[0], n, 1e-5);
    free(p);
    double worst = 0.0, gl_max = 0.0;
    for (int t = 0; t < 12; t++) {
        const float *c = model_decode(&mc, tok[t], t);
        float *cc = c ? malloc((size_t)mc.V * sizeof(float)) : NULL;
        if (cc) memcpy(cc, c, (size_t)mc.V * sizeof(float));
        const float *gl = model_decode(&mg, tok[t], t);
        CHECK_MSG(cc && gl, "model_decode: %s", ls_error());
        if (!cc || !gl) break;
        for (int v = 0; v < mc.V; v++) worst = fmax(worst, fabs((double)gl[v] - cc[v]));
        free(cc);
    }
    for (size_t i = 0; i < n; i++) gl_max = fmax(gl_max, fabs(grads[0][i]));
    printf("  %s: loss CPU %.9g, GPU %.9g; gradient largest %.3g; decoded logits max |diff| %.3g\n",
           embed ? "prefix-embed" : "prefix-layer", lc, lg, gl_max, worst);
    CHECK_MSG(worst <= 1e-4, "decoding with the prefix: logits off by %.3g", worst);
    adamw_free(&oc);
    adamw_free(&og);
    if (embed) {
        prompt_free(&qc, &mc);
        prompt_free(&qg, &mg);
    } else {
        prefix_free(&pc, &mc);
        prefix_free(&pg, &mg);
    }
    model_free(&mc);
    model_free(&mg);
}

static void test_stories260K_prefix_layer_step_and_decode_match_cpu(void) { prefix_method_case(0); }
static void test_stories260K_prefix_embed_step_and_decode_match_cpu(void) { prefix_method_case(1); }

static void test_stories260K_full_finetune_step_matches_cpu(void) {
    NEED_GPU();
    ls_model mc, mg;
    if (stories_pair(&mc, &mg, 2, 40)) SKIP("stories260K.bin absent");
    full_step_case(&mc, &mg, 2, 40, 1e-4);
    model_free(&mc);
    model_free(&mg);
}

// Precision bf16 through a whole LoRA step (GPT-2 and Llama layouts, random
// weights, head size 16, T 40 > 16): every matrix product on bf16 operands
// (rounded copies, fp32 accumulation) and the tensor-core attention, against
// the CPU's fp32. bf16's unit roundoff is 3.9e-3: the loss within 1e-2
// relative, every LoRA gradient within 5e-2 (of its largest element and
// normwise) through 2 layers.
// `lorascope bench --backend cuda`'s rows (train/bench_gpu.h) on the device:
// both modes run in bf16 and report what they trained, the FLOP count of
// bench_peft_gpu.py (worked out by hand for the tiny shape below), a LoRA
// peak below full fine-tuning's, and the card's bf16-storage product rate.
static void test_bench_gpu_rows_report_counts_flops_and_memory(void) {
    NEED_GPU();
    ls_cuda_set_precision(LS_CUDA_BF16);
    ls_backend_device dev = {ls_cuda_device_name(), ls_cuda_memory, ls_cuda_reset_peak, ls_cuda_bf16_gemm_flops};
    CHECK(ls_cuda_bf16_gemm_flops(32) > 0.0);
    bench_gpu_result r[2];
    for (int f = 0; f < 2; f++) {
        bench_gpu_request q = {"tiny", f ? "full" : "lora", NULL, 8, 2, 16, 1, 1};
        CHECK_MSG(bench_gpu_run(&q, gpu, &dev, &r[f]) == 0, "%s", ls_error());
        CHECK(r[f].tok_s > 0.0 && isfinite(r[f].tok_s) && r[f].peak_bytes > 0.0);
    }
    ls_cuda_set_precision(LS_CUDA_FP32);
    // tiny: 2 layers, C 64, 8 heads of 8 (4 kv), SwiGLU 172, vocab 512, tied.
    // N = 2 (128*64 + 64*64 + 344*64 + 64*172) + 512*64 = 123392; 12 L T d = 24576
    CHECK_NEAR(r[0].flops_per_token, 4.0 * 123392 + 24576, 1e-6);
    CHECK_NEAR(r[1].flops_per_token, 6.0 * 123392 + 24576, 1e-6);
    CHECK_INT((int)r[0].trainable, 2 * 8 * ((64 + 64) + (64 + 32))); // q: 64 -> 64, v: 64 -> 32
    CHECK_INT((int)r[1].trainable, (int)r[1].params);
    CHECK_MSG(r[0].peak_bytes < r[1].peak_bytes, "LoRA peak %.0f B, full %.0f B", r[0].peak_bytes, r[1].peak_bytes);
    bench_gpu_request bad = {"tiny", "lora", NULL, 8, 2, 512, 1, 0};
    CHECK(bench_gpu_run(&bad, gpu, &dev, &r[0]) == -1);
    CHECK_STR_CONTAINS(ls_error(), "--seq: expected at most the shape's 256 positions, found 512");
}

static void test_bf16_lora_step_stays_within_bf16_of_cpu(void) {
    NEED_GPU();
    const ls_family fam[2] = {LS_FAMILY_GPT2, LS_FAMILY_LLAMA};
    for (int k = 0; k < 2; k++) {
        ls_model_config c;
        memset(&c, 0, sizeof c);
        c.family = fam[k];
        c.dim = 64;
        c.hidden_dim = 160;
        c.n_layers = 2;
        c.n_heads = 4;
        c.n_kv_heads = k ? 2 : 4;
        c.vocab_size = 300;
        c.max_seq_len = 64;
        c.norm_eps = 1e-5f;
        c.rope_theta = 10000.0f;
        c.tied_embeddings = 1;
        ls_model mc, mg;
        memset(&mc, 0, sizeof mc);
        memset(&mg, 0, sizeof mg);
        CHECK(model_build_random(&mc, &c, 321 + k, cpu) == 0);
        CHECK(model_build_random(&mg, &c, 321 + k, gpu) == 0);
        CHECK(model_reserve(&mc, 2, 40) == 0);
        CHECK(model_reserve(&mg, 2, 40) == 0);
        ls_cuda_set_precision(LS_CUDA_BF16);
        ls_lora lc, lg;
        if (lora_pair_build(&mc, &mg, "all", &lc, &lg) == 0) {
            int tok[80], tgt[80];
            float mask[80];
            make_batch(c.vocab_size, 2, 40, 9, tok, tgt, mask);
            float l_c = model_forward(&mc, tok, tgt, mask, 2, 40, 0.0f), l_g = model_forward(&mg, tok, tgt, mask, 2, 40, 0.0f);
            printf("  %s bf16: loss CPU fp32 %.7g, GPU bf16 %.7g\n", k ? "llama" : "gpt2", l_c, l_g);
            CHECK_CLOSE(l_g, l_c, 1e-2, 0.0);
            model_backward(&mc, 1.0f, 0.0f);
            model_backward(&mg, 1.0f, 0.0f);
            check_lora_grads(&lc, &lg, c.family, 5e-2);
            model_set_training(&mc, 0);
            model_set_training(&mg, 0);
            lora_free(&lc, &mc);
            lora_free(&lg, &mg);
        }
        ls_cuda_set_precision(LS_CUDA_FP32);
        model_free(&mc);
        model_free(&mg);
    }
}

// GPT-2 small (124M, 12 x 768, 12 heads of 64, vocab 50257): random init of
// the same seed on both, biases and LayerNorm parameters perturbed so that
// none is 0 or 1. LoRA r=4 on q,v, then full fine-tuning; T = 128.
// Gradient tolerance 1e-3 (12 layers, 50257-way softmax).
static void test_gpt2_small_shape_training_steps_match_cpu(void) {
    NEED_GPU();
#ifdef LS_CUDA_EMULATE
    SKIP("124M parameters: too large for the CPU emulator (runs with suite 'cuda' on a GPU)");
#endif
    ls_model_config c;
    memset(&c, 0, sizeof c);
    c.family = LS_FAMILY_GPT2;
    c.dim = 768;
    c.hidden_dim = 3072;
    c.n_layers = 12;
    c.n_heads = 12;
    c.n_kv_heads = 12;
    c.vocab_size = 50257;
    c.max_seq_len = 1024;
    c.norm_eps = 1e-5f;
    c.tied_embeddings = 1;
    ls_model mc, mg;
    memset(&mc, 0, sizeof mc);
    memset(&mg, 0, sizeof mg);
    CHECK(model_build_random(&mc, &c, 1234, cpu) == 0);
    CHECK(model_build_random(&mg, &c, 1234, gpu) == 0);
    ls_rng r;
    ls_rng_seed(&r, 1235);
    for (int i = 0; i < mc.n_views; i++) {
        const ls_param_view *v = &mc.views[i];
        int is_bias = strstr(v->name, "bias") != NULL, is_ln = strstr(v->name, "ln_") != NULL;
        if (!is_bias && !is_ln) continue;
        float *h = malloc(v->numel * sizeof(float));
        for (size_t j = 0; j < v->numel; j++) h[j] = (is_bias ? 0.0f : 1.0f) + nonzero(&r, 0.1f);
        CHECK(model_set_tensor(&mc, v->name, h) == 0);
        CHECK(model_set_tensor(&mg, v->name, h) == 0);
        free(h);
    }
    CHECK(model_reserve(&mc, 1, 128) == 0);
    CHECK(model_reserve(&mg, 1, 128) == 0);
    lora_step_case(&mc, &mg, "q,v", 1, 128, 1e-3);
    full_step_case(&mc, &mg, 1, 128, 1e-3);
    model_free(&mc);
    model_free(&mg);
}

// Greedy decoding (KV cache, attention_decode) reproduces llama2.c's run.c
// output: BOS, the prompt forced, then argmax up to 120 tokens after BOS,
// stopping if BOS comes out.
static void test_stories260K_greedy_decode_reproduces_reference(void) {
    NEED_GPU();
    ls_checkpoint ck;
    char tokp[4096], refp[4096]; // ls_test_asset returns one static buffer
    const char *a = ls_test_asset("models/stories260K/tok512.bin");
    snprintf(tokp, sizeof tokp, "%s", a ? a : "");
    a = ls_test_asset("models/stories260K/reference_greedy.tsv");
    snprintf(refp, sizeof refp, "%s", a ? a : "");
    if (!*tokp || !*refp) SKIP("stories260K tokenizer or reference_greedy.tsv absent");
    if (!load_stories(&ck)) SKIP("stories260K.bin absent");
    tokenizer *t = tok_load_llama2c(tokp, 512);
    CHECK_MSG(t != NULL, "tok_load_llama2c: %s", ls_error());
    ls_model m;
    memset(&m, 0, sizeof m);
    CHECK(model_build_from_checkpoint(&m, &ck, gpu) == 0);
    ckpt_free(&ck);
    size_t size;
    char *data = ls_read_file(refp, &size);
    CHECK(data != NULL);
    int rows = 0;
    for (char *line = data; t && data && line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *tab = strchr(line, '\t');
        CHECK(tab != NULL);
        if (!tab) break;
        *tab = 0;
        cJSON *js = cJSON_Parse(tab + 1);
        CHECK(cJSON_IsString(js));
        int n, out[121];
        int *ids = tok_encode(t, line, 1, 0, &n);
        int n_out = model_generate(&m, ids, n, 120, NULL, 1, out);
        CHECK_MSG(n_out > 1, "model_generate: %s", ls_error());
        if (n_out > 1 && cJSON_IsString(js)) {
            char *text = tok_decode(t, out[0], out + 1, n_out - 1, NULL);
            CHECK_MSG(strcmp(text, js->valuestring) == 0,
                      "prompt \"%s\":\n  got      \"%s\"\n  expected \"%s\"", line, text,
                      js->valuestring);
            free(text);
        }
        free(ids);
        cJSON_Delete(js);
        rows++;
        line = end ? end + 1 : NULL;
    }
    CHECK_MSG(rows >= 1, "no reference rows in %s", refp);
    free(data);
    tok_free(t);
    model_free(&m);
}

// ----------------------------------------------------------------------------
// whole model, encoder family: the tiny random BERT and RoBERTa classifiers of
// tests/data/encoder (2 layers, d 32, 4 heads of 8) and all-MiniLM-L6-v2

typedef struct {
    int B, T;
    int *ids, *types, *mask, *labels;
} enc_batch;

// B = 4 sequences of T tokens: all kept, right padding, short, and one whose
// keys are all masked (as the CPU defines it: zero attention output);
// random ids, types (when the model has two) and labels, one ignored (-1).
static enc_batch enc_batch_make(const ls_model *m, int T, uint64_t seed) {
    enc_batch e = {4, T, NULL, NULL, NULL, NULL};
    size_t n = (size_t)e.B * T;
    e.ids = malloc(n * sizeof(int));
    e.types = malloc(n * sizeof(int));
    e.mask = malloc(n * sizeof(int));
    e.labels = malloc((size_t)e.B * sizeof(int));
    ls_rng r;
    ls_rng_seed(&r, seed);
    keep_kind kinds[4] = {KEEP_ALL, KEEP_RIGHT_PAD, KEEP_LEFT_PAD, KEEP_NONE};
    for (int b = 0; b < e.B; b++) {
        fill_keymask(e.mask + (size_t)b * T, T, kinds[b]);
        e.labels[b] = b == 2 ? -1 : (int)(ls_rng_next(&r) % (uint64_t)m->cfg.num_labels);
    }
    for (size_t i = 0; i < n; i++) {
        e.ids[i] = (int)(ls_rng_next(&r) % (uint64_t)m->V);
        e.types[i] = (int)(ls_rng_next(&r) % (uint64_t)m->cfg.type_vocab_size);
    }
    return e;
}

static void enc_batch_free(enc_batch *e) {
    free(e->ids);
    free(e->types);
    free(e->mask);
    free(e->labels);
}

// Builds the model of tests/data/encoder/<name> on both backends, reserved
// for (4, T). Returns 0, or -1 after a failed check.
static int enc_pair_load(const char *name, ls_model *mc, ls_model *mg, int T) {
    char rel[96];
    snprintf(rel, sizeof rel, "data/encoder/%s", name);
    ls_checkpoint ck;
    memset(mc, 0, sizeof *mc);
    memset(mg, 0, sizeof *mg);
    int rc = ckpt_load(&ck, ls_test_source(rel));
    CHECK_MSG(rc == 0, "ckpt_load %s: %s", rel, ls_error());
    if (rc) return -1;
    int rc1 = model_build_from_checkpoint(mc, &ck, cpu), rc2 = model_build_from_checkpoint(mg, &ck, gpu);
    ckpt_free(&ck);
    CHECK_MSG(rc1 == 0 && rc2 == 0, "model_build_from_checkpoint %s: %s", rel, ls_error());
    if (rc1 || rc2) return -1;
    CHECK(model_reserve(mc, 4, T) == 0);
    CHECK(model_reserve(mg, 4, T) == 0);
    return 0;
}

// Loss to 1e-5 relative and the classifier logits to 1e-5 of max.
static void enc_forward_both(ls_model *mc, ls_model *mg, const enc_batch *e, const char *what) {
    float lc = model_classify_forward(mc, e->ids, e->types, e->mask, e->labels, e->B, e->T);
    float lg = model_classify_forward(mg, e->ids, e->types, e->mask, e->labels, e->B, e->T);
    CHECK_MSG(lc >= 0.0f && lg >= 0.0f, "%s: model_classify_forward: %s", what, ls_error());
    CHECK_CLOSE(lg, lc, 1e-5, 0.0);
    float logits_c[16], logits_g[16];
    model_class_logits(mc, logits_c);
    model_class_logits(mg, logits_g);
    char w[96];
    snprintf(w, sizeof w, "%s classifier logits", what);
    check_arrays(w, logits_g, logits_c, (size_t)e->B * mc->cfg.num_labels, 1e-5);
}

// The head's trained tensors (PEFT modules_to_save) of both gradient buffers.
static void check_head_grads(const ls_model *mc, const ls_model *mg, double gtol) {
    ls_param_segment segs[4];
    int n = model_head_segments(mc, segs);
    CHECK(n >= 2);
    float *gg = download(mg->grads_memory, mg->n_params);
    for (int i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "head segment %d (%zu floats)", i, segs[i].n);
        check_grads(what, gg + segs[i].offset, mc->grads_memory + segs[i].offset, segs[i].n, gtol);
    }
    free(gg);
}

// LoRA on every module (q, k, v, o, intermediate, output; dropout 0.1) with
// the head trained as modules_to_save: loss, logits, every adapter gradient
// and the head's to 1e-4, the AdamW update normwise to 1e-3. T = 37: odd,
// two key tiles, and above the head size (the output-copy route).
static void enc_lora_step_case(const char *name) {
    const int T = 37;
    ls_model mc, mg;
    if (enc_pair_load(name, &mc, &mg, T) != 0) return;
    ls_lora lc, lg;
    if (lora_pair_build(&mc, &mg, "all", &lc, &lg) == 0) {
        model_enable_head_grads(&mc);
        model_enable_head_grads(&mg);
        model_zero_grad(&mc);
        model_zero_grad(&mg);
        enc_batch e = enc_batch_make(&mc, T, 21);
        enc_forward_both(&mc, &mg, &e, name);
        model_classify_backward(&mc, 1.0f);
        model_classify_backward(&mg, 1.0f);
        check_lora_grads(&lc, &lg, mc.cfg.family, 1e-4);
        check_head_grads(&mc, &mg, 1e-4);
        check_adamw_update(&lc, &lg);
        enc_batch_free(&e);
        lora_free(&lc, &mc);
        lora_free(&lg, &mg);
    }
    model_free(&mc);
    model_free(&mg);
}

static void test_bert_tiny_lora_training_step_matches_cpu(void) {
    NEED_GPU();
    enc_lora_step_case("bert_tiny");
    enc_lora_step_case("roberta_tiny");
}

// Full fine-tuning: every gradient of the model (embeddings with token
// types, LayerNorms, every layer, pooler and classifier) to 1e-4; then the
// same with mean pooling as the head (the mean_pool ops); then all three
// under hidden dropout 0.1 (model_set_hidden_dropout), the masks one seed's.
static void enc_full_step_case(const char *name, ls_pooling pooling, float hidden_dropout) {
    const int T = 37;
    ls_model mc, mg;
    if (enc_pair_load(name, &mc, &mg, T) != 0) return;
    mc.cfg.pooling = mg.cfg.pooling = pooling;
    if (hidden_dropout > 0.0f) { // the same masks on both backends (ls_hash_uniform)
        CHECK(model_set_hidden_dropout(&mc, hidden_dropout) == 0 && model_set_hidden_dropout(&mg, hidden_dropout) == 0);
        model_set_dropout_seed(&mc, 77);
        model_set_dropout_seed(&mg, 77);
        model_set_training(&mc, 1);
        model_set_training(&mg, 1);
    }
    model_enable_grads(&mc);
    model_enable_grads(&mg);
    model_zero_grad(&mc);
    model_zero_grad(&mg);
    enc_batch e = enc_batch_make(&mc, T, 22);
    char what[64];
    snprintf(what, sizeof what, "%s%s%s", name, pooling == LS_POOL_MEAN ? " (mean pooling)" : "",
             hidden_dropout > 0.0f ? " (hidden dropout)" : "");
    enc_forward_both(&mc, &mg, &e, what);
    model_classify_backward(&mc, 1.0f);
    model_classify_backward(&mg, 1.0f);
    check_model_grads(&mc, &mg, 1e-4);
    enc_batch_free(&e);
    model_free(&mc);
    model_free(&mg);
}

static void test_bert_tiny_full_finetune_step_matches_cpu(void) {
    NEED_GPU();
    enc_full_step_case("bert_tiny", LS_POOL_CLS, 0.0f);
    enc_full_step_case("roberta_tiny", LS_POOL_CLS, 0.0f);
    enc_full_step_case("bert_tiny", LS_POOL_MEAN, 0.0f);
    enc_full_step_case("bert_tiny", LS_POOL_CLS, 0.1f);
    enc_full_step_case("roberta_tiny", LS_POOL_CLS, 0.1f);
    enc_full_step_case("bert_tiny", LS_POOL_MEAN, 0.1f);
}

// Prefix-layer tuning (l_p 3) on an encoder with the head trained beside it:
// both backends run the composed path (their own bidirectional attention over
// [prefix; sequence] under a (B, l_p + T) key mask, prefix.h); the sequence
// whose own keys are all masked still sees the prefix. Loss and logits to
// 1e-5, the prefix's and the head's gradients to 1e-4. T = 33: odd, and
// l_p + T within roberta_tiny's 38 positions.
static void enc_prefix_step_case(const char *name) {
    const int T = 33;
    ls_model mc, mg;
    if (enc_pair_load(name, &mc, &mg, T) != 0) return;
    ls_prefix pc, pg;
    CHECK_MSG(prefix_build(&pc, &mc, 3, 12) == 0 && prefix_build(&pg, &mg, 3, 12) == 0, "%s", ls_error());
    CHECK(pc.composed && pg.composed && pc.bidir);
    model_enable_head_grads(&mc);
    model_enable_head_grads(&mg);
    model_zero_grad(&mc);
    model_zero_grad(&mg);
    prefix_zero_grad(&pc);
    prefix_zero_grad(&pg);
    enc_batch e = enc_batch_make(&mc, T, 23);
    char what[64];
    snprintf(what, sizeof what, "%s with a prefix", name);
    enc_forward_both(&mc, &mg, &e, what);
    model_classify_backward(&mc, 1.0f);
    model_classify_backward(&mg, 1.0f);
    float *g = download(pg.grads, pg.n_params);
    check_grads("prefix gradients", g, pc.grads, pc.n_params, 1e-4);
    free(g);
    check_head_grads(&mc, &mg, 1e-4);
    enc_batch_free(&e);
    prefix_free(&pc, &mc);
    prefix_free(&pg, &mg);
    model_free(&mc);
    model_free(&mg);
}

static void test_bert_tiny_prefix_layer_step_matches_cpu(void) {
    NEED_GPU();
    enc_prefix_step_case("bert_tiny");
    enc_prefix_step_case("roberta_tiny");
}

// ----------------------------------------------------------------------------
// the training loop's own step (train/step.h) on an encoder: LoRA with the
// head trained beside it (its own AdamW state, weights decayed and biases
// not), the joint gradient norm clipped, dropout seeded per batch

// train_step's batch source: the same classification batch every step.
static int enc_batch_next(void *user, long batch_index, train_microbatch *mb) {
    (void)batch_index;
    const enc_batch *e = user;
    *mb = (train_microbatch){e->ids, NULL, NULL, e->B, e->T, (double)e->B * e->T, e->mask, e->labels};
    return 0;
}

typedef struct {
    ls_adamw opt, hopt;
    train_step_spec s; // points at opt and hopt: the struct stays where it is
} enc_trainer;

// As the trainer sets up an encoder with LoRA (train.c, setup_head): the
// head's tensors are one span of the parameter buffer with its own optimiser.
static void enc_trainer_init(enc_trainer *t, ls_model *m, ls_lora *lo) {
    model_enable_head_grads(m);
    ls_param_segment seg[4];
    int n = model_head_segments(m, seg);
    size_t start = seg[0].offset, end = start;
    for (int i = 0; i < n; i++) {
        end += seg[i].n;
        seg[i].offset -= start;
    }
    adamw_init(&t->opt, m->be, lo->n_params, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_init(&t->hopt, m->be, end - start, 0.9f, 0.999f, 1e-8f, 0.01f);
    adamw_set_segments(&t->hopt, seg, n);
    train_step_spec_init(&t->s, m, lo, &t->opt);
    t->s.clip = 0.5; // below the norms of this batch: the clipping runs
    t->s.dropout_seed = 99;
    t->s.head_opt = &t->hopt;
    t->s.head_params = m->params_memory + start;
    t->s.head_grads = m->grads_memory + start;
    t->s.n_head = end - start;
}

// The change of n trainable floats since `before` (host): GPU against CPU, normwise.
static void check_update(const char *what, const float *gpu_now, const float *cpu_now, const float *before,
                         size_t n, double tol) {
    float *g = download(gpu_now, n), *c = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        g[i] -= before[i];
        c[i] = cpu_now[i] - before[i];
    }
    double e = normwise_error(g, c, n);
    CHECK_MSG(e <= tol, "%s: normwise error of the update %.3g > %.3g", what, e, tol);
    free(g);
    free(c);
}

// Three steps of tiny BERT, LoRA on every module: each step's loss and
// gradient norm (before clipping) to 1e-5 relative (1e-4 after the first
// update), then the three steps' updates of the adapter and of the head
// normwise to 1e-3.
static void test_bert_tiny_lora_train_steps_match_cpu(void) {
    NEED_GPU();
    const int T = 37;
    ls_model mc, mg;
    if (enc_pair_load("bert_tiny", &mc, &mg, T) != 0) return;
    ls_lora lc, lg;
    if (lora_pair_build(&mc, &mg, "all", &lc, &lg) != 0) {
        model_free(&mc);
        model_free(&mg);
        return;
    }
    enc_trainer tc, tg;
    enc_trainer_init(&tc, &mc, &lc);
    enc_trainer_init(&tg, &mg, &lg);
    enc_batch e = enc_batch_make(&mc, T, 23);
    size_t na = lc.n_params, nh = tc.s.n_head;
    float *a0 = malloc(na * sizeof(float)), *h0 = malloc(nh * sizeof(float));
    memcpy(a0, lc.params, na * sizeof(float));
    memcpy(h0, tc.s.head_params, nh * sizeof(float));
    char msg[160];
    for (long step = 1; step <= 3; step++) {
        train_step_stats sc, sg;
        int rc1 = train_step(&tc.s, step, 1e-3, enc_batch_next, &e, &sc, msg, sizeof msg);
        int rc2 = train_step(&tg.s, step, 1e-3, enc_batch_next, &e, &sg, msg, sizeof msg);
        CHECK_MSG(rc1 == 0 && rc2 == 0, "train_step %ld: cpu %d gpu %d (%s)", step, rc1, rc2, ls_error());
        double tol = step == 1 ? 1e-5 : 1e-4;
        CHECK_MSG(fabs(sg.loss - sc.loss) <= tol * fabs(sc.loss), "step %ld: loss gpu %.9g cpu %.9g", step,
                  sg.loss, sc.loss);
        CHECK_MSG(fabs(sg.grad_norm - sc.grad_norm) <= tol * sc.grad_norm, "step %ld: gradient norm gpu %.9g "
                  "cpu %.9g", step, sg.grad_norm, sc.grad_norm);
        CHECK_MSG(sc.grad_norm > tc.s.clip, "step %ld: norm %.3g does not reach the clip", step, sc.grad_norm);
    }
    check_update("adapter after 3 steps", lg.params, lc.params, a0, na, 1e-3);
    check_update("head after 3 steps", tg.s.head_params, tc.s.head_params, h0, nh, 1e-3);
    free(a0);
    free(h0);
    enc_batch_free(&e);
    adamw_free(&tc.opt);
    adamw_free(&tc.hopt);
    adamw_free(&tg.opt);
    adamw_free(&tg.hopt);
    lora_free(&lc, &mc);
    lora_free(&lg, &mg);
    model_free(&mc);
    model_free(&mg);
}

// An integer tensor of a reference file stored as float32: (B, T).
static int *ref_ints(const st_file *f, const char *name, int *B, int *T) {
    const st_tensor *t = st_find(f, name);
    CHECK_MSG(t != NULL && t->ndim == 2, "reference tensor %s: expected (B, T)", name);
    if (!t || t->ndim != 2) return NULL;
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    float *x = st_load_float(f, t);
    int *v = malloc((size_t)t->numel * sizeof(int));
    for (int64_t i = 0; i < t->numel; i++) v[i] = (int)x[i];
    free(x);
    return v;
}

// Logits with both heads, the mean-pooled embedding and the last hidden
// states of one batch, GPU against CPU to 1e-4 of max.
static void minilm_compare(ls_model *mc, ls_model *mg, const int *ids, const int *types, const int *mask,
                           int B, int T) {
    size_t nh = (size_t)B * T * mc->C;
    float *hc = malloc(nh * sizeof(float)), *hg = malloc(nh * sizeof(float)), lc[16], lg[16];
    for (int pooling = LS_POOL_CLS; pooling <= LS_POOL_MEAN; pooling++) {
        mc->cfg.pooling = mg->cfg.pooling = (ls_pooling)pooling;
        CHECK(model_classify_forward(mc, ids, types, mask, NULL, B, T) == 0.0f);
        CHECK(model_classify_forward(mg, ids, types, mask, NULL, B, T) == 0.0f);
        model_class_logits(mc, lc);
        model_class_logits(mg, lg);
        check_arrays(pooling == LS_POOL_CLS ? "MiniLM logits ([CLS] pooler)" : "MiniLM logits (mean pooling)",
                     lg, lc, (size_t)B * mc->cfg.num_labels, 1e-4);
        if (pooling == LS_POOL_MEAN) {
            gpu->download(hg, mg->acts.pool_in, (size_t)B * mc->C);
            check_arrays("MiniLM mean-pooled embedding", hg, mc->acts.pool_in, (size_t)B * mc->C, 1e-4);
        }
    }
    CHECK(model_hidden_states(mc, mc->L - 1, hc) == 0);
    CHECK(model_hidden_states(mg, mg->L - 1, hg) == 0);
    check_arrays("MiniLM last hidden states", hg, hc, nh, 1e-4);
    free(hc);
    free(hg);
}

// all-MiniLM-L6-v2 (real weights, 6 layers, d 384, 12 heads of 32) on the
// padded sentences of tests/data/encoder/minilm_ref.safetensors: the last
// hidden states, the classifier logits (the head as the loader initialises
// it, the same seed on both) and the mean-pooled sentence embedding, each to
// 1e-4 of max (the bound the CPU meets against transformers).
static void test_minilm_logits_match_cpu(void) {
    NEED_GPU();
    const char *asset = ls_test_asset("models/all-MiniLM-L6-v2/model.safetensors");
    if (!asset) SKIP("../shared/assets/models/all-MiniLM-L6-v2 is absent");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", asset);
    *strrchr(dir, '/') = '\0';
    st_file f;
    if (st_open(&f, ls_test_source("data/encoder/minilm_ref.safetensors")) != 0) {
        CHECK_MSG(0, "%s", ls_error());
        return;
    }
    int B = 0, T = 0, *ids = ref_ints(&f, "input_ids", &B, &T), *types = ref_ints(&f, "token_type_ids", &B, &T),
        *mask = ref_ints(&f, "attention_mask", &B, &T);
    st_close(&f);
    ls_checkpoint ck;
    ls_model mc, mg;
    memset(&mc, 0, sizeof mc);
    memset(&mg, 0, sizeof mg);
    int rc = ids && types && mask ? ckpt_load(&ck, dir) : -1;
    CHECK_MSG(rc == 0, "MiniLM reference batch or ckpt_load %s: %s", dir, ls_error());
    if (rc == 0) {
        rc = model_build_from_checkpoint(&mc, &ck, cpu) || model_build_from_checkpoint(&mg, &ck, gpu) ||
             model_reserve(&mc, B, T) || model_reserve(&mg, B, T);
        CHECK_MSG(rc == 0, "MiniLM on both backends: %s", ls_error());
        ckpt_free(&ck);
    }
    if (rc == 0) minilm_compare(&mc, &mg, ids, types, mask, B, T);
    free(ids);
    free(types);
    free(mask);
    model_free(&mc);
    model_free(&mg);
}

// SmolLM2-135M (GGUF, Q4_1 dequantized to fp32; llama family with GQA 9/3,
// head size 64, tied embeddings, RoPE theta 1e5): the logits of a forward
// pass to 1e-4 of max, and one LoRA q,v step (check_grads at 1e-3, as the
// GPT-2 shape). GPU only: 135M parameters are too many for the emulator.
static void test_smollm2_gguf_logits_and_lora_step_match_cpu(void) {
    NEED_GPU();
#ifdef LS_CUDA_EMULATE
    SKIP("135M parameters: too large for the CPU emulator (runs with suite 'cuda' on a GPU)");
#endif
    const char *path = ls_test_asset("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if (!path) SKIP("../shared/assets/models/smollm2-135m-instruct is absent");
    ls_checkpoint ck;
    ls_model mc, mg;
    memset(&mc, 0, sizeof mc);
    memset(&mg, 0, sizeof mg);
    const int B = 1, T = 24;
    int rc = ckpt_load(&ck, path);
    CHECK_MSG(rc == 0, "ckpt_load %s: %s", path, ls_error());
    if (rc) return;
    rc = model_build_from_checkpoint(&mc, &ck, cpu) || model_build_from_checkpoint(&mg, &ck, gpu) ||
         model_reserve(&mc, B, T) || model_reserve(&mg, B, T);
    ckpt_free(&ck);
    CHECK_MSG(rc == 0, "SmolLM2 on both backends: %s", ls_error());
    if (rc) {
        model_free(&mc);
        model_free(&mg);
        return;
    }
    int tok[24], tgt[24];
    float mask[24];
    make_batch(mc.V, B, T, 8, tok, tgt, mask);
    float loss_c = model_forward(&mc, tok, tgt, mask, B, T, 0.0f);
    float loss_g = model_forward(&mg, tok, tgt, mask, B, T, 0.0f);
    CHECK_CLOSE(loss_g, loss_c, 1e-5, 0.0);
    size_t n = (size_t)B * T * mc.V;
    float *lg = download(mg.acts.logits, n);
    check_arrays("SmolLM2 logits", lg, mc.acts.logits, n, 1e-4);
    free(lg);
    lora_step_case(&mc, &mg, "q,v", B, T, 1e-3);
    model_free(&mc);
    model_free(&mg);
}

// ----------------------------------------------------------------------------
// without a device: a clear error, never a crash

static void test_no_device_gives_clear_error(void) {
    if (have_gpu()) SKIP("a CUDA device is present (%s)", ls_cuda_device_name());
    CHECK(ls_backend_cuda() == NULL);
    CHECK_STR_CONTAINS(ls_error(), "no CUDA device: ");
    CHECK(ls_cuda_available() == 0);
    an_mat X = gaussian_mat(3, 3, 500), Q, R;
    CHECK(an_cuda_qr_thin(&X, &Q, &R) == -1);
    CHECK_STR_CONTAINS(an_error(), "no CUDA device: ");
    an_mat_free(&X);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_alloc_is_zeroed_and_copies_match_memmove),
        LS_TEST(test_gemm_matches_cpu_all_transposes_fp32),
        LS_TEST(test_gemm_tf32_and_bf16_stay_within_their_precision),
        LS_TEST(test_matmul_forward_backward_match_cpu),
        LS_TEST(test_layernorm_forward_backward_match_cpu),
        LS_TEST(test_rmsnorm_forward_backward_match_cpu),
        LS_TEST(test_rope_both_layouts_match_cpu),
        LS_TEST(test_attention_forward_matches_cpu),
        LS_TEST(test_attention_backward_matches_cpu),
        LS_TEST(test_attention_stays_within_its_stated_buffers),
        LS_TEST(test_attention_decode_matches_cpu),
        LS_TEST(test_gelu_and_swiglu_match_cpu),
        LS_TEST(test_residual_axpy_scale_match_cpu),
        LS_TEST(test_dropout_mask_is_bit_identical_to_cpu),
        LS_TEST(test_copy_rows_matches_cpu),
        LS_TEST(test_sumsq_matches_cpu),
        LS_TEST(test_embedding_forward_backward_bit_identical_to_cpu),
        LS_TEST(test_crossentropy_matches_cpu_with_smoothing_and_ignore),
        LS_TEST(test_adamw_matches_cpu),
        LS_TEST(test_reductions_give_the_same_bits_twice),
        LS_TEST(test_attention_bidir_with_key_padding_matches_cpu),
    LS_TEST(test_attention_bf16_tensor_cores_match_cpu_within_bf16),
        LS_TEST(test_attention_bidir_fully_masked_sequence_gives_zeros),
        LS_TEST(test_gelu_erf_and_tanh_match_cpu),
        LS_TEST(test_mean_pool_with_padding_bit_identical_to_cpu),
        LS_TEST(test_cuda_qr_thin_matches_lapacke),
        LS_TEST(test_cuda_svd_thin_matches_lapacke),
        LS_TEST(test_cuda_delta_svd_matches_lapacke),
        LS_TEST(test_cuda_analysis_rejects_bad_input_like_cpu),
        LS_TEST(test_stories260K_lora_training_step_matches_cpu),
        LS_TEST(test_stories260K_full_finetune_step_matches_cpu),
    LS_TEST(test_bf16_lora_step_stays_within_bf16_of_cpu),
        LS_TEST(test_bench_gpu_rows_report_counts_flops_and_memory),
        LS_TEST(test_stories260K_prefix_layer_step_and_decode_match_cpu),
        LS_TEST(test_stories260K_prefix_embed_step_and_decode_match_cpu),
        LS_TEST(test_gpt2_small_shape_training_steps_match_cpu),
        LS_TEST(test_stories260K_greedy_decode_reproduces_reference),
        LS_TEST(test_no_device_gives_clear_error),
        LS_TEST(test_bert_tiny_lora_training_step_matches_cpu),
        LS_TEST(test_bert_tiny_full_finetune_step_matches_cpu),
    LS_TEST(test_bert_tiny_prefix_layer_step_matches_cpu),
        LS_TEST(test_bert_tiny_lora_train_steps_match_cpu),
        LS_TEST(test_minilm_logits_match_cpu),
        LS_TEST(test_smollm2_gguf_logits_and_lora_step_match_cpu),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
