// Benchmark of the chance bands (analysis/chance.h) at a wide model's shapes:
// `bench_chance [d] [r_small] [r_large] [layers]` (defaults 768 8 64 12: the
// 12-layer d = 768 model of issue 12, Wq and Wv, ranks 8 and 64). Prints one
// line per band kind with its wall time, in the layout of
// tests/reference/bench_chance.py, which runs the same computation in numpy
// and prints both side by side. Not a test: timings depend on the machine.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "analysis.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// φ bands of one grid shape; prints the time and the band of the corner cell.
static void bench_phi(const char *what, int imax, int jmax, int n) {
    an_phi_chance c;
    double t0 = now();
    if (an_phi_chance_compute(imax, jmax, n, AN_CHANCE_TRIALS, 1, &c) != 0) {
        fprintf(stderr, "bench_chance: %s\n", an_error());
        exit(1);
    }
    const an_band *b = an_phi_chance_at(&c, 1, jmax);
    printf("%-34s %8.3f s   phi(1,%d): mean %.4f p95 %.4f p99 %.4f\n", what, now() - t0, jmax, b->mean, b->p95, b->p99);
    an_phi_chance_free(&c);
}

int main(int argc, char **argv) {
    int d = argc > 1 ? atoi(argv[1]) : 768, rs = argc > 2 ? atoi(argv[2]) : 8;
    int rl = argc > 3 ? atoi(argv[3]) : 64, layers = argc > 4 ? atoi(argv[4]) : 12;
    if (d < 2 || rs < 1 || rl < rs || rl > d || layers < 1) {
        fprintf(stderr, "usage: bench_chance [d] [r_small] [r_large] [layers]\n");
        return 2;
    }
    printf("chance bands, d = %d, ranks %d and %d, %d layers x {Wq, Wv}, %d draws per φ band\n", d, rs, rl, layers,
           AN_CHANCE_TRIALS);
    char what[64];
    snprintf(what, sizeof what, "phi band %dx%d (ranks), n=%d", rs, rl, d);
    bench_phi(what, rs, rl, d);
    snprintf(what, sizeof what, "phi band %dx%d (seeds), n=%d", rl, rl, d);
    bench_phi(what, rl, rl, d);
    // Table 7: one band per layer, module and rank, from W's singular values
    // (a fixed spectrum σ_a = 1/√(a + 1), the same in bench_chance.py).
    double *sigma = malloc(sizeof(double) * d);
    for (int a = 0; a < d; a++) sigma[a] = 1.0 / sqrt(a + 1.0);
    int ranks[2] = {rs, rl};
    for (int k = 0; k < 2; k++) {
        double t0 = now();
        an_band band = {0};
        for (int b = 0; b < 2 * layers; b++)
            if (an_projected_norm_chance(sigma, d, d, d, ranks[k], an_projected_norm_chance_trials(d, d, ranks[k]),
                                         100 + b, &band) != 0)
                return 1;
        snprintf(what, sizeof what, "proj bands r=%d (x%d), %dx%d", ranks[k], 2 * layers, d, d);
        printf("%-34s %8.3f s   ‖UᵀWV‖: chance %.4f p05 %.4f p95 %.4f (%d draws)\n", what, now() - t0, band.mean,
               band.p05, band.p95, band.trials);
    }
    free(sigma);
    return 0;
}
