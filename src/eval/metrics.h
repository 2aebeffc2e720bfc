// metrics: the E2E NLG Challenge's BLEU and ROUGE-L, computed as its official
// script computes them (tuetschek/e2e-metrics, `measure_scores.py -p`, the
// command microsoft/LoRA's examples/NLG/README.md runs for the paper's
// Table 3 / Table 11 numbers).
//
// BLEU (metrics/pymteval.py, BLEUScore with its defaults: max_ngram 4,
// case-insensitive, no smoothing), corpus level over all segments:
//   tokens   = mteval-v13a's basic tokenization (mt_tokenize_mteval below);
//              n-grams compared lowercased.
//   hits_n  += sum over the hypothesis' distinct n-grams g of
//              min(count_hyp(g), max over references of count_ref(g))
//              (clipped counts, Papineni et al. 2002).
//   cand_n  += len(hyp) - n + 1  (pymteval adds this even when negative, for a
//              hypothesis shorter than n; reproduced as is).
//   ref_len += length of the reference closest in length to the hypothesis,
//              the shorter one on a tie.
//   BP       = 1 if cand_1 > ref_len, else exp(1 - ref_len / cand_1)
//              (cand_1 = 0 counts as 1e-5).
//   BLEU     = BP * exp(1/4 sum_n log(max(hits_n, 1e-15) / max(cand_n, 1e-9))).
//
// ROUGE-L (pycocoevalcap/rouge/rouge.py, which measure_scores.py runs through
// COCOEvalCap after pycocoevalcap's PTBTokenizer), per segment:
//   P = max over references of LCS(hyp, ref) / len(hyp),
//   R = max over references of LCS(hyp, ref) / len(ref)   (maxima taken separately),
//   F = (1 + b^2) P R / (R + b^2 P) with b = 1.2, or 0 when P or R is 0;
//   ROUGE-L = the mean of F over segments.
// Tokens: mt_tokenize_ptb below, an approximation of Stanford CoreNLP 3.4.1's
// PTBTokenizer (-lowerCase) followed by pycocoevalcap's removal of punctuation
// tokens; see there for where it can differ.
//
// Both scorers split "" (an empty hypothesis) into ONE empty token, as
// Python's "".split(' ') does in the reference code.
#ifndef LS_EVAL_METRICS_H
#define LS_EVAL_METRICS_H

#define MT_BLEU_N 4

// ----------------------------------------------------------------------------
// tokens

// A list of tokens: tok[i] are NUL-terminated strings inside one buffer.
typedef struct {
    int n;
    char **tok;      // (n)
    char *buf;       // owns the bytes
} mt_tokens;

// mteval-v13a's language-independent + Western tokenization, as pymteval's
// NGramScore.tokenize does it (regexes applied in this order):
//   drop "<skipped>", join "-\n", "\n" -> " ", unescape &quot; &amp; &lt; &gt;;
//   pad with spaces; put spaces around each of  { | } ~ [ \ ] ^ _ ` ! " # $ % &
//   ( ) * + : ; < = > ? @ /  (not ' - . , nor non-ASCII such as £);
//   split "." and "," from a preceding non-digit, then from a following
//   non-digit (so 2.5 and 1,000 stay whole); split "-" after a digit;
//   collapse whitespace, trim, split on " ".
// Case is kept (BLEU lowercases when it compares n-grams).
// Fills *out (free with mt_tokens_free).
void mt_tokenize_mteval(const char *text, mt_tokens *out);

// PTB-style tokenization as pycocoevalcap's PTBTokenizer (CoreNLP 3.4.1,
// -preserveLines -lowerCase) + its punctuation filter. Implemented rules:
// lowercase; whitespace splits; quotes, brackets and . , ; : ! ? split off a
// word (a "." or "," between digits and a ":" between digits stay, as in
// 2.5, 1,000, 10:30); the currency signs $ £ € split from a following word;
// the clitics 's 're 've 'll 'm 'd n't and "cannot" -> "can not" split;
// then every token in pycocoevalcap's PUNCTUATIONS (''  '  ``  `  -LRB- -RRB-
// -LCB- -RCB-  .  ?  !  ,  :  -  --  ...  ;), a bracket or a double quote is
// dropped. Not reproduced: CoreNLP's abbreviation list (a word-final "." is
// always split), its British-to-American respelling and currency renaming
// (they map tokens one-to-one, so matches are unchanged unless a text mixes
// spellings), and its rarer lexer rules — on the E2E test set's 4,518
// distinct sentences 22 tokenize differently, all of them from: a currency
// sign after a word ("of£20"), a hyphen between a number and a currency sign
// ("20-£30"), a "." that starts a word (".blue"), a word-final hyphen
// ("non-"); CIDEr moves by about 0.003 there (tests/eval, against the
// official script). The E2E data are already
// PTB-tokenized ("is n't", "£ 20 - 25"), where these rules agree with it.
void mt_tokenize_ptb(const char *text, mt_tokens *out);

void mt_tokens_free(mt_tokens *t);

// mt_tokenize_ptb's non-empty tokens joined by single spaces (each followed
// by one), as the scorers that tokenize before they split take their text
// (METEOR's -norm input, CIDEr, NIST). Free with free().
char *mt_ptb_text(const char *raw);

// A corpus of hypotheses and their references as mt_ptb_text gives them, for
// the scorers that take tokenized text (CIDEr, METEOR). Free with mt_ptb_corpus_free.
typedef struct {
    char **hyps;   // (n)
    char ***refs;  // (n) x n_refs[i]
    const int *n_refs;
    int n;
} mt_ptb_corpus;
void mt_ptb_corpus_make(mt_ptb_corpus *c, const char *const *hyps, char **const *refs, const int *n_refs, int n);
void mt_ptb_corpus_free(mt_ptb_corpus *c);

// ----------------------------------------------------------------------------
// BLEU (corpus level, multi-reference)

typedef struct {
    long hits[MT_BLEU_N];      // clipped n-gram matches, summed over segments
    long cand_len[MT_BLEU_N];  // sum of len(hyp) - n + 1
    long ref_len;              // sum of closest reference lengths
    int n_segments;
} mt_bleu_stats;

typedef struct {
    double bleu;               // in [0, 1]
    double brevity_penalty;
    double precision[MT_BLEU_N]; // hits_n / cand_n with the floors above
    long hyp_len;              // cand_len[0]: hypothesis tokens
    long ref_len;
} mt_bleu;

void mt_bleu_init(mt_bleu_stats *s);
// Adds one segment: a hypothesis and its n_refs >= 1 references (raw text,
// tokenized here). n_refs < 1 adds nothing.
void mt_bleu_add(mt_bleu_stats *s, const char *hyp, const char *const *refs, int n_refs);
// The corpus BLEU of the segments added so far; fills *out if not NULL.
double mt_bleu_score(const mt_bleu_stats *s, mt_bleu *out);

// ----------------------------------------------------------------------------
// ROUGE-L

// Length of the longest common subsequence of two token lists (exact match).
int mt_lcs(const mt_tokens *a, const mt_tokens *b);

// ROUGE-L F (b = 1.2) of one hypothesis against n_refs >= 1 references
// (raw text, PTB-tokenized here). Returns 0 for n_refs < 1.
double mt_rouge_l_segment(const char *hyp, const char *const *refs, int n_refs);

// ----------------------------------------------------------------------------
// corpus

typedef struct {
    mt_bleu bleu;
    double rouge_l;            // mean segment ROUGE-L F
    double nist;               // eval/scores.h
    double cider;              // CIDEr-D, eval/scores.h
    double meteor;             // METEOR (exact+stem+synonym, no paraphrase), eval/meteor.h;
                               // NAN when WordNet's files are absent (ls_error() says which)
    int n_segments;
} mt_scores;

// BLEU, NIST, METEOR (exact+stem+synonym), ROUGE-L and CIDEr of n segments:
// hyps[i] against refs[i][0 .. n_refs[i]). METEOR reads WordNet from
// mt_wordnet_default_dir() on each call.
void mt_score_corpus(const char *const *hyps, char **const *refs, const int *n_refs, int n,
                     mt_scores *out);

#endif
