// The reduced reproduction (meson test --setup repro --suite repro), two
// experiments, each a test process of its own (they run side by side):
//   repro_claims: the runs of tests/data/experiments/repro.ini on
//     stories260K / E2E (LoRA on Wq, Wv, r = 2 and r = 16, seeds 1, 2 and 3);
//     and then experiments/full/table5.ini itself (Table 5's fixed budget,
//     8 runs of about 20 s);
//   repro_claims_minilm: those of repro_minilm.ini, all-MiniLM-L6-v2 on SST-2
//     at the paper's ranks r = 8 and 64, seeds 1 and 2 (d = 384);
// one thread per run, as the committed runs, so the same bits. It runs the
// paper's analyses and checks each claim of Sec. 7 by its margin over the
// chance band that random matrices of the same shapes give
// (analysis/chance.h: exact chance means, Monte Carlo 95th / 99th
// percentiles, written beside every value in the analyses' TSVs). A claim
// that holds is asserted as holding; one that does not hold at d = 64 is
// asserted as the honest verdict (the measured values sit inside the chance
// band), never dropped. The numbers are in results/README.md.
#include <sys/wait.h>

#include "base/util.h"
#include "harness.h"

typedef struct {
    const char *ini, *name, *asset; // experiment file (under tests/), its name, the asset it needs
    char results[4096];
    int ready;                      // -1: not run yet
} repro_exp;

static repro_exp STORIES = {"data/experiments/repro.ini", "repro", "models/stories260K/stories260K.bin", "", -1};
static repro_exp MINILM = {"data/experiments/repro_minilm.ini", "repro_minilm", "models/all-MiniLM-L6-v2", "", -1};
static repro_exp TABLE5 = {"../experiments/full/table5.ini", "table5", "models/stories260K/stories260K.bin", "", -1};
static repro_exp *cur; // the experiment whose outputs the running test reads

// Runs an experiment once per process (every test of it reads its outputs).
static int prepare(repro_exp *x) {
    cur = x;
    if (x->ready >= 0) return x->ready;
    const char *exe = getenv("LORASCOPE_BIN");
    snprintf(x->results, sizeof x->results, "%s", ls_test_tmpdir(x->name));
    char cmd[12000];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run %s --results '%s' --threads 1 --no-plot >/dev/null 2>'%s/log.txt'",
             ls_test_source(""), exe, x->ini, x->results, x->results);
    int st = system(cmd);
    x->ready = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!x->ready) fprintf(stderr, "lorascope run %s failed; see %s/log.txt\n", x->ini, x->results);
    return x->ready;
}

// The text of <results>/<experiment>/<file>, or NULL.
static char *read_result(const char *file) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s/%s", cur->results, cur->name, file);
    return ls_read_file(path, NULL);
}

// Field `col` (0-based, tab-separated) of one line, as a number (NAN if absent).
static double field(const char *line, int col) {
    const char *p = line;
    for (int c = 0; c < col && p; c++) {
        p = strchr(p, '\t');
        if (p) p++;
    }
    return p && *p != '\t' && *p != '\n' && *p ? strtod(p, NULL) : NAN;
}

// The 0-based index of column `name` in a TSV's header line, or -1.
static int column_of(const char *text, const char *name) {
    size_t n = strlen(name);
    int col = 0;
    for (const char *p = text; *p && *p != '\n'; col++) {
        const char *end = p + strcspn(p, "\t\n");
        if ((size_t)(end - p) == n && !strncmp(p, name, n)) return col;
        p = *end == '\t' ? end + 1 : end;
    }
    return -1;
}

// Column `name` of the row of the experiment's <file> whose line starts with `key`.
static double value(const char *file, const char *key, const char *name) {
    char *text = read_result(file);
    if (!text) return NAN;
    int col = column_of(text, name);
    double v = NAN;
    for (char *line = strchr(text, '\n'); line && col >= 0; line = strchr(line, '\n')) {
        line++;
        if (!strncmp(line, key, strlen(key))) {
            v = field(line, col);
            break;
        }
    }
    free(text);
    return v;
}

#define NEED(x) \
    do { if (!ls_test_asset((x)->asset)) SKIP("%s not present", (x)->asset); \
         if (!prepare(x)) { CHECK_MSG(0, "the reproduction run %s failed", (x)->ini); return; } } while (0)
#define NEED_ASSETS() NEED(&STORIES)

// Over every row (pair x layer x module) of <analysis>_pairs.tsv:
// how many have column `stat` above column `p99` (the chance 99th percentile
// of φ for random subspaces of the cell's shape); *rows gets the row count.
static int count_pairs_above_p99(const char *analysis, const char *stat, const char *p99, int *rows) {
    char file[256];
    snprintf(file, sizeof file, "%s_pairs.tsv", analysis);
    char *text = read_result(file);
    *rows = 0;
    CHECK_MSG(text != NULL, "no %s", file);
    if (!text) return 0;
    int c = column_of(text, stat), cp = column_of(text, p99), above = 0;
    CHECK_MSG(c >= 0 && cp >= 0, "%s lacks %s or %s", file, stat, p99);
    for (char *line = strchr(text, '\n'); c >= 0 && cp >= 0 && line && line[1]; line = strchr(line, '\n')) {
        line++;
        double v = field(line, c), band = field(line, cp);
        CHECK_MSG(!isnan(v) && !isnan(band), "%s: a row without %s or %s", file, stat, p99);
        above += v > band;
        (*rows)++;
    }
    printf("  %s: %s above the chance p99 in %d of %d rows\n", file, stat, above, *rows);
    free(text);
    return above;
}

// Sec. 7.2, Fig. 3: "the top singular vector directions of A_{r=8} and
// A_{r=64} overlap significantly" (a shared direction with φ > 0.5). Here
// r = 2 vs 16 (the same ratio), always across seeds: A_2 of seed s against
// A_16 of seed s' != s, 6 pairs x 5 layers x {Wq, Wv} = 60 rows. Statistic:
// φ(A_2, A_16, 1, 16), the share of A_2's top direction inside A_16's span;
// for random subspaces of R^64 its mean is 0.25 and its 99th percentile about
// 0.44 (0.6 of 60 rows by chance). The same for A − A₀, what training moved.
// Measured (results/fig3/all_layers_pairs.tsv, the same bits): A above the
// p99 in 48 of 60 rows (Wq 25 of 30, Wv 23 of 30; φ 0.25-0.71), A − A₀ in 60
// of 60 (φ 0.53-0.92). Asserted: at least 40 and 54 of 60 (chance: 0.6).
#define FIG3_MIN_A 40
#define FIG3_MIN_D 54
static void test_claim_top_direction_of_small_rank_lies_in_large_rank_span(void) {
    NEED_ASSETS();
    int rows, rows_d;
    int above = count_pairs_above_p99("ranks", "phi_1_r2", "phi_1_r2_p99", &rows);
    int above_d = count_pairs_above_p99("ranks", "dphi_1_r2", "phi_1_r2_p99", &rows_d);
    CHECK_INT(rows, 60);
    CHECK_MSG(above >= FIG3_MIN_A, "φ(A_2, A_16, 1, 16) across seeds above the random 99th percentile in %d of %d "
              "rows, expected >= %d", above, rows, FIG3_MIN_A);
    CHECK_MSG(above_d >= FIG3_MIN_D, "φ of A − A₀ (1, 16) across seeds above the random 99th percentile in %d of %d "
              "rows, expected >= %d", above_d, rows_d, FIG3_MIN_D);
}

// The pairs start from independent initial A's (issue 12: ranks of one seed
// used to share theirs, φ(A_2⁰, A_16⁰, 1, 16) = 1): φ of A₀ sits in the chance
// band: measured 2 of 60 (ranks) and 0 of 30 (seeds) rows above the p99
// (chance: 0.6 and 0.3; a shared A₀ puts every row at 1). Asserted: at most
// 4 of 60 and 2 of 30.
static void test_initial_A_of_compared_runs_is_at_chance(void) {
    NEED_ASSETS();
    int rows_r, rows_s;
    int ranks = count_pairs_above_p99("ranks", "init_phi_1_r2", "phi_1_r2_p99", &rows_r);
    int seeds = count_pairs_above_p99("seeds", "init_phi_1_1", "phi_1_1_p99", &rows_s);
    CHECK_INT(rows_r, 60);
    CHECK_INT(rows_s, 30);
    CHECK_MSG(ranks <= 4, "φ(A_2⁰, A_16⁰, 1, 16) above the random p99 in %d of 60 rows: the runs share their initial A",
              ranks);
    CHECK_MSG(seeds <= 2, "φ(A_s⁰, A_s'⁰, 1, 1) above the random p99 in %d of 30 rows: the seeds share their initial A",
              seeds);
}

// Sec. 7.2, Fig. 4: the top directions learned from two random seeds overlap
// far more than random subspaces do. φ(A_s, A_s', 1, 1) at r = 16, every pair
// of seeds 1, 2, 3 (3 pairs x 10 rows): for random directions in R^64 its mean
// is 1/64 and its 99th percentile about 0.10 (0.3 of 30 rows by chance).
// Measured (results/fig4/all_layers_pairs.tsv): A above the p99 in 28 of 30
// rows (φ 0.03-0.85; below: Wv at layer 3 in two pairs, a near-tie of the top
// two singular values, where φ(2, 2) is 0.24-0.69, all above its p99), A − A₀
// in 28 of 30. Asserted: at least 25 of 30 for each (chance: 0.3).
#define FIG4_MIN_A 25
#define FIG4_MIN_D 25
static void test_claim_seeds_share_top_directions_far_above_random(void) {
    NEED_ASSETS();
    int rows, rows_d;
    int above = count_pairs_above_p99("seeds", "phi_1_1", "phi_1_1_p99", &rows);
    int above_d = count_pairs_above_p99("seeds", "dphi_1_1", "phi_1_1_p99", &rows_d);
    CHECK_INT(rows, 30);
    CHECK_MSG(above >= FIG4_MIN_A, "φ(1, 1) between seeds above the random 99th percentile in %d of 30 rows, "
              "expected >= %d", above, FIG4_MIN_A);
    CHECK_MSG(above_d >= FIG4_MIN_D, "φ(1, 1) of A − A₀ between seeds above the random 99th percentile in %d of 30 "
              "rows, expected >= %d", above_d, FIG4_MIN_D);
}

// Sec. 7.3, Table 7: "ΔW has a stronger correlation with W compared to a
// random matrix, indicating that ΔW amplifies some features that are already
// in W", by a factor ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔW‖_F (21.5 at r = 4). The claim is
// the LOWER tail of that factor: the paper's random column is the chance
// level r ‖W‖_F / √(d k) (4 · 61.95 / 12288 = 0.0202), so its ΔWq projects
// 15.8× (r = 4) and 5.9× (r = 64) more onto W than random directions, and its
// factor is 0.06× a random ΔW's of the same norm. (An earlier version of this
// test counted factors ABOVE the random ΔW's band, the tail the paper's own
// numbers sit far below: it could not have told the claim from its absence.)
// NOT HOLDING at d = 64, asserted as such: over 3 seeds x 2 ranks x 5 layers
// x {Wq, Wv} = 60 rows (results/table7/table7{,_seed2,_seed3}.tsv),
// ‖U_ΔWᵀ W V_ΔW‖_F is 0.24-2.71x its chance level, above the random p99 in 4
// rows (chance: 0.6) and the p95 in 7 (chance: 3): weakly above chance, far
// from the paper's 15.8x. Asserted: every row at most 4x chance and at most 8
// of 60 above the p99; an alignment near the paper's would fail here and
// call for a new verdict.
static void test_verdict_delta_w_alignment_with_w_is_far_below_the_papers(void) {
    NEED_ASSETS();
    int above99 = 0, above95 = 0, rows = 0;
    double max_ratio = 0.0;
    for (int seed = 1; seed <= 3; seed++) {
        char file[64];
        snprintf(file, sizeof file, "amplify_seed%d.tsv", seed);
        char *text = read_result(file);
        CHECK_MSG(text != NULL, "no %s", file);
        if (!text) return;
        int c_proj = column_of(text, "proj_dW"), c95 = column_of(text, "proj_chance_p95");
        int c99 = column_of(text, "proj_chance_p99"), c_ratio = column_of(text, "proj_dW_ratio");
        int c_factor = column_of(text, "amplification"), c_fratio = column_of(text, "factor_ratio");
        CHECK_MSG(c_proj >= 0 && c95 >= 0 && c99 >= 0 && c_ratio >= 0 && c_factor >= 0 && c_fratio >= 0,
                  "%s lacks the chance columns", file);
        for (char *line = strchr(text, '\n'); line && line[1]; line = strchr(line, '\n')) {
            line++;
            double proj = field(line, c_proj), p95 = field(line, c95), p99 = field(line, c99);
            double ratio = field(line, c_ratio);
            CHECK_MSG(!isnan(proj) && !isnan(p95) && !isnan(p99) && !isnan(ratio), "%s: a row without its band", file);
            printf("  seed %d r %2.0f layer %.0f: ‖U_ΔWᵀWV_ΔW‖ %.4f, random p95 %.4f p99 %.4f, ÷ chance %.2f; "
                   "factor %.3f, ÷ a random ΔW's %.2f\n", seed, field(line, 1), field(line, 2), proj, p95, p99, ratio,
                   field(line, c_factor), field(line, c_fratio));
            above95 += proj > p95;
            above99 += proj > p99;
            max_ratio = fmax(max_ratio, ratio);
            rows++;
        }
        free(text);
    }
    printf("ΔW's alignment with W: %d of %d rows above the random p95, %d above the p99, at most %.2fx chance "
           "(the paper: 15.8x at r = 4)\n", above95, rows, above99, max_ratio);
    CHECK_INT(rows, 60);
    CHECK_MSG(max_ratio <= 4.0, "‖U_ΔWᵀWV_ΔW‖_F reaches %.2fx its chance level: the verdict 'far below the paper's "
              "15.8x at d = 64' no longer holds (results/README.md)", max_ratio);
    CHECK_MSG(above99 <= 8, "%d of %d rows above the random 99th percentile (chance: 0.6; measured 4)", above99, rows);
}

// LoRA on Wq, Wv learns the task: validation loss on E2E test completions far
// below the pretrained model's (4.78). Measured after 120 steps, mean over 3
// seeds: 3.48 (r = 2), 3.27 (r = 16).
// Asserted: at least 1.0 nat below the base, for both ranks and seeds.
static void test_claim_lora_validation_loss_falls_far_below_base(void) {
    NEED_ASSETS();
    for (int r = 0; r < 2; r++) {
        const char *key = r ? "16\t" : "2\t";
        // columns: rank val_loss_mean val_loss_std base_val_loss_mean base_val_loss_std n
        double loss = value("losses.tsv", key, "val_loss_mean"), base = value("losses.tsv", key, "base_val_loss_mean");
        printf("rank %s: val loss %.4f, base %.4f\n", r ? "16" : "2", loss, base);
        CHECK_MSG(loss <= base - 1.0, "rank %s: validation loss %.4f not 1 nat below the base's %.4f", r ? "16" : "2",
                  loss, base);
    }
}

// Sec. 7.1, Table 5: under one budget of trainable parameters, spreading it
// over more weight types beats a higher rank on fewer, and Wq alone is the
// worst choice (GPT-3, WikiSQL: 70.4 / 73.0 / 73.7 / 73.7 for Wq r = 8 / Wv
// r = 8 / {Wq, Wv} r = 4 / all four r = 2). Here experiments/full/table5.ini
// itself: stories260K on E2E, 200 steps, seeds 1 and 2, the committed runs'
// bits. Measured validation loss (mean ± std): 3.554 ± 0.023, 3.322 ± 0.036,
// 3.023 ± 0.027, 2.783 ± 0.037; each step down the list Welch p = 0.025,
// 0.014, 0.022 (df about 2). Asserted: each step lowers the mean loss by more
// than 3 times the larger seed std of the two rows, with Welch p < 0.05.
static void test_claim_table5_more_weight_types_beat_a_higher_rank(void) {
    NEED(&TABLE5);
    static const char *const rows[4] = {"q\t8\t", "v\t8\t", "q,v\t4\t", "q,k,v,o\t2\t"};
    static const char *const pairs[3] = {"q / 8\tv / 8\t", "v / 8\tq,v / 4\t", "q,v / 4\tq,k,v,o / 2\t"};
    for (int i = 0; i < 3; i++) {
        double a = value("table5.tsv", rows[i], "val_loss_mean"), b = value("table5.tsv", rows[i + 1], "val_loss_mean");
        double sa = value("table5.tsv", rows[i], "val_loss_std"), sb = value("table5.tsv", rows[i + 1], "val_loss_std");
        double p = value("table5_compare.tsv", pairs[i], "p_two_sided");
        double spread = sa > sb ? sa : sb;
        printf("%.*s: val loss %.4f ± %.4f, next %.4f ± %.4f, Welch p %.4f\n", (int)strcspn(pairs[i], "\t"), pairs[i], a,
               sa, b, sb, p);
        CHECK_MSG(a - b > 3 * spread, "%.*s: the loss falls by %.4f, not more than 3 x the seed std %.4f",
                  (int)strcspn(pairs[i], "\t"), pairs[i], a - b, spread);
        CHECK_MSG(p < 0.05, "%.*s: Welch p = %.4f, expected < 0.05", (int)strcspn(pairs[i], "\t"), pairs[i], p);
    }
}

// ----------------------------------------------------------------------------
// all-MiniLM-L6-v2 at the paper's ranks (repro_minilm.ini): r = 8 against
// r = 64 at d = 384, seeds 1 and 2, 6 layers x {Wq, Wv}. The claims asserted
// are those whose margins held over the full experiment's three seeds
// (experiments/minilm_sec7.ini, results/README.md); the counts below are
// this reduced run's (seeds 1 and 2 of the same runs, the same bits).

// Fig. 3 at the paper's ranks: φ(A_8, A_64, 1, 64) across seeds (2 pairs x
// 12 rows); chance mean 64/384 = 0.167, p99 0.230 (0.24 of 24 rows by
// chance). Measured: A above the p99 in 22 of 24 rows (Wq 10, Wv 12), A − A₀
// in 24 of 24. Asserted: at least 18 and 22 of 24.
static void test_minilm_claim_top_direction_of_r8_lies_in_r64_span(void) {
    NEED(&MINILM);
    int rows, rows_d;
    int above = count_pairs_above_p99("ranks", "phi_1_r2", "phi_1_r2_p99", &rows);
    int above_d = count_pairs_above_p99("ranks", "dphi_1_r2", "phi_1_r2_p99", &rows_d);
    CHECK_INT(rows, 24);
    CHECK_MSG(above >= 18, "φ(A_8, A_64, 1, 64) across seeds above the random 99th percentile in %d of 24 rows, "
              "expected >= 18", above);
    CHECK_MSG(above_d >= 22, "φ of A − A₀ (1, 64) across seeds above the random 99th percentile in %d of 24 rows, "
              "expected >= 22", above_d);
}

// The same on the B side (left singular vectors, our extension): measured
// 24 of 24 above the p99. Asserted: at least 22.
static void test_minilm_claim_B_of_r8_lies_in_B_of_r64_span(void) {
    NEED(&MINILM);
    int rows;
    int above = count_pairs_above_p99("ranks_B", "phi_1_r2", "phi_1_r2_p99", &rows);
    CHECK_INT(rows, 24);
    CHECK_MSG(above >= 22, "φ(B_8, B_64, 1, 64) across seeds above the random 99th percentile in %d of 24 rows, "
              "expected >= 22", above);
}

// Fig. 4 at r = 64: φ(A_1, A_2, 1, 1) of the two seeds (12 rows); chance
// mean 1/384, p99 0.016 (0.12 of 12 rows by chance). Measured: 11 of 12 above
// the p99 for A and for A − A₀ (below: Wq at layer 4). Their initial A's:
// at chance. Asserted: at least 9 of 12; at most 1 of 12 for A₀ (and 2 of
// 24 for the ranks' A₀).
static void test_minilm_claim_seeds_share_top_directions_far_above_random(void) {
    NEED(&MINILM);
    int rows, rows_d, rows_0, rows_0r;
    int above = count_pairs_above_p99("seeds", "phi_1_1", "phi_1_1_p99", &rows);
    int above_d = count_pairs_above_p99("seeds", "dphi_1_1", "phi_1_1_p99", &rows_d);
    int init = count_pairs_above_p99("seeds", "init_phi_1_1", "phi_1_1_p99", &rows_0);
    int init_r = count_pairs_above_p99("ranks", "init_phi_1_r2", "phi_1_r2_p99", &rows_0r);
    CHECK_INT(rows, 12);
    CHECK_MSG(above >= 9 && above_d >= 9, "φ(1, 1) between seeds at r = 64 above the random 99th percentile in %d "
              "(A) and %d (A − A₀) of 12 rows, expected >= 9", above, above_d);
    CHECK_MSG(init <= 1 && init_r <= 2, "the initial A's above the random p99 in %d of 12 (seeds) and %d of 24 "
              "(ranks) rows: the runs share their initial A", init, init_r);
}

// LoRA on Wq, Wv (classifier trained) learns SST-2 in 200 steps: dev
// accuracy (872 sentences; majority class 50.9%, the untrained head 52.2%).
// Measured, mean of seeds 1 and 2: r = 8 and r = 64 about 81%. Asserted:
// at least 75% at both ranks.
static void test_minilm_lora_learns_sst2_at_both_ranks(void) {
    NEED(&MINILM);
    for (int r = 0; r < 2; r++) {
        const char *key = r ? "64\t" : "8\t";
        double acc = value("accuracy.tsv", key, "val_accuracy_mean");
        printf("rank %s: dev accuracy %.4f\n", r ? "64" : "8", acc);
        CHECK_MSG(acc >= 0.75, "rank %s: SST-2 dev accuracy %.4f, expected >= 0.75", r ? "64" : "8", acc);
    }
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_claim_top_direction_of_small_rank_lies_in_large_rank_span),
        LS_TEST(test_initial_A_of_compared_runs_is_at_chance),
        LS_TEST(test_claim_seeds_share_top_directions_far_above_random),
        LS_TEST(test_verdict_delta_w_alignment_with_w_is_far_below_the_papers),
        LS_TEST(test_claim_lora_validation_loss_falls_far_below_base),
        LS_TEST(test_claim_table5_more_weight_types_beat_a_higher_rank),
        LS_TEST(test_minilm_claim_top_direction_of_r8_lies_in_r64_span),
        LS_TEST(test_minilm_claim_B_of_r8_lies_in_B_of_r64_span),
        LS_TEST(test_minilm_claim_seeds_share_top_directions_far_above_random),
        LS_TEST(test_minilm_lora_learns_sst2_at_both_ranks),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
