// optim: AdamW steps and gradient clipping on a backend.
#include "engine/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void adamw_init(ls_adamw *opt, const ls_backend *be, size_t n, float beta1, float beta2,
                float eps, float weight_decay) {
    memset(opt, 0, sizeof *opt);
    opt->be = be;
    opt->n = n;
    opt->m = be->alloc(n ? n : 1);
    opt->v = be->alloc(n ? n : 1);
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
}

void adamw_free(ls_adamw *opt) {
    if (opt->be) {
        opt->be->free(opt->m);
        opt->be->free(opt->v);
    }
    free(opt->segments);
    memset(opt, 0, sizeof *opt);
}

void adamw_set_segments(ls_adamw *opt, const ls_param_segment *segs, int n) {
    free(opt->segments);
    opt->segments = NULL;
    opt->n_segments = n;
    if (n > 0) {
        opt->segments = ls_malloc((size_t)n * sizeof *segs);
        memcpy(opt->segments, segs, (size_t)n * sizeof *segs);
    }
}

void adamw_init_packed(ls_adamw *opt, const ls_backend *be, const ls_param_segment *segs, int n, float beta1,
                       float beta2, float eps, float weight_decay) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += segs[i].n;
    adamw_init(opt, be, total, beta1, beta2, eps, weight_decay);
    adamw_set_segments(opt, segs, n);
    opt->packed = 1;
}

void adamw_step(ls_adamw *opt, float *params, const float *grads, float lr) {
    opt->step++;
    // torch computes the corrections in double (Python floats) from the step count
    float bc1 = (float)(1.0 - pow(opt->beta1, (double)opt->step));
    float bc2 = (float)(1.0 - pow(opt->beta2, (double)opt->step));
    if (opt->n_segments == 0) {
        opt->be->adamw(params, grads, opt->m, opt->v, opt->n, lr, opt->beta1, opt->beta2,
                       opt->eps, opt->weight_decay, bc1, bc2);
        return;
    }
    size_t mo = 0; // the segment's moments: at its offset, or packed one after another
    for (int i = 0; i < opt->n_segments; i++) {
        const ls_param_segment *s = &opt->segments[i];
        if (!opt->packed) mo = s->offset;
        ls_assert(mo + s->n <= opt->n);
        opt->be->adamw(params + s->offset, grads + s->offset, opt->m + mo, opt->v + mo, s->n, lr, opt->beta1,
                       opt->beta2, opt->eps, s->decay ? opt->weight_decay : 0.0f, bc1, bc2);
        mo += s->n;
    }
}

double grad_norm(const ls_backend *be, const float *grads, size_t n) {
    return sqrt(be->sumsq(grads, n));
}

double clip_grad_norm(const ls_backend *be, float *grads, size_t n, double max_norm) {
    double norm = grad_norm(be, grads, n);
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) be->scale(grads, n, (float)coef);
    return norm;
}
