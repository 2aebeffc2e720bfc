// Tests of the E2E metrics (src/eval/metrics.h) on cases worked by hand in
// the comments, on the real E2E references, and against an independent Python
// transcription of pymteval's BLEU (tests/eval/e2e_bleu_reference.py).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "eval/metrics.h"
#include "eval/scores.h"
#include "harness.h"
#include "text/dataset.h"

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void check_tokens(const char *text, int ptb, const char *const *expect, int n) {
    mt_tokens t;
    if (ptb) mt_tokenize_ptb(text, &t);
    else mt_tokenize_mteval(text, &t);
    int same = t.n == n;
    for (int i = 0; same && i < n; i++) same = strcmp(t.tok[i], expect[i]) == 0;
    if (!same) {
        fprintf(stderr, "%s(\"%s\") gave %d tokens:", ptb ? "ptb" : "mteval", text, t.n);
        for (int i = 0; i < t.n; i++) fprintf(stderr, " [%s]", t.tok[i]);
        fprintf(stderr, "\n  expected %d:", n);
        for (int i = 0; i < n; i++) fprintf(stderr, " [%s]", expect[i]);
        fputc('\n', stderr);
    }
    CHECK(same);
    mt_tokens_free(&t);
}

static double bleu_of(const char *hyp, const char *const *refs, int n_refs, mt_bleu *out) {
    mt_bleu_stats s;
    mt_bleu_init(&s);
    mt_bleu_add(&s, hyp, refs, n_refs);
    return mt_bleu_score(&s, out);
}

// ----------------------------------------------------------------------------
// tokenization

static void test_mteval_tokenization_hand_derived(void) {
    // " The Eagle, a 5-star café (near £20.50)! " (padded):
    //  class chars ( ) ! get spaces (not , - . £); "e," -> "e , " (non-digit
    //  before ","); "5-" -> "5 - " (digit before "-"); "0.5" keeps its "."
    //  (digit on both sides); "£20.50" stays one token.
    const char *a[] = {"The", "Eagle", ",", "a", "5", "-", "star", "café", "(", "near", "£20.50", ")", "!"};
    check_tokens("The Eagle, a 5-star café (near £20.50)!", 0, a, LEN(a));
    // "e.g." -> "e . g . ": each "x." pair matched in turn; "1,000.5" stays (digits
    // around both); the apostrophe is not in the class so "It's" stays whole.
    const char *b[] = {"It's", "1,000.5", "e", ".", "g", ".", "U", ".", "S", ".", "A"};
    check_tokens("It's 1,000.5 e.g. U.S.A", 0, b, LEN(b));
    // SGML unescaping, then "&" and quotes are class characters; "-\n" joins lines,
    // another "\n" is a space.
    const char *c[] = {"Fish", "&", "Chips", "\"", "hi", "\"", "wellknown", "x", "y"};
    check_tokens("Fish &amp; Chips &quot;hi&quot; well-\nknown x\ny", 0, c, LEN(c));
    // the E2E data's own pre-tokenized style: "20-£25" -> "20 - £25"
    const char *d[] = {"price", "£", "20", "-", "£25", "."};
    check_tokens("price £ 20-£25 . ", 0, d, LEN(d));
    // a period after a digit is split only when a non-digit follows: "5." + " "
    const char *e[] = {"rated", "5", ".", "Next"};
    check_tokens("rated 5. Next", 0, e, LEN(e));
}

static void test_ptb_tokenization_hand_derived(void) {
    // lowercased; "'s" and "n't" split; ", ( ) ." dropped as punctuation;
    // "£" split from "20-25", which stays whole (hyphenated number).
    const char *a[] = {"the", "eagle", "'s", "food", "is", "n't", "cheap", "near", "£", "20-25"};
    check_tokens("The Eagle's food isn't cheap, (near £20-25).", 1, a, LEN(a));
    // E2E's pre-tokenized text: the punctuation tokens go, "É" lowercases to "é".
    const char *b[] = {"blue", "spice", "is", "n't", "near", "the", "café", "it", "'s", "by", "the",
                       "river"};
    check_tokens("Blue Spice is n't near the CAFÉ , it 's by the river . ", 1, b, LEN(b));
    // quotes and a plural possessive apostrophe drop; "1,000" and "10:30" keep
    // their separators; "cannot" splits; ";" inside a word splits and drops.
    const char *c[] = {"known", "as", "average", "the", "clowns", "1,000", "at", "10:30", "can", "not",
                       "a", "b"};
    check_tokens("Known as ' average ' \"the\" clowns' 1,000 at 10:30 cannot a;b", 1, c, LEN(c));
}

// ----------------------------------------------------------------------------
// BLEU

static void test_bleu_identical_is_one_and_rouge_l_is_one(void) {
    // hyp = ref = "the cat sat on the mat" (6 tokens): every n-gram matches,
    // p_n = 6/6, 5/5, 4/4, 3/3; closest ref length 6 = cand 6 -> BP = exp(0) = 1.
    const char *refs[] = {"the cat sat on the mat"};
    mt_bleu b;
    CHECK_NEAR(bleu_of("the cat sat on the mat", refs, 1, &b), 1.0, 1e-12);
    CHECK_INT(b.hyp_len, 6);
    CHECK_INT(b.ref_len, 6);
    CHECK_NEAR(b.brevity_penalty, 1.0, 0.0);
    // LCS 6: P = R = 1 -> F = (1 + 1.44) / (1 + 1.44) = 1.
    CHECK_NEAR(mt_rouge_l_segment("the cat sat on the mat", refs, 1), 1.0, 1e-12);
}

static void test_bleu_brevity_penalty_short_hypothesis(void) {
    // hyp "the cat sat on" (4) vs ref of 6: all n-grams match (p_n = 1) but
    // cand 4 <= ref 6 -> BP = exp(1 - 6/4) = exp(-0.5) = 0.6065306597.
    const char *refs[] = {"the cat sat on the mat"};
    mt_bleu b;
    double bleu = bleu_of("the cat sat on", refs, 1, &b);
    CHECK_NEAR(b.brevity_penalty, exp(-0.5), 1e-12);
    for (int n = 0; n < MT_BLEU_N; n++) CHECK_NEAR(b.precision[n], 1.0, 1e-12);
    CHECK_NEAR(bleu, 0.6065306597126334, 1e-12);
    // ROUGE-L: LCS 4, P = 4/4, R = 4/6: F = 2.44 * (2/3) / (2/3 + 1.44) = 4.88 / 6.32.
    CHECK_NEAR(mt_rouge_l_segment("the cat sat on", refs, 1), 4.88 / 6.32, 1e-12);
}

static void test_bleu_clipped_counts_papineni_example(void) {
    // Papineni et al. (2002): "the" x7 vs refs with at most two "the":
    // clipped unigram precision 2/7; no bigram matches (hits 0 -> floored to 1e-15).
    // Closest ref length: refs have 6 and 7 tokens, hyp 7 -> 7; BP = exp(1 - 7/7) = 1.
    const char *refs[] = {"the cat is on the mat", "there is a cat on the mat"};
    mt_bleu b;
    double bleu = bleu_of("the the the the the the the", refs, 2, &b);
    CHECK_NEAR(b.precision[0], 2.0 / 7.0, 1e-12);
    CHECK_NEAR(b.precision[1], 1e-15 / 6.0, 1e-27);
    CHECK_INT(b.ref_len, 7);
    // BLEU = exp(1/4 (log 2/7 + log(1e-15/6) + log(1e-15/5) + log(1e-15/4)))
    double expect = exp(0.25 * (log(2.0 / 7) + log(1e-15 / 6) + log(1e-15 / 5) + log(1e-15 / 4)));
    CHECK_CLOSE(bleu, expect, 1e-12, 0);
}

static void test_bleu_clipped_counts_all_orders(void) {
    // hyp "the cat the cat sat on the mat" (8), ref "the cat sat on the mat" (6):
    //  1-grams: the 3 (ref 2) -> 2, cat 2 (ref 1) -> 1, sat on mat 1 each -> 6/8
    //  2-grams: the-cat x2 (ref 1) -> 1, cat-the 0, cat-sat sat-on on-the the-mat -> 5/7
    //  3-grams: the-cat-the 0, cat-the-cat 0, then 4 matches -> 4/6
    //  4-grams: 2 misses, the-cat-sat-on cat-sat-on-the sat-on-the-mat -> 3/5
    //  cand 8 > ref 6 -> BP = 1; BLEU = (6/8 * 5/7 * 4/6 * 3/5)^(1/4) = (3/14)^(1/4).
    const char *refs[] = {"the cat sat on the mat"};
    mt_bleu b;
    double bleu = bleu_of("the cat the cat sat on the mat", refs, 1, &b);
    CHECK_NEAR(b.precision[0], 6.0 / 8, 1e-12);
    CHECK_NEAR(b.precision[1], 5.0 / 7, 1e-12);
    CHECK_NEAR(b.precision[2], 4.0 / 6, 1e-12);
    CHECK_NEAR(b.precision[3], 3.0 / 5, 1e-12);
    CHECK_NEAR(b.brevity_penalty, 1.0, 0.0);
    CHECK_NEAR(bleu, pow(3.0 / 14.0, 0.25), 1e-12);
}

static void test_bleu_closest_reference_length_and_tie_takes_shorter(void) {
    // hyp (6 tokens) vs refs of 3 and 8 tokens: |3-6| = 3 > |8-6| = 2 -> 8.
    // n-grams against the merged refs: p1 = 6/6; bigrams: "the mat" misses -> 4/5;
    // trigrams "on the mat" misses -> 3/4; 4-grams "sat on the mat" misses -> 2/3.
    // BLEU = exp(1 - 8/6) * (1 * 4/5 * 3/4 * 2/3)^(1/4) = exp(-1/3) * 0.4^(1/4).
    const char *refs1[] = {"the cat sat", "the cat sat on the big red mat"};
    mt_bleu b;
    double bleu = bleu_of("the cat sat on the mat", refs1, 2, &b);
    CHECK_INT(b.ref_len, 8);
    CHECK_NEAR(bleu, exp(-1.0 / 3.0) * pow(0.4, 0.25), 1e-12);
    // refs of 4 and 8 tokens: both 2 away from 6 -> the shorter, 4; cand 6 > 4 -> BP = 1.
    const char *refs2[] = {"the cat sat on the big red mat", "the cat sat on"};
    bleu_of("the cat sat on the mat", refs2, 2, &b);
    CHECK_INT(b.ref_len, 4);
    CHECK_NEAR(b.brevity_penalty, 1.0, 0.0);
}

static void test_bleu_is_corpus_level_not_mean_of_segments(void) {
    // segment A: "a b c d" = its ref: hits 4 3 2 1, cand 4 3 2 1, ref 4
    // segment B: "a b c" vs "a b c d e f": hits 3 2 1 0, cand 3 2 1 0, ref 6
    // corpus: hits 7 5 3 1 = cand 7 5 3 1 -> every p_n = 1; ref 10 >= cand 7 ->
    // BLEU = BP = exp(1 - 10/7) = exp(-3/7), while the mean of the segment BLEUs
    // would be (1 + ~0) / 2.
    mt_bleu_stats s;
    mt_bleu_init(&s);
    const char *ra[] = {"a b c d"}, *rb[] = {"a b c d e f"};
    mt_bleu_add(&s, "a b c d", ra, 1);
    mt_bleu_add(&s, "a b c", rb, 1);
    mt_bleu b;
    double bleu = mt_bleu_score(&s, &b);
    CHECK_INT(s.n_segments, 2);
    CHECK_INT(s.hits[3], 1);
    CHECK_INT(s.cand_len[3], 1);
    CHECK_NEAR(bleu, exp(-3.0 / 7.0), 1e-12);
}

static void test_bleu_short_hypothesis_counts_as_pymteval(void) {
    // pymteval adds len(hyp) - n + 1 to cand_n even when negative: "a b" gives
    // cand 2 1 0 -1 and hits 2 1 0 0. BP = exp(1 - 2/2) = 1; p3 = p4 =
    // 1e-15 / 1e-9 (both floored) -> BLEU = exp(1/4 * 2 * log(1e-6)) = 1e-3.
    mt_bleu_stats s;
    mt_bleu_init(&s);
    const char *r[] = {"a b"};
    mt_bleu_add(&s, "a b", r, 1);
    CHECK_INT(s.cand_len[2], 0);
    CHECK_INT(s.cand_len[3], -1);
    CHECK_NEAR(mt_bleu_score(&s, NULL), 1e-3, 1e-15);
}

static void test_bleu_is_case_insensitive(void) {
    // BLEUScore(case_sensitive=False) lowercases n-grams: same score as identical text.
    const char *refs[] = {"The Cricketers is near Café Sicilia ."};
    CHECK_NEAR(bleu_of("the cricketers IS NEAR CAFÉ sicilia .", refs, 1, NULL), 1.0, 1e-12);
    // ... but not across different words
    CHECK(bleu_of("the cricketers is near café brazil .", refs, 1, NULL) < 0.9);
}

static void test_empty_hypothesis_is_one_empty_token(void) {
    // Python: " ".strip().split(' ') == [''] -> one token; vs a 3-token ref:
    // cand 1 0 -1 -2, ref 3, BP = exp(1 - 3/1) = exp(-2).
    const char *refs[] = {"a b c"};
    mt_bleu b;
    bleu_of("", refs, 1, &b);
    CHECK_INT(b.hyp_len, 1);
    CHECK_NEAR(b.brevity_penalty, exp(-2.0), 1e-12);
    CHECK(b.bleu >= 0 && b.bleu < 1e-6);
    mt_tokens t;
    mt_tokenize_ptb(" . , ", &t);  // punctuation only: filtered to nothing -> ['']
    CHECK_INT(t.n, 1);
    CHECK(t.n == 1 && t.tok[0][0] == 0);
    mt_tokens_free(&t);
    CHECK_NEAR(mt_rouge_l_segment("", refs, 1), 0.0, 0.0);
}

// ----------------------------------------------------------------------------
// ROUGE-L

static void test_lcs_known_pairs(void) {
    // Lin (2004)'s example: "police killed the gunman" vs "police kill the gunman":
    // LCS "police the gunman" = 3; vs "the gunman kill police": "the gunman" = 2.
    mt_tokens r, c1, c2;
    mt_tokenize_ptb("police killed the gunman", &r);
    mt_tokenize_ptb("police kill the gunman", &c1);
    mt_tokenize_ptb("the gunman kill police", &c2);
    CHECK_INT(mt_lcs(&r, &c1), 3);
    CHECK_INT(mt_lcs(&r, &c2), 2);
    CHECK_INT(mt_lcs(&c1, &r), 3);
    mt_tokens_free(&r);
    mt_tokens_free(&c1);
    mt_tokens_free(&c2);
    // P = R = 3/4 -> F = 3/4
    const char *refs[] = {"police killed the gunman"};
    CHECK_NEAR(mt_rouge_l_segment("police kill the gunman", refs, 1), 0.75, 1e-12);
}

static void test_rouge_l_takes_max_precision_and_recall_separately(void) {
    // hyp "a b c d" vs r1 "a b" (LCS 2: P 2/4, R 2/2) and r2 "a b c x y z w v"
    // (LCS 3: P 3/4, R 3/8): P_max = 3/4 (from r2), R_max = 1 (from r1):
    // F = 2.44 * 0.75 * 1 / (1 + 1.44 * 0.75) = 1.83 / 2.08.
    const char *refs[] = {"a b", "a b c x y z w v"};
    CHECK_NEAR(mt_rouge_l_segment("a b c d", refs, 2), 1.83 / 2.08, 1e-12);
}

static void test_rouge_l_ignores_punctuation_tokens(void) {
    // PTB + punctuation filter: "a b c d ." and "A, b; c d!" both are [a b c d].
    const char *refs[] = {"a b", "a b c x y z w v"};
    CHECK_NEAR(mt_rouge_l_segment("A, b; c d!", refs, 2), 1.83 / 2.08, 1e-12);
    CHECK_NEAR(mt_rouge_l_segment("a b c d .", refs, 2), 1.83 / 2.08, 1e-12);
}

// ----------------------------------------------------------------------------
// real data

static int load_e2e(ds_pairs *d) {
    const char *path = ls_test_asset("data/e2e/test.txt");
    if (!path) return 1;
    if (ds_load_e2e(d, path)) {
        CHECK_MSG(0, "ds_load_e2e: %s", ls_error());
        return -1;
    }
    return 0;
}

// refs[g] = the stripped references of MR g (pointers into d), n_refs[g] their count.
static void group_refs(const ds_pairs *d, int G, char ***refs, int *n_refs) {
    for (int g = 0; g < G; g++) {
        n_refs[g] = d->group_start[g + 1] - d->group_start[g];
        refs[g] = malloc((size_t)n_refs[g] * sizeof(char *));
        for (int k = 0; k < n_refs[g]; k++) {
            const char *c = d->ex[d->group_members[d->group_start[g] + k]].completion;
            char *s = strdup(c + 1);  // completion = " " + reference
            size_t n = strlen(s);
            while (n && s[n - 1] == ' ') s[--n] = 0;
            refs[g][k] = s;
        }
    }
}

static void free_refs(char ***refs, const int *n_refs, int G) {
    for (int g = 0; g < G; g++) {
        for (int k = 0; k < n_refs[g]; k++) free(refs[g][k]);
        free(refs[g]);
    }
}

static void test_e2e_references_scored_against_themselves_give_one(void) {
    // A hypothesis that IS one of its references matches every n-gram of itself,
    // and the closest reference length is its own (distance 0): BLEU 1; its
    // LCS with itself gives P = R = 1: ROUGE-L 1. Over all 630 test MRs.
    ds_pairs d;
    int rc = load_e2e(&d);
    if (rc > 0) SKIP("../shared/assets/data/e2e/test.txt is absent");
    if (rc < 0) return;
    int G = d.n_groups;
    char ***refs = calloc((size_t)G, sizeof(char **));
    int *n_refs = calloc((size_t)G, sizeof(int));
    const char **hyps = calloc((size_t)G, sizeof(char *));
    group_refs(&d, G, refs, n_refs);
    for (int g = 0; g < G; g++) hyps[g] = refs[g][n_refs[g] - 1];
    mt_scores s;
    mt_score_corpus(hyps, refs, n_refs, G, &s);
    CHECK_INT(s.n_segments, 630);
    CHECK_NEAR(s.bleu.bleu, 1.0, 1e-12);
    CHECK_NEAR(s.rouge_l, 1.0, 1e-12);
    free_refs(refs, n_refs, G);
    free(refs);
    free(n_refs);
    free(hyps);
    ds_pairs_free(&d);
}

static void test_bleu_matches_python_transcription_on_e2e(void) {
    // Hypotheses: each MR's last reference with every third word dropped and the
    // case of every fifth word flipped up, scored against the MR's other
    // references (MRs with one reference are skipped), plus hand-made lines that
    // exercise the tokenizer's rules. Compared with e2e_bleu_reference.py,
    // which follows the same definition with Python's own regexes.
    if (system("/usr/bin/python3 -c 'import re' >/dev/null 2>&1") != 0) SKIP("/usr/bin/python3 is absent");
    ds_pairs d;
    int rc = load_e2e(&d);
    if (rc > 0) SKIP("../shared/assets/data/e2e/test.txt is absent");
    if (rc < 0) return;
    int G = d.n_groups;
    char ***refs = calloc((size_t)G, sizeof(char **));
    int *n_refs = calloc((size_t)G, sizeof(int));
    group_refs(&d, G, refs, n_refs);
    const char *dir = ls_test_tmpdir("bleu_py");
    char *ref_path = ls_path_join(dir, "ref.txt"), *hyp_path = ls_path_join(dir, "hyp.txt");
    FILE *fr = fopen(ref_path, "w"), *fh = fopen(hyp_path, "w");
    CHECK(fr && fh);
    if (!fr || !fh) return;
    mt_bleu_stats st;
    mt_bleu_init(&st);
    int used = 0;
    for (int g = 0; g < G; g++) {
        if (n_refs[g] < 2) continue;
        // perturb the last reference
        char hyp[4096] = "";
        char *copy = strdup(refs[g][n_refs[g] - 1]);
        int w = 0;
        for (char *tokp = strtok(copy, " "); tokp; tokp = strtok(NULL, " "), w++) {
            if (w % 3 == 2) continue;
            if (w % 5 == 4)
                for (char *q = tokp; *q; q++) if (*q >= 'a' && *q <= 'z') *q = (char)(*q - 32);
            if (strlen(hyp) + strlen(tokp) + 2 < sizeof hyp) {
                if (*hyp) strcat(hyp, " ");
                strcat(hyp, tokp);
            }
        }
        free(copy);
        mt_bleu_add(&st, hyp, (const char *const *)refs[g], n_refs[g] - 1);
        fprintf(fh, "%s\n", hyp);
        for (int k = 0; k < n_refs[g] - 1; k++) fprintf(fr, "%s\n", refs[g][k]);
        fputc('\n', fr);
        used++;
    }
    const char *extra[][2] = {
        {"The Eagle, a 5-star café (near £20.50)! e.g. U.S.A it's", "the eagle , a 5 - star cafe near £20.50 !"},
        {"Fish &amp; Chips &quot;hi&quot; {a|b} ~x~ [y] ^_^ `q` @home #1 $5 100% a*b+c=d <e> f/g",
         "fish & chips \"hi\" a|b x [y] q @ home # 1 $ 5 100 % a * b + c = d e f / g"},
        {"1.5 2,5 3.x y.4 ,7 .8 a-1 1-a --- 9--", "1.5 2,5 3 . x y . 4 , 7 . 8 a-1 1 - a --- 9 - -"},
        {"", "nothing"},
        {"x", "x y z w"},
    };
    for (int k = 0; k < LEN(extra); k++) {
        const char *r1[] = {extra[k][1]};
        mt_bleu_add(&st, extra[k][0], r1, 1);
        fprintf(fh, "%s\n", extra[k][0]);
        fprintf(fr, "%s\n\n", extra[k][1]);
    }
    fclose(fr);
    fclose(fh);
    mt_bleu b;
    double bleu = mt_bleu_score(&st, &b);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", ls_test_source("eval/e2e_bleu_reference.py"),
             ref_path, hyp_path);
    FILE *p = popen(cmd, "r");
    double py_bleu = -1;
    long v[9] = {0};
    int ok = p && fscanf(p, "%lf", &py_bleu) == 1;
    for (int i = 0; ok && i < 9; i++) ok = fscanf(p, "%ld", &v[i]) == 1;
    if (p) pclose(p);
    CHECK_MSG(ok, "could not read the output of: %s", cmd);
    CHECK(used > 500);
    if (ok) {
        for (int n = 0; n < MT_BLEU_N; n++) {
            CHECK_INT(st.hits[n], v[n]);
            CHECK_INT(st.cand_len[n], v[4 + n]);
        }
        CHECK_INT(st.ref_len, v[8]);
        CHECK_CLOSE(bleu, py_bleu, 1e-12, 0);
        CHECK(bleu > 0.01 && bleu < 0.9);  // a real, partial match
        printf("BLEU of the perturbed references: %.6f (python %.6f), BP %.4f\n", bleu, py_bleu,
               b.brevity_penalty);
    }
    free(ref_path);
    free(hyp_path);
    free_refs(refs, n_refs, G);
    free(refs);
    free(n_refs);
    ds_pairs_free(&d);
}

// ----------------------------------------------------------------------------
// NIST and CIDEr (eval/scores.h)

// One segment "a b" against the reference "a b": count_0 = 2 tokens,
// info(a) = info(b) = log2(2/1) = 1, info(a b) = log2(1/1) = 0, so the
// unigram term is 2/2 = 1, the bigram term 0/1, orders 3..5 have no
// candidates; the lengths are equal (BP 1): NIST = 1.
static void test_nist_hand_derived(void) {
    const char *hyp[1] = {"a b"};
    char *r0[1] = {"a b"};
    char **refs[1] = {r0};
    int n_refs[1] = {1};
    CHECK_NEAR(mt_nist(hyp, refs, n_refs, 1), 1.0, 1e-12);
    // Half the length: ratio 1/2, BP = exp(-beta ln^2 0.5) with beta = -ln 0.5 / ln^2 1.5;
    // the hit "a" carries info log2(2/1) = 1 over one candidate token.
    const char *short_hyp[1] = {"a"};
    double beta = -log(0.5) / (log(1.5) * log(1.5));
    CHECK_NEAR(mt_nist(short_hyp, refs, n_refs, 1), exp(-beta * log(0.5) * log(0.5)) * 1.0, 1e-12);
}

// Identical hypothesis and single reference in segments that share no n-gram:
// every order's cosine is 1 and the length penalty 1, so each segment scores
// 10 x 1 and CIDEr = 10; a hypothesis sharing nothing with its reference scores 0.
static void test_cider_identical_distinct_segments_give_ten(void) {
    const char *hyp[2] = {"the cat sat on mats", "dogs run in parks daily"};
    char *r0[1] = {"the cat sat on mats"}, *r1[1] = {"dogs run in parks daily"};
    char **refs[2] = {r0, r1};
    int n_refs[2] = {1, 1};
    CHECK_NEAR(mt_cider_tokenized(hyp, refs, n_refs, 2), 10.0, 1e-9);
    const char *other[2] = {"dogs run in parks daily", "the cat sat on mats"};
    CHECK_NEAR(mt_cider_tokenized(other, refs, n_refs, 2), 0.0, 1e-12);
}

static int load_score_corpus(mt_corpus *c, double *nist, double *cider) {
    char *expect = ls_read_file(ls_test_source("data/eval/score_expected.json"), NULL);
    CHECK(expect != NULL);
    if (!expect) return -1;
    const char *p = strstr(expect, "\"nist\":"), *q = strstr(expect, "\"cider_whitespace_tokens\":");
    CHECK(p && q);
    *nist = p ? strtod(p + 7, NULL) : NAN;
    *cider = q ? strtod(q + 26, NULL) : NAN;
    free(expect);
    char *hyp = ls_strdup(ls_test_source("data/eval/score_hyp.txt"));
    int rc = mt_corpus_read(c, hyp, ls_test_source("data/eval/score_refs.txt"));
    free(hyp);
    CHECK_MSG(rc == 0, "%s", ls_error());
    return rc;
}

// 60 E2E instances (tests/reference/make_score_reference.py): NIST against an
// independent Python transcription of pymteval's NISTScore.
static void test_nist_matches_python_transcription_on_e2e(void) {
    mt_corpus c;
    double nist, cider;
    if (load_score_corpus(&c, &nist, &cider)) return;
    CHECK_INT(c.n, 60);
    double got = mt_nist((const char *const *)c.hyp, c.refs, c.n_refs, c.n);
    CHECK_CLOSE(got, nist, 1e-12, 0);
    mt_corpus_free(&c);
}

// The same corpus: CIDEr-D against pycocoevalcap's Cider on whitespace tokens.
static void test_cider_matches_pycocoevalcap_on_e2e(void) {
    mt_corpus c;
    double nist, cider;
    if (load_score_corpus(&c, &nist, &cider)) return;
    double got = mt_cider_tokenized((const char *const *)c.hyp, c.refs, c.n_refs, c.n);
    CHECK_CLOSE(got, cider, 1e-12, 0);
    mt_corpus_free(&c);
}

// Writes n bytes of text (n < 0: all of it).
static void write_text(const char *path, const char *text, long n) {
    if (n < 0) n = (long)strlen(text);
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (!fp) return;
    fwrite(text, 1, (size_t)n, fp);
    fclose(fp);
}

// Bad score files: a one-line error naming the file, the line and what was expected.
static void test_score_files_bad_input(void) {
    const char *dir = ls_test_tmpdir("score_bad");
    char *h = ls_path_join(dir, "hyp.txt"), *r = ls_path_join(dir, "refs.txt");
    mt_corpus c;
    write_text(h, "one\ntwo\n", -1);
    write_text(r, "ref a\nref b\n\nref c\n", -1);
    CHECK(mt_corpus_read(&c, h, r) == 0 && c.n == 2 && c.n_refs[0] == 2 && c.n_refs[1] == 1);
    if (c.n == 2) mt_corpus_free(&c);
    write_text(h, "one\n", -1);
    CHECK(mt_corpus_read(&c, h, r) == -1);
    CHECK_STR_CONTAINS(ls_error(), "hyp.txt: 1 hypotheses, but");
    CHECK_STR_CONTAINS(ls_error(), "has 2 reference groups");
    write_text(h, "one\ntwo\n", -1);
    write_text(r, "ref a\n\n\nref c\n", -1);
    CHECK(mt_corpus_read(&c, h, r) == -1);
    CHECK_STR_CONTAINS(ls_error(), "refs.txt:3: a blank line that ends no instance");
    write_text(r, "ref a\n\nref\0c\n", 12);
    CHECK(mt_corpus_read(&c, h, r) == -1);
    CHECK_STR_CONTAINS(ls_error(), "refs.txt: byte 10 is NUL");
    write_text(r, "\n\n", -1);
    CHECK(mt_corpus_read(&c, h, r) == -1);
    CHECK_STR_CONTAINS(ls_error(), "refs.txt: no references");
    free(h);
    free(r);
}

// The value of "key": in the object that follows "section" in a small JSON text.
static double json_number_in(const char *text, const char *section, const char *key) {
    const char *p = strstr(text, section);
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = p ? strstr(p, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

// lorascope's metrics against the official script's printout (4 decimals)
// on one file pair: BLEU and NIST to the printed rounding, ROUGE-L within
// 1e-3, CIDEr within 5e-3 (the PTB tokenizer is an approximation of CoreNLP's:
// metrics.h lists the lexer rules it leaves out). METEOR without paraphrases
// is not the official METEOR: measured 1.4e-3 (60 instances) and 2.1e-3 (616
// MRs) below it; checked within 3e-3 when WordNet is installed
// (tests/eval/test_meteor.c checks it against Meteor 1.5 with the same modules).
static void check_against_e2e_metrics(const char *hyp, const char *refs, const char *expect, const char *section) {
    mt_corpus c;
    int rc = mt_corpus_read(&c, hyp, refs);
    CHECK_MSG(rc == 0, "%s", ls_error());
    if (rc) return;
    const char *const *h = (const char *const *)c.hyp;
    mt_scores s;
    mt_score_corpus(h, c.refs, c.n_refs, c.n, &s);
    double nist = s.nist, cider = s.cider;
    CHECK_NEAR(s.bleu.bleu, json_number_in(expect, section, "BLEU"), 5.1e-5);
    CHECK_NEAR(nist, json_number_in(expect, section, "NIST"), 5.1e-5);
    CHECK_NEAR(s.rouge_l, json_number_in(expect, section, "ROUGE_L"), 1e-3);
    CHECK_NEAR(cider, json_number_in(expect, section, "CIDEr"), 5e-3);
    if (!isnan(s.meteor)) {
        CHECK_NEAR(s.meteor, json_number_in(expect, section, "METEOR"), 3e-3);
        CHECK(s.meteor < json_number_in(expect, section, "METEOR"));
    }
    mt_corpus_free(&c);
}

// tests/reference/make_e2e_metrics_reference.py ran tuetschek/e2e-metrics'
// measure_scores.py -p on the 60-instance files and on the E2E test set (each
// MR with two or more references: the first is the hypothesis).
static void test_score_matches_e2e_metrics_official_script(void) {
    char *expect = ls_read_file(ls_test_source("data/eval/e2e_metrics_expected.json"), NULL);
    CHECK(expect != NULL);
    if (!expect) return;
    char *hyp = ls_strdup(ls_test_source("data/eval/score_hyp.txt"));
    check_against_e2e_metrics(hyp, ls_test_source("data/eval/score_refs.txt"), expect, "\"score_files\"");
    free(hyp);
    const char *asset = ls_test_asset("data/e2e/test.txt");
    if (!asset) {
        free(expect);
        SKIP("../shared/assets/data/e2e/test.txt is absent (the 60-instance files were checked)");
    }
    // group the asset's references by MR, in order of first appearance
    char *text = ls_read_file(asset, NULL);
    CHECK(text != NULL);
    const char *dir = ls_test_tmpdir("score_e2e");
    char *hp = ls_path_join(dir, "hyp.txt"), *rp = ls_path_join(dir, "refs.txt");
    FILE *fh = fopen(hp, "w"), *fr = fopen(rp, "w");
    int n_mr = 0;
    char **mrs = calloc(5000, sizeof(char *));
    char ***refs = calloc(5000, sizeof(char **));
    int *n_refs = calloc(5000, sizeof(int));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *sep = strstr(line, "||");
        if (!sep) continue;
        *sep = 0;
        int g = 0;
        while (g < n_mr && strcmp(mrs[g], line)) g++;
        if (g == n_mr && n_mr < 5000) {
            mrs[n_mr] = line;
            refs[n_mr++] = calloc(64, sizeof(char *));
        }
        if (g < n_mr && n_refs[g] < 64) refs[g][n_refs[g]++] = sep + 2;
    }
    int used = 0;
    for (int g = 0; g < n_mr; g++) {
        if (n_refs[g] < 2) continue;
        fprintf(fh, "%s\n", refs[g][0]);
        for (int k = 1; k < n_refs[g]; k++) fprintf(fr, "%s\n", refs[g][k]);
        fprintf(fr, "\n");
        used++;
        free(refs[g]);
    }
    for (int g = 0; g < n_mr; g++)
        if (n_refs[g] < 2) free(refs[g]);
    fclose(fh);
    fclose(fr);
    CHECK_NEAR(used, json_number_in(expect, "\"e2e_test_first_reference\"", "instances"), 0);
    check_against_e2e_metrics(hp, rp, expect, "\"e2e_test_first_reference\"");
    free(mrs);
    free(refs);
    free(n_refs);
    free(text);
    free(hp);
    free(rp);
    free(expect);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_mteval_tokenization_hand_derived),
        LS_TEST(test_ptb_tokenization_hand_derived),
        LS_TEST(test_bleu_identical_is_one_and_rouge_l_is_one),
        LS_TEST(test_bleu_brevity_penalty_short_hypothesis),
        LS_TEST(test_bleu_clipped_counts_papineni_example),
        LS_TEST(test_bleu_clipped_counts_all_orders),
        LS_TEST(test_bleu_closest_reference_length_and_tie_takes_shorter),
        LS_TEST(test_bleu_is_corpus_level_not_mean_of_segments),
        LS_TEST(test_bleu_short_hypothesis_counts_as_pymteval),
        LS_TEST(test_bleu_is_case_insensitive),
        LS_TEST(test_empty_hypothesis_is_one_empty_token),
        LS_TEST(test_lcs_known_pairs),
        LS_TEST(test_rouge_l_takes_max_precision_and_recall_separately),
        LS_TEST(test_rouge_l_ignores_punctuation_tokens),
        LS_TEST(test_e2e_references_scored_against_themselves_give_one),
        LS_TEST(test_bleu_matches_python_transcription_on_e2e),
        LS_TEST(test_nist_hand_derived),
        LS_TEST(test_cider_identical_distinct_segments_give_ten),
        LS_TEST(test_nist_matches_python_transcription_on_e2e),
        LS_TEST(test_cider_matches_pycocoevalcap_on_e2e),
        LS_TEST(test_score_files_bad_input),
        LS_TEST(test_score_matches_e2e_metrics_official_script),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
