// lorascope generate: text from a model (and optionally a PEFT adapter, merged
// into the weights), as llama2.c's run.c generates it: BOS, the prompt's
// tokens forced, then argmax (temperature 0) or temperature / top-p samples
// from llama2.c's xorshift stream, until `steps` positions or BOS comes out.
// stdout gets the text decoded after BOS (run.c's print), then a newline.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "engine/backend_registry.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "base/clock.h"
#include "base/util.h"
#include "train/import.h"
#include "train/run.h"
#include "train/task.h"
#include "train/train.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: lorascope generate --model PATH [--tokenizer PATH] [--adapter DIR] --prompt TEXT [options]\n"
            "\n"
            "  --model PATH        llama2.c .bin or HF dir (config.json + model.safetensors)\n"
            "  --tokenizer PATH    tokenizer.bin | dir with encoder.json + vocab.bpe | bytes (default: beside the model)\n"
            "  --adapter DIR       PEFT adapter (or a run directory holding adapter/), merged into the weights\n"
            "  --prompt TEXT       text to continue (may be empty)\n"
            "  --steps N           positions to run, BOS included, as llama2.c (default 256, at most max_seq_len)\n"
            "  --temperature T     0 = greedy argmax (default 0)\n"
            "  --top-p P           nucleus sampling mass in (0, 1]; 1 = the whole distribution (default 0.9)\n"
            "  --seed N            sampling seed (default 1)\n"
            "  --backend B         cpu (default) | cuda | auto\n"
            "  --threads N         threads (default: OpenMP's)\n"
            "\n"
            "Prints the text after BOS (prompt included) on stdout; speed on stderr.\n");
}

static int parse_num(const char *s, const char *flag, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return ls_fail("%s: expected a number in [%g, %g], found '%s'", flag, lo, hi, s);
    *out = v;
    return 0;
}

int cmd_generate(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *backend_name = "cpu";
    const char *model_path = NULL, *tok_spec = "", *adapter = NULL, *prompt = NULL;
    double steps = 256, temperature = 0.0, topp = 0.9, seed = 1, threads = 0;
    enum { O_MODEL = 1, O_TOK, O_ADAPTER, O_PROMPT, O_STEPS, O_TEMP, O_TOPP, O_SEED, O_THREADS, O_BACKEND };
    static const struct option longopts[] = {
        {"model", required_argument, 0, O_MODEL},   {"tokenizer", required_argument, 0, O_TOK},
        {"adapter", required_argument, 0, O_ADAPTER}, {"prompt", required_argument, 0, O_PROMPT},
        {"steps", required_argument, 0, O_STEPS},   {"temperature", required_argument, 0, O_TEMP},
        {"top-p", required_argument, 0, O_TOPP},    {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"backend", required_argument, 0, O_BACKEND}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_BACKEND: backend_name = optarg; break;
        case O_MODEL: model_path = optarg; break;
        case O_TOK: tok_spec = optarg; break;
        case O_ADAPTER: adapter = optarg; break;
        case O_PROMPT: prompt = optarg; break;
        case O_STEPS: bad = parse_num(optarg, "--steps", 1, 1 << 24, &steps); break;
        case O_TEMP: bad = parse_num(optarg, "--temperature", 0, 100, &temperature); break;
        case O_TOPP: bad = parse_num(optarg, "--top-p", 0, 1, &topp); break;
        case O_SEED: bad = parse_num(optarg, "--seed", 0, 18446744073709551615.0, &seed); break;
        case O_THREADS: bad = parse_num(optarg, "--threads", 0, 1024, &threads); break;
        case ':': bad = ls_fail("%s: expected a value", argv[optind - 1]); break;
        default: bad = ls_fail("unknown option '%s' (see lorascope generate --help)", argv[optind - 1]); break;
        }
    }
    if (!bad && optind < argc) bad = ls_fail("unexpected argument '%s'", argv[optind]);
    if (!bad && !model_path) bad = ls_fail("--model: required");
    if (!bad && !prompt) bad = ls_fail("--prompt: required (may be \"\")");
    if (!bad && (steps != (int)steps || threads != (int)threads))
        bad = ls_fail("--steps and --threads: expected integers");
    if (bad) {
        fprintf(stderr, "lorascope generate: %s\n", ls_error());
        return 2;
    }
    train_set_threads((int)threads);
    ls_model m;
    const ls_backend *be = ls_backend_by_name(backend_name);
    if (!be) {
        fprintf(stderr, "lorascope generate: %s\n", ls_error());
        return 2;
    }
    if (task_load_model(&m, NULL, model_path, be)) {
        fprintf(stderr, "lorascope generate: %s\n", ls_error());
        return 1;
    }
    int rc = 1;
    int *ids = NULL, *out = NULL;
    char *text = NULL;
    tokenizer *tok = task_load_tokenizer(tok_spec, model_path, m.V, NULL);
    if (!tok) goto done;
    if (adapter && import_adapter_dir(&m, adapter)) goto done;
    int n_ids;
    ids = tok_encode(tok, prompt, 1, 0, &n_ids);
    if (n_ids < 1) {
        ls_fail("--prompt: the tokenizer has no BOS and the prompt is empty; expected at least one token");
        goto done;
    }
    int n_steps = (int)steps < m.P ? (int)steps : m.P;
    if (n_ids > n_steps) {
        ls_fail("--prompt: %d tokens do not fit in --steps %d", n_ids, n_steps);
        goto done;
    }
    ls_sampler sampler;
    sampler_init(&sampler, m.V, (float)temperature, (float)topp, (uint64_t)seed);
    out = ls_malloc((size_t)(n_steps + 1) * sizeof(int));
    double t0 = ls_now();
    int n = model_generate(&m, ids, n_ids, n_steps, temperature > 0 ? &sampler : NULL, tok_bos(tok), out);
    double dt = ls_now() - t0;
    sampler_free(&sampler);
    if (n < 0) goto done;
    size_t len;
    text = tok_decode(tok, out[0], out + 1, n - 1, &len);
    fwrite(text, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    fprintf(stderr, "%d tokens in %.3f s (%.1f tok/s)\n", n, dt, dt > 0 ? (n - 1) / dt : 0.0);
    rc = 0;
done:
    if (rc) fprintf(stderr, "lorascope generate: %s\n", ls_error());
    free(text);
    free(out);
    free(ids);
    if (tok) tok_free(tok);
    model_free(&m);
    return rc;
}
