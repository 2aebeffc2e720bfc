// lorascope bench: training tokens/s of LoRA (r 8 on q, v) and of full
// fine-tuning on the shapes of src/train/bench.h, at each thread count, next
// to the same step in PyTorch (tests/reference/bench_torch.py, in its fastest
// thread layout); medians with their spread, and the share of the sgemm peak
// measured here that each side reaches. `bench --latency` is Table 1's
// inference latency (cmd_bench_latency.c).
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parse.h"
#include "base/util.h"
#include "cli/commands.h"
#include "train/bench.h"
#include "train/record.h"

#ifndef LS_TORCH_BENCH
#define LS_TORCH_BENCH "tests/reference/bench_torch.py"
#endif
#define MAX_THREADS 8
#define MAX_SHAPES 8

static void usage(FILE *fp) {
    int n;
    const bench_shape *s = bench_shapes(&n);
    fprintf(fp,
            "usage: lorascope bench [--shape NAME[,NAME]] [--threads N[,N]] [--steps N] [--mode lora|full|both]\n"
            "                       [--torch | --no-torch] [--assets DIR] [--out FILE.md]\n"
            "       lorascope bench --latency ...   Table 1's inference latency (see bench --latency --help)\n"
            "       lorascope bench --backend cuda ...  the GPU against HF + PEFT (see bench --backend cuda --help)\n\n"
            "  --shape LIST     shapes to run (default: all):\n");
    for (int i = 0; i < n; i++)
        fprintf(fp, "                     %-12s %s, dim %d, %d layers, %d/%d heads, hidden %d, vocab %d; B %d, T %d\n",
                s[i].name, ckpt_family_name(s[i].cfg.family), s[i].cfg.dim, s[i].cfg.n_layers, s[i].cfg.n_heads,
                s[i].cfg.n_kv_heads, s[i].cfg.hidden_dim, s[i].cfg.vocab_size, s[i].B, s[i].T);
    fprintf(fp,
            "  --threads LIST   thread counts (default 1,2)\n"
            "  --steps N        timed steps after one warm-up step, on both sides; the median is reported with\n"
            "                   the fastest and slowest (default 5)\n"
            "  --mode M         lora (r 8, alpha 16 on q and v), full, or both (default both)\n"
            "  --torch          also time the PyTorch reference (default: when $LORASCOPE_PYTHON, or\n"
            "                   /usr/bin/python3, has torch)\n"
            "  --no-torch       lorascope only\n"
            "  --assets DIR     shared assets (stories260K's real weights; default $LORASCOPE_ASSETS or %s)\n"
            "  --out FILE       also write the table as Markdown to FILE\n"
            "\n"
            "The step is the training loop's own (train/step.h): forward, backward, clip 1.0, AdamW.\n"
            "PyTorch runs each row under every thread layout it allows (torch's OpenMP and OpenBLAS pools at N,\n"
            "the same with OMP_WAIT_POLICY=PASSIVE, torch at 1 and OpenBLAS at N, torch at N and OpenBLAS at 1)\n"
            "and is reported in the fastest, which the table names.\n"
            "Columns: tokens/s = B*T / median step (range: slowest-fastest step); %% of peak = tok/s x GFLOP/tok over\n"
            "the row's sgemm peak: the median of 2048^3 products through the same gemm, one right before each\n"
            "timed step (same FLOP count and peak for both sides); ratio = lorascope\n"
            "median / PyTorch median; LoRA / full = lorascope's LoRA median over its full fine-tuning median.\n",
            LS_DEFAULT_ASSETS);
}

typedef struct {
    const bench_shape *shape;
    int full, threads;
    bench_result ls;
    double torch_tok_s, torch_min, torch_max;  // NAN: not measured
    char layout[64];                           // PyTorch's fastest thread layout
} row;

// The row's job for bench_torch.py, as JSON (free with free()).
static char *torch_job(const row *r) {
    const bench_shape *s = r->shape;
    cJSON *spec = cJSON_CreateArray(), *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", s->name);
    cJSON_AddStringToObject(j, "family", ckpt_family_name(s->cfg.family));
    const char *keys[] = {"dim", "hidden", "layers", "heads", "kv_heads", "vocab", "positions", "B", "T", "threads"};
    int vals[] = {s->cfg.dim,        s->cfg.hidden_dim,  s->cfg.n_layers, s->cfg.n_heads, s->cfg.n_kv_heads,
                  s->cfg.vocab_size, s->cfg.max_seq_len, s->B,            s->T,            r->threads};
    for (int i = 0; i < 10; i++) cJSON_AddNumberToObject(j, keys[i], vals[i]);
    cJSON_AddBoolToObject(j, "tied", s->cfg.tied_embeddings);
    cJSON_AddStringToObject(j, "mode", r->full ? "full" : "lora");
    cJSON_AddItemToArray(spec, j);
    char *text = cJSON_PrintUnformatted(spec);
    cJSON_Delete(spec);
    return text;
}

// Times the row's step in PyTorch (bench_torch.py tries the thread layouts and
// returns the fastest by median). Returns 0 or -1 with ls_error().
static int run_torch(row *r, int steps, const char *script) {
    char *job = torch_job(r);
    size_t len = strlen(job) + strlen(script) + strlen(cli_python()) + 64;
    char *cmd = ls_malloc(len);
    snprintf(cmd, len, "'%s' '%s' --steps %d --spec '%s'", cli_python(), script, steps, job);
    free(job);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) return ls_fail("cannot run %s", script);
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *layout = cJSON_GetObjectItem(o, "layout");
        if (o && cJSON_IsString(layout)) { // NAN where a number is missing (cJSON_GetNumberValue)
            r->torch_tok_s = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "tok_s"));
            r->torch_min = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "tok_s_min"));
            r->torch_max = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "tok_s_max"));
            snprintf(r->layout, sizeof r->layout, "%s", layout->valuestring);
        }
        cJSON_Delete(o);
    }
    int st = pclose(p);
    if (st != 0 || !isfinite(r->torch_tok_s))
        return ls_fail("%s: the PyTorch reference failed (exit %d)", script, st);
    fprintf(stderr, "  PyTorch   %-12s %-4s %d thr: %.0f tok/s (median; %.0f-%.0f), fastest layout: %s\n",
            r->shape->name, r->full ? "full" : "lora", r->threads, r->torch_tok_s, r->torch_min, r->torch_max,
            r->layout);
    return 0;
}

typedef struct {
    const bench_shape *shapes[MAX_SHAPES];
    int n_shapes, threads[MAX_THREADS], n_threads, steps, want_torch, modes;
    const char *assets, *out, *script;
} bench_opts;

// --shape LIST into o->shapes.
static int parse_shapes(const char *arg, bench_opts *o) {
    int n_all, bad = 0;
    const bench_shape *all = bench_shapes(&n_all);
    char *copy = ls_strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save)) {
        const bench_shape *s = bench_find_shape(t);
        if (!s) {
            char names[256] = "";
            for (int i = 0; i < n_all; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", all[i].name);
            bad = ls_fail("--shape: expected one of %s, found '%s'", names, t);
        } else if (o->n_shapes < MAX_SHAPES) {
            o->shapes[o->n_shapes++] = s;
        }
    }
    free(copy);
    return bad;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.threads = {1, 2}, .n_threads = 2, .steps = 5, .want_torch = -1, .modes = 3,
                      .assets = getenv("LORASCOPE_ASSETS") ? getenv("LORASCOPE_ASSETS") : LS_DEFAULT_ASSETS,
                      .script = LS_TORCH_BENCH};
    enum { O_SHAPE = 1, O_THREADS, O_STEPS, O_MODE, O_TORCH, O_NOTORCH, O_ASSETS, O_OUT, O_SCRIPT, O_BACKEND };
    static const struct option longopts[] = {
        {"shape", required_argument, 0, O_SHAPE}, {"threads", required_argument, 0, O_THREADS},
        {"steps", required_argument, 0, O_STEPS}, {"mode", required_argument, 0, O_MODE},
        {"torch", no_argument, 0, O_TORCH},       {"no-torch", no_argument, 0, O_NOTORCH},
        {"assets", required_argument, 0, O_ASSETS}, {"out", required_argument, 0, O_OUT},
        {"torch-script", required_argument, 0, O_SCRIPT}, {"backend", required_argument, 0, O_BACKEND},
        {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_SHAPE: bad = parse_shapes(optarg, o); break;
        case O_THREADS:
            o->n_threads = ls_parse_int_list(optarg, "--threads", 1, 1024, o->threads, MAX_THREADS);
            bad = o->n_threads < 0;
            break;
        case O_STEPS: bad = ls_parse_int(optarg, "--steps", 1, 1024, &o->steps); break;
        case O_MODE:
            o->modes = !strcmp(optarg, "lora") ? 1 : !strcmp(optarg, "full") ? 2 : !strcmp(optarg, "both") ? 3 : 0;
            if (!o->modes) bad = ls_fail("--mode: expected lora, full or both, found '%s'", optarg);
            break;
        case O_TORCH: o->want_torch = 1; break;
        case O_NOTORCH: o->want_torch = 0; break;
        case O_ASSETS: o->assets = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_SCRIPT: o->script = optarg; break;
        case O_BACKEND: break; // cpu (cuda and auto went to cmd_bench_gpu)
        case ':': bad = ls_fail("%s: expected a value", argv[optind - 1]); break;
        default: bad = ls_fail("unknown option '%s' (see lorascope bench --help)", argv[optind - 1]); break;
        }
    }
    if (!bad && optind < argc) bad = ls_fail("unexpected argument '%s'", argv[optind]);
    int n_all;
    const bench_shape *all = bench_shapes(&n_all);
    if (!o->n_shapes)
        for (int i = 0; i < n_all && i < MAX_SHAPES; i++) o->shapes[o->n_shapes++] = &all[i];
    return bad ? -1 : 0;
}

// "545 (530-551)": the median tok/s with those of the slowest and the fastest step.
static const char *spread(char *buf, size_t size, double med, double lo, double hi) {
    if (!isfinite(med)) snprintf(buf, size, "-");
    else snprintf(buf, size, "%.0f (%.0f-%.0f)", med, lo, hi);
    return buf;
}

char *openblas_get_corename(void); // OpenBLAS

// The Markdown table of the rows (so that it pastes into a note), into fp.
static void write_table(FILE *fp, const bench_opts *o, const row *rows, int n_rows) {
    double load = 0;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf && fscanf(lf, "%lf", &load) != 1) load = 0;
    if (lf) fclose(lf);
    fprintf(fp,
            "lorascope %s (%s), %s, %d CPUs, %s, load average %.2f; tok/s = B*T / median of %d timed steps after "
            "1 warm-up (range: slowest-fastest step), both sides; step = the training loop's (forward, backward, clip "
            "1.0, AdamW); PyTorch in the fastest of its thread layouts, run right after its lorascope row; ratio = "
            "median / median; %% of peak: tok/s x GFLOP/tok over the row's sgemm peak, the median of 2048^3 products "
            "through the backend gemm (OpenBLAS core %s) run right before each timed step (range: slowest-fastest), "
            "the same FLOP count and peak for both sides; products alone: the %% of peak if only the step's matrix "
            "products and attention ran (recorded in its warm-up step, replayed alone, each replay after a probe of "
            "its own): the most any other op's speed-up can give\n\n",
            record_version(), record_git_commit(), record_cpu_model(), record_n_cpus(), record_uname(), load, o->steps,
            openblas_get_corename());
    fprintf(fp, "| shape | B x T | mode | trainable | thr | lorascope tok/s | %% of peak | sgemm GFLOP/s | PyTorch tok/s "
                "| %% of peak | PyTorch layout | ratio | LoRA / full | GFLOP/tok | tok/s at peak | products alone |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        double at_peak = r->ls.peak_gflops * 1e9 / r->ls.flops_per_token;
        char ls[64], torch[64], torch_pct[32] = "-", ratio[32] = "-", speed[32] = "-";
        if (isfinite(r->torch_tok_s)) {
            snprintf(torch_pct, sizeof torch_pct, "%.0f%%", 100.0 * r->torch_tok_s / at_peak);
            snprintf(ratio, sizeof ratio, "%.2f", r->ls.tok_s / r->torch_tok_s);
        }
        for (int j = 0; j < n_rows && !r->full; j++)
            if (rows[j].full && rows[j].shape == r->shape && rows[j].threads == r->threads)
                snprintf(speed, sizeof speed, "%.2f", r->ls.tok_s / rows[j].ls.tok_s);
        char pk[64];
        double alone = r->ls.flops_per_token * r->shape->B * r->shape->T / r->ls.products_s / (r->ls.products_peak * 1e9);
        fprintf(fp, "| %s%s | %d x %d | %s | %zu | %d | %s | %.0f%% | %s | %s | %s | %s | %s | %s | %.3f | %.0f | %.0f%% |\n",
                r->shape->name, r->ls.weights_real || !r->shape->asset ? "" : " (random)", r->shape->B, r->shape->T,
                r->full ? "full" : "lora", r->ls.trainable, r->threads,
                spread(ls, sizeof ls, r->ls.tok_s, r->ls.tok_s_min, r->ls.tok_s_max), 100.0 * r->ls.tok_s / at_peak,
                spread(pk, sizeof pk, r->ls.peak_gflops, r->ls.peak_min, r->ls.peak_max),
                spread(torch, sizeof torch, r->torch_tok_s, r->torch_min, r->torch_max), torch_pct,
                isfinite(r->torch_tok_s) ? r->layout : "-", ratio, speed, r->ls.flops_per_token / 1e9, at_peak,
                100.0 * alone);
    }
}

// Times every (shape, threads, mode) row, each PyTorch row right after its
// lorascope row so that both see the same machine load. Returns the row count or -1.
static int run_rows(const bench_opts *o, int torch, row *rows) {
    int n = 0;
    for (int s = 0; s < o->n_shapes; s++)
        for (int t = 0; t < o->n_threads; t++)
            for (int f = 0; f < 2; f++) {
                if (!(o->modes >> f & 1)) continue;
                row *r = &rows[n++];
                *r = (row){.shape = o->shapes[s], .full = f, .threads = o->threads[t]};
                r->torch_tok_s = r->torch_min = r->torch_max = NAN;
                if (bench_train(r->shape, o->assets, f, r->threads, o->steps, &r->ls)) return -1;
                // the FLOPs the step's products really ran over the bench's count: 1 when the count is right
                double counted = r->ls.flops_per_token * r->shape->B * r->shape->T;
                fprintf(stderr, "  lorascope %-12s %-4s %d thr: %.0f tok/s (median; %.0f-%.0f); its products ran %.4f x "
                        "the counted FLOPs\n", r->shape->name, f ? "full" : "lora", r->threads, r->ls.tok_s,
                        r->ls.tok_s_min, r->ls.tok_s_max, r->ls.step_flops / counted);
                if (torch && run_torch(r, o->steps, o->script)) return -1;
            }
    return n;
}

int cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++) // --latency: Table 1; --backend cuda|auto: the GPU's table (cmd_bench_gpu.c)
        if (!strcmp(argv[i], "--latency")) return cmd_bench_latency(argc, argv);
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--backend") && strcmp(argv[i + 1], "cpu")) return cmd_bench_gpu(argc, argv);
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    bench_opts o;
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 2;
    }
    char probe[1100];
    snprintf(probe, sizeof probe, "'%.1000s' -c 'import torch' >/dev/null 2>&1", cli_python());
    int torch = o.want_torch != 0 && ls_exists(o.script) && system(probe) == 0;
    if (o.want_torch == 1 && !torch) {
        fprintf(stderr, "lorascope bench: --torch: %s with torch, or %s, is missing\n", cli_python(), o.script);
        return 1;
    }
    row rows[MAX_SHAPES * MAX_THREADS * 2];
    int n_rows = run_rows(&o, torch, rows);
    if (n_rows < 0) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 1;
    }
    char *table = NULL;
    size_t tsize = 0;
    FILE *mem = open_memstream(&table, &tsize);
    write_table(mem, &o, rows, n_rows);
    fclose(mem);
    int rc = cli_put_table(table, tsize, o.out);
    return rc;
}
