// `--backend`, as a user meets it: a CPU command never loads a CUDA library
// (the CUDA backend is a module, liblorascope_cuda.so, loaded on first use:
// ARCHITECTURE.md, Backends); `--backend cuda` without a GPU (or without the
// module) stops with one line naming what was expected and writes nothing;
// `--backend auto` then runs on the CPU and says so once.
//
// What the dynamic loader loaded is read from its own report (LD_DEBUG=libs
// on stderr), which also lists libopenblas (so a silent report cannot pass),
// and in a CUDA build `--backend cuda` must show the module and libcudart in
// the same report (so the check can see a loaded CUDA library).
#include <stdlib.h>

#include "harness.h"

static char err_text[1 << 20];

// lorascope with `args` (a shell fragment) from tests/ (harness.h), stderr in err_text.
static int run(const char *args) { return ls_test_lorascope(args, NULL, 0, err_text, sizeof err_text); }

// The same with the environment variable `name` set to `value` for that run.
static int run_with(const char *name, const char *value, const char *args) {
    setenv(name, value, 1);
    int rc = run(args);
    unsetenv(name);
    return rc;
}

static int have_cuda_build(void) {
    const char *v = getenv("LORASCOPE_HAVE_CUDA");
    return v && !strcmp(v, "1");
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// The first line of the loader's report that names `lib` (searched for,
// found, initialised: any of them means the command asked for it), or NULL.
static const char *loaded(const char *lib) {
    const char *p = strstr(err_text, lib);
    if (!p) return NULL;
    while (p > err_text && p[-1] != '\n') p--;
    return p;
}

static const char *const cuda_libs[] = {"libcudart", "libcublas", "libcusolver", "liblorascope_cuda", "libcuda.so"};

// ----------------------------------------------------------------------------

static void test_cpu_analysis_loads_no_cuda_library(void) {
    const char *out = ls_test_tmpdir("backend_cpu_libs");
    char args[8192];
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt2/adapter --out '%s/o' --no-plot", out);
    int rc = run_with("LD_DEBUG", "libs", args);
    CHECK_MSG(rc == 0, "`lorascope %s` exited %d", args, rc);
    CHECK_MSG(strstr(err_text, "calling init: ") && loaded("libopenblas"),
              "the loader's report (LD_DEBUG=libs) does not list libopenblas: %.2000s", err_text);
    for (int i = 0; i < (int)(sizeof cuda_libs / sizeof *cuda_libs); i++) {
        const char *line = loaded(cuda_libs[i]);
        CHECK_MSG(line == NULL, "a CPU analysis loaded %s: %.300s", cuda_libs[i], line);
    }
    // the control: the same report shows the CUDA libraries once a command asks for them
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt2/adapter --out '%s/c' --no-plot "
             "--backend cuda", out);
    rc = run_with("LD_DEBUG", "libs", args);
    if (have_cuda_build()) {
        CHECK_MSG(loaded("liblorascope_cuda") != NULL, "--backend cuda did not load the module (exit %d)", rc);
        CHECK_MSG(loaded("libcudart") != NULL, "--backend cuda did not load libcudart (exit %d)", rc);
    } else {
        CHECK_MSG(rc != 0 && strstr(err_text, "built without CUDA"), "exit %d: %.2000s", rc, err_text);
    }
}

// Without a usable GPU (here, or a CPU-only build) every command refuses
// --backend cuda with one line, before it writes anything.
static void test_backend_cuda_without_gpu_is_one_line_error_and_no_output(void) {
    const char *out = ls_test_tmpdir("backend_cuda_nogpu");
    char args[8192], o[4200];
    snprintf(o, sizeof o, "%s/o", out);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt2/adapter --out '%s' --no-plot "
             "--backend cuda", o);
    if (run(args) == 0) SKIP("a CUDA device is usable here (analyze --backend cuda ran)");
    const char *why = have_cuda_build() ? "no CUDA device: " : "this lorascope was built without CUDA";
    const char *cmds[] = {
        "analyze spectrum --adapter data/peft_generic/gpt2/adapter --out '%s' --backend cuda",
        "train --model data/peft/llama_tiny/base --task lm --data data/peft/llama_tiny/base/config.json "
        "--steps 1 --out '%s' --backend cuda",
        "generate --model data/peft/llama_tiny/base --prompt hi --backend cuda",
        "bench --latency --shape stories260K --batches 1 --repeats 1 --out '%s' --backend cuda",
        "bench --backend cuda --shape tiny --steps 1 --no-torch --out '%s'",
    };
    const char *prefixes[] = {"lorascope analyze spectrum: --backend cuda: ", "lorascope train: --backend cuda: ",
                              "lorascope generate: --backend cuda: ", "lorascope bench: --backend cuda: ",
                              "lorascope bench: --backend cuda: "};
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, cmds[i], o); // generate writes no file: its format has no %s
        int rc = run(args);
        CHECK_MSG(rc != 0, "`lorascope %s` exited 0 without a GPU", args);
        CHECK_MSG(!strncmp(err_text, prefixes[i], strlen(prefixes[i])), "`lorascope %s`: expected '%s...', found: %s",
                  args, prefixes[i], err_text);
        CHECK_STR_CONTAINS(err_text, why);
        CHECK_MSG(count_lines(err_text) == 1, "`lorascope %s`: expected one line, found: %s", args, err_text);
        CHECK_MSG(ls_test_count_files(o) <= 0, "`lorascope %s` left files in %s", args, o);
    }
}

// A module that is missing or is not one: --backend cuda names what it expected;
// --backend auto runs on the CPU and says so in one line.
static void test_missing_module_is_named_and_auto_falls_back_once(void) {
    if (!have_cuda_build()) SKIP("a CPU-only build has no CUDA module to miss");
    const char *out = ls_test_tmpdir("backend_module");
    char args[8192], o[4200];
    snprintf(o, sizeof o, "%s/o", out);
    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt2/adapter --out '%s' --no-plot "
             "--backend cuda", o);
    int rc = run_with("LORASCOPE_CUDA_MODULE", "/nonexistent/liblorascope_cuda.so", args);
    CHECK(rc == 1);
    CHECK_STR_CONTAINS(err_text, "lorascope analyze spectrum: --backend cuda: no CUDA module at "
                                 "LORASCOPE_CUDA_MODULE=/nonexistent/liblorascope_cuda.so: No such file or directory");
    CHECK_MSG(count_lines(err_text) == 1, "expected one line, found: %s", err_text);
    rc = run_with("LORASCOPE_CUDA_MODULE", ls_test_source("data/peft_generic/gpt2/adapter/adapter_config.json"), args);
    CHECK(rc == 1);
    CHECK_STR_CONTAINS(err_text, "--backend cuda: cannot load the CUDA module: ");
    CHECK_STR_CONTAINS(err_text, "(expected the CUDA ");
    CHECK_MSG(count_lines(err_text) == 1, "expected one line, found: %s", err_text);
    CHECK_MSG(ls_test_count_files(o) <= 0, "a refused run left files in %s", o);

    snprintf(args, sizeof args, "analyze spectrum --adapter data/peft_generic/gpt2/adapter --out '%s' --no-plot "
             "--backend auto", o);
    rc = run_with("LORASCOPE_CUDA_MODULE", "/nonexistent/liblorascope_cuda.so", args);
    CHECK_MSG(rc == 0, "--backend auto without a module exited %d: %s", rc, err_text);
    CHECK_STR_CONTAINS(err_text, "lorascope: --backend auto: no CUDA module at LORASCOPE_CUDA_MODULE=");
    CHECK_STR_CONTAINS(err_text, "; running on the CPU\n");
    CHECK_MSG(count_lines(err_text) == 1, "expected the fallback said once, found: %s", err_text);
    CHECK(ls_test_count_files(o) > 0);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_cpu_analysis_loads_no_cuda_library),
        LS_TEST(test_backend_cuda_without_gpu_is_one_line_error_and_no_output),
        LS_TEST(test_missing_module_is_named_and_auto_falls_back_once),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
