// lorascope bench --latency: the paper's Table 1 — the median latency of one
// forward pass (inference) of the base model, merged and unmerged LoRA,
// Adapter^H and Adapter^L at several batch sizes, with each one's overhead
// over the base in percent (train/bench_latency.h).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parse.h"
#include "base/util.h"
#include "cli/commands.h"
#include "engine/backend_registry.h"
#include "train/bench_latency.h"
#include "train/record.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: lorascope bench --latency [--shape NAME] [--batches LIST] [--seq-len N] [--repeats N]\n"
            "                       [--threads N] [--rank R] [--backend cpu|cuda|auto] [--assets DIR] [--out FILE.md]\n"
            "\n"
            "Table 1 of the LoRA paper: the median latency of one forward pass (inference: no gradient, no\n"
            "dropout; the LM head or the classifier included) of the base model, merged LoRA (r on q and v\n"
            "folded into W: the base's cost), unmerged LoRA (the same sites applied on the fly), Adapter^H\n"
            "(Houlsby: after attention and after the MLP) and Adapter^L (Lin: after the MLP), bottleneck r,\n"
            "with each one's overhead over the base in percent.\n"
            "\n"
            "  --shape NAME     a shape of `lorascope bench` (default gpt2-768; its checkpoint's weights when the\n"
            "                   assets hold it, random weights otherwise)\n"
            "  --batches LIST   batch sizes (default 1,2,4,8,16,32)\n"
            "  --seq-len N      tokens per sequence (default 128)\n"
            "  --repeats N      timed rounds per batch size after one warm-up round; a round runs every\n"
            "                   variant once (default 20)\n"
            "  --threads N      threads (default 1)\n"
            "  --rank R         LoRA rank and adapters' bottleneck size (default 8)\n"
            "  --backend B      cpu (default), cuda (the GPU; each pass waits for its kernels), or auto\n"
            "  --assets DIR     shared assets (default $LORASCOPE_ASSETS or %s)\n"
            "  --out FILE       also write the table as Markdown to FILE\n",
            LS_DEFAULT_ASSETS);
}

typedef struct {
    const bench_shape *shape;
    bench_latency_req req;
    const char *out;
    const char *backend; // --backend, resolved after the arguments
} latency_opts;

static int parse_args(int argc, char **argv, latency_opts *o) {
    *o = (latency_opts){.shape = bench_find_shape("gpt2-768"), .backend = "cpu",
                        .req = {.batches = {1, 2, 4, 8, 16, 32}, .n_batches = 6, .T = 128, .repeats = 20,
                                .threads = 1, .rank = 8}};
    o->req.assets = getenv("LORASCOPE_ASSETS") ? getenv("LORASCOPE_ASSETS") : LS_DEFAULT_ASSETS;
    enum { O_LATENCY = 1, O_SHAPE, O_BATCHES, O_SEQ, O_REPEATS, O_THREADS, O_RANK, O_ASSETS, O_OUT, O_BACKEND };
    static const struct option longopts[] = {
        {"latency", no_argument, 0, O_LATENCY},     {"shape", required_argument, 0, O_SHAPE},
        {"batches", required_argument, 0, O_BATCHES}, {"seq-len", required_argument, 0, O_SEQ},
        {"repeats", required_argument, 0, O_REPEATS}, {"threads", required_argument, 0, O_THREADS},
        {"rank", required_argument, 0, O_RANK},     {"assets", required_argument, 0, O_ASSETS},
        {"out", required_argument, 0, O_OUT},       {"backend", required_argument, 0, O_BACKEND},
        {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c, bad = 0;
    bench_latency_req *q = &o->req;
    while (!bad && (c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case O_LATENCY: break;
        case O_SHAPE:
            o->shape = bench_find_shape(optarg);
            if (!o->shape) bad = ls_fail("--shape: expected a shape of `lorascope bench --help`, found '%s'", optarg);
            break;
        case O_BATCHES:
            q->n_batches = ls_parse_int_list(optarg, "--batches", 1, 4096, q->batches, BENCH_LATENCY_MAX_BATCHES);
            bad = q->n_batches < 0;
            break;
        case O_SEQ: bad = ls_parse_int(optarg, "--seq-len", 1, 65536, &q->T); break;
        case O_REPEATS: bad = ls_parse_int(optarg, "--repeats", 1, 100000, &q->repeats); break;
        case O_THREADS: bad = ls_parse_int(optarg, "--threads", 1, 1024, &q->threads); break;
        case O_RANK: bad = ls_parse_int(optarg, "--rank", 1, 4096, &q->rank); break;
        case O_ASSETS: q->assets = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_BACKEND: o->backend = optarg; break;
        case ':': bad = ls_fail("%s: expected a value", argv[optind - 1]); break;
        default: bad = ls_fail("unknown option '%s' (see lorascope bench --latency --help)", argv[optind - 1]); break;
        }
    }
    if (!bad && optind < argc) bad = ls_fail("unexpected argument '%s'", argv[optind]);
    return bad ? -1 : 0;
}

// Table 1's layout: one row per variant, one column per batch size; a cell is
// the median ms and the overhead over the base's median at that batch size.
static void write_table(FILE *fp, const latency_opts *o, const bench_latency_result *r) {
    const bench_latency_req *q = &o->req;
    double load = 0;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf && fscanf(lf, "%lf", &load) != 1) load = 0;
    if (lf) fclose(lf);
    fprintf(fp,
            "lorascope %s (%s), %s, %d CPUs, %s, load average %.2f; backend %s; %d thread%s\n\n"
            "Inference latency of one forward pass (Table 1): shape %s (%s weights, %zu parameters), sequence "
            "length %d; median of %d rounds after 1 warm-up round, each round timing every variant once; "
            "LoRA r = %d on q, v (alpha %d); adapters' bottleneck r = %d; trainable: the adapters' parameters; ms (overhead over base)\n\n",
            record_version(), record_git_commit(), record_cpu_model(), record_n_cpus(), record_uname(), load,
            q->be ? q->be->name : "cpu", q->threads, q->threads > 1 ? "s" : "", o->shape->name, r->weights_real ? "the checkpoint's" : "random",
            r->params, q->T, q->repeats, q->rank, 2 * q->rank, q->rank);
    fprintf(fp, "| method | trainable |");
    for (int j = 0; j < q->n_batches; j++) fprintf(fp, " batch %d |", q->batches[j]);
    fprintf(fp, "\n|---|---|");
    for (int j = 0; j < q->n_batches; j++) fprintf(fp, "---|");
    fprintf(fp, "\n");
    for (int v = 0; v < BL_N_VARIANTS; v++) {
        fprintf(fp, "| %s | %zu |", bench_latency_variant_name(v), r->trainable[v]);
        for (int j = 0; j < q->n_batches; j++) {
            double ms = r->median_ms[v][j], base = r->median_ms[BL_BASE][j];
            if (!isfinite(ms)) fprintf(fp, " - |");
            else if (v == BL_BASE) fprintf(fp, " %.3f |", ms);
            else fprintf(fp, " %.3f (%+.1f%%) |", ms, 100.0 * (ms - base) / base);
        }
        fprintf(fp, "\n");
    }
}

int cmd_bench_latency(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    latency_opts o;
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 2;
    }
    o.req.be = ls_backend_by_name(o.backend);
    if (!o.req.be) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        return 1;
    }
    bench_latency_result *r = ls_malloc(sizeof *r);
    if (bench_latency(o.shape, &o.req, r)) {
        fprintf(stderr, "lorascope bench: %s\n", ls_error());
        free(r);
        return 1;
    }
    char *table = NULL;
    size_t tsize = 0;
    FILE *mem = open_memstream(&table, &tsize);
    write_table(mem, &o, r);
    fclose(mem);
    int rc = cli_put_table(table, tsize, o.out);
    free(r);
    return rc;
}
