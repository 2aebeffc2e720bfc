#include "random.h"

#include <math.h>

// ----------------------------------------------------------------------------
// splitmix64 (seeding) and xoshiro256** (the stream)

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void an_rng_seed(an_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
    rng->has_spare = 0;
    rng->spare = 0.0;
}

uint64_t an_rng_next(an_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double an_rng_uniform(an_rng *rng) {
    return (double)(an_rng_next(rng) >> 11) * 0x1.0p-53;
}

double an_rng_normal(an_rng *rng) {
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    // u1 in (0, 1] so that log(u1) is finite.
    double u1 = 1.0 - an_rng_uniform(rng);
    double u2 = an_rng_uniform(rng);
    double radius = sqrt(-2.0 * log(u1));
    double angle = 2.0 * M_PI * u2;
    rng->spare = radius * sin(angle);
    rng->has_spare = 1;
    return radius * cos(angle);
}

// ----------------------------------------------------------------------------
// Gaussian matrices

void an_mat_fill_gaussian(an_mat *m, an_rng *rng) {
    size_t n = (size_t)m->rows * (size_t)m->cols;
    for (size_t i = 0; i < n; i++) m->data[i] = an_rng_normal(rng);
}

an_mat an_mat_gaussian(int rows, int cols, uint64_t seed) {
    an_rng rng;
    an_rng_seed(&rng, seed);
    an_mat m = an_mat_alloc(rows, cols);
    an_mat_fill_gaussian(&m, &rng);
    return m;
}
