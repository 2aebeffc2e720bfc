// plan: sweep points, run identities and typed configurations.
#include "exp/plan.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "exp/exp_analyze.h"
#include "train/train.h"

// ----------------------------------------------------------------------------
// one experiment's runs

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; // separator
}

typedef struct {
    const char *key, *value, *raw;
} flag;

static int cmp_flag(const void *a, const void *b) { return strcmp(((const flag *)a)->key, ((const flag *)b)->key); }

// The run's training configuration: defaults, then its flags; checked here,
// before anything trains (unknown flag, bad value, missing field).
static int run_config(const experiment *e, exp_run *r) {
    tc_defaults(&r->cfg);
    for (int i = 0; i + 1 < r->n_args; i += 2)
        if (tc_set_flag(&r->cfg, r->args[i] + 2, r->args[i + 1])) return ls_fail_prefix("%s: run %s", e->path, r->label);
    if (strlen(r->dir) >= sizeof r->cfg.out) return ls_fail("%s: run %s: directory name too long", e->path, r->label);
    snprintf(r->cfg.out, sizeof r->cfg.out, "%s", r->dir);
    if (tc_validate(&r->cfg)) return ls_fail_prefix("%s: run %s", e->path, r->label);
    return 0;
}

int exp_plan(const experiment *e, const char *results_root, exp_run **out) {
    int n = 1;
    for (int i = 0; i < e->n_axes; i++)
        if (e->axes[i].leader < 0) {
            if ((long long)n * e->axes[i].n_values > EXP_MAX_RUNS)
                return ls_fail("%s: the sweep has more than %d runs (the product of the axes' value counts)",
                               e->path, EXP_MAX_RUNS);
            n *= e->axes[i].n_values;
        }
    exp_run *runs = ls_calloc((size_t)n, sizeof *runs);
    int nflags = e->n_train + e->n_axes;
    flag *flags = ls_calloc((size_t)nflags + 1, sizeof *flags);
    for (int r = 0; r < n; r++) {
        exp_run *run = &runs[r];
        run->value_index = ls_calloc((size_t)e->n_axes + 1, sizeof(int));
        int rem = r;
        for (int i = e->n_axes - 1; i >= 0; i--) {
            if (e->axes[i].leader >= 0) continue;
            run->value_index[i] = rem % e->axes[i].n_values;
            rem /= e->axes[i].n_values;
        }
        for (int i = 0; i < e->n_axes; i++)
            if (e->axes[i].leader >= 0) run->value_index[i] = run->value_index[e->axes[i].leader];
        int k = 0;
        for (int i = 0; i < e->n_train; i++) flags[k++] = (flag){e->train[i].key, e->train[i].value, e->train[i].raw};
        for (int i = 0; i < e->n_axes; i++) {
            const char *v = e->axes[i].values[run->value_index[i]];
            flags[k++] = (flag){e->axes[i].name, v, v};
        }
        qsort(flags, (size_t)k, sizeof *flags, cmp_flag);
        uint64_t h = 0xcbf29ce484222325ull;
        run->n_args = 2 * k;
        run->args = ls_calloc((size_t)run->n_args, sizeof(char *));
        for (int i = 0; i < k; i++) {
            h = fnv1a(fnv1a(h, flags[i].key), flags[i].raw);
            size_t len = strlen(flags[i].key) + 3;
            run->args[2 * i] = ls_malloc(len);
            snprintf(run->args[2 * i], len, "--%s", flags[i].key);
            run->args[2 * i + 1] = ls_strdup(flags[i].value);
        }
        run->hash = h;
        // Label: the axis values, in axis order, readable in a directory listing.
        char label[256] = "";
        for (int i = 0; i < e->n_axes; i++) {
            size_t len = strlen(label);
            snprintf(label + len, sizeof label - len, "%s%s%s", len ? "-" : "", e->axes[i].name,
                     e->axes[i].values[run->value_index[i]]);
        }
        if (!label[0]) snprintf(label, sizeof label, "%s", e->name);
        for (char *c = label; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.' && *c != ',') *c = '_';
        run->label = ls_strdup(label);
        char dir[512];
        snprintf(dir, sizeof dir, "%s/runs/%s-%016llx", results_root, label, (unsigned long long)h);
        run->dir = ls_strdup(dir);
    }
    free(flags);
    for (int r = 0; r < n; r++)
        if (run_config(e, &runs[r])) {
            exp_runs_free(runs, n);
            return -1;
        }
    *out = runs;
    return n;
}

void exp_runs_free(exp_run *runs, int n) {
    for (int r = 0; r < n; r++) {
        for (int i = 0; i < runs[r].n_args; i++) free(runs[r].args[i]);
        free(runs[r].args);
        free(runs[r].label);
        free(runs[r].dir);
        free(runs[r].value_index);
    }
    free(runs);
}

int exp_select(const experiment *e, const exp_run *runs, int n, const char *selector, int *out) {
    char *sel = ls_strdup(selector);
    int axis_of[32], value_of[32], nconds = 0, rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(sel, " \t", &save); tok && !rc; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            rc = ls_fail("selector '%s': expected axis=value, found '%s'", selector, tok);
            break;
        }
        *eq = 0;
        int ax = -1;
        for (int i = 0; i < e->n_axes; i++)
            if (!strcmp(e->axes[i].name, tok)) ax = i;
        if (ax < 0) {
            rc = ls_fail("selector '%s': no sweep axis '%s'", selector, tok);
            break;
        }
        int val = -1;
        if (strcmp(eq + 1, "*")) {
            for (int v = 0; v < e->axes[ax].n_values; v++)
                if (!strcmp(e->axes[ax].values[v], eq + 1)) val = v;
            if (val < 0) {
                rc = ls_fail("selector '%s': axis '%s' has no value '%s'", selector, tok, eq + 1);
                break;
            }
        }
        if (nconds == 32) {
            rc = ls_fail("selector '%s': too many conditions", selector);
            break;
        }
        axis_of[nconds] = ax;
        value_of[nconds++] = val;
    }
    free(sel);
    if (rc) return -1;
    int k = 0;
    for (int r = 0; r < n; r++) {
        int ok = 1;
        for (int c = 0; c < nconds; c++)
            if (value_of[c] >= 0 && strcmp(e->axes[axis_of[c]].values[runs[r].value_index[axis_of[c]]],
                                           e->axes[axis_of[c]].values[value_of[c]]))
                ok = 0; // by text: a zipped axis may repeat a value (rank = 8 | 8 | 64)
        if (ok) out[k++] = r;
    }
    return k;
}

// ----------------------------------------------------------------------------
// the experiments of one `lorascope run`

void exp_set_free(exp_set *s) {
    for (int i = 0; i < s->n_exps; i++) {
        if (s->runs[i]) exp_runs_free(s->runs[i], s->n_runs[i]);
        exp_free(&s->exps[i]);
    }
    free(s->unique);
    memset(s, 0, sizeof *s);
}

typedef struct {
    exp_run *run;
    int order, dup;
} planned;

static int cmp_planned_hash(const void *a, const void *b) {
    const planned *x = a, *y = b;
    if (x->run->hash != y->run->hash) return x->run->hash > y->run->hash ? 1 : -1;
    return (x->order > y->order) - (x->order < y->order);
}

// The runs already started under <results>/runs/ (their config.ini there), by
// the run hash that ends their directory names (<label>-<hash16>), then by name.
typedef struct {
    uint64_t hash;
    char *name;
} on_disk;

static int cmp_on_disk(const void *a, const void *b) {
    const on_disk *x = a, *y = b;
    if (x->hash != y->hash) return x->hash > y->hash ? 1 : -1;
    return strcmp(x->name, y->name);
}

// <label>-<hash16>: the hash, or 0 with *ok = 0.
static uint64_t name_hash(const char *name, int *ok) {
    size_t len = strlen(name);
    *ok = len >= 18 && name[len - 17] == '-' && strspn(name + len - 16, "0123456789abcdef") == 16;
    return *ok ? strtoull(name + len - 16, NULL, 16) : 0;
}

static on_disk *scan_runs(const char *runs_root, int *n_out) {
    int n = 0, cap = 0, ok;
    DIR *dir = opendir(runs_root);
    for (struct dirent *e; dir && (e = readdir(dir));) {
        name_hash(e->d_name, &ok);
        cap += ok;
    }
    on_disk *d = ls_calloc((size_t)cap + 1, sizeof *d);
    if (dir) rewinddir(dir);
    for (struct dirent *e; dir && (e = readdir(dir)) && n < cap;) {
        uint64_t h = name_hash(e->d_name, &ok);
        if (!ok) continue;
        char *run = ls_path_join(runs_root, e->d_name), *cfg = ls_path_join(run, RUN_CONFIG_FILE);
        if (ls_exists(cfg)) d[n++] = (on_disk){h, ls_strdup(e->d_name)}; // a run started there
        free(cfg);
        free(run);
    }
    if (dir) closedir(dir);
    qsort(d, (size_t)n, sizeof *d, cmp_on_disk);
    *n_out = n;
    return d;
}

static int same_flags(const exp_run *a, const exp_run *b) {
    if (a->n_args != b->n_args) return 0;
    for (int i = 0; i < a->n_args; i++)
        if (strcmp(a->args[i], b->args[i])) return 0;
    return 1;
}

// The directory of the run that group[0..n) (one hash, plan order) plans:
// the first of their own directories that exists; else a run started on disk
// with the run's hash (written under another experiment's label; the first
// by name); else the first planner's.
static const char *shared_dir(planned *group, int n, const char *runs_root, const on_disk *disk, int n_disk,
                              char *buf, size_t size) {
    for (int i = 0; i < n; i++)
        if (ls_exists(group[i].run->dir)) return group[i].run->dir;
    on_disk key = {group[0].run->hash, ""};
    int lo = 0, hi = n_disk;
    while (lo < hi) { // the first entry not below (hash, "")
        int mid = (lo + hi) / 2;
        if (cmp_on_disk(&disk[mid], &key) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < n_disk && disk[lo].hash == key.hash) {
        snprintf(buf, size, "%s/%s", runs_root, disk[lo].name);
        return buf;
    }
    return group[0].run->dir;
}

// Gives every run of one hash the one directory (shared_dir).
static int share_dir(planned *group, int n, const char *dir) {
    for (int i = 0; i < n; i++) {
        exp_run *r = group[i].run;
        if (!same_flags(r, group[0].run))
            return ls_fail("runs %s and %s have different flags but the same hash %016llx; rename one experiment's "
                           "sweep value", group[0].run->label, r->label, (unsigned long long)r->hash);
        group[i].dup = i > 0;
        if (!strcmp(r->dir, dir)) continue;
        if (strlen(dir) >= sizeof r->cfg.out) return ls_fail("run %s: directory name too long: %s", r->label, dir);
        char *copy = ls_strdup(dir);
        free(r->dir);
        r->dir = copy;
        snprintf(r->cfg.out, sizeof r->cfg.out, "%s", r->dir);
    }
    return 0;
}

static int cmp_planned_order(const void *a, const void *b) {
    const planned *x = a, *y = b;
    return (x->order > y->order) - (x->order < y->order);
}

int exp_set_load(exp_set *s, const char *const *files, int n_files, const char *assets, const char *results) {
    memset(s, 0, sizeof *s);
    if (n_files > EXP_MAX) return ls_fail("at most %d experiment files", EXP_MAX);
    int total = 0;
    for (int i = 0; i < n_files; i++) {
        if (exp_load(&s->exps[i], files[i], assets)) return -1;
        s->n_exps++;
        int n = exp_plan(&s->exps[i], results, &s->runs[i]);
        if (n < 0) return -1;
        s->n_runs[i] = n;
        if (exp_validate_analyses(&s->exps[i], s->runs[i], n)) return -1;
        if (total > EXP_MAX_RUNS - n) return ls_fail("%s: the experiments have more than %d runs", files[i], EXP_MAX_RUNS);
        total += n;
        for (int j = 0; j < i; j++)
            if (!strcmp(s->exps[j].name, s->exps[i].name))
                return ls_fail("%s: experiment name '%s' is also used by %s", files[i], s->exps[i].name, files[j]);
    }
    // Deduplicated by identity (the hash of the flags) in O(n log n): sorted
    // by (hash, order), the runs of one hash share one directory
    // (shared_dir), even where experiments label them differently; the first
    // is kept, in plan order.
    planned *all = ls_calloc((size_t)total + 1, sizeof *all);
    int k = 0;
    for (int i = 0; i < s->n_exps; i++)
        for (int r = 0; r < s->n_runs[i]; r++, k++) all[k] = (planned){&s->runs[i][r], k, 0};
    qsort(all, (size_t)total, sizeof *all, cmp_planned_hash);
    char *runs_root = ls_path_join(results, "runs"), buf[PATH_MAX];
    int n_disk, rc = 0;
    on_disk *disk = scan_runs(runs_root, &n_disk);
    for (int j = 0, end; j < total && !rc; j = end) {
        for (end = j + 1; end < total && all[end].run->hash == all[j].run->hash;) end++;
        const char *dir = shared_dir(all + j, end - j, runs_root, disk, n_disk, buf, sizeof buf);
        char *chosen = ls_strdup(dir); // dir may be one of the strings share_dir replaces
        rc = share_dir(all + j, end - j, chosen);
        free(chosen);
    }
    for (int i = 0; i < n_disk; i++) free(disk[i].name);
    free(disk);
    free(runs_root);
    if (rc) {
        free(all);
        return -1;
    }
    qsort(all, (size_t)total, sizeof *all, cmp_planned_order);
    s->unique = ls_calloc((size_t)total + 1, sizeof *s->unique);
    for (int j = 0; j < total; j++)
        if (!all[j].dup) s->unique[s->n_unique++] = all[j].run;
    free(all);
    return 0;
}
