// lorascope run: an experiment end to end — train every run it needs (skip
// those complete, resume those killed), then run its analyses and write its
// tables and figures under results/<experiment>/.
//
// `--list` prints one self-contained `lorascope train ...` command per run
// still to do, so a sweep can be spread over machines (GNU parallel, a Slurm
// array); a later `lorascope run` on the same results directory finds them
// complete and only collects.
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/report.h"
#include "cli/runs.h"
#include "exp/experiment.h"
#include "base/clock.h"
#include "base/util.h"
#include "train/train_config.h"

#define MAX_EXPERIMENTS 32

typedef struct {
    const char *files[MAX_EXPERIMENTS];
    int n_files;
    const char *assets;
    const char *results;
    int list;
    int threads;
    int no_plot;
} run_opts;

static void usage(FILE *fp) {
    fprintf(fp,
        "usage: lorascope run EXPERIMENT.ini... [options]\n"
        "\n"
        "Trains every run the experiments need (complete runs are skipped, killed\n"
        "ones resumed), then runs their analyses into RESULTS/<experiment>/.\n"
        "\n"
        "options:\n"
        "  --list           print one `lorascope train` command per run still to do, and exit\n"
        "  --assets DIR     assets directory for $ASSETS/ paths (default: $LORASCOPE_ASSETS,\n"
        "                   else ./../shared/assets, else ../shared/assets beside the source tree)\n"
        "  --results DIR    results directory (default: results)\n"
        "  --threads N      threads per training run (default: all cores)\n"
        "  --no-plot        tables only\n");
}

static int parse(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->results = "results";
    enum { O_LIST = 1, O_ASSETS, O_RESULTS, O_THREADS, O_NOPLOT };
    static const struct option longopts[] = {{"list", no_argument, 0, O_LIST},
                                             {"assets", required_argument, 0, O_ASSETS},
                                             {"results", required_argument, 0, O_RESULTS},
                                             {"threads", required_argument, 0, O_THREADS},
                                             {"no-plot", no_argument, 0, O_NOPLOT},
                                             {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_LIST: o->list = 1; break;
        case O_ASSETS: o->assets = optarg; break;
        case O_RESULTS: o->results = optarg; break;
        case O_THREADS: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1024) return ls_fail("--threads: expected 1..1024, found '%s'", optarg);
            o->threads = (int)v;
            break;
        }
        case O_NOPLOT: o->no_plot = 1; break;
        case ':': return ls_fail("%s: expected a value", argv[optind - 1]);
        default: return ls_fail("unknown option '%s' (see lorascope run --help)", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (o->n_files == MAX_EXPERIMENTS) return ls_fail("at most %d experiment files", MAX_EXPERIMENTS);
        o->files[o->n_files++] = argv[i];
    }
    if (o->n_files == 0) return ls_fail("expected at least one experiment file (experiments/*.ini)");
    if (!o->assets) o->assets = exp_default_assets();
#ifdef LS_DEFAULT_ASSETS
    // Then the assets beside the source tree this binary was built from.
    if (!o->assets && ls_is_dir(LS_DEFAULT_ASSETS)) o->assets = LS_DEFAULT_ASSETS;
#endif
    // Absolute, so that run directories, manifests and --list commands work from anywhere.
    static char assets_abs[PATH_MAX];
    if (o->assets && realpath(o->assets, assets_abs)) o->assets = assets_abs;
    return 0;
}

// ----------------------------------------------------------------------------
// the plan: every experiment's runs, deduplicated by directory

typedef struct {
    experiment exps[MAX_EXPERIMENTS];
    exp_run *runs[MAX_EXPERIMENTS];
    int n_runs[MAX_EXPERIMENTS];
    int n_exps;
    // unique runs (pointers into runs[])
    exp_run **unique;
    int n_unique;
} plan;

static void plan_free(plan *p) {
    for (int i = 0; i < p->n_exps; i++) {
        exp_runs_free(p->runs[i], p->n_runs[i]);
        exp_free(&p->exps[i]);
    }
    free(p->unique);
    memset(p, 0, sizeof *p);
}

// Every run's flags must make a valid `lorascope train` configuration: checked
// here, before anything trains (unknown flag, bad value, missing field).
static int check_run_config(const experiment *e, const exp_run *r) {
    ls_train_config c;
    tc_defaults(&c);
    for (int i = 0; i + 1 < r->n_args; i += 2) {
        const char *flag = r->args[i] + 2, *value = r->args[i + 1];
        if (tc_set_flag(&c, flag, tc_flag_is_bool(flag) ? (strcmp(value, "false") && strcmp(value, "0") ? NULL : "0")
                                                         : value))
            return ls_fail_prefix("%s: run %s", e->path, r->label);
    }
    snprintf(c.out, sizeof c.out, "%s", r->dir);
    if (tc_validate(&c)) return ls_fail_prefix("%s: run %s", e->path, r->label);
    return 0;
}

static int build_plan(const run_opts *o, plan *p) {
    memset(p, 0, sizeof *p);
    int total = 0;
    for (int i = 0; i < o->n_files; i++) {
        if (exp_load(&p->exps[i], o->files[i], o->assets)) return -1;
        p->n_exps++;
        int n = exp_plan(&p->exps[i], o->results, &p->runs[i]);
        if (n < 0) return -1;
        p->n_runs[i] = n;
        total += n;
        for (int j = 0; j < i; j++)
            if (!strcmp(p->exps[j].name, p->exps[i].name))
                return ls_fail("%s: experiment name '%s' is also used by %s", o->files[i], p->exps[i].name,
                               o->files[j]);
    }
    p->unique = ls_calloc((size_t)total + 1, sizeof *p->unique);
    for (int i = 0; i < p->n_exps; i++)
        for (int r = 0; r < p->n_runs[i]; r++) {
            exp_run *run = &p->runs[i][r];
            if (check_run_config(&p->exps[i], run)) return -1;
            int dup = 0;
            for (int u = 0; u < p->n_unique && !dup; u++) dup = !strcmp(p->unique[u]->dir, run->dir);
            if (!dup) p->unique[p->n_unique++] = run;
        }
    return 0;
}

// ----------------------------------------------------------------------------
// training

static const char *self_exe(void) {
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return "lorascope";
    path[n] = 0;
    return path;
}

// Shell-quotes s when it needs it (for --list).
static void print_quoted(FILE *fp, const char *s) {
    int plain = *s != 0;
    for (const char *c = s; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr("-_./,=:+@%", *c))) plain = 0;
    if (plain) {
        fputs(s, fp);
        return;
    }
    fputc('\'', fp);
    for (const char *c = s; *c; c++) {
        if (*c == '\'') fputs("'\\''", fp);
        else fputc(*c, fp);
    }
    fputc('\'', fp);
}

static char *absolute(const char *path) {
    char buf[PATH_MAX];
    if (path[0] == '/') return ls_strdup(path);
    if (!getcwd(buf, sizeof buf)) return ls_strdup(path);
    return ls_path_join(buf, path);
}

// argv for `lorascope train <flags> --out DIR [--threads N]`; NULL-terminated, malloc'd.
static char **train_argv(const exp_run *r, const run_opts *o, int absolute_paths) {
    char **argv = ls_calloc((size_t)r->n_args + 8, sizeof(char *));
    int k = 0;
    argv[k++] = ls_strdup(absolute_paths ? self_exe() : self_exe());
    argv[k++] = ls_strdup("train");
    for (int i = 0; i < r->n_args; i++) {
        const char *a = r->args[i];
        int is_value = i % 2 == 1;
        if (is_value && tc_flag_is_bool(r->args[i - 1] + 2)) {
            // booleans: "--full = true" in the file becomes a bare --full
            if (!strcmp(a, "false") || !strcmp(a, "0")) free(argv[--k]);
            continue;
        }
        argv[k++] = is_value && absolute_paths && ls_exists(a) && strchr(a, '/') ? absolute(a) : ls_strdup(a);
    }
    argv[k++] = ls_strdup("--out");
    argv[k++] = absolute_paths ? absolute(r->dir) : ls_strdup(r->dir);
    // A run killed after its first checkpoint continues from it.
    char *ckpt = ls_path_join(r->dir, "checkpoint/state.safetensors");
    if (ls_exists(ckpt)) argv[k++] = ls_strdup("--resume");
    free(ckpt);
    if (o->threads) {
        char t[32];
        snprintf(t, sizeof t, "%d", o->threads);
        argv[k++] = ls_strdup("--threads");
        argv[k++] = ls_strdup(t);
    }
    argv[k] = NULL;
    return argv;
}

static void free_argv(char **argv) {
    for (char **a = argv; *a; a++) free(*a);
    free(argv);
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
    if (WIFSIGNALED(status)) return ls_fail("training was killed by signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status)) return ls_fail("training exited with status %d", WEXITSTATUS(status));
    return 0;
}

static int train_all(plan *p, const run_opts *o) {
    int todo = 0;
    for (int u = 0; u < p->n_unique; u++) todo += !run_is_complete(p->unique[u]->dir);
    fprintf(stderr, "lorascope run: %d runs, %d complete, %d to train\n", p->n_unique, p->n_unique - todo, todo);
    double t0 = ls_now();
    int done = 0;
    for (int u = 0; u < p->n_unique; u++) {
        exp_run *r = p->unique[u];
        if (run_is_complete(r->dir)) continue;
        char eta[32] = "?", el[32];
        double elapsed = ls_now() - t0;
        if (done > 0) ls_fmt_duration(eta, sizeof eta, elapsed / done * (todo - done));
        ls_fmt_duration(el, sizeof el, elapsed);
        char *ckpt = ls_path_join(r->dir, "checkpoint/state.safetensors");
        int resuming = ls_exists(ckpt);
        free(ckpt);
        if (!resuming) {
            // Only the records of an earlier training are left (results/ keeps
            // them without weights): train again from scratch in their place.
            static const char *const records[] = {"config.ini", "metrics.jsonl", "manifest.json", "eval.json"};
            for (size_t i = 0; i < sizeof records / sizeof *records; i++) {
                char *f = ls_path_join(r->dir, records[i]);
                unlink(f);
                free(f);
            }
        }
        fprintf(stderr, "\n[run %d/%d] %s  (elapsed %s, ETA %s)%s\n", done + 1, todo, r->label, el, eta,
                resuming ? "  resuming" : "");
        char **argv = train_argv(r, o, 0);
        int rc = run_child(argv);
        free_argv(argv);
        if (rc) return ls_fail_prefix("run %s (%s)", r->label, r->dir);
        if (run_mark_complete(r->dir)) return -1;
        // A fresh training makes an older evaluation stale.
        char *eval = ls_path_join(r->dir, "eval.json");
        unlink(eval);
        free(eval);
        done++;
    }
    if (todo) {
        char el[32];
        ls_fmt_duration(el, sizeof el, ls_now() - t0);
        fprintf(stderr, "lorascope run: trained %d runs in %s\n", done, el);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// evaluation of finished runs ([eval]): `lorascope eval` on the validation data

static const char *arg_of(const exp_run *r, const char *flag) {
    for (int i = 0; i + 1 < r->n_args; i += 2)
        if (!strcmp(r->args[i] + 2, flag)) return r->args[i + 1];
    return NULL;
}

static int eval_all(plan *p, const run_opts *o) {
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
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "lorascope run: %s\n", ls_error());
        return 2;
    }
    plan p;
    if (build_plan(&o, &p)) {
        fprintf(stderr, "lorascope run: %s\n", ls_error());
        plan_free(&p);
        return 2;
    }
    if (o.list) {
        for (int u = 0; u < p.n_unique; u++) {
            if (run_is_complete(p.unique[u]->dir)) continue;
            char **a = train_argv(p.unique[u], &o, 1);
            for (char **x = a; *x; x++) {
                if (x != a) fputc(' ', stdout);
                print_quoted(stdout, *x);
            }
            fputc('\n', stdout);
            free_argv(a);
        }
        plan_free(&p);
        return 0;
    }
    int rc = train_all(&p, &o);
    if (!rc) rc = eval_all(&p, &o);
    for (int i = 0; i < p.n_exps && !rc; i++) rc = run_analyses(&p.exps[i], p.runs[i], p.n_runs[i], o.results, o.no_plot);
    if (rc) fprintf(stderr, "lorascope run: %s\n", ls_error());
    plan_free(&p);
    return rc ? 1 : 0;
}
