// Sentence classification data for encoders (text/ds_classify.h): SST-2 rows
// encoded as [BOS] sentence [EOS] through the tokenizer interface, truncation
// keeping EOS, padded batches with a key mask and labels.
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "harness.h"
#include "text/ds_classify.h"

static const char *write_tsv(const char *name, const char *text) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", ls_test_tmpdir("classify"), name);
    CHECK(ls_write_file_atomic(path, text, strlen(text)) == 0);
    return path;
}

static void test_sst2_rows_become_bos_text_eos_with_labels_and_padded_batches(void) {
    const char *path = write_tsv("sst2.tsv", "sentence\tlabel\nab\t1\nhello \t0\nxyz w\t1\n");
    ds_pairs d;
    ds_sst2_format fmt = {"{sentence}", {" negative", " positive"}};
    CHECK_MSG(ds_load_sst2(&d, path, &fmt) == 0, "%s", ls_error());
    tokenizer *tok = tok_byte(1); // BOS 256, EOS 257: [CLS] / [SEP] for WordPiece
    ds_classify c;
    CHECK_MSG(ds_classify_tokenize(&c, &d, tok, 6) == 0, "%s", ls_error());
    CHECK_INT(c.n, 3);
    CHECK_INT(c.n_tokens[0], 4); // BOS a b EOS
    int want0[4] = {256, 'a', 'b', 257};
    CHECK(memcmp(c.tokens[0], want0, sizeof want0) == 0);
    CHECK_INT(c.n_tokens[1], 6); // "hello" (trimmed) + BOS + EOS = 7 -> cut to 6, EOS kept
    CHECK_INT(c.tokens[1][5], 257);
    CHECK_INT(c.tokens[1][4], 'l');
    CHECK_INT(c.n_truncated, 2); // "hello" and "xyz w"
    CHECK_INT(c.labels[0], 1);
    CHECK_INT(c.labels[1], 0);
    int ex[2] = {2, 0}, ids[12], mask[12], labels[2];
    int T = ds_classify_fill(&c, ex, 2, 0, ids, mask, labels);
    CHECK_INT(T, 6); // "xyz w": BOS + 5 + EOS = 7 -> 6
    CHECK_INT(labels[0], 1);
    int row1[6] = {256, 'a', 'b', 257, 0, 0}, m1[6] = {1, 1, 1, 1, 0, 0};
    CHECK(memcmp(ids + T, row1, sizeof row1) == 0);
    CHECK(memcmp(mask + T, m1, sizeof m1) == 0);
    ds_classify_free(&c);
    CHECK(ds_classify_tokenize(&c, &d, tok, 2) == -1);
    CHECK_STR_CONTAINS(ls_error(), "max_len: expected >= 3 (BOS, EOS and one token), found 2");
    tok_free(tok);
    ds_pairs_free(&d);
}

static void test_classification_needs_labels(void) {
    const char *path = write_tsv("e2e.txt", "name : A||A is a place .\n");
    ds_pairs d;
    CHECK(ds_load_e2e(&d, path) == 0);
    tokenizer *tok = tok_byte(1);
    ds_classify c;
    CHECK(ds_classify_tokenize(&c, &d, tok, 16) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected a classification data set (labels), found none");
    tok_free(tok);
    ds_pairs_free(&d);
}

static const ls_test tests[] = {
    LS_TEST(test_sst2_rows_become_bos_text_eos_with_labels_and_padded_batches),
    LS_TEST(test_classification_needs_labels),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
