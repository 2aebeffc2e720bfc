// gguf: validated reader of GGUF v2/v3 files (layout in gguf.h).
#include "io/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "io/quant.h"

#define GGUF_MAGIC 0x46554747u // "GGUF" read as a little-endian u32
#define GGUF_DEFAULT_ALIGNMENT 32

// ----------------------------------------------------------------------------
// a bounded cursor over the file

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *path;
    char ctx[GGUF_MAX_NAME + 16]; // "key 'x'" / "tensor 'y'" while reading one, for messages
} cursor;

static int need(cursor *c, size_t n, const char *what) {
    if (n > c->size - c->pos)
        return ls_fail("%s: %s%struncated at byte %zu reading %s (expected %zu more bytes, file has %zu)", c->path,
                       c->ctx, c->ctx[0] ? ": " : "", c->pos, what, n, c->size - c->pos);
    return 0;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    *v = (uint32_t)le(c->p + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    *v = le(c->p + c->pos, 8);
    c->pos += 8;
    return 0;
}

// A string of at most max bytes; s points into the file.
static int rd_str(cursor *c, gguf_str *s, uint64_t max, const char *what) {
    uint64_t n;
    if (rd_u64(c, &n, what)) return -1;
    if (n > max) return ls_fail("%s: %s: expected a length of at most %llu bytes, found %llu", c->path, what,
                                (unsigned long long)max, (unsigned long long)n);
    if (need(c, (size_t)n, what)) return -1;
    s->ptr = (const char *)c->p + c->pos;
    s->len = (size_t)n;
    c->pos += (size_t)n;
    return 0;
}

// A key or tensor name: at most GGUF_MAX_NAME bytes, no NUL, as a fresh C string.
static char *rd_name(cursor *c, const char *what) {
    gguf_str s;
    if (rd_str(c, &s, GGUF_MAX_NAME, what)) return NULL;
    if (s.len == 0 || memchr(s.ptr, 0, s.len)) {
        ls_fail("%s: %s at byte %zu: expected a non-empty name without NUL bytes", c->path, what, c->pos - s.len);
        return NULL;
    }
    char *name = ls_malloc(s.len + 1);
    memcpy(name, s.ptr, s.len);
    name[s.len] = 0;
    return name;
}

// ----------------------------------------------------------------------------
// value types

static const char *const TYPE_NAMES[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                         "bool", "string", "array", "uint64", "int64", "float64"};

const char *gguf_type_name(gguf_type t) { return (unsigned)t <= GGUF_FLOAT64 ? TYPE_NAMES[t] : "unknown"; }

// Bytes of a fixed-size value, 0 for string and array.
static size_t scalar_size(gguf_type t) {
    static const size_t SIZES[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return SIZES[t];
}

static int rd_type(cursor *c, gguf_type *t, const char *key) {
    uint32_t v;
    if (rd_u32(c, &v, "value type")) return -1;
    if (v > GGUF_FLOAT64)
        return ls_fail("%s: key '%s': expected a value type 0..12, found %u", c->path, key, (unsigned)v);
    *t = (gguf_type)v;
    return 0;
}

static int is_int_type(gguf_type t) {
    return t == GGUF_UINT8 || t == GGUF_INT8 || t == GGUF_UINT16 || t == GGUF_INT16 || t == GGUF_UINT32 ||
           t == GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

// Skips a nested array (elements of an array of arrays): validated, not kept.
static int skip_array(cursor *c, const char *key, int depth) {
    gguf_type et;
    uint64_t n;
    if (depth > 4) return ls_fail("%s: key '%s': expected arrays nested at most 4 deep", c->path, key);
    if (rd_type(c, &et, key) || rd_u64(c, &n, "array length")) return -1;
    if (n > GGUF_MAX_ARRAY)
        return ls_fail("%s: key '%s': expected at most %u array elements, found %llu", c->path, key,
                       GGUF_MAX_ARRAY, (unsigned long long)n);
    if (scalar_size(et)) {
        if (n > (c->size - c->pos) / scalar_size(et)) return need(c, c->size - c->pos + 1, "array elements");
        c->pos += (size_t)n * scalar_size(et);
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s;
        if (et == GGUF_STRING ? rd_str(c, &s, GGUF_MAX_STRING, "string") : skip_array(c, key, depth + 1)) return -1;
    }
    return 0;
}

static int rd_array(cursor *c, gguf_kv *kv) {
    if (rd_type(c, &kv->elem_type, kv->key) || rd_u64(c, &kv->n, "array length")) return -1;
    if (kv->n > GGUF_MAX_ARRAY)
        return ls_fail("%s: key '%s': expected at most %u array elements, found %llu", c->path, kv->key,
                       GGUF_MAX_ARRAY, (unsigned long long)kv->n);
    size_t es = scalar_size(kv->elem_type);
    if (es) {
        // the count is checked against the bytes left before anything is sized by it
        if (kv->n > (c->size - c->pos) / es) {
            ls_fail("%s: key '%s': array of %llu %s elements runs past the end of the file (%zu bytes left)",
                    c->path, kv->key, (unsigned long long)kv->n, gguf_type_name(kv->elem_type), c->size - c->pos);
            return -1;
        }
        kv->data = c->p + c->pos;
        c->pos += (size_t)kv->n * es;
        return 0;
    }
    if (kv->elem_type == GGUF_ARRAY) {
        for (uint64_t i = 0; i < kv->n; i++)
            if (skip_array(c, kv->key, 1)) return -1;
        return 0;
    }
    // strings: each takes at least 8 bytes, which bounds the table before it is allocated
    if (kv->n > (c->size - c->pos) / 8)
        return ls_fail("%s: key '%s': array of %llu strings runs past the end of the file (%zu bytes left)",
                       c->path, kv->key, (unsigned long long)kv->n, c->size - c->pos);
    kv->strs = ls_malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->strs);
    for (uint64_t i = 0; i < kv->n; i++)
        if (rd_str(c, &kv->strs[i], GGUF_MAX_STRING, "array string")) return -1;
    return 0;
}

static int rd_value(cursor *c, gguf_kv *kv) {
    if (rd_type(c, &kv->type, kv->key)) return -1;
    kv->n = 1;
    if (kv->type == GGUF_ARRAY) return rd_array(c, kv);
    if (kv->type == GGUF_STRING) {
        kv->strs = ls_malloc(sizeof *kv->strs);
        return rd_str(c, kv->strs, GGUF_MAX_STRING, "string value");
    }
    size_t n = scalar_size(kv->type);
    if (need(c, n, "value")) return -1;
    kv->data = c->p + c->pos;
    c->pos += n;
    if (kv->type == GGUF_BOOL && kv->data[0] > 1)
        return ls_fail("%s: key '%s': expected a bool 0 or 1, found %u", c->path, kv->key, kv->data[0]);
    return 0;
}

// ----------------------------------------------------------------------------
// header, metadata, tensor infos

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Fails naming the first name that occurs twice in names[0..n) (sorted in place).
static int check_unique(const char *path, char **names, int n, const char *what) {
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (int i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i]))
            return ls_fail("%s: %s '%s' appears twice (expected unique %ss)", path, what, names[i], what);
    return 0;
}

static int read_header(gguf_file *f, cursor *c, uint64_t *n_tensors, uint64_t *n_kv) {
    uint32_t magic;
    if (rd_u32(c, &magic, "magic") || rd_u32(c, &f->version, "version")) return -1;
    if (magic != GGUF_MAGIC)
        return ls_fail("%s: expected the GGUF magic \"GGUF\" at byte 0, found 0x%08x", c->path, (unsigned)magic);
    if (f->version == 0x02000000u || f->version == 0x03000000u)
        return ls_fail("%s: big-endian GGUF file (expected little-endian)", c->path);
    if (f->version != 2 && f->version != 3)
        return ls_fail("%s: version: expected 2 or 3, found %u", c->path, (unsigned)f->version);
    if (rd_u64(c, n_tensors, "tensor count") || rd_u64(c, n_kv, "metadata count")) return -1;
    if (*n_tensors > GGUF_MAX_TENSORS)
        return ls_fail("%s: tensor count: expected at most %d, found %llu", c->path, GGUF_MAX_TENSORS,
                       (unsigned long long)*n_tensors);
    if (*n_kv > GGUF_MAX_KV)
        return ls_fail("%s: metadata count: expected at most %d, found %llu", c->path, GGUF_MAX_KV,
                       (unsigned long long)*n_kv);
    return 0;
}

static int read_metadata(gguf_file *f, cursor *c, uint64_t n_kv) {
    f->kv = ls_calloc((size_t)n_kv + 1, sizeof *f->kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &f->kv[f->n_kv];
        if (!(kv->key = rd_name(c, "metadata key"))) return -1;
        f->n_kv++;
        snprintf(c->ctx, sizeof c->ctx, "key '%s'", kv->key);
        if (rd_value(c, kv)) return -1;
    }
    c->ctx[0] = 0;
    char **keys = ls_malloc((size_t)(f->n_kv + 1) * sizeof *keys);
    for (int i = 0; i < f->n_kv; i++) keys[i] = f->kv[i].key;
    int rc = check_unique(c->path, keys, f->n_kv, "key");
    free(keys);
    if (rc) return -1;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (al) {
        uint64_t a = al->type == GGUF_UINT32 ? le(al->data, 4) : 0;
        if (a == 0 || a > GGUF_MAX_ALIGNMENT || (a & (a - 1)))
            return ls_fail("%s: key 'general.alignment': expected a uint32 power of two in [1, %u]%s", c->path,
                           GGUF_MAX_ALIGNMENT, al->type == GGUF_UINT32 ? "" : ", found another type");
        f->alignment = (size_t)a;
    }
    return 0;
}

// One tensor info: name, dims, type, offset; the size follows from dims and type.
static int read_tensor_info(cursor *c, gguf_tensor *t) {
    uint32_t nd;
    if (rd_u32(c, &nd, "n_dims")) return -1;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return ls_fail("%s: tensor '%s': expected 1..%d dims, found %u", c->path, t->name, GGUF_MAX_DIMS, nd);
    t->ndim = (int)nd;
    t->numel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t v;
        if (rd_u64(c, &v, "a dim")) return -1;
        // each factor and the running product stay <= 2^40, so the product never overflows
        if (v < 1 || v > (uint64_t)GGUF_MAX_NUMEL || (int64_t)v > GGUF_MAX_NUMEL / t->numel)
            return ls_fail("%s: tensor '%s': dim %d = %llu: expected dims >= 1 whose product is at most 2^40",
                           c->path, t->name, d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
        t->numel *= (int64_t)v;
    }
    if (rd_u32(c, &t->type, "the type") || rd_u64(c, &t->offset, "the offset")) return -1;
    int bs = quant_block_size(t->type);
    if (!bs)
        return ls_fail("%s: tensor '%s': type %u (%s): expected one of %s", c->path, t->name, (unsigned)t->type,
                       quant_type_name(t->type), quant_supported_names());
    if (t->ne[0] % bs)
        return ls_fail("%s: tensor '%s': row length %lld: expected a multiple of %s's block of %d", c->path,
                       t->name, (long long)t->ne[0], quant_type_name(t->type), bs);
    t->nbytes = (size_t)(t->numel / bs) * quant_type_size(t->type);
    return 0;
}

static int cmp_offsets(const void *a, const void *b) {
    const gguf_tensor *x = *(gguf_tensor *const *)a, *y = *(gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

// Offsets aligned, spans inside the data section, no two spans overlapping.
static int check_spans(gguf_file *f) {
    size_t data_size = f->size - f->data_offset;
    gguf_tensor **order = ls_malloc((size_t)(f->n_tensors + 1) * sizeof *order);
    int rc = 0;
    for (int i = 0; i < f->n_tensors && !rc; i++) {
        gguf_tensor *t = &f->tensors[i];
        order[i] = t;
        if (t->offset % f->alignment)
            rc = ls_fail("%s: tensor '%s': offset %llu: expected a multiple of the alignment %zu", f->path,
                         t->name, (unsigned long long)t->offset, f->alignment);
        else if (t->offset > data_size || t->nbytes > data_size - t->offset)
            rc = ls_fail("%s: tensor '%s': bytes [%llu, %llu) of the data section: expected them inside its "
                         "%zu bytes", f->path, t->name, (unsigned long long)t->offset,
                         (unsigned long long)t->offset + t->nbytes, data_size);
    }
    if (!rc) qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_offsets);
    for (int i = 1; i < f->n_tensors && !rc; i++)
        if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
            rc = ls_fail("%s: tensor '%s' overlaps tensor '%s' (expected disjoint data)", f->path, order[i]->name,
                         order[i - 1]->name);
    free(order);
    return rc;
}

static int read_tensors(gguf_file *f, cursor *c, uint64_t n_tensors) {
    // every tensor info takes at least 8 + 1 + 4 + 8 + 4 + 8 bytes
    if (n_tensors > (c->size - c->pos) / 33)
        return ls_fail("%s: tensor count %llu: expected at most %zu for the %zu bytes left", c->path,
                       (unsigned long long)n_tensors, (c->size - c->pos) / 33, c->size - c->pos);
    f->tensors = ls_calloc((size_t)n_tensors + 1, sizeof *f->tensors);
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = rd_name(c, "tensor name"))) return -1;
        f->n_tensors++;
        snprintf(c->ctx, sizeof c->ctx, "tensor '%s'", t->name);
        if (read_tensor_info(c, t)) return -1;
    }
    c->ctx[0] = 0;
    char **names = ls_malloc((size_t)(f->n_tensors + 1) * sizeof *names);
    for (int i = 0; i < f->n_tensors; i++) names[i] = f->tensors[i].name;
    int rc = check_unique(c->path, names, f->n_tensors, "tensor");
    free(names);
    if (rc) return -1;
    size_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
    if (f->n_tensors > 0 && pad > c->size - c->pos)
        return ls_fail("%s: truncated: the data section should start at byte %zu, file has %zu bytes", c->path,
                       c->pos + pad, c->size);
    f->data_offset = pad > c->size - c->pos ? c->size : c->pos + pad;
    return check_spans(f);
}

// ----------------------------------------------------------------------------
// open / close

static void free_partial(gguf_file *f) {
    for (int i = 0; i < f->n_kv; i++) {
        free(f->kv[i].key);
        free(f->kv[i].strs);
    }
    free(f->kv);
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static int parse(gguf_file *f) {
    cursor c = {f->bytes, f->size, 0, f->path, ""};
    uint64_t n_tensors = 0, n_kv = 0;
    if (read_header(f, &c, &n_tensors, &n_kv) || read_metadata(f, &c, n_kv) || read_tensors(f, &c, n_tensors)) {
        free_partial(f);
        return -1;
    }
    return 0;
}

int gguf_open_memory(gguf_file *f, const void *buf, size_t size, const char *name) {
    memset(f, 0, sizeof *f);
    f->path = ls_strdup(name);
    f->bytes = size ? buf : (const uint8_t *)"";
    f->size = size;
    return parse(f);
}

int gguf_open(gguf_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    void *map;
    size_t size;
    if (ls_map_file(path, &map, &size)) return -1;
    f->path = ls_strdup(path);
    f->map = map;
    f->bytes = map ? map : (const uint8_t *)"";
    f->size = size;
    return parse(f);
}

void gguf_close(gguf_file *f) { free_partial(f); }

int gguf_is_gguf(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    struct stat st;
    uint8_t m[4];
    int yes = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, m, 4) == 4 && le(m, 4) == GGUF_MAGIC;
    close(fd);
    return yes;
}

// ----------------------------------------------------------------------------
// metadata getters

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    for (int i = 0; i < f->n_kv; i++)
        if (!strcmp(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

static int64_t int_at(gguf_type t, const uint8_t *p) {
    switch (t) {
    case GGUF_UINT8: return p[0];
    case GGUF_INT8: return (int8_t)p[0];
    case GGUF_UINT16: return (uint16_t)le(p, 2);
    case GGUF_INT16: return (int16_t)(uint16_t)le(p, 2);
    case GGUF_UINT32: return (uint32_t)le(p, 4);
    case GGUF_INT32: return (int32_t)(uint32_t)le(p, 4);
    case GGUF_UINT64: return le(p, 8) > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)le(p, 8);
    case GGUF_INT64: return (int64_t)le(p, 8);
    default: ls_assert(!"not an integer type");
    }
    return 0;
}

static double float_at(gguf_type t, const uint8_t *p) {
    uint32_t u = (uint32_t)le(p, 4);
    uint64_t w = le(p, 8);
    float x;
    double y;
    memcpy(&x, &u, 4);
    memcpy(&y, &w, 8);
    return t == GGUF_FLOAT32 ? x : y;
}

static const gguf_kv *find_required(const gguf_file *f, const char *key, const char *expected) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) ls_fail("%s: missing key '%s' (expected %s)", f->path, key, expected);
    return kv;
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    const gguf_kv *kv = find_required(f, key, "an integer");
    if (!kv) return -1;
    if (!is_int_type(kv->type))
        return ls_fail("%s: key '%s': expected an integer in [%lld, %lld], found a %s", f->path, key, (long long)lo,
                       (long long)hi, gguf_type_name(kv->type));
    int64_t v = int_at(kv->type, kv->data);
    if (v < lo || v > hi || (kv->type == GGUF_UINT64 && le(kv->data, 8) > (uint64_t)INT64_MAX))
        return ls_fail("%s: key '%s': expected an integer in [%lld, %lld], found %lld", f->path, key, (long long)lo,
                       (long long)hi, (long long)v);
    *out = v;
    return 0;
}

int gguf_get_float(const gguf_file *f, const char *key, double lo, double hi, double *out) {
    const gguf_kv *kv = find_required(f, key, "a number");
    if (!kv) return -1;
    if (kv->type != GGUF_FLOAT32 && kv->type != GGUF_FLOAT64)
        return ls_fail("%s: key '%s': expected a float32 in [%g, %g], found a %s", f->path, key, lo, hi,
                       gguf_type_name(kv->type));
    double v = float_at(kv->type, kv->data);
    if (!isfinite(v) || v < lo || v > hi)
        return ls_fail("%s: key '%s': expected a finite number in [%g, %g], found %g", f->path, key, lo, hi, v);
    *out = v;
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out) {
    const gguf_kv *kv = find_required(f, key, "a bool");
    if (!kv) return -1;
    if (kv->type != GGUF_BOOL)
        return ls_fail("%s: key '%s': expected a bool, found a %s", f->path, key, gguf_type_name(kv->type));
    *out = kv->data[0];
    return 0;
}

int gguf_get_string(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = find_required(f, key, "a string");
    if (!kv) return -1;
    if (kv->type != GGUF_STRING)
        return ls_fail("%s: key '%s': expected a string, found a %s", f->path, key, gguf_type_name(kv->type));
    *out = kv->strs[0];
    return 0;
}

int gguf_get_array(const gguf_file *f, const char *key, gguf_type elem, const gguf_kv **out) {
    const char *want = elem == GGUF_INT64 ? "integers" : elem == GGUF_FLOAT64 ? "floats" : gguf_type_name(elem);
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return ls_fail("%s: missing key '%s' (expected an array of %s)", f->path, key, want);
    int ok = kv->type == GGUF_ARRAY &&
             (elem == GGUF_INT64     ? is_int_type(kv->elem_type)
              : elem == GGUF_FLOAT64 ? kv->elem_type == GGUF_FLOAT32 || kv->elem_type == GGUF_FLOAT64
                                     : kv->elem_type == elem);
    if (!ok)
        return ls_fail("%s: key '%s': expected an array of %s, found %s%s", f->path, key, want,
                       kv->type == GGUF_ARRAY ? "an array of " : "a ",
                       gguf_type_name(kv->type == GGUF_ARRAY ? kv->elem_type : kv->type));
    *out = kv;
    return 0;
}

int64_t gguf_array_int(const gguf_kv *kv, uint64_t i) {
    ls_assert(i < kv->n && is_int_type(kv->elem_type));
    return int_at(kv->elem_type, kv->data + i * scalar_size(kv->elem_type));
}

double gguf_array_float(const gguf_kv *kv, uint64_t i) {
    ls_assert(i < kv->n && (kv->elem_type == GGUF_FLOAT32 || kv->elem_type == GGUF_FLOAT64));
    return float_at(kv->elem_type, kv->data + i * scalar_size(kv->elem_type));
}

int gguf_str_eq(gguf_str s, const char *text) { return strlen(text) == s.len && !memcmp(s.ptr, text, s.len); }

// ----------------------------------------------------------------------------
// tensors

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

float *gguf_load_float(const gguf_file *f, const gguf_tensor *t) {
    float *x = ls_malloc((size_t)t->numel * sizeof(float));
    quant_dequantize(t->type, f->bytes + f->data_offset + t->offset, t->numel, x);
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(x[i])) {
            ls_fail("%s: tensor '%s' (%s): element %lld is %s (expected finite weights)", f->path, t->name,
                    quant_type_name(t->type), (long long)i, isnan(x[i]) ? "nan" : "inf");
            free(x);
            return NULL;
        }
    return x;
}
