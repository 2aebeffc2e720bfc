// The paper's baselines (Tables 2, 3) as training methods of the one engine:
// BitFit and FT^Top2 on a tiny GPT-2 and a tiny BERT classifier (3 layers, so
// that FT^Top2 leaves layer 0 frozen), one training step (train_step) against
// transformers + torch.optim.AdamW (tests/reference/make_methods_reference.py,
// tests/data/methods/):
// - the set of trained tensors is the one torch users get from requires_grad;
// - d loss / d every trained tensor within 1e-5 of PyTorch's (float64);
// - the tensors after one AdamW step within 1e-5 of PyTorch's;
// - every frozen tensor has the same bits after the step, and no gradient.
// Adapter^H / Adapter^L the same way (adapters as forward hooks in PyTorch),
// and inside the model against finite differences. Prefix-embedding tuning
// against PEFT's PROMPT_TUNING.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/adapters.h"
#include "engine/backend_registry.h"
#include "engine/model.h"
#include "engine/prefix.h"
#include "engine/prompt.h"
#include "engine/rng.h"
#include "eval/decode.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/step.h"

#define ABS_TOL 1e-5

static const ls_backend *be;

static int load_model(ls_model *m, const char *dir) {
    ls_checkpoint ck;
    CHECK_MSG(ckpt_load(&ck, ls_test_source(dir)) == 0, "%s", ls_error());
    int rc = model_build_from_checkpoint(m, &ck, be);
    CHECK_MSG(rc == 0, "%s", ls_error());
    ckpt_free(&ck);
    return rc;
}

static int *load_ints(const st_file *f, const char *name, int *n) {
    const st_tensor *t = st_find(f, name);
    CHECK_MSG(t != NULL, "reference tensor %s missing", name);
    float *x = st_load_float(f, t);
    int *v = ls_malloc((size_t)t->numel * sizeof(int));
    for (int64_t i = 0; i < t->numel; i++) v[i] = (int)x[i];
    *n = (int)t->numel;
    free(x);
    return v;
}

// max |a - ref| <= ABS_TOL, printed.
static double max_diff(const float *a, const float *ref, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - ref[i]));
    return d;
}

// The reference batch of `tag` (gpt2: tokens, targets; bert: input_ids,
// attention_mask, labels) in methods_ref.safetensors; the caller frees them.
typedef struct {
    int *tokens, *second, *labels;
    int B, T;
} ref_batch;

static ref_batch load_batch(const st_file *f, const char *tag, int enc) {
    ref_batch b = {0};
    char key[256];
    int n = 0, nl = 0;
    snprintf(key, sizeof key, "%s.%s", tag, enc ? "input_ids" : "tokens");
    b.tokens = load_ints(f, key, &n);
    snprintf(key, sizeof key, "%s.%s", tag, enc ? "attention_mask" : "targets");
    b.second = load_ints(f, key, &n);
    b.labels = enc ? load_ints(f, "bert.labels", &nl) : NULL;
    b.B = enc ? nl : 3;
    b.T = n / b.B;
    return b;
}

static void check_method(const char *tag, const char *dir, const char *method) {
    st_file f;
    CHECK_MSG(st_open(&f, ls_test_source("data/methods/methods_ref.safetensors")) == 0, "%s", ls_error());
    ls_model m;
    if (load_model(&m, dir)) { st_close(&f); return; }
    int enc = arch_is_encoder(m.cfg.family);
    char key[256];
    ref_batch rb = load_batch(&f, tag, enc);
    int *tokens = rb.tokens, *second = rb.second, *labels = rb.labels, B = rb.B, T = rb.T;
    CHECK(model_reserve(&m, B, T) == 0);
    ls_grad_scope scope = !strcmp(method, "bitfit") ? LS_GRADS_BIASES : LS_GRADS_TOP;
    CHECK_MSG(model_enable_grads_scope(&m, scope, 2) == 0, "%s", ls_error());
    float *before = ls_malloc(m.n_params * sizeof(float));
    be->download(before, m.params_memory, m.n_params);

    ls_adamw opt;
    train_step_spec s;
    train_step_spec_init(&s, &m, NULL, &opt);
    ls_param_segment segs[LS_N_PARAM_TENSORS];
    size_t n_train = train_step_spec_set_scope(&s, segs, 0.9f, 0.999f, 1e-3f, 0.01f);
    train_fixed_batch fb = {tokens, enc ? NULL : second, B, T, enc ? second : NULL, labels};
    train_step_stats st;
    char msg[256];
    CHECK_MSG(train_step(&s, 1, 1e-3, train_fixed_batch_next, &fb, &st, msg, sizeof msg) == 0, "%s", ls_error());
    snprintf(key, sizeof key, "%s.%s.loss", tag, method);
    const st_tensor *lt = st_find(&f, key);
    float *lref = st_load_float(&f, lt);
    printf("  %s %s: loss %.9g, reference %.9g; %zu trainable\n", tag, method, st.loss, lref[0], n_train);
    CHECK_CLOSE(st.loss, lref[0], 1e-6, 0);
    free(lref);

    float *after = ls_malloc(m.n_params * sizeof(float)), *grads = ls_malloc(m.n_params * sizeof(float));
    be->download(after, m.params_memory, m.n_params);
    be->download(grads, m.grads_memory, m.n_params);
    size_t n_ref = 0;
    double worst_g = 0, worst_p = 0;
    for (int i = 0; i < m.n_views; i++) {
        const ls_param_view *v = &m.views[i];
        int inside = 0;
        for (int k = 0; k < s.n_segs; k++)
            inside |= v->offset >= segs[k].offset && v->offset + v->numel <= segs[k].offset + segs[k].n;
        snprintf(key, sizeof key, "%s.%s.grad.%s", tag, method, v->name);
        const st_tensor *g = st_find(&f, key);
        CHECK_MSG((g != NULL) == inside, "%s %s: %s: PyTorch %s it, lorascope %s", tag, method, v->name,
                  g ? "trains" : "freezes", inside ? "trains" : "freezes");
        if (!g) { // frozen: the same bits, no gradient
            CHECK_MSG(!memcmp(before + v->offset, after + v->offset, v->numel * sizeof(float)),
                      "%s %s: frozen %s changed", tag, method, v->name);
            for (size_t j = 0; j < v->numel; j++)
                if (grads[v->offset + j] != 0.0f) {
                    CHECK_MSG(0, "%s %s: frozen %s has a gradient", tag, method, v->name);
                    break;
                }
            continue;
        }
        n_ref += v->numel;
        float *gr = st_load_float(&f, g);
        snprintf(key, sizeof key, "%s.%s.after.%s", tag, method, v->name);
        float *pr = st_load_float(&f, st_find(&f, key));
        double dg = max_diff(grads + v->offset, gr, v->numel), dp = max_diff(after + v->offset, pr, v->numel);
        worst_g = fmax(worst_g, dg);
        worst_p = fmax(worst_p, dp);
        CHECK_MSG(dg <= ABS_TOL, "%s %s: grad %s: max |diff| %.3g", tag, method, v->name, dg);
        CHECK_MSG(dp <= ABS_TOL, "%s %s: %s after the step: max |diff| %.3g", tag, method, v->name, dp);
        free(gr);
        free(pr);
    }
    printf("  max |diff|: gradients %.3g, parameters after the step %.3g\n", worst_g, worst_p);
    CHECK_INT((long long)n_train, (long long)n_ref);
    adamw_free(&opt);
    free(before);
    free(after);
    free(grads);
    free(tokens);
    free(second);
    free(labels);
    model_free(&m);
    st_close(&f);
}

static void test_gpt2_bitfit_step_matches_pytorch(void) { check_method("gpt2", "data/methods/gpt2_tiny3", "bitfit"); }
static void test_gpt2_fttop2_step_matches_pytorch(void) { check_method("gpt2", "data/methods/gpt2_tiny3", "fttop2"); }
static void test_bert_bitfit_step_matches_pytorch(void) { check_method("bert", "data/methods/bert_tiny3", "bitfit"); }
static void test_bert_fttop2_step_matches_pytorch(void) { check_method("bert", "data/methods/bert_tiny3", "fttop2"); }

// BitFit needs biases: a llama model has none, and the error says so.
static void test_bitfit_refuses_a_family_without_biases(void) {
    ls_model m;
    if (load_model(&m, "data/peft/llama_tiny/base")) return;
    CHECK(model_enable_grads_scope(&m, LS_GRADS_BIASES, 0) == -1);
    CHECK_STR_CONTAINS(ls_error(), "llama model has no bias terms (expected a family with biases");
    CHECK(model_enable_grads_scope(&m, LS_GRADS_TOP, m.L + 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected 1..");
    model_free(&m);
}

// Adapter^H / Adapter^L inside the whole model (decoder and encoder): at
// initialisation the logits are the base's bit for bit; with W_up, b_up made
// nonzero, the adapters' gradients of the model's loss match central finite
// differences of that loss (float32 forward, h = 1e-2: 2% or 2e-4).
typedef struct {
    ls_model *m;
    const int *tokens, *second, *labels;
    int B, T;
} loss_ctx;

static double model_loss(const loss_ctx *c) {
    if (c->labels) return model_classify_forward(c->m, c->tokens, NULL, c->second, c->labels, c->B, c->T);
    return model_forward(c->m, c->tokens, c->second, NULL, c->B, c->T, 0.0f);
}

static void check_adapters(const char *tag, const char *dir, ls_adapter_kind kind) {
    st_file f;
    CHECK_MSG(st_open(&f, ls_test_source("data/methods/methods_ref.safetensors")) == 0, "%s", ls_error());
    ls_model m;
    if (load_model(&m, dir)) { st_close(&f); return; }
    int enc = arch_is_encoder(m.cfg.family);
    ref_batch rb = load_batch(&f, tag, enc);
    int *tokens = rb.tokens, *second = rb.second, *labels = rb.labels, B = rb.B, T = rb.T;
    CHECK(model_reserve(&m, B, T) == 0);
    loss_ctx c = {&m, tokens, second, labels, B, T};
    double base = model_loss(&c);
    ls_adapters ad;
    CHECK_MSG(adapters_build(&ad, &m, kind, 4, 7) == 0, "%s", ls_error());
    CHECK_MSG(model_loss(&c) == base, "%s: the loss with fresh adapters differs from the base's", tag);
    float *p = ls_malloc(ad.n_params * sizeof(float)), *g = ls_malloc(ad.n_params * sizeof(float));
    be->download(p, ad.params, ad.n_params);
    for (size_t i = 0; i < ad.n_params; i++) p[i] += 0.05f * (float)((i * 7919) % 13) / 13.0f - 0.02f;
    be->upload(ad.params, p, ad.n_params);
    adapters_zero_grad(&ad);
    model_loss(&c);
    if (enc) model_classify_backward(&m, 1.0f);
    else model_backward(&m, 1.0f, 0.0f);
    be->download(g, ad.grads, ad.n_params);
    int bad = 0;
    for (size_t i = 0; i < ad.n_params; i += ad.n_params / 41) {
        float old = p[i];
        p[i] = old + 1e-2f;
        be->upload(ad.params, p, ad.n_params);
        double lp = model_loss(&c);
        p[i] = old - 1e-2f;
        be->upload(ad.params, p, ad.n_params);
        double lm = model_loss(&c);
        p[i] = old;
        be->upload(ad.params, p, ad.n_params);
        double fd = (lp - lm) / 2e-2;
        if (fabs(fd - g[i]) > 2e-2 * fmax(fabs(fd), fabs(g[i])) + 2e-4) {
            if (bad++ < 5) printf("  %s: param %zu: fd %.6g analytic %.6g\n", tag, i, fd, g[i]);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d adapter gradients off their finite differences", tag, bad);
    adapters_free(&ad, &m);
    free(p);
    free(g);
    free(tokens);
    free(second);
    free(labels);
    model_free(&m);
    st_close(&f);
}

// One step of Adapter^H / Adapter^L against PyTorch's (adapters written there
// as forward hooks on the same projections, tests/reference/make_methods_reference.py):
// from the reference's initial adapters, the loss, the gradient of every
// adapter tensor (and an encoder's classifier) within 1e-5, and every one of
// them after one AdamW step (weights decayed, biases not) within 1e-5; the
// frozen base keeps its bits.
static void check_adapter_step(const char *tag, const char *dir, const char *method) {
    st_file f;
    CHECK_MSG(st_open(&f, ls_test_source("data/methods/methods_ref.safetensors")) == 0, "%s", ls_error());
    ls_model m;
    if (load_model(&m, dir)) { st_close(&f); return; }
    int enc = arch_is_encoder(m.cfg.family);
    const char *prefix = arch_family_of(m.cfg.family)->layer_prefix;
    char key[320];
    ref_batch rb = load_batch(&f, tag, enc);
    int *tokens = rb.tokens, *second = rb.second, *labels = rb.labels, B = rb.B, T = rb.T;
    CHECK(model_reserve(&m, B, T) == 0);
    ls_adapters ad;
    CHECK_MSG(adapters_build(&ad, &m, strcmp(method, "adapter-h") ? LS_ADAPTERS_LIN : LS_ADAPTERS_HOULSBY, 4, 1) == 0,
              "%s", ls_error());
    snprintf(key, sizeof key, "%s.%s.init.", tag, method);
    CHECK_MSG(adapters_read(&ad, &f, key, prefix) == 0, "%s", ls_error());
    float *before = ls_malloc(m.n_params * sizeof(float));
    be->download(before, m.params_memory, m.n_params);

    ls_adamw opt, hopt;
    train_step_spec s;
    train_step_spec_init(&s, &m, NULL, &opt);
    train_step_spec_set_adapters(&s, &ad, 0.9f, 0.999f, 1e-3f, 0.01f);
    if (enc) CHECK_MSG(train_step_spec_add_head(&s, &hopt, 0.9f, 0.999f, 1e-3f, 0.01f) == 0, "%s", ls_error());
    train_fixed_batch fb = {tokens, enc ? NULL : second, B, T, enc ? second : NULL, labels};
    train_step_stats st;
    char msg[256];
    CHECK_MSG(train_step(&s, 1, 1e-3, train_fixed_batch_next, &fb, &st, msg, sizeof msg) == 0, "%s", ls_error());
    snprintf(key, sizeof key, "%s.%s.loss", tag, method);
    float *lref = st_load_float(&f, st_find(&f, key));
    printf("  %s %s: loss %.9g, reference %.9g; %zu adapter parameters, %zu head\n", tag, method, st.loss, lref[0],
           ad.n_params, s.n_head);
    CHECK_CLOSE(st.loss, lref[0], 1e-6, 0);
    free(lref);

    float *p = ls_malloc(ad.n_params * sizeof(float)), *g = ls_malloc(ad.n_params * sizeof(float));
    float *after = ls_malloc(m.n_params * sizeof(float)), *mg = ls_malloc(m.n_params * sizeof(float));
    be->download(p, ad.params, ad.n_params);
    be->download(g, ad.grads, ad.n_params);
    be->download(after, m.params_memory, m.n_params);
    if (enc) be->download(mg, m.grads_memory, m.n_params);
    double worst_g = 0, worst_p = 0;
    int n_checked = 0;
    for (int i = 0; i < ad.n_sites * 4 + m.n_views; i++) { // the adapters' tensors, then the model's
        const float *gv, *pv;
        size_t numel;
        char name[160];
        if (i < ad.n_sites * 4) {
            size_t C = ad.C, r = ad.r, sz[4] = {r * C, r, C * r, C}, o = (size_t)(i / 4) * ad.per_site;
            for (int k = 0; k < i % 4; k++) o += sz[k];
            adapters_tensor_name(&ad, prefix, i / 4, i % 4, name, sizeof name);
            gv = g + o, pv = p + o, numel = sz[i % 4];
        } else {
            const ls_param_view *v = &m.views[i - ad.n_sites * 4];
            snprintf(name, sizeof name, "%s", v->name);
            gv = enc ? mg + v->offset : NULL, pv = after + v->offset, numel = v->numel;
        }
        snprintf(key, sizeof key, "%s.%s.grad.%s", tag, method, name);
        const st_tensor *gt = st_find(&f, key);
        if (!gt) { // the frozen base: the same bits
            CHECK_MSG(i >= ad.n_sites * 4, "%s %s: no reference for adapter tensor %s", tag, method, name);
            CHECK_MSG(!memcmp(before + (pv - after), pv, numel * sizeof(float)), "%s %s: frozen %s changed", tag,
                      method, name);
            continue;
        }
        CHECK_MSG(gv != NULL && (int64_t)numel == gt->numel, "%s %s: %s: trained by PyTorch only", tag, method, name);
        if (!gv || (int64_t)numel != gt->numel) continue;
        float *gr = st_load_float(&f, gt);
        snprintf(key, sizeof key, "%s.%s.after.%s", tag, method, name);
        float *pr = st_load_float(&f, st_find(&f, key));
        double dg = max_diff(gv, gr, numel), dp = max_diff(pv, pr, numel);
        worst_g = fmax(worst_g, dg);
        worst_p = fmax(worst_p, dp);
        CHECK_MSG(dg <= ABS_TOL, "%s %s: grad %s: max |diff| %.3g", tag, method, name, dg);
        // tighter than ABS_TOL: a bias decayed by mistake moves by lr wd |p| ~ 1e-6
        CHECK_MSG(dp <= 2e-7, "%s %s: %s after the step: max |diff| %.3g", tag, method, name, dp);
        n_checked++;
        free(gr);
        free(pr);
    }
    printf("  %d tensors; max |diff|: gradients %.3g, parameters after the step %.3g\n", n_checked, worst_g, worst_p);
    CHECK_INT(n_checked, ad.n_sites * 4 + (enc ? 2 : 0));
    adamw_free(&opt);
    if (enc) adamw_free(&hopt);
    adapters_free(&ad, &m);
    free(p);
    free(g);
    free(after);
    free(mg);
    free(before);
    free(tokens);
    free(second);
    free(labels);
    model_free(&m);
    st_close(&f);
}

static void test_gpt2_adapter_h_step_matches_pytorch(void) {
    check_adapter_step("gpt2", "data/methods/gpt2_tiny3", "adapter-h");
}
static void test_gpt2_adapter_l_step_matches_pytorch(void) {
    check_adapter_step("gpt2", "data/methods/gpt2_tiny3", "adapter-l");
}
static void test_bert_adapter_h_step_matches_pytorch(void) {
    check_adapter_step("bert", "data/methods/bert_tiny3", "adapter-h");
}
static void test_bert_adapter_l_step_matches_pytorch(void) {
    check_adapter_step("bert", "data/methods/bert_tiny3", "adapter-l");
}

static void test_gpt2_adapter_h_gradients_match_finite_differences(void) {
    check_adapters("gpt2", "data/methods/gpt2_tiny3", LS_ADAPTERS_HOULSBY);
}
static void test_bert_adapter_h_and_l_gradients_match_finite_differences(void) {
    check_adapters("bert", "data/methods/bert_tiny3", LS_ADAPTERS_HOULSBY);
    check_adapters("bert", "data/methods/bert_tiny3", LS_ADAPTERS_LIN);
}

// Prefix-layer tuning on the tiny GPT-2 and the tiny Llama (GQA: keys and
// values of its 2 kv heads; RoPE positions shifted by l_p) against PEFT's
// PREFIX_TUNING (l_p 3, the prefix as past_key_values, the real tokens at
// positions 3..): from the reference's prompt_embeddings, the loss, d loss /
// d prompt_embeddings (in PEFT's layout, within 1e-3 of its largest entry:
// the tiny models' attention is near uniform, so these gradients are small)
// and the tensor after one AdamW step (within 1e-5; the step is lr-sized
// whatever the gradient's scale); then gradients against central finite
// differences of the model's loss, and the base's bits unchanged.
static void check_prefix(const char *tag, const char *dir) {
    st_file f;
    char key[160];
    CHECK_MSG(st_open(&f, ls_test_source("data/methods/methods_ref.safetensors")) == 0, "%s", ls_error());
    ls_model m;
    if (load_model(&m, dir)) { st_close(&f); return; }
    ref_batch rb = load_batch(&f, tag, 0);
    int *tokens = rb.tokens, *targets = rb.second, B = rb.B, T = rb.T;
    CHECK(model_reserve(&m, B, T) == 0);
    float *before = ls_malloc(m.n_params * sizeof(float));
    be->download(before, m.params_memory, m.n_params);
    ls_prefix pf;
    CHECK_MSG(prefix_build(&pf, &m, 3, 1) == 0, "%s", ls_error());
    float *ref[4];
    const char *what[4] = {"init.prompt_embeddings", "grad.prompt_embeddings", "after.prompt_embeddings", "loss"};
    for (int k = 0; k < 4; k++) {
        snprintf(key, sizeof key, "%s.prefix-layer.%s", tag, what[k]);
        const st_tensor *t = st_find(&f, key);
        CHECK_MSG(t && (k == 3 || t->numel == (int64_t)pf.n_params), "%s: missing or of another size", key);
        if (!t) return;
        ref[k] = st_load_float(&f, t);
    }
    float *init = ref[0], *gref = ref[1], *aref = ref[2], *lref = ref[3];
    prefix_peft_layout(&pf, pf.params, init, 0);
    prefix_zero_grad(&pf);
    float loss = model_forward(&m, tokens, targets, NULL, B, T, 0.0f);
    model_backward(&m, 1.0f, 0.0f);
    float *g = ls_malloc(pf.n_params * sizeof(float));
    prefix_peft_layout(&pf, pf.grads, g, 1);
    double gmax = 0, dg = max_diff(g, gref, pf.n_params);
    for (size_t i = 0; i < pf.n_params; i++) gmax = fmax(gmax, fabs(gref[i]));
    ls_adamw opt;
    adamw_init(&opt, be, pf.n_params, 0.9f, 0.999f, 1e-3f, 0.01f);
    adamw_step(&opt, pf.params, pf.grads, 1e-3f);
    float *now = ls_malloc(m.n_params * sizeof(float)), *after = ls_malloc(pf.n_params * sizeof(float));
    be->download(now, m.params_memory, m.n_params);
    prefix_peft_layout(&pf, pf.params, after, 1);
    double dp = max_diff(after, aref, pf.n_params);
    printf("  %s: loss %.9g, PEFT %.9g; gradient max |diff| %.3g (largest %.3g); after the step %.3g\n", tag, loss, lref[0], dg,
           gmax, dp);
    CHECK_CLOSE(loss, lref[0], 1e-6, 0);
    CHECK_MSG(dg <= 1e-3 * gmax, "prompt_embeddings gradient: max |diff| %.3g, largest %.3g", dg, gmax);
    CHECK_MSG(dp <= 1e-5, "prompt_embeddings after the step: max |diff| %.3g", dp);
    // finite differences of the model's loss (float32 forward, h 1e-2: 2% or 5e-5), on the
    // same model with its matrices 4x larger, so that the prefix moves the loss
    // by more than float32 resolves
    float *big = ls_malloc(m.n_params * sizeof(float));
    memcpy(big, before, m.n_params * sizeof(float));
    for (int i = 0; i < m.n_views; i++)
        if (m.views[i].ndim == 2)
            for (size_t j = 0; j < m.views[i].numel; j++) big[m.views[i].offset + j] *= 4.0f;
    be->upload(m.params_memory, big, m.n_params);
    free(big);
    prefix_zero_grad(&pf);
    model_forward(&m, tokens, targets, NULL, B, T, 0.0f);
    model_backward(&m, 1.0f, 0.0f);
    int bad = 0;
    double fd_max = 0, g_max = 0;
    for (size_t i = 0; i < pf.n_params; i += pf.n_params / 37) {
        float old = pf.params[i];
        pf.params[i] = old + 1e-2f;
        double lp = model_forward(&m, tokens, targets, NULL, B, T, 0.0f);
        pf.params[i] = old - 1e-2f;
        double lm = model_forward(&m, tokens, targets, NULL, B, T, 0.0f);
        pf.params[i] = old;
        double fd = (lp - lm) / 2e-2;
        fd_max = fmax(fd_max, fabs(fd));
        g_max = fmax(g_max, fabs(pf.grads[i]));
        if (fabs(fd - pf.grads[i]) > 2e-2 * fmax(fabs(fd), fabs(pf.grads[i])) + 5e-5 && bad++ < 5)
            printf("  param %zu: fd %.6g analytic %.6g\n", i, fd, pf.grads[i]);
    }
    CHECK_MSG(bad == 0, "%d prefix gradients off their finite differences", bad);
    printf("  finite differences: %zu gradients checked, largest %.3g (analytic %.3g)\n",
           pf.n_params / (pf.n_params / 37) + 1, fd_max, g_max);
    CHECK_MSG(fd_max > 1e-3, "finite differences too small to check anything (largest %.3g)", fd_max);
    CHECK_MSG(!memcmp(before, now, m.n_params * sizeof(float)), "the frozen base changed in the step");
    // KV-cache decoding with the prefix in cache slots 0..l_p-1: sequence 0's
    // logits at every position are the full forward's (which matched PEFT above)
    model_forward(&m, tokens, NULL, NULL, B, T, 0.0f);
    float *full = ls_malloc((size_t)T * m.V * sizeof(float));
    be->download(full, m.acts.logits, (size_t)T * m.V);
    double dd = 0, lmax = 0;
    for (int t = 0; t < T; t++) {
        const float *lg = model_decode(&m, tokens[t], t);
        CHECK_MSG(lg != NULL, "%s", ls_error());
        if (!lg) break;
        for (int v = 0; v < m.V; v++) {
            dd = fmax(dd, fabs((double)lg[v] - full[(size_t)t * m.V + v]));
            lmax = fmax(lmax, fabs(full[(size_t)t * m.V + v]));
        }
    }
    printf("  %s: decoding with the prefix cached: logits max |diff| %.3g of the forward's (largest %.3g)\n", tag, dd,
           lmax);
    CHECK_MSG(dd <= 1e-4 * fmax(1.0, lmax), "%s: decoded logits off the forward's by %.3g", tag, dd);
    CHECK_INT(model_cache_offset(&m), 3);
    free(full);
    adamw_free(&opt);
    prefix_free(&pf, &m);
    free(now); free(before); free(init); free(gref); free(aref); free(lref); free(g); free(after);
    free(tokens); free(targets);
    model_free(&m);
    st_close(&f);
}

// --prefix-init text (Li & Liang): a prefix initialised from the model's own
// keys and values of a text makes the prefixed model on tokens x what the
// base model is on [text; x] at positions l_p.. (GPT-2's learned positions,
// Llama's RoPE): logits within 1e-4; likewise prefix-embed's virtual tokens
// initialised from the text's word embeddings (PEFT's TEXT init).
static void check_prefix_from_text(const char *dir) {
    ls_model m;
    if (load_model(&m, dir)) return;
    enum { P = 4, T = 9 };
    int text[P] = {17, 200, 3, 64}, x[T] = {5, 9, 250, 31, 31, 7, 120, 0, 88}, joint[P + T];
    memcpy(joint, text, sizeof text);
    memcpy(joint + P, x, sizeof x);
    CHECK(model_reserve(&m, 1, P + T) == 0);
    model_forward(&m, joint, NULL, NULL, 1, P + T, 0.0f);
    float *ref = ls_malloc((size_t)(P + T) * m.V * sizeof(float)), *got = ls_malloc((size_t)T * m.V * sizeof(float));
    be->download(ref, m.acts.logits, (size_t)(P + T) * m.V);
    ls_prefix pf;
    CHECK_MSG(prefix_build(&pf, &m, P, 1) == 0, "%s", ls_error());
    CHECK_MSG(prefix_init_from_tokens(&pf, &m, text) == 0, "%s", ls_error());
    CHECK(m.prefix == &pf);
    model_forward(&m, x, NULL, NULL, 1, T, 0.0f);
    be->download(got, m.acts.logits, (size_t)T * m.V);
    double d = max_diff(got, ref + (size_t)P * m.V, (size_t)T * m.V);
    printf("  %s: prefixed model vs base on [text; x]: logits max |diff| %.3g\n", dir, d);
    CHECK_MSG(d <= 1e-4, "%s: logits off by %.3g", dir, d);
    prefix_free(&pf, &m);
    // prefix-embed from the text's word embeddings (PEFT's TEXT init): the same
    ls_prompt pr;
    CHECK_MSG(prompt_build(&pr, &m, P, 1) == 0, "%s", ls_error());
    CHECK_MSG(prompt_init_from_tokens(&pr, &m, text) == 0, "%s", ls_error());
    model_forward(&m, x, NULL, NULL, 1, T, 0.0f);
    be->download(got, m.acts.logits + (size_t)P * m.V, (size_t)T * m.V); // rows of P + T: the virtual ones first
    d = max_diff(got, ref + (size_t)P * m.V, (size_t)T * m.V);
    printf("  %s: prefix-embed from the text vs base on [text; x]: logits max |diff| %.3g\n", dir, d);
    CHECK_MSG(d <= 1e-4, "%s: prefix-embed logits off by %.3g", dir, d);
    int bad[P] = {0, 1, m.V, 2};
    CHECK(prompt_init_from_tokens(&pr, &m, bad) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected an id in [0, ");
    prompt_free(&pr, &m);
    free(ref);
    free(got);
    model_free(&m);
}

static void test_prefix_init_from_text_is_that_text_as_a_prompt(void) {
    check_prefix_from_text("data/methods/gpt2_tiny3");
    check_prefix_from_text("data/methods/llama_tiny3");
}

// The composed path (the backend's own causal attention over [prefix;
// sequence], what the CUDA backend runs) against the CPU's prefix op pair, on
// the CPU backend: the logits within 1e-5, the loss and every gradient of
// the prefix within 1e-6 (of the largest).
static void check_prefix_paths(const char *tag, const char *dir) {
    st_file f;
    CHECK_MSG(st_open(&f, ls_test_source("data/methods/methods_ref.safetensors")) == 0, "%s", ls_error());
    ls_model m;
    if (load_model(&m, dir)) { st_close(&f); return; }
    ref_batch rb = load_batch(&f, tag, 0);
    int *tokens = rb.tokens, *targets = rb.second, B = rb.B, T = rb.T;
    CHECK(model_reserve(&m, B, T) == 0);
    ls_prefix pf;
    CHECK_MSG(prefix_build(&pf, &m, 3, 5) == 0, "%s", ls_error());
    CHECK(!pf.composed);
    float loss[2], *g[2], *logits[2];
    for (int k = 0; k < 2; k++) {
        if (k) prefix_set_composed(&pf, &m, 1);
        prefix_zero_grad(&pf);
        loss[k] = model_forward(&m, tokens, targets, NULL, B, T, 0.0f);
        logits[k] = ls_malloc((size_t)B * T * m.V * sizeof(float));
        be->download(logits[k], m.acts.logits, (size_t)B * T * m.V);
        model_backward(&m, 1.0f, 0.0f);
        g[k] = ls_malloc(pf.n_params * sizeof(float));
        be->download(g[k], pf.grads, pf.n_params);
    }
    double dg = max_diff(g[1], g[0], pf.n_params), gmax = 0;
    for (size_t i = 0; i < pf.n_params; i++) gmax = fmax(gmax, fabs(g[0][i]));
    printf("  %s: composed vs direct: loss %.9g / %.9g, gradient max |diff| %.3g (largest %.3g)\n", tag, loss[1],
           loss[0], dg, gmax);
    CHECK_CLOSE(loss[1], loss[0], 1e-6, 0);
    CHECK_MSG(dg <= 1e-6 * fmax(1.0, gmax), "%s: composed gradients off by %.3g", tag, dg);
    CHECK_MSG(gmax > 1e-4, "%s: gradients too small to compare (largest %.3g)", tag, gmax);
    double dl = max_diff(logits[1], logits[0], (size_t)B * T * m.V);
    CHECK_MSG(dl <= 1e-5, "%s: composed logits off by %.3g", tag, dl);
    for (int k = 0; k < 2; k++) {
        free(g[k]);
        free(logits[k]);
    }
    prefix_free(&pf, &m);
    free(tokens);
    free(targets);
    model_free(&m);
    st_close(&f);
}

static void test_prefix_composed_path_equals_the_direct_one(void) {
    check_prefix_paths("gpt2", "data/methods/gpt2_tiny3");
    check_prefix_paths("llama", "data/methods/llama_tiny3");
}

static void test_gpt2_prefix_layer_matches_peft_and_finite_differences(void) {
    check_prefix("gpt2", "data/methods/gpt2_tiny3");
}
static void test_llama_prefix_layer_matches_peft_and_finite_differences(void) {
    check_prefix("llama", "data/methods/llama_tiny3");
}
static void test_llama_adapter_h_step_matches_pytorch(void) {
    check_adapter_step("llama", "data/methods/llama_tiny3", "adapter-h");
}
static void test_llama_adapter_l_step_matches_pytorch(void) {
    check_adapter_step("llama", "data/methods/llama_tiny3", "adapter-l");
}
static void test_llama_adapter_h_gradients_match_finite_differences(void) {
    check_adapters("llama", "data/methods/llama_tiny3", LS_ADAPTERS_HOULSBY);
}

// d loss / d prompt[i] against central differences of the model's loss
// (float32 forward, h 1e-2: 2% or 5e-5) at every n/37-th entry; returns the
// largest difference quotient seen.
static double check_prompt_finite_differences(ls_model *m, ls_prompt *pr, const int *tokens, const int *targets, int B,
                                              int T) {
    prompt_zero_grad(pr);
    model_forward(m, tokens, targets, NULL, B, T, 0.0f);
    model_backward(m, 1.0f, 0.0f);
    int bad = 0;
    double fd_max = 0, g_max = 0;
    size_t stride = pr->n_params / 37 ? pr->n_params / 37 : 1, n = 0;
    for (size_t i = 0; i < pr->n_params; i += stride, n++) {
        float old = pr->params[i];
        pr->params[i] = old + 1e-2f;
        double lp = model_forward(m, tokens, targets, NULL, B, T, 0.0f);
        pr->params[i] = old - 1e-2f;
        double lm = model_forward(m, tokens, targets, NULL, B, T, 0.0f);
        pr->params[i] = old;
        double fd = (lp - lm) / 2e-2;
        fd_max = fmax(fd_max, fabs(fd));
        g_max = fmax(g_max, fabs(pr->grads[i]));
        if (fabs(fd - pr->grads[i]) > 2e-2 * fmax(fabs(fd), fabs(pr->grads[i])) + 5e-5 && bad++ < 5)
            printf("  embedding entry %zu: fd %.6g analytic %.6g\n", i, fd, pr->grads[i]);
    }
    CHECK_MSG(bad == 0, "%d prompt-embedding gradients off their finite differences", bad);
    printf("  finite differences: %zu gradients checked, largest %.3g (analytic %.3g)\n", n, fd_max, g_max);
    return fd_max;
}

// Decoding with the prompt attached gives the logits of the training forward
// at the same real positions (the virtual tokens in cache positions 0..l_p-1).
static void check_prompt_decoding(ls_model *m, const int *tokens, int T) {
    int P = model_virtual_tokens(m), V = m->V;
    CHECK(model_forward(m, tokens, NULL, NULL, 1, T, 0.0f) == 0.0f);
    CHECK_INT(m->T, P + T);
    float *ref = ls_malloc((size_t)(P + T) * V * sizeof(float));
    be->download(ref, m->acts.logits, (size_t)(P + T) * V);
    double d = 0, big = 0;
    for (int t = 0; t < T; t++) {
        const float *l = model_decode(m, tokens[t], t);
        CHECK_MSG(l != NULL, "%s", ls_error());
        if (!l) break;
        d = fmax(d, max_diff(l, ref + (size_t)(P + t) * V, (size_t)V));
        for (int v = 0; v < V; v++) big = fmax(big, fabs(ref[(size_t)(P + t) * V + v]));
    }
    printf("  decoding: logits of %d positions within %.3g of the forward's (largest %.3g)\n", T, d, big);
    CHECK_MSG(d <= 1e-4 * fmax(big, 1.0), "decoding's logits off the forward's by %.3g", d);
    // beam search (its beams' cache rows sit after the virtual tokens): each
    // hypothesis's log-probability is the forward's (gen_sequence_logprob)
    gen_config cfg = gen_config_greedy(5, -1);
    cfg.beam_size = 3;
    gen_result res;
    CHECK_MSG(gen_beam_search(m, tokens, 3, &cfg, &res) == 0, "%s", ls_error());
    double dl = 0;
    for (int h = 0; h < res.n_hyps; h++) {
        double lp = 0;
        CHECK_MSG(gen_sequence_logprob(m, tokens, 3, res.hyps[h].tokens, res.hyps[h].n, &lp) == 0, "%s", ls_error());
        dl = fmax(dl, fabs(lp - res.hyps[h].logprob));
    }
    printf("  beam search: %d hypotheses, log-probabilities within %.3g of the forward's\n", res.n_hyps, dl);
    CHECK_INT(res.n_hyps, 3);
    CHECK_MSG(dl <= 1e-4, "beam log-probabilities off the forward's by %.3g", dl);
    gen_result_free(&res);
    free(ref);
}

static void test_gpt2_prefix_embed_matches_peft_and_finite_differences(void) {
    st_file f;
    CHECK_MSG(st_open(&f, ls_test_source("data/methods/methods_ref.safetensors")) == 0, "%s", ls_error());
    ls_model m;
    if (load_model(&m, "data/methods/gpt2_tiny3")) { st_close(&f); return; }
    int n = 0;
    int *tokens = load_ints(&f, "gpt2.tokens", &n), *targets = load_ints(&f, "gpt2.targets", &n), B = 3, T = n / 3;
    CHECK(model_reserve(&m, B, T) == 0);
    float *before = ls_malloc(m.n_params * sizeof(float));
    be->download(before, m.params_memory, m.n_params);
    ls_prompt pr;
    CHECK_MSG(prompt_build(&pr, &m, 3, 1) == 0, "%s", ls_error());
    CHECK_INT(model_virtual_tokens(&m), 3);
    const st_tensor *it = st_find(&f, "gpt2.prefix-embed.init.prompt_embeddings");
    CHECK_INT(it ? it->numel : 0, (long long)pr.n_params);
    if (!it) { prompt_free(&pr, &m); model_free(&m); st_close(&f); return; }
    float *init = st_load_float(&f, it), *gref = st_load_float(&f, st_find(&f, "gpt2.prefix-embed.grad.prompt_embeddings"));
    float *aref = st_load_float(&f, st_find(&f, "gpt2.prefix-embed.after.prompt_embeddings"));
    float *lref = st_load_float(&f, st_find(&f, "gpt2.prefix-embed.loss"));
    memcpy(pr.params, init, pr.n_params * sizeof(float)); // PEFT's layout is this one: (l_p, C)
    prompt_zero_grad(&pr);
    float loss = model_forward(&m, tokens, targets, NULL, B, T, 0.0f);
    model_backward(&m, 1.0f, 0.0f);
    double gmax = 0, dg = max_diff(pr.grads, gref, pr.n_params);
    for (size_t i = 0; i < pr.n_params; i++) gmax = fmax(gmax, fabs(gref[i]));
    ls_adamw opt;
    adamw_init(&opt, be, pr.n_params, 0.9f, 0.999f, 1e-3f, 0.01f);
    adamw_step(&opt, pr.params, pr.grads, 1e-3f);
    float *now = ls_malloc(m.n_params * sizeof(float));
    be->download(now, m.params_memory, m.n_params);
    double dp = max_diff(pr.params, aref, pr.n_params);
    printf("  loss %.9g, PEFT %.9g; gradient max |diff| %.3g (largest %.3g); after the step %.3g\n", loss, lref[0], dg,
           gmax, dp);
    CHECK_CLOSE(loss, lref[0], 1e-6, 0);
    CHECK_MSG(dg <= 1e-3 * gmax, "prompt_embeddings gradient: max |diff| %.3g, largest %.3g", dg, gmax);
    CHECK_MSG(dp <= 1e-5, "prompt_embeddings after the step: max |diff| %.3g", dp);
    CHECK_MSG(!memcmp(before, now, m.n_params * sizeof(float)), "the frozen base changed in the step");
    // finite differences on the same model with its matrices 4x larger, so
    // that the embeddings move the loss by more than float32 resolves
    float *big = ls_malloc(m.n_params * sizeof(float));
    memcpy(big, before, m.n_params * sizeof(float));
    for (int i = 0; i < m.n_views; i++)
        if (m.views[i].ndim == 2)
            for (size_t j = 0; j < m.views[i].numel; j++) big[m.views[i].offset + j] *= 4.0f;
    be->upload(m.params_memory, big, m.n_params);
    free(big);
    double fd_max = check_prompt_finite_differences(&m, &pr, tokens, targets, B, T);
    CHECK_MSG(fd_max > 1e-3, "finite differences too small to check anything (largest %.3g)", fd_max);
    check_prompt_decoding(&m, tokens, T);
    adamw_free(&opt);
    prompt_free(&pr, &m);
    free(now); free(before); free(init); free(gref); free(aref); free(lref);
    free(tokens); free(targets);
    model_free(&m);
    st_close(&f);
}

// The tiny BERT classifier against PEFT's SEQ_CLS prompt learning, l_p 3, the
// classifier trained beside (modules_to_save). prefix-embed (PROMPT_TUNING):
// the virtual tokens before [CLS], mask 1, type 0, positions 0..; the pooler
// reads the first virtual token. prefix-layer (PREFIX_TUNING): every layer's
// queries also attend to the prefix's keys and values (mask 1), the real
// tokens at positions l_p.., the pooler reads [CLS]. One train_step from the
// reference's embeddings: the loss, the gradients of the embeddings and the
// classifier (within 1e-3 of the largest / 1e-5), and both after one AdamW
// step (weights decayed, bias not) within 1e-5; the frozen encoder keeps its bits.
static void check_bert_prompt_step(const char *method) {
    int layer = !strcmp(method, "prefix-layer");
    st_file f;
    CHECK_MSG(st_open(&f, ls_test_source("data/methods/methods_ref.safetensors")) == 0, "%s", ls_error());
    ls_model m;
    if (load_model(&m, "data/methods/bert_tiny3")) { st_close(&f); return; }
    ref_batch rb = load_batch(&f, "bert", 1);
    CHECK(model_reserve(&m, rb.B, rb.T) == 0);
    ls_prompt pr;
    ls_prefix pf;
    char key[160];
    if (layer) CHECK_MSG(prefix_build(&pf, &m, 3, 1) == 0, "%s", ls_error());
    else CHECK_MSG(prompt_build(&pr, &m, 3, 1) == 0, "%s", ls_error());
    float *params = layer ? pf.params : pr.params, *grads = layer ? pf.grads : pr.grads;
    size_t n_params = layer ? pf.n_params : pr.n_params;
    snprintf(key, sizeof key, "bert.%s.init.prompt_embeddings", method);
    float *init = st_load_float(&f, st_find(&f, key)), *mine = ls_malloc(n_params * sizeof(float));
    if (layer) prefix_peft_layout(&pf, pf.params, init, 0);
    else be->upload(pr.params, init, n_params);
    float *before = ls_malloc(m.n_params * sizeof(float));
    be->download(before, m.params_memory, m.n_params);
    ls_adamw opt, hopt;
    train_step_spec s;
    train_step_spec_init(&s, &m, NULL, &opt);
    s.params = params, s.grads = grads, s.n_trainable = n_params;
    if (layer) s.pf = &pf;
    else s.pr = &pr;
    adamw_init(&opt, be, n_params, 0.9f, 0.999f, 1e-3f, 0.01f);
    CHECK_MSG(train_step_spec_add_head(&s, &hopt, 0.9f, 0.999f, 1e-3f, 0.01f) == 0, "%s", ls_error());
    train_fixed_batch fb = {rb.tokens, NULL, rb.B, rb.T, rb.second, rb.labels};
    train_step_stats st;
    char msg[256];
    CHECK_MSG(train_step(&s, 1, 1e-3, train_fixed_batch_next, &fb, &st, msg, sizeof msg) == 0, "%s", ls_error());
    snprintf(key, sizeof key, "bert.%s.loss", method);
    float *lref = st_load_float(&f, st_find(&f, key));
    printf("  bert %s: loss %.9g, PEFT %.9g; %zu prompt parameters, %zu head\n", method, st.loss, lref[0], n_params,
           s.n_head);
    CHECK_CLOSE(st.loss, lref[0], 1e-6, 0);
    float *after = ls_malloc(m.n_params * sizeof(float)), *mg = ls_malloc(m.n_params * sizeof(float));
    be->download(after, m.params_memory, m.n_params);
    be->download(mg, m.grads_memory, m.n_params);
    const char *names[3] = {"prompt_embeddings", "classifier.weight", "classifier.bias"};
    for (int k = 0; k < 3; k++) {
        float *g = mine, *p = mine + 0;
        size_t n = n_params;
        float *pafter = NULL;
        if (k) {
            const ls_param_view *v = NULL;
            for (int i = 0; i < m.n_views; i++)
                if (!strcmp(m.views[i].name, names[k])) v = &m.views[i];
            CHECK_MSG(v != NULL, "no %s in the model", names[k]);
            if (!v) continue;
            g = mg + v->offset, p = after + v->offset, n = v->numel;
        } else { // in PEFT's layout
            pafter = ls_malloc(n_params * sizeof(float));
            if (layer) {
                prefix_peft_layout(&pf, pf.grads, mine, 1);
                prefix_peft_layout(&pf, pf.params, pafter, 1);
            } else {
                be->download(mine, pr.grads, n_params);
                be->download(pafter, pr.params, n_params);
            }
            p = pafter;
        }
        snprintf(key, sizeof key, "bert.%s.grad.%s", method, names[k]);
        float *gr = st_load_float(&f, st_find(&f, key));
        snprintf(key, sizeof key, "bert.%s.after.%s", method, names[k]);
        float *ar = st_load_float(&f, st_find(&f, key));
        double gmax = 0, dg = max_diff(g, gr, n), dp = max_diff(p, ar, n);
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(gr[i]));
        printf("  %s: gradient max |diff| %.3g (largest %.3g), after the step %.3g\n", names[k], dg, gmax, dp);
        CHECK_MSG(gmax > 0, "%s: the reference gradient is zero: nothing checked", names[k]);
        CHECK_MSG(dg <= fmax(1e-3 * gmax, 1e-9) && dg <= ABS_TOL, "%s gradient: max |diff| %.3g", names[k], dg);
        CHECK_MSG(dp <= ABS_TOL, "%s after the step: max |diff| %.3g", names[k], dp);
        free(gr);
        free(ar);
        free(pafter);
    }
    for (int i = 0; i < m.n_views; i++) // the encoder (everything but the classifier) keeps its bits
        if (strncmp(m.views[i].name, "classifier.", 11))
            CHECK_MSG(!memcmp(before + m.views[i].offset, after + m.views[i].offset, m.views[i].numel * sizeof(float)),
                      "frozen %s changed", m.views[i].name);
    adamw_free(&opt);
    adamw_free(&hopt);
    if (layer) prefix_free(&pf, &m);
    else prompt_free(&pr, &m);
    free(init); free(mine); free(lref); free(before); free(after); free(mg);
    free(rb.tokens); free(rb.second); free(rb.labels);
    model_free(&m);
    st_close(&f);
}

static void test_bert_prefix_embed_step_matches_peft(void) { check_bert_prompt_step("prefix-embed"); }
static void test_bert_prefix_layer_step_matches_peft(void) { check_bert_prompt_step("prefix-layer"); }

// Llama: RoPE numbers the virtual tokens 0..l_p-1 and the real tokens l_p..;
// no PEFT reference here, so finite differences and decoding on a tiny random
// llama with O(0.3) weights (GQA: 4 query heads, 2 key/value heads).
static void test_llama_prefix_embed_gradients_match_finite_differences(void) {
    ls_model_config c;
    memset(&c, 0, sizeof c);
    c.family = LS_FAMILY_LLAMA;
    c.dim = 16;
    c.hidden_dim = 24;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.vocab_size = 37;
    c.max_seq_len = 16;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.rope_interleaved = 1;
    ls_model m;
    CHECK(model_build_random(&m, &c, 7, be) == 0);
    ls_rng r;
    ls_rng_seed(&r, 8);
    for (int i = 0; i < m.n_views; i++) {
        const ls_param_view *v = &m.views[i];
        int is_norm = strstr(v->name, "norm") != NULL;
        for (size_t j = 0; j < v->numel; j++) {
            double z = ls_rng_normal(&r);
            m.params_memory[v->offset + j] = (float)(is_norm ? 1.0 + 0.2 * z : 0.3 * z);
        }
    }
    int B = 2, T = 6, tokens[12], targets[12];
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int)(ls_rng_next(&r) % 37);
        targets[i] = (int)(ls_rng_next(&r) % 37);
    }
    CHECK(model_reserve(&m, B, T) == 0);
    ls_prompt pr;
    CHECK_MSG(prompt_build(&pr, &m, 4, 3) == 0, "%s", ls_error());
    for (size_t i = 0; i < pr.n_params; i++) pr.params[i] *= 0.5f;
    double fd_max = check_prompt_finite_differences(&m, &pr, tokens, targets, B, T);
    CHECK_MSG(fd_max > 1e-3, "finite differences too small to check anything (largest %.3g)", fd_max);
    check_prompt_decoding(&m, tokens, T);
    // too long for the model's positions with the virtual tokens: an error naming both
    CHECK(model_reserve(&m, 1, 14) == -1);
    prompt_free(&pr, &m);
    model_free(&m);
}

static void test_prefix_embed_refuses_bad_length_and_a_prefix_beside_it(void) {
    ls_model m;
    if (load_model(&m, "data/methods/gpt2_tiny3")) return;
    ls_prompt pr;
    CHECK(prompt_build(&pr, &m, 0, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "--prefix-len");
    CHECK(prompt_build(&pr, &m, 64, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "--prefix-len");
    CHECK(m.prompt == NULL);
    ls_prefix pf;
    CHECK_MSG(prefix_build(&pf, &m, 2, 1) == 0, "%s", ls_error());
    CHECK(prompt_build(&pr, &m, 3, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected no prefix-layer prefix attached");
    prefix_free(&pf, &m);
    model_free(&m);
    if (load_model(&m, "data/methods/bert_tiny3")) return; // 40 positions
    CHECK(prompt_build(&pr, &m, 40, 1) == -1);
    CHECK_STR_CONTAINS(ls_error(), "--prefix-len");
    model_free(&m);
}

static const ls_test tests[] = {
    LS_TEST(test_gpt2_bitfit_step_matches_pytorch),
    LS_TEST(test_gpt2_fttop2_step_matches_pytorch),
    LS_TEST(test_bert_bitfit_step_matches_pytorch),
    LS_TEST(test_bert_fttop2_step_matches_pytorch),
    LS_TEST(test_bitfit_refuses_a_family_without_biases),
    LS_TEST(test_gpt2_adapter_h_step_matches_pytorch),
    LS_TEST(test_gpt2_adapter_l_step_matches_pytorch),
    LS_TEST(test_bert_adapter_h_step_matches_pytorch),
    LS_TEST(test_bert_adapter_l_step_matches_pytorch),
    LS_TEST(test_gpt2_prefix_layer_matches_peft_and_finite_differences),
    LS_TEST(test_llama_prefix_layer_matches_peft_and_finite_differences),
    LS_TEST(test_prefix_init_from_text_is_that_text_as_a_prompt),
    LS_TEST(test_prefix_composed_path_equals_the_direct_one),
    LS_TEST(test_llama_adapter_h_step_matches_pytorch),
    LS_TEST(test_llama_adapter_l_step_matches_pytorch),
    LS_TEST(test_llama_adapter_h_gradients_match_finite_differences),
    LS_TEST(test_gpt2_prefix_embed_matches_peft_and_finite_differences),
    LS_TEST(test_bert_prefix_embed_step_matches_peft),
    LS_TEST(test_bert_prefix_layer_step_matches_peft),
    LS_TEST(test_llama_prefix_embed_gradients_match_finite_differences),
    LS_TEST(test_prefix_embed_refuses_bad_length_and_a_prefix_beside_it),
    LS_TEST(test_gpt2_adapter_h_gradients_match_finite_differences),
    LS_TEST(test_bert_adapter_h_and_l_gradients_match_finite_differences),
};

int main(int argc, char **argv) {
    be = ls_backend_cpu();
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
