// lorascope analyze: the analyses of Hu et al. 2021, Sec. 7 and App. H, over
// PEFT adapters and a base checkpoint (src/analyze/analyze.h). This file reads
// the flags into an analyze_request; exit 2 for a bad command line, 1 for a
// failed analysis.
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "analyze/analyze.h"
#include "base/util.h"
#include "cli/commands.h"
#include "report/report.h"

static void usage(FILE *fp) {
    fprintf(fp,
        "usage: lorascope analyze KIND --out DIR [options]\n"
        "\n"
        "kinds:\n"
        "  subspace   --adapter DIR --adapter2 DIR   φ(A1, A2, i, j) grids (Eq. 4; Fig. 3, 4; --side B: the same for B);\n"
        "             --adapter DIR... (2 or more)   every pair (seed x seed, rank x rank), with a summary\n"
        "  amplify    --base PATH --adapter DIR...   Table 7: ‖UᵀWV‖_F for ΔW, W, random; amplification factor\n"
        "  w-vs-dw    --base PATH [--adapter DIR...] Fig. 8: φ(top-i of W, top-j of ΔW); W vs random if no adapter\n"
        "  spectrum   --adapter DIR... | --base PATH singular values, effective rank, 90%%-energy rank (of ΔW, or of W)\n"
        "  intruders  --base PATH --adapter DIR...   intruder dimensions of W0 + ΔW (Shuttleworth et al. 2024)\n"
        "\n"
        "options:\n"
        "  --base PATH       base checkpoint: llama2.c .bin, HF dir (config.json + model.safetensors) or\n"
        "                    llama GGUF (W is its dequantized weight); for an adapter of any other\n"
        "                    architecture, any HF dir (one or sharded safetensors): W by module name\n"
        "  --adapter DIR     PEFT adapter dir (adapter_config.json + adapter_model.safetensors) of any\n"
        "                    architecture (LoRA, rsLoRA, DoRA); repeatable\n"
        "  --adapter2 DIR    second adapter (subspace)\n"
        "  --pair I,J        subspace over these pairs of --adapter's only (1-based; repeatable;\n"
        "                    default with 2+ --adapter and no --adapter2: every pair): each pair's\n"
        "                    φ, their mean and 95%% t-interval (STEM_pairs.tsv, STEM_summary.tsv/.md)\n"
        "                    φ of A - A0 and of A0 (at initialisation) are added wherever the runs\n"
        "                    saved adapter_init.safetensors beside adapter/\n"
        "  --finetuned PATH  a fully fine-tuned copy of the base (checkpoint, or lorascope's\n"
        "                    full/model.safetensors): ΔW = W_ft - W0 (amplify, w-vs-dw,\n"
        "                    spectrum, intruders); repeatable, after the adapters in tables\n"
        "  --module LIST     comma list of modules, default q,v (llama: q k v o gate up down;\n"
        "                    gpt2: q k v [row blocks of c_attn] c_attn c_proj c_fc mlp_proj; any\n"
        "                    adapter: the file's module names, e.g. query, qkv_proj, decoder.EncDecAttention.q)\n"
        "  --layer N|all     layer index or all (default all)\n"
        "  --side A|B        subspace: compare A (right singular vectors) or B (left), default A\n"
        "  --rank R          amplify/w-vs-dw: directions projected on (default: the adapter's r; 8 without one)\n"
        "  --imax N          w-vs-dw: top directions of W on the grid's i axis (default min(64, rank of W))\n"
        "  --top-k K --eps E intruders: vectors examined (10) and cosine threshold (0.5)\n"
        "  --energy F        spectrum: energy fraction of the energy rank (0.9)\n"
        "  --seed N          seed of the Gaussian random baselines (0)\n"
        "  --backend B       cpu (LAPACKE, default), cuda (every SVD and QR on cuSOLVER; loads the CUDA\n"
        "                    module, error without a GPU) or auto (cuda if a GPU is usable, else cpu)\n"
        "  --out DIR         output directory (created)\n"
        "  --name STEM       output file names STEM.tsv, STEM.md, STEM.png, data in DIR/data/STEM/\n"
        "                    (default: the kind's own: subspace, table7 + amplification, w_vs_dw, ...)\n"
        "  --no-plot         tables only\n");
}

// ----------------------------------------------------------------------------
// option parsing

static int parse_opts(int argc, char **argv, analyze_request *req) {
    analyze_request_defaults(req);
    // Every option but --no-plot takes a value, named as analyze_request_set knows it.
    static const struct option longopts[] = {
        {"base", required_argument, 0, 1},     {"adapter", required_argument, 0, 1},
        {"adapter2", required_argument, 0, 1}, {"module", required_argument, 0, 1},
        {"finetuned", required_argument, 0, 1}, {"layer", required_argument, 0, 1},
        {"side", required_argument, 0, 1},     {"out", required_argument, 0, 1},
        {"name", required_argument, 0, 1},     {"pair", required_argument, 0, 1},
        {"seed", required_argument, 0, 1},     {"rank", required_argument, 0, 1},
        {"imax", required_argument, 0, 1},     {"top-k", required_argument, 0, 1},
        {"eps", required_argument, 0, 1},      {"energy", required_argument, 0, 1},
        {"backend", required_argument, 0, 1},  {"no-plot", no_argument, 0, 2},
        {0, 0, 0, 0}};
    if (argc < 2 || argv[1][0] == '-') return ls_fail("expected an analysis kind (subspace, amplify, w-vs-dw, "
                                                      "spectrum, intruders) after 'analyze'");
    req->kind = argv[1];
    optind = 2;
    opterr = 0;
    const char *modules = NULL; // read after the other flags, as its errors come after theirs
    int c, at;
    while ((c = getopt_long(argc, argv, "", longopts, &at)) != -1) {
        if (c == 1 && !strcmp(longopts[at].name, "module")) modules = optarg;
        else if (c == 1) {
            if (analyze_request_set(req, longopts[at].name, optarg)) return -1;
        } else if (c == 2) req->no_plot = 1;
        else if (c == ':') return ls_fail("%s: expected a value", argv[optind - 1]);
        else return ls_fail("unknown option '%s' (see lorascope analyze --help)", argv[optind - 1]);
    }
    if (optind < argc) return ls_fail("unexpected argument '%s'", argv[optind]);
    if (modules && analyze_request_set(req, "module", modules)) return -1;
    return analyze_request_check(req);
}

// ----------------------------------------------------------------------------

int cmd_analyze(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    analyze_request req;
    if (parse_opts(argc, argv, &req)) {
        fprintf(stderr, "lorascope analyze: %s\n", ls_error());
        return 2;
    }
    if (analyze_run(&req)) {
        fprintf(stderr, "lorascope analyze %s: %s\n", req.kind, ls_error());
        return 1;
    }
    report_list();
    return 0;
}
