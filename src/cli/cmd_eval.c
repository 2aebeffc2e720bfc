// lorascope eval: held-out loss of a model (with an optional PEFT adapter
// merged into its weights) on a data file: the token-weighted mean
// cross-entropy over the completion tokens (all tokens for lm), and for SST-2
// the accuracy of classification by generation (the label word with the
// higher summed log-probability after the prompt).
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "engine/backend_registry.h"
#include "eval/tasks.h"
#include "base/clock.h"
#include "base/util.h"
#include "train/import.h"
#include "train/run.h"
#include "train/task.h"
#include "train/train.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: lorascope eval --model PATH --data FILE --task lm|e2e|sst2|jsonl [options]\n"
            "\n"
            "  --model PATH        llama2.c .bin or HF dir (config.json + model.safetensors)\n"
            "  --tokenizer PATH    tokenizer.bin | dir with encoder.json + vocab.bpe | bytes (default: beside the model)\n"
            "  --adapter DIR       PEFT adapter (or a run directory holding adapter/), merged into the weights\n"
            "  --data FILE         data to evaluate (every item of the file)\n"
            "  --task KIND         lm | e2e | sst2 | jsonl\n"
            "  --seq-len N         positions per row, as in training (default 128)\n"
            "  --doc-sep S         lm: document separator (default: none)\n"
            "  --batch-size N      rows per forward pass (default 8)\n"
            "  --max-items N       evaluate a fixed subsample of N items, the one `train --eval-max N` uses (default: all)\n"
            "  --backend B         cpu (default) | cuda | auto\n"
            "  --threads N         threads (default: OpenMP's)\n"
            "  --out FILE          also write the result as JSON to FILE\n"
            "  --generate N        e2e: also generate for the first N meaning representations (0: all) and\n"
            "                      score BLEU and ROUGE-L against their references (E2E metrics, src/eval)\n"
            "  --beam K            decoding for --generate: 1 = greedy (default); K > 1 = beam search with the\n"
            "                      paper's settings (Table 11: length penalty 0.9, no-repeat 4-grams)\n"
            "  --max-new N         tokens generated per MR at most (default 64)\n"
            "\n"
            "Prints loss (nats per token), perplexity, tokens and items; SST-2 also accuracy.\n");
}

static int parse_int(const char *s, const char *flag, long lo, long hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return ls_fail("%s: expected an integer in [%ld, %ld], found '%s'", flag, lo, hi, s);
    *out = (int)v;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *backend_name = "cpu";
    const char *model_path = NULL, *tok_spec = "", *adapter = NULL, *data = NULL, *task = NULL, *doc_sep = "",
               *out = NULL;
    int seq_len = 128, B = 8, max_items = 0, threads = 0, generate = -1, beam = 1, max_new = 64;
    enum { O_MODEL = 1, O_TOK, O_ADAPTER, O_DATA, O_TASK, O_SEQ, O_SEP, O_BATCH, O_MAX, O_THREADS, O_OUT, O_GEN,
           O_BEAM, O_MAXNEW, O_BACKEND };
    static const struct option longopts[] = {
        {"model", required_argument, 0, O_MODEL},     {"tokenizer", required_argument, 0, O_TOK},
        {"adapter", required_argument, 0, O_ADAPTER}, {"data", required_argument, 0, O_DATA},
        {"task", required_argument, 0, O_TASK},       {"seq-len", required_argument, 0, O_SEQ},
        {"doc-sep", required_argument, 0, O_SEP},     {"batch-size", required_argument, 0, O_BATCH},
        {"max-items", required_argument, 0, O_MAX},   {"threads", required_argument, 0, O_THREADS},
        {"out", required_argument, 0, O_OUT},         {"generate", required_argument, 0, O_GEN},
        {"beam", required_argument, 0, O_BEAM},       {"max-new", required_argument, 0, O_MAXNEW},
        {"backend", required_argument, 0, O_BACKEND}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_BACKEND: backend_name = optarg; break;
        case O_MODEL: model_path = optarg; break;
        case O_TOK: tok_spec = optarg; break;
        case O_ADAPTER: adapter = optarg; break;
        case O_DATA: data = optarg; break;
        case O_TASK: task = optarg; break;
        case O_SEQ: bad = parse_int(optarg, "--seq-len", 2, 1 << 20, &seq_len); break;
        case O_SEP: doc_sep = optarg; break;
        case O_BATCH: bad = parse_int(optarg, "--batch-size", 1, 65536, &B); break;
        case O_MAX: bad = parse_int(optarg, "--max-items", 0, 1 << 30, &max_items); break;
        case O_THREADS: bad = parse_int(optarg, "--threads", 0, 1024, &threads); break;
        case O_OUT: out = optarg; break;
        case O_GEN: bad = parse_int(optarg, "--generate", 0, 1 << 30, &generate); break;
        case O_BEAM: bad = parse_int(optarg, "--beam", 1, 256, &beam); break;
        case O_MAXNEW: bad = parse_int(optarg, "--max-new", 1, 1 << 20, &max_new); break;
        case ':': bad = ls_fail("%s: expected a value", argv[optind - 1]); break;
        default: bad = ls_fail("unknown option '%s' (see lorascope eval --help)", argv[optind - 1]); break;
        }
    }
    task_kind kind = TASK_LM;
    if (!bad && optind < argc) bad = ls_fail("unexpected argument '%s'", argv[optind]);
    if (!bad && !model_path) bad = ls_fail("--model: required");
    if (!bad && !data) bad = ls_fail("--data: required");
    if (!bad && !task) bad = ls_fail("--task: required (lm, e2e, sst2 or jsonl)");
    if (!bad && task_parse_kind(task, &kind)) bad = ls_fail_prefix("--task");
    if (!bad && generate >= 0 && kind != TASK_E2E) bad = ls_fail("--generate: expected --task e2e, found %s", task);
    if (bad) {
        fprintf(stderr, "lorascope eval: %s\n", ls_error());
        return 2;
    }
    train_set_threads(threads);
    ls_model m;
    const ls_backend *be = ls_backend_by_name(backend_name);
    if (!be) {
        fprintf(stderr, "lorascope eval: %s\n", ls_error());
        return 2;
    }
    if (task_load_model(&m, NULL, model_path, be)) {
        fprintf(stderr, "lorascope eval: %s\n", ls_error());
        return 1;
    }
    int rc = 1, have_data = 0, have_gen = 0;
    eval_e2e_result gen = {0};
    int *items = NULL;
    task_data d;
    tokenizer *tok = NULL;
    if (seq_len > m.P) {
        ls_fail("--seq-len: expected at most the model's max_seq_len %d, found %d", m.P, seq_len);
        goto done;
    }
    tok = task_load_tokenizer(tok_spec, model_path, m.V, NULL);
    if (!tok) goto done;
    if (adapter && import_adapter_dir(&m, adapter)) goto done;
    if (task_data_load(&d, kind, data, tok, seq_len, doc_sep)) goto done;
    have_data = 1;
    items = ls_malloc((size_t)(d.n_items ? d.n_items : 1) * sizeof(int));
    for (int i = 0; i < d.n_items; i++) items[i] = i;
    int n = task_subsample(items, d.n_items, max_items);
    task_eval_result r;
    double t0 = ls_now();
    if (task_evaluate(&m, &d, items, n, B, &r)) goto done;
    double dt = ls_now() - t0;
    printf("loss %.6f | perplexity %.4f | %ld tokens | %d items", r.loss, exp(r.loss), r.n_tokens, r.n_items);
    if (isfinite(r.accuracy)) printf(" | accuracy %.4f", r.accuracy);
    printf(" | %.2f s\n", dt);
    if (generate >= 0) {
        eval_e2e_config gc = {0};
        gc.greedy = beam == 1;
        gc.gen = beam == 1 ? gen_config_greedy(max_new, tok_eos(tok)) : gen_config_paper(tok_eos(tok));
        if (beam > 1) {
            gc.gen.beam_size = beam;
            gc.gen.max_new_tokens = max_new;
        }
        gc.max_mrs = generate;
        gc.progress = isatty(2);
        if (eval_e2e(&m, tok, &d.pairs, &gc, &gen)) goto done;
        have_gen = 1;
        printf("E2E generation (%s, %d MRs): BLEU %.4f | ROUGE-L %.4f | %.0f tokens/s\n",
               beam == 1 ? "greedy" : "beam", gen.n, gen.scores.bleu.bleu, gen.scores.rouge_l, eval_e2e_tokens_per_s(&gen));
    }
    if (out) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", model_path);
        if (adapter) cJSON_AddStringToObject(root, "adapter", adapter);
        cJSON_AddStringToObject(root, "data", data);
        cJSON_AddStringToObject(root, "task", task);
        cJSON_AddNumberToObject(root, "seq_len", seq_len);
        cJSON_AddNumberToObject(root, "loss", r.loss);
        cJSON_AddNumberToObject(root, "perplexity", exp(r.loss));
        cJSON_AddNumberToObject(root, "tokens", (double)r.n_tokens);
        cJSON_AddNumberToObject(root, "items", r.n_items);
        if (isfinite(r.accuracy)) cJSON_AddNumberToObject(root, "accuracy", r.accuracy);
        if (have_gen) {
            cJSON_AddNumberToObject(root, "bleu", gen.scores.bleu.bleu);
            cJSON_AddNumberToObject(root, "bleu_brevity_penalty", gen.scores.bleu.brevity_penalty);
            cJSON_AddNumberToObject(root, "rouge_l", gen.scores.rouge_l);
            cJSON_AddNumberToObject(root, "generated_mrs", gen.n);
            cJSON_AddStringToObject(root, "decoding", beam == 1 ? "greedy" : "beam");
            cJSON_AddNumberToObject(root, "beam", beam);
            cJSON_AddNumberToObject(root, "max_new_tokens", max_new);
            cJSON *samples = cJSON_AddArrayToObject(root, "samples");
            for (int i = 0; i < gen.n && i < 5; i++) {
                cJSON *smp = cJSON_CreateObject();
                cJSON_AddStringToObject(smp, "mr", gen.mr[i]);
                cJSON_AddStringToObject(smp, "output", gen.hyp[i]);
                cJSON_AddStringToObject(smp, "reference", gen.n_refs[i] ? gen.refs[i][0] : "");
                cJSON_AddItemToArray(samples, smp);
            }
        }
        cJSON_AddStringToObject(root, "lorascope_version", run_version());
        char *json = cJSON_Print(root);
        cJSON_Delete(root);
        int wrc = ls_write_file_atomic(out, json, strlen(json));
        free(json);
        if (wrc) goto done;
        printf("result: %s\n", out);
    }
    rc = 0;
done:
    if (have_gen) eval_e2e_result_free(&gen);
    if (rc) fprintf(stderr, "lorascope eval: %s\n", ls_error());
    free(items);
    if (have_data) task_data_free(&d);
    if (tok) tok_free(tok);
    model_free(&m);
    return rc;
}
