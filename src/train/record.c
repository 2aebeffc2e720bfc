// run: version, machine, clocks, metrics.jsonl.
#include "train/record.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/clock.h"
#include "base/util.h"
#include "train/git_commit.h"
#include "train/train.h"

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

// The "step" of a metrics line: 0 and *step, or -1 when the line is not a
// JSON object with an integer "step".
static int line_step(const char *line, long *step) {
    cJSON *obj = cJSON_Parse(line);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, "step");
    int ok = cJSON_IsObject(obj) && cJSON_IsNumber(s) && s->valuedouble >= 0 && s->valuedouble <= 1e15 &&
             s->valuedouble == (double)(long)s->valuedouble;
    if (ok) *step = (long)s->valuedouble;
    cJSON_Delete(obj);
    return ok ? 0 : -1;
}

// Copies the lines of `text` up to step keep_through_step into out; a last
// line cut short by a kill is dropped, any other damaged line is an error.
static int keep_metrics(FILE *out, char *text, const char *path, long keep_through_step) {
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (!*line) continue;
        long step;
        if (line_step(line, &step)) {
            if (!next || !*next) break; // the write a kill interrupted
            return ls_fail("%s:%d: expected a JSON object with an integer \"step\" (a damaged record)", path, lineno);
        }
        if (step <= keep_through_step) fprintf(out, "%s\n", line);
    }
    return 0;
}

int record_metrics_open(record_metrics *w, const char *dir, long keep_through_step) {
    memset(w, 0, sizeof *w);
    w->path = ls_path_join(dir, RUN_METRICS_FILE);
    if (keep_through_step >= 0 && ls_exists(w->path)) {
        size_t size;
        char *text = ls_read_file_max(w->path, &size, LS_READ_DATA_MAX);
        if (!text) return -1;
        ls_outfile out;
        if (ls_out_open(&out, w->path)) {
            free(text);
            return -1;
        }
        int rc = keep_metrics(out.fp, text, w->path, keep_through_step);
        free(text);
        if (rc) {
            ls_out_abort(&out);
            return -1;
        }
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
