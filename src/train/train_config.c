// train_config: one option table for INI files, flags and config.ini.
#include "train/train_config.h"

#include <stddef.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"

// ----------------------------------------------------------------------------
// the option table

#define S ls_train_config
#define STR(sec, key, flag, f, rc, help) OPT_STR_(S, sec, key, flag, f, rc, help)
#define CHOICE(sec, key, flag, f, ch, help) OPT_CHOICE_(S, sec, key, flag, f, ch, help)
#define INT(sec, key, flag, f, lo, hi, rc, help) OPT_INT_(S, sec, key, flag, f, lo, hi, rc, help)
#define FLT(sec, key, flag, f, lo, hi, open, help) OPT_FLOAT_(S, sec, key, flag, f, lo, hi, open, help)
#define BOOL(sec, key, flag, f, help) OPT_BOOL_(S, sec, key, flag, f, help)

static const opt_spec OPTIONS[] = {
    STR("model", "path", "model", model, 0, "base checkpoint: llama2.c .bin, HF dir (config.json + model.safetensors) or llama GGUF"),
    STR("model", "tokenizer", "tokenizer", tokenizer, 0,
        "tokenizer.bin | dir with encoder.json + vocab.bpe | GGUF | bytes (default: beside the model; a GGUF model's own)"),
    CHOICE("data", "task", "task", task, "lm|e2e|sst2|jsonl", "data format: plain text, E2E, SST-2 TSV (an encoder: sequence classification), JSONL"),
    STR("data", "train", "data", data, 0, "training data file"),
    STR("data", "val", "val-data", val_data, 0, "held-out file (default: split --val-frac off the training data)"),
    FLT("data", "val_frac", "val-frac", val_frac, 0, 1, 2, "fraction of groups held out without --val-data"),
    INT("data", "seq_len", "seq-len", seq_len, 2, 1 << 20, 0, "positions per row T: examples cut to T+1 tokens, lm windows of T+1"),
    STR("data", "doc_sep", "doc-sep", doc_sep, 0, "lm: document separator, \\n and \\t as escapes (e.g. <|endoftext|>, \\n\\n)"),
    INT("data", "eval_max", "eval-max", eval_max, 0, 1 << 30, 1, "validation examples per evaluation (0 = all)"),
    BOOL("lora", "full", "full", full, "full fine-tuning: every base weight trainable, no adapter (= --method full)"),
    CHOICE("lora", "method", "method", method, "lora|full|bitfit|fttop2|adapter-h|adapter-l|prefix-layer|prefix-embed",
           "what trains: LoRA; full fine-tuning; BitFit (biases); FT^Top2 (last two layers); Adapter^H / ^L "
           "(bottleneck adapters, engine/adapters.h); encoders: + head; prefix-layer (decoders and encoders, + head: engine/prefix.h); "
           "prefix-embed (virtual token embeddings; decoders and encoders: engine/prompt.h)"),
    INT("lora", "adapter_size", "adapter-size", adapter_size, 1, 65536, 0, "adapter-h / adapter-l: bottleneck size r"),
    INT("lora", "prefix_len", "prefix-len", prefix_len, 1, 4096, 0, "prefix-layer: l_p trainable keys and values per layer; prefix-embed: l_p virtual tokens"),
    CHOICE("lora", "prefix_init", "prefix-init", prefix_init, "random|text",
           "prefix-layer / prefix-embed: PEFT's N(0, 1), or from the first training example's first l_p tokens (their keys and values / word embeddings)"),
    STR("lora", "modules", "lora", modules, 0, "adapted modules: llama q k v o gate up down; gpt2 c_attn c_proj c_fc mlp_proj; all"),
    INT("lora", "rank", "rank", rank, 1, 65536, 0, "rank r (1 <= r <= min(d_in, d_out))"),
    FLT("lora", "alpha", "alpha", alpha, 0, 1e6, 1, "scaling s = alpha / r"),
    BOOL("lora", "rslora", "rslora", rslora, "rsLoRA scaling s = alpha / sqrt(r)"),
    FLT("lora", "dropout", "lora-dropout", lora_dropout, 0, 1, 2, "dropout probability on the LoRA input"),
    CHOICE("lora", "init", "init", init, "gaussian|kaiming|pissa", "A initialisation (B = 0, except pissa)"),
    FLT("lora", "init_std", "init-std", init_std, 0, 10, 0, "gaussian: std of A (0 = 1/r)"),
    STR("lora", "layers", "layers", layers, 0, "adapted layers: all or a comma list"),
    CHOICE("lora", "modules_to_save", "modules-to-save", modules_to_save, "classifier|classifier,pooler",
           "encoder + LoRA: the head trained in full (PEFT's modules_to_save); bert: classifier,pooler adds the pooler"),
    INT("optim", "steps", "steps", steps, 1, 100000000, 0, "optimizer steps"),
    INT("optim", "batch_size", "batch-size", batch_size, 1, 65536, 0, "sequences per micro-batch"),
    INT("optim", "grad_accum", "grad-accum", grad_accum, 1, 65536, 0, "micro-batches per step (each micro-batch's mean loss weighs 1/grad_accum)"),
    FLT("optim", "lr", "lr", lr, 0, 1e30, 1, "peak learning rate"),
    CHOICE("optim", "schedule", "schedule", schedule, "constant|linear|cosine", "decay after warmup (transformers' schedules)"),
    INT("optim", "warmup", "warmup", warmup, 0, 100000000, 0, "warmup steps (lr rises linearly from 0)"),
    FLT("optim", "weight_decay", "weight-decay", weight_decay, 0, 10, 0, "AdamW decoupled weight decay (not on biases and norms)"),
    FLT("optim", "beta1", "beta1", beta1, 0, 1, 2, "AdamW beta1, in [0, 1)"),
    FLT("optim", "beta2", "beta2", beta2, 0, 1, 2, "AdamW beta2, in [0, 1)"),
    FLT("optim", "eps", "adam-eps", adam_eps, 0, 1, 1, "AdamW epsilon"),
    FLT("optim", "clip", "clip", clip, 0, 1e12, 0, "max global gradient norm (0 = no clipping)"),
    FLT("optim", "label_smoothing", "label-smoothing", label_smoothing, 0, 1, 2, "label smoothing of the cross-entropy"),
    FLT("optim", "hidden_dropout", "hidden-dropout", hidden_dropout, 0, 1, 2,
        "encoders: HF's hidden dropout (hidden_dropout_prob, 0.1 in BERT's configs) while training, on the embeddings, "
        "each sublayer's output and the classifier's input; not on attention probabilities (0 = none)"),
    OPT_LLONG_(S, "optim", "seed", "seed", seed, 0, 4294967295.0, 0, "seed: data order, LoRA init, dropout"),
    INT("run", "eval_every", "eval-every", eval_every, 0, 100000000, 1, "evaluate every N steps (0 = at start and end only)"),
    INT("run", "save_every", "save-every", save_every, 0, 100000000, 1, "checkpoint every N steps (0 = at the end only)"),
    INT("run", "log_every", "log-every", log_every, 1, 100000000, 1, "progress line every N steps when stderr is not a terminal"),
    INT("run", "threads", "threads", threads, 0, 1024, 0, "threads (0 = OpenMP's default); same threads + seed = same bits"),
    CHOICE("run", "backend", "backend", backend, "cpu|cuda|auto", "where the ops run: cpu, cuda (error without a GPU), auto"),
    CHOICE("run", "precision", "precision", precision, "fp32|tf32|bf16",
           "cuda: the products' compute, fp32, tf32, or bf16 (cuBLAS, and tensor-core attention); cpu: fp32 only"),
    STR("run", "out", "out", out, 1, "run directory (config.ini, metrics.jsonl, checkpoint/, adapter/, manifest.json)"),
    STR("run", "merged_out", "merged-out", merged_out, 1, "also write merged weights as an HF checkpoint here"),
    {"run", "stop_after", "stop-after", OPT_INT, offsetof(S, stop_after), 0, 0, 100000000, 0, NULL, 1, 1,
     "tests: kill the process (SIGKILL) right after this step"},
};
#undef S
#undef STR
#undef CHOICE
#undef INT
#undef FLT
#undef BOOL

static const opt_table TABLE = {OPTIONS, (int)(sizeof OPTIONS / sizeof OPTIONS[0]), "model, data, lora, optim or run",
                                "lorascope train"};

const opt_table *tc_table(void) { return &TABLE; }

void tc_defaults(ls_train_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->task, sizeof c->task, "lm");
    c->val_frac = 0.1;
    c->seq_len = 128;
    c->eval_max = 0;
    snprintf(c->method, sizeof c->method, "lora");
    c->adapter_size = 8;
    c->prefix_len = 10;
    snprintf(c->prefix_init, sizeof c->prefix_init, "random");
    snprintf(c->modules, sizeof c->modules, "q,v");
    c->rank = 8;
    c->alpha = 16;
    snprintf(c->init, sizeof c->init, "kaiming");
    snprintf(c->layers, sizeof c->layers, "all");
    snprintf(c->modules_to_save, sizeof c->modules_to_save, "classifier");
    c->steps = 100;
    c->batch_size = 8;
    c->grad_accum = 1;
    c->lr = 2e-4;
    snprintf(c->schedule, sizeof c->schedule, "linear");
    snprintf(c->backend, sizeof c->backend, "cpu");
    snprintf(c->precision, sizeof c->precision, "fp32");
    c->warmup = 0;
    c->weight_decay = 0.01;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->clip = 1.0;
    c->seed = 1;
    c->eval_every = 0;
    c->save_every = 0;
    c->log_every = 10;
}

int tc_set(ls_train_config *c, const char *section, const char *key, const char *value, const char *who) {
    return opt_set_key(&TABLE, c, section, key, value, who);
}

int tc_load_ini(ls_train_config *c, const char *path) { return opt_load_ini(&TABLE, c, path); }

int tc_flag_names(const char **names, int max) {
    int n = 0;
    for (int i = 0; i < TABLE.n && n < max; i++) names[n++] = OPTIONS[i].flag;
    return n;
}

int tc_flag_is_bool(const char *flag) {
    const opt_spec *o = opt_find_flag(&TABLE, flag);
    return o && o->type == OPT_BOOL;
}

int tc_set_flag(ls_train_config *c, const char *flag, const char *value) {
    return opt_set_flag(&TABLE, c, flag, value);
}

// ----------------------------------------------------------------------------
// checks, output

static const char *const METHOD_NAMES[] = {"lora", "full", "bitfit", "fttop2", "adapter-h", "adapter-l", "prefix-layer",
                                           "prefix-embed"};

tc_method_kind tc_method(const ls_train_config *c) {
    if (c->full) return TC_FULL;
    for (int k = 0; k < (int)(sizeof METHOD_NAMES / sizeof *METHOD_NAMES); k++)
        if (!strcmp(c->method, METHOD_NAMES[k])) return (tc_method_kind)k;
    return TC_LORA;
}

const char *tc_method_name(tc_method_kind k) { return METHOD_NAMES[k]; }

int tc_validate(const ls_train_config *c) {
    if (!c->model[0]) return ls_fail("[model] path (--model): required");
    if (!c->data[0]) return ls_fail("[data] train (--data): required");
    if (!c->out[0]) return ls_fail("[run] out (--out): required (the run directory)");
    if (c->full && strcmp(c->method, "lora") && strcmp(c->method, "full"))
        return ls_fail("[lora] full (--full): expected no other method with it (--full is --method full), found "
                       "method %s", c->method);
    if (c->warmup > c->steps)
        return ls_fail("[optim] warmup (--warmup): expected at most steps = %d, found %d", c->steps, c->warmup);
    if (c->stop_after < 0 || c->stop_after > c->steps)
        return ls_fail("[run] stop_after (--stop-after): expected 0..steps = %d, found %d", c->steps, c->stop_after);
    if (c->merged_out[0] && c->out[0] && !strcmp(c->merged_out, c->out))
        return ls_fail("[run] merged_out (--merged-out): expected a directory other than the run directory");
    return 0;
}

char *tc_to_ini(const ls_train_config *c) { return opt_to_ini(&TABLE, c); }

int tc_compare_for_resume(const ls_train_config *run, const ls_train_config *now, int inputs_by_content) {
    static const char *const inputs[] = {"model.path", "model.tokenizer", "data.train", "data.val", NULL};
    return opt_compare(&TABLE, run, now, inputs_by_content ? inputs : NULL);
}

void tc_print_help(FILE *fp) {
    ls_train_config d;
    tc_defaults(&d);
    opt_print_help(&TABLE, &d, fp);
}
