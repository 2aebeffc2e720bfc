// lorascope train: LoRA (Hu et al. 2021) or full fine-tuning of a real
// checkpoint on a data file; the options, their INI keys and defaults are one
// table (src/train/train_config.c).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "base/util.h"
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
            "                  the run's config.ini is the base, options that shape training cannot change\n"
            "\n"
            "options (flag, INI key in its [section], description [default]):\n");
    tc_print_help(fp);
    fprintf(fp,
            "\n"
            "Boolean flags (--full, --rslora) take an optional true/false. The same config, seed and --threads\n"
            "give the same bits. Outputs: DIR/config.ini, metrics.jsonl, checkpoint/, adapter/ (PEFT) or\n"
            "full/model.safetensors, manifest.json; --merged-out DIR2: merged HF checkpoint.\n");
}

static int is_bool_word(const char *s) {
    const char *w[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    for (int i = 0; i < 8; i++)
        if (!strcmp(s, w[i])) return 1;
    return 0;
}

// One pass over argv. pass 0 picks up --config, --resume and --out only;
// pass 1 applies every other flag to c.
static int parse_flags(int argc, char **argv, int pass, ls_train_config *c, const char **config_file,
                       int *resume, const char **out) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) return ls_fail("unexpected argument '%s'", a);
        char name[64];
        const char *eq = strchr(a + 2, '='), *value = NULL;
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof name) return ls_fail("unknown option '%s'", a);
        memcpy(name, a + 2, n);
        name[n] = 0;
        if (eq) value = eq + 1;
        if (!strcmp(name, "resume")) {
            if (value) return ls_fail("--resume: takes no value");
            *resume = 1;
            continue;
        }
        int is_bool = tc_flag_is_bool(name);
        if (!value && is_bool) {
            if (i + 1 < argc && is_bool_word(argv[i + 1])) value = argv[++i];
        } else if (!value) {
            if (i + 1 >= argc) return ls_fail("--%s: expected a value", name);
            value = argv[++i];
        }
        if (!strcmp(name, "config")) {
            *config_file = value;
            continue;
        }
        if (pass == 0) {
            if (!strcmp(name, "out")) *out = value;
            continue;
        }
        if (tc_set_flag(c, name, value)) return -1;
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    ls_train_config c;
    tc_defaults(&c);
    const char *config_file = NULL, *out = NULL;
    int resume = 0;
    if (parse_flags(argc, argv, 0, &c, &config_file, &resume, &out)) {
        fprintf(stderr, "lorascope train: %s\n", ls_error());
        return 2;
    }
    if (resume) {
        if (!out) {
            fprintf(stderr, "lorascope train: --resume: expected --out DIR (the run to continue)\n");
            return 2;
        }
        char *ini = ls_path_join(out, "config.ini");
        int rc = ls_exists(ini) ? tc_load_ini(&c, ini)
                                : ls_fail("%s: no run to resume (config.ini is missing)", out);
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
    if (parse_flags(argc, argv, 1, &c, &config_file, &resume, &out) || tc_validate(&c)) {
        fprintf(stderr, "lorascope train: %s\n", ls_error());
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
    printf("  checkpoint: %s/checkpoint/state.safetensors\n", c.out);
    if (c.full) printf("  parameters: %s/full/model.safetensors\n", c.out);
    else printf("  adapter:    %s/adapter (PEFT)\n", c.out);
    if (c.merged_out[0]) printf("  merged:     %s (HF checkpoint)\n", c.merged_out);
    printf("  manifest:   %s/manifest.json\n", c.out);
    if (isfinite(r.base_val_loss) || isfinite(r.final_val_loss))
        printf("validation loss: %.4f before, %.4f after %ld steps\n", r.base_val_loss, r.final_val_loss,
               r.steps_done);
    return 0;
}
