// util: error reporting, checked allocation, atomic file output.
//
// Library code never exits on bad input: a reader that meets a malformed file
// sets a one-line message with ls_fail() and returns an error code; the CLI
// prints ls_error() and exits non-zero. The message names the file, the key
// or field, what was expected and what was found.
#ifndef LS_UTIL_H
#define LS_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

// Sets the current error message (printf-style, one line) and returns -1,
// so that readers can write `return ls_fail("%s: ...", path);`.
int ls_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The message of the last failure in this thread ("" if none).
const char *ls_error(void);
// Prefixes the current message with "<prefix>: " (adds context on the way up).
int ls_fail_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Allocation that never returns NULL: on failure prints what and where, exits 1.
void *ls_malloc_check(size_t size, const char *file, int line);
void *ls_calloc_check(size_t n, size_t size, const char *file, int line);
char *ls_strdup_check(const char *s, const char *file, int line);
#define ls_malloc(size) ls_malloc_check((size), __FILE__, __LINE__)
#define ls_calloc(n, size) ls_calloc_check((n), (size), __FILE__, __LINE__)
#define ls_strdup(s) ls_strdup_check((s), __FILE__, __LINE__)

// Internal invariant (not user input): prints file:line and the expression, aborts.
#define ls_assert(cond) \
    do { if (!(cond)) ls_assert_fail(#cond, __FILE__, __LINE__); } while (0)
void ls_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

// ----------------------------------------------------------------------------
// Atomic output: write to "<path>.tmp.<pid>", then rename over <path> on commit.
// A failed or interrupted write leaves no partial file at <path>.

typedef struct {
    FILE *fp;
    char *path;
    char *tmp_path;
} ls_outfile;

// Opens the temporary file. Returns 0, or -1 with ls_error() set.
int ls_out_open(ls_outfile *out, const char *path);
// Flushes, fsyncs and renames into place. Returns 0, or -1 (temp file removed)
// with ls_error() naming the step that failed and the system's reason
// ("<path>: fsync failed: No space left on device").
int ls_out_commit(ls_outfile *out);
// Removes the temporary file (use on any error path after ls_out_open).
void ls_out_abort(ls_outfile *out);

// Writes a whole buffer atomically.
int ls_write_file_atomic(const char *path, const void *data, size_t size);
// Limits on whole-file reads. Regular files only, so the size is known before
// reading; an endless input (/dev/zero, a FIFO) is refused, not read.
//   LS_READ_FILE_MAX   the default: large enough for a llama2.c checkpoint
//                      read whole (io/checkpoint.c)
//   LS_READ_DATA_MAX   datasets and metrics.jsonl
//   LS_READ_SMALL_MAX  tokenizer files, JSON configs and records
#define LS_READ_FILE_MAX ((size_t)64 << 30)
#define LS_READ_DATA_MAX ((size_t)4 << 30)
#define LS_READ_SMALL_MAX ((size_t)256 << 20)

// Reads a whole regular file into a NUL-terminated malloc'd buffer. *size
// excludes the NUL. Refuses non-regular files ("<path>: expected a regular
// file") and files over LS_READ_FILE_MAX bytes.
// Returns NULL with ls_error() set on failure.
char *ls_read_file(const char *path, size_t *size);
// The same with a stated maximum of max bytes.
char *ls_read_file_max(const char *path, size_t *size, size_t max);

// mkdir -p. Returns 0 or -1 with ls_error() set.
int ls_mkdir_p(const char *path);
// A growable byte buffer; s is NUL-terminated after its n bytes (NULL while
// nothing was put). Zero-initialise it; free(b.s) when done.
typedef struct {
    char *s;
    size_t n, cap;
} ls_buf;

// Appends p[0..n) to b.
void ls_buf_put(ls_buf *b, const char *p, size_t n);

// Maps a regular file read-only: *map (NULL for an empty file; unmap with
// munmap(*map, *size)) and *size. Returns 0, or -1 with ls_error() naming the
// file ("cannot open: <errno>", "expected a regular file", "mmap failed").
int ls_map_file(const char *path, void **map, size_t *size);

// Joins two path parts with '/' into a malloc'd string.
char *ls_path_join(const char *a, const char *b);
// Removes the file dir/name if it is there (a missing one is no error).
void ls_remove_in(const char *dir, const char *name);
// 1 if the path exists (file or directory).
int ls_exists(const char *path);
int ls_is_dir(const char *path);

#endif
