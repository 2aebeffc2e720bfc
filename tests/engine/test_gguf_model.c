// SmolLM2-135M-Instruct (GGUF, Q4_1 + Q8_0) against Hugging Face transformers
// loading the same file (tests/reference/make_gguf_reference.py ->
// tests/data/gguf/smollm2_reference.json):
// - dequantized, un-permuted tensors: bit-identical (FNV-1a of the float32
//   bytes: length, first and last MiB; plus a few values and the sum);
// - last-position logits of three prompts: max |diff| <= 1e-4 * max |logit|,
//   same argmax;
// - HF's greedy continuation (30 new tokens) of the lighthouse prompt.
// The tokenizer is the one the GGUF metadata describes (text/tok_gguf.c).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/model.h"
#include "harness.h"
#include "io/checkpoint.h"
#include "text/tokenizer.h"

#define SMOLLM2 "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
#define LOGIT_RTOL 1e-4

static cJSON *load_reference(void) {
    char *text = ls_read_file(ls_test_source("data/gguf/smollm2_reference.json"), NULL);
    CHECK_MSG(text != NULL, "%s", ls_error());
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL);
    return root;
}

static uint64_t fnv1a64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001B3ULL;
    }
    return h;
}

// The reference's digest of a float32 array: FNV-1a over the 8-byte length,
// the first MiB and (for arrays over a MiB) the last MiB of its bytes.
static uint64_t digest(const float *x, int64_t n) {
    uint64_t len = (uint64_t)n * 4, mib = 1 << 20;
    uint64_t h = fnv1a64(0xCBF29CE484222325ULL, &len, 8);
    h = fnv1a64(h, x, len < mib ? len : mib);
    if (len > mib) h = fnv1a64(h, (const char *)x + len - mib, mib);
    return h;
}

static int load_checkpoint(ls_checkpoint *ck) {
    const char *path = ls_test_asset(SMOLLM2);
    if (!path) return 1;
    int rc = ckpt_load(ck, path);
    CHECK_MSG(rc == 0, "%s", ls_error());
    return rc ? -1 : 0;
}

static void test_smollm2_gguf_tensors_are_bit_identical_to_transformers(void) {
    ls_checkpoint ck;
    int rc = load_checkpoint(&ck);
    if (rc > 0) SKIP("../shared/assets/" SMOLLM2 " is absent");
    cJSON *ref = load_reference();
    if (rc || !ref) {
        cJSON_Delete(ref);
        return;
    }
    const ls_model_config *c = &ck.config;
    const cJSON *cfg = cJSON_GetObjectItem(ref, "config");
    CHECK_INT(c->dim, cJSON_GetObjectItem(cfg, "hidden_size")->valueint);
    CHECK_INT(c->n_layers, cJSON_GetObjectItem(cfg, "num_hidden_layers")->valueint);
    CHECK_INT(c->n_heads, cJSON_GetObjectItem(cfg, "num_attention_heads")->valueint);
    CHECK_INT(c->n_kv_heads, cJSON_GetObjectItem(cfg, "num_key_value_heads")->valueint);
    CHECK_INT(c->hidden_dim, cJSON_GetObjectItem(cfg, "intermediate_size")->valueint);
    CHECK_INT(c->vocab_size, cJSON_GetObjectItem(cfg, "vocab_size")->valueint);
    CHECK_INT(c->max_seq_len, cJSON_GetObjectItem(cfg, "max_position_embeddings")->valueint);
    CHECK_INT(c->tied_embeddings, cJSON_IsTrue(cJSON_GetObjectItem(cfg, "tie_word_embeddings")));
    CHECK(c->norm_eps == (float)cJSON_GetObjectItem(cfg, "rms_norm_eps")->valuedouble);
    CHECK(c->rope_theta == 100000.0f && c->rope_interleaved == 0);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(ref, "tensors")) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        const ls_tensor *x = ckpt_find(&ck, name);
        CHECK_MSG(x != NULL, "tensor %s missing", name);
        if (!x) continue;
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)digest(x->data, x->numel));
        double sum = 0;
        for (int64_t i = 0; i < x->numel; i++) sum += x->data[i];
        const cJSON *row0 = cJSON_GetObjectItem(t, "row0");
        int same_row0 = 1;
        for (int i = 0; i < cJSON_GetArraySize(row0); i++)
            same_row0 &= x->data[i] == (float)cJSON_GetArrayItem(row0, i)->valuedouble;
        int ok = !strcmp(hex, cJSON_GetObjectItem(t, "fnv1a64")->valuestring) && same_row0;
        printf("  %-48s %-5s digest %s%s, sum %.9g (reference %.9g)\n", name,
               cJSON_GetObjectItem(t, "type")->valuestring, hex, ok ? " = reference" : " DIFFERS", sum,
               cJSON_GetObjectItem(t, "sum")->valuedouble);
        CHECK_MSG(ok, "%s: digest %s, reference %s", name, hex, cJSON_GetObjectItem(t, "fnv1a64")->valuestring);
        CHECK_CLOSE(sum, cJSON_GetObjectItem(t, "sum")->valuedouble, 1e-9, 1e-6);
    }
    cJSON_Delete(ref);
    ckpt_free(&ck);
}

static void test_smollm2_gguf_logits_match_transformers(void) {
    ls_checkpoint ck;
    int rc = load_checkpoint(&ck);
    if (rc > 0) SKIP("../shared/assets/" SMOLLM2 " is absent");
    cJSON *ref = load_reference();
    ls_model m;
    if (rc || !ref || model_build_from_checkpoint(&m, &ck, ls_backend_cpu())) {
        CHECK_MSG(rc || !ref, "%s", ls_error());
        if (!rc) ckpt_free(&ck);
        cJSON_Delete(ref);
        return;
    }
    ckpt_free(&ck);
    const ls_backend *be = ls_backend_cpu();
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(ref, "logits")) {
        const cJSON *jids = cJSON_GetObjectItem(p, "ids"), *first = cJSON_GetObjectItem(p, "first64");
        int T = cJSON_GetArraySize(jids), V = m.V;
        int *ids = malloc(sizeof(int) * (size_t)T);
        for (int i = 0; i < T; i++) ids[i] = cJSON_GetArrayItem(jids, i)->valueint;
        CHECK(model_reserve(&m, 1, T) == 0);
        model_forward(&m, ids, NULL, NULL, 1, T, 0.0f);
        float *lg = malloc(sizeof(float) * (size_t)T * V);
        be->download(lg, m.acts.logits, (size_t)T * V);
        const float *last = lg + (size_t)(T - 1) * V;
        int argmax = 0;
        double max_abs = 0, d = 0;
        for (int v = 0; v < V; v++) {
            if (last[v] > last[argmax]) argmax = v;
            max_abs = fmax(max_abs, fabs(last[v]));
        }
        for (int v = 0; v < cJSON_GetArraySize(first); v++)
            d = fmax(d, fabs(last[v] - cJSON_GetArrayItem(first, v)->valuedouble));
        double ref_max = cJSON_GetObjectItem(p, "max_abs")->valuedouble;
        printf("  %-52s argmax %d (reference %d), max|diff| %.3g = %.2g of max|logit| %.4g\n",
               cJSON_GetObjectItem(p, "prompt")->valuestring, argmax,
               cJSON_GetObjectItem(p, "argmax")->valueint, d, d / ref_max, ref_max);
        CHECK_INT(argmax, cJSON_GetObjectItem(p, "argmax")->valueint);
        CHECK_MSG(d <= LOGIT_RTOL * ref_max, "max |diff| %.3g > %.1g * %.4g", d, LOGIT_RTOL, ref_max);
        CHECK_CLOSE(max_abs, ref_max, LOGIT_RTOL, 0);
        free(lg);
        free(ids);
    }
    model_free(&m);
    cJSON_Delete(ref);
}

// The prompt's ids (the GGUF tokenizer: no BOS, add_bos_token false) and HF's
// 30 greedy tokens, through model_generate.
static void test_smollm2_gguf_greedy_tokens_match_transformers(void) {
    const char *path = ls_test_asset(SMOLLM2);
    if (!path) SKIP("../shared/assets/" SMOLLM2 " is absent");
    char mp[4096];
    snprintf(mp, sizeof mp, "%s", path);
    cJSON *ref = load_reference();
    tokenizer *tok = tok_load_gguf(mp, NULL);
    CHECK_MSG(tok != NULL, "%s", ls_error());
    ls_checkpoint ck;
    ls_model m;
    if (!ref || !tok || ckpt_load(&ck, mp)) {
        cJSON_Delete(ref);
        tok_free(tok);
        return;
    }
    int built = model_build_from_checkpoint(&m, &ck, ls_backend_cpu()) == 0;
    ckpt_free(&ck);
    CHECK(built);
    const cJSON *g = cJSON_GetObjectItem(ref, "greedy");
    const cJSON *pids = cJSON_GetObjectItem(g, "prompt_ids"), *nids = cJSON_GetObjectItem(g, "new_ids");
    int n_ids, np = cJSON_GetArraySize(pids), nn = cJSON_GetArraySize(nids);
    int *ids = tok_encode(tok, cJSON_GetObjectItem(g, "prompt")->valuestring, 1, 0, &n_ids);
    CHECK_INT(n_ids, np);
    for (int i = 0; i < n_ids && i < np; i++) CHECK_INT(ids[i], cJSON_GetArrayItem(pids, i)->valueint);
    int *out = malloc(sizeof(int) * (size_t)(np + nn + 1));
    int n = built ? model_generate(&m, ids, n_ids, np + nn - 1, NULL, tok_eos(tok), out) : -1;
    CHECK_INT(n, np + nn);
    int same = 0;
    while (same < nn && np + same < n && out[np + same] == cJSON_GetArrayItem(nids, same)->valueint) same++;
    printf("  greedy: %d of %d new tokens equal to transformers'\n", same, nn);
    CHECK_INT(same, nn);
    free(out);
    free(ids);
    if (built) model_free(&m);
    tok_free(tok);
    cJSON_Delete(ref);
}

static const ls_test tests[] = {
    LS_TEST(test_smollm2_gguf_tensors_are_bit_identical_to_transformers),
    LS_TEST(test_smollm2_gguf_logits_match_transformers),
    LS_TEST(test_smollm2_gguf_greedy_tokens_match_transformers),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
