// lorascope: train LoRA adapters on real transformers and analyse what they
// learned (Hu et al. 2021, Sec. 7 and App. H).
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const ls_command commands[] = {
    {"train", "LoRA or full fine-tuning of a checkpoint on a data file (resumable)", cmd_train},
    {"generate", "text from a model (+ adapter): greedy or temperature / top-p", cmd_generate},
    {"eval", "held-out loss (and SST-2 accuracy) of a model (+ adapter) on a data file", cmd_eval},
    {"bench", "training tokens/s: LoRA vs full fine-tuning, lorascope vs PyTorch", cmd_bench},
    {"analyze", "subspace similarity, amplification, W-vs-dW, spectra, intruders", cmd_analyze},
    {"tokenize", "the token ids a model sees for a text (WordPiece, GPT-2 BPE, llama2.c)", cmd_tokenize},
    {"run", "an experiment end to end: its training runs (resumable), analyses, tables, figures", cmd_run},
    {"score", "E2E challenge metrics (BLEU, NIST, ROUGE-L, CIDEr) of any system's outputs", cmd_score},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    return 0;
}

static void usage(FILE *fp) {
    fprintf(fp, "usage: lorascope <command> [options]   (lorascope <command> --help)\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(fp, "  %-10s %s\n", "help", "this list");
}

int main(int argc, char **argv) {
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
