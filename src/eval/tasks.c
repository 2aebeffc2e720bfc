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

static void progress_line(int done, int total, long generated, double elapsed) {
    double eta = done > 0 ? elapsed / done * (total - done) : 0.0;
    fprintf(stderr, "\re2e: %d/%d MRs  %.0f tok/s  elapsed %.0fs  ETA %.0fs   ", done, total,
            elapsed > 0 ? (double)generated / elapsed : 0.0, elapsed, eta);
    if (done == total) fputc('\n', stderr);
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
            rc = gen_beam_search(m, prompt, n_ctx, &cfg->gen, &res);
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
        if (cfg->progress) progress_line(g + 1, G, out->n_generated, ls_now() - t0);
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
// SST-2

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
    out->pred = ls_calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    out->margin = ls_calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    int V = m->V, rc = 0;
    int was_training = m->training;
    model_set_training(m, 0);
    double t0 = ls_now();
    float *row = ls_malloc((size_t)V * sizeof(float));
    int *inputs = NULL;
    size_t inputs_cap = 0;
    for (int start = 0; start < n && rc == 0; start += batch) {
        int nb = n - start < batch ? n - start : batch, R = 2 * nb, T = 1;
        for (int e = 0; e < nb; e++)
            for (int k = 0; k < 2; k++) {
                int len = ds_pairs_context_len(d, start + e) + d->label_len[k] - 1;
                if (len > T) T = len;
            }
        if (T > m->P) {
            rc = ls_fail("%s:%d: sst2 eval: expected at most %d tokens (prompt + label word), found %d",
                         d->path, d->ex[start].line, m->P, T + 1);
            break;
        }
        if ((size_t)R * T > inputs_cap) {
            free(inputs);
            inputs_cap = (size_t)R * T;
            inputs = ls_malloc(inputs_cap * sizeof(int));
        }
        memset(inputs, 0, (size_t)R * T * sizeof(int));  // padding after a row's end is never read
        for (int e = 0; e < nb; e++) {
            int i = start + e, c = ds_pairs_context_len(d, i);
            for (int k = 0; k < 2; k++) {
                int *r = inputs + (size_t)(2 * e + k) * T;
                memcpy(r, d->tokens[i], (size_t)c * sizeof(int));
                memcpy(r + c, d->label_ids[k], (size_t)(d->label_len[k] - 1) * sizeof(int));
            }
        }
        if (model_reserve(m, R, T) || model_forward(m, inputs, NULL, NULL, R, T, 0.0f) < 0) {
            rc = -1;
            break;
        }
        for (int e = 0; e < nb; e++) {
            int i = start + e, c = ds_pairs_context_len(d, i);
            double ll[2] = {0, 0};
            for (int k = 0; k < 2; k++)
                for (int t = 0; t < d->label_len[k]; t++) {
                    // logits of the position that predicts label token t
                    size_t at = ((size_t)(2 * e + k) * T + (size_t)(c - 1 + t)) * V;
                    m->be->download(row, m->acts.logits + at, (size_t)V);
                    double mx = row[0], sum = 0;
                    for (int v = 1; v < V; v++) if (row[v] > mx) mx = row[v];
                    for (int v = 0; v < V; v++) sum += exp((double)row[v] - mx);
                    ll[k] += (double)row[d->label_ids[k][t]] - mx - log(sum);
                }
            out->margin[i] = ll[1] - ll[0];
            out->pred[i] = ll[1] > ll[0] ? 1 : 0;
            out->correct += out->pred[i] == d->ex[i].label;
        }
        out->n = start + nb;
    }
    free(row);
    free(inputs);
    out->seconds = ls_now() - t0;
    model_set_training(m, was_training);
    if (rc) {
        eval_sst2_result_free(out);
        return -1;
    }
    out->accuracy = n > 0 ? (double)out->correct / n : 0.0;
    return 0;
}
