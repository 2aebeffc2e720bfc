// The `lorascope` command line, run as a user runs it: analyses of real PEFT
// adapters and of stories260K give the numbers the libraries give, and bad
// input gives a one-line error, a non-zero exit and no output files.
#include <sys/wait.h>

#include "base/util.h"
#include "harness.h"
#include "io/safetensors.h"

static char err_text[8192];

// lorascope with `args` (a shell fragment) from tests/ (harness.h).
static int run(const char *args) { return ls_test_lorascope(args, NULL, 0, err_text, sizeof err_text); }

// Expects failure with exit code `code`, a message containing `needle`, one
// line, and nothing written under `out`.
static void expect_error(const char *args, int code, const char *needle, const char *out) {
    int rc = run(args);
    CHECK_MSG(rc == code, "`lorascope %s` exited %d, expected %d; stderr: %s", args, rc, code, err_text);
    CHECK_STR_CONTAINS(err_text, needle);
    size_t len = strlen(err_text);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += err_text[i] == '\n';
    CHECK_MSG(lines == 1, "expected a one-line error, got %d lines: %s", lines, err_text);
    if (out) CHECK_MSG(ls_test_count_files(out) == 0, "files left behind in %s after a failed run", out);
}

// ‖rows [row0, row0+rows) of ΔW‖_F from PEFT's delta file (GPT-2: stored (in, out)).
static double peft_delta_norm(const char *file, const char *key, int row0, int rows, int conv1d) {
    st_file f;
    if (st_open(&f, ls_test_source(file))) return NAN;
    const st_tensor *t = st_find(&f, key);
    double s = 0;
    if (t) {
        float *x = st_load_float(&f, t);
        int64_t out = conv1d ? t->shape[1] : t->shape[0], in = conv1d ? t->shape[0] : t->shape[1];
        for (int64_t r = row0; r < row0 + rows && r < out; r++)
            for (int64_t c = 0; c < in; c++) {
                double v = conv1d ? x[c * out + r] : x[r * in + c];
                s += v * v;
            }
        free(x);
    }
    st_close(&f);
    return t ? sqrt(s) : NAN;
}

// ----------------------------------------------------------------------------

static void test_help_lists_every_command(void) {
    CHECK_INT(run("help"), 0);
    CHECK_INT(run("analyze --help"), 0);
    expect_error("frobnicate", 2, "unknown command 'frobnicate'", NULL);
}

static void test_spectrum_of_gpt2_q_block_matches_peft_delta(void) {
    const char *out = ls_test_tmpdir("cli_spectrum");
    char args[4200], tsv[4300];
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft/gpt2_tiny/adapter --module q,c_attn --out '%s' --no-plot", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(tsv, sizeof tsv, "%s/spectrum.tsv", out);
    // columns: what layer module n sigma_1 frobenius ...
    for (int layer = 0; layer < 2; layer++) {
        char key[300];
        snprintf(key, sizeof key, "data/peft/gpt2_tiny/adapter\t%d\tq\t", layer);
        double got = ls_test_tsv_value(tsv, key, 5);
        char dkey[64];
        snprintf(dkey, sizeof dkey, "transformer.h.%d.attn.c_attn", layer);
        double want = peft_delta_norm("data/peft/gpt2_tiny/delta.safetensors", dkey, 0, 64, 1);
        CHECK_CLOSE(got, want, 1e-5, 0);
        snprintf(key, sizeof key, "data/peft/gpt2_tiny/adapter\t%d\tc_attn\t", layer);
        CHECK_CLOSE(ls_test_tsv_value(tsv, key, 5), peft_delta_norm("data/peft/gpt2_tiny/delta.safetensors", dkey, 0, 192, 1),
                    1e-5, 0);
    }
}

// One layer's figure: gnuplot's stats reads a lone x column as y values, so
// the layer number must not be filtered by the figure's y range or log scale
// (layer 0 on a log axis, layer 15 above a y range of 0.06-4.4 once failed).
static void test_amplify_figure_of_one_layer_outside_the_y_range(void) {
    if (system("command -v gnuplot >/dev/null") != 0) SKIP("gnuplot not installed");
    const char *out = ls_test_tmpdir("cli_amplify_layer0");
    char args[4200], fig[4300];
    snprintf(args, sizeof args,
             "analyze amplify --base data/peft/llama_tiny/base --adapter data/peft/llama_tiny/adapter "
             "--module q --layer 0 --out '%s'", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(fig, sizeof fig, "%s/amplification.png", out);
    CHECK_MSG(ls_exists(fig), "%s missing", fig);
}

static void test_amplify_reports_peft_delta_norm_and_factor(void) {
    const char *out = ls_test_tmpdir("cli_amplify");
    char args[4200], tsv[4300];
    snprintf(args, sizeof args,
             "analyze amplify --base data/peft/llama_tiny/base --adapter data/peft/llama_tiny/adapter "
             "--module q,v --layer 1 --out '%s'", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(tsv, sizeof tsv, "%s/table7.tsv", out);
    // columns: adapter r layer module proj_dW proj_W proj_random norm_W norm_dW amplification
    const char *key = "data/peft/llama_tiny/adapter\t4\t1\tq\t";
    double norm_dw = ls_test_tsv_value(tsv, key, 8), proj_dw = ls_test_tsv_value(tsv, key, 4), factor = ls_test_tsv_value(tsv, key, 9);
    double want = peft_delta_norm("data/peft/llama_tiny/delta.safetensors", "model.layers.1.self_attn.q_proj", 0, 64, 0);
    CHECK_CLOSE(norm_dw, want, 1e-5, 0);
    CHECK_CLOSE(factor, norm_dw / proj_dw, 1e-4, 0);
    // ‖U_Wᵀ W V_W‖ >= any other rank-r projection (Eckart-Young).
    CHECK(ls_test_tsv_value(tsv, key, 5) >= proj_dw && ls_test_tsv_value(tsv, key, 5) >= ls_test_tsv_value(tsv, key, 6));
    char fig[4300];
    snprintf(fig, sizeof fig, "%s/amplification.png", out);
    if (system("command -v gnuplot >/dev/null") == 0) CHECK_MSG(ls_exists(fig), "%s missing", fig);
    snprintf(fig, sizeof fig, "%s/table7.md", out);
    char *md = ls_read_file(fig, NULL);
    CHECK_STR_CONTAINS(md, "| amplification |");
    // the claim's tail: the paper's alignment beside ours, and the random ΔW's
    // lower percentiles, p01 = ‖ΔW‖_F / the projection's p99 (columns 22, 14)
    CHECK_STR_CONTAINS(md, "÷ chance (paper: 15.8×, r = 4; 5.9×, r = 64)");
    CHECK_CLOSE(ls_test_tsv_value(tsv, key, 22), norm_dw / ls_test_tsv_value(tsv, key, 14), 1e-5, 0);
    free(md);
}

static void test_subspace_between_peft_adapters_writes_grids_and_figure(void) {
    const char *out = ls_test_tmpdir("cli_subspace");
    char args[4200], path[4300];
    snprintf(args, sizeof args,
             "analyze subspace --adapter data/peft/llama_tiny_rslora/adapter --adapter2 data/peft/llama_tiny/adapter "
             "--module q,v --out '%s'", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(path, sizeof path, "%s/data/subspace_A_q_L0.tsv", out);
    CHECK_MSG(ls_exists(path), "%s missing", path);
    snprintf(path, sizeof path, "%s/subspace.tsv", out);
    // rsLoRA q has r = 2 (rank_pattern), the other adapter r = 4: a 2 x 4 grid; values in [0, 1].
    double phi11 = ls_test_tsv_value(path, "0\tq\tA\t2\t4\t", 5);
    CHECK_MSG(phi11 >= 0 && phi11 <= 1, "phi(1,1) = %g", phi11);
    if (system("command -v gnuplot >/dev/null") == 0) {
        snprintf(path, sizeof path, "%s/subspace.svg", out);
        CHECK_MSG(ls_exists(path), "%s missing", path);
    }
}

// Several --adapter without --adapter2: every pair (i < j), each pair's rows
// in subspace_pairs.tsv and a summary; an adapter against itself has φ = 1.
static void test_subspace_of_several_adapters_compares_every_pair(void) {
    const char *out = ls_test_tmpdir("cli_subspace_pairs");
    char args[4200], path[4300];
    snprintf(args, sizeof args,
             "analyze subspace --adapter data/peft_generic/bert/adapter --adapter data/peft_generic/bert/adapter2 "
             "--adapter data/peft_generic/bert/adapter --module query --out '%s' --no-plot", out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(path, sizeof path, "%s/subspace_pairs.tsv", out);
    char *text = ls_read_file(path, NULL);
    CHECK_MSG(text != NULL, "%s missing", path);
    int pairs[4] = {0};
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        int p = atoi(line);
        if (p >= 1 && p <= 3) pairs[p]++;
    }
    CHECK_MSG(pairs[1] > 0 && pairs[2] > 0 && pairs[3] > 0, "pairs 1..3 expected, rows %d %d %d", pairs[1], pairs[2],
              pairs[3]);
    free(text);
    // pair 2 is adapter 1 against itself
    double same = ls_test_tsv_value(path, "2\tdata/peft_generic/bert/adapter\tdata/peft_generic/bert/adapter\t", 7);
    CHECK_MSG(fabs(same - 1.0) < 1e-9, "phi(1,1) of an adapter with itself = %.12g", same);
    snprintf(path, sizeof path, "%s/subspace_summary.md", out);
    CHECK_MSG(ls_exists(path), "%s missing", path);
    CHECK_INT(run("analyze subspace --adapter data/peft_generic/bert/adapter --module query --out /tmp/never"), 2);
    CHECK_STR_CONTAINS(err_text, "several --adapter");
    // One pair (--pair): its values without an interval, never "± nan".
    const char *one = ls_test_tmpdir("cli_subspace_one_pair");
    snprintf(args, sizeof args,
             "analyze subspace --adapter data/peft_generic/bert/adapter --adapter data/peft_generic/bert/adapter2 "
             "--pair 1,2 --module query --out '%s' --no-plot", one);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(path, sizeof path, "%s/subspace_summary.md", one);
    text = ls_read_file(path, NULL);
    CHECK_MSG(text && strstr(text, "One pair: its values, without an interval.") && !strstr(text, "nan"),
              "one-pair summary:\n%s", text ? text : "(missing)");
    free(text);
}

// Cells and Monte Carlo draws run on OpenMP's threads: the tables are the same
// bytes at 1 and 2 threads (amplify and its bands, w-vs-dw, subspace on B,
// whose Wq and Wv live in different d_out).
static void test_analyses_same_bytes_at_one_and_two_threads(void) {
    static const char *const kinds[3][2] = {
        {"amplify --base data/peft/llama_tiny/base --adapter data/peft/llama_tiny/adapter", "table7.tsv"},
        {"w-vs-dw --base data/peft/llama_tiny/base --adapter data/peft/llama_tiny/adapter", "w_vs_dw.tsv"},
        {"subspace --side B --adapter data/peft/llama_tiny_rslora/adapter --adapter2 data/peft/llama_tiny/adapter",
         "subspace.tsv"}};
    for (int k = 0; k < 3; k++) {
        char *text[2] = {NULL, NULL};
        for (int t = 0; t < 2; t++) {
            char dir[64], args[4400], path[4300];
            snprintf(dir, sizeof dir, "cli_threads_%d_%d", k, t + 1);
            const char *out = ls_test_tmpdir(dir);
            setenv("OMP_NUM_THREADS", t ? "2" : "1", 1);
            snprintf(args, sizeof args, "analyze %s --module q,v --no-plot --out '%s'", kinds[k][0], out);
            CHECK_MSG(run(args) == 0, "%s", err_text);
            snprintf(path, sizeof path, "%s/%s", out, kinds[k][1]);
            text[t] = ls_read_file(path, NULL);
        }
        CHECK_MSG(text[0] && text[1] && !strcmp(text[0], text[1]), "%s differs between 1 and 2 threads", kinds[k][1]);
        free(text[0]);
        free(text[1]);
    }
    setenv("OMP_NUM_THREADS", "2", 1);
}

static void test_stories260k_weights_analyses_run(void) {
    const char *base = ls_test_asset("models/stories260K/stories260K.bin");
    if (!base) SKIP("stories260K.bin not present");
    const char *out = ls_test_tmpdir("cli_stories");
    char args[8400], path[4300];
    snprintf(args, sizeof args, "analyze spectrum --base '%s' --module q,v --out '%s'", base, out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(args, sizeof args, "analyze w-vs-dw --base '%s' --module q,v --layer 2 --rank 8 --out '%s'", base, out);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(path, sizeof path, "%s/spectrum.tsv", out);
    // Wq of layer 0 is 64 x 64: 64 singular values, effective rank in [1, 64].
    double n = ls_test_tsv_value(path, "W\t0\tq\t", 3), er = ls_test_tsv_value(path, "W\t0\tq\t", 8);
    CHECK_NEAR(n, 64, 0);
    CHECK_MSG(er >= 1 && er <= 64, "effective rank %g", er);
    snprintf(path, sizeof path, "%s/w_vs_dw.tsv", out);
    double mean = ls_test_tsv_value(path, "random\t8\t2\tq\t", 6);
    CHECK_MSG(mean > 0 && mean < 1, "mean phi W vs random = %g", mean);
}

static void test_bad_input_gives_one_line_error_and_no_output(void) {
    const char *out = ls_test_tmpdir("cli_bad");
    char args[20000], o[4200];
    snprintf(o, sizeof o, "%s/out", out);
    snprintf(args, sizeof args, "analyze spectrum --module q --out '%s'", o);
    expect_error(args, 2, "spectrum: expected --adapter (ΔW) or --base (W)", o);
    snprintf(args, sizeof args, "analyze spectrum --adapter /nonexistent --out '%s'", o);
    expect_error(args, 1, "/nonexistent: not an adapter directory", o);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft/llama_tiny/adapter --module c_fc --out '%s'", o);
    expect_error(args, 1, "unknown module 'c_fc' for a llama adapter", o);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft/llama_tiny/adapter --module k --out '%s'", o);
    expect_error(args, 1, "no LoRA module for 'k' (self_attn.k_proj) at layer 0", o);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft/llama_tiny/adapter --layer 7 --out '%s'", o);
    expect_error(args, 1, "--layer 7 out of range: the model has 2 layers", o);
    snprintf(args, sizeof args, "analyze amplify --base data/peft/gpt2_tiny/base --adapter data/peft/llama_tiny/adapter --out '%s'", o);
    expect_error(args, 1, "adapter is for a llama model but the base data/peft/gpt2_tiny/base is gpt2", o);
    snprintf(args, sizeof args, "analyze amplify --base data/peft/llama_tiny/base --adapter data/peft/llama_tiny/adapter --rank 9 --out '%s'", o);
    expect_error(args, 1, "--rank 9 exceeds the rank 4", o);
    snprintf(args, sizeof args, "analyze subspace --adapter data/peft/llama_tiny/adapter --out '%s'", o);
    expect_error(args, 2, "expected one --adapter and one --adapter2", o);
    snprintf(args, sizeof args, "analyze eigen --base x --out '%s'", o);
    expect_error(args, 2, "unknown analysis 'eigen'", o);
    snprintf(args, sizeof args, "analyze intruders --base data/peft/llama_tiny/base --adapter data/peft/llama_tiny/adapter --eps 2 --out '%s'", o);
    expect_error(args, 2, "--eps: expected a number in (0, 1], found '2'", o);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft/llama_tiny/adapter --bogus --out '%s'", o);
    expect_error(args, 2, "unknown option '--bogus'", o);
    expect_error("analyze spectrum --adapter data/peft/llama_tiny/adapter", 2, "--out: required", NULL);

    // A truncated adapter file and a config with a wrong field, in a copy of a real adapter.
    char bad[4300], cmd[20000];
    snprintf(bad, sizeof bad, "%s/adapter", out);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/* '%s'/ && truncate -s -100 '%s/adapter_model.safetensors'", bad,
             ls_test_source("data/peft/llama_tiny/adapter"), bad, bad);
    CHECK(system(cmd) == 0);
    snprintf(args, sizeof args, "analyze spectrum --adapter '%s' --out '%s'", bad, o);
    expect_error(args, 1, "adapter_model.safetensors: tensor 'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight': "
                          "data_offsets end", o);
    snprintf(cmd, sizeof cmd, "cp '%s'/* '%s'/ && sed -i 's/\"r\": 4/\"r\": \"four\"/' '%s/adapter_config.json'",
             ls_test_source("data/peft/llama_tiny/adapter"), bad, bad);
    CHECK(system(cmd) == 0);
    expect_error(args, 1, "adapter_config.json: field 'r': expected a positive integer", o);
    // A base whose shapes do not match the adapter.
    const char *stories = ls_test_asset("models/stories260K/stories260K.bin");
    if (stories) {
        snprintf(args, sizeof args, "analyze amplify --base '%s' --adapter data/peft/llama_tiny/adapter --out '%s'", stories, o);
        expect_error(args, 1, "module 0.mlp.down_proj: ΔW = B·A is (64, 128) but the base weight 'model.layers.0.mlp.down_proj.weight' is (64, 172)", o);
    }
}

// A fully fine-tuned checkpoint whose weights are W0 + PEFT's ΔW must give the
// same ΔW spectrum through --finetuned (dense W_ft - W0) as the adapter itself
// (QR route on B, A).
static void test_finetuned_checkpoint_delta_matches_adapter(void) {
    const char *dir = ls_test_tmpdir("cli_finetuned");
    st_file base, delta;
    CHECK(st_open(&base, ls_test_source("data/peft/llama_tiny/base/model.safetensors")) == 0);
    CHECK(st_open(&delta, ls_test_source("data/peft/llama_tiny/delta.safetensors")) == 0);
    st_entry *e = calloc((size_t)base.n_tensors, sizeof *e);
    int modified = 0;
    for (int i = 0; i < base.n_tensors; i++) {
        const st_tensor *t = &base.tensors[i];
        float *x = st_load_float(&base, t);
        char key[256];
        snprintf(key, sizeof key, "%s", t->name);
        char *dot = strstr(key, ".weight");
        if (dot) *dot = 0;
        const st_tensor *d = st_find(&delta, key);
        if (d && d->numel == t->numel) {
            float *dx = st_load_float(&delta, d);
            for (int64_t k = 0; k < t->numel; k++) x[k] += dx[k];
            free(dx);
            modified++;
        }
        e[i] = (st_entry){.name = t->name, .dtype = ST_F32, .ndim = t->ndim, .data = x};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
    }
    CHECK_INT(modified, 10);
    char path[4300], cmd[9000];
    snprintf(path, sizeof path, "%s/ft/model.safetensors", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/ft' && cp '%s' '%s/ft/'", dir,
             ls_test_source("data/peft/llama_tiny/base/config.json"), dir);
    CHECK(system(cmd) == 0);
    CHECK_MSG(st_write(path, e, base.n_tensors, NULL, 0) == 0, "%s", ls_error());
    for (int i = 0; i < base.n_tensors; i++) free((float *)e[i].data);
    free(e);
    st_close(&base);
    st_close(&delta);

    char args[20000], tsv_ft[4300], tsv_ad[4300];
    snprintf(args, sizeof args, "analyze spectrum --base data/peft/llama_tiny/base --finetuned '%s/ft' "
             "--module q,v --out '%s/a' --no-plot", dir, dir);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft/llama_tiny/adapter --module q,v --out '%s/b' "
             "--no-plot", dir);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(tsv_ft, sizeof tsv_ft, "%s/a/spectrum.tsv", dir);
    snprintf(tsv_ad, sizeof tsv_ad, "%s/b/spectrum.tsv", dir);
    for (int layer = 0; layer < 2; layer++)
        for (int m = 0; m < 2; m++) {
            char k1[4400], k2[300];
            snprintf(k1, sizeof k1, "%s/ft\t%d\t%s\t", dir, layer, m ? "v" : "q");
            snprintf(k2, sizeof k2, "data/peft/llama_tiny/adapter\t%d\t%s\t", layer, m ? "v" : "q");
            // sigma_1 and ‖ΔW‖_F: W_ft - W0 carries float32 rounding of W0 + ΔW (|W0| ~ 0.02-1).
            CHECK_CLOSE(ls_test_tsv_value(tsv_ft, k1, 4), ls_test_tsv_value(tsv_ad, k2, 4), 1e-4, 1e-6);
            CHECK_CLOSE(ls_test_tsv_value(tsv_ft, k1, 5), ls_test_tsv_value(tsv_ad, k2, 5), 1e-4, 1e-6);
        }
    // The same weights as a bare safetensors file of canonical names (lorascope's full/model.safetensors).
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/bare' && cp '%s/ft/model.safetensors' '%s/bare/params.safetensors'", dir,
             dir, dir);
    CHECK(system(cmd) == 0);
    snprintf(args, sizeof args, "analyze spectrum --base data/peft/llama_tiny/base --finetuned '%s/bare/params.safetensors' "
             "--module q --layer 1 --out '%s/c' --no-plot", dir, dir);
    CHECK_MSG(run(args) == 0, "%s", err_text);
    snprintf(tsv_ft, sizeof tsv_ft, "%s/c/spectrum.tsv", dir);
    char kb[4400];
    snprintf(kb, sizeof kb, "%s/bare/params.safetensors\t1\tq\t", dir);
    CHECK_CLOSE(ls_test_tsv_value(tsv_ft, kb, 5), ls_test_tsv_value(tsv_ad, "data/peft/llama_tiny/adapter\t1\tq\t", 5), 1e-4, 1e-6);
}

// `score` prints METEOR under its full name (exact+stem+synonym, no
// paraphrase) in measure_scores.py's order; without WordNet it prints the
// other four, exits 0 and says so in one stderr line.
static void test_score_names_meteor_or_notes_missing_wordnet(void) {
    const char *exe = getenv("LORASCOPE_BIN");
    const char *dir = ls_test_tmpdir("cli_score");
    char cmd[16384], *out_path = ls_path_join(dir, "out.txt"), *err_path = ls_path_join(dir, "err.txt");
    for (int missing = 0; missing < 2; missing++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' score --hyp data/eval/score_hyp.txt --refs data/eval/score_refs.txt "
                 ">'%s' 2>'%s'", ls_test_source(""), missing ? "LORASCOPE_WORDNET=/nonexistent" : "", exe, out_path,
                 err_path);
        int status = system(cmd);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "`%s` failed", cmd);
        char *out = ls_read_file(out_path, NULL), *err = ls_read_file(err_path, NULL);
        CHECK(out != NULL && err != NULL);
        if (!out || !err) break;
        CHECK_STR_CONTAINS(out, "BLEU: 0.6195\nNIST: 8.0990\n");
        CHECK_STR_CONTAINS(out, "ROUGE_L: 0.6394\nCIDEr: ");
        if (missing) {
            CHECK_MSG(!strstr(out, "METEOR"), "METEOR printed without WordNet: %s", out);
            CHECK_STR_CONTAINS(err, "lorascope score: METEOR not computed: /nonexistent/index.noun");
            CHECK_STR_CONTAINS(err, "wordnet-base");
            int lines = 0;
            for (const char *c = err; *c; c++) lines += *c == '\n';
            CHECK_MSG(lines == 2, "expected the note and the instance count, got: %s", err);
        } else if (system("test -r /usr/share/wordnet/index.noun") == 0) {
            CHECK_STR_CONTAINS(out, "NIST: 8.0990\nMETEOR (exact+stem+synonym, no paraphrase): 0.4");
            CHECK_MSG(!strstr(out, "\nMETEOR:"), "a bare METEOR line: %s", out);
        }
        free(out);
        free(err);
    }
    free(out_path);
    free(err_path);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_help_lists_every_command),
        LS_TEST(test_spectrum_of_gpt2_q_block_matches_peft_delta),
        LS_TEST(test_amplify_reports_peft_delta_norm_and_factor),
        LS_TEST(test_amplify_figure_of_one_layer_outside_the_y_range),
        LS_TEST(test_subspace_between_peft_adapters_writes_grids_and_figure),
        LS_TEST(test_subspace_of_several_adapters_compares_every_pair),
        LS_TEST(test_analyses_same_bytes_at_one_and_two_threads),
        LS_TEST(test_stories260k_weights_analyses_run),
        LS_TEST(test_bad_input_gives_one_line_error_and_no_output),
        LS_TEST(test_finetuned_checkpoint_delta_matches_adapter),
        LS_TEST(test_score_names_meteor_or_notes_missing_wordnet),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
