// bench_train: training throughput of lorascope's engine on a backend, in the
// TSV format that bench_peft_gpu.py prints for HF transformers + PEFT, so that
// compare.py can put the two side by side (see kernels/README.md).
//
//   bench_train [--backend cpu|cuda] [--shape gpt2-124m|llama-124m|tiny]
//               [--mode lora|full] [--lora MODULES] [--rank 8]
//               [--precision fp32|tf32|bf16] [--batch 8] [--seq 1024]
//               [--steps 20] [--warmup 3] [--header]
//
// A step is the training loop's own (src/train/step.h: gradients zeroed,
// forward with targets, backward, the global gradient norm (measured, not
// clipped, as bench_peft_gpu.py does not clip), AdamW on the trainable
// parameters); each is timed between device synchronisations and the median
// step is reported (tokens/s = B*T / median step). Tokens are random
// (throughput does not depend on them). Peak memory is what the backend
// allocated (CUDA: ls_cuda_memory, which excludes the CUDA context), so it
// compares with torch.cuda.max_memory_allocated; on the CPU it is the peak
// resident set of the process. Model FLOPs per token:
//   full: 6 N + 12 L T d     LoRA: 4 N + 12 L T d  (frozen W0: no weight gradient)
// with N the parameters of every matrix product (the LM head included, the
// adapters' r(d_in + d_out) per site neglected), L layers, T the sequence
// length, d the attention width (PaLM's accounting, Chowdhery et al. 2022,
// App. B, without halving for causality). MFU divides model FLOP/s by the
// peak this program measures on the same backend and precision: a square
// gemm of size 4096 (CPU: 1024).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/clock.h"
#include "base/util.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "train/step.h"
#ifdef LS_HAVE_CUDA
#include "cuda_backend.h"
#endif

typedef struct {
    const char *backend, *shape, *mode, *lora, *precision;
    int rank, batch, seq, steps, warmup, header;
} bench_args;

static int compare_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void sync_backend(const ls_backend *be) {
#ifdef LS_HAVE_CUDA
    if (be->kind == LS_BACKEND_CUDA) ls_cuda_synchronize();
#else
    (void)be;
#endif
}

// The benchmark shapes; bench_peft_gpu.py builds the same ones in PyTorch.
static int shape_config(const char *name, ls_model_config *c) {
    memset(c, 0, sizeof *c);
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    if (strcmp(name, "gpt2-124m") == 0) { // GPT-2 small
        c->family = LS_FAMILY_GPT2;
        c->dim = 768; c->hidden_dim = 3072; c->n_layers = 12; c->n_heads = 12;
        c->n_kv_heads = 12; c->vocab_size = 50257; c->max_seq_len = 1024;
        c->tied_embeddings = 1;
    } else if (strcmp(name, "llama-124m") == 0) { // Llama layout, GQA 12/4, ~125M parameters
        c->family = LS_FAMILY_LLAMA;
        c->dim = 768; c->hidden_dim = 2048; c->n_layers = 12; c->n_heads = 12;
        c->n_kv_heads = 4; c->vocab_size = 32000; c->max_seq_len = 1024;
        c->rope_interleaved = 0;
    } else if (strcmp(name, "tiny") == 0) { // for a quick check of the harness
        c->family = LS_FAMILY_LLAMA;
        c->dim = 64; c->hidden_dim = 172; c->n_layers = 2; c->n_heads = 8; c->n_kv_heads = 4;
        c->vocab_size = 512; c->max_seq_len = 256; c->tied_embeddings = 1;
    } else {
        return ls_fail("--shape: expected gpt2-124m, llama-124m or tiny, found \"%s\"", name);
    }
    return 0;
}

// Peak FLOP/s of a square gemm of size n on the backend (best of 5 after a warmup).
static double measure_peak(const ls_backend *be, int n) {
    size_t nn = (size_t)n * n;
    float *h = ls_malloc(nn * sizeof(float));
    ls_rng r;
    ls_rng_seed(&r, 1);
    for (size_t i = 0; i < nn; i++) h[i] = (float)(ls_rng_uniform(&r) - 0.5);
    float *a = be->alloc(nn), *b = be->alloc(nn), *c = be->alloc(nn);
    be->upload(a, h, nn);
    be->upload(b, h, nn);
    free(h);
    be->gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    sync_backend(be);
    double best = 1e30;
    for (int k = 0; k < 5; k++) {
        double t0 = ls_now();
        be->gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        sync_backend(be);
        double t = ls_now() - t0;
        if (t < best) best = t;
    }
    be->free(a);
    be->free(b);
    be->free(c);
    return 2.0 * n * (double)nn / best;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_train [--backend cpu|cuda] [--shape gpt2-124m|llama-124m|tiny]\n"
                    "  [--mode lora|full] [--lora MODULES] [--rank R] [--precision fp32|tf32|bf16]\n"
                    "  [--batch B] [--seq T] [--steps N] [--warmup N] [--header]\n");
}

static int parse_args(int argc, char **argv, bench_args *a) {
    *a = (bench_args){"cpu", "gpt2-124m", "lora", NULL, "fp32", 8, 8, 1024, 20, 3, 0};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--header") == 0) { a->header = 1; continue; }
        if (strcmp(k, "--help") == 0) { usage(); exit(0); }
        if (!v) return ls_fail("%s: expected a value", k);
        i++;
        if (strcmp(k, "--backend") == 0) a->backend = v;
        else if (strcmp(k, "--shape") == 0) a->shape = v;
        else if (strcmp(k, "--mode") == 0) a->mode = v;
        else if (strcmp(k, "--lora") == 0) a->lora = v;
        else if (strcmp(k, "--precision") == 0) a->precision = v;
        else if (strcmp(k, "--rank") == 0) a->rank = atoi(v);
        else if (strcmp(k, "--batch") == 0) a->batch = atoi(v);
        else if (strcmp(k, "--seq") == 0) a->seq = atoi(v);
        else if (strcmp(k, "--steps") == 0) a->steps = atoi(v);
        else if (strcmp(k, "--warmup") == 0) a->warmup = atoi(v);
        else return ls_fail("unknown option %s", k);
    }
    if (strcmp(a->mode, "lora") != 0 && strcmp(a->mode, "full") != 0)
        return ls_fail("--mode: expected lora or full, found \"%s\"", a->mode);
    if (a->rank < 1 || a->batch < 1 || a->seq < 1 || a->steps < 1 || a->warmup < 0)
        return ls_fail("--rank, --batch, --seq, --steps: expected >= 1 (--warmup >= 0)");
    return 0;
}

static const ls_backend *pick_backend(const char *name, const char *precision) {
    if (strcmp(name, "cpu") == 0) {
        if (strcmp(precision, "fp32") != 0) {
            ls_fail("--precision %s: the CPU backend computes in fp32 only", precision);
            return NULL;
        }
        return ls_backend_cpu();
    }
    if (strcmp(name, "cuda") == 0) {
#ifdef LS_HAVE_CUDA
        ls_cuda_precision p;
        if (ls_cuda_parse_precision(precision, &p) != 0) return NULL;
        const ls_backend *be = ls_backend_cuda();
        if (be) ls_cuda_set_precision(p);
        return be;
#else
        ls_fail("--backend cuda: this build has no CUDA backend (meson -Dcuda=enabled)");
        return NULL;
#endif
    }
    ls_fail("--backend: expected cpu or cuda, found \"%s\"", name);
    return NULL;
}

// The model with its trainable part: the adapter (lo) or every weight.
static int build_trainable(const bench_args *a, const ls_model_config *cfg, const ls_backend *be, ls_model *m,
                           ls_lora *lo) {
    memset(m, 0, sizeof *m);
    memset(lo, 0, sizeof *lo);
    if (model_build_random(m, cfg, 1, be) != 0 || model_reserve(m, a->batch, a->seq) != 0) return -1;
    if (strcmp(a->mode, "full") == 0) {
        model_enable_grads(m);
        return 0;
    }
    ls_lora_config lc;
    lora_config_default(&lc);
    lc.rank = a->rank;
    lc.alpha = 2.0f * a->rank;
    const char *mods = a->lora ? a->lora : cfg->family == LS_FAMILY_GPT2 ? "c_attn" : "q,v";
    if (lora_parse_modules(cfg->family, mods, &lc.modules) != 0) return -1;
    if (lora_build(lo, m, &lc) != 0) return -1;
    return model_set_loss_chunk(m, model_loss_chunk_rows(m)); // as `train` runs a frozen head
}

// Median seconds of a.steps training steps after a.warmup untimed ones, or
// -1 with ls_error().
static double time_steps(const bench_args *a, const train_step_spec *spec, const train_fixed_batch *batch) {
    const ls_backend *be = spec->m->be;
    double *times = ls_malloc((size_t)a->steps * sizeof(double));
    char msg[256];
    for (int s = 0; s < a->warmup + a->steps; s++) {
        sync_backend(be);
        double t0 = ls_now();
        train_step_stats st;
        int rc = train_step(spec, s + 1, 1e-4, train_fixed_batch_next, (void *)batch, &st, msg, sizeof msg);
        if (rc) {
            if (rc > 0) ls_fail("%s", msg);
            free(times);
            return -1.0;
        }
        sync_backend(be);
        if (s >= a->warmup) times[s - a->warmup] = ls_now() - t0;
    }
    qsort(times, (size_t)a->steps, sizeof(double), compare_double);
    double step_s = a->steps % 2 ? times[a->steps / 2] : 0.5 * (times[a->steps / 2 - 1] + times[a->steps / 2]);
    free(times);
    return step_s;
}

// The TSV row (compare.py's format): throughput, peak memory, model FLOP/s and MFU.
static void report(const bench_args *a, const ls_model_config *cfg, const ls_model *m, size_t n_train,
                   double step_s) {
    const ls_backend *be = m->be;
    size_t peak = 0;
#ifdef LS_HAVE_CUDA
    if (be->kind == LS_BACKEND_CUDA) ls_cuda_memory(NULL, &peak);
#endif
    if (be->kind == LS_BACKEND_CPU) { // the process's peak resident memory
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        peak = (size_t)ru.ru_maxrss * 1024;
    }
    double C = cfg->dim, L = cfg->n_layers, V = cfg->vocab_size, T = a->seq;
    double attw = (double)cfg->n_heads * (cfg->dim / cfg->n_heads);
    double F = cfg->family == LS_FAMILY_LLAMA ? 2.0 * cfg->hidden_dim : cfg->hidden_dim;
    double qkv = (cfg->n_heads + 2.0 * cfg->n_kv_heads) * (cfg->dim / cfg->n_heads);
    double n_mm = L * (qkv * C + C * C + F * C + C * cfg->hidden_dim) + V * C;
    double per_token = (strcmp(a->mode, "full") == 0 ? 6.0 : 4.0) * n_mm + 12.0 * L * T * attw;
    double tok_s = (double)a->batch * a->seq / step_s;
    double model_flops = per_token * tok_s;
    double peak_flops = measure_peak(be, be->kind == LS_BACKEND_CPU ? 1024 : 4096);
    const char *device = be->kind == LS_BACKEND_CPU ? "cpu" : "cuda";
#ifdef LS_HAVE_CUDA
    if (be->kind == LS_BACKEND_CUDA) device = ls_cuda_device_name();
#endif
    if (a->header)
        printf("impl\tdevice\tshape\tmode\tprecision\tbatch\tseq\tparams\ttrainable\ttokens_per_s\t"
               "step_ms\tpeak_mem_mib\tmodel_tflops\tpeak_tflops\tmfu\n");
    printf("lorascope-%s\t%s\t%s\t%s\t%s\t%d\t%d\t%zu\t%zu\t%.1f\t%.2f\t%.1f\t%.3f\t%.3f\t%.4f\n", be->name, device,
           a->shape, a->mode, a->precision, a->batch, a->seq, model_num_params(m), n_train, tok_s, 1e3 * step_s,
           peak / 1048576.0, model_flops / 1e12, peak_flops / 1e12, model_flops / peak_flops);
}

int main(int argc, char **argv) {
    bench_args a;
    ls_model_config cfg;
    if (parse_args(argc, argv, &a) != 0 || shape_config(a.shape, &cfg) != 0) {
        fprintf(stderr, "bench_train: %s\n", ls_error());
        usage();
        return 2;
    }
    if (a.seq > cfg.max_seq_len) {
        fprintf(stderr, "bench_train: --seq %d exceeds the shape's %d positions\n", a.seq, cfg.max_seq_len);
        return 2;
    }
    const ls_backend *be = pick_backend(a.backend, a.precision);
    ls_model m;
    ls_lora lo;
    int full = strcmp(a.mode, "full") == 0;
    if (!be || build_trainable(&a, &cfg, be, &m, &lo) != 0) {
        fprintf(stderr, "bench_train: %s\n", ls_error());
        return 1;
    }
    ls_adamw opt;
    train_step_spec spec;
    train_step_spec_init(&spec, &m, full ? NULL : &lo, &opt); // no clipping, as bench_peft_gpu.py
    adamw_init(&opt, be, spec.n_trainable, 0.9f, 0.999f, 1e-8f, 0.0f);

    int N = a.batch * a.seq;
    int *tok = ls_malloc((size_t)N * sizeof(int)), *tgt = ls_malloc((size_t)N * sizeof(int));
    ls_rng r;
    ls_rng_seed(&r, 2);
    for (int i = 0; i < N; i++) tok[i] = (int)(ls_rng_next(&r) % (uint64_t)cfg.vocab_size);
    for (int i = 0; i < N; i++) tgt[i] = (i + 1) % a.seq ? tok[i + 1] : -1;
    train_fixed_batch batch = {tok, tgt, a.batch, a.seq, NULL, NULL};
    model_set_training(&m, 1);
#ifdef LS_HAVE_CUDA
    if (be->kind == LS_BACKEND_CUDA) ls_cuda_reset_peak();
#endif
    double step_s = time_steps(&a, &spec, &batch);
    if (step_s < 0) fprintf(stderr, "bench_train: %s\n", ls_error());
    else report(&a, &cfg, &m, spec.n_trainable, step_s);
    free(tok);
    free(tgt);
    adamw_free(&opt);
    if (!full) lora_free(&lo, &m);
    model_free(&m);
    return step_s < 0 ? 1 : 0;
}
