// experiment: the experiment files under experiments/ — one per paper table
// or figure — and the training runs they need.
//
// An experiment file is INI (`;` or `#` comments, `[section]`, `key = value`):
//
//   [experiment]   name, reproduces (which table/figure), differs (how this
//                  setup differs from the paper), description
//   [train]        flags of `lorascope train`, the same for every run
//                  (`steps = 300` becomes `--steps 300`); a value starting with
//                  `$ASSETS/` names a file under the assets directory
//   [sweep]        axes of a grid: each key is a `lorascope train` flag with a
//                  list of values separated by `|` (e.g. `rank = 4 | 16`,
//                  `lora = q | q,v | q,k,v,o`); the runs are the cartesian product,
//                  except that `zip = lora, rank` makes the listed axes vary
//                  together (same number of values; Table 5's budgets)
//   [eval]         flags of `lorascope eval` run on each finished run's
//                  validation data (e.g. `generate = 50` for E2E BLEU/ROUGE-L);
//                  the result goes to <run>/eval.json
//   [analysis NAME] one analysis over the finished runs (see cmd_run.c): `kind`
//                  and selectors such as `a = rank=4`, `b = rank=16`
//
// The runs an experiment needs, and how they are shared, are exp/plan.h's.
#ifndef LS_EXPERIMENT_H
#define LS_EXPERIMENT_H

typedef struct {
    char *key;
    char *value;
    char *raw;       // the value as written ($ASSETS/... unresolved): what a run's identity hashes
    int line;
} exp_kv;

typedef struct {
    char *name;      // a train flag without "--"
    int n_values;
    char **values;
    int line;
    int leader;      // -1, or the axis this one is zipped with (same value index)
} exp_axis;

typedef struct {
    char *name;      // the section's NAME
    char *kind;      // table, subspace, amplify, w-vs-dw, spectrum, intruders, curve
    int n_kv;
    exp_kv *kv;      // every key of the section, kind included
    int line;
} exp_analysis;

typedef struct {
    char *path;
    char *name;
    char *reproduces;
    char *differs;
    char *description;
    char *assets;    // resolved assets directory
    int n_train;
    exp_kv *train;   // values with $ASSETS resolved
    int n_eval;
    exp_kv *eval;    // [eval] flags
    int n_axes;
    exp_axis *axes;
    int n_analyses;
    exp_analysis *analyses;
} experiment;

// Reads and validates an experiment file: known sections and keys, values
// present, every $ASSETS path existing. Errors name the file, the line and
// the key. Returns 0 or -1 with ls_error() set.
int exp_load(experiment *e, const char *path, const char *assets);
void exp_free(experiment *e);

// Value of `key` in an analysis section, or NULL.
const char *exp_analysis_get(const exp_analysis *a, const char *key);

// The default assets directory: $LORASCOPE_ASSETS, else ../shared/assets when it
// exists (relative to the working directory), else NULL.
const char *exp_default_assets(void);

#endif
