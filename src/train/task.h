// task: what the training loop and `lorascope eval` feed the model — the base
// model and its tokenizer, a data set of one of four kinds tokenized into
// items, batches of items, and the held-out measures (token-weighted loss;
// SST-2 accuracy by comparing the label words' scores).
//
// Items are windows of T+1 tokens (lm) or context/completion examples (e2e,
// sst2, jsonl) whose loss counts only the completion tokens; with an encoder,
// sst2 items are sentences with a class (ds_classify), and the measures are
// the classifier's cross-entropy and accuracy. A batch of
// examples is padded to its longest example rather than to seq_len: padding
// carries no loss and, attention being causal, changes no real position's
// value, so a batch's loss does not depend on how much padding it holds.
#ifndef LS_TRAIN_TASK_H
#define LS_TRAIN_TASK_H

#include "engine/model.h"
#include "io/checkpoint.h"
#include "text/dataset.h"
#include "text/ds_classify.h"
#include "text/tokenizer.h"

typedef enum { TASK_LM = 0, TASK_E2E = 1, TASK_SST2 = 2, TASK_JSONL = 3 } task_kind;

// "lm" | "e2e" | "sst2" | "jsonl" -> kind; -1 with ls_error() for anything else.
int task_parse_kind(const char *name, task_kind *out);
const char *task_kind_name(task_kind k);

// ----------------------------------------------------------------------------
// model and tokenizer

// Loads a checkpoint (ckpt_load) and builds the model on the backend; an
// encoder (bert, roberta) is refused with a message, as generation runs
// decoders. The
// checkpoint is loaded into *ck (kept: the export and the analyses need the
// source's layout); pass ck = NULL to free it at once. Returns 0 or -1.
int task_load_model(ls_model *m, ls_checkpoint *ck, const char *path, const ls_backend *be);

// task_load_model for `train` / `eval` of a task: an encoder is taken for
// sst2 (sequence classification with its head, model_classify_forward) and
// refused for the other kinds with a one-line error naming the task and the
// model type; a decoder as task_load_model takes it. Returns 0 or -1.
int task_load_model_for(ls_model *m, ls_checkpoint *ck, const char *path, const ls_backend *be, task_kind kind);

// Loads the tokenizer named by `spec` for a model of vocab V as
// tok_load_for_model (text/tokenizer.h) does ("bytes", a path, or "" to look
// beside the model), and checks that every token id fits the model (vocab <= V). *used_path gets
// the resolved path (malloc'd, caller frees; may be NULL). Returns NULL with
// ls_error() on failure.
tokenizer *task_load_tokenizer(const char *spec, const char *model_path, int V, char **used_path);

// ----------------------------------------------------------------------------
// data

typedef struct {
    task_kind kind;
    int seq_len;        // tokens per item at most
    ds_text text;       // lm
    ds_pairs pairs;     // e2e, sst2, jsonl
    int n_items;
    int n_groups;       // groups for splitting (E2E: meaning representations)
    int classify;       // 1: sst2 for an encoder: cls holds [CLS] text [SEP] and labels
    ds_classify cls;
    int pad;            // classify: the padding id of a batch (the tokenizer's, else 0)
} task_data;

// Reads and tokenizes `path`. seq_len is the number of positions a batch row
// holds (the model's T): lm windows are seq_len + 1 tokens, an example is cut
// to at most seq_len + 1 tokens (ds_pairs_tokenize keeps the completion).
// doc_sep is the lm document separator ("" = none). Returns 0, or -1 with
// ls_error() naming the file and, for a malformed line, the line.
int task_data_load(task_data *d, task_kind kind, const char *path, const tokenizer *tok, int seq_len,
                   const char *doc_sep);
void task_data_free(task_data *d);

// task_data_load for model m: an encoder reads sst2 as sequence
// classification (ds_classify: the sentence alone as [CLS] text [SEP], cut to
// seq_len tokens, with its label; labels must be classes of the model's head);
// a decoder as task_data_load. Returns 0 or -1 with ls_error().
int task_data_load_for(task_data *d, const ls_model *m, task_kind kind, const char *path, const tokenizer *tok,
                       int seq_len, const char *doc_sep);

// Splits items into train and validation by group (ds_split), so that no E2E
// meaning representation lands on both sides. Lists are malloc'd.
int task_data_split(const task_data *d, double val_frac, uint64_t seed, int **train, int *n_train, int **val,
                    int *n_val);

// Keeps max of the n items (max <= 0 or n <= max: all): a fixed-seed shuffle,
// the first max, sorted again, so that every run and `lorascope eval` with the
// same max measure the same items whatever their training seed. Returns the
// new n.
int task_subsample(int *items, int n, int max);

// The largest T a batch of this data can have: the model reservation to make.
int task_max_T(const task_data *d);

// A batch with room for Bcap rows of Tcap positions; b.B and b.T are the
// shape of the batch it holds now (row stride b.T).
typedef struct {
    ds_batch b;
    int Bcap, Tcap;
    int *keymask;       // classify: (B,T) 1 = token, 0 = padding
    int *labels;        // classify: (B) classes
} task_batch;

void task_batch_init(task_batch *tb, int Bcap, int Tcap);
void task_batch_free(task_batch *tb);

// items (n) -> tb->b (n, T): inputs, targets and mask of items[0..n)
// (1 <= n <= Bcap), T = the longest item's length - 1 (lm: the window).
// Classification data: b.inputs, tb->keymask and tb->labels, T = the longest
// example's length (b.targets and b.mask unused).
int task_fill_batch(const task_data *d, const int *items, int n, task_batch *tb);

// Number of tokens in the loss of item i.
long task_item_loss_tokens(const task_data *d, int item);

// ----------------------------------------------------------------------------
// held-out measures

typedef struct {
    double loss;        // token-weighted mean cross-entropy (nats) over the completion tokens
                        // (classification: the mean over the examples)
    long n_tokens;      // tokens in the loss (classification: examples)
    int n_items;
    double accuracy;    // sst2: fraction of examples whose label word scores higher; else NAN
} task_eval_result;

// SST-2 classification by generation: scores[2 j + k] = the summed
// log-probability of label word k's tokens after item j's context (the
// context nearest the word kept when both do not fit in seq_len + 1 tokens),
// 2 * max(1, B / 2) rows per forward pass: eval_label_scores (eval/tasks.h)
// on d's examples with max_T = d->seq_len. Returns 0 or -1.
int task_label_scores(ls_model *m, const task_data *d, const int *items, int n, int B, double *scores);

// Evaluates the model (dropout off) on items[0..n) (n = 0: nothing), B rows
// per forward pass, label smoothing 0. For sst2 also the accuracy: each
// example's context is followed by each label word, the word's summed
// log-probability is its score, and the higher score is the prediction.
// Classification data (an encoder): the mean cross-entropy of the head's
// logits and the accuracy of their argmax (GLUE's dev accuracy).
// Returns 0 or -1 (model errors).
int task_evaluate(ls_model *m, const task_data *d, const int *items, int n, int B, task_eval_result *out);

#endif
