// lorascope run: an experiment end to end — train every run it needs (skip
// those complete, resume those killed), evaluate them, then run its analyses
// and write its tables and figures under results/<experiment>/. The work is
// src/exp's (plan.h, runner.h, aggregate.h); this file is its command line.
//
// `--list` prints one self-contained `lorascope train ...` command per run
// still to do, so a sweep can be spread over machines (GNU parallel, a Slurm
// array); a later `lorascope run` on the same results directory finds them
// complete and only collects. `--slurm FILE` writes those commands as an
// sbatch job-array script instead (runner.h); `--gather` makes the tables
// and figures from whatever runs are complete, training nothing.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/lock.h"
#include "base/options.h"
#include "base/util.h"
#include "cli/commands.h"
#include "engine/backend_registry.h"
#include "exp/plan.h"
#include "exp/runner.h"

typedef struct {
    const char *files[EXP_MAX];
    int n_files;
    char assets[PATH_MAX];
    char results[PATH_MAX];
    int list;
    char slurm[PATH_MAX];
    int threads;
    int jobs;
    char backend[8];
    int no_plot;
    int gather;
} run_opts;

#define S run_opts
static const opt_spec RUN_OPTIONS[] = {
    OPT_BOOL_(S, "run", "list", "list", list, "print one `lorascope train` command per run still to do, and exit"),
    OPT_STR_(S, "run", "slurm", "slurm", slurm, 0,
             "write an sbatch job-array script, one task per run still to do, to this file, and exit"),
    OPT_STR_(S, "run", "assets", "assets", assets, 0,
             "assets directory for $ASSETS/ paths (default: $LORASCOPE_ASSETS, else ./../shared/assets, else "
             "../shared/assets beside the source tree)"),
    OPT_STR_(S, "run", "results", "results", results, 0, "results directory"),
    OPT_INT_(S, "run", "threads", "threads", threads, 1, 1024, 0, "threads per training run (default: each run's own)"),
    OPT_INT_(S, "run", "jobs", "jobs", jobs, 1, 1024, 1,
             "trainings (then evaluations) at once, each the command --list prints in a child process, its "
             "output in RESULTS/logs/; --threads then defaults to the cores / jobs"),
    OPT_CHOICE_(S, "run", "backend", "backend", backend, "cpu|cuda|auto",
                "where every run trains and is evaluated (default: each run's own, cpu unless its file says); "
                "like --threads, not part of a run's identity: its manifest records it"),
    OPT_BOOL_(S, "run", "no_plot", "no-plot", no_plot, "tables only"),
    OPT_BOOL_(S, "run", "gather", "gather", gather,
              "train and evaluate nothing: tables and figures from the runs complete (and evaluated) now, "
              "naming those left out"),
};
#undef S
static const opt_table RUN_TABLE = {RUN_OPTIONS, (int)(sizeof RUN_OPTIONS / sizeof *RUN_OPTIONS), "run",
                                    "lorascope run"};

static void usage(FILE *fp) {
    run_opts d = {.results = "results", .jobs = 1};
    fprintf(fp,
            "usage: lorascope run EXPERIMENT.ini... [options]\n"
            "\n"
            "Trains every run the experiments need (complete runs are skipped, killed\n"
            "ones resumed), evaluates them, then runs their analyses into RESULTS/<experiment>/.\n"
            "\n"
            "options (flag, key, description [default]):\n");
    opt_print_help(&RUN_TABLE, &d, fp);
}

static int add_file(void *ctx, const char *arg) {
    run_opts *o = ctx;
    if (o->n_files == EXP_MAX) return ls_fail("at most %d experiment files", EXP_MAX);
    o->files[o->n_files++] = arg;
    return 0;
}

static int parse(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->results, sizeof o->results, "results");
    o->jobs = 1;
    if (opt_parse_argv(&RUN_TABLE, o, argc, argv, NULL, NULL, add_file, o)) return -1;
    if (o->n_files == 0) return ls_fail("expected at least one experiment file (experiments/*.ini)");
    const char *assets = o->assets[0] ? o->assets : exp_default_assets();
#ifdef LS_DEFAULT_ASSETS
    // Then the assets beside the source tree this binary was built from.
    if (!assets && ls_is_dir(LS_DEFAULT_ASSETS)) assets = LS_DEFAULT_ASSETS;
#endif
    // Absolute, so that run directories, manifests and --list commands work from anywhere.
    char resolved[PATH_MAX];
    if (assets && realpath(assets, resolved)) assets = resolved;
    snprintf(o->assets, sizeof o->assets, "%s", assets ? assets : "");
    return 0;
}

static const char *self_exe(void) {
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return "lorascope";
    path[n] = 0;
    return path;
}

// ----------------------------------------------------------------------------

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    run_opts o;
    exp_set s = {0};
    if (parse(argc, argv, &o) ||
        exp_set_load(&s, o.files, o.n_files, o.assets[0] ? o.assets : NULL, o.results)) {
        fprintf(stderr, "lorascope run: %s\n", ls_error());
        exp_set_free(&s);
        return 2;
    }
    exp_options eo = {.results = o.results, .threads = o.threads, .backend = o.backend, .no_plot = o.no_plot,
                      .gather = o.gather, .argc = argc, .argv = argv, .jobs = o.jobs, .exe = self_exe()};
    if (o.list) {
        exp_list_commands(&s, &eo, eo.exe, stdout);
        exp_set_free(&s);
        return 0;
    }
    if (o.slurm[0]) {
        int rc = exp_write_slurm(&s, &eo, eo.exe, o.slurm);
        if (rc) fprintf(stderr, "lorascope run: %s\n", ls_error());
        exp_set_free(&s);
        return rc ? 1 : 0;
    }
    // --backend cuda without a GPU here: one line before anything is trained
    // (--list and --slurm print commands for other machines and check nothing).
    if (o.backend[0] && !o.gather && !ls_backend_by_name(o.backend)) {
        fprintf(stderr, "lorascope run: %s\n", ls_error());
        exp_set_free(&s);
        return 1;
    }
    // One `lorascope run` per results directory: two would train the same run
    // directories at once. The kernel drops the lock if this process dies.
    ls_lock lock;
    int rc = ls_lock_acquire(o.results, "lorascope run", &lock, NULL);
    if (rc == 1) fprintf(stderr, "lorascope run: %s; wait for it or pass another --results\n", ls_error());
    else if (rc) fprintf(stderr, "lorascope run: %s\n", ls_error());
    if (rc) {
        exp_set_free(&s);
        return 1;
    }
    if (!o.gather) rc = exp_train_all(&s, &eo);
    if (!rc && !o.gather) rc = exp_evaluate_all(&s, &eo);
    if (!rc) rc = exp_analyse_all(&s, &eo);
    if (rc) fprintf(stderr, "lorascope run: %s\n", ls_error());
    ls_lock_release(&lock);
    exp_set_free(&s);
    return rc ? 1 : 0;
}
