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

// A gnuplot string literal for s (single-quoted, quotes doubled). Static buffer
// of a ring of 8, so several can be used in one call.
const char *report_gp_quote(const char *s);

// Prints "wrote <path>" for each file written since the last call.
void report_list(void);

// Removes every file written since the last report_list() (used when a later
// step fails, so that no partial output is left behind).
void report_rollback(void);

#endif
