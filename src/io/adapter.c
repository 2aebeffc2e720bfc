#include "io/adapter.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/safetensors.h"

const char *adapter_key_prefix(ls_family f) { return arch_family_of(f)->peft_prefix; }

// ----------------------------------------------------------------------------
// adapter_config.json

// Python regular expressions as PEFT uses them (target_modules given as a
// string: re.fullmatch; rank_pattern / alpha_pattern keys: re.match of
// "(.*\.)?(KEY)$") run through POSIX extended regexes. The escapes \d \w \s
// and "(?:" translate; lazy quantifiers match the same strings greedily for a
// whole-string match; other Python-only syntax (lookarounds, named groups) is
// refused. Returns 1 (match), 0 (no match) or -1 (not translatable).
static int py_regex_match(const char *pattern, const char *prefix, const char *text) {
    size_t n = strlen(pattern);
    char *ere = ls_malloc(strlen(prefix) + 16 * n + 8);
    char *o = ere + sprintf(ere, "^%s(", prefix);
    for (size_t i = 0; i < n; i++) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < n) {
            char e = pattern[++i];
            if (e == 'd') o += sprintf(o, "[0-9]");
            else if (e == 'w') o += sprintf(o, "[A-Za-z0-9_]");
            else if (e == 's') o += sprintf(o, "[[:space:]]");
            else o += sprintf(o, "\\%c", e);
        } else if (c == '(' && i + 1 < n && pattern[i + 1] == '?') {
            if (i + 2 < n && pattern[i + 2] == ':') {
                *o++ = '(';
                i += 2;
            } else {
                free(ere);
                return -1;
            }
        } else if ((c == '?' ) && i > 0 && strchr("*+?}", pattern[i - 1]) && pattern[i - 1] != '\\') {
            continue; // a lazy quantifier: the same whole-string matches
        } else {
            *o++ = c;
        }
    }
    strcpy(o, ")$");
    regex_t re;
    if (regcomp(&re, ere, REG_EXTENDED | REG_NOSUB)) {
        free(ere);
        return -1;
    }
    int m = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    free(ere);
    return m;
}

// PEFT's get_pattern_key: the first key of a rank_pattern / alpha_pattern
// object with re.match(rf"(.*\.)?({key})$", module name), or NULL.
static const cJSON *pattern_lookup(const cJSON *pattern, const char *full_name) {
    if (!cJSON_IsObject(pattern)) return NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, pattern) if (py_regex_match(it->string, "(.*\\.)?", full_name) == 1) return it;
    return NULL;
}

// Ranks and alphas are range-checked as doubles before any cast (a value of
// 1e300 must not reach (int) or (float)). The limits are far above real adapters.
#define ADAPTER_MAX_RANK 65536
#define ADAPTER_MAX_ALPHA 1e6

static int is_rank(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 1 &&
           v->valuedouble <= ADAPTER_MAX_RANK && v->valuedouble == floor(v->valuedouble);
}

static int is_alpha(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble > 0 &&
           v->valuedouble <= ADAPTER_MAX_ALPHA;
}

static const char *number_text(const cJSON *v, char *buf, size_t size) {
    if (cJSON_IsNumber(v)) snprintf(buf, size, "%g", v->valuedouble);
    else snprintf(buf, size, "a non-number");
    return buf;
}

typedef struct {
    int r;
    float alpha;
    int use_rslora;
    int use_dora;
    int fan_in_fan_out;
    const char *target_regex;      // target_modules given as a string, or NULL
    const cJSON *layers;           // layers_to_transform: an int or a list, or NULL
    cJSON *root; // kept for the patterns
} adapter_config;

static int read_config(adapter_config *cfg, lora_adapter *a, const char *path) {
    char *text = ls_read_file(path, NULL);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail("%s: invalid JSON (expected an object)", path);
    }
    cfg->root = root;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (pt && !(cJSON_IsString(pt) && !strcmp(pt->valuestring, "LORA")))
        return ls_fail("%s: field 'peft_type': expected \"LORA\", found %s", path,
                       cJSON_IsString(pt) ? pt->valuestring : "a non-string");
    const cJSON *dora = cJSON_GetObjectItemCaseSensitive(root, "use_dora");
    if (dora && !cJSON_IsBool(dora) && !cJSON_IsNull(dora))
        return ls_fail("%s: field 'use_dora': expected true or false", path);
    cfg->use_dora = cJSON_IsTrue(dora);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "r");
    if (!is_rank(r)) return ls_fail("%s: field 'r': expected a positive integer rank in [1, %d]", path, ADAPTER_MAX_RANK);
    cfg->r = (int)r->valuedouble;
    const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    if (!is_alpha(alpha))
        return ls_fail("%s: field 'lora_alpha': expected a finite number in (0, %g]", path, ADAPTER_MAX_ALPHA);
    cfg->alpha = (float)alpha->valuedouble;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "use_rslora");
    if (rs && !cJSON_IsBool(rs) && !cJSON_IsNull(rs))
        return ls_fail("%s: field 'use_rslora': expected true or false", path);
    cfg->use_rslora = cJSON_IsTrue(rs);
    const cJSON *fifo = cJSON_GetObjectItemCaseSensitive(root, "fan_in_fan_out");
    if (fifo && !cJSON_IsBool(fifo) && !cJSON_IsNull(fifo))
        return ls_fail("%s: field 'fan_in_fan_out': expected true or false", path);
    cfg->fan_in_fan_out = cJSON_IsTrue(fifo);
    const cJSON *ltt = cJSON_GetObjectItemCaseSensitive(root, "layers_to_transform");
    if (ltt && !cJSON_IsNull(ltt)) {
        int ok = cJSON_IsNumber(ltt) || cJSON_IsArray(ltt);
        const cJSON *it;
        if (cJSON_IsArray(ltt)) cJSON_ArrayForEach(it, ltt) ok &= cJSON_IsNumber(it);
        if (!ok) return ls_fail("%s: field 'layers_to_transform': expected a layer index or a list of them", path);
        cfg->layers = ltt;
    }
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    if (cJSON_IsString(tm)) {
        cfg->target_regex = tm->valuestring;
        a->n_targets = 1;
        a->target_modules = ls_malloc(sizeof(char *));
        a->target_modules[0] = ls_strdup(tm->valuestring);
    } else if (cJSON_IsArray(tm)) {
        int n = cJSON_GetArraySize(tm);
        a->target_modules = ls_calloc(n, sizeof(char *));
        const cJSON *it;
        cJSON_ArrayForEach(it, tm) {
            if (!cJSON_IsString(it)) return ls_fail("%s: field 'target_modules': expected strings", path);
            a->target_modules[a->n_targets++] = ls_strdup(it->valuestring);
        }
    } else {
        return ls_fail("%s: field 'target_modules': expected a list of module names", path);
    }
    const char *pats[] = {"rank_pattern", "alpha_pattern"};
    char found[64];
    for (int p = 0; p < 2; p++) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(root, pats[p]);
        if (!pat || cJSON_IsNull(pat)) continue;
        if (!cJSON_IsObject(pat)) return ls_fail("%s: field '%s': expected an object", path, pats[p]);
        const cJSON *it;
        cJSON_ArrayForEach(it, pat) {
            if (p == 0 && !is_rank(it))
                return ls_fail("%s: field 'rank_pattern' key '%s': expected a positive integer rank in [1, %d], found %s",
                               path, it->string, ADAPTER_MAX_RANK, number_text(it, found, sizeof found));
            if (p == 1 && !is_alpha(it))
                return ls_fail("%s: field 'alpha_pattern' key '%s': expected a finite number in (0, %g], found %s",
                               path, it->string, ADAPTER_MAX_ALPHA, number_text(it, found, sizeof found));
            if (py_regex_match(it->string, "(.*\\.)?", "") < 0)
                return ls_fail("%s: field '%s' key '%s': expected a regular expression without lookarounds or "
                               "named groups", path, pats[p], it->string);
        }
    }
    if (cfg->target_regex && py_regex_match(cfg->target_regex, "", "") < 0)
        return ls_fail("%s: field 'target_modules': expected a regular expression without lookarounds or named "
                       "groups, found '%s'", path, cfg->target_regex);
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "base_model_name_or_path");
    if (cJSON_IsString(base)) a->base_model = ls_strdup(base->valuestring);
    a->r = cfg->r;
    a->alpha = cfg->alpha;
    a->use_rslora = cfg->use_rslora;
    return 0;
}

// ----------------------------------------------------------------------------
// adapter_model.safetensors

typedef enum { SIDE_A = 0, SIDE_B = 1, SIDE_MAG = 2 } lora_side;

// What a key of adapter_model.safetensors holds.
typedef struct {
    char module[200];   // the module's name inside the model: "model.layers.0.self_attn.q_proj"
    lora_side side;
    int embedding;      // lora_embedding_{A,B}
    char name[64];      // the adapter name between lora_X and weight ("" when PEFT removed it)
} peft_key;

// Splits "base_model.model.<module>.lora_A[.<adapter name>].weight" (and
// lora_embedding_{A,B}[.<name>], lora_magnitude_vector[.<name>][.weight]).
// Returns 1 for a LoRA tensor, 0 for any other tensor (saved whole), -1 for a
// key that names a LoRA part but cannot be split (ls_error() set).
static int split_key(const char *key, peft_key *k, const char *path) {
    static const char *parts[] = {"lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector"};
    memset(k, 0, sizeof *k);
    const char *pre = "base_model.model.";
    for (const char *p = strchr(key, '.'); p; p = strchr(p + 1, '.')) {
        int which = -1;
        size_t len = 0;
        for (int i = 0; i < 5; i++) {
            size_t n = strlen(parts[i]);
            if (!strncmp(p + 1, parts[i], n) && (p[1 + n] == '.' || p[1 + n] == 0)) which = i, len = n;
        }
        if (which < 0) continue;
        if (strncmp(key, pre, strlen(pre)) || p <= key + strlen(pre))
            return ls_fail("%s: key '%s': expected base_model.model.<module>.%s...", path, key, parts[which]), -1;
        size_t mlen = (size_t)(p - key) - strlen(pre);
        const char *tail = p + 1 + len; // "", ".weight", ".<name>", ".<name>.weight"
        const char *w = strstr(tail, ".weight");
        size_t nlen = strlen(tail);
        if (w && !strcmp(w, ".weight")) nlen = (size_t)(w - tail);
        if (mlen >= sizeof k->module || nlen >= sizeof k->name ||
            (nlen > 0 && (tail[0] != '.' || memchr(tail + 1, '.', nlen - 1))))
            return ls_fail("%s: key '%s': cannot be grouped (expected <module>.%s[.<adapter name>][.weight])", path,
                           key, parts[which]), -1;
        memcpy(k->module, key + strlen(pre), mlen);
        if (nlen) memcpy(k->name, tail + 1, nlen - 1);
        k->side = which == 4 ? SIDE_MAG : (lora_side)(which % 2);
        k->embedding = which == 2 || which == 3;
        return 1;
    }
    return 0;
}

// PEFT's layer index of a module name: the first all-digit component with a
// component before it and one after it (tuners_utils.py). Fills the site's
// stack, layer and path; layer -1 (path = the whole name) when there is none.
static void split_module(adapter_site *m, const char *module) {
    snprintf(m->name, sizeof m->name, "%s", module);
    m->layer = -1;
    snprintf(m->path, sizeof m->path, "%s", module);
    const char *first_dot = strchr(module, '.');
    for (const char *p = first_dot; p; p = strchr(p + 1, '.')) {
        const char *d = p + 1;
        size_t n = strspn(d, "0123456789");
        if (n == 0 || n > 6 || d[n] != '.') continue;
        m->layer = atoi(d);
        snprintf(m->stack, sizeof m->stack, "%.*s", (int)(p - module), module);
        snprintf(m->path, sizeof m->path, "%s", d + n + 1);
        return;
    }
}

// The layout of a lorascope family: every site "<family peft prefix>.<i>.<module path>",
// a linear LoRA without DoRA. Sets a->family; 0 if no family fits.
static int detect_family(lora_adapter *a) {
    if (a->use_dora) return 0;
    for (int f = 0; f < LS_N_FAMILIES; f++) {
        const arch_family *af = arch_family_of((ls_family)f);
        const char *stack = af->peft_prefix + strlen("base_model.model.");
        int ok = a->n_modules > 0;
        for (int i = 0; i < a->n_modules && ok; i++) {
            const adapter_site *m = &a->modules[i];
            ok = !m->embedding && m->layer >= 0 && !strcmp(m->stack, stack) &&
                 arch_module_by_path((ls_family)f, m->path) != NULL;
        }
        if (ok) {
            a->family = (ls_family)f;
            return 1;
        }
    }
    return 0;
}

// 1 if `name` is a tensor of family f's PEFT modules_to_save (its classifier;
// bert: its pooler too, as modules_to_save = ["classifier", "pooler"] saves it).
static int is_saved_name(ls_family f, const char *name) {
    const arch_family *a = arch_family_of(f);
    if (!a || !a->encoder) return 0;
    const char *head[4] = {a->head_out_w, a->head_out_b, a->head_dense_w, a->head_dense_b};
    for (int k = 0; k < 4; k++)
        if (!strcmp(name, head[k])) return 1;
    return 0;
}

void adapter_add_saved(lora_adapter *a, const char *name, int ndim, const int64_t *shape, const float *data) {
    adapter_tensor *grown = realloc(a->saved, (size_t)(a->n_saved + 1) * sizeof *grown);
    ls_assert(grown != NULL);
    a->saved = grown;
    adapter_tensor *t = &a->saved[a->n_saved++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = shape[0];
    t->shape[1] = ndim > 1 ? shape[1] : 1;
    size_t n = (size_t)t->shape[0] * (size_t)t->shape[1];
    t->data = ls_malloc(n * sizeof(float));
    memcpy(t->data, data, n * sizeof(float));
}

const adapter_tensor *adapter_find_saved(const lora_adapter *a, const char *name) {
    for (int i = 0; i < a->n_saved; i++)
        if (!strcmp(a->saved[i].name, name)) return &a->saved[i];
    return NULL;
}

// A tensor saved whole (modules_to_save, a saved embedding): float, 1 to 4
// dims (kept as (shape[0], the rest)), finite.
static int read_saved(lora_adapter *a, const st_file *f, const st_tensor *t, const char *name, const char *path) {
    if (!st_dtype_is_float(t->dtype) || t->ndim < 1 || t->ndim > 4)
        return ls_fail("%s: tensor '%s': expected a float tensor of 1 to 4 dimensions", path, t->name);
    if (adapter_find_saved(a, name)) return ls_fail("%s: tensor '%s' given twice", path, t->name);
    float *x = st_load_float(f, t);
    int64_t shape[2] = {t->shape[0], t->numel / (t->shape[0] ? t->shape[0] : 1)};
    int rc = ckpt_check_finite(path, t->name, x, t->numel);
    if (!rc) adapter_add_saved(a, name, t->ndim > 1 ? 2 : 1, shape, x);
    free(x);
    return rc;
}

// The site of module `name`, created when new.
static adapter_site *site_of(lora_adapter *a, const peft_key *k) {
    for (int i = 0; i < a->n_modules; i++)
        if (!strcmp(a->modules[i].name, k->module)) return &a->modules[i];
    adapter_site *m = &a->modules[a->n_modules++];
    split_module(m, k->module);
    m->embedding = k->embedding;
    m->r = -1;
    return m;
}

// One lora_A / lora_B / magnitude tensor into its site.
static int read_part(lora_adapter *a, const st_file *f, const st_tensor *t, const peft_key *k, const char *path) {
    if (!st_dtype_is_float(t->dtype))
        return ls_fail("%s: tensor '%s': expected dtype F32, F16 or BF16, found %s", path, t->name,
                       st_dtype_name(t->dtype));
    adapter_site *m = site_of(a, k);
    if (m->embedding != k->embedding)
        return ls_fail("%s: tensor '%s': module %s mixes lora_embedding and lora_A/B tensors", path, t->name, m->name);
    if (k->side == SIDE_MAG) {
        if (t->ndim != 1 && !(t->ndim == 2 && t->shape[1] == 1))
            return ls_fail("%s: tensor '%s': expected a vector (d_out), found %d dimensions", path, t->name, t->ndim);
        if (m->magnitude) return ls_fail("%s: tensor '%s' given twice", path, t->name);
        if (m->d_out && m->d_out != t->shape[0])
            return ls_fail("%s: tensor '%s': %lld entries but lora_B has %d rows", path, t->name,
                           (long long)t->shape[0], m->d_out);
        m->d_out = (int)t->shape[0];
        m->magnitude = st_load_float(f, t);
        return ckpt_check_finite(path, t->name, m->magnitude, t->numel);
    }
    if (t->ndim != 2) return ls_fail("%s: tensor '%s': expected 2 dimensions, found %d", path, t->name, t->ndim);
    float **slot = k->side == SIDE_A ? &m->A : &m->B;
    if (*slot) return ls_fail("%s: tensor '%s' given twice", path, t->name);
    int r = (int)(k->side == SIDE_A ? t->shape[0] : t->shape[1]);
    if (m->r >= 0 && m->r != r)
        return ls_fail("%s: tensor '%s': rank %d disagrees with its lora_%c's rank %d", path, t->name, r,
                       k->side == SIDE_A ? 'B' : 'A', m->r);
    if (r < 1)
        return ls_fail("%s: tensor '%s': expected rank >= 1, found shape (%lld, %lld)", path, t->name,
                       (long long)t->shape[0], (long long)t->shape[1]);
    if (k->side == SIDE_B && m->magnitude && m->d_out != t->shape[0])
        return ls_fail("%s: tensor '%s': %lld rows but lora_magnitude_vector has %d entries", path, t->name,
                       (long long)t->shape[0], m->d_out);
    m->r = r;
    if (k->side == SIDE_A) m->d_in = (int)t->shape[1];
    else m->d_out = (int)t->shape[0];
    *slot = st_load_float(f, t);
    return ckpt_check_finite(path, t->name, *slot, t->numel);
}

// Every key: LoRA parts into sites, the rest saved whole. One adapter name only.
static int read_keys(lora_adapter *a, const st_file *f, const char *path) {
    char adapter_name[64] = {0};
    int have_name = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        peft_key k;
        int kind = split_key(t->name, &k, path);
        if (kind < 0) return -1;
        if (kind == 0) {
            const char *pre = "base_model.model.";
            const char *name = strncmp(t->name, pre, strlen(pre)) ? t->name : t->name + strlen(pre);
            if (read_saved(a, f, t, name, path)) return -1;
            continue;
        }
        if (have_name && strcmp(adapter_name, k.name))
            return ls_fail("%s: key '%s': a second adapter name ('%s' and '%s'); expected one adapter per file", path,
                           t->name, adapter_name, k.name);
        snprintf(adapter_name, sizeof adapter_name, "%s", k.name);
        have_name = 1;
        if (read_part(a, f, t, &k, path)) return -1;
    }
    return 0;
}

// 1 if site m is one that target_modules and layers_to_transform select (PEFT's
// check_target_module_exists).
static int is_targeted(const lora_adapter *a, const adapter_config *cfg, const adapter_site *m) {
    if (cfg->target_regex) {
        if (!strcmp(cfg->target_regex, "all-linear")) return 1;
        return py_regex_match(cfg->target_regex, "", m->name) == 1;
    }
    int found = 0;
    size_t n = strlen(m->name);
    for (int i = 0; i < a->n_targets && !found; i++) {
        const char *t = a->target_modules[i];
        size_t k = strlen(t);
        found = !strcmp(t, "all-linear") || !strcmp(m->name, t) || (k < n && m->name[n - k - 1] == '.' && !strcmp(m->name + n - k, t));
    }
    if (!found || !cfg->layers) return found;
    if (cJSON_IsNumber(cfg->layers)) return m->layer == (int)cfg->layers->valuedouble;
    const cJSON *it;
    cJSON_ArrayForEach(it, cfg->layers) if (m->layer == (int)it->valuedouble) return 1;
    return 0;
}

// Each site complete, targeted, of the rank and alpha the config gives it.
static int check_sites(lora_adapter *a, const adapter_config *cfg, const char *path, const char *cfg_path) {
    int matched = 0;
    for (int k = 0; k < a->n_modules; k++) {
        adapter_site *m = &a->modules[k];
        if (!m->A || !m->B)
            return ls_fail("%s: module %s has lora_%s but no lora_%s", path, m->name,
                           m->A ? "A" : m->B ? "B" : "magnitude_vector", m->A ? "B" : "A");
        if (cfg->use_dora != (m->magnitude != NULL))
            return ls_fail("%s: module %s: %s", path, m->name,
                           m->magnitude ? "has lora_magnitude_vector but use_dora is not true"
                                        : "use_dora is true but lora_magnitude_vector is missing");
        if (m->magnitude && m->embedding)
            return ls_fail("%s: module %s: DoRA on an embedding is not supported", path, m->name);
        if (!is_targeted(a, cfg, m)) {
            if (cfg->target_regex) continue; // counted below: a regex that matches nothing is the error
            return ls_fail("%s: module %s: not selected by target_modules%s", path, m->name,
                           cfg->layers ? " and layers_to_transform" : "");
        }
        matched++;
        // Rank and alpha as PEFT resolves them for this module.
        const cJSON *rp = pattern_lookup(cJSON_GetObjectItemCaseSensitive(cfg->root, "rank_pattern"), m->name);
        const cJSON *ap = pattern_lookup(cJSON_GetObjectItemCaseSensitive(cfg->root, "alpha_pattern"), m->name);
        int want_r = rp ? (int)rp->valuedouble : cfg->r;
        if (m->r != want_r)
            return ls_fail("%s: module %s: tensors have rank %d but the config says r = %d%s", path, m->name, m->r,
                           want_r, rp ? " (rank_pattern)" : "");
        m->alpha = ap ? (float)ap->valuedouble : cfg->alpha;
        m->scale = cfg->use_rslora ? m->alpha / sqrtf((float)m->r) : m->alpha / (float)m->r;
    }
    if (cfg->target_regex && matched < a->n_modules) {
        for (int k = 0; k < a->n_modules; k++)
            if (!is_targeted(a, cfg, &a->modules[k]))
                return ls_fail("%s: field 'target_modules': the regex '%s' matches %s of the adapter's modules "
                               "(not '%s')", cfg_path, cfg->target_regex, matched ? "not all" : "none",
                               a->modules[k].name);
    }
    return 0;
}

static int cmp_module(const void *x, const void *y) {
    const adapter_site *a = x, *b = y;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    int c = strcmp(a->stack, b->stack);
    return c ? c : strcmp(a->path, b->path);
}

static int read_tensors(lora_adapter *a, const adapter_config *cfg, const char *st_path, const char *cfg_path) {
    st_file f;
    if (st_open(&f, st_path)) return -1;
    a->modules = ls_calloc((size_t)f.n_tensors + 1, sizeof(adapter_site));
    a->use_dora = cfg->use_dora;
    a->fan_in_fan_out = cfg->fan_in_fan_out;
    int rc = read_keys(a, &f, st_path);
    st_close(&f);
    if (rc) return -1;
    if (a->n_modules == 0) return ls_fail("%s: no LoRA tensors found", st_path);
    if (check_sites(a, cfg, st_path, cfg_path)) return -1;
    a->generic = !detect_family(a);
    // A family's modules_to_save are its classifier; anything else makes the layout generic.
    for (int i = 0; i < a->n_saved && !a->generic; i++)
        if (!is_saved_name(a->family, a->saved[i].name)) a->generic = 1;
    if (a->generic) a->family = LS_FAMILY_LLAMA; // meaningless: a->generic says so
    qsort(a->modules, a->n_modules, sizeof *a->modules, cmp_module);
    return 0;
}

// ----------------------------------------------------------------------------

int adapter_load(lora_adapter *a, const char *dir) {
    memset(a, 0, sizeof *a);
    if (!ls_is_dir(dir)) return ls_fail("%s: not an adapter directory (expected adapter_config.json and "
                                        "adapter_model.safetensors inside)", dir);
    char *cfg_path = ls_path_join(dir, ADAPTER_CONFIG_FILE);
    char *st_path = ls_path_join(dir, ADAPTER_WEIGHTS_FILE);
    adapter_config cfg = {0};
    int rc;
    if (!ls_exists(cfg_path)) rc = ls_fail("%s: missing (an adapter directory needs adapter_config.json)", cfg_path);
    else if (!ls_exists(st_path)) {
        char *bin = ls_path_join(dir, "adapter_model.bin");
        rc = ls_exists(bin) ? ls_fail("%s: only adapter_model.bin (pickle) found; save the adapter with "
                                      "safe_serialization=True", dir)
                            : ls_fail("%s: missing (an adapter directory needs adapter_model.safetensors)", st_path);
        free(bin);
    } else {
        rc = read_config(&cfg, a, cfg_path);
        if (!rc) rc = read_tensors(a, &cfg, st_path, cfg_path);
    }
    cJSON_Delete(cfg.root);
    free(cfg_path);
    free(st_path);
    if (rc) {
        adapter_free(a);
        return -1;
    }
    a->dir = ls_strdup(dir);
    return 0;
}

void adapter_free(lora_adapter *a) {
    for (int i = 0; i < a->n_modules; i++) {
        free(a->modules[i].A);
        free(a->modules[i].B);
        free(a->modules[i].magnitude);
    }
    free(a->modules);
    for (int i = 0; i < a->n_saved; i++) free(a->saved[i].data);
    free(a->saved);
    for (int i = 0; i < a->n_targets; i++) free(a->target_modules[i]);
    free(a->target_modules);
    free(a->base_model);
    free(a->dir);
    memset(a, 0, sizeof *a);
}

int adapter_check_base(const lora_adapter *a, const ls_checkpoint *base) {
    const ls_model_config *c = &base->config;
    if (a->generic)
        return ls_fail("%s: module %s: not a layout of the %s base %s", a->dir, a->modules[0].name,
                       ckpt_family_name(c->family), base->path);
    if (a->family != c->family)
        return ls_fail("%s: adapter is for a %s model but the base %s is %s", a->dir, ckpt_family_name(a->family),
                       base->path, ckpt_family_name(c->family));
    for (int i = 0; i < a->n_modules; i++) {
        const adapter_site *m = &a->modules[i];
        if (m->layer >= c->n_layers)
            return ls_fail("%s: module layer %d out of range: base %s has %d layers", a->dir, m->layer, base->path,
                           c->n_layers);
        char name[320];
        snprintf(name, sizeof name, "%s.%d.%s.weight", arch_family_of(c->family)->layer_prefix, m->layer, m->path);
        const ls_tensor *w = ckpt_find(base, name);
        if (!w) return ls_fail("%s: base %s has no weight '%s'", a->dir, base->path, name);
        if (w->shape[0] != m->d_out || w->shape[1] != m->d_in)
            return ls_fail("%s: module %d.%s: ΔW = B·A is (%d, %d) but the base weight '%s' is (%lld, %lld)", a->dir,
                           m->layer, m->path, m->d_out, m->d_in, name, (long long)w->shape[0],
                           (long long)w->shape[1]);
    }
    return 0;
}

const adapter_site *adapter_find(const lora_adapter *a, int layer, const char *path) {
    for (int i = 0; i < a->n_modules; i++)
        if (a->modules[i].layer == layer && !strcmp(a->modules[i].path, path)) return &a->modules[i];
    return NULL;
}

const adapter_site *adapter_resolve(const lora_adapter *a, int layer, const char *short_name, int *row0, int *rows) {
    const arch_module *md = arch_module_by_name(a->family, short_name);
    if (!md) {
        char names[160];
        ls_fail("%s: unknown module '%s' for a %s adapter (expected %s)", a->dir, short_name,
                arch_family_name(a->family), arch_module_names(a->family, ", ", " or ", names, sizeof names));
        return NULL;
    }
    const adapter_site *m = adapter_find(a, layer, md->path);
    if (!m) {
        ls_fail("%s: no LoRA module for '%s' (%s) at layer %d", a->dir, short_name, md->path, layer);
        return NULL;
    }
    if (md->block < 0) {
        *row0 = 0;
        *rows = m->d_out;
        return m;
    }
    if (m->d_out % md->n_blocks) {
        ls_fail("%s: fused %s at layer %d has %d output rows, not a multiple of %d", a->dir,
                strrchr(md->path, '.') + 1, layer, m->d_out, md->n_blocks);
        return NULL;
    }
    *rows = m->d_out / md->n_blocks;
    *row0 = md->block * *rows;
    return m;
}

float *adapter_delta_weight(const adapter_site *m, int row0, int rows) {
    float *dw = ls_calloc((size_t)rows * m->d_in, sizeof(float));
    for (int i = 0; i < rows; i++) {
        const float *b = m->B + (size_t)(row0 + i) * m->r;
        for (int k = 0; k < m->d_in; k++) {
            double acc = 0;
            for (int j = 0; j < m->r; j++) acc += (double)b[j] * m->A[(size_t)j * m->d_in + k];
            dw[(size_t)i * m->d_in + k] = (float)(m->scale * acc);
        }
    }
    return dw;
}

// ----------------------------------------------------------------------------
// writer

int adapter_save(const lora_adapter *a, const char *dir) {
    if (ls_mkdir_p(dir)) return -1;
    int n = 2 * a->n_modules + a->n_saved;
    st_entry *e = ls_calloc((size_t)n + 1, sizeof *e);
    char (*names)[320] = ls_calloc((size_t)n + 1, sizeof *names);
    cJSON *rank_pattern = cJSON_CreateObject(), *alpha_pattern = cJSON_CreateObject();
    const char *prefix = adapter_key_prefix(a->family);
    for (int i = 0; i < a->n_modules; i++) {
        const adapter_site *m = &a->modules[i];
        for (int s = 0; s < 2; s++) {
            st_entry *x = &e[2 * i + s];
            snprintf(names[2 * i + s], sizeof names[0], "%s.%d.%s.lora_%c.weight", prefix, m->layer, m->path,
                     s ? 'B' : 'A');
            x->name = names[2 * i + s];
            x->dtype = ST_F32;
            x->ndim = 2;
            x->shape[0] = s ? m->d_out : m->r;
            x->shape[1] = s ? m->r : m->d_in;
            x->data = s ? m->B : m->A;
        }
        // Modules whose rank or alpha differ from the defaults go in the patterns,
        // keyed by their full name so that PEFT matches exactly one module.
        char full[320];
        snprintf(full, sizeof full, "%s.%d.%s", prefix + strlen("base_model.model."), m->layer, m->path);
        if (m->r != a->r) cJSON_AddNumberToObject(rank_pattern, full, m->r);
        if (m->alpha != a->alpha) cJSON_AddNumberToObject(alpha_pattern, full, m->alpha);
    }
    for (int i = 0; i < a->n_saved; i++) { // PEFT saves modules_to_save under the model's names
        st_entry *x = &e[2 * a->n_modules + i];
        snprintf(names[2 * a->n_modules + i], sizeof names[0], "base_model.model.%s", a->saved[i].name);
        x->name = names[2 * a->n_modules + i];
        x->dtype = ST_F32;
        x->ndim = a->saved[i].ndim;
        x->shape[0] = a->saved[i].shape[0];
        x->shape[1] = a->saved[i].shape[1];
        x->data = a->saved[i].data;
    }
    char *st_path = ls_path_join(dir, ADAPTER_WEIGHTS_FILE);
    const char *meta[] = {"format", "pt"};
    int rc = st_write(st_path, e, n, meta, 1);
    free(st_path);
    free(e);
    free(names);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddStringToObject(root, "task_type", arch_is_encoder(a->family) ? "SEQ_CLS" : "CAUSAL_LM");
    if (a->base_model) cJSON_AddStringToObject(root, "base_model_name_or_path", a->base_model);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddNumberToObject(root, "r", a->r);
    cJSON_AddNumberToObject(root, "lora_alpha", a->alpha);
    cJSON_AddBoolToObject(root, "use_rslora", a->use_rslora);
    cJSON *tm = cJSON_AddArrayToObject(root, "target_modules");
    for (int i = 0; i < a->n_targets; i++) cJSON_AddItemToArray(tm, cJSON_CreateString(a->target_modules[i]));
    cJSON_AddItemToObject(root, "rank_pattern", rank_pattern);
    cJSON_AddItemToObject(root, "alpha_pattern", alpha_pattern);
    cJSON_AddNumberToObject(root, "lora_dropout", 0.0);
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", arch_family_of(a->family)->conv1d);
    cJSON_AddBoolToObject(root, "inference_mode", 1);
    if (a->n_saved) {
        cJSON *ms = cJSON_AddArrayToObject(root, "modules_to_save");
        cJSON_AddItemToArray(ms, cJSON_CreateString(arch_family_of(a->family)->modules_to_save));
        const arch_family *af = arch_family_of(a->family);
        if (!af->dense_in_modules_to_save && adapter_find_saved(a, af->head_dense_w))
            cJSON_AddItemToArray(ms, cJSON_CreateString("pooler")); // bert's pooler (BertPooler)
    } else {
        cJSON_AddNullToObject(root, "modules_to_save");
    }
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    if (!rc) {
        char *cfg_path = ls_path_join(dir, ADAPTER_CONFIG_FILE);
        rc = ls_write_file_atomic(cfg_path, json, strlen(json));
        free(cfg_path);
    }
    free(json);
    return rc;
}

// ----------------------------------------------------------------------------
// initial factors (A₀, B₀)

static int all_zero(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

int adapter_init_save(const lora_adapter *a, const char *path) {
    st_entry *e = ls_calloc((size_t)2 * a->n_modules + 1, sizeof *e);
    char (*names)[512] = ls_calloc((size_t)2 * a->n_modules + 1, sizeof *names);
    const char *prefix = adapter_key_prefix(a->family);
    int n = 0;
    for (int i = 0; i < a->n_modules; i++) {
        const adapter_site *m = &a->modules[i];
        for (int s = 0; s < 2; s++) {
            if (s && all_zero(m->B, (size_t)m->d_out * m->r)) continue; // B₀ = 0: not stored
            st_entry *x = &e[n];
            snprintf(names[n], sizeof names[0], "%s.%d.%s.lora_%c.weight", prefix, m->layer, m->path, s ? 'B' : 'A');
            x->name = names[n++];
            x->dtype = ST_F32;
            x->ndim = 2;
            x->shape[0] = s ? m->d_out : m->r;
            x->shape[1] = s ? m->r : m->d_in;
            x->data = s ? m->B : m->A;
        }
    }
    const char *meta[] = {"format", "pt", "lorascope", "initial LoRA factors A0 (B0 where nonzero)"};
    int rc = st_write(path, e, n, meta, 2);
    free(e);
    free(names);
    return rc;
}

// Copies the tensor `name` of shape (rows, cols) into dst; a missing tensor is
// an error when `required`, else zeros.
static int init_tensor(const st_file *f, const char *name, int rows, int cols, int required, float *dst) {
    const st_tensor *t = st_find(f, name);
    if (!t) {
        if (required) return ls_fail("%s: %s: expected the tensor, found none", f->path, name);
        memset(dst, 0, (size_t)rows * cols * sizeof(float));
        return 0;
    }
    if (!st_dtype_is_float(t->dtype) || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return ls_fail("%s: %s: expected a float (%d, %d) tensor, found %s of %d dims (%lld, %lld)", f->path, name,
                       rows, cols, st_dtype_name(t->dtype), t->ndim, (long long)t->shape[0],
                       (long long)(t->ndim > 1 ? t->shape[1] : 0));
    st_to_float(f, t, dst);
    return 0;
}

int adapter_init_load(const lora_adapter *like, const char *path, lora_adapter *init) {
    memset(init, 0, sizeof *init);
    st_file f;
    if (st_open(&f, path)) return -1;
    init->family = like->family;
    init->r = like->r;
    init->alpha = like->alpha;
    init->use_rslora = like->use_rslora;
    init->generic = like->generic;
    init->fan_in_fan_out = like->fan_in_fan_out;
    init->n_heads = like->n_heads;
    init->n_kv_heads = like->n_kv_heads;
    init->qkv_per_head = like->qkv_per_head;
    init->n_modules = like->n_modules;
    init->modules = ls_calloc((size_t)like->n_modules + 1, sizeof(adapter_site));
    const char *prefix = adapter_key_prefix(like->family);
    int rc = 0;
    for (int i = 0; i < like->n_modules && !rc; i++) {
        adapter_site *m = &init->modules[i];
        *m = like->modules[i];
        m->magnitude = NULL; // like's (DoRA), not this copy's
        m->A = ls_malloc((size_t)m->r * m->d_in * sizeof(float));
        m->B = ls_malloc((size_t)m->d_out * m->r * sizeof(float));
        char name[512];
        snprintf(name, sizeof name, "%s.%d.%s.lora_A.weight", prefix, m->layer, m->path);
        rc = init_tensor(&f, name, m->r, m->d_in, 1, m->A);
        snprintf(name, sizeof name, "%s.%d.%s.lora_B.weight", prefix, m->layer, m->path);
        if (!rc) rc = init_tensor(&f, name, m->d_out, m->r, 0, m->B);
    }
    st_close(&f);
    if (rc) adapter_free(init);
    else init->dir = ls_strdup(path);
    return rc;
}
