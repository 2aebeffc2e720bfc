// run: version, machine, clocks, metrics.jsonl.
#include "train/record.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/util.h"
#include "train/git_commit.h"

#ifndef LS_VERSION
#define LS_VERSION "unknown"
#endif

const char *record_version(void) { return LS_VERSION; }
const char *record_git_commit(void) { return LS_GIT_COMMIT[0] ? LS_GIT_COMMIT : "unknown"; }

const char *record_uname(void) {
    static char buf[256];
    struct utsname u;
    if (uname(&u)) return "unknown";
    snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
    return buf;
}

const char *record_cpu_model(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "unknown");
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return buf;
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "model name", 10)) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, sizeof buf, "%s", colon);
        break;
    }
    fclose(fp);
    return buf;
}

int record_n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

// ----------------------------------------------------------------------------
// metrics.jsonl

// The value of "step" in a metrics line, or -1.
static long line_step(const char *line) {
    const char *p = strstr(line, "\"step\":");
    if (!p) return -1;
    return strtol(p + 7, NULL, 10);
}

int record_metrics_open(record_metrics *w, const char *dir, long keep_through_step) {
    memset(w, 0, sizeof *w);
    w->path = ls_path_join(dir, "metrics.jsonl");
    if (keep_through_step >= 0 && ls_exists(w->path)) {
        size_t size;
        char *text = ls_read_file_max(w->path, &size, LS_READ_DATA_MAX);
        if (!text) return -1;
        ls_outfile out;
        if (ls_out_open(&out, w->path)) {
            free(text);
            return -1;
        }
        for (char *line = text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next) *next++ = 0;
            size_t n = strlen(line);
            // a line cut short by a kill has no closing brace: drop it with the later steps
            if (n == 0 || line[n - 1] != '}') continue;
            if (line_step(line) <= keep_through_step) fprintf(out.fp, "%s\n", line);
        }
        free(text);
        if (ls_out_commit(&out)) return -1;
    }
    w->fp = fopen(w->path, "a");
    if (!w->fp) return ls_fail("%s: cannot open for appending", w->path);
    return 0;
}

void record_metrics_write(record_metrics *w, const char *json_object) {
    if (!w->fp) return;
    fprintf(w->fp, "%s\n", json_object);
    fflush(w->fp);
}

void record_metrics_close(record_metrics *w) {
    if (w->fp) fclose(w->fp);
    free(w->path);
    memset(w, 0, sizeof *w);
}
