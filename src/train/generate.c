// generate: the request table, and text from a model + adapter.
#include "train/generate.h"

#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/parse.h"
#include "base/util.h"
#include "engine/backend_registry.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "train/import.h"
#include "train/task.h"
#include "train/train.h"

// ----------------------------------------------------------------------------
// the option table

#define S generate_request
static const opt_spec OPTIONS[] = {
    OPT_STR_(S, "generate", "model", "model", model, 0, "llama2.c .bin, HF dir (config.json + model.safetensors) or llama GGUF"),
    OPT_STR_(S, "generate", "tokenizer", "tokenizer", tokenizer, 0,
             "tokenizer.bin | dir with encoder.json + vocab.bpe | GGUF | bytes (default: beside the model; a GGUF model's own)"),
    OPT_STR_(S, "generate", "adapter", "adapter", adapter, 0,
             "PEFT adapter (or a run directory holding adapter/), merged into the weights"),
    OPT_INT_(S, "generate", "steps", "steps", steps, 1, 1 << 24, 0,
             "positions to run, BOS included, as llama2.c (at most max_seq_len)"),
    OPT_FLOAT_(S, "generate", "temperature", "temperature", temperature, 0, 100, 0, "0 = greedy argmax"),
    OPT_FLOAT_(S, "generate", "top_p", "top-p", top_p, 0, 1, LS_OPEN_LO,
               "nucleus sampling mass in (0, 1]; 1 = the whole distribution"),
    OPT_LLONG_(S, "generate", "seed", "seed", seed, 0, 4294967295.0, 0, "sampling seed"),
    OPT_STR_(S, "generate", "backend", "backend", backend, 0, "cpu | cuda | auto"),
    OPT_INT_(S, "generate", "threads", "threads", threads, 0, 1024, 0, "threads (0 = OpenMP's default)"),
};
#undef S

static const opt_table TABLE = {OPTIONS, (int)(sizeof OPTIONS / sizeof OPTIONS[0]), "generate",
                                "lorascope generate"};

const opt_table *generate_table(void) { return &TABLE; }

void generate_defaults(generate_request *req) {
    memset(req, 0, sizeof *req);
    req->steps = 256;
    req->temperature = 0.0;
    req->top_p = 0.9;
    req->seed = 1;
    snprintf(req->backend, sizeof req->backend, "cpu");
}

int generate_check(const generate_request *req) {
    if (!req->model[0]) return ls_fail("--model: required");
    if (!req->prompt) return ls_fail("--prompt: required (may be \"\")");
    if (req->steps < 1) return ls_fail("--steps: expected an integer in [1, %d], found '%d'", 1 << 24, req->steps);
    return ls_backend_check_name(req->backend);
}

// ----------------------------------------------------------------------------

void generate_report_free(generate_report *rep) {
    free(rep->text);
    memset(rep, 0, sizeof *rep);
}

// Prompt -> ids -> generated positions -> text, on a loaded model.
static int generate_text(ls_model *m, const tokenizer *tok, const generate_request *req, generate_report *rep) {
    int n_ids, rc = -1;
    int *ids = tok_encode(tok, req->prompt, 1, 0, &n_ids), *out = NULL;
    int room = m->P - model_cache_offset(m), n_steps = req->steps < room ? req->steps : room;
    if (n_ids < 1) {
        ls_fail("--prompt: the tokenizer has no BOS and the prompt is empty; expected at least one token");
    } else if (n_ids > n_steps) {
        ls_fail("--prompt: %d tokens do not fit in --steps %d", n_ids, n_steps);
    } else {
        ls_sampler sampler;
        sampler_init(&sampler, m->V, (float)req->temperature, (float)req->top_p, (uint64_t)req->seed);
        out = ls_malloc((size_t)(n_steps + 1) * sizeof(int));
        double t0 = ls_now();
        // llama2.c stops when BOS comes out; a tokenizer without BOS (GGUF
        // add_bos_token false, as SmolLM2) stops at EOS, as transformers does
        int stop = tok_bos(tok) >= 0 ? tok_bos(tok) : tok_eos(tok);
        int n = model_generate(m, ids, n_ids, n_steps, req->temperature > 0 ? &sampler : NULL, stop, out);
        rep->seconds = ls_now() - t0;
        sampler_free(&sampler);
        if (n >= 0) {
            rep->tokens = n;
            // the text after BOS; without BOS, all of it
            int skip = tok_bos(tok) >= 0 ? 1 : 0;
            rep->text = tok_decode(tok, skip ? out[0] : -1, out + skip, n - skip, &rep->len);
            rc = 0;
        }
    }
    free(out);
    free(ids);
    return rc;
}

int generate_run(const generate_request *req, generate_report *rep) {
    memset(rep, 0, sizeof *rep);
    if (generate_check(req)) return -1;
    train_set_threads(req->threads);
    ls_model m;
    if (task_load_model(&m, NULL, req->model, ls_backend_by_name(req->backend))) return -1;
    int rc = -1;
    tokenizer *tok = task_load_tokenizer(req->tokenizer, req->model, m.V, NULL);
    if (tok && !(req->adapter[0] && import_adapter_dir(&m, req->adapter))) rc = generate_text(&m, tok, req, rep);
    if (tok) tok_free(tok);
    model_free(&m);
    return rc;
}
