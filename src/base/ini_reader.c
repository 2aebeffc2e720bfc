// ini_reader: libinih with line numbers, section callbacks and bounded lines.
#include "base/ini_reader.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"

typedef struct {
    const char *path;
    FILE *fp;
    int line;
    ls_ini_section_fn on_section;
    ls_ini_entry_fn on_entry;
    void *ctx;
    int failed;              // a callback or the reader set ls_error()
    char err[1024];
} line_reader;

static int fail_here(line_reader *r) {
    snprintf(r->err, sizeof r->err, "%s", ls_error());
    r->failed = 1;
    return -1;
}

// Trims whitespace at both ends in place; returns the start.
static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

// A section header line: "[name]" with nothing after it. Calls on_section.
static int header(line_reader *r, char *s) {
    char *end = s + strlen(s) - 1;
    if (*end != ']' || end == s + 1) {
        ls_fail("%s:%d: expected a section header like [train], found '%s'", r->path, r->line, s);
        return fail_here(r);
    }
    *end = 0;
    char *name = trim(s + 1);
    if (r->on_section && r->on_section(r->ctx, name, r->line)) return fail_here(r);
    *end = ']';
    return 0;
}

// Reader for ini_parse_stream: one line, counted, bounded, left-trimmed (so
// that libinih sees no continuation lines), without a trailing # comment.
static char *read_line(char *str, int num, void *stream) {
    line_reader *r = stream;
    if (r->failed || !fgets(str, num, r->fp)) return NULL;
    r->line++;
    size_t n = strlen(str);
    if ((n == 0 || str[n - 1] != '\n') && !feof(r->fp)) {
        ls_fail("%s:%d: line longer than %d characters (or not text)", r->path, r->line, LS_INI_MAX_LINE);
        fail_here(r);
        return NULL;
    }
    char *s = trim(str);
    for (char *c = s; *c && *s != '#' && *s != ';'; c++)
        if (*c == '#' && c > s && isspace((unsigned char)c[-1])) {
            *c = 0;
            s = trim(s);
            break;
        }
    if (*s == '[' && header(r, s)) return NULL;
    memmove(str, s, strlen(s) + 1);
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value) {
    line_reader *r = user;
    if (r->failed) return 0;
    if (r->on_entry(r->ctx, section, name, value ? value : "", r->line)) {
        fail_here(r);
        return 0;
    }
    return 1;
}

int ls_ini_read(const char *path, ls_ini_section_fn on_section, ls_ini_entry_fn on_entry, void *ctx) {
    struct stat st;
    if (stat(path, &st)) return ls_fail("%s: cannot open config file: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ls_fail("%s: expected a regular file", path);
    line_reader r = {.path = path, .on_section = on_section, .on_entry = on_entry, .ctx = ctx};
    r.fp = fopen(path, "r");
    if (!r.fp) return ls_fail("%s: cannot open config file: %s", path, strerror(errno));
    int rc = ini_parse_stream(read_line, &r, on_key, &r);
    fclose(r.fp);
    if (r.failed) return ls_fail("%s", r.err);
    if (rc > 0) return ls_fail("%s:%d: syntax error (expected [section], key = value or a ; comment)", path, rc);
    if (rc < 0) return ls_fail("%s: cannot parse config file", path);
    return 0;
}
