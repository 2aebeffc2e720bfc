// lorascope bench: training tokens/s of LoRA (r 8 on q, v) and of full
// fine-tuning on the shapes of src/train/bench.h, at each thread count, next
// to the same step in PyTorch (tests/reference/bench_torch.py), with the FLOP
// count per token and what it implies at the sgemm peak measured here.
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "base/util.h"
#include "train/bench.h"
#include "train/run.h"

#ifndef LS_TORCH_BENCH
#define LS_TORCH_BENCH "tests/reference/bench_torch.py"
#endif
#ifndef LS_DEFAULT_ASSETS
#define LS_DEFAULT_ASSETS "../shared/assets"
#endif

#define MAX_THREADS 8
#define MAX_SHAPES 8

static void usage(FILE *fp) {
    int n;
    const bench_shape *s = bench_shapes(&n);
    fprintf(fp,
            "usage: lorascope bench [--shape NAME[,NAME]] [--threads N[,N]] [--steps N] [--mode lora|full|both]\n"
            "                       [--torch | --no-torch] [--assets DIR] [--out FILE.md]\n"
            "\n"
            "  --shape LIST     shapes to run (default: all):\n");
    for (int i = 0; i < n; i++)
        fprintf(fp, "                     %-12s %s, dim %d, %d layers, %d/%d heads, hidden %d, vocab %d; B %d, T %d\n",
                s[i].name, ckpt_family_name(s[i].cfg.family), s[i].cfg.dim, s[i].cfg.n_layers, s[i].cfg.n_heads,
                s[i].cfg.n_kv_heads, s[i].cfg.hidden_dim, s[i].cfg.vocab_size, s[i].B, s[i].T);
    fprintf(fp,
            "  --threads LIST   thread counts (default 1,2)\n"
            "  --steps N        timed steps after one warm-up step; the fastest is reported (default 3)\n"
            "  --mode M         lora (r 8, alpha 16 on q and v), full, or both (default both)\n"
            "  --torch          also time the PyTorch reference (default: when /usr/bin/python3 has torch)\n"
            "  --no-torch       lorascope only\n"
            "  --assets DIR     shared assets (stories260K's real weights; default $LORASCOPE_ASSETS or %s)\n"
            "  --out FILE       also write the table as Markdown to FILE\n"
            "\n"
            "Columns: tokens/s (B*T per median step), PyTorch tokens/s and the ratio lorascope/PyTorch, LoRA's\n"
            "speed-up over full fine-tuning, GFLOP per token (bench.h) and the share of the sgemm peak reached.\n",
            LS_DEFAULT_ASSETS);
}

static int parse_list_int(const char *s, int *out, int max, const char *flag) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1024 || n == max || (*end && *end != ',')) {
            ls_fail("%s: expected a comma-separated list of up to %d integers in [1, 1024], found '%s'", flag, max, s);
            return -1;
        }
        out[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

typedef struct {
    const bench_shape *shape;
    int full, threads;
    bench_result ls;
    double torch_tok_s;  // NAN: not measured
} row;

static int torch_available(void) {
    return system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

// Runs the PyTorch reference once over rows (which share a thread count) with
// OpenBLAS at blas_threads; keeps the better tok/s in torch_tok_s.
static int run_torch(row *rows, int n, int steps, const char *script, int blas_threads) {
    cJSON *spec = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const bench_shape *s = rows[i].shape;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", s->name);
        cJSON_AddStringToObject(j, "family", ckpt_family_name(s->cfg.family));
        cJSON_AddNumberToObject(j, "dim", s->cfg.dim);
        cJSON_AddNumberToObject(j, "hidden", s->cfg.hidden_dim);
        cJSON_AddNumberToObject(j, "layers", s->cfg.n_layers);
        cJSON_AddNumberToObject(j, "heads", s->cfg.n_heads);
        cJSON_AddNumberToObject(j, "kv_heads", s->cfg.n_kv_heads);
        cJSON_AddNumberToObject(j, "vocab", s->cfg.vocab_size);
        cJSON_AddNumberToObject(j, "positions", s->cfg.max_seq_len);
        cJSON_AddBoolToObject(j, "tied", s->cfg.tied_embeddings);
        cJSON_AddNumberToObject(j, "B", s->B);
        cJSON_AddNumberToObject(j, "T", s->T);
        cJSON_AddStringToObject(j, "mode", rows[i].full ? "full" : "lora");
        cJSON_AddNumberToObject(j, "threads", rows[i].threads);
        cJSON_AddItemToArray(spec, j);
    }
    char *text = cJSON_PrintUnformatted(spec);
    cJSON_Delete(spec);
    size_t len = strlen(text) + strlen(script) + 128;
    char *cmd = ls_malloc(len);
    snprintf(cmd, len, "/usr/bin/python3 '%s' --steps %d --blas-threads %d --spec '%s'", script, steps, blas_threads,
             text);
    free(text);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) return ls_fail("cannot run %s", script);
    char line[4096];
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;
        const cJSON *name = cJSON_GetObjectItem(o, "name"), *mode = cJSON_GetObjectItem(o, "mode"),
                    *thr = cJSON_GetObjectItem(o, "threads"), *tok = cJSON_GetObjectItem(o, "tok_s");
        for (int i = 0; i < n && cJSON_IsString(name) && cJSON_IsString(mode) && cJSON_IsNumber(thr) &&
                        cJSON_IsNumber(tok);
             i++)
            if (!strcmp(rows[i].shape->name, name->valuestring) &&
                !strcmp(rows[i].full ? "full" : "lora", mode->valuestring) && rows[i].threads == thr->valueint) {
                if (!(rows[i].torch_tok_s >= tok->valuedouble)) rows[i].torch_tok_s = tok->valuedouble;
                got++;
            }
        fprintf(stderr, "  torch     %s", line);
        cJSON_Delete(o);
    }
    int st = pclose(p);
    if (st != 0 || got != n) return ls_fail("%s: the PyTorch reference failed (exit %d, %d of %d results)", script, st, got, n);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    int n_all;
    const bench_shape *all = bench_shapes(&n_all);
    const bench_shape *shapes[MAX_SHAPES];
    int n_shapes = 0, threads[MAX_THREADS] = {1, 2}, n_threads = 2, steps = 3, want_torch = -1, modes = 3;
    const char *assets = getenv("LORASCOPE_ASSETS") ? getenv("LORASCOPE_ASSETS") : LS_DEFAULT_ASSETS;
    const char *out = NULL, *script = LS_TORCH_BENCH;
    enum { O_SHAPE = 1, O_THREADS, O_STEPS, O_MODE, O_TORCH, O_NOTORCH, O_ASSETS, O_OUT, O_SCRIPT };
    static const struct option longopts[] = {
        {"shape", required_argument, 0, O_SHAPE}, {"threads", required_argument, 0, O_THREADS},
        {"steps", required_argument, 0, O_STEPS}, {"mode", required_argument, 0, O_MODE},
        {"torch", no_argument, 0, O_TORCH},       {"no-torch", no_argument, 0, O_NOTORCH},
        {"assets", required_argument, 0, O_ASSETS}, {"out", required_argument, 0, O_OUT},
        {"torch-script", required_argument, 0, O_SCRIPT}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_SHAPE: {
            char *copy = ls_strdup(optarg), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save)) {
                const bench_shape *s = bench_find_shape(t);
                if (!s) {
                    char names[256] = "";
                    for (int i = 0; i < n_all; i++)
                        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                                 all[i].name);
                    bad = ls_fail("--shape: expected one of %s, found '%s'", names, t);
                } else if (n_shapes < MAX_SHAPES) {
                    shapes[n_shapes++] = s;
                }
            }
            free(copy);
            break;
        }
        case O_THREADS:
            n_threads = parse_list_int(optarg, threads, MAX_THREADS, "--threads");
            bad = n_threads < 0;
            break;
        case O_STEPS: {
            int v[1];
            bad = parse_list_int(optarg, v, 1, "--steps") != 1;
            if (bad) ls_fail("--steps: expected an integer in [1, 1024], found '%s'", optarg);
            steps = v[0];
            break;
        }
        case O_MODE:
            if (!strcmp(optarg, "lora")) modes = 1;
            else if (!strcmp(optarg, "full")) modes = 2;
            else if (!strcmp(optarg, "both")) modes = 3;
            else bad = ls_fail("--mode: expected lora, full or both, found '%s'", optarg);
            break;
        case O_TORCH: want_torch = 1; break;
        case O_NOTORCH: want_torch = 0; break;
        case O_ASSETS: assets = optarg; break;
        case O_OUT: out = optarg; break;
        case O_SCRIPT: script = optarg; break;
        case ':': bad = ls_fail("%s: expected a value", argv[optind - 1]); break;
        default: bad = ls_fail("unknown option '%s' (see lorascope bench --help)", argv[optind - 1]); break;
        }
    }
    if (!bad && optind < argc) bad = ls_fail("unexpected argument '%s'", argv[optind]);
    if (bad) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 2;
    }
    if (!n_shapes)
        for (int i = 0; i < n_all && i < MAX_SHAPES; i++) shapes[n_shapes++] = &all[i];
    int have_torch = want_torch != 0 && torch_available() && ls_exists(script);
    if (want_torch == 1 && !have_torch) {
        fprintf(stderr, "lorascope bench: --torch: /usr/bin/python3 with torch, or %s, is missing\n", script);
        return 1;
    }

    double peak[MAX_THREADS];
    for (int t = 0; t < n_threads; t++) {
        peak[t] = bench_sgemm_gflops(threads[t]);
        fprintf(stderr, "sgemm 2048^3, %d thread%s: %.1f GFLOP/s\n", threads[t], threads[t] > 1 ? "s" : "", peak[t]);
    }
    row rows[MAX_SHAPES * MAX_THREADS * 2];
    int n_rows = 0;
    for (int s = 0; s < n_shapes; s++)
        for (int t = 0; t < n_threads; t++)
            for (int f = 0; f < 2; f++) {
                if (!(modes >> f & 1)) continue;
                row *r = &rows[n_rows];
                r->shape = shapes[s];
                r->full = f;
                r->threads = threads[t];
                r->torch_tok_s = NAN;
                if (bench_train(shapes[s], assets, f, threads[t], steps, &r->ls)) {
                    fprintf(stderr, "lorascope bench: %s\n", ls_error());
                    return 1;
                }
                fprintf(stderr, "  lorascope %-12s %-4s %d thr: %.3f s/step (median %.3f), %.0f tok/s\n",
                        shapes[s]->name, f ? "full" : "lora", threads[t], r->ls.step_s, r->ls.step_median_s,
                        r->ls.tok_s);
                // the reference right after, so that both see the same machine load;
                // with several threads also with OpenBLAS single-threaded, and the faster counts
                if (have_torch && (run_torch(r, 1, steps, script, threads[t]) ||
                                   (threads[t] > 1 && run_torch(r, 1, steps, script, 1)))) {
                    fprintf(stderr, "lorascope bench: %s\n", ls_error());
                    return 1;
                }
                n_rows++;
            }

    // the table (Markdown, so that it pastes into a note)
    char *table = NULL;
    size_t tsize = 0;
    FILE *mem = open_memstream(&table, &tsize);
    double load[3] = {0, 0, 0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = load[1] = load[2] = 0;
        fclose(lf);
    }
    fprintf(mem,
            "lorascope %s (%s), %s, %d CPUs, %s, load average %.2f; tok/s of the fastest of %d timed steps after 1 "
            "warm-up (both sides, each PyTorch row run right after its lorascope row; PyTorch with N > 1 threads: "
            "the faster of OpenBLAS at N and at 1 thread); step = forward, backward, clip 1.0, AdamW\n\n",
            run_version(), run_git_commit(), run_cpu_model(), run_n_cpus(), run_uname(), load[0], steps);
    for (int t = 0; t < n_threads; t++)
        fprintf(mem, "sgemm peak probe (2048^3 through the backend gemm), %d thread%s: %.1f GFLOP/s\n", threads[t], threads[t] > 1 ? "s" : "",
                peak[t]);
    fprintf(mem, "\n| shape | B x T | mode | trainable | thr | lorascope tok/s | PyTorch tok/s | ratio | "
                 "LoRA / full | GFLOP/tok | tok/s at peak | %% of peak |\n"
                 "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        int t = 0;
        while (threads[t] != r->threads) t++;
        double at_peak = peak[t] * 1e9 / r->ls.flops_per_token;
        char torch[32] = "-", ratio[32] = "-", speed[32] = "-";
        if (isfinite(r->torch_tok_s)) {
            snprintf(torch, sizeof torch, "%.0f", r->torch_tok_s);
            snprintf(ratio, sizeof ratio, "%.2f", r->ls.tok_s / r->torch_tok_s);
        }
        if (!r->full)
            for (int j = 0; j < n_rows; j++)
                if (rows[j].full && rows[j].shape == r->shape && rows[j].threads == r->threads)
                    snprintf(speed, sizeof speed, "%.2f", r->ls.tok_s / rows[j].ls.tok_s);
        fprintf(mem, "| %s%s | %d x %d | %s | %zu | %d | %.0f | %s | %s | %s | %.3f | %.0f | %.0f%% |\n",
                r->shape->name, r->ls.weights_real || !r->shape->asset ? "" : " (random)", r->shape->B,
                r->shape->T, r->full ? "full" : "lora", r->ls.trainable, r->threads, r->ls.tok_s, torch, ratio,
                speed, r->ls.flops_per_token / 1e9, at_peak, 100.0 * r->ls.tok_s / at_peak);
    }
    fclose(mem);
    fputs(table, stdout);
    int rc = 0;
    if (out) {
        rc = ls_write_file_atomic(out, table, tsize);
        if (rc) fprintf(stderr, "lorascope bench: %s\n", ls_error());
        else printf("\ntable: %s\n", out);
    }
    free(table);
    return rc ? 1 : 0;
}
