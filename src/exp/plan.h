// plan: the training runs that experiments need — one typed training
// configuration per point of each sweep — deduplicated across experiments.
//
// Runs are identified by their full flag list as written in the experiment
// file ($ASSETS/ unresolved, so the identity does not depend on where the
// assets live), hashed. The label in a run's directory name
// (results/runs/<label>-<hash16>/) is for reading only: two experiments that
// need the same run share one directory even where they label it differently
// (one sweeps rank, the other fixes it in [train]), so no run trains twice.
#ifndef LS_EXP_PLAN_H
#define LS_EXP_PLAN_H

#include <stdint.h>

#include "exp/experiment.h"
#include "train/train_config.h"

typedef struct {
    int n_args;
    char **args;        // "--flag", "value", ... as resolved (without --out): what --list prints
    char *label;        // e.g. "rank4-lora_q,v-seed1"
    uint64_t hash;      // of the sorted flag list as written
    char *dir;          // <results>/runs/<label>-<hash16>; the label may be another experiment's
    int *value_index;   // per axis: index of this run's value
    ls_train_config cfg; // the run's resolved, validated training configuration (cfg.out = dir)
} exp_run;

// The runs of e (cartesian product of the axes, first axis slowest; zipped
// axes move together), their directories under results_root/runs/, each with
// its training configuration checked (unknown flag, bad value, missing
// field). Returns the count, or -1 with ls_error() naming the file and run.
int exp_plan(const experiment *e, const char *results_root, exp_run **runs);
void exp_runs_free(exp_run *runs, int n);

// Selects runs matching a selector "axis=value axis2=value2" (space-separated;
// value `*` matches any); out receives indices into runs (capacity n).
// Returns the number selected, or -1 with ls_error() (unknown axis or value).
int exp_select(const experiment *e, const exp_run *runs, int n, const char *selector, int *out);

// ----------------------------------------------------------------------------
// the experiments of one `lorascope run`

// The most runs one experiment (or one `lorascope run`) plans.
#define EXP_MAX_RUNS 100000
#define EXP_MAX 32

typedef struct {
    experiment exps[EXP_MAX];
    exp_run *runs[EXP_MAX];  // runs[i]: the n_runs[i] runs of exps[i]
    int n_runs[EXP_MAX];
    int n_exps;
    exp_run **unique;        // every distinct run once (pointers into runs[])
    int n_unique;
} exp_set;

// Loads the experiment files, plans their runs under results/ and
// deduplicates them by hash: the runs of one hash get one directory, the
// first of their own that exists, else one already under results/runs/ with
// that hash, else the first planner's. Two experiments may not share a name. Returns 0, or -1
// with ls_error() (nothing has been written then).
int exp_set_load(exp_set *s, const char *const *files, int n_files, const char *assets, const char *results);
void exp_set_free(exp_set *s);

#endif
