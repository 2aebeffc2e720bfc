// lorascope bench --backend cuda: issue 14's table — training tokens/s and
// peak memory of LoRA and full fine-tuning on the GPU (src/train/bench_gpu.h),
// each row beside HF transformers + PEFT on the same card in the same run
// (kernels/bench/bench_peft_gpu.py, when this machine's python has torch with
// CUDA), with both sides' MFU against the card's bf16-storage product peak
// measured here.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "cli/commands.h"
#include "engine/backend_registry.h"
#include "train/bench_gpu.h"
#include "train/record.h"

#ifndef LS_PEFT_BENCH
#define LS_PEFT_BENCH "kernels/bench/bench_peft_gpu.py"
#endif

#define MAX_ROWS 16

typedef struct {
    char shapes[256], backend[16], precision[16], mode[8], script[1024], out[1024];
    int batch, seq, steps, warmup, rank, peak_n, torch, no_torch;
} gpu_opts;

#define S gpu_opts
static const opt_spec OPTIONS[] = {
    OPT_STR_(S, "bench", "backend", "backend", backend, 0, "cuda (or auto)"),
    OPT_STR_(S, "bench", "shape", "shape", shapes, 0, "shapes, comma-separated: gpt2-124m, llama-124m, tiny (a dry run)"),
    OPT_CHOICE_(S, "bench", "mode", "mode", mode, "lora|full|both", "LoRA, full fine-tuning, or both"),
    OPT_STR_(S, "bench", "precision", "precision", precision, 0, "fp32 | tf32 | bf16 (both sides)"),
    OPT_INT_(S, "bench", "batch", "batch", batch, 1, 4096, 0, "sequences per step"),
    OPT_INT_(S, "bench", "seq", "seq", seq, 2, 1 << 20, 0, "tokens per sequence"),
    OPT_INT_(S, "bench", "steps", "steps", steps, 1, 10000, 0, "timed steps (the median is reported)"),
    OPT_INT_(S, "bench", "warmup", "warmup", warmup, 0, 10000, 0, "untimed steps first"),
    OPT_INT_(S, "bench", "rank", "rank", rank, 1, 65536, 0, "LoRA rank (alpha = 2 rank)"),
    OPT_INT_(S, "bench", "peak_size", "peak-size", peak_n, 16, 65536, 0, "size of the bf16 product whose rate MFU divides by"),
    OPT_BOOL_(S, "bench", "torch", "torch", torch, "require the HF + PEFT side (default: when python has torch with CUDA)"),
    OPT_BOOL_(S, "bench", "no_torch", "no-torch", no_torch, "lorascope only"),
    OPT_STR_(S, "bench", "torch_script", "torch-script", script, 0, "the HF + PEFT side's script"),
    OPT_STR_(S, "bench", "out", "out", out, 0, "also write the table as Markdown to this file"),
};
#undef S
static const opt_table TABLE = {OPTIONS, (int)(sizeof OPTIONS / sizeof *OPTIONS), "bench",
                                "lorascope bench --backend cuda"};

static void defaults(gpu_opts *o) {
    *o = (gpu_opts){.shapes = "gpt2-124m,llama-124m", .backend = "cuda", .precision = "bf16", .mode = "both",
                    .script = LS_PEFT_BENCH, .batch = 8, .seq = 1024, .steps = 10, .warmup = 2, .rank = 8,
                    .peak_n = 8192};
}

typedef struct {
    char shape[32];
    int full;
    bench_gpu_result ls;
    double hf_tok_s, hf_peak_mib; // NAN: not measured
} gpu_row;

static void usage(FILE *fp) {
    gpu_opts d;
    defaults(&d);
    fprintf(fp,
            "usage: lorascope bench --backend cuda [options]\n"
            "\n"
            "Training tokens/s and peak memory on the GPU, LoRA (alpha = 2 rank; c_attn for GPT-2, q, v for\n"
            "Llama) and full fine-tuning, random weights and tokens, the median of --steps steps after --warmup;\n"
            "each row beside HF transformers + PEFT on the same card (kernels/bench/bench_peft_gpu.py, run when\n"
            "$LORASCOPE_PYTHON, else /usr/bin/python3, has torch with CUDA; the same shapes, step and FLOP\n"
            "count). MFU: model FLOPs per token (full 6N + 12LTd, LoRA 4N + 12LTd) x tok/s over the card's\n"
            "bf16-storage product rate measured here (cuBLAS, bf16 A, B and C, fp32 accumulation, size\n"
            "--peak-size). Peak memory: what lorascope's backend allocated / torch.cuda.max_memory_allocated,\n"
            "neither counting the CUDA context.\n"
            "\n"
            "options (flag, key, description [default]):\n");
    opt_print_help(&TABLE, &d, fp);
}

static int parse_args(int argc, char **argv, gpu_opts *o) {
    defaults(o);
    if (opt_parse_argv(&TABLE, o, argc, argv, NULL, NULL, NULL, NULL)) return -1;
    if (o->torch && o->no_torch) return ls_fail("--torch and --no-torch: expected one of them");
    char *copy = ls_strdup(o->shapes), *save = NULL;
    ls_model_config cfg;
    int bad = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save))
        bad = bench_gpu_shape(t, &cfg);
    free(copy);
    return bad ? -1 : 0;
}

// HF + PEFT's row from bench_peft_gpu.py's TSV line. Returns 0 or -1.
static int run_hf(const gpu_opts *o, gpu_row *r) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' '%s' --shape %s --mode %s --precision %s --batch %d --seq %d --steps %d --warmup %d",
             cli_python(), o->script, r->shape, r->full ? "full" : "lora", o->precision, o->batch, o->seq, o->steps,
             o->warmup);
    FILE *p = popen(cmd, "r");
    if (!p) return ls_fail("cannot run %s", o->script);
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        char *f[16], *save = NULL;
        int n = 0;
        for (char *t = strtok_r(line, "\t\n", &save); t && n < 16; t = strtok_r(NULL, "\t\n", &save)) f[n++] = t;
        if (n == 15 && strcmp(f[0], "impl")) { // tokens_per_s, peak_mem_mib
            r->hf_tok_s = strtod(f[9], NULL);
            r->hf_peak_mib = strtod(f[11], NULL);
        }
    }
    int st = pclose(p);
    if (st != 0 || !isfinite(r->hf_tok_s)) return ls_fail("%s: HF + PEFT's run failed (exit %d)", o->script, st);
    return 0;
}

static void write_table(FILE *fp, const gpu_opts *o, const char *device, double peak, const gpu_row *rows, int n) {
    fprintf(fp,
            "lorascope %s (%s) on %s, --precision %s, B x T = %d x %d; tok/s = B*T / median of %d steps after %d "
            "warm-up, HF + PEFT (kernels/bench/bench_peft_gpu.py) run right after each lorascope row; ratio = "
            "lorascope / HF; peak MiB: the backend's allocations / torch.cuda.max_memory_allocated (no CUDA "
            "context); MFU: model FLOPs per token x tok/s over the card's bf16-storage product rate measured here, "
            "%.0f TFLOP/s (cuBLAS, %d^3, bf16 A, B, C, fp32 accumulation)\n\n",
            record_version(), record_git_commit(), device, o->precision, o->batch, o->seq, o->steps, o->warmup,
            peak / 1e12, o->peak_n);
    fprintf(fp, "| shape | mode | trainable | lorascope tok/s | HF + PEFT tok/s | ratio | lorascope peak MiB | "
                "HF peak MiB | memory ratio | LoRA / full memory (lorascope, HF) | lorascope MFU | HF MFU |\n"
                "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const gpu_row *r = &rows[i];
        double mib = r->ls.peak_bytes / 1048576.0, fpt = r->ls.flops_per_token;
        char hf[32] = "-", ratio[32] = "-", hfmem[32] = "-", memr[32] = "-", hfmfu[32] = "-", lf[64] = "-";
        if (isfinite(r->hf_tok_s)) {
            snprintf(hf, sizeof hf, "%.0f", r->hf_tok_s);
            snprintf(ratio, sizeof ratio, "%.2f", r->ls.tok_s / r->hf_tok_s);
            snprintf(hfmem, sizeof hfmem, "%.0f", r->hf_peak_mib);
            snprintf(memr, sizeof memr, "%.2f", mib / r->hf_peak_mib);
            snprintf(hfmfu, sizeof hfmfu, "%.3f", fpt * r->hf_tok_s / peak);
        }
        const gpu_row *full = NULL; // the same shape's full fine-tuning row
        for (int j = 0; j < n && !r->full; j++)
            if (rows[j].full && !strcmp(rows[j].shape, r->shape)) full = &rows[j];
        if (full && isfinite(r->hf_peak_mib) && isfinite(full->hf_peak_mib))
            snprintf(lf, sizeof lf, "%.2f, %.2f", r->ls.peak_bytes / full->ls.peak_bytes,
                     r->hf_peak_mib / full->hf_peak_mib);
        else if (full)
            snprintf(lf, sizeof lf, "%.2f, -", r->ls.peak_bytes / full->ls.peak_bytes);
        fprintf(fp, "| %s | %s | %zu | %.0f | %s | %s | %.0f | %s | %s | %s | %.3f | %s |\n", r->shape,
                r->full ? "full" : "LoRA", r->ls.trainable, r->ls.tok_s, hf, ratio, mib, hfmem, memr, lf,
                fpt * r->ls.tok_s / peak, hfmfu);
    }
}

// Every (shape, mode) row, HF's right after lorascope's. Returns the count or -1.
static int run_rows(const gpu_opts *o, const ls_backend *be, const ls_backend_device *dev, int torch,
                    gpu_row *rows) {
    int n = 0;
    char *copy = ls_strdup(o->shapes), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n >= 0; t = strtok_r(NULL, ",", &save))
        for (int f = 0; f < 2 && n >= 0 && n < MAX_ROWS; f++) {
            if (strcmp(o->mode, "both") && strcmp(o->mode, f ? "full" : "lora")) continue;
            gpu_row *r = &rows[n];
            *r = (gpu_row){.full = f, .hf_tok_s = NAN, .hf_peak_mib = NAN};
            snprintf(r->shape, sizeof r->shape, "%s", t);
            bench_gpu_request q = {t, f ? "full" : "lora", NULL, o->rank, o->batch, o->seq, o->steps, o->warmup};
            if (bench_gpu_run(&q, be, dev, &r->ls)) {
                n = -1;
                break;
            }
            fprintf(stderr, "  lorascope %-10s %-4s %.0f tok/s, peak %.0f MiB\n", t, q.mode, r->ls.tok_s,
                    r->ls.peak_bytes / 1048576.0);
            if (torch && run_hf(o, r)) n = -1;
            else if (torch) fprintf(stderr, "  HF + PEFT %-10s %-4s %.0f tok/s, peak %.0f MiB\n", t, q.mode,
                                    r->hf_tok_s, r->hf_peak_mib);
            if (n >= 0) n++;
        }
    free(copy);
    return n;
}

int cmd_bench_gpu(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    gpu_opts o;
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 2;
    }
    const ls_backend *be = ls_backend_by_name(o.backend);
    ls_backend_device dev;
    if (!be || ls_backend_set_precision(be, o.precision) || ls_backend_device_of(be, &dev)) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 1;
    }
    char probe[1100];
    snprintf(probe, sizeof probe, "'%.1000s' -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' "
             ">/dev/null 2>&1", cli_python());
    int torch = !o.no_torch && ls_exists(o.script) && system(probe) == 0;
    if (o.torch && !torch) {
        fprintf(stderr, "lorascope bench: --torch: %s with torch and CUDA, or %s, is missing\n", cli_python(), o.script);
        return 1;
    }
    double peak = dev.bf16_gemm_flops(o.peak_n);
    gpu_row rows[MAX_ROWS];
    int n = peak > 0 ? run_rows(&o, be, &dev, torch, rows) : ls_fail("the bf16 product peak could not be measured");
    if (n < 0) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 1;
    }
    char *table = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&table, &size);
    write_table(mem, &o, dev.name, peak, rows, n);
    fclose(mem);
    return cli_put_table(table, size, o.out);
}
