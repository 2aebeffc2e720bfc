// The tokenizer in a GGUF file's metadata (text/tok_gguf.c) against Hugging
// Face: tests/reference/make_gguf_reference.py -> tests/data/gguf/
// tokenizer_reference.json holds, for texts in many scripts, digit and
// whitespace runs, code, emoji and special tokens, the ids of
//   smollm     SmolLM2's own pre-tokenizer (Digits(individual) + ByteLevel),
//              which llama.cpp's "smollm" reproduces: the file's tokenizer;
//   hf_gguf    transformers' tokenizer built from the GGUF (no split regex for
//              "smollm", so GPT-2's): equal to smollm except where a non-ASCII
//              number (², ٣, ½) is next to other text;
//   llama-bpe, qwen2, gpt2: the same vocabulary and merges with that
//              pre-tokenizer as transformers builds it.
// Exact equality for every text and every variant.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "harness.h"
#include "text/tokenizer.h"

#define SMOLLM2 "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

static int same_ids(const int *ids, int n, const cJSON *ref) {
    if (n != cJSON_GetArraySize(ref)) return 0;
    for (int i = 0; i < n; i++)
        if (ids[i] != cJSON_GetArrayItem(ref, i)->valueint) return 0;
    return 1;
}

// Every case's ids from a tokenizer with pre-tokenizer `pre` (NULL: the file's)
// against the reference's field `field`; returns how many differ from it.
static int check_variant(const char *path, const char *pre, const char *field, const cJSON *cases, int strict) {
    tokenizer *tok = tok_load_gguf(path, pre);
    CHECK_MSG(tok != NULL, "%s", ls_error());
    if (!tok) return -1;
    int differ = 0, total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const cJSON *ref = cJSON_GetObjectItem(c, field);
        int n;
        int *ids = tok_encode(tok, text, 1, 0, &n);
        total++;
        if (!same_ids(ids, n, ref)) {
            differ++;
            if (strict) {
                fprintf(stderr, "%s: text \"%s\":\n  ours:", field, text);
                for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
                fprintf(stderr, "\n  reference:");
                for (int i = 0; i < cJSON_GetArraySize(ref); i++)
                    fprintf(stderr, " %d", cJSON_GetArrayItem(ref, i)->valueint);
                fputc('\n', stderr);
            }
        }
        free(ids);
    }
    printf("  %-10s %d of %d texts equal to the reference\n", field, total - differ, total);
    if (strict) CHECK_INT(differ, 0);
    tok_free(tok);
    return differ;
}

static cJSON *load_cases(cJSON **root) {
    char *text = ls_read_file(ls_test_source("data/gguf/tokenizer_reference.json"), NULL);
    CHECK_MSG(text != NULL, "%s", ls_error());
    *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(*root != NULL);
    return *root ? cJSON_GetObjectItem(*root, "cases") : NULL;
}

static void test_gguf_smollm_tokenizer_ids_match_hugging_face(void) {
    const char *p = ls_test_asset(SMOLLM2);
    if (!p) SKIP("../shared/assets/" SMOLLM2 " is absent");
    char path[4096];
    snprintf(path, sizeof path, "%s", p);
    cJSON *root;
    const cJSON *cases = load_cases(&root);
    if (!cases) return;
    check_variant(path, NULL, "smollm", cases, 1);
    // transformers' own GGUF tokenizer differs from SmolLM2's only on non-ASCII numbers
    int differ = check_variant(path, NULL, "hf_gguf", cases, 0);
    CHECK_MSG(differ == 1, "expected exactly the one text with non-ASCII numbers to differ, found %d", differ);
    cJSON_Delete(root);
}

static void test_gguf_llama_bpe_qwen2_gpt2_pretokenizers_match_hugging_face(void) {
    const char *p = ls_test_asset(SMOLLM2);
    if (!p) SKIP("../shared/assets/" SMOLLM2 " is absent");
    char path[4096];
    snprintf(path, sizeof path, "%s", p);
    cJSON *root;
    const cJSON *cases = load_cases(&root);
    if (!cases) return;
    check_variant(path, "llama-bpe", "llama-bpe", cases, 1);
    check_variant(path, "qwen2", "qwen2", cases, 1);
    check_variant(path, "gpt2", "gpt2", cases, 1);
    cJSON_Delete(root);
}

static void test_gguf_tokenizer_special_ids_and_round_trip(void) {
    const char *p = ls_test_asset(SMOLLM2);
    if (!p) SKIP("../shared/assets/" SMOLLM2 " is absent");
    tokenizer *tok = tok_load_gguf(p, NULL);
    CHECK_MSG(tok != NULL, "%s", ls_error());
    if (!tok) return;
    CHECK_INT(tok_vocab_size(tok), 49152);
    CHECK_INT(tok_bos(tok), -1); // add_bos_token false: sequences do not start with <|im_start|>
    CHECK_INT(tok_eos(tok), 2);
    const char *text = "<|im_start|>user\nHi <|im_end|>";
    int n;
    int *ids = tok_encode(tok, text, 1, 0, &n);
    CHECK(n >= 4 && ids[0] == 1 && ids[n - 1] == 2);
    char *back = tok_decode(tok, -1, ids, n, NULL);
    CHECK_MSG(!strcmp(back, text), "decoded \"%s\"", back);
    free(back);
    free(ids);
    tok_free(tok);
    tok = tok_load_gguf(p, "bert");
    CHECK(tok == NULL);
    CHECK_STR_CONTAINS(ls_error(), "key 'tokenizer.ggml.pre': expected gpt2, smollm, llama-bpe");
    tok = tok_load_gguf(ls_test_source("data/gguf/quant/Q8_0.gguf"), NULL);
    CHECK(tok == NULL);
    CHECK_STR_CONTAINS(ls_error(), "Q8_0.gguf: missing key 'tokenizer.ggml.model' (expected a string)");
}

// tokenizer.ggml.model "llama": tests/data/gguf/spm_tiny.gguf, a synthetic
// SentencePiece vocabulary (692 pieces with scores, byte fallback, <s> </s>
// as control tokens), against transformers' LlamaTokenizer built from it.
static void test_gguf_sentencepiece_ids_match_hugging_face(void) {
    char *text = ls_read_file(ls_test_source("data/gguf/spm_reference.json"), NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL);
    tokenizer *tok = tok_load_gguf(ls_test_source("data/gguf/spm_tiny.gguf"), NULL);
    CHECK_MSG(tok != NULL, "%s", ls_error());
    if (!root || !tok) {
        cJSON_Delete(root);
        tok_free(tok);
        return;
    }
    CHECK_INT(tok_bos(tok), 1); // add_bos_token true
    CHECK_INT(tok_eos(tok), 2);
    const cJSON *c;
    int total = 0, equal = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *t = cJSON_GetObjectItem(c, "text")->valuestring;
        int n;
        int *ids = tok_encode(tok, t, 0, 0, &n);
        int same = same_ids(ids, n, cJSON_GetObjectItem(c, "ids"));
        total++;
        equal += same;
        CHECK_MSG(same, "text \"%s\": ids differ from transformers'", t);
        // decoding: transformers strips one leading space of the text; a
        // control token inside the text is where the two conventions part
        if (!strstr(t, "<s>")) {
            char *back = tok_decode(tok, -1, ids, n, NULL);
            CHECK_MSG(!strcmp(back, cJSON_GetObjectItem(c, "decoded")->valuestring), "decoded \"%s\"", back);
            free(back);
        }
        free(ids);
        int nb;
        int *with_bos = tok_encode(tok, t, 1, 0, &nb);
        CHECK(nb == n + 1 && with_bos[0] == 1);
        free(with_bos);
    }
    printf("  sentencepiece: %d of %d texts equal to transformers'\n", equal, total);
    tok_free(tok);
    cJSON_Delete(root);
}

static const ls_test tests[] = {
    LS_TEST(test_gguf_sentencepiece_ids_match_hugging_face),
    LS_TEST(test_gguf_smollm_tokenizer_ids_match_hugging_face),
    LS_TEST(test_gguf_llama_bpe_qwen2_gpt2_pretokenizers_match_hugging_face),
    LS_TEST(test_gguf_tokenizer_special_ids_and_round_trip),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
