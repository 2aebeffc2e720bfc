// The architecture registry (src/arch): lookups, shapes and canonical names
// agree with the checkpoints, PEFT adapters and messages that use them.
#include "arch/arch.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "harness.h"
#include "io/checkpoint.h"

static const ls_model_config LLAMA_GQA = {LS_FAMILY_LLAMA, 64, 172, 2, 8, 2, 100, 32, 1e-5f, 10000.0f, 0, 0, 0, 0, 0, LS_POOL_CLS, 0.0f};
static const ls_model_config GPT2_SMALL = {LS_FAMILY_GPT2, 768, 3072, 12, 12, 12, 50257, 1024, 1e-5f, 0.0f, 0, 1, 0, 0, 0, LS_POOL_CLS, 0.0f};

static void check_shape(ls_family f, const char *name, const ls_model_config *c, int d_out, int d_in) {
    const arch_module *m = arch_module_by_name(f, name);
    CHECK_MSG(m != NULL, "%s: no module '%s'", arch_family_name(f), name);
    if (!m) return;
    int o, i;
    arch_module_shape(m, c, &o, &i);
    CHECK_MSG(o == d_out && i == d_in, "%s %s: expected (%d, %d), found (%d, %d)", arch_family_name(f), name,
              d_out, d_in, o, i);
}

static void test_module_shapes_follow_the_config(void) {
    // llama with grouped-query attention: head_dim 8, 2 kv heads
    check_shape(LS_FAMILY_LLAMA, "q", &LLAMA_GQA, 64, 64);
    check_shape(LS_FAMILY_LLAMA, "k", &LLAMA_GQA, 16, 64);
    check_shape(LS_FAMILY_LLAMA, "v", &LLAMA_GQA, 16, 64);
    check_shape(LS_FAMILY_LLAMA, "o", &LLAMA_GQA, 64, 64);
    check_shape(LS_FAMILY_LLAMA, "gate", &LLAMA_GQA, 172, 64);
    check_shape(LS_FAMILY_LLAMA, "up", &LLAMA_GQA, 172, 64);
    check_shape(LS_FAMILY_LLAMA, "down", &LLAMA_GQA, 64, 172);
    check_shape(LS_FAMILY_GPT2, "c_attn", &GPT2_SMALL, 2304, 768);
    check_shape(LS_FAMILY_GPT2, "q", &GPT2_SMALL, 768, 768);
    check_shape(LS_FAMILY_GPT2, "c_proj", &GPT2_SMALL, 768, 768);
    check_shape(LS_FAMILY_GPT2, "c_fc", &GPT2_SMALL, 3072, 768);
    check_shape(LS_FAMILY_GPT2, "mlp_proj", &GPT2_SMALL, 768, 3072);
}

static void test_lookup_by_name_alias_path_and_leaf(void) {
    CHECK(arch_module_by_name(LS_FAMILY_LLAMA, "q_proj") == arch_module_by_role(LS_FAMILY_LLAMA, ARCH_Q));
    CHECK(arch_module_by_name(LS_FAMILY_LLAMA, "mlp.down_proj") == arch_module_by_role(LS_FAMILY_LLAMA, ARCH_DOWN));
    CHECK(arch_module_by_name(LS_FAMILY_GPT2, "o") == arch_module_by_role(LS_FAMILY_GPT2, ARCH_O));
    CHECK(arch_module_by_name(LS_FAMILY_GPT2, "down") == arch_module_by_role(LS_FAMILY_GPT2, ARCH_DOWN));
    CHECK(arch_module_by_name(LS_FAMILY_GPT2, "mlp.c_proj") == arch_module_by_role(LS_FAMILY_GPT2, ARCH_DOWN));
    CHECK(arch_module_by_name(LS_FAMILY_GPT2, "gate") == NULL);
    CHECK(arch_module_by_name(LS_FAMILY_LLAMA, "c_attn") == NULL);
    // a row block has no PEFT path; its tensor is the fused c_attn
    const arch_module *k = arch_module_by_name(LS_FAMILY_GPT2, "k");
    CHECK(k && k->block == 1 && k->n_blocks == 3 && !strcmp(k->path, "attn.c_attn") && !arch_peft_path(k));
    CHECK(arch_module_by_path(LS_FAMILY_GPT2, "attn.c_attn") == arch_module_by_role(LS_FAMILY_GPT2, ARCH_QKV));
    CHECK_STR_CONTAINS(arch_module_by_role(LS_FAMILY_LLAMA, ARCH_O)->gguf, "attn_output");
}

static void test_all_peft_targets_and_names(void) {
    CHECK_INT((int)arch_all_modules(LS_FAMILY_LLAMA), 0x7f);
    CHECK_INT((int)arch_all_modules(LS_FAMILY_GPT2), 1 << ARCH_QKV | 1 << ARCH_O | 1 << ARCH_FC | 1 << ARCH_DOWN);
    const char *t = arch_peft_target(LS_FAMILY_GPT2, arch_module_by_role(LS_FAMILY_GPT2, ARCH_O));
    CHECK_STR_CONTAINS(t, "attn.c_proj");
    t = arch_peft_target(LS_FAMILY_GPT2, arch_module_by_role(LS_FAMILY_GPT2, ARCH_QKV));
    CHECK(!strcmp(t, "c_attn"));
    CHECK(!strcmp(arch_peft_target(LS_FAMILY_LLAMA, arch_module_by_role(LS_FAMILY_LLAMA, ARCH_UP)), "up_proj"));
    char buf[128];
    CHECK(!strcmp(arch_module_names(LS_FAMILY_LLAMA, ", ", " or ", buf, sizeof buf), "q, k, v, o, gate, up or down"));
    CHECK(!strcmp(arch_module_names(LS_FAMILY_GPT2, " ", " ", buf, sizeof buf), "c_attn q k v c_proj c_fc mlp_proj"));
    const char *rest;
    const arch_family *f = arch_family_by_peft_key("base_model.model.transformer.h.3.attn.c_attn.lora_A.weight", &rest);
    CHECK(f && f->family == LS_FAMILY_GPT2 && !strncmp(rest, "3.attn", 6));
    CHECK(arch_family_by_peft_key("base_model.model.model.layersX.0", NULL) == NULL);
}

// The registry's canonical names are the checkpoint's: every tensor of the
// tiny HF checkpoints is found under layer_prefix.<i>.<suffix> with the
// registry's shape.
static void check_layer_tensors(const char *dir) {
    ls_checkpoint ck;
    if (ckpt_load(&ck, ls_test_source(dir))) {
        CHECK_MSG(0, "%s", ls_error());
        return;
    }
    const arch_family *a = arch_family_of(ck.config.family);
    int found = 0;
    for (int l = 0; l < ck.config.n_layers; l++)
        for (int k = 0; k < a->n_layer_tensors; k++) {
            char name[160];
            snprintf(name, sizeof name, "%s.%d.%s", a->layer_prefix, l, a->layer_tensors[k].suffix);
            const ls_tensor *t = ckpt_find(&ck, name);
            int ndim;
            int64_t d0, d1;
            arch_tensor_shape(ck.config.family, &a->layer_tensors[k], &ck.config, &ndim, &d0, &d1);
            CHECK_MSG(t && t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1),
                      "%s: %s", dir, name);
            found += t != NULL;
        }
    CHECK_INT(found, ck.config.n_layers * a->n_layer_tensors);
    ckpt_free(&ck);
}

static void test_layer_tensors_are_the_checkpoints(void) {
    check_layer_tensors("data/peft/llama_tiny/base");
    check_layer_tensors("data/peft/gpt2_tiny/base");
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_module_shapes_follow_the_config),
        LS_TEST(test_lookup_by_name_alias_path_and_leaf),
        LS_TEST(test_all_peft_targets_and_names),
        LS_TEST(test_layer_tensors_are_the_checkpoints),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
