// sampler: picks the next token from logits, as llama2.c's run.c does.
//
// temperature 0: argmax (first maximum). Otherwise logits / temperature,
// softmax, then a draw from the whole distribution (topp <= 0 or >= 1) or from
// the smallest set of most probable tokens whose mass exceeds topp (nucleus
// sampling, Holtzman et al. 2020). The random stream is llama2.c's xorshift64*
// so that a seed gives llama2.c's samples.
#ifndef LS_ENGINE_SAMPLER_H
#define LS_ENGINE_SAMPLER_H

#include <stdint.h>

typedef struct {
    float prob;
    int index;
} ls_prob_index;

typedef struct ls_sampler {
    int vocab_size;
    float temperature;
    float topp;
    uint64_t rng_state;      // xorshift64* state; never 0
    ls_prob_index *probindex; // (vocab) scratch for top-p
    float *probs;            // (vocab) scratch
} ls_sampler;

// Allocates the scratch (owned by the sampler). A seed of 0 is replaced by 1
// (xorshift64* has no zero state); llama2.c seeds with time(NULL) by default.
void sampler_init(ls_sampler *s, int vocab_size, float temperature, float topp, uint64_t seed);
void sampler_free(ls_sampler *s);

// The next token for logits (vocab floats, host memory, not modified).
int sampler_sample(ls_sampler *s, const float *logits);

// Index of the first maximum of x (n).
int sampler_argmax(const float *x, int n);

// llama2.c's random_f32: uniform in [0, 1) with 24 bits from xorshift64*.
float sampler_random_f32(uint64_t *state);

#endif
