// ops_cpu_math: the CPU backend's vectorisable elementwise math, shared by
// ops_cpu.c and ops_cpu_encoder.c (internal to src/engine).
#ifndef LS_ENGINE_OPS_CPU_MATH_H
#define LS_ENGINE_OPS_CPU_MATH_H

#include <math.h>
#include <stdint.h>

// ----------------------------------------------------------------------------
// vectorisable exp
//
// libm's expf is a call that gcc cannot vectorise (without -ffast-math), and
// the softmaxes, cross-entropy, GELU and SiLU spend most of their time in it.
// ls_expf is Cephes' expf written so that `omp simd` loops vectorise it:
// x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n ln2 is exact), e^r by
// Cephes' degree-6 minimax polynomial, 2^n through the exponent bits.
// Relative error <= 1e-7 against exp in double (measured over [-87, 88]).
// x < -87 (e^x < 1.7e-38) gives 0, -inf included; x > 88 gives e^88, so the
// result stays finite; NaN gives NaN.
//
// Written with bit masks, not `?:`: gcc turns a float select against a
// constant into a branch, and with -ftrapping-math (the default) it will not
// vectorise the branch's float arithmetic. n is read from the bits of the
// 1.5 * 2^23 rounding sum rather than by a float-to-int conversion.
static inline float ls_expf(float x) {
    union { float f; uint32_t u; } xc = {.f = x};
    uint32_t hi = -(uint32_t)(x > 88.0f), lo = -(uint32_t)(x < -87.0f);
    xc.u = (xc.u & ~(hi | lo)) | (0x42b00000u & hi) | (0xc2ae0000u & lo); // 88, -87
    // n = rint(x / ln2): the sum's low mantissa bits hold n (bits 0x4b400000 + n)
    union { float f; uint32_t u; } t = {.f = xc.f * 1.44269504088896341f + 12582912.0f};
    float fn = t.f - 12582912.0f;
    float r = xc.f - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union { uint32_t u; float f; } two_n = {.u = ((t.u - 0x4b400000u + 127u) << 23) & ~lo};
    return p * two_n.f;
}

// The loops built on ls_expf are compute-bound, and the build targets generic
// x86-64 (SSE2, 4 floats a vector). LS_VECTOR_CLONES compiles a helper twice,
// for AVX2 (8 floats) and for the baseline, and the loader picks one for the
// machine (GCC's target_clones, an ifunc): measured 1.3x on the attention
// forward pass at stories260K's shape. The AVX2 clone sums in 8 lanes instead of 4, so the bits are those
// of the machine, still the same for any thread count. OpenMP-outlined loop
// bodies do not inherit the attribute, hence the helpers work on whole rows or
// spans.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define LS_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LS_VECTOR_CLONES
#endif

// Softmax rows (attention, both families): vectorised, exp by ls_expf.

// max of x (n), NaNs skipped (as the softmaxes always did: a NaN row still
// gives NaN through its exps). clang (14) cannot vectorise this reduction and
// warns about the pragma, so only gcc gets it.
LS_VECTOR_CLONES
__attribute__((unused)) static float row_max(const float *x, int n) {
    float mx = -INFINITY;
#ifndef __clang__
    #pragma omp simd reduction(max : mx)
#endif
    for (int j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    return mx;
}

// One row of the causal softmax: a (T) holds scores in [0, n); -> probabilities
// in [0, n) and zeros in [n, T).
LS_VECTOR_CLONES
__attribute__((unused)) static void softmax_row(float *a, int n, int T) {
    float mx = row_max(a, n);
    float sum = 0.0f;
    #pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        float e = ls_expf(a[j] - mx);
        a[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j < n; j++) a[j] *= inv;
    for (int j = n; j < T; j++) a[j] = 0.0f;
}

// One row of the softmax backward: d (m) holds dP in [0, n), p (n) the
// probabilities -> d = scale p (dP - p.dP) in [0, n), zeros in [n, m).
LS_VECTOR_CLONES
__attribute__((unused)) static void softmax_backward_row(float *d, const float *p, int n, int m, float scale) {
    float dot = 0.0f;
    #pragma omp simd reduction(+ : dot)
    for (int j = 0; j < n; j++) dot += p[j] * d[j];
    #pragma omp simd
    for (int j = 0; j < n; j++) d[j] = p[j] * (d[j] - dot) * scale;
    for (int j = n; j < m; j++) d[j] = 0.0f;
}

// erff in `omp simd` loops: glibc's libmvec has vector erff variants (at most
// 2 ulp from the scalar erff over [-5, 5], measured), which gcc calls only
// when the prototype says so (math.h declares them under -ffast-math alone).
// Measured 5.7x over the scalar call at 4 lanes; BERT's exact GELU spent a
// fifth of a MiniLM training step in scalar erff.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
__attribute__((__simd__("notinbranch"))) float erff(float);
#endif

#endif
