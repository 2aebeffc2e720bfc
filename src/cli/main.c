// lorascope: train LoRA adapters on real transformers and analyse what they
// learned (Hu et al. 2021, Sec. 7 and App. H).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/commands.h"

static const ls_command commands[] = {
    {"train", "LoRA or full fine-tuning of a checkpoint on a data file (resumable)", cmd_train},
    {"generate", "text from a model (+ adapter): greedy or temperature / top-p", cmd_generate},
    {"eval", "held-out loss (and SST-2 accuracy) of a model (+ adapter) on a data file", cmd_eval},
    {"bench", "training tokens/s: LoRA vs full fine-tuning, lorascope vs PyTorch; --latency: Table 1", cmd_bench},
    {"analyze", "subspace similarity, amplification, W-vs-dW, spectra, intruders", cmd_analyze},
    {"tokenize", "the token ids a model sees for a text (WordPiece, GPT-2 BPE, llama2.c)", cmd_tokenize},
    {"run", "an experiment end to end: its training runs (resumable), analyses, tables, figures", cmd_run},
    {"score", "E2E challenge metrics (BLEU, NIST, METEOR w/o paraphrase, ROUGE-L, CIDEr) of any system's outputs", cmd_score},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    return 0;
}

const char *cli_python(void) {
    return getenv("LORASCOPE_PYTHON") ? getenv("LORASCOPE_PYTHON") : "/usr/bin/python3";
}

int cli_put_table(char *table, size_t size, const char *out) {
    fputs(table, stdout);
    int rc = out && out[0] ? ls_write_file_atomic(out, table, size) : 0;
    if (rc) fprintf(stderr, "lorascope bench: %s\n", ls_error());
    else if (out && out[0]) printf("\ntable: %s\n", out);
    free(table);
    return rc ? 1 : 0;
}

static void usage(FILE *fp) {
    fprintf(fp, "usage: lorascope <command> [options]   (lorascope <command> --help)\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(fp, "  %-10s %s\n", "help", "this list");
}

char *openblas_get_corename(void); // OpenBLAS (cblas.h declares it under another header set)

// OpenBLAS picks its kernels from the CPU model; a model newer than it knows
// (Debian 12 ships 0.3.21) falls back to "Prescott", SSE3 kernels 3-5x slower
// than the AVX2 / AVX-512 ones the CPU runs (sgemm 31 vs 143 GFLOP/s on one
// core of a recent Xeon). Then, unless OPENBLAS_CORETYPE is already set (set it
// to any core, Prescott included, to choose yourself), lorascope names the core
// from the CPU's own feature flags and runs itself again. The choice depends
// on the machine only, so a machine keeps giving the same bits.
static void blas_core_fixup(char **argv) {
#if defined(__x86_64__) && defined(__GNUC__)
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core || strcmp(core, "Prescott") != 0) return;
    __builtin_cpu_init();
    const char *better = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        better = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        better = "Haswell";
    if (!better || setenv("OPENBLAS_CORETYPE", better, 1) != 0) return;
    execv("/proc/self/exe", argv); // returns only on failure: carry on with Prescott
    unsetenv("OPENBLAS_CORETYPE");
#else
    (void)argv;
#endif
}

int main(int argc, char **argv) {
    blas_core_fixup(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "lorascope: unknown command '%s' (try: lorascope help)\n", name);
    return 2;
}
