// PEFT adapters of ten architectures (tests/reference/make_peft_generic.py,
// files in tests/data/peft_generic/) are read without lorascope knowing the
// model, their bases found by module name, and every ΔW equals PEFT's.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "harness.h"
#include "io/adapter.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"

static char *case_path(const char *name, const char *leaf) {
    char rel[256];
    snprintf(rel, sizeof rel, "data/peft_generic/%s/%s", name, leaf);
    return ls_strdup(ls_test_source(rel));
}

// Every site's ΔW (LoRA: s·B·A; DoRA: W' - W against the base) against PEFT's
// delta of the same module, within 1e-5 of max |ΔW|. Returns the worst
// relative error (printed for the record).
static double check_case(const char *name, int expect_sites, int expect_generic) {
    char *adir = case_path(name, "adapter"), *bdir = case_path(name, "base"), *dpath = case_path(name, "delta.safetensors");
    lora_adapter a;
    hf_weights w;
    st_file deltas;
    double worst = 0;
    CHECK_MSG(adapter_load(&a, adir) == 0, "%s", ls_error());
    CHECK_MSG(hf_weights_open(&w, bdir) == 0, "%s", ls_error());
    CHECK_MSG(st_open(&deltas, dpath) == 0, "%s", ls_error());
    CHECK_INT(a.n_modules, expect_sites);
    CHECK_INT(a.generic, expect_generic);
    CHECK_INT(deltas.n_tensors, expect_sites);
    for (int i = 0; i < a.n_modules; i++) {
        const adapter_site *m = &a.modules[i];
        const st_tensor *t = st_find(&deltas, m->name);
        CHECK_MSG(t != NULL, "%s: PEFT delta of '%s' missing", name, m->name);
        float *W = hf_weights_site(&w, &a, m);
        CHECK_MSG(W != NULL, "%s", ls_error());
        if (!t || !W) {
            free(W);
            continue;
        }
        CHECK(t->shape[0] == m->d_out && t->shape[1] == m->d_in);
        float *ref = st_load_float(&deltas, t);
        double *dora = m->magnitude ? adapter_dora_delta(m, W, 0, m->d_out) : NULL;
        float *lora = m->magnitude ? NULL : adapter_delta_weight(m, 0, m->d_out);
        double maxref = 0, maxdiff = 0;
        for (size_t k = 0; k < (size_t)m->d_out * m->d_in; k++) {
            double got = dora ? dora[k] : lora[k];
            maxref = fmax(maxref, fabs(ref[k]));
            maxdiff = fmax(maxdiff, fabs(ref[k] - got));
        }
        CHECK_MSG(maxref > 0, "%s %s: PEFT delta is zero, the test would prove nothing", name, m->name);
        CHECK_MSG(maxdiff <= 1e-5 * maxref, "%s %s: max |ΔW - PEFT| = %.3g (max |ΔW| = %.3g)", name, m->name, maxdiff,
                  maxref);
        worst = fmax(worst, maxdiff / maxref);
        free(ref);
        free(dora);
        free(lora);
        free(W);
    }
    printf("%s: %d sites, max |ΔW - PEFT| / max |ΔW| = %.3g\n", name, a.n_modules, worst);
    st_close(&deltas);
    hf_weights_close(&w);
    adapter_free(&a);
    free(adir);
    free(bdir);
    free(dpath);
    return worst;
}

static void test_peft_bert_without_prefix_matches_peft(void) { check_case("bert", 2 * 6, 1); }
static void test_peft_roberta_regex_targets_match_peft(void) { check_case("roberta", 2 * 4, 0); }
static void test_peft_gpt2_conv1d_matches_peft(void) { check_case("gpt2", 2 * 4, 0); }
static void test_peft_gpt_neox_matches_peft(void) { check_case("gpt_neox", 2 * 4, 1); }
static void test_peft_mistral_dora_on_sharded_bf16_base_matches_peft(void) { check_case("mistral_dora", 2 * 7, 1); }
static void test_peft_qwen2_patterns_rslora_embedding_match_peft(void) { check_case("qwen2", 2 * 3 + 1, 1); }
static void test_peft_phi3_fused_matches_peft(void) { check_case("phi3", 2 * 4, 1); }
static void test_peft_opt_layers_to_transform_matches_peft(void) { check_case("opt", 6, 1); }
static void test_peft_t5_encoder_decoder_matches_peft(void) { check_case("t5", 2 * 6 + 2 * 10, 1); }
static void test_peft_vit_matches_peft(void) { check_case("vit", 2 * 4, 1); }

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_peft_bert_without_prefix_matches_peft),
        LS_TEST(test_peft_roberta_regex_targets_match_peft),
        LS_TEST(test_peft_gpt2_conv1d_matches_peft),
        LS_TEST(test_peft_gpt_neox_matches_peft),
        LS_TEST(test_peft_mistral_dora_on_sharded_bf16_base_matches_peft),
        LS_TEST(test_peft_qwen2_patterns_rslora_embedding_match_peft),
        LS_TEST(test_peft_phi3_fused_matches_peft),
        LS_TEST(test_peft_opt_layers_to_transform_matches_peft),
        LS_TEST(test_peft_t5_encoder_decoder_matches_peft),
        LS_TEST(test_peft_vit_matches_peft),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
