// train_config: one option table for INI files, flags and config.ini.
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "train/train_config.h"

// ----------------------------------------------------------------------------
// the option table

typedef enum { T_INT, T_LLONG, T_FLOAT, T_BOOL, T_STR, T_CHOICE } opt_type;

typedef struct {
    const char *section, *key, *flag;
    opt_type type;
    size_t offset, size;    // into ls_train_config; size for strings
    double lo, hi;          // inclusive range of numbers (ints and floats)
    int open;               // bit 1: the range excludes lo; bit 2: excludes hi
    const char *choices;    // T_CHOICE: "a|b|c"
    int run_control;        // may change on --resume
    int hidden;             // not in --help
    const char *help;
} tc_option;

#define OFF(f) offsetof(ls_train_config, f)
#define SZ(f) sizeof(((ls_train_config *)0)->f)
#define STR(sec, key, flag, f, rc, help) {sec, key, flag, T_STR, OFF(f), SZ(f), 0, 0, 0, NULL, rc, 0, help}
#define CHOICE(sec, key, flag, f, ch, help) {sec, key, flag, T_CHOICE, OFF(f), SZ(f), 0, 0, 0, ch, 0, 0, help}
#define INT(sec, key, flag, f, lo, hi, rc, help) {sec, key, flag, T_INT, OFF(f), 0, lo, hi, 0, NULL, rc, 0, help}
#define FLT(sec, key, flag, f, lo, hi, open, help) {sec, key, flag, T_FLOAT, OFF(f), 0, lo, hi, open, NULL, 0, 0, help}
#define BOOL(sec, key, flag, f, help) {sec, key, flag, T_BOOL, OFF(f), 0, 0, 1, 0, NULL, 0, 0, help}

static const tc_option OPTIONS[] = {
    STR("model", "path", "model", model, 0, "base checkpoint: llama2.c .bin or HF dir (config.json + model.safetensors)"),
    STR("model", "tokenizer", "tokenizer", tokenizer, 0,
        "tokenizer.bin | dir with encoder.json + vocab.bpe | bytes (default: found beside the model)"),
    CHOICE("data", "task", "task", task, "lm|e2e|sst2|jsonl", "data format: plain text, E2E, SST-2 TSV, JSONL"),
    STR("data", "train", "data", data, 0, "training data file"),
    STR("data", "val", "val-data", val_data, 0, "held-out file (default: split --val-frac off the training data)"),
    FLT("data", "val_frac", "val-frac", val_frac, 0, 1, 2, "fraction of groups held out without --val-data"),
    INT("data", "seq_len", "seq-len", seq_len, 2, 1 << 20, 0, "positions per row T: examples cut to T+1 tokens, lm windows of T+1"),
    STR("data", "doc_sep", "doc-sep", doc_sep, 0, "lm: document separator, \\n and \\t as escapes (e.g. <|endoftext|>, \\n\\n)"),
    INT("data", "eval_max", "eval-max", eval_max, 0, 1 << 30, 1, "validation examples per evaluation (0 = all)"),
    BOOL("lora", "full", "full", full, "full fine-tuning: every base weight trainable, no adapter"),
    STR("lora", "modules", "lora", modules, 0, "adapted modules: llama q k v o gate up down; gpt2 c_attn c_proj c_fc mlp_proj; all"),
    INT("lora", "rank", "rank", rank, 1, 65536, 0, "rank r (1 <= r <= min(d_in, d_out))"),
    FLT("lora", "alpha", "alpha", alpha, 0, 1e6, 1, "scaling s = alpha / r"),
    BOOL("lora", "rslora", "rslora", rslora, "rsLoRA scaling s = alpha / sqrt(r)"),
    FLT("lora", "dropout", "lora-dropout", lora_dropout, 0, 1, 2, "dropout probability on the LoRA input"),
    CHOICE("lora", "init", "init", init, "gaussian|kaiming|pissa", "A initialisation (B = 0, except pissa)"),
    FLT("lora", "init_std", "init-std", init_std, 0, 10, 0, "gaussian: std of A (0 = 1/r)"),
    STR("lora", "layers", "layers", layers, 0, "adapted layers: all or a comma list"),
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
    {"optim", "seed", "seed", T_LLONG, OFF(seed), 0, 0, 4294967295.0, 0, NULL, 0, 0, "seed: data order, LoRA init, dropout"},
    INT("run", "eval_every", "eval-every", eval_every, 0, 100000000, 1, "evaluate every N steps (0 = at start and end only)"),
    INT("run", "save_every", "save-every", save_every, 0, 100000000, 1, "checkpoint every N steps (0 = at the end only)"),
    INT("run", "log_every", "log-every", log_every, 1, 100000000, 1, "progress line every N steps when stderr is not a terminal"),
    INT("run", "threads", "threads", threads, 0, 1024, 0, "threads (0 = OpenMP's default); same threads + seed = same bits"),
    CHOICE("run", "backend", "backend", backend, "cpu|cuda|auto", "where the ops run: cpu, cuda (error without a GPU), auto"),
    STR("run", "out", "out", out, 1, "run directory (config.ini, metrics.jsonl, checkpoint/, adapter/, manifest.json)"),
    STR("run", "merged_out", "merged-out", merged_out, 1, "also write merged weights as an HF checkpoint here"),
    {"run", "stop_after", "stop-after", T_INT, OFF(stop_after), 0, 0, 100000000, 0, NULL, 1, 1,
     "tests: kill the process (SIGKILL) right after this step"},
};
#define N_OPTIONS (int)(sizeof OPTIONS / sizeof OPTIONS[0])

void tc_defaults(ls_train_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->task, sizeof c->task, "lm");
    c->val_frac = 0.1;
    c->seq_len = 128;
    c->eval_max = 0;
    snprintf(c->modules, sizeof c->modules, "q,v");
    c->rank = 8;
    c->alpha = 16;
    snprintf(c->init, sizeof c->init, "kaiming");
    snprintf(c->layers, sizeof c->layers, "all");
    c->steps = 100;
    c->batch_size = 8;
    c->grad_accum = 1;
    c->lr = 2e-4;
    snprintf(c->schedule, sizeof c->schedule, "linear");
    snprintf(c->backend, sizeof c->backend, "cpu");
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

static const tc_option *find_option(const char *section, const char *key) {
    for (int i = 0; i < N_OPTIONS; i++) {
        const tc_option *o = &OPTIONS[i];
        if (strcmp(o->key, key)) continue;
        if (!section || !strcmp(o->section, section)) return o;
    }
    return NULL;
}

static const tc_option *find_flag(const char *flag) {
    for (int i = 0; i < N_OPTIONS; i++)
        if (!strcmp(OPTIONS[i].flag, flag)) return &OPTIONS[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// setting values

static int parse_bool(const char *v, int *out) {
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int set_option(ls_train_config *c, const tc_option *o, const char *value, const char *who) {
    char *base = (char *)c + o->offset;
    switch (o->type) {
    case T_STR:
        if (strlen(value) >= o->size)
            return ls_fail("%s: expected at most %zu characters, found %zu", who, o->size - 1, strlen(value));
        memcpy(base, value, strlen(value) + 1);
        return 0;
    case T_CHOICE: {
        size_t n = strlen(value);
        const char *p = o->choices;
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t k = bar ? (size_t)(bar - p) : strlen(p);
            if (k == n && !strncmp(p, value, n)) {
                memcpy(base, value, n + 1);
                return 0;
            }
            p += k + (bar != NULL);
        }
        return ls_fail("%s: expected one of %s, found '%s'", who, o->choices, value);
    }
    case T_BOOL: {
        int b;
        if (parse_bool(value, &b)) return ls_fail("%s: expected true or false, found '%s'", who, value);
        *(int *)base = b;
        return 0;
    }
    case T_INT:
    case T_LLONG: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno || (double)v < o->lo || (double)v > o->hi)
            return ls_fail("%s: expected an integer in [%.0f, %.0f], found '%s'", who, o->lo, o->hi, value);
        if (o->type == T_INT) *(int *)base = (int)v;
        else *(long long *)base = v;
        return 0;
    }
    case T_FLOAT: {
        char *end;
        double v = strtod(value, &end);
        int ok = *value && !*end && isfinite(v) && (o->open & 1 ? v > o->lo : v >= o->lo) &&
                 (o->open & 2 ? v < o->hi : v <= o->hi);
        if (!ok)
            return ls_fail("%s: expected a number in %c%g, %g%c, found '%s'", who, o->open & 1 ? '(' : '[', o->lo,
                           o->hi, o->open & 2 ? ')' : ']', value);
        *(double *)base = v;
        return 0;
    }
    }
    return -1;
}

int tc_set(ls_train_config *c, const char *section, const char *key, const char *value, const char *who) {
    const tc_option *o = NULL;
    if (!section && strchr(key, '.')) {
        char sec[64];
        size_t n = (size_t)(strchr(key, '.') - key);
        if (n < sizeof sec) {
            memcpy(sec, key, n);
            sec[n] = 0;
            o = find_option(sec, key + n + 1);
        }
    } else {
        o = find_option(section, key);
    }
    if (!o) {
        if (section) {
            int known_section = 0;
            for (int i = 0; i < N_OPTIONS; i++) known_section |= !strcmp(OPTIONS[i].section, section);
            if (!known_section)
                return ls_fail("%s: unknown section [%s] (expected model, data, lora, optim or run)", who, section);
            return ls_fail("%s: unknown key '%s' in section [%s]", who, key, section);
        }
        return ls_fail("%s: unknown key '%s'", who, key);
    }
    return set_option(c, o, value, who);
}

// ----------------------------------------------------------------------------
// INI files

typedef struct {
    ls_train_config *c;
    FILE *fp;
    const char *path;
    int line;
    int failed;
    char err[1024];
} ini_ctx;

// Reader for ini_parse_stream that counts lines, so that errors can name them.
static char *counting_reader(char *str, int num, void *stream) {
    ini_ctx *x = stream;
    char *r = fgets(str, num, x->fp);
    if (r) x->line++;
    return r;
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value) {
    ini_ctx *x = user;
    if (x->failed) return 0;
    char who[1200];
    snprintf(who, sizeof who, "%s:%d: [%s] %s", x->path, x->line, section, name);
    if (!*section) {
        ls_fail("%s:%d: key '%s' outside a section (expected [model], [data], [lora], [optim] or [run])", x->path,
                x->line, name);
    } else if (tc_set(x->c, section, name, value ? value : "", who) == 0) {
        return 1;
    }
    snprintf(x->err, sizeof x->err, "%s", ls_error());
    x->failed = 1;
    return 0;
}

int tc_load_ini(ls_train_config *c, const char *path) {
    ini_ctx x = {.c = c, .path = path};
    x.fp = fopen(path, "r");
    if (!x.fp) return ls_fail("%s: cannot open config file: %s", path, strerror(errno));
    int rc = ini_parse_stream(counting_reader, &x, on_ini_entry, &x);
    fclose(x.fp);
    if (x.failed) return ls_fail("%s", x.err);
    if (rc > 0) return ls_fail("%s:%d: syntax error (expected [section], key = value or a ; comment)", path, rc);
    if (rc < 0) return ls_fail("%s: cannot parse config file", path);
    return 0;
}

// ----------------------------------------------------------------------------
// flags

int tc_flag_names(const char **names, int max) {
    int n = 0;
    for (int i = 0; i < N_OPTIONS && n < max; i++) names[n++] = OPTIONS[i].flag;
    return n;
}

int tc_flag_is_bool(const char *flag) {
    const tc_option *o = find_flag(flag);
    return o && o->type == T_BOOL;
}

int tc_set_flag(ls_train_config *c, const char *flag, const char *value) {
    const tc_option *o = find_flag(flag);
    if (!o) return ls_fail("unknown option '--%s'", flag);
    char who[128];
    snprintf(who, sizeof who, "--%s", flag);
    return set_option(c, o, value ? value : "true", who);
}

// ----------------------------------------------------------------------------
// checks, output

int tc_validate(const ls_train_config *c) {
    if (!c->model[0]) return ls_fail("[model] path (--model): required");
    if (!c->data[0]) return ls_fail("[data] train (--data): required");
    if (!c->out[0]) return ls_fail("[run] out (--out): required (the run directory)");
    if (c->warmup > c->steps)
        return ls_fail("[optim] warmup (--warmup): expected at most steps = %d, found %d", c->steps, c->warmup);
    if (c->stop_after < 0 || c->stop_after > c->steps)
        return ls_fail("[run] stop_after (--stop-after): expected 0..steps = %d, found %d", c->steps, c->stop_after);
    if (c->merged_out[0] && c->out[0] && !strcmp(c->merged_out, c->out))
        return ls_fail("[run] merged_out (--merged-out): expected a directory other than the run directory");
    return 0;
}

static void format_value(const ls_train_config *c, const tc_option *o, char *buf, size_t size) {
    const char *base = (const char *)c + o->offset;
    switch (o->type) {
    case T_STR:
    case T_CHOICE: snprintf(buf, size, "%s", base); break;
    case T_BOOL: snprintf(buf, size, "%s", *(const int *)base ? "true" : "false"); break;
    case T_INT: snprintf(buf, size, "%d", *(const int *)base); break;
    case T_LLONG: snprintf(buf, size, "%lld", *(const long long *)base); break;
    case T_FLOAT: { // the shortest text that reads back as the same double
        double v = *(const double *)base;
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        break;
    }
    }
}

char *tc_to_ini(const ls_train_config *c) {
    size_t cap = 16384, len = 0;
    char *out = ls_malloc(cap);
    out[0] = 0;
    const char *section = "";
    char val[TC_PATH + 8];
    for (int i = 0; i < N_OPTIONS; i++) {
        const tc_option *o = &OPTIONS[i];
        if (o->hidden) continue;
        format_value(c, o, val, sizeof val);
        char line[TC_PATH + 128];
        int n = 0;
        if (strcmp(section, o->section)) {
            n = snprintf(line, sizeof line, "%s[%s]\n", len ? "\n" : "", o->section);
            section = o->section;
            if (len + (size_t)n + 1 > cap) out = realloc(out, cap *= 2);
            memcpy(out + len, line, (size_t)n + 1);
            len += (size_t)n;
        }
        n = snprintf(line, sizeof line, "%s = %s\n", o->key, val);
        while (len + (size_t)n + 1 > cap) out = realloc(out, cap *= 2);
        ls_assert(out != NULL);
        memcpy(out + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    return out;
}

int tc_compare_for_resume(const ls_train_config *run, const ls_train_config *now) {
    char a[TC_PATH + 8], b[TC_PATH + 8];
    for (int i = 0; i < N_OPTIONS; i++) {
        const tc_option *o = &OPTIONS[i];
        if (o->run_control) continue;
        format_value(run, o, a, sizeof a);
        format_value(now, o, b, sizeof b);
        if (strcmp(a, b))
            return ls_fail("[%s] %s (--%s): the run was started with '%s', found '%s' (only run options may change "
                           "on --resume)", o->section, o->key, o->flag, a, b);
    }
    return 0;
}

void tc_print_help(FILE *fp) {
    ls_train_config d;
    tc_defaults(&d);
    char val[TC_PATH + 8], flag[64];
    const char *section = "";
    for (int i = 0; i < N_OPTIONS; i++) {
        const tc_option *o = &OPTIONS[i];
        if (o->hidden) continue;
        if (strcmp(section, o->section)) {
            fprintf(fp, "\n[%s]\n", o->section);
            section = o->section;
        }
        format_value(&d, o, val, sizeof val);
        if (o->type == T_FLOAT) snprintf(val, sizeof val, "%g", *(const double *)((const char *)&d + o->offset));
        snprintf(flag, sizeof flag, "--%s%s", o->flag, o->type == T_BOOL ? "" : " X");
        fprintf(fp, "  %-22s %-16s %s%s%s%s\n", flag, o->key, o->help, val[0] ? " [" : "", val, val[0] ? "]" : "");
    }
}
