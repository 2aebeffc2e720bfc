// record: the record a run leaves in its directory (ARCHITECTURE.md, Runs) —
// metrics.jsonl (one JSON object a line, appended and flushed as the run
// goes) and manifest.json (what ran where: lorascope version, git commit,
// backend, threads, machine, wall time, outcome).
#ifndef LS_TRAIN_RECORD_H
#define LS_TRAIN_RECORD_H

#include <stdio.h>

// lorascope's version (meson project version) and the git commit it was built
// from ("git describe --always --dirty --abbrev=40" at build time, "unknown"
// outside a checkout).
const char *record_version(void);
const char *record_git_commit(void);

// "Linux 6.1.0 x86_64" (uname) and the CPU model from /proc/cpuinfo ("unknown"
// if absent); static buffers.
const char *record_uname(void);
const char *record_cpu_model(void);
int record_n_cpus(void);

// ----------------------------------------------------------------------------
// metrics.jsonl

typedef struct {
    FILE *fp;
    char *path;
} record_metrics;

// Opens <dir>/metrics.jsonl for appending. keep_through_step >= 0 first drops
// (atomically) every line whose "step" is greater, so that a resumed run's
// file holds each step once. Returns 0 or -1.
int record_metrics_open(record_metrics *w, const char *dir, long keep_through_step);
// Appends one line (the caller's JSON object text, no newline) and flushes.
void record_metrics_write(record_metrics *w, const char *json_object);
void record_metrics_close(record_metrics *w);

#endif
