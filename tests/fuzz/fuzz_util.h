// Helpers shared by the libFuzzer targets: a private scratch directory (in
// /dev/shm when writable, else /tmp, removed at exit) and writing fuzzed
// bytes into it.
#ifndef LS_FUZZ_UTIL_H
#define LS_FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "text/tokenizer.h"

static char fuzz_dir[256];

static void fuzz_cleanup(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

// Creates fuzz_dir on the first call; returns it.
static inline const char *fuzz_scratch(void) {
    if (!fuzz_dir[0]) {
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/lorascope-fuzz-%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                 (long)getpid());
        char cmd[300];
        snprintf(cmd, sizeof cmd, "mkdir -p %s", fuzz_dir);
        if (system(cmd) != 0) abort();
        atexit(fuzz_cleanup);  // libFuzzer exits through exit() at -max_total_time
    }
    return fuzz_dir;
}

// Writes n bytes to fuzz_dir/name and stores the full path in path (size 512).
static inline void fuzz_write(const char *name, const uint8_t *p, size_t n, char *path) {
    snprintf(path, 512, "%s/%s", fuzz_scratch(), name);
    FILE *fp = fopen(path, "wb");
    if (!fp) abort();
    if (n) fwrite(p, 1, n, fp);
    fclose(fp);
}

// A NUL-terminated copy of p[0..n) (caller frees).
static inline char *fuzz_cstr(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

// With LORASCOPE_FUZZ_VERBOSE set (checking that the seeds load), prints
// what a load returned: "what: ok" or "what: <ls_error()>".
static inline int fuzz_note(const char *what, int rc) {
    if (getenv("LORASCOPE_FUZZ_VERBOSE")) fprintf(stderr, "%s: %s\n", what, rc == 0 ? "ok" : ls_error());
    return rc;
}
// Encodes text with t, decodes it whole and piece by piece, and encodes it as
// a continuation: every path of a tokenizer a fuzzed input can reach.
static inline void fuzz_exercise_tokenizer(const tokenizer *t, const char *text) {
    int n = 0;
    int *ids = tok_encode(t, text, 1, 1, &n);
    if (ids) {
        size_t len;
        char *s = tok_decode(t, -1, ids, n, &len);
        free(s);
        for (int i = 0; i < n; i++) tok_decode_piece(t, i ? ids[i - 1] : -1, ids[i], &len);
        free(ids);
    }
    ids = tok_encode_continuation(t, text, &n);
    free(ids);
}

#endif
