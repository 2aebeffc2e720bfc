// The engine against independent references on real checkpoints:
// - stories260K (llama2.c format): greedy generation reproduces llama2.c's
//   run.c output exactly (../shared/assets reference_greedy.tsv);
// - PyTorch float64 references (tests/data/engine, made by
//   tests/reference/make_engine_reference.py): logits, loss, LoRA gradients
//   and full-parameter gradients of stories260K and a tiny GPT-2;
// - PEFT fixtures (tests/data/peft, made with transformers + PEFT): logits of
//   HF checkpoints with PEFT adapters (rank/alpha patterns, rsLoRA), and
//   PEFT's trainable-parameter counts.
//
// Tolerances. The references are float64; the engine is float32 with float
// accumulation inside sgemm and attention. A float32 op carries ~1e-7
// relative rounding per accumulated term; over sums of length 64-256 and 2-5
// layers this stays around 1e-6 relative (observed: logits <= 1.4e-6 of
// max|logit|, gradients <= 5e-6 of max|g|, losses equal to 7 digits). The
// bounds keep a 7-20x margin over those observations while still catching any
// real mistake (a wrong scale, a transposed block, a missing term is >= 1e-2):
// logits |diff| <= 1e-5 * max|logit|; loss relative 1e-6; gradients
// |diff| <= 1e-4 * max|g| per tensor. Observed errors are printed.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine_testutil.h"
#include "harness.h"
#include "io/adapter.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "text/tokenizer.h"

static const ls_backend *be;

#define LOGIT_RTOL 1e-5
#define LOSS_RTOL 1e-6
#define GRAD_RTOL 1e-4

// max |a - b| <= rtol * max |b|, printing the observed error either way.
static int check_array(const char *what, const float *a, const float *b, size_t n, double rtol) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    int ok = d <= rtol * s;
    printf("  %-60s max|diff| %.3g (%.2g of max|ref| %.4g)%s\n", what, d, s > 0 ? d / s : 0.0, s,
           ok ? "" : "  <-- FAIL");
    CHECK_MSG(ok, "%s: max |diff| %.3g > %.3g * %.4g", what, d, rtol, s);
    return ok;
}

static float *load_ref(const st_file *f, const char *name, size_t *n) {
    const st_tensor *t = st_find(f, name);
    CHECK_MSG(t != NULL, "reference tensor %s missing", name);
    if (!t) return NULL;
    if (n) *n = (size_t)t->numel;
    return st_load_float(f, t);
}

// ----------------------------------------------------------------------------
// stories260K greedy generation

static void test_stories260k_greedy_generation_matches_llama2c(void) {
    const char *model_path = ls_test_asset("models/stories260K/stories260K.bin");
    if (!model_path) SKIP("../shared/assets/models/stories260K/stories260K.bin is absent");
    char mp[4096];
    snprintf(mp, sizeof mp, "%s", model_path);
    const char *tok_path = ls_test_asset("models/stories260K/tok512.bin");
    if (!tok_path) SKIP("tok512.bin is absent");
    char tp[4096];
    snprintf(tp, sizeof tp, "%s", tok_path);
    const char *tsv = ls_test_asset("models/stories260K/reference_greedy.tsv");
    if (!tsv) SKIP("reference_greedy.tsv is absent");
    char *text = ls_read_file(tsv, NULL);
    CHECK(text != NULL);
    ls_model m;
    if (et_load_model(&m, mp, be) != 0) { free(text); return; }
    tokenizer *tk = tok_load_llama2c(tp, m.V);
    CHECK_MSG(tk != NULL, "%s", ls_error());
    if (!tk) { model_free(&m); free(text); return; }
    int n_lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        cJSON *want = cJSON_Parse(tab + 1);
        CHECK(cJSON_IsString(want));
        if (!cJSON_IsString(want)) { cJSON_Delete(want); continue; }
        int n_prompt = 0;
        int *prompt = tok_encode(tk, line, 1, 0, &n_prompt);
        int out[128];
        // BOS then 120 tokens after it; stop early only if BOS comes out (run.c)
        int n = model_generate(&m, prompt, n_prompt, 120, NULL, tok_bos(tk), out);
        CHECK(n > 0);
        char *got = tok_decode(tk, out[0], out + 1, n - 1, NULL);
        CHECK_MSG(strcmp(got, want->valuestring) == 0, "prompt \"%s\":\n  got  %s\n  want %s", line,
                  got, want->valuestring);
        n_lines++;
        free(got);
        free(prompt);
        cJSON_Delete(want);
    }
    CHECK_INT(n_lines, 3);
    tok_free(tk);
    model_free(&m);
    free(text);
}

// ----------------------------------------------------------------------------
// PyTorch references: logits, loss, LoRA grads, full grads

typedef struct {
    const char *file;        // under tests/data/engine
    const char *model;       // checkpoint path (asset or tests/ source)
    const char *modules;     // LoRA modules
    const char *peft_module; // module path for the reference keys
    const char *full[4];     // canonical names with grad_full.* references
} ref_case;

static void lora_parity(const ref_case *rc, int full) {
    const char *ref_path = ls_test_source(rc->file);
    if (!ls_exists(ref_path)) SKIP("%s is absent", ref_path);
    char rp[4096];
    snprintf(rp, sizeof rp, "%s", ref_path);
    if (!rc->model) SKIP("model checkpoint is absent");
    st_file f;
    CHECK_MSG(st_open(&f, rp) == 0, "%s", ls_error());
    ls_model m;
    if (et_load_model(&m, rc->model, be) != 0) { st_close(&f); return; }
    int B, T;
    int *tok = et_load_ints(&f, "tokens", &B, &T), *tgt = et_load_ints(&f, "targets", &B, &T);
    CHECK(model_reserve(&m, B, T) == 0);
    size_t n = 0;
    float *loss_ref = load_ref(&f, full ? "loss_base" : "loss", NULL);
    ls_lora lo;
    if (!full) {
        ls_lora_config lc;
        lora_config_default(&lc);
        lc.rank = 4;
        lc.alpha = 8.0f;
        CHECK(lora_parse_modules(m.cfg.family, rc->modules, &lc.modules) == 0);
        CHECK(lora_build(&lo, &m, &lc) == 0);
        const char *prefix = adapter_key_prefix(m.cfg.family);
        for (int i = 0; i < lo.n_sites; i++) {
            ls_lora_site *s = &lo.sites[i];
            char ka[256], kb[256];
            snprintf(ka, sizeof ka, "%s.%d.%s.lora_A.weight", prefix, s->layer,
                     lora_module_path(m.cfg.family, s->module));
            snprintf(kb, sizeof kb, "%s.%d.%s.lora_B.weight", prefix, s->layer,
                     lora_module_path(m.cfg.family, s->module));
            float *A = load_ref(&f, ka, NULL), *Bm = load_ref(&f, kb, NULL);
            if (A && Bm) lora_set_site(&lo, s, A, Bm);
            free(A);
            free(Bm);
        }
    } else {
        model_enable_grads(&m);
    }
    float loss = model_forward(&m, tok, tgt, NULL, B, T, 0.0f);
    printf("  loss %.9g, reference %.9g\n", loss, loss_ref ? loss_ref[0] : NAN);
    if (loss_ref) CHECK_CLOSE(loss, loss_ref[0], LOSS_RTOL, 0);
    if (!full) {
        float *lref = load_ref(&f, "logits", &n);
        float *lg = malloc(sizeof(float) * n);
        be->download(lg, m.acts.logits, n);
        if (lref) check_array("logits", lg, lref, n, LOGIT_RTOL);
        free(lref);
        free(lg);
    }
    model_backward(&m, 1.0f, 0.0f);
    if (!full) {
        const char *prefix = adapter_key_prefix(m.cfg.family);
        for (int i = 0; i < lo.n_sites; i++) {
            ls_lora_site *s = &lo.sites[i];
            for (int ab = 0; ab < 2; ab++) {
                char key[256];
                snprintf(key, sizeof key, "grad.%s.%d.%s.lora_%c.weight", prefix, s->layer,
                         lora_module_path(m.cfg.family, s->module), ab ? 'B' : 'A');
                float *gref = load_ref(&f, key, &n);
                if (gref) check_array(key, ab ? s->dB : s->dA, gref, n, GRAD_RTOL);
                free(gref);
            }
        }
        lora_free(&lo, &m);
    } else {
        for (int k = 0; k < 4 && rc->full[k]; k++) {
            char key[256];
            snprintf(key, sizeof key, "grad_full.%s", rc->full[k]);
            float *gref = load_ref(&f, key, &n);
            const ls_param_view *v = model_find_view(&m, rc->full[k]);
            CHECK_MSG(v && v->numel == n, "%s: no view of %zu values", rc->full[k], n);
            if (gref && v && v->numel == n) {
                float *g = malloc(sizeof(float) * n);
                CHECK(model_get_grad(&m, rc->full[k], g) == 0);
                check_array(key, g, gref, n, GRAD_RTOL);
                free(g);
            }
            free(gref);
        }
    }
    free(loss_ref);
    free(tok);
    free(tgt);
    model_free(&m);
    st_close(&f);
}

static char stories_path[4096];
static const char *stories(void) {
    const char *p = ls_test_asset("models/stories260K/stories260K.bin");
    if (!p) return NULL;
    snprintf(stories_path, sizeof stories_path, "%s", p);
    return stories_path;
}

static char gpt2_path[4096];
static const char *gpt2_tiny(void) {
    snprintf(gpt2_path, sizeof gpt2_path, "%s", ls_test_source("data/peft/gpt2_tiny/base"));
    return ls_exists(gpt2_path) ? gpt2_path : NULL;
}

static void test_stories260k_lora_logits_loss_and_grads_match_pytorch(void) {
    ref_case rc = {"data/engine/stories260k_lora_ref.safetensors", stories(), "q,v", NULL, {NULL}};
    lora_parity(&rc, 0);
}

static void test_stories260k_full_grads_match_pytorch(void) {
    ref_case rc = {"data/engine/stories260k_lora_ref.safetensors", stories(), NULL, NULL,
                   {"model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight",
                    "model.layers.0.input_layernorm.weight", "model.norm.weight"}};
    lora_parity(&rc, 1);
}

static void test_gpt2_tiny_lora_logits_loss_and_grads_match_pytorch(void) {
    ref_case rc = {"data/engine/gpt2_tiny_lora_ref.safetensors", gpt2_tiny(), "c_attn", NULL, {NULL}};
    lora_parity(&rc, 0);
}

static void test_gpt2_tiny_full_grads_match_pytorch(void) {
    ref_case rc = {"data/engine/gpt2_tiny_lora_ref.safetensors", gpt2_tiny(), NULL, NULL,
                   {"transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias",
                    "transformer.ln_f.weight", NULL}};
    lora_parity(&rc, 1);
}

// ----------------------------------------------------------------------------
// PEFT fixtures: HF checkpoints + PEFT adapters through transformers

static void peft_logits(const char *fixture, const char *base, int check_base) {
    char dir[3000], basedir[4096], adir[4096], lpath[4096];
    snprintf(dir, sizeof dir, "%.2900s", ls_test_source(fixture));
    if (!ls_exists(dir)) SKIP("tests/%s is absent", fixture);
    snprintf(basedir, sizeof basedir, "%s", ls_test_source(base));
    snprintf(adir, sizeof adir, "%s/adapter", dir);
    snprintf(lpath, sizeof lpath, "%s/logits.safetensors", dir);
    ls_model m;
    if (et_load_model(&m, basedir, be) != 0) return;
    st_file f;
    CHECK_MSG(st_open(&f, lpath) == 0, "%s", ls_error());
    int B, T;
    int *tok = et_load_ints(&f, "tokens", &B, &T);
    CHECK(model_reserve(&m, B, T) == 0);
    size_t n = 0;
    if (check_base) {
        float *ref = load_ref(&f, "logits_base", &n), *lg = malloc(sizeof(float) * n);
        model_forward(&m, tok, NULL, NULL, B, T, 0.0f);
        be->download(lg, m.acts.logits, n);
        if (ref) check_array("logits_base", lg, ref, n, LOGIT_RTOL);
        free(ref);
        free(lg);
    }
    lora_adapter a;
    CHECK_MSG(adapter_load(&a, adir) == 0, "%s", ls_error());
    ls_lora lo;
    CHECK_MSG(lora_build_from_adapter(&lo, &m, &a) == 0, "%s", ls_error());
    float *ref = load_ref(&f, "logits_adapter", &n), *lg = malloc(sizeof(float) * n);
    model_forward(&m, tok, NULL, NULL, B, T, 0.0f);
    be->download(lg, m.acts.logits, n);
    if (ref) check_array("logits_adapter", lg, ref, n, LOGIT_RTOL);
    // merged: the same logits with the adapter folded into W0
    CHECK(lora_merge(&lo, &m) == 0);
    model_forward(&m, tok, NULL, NULL, B, T, 0.0f);
    be->download(lg, m.acts.logits, n);
    if (ref) check_array("logits_adapter (merged)", lg, ref, n, LOGIT_RTOL);
    free(ref);
    free(lg);
    free(tok);
    lora_free(&lo, &m);
    adapter_free(&a);
    st_close(&f);
    model_free(&m);
}

static void test_peft_llama_tiny_adapter_logits_match_transformers(void) {
    peft_logits("data/peft/llama_tiny", "data/peft/llama_tiny/base", 1);
}
static void test_peft_llama_tiny_rslora_rank_pattern_logits_match_transformers(void) {
    peft_logits("data/peft/llama_tiny_rslora", "data/peft/llama_tiny/base", 0);
}
static void test_peft_gpt2_tiny_adapter_logits_match_transformers(void) {
    peft_logits("data/peft/gpt2_tiny", "data/peft/gpt2_tiny/base", 1);
}

// PEFT's print_trainable_parameters numbers for the three fixtures: the
// engine's base count plus the adapter's A/B count.
static void test_trainable_and_total_counts_match_peft(void) {
    const char *json_path = ls_test_source("data/peft/trainable_params.json");
    if (!ls_exists(json_path)) SKIP("%s is absent", json_path);
    char *text = ls_read_file(json_path, NULL);
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL);
    const char *names[3] = {"gpt2_tiny", "llama_tiny", "llama_tiny_rslora"};
    const char *bases[3] = {"data/peft/gpt2_tiny/base", "data/peft/llama_tiny/base",
                            "data/peft/llama_tiny/base"};
    for (int k = 0; k < 3; k++) {
        char basedir[4096], adir[4096];
        snprintf(basedir, sizeof basedir, "%s", ls_test_source(bases[k]));
        snprintf(adir, sizeof adir, "%.3000s/data/peft/%s/adapter", ls_test_source(""), names[k]);
        ls_model m;
        if (et_load_model(&m, basedir, be) != 0) continue;
        lora_adapter a;
        ls_lora lo;
        CHECK_MSG(adapter_load(&a, adir) == 0, "%s", ls_error());
        CHECK_MSG(lora_build_from_adapter(&lo, &m, &a) == 0, "%s", ls_error());
        const cJSON *e = cJSON_GetObjectItem(root, names[k]);
        double tr = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "trainable"));
        double all = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "all"));
        CHECK_INT(lo.n_params, (long long)tr);
        CHECK_INT(model_num_params(&m) + lo.n_params, (long long)all);
        // the line up to the percentage (PEFT 0.10 prints the percentage with
        // repr(); lorascope uses current PEFT's {:.4f})
        char buf[200];
        lora_format_trainable(buf, sizeof buf, lo.n_params, model_num_params(&m) + lo.n_params);
        const char *line = cJSON_GetStringValue(cJSON_GetObjectItem(e, "line"));
        const char *pct = strstr(line, "trainable%: ");
        CHECK(pct && strncmp(buf, line, (size_t)(pct - line)) == 0);
        char want_pct[32];
        snprintf(want_pct, sizeof want_pct, "%.4f", atof(pct + 12));
        CHECK_STR_CONTAINS(buf, want_pct);
        printf("  %s: %s\n", names[k], buf);
        lora_free(&lo, &m);
        adapter_free(&a);
        model_free(&m);
    }
    cJSON_Delete(root);
    free(text);
}

// An engine adapter saved in PEFT's layout and read back gives the same logits.
static void test_lora_saved_as_peft_adapter_reloads_to_same_logits(void) {
    char basedir[4096];
    snprintf(basedir, sizeof basedir, "%s", ls_test_source("data/peft/llama_tiny/base"));
    if (!ls_exists(basedir)) SKIP("tests/data/peft/llama_tiny/base is absent");
    ls_model m;
    if (et_load_model(&m, basedir, be) != 0) return;
    CHECK(model_reserve(&m, 1, 8) == 0);
    ls_lora lo;
    ls_lora_config lc;
    lora_config_default(&lc);
    lc.rank = 3;
    lc.alpha = 7.0f;
    lc.rslora = 1;
    lc.n_layers = 1;
    lc.layers[0] = 1;
    CHECK(lora_parse_modules(LS_FAMILY_LLAMA, "q,k,up,down", &lc.modules) == 0);
    CHECK(lora_build(&lo, &m, &lc) == 0);
    for (int i = 0; i < lo.n_sites; i++)
        for (int j = 0; j < lo.sites[i].d_out * lo.sites[i].rank; j++)
            lo.sites[i].B[j] = 0.01f * (float)((j * 7 + i) % 11 - 5);
    int tok[8] = {1, 17, 200, 3, 99, 5, 42, 255};
    size_t n = (size_t)8 * m.V;
    float *l1 = malloc(sizeof(float) * n), *l2 = malloc(sizeof(float) * n);
    model_forward(&m, tok, NULL, NULL, 1, 8, 0.0f);
    be->download(l1, m.acts.logits, n);
    lora_adapter a, b;
    CHECK(lora_to_adapter(&lo, &a) == 0);
    const char *dir = ls_test_tmpdir("engine_adapter");
    CHECK_MSG(adapter_save(&a, dir) == 0, "%s", ls_error());
    lora_free(&lo, &m);
    CHECK_MSG(adapter_load(&b, dir) == 0, "%s", ls_error());
    CHECK_INT(b.n_modules, 4);
    CHECK_MSG(lora_build_from_adapter(&lo, &m, &b) == 0, "%s", ls_error());
    model_forward(&m, tok, NULL, NULL, 1, 8, 0.0f);
    be->download(l2, m.acts.logits, n);
    CHECK(memcmp(l1, l2, sizeof(float) * n) == 0);
    free(l1);
    free(l2);
    lora_free(&lo, &m);
    adapter_free(&a);
    adapter_free(&b);
    model_free(&m);
}

static const ls_test tests[] = {
    LS_TEST(test_stories260k_greedy_generation_matches_llama2c),
    LS_TEST(test_stories260k_lora_logits_loss_and_grads_match_pytorch),
    LS_TEST(test_stories260k_full_grads_match_pytorch),
    LS_TEST(test_gpt2_tiny_lora_logits_loss_and_grads_match_pytorch),
    LS_TEST(test_gpt2_tiny_full_grads_match_pytorch),
    LS_TEST(test_peft_llama_tiny_adapter_logits_match_transformers),
    LS_TEST(test_peft_llama_tiny_rslora_rank_pattern_logits_match_transformers),
    LS_TEST(test_peft_gpt2_tiny_adapter_logits_match_transformers),
    LS_TEST(test_trainable_and_total_counts_match_peft),
    LS_TEST(test_lora_saved_as_peft_adapter_reloads_to_same_logits),
};

int main(int argc, char **argv) {
    be = ls_backend_cpu();
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
