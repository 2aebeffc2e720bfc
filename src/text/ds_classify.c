// ds_classify: sentence classification data for encoders (ds_classify.h).
#include "text/ds_classify.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int ds_classify_tokenize(ds_classify *c, const ds_pairs *d, const tokenizer *tok, int max_len) {
    memset(c, 0, sizeof *c);
    int bos = tok_bos(tok) >= 0, eos = tok_eos(tok) >= 0;
    if (max_len < bos + eos + 1)
        return ls_fail("%s: max_len: expected >= %d (BOS, EOS and one token), found %d", d->path, bos + eos + 1,
                       max_len);
    if (d->n_labels < 1) return ls_fail("%s: expected a classification data set (labels), found none", d->path);
    c->n = d->n;
    c->n_labels = d->n_labels;
    c->max_len = max_len;
    c->tokens = ls_calloc((size_t)(d->n > 0 ? d->n : 1), sizeof(int *));
    c->n_tokens = ls_calloc((size_t)(d->n > 0 ? d->n : 1), sizeof(int));
    c->labels = ls_calloc((size_t)(d->n > 0 ? d->n : 1), sizeof(int));
    for (int i = 0; i < d->n; i++) {
        const ds_example *e = &d->ex[i];
        if (e->label < 0 || e->label >= d->n_labels) {
            ds_classify_free(c);
            return ls_fail("%s:%d: label: expected a class in [0, %d), found %d", d->path, e->line, d->n_labels,
                           e->label);
        }
        int n;
        int *ids = tok_encode(tok, e->context, bos, eos, &n);
        if (n <= bos + eos) {
            free(ids);
            ds_classify_free(c);
            return ls_fail("%s:%d: expected text that encodes to at least one token, found \"%s\"", d->path, e->line,
                           e->context);
        }
        if (n > max_len) { // cut the text's end, keep EOS ([SEP])
            if (eos) ids[max_len - 1] = ids[n - 1];
            n = max_len;
            c->n_truncated++;
        }
        c->tokens[i] = ids;
        c->n_tokens[i] = n;
        c->labels[i] = e->label;
    }
    return 0;
}

void ds_classify_free(ds_classify *c) {
    for (int i = 0; c->tokens && i < c->n; i++) free(c->tokens[i]);
    free(c->tokens);
    free(c->n_tokens);
    free(c->labels);
    memset(c, 0, sizeof *c);
}

int ds_classify_fill(const ds_classify *c, const int *examples, int n, int pad, int *ids, int *mask, int *labels) {
    int T = 1;
    for (int r = 0; r < n; r++)
        if (c->n_tokens[examples[r]] > T) T = c->n_tokens[examples[r]];
    for (int r = 0; r < n; r++) {
        int e = examples[r], len = c->n_tokens[e];
        for (int t = 0; t < T; t++) {
            ids[r * T + t] = t < len ? c->tokens[e][t] : pad;
            mask[r * T + t] = t < len;
        }
        labels[r] = c->labels[e];
    }
    return T;
}
