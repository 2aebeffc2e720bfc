// `lorascope analyze` on PEFT adapters of ten architectures it has no model
// code for (tests/data/peft_generic/, made by tests/reference/make_peft_generic.py):
// every analysis runs, fused row blocks and DoRA give PEFT's ΔW, and bad
// input gives a one-line error naming the file and key, a non-zero exit and no
// output.
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/wait.h>

#include "base/util.h"
#include "harness.h"
#include "io/safetensors.h"

static char err_text[8192];

// lorascope with `args` (a shell fragment) from tests/ (harness.h).
static int run(const char *args) { return ls_test_lorascope(args, NULL, 0, err_text, sizeof err_text); }

// Expects exit 1, a message containing both needles, one line, nothing under out.
static void expect_error(const char *args, const char *needle, const char *needle2, const char *out) {
    int rc = run(args);
    CHECK_MSG(rc == 1, "`lorascope %s` exited %d, expected 1; stderr: %s", args, rc, err_text);
    CHECK_STR_CONTAINS(err_text, needle);
    if (needle2) CHECK_STR_CONTAINS(err_text, needle2);
    int lines = 0;
    for (const char *c = err_text; *c; c++) lines += *c == '\n';
    CHECK_MSG(lines == 1, "expected a one-line error, got %d lines: %s", lines, err_text);
    CHECK_MSG(ls_test_count_files(out) == 0, "files left behind in %s after a failed run", out);
}

// ‖rows of PEFT's ΔW‖_F (delta.safetensors is (out, in)): `groups` groups of
// `rows` rows, group g from row0 + g * stride.
static double peft_delta_norm_strided(const char *name, const char *key, int row0, int rows, int groups, int stride) {
    char rel[256];
    snprintf(rel, sizeof rel, "data/peft_generic/%s/delta.safetensors", name);
    st_file f;
    if (st_open(&f, ls_test_source(rel))) return NAN;
    const st_tensor *t = st_find(&f, key);
    double s = 0;
    if (t) {
        float *x = st_load_float(&f, t);
        for (int g = 0; g < groups; g++)
            for (int64_t r = row0 + (int64_t)g * stride; r < row0 + (int64_t)g * stride + rows; r++)
                for (int64_t c = 0; c < t->shape[1]; c++) s += (double)x[r * t->shape[1] + c] * x[r * t->shape[1] + c];
        free(x);
    }
    st_close(&f);
    return t ? sqrt(s) : NAN;
}

static double peft_delta_norm(const char *name, const char *key, int row0, int rows) {
    return peft_delta_norm_strided(name, key, row0, rows, 1, 0);
}

// ----------------------------------------------------------------------------
// every case, every analysis

typedef struct {
    const char *name;
    const char *modules;        // with a base
    const char *modules_nobase; // without (a fused q,k,v split needs the base's heads)
    const char *layer;          // "" or "--layer N"
} generic_case;

static const generic_case CASES[] = {
    {"bert", "q,v,o,down", NULL, ""},
    {"roberta", "q,v", NULL, ""},
    {"gpt2", "q,v,c_fc", NULL, ""},
    {"gpt_neox", "q,v,dense", "query_key_value,dense", ""},
    {"mistral_dora", "q,v,gate", NULL, ""},
    {"qwen2", "q,v,down", NULL, ""},
    {"phi3", "q,k,v,up", "qkv_proj,o,gate", ""},
    {"opt", "q,v,fc2", NULL, ""}, // layers_to_transform [1]: "all layers" starts at 1
    {"t5", "encoder.q,decoder.EncDecAttention.v,decoder.wo", NULL, ""},
    {"vit", "q,v,fc1", NULL, ""},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

static void run_analysis(const generic_case *c, const char *kind, int with_base) {
    char out[4200], args[16384], d[256];
    snprintf(d, sizeof d, "data/peft_generic/%s", c->name);
    snprintf(out, sizeof out, "%s/%s", ls_test_tmpdir("generic_runs"), c->name);
    const char *mods = !with_base && c->modules_nobase ? c->modules_nobase : c->modules;
    int n = snprintf(args, sizeof args, "analyze %s --adapter %s/adapter --module %s %s --out '%s/%s' --no-plot", kind,
                     d, mods, c->layer, out, kind);
    if (!strcmp(kind, "subspace")) snprintf(args + n, sizeof args - n, " --adapter2 %s/adapter2", d);
    else if (with_base) snprintf(args + n, sizeof args - n, " --base %s/base", d);
    CHECK_MSG(run(args) == 0, "%s %s: %s", c->name, kind, err_text);
    CHECK_MSG(ls_test_count_files(out) > 0, "%s %s wrote nothing", c->name, kind);
}

static void test_every_reference_adapter_runs_subspace_and_spectrum_without_base(void) {
    for (size_t i = 0; i < N_CASES; i++) {
        run_analysis(&CASES[i], "subspace", 0);
        run_analysis(&CASES[i], "spectrum", 0);
    }
}

static void test_every_reference_adapter_runs_amplify_w_vs_dw_intruders_with_its_base(void) {
    for (size_t i = 0; i < N_CASES; i++) {
        run_analysis(&CASES[i], "amplify", 1);
        run_analysis(&CASES[i], "w-vs-dw", 1);
        run_analysis(&CASES[i], "intruders", 1);
    }
}

// spectrum's ‖ΔW‖_F of a module against PEFT's delta (its rows for a block).
static void check_norm(const char *tsv, const char *name, int layer, const char *module, const char *key, int row0,
                       int rows) {
    char k[512];
    snprintf(k, sizeof k, "data/peft_generic/%s/adapter\t%d\t%s\t", name, layer, module);
    double got = ls_test_tsv_value(tsv, k, 5), want = peft_delta_norm(name, key, row0, rows);
    CHECK_MSG(fabs(got - want) <= 1e-5 * want, "%s layer %d %s: ‖ΔW‖_F %.8g, PEFT %.8g", name, layer, module, got,
              want);
}

static void test_fused_blocks_dora_and_t5_stacks_give_peft_delta_norms(void) {
    const char *out = ls_test_tmpdir("generic_norms");
    char args[8192], tsv[4300];
    snprintf(tsv, sizeof tsv, "%s/spectrum.tsv", out);
    // Phi-3: 4 heads, 2 kv heads of 8: q = rows [0, 32), k [32, 48), v [48, 64) of qkv_proj; gate_up_proj halves.
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/phi3/adapter --base "
             "data/peft_generic/phi3/base --module q,k,v,gate,up --out '%s' --no-plot", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    for (int l = 0; l < 2; l++) {
        char key[128], key2[128];
        snprintf(key, sizeof key, "model.layers.%d.self_attn.qkv_proj", l);
        snprintf(key2, sizeof key2, "model.layers.%d.mlp.gate_up_proj", l);
        check_norm(tsv, "phi3", l, "q", key, 0, 32);
        check_norm(tsv, "phi3", l, "k", key, 32, 16);
        check_norm(tsv, "phi3", l, "v", key, 48, 16);
        check_norm(tsv, "phi3", l, "gate", key2, 0, 64);
        check_norm(tsv, "phi3", l, "up", key2, 64, 64);
    }
    // DoRA with its sharded BF16 base: ΔW = W' - W.
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/mistral_dora/adapter --base "
             "data/peft_generic/mistral_dora/base --module q,down --out '%s' --no-plot", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    check_norm(tsv, "mistral_dora", 1, "q", "model.layers.1.self_attn.q_proj", 0, 32);
    check_norm(tsv, "mistral_dora", 0, "down", "model.layers.0.mlp.down_proj", 0, 32);
    // GPT-NeoX: 4 heads of 8, query_key_value rows [q_h; k_h; v_h] per head h.
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt_neox/adapter --base "
             "data/peft_generic/gpt_neox/base --module q,k,v --out '%s' --no-plot", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    for (int b = 0; b < 3; b++) {
        const char *mod = b == 0 ? "q" : b == 1 ? "k" : "v";
        char k[256];
        snprintf(k, sizeof k, "data/peft_generic/gpt_neox/adapter\t1\t%s\t", mod);
        double got = ls_test_tsv_value(tsv, k, 5);
        double want = peft_delta_norm_strided("gpt_neox", "gpt_neox.layers.1.attention.query_key_value", 8 * b, 8, 4, 24);
        CHECK_MSG(fabs(got - want) <= 1e-5 * want, "gpt_neox %s: ‖ΔW‖_F %.8g, PEFT %.8g", mod, got, want);
    }
    // T5: encoder and decoder stacks told apart by name.
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/t5/adapter --module "
             "encoder.q,decoder.EncDecAttention.q --out '%s' --no-plot", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    check_norm(tsv, "t5", 1, "encoder.q", "encoder.block.1.layer.0.SelfAttention.q", 0, 32);
    check_norm(tsv, "t5", 0, "decoder.EncDecAttention.q", "decoder.block.0.layer.1.EncDecAttention.q", 0, 32);
}

// Writes <dir>/config.json (a copy of src's) and the tensors of
// <src>/model.safetensors as two F32 shards with model.safetensors.index.json.
static void write_sharded(const char *src, const char *dir) {
    char cmd[20000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/config.json' '%s/'", dir, dir, src, dir);
    CHECK(system(cmd) == 0);
    char *path = ls_path_join(src, "model.safetensors");
    st_file f;
    CHECK(st_open(&f, path) == 0);
    st_entry *e = ls_calloc((size_t)f.n_tensors, sizeof *e);
    float **data = ls_calloc((size_t)f.n_tensors, sizeof *data);
    cJSON *index = cJSON_CreateObject(), *map = cJSON_AddObjectToObject(index, "weight_map");
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        data[i] = st_load_float(&f, t);
        e[i] = (st_entry){.name = t->name, .dtype = ST_F32, .ndim = t->ndim, .data = data[i]};
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
        cJSON_AddStringToObject(map, t->name, i < f.n_tensors / 2 ? "model-00001-of-00002.safetensors"
                                                                  : "model-00002-of-00002.safetensors");
    }
    char shard[4400];
    snprintf(shard, sizeof shard, "%s/model-00001-of-00002.safetensors", dir);
    CHECK(st_write(shard, e, f.n_tensors / 2, NULL, 0) == 0);
    snprintf(shard, sizeof shard, "%s/model-00002-of-00002.safetensors", dir);
    CHECK(st_write(shard, e + f.n_tensors / 2, f.n_tensors - f.n_tensors / 2, NULL, 0) == 0);
    char *json = cJSON_Print(index);
    snprintf(shard, sizeof shard, "%s/model.safetensors.index.json", dir);
    CHECK(ls_write_file_atomic(shard, json, strlen(json)) == 0);
    free(json);
    cJSON_Delete(index);
    for (int i = 0; i < f.n_tensors; i++) free(data[i]);
    free(data);
    free(e);
    st_close(&f);
    free(path);
}

// checkpoint.h reads no sharded base; a lorascope family's adapter on one is
// analysed through the HF reader and gives the unsharded base's table.
static void test_family_adapter_on_a_sharded_base_gives_the_unsharded_table(void) {
    const char *tmp = ls_test_tmpdir("generic_sharded");
    char sharded[4200], args[16384], a[4400], b[4400];
    snprintf(sharded, sizeof sharded, "%s/base", tmp);
    write_sharded(ls_test_source("data/peft/llama_tiny/base"), sharded);
    snprintf(args, sizeof args, "analyze amplify --adapter data/peft/llama_tiny/adapter --base data/peft/llama_tiny/base "
             "--module q,v --out '%s/one' --no-plot", tmp);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(args, sizeof args, "analyze amplify --adapter data/peft/llama_tiny/adapter --base '%s' --module q,v "
             "--out '%s/two' --no-plot", sharded, tmp);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(a, sizeof a, "%s/one/table7.tsv", tmp);
    snprintf(b, sizeof b, "%s/two/table7.tsv", tmp);
    char *x = ls_read_file(a, NULL), *y = ls_read_file(b, NULL);
    CHECK_MSG(x && y && !strcmp(x, y), "table7.tsv differs between the single-file and the sharded base:\n%s\n%s",
              x ? x : "", y ? y : "");
    free(x);
    free(y);
}

// ----------------------------------------------------------------------------
// bad input

static void copy_dir(const char *from_rel, const char *to) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, ls_test_source(from_rel), to);
    CHECK(system(cmd) == 0);
}

// Sets adapter_config.json's `key` to the JSON text `value`.
static void edit_config(const char *dir, const char *key, const char *value) {
    char *path = ls_path_join(dir, "adapter_config.json");
    char *text = ls_read_file(path, NULL);
    cJSON *root = cJSON_Parse(text);
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    cJSON_AddItemToObject(root, key, cJSON_Parse(value));
    char *out = cJSON_Print(root);
    CHECK(ls_write_file_atomic(path, out, strlen(out)) == 0);
    free(out);
    cJSON_Delete(root);
    free(text);
    free(path);
}

// Rewrites <dir>/model.safetensors with tensor `name` cut to its first `rows` rows.
static void cut_rows(const char *dir, const char *name, int rows) {
    char *path = ls_path_join(dir, "model.safetensors");
    st_file f;
    CHECK(st_open(&f, path) == 0);
    st_entry *e = ls_calloc((size_t)f.n_tensors, sizeof *e);
    float **data = ls_calloc((size_t)f.n_tensors, sizeof *data);
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        data[i] = st_load_float(&f, t);
        e[i] = (st_entry){.name = t->name, .dtype = ST_F32, .ndim = t->ndim, .data = data[i]};
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
        if (!strcmp(t->name, name)) e[i].shape[0] = rows;
    }
    CHECK(st_write(path, e, f.n_tensors, NULL, 0) == 0);
    for (int i = 0; i < f.n_tensors; i++) free(data[i]);
    free(data);
    free(e);
    st_close(&f);
    free(path);
}

static void test_generic_bad_input_gives_one_line_error_naming_file_and_key(void) {
    const char *tmp = ls_test_tmpdir("generic_bad");
    char a[4200], b[4200], o[4200], args[16384];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    snprintf(o, sizeof o, "%s/out", tmp);
    // a key whose LoRA part cannot be grouped
    copy_dir("data/peft_generic/bert/adapter", a);
    float z[4 * 32] = {0};
    st_entry odd = {.name = "base_model.model.encoder.layer.0.attention.self.query.lora_A.x.y.weight", .dtype = ST_F32,
                    .ndim = 2, .shape = {4, 32}, .data = z};
    char st[4300];
    snprintf(st, sizeof st, "%s/adapter_model.safetensors", a);
    CHECK(st_write(st, &odd, 1, NULL, 0) == 0);
    snprintf(args, sizeof args, "analyze spectrum --adapter '%s' --out '%s'", a, o);
    expect_error(args, "adapter_model.safetensors: key 'base_model.model.encoder.layer.0.attention.self.query.lora_A.x.y.weight'",
                 "cannot be grouped", o);
    // a target_modules regex that matches nothing
    copy_dir("data/peft_generic/roberta/adapter", a);
    edit_config(a, "target_modules", "\".*\\\\.nothing\"");
    expect_error(args, "adapter_config.json: field 'target_modules'", "matches none", o);
    // a rank_pattern that contradicts the tensors
    copy_dir("data/peft_generic/qwen2/adapter", a);
    edit_config(a, "rank_pattern", "{\"down_proj\": 5}");
    expect_error(args, "module model.layers.0.mlp.down_proj: tensors have rank 6 but the config says r = 5",
                 "(rank_pattern)", o);
    // a shard missing from the sharded base
    copy_dir("data/peft_generic/mistral_dora/base", b);
    char shard[4300];
    snprintf(shard, sizeof shard, "%s/model-00002-of-00003.safetensors", b);
    CHECK(unlink(shard) == 0);
    snprintf(args, sizeof args, "analyze amplify --adapter data/peft_generic/mistral_dora/adapter --base '%s' --out '%s'",
             b, o);
    expect_error(args, "model.safetensors.index.json: key 'weight_map.", "model-00002-of-00003.safetensors is missing", o);
    // a base tensor whose shape is not ΔW's
    copy_dir("data/peft_generic/bert/base", b);
    cut_rows(b, "encoder.layer.1.attention.self.value.weight", 16);
    snprintf(args, sizeof args, "analyze amplify --adapter data/peft_generic/bert/adapter --base '%s' --out '%s'", b, o);
    expect_error(args, "model.safetensors: tensor 'encoder.layer.1.attention.self.value.weight'",
                 "expected shape (32, 32), found (16, 32)", o); // a bert base: checkpoint.h's check
    copy_dir("data/peft_generic/qwen2/base", b);
    cut_rows(b, "model.layers.1.self_attn.v_proj.weight", 8);
    snprintf(args, sizeof args, "analyze amplify --adapter data/peft_generic/qwen2/adapter --base '%s' --out '%s'", b, o);
    expect_error(args, "model.safetensors: tensor 'model.layers.1.self_attn.v_proj.weight'",
                 "expected a float (16, 32) matrix for ΔW (16, 32)", o); // found by name: hf_weights' check
    // names the file does not tell apart, or cannot split
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/t5/adapter --module q --out '%s'", o);
    expect_error(args, "module 'q' is ambiguous at layer 0", "decoder.block.layer.1.EncDecAttention.q", o);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt_neox/adapter --module q --out '%s'", o);
    expect_error(args, "interleaves q, k and v per head", "--module query_key_value", o);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt_neox/adapter --base "
             "data/peft_generic/phi3/base --module q --out '%s'", o);
    expect_error(args, "phi3/base: no tensor", "gpt_neox.layers.0.attention.", o); // not its base
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/phi3/adapter --module q --out '%s'", o);
    expect_error(args, "splitting the fused model.layers.0.self_attn.qkv_proj", "expected --base", o);
    // PEFT's pickle is never read
    copy_dir("data/peft_generic/vit/adapter", a);
    snprintf(st, sizeof st, "%s/adapter_model.safetensors", a);
    CHECK(unlink(st) == 0);
    snprintf(st, sizeof st, "%s/adapter_model.bin", a);
    CHECK(ls_write_file_atomic(st, "\x80\x02}q\0.", 6) == 0);
    snprintf(args, sizeof args, "analyze spectrum --adapter '%s' --out '%s'", a, o);
    expect_error(args, "only adapter_model.bin (pickle) found", "safe_serialization=True", o);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_every_reference_adapter_runs_subspace_and_spectrum_without_base),
        LS_TEST(test_every_reference_adapter_runs_amplify_w_vs_dw_intruders_with_its_base),
        LS_TEST(test_fused_blocks_dora_and_t5_stacks_give_peft_delta_norms),
        LS_TEST(test_family_adapter_on_a_sharded_base_gives_the_unsharded_table),
        LS_TEST(test_generic_bad_input_gives_one_line_error_naming_file_and_key),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
