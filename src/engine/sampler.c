// sampler: argmax, temperature and top-p sampling (llama2.c's run.c).
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void sampler_init(ls_sampler *s, int vocab_size, float temperature, float topp, uint64_t seed) {
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->topp = topp;
    s->rng_state = seed ? seed : 1;
    s->probindex = ls_malloc((size_t)vocab_size * sizeof(ls_prob_index));
    s->probs = ls_malloc((size_t)vocab_size * sizeof(float));
}

void sampler_free(ls_sampler *s) {
    free(s->probindex);
    free(s->probs);
    s->probindex = NULL;
    s->probs = NULL;
}

static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

float sampler_random_f32(uint64_t *state) { return (random_u32(state) >> 8) / 16777216.0f; }

int sampler_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// ----------------------------------------------------------------------------

static int sample_mult(const float *probs, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += probs[i];
        if (coin < cdf) return i;
    }
    return n - 1; // rounding
}

static int compare_desc(const void *a, const void *b) {
    const ls_prob_index *x = a, *y = b;
    if (x->prob > y->prob) return -1;
    if (x->prob < y->prob) return 1;
    return 0;
}

// Nucleus sampling; tokens below (1 - topp) / (n - 1) cannot be in the nucleus
// and are dropped before sorting (llama2.c's shortcut, same result).
static int sample_topp(const float *probs, int n, float topp, ls_prob_index *pi, float coin) {
    int n0 = 0;
    const float cutoff = (1.0f - topp) / (n - 1);
    for (int i = 0; i < n; i++) {
        if (probs[i] >= cutoff) {
            pi[n0].index = i;
            pi[n0].prob = probs[i];
            n0++;
        }
    }
    qsort(pi, n0, sizeof(ls_prob_index), compare_desc);
    float cum = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cum += pi[i].prob;
        if (cum > topp) { last = i; break; }
    }
    float r = coin * cum, cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += pi[i].prob;
        if (r < cdf) return pi[i].index;
    }
    return pi[last].index;
}

int sampler_sample(ls_sampler *s, const float *logits) {
    int n = s->vocab_size;
    if (s->temperature == 0.0f) return sampler_argmax(logits, n);
    float *p = s->probs, mx = -INFINITY, sum = 0.0f;
    for (int i = 0; i < n; i++) {
        p[i] = logits[i] / s->temperature;
        if (p[i] > mx) mx = p[i];
    }
    for (int i = 0; i < n; i++) { p[i] = expf(p[i] - mx); sum += p[i]; }
    for (int i = 0; i < n; i++) p[i] /= sum;
    float coin = sampler_random_f32(&s->rng_state);
    if (s->topp <= 0.0f || s->topp >= 1.0f) return sample_mult(p, n, coin);
    return sample_topp(p, n, s->topp, s->probindex, coin);
}
