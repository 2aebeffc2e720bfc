// The training library without the command line: schedules, configuration
// files, the exports (merged HF checkpoints, PEFT adapters, PiSSA's rank-2r
// form) checked by reloading them and comparing logits, and SST-2 label
// scores checked against the KV-cache decoding path.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/rng.h"
#include "engine/sampler.h"
#include "harness.h"
#include "io/adapter.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/export.h"
#include "train/import.h"
#include "train/task.h"
#include "train/train.h"
#include "train/train_config.h"

// ----------------------------------------------------------------------------
// helpers

static int load_model(ls_model *m, const char *path) {
    if (task_load_model(m, NULL, path, ls_backend_cpu())) {
        fprintf(stderr, "load %s: %s\n", path, ls_error());
        return -1;
    }
    return 0;
}

// Logits (B*T*V, malloc'd) of a fixed token batch.
static float *logits_of(ls_model *m, const int *tokens, int B, int T) {
    if (model_reserve(m, B, T)) return NULL;
    if (model_forward(m, tokens, NULL, NULL, B, T, 0.0f) < 0.0f) return NULL;
    size_t n = (size_t)B * T * m->V;
    float *out = ls_malloc(n * sizeof(float));
    m->be->download(out, m->acts.logits, n);
    return out;
}

static void fill_tokens(int *tokens, int n, int V, uint64_t seed) {
    ls_rng r;
    ls_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) tokens[i] = (int)(ls_rng_next(&r) % (uint64_t)V);
}

// max |a - b| and max |a| over n values.
static double max_diff(const float *a, const float *b, size_t n, double *amax) {
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e; // NaN propagates
        if (fabs(a[i]) > m) m = fabs(a[i]);
    }
    if (amax) *amax = m;
    return d;
}

// Gives every site a non-zero B (and perturbs A), as training would, so that
// ΔW = s B A is not zero.
static void randomise_adapter(ls_lora *lo, uint64_t seed) {
    ls_rng r;
    ls_rng_seed(&r, seed);
    for (int i = 0; i < lo->n_sites; i++) {
        ls_lora_site *s = &lo->sites[i];
        size_t na = (size_t)s->rank * s->d_in, nb = (size_t)s->d_out * s->rank;
        float *A = ls_malloc(na * sizeof(float)), *B = ls_malloc(nb * sizeof(float));
        lora_get_site(lo, s, A, B);
        for (size_t k = 0; k < na; k++) A[k] += (float)(0.02 * ls_rng_normal(&r));
        for (size_t k = 0; k < nb; k++) B[k] += (float)(0.05 * ls_rng_normal(&r));
        lora_set_site(lo, s, A, B);
        free(A);
        free(B);
    }
}

static int build_lora(ls_lora *lo, ls_model *m, const char *modules, lora_init init, int rank) {
    ls_lora_config c;
    lora_config_default(&c);
    c.rank = rank;
    c.init = init;
    if (lora_parse_modules(m->cfg.family, modules, &c.modules) || lora_build(lo, m, &c)) {
        fprintf(stderr, "lora: %s\n", ls_error());
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// schedule and configuration

// Expected values are the formulas of transformers' get_linear_schedule_with_warmup
// and get_cosine_schedule_with_warmup evaluated by hand for S = 10, W = 2.
static void test_lr_schedule_follows_transformers_formulas(void) {
    ls_train_config c;
    tc_defaults(&c);
    c.lr = 1.0;
    c.steps = 10;
    c.warmup = 2;
    snprintf(c.schedule, sizeof c.schedule, "linear");
    CHECK_NEAR(train_lr_at(&c, 0), 0.0, 1e-12);
    CHECK_NEAR(train_lr_at(&c, 1), 0.5, 1e-12);
    CHECK_NEAR(train_lr_at(&c, 2), 1.0, 1e-12);
    CHECK_NEAR(train_lr_at(&c, 6), 0.5, 1e-12);   // (10 - 6) / (10 - 2)
    CHECK_NEAR(train_lr_at(&c, 9), 0.125, 1e-12); // (10 - 9) / 8
    snprintf(c.schedule, sizeof c.schedule, "cosine");
    CHECK_NEAR(train_lr_at(&c, 6), 0.5, 1e-12);   // (1 + cos(pi / 2)) / 2
    CHECK_NEAR(train_lr_at(&c, 4), 0.5 * (1 + cos(M_PI * 0.25)), 1e-12);
    snprintf(c.schedule, sizeof c.schedule, "constant");
    CHECK_NEAR(train_lr_at(&c, 9), 1.0, 1e-12);
    c.warmup = 0;
    snprintf(c.schedule, sizeof c.schedule, "linear");
    CHECK_NEAR(train_lr_at(&c, 0), 1.0, 1e-12);
}

// Writes text to dir/name; returns the path, which the caller frees.
static char *write_text(const char *dir, const char *name, const char *text) {
    char *path = ls_path_join(dir, name);
    if (ls_write_file_atomic(path, text, strlen(text))) fprintf(stderr, "%s\n", ls_error());
    return path;
}

static void test_config_file_errors_name_key_and_line(void) {
    const char *dir = ls_test_tmpdir("train_cfg");
    ls_train_config c;
    struct { const char *text, *needle; } bad[] = {
        {"[lora]\nrank = 8\nrnak = 4\n", ":3: [lora] rnak: unknown key 'rnak' in section [lora]"},
        {"[lora]\nrank = 0\n", "[lora] rank: expected an integer in [1, 65536], found '0'"},
        {"[optim]\nlr = -1\n", "[optim] lr: expected a number in (0, 1e+30], found '-1'"},
        {"[optim]\nbeta2 = 1\n", "[optim] beta2: expected a number in [0, 1), found '1'"},
        {"[optim]\nschedule = step\n", "expected one of constant|linear|cosine, found 'step'"},
        {"[lora]\nrslora = maybe\n", "[lora] rslora: expected true or false, found 'maybe'"},
        {"[trian]\nsteps = 3\n", "unknown section [trian]"},
        {"steps = 3\n", ":1: key 'steps' outside a section"},
        {"[optim]\nthis line has no equals sign\n", ":2: syntax error"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.ini", i);
        char *path = write_text(dir, name, bad[i].text);
        tc_defaults(&c);
        int rc = tc_load_ini(&c, path);
        free(path);
        CHECK_MSG(rc == -1, "%s accepted", bad[i].text);
        CHECK_STR_CONTAINS(ls_error(), bad[i].needle);
        CHECK_MSG(!strchr(ls_error(), '\n'), "multi-line error: %s", ls_error());
    }
    // a good file, then flags over it; the written config reads back to the same text
    char *good = write_text(dir, "good.ini",
                                  "; comment\n[lora]\nrank = 4\nmodules = q,k,v\n[optim]\nlr = 0.003\nsteps = 50\n");
    tc_defaults(&c);
    CHECK_INT(tc_load_ini(&c, good), 0);
    free(good);
    CHECK_INT(c.rank, 4);
    CHECK_NEAR(c.lr, 0.003, 0);
    CHECK_INT(tc_set_flag(&c, "rank", "16"), 0);
    CHECK_INT(c.rank, 16);
    CHECK_INT(tc_set_flag(&c, "rslora", NULL), 0);
    CHECK_INT(c.rslora, 1);
    CHECK_INT(tc_set_flag(&c, "rank", "-2"), -1);
    CHECK_STR_CONTAINS(ls_error(), "--rank: expected an integer");
    CHECK_INT(c.rank, 16);
    char *ini = tc_to_ini(&c);
    char *round = write_text(dir, "round.ini", ini);
    ls_train_config d;
    tc_defaults(&d);
    CHECK_INT(tc_load_ini(&d, round), 0);
    free(round);
    char *ini2 = tc_to_ini(&d);
    CHECK_MSG(!strcmp(ini, ini2), "config.ini does not read back to itself:\n%s\nvs\n%s", ini, ini2);
    CHECK_INT(tc_compare_for_resume(&c, &d, 0), 0);
    snprintf(d.data, sizeof d.data, "/elsewhere/train.tsv"); // inputs: by location, or left to the caller
    CHECK_INT(tc_compare_for_resume(&c, &d, 0), -1);
    CHECK_STR_CONTAINS(ls_error(), "[data] train (--data): the run was started with");
    CHECK_INT(tc_compare_for_resume(&c, &d, 1), 0);
    d.rank = 8;
    CHECK_INT(tc_compare_for_resume(&c, &d, 1), -1);
    CHECK_STR_CONTAINS(ls_error(), "[lora] rank (--rank): the run was started with '16', found '8'");
    free(ini);
    free(ini2);
}

// ----------------------------------------------------------------------------
// merged HF exports: reload and compare logits

// Merged and unmerged outputs differ by float rounding only: the merged weight
// is rounded once to float, the unmerged path adds s (x A^T) B^T in float, and
// after a RoPE permutation the q·k sums run in another order. Over a few
// layers that is ~1e-6 of the logits' scale; 1e-4 of it leaves room and still
// catches any wrong row, transpose or scale, which move logits by O(1).
#define LOGIT_RTOL 1e-4

static void check_merged_roundtrip(const char *base, const char *modules, int expect_interleaved_src) {
    ls_model m, r;
    if (load_model(&m, base)) {
        CHECK(0);
        return;
    }
    CHECK_INT(m.cfg.rope_interleaved, expect_interleaved_src);
    ls_lora lo;
    if (build_lora(&lo, &m, modules, LORA_INIT_KAIMING, 4)) {
        CHECK(0);
        model_free(&m);
        return;
    }
    randomise_adapter(&lo, 7);
    int B = 2, T = 16;
    int tokens[32];
    fill_tokens(tokens, B * T, m.V, 3);
    float *a = logits_of(&m, tokens, B, T);
    const char *dir = ls_test_tmpdir("train_merged");
    char *out = ls_path_join(dir, "merged");
    CHECK_MSG(export_merged_hf(&m, &lo, out) == 0, "%s", ls_error());
    CHECK_MSG(load_model(&r, out) == 0, "merged export does not load");
    if (r.be) {
        CHECK_INT(r.cfg.rope_interleaved, 0); // HF layout
        CHECK_INT(r.cfg.family, m.cfg.family);
        CHECK_NEAR(r.cfg.norm_eps, m.cfg.norm_eps, 0);
        float *b = logits_of(&r, tokens, B, T);
        double amax, d = max_diff(a, b, (size_t)B * T * m.V, &amax);
        CHECK_MSG(d <= LOGIT_RTOL * amax, "%s + %s: merged logits differ by %g (max |logit| %g)", base, modules, d,
                  amax);
        free(b);
        model_free(&r);
    }
    free(a);
    free(out);
    lora_free(&lo, &m);
    model_free(&m);
}

static void test_merged_export_of_llama2c_model_reloads_with_same_logits(void) {
    const char *bin = ls_test_asset("models/stories260K/stories260K.bin");
    if (!bin) SKIP("models/stories260K/stories260K.bin not in the assets");
    char *path = ls_strdup(bin);
    check_merged_roundtrip(path, "q,k,v,o,gate,up,down", 1);
    free(path);
}

static void test_merged_export_of_hf_llama_and_gpt2_reload_with_same_logits(void) {
    check_merged_roundtrip(ls_test_source("data/peft/llama_tiny/base"), "q,v,down", 0);
    check_merged_roundtrip(ls_test_source("data/peft/gpt2_tiny/base"), "c_attn,c_proj,c_fc,mlp_proj", 0);
    check_merged_roundtrip(ls_test_source("data/peft/gpt2_tiny/base"), "q,v", 0); // row blocks merge too
}

// The HF layout must be what HF's Llama computes: greedy decoding from the
// exported stories260K (split-half RoPE after the q/k row permutation)
// reproduces llama2.c's reference text.
static void test_merged_export_of_stories260k_still_decodes_reference_text(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin") || !ls_test_asset("models/stories260K/reference_greedy.tsv"))
        SKIP("stories260K or its reference_greedy.tsv not in the assets");
    char *binp = ls_strdup(ls_test_asset("models/stories260K/stories260K.bin"));
    char *tsv = ls_read_file(ls_test_asset("models/stories260K/reference_greedy.tsv"), NULL);
    ls_model m, r;
    if (load_model(&m, binp)) {
        CHECK(0);
        return;
    }
    char *out = ls_path_join(ls_test_tmpdir("train_merged_greedy"), "hf");
    CHECK_MSG(export_merged_hf(&m, NULL, out) == 0, "%s", ls_error());
    model_free(&m);
    if (load_model(&r, out)) {
        CHECK(0);
        return;
    }
    tokenizer *tok = task_load_tokenizer("", binp, r.V, NULL);
    CHECK(tok != NULL);
    char *line = strtok(tsv, "\n");
    if (tok && line) {
        char *tab = strchr(line, '\t');
        *tab = 0;
        int n_ids, out_ids[130];
        int *ids = tok_encode(tok, line, 1, 0, &n_ids);
        int n = model_generate(&r, ids, n_ids, 120, NULL, tok_bos(tok), out_ids);
        char *text = tok_decode(tok, out_ids[0], out_ids + 1, n - 1, NULL);
        // the reference is JSON-quoted; compare its first 40 characters, which
        // hold no escapes in the first line ("Once upon a time, there was a ...")
        CHECK_MSG(!strncmp(text, tab + 2, 40), "HF-layout decode: '%.60s' vs reference '%.60s'", text, tab + 2);
        free(text);
        free(ids);
    }
    if (tok) tok_free(tok);
    model_free(&r);
    free(out);
    free(tsv);
    free(binp);
}

// ----------------------------------------------------------------------------
// PEFT adapters

// expect_r: the adapter's r as reloaded; expect_modules: its modules (-1: one per site).
static void check_adapter_roundtrip(const char *base, const char *modules, lora_init init, int expect_r,
                                    int expect_modules) {
    ls_model m, r;
    if (load_model(&m, base) || load_model(&r, base)) {
        CHECK(0);
        return;
    }
    ls_lora lo;
    if (build_lora(&lo, &m, modules, init, 4)) {
        CHECK(0);
        return;
    }
    float *init_params = NULL;
    if (init == LORA_INIT_PISSA) {
        init_params = ls_malloc(lo.n_params * sizeof(float));
        m.be->download(init_params, lo.params, lo.n_params);
    }
    randomise_adapter(&lo, 11);
    int B = 2, T = 12, tokens[24];
    fill_tokens(tokens, B * T, m.V, 5);
    float *a = logits_of(&m, tokens, B, T);
    lora_adapter ad, back;
    CHECK_MSG(export_lora_to_adapter(&lo, init_params, base, &ad) == 0, "%s", ls_error());
    char *dir = ls_path_join(ls_test_tmpdir("train_adapter"), "adapter");
    CHECK_MSG(export_save_adapter(&ad, dir) == 0, "%s", ls_error());
    CHECK_MSG(adapter_load(&back, dir) == 0, "%s", ls_error());
    CHECK_INT(back.r, expect_r);
    CHECK_INT(back.n_modules, expect_modules < 0 ? lo.n_sites : expect_modules);
    CHECK_MSG(import_adapter(&r, &back) == 0, "%s", ls_error());
    float *b = logits_of(&r, tokens, B, T);
    double amax, d = max_diff(a, b, (size_t)B * T * m.V, &amax);
    CHECK_MSG(d <= LOGIT_RTOL * amax, "%s %s: base + PEFT adapter differs from the unmerged model by %g (max %g)",
              base, modules, d, amax);
    free(a);
    free(b);
    free(dir);
    free(init_params);
    adapter_free(&ad);
    adapter_free(&back);
    lora_free(&lo, &m);
    model_free(&m);
    model_free(&r);
}

static void test_peft_adapter_on_base_equals_unmerged_lora(void) {
    check_adapter_roundtrip(ls_test_source("data/peft/llama_tiny/base"), "q,v,o,up", LORA_INIT_KAIMING, 4, -1);
    check_adapter_roundtrip(ls_test_source("data/peft/gpt2_tiny/base"), "c_attn,mlp_proj", LORA_INIT_GAUSSIAN, 4, -1);
}

// PiSSA trains on the residual W - s B0 A0; its PEFT form (rank 2r) applied to
// the original W must give the same model.
static void test_pissa_adapter_exports_as_rank_2r_on_the_original_base(void) {
    check_adapter_roundtrip(ls_test_source("data/peft/llama_tiny/base"), "q,v", LORA_INIT_PISSA, 8, -1);
}

// GPT-2's q/k/v row blocks fold into one PEFT c_attn module of rank 2r or 3r
// (export.c, fold_row_blocks); reloaded, it is the unmerged model.
static void test_gpt2_row_block_adapters_export_as_c_attn(void) {
    check_adapter_roundtrip(ls_test_source("data/peft/gpt2_tiny/base"), "q,v", LORA_INIT_GAUSSIAN, 8, 2);
    // c_attn of rank 12 beside mlp_proj of rank 4: r stays 4, rank_pattern gives 12
    check_adapter_roundtrip(ls_test_source("data/peft/gpt2_tiny/base"), "q,k,v,mlp_proj", LORA_INIT_GAUSSIAN, 4, 4);
    check_adapter_roundtrip(ls_test_source("data/peft/gpt2_tiny/base"), "q,v", LORA_INIT_PISSA, 16, 2);
}

// The closed form of tests/reference/make_gpt2_qv_export_reference.py's site_value.
static float qv_site_value(int is_b, int layer, int block, int i, int k) {
    return is_b ? (float)(0.1 * cos(0.23 * (i + 1) + 0.71 * k + 0.9 * layer + 0.5 * block))
                : (float)(0.1 * sin(0.37 * (i + 1) + 0.11 * k + 1.3 * layer + 0.5 * block));
}

// A GPT-2 q,v adapter exported by lorascope is the c_attn adapter that HF +
// PEFT ran in tests/data/peft/gpt2_qv_export/expected.safetensors, and
// lorascope's logits equal PEFT's within 1e-5 of max |logit|.
static void test_gpt2_q_v_export_gives_hf_peft_logits(void) {
    ls_model m;
    if (load_model(&m, ls_test_source("data/peft/gpt2_tiny/base"))) {
        CHECK(0);
        return;
    }
    ls_lora lo;
    ls_lora_config c;
    lora_config_default(&c);
    c.rank = 4;
    c.alpha = 8.0f;
    c.init = LORA_INIT_GAUSSIAN;
    CHECK_MSG(lora_parse_modules(m.cfg.family, "q,v", &c.modules) == 0 && lora_build(&lo, &m, &c) == 0, "%s",
              ls_error());
    for (int i = 0; i < lo.n_sites; i++) {
        ls_lora_site *s = &lo.sites[i];
        int block = s->row0 / s->d_out;
        float *A = ls_malloc(sizeof(float) * (size_t)s->rank * s->d_in), *B = ls_malloc(sizeof(float) * (size_t)s->d_out * s->rank);
        for (int r = 0; r < s->rank; r++)
            for (int k = 0; k < s->d_in; k++) A[(size_t)r * s->d_in + k] = qv_site_value(0, s->layer, block, r, k);
        for (int j = 0; j < s->d_out; j++)
            for (int r = 0; r < s->rank; r++) B[(size_t)j * s->rank + r] = qv_site_value(1, s->layer, block, j, r);
        lora_set_site(&lo, s, A, B);
        free(A);
        free(B);
    }
    st_file ref;
    CHECK_MSG(st_open(&ref, ls_test_source("data/peft/gpt2_qv_export/expected.safetensors")) == 0, "%s", ls_error());
    const st_tensor *tt = st_find(&ref, "tokens"), *lt = st_find(&ref, "logits");
    CHECK(tt && lt && tt->numel == 16 && lt->numel == 16 * m.V);
    float *tokf = st_load_float(&ref, tt), *want = st_load_float(&ref, lt);
    int tokens[16];
    for (int t = 0; t < 16; t++) tokens[t] = (int)tokf[t];
    float *got = logits_of(&m, tokens, 1, 16);
    double amax, d = max_diff(want, got, (size_t)16 * m.V, &amax);
    printf("gpt2 q,v: max |lorascope - HF+PEFT| = %.3g (max |logit| %.3g)\n", d, amax);
    CHECK_MSG(d <= 1e-5 * amax, "lorascope logits differ from HF + PEFT's by %g (max |logit| %g)", d, amax);
    lora_adapter a;
    CHECK_MSG(export_lora_to_adapter(&lo, NULL, NULL, &a) == 0, "%s", ls_error());
    CHECK_INT(a.n_modules, 2);
    CHECK_INT(a.r, 8);
    CHECK_NEAR(a.alpha, 16.0, 0);
    for (int i = 0; i < a.n_modules; i++) {
        const adapter_site *s = &a.modules[i];
        CHECK_STR_CONTAINS(s->path, "attn.c_attn");
        for (int side = 0; side < 2; side++) {
            char key[96];
            snprintf(key, sizeof key, "transformer.h.%d.attn.c_attn.lora_%c", s->layer, side ? 'B' : 'A');
            const st_tensor *t = st_find(&ref, key);
            CHECK_MSG(t && t->numel == (int64_t)(side ? s->d_out : s->d_in) * s->r, "%s", key);
            if (!t) continue;
            float *x = st_load_float(&ref, t);
            const float *y = side ? s->B : s->A;
            double e = 0;
            for (int64_t k = 0; k < t->numel; k++) e = fmax(e, fabs((double)x[k] - y[k]));
            CHECK_MSG(e <= 1e-7, "%s: exported factor differs from PEFT's c_attn form by %g", key, e);
            free(x);
        }
    }
    adapter_free(&a);
    free(tokf);
    free(want);
    free(got);
    st_close(&ref);
    lora_free(&lo, &m);
    model_free(&m);
}

// ----------------------------------------------------------------------------
// SST-2 label scores against the KV-cache path

static void test_sst2_label_scores_match_kv_cache_decoding(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin") || !ls_test_asset("data/sst2/dev.tsv"))
        SKIP("stories260K or data/sst2/dev.tsv not in the assets");
    char *binp = ls_strdup(ls_test_asset("models/stories260K/stories260K.bin"));
    char *devp = ls_strdup(ls_test_asset("data/sst2/dev.tsv"));
    ls_model m;
    if (load_model(&m, binp)) {
        CHECK(0);
        return;
    }
    tokenizer *tok = task_load_tokenizer("", binp, m.V, NULL);
    task_data d;
    CHECK_MSG(task_data_load(&d, TASK_SST2, devp, tok, 255, "") == 0, "%s", ls_error());
    enum { N = 10 };
    int items[N];
    for (int i = 0; i < N; i++) items[i] = 7 * i;
    double scores[2 * N];
    CHECK_MSG(task_label_scores(&m, &d, items, N, 4, scores) == 0, "%s", ls_error());
    // independent: token by token through model_decode (KV cache), log-softmax in double
    int correct = 0;
    for (int j = 0; j < N; j++) {
        int ctx = ds_pairs_context_len(&d.pairs, items[j]);
        double s[2];
        for (int k = 0; k < 2; k++) {
            int L = ctx + d.pairs.label_len[k];
            int *seq = ls_malloc((size_t)L * sizeof(int));
            memcpy(seq, d.pairs.tokens[items[j]], (size_t)ctx * sizeof(int));
            memcpy(seq + ctx, d.pairs.label_ids[k], (size_t)d.pairs.label_len[k] * sizeof(int));
            s[k] = 0.0;
            for (int p = 0; p + 1 < L; p++) {
                const float *lg = model_decode(&m, seq[p], p);
                if (p + 1 < ctx) continue;
                double mx = lg[0], z = 0.0;
                for (int v = 1; v < m.V; v++) mx = lg[v] > mx ? lg[v] : mx;
                for (int v = 0; v < m.V; v++) z += exp(lg[v] - mx);
                s[k] += lg[seq[p + 1]] - mx - log(z);
            }
            free(seq);
            CHECK_CLOSE(scores[2 * j + k], s[k], 1e-5, 1e-4);
        }
        correct += (s[1] > s[0]) == d.pairs.ex[items[j]].label;
    }
    task_eval_result r;
    CHECK_INT(task_evaluate(&m, &d, items, N, 4, &r), 0);
    CHECK_NEAR(r.accuracy, (double)correct / N, 1e-12);
    task_data_free(&d);
    tok_free(tok);
    model_free(&m);
    free(binp);
    free(devp);
}

static const ls_test tests[] = {
    LS_TEST(test_lr_schedule_follows_transformers_formulas),
    LS_TEST(test_config_file_errors_name_key_and_line),
    LS_TEST(test_merged_export_of_llama2c_model_reloads_with_same_logits),
    LS_TEST(test_merged_export_of_hf_llama_and_gpt2_reload_with_same_logits),
    LS_TEST(test_merged_export_of_stories260k_still_decodes_reference_text),
    LS_TEST(test_peft_adapter_on_base_equals_unmerged_lora),
    LS_TEST(test_pissa_adapter_exports_as_rank_2r_on_the_original_base),
    LS_TEST(test_gpt2_row_block_adapters_export_as_c_attn),
        LS_TEST(test_gpt2_q_v_export_gives_hf_peft_logits),
    LS_TEST(test_sst2_label_scores_match_kv_cache_decoding),
};

int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
