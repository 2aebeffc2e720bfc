// GGUF reader and dequantization: references made by gguf-py
// (tests/reference/make_gguf_reference.py) and malformed files built here.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "harness.h"
#include "io/gguf.h"
#include "io/gguf_model.h"
#include "io/quant.h"

// ----------------------------------------------------------------------------
// a small GGUF writer for hand-made files

typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf;

static void put(buf *w, const void *p, size_t k) {
    if (w->n + k > w->cap) {
        w->cap = (w->n + k) * 2 + 64;
        w->b = realloc(w->b, w->cap);
    }
    memcpy(w->b + w->n, p, k);
    w->n += k;
}
static void u32(buf *w, uint32_t v) { put(w, &v, 4); }
static void u64(buf *w, uint64_t v) { put(w, &v, 8); }
static void str(buf *w, const char *s) {
    u64(w, strlen(s));
    put(w, s, strlen(s));
}
static void pad_to(buf *w, size_t align) {
    while (w->n % align) put(w, "", 1);
}

// Header of a file with n_tensors tensors and n_kv keys.
static void header(buf *w, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(w, "GGUF", 4);
    u32(w, version);
    u64(w, n_tensors);
    u64(w, n_kv);
}

// A 2-D tensor info (rows x cols) of a type at an offset.
static void tensor_info(buf *w, const char *name, uint64_t cols, uint64_t rows, uint32_t type, uint64_t offset) {
    str(w, name);
    u32(w, 2);
    u64(w, cols);
    u64(w, rows);
    u32(w, type);
    u64(w, offset);
}

// A valid file: keys of every scalar type, a string, arrays of int32 / strings /
// arrays, and two F32 tensors (2 x 32 and 1 x 32).
static buf valid_file(void) {
    buf w = {0};
    header(&w, 3, 2, 16);
    const char *keys[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "u64", "i64", "f64"};
    const uint32_t types[] = {GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32,
                              GGUF_FLOAT32, GGUF_BOOL, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64};
    const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    for (int i = 0; i < 11; i++) {
        str(&w, keys[i]);
        u32(&w, types[i]);
        uint8_t v[8] = {0};
        if (types[i] == GGUF_FLOAT32) { float x = 1.5f; memcpy(v, &x, 4); }
        else if (types[i] == GGUF_FLOAT64) { double x = -2.25; memcpy(v, &x, 8); }
        else if (types[i] == GGUF_BOOL) v[0] = 1;
        else memset(v, types[i] == GGUF_INT8 || types[i] == GGUF_INT16 || types[i] == GGUF_INT32 ||
                               types[i] == GGUF_INT64 ? 0xff : 0x07, sizes[i]); // -1 or 0x0707..
        put(&w, v, sizes[i]);
    }
    str(&w, "general.name"); u32(&w, GGUF_STRING); str(&w, "tiny");
    str(&w, "ints"); u32(&w, GGUF_ARRAY); u32(&w, GGUF_INT32); u64(&w, 3);
    for (int32_t i = -1; i < 2; i++) put(&w, &i, 4);
    str(&w, "strs"); u32(&w, GGUF_ARRAY); u32(&w, GGUF_STRING); u64(&w, 2); str(&w, "a"); str(&w, "bc");
    str(&w, "nested"); u32(&w, GGUF_ARRAY); u32(&w, GGUF_ARRAY); u64(&w, 1);
    u32(&w, GGUF_UINT8); u64(&w, 2); put(&w, "\1\2", 2);
    str(&w, "general.alignment"); u32(&w, GGUF_UINT32); u32(&w, 64);
    tensor_info(&w, "w", 32, 2, GGML_F32, 0);
    tensor_info(&w, "b", 32, 1, GGML_F32, 256);
    pad_to(&w, 64);
    for (int i = 0; i < 96; i++) { float x = (float)i; put(&w, &x, 4); }
    return w;
}

static void test_gguf_reads_metadata_of_every_type(void) {
    buf w = valid_file();
    gguf_file f;
    CHECK_MSG(gguf_open_memory(&f, w.b, w.n, "mem.gguf") == 0, "%s", ls_error());
    int64_t v;
    double x;
    int b;
    gguf_str s;
    const gguf_kv *kv;
    CHECK(gguf_get_int(&f, "u8", 0, 255, &v) == 0 && v == 7);
    CHECK(gguf_get_int(&f, "i8", -5, 5, &v) == 0 && v == -1);
    CHECK(gguf_get_int(&f, "u16", 0, 1 << 20, &v) == 0 && v == 0x0707);
    CHECK(gguf_get_int(&f, "i32", -5, 5, &v) == 0 && v == -1);
    CHECK(gguf_get_int(&f, "u64", 0, INT64_MAX, &v) == 0 && v == 0x0707070707070707LL);
    CHECK(gguf_get_int(&f, "i64", -1, -1, &v) == 0);
    CHECK(gguf_get_float(&f, "f32", 0, 2, &x) == 0 && x == 1.5);
    CHECK(gguf_get_float(&f, "f64", -3, 0, &x) == 0 && x == -2.25);
    CHECK(gguf_get_bool(&f, "bool", &b) == 0 && b == 1);
    CHECK(gguf_get_string(&f, "general.name", &s) == 0 && gguf_str_eq(s, "tiny"));
    CHECK(gguf_get_array(&f, "ints", GGUF_INT64, &kv) == 0 && kv->n == 3 && gguf_array_int(kv, 0) == -1 &&
          gguf_array_int(kv, 2) == 1);
    CHECK(gguf_get_array(&f, "strs", GGUF_STRING, &kv) == 0 && kv->n == 2 && gguf_str_eq(kv->strs[1], "bc"));
    CHECK(gguf_find(&f, "nested") && gguf_find(&f, "nested")->elem_type == GGUF_ARRAY);
    CHECK_INT(f.alignment, 64);
    // wrong types and ranges name the key and what was expected
    CHECK(gguf_get_int(&f, "u16", 0, 100, &v) == -1);
    CHECK_STR_CONTAINS(ls_error(), "mem.gguf: key 'u16': expected an integer in [0, 100], found 1799");
    CHECK(gguf_get_string(&f, "u8", &s) == -1);
    CHECK_STR_CONTAINS(ls_error(), "key 'u8': expected a string, found a uint8");
    CHECK(gguf_get_int(&f, "llama.block_count", 1, 10, &v) == -1);
    CHECK_STR_CONTAINS(ls_error(), "missing key 'llama.block_count'");
    const gguf_tensor *t = gguf_find_tensor(&f, "b");
    CHECK(t && t->ne[0] == 32 && t->ne[1] == 1 && t->nbytes == 128);
    float *y = t ? gguf_load_float(&f, t) : NULL;
    CHECK(y && y[0] == 64.0f && y[31] == 95.0f);
    free(y);
    gguf_close(&f);
    free(w.b);
}

// Every type against gguf-py's dequantization of the same bytes: bit-identical.
static void test_gguf_dequantizes_every_type_as_gguf_py(void) {
    const char *types[] = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                           "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};
    for (int k = 0; k < LS_COUNT(types); k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "data/gguf/quant/%s.gguf", types[k]);
        gguf_file f;
        if (gguf_open(&f, ls_test_source(rel))) {
            CHECK_MSG(0, "%s", ls_error());
            continue;
        }
        const gguf_tensor *w = gguf_find_tensor(&f, "w"), *e = gguf_find_tensor(&f, "expected");
        CHECK_MSG(w && e && !strcmp(quant_type_name(w->type), types[k]) && w->numel == e->numel, "%s", types[k]);
        float *got = w ? gguf_load_float(&f, w) : NULL, *want = e ? gguf_load_float(&f, e) : NULL;
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; got && want && i < w->numel; i++)
            if (memcmp(&got[i], &want[i], 4)) {
                bad++;
                if (first < 0) first = i;
            }
        CHECK_MSG(got && want && bad == 0, "%s: %lld of %lld values differ, first at %lld: %.9g vs gguf-py %.9g",
                  types[k], (long long)bad, (long long)(w ? w->numel : 0), (long long)first,
                  first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
        free(got);
        free(want);
        gguf_close(&f);
    }
}

// ----------------------------------------------------------------------------
// malformed files: each refused with a one-line message naming what was wrong

static void expect_refused(const buf *w, const char *needle) {
    gguf_file f;
    int rc = gguf_open_memory(&f, w->b, w->n, "bad.gguf");
    CHECK_MSG(rc == -1, "accepted a file that should fail with \"%s\"", needle);
    if (rc == 0) gguf_close(&f);
    else {
        CHECK_STR_CONTAINS(ls_error(), "bad.gguf: ");
        CHECK_STR_CONTAINS(ls_error(), needle);
        CHECK(strchr(ls_error(), '\n') == NULL);
    }
}

static void test_gguf_rejects_truncation_at_every_byte(void) {
    buf w = valid_file();
    for (size_t n = 0; n < w.n; n++) { // the last tensor ends at the end of the file
        gguf_file f;
        int rc = gguf_open_memory(&f, w.b, n, "cut.gguf");
        CHECK_MSG(rc == -1, "accepted a file cut at byte %zu of %zu", n, w.n);
        if (rc == 0) gguf_close(&f);
        else CHECK_MSG(strstr(ls_error(), "cut.gguf: ") == ls_error(), "cut at %zu: %s", n, ls_error());
    }
    free(w.b);
}

static void test_gguf_rejects_lying_counts_and_sizes(void) {
    buf w = {0};
    header(&w, 3, 0, 1u << 20);
    expect_refused(&w, "metadata count: expected at most 65536, found 1048576");
    w.n = 0;
    header(&w, 3, 1000, 0);
    expect_refused(&w, "tensor count 1000: expected at most 0");
    w.n = 0;
    header(&w, 3, 0, 1);
    u64(&w, 1ull << 40); // a key of 2^40 bytes
    expect_refused(&w, "metadata key: expected a length of at most 1024 bytes");
    w.n = 0;
    header(&w, 3, 0, 1);
    str(&w, "k"); u32(&w, GGUF_STRING); u64(&w, 1ull << 62);
    expect_refused(&w, "string value: expected a length of at most 16777216 bytes");
    w.n = 0;
    header(&w, 3, 0, 1);
    str(&w, "k"); u32(&w, GGUF_ARRAY); u32(&w, GGUF_STRING); u64(&w, 1ull << 27);
    expect_refused(&w, "key 'k': array of 134217728 strings runs past the end of the file");
    w.n = 0;
    header(&w, 3, 0, 1);
    str(&w, "k"); u32(&w, GGUF_ARRAY); u32(&w, GGUF_UINT64); u64(&w, 1ull << 60);
    expect_refused(&w, "key 'k': expected at most 268435456 array elements");
    w.n = 0;
    header(&w, 3, 0, 1);
    str(&w, "k"); u32(&w, GGUF_ARRAY); u32(&w, GGUF_UINT64); u64(&w, 1000);
    expect_refused(&w, "key 'k': array of 1000 uint64 elements runs past the end of the file");
    free(w.b);
}

static void test_gguf_rejects_bad_types_dims_and_offsets(void) {
    buf w = {0};
    put(&w, "GGML", 4); u32(&w, 3); u64(&w, 0); u64(&w, 0);
    expect_refused(&w, "expected the GGUF magic");
    w.n = 0;
    header(&w, 1, 0, 0);
    expect_refused(&w, "version: expected 2 or 3, found 1");
    w.n = 0;
    header(&w, 0x03000000u, 0, 0);
    expect_refused(&w, "big-endian");
    w.n = 0;
    header(&w, 3, 0, 1);
    str(&w, "k"); u32(&w, 13); u32(&w, 0);
    expect_refused(&w, "key 'k': expected a value type 0..12, found 13");
    w.n = 0;
    header(&w, 3, 0, 2);
    str(&w, "k"); u32(&w, GGUF_UINT8); put(&w, "\1", 1);
    str(&w, "k"); u32(&w, GGUF_UINT8); put(&w, "\1", 1);
    expect_refused(&w, "key 'k' appears twice");
    w.n = 0;
    header(&w, 3, 0, 1);
    str(&w, "general.alignment"); u32(&w, GGUF_UINT32); u32(&w, 48);
    expect_refused(&w, "key 'general.alignment': expected a uint32 power of two");
    struct { uint64_t cols, rows; uint32_t type; uint64_t off; const char *msg; } cases[] = {
        {32, 2, 16, 0, "tensor 'w': type 16 (IQ2_XXS): expected one of F32"},
        {32, 2, 99, 0, "tensor 'w': type 99 (unknown)"},
        {33, 2, GGML_Q8_0, 0, "row length 33: expected a multiple of Q8_0's block of 32"},
        {1ull << 32, 1ull << 32, GGML_F32, 0, "dim 1 = 4294967296: expected dims >= 1 whose product is at most 2^40"},
        {0, 2, GGML_F32, 0, "dim 0 = 0"},
        {32, 2, GGML_F32, 8, "offset 8: expected a multiple of the alignment 32"},
        {32, 2, GGML_F32, 1ull << 40, "expected them inside its 256 bytes"},
        {32, 4, GGML_F32, 0, "bytes [0, 512) of the data section: expected them inside its 256 bytes"},
    };
    for (int i = 0; i < LS_COUNT(cases); i++) {
        w.n = 0;
        header(&w, 2, 1, 0);
        tensor_info(&w, "w", cases[i].cols, cases[i].rows, cases[i].type, cases[i].off);
        pad_to(&w, 32);
        for (int k = 0; k < 64; k++) u32(&w, 0);
        expect_refused(&w, cases[i].msg);
    }
    w.n = 0;
    header(&w, 3, 2, 0);
    tensor_info(&w, "w", 32, 1, GGML_F32, 0);
    tensor_info(&w, "v", 32, 1, GGML_F32, 96);
    pad_to(&w, 32);
    for (int k = 0; k < 64; k++) u32(&w, 0);
    expect_refused(&w, "tensor 'v' overlaps tensor 'w'");
    w.n = 0;
    header(&w, 3, 2, 0);
    tensor_info(&w, "w", 32, 1, GGML_F32, 0);
    tensor_info(&w, "w", 32, 1, GGML_F32, 128);
    pad_to(&w, 32);
    for (int k = 0; k < 64; k++) u32(&w, 0);
    expect_refused(&w, "tensor 'w' appears twice");
    free(w.b);
}

static void test_gguf_rejects_non_finite_weights_naming_the_tensor(void) {
    buf w = {0};
    header(&w, 3, 1, 0);
    tensor_info(&w, "blk.0.attn_q.weight", 32, 1, GGML_Q8_0, 0);
    pad_to(&w, 32);
    uint8_t block[34] = {0x00, 0x7c, 1}; // d = +inf (f16 0x7c00)
    put(&w, block, 34);
    gguf_file f;
    CHECK_MSG(gguf_open_memory(&f, w.b, w.n, "inf.gguf") == 0, "%s", ls_error());
    float *x = gguf_load_float(&f, &f.tensors[0]);
    CHECK(x == NULL);
    CHECK_STR_CONTAINS(ls_error(), "inf.gguf: tensor 'blk.0.attn_q.weight' (Q8_0): element 0 is inf");
    free(x);
    gguf_close(&f);
    free(w.b);
}

// ----------------------------------------------------------------------------
// a tiny llama GGUF: dim 8, 2 heads of 4, 1 kv head, hidden 16, 1 layer,
// vocab 32; every value of tensor k is k + its index / 1000 (Wq's rows
// i = h*4 + 2j + p hold row index i in their first value)

typedef struct {
    const char *name;
    uint64_t cols, rows; // rows 0: 1-D
} tiny_tensor;

static const tiny_tensor TINY[] = {
    {"token_embd.weight", 8, 32},     {"blk.0.attn_norm.weight", 8, 0}, {"blk.0.attn_q.weight", 8, 8},
    {"blk.0.attn_k.weight", 8, 4},    {"blk.0.attn_v.weight", 8, 4},    {"blk.0.attn_output.weight", 8, 8},
    {"blk.0.ffn_norm.weight", 8, 0},  {"blk.0.ffn_gate.weight", 8, 16}, {"blk.0.ffn_up.weight", 8, 16},
    {"blk.0.ffn_down.weight", 16, 8}, {"output_norm.weight", 8, 0},
};

static void key_u32(buf *w, const char *k, uint32_t v) { str(w, k); u32(w, GGUF_UINT32); u32(w, v); }
static void key_f32(buf *w, const char *k, float v) { str(w, k); u32(w, GGUF_FLOAT32); put(w, &v, 4); }

// The file without key `omit` (NULL: complete), with tensor `extra` added
// (NULL: none) and tensor `bad_shape`'s rows (1-D: length) doubled.
static buf tiny_llama(const char *omit, const char *extra, const char *bad_shape) {
    const char *keys[] = {"general.architecture", "llama.embedding_length", "llama.feed_forward_length",
                          "llama.block_count", "llama.attention.head_count", "llama.attention.head_count_kv",
                          "llama.context_length", "llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base"};
    int n_keys = 0, n_t = LS_COUNT(TINY) + (extra != NULL);
    for (int i = 0; i < 9; i++) n_keys += !omit || strcmp(omit, keys[i]);
    buf w = {0};
    header(&w, 3, (uint64_t)n_t, (uint64_t)n_keys);
    const uint32_t vals[] = {0, 8, 16, 1, 2, 1, 64};
    for (int i = 0; i < 9; i++) {
        if (omit && !strcmp(omit, keys[i])) continue;
        if (i == 0) { str(&w, keys[0]); u32(&w, GGUF_STRING); str(&w, "llama"); }
        else if (i < 7) key_u32(&w, keys[i], vals[i]);
        else key_f32(&w, keys[i], i == 7 ? 1e-5f : 10000.0f);
    }
    uint64_t off = 0, sizes[16];
    for (int k = 0; k < n_t; k++) {
        tiny_tensor t = k < LS_COUNT(TINY) ? TINY[k] : (tiny_tensor){extra, 8, 0};
        if (bad_shape && !strcmp(t.name, bad_shape)) *(t.rows ? &t.rows : &t.cols) *= 2;
        str(&w, t.name);
        u32(&w, t.rows ? 2 : 1);
        u64(&w, t.cols);
        if (t.rows) u64(&w, t.rows);
        u32(&w, GGML_F32);
        u64(&w, off);
        sizes[k] = t.cols * (t.rows ? t.rows : 1);
        off += (sizes[k] * 4 + 31) / 32 * 32;
    }
    pad_to(&w, 32);
    for (int k = 0; k < n_t; k++) {
        for (uint64_t i = 0; i < sizes[k]; i++) {
            float x = (float)k + (float)(i / 8) / 1000.0f + (float)(i % 8) / 1e5f;
            put(&w, &x, 4);
        }
        pad_to(&w, 32);
    }
    return w;
}

// Writes a buffer to a fresh file and loads it as a checkpoint.
static int load_tiny(buf *w, ls_checkpoint *ck) {
    char path[4300];
    snprintf(path, sizeof path, "%s/tiny.gguf", ls_test_tmpdir("gguf_tiny"));
    CHECK(ls_write_file_atomic(path, w->b, w->n) == 0);
    free(w->b);
    return ckpt_load(ck, path);
}

static void test_gguf_llama_checkpoint_unpermutes_q_and_k_rows(void) {
    buf w = tiny_llama(NULL, NULL, NULL);
    ls_checkpoint ck;
    CHECK_MSG(load_tiny(&w, &ck) == 0, "%s", ls_error());
    if (!ck.tensors) return;
    CHECK_INT(ck.config.dim, 8);
    CHECK_INT(ck.config.n_kv_heads, 1);
    CHECK_INT(ck.config.vocab_size, 32);
    CHECK_INT(ck.config.tied_embeddings, 1);
    CHECK_INT(ck.n_tensors, 11);
    // HF row h*4 + p*2 + j comes from GGUF row h*4 + 2j + p (head size 4: half 2)
    const ls_tensor *q = ckpt_find(&ck, "model.layers.0.self_attn.q_proj.weight");
    const ls_tensor *k = ckpt_find(&ck, "model.layers.0.self_attn.k_proj.weight");
    const int q_rows[8] = {0, 2, 1, 3, 4, 6, 5, 7}, k_rows[4] = {0, 2, 1, 3};
    for (int r = 0; q && r < 8; r++) CHECK_NEAR(q->data[r * 8], 2 + q_rows[r] / 1000.0, 1e-6);
    for (int r = 0; k && r < 4; r++) CHECK_NEAR(k->data[r * 8], 3 + k_rows[r] / 1000.0, 1e-6);
    const ls_tensor *v = ckpt_find(&ck, "model.layers.0.self_attn.v_proj.weight");
    for (int r = 0; v && r < 4; r++) CHECK_NEAR(v->data[r * 8 + 1], 4 + r / 1000.0 + 1e-5, 1e-6);
    ckpt_free(&ck);
}

static void expect_tiny_refused(buf w, const char *needle) {
    ls_checkpoint ck;
    int rc = load_tiny(&w, &ck);
    CHECK_MSG(rc == -1, "accepted a file that should fail with \"%s\"", needle);
    if (rc == 0) ckpt_free(&ck);
    else {
        CHECK_STR_CONTAINS(ls_error(), "tiny.gguf: ");
        CHECK_STR_CONTAINS(ls_error(), needle);
    }
}

static void test_gguf_llama_checkpoint_names_missing_keys_and_tensors(void) {
    const char *required[] = {"general.architecture", "llama.embedding_length", "llama.feed_forward_length",
                              "llama.block_count", "llama.attention.head_count", "llama.context_length",
                              "llama.attention.layer_norm_rms_epsilon"};
    for (int i = 0; i < LS_COUNT(required); i++) {
        char needle[128];
        snprintf(needle, sizeof needle, "missing key '%s'", required[i]);
        expect_tiny_refused(tiny_llama(required[i], NULL, NULL), needle);
    }
    expect_tiny_refused(tiny_llama(NULL, "blk.0.attn_q.bias", NULL), "unknown tensor 'blk.0.attn_q.bias'");
    expect_tiny_refused(tiny_llama(NULL, NULL, "blk.0.ffn_up.weight"),
                        "tensor 'blk.0.ffn_up.weight': expected ne (8, 16) (16 rows of 8), found 2 dims (8, 32)");
    expect_tiny_refused(tiny_llama(NULL, NULL, "output_norm.weight"), "tensor 'output_norm.weight': expected ne (8)");
}

static const ls_test tests[] = {
    LS_TEST(test_gguf_reads_metadata_of_every_type),
    LS_TEST(test_gguf_dequantizes_every_type_as_gguf_py),
    LS_TEST(test_gguf_rejects_truncation_at_every_byte),
    LS_TEST(test_gguf_rejects_lying_counts_and_sizes),
    LS_TEST(test_gguf_rejects_bad_types_dims_and_offsets),
    LS_TEST(test_gguf_rejects_non_finite_weights_naming_the_tensor),
    LS_TEST(test_gguf_llama_checkpoint_unpermutes_q_and_k_rows),
    LS_TEST(test_gguf_llama_checkpoint_names_missing_keys_and_tensors),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
