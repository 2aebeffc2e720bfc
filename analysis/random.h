// random: a small deterministic Gaussian generator for the random baselines.
//
// xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64, and the
// Box-Muller transform for normals. Written out here rather than taken from
// libc so that a seed gives the same numbers on every machine and libc: the
// random baselines of Fig. 3/4/8 and Table 7 are part of the reported results.
#ifndef AN_RANDOM_H
#define AN_RANDOM_H

#include <stdint.h>

#include "linalg.h"

typedef struct {
    uint64_t s[4];
    int has_spare;   // Box-Muller makes normals in pairs; the second waits here
    double spare;
} an_rng;

// Seeds the state from one 64-bit seed (any value, 0 included).
void an_rng_seed(an_rng *rng, uint64_t seed);
// The next 64 random bits.
uint64_t an_rng_next(an_rng *rng);
// Uniform in [0, 1), 53 random bits.
double an_rng_uniform(an_rng *rng);
// Standard normal N(0, 1).
double an_rng_normal(an_rng *rng);

// Fills m (already allocated) with i.i.d. N(0, 1) entries in row-major order.
void an_mat_fill_gaussian(an_mat *m, an_rng *rng);
// A rows x cols matrix of i.i.d. N(0, 1) entries drawn from a fresh generator
// seeded with `seed`. The caller frees it.
an_mat an_mat_gaussian(int rows, int cols, uint64_t seed);

#endif
