// lorascope score: the E2E NLG Challenge's metrics of any system's outputs,
// from measure_scores.py's input files (src/eval/scores.h, metrics.h).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "cli/commands.h"
#include "eval/meteor.h"
#include "eval/metrics.h"
#include "eval/scores.h"

typedef struct {
    char hyp[4096];
    char refs[4096];
} score_args;

#define S score_args
static const opt_spec OPTIONS[] = {
    OPT_STR_(S, "score", "hyp", "hyp", hyp, 1, "system outputs: one hypothesis per line"),
    OPT_STR_(S, "score", "refs", "refs", refs, 1,
             "references: one per line, each instance's group followed by a blank line"),
};
#undef S
static const opt_table TABLE = {OPTIONS, (int)(sizeof OPTIONS / sizeof OPTIONS[0]), "score", "lorascope score"};

static void usage(FILE *fp) {
    score_args defaults;
    memset(&defaults, 0, sizeof defaults);
    fprintf(fp, "usage: lorascope score --hyp FILE --refs FILE\n\noptions:\n");
    opt_print_help(&TABLE, &defaults, fp);
    fprintf(fp,
            "\nPrints BLEU, NIST, ROUGE_L and CIDEr as the E2E challenge's measure_scores.py prints them\n"
            "(BLEU on its 0-1 scale; the LoRA paper's tables print 100 x BLEU), and\n"
            "%s: Meteor 1.5's exact, stem and WordNet-synonym\n"
            "matching without its paraphrase table, so it is NOT the official METEOR (on the E2E test\n"
            "set it reads about 0.002 below it). The synonyms come from WordNet's files in\n"
            "/usr/share/wordnet (package wordnet-base) or $LORASCOPE_WORDNET; without them METEOR is\n"
            "left out with a note on stderr.\n",
            MT_METEOR_NAME);
}

int cmd_score(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    score_args a;
    memset(&a, 0, sizeof a);
    if (opt_parse_argv(&TABLE, &a, argc, argv, NULL, NULL, NULL, NULL) ||
        (!a.hyp[0] && ls_fail("--hyp: required")) || (!a.refs[0] && ls_fail("--refs: required"))) {
        fprintf(stderr, "lorascope score: %s\n", ls_error());
        return 2;
    }
    mt_corpus c;
    if (mt_corpus_read(&c, a.hyp, a.refs)) {
        fprintf(stderr, "lorascope score: %s\n", ls_error());
        return 1;
    }
    const char *const *hyps = (const char *const *)c.hyp;
    mt_scores s;
    mt_score_corpus(hyps, c.refs, c.n_refs, c.n, &s);
    mt_corpus_free(&c);
    // measure_scores.py's order; METEOR (index 2) is left out when WordNet is absent
    double v[5] = {s.bleu.bleu, s.nist, s.meteor, s.rouge_l, s.cider};
    const char *names[5] = {"BLEU", "NIST", MT_METEOR_NAME, "ROUGE_L", "CIDEr"};
    int have_meteor = !isnan(s.meteor);
    for (int i = 0; i < 5; i++)
        if (!isfinite(v[i]) && (i != 2 || have_meteor)) {
            fprintf(stderr, "lorascope score: %s is %g (expected a finite score)\n", names[i], v[i]);
            return 1;
        }
    printf("SCORES:\n==============\n");
    for (int i = 0; i < 5; i++)
        if (i != 2 || have_meteor) printf("%s: %.4f\n", names[i], v[i]);
    fflush(stdout);
    if (!have_meteor)
        fprintf(stderr, "lorascope score: METEOR not computed: %s\n", ls_error());
    fprintf(stderr, "%d instances\n", s.n_segments);
    return 0;
}
