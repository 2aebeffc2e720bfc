#include "exp/experiment.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ini_reader.h"
#include "base/options.h"
#include "base/util.h"
#include "train/evaluate.h"

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
// parsing: one callback per section kind, over base/ini_reader

typedef enum { S_NONE, S_EXPERIMENT, S_TRAIN, S_SWEEP, S_ANALYSIS, S_EVAL } section_kind;

typedef struct {
    experiment *e;
    const char *path;
    section_kind section;
} loader;

static int on_section(void *ctx, const char *name, int line) {
    loader *L = ctx;
    experiment *e = L->e;
    if (!strcmp(name, "experiment")) L->section = S_EXPERIMENT;
    else if (!strcmp(name, "train")) L->section = S_TRAIN;
    else if (!strcmp(name, "sweep")) L->section = S_SWEEP;
    else if (!strcmp(name, "eval")) L->section = S_EVAL;
    else if (!strncmp(name, "analysis", 8) && isspace((unsigned char)name[8]) && name[9]) {
        char *buf = ls_strdup(name + 9), *copy = ls_strdup(trim(buf));
        free(buf);
        L->section = S_ANALYSIS;
        exp_analysis *grown = realloc(e->analyses, (size_t)(e->n_analyses + 1) * sizeof *grown);
        ls_assert(grown != NULL);
        e->analyses = grown;
        exp_analysis *a = &e->analyses[e->n_analyses++];
        memset(a, 0, sizeof *a);
        a->name = copy;
        a->line = line;
    } else {
        return ls_fail("%s:%d: unknown section [%s] (expected [experiment], [train], [sweep], [eval] "
                       "or [analysis NAME])", L->path, line, name);
    }
    return 0;
}

static int experiment_key(loader *L, const char *key, const char *value, int line) {
    experiment *e = L->e;
    char **slot = NULL;
    if (!strcmp(key, experiment_keys[0])) slot = &e->name;
    else if (!strcmp(key, experiment_keys[1])) slot = &e->reproduces;
    else if (!strcmp(key, experiment_keys[2])) slot = &e->differs;
    else if (!strcmp(key, experiment_keys[3])) slot = &e->description;
    if (!slot)
        return ls_fail("%s:%d: unknown key '%s' in [experiment] (expected name, reproduces, differs, description)",
                       L->path, line, key);
    if (*slot) return ls_fail("%s:%d: key '%s' given twice in [experiment]", L->path, line, key);
    *slot = ls_strdup(value);
    return 0;
}

static int eval_key(loader *L, const char *key, const char *value, int line) {
    static const char *const eval_keys[] = {"generate", "beam", "max-new", "batch-size"};
    int known = 0;
    for (size_t k = 0; k < sizeof eval_keys / sizeof *eval_keys; k++) known |= !strcmp(key, eval_keys[k]);
    if (!known)
        return ls_fail("%s:%d: unknown key '%s' in [eval] (expected generate, beam, max-new, batch-size)", L->path,
                       line, key);
    for (int i = 0; i < L->e->n_eval; i++)
        if (!strcmp(L->e->eval[i].key, key)) return ls_fail("%s:%d: key '%s' given twice in [eval]", L->path, line, key);
    // Checked here against evaluate's own option table, before anything trains.
    evaluate_request *scratch = ls_malloc(sizeof *scratch);
    evaluate_defaults(scratch);
    int rc = opt_set_flag(evaluate_table(), scratch, key, value);
    free(scratch);
    if (rc) return ls_fail_prefix("%s:%d: [eval]", L->path, line);
    push_kv(&L->e->eval, &L->e->n_eval, key, value, line);
    return 0;
}

// zip = a, b: axes that vary together (same number of values).
static int zip_key(loader *L, char *value, int line) {
    experiment *e = L->e;
    char *zsave = NULL;
    int leader = -1;
    for (char *z = strtok_r(value, ",", &zsave); z; z = strtok_r(NULL, ",", &zsave)) {
        z = trim(z);
        int ax = -1;
        for (int i = 0; i < e->n_axes; i++)
            if (!strcmp(e->axes[i].name, z)) ax = i;
        if (ax < 0) return ls_fail("%s:%d: zip: no axis '%s' above this line in [sweep]", L->path, line, z);
        // An axis zipped twice (here or on an earlier zip line) would lead
        // itself or form a cycle, and the sweep would collapse silently.
        int zipped = e->axes[ax].leader >= 0 || ax == leader;
        for (int i = 0; i < e->n_axes; i++) zipped |= e->axes[i].leader == ax;
        if (zipped)
            return ls_fail("%s:%d: zip: axis '%s' is already zipped (an axis may appear in one zip, once)", L->path,
                           line, z);
        if (leader < 0) {
            leader = ax;
        } else if (e->axes[ax].n_values != e->axes[leader].n_values) {
            return ls_fail("%s:%d: zip: axis '%s' has %d values but '%s' has %d", L->path, line, z,
                           e->axes[ax].n_values, e->axes[leader].name, e->axes[leader].n_values);
        } else {
            e->axes[ax].leader = leader;
        }
    }
    return 0;
}

static int sweep_key(loader *L, const char *key, char *value, int line) {
    experiment *e = L->e;
    if (!strcmp(key, "zip")) return zip_key(L, value, line);
    for (int i = 0; i < e->n_axes; i++)
        if (!strcmp(e->axes[i].name, key)) return ls_fail("%s:%d: axis '%s' given twice in [sweep]", L->path, line, key);
    exp_axis *grown = realloc(e->axes, (size_t)(e->n_axes + 1) * sizeof *grown);
    ls_assert(grown != NULL);
    e->axes = grown;
    exp_axis *ax = &e->axes[e->n_axes++];
    memset(ax, 0, sizeof *ax);
    ax->name = ls_strdup(key);
    ax->line = line;
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
    if (ax->n_values == 0) return ls_fail("%s:%d: axis '%s': expected values separated by '|'", L->path, line, key);
    return 0;
}

static int analysis_key(loader *L, const char *key, const char *value, int line) {
    exp_analysis *a = &L->e->analyses[L->e->n_analyses - 1];
    if (exp_analysis_get(a, key))
        return ls_fail("%s:%d: key '%s' given twice in [analysis %s]", L->path, line, key, a->name);
    if (!strcmp(key, "kind")) {
        int known = 0;
        for (size_t k = 0; k < sizeof analysis_kinds / sizeof *analysis_kinds; k++) known |= !strcmp(value, analysis_kinds[k]);
        if (!known)
            return ls_fail("%s:%d: [analysis %s] kind '%s' unknown (expected table, subspace, amplify, "
                           "w-vs-dw, spectrum, intruders or curve)", L->path, line, a->name, value);
        free(a->kind);
        a->kind = ls_strdup(value);
    }
    push_kv(&a->kv, &a->n_kv, key, value, line);
    return 0;
}

static int on_entry(void *ctx, const char *section, const char *key, const char *value_in, int line) {
    loader *L = ctx;
    experiment *e = L->e;
    (void)section;
    if (!*key) return ls_fail("%s:%d: empty key", L->path, line);
    if (!*value_in) return ls_fail("%s:%d: key '%s': expected a value", L->path, line, key);
    char *value = ls_strdup(value_in);
    int rc = 0;
    switch (L->section) {
    case S_NONE: rc = ls_fail("%s:%d: key '%s' before any [section]", L->path, line, key); break;
    case S_EXPERIMENT: rc = experiment_key(L, key, value, line); break;
    case S_TRAIN:
        for (int i = 0; i < e->n_train && !rc; i++)
            if (!strcmp(e->train[i].key, key)) rc = ls_fail("%s:%d: key '%s' given twice in [train]", L->path, line, key);
        if (!rc) push_kv(&e->train, &e->n_train, key, value, line);
        break;
    case S_EVAL: rc = eval_key(L, key, value, line); break;
    case S_SWEEP: rc = sweep_key(L, key, value, line); break;
    case S_ANALYSIS: rc = analysis_key(L, key, value, line); break;
    }
    free(value);
    return rc;
}

// What needs the whole file: a name, a kind per analysis, axes apart from [train].
static int check_loaded(const experiment *e, const char *path) {
    if (!e->name) return ls_fail("%s: [experiment] needs a 'name'", path);
    for (const char *c = e->name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
            return ls_fail("%s: [experiment] name '%s': expected letters, digits, '_' or '-'", path, e->name);
    for (int i = 0; i < e->n_analyses; i++)
        if (!e->analyses[i].kind)
            return ls_fail("%s:%d: [analysis %s] needs a 'kind'", path, e->analyses[i].line, e->analyses[i].name);
    for (int i = 0; i < e->n_axes; i++)
        for (int j = 0; j < e->n_train; j++)
            if (!strcmp(e->axes[i].name, e->train[j].key))
                return ls_fail("%s:%d: '%s' is both a [train] flag and a [sweep] axis", path, e->axes[i].line,
                               e->axes[i].name);
    return 0;
}

// Every $ASSETS/ path must exist before anything runs.
static int resolve_assets(experiment *e, const char *path, const char *assets) {
    for (int i = 0; i < e->n_train; i++) {
        if (strncmp(e->train[i].value, "$ASSETS/", 8)) continue;
        if (!assets)
            return ls_fail("%s:%d: '%s' uses $ASSETS but no assets directory is set (--assets DIR or "
                           "LORASCOPE_ASSETS)", path, e->train[i].line, e->train[i].key);
        char *p = resolve(e->train[i].value, assets);
        free(e->train[i].value);
        e->train[i].value = p;
        if (!ls_exists(p)) return ls_fail("%s:%d: '%s': asset %s not found", path, e->train[i].line, e->train[i].key, p);
    }
    if (assets) e->assets = ls_strdup(assets);
    return 0;
}

int exp_load(experiment *e, const char *path, const char *assets) {
    memset(e, 0, sizeof *e);
    e->path = ls_strdup(path);
    loader L = {.e = e, .path = path, .section = S_NONE};
    if (ls_ini_read(path, on_section, on_entry, &L) || check_loaded(e, path) || resolve_assets(e, path, assets)) {
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
