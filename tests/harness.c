#include "harness.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int ls_test_failures = 0;
const char *ls_test_skip_reason = NULL;

#ifndef LS_SOURCE_ROOT
#error "LS_SOURCE_ROOT must be defined by the build"
#endif

int ls_test_main(int argc, char **argv, const ls_test *tests, int n) {
    int ran = 0, skipped = 0, failed_tests = 0;
    for (int i = 0; i < n; i++) {
        int selected = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], tests[i].name) == 0) selected = 1;
        if (!selected) continue;
        int before = ls_test_failures;
        ls_test_skip_reason = NULL;
        tests[i].fn();
        ran++;
        if (ls_test_failures > before) {
            failed_tests++;
            fprintf(stderr, "FAIL %s\n", tests[i].name);
        } else if (ls_test_skip_reason) {
            skipped++;
            printf("SKIP %s: %s\n", tests[i].name, ls_test_skip_reason);
        } else {
            printf("ok   %s\n", tests[i].name);
        }
    }
    if (ran == 0) {
        fprintf(stderr, "no test named");
        for (int a = 1; a < argc; a++) fprintf(stderr, " %s", argv[a]);
        fprintf(stderr, "\n");
        return 2;
    }
    if (failed_tests) return 1;
    if (skipped == ran) return 77;
    return 0;
}

const char *ls_test_asset(const char *rel) {
    static char buf[4096];
    struct stat st;
    const char *env = getenv("LORASCOPE_ASSETS");
    if (env && *env) {
        snprintf(buf, sizeof buf, "%s/%s", env, rel);
        if (stat(buf, &st) == 0) return buf;
        return NULL;
    }
    snprintf(buf, sizeof buf, "%s/../shared/assets/%s", LS_SOURCE_ROOT, rel);
    if (stat(buf, &st) == 0) return buf;
    return NULL;
}

const char *ls_test_source(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/tests/%s", LS_SOURCE_ROOT, rel);
    return buf;
}

// The directories' names are owned here: callers keep several at once, so
// each call gets its own string, and all of them are freed at exit.
static char **tmpdir_names = NULL;
static int tmpdir_count = 0;

static void free_tmpdir_names(void) {
    for (int i = 0; i < tmpdir_count; i++) free(tmpdir_names[i]);
    free(tmpdir_names);
    tmpdir_names = NULL;
    tmpdir_count = 0;
}

const char *ls_test_tmpdir(const char *name) {
    char **grown = realloc(tmpdir_names, (size_t)(tmpdir_count + 1) * sizeof *grown);
    char *buf = malloc(4096);
    if (!grown || !buf) exit(1);
    if (!tmpdir_names) atexit(free_tmpdir_names);
    tmpdir_names = grown;
    tmpdir_names[tmpdir_count++] = buf;
    snprintf(buf, 4096, "%s/tmp-%s-%ld", LS_BUILD_ROOT, name, (long)getpid());
    char cmd[2 * 4096 + 64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", buf);
        exit(1);
    }
    return buf;
}

// Reads at most size - 1 bytes of path into buf, NUL-terminated (empty if unreadable).
static void read_capped(const char *path, char *buf, size_t size) {
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(buf, 1, size - 1, fp) : 0;
    buf[n] = 0;
    if (fp) fclose(fp);
}

int ls_test_lorascope(const char *args, char *out, size_t out_size, char *err, size_t err_size) {
    const char *exe = getenv("LORASCOPE_BIN");
    if (!exe) {
        fprintf(stderr, "LORASCOPE_BIN not set\n");
        exit(1);
    }
    static const char *dir = NULL;
    if (!dir) dir = ls_test_tmpdir("lorascope_io");
    size_t len = strlen(args) + strlen(exe) + 3 * strlen(dir) + 4096;
    char *cmd = malloc(len), outf[4200], errf[4200];
    snprintf(outf, sizeof outf, "%s/stdout.txt", dir);
    snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
    snprintf(cmd, len, "cd '%s' && exec '%s' %s >'%s' 2>'%s'", ls_test_source(""), exe, args,
             out ? outf : "/dev/null", errf);
    int status = system(cmd);
    free(cmd);
    if (out) read_capped(outf, out, out_size);
    if (err) read_capped(errf, err, err_size);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ls_test_count_files(const char *dir) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "find '%s' -type f 2>/dev/null | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

double ls_test_tsv_value(const char *path, const char *key, int col) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NAN;
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    for (size_t n; (n = fread(text + len, 1, cap - len - 1, fp)) > 0;) {
        len += n;
        if (len + 1 == cap) text = realloc(text, cap *= 2);
    }
    fclose(fp);
    text[len] = 0;
    double v = NAN;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, key, strlen(key))) continue;
        char *p = line;
        for (int c = 0; c < col && p; c++) {
            p = strchr(p, '\t');
            if (p) p++;
        }
        if (p) v = strtod(p, NULL);
        break;
    }
    free(text);
    return v;
}
