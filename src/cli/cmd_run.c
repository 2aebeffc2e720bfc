// lorascope run: an experiment end to end — train every run it needs (skip
// those complete, resume those killed), evaluate them, then run its analyses
// and write its tables and figures under results/<experiment>/. The work is
// src/exp's (plan.h, runner.h, aggregate.h); this file is its command line.
//
// `--list` prints one self-contained `lorascope train ...` command per run
// still to do, so a sweep can be spread over machines (GNU parallel, a Slurm
// array); a later `lorascope run` on the same results directory finds them
// complete and only collects.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/options.h"
#include "base/util.h"
#include "cli/commands.h"
#include "cli/runs.h"
#include "exp/plan.h"
#include "exp/runner.h"

typedef struct {
    const char *files[EXP_MAX];
    int n_files;
    char assets[PATH_MAX];
    char results[PATH_MAX];
    int list;
    int threads;
    int no_plot;
} run_opts;

#define S run_opts
static const opt_spec RUN_OPTIONS[] = {
    OPT_BOOL_(S, "run", "list", "list", list, "print one `lorascope train` command per run still to do, and exit"),
    OPT_STR_(S, "run", "assets", "assets", assets, 0,
             "assets directory for $ASSETS/ paths (default: $LORASCOPE_ASSETS, else ./../shared/assets, else "
             "../shared/assets beside the source tree)"),
    OPT_STR_(S, "run", "results", "results", results, 0, "results directory"),
    OPT_INT_(S, "run", "threads", "threads", threads, 1, 1024, 0, "threads per training run (default: each run's own)"),
    OPT_BOOL_(S, "run", "no_plot", "no-plot", no_plot, "tables only"),
};
#undef S
static const opt_table RUN_TABLE = {RUN_OPTIONS, (int)(sizeof RUN_OPTIONS / sizeof *RUN_OPTIONS), "run",
                                    "lorascope run"};

static void usage(FILE *fp) {
    run_opts d = {.results = "results"};
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

static int run_child(char **argv) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return ls_fail("fork failed: %s", strerror(errno));
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "lorascope run: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return ls_fail("waitpid failed: %s", strerror(errno));
    if (WIFSIGNALED(status)) return ls_fail("evaluation was killed by signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status)) return ls_fail("evaluation exited with status %d", WEXITSTATUS(status));
    return 0;
}

// ----------------------------------------------------------------------------
// evaluation of finished runs ([eval]): `lorascope eval` on the validation data

static const char *arg_of(const exp_run *r, const char *flag) {
    for (int i = 0; i + 1 < r->n_args; i += 2)
        if (!strcmp(r->args[i] + 2, flag)) return r->args[i + 1];
    return NULL;
}

static int eval_all(exp_set *p, const run_opts *o) {
    for (int i = 0; i < p->n_exps; i++) {
        const experiment *e = &p->exps[i];
        if (!e->n_eval) continue;
        for (int k = 0; k < p->n_runs[i]; k++) {
            const exp_run *r = &p->runs[i][k];
            char *out = ls_path_join(r->dir, "eval.json");
            int have = ls_exists(out);
            const char *full = arg_of(r, "full");
            int is_full = full && strcmp(full, "false") && strcmp(full, "0");
            if (have || is_full) {
                free(out);
                continue;
            }
            const char *data = arg_of(r, "val-data") ? arg_of(r, "val-data") : arg_of(r, "data");
            char *argv[40];
            int n = 0;
            argv[n++] = (char *)self_exe();
            argv[n++] = "eval";
            argv[n++] = "--model";
            argv[n++] = (char *)arg_of(r, "model");
            if (arg_of(r, "tokenizer")) {
                argv[n++] = "--tokenizer";
                argv[n++] = (char *)arg_of(r, "tokenizer");
            }
            argv[n++] = "--adapter";
            argv[n++] = r->dir;
            argv[n++] = "--data";
            argv[n++] = (char *)data;
            argv[n++] = "--task";
            argv[n++] = (char *)arg_of(r, "task");
            if (arg_of(r, "seq-len")) {
                argv[n++] = "--seq-len";
                argv[n++] = (char *)arg_of(r, "seq-len");
            }
            if (arg_of(r, "eval-max")) {
                argv[n++] = "--max-items";
                argv[n++] = (char *)arg_of(r, "eval-max");
            }
            for (int j = 0; j < e->n_eval && n < 34; j++) {
                static char flags[8][32];
                snprintf(flags[j % 8], sizeof flags[0], "--%s", e->eval[j].key);
                argv[n++] = flags[j % 8];
                argv[n++] = e->eval[j].value;
            }
            char threads[16];
            if (o->threads) {
                snprintf(threads, sizeof threads, "%d", o->threads);
                argv[n++] = "--threads";
                argv[n++] = threads;
            }
            argv[n++] = "--out";
            argv[n++] = out;
            argv[n] = NULL;
            fprintf(stderr, "[eval] %s\n", r->label);
            int rc = run_child(argv);
            free(out);
            if (rc) return ls_fail_prefix("eval of run %s", r->label);
        }
    }
    return 0;
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
    exp_options eo = {.results = o.results, .threads = o.threads, .no_plot = o.no_plot, .argc = argc, .argv = argv};
    if (o.list) {
        exp_list_commands(&s, &eo, self_exe(), stdout);
        exp_set_free(&s);
        return 0;
    }
    int rc = exp_train_all(&s, &eo);
    if (!rc) rc = eval_all(&s, &o);
    for (int i = 0; i < s.n_exps && !rc; i++) rc = run_analyses(&s.exps[i], s.runs[i], s.n_runs[i], o.results, o.no_plot);
    if (rc) fprintf(stderr, "lorascope run: %s\n", ls_error());
    exp_set_free(&s);
    return rc ? 1 : 0;
}
