// ops_cpu_encoder: the CPU implementations of the encoder-family ops of
// engine/backend.h (shapes and contracts stated there). Internal to the
// engine: ops_cpu.c puts them into the CPU backend's table.
#ifndef LS_ENGINE_OPS_CPU_ENCODER_H
#define LS_ENGINE_OPS_CPU_ENCODER_H

#include <stddef.h>

void cpu_attention_bidir_forward(float *out, float *att, const float *qkv, const int *keymask,
                                 int B, int T, int NH, int HS);
void cpu_attention_bidir_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                  const float *att, const int *keymask, int B, int T, int NH,
                                  int HS);
void cpu_gelu_erf_forward(float *out, const float *inp, size_t n);
void cpu_gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n);
void cpu_tanh_forward(float *out, const float *inp, size_t n);
void cpu_tanh_backward(float *dinp, const float *out, const float *dout, size_t n);
void cpu_mean_pool_forward(float *out, const float *inp, const int *mask, int B, int T, int C);
void cpu_mean_pool_backward(float *dinp, const float *dout, const int *mask, int B, int T, int C);

#endif
