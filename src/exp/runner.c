// runner: training and evaluation of planned runs, in this process or (--jobs)
// as child processes.
#include "exp/runner.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/lock.h"
#include "base/util.h"
#include "exp/aggregate.h"
#include "exp/exp_analyze.h"
#include "train/evaluate.h"
#include "train/train.h"

// ----------------------------------------------------------------------------
// run directories

// The run's weights as its method writes them (train_weights_files).
static int has_weights(const char *dir) {
    int n;
    const char *const *written = train_weights_files(&n);
    int weights = 0;
    for (int i = 0; i < n && !weights; i++) {
        char *path = ls_path_join(dir, written[i]);
        weights = ls_exists(path);
        free(path);
    }
    return weights;
}

// The run's record says it finished: manifest.json's status is "completed".
static int record_complete(const char *dir) {
    char *path = ls_path_join(dir, RUN_MANIFEST_FILE);
    char *text = ls_exists(path) ? ls_read_file(path, NULL) : NULL;
    free(path);
    if (!text) return 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    int done = cJSON_IsString(status) && !strcmp(status->valuestring, "completed");
    cJSON_Delete(root);
    return done;
}

int exp_run_is_complete(const char *dir) { return has_weights(dir) && record_complete(dir); }

static int has_checkpoint(const char *dir) {
    char *ckpt = ls_path_join(dir, RUN_CHECKPOINT_DIR "/" RUN_CHECKPOINT_FILE);
    int have = ls_exists(ckpt);
    free(ckpt);
    return have;
}

// A training has started in dir: its config.ini is there (train_run writes it
// first). `train --resume` continues it from its checkpoint, or from step 0
// where there is none (killed early, or a record kept without its weights).
static int has_started(const char *dir) {
    char *cfg = ls_path_join(dir, RUN_CONFIG_FILE);
    int started = ls_exists(cfg);
    free(cfg);
    return started;
}

// ----------------------------------------------------------------------------
// --list

// Shell-quotes s when it needs it.
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
    if (path[0] == '/' || !getcwd(buf, sizeof buf)) return ls_strdup(path);
    return ls_path_join(buf, path);
}

static void print_arg(FILE *out, const char *arg, int make_absolute) {
    char *a = make_absolute && ls_exists(arg) && strchr(arg, '/') ? absolute(arg) : ls_strdup(arg);
    fputc(' ', out);
    print_quoted(out, a);
    free(a);
}

// --backend of `lorascope run`: where every run trains and is evaluated, as
// --threads says how many threads; neither is part of a run's identity (its
// directory), both are in its manifest.
static const char *backend_override(const exp_options *o) { return o->backend && o->backend[0] ? o->backend : NULL; }

// The `lorascope train` command of run r, with --resume when `resume`.
static void print_train_command(FILE *out, const exp_run *r, const exp_options *o, const char *exe, int resume) {
    print_quoted(out, exe);
    fputs(" train", out);
    for (int i = 0; i + 1 < r->n_args; i += 2) {
        const char *flag = r->args[i], *value = r->args[i + 1];
        if (backend_override(o) && !strcmp(flag, "--backend")) continue;
        const opt_spec *spec = opt_find_flag(tc_table(), flag + 2);
        if (spec && spec->type == OPT_BOOL) {
            // booleans: "full = true" in the file becomes a bare --full (read from the typed config)
            if (*(const int *)((const char *)&r->cfg + spec->offset)) print_arg(out, flag, 0);
            continue;
        }
        print_arg(out, flag, 0);
        print_arg(out, value, 1);
    }
    char *dir = absolute(r->dir);
    fputs(" --out ", out);
    print_quoted(out, dir);
    free(dir);
    if (resume) fputs(" --resume", out);
    if (o->threads) fprintf(out, " --threads %d", o->threads);
    if (backend_override(o)) fprintf(out, " --backend %s", o->backend);
}

static int eval_request(const experiment *e, const exp_run *r, const exp_options *o, const char *out,
                        evaluate_request *req);

// The `lorascope eval` command of a request: every option whose value differs
// from eval's defaults (threads too: --threads 0 is OpenMP's default).
static void print_eval_command(FILE *out, const evaluate_request *req, const char *exe) {
    evaluate_request d;
    evaluate_defaults(&d);
    const opt_table *t = evaluate_table();
    print_quoted(out, exe);
    fputs(" eval", out);
    for (int i = 0; i < t->n; i++) {
        char flag[80], v[1100], dv[1100];
        opt_format(&t->specs[i], req, v, sizeof v);
        opt_format(&t->specs[i], &d, dv, sizeof dv);
        if (!strcmp(v, dv)) continue;
        snprintf(flag, sizeof flag, "--%s", t->specs[i].flag);
        print_arg(out, flag, 0);
        print_arg(out, v, t->specs[i].type == OPT_STR); // a path made absolute when it names a file here
    }
}

// The evaluations still to do that can run now: (experiment, run) pairs whose
// experiment has [eval], whose run is complete and has no eval.json yet, each
// run once (eval.json is the run's). Calls fn for each; returns the count.
typedef void (*eval_todo_fn)(void *ctx, const experiment *e, const exp_run *r, const char *eval_json);

static int for_each_eval_todo(const exp_set *s, eval_todo_fn fn, void *ctx) {
    int n = 0;
    for (int i = 0; i < s->n_exps; i++) {
        if (!s->exps[i].n_eval) continue;
        for (int k = 0; k < s->n_runs[i]; k++) {
            const exp_run *r = &s->runs[i][k];
            int seen = 0; // the same run in an earlier experiment with [eval]
            for (int j = 0; j < i && !seen; j++)
                for (int q = 0; q < s->n_runs[j] && !seen; q++)
                    seen = s->exps[j].n_eval && s->runs[j][q].hash == r->hash && !strcmp(s->runs[j][q].dir, r->dir);
            char *json = ls_path_join(r->dir, RUN_EVAL_FILE);
            if (!seen && exp_run_is_complete(r->dir) && !ls_exists(json)) {
                if (fn) fn(ctx, &s->exps[i], r, json);
                n++;
            }
            free(json);
        }
    }
    return n;
}

typedef struct {
    FILE *out;
    const exp_options *o;
    const char *exe;
    int k;          // --slurm: the next task index; -1: --list
} eval_printer;

static void print_eval_todo(void *ctx, const experiment *e, const exp_run *r, const char *eval_json) {
    eval_printer *p = ctx;
    evaluate_request *req = ls_calloc(1, sizeof *req);
    char *json = absolute(eval_json);
    if (eval_request(e, r, p->o, json, req)) {
        // planned runs were checked at load time; say so rather than print a broken command
        fprintf(stderr, "lorascope run: eval of %s: %s\n", r->label, ls_error());
    } else {
        if (p->k >= 0) {
            fprintf(p->out, "%d) evaltask ", p->k++);
            print_quoted(p->out, json);
            fputc(' ', p->out);
        }
        print_eval_command(p->out, req, p->exe);
        fputs(p->k >= 0 ? " ;;\n" : "\n", p->out);
    }
    free(json);
    free(req);
}

void exp_list_commands(const exp_set *s, const exp_options *o, const char *exe, FILE *out) {
    for (int u = 0; u < s->n_unique; u++) {
        const exp_run *r = s->unique[u];
        if (exp_run_is_complete(r->dir)) continue;
        print_train_command(out, r, o, exe, has_started(r->dir));
        fputc('\n', out);
    }
    eval_printer p = {out, o, exe, -1};
    for_each_eval_todo(s, print_eval_todo, &p);
}

// The array script's preamble: its directives, then `task DIR CMD...`, which
// skips a complete run, resumes one that has started (a requeued or
// preempted task) and otherwise trains it from scratch.
static void slurm_preamble(FILE *out, const exp_options *o, int n, const char *logs) {
    fprintf(out,
            "#!/bin/bash\n"
            "# Written by `lorascope run --slurm`: one Slurm array task per training run\n"
            "# still to do, then one per evaluation ([eval]) of a run already complete\n"
            "# (task i runs the i-th command of `lorascope run --list`). Submit with\n"
            "# `sbatch THIS_FILE` (add your partition, time and account options there\n"
            "# or on the command line). Once the array has finished, write the script\n"
            "# again: it then holds the evaluations of the runs just trained (or\n"
            "# nothing); then `lorascope run` with the same experiments and --results\n"
            "# writes the tables and figures. Each task locks only its own run\n"
            "# directory; a task run again resumes its run or, if done, does nothing.\n"
            "#SBATCH --job-name=lorascope\n"
            "#SBATCH --array=0-%d\n",
            n - 1);
    if (o->threads) fprintf(out, "#SBATCH --cpus-per-task=%d\n", o->threads);
    fputs("#SBATCH --output=", out);
    print_quoted(out, logs);
    fputs("/slurm-%A_%a.out\n"
          "set -eu\n"
          "task() {\n"
          "    dir=$1\n"
          "    shift\n"
          "    weights=\n"
          "    for w in",
          out);
    int n_written;
    const char *const *written = train_weights_files(&n_written);
    for (int i = 0; i < n_written; i++) fprintf(out, " %s", written[i]);
    fputs("; do\n"
          "        [ -f \"$dir/$w\" ] && weights=1\n"
          "    done\n"
          "    if [ -n \"$weights\" ] &&\n"
          "        grep -Eq '\"status\":[[:space:]]*\"completed\"' \"$dir/" RUN_MANIFEST_FILE "\" 2>/dev/null; then\n"
          "        echo \"complete: $dir\"\n"
          "        return 0\n"
          "    fi\n"
          "    if [ -f \"$dir/" RUN_CONFIG_FILE "\" ]; then exec \"$@\" --resume; else exec \"$@\"; fi\n"
          "}\n"
          "# `evaltask FILE CMD...`: an evaluation of a complete run, unless FILE is there\n"
          "evaltask() {\n"
          "    if [ -f \"$1\" ]; then echo \"evaluated: $1\"; return 0; fi\n"
          "    shift\n"
          "    exec \"$@\"\n"
          "}\n"
          "case \"${SLURM_ARRAY_TASK_ID:?set by Slurm: the task index}\" in\n",
          out);
}

int exp_write_slurm(const exp_set *s, const exp_options *o, const char *exe, const char *path) {
    int n = 0;
    for (int u = 0; u < s->n_unique; u++) n += !exp_run_is_complete(s->unique[u]->dir);
    n += for_each_eval_todo(s, NULL, NULL);
    if (n == 0) {
        fprintf(stderr, "lorascope run: every run is complete and evaluated: no array script written; run "
                        "again without --slurm to collect\n");
        return 0;
    }
    // Slurm opens the tasks' log files in the results directory: it must exist
    if (ls_mkdir_p(o->results)) return ls_fail_prefix("--slurm");
    char *text = NULL, *logs = absolute(o->results);
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out) return ls_fail("--slurm: out of memory");
    slurm_preamble(out, o, n, logs);
    free(logs);
    int k = 0;
    for (int u = 0; u < s->n_unique; u++) {
        const exp_run *r = s->unique[u];
        if (exp_run_is_complete(r->dir)) continue;
        char *dir = absolute(r->dir);
        fprintf(out, "%d) task ", k++);
        print_quoted(out, dir);
        free(dir);
        fputc(' ', out);
        print_train_command(out, r, o, exe, 0);
        fputs(" ;;\n", out);
    }
    eval_printer p = {out, o, exe, k};
    for_each_eval_todo(s, print_eval_todo, &p);
    fputs("*) echo \"no task $SLURM_ARRAY_TASK_ID: this script has tasks 0 to ", out);
    fprintf(out, "%d\" >&2; exit 2 ;;\nesac\n", n - 1);
    fclose(out);
    int rc = ls_write_file_atomic(path, text, size);
    free(text);
    if (rc) return ls_fail_prefix("--slurm");
    fprintf(stderr, "lorascope run: %s: a Slurm array of %d task%s (sbatch %s)\n", path, n, n > 1 ? "s" : "", path);
    return 0;
}

// ----------------------------------------------------------------------------
// --jobs: trainings and evaluations as child processes, several at a time

extern char **environ;

typedef struct {
    const char *label;
    char *cmd;  // the command --list prints for it, run by /bin/sh
    char *log;  // its stdout and stderr (appended: a resumed run's log goes on)
    pid_t pid;
    double t0;
} job;

static void jobs_free(job *jobs, int n) {
    for (int i = 0; i < n; i++) free(jobs[i].cmd), free(jobs[i].log);
    free(jobs);
}

// <results>/logs/<run directory name><suffix>
static char *job_log(const exp_options *o, const exp_run *r, const char *suffix) {
    const char *slash = strrchr(r->dir, '/');
    char *dir = ls_path_join(o->results, "logs"), name[PATH_MAX];
    snprintf(name, sizeof name, "%s%s", slash ? slash + 1 : r->dir, suffix);
    char *log = ls_path_join(dir, name);
    free(dir);
    return log;
}

// o with --threads filled in: as given, else the cores shared among the jobs.
static exp_options job_options(const exp_options *o) {
    exp_options jo = *o;
    if (!jo.threads) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        jo.threads = cores > o->jobs ? (int)(cores / o->jobs) : 1;
    }
    return jo;
}

static int spawn_job(job *j) {
    int fd = open(j->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ls_fail("%s: %s", j->log, strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    char *argv[] = {"/bin/sh", "-c", j->cmd, NULL};
    int rc = posix_spawn(&j->pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (rc) return ls_fail("%s: cannot start /bin/sh: %s", j->label, strerror(rc));
    j->t0 = ls_now();
    return 0;
}

// The last non-empty line of a log, for a failure's one-line message.
static void last_line(const char *path, char *out, size_t size) {
    size_t n = 0;
    char *text = ls_read_file(path, &n);
    out[0] = 0;
    if (!text) return;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) text[--n] = 0;
    char *line = strrchr(text, '\n');
    snprintf(out, size, "%s", line ? line + 1 : text);
    free(text);
}

// Runs jobs[0..n) at most `width` at a time, in order, a line as each starts
// and ends (k/n, elapsed, ETA). After a failure none starts; the running ones
// finish. Returns 0, or -1 with ls_error() naming the first failed job, its
// exit and its log's last line.
static int run_jobs(job *jobs, int n, int width, const char *what) {
    int next = 0, running = 0, done = 0, failed = -1, failed_status = 0;
    double t0 = ls_now();
    while (running > 0 || (next < n && failed < 0)) {
        while (running < width && next < n && failed < 0) {
            job *j = &jobs[next];
            if (spawn_job(j)) {
                failed = next;
                failed_status = -1;
                break;
            }
            fprintf(stderr, "[%s %d/%d] %s: started, log %s\n", what, next + 1, n, j->label, j->log);
            next++, running++;
        }
        if (!running) break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            return ls_fail("waiting for the %s jobs: %s", what, strerror(errno));
        }
        int k = 0;
        while (k < next && jobs[k].pid != pid) k++;
        if (k == next) continue; // not one of ours
        running--;
        jobs[k].pid = 0;
        char took[32], el[32], eta[32] = "?";
        ls_fmt_duration(took, sizeof took, ls_now() - jobs[k].t0);
        double elapsed = ls_now() - t0;
        ls_fmt_duration(el, sizeof el, elapsed);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            done++;
            if (done < n) ls_fmt_duration(eta, sizeof eta, elapsed / done * (n - done));
            else snprintf(eta, sizeof eta, "0s");
            fprintf(stderr, "[%s %d/%d] %s: done in %s (elapsed %s, ETA %s)\n", what, k + 1, n, jobs[k].label,
                    took, el, eta);
        } else {
            fprintf(stderr, "[%s %d/%d] %s: failed after %s, log %s\n", what, k + 1, n, jobs[k].label, took,
                    jobs[k].log);
            if (failed < 0) failed = k, failed_status = status;
        }
    }
    if (failed < 0) return 0;
    if (failed_status == -1) return -1; // spawn_job said why
    char line[512], how[64];
    last_line(jobs[failed].log, line, sizeof line);
    if (WIFEXITED(failed_status)) snprintf(how, sizeof how, "exit %d", WEXITSTATUS(failed_status));
    else snprintf(how, sizeof how, "signal %d", WIFSIGNALED(failed_status) ? WTERMSIG(failed_status) : 0);
    return ls_fail("%s %s failed (%s; its log %s ends: %s)", what, jobs[failed].label, how, jobs[failed].log, line);
}

static int make_logs_dir(const exp_options *o) {
    char *dir = ls_path_join(o->results, "logs");
    int rc = ls_mkdir_p(dir);
    free(dir);
    return rc ? ls_fail_prefix("--jobs") : 0;
}

static int train_parallel(exp_set *s, const exp_options *o, int todo) {
    if (make_logs_dir(o)) return -1;
    exp_options jo = job_options(o);
    job *jobs = ls_calloc((size_t)todo, sizeof *jobs);
    int n = 0;
    for (int u = 0; u < s->n_unique; u++) {
        exp_run *r = s->unique[u];
        if (exp_run_is_complete(r->dir)) continue;
        size_t size = 0;
        FILE *mem = open_memstream(&jobs[n].cmd, &size);
        if (!mem) {
            jobs_free(jobs, n);
            return ls_fail("--jobs: out of memory");
        }
        print_train_command(mem, r, &jo, o->exe, has_started(r->dir));
        fclose(mem);
        jobs[n].label = r->label;
        jobs[n].log = job_log(o, r, ".log");
        ls_remove_in(r->dir, RUN_EVAL_FILE); // a fresh training makes an older evaluation stale
        n++;
    }
    fprintf(stderr, "lorascope run: %d at a time, %d thread%s each; logs in %s/logs\n", o->jobs, jo.threads,
            jo.threads > 1 ? "s" : "", o->results);
    double t0 = ls_now();
    int rc = run_jobs(jobs, n, o->jobs, "run");
    for (int u = 0; u < s->n_unique && !rc; u++)
        if (!exp_run_is_complete(s->unique[u]->dir))
            rc = ls_fail("%s: training finished but its " RUN_MANIFEST_FILE " does not say completed",
                         s->unique[u]->dir);
    if (!rc) {
        char el[32];
        ls_fmt_duration(el, sizeof el, ls_now() - t0);
        fprintf(stderr, "lorascope run: trained %d runs in %s\n", n, el);
    }
    jobs_free(jobs, n);
    return rc;
}

// ----------------------------------------------------------------------------
// training

static int train_one(exp_run *r, const exp_options *o) {
    // As --list prints it: a started run (its record there, kept in results/
    // without weights, or killed) goes on from its checkpoint, or from step 0
    // where it has none; train_run holds the run's lock.
    int resuming = has_started(r->dir);
    ls_train_config cfg = r->cfg;
    if (o->threads) cfg.threads = o->threads;
    if (backend_override(o)) snprintf(cfg.backend, sizeof cfg.backend, "%s", o->backend);
    train_result res;
    fflush(stdout);
    int rc = train_run(&cfg, resuming, o->argc, o->argv, &res);
    fflush(stdout);
    if (rc) return ls_fail_prefix("run %s (%s)", r->label, r->dir);
    if (!exp_run_is_complete(r->dir))
        return ls_fail("%s: training finished but its " RUN_MANIFEST_FILE " does not say completed", r->dir);
    ls_remove_in(r->dir, RUN_EVAL_FILE); // a fresh training makes an older evaluation stale
    return 0;
}

int exp_train_all(exp_set *s, const exp_options *o) {
    int todo = 0;
    for (int u = 0; u < s->n_unique; u++) todo += !exp_run_is_complete(s->unique[u]->dir);
    fprintf(stderr, "lorascope run: %d runs, %d complete, %d to train\n", s->n_unique, s->n_unique - todo, todo);
    if (o->jobs > 1 && todo > 1) return train_parallel(s, o, todo);
    double t0 = ls_now();
    int done = 0;
    for (int u = 0; u < s->n_unique; u++) {
        exp_run *r = s->unique[u];
        if (exp_run_is_complete(r->dir)) continue;
        char eta[32] = "?", el[32];
        double elapsed = ls_now() - t0;
        if (done > 0) ls_fmt_duration(eta, sizeof eta, elapsed / done * (todo - done));
        ls_fmt_duration(el, sizeof el, elapsed);
        fprintf(stderr, "\n[run %d/%d] %s  (elapsed %s, ETA %s)%s\n", done + 1, todo, r->label, el, eta,
                has_checkpoint(r->dir) ? "  resuming" : "");
        if (train_one(r, o)) return -1;
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
// evaluation ([eval]): the run's adapter on its validation data

// The request for run r: its model, tokenizer, task, sequence length and
// validation data (else its training data), then the experiment's [eval] keys.
static int eval_request(const experiment *e, const exp_run *r, const exp_options *o, const char *out,
                        evaluate_request *req) {
    const ls_train_config *c = &r->cfg;
    evaluate_defaults(req);
    snprintf(req->model, sizeof req->model, "%s", c->model);
    snprintf(req->tokenizer, sizeof req->tokenizer, "%s", c->tokenizer);
    snprintf(req->adapter, sizeof req->adapter, "%s", r->dir);
    snprintf(req->data, sizeof req->data, "%s", c->val_data[0] ? c->val_data : c->data);
    snprintf(req->task, sizeof req->task, "%s", c->task);
    snprintf(req->doc_sep, sizeof req->doc_sep, "%s", c->doc_sep);
    snprintf(req->backend, sizeof req->backend, "%s", backend_override(o) ? o->backend : c->backend);
    snprintf(req->out, sizeof req->out, "%s", out);
    req->seq_len = c->seq_len;
    req->max_items = c->eval_max;
    req->threads = o->threads;
    for (int j = 0; j < e->n_eval; j++)
        if (opt_set_flag(evaluate_table(), req, e->eval[j].key, e->eval[j].value))
            return ls_fail_prefix("%s:%d: [eval]", e->path, e->eval[j].line);
    return evaluate_check(req);
}

typedef struct {
    const exp_options *o; // with --threads filled in (job_options)
    job *jobs;
    int n;
    int rc;
} eval_collector;

static void collect_eval_todo(void *ctx, const experiment *e, const exp_run *r, const char *eval_json) {
    eval_collector *c = ctx;
    if (c->rc) return;
    evaluate_request *req = ls_calloc(1, sizeof *req);
    char *json = absolute(eval_json);
    job *j = &c->jobs[c->n];
    size_t size = 0;
    FILE *mem = NULL;
    if (eval_request(e, r, c->o, json, req)) c->rc = ls_fail_prefix("eval of run %s", r->label);
    else if (!(mem = open_memstream(&j->cmd, &size))) c->rc = ls_fail("--jobs: out of memory");
    if (mem) {
        print_eval_command(mem, req, c->o->exe);
        fclose(mem);
        j->label = r->label;
        j->log = job_log(c->o, r, ".eval.log");
        c->n++;
    }
    free(json);
    free(req);
}

static int evaluate_parallel(exp_set *s, const exp_options *o, int todo) {
    if (make_logs_dir(o)) return -1;
    exp_options jo = job_options(o);
    eval_collector c = {&jo, ls_calloc((size_t)todo, sizeof(job)), 0, 0};
    for_each_eval_todo(s, collect_eval_todo, &c);
    int rc = c.rc ? -1 : run_jobs(c.jobs, c.n, o->jobs, "eval");
    jobs_free(c.jobs, c.n);
    return rc;
}

int exp_evaluate_all(exp_set *s, const exp_options *o) {
    int todo = o->jobs > 1 ? for_each_eval_todo(s, NULL, NULL) : 0;
    if (todo > 1) return evaluate_parallel(s, o, todo);
    for (int i = 0; i < s->n_exps; i++) {
        const experiment *e = &s->exps[i];
        if (!e->n_eval) continue;
        for (int k = 0; k < s->n_runs[i]; k++) {
            const exp_run *r = &s->runs[i][k];
            char *out = ls_path_join(r->dir, RUN_EVAL_FILE);
            int skip = ls_exists(out); // evaluated already (every method: eval --adapter loads each one's run)
            evaluate_request *req = skip ? NULL : ls_calloc(1, sizeof *req);
            int rc = 0;
            if (!skip) {
                fprintf(stderr, "[eval] %s\n", r->label);
                evaluate_report rep;
                rc = eval_request(e, r, o, out, req) || evaluate_run(req, stdout, &rep);
                fflush(stdout);
            }
            free(req);
            free(out);
            if (rc) return ls_fail_prefix("eval of run %s", r->label);
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// analyses

// The analyses of e over runs. With `gather` (runs: those whose record is
// complete now), an analysis whose selectors no longer resolve, or whose
// selected runs are not all here with their weights, is skipped with its
// reason, rather than run over fewer pairs or seeds than it names.
static int analyse_experiment(const experiment *e, const exp_run *runs, int n_runs, const exp_options *o,
                              int gather) {
    char *exp_dir = ls_path_join(o->results, e->name);
    int rc = 0;
    for (int i = 0; i < e->n_analyses && !rc; i++) {
        const exp_analysis *an = &e->analyses[i];
        int table = !strcmp(an->kind, "table"), curve = !strcmp(an->kind, "curve");
        if (gather && !table &&
            (curve ? exp_curve_check(e, an, runs, n_runs)
                   : exp_analyze_check(e, an, runs, n_runs, 1)))
            fprintf(stderr, "lorascope run: --gather: %s: analysis %s skipped: %s\n", e->name, an->name, ls_error());
        else if (table) rc = exp_table(e, an, runs, n_runs, exp_dir, o->no_plot);
        else if (curve) rc = exp_curve(e, an, runs, n_runs, exp_dir, o->no_plot);
        else rc = exp_analyze(e, an, runs, n_runs, exp_dir, o->no_plot);
    }
    free(exp_dir);
    return rc;
}

// --gather: the runs of experiment e whose record says they finished (and
// that are evaluated, where e has [eval]), copied into *out; each one left
// out is named, and so is each one whose weights are not here (a clone of
// the repository holds the records of every committed run but not the
// weights .gitignore leaves out, retrained by `lorascope run`: its tables
// count those runs; an analysis that needs their weights is skipped).
// Returns the count; *n_have those of them with their weights.
static int gathered_runs(const experiment *e, const exp_run *runs, int n, exp_run **out, int *n_have) {
    *out = ls_calloc((size_t)(n > 0 ? n : 1), sizeof **out);
    int m = 0;
    *n_have = 0;
    for (int k = 0; k < n; k++) {
        char *json = ls_path_join(runs[k].dir, RUN_EVAL_FILE);
        const char *why = !record_complete(runs[k].dir)          ? "not complete"
                          : e->n_eval && !ls_exists(json)        ? "not evaluated"
                                                                 : NULL;
        free(json);
        if (why) {
            fprintf(stderr, "lorascope run: --gather: %s: %s %s, left out\n", e->name, runs[k].label, why);
            continue;
        }
        (*out)[m++] = runs[k]; // a shallow copy: the analyses only read it
        if (has_weights(runs[k].dir)) (*n_have)++;
        else
            fprintf(stderr,
                    "lorascope run: --gather: %s: %s has its record but not its weights: in its tables; "
                    "the analyses of its weights are skipped (`lorascope run` retrains it)\n",
                    e->name, runs[k].label);
    }
    return m;
}

static int gather_experiment(const experiment *e, const exp_run *runs, int n, const exp_options *o) {
    exp_run *have;
    int n_have;
    int m = gathered_runs(e, runs, n, &have, &n_have);
    fprintf(stderr, "lorascope run: --gather: %s: %d of %d runs", e->name, m, n);
    if (n_have < m) fprintf(stderr, " (%d with their weights)", n_have);
    fputc('\n', stderr);
    int rc = m > 0 ? analyse_experiment(e, have, m, o, 1) : 0;
    free(have);
    return rc;
}

int exp_analyse_all(const exp_set *s, const exp_options *o) {
    for (int i = 0; i < s->n_exps; i++) {
        int rc = o->gather ? gather_experiment(&s->exps[i], s->runs[i], s->n_runs[i], o)
                           : analyse_experiment(&s->exps[i], s->runs[i], s->n_runs[i], o, 0);
        if (rc) return -1;
    }
    return 0;
}
