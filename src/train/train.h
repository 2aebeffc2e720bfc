// train: the training loop (Hu et al. 2021, Sec. 4 / 7: LoRA on a frozen W0;
// full fine-tuning as the baseline), its learning-rate schedule, atomic
// checkpoints and resumption to the same bits.
//
// One step: lr from the schedule; gradients zeroed; grad_accum micro-batches
// (batch k = step * grad_accum + micro, drawn by ds_sampler from (seed, k),
// so a resumed run sees the same batches), each forward + backward with its
// mean loss weighted 1/grad_accum; global-norm clipping; one AdamW step
// (torch semantics, optim.h). A non-finite loss or gradient norm stops the run
// at once: nothing of that step is saved, the last checkpoint stays.
//
// Determinism: every random choice is a counter-based function of the seed —
// the data order of (seed, batch index), the LoRA initialisation of the seed,
// the dropout mask of (seed, batch index, site) — and every op's reduction
// order is fixed for a thread count (backend.h). The "RNG state" a checkpoint
// needs is therefore the step counter, which it stores with the trainable
// parameters and both AdamW moments.
//
// Run directory (cfg.out):
//   config.ini             the resolved configuration (train_config.h)
//   metrics.jsonl          {"step", "loss", "lr", "grad_norm", "tokens", ...} per
//                          logged step and {"step", "val_loss", ...} per evaluation
//   checkpoint/state.safetensors   tensors params, adam.m, adam.v (an encoder's
//                          head under LoRA: head.params, head.adam.m, head.adam.v);
//                          metadata step, seeds, counters (one file, written atomically)
//   adapter/               PEFT adapter (LoRA runs; an encoder's head as modules_to_save), export.h
//   full/model.safetensors canonical parameters (full fine-tuning), export.h
//   bitfit/, adapters/, prefix/, prompt/   the other methods' weights (train_weights_files)
//   manifest.json          version, git commit, backend, threads, machine, times, outcome
#ifndef LS_TRAIN_TRAIN_H
#define LS_TRAIN_TRAIN_H

#include "train/train_config.h"

// The run directory's entries, as write_outputs writes them and the runner,
// the Slurm script, import_adapter_dir and the experiments' analyses find
// them (the layout above).
#define RUN_ADAPTER_DIR "adapter"        // LoRA: PEFT's layout (io/adapter.h)
#define RUN_FULL_DIR "full"              // full fine-tuning, FT^Top2
#define RUN_BITFIT_DIR "bitfit"          // BitFit: the trained tensors
#define RUN_ADAPTERS_DIR "adapters"      // Adapter^H / ^L: lorascope's format
#define RUN_PREFIX_DIR "prefix"          // prefix-layer: PEFT's PREFIX_TUNING
#define RUN_PROMPT_DIR "prompt"          // prefix-embed: PEFT's PROMPT_TUNING
#define RUN_CHECKPOINT_DIR "checkpoint"
#define RUN_CHECKPOINT_FILE "state.safetensors" // in checkpoint/
#define RUN_PARAMS_FILE "model.safetensors" // in full/, bitfit/, adapters/
#define RUN_CONFIG_FILE "config.ini"     // its presence means "started": --resume applies
#define RUN_METRICS_FILE "metrics.jsonl"
#define RUN_MANIFEST_FILE "manifest.json"
#define RUN_EVAL_FILE "eval.json"        // written by the runner's evaluation (exp/runner.c)

// transformers' schedules, step s = 0, 1, ... (the s-th update), S = steps,
// W = warmup: s < W: lr s / W; then constant: lr; linear: lr (S - s) / (S - W);
// cosine: lr (1 + cos(pi (s - W) / (S - W))) / 2 (never below 0).
double train_lr_at(const ls_train_config *c, long s);

// Sets the number of OpenMP threads to n (n <= 0: OMP_NUM_THREADS or all
// cores). That is the one pool the CPU backend uses: it runs OpenBLAS
// single-threaded and splits each sgemm into panels over the OpenMP threads
// (ops_cpu.c), because two pools spinning beside each other on few cores
// are slower (llama512 LoRA, 2 threads: 545 tok/s with OpenBLAS at 1 thread,
// 542 at 2). Returns the OpenMP thread count in effect.
int train_set_threads(int n);

typedef struct {
    int status;             // 0 done, 1 stopped on a non-finite value
    long steps_done;
    double base_val_loss;   // validation loss before training (NAN: no validation)
    double final_val_loss;  // after the last step (NAN: no validation)
    double final_train_loss;
    double wall_s;
} train_result;

// Runs (or with resume, continues) the training of cfg. Resuming restores the
// last checkpoint and drops the later lines of metrics.jsonl; a run killed
// before its first checkpoint starts again from step 0. Loads and checks
// everything — model, tokenizer, data, LoRA targets and ranks — before it
// creates or touches the run directory, so that bad input leaves no output.
// argv (may be NULL) is recorded in the manifest. Returns 0 on success,
// -1 with ls_error() on bad input or I/O errors, 1 with ls_error() when a
// non-finite loss or gradient stopped the run.
int train_run(const ls_train_config *cfg, int resume, int argc, char **argv, train_result *res);

// The weights file each method writes at the end of a run, relative to the run
// directory, *n of them: LoRA, full / FT^Top2, BitFit, Adapter^H / ^L,
// prefix-layer, prefix-embed. A run has its weights when one of them exists.
const char *const *train_weights_files(int *n);

#endif
