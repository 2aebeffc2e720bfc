// tasks: E2E generation + BLEU / ROUGE-L, SST-2 accuracy (see tasks.h).
#include "eval/tasks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/util.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// malloc'd copy of s[0..n) without surrounding whitespace.
static char *strip_copy(const char *s, size_t n) {
    while (n && is_space(*s)) { s++; n--; }
    while (n && is_space(s[n - 1])) n--;
    char *out = ls_malloc(n + 1);
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

// ----------------------------------------------------------------------------
// E2E

void eval_e2e_result_free(eval_e2e_result *r) {
    for (int i = 0; i < r->n; i++) {
        free(r->mr ? r->mr[i] : NULL);
        free(r->hyp ? r->hyp[i] : NULL);
        if (r->refs && r->refs[i]) {
            for (int k = 0; k < r->n_refs[i]; k++) free(r->refs[i][k]);
            free(r->refs[i]);
        }
    }
    free(r->mr);
    free(r->hyp);
    free(r->refs);
    free(r->n_refs);
    memset(r, 0, sizeof *r);
}

double eval_e2e_tokens_per_s(const eval_e2e_result *r) {
    return r->seconds > 0 ? (double)r->n_generated / r->seconds : 0.0;
}

double eval_e2e_positions_per_s(const eval_e2e_result *r) {
    return r->seconds > 0 ? (double)r->n_decoded / r->seconds : 0.0;
}

// mode 1 (a terminal): one line rewritten in place; mode 2: a line every 5%
// of the MRs and at the end, so that a log shows how far the run is.
static void progress_line(int mode, int done, int total, long generated, double elapsed) {
    int every = total / 20 > 0 ? total / 20 : 1;
    if (mode == 2 && done != total && done % every) return;
    char el[32], eta[32];
    ls_fmt_duration(el, sizeof el, elapsed);
    ls_fmt_duration(eta, sizeof eta, done > 0 ? elapsed / done * (total - done) : 0.0);
    fprintf(stderr, "%se2e: %d/%d MRs | %.1f tok/s | %s elapsed | ETA %s%s", mode == 1 ? "\r" : "", done, total,
            elapsed > 0 ? (double)generated / elapsed : 0.0, el, eta, mode == 1 && done != total ? "   " : "\n");
    fflush(stderr);
}

int eval_e2e(ls_model *m, const tokenizer *tok, const ds_pairs *d, const eval_e2e_config *cfg,
             eval_e2e_result *out) {
    memset(out, 0, sizeof *out);
    if (!d->tokens)
        return ls_fail("%s: e2e eval: expected a tokenized dataset (ds_pairs_tokenize), found raw text", d->path);
    if (cfg->max_mrs < 0) return ls_fail("%s: e2e eval: max_mrs: expected >= 0, found %d", d->path, cfg->max_mrs);
    int G = d->n_groups;
    if (cfg->max_mrs > 0 && cfg->max_mrs < G) G = cfg->max_mrs;
    out->mr = ls_calloc((size_t)(G > 0 ? G : 1), sizeof(char *));
    out->hyp = ls_calloc((size_t)(G > 0 ? G : 1), sizeof(char *));
    out->refs = ls_calloc((size_t)(G > 0 ? G : 1), sizeof(char **));
    out->n_refs = ls_calloc((size_t)(G > 0 ? G : 1), sizeof(int));

    int was_training = m->training;
    model_set_training(m, 0);
    double t0 = ls_now();
    int rc = 0;
    for (int g = 0; g < G; g++) {
        int n_members = d->group_start[g + 1] - d->group_start[g];
        const int *members = d->group_members + d->group_start[g];
        int first = members[0];
        int n_ctx = ds_pairs_context_len(d, first);
        const int *prompt = d->tokens[first];

        gen_hyp best = {0};
        long decoded = 0;
        if (cfg->greedy) {
            rc = gen_greedy(m, prompt, n_ctx, &cfg->gen, &best, &decoded);
        } else {
            gen_result res;
            gen_config gc = cfg->gen;
            gc.n_best = 1; // only the best is scored
            rc = gen_beam_search(m, prompt, n_ctx, &gc, &res);
            if (rc == 0) {
                decoded = res.n_decoded;
                if (res.n_hyps > 0) {  // keep the best, free the rest
                    best = res.hyps[0];
                    res.hyps[0] = (gen_hyp){0};
                }
                gen_result_free(&res);
            }
        }
        if (rc) {
            ls_fail_prefix("%s:%d: e2e eval of MR %d", d->path, d->ex[first].line, g);
            break;
        }
        int n_text = best.n - (best.finished ? 1 : 0);
        size_t len;
        char *text = tok_decode(tok, prompt[n_ctx - 1], best.tokens, n_text, &len);
        // gpt2_decode.py: .split('\n\n')[0].strip()
        char *cut = strstr(text, "\n\n");
        out->hyp[g] = strip_copy(text, cut ? (size_t)(cut - text) : len);
        free(text);
        out->mr[g] = ls_strdup(d->ex[first].context);
        out->refs[g] = ls_malloc((size_t)n_members * sizeof(char *));
        for (int k = 0; k < n_members; k++) {
            const char *c = d->ex[members[k]].completion;
            out->refs[g][k] = strip_copy(c, strlen(c));
        }
        out->n_refs[g] = n_members;
        out->n = g + 1;
        out->n_generated += best.n;
        out->n_decoded += decoded;
        gen_hyp_free(&best);
        if (cfg->progress) progress_line(cfg->progress, g + 1, G, out->n_generated, ls_now() - t0);
    }
    out->seconds = ls_now() - t0;
    model_set_training(m, was_training);
    if (rc) {
        eval_e2e_result_free(out);
        return -1;
    }
    mt_score_corpus((const char *const *)out->hyp, out->refs, out->n_refs, out->n, &out->scores);
    return 0;
}

int eval_e2e_write(const eval_e2e_result *r, const char *ref_path, const char *hyp_path) {
    ls_outfile ref, hyp;
    if (ls_out_open(&ref, ref_path)) return -1;
    if (ls_out_open(&hyp, hyp_path)) {
        ls_out_abort(&ref);
        return -1;
    }
    for (int i = 0; i < r->n; i++) {
        for (int k = 0; k < r->n_refs[i]; k++) fprintf(ref.fp, "%s\n", r->refs[i][k]);
        fputc('\n', ref.fp);
        for (const char *p = r->hyp[i]; *p; p++) fputc(*p == '\n' || *p == '\r' ? ' ' : *p, hyp.fp);
        fputc('\n', hyp.fp);
    }
    if (ls_out_commit(&ref)) {
        ls_out_abort(&hyp);
        return -1;
    }
    return ls_out_commit(&hyp);
}

// ----------------------------------------------------------------------------
// SST-2: classification by generation

// Rows r0 and r0 + 1 of b (T positions each, zeroed by the caller) hold
// example i's context followed by label word 0 and by label word 1; the mask
// selects the positions that predict the word's tokens. When context + word
// exceed T + 1 tokens, the context nearest the word is kept.
static void label_rows_fill(const ds_pairs *p, int i, int r0, ds_batch *b, int T) {
    int ctx = ds_pairs_context_len(p, i);
    for (int k = 0; k < 2; k++) {
        int row = r0 + k, Lk = p->label_len[k];
        int start = ctx + Lk > T + 1 ? ctx + Lk - (T + 1) : 0; // keep the context nearest the word
        int L = 0;
        int *seq = ls_malloc((size_t)(ctx + Lk) * sizeof(int));
        for (int t = start; t < ctx; t++) seq[L++] = p->tokens[i][t];
        int word0 = L;
        for (int t = 0; t < Lk; t++) seq[L++] = p->label_ids[k][t];
        for (int t = 0; t + 1 < L; t++) {
            b->inputs[row * T + t] = seq[t];
            b->targets[row * T + t] = seq[t + 1];
            b->mask[row * T + t] = t + 1 >= word0 ? 1.0f : 0.0f;
        }
        free(seq);
    }
}

// The scores come from the training loss itself: model_forward's per-position
// cross-entropy (host_losses) under the word mask (host_weights), summed with
// the sign flipped, is the word's log-probability. T is the longest row of
// all n examples (at most max_T), so every batch has the same shape.
int eval_label_scores(ls_model *m, const ds_pairs *p, const int *items, int n, int rows, int max_T,
                      double *scores) {
    if (p->n_labels != 2) return ls_fail("label scores: expected a data set with two label words");
    int per = rows / 2 > 0 ? rows / 2 : 1, T = 1;
    int longest = p->label_len[0] > p->label_len[1] ? p->label_len[0] : p->label_len[1];
    for (int j = 0; j < n; j++) {
        int need = ds_pairs_context_len(p, items[j]) - 1 + longest;
        if (need > T) T = need;
    }
    if (T > max_T) T = max_T;
    if (model_reserve(m, 2 * per, T)) return -1;
    int was_training = m->training;
    model_set_training(m, 0);
    ds_batch b;
    ds_batch_init(&b, 2 * per, T);
    int rc = 0;
    for (int j0 = 0; j0 < n && !rc; j0 += per) {
        int k = n - j0 < per ? n - j0 : per;
        size_t cells = (size_t)2 * k * T;
        memset(b.inputs, 0, cells * sizeof(int));
        memset(b.targets, 0, cells * sizeof(int));
        memset(b.mask, 0, cells * sizeof(float));
        for (int e = 0; e < k; e++) label_rows_fill(p, items[j0 + e], 2 * e, &b, T);
        if (model_forward(m, b.inputs, b.targets, b.mask, 2 * k, T, 0.0f) < 0.0f) {
            rc = -1;
            break;
        }
        for (int e = 0; e < 2 * k; e++) { // rows of m->T: prompt tuning's virtual tokens first (model.h)
            double s = 0.0;
            size_t row = (size_t)e * m->T + model_virtual_tokens(m);
            for (int t = 0; t < T; t++) s -= (double)m->host_weights[row + t] * m->host_losses[row + t];
            scores[2 * j0 + e] = s;
        }
    }
    ds_batch_free(&b);
    model_set_training(m, was_training);
    return rc;
}

void eval_sst2_result_free(eval_sst2_result *r) {
    free(r->pred);
    free(r->margin);
    memset(r, 0, sizeof *r);
}

int eval_sst2(ls_model *m, const ds_pairs *d, int max_examples, int batch, eval_sst2_result *out) {
    memset(out, 0, sizeof *out);
    if (d->n_labels != 2)
        return ls_fail("%s: sst2 eval: expected a dataset with two label words (ds_load_sst2), found %d",
                       d->path, d->n_labels);
    if (!d->tokens || !d->label_ids[0] || !d->label_ids[1])
        return ls_fail("%s: sst2 eval: expected a tokenized dataset (ds_pairs_tokenize), found raw text", d->path);
    if (batch < 1) return ls_fail("%s: sst2 eval: batch: expected >= 1, found %d", d->path, batch);
    int n = d->n;
    if (max_examples > 0 && max_examples < n) n = max_examples;
    // whole rows or an error: eval_label_scores would cut the context to fit
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            int len = ds_pairs_context_len(d, i) + d->label_len[k];
            if (len - 1 > m->P)
                return ls_fail("%s:%d: sst2 eval: expected at most %d tokens (prompt + label word), found %d",
                               d->path, d->ex[i].line, m->P, len);
        }
    int *items = ls_malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    double *scores = ls_malloc((size_t)2 * (n > 0 ? n : 1) * sizeof(double));
    for (int i = 0; i < n; i++) items[i] = i;
    double t0 = ls_now();
    int per = batch < n ? batch : (n > 0 ? n : 1); // examples per forward pass, two rows each
    int rc = eval_label_scores(m, d, items, n, 2 * per, m->P, scores);
    out->seconds = ls_now() - t0;
    if (!rc) {
        out->pred = ls_calloc((size_t)(n > 0 ? n : 1), sizeof(int));
        out->margin = ls_calloc((size_t)(n > 0 ? n : 1), sizeof(double));
        for (int i = 0; i < n; i++) {
            out->margin[i] = scores[2 * i + 1] - scores[2 * i];
            out->pred[i] = scores[2 * i + 1] > scores[2 * i] ? 1 : 0;
            out->correct += out->pred[i] == d->ex[i].label;
        }
        out->n = n;
        out->accuracy = n > 0 ? (double)out->correct / n : 0.0;
    }
    free(items);
    free(scores);
    return rc;
}
