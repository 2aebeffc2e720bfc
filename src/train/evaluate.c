// evaluate: the request table, and a model + adapter evaluated on a data file.
#include "train/evaluate.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/util.h"
#include "engine/backend_registry.h"
#include "eval/tasks.h"
#include "train/import.h"
#include "train/record.h"
#include "train/task.h"
#include "train/train.h"

// ----------------------------------------------------------------------------
// the option table

#define S evaluate_request
#define STR(key, flag, f, help) OPT_STR_(S, "eval", key, flag, f, 0, help)
#define INT(key, flag, f, lo, hi, help) OPT_INT_(S, "eval", key, flag, f, lo, hi, 0, help)

static const opt_spec OPTIONS[] = {
    STR("model", "model", model, "llama2.c .bin, HF dir (config.json + model.safetensors) or llama GGUF"),
    STR("tokenizer", "tokenizer", tokenizer,
        "tokenizer.bin | dir with encoder.json + vocab.bpe | GGUF | bytes (default: beside the model; a GGUF model's own)"),
    STR("adapter", "adapter", adapter, "PEFT adapter (or a run directory holding adapter/), merged into the weights"),
    STR("data", "data", data, "data to evaluate (every item of the file)"),
    STR("task", "task", task, "lm | e2e | sst2 | jsonl"),
    INT("seq_len", "seq-len", seq_len, 2, 1 << 20, "positions per row, as in training"),
    STR("doc_sep", "doc-sep", doc_sep, "lm: document separator, \\n and \\t as escapes (default: none)"),
    INT("batch_size", "batch-size", batch_size, 1, 65536, "rows per forward pass"),
    INT("max_items", "max-items", max_items, 0, 1 << 30,
        "evaluate a fixed subsample of N items, the one `train --eval-max N` uses (0 = all)"),
    STR("backend", "backend", backend, "cpu | cuda | auto"),
    INT("threads", "threads", threads, 0, 1024, "threads (0 = OpenMP's default)"),
    STR("out", "out", out, "also write the result as JSON to this file"),
    INT("generate", "generate", generate, 0, 1 << 30,
        "e2e: also generate for the first N MRs (0 = all), score BLEU and ROUGE-L against their references "
        "(E2E metrics, src/eval); -1 = no generation"),
    INT("beam", "beam", beam, 1, 256,
        "decoding for --generate: 1 = greedy; K > 1 = beam search, the paper's Table 11 settings (length "
        "penalty 0.9, no-repeat 4-grams)"),
    INT("max_new", "max-new", max_new, 1, 1 << 20, "tokens generated per MR at most"),
};
#undef S
#undef STR
#undef INT

static const opt_table TABLE = {OPTIONS, (int)(sizeof OPTIONS / sizeof OPTIONS[0]), "eval", "lorascope eval"};

const opt_table *evaluate_table(void) { return &TABLE; }

void evaluate_defaults(evaluate_request *req) {
    memset(req, 0, sizeof *req);
    req->seq_len = 128;
    req->batch_size = 8;
    snprintf(req->backend, sizeof req->backend, "cpu");
    req->generate = -1;
    req->beam = 1;
    req->max_new = 64;
}

// Integers of a request built by hand rather than through the table.
static int check_ranges(const evaluate_request *req) {
    for (int i = 0; i < TABLE.n; i++) {
        const opt_spec *o = &OPTIONS[i];
        if (o->type != OPT_INT) continue;
        int v = *(const int *)((const char *)req + o->offset);
        if (o->offset == offsetof(evaluate_request, generate) && v == -1) continue; // no generation
        if (v < o->lo || v > o->hi)
            return ls_fail("--%s: expected an integer in [%.0f, %.0f], found '%d'", o->flag, o->lo, o->hi, v);
    }
    return 0;
}

int evaluate_check(const evaluate_request *req) {
    task_kind kind;
    if (!req->model[0]) return ls_fail("--model: required");
    if (!req->data[0]) return ls_fail("--data: required");
    if (!req->task[0]) return ls_fail("--task: required (lm, e2e, sst2 or jsonl)");
    if (task_parse_kind(req->task, &kind)) return ls_fail_prefix("--task");
    if (req->generate >= 0 && kind != TASK_E2E) return ls_fail("--generate: expected --task e2e, found %s", req->task);
    if (check_ranges(req)) return -1;
    return ls_backend_check_name(req->backend);
}

// ----------------------------------------------------------------------------
// one evaluation: what it loads and what it measures

typedef struct {
    ls_model m;
    int have_model;
    tokenizer *tok;
    task_data d;
    int have_data;
    int *items; // the evaluated items (task_subsample), n_items of them
    int n_items;
    eval_e2e_result gen;
    int have_gen;
} evaluation;

static void evaluation_free(evaluation *ev) {
    if (ev->have_gen) eval_e2e_result_free(&ev->gen);
    free(ev->items);
    if (ev->have_data) task_data_free(&ev->d);
    if (ev->tok) tok_free(ev->tok);
    if (ev->have_model) model_free(&ev->m);
    memset(ev, 0, sizeof *ev);
}

// Model (+ adapter merged), tokenizer, data and the items to evaluate.
static int evaluation_load(evaluation *ev, const evaluate_request *req, task_kind kind) {
    const ls_backend *be = ls_backend_by_name(req->backend);
    if (!be || task_load_model_for(&ev->m, NULL, req->model, be, kind)) return -1;
    ev->have_model = 1;
    if (req->seq_len > ev->m.P)
        return ls_fail("--seq-len: expected at most the model's max_seq_len %d, found %d", ev->m.P, req->seq_len);
    ev->tok = task_load_tokenizer(req->tokenizer, req->model, ev->m.V, NULL);
    if (!ev->tok) return -1;
    if (req->adapter[0] && import_adapter_dir(&ev->m, req->adapter)) return -1;
    if (task_data_load_for(&ev->d, &ev->m, kind, req->data, ev->tok, req->seq_len, req->doc_sep)) return -1;
    ev->have_data = 1;
    ev->items = ls_malloc((size_t)(ev->d.n_items ? ev->d.n_items : 1) * sizeof(int));
    for (int i = 0; i < ev->d.n_items; i++) ev->items[i] = i;
    ev->n_items = task_subsample(ev->items, ev->d.n_items, req->max_items);
    return 0;
}

// Held-out loss (and SST-2 accuracy) on the items.
static int measure_loss(evaluation *ev, const evaluate_request *req, FILE *echo, evaluate_report *rep) {
    task_eval_result r;
    double t0 = ls_now();
    if (task_evaluate(&ev->m, &ev->d, ev->items, ev->n_items, req->batch_size, &r)) return -1;
    // A NaN/inf loss is an error, never a number to print or write (weights are
    // checked finite at load, so this is an overflow in the forward pass).
    if (!isfinite(r.loss))
        return ls_fail("%s: evaluation loss is %s on %d items of %s (expected a finite loss; the forward pass "
                       "overflowed with these weights%s%s)", req->model, isnan(r.loss) ? "nan" : "inf", r.n_items,
                       req->data, req->adapter[0] ? " and adapter " : "", req->adapter);
    rep->seconds = ls_now() - t0;
    rep->loss = r.loss;
    rep->perplexity = exp(r.loss);
    rep->tokens = r.n_tokens;
    rep->items = r.n_items;
    rep->accuracy = r.accuracy;
    if (echo) {
        fprintf(echo, "loss %.6f | perplexity %.4f | %ld tokens | %d items", rep->loss, rep->perplexity, rep->tokens,
                rep->items);
        if (isfinite(rep->accuracy)) fprintf(echo, " | accuracy %.4f", rep->accuracy);
        fprintf(echo, " | %.2f s\n", rep->seconds);
    }
    return 0;
}

// E2E: generation for the first req->generate MRs, BLEU and ROUGE-L.
static int generate_e2e(evaluation *ev, const evaluate_request *req, FILE *echo, evaluate_report *rep) {
    int greedy = req->beam == 1;
    eval_e2e_config gc = {0};
    gc.greedy = greedy;
    gc.gen = greedy ? gen_config_greedy(req->max_new, tok_eos(ev->tok)) : gen_config_paper(tok_eos(ev->tok));
    if (!greedy) {
        gc.gen.beam_size = req->beam;
        gc.gen.max_new_tokens = req->max_new;
    }
    gc.max_mrs = req->generate;
    gc.progress = isatty(2) ? 1 : 2;
    if (eval_e2e(&ev->m, ev->tok, &ev->d.pairs, &gc, &ev->gen)) return -1;
    ev->have_gen = 1;
    rep->generated = 1;
    rep->generated_mrs = ev->gen.n;
    rep->bleu = ev->gen.scores.bleu.bleu;
    rep->bleu_brevity_penalty = ev->gen.scores.bleu.brevity_penalty;
    rep->rouge_l = ev->gen.scores.rouge_l;
    rep->nist = ev->gen.scores.nist;
    rep->cider = ev->gen.scores.cider;
    rep->meteor = ev->gen.scores.meteor;
    rep->generated_tokens_per_s = eval_e2e_tokens_per_s(&ev->gen);
    if (echo)
        fprintf(echo,
                "E2E generation (%s, %d MRs): BLEU %.4f | NIST %.4f | METEOR (exact+stem+synonym, no paraphrase) "
                "%.4f | ROUGE-L %.4f | CIDEr %.4f | %.0f tokens/s\n",
                greedy ? "greedy" : "beam", rep->generated_mrs, rep->bleu, rep->nist, rep->meteor, rep->rouge_l,
                rep->cider, rep->generated_tokens_per_s);
    return 0;
}

// The first generated samples (MR, output, first reference) for the JSON.
static void add_samples(cJSON *root, const eval_e2e_result *gen) {
    cJSON *samples = cJSON_AddArrayToObject(root, "samples");
    for (int i = 0; i < gen->n && i < 5; i++) {
        cJSON *smp = cJSON_CreateObject();
        cJSON_AddStringToObject(smp, "mr", gen->mr[i]);
        cJSON_AddStringToObject(smp, "output", gen->hyp[i]);
        cJSON_AddStringToObject(smp, "reference", gen->n_refs[i] ? gen->refs[i][0] : "");
        cJSON_AddItemToArray(samples, smp);
    }
}

// A measure as the shortest decimal that reads back to the same double
// (cJSON's own printer keeps 15 digits when they are within an ulp, so a
// reader could get a neighbouring double). Non-finite values: cJSON's null.
static void add_measure(cJSON *o, const char *key, double v) {
    char buf[32];
    for (int digits = 15; isfinite(v) && digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) { cJSON_AddRawToObject(o, key, buf); return; }
    }
    cJSON_AddNumberToObject(o, key, v);
}

// req->out: the request's inputs and every measure, written atomically.
static int write_json(const evaluation *ev, const evaluate_request *req, const evaluate_report *rep) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", req->model);
    if (req->adapter[0]) cJSON_AddStringToObject(root, "adapter", req->adapter);
    cJSON_AddStringToObject(root, "data", req->data);
    cJSON_AddStringToObject(root, "task", req->task);
    cJSON_AddNumberToObject(root, "seq_len", req->seq_len);
    add_measure(root, "loss", rep->loss);
    add_measure(root, "perplexity", rep->perplexity);
    cJSON_AddNumberToObject(root, "tokens", (double)rep->tokens);
    cJSON_AddNumberToObject(root, "items", rep->items);
    if (isfinite(rep->accuracy)) add_measure(root, "accuracy", rep->accuracy);
    if (rep->generated) {
        add_measure(root, "bleu", rep->bleu);
        add_measure(root, "bleu_brevity_penalty", rep->bleu_brevity_penalty);
        add_measure(root, "rouge_l", rep->rouge_l);
        add_measure(root, "nist", rep->nist);
        add_measure(root, "cider", rep->cider);
        add_measure(root, "meteor_exact_stem_synonym", rep->meteor); // null without WordNet
        cJSON_AddNumberToObject(root, "generated_mrs", rep->generated_mrs);
        cJSON_AddStringToObject(root, "decoding", req->beam == 1 ? "greedy" : "beam");
        cJSON_AddNumberToObject(root, "beam", req->beam);
        cJSON_AddNumberToObject(root, "max_new_tokens", req->max_new);
        add_samples(root, &ev->gen);
    }
    cJSON_AddStringToObject(root, "lorascope_version", record_version());
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    int rc = ls_write_file_atomic(req->out, json, strlen(json));
    free(json);
    return rc;
}

// ----------------------------------------------------------------------------

int evaluate_run(const evaluate_request *req, FILE *echo, evaluate_report *rep) {
    memset(rep, 0, sizeof *rep);
    rep->accuracy = NAN;
    if (evaluate_check(req)) return -1;
    task_kind kind;
    task_parse_kind(req->task, &kind);
    train_set_threads(req->threads);
    evaluation ev = {0};
    int rc = evaluation_load(&ev, req, kind);
    if (!rc) rc = measure_loss(&ev, req, echo, rep);
    if (!rc && req->generate >= 0) rc = generate_e2e(&ev, req, echo, rep);
    if (!rc && req->out[0]) {
        rc = write_json(&ev, req, rep);
        if (!rc && echo) fprintf(echo, "result: %s\n", req->out);
    }
    evaluation_free(&ev);
    return rc;
}
