// rng: small deterministic generators for the engine (initialisation, sampling).
//
// Written out rather than taken from libc so that a seed gives the same numbers
// on every machine: runs are deterministic for a given seed (ARCHITECTURE.md, Runs).
#ifndef LS_ENGINE_RNG_H
#define LS_ENGINE_RNG_H

#include <math.h>
#include <stdint.h>

// splitmix64 (Steele et al. 2014): a seed of any value, 0 included, gives a
// well-mixed stream. Used for weight and LoRA initialisation.
typedef struct {
    uint64_t state;
    int has_spare;
    double spare;
} ls_rng;

static inline void ls_rng_seed(ls_rng *r, uint64_t seed) {
    r->state = seed;
    r->has_spare = 0;
    r->spare = 0.0;
}

static inline uint64_t ls_rng_next(ls_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) with 53 random bits.
static inline double ls_rng_uniform(ls_rng *r) {
    return (double)(ls_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box-Muller (pairs; the second is kept for the next call).
static inline double ls_rng_normal(ls_rng *r) {
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    double u1 = ls_rng_uniform(r), u2 = ls_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

// Mixes two values into one seed (for per-site / per-step dropout seeds).
static inline uint64_t ls_seed_mix(uint64_t a, uint64_t b) {
    ls_rng r;
    ls_rng_seed(&r, a ^ (0xD1B54A32D192ED03ull * (b + 1)));
    return ls_rng_next(&r);
}

#endif
