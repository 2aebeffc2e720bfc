// The typed entry points behind `lorascope eval` and `lorascope generate`
// (src/train/evaluate.h, generate.h): their option tables read flags and INI
// sections alike, their checks name the flag, and a second call in the same
// process gives the same bits as the first (no state kept between calls).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/options.h"
#include "base/util.h"
#include "harness.h"
#include "train/evaluate.h"
#include "train/generate.h"

static char buf[8][4096];
static int nbuf;

// printf into one of a few rotating static buffers.
static const char *S(const char *fmt, ...) {
    char *b = buf[nbuf++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof buf[0], fmt, ap);
    va_end(ap);
    return b;
}

// ----------------------------------------------------------------------------
// evaluate

static void test_eval_ini_section_and_flags_give_the_same_result_twice(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin") || !ls_test_asset("data/sst2/dev.tsv"))
        SKIP("stories260K or data/sst2/dev.tsv not in the assets");
    const char *model = S("%s", ls_test_asset("models/stories260K/stories260K.bin")); // the harness's buffer is reused
    const char *dev = S("%s", ls_test_asset("data/sst2/dev.tsv"));
    const char *d = ls_test_tmpdir("evaluate_ini");
    const char *ini = S("%s/eval.ini", d), *json = S("%s/eval.json", d);
    const char *text = S("[eval]\nmodel = %s\ndata = %s\ntask = sst2\nseq_len = 64\nbatch_size = 4\nmax_items = 12\n"
                         "out = %s\n", model, dev, json);
    CHECK_INT(ls_write_file_atomic(ini, text, strlen(text)), 0);
    evaluate_request a, b;
    evaluate_defaults(&a);
    CHECK_MSG(opt_load_ini(evaluate_table(), &a, ini) == 0, "%s", ls_error());
    evaluate_defaults(&b);
    char *argv[] = {"eval", "--model", (char *)model, "--data", (char *)dev, "--task", "sst2", "--seq-len", "64",
                    "--batch-size=4", "--max-items", "12"};
    CHECK_MSG(opt_parse_argv(evaluate_table(), &b, 12, argv, NULL, NULL, NULL, NULL) == 0, "%s", ls_error());
    CHECK_INT(evaluate_check(&a), 0);
    CHECK_INT(evaluate_check(&b), 0);
    evaluate_report ra, rb;
    CHECK_MSG(evaluate_run(&a, NULL, &ra) == 0, "%s", ls_error());
    CHECK_MSG(evaluate_run(&b, NULL, &rb) == 0, "%s", ls_error());
    CHECK_INT(ra.items, 12);
    CHECK_MSG(ra.loss == rb.loss && ra.tokens == rb.tokens && ra.accuracy == rb.accuracy,
              "INI: loss %.9g, %ld tokens, accuracy %.4f; flags: loss %.9g, %ld tokens, accuracy %.4f", ra.loss,
              ra.tokens, ra.accuracy, rb.loss, rb.tokens, rb.accuracy);
    CHECK(isfinite(ra.accuracy) && ra.accuracy >= 0 && ra.accuracy <= 1);
    CHECK(!ra.generated);
    // the JSON holds the report's numbers
    char *jt = ls_read_file(json, NULL);
    cJSON *o = jt ? cJSON_Parse(jt) : NULL;
    CHECK(o != NULL);
    if (o) {
        CHECK_NEAR(cJSON_GetObjectItem(o, "loss")->valuedouble, ra.loss, 0);
        CHECK_NEAR(cJSON_GetObjectItem(o, "accuracy")->valuedouble, ra.accuracy, 0);
        CHECK_INT(cJSON_GetObjectItem(o, "items")->valueint, 12);
    }
    cJSON_Delete(o);
    free(jt);
}

static void expect_check_error(const evaluate_request *r, const char *needle) {
    CHECK_INT(evaluate_check(r), -1);
    CHECK_STR_CONTAINS(ls_error(), needle);
}

static void test_eval_request_errors_name_the_flag(void) {
    evaluate_request r;
    evaluate_defaults(&r);
    expect_check_error(&r, "--model: required");
    snprintf(r.model, sizeof r.model, "m.bin");
    expect_check_error(&r, "--data: required");
    snprintf(r.data, sizeof r.data, "d.txt");
    expect_check_error(&r, "--task: required (lm, e2e, sst2 or jsonl)");
    snprintf(r.task, sizeof r.task, "summarize");
    expect_check_error(&r, "--task: task: expected lm, e2e, sst2 or jsonl, found 'summarize'");
    snprintf(r.task, sizeof r.task, "sst2");
    r.generate = 3;
    expect_check_error(&r, "--generate: expected --task e2e, found sst2");
    r.generate = -1;
    r.batch_size = 0; // built by hand, not through the table
    expect_check_error(&r, "--batch-size: expected an integer in [1, 65536], found '0'");
    r.batch_size = 8;
    snprintf(r.backend, sizeof r.backend, "tpu");
    expect_check_error(&r, "--backend: expected cpu, cuda or auto, found 'tpu'");
    // through the table: ranges, unknown flags and keys
    char *argv[] = {"eval", "--seq-len", "1"};
    CHECK_INT(opt_parse_argv(evaluate_table(), &r, 3, argv, NULL, NULL, NULL, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "--seq-len: expected an integer in [2, 1048576], found '1'");
    CHECK_INT(opt_set_key(evaluate_table(), &r, "eval", "beams", "2", "x.ini:3: [eval] beams"), -1);
    CHECK_STR_CONTAINS(ls_error(), "unknown key 'beams' in section [eval]");
}

// ----------------------------------------------------------------------------
// generate

static void test_generate_seed_is_an_integer_and_runs_repeat(void) {
    generate_request r;
    generate_defaults(&r);
    char *bad[] = {"generate", "--seed", "1.5"};
    CHECK_INT(opt_parse_argv(generate_table(), &r, 3, bad, NULL, NULL, NULL, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "--seed: expected an integer in [0, 4294967295], found '1.5'");
    CHECK_INT(generate_check(&r), -1);
    CHECK_STR_CONTAINS(ls_error(), "--model: required");
    const char *model = ls_test_asset("models/stories260K/stories260K.bin");
    if (!model) SKIP("stories260K not in the assets");
    char *argv[] = {"generate", "--model", (char *)model, "--steps", "40", "--temperature", "0.9", "--seed", "42"};
    CHECK_MSG(opt_parse_argv(generate_table(), &r, 9, argv, NULL, NULL, NULL, NULL) == 0, "%s", ls_error());
    CHECK(r.seed == 42 && r.steps == 40);
    CHECK_INT(generate_check(&r), -1);
    CHECK_STR_CONTAINS(ls_error(), "--prompt: required");
    r.prompt = "Once upon a time";
    generate_report a, b;
    CHECK_MSG(generate_run(&r, &a) == 0, "%s", ls_error());
    CHECK_MSG(generate_run(&r, &b) == 0, "%s", ls_error());
    CHECK_INT(a.tokens, b.tokens);
    CHECK_MSG(a.len == b.len && !memcmp(a.text, b.text, a.len), "same seed, different text:\n%s\n%s", a.text,
              b.text);
    CHECK_MSG(!strncmp(a.text, "Once upon a time", 16), "text does not start with the prompt: %s", a.text);
    generate_report_free(&a);
    generate_report_free(&b);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_eval_ini_section_and_flags_give_the_same_result_twice),
        LS_TEST(test_eval_request_errors_name_the_flag),
        LS_TEST(test_generate_seed_is_an_integer_and_runs_repeat),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
