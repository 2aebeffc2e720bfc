// adapters: Houlsby / Lin bottleneck adapters on the backend's ops (adapters.h).
#include "engine/adapters.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/model.h"
#include "engine/rng.h"
#include "io/safetensors.h"

// ----------------------------------------------------------------------------
// the op pair

// The site's block w: W_down (r,C), b_down (r), W_up (C,r), b_up (C).
#define WDOWN(w) (w)
#define BDOWN(w, C, r) ((w) + (size_t)(r) * (C))
#define WUP(w, C, r) ((w) + (size_t)(r) * (C) + (r))
#define BUP(w, C, r) ((w) + 2 * (size_t)(r) * (C) + (r))

void bottleneck_forward(const ls_backend *be, float *out, float *pre, float *act, const float *inp, const float *w,
                     int N, int C, int r, int erf) {
    be->matmul_forward(pre, inp, WDOWN(w), BDOWN(w, C, r), N, C, r);
    if (erf) be->gelu_erf_forward(act, pre, (size_t)N * r);
    else be->gelu_forward(act, pre, (size_t)N * r);
    be->matmul_forward(out, act, WUP(w, C, r), BUP(w, C, r), N, r, C);
    be->axpy(out, inp, (size_t)N * C, 1.0f); // the skip (out may not alias inp)
}

void bottleneck_backward(const ls_backend *be, float *dinp, float *dw, float *dpre, float *dact, const float *dout,
                      const float *inp, const float *pre, const float *act, const float *w, int N, int C, int r,
                      int erf) {
    be->matmul_backward(dact, WUP(dw, C, r), BUP(dw, C, r), dout, act, WUP(w, C, r), N, r, C);
    if (erf) be->gelu_erf_backward(dpre, pre, dact, (size_t)N * r);
    else be->gelu_backward(dpre, pre, dact, (size_t)N * r);
    be->matmul_backward(dinp, WDOWN(dw), BDOWN(dw, C, r), dpre, inp, WDOWN(w), N, C, r);
    be->axpy(dinp, dout, (size_t)N * C, 1.0f);
}

// ----------------------------------------------------------------------------
// build / free

int adapters_build(ls_adapters *ad, ls_model *m, ls_adapter_kind kind, int r, uint64_t seed) {
    memset(ad, 0, sizeof *ad);
    if (r < 1 || r > m->C)
        return ls_fail("adapter size (--adapter-size): expected 1..%d (the model's dim), found %d", m->C, r);
    ad->be = m->be;
    ad->kind = kind;
    ad->C = m->C;
    ad->L = m->L;
    ad->r = r;
    ad->erf = arch_is_encoder(m->cfg.family);
    ad->n_sites = m->L * (kind == LS_ADAPTERS_HOULSBY ? 2 : 1);
    ad->per_site = 2 * (size_t)r * m->C + (size_t)r + (size_t)m->C;
    ad->n_params = ad->per_site * (size_t)ad->n_sites;
    float *host = ls_calloc(ad->n_params, sizeof(float));
    float std = m->cfg.init_range > 0 ? m->cfg.init_range : 0.02f;
    for (int s = 0; s < ad->n_sites; s++) { // W_down ~ N(0, std^2) from the site's own stream; the rest 0
        ls_rng rng;
        ls_rng_seed(&rng, ls_seed_mix(seed ^ 0x616461707465ull, (uint64_t)s)); // "adapte"
        float *w = host + (size_t)s * ad->per_site;
        for (size_t i = 0; i < (size_t)r * m->C; i++) w[i] = (float)ls_rng_normal(&rng) * std;
    }
    ad->params = m->be->alloc(ad->n_params);
    ad->grads = m->be->alloc(ad->n_params);
    m->be->upload(ad->params, host, ad->n_params);
    free(host);
    m->adapters = ad;
    if (m->Bcap > 0) adapters_reserve(ad, m->Bcap * m->Tcap);
    return 0;
}

void adapters_free(ls_adapters *ad, ls_model *m) {
    if (!ad->be) return;
    if (m && m->adapters == ad) m->adapters = NULL;
    ad->be->free(ad->params);
    ad->be->free(ad->grads);
    if (ad->acts) ad->be->free(ad->acts);
    memset(ad, 0, sizeof *ad);
}

static size_t site_acts(const ls_adapters *ad, int N) { return (size_t)N * (ad->C + 2 * (size_t)ad->r); }

void adapters_reserve(ls_adapters *ad, int N) {
    if (N <= ad->Ncap) return;
    if (ad->acts) ad->be->free(ad->acts);
    ad->acts = ad->be->alloc(site_acts(ad, N) * (size_t)(ad->n_sites + 1));
    ad->Ncap = N;
}

void adapters_zero_grad(ls_adapters *ad) { ad->be->zero(ad->grads, ad->n_params); }

// ----------------------------------------------------------------------------
// sites

int adapters_site(const ls_adapters *ad, int l, int slot) {
    if (ad->kind == LS_ADAPTERS_LIN) return slot == 1 ? l : -1;
    return 2 * l + slot;
}

// Site s's saved slots for rows of width N (capacity Ncap): in, pre, act.
static void slots(const ls_adapters *ad, int s, float **in, float **pre, float **act) {
    float *base = ad->acts + site_acts(ad, ad->Ncap) * (size_t)s;
    *in = base;
    *pre = base + (size_t)ad->Ncap * ad->C;
    *act = *pre + (size_t)ad->Ncap * ad->r;
}

void adapters_site_forward(ls_adapters *ad, int site, float *x, int N) {
    float *in, *pre, *act;
    ls_assert(N <= ad->Ncap && site >= 0 && site < ad->n_sites);
    slots(ad, site, &in, &pre, &act);
    ad->be->copy(in, x, (size_t)N * ad->C);
    bottleneck_forward(ad->be, x, pre, act, in, ad->params + (size_t)site * ad->per_site, N, ad->C, ad->r, ad->erf);
}

const float *adapters_site_backward(ls_adapters *ad, int site, const float *dout, int N) {
    float *in, *pre, *act, *dpre, *dact, *dx;
    slots(ad, site, &in, &pre, &act);
    slots(ad, ad->n_sites, &dpre, &dact, &dx); // the scratch slot: (N,C) then (N,r) (N,r)
    dx = dpre;
    dpre = dx + (size_t)ad->Ncap * ad->C;
    dact = dpre + (size_t)ad->Ncap * ad->r;
    size_t o = (size_t)site * ad->per_site;
    bottleneck_backward(ad->be, dx, ad->grads + o, dpre, dact, dout, in, pre, act, ad->params + o, N, ad->C, ad->r,
                     ad->erf);
    return dx;
}

// ----------------------------------------------------------------------------
// file

void adapters_tensor_name(const ls_adapters *ad, const char *layer_prefix, int site, int k, char *out, size_t size) {
    static const char *const part[4] = {"down.weight", "down.bias", "up.weight", "up.bias"};
    int l = ad->kind == LS_ADAPTERS_HOULSBY ? site / 2 : site, slot = ad->kind == LS_ADAPTERS_HOULSBY ? site % 2 : 1;
    snprintf(out, size, "%s.%d.adapter_%s.%s", layer_prefix, l, slot ? "mlp" : "attn", part[k]);
}

int adapters_save(const ls_adapters *ad, const char *layer_prefix, const char *family, const char *path) {
    float *host = ls_malloc(ad->n_params * sizeof(float));
    ad->be->download(host, ad->params, ad->n_params);
    st_entry *e = ls_calloc((size_t)ad->n_sites * 4, sizeof *e);
    char (*names)[160] = ls_calloc((size_t)ad->n_sites * 4, sizeof *names);
    size_t C = ad->C, r = ad->r;
    for (int s = 0; s < ad->n_sites; s++) {
        float *w = host + (size_t)s * ad->per_site;
        const float *at[4] = {WDOWN(w), BDOWN(w, C, r), WUP(w, C, r), BUP(w, C, r)};
        int64_t d0[4] = {(int64_t)r, (int64_t)r, (int64_t)C, (int64_t)C}, d1[4] = {(int64_t)C, 0, (int64_t)r, 0};
        for (int k = 0; k < 4; k++) {
            int i = 4 * s + k;
            adapters_tensor_name(ad, layer_prefix, s, k, names[i], sizeof names[i]);
            e[i] = (st_entry){names[i], ST_F32, d1[k] ? 2 : 1, {d0[k], d1[k]}, at[k]};
        }
    }
    char rs[16];
    snprintf(rs, sizeof rs, "%d", ad->r);
    const char *meta[] = {"format", "lorascope-adapters", "kind", ad->kind == LS_ADAPTERS_HOULSBY ? "adapter-h" : "adapter-l",
                          "adapter_size", rs, "family", family};
    int rc = st_write(path, e, ad->n_sites * 4, meta, 4);
    free(names);
    free(e);
    free(host);
    return rc;
}

int adapters_decay_segments(const ls_adapters *ad, ls_param_segment *segs) {
    size_t C = ad->C, r = ad->r, n[4] = {r * C, r, C * r, C};
    int k = 0;
    for (int s = 0; s < ad->n_sites; s++) {
        size_t o = (size_t)s * ad->per_site;
        for (int j = 0; j < 4; o += n[j], j++) segs[k++] = (ls_param_segment){o, n[j], j % 2 == 0};
    }
    return k;
}

int adapters_read(ls_adapters *ad, const st_file *f, const char *key_prefix, const char *layer_prefix) {
    float *host = ls_malloc(ad->n_params * sizeof(float));
    size_t C = ad->C, r = ad->r;
    int64_t d0[4] = {(int64_t)r, (int64_t)r, (int64_t)C, (int64_t)C}, d1[4] = {(int64_t)C, 0, (int64_t)r, 0};
    for (int s = 0; s < ad->n_sites; s++) {
        float *w = host + (size_t)s * ad->per_site;
        float *at[4] = {WDOWN(w), BDOWN(w, C, r), WUP(w, C, r), BUP(w, C, r)};
        for (int k = 0; k < 4; k++) {
            char name[160], key[320];
            adapters_tensor_name(ad, layer_prefix, s, k, name, sizeof name);
            snprintf(key, sizeof key, "%s%s", key_prefix, name);
            const st_tensor *t = st_find(f, key);
            int nd = d1[k] ? 2 : 1;
            if (!t || t->ndim != nd || t->shape[0] != d0[k] || (nd == 2 && t->shape[1] != d1[k]) ||
                !st_dtype_is_float(t->dtype)) {
                free(host);
                if (!t) return ls_fail("%s: tensor '%s': expected it (%s adapters of size %d), found none", f->path, key,
                                       ad->kind == LS_ADAPTERS_HOULSBY ? "adapter-h" : "adapter-l", ad->r);
                return ls_fail("%s: tensor '%s': expected float shape (%lld%s%.0lld), found %d dims of %lld values",
                               f->path, key, (long long)d0[k], nd == 2 ? ", " : "", (long long)d1[k], t->ndim,
                               (long long)t->numel);
            }
            st_to_float(f, t, at[k]);
            for (int64_t i = 0; i < t->numel; i++)
                if (!isfinite(at[k][i])) {
                    free(host);
                    return ls_fail("%s: tensor '%s': expected finite values, found %g at %lld", f->path, key,
                                   (double)at[k][i], (long long)i);
                }
        }
    }
    ad->be->upload(ad->params, host, ad->n_params);
    free(host);
    return 0;
}

int adapters_load(ls_adapters *ad, ls_model *m, const char *layer_prefix, const char *family, const char *path) {
    st_file f;
    memset(ad, 0, sizeof *ad);
    if (st_open(&f, path)) return -1;
    const char *fmt = st_metadata(&f, "format"), *kind = st_metadata(&f, "kind"), *size = st_metadata(&f, "adapter_size");
    const char *fam = st_metadata(&f, "family");
    int r = size ? atoi(size) : 0, rc = 0;
    if (!fmt || strcmp(fmt, "lorascope-adapters"))
        rc = ls_fail("%s: metadata 'format': expected 'lorascope-adapters', found '%s'", path, fmt ? fmt : "none");
    else if (!kind || (strcmp(kind, "adapter-h") && strcmp(kind, "adapter-l")))
        rc = ls_fail("%s: metadata 'kind': expected 'adapter-h' or 'adapter-l', found '%s'", path, kind ? kind : "none");
    else if (fam && strcmp(fam, family))
        rc = ls_fail("%s: metadata 'family': expected '%s' (the base model's), found '%s'", path, family, fam);
    else if (adapters_build(ad, m, strcmp(kind, "adapter-h") ? LS_ADAPTERS_LIN : LS_ADAPTERS_HOULSBY, r, 0))
        rc = ls_fail_prefix("%s: metadata 'adapter_size'", path);
    else if (adapters_read(ad, &f, "", layer_prefix)) {
        adapters_free(ad, m);
        rc = -1;
    }
    st_close(&f);
    return rc;
}
