#include "exp/experiment.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

// ----------------------------------------------------------------------------
// small helpers

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static void push_kv(exp_kv **arr, int *n, const char *key, const char *value, int line) {
    exp_kv *grown = realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    ls_assert(grown != NULL);
    *arr = grown;
    (*arr)[*n].key = ls_strdup(key);
    (*arr)[*n].value = ls_strdup(value);
    (*arr)[*n].raw = ls_strdup(value);
    (*arr)[*n].line = line;
    (*n)++;
}

const char *exp_default_assets(void) {
    const char *env = getenv("LORASCOPE_ASSETS");
    if (env && *env) return env;
    if (ls_is_dir("../shared/assets")) return "../shared/assets";
    return NULL;
}

// "$ASSETS/x" -> "<assets>/x" (malloc'd); other values copied.
static char *resolve(const char *value, const char *assets) {
    if (strncmp(value, "$ASSETS/", 8)) return ls_strdup(value);
    return ls_path_join(assets, value + 8);
}

static const char *const experiment_keys[] = {"name", "reproduces", "differs", "description"};
static const char *const analysis_kinds[] = {"table", "subspace", "amplify", "w-vs-dw", "spectrum", "intruders",
                                             "curve"};

// ----------------------------------------------------------------------------
// parsing

int exp_load(experiment *e, const char *path, const char *assets) {
    memset(e, 0, sizeof *e);
    e->path = ls_strdup(path);
    size_t size;
    char *text = ls_read_file(path, &size);
    if (!text) {
        exp_free(e);
        return -1;
    }
    int rc = 0, line_no = 0;
    enum { S_NONE, S_EXPERIMENT, S_TRAIN, S_SWEEP, S_ANALYSIS, S_EVAL } section = S_NONE;
    char *cursor = text;
    while (*cursor && !rc) {
        char *line = cursor, *nl = strchr(cursor, '\n');
        if (nl) {
            *nl = 0;
            cursor = nl + 1;
        } else {
            cursor += strlen(cursor);
        }
        line_no++;
        char *s = trim(line);
        if (!*s || *s == ';' || *s == '#') continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || trim(end + 1)[0]) {
                rc = ls_fail("%s:%d: expected a section header like [train], found '%s'", path, line_no, s);
                break;
            }
            *end = 0;
            char *name = trim(s + 1);
            if (!strcmp(name, "experiment")) section = S_EXPERIMENT;
            else if (!strcmp(name, "train")) section = S_TRAIN;
            else if (!strcmp(name, "sweep")) section = S_SWEEP;
            else if (!strcmp(name, "eval")) section = S_EVAL;
            else if (!strncmp(name, "analysis", 8) && isspace((unsigned char)name[8]) && *trim(name + 9)) {
                section = S_ANALYSIS;
                exp_analysis *grown = realloc(e->analyses, (size_t)(e->n_analyses + 1) * sizeof *grown);
                ls_assert(grown != NULL);
                e->analyses = grown;
                exp_analysis *a = &e->analyses[e->n_analyses++];
                memset(a, 0, sizeof *a);
                a->name = ls_strdup(trim(name + 9));
                a->line = line_no;
            } else {
                rc = ls_fail("%s:%d: unknown section [%s] (expected [experiment], [train], [sweep], [eval] "
                             "or [analysis NAME])", path, line_no, name);
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = ls_fail("%s:%d: expected 'key = value', found '%s'", path, line_no, s);
            break;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        // trailing comment after the value
        for (char *c = value; *c; c++)
            if ((*c == ';' || *c == '#') && c > value && isspace((unsigned char)c[-1])) {
                *c = 0;
                value = trim(value);
                break;
            }
        if (!*key) {
            rc = ls_fail("%s:%d: empty key", path, line_no);
            break;
        }
        if (!*value) {
            rc = ls_fail("%s:%d: key '%s': expected a value", path, line_no, key);
            break;
        }
        switch (section) {
        case S_NONE:
            rc = ls_fail("%s:%d: key '%s' before any [section]", path, line_no, key);
            break;
        case S_EXPERIMENT: {
            char **slot = NULL;
            if (!strcmp(key, experiment_keys[0])) slot = &e->name;
            else if (!strcmp(key, experiment_keys[1])) slot = &e->reproduces;
            else if (!strcmp(key, experiment_keys[2])) slot = &e->differs;
            else if (!strcmp(key, experiment_keys[3])) slot = &e->description;
            if (!slot) {
                rc = ls_fail("%s:%d: unknown key '%s' in [experiment] (expected name, reproduces, differs, "
                             "description)", path, line_no, key);
                break;
            }
            free(*slot);
            *slot = ls_strdup(value);
            break;
        }
        case S_TRAIN:
            for (int i = 0; i < e->n_train; i++)
                if (!strcmp(e->train[i].key, key)) rc = ls_fail("%s:%d: key '%s' given twice in [train]", path, line_no, key);
            if (!rc) push_kv(&e->train, &e->n_train, key, value, line_no);
            break;
        case S_EVAL: {
            static const char *const eval_keys[] = {"generate", "beam", "max-new", "batch-size"};
            int known = 0;
            for (size_t k = 0; k < sizeof eval_keys / sizeof *eval_keys; k++) known |= !strcmp(key, eval_keys[k]);
            if (!known) {
                rc = ls_fail("%s:%d: unknown key '%s' in [eval] (expected generate, beam, max-new, batch-size)", path,
                             line_no, key);
                break;
            }
            char *end;
            long v = strtol(value, &end, 10);
            if (*end || v < 0 || v > 1000000) {
                rc = ls_fail("%s:%d: [eval] %s: expected a non-negative integer, found '%s'", path, line_no, key, value);
                break;
            }
            push_kv(&e->eval, &e->n_eval, key, value, line_no);
            break;
        }
        case S_SWEEP: {
            if (!strcmp(key, "zip")) {
                char *zsave = NULL;
                int leader = -1;
                for (char *z = strtok_r(value, ",", &zsave); z && !rc; z = strtok_r(NULL, ",", &zsave)) {
                    z = trim(z);
                    int ax = -1;
                    for (int i = 0; i < e->n_axes; i++)
                        if (!strcmp(e->axes[i].name, z)) ax = i;
                    if (ax < 0) {
                        rc = ls_fail("%s:%d: zip: no axis '%s' above this line in [sweep]", path, line_no, z);
                    } else if (leader < 0) {
                        leader = ax;
                    } else if (e->axes[ax].n_values != e->axes[leader].n_values) {
                        rc = ls_fail("%s:%d: zip: axis '%s' has %d values but '%s' has %d", path, line_no, z,
                                     e->axes[ax].n_values, e->axes[leader].name, e->axes[leader].n_values);
                    } else {
                        e->axes[ax].leader = leader;
                    }
                }
                break;
            }
            for (int i = 0; i < e->n_axes; i++)
                if (!strcmp(e->axes[i].name, key)) rc = ls_fail("%s:%d: axis '%s' given twice in [sweep]", path, line_no, key);
            if (rc) break;
            exp_axis *grown = realloc(e->axes, (size_t)(e->n_axes + 1) * sizeof *grown);
            ls_assert(grown != NULL);
            e->axes = grown;
            exp_axis *ax = &e->axes[e->n_axes++];
            memset(ax, 0, sizeof *ax);
            ax->name = ls_strdup(key);
            ax->line = line_no;
            ax->leader = -1;
            char *vsave = NULL;
            for (char *v = strtok_r(value, "|", &vsave); v; v = strtok_r(NULL, "|", &vsave)) {
                v = trim(v);
                if (!*v) continue;
                char **g = realloc(ax->values, (size_t)(ax->n_values + 1) * sizeof *g);
                ls_assert(g != NULL);
                ax->values = g;
                ax->values[ax->n_values++] = ls_strdup(v);
            }
            if (ax->n_values == 0) rc = ls_fail("%s:%d: axis '%s': expected values separated by '|'", path, line_no, key);
            break;
        }
        case S_ANALYSIS: {
            exp_analysis *a = &e->analyses[e->n_analyses - 1];
            if (!strcmp(key, "kind")) {
                int known = 0;
                for (size_t k = 0; k < sizeof analysis_kinds / sizeof *analysis_kinds; k++)
                    known |= !strcmp(value, analysis_kinds[k]);
                if (!known) {
                    rc = ls_fail("%s:%d: [analysis %s] kind '%s' unknown (expected table, subspace, amplify, "
                                 "w-vs-dw, spectrum, intruders or curve)", path, line_no, a->name, value);
                    break;
                }
                free(a->kind);
                a->kind = ls_strdup(value);
            }
            push_kv(&a->kv, &a->n_kv, key, value, line_no);
            break;
        }
        }
    }
    free(text);
    if (!rc && !e->name) rc = ls_fail("%s: [experiment] needs a 'name'", path);
    if (!rc && e->name) {
        for (const char *c = e->name; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
                rc = ls_fail("%s: [experiment] name '%s': expected letters, digits, '_' or '-'", path, e->name);
                break;
            }
    }
    for (int i = 0; i < e->n_analyses && !rc; i++)
        if (!e->analyses[i].kind)
            rc = ls_fail("%s:%d: [analysis %s] needs a 'kind'", path, e->analyses[i].line, e->analyses[i].name);
    // Sweep axes and [train] flags may not overlap.
    for (int i = 0; i < e->n_axes && !rc; i++)
        for (int j = 0; j < e->n_train; j++)
            if (!strcmp(e->axes[i].name, e->train[j].key))
                rc = ls_fail("%s:%d: '%s' is both a [train] flag and a [sweep] axis", path, e->axes[i].line,
                             e->axes[i].name);
    // Assets: every $ASSETS/ path must exist before anything runs.
    for (int i = 0; i < e->n_train && !rc; i++) {
        if (strncmp(e->train[i].value, "$ASSETS/", 8)) continue;
        if (!assets) {
            rc = ls_fail("%s:%d: '%s' uses $ASSETS but no assets directory is set (--assets DIR or "
                         "LORASCOPE_ASSETS)", path, e->train[i].line, e->train[i].key);
            break;
        }
        char *p = resolve(e->train[i].value, assets);
        if (!ls_exists(p)) rc = ls_fail("%s:%d: '%s': asset %s not found", path, e->train[i].line, e->train[i].key, p);
        free(e->train[i].value);
        e->train[i].value = p;
    }
    if (!rc && assets) e->assets = ls_strdup(assets);
    if (rc) {
        exp_free(e);
        return -1;
    }
    return 0;
}

void exp_free(experiment *e) {
    for (int i = 0; i < e->n_train; i++) free(e->train[i].key), free(e->train[i].value), free(e->train[i].raw);
    free(e->train);
    for (int i = 0; i < e->n_eval; i++) free(e->eval[i].key), free(e->eval[i].value), free(e->eval[i].raw);
    free(e->eval);
    for (int i = 0; i < e->n_axes; i++) {
        for (int j = 0; j < e->axes[i].n_values; j++) free(e->axes[i].values[j]);
        free(e->axes[i].values);
        free(e->axes[i].name);
    }
    free(e->axes);
    for (int i = 0; i < e->n_analyses; i++) {
        exp_analysis *a = &e->analyses[i];
        for (int j = 0; j < a->n_kv; j++) free(a->kv[j].key), free(a->kv[j].value), free(a->kv[j].raw);
        free(a->kv);
        free(a->name);
        free(a->kind);
    }
    free(e->analyses);
    free(e->path);
    free(e->name);
    free(e->reproduces);
    free(e->differs);
    free(e->description);
    free(e->assets);
    memset(e, 0, sizeof *e);
}

const char *exp_analysis_get(const exp_analysis *a, const char *key) {
    for (int i = 0; i < a->n_kv; i++)
        if (!strcmp(a->kv[i].key, key)) return a->kv[i].value;
    return NULL;
}

// ----------------------------------------------------------------------------
// planning

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; // separator
}

typedef struct {
    const char *key, *value, *raw;
} flag;

static int cmp_flag(const void *a, const void *b) { return strcmp(((const flag *)a)->key, ((const flag *)b)->key); }

int exp_plan(const experiment *e, const char *results_root, exp_run **out) {
    int n = 1;
    for (int i = 0; i < e->n_axes; i++)
        if (e->axes[i].leader < 0) n *= e->axes[i].n_values;
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

const char *exp_run_axis(const experiment *e, const exp_run *r, const char *axis) {
    for (int i = 0; i < e->n_axes; i++)
        if (!strcmp(e->axes[i].name, axis)) return e->axes[i].values[r->value_index[i]];
    return NULL;
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
            if (value_of[c] >= 0 && runs[r].value_index[axis_of[c]] != value_of[c]) ok = 0;
        if (ok) out[k++] = r;
    }
    return k;
}
