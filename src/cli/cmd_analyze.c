// lorascope analyze: the analyses of Hu et al. 2021, Sec. 7 and App. H, over
// PEFT adapters and a base checkpoint.
//
//   subspace   φ(A1, A2, i, j) between two adapters (Eq. 4; Fig. 3, 4, 6, 7; H.2 for B)
//   amplify    ‖UᵀWV‖_F for ΔW, W, random and the amplification factor (Table 7, H.4)
//   w-vs-dw    φ between the top-i directions of W and the top-j of ΔW (Fig. 8)
//   spectrum   singular spectrum, effective rank, 90%-energy rank of ΔW (or of W)
//   intruders  intruder dimensions of W0 + ΔW against W0 (Shuttleworth et al. 2024)
//
// Every analysis writes <name>.tsv and <name>.md under --out, one TSV per grid
// or spectrum under --out/data/, and <name>.png/.svg through plots/*.gp.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis.h"
#include "cli/commands.h"
#include "cli/report.h"
#include "io/adapter.h"
#include "io/checkpoint.h"
#include "base/util.h"

#define MAX_ADAPTERS 16
#define MAX_MODULES 8

typedef struct {
    const char *kind;
    const char *base;
    const char *adapters[MAX_ADAPTERS];
    int n_adapters;
    const char *adapter2;
    const char *finetuned[MAX_ADAPTERS]; // full fine-tuning checkpoints: ΔW = W_ft - W0
    int n_finetuned;
    char modules[MAX_MODULES][16];
    int n_modules;
    int layer;            // -1: all layers
    int side_b;           // subspace on B (left singular vectors, App. H.2)
    const char *out;
    unsigned long long seed;
    int rank;             // amplify/w-vs-dw: directions to project on (0: the adapter's r)
    int imax;             // w-vs-dw: W directions (rows of the grid)
    int top_k;            // intruders
    double eps;
    double energy;        // spectrum: energy fraction for the energy rank
    int no_plot;
} analyze_opts;

// Everything loaded: the base (if any) and the adapters.
typedef struct {
    ls_checkpoint base;
    int have_base;
    lora_adapter adapters[MAX_ADAPTERS + 1];
    int n_adapters;
    ls_checkpoint finetuned[MAX_ADAPTERS];
    int n_finetuned;
    int n_layers;
} inputs;

// One ΔW per layer and module: a LoRA adapter (s·B·A) or a full fine-tuning
// checkpoint (W_ft - W0). Series 0..n_adapters-1 are the adapters (in the
// order given), then the fine-tuned checkpoints.
static int n_series(const inputs *in) { return in->n_adapters + in->n_finetuned; }

static void usage(FILE *fp) {
    fprintf(fp,
        "usage: lorascope analyze KIND --out DIR [options]\n"
        "\n"
        "kinds:\n"
        "  subspace   --adapter DIR --adapter2 DIR   φ(A1, A2, i, j) grids (Eq. 4; Fig. 3, 4; --side B: App. H.2)\n"
        "  amplify    --base PATH --adapter DIR...   Table 7: ‖UᵀWV‖_F for ΔW, W, random; amplification factor\n"
        "  w-vs-dw    --base PATH [--adapter DIR...] Fig. 8: φ(top-i of W, top-j of ΔW); W vs random if no adapter\n"
        "  spectrum   --adapter DIR... | --base PATH singular values, effective rank, 90%%-energy rank (of ΔW, or of W)\n"
        "  intruders  --base PATH --adapter DIR...   intruder dimensions of W0 + ΔW (Shuttleworth et al. 2024)\n"
        "\n"
        "options:\n"
        "  --base PATH       base checkpoint: llama2.c .bin, or HF dir (config.json + model.safetensors)\n"
        "  --adapter DIR     PEFT adapter dir (adapter_config.json + adapter_model.safetensors); repeatable\n"
        "  --adapter2 DIR    second adapter (subspace)\n"
        "  --finetuned PATH  a fully fine-tuned copy of the base (checkpoint, or lorascope's\n"
        "                    full/model.safetensors): ΔW = W_ft - W0 (amplify, w-vs-dw,\n"
        "                    spectrum, intruders); repeatable, after the adapters in tables\n"
        "  --module LIST     comma list of modules, default q,v (llama: q k v o gate up down;\n"
        "                    gpt2: q k v [row blocks of c_attn] c_attn c_proj c_fc mlp_proj)\n"
        "  --layer N|all     layer index or all (default all)\n"
        "  --side A|B        subspace: compare A (right singular vectors) or B (left), default A\n"
        "  --rank R          amplify/w-vs-dw: directions projected on (default: the adapter's r; 8 without one)\n"
        "  --imax N          w-vs-dw: top directions of W on the grid's i axis (default min(64, rank of W))\n"
        "  --top-k K --eps E intruders: vectors examined (10) and cosine threshold (0.5)\n"
        "  --energy F        spectrum: energy fraction of the energy rank (0.9)\n"
        "  --seed N          seed of the Gaussian random baselines (0)\n"
        "  --out DIR         output directory (created)\n"
        "  --no-plot         tables only\n");
}

// ----------------------------------------------------------------------------
// option parsing

static int parse_int(const char *s, const char *flag, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return ls_fail("%s: expected an integer in [%ld, %ld], found '%s'", flag, lo, hi, s);
    *out = v;
    return 0;
}

static int parse_double(const char *s, const char *flag, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v > lo && v <= hi))
        return ls_fail("%s: expected a number in (%g, %g], found '%s'", flag, lo, hi, s);
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, analyze_opts *o) {
    memset(o, 0, sizeof *o);
    o->layer = -1;
    o->top_k = AN_INTRUDER_DEFAULT_K;
    o->eps = AN_INTRUDER_DEFAULT_EPS;
    o->energy = 0.9;
    const char *modules = "q,v";
    enum { O_BASE = 1, O_ADAPTER, O_ADAPTER2, O_FINETUNED, O_MODULE, O_LAYER, O_SIDE, O_OUT, O_SEED, O_RANK, O_IMAX, O_TOPK,
           O_EPS, O_ENERGY, O_NOPLOT };
    static const struct option longopts[] = {
        {"base", required_argument, 0, O_BASE},       {"adapter", required_argument, 0, O_ADAPTER},
        {"adapter2", required_argument, 0, O_ADAPTER2}, {"module", required_argument, 0, O_MODULE},
        {"finetuned", required_argument, 0, O_FINETUNED},
        {"layer", required_argument, 0, O_LAYER},     {"side", required_argument, 0, O_SIDE},
        {"out", required_argument, 0, O_OUT},         {"seed", required_argument, 0, O_SEED},
        {"rank", required_argument, 0, O_RANK},       {"imax", required_argument, 0, O_IMAX},
        {"top-k", required_argument, 0, O_TOPK},      {"eps", required_argument, 0, O_EPS},
        {"energy", required_argument, 0, O_ENERGY},   {"no-plot", no_argument, 0, O_NOPLOT},
        {0, 0, 0, 0}};
    if (argc < 2 || argv[1][0] == '-') return ls_fail("expected an analysis kind (subspace, amplify, w-vs-dw, "
                                                      "spectrum, intruders) after 'analyze'");
    o->kind = argv[1];
    optind = 2;
    opterr = 0;
    int c;
    long v = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_BASE: o->base = optarg; break;
        case O_ADAPTER:
            if (o->n_adapters == MAX_ADAPTERS) return ls_fail("--adapter: at most %d adapters", MAX_ADAPTERS);
            o->adapters[o->n_adapters++] = optarg;
            break;
        case O_ADAPTER2: o->adapter2 = optarg; break;
        case O_FINETUNED:
            if (o->n_finetuned == MAX_ADAPTERS) return ls_fail("--finetuned: at most %d checkpoints", MAX_ADAPTERS);
            o->finetuned[o->n_finetuned++] = optarg;
            break;
        case O_MODULE: modules = optarg; break;
        case O_LAYER:
            if (!strcmp(optarg, "all")) o->layer = -1;
            else if (parse_int(optarg, "--layer", 0, 100000, &v)) return -1;
            else o->layer = (int)v;
            break;
        case O_SIDE:
            if (strcmp(optarg, "A") && strcmp(optarg, "B"))
                return ls_fail("--side: expected A or B, found '%s'", optarg);
            o->side_b = optarg[0] == 'B';
            break;
        case O_OUT: o->out = optarg; break;
        case O_SEED:
            if (parse_int(optarg, "--seed", 0, 2147483647L, &v)) return -1;
            o->seed = (unsigned long long)v;
            break;
        case O_RANK:
            if (parse_int(optarg, "--rank", 1, 1 << 20, &v)) return -1;
            o->rank = (int)v;
            break;
        case O_IMAX:
            if (parse_int(optarg, "--imax", 1, 1 << 20, &v)) return -1;
            o->imax = (int)v;
            break;
        case O_TOPK:
            if (parse_int(optarg, "--top-k", 1, 1 << 20, &v)) return -1;
            o->top_k = (int)v;
            break;
        case O_EPS:
            if (parse_double(optarg, "--eps", 0, 1, &o->eps)) return -1;
            break;
        case O_ENERGY:
            if (parse_double(optarg, "--energy", 0, 1, &o->energy)) return -1;
            break;
        case O_NOPLOT: o->no_plot = 1; break;
        case ':': return ls_fail("%s: expected a value", argv[optind - 1]);
        default: return ls_fail("unknown option '%s' (see lorascope analyze --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return ls_fail("unexpected argument '%s'", argv[optind]);
    // modules
    const char *p = modules;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof o->modules[0]) return ls_fail("--module: bad module name in '%s'", modules);
        if (o->n_modules == MAX_MODULES) return ls_fail("--module: at most %d modules", MAX_MODULES);
        memcpy(o->modules[o->n_modules], p, n);
        o->modules[o->n_modules++][n] = 0;
        p += n + (comma != NULL);
    }
    if (o->n_modules == 0) return ls_fail("--module: expected at least one module");
    if (!o->out) return ls_fail("--out: required (the directory for tables and figures)");
    const char *k = o->kind;
    if (!strcmp(k, "subspace")) {
        if (o->n_adapters != 1 || !o->adapter2)
            return ls_fail("subspace: expected one --adapter and one --adapter2");
        if (o->n_finetuned) return ls_fail("subspace: compares LoRA factors; --finetuned has none");
    } else if (!strcmp(k, "amplify") || !strcmp(k, "intruders")) {
        if (!o->base) return ls_fail("%s: --base is required (the pretrained W)", k);
        if (o->n_adapters + o->n_finetuned < 1) return ls_fail("%s: expected at least one --adapter or --finetuned", k);
    } else if (!strcmp(k, "w-vs-dw")) {
        if (!o->base) return ls_fail("w-vs-dw: --base is required (the pretrained W)");
    } else if (!strcmp(k, "spectrum")) {
        if (!o->base && o->n_adapters < 1) return ls_fail("spectrum: expected --adapter (ΔW) or --base (W)");
        if (o->n_finetuned && !o->base) return ls_fail("spectrum: --finetuned needs --base (ΔW = W_ft - W0)");
    } else {
        return ls_fail("unknown analysis '%s' (expected subspace, amplify, w-vs-dw, spectrum or intruders)", k);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// inputs

static int load_inputs(const analyze_opts *o, inputs *in) {
    memset(in, 0, sizeof *in);
    if (o->base) {
        if (ckpt_load(&in->base, o->base)) return -1;
        in->have_base = 1;
        in->n_layers = in->base.config.n_layers;
    }
    for (int i = 0; i < o->n_adapters + (o->adapter2 != NULL); i++) {
        const char *dir = i < o->n_adapters ? o->adapters[i] : o->adapter2;
        if (adapter_load(&in->adapters[i], dir)) return -1;
        in->n_adapters++;
        if (in->have_base && adapter_check_base(&in->adapters[i], &in->base)) return -1;
        int top = 0;
        for (int m = 0; m < in->adapters[i].n_modules; m++)
            if (in->adapters[i].modules[m].layer + 1 > top) top = in->adapters[i].modules[m].layer + 1;
        if (!in->have_base && top > in->n_layers) in->n_layers = top;
    }
    for (int i = 0; i < o->n_finetuned; i++) {
        if (ckpt_load_like(&in->finetuned[i], o->finetuned[i], &in->base)) return -1;
        in->n_finetuned++;
    }
    if (o->layer >= in->n_layers)
        return ls_fail("--layer %d out of range: the model has %d layers (0..%d)", o->layer, in->n_layers,
                       in->n_layers - 1);
    return 0;
}

static void free_inputs(inputs *in) {
    if (in->have_base) ckpt_free(&in->base);
    for (int i = 0; i < in->n_adapters; i++) adapter_free(&in->adapters[i]);
    for (int i = 0; i < in->n_finetuned; i++) ckpt_free(&in->finetuned[i]);
}

// ΔW = s·B·A for one module of an adapter, as double matrices (B: the rows of
// the chosen module, A: the whole input side).
typedef struct {
    an_mat A, B;
    double scale;
    int r;
} delta_factors;

static int get_delta(const lora_adapter *a, int layer, const char *module, delta_factors *f) {
    int row0, rows;
    const adapter_site *m = adapter_resolve(a, layer, module, &row0, &rows);
    if (!m) return -1;
    f->A = an_mat_from_float(m->A, m->r, m->d_in);
    f->B = an_mat_from_float(m->B + (size_t)row0 * m->r, rows, m->r);
    f->scale = m->scale;
    f->r = m->r;
    return 0;
}

static void free_delta(delta_factors *f) {
    an_mat_free(&f->A);
    an_mat_free(&f->B);
}

static int get_weight(const inputs *in, int layer, const char *module, an_mat *W) {
    int d_out, d_in;
    float *w = ckpt_module_weight(&in->base, layer, module, &d_out, &d_in);
    if (!w) return -1;
    *W = an_mat_from_float(w, d_out, d_in);
    free(w);
    return 0;
}

static int an_check(int rc, const char *what) {
    if (rc) return ls_fail("%s: %s", what, an_error());
    return 0;
}

// The dense ΔW of series si at (layer, module).
static int series_delta_dense(const inputs *in, int si, int layer, const char *module, an_mat *dW) {
    if (si < in->n_adapters) {
        delta_factors f = {0};
        int rc = get_delta(&in->adapters[si], layer, module, &f);
        if (!rc) rc = an_check(an_delta_dense(&f.B, &f.A, f.scale, dW), "ΔW = s·B·A");
        free_delta(&f);
        return rc;
    }
    const ls_checkpoint *ft = &in->finetuned[si - in->n_adapters];
    int d0, k0, d1, k1;
    float *w0 = ckpt_module_weight(&in->base, layer, module, &d0, &k0);
    float *w1 = w0 ? ckpt_module_weight(ft, layer, module, &d1, &k1) : NULL;
    if (!w1) {
        free(w0);
        return -1;
    }
    *dW = an_mat_alloc(d0, k0);
    for (size_t i = 0; i < (size_t)d0 * k0; i++) dW->data[i] = (double)w1[i] - (double)w0[i];
    free(w0);
    free(w1);
    return 0;
}

// The SVD of series si's ΔW: for LoRA through QR of B and Aᵀ (ΔW never
// formed), for full fine-tuning densely. *r gets the LoRA rank (0 for full FT).
static int series_delta_svd(const inputs *in, int si, int layer, const char *module, an_svd *out, int *r) {
    if (si < in->n_adapters) {
        delta_factors f = {0};
        int rc = get_delta(&in->adapters[si], layer, module, &f);
        if (!rc) rc = an_check(an_delta_svd(&f.B, &f.A, f.scale, out), "SVD of ΔW");
        if (r) *r = f.r;
        free_delta(&f);
        return rc;
    }
    an_mat dW = {0};
    int rc = series_delta_dense(in, si, layer, module, &dW);
    if (!rc) rc = an_check(an_svd_thin(&dW, out), "SVD of ΔW");
    an_mat_free(&dW);
    if (r) *r = 0;
    return rc;
}

// Paper-style names: "ΔWq" / "Wq"; GPT-2's long names are kept as they are.
static const char *pretty(const char *module) {
    static char buf[4][32];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 32, "%s", module);
    return b;
}

static int layer_begin(const analyze_opts *o) { return o->layer < 0 ? 0 : o->layer; }
static int layer_end(const analyze_opts *o, const inputs *in) { return o->layer < 0 ? in->n_layers : o->layer + 1; }

// A short label for series i: its rank if the adapters differ in rank, else
// rank and index; "full" (and an index if several) for fine-tuned checkpoints.
static const char *series_dir(const analyze_opts *o, const inputs *in, int i) {
    return i < in->n_adapters ? in->adapters[i].dir : o->finetuned[i - in->n_adapters];
}

static const char *adapter_label(const inputs *in, int i) {
    static char buf[8][48];
    static int k;
    char *b = buf[k++ % 8];
    if (i >= in->n_adapters) {
        if (in->n_finetuned > 1) snprintf(b, 48, "full_%d", i - in->n_adapters + 1);
        else snprintf(b, 48, "full");
        return b;
    }
    int same_r = 1;
    for (int j = 0; j < in->n_adapters; j++) same_r &= in->adapters[j].r == in->adapters[i].r;
    if (same_r && in->n_adapters > 1) snprintf(b, 48, "r%d_%d", in->adapters[i].r, i + 1);
    else snprintf(b, 48, "r%d", in->adapters[i].r);
    return b;
}

// Writes one φ grid as "i j phi" blocks (gnuplot `with image` layout).
static int write_grid(const char *dir, const char *name, const double *grid, int imax, int jmax, const char *what) {
    strbuf b = {0};
    sb_printf(&b, "# %s\n# i\tj\tphi\n", what);
    for (int i = 0; i < imax; i++) {
        for (int j = 0; j < jmax; j++) sb_printf(&b, "%d\t%d\t%.6f\n", i + 1, j + 1, grid[i * jmax + j]);
        sb_printf(&b, "\n");
    }
    int rc = report_write(dir, name, &b);
    sb_free(&b);
    return rc;
}

static double grid_mean(const double *g, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += g[i];
    return s / n;
}

// ----------------------------------------------------------------------------
// subspace (Fig. 3, 4, 6, 7; App. H.2)

static int analyze_subspace(const analyze_opts *o, inputs *in, const char *data_dir) {
    const lora_adapter *a1 = &in->adapters[0], *a2 = &in->adapters[1];
    char side = o->side_b ? 'B' : 'A';
    an_side an = o->side_b ? AN_SIDE_LEFT : AN_SIDE_RIGHT;
    strbuf tsv = {0}, md = {0};
    report_figure fig = {0};
    sb_printf(&tsv, "layer\tmodule\tside\tr1\tr2\tphi_1_1\tphi_1_r2\tphi_r1_r2\tmean_phi\tmean_phi_random\n");
    sb_printf(&md, "# Subspace similarity φ(%c1, %c2, i, j) (Hu et al. 2021, Eq. 4%s)\n\n"
                   "%c1: `%s` (r = %d), %c2: `%s` (r = %d). φ(1, r2): how much of %c1's top direction lies in "
                   "%c2's span. Random: two Gaussian matrices of the same shapes (seed %llu); E[φ] = max(i, j)/n.\n\n"
                   "| layer | module | φ(1,1) | φ(1,r2) | φ(r1,r2) | mean φ | mean φ, random |\n"
                   "|---:|:---|---:|---:|---:|---:|---:|\n",
              side, side, o->side_b ? "; App. H.2" : "; Fig. 3, 4", side, a1->dir, a1->r, side, a2->dir, a2->r, side,
              side, o->seed);
    int rc = 0;
    for (int l = layer_begin(o); l < layer_end(o, in) && !rc; l++) {
        for (int mi = 0; mi < o->n_modules && !rc; mi++) {
            const char *mod = o->modules[mi];
            delta_factors f1 = {0}, f2 = {0};
            if (get_delta(a1, l, mod, &f1) || get_delta(a2, l, mod, &f2)) {
                rc = -1;
                free_delta(&f1);
                break;
            }
            const an_mat *x1 = o->side_b ? &f1.B : &f1.A, *x2 = o->side_b ? &f2.B : &f2.A;
            int shared = o->side_b ? x1->rows : x1->cols;
            int imax = f1.r < shared ? f1.r : shared, jmax = f2.r < shared ? f2.r : shared;
            double *g = ls_malloc(sizeof(double) * imax * jmax), *rg = ls_malloc(sizeof(double) * imax * jmax);
            rc = an_check(an_subspace_similarity_grid(x1, x2, an, imax, jmax, g), "subspace similarity");
            if (!rc)
                rc = an_check(an_subspace_similarity_random_grid(x1->rows, x1->cols, x2->rows, x2->cols, an,
                                                                 o->seed + 1000003ull * l + mi, imax, jmax, rg),
                              "random baseline");
            char name[128], what[256];
            if (!rc) {
                snprintf(name, sizeof name, "subspace_%c_%s_L%d.tsv", side, mod, l);
                snprintf(what, sizeof what, "phi(%c1, %c2, i, j), module %s, layer %d", side, side, mod, l);
                rc = write_grid(data_dir, name, g, imax, jmax, what);
                char *path = ls_path_join(data_dir, name);
                fig_add(&fig, path, 0, "ΔW_{%s} layer %d", mod, l);
                free(path);
            }
            if (!rc) {
                snprintf(name, sizeof name, "subspace_%c_%s_L%d_random.tsv", side, mod, l);
                snprintf(what, sizeof what, "random baseline for phi(%c1, %c2, i, j), module %s, layer %d", side,
                         side, mod, l);
                rc = write_grid(data_dir, name, rg, imax, jmax, what);
            }
            if (!rc) {
                double m = grid_mean(g, imax * jmax), rm = grid_mean(rg, imax * jmax);
                sb_printf(&tsv, "%d\t%s\t%c\t%d\t%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", l, mod, side, imax, jmax, g[0],
                          g[jmax - 1], g[imax * jmax - 1], m, rm);
                sb_printf(&md, "| %d | %s | %.4f | %.4f | %.4f | %.4f | %.4f |\n", l, pretty(mod), g[0], g[jmax - 1],
                          g[imax * jmax - 1], m, rm);
            }
            free(g);
            free(rg);
            free_delta(&f1);
            free_delta(&f2);
        }
    }
    if (!rc) {
        // The random panel of Fig. 4: one grid is representative (all have the same law).
        char last[160];
        snprintf(last, sizeof last, "subspace_%c_%s_L%d_random.tsv", side, o->modules[0], layer_end(o, in) - 1);
        char *path = ls_path_join(data_dir, last);
        fig_add(&fig, path, 0, "Random Gaussian");
        free(path);
    }
    if (!rc) rc = report_write(o->out, "subspace.tsv", &tsv);
    if (!rc) rc = report_write(o->out, "subspace.md", &md);
    if (!rc && !o->no_plot) {
        int ncols = fig.n_files < o->n_modules + 1 ? fig.n_files : o->n_modules + 1;
        strbuf extra = {0};
        sb_printf(&extra, "ncols=%d; xlabel='j (%c2, r = %d)'; ylabel='i (%c1, r = %d)'", ncols, side, a2->r, side,
                  a1->r);
        sb_gp_assign(&extra, "suptitle", o->side_b ? "φ(B1, B2, i, j): left singular vectors (App. H.2)"
                                                   : "φ(A1, A2, i, j): right singular vectors (Eq. 4)");
        rc = report_plot_figure(o->out, "subspace", "heatmap.gp", &fig, extra.s);
        sb_free(&extra);
    }
    sb_free(&tsv);
    sb_free(&md);
    fig_free(&fig);
    return rc;
}

// ----------------------------------------------------------------------------
// amplify (Table 7, App. H.4)

static int analyze_amplify(const analyze_opts *o, inputs *in, const char *data_dir) {
    strbuf tsv = {0}, md = {0};
    report_figure fig = {0};
    sb_printf(&tsv, "adapter\tr\tlayer\tmodule\tproj_dW\tproj_W\tproj_random\tnorm_W\tnorm_dW\tamplification\n");
    sb_printf(&md, "# Amplification (Hu et al. 2021, Table 7, App. H.4)\n\n"
                   "‖UᵀWV‖_F with U, V the top-r singular vectors of ΔW, of W, or of a Gaussian random matrix "
                   "(seed %llu); amplification factor = ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔW‖_F. Base: `%s`.\n"
                   "Paper (GPT-3, layer 48, Wq): r = 4: 0.32 / 21.67 / 0.02, ‖Wq‖_F = 61.95, ‖ΔWq‖_F = 6.91, "
                   "factor ≈ 21.5; r = 64: 1.90 / 37.71 / 0.33, ‖ΔWq‖_F = 3.57, factor ≈ 1.9.\n\n",
              o->seed, o->base);
    int rc = 0;
    int ns = n_series(in);
    an_amplification *res = ls_calloc((size_t)ns * in->n_layers * o->n_modules, sizeof *res);
#define RES(a, l, m) res[((size_t)(a) * in->n_layers + (l)) * o->n_modules + (m)]
    for (int ai = 0; ai < ns && !rc; ai++)
        for (int l = layer_begin(o); l < layer_end(o, in) && !rc; l++)
            for (int mi = 0; mi < o->n_modules && !rc; mi++) {
                const char *mod = o->modules[mi];
                an_svd ds = {0};
                an_mat W = {0};
                int lora_r = 0;
                if (get_weight(in, l, mod, &W) || series_delta_svd(in, ai, l, mod, &ds, &lora_r)) {
                    rc = -1;
                } else {
                    // Full fine-tuning has no rank of its own: project on --rank (default 8) directions.
                    int r = o->rank ? o->rank : lora_r ? lora_r : 8;
                    int have = lora_r ? lora_r : ds.nsv;
                    if (r > have)
                        rc = ls_fail("--rank %d exceeds the rank %d of %s at layer %d", r, have,
                                     series_dir(o, in, ai), l);
                    else
                        rc = an_check(an_amplification_from_svd(&W, NULL, &ds, r, o->seed + l, &RES(ai, l, mi)),
                                      "amplification");
                }
                an_svd_free(&ds);
                an_mat_free(&W);
            }
    for (int l = layer_begin(o); l < layer_end(o, in) && !rc; l++)
        for (int mi = 0; mi < o->n_modules; mi++) {
            const char *mod = o->modules[mi];
            sb_printf(&md, "## layer %d, W%s\n\n|  |", l, mod);
            for (int ai = 0; ai < ns; ai++) {
                if (ai < in->n_adapters) sb_printf(&md, " r = %d: ΔW%s | W%s | Random |", RES(ai, l, mi).r, mod, mod);
                else sb_printf(&md, " full FT (top %d): ΔW%s | W%s | Random |", RES(ai, l, mi).r, mod, mod);
            }
            sb_printf(&md, "\n|:---|");
            for (int ai = 0; ai < ns; ai++) sb_printf(&md, "---:|---:|---:|");
            sb_printf(&md, "\n| ‖UᵀW%sV‖_F |", mod);
            for (int ai = 0; ai < ns; ai++) {
                const an_amplification *x = &RES(ai, l, mi);
                sb_printf(&md, " %.4f | %.4f | %.4f |", x->proj_dw, x->proj_w, x->proj_random);
                sb_printf(&tsv, "%s\t%d\t%d\t%s\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", series_dir(o, in, ai), x->r, l,
                          mod, x->proj_dw, x->proj_w, x->proj_random, x->w_norm, x->dw_norm, x->factor);
            }
            sb_printf(&md, "\n| ‖W%s‖_F |", mod);
            for (int ai = 0; ai < ns; ai++) sb_printf(&md, " %.4f | | |", RES(ai, l, mi).w_norm);
            sb_printf(&md, "\n| ‖ΔW%s‖_F |", mod);
            for (int ai = 0; ai < ns; ai++) sb_printf(&md, " %.4f | | |", RES(ai, l, mi).dw_norm);
            sb_printf(&md, "\n| amplification |");
            for (int ai = 0; ai < ns; ai++) sb_printf(&md, " %.2f | | |", RES(ai, l, mi).factor);
            sb_printf(&md, "\n\n");
        }
    // Amplification factor per layer: one panel per module, one line per adapter.
    for (int mi = 0; mi < o->n_modules && !rc; mi++) {
        fig_panel(&fig, "ΔW_{%s}", o->modules[mi]);
        for (int ai = 0; ai < ns && !rc; ai++) {
            strbuf d = {0};
            sb_printf(&d, "# layer\tamplification\tproj_dW\tnorm_dW (%s, module %s)\n", series_dir(o, in, ai),
                      o->modules[mi]);
            for (int l = layer_begin(o); l < layer_end(o, in); l++)
                sb_printf(&d, "%d\t%.6f\t%.6f\t%.6f\n", l, RES(ai, l, mi).factor, RES(ai, l, mi).proj_dw,
                          RES(ai, l, mi).dw_norm);
            char name[128];
            snprintf(name, sizeof name, "amplify_%s_%s.tsv", adapter_label(in, ai), o->modules[mi]);
            rc = report_write(data_dir, name, &d);
            sb_free(&d);
            char *path = ls_path_join(data_dir, name);
            if (ai < in->n_adapters) fig_add(&fig, path, mi + 1, "LoRA r = %d", in->adapters[ai].r);
            else fig_add(&fig, path, mi + 1, "full FT (%s)", adapter_label(in, ai));
            free(path);
        }
    }
#undef RES
    free(res);
    if (!rc) rc = report_write(o->out, "table7.tsv", &tsv);
    if (!rc) rc = report_write(o->out, "table7.md", &md);
    if (!rc && !o->no_plot) {
        rc = report_plot_figure(o->out, "amplification", "lines.gp", &fig,
                                "xlabel='layer'; xstep=1; ylabel='‖ΔW‖_F / ‖U_{ΔW}^T W V_{ΔW}‖_F'; logy=1");
    }
    sb_free(&tsv);
    sb_free(&md);
    fig_free(&fig);
    return rc;
}

// ----------------------------------------------------------------------------
// w-vs-dw (Fig. 8)

static int analyze_w_vs_dw(const analyze_opts *o, inputs *in, const char *data_dir) {
    strbuf tsv = {0}, md = {0};
    report_figure fig = {0};
    int ns = n_series(in);
    sb_printf(&tsv, "what\tr\tlayer\tmodule\timax\tjmax\tmean_phi\tmax_phi\tphi_r_r\n");
    sb_printf(&md, "# W vs ΔW (Hu et al. 2021, Fig. 8, App. H.4)\n\n"
                   "φ between the top-i left singular vectors of W and the top-j of ΔW (or of a Gaussian random "
                   "matrix of W's shape, seed %llu). Base: `%s`.\n\n"
                   "| ΔW | r | layer | module | mean φ | max φ | φ(r, r) |\n|:---|---:|---:|:---|---:|---:|---:|\n",
              o->seed, o->base);
    int rc = 0, ncols = 0;
    for (int l = layer_begin(o); l < layer_end(o, in) && !rc; l++)
        for (int mi = 0; mi < o->n_modules && !rc; mi++) {
            const char *mod = o->modules[mi];
            an_mat W = {0};
            an_svd ws = {0};
            if (get_weight(in, l, mod, &W) || an_check(an_svd_thin(&W, &ws), "SVD of W")) {
                an_mat_free(&W);
                rc = -1;
                break;
            }
            int imax = o->imax ? o->imax : (ws.nsv < 64 ? ws.nsv : 64);
            if (imax > ws.nsv) {
                rc = ls_fail("--imax %d exceeds the rank %d of W%s", imax, ws.nsv, mod);
            }
            ncols = (ns + 1) * o->n_modules;
            for (int ai = -1; ai < ns && !rc; ai++) {
                // ai = -1: the random baseline; its j range follows the first adapter's r.
                int ri = ai < 0 ? 0 : ai;
                int r = o->rank ? o->rank : ri < in->n_adapters ? in->adapters[ri].r : 8;
                double *g = ls_malloc(sizeof(double) * imax * r);
                char name[128], what[256], label[64];
                if (ai < 0) {
                    rc = an_check(an_w_vs_random_grid(&ws, AN_SIDE_LEFT, o->seed + l, imax, r, g), "W vs random");
                    snprintf(label, sizeof label, "random");
                } else {
                    an_svd ds = {0};
                    rc = series_delta_svd(in, ai, l, mod, &ds, NULL);
                    if (!rc && r > ds.nsv) rc = ls_fail("--rank %d exceeds the rank %d of ΔW", r, ds.nsv);
                    if (!rc) rc = an_check(an_w_vs_dw_grid(&ws, &ds, AN_SIDE_LEFT, imax, r, g), "W vs ΔW");
                    an_svd_free(&ds);
                    snprintf(label, sizeof label, "%s", adapter_label(in, ai));
                }
                if (!rc) {
                    snprintf(name, sizeof name, "w_vs_dw_%s_%s_L%d.tsv", label, mod, l);
                    snprintf(what, sizeof what, "phi(top-i of W, top-j of %s), module %s, layer %d",
                             ai < 0 ? "random" : "dW", mod, l);
                    rc = write_grid(data_dir, name, g, imax, r, what);
                    char *path = ls_path_join(data_dir, name);
                    if (ai < 0) fig_add(&fig, path, 0, "W_{%s} vs random, layer %d", mod, l);
                    else fig_add(&fig, path, 0, "W_{%s} vs ΔW_{%s} (r = %d), layer %d", mod, mod, r, l);
                    free(path);
                    double mean = grid_mean(g, imax * r), mx = 0;
                    for (int k = 0; k < imax * r; k++) mx = g[k] > mx ? g[k] : mx;
                    int rr = r < imax ? r : imax;
                    double prr = g[(rr - 1) * r + (r - 1)];
                    sb_printf(&tsv, "%s\t%d\t%d\t%s\t%d\t%d\t%.6f\t%.6f\t%.6f\n", ai < 0 ? "random" : series_dir(o, in, ai),
                              r, l, mod, imax, r, mean, mx, prr);
                    sb_printf(&md, "| %s | %d | %d | %s | %.4f | %.4f | %.4f |\n", ai < 0 ? "random" : label, r, l, mod,
                              mean, mx, prr);
                }
                free(g);
            }
            an_svd_free(&ws);
            an_mat_free(&W);
        }
    if (!rc) rc = report_write(o->out, "w_vs_dw.tsv", &tsv);
    if (!rc) rc = report_write(o->out, "w_vs_dw.md", &md);
    if (!rc && !o->no_plot) {
        strbuf extra = {0};
        sb_printf(&extra, "ncols=%d; xlabel='j (ΔW or random)'; ylabel='i (W)'", ncols);
        sb_gp_assign(&extra, "suptitle", "φ(W, ΔW, i, j): left singular vectors (Fig. 8)");
        rc = report_plot_figure(o->out, "w_vs_dw", "heatmap.gp", &fig, extra.s);
        sb_free(&extra);
    }
    sb_free(&tsv);
    sb_free(&md);
    fig_free(&fig);
    return rc;
}

// ----------------------------------------------------------------------------
// spectrum (beyond the paper)

static int analyze_spectrum(const analyze_opts *o, inputs *in, const char *data_dir) {
    strbuf tsv = {0}, md = {0};
    report_figure fig = {0};
    int of_w = n_series(in) == 0;
    sb_printf(&tsv, "what\tlayer\tmodule\tn\tsigma_1\tfrobenius\tnuclear\tstable_rank\teffective_rank\tenergy_rank\n");
    sb_printf(&md, "# Singular spectrum of %s\n\nEffective rank (Roy & Vetterli 2007), stable rank ‖·‖²_F/‖·‖²_2, and "
                   "the smallest rank holding %.0f%% of ‖·‖²_F.\n\n"
                   "| %s | layer | module | σ_1 | ‖·‖_F | effective rank | stable rank | %.0f%%-energy rank | n |\n"
                   "|:---|---:|:---|---:|---:|---:|---:|---:|---:|\n",
              of_w ? "the pretrained W" : "ΔW = s·B·A", 100 * o->energy, of_w ? "W" : "adapter", 100 * o->energy);
    int rc = 0, ns = of_w ? 1 : n_series(in);
    for (int si = 0; si < ns && !rc; si++)
        for (int mi = 0; mi < o->n_modules && !rc; mi++) {
            const char *mod = o->modules[mi];
            if (of_w) fig_panel(&fig, "W_{%s}", mod);
            else fig_panel(&fig, "ΔW_{%s} (%s)", mod, adapter_label(in, si));
            for (int l = layer_begin(o); l < layer_end(o, in) && !rc; l++) {
                an_svd s = {0};
                if (of_w) {
                    an_mat W = {0};
                    rc = get_weight(in, l, mod, &W);
                    if (!rc) rc = an_check(an_svd_thin(&W, &s), "SVD of W");
                    an_mat_free(&W);
                } else {
                    rc = series_delta_svd(in, si, l, mod, &s, NULL);
                }
                an_spectrum_summary sum;
                if (!rc) rc = an_check(an_spectrum_summarize(s.S, s.nsv, o->energy, &sum), "spectrum");
                if (!rc) {
                    const char *what = of_w ? "W" : adapter_label(in, si);
                    sb_printf(&tsv, "%s\t%d\t%s\t%d\t%.6g\t%.6g\t%.6g\t%.4f\t%.4f\t%d\n", of_w ? "W" : series_dir(o, in, si),
                              l, mod, sum.n, sum.spectral, sum.frobenius, sum.nuclear, sum.stable_rank,
                              sum.effective_rank, sum.energy_rank);
                    sb_printf(&md, "| %s | %d | %s | %.4g | %.4g | %.2f | %.2f | %d | %d |\n", what, l, mod,
                              sum.spectral, sum.frobenius, sum.effective_rank, sum.stable_rank, sum.energy_rank, sum.n);
                    strbuf d = {0};
                    double total = 0, cum = 0;
                    for (int k = 0; k < s.nsv; k++) total += s.S[k] * s.S[k];
                    sb_printf(&d, "# i\tsigma_i\tsigma_i/sigma_1\tcumulative energy (%s, module %s, layer %d)\n", what,
                              mod, l);
                    for (int k = 0; k < s.nsv; k++) {
                        cum += s.S[k] * s.S[k];
                        sb_printf(&d, "%d\t%.8g\t%.8g\t%.8g\n", k + 1, s.S[k], s.S[0] > 0 ? s.S[k] / s.S[0] : 0,
                                  total > 0 ? cum / total : 0);
                    }
                    char name[128];
                    snprintf(name, sizeof name, "spectrum_%s_%s_L%d.tsv", of_w ? "W" : what, mod, l);
                    rc = report_write(data_dir, name, &d);
                    sb_free(&d);
                    char *path = ls_path_join(data_dir, name);
                    fig_add(&fig, path, si * o->n_modules + mi + 1, "layer %d", l);
                    free(path);
                }
                an_svd_free(&s);
            }
        }
    if (!rc) rc = report_write(o->out, "spectrum.tsv", &tsv);
    if (!rc) rc = report_write(o->out, "spectrum.md", &md);
    if (!rc && !o->no_plot) {
        char extra[128];
        snprintf(extra, sizeof extra, "xlabel='i'; ylabel='σ_i'; logy=1; ncols=%d", o->n_modules);
        rc = report_plot_figure(o->out, "spectrum", "lines.gp", &fig, extra);
    }
    sb_free(&tsv);
    sb_free(&md);
    fig_free(&fig);
    return rc;
}

// ----------------------------------------------------------------------------
// intruders (Shuttleworth et al. 2024)

static int analyze_intruders(const analyze_opts *o, inputs *in, const char *data_dir) {
    strbuf tsv = {0}, md = {0}, items = {0};
    report_figure fig = {0};
    sb_printf(&tsv, "adapter\tlayer\tmodule\tk\teps\tintruders\n");
    sb_printf(&items, "adapter\tlayer\tmodule\tindex\tsigma\tmax_cos\tbest_match\tintruder\n");
    sb_printf(&md, "# Intruder dimensions (Shuttleworth et al. 2024)\n\nOf the top-%d left singular vectors of "
                   "W0 + ΔW, those whose max |cos| with every singular vector of W0 is below ε = %g. Base: `%s`.\n\n"
                   "| adapter | layer | module | intruders (of %d) | min max-cos |\n|:---|---:|:---|---:|---:|\n",
              o->top_k, o->eps, o->base, o->top_k);
    int rc = 0;
    for (int ai = 0; ai < n_series(in) && !rc; ai++)
        for (int mi = 0; mi < o->n_modules && !rc; mi++) {
            const char *mod = o->modules[mi];
            fig_panel(&fig, "W_{%s} + ΔW_{%s} (%s)", mod, mod, adapter_label(in, ai));
            for (int l = layer_begin(o); l < layer_end(o, in) && !rc; l++) {
                an_mat W = {0}, dW = {0};
                an_intruders res = {0};
                rc = series_delta_dense(in, ai, l, mod, &dW);
                if (!rc) rc = get_weight(in, l, mod, &W);
                if (!rc) {
                    int p = W.rows < W.cols ? W.rows : W.cols;
                    if (o->top_k > p) rc = ls_fail("--top-k %d exceeds the rank %d of W%s", o->top_k, p, mod);
                }
                if (!rc)
                    rc = an_check(an_intruder_dimensions(&W, &dW, o->top_k, o->eps, &res), "intruder dimensions");
                if (!rc) {
                    double minc = 1;
                    strbuf d = {0};
                    sb_printf(&d, "# index\tmax_cos\tsigma (%s, module %s, layer %d)\n", adapter_label(in, ai), mod, l);
                    for (int k = 0; k < res.k; k++) {
                        const an_intruder *it = &res.items[k];
                        minc = it->max_cos < minc ? it->max_cos : minc;
                        sb_printf(&items, "%s\t%d\t%s\t%d\t%.6g\t%.6f\t%d\t%d\n", series_dir(o, in, ai), l, mod,
                                  it->index + 1, it->sigma, it->max_cos, it->best_match + 1, it->is_intruder);
                        sb_printf(&d, "%d\t%.6f\t%.6g\n", it->index + 1, it->max_cos, it->sigma);
                    }
                    sb_printf(&tsv, "%s\t%d\t%s\t%d\t%g\t%d\n", series_dir(o, in, ai), l, mod, res.k, res.eps, res.count);
                    sb_printf(&md, "| %s | %d | %s | %d | %.4f |\n", adapter_label(in, ai), l, mod, res.count, minc);
                    char name[128];
                    snprintf(name, sizeof name, "intruders_%s_%s_L%d.tsv", adapter_label(in, ai), mod, l);
                    rc = report_write(data_dir, name, &d);
                    sb_free(&d);
                    char *path = ls_path_join(data_dir, name);
                    fig_add(&fig, path, ai * o->n_modules + mi + 1, "layer %d", l);
                    free(path);
                }
                an_intruders_free(&res);
                an_mat_free(&W);
                an_mat_free(&dW);
            }
        }
    if (!rc) rc = report_write(o->out, "intruders.tsv", &tsv);
    if (!rc) rc = report_write(o->out, "intruders_vectors.tsv", &items);
    if (!rc) rc = report_write(o->out, "intruders.md", &md);
    if (!rc && !o->no_plot) {
        char extra[256];
        snprintf(extra, sizeof extra, "xlabel='singular vector i of W_0 + ΔW'; ylabel='max_j |cos(u_i, u^0_j)|'; "
                 "hline=%g; ymin=0; ymax=1.05; ncols=%d", o->eps, o->n_modules);
        rc = report_plot_figure(o->out, "intruders", "lines.gp", &fig, extra);
    }
    sb_free(&tsv);
    sb_free(&md);
    sb_free(&items);
    fig_free(&fig);
    return rc;
}

// ----------------------------------------------------------------------------

int cmd_analyze(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    analyze_opts o;
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr, "lorascope analyze: %s\n", ls_error());
        return 2;
    }
    inputs in;
    int rc = load_inputs(&o, &in);
    char *data_dir = ls_path_join(o.out, "data");
    if (!rc) rc = ls_mkdir_p(data_dir);
    if (!rc) {
        if (!strcmp(o.kind, "subspace")) rc = analyze_subspace(&o, &in, data_dir);
        else if (!strcmp(o.kind, "amplify")) rc = analyze_amplify(&o, &in, data_dir);
        else if (!strcmp(o.kind, "w-vs-dw")) rc = analyze_w_vs_dw(&o, &in, data_dir);
        else if (!strcmp(o.kind, "spectrum")) rc = analyze_spectrum(&o, &in, data_dir);
        else rc = analyze_intruders(&o, &in, data_dir);
    }
    free_inputs(&in);
    if (rc) {
        report_rollback();
        rmdir(data_dir); // only if empty: never leave a half-made output tree behind
        rmdir(o.out);
        free(data_dir);
        fprintf(stderr, "lorascope analyze %s: %s\n", o.kind, ls_error());
        return 1;
    }
    free(data_dir);
    report_list();
    return 0;
}
