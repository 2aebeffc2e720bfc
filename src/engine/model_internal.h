// model_internal: what model.c shares with engine/encoder.c, the encoder
// family's forward and backward passes. Not for use outside src/engine.
#ifndef LS_ENGINE_MODEL_INTERNAL_H
#define LS_ENGINE_MODEL_INTERNAL_H

#include "engine/model.h"

// out (N, OC) = inp W^T + b of linear `lin` of layer l, plus the attached LoRA's update.
void model_linear_forward(ls_model *m, int l, ls_linear lin, float *out, const float *inp, int N);
// dinp (N, IC) overwritten (NULL: skip); base weight grads when m's gradients
// are enabled for the base (not head_only); the LoRA's gradients.
void model_linear_backward(ls_model *m, int l, ls_linear lin, float *dinp, const float *dout,
                           const float *inp, int N);
// Floats of one layer's att slot for a batch (B, T).
size_t model_att_floats(const ls_model *m, int B, int T);

#endif
