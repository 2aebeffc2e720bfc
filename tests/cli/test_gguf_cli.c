// `lorascope generate` on the SmolLM2 GGUF prints Hugging Face's greedy
// continuation (tests/data/gguf/smollm2_reference.json: transformers loading
// the same file, 30 new tokens); malformed GGUF files give a one-line error
// naming the file, a non-zero exit and nothing on stdout.
#include <cjson/cJSON.h>
#include <sys/wait.h>

#include <string.h>

#include "base/util.h"
#include "harness.h"

#define SMOLLM2 "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

static char out_text[65536], err_text[8192];

// lorascope with `args` (a shell fragment) from tests/ (harness.h).
static int run(const char *args) { return ls_test_lorascope(args, out_text, sizeof out_text, err_text, sizeof err_text); }

static void test_generate_smollm2_gguf_prints_transformers_greedy_continuation(void) {
    const char *p = ls_test_asset(SMOLLM2);
    if (!p) SKIP("../shared/assets/" SMOLLM2 " is absent");
    char *text = ls_read_file(ls_test_source("data/gguf/smollm2_reference.json"), NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(ref != NULL);
    if (!ref) return;
    const cJSON *g = cJSON_GetObjectItem(ref, "greedy");
    int n_prompt = cJSON_GetArraySize(cJSON_GetObjectItem(g, "prompt_ids"));
    int n_new = cJSON_GetArraySize(cJSON_GetObjectItem(g, "new_ids"));
    char args[8192];
    // --steps bounds the run to the reference's length: the prompt's tokens and 30 new ones
    snprintf(args, sizeof args, "generate --model '%s' --prompt '%s' --temperature 0 --threads 2 --steps %d", p,
             cJSON_GetObjectItem(g, "prompt")->valuestring, n_prompt + n_new - 1);
    int rc = run(args);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, err_text);
    char want[8192];
    snprintf(want, sizeof want, "%s\n", cJSON_GetObjectItem(g, "text")->valuestring);
    printf("  lorascope printed:\n%s", out_text);
    CHECK_MSG(!strcmp(out_text, want), "printed\n%s\nexpected transformers'\n%s", out_text, want);
    cJSON_Delete(ref);
}

// Writes n bytes of src (a file under tests/) to a fresh file; returns its path.
static const char *truncated_copy(const char *rel, long n) {
    static char path[4300];
    size_t size;
    char *data = ls_read_file(ls_test_source(rel), &size);
    snprintf(path, sizeof path, "%s/cut.gguf", ls_test_tmpdir("gguf_cut"));
    ls_write_file_atomic(path, data, n < (long)size ? (size_t)n : size);
    free(data);
    return path;
}

static void expect_one_line_error(const char *args, const char *needle) {
    int rc = run(args);
    CHECK_MSG(rc != 0, "`lorascope %s` succeeded", args);
    CHECK_STR_CONTAINS(err_text, needle);
    int lines = 0;
    for (const char *c = err_text; *c; c++) lines += *c == '\n';
    CHECK_MSG(lines == 1, "expected a one-line error, got %d lines: %s", lines, err_text);
    CHECK_MSG(out_text[0] == 0, "output on stdout after a failure: %s", out_text);
}

static void test_malformed_gguf_model_gives_one_line_error(void) {
    char args[8192];
    const char *cut = truncated_copy("data/gguf/quant/Q4_K.gguf", 200);
    snprintf(args, sizeof args, "generate --model '%s' --prompt hi", cut);
    expect_one_line_error(args, "cut.gguf: tensor count 2: expected at most 1 for the 64 bytes left");
    cut = truncated_copy("data/gguf/quant/Q4_K.gguf", 4928 - 8); // the file is 4928 bytes
    snprintf(args, sizeof args, "generate --model '%s' --prompt hi", cut);
    expect_one_line_error(args, "cut.gguf: tensor 'expected': bytes [");
    expect_one_line_error(args, "expected them inside its");
    snprintf(args, sizeof args, "generate --model '%s' --prompt hi", ls_test_source("data/gguf/quant/Q4_K.gguf"));
    expect_one_line_error(args, "Q4_K.gguf: key 'general.architecture': expected \"llama\", found \"lorascope-test\"");
    snprintf(args, sizeof args, "analyze spectrum --base '%s' --adapter /nonexistent --out /tmp/x",
             ls_test_source("data/gguf/quant/F16.gguf"));
    CHECK(run(args) != 0);
}

// A GGUF base through train, eval and analyze: tests/data/gguf/tiny_llama.gguf
// (dim 32, Q8_0 matrices, its own byte-level BPE tokenizer in the metadata).
static void test_gguf_base_trains_evaluates_and_is_analysed(void) {
    char dir[4200], data[4300], args[16384];
    snprintf(dir, sizeof dir, "%s", ls_test_tmpdir("gguf_tiny_run"));
    snprintf(data, sizeof data, "%s/text.txt", dir);
    const char *text = "the the the he the t the he he the\nthe ht eh the the\n";
    CHECK(ls_write_file_atomic(data, text, strlen(text)) == 0);
    const char *model = ls_test_source("data/gguf/tiny_llama.gguf");
    char m[4200];
    snprintf(m, sizeof m, "%s", model);
    snprintf(args, sizeof args, "train --model '%s' --task lm --data '%s' --val-frac 0.5 --seq-len 8 --batch-size 2 "
             "--steps 3 --lr 0.01 --lora q,v --rank 4 --threads 1 --out '%s/run'", m, data, dir);
    int rc = run(args);
    CHECK_MSG(rc == 0, "train: exit %d: %s", rc, err_text);
    snprintf(args, sizeof args, "eval --model '%s' --adapter '%s/run' --task lm --data '%s' --seq-len 8 --threads 1",
             m, dir, data);
    rc = run(args);
    CHECK_MSG(rc == 0, "eval: exit %d: %s", rc, err_text);
    CHECK_STR_CONTAINS(out_text, "loss");
    snprintf(args, sizeof args, "analyze amplify --base '%s' --adapter '%s/run/adapter' --module q --layer 0 --no-plot "
             "--out '%s/an'", m, dir, dir);
    rc = run(args);
    CHECK_MSG(rc == 0, "analyze: exit %d: %s", rc, err_text);
    char md[4400];
    snprintf(md, sizeof md, "%s/an/table7.md", dir);
    char *table = ls_read_file(md, NULL);
    CHECK_MSG(table != NULL, "%s", ls_error());
    if (table) CHECK_STR_CONTAINS(table, "W is the base's dequantized weight (GGUF");
    free(table);
}

// `lorascope tokenize` on the GGUF prints transformers' ids (the first
// texts of tests/data/gguf/tokenizer_reference.json, its "smollm" ids).
static void test_tokenize_smollm2_gguf_prints_hf_ids(void) {
    const char *p = ls_test_asset(SMOLLM2);
    if (!p) SKIP("../shared/assets/" SMOLLM2 " is absent");
    char model[4200];
    snprintf(model, sizeof model, "%s", p);
    char *text = ls_read_file(ls_test_source("data/gguf/tokenizer_reference.json"), NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(ref != NULL);
    if (!ref) return;
    for (int k = 0; k < 3; k++) {
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "cases"), k);
        const char *t = cJSON_GetObjectItem(c, "text")->valuestring;
        char args[8192], want[8192] = "";
        snprintf(args, sizeof args, "tokenize --model '%s' -- '%s'", model, t);
        const cJSON *id;
        cJSON_ArrayForEach(id, cJSON_GetObjectItem(c, "smollm")) {
            size_t n = strlen(want);
            snprintf(want + n, sizeof want - n, "%s%d", n ? " " : "", id->valueint);
        }
        strcat(want, "\n");
        int rc = run(args);
        CHECK_MSG(rc == 0, "exit %d: %s", rc, err_text);
        CHECK_MSG(!strcmp(out_text, want), "\"%s\": printed %s expected %s", t, out_text, want);
    }
    cJSON_Delete(ref);
}

static const ls_test tests[] = {
    LS_TEST(test_tokenize_smollm2_gguf_prints_hf_ids),
    LS_TEST(test_gguf_base_trains_evaluates_and_is_analysed),
    LS_TEST(test_generate_smollm2_gguf_prints_transformers_greedy_continuation),
    LS_TEST(test_malformed_gguf_model_gives_one_line_error),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
