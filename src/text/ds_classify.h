// ds_classify: sentence classification data for encoders (BERT-style
// sequence classification, the paper's GLUE setting): each example is its
// text encoded as [BOS] text [EOS] through the tokenizer interface
// (text/tokenizer.h: with BERT's WordPiece tokenizer BOS / EOS are [CLS] /
// [SEP], as HF's BertTokenizer builds a single sentence) and its class.
//
// Memory: ds_classify owns its token arrays; ds_classify_free releases them.
#ifndef LS_TEXT_DS_CLASSIFY_H
#define LS_TEXT_DS_CLASSIFY_H

#include "text/dataset.h"
#include "text/tokenizer.h"

typedef struct {
    int n;
    int **tokens;      // (n) arrays of n_tokens[i] ids
    int *n_tokens;
    int *labels;       // (n) classes in [0, n_labels)
    int n_labels;
    int max_len;
    int n_truncated;   // examples cut to max_len (EOS kept, as HF's truncation keeps [SEP])
} ds_classify;

// Encodes every example of d (its context is the text: load SST-2 with the
// prompt "{sentence}") with BOS and EOS when the tokenizer has them, cut to
// max_len tokens keeping BOS and EOS; labels from the examples. Returns 0, or
// -1 with ls_error() (max_len below BOS + EOS + 1, an example without a label,
// a text that encodes to nothing).
int ds_classify_tokenize(ds_classify *c, const ds_pairs *d, const tokenizer *tok, int max_len);
void ds_classify_free(ds_classify *c);

// examples (n) -> ids (n, T), mask (n, T) (1 = token, 0 = padding), labels (n),
// with T the longest example's length: row r holds example examples[r]
// followed by `pad` ids (the model's padding id). Caller buffers hold at least
// n * max_len ints (ids, mask) and n (labels). Returns T.
int ds_classify_fill(const ds_classify *c, const int *examples, int n, int pad, int *ids, int *mask, int *labels);

#endif
