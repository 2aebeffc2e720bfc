#include "base/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// errors

static _Thread_local char error_message[1024];

int ls_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

int ls_fail_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    size_t k = strlen(prefix);
    if (k > sizeof error_message - 3) k = sizeof error_message - 3;
    memcpy(error_message, prefix, k);
    memcpy(error_message + k, ": ", 2);
    size_t room = sizeof error_message - k - 3;
    size_t m = strnlen(old, room);
    memcpy(error_message + k + 2, old, m);
    error_message[k + 2 + m] = 0;
    return -1;
}

const char *ls_error(void) { return error_message; }

void ls_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "lorascope: internal error at %s:%d: assertion `%s' failed\n", file, line, expr);
    abort();
}

// ----------------------------------------------------------------------------
// allocation

void *ls_malloc_check(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "lorascope: out of memory allocating %zu bytes at %s:%d\n", size, file, line);
        exit(1);
    }
    return p;
}

void *ls_calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "lorascope: out of memory allocating %zu x %zu bytes at %s:%d\n", n, size, file, line);
        exit(1);
    }
    return p;
}

char *ls_strdup_check(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = ls_malloc_check(n, file, line);
    memcpy(p, s, n);
    return p;
}

// ----------------------------------------------------------------------------
// atomic output

int ls_out_open(ls_outfile *out, const char *path) {
    memset(out, 0, sizeof *out);
    out->path = ls_strdup(path);
    size_t n = strlen(path) + 32;
    out->tmp_path = ls_malloc(n);
    snprintf(out->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    out->fp = fopen(out->tmp_path, "wb");
    if (!out->fp) {
        int e = errno;
        free(out->path);
        free(out->tmp_path);
        memset(out, 0, sizeof *out);
        return ls_fail("%s: cannot create file: %s", path, strerror(e));
    }
    return 0;
}

static void out_free(ls_outfile *out) {
    free(out->path);
    free(out->tmp_path);
    memset(out, 0, sizeof *out);
}

void ls_out_abort(ls_outfile *out) {
    if (out->fp) fclose(out->fp);
    if (out->tmp_path) unlink(out->tmp_path);
    out_free(out);
}

int ls_out_commit(ls_outfile *out) {
    // The first step that fails names the error ("No space left on device"
    // usually shows at fflush, fsync or fclose, not at fwrite).
    const char *failed = NULL;
    int e = 0;
    if (ferror(out->fp)) { // an earlier fwrite failed; errno is still its reason
        failed = "write";
        e = errno ? errno : EIO;
    }
    if (fflush(out->fp) != 0 && !failed) {
        failed = "write";
        e = errno;
    }
    if (fsync(fileno(out->fp)) != 0 && !failed) {
        failed = "fsync";
        e = errno;
    }
    if (fclose(out->fp) != 0 && !failed) {
        failed = "write";
        e = errno;
    }
    out->fp = NULL;
    if (!failed && rename(out->tmp_path, out->path) != 0) {
        failed = "rename into place";
        e = errno;
    }
    if (failed) {
        ls_fail("%s: %s failed: %s", out->path, failed, strerror(e));
        unlink(out->tmp_path);
        out_free(out);
        return -1;
    }
    out_free(out);
    return 0;
}

int ls_write_file_atomic(const char *path, const void *data, size_t size) {
    ls_outfile out;
    if (ls_out_open(&out, path)) return -1;
    if (size && fwrite(data, 1, size, out.fp) != size) {
        int e = errno ? errno : EIO;
        ls_out_abort(&out);
        return ls_fail("%s: write failed: %s", path, strerror(e));
    }
    return ls_out_commit(&out);
}

char *ls_read_file(const char *path, size_t *size) {
    return ls_read_file_max(path, size, LS_READ_FILE_MAX);
}

char *ls_read_file_max(const char *path, size_t *size, size_t max) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        ls_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    // Checked on the open file, so a rename between check and read cannot
    // slip a device or FIFO past it.
    struct stat st;
    if (fstat(fileno(fp), &st) || !S_ISREG(st.st_mode)) {
        fclose(fp);
        ls_fail("%s: expected a regular file", path);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max) {
        fclose(fp);
        ls_fail("%s: file is %lld bytes, more than the limit of %zu bytes", path, (long long)st.st_size, max);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = ls_malloc(cap);
    errno = 0;
    for (;;) {
        if (n > max) {  // the file grew while being read
            free(buf);
            fclose(fp);
            ls_fail("%s: file is more than the limit of %zu bytes", path, max);
            return NULL;
        }
        if (n + 1 >= cap) {
            cap *= 2;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(fp);
                ls_fail("%s: out of memory reading file", path);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(fp), e = errno ? errno : EIO;
    fclose(fp);
    if (err) {
        free(buf);
        ls_fail("%s: read failed: %s", path, strerror(e));
        return NULL;
    }
    buf[n] = 0;
    if (size) *size = n;
    return buf;
}

// ----------------------------------------------------------------------------
// paths

int ls_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int ls_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *ls_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = ls_malloc(na + nb + 2);
    memcpy(p, a, na);
    size_t k = na;
    if (na && a[na - 1] != '/') p[k++] = '/';
    memcpy(p + k, b, nb + 1);
    return p;
}

void ls_remove_in(const char *dir, const char *name) {
    char *f = ls_path_join(dir, name);
    unlink(f);
    free(f);
}

int ls_mkdir_p(const char *path) {
    char *p = ls_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            ls_fail("%s: cannot create directory: %s", p, strerror(e));
            free(p);
            return -1;
        }
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        int e = errno;
        ls_fail("%s: cannot create directory: %s", p, strerror(e));
        free(p);
        return -1;
    }
    free(p);
    if (!ls_is_dir(path)) return ls_fail("%s: exists and is not a directory", path);
    return 0;
}

int ls_map_file(const char *path, void **map, size_t *size) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ls_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ls_fail("%s: expected a regular file", path);
    }
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ls_fail("%s: mmap failed: %s", path, strerror(e));
        }
        *map = m;
        *size = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void ls_buf_put(ls_buf *b, const char *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->n + n + 1 > cap) cap *= 2;
        char *s = ls_malloc(cap);
        if (b->n) memcpy(s, b->s, b->n);
        free(b->s);
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}
