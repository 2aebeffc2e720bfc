// dataset: randomness, splits, batching, plain-text LM data and the
// tokenization of context/completion pairs. File formats: ds_formats.c.
#include "text/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "text/tok_internal.h"

// ----------------------------------------------------------------------------
// random numbers, shuffles, splits

#define DS_GOLDEN 0x9E3779B97F4A7C15ULL

void ds_rng_seed(ds_rng *r, uint64_t seed) { r->state = seed; }

uint64_t ds_rng_next(ds_rng *r) {
    uint64_t z = (r->state += DS_GOLDEN);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t ds_rng_below(ds_rng *r, uint64_t n) {
    // Reject the top partial block of 2^64 so every residue is equally likely.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = ds_rng_next(r); while (x >= limit);
    return x % n;
}

void ds_shuffle(int *a, int n, uint64_t seed) {
    ds_rng r;
    ds_rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ds_rng_below(&r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int ds_split(int n_items, const int *group_of, int n_groups, double val_frac, uint64_t seed,
             int **train, int *n_train, int **val, int *n_val) {
    if (!(val_frac >= 0.0 && val_frac <= 1.0))
        return ls_fail("validation fraction: expected a number in [0, 1], found %g", val_frac);
    if (!group_of) n_groups = n_items;
    int *order = ls_malloc((size_t)(n_groups > 0 ? n_groups : 1) * sizeof(int));
    for (int g = 0; g < n_groups; g++) order[g] = g;
    ds_shuffle(order, n_groups, seed);
    int n_val_groups = (int)(val_frac * n_groups + 0.5);
    unsigned char *is_val = ls_calloc((size_t)(n_groups > 0 ? n_groups : 1), 1);
    for (int k = 0; k < n_val_groups; k++) is_val[order[k]] = 1;
    *train = ls_malloc((size_t)(n_items > 0 ? n_items : 1) * sizeof(int));
    *val = ls_malloc((size_t)(n_items > 0 ? n_items : 1) * sizeof(int));
    *n_train = *n_val = 0;
    for (int i = 0; i < n_items; i++) {
        int g = group_of ? group_of[i] : i;
        ls_assert(g >= 0 && g < n_groups);
        if (is_val[g]) (*val)[(*n_val)++] = i;
        else (*train)[(*n_train)++] = i;
    }
    free(order);
    free(is_val);
    return 0;
}

// ----------------------------------------------------------------------------
// batches

void ds_batch_init(ds_batch *b, int B, int T) {
    ls_assert(B >= 1 && T >= 1);
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    b->inputs = ls_calloc((size_t)B * T, sizeof(int));
    b->targets = ls_calloc((size_t)B * T, sizeof(int));
    b->mask = ls_calloc((size_t)B * T, sizeof(float));
}

void ds_batch_free(ds_batch *b) {
    free(b->inputs);
    free(b->targets);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

void ds_sampler_init(ds_sampler *s, const int *items, int n, uint64_t seed) {
    ls_assert(n >= 1);
    s->n = n;
    s->items = ls_malloc((size_t)n * sizeof(int));
    memcpy(s->items, items, (size_t)n * sizeof(int));
    s->perm = ls_malloc((size_t)n * sizeof(int));
    s->seed = seed;
    s->epoch = -1;
}

void ds_sampler_batch(ds_sampler *s, long step, int B, int *out) {
    for (int j = 0; j < B; j++) {
        long k = step * (long)B + j;
        long epoch = k / s->n;
        if (epoch != s->epoch) {
            memcpy(s->perm, s->items, (size_t)s->n * sizeof(int));
            ds_shuffle(s->perm, s->n, s->seed + (uint64_t)epoch * DS_GOLDEN);
            s->epoch = epoch;
        }
        out[j] = s->perm[k % s->n];
    }
}

void ds_sampler_free(ds_sampler *s) {
    free(s->items);
    free(s->perm);
    memset(s, 0, sizeof *s);
}

static void batch_clear(ds_batch *b) {
    size_t n = (size_t)b->B * b->T;
    memset(b->inputs, 0, n * sizeof(int));
    memset(b->targets, 0, n * sizeof(int));
    memset(b->mask, 0, n * sizeof(float));
    b->n_rows = 0;
    b->n_loss = 0;
}

// ----------------------------------------------------------------------------
// language modelling on plain text

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

int ds_text_load(ds_text *d, const char *path, const tokenizer *tok, const char *doc_sep, int T) {
    memset(d, 0, sizeof *d);
    if (T < 1) return ls_fail("%s: window length T: expected >= 1, found %d", path, T);
    size_t size;
    char *text = ls_read_file_max(path, &size, LS_READ_DATA_MAX);
    if (!text) return -1;
    size_t nul = strlen(text);
    if (nul != size) {
        free(text);
        return ls_fail("%s: byte %zu: expected UTF-8 text, found a NUL byte", path, nul);
    }
    tok_ids all = {0};
    size_t sep_len = doc_sep ? strlen(doc_sep) : 0;
    char *doc = text;
    for (;;) {
        char *end = sep_len ? strstr(doc, doc_sep) : NULL;
        char *stop = end ? end : text + size;
        // Documents are stripped of surrounding whitespace (llama2.c's
        // pretokenizer strips each story) and skipped when empty.
        char *a = doc, *z = stop;
        while (a < z && is_ws(*a)) a++;
        while (z > a && is_ws(z[-1])) z--;
        if (z > a) {
            char saved = *z;
            *z = 0;
            int n;
            int *ids = tok_encode(tok, a, 1, 0, &n);
            *z = saved;
            for (int i = 0; i < n; i++) tok_ids_push(&all, ids[i]);
            free(ids);
        }
        if (!end) break;
        doc = end + sep_len;
    }
    free(text);
    if (all.n < T + 1) {
        free(all.ids);
        return ls_fail("%s: expected at least T+1 = %d tokens, found %d", path, T + 1, all.n);
    }
    d->tokens = all.ids;
    d->n_tokens = all.n;
    d->T = T;
    d->n_windows = (int)(all.n / (T + 1));
    return 0;
}

void ds_text_free(ds_text *d) {
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

int ds_text_fill_batch(const ds_text *d, const int *windows, int n, ds_batch *b) {
    if (b->T != d->T) return ls_fail("text batch: T: expected %d (the dataset's window), found %d", d->T, b->T);
    if (n > b->B) return ls_fail("text batch: windows: expected at most B = %d, found %d", b->B, n);
    batch_clear(b);
    int T = b->T;
    for (int r = 0; r < n; r++) {
        if (windows[r] < 0 || windows[r] >= d->n_windows)
            return ls_fail("text batch: window %d: expected an index in [0, %d)", windows[r], d->n_windows);
        const int *w = d->tokens + (long)windows[r] * (T + 1);
        for (int t = 0; t < T; t++) {
            b->inputs[r * T + t] = w[t];
            b->targets[r * T + t] = w[t + 1];
            b->mask[r * T + t] = 1.0f;
        }
        b->n_loss += T;
    }
    b->n_rows = n;
    return 0;
}

// ----------------------------------------------------------------------------
// context / completion pairs: tokenization and batches

ds_format ds_format_default(const tokenizer *tok, int max_len) {
    ds_format f = {max_len, 1, -1, 1};
    if (tok_type(tok) == TOK_GPT2) {
        f.bos = 0;
        f.sep = tok_eos(tok);
    }
    return f;
}

int ds_pairs_tokenize(ds_pairs *d, const tokenizer *tok, const ds_format *fmt) {
    int has_bos = fmt->bos && tok_bos(tok) >= 0;
    int has_sep = fmt->sep >= 0;
    if (has_sep && fmt->sep >= tok_vocab_size(tok))
        return ls_fail("%s: separator token: expected an id in [0, %d), found %d", d->path,
                       tok_vocab_size(tok), fmt->sep);
    // The context keeps BOS and sep (and at least one token, so that the
    // first completion token is predicted from something).
    int min_ctx = has_bos + has_sep > 1 ? has_bos + has_sep : 1;
    if (fmt->max_len < min_ctx + 1)
        return ls_fail("%s: max_len: expected >= %d (context markers + one completion token), found %d",
                       d->path, min_ctx + 1, fmt->max_len);
    d->tokens = ls_calloc((size_t)(d->n > 0 ? d->n : 1), sizeof(int *));
    d->mask = ls_calloc((size_t)(d->n > 0 ? d->n : 1), sizeof(unsigned char *));
    d->n_tokens = ls_calloc((size_t)(d->n > 0 ? d->n : 1), sizeof(int));
    d->n_truncated = 0;
    d->max_len = fmt->max_len;
    for (int i = 0; i < d->n; i++) {
        const ds_example *e = &d->ex[i];
        int nc, np;
        int *ctx = tok_encode(tok, e->context, has_bos, 0, &nc);
        int *comp = tok_encode_continuation(tok, e->completion, &np);
        int ctx_total = nc + has_sep, comp_total = np + (fmt->eos && tok_eos(tok) >= 0);
        if (comp_total == 0) {
            free(ctx);
            free(comp);
            return ls_fail("%s:%d: completion: expected text that encodes to at least one token, found \"%s\"",
                           d->path, e->line, e->completion);
        }
        int *seq = ls_malloc((size_t)(ctx_total + comp_total) * sizeof(int));
        memcpy(seq, ctx, (size_t)nc * sizeof(int));
        if (has_sep) seq[nc] = fmt->sep;
        memcpy(seq + ctx_total, comp, (size_t)np * sizeof(int));
        if (comp_total > np) seq[ctx_total + np] = tok_eos(tok);
        free(ctx);
        free(comp);
        int keep_ctx = ctx_total, keep_comp = comp_total;
        if (ctx_total + comp_total > fmt->max_len) {
            // Drop context from the front (after BOS), then cut the completion's end.
            d->n_truncated++;
            keep_ctx = fmt->max_len - comp_total;
            if (keep_ctx < min_ctx) keep_ctx = min_ctx;
            if (keep_ctx > ctx_total) keep_ctx = ctx_total;
            keep_comp = fmt->max_len - keep_ctx;
            if (keep_comp > comp_total) keep_comp = comp_total;
            int drop = ctx_total - keep_ctx;
            memmove(seq + has_bos, seq + has_bos + drop, (size_t)(ctx_total - has_bos - drop) * sizeof(int));
            memmove(seq + keep_ctx, seq + ctx_total, (size_t)keep_comp * sizeof(int));
        }
        int L = keep_ctx + keep_comp;
        d->tokens[i] = seq;
        d->n_tokens[i] = L;
        d->mask[i] = ls_malloc((size_t)L);
        for (int t = 0; t < L; t++) d->mask[i][t] = t >= keep_ctx;
    }
    for (int k = 0; k < d->n_labels; k++) {
        free(d->label_ids[k]);
        d->label_ids[k] = tok_encode_continuation(tok, d->label_words[k], &d->label_len[k]);
        if (d->label_len[k] == 0)
            return ls_fail("%s: label word %d: expected text that encodes to at least one token, found \"%s\"",
                           d->path, k, d->label_words[k]);
    }
    return 0;
}

int ds_pairs_context_len(const ds_pairs *d, int i) {
    int k = 0;
    while (k < d->n_tokens[i] && !d->mask[i][k]) k++;
    return k;
}

int ds_pairs_split(const ds_pairs *d, double val_frac, uint64_t seed,
                   int **train, int *n_train, int **val, int *n_val) {
    int *group_of = ls_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof(int));
    for (int i = 0; i < d->n; i++) group_of[i] = d->ex[i].group;
    int rc = ds_split(d->n, group_of, d->n_groups, val_frac, seed, train, n_train, val, n_val);
    free(group_of);
    if (rc) ls_fail_prefix("%s", d->path);
    return rc;
}

int ds_pairs_fill_batch(const ds_pairs *d, const int *examples, int n, ds_batch *b) {
    if (!d->tokens) return ls_fail("%s: batch: expected a tokenized dataset (ds_pairs_tokenize)", d->path);
    if (n > b->B) return ls_fail("%s: batch: examples: expected at most B = %d, found %d", d->path, b->B, n);
    batch_clear(b);
    int T = b->T;
    for (int r = 0; r < n; r++) {
        int i = examples[r];
        if (i < 0 || i >= d->n) return ls_fail("%s: batch: example %d: expected an index in [0, %d)", d->path, i, d->n);
        int L = d->n_tokens[i];
        if (L - 1 > T)
            return ls_fail("%s:%d: batch: expected at most T+1 = %d tokens per example, found %d",
                           d->path, d->ex[i].line, T + 1, L);
        for (int t = 0; t + 1 < L; t++) {
            b->inputs[r * T + t] = d->tokens[i][t];
            b->targets[r * T + t] = d->tokens[i][t + 1];
            b->mask[r * T + t] = d->mask[i][t + 1];
            b->n_loss += d->mask[i][t + 1];
        }
    }
    b->n_rows = n;
    return 0;
}
