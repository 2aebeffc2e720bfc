// bench: timed training steps, FLOP counts, an sgemm probe.
#include "train/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/util.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "train/record.h"
#include "train/step.h"
#include "train/train.h"

static const bench_shape SHAPES[] = {
    {"stories260K", {LS_FAMILY_LLAMA, 64, 172, 5, 8, 4, 512, 512, 1e-5f, 10000.0f, 1, 1, 0, 0, 0, LS_POOL_CLS, 0.0f}, 8, 256,
     "models/stories260K/stories260K.bin"},
    {"llama512", {LS_FAMILY_LLAMA, 512, 1376, 8, 8, 8, 32000, 1024, 1e-5f, 10000.0f, 0, 0, 0, 0, 0, LS_POOL_CLS, 0.0f}, 4, 256, NULL},
    {"gpt2-768", {LS_FAMILY_GPT2, 768, 3072, 12, 12, 12, 50257, 1024, 1e-5f, 0.0f, 0, 1, 0, 0, 0, LS_POOL_CLS, 0.0f}, 4, 256, NULL},
    // SmolLM2-135M (GGUF Q4_1, dequantized): the paper's E2E setting at d = 576
    {"smollm2-135m", {LS_FAMILY_LLAMA, 576, 1536, 30, 9, 3, 49152, 8192, 1e-5f, 100000.0f, 0, 1, 0, 0, 0, LS_POOL_CLS, 0.0f}, 4, 256,
     "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"},
    // all-MiniLM-L6-v2: the BERT encoder of the paper's GLUE setting at d = 384,
    // a two-way sequence classifier (SST-2) with a new classifier
    {"minilm-l6", {LS_FAMILY_BERT, 384, 1536, 6, 12, 12, 30522, 512, 1e-12f, 0.0f, 0, 0, 2, 2, 0, LS_POOL_CLS, 0.02f},
     16, 128, "models/all-MiniLM-L6-v2"},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

const bench_shape *bench_shapes(int *n) {
    *n = N_SHAPES;
    return SHAPES;
}

const bench_shape *bench_find_shape(const char *name) {
    for (int i = 0; i < N_SHAPES; i++)
        if (!strcmp(SHAPES[i].name, name)) return &SHAPES[i];
    return NULL;
}

double bench_flops_per_token(const ls_model_config *c, int T, int full, int rank, int n_sites_per_layer) {
    double C = c->dim, H = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    double HS = C / c->n_heads, QKV = (c->n_heads + 2.0 * c->n_kv_heads) * HS;
    double F = c->family == LS_FAMILY_LLAMA ? 2 * H : H;
    int encoder = arch_is_encoder(c->family);
    // an encoder's head (pooler C x C, classifier) runs once per sequence: under 1% at T >= 16
    double N = L * (QKV * C + C * C + F * C + C * H) + (encoder ? 0.0 : V * C);
    // QK^T and AV, forward 2 x 2 C per key: causal over (T+1)/2 keys, bidirectional over T
    double attn = encoder ? 12.0 * L * C * T : 6.0 * L * C * (T + 1);
    if (full) return 6.0 * N + attn;
    // q and v sites: d_in = C, d_out = NH*HS (q) and NKV*HS (v)
    double site = 6.0 * rank * ((C + c->n_heads * HS) + (C + c->n_kv_heads * HS)) / 2.0;
    return 4.0 * N - 2.0 * C * QKV + attn + L * n_sites_per_layer * site;
}

// The sgemm probe: one 2048^3 product through the CPU backend's gemm (at the
// current thread count), in GFLOP/s.
#define PROBE_N 2048
typedef struct {
    float *a, *b, *c;
} sgemm_probe;

static void probe_init(sgemm_probe *p) {
    size_t nn = (size_t)PROBE_N * PROBE_N;
    p->a = ls_malloc(nn * sizeof(float));
    p->b = ls_malloc(nn * sizeof(float));
    p->c = ls_calloc(nn, sizeof(float));
    for (size_t i = 0; i < nn; i++) {
        p->a[i] = (float)(i % 7) * 0.1f;
        p->b[i] = (float)(i % 5) * 0.1f;
    }
}

static double probe_run(sgemm_probe *p) {
    int n = PROBE_N;
    double t0 = ls_now();
    ls_backend_cpu()->gemm(0, 1, n, n, n, 1.0f, p->a, n, p->b, n, 0.0f, p->c, n);
    return 2.0 * n * (double)n * n / (ls_now() - t0) / 1e9;
}

static void probe_free(sgemm_probe *p) {
    free(p->a);
    free(p->b);
    free(p->c);
}

// ----------------------------------------------------------------------------
// The products alone: a copy of the CPU backend whose matrix products (gemm,
// matmul forward and backward) and attention ops write each call — its shape
// and its buffers — into a record during the warm-up step. Replaying the
// record after the timed steps runs the same products on the same buffers
// (the model's own weights, activations and gradients) with nothing between
// them: the most of the sgemm peak the step could reach if every other op
// were free. The replay overwrites activations and adds to gradients, which
// nothing reads afterwards; it never writes a weight.

typedef enum { REC_GEMM, REC_MM_FWD, REC_MM_BWD, REC_ATT_FWD, REC_ATT_BWD, REC_BIDIR_FWD, REC_BIDIR_BWD } rec_kind;

typedef struct {
    rec_kind kind;
    int a[9];          // the call's integers, in its argument order
    float alpha, beta; // gemm's
    float *p[6];       // its buffers, in its argument order (an int mask converted)
} rec_call;

static struct {
    rec_call *calls;
    int n, cap, on;
} rec;

static ls_backend rec_be;

static rec_call *rec_add(rec_kind kind) {
    if (!rec.on) return NULL;
    if (rec.n == rec.cap) {
        rec.cap = rec.cap ? 2 * rec.cap : 256;
        rec_call *grown = ls_malloc((size_t)rec.cap * sizeof *grown);
        if (rec.n) memcpy(grown, rec.calls, (size_t)rec.n * sizeof *grown);
        free(rec.calls);
        rec.calls = grown;
    }
    rec_call *c = &rec.calls[rec.n++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    return c;
}

#define REC_INTS(c, ...) memcpy((c)->a, (int[9]){__VA_ARGS__}, sizeof(c)->a)
#define REC_PTRS(c, ...) memcpy((c)->p, (float *[6]){__VA_ARGS__}, sizeof(c)->p)

static void rec_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc) {
    rec_call *c = rec_add(REC_GEMM);
    if (c) {
        REC_INTS(c, ta, tb, M, N, K, lda, ldb, ldc);
        REC_PTRS(c, (float *)A, (float *)B, C);
        c->alpha = alpha;
        c->beta = beta;
    }
    ls_backend_cpu()->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void rec_mm_fwd(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    rec_call *c = rec_add(REC_MM_FWD);
    if (c) {
        REC_INTS(c, N, C, OC);
        REC_PTRS(c, out, (float *)inp, (float *)w, (float *)bias);
    }
    ls_backend_cpu()->matmul_forward(out, inp, w, bias, N, C, OC);
}

static void rec_mm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       int N, int C, int OC) {
    rec_call *c = rec_add(REC_MM_BWD);
    if (c) {
        REC_INTS(c, N, C, OC);
        REC_PTRS(c, dinp, dw, db, (float *)dout, (float *)inp, (float *)w);
    }
    ls_backend_cpu()->matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
}

static void rec_att_fwd(float *out, float *att, const float *qkv, int B, int T, int NH, int NKV, int HS) {
    rec_call *c = rec_add(REC_ATT_FWD);
    if (c) {
        REC_INTS(c, B, T, NH, NKV, HS);
        REC_PTRS(c, out, att, (float *)qkv);
    }
    ls_backend_cpu()->attention_forward(out, att, qkv, B, T, NH, NKV, HS);
}

static void rec_att_bwd(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, int B,
                        int T, int NH, int NKV, int HS) {
    rec_call *c = rec_add(REC_ATT_BWD);
    if (c) {
        REC_INTS(c, B, T, NH, NKV, HS);
        REC_PTRS(c, dqkv, datt, (float *)dout, (float *)qkv, (float *)att);
    }
    ls_backend_cpu()->attention_backward(dqkv, datt, dout, qkv, att, B, T, NH, NKV, HS);
}

static void rec_bidir_fwd(float *out, float *att, const float *qkv, const int *keymask, int B, int T, int NH,
                          int HS) {
    rec_call *c = rec_add(REC_BIDIR_FWD);
    if (c) {
        REC_INTS(c, B, T, NH, NH, HS);
        REC_PTRS(c, out, att, (float *)qkv, (float *)(void *)keymask);
    }
    ls_backend_cpu()->attention_bidir_forward(out, att, qkv, keymask, B, T, NH, HS);
}

static void rec_bidir_bwd(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                          const int *keymask, int B, int T, int NH, int HS) {
    rec_call *c = rec_add(REC_BIDIR_BWD);
    if (c) {
        REC_INTS(c, B, T, NH, NH, HS);
        REC_PTRS(c, dqkv, datt, (float *)dout, (float *)qkv, (float *)att, (float *)(void *)keymask);
    }
    ls_backend_cpu()->attention_bidir_backward(dqkv, datt, dout, qkv, att, keymask, B, T, NH, HS);
}

// The CPU backend with the recording products above; a static table.
static const ls_backend *recording_backend(void) {
    rec_be = *ls_backend_cpu();
    rec_be.gemm = rec_gemm;
    rec_be.matmul_forward = rec_mm_fwd;
    rec_be.matmul_backward = rec_mm_bwd;
    rec_be.attention_forward = rec_att_fwd;
    rec_be.attention_backward = rec_att_bwd;
    rec_be.attention_bidir_forward = rec_bidir_fwd;
    rec_be.attention_bidir_backward = rec_bidir_bwd;
    return &rec_be;
}

// The FLOPs of a recorded call: 2 per multiply-add of its products (a causal
// attention's query t sees t + 1 keys; its backward is twice its forward).
static double rec_flops(const rec_call *c) {
    const int *a = c->a;
    switch (c->kind) {
    case REC_GEMM: return 2.0 * a[2] * a[3] * (double)a[4];
    case REC_MM_FWD: return 2.0 * a[0] * a[1] * (double)a[2];
    case REC_MM_BWD: return 2.0 * a[0] * a[1] * (double)a[2] * ((c->p[0] != NULL) + (c->p[1] != NULL));
    case REC_ATT_FWD: return 2.0 * a[0] * a[2] * a[4] * (double)a[1] * (a[1] + 1);
    case REC_ATT_BWD: return 4.0 * a[0] * a[2] * a[4] * (double)a[1] * (a[1] + 1);
    case REC_BIDIR_FWD: return 4.0 * a[0] * a[2] * a[4] * (double)a[1] * a[1];
    case REC_BIDIR_BWD: return 8.0 * a[0] * a[2] * a[4] * (double)a[1] * a[1];
    }
    return 0.0;
}

// The FLOPs of the matrix products (2 per multiply-add) and attention (QK^T
// and AV: a causal query at position t sees t + 1 keys; backward twice the
// forward) of the recorded warm-up step, counted from the shapes its backend
// calls received: what bench_flops_per_token estimates (bench_result.step_flops).
static double bench_recorded_flops(void) {
    double f = 0.0;
    for (int i = 0; i < rec.n; i++) f += rec_flops(&rec.calls[i]);
    return f;
}

// One replay of the record through the CPU backend, on the recorded buffers: seconds.
static double replay_run(void) {
    const ls_backend *be = ls_backend_cpu();
    double t0 = ls_now();
    for (int i = 0; i < rec.n; i++) {
        const rec_call *c = &rec.calls[i];
        const int *a = c->a;
        float *const *f = c->p;
        switch (c->kind) {
        case REC_GEMM:
            be->gemm(a[0], a[1], a[2], a[3], a[4], c->alpha, f[0], a[5], f[1], a[6], c->beta, f[2], a[7]);
            break;
        case REC_MM_FWD: be->matmul_forward(f[0], f[1], f[2], f[3], a[0], a[1], a[2]); break;
        case REC_MM_BWD: be->matmul_backward(f[0], f[1], f[2], f[3], f[4], f[5], a[0], a[1], a[2]); break;
        case REC_ATT_FWD: be->attention_forward(f[0], f[1], f[2], a[0], a[1], a[2], a[3], a[4]); break;
        case REC_ATT_BWD: be->attention_backward(f[0], f[1], f[2], f[3], f[4], a[0], a[1], a[2], a[3], a[4]); break;
        case REC_BIDIR_FWD:
            be->attention_bidir_forward(f[0], f[1], f[2], (const int *)(void *)f[3], a[0], a[1], a[2], a[4]);
            break;
        case REC_BIDIR_BWD:
            be->attention_bidir_backward(f[0], f[1], f[2], f[3], f[4], (const int *)(void *)f[5], a[0], a[1], a[2], a[4]);
            break;
        }
    }
    return ls_now() - t0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_build_model(ls_model *m, const bench_shape *s, const char *assets_dir, const ls_backend *be, int *real) {
    if (!be) be = ls_backend_cpu();
    *real = 0;
    if (s->asset && assets_dir) {
        char *p = ls_path_join(assets_dir, s->asset);
        int found = ls_exists(p), rc = 0;
        if (found) {
            ls_checkpoint ck;
            rc = ckpt_load(&ck, p);
            if (!rc) {
                rc = model_build_from_checkpoint(m, &ck, be);
                ckpt_free(&ck);
            }
        }
        free(p);
        if (found) {
            *real = !rc;
            return rc;
        }
    }
    return model_build_random(m, &s->cfg, 1234, be);
}

// The step's fixed batch: random tokens (ids from 1000 up for an encoder, past
// BERT's special and unused ids); a decoder's targets are the next tokens, an
// encoder's labels random classes over a full key mask. Free with bench_batch_free.
static void bench_batch_make(train_fixed_batch *b, const ls_model *m, int B, int T) {
    int N = B * T, encoder = arch_is_encoder(m->cfg.family), lo = encoder && m->V > 2000 ? 1000 : 0;
    int *tokens = ls_malloc((size_t)N * sizeof(int)), *targets = ls_malloc((size_t)N * sizeof(int));
    ls_rng rng;
    ls_rng_seed(&rng, 42);
    for (int i = 0; i < N; i++) tokens[i] = lo + (int)(ls_rng_next(&rng) % (uint64_t)(m->V - lo));
    *b = (train_fixed_batch){tokens, targets, B, T, NULL, NULL};
    if (!encoder) {
        for (int i = 0; i < N; i++) targets[i] = i + 1 < N ? tokens[i + 1] : 0;
        return;
    }
    int *keymask = ls_malloc((size_t)N * sizeof(int)), *labels = ls_malloc((size_t)B * sizeof(int));
    for (int i = 0; i < N; i++) keymask[i] = 1;
    for (int i = 0; i < B; i++) labels[i] = (int)(ls_rng_next(&rng) % (uint64_t)m->cfg.num_labels);
    b->keymask = keymask;
    b->labels = labels;
}

static void bench_batch_free(train_fixed_batch *b) {
    free((void *)b->tokens);
    free((void *)b->targets);
    free((void *)b->keymask);
    free((void *)b->labels);
}

double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Times 1 + steps training steps of spec on batch: the fastest, median and
// slowest of the timed ones (step 0 warms caches and is not timed) into r.
// An sgemm probe runs right before each timed step, so that the step and the
// peak it is measured against see the same machine (this VM's sgemm rate
// drifts by a fifth over minutes); r gets the probes' median and range.
// The warm-up step records its products (the model runs on recording_backend);
// after the timed steps, `steps` replays of the record, each after a probe of
// its own, give the products-alone time and its peak.
static int time_steps(const char *name, const train_step_spec *spec, train_fixed_batch *batch, int steps,
                      bench_result *r) {
    double *times = ls_malloc((size_t)(steps + 1) * sizeof(double)),
           *probes = ls_malloc((size_t)(steps + 1) * sizeof(double));
    sgemm_probe probe;
    probe_init(&probe);
    int rc = 0;
    char msg[256];
    rec.n = 0;
    for (int k = 0; k <= steps && !rc; k++) {
        if (k > 0) probes[k - 1] = probe_run(&probe);
        rec.on = k == 0;
        double t0 = ls_now();
        train_step_stats st;
        rc = train_step(spec, k + 1, 1e-5, train_fixed_batch_next, batch, &st, msg, sizeof msg);
        if (rc > 0) rc = ls_fail("bench %s: %s", name, msg);
        times[k] = ls_now() - t0;
        rec.on = 0;
    }
    if (!rc) {
        // the median is the step's cost; the fastest and slowest show how much
        // the machine's other load moved it
        int N = batch->B * batch->T;
        r->step_median_s = bench_median(times + 1, steps);
        r->step_min_s = times[1];
        r->step_max_s = times[steps];
        r->tok_s = N / r->step_median_s;
        r->tok_s_min = N / r->step_max_s;
        r->tok_s_max = N / r->step_min_s;
        r->peak_gflops = bench_median(probes, steps);
        r->peak_min = probes[0];
        r->peak_max = probes[steps - 1];
        r->step_flops = bench_recorded_flops();
        replay_run(); // warm-up, as the steps had one
        for (int k = 0; k < steps; k++) {
            probes[k] = probe_run(&probe);
            times[k] = replay_run();
        }
        r->products_s = bench_median(times, steps);
        r->products_peak = bench_median(probes, steps);
    }
    probe_free(&probe);
    free(probes);
    free(times);
    return rc;
}

int bench_train(const bench_shape *s, const char *assets_dir, int full, int threads, int steps, bench_result *r) {
    memset(r, 0, sizeof *r);
    train_set_threads(threads);
    ls_model m;
    int real;
    if (bench_build_model(&m, s, assets_dir, recording_backend(), &real)) return -1;
    if (model_reserve(&m, s->B, s->T)) {
        model_free(&m);
        return -1;
    }
    int encoder = arch_is_encoder(m.cfg.family);
    ls_lora lo;
    if (full) {
        model_enable_grads(&m);
    } else {
        ls_lora_config lc;
        lora_config_default(&lc); // r 8, alpha 16, kaiming, q and v
        if (s->cfg.family == LS_FAMILY_GPT2) lc.modules = 1u << LORA_Q | 1u << LORA_V;
        if (lora_build(&lo, &m, &lc)) {
            model_free(&m);
            return -1;
        }
    }
    if (!full && model_set_loss_chunk(&m, model_loss_chunk_rows(&m))) { // as `train` runs a frozen head
        lora_free(&lo, &m);
        model_free(&m);
        return -1;
    }
    ls_adamw opt, hopt;
    train_step_spec spec;
    train_step_spec_init(&spec, &m, full ? NULL : &lo, &opt);
    spec.clip = 1.0;
    adamw_init(&opt, m.be, spec.n_trainable, 0.9f, 0.999f, 1e-8f, 0.01f);
    // an encoder's LoRA run trains its classifier too (PEFT's modules_to_save), as `train` does
    int head = encoder && !full && !train_step_spec_add_head(&spec, &hopt, 0.9f, 0.999f, 1e-8f, 0.01f);
    train_fixed_batch batch;
    bench_batch_make(&batch, &m, s->B, s->T);
    model_set_training(&m, 1);
    int rc = encoder && !full && !head ? -1 : time_steps(s->name, &spec, &batch, steps, r);
    if (!rc) {
        r->flops_per_token = bench_flops_per_token(&m.cfg, s->T, full, 8, 2);
        r->trainable = spec.n_trainable + spec.n_head;
        r->params = m.n_params;
        r->weights_real = real;
    }
    bench_batch_free(&batch);
    adamw_free(&opt);
    if (head) adamw_free(&hopt);
    if (!full) lora_free(&lo, &m);
    model_free(&m);
    return rc;
}
