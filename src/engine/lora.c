// lora: adapter sites, initialisation (gaussian, kaiming, PiSSA), the low-rank
// forward/backward on the backend, merge/unmerge.
#include "engine/lora.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/rng.h"
#include "io/adapter.h"

// ----------------------------------------------------------------------------
// module names (the registry's, arch/arch.h)

static const arch_module *module_of(ls_family family, lora_module_id mod) {
    if ((int)mod < 0 || mod >= LORA_N_MODULES) return NULL;
    return arch_module_by_role(family, (arch_role)mod);
}

const char *lora_module_name(ls_family family, lora_module_id mod) {
    const arch_module *md = module_of(family, mod);
    return md ? md->name : NULL;
}

const char *lora_module_path(ls_family family, lora_module_id mod) {
    const arch_module *md = module_of(family, mod);
    return md ? arch_peft_path(md) : NULL;
}

// Short name, alias, PEFT name or module path -> id; -1 if the family has no such module.
static int module_from_name(ls_family family, const char *s) {
    const arch_module *md = arch_module_by_name(family, s);
    return md ? (int)md->role : -1;
}

int lora_parse_modules(ls_family family, const char *list, uint32_t *modules) {
    *modules = 0;
    char *copy = ls_strdup(list), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "all") == 0) {
            *modules |= arch_all_modules(family);
            continue;
        }
        int id = module_from_name(family, tok);
        if (id < 0) {
            char names[160];
            rc = ls_fail("lora modules: \"%s\": expected one of %s all, found \"%s\"", list,
                         arch_module_names(family, " ", " ", names, sizeof names), tok);
            break;
        }
        *modules |= 1u << id;
    }
    free(copy);
    if (rc == 0 && *modules == 0) rc = ls_fail("lora modules: \"%s\": expected at least one", list);
    return rc;
}

float lora_scale(float alpha, int rank, int rslora) {
    return rslora ? alpha / sqrtf((float)rank) : alpha / (float)rank;
}

void lora_config_default(ls_lora_config *c) {
    memset(c, 0, sizeof *c);
    c->rank = 8;
    c->alpha = 16.0f;
    c->init = LORA_INIT_KAIMING;
    c->seed = 1;
    c->modules = 1u << LORA_Q | 1u << LORA_V;
}

// ----------------------------------------------------------------------------
// sites

// Where module `mod` sits in a layer of m: linear map, output rows, input width.
static void module_geometry(const ls_model *m, lora_module_id mod, ls_linear *lin, int *row0,
                            int *d_out, int *d_in, int *lin_out) {
    // the shape is the registry's; the place in the engine's fused maps (QKV:
    // rows q, k, v; FC: rows gate, up) is the model's layout (model.h)
    arch_module_shape(module_of(m->cfg.family, mod), &m->cfg, d_out, d_in);
    int qd = m->NH * m->HS, kd = m->NKV * m->HS;
    *row0 = 0;
    switch (mod) {
    case LORA_Q: case LORA_QKV: *lin = LS_LIN_QKV; break;
    case LORA_K: *lin = LS_LIN_QKV; *row0 = qd; break;
    case LORA_V: *lin = LS_LIN_QKV; *row0 = qd + kd; break;
    case LORA_O: *lin = LS_LIN_O; break;
    case LORA_UP: *lin = LS_LIN_FC; *row0 = m->H; break;
    case LORA_GATE: case LORA_FC: *lin = LS_LIN_FC; break;
    default: *lin = LS_LIN_DOWN; break;
    }
    int OC[LS_N_LINEAR] = {m->QKV, m->C, m->F, m->C};
    *lin_out = OC[*lin];
}

// The weight matrix of (layer, linear) inside the base parameters.
static float *linear_weight(const ls_model *m, int l, ls_linear lin) {
    size_t C = m->C;
    switch (lin) {
    case LS_LIN_QKV: return m->params.qkvw + l * m->QKV * C;
    case LS_LIN_O: return m->params.attprojw + l * C * C;
    case LS_LIN_FC: return m->params.fcw + l * m->F * C;
    default: return m->params.fcprojw + l * C * m->H;
    }
}

static int check_config(const ls_model *m, const ls_lora_config *c) {
    ls_family f = m->cfg.family;
    if (c->rank < 1) return ls_fail("lora: rank: expected >= 1, found %d", c->rank);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return ls_fail("lora: dropout: expected a probability in [0, 1), found %g", c->dropout);
    if (c->init != LORA_INIT_GAUSSIAN && c->init != LORA_INIT_KAIMING && c->init != LORA_INIT_PISSA)
        return ls_fail("lora: init: expected gaussian, kaiming or pissa, found %d", (int)c->init);
    if (c->init == LORA_INIT_PISSA && !(c->alpha > 0.0f))
        return ls_fail("lora: alpha: PiSSA divides the singular values by the scale; expected > 0, found %g",
                       c->alpha);
    if (!(c->init_std >= 0.0f))
        return ls_fail("lora: init_std: expected >= 0, found %g", c->init_std);
    if (c->modules == 0 || c->modules >> LORA_N_MODULES)
        return ls_fail("lora: modules: expected a non-empty set of known modules, found 0x%x",
                       c->modules);
    for (int i = 0; i < LORA_N_MODULES; i++)
        if ((c->modules >> i & 1) && !lora_module_name(f, (lora_module_id)i))
            return ls_fail("lora: modules: module %d does not exist in a %s model", i,
                           arch_family_name(f));
    if ((c->modules >> LORA_QKV & 1) &&
        (c->modules & (1u << LORA_Q | 1u << LORA_K | 1u << LORA_V)))
        return ls_fail("lora: modules: c_attn overlaps q/k/v (row blocks of c_attn); choose one");
    if (c->n_layers < 0 || c->n_layers > (int)(sizeof c->layers / sizeof c->layers[0]))
        return ls_fail("lora: n_layers: expected 0..256, found %d", c->n_layers);
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] < 0 || c->layers[i] >= m->L)
            return ls_fail("lora: layers[%d]: expected a layer in [0, %d), found %d", i, m->L,
                           c->layers[i]);
    return 0;
}

static void point_sites(ls_lora *lo) {
    for (int i = 0; i < lo->n_sites; i++) {
        ls_lora_site *s = &lo->sites[i];
        s->A = lo->params + s->offset_A;
        s->B = lo->params + s->offset_B;
        s->dA = lo->grads + s->offset_A;
        s->dB = lo->grads + s->offset_B;
    }
}

void lora_reserve(ls_lora *lo, int N) {
    if (N < 1) N = 1;
    if (lo->acts && N <= lo->Ncap) return;
    const ls_backend *be = lo->be;
    if (lo->acts) be->free(lo->acts);
    if (lo->xdrop) be->free(lo->xdrop);
    if (lo->dh) be->free(lo->dh);
    size_t total = 0;
    int max_rank = 1;
    for (int i = 0; i < lo->n_sites; i++) {
        total += (size_t)N * lo->sites[i].rank;
        if (lo->sites[i].rank > max_rank) max_rank = lo->sites[i].rank;
    }
    lo->acts = be->alloc(total);
    lo->xdrop = be->alloc((size_t)N * lo->max_d_in);
    lo->dh = be->alloc((size_t)N * max_rank);
    float *at = lo->acts;
    for (int i = 0; i < lo->n_sites; i++) {
        lo->sites[i].h = at;
        at += (size_t)N * lo->sites[i].rank;
    }
    lo->Ncap = N;
}

// ----------------------------------------------------------------------------
// initialisation

// PiSSA: top-r SVD of the weight block, A = sqrt(S/s) V^T, B = U sqrt(S/s), and
// the residual W - s B A written back as the frozen weight. SVD in double.
static void init_pissa(ls_lora *lo, ls_model *m, ls_lora_site *s, float *A, float *B) {
    int M = s->d_out, Nn = s->d_in, r = s->rank, K = M < Nn ? M : Nn;
    float *W = linear_weight(m, s->layer, s->linear) + (size_t)s->row0 * s->d_in;
    size_t n = (size_t)M * Nn;
    float *wf = ls_malloc(n * sizeof(float));
    m->be->download(wf, W, n);
    double *a = ls_malloc(n * sizeof(double)), *sv = ls_malloc((size_t)K * sizeof(double)),
           *u = ls_malloc((size_t)M * K * sizeof(double)),
           *vt = ls_malloc((size_t)K * Nn * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = wf[i];
    int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', M, Nn, a, Nn, sv, u, K, vt, Nn);
    ls_assert(info == 0);
    for (int k = 0; k < r; k++) {
        double g = sqrt(sv[k] / s->scale);
        for (int j = 0; j < Nn; j++) A[(size_t)k * Nn + j] = (float)(g * vt[(size_t)k * Nn + j]);
        for (int i = 0; i < M; i++) B[(size_t)i * r + k] = (float)(g * u[(size_t)i * K + k]);
    }
    lora_merge_into(wf, B, A, M, Nn, r, -s->scale); // the residual W - s B A
    m->be->upload(W, wf, n);
    free(wf); free(a); free(sv); free(u); free(vt);
    (void)lo;
}

static void init_site(ls_lora *lo, ls_model *m, ls_lora_site *s, ls_rng *rng, float *A, float *B) {
    size_t na = (size_t)s->rank * s->d_in, nb = (size_t)s->d_out * s->rank;
    if (lo->cfg.init == LORA_INIT_PISSA) { init_pissa(lo, m, s, A, B); return; }
    if (lo->cfg.init == LORA_INIT_GAUSSIAN) {
        double std = lo->cfg.init_std > 0.0f ? lo->cfg.init_std : 1.0 / s->rank;
        for (size_t i = 0; i < na; i++) A[i] = (float)(std * ls_rng_normal(rng));
    } else {
        double bound = 1.0 / sqrt((double)s->d_in); // kaiming_uniform_(a=sqrt(5))
        for (size_t i = 0; i < na; i++) A[i] = (float)(bound * (2.0 * ls_rng_uniform(rng) - 1.0));
    }
    memset(B, 0, nb * sizeof(float));
}

// ----------------------------------------------------------------------------
// build / free

typedef struct {
    int layer;
    lora_module_id module;
    int rank;
    float alpha;
} site_spec;

// Position of a module within a layer: (linear, row0) order.
static int module_order(lora_module_id mod) {
    static const int pos[LORA_N_MODULES] = {
        [LORA_Q] = 0, [LORA_K] = 1, [LORA_V] = 2, [LORA_QKV] = 3, [LORA_O] = 4,
        [LORA_GATE] = 5, [LORA_UP] = 6, [LORA_FC] = 7, [LORA_DOWN] = 8};
    return pos[mod];
}

static int compare_specs(const void *x, const void *y) {
    const site_spec *a = x, *b = y;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return module_order(a->module) - module_order(b->module);
}

// Lays out the sites of specs (sorted), allocates parameters and gradients.
static int build_sites(ls_lora *lo, ls_model *m, site_spec *specs, int n) {
    qsort(specs, (size_t)n, sizeof *specs, compare_specs);
    lo->family = m->cfg.family;
    lo->be = m->be;
    lo->n_layers_model = m->L;
    lo->sites = ls_calloc((size_t)(n ? n : 1), sizeof(ls_lora_site));
    lo->lin_first = ls_calloc((size_t)m->L * LS_N_LINEAR, sizeof(int));
    lo->lin_count = ls_calloc((size_t)m->L * LS_N_LINEAR, sizeof(int));
    size_t off = 0;
    lo->max_d_in = 1;
    for (int k = 0; k < n; k++) {
        ls_lora_site *s = &lo->sites[lo->n_sites];
        s->layer = specs[k].layer;
        s->module = specs[k].module;
        module_geometry(m, s->module, &s->linear, &s->row0, &s->d_out, &s->d_in, &s->lin_out);
        s->rank = specs[k].rank;
        s->alpha = specs[k].alpha;
        s->scale = lora_scale(s->alpha, s->rank, lo->cfg.rslora);
        if (k > 0 && specs[k - 1].layer == s->layer && specs[k - 1].module == s->module)
            return ls_fail("lora: layer %d module %s: adapted twice", s->layer,
                           lora_module_name(lo->family, s->module));
        s->offset_A = off;
        off += (size_t)s->rank * s->d_in;
        s->offset_B = off;
        off += (size_t)s->d_out * s->rank;
        if (s->d_in > lo->max_d_in) lo->max_d_in = s->d_in;
        int idx = s->layer * LS_N_LINEAR + s->linear;
        if (lo->lin_count[idx]++ == 0) lo->lin_first[idx] = lo->n_sites;
        lo->n_sites++;
    }
    lo->n_params = off;
    lo->params = lo->be->alloc(off ? off : 1);
    lo->grads = lo->be->alloc(off ? off : 1);
    point_sites(lo);
    lo->dropout_seed = ls_seed_mix(lo->cfg.seed, 0x10AD);
    return 0;
}

uint64_t lora_site_seed(uint64_t seed, int rank, int layer, lora_module_id mod) {
    uint64_t h = ls_seed_mix(seed, 0x5EED1417ull); // a domain of its own: not the dropout's or the data's
    h = ls_seed_mix(h, (uint64_t)rank);
    h = ls_seed_mix(h, (uint64_t)layer);
    return ls_seed_mix(h, (uint64_t)mod);
}

int lora_build(ls_lora *lo, ls_model *m, const ls_lora_config *cfg) {
    memset(lo, 0, sizeof *lo);
    if (check_config(m, cfg) != 0) return -1;
    if (m->lora) return ls_fail("lora: the model already has an adapter attached");
    lo->cfg = *cfg;
    char *use = ls_calloc((size_t)m->L, 1);
    if (cfg->n_layers == 0) memset(use, 1, (size_t)m->L);
    for (int i = 0; i < cfg->n_layers; i++) use[cfg->layers[i]] = 1;
    site_spec *specs = ls_calloc((size_t)m->L * LORA_N_MODULES, sizeof *specs);
    int n = 0;
    for (int l = 0; l < m->L; l++) {
        if (!use[l]) continue;
        for (int mod = 0; mod < LORA_N_MODULES; mod++) {
            if (!(cfg->modules >> mod & 1)) continue;
            specs[n++] = (site_spec){l, (lora_module_id)mod, cfg->rank, cfg->alpha};
        }
    }
    free(use);
    int rc = build_sites(lo, m, specs, n);
    free(specs);
    for (int i = 0; rc == 0 && i < lo->n_sites; i++) {
        ls_lora_site *s = &lo->sites[i];
        int kmax = s->d_out < s->d_in ? s->d_out : s->d_in;
        if (cfg->init == LORA_INIT_PISSA && s->rank > kmax)
            rc = ls_fail("lora: rank: PiSSA needs r <= min(d_out, d_in) = %d for %s, found %d", kmax,
                         lora_module_name(m->cfg.family, s->module), s->rank);
    }
    if (rc != 0) {
        lora_free(lo, NULL);
        return -1;
    }
    // one stream per site, keyed by (seed, rank, layer, module): ranks of one
    // seed draw independent A's, and a site's A does not depend on the others
    float *host = ls_malloc((lo->n_params ? lo->n_params : 1) * sizeof(float));
    for (int i = 0; i < lo->n_sites; i++) {
        ls_lora_site *s = &lo->sites[i];
        ls_rng rng;
        ls_rng_seed(&rng, lora_site_seed(cfg->seed, s->rank, s->layer, s->module));
        init_site(lo, m, s, &rng, host + s->offset_A, host + s->offset_B);
    }
    lo->be->upload(lo->params, host, lo->n_params);
    free(host);
    m->lora = lo;
    lora_reserve(lo, m->Bcap * m->Tcap);
    return 0;
}

int lora_build_from_adapter(ls_lora *lo, ls_model *m, const lora_adapter *a) {
    memset(lo, 0, sizeof *lo);
    const char *dir = a->dir ? a->dir : "adapter";
    if (m->lora) return ls_fail("%s: the model already has an adapter attached", dir);
    if (a->generic)
        return ls_fail("%s: module %s: not a layout of a lorascope model family (expected %s keys); such adapters "
                       "are read by `lorascope analyze` only", dir, a->modules[0].name, arch_family_name(m->cfg.family));
    if (a->family != m->cfg.family)
        return ls_fail("%s: family: expected %s (the base model), found %s", dir,
                       arch_family_name(m->cfg.family), arch_family_name(a->family));
    lora_config_default(&lo->cfg);
    lo->cfg.rank = a->r;
    lo->cfg.alpha = a->alpha;
    lo->cfg.rslora = a->use_rslora;
    lo->cfg.modules = 0;
    site_spec *specs = ls_calloc((size_t)(a->n_modules ? a->n_modules : 1), sizeof *specs);
    int rc = 0;
    for (int i = 0; i < a->n_modules && rc == 0; i++) {
        const adapter_site *md = &a->modules[i];
        int id = module_from_name(m->cfg.family, md->path);
        if (id < 0 || md->layer < 0 || md->layer >= m->L) {
            rc = ls_fail("%s: layer %d %s: expected a module of the %d-layer %s base model", dir,
                         md->layer, md->path, m->L, arch_family_name(m->cfg.family));
            break;
        }
        ls_linear lin;
        int row0, d_out, d_in, lin_out;
        module_geometry(m, (lora_module_id)id, &lin, &row0, &d_out, &d_in, &lin_out);
        if (md->d_out != d_out || md->d_in != d_in || md->r < 1)
            rc = ls_fail("%s: layer %d %s: expected lora_B (%d, r) and lora_A (r, %d), found (%d, %d) and (%d, %d)",
                         dir, md->layer, md->path, d_out, d_in, md->d_out, md->r, md->r, md->d_in);
        specs[i] = (site_spec){md->layer, (lora_module_id)id, md->r, md->alpha};
        lo->cfg.modules |= 1u << id;
    }
    if (rc == 0) rc = build_sites(lo, m, specs, a->n_modules);
    if (rc == 0) {
        for (int i = 0; i < a->n_modules; i++) {
            const adapter_site *md = &a->modules[i];
            ls_lora_site *s = lora_find_site(lo, md->layer, (lora_module_id)module_from_name(m->cfg.family, md->path));
            // PEFT's scale of this module (rank_pattern / alpha_pattern resolved by the reader)
            s->scale = md->scale;
            lora_set_site(lo, s, md->A, md->B);
        }
    }
    free(specs);
    if (rc != 0) {
        lora_free(lo, NULL);
        return -1;
    }
    m->lora = lo;
    lora_reserve(lo, m->Bcap * m->Tcap);
    return 0;
}

static int compare_modules(const void *x, const void *y) {
    const adapter_site *a = x, *b = y;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return strcmp(a->path, b->path);
}

int lora_to_adapter(const ls_lora *lo, lora_adapter *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < lo->n_sites; i++)
        if (!lora_module_path(lo->family, lo->sites[i].module))
            return ls_fail("lora_to_adapter: layer %d %s: a row block of c_attn has no PEFT module "
                           "(adapt c_attn as a whole to save in PEFT's format)",
                           lo->sites[i].layer, lora_module_name(lo->family, lo->sites[i].module));
    a->family = lo->family;
    a->r = lo->cfg.rank;
    a->alpha = lo->cfg.alpha;
    a->use_rslora = lo->cfg.rslora;
    a->n_modules = lo->n_sites;
    a->modules = ls_calloc((size_t)(lo->n_sites ? lo->n_sites : 1), sizeof(adapter_site));
    a->target_modules = ls_calloc(LORA_N_MODULES, sizeof(char *));
    for (int i = 0; i < lo->n_sites; i++) {
        const ls_lora_site *s = &lo->sites[i];
        adapter_site *md = &a->modules[i];
        const char *path = lora_module_path(lo->family, s->module);
        md->layer = s->layer;
        snprintf(md->path, sizeof md->path, "%s", path);
        md->r = s->rank;
        md->alpha = s->alpha;
        md->scale = s->scale;
        md->d_out = s->d_out;
        md->d_in = s->d_in;
        md->A = ls_malloc((size_t)s->rank * s->d_in * sizeof(float));
        md->B = ls_malloc((size_t)s->d_out * s->rank * sizeof(float));
        lora_get_site(lo, s, md->A, md->B);
        // PEFT target names: the leaf ("q_proj"); GPT-2's two c_proj modules
        // are told apart by their parent ("attn.c_proj", "mlp.c_proj")
        const char *target = arch_peft_target(lo->family, module_of(lo->family, s->module));
        int seen = 0;
        for (int k = 0; k < a->n_targets; k++) seen |= strcmp(a->target_modules[k], target) == 0;
        if (!seen) a->target_modules[a->n_targets++] = ls_strdup(target);
    }
    qsort(a->modules, (size_t)a->n_modules, sizeof(adapter_site), compare_modules);
    return 0;
}

void lora_free(ls_lora *lo, ls_model *m) {
    if (m && m->lora == lo) m->lora = NULL;
    if (lo->be) {
        if (lo->params) lo->be->free(lo->params);
        if (lo->grads) lo->be->free(lo->grads);
        if (lo->acts) lo->be->free(lo->acts);
        if (lo->xdrop) lo->be->free(lo->xdrop);
        if (lo->dh) lo->be->free(lo->dh);
    }
    free(lo->sites);
    free(lo->lin_first);
    free(lo->lin_count);
    memset(lo, 0, sizeof *lo);
}

void lora_zero_grad(ls_lora *lo) { lo->be->zero(lo->grads, lo->n_params); }

ls_lora_site *lora_find_site(ls_lora *lo, int layer, lora_module_id mod) {
    for (int i = 0; i < lo->n_sites; i++)
        if (lo->sites[i].layer == layer && lo->sites[i].module == mod) return &lo->sites[i];
    return NULL;
}

void lora_get_site(const ls_lora *lo, const ls_lora_site *s, float *A, float *B) {
    lo->be->download(A, s->A, (size_t)s->rank * s->d_in);
    lo->be->download(B, s->B, (size_t)s->d_out * s->rank);
}

void lora_set_site(ls_lora *lo, ls_lora_site *s, const float *A, const float *B) {
    lo->be->upload(s->A, A, (size_t)s->rank * s->d_in);
    lo->be->upload(s->B, B, (size_t)s->d_out * s->rank);
}

void lora_set_dropout_seed(ls_lora *lo, uint64_t seed) { lo->dropout_seed = seed; }

// ----------------------------------------------------------------------------
// merge

void lora_merge_into(float *W, const float *B, const float *A, int d_out, int d_in, int rank,
                     float scale) {
    for (int i = 0; i < d_out; i++)
        for (int j = 0; j < d_in; j++) {
            double d = 0.0;
            for (int k = 0; k < rank; k++) d += (double)B[(size_t)i * rank + k] * A[(size_t)k * d_in + j];
            W[(size_t)i * d_in + j] = (float)(W[(size_t)i * d_in + j] + scale * d);
        }
}

static int merge_sign(ls_lora *lo, ls_model *m, float sign) {
    for (int i = 0; i < lo->n_sites; i++) {
        ls_lora_site *s = &lo->sites[i];
        float *W = linear_weight(m, s->layer, s->linear) + (size_t)s->row0 * s->d_in;
        size_t nw = (size_t)s->d_out * s->d_in;
        float *w = ls_malloc(nw * sizeof(float)), *A = ls_malloc((size_t)s->rank * s->d_in * sizeof(float)),
              *B = ls_malloc((size_t)s->d_out * s->rank * sizeof(float));
        lo->be->download(w, W, nw);
        lora_get_site(lo, s, A, B);
        lora_merge_into(w, B, A, s->d_out, s->d_in, s->rank, sign * s->scale);
        lo->be->upload(W, w, nw);
        free(w); free(A); free(B);
    }
    return 0;
}

int lora_merge(ls_lora *lo, ls_model *m) {
    if (lo->merged) return ls_fail("lora_merge: the adapter is already merged");
    merge_sign(lo, m, 1.0f);
    lo->merged = 1;
    return 0;
}

int lora_unmerge(ls_lora *lo, ls_model *m) {
    if (!lo->merged) return ls_fail("lora_unmerge: the adapter is not merged");
    merge_sign(lo, m, -1.0f);
    lo->merged = 0;
    return 0;
}

// ----------------------------------------------------------------------------
// forward / backward (Eq. 3: h = W0 x + s B A x, ΔW never formed)

static uint64_t site_seed(const ls_lora *lo, const ls_lora_site *s) {
    return ls_seed_mix(lo->dropout_seed, (uint64_t)(s - lo->sites));
}

void lora_linear_forward(ls_lora *lo, int layer, ls_linear lin, float *out, const float *x,
                         int N, int training) {
    if (lo->merged) return;
    int idx = layer * LS_N_LINEAR + lin;
    ls_assert(N <= lo->Ncap);
    const ls_backend *be = lo->be;
    int drop = training && lo->cfg.dropout > 0.0f;
    for (int i = lo->lin_first[idx]; i < lo->lin_first[idx] + lo->lin_count[idx]; i++) {
        ls_lora_site *s = &lo->sites[i];
        const float *xin = x;
        if (drop) {
            be->dropout(lo->xdrop, x, (size_t)N * s->d_in, lo->cfg.dropout, site_seed(lo, s));
            xin = lo->xdrop;
        }
        // h (N, r) = x' A^T; out[:, row0:row0+d_out] += s h B^T
        be->gemm(0, 1, N, s->rank, s->d_in, 1.0f, xin, s->d_in, s->A, s->d_in, 0.0f, s->h, s->rank);
        be->gemm(0, 1, N, s->d_out, s->rank, s->scale, s->h, s->rank, s->B, s->rank, 1.0f,
                 out + s->row0, s->lin_out);
    }
}

int lora_reads_input(const ls_lora *lo, ls_linear lin) {
    if (lo->merged) return 0;
    for (int l = 0; l < lo->n_layers_model; l++)
        if (lo->lin_count[l * LS_N_LINEAR + lin]) return 1;
    return 0;
}

void lora_linear_backward(ls_lora *lo, int layer, ls_linear lin, float *dx, const float *dout,
                          const float *x, int N, int training) {
    if (lo->merged) return;
    int idx = layer * LS_N_LINEAR + lin;
    const ls_backend *be = lo->be;
    int drop = training && lo->cfg.dropout > 0.0f;
    for (int i = lo->lin_first[idx]; i < lo->lin_first[idx] + lo->lin_count[idx]; i++) {
        ls_lora_site *s = &lo->sites[i];
        const float *g = dout + s->row0; // (N, d_out) with row stride lin_out
        // dB (d_out, r) += s g^T h
        be->gemm(1, 0, s->d_out, s->rank, N, s->scale, g, s->lin_out, s->h, s->rank, 1.0f, s->dB,
                 s->rank);
        // dh (N, r) = s g B
        be->gemm(0, 0, N, s->rank, s->d_out, s->scale, g, s->lin_out, s->B, s->rank, 0.0f, lo->dh,
                 s->rank);
        const float *xin = x;
        uint64_t seed = site_seed(lo, s);
        if (drop) { // the same mask as the forward pass: same seed
            be->dropout(lo->xdrop, x, (size_t)N * s->d_in, lo->cfg.dropout, seed);
            xin = lo->xdrop;
        }
        // dA (r, d_in) += dh^T x'
        be->gemm(1, 0, s->rank, s->d_in, N, 1.0f, lo->dh, s->rank, xin, s->d_in, 1.0f, s->dA,
                 s->d_in);
        if (!dx) continue;
        if (drop) { // dx += mask * (dh A) / (1 - p)
            be->gemm(0, 0, N, s->d_in, s->rank, 1.0f, lo->dh, s->rank, s->A, s->d_in, 0.0f,
                     lo->xdrop, s->d_in);
            be->dropout(lo->xdrop, lo->xdrop, (size_t)N * s->d_in, lo->cfg.dropout, seed);
            be->axpy(dx, lo->xdrop, (size_t)N * s->d_in, 1.0f);
        } else {
            be->gemm(0, 0, N, s->d_in, s->rank, 1.0f, lo->dh, s->rank, s->A, s->d_in, 1.0f, dx,
                     s->d_in);
        }
    }
}

// ----------------------------------------------------------------------------
// reporting

static void with_commas(char *out, size_t size, size_t v) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v), k = 0;
    char tmp[48];
    for (int i = 0; i < n; i++) {
        tmp[k++] = digits[i];
        int left = n - 1 - i;
        if (left > 0 && left % 3 == 0) tmp[k++] = ',';
    }
    tmp[k] = '\0';
    snprintf(out, size, "%s", tmp);
}

char *lora_format_trainable(char *buf, size_t size, size_t trainable, size_t all) {
    char a[48], b[48];
    with_commas(a, sizeof a, trainable);
    with_commas(b, sizeof b, all);
    double pct = all ? 100.0 * (double)trainable / (double)all : 0.0;
    snprintf(buf, size, "trainable params: %s || all params: %s || trainable%%: %.4f", a, b, pct);
    return buf;
}
