// Tests for src/text/tokenizer: llama2.c, GPT-2 and byte tokenizers.
//
// Expected ids come from the real assets' own records (GPT-2 reference.jsonl
// made by the gpt-3-encoder package), from derivations by hand from the
// vocabularies (written next to each check), and from a literal transcription
// of run.c's O(n^2) encode with a linear-search vocabulary, independent of
// the heap and bsearch in src/text.
#include <cjson/cJSON.h>
#include <stdint.h>
#include <time.h>

#include "base/util.h"
#include "harness.h"
#include "text/tokenizer.h"

static tokenizer *load_stories_tok(void) {
    const char *p = ls_test_asset("models/stories260K/tok512.bin");
    if (!p) return NULL;
    tokenizer *t = tok_load_llama2c(p, 512);
    if (!t) fprintf(stderr, "tok_load_llama2c: %s\n", ls_error());
    return t;
}

static tokenizer *load_gpt2_tok(void) {
    char enc[4096];
    const char *p = ls_test_asset("tokenizers/gpt2/encoder.json");
    if (!p) return NULL;
    snprintf(enc, sizeof enc, "%s", p);
    const char *bpe = ls_test_asset("tokenizers/gpt2/vocab.bpe");
    if (!bpe) return NULL;
    tokenizer *t = tok_load_gpt2(enc, bpe);
    if (!t) fprintf(stderr, "tok_load_gpt2: %s\n", ls_error());
    return t;
}

static void print_ids(const char *what, const int *ids, int n) {
    fprintf(stderr, "  %s (%d):", what, n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

static int ids_equal(const int *a, int na, const int *b, int nb) {
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

#define CHECK_IDS(got, ngot, want, nwant, text) \
    do { if (!ids_equal(got, ngot, want, nwant)) { \
        CHECK_MSG(0, "encoding of \"%s\" differs", text); \
        print_ids("got", got, ngot); print_ids("want", want, nwant); } } while (0)

// ----------------------------------------------------------------------------
// run.c's encode, transcribed (bos, dummy prefix, characters, O(n^2) merges),
// looking pieces up by a linear scan of tok_piece() for the lowest id.

static int linear_lookup(const tokenizer *t, const char *s) {
    for (int i = 0; i < tok_vocab_size(t); i++)
        if (strcmp(tok_piece(t, i), s) == 0) return i;
    return -1;
}

static float piece_score(const char *path, int id) {
    // scores are not exposed by the interface: read them from the file itself
    static float scores[512];
    static int loaded = 0;
    if (!loaded) {
        FILE *f = fopen(path, "rb");
        int32_t mtl, len;
        if (fread(&mtl, 4, 1, f) != 1) return 0;
        for (int i = 0; i < 512; i++) {
            if (fread(&scores[i], 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1) break;
            fseek(f, len, SEEK_CUR);
        }
        fclose(f);
        loaded = 1;
    }
    return scores[id];
}

static int *runc_encode(const tokenizer *t, const char *path, const char *text, int bos, int eos, int *n_tokens) {
    int *tokens = malloc((strlen(text) + 3) * sizeof(int));
    char str_buffer[64];
    char merged[64];
    size_t str_len = 0;
    *n_tokens = 0;
    if (bos) tokens[(*n_tokens)++] = 1;
    if (text[0] != '\0') tokens[(*n_tokens)++] = linear_lookup(t, " ");
    for (const char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) str_len = 0;
        str_buffer[str_len++] = *c;
        str_buffer[str_len] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4) continue;
        int id = linear_lookup(t, str_buffer);
        if (id != -1) tokens[(*n_tokens)++] = id;
        else
            for (size_t i = 0; i < str_len; i++) tokens[(*n_tokens)++] = (unsigned char)str_buffer[i] + 3;
        str_len = 0;
    }
    while (1) {
        float best_score = -1e10;
        int best_id = -1, best_idx = -1;
        for (int i = 0; i < (*n_tokens - 1); i++) {
            snprintf(merged, sizeof merged, "%s%s", tok_piece(t, tokens[i]), tok_piece(t, tokens[i + 1]));
            int id = linear_lookup(t, merged);
            if (id != -1 && piece_score(path, id) > best_score) {
                best_score = piece_score(path, id);
                best_id = id;
                best_idx = i;
            }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (int i = best_idx + 1; i < (*n_tokens - 1); i++) tokens[i] = tokens[i + 1];
        (*n_tokens)--;
    }
    if (eos) tokens[(*n_tokens)++] = 2;
    return tokens;
}

// ----------------------------------------------------------------------------
// llama2.c tokenizer

static void test_llama2c_special_ids_and_vocab(void) {
    tokenizer *t = load_stories_tok();
    if (!t) SKIP("models/stories260K/tok512.bin absent");
    CHECK_INT(tok_type(t), TOK_LLAMA2C);
    CHECK_INT(tok_vocab_size(t), 512);
    CHECK_INT(tok_bos(t), 1);
    CHECK_INT(tok_eos(t), 2);
    // MANIFEST: ids 3..258 are <0x00>..<0xFF>.
    CHECK(strcmp(tok_piece(t, 3), "<0x00>") == 0);
    CHECK(strcmp(tok_piece(t, 258), "<0xFF>") == 0);
    int n;
    int *ids = tok_encode(t, "", 1, 1, &n);   // empty text: no dummy prefix
    int want[] = {1, 2};
    CHECK_IDS(ids, n, want, 2, "");
    free(ids);
    tok_free(t);
}

static void test_llama2c_hand_derived_encodings(void) {
    tokenizer *t = load_stories_tok();
    if (!t) SKIP("models/stories260K/tok512.bin absent");
    int n, *ids;
    // "a": dummy " " (410) + "a" (412); " a" is piece 261 (score -2) -> [261].
    ids = tok_encode(t, "a", 0, 0, &n);
    int want_a[] = {261};
    CHECK_IDS(ids, n, want_a, 1, "a");
    free(ids);
    // "the": " "(410) t(413) h(415) e(411); best " t" (259, score -0) ->
    // " t" h e; best "he" (260, -1) over " th" (308, -49) -> " t" "he";
    // " the" is 265 -> [265]. With BOS and EOS around it.
    ids = tok_encode(t, "the", 1, 1, &n);
    int want_the[] = {1, 265, 2};
    CHECK_IDS(ids, n, want_the, 3, "the");
    free(ids);
    // An emoji (F0 9F 98 80) is no piece: dummy " " then byte fallback
    // b + 3; " <0xF0>" is no piece, so nothing merges.
    ids = tok_encode(t, "\xF0\x9F\x98\x80", 0, 0, &n);
    int want_emoji[] = {410, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3};
    CHECK_IDS(ids, n, want_emoji, 5, "emoji");
    free(ids);
    // Continuation: no dummy prefix, so "the" alone does not become " the".
    ids = tok_encode_continuation(t, " the", &n);
    CHECK_IDS(ids, n, want_the + 1, 1, " the (continuation)");
    free(ids);
    tok_free(t);
}

static void test_llama2c_matches_run_c_transcription(void) {
    tokenizer *t = load_stories_tok();
    if (!t) SKIP("models/stories260K/tok512.bin absent");
    char path[4096];
    snprintf(path, sizeof path, "%s", ls_test_asset("models/stories260K/tok512.bin"));
    const char *texts[] = {
        "Once upon a time", "Lily and Ben went to the park", "The little dog",
        "Once upon a time, there was a little girl named Lily. She loved to play outside.\n\"Lily, let's go!\"",
        "  two leading spaces", "trailing  ", "tabs\tand\nnewlines\n\nend",
        "Ünïcödé façade naïve café — “quotes” 漢字 😀", "aaaaaaaaaaaaaaaaaaaaaaaa", "the the the the",
        "name : Alimentum | area : city centre | family friendly : no",
        "x", " ", "\xff\xfe bad utf8 \xc3", "12345 + 678 = 13023",
        // tied candidates ("ll", "oo", "pp" twice in a row): run.c takes the leftmost
        "xlllx zoooz qpppq", "llll oooooo",
    };
    int checked = 0;
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        for (int bos = 0; bos <= 1; bos++) {
            int n, m;
            int *got = tok_encode(t, texts[k], bos, !bos, &n);
            int *want = runc_encode(t, path, texts[k], bos, !bos, &m);
            CHECK_IDS(got, n, want, m, texts[k]);
            free(got);
            free(want);
            checked++;
        }
    }
    // And the first lines of the E2E data when present (longer, varied text).
    const char *e2e = ls_test_asset("data/e2e/valid.txt");
    if (e2e) {
        size_t size;
        char *data = ls_read_file(e2e, &size);
        char *line = data;
        for (int k = 0; k < 40 && line && *line; k++) {
            char *end = strchr(line, '\n');
            if (end) *end = 0;
            int n, m;
            int *got = tok_encode(t, line, 1, 0, &n);
            int *want = runc_encode(t, path, line, 1, 0, &m);
            CHECK_IDS(got, n, want, m, line);
            free(got);
            free(want);
            checked++;
            line = end ? end + 1 : NULL;
        }
        free(data);
    }
    fprintf(stderr, "compared %d encodings with the run.c transcription\n", checked);
    tok_free(t);
}

static void test_llama2c_reference_prompts_decode_to_themselves(void) {
    tokenizer *t = load_stories_tok();
    const char *ref = ls_test_asset("models/stories260K/reference_greedy.tsv");
    if (!t || !ref) { tok_free(t); SKIP("stories260K tokenizer or reference_greedy.tsv absent"); }
    size_t size;
    char *data = ls_read_file(ref, &size);
    CHECK(data != NULL);
    int rows = 0;
    for (char *line = data; line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *tab = strchr(line, '\t');
        CHECK(tab != NULL);
        if (!tab) break;
        *tab = 0;
        // The prompt after BOS decodes back to itself (llama2.c prints it so).
        int n;
        int *ids = tok_encode(t, line, 1, 0, &n);
        CHECK_INT(ids[0], 1);
        char *back = tok_decode(t, ids[0], ids + 1, n - 1, NULL);
        CHECK_MSG(strcmp(back, line) == 0, "prompt \"%s\" decoded to \"%s\"", line, back);
        free(back);
        free(ids);
        // So does the whole greedy text (newlines, quotes, punctuation).
        cJSON *js = cJSON_Parse(tab + 1);
        CHECK(cJSON_IsString(js));
        if (cJSON_IsString(js)) {
            ids = tok_encode(t, js->valuestring, 1, 0, &n);
            back = tok_decode(t, 1, ids + 1, n - 1, NULL);
            CHECK_MSG(strcmp(back, js->valuestring) == 0, "greedy text decoded to \"%s\"", back);
            free(back);
            free(ids);
        }
        cJSON_Delete(js);
        rows++;
        line = end ? end + 1 : NULL;
    }
    CHECK_INT(rows, 3);
    free(data);
    tok_free(t);
}

static void test_llama2c_decode_strips_space_after_bos_and_maps_bytes(void) {
    tokenizer *t = load_stories_tok();
    if (!t) SKIP("models/stories260K/tok512.bin absent");
    size_t len;
    const char *p = tok_decode_piece(t, 1, 265, &len);     // " the" after BOS
    CHECK(len == 3 && memcmp(p, "the", 3) == 0);
    p = tok_decode_piece(t, 261, 265, &len);               // elsewhere it keeps its space
    CHECK(len == 4 && memcmp(p, " the", 4) == 0);
    p = tok_decode_piece(t, 5, 3 + 0x41, &len);            // <0x41> -> "A"
    CHECK(len == 1 && p[0] == 'A');
    p = tok_decode_piece(t, 5, 3, &len);                   // <0x00> -> one NUL byte
    CHECK(len == 1 && p[0] == 0);
    // Byte fallback round-trips a character that is not in the vocabulary.
    const char *text = "a \xF0\x9F\x98\x80 b";
    int n;
    int *ids = tok_encode(t, text, 1, 0, &n);
    char *back = tok_decode(t, 1, ids + 1, n - 1, NULL);
    CHECK_MSG(strcmp(back, text) == 0, "decoded \"%s\"", back);
    free(back);
    free(ids);
    tok_free(t);
}

static void write_prefix(const char *src, const char *dst, size_t n) {
    size_t size;
    char *data = ls_read_file(src, &size);
    if (n > size) n = size;
    ls_write_file_atomic(dst, data, n);
    free(data);
}

static void test_llama2c_truncated_file_error_names_file(void) {
    const char *src0 = ls_test_asset("models/stories260K/tok512.bin");
    if (!src0) SKIP("models/stories260K/tok512.bin absent");
    char src[4096], path[4096];
    snprintf(src, sizeof src, "%s", src0);
    const char *dir = ls_test_tmpdir("tok_truncated");
    // Cut inside the 100th token's record, and inside the header.
    snprintf(path, sizeof path, "%s/cut.bin", dir);
    write_prefix(src, path, 1000);
    tokenizer *t = tok_load_llama2c(path, 512);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), path);
    CHECK_STR_CONTAINS(ls_error(), "truncated");
    tok_free(t);
    write_prefix(src, path, 2);
    t = tok_load_llama2c(path, 0);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), path);
    CHECK_STR_CONTAINS(ls_error(), "max_token_length");
    // The whole file, but the model expects a bigger vocabulary.
    t = tok_load_llama2c(src, 600);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), "token 512");
    // ... or a smaller one: extra bytes after the last token.
    t = tok_load_llama2c(src, 300);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), "expected 300 tokens");
    // A length field that exceeds max_token_length (7): token 0 at offset 4.
    size_t size;
    char *data = ls_read_file(src, &size);
    int32_t bad = 1000;
    memcpy(data + 8, &bad, 4);
    ls_write_file_atomic(path, data, size);
    free(data);
    t = tok_load_llama2c(path, 512);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), "token 0: length at offset 8");
    CHECK_STR_CONTAINS(ls_error(), "found 1000");
}

// ----------------------------------------------------------------------------
// GPT-2 tokenizer

static void test_gpt2_reference_jsonl_ids_match(void) {
    const char *ref0 = ls_test_asset("tokenizers/gpt2/reference.jsonl");
    if (!ref0) SKIP("tokenizers/gpt2/reference.jsonl absent");
    char ref[4096];
    snprintf(ref, sizeof ref, "%s", ref0);
    clock_t c0 = clock();
    tokenizer *t = load_gpt2_tok();
    double load_s = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (!t) SKIP("GPT-2 encoder.json / vocab.bpe absent or unreadable");
    fprintf(stderr, "GPT-2 tokenizer loaded in %.3f s\n", load_s);
    CHECK(load_s < 2.0);
    CHECK_INT(tok_vocab_size(t), 50257);
    CHECK_INT(tok_eos(t), 50256);
    CHECK_INT(tok_bos(t), 50256);
    size_t size;
    char *data = ls_read_file(ref, &size);
    int lines = 0;
    for (char *line = data; line && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        cJSON *js = cJSON_Parse(line);
        const cJSON *text = cJSON_GetObjectItem(js, "text"), *ids = cJSON_GetObjectItem(js, "ids");
        CHECK(cJSON_IsString(text) && cJSON_IsArray(ids));
        if (cJSON_IsString(text) && cJSON_IsArray(ids)) {
            int m = cJSON_GetArraySize(ids), n;
            int *want = malloc((size_t)m * sizeof(int) + 1);
            for (int i = 0; i < m; i++) want[i] = cJSON_GetArrayItem(ids, i)->valueint;
            int *got = tok_encode(t, text->valuestring, 0, 0, &n);
            CHECK_IDS(got, n, want, m, text->valuestring);
            char *back = tok_decode(t, -1, got, n, NULL);
            CHECK_MSG(strcmp(back, text->valuestring) == 0, "decoded \"%s\"", back);
            free(back);
            free(got);
            free(want);
            lines++;
        }
        cJSON_Delete(js);
        line = end ? end + 1 : NULL;
    }
    CHECK_INT(lines, 12);
    free(data);
    tok_free(t);
}

static void test_gpt2_pretokenization_hand_derived(void) {
    tokenizer *t = load_gpt2_tok();
    if (!t) SKIP("GPT-2 encoder.json / vocab.bpe absent");
    int n, *ids;
    // "Hello"=15496 and " world"=995 (reference.jsonl line 1); a run of 3
    // spaces before a word splits as "  " + " world", and "  " is two 220s
    // (reference line 4 ends with a two-space chunk encoded 220 220).
    ids = tok_encode(t, "Hello   world", 0, 0, &n);
    int want1[] = {15496, 220, 220, 995};
    CHECK_IDS(ids, n, want1, 4, "Hello   world");
    free(ids);
    // Contractions are case-sensitive: "'M" is "'" (6) then "M" (44) (ASCII
    // printables have id ord(c) - 33 in encoder.json); "I" = 40.
    ids = tok_encode(t, "I'M", 0, 0, &n);
    int want2[] = {40, 6, 44};
    CHECK_IDS(ids, n, want2, 3, "I'M");
    free(ids);
    // A newline before a word is its own chunk (198), as in reference line 9.
    ids = tok_encode(t, "Hello\n\nworld", 0, 0, &n);
    int n_world;
    int *world = tok_encode(t, "world", 0, 0, &n_world);
    CHECK(n == 3 + n_world && ids[0] == 15496 && ids[1] == 198 && ids[2] == 198 && ids_equal(ids + 3, n - 3, world, n_world));
    free(world);
    free(ids);
    // A whitespace run at the end of the text stays whole (\s+(?!\S)), one
    // inside gives its last character to the next chunk: "\n\n" at the end is
    // the single token "ĊĊ" (a vocabulary token, so the merge "Ċ Ċ" exists),
    // before a word it is 198 198 (reference line 9). "end" = 437 (line 9).
    int nn = 0;
    {
        size_t size;
        char *json = ls_read_file(ls_test_asset("tokenizers/gpt2/encoder.json"), &size);
        cJSON *enc = cJSON_Parse(json);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(enc, "\xc4\x8a\xc4\x8a");   // "ĊĊ"
        CHECK(cJSON_IsNumber(v));
        nn = cJSON_IsNumber(v) ? v->valueint : -1;
        cJSON_Delete(enc);
        free(json);
    }
    ids = tok_encode(t, "end\n\n", 0, 0, &n);
    int want4[] = {437, nn};
    CHECK_IDS(ids, n, want4, 2, "end\\n\\n");
    free(ids);
    ids = tok_encode(t, "end\n\nend", 0, 0, &n);
    int want5[] = {437, 198, 198, 437};
    CHECK_IDS(ids, n, want5, 4, "end\\n\\nend");
    free(ids);
    // bos / eos add <|endoftext|> around the text.
    ids = tok_encode(t, "Hello world", 1, 1, &n);
    int want3[] = {50256, 15496, 995, 50256};
    CHECK_IDS(ids, n, want3, 4, "Hello world (bos, eos)");
    free(ids);
    tok_free(t);
}

static void test_gpt2_round_trip_tricky_texts(void) {
    tokenizer *t = load_gpt2_tok();
    if (!t) SKIP("GPT-2 encoder.json / vocab.bpe absent");
    const char *texts[] = {
        "", " ", "   ", "\n", "\t \n  \r\n", "a\u00a0b\u3000c", "don't we'll they've I'd you're 'tis",
        "3.14159e-10 1,000,000 ٣٤٥ Ⅻ ½", "Привет, мир! Γειά σου κόσμε", "日本語のテキスト、句読点。",
        "emoji 😀👍🏽 zwj 👩‍👩‍👧", "combining e\u0301 a\u0308", "<|endoftext|> inside text",
        "\xff\xfe invalid \xc3 utf8 \xed\xa0\x80", "trailing spaces   ", "x  y   z    w",
    };
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int n;
        int *ids = tok_encode(t, texts[k], 0, 0, &n);
        size_t len;
        char *back = tok_decode(t, -1, ids, n, &len);
        CHECK_MSG(len == strlen(texts[k]) && strcmp(back, texts[k]) == 0, "\"%s\" decoded to \"%s\"", texts[k], back);
        for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < 50256);
        free(back);
        free(ids);
    }
    tok_free(t);
}

static void test_gpt2_malformed_files_name_file_and_line(void) {
    const char *enc0 = ls_test_asset("tokenizers/gpt2/encoder.json");
    if (!enc0) SKIP("tokenizers/gpt2/encoder.json absent");
    char enc[4096], bpe[4096], path[4096], path2[4096];
    snprintf(enc, sizeof enc, "%s", enc0);
    const char *bpe0 = ls_test_asset("tokenizers/gpt2/vocab.bpe");
    if (!bpe0) SKIP("tokenizers/gpt2/vocab.bpe absent");
    snprintf(bpe, sizeof bpe, "%s", bpe0);
    const char *dir = ls_test_tmpdir("gpt2_bad");
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    write_prefix(enc, path, 5000);
    tokenizer *t = tok_load_gpt2(path, bpe);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), path);
    CHECK_STR_CONTAINS(ls_error(), "invalid JSON");
    const char *bad_id = "{\"a\": 0, \"b\": \"one\"}";
    ls_write_file_atomic(path, bad_id, strlen(bad_id));
    t = tok_load_gpt2(path, bpe);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), "key \"b\": expected an integer id");
    // A merges file whose third line has no space.
    snprintf(path2, sizeof path2, "%s/vocab.bpe", dir);
    const char *merges = "#version: 0.2\n\xc4\xa0 t\nbroken\n";
    ls_write_file_atomic(path2, merges, strlen(merges));
    t = tok_load_gpt2(enc, path2);
    CHECK(t == NULL);
    char want[4200];
    snprintf(want, sizeof want, "%s:3: expected \"left right\"", path2);
    CHECK_STR_CONTAINS(ls_error(), want);
    // A merge of tokens that are not in the vocabulary.
    const char *unknown = "#version: 0.2\nqqqqqq zzzzzzz\n";
    ls_write_file_atomic(path2, unknown, strlen(unknown));
    t = tok_load_gpt2(enc, path2);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(ls_error(), ":2: merge \"qqqqqq zzzzzzz\"");
}

// ----------------------------------------------------------------------------
// byte tokenizer

static void test_byte_tokenizer_round_trips_with_bos_eos(void) {
    tokenizer *t = tok_byte(1);
    CHECK_INT(tok_vocab_size(t), 258);
    CHECK_INT(tok_bos(t), 256);
    CHECK_INT(tok_eos(t), 257);
    const char *text = "h\xc3\xa9!";
    int n;
    int *ids = tok_encode(t, text, 1, 1, &n);
    int want[] = {256, 'h', 0xC3, 0xA9, '!', 257};
    CHECK_IDS(ids, n, want, 6, text);
    char *back = tok_decode(t, -1, ids, n, NULL);
    CHECK(strcmp(back, text) == 0);
    free(back);
    free(ids);
    tok_free(t);
    t = tok_byte(0);
    CHECK_INT(tok_vocab_size(t), 256);
    CHECK_INT(tok_bos(t), -1);
    ids = tok_encode(t, "ab", 1, 1, &n);   // no BOS/EOS to add
    int want2[] = {'a', 'b'};
    CHECK_IDS(ids, n, want2, 2, "ab");
    free(ids);
    tok_free(t);
}

static const ls_test tests[] = {
    LS_TEST(test_llama2c_special_ids_and_vocab),
    LS_TEST(test_llama2c_hand_derived_encodings),
    LS_TEST(test_llama2c_matches_run_c_transcription),
    LS_TEST(test_llama2c_reference_prompts_decode_to_themselves),
    LS_TEST(test_llama2c_decode_strips_space_after_bos_and_maps_bytes),
    LS_TEST(test_llama2c_truncated_file_error_names_file),
    LS_TEST(test_gpt2_reference_jsonl_ids_match),
    LS_TEST(test_gpt2_pretokenization_hand_derived),
    LS_TEST(test_gpt2_round_trip_tricky_texts),
    LS_TEST(test_gpt2_malformed_files_name_file_and_line),
    LS_TEST(test_byte_tokenizer_round_trips_with_bos_eos),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
