// runner: what `lorascope run` does with a planned exp_set — train the runs
// that are not complete (resuming those with a checkpoint), evaluate them
// ([eval]), list what is left for other machines (--list). Training and
// evaluation are called in this process through their typed entry points
// (train_run, evaluate_run); with --jobs, as child processes running the
// commands --list prints, those a cluster's tasks run.
#ifndef LS_EXP_RUNNER_H
#define LS_EXP_RUNNER_H

#include <stdio.h>

#include "exp/plan.h"

typedef struct {
    const char *results;  // results directory
    int threads;          // threads per run (0: each run's own setting)
    const char *backend;  // cpu | cuda | auto for every run and evaluation (NULL or "": each run's own)
    int no_plot;          // tables only
    int gather;           // analyses over the runs complete (and evaluated) now; the rest named, skipped
                          // (tables count a run whose record is here without its weights)
    int argc;             // the command that started the runs, recorded in each run's manifest
    char **argv;
    int jobs;             // > 1: that many trainings (and evaluations) at once, as child processes
    const char *exe;      // this program: what --list, --slurm and --jobs run
} exp_options;

// 1 if the run directory holds a finished run: its manifest says completed and
// its trained weights are there (results/ in git keeps records without weights).
int exp_run_is_complete(const char *dir);

// Prints one self-contained `lorascope train ...` command (absolute paths,
// shell-quoted) per run not yet complete, then one `lorascope eval ...` per
// complete run of an experiment with [eval] that has no eval.json yet: what
// can run now, for spreading a sweep over machines (a second listing after
// the trainings holds their evaluations).
void exp_list_commands(const exp_set *s, const exp_options *o, const char *exe, FILE *out);

// Writes to `path` (atomically) an sbatch job-array script: one array task
// per run not yet complete, each the run's `lorascope train` command, which
// skips a complete run and resumes a started one, then one per evaluation
// --list prints, which skips one done; the Slurm logs go to the results
// directory. With nothing to do it writes nothing and says so.
// Returns 0, or -1 with ls_error().
int exp_write_slurm(const exp_set *s, const exp_options *o, const char *exe, const char *path);

// Trains every run not yet complete, in plan order, with a progress line per
// run (k/n, elapsed, ETA). In this process; with o->jobs > 1, as o->jobs
// child processes at a time, each the `lorascope train` command --list
// prints (o->threads each, else the cores / o->jobs), its output in
// <results>/logs/<run directory name>.log; after a failure no new one starts
// and those running finish. Returns 0, or -1 with ls_error() naming the run
// (and its log).
int exp_train_all(exp_set *s, const exp_options *o);

// Evaluates every LoRA run of an experiment with an [eval] section into
// <run>/eval.json, unless that file exists; with o->jobs > 1 as child
// processes like exp_train_all (logs <run directory name>.eval.log).
// Returns 0 or -1.
int exp_evaluate_all(exp_set *s, const exp_options *o);

// Runs every [analysis NAME] of every experiment over its runs, into
// <results>/<experiment>/NAME.{tsv,md,png,svg} with data in data/NAME/: tables and curves (aggregate.h), the analyses of
// src/analyze (exp_analyze.h). With o->gather, over the runs that are
// complete (and evaluated, where the experiment has [eval]) only: each run
// left out is named on stderr, tables show their n, and an analysis whose
// inputs are missing is skipped with its reason. Returns 0, or -1 with ls_error().
int exp_analyse_all(const exp_set *s, const exp_options *o);

#endif
