// lorascope train: LoRA (Hu et al. 2021) or full fine-tuning of a real
// checkpoint on a data file; the options, their INI keys and defaults are one
// table (src/train/train_config.c).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/commands.h"
#include "train/train.h"
#include "train/train_config.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: lorascope train --model PATH --data FILE --task lm|e2e|sst2|jsonl --out DIR [options]\n"
            "       lorascope train --config FILE.ini [options]        (flags override the file)\n"
            "       lorascope train --resume --out DIR                 (continue a stopped run)\n"
            "\n"
            "  --config FILE   INI file: [model] [data] [lora] [optim] [run] sections with the keys below\n"
            "  --resume        continue the run in --out from its last checkpoint, to the same bits;\n"
            "                  the run's config.ini is the base, options that shape training cannot change;\n"
            "                  the model, tokenizer and data may move but must hold the same bytes (SHA-256,\n"
            "                  recorded in the checkpoint and in manifest.json's \"inputs\");\n"
            "                  a run with no checkpoint (killed early, a record kept without its weights)\n"
            "                  starts again from step 0 under the options given\n"
            "\n"
            "options (flag, INI key in its [section], description [default]):\n");
    tc_print_help(fp);
    fprintf(fp,
            "\n"
            "Boolean flags (--full, --rslora) take an optional true/false. The same config, seed and --threads\n"
            "give the same bits. Outputs: DIR/config.ini, metrics.jsonl, checkpoint/, adapter/ (PEFT) or\n"
            "full/model.safetensors (--full, fttop2) or bitfit/model.safetensors (the trained biases and head),\n"
            "manifest.json; --merged-out DIR2: merged HF checkpoint. eval --adapter DIR loads any of them.\n");
}

// --config FILE and --resume sit outside the option table; --out is read
// early (pass 0) because --resume starts from the run's own config.ini.
typedef struct {
    int pass;
    const char *config_file;
    char out[TC_PATH];
    int resume;
} train_args;

static const opt_extra EXTRAS[] = {{"config", 1}, {"resume", 0}, {NULL, 0}};

static int on_extra(void *ctx, const char *flag, const char *value) {
    train_args *a = ctx;
    if (!strcmp(flag, "config")) a->config_file = value;
    else a->resume = 1;
    return 0;
}

// Pass 0 picks up --config, --resume and --out only (into a scratch config);
// pass 1 applies every flag to c.
static int parse_flags(int argc, char **argv, train_args *a, ls_train_config *c) {
    ls_train_config scratch;
    tc_defaults(&scratch);
    if (opt_parse_argv(tc_table(), a->pass ? c : &scratch, argc, argv, EXTRAS, on_extra, NULL, a)) return -1;
    if (!a->pass) memcpy(a->out, scratch.out, sizeof a->out);
    return 0;
}

int cmd_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    ls_train_config c;
    tc_defaults(&c);
    train_args a = {0};
    if (parse_flags(argc, argv, &a, &c)) {
        fprintf(stderr, "lorascope train: %s\n", ls_error());
        return 2;
    }
    const char *config_file = a.config_file, *out = a.out[0] ? a.out : NULL;
    int resume = a.resume;
    if (resume) {
        if (!out) {
            fprintf(stderr, "lorascope train: --resume: expected --out DIR (the run to continue)\n");
            return 2;
        }
        char *ini = ls_path_join(out, RUN_CONFIG_FILE);
        int rc = ls_exists(ini) ? tc_load_ini(&c, ini)
                                : ls_fail("%s: no run to resume (" RUN_CONFIG_FILE " is missing)", out);
        free(ini);
        if (rc) {
            fprintf(stderr, "lorascope train: %s\n", ls_error());
            return 2;
        }
    }
    if (config_file && tc_load_ini(&c, config_file)) {
        fprintf(stderr, "lorascope train: %s\n", ls_error());
        return 2;
    }
    a.pass = 1;
    if (parse_flags(argc, argv, &a, &c)) {
        fprintf(stderr, "lorascope train: %s\n", ls_error());
        return 2;
    }
    if (tc_validate(&c)) { // a missing value may be missing from the file or the flags
        if (config_file) fprintf(stderr, "lorascope train: %s (neither in %s nor as a flag)\n", ls_error(), config_file);
        else fprintf(stderr, "lorascope train: %s\n", ls_error());
        return 2;
    }
    train_result r;
    int rc = train_run(&c, resume, argc, argv, &r);
    if (rc) {
        fprintf(stderr, "lorascope train: %s\n", ls_error());
        return 1;
    }
    printf("run: %s\n", c.out);
    printf("  config:     %s/config.ini\n", c.out);
    printf("  metrics:    %s/metrics.jsonl\n", c.out);
    printf("  checkpoint: %s/" RUN_CHECKPOINT_DIR "/" RUN_CHECKPOINT_FILE "\n", c.out);
    tc_method_kind method = tc_method(&c);
    if (method == TC_FULL || method == TC_FTTOP2)
        printf("  parameters: %s/" RUN_FULL_DIR "/" RUN_PARAMS_FILE "\n", c.out);
    else if (method == TC_BITFIT)
        printf("  parameters: %s/" RUN_BITFIT_DIR "/" RUN_PARAMS_FILE " (trained tensors)\n", c.out);
    else if (method == TC_ADAPTER_H || method == TC_ADAPTER_L)
        printf("  adapters:   %s/" RUN_ADAPTERS_DIR "/" RUN_PARAMS_FILE "\n", c.out);
    else if (method == TC_PREFIX_LAYER) printf("  prefix:     %s/" RUN_PREFIX_DIR " (PEFT PREFIX_TUNING)\n", c.out);
    else if (method == TC_PREFIX_EMBED) printf("  prompt:     %s/" RUN_PROMPT_DIR " (PEFT PROMPT_TUNING)\n", c.out);
    else printf("  adapter:    %s/" RUN_ADAPTER_DIR " (PEFT)\n", c.out);
    if (c.merged_out[0]) printf("  merged:     %s (HF checkpoint)\n", c.merged_out);
    printf("  manifest:   %s/manifest.json\n", c.out);
    if (isfinite(r.base_val_loss) || isfinite(r.final_val_loss))
        printf("validation loss: %.4f before, %.4f after %ld steps\n", r.base_val_loss, r.final_val_loss,
               r.steps_done);
    return 0;
}
