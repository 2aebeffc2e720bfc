// lorascope train / generate / eval / bench run as a user runs them: greedy
// decoding reproduces llama2.c, runs are bit-reproducible and resume to the
// same bits after a kill, a NaN stops the run at its step, LoRA on E2E lowers
// the held-out loss, and bad input gives a one-line error, a non-zero exit and
// no output.
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/lock.h"
#include "base/util.h"
#include "harness.h"
#include "io/safetensors.h"

// Validation-loss drop that the 60-step LoRA run of
// test_e2e_lora_lowers_validation_loss must reach. Measured with seeds 1, 2, 3
// (1 thread): 4.4306 before, 3.1886 / 3.1895 / 3.1876 after, a drop of 1.24
// nats each time; 0.8 is about 65% of the smallest drop seen.
#define E2E_MIN_DROP 0.8

static char out_text[1 << 16], err_text[1 << 14];

// printf into a fresh string from a ring of 1024 (each lives for 1024 more calls),
// so that paths and command lines need no fixed-size buffers.
static const char *S(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *S(const char *fmt, ...) {
    static char *ring[1024];
    static int next;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) exit(1);
    va_end(ap);
    free(ring[next]);
    ring[next] = s;
    next = (next + 1) % 1024;
    return s;
}

// lorascope with `args` (a shell fragment) from tests/ (harness.h).
static int run(const char *args) { return ls_test_lorascope(args, out_text, sizeof out_text, err_text, sizeof err_text); }

static int n_lines(const char *text) {
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

// Expects exit `code`, a one-line message containing `needle`, and no file
// under `out` (NULL: not checked).
static void expect_error(const char *args, int code, const char *needle, const char *out) {
    int rc = run(args);
    CHECK_MSG(rc == code, "`lorascope %s` exited %d, expected %d; stderr: %s", args, rc, code, err_text);
    CHECK_STR_CONTAINS(err_text, needle);
    CHECK_MSG(n_lines(err_text) == 1, "expected a one-line error, got: %s", err_text);
    if (out) CHECK_MSG(ls_test_count_files(out) <= 0, "files left behind in %s after `lorascope %s`", out, args);
}

static int same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = ls_read_file(a, &na), *y = ls_read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

// An asset's path as a fresh string, or NULL.
static const char *asset(const char *rel) {
    const char *p = ls_test_asset(rel);
    return p ? S("%s", p) : NULL;
}

// The E2E setting of the short runs below: stories260K, train on the dev set,
// validate on a fixed subsample of the test set's completions. NULL if an
// asset is missing.
static const char *e2e_args(const char *extra) {
    const char *m = asset("models/stories260K/stories260K.bin"), *v = asset("data/e2e/valid.txt"),
               *t = asset("data/e2e/test.txt");
    if (!m || !v || !t) return NULL;
    return S("train --model '%s' --task e2e --data '%s' --val-data '%s' --eval-max 16 --seq-len 64 --batch-size 4 "
             "--threads 1 %s",
             m, v, t, extra);
}

// metrics.jsonl: the value of `key` on the last line with that key and
// "step": step; NAN if none. *n gets the number of such lines.
static double metric(const char *dir, long step, const char *key, int *n) {
    char *text = ls_read_file(S("%s/metrics.jsonl", dir), NULL);
    double v = NAN;
    int count = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItem(o, "step"), *k = cJSON_GetObjectItem(o, key);
        if (cJSON_IsNumber(s) && cJSON_IsNumber(k) && s->valueint == step) {
            v = k->valuedouble;
            count++;
        }
        cJSON_Delete(o);
    }
    free(text);
    if (n) *n = count;
    return v;
}

// ----------------------------------------------------------------------------

static void test_help_of_train_generate_eval_bench(void) {
    const char *cmds[] = {"train", "generate", "eval", "bench"};
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(run(S("%s --help", cmds[i])) == 0, "%s --help failed", cmds[i]);
        CHECK_STR_CONTAINS(out_text, "usage: lorascope");
    }
    CHECK_INT(run("help"), 0);
    CHECK_STR_CONTAINS(out_text, "train");
    CHECK_STR_CONTAINS(out_text, "bench");
}

// Every line of reference_greedy.tsv (llama2.c's run.c, temperature 0, 120
// steps) through `lorascope generate`: stdout is the JSON-decoded text + "\n".
static void test_greedy_generation_matches_llama2c_reference(void) {
    const char *tsv_path = asset("models/stories260K/reference_greedy.tsv");
    const char *model = asset("models/stories260K/stories260K.bin");
    if (!tsv_path || !model) SKIP("stories260K or reference_greedy.tsv not in the assets");
    char *tsv = ls_read_file(tsv_path, NULL), *save = NULL;
    int lines = 0;
    for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        cJSON *want = cJSON_Parse(tab + 1);
        CHECK(cJSON_IsString(want));
        CHECK_MSG(run(S("generate --model '%s' --prompt '%s' --steps 120 --temperature 0", model, line)) == 0, "%s",
                  err_text);
        size_t n = strlen(out_text);
        if (n && out_text[n - 1] == '\n') out_text[n - 1] = 0;
        if (cJSON_IsString(want))
            CHECK_MSG(!strcmp(out_text, want->valuestring), "prompt '%s':\n got: %s\nwant: %s", line, out_text,
                      want->valuestring);
        cJSON_Delete(want);
        lines++;
    }
    CHECK(lines >= 3);
    free(tsv);
}

static double abs_sum(const char *file, const char *key) {
    st_file f;
    double s = NAN;
    if (st_open(&f, file)) return s;
    const st_tensor *t = st_find(&f, key);
    if (t) {
        float *x = st_load_float(&f, t);
        s = 0;
        for (int64_t i = 0; i < t->numel; i++) s += fabs(x[i]);
        free(x);
    }
    st_close(&f);
    return s;
}

// Two threads, so that the parallel reductions (and OpenBLAS's split of each
// sgemm) are in play: their fixed partitions must give the same bits.
static void test_same_seed_same_threads_gives_identical_adapter(void) {
    const char *train = "--steps 4 --lr 2e-3 --lora q,k,v,o --lora-dropout 0.1 --eval-max 8 --threads 2";
    const char *o1 = S("%s/run", ls_test_tmpdir("train_det1")), *o2 = S("%s/run", ls_test_tmpdir("train_det2")),
               *o3 = S("%s/run", ls_test_tmpdir("train_det3"));
    const char *a = e2e_args(S("%s --out '%s'", train, o1));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_MSG(run(a) == 0, "%s", err_text);
    CHECK_MSG(run(e2e_args(S("%s --out '%s'", train, o2))) == 0, "%s", err_text);
    CHECK_MSG(run(e2e_args(S("%s --seed 2 --out '%s'", train, o3))) == 0, "%s", err_text);
    const char *f1 = S("%s/adapter/adapter_model.safetensors", o1), *f2 = S("%s/adapter/adapter_model.safetensors", o2),
               *f3 = S("%s/adapter/adapter_model.safetensors", o3);
    CHECK_MSG(same_bytes(f1, f2), "two runs with the same seed and threads differ: %s vs %s", f1, f2);
    CHECK_MSG(!same_bytes(f1, f3), "seeds 1 and 2 gave the same adapter");
    double s = abs_sum(f1, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
    CHECK_MSG(s > 0, "lora_B of layer 0 q is %g after training (expected non-zero)", s);
    // A0 beside the adapter (issue 12): the same keys, A only (B0 = 0), not the trained A
    const char *i1 = S("%s/adapter_init.safetensors", o1), *i2 = S("%s/adapter_init.safetensors", o2);
    const char *qa = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
    CHECK_MSG(same_bytes(i1, i2), "two runs with the same seed saved different A0: %s vs %s", i1, i2);
    double a0 = abs_sum(i1, qa), a1 = abs_sum(f1, qa);
    CHECK_MSG(a0 > 0 && a1 > 0 && a0 != a1, "layer 0 q: sum |A0| = %g, sum |A| = %g (expected both, different)", a0, a1);
    CHECK_MSG(isnan(abs_sum(i1, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")),
              "%s stores a zero B0", i1);
}

// The (rows, cols) of tensor `key` of a safetensors file; -1, -1 if absent.
static void tensor_shape(const char *file, const char *key, int64_t *rows, int64_t *cols) {
    st_file f;
    *rows = *cols = -1;
    if (st_open(&f, file)) return;
    const st_tensor *t = st_find(&f, key);
    if (t && t->ndim == 2) *rows = t->shape[0], *cols = t->shape[1];
    st_close(&f);
}

// PiSSA's adapter is exported at rank 2r (A' = [A; A0]); its initial factors
// take the same layout, B0 included (nonzero), and `analyze subspace` between
// two PiSSA runs reports φ of A − A0 and of A0.
static void test_pissa_run_saves_initial_factors_in_the_adapters_layout(void) {
    const char *d = ls_test_tmpdir("train_pissa_init");
    const char *o1 = S("%s/s1", d), *o2 = S("%s/s2", d), *an = S("%s/an", d);
    const char *a = e2e_args(S("--steps 2 --lr 2e-3 --init pissa --rank 2 --lora q --out '%s'", o1));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_MSG(run(a) == 0, "%s", err_text);
    CHECK_MSG(run(e2e_args(S("--steps 2 --lr 2e-3 --init pissa --rank 2 --lora q --seed 2 --out '%s'", o2))) == 0, "%s",
              err_text);
    const char *init = S("%s/adapter_init.safetensors", o1), *pre = "base_model.model.model.layers.1.self_attn.q_proj";
    int64_t ar, ac, br, bc;
    tensor_shape(init, S("%s.lora_A.weight", pre), &ar, &ac);
    tensor_shape(init, S("%s.lora_B.weight", pre), &br, &bc);
    CHECK_MSG(ar == 4 && ac == 64 && br == 64 && bc == 4, "A0 (%lld, %lld), B0 (%lld, %lld): expected (4, 64) and "
              "(64, 4), the adapter's rank-2r layout", (long long)ar, (long long)ac, (long long)br, (long long)bc);
    CHECK_MSG(run(S("analyze subspace --adapter '%s/adapter' --adapter2 '%s/adapter' --module q --out '%s' --no-plot",
                    o1, o2, an)) == 0, "%s", err_text);
    char *tsv = ls_read_file(S("%s/subspace.tsv", an), NULL);
    CHECK_STR_CONTAINS(tsv ? tsv : "", "\tdphi_1_1\t");
    CHECK_MSG(tsv && !strstr(strchr(tsv, '\n'), "\tnan\tnan\tnan\tnan\tnan\tnan\tnan\tnan"),
              "φ of A − A0 and of A0 missing in %s/subspace.tsv", an);
    free(tsv);
}

// A run killed (SIGKILL) after step 5 with checkpoints every 3 steps, resumed,
// ends with the adapter of an uninterrupted run, byte for byte; its
// metrics.jsonl holds each step once with the same losses. Dropout, gradient
// accumulation, warmup and a cosine schedule are on, so that the random
// streams, the micro-batch order and the schedule must all resume exactly.
static void test_resume_after_kill_gives_identical_adapter(void) {
    const char *d = ls_test_tmpdir("train_resume");
    const char *full = S("%s/full", d), *killed = S("%s/killed", d);
    const char *common = "--steps 8 --lr 2e-3 --lora-dropout 0.1 --grad-accum 2 --warmup 2 --schedule cosine "
                         "--eval-every 4 --log-every 1";
    const char *a = e2e_args(S("%s --out '%s'", common, full));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_MSG(run(a) == 0, "%s", err_text);
    int rc = run(e2e_args(S("%s --save-every 3 --stop-after 5 --out '%s'", common, killed)));
    CHECK_MSG(rc == 128 + SIGKILL, "the --stop-after run exited %d, expected SIGKILL", rc);
    CHECK_MSG(!ls_exists(S("%s/adapter", killed)), "a killed run left an adapter");
    int n;
    metric(killed, 5, "loss", &n);
    CHECK_MSG(n == 1, "the killed run logged step 5 %d times", n);
    CHECK_MSG(run(S("train --resume --out '%s'", killed)) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "resuming from step 3");
    CHECK_MSG(same_bytes(S("%s/adapter/adapter_model.safetensors", full), S("%s/adapter/adapter_model.safetensors", killed)),
              "resumed adapter differs from the uninterrupted run's");
    CHECK(same_bytes(S("%s/adapter/adapter_config.json", full), S("%s/adapter/adapter_config.json", killed)));
    CHECK_MSG(same_bytes(S("%s/adapter_init.safetensors", full), S("%s/adapter_init.safetensors", killed)),
              "resumed run's initial factors (A0) differ from the uninterrupted run's");
    for (long s = 1; s <= 8; s++) {
        double l1 = metric(full, s, "loss", NULL), l2 = metric(killed, s, "loss", &n);
        CHECK_MSG(n == 1, "resumed metrics.jsonl has step %ld %d times", s, n);
        CHECK_MSG(l1 == l2, "step %ld: loss %.9g uninterrupted, %.9g resumed", s, l1, l2);
    }
    CHECK(metric(full, 8, "val_loss", NULL) == metric(killed, 8, "val_loss", NULL));
    // killed before its first checkpoint: --resume starts again from step 0
    const char *early = S("%s/early", d);
    CHECK_INT(run(e2e_args(S("%s --save-every 3 --stop-after 1 --out '%s'", common, early))), 128 + SIGKILL);
    CHECK_MSG(run(S("train --resume --out '%s'", early)) == 0, "%s", err_text);
    CHECK(same_bytes(S("%s/adapter/adapter_model.safetensors", full), S("%s/adapter/adapter_model.safetensors", early)));
    metric(early, 0, "val_loss", &n);
    CHECK_MSG(n == 1, "metrics.jsonl of a run restarted from step 0 has step 0's evaluation %d times", n);
    // resuming with a changed training option is refused, naming the key
    expect_error(S("train --resume --out '%s' --rank 4", killed), 1,
                 "[lora] rank (--rank): the run was started with '8', found '4'", NULL);
}

// Copies src to dst (bytes), then appends `extra` (NULL: nothing).
static void copy_file(const char *src, const char *dst, const char *extra) {
    size_t n;
    char *b = ls_read_file(src, &n);
    CHECK_MSG(b != NULL, "%s", ls_error());
    if (!b) return;
    size_t ne = extra ? strlen(extra) : 0;
    char *all = ls_malloc(n + ne + 1);
    memcpy(all, b, n);
    if (ne) memcpy(all + n, extra, ne);
    CHECK_INT(ls_write_file_atomic(dst, all, n + ne), 0);
    free(all);
    free(b);
}

// --resume checks the inputs by what they hold (their SHA-256 in the
// checkpoint), not by where they are: a run preempted on one machine and
// resumed on another that mounts the model and data elsewhere ends with the
// uninterrupted run's adapter, and config.ini then names the new locations;
// a data file that changed under the run is refused, naming the option and
// leaving the run as it was. The manifest records each input's fingerprint
// (stories260K.bin's is the one in the assets' MANIFEST.md).
static void test_resume_checks_inputs_by_content_not_location(void) {
    const char *d = ls_test_tmpdir("train_resume_moved");
    const char *full = S("%s/full", d), *killed = S("%s/killed", d), *moved = S("%s/moved", d);
    const char *common = "--steps 6 --lr 2e-3 --eval-every 3";
    const char *a = e2e_args(S("%s --out '%s'", common, full));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_MSG(run(a) == 0, "%s", err_text);
    CHECK_INT(run(e2e_args(S("%s --save-every 2 --stop-after 3 --out '%s'", common, killed))), 128 + SIGKILL);
    CHECK_INT(ls_mkdir_p(moved), 0);
    const char *model = S("%s/stories260K.bin", moved), *tok = S("%s/tok512.bin", moved),
               *data = S("%s/valid.txt", moved), *changed = S("%s/valid_changed.txt", moved);
    copy_file(asset("models/stories260K/stories260K.bin"), model, NULL);
    copy_file(asset("models/stories260K/tok512.bin"), tok, NULL);
    copy_file(asset("data/e2e/valid.txt"), data, NULL);
    copy_file(asset("data/e2e/valid.txt"), changed, "name : Aromi | area : city centre||Aromi is in the city centre .\n");
    const char *config = S("%s/config.ini", killed);
    char *before = ls_read_file(config, NULL);
    expect_error(S("train --resume --out '%s' --data '%s'", killed, changed), 1,
                 "--resume: [data] train (--data): '", NULL);
    CHECK_STR_CONTAINS(err_text, "valid_changed.txt' does not hold what the run was trained on (sha256 ");
    char *after = ls_read_file(config, NULL);
    CHECK_MSG(before && after && !strcmp(before, after), "a refused --resume changed %s", config);
    CHECK_MSG(run(S("train --resume --out '%s' --model '%s' --tokenizer '%s' --data '%s'", killed, model, tok, data)) == 0,
              "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "resuming from step 2");
    CHECK_MSG(same_bytes(S("%s/adapter/adapter_model.safetensors", full), S("%s/adapter/adapter_model.safetensors", killed)),
              "the adapter of a run resumed with its inputs moved differs from the uninterrupted run's");
    char *ini = ls_read_file(config, NULL);
    CHECK_STR_CONTAINS(ini, S("path = %s\n", model));
    CHECK_STR_CONTAINS(ini, S("train = %s\n", data));
    char *manifest = ls_read_file(S("%s/manifest.json", killed), NULL);
    cJSON *root = cJSON_Parse(manifest);
    const cJSON *in = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "inputs"), "model");
    const cJSON *path = cJSON_GetObjectItem(in, "path"), *sha = cJSON_GetObjectItem(in, "sha256");
    CHECK_MSG(cJSON_IsString(path) && !strcmp(path->valuestring, model), "manifest inputs.model.path: %s",
              cJSON_IsString(path) ? path->valuestring : "(none)");
    CHECK_MSG(cJSON_IsString(sha) && !strcmp(sha->valuestring, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"),
              "manifest inputs.model.sha256: %s", cJSON_IsString(sha) ? sha->valuestring : "(none)");
    CHECK_MSG(cJSON_IsObject(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "inputs"), "val_data")),
              "the manifest records no val_data fingerprint");
    cJSON_Delete(root);
    free(manifest);
    free(ini);
    free(before);
    free(after);
}

// Full fine-tuning: the same engine with every weight trainable; the saved
// canonical parameters resume to the same bits too.
static void test_full_finetune_resume_gives_identical_parameters(void) {
    const char *d = ls_test_tmpdir("train_full");
    const char *full = S("%s/full", d), *killed = S("%s/killed", d);
    const char *common = "--full --steps 6 --lr 1e-3 --weight-decay 0.1";
    const char *a = e2e_args(S("%s --out '%s'", common, full));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_MSG(run(a) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "trainable params: 260,032 || all params: 260,032 || trainable%: 100.0000");
    CHECK_INT(run(e2e_args(S("%s --save-every 2 --stop-after 3 --out '%s'", common, killed))), 128 + SIGKILL);
    CHECK_MSG(run(S("train --resume --out '%s'", killed)) == 0, "%s", err_text);
    const char *f1 = S("%s/full/model.safetensors", full);
    CHECK_MSG(same_bytes(f1, S("%s/full/model.safetensors", killed)),
              "resumed full fine-tuning differs from the uninterrupted run");
    st_file f;
    if (st_open(&f, f1) == 0) {
        CHECK_STR_CONTAINS(st_metadata(&f, "format"), "lorascope-canonical");
        CHECK(st_find(&f, "model.layers.4.mlp.down_proj.weight") != NULL);
        st_close(&f);
    }
}

// lr = 1e30 makes the first update enormous and the next forward overflow.
// The loop's check stops the run at step 2, names it, keeps step 1's
// checkpoint and writes no adapter.
static void test_nan_loss_stops_naming_step_and_keeps_checkpoint(void) {
    const char *out = S("%s/run", ls_test_tmpdir("train_nan"));
    const char *a = e2e_args(S("--steps 5 --lr 1e30 --save-every 1 --log-every 100 --out '%s'", out));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    int rc = run(a);
    CHECK_MSG(rc == 1, "exit %d, expected 1; stderr: %s", rc, err_text);
    CHECK_STR_CONTAINS(err_text, "lorascope train: step 2: training loss is");
    CHECK_STR_CONTAINS(err_text, "the last good checkpoint (step 1)");
    st_file f;
    CHECK_MSG(st_open(&f, S("%s/checkpoint/state.safetensors", out)) == 0, "no checkpoint kept: %s", ls_error());
    if (f.path) {
        CHECK(!strcmp(st_metadata(&f, "step"), "1"));
        st_close(&f);
    }
    CHECK(!ls_exists(S("%s/adapter", out)));
    char *man = ls_read_file(S("%s/manifest.json", out), NULL);
    CHECK_STR_CONTAINS(man, "\"status\":\t\"failed\"");
    free(man);
}

// LoRA (r 8 on q, v) on E2E lowers the validation loss on 64 fixed test
// completions well below the base model's (margin: see the note below).
static void test_e2e_lora_lowers_validation_loss(void) {
    const char *out = S("%s/run", ls_test_tmpdir("train_e2e"));
    const char *a = e2e_args(S("--steps 60 --batch-size 8 --lr 3e-3 --warmup 5 --eval-max 64 --out '%s'", out));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_MSG(run(a) == 0, "%s", err_text);
    double before = metric(out, 0, "val_loss", NULL), after = metric(out, 60, "val_loss", NULL);
    CHECK_MSG(before - after >= E2E_MIN_DROP, "validation loss %.4f before, %.4f after 60 steps: drop < %g", before,
              after, E2E_MIN_DROP);
}

// `lorascope eval` with the run's adapter merged into the base gives the loss
// the run measured with the adapter unmerged on the same items and batches.
static void test_eval_cli_reproduces_training_validation_loss(void) {
    const char *d = ls_test_tmpdir("train_eval");
    const char *out = S("%s/run", d), *json = S("%s/eval.json", d);
    const char *a = e2e_args(S("--steps 5 --lr 3e-3 --out '%s'", out));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_MSG(run(a) == 0, "%s", err_text);
    const char *model = asset("models/stories260K/stories260K.bin"), *test = asset("data/e2e/test.txt");
    CHECK_MSG(run(S("eval --model '%s' --adapter '%s' --data '%s' --task e2e --seq-len 64 --batch-size 4 "
                    "--max-items 16 --out '%s'",
                    model, out, test, json)) == 0,
              "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "result: ");
    char *text = ls_read_file(json, NULL);
    cJSON *o = cJSON_Parse(text);
    const cJSON *loss = cJSON_GetObjectItem(o, "loss");
    CHECK(cJSON_IsNumber(loss));
    // merged weights vs the unmerged adapter: float rounding only (1e-5 relative)
    if (cJSON_IsNumber(loss)) CHECK_CLOSE(loss->valuedouble, metric(out, 5, "val_loss", NULL), 1e-5, 0);
    cJSON_Delete(o);
    free(text);
    // without the adapter: the base model's loss, which the run logged at step 0 (same bits)
    CHECK_MSG(run(S("eval --model '%s' --data '%s' --task e2e --seq-len 64 --batch-size 4 --max-items 16", model,
                    test)) == 0,
              "%s", err_text);
    const char *l = strstr(out_text, "loss ");
    CHECK(l != NULL);
    if (l) CHECK_CLOSE(strtod(l + 5, NULL), metric(out, 0, "val_loss", NULL), 1e-6, 0);
}

// GPT-2 through the command line: a tiny HF GPT-2 with the byte tokenizer
// trains c_attn and the MLP's c_proj (PEFT's forms), writes a merged HF
// checkpoint that `lorascope eval` reads; loralib's q/v row blocks are refused.
static void test_gpt2_trains_c_attn_and_q_v_row_blocks(void) {
    const char *d = ls_test_tmpdir("train_gpt2");
    const char *data = S("%s/data.jsonl", d), *out = S("%s/run", d), *merged = S("%s/merged", d),
               *bad = S("%s/bad", d);
    FILE *fp = fopen(data, "w");
    for (int i = 0; i < 40; i++)
        fprintf(fp, "{\"context\": \"name %d |\", \"completion\": \" the number is %d.\"}\n", i, i * 7 % 13);
    fclose(fp);
    const char *base = "data/peft/gpt2_tiny/base";
    CHECK_MSG(run(S("train --model %s --tokenizer bytes --task jsonl --data '%s' --val-frac 0.2 --seq-len 48 "
                    "--steps 4 --batch-size 4 --lora c_attn,mlp_proj --threads 2 --out '%s' --merged-out '%s'",
                    base, data, out, merged)) == 0,
              "%s", err_text);
    char *text = ls_read_file(S("%s/adapter/adapter_config.json", out), NULL);
    CHECK_STR_CONTAINS(text, "\"attn.c_attn\"");
    CHECK_STR_CONTAINS(text, "\"mlp.c_proj\"");
    free(text);
    CHECK(ls_exists(S("%s/config.json", merged)));
    CHECK_MSG(run(S("eval --model '%s' --tokenizer bytes --data '%s' --task jsonl --seq-len 48", merged, data)) == 0,
              "%s", err_text);
    // q and v row blocks train and export as one PEFT c_attn module of rank 2r
    CHECK_MSG(run(S("train --model %s --tokenizer bytes --task jsonl --data '%s' --val-frac 0.2 --seq-len 48 --steps 2 "
                    "--batch-size 4 --lora q,v --rank 4 --threads 2 --out '%s'", base, data, bad)) == 0, "%s", err_text);
    text = ls_read_file(S("%s/adapter/adapter_config.json", bad), NULL);
    CHECK_STR_CONTAINS(text, "\"attn.c_attn\"");
    CHECK_STR_CONTAINS(text, "\"r\":\t8");
    free(text);
    // and their initial factors take the same folded layout (A0 beside the adapter)
    CHECK(ls_exists(S("%s/adapter_init.safetensors", bad)));
}

static void test_bad_input_gives_one_line_error_and_no_output(void) {
    const char *model = asset("models/stories260K/stories260K.bin"), *valid = asset("data/e2e/valid.txt");
    if (!model || !valid) SKIP("stories260K or E2E data not in the assets");
    const char *d = ls_test_tmpdir("train_bad");
    const char *out = S("%s/run", d);
    const char *base = S("train --model '%s' --task e2e --data '%s' --seq-len 64 --steps 2 --out '%s'", model, valid, out);
    // values out of range, unknown options, missing fields: usage errors (2)
    expect_error(S("%s --rank 0", base), 2, "--rank: expected an integer in [1, 65536], found '0'", out);
    expect_error(S("%s --lr -1", base), 2, "--lr: expected a number in (0, 1e+30], found '-1'", out);
    expect_error(S("%s --lora-dropout 1", base), 2, "--lora-dropout: expected a number in [0, 1), found '1'", out);
    expect_error(S("%s --warmup 5", base), 2, "[optim] warmup (--warmup): expected at most steps = 2, found 5", out);
    expect_error(S("%s --frobnicate 3", base), 2, "unknown option '--frobnicate'", out);
    expect_error(S("train --task e2e --data '%s' --out '%s'", valid, out), 2, "[model] path (--model): required", out);
    // checks that need the model or the data: runtime errors (1)
    expect_error(S("%s --rank 40", base), 1,
                 "[lora] rank (--rank): expected 1..min(d_out, d_in) = 32 for module v (32 x 64), found 40", out);
    expect_error(S("%s --lora q,zz", base), 1,
                 "[lora] modules (--lora): lora modules: \"q,zz\": expected one of q k v o gate up down all, found \"zz\"",
                 out);
    expect_error(S("%s --layers 0,9", base), 1,
                 "[lora] layers (--layers): expected 'all' or layer numbers in [0, 5), found '0,9'", out);
    expect_error(S("%s --seq-len 1000", base), 1,
                 "[data] seq_len (--seq-len): expected at most the model's max_seq_len 512, found 1000", out);
    expect_error(S("%s --precision bf16", base), 1,
                 "[run] precision (--precision): expected fp32 on the cpu backend (tf32 and bf16 need --backend cuda), "
                 "found bf16", out);
    expect_error(S("%s --precision fp16", base), 2, "--precision: expected one of fp32|tf32|bf16, found 'fp16'", out);
    const char *file = S("%s/bad_e2e.txt", d);
    FILE *fp = fopen(file, "w");
    fprintf(fp, "name : A||A is a place .\nname : B||B is another .\nname : C with no separator\n");
    fclose(fp);
    expect_error(S("train --model '%s' --task e2e --data '%s' --out '%s'", model, file, out), 1,
                 "bad_e2e.txt:3: expected \"meaning representation||reference\"", out);
    expect_error(S("train --model '%s' --task e2e --data /nonexistent.txt --out '%s'", model, out), 1,
                 "/nonexistent.txt", out);
    // models: unknown family, a missing config field, tensors that do not match the config
    const char *bad_models[][2] = {
        {"{\"model_type\": \"t5\", \"hidden_size\": 64}",
         "field 'model_type': expected \"gpt2\", \"llama\", \"bert\" or \"roberta\", found \"t5\""},
        {"{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 4, \"vocab_size\": 256}", "missing field 'n_embd'"},
        {"{\"model_type\": \"gpt2\", \"n_embd\": 32, \"n_layer\": 2, \"n_head\": 4, \"vocab_size\": 256, "
         "\"n_positions\": 128}",
         "expected shape"},
    };
    for (int i = 0; i < 3; i++) {
        const char *md = S("%s/model%d", d, i);
        CHECK_INT(system(S("mkdir -p '%s' && cp '%s' '%s/'", md, ls_test_source("data/peft/gpt2_tiny/base/model.safetensors"),
                           md)),
                  0);
        ls_write_file_atomic(S("%s/config.json", md), bad_models[i][0], strlen(bad_models[i][0]));
        expect_error(S("train --model '%s' --tokenizer bytes --task e2e --data '%s' --out '%s'", md, valid, out), 1,
                     bad_models[i][1], out);
    }
    // a directory that holds something is not trained into
    const char *keep = S("%s/keep", d);
    CHECK_INT(ls_mkdir_p(keep), 0);
    ls_write_file_atomic(S("%s/note.txt", keep), "x", 1);
    expect_error(S("train --model '%s' --task e2e --data '%s' --out '%s'", model, valid, keep), 1,
                 "exists and is not empty; pass --resume", NULL);
    CHECK_INT(ls_test_count_files(keep), 1);
    // hidden dropout is an encoder's (HF's decoders differ)
    expect_error(S("train --model '%s' --task e2e --data '%s' --hidden-dropout 0.1 --out '%s'", model, valid, out), 1,
                 "[optim] hidden_dropout (--hidden-dropout): expected 0 for a llama model (an encoder's only), found 0.1",
                 out);
    expect_error(S("train --model '%s' --task e2e --data '%s' --hidden-dropout 1 --out '%s'", model, valid, out), 2,
                 "hidden-dropout", out);
    // generate / eval
    expect_error(S("generate --model '%s'", model), 2, "--prompt: required", NULL);
    expect_error(S("generate --model '%s' --prompt hi --adapter /nonexistent", model), 1, "/nonexistent", NULL);
    expect_error(S("eval --model '%s' --data '%s' --task summarize", model, valid), 2,
                 "--task: task: expected lm, e2e, sst2 or jsonl, found 'summarize'", NULL);
}

// A copy of stories260K.bin in a temp dir with `n` floats from float offset
// `at` set to `value`; NULL if the asset is missing.
static const char *corrupt_stories(const char *dir, const char *name, long at, int n, float value) {
    const char *p = asset("models/stories260K/stories260K.bin");
    if (!p) return NULL;
    size_t size;
    char *buf = ls_read_file(p, &size);
    for (int i = 0; i < n; i++) memcpy(buf + 28 + 4 * (at + i), &value, 4);
    const char *path = S("%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    fwrite(buf, 1, size, fp);
    fclose(fp);
    free(buf);
    return path;
}

static void test_non_finite_weights_losses_and_logits_are_errors(void) {
    const char *tok = asset("models/stories260K/tok512.bin"), *valid = asset("data/e2e/valid.txt");
    // wq of layer 0 follows the embedding (512 x 64) and rms_att (5 x 64); the
    // final RMSNorm follows the embedding and the five layers.
    long wq0 = 512 * 64 + 5 * 64, rms_final = 512 * 64 + 5 * (64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 3 * 172 * 64);
    const char *dir = ls_test_tmpdir("non_finite"), *out = S("%s/out", dir);
    const char *inf = corrupt_stories(dir, "inf.bin", wq0 + 17, 1, INFINITY);
    const char *nan = corrupt_stories(dir, "nan.bin", wq0 + 17, 1, NAN);
    const char *big = corrupt_stories(dir, "big.bin", rms_final, 64, 3e38f); // finite, but the logits overflow
    if (!tok || !valid || !inf) SKIP("stories260K or E2E data not in the assets");
    const char *weights = "tensor 'model.layers.0.self_attn.q_proj.weight': element 17 is";
    expect_error(S("eval --model '%s' --tokenizer '%s' --data '%s' --task e2e --seq-len 64 --max-items 4 --out '%s/e.json'",
                   inf, tok, valid, out), 1, S("inf.bin: %s inf (expected finite weights)", weights), out);
    expect_error(S("generate --model '%s' --tokenizer '%s' --prompt hi --steps 8", nan, tok), 1,
                 S("nan.bin: %s nan (expected finite weights)", weights), NULL);
    expect_error(S("train --model '%s' --tokenizer '%s' --task e2e --data '%s' --seq-len 64 --steps 2 --out '%s'", inf,
                   tok, valid, out), 1, S("inf.bin: %s inf (expected finite weights)", weights), out);
    expect_error(S("eval --model '%s' --tokenizer '%s' --data '%s' --task e2e --seq-len 64 --max-items 4 --out '%s/e.json'",
                   big, tok, valid, out), 1, "evaluation loss is nan on 4 items", out);
    expect_error(S("generate --model '%s' --tokenizer '%s' --prompt hi --steps 8", big, tok), 1,
                 "model_generate: position 0: logit 0 is nan (expected finite logits", NULL);
}

static void test_batch_beyond_physical_memory_is_refused_before_allocating(void) {
    const char *m = asset("models/stories260K/stories260K.bin"), *valid = asset("data/e2e/valid.txt");
    if (!m || !valid) SKIP("stories260K or E2E data not in the assets");
    const char *out = S("%s/out", ls_test_tmpdir("huge_batch"));
    // 65536 x 256 positions of stories260K need ~1.17e12 bytes of activations
    // (LoRA q, v: the inputs of the frozen o, MLP and down projections kept for one layer).
    expect_error(S("train --model '%s' --task e2e --data '%s' --seq-len 256 --steps 2 --batch-size 65536 --out '%s'", m,
                   valid, out), 1, "model_reserve: batch size 65536 x sequence length 256 needs 1.17e+12 bytes", out);
    CHECK_STR_CONTAINS(err_text, "more than this machine's physical memory");
}

// Two trainings of one --out cannot meet: while another process (here, this
// test) holds the run directory's lock, `lorascope train` refuses, naming its
// pid, and writes nothing; once released, the same command trains.
static void test_train_refuses_an_out_dir_locked_by_another_process(void) {
    const char *out = S("%s/run", ls_test_tmpdir("train_locked"));
    const char *a = e2e_args(S("--steps 2 --out '%s'", out));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    ls_lock lock;
    CHECK_MSG(ls_lock_acquire(out, "lorascope test", &lock, NULL) == 0, "%s", ls_error());
    expect_error(a, 1, S("%s: locked by lorascope test (pid %ld); wait for it or choose another --out", out, (long)getpid()),
                 NULL);
    CHECK_MSG(ls_test_count_files(out) == 1, "the refused run wrote into %s (%d files, only .lock expected)", out,
              ls_test_count_files(out));
    ls_lock_release(&lock);
    CHECK_MSG(run(a) == 0, "after release: %s", err_text);
    CHECK_MSG(!ls_exists(S("%s/.lock", out)), "a finished run left its .lock");
}

// Temporary files of writes a kill interrupted ("<name>.tmp.<pid>") are gone
// after the run resumes, or restarts in a directory holding nothing else.
static void test_stale_temp_files_are_removed_when_a_run_resumes_or_restarts(void) {
    const char *d = ls_test_tmpdir("train_stale_tmp");
    const char *killed = S("%s/killed", d), *fresh = S("%s/fresh", d);
    const char *a = e2e_args(S("--steps 4 --save-every 2 --stop-after 3 --out '%s'", killed));
    if (!a) SKIP("stories260K or E2E data not in the assets");
    CHECK_INT(run(a), 128 + SIGKILL);
    const char *stale[] = {S("%s/checkpoint/state.safetensors.tmp.99999", killed), S("%s/metrics.jsonl.tmp.99999", killed),
                           S("%s/config.ini.tmp.%ld", killed, (long)getpid())};
    for (int i = 0; i < 3; i++) CHECK(ls_write_file_atomic(stale[i], "x", 1) == 0);
    CHECK_MSG(run(S("train --resume --out '%s'", killed)) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "resuming from step 2");
    for (int i = 0; i < 3; i++) CHECK_MSG(!ls_exists(stale[i]), "%s still there after the resumed run", stale[i]);
    // killed during its first checkpoint: only temp files are left; a new run starts there
    const char *stale2[] = {S("%s/checkpoint/state.safetensors.tmp.99999", fresh), S("%s/config.ini.tmp.99999", fresh)};
    for (int i = 0; i < 2; i++) CHECK(ls_mkdir_p(S("%s/checkpoint", fresh)) == 0 && ls_write_file_atomic(stale2[i], "x", 1) == 0);
    CHECK_MSG(run(e2e_args(S("--steps 2 --out '%s'", fresh))) == 0, "%s", err_text);
    for (int i = 0; i < 2; i++) CHECK_MSG(!ls_exists(stale2[i]), "%s still there after the new run", stale2[i]);
    CHECK(ls_exists(S("%s/adapter/adapter_model.safetensors", fresh)));
}

static void test_config_file_with_flag_overrides_through_cli(void) {
    const char *m = asset("models/stories260K/stories260K.bin"), *v = asset("data/e2e/valid.txt");
    if (!m || !v) SKIP("stories260K or E2E data not in the assets");
    const char *d = ls_test_tmpdir("train_ini");
    const char *ini = S("%s/run.ini", d), *out = S("%s/run", d), *out2 = S("%s/run2", d);
    const char *text = S("[model]\npath = %s\n[data]\ntask = e2e\ntrain = %s\nval_frac = 0.05\nseq_len = 48\n"
                         "eval_max = 8\n[lora]\nmodules = q,k\nrank = 2\n[optim]\nsteps = 2\nbatch_size = 2\n"
                         "[run]\nthreads = 1\n",
                         m, v);
    ls_write_file_atomic(ini, text, strlen(text));
    CHECK_MSG(run(S("train --config '%s' --rank 4 --out '%s'", ini, out)) == 0, "%s", err_text);
    char *cfg = ls_read_file(S("%s/config.ini", out), NULL);
    CHECK_STR_CONTAINS(cfg, "rank = 4\n");
    CHECK_STR_CONTAINS(cfg, "modules = q,k\n");
    CHECK_STR_CONTAINS(cfg, "tok512.bin"); // resolved: the tokenizer found beside the model
    free(cfg);
    char *man = ls_read_file(S("%s/manifest.json", out), NULL);
    CHECK_STR_CONTAINS(man, "\"git_commit\"");
    CHECK_STR_CONTAINS(man, "\"status\":\t\"completed\"");
    free(man);
    // a misspelt key: one line naming file, line and key; nothing written
    const char *more = S("%s[optim]\nwarmpu = 3\n", text);
    ls_write_file_atomic(ini, more, strlen(more));
    expect_error(S("train --config '%s' --out '%s'", ini, out2), 2,
                 "run.ini:18: [optim] warmpu: unknown key 'warmpu' in section [optim]", out2);
}

// The FLOPs that a row's step really ran through its products, over the
// bench's count (bench.h's formula): "its products ran R x the counted FLOPs".
static double ran_over_counted(const char *shape, const char *mode) {
    const char *at = strstr(err_text, S("lorascope %-12s %-4s 1 thr:", shape, mode)), *ran = at ? strstr(at, "ran ") : NULL;
    double ratio = -1;
    CHECK_MSG(ran && sscanf(ran, "ran %lf x the counted FLOPs", &ratio) == 1, "no FLOP ratio for %s %s in:\n%s", shape,
              mode, err_text);
    return ratio;
}

// The last column of a table row: "NN%".
static double last_percent(const char *row) {
    const char *end = strchr(row, '\n'), *p = end;
    while (p && p > row && p[-1] != '%') p--;
    const char *bar = p;
    while (bar && bar > row && bar[-1] != '|') bar--;
    double v = -1;
    CHECK_MSG(bar && sscanf(bar, " %lf%%", &v) == 1, "no last %% column in: %.300s", row);
    return v;
}

static void test_bench_prints_lora_and_full_rows(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not in the assets");
    CHECK_MSG(run("bench --shape stories260K --threads 1 --steps 1 --no-torch") == 0, "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "| stories260K | 8 x 256 | lora | 8960 | 1 |");
    CHECK_STR_CONTAINS(out_text, "| stories260K | 8 x 256 | full | 260032 | 1 |");
    // the count misses only the LM head's and the norms' rounding: within 0.2%
    // (measured 0.9987 for LoRA, 1.0000 full; every shape within 0.0013)
    CHECK_NEAR(ran_over_counted("stories260K", "lora"), 1.0, 0.002);
    CHECK_NEAR(ran_over_counted("stories260K", "full"), 1.0, 0.002);
    const char *row = strstr(out_text, "| stories260K | 8 x 256 | lora |");
    if (row) {
        double alone = last_percent(row);
        CHECK_MSG(alone > 0 && alone < 1000, "products alone %.0f%%", alone);
    }
    CHECK_STR_CONTAINS(out_text, "the median of 2048^3 products through the backend gemm");
    expect_error("bench --shape gpt5", 2,
                 "--shape: expected one of stories260K, llama512, gpt2-768, smollm2-135m, minilm-l6", NULL);
    CHECK_STR_CONTAINS(err_text, "found 'gpt5'");
}

// The encoder row trains what `train --task sst2` trains: LoRA q,v r 8 over 6
// layers (6 x 2 x 8 x (384 + 384) = 73,728) and the new classifier (384 x 2 + 2,
// PEFT's modules_to_save): 74,498, PEFT's count. Its FLOPs per token, by hand
// (bench.h): N = 6 (1152 384 + 384^2 + 2 x 1536 x 384) = 10,616,832; 4N - 2 x
// 384 x 1152 + 12 x 6 x 384 x 128 (bidirectional) + 6 x 2 x 36,864 (sites) =
// 45,563,904 = 0.046 GFLOP.
static void test_bench_encoder_row_trains_the_classifier_beside_lora(void) {
    if (!ls_test_asset("models/all-MiniLM-L6-v2/model.safetensors")) SKIP("all-MiniLM-L6-v2 not in the assets");
    CHECK_MSG(run("bench --shape minilm-l6 --threads 1 --steps 1 --mode lora --no-torch") == 0, "%s", err_text);
    const char *row = strstr(out_text, "| minilm-l6 | 16 x 128 | lora | 74498 | 1 |");
    CHECK_MSG(row, "no minilm-l6 lora row with 74498 trainable in:\n%s", out_text);
    if (row) CHECK_STR_CONTAINS(row, "| 0.046 |");
    // ... and the products the step ran add up to that count (the pooler and
    // classifier, once per sequence, are the 0.01% it leaves out)
    CHECK_NEAR(ran_over_counted("minilm-l6", "lora"), 1.0, 0.002);
}

// The PyTorch side through a stand-in interpreter (LORASCOPE_PYTHON) that
// answers every job with one record: it reaches the table as median
// (slowest-fastest) and layout, its % of peak comes from the row's FLOP count
// and the row's sgemm peak (the median of its probes, inside their range),
// and the ratio is median / median.
static void test_bench_table_shows_peer_median_layout_and_ratio(void) {
    if (!ls_test_asset("models/stories260K/stories260K.bin")) SKIP("stories260K not in the assets");
    const char *py = S("%s/python", ls_test_tmpdir("bench_fake_python"));
    const char *script = "#!/bin/sh\n[ \"$1\" = -c ] && exit 0\n"
                         "echo '{\"layout\": \"omp 1 + blas 1\", \"tok_s\": 1000, \"tok_s_min\": 900, "
                         "\"tok_s_max\": 1100}'\n";
    CHECK_INT(ls_write_file_atomic(py, script, strlen(script)), 0);
    CHECK_INT(chmod(py, 0755), 0);
    setenv("LORASCOPE_PYTHON", py, 1);
    int rc = run("bench --shape stories260K --threads 1 --steps 1 --mode lora --torch");
    unsetenv("LORASCOPE_PYTHON");
    CHECK_MSG(rc == 0, "%s", err_text);
    const char *row = strstr(out_text, "| stories260K | 8 x 256 | lora | 8960 | 1 |");
    CHECK_MSG(row, "no stories260K lora row in:\n%s", out_text);
    if (!row) return;
    double ls, lo, hi, pct, pk, pk_lo, pk_hi, torch_pct, ratio, gflop, at_peak;
    int n = sscanf(row, "| stories260K | 8 x 256 | lora | 8960 | 1 | %lf (%lf-%lf) | %lf%% | %lf (%lf-%lf) | "
                        "1000 (900-1100) | %lf%% | omp 1 + blas 1 | %lf | - | %lf | %lf |",
                   &ls, &lo, &hi, &pct, &pk, &pk_lo, &pk_hi, &torch_pct, &ratio, &gflop, &at_peak);
    CHECK_MSG(n == 11, "parsed %d of 11 fields of: %.300s", n, row);
    if (n != 11) return;
    CHECK_MSG(pk > 0 && pk_lo <= pk + 0.5 && pk <= pk_hi + 0.5, "sgemm %.1f (%.1f-%.1f)", pk, pk_lo, pk_hi);
    CHECK_NEAR(ratio, ls / 1000.0, 0.006);
    CHECK_NEAR(torch_pct, 100.0 * 1000.0 / at_peak, 1.0);
    CHECK_NEAR(pct, 100.0 * ls / at_peak, 1.0);
    CHECK(lo <= ls + 0.5 && ls <= hi + 0.5);
}

// Inputs that never end, are not files, or say a thing twice: refused at once.
static void test_endless_or_odd_inputs_are_refused(void) {
    const char *model = asset("models/stories260K/stories260K.bin"), *valid = asset("data/e2e/valid.txt");
    if (!model || !valid) SKIP("stories260K or E2E data not in the assets");
    const char *d = ls_test_tmpdir("train_odd");
    const char *out = S("%s/run", d);
    expect_error(S("train --model '%s' --task e2e --data /dev/zero --out '%s'", model, out), 1,
                 "/dev/zero: expected a regular file", out);
    expect_error(S("train --config /dev/zero --out '%s'", out), 2, "/dev/zero: expected a regular file", out);
    expect_error(S("train --config '%s' --out '%s'", d, out), 2, S("%s: expected a regular file", d), out);
    const char *ini = S("%s/twice.ini", d);
    const char *text = S("[model]\npath = %s\n[optim]\nsteps = 2\nsteps = 3\n", model);
    ls_write_file_atomic(ini, text, strlen(text));
    expect_error(S("train --config '%s' --out '%s'", ini, out), 2,
                 "twice.ini:5: [optim] steps: given twice (first on line 4)", out);
    const char *bars = S("%s/bars.txt", d);
    ls_write_file_atomic(bars, "a|||b\n", 6);
    expect_error(S("train --model '%s' --task e2e --data '%s' --out '%s'", model, bars, out), 1,
                 "bars.txt:1: expected one \"||\" separator, found more '|' in \"a|||b\"", out);
}

// ----------------------------------------------------------------------------
// encoders: sequence classification (SST-2 format) with the tiny BERT

// Validation measures the 100-step LoRA run of
// test_encoder_sst2_lora_trains_resumes_and_evaluates must reach. Measured
// with seeds 1, 2, 3 (2 threads): val loss 1.1748 before, 0.4510 / 0.6676 /
// 0.6522 after (drops of 0.51 to 0.72); accuracy 0.78 / 0.66 / 0.73 (0.50 for
// a model that ignores the text).
#define ENC_MIN_DROP 0.3
#define ENC_MIN_ACCURACY 0.6

// A directory with model/ (tests/data/encoder/bert_tiny: 2 layers, dim 32,
// 3 labels, vocab 100, with a WordPiece vocab.txt written beside it),
// train.tsv (256 rows) and dev.tsv (64 rows): filler words around one
// sentiment word that decides the label.
static const char *tiny_encoder_fixture(const char *name) {
    static const char *const pos[8] = {"good", "great", "fine", "nice", "happy", "love", "best", "fun"};
    static const char *const neg[8] = {"bad", "awful", "poor", "sad", "hate", "worst", "dull", "boring"};
    static const char *const fill[16] = {"the", "a",   "movie", "film", "story", "plot", "actor",  "it",
                                         "was", "is",  "this",  "and",  "very",  "so",   "quite", "really"};
    const char *d = ls_test_tmpdir(name), *m = S("%s/model", d);
    CHECK(ls_mkdir_p(m) == 0);
    const char *files[2] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        size_t n;
        char *x = ls_read_file(ls_test_source(S("data/encoder/bert_tiny/%s", files[i])), &n);
        CHECK(x && ls_write_file_atomic(S("%s/%s", m, files[i]), x, n) == 0);
        free(x);
    }
    char buf[8192];
    size_t k = (size_t)snprintf(buf, sizeof buf, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int i = 0; i < 8; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s\n%s\n", pos[i], neg[i]);
    for (int i = 0; i < 16; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s\n", fill[i]);
    for (int i = 37; i < 100; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "w%d\n", i);
    CHECK(ls_write_file_atomic(S("%s/vocab.txt", m), buf, k) == 0);
    uint32_t x = 12345;
    for (int f = 0; f < 2; f++) {
        int rows = f ? 64 : 256;
        char *text = ls_malloc((size_t)rows * 128 + 64);
        size_t len = (size_t)sprintf(text, "sentence\tlabel\n");
        for (int r = 0; r < rows; r++) {
            int label = r % 2, n = 3 + (int)((x = x * 1103515245u + 12345u) >> 16) % 4;
            int at = (int)((x = x * 1103515245u + 12345u) >> 16) % (n + 1);
            for (int w = 0; w <= n; w++) {
                const char *word = w == at ? (label ? pos : neg)[((x = x * 1103515245u + 12345u) >> 16) % 8]
                                           : fill[((x = x * 1103515245u + 12345u) >> 16) % 16];
                len += (size_t)sprintf(text + len, "%s%s", w ? " " : "", word);
            }
            len += (size_t)sprintf(text + len, "\t%d\n", label);
        }
        CHECK(ls_write_file_atomic(S("%s/%s", d, f ? "dev.tsv" : "train.tsv"), text, len) == 0);
        free(text);
    }
    return d;
}

static const char *enc_args(const char *d, const char *extra) {
    return S("train --task sst2 --model '%s/model' --data '%s/train.tsv' --val-data '%s/dev.tsv' --batch-size 16 "
             "--seq-len 16 --threads 2 %s",
             d, d, d, extra);
}

// LoRA q, v + the classifier (PEFT's modules_to_save) on the tiny BERT: the
// validation loss falls and the accuracy rises; a run killed after step 50
// and resumed ends with the uninterrupted run's adapter, byte for byte (the
// head's weights and AdamW moments are in the checkpoint); the adapter holds
// the head as PEFT saves it; `lorascope eval` of the adapter gives the run's
// final accuracy and loss.
static void test_encoder_sst2_lora_trains_resumes_and_evaluates(void) {
    const char *d = tiny_encoder_fixture("train_encoder");
    const char *full = S("%s/full", d), *killed = S("%s/killed", d);
    const char *common = "--lora q,v --rank 4 --steps 100 --lr 3e-2 --warmup 5 --lora-dropout 0.1 --eval-every 50 "
                         "--log-every 1";
    CHECK_MSG(run(enc_args(d, S("%s --out '%s'", common, full))) == 0, "%s", err_text);
    double before = metric(full, 0, "val_loss", NULL), after = metric(full, 100, "val_loss", NULL);
    double acc = metric(full, 100, "val_accuracy", NULL);
    CHECK_MSG(before - after >= ENC_MIN_DROP, "validation loss %.4f before, %.4f after 100 steps: drop < %g", before,
              after, ENC_MIN_DROP);
    CHECK_MSG(acc >= ENC_MIN_ACCURACY, "validation accuracy %.4f after 100 steps, expected >= %g", acc,
              ENC_MIN_ACCURACY);
    CHECK_MSG(metric(full, 1, "loss", NULL) > metric(full, 100, "loss", NULL), "training loss did not fall");
    const char *ad = S("%s/adapter/adapter_model.safetensors", full);
    st_file f;
    CHECK(st_open(&f, ad) == 0);
    CHECK(st_find(&f, "base_model.model.classifier.weight") != NULL);
    CHECK(st_find(&f, "base_model.model.classifier.bias") != NULL);
    CHECK(st_find(&f, "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight") != NULL);
    st_close(&f);
    char *cfg = ls_read_file(S("%s/adapter/adapter_config.json", full), NULL);
    CHECK_STR_CONTAINS(cfg, "\"SEQ_CLS\"");
    free(cfg);

    int rc = run(enc_args(d, S("%s --save-every 30 --stop-after 50 --out '%s'", common, killed)));
    CHECK_MSG(rc == 128 + SIGKILL, "the --stop-after run exited %d, expected SIGKILL", rc);
    CHECK_MSG(run(S("train --resume --out '%s'", killed)) == 0, "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "resuming from step 30");
    CHECK_MSG(same_bytes(ad, S("%s/adapter/adapter_model.safetensors", killed)),
              "resumed adapter differs from the uninterrupted run's");
    CHECK(metric(full, 100, "val_loss", NULL) == metric(killed, 100, "val_loss", NULL));

    const char *json = S("%s/eval.json", d);
    CHECK_MSG(run(S("eval --task sst2 --model '%s/model' --adapter '%s' --data '%s/dev.tsv' --seq-len 16 "
                    "--batch-size 16 --out '%s'", d, full, d, json)) == 0,
              "%s", err_text);
    CHECK_STR_CONTAINS(out_text, "accuracy ");
    char *text = ls_read_file(json, NULL);
    cJSON *o = cJSON_Parse(text);
    const cJSON *l = cJSON_GetObjectItem(o, "loss"), *a = cJSON_GetObjectItem(o, "accuracy");
    CHECK(cJSON_IsNumber(l) && cJSON_IsNumber(a));
    // merged weights vs the unmerged adapter: float rounding only
    if (cJSON_IsNumber(l)) CHECK_CLOSE(l->valuedouble, after, 1e-4, 0);
    if (cJSON_IsNumber(a)) CHECK_CLOSE(a->valuedouble, acc, 0, 1e-6);
    cJSON_Delete(o);
    free(text);
}

// Full fine-tuning of an encoder under HF's hidden dropout (0.1): every
// weight and the head train; the canonical parameters are written and a
// killed run resumes to the same bits (the masks follow the batch index);
// the same run without the dropout ends elsewhere.
static void test_encoder_sst2_full_finetune_trains_and_resumes(void) {
    const char *d = tiny_encoder_fixture("train_encoder_full");
    const char *full = S("%s/full", d), *killed = S("%s/killed", d), *plain = S("%s/plain", d);
    const char *common = "--full --steps 20 --lr 3e-3 --eval-every 20";
    CHECK_MSG(run(enc_args(d, S("%s --hidden-dropout 0.1 --out '%s'", common, full))) == 0, "%s", err_text);
    double before = metric(full, 0, "val_loss", NULL), after = metric(full, 20, "val_loss", NULL);
    CHECK_MSG(before - after >= ENC_MIN_DROP, "validation loss %.4f before, %.4f after 20 full steps", before, after);
    char *ini = ls_read_file(S("%s/config.ini", full), NULL);
    CHECK_STR_CONTAINS(ini, "hidden_dropout = 0.1");
    free(ini);
    CHECK_INT(run(enc_args(d, S("%s --hidden-dropout 0.1 --save-every 7 --stop-after 10 --out '%s'", common, killed))),
              128 + SIGKILL);
    CHECK_MSG(run(S("train --resume --out '%s'", killed)) == 0, "%s", err_text);
    CHECK_MSG(same_bytes(S("%s/full/model.safetensors", full), S("%s/full/model.safetensors", killed)),
              "resumed full fine-tuning differs from the uninterrupted run's");
    CHECK_MSG(run(enc_args(d, S("%s --out '%s'", common, plain))) == 0, "%s", err_text);
    CHECK_MSG(!same_bytes(S("%s/full/model.safetensors", full), S("%s/full/model.safetensors", plain)),
              "--hidden-dropout 0.1 trained the same weights as no dropout");
}

// The val_loss of eval --adapter RUN (the run's saved tensors loaded into the base).
static double eval_loss(const char *args, const char *json) {
    CHECK_MSG(run(S("%s --out '%s'", args, json)) == 0, "%s", err_text);
    char *text = ls_read_file(json, NULL);
    cJSON *o = cJSON_Parse(text);
    const cJSON *l = cJSON_GetObjectItem(o, "loss");
    double v = cJSON_IsNumber(l) ? l->valuedouble : NAN;
    cJSON_Delete(o);
    free(text);
    return v;
}

// BitFit and FT^Top2 on a decoder (tiny GPT-2): PEFT's count line, the saved
// tensors (bitfit/: only biases; full/: every tensor), `eval --adapter RUN`
// gives the run's own validation loss; a llama model refuses BitFit in one line.
static void test_gpt2_bitfit_and_fttop2_train_save_and_evaluate(void) {
    const char *d = ls_test_tmpdir("train_methods");
    const char *data = S("%s/data.jsonl", d);
    FILE *fp = fopen(data, "w");
    for (int i = 0; i < 40; i++)
        fprintf(fp, "{\"context\": \"name %d |\", \"completion\": \" the number is %d.\"}\n", i, i * 7 % 13);
    fclose(fp);
    const char *methods[2] = {"bitfit", "fttop2"}, *files[2] = {"bitfit", "full"};
    const char *counts[2] = {"trainable params: 1,472 || all params: 124,672 || trainable%: 1.1807",
                             "trainable params: 99,968 || all params: 124,672 || trainable%: 80.1848"};
    for (int k = 0; k < 2; k++) {
        const char *out = S("%s/%s", d, methods[k]);
        CHECK_MSG(run(S("train --model data/peft/gpt2_tiny/base --tokenizer bytes --task jsonl --data '%s' --val-frac 0.2 "
                        "--seq-len 48 --steps 4 --batch-size 4 --lr 1e-2 --method %s --threads 2 --out '%s'",
                        data, methods[k], out)) == 0, "%s", err_text);
        CHECK_STR_CONTAINS(out_text, counts[k]);
        const char *saved = S("%s/%s/model.safetensors", out, files[k]);
        st_file f;
        CHECK_MSG(st_open(&f, saved) == 0, "%s", ls_error());
        if (!f.n_tensors) continue;
        CHECK(st_find(&f, "transformer.h.1.attn.c_attn.bias") != NULL);
        CHECK((st_find(&f, "transformer.h.1.attn.c_attn.weight") != NULL) == (k == 1));
        st_close(&f);
        double l = eval_loss(S("eval --model data/peft/gpt2_tiny/base --tokenizer bytes --adapter '%s' --data '%s' "
                               "--task jsonl --seq-len 48 --batch-size 4", out, data), S("%s/%s.json", d, methods[k]));
        double base = eval_loss(S("eval --model data/peft/gpt2_tiny/base --tokenizer bytes --data '%s' --task jsonl "
                                  "--seq-len 48 --batch-size 4", data), S("%s/base.json", d));
        CHECK_MSG(l < base, "%s: eval loss %.5f with the run's tensors, %.5f without", methods[k], l, base);
    }
    const char *out = S("%s/llama", d);
    expect_error(S("train --model data/peft/llama_tiny/base --tokenizer bytes --task jsonl --data '%s' --steps 1 "
                   "--method bitfit --out '%s'", data, out), 1,
                 "data/peft/llama_tiny/base: bitfit: a llama model has no bias terms", out);
    expect_error(S("train --model data/peft/gpt2_tiny/base --data '%s' --full --method bitfit --out '%s'", data, out), 2,
                 "--full is --method full", out);
}

// BitFit and FT^Top2 on an encoder: validation loss falls, a killed run
// resumes to the same bits (the packed segments in the checkpoint), and
// `eval --adapter RUN` reproduces the run's validation loss.
static void test_encoder_bitfit_and_fttop2_train_resume_and_evaluate(void) {
    const char *d = tiny_encoder_fixture("train_encoder_methods");
    const char *methods[2] = {"bitfit", "fttop2"}, *files[2] = {"bitfit", "full"};
    for (int k = 0; k < 2; k++) {
        const char *full = S("%s/%s", d, methods[k]), *killed = S("%s/%s-killed", d, methods[k]);
        const char *common = S("--method %s --steps 20 --lr 3e-2 --eval-every 20", methods[k]);
        CHECK_MSG(run(enc_args(d, S("%s --out '%s'", common, full))) == 0, "%s", err_text);
        double before = metric(full, 0, "val_loss", NULL), after = metric(full, 20, "val_loss", NULL);
        CHECK_MSG(after < before, "%s: validation loss %.4f before, %.4f after 20 steps", methods[k], before, after);
        CHECK_INT(run(enc_args(d, S("%s --save-every 7 --stop-after 10 --out '%s'", common, killed))), 128 + SIGKILL);
        CHECK_MSG(run(S("train --resume --out '%s'", killed)) == 0, "%s", err_text);
        const char *saved = S("%s/%s/model.safetensors", full, files[k]);
        CHECK_MSG(same_bytes(saved, S("%s/%s/model.safetensors", killed, files[k])),
                  "%s: resumed run differs from the uninterrupted run's", methods[k]);
        double l = eval_loss(S("eval --task sst2 --model '%s/model' --adapter '%s' --data '%s/dev.tsv' --seq-len 16 "
                               "--batch-size 16", d, full, d), S("%s/%s.json", d, methods[k]));
        CHECK_CLOSE(l, after, 1e-5, 0);
    }
}

// Adapter^H on the tiny GPT-2 and Adapter^L on the tiny BERT: the saved
// adapters (and the encoder's classifier, adapters/head.safetensors), and
// `eval --adapter RUN` (the adapters attached, not merged) gives the run's
// final validation loss on the same items; the file itself loads too; a
// decoder's adapters on an encoder are refused in one line.
static void test_adapter_runs_train_save_and_evaluate_to_their_validation_loss(void) {
    const char *d = ls_test_tmpdir("train_adapters");
    const char *data = S("%s/train.jsonl", d), *val = S("%s/val.jsonl", d), *out = S("%s/h", d);
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(f ? val : data, "w");
        for (int i = 0; i < (f ? 8 : 32); i++)
            fprintf(fp, "{\"context\": \"name %d |\", \"completion\": \" the number is %d.\"}\n", i + 40 * f, i * 7 % 13);
        fclose(fp);
    }
    CHECK_MSG(run(S("train --model data/peft/gpt2_tiny/base --tokenizer bytes --task jsonl --data '%s' --val-data '%s' "
                    "--seq-len 48 --steps 4 --eval-every 4 --batch-size 4 --lr 1e-2 --method adapter-h --adapter-size 4 "
                    "--threads 2 --out '%s'", data, val, out)) == 0, "%s", err_text);
    const char *saved = S("%s/adapters/model.safetensors", out);
    st_file f;
    CHECK_MSG(st_open(&f, saved) == 0, "%s", ls_error());
    CHECK(st_find(&f, "transformer.h.1.adapter_attn.up.weight") != NULL);
    CHECK(st_find(&f, "transformer.h.1.adapter_mlp.down.bias") != NULL);
    CHECK_STR_CONTAINS(st_metadata(&f, "kind") ? st_metadata(&f, "kind") : "none", "adapter-h");
    st_close(&f);
    double trained = metric(out, 4, "val_loss", NULL), base = metric(out, 0, "val_loss", NULL);
    const char *ev = S("eval --model data/peft/gpt2_tiny/base --tokenizer bytes --data '%s' --task jsonl --seq-len 48 "
                       "--batch-size 4", val);
    double l = eval_loss(S("%s --adapter '%s'", ev, out), S("%s/h.json", d));
    printf("  gpt2 adapter-h: val loss %.6f at step 0, %.6f at step 4; eval --adapter %.6f\n", base, trained, l);
    CHECK_CLOSE(l, trained, 1e-5, 0);
    CHECK_MSG(fabs(l - base) > 1e-4, "eval --adapter gave the base's loss %.6f: the adapters were not attached", base);
    CHECK_CLOSE(eval_loss(S("%s --adapter '%s'", ev, saved), S("%s/h2.json", d)), trained, 1e-5, 0);

    const char *e = tiny_encoder_fixture("train_encoder_adapters"), *eo = S("%s/l", e);
    CHECK_MSG(run(enc_args(e, S("--method adapter-l --adapter-size 4 --steps 10 --lr 1e-2 --eval-every 10 --out '%s'",
                                eo))) == 0, "%s", err_text);
    CHECK_MSG(ls_exists(S("%s/adapters/head.safetensors", eo)), "the encoder's trained classifier was not saved");
    double after = metric(eo, 10, "val_loss", NULL);
    double le = eval_loss(S("eval --task sst2 --model '%s/model' --adapter '%s' --data '%s/dev.tsv' --seq-len 16 "
                            "--batch-size 16", e, eo, e), S("%s/l.json", e));
    printf("  bert adapter-l: val loss %.6f at step 10; eval --adapter %.6f\n", after, le);
    CHECK_CLOSE(le, after, 1e-5, 0);
    expect_error(S("eval --task sst2 --model '%s/model' --adapter '%s' --data '%s/dev.tsv' --seq-len 16", e, out, e), 1,
                 "model.safetensors: metadata 'family': expected 'bert' (the base model's), found 'gpt2'", NULL);
}

// train.jsonl (32) and val.jsonl (8) of "name i |" -> " the number is n." pairs.
static void write_number_jsonl(const char *data, const char *val) {
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(f ? val : data, "w");
        CHECK(fp != NULL);
        if (!fp) return;
        for (int i = 0; i < (f ? 8 : 32); i++)
            fprintf(fp, "{\"context\": \"name %d |\", \"completion\": \" the number is %d.\"}\n", i + 40 * f, i * 7 % 13);
        fclose(fp);
    }
}

// Prefix-layer tuning (l_p 4) on the tiny GPT-2: PEFT's count line, the
// prefix saved as PEFT's PREFIX_TUNING (prefix/adapter_config.json,
// prompt_embeddings (4, 2 L C)), a run killed at step 2 resumes to the same
// bits, `eval --adapter RUN` (the prefix attached) gives the run's final
// validation loss, and `generate --adapter RUN` decodes with the prefix; on
// the tiny BERT classifier too (random and text init: the classifier saved
// beside it, eval --adapter gives the run's validation loss); a too-long
// prefix is refused in one line.
static void test_prefix_layer_run_trains_resumes_and_evaluates(void) {
    const char *d = ls_test_tmpdir("train_prefix");
    const char *data = S("%s/train.jsonl", d), *val = S("%s/val.jsonl", d), *out = S("%s/p", d), *k = S("%s/k", d);
    write_number_jsonl(data, val);
    const char *common = S("train --model data/peft/gpt2_tiny/base --tokenizer bytes --task jsonl --data '%s' "
                           "--val-data '%s' --seq-len 48 --steps 4 --eval-every 4 --batch-size 4 --lr 1e-2 "
                           "--method prefix-layer --prefix-len 4 --threads 2", data, val);
    CHECK_MSG(run(S("%s --out '%s'", common, out)) == 0, "%s", err_text);
    // tiny gpt2: 2 layers, C 64: 4 x 2 x 2 x 64 = 1,024 of 124,672 + 1,024
    CHECK_STR_CONTAINS(out_text, "trainable params: 1,024 || all params: 125,696 || trainable%: 0.8147");
    CHECK_STR_CONTAINS(out_text, "prefix-layer tuning gpt2");
    char *cfg = ls_read_file(S("%s/prefix/adapter_config.json", out), NULL);
    CHECK_STR_CONTAINS(cfg ? cfg : "", "\"PREFIX_TUNING\"");
    free(cfg);
    st_file f;
    CHECK_MSG(st_open(&f, S("%s/prefix/adapter_model.safetensors", out)) == 0, "%s", ls_error());
    const st_tensor *t = st_find(&f, "prompt_embeddings");
    CHECK(t && t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 256);
    st_close(&f);
    CHECK_INT(run(S("%s --save-every 2 --stop-after 2 --out '%s'", common, k)), 128 + SIGKILL);
    CHECK_MSG(run(S("train --resume --out '%s'", k)) == 0, "%s", err_text);
    CHECK_MSG(same_bytes(S("%s/prefix/adapter_model.safetensors", out), S("%s/prefix/adapter_model.safetensors", k)),
              "the resumed prefix run differs from the uninterrupted one");
    double trained = metric(out, 4, "val_loss", NULL), base = metric(out, 0, "val_loss", NULL);
    double l = eval_loss(S("eval --model data/peft/gpt2_tiny/base --tokenizer bytes --data '%s' --task jsonl "
                           "--seq-len 48 --batch-size 4 --adapter '%s'", val, out), S("%s/p.json", d));
    printf("  gpt2 prefix-layer: val loss %.6f at step 0, %.6f at step 4; eval --adapter %.6f\n", base, trained, l);
    CHECK_CLOSE(l, trained, 1e-5, 0);
    CHECK_MSG(fabs(l - base) > 1e-4, "eval --adapter gave the base's loss %.6f: the prefix was not attached", base);
    // generation decodes with the prefix in the KV cache (its first l_p slots)
    const char *gen = S("generate --model data/peft/gpt2_tiny/base --tokenizer bytes --prompt 'name 3 |' --steps 24 "
                        "--temperature 0");
    CHECK_MSG(run(gen) == 0, "%s", err_text);
    char *plain = ls_strdup(out_text);
    CHECK_MSG(run(S("%s --adapter '%s'", gen, out)) == 0, "%s", err_text);
    CHECK_MSG(strcmp(plain, out_text) != 0, "generate --adapter PREFIX-RUN printed the base's text: %s", plain);
    free(plain);
    // the tiny BERT classifier (PEFT's SEQ_CLS prefix tuning): every layer's
    // queries also see the prefix, the classifier trained beside it; from a
    // text too (the first example's keys and values)
    const char *e = tiny_encoder_fixture("train_prefix_enc");
    for (int text = 0; text < 2; text++) {
        const char *eo = S("%s/p%d", e, text);
        CHECK_MSG(run(enc_args(e, S("--method prefix-layer --prefix-len 4 --steps 10 --lr 1e-2 --eval-every 10%s "
                                    "--out '%s'", text ? " --prefix-init text" : "", eo))) == 0, "%s", err_text);
        CHECK_MSG(ls_exists(S("%s/prefix/head.safetensors", eo)), "the encoder's trained classifier was not saved");
        char *ecfg = ls_read_file(S("%s/prefix/adapter_config.json", eo), NULL);
        CHECK_STR_CONTAINS(ecfg ? ecfg : "", "\"SEQ_CLS\"");
        CHECK_STR_CONTAINS(ecfg ? ecfg : "", "\"PREFIX_TUNING\"");
        free(ecfg);
        double eafter = metric(eo, 10, "val_loss", NULL), ebase = metric(eo, 0, "val_loss", NULL);
        double le = eval_loss(S("eval --task sst2 --model '%s/model' --adapter '%s' --data '%s/dev.tsv' --seq-len 16 "
                                "--batch-size 16", e, eo, e), S("%s/pl%d.json", e, text));
        printf("  bert prefix-layer%s: val loss %.6f at step 0, %.6f at step 10; eval --adapter %.6f\n",
               text ? " (from a text)" : "", ebase, eafter, le);
        CHECK_CLOSE(le, eafter, 1e-5, 0);
        CHECK_MSG(fabs(le - ebase) > 1e-4, "eval --adapter gave the base's loss: the prefix was not attached");
    }
    expect_error(S("%s --prefix-len 120 --out '%s/long'", common, d), 1,
                 "prefix_len (--prefix-len): expected prefix + longest row <= 128 positions", S("%s/long", d));
}

// The same for prefix-embedding tuning (PEFT PROMPT_TUNING, prompt/), plus
// generation with the virtual tokens before the prompt, and on the tiny BERT
// classifier (its classifier saved beside them, eval --adapter gives the
// run's validation loss).
static void test_prefix_embed_run_trains_resumes_evaluates_and_generates(void) {
    const char *d = ls_test_tmpdir("train_prompt");
    const char *data = S("%s/train.jsonl", d), *val = S("%s/val.jsonl", d), *out = S("%s/p", d), *k = S("%s/k", d);
    write_number_jsonl(data, val);
    const char *common = S("train --model data/peft/gpt2_tiny/base --tokenizer bytes --task jsonl --data '%s' "
                           "--val-data '%s' --seq-len 48 --steps 4 --eval-every 4 --batch-size 4 --lr 1e-2 "
                           "--method prefix-embed --prefix-len 4 --threads 2", data, val);
    CHECK_MSG(run(S("%s --out '%s'", common, out)) == 0, "%s", err_text);
    // tiny gpt2: C 64: 4 x 64 = 256 of 124,672 + 256
    CHECK_STR_CONTAINS(out_text, "trainable params: 256 || all params: 124,928 || trainable%: 0.2049");
    CHECK_STR_CONTAINS(out_text, "prefix-embedding tuning gpt2");
    char *cfg = ls_read_file(S("%s/prompt/adapter_config.json", out), NULL);
    CHECK_STR_CONTAINS(cfg ? cfg : "", "\"PROMPT_TUNING\"");
    CHECK_STR_CONTAINS(cfg ? cfg : "", "\"num_virtual_tokens\":\t4");
    CHECK_STR_CONTAINS(cfg ? cfg : "", "\"token_dim\":\t64");
    free(cfg);
    st_file f;
    CHECK_MSG(st_open(&f, S("%s/prompt/adapter_model.safetensors", out)) == 0, "%s", ls_error());
    const st_tensor *t = st_find(&f, "prompt_embeddings");
    CHECK(t && t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 64);
    st_close(&f);
    CHECK_INT(run(S("%s --save-every 2 --stop-after 2 --out '%s'", common, k)), 128 + SIGKILL);
    CHECK_MSG(run(S("train --resume --out '%s'", k)) == 0, "%s", err_text);
    CHECK_MSG(same_bytes(S("%s/prompt/adapter_model.safetensors", out), S("%s/prompt/adapter_model.safetensors", k)),
              "the resumed prefix-embed run differs from the uninterrupted one");
    double trained = metric(out, 4, "val_loss", NULL), base = metric(out, 0, "val_loss", NULL);
    double l = eval_loss(S("eval --model data/peft/gpt2_tiny/base --tokenizer bytes --data '%s' --task jsonl "
                           "--seq-len 48 --batch-size 4 --adapter '%s'", val, out), S("%s/p.json", d));
    printf("  gpt2 prefix-embed: val loss %.6f at step 0, %.6f at step 4; eval --adapter %.6f\n", base, trained, l);
    CHECK_CLOSE(l, trained, 1e-5, 0);
    CHECK_MSG(fabs(l - base) > 1e-4, "eval --adapter gave the base's loss %.6f: the prompt was not attached", base);
    CHECK_MSG(run(S("generate --model data/peft/gpt2_tiny/base --tokenizer bytes --adapter '%s' --prompt 'name 3 |' "
                    "--steps 200", out)) == 0, "%s", err_text);
    // the tiny BERT classifier: virtual tokens before [CLS], the classifier trained beside them
    const char *e = tiny_encoder_fixture("train_prompt_enc"), *eo = S("%s/p", e);
    CHECK_MSG(run(enc_args(e, S("--method prefix-embed --prefix-len 4 --steps 10 --lr 1e-2 --eval-every 10 --out '%s'",
                                eo))) == 0, "%s", err_text);
    CHECK_MSG(ls_exists(S("%s/prompt/head.safetensors", eo)), "the encoder's trained classifier was not saved");
    char *ecfg = ls_read_file(S("%s/prompt/adapter_config.json", eo), NULL);
    CHECK_STR_CONTAINS(ecfg ? ecfg : "", "\"SEQ_CLS\"");
    free(ecfg);
    double eafter = metric(eo, 10, "val_loss", NULL), ebase = metric(eo, 0, "val_loss", NULL);
    double le = eval_loss(S("eval --task sst2 --model '%s/model' --adapter '%s' --data '%s/dev.tsv' --seq-len 16 "
                            "--batch-size 16", e, eo, e), S("%s/pe.json", e));
    printf("  bert prefix-embed: val loss %.6f at step 0, %.6f at step 10; eval --adapter %.6f\n", ebase, eafter, le);
    CHECK_CLOSE(le, eafter, 1e-5, 0);
    CHECK_MSG(fabs(le - ebase) > 1e-4, "eval --adapter gave the base's loss: the virtual tokens were not attached");
    expect_error(S("%s --prefix-len 120 --out '%s/long'", common, d), 1,
                 "prefix_len (--prefix-len): expected virtual tokens + longest row <= 128 positions", S("%s/long", d));
    expect_error(S("%s --prefix-len 0 --out '%s/zero'", common, d), 2, "--prefix-len: expected an integer in [1, 4096], found '0'",
                 S("%s/zero", d));
}

// bench --latency (Table 1) on the smallest shape with adapters (minilm-l6)
// at tiny sizes: the table has a row per variant in the paper's order with
// the adapters' trainable counts, a column per batch size, and every latency
// and overhead is a finite number, the latencies positive (no timing
// assertions: the machine may be busy); bad sizes are one-line errors.
static void test_bench_latency_table_has_every_variant_and_batch(void) {
    const char *d = ls_test_tmpdir("bench_latency"), *md = S("%s/table1.md", d);
    CHECK_MSG(run(S("bench --latency --shape minilm-l6 --batches 1,3 --seq-len 8 --repeats 2 --threads 1 --out '%s'",
                    md)) == 0, "%s", err_text);
    char *text = ls_read_file(md, NULL);
    CHECK_MSG(text != NULL, "no table in %s", md);
    if (!text) return;
    const char *t = strstr(text, "| method | trainable | batch 1 | batch 3 |\n|---|---|---|---|\n");
    CHECK_MSG(t != NULL, "no Table 1 header in:\n%s", text);
    // minilm-l6: d 384, 6 layers; LoRA r 8 on q, v: 6 x 2 x 8 x (384 + 384); adapters 2 r d + r + d per site
    const char *names[5] = {"base", "merged LoRA", "unmerged LoRA", "Adapter^H", "Adapter^L"};
    const long counts[5] = {0, 73728, 73728, 78432, 39216};
    const char *line = t ? strchr(strchr(t, '\n') + 1, '\n') + 1 : NULL;
    for (int v = 0; v < 5 && line; v++) {
        char name[64];
        long count = -1;
        int at = 0;
        CHECK_MSG(sscanf(line, "| %63[^|]| %ld |%n", name, &count, &at) == 2, "row %d: %.80s", v, line);
        for (size_t n = strlen(name); n > 0 && name[n - 1] == ' '; n--) name[n - 1] = '\0';
        CHECK_MSG(!strcmp(name, names[v]), "row %d is '%s', expected '%s'", v, name, names[v]);
        CHECK_INT(count, counts[v]);
        const char *cell = line + at;
        for (int j = 0; j < 2; j++) {
            char *end;
            double ms = strtod(cell, &end), pct = 0;
            CHECK_MSG(end != cell && isfinite(ms) && ms > 0, "%s, batch column %d: latency '%.20s'", names[v], j, cell);
            if (v) {
                CHECK_MSG(sscanf(end, " (%lf%%)", &pct) == 1 && isfinite(pct), "%s: overhead '%.20s'", names[v], end);
            }
            cell = strchr(end, '|');
            if (!cell) break;
            cell++;
        }
        CHECK_MSG(cell && *cell == '\n', "%s: expected 2 batch columns: %.100s", names[v], line);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    free(text);
    expect_error("bench --latency --shape minilm-l6 --batches 1 --seq-len 4000", 1,
                 "--seq-len: expected 1..512 (the minilm-l6 shape's positions), found 4000", NULL);
    expect_error("bench --latency --batches 0", 2, "--batches", NULL);
    expect_error("bench --latency --shape gpt9", 2, "--shape: expected a shape", NULL);
}

// An encoder with a decoder's task: train and eval refuse it in one line that
// names the task and the model type, before any output; generate refuses it.
static void test_encoder_with_a_decoder_task_is_refused(void) {
    const char *d = tiny_encoder_fixture("train_encoder_bad");
    const char *out = S("%s/run", d);
    const char *tasks[2] = {"e2e", "lm"};
    for (int i = 0; i < 2; i++) {
        const char *needle = S("--task %s: expected a decoder model, found a bert encoder", tasks[i]);
        expect_error(S("train --task %s --model '%s/model' --data '%s/train.tsv' --steps 1 --out '%s'", tasks[i], d, d,
                       out), 1, needle, out);
        CHECK_MSG(!ls_exists(out), "%s created after a refused run", out);
        expect_error(S("eval --task %s --model '%s/model' --data '%s/dev.tsv'", tasks[i], d, d), 1, needle, NULL);
    }
    expect_error(S("generate --model '%s/model' --prompt good", d), 1, "a bert model is an encoder", NULL);
    expect_error(enc_args(d, S("--steps 1 --label-smoothing 0.1 --out '%s'", out)), 1,
                 "label_smoothing (--label-smoothing): expected 0 for a bert encoder", out);
}

static const ls_test tests[] = {
    LS_TEST(test_gpt2_bitfit_and_fttop2_train_save_and_evaluate),
    LS_TEST(test_encoder_bitfit_and_fttop2_train_resume_and_evaluate),
    LS_TEST(test_adapter_runs_train_save_and_evaluate_to_their_validation_loss),
    LS_TEST(test_bench_latency_table_has_every_variant_and_batch),
    LS_TEST(test_prefix_layer_run_trains_resumes_and_evaluates),
    LS_TEST(test_prefix_embed_run_trains_resumes_evaluates_and_generates),
    LS_TEST(test_pissa_run_saves_initial_factors_in_the_adapters_layout),
    LS_TEST(test_help_of_train_generate_eval_bench),
    LS_TEST(test_greedy_generation_matches_llama2c_reference),
    LS_TEST(test_same_seed_same_threads_gives_identical_adapter),
    LS_TEST(test_resume_after_kill_gives_identical_adapter),
    LS_TEST(test_resume_checks_inputs_by_content_not_location),
    LS_TEST(test_full_finetune_resume_gives_identical_parameters),
    LS_TEST(test_nan_loss_stops_naming_step_and_keeps_checkpoint),
    LS_TEST(test_e2e_lora_lowers_validation_loss),
    LS_TEST(test_eval_cli_reproduces_training_validation_loss),
    LS_TEST(test_gpt2_trains_c_attn_and_q_v_row_blocks),
    LS_TEST(test_bad_input_gives_one_line_error_and_no_output),
    LS_TEST(test_non_finite_weights_losses_and_logits_are_errors),
    LS_TEST(test_batch_beyond_physical_memory_is_refused_before_allocating),
    LS_TEST(test_endless_or_odd_inputs_are_refused),
    LS_TEST(test_config_file_with_flag_overrides_through_cli),
    LS_TEST(test_train_refuses_an_out_dir_locked_by_another_process),
    LS_TEST(test_stale_temp_files_are_removed_when_a_run_resumes_or_restarts),
    LS_TEST(test_bench_prints_lora_and_full_rows),
    LS_TEST(test_bench_encoder_row_trains_the_classifier_beside_lora),
    LS_TEST(test_bench_table_shows_peer_median_layout_and_ratio),
    LS_TEST(test_encoder_sst2_lora_trains_resumes_and_evaluates),
    LS_TEST(test_encoder_sst2_full_finetune_trains_and_resumes),
    LS_TEST(test_encoder_with_a_decoder_task_is_refused),
};
int main(int argc, char **argv) { return ls_test_main(argc, argv, tests, LS_COUNT(tests)); }
