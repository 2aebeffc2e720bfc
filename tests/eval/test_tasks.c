// Tests of the task evaluations (src/eval/tasks.h) on the real assets with the
// base stories260K model: E2E generation + BLEU / ROUGE-L on a few MRs of the
// test set, the challenge-format files, SST-2 accuracy.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "eval/tasks.h"
#include "harness.h"
#include "io/checkpoint.h"

static const ls_backend *be;

typedef struct {
    ls_model m;
    tokenizer *tok;
    ds_pairs d;
    int have_model;
} fixture;

// Loads stories260K, its tokenizer and a tokenized data file (e2e test.txt or
// sst2 dev.tsv) in the tokenizer's default format. 0 ok, 1 skip, -1 failure.
static int setup(fixture *f, const char *data_rel, int sst2) {
    memset(f, 0, sizeof *f);
    const char *mp = ls_test_asset("models/stories260K/stories260K.bin");
    if (!mp) return 1;
    ls_checkpoint ck;
    if (ckpt_load(&ck, mp) != 0) {
        CHECK_MSG(0, "ckpt_load: %s", ls_error());
        return -1;
    }
    int rc = model_build_from_checkpoint(&f->m, &ck, be);
    ckpt_free(&ck);
    if (rc) {
        CHECK_MSG(0, "model_build_from_checkpoint: %s", ls_error());
        return -1;
    }
    f->have_model = 1;
    const char *tp = ls_test_asset("models/stories260K/tok512.bin");
    if (!tp) return 1;
    f->tok = tok_load_llama2c(tp, f->m.V);
    if (!f->tok) {
        CHECK_MSG(0, "%s", ls_error());
        return -1;
    }
    const char *dp = ls_test_asset(data_rel);
    if (!dp) return 1;
    rc = sst2 ? ds_load_sst2(&f->d, dp, NULL) : ds_load_e2e(&f->d, dp);
    if (rc) {
        CHECK_MSG(0, "loading %s: %s", dp, ls_error());
        return -1;
    }
    ds_format fmt = ds_format_default(f->tok, f->m.P);
    if (ds_pairs_tokenize(&f->d, f->tok, &fmt)) {
        CHECK_MSG(0, "ds_pairs_tokenize: %s", ls_error());
        return -1;
    }
    return 0;
}

static void teardown(fixture *f) {
    ds_pairs_free(&f->d);
    if (f->tok) tok_free(f->tok);
    if (f->have_model) model_free(&f->m);
}

#define SETUP(f, rel, sst2)                                                                   \
    do {                                                                                      \
        int _rc = setup(f, rel, sst2);                                                        \
        if (_rc > 0) { teardown(f); SKIP("an asset is absent (stories260K model/tokenizer or %s)", rel); } \
        if (_rc < 0) { teardown(f); return; }                                                 \
    } while (0)

// Lines of the E2E file whose MR (text before "||", trimmed) equals mr.
static int count_refs_in_file(const char *path, const char *mr) {
    char *text = ls_read_file(path, NULL);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *bar = strstr(line, "||");
        if (!bar) continue;
        while (bar > line && bar[-1] == ' ') bar--;
        if ((size_t)(bar - line) == strlen(mr) && memcmp(line, mr, strlen(mr)) == 0) n++;
    }
    free(text);
    return n;
}

static void check_e2e_result(const fixture *f, const eval_e2e_result *r, int n_mrs) {
    CHECK_INT(r->n, n_mrs);
    const mt_scores *s = &r->scores;
    CHECK_INT(s->n_segments, n_mrs);
    CHECK_MSG(isfinite(s->bleu.bleu) && s->bleu.bleu >= 0 && s->bleu.bleu <= 1, "BLEU %g", s->bleu.bleu);
    CHECK_MSG(isfinite(s->rouge_l) && s->rouge_l >= 0 && s->rouge_l <= 1, "ROUGE-L %g", s->rouge_l);
    // METEOR (exact+stem+synonym): NAN only when WordNet is not installed
    CHECK_MSG(isnan(s->meteor) || (s->meteor >= 0 && s->meteor <= 1), "METEOR %g", s->meteor);
    // the story model writes English words: some unigrams match the references
    CHECK_MSG(s->bleu.precision[0] > 0.05, "unigram precision %g", s->bleu.precision[0]);
    CHECK(r->n_generated > 0 && r->n_decoded > r->n_generated);
    CHECK(eval_e2e_tokens_per_s(r) > 0);
    const char *path = ls_test_asset("data/e2e/test.txt");
    for (int i = 0; i < r->n; i++) {
        CHECK(r->hyp[i] != NULL);
        CHECK(strstr(r->hyp[i], "\n\n") == NULL);
        CHECK_INT(r->n_refs[i], count_refs_in_file(path, r->mr[i]));
        CHECK_STR_CONTAINS(r->mr[i], "name : ");
    }
    // MRs in file order: the first one is the first line's
    CHECK(r->n > 0 && strcmp(r->mr[0], f->d.ex[0].context) == 0);
    printf("%d MRs: BLEU %.4f ROUGE-L %.4f, %ld tokens in %.2fs (%.0f tok/s, %.0f positions/s)\n", r->n,
           s->bleu.bleu, s->rouge_l, r->n_generated, r->seconds, eval_e2e_tokens_per_s(r),
           eval_e2e_positions_per_s(r));
    printf("  MR:  %s\n  HYP: %s\n  REF: %s\n", r->mr[0], r->hyp[0], r->refs[0][0]);
}

// ----------------------------------------------------------------------------
// E2E

static void test_e2e_greedy_on_five_mrs_gives_finite_scores(void) {
    fixture f;
    SETUP(&f, "data/e2e/test.txt", 0);
    eval_e2e_config cfg = {.gen = gen_config_greedy(64, tok_eos(f.tok)), .greedy = 1, .max_mrs = 5};
    eval_e2e_result r;
    CHECK_MSG(eval_e2e(&f.m, f.tok, &f.d, &cfg, &r) == 0, "%s", ls_error());
    check_e2e_result(&f, &r, 5);
    // scoring is the metrics module's corpus scoring of exactly these strings
    mt_scores s;
    mt_score_corpus((const char *const *)r.hyp, r.refs, r.n_refs, r.n, &s);
    CHECK_NEAR(s.bleu.bleu, r.scores.bleu.bleu, 0.0);
    CHECK_NEAR(s.rouge_l, r.scores.rouge_l, 0.0);
    eval_e2e_result_free(&r);
    teardown(&f);
}

static void test_e2e_beam_search_on_three_mrs_gives_finite_scores(void) {
    fixture f;
    SETUP(&f, "data/e2e/test.txt", 0);
    eval_e2e_config cfg = {.gen = gen_config_paper(tok_eos(f.tok)), .greedy = 0, .max_mrs = 3};
    eval_e2e_result r;
    CHECK_MSG(eval_e2e(&f.m, f.tok, &f.d, &cfg, &r) == 0, "%s", ls_error());
    check_e2e_result(&f, &r, 3);
    // ten beams: about ten model positions per generated token after the prompts
    CHECK(r.n_decoded > 5 * r.n_generated);
    CHECK_INT(f.m.training, 0);
    eval_e2e_result_free(&r);
    teardown(&f);
}

static void test_e2e_prompt_is_training_context(void) {
    // The prompt is the training sequence's context part: for the llama2.c
    // tokenizer's default format, BOS + encode(MR) (no separator), and the
    // completion that training scores follows it directly.
    fixture f;
    SETUP(&f, "data/e2e/test.txt", 0);
    int n;
    int *want = tok_encode(f.tok, f.d.ex[0].context, 1, 0, &n);
    CHECK_INT(ds_pairs_context_len(&f.d, 0), n);
    CHECK(memcmp(f.d.tokens[0], want, (size_t)n * sizeof(int)) == 0);
    free(want);
    // greedy generation from that prompt through eval_e2e gives model_generate's text
    eval_e2e_config cfg = {.gen = gen_config_greedy(24, tok_eos(f.tok)), .greedy = 1, .max_mrs = 1};
    eval_e2e_result r;
    CHECK(eval_e2e(&f.m, f.tok, &f.d, &cfg, &r) == 0);
    int *out = malloc((size_t)(n + 24) * sizeof(int));
    int n_out = model_generate(&f.m, f.d.tokens[0], n, n + 24 - 1, NULL, tok_eos(f.tok), out);
    char *text = tok_decode(f.tok, out[n - 1], out + n, n_out - n, NULL);
    char *cut = strstr(text, "\n\n");
    if (cut) *cut = 0;
    // strip as gpt2_decode.py
    char *s = text;
    while (*s == ' ' || *s == '\n' || *s == '\t') s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\t')) s[--len] = 0;
    CHECK_MSG(r.n == 1 && strcmp(r.hyp[0], s) == 0, "eval_e2e \"%s\" vs model_generate \"%s\"",
              r.n ? r.hyp[0] : "", s);
    free(text);
    free(out);
    eval_e2e_result_free(&r);
    teardown(&f);
}

static void test_e2e_write_files_in_measure_scores_format(void) {
    // measure_scores.py reads references grouped by blank lines and one
    // hypothesis per line: the files must give back the same groups.
    eval_e2e_result r = {0};
    r.n = 2;
    r.mr = calloc(2, sizeof(char *));
    r.hyp = calloc(2, sizeof(char *));
    r.refs = calloc(2, sizeof(char **));
    r.n_refs = calloc(2, sizeof(int));
    r.hyp[0] = strdup("first hyp");
    r.hyp[1] = strdup("second\nhyp");
    r.n_refs[0] = 2;
    r.n_refs[1] = 1;
    r.refs[0] = calloc(2, sizeof(char *));
    r.refs[1] = calloc(1, sizeof(char *));
    r.refs[0][0] = strdup("ref a1");
    r.refs[0][1] = strdup("ref a2");
    r.refs[1][0] = strdup("ref b1");
    r.mr[0] = strdup("mr a");
    r.mr[1] = strdup("mr b");
    const char *dir = ls_test_tmpdir("e2e_write");
    char *rp = ls_path_join(dir, "ref.txt"), *hp = ls_path_join(dir, "hyp.txt");
    CHECK_MSG(eval_e2e_write(&r, rp, hp) == 0, "%s", ls_error());
    char *refs = ls_read_file(rp, NULL), *hyps = ls_read_file(hp, NULL);
    CHECK(refs && strcmp(refs, "ref a1\nref a2\n\nref b1\n\n") == 0);
    CHECK(hyps && strcmp(hyps, "first hyp\nsecond hyp\n") == 0);
    // an unwritable path fails with a message and leaves nothing behind
    char *bad = ls_path_join(dir, "no/such/dir/ref.txt");
    CHECK(eval_e2e_write(&r, bad, hp) == -1);
    CHECK(strlen(ls_error()) > 0);
    free(bad);
    free(refs);
    free(hyps);
    free(rp);
    free(hp);
    eval_e2e_result_free(&r);
}

// ----------------------------------------------------------------------------
// SST-2

static void test_sst2_accuracy_matches_per_example_scoring(void) {
    // eval_sst2 batches (example, label word) rows with padding; each margin
    // must equal the difference of the two label words' log-likelihoods
    // computed one sequence at a time (gen_sequence_logprob).
    fixture f;
    SETUP(&f, "data/sst2/dev.tsv", 1);
    eval_sst2_result r;
    CHECK_MSG(eval_sst2(&f.m, &f.d, 8, 3, &r) == 0, "%s", ls_error());
    CHECK_INT(r.n, 8);
    int correct = 0;
    for (int i = 0; i < r.n; i++) {
        int c = ds_pairs_context_len(&f.d, i);
        double ll[2];
        for (int k = 0; k < 2; k++)
            CHECK(gen_sequence_logprob(&f.m, f.d.tokens[i], c, f.d.label_ids[k], f.d.label_len[k], &ll[k]) == 0);
        CHECK_CLOSE(r.margin[i], ll[1] - ll[0], 1e-4, 1e-4);
        CHECK_INT(r.pred[i], r.margin[i] > 0 ? 1 : 0);
        correct += r.pred[i] == f.d.ex[i].label;
    }
    CHECK_INT(r.correct, correct);
    CHECK_NEAR(r.accuracy, (double)correct / 8, 1e-12);
    printf("SST-2 dev, first 8, base stories260K: accuracy %.3f (label words %d and %d tokens)\n", r.accuracy,
           f.d.label_len[0], f.d.label_len[1]);
    // the batch size does not change the result
    eval_sst2_result r1;
    CHECK(eval_sst2(&f.m, &f.d, 8, 8, &r1) == 0);
    for (int i = 0; i < 8; i++) CHECK_CLOSE(r1.margin[i], r.margin[i], 1e-4, 1e-4);
    eval_sst2_result_free(&r);
    eval_sst2_result_free(&r1);
    teardown(&f);
}

static void test_sst2_rejects_data_without_label_words(void) {
    fixture f;
    SETUP(&f, "data/e2e/test.txt", 0);
    eval_sst2_result r;
    CHECK(eval_sst2(&f.m, &f.d, 10, 4, &r) == -1);
    CHECK_STR_CONTAINS(ls_error(), "two label words");
    CHECK_STR_CONTAINS(ls_error(), "test.txt");
    teardown(&f);
}

int main(int argc, char **argv) {
    be = ls_backend_cpu();
    static const ls_test tests[] = {
        LS_TEST(test_e2e_greedy_on_five_mrs_gives_finite_scores),
        LS_TEST(test_e2e_beam_search_on_three_mrs_gives_finite_scores),
        LS_TEST(test_e2e_prompt_is_training_context),
        LS_TEST(test_e2e_write_files_in_measure_scores_format),
        LS_TEST(test_sst2_accuracy_matches_per_example_scoring),
        LS_TEST(test_sst2_rejects_data_without_label_words),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
