// lorascope generate: text from a model (and optionally a PEFT adapter, merged
// into the weights) as llama2.c's run.c generates it (src/train/generate.h
// does the work; this file reads the flags). stdout gets the text decoded
// after BOS (run.c's print), then a newline; the speed goes to stderr.
#include <stdio.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "cli/commands.h"
#include "train/generate.h"

static void usage(FILE *fp) {
    generate_request defaults;
    generate_defaults(&defaults);
    fprintf(fp,
            "usage: lorascope generate --model PATH [--tokenizer PATH] [--adapter DIR] --prompt TEXT [options]\n"
            "\n"
            "  --prompt TEXT          text to continue (may be empty)\n"
            "\n"
            "options (flag, INI key in [generate], description [default]):\n");
    opt_print_help(generate_table(), &defaults, fp);
    fprintf(fp, "\nPrints the text after BOS (prompt included) on stdout; speed on stderr.\n");
}

// --prompt sits outside the table: it is the input, not a setting.
static const opt_extra EXTRAS[] = {{"prompt", 1}, {NULL, 0}};

static int on_extra(void *ctx, const char *flag, const char *value) {
    (void)flag;
    ((generate_request *)ctx)->prompt = value;
    return 0;
}

int cmd_generate(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    generate_request req;
    generate_defaults(&req);
    if (opt_parse_argv(generate_table(), &req, argc, argv, EXTRAS, on_extra, NULL, &req) || generate_check(&req)) {
        const char *e = ls_error();
        fprintf(stderr, "lorascope generate: %s%s\n", e,
                strncmp(e, "unknown option", 14) ? "" : " (see lorascope generate --help)");
        return 2;
    }
    generate_report rep;
    if (generate_run(&req, &rep)) {
        fprintf(stderr, "lorascope generate: %s\n", ls_error());
        return 1;
    }
    fwrite(rep.text, 1, rep.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    fprintf(stderr, "%d tokens in %.3f s (%.1f tok/s)\n", rep.tokens, rep.seconds,
            rep.seconds > 0 ? (rep.tokens - 1) / rep.seconds : 0.0);
    generate_report_free(&rep);
    return 0;
}
