// scores: NIST and CIDEr over a corpus, as the E2E NLG Challenge's official
// script computes them (tuetschek/e2e-metrics, measure_scores.py), and the
// script's input files. BLEU and ROUGE-L are in metrics.h.
//
// NIST (metrics/pymteval.py, NISTScore with its defaults: max_ngram 5,
// case-insensitive), over mteval-v13a tokens (mt_tokenize_mteval), n-grams
// compared lowercased. Over the corpus:
//   count_n(g)  = occurrences of the n-gram g in all references of all
//                 segments; count_0(()) = the total number of reference tokens;
//   info(g)     = log2(count_{n-1}(g without its last token) / count_n(g)),
//                 0 when g occurs in no reference;
//   hits        = per segment, the hypothesis' distinct n-grams g with
//                 min(count_hyp(g), max over references of count_ref(g)) > 0;
//   term_n      = sum over segments and hits of info(g) * hits
//                 / sum over segments of (len(hyp) - n + 1);
//   L_ref       = sum over segments of the mean reference length;
//   BP          = 1 if len_sys >= L_ref, 0 if len_sys <= 0, else
//                 exp(-beta ln^2(len_sys / L_ref)), beta = -ln 0.5 / ln^2 1.5;
//   NIST        = BP * sum_{n=1..5} term_n.
// A term whose denominator is not positive (a corpus of hypotheses shorter
// than n tokens; Python raises ZeroDivisionError there) counts as 0.
//
// CIDEr (pycocoevalcap/cider: CIDEr-D, n = 4, sigma = 6), over the PTB tokens
// of mt_tokenize_ptb with empty tokens dropped (the reference splits on
// whitespace). With N segments:
//   df(g)     = the number of segments whose references contain g;
//   vec(s)[g] = count_s(g) * (ln N - ln max(1, df(g))), per order n;
//   sim_n     = sum over the hypothesis' g of min(vec_h[g], vec_r[g]) * vec_r[g],
//               divided by |vec_h| |vec_r| when both norms are non-zero,
//               times exp(-(delta^2) / (2 sigma^2)), delta = the difference
//               of the two sentences' bigram counts (pycocoevalcap's "length");
//   segment   = 10 * mean over n of (sum over references of sim_n) / n_refs;
//   CIDEr     = the mean over segments.
#ifndef LS_EVAL_SCORES_H
#define LS_EVAL_SCORES_H

#define MT_NIST_N 5
#define MT_CIDER_N 4

// NIST of n segments: hyps[i] against refs[i][0 .. n_refs[i]) (raw text).
double mt_nist(const char *const *hyps, char **const *refs, const int *n_refs, int n);

// CIDEr-D of n segments (raw text, PTB-tokenized here).
double mt_cider(const char *const *hyps, char **const *refs, const int *n_refs, int n);

// CIDEr-D of n pre-tokenized segments: each string's tokens are its
// whitespace-separated words (pycocoevalcap's input after its tokenizer).
double mt_cider_tokenized(const char *const *hyps, char **const *refs, const int *n_refs, int n);

// The input files of measure_scores.py: one hypothesis per line; references
// one per line, each instance's group ended by a blank line (or the end).
typedef struct {
    int n;           // segments
    char **hyp;      // (n)
    char ***refs;    // (n) each (n_refs[i])
    int *n_refs;     // (n)
} mt_corpus;

// Reads both files; the hypothesis count must equal the reference groups'.
// Returns 0, or -1 with ls_error() naming the file, the line and what was
// expected.
int mt_corpus_read(mt_corpus *c, const char *hyp_path, const char *refs_path);
void mt_corpus_free(mt_corpus *c);

#endif
