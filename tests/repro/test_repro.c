// The reduced reproduction (meson test --setup repro --suite repro): trains the
// runs of tests/data/experiments/repro.ini on stories260K / E2E (LoRA on Wq,
// Wv, r = 2 and r = 16, seeds 1 and 2), runs the paper's analyses, and asserts
// each claim of Sec. 7 whose margin held across the seeds we tried (the
// numbers are in results/README.md). Claims that do not hold at this scale are
// reported there and not asserted here.
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

// Column `col` of the row of `file` (under results/repro/) whose line starts with `key`.
static double value(const char *file, const char *key, int col) {
    char path[8192];
    snprintf(path, sizeof path, "%s/repro/%s", results, file);
    char *text = ls_read_file(path, NULL);
    if (!text) return NAN;
    double v = NAN;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, key, strlen(key))) continue;
        char *p = line;
        for (int c = 0; c < col && p; c++) {
            p = strchr(p, '\t');
            if (p) p++;
        }
        if (p) v = strtod(p, NULL);
        break;
    }
    free(text);
    return v;
}

#define NEED_ASSETS() \
    do { if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not present"); \
         if (!prepare()) { CHECK_MSG(0, "the reproduction run failed"); return; } } while (0)

// Mean over layers and modules of column `col` of a subspace analysis's NAME.tsv
// (columns: layer module side r1 r2 phi_1_1 phi_1_r2 phi_r1_r2 mean_phi mean_phi_random).
static double subspace_mean(const char *analysis, int col, double *min_out) {
    double sum = 0, mn = INFINITY;
    int n = 0;
    for (int layer = 0; layer < 5; layer++)
        for (int m = 0; m < 2; m++) {
            char file[256], key[64];
            snprintf(file, sizeof file, "%s.tsv", analysis);
            snprintf(key, sizeof key, "%d\t%s\t", layer, m ? "v" : "q");
            double v = value(file, key, col);
            CHECK_MSG(!isnan(v), "%s: no row for layer %d %s", file, layer, m ? "v" : "q");
            sum += v;
            mn = fmin(mn, v);
            n++;
        }
    if (min_out) *min_out = mn;
    return sum / n;
}

// Sec. 7.2, Fig. 3: "the top singular vector directions of A_{r=8} and
// A_{r=64} overlap significantly". Here r = 2 vs 16 (same ratio): the share of
// A_2's top direction inside A_16's span, φ(1, 16), against the random
// expectation 16/64 = 0.25. Measured (seeds 1, 2): means 0.545 and 0.587,
// every layer and module above 0.25 (minimum 0.287). Asserted: mean >= 0.40.
static void test_claim_top_direction_of_small_rank_lies_in_large_rank_span(void) {
    NEED_ASSETS();
    for (int seed = 1; seed <= 2; seed++) {
        double mn, mean = subspace_mean(seed == 1 ? "ranks_seed1" : "ranks_seed2", 6, &mn);
        printf("seed %d: mean phi(1, 16) = %.4f (min %.4f), random expectation 0.25\n", seed, mean, mn);
        CHECK_MSG(mean >= 0.40, "seed %d: mean φ(1, 16) = %.4f, expected >= 0.40 (random 0.25)", seed, mean);
    }
}

// Sec. 7.2, Fig. 4: the top directions learned from two random seeds overlap
// far more than random subspaces do. φ(A_seed1, A_seed2, 1, 1) at r = 16
// against the random expectation 1/64 ≈ 0.016. Measured: mean 0.56 over
// layers and modules (minimum 0.32). Asserted: mean >= 0.20 (12x random).
static void test_claim_seeds_share_top_directions_far_above_random(void) {
    NEED_ASSETS();
    double mn, mean = subspace_mean("seeds", 5, &mn);
    printf("mean phi(1, 1) between seeds = %.4f (min %.4f), random expectation 0.0156\n", mean, mn);
    CHECK_MSG(mean >= 0.20, "mean φ(A_s1, A_s2, 1, 1) = %.4f, expected >= 0.20 (random 1/64)", mean);
}

// Sec. 7.3, Table 7: ΔW amplifies directions of W that W does not emphasize,
// by a factor ‖ΔW‖_F / ‖U_ΔWᵀ W V_ΔW‖_F that is larger at the small rank.
// Measured (seeds 1, 2; every layer, Wq and Wv): at r = 2 the factor is 1.4 to
// 25 (> 1 everywhere), at r = 16 it is 0.31 to 0.93, smaller than at r = 2 in
// every case. Asserted: factor(r=2) > 1 and factor(r=2) > factor(r=16)
// everywhere. (That the factor stays above 1 at the large rank, as in the
// paper's 1.9 at r = 64, does not hold here: results/README.md.)
static void test_claim_amplification_exceeds_one_and_shrinks_with_rank(void) {
    NEED_ASSETS();
    for (int seed = 1; seed <= 2; seed++)
        for (int layer = 0; layer < 5; layer++)
            for (int m = 0; m < 2; m++) {
                char file[64];
                snprintf(file, sizeof file, "amplify_seed%d.tsv", seed);
                // columns: adapter r layer module proj_dW proj_W proj_random norm_W norm_dW amplification
                const char *mod = m ? "v" : "q";
                char path[8192];
                snprintf(path, sizeof path, "%s/repro/%s", results, file);
                char *text = ls_read_file(path, NULL);
                double f2 = NAN, f16 = NAN;
                for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
                    char adapter[4096], module[16];
                    int r, l;
                    double x[6];
                    if (sscanf(line, "%4095s %d %d %15s %lf %lf %lf %lf %lf %lf", adapter, &r, &l, module, &x[0], &x[1],
                               &x[2], &x[3], &x[4], &x[5]) != 10)
                        continue;
                    if (l != layer || strcmp(module, mod)) continue;
                    if (r == 2) f2 = x[5];
                    if (r == 16) f16 = x[5];
                }
                free(text);
                CHECK_MSG(f2 > 1.0, "seed %d layer %d W%s: amplification at r = 2 is %.3f, expected > 1", seed, layer,
                          mod, f2);
                CHECK_MSG(f2 > f16, "seed %d layer %d W%s: amplification %.3f at r = 2 not above %.3f at r = 16", seed,
                          layer, mod, f2, f16);
            }
}

// LoRA on Wq, Wv learns the task: validation loss on E2E test completions far
// below the pretrained model's (4.78). Measured after 120 steps: 3.3-3.6.
// Asserted: at least 1.0 nat below the base, for both ranks and seeds.
static void test_claim_lora_validation_loss_falls_far_below_base(void) {
    NEED_ASSETS();
    for (int r = 0; r < 2; r++) {
        const char *key = r ? "16\t" : "2\t";
        // columns: rank val_loss_mean val_loss_std base_val_loss_mean base_val_loss_std n
        double loss = value("losses.tsv", key, 1), base = value("losses.tsv", key, 3);
        printf("rank %s: val loss %.4f, base %.4f\n", r ? "16" : "2", loss, base);
        CHECK_MSG(loss <= base - 1.0, "rank %s: validation loss %.4f not 1 nat below the base's %.4f", r ? "16" : "2",
                  loss, base);
    }
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_claim_top_direction_of_small_rank_lies_in_large_rank_span),
        LS_TEST(test_claim_seeds_share_top_directions_far_above_random),
        LS_TEST(test_claim_amplification_exceeds_one_and_shrinks_with_rank),
        LS_TEST(test_claim_lora_validation_loss_falls_far_below_base),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
