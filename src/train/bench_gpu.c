// bench_gpu: the GPU benchmark's training step (bench_gpu.h).
#include "train/bench_gpu.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/clock.h"
#include "base/util.h"
#include "engine/lora.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "train/bench.h"
#include "train/step.h"

int bench_gpu_shape(const char *name, ls_model_config *c) {
    if (!strcmp(name, "gpt2-124m")) {
        *c = (ls_model_config){.family = LS_FAMILY_GPT2, .dim = 768, .hidden_dim = 3072, .n_layers = 12,
                               .n_heads = 12, .n_kv_heads = 12, .vocab_size = 50257, .max_seq_len = 1024,
                               .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tied_embeddings = 1};
    } else if (!strcmp(name, "llama-124m")) {
        *c = (ls_model_config){.family = LS_FAMILY_LLAMA, .dim = 768, .hidden_dim = 2048, .n_layers = 12,
                               .n_heads = 12, .n_kv_heads = 4, .vocab_size = 32000, .max_seq_len = 1024,
                               .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    } else if (!strcmp(name, "tiny")) {
        *c = (ls_model_config){.family = LS_FAMILY_LLAMA, .dim = 64, .hidden_dim = 172, .n_layers = 2,
                               .n_heads = 8, .n_kv_heads = 4, .vocab_size = 512, .max_seq_len = 256,
                               .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tied_embeddings = 1};
    } else {
        return ls_fail("--shape: expected gpt2-124m, llama-124m or tiny, found '%s'", name);
    }
    return 0;
}

double bench_gpu_flops_per_token(const ls_model_config *c, int T, int full) {
    double C = c->dim, L = c->n_layers, V = c->vocab_size, hs = (double)c->dim / c->n_heads;
    double attw = c->n_heads * hs;
    double F = c->family == LS_FAMILY_LLAMA ? 2.0 * c->hidden_dim : c->hidden_dim; // SwiGLU: gate and up
    double qkv = (c->n_heads + 2.0 * c->n_kv_heads) * hs;
    double n_mm = L * (qkv * C + C * C + F * C + C * c->hidden_dim) + V * C;
    return (full ? 6.0 : 4.0) * n_mm + 12.0 * L * T * attw;
}

// The model with its trainable part: the adapter (lo) or every weight.
static int build_trainable(const bench_gpu_request *q, const ls_model_config *cfg, const ls_backend *be,
                           ls_model *m, ls_lora *lo) {
    memset(m, 0, sizeof *m);
    memset(lo, 0, sizeof *lo);
    if (model_build_random(m, cfg, 1, be) || model_reserve(m, q->batch, q->seq)) return -1;
    if (!strcmp(q->mode, "full")) {
        model_enable_grads(m);
        return 0;
    }
    ls_lora_config lc;
    lora_config_default(&lc);
    lc.rank = q->rank;
    lc.alpha = 2.0f * q->rank;
    const char *mods = q->lora ? q->lora : cfg->family == LS_FAMILY_GPT2 ? "c_attn" : "q,v";
    if (lora_parse_modules(cfg->family, mods, &lc.modules) || lora_build(lo, m, &lc)) return -1;
    return model_set_loss_chunk(m, model_loss_chunk_rows(m)); // as `train` runs a frozen head
}

// Waits for the device: a copy of one float back (on the CPU, a copy).
static void sync_device(const ls_model *m) {
    float one;
    m->be->download(&one, m->acts_memory, 1);
}

// Median seconds of q->steps steps after q->warmup untimed ones, or -1.
static double time_steps(const bench_gpu_request *q, const train_step_spec *spec, const train_fixed_batch *batch) {
    double *times = ls_malloc((size_t)q->steps * sizeof(double));
    char msg[256];
    for (int s = 0; s < q->warmup + q->steps; s++) {
        sync_device(spec->m);
        double t0 = ls_now();
        train_step_stats st;
        int rc = train_step(spec, s + 1, 1e-4, train_fixed_batch_next, (void *)batch, &st, msg, sizeof msg);
        if (rc) {
            if (rc > 0) ls_fail("%s", msg);
            free(times);
            return -1.0;
        }
        sync_device(spec->m);
        if (s >= q->warmup) times[s - q->warmup] = ls_now() - t0;
    }
    double med = bench_median(times, q->steps);
    free(times);
    return med;
}

int bench_gpu_run(const bench_gpu_request *q, const ls_backend *be, const ls_backend_device *dev,
                  bench_gpu_result *r) {
    memset(r, 0, sizeof *r);
    ls_model_config cfg;
    if (bench_gpu_shape(q->shape, &cfg)) return -1;
    if (strcmp(q->mode, "lora") && strcmp(q->mode, "full"))
        return ls_fail("--mode: expected lora or full, found '%s'", q->mode);
    if (q->rank < 1 || q->batch < 1 || q->seq < 2 || q->steps < 1 || q->warmup < 0)
        return ls_fail("expected rank, batch and steps >= 1, seq >= 2, warmup >= 0");
    if (q->seq > cfg.max_seq_len)
        return ls_fail("--seq: expected at most the shape's %d positions, found %d", cfg.max_seq_len, q->seq);
    int full = !strcmp(q->mode, "full");
    ls_model m;
    ls_lora lo;
    if (build_trainable(q, &cfg, be, &m, &lo)) {
        model_free(&m);
        return -1;
    }
    ls_adamw opt;
    train_step_spec spec;
    train_step_spec_init(&spec, &m, full ? NULL : &lo, &opt); // no clipping, as bench_peft_gpu.py
    adamw_init(&opt, be, spec.n_trainable, 0.9f, 0.999f, 1e-8f, 0.0f);
    int N = q->batch * q->seq;
    int *tok = ls_malloc((size_t)N * sizeof(int)), *tgt = ls_malloc((size_t)N * sizeof(int));
    ls_rng g;
    ls_rng_seed(&g, 2);
    for (int i = 0; i < N; i++) tok[i] = (int)(ls_rng_next(&g) % (uint64_t)cfg.vocab_size);
    for (int i = 0; i < N; i++) tgt[i] = (i + 1) % q->seq ? tok[i + 1] : -1;
    train_fixed_batch batch = {tok, tgt, q->batch, q->seq, NULL, NULL};
    model_set_training(&m, 1);
    if (dev) dev->reset_peak();
    double step_s = time_steps(q, &spec, &batch);
    if (step_s > 0) {
        size_t peak = 0;
        if (dev) dev->memory(NULL, &peak);
        else { // the process's peak resident memory
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            peak = (size_t)ru.ru_maxrss * 1024;
        }
        *r = (bench_gpu_result){model_num_params(&m), spec.n_trainable, step_s, (double)N / step_s, (double)peak,
                                bench_gpu_flops_per_token(&cfg, q->seq, full)};
    }
    free(tok);
    free(tgt);
    adamw_free(&opt);
    if (!full) lora_free(&lo, &m);
    model_free(&m);
    return step_s > 0 ? 0 : -1;
}
