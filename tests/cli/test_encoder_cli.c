// The encoder family on the command line: a BERT checkpoint is a base model
// for the analyses, and a BERT config with a missing or absurd field is one
// line naming the file, the key and what was expected, exit 1, no output.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "harness.h"

static char err_text[65536];

// lorascope with `args` (a shell fragment) from tests/ (harness.h).
static int run(const char *args) { return ls_test_lorascope(args, NULL, 0, err_text, sizeof err_text); }

// The tiny BERT of tests/data/encoder is a base model: the spectrum of its W_q,
// and the amplification of a PEFT adapter of it.
static void test_bert_checkpoint_is_a_base_for_the_analyses(void) {
    const char *out = ls_test_tmpdir("encoder_cli_spectrum");
    char args[4400], tsv[4300];
    snprintf(args, sizeof args, "analyze spectrum --base data/encoder/bert_tiny --module q,intermediate --out '%s'",
             out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(tsv, sizeof tsv, "%s/spectrum.tsv", out);
    char *text = ls_read_file(tsv, NULL);
    CHECK_STR_CONTAINS(text, "\t0\tq\t");
    CHECK_STR_CONTAINS(text, "\t1\tintermediate\t");
    free(text);
    // a PEFT SEQ_CLS adapter (LoRA q, v + the saved classifier) against it: Table 7's quantities
    snprintf(args, sizeof args, "analyze amplify --base data/encoder/bert_tiny --adapter data/encoder/peft_bert_tiny "
             "--module q,v --out '%s'", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(tsv, sizeof tsv, "%s/table7.tsv", out);
    text = ls_read_file(tsv, NULL);
    CHECK_STR_CONTAINS(text, "data/encoder/peft_bert_tiny\t4\t1\tv\t");
    free(text);
}

// config.json of the tiny BERT with `key` set to the JSON `value` (NULL: removed).
static void write_config(const char *dir, const char *key, const char *value) {
    char *text = ls_read_file(ls_test_source("data/encoder/bert_tiny/config.json"), NULL);
    cJSON *root = cJSON_Parse(text);
    ls_assert(root != NULL);
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    // a number too large for a double (1e999) cannot go through cJSON: spliced in as text
    char *json = cJSON_PrintUnformatted(root), *out = malloc(strlen(json) + 256), path[4200];
    size_t k = strlen(json) - 1; // before the closing brace
    memcpy(out, json, k);
    if (value) k += (size_t)sprintf(out + k, ",\"%s\":%s", key, value);
    strcpy(out + k, "}");
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(ls_write_file_atomic(path, out, strlen(out)) == 0);
    cJSON_Delete(root);
    free(json);
    free(out);
    free(text);
}

static void test_bad_bert_configs_fail_with_one_line_naming_file_and_key(void) {
    const char *dir = ls_test_tmpdir("encoder_bad_config");
    char link[4200], target[4200], out[4200], args[12800], where[4300];
    snprintf(link, sizeof link, "%s/model.safetensors", dir);
    snprintf(target, sizeof target, "%s", ls_test_source("data/encoder/bert_tiny/model.safetensors"));
    CHECK(symlink(target, link) == 0);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(where, sizeof where, "%s/config.json: ", dir);
    struct { const char *key, *value, *needle; } cases[] = {
        {"hidden_size", NULL, "missing field 'hidden_size' (expected an integer in [1, 65536])"},
        {"num_hidden_layers", "0", "field 'num_hidden_layers': expected an integer in [1, 1024], found 0"},
        {"num_attention_heads", "5", "field 'num_attention_heads': expected a divisor of hidden_size 32, found 5"},
        {"intermediate_size", "-64", "field 'intermediate_size': expected an integer in [1, 1048576], found -64"},
        {"vocab_size", "\"many\"", "field 'vocab_size': expected an integer in [1, 1048576]"},
        {"max_position_embeddings", "1e12", "field 'max_position_embeddings': expected an integer in [1, 1048576]"},
        {"type_vocab_size", "0", "field 'type_vocab_size': expected an integer in [1, 1024], found 0"},
        {"layer_norm_eps", "-1", "field 'layer_norm_eps': expected a value in (0, 1), found -1"},
        {"layer_norm_eps", "1e999", "field 'layer_norm_eps': expected a finite number"},
        {"hidden_act", "\"relu\"", "field 'hidden_act': expected \"gelu\", found \"relu\""},
        {"position_embedding_type", "\"relative_key\"",
         "field 'position_embedding_type': expected \"absolute\", found \"relative_key\""},
        {"is_decoder", "true", "field 'is_decoder': expected false"},
        {"id2label", "[]", "field 'id2label': expected an object of 1..65536 labels"},
        {"initializer_range", "7", "field 'initializer_range': expected a value in [0, 1], found 7"},
        {"model_type", "\"bart\"", "field 'model_type': expected \"gpt2\", \"llama\", \"bert\" or \"roberta\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_config(dir, cases[i].key, cases[i].value);
        snprintf(args, sizeof args, "analyze spectrum --base '%s' --module q --out '%s'", dir, out);
        int rc = run(args);
        CHECK_MSG(rc == 1, "%s = %s: exit %d, expected 1; stderr: %s", cases[i].key,
                  cases[i].value ? cases[i].value : "(removed)", rc, err_text);
        CHECK_STR_CONTAINS(err_text, where);
        CHECK_STR_CONTAINS(err_text, cases[i].needle);
        int lines = 0;
        for (const char *c = err_text; *c; c++) lines += *c == '\n';
        CHECK_MSG(lines == 1, "expected a one-line error, got %d lines: %s", lines, err_text);
        CHECK_MSG(!ls_exists(out), "%s created after a failed run", out);
    }
}

// train classifies with an encoder (--task sst2) but needs a tokenizer that
// fits it: the tiny BERT has no vocab.txt beside it, and the byte tokenizer's
// 256 ids exceed its vocabulary of 100; a decoder's task is refused, naming
// the task and the model type. Each before any output.
static void test_train_with_an_encoder_is_refused_before_any_output(void) {
    const char *dir = ls_test_tmpdir("encoder_train");
    char data[4200], out[4200], args[12800];
    snprintf(data, sizeof data, "%s/sst2.tsv", dir);
    const char *tsv = "sentence\tlabel\na fine film\t1\na dull film\t0\n";
    CHECK(ls_write_file_atomic(data, tsv, strlen(tsv)) == 0);
    snprintf(out, sizeof out, "%s/run", dir);
    const struct { const char *flags, *needle; } cases[] = {
        {"--task sst2 --tokenizer bytes",
         "bytes: tokenizer has 256 tokens, expected at most the model's vocab_size 100"},
        {"--task sst2", "bert_tiny: no tokenizer beside the model"},
        {"--task e2e", "data/encoder/bert_tiny: --task e2e: expected a decoder model, found a bert encoder"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "train --model data/encoder/bert_tiny %s --data '%s' --seq-len 16 --steps 1 "
                 "--out '%s'", cases[i].flags, data, out);
        int rc = run(args);
        CHECK_MSG(rc == 1, "%s: exit %d, expected 1; stderr: %s", cases[i].flags, rc, err_text);
        CHECK_STR_CONTAINS(err_text, cases[i].needle);
        CHECK_MSG(!ls_exists(out), "%s created after a refused run", out);
    }
}

static const ls_test tests[] = {
    LS_TEST(test_bert_checkpoint_is_a_base_for_the_analyses),
    LS_TEST(test_bad_bert_configs_fail_with_one_line_naming_file_and_key),
    LS_TEST(test_train_with_an_encoder_is_refused_before_any_output),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
