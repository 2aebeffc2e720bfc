// The encoder family (BERT, RoBERTa): its backend ops against finite
// differences and their definitions, and the model against Hugging Face:
// - all-MiniLM-L6-v2 (../shared/assets): hidden states of a middle and the
//   last layer and BertForSequenceClassification's logits for padded
//   sentences, ids from HF's tokenizer (tests/data/encoder/minilm_ref.safetensors);
// - a tiny random BertForSequenceClassification (tests/data/encoder/bert_tiny):
//   loss, logits and the gradient of every parameter, and with PEFT LoRA on
//   q, v (+ the classifier as modules_to_save) the LoRA and classifier
//   gradients (bert_tiny_grads.safetensors).
// References made by tests/reference/make_encoder_reference.py in float64.
//
// Tolerances. Hidden states of MiniLM: |diff| <= 1e-4 * max|ref| per tensor
// (the bound; float32 over 6 layers of width 384 observed ~1e-6).
// Tiny model gradients: |diff| <= 1e-5 * max|g| + 1e-7 per tensor (the
// issue's 1e-5 bound, relative to the tensor's scale).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/rng.h"
#include "engine_testutil.h"
#include "harness.h"
#include "io/adapter.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

static const ls_backend *be;

#define FD_H 5e-3f
#define FD_RTOL 2e-3
#define FD_ATOL 5e-4

// ----------------------------------------------------------------------------
// ops

typedef struct {
    int B, T, NH, HS;
    const int *mask;
    float *qkv, *att, *out, *wout;
} att_ctx;

static double att_obj(void *p) {
    att_ctx *c = p;
    be->attention_bidir_forward(c->out, c->att, c->qkv, c->mask, c->B, c->T, c->NH, c->HS);
    return et_dot(c->wout, c->out, (size_t)c->B * c->T * c->NH * c->HS);
}

static void test_bidir_attention_backward_matches_finite_differences(void) {
    int B = 2, T = 5, NH = 2, HS = 3;
    int mask[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}; // sequence 1 has 3 tokens
    int n_qkv = B * T * 3 * NH * HS, n_out = B * T * NH * HS;
    att_ctx c = {B, T, NH, HS, mask, et_randn(n_qkv, 61, 1), malloc(sizeof(float) * B * NH * T * T),
                 malloc(sizeof(float) * n_out), et_randn(n_out, 62, 1)};
    float *g = malloc(sizeof(float) * n_qkv), *datt = malloc(sizeof(float) * B * NH * T * T);
    att_obj(&c);
    be->attention_bidir_backward(g, datt, c.wout, c.qkv, c.att, mask, B, T, NH, HS);
    CHECK(et_fd_check("dqkv", att_obj, &c, c.qkv, g, n_qkv, FD_H, FD_RTOL, FD_ATOL) == 0);
    // masked keys: probability 0, no gradient, and no influence on any output
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++)
            for (int u = 3; u < T; u++) CHECK(c.att[((size_t)(1 * NH + h) * T + t) * T + u] == 0.0f);
    float *before = malloc(sizeof(float) * n_out);
    memcpy(before, c.out, sizeof(float) * n_out);
    for (int t = 3; t < T; t++)
        for (int j = NH * HS; j < 3 * NH * HS; j++) {
            size_t i = ((size_t)(1 * T + t) * 3 * NH * HS) + j;
            CHECK(g[i] == 0.0f);
            c.qkv[i] += 10.0f;
        }
    att_obj(&c);
    CHECK(memcmp(before, c.out, sizeof(float) * n_out) == 0);
    free(c.qkv); free(c.att); free(c.out); free(c.wout); free(g); free(datt); free(before);
}

// Every row attends to every key (no causal triangle): out of row 0 is
// softmax(q0 K^T / sqrt(HS)) V over all T keys, in double.
static void test_bidir_attention_row_zero_sees_all_keys(void) {
    int T = 4, HS = 2;
    float *qkv = et_randn(T * 3 * HS, 63, 1), att[16], out[8];
    be->attention_bidir_forward(out, att, qkv, NULL, 1, T, 1, HS);
    double s[4], z = 0, mx = -1e300;
    for (int u = 0; u < T; u++) {
        s[u] = (qkv[0] * qkv[u * 6 + 2] + qkv[1] * qkv[u * 6 + 3]) / sqrt(2.0);
        mx = fmax(mx, s[u]);
    }
    for (int u = 0; u < T; u++) z += s[u] = exp(s[u] - mx);
    for (int i = 0; i < HS; i++) {
        double o = 0;
        for (int u = 0; u < T; u++) o += s[u] / z * qkv[u * 6 + 4 + i];
        CHECK_NEAR(out[i], o, 1e-6);
    }
    free(qkv);
}

typedef struct {
    int which, n; // 0 gelu_erf, 1 tanh
    float *inp, *out, *wout;
} pw_ctx;

static double pw_obj(void *p) {
    pw_ctx *c = p;
    if (c->which == 0) be->gelu_erf_forward(c->out, c->inp, (size_t)c->n);
    else be->tanh_forward(c->out, c->inp, (size_t)c->n);
    return et_dot(c->wout, c->out, (size_t)c->n);
}

static void test_gelu_erf_matches_definition_and_finite_differences(void) {
    pw_ctx c = {0, 40, et_randn(40, 64, 2), malloc(sizeof(float) * 40), et_randn(40, 65, 1)};
    pw_obj(&c);
    for (int i = 0; i < c.n; i++) {
        double x = c.inp[i];
        CHECK_NEAR(c.out[i], 0.5 * x * (1 + erf(x / sqrt(2.0))), 1e-6 * fmax(1, fabs(x)));
    }
    float *g = malloc(sizeof(float) * c.n);
    be->gelu_erf_backward(g, c.inp, c.wout, (size_t)c.n);
    CHECK(et_fd_check("gelu_erf dinp", pw_obj, &c, c.inp, g, c.n, FD_H, FD_RTOL, FD_ATOL) == 0);
    free(c.inp); free(c.out); free(c.wout); free(g);
}

static void test_tanh_backward_matches_finite_differences(void) {
    pw_ctx c = {1, 40, et_randn(40, 66, 1.5f), malloc(sizeof(float) * 40), et_randn(40, 67, 1)};
    pw_obj(&c);
    for (int i = 0; i < c.n; i++) CHECK_NEAR(c.out[i], tanh((double)c.inp[i]), 1e-6);
    float *g = malloc(sizeof(float) * c.n);
    be->tanh_backward(g, c.out, c.wout, (size_t)c.n);
    CHECK(et_fd_check("tanh dinp", pw_obj, &c, c.inp, g, c.n, FD_H, FD_RTOL, FD_ATOL) == 0);
    free(c.inp); free(c.out); free(c.wout); free(g);
}

typedef struct {
    int B, T, C;
    const int *mask;
    float *inp, *out, *wout;
} pool_ctx;

static double pool_obj(void *p) {
    pool_ctx *c = p;
    be->mean_pool_forward(c->out, c->inp, c->mask, c->B, c->T, c->C);
    return et_dot(c->wout, c->out, (size_t)c->B * c->C);
}

static void test_mean_pool_averages_kept_tokens_and_backward_matches_finite_differences(void) {
    int B = 2, T = 3, C = 4, mask[6] = {1, 1, 1, 1, 0, 0};
    pool_ctx c = {B, T, C, mask, et_randn(B * T * C, 68, 1), malloc(sizeof(float) * B * C), et_randn(B * C, 69, 1)};
    pool_obj(&c);
    for (int k = 0; k < C; k++) {
        CHECK_NEAR(c.out[k], (c.inp[k] + c.inp[C + k] + c.inp[2 * C + k]) / 3.0, 1e-6);
        CHECK_NEAR(c.out[C + k], c.inp[3 * C + k], 1e-6); // sequence 1 keeps one token
    }
    float *g = malloc(sizeof(float) * B * T * C);
    be->mean_pool_backward(g, c.wout, mask, B, T, C);
    CHECK(et_fd_check("mean_pool dinp", pool_obj, &c, c.inp, g, B * T * C, 1e-2f, 1e-4, 2e-4) == 0);
    for (int k = 0; k < 2 * C; k++) CHECK(g[4 * C + k] == 0.0f);
    free(c.inp); free(c.out); free(c.wout); free(g);
}

// ----------------------------------------------------------------------------
// the model against Hugging Face

// max |a - b| <= rtol * max |b| + atol, printing the observed error either way.
static int check_array(const char *what, const float *a, const float *b, size_t n, double rtol, double atol) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
        if (!isfinite(a[i])) d = INFINITY;
    }
    int ok = d <= rtol * s + atol;
    printf("  %-72s max|diff| %.3g (%.2g of max|ref| %.4g)%s\n", what, d, s > 0 ? d / s : 0.0, s,
           ok ? "" : "  <-- FAIL");
    CHECK_MSG(ok, "%s: max |diff| %.3g > %.3g * %.4g + %.3g", what, d, rtol, s, atol);
    return ok;
}

static float *load_ref(const st_file *f, const char *name, size_t *n) {
    const st_tensor *t = st_find(f, name);
    CHECK_MSG(t != NULL, "reference tensor %s missing", name);
    if (!t) return NULL;
    if (n) *n = (size_t)t->numel;
    return st_load_float(f, t);
}

typedef struct {
    st_file f;
    int B, T;
    int *ids, *types, *mask, *labels;
} ref_batch;

static int open_batch(ref_batch *r, const char *path, int with_labels) {
    memset(r, 0, sizeof *r);
    if (st_open(&r->f, path) != 0) {
        CHECK_MSG(0, "%s", ls_error());
        return -1;
    }
    int B2, T2;
    r->ids = et_load_ints(&r->f, "input_ids", &r->B, &r->T);
    r->types = et_load_ints(&r->f, "token_type_ids", &B2, &T2);
    r->mask = et_load_ints(&r->f, "attention_mask", &B2, &T2);
    if (with_labels) r->labels = et_load_ints(&r->f, "labels", &B2, NULL);
    return r->ids && r->types && r->mask && (!with_labels || r->labels) ? 0 : -1;
}

static void close_batch(ref_batch *r) {
    free(r->ids); free(r->types); free(r->mask); free(r->labels);
    st_close(&r->f);
}

// all-MiniLM-L6-v2: a BertModel file (no "bert." prefix, an I64 position_ids
// buffer, no classifier) against HF's hidden states, with the reference's
// classifier BertForSequenceClassification's logits, and with mean pooling
// sentence-transformers' sentence embedding (before its L2 normalisation).
static void test_minilm_hidden_states_and_logits_match_transformers(void) {
    const char *asset = ls_test_asset("models/all-MiniLM-L6-v2/model.safetensors");
    if (!asset) SKIP("../shared/assets/models/all-MiniLM-L6-v2 is absent");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", asset);
    *strrchr(dir, '/') = '\0';
    ref_batch r;
    if (open_batch(&r, ls_test_source("data/encoder/minilm_ref.safetensors"), 0)) { close_batch(&r); return; }
    ls_model m;
    if (et_load_model(&m, dir, be) != 0) { close_batch(&r); return; }
    CHECK_INT(m.cfg.family, LS_FAMILY_BERT);
    CHECK_INT(m.C, 384);
    CHECK_INT(m.L, 6);
    CHECK_INT(m.head_initialised, 1);
    CHECK(model_reserve(&m, r.B, r.T) == 0);
    CHECK(model_classify_forward(&m, r.ids, r.types, r.mask, NULL, r.B, r.T) == 0.0f);
    size_t n;
    float *h = malloc(sizeof(float) * (size_t)r.B * r.T * m.C);
    const char *names[2] = {"hidden_2", "hidden_last"};
    int layers[2] = {2, 5};
    for (int k = 0; k < 2; k++) {
        float *ref = load_ref(&r.f, names[k], &n);
        CHECK(model_hidden_states(&m, layers[k], h) == 0);
        if (ref && n == (size_t)r.B * r.T * m.C) check_array(names[k], h, ref, n, 1e-4, 0);
        free(ref);
    }
    float *w = load_ref(&r.f, "classifier.weight", NULL), *b = load_ref(&r.f, "classifier.bias", NULL);
    float *lref = load_ref(&r.f, "logits", &n);
    if (w && b && lref) {
        CHECK(model_set_tensor(&m, "classifier.weight", w) == 0);
        CHECK(model_set_tensor(&m, "classifier.bias", b) == 0);
        model_classify_forward(&m, r.ids, r.types, r.mask, NULL, r.B, r.T);
        float lg[8];
        model_class_logits(&m, lg);
        check_array("BertForSequenceClassification logits", lg, lref, n, 1e-4, 0);
    }
    // sentence-transformers' mean pooling (the model's 1_Pooling config) is the mean-pooling head's input
    float *pref = load_ref(&r.f, "mean_pooled", &n);
    m.cfg.pooling = LS_POOL_MEAN;
    model_classify_forward(&m, r.ids, r.types, r.mask, NULL, r.B, r.T);
    if (pref && n == (size_t)r.B * m.C) {
        be->download(h, m.acts.pool_in, n);
        check_array("mean pooling (sentence-transformers)", h, pref, n, 1e-4, 0);
    }
    free(pref); free(w); free(b); free(lref); free(h);
    model_free(&m);
    close_batch(&r);
}

#define TINY_GRAD_RTOL 1e-5
#define TINY_GRAD_ATOL 1e-7

// A tiny HF sequence classifier: loss, logits and d loss / d every parameter.
static void full_gradients_match(const char *ref, const char *model_dir, ls_family family, int num_labels) {
    ref_batch r;
    if (open_batch(&r, ls_test_source(ref), 1)) { close_batch(&r); return; }
    ls_model m;
    if (et_load_model(&m, ls_test_source(model_dir), be) != 0) { close_batch(&r); return; }
    CHECK_INT(m.cfg.family, family);
    CHECK_INT(m.head_initialised, 0);
    CHECK_INT(m.cfg.num_labels, num_labels);
    model_enable_grads(&m);
    CHECK(model_reserve(&m, r.B, r.T) == 0);
    float loss = model_classify_forward(&m, r.ids, r.types, r.mask, r.labels, r.B, r.T);
    float *lref = load_ref(&r.f, "loss", NULL), *gref = NULL;
    size_t n;
    if (lref) CHECK_CLOSE(loss, lref[0], 1e-6, 0);
    printf("  loss %.9g, reference %.9g\n", loss, lref ? lref[0] : NAN);
    float *logits_ref = load_ref(&r.f, "logits", &n), lg[16];
    model_class_logits(&m, lg);
    if (logits_ref) check_array("logits", lg, logits_ref, n, 1e-5, 0);
    model_classify_backward(&m, 1.0f);
    int checked = 0;
    for (int i = 0; i < m.n_views; i++) {
        char key[160];
        snprintf(key, sizeof key, "full_grad.%s", m.views[i].name);
        gref = load_ref(&r.f, key, &n);
        if (!gref) continue;
        float *g = malloc(sizeof(float) * m.views[i].numel);
        CHECK(model_get_grad(&m, m.views[i].name, g) == 0);
        CHECK_INT(n, m.views[i].numel);
        if (n == m.views[i].numel) check_array(key, g, gref, n, TINY_GRAD_RTOL, TINY_GRAD_ATOL);
        checked++;
        free(g);
        free(gref);
    }
    CHECK_INT(checked, m.n_views); // every parameter of the model has its reference
    free(lref); free(logits_ref);
    model_free(&m);
    close_batch(&r);
}

static void test_bert_tiny_full_gradients_match_pytorch(void) {
    full_gradients_match("data/encoder/bert_tiny_grads.safetensors", "data/encoder/bert_tiny", LS_FAMILY_BERT, 3);
}

// RoBERTa: positions from padding_idx + 1, the head classifier.dense + out_proj.
static void test_roberta_tiny_full_gradients_match_pytorch(void) {
    full_gradients_match("data/encoder/roberta_tiny_grads.safetensors", "data/encoder/roberta_tiny",
                         LS_FAMILY_ROBERTA, 2);
}

// PEFT LoRA (q, v; r 4, alpha 8) with the classifier in modules_to_save: the
// gradients of every lora_A / lora_B and of the classifier; the pooler and
// the base stay frozen (their gradients stay 0).
static void test_bert_tiny_lora_gradients_match_peft(void) {
    ref_batch r;
    if (open_batch(&r, ls_test_source("data/encoder/bert_tiny_grads.safetensors"), 1)) { close_batch(&r); return; }
    ls_model m;
    if (et_load_model(&m, ls_test_source("data/encoder/bert_tiny"), be) != 0) { close_batch(&r); return; }
    CHECK(model_reserve(&m, r.B, r.T) == 0);
    ls_lora lo;
    ls_lora_config lc;
    lora_config_default(&lc);
    lc.rank = 4;
    lc.alpha = 8.0f;
    CHECK(lora_parse_modules(m.cfg.family, "query,value", &lc.modules) == 0);
    CHECK(lora_build(&lo, &m, &lc) == 0);
    CHECK_INT(lo.n_sites, 4);
    const char *pre = "base_model.model.bert.encoder.layer";
    for (int i = 0; i < lo.n_sites; i++) {
        ls_lora_site *s = &lo.sites[i];
        char ka[200], kb[200];
        const char *path = lora_module_path(m.cfg.family, s->module);
        snprintf(ka, sizeof ka, "%s.%d.%s.lora_A.default.weight", pre, s->layer, path);
        snprintf(kb, sizeof kb, "%s.%d.%s.lora_B.default.weight", pre, s->layer, path);
        float *A = load_ref(&r.f, ka, NULL), *Bm = load_ref(&r.f, kb, NULL);
        if (A && Bm) lora_set_site(&lo, s, A, Bm);
        free(A); free(Bm);
    }
    model_enable_head_grads(&m);
    size_t n;
    float loss = model_classify_forward(&m, r.ids, r.types, r.mask, r.labels, r.B, r.T), lg[16];
    float *lref = load_ref(&r.f, "lora_loss", NULL), *logits_ref = load_ref(&r.f, "lora_logits", &n);
    if (lref) CHECK_CLOSE(loss, lref[0], 1e-6, 0);
    model_class_logits(&m, lg);
    if (logits_ref) check_array("lora logits", lg, logits_ref, n, 1e-5, 0);
    model_classify_backward(&m, 1.0f);
    for (int i = 0; i < lo.n_sites; i++) {
        ls_lora_site *s = &lo.sites[i];
        for (int ab = 0; ab < 2; ab++) {
            char key[220];
            snprintf(key, sizeof key, "%s.%d.%s.lora_%c.default.weight.grad", pre, s->layer,
                     lora_module_path(m.cfg.family, s->module), ab ? 'B' : 'A');
            float *gref = load_ref(&r.f, key, &n);
            if (gref) check_array(key, ab ? s->dB : s->dA, gref, n, TINY_GRAD_RTOL, TINY_GRAD_ATOL);
            free(gref);
        }
    }
    const char *head[2][2] = {{"classifier.weight", "base_model.model.classifier.modules_to_save.default.weight.grad"},
                              {"classifier.bias", "base_model.model.classifier.modules_to_save.default.bias.grad"}};
    for (int k = 0; k < 2; k++) {
        float *gref = load_ref(&r.f, head[k][1], &n), g[128];
        CHECK(model_get_grad(&m, head[k][0], g) == 0);
        if (gref) check_array(head[k][1], g, gref, n, TINY_GRAD_RTOL, TINY_GRAD_ATOL);
        free(gref);
    }
    const char *frozen[2] = {"bert.pooler.dense.weight", "bert.encoder.layer.1.attention.self.query.weight"};
    for (int k = 0; k < 2; k++) {
        float g[32 * 32];
        CHECK(model_get_grad(&m, frozen[k], g) == 0);
        double s = 0;
        for (int i = 0; i < 32 * 32; i++) s += fabs(g[i]);
        CHECK_MSG(s == 0.0, "%s: frozen but has gradient sum |g| = %g", frozen[k], s);
    }
    free(lref); free(logits_ref);
    lora_free(&lo, &m);
    model_free(&m);
    close_batch(&r);
}

// Logits of the tiny BERT with a PEFT adapter applied (LoRA sites and saved head).
static int adapter_logits_on(const char *model_dir, const char *adapter_dir, const ref_batch *r, float *logits,
                             lora_adapter *keep) {
    ls_model m;
    if (et_load_model(&m, model_dir, be) != 0) return -1;
    lora_adapter a;
    int rc = adapter_load(&a, adapter_dir);
    CHECK_MSG(rc == 0, "adapter_load: %s", ls_error());
    if (rc) { model_free(&m); return -1; }
    ls_lora lo;
    CHECK(model_reserve(&m, r->B, r->T) == 0);
    rc = lora_build_from_adapter(&lo, &m, &a);
    CHECK_MSG(rc == 0, "lora_build_from_adapter: %s", ls_error());
    if (!rc) rc = model_head_from_adapter(&m, &a);
    CHECK_MSG(rc == 0, "model_head_from_adapter: %s", ls_error());
    if (!rc) {
        model_classify_forward(&m, r->ids, r->types, r->mask, NULL, r->B, r->T);
        model_class_logits(&m, logits);
        if (keep) { // lorascope's own adapter of the same model, as training saves it
            CHECK(lora_to_adapter(&lo, keep) == 0);
            CHECK(model_head_to_adapter(&m, keep) == 0);
            keep->r = a.r;
            keep->alpha = a.alpha;
            for (int k = 0; k < keep->n_targets; k++) free(keep->target_modules[k]);
            free(keep->target_modules); // lorascope's own target names, replaced by PEFT's below
            keep->n_targets = 2;
            keep->target_modules = malloc(2 * sizeof(char *));
            keep->target_modules[0] = ls_strdup("query");
            keep->target_modules[1] = ls_strdup("value");
        }
        lora_free(&lo, &m);
    }
    adapter_free(&a);
    model_free(&m);
    return rc;
}

static int adapter_logits(const char *adapter_dir, const ref_batch *r, float *logits, lora_adapter *keep) {
    return adapter_logits_on(ls_test_source("data/encoder/bert_tiny"), adapter_dir, r, logits, keep);
}

// An adapter lorascope trained on all-MiniLM-L6-v2 (q, v at r 4 and the new
// classifier, written by `train --task sst2` and committed as written), which
// PEFT loaded onto transformers' BertForSequenceClassification: lorascope's
// logits with it equal PEFT's on the reference sentences
// (tests/reference/make_minilm_adapter_reference.py). `name` is the adapter's
// directory under tests/data/encoder; its logits are in <name>_logits.safetensors.
static void check_minilm_adapter_against_peft(const char *name) {
    const char *asset = ls_test_asset("models/all-MiniLM-L6-v2/model.safetensors");
    if (!asset) SKIP("../shared/assets/models/all-MiniLM-L6-v2 is absent");
    char dir[4096], adapter[256], logits[256];
    snprintf(dir, sizeof dir, "%s", asset);
    *strrchr(dir, '/') = '\0';
    snprintf(adapter, sizeof adapter, "data/encoder/%s", name);
    snprintf(logits, sizeof logits, "data/encoder/%s_logits.safetensors", name);
    ref_batch r;
    if (open_batch(&r, ls_test_source("data/encoder/minilm_ref.safetensors"), 0)) { close_batch(&r); return; }
    float *lg = calloc((size_t)r.B * 2, sizeof(float));
    if (adapter_logits_on(dir, ls_test_source(adapter), &r, lg, NULL) == 0) {
        st_file f;
        CHECK(st_open(&f, ls_test_source(logits)) == 0);
        size_t n = 0;
        float *ref = load_ref(&f, "logits", &n);
        CHECK_INT((long)n, (long)r.B * 2);
        if (ref && n == (size_t)r.B * 2) check_array("logits with lorascope's adapter, PEFT's", lg, ref, n, 1e-4, 0);
        free(ref);
        st_close(&f);
    }
    free(lg);
    close_batch(&r);
}

static void test_lorascope_minilm_adapter_gives_pefts_logits(void) {
    check_minilm_adapter_against_peft("lorascope_minilm_adapter");
}

// The same with the pooler trained as well (`--modules-to-save
// classifier,pooler`; PEFT's modules_to_save = ["classifier", "pooler"]): the
// pooler is saved under PEFT's key and PEFT loads it.
static void test_lorascope_minilm_pooler_adapter_gives_pefts_logits(void) {
    check_minilm_adapter_against_peft("lorascope_minilm_adapter_pooler");
}

// An adapter PEFT saved (q, v + the classifier in modules_to_save) gives
// PEFT's logits; saved again by lorascope it has PEFT's keys and reloads to
// the same bits (tests/reference/check_encoder_adapter.py loads that copy with PEFT).
static void test_peft_bert_adapter_round_trips_through_lorascope(void) {
    ref_batch r;
    if (open_batch(&r, ls_test_source("data/encoder/bert_tiny_grads.safetensors"), 0)) { close_batch(&r); return; }
    char peft_dir[4096];
    snprintf(peft_dir, sizeof peft_dir, "%s", ls_test_source("data/encoder/peft_bert_tiny"));
    float lg[16], lg2[16];
    lora_adapter ours = {0};
    if (adapter_logits(peft_dir, &r, lg, &ours) == 0) {
        st_file f;
        CHECK(st_open(&f, ls_test_source("data/encoder/peft_bert_tiny_logits.safetensors")) == 0);
        size_t n;
        float *ref = load_ref(&f, "logits", &n);
        if (ref) check_array("logits with PEFT's adapter", lg, ref, n, 1e-5, 0);
        free(ref);
        st_close(&f);
        CHECK_INT(ours.n_saved, 2);
        const char *dir = ls_test_tmpdir("encoder_adapter");
        CHECK(adapter_save(&ours, dir) == 0);
        printf("  lorascope's copy of the adapter: %s\n", dir);
        st_file a, b;
        char path[4200];
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        CHECK(st_open(&a, path) == 0);
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", peft_dir);
        CHECK(st_open(&b, path) == 0);
        CHECK_INT(a.n_tensors, b.n_tensors);
        for (int i = 0; i < b.n_tensors; i++)
            CHECK_MSG(st_find(&a, b.tensors[i].name) != NULL, "PEFT key %s missing from lorascope's adapter",
                      b.tensors[i].name);
        st_close(&a);
        st_close(&b);
        char *cfg = ls_read_file(strcat(strcpy(path, dir), "/adapter_config.json"), NULL);
        CHECK_STR_CONTAINS(cfg, "\"SEQ_CLS\"");
        CHECK_STR_CONTAINS(cfg, "\"classifier\"");
        free(cfg);
        if (adapter_logits(dir, &r, lg2, NULL) == 0)
            CHECK(memcmp(lg, lg2, sizeof(float) * (size_t)r.B * 3) == 0);
    }
    adapter_free(&ours);
    close_batch(&r);
}

// ----------------------------------------------------------------------------
// the model against finite differences (what the HF references do not cover:
// mean pooling, LoRA on every encoder module, LoRA dropout)

typedef struct {
    ls_model *m;
    int B, T;
    const int *ids, *types, *mask, *labels;
} cls_ctx;

static double cls_loss(void *p) {
    cls_ctx *c = p;
    return model_classify_forward(c->m, c->ids, c->types, c->mask, c->labels, c->B, c->T);
}

// A random tiny encoder (d 16, 2 layers, 3 labels; RoBERTa's positions from
// 2) reserved for its batch, and ctx over that batch: two rows of 5 tokens
// with types, the second with two padded positions.
static void tiny_encoder(ls_model *m, ls_family family, ls_pooling pooling, uint64_t seed, uint64_t head_seed,
                         cls_ctx *ctx) {
    static const int ids[10] = {2, 7, 9, 11, 3, 2, 40, 3, 0, 0}, types[10] = {0, 0, 1, 1, 1, 0, 0, 0, 0, 0},
                     mask[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, labels[2] = {2, 0};
    int offset = family == LS_FAMILY_ROBERTA ? 2 : 0;
    ls_model_config c = {family, 16, 24, 2, 2, 2, 50, 12, 1e-12f, 0.0f, 0, 1, 2, 3, offset, pooling, 0.3f};
    CHECK(model_build_random(m, &c, seed, be) == 0);
    CHECK(model_init_head(m, head_seed, 1) == 0);
    *ctx = (cls_ctx){m, 2, 5, ids, types, mask, labels};
    CHECK(model_reserve(m, ctx->B, ctx->T) == 0);
}

// A random tiny BERT with mean pooling, LoRA (dropout 0.1, fixed seed) on q k v o
// intermediate output, the head trained as modules_to_save: d loss / d every
// LoRA A, B and the classifier against central differences in float.
static void test_mean_pool_lora_all_modules_gradients_match_finite_differences(void) {
    ls_model m;
    cls_ctx ctx;
    tiny_encoder(&m, LS_FAMILY_BERT, LS_POOL_MEAN, 17, 3, &ctx);
    ls_lora lo;
    ls_lora_config lc;
    lora_config_default(&lc);
    lc.rank = 2;
    lc.alpha = 3.0f;
    lc.dropout = 0.1f;
    CHECK(lora_parse_modules(m.cfg.family, "all", &lc.modules) == 0);
    CHECK(lora_build(&lo, &m, &lc) == 0);
    CHECK_INT(lo.n_sites, 12);
    ls_rng r;
    ls_rng_seed(&r, 5);
    for (size_t i = 0; i < lo.n_params; i++) lo.params[i] = (float)(0.3 * ls_rng_normal(&r));
    lora_set_dropout_seed(&lo, 99);
    model_set_training(&m, 1);
    model_enable_head_grads(&m);
    lora_zero_grad(&lo);
    model_zero_grad(&m);
    cls_loss(&ctx);
    model_classify_backward(&m, 1.0f);
    const ls_param_view *w = model_find_view(&m, "classifier.weight");
    int bad = et_fd_check("lora A/B", cls_loss, &ctx, lo.params, lo.grads, (int)lo.n_params, 1e-2f, 2e-2, 2e-4);
    bad += et_fd_check("classifier.weight", cls_loss, &ctx, m.params_memory + w->offset, m.grads_memory + w->offset,
                    (int)w->numel, 1e-2f, 2e-2, 2e-4);
    CHECK_MSG(bad == 0, "%d gradient entries off", bad);
    lora_free(&lo, &m);
    model_free(&m);
}

// HF's hidden dropout (p = 0.2, a fixed seed) on a random tiny encoder,
// every parameter trained: with the masks fixed the loss is smooth, so
// d loss / d every parameter (the embeddings' LayerNorm under its dropout,
// each layer's two output projections, the pooler, RoBERTa's head dense whose
// input is dropped too, the classifier) is checked against central
// differences in float (step 3e-3: the random embeddings are small, and 1e-2
// moves them out of the linear range). Dropout is off outside training (the logits without
// it, bit for bit), on in training (the logits change, and a new seed changes
// them again).
static void hidden_dropout_case(ls_family family, ls_pooling pooling) {
    ls_model m;
    cls_ctx ctx;
    tiny_encoder(&m, family, pooling, 23, 4, &ctx);
    float plain[6], eval_mode[6], dropped[6], reseeded[6];
    cls_loss(&ctx);
    model_class_logits(&m, plain);
    CHECK(model_set_hidden_dropout(&m, 0.2f) == 0);
    model_set_dropout_seed(&m, 1234);
    cls_loss(&ctx);
    model_class_logits(&m, eval_mode);
    CHECK_MSG(memcmp(plain, eval_mode, sizeof plain) == 0, "hidden dropout acted outside training");
    model_set_training(&m, 1);
    cls_loss(&ctx);
    model_class_logits(&m, dropped);
    CHECK_MSG(memcmp(plain, dropped, sizeof plain) != 0, "hidden dropout did nothing in training");
    model_set_dropout_seed(&m, 1235);
    cls_loss(&ctx);
    model_class_logits(&m, reseeded);
    CHECK_MSG(memcmp(dropped, reseeded, sizeof dropped) != 0, "a new seed gave the same masks");
    model_set_dropout_seed(&m, 1234);
    model_enable_grads(&m);
    model_zero_grad(&m);
    cls_loss(&ctx);
    model_classify_backward(&m, 1.0f);
    int bad = et_fd_check("every parameter", cls_loss, &ctx, m.params_memory, m.grads_memory, (int)m.n_params, 3e-3f,
                          2e-2, 2e-4);
    CHECK_MSG(bad == 0, "%s, %s pooling: %d gradient entries off", arch_family_name(family),
              pooling == LS_POOL_MEAN ? "mean" : "cls", bad);
    model_free(&m);
}

static void test_hidden_dropout_gradients_match_finite_differences(void) {
    hidden_dropout_case(LS_FAMILY_BERT, LS_POOL_CLS);
    hidden_dropout_case(LS_FAMILY_ROBERTA, LS_POOL_CLS);
    hidden_dropout_case(LS_FAMILY_BERT, LS_POOL_MEAN);
}

// Hidden dropout is the encoder family's (HF's decoders differ) and a probability.
static void test_hidden_dropout_is_checked(void) {
    ls_model_config c = {LS_FAMILY_BERT, 16, 24, 1, 2, 2, 50, 12, 1e-12f, 0.0f, 0, 1, 2, 3, 0, LS_POOL_CLS, 0.3f};
    ls_model m;
    CHECK(model_build_random(&m, &c, 3, be) == 0);
    CHECK(model_set_hidden_dropout(&m, 1.0f) != 0);
    CHECK_STR_CONTAINS(ls_error(), "expected a probability in [0, 1), found 1");
    CHECK(model_set_hidden_dropout(&m, -0.1f) != 0);
    model_free(&m);
    ls_model_config d = {LS_FAMILY_LLAMA, 16, 24, 1, 2, 2, 50, 12, 1e-5f, 10000.0f, 0, 1, 0, 0, 0, LS_POOL_CLS, 0.0f};
    CHECK(model_build_random(&m, &d, 3, be) == 0);
    CHECK(model_set_hidden_dropout(&m, 0.1f) != 0);
    CHECK_STR_CONTAINS(ls_error(), "expected 0 for a llama model (an encoder's only), found 0.1");
    CHECK(model_set_hidden_dropout(&m, 0.0f) == 0);
    model_free(&m);
}

// ----------------------------------------------------------------------------
// files

// HF BERT files hold embeddings.position_ids as I64: read as a buffer (values
// exact), never accepted where a weight is expected.
static void test_safetensors_reads_i64_buffers_and_adapters_refuse_them(void) {
    const char *dir = ls_test_tmpdir("encoder_i64");
    char path[4200];
    const char *hdr = "{\"position_ids\":{\"dtype\":\"I64\",\"shape\":[1,3],\"data_offsets\":[0,24]}}";
    uint64_t n = strlen(hdr);
    int64_t v[3] = {0, 1, 511};
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fwrite(&n, 8, 1, f);
    fwrite(hdr, 1, n, f);
    fwrite(v, 8, 3, f);
    fclose(f);
    st_file sf;
    CHECK_MSG(st_open(&sf, path) == 0, "%s", ls_error());
    const st_tensor *t = st_find(&sf, "position_ids");
    CHECK(t && t->dtype == ST_I64 && !st_dtype_is_float(t->dtype) && t->numel == 3);
    float *x = t ? st_load_float(&sf, t) : NULL;
    if (x) CHECK(x[0] == 0.0f && x[1] == 1.0f && x[2] == 511.0f);
    free(x);
    st_close(&sf);
    // the same bytes as an adapter's lora_A
    const char *hdr2 = "{\"base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight\":"
                       "{\"dtype\":\"I64\",\"shape\":[1,3],\"data_offsets\":[0,24]}}";
    n = strlen(hdr2);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    f = fopen(path, "wb");
    fwrite(&n, 8, 1, f);
    fwrite(hdr2, 1, n, f);
    fwrite(v, 8, 3, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 1, \"lora_alpha\": 1, \"target_modules\": [\"query\"]}";
    CHECK(ls_write_file_atomic(path, cfg, strlen(cfg)) == 0);
    lora_adapter a;
    CHECK(adapter_load(&a, dir) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected dtype F32, F16 or BF16, found I64");
}

static const ls_test tests[] = {
    LS_TEST(test_bidir_attention_backward_matches_finite_differences),
    LS_TEST(test_bidir_attention_row_zero_sees_all_keys),
    LS_TEST(test_gelu_erf_matches_definition_and_finite_differences),
    LS_TEST(test_tanh_backward_matches_finite_differences),
    LS_TEST(test_mean_pool_averages_kept_tokens_and_backward_matches_finite_differences),
    LS_TEST(test_minilm_hidden_states_and_logits_match_transformers),
    LS_TEST(test_bert_tiny_full_gradients_match_pytorch),
    LS_TEST(test_roberta_tiny_full_gradients_match_pytorch),
    LS_TEST(test_bert_tiny_lora_gradients_match_peft),
    LS_TEST(test_peft_bert_adapter_round_trips_through_lorascope),
    LS_TEST(test_lorascope_minilm_adapter_gives_pefts_logits),
    LS_TEST(test_lorascope_minilm_pooler_adapter_gives_pefts_logits),
    LS_TEST(test_mean_pool_lora_all_modules_gradients_match_finite_differences),
    LS_TEST(test_hidden_dropout_gradients_match_finite_differences),
    LS_TEST(test_hidden_dropout_is_checked),
    LS_TEST(test_safetensors_reads_i64_buffers_and_adapters_refuse_them),
};

int main(int argc, char **argv) {
    be = ls_backend_cpu();
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
