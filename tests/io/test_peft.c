// Adapters written by PEFT itself (tests/reference/make_peft_adapters.py, run
// once; files in tests/data/peft/) load, match their HF base checkpoints, and
// give the ΔW that PEFT's get_delta_weight() gave.
#include <cjson/cJSON.h>

#include "base/util.h"
#include "harness.h"
#include "io/adapter.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

// Compares every module's s·B·A with PEFT's delta; `conv1d` deltas are stored
// (in, out) as PEFT returns them with fan_in_fan_out.
static void check_deltas(const char *name, int conv1d, int expect_modules) {
    char dir[512], delta_path[512], base_dir[512];
    snprintf(dir, sizeof dir, "data/peft/%s/adapter", name);
    snprintf(delta_path, sizeof delta_path, "data/peft/%s/delta.safetensors", name);
    snprintf(base_dir, sizeof base_dir, "data/peft/%s/base", strncmp(name, "llama_tiny", 10) ? name : "llama_tiny");
    char *adir = ls_strdup(ls_test_source(dir)), *dpath = ls_strdup(ls_test_source(delta_path)),
         *bdir = ls_strdup(ls_test_source(base_dir));
    lora_adapter a;
    ls_checkpoint base;
    st_file deltas;
    CHECK_MSG(adapter_load(&a, adir) == 0, "%s", ls_error());
    CHECK_MSG(ckpt_load(&base, bdir) == 0, "%s", ls_error());
    CHECK_MSG(st_open(&deltas, dpath) == 0, "%s", ls_error());
    CHECK_INT(a.n_modules, expect_modules);
    CHECK_MSG(adapter_check_base(&a, &base) == 0, "%s", ls_error());
    for (int i = 0; i < a.n_modules; i++) {
        const adapter_site *m = &a.modules[i];
        char key[320];
        snprintf(key, sizeof key, "%s.%d.%s", a.family == LS_FAMILY_GPT2 ? "transformer.h" : "model.layers", m->layer,
                 m->path);
        const st_tensor *t = st_find(&deltas, key);
        CHECK_MSG(t != NULL, "PEFT delta '%s' missing", key);
        if (!t) continue;
        float *ref = st_load_float(&deltas, t);
        float *dw = adapter_delta_weight(m, 0, m->d_out);
        double maxref = 0, maxdiff = 0;
        for (int r = 0; r < m->d_out; r++)
            for (int c = 0; c < m->d_in; c++) {
                double want = conv1d ? ref[(size_t)c * m->d_out + r] : ref[(size_t)r * m->d_in + c];
                double got = dw[(size_t)r * m->d_in + c];
                maxref = fmax(maxref, fabs(want));
                maxdiff = fmax(maxdiff, fabs(want - got));
            }
        // Both sides are float32 sums of r products; 1e-5 of the largest entry
        // leaves room for r <= 8 roundings of order 2^-24 each.
        CHECK_MSG(maxdiff <= 1e-5 * maxref, "%s %s: max |ΔW - PEFT| = %.3g (max |ΔW| = %.3g)", name, key, maxdiff,
                  maxref);
        CHECK_MSG(maxref > 0, "%s %s: PEFT delta is zero, the test would prove nothing", name, key);
        free(ref);
        free(dw);
    }
    st_close(&deltas);
    ckpt_free(&base);
    adapter_free(&a);
    free(adir);
    free(dpath);
    free(bdir);
}

static void test_peft_gpt2_adapter_delta_matches_get_delta_weight(void) { check_deltas("gpt2_tiny", 1, 2); }

static void test_peft_llama_adapter_delta_matches_get_delta_weight(void) { check_deltas("llama_tiny", 0, 10); }

static void test_peft_rslora_patterns_resolve_as_peft_does(void) {
    check_deltas("llama_tiny_rslora", 0, 8);
    lora_adapter a;
    CHECK_MSG(adapter_load(&a, ls_test_source("data/peft/llama_tiny_rslora/adapter")) == 0, "%s", ls_error());
    CHECK_INT(a.use_rslora, 1);
    char *text = ls_read_file(ls_test_source("data/peft/trainable_params.json"), NULL);
    cJSON *root = cJSON_Parse(text);
    const cJSON *resolved = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "llama_tiny_rslora"), "resolved");
    CHECK(cJSON_IsObject(resolved));
    int checked = 0;
    for (int i = 0; i < a.n_modules; i++) {
        const adapter_site *m = &a.modules[i];
        char key[320];
        snprintf(key, sizeof key, "model.layers.%d.%s", m->layer, m->path);
        const cJSON *want = cJSON_GetObjectItem(resolved, key);
        CHECK_MSG(want != NULL, "PEFT's resolution of %s missing", key);
        if (!want) continue;
        CHECK_INT(m->r, cJSON_GetObjectItem(want, "r")->valueint);
        CHECK_NEAR(m->alpha, cJSON_GetObjectItem(want, "alpha")->valuedouble, 0);
        CHECK_CLOSE(m->scale, cJSON_GetObjectItem(want, "scale")->valuedouble, 1e-6, 0);
        checked++;
    }
    CHECK_INT(checked, 8);
    cJSON_Delete(root);
    free(text);
    adapter_free(&a);
}

static void test_hf_checkpoints_load_with_their_configs(void) {
    ls_checkpoint g, l;
    CHECK_MSG(ckpt_load(&g, ls_test_source("data/peft/gpt2_tiny/base")) == 0, "%s", ls_error());
    CHECK_INT(g.config.family, LS_FAMILY_GPT2);
    CHECK_INT(g.config.dim, 64);
    CHECK_INT(g.config.hidden_dim, 256);
    const ls_tensor *c_attn = ckpt_find(&g, "transformer.h.1.attn.c_attn.weight");
    CHECK(c_attn && c_attn->shape[0] == 192 && c_attn->shape[1] == 64);
    // The transposition of Conv1D: row r of our (out, in) weight is column r of HF's (in, out).
    st_file f;
    CHECK(st_open(&f, ls_test_source("data/peft/gpt2_tiny/base/model.safetensors")) == 0);
    const st_tensor *raw = st_find(&f, "transformer.h.1.attn.c_attn.weight");
    if (!raw) raw = st_find(&f, "h.1.attn.c_attn.weight");
    CHECK(raw && raw->shape[0] == 64 && raw->shape[1] == 192);
    if (raw && c_attn) {
        float *x = st_load_float(&f, raw);
        CHECK(x[5 * 192 + 100] == c_attn->data[100 * 64 + 5]);
        free(x);
    }
    st_close(&f);
    ckpt_free(&g);
    CHECK_MSG(ckpt_load(&l, ls_test_source("data/peft/llama_tiny/base")) == 0, "%s", ls_error());
    CHECK_INT(l.config.family, LS_FAMILY_LLAMA);
    CHECK_INT(l.config.n_kv_heads, 2);
    CHECK_INT(l.config.rope_interleaved, 0);
    CHECK_INT(l.config.tied_embeddings, 0);
    CHECK_NEAR(l.config.norm_eps, 1e-6, 1e-12);
    CHECK(ckpt_find(&l, "lm_head.weight") != NULL);
    ckpt_free(&l);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_peft_gpt2_adapter_delta_matches_get_delta_weight),
        LS_TEST(test_peft_llama_adapter_delta_matches_get_delta_weight),
        LS_TEST(test_peft_rslora_patterns_resolve_as_peft_does),
        LS_TEST(test_hf_checkpoints_load_with_their_configs),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
