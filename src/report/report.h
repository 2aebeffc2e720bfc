// report: what the analysis commands write — TSV and Markdown tables built in
// memory and written atomically, and figures drawn by the gnuplot scripts in
// plots/ (PNG and SVG).
#ifndef LS_REPORT_H
#define LS_REPORT_H

#include <stddef.h>

// A growing string. Zero-initialise; free with sb_free.
typedef struct {
    char *s;
    size_t len, cap;
} strbuf;

void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(strbuf *b);

// Writes b to <dir>/<name> atomically and records the path for report_list().
// Returns 0 or -1 with ls_error() set.
int report_write(const char *dir, const char *name, const strbuf *b);

// Runs plots/<script> through gnuplot twice (pngcairo, svg) with the given
// `name=value` assignments (values are quoted gnuplot strings or numbers),
// producing <dir>/<stem>.png and <dir>/<stem>.svg (each via a temp file and a
// rename). Returns 0; -1 with ls_error() set if gnuplot failed. If gnuplot is
// not installed it prints a warning and returns 0 (tables are still written).
int report_plot(const char *dir, const char *stem, const char *script, const char *const *assign, int n_assign);

// Appends name='s' (any length) to b, preceded by "; " unless b is empty.
void sb_gp_assign(strbuf *b, const char *name, const char *s);

// A figure made of panels: data files, one legend title each, the panel each
// is drawn in (lines.gp; heatmap.gp draws one panel per file), and the
// panels' titles. Zero-initialise; free with fig_free.
typedef struct {
    strbuf files, titles, panels, panel_titles;
    int n_files, n_panels;
} report_figure;

// Adds a data file to panel `panel` (1-based) with a legend title (printf-style).
void fig_add(report_figure *f, const char *file, int panel, const char *title_fmt, ...)
    __attribute__((format(printf, 4, 5)));
// Adds the next panel's title (printf-style).
void fig_panel(report_figure *f, const char *title_fmt, ...) __attribute__((format(printf, 2, 3)));
void fig_free(report_figure *f);

// Draws f with plots/<script> into <dir>/<stem>.png and .svg; `extra` holds
// further gnuplot assignments ("xlabel='i'; logy=1") or NULL. As report_plot.
int report_plot_figure(const char *dir, const char *stem, const char *script, const report_figure *f,
                       const char *extra);

// Prints "wrote <path>" for each file written since the last call.
void report_list(void);

// Removes every file written since the last report_list() (used when a later
// step fails, so that no partial output is left behind).
void report_rollback(void);

#endif
