// bench_latency: Table 1's forward-pass latency per variant and batch size (bench_latency.h).
#include "train/bench_latency.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/util.h"
#include "engine/adapters.h"
#include "engine/lora.h"
#include "engine/rng.h"
#include "train/bench.h"
#include "train/train.h"

const char *bench_latency_variant_name(int v) {
    static const char *const names[BL_N_VARIANTS] = {"base", "merged LoRA", "unmerged LoRA", "Adapter^H",
                                                     "Adapter^L"};
    return v >= 0 && v < BL_N_VARIANTS ? names[v] : "?";
}

// ----------------------------------------------------------------------------
// the model and its variants

typedef struct {
    ls_model m;
    ls_lora lo;
    ls_adapters ad[2];  // Houlsby, Lin
    int have_ad;
    int *tokens;        // (Bmax, T) random ids
} latency_bench;

static void latency_bench_free(latency_bench *b) {
    b->m.lora = &b->lo; // lora_free / adapters_free detach what is attached
    lora_free(&b->lo, &b->m);
    for (int k = 0; k < 2 * b->have_ad; k++) adapters_free(&b->ad[k], &b->m);
    model_free(&b->m);
    free(b->tokens);
}

// The shape's model reserved for (Bmax, T), LoRA r on q and v, and both kinds
// of adapters, none attached yet.
static int latency_bench_build(latency_bench *b, const bench_shape *s, const bench_latency_req *q, int Bmax,
                               bench_latency_result *r) {
    memset(b, 0, sizeof *b);
    if (bench_build_model(&b->m, s, q->assets, q->be, &r->weights_real)) return -1;
    ls_model *m = &b->m;
    int Tmax = m->cfg.max_seq_len > 0 ? m->cfg.max_seq_len : s->cfg.max_seq_len;
    if (q->T > Tmax) {
        model_free(m);
        return ls_fail("--seq-len: expected 1..%d (the %s shape's positions), found %d", Tmax, s->name, q->T);
    }
    if (model_reserve(m, Bmax, q->T)) {
        model_free(m);
        return -1;
    }
    ls_lora_config lc;
    lora_config_default(&lc); // kaiming A, B = 0: merging leaves W's bits, the cost is the same
    lc.rank = q->rank;
    lc.alpha = 2.0f * q->rank;
    if (s->cfg.family == LS_FAMILY_GPT2) lc.modules = 1u << LORA_Q | 1u << LORA_V;
    if (lora_build(&b->lo, m, &lc)) {
        model_free(m);
        return -1;
    }
    r->params = m->n_params;
    r->trainable[BL_LORA_MERGED] = r->trainable[BL_LORA_UNMERGED] = b->lo.n_params;
    b->have_ad = 1;
    for (int k = 0; k < 2 * b->have_ad; k++) {
        m->adapters = NULL;
        if (adapters_build(&b->ad[k], m, k ? LS_ADAPTERS_LIN : LS_ADAPTERS_HOULSBY, q->rank, 1)) {
            b->have_ad = k; // frees the ones built
            latency_bench_free(b);
            return -1;
        }
        r->trainable[BL_ADAPTER_H + k] = b->ad[k].n_params;
    }
    m->adapters = NULL;
    m->lora = NULL;
    model_set_training(m, 0);
    size_t N = (size_t)Bmax * q->T;
    b->tokens = ls_malloc(N * sizeof(int));
    ls_rng rng;
    ls_rng_seed(&rng, 42);
    int lo = arch_is_encoder(m->cfg.family) && m->V > 2000 ? 1000 : 0; // past BERT's special and unused ids
    for (size_t i = 0; i < N; i++) b->tokens[i] = lo + (int)(ls_rng_next(&rng) % (uint64_t)(m->V - lo));
    return 0;
}

// Attaches variant v (merging the LoRA for the merged one).
static void attach(latency_bench *b, int v) {
    ls_model *m = &b->m;
    m->lora = v == BL_LORA_MERGED || v == BL_LORA_UNMERGED ? &b->lo : NULL;
    m->adapters = v == BL_ADAPTER_H ? &b->ad[0] : v == BL_ADAPTER_L ? &b->ad[1] : NULL;
    if (v == BL_LORA_MERGED) lora_merge(&b->lo, m);
}

static void detach(latency_bench *b, int v) {
    if (v == BL_LORA_MERGED) lora_unmerge(&b->lo, &b->m);
    b->m.lora = NULL;
    b->m.adapters = NULL;
}

// One forward pass at (B, T): logits only. Returns seconds, or -1 with ls_error().
static double forward_seconds(latency_bench *b, int B, int T) {
    ls_model *m = &b->m;
    double t0 = ls_now();
    float rc = arch_is_encoder(m->cfg.family) ? model_classify_forward(m, b->tokens, NULL, NULL, NULL, B, T)
                                              : model_forward(m, b->tokens, NULL, NULL, B, T, 0.0f);
    float one;
    m->be->download(&one, m->acts_memory, 1); // waits for a GPU's kernels; a copy of one float on the CPU
    double dt = ls_now() - t0;
    return rc < 0.0f ? -1.0 : dt;
}

// ----------------------------------------------------------------------------
// timing

// 1 + repeats rounds at batch B (the first untimed) into column j of r.
static int time_batch(latency_bench *b, const bench_latency_req *q, int j, bench_latency_result *r) {
    int B = q->batches[j], n_var = b->have_ad ? BL_N_VARIANTS : BL_ADAPTER_H;
    double *t = ls_malloc((size_t)BL_N_VARIANTS * q->repeats * sizeof(double));
    for (int k = 0; k <= q->repeats; k++)
        for (int v = 0; v < n_var; v++) {
            attach(b, v);
            double s = forward_seconds(b, B, q->T);
            detach(b, v);
            if (s < 0) {
                free(t);
                return -1;
            }
            if (k) t[(size_t)v * q->repeats + k - 1] = s * 1e3;
        }
    for (int v = 0; v < BL_N_VARIANTS; v++) {
        r->median_ms[v][j] = r->min_ms[v][j] = r->max_ms[v][j] = NAN;
        if (v >= n_var) continue;
        double *x = t + (size_t)v * q->repeats;
        int n = q->repeats;
        r->median_ms[v][j] = bench_median(x, n); // sorts x
        r->min_ms[v][j] = x[0];
        r->max_ms[v][j] = x[n - 1];
    }
    free(t);
    fprintf(stderr, "  batch %d x %d:", B, q->T);
    for (int v = 0; v < n_var; v++)
        fprintf(stderr, " %s %.2f ms%s", bench_latency_variant_name(v), r->median_ms[v][j], v + 1 < n_var ? "," : "\n");
    return 0;
}

int bench_latency(const bench_shape *s, const bench_latency_req *q, bench_latency_result *r) {
    memset(r, 0, sizeof *r);
    if (q->n_batches < 1 || q->n_batches > BENCH_LATENCY_MAX_BATCHES || q->repeats < 1 || q->rank < 1 || q->T < 1)
        return ls_fail("bench --latency: expected 1..%d batch sizes, repeats, rank and T >= 1",
                       BENCH_LATENCY_MAX_BATCHES);
    int Bmax = 0;
    for (int j = 0; j < q->n_batches; j++) {
        if (q->batches[j] < 1 || q->batches[j] > 4096)
            return ls_fail("--batches: expected sizes in 1..4096, found %d", q->batches[j]);
        if (q->batches[j] > Bmax) Bmax = q->batches[j];
    }
    train_set_threads(q->threads);
    latency_bench b;
    if (latency_bench_build(&b, s, q, Bmax, r)) return -1;
    fprintf(stderr, "bench --latency: %s, sequence %d, %d rounds per batch size, backend %s, %d thread%s\n", s->name,
            q->T, q->repeats, b.m.be->name, q->threads, q->threads > 1 ? "s" : "");
    int rc = 0;
    for (int j = 0; j < q->n_batches && !rc; j++) rc = time_batch(&b, q, j, r);
    latency_bench_free(&b);
    return rc;
}
