// task: model + tokenizer loading, data sets as items, batches, evaluation.
#include "train/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "eval/tasks.h"

static const char *const KIND_NAMES[] = {"lm", "e2e", "sst2", "jsonl"};

int task_parse_kind(const char *name, task_kind *out) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, KIND_NAMES[i])) {
            *out = (task_kind)i;
            return 0;
        }
    return ls_fail("task: expected lm, e2e, sst2 or jsonl, found '%s'", name);
}

const char *task_kind_name(task_kind k) { return (unsigned)k < 4 ? KIND_NAMES[k] : "?"; }

// ----------------------------------------------------------------------------
// model and tokenizer

// kind < 0: a command that runs decoders only (generate).
static int load_model(ls_model *m, ls_checkpoint *ck, const char *path, const ls_backend *be, int kind) {
    ls_checkpoint local;
    ls_checkpoint *c = ck ? ck : &local;
    if (ckpt_load(c, path)) return -1;
    if (arch_is_encoder(c->config.family) && kind != TASK_SST2) {
        if (kind < 0)
            ls_fail("%s: a %s model is an encoder: generate runs decoders only (train and eval classify with it: "
                    "--task sst2; analyze --base reads it)", path, arch_family_name(c->config.family));
        else
            ls_fail("%s: --task %s: expected a decoder model, found a %s encoder (encoders train and evaluate "
                    "sequence classification: --task sst2)", path, task_kind_name((task_kind)kind),
                    arch_family_name(c->config.family));
        if (!ck) ckpt_free(c);
        return -1;
    }
    int rc = model_build_from_checkpoint(m, c, be);
    if (!ck || rc) ckpt_free(c);
    return rc;
}

int task_load_model(ls_model *m, ls_checkpoint *ck, const char *path, const ls_backend *be) {
    return load_model(m, ck, path, be, -1);
}

int task_load_model_for(ls_model *m, ls_checkpoint *ck, const char *path, const ls_backend *be, task_kind kind) {
    return load_model(m, ck, path, be, (int)kind);
}

tokenizer *task_load_tokenizer(const char *spec, const char *model_path, int V, char **used_path) {
    char *path = NULL;
    tokenizer *t = tok_load_for_model(model_path, spec, V, &path);
    if (t && tok_vocab_size(t) > V) {
        ls_fail("%s: tokenizer has %d tokens, expected at most the model's vocab_size %d", path,
                tok_vocab_size(t), V);
        tok_free(t);
        t = NULL;
    }
    if (t && used_path) *used_path = path;
    else free(path);
    return t;
}

// ----------------------------------------------------------------------------
// data

int task_data_load(task_data *d, task_kind kind, const char *path, const tokenizer *tok, int seq_len,
                   const char *doc_sep) {
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->seq_len = seq_len;
    if (kind == TASK_LM) {
        // "\n", "\t" and "\\" in the separator are escapes (an INI value is one line)
        char sep[256];
        size_t k = 0;
        for (const char *p = doc_sep ? doc_sep : ""; *p && k + 1 < sizeof sep; p++) {
            if (p[0] == '\\' && (p[1] == 'n' || p[1] == 't' || p[1] == '\\')) {
                sep[k++] = p[1] == 'n' ? '\n' : p[1] == 't' ? '\t' : '\\';
                p++;
            } else {
                sep[k++] = *p;
            }
        }
        sep[k] = 0;
        if (ds_text_load(&d->text, path, tok, sep, seq_len)) return -1;
        d->n_items = d->text.n_windows;
        d->n_groups = d->n_items;
        return 0;
    }
    int rc = kind == TASK_E2E ? ds_load_e2e(&d->pairs, path)
             : kind == TASK_SST2 ? ds_load_sst2(&d->pairs, path, NULL)
                                 : ds_load_jsonl(&d->pairs, path);
    if (rc) return -1;
    if (d->pairs.n == 0) {
        ds_pairs_free(&d->pairs);
        return ls_fail("%s: expected at least one example, found none", path);
    }
    ds_format fmt = ds_format_default(tok, seq_len + 1);
    if (ds_pairs_tokenize(&d->pairs, tok, &fmt)) {
        ds_pairs_free(&d->pairs);
        return -1;
    }
    d->n_items = d->pairs.n;
    d->n_groups = d->pairs.n_groups;
    return 0;
}

int task_data_load_for(task_data *d, const ls_model *m, task_kind kind, const char *path, const tokenizer *tok,
                       int seq_len, const char *doc_sep) {
    if (!arch_is_encoder(m->cfg.family)) return task_data_load(d, kind, path, tok, seq_len, doc_sep);
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->seq_len = seq_len;
    d->classify = 1;
    ls_assert(kind == TASK_SST2); // task_load_model_for refused the other kinds
    ds_sst2_format fmt = ds_sst2_format_default();
    fmt.prompt = "{sentence}";
    if (ds_load_sst2(&d->pairs, path, &fmt)) return -1;
    int rc = 0;
    if (d->pairs.n == 0) rc = ls_fail("%s: expected at least one example, found none", path);
    else if (d->pairs.n_labels > m->cfg.num_labels)
        rc = ls_fail("%s: expected labels in [0, %d) (the model's num_labels), found %d classes", path,
                     m->cfg.num_labels, d->pairs.n_labels);
    if (!rc) rc = ds_classify_tokenize(&d->cls, &d->pairs, tok, seq_len);
    if (rc) {
        ds_pairs_free(&d->pairs);
        memset(d, 0, sizeof *d);
        return -1;
    }
    d->pad = tok_pad(tok) >= 0 ? tok_pad(tok) : 0;
    d->n_items = d->cls.n;
    d->n_groups = d->pairs.n_groups;
    return 0;
}

void task_data_free(task_data *d) {
    if (d->classify) ds_classify_free(&d->cls);
    if (d->kind == TASK_LM) ds_text_free(&d->text);
    else ds_pairs_free(&d->pairs);
    memset(d, 0, sizeof *d);
}

int task_data_split(const task_data *d, double val_frac, uint64_t seed, int **train, int *n_train, int **val,
                    int *n_val) {
    if (d->kind == TASK_LM) return ds_split(d->n_items, NULL, d->n_items, val_frac, seed, train, n_train, val, n_val);
    return ds_pairs_split(&d->pairs, val_frac, seed, train, n_train, val, n_val);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int task_subsample(int *items, int n, int max) {
    if (max <= 0 || n <= max) return n;
    ds_shuffle(items, n, 0x5EED);
    qsort(items, (size_t)max, sizeof(int), cmp_int);
    return max;
}

int task_max_T(const task_data *d) {
    if (d->kind == TASK_LM) return d->text.T;
    if (d->classify) {
        int T = 1;
        for (int i = 0; i < d->cls.n; i++)
            if (d->cls.n_tokens[i] > T) T = d->cls.n_tokens[i];
        return T;
    }
    int T = 1;
    for (int i = 0; i < d->pairs.n; i++)
        if (d->pairs.n_tokens[i] - 1 > T) T = d->pairs.n_tokens[i] - 1;
    return T;
}

long task_item_loss_tokens(const task_data *d, int item) {
    if (d->kind == TASK_LM) return d->text.T;
    if (d->classify) return 1;
    long n = 0;
    for (int t = 1; t < d->pairs.n_tokens[item]; t++) n += d->pairs.mask[item][t];
    return n;
}

void task_batch_init(task_batch *tb, int Bcap, int Tcap) {
    ds_batch_init(&tb->b, Bcap, Tcap);
    tb->Bcap = Bcap;
    tb->Tcap = Tcap;
    tb->keymask = ls_malloc((size_t)Bcap * Tcap * sizeof(int));
    tb->labels = ls_malloc((size_t)Bcap * sizeof(int));
}

void task_batch_free(task_batch *tb) {
    ds_batch_free(&tb->b);
    free(tb->keymask);
    free(tb->labels);
    tb->keymask = tb->labels = NULL;
    tb->Bcap = tb->Tcap = 0;
}

int task_fill_batch(const task_data *d, const int *items, int n, task_batch *tb) {
    ls_assert(n >= 1 && n <= tb->Bcap);
    ds_batch *b = &tb->b;
    b->B = n;
    if (d->kind == TASK_LM) {
        ls_assert(d->text.T <= tb->Tcap);
        b->T = d->text.T;
        return ds_text_fill_batch(&d->text, items, n, b);
    }
    if (d->classify) {
        for (int r = 0; r < n; r++)
            if (items[r] < 0 || items[r] >= d->cls.n)
                return ls_fail("batch: item %d: expected an index in [0, %d)", items[r], d->cls.n);
        ls_assert(task_max_T(d) <= tb->Tcap);
        b->T = ds_classify_fill(&d->cls, items, n, d->pad, b->inputs, tb->keymask, tb->labels);
        b->n_rows = n;
        b->n_loss = n;
        return 0;
    }
    int T = 1;
    for (int r = 0; r < n; r++) {
        if (items[r] < 0 || items[r] >= d->pairs.n)
            return ls_fail("batch: item %d: expected an index in [0, %d)", items[r], d->pairs.n);
        if (d->pairs.n_tokens[items[r]] - 1 > T) T = d->pairs.n_tokens[items[r]] - 1;
    }
    ls_assert(T <= tb->Tcap);
    b->T = T;
    return ds_pairs_fill_batch(&d->pairs, items, n, b);
}

// ----------------------------------------------------------------------------
// evaluation

int task_label_scores(ls_model *m, const task_data *d, const int *items, int n, int B, double *scores) {
    if (d->kind == TASK_LM || d->pairs.n_labels != 2)
        return ls_fail("label scores: expected a data set with two label words");
    return eval_label_scores(m, &d->pairs, items, n, B, d->seq_len, scores);
}

static int sst2_accuracy(ls_model *m, const task_data *d, const int *items, int n, int B, double *acc) {
    double *scores = ls_malloc((size_t)2 * (n ? n : 1) * sizeof(double));
    int rc = task_label_scores(m, d, items, n, B, scores);
    long correct = 0;
    for (int j = 0; j < n && !rc; j++) correct += (scores[2 * j + 1] > scores[2 * j]) == d->pairs.ex[items[j]].label;
    free(scores);
    *acc = n ? (double)correct / n : NAN;
    return rc;
}

// Classification: mean cross-entropy over the examples and argmax accuracy.
static int evaluate_classify(ls_model *m, const task_data *d, const int *items, int n, int B, task_batch *tb,
                             task_eval_result *out) {
    float *logits = ls_malloc((size_t)B * m->cfg.num_labels * sizeof(float));
    double lsum = 0.0;
    long correct = 0;
    int rc = 0, NL = m->cfg.num_labels;
    for (int j0 = 0; j0 < n && !rc; j0 += B) {
        int k = n - j0 < B ? n - j0 : B;
        if (task_fill_batch(d, items + j0, k, tb)) {
            rc = -1;
            break;
        }
        float loss = model_classify_forward(m, tb->b.inputs, NULL, tb->keymask, tb->labels, k, tb->b.T);
        if (loss < 0.0f) {
            rc = -1;
            break;
        }
        lsum += (double)loss * k;
        model_class_logits(m, logits);
        for (int r = 0; r < k; r++) {
            int best = 0;
            for (int c = 1; c < NL; c++)
                if (logits[r * NL + c] > logits[r * NL + best]) best = c;
            correct += best == tb->labels[r];
        }
    }
    free(logits);
    out->loss = lsum / n;
    out->n_tokens = n;
    out->accuracy = (double)correct / n;
    return rc;
}

int task_evaluate(ls_model *m, const task_data *d, const int *items, int n, int B, task_eval_result *out) {
    memset(out, 0, sizeof *out);
    out->accuracy = NAN;
    out->n_items = n;
    if (n <= 0) return 0;
    int saved = m->training;
    model_set_training(m, 0);
    int Tmax = task_max_T(d);
    task_batch tb;
    task_batch_init(&tb, B, Tmax);
    if (model_reserve(m, B, Tmax)) {
        task_batch_free(&tb);
        return -1;
    }
    if (d->classify) {
        int rc = evaluate_classify(m, d, items, n, B, &tb, out);
        task_batch_free(&tb);
        model_set_training(m, saved);
        return rc;
    }
    double lsum = 0.0, wsum = 0.0;
    int rc = 0;
    for (int j0 = 0; j0 < n && !rc; j0 += B) {
        int k = n - j0 < B ? n - j0 : B;
        if (task_fill_batch(d, items + j0, k, &tb)) {
            rc = -1;
            break;
        }
        float loss = model_forward(m, tb.b.inputs, tb.b.targets, tb.b.mask, tb.b.B, tb.b.T, 0.0f);
        if (loss < 0.0f) {
            rc = -1;
            break;
        }
        lsum += m->loss * m->weight_sum;
        wsum += m->weight_sum;
    }
    task_batch_free(&tb);
    out->loss = wsum > 0 ? lsum / wsum : NAN;
    out->n_tokens = (long)wsum;
    if (!rc && d->kind == TASK_SST2) rc = sst2_accuracy(m, d, items, n, B, &out->accuracy);
    model_set_training(m, saved);
    return rc;
}
