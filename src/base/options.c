// options: one option table serving flags, INI files and written configs.
#include "base/options.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/ini_reader.h"
#include "base/parse.h"
#include "base/util.h"

// ----------------------------------------------------------------------------
// lookup

const opt_spec *opt_find(const opt_table *t, const char *section, const char *key) {
    for (int i = 0; i < t->n; i++) {
        const opt_spec *o = &t->specs[i];
        if (strcmp(o->key, key)) continue;
        if (!section || !strcmp(o->section, section)) return o;
    }
    return NULL;
}

const opt_spec *opt_find_flag(const opt_table *t, const char *flag) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->specs[i].flag, flag)) return &t->specs[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// setting values

static int parse_bool(const char *v, int *out) {
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int set_choice(const opt_spec *o, char *dst, const char *value, const char *who) {
    size_t n = strlen(value);
    const char *p = o->choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t k = bar ? (size_t)(bar - p) : strlen(p);
        if (k == n && !strncmp(p, value, n)) {
            memcpy(dst, value, n + 1);
            return 0;
        }
        p += k + (bar != NULL);
    }
    return ls_fail("%s: expected one of %s, found '%s'", who, o->choices, value);
}

int opt_set(const opt_table *t, void *obj, const opt_spec *o, const char *value, const char *who) {
    (void)t;
    char *dst = (char *)obj + o->offset;
    switch (o->type) {
    case OPT_STR:
        if (strlen(value) >= o->size)
            return ls_fail("%s: expected at most %zu characters, found %zu", who, o->size - 1, strlen(value));
        memcpy(dst, value, strlen(value) + 1);
        return 0;
    case OPT_CHOICE: return set_choice(o, dst, value, who);
    case OPT_BOOL: {
        int b;
        if (parse_bool(value, &b)) return ls_fail("%s: expected true or false, found '%s'", who, value);
        *(int *)dst = b;
        return 0;
    }
    case OPT_INT:
    case OPT_LLONG: {
        long long v;
        if (ls_parse_int64(value, who, (long long)o->lo, (long long)o->hi, &v)) return -1;
        if (o->type == OPT_INT) *(int *)dst = (int)v;
        else *(long long *)dst = v;
        return 0;
    }
    case OPT_FLOAT: return ls_parse_double(value, who, o->lo, o->hi, o->open, (double *)dst);
    }
    return ls_fail("%s: option of unknown type", who);
}

int opt_set_key(const opt_table *t, void *obj, const char *section, const char *key, const char *value,
                const char *who) {
    const opt_spec *o = NULL;
    if (!section && strchr(key, '.')) {
        char sec[64];
        size_t n = (size_t)(strchr(key, '.') - key);
        if (n < sizeof sec) {
            memcpy(sec, key, n);
            sec[n] = 0;
            o = opt_find(t, sec, key + n + 1);
        }
    } else {
        o = opt_find(t, section, key);
    }
    if (o) return opt_set(t, obj, o, value, who);
    if (section) {
        int known_section = 0;
        for (int i = 0; i < t->n; i++) known_section |= !strcmp(t->specs[i].section, section);
        if (!known_section) return ls_fail("%s: unknown section [%s] (expected %s)", who, section, t->sections);
        return ls_fail("%s: unknown key '%s' in section [%s]", who, key, section);
    }
    return ls_fail("%s: unknown key '%s'", who, key);
}

int opt_set_flag(const opt_table *t, void *obj, const char *flag, const char *value) {
    const opt_spec *o = opt_find_flag(t, flag);
    if (!o) return ls_fail("unknown option '--%s'", flag);
    char who[128];
    snprintf(who, sizeof who, "--%s", flag);
    return opt_set(t, obj, o, value ? value : "true", who);
}

// ----------------------------------------------------------------------------
// INI files

typedef struct {
    const opt_table *t;
    void *obj;
    const char *path;
    int *set_on_line;  // per spec: the line that set it, 0 if none yet
} ini_ctx;

static int on_ini_entry(void *user, const char *section, const char *name, const char *value, int line) {
    ini_ctx *x = user;
    if (!*section)
        return ls_fail("%s:%d: key '%s' outside a section (expected %s)", x->path, line, name, x->t->sections);
    char who[1200];
    snprintf(who, sizeof who, "%s:%d: [%s] %s", x->path, line, section, name);
    const opt_spec *o = opt_find(x->t, section, name);
    if (o) {
        int i = (int)(o - x->t->specs);
        if (x->set_on_line[i])
            return ls_fail("%s:%d: [%s] %s: given twice (first on line %d)", x->path, line, section, name,
                           x->set_on_line[i]);
        x->set_on_line[i] = line;
    }
    return opt_set_key(x->t, x->obj, section, name, value, who);
}

int opt_load_ini(const opt_table *t, void *obj, const char *path) {
    ini_ctx x = {.t = t, .obj = obj, .path = path, .set_on_line = ls_calloc((size_t)t->n + 1, sizeof(int))};
    int rc = ls_ini_read(path, NULL, on_ini_entry, &x);
    free(x.set_on_line);
    return rc;
}

// ----------------------------------------------------------------------------
// command lines

static int is_bool_word(const char *s) {
    int b;
    return parse_bool(s, &b) == 0;
}

static const opt_extra *find_extra(const opt_extra *extras, const char *flag) {
    for (const opt_extra *e = extras; e && e->flag; e++)
        if (!strcmp(e->flag, flag)) return e;
    return NULL;
}

int opt_parse_argv(const opt_table *t, void *obj, int argc, char **argv, const opt_extra *extras,
                   int (*on_extra)(void *ctx, const char *flag, const char *value),
                   int (*on_positional)(void *ctx, const char *arg), void *ctx) {
    const char *last_bool = NULL; // a boolean flag just before, given without a value
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) {
            if (!on_positional && last_bool)
                return ls_fail("unexpected argument '%s' after %s (expected true or false, or nothing)", a, last_bool);
            if (!on_positional) return ls_fail("unexpected argument '%s'", a);
            if (on_positional(ctx, a)) return -1;
            continue;
        }
        char name[64];
        const char *eq = strchr(a + 2, '='), *value = NULL;
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof name) return ls_fail("unknown option '%s'", a);
        memcpy(name, a + 2, n);
        name[n] = 0;
        if (eq) value = eq + 1;
        const opt_extra *x = find_extra(extras, name);
        const opt_spec *o = x ? NULL : opt_find_flag(t, name);
        if (!x && !o) return ls_fail("unknown option '--%s'", name);
        int takes_value = x ? x->takes_value : o->type != OPT_BOOL;
        if (x && !takes_value && value) return ls_fail("--%s: takes no value", name);
        last_bool = NULL;
        if (!value && o && o->type == OPT_BOOL) {
            if (i + 1 < argc && is_bool_word(argv[i + 1])) value = argv[++i];
            else last_bool = a;
        } else if (!value && takes_value) {
            if (i + 1 >= argc) return ls_fail("--%s: expected a value", name);
            value = argv[++i];
        }
        if (x ? on_extra(ctx, name, value) : opt_set_flag(t, obj, name, value)) return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// output

void opt_format(const opt_spec *o, const void *obj, char *buf, size_t size) {
    const char *src = (const char *)obj + o->offset;
    switch (o->type) {
    case OPT_STR:
    case OPT_CHOICE: snprintf(buf, size, "%s", src); break;
    case OPT_BOOL: snprintf(buf, size, "%s", *(const int *)src ? "true" : "false"); break;
    case OPT_INT: snprintf(buf, size, "%d", *(const int *)src); break;
    case OPT_LLONG: snprintf(buf, size, "%lld", *(const long long *)src); break;
    case OPT_FLOAT: { // the shortest text that reads back as the same double
        double v = *(const double *)src;
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        break;
    }
    }
}

// Appends text to a growing buffer.
static void append(char **out, size_t *len, size_t *cap, const char *text) {
    size_t n = strlen(text);
    while (*len + n + 1 > *cap) {
        *cap *= 2;
        char *grown = realloc(*out, *cap);
        ls_assert(grown != NULL);
        *out = grown;
    }
    memcpy(*out + *len, text, n + 1);
    *len += n;
}

char *opt_to_ini(const opt_table *t, const void *obj) {
    size_t cap = 16384, len = 0;
    char *out = ls_malloc(cap);
    out[0] = 0;
    const char *section = "";
    char val[4096], line[4400];
    for (int i = 0; i < t->n; i++) {
        const opt_spec *o = &t->specs[i];
        if (o->hidden) continue;
        if (strcmp(section, o->section)) {
            snprintf(line, sizeof line, "%s[%s]\n", len ? "\n" : "", o->section);
            append(&out, &len, &cap, line);
            section = o->section;
        }
        opt_format(o, obj, val, sizeof val);
        snprintf(line, sizeof line, "%s = %s\n", o->key, val);
        append(&out, &len, &cap, line);
    }
    return out;
}

// 1 if o is one of skip's "section.key" names (skip: NULL-ended, or NULL).
static int skipped(const opt_spec *o, const char *const *skip) {
    size_t ns = strlen(o->section);
    for (; skip && *skip; skip++)
        if (!strncmp(*skip, o->section, ns) && (*skip)[ns] == '.' && !strcmp(*skip + ns + 1, o->key)) return 1;
    return 0;
}

int opt_compare(const opt_table *t, const void *run, const void *now, const char *const *skip) {
    char a[4096], b[4096];
    for (int i = 0; i < t->n; i++) {
        const opt_spec *o = &t->specs[i];
        if (o->run_control || skipped(o, skip)) continue;
        opt_format(o, run, a, sizeof a);
        opt_format(o, now, b, sizeof b);
        if (strcmp(a, b))
            return ls_fail("[%s] %s (--%s): the run was started with '%s', found '%s' (only run options may change "
                           "on --resume)", o->section, o->key, o->flag, a, b);
    }
    return 0;
}

void opt_print_help(const opt_table *t, const void *defaults, FILE *fp) {
    char val[4096], flag[64];
    const char *section = "";
    for (int i = 0; i < t->n; i++) {
        const opt_spec *o = &t->specs[i];
        if (o->hidden) continue;
        if (strcmp(section, o->section)) {
            fprintf(fp, "\n[%s]\n", o->section);
            section = o->section;
        }
        opt_format(o, defaults, val, sizeof val);
        if (o->type == OPT_FLOAT) snprintf(val, sizeof val, "%g", *(const double *)((const char *)defaults + o->offset));
        snprintf(flag, sizeof flag, "--%s%s", o->flag, o->type == OPT_BOOL ? "" : " X");
        fprintf(fp, "  %-22s %-16s %s%s%s%s\n", flag, o->key, o->help, val[0] ? " [" : "", val, val[0] ? "]" : "");
    }
}
