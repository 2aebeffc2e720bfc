// step: one optimizer step of the engine (step.h).
#include "train/step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/adapters.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "engine/rng.h"

void train_step_spec_init(train_step_spec *s, ls_model *m, ls_lora *lo, ls_adamw *opt) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->lo = lo;
    s->opt = opt;
    s->params = lo ? lo->params : m->params_memory;
    s->grads = lo ? lo->grads : m->grads_memory;
    s->n_trainable = lo ? lo->n_params : m->n_params;
    s->grad_accum = 1;
}

// The trainable gradients (adapter or segments, and the head) as one vector:
// its norm, and all of them scaled by clip / (norm + 1e-6) when the norm
// exceeds clip (clip_grad_norm_).
static double clip_joint(const train_step_spec *s) {
    const ls_backend *be = s->m->be;
    double ss = be->sumsq(s->head_grads, s->n_head);
    if (s->n_segs)
        for (int i = 0; i < s->n_segs; i++) ss += be->sumsq(s->grads + s->segs[i].offset, s->segs[i].n);
    else ss += be->sumsq(s->grads, s->n_trainable);
    double norm = sqrt(ss), coef = s->clip / (norm + 1e-6);
    if (s->clip > 0 && coef < 1.0) {
        if (s->n_segs)
            for (int i = 0; i < s->n_segs; i++) be->scale(s->grads + s->segs[i].offset, s->segs[i].n, (float)coef);
        else be->scale(s->grads, s->n_trainable, (float)coef);
        be->scale(s->head_grads, s->n_head, (float)coef);
    }
    return norm;
}

int train_step(const train_step_spec *s, long step, double lr, train_batch_fn next, void *user,
               train_step_stats *st, char *msg, size_t msg_size) {
    ls_model *m = s->m;
    int accum = s->grad_accum;
    if (s->lo) lora_zero_grad(s->lo);
    if (s->ad) adapters_zero_grad(s->ad);
    if (s->pf) prefix_zero_grad(s->pf);
    if (s->pr) prompt_zero_grad(s->pr);
    if (!s->lo || s->n_head) model_zero_grad(m);
    st->loss = st->tokens = 0.0;
    for (int k = 0; k < accum; k++) {
        long idx = (step - 1) * accum + k; // the batch index: data order and dropout masks follow it
        train_microbatch mb;
        if (next(user, idx, &mb)) return -1;
        uint64_t dropout_seed = ls_seed_mix(s->dropout_seed, (uint64_t)idx); // LoRA's and the encoder's masks
        if (s->lo) lora_set_dropout_seed(s->lo, dropout_seed);
        model_set_dropout_seed(m, dropout_seed);
        float l = mb.labels ? model_classify_forward(m, mb.inputs, NULL, mb.keymask, mb.labels, mb.B, mb.T)
                            : model_forward(m, mb.inputs, mb.targets, mb.mask, mb.B, mb.T, s->label_smoothing);
        if (l < 0.0f) return -1;
        if (!isfinite(l)) {
            snprintf(msg, msg_size, "step %ld: training loss is %s (micro-batch %d)", step,
                     isnan(l) ? "NaN" : "infinite", k);
            return 1;
        }
        if (mb.labels) model_classify_backward(m, 1.0f / (float)accum);
        else model_backward(m, 1.0f / (float)accum, s->label_smoothing);
        st->loss += (double)l / accum;
        st->tokens += mb.tokens;
    }
    if (s->n_head || s->n_segs) st->grad_norm = clip_joint(s);
    else
        st->grad_norm = s->clip > 0 ? clip_grad_norm(m->be, s->grads, s->n_trainable, s->clip)
                                    : grad_norm(m->be, s->grads, s->n_trainable);
    if (!isfinite(st->grad_norm)) {
        snprintf(msg, msg_size, "step %ld: gradient norm is %s", step, isnan(st->grad_norm) ? "NaN" : "infinite");
        return 1;
    }
    adamw_step(s->opt, s->params, s->grads, (float)lr);
    if (s->n_head) adamw_step(s->head_opt, s->head_params, s->head_grads, (float)lr);
    return 0;
}

int train_fixed_batch_next(void *user, long batch_index, train_microbatch *mb) {
    (void)batch_index;
    const train_fixed_batch *f = user;
    *mb = (train_microbatch){f->tokens, f->targets, NULL, f->B, f->T, (double)f->B * f->T, f->keymask, f->labels};
    return 0;
}

int train_step_spec_add_head(train_step_spec *s, ls_adamw *hopt, float beta1, float beta2, float eps,
                             float weight_decay) {
    ls_model *m = s->m;
    ls_param_segment seg[4];
    model_enable_head_grads(m);
    int n = model_head_segments(m, seg);
    if (n == 0) return ls_fail("train: the %s model has no classification head to train", arch_family_name(m->cfg.family));
    size_t start = seg[0].offset, end = start;
    for (int i = 0; i < n; i++) {
        ls_assert(seg[i].offset == end); // the head's tensors are one span of the buffer
        end += seg[i].n;
        seg[i].offset -= start;
    }
    s->head_opt = hopt;
    s->head_params = m->params_memory + start;
    s->head_grads = m->grads_memory + start;
    s->n_head = end - start;
    adamw_init(hopt, m->be, s->n_head, beta1, beta2, eps, weight_decay);
    adamw_set_segments(hopt, seg, n);
    return 0;
}

size_t train_step_spec_set_scope(train_step_spec *s, ls_param_segment *segs, float beta1, float beta2, float eps,
                                 float weight_decay) {
    ls_model *m = s->m;
    int n = model_trainable_segments(m, segs);
    s->lo = NULL;
    s->params = m->params_memory;
    s->grads = m->grads_memory;
    s->segs = segs;
    s->n_segs = n;
    adamw_init_packed(s->opt, m->be, segs, n, beta1, beta2, eps, weight_decay);
    s->n_trainable = s->opt->n;
    return s->n_trainable;
}

void train_step_spec_set_adapters(train_step_spec *s, ls_adapters *ad, float beta1, float beta2, float eps,
                                  float weight_decay) {
    ls_param_segment *segs = ls_malloc((size_t)ad->n_sites * 4 * sizeof *segs);
    int n = adapters_decay_segments(ad, segs);
    s->lo = NULL;
    s->ad = ad;
    s->params = ad->params;
    s->grads = ad->grads;
    s->n_trainable = ad->n_params;
    adamw_init(s->opt, s->m->be, ad->n_params, beta1, beta2, eps, weight_decay);
    adamw_set_segments(s->opt, segs, n);
    free(segs);
}
