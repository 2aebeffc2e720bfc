// The reduced reproduction (meson test --setup repro --suite repro): trains the
// runs of tests/data/experiments/repro.ini on stories260K / E2E (LoRA on Wq,
// Wv, r = 2 and r = 16, seeds 1 and 2), runs the paper's analyses, and checks
// each claim of Sec. 7 by its margin over the chance band that random
// matrices of the same shapes give (analysis/chance.h: exact chance means,
// Monte Carlo 95th / 99th percentiles, written beside every value in the
// analyses' TSVs). A claim that holds is asserted as holding; one that does
// not hold at d = 64 is asserted as the honest verdict (the measured values
// sit inside the chance band), never dropped. The numbers are in
// results/README.md.
#include <sys/wait.h>

#include "base/util.h"
#include "harness.h"

static char results[4096];
static int ready = -1;

// Runs the experiment once per process (every test reads its outputs).
static int prepare(void) {
    if (ready >= 0) return ready;
    const char *exe = getenv("LORASCOPE_BIN");
    snprintf(results, sizeof results, "%s", ls_test_tmpdir("repro"));
    char cmd[12000];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run data/experiments/repro.ini --results '%s' --no-plot >/dev/null 2>'%s/log.txt'",
             ls_test_source(""), exe, results, results);
    int st = system(cmd);
    ready = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ready) fprintf(stderr, "lorascope run failed; see %s/log.txt\n", results);
    return ready;
}

// The text of results/repro/<file>, or NULL.
static char *read_result(const char *file) {
    char path[8192];
    snprintf(path, sizeof path, "%s/repro/%s", results, file);
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

// Column `name` of the row of results/repro/<file> whose line starts with `key`.
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

#define NEED_ASSETS() \
    do { if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present"); \
         if (!prepare()) { CHECK_MSG(0, "the reproduction run failed"); return; } } while (0)

// Over the 5 layers x {Wq, Wv} of a subspace analysis: how many rows have
// `stat` (phi_1_1, phi_1_r2, ...) above its chance 99th percentile
// (<stat>_p99), and the smallest ratio to the chance mean (<stat>_ratio).
static int count_above_p99(const char *analysis, const char *stat, double *min_ratio) {
    char file[256], p99[64], ratio[64];
    snprintf(file, sizeof file, "%s.tsv", analysis);
    snprintf(p99, sizeof p99, "%s_p99", stat);
    snprintf(ratio, sizeof ratio, "%s_ratio", stat);
    int above = 0;
    *min_ratio = INFINITY;
    for (int layer = 0; layer < 5; layer++)
        for (int m = 0; m < 2; m++) {
            char key[64];
            snprintf(key, sizeof key, "%d\t%s\t", layer, m ? "v" : "q");
            double v = value(file, key, stat), band = value(file, key, p99), q = value(file, key, ratio);
            CHECK_MSG(!isnan(v) && !isnan(band) && !isnan(q), "%s: no %s / %s for layer %d %s", file, stat, p99,
                      layer, m ? "v" : "q");
            printf("  %s layer %d W%s: %s = %.4f, chance p99 %.4f, %.2fx the chance mean%s\n", analysis, layer,
                   m ? "v" : "q", stat, v, band, q, v > band ? "" : "  (within the chance band)");
            above += v > band;
            *min_ratio = fmin(*min_ratio, q);
        }
    return above;
}

// Sec. 7.2, Fig. 3: "the top singular vector directions of A_{r=8} and
// A_{r=64} overlap significantly". Here r = 2 vs 16 (the same ratio), always
// across seeds (rank 2 of seed 1 vs rank 16 of seed 2, and the reverse): ranks
// of one seed share their initial A, which makes the overlap largely inherited
// (issue 12). Statistic: φ(A_2, A_16, 1, 16), the share of A_2's top
// direction inside A_16's span; for random subspaces of R^64 its mean is 0.25
// and its 99th percentile about 0.44, so by chance about 0.2 of the 20 rows
// would clear it. Measured: 16 of 20 rows above the p99 (the exceptions are Wv
// at layer 3 in both pairs and Wv at layers 0 and 4 in one); ratio to chance
// 1.2-3.0. Asserted: at least 12 of 20 above the chance p99.
static void test_claim_top_direction_of_small_rank_lies_in_large_rank_span(void) {
    NEED_ASSETS();
    double r12, r21;
    int above = count_above_p99("ranks_cross12", "phi_1_r2", &r12) + count_above_p99("ranks_cross21", "phi_1_r2", &r21);
    printf("phi(A_2, A_16, 1, 16) across seeds: %d of 20 rows above the chance p99 (min ratio %.2f)\n", above,
           fmin(r12, r21));
    CHECK_MSG(above >= 12, "φ(1, 16) across seeds above the random 99th percentile in %d of 20 rows, expected >= 12",
              above);
}

// Sec. 7.2, Fig. 4: the top directions learned from two random seeds overlap
// far more than random subspaces do. φ(A_seed1, A_seed2, 1, 1) at r = 16: for
// random directions in R^64 it has mean 1/64 and 99th percentile about 0.10.
// Measured: every layer and module above the p99, at 20-51x the chance mean
// (minimum 0.32). Asserted: at least 9 of 10 rows above the p99, and the
// smallest at least 5x the chance mean.
static void test_claim_seeds_share_top_directions_far_above_random(void) {
    NEED_ASSETS();
    double min_ratio;
    int above = count_above_p99("seeds", "phi_1_1", &min_ratio);
    printf("phi(A_s1, A_s2, 1, 1): %d of 10 rows above the chance p99, smallest ratio %.1f\n", above, min_ratio);
    CHECK_MSG(above >= 9, "φ(1, 1) between seeds above the random 99th percentile in %d of 10 rows, expected >= 9",
              above);
    CHECK_MSG(min_ratio >= 5.0, "smallest φ(1, 1) between seeds is %.2fx its chance mean, expected >= 5", min_ratio);
}

// Sec. 7.3, Table 7: ΔW amplifies directions of W that W does not emphasize,
// "by a factor" ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔW‖_F that is large at a small rank.
// NOT HOLDING at d = 64, asserted as such: a random ΔW of the same norm and
// rank (Haar U, V) shows a factor ‖ΔW‖_F / ‖UᵀWV‖_F with chance level
// ‖ΔW‖_F √(d k) / (r ‖W‖_F), and the measured factors sit inside that band:
// ‖U_ΔWᵀ W V_ΔW‖_F is 0.35-2.6x its random level r ‖W‖_F / √(d k) at r = 2
// and 0.84-1.16x at r = 16. Measured over 2 seeds x 2 ranks x 5 layers x
// {Wq, Wv} = 40 rows: 0 factors above the random ΔW's 99th percentile, 1
// above its 95th (chance: 0.4 and 2). The old assertion factor(r = 2) >
// factor(r = 16) was near-guaranteed by s = α/r and is gone. Asserted: at most
// 3 of 40 above the random p99 and at most 6 above the random p95; a factor
// well above the band at this scale would fail here and call for a new verdict.
static void test_verdict_amplification_is_within_the_random_delta_w_band(void) {
    NEED_ASSETS();
    int above99 = 0, above95 = 0, rows = 0;
    for (int seed = 1; seed <= 2; seed++) {
        char file[64];
        snprintf(file, sizeof file, "amplify_seed%d.tsv", seed);
        char *text = read_result(file);
        CHECK_MSG(text != NULL, "no %s", file);
        if (!text) return;
        int c_factor = column_of(text, "amplification"), c95 = column_of(text, "factor_chance_p95");
        int c99 = column_of(text, "factor_chance_p99"), c_ratio = column_of(text, "factor_ratio");
        int c_proj = column_of(text, "proj_dW_ratio");
        CHECK_MSG(c_factor >= 0 && c95 >= 0 && c99 >= 0 && c_ratio >= 0 && c_proj >= 0, "%s lacks the chance columns",
                  file);
        for (char *line = strchr(text, '\n'); line && line[1]; line = strchr(line, '\n')) {
            line++;
            double f = field(line, c_factor), p95 = field(line, c95), p99 = field(line, c99);
            CHECK_MSG(!isnan(f) && !isnan(p95) && !isnan(p99), "%s: a row without its factor band", file);
            printf("  seed %d r %2.0f layer %.0f: factor %7.3f, random ΔW p95 %7.3f p99 %7.3f, factor / chance %.2f, "
                   "‖U_ΔWᵀWV_ΔW‖ / chance %.2f\n", seed, field(line, 1), field(line, 2), f, p95, p99,
                   field(line, c_ratio), field(line, c_proj));
            above95 += f > p95;
            above99 += f > p99;
            rows++;
        }
        free(text);
    }
    printf("amplification factor above the random-ΔW band: %d of %d rows above p95, %d above p99\n", above95, rows,
           above99);
    CHECK_INT(rows, 40);
    CHECK_MSG(above99 <= 3, "%d of %d factors above the random ΔW's 99th percentile: the verdict 'within the band at "
              "d = 64' no longer holds (results/README.md)", above99, rows);
    CHECK_MSG(above95 <= 6, "%d of %d factors above the random ΔW's 95th percentile (chance: 2)", above95, rows);
}

// LoRA on Wq, Wv learns the task: validation loss on E2E test completions far
// below the pretrained model's (4.78). Measured after 120 steps: 3.3-3.6.
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

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_claim_top_direction_of_small_rank_lies_in_large_rank_span),
        LS_TEST(test_claim_seeds_share_top_directions_far_above_random),
        LS_TEST(test_verdict_amplification_is_within_the_random_delta_w_band),
        LS_TEST(test_claim_lora_validation_loss_falls_far_below_base),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
