// Tests for src/text/dataset: readers, tokenization with loss masks, splits,
// shuffles and batches. Counts for the real files come from MANIFEST.md and
// from awk over the files (SST-2 dev: 444 positive, 428 negative; E2E valid:
// lines 1-6 share the first MR, 7-12 the second). Small files for the exact
// mask/truncation/error checks are written here, with byte tokenization
// whose ids are the bytes themselves.
#include <cjson/cJSON.h>
#include <stdint.h>

#include "base/util.h"
#include "harness.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

static const char *write_tmp(const char *dir, const char *name, const char *text) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ls_write_file_atomic(path, text, strlen(text)) != 0) fprintf(stderr, "%s\n", ls_error());
    return path;
}

static tokenizer *load_gpt2_tok(void) {
    char enc[4096];
    const char *p = ls_test_asset("tokenizers/gpt2/encoder.json");
    if (!p) return NULL;
    snprintf(enc, sizeof enc, "%s", p);
    const char *bpe = ls_test_asset("tokenizers/gpt2/vocab.bpe");
    return bpe ? tok_load_gpt2(enc, bpe) : NULL;
}

// ----------------------------------------------------------------------------
// readers on the real files

static void test_e2e_files_have_manifest_line_and_mr_counts(void) {
    const char *files[2] = {"data/e2e/valid.txt", "data/e2e/test.txt"};
    int lines[2] = {4672, 4693}, mrs[2] = {547, 630};
    for (int f = 0; f < 2; f++) {
        const char *p = ls_test_asset(files[f]);
        if (!p) SKIP("%s absent", files[f]);
        ds_pairs d;
        int rc = ds_load_e2e(&d, p);
        CHECK_MSG(rc == 0, "%s", ls_error());
        if (rc) continue;
        CHECK_INT(d.n, lines[f]);
        CHECK_INT(d.n_groups, mrs[f]);
        // Every group holds examples with one MR; different groups differ.
        for (int g = 0; g < d.n_groups; g++) {
            const char *mr = d.ex[d.group_members[d.group_start[g]]].context;
            for (int k = d.group_start[g]; k < d.group_start[g + 1]; k++) {
                CHECK(d.ex[d.group_members[k]].group == g);
                CHECK(strcmp(d.ex[d.group_members[k]].context, mr) == 0);
            }
            if (g > 0) CHECK(strcmp(d.ex[d.group_members[d.group_start[g - 1]]].context, mr) != 0);
        }
        CHECK_INT(d.group_start[d.n_groups], d.n);
        if (f == 0) {
            // valid.txt: lines 1-6 share the first MR, lines 7-12 the second.
            CHECK_INT(d.group_start[1] - d.group_start[0], 6);
            for (int k = 0; k < 6; k++) CHECK_INT(d.group_members[k], k);
            CHECK_INT(d.group_members[6], 6);
            CHECK(strcmp(d.ex[0].context, "name : Alimentum | area : city centre | family friendly : no") == 0);
            CHECK(strcmp(d.ex[0].completion,
                         " There is a place in the city centre , Alimentum , that is not family - friendly .") == 0);
            CHECK_INT(d.ex[0].line, 1);
        }
        ds_pairs_free(&d);
    }
}

static void test_sst2_dev_has_872_rows_and_prompt_template(void) {
    const char *p = ls_test_asset("data/sst2/dev.tsv");
    if (!p) SKIP("data/sst2/dev.tsv absent");
    ds_pairs d;
    int rc = ds_load_sst2(&d, p, NULL);
    CHECK_MSG(rc == 0, "%s", ls_error());
    if (rc) return;
    CHECK_INT(d.n, 872);
    int pos = 0;
    for (int i = 0; i < d.n; i++) {
        CHECK(d.ex[i].label == 0 || d.ex[i].label == 1);
        pos += d.ex[i].label;
        CHECK(strcmp(d.ex[i].completion, d.ex[i].label ? " positive" : " negative") == 0);
    }
    CHECK_INT(pos, 444);
    CHECK(strcmp(d.ex[0].context, "Review: it 's a charming and often affecting journey .\nSentiment:") == 0);
    CHECK_INT(d.ex[0].line, 2);   // line 1 is the header
    CHECK_INT(d.n_labels, 2);
    ds_pairs_free(&d);
    // A custom template and label words.
    ds_sst2_format f = {"{sentence} Overall it was", {" bad", " good"}};
    rc = ds_load_sst2(&d, p, &f);
    CHECK(rc == 0);
    if (rc) return;
    CHECK(strcmp(d.ex[1].context, "unflinchingly bleak and desperate Overall it was") == 0);
    CHECK(strcmp(d.ex[1].completion, " bad") == 0);
    ds_pairs_free(&d);
}

static void test_sst2_label_words_tokenized_for_scoring(void) {
    const char *p = ls_test_asset("data/sst2/dev.tsv");
    if (!p) SKIP("data/sst2/dev.tsv absent");
    char sst[4096];
    snprintf(sst, sizeof sst, "%s", p);
    tokenizer *t = load_gpt2_tok();
    if (!t) SKIP("GPT-2 tokenizer absent");
    // Independently: the ids of "Ġnegative" and "Ġpositive" in encoder.json.
    size_t size;
    char *json = ls_read_file(ls_test_asset("tokenizers/gpt2/encoder.json"), &size);
    cJSON *enc = cJSON_Parse(json);
    int neg = cJSON_GetObjectItemCaseSensitive(enc, "\xc4\xa0negative")->valueint;
    int posi = cJSON_GetObjectItemCaseSensitive(enc, "\xc4\xa0positive")->valueint;
    cJSON_Delete(enc);
    free(json);
    ds_pairs d;
    CHECK(ds_load_sst2(&d, sst, NULL) == 0);
    ds_format fmt = ds_format_default(t, 128);
    fmt.sep = -1;   // classification: prompt then label word, no separator
    fmt.eos = 0;
    CHECK_MSG(ds_pairs_tokenize(&d, t, &fmt) == 0, "%s", ls_error());
    CHECK_INT(d.label_len[0], 1);
    CHECK_INT(d.label_len[1], 1);
    CHECK_INT(d.label_ids[0][0], neg);
    CHECK_INT(d.label_ids[1][0], posi);
    // Each example's completion is exactly its label word's tokens.
    for (int i = 0; i < d.n; i++) {
        int c = ds_pairs_context_len(&d, i);
        CHECK_INT(d.n_tokens[i] - c, 1);
        CHECK_INT(d.tokens[i][c], d.ex[i].label ? posi : neg);
    }
    ds_pairs_free(&d);
    tok_free(t);
}

// ----------------------------------------------------------------------------
// tokenization, masks, truncation, batches

static void test_pairs_mask_covers_exactly_completion_bytes(void) {
    const char *dir = ls_test_tmpdir("ds_mask");
    const char *path = write_tmp(dir, "pairs.jsonl",
        "{\"context\": \"ab\", \"completion\": \"cd\"}\n"
        "\n"
        "{\"completion\": \"Z\", \"context\": \"wxy\", \"extra\": 3}\n");
    ds_pairs d;
    CHECK_MSG(ds_load_jsonl(&d, path) == 0, "%s", ls_error());
    CHECK_INT(d.n, 2);
    CHECK_INT(d.ex[1].line, 3);
    tokenizer *t = tok_byte(1);   // BOS 256, EOS 257
    ds_format fmt = ds_format_default(t, 16);
    CHECK_MSG(ds_pairs_tokenize(&d, t, &fmt) == 0, "%s", ls_error());
    // [BOS a b | c d EOS] and [BOS w x y | Z EOS]
    int want0[] = {256, 'a', 'b', 'c', 'd', 257};
    unsigned char mask0[] = {0, 0, 0, 1, 1, 1};
    CHECK_INT(d.n_tokens[0], 6);
    for (int k = 0; k < 6 && d.n_tokens[0] == 6; k++) {
        CHECK_INT(d.tokens[0][k], want0[k]);
        CHECK_INT(d.mask[0][k], mask0[k]);
    }
    CHECK_INT(ds_pairs_context_len(&d, 1), 4);
    ds_batch b;
    ds_batch_init(&b, 3, 7);
    int rows[2] = {0, 1};
    CHECK(ds_pairs_fill_batch(&d, rows, 2, &b) == 0);
    int in0[] = {256, 'a', 'b', 'c', 'd', 0, 0}, tg0[] = {'a', 'b', 'c', 'd', 257, 0, 0};
    float m0[] = {0, 0, 1, 1, 1, 0, 0};
    float m1[] = {0, 0, 0, 1, 1, 0, 0};   // targets x y Z EOS -> Z, EOS in the loss
    for (int t2 = 0; t2 < 7; t2++) {
        CHECK_INT(b.inputs[t2], in0[t2]);
        CHECK_INT(b.targets[t2], tg0[t2]);
        CHECK_NEAR(b.mask[t2], m0[t2], 0);
        CHECK_NEAR(b.mask[7 + t2], m1[t2], 0);
        CHECK_NEAR(b.mask[14 + t2], 0, 0);   // padding row
    }
    CHECK_INT(b.targets[7 + 3], 'Z');
    CHECK_INT(b.n_rows, 2);
    CHECK_INT(b.n_loss, 5);
    // A batch too short for the examples is refused.
    ds_batch small;
    ds_batch_init(&small, 2, 4);
    CHECK(ds_pairs_fill_batch(&d, rows, 2, &small) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected at most T+1 = 5 tokens per example, found 6");
    ds_batch_free(&small);
    ds_batch_free(&b);
    ds_pairs_free(&d);
    tok_free(t);
}

static void test_pairs_truncation_drops_context_front_then_completion_end(void) {
    const char *dir = ls_test_tmpdir("ds_trunc");
    const char *path = write_tmp(dir, "long.jsonl",
        "{\"context\": \"0123456789\", \"completion\": \"xy\"}\n"
        "{\"context\": \"ab\", \"completion\": \"0123456789\"}\n"
        "{\"context\": \"ab\", \"completion\": \"c\"}\n");
    ds_pairs d;
    CHECK(ds_load_jsonl(&d, path) == 0);
    tokenizer *t = tok_byte(1);
    ds_format fmt = ds_format_default(t, 8);
    CHECK(ds_pairs_tokenize(&d, t, &fmt) == 0);
    // 11 context + 3 completion tokens > 8: BOS stays, the context keeps its last 4.
    int want0[] = {256, '6', '7', '8', '9', 'x', 'y', 257};
    CHECK_INT(d.n_tokens[0], 8);
    for (int k = 0; k < 8 && d.n_tokens[0] == 8; k++) CHECK_INT(d.tokens[0][k], want0[k]);
    CHECK_INT(ds_pairs_context_len(&d, 0), 5);
    // The completion alone (11 with EOS) does not fit: context is BOS only,
    // the completion keeps its first 7 tokens.
    int want1[] = {256, '0', '1', '2', '3', '4', '5', '6'};
    CHECK_INT(d.n_tokens[1], 8);
    for (int k = 0; k < 8 && d.n_tokens[1] == 8; k++) CHECK_INT(d.tokens[1][k], want1[k]);
    CHECK_INT(ds_pairs_context_len(&d, 1), 1);
    CHECK_INT(d.n_tokens[2], 5);
    CHECK_INT(d.n_truncated, 2);
    ds_pairs_free(&d);
    tok_free(t);
}

static void test_e2e_gpt2_tokens_are_context_sep_completion_eos(void) {
    const char *p = ls_test_asset("data/e2e/valid.txt");
    if (!p) SKIP("data/e2e/valid.txt absent");
    char e2e[4096];
    snprintf(e2e, sizeof e2e, "%s", p);
    tokenizer *t = load_gpt2_tok();
    if (!t) SKIP("GPT-2 tokenizer absent");
    ds_pairs d;
    CHECK(ds_load_e2e(&d, e2e) == 0);
    ds_format fmt = ds_format_default(t, 512);
    CHECK_INT(fmt.sep, 50256);
    CHECK_MSG(ds_pairs_tokenize(&d, t, &fmt) == 0, "%s", ls_error());
    CHECK_INT(d.n_truncated, 0);
    long masked = 0, mask_total = 0;
    for (int i = 0; i < d.n; i++) {
        int nc, np;
        int *ctx = tok_encode(t, d.ex[i].context, 0, 0, &nc);
        int *comp = tok_encode(t, d.ex[i].completion, 0, 0, &np);
        int c = ds_pairs_context_len(&d, i);
        int ok = c == nc + 1 && d.n_tokens[i] == nc + 1 + np + 1 && d.tokens[i][nc] == 50256 &&
                 d.tokens[i][d.n_tokens[i] - 1] == 50256;
        for (int k = 0; ok && k < nc; k++) ok = d.tokens[i][k] == ctx[k] && !d.mask[i][k];
        for (int k = 0; ok && k < np; k++) ok = d.tokens[i][nc + 1 + k] == comp[k] && d.mask[i][nc + 1 + k];
        CHECK_MSG(ok, "example %d (line %d) is not [context, 50256, completion, 50256] with the completion masked in",
                  i, d.ex[i].line);
        masked += np + 1;
        for (int k = 0; k < d.n_tokens[i]; k++) mask_total += d.mask[i][k];
        free(ctx);
        free(comp);
        if (!ok) break;
    }
    CHECK_INT(mask_total, masked);
    ds_pairs_free(&d);
    tok_free(t);
}

// ----------------------------------------------------------------------------
// splits, shuffles, samplers

static void test_e2e_split_never_leaks_an_mr(void) {
    const char *p = ls_test_asset("data/e2e/valid.txt");
    if (!p) SKIP("data/e2e/valid.txt absent");
    ds_pairs d;
    CHECK(ds_load_e2e(&d, p) == 0);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        int *tr, *va, ntr, nva;
        CHECK(ds_pairs_split(&d, 0.1, seed, &tr, &ntr, &va, &nva) == 0);
        CHECK_INT(ntr + nva, d.n);
        // round(0.1 * 547) = 55 MR groups in validation.
        unsigned char *in_val = calloc((size_t)d.n_groups, 1);
        for (int k = 0; k < nva; k++) in_val[d.ex[va[k]].group] = 1;
        int groups = 0;
        for (int g = 0; g < d.n_groups; g++) groups += in_val[g];
        CHECK_INT(groups, 55);
        // No MR string of a validation example appears in training.
        int leaks = 0;
        for (int a = 0; a < ntr; a++)
            for (int b = 0; b < nva; b++)
                if (strcmp(d.ex[tr[a]].context, d.ex[va[b]].context) == 0) { leaks++; break; }
        CHECK_INT(leaks, 0);
        free(in_val);
        free(tr);
        free(va);
    }
    int *tr, *va, ntr, nva;
    CHECK(ds_pairs_split(&d, 1.5, 1, &tr, &ntr, &va, &nva) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected a number in [0, 1], found 1.5");
    ds_pairs_free(&d);
}

static void test_splitmix64_first_output_matches_reference(void) {
    // Vigna's splitmix64.c seeded with 0 first returns 0xE220A8397B1DCDAF.
    ds_rng r;
    ds_rng_seed(&r, 0);
    CHECK(ds_rng_next(&r) == 0xE220A8397B1DCDAFULL);
}

static void test_shuffle_same_seed_same_order_different_seed_differs(void) {
    enum { N = 1000 };
    static int a[N], b[N], c[N];
    for (int i = 0; i < N; i++) a[i] = b[i] = c[i] = i;
    ds_shuffle(a, N, 42);
    ds_shuffle(b, N, 42);
    ds_shuffle(c, N, 43);
    int same_ab = 1, same_ac = 0, moved = 0;
    static int seen[N];
    for (int i = 0; i < N; i++) {
        same_ab &= a[i] == b[i];
        same_ac += a[i] == c[i];
        moved += a[i] != i;
        seen[a[i]]++;
    }
    CHECK(same_ab);
    CHECK_MSG(same_ac < 20, "%d positions agree between seeds 42 and 43", same_ac);
    CHECK_MSG(moved > 950, "only %d of 1000 items moved", moved);
    for (int i = 0; i < N; i++) CHECK_INT(seen[i], 1);
}

static void test_sampler_is_a_function_of_step_and_covers_each_epoch(void) {
    int items[10] = {3, 5, 7, 9, 11, 13, 15, 17, 19, 21};
    ds_sampler s1, s2;
    ds_sampler_init(&s1, items, 10, 9);
    ds_sampler_init(&s2, items, 10, 9);
    int out[4], again[4];
    int count[22] = {0};
    // 5 batches of 4 = 2 full epochs: each item exactly twice.
    for (long step = 0; step < 5; step++) {
        ds_sampler_batch(&s1, step, 4, out);
        for (int j = 0; j < 4; j++) count[out[j]]++;
    }
    for (int i = 0; i < 10; i++) CHECK_INT(count[items[i]], 2);
    // A resumed sampler jumps straight to step 3 and sees the same batch.
    ds_sampler_batch(&s1, 3, 4, out);
    ds_sampler_batch(&s2, 3, 4, again);
    for (int j = 0; j < 4; j++) CHECK_INT(again[j], out[j]);
    ds_sampler_free(&s1);
    ds_sampler_free(&s2);
}

// ----------------------------------------------------------------------------
// plain text

static void test_text_windows_are_disjoint_and_shifted(void) {
    const char *dir = ls_test_tmpdir("ds_text");
    const char *path = write_tmp(dir, "doc.txt", "hello world<SEP>\n  second doc  \n<SEP><SEP>third");
    tokenizer *t = tok_byte(1);
    ds_text d;
    CHECK_MSG(ds_text_load(&d, path, t, "<SEP>", 4) == 0, "%s", ls_error());
    // BOS "hello world" BOS "second doc" BOS "third": 3 + 11 + 10 + 5 = 29 tokens
    CHECK_INT(d.n_tokens, 29);
    CHECK_INT(d.n_windows, 5);   // 29 / (T+1)
    CHECK_INT(d.tokens[0], 256);
    CHECK_INT(d.tokens[12], 256);
    CHECK_INT(d.tokens[13], 's');
    ds_batch b;
    ds_batch_init(&b, 2, 4);
    int w[1] = {1};
    CHECK(ds_text_fill_batch(&d, w, 1, &b) == 0);
    // window 1 = tokens 5..9 = "o wor": inputs "o wo", targets " wor"
    CHECK_INT(b.inputs[0], 'o');
    CHECK_INT(b.targets[0], ' ');
    CHECK_INT(b.inputs[3], 'o');
    CHECK_INT(b.targets[3], 'r');
    CHECK_INT(b.n_loss, 4);
    CHECK_NEAR(b.mask[4], 0, 0);
    int *tr, *va, ntr, nva;
    CHECK(ds_split(d.n_windows, NULL, 0, 0.4, 5, &tr, &ntr, &va, &nva) == 0);
    CHECK_INT(nva, 2);
    CHECK_INT(ntr, 3);
    for (int i = 0; i < ntr; i++)
        for (int j = 0; j < nva; j++) CHECK(tr[i] != va[j]);
    free(tr);
    free(va);
    ds_batch_free(&b);
    ds_text_free(&d);
    // Too short for one window.
    CHECK(ds_text_load(&d, path, t, "<SEP>", 40) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected at least T+1 = 41 tokens, found 29");
    tok_free(t);
}

// ----------------------------------------------------------------------------
// malformed files

static void test_malformed_lines_name_file_line_expected_and_found(void) {
    const char *dir = ls_test_tmpdir("ds_bad");
    char want[4300];
    ds_pairs d;
    const char *p = write_tmp(dir, "bad_e2e.txt", "name : A||A is a place .\nname : B||B is .\nname : C | no separator\n");
    CHECK(ds_load_e2e(&d, p) == -1);
    snprintf(want, sizeof want, "%s:3: expected \"meaning representation||reference\", found no \"||\"", p);
    CHECK_STR_CONTAINS(ls_error(), want);

    p = write_tmp(dir, "array.jsonl", "{\"context\": \"a\", \"completion\": \"b\"}\n[1, 2]\n");
    CHECK(ds_load_jsonl(&d, p) == -1);
    snprintf(want, sizeof want, "%s:2: expected a JSON object with string fields \"context\" and \"completion\", found an array", p);
    CHECK_STR_CONTAINS(ls_error(), want);
    p = write_tmp(dir, "missing.jsonl", "{\"context\": \"a\"}\n");
    CHECK(ds_load_jsonl(&d, p) == -1);
    CHECK_STR_CONTAINS(ls_error(), ":1: expected a JSON object");
    CHECK_STR_CONTAINS(ls_error(), "found no \"completion\" field");
    p = write_tmp(dir, "number.jsonl", "\n{\"context\": \"a\", \"completion\": 5}\n");
    CHECK(ds_load_jsonl(&d, p) == -1);
    CHECK_STR_CONTAINS(ls_error(), ":2: expected");
    CHECK_STR_CONTAINS(ls_error(), "found \"completion\" as a number");
    p = write_tmp(dir, "garbage.jsonl", "{\"context\": \"a\", \"completion\": \"b\"} trailing\n");
    CHECK(ds_load_jsonl(&d, p) == -1);
    CHECK_STR_CONTAINS(ls_error(), ":1: expected a JSON object");
    CHECK_STR_CONTAINS(ls_error(), "found invalid JSON");

    p = write_tmp(dir, "notab.tsv", "sentence\tlabel\ngood film \t1\nno tab here 0\n");
    CHECK(ds_load_sst2(&d, p, NULL) == -1);
    snprintf(want, sizeof want, "%s:3: expected \"sentence<TAB>label\", found no tab", p);
    CHECK_STR_CONTAINS(ls_error(), want);
    p = write_tmp(dir, "label.tsv", "sentence\tlabel\ngood film \t1\nbad film \t2\n");
    CHECK(ds_load_sst2(&d, p, NULL) == -1);
    snprintf(want, sizeof want, "%s:3: label: expected 0 or 1, found \"2\"", p);
    CHECK_STR_CONTAINS(ls_error(), want);
    p = write_tmp(dir, "header.tsv", "good film \t1\n");
    CHECK(ds_load_sst2(&d, p, NULL) == -1);
    CHECK_STR_CONTAINS(ls_error(), ":1: expected the header \"sentence<TAB>label\"");
    ds_sst2_format f = {"no slot", {" a", " b"}};
    CHECK(ds_load_sst2(&d, p, &f) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected \"{sentence}\" exactly once");
    // CRLF files read like LF files.
    p = write_tmp(dir, "crlf.tsv", "sentence\tlabel\r\ngood film \t1\r\n");
    CHECK_MSG(ds_load_sst2(&d, p, NULL) == 0, "%s", ls_error());
    CHECK_INT(d.n, 1);
    ds_pairs_free(&d);
}

static void test_e2e_triple_bar_is_an_error_not_a_split(void) {
    const char *dir = ls_test_tmpdir("ds_bars");
    char want[4300];
    ds_pairs d;
    const char *p = write_tmp(dir, "bars.txt", "name : A||A is a place .\na|||b\n");
    CHECK(ds_load_e2e(&d, p) == -1);
    snprintf(want, sizeof want, "%s:2: expected one \"||\" separator, found more '|' in \"a|||b\"", p);
    CHECK_STR_CONTAINS(ls_error(), want);
}

static void test_e2e_error_shows_binary_bytes_escaped(void) {
    const char *dir = ls_test_tmpdir("ds_binary");
    ds_pairs d;
    // A control byte, an invalid UTF-8 byte and a well-formed "é".
    const char *p = write_tmp(dir, "binary.txt", "a\x01\xff\xc3\xa9" "b\n");
    CHECK(ds_load_e2e(&d, p) == -1);
    CHECK_STR_CONTAINS(ls_error(), ":1: expected \"meaning representation||reference\", found no \"||\" in "
                                   "\"a\\x01\\xff\xc3\xa9" "b\"");
    for (const unsigned char *c = (const unsigned char *)ls_error(); *c; c++)
        CHECK_MSG(*c >= 0x20 && *c != 0x7f && *c != 0xff, "raw byte 0x%02x in the message: %s", *c, ls_error());
}


static const ls_test tests[] = {
    LS_TEST(test_e2e_files_have_manifest_line_and_mr_counts),
    LS_TEST(test_sst2_dev_has_872_rows_and_prompt_template),
    LS_TEST(test_sst2_label_words_tokenized_for_scoring),
    LS_TEST(test_pairs_mask_covers_exactly_completion_bytes),
    LS_TEST(test_pairs_truncation_drops_context_front_then_completion_end),
    LS_TEST(test_e2e_gpt2_tokens_are_context_sep_completion_eos),
    LS_TEST(test_e2e_split_never_leaks_an_mr),
    LS_TEST(test_splitmix64_first_output_matches_reference),
    LS_TEST(test_shuffle_same_seed_same_order_different_seed_differs),
    LS_TEST(test_sampler_is_a_function_of_step_and_covers_each_epoch),
    LS_TEST(test_text_windows_are_disjoint_and_shifted),
    LS_TEST(test_malformed_lines_name_file_line_expected_and_found),
    LS_TEST(test_e2e_triple_bar_is_an_error_not_a_split),
    LS_TEST(test_e2e_error_shows_binary_bytes_escaped),
};
int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
