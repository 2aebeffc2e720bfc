// dataset: text for language modelling and context/completion pairs (JSONL,
// E2E NLG, SST-2), tokenized, split, shuffled and batched into fixed (B,T)
// arrays for the engine.
//
// Determinism: every random choice (shuffles, splits, batch order) comes from
// ds_rng, a splitmix64 stream seeded explicitly, so the same seed gives the
// same order on every machine and thread count.
#ifndef LS_TEXT_DATASET_H
#define LS_TEXT_DATASET_H

#include <stdint.h>

#include "text/tokenizer.h"

// ----------------------------------------------------------------------------
// random numbers, shuffles, splits

// splitmix64 (Steele, Lea & Flood 2014, as in Vigna's xoshiro seeding):
// state += 0x9E3779B97F4A7C15, then two xor-shift-multiply rounds.
typedef struct {
    uint64_t state;
} ds_rng;

void ds_rng_seed(ds_rng *r, uint64_t seed);
uint64_t ds_rng_next(ds_rng *r);
// Uniform integer in [0, n) (n >= 1), without modulo bias (rejection).
uint64_t ds_rng_below(ds_rng *r, uint64_t n);

// Fisher-Yates (Durstenfeld) shuffle of a[0..n) with a fresh ds_rng(seed):
// for i = n-1 .. 1, swap a[i] with a[ds_rng_below(i + 1)].
void ds_shuffle(int *a, int n, uint64_t seed);

// Splits items 0..n_items-1 into train and validation without leaking a
// group: group_of[i] (in [0, n_groups)) is item i's group, NULL = each item
// its own group. The groups are shuffled with `seed` and the first
// round(val_frac * n_groups) of them go to validation. Both lists come back
// malloc'd (caller frees), in increasing item order. Returns 0, or -1 with
// ls_error() set when val_frac is outside [0, 1].
int ds_split(int n_items, const int *group_of, int n_groups, double val_frac, uint64_t seed,
             int **train, int *n_train, int **val, int *n_val);

// ----------------------------------------------------------------------------
// batches

// One step's data: row b, position t predicts targets[b*T+t] from
// inputs[b*T .. b*T+t]; mask[b*T+t] is 1 where that target is in the loss.
typedef struct {
    int B, T;
    int *inputs;     // (B,T)
    int *targets;    // (B,T)
    float *mask;     // (B,T) 1 or 0; padding is 0
    int n_rows;      // rows that hold an item; the rest are all padding
    long n_loss;     // number of positions with mask 1
} ds_batch;

// Allocates the three (B,T) arrays; free with ds_batch_free.
void ds_batch_init(ds_batch *b, int B, int T);
void ds_batch_free(ds_batch *b);

// Deterministic batch order over a list of items (examples or windows):
// epoch e visits the items in the order ds_shuffle(items, seed + e * golden),
// and batch `step` holds the items at stream positions step*B .. step*B+B-1,
// wrapping into the next epochs. A pure function of (items, seed, step), so a
// resumed run sees exactly the batches it would have seen.
typedef struct {
    int *items;      // copy of the caller's item list
    int n;
    uint64_t seed;
    int *perm;       // order of the cached epoch
    long epoch;      // which epoch perm holds (-1: none)
} ds_sampler;

void ds_sampler_init(ds_sampler *s, const int *items, int n, uint64_t seed);
// Writes the B item ids of batch `step` to out (n must be >= 1).
void ds_sampler_batch(ds_sampler *s, long step, int B, int *out);
void ds_sampler_free(ds_sampler *s);

// ----------------------------------------------------------------------------
// language modelling on plain text

// A token stream cut into windows of T+1 consecutive tokens (inputs are the
// first T, targets the last T). Windows do not overlap, not even by the one
// token that llm.c-style stride-T windows share, so a split by window never
// leaks a token between train and validation.
typedef struct {
    int *tokens;
    long n_tokens;
    int T;
    int n_windows;   // n_tokens / (T + 1); the tail that does not fill one is dropped
} ds_text;

// Reads a UTF-8 text file and tokenizes it. doc_sep (NULL or "" = the whole
// file is one document) splits it into documents, e.g. "<|endoftext|>" for
// TinyStories dumps or "\n\n"; each non-empty document is encoded with
// tok_encode(doc, bos = 1, eos = 0) so that documents are delimited by BOS
// (GPT-2: <|endoftext|>), as llama2.c's pretokenizer does. Returns 0, or -1
// with ls_error() set (unreadable file, NUL byte, T < 1, fewer than T+1
// tokens).
int ds_text_load(ds_text *d, const char *path, const tokenizer *tok, const char *doc_sep, int T);
void ds_text_free(ds_text *d);

// windows (n) -> b->inputs, b->targets, b->mask (B,T)
// Fills b with windows[0..n) (n <= b->B; remaining rows are padding). b->T
// must equal d->T. Every target is in the loss (mask 1).
int ds_text_fill_batch(const ds_text *d, const int *windows, int n, ds_batch *b);

// ----------------------------------------------------------------------------
// context / completion pairs

typedef struct {
    char *context;     // the prompt (no loss)
    char *completion;  // the text that carries the loss
    int group;         // E2E: its meaning-representation group; otherwise its own index
    int label;         // SST-2: 0 (negative) or 1 (positive); otherwise -1
    int line;          // 1-based line in the source file
} ds_example;

// How examples become tokens.
//   tokens = [BOS if bos] + encode(context) + [sep if sep >= 0]
//          + encode_continuation(completion) + [EOS if eos]
// The context part (BOS, context, sep) is masked out; the completion and its
// EOS are in the loss. microsoft/LoRA's GPT-2 E2E setup is bos 0, sep 50256,
// eos 1 (context <|endoftext|> " reference" <|endoftext|>).
typedef struct {
    int max_len;   // tokens per example at most (a batch has T = max_len - 1)
    int bos;       // 1: start with BOS (if the tokenizer has one)
    int sep;       // token id between context and completion, -1: none
    int eos;       // 1: end the completion with EOS (if the tokenizer has one)
} ds_format;

// Defaults for a tokenizer: llama2c and byte: BOS, no separator, EOS;
// GPT-2: no BOS, separator and EOS = <|endoftext|> (the LoRA repo's format).
ds_format ds_format_default(const tokenizer *tok, int max_len);

// SST-2 as classification by generation.
typedef struct {
    const char *prompt;          // must contain "{sentence}" once
    const char *label_words[2];  // completions for label 0 and label 1
} ds_sst2_format;

// "Review: {sentence}\nSentiment:" with " negative" / " positive".
ds_sst2_format ds_sst2_format_default(void);

typedef struct {
    char *path;
    ds_example *ex;
    int n;
    // groups of examples that share a context (E2E: the same MR); for other
    // formats every example is its own group.
    int n_groups;
    int *group_start;    // (n_groups + 1): group g's examples are
    int *group_members;  //   group_members[group_start[g] .. group_start[g+1]), in file order
    // classification (SST-2); n_labels = 0 otherwise
    int n_labels;
    char *label_words[2];
    // after ds_pairs_tokenize
    int **tokens;        // (n) malloc'd arrays of n_tokens[i]
    unsigned char **mask;  // (n) 1 where tokens[i][t] is a completion token
    int *n_tokens;
    int n_truncated;     // examples that were cut to max_len
    int max_len;
    int *label_ids[2];   // tokens of each label word (as a continuation)
    int label_len[2];
} ds_pairs;

// JSONL: one {"context": "...", "completion": "..."} object per line (other
// keys are ignored, blank lines skipped). Returns 0 or -1 with ls_error()
// "path:line: expected ..., found ...".
int ds_load_jsonl(ds_pairs *d, const char *path);

// E2E NLG in microsoft/LoRA's format: "meaning representation||reference"
// per line. context = the MR, completion = " " + the reference (both trimmed
// of surrounding whitespace, as format_converting_e2e.py strips the line;
// the space as gpt2_encode.py prepends it). Lines with the same MR form one
// group, numbered in order of first appearance.
int ds_load_e2e(ds_pairs *d, const char *path);

// GLUE SST-2 TSV: a "sentence<TAB>label" header, then sentence TAB 0|1 per
// row. context = the prompt with {sentence} replaced by the sentence (trimmed),
// completion = label_words[label]. fmt NULL = ds_sst2_format_default().
int ds_load_sst2(ds_pairs *d, const char *path, const ds_sst2_format *fmt);

void ds_pairs_free(ds_pairs *d);

// Tokenizes every example per fmt (see ds_format). An example longer than
// max_len is truncated: context tokens are dropped from the front (after BOS,
// which stays), keeping the context nearest the completion; if the completion
// alone still does not fit, its end is cut. Also tokenizes the label words.
// Returns 0, or -1 with ls_error() set (max_len too small for BOS + sep + one
// completion token, an empty completion, a label word encoding to nothing).
int ds_pairs_tokenize(ds_pairs *d, const tokenizer *tok, const ds_format *fmt);

// Number of context tokens of example i (its prefix with mask 0): the prompt
// to generate from, or to score the label words after.
int ds_pairs_context_len(const ds_pairs *d, int i);

// Splits by group (ds_split with group_of = the example's group): an E2E MR
// never lands in both lists.
int ds_pairs_split(const ds_pairs *d, double val_frac, uint64_t seed,
                   int **train, int *n_train, int **val, int *n_val);

// examples (n) -> b->inputs, b->targets, b->mask (B,T)
// Fills b with examples[0..n) (n <= b->B): inputs = tokens[0..L-1),
// targets = tokens[1..L), mask = the target's completion flag; positions
// beyond L-1 are padding (token 0, mask 0). Needs b->T >= max_len - 1.
int ds_pairs_fill_batch(const ds_pairs *d, const int *examples, int n, ds_batch *b);

#endif
