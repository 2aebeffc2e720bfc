// bench_train: training throughput of lorascope's engine on a backend, in the
// TSV format that bench_peft_gpu.py prints for HF transformers + PEFT, so that
// compare.py can put the two side by side (see kernels/README.md).
//
//   bench_train [--backend cpu|cuda] [--shape gpt2-124m|llama-124m|tiny]
//               [--mode lora|full] [--lora MODULES] [--rank 8]
//               [--precision fp32|tf32|bf16] [--batch 8] [--seq 1024]
//               [--steps 20] [--warmup 3] [--peak-size N] [--header]
//
// The shapes, the step, its timing and the FLOP count are src/train/bench_gpu.h's
// (`lorascope bench --backend cuda` runs the same rows and prints the table
// itself). Peak memory is what the backend allocated (CUDA: ls_cuda_memory,
// which excludes the CUDA context), so it compares with
// torch.cuda.max_memory_allocated; on the CPU it is the peak resident set of
// the process. MFU here divides model FLOP/s by the peak this program
// measures through the backend's own gemm at the same precision: a square
// product of size 4096 (CPU: 1024).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/util.h"
#include "engine/rng.h"
#include "train/bench_gpu.h"
#ifdef LS_HAVE_CUDA
#include "cuda_backend.h"
#endif

typedef struct {
    const char *backend, *shape, *mode, *lora, *precision;
    int rank, batch, seq, steps, warmup, header, peak_n;
} bench_args;

static void sync_backend(const ls_backend *be) {
#ifdef LS_HAVE_CUDA
    if (be->kind == LS_BACKEND_CUDA) ls_cuda_synchronize();
#else
    (void)be;
#endif
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
                    "  [--batch B] [--seq T] [--steps N] [--warmup N] [--peak-size N] [--header]\n");
}

static int parse_args(int argc, char **argv, bench_args *a) {
    *a = (bench_args){"cpu", "gpt2-124m", "lora", NULL, "fp32", 8, 8, 1024, 20, 3, 0, 0};
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
        else if (strcmp(k, "--peak-size") == 0) a->peak_n = atoi(v);
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

// The TSV row (compare.py's format): throughput, peak memory, model FLOP/s and MFU.
static void report(const bench_args *a, const ls_backend *be, const bench_gpu_result *r) {
    double model_flops = r->flops_per_token * r->tok_s;
    double peak_flops = measure_peak(be, a->peak_n > 0 ? a->peak_n : be->kind == LS_BACKEND_CPU ? 1024 : 4096);
    const char *device = be->kind == LS_BACKEND_CPU ? "cpu" : "cuda";
#ifdef LS_HAVE_CUDA
    if (be->kind == LS_BACKEND_CUDA) device = ls_cuda_device_name();
#endif
    if (a->header)
        printf("impl\tdevice\tshape\tmode\tprecision\tbatch\tseq\tparams\ttrainable\ttokens_per_s\t"
               "step_ms\tpeak_mem_mib\tmodel_tflops\tpeak_tflops\tmfu\n");
    printf("lorascope-%s\t%s\t%s\t%s\t%s\t%d\t%d\t%zu\t%zu\t%.1f\t%.2f\t%.1f\t%.3f\t%.3f\t%.4f\n", be->name, device,
           a->shape, a->mode, a->precision, a->batch, a->seq, r->params, r->trainable, r->tok_s, 1e3 * r->step_s,
           r->peak_bytes / 1048576.0, model_flops / 1e12, peak_flops / 1e12, model_flops / peak_flops);
}

int main(int argc, char **argv) {
    bench_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "bench_train: %s\n", ls_error());
        usage();
        return 2;
    }
    const ls_backend *be = pick_backend(a.backend, a.precision);
    bench_gpu_request q = {a.shape, a.mode, a.lora, a.rank, a.batch, a.seq, a.steps, a.warmup};
    bench_gpu_result r;
    ls_backend_device dev, *devp = NULL;
#ifdef LS_HAVE_CUDA
    if (be && be->kind == LS_BACKEND_CUDA) {
        dev = (ls_backend_device){ls_cuda_device_name(), ls_cuda_memory, ls_cuda_reset_peak, ls_cuda_bf16_gemm_flops};
        devp = &dev;
    }
#else
    (void)dev;
#endif
    if (!be || bench_gpu_run(&q, be, devp, &r)) {
        fprintf(stderr, "bench_train: %s\n", ls_error());
        return 1;
    }
    report(&a, be, &r);
    return 0;
}
