// train_config: the resolved configuration of a training run, one table of
// options shared by the INI file (libinih), the command-line flags and the
// config.ini a run writes.
//
// Every option has a section and key in the INI file ("[lora] rank = 8") and
// a flag (--rank 8). A file is read first, flags override it. Unknown
// sections or keys, unparsable values and values outside an option's range
// are errors that name the key (or the flag) and the range. Checks that need
// the model (a module the family lacks, r > min(d_in, d_out)) happen later,
// in train.c, with the same key names.
#ifndef LS_TRAIN_CONFIG_H
#define LS_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "base/options.h"

#define TC_PATH 1024
#define TC_SHORT 64

typedef struct {
    // [model]
    char model[TC_PATH];       // llama2.c .bin or HF dir
    char tokenizer[TC_PATH];   // tokenizer.bin | dir with encoder.json + vocab.bpe | "bytes" | "" (auto)
    // [data]
    char task[TC_SHORT];       // lm | e2e | sst2 | jsonl
    char data[TC_PATH];        // training file
    char val_data[TC_PATH];    // held-out file ("" = split val_frac off data)
    double val_frac;           // fraction of data's groups held out when val_data is ""
    int seq_len;               // tokens per example at most (lm: window length T)
    char doc_sep[TC_SHORT];    // lm: document separator ("" = one document)
    int eval_max;              // validation examples used per evaluation (0 = all)
    // [lora]
    int full;                  // 1: full fine-tuning (every base weight trainable), no adapter (= method full)
    char method[TC_SHORT];     // lora | full | bitfit | fttop2 | adapter-h | adapter-l | prefix-layer | prefix-embed (tc_method)
    int adapter_size;          // adapter-h / adapter-l: the bottleneck r
    int prefix_len;            // prefix-layer: l_p, the prefix's length per layer; prefix-embed: l_p virtual tokens
    char prefix_init[TC_SHORT]; // random (PEFT's N(0, 1)) | text (prefix-layer: a real text's KV cache, Li & Liang; prefix-embed: its word embeddings, PEFT's TEXT)
    char modules[TC_SHORT * 2]; // "q,v", "all", ...
    int rank;
    double alpha;
    int rslora;
    double lora_dropout;
    char init[TC_SHORT];       // gaussian | kaiming | pissa
    double init_std;           // gaussian σ (0 = 1/r)
    char layers[TC_PATH];      // "all" or "0,1,5"
    char modules_to_save[TC_SHORT]; // encoder + LoRA: classifier | classifier,pooler (bert)
    // [optim]
    int steps;                 // optimizer steps
    int batch_size;            // sequences per micro-batch
    int grad_accum;            // micro-batches per step
    double lr;
    char schedule[TC_SHORT];   // constant | linear | cosine (after warmup)
    int warmup;                // warmup steps (linear from 0)
    double weight_decay;
    double beta1, beta2, adam_eps;
    double clip;               // max global grad norm (0 = off)
    double label_smoothing;
    double hidden_dropout;     // encoders: HF's hidden dropout (model_set_hidden_dropout)
    long long seed;            // data order, LoRA init, dropout
    // [run]
    int eval_every;            // 0 = only at the start and the end
    int save_every;            // checkpoint interval in steps (0 = only at the end)
    int log_every;             // progress line / metrics interval when stderr is not a terminal
    int threads;               // OpenMP threads (0 = OMP default)
    char backend[TC_SHORT];    // cpu | cuda | auto (cuda when a GPU is usable, else cpu)
    char precision[TC_SHORT];  // fp32 | tf32 | bf16 (the cuda backend's products; cpu: fp32)
    char out[TC_PATH];         // run directory
    char merged_out[TC_PATH];  // "" or a directory for merged HF weights
    int stop_after;            // hidden: die (SIGKILL) after this step, as a killed run (tests)
} ls_train_config;

// The training methods of the paper's Tables 2 and 3 (--method).
typedef enum { TC_LORA = 0, TC_FULL = 1, TC_BITFIT = 2, TC_FTTOP2 = 3, TC_ADAPTER_H = 4, TC_ADAPTER_L = 5,
               TC_PREFIX_LAYER = 6, TC_PREFIX_EMBED = 7 } tc_method_kind;

// The method of a config: --full is an alias of --method full.
tc_method_kind tc_method(const ls_train_config *c);
// "lora", "full", "bitfit", "fttop2", "adapter-h", "adapter-l": the run record's "mode".
const char *tc_method_name(tc_method_kind k);

// The option table (base/options.h) behind every function below.
const opt_table *tc_table(void);

// Defaults (printed by `lorascope train --help`).
void tc_defaults(ls_train_config *c);

// Reads an INI file over c. Returns 0, or -1 with ls_error() naming the file,
// the line (syntax errors) or the [section] key and what was wrong.
int tc_load_ini(ls_train_config *c, const char *path);

// Sets one option by key ("rank" or "lora.rank") from its text value; `who`
// names the source in messages ("--rank", "run.ini: [lora] rank"). Returns 0 or -1.
int tc_set(ls_train_config *c, const char *section, const char *key, const char *value, const char *who);

// Flag name (without "--") -> option key, for getopt tables: fills up to
// max entries of names[] with the flag names and returns how many there are.
int tc_flag_names(const char **names, int max);
// 1 if the flag takes no value (booleans: --full, --rslora).
int tc_flag_is_bool(const char *flag);
// Applies flag `flag` (without "--") with value (NULL for a bool flag).
int tc_set_flag(ls_train_config *c, const char *flag, const char *value);

// Cross-field checks that need no model: required fields present, task known.
int tc_validate(const ls_train_config *c);

// Writes the resolved config as INI (every key, with its section). Returns the
// text, malloc'd (caller frees).
char *tc_to_ini(const ls_train_config *c);

// Compares the options that determine the trained bits; on the first that
// differs sets ls_error() ("[lora] rank: the run has 8, found 16") and returns
// -1. Run-control options (out, merged_out, log/eval/save intervals, eval_max,
// stop_after) may differ. With inputs_by_content, so may the locations of the
// inputs (model, tokenizer, data, val_data): the caller compares what they hold.
int tc_compare_for_resume(const ls_train_config *run, const ls_train_config *now, int inputs_by_content);

// Prints the option table (flag, INI key, default, help) for --help.
void tc_print_help(FILE *fp);

#endif
