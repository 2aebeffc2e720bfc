#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

// ----------------------------------------------------------------------------
// dtypes and half-precision conversion

size_t st_dtype_size(st_dtype dt) { return dt == ST_I64 ? 8 : dt == ST_F32 || dt == ST_I32 ? 4 : 2; }

int st_dtype_is_float(st_dtype dt) { return dt == ST_F32 || dt == ST_F16 || dt == ST_BF16; }

const char *st_dtype_name(st_dtype dt) {
    switch (dt) {
    case ST_F32: return "F32";
    case ST_F16: return "F16";
    case ST_BF16: return "BF16";
    case ST_I64: return "I64";
    case ST_I32: return "I32";
    }
    return "?";
}

static int dtype_from_name(const char *s, st_dtype *dt) {
    if (!strcmp(s, "F32")) *dt = ST_F32;
    else if (!strcmp(s, "F16")) *dt = ST_F16;
    else if (!strcmp(s, "BF16")) *dt = ST_BF16;
    else if (!strcmp(s, "I64")) *dt = ST_I64;
    else if (!strcmp(s, "I32")) *dt = ST_I32;
    else return -1;
    return 0;
}

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

// IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float st_f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13)); // inf / nan
    if (exp == 0) {
        if (man == 0) return bits_to_float(sign);
        // subnormal: man * 2^-24, exact in float
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}

// bfloat16 is the top half of a float32.
float st_bf16_to_float(uint16_t h) { return bits_to_float((uint32_t)h << 16); }

uint16_t st_float_to_bf16(float x) {
    uint32_t u = float_to_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); // quiet nan
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1); // nearest, ties to even
    return (uint16_t)((u + rounding) >> 16);
}

uint16_t st_float_to_f16(float x) {
    uint32_t u = float_to_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;             // nan
    if (a >= 0x477ff000u) return sign | 0x7c00;            // rounds to inf (>= 65520)
    if (a < 0x38800000u) {                                 // below 2^-14: subnormal or zero
        // value = a as float; subnormal unit is 2^-24. Round half to even.
        float v = bits_to_float(a) * 0x1p24f;             // exact: scales by a power of 2
        float r = nearbyintf(v);                           // default rounding: ties to even
        return sign | (uint16_t)r;
    }
    uint32_t exp = (a >> 23) - 112, man = a & 0x7fffffu;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++; // carries into the exponent correctly
    return sign | (uint16_t)h;
}

// ----------------------------------------------------------------------------
// reader

static void free_partial(st_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

// A JSON number that is a non-negative integer below 2^53 (exact in a double).
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_by_offset(const void *a, const void *b) {
    const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(st_tensor *const *)a)->name, (*(st_tensor *const *)b)->name);
}

static int parse_tensor(st_file *f, const cJSON *item, st_tensor *t) {
    const char *path = f->path, *key = item->string;
    if (!cJSON_IsObject(item))
        return ls_fail("%s: tensor '%s': expected an object {dtype, shape, data_offsets}", path, key);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype))
        return ls_fail("%s: tensor '%s': field 'dtype': expected a string", path, key);
    if (dtype_from_name(dtype->valuestring, &t->dtype))
        return ls_fail("%s: tensor '%s': field 'dtype': expected F32, F16 or BF16 (or an I64/I32 buffer), found '%s'",
                       path, key, dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return ls_fail("%s: tensor '%s': field 'shape': expected an array of integers", path, key);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return ls_fail("%s: tensor '%s': field 'shape': expected at most %d dimensions, found %d",
                       path, key, ST_MAX_DIMS, ndim);
    t->ndim = ndim;
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        uint64_t n;
        if (json_uint(cJSON_GetArrayItem(shape, d), &n))
            return ls_fail("%s: tensor '%s': field 'shape'[%d]: expected a non-negative integer", path, key, d);
        t->shape[d] = (int64_t)n;
        if (n && numel > UINT64_MAX / 8 / n) // times the widest dtype (I64) stays in range
            return ls_fail("%s: tensor '%s': field 'shape': element count overflows", path, key);
        numel *= n;
    }
    t->numel = (int64_t)numel;
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_uint(cJSON_GetArrayItem(offs, 0), &begin) || json_uint(cJSON_GetArrayItem(offs, 1), &end))
        return ls_fail("%s: tensor '%s': field 'data_offsets': expected [begin, end] integers", path, key);
    if (begin > end)
        return ls_fail("%s: tensor '%s': field 'data_offsets': begin %llu > end %llu", path, key,
                       (unsigned long long)begin, (unsigned long long)end);
    uint64_t want = numel * st_dtype_size(t->dtype);
    if (end - begin != want)
        return ls_fail("%s: tensor '%s': shape x dtype size is %llu bytes but data_offsets span %llu",
                       path, key, (unsigned long long)want, (unsigned long long)(end - begin));
    if (end > f->data_size)
        return ls_fail("%s: tensor '%s': data_offsets end %llu lies past the data buffer (%zu bytes; file truncated?)",
                       path, key, (unsigned long long)end, f->data_size);
    t->offset = (size_t)begin;
    t->nbytes = (size_t)(end - begin);
    return 0;
}

static int parse_metadata(st_file *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return ls_fail("%s: '__metadata__': expected an object of strings", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = ls_calloc(n, sizeof(char *));
    f->meta_values = ls_calloc(n, sizeof(char *));
    const cJSON *it;
    cJSON_ArrayForEach(it, meta) {
        if (!cJSON_IsString(it))
            return ls_fail("%s: '__metadata__' key '%s': expected a string value", f->path, it->string);
        f->meta_keys[f->n_meta] = ls_strdup(it->string);
        f->meta_values[f->n_meta] = ls_strdup(it->valuestring);
        f->n_meta++;
    }
    return 0;
}

static int parse_header(st_file *f, const uint8_t *buf, size_t size) {
    const char *path = f->path;
    if (size < 8)
        return ls_fail("%s: expected an 8-byte header length, file has %zu bytes (truncated?)", path, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > ST_MAX_HEADER)
        return ls_fail("%s: header length %llu exceeds the %u-byte limit (not a safetensors file?)",
                       path, (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return ls_fail("%s: header length %llu runs past the end of the file (%zu bytes; truncated?)",
                       path, (unsigned long long)n, size);
    if (n < 2 || buf[8] != '{')
        return ls_fail("%s: header: expected a JSON object starting with '{'", path);
    f->data = buf + 8 + n;
    f->data_size = size - 8 - (size_t)n;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)n, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end ? (size_t)(end - (const char *)buf - 8) : 0;
        cJSON_Delete(root);
        return ls_fail("%s: header: invalid JSON near byte %zu of %llu", path, at, (unsigned long long)n);
    }
    int count = cJSON_GetArraySize(root);
    f->tensors = ls_calloc(count, sizeof(st_tensor));
    const cJSON *item;
    int rc = 0;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) {
            if (f->meta_keys) { rc = ls_fail("%s: '__metadata__' appears twice", path); break; }
            if ((rc = parse_metadata(f, item))) break;
            continue;
        }
        st_tensor *t = &f->tensors[f->n_tensors];
        t->name = ls_strdup(item->string);
        f->n_tensors++;
        if ((rc = parse_tensor(f, item, t))) break;
    }
    cJSON_Delete(root);
    if (rc) return rc;

    // Names unique, byte spans disjoint.
    int nt = f->n_tensors;
    st_tensor **order = ls_malloc((size_t)(nt ? nt : 1) * sizeof *order);
    for (int i = 0; i < nt; i++) order[i] = &f->tensors[i];
    qsort(order, nt, sizeof *order, cmp_by_name);
    for (int i = 1; i < nt; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name)) {
            rc = ls_fail("%s: tensor '%s' appears twice in the header", path, order[i]->name);
            break;
        }
    if (!rc) {
        qsort(order, nt, sizeof *order, cmp_by_offset);
        for (int i = 1; i < nt; i++) {
            const st_tensor *a = order[i - 1], *b = order[i];
            if (b->nbytes && a->offset + a->nbytes > b->offset) {
                rc = ls_fail("%s: tensors '%s' and '%s' overlap in the data buffer", path, a->name, b->name);
                break;
            }
        }
    }
    free(order);
    return rc;
}

int st_open_memory(st_file *f, const void *buf, size_t size, const char *name) {
    memset(f, 0, sizeof *f);
    f->path = ls_strdup(name);
    if (parse_header(f, buf, size)) {
        free_partial(f);
        return -1;
    }
    return 0;
}

int st_open(st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    void *map;
    size_t size;
    if (ls_map_file(path, &map, &size)) return -1;
    f->path = ls_strdup(path);
    f->map = map;
    f->map_size = size;
    if (parse_header(f, map ? map : (const void *)"", size)) {
        free_partial(f);
        return -1;
    }
    return 0;
}

void st_close(st_file *f) { free_partial(f); }

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

void st_to_float(const st_file *f, const st_tensor *t, float *out) {
    const uint8_t *p = f->data + t->offset;
    if (t->dtype == ST_F32) {
        memcpy(out, p, t->nbytes);
        return;
    }
    if (t->dtype == ST_I64 || t->dtype == ST_I32) {
        for (int64_t i = 0; i < t->numel; i++) {
            int64_t v;
            if (t->dtype == ST_I64) memcpy(&v, p + 8 * i, 8);
            else {
                int32_t w;
                memcpy(&w, p + 4 * i, 4);
                v = w;
            }
            out[i] = (float)v;
        }
        return;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
        out[i] = t->dtype == ST_F16 ? st_f16_to_float(h) : st_bf16_to_float(h);
    }
}

float *st_load_float(const st_file *f, const st_tensor *t) {
    float *out = ls_malloc((size_t)t->numel * sizeof(float));
    st_to_float(f, t, out);
    return out;
}

// ----------------------------------------------------------------------------
// writer

int st_write(const char *path, const st_entry *entries, int n, const char *const *meta, int n_meta) {
    cJSON *root = cJSON_CreateObject();
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]);
    }
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const st_entry *e = &entries[i];
        ls_assert(e->ndim >= 0 && e->ndim <= ST_MAX_DIMS);
        int64_t numel = 1;
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(t, "dtype", st_dtype_name(e->dtype));
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < e->ndim; d++) {
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
            numel *= e->shape[d];
        }
        size_t nbytes = (size_t)numel * st_dtype_size(e->dtype);
        cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + nbytes)));
        offset += nbytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t hlen = strlen(json);
    size_t padded = (hlen + 7) & ~(size_t)7; // data buffer 8-byte aligned, padded with spaces
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));

    ls_outfile out;
    if (ls_out_open(&out, path)) {
        free(json);
        return -1;
    }
    errno = 0;
    int bad = fwrite(len8, 1, 8, out.fp) != 8;
    bad |= fwrite(json, 1, hlen, out.fp) != hlen;
    for (size_t i = hlen; i < padded; i++) bad |= fputc(' ', out.fp) == EOF;
    free(json);
    for (int i = 0; i < n && !bad; i++) {
        const st_entry *e = &entries[i];
        int64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) numel *= e->shape[d];
        if (e->dtype == ST_F32) {
            bad |= fwrite(e->data, sizeof(float), (size_t)numel, out.fp) != (size_t)numel;
            continue;
        }
        for (int64_t k = 0; k < numel; k++) {
            uint16_t h = e->dtype == ST_F16 ? st_float_to_f16(e->data[k]) : st_float_to_bf16(e->data[k]);
            uint8_t b[2] = {(uint8_t)(h & 0xff), (uint8_t)(h >> 8)};
            bad |= fwrite(b, 1, 2, out.fp) != 2;
        }
    }
    if (bad) {
        int e = errno ? errno : EIO; // the failed fwrite's reason ("No space left on device")
        ls_out_abort(&out);
        return ls_fail("%s: write failed: %s", path, strerror(e));
    }
    return ls_out_commit(&out);
}
