#include "report/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"

#ifndef LS_PLOTS_DIR
#define LS_PLOTS_DIR "plots"
#endif

// ----------------------------------------------------------------------------
// strings

void sb_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        ls_assert(n >= 0);
        if (b->s && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *grown = realloc(b->s, cap);
        ls_assert(grown != NULL);
        b->s = grown;
        b->cap = cap;
    }
}

void sb_free(strbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

// ----------------------------------------------------------------------------
// files written by this run

static char **written;
static int n_written;

static void remember(const char *path) {
    char **grown = realloc(written, (size_t)(n_written + 1) * sizeof *written);
    ls_assert(grown != NULL);
    written = grown;
    written[n_written++] = ls_strdup(path);
}

int report_write(const char *dir, const char *name, const strbuf *b) {
    char *path = ls_path_join(dir, name);
    int rc = ls_write_file_atomic(path, b->s ? b->s : "", b->len);
    if (!rc) remember(path);
    free(path);
    return rc;
}

void report_list(void) {
    for (int i = 0; i < n_written; i++) {
        printf("wrote %s\n", written[i]);
        free(written[i]);
    }
    free(written);
    written = NULL;
    n_written = 0;
}

void report_rollback(void) {
    for (int i = 0; i < n_written; i++) {
        unlink(written[i]);
        free(written[i]);
    }
    free(written);
    written = NULL;
    n_written = 0;
}

// ----------------------------------------------------------------------------
// gnuplot

// A gnuplot string literal for a short s (single-quoted, quotes doubled); a ring
// of 8 static buffers, so two fit in one call.
static const char *report_gp_quote(const char *s) {
    static char ring[8][2048];
    static int next;
    char *out = ring[next++ % 8];
    size_t k = 0;
    out[k++] = '\'';
    for (; *s && k < sizeof ring[0] - 3; s++) {
        if (*s == '\'') out[k++] = '\'';
        out[k++] = *s;
    }
    out[k++] = '\'';
    out[k] = 0;
    return out;
}

static const char *plots_dir(void) {
    const char *env = getenv("LORASCOPE_PLOTS");
    return env && *env ? env : LS_PLOTS_DIR;
}

static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

// Runs gnuplot on script with `assignments` (-e). Its own messages are
// collected, not passed through: a failure is one line, ending with the last
// line gnuplot wrote, or with "No space left on device" when dir is full.
static int run_gnuplot(const char *script, const char *assignments, const char *dir) {
    int fds[2];
    if (pipe(fds) != 0) return ls_fail("gnuplot: pipe failed: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ls_fail("gnuplot: fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execlp("gnuplot", "gnuplot", "-e", assignments, script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char said[4096] = "", chunk[512];
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], chunk, sizeof chunk)) > 0 || (got < 0 && errno == EINTR)) {
        if (got <= 0) continue;
        if (len + (size_t)got >= sizeof said) len = 0; // keep the end of long output
        memcpy(said + len, chunk, (size_t)got);
        len += (size_t)got;
        said[len] = 0;
    }
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) < 0) return ls_fail("gnuplot: wait failed: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    struct statvfs fs;
    if (statvfs(dir, &fs) == 0 && fs.f_bavail == 0)
        return ls_fail("%s: gnuplot could not write its figure: %s", dir, strerror(ENOSPC));
    while (len > 0 && (said[len - 1] == '\n' || said[len - 1] == ' ')) said[--len] = 0;
    char *last = strrchr(said, '\n');
    last = last ? last + 1 : said;
    for (char *c = last; *c; c++)
        if ((unsigned char)*c < 0x20) *c = ' ';
    return ls_fail("%s: gnuplot exited with status %d%s%s", script, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                   *last ? ": " : "", last);
}

// 1 when the figure gnuplot wrote at path is whole: a PNG ends with its IEND
// chunk, an SVG with </svg>. gnuplot exits 0 even when its writes failed
// (a full disk leaves a truncated PNG and an empty SVG).
static int figure_is_whole(const char *path, int png) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    char tail[16] = {0};
    long n = 0;
    if (fseek(fp, -16, SEEK_END) == 0) n = (long)fread(tail, 1, sizeof tail, fp);
    fclose(fp);
    if (n != 16) return 0;
    if (png) return memcmp(tail + 8, "IEND\xae\x42\x60\x82", 8) == 0;
    int end = 16;
    while (end > 0 && (tail[end - 1] == '\n' || tail[end - 1] == '\r' || tail[end - 1] == ' ')) end--;
    return end >= 6 && memcmp(tail + end - 6, "</svg>", 6) == 0;
}

static int check_figure(const char *tmp, const char *path, const char *dir, int png) {
    if (figure_is_whole(tmp, png)) return 0;
    struct statvfs fs;
    if (statvfs(dir, &fs) == 0 && fs.f_bavail == 0) return ls_fail("%s: write failed: %s", path, strerror(ENOSPC));
    return ls_fail("%s: gnuplot wrote an incomplete %s file", path, png ? "PNG" : "SVG");
}

int report_plot(const char *dir, const char *stem, const char *script, const char *const *assign, int n_assign) {
    static int warned;
    if (!have_gnuplot()) {
        if (!warned) fprintf(stderr, "lorascope: gnuplot not found: tables written, figures skipped\n");
        warned = 1;
        return 0;
    }
    char *script_path = ls_path_join(plots_dir(), script);
    if (!ls_exists(script_path)) {
        int rc = ls_fail("%s: gnuplot script not found (set LORASCOPE_PLOTS to the plots/ directory)", script_path);
        free(script_path);
        return rc;
    }
    const char *terms[2][2] = {{"png", "pngcairo"}, {"svg", "svg"}};
    int rc = 0;
    for (int t = 0; t < 2 && !rc; t++) {
        char name[512], tmp[600];
        snprintf(name, sizeof name, "%s.%s", stem, terms[t][0]);
        char *path = ls_path_join(dir, name);
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%s", path, (long)getpid(), terms[t][0]);
        strbuf a = {0};
        sb_printf(&a, "term=%s; out=%s", report_gp_quote(terms[t][1]), report_gp_quote(tmp));
        for (int i = 0; i < n_assign; i++) sb_printf(&a, "; %s", assign[i]);
        rc = run_gnuplot(script_path, a.s, dir);
        if (!rc) rc = check_figure(tmp, path, dir, t == 0);
        if (!rc && rename(tmp, path) != 0) rc = ls_fail("%s: cannot rename figure: %s", path, strerror(errno));
        if (rc) unlink(tmp);
        else remember(path);
        sb_free(&a);
        free(path);
    }
    free(script_path);
    return rc;
}

// ----------------------------------------------------------------------------
// figures

void sb_gp_assign(strbuf *b, const char *name, const char *s) {
    sb_printf(b, "%s%s='", b->len ? "; " : "", name);
    for (; *s; s++) sb_printf(b, *s == '\'' ? "''" : "%c", *s);
    sb_printf(b, "'");
}

void fig_add(report_figure *f, const char *file, int panel, const char *title_fmt, ...) {
    char title[512];
    va_list ap;
    va_start(ap, title_fmt);
    vsnprintf(title, sizeof title, title_fmt, ap);
    va_end(ap);
    sb_printf(&f->files, " %s", file);
    sb_printf(&f->titles, " \"%s\"", title);
    sb_printf(&f->panels, " %d", panel);
    f->n_files++;
}

void fig_panel(report_figure *f, const char *title_fmt, ...) {
    char title[512];
    va_list ap;
    va_start(ap, title_fmt);
    vsnprintf(title, sizeof title, title_fmt, ap);
    va_end(ap);
    sb_printf(&f->panel_titles, " \"%s\"", title);
    f->n_panels++;
}

void fig_free(report_figure *f) {
    sb_free(&f->files);
    sb_free(&f->titles);
    sb_free(&f->panels);
    sb_free(&f->panel_titles);
    memset(f, 0, sizeof *f);
}

int report_plot_figure(const char *dir, const char *stem, const char *script, const report_figure *f,
                       const char *extra) {
    strbuf a = {0};
    sb_gp_assign(&a, "files", f->files.s ? f->files.s : "");
    sb_gp_assign(&a, "titles", f->titles.s ? f->titles.s : "");
    if (f->n_panels) {
        sb_gp_assign(&a, "panels", f->panels.s ? f->panels.s : "");
        sb_gp_assign(&a, "panel_titles", f->panel_titles.s);
    }
    if (extra) sb_printf(&a, "; %s", extra);
    const char *assign[1] = {a.s};
    int rc = report_plot(dir, stem, script, assign, 1);
    sb_free(&a);
    return rc;
}
