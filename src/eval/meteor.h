// meteor: METEOR as Meteor 1.5 computes it for English (Denkowski & Lavie
// 2014; `java -jar meteor-1.5.jar - - -stdio -l en -norm`, the call of
// pycocoevalcap inside the E2E challenge's measure_scores.py), WITHOUT the
// paraphrase module: lorascope has no paraphrase table. Every output names it
// "METEOR (exact+stem+synonym, no paraphrase)"; it is not the official METEOR
// (tests/eval measures the gap on the E2E test set).
//
// Words: each text goes through Meteor's -norm (its Normalizer for English:
// symbols split off, quotes and dashes normalized, word-internal dashes
// removed, contractions split as "n 't", "' re"; not done: its escaping of
// runs of dots and its nonbreaking-prefix list), lowercased, split on spaces.
// Matching (stages in this order; a word pair may be proposed by several):
//   exact   : equal words, weight 1.0;
//   stem    : different words, equal Snowball English stems (porter2.h), 0.6;
//   synonym : different words sharing a WordNet 3.0 synset, 0.8. A word's
//             synsets are those of its index.* entry plus those of its base
//             forms: its *.exc bases if it has any, else the first of WordNet's
//             detachment rules (noun, verb, adjective suffixes, in that order)
//             that yields a lemma. Read from Debian's wordnet-base files,
//             their byte offsets mapped to the numbers of Meteor's own table
//             (which, like Meteor, merges synsets of two parts of speech at one
//             offset: "get" and "low" are synonyms there, and here).
// Alignment: Meteor's beam search (beam 40) over the candidate matches, left
// to right over the reference: a word with one candidate whose test word has
// one candidate is fixed first; partial alignments are ranked by exact matches
// (Meteor ranks with weights 1, 0.5, 0.5 summed in ints, so stem and synonym
// matches add nothing there), then fewer chunks, then distance; ties keep
// their order. Identical sentences use the exact stage only.
// Score of one alignment (alpha 0.85, beta 0.2, gamma 0.6, delta 0.75):
//   P = sum_k w_k (delta mc_k(hyp) + (1-delta) mf_k(hyp)) / (delta |hyp_c| + (1-delta) |hyp_f|)
//   R = the same over the reference's words,
//   Fmean = 1 / ((1-alpha)/P + alpha/R),
//   frag = chunks / ((matches_hyp + matches_ref) / 2), 0 when every word of
//          both is matched in one chunk,
//   score = Fmean (1 - gamma frag^beta); NaN (an empty side) counts as 0;
// where c / f split the words into content and Meteor's English function-word
// list (93 entries). With several references a segment keeps the statistics
// of its best-scoring reference (the first on ties). The corpus score is the
// score of the statistics summed over segments (Meteor's EVAL), not the mean
// of segment scores.
#ifndef LS_EVAL_METEOR_H
#define LS_EVAL_METEOR_H

#define MT_METEOR_NAME "METEOR (exact+stem+synonym, no paraphrase)"
#define MT_METEOR_MODULES 3   // exact, stem, synonym

// The synonym dictionary: WordNet's lemmas with their synset offsets and its
// morphological exception lists.
typedef struct mt_wordnet mt_wordnet;

// The directory lorascope reads WordNet from: $LORASCOPE_WORDNET if set, else
// /usr/share/wordnet (Debian/Ubuntu package wordnet-base).
const char *mt_wordnet_default_dir(void);

// Reads dir/index.{noun,verb,adj,adv} and dir/{noun,verb,adj,adv}.exc.
// Returns the dictionary (free with mt_wordnet_free), or NULL with ls_error()
// naming the file that is missing or the line that is malformed.
mt_wordnet *mt_wordnet_load(const char *dir);
void mt_wordnet_free(mt_wordnet *wn);

// Meteor's sufficient statistics of one segment (or of a corpus, summed).
typedef struct {
    double hyp_len, ref_len;              // words
    double hyp_function, ref_function;    // of which function words
    double hyp_content_matches[MT_METEOR_MODULES], ref_content_matches[MT_METEOR_MODULES];
    double hyp_function_matches[MT_METEOR_MODULES], ref_function_matches[MT_METEOR_MODULES];
    double chunks;
    double hyp_matches, ref_matches;      // matched words, all modules
} mt_meteor_stats;

// The score of a set of statistics (formula above).
double mt_meteor_score(const mt_meteor_stats *s);

// Statistics of a hypothesis against its best reference. Texts are
// whitespace-separated tokens (lowercased here). wn may be NULL: the synonym
// stage is then skipped (exact + stem only). Returns the segment's score.
double mt_meteor_segment(const mt_wordnet *wn, const char *hyp, const char *const *refs, int n_refs,
                         mt_meteor_stats *out);

// Corpus METEOR of n pre-tokenized segments; seg (n, may be NULL) receives
// each segment's score.
double mt_meteor_tokenized(const mt_wordnet *wn, const char *const *hyps, char **const *refs, const int *n_refs,
                           int n, double *seg);

// Corpus METEOR of n raw segments, tokenized as COCOEvalCap feeds Meteor
// (mt_tokenize_ptb: lowercased PTB tokens, punctuation dropped).
double mt_meteor(const mt_wordnet *wn, const char *const *hyps, char **const *refs, const int *n_refs, int n);

#endif
