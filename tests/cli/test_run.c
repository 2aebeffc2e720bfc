// `lorascope run`: --list prints commands that run as printed (training, then
// the evaluations of complete runs); --gather tables what is complete; a
// resumed sweep does not retrain finished runs; malformed experiment files and missing
// assets are reported, naming the file, line and key, before any training.
#include <glob.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/util.h"
#include "harness.h"

static char err_text[16384];

static int run_cmd(const char *cmd) {
    char errfile[4200], full[20000];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", ls_test_tmpdir("run_stderr"));
    snprintf(full, sizeof full, "cd '%s' && ( %s ) 2>'%s' >/dev/null", ls_test_source(""), cmd, errfile);
    int status = system(full);
    FILE *fp = fopen(errfile, "r");
    size_t n = fp ? fread(err_text, 1, sizeof err_text - 1, fp) : 0;
    err_text[n] = 0;
    if (fp) fclose(fp);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *exe(void) { return getenv("LORASCOPE_BIN"); }

static double mtime_of(const char *path) {
    struct stat st;
    if (stat(path, &st)) return -1;
    return st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
}

static void test_list_commands_run_as_printed_and_resume_skips_finished_runs(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    const char *res = ls_test_tmpdir("run_resume");
    char cmd[32768], list_path[4300];
    snprintf(list_path, sizeof list_path, "%s/list.sh", res);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --list > '%s'", exe(), res, list_path);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    char *list = ls_read_file(list_path, NULL);
    int lines = 0;
    for (char *c = list; c && *c; c++) lines += *c == '\n';
    CHECK_INT(lines, 4);
    // Run the first printed command exactly as printed, from another directory.
    char *nl = strchr(list, '\n');
    if (nl) *nl = 0;
    snprintf(cmd, sizeof cmd, "cd / && %s --threads 1", list);
    CHECK_MSG(run_cmd(cmd) == 0, "printed command failed: %s\n%s", list, err_text);
    char *out = strstr(list, "--out ");
    char adapter[4300] = "";
    if (out) snprintf(adapter, sizeof adapter, "%s/adapter/adapter_model.safetensors", out + 6);
    CHECK_MSG(ls_exists(adapter), "%s missing after the printed command", adapter);
    double t0 = mtime_of(adapter);
    // The listing now omits the finished run's training and lists its
    // evaluation ([eval]) instead, last; it too runs as printed.
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --list > '%s'", exe(), res, list_path);
    CHECK(run_cmd(cmd) == 0);
    char *list2 = ls_read_file(list_path, NULL);
    lines = 0;
    for (char *c = list2; c && *c; c++) lines += *c == '\n';
    CHECK_INT(lines, 4);
    char *last = list2 ? strstr(list2, "' eval ") : NULL;
    if (!last && list2) last = strstr(list2, " eval --");
    CHECK_MSG(last != NULL && !strstr(last, " train "), "no eval command last in:\n%s", list2 ? list2 : "");
    char eval_json[4400] = "";
    if (out) snprintf(eval_json, sizeof eval_json, "%s/eval.json", out + 6);
    if (last) {
        while (last > list2 && last[-1] != '\n') last--;
        snprintf(cmd, sizeof cmd, "cd / && %s", last);
        CHECK_MSG(run_cmd(cmd) == 0, "printed eval command failed: %s\n%s", last, err_text);
        CHECK_STR_CONTAINS(last, "--generate 3");
        // stderr is a file here, not a terminal: progress as whole lines (every 5%, so each of 3 MRs)
        CHECK_STR_CONTAINS(err_text, "e2e: 1/3 MRs |");
        CHECK_STR_CONTAINS(err_text, "e2e: 3/3 MRs |");
        CHECK_STR_CONTAINS(err_text, "| ETA 0s\n");
        CHECK_MSG(ls_exists(eval_json), "%s missing after the printed eval command", eval_json);
    }
    free(list2);
    // --gather trains nothing: the table over the one run there is (n = 1),
    // the analyses that need other runs skipped and named.
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --gather --no-plot", exe(), res);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "tiny: 1 of 4 runs");
    CHECK_STR_CONTAINS(err_text, "loraq,v-rank8-seed1 not complete, left out");
    CHECK_STR_CONTAINS(err_text, "analysis ranks skipped");
    CHECK_MSG(!strstr(err_text, "to train"), "--gather trained: %s", err_text);
    char gathered[4400];
    snprintf(gathered, sizeof gathered, "%s/tiny/table.md", res);
    char *tab = ls_read_file(gathered, NULL);
    CHECK_MSG(tab && strstr(tab, "| 2 |") && !strstr(tab, "| 8 |"), "gathered table:\n%s", tab ? tab : "(none)");
    free(tab);
    // A full run trains the other three only, then analyses.
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --threads 2 --no-plot", exe(), res);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "4 runs, 1 complete, 3 to train");
    CHECK_MSG(mtime_of(adapter) == t0, "the finished run was retrained (adapter rewritten)");
    char table[4400];
    snprintf(table, sizeof table, "%s/tiny/table.md", res);
    CHECK_MSG(ls_exists(table), "%s missing", table);
    // Again: nothing to train.
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "4 runs, 4 complete, 0 to train");
    // A clone of a results repository holds runs' records without the weights
    // and checkpoints .gitignore leaves out: --gather tables them all, and
    // skips the analyses that need the missing weights (rather than run them
    // over fewer runs), naming them.
    char tab_before[4400];
    snprintf(tab_before, sizeof tab_before, "%s/tiny/table.tsv", res);
    char *before = ls_read_file(tab_before, NULL);
    char dirs[4400];
    snprintf(dirs, sizeof dirs, "%s/runs/loraq,v-rank8-seed1-*/", res);
    snprintf(cmd, sizeof cmd,
             "rm -r %sadapter %scheckpoint && '%s' run data/experiments/tiny.ini --results '%s' --gather --no-plot",
             dirs, dirs, exe(), res);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "tiny: 4 of 4 runs (3 with their weights)");
    CHECK_STR_CONTAINS(err_text, "loraq,v-rank8-seed1 has its record but not its weights");
    CHECK_STR_CONTAINS(err_text, "analysis ranks skipped: needs the weights of ");
    CHECK_STR_CONTAINS(err_text, "analysis amplification skipped: needs the weights of ");
    char *after = ls_read_file(tab_before, NULL);
    CHECK_MSG(before && after && !strcmp(before, after), "the gathered table changed:\n%s\n---\n%s",
              before ? before : "(none)", after ? after : "(none)");
    free(after);
    // Its listed command (--resume: the record is there, the checkpoint is
    // not) retrains it in place, as printed, from step 0: the same bits, so
    // the same table — also where the record was made on another machine,
    // whose asset paths and thread count its config.ini holds.
    char moved[9000];
    snprintf(moved, sizeof moved,
             "sed -i -e 's|^path = .*|path = /another/machine/stories260K.bin|' -e 's|^threads = .*|threads = 7|' "
             "%sconfig.ini && grep -q '^path = /another/machine/' %sconfig.ini",
             dirs, dirs);
    CHECK_MSG(run_cmd(moved) == 0, "%s", err_text);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --threads 2 --list > '%s'", exe(), res,
             list_path);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    char *list3 = ls_read_file(list_path, NULL);
    char *line = list3 ? strstr(list3, "rank8-seed1-") : NULL;
    CHECK_MSG(line != NULL, "rank8-seed1 not listed:\n%s", list3 ? list3 : "(none)");
    if (line) {
        while (line > list3 && line[-1] != '\n') line--;
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        CHECK_STR_CONTAINS(line, " --resume");
        snprintf(cmd, sizeof cmd, "cd / && %s", line);
        CHECK_MSG(run_cmd(cmd) == 0, "printed command failed: %s\n%s", line, err_text);
        snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --gather --no-plot", exe(), res);
        CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
        CHECK_STR_CONTAINS(err_text, "tiny: 4 of 4 runs\n");
        after = ls_read_file(tab_before, NULL);
        CHECK_MSG(before && after && !strcmp(before, after), "the retrained run's table differs:\n%s\n---\n%s",
                  before ? before : "(none)", after ? after : "(none)");
        free(after);
    }
    free(list3);
    // Plain `lorascope run` takes the same way for such a record.
    snprintf(cmd, sizeof cmd, "rm -r %sadapter %scheckpoint && %s && '%s' run data/experiments/tiny.ini --results '%s' "
             "--threads 2 --no-plot", dirs, dirs, moved, exe(), res);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "4 runs, 3 complete, 1 to train");
    snprintf(cmd, sizeof cmd, "grep -q '^threads = 2$' %sconfig.ini && ! grep -q /another/machine/ %sconfig.ini", dirs,
             dirs);
    CHECK_MSG(run_cmd(cmd) == 0, "the restarted run's config.ini does not hold the options it ran with");
    after = ls_read_file(tab_before, NULL);
    CHECK_MSG(before && after && !strcmp(before, after), "the run retrained by `run` gives another table:\n%s\n---\n%s",
              before ? before : "(none)", after ? after : "(none)");
    free(after);
    free(before);
    free(list);
}

// Runs tasks 0..3 of an array script as Slurm would, from another directory;
// then task `again` a second time, which must say `done` (it found its work done).
static void run_array(const char *script, int again, const char *done) {
    char cmd[8192];
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "cd / && SLURM_ARRAY_TASK_ID=%d bash '%s'", i, script);
        CHECK_MSG(run_cmd(cmd) == 0, "task %d failed: %s", i, err_text);
    }
    snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=%d bash '%s' 2>&1 | grep -q '^%s'", again, script, done);
    CHECK_MSG(run_cmd(cmd) == 0, "task %d run again did not say '%s'", again, done);
}

// `--slurm` writes an array script whose tasks are --list's commands; run
// here as Slurm would (bash, SLURM_ARRAY_TASK_ID = 0..3), each trains its run;
// a task run again finds its run complete; an index past the array is an
// error; written again, the script holds the runs' evaluations, run the same
// way; `lorascope run` afterwards trains and evaluates nothing and collects.
static void test_slurm_array_tasks_run_locally_then_run_collects(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    const char *res = ls_test_tmpdir("run_slurm");
    char cmd[20000], script[4300];
    snprintf(script, sizeof script, "%s/array.sh", res);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s/results' --threads 1 --slurm '%s'",
             exe(), res, script);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "a Slurm array of 4 tasks");
    char *text = ls_read_file(script, NULL);
    CHECK_MSG(text != NULL, "%s not written", script);
    if (!text) return;
    CHECK_STR_CONTAINS(text, "#SBATCH --array=0-3\n");
    CHECK_STR_CONTAINS(text, "#SBATCH --cpus-per-task=1\n");
    free(text);
    run_array(script, 0, "complete: ");
    snprintf(cmd, sizeof cmd, "SLURM_ARRAY_TASK_ID=4 bash '%s'", script);
    CHECK_INT(run_cmd(cmd), 2);
    CHECK_STR_CONTAINS(err_text, "no task 4: this script has tasks 0 to 3");
    // Written again, the script holds the four runs' evaluations.
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s/results' --threads 1 --slurm '%s'",
             exe(), res, script);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "a Slurm array of 4 tasks");
    text = ls_read_file(script, NULL);
    CHECK_MSG(text && strstr(text, "0) evaltask ") && !strstr(text, " train "), "second script:\n%s", text ? text : "");
    free(text);
    run_array(script, 3, "evaluated: ");
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s/results' --no-plot", exe(), res);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "4 runs, 4 complete, 0 to train");
    CHECK_MSG(!strstr(err_text, "[eval]"), "collecting evaluated again: %s", err_text);
    char table[4400];
    snprintf(table, sizeof table, "%s/results/tiny/table.md", res);
    CHECK_MSG(ls_exists(table), "%s missing", table);
    // nothing left: no script
    snprintf(cmd, sizeof cmd, "rm -f '%s' && '%s' run data/experiments/tiny.ini --results '%s/results' --slurm '%s'",
             script, exe(), res, script);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "every run is complete");
    CHECK_MSG(!ls_exists(script), "%s written with nothing to train", script);
}

// Writes a variant of tiny.ini with one line replaced, runs it, expects exit 2,
// the message, and no results directory.
static void expect_bad(const char *from, const char *to, const char *needle) {
    const char *dir = ls_test_tmpdir("run_bad");
    char *text = ls_read_file(ls_test_source("data/experiments/tiny.ini"), NULL);
    char *at = strstr(text, from);
    CHECK_MSG(at != NULL, "'%s' not in tiny.ini", from);
    if (!at) {
        free(text);
        return;
    }
    char path[4300], res[4300], cmd[10000];
    snprintf(path, sizeof path, "%s/bad.ini", dir);
    snprintf(res, sizeof res, "%s/results", dir);
    FILE *fp = fopen(path, "w");
    fwrite(text, 1, (size_t)(at - text), fp);
    fputs(to, fp);
    fputs(at + strlen(from), fp);
    fclose(fp);
    free(text);
    snprintf(cmd, sizeof cmd, "'%s' run '%s' --results '%s'", exe(), path, res);
    int rc = run_cmd(cmd);
    CHECK_MSG(rc == 2, "exit %d for '%s' (expected 2): %s", rc, to, err_text);
    CHECK_STR_CONTAINS(err_text, needle);
    CHECK_MSG(!ls_exists(res), "%s created by a run that should not start", res);
}

// --backend places every run and its evaluation as --threads sizes them: each
// listed command carries it once, in place of the file's own; a printed
// command trains there and its manifest says so; and without a GPU, `run
// --backend cuda` stops with one line before anything is written.
static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

static void test_backend_option_places_every_run_and_is_checked_first(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    const char *res = ls_test_tmpdir("run_backend");
    char ini[4300], list_path[4300], cmd[16384];
    snprintf(ini, sizeof ini, "%s/tiny_cuda.ini", res);
    snprintf(list_path, sizeof list_path, "%s/list.sh", res);
    // the tiny experiment, its [train] asking for the GPU
    char *tiny = ls_read_file(ls_test_source("data/experiments/tiny.ini"), NULL), *train = tiny ? strstr(tiny, "[train]\n") : NULL;
    CHECK(train != NULL);
    if (!train) { free(tiny); return; }
    train += strlen("[train]\n");
    FILE *fp = fopen(ini, "w");
    CHECK_MSG(fp != NULL, "cannot write %s", ini);
    if (fp) {
        fprintf(fp, "%.*sbackend = cuda\n%s", (int)(train - tiny), tiny, train);
        fclose(fp);
    }
    free(tiny);
    if (!fp) return;

    const char *listed[2] = {"cuda", "cpu"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "'%s' run '%s' --results '%s/r' %s --list > '%s'", exe(), ini, res,
                 k ? "--backend cpu" : "", list_path);
        CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
        char *list = ls_read_file(list_path, NULL), want[32];
        snprintf(want, sizeof want, " --backend %s", listed[k]);
        CHECK_INT(count_of(list, " train "), 4);
        CHECK_MSG(count_of(list, "--backend") == 4 && count_of(list, want) == 4,
                  "expected each of the 4 commands to say%s once:\n%s", want, list ? list : "");
        if (k == 1 && list) { // the first printed command trains on the CPU, and its manifest says so
            char *nl = strchr(list, '\n'), *out = strstr(list, "--out ");
            if (nl) *nl = 0;
            snprintf(cmd, sizeof cmd, "cd / && %s --threads 1", list);
            CHECK_MSG(run_cmd(cmd) == 0, "printed command failed: %s\n%s", list, err_text);
            char manifest[4400] = "";
            if (out) {
                out += 6 + (out[6] == '\'');
                snprintf(manifest, sizeof manifest, "%.*s/manifest.json", (int)strcspn(out, "' "), out);
            }
            char *m = ls_read_file(manifest, NULL), *b = m ? strstr(m, "\"backend\":") : NULL;
            if (b) b += strspn(b + 10, " \t") + 10;
            CHECK_MSG(b && strncmp(b, "\"cpu\"", 5) == 0, "%s: no backend cpu in:\n%s", manifest, m ? m : "(missing)");
            free(m);
        }
        free(list);
    }
    // --backend cuda: on a machine without a GPU one line and exit 1, no results directory
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s/gpu' --backend cuda --no-plot", exe(),
             res);
    char gpu_dir[4300];
    snprintf(gpu_dir, sizeof gpu_dir, "%s/gpu", res);
    int rc = run_cmd(cmd);
    if (rc == 1) {
        CHECK_MSG(count_of(err_text, "\n") == 1, "expected one line, found:\n%s", err_text);
        CHECK_STR_CONTAINS(err_text, "lorascope run: --backend cuda");
        CHECK_MSG(!ls_exists(gpu_dir), "%s written by a run that could not start", gpu_dir);
    } else {
        CHECK_MSG(rc == 0, "run --backend cuda: exit %d: %s", rc, err_text); // a GPU: the sweep ran there
    }
}

static void test_malformed_experiment_is_reported_before_training(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    expect_bad("steps = 6", "stpes = 6", "unknown");
    expect_bad("steps = 6", "steps = 0", "steps");
    expect_bad("rank = 2 | 8", "rank = 2 | 0", "rank");
    expect_bad("$ASSETS/data/e2e/test.txt", "$ASSETS/data/e2e/missing.txt", "bad.ini:12: 'val-data': asset");
    expect_bad("[sweep]", "[swept]", "bad.ini:20: unknown section [swept]");
    expect_bad("name = tiny", "nme = tiny", "unknown key 'nme' in [experiment]");
    expect_bad("kind = amplify", "kind = amplification", "kind 'amplification' unknown");
    expect_bad("generate = 3", "generat = 3", "unknown key 'generat' in [eval]");
    expect_bad("seed = 1 | 2", "seed = 1 | 2\nzip = seed, lora", "zip: axis 'lora' has 1 values but 'seed' has 2");
    expect_bad("lr = 3e-3", "lr = fast", "lr");
    expect_bad("rank = 2 | 8", "rank = 2 | 8\nrank = 4", "axis 'rank' given twice");
}

// Two `lorascope run` on one results directory, started together: exactly one
// trains (and finishes), the other is refused at once naming the holder's pid.
static void test_two_runs_on_one_results_dir_one_trains_the_other_is_refused(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    const char *dir = ls_test_tmpdir("run_locked");
    char res[4300], cmd[40000], err[2][4400], rcf[2][4400];
    snprintf(res, sizeof res, "%s/results", dir);
    size_t k = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(err[i], sizeof err[i], "%s/err%d.txt", dir, i);
        snprintf(rcf[i], sizeof rcf[i], "%s/rc%d.txt", dir, i);
        k += (size_t)snprintf(cmd + k, sizeof cmd - k,
                              "('%s' run data/experiments/tiny.ini --results '%s' --threads 1 --no-plot >/dev/null "
                              "2>'%s'; echo $? >'%s') & ",
                              exe(), res, err[i], rcf[i]);
    }
    snprintf(cmd + k, sizeof cmd - k, "wait");
    CHECK(run_cmd(cmd) == 0);
    int rc[2], winners = 0, refused = 0;
    for (int i = 0; i < 2; i++) {
        char *t = ls_read_file(rcf[i], NULL);
        rc[i] = t ? atoi(t) : -1;
        free(t);
        char *e = ls_read_file(err[i], NULL);
        if (rc[i] == 0) {
            winners++;
            CHECK_STR_CONTAINS(e, "4 runs, 0 complete, 4 to train");
        } else {
            refused++;
            CHECK_MSG(rc[i] == 1, "the refused run exited %d, expected 1", rc[i]);
            char want[4400];
            snprintf(want, sizeof want, "lorascope run: %s: locked by lorascope run (pid ", res);
            CHECK_STR_CONTAINS(e, want);
            CHECK_STR_CONTAINS(e, "); wait for it or pass another --results\n");
            int lines = 0;
            for (char *c = e; c && *c; c++) lines += *c == '\n';
            CHECK_MSG(lines == 1, "expected a one-line error, got: %s", e);
        }
        free(e);
    }
    CHECK_MSG(winners == 1 && refused == 1, "exit codes %d and %d: expected one 0 and one 1", rc[0], rc[1]);
    char table[4400], lock[4400];
    snprintf(table, sizeof table, "%s/tiny/table.md", res);
    CHECK_MSG(ls_exists(table), "%s missing after the run that held the lock", table);
    snprintf(lock, sizeof lock, "%s/.lock", res);
    CHECK_MSG(!ls_exists(lock), "%s left behind by a finished run", lock);
}

static void test_zip_of_an_axis_twice_or_in_a_cycle_is_an_error(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    expect_bad("seed = 1 | 2", "seed = 1 | 2\nzip = rank, rank", "bad.ini:24: zip: axis 'rank' is already zipped");
    expect_bad("seed = 1 | 2", "seed = 1 | 2\nzip = rank, seed\nzip = seed, rank",
               "bad.ini:25: zip: axis 'seed' is already zipped");
}

static void test_sweep_over_the_run_limit_is_an_error(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    // 2 * 2 * 10^5 runs: refused before any run is planned, with the limit.
    expect_bad("seed = 1 | 2",
               "seed = 1 | 2\nx1 = 1|2|3|4|5|6|7|8|9|10\nx2 = 1|2|3|4|5|6|7|8|9|10\nx3 = 1|2|3|4|5|6|7|8|9|10\n"
               "x4 = 1|2|3|4|5|6|7|8|9|10\nx5 = 1|2|3|4|5|6|7|8|9|10",
               "the sweep has more than 100000 runs");
}

static void test_analysis_sections_are_checked_before_training(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    expect_bad("b = rank=8 seed=1", "b = rank=3 seed=1",
               "bad.ini:29: [analysis ranks] b: selector 'rank=3 seed=1': axis 'rank' has no value '3'");
    expect_bad("b = rank=8 seed=1", "b = rank=8", "[analysis ranks] b = 'rank=8': expected exactly one run, found 2");
    expect_bad("runs = seed=1", "runs = seed=3", "bad.ini:47: [analysis curves] runs: selector 'seed=3'");
    expect_bad("rows = rank", "rows = rnk", "bad.ini:40: [analysis table] rows: no sweep axis 'rnk'");
    expect_bad("plot_x = rank", "plot_x = seed", "[analysis table] plot_x/plot_series must be among the rows");
    expect_bad("module = q\n", "module = q\nimax = 0\n", "[analysis amplification]: --imax");
    expect_bad("module = q\n", "module = q\nfoo = 1\n", "bad.ini:39: [analysis amplification] unknown key 'foo'");
    expect_bad("plot_x = rank", "plot_x = rank\nfoo = 1", "bad.ini:46: [analysis table] unknown key 'foo' for kind table");
    expect_bad("runs = seed=1", "runs = seed=1\nrows = rank", "unknown key 'rows' for kind curve");
}

static void test_analysis_with_more_adapters_than_the_limit_is_an_error(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    expect_bad("adapters = rank=2 seed=1 | rank=8 seed=1", "adapters = rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=2 | rank=8",
               "bad.ini:35: [analysis amplification] adapters: at most 16 selectors, found 17");
}

static void test_duplicate_keys_are_errors_in_every_section(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    expect_bad("name = tiny", "name = tiny\nname = tiny2", "bad.ini:5: key 'name' given twice in [experiment]");
    expect_bad("max-new = 8", "max-new = 8\nmax-new = 9", "bad.ini:28: key 'max-new' given twice in [eval]");
    expect_bad("kind = curve", "kind = curve\nkind = table", "bad.ini:49: key 'kind' given twice in [analysis curves]");
    expect_bad("steps = 6", "steps = 6\nsteps = 7", "key 'steps' given twice in [train]");
}

static void test_experiment_file_that_is_not_a_regular_file_is_refused(void) {
    const char *dir = ls_test_tmpdir("run_devzero");
    char res[4300], cmd[10000];
    snprintf(res, sizeof res, "%s/results", dir);
    snprintf(cmd, sizeof cmd, "'%s' run /dev/zero --list --results '%s'", exe(), res);
    int rc = run_cmd(cmd);
    CHECK_MSG(rc == 2, "exit %d for run /dev/zero (expected 2): %s", rc, err_text);
    CHECK_STR_CONTAINS(err_text, "/dev/zero: expected a regular file");
    CHECK_MSG(!ls_exists(res), "%s created", res);
}

// A run's identity is its flags, not its label: a second experiment that
// fixes in [train] what tiny.ini sweeps (lora = q,v, rank = 2, seed 1) names
// one of tiny's runs under another label. Planned together, the two train it
// once; trained under one label, the other experiment finds it complete.
static void test_a_run_two_experiments_label_differently_trains_once(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    const char *dir = ls_test_tmpdir("run_shared");
    char *text = ls_read_file(ls_test_source("data/experiments/tiny.ini"), NULL);
    char *sweep = text ? strstr(text, "[sweep]") : NULL;
    char *name = text ? strstr(text, "name = tiny\n") : NULL;
    CHECK_MSG(sweep && name && name < sweep, "tiny.ini has no [sweep] after its name");
    if (!sweep || !name || name > sweep) {
        free(text);
        return;
    }
    char alias[4300], res[4300], list_path[4300], cmd[20000];
    snprintf(alias, sizeof alias, "%s/alias.ini", dir);
    snprintf(res, sizeof res, "%s/results", dir);
    snprintf(list_path, sizeof list_path, "%s/list.sh", dir);
    FILE *fp = fopen(alias, "w");
    fwrite(text, 1, (size_t)(name - text), fp);
    fputs("name = alias\n", fp);
    fwrite(name + strlen("name = tiny\n"), 1, (size_t)(sweep - name - strlen("name = tiny\n")), fp);
    fputs("lora = q,v\nrank = 2\n\n[sweep]\nseed = 1\n", fp);
    fclose(fp);
    free(text);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini '%s' --results '%s' --list > '%s'", exe(), alias, res,
             list_path);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    char *list = ls_read_file(list_path, NULL);
    CHECK_INT(count_of(list, " train "), 4);
    CHECK_INT(count_of(list, "/runs/seed1-"), 0); // tiny, planned first, names the shared run
    free(list);
    // Trained under the alias's label, tiny finds that run complete.
    snprintf(cmd, sizeof cmd, "'%s' run '%s' --results '%s' --threads 1 --no-plot", exe(), alias, res);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --list > '%s'", exe(), res, list_path);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    list = ls_read_file(list_path, NULL);
    CHECK_INT(count_of(list, " train "), 3);
    CHECK_INT(count_of(list, "/runs/loraq,v-rank2-seed1-"), 0);
    char want[4400];
    snprintf(want, sizeof want, " eval --model "); // tiny's [eval] of its one complete run, the alias's directory
    CHECK_INT(count_of(list, want), 1);
    snprintf(want, sizeof want, "--adapter %s/runs/seed1-", res);
    CHECK_MSG(count_of(list, want) == 1, "the alias's run is not evaluated from its directory:\n%s", list ? list : "");
    free(list);
}

// --jobs 2: the four runs of tiny.ini train and are evaluated two at a time,
// each as the child process --list prints, to the bits of the runs trained
// in this process one after another (the same thread count), the same table,
// and a log per training and per evaluation.
static void test_jobs_train_and_evaluate_to_the_bits_of_one_at_a_time(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    const char *dir = ls_test_tmpdir("run_jobs");
    char cmd[20000];
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s/seq' --threads 1 --no-plot", exe(), dir);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s/par' --jobs 2 --threads 1 --no-plot",
             exe(), dir);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(err_text, "lorascope run: 2 at a time, 1 thread each; logs in ");
    CHECK_INT(count_of(err_text, ": started, log "), 8); // 4 trainings, 4 evaluations
    CHECK_INT(count_of(err_text, ": done in "), 8);
    const char *runs[] = {"loraq,v-rank2-seed1-", "loraq,v-rank2-seed2-", "loraq,v-rank8-seed1-", "loraq,v-rank8-seed2-"};
    char seq_runs[4400], path[2][4600];
    snprintf(seq_runs, sizeof seq_runs, "%s/seq/runs", dir);
    for (int i = 0; i < 4; i++) {
        char name[512] = "", pattern[4600];
        glob_t g;
        snprintf(pattern, sizeof pattern, "%s/%s*", seq_runs, runs[i]);
        if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc == 1)
            snprintf(name, sizeof name, "%s", strrchr(g.gl_pathv[0], '/') + 1);
        globfree(&g);
        CHECK_MSG(name[0], "not one run %s* in %s", runs[i], seq_runs);
        size_t size[2] = {0, 0};
        char *bytes[2];
        for (int v = 0; v < 2; v++) {
            snprintf(path[v], sizeof path[v], "%s/%s/runs/%s/adapter/adapter_model.safetensors", dir, v ? "par" : "seq",
                     name);
            bytes[v] = ls_read_file(path[v], &size[v]);
        }
        CHECK_MSG(bytes[0] && bytes[1] && size[0] == size[1] && !memcmp(bytes[0], bytes[1], size[0]),
                  "%s and %s differ", path[0], path[1]);
        free(bytes[0]), free(bytes[1]);
        for (int v = 0; v < 2; v++) {
            snprintf(path[0], sizeof path[0], "%s/par/logs/%s%s", dir, name, v ? ".eval.log" : ".log");
            CHECK_MSG(ls_exists(path[0]), "%s missing", path[0]);
        }
    }
    for (int v = 0; v < 2; v++) snprintf(path[v], sizeof path[v], "%s/%s/tiny/table.tsv", dir, v ? "par" : "seq");
    char *table[2] = {ls_read_file(path[0], NULL), ls_read_file(path[1], NULL)};
    CHECK_MSG(table[0] && table[1] && !strcmp(table[0], table[1]), "%s and %s differ", path[0], path[1]);
    free(table[0]), free(table[1]);
}

// A training that fails under --jobs: no new one starts, the one beside it
// finishes, and the command ends with one line naming the run, its exit and
// its log's last line.
static void test_jobs_a_failed_run_is_named_with_its_log(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present");
    const char *dir = ls_test_tmpdir("run_jobs_fail");
    char cmd[20000], list_path[4400], res[4400];
    snprintf(res, sizeof res, "%s/results", dir);
    snprintf(list_path, sizeof list_path, "%s/list.sh", dir);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --list > '%s'", exe(), res, list_path);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", err_text);
    char *list = ls_read_file(list_path, NULL), *out = list ? strstr(list, "--out ") : NULL;
    CHECK_MSG(out != NULL, "no --out in the listing");
    if (!out) {
        free(list);
        return;
    }
    char first[4400];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(out + 6, " \n"), out + 6);
    free(list);
    // The first run's directory is a regular file: its training cannot start.
    CHECK(ls_mkdir_p(res) == 0);
    char runs_dir[4500];
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", res);
    CHECK(ls_mkdir_p(runs_dir) == 0);
    CHECK(ls_write_file_atomic(first, "x", 1) == 0);
    snprintf(cmd, sizeof cmd, "'%s' run data/experiments/tiny.ini --results '%s' --jobs 2 --threads 1 --no-plot", exe(),
             res);
    CHECK_INT(run_cmd(cmd), 1);
    CHECK_STR_CONTAINS(err_text, "[run 2/4] loraq,v-rank2-seed2: done in ");
    CHECK_INT(count_of(err_text, ": started, log "), 2); // none after the failure
    const char *last = err_text + strlen(err_text);
    while (last > err_text && last[-1] == '\n') last--;
    while (last > err_text && last[-1] != '\n') last--;
    CHECK_MSG(!strncmp(last, "lorascope run: run loraq,v-rank2-seed1 failed (exit ", 52),
              "the last line does not name the failed run: %s", last);
    CHECK_STR_CONTAINS(last, "/logs/loraq,v-rank2-seed1-");
    CHECK_STR_CONTAINS(last, ".log ends: ");
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_list_commands_run_as_printed_and_resume_skips_finished_runs),
        LS_TEST(test_slurm_array_tasks_run_locally_then_run_collects),
        LS_TEST(test_backend_option_places_every_run_and_is_checked_first),
        LS_TEST(test_malformed_experiment_is_reported_before_training),
        LS_TEST(test_two_runs_on_one_results_dir_one_trains_the_other_is_refused),
        LS_TEST(test_a_run_two_experiments_label_differently_trains_once),
        LS_TEST(test_jobs_train_and_evaluate_to_the_bits_of_one_at_a_time),
        LS_TEST(test_jobs_a_failed_run_is_named_with_its_log),
        LS_TEST(test_zip_of_an_axis_twice_or_in_a_cycle_is_an_error),
        LS_TEST(test_sweep_over_the_run_limit_is_an_error),
        LS_TEST(test_analysis_sections_are_checked_before_training),
        LS_TEST(test_analysis_with_more_adapters_than_the_limit_is_an_error),
        LS_TEST(test_duplicate_keys_are_errors_in_every_section),
        LS_TEST(test_experiment_file_that_is_not_a_regular_file_is_refused),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
