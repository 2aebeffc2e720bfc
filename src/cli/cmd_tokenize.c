// lorascope tokenize: the token ids a model sees for a text, space-separated
// on one line of stdout -- with the model's special tokens ([CLS] ... [SEP]
// for WordPiece, <s> ... </s> for RoBERTa, BOS for llama2.c, none for GPT-2)
// unless --no-special. The
// tokenizer is found as training finds it (tok_load_for_model): --tokenizer,
// or beside --model; the model's weights are not read.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "cli/commands.h"
#include "text/tokenizer.h"

typedef struct {
    char model[4096];
    char tokenizer[4096];
    int no_special;
    const char *text;
} tokenize_request;

#define S tokenize_request
static const opt_spec OPTIONS[] = {
    OPT_STR_(S, "tokenize", "model", "model", model, 0,
             "model file or directory: its tokenizer is looked up beside it"),
    OPT_STR_(S, "tokenize", "tokenizer", "tokenizer", tokenizer, 0,
             "tok512.bin / tokenizer.bin | dir with vocab.txt (WordPiece) | dir with encoder.json + vocab.bpe "
             "(GPT-2) | dir with vocab.json + merges.txt (RoBERTa or GPT-2) | bytes (default: beside the model)"),
    OPT_BOOL_(S, "tokenize", "no_special", "no-special", no_special, "leave out the model's special tokens"),
};
#undef S
static const opt_table TABLE = {OPTIONS, (int)(sizeof OPTIONS / sizeof OPTIONS[0]), "tokenize",
                                "lorascope tokenize"};

static void usage(FILE *fp) {
    tokenize_request defaults = {0};
    fprintf(fp,
            "usage: lorascope tokenize --model PATH [--tokenizer PATH] [--no-special] [--] TEXT\n"
            "\n"
            "Prints the ids of TEXT, space-separated on one line: WordPiece (BERT) as [CLS] ... [SEP],\n"
            "RoBERTa as <s> ... </s>, llama2.c with BOS, GPT-2 BPE as is. Put -- before a TEXT that\n"
            "starts with --.\n"
            "\n"
            "options (flag, INI key in [tokenize], description [default]):\n");
    opt_print_help(&TABLE, &defaults, fp);
}

static int on_text(void *ctx, const char *arg) {
    tokenize_request *r = ctx;
    if (r->text) return ls_fail("expected one TEXT, found a second one '%.40s' (quote the text)", arg);
    r->text = arg;
    return 0;
}

// Options before a "--", the text after it (or among the options without one).
static int parse(int argc, char **argv, tokenize_request *r) {
    int end = argc;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) { end = i; break; }
    if (opt_parse_argv(&TABLE, r, end, argv, NULL, NULL, on_text, r)) return -1;
    for (int i = end + 1; i < argc; i++)
        if (on_text(r, argv[i])) return -1;
    if (!r->model[0] && !r->tokenizer[0]) return ls_fail("--model: required (or --tokenizer)");
    if (!r->text) return ls_fail("expected a TEXT to tokenize (may be \"\")");
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    int end = argc;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) { end = i; break; }
    if (cli_wants_help(end, argv)) {
        usage(stdout);
        return 0;
    }
    tokenize_request r = {0};
    if (parse(argc, argv, &r)) {
        const char *e = ls_error();
        fprintf(stderr, "lorascope tokenize: %s (see lorascope tokenize --help)\n", e);
        return 2;
    }
    tokenizer *t = tok_load_for_model(r.model[0] ? r.model : r.tokenizer, r.tokenizer, 0, NULL);
    tok_encoding e;
    tok_sequence_opts o = {!r.no_special, 0, 0};
    if (!t || tok_encode_sequence(t, r.text, NULL, &o, &e)) {
        fprintf(stderr, "lorascope tokenize: %s\n", ls_error());
        tok_free(t);
        return 1;
    }
    for (int i = 0; i < e.n; i++) printf(i ? " %d" : "%d", e.ids[i]);
    putchar('\n');
    fflush(stdout);
    tok_encoding_free(&e);
    tok_free(t);
    return 0;
}
