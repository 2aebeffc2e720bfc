// engine_testutil: see engine_testutil.h.
#include "engine_testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "engine/rng.h"
#include "harness.h"
#include "io/checkpoint.h"

float *et_randn(int n, uint64_t seed, float scale) {
    ls_rng r;
    ls_rng_seed(&r, seed);
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = scale * (float)ls_rng_normal(&r);
    return x;
}

double et_dot(const float *w, const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * x[i];
    return s;
}

int et_fd_check(const char *what, et_objective f, void *ctx, float *x, const float *g, int n, float h, double rtol,
                double atol) {
    int bad = 0;
    double worst = 0.0;
    for (int j = 0; j < n; j++) {
        float x0 = x[j];
        x[j] = x0 + h;
        double xp = x[j], lp = f(ctx);
        x[j] = x0 - h;
        double xm = x[j], lm = f(ctx);
        x[j] = x0;
        double fd = (lp - lm) / (xp - xm);
        double err = fabs(fd - g[j]), tol = rtol * fmax(fabs(fd), fabs(g[j])) + atol;
        if (err / tol > worst) worst = err / tol;
        if (!(err <= tol)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%d]: analytic %.8g, finite difference %.8g, |diff| %.3g > %.3g\n", what, j, g[j],
                        fd, err, tol);
            bad++;
        }
    }
    if (bad || getenv("LS_FD_VERBOSE"))
        fprintf(stderr, "  %s: %d of %d elements off (worst error/tolerance %.3g)\n", what, bad, n, worst);
    return bad;
}

int *et_load_ints(const st_file *f, const char *name, int *B, int *T) {
    const st_tensor *t = st_find(f, name);
    CHECK_MSG(t != NULL && (!T || t->ndim == 2), "reference tensor %s missing", name);
    if (!t || (T && t->ndim != 2)) return NULL;
    *B = (int)t->shape[0];
    if (T) *T = (int)t->shape[1];
    float *x = st_load_float(f, t);
    int *ids = malloc(sizeof(int) * (size_t)t->numel);
    for (int64_t i = 0; i < t->numel; i++) ids[i] = (int)x[i];
    free(x);
    return ids;
}

int et_load_model(ls_model *m, const char *path, const ls_backend *be) {
    ls_checkpoint ck;
    if (ckpt_load(&ck, path) != 0) {
        CHECK_MSG(0, "ckpt_load %s: %s", path, ls_error());
        return -1;
    }
    int rc = model_build_from_checkpoint(m, &ck, be);
    CHECK_MSG(rc == 0, "model_build_from_checkpoint: %s", ls_error());
    ckpt_free(&ck);
    return rc;
}
