// Tests for src/io: safetensors reader/writer, half-precision decoding,
// checkpoints (llama2.c .bin, HF), PEFT adapters; each malformed input gives
// a message naming the file and what was wrong.
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "base/util.h"
#include "harness.h"
#include "io/adapter.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rng_float(void) { return (float)rng_u32() / 4294967296.0f * 2.0f - 1.0f; }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    fwrite(data, 1, n, fp);
    fclose(fp);
}

// A safetensors file from a literal JSON header and `data_bytes` bytes of data.
static const char *make_st(const char *dir, const char *name, const char *header, size_t data_bytes) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t h = strlen(header);
    uint8_t *buf = calloc(8 + h + data_bytes + 1, 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    write_bytes(path, buf, 8 + h + data_bytes);
    free(buf);
    return path;
}

static void expect_st_error(const char *dir, const char *header, size_t data_bytes, const char *needle) {
    const char *path = make_st(dir, "bad.safetensors", header, data_bytes);
    st_file f;
    int rc = st_open(&f, path);
    CHECK_MSG(rc == -1, "st_open accepted header %s", header);
    if (rc == 0) st_close(&f);
    CHECK_STR_CONTAINS(ls_error(), "bad.safetensors");
    CHECK_STR_CONTAINS(ls_error(), needle);
}

// ----------------------------------------------------------------------------
// safetensors

static void test_safetensors_round_trip_is_bit_exact(void) {
    const char *dir = ls_test_tmpdir("st_roundtrip");
    float a[3 * 5], b[7];
    for (int i = 0; i < 15; i++) a[i] = rng_float() * 1e3f;
    a[0] = -0.0f;
    a[1] = 1e-42f; // subnormal
    a[2] = INFINITY;
    for (int i = 0; i < 7; i++) b[i] = rng_float();
    st_entry e[2] = {{.name = "layer.a", .dtype = ST_F32, .ndim = 2, .shape = {3, 5}, .data = a},
                     {.name = "b", .dtype = ST_F32, .ndim = 1, .shape = {7}, .data = b}};
    const char *meta[] = {"format", "pt", "note", "round trip"};
    char path[4096];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    CHECK(st_write(path, e, 2, meta, 2) == 0);
    st_file f;
    CHECK_MSG(st_open(&f, path) == 0, "%s", ls_error());
    CHECK_INT(f.n_tensors, 2);
    const st_tensor *ta = st_find(&f, "layer.a");
    CHECK(ta && ta->ndim == 2 && ta->shape[0] == 3 && ta->shape[1] == 5 && ta->dtype == ST_F32);
    float *ra = st_load_float(&f, ta), *rb = st_load_float(&f, st_find(&f, "b"));
    CHECK_MSG(memcmp(ra, a, sizeof a) == 0, "tensor a differs after round trip");
    CHECK_MSG(memcmp(rb, b, sizeof b) == 0, "tensor b differs after round trip");
    CHECK(st_metadata(&f, "note") && !strcmp(st_metadata(&f, "note"), "round trip"));
    CHECK(((uintptr_t)(f.data - (const uint8_t *)f.map)) % 8 == 0);
    free(ra);
    free(rb);
    st_close(&f);
    CHECK_MSG(!ls_exists(path) || access(path, R_OK) == 0, "file readable");
}

static void test_safetensors_half_round_trip_is_exact_for_representable_values(void) {
    const char *dir = ls_test_tmpdir("st_half");
    float v[64];
    // Values exactly representable in both F16 and BF16 (8 significant bits, small exponents).
    for (int i = 0; i < 64; i++) v[i] = (float)((int)(rng_u32() % 256) - 128) / 16.0f;
    st_entry e[2] = {{.name = "h", .dtype = ST_F16, .ndim = 1, .shape = {64}, .data = v},
                     {.name = "bh", .dtype = ST_BF16, .ndim = 2, .shape = {8, 8}, .data = v}};
    char path[4096];
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    CHECK(st_write(path, e, 2, NULL, 0) == 0);
    st_file f;
    CHECK_MSG(st_open(&f, path) == 0, "%s", ls_error());
    float *h = st_load_float(&f, st_find(&f, "h")), *bh = st_load_float(&f, st_find(&f, "bh"));
    for (int i = 0; i < 64; i++) {
        CHECK_MSG(h[i] == v[i], "F16 element %d: %g != %g", i, h[i], v[i]);
        CHECK_MSG(bh[i] == v[i], "BF16 element %d: %g != %g", i, bh[i], v[i]);
    }
    free(h);
    free(bh);
    st_close(&f);
}

static void test_f16_decodes_known_values_exactly(void) {
    struct { uint16_t bits; float value; } cases[] = {
        {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x7BFF, 65504.0f}, {0x0001, 0x1p-24f}, {0x03FF, 1023 * 0x1p-24f},
        {0x0400, 0x1p-14f}, {0x3555, 0x1.554p-2f}, {0x3E00, 1.5f}, {0x0000, 0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float got = st_f16_to_float(cases[i].bits);
        CHECK_MSG(got == cases[i].value, "f16 0x%04x -> %.10g, expected %.10g", cases[i].bits, got, cases[i].value);
        CHECK_MSG(st_float_to_f16(cases[i].value) == cases[i].bits, "f16 encode %.10g -> 0x%04x, expected 0x%04x",
                  cases[i].value, st_float_to_f16(cases[i].value), cases[i].bits);
    }
    CHECK(isinf(st_f16_to_float(0x7C00)) && st_f16_to_float(0x7C00) > 0);
    CHECK(isinf(st_f16_to_float(0xFC00)) && st_f16_to_float(0xFC00) < 0);
    CHECK(isnan(st_f16_to_float(0x7E00)));
    CHECK(signbit(st_f16_to_float(0x8000)) && st_f16_to_float(0x8000) == 0.0f);
    // Narrowing rounds to nearest, ties to even.
    CHECK_INT(st_float_to_f16(1.0f + 0x1p-11f), 0x3C00);      // tie -> even (down)
    CHECK_INT(st_float_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);  // tie -> even (up)
    CHECK_INT(st_float_to_f16(65520.0f), 0x7C00);             // rounds to inf
    CHECK_INT(st_float_to_f16(0x1p-25f), 0x0000);             // tie at half the smallest subnormal -> 0
    CHECK_INT(st_float_to_f16(0x1.8p-24f), 0x0002);           // 1.5 units -> 2 (even)
}

static void test_bf16_decodes_known_values_exactly(void) {
    struct { uint16_t bits; float value; } cases[] = {
        {0x3F80, 1.0f}, {0xC000, -2.0f}, {0x4049, 3.140625f}, {0xC2F7, -123.5f}, {0x0001, 0x1p-133f},
        {0x7F7F, 0x1.fep127f}, {0x0000, 0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float got = st_bf16_to_float(cases[i].bits);
        CHECK_MSG(got == cases[i].value, "bf16 0x%04x -> %.10g, expected %.10g", cases[i].bits, got, cases[i].value);
        CHECK_MSG(st_float_to_bf16(cases[i].value) == cases[i].bits, "bf16 encode %.10g -> 0x%04x", cases[i].value,
                  st_float_to_bf16(cases[i].value));
    }
    CHECK_INT(st_float_to_bf16(1.0f + 0x1p-8f), 0x3F80);     // tie -> even
    CHECK_INT(st_float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82); // tie -> even
    CHECK(isnan(st_bf16_to_float(st_float_to_bf16(NAN))));
}

static void test_safetensors_rejects_malformed_headers(void) {
    const char *dir = ls_test_tmpdir("st_bad");
    const char *ok_t = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
    char h[512];
    snprintf(h, sizeof h, "{\"t\":{%s}}", ok_t);
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "invalid JSON");
    expect_st_error(dir, "[1,2]", 0, "expected a JSON object");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "expected F32, F16 or BF16");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "12 bytes but data_offsets span 8");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the data buffer");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin 8 > end 0");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'shape'[0]");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "'shape'[0]");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets");
    expect_st_error(dir, "{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'dtype'");
    expect_st_error(dir, "{\"t\":7}", 8, "expected an object");
    expect_st_error(dir,
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    expect_st_error(dir,
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "appears twice");
    expect_st_error(dir, "{\"__metadata__\":{\"k\":3}}", 0, "expected a string value");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                    "at most 8 dimensions");
    expect_st_error(dir, "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                    "");
}

static void test_safetensors_rejects_truncated_files(void) {
    const char *dir = ls_test_tmpdir("st_trunc");
    char path[4096];
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    write_bytes(path, "\x10\x00\x00", 3);
    st_file f;
    CHECK(st_open(&f, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "8-byte header length");
    uint8_t big[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    write_bytes(path, big, 10);
    CHECK(st_open(&f, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "exceeds");
    uint8_t run[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(path, run, 10);
    CHECK(st_open(&f, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "runs past the end");
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    CHECK(st_open(&f, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "absent.safetensors: cannot open");
}

static void test_atomic_write_leaves_no_partial_file_on_abort(void) {
    const char *dir = ls_test_tmpdir("atomic");
    char path[4096];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    ls_outfile out;
    CHECK(ls_out_open(&out, path) == 0);
    fputs("partial", out.fp);
    ls_out_abort(&out);
    CHECK_MSG(!ls_exists(path), "%s exists after abort", path);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", dir);
    CHECK_MSG(system(cmd) == 0, "temporary files left in %s", dir);
}

// ----------------------------------------------------------------------------
// checkpoints

static void test_llama2c_checkpoint_loads_stories260k(void) {
    const char *p = ls_test_asset("models/stories260K/stories260K.bin");
    if (!p) SKIP("../shared/assets/models/stories260K/stories260K.bin not present");
    ls_checkpoint ck;
    CHECK_MSG(ckpt_load(&ck, p) == 0, "%s", ls_error());
    const ls_model_config *c = &ck.config;
    CHECK_INT(c->dim, 64);
    CHECK_INT(c->hidden_dim, 172);
    CHECK_INT(c->n_layers, 5);
    CHECK_INT(c->n_heads, 8);
    CHECK_INT(c->n_kv_heads, 4);
    CHECK_INT(c->vocab_size, 512);
    CHECK_INT(c->max_seq_len, 512);
    CHECK_INT(c->tied_embeddings, 1);
    CHECK_INT(c->rope_interleaved, 1);
    const ls_tensor *wk = ckpt_find(&ck, "model.layers.4.self_attn.k_proj.weight");
    CHECK(wk && wk->shape[0] == 32 && wk->shape[1] == 64);
    const ls_tensor *norm = ckpt_find(&ck, "model.norm.weight");
    CHECK(norm && norm->numel == 64);
    // The final RMSNorm weights of a trained model are O(1) and positive-ish; the
    // tensor just before the freq_cis block must be read at the right offset.
    double mean = 0;
    for (int i = 0; i < 64; i++) mean += norm->data[i] / 64.0;
    CHECK_MSG(mean > 0.2 && mean < 20, "rms_final mean %g (misaligned read?)", mean);
    int d_out, d_in;
    float *wv = ckpt_module_weight(&ck, 2, "v", &d_out, &d_in);
    CHECK(wv && d_out == 32 && d_in == 64);
    free(wv);
    CHECK(ckpt_module_weight(&ck, 5, "q", &d_out, &d_in) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "layer 5 out of range");
    CHECK(ckpt_module_weight(&ck, 0, "c_attn", &d_out, &d_in) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "unknown module 'c_attn'");
    ckpt_free(&ck);
}

static void test_llama2c_checkpoint_rejects_truncation_and_bad_header(void) {
    const char *p = ls_test_asset("models/stories260K/stories260K.bin");
    if (!p) SKIP("stories260K.bin not present");
    size_t n;
    char *buf = ls_read_file(p, &n);
    const char *dir = ls_test_tmpdir("l2c_bad");
    char path[4096];
    snprintf(path, sizeof path, "%s/cut.bin", dir);
    write_bytes(path, buf, n - 100);
    ls_checkpoint ck;
    CHECK(ckpt_load(&ck, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "cut.bin");
    CHECK_STR_CONTAINS(ls_error(), "implies 1056540 bytes, file has 1056440");
    write_bytes(path, buf, 20);
    CHECK(ckpt_load(&ck, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "expected 28 bytes");
    int32_t vocab_min = INT32_MIN; // -vocab would overflow an int32 (found by fuzzing)
    memcpy(buf + 20, &vocab_min, 4);
    write_bytes(path, buf, n);
    CHECK(ckpt_load(&ck, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "'vocab_size': expected 1..1048576");
    int32_t vocab = 512;
    memcpy(buf + 20, &vocab, 4);
    int32_t bad_heads = 7; // does not divide dim 64
    memcpy(buf + 12, &bad_heads, 4);
    write_bytes(path, buf, n);
    CHECK(ckpt_load(&ck, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "'n_heads': expected a positive divisor of dim, found 7");
    free(buf);
}

static void test_hf_checkpoint_errors_name_the_field(void) {
    const char *dir = ls_test_tmpdir("hf_bad");
    char cfg[4096], st[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    float w[4] = {1, 2, 3, 4};
    st_entry e = {.name = "transformer.wte.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, 2}, .data = w};
    CHECK(st_write(st, &e, 1, NULL, 0) == 0);
    ls_checkpoint ck;
    const char *t1 = "{\"model_type\": \"t5\"}";
    write_bytes(cfg, t1, strlen(t1));
    CHECK(ckpt_load(&ck, dir) == -1);
    CHECK_STR_CONTAINS(ls_error(), "'model_type': expected \"gpt2\", \"llama\", \"bert\" or \"roberta\", found \"t5\"");
    const char *t2 = "{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_head\": 1, \"vocab_size\": 2}";
    write_bytes(cfg, t2, strlen(t2));
    CHECK(ckpt_load(&ck, dir) == -1);
    CHECK_STR_CONTAINS(ls_error(), "missing field 'n_embd'");
    const char *t3 = "{\"model_type\": \"gpt2\", \"n_embd\": 2, \"n_layer\": 1, \"n_head\": 1, \"vocab_size\": 2, "
                     "\"n_positions\": 4}";
    write_bytes(cfg, t3, strlen(t3));
    CHECK(ckpt_load(&ck, dir) == -1);
    CHECK_STR_CONTAINS(ls_error(), "missing tensor 'transformer.wpe.weight'");
    CHECK(ckpt_load(&ck, "/nonexistent/ckpt") == -1);
    CHECK_STR_CONTAINS(ls_error(), "/nonexistent/ckpt: no such file");
}


static void test_llama2c_checkpoint_rejects_non_finite_weights(void) {
    const char *p = ls_test_asset("models/stories260K/stories260K.bin");
    if (!p) SKIP("stories260K.bin not present");
    size_t n;
    char *buf = ls_read_file(p, &n);
    const char *dir = ls_test_tmpdir("l2c_inf");
    char path[4096];
    snprintf(path, sizeof path, "%s/stories.bin", dir);
    // wq of layer 0 follows the header, the embedding (512 x 64) and rms_att (5 x 64).
    float inf = INFINITY;
    memcpy(buf + 28 + 4 * (512 * 64 + 5 * 64 + 17), &inf, 4);
    write_bytes(path, buf, n);
    ls_checkpoint ck;
    CHECK(ckpt_load(&ck, path) == -1);
    CHECK_STR_CONTAINS(ls_error(), "stories.bin: tensor 'model.layers.0.self_attn.q_proj.weight': element 17 is inf "
                                   "(expected finite weights)");
    free(buf);
}

// A one-layer llama (hidden 2, heads 1, vocab 2) as config.json + model.safetensors.
static const char *TINY_LLAMA_TENSORS[] = {
    "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.weight",
    "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight",
    "model.layers.0.self_attn.o_proj.weight", "model.layers.0.post_attention_layernorm.weight",
    "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
    "model.norm.weight"};

static void write_tiny_llama(const char *dir, const char *extra_config, int bad_tensor, float bad_value) {
    enum { NT = sizeof TINY_LLAMA_TENSORS / sizeof TINY_LLAMA_TENSORS[0] };
    float data[NT][4];
    st_entry e[NT];
    for (int i = 0; i < NT; i++) {
        int vec = strstr(TINY_LLAMA_TENSORS[i], "norm") != NULL;
        for (int k = 0; k < 4; k++) data[i][k] = 0.25f * (float)(k + 1);
        if (i == bad_tensor) data[i][vec ? 1 : 3] = bad_value;
        e[i] = (st_entry){.name = TINY_LLAMA_TENSORS[i], .dtype = ST_F32, .ndim = vec ? 1 : 2,
                          .shape = {2, vec ? 0 : 2}, .data = data[i]};
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(st_write(path, e, NT, NULL, 0) == 0);
    char cfg[1024];
    // cJSON takes the first of duplicate keys: the extra fields come first and override.
    snprintf(cfg, sizeof cfg, "{%s\"model_type\": \"llama\", \"hidden_size\": 2, \"intermediate_size\": 2, "
                              "\"num_hidden_layers\": 1, \"num_attention_heads\": 1, \"vocab_size\": 2, "
                              "\"tie_word_embeddings\": true}", extra_config);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_bytes(path, cfg, strlen(cfg));
}

static void expect_tiny_llama_error(const char *dir, const char *extra_config, const char *needle) {
    write_tiny_llama(dir, extra_config, -1, 0);
    ls_checkpoint ck;
    int rc = ckpt_load(&ck, dir);
    CHECK_MSG(rc == -1, "ckpt_load accepted config extra '%s' (expected '%s')", extra_config, needle);
    if (!rc) ckpt_free(&ck);
    CHECK_STR_CONTAINS(ls_error(), "config.json: ");
    CHECK_STR_CONTAINS(ls_error(), needle);
}

static void test_hf_checkpoint_rejects_non_finite_weights(void) {
    const char *dir = ls_test_tmpdir("hf_nan");
    ls_checkpoint ck;
    write_tiny_llama(dir, "", -1, 0);
    CHECK_MSG(ckpt_load(&ck, dir) == 0, "%s", ls_error());
    ckpt_free(&ck);
    write_tiny_llama(dir, "", 2, NAN);
    CHECK(ckpt_load(&ck, dir) == -1);
    CHECK_STR_CONTAINS(ls_error(), "model.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight': element 3 "
                                   "is nan (expected finite weights)");
    write_tiny_llama(dir, "", 10, -INFINITY);
    CHECK(ckpt_load(&ck, dir) == -1);
    CHECK_STR_CONTAINS(ls_error(), "tensor 'model.norm.weight': element 1 is -inf");
}

static void test_hf_config_sizes_are_bounded_before_casts(void) {
    const char *dir = ls_test_tmpdir("hf_bounds");
    // 1.67e33 does not fit an int: rejected before the cast (UBSan found it).
    expect_tiny_llama_error(dir, "\"max_position_embeddings\": 1.67e33, ",
                            "field 'max_position_embeddings': expected an integer in [1, 1048576], found 1.67e+33");
    expect_tiny_llama_error(dir, "\"max_position_embeddings\": 16777216, ",
                            "field 'max_position_embeddings': expected an integer in [1, 1048576], found 1.67772e+07");
    expect_tiny_llama_error(dir, "\"max_position_embeddings\": 2.5, ",
                            "field 'max_position_embeddings': expected an integer in [1, 1048576], found 2.5");
    expect_tiny_llama_error(dir, "\"vocab_size\": 2000000, ",
                            "field 'vocab_size': expected an integer in [1, 1048576], found 2e+06");
    expect_tiny_llama_error(dir, "\"num_hidden_layers\": 5000, ",
                            "field 'num_hidden_layers': expected an integer in [1, 1024], found 5000");
    expect_tiny_llama_error(dir, "\"hidden_size\": 1e300, ",
                            "field 'hidden_size': expected an integer in [1, 65536], found 1e+300");
    expect_tiny_llama_error(dir, "\"rope_theta\": 0, ",
                            "config field 'rope_theta': expected a finite number > 0, found 0");
    expect_tiny_llama_error(dir, "\"rope_theta\": -10000, ",
                            "config field 'rope_theta': expected a finite number > 0, found -10000");
    expect_tiny_llama_error(dir, "\"rope_theta\": 1e300, ",
                            "field 'rope_theta': expected a finite number within float range");
}

// ----------------------------------------------------------------------------
// adapters

static void make_adapter(lora_adapter *a, int layers, int r, int d) {
    memset(a, 0, sizeof *a);
    a->family = LS_FAMILY_LLAMA;
    a->r = r;
    a->alpha = 2.0f * r;
    a->n_targets = 2;
    a->target_modules = ls_calloc(2, sizeof(char *));
    a->target_modules[0] = ls_strdup("q_proj");
    a->target_modules[1] = ls_strdup("v_proj");
    a->n_modules = 2 * layers;
    a->modules = ls_calloc((size_t)a->n_modules, sizeof(adapter_site));
    for (int i = 0; i < a->n_modules; i++) {
        adapter_site *m = &a->modules[i];
        m->layer = i / 2;
        snprintf(m->path, sizeof m->path, "%s", i % 2 ? "self_attn.v_proj" : "self_attn.q_proj");
        m->r = r;
        m->alpha = a->alpha;
        m->scale = m->alpha / r;
        m->d_in = d;
        m->d_out = d;
        m->A = ls_malloc(sizeof(float) * r * d);
        m->B = ls_malloc(sizeof(float) * r * d);
        for (int k = 0; k < r * d; k++) m->A[k] = rng_float(), m->B[k] = rng_float();
    }
    if (a->n_modules > 3) { // a rank_pattern entry (layer 1's v_proj) when there is a layer 1
        a->modules[3].r = r / 2;
        a->modules[3].scale = a->alpha / (r / 2);
    }
}

static void test_adapter_save_load_round_trip(void) {
    const char *dir = ls_test_tmpdir("adapter_rt");
    lora_adapter a, b;
    make_adapter(&a, 2, 4, 16);
    CHECK_MSG(adapter_save(&a, dir) == 0, "%s", ls_error());
    CHECK_MSG(adapter_load(&b, dir) == 0, "%s", ls_error());
    CHECK_INT(b.n_modules, 4);
    CHECK_INT(b.family, LS_FAMILY_LLAMA);
    for (int i = 0; i < 4 && b.n_modules == 4; i++) {
        const adapter_site *x = &a.modules[i], *y = &b.modules[i];
        CHECK_INT(y->layer, x->layer);
        CHECK(!strcmp(y->path, x->path));
        CHECK_INT(y->r, x->r);
        CHECK_NEAR(y->scale, x->scale, 0);
        CHECK(memcmp(x->A, y->A, sizeof(float) * x->r * x->d_in) == 0);
        CHECK(memcmp(x->B, y->B, sizeof(float) * x->r * x->d_out) == 0);
    }
    int row0, rows;
    const adapter_site *q = adapter_resolve(&b, 1, "q", &row0, &rows);
    CHECK(q && q->layer == 1 && row0 == 0 && rows == 16);
    CHECK(adapter_resolve(&b, 1, "c_attn", &row0, &rows) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "unknown module 'c_attn' for a llama adapter");
    CHECK(adapter_resolve(&b, 7, "q", &row0, &rows) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "no LoRA module for 'q' (self_attn.q_proj) at layer 7");
    adapter_free(&a);
    adapter_free(&b);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, text, strlen(text));
}

static void expect_adapter_error(const char *dir, const char *needle) {
    lora_adapter a;
    int rc = adapter_load(&a, dir);
    CHECK_MSG(rc == -1, "adapter_load accepted a bad adapter (expected '%s')", needle);
    if (!rc) adapter_free(&a);
    CHECK_STR_CONTAINS(ls_error(), needle);
}

static void test_adapter_rejects_malformed_input(void) {
    const char *dir = ls_test_tmpdir("adapter_bad");
    lora_adapter a;
    make_adapter(&a, 1, 4, 8);
    a.modules[1].r = 4;
    CHECK(adapter_save(&a, dir) == 0);
    adapter_free(&a);
    const char *good_cfg = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"target_modules\":[\"q_proj\",\"v_proj\"]}";
    write_text(dir, "adapter_config.json", "{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]");
    expect_adapter_error(dir, "adapter_config.json: invalid JSON");
    write_text(dir, "adapter_config.json", "{\"r\": 0, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}");
    expect_adapter_error(dir, "field 'r': expected a positive integer");
    write_text(dir, "adapter_config.json", "{\"r\": 4, \"target_modules\": [\"q_proj\"]}");
    expect_adapter_error(dir, "field 'lora_alpha'");
    write_text(dir, "adapter_config.json", "{\"r\": 4, \"lora_alpha\": 8}");
    expect_adapter_error(dir, "field 'target_modules'");
    write_text(dir, "adapter_config.json", "{\"peft_type\":\"IA3\",\"r\":4,\"lora_alpha\":8,\"target_modules\":[]}");
    expect_adapter_error(dir, "field 'peft_type': expected \"LORA\", found IA3");
    write_text(dir, "adapter_config.json", "{\"r\": 8, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}");
    expect_adapter_error(dir, "tensors have rank 4 but the config says r = 8");
    write_text(dir, "adapter_config.json", good_cfg);

    char st[4096];
    snprintf(st, sizeof st, "%s/adapter_model.safetensors", dir);
    float z[32] = {0};
    st_entry only_a = {.name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", .dtype = ST_F32,
                       .ndim = 2, .shape = {4, 8}, .data = z};
    CHECK(st_write(st, &only_a, 1, NULL, 0) == 0);
    expect_adapter_error(dir, "has lora_A but no lora_B");
    st_entry unknown = {.name = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", .dtype = ST_F32,
                        .ndim = 1, .shape = {8}, .data = z};
    CHECK(st_write(st, &unknown, 1, NULL, 0) == 0);
    expect_adapter_error(dir, "module model.layers.0.self_attn.q_proj has lora_magnitude_vector but no lora_A");
    st_entry mismatch[2] = {only_a, {.name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                                     .dtype = ST_F32, .ndim = 2, .shape = {8, 2}, .data = z}};
    CHECK(st_write(st, mismatch, 2, NULL, 0) == 0);
    expect_adapter_error(dir, "rank 2 disagrees with its lora_A's rank 4");
    float nan_data[32];
    for (int i = 0; i < 32; i++) nan_data[i] = i == 5 ? NAN : 0.0f;
    st_entry with_nan[2] = {{.name = only_a.name, .dtype = ST_F32, .ndim = 2, .shape = {4, 8}, .data = nan_data},
                            {.name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                             .dtype = ST_F32, .ndim = 2, .shape = {8, 4}, .data = z}};
    CHECK(st_write(st, with_nan, 2, NULL, 0) == 0);
    expect_adapter_error(dir, "tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': element 5 is nan (expected finite weights)");
    unlink(st);
    expect_adapter_error(dir, "adapter_model.safetensors: missing");
    expect_adapter_error("/nonexistent/adapter", "not an adapter directory");
}


static void test_adapter_patterns_must_be_finite_and_in_range(void) {
    const char *dir = ls_test_tmpdir("adapter_patterns");
    lora_adapter a;
    make_adapter(&a, 1, 4, 8);
    a.modules[1].r = 4;
    CHECK(adapter_save(&a, dir) == 0);
    adapter_free(&a);
    const char *head = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"target_modules\":[\"q_proj\",\"v_proj\"]";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s, \"alpha_pattern\": {\"q_proj\": 1e300}}", head);
    write_text(dir, "adapter_config.json", cfg);
    expect_adapter_error(dir, "adapter_config.json: field 'alpha_pattern' key 'q_proj': expected a finite number in "
                              "(0, 1e+06], found 1e+300");
    snprintf(cfg, sizeof cfg, "%s, \"rank_pattern\": {\"q_proj\": 1e300}}", head);
    write_text(dir, "adapter_config.json", cfg);
    expect_adapter_error(dir, "adapter_config.json: field 'rank_pattern' key 'q_proj': expected a positive integer "
                              "rank in [1, 65536], found 1e+300");
    snprintf(cfg, sizeof cfg, "%s, \"rank_pattern\": {\"q_proj\": 100000}}", head);
    write_text(dir, "adapter_config.json", cfg);
    expect_adapter_error(dir, "key 'q_proj': expected a positive integer rank in [1, 65536], found 100000");
    write_text(dir, "adapter_config.json",
               "{\"r\": 4, \"lora_alpha\": 1e300, \"target_modules\": [\"q_proj\"]}");
    expect_adapter_error(dir, "field 'lora_alpha': expected a finite number in (0, 1e+06]");
    snprintf(cfg, sizeof cfg, "%s, \"alpha_pattern\": {\"q_proj\": 16}}", head);
    write_text(dir, "adapter_config.json", cfg);
    CHECK_MSG(adapter_load(&a, dir) == 0, "%s", ls_error());
    CHECK(a.modules[0].alpha == 16.0f && a.modules[0].scale == 4.0f);
    adapter_free(&a);
}

static void test_adapter_shape_checked_against_base(void) {
    const char *p = ls_test_asset("models/stories260K/stories260K.bin");
    if (!p) SKIP("stories260K.bin not present");
    ls_checkpoint ck;
    CHECK(ckpt_load(&ck, p) == 0);
    lora_adapter a;
    make_adapter(&a, 2, 4, 64);
    CHECK_MSG(adapter_check_base(&a, &ck) != 0, "v_proj of stories260K is (32, 64), adapter says (64, 64)");
    CHECK_STR_CONTAINS(ls_error(), "module 0.self_attn.v_proj: ΔW = B·A is (64, 64) but the base weight");
    for (int i = 0; i < a.n_modules; i++) a.modules[i].d_out = i % 2 ? 32 : 64;
    CHECK_MSG(adapter_check_base(&a, &ck) == 0, "%s", ls_error());
    a.modules[3].layer = 9;
    CHECK(adapter_check_base(&a, &ck) != 0);
    CHECK_STR_CONTAINS(ls_error(), "layer 9 out of range");
    adapter_free(&a);
    ckpt_free(&ck);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_safetensors_round_trip_is_bit_exact),
        LS_TEST(test_safetensors_half_round_trip_is_exact_for_representable_values),
        LS_TEST(test_f16_decodes_known_values_exactly),
        LS_TEST(test_bf16_decodes_known_values_exactly),
        LS_TEST(test_safetensors_rejects_malformed_headers),
        LS_TEST(test_safetensors_rejects_truncated_files),
        LS_TEST(test_atomic_write_leaves_no_partial_file_on_abort),
        LS_TEST(test_llama2c_checkpoint_loads_stories260k),
        LS_TEST(test_llama2c_checkpoint_rejects_truncation_and_bad_header),
        LS_TEST(test_hf_checkpoint_errors_name_the_field),
        LS_TEST(test_llama2c_checkpoint_rejects_non_finite_weights),
        LS_TEST(test_hf_checkpoint_rejects_non_finite_weights),
        LS_TEST(test_hf_config_sizes_are_bounded_before_casts),
        LS_TEST(test_adapter_save_load_round_trip),
        LS_TEST(test_adapter_rejects_malformed_input),
        LS_TEST(test_adapter_patterns_must_be_finite_and_in_range),
        LS_TEST(test_adapter_shape_checked_against_base),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
