// Tests for the WordPiece tokenizer (src/text/tok_wordpiece.c), RoBERTa's
// specials over GPT-2's BPE, and model-shaped sequences (tok_sequence.c).
//
// Expected ids: Hugging Face's BertTokenizer on all-MiniLM-L6-v2's vocabulary
// (tests/reference/make_wordpiece_reference.py -> tests/data/text/), and
// derivations by hand on small vocabularies written here.
#include <cjson/cJSON.h>
#include <unistd.h>

#include "base/util.h"
#include "harness.h"
#include "text/tokenizer.h"

static tokenizer *load_minilm(void) {
    const char *dir = ls_test_asset("models/all-MiniLM-L6-v2");
    if (!dir) return NULL;
    tokenizer *t = tok_load_path(dir, 0);
    if (!t) fprintf(stderr, "tok_load_path: %s\n", ls_error());
    return t;
}

static void print_ids(const char *what, const int *ids, int n) {
    fprintf(stderr, "  %s (%d):", what, n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

// 1 if the JSON array of integers equals ids[0..n).
static int json_ids_equal(const cJSON *arr, const int *ids, int n) {
    if (cJSON_GetArraySize(arr) != n) return 0;
    int i = 0;
    for (const cJSON *v = arr ? arr->child : NULL; v; v = v->next, i++)
        if (!cJSON_IsNumber(v) || v->valueint != ids[i]) return 0;
    return 1;
}

static void print_json_ids(const char *what, const cJSON *arr) {
    fprintf(stderr, "  %s (%d):", what, cJSON_GetArraySize(arr));
    for (const cJSON *v = arr ? arr->child : NULL; v; v = v->next) fprintf(stderr, " %d", v->valueint);
    fputc('\n', stderr);
}

// Writes text to dir/name; returns the path (static buffer per slot).
static const char *write_file(const char *dir, const char *name, const char *text, int slot) {
    static char paths[4][4200];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
    if (ls_write_file_atomic(paths[slot], text, strlen(text))) fprintf(stderr, "write: %s\n", ls_error());
    return paths[slot];
}

// ----------------------------------------------------------------------------
// Hugging Face references

// Checks every case of a reference file (see make_wordpiece_reference.py for
// the format); returns the number of cases read.
static int check_reference_file(const tokenizer *t, const char *rel) {
    char *text = ls_read_file(ls_test_source(rel), NULL);
    CHECK_MSG(text != NULL, "%s", ls_error());
    int n_cases = 0, n_ok = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        CHECK_MSG(c != NULL, "unparsable reference line: %.80s", line);
        if (!c) continue;
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const cJSON *pair = cJSON_GetObjectItem(c, "pair");
        tok_sequence_opts o = {cJSON_IsTrue(cJSON_GetObjectItem(c, "special")),
                               cJSON_GetObjectItem(c, "max_length")->valueint,
                               cJSON_IsTrue(cJSON_GetObjectItem(c, "pad"))};
        tok_encoding e;
        int rc = tok_encode_sequence(t, cJSON_GetObjectItem(c, "text")->valuestring,
                                     cJSON_IsString(pair) ? pair->valuestring : NULL, &o, &e);
        CHECK_MSG(rc == 0, "case %s: %s", name, ls_error());
        const char *fields[3] = {"ids", "type_ids", "attention_mask"};
        const int *got[3] = {e.ids, e.type_ids, e.attention_mask};
        int ok = rc == 0;
        for (int f = 0; f < 3 && ok; f++) {
            const cJSON *want = cJSON_GetObjectItem(c, fields[f]);
            if (json_ids_equal(want, got[f], e.n)) continue;
            CHECK_MSG(0, "case %s: %s differ from HF", name, fields[f]);
            print_ids("got", got[f], e.n);
            print_json_ids("want", want);
            ok = 0;
        }
        n_cases++;
        n_ok += ok;
        tok_encoding_free(&e);
        cJSON_Delete(c);
    }
    fprintf(stderr, "%s: %d of %d HF reference cases match\n", rel, n_ok, n_cases);
    free(text);
    return n_cases;
}

static void test_wordpiece_matches_hf_reference_cases(void) {
    tokenizer *t = load_minilm();
    if (!t) SKIP("models/all-MiniLM-L6-v2 absent");
    int n = check_reference_file(t, "data/text/wordpiece_reference.jsonl");
    CHECK_MSG(n == 99, "expected the 99 reference cases, found %d", n);
    tok_free(t);
}

static void test_wordpiece_matches_hf_on_sst2_dev(void) {
    tokenizer *t = load_minilm();
    if (!t) SKIP("models/all-MiniLM-L6-v2 absent");
    const char *dev = ls_test_asset("data/sst2/dev.tsv");
    if (!dev) { tok_free(t); SKIP("data/sst2/dev.tsv absent"); }
    char *tsv = ls_read_file(dev, NULL);
    char *ref = ls_read_file(ls_test_source("data/text/wordpiece_sst2_dev.jsonl"), NULL);
    CHECK(tsv && ref);
    // line number -> sentence (the text before the tab)
    char *lines[2000] = {0};
    int n_lines = 0;
    for (char *p = tsv, *nl; p && *p && n_lines < 2000; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        char *tab = strchr(p, '\t');
        if (tab) *tab = 0;
        lines[++n_lines] = p;
    }
    int n = 0, ok = 0;
    for (char *line = ref ? strtok(ref, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        int lineno = cJSON_GetObjectItem(c, "line")->valueint;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        CHECK_MSG(lineno >= 1 && lineno <= n_lines, "line %d not in dev.tsv", lineno);
        if (lineno >= 1 && lineno <= n_lines) {
            int k;
            int *ids = tok_encode(t, lines[lineno], 1, 1, &k);
            if (json_ids_equal(want, ids, k)) ok++;
            else {
                CHECK_MSG(0, "dev.tsv line %d \"%s\" differs from HF", lineno, lines[lineno]);
                print_ids("got", ids, k);
                print_json_ids("want", want);
            }
            free(ids);
        }
        n++;
        cJSON_Delete(c);
    }
    fprintf(stderr, "%d of %d SST-2 dev sentences match HF\n", ok, n);
    CHECK_INT(n, 872);
    free(tsv);
    free(ref);
    tok_free(t);
}

// ----------------------------------------------------------------------------
// hand-derived encodings on a small vocabulary (id = line - 1)

static const char *SMALL_VOCAB = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\n!\nhello\n##s\na\n##a\ncafe\n"
                                 "\xe4\xb8\xad\n,\n##ab\nab\n";

static tokenizer *small_tok(const char *name, const char *config) {
    const char *dir = ls_test_tmpdir(name);
    const char *vocab = write_file(dir, "vocab.txt", SMALL_VOCAB, 0);
    const char *cfg = config ? write_file(dir, "tokenizer_config.json", config, 1) : NULL;
    tokenizer *t = tok_load_wordpiece(vocab, cfg);
    if (!t) fprintf(stderr, "tok_load_wordpiece: %s\n", ls_error());
    return t;
}

static void check_encoding(const tokenizer *t, const char *text, const int *want, int n_want) {
    int n;
    int *ids = tok_encode(t, text, 0, 0, &n);
    int same = n == n_want;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        CHECK_MSG(0, "encoding of \"%s\" differs", text);
        print_ids("got", ids, n);
        print_ids("want", want, n_want);
    }
    free(ids);
}

static void test_wordpiece_hand_derived_encodings(void) {
    tokenizer *t = small_tok("wp_small", NULL);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_INT(tok_type(t), TOK_WORDPIECE);
    CHECK_INT(tok_vocab_size(t), 18);
    CHECK_INT(tok_bos(t), 2);
    CHECK_INT(tok_eos(t), 3);
    CHECK_INT(tok_pad(t), 0);
    CHECK_INT(tok_unk(t), 1);
    // un + ##aff + ##able, then "!" split off as punctuation
    check_encoding(t, "unaffable!", (int[]){5, 6, 7, 8}, 4);
    // lower-cased, accent stripped (É -> E), ',' split, CJK split, 文 unknown
    check_encoding(t, "Hello, CAF\xc3\x89 \xe4\xb8\xad\xe6\x96\x87", (int[]){9, 15, 13, 14, 1}, 5);
    // greedy longest first: "aaa" -> a ##a ##a; "abab" -> ab ##ab
    check_encoding(t, "aaa abab", (int[]){11, 12, 12, 17, 16}, 5);
    // a word with an unmatched rest is one [UNK], not un + [UNK]
    check_encoding(t, "unx hello", (int[]){1, 9}, 2);
    // the special tokens are matched whole in the text, the case kept
    check_encoding(t, "hello[SEP]un [sep]", (int[]){9, 3, 5, 1, 1, 1}, 6);
    char word[128];
    memset(word, 'a', 101);
    word[101] = 0;
    check_encoding(t, word, (int[]){1}, 1);   // 101 characters -> [UNK]
    word[100] = 0;
    int want[100];
    want[0] = 11;
    for (int i = 1; i < 100; i++) want[i] = 12;
    check_encoding(t, word, want, 100);       // 100 characters still split
    int n;
    int *ids = tok_encode(t, "unaffable", 1, 1, &n);
    char *back = tok_decode(t, -1, ids, n, NULL);
    CHECK_MSG(!strcmp(back, "[CLS] unaffable [SEP]"), "decoded \"%s\"", back);
    free(back);
    free(ids);
    tok_free(t);
    // cased: no lower-casing and (strip_accents null) no accent stripping
    t = small_tok("wp_cased", "{\"do_lower_case\": false, \"strip_accents\": null}");
    CHECK(t != NULL);
    if (t) check_encoding(t, "Hello hello cafe caf\xc3\xa9", (int[]){1, 9, 13, 1}, 4);
    tok_free(t);
}

static void test_wordpiece_pairs_truncation_and_padding(void) {
    tokenizer *t = small_tok("wp_pairs", NULL);
    CHECK(t != NULL);
    if (!t) return;
    tok_encoding e;
    tok_sequence_opts o = {1, 0, 0};
    CHECK(tok_encode_sequence(t, "hello", "un", &o, &e) == 0);
    int ids[] = {2, 9, 3, 5, 3}, types[] = {0, 0, 0, 1, 1};
    CHECK_INT(e.n, 5);
    for (int i = 0; i < 5 && i < e.n; i++) {
        CHECK_INT(e.ids[i], ids[i]);
        CHECK_INT(e.type_ids[i], types[i]);
        CHECK_INT(e.attention_mask[i], 1);
    }
    tok_encoding_free(&e);
    // 5 + 2 tokens, budget 8 - 3 = 5: the longer keeps max(2, 5 - 2) = 3.
    o.max_length = 8;
    CHECK(tok_encode_sequence(t, "a a a a a", "ab ab", &o, &e) == 0);
    int want[] = {2, 11, 11, 11, 3, 17, 17, 3};
    CHECK_INT(e.n, 8);
    for (int i = 0; i < 8 && i < e.n; i++) CHECK_INT(e.ids[i], want[i]);
    tok_encoding_free(&e);
    // both long (6 and 6), budget 9 - 3 = 6: 3 and 3
    o.max_length = 9;
    CHECK(tok_encode_sequence(t, "a a a a a a", "ab ab ab ab ab ab", &o, &e) == 0);
    int want2[] = {2, 11, 11, 11, 3, 17, 17, 17, 3};
    CHECK_INT(e.n, 9);
    for (int i = 0; i < 9 && i < e.n; i++) CHECK_INT(e.ids[i], want2[i]);
    tok_encoding_free(&e);
    // single text, padded to 6: [CLS] hello [SEP] [PAD] [PAD] [PAD]
    tok_sequence_opts p = {1, 6, 1};
    CHECK(tok_encode_sequence(t, "hello", NULL, &p, &e) == 0);
    int want3[] = {2, 9, 3, 0, 0, 0}, mask3[] = {1, 1, 1, 0, 0, 0};
    CHECK_INT(e.n, 6);
    for (int i = 0; i < 6 && i < e.n; i++) {
        CHECK_INT(e.ids[i], want3[i]);
        CHECK_INT(e.attention_mask[i], mask3[i]);
        CHECK_INT(e.type_ids[i], 0);
    }
    tok_encoding_free(&e);
    // max_length below the special tokens, a pair for a tokenizer without one
    tok_sequence_opts tiny = {1, 2, 0};
    CHECK(tok_encode_sequence(t, "a", "b", &tiny, &e) == -1);
    CHECK_STR_CONTAINS(ls_error(), "max_length 2: expected at least the 3 special tokens");
    tokenizer *bytes = tok_byte(1);
    CHECK(tok_encode_sequence(bytes, "a", "b", &o, &e) == -1);
    CHECK_STR_CONTAINS(ls_error(), "no sentence-pair form");
    CHECK(tok_encode_sequence(bytes, "ab", NULL, &p, &e) == -1);
    CHECK_STR_CONTAINS(ls_error(), "no padding token");
    tok_free(bytes);
    tok_free(t);
}

// ----------------------------------------------------------------------------
// bad input: one line naming the file, the line or key, what was expected

static void expect_vocab_error(const char *name, const char *vocab, const char *config, const char *needle) {
    const char *dir = ls_test_tmpdir(name);
    const char *vp = write_file(dir, "vocab.txt", vocab, 2);
    const char *cp = config ? write_file(dir, "tokenizer_config.json", config, 3) : NULL;
    tokenizer *t = tok_load_wordpiece(vp, cp);
    CHECK_MSG(t == NULL, "%s: loaded a bad vocabulary", name);
    tok_free(t);
    const char *e = ls_error();
    CHECK_STR_CONTAINS(e, config ? cp : vp);
    CHECK_STR_CONTAINS(e, needle);
    CHECK_MSG(strchr(e, '\n') == NULL, "%s: error is not one line: %s", name, e);
    // the same through the directory dispatch
    t = tok_load_path(dir, 0);
    CHECK(t == NULL);
    tok_free(t);
    CHECK_STR_CONTAINS(ls_error(), needle);
}

static void test_wordpiece_bad_vocab_and_config_name_file_and_line(void) {
    expect_vocab_error("wp_empty", "", NULL, "expected one WordPiece token a line, found an empty file");
    expect_vocab_error("wp_no_unk", "[PAD]\n[CLS]\n[SEP]\nhello\n", NULL,
                       "expected the unk_token \"[UNK]\" in the vocabulary, found none");
    expect_vocab_error("wp_no_cls", "[UNK]\n[SEP]\nhello\n", NULL, "expected the cls_token \"[CLS]\"");
    expect_vocab_error("wp_no_sep", "[UNK]\n[CLS]\nhello\n", NULL, "expected the sep_token \"[SEP]\"");
    expect_vocab_error("wp_dup", "[UNK]\n[CLS]\n[SEP]\nun\nhello\nun\n", NULL,
                       "vocab.txt:6: expected each token once, found \"un\" again (first on line 4)");
    char *longline = ls_malloc(3000);
    snprintf(longline, 3000, "[UNK]\n[CLS]\n[SEP]\n");
    size_t k = strlen(longline);
    memset(longline + k, 'x', 2000);
    longline[k + 2000] = 0;
    expect_vocab_error("wp_long", longline, NULL, "vocab.txt:4: expected a token of at most 1024 bytes, found 2000");
    free(longline);
    expect_vocab_error("wp_utf8", "[UNK]\n[CLS]\n\xff\xfe\n[SEP]\n", NULL, "vocab.txt:3: expected UTF-8 text");
    expect_vocab_error("wp_json", SMALL_VOCAB, "{\"do_lower_case\": tru", "expected a JSON object, found invalid JSON");
    expect_vocab_error("wp_type", SMALL_VOCAB, "{\"do_lower_case\": \"yes\"}",
                       "key \"do_lower_case\": expected true or false, found another JSON value");
    expect_vocab_error("wp_special", SMALL_VOCAB, "{\"unk_token\": \"<unk>\"}",
                       "expected the unk_token \"<unk>\" named by");
    expect_vocab_error("wp_special_type", SMALL_VOCAB, "{\"sep_token\": 5}",
                       "key \"sep_token\": expected a token string");
    // a directory with no tokenizer at all
    const char *dir = ls_test_tmpdir("wp_nothing");
    CHECK(tok_load_path(dir, 0) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "expected a tokenizer directory (vocab.txt, encoder.json + vocab.bpe, or vocab.json + merges.txt)");
}

// ----------------------------------------------------------------------------
// dispatch

static void test_wordpiece_found_beside_the_model(void) {
    const char *dir = ls_test_asset("models/all-MiniLM-L6-v2");
    if (!dir) SKIP("models/all-MiniLM-L6-v2 absent");
    char model[4200];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    char *used = NULL;
    tokenizer *t = tok_load_for_model(model, NULL, 30522, &used);
    CHECK_MSG(t != NULL, "%s", ls_error());
    if (!t) return;
    CHECK_INT(tok_type(t), TOK_WORDPIECE);
    CHECK_INT(tok_vocab_size(t), 30522);
    CHECK_INT(tok_pad(t), 0);
    CHECK_INT(tok_unk(t), 100);
    CHECK_INT(tok_bos(t), 101);
    CHECK_INT(tok_eos(t), 102);
    CHECK_STR_CONTAINS(tok_piece(t, 103), "[MASK]");
    CHECK_STR_CONTAINS(used, "all-MiniLM-L6-v2");
    free(used);
    tok_free(t);
}

// ----------------------------------------------------------------------------
// RoBERTa: GPT-2's BPE with <s> </s> <unk> <pad> <mask> appended (HF's
// RobertaTokenizer built from the GPT-2 files, make_roberta_reference.py)

static void test_roberta_matches_hf_reference_cases(void) {
    const char *g = ls_test_asset("tokenizers/gpt2");
    if (!g) SKIP("tokenizers/gpt2 absent");
    char enc[4200], bpe[4200];
    snprintf(enc, sizeof enc, "%s/encoder.json", g);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", g);
    tokenizer *t = tok_load_roberta(enc, bpe);
    CHECK_MSG(t != NULL, "%s", ls_error());
    if (!t) return;
    CHECK_INT(tok_type(t), TOK_ROBERTA);
    CHECK_INT(tok_vocab_size(t), 50262);
    CHECK_INT(tok_bos(t), 50257);
    CHECK_INT(tok_eos(t), 50258);
    CHECK_INT(tok_unk(t), 50259);
    CHECK_INT(tok_pad(t), 50260);
    CHECK_MSG(!strcmp(tok_piece(t, 50261), "<mask>"), "piece 50261 is \"%s\"", tok_piece(t, 50261));
    int n = check_reference_file(t, "data/text/roberta_reference.jsonl");
    CHECK_MSG(n == 21, "expected the 21 reference cases, found %d", n);
    tok_free(t);
}

// vocab.json + merges.txt (HF's names) with a config saying roberta.
static void test_roberta_directory_is_recognised_by_its_config(void) {
    const char *g = ls_test_asset("tokenizers/gpt2");
    if (!g) SKIP("tokenizers/gpt2 absent");
    char src[4200], dst[4200];
    const char *dir = ls_test_tmpdir("roberta_dir");
    const char *pairs[2][2] = {{"encoder.json", "vocab.json"}, {"vocab.bpe", "merges.txt"}};
    for (int k = 0; k < 2; k++) {
        snprintf(src, sizeof src, "%s/%s", g, pairs[k][0]);
        snprintf(dst, sizeof dst, "%s/%s", dir, pairs[k][1]);
        CHECK(symlink(src, dst) == 0);
    }
    tokenizer *t = tok_load_path(dir, 0);
    CHECK_MSG(t && tok_type(t) == TOK_GPT2, "without a config: GPT-2 expected (%s)", t ? "other kind" : ls_error());
    tok_free(t);
    write_file(dir, "config.json", "{\"model_type\": \"roberta\"}", 0);
    t = tok_load_path(dir, 0);
    CHECK_MSG(t && tok_type(t) == TOK_ROBERTA, "model_type roberta: RoBERTa expected (%s)", t ? "other kind" : ls_error());
    tok_free(t);
    write_file(dir, "config.json", "{\"model_type\": 7}", 0);
    CHECK(tok_load_path(dir, 0) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "config.json: key \"model_type\": expected a string");
}

static const ls_test tests[] = {
    LS_TEST(test_wordpiece_matches_hf_reference_cases),
    LS_TEST(test_wordpiece_matches_hf_on_sst2_dev),
    LS_TEST(test_wordpiece_hand_derived_encodings),
    LS_TEST(test_wordpiece_pairs_truncation_and_padding),
    LS_TEST(test_wordpiece_bad_vocab_and_config_name_file_and_line),
    LS_TEST(test_wordpiece_found_beside_the_model),
    LS_TEST(test_roberta_matches_hf_reference_cases),
    LS_TEST(test_roberta_directory_is_recognised_by_its_config),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
