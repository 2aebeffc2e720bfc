// `lorascope tokenize`, run as a user runs it: the ids on stdout for each
// kind of tokenizer, and one-line errors with a non-zero exit on bad input.
// Expected WordPiece ids come from HF's BertTokenizer on all-MiniLM-L6-v2
// (AutoTokenizer, transformers 5.24), GPT-2's from reference.jsonl.
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "harness.h"
#include "text/tokenizer.h"

static char out_text[65536], err_text[8192];

// `lorascope tokenize <args>` (a shell fragment) from tests/ (harness.h).
static int run(const char *args) {
    char *cmd = malloc(strlen(args) + 16);
    sprintf(cmd, "tokenize %s", args);
    int rc = ls_test_lorascope(cmd, out_text, sizeof out_text, err_text, sizeof err_text);
    free(cmd);
    return rc;
}

static void expect_ids(const char *args, const char *want) {
    int rc = run(args);
    CHECK_MSG(rc == 0, "`lorascope tokenize %s` exited %d: %s", args, rc, err_text);
    char line[65536 + 2];
    snprintf(line, sizeof line, "%s\n", want);
    CHECK_MSG(!strcmp(out_text, line), "`lorascope tokenize %s` printed \"%s\", expected \"%s\"", args, out_text,
              want);
}

static void expect_error(const char *args, int code, const char *needle) {
    int rc = run(args);
    CHECK_MSG(rc == code, "`lorascope tokenize %s` exited %d, expected %d; stderr: %s", args, rc, code, err_text);
    CHECK_STR_CONTAINS(err_text, needle);
    const char *nl = strchr(err_text, '\n');
    CHECK_MSG(nl && nl[1] == 0, "expected a one-line error, got: %s", err_text);
    CHECK_MSG(out_text[0] == 0, "expected no output on stdout, got: %s", out_text);
}

static void test_tokenize_wordpiece_prints_hf_ids(void) {
    const char *dir = ls_test_asset("models/all-MiniLM-L6-v2");
    if (!dir) SKIP("models/all-MiniLM-L6-v2 absent");
    char args[8192];
    snprintf(args, sizeof args, "--model '%s' 'Hello, world! Café'", dir);
    expect_ids(args, "101 7592 1010 2088 999 7668 102");
    snprintf(args, sizeof args, "--model '%s/model.safetensors' --no-special -- --Hello", dir);
    expect_ids(args, "1011 1011 7592");
    snprintf(args, sizeof args, "--model '%s' ''", dir);
    expect_ids(args, "101 102");
    snprintf(args, sizeof args, "--model '%s' --no-special ''", dir);
    expect_ids(args, "");
}

static void test_tokenize_gpt2_and_llama2c(void) {
    const char *gpt2 = ls_test_asset("tokenizers/gpt2");
    if (!gpt2) SKIP("tokenizers/gpt2 absent");
    char args[8192];
    snprintf(args, sizeof args, "--tokenizer '%s' 'Hello world'", gpt2);
    expect_ids(args, "15496 995");   // reference.jsonl; GPT-2 adds no special tokens
    // RoBERTa: the same files under HF's names with a roberta config; HF's
    // RobertaTokenizer appends <s> = 50257 and </s> = 50258 to this vocabulary.
    const char *rdir = ls_test_tmpdir("tokenize_roberta");
    char src[4200], dst[4200];
    const char *names[2][2] = {{"encoder.json", "vocab.json"}, {"vocab.bpe", "merges.txt"}};
    for (int k = 0; k < 2; k++) {
        snprintf(src, sizeof src, "%s/%s", gpt2, names[k][0]);
        snprintf(dst, sizeof dst, "%s/%s", rdir, names[k][1]);
        CHECK(symlink(src, dst) == 0);
    }
    snprintf(dst, sizeof dst, "%s/tokenizer_config.json", rdir);
    ls_write_file_atomic(dst, "{\"tokenizer_class\": \"RobertaTokenizer\"}", 39);
    snprintf(args, sizeof args, "--model '%s' 'Hello world'", rdir);
    expect_ids(args, "50257 15496 995 50258");
    const char *m = ls_test_asset("models/stories260K/stories260K.bin");
    if (!m) SKIP("models/stories260K absent");
    char model[4200];   // ls_test_asset's buffer is reused below
    snprintf(model, sizeof model, "%s", m);
    // tok512.bin beside the model, found through vocab_size 512 in its header;
    // the ids are the library's (tests/text checks them against run.c).
    char tokp[4200];
    snprintf(tokp, sizeof tokp, "%s", ls_test_asset("models/stories260K/tok512.bin"));
    tokenizer *t = tok_load_llama2c(tokp, 512);
    CHECK(t != NULL);
    if (!t) return;
    const char *texts[2] = {"Once upon a time", "Lily's cat!"};
    for (int k = 0; k < 2; k++) {
        int n;
        int *ids = tok_encode(t, texts[k], 1, 0, &n);
        CHECK_INT(ids[0], 1);   // BOS
        char want[4096] = "";
        for (int i = 0; i < n; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? " %d" : "%d", ids[i]);
        snprintf(args, sizeof args, "--model '%s' \"%s\"", model, texts[k]);
        expect_ids(args, want);
        snprintf(args, sizeof args, "--model '%s' --no-special \"%s\"", model, texts[k]);
        expect_ids(args, strchr(want, ' ') + 1);
        free(ids);
    }
    tok_free(t);
}

static void test_tokenize_bad_input_one_line_error(void) {
    expect_error("'some text'", 2, "--model: required");
    expect_error("--model /nonexistent/model.bin 'x'", 1, "/nonexistent/model.bin: model: no such file or directory");
    expect_error("--model . --tokenizer /nonexistent/tok 'x'", 1, "/nonexistent/tok: tokenizer: no such file");
    expect_error("--bogus 1 --model . 'x'", 2, "unknown option '--bogus'");
    const char *dir = ls_test_tmpdir("tokenize_bad_vocab");
    char path[4200], args[8192];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    ls_write_file_atomic(path, "[UNK]\n[SEP]\nhello\n", 18);
    snprintf(args, sizeof args, "--model '%s' 'x'", dir);
    expect_error(args, 1, "vocab.txt: expected the cls_token \"[CLS]\" in the vocabulary, found none");
    snprintf(args, sizeof args, "--model '%s'", dir);
    expect_error(args, 2, "expected a TEXT to tokenize");
    snprintf(args, sizeof args, "--model '%s' one two", dir);
    expect_error(args, 2, "expected one TEXT, found a second one 'two'");
    ls_write_file_atomic(path, "[UNK]\n[CLS]\n[SEP]\n", 18);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    ls_write_file_atomic(path, "{\"do_lower_case\": 1}", 20);
    snprintf(args, sizeof args, "--model '%s' 'x'", dir);
    expect_error(args, 1, "tokenizer_config.json: key \"do_lower_case\": expected true or false");
}

static void test_tokenize_help_names_the_usage(void) {
    CHECK_INT(run("--help"), 0);
    CHECK_STR_CONTAINS(out_text, "usage: lorascope tokenize --model PATH [--tokenizer PATH] [--no-special] [--] TEXT");
    CHECK_STR_CONTAINS(out_text, "--no-special");
}

static const ls_test tests[] = {
    LS_TEST(test_tokenize_wordpiece_prints_hf_ids),
    LS_TEST(test_tokenize_gpt2_and_llama2c),
    LS_TEST(test_tokenize_bad_input_one_line_error),
    LS_TEST(test_tokenize_help_names_the_usage),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
