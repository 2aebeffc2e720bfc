// lorascope eval: held-out loss of a model (with an optional PEFT adapter
// merged into its weights) on a data file, SST-2 accuracy, E2E generation
// scores (src/train/evaluate.h does the work; this file reads the flags).
#include <stdio.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "cli/commands.h"
#include "train/evaluate.h"

static void usage(FILE *fp) {
    evaluate_request defaults;
    evaluate_defaults(&defaults);
    fprintf(fp,
            "usage: lorascope eval --model PATH --data FILE --task lm|e2e|sst2|jsonl [options]\n"
            "\n"
            "options (flag, INI key in [eval], description [default]):\n");
    opt_print_help(evaluate_table(), &defaults, fp);
    fprintf(fp, "\nPrints loss (nats per token), perplexity, tokens and items; SST-2 also accuracy.\n");
}

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    evaluate_request req;
    evaluate_defaults(&req);
    if (opt_parse_argv(evaluate_table(), &req, argc, argv, NULL, NULL, NULL, NULL) || evaluate_check(&req)) {
        const char *e = ls_error();
        fprintf(stderr, "lorascope eval: %s%s\n", e,
                strncmp(e, "unknown option", 14) ? "" : " (see lorascope eval --help)");
        return 2;
    }
    evaluate_report rep;
    if (evaluate_run(&req, stdout, &rep)) {
        fprintf(stderr, "lorascope eval: %s\n", ls_error());
        return 1;
    }
    return 0;
}
