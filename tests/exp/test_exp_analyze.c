// exp_analyze: an [analysis] section over an experiment's runs gives the same
// files as the analysis requested directly; its errors name the file and section.
// The "runs" here are directories whose adapter/ links to tests/data/peft.
#include <unistd.h>

#include "analysis.h"
#include "analyze/analyze.h"
#include "base/util.h"
#include "exp/aggregate.h"
#include "exp/exp_analyze.h"
#include "exp/runner.h"
#include "harness.h"
#include "io/adapter.h"
#include "report/report.h"

// Two runs on a `seed` axis: seed=1 the llama_tiny adapter (r = 4), seed=2 its
// rsLoRA variant; both trained (as far as their flags say) on llama_tiny/base.
typedef struct {
    experiment e;
    exp_axis axis;
    char *values[2];
    exp_run runs[2];
    char *args[2][4];
    int value_index[2];
    char dir[2][4300];
    char base[4300];
} fixture;

static void fixture_build(fixture *f, const char *tmp) {
    memset(f, 0, sizeof *f);
    f->values[0] = "1";
    f->values[1] = "2";
    f->axis = (exp_axis){.name = "seed", .n_values = 2, .values = f->values, .leader = -1};
    f->e = (experiment){.path = "t.ini", .name = "t", .n_axes = 1, .axes = &f->axis};
    snprintf(f->base, sizeof f->base, "%s", ls_test_source("data/peft/llama_tiny/base"));
    const char *adapters[2] = {"data/peft/llama_tiny/adapter", "data/peft/llama_tiny_rslora/adapter"};
    for (int i = 0; i < 2; i++) {
        snprintf(f->dir[i], sizeof f->dir[i], "%s/run%d", tmp, i + 1);
        char link[4400];
        snprintf(link, sizeof link, "%s/adapter", f->dir[i]);
        CHECK(ls_mkdir_p(f->dir[i]) == 0);
        unlink(link);
        CHECK(symlink(ls_test_source(adapters[i]), link) == 0);
        f->args[i][0] = "--model";
        f->args[i][1] = f->base;
        f->args[i][2] = "--seed";
        f->args[i][3] = f->values[i];
        f->value_index[i] = i;
        f->runs[i] = (exp_run){.n_args = 4, .args = f->args[i], .label = f->values[i], .dir = f->dir[i],
                               .value_index = &f->value_index[i]};
        tc_defaults(&f->runs[i].cfg);
        CHECK(tc_set_flag(&f->runs[i].cfg, "model", f->base) == 0);
    }
}

static exp_analysis section(const char *kind, exp_kv *kv, int n_kv) {
    return (exp_analysis){.name = "s", .kind = (char *)kind, .n_kv = n_kv, .kv = kv, .line = 1};
}

// Checks that <dir>/<name> holds `want`.
static void check_file_contains(const char *dir, const char *name, const char *want) {
    char path[4600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = ls_read_file(path, NULL);
    CHECK_MSG(text != NULL, "%s: not written", path);
    CHECK_STR_CONTAINS(text ? text : "", want);
    free(text);
}

// 1 if <a>/<name> and <b>/<name> hold the same bytes.
static int same_file(const char *a, const char *b, const char *name) {
    char pa[4400], pb[4400];
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    size_t na = 0, nb = 0;
    char *ta = ls_read_file(pa, &na), *tb = ls_read_file(pb, &nb);
    int same = ta && tb && na == nb && !memcmp(ta, tb, na);
    free(ta);
    free(tb);
    return same;
}

static void test_amplify_section_matches_direct_request(void) {
    const char *tmp = ls_test_tmpdir("exp_analyze_amplify");
    fixture f;
    fixture_build(&f, tmp);
    exp_kv kv[] = {{"kind", "amplify", NULL, 2}, {"adapters", "seed=1 | seed=2", NULL, 3},
                   {"module", "q,v", NULL, 4}, {"layer", "1", NULL, 5}, {"seed", "3", NULL, 6}};
    exp_analysis an = section("amplify", kv, LS_COUNT(kv));
    char out[4400], direct[4400], a1[4400], a2[4400];
    snprintf(out, sizeof out, "%s/section", tmp);
    snprintf(direct, sizeof direct, "%s/direct", tmp);
    CHECK_MSG(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());

    analyze_request req;
    analyze_request_defaults(&req);
    snprintf(a1, sizeof a1, "%s/adapter", f.dir[0]);
    snprintf(a2, sizeof a2, "%s/adapter", f.dir[1]);
    req.kind = "amplify";
    req.base = f.base;
    req.adapters[req.n_adapters++] = a1;
    req.adapters[req.n_adapters++] = a2;
    req.layer = 1;
    req.seed = 3;
    req.out = direct;
    req.name = an.name;
    req.no_plot = 1;
    CHECK_MSG(analyze_run(&req) == 0, "%s", ls_error());
    report_list();
    // <out>/<section name>.{tsv,md}, data in <out>/data/<section name>/
    char name[300];
    snprintf(name, sizeof name, "%s.tsv", an.name);
    CHECK(same_file(out, direct, name));
    snprintf(name, sizeof name, "%s.md", an.name);
    CHECK(same_file(out, direct, name));
    snprintf(name, sizeof name, "data/%s/amplify_r4_q.tsv", an.name);
    CHECK(same_file(out, direct, name));
}

static void test_subspace_section_compares_a_with_b(void) {
    const char *tmp = ls_test_tmpdir("exp_analyze_subspace");
    fixture f;
    fixture_build(&f, tmp);
    exp_kv kv[] = {{"kind", "subspace", NULL, 2}, {"a", "seed=2", NULL, 3}, {"b", "seed=1", NULL, 4},
                   {"side", "B", NULL, 5}};
    exp_analysis an = section("subspace", kv, LS_COUNT(kv));
    char out[4400], tsv[4500];
    snprintf(out, sizeof out, "%s/section", tmp);
    CHECK_MSG(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());
    snprintf(tsv, sizeof tsv, "%s/%s.tsv", out, an.name);
    char *text = ls_read_file(tsv, NULL);
    // a = rsLoRA (q: r = 2), b = r = 4, on B: a 2 x 4 grid per layer.
    CHECK_STR_CONTAINS(text ? text : "", "0\tq\tB\t2\t4\t");
    free(text);
}

// Writes <run>/adapter_init.safetensors with A₀ = k·A (and B₀ = 0) for the run's adapter.
static void write_scaled_init(const char *run_dir, float k) {
    char dir[4400], path[4500];
    snprintf(dir, sizeof dir, "%s/adapter", run_dir);
    snprintf(path, sizeof path, "%s/" ADAPTER_INIT_FILE, run_dir);
    lora_adapter a;
    CHECK_MSG(adapter_load(&a, dir) == 0, "%s", ls_error());
    for (int m = 0; m < a.n_modules; m++) {
        for (int i = 0; i < a.modules[m].r * a.modules[m].d_in; i++) a.modules[m].A[i] *= k;
        memset(a.modules[m].B, 0, sizeof(float) * a.modules[m].d_out * a.modules[m].r);
    }
    CHECK_MSG(adapter_init_save(&a, path) == 0, "%s", ls_error());
    adapter_free(&a);
}

// pairs = seeds: every pair of runs of different seeds (here one), its
// statistics in <name>_pairs.tsv and their summary; with A₀ = 2A and 3A the
// runs' A − A₀ and A₀ span A's subspaces, so φ of A − A₀ and of A₀ equal φ of A.
static void test_subspace_pairs_of_seeds_with_initial_factors(void) {
    const char *tmp = ls_test_tmpdir("exp_analyze_pairs");
    fixture f;
    fixture_build(&f, tmp);
    for (int i = 0; i < 2; i++) CHECK(tc_set_flag(&f.runs[i].cfg, "seed", f.values[i]) == 0);
    write_scaled_init(f.dir[0], 2.0f);
    write_scaled_init(f.dir[1], 3.0f);
    exp_kv kv[] = {{"kind", "subspace", NULL, 2}, {"a", "seed=*", NULL, 3}, {"b", "seed=*", NULL, 4},
                   {"pairs", "seeds", NULL, 5}, {"module", "q", NULL, 6}};
    exp_analysis an = section("subspace", kv, LS_COUNT(kv));
    char out[4400], path[4500];
    snprintf(out, sizeof out, "%s/section", tmp);
    CHECK_MSG(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());
    snprintf(path, sizeof path, "%s/s_pairs.tsv", out);
    char *text = ls_read_file(path, NULL);
    CHECK_STR_CONTAINS(text ? text : "", "pair\tadapter1\tadapter2\tr1\tr2\tlayer\tmodule\tphi_1_1\tphi_2_2\tphi_1_r2\t"
                                         "mean_phi\tdphi_1_1");
    int rows = 0;
    for (char *line = text ? strchr(text, '\n') : NULL; line && line[1]; line = strchr(line + 1, '\n')) {
        // pair a1 a2 r1 r2 layer module phi_1_1 phi_2_2 phi_1_r2 mean_phi dphi(4) init_phi_1_1 init_phi_1_r2
        double v[17];
        char *p = line + 1;
        for (int k = 0; k < 17; k++) {
            v[k] = k < 7 && (k == 1 || k == 2 || k == 6) ? 0 : strtod(p, NULL);
            p = strchr(p, '\t');
            if (!p) break;
            p++;
        }
        CHECK_CLOSE(v[0], 1, 0, 0);  // one pair: seed 1 with seed 2
        for (int k = 0; k < 4; k++) CHECK_CLOSE(v[11 + k], v[7 + k], 1e-6, 1e-6); // φ of A − A₀ = φ of A
        CHECK_CLOSE(v[15], v[7], 1e-6, 1e-6);  // φ(1,1) of A₀
        CHECK_CLOSE(v[16], v[9], 1e-6, 1e-6);  // φ(1,r2) of A₀
        rows++;
    }
    CHECK_INT(rows, 2);  // llama_tiny: 2 layers, module q
    free(text);
    check_file_contains(out, "s_summary.md", "over 1 pairs of runs");
    check_file_contains(out, "s.tsv", "\tphi_2_2\tphi_2_2_chance\tphi_2_2_p99\tdphi_1_1");
    // pairs = seeds needs two runs of different seeds
    exp_kv one[] = {{"kind", "subspace", NULL, 2}, {"a", "seed=1", NULL, 3}, {"b", "seed=1", NULL, 4},
                    {"pairs", "seeds", NULL, 5}};
    an = section("subspace", one, LS_COUNT(one));
    snprintf(out, sizeof out, "%s/none", tmp);
    CHECK(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "t.ini:1: [analysis s] pairs = seeds: a = 'seed=1' and b = 'seed=1' select no two "
                                   "runs of different seeds");
}

static void test_section_errors_name_file_and_section(void) {
    const char *tmp = ls_test_tmpdir("exp_analyze_errors");
    fixture f;
    fixture_build(&f, tmp);
    char out[4400];
    snprintf(out, sizeof out, "%s/out", tmp);
    exp_kv unknown[] = {{"kind", "spectrum", NULL, 2}, {"adapters", "seed=1", NULL, 3}, {"bogus", "1", NULL, 4}};
    exp_analysis an = section("spectrum", unknown, LS_COUNT(unknown));
    CHECK(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "t.ini:4: [analysis s] unknown key 'bogus' for kind spectrum");
    exp_kv two[] = {{"kind", "spectrum", NULL, 2}, {"adapters", "seed=*", NULL, 3}};
    an = section("spectrum", two, LS_COUNT(two));
    CHECK(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "[analysis s] adapters = 'seed=*': expected exactly one run, found 2");
    exp_kv bad[] = {{"kind", "spectrum", NULL, 2}, {"adapters", "seed=1", NULL, 3}, {"layer", "x", NULL, 4}};
    an = section("spectrum", bad, LS_COUNT(bad));
    CHECK(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "t.ini: [analysis s] failed (see above)");
    exp_kv deep[] = {{"kind", "amplify", NULL, 2}, {"adapters", "seed=1", NULL, 3}, {"rank", "9", NULL, 4}};
    an = section("amplify", deep, LS_COUNT(deep));
    CHECK(exp_analyze(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_MSG(!ls_exists(out), "%s left behind by a failed analysis", out);
}

// A table reads the runs' records: a damaged one is an error naming the file,
// not a value that is silently missing.
// A zipped axis may repeat a value (rank = 8 | 8 | 64 beside seed = 1 | 2 | 1):
// a selector picks every run whose value reads so, not only the last column.
static void test_selector_matches_every_run_of_a_repeated_zipped_value(void) {
    char *ranks[3] = {"8", "8", "64"}, *seeds[3] = {"1", "2", "1"};
    exp_axis axes[2] = {{.name = "rank", .n_values = 3, .values = ranks, .leader = -1},
                        {.name = "seed", .n_values = 3, .values = seeds, .leader = 0}};
    experiment e = {.path = "t.ini", .name = "t", .n_axes = 2, .axes = axes};
    int vi[3][2] = {{0, 0}, {1, 1}, {2, 2}};
    exp_run runs[3];
    for (int i = 0; i < 3; i++) runs[i] = (exp_run){.value_index = vi[i]};
    int out[3];
    CHECK_INT(exp_select(&e, runs, 3, "rank=8", out), 2);
    CHECK_INT(out[0], 0);
    CHECK_INT(out[1], 1);
    CHECK_INT(exp_select(&e, runs, 3, "rank=8 seed=2", out), 1);
    CHECK_INT(out[0], 1);
    CHECK_INT(exp_select(&e, runs, 3, "rank=64", out), 1);
    CHECK_INT(out[0], 2);
    CHECK_INT(exp_select(&e, runs, 3, "seed=1", out), 2);
}

// Run records of the fixture's two runs: val_loss 5 -> 2 (seed 1), 4 -> 3 (seed 2).
static void write_two_records(const fixture *f) {
    for (int i = 0; i < 2; i++) {
        char path[4500];
        snprintf(path, sizeof path, "%s/metrics.jsonl", f->dir[i]);
        const char *m = i ? "{\"step\":0,\"val_loss\":4.0}\n{\"step\":6,\"val_loss\":3.0}\n"
                          : "{\"step\":0,\"val_loss\":5.0}\n{\"step\":6,\"val_loss\":2.0}\n";
        CHECK(ls_write_file_atomic(path, m, strlen(m)) == 0);
    }
}

// A table's rows group runs by the axis value's text: two runs whose zipped
// axis repeats a value (here both "1") make one row of n = 2, not two rows.
static void test_table_groups_a_repeated_zipped_value_into_one_row(void) {
    const char *tmp = ls_test_tmpdir("exp_table_repeated");
    fixture f;
    fixture_build(&f, tmp);
    char path[4500], out[4400];
    write_two_records(&f);
    f.values[1] = "1"; // seed = 1 | 1 (as a zipped axis may read)
    exp_kv kv[] = {{"kind", "table", NULL, 2}, {"rows", "seed", NULL, 3}, {"metrics", "val_loss", NULL, 4}};
    exp_analysis an = section("table", kv, LS_COUNT(kv));
    snprintf(out, sizeof out, "%s/out", tmp);
    CHECK_MSG(exp_table(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());
    snprintf(path, sizeof path, "%s/s.tsv", out);
    char *text = ls_read_file(path, NULL);
    CHECK_STR_CONTAINS(text ? text : "", "\n1\t2.5\t0.707107\t6.353\t2\n"); // mean of 2 and 3, sample std, t(1) std / √2, n 2
    free(text);
    report_list();
}

// compare = METRIC: Welch's t-test between every two rows. Rows a (val_loss
// 2, 4) and b (5, 6), two seeds each: t = (3 − 5.5) / √(2/2 + 0.5/2) =
// −2.23607, df = 1.25² / (1 + 0.0625) = 1.47059; a metric not in the table
// is an error that names the file and section.
static void test_table_compare_gives_welch_t_between_rows(void) {
    const char *tmp = ls_test_tmpdir("exp_table_compare");
    char *lv[2] = {"a", "b"}, *sv[2] = {"1", "2"};
    exp_axis axes[2] = {{.name = "lora", .n_values = 2, .values = lv, .leader = -1},
                        {.name = "seed", .n_values = 2, .values = sv, .leader = -1}};
    experiment e = {.path = "t.ini", .name = "t", .n_axes = 2, .axes = axes};
    exp_run runs[4];
    int vi[4][2];
    char dir[4][4400];
    const double loss[4] = {2, 4, 5, 6};
    for (int r = 0; r < 4; r++) {
        vi[r][0] = r / 2, vi[r][1] = r % 2;
        snprintf(dir[r], sizeof dir[r], "%s/run%d", tmp, r);
        CHECK(ls_mkdir_p(dir[r]) == 0);
        char *path = ls_path_join(dir[r], "metrics.jsonl"), line[64];
        snprintf(line, sizeof line, "{\"step\":6,\"val_loss\":%g}\n", loss[r]);
        CHECK(ls_write_file_atomic(path, line, strlen(line)) == 0);
        free(path);
        runs[r] = (exp_run){.label = dir[r], .dir = dir[r], .value_index = vi[r]};
    }
    exp_kv kv[] = {{"kind", "table", NULL, 2}, {"rows", "lora", NULL, 3}, {"over", "seed", NULL, 4},
                   {"metrics", "val_loss", NULL, 5}, {"compare", "val_loss", NULL, 6}};
    exp_analysis an = section("table", kv, LS_COUNT(kv));
    CHECK_MSG(exp_table_check(&e, &an) == 0, "%s", ls_error());
    char out[4400], path[4500], want[256];
    snprintf(out, sizeof out, "%s/out", tmp);
    CHECK_MSG(exp_table(&e, &an, runs, 4, out, 1) == 0, "%s", ls_error());
    snprintf(path, sizeof path, "%s/s_compare.tsv", out);
    char *text = ls_read_file(path, NULL);
    snprintf(want, sizeof want, "\na\tb\t3\t5.5\t-2.5\t-2.23607\t1.47059\t%.6g\t2\t2\n",
             an_student_t_p2(-2.5 / sqrt(1.25), 1.25 * 1.25 / 1.0625));
    CHECK_STR_CONTAINS(text ? text : "", want);
    free(text);
    check_file_contains(out, "s_compare.md", "| a | b | -2.5000 | -2.24 | 1.5 | ");
    report_list();
    kv[4].value = "bleu";
    CHECK(exp_table_check(&e, &an) == -1);
    CHECK_STR_CONTAINS(ls_error(), "t.ini:1: [analysis s] compare: expected one of the metrics, found 'bleu'");
}

// A run is complete when its manifest says so and the weights its method
// writes are there: every method's file counts (Adapter^H / ^L: adapters/,
// prefix-layer: prefix/, BitFit: bitfit/), not only LoRA's and full's.
static void test_run_is_complete_for_every_method_s_weights(void) {
    const char *tmp = ls_test_tmpdir("exp_complete");
    static const char *const written[] = {"adapter/adapter_model.safetensors", "full/model.safetensors",
                                          "bitfit/model.safetensors", "adapters/model.safetensors",
                                          "prefix/adapter_model.safetensors"};
    for (size_t i = 0; i < LS_COUNT(written); i++) {
        char dir[4400], path[4600];
        snprintf(dir, sizeof dir, "%s/run%zu", tmp, i);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        CHECK(ls_mkdir_p(dir) == 0);
        CHECK(ls_write_file_atomic(path, "{\"status\": \"completed\"}", 23) == 0);
        CHECK_MSG(!exp_run_is_complete(dir), "%s: complete without weights", dir);
        snprintf(path, sizeof path, "%s/%s", dir, written[i]);
        *strrchr(path, '/') = '\0';
        CHECK(ls_mkdir_p(path) == 0);
        snprintf(path, sizeof path, "%s/%s", dir, written[i]);
        CHECK(ls_write_file_atomic(path, "x", 1) == 0);
        CHECK_MSG(exp_run_is_complete(dir), "%s: not complete with %s", dir, written[i]);
    }
}

static void test_table_refuses_a_damaged_run_record(void) {
    const char *tmp = ls_test_tmpdir("exp_table_records");
    fixture f;
    fixture_build(&f, tmp);
    char path[4500], out[4400];
    write_two_records(&f);
    exp_kv kv[] = {{"kind", "table", NULL, 2}, {"rows", "seed", NULL, 3}, {"metrics", "val_loss, base_val_loss", NULL, 4}};
    exp_analysis an = section("table", kv, LS_COUNT(kv));
    snprintf(out, sizeof out, "%s/out", tmp);
    CHECK_MSG(exp_table(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());
    snprintf(path, sizeof path, "%s/s.tsv", out);
    char *text = ls_read_file(path, NULL);
    CHECK_STR_CONTAINS(text ? text : "", "1\t2\t0\tnan\t5\t0\tnan\t1\n"); // seed 1: last val_loss 2, first 5; one run, no interval
    CHECK_STR_CONTAINS(text ? text : "", "2\t3\t0\tnan\t4\t0\tnan\t1\n");
    free(text);
    report_list();
    snprintf(path, sizeof path, "%s/eval.json", f.dir[0]);
    CHECK(ls_write_file_atomic(path, "{\"bleu\": 0.", 12) == 0);
    exp_kv kv2[] = {{"kind", "table", NULL, 2}, {"rows", "seed", NULL, 3}, {"metrics", "bleu", NULL, 4}};
    an = section("table", kv2, LS_COUNT(kv2));
    CHECK(exp_table(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "eval.json: not valid JSON (a damaged run record)");
    unlink(path);
    snprintf(path, sizeof path, "%s/metrics.jsonl", f.dir[0]);
    CHECK(ls_write_file_atomic(path, "{\"step\":0,\"val_loss\":5.0}\n{\"step\":6,\"val_", 38) == 0);
    an = section("table", kv, LS_COUNT(kv));
    CHECK(exp_table(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "metrics.jsonl:2: not valid JSON (a damaged run record)");
    report_rollback();
}

// best_KEY: the best evaluation after step 0 (the paper's "best epoch"), the
// largest for an accuracy and the smallest for a loss; the base model's step-0
// evaluation never counts, even where it is the best, and a run evaluated
// only at step 0 has no such value. Without rows, one row over `over`;
// median = yes adds each cell's median.
static void test_table_best_metric_is_the_best_evaluation_after_step_0(void) {
    const char *tmp = ls_test_tmpdir("exp_table_best");
    fixture f;
    fixture_build(&f, tmp);
    static const char *const lines[2] = {
        "{\"step\":0,\"val_loss\":0.1,\"val_accuracy\":0.9}\n{\"step\":10,\"val_loss\":0.5,\"val_accuracy\":0.8}\n"
        "{\"step\":15,\"loss\":0.05}\n{\"step\":20,\"val_loss\":0.4,\"val_accuracy\":0.85}\n"
        "{\"step\":30,\"val_loss\":0.6,\"val_accuracy\":0.82}\n",
        "{\"step\":0,\"val_loss\":0.7,\"val_accuracy\":0.5}\n{\"step\":10,\"val_loss\":0.45,\"val_accuracy\":0.7}\n"};
    char path[4500], out[4400];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/metrics.jsonl", f.dir[i]);
        CHECK(ls_write_file_atomic(path, lines[i], strlen(lines[i])) == 0);
    }
    exp_kv kv[] = {{"kind", "table", NULL, 2},
                   {"rows", "seed", NULL, 3},
                   {"metrics", "best_val_accuracy, best_val_loss, val_accuracy", NULL, 4}};
    exp_analysis an = section("table", kv, LS_COUNT(kv));
    snprintf(out, sizeof out, "%s/out", tmp);
    CHECK_MSG(exp_table(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());
    check_file_contains(out, "s.tsv", "\n1\t0.85\t0\tnan\t0.4\t0\tnan\t0.82\t0\tnan\t1\n");
    check_file_contains(out, "s.tsv", "\n2\t0.7\t0\tnan\t0.45\t0\tnan\t0.7\t0\tnan\t1\n");
    check_file_contains(out, "s.md", "| best val. accuracy | best val. loss | val. accuracy |");
    // without rows: one row over the seeds, (0.85 + 0.7) / 2 with std 0.15 / sqrt 2; the
    // median of best_val_loss (0.4, 0.45) is 0.425, of val_accuracy (0.82, 0.7) 0.76
    exp_kv kv1[] = {{"kind", "table", NULL, 2}, {"over", "seed", NULL, 3},
                    {"metrics", "best_val_accuracy, best_val_loss, val_accuracy", NULL, 4}, {"output", "all", NULL, 5},
                    {"median", "yes", NULL, 6}};
    exp_analysis an1 = section("table", kv1, LS_COUNT(kv1));
    CHECK_MSG(exp_table_check(&f.e, &an1) == 0, "%s", ls_error());
    CHECK_MSG(exp_table(&f.e, &an1, f.runs, 2, out, 1) == 0, "%s", ls_error());
    char want[128];
    snprintf(want, sizeof want, "seed\tbest_val_accuracy_mean\tbest_val_accuracy_std\tbest_val_accuracy_ci95\t"
             "best_val_accuracy_median\tbest_val_loss_mean\t");
    check_file_contains(out, "all.tsv", want);
    snprintf(want, sizeof want, "\nall\t0.775\t%.6g\t%.6g\t0.775\t0.425\t", 0.15 / sqrt(2), an_t975(1) * 0.15 / 2);
    check_file_contains(out, "all.tsv", want);
    check_file_contains(out, "all.tsv", "\t0.76\t2\n");
    check_file_contains(out, "all.md", "| seed | best val. accuracy | best val. loss | val. accuracy | n |\n"
                        "|:---|---:|---:|---:|---:|\n| all | 0.7750 ± 0.1061 [");
    check_file_contains(out, "all.md", "], median 0.7600 | 2 |\n");
    kv1[4].value = "maybe";
    CHECK(exp_table_check(&f.e, &an1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "t.ini:1: [analysis s] median: expected yes or no, found 'maybe'");
    kv1[4].value = "yes";
    exp_kv kv0[] = {{"kind", "table", NULL, 2}, {"metrics", "best_val_accuracy", NULL, 4}};
    CHECK(exp_table_check(&f.e, &(exp_analysis){.name = "s", .kind = "table", .n_kv = 2, .kv = kv0, .line = 1}) == -1);
    CHECK_STR_CONTAINS(ls_error(), "t.ini:1: [analysis s] kind table needs 'metrics', and 'rows' (axes) or 'over'");
    report_list();
    snprintf(path, sizeof path, "%s/metrics.jsonl", f.dir[1]);
    CHECK(ls_write_file_atomic(path, lines[1], strchr(lines[1], '\n') + 1 - lines[1]) == 0);
    CHECK(exp_table(&f.e, &an, f.runs, 2, out, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "metric 'best_val_accuracy' not found in any run of row 2");
    report_rollback();
}

// kind curve: one TSV a run of (step, metric); `from` drops the steps before
// it (the base model's step-0 evaluation, which squeezes an accuracy curve).
static void test_curve_from_drops_the_earlier_steps(void) {
    const char *tmp = ls_test_tmpdir("exp_curve_from");
    fixture f;
    fixture_build(&f, tmp);
    static const char metrics[] = "{\"step\":0,\"val_accuracy\":0.5}\n{\"step\":5,\"loss\":0.3}\n"
                                  "{\"step\":10,\"val_accuracy\":0.8}\n{\"step\":20,\"val_accuracy\":0.85}\n";
    char path[4500], out[4400];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/metrics.jsonl", f.dir[i]);
        CHECK(ls_write_file_atomic(path, metrics, strlen(metrics)) == 0);
    }
    exp_kv kv[] = {{"kind", "curve", NULL, 2}, {"runs", "seed=*", NULL, 3}, {"metric", "val_accuracy", NULL, 4},
                   {"from", "1", NULL, 5}};
    exp_analysis an = section("curve", kv, LS_COUNT(kv));
    snprintf(out, sizeof out, "%s/out", tmp);
    CHECK_MSG(exp_curve_check(&f.e, &an, f.runs, 2) == 0, "%s", ls_error());
    CHECK_MSG(exp_curve(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());
    check_file_contains(out, "data/s/2.tsv", "# step\tval_accuracy (2)\n10\t0.8\n20\t0.85\n");
    an.n_kv = 3; // without from: step 0 too
    CHECK_MSG(exp_curve(&f.e, &an, f.runs, 2, out, 1) == 0, "%s", ls_error());
    check_file_contains(out, "data/s/1.tsv", "# step\tval_accuracy (1)\n0\t0.5\n10\t0.8\n");
    an.n_kv = 4;
    kv[3].value = "-1";
    CHECK(exp_curve_check(&f.e, &an, f.runs, 2) == -1);
    CHECK_STR_CONTAINS(ls_error(), "t.ini:1: [analysis s] from: expected an integer in [0, 1073741824], found '-1'");
    report_rollback();
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_amplify_section_matches_direct_request),
        LS_TEST(test_subspace_section_compares_a_with_b),
        LS_TEST(test_subspace_pairs_of_seeds_with_initial_factors),
        LS_TEST(test_section_errors_name_file_and_section),
        LS_TEST(test_table_refuses_a_damaged_run_record),
        LS_TEST(test_selector_matches_every_run_of_a_repeated_zipped_value),
        LS_TEST(test_table_groups_a_repeated_zipped_value_into_one_row),
        LS_TEST(test_table_compare_gives_welch_t_between_rows),
        LS_TEST(test_run_is_complete_for_every_method_s_weights),
        LS_TEST(test_table_best_metric_is_the_best_evaluation_after_step_0),
        LS_TEST(test_curve_from_drops_the_earlier_steps),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
