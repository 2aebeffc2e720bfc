// model_internal: what model.c shares with engine/encoder.c, the encoder
// family's forward and backward passes. Not for use outside src/engine.
#ifndef LS_ENGINE_MODEL_INTERNAL_H
#define LS_ENGINE_MODEL_INTERNAL_H

#include "engine/model.h"

// out (N, OC) = inp W^T + b of linear `lin` of layer l, plus the attached LoRA's update.
void model_linear_forward(ls_model *m, int l, ls_linear lin, float *out, const float *inp, int N);
// dinp (N, IC) overwritten (NULL: skip); base weight / bias grads where
// model_trains_weights / _biases say so; the LoRA's gradients.
void model_linear_backward(ls_model *m, int l, ls_linear lin, float *dinp, const float *dout,
                           const float *inp, int N);
// Whether layer l's weights (biases) get gradients under m's grad scope;
// l = -1: the tensors outside the layers (embeddings, final norm, LM head).
int model_trains_weights(const ls_model *m, int l);
int model_trains_biases(const ls_model *m, int l);
// The lowest layer the backward pass visits (FT^Top-k: L - k; else 0).
int model_backward_floor(const ls_model *m);
// Whether the backward of layer l must produce d loss / d (layer input).
int model_needs_dx(const ls_model *m, int l);
// Floats of one layer's att slot for a batch (B, T).
size_t model_att_floats(const ls_model *m, int B, int T);

#endif
