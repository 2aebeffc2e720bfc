// gguf: reader of GGUF files (llama.cpp's model format), versions 2 and 3.
//
// File layout (ggml/docs/gguf.md), little-endian:
//   u32 magic "GGUF", u32 version (2 or 3), u64 tensor_count, u64 kv_count
//   kv_count times:     string key, u32 value_type, value
//   tensor_count times: string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type,
//                       u64 offset (relative to the data section)
//   padding to general.alignment (default 32), then the data section.
// A string is u64 length + bytes (no NUL). A value is one of the scalar
// types below, a string, or an array: u32 element type, u64 count, elements.
// ne[0] is the innermost dimension: a (rows, cols) matrix has ne = {cols, rows}.
//
// Everything is validated at open, before any use: every read inside the
// file, counts and lengths under the GGUF_MAX_* limits and under the bytes
// left, keys and tensor names unique and free of NUL bytes, known value and
// tensor types, 1..4 dims whose product neither overflows nor breaks a row of
// blocks, general.alignment a power of two, tensor offsets aligned, inside the
// file and not overlapping. Errors are one line via ls_fail: the file, the key
// or tensor, what was expected, what was found.
//
// Memory: gguf_open maps the file read-only; strings and values point into
// the map (valid until gguf_close). The arrays of keys and tensors are owned
// by the gguf_file.
#ifndef LS_GGUF_H
#define LS_GGUF_H

#include <stddef.h>
#include <stdint.h>

// Limits on what a file's counts control. Far above real models (SmolLM2 has
// 272 tensors, 37 keys, a 49,152-entry vocabulary), they bound allocations
// before a hostile file can make them huge.
#define GGUF_MAX_TENSORS (1 << 20)
#define GGUF_MAX_KV (1 << 16)
#define GGUF_MAX_NAME 1024              // bytes of a key or tensor name
#define GGUF_MAX_STRING (16u << 20)     // bytes of a string value
#define GGUF_MAX_ARRAY (1u << 28)       // elements of an array
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NUMEL ((int64_t)1 << 40) // values of one tensor
#define GGUF_MAX_ALIGNMENT (1u << 16)

typedef enum {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4, GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
} gguf_type;

typedef struct {
    const char *ptr; // into the map, not NUL-terminated (may hold NUL bytes)
    size_t len;
} gguf_str;

typedef struct {
    char *key;              // NUL-terminated copy
    gguf_type type;         // GGUF_ARRAY for arrays
    gguf_type elem_type;    // arrays: the element type (GGUF_ARRAY: nested, no accessor)
    uint64_t n;             // arrays: element count; scalars 1
    const uint8_t *data;    // scalars and numeric arrays: the bytes in the map
    gguf_str *strs;         // GGUF_STRING (1 entry) and arrays of strings (n entries); owned
} gguf_kv;

typedef struct {
    char *name;
    int ndim;
    int64_t ne[GGUF_MAX_DIMS]; // ne[0] innermost; unused dims 1
    uint32_t type;          // ggml_type (io/quant.h)
    int64_t numel;
    uint64_t offset;        // in the data section
    size_t nbytes;
} gguf_tensor;

typedef struct {
    char *path;
    void *map;              // NULL for gguf_open_memory
    size_t size;
    const uint8_t *bytes;   // the whole file
    uint32_t version;
    int n_kv;
    gguf_kv *kv;            // in file order
    int n_tensors;
    gguf_tensor *tensors;   // in file order
    size_t alignment;
    size_t data_offset;     // start of the data section in the file
} gguf_file;

// Maps and validates a regular file. Returns 0, or -1 with ls_error() set;
// on failure *f needs no gguf_close.
int gguf_open(gguf_file *f, const char *path);
// The same checks over a buffer the caller keeps alive (fuzzing, tests).
int gguf_open_memory(gguf_file *f, const void *buf, size_t size, const char *name);
void gguf_close(gguf_file *f);

// 1 if the first bytes of the file at path are the GGUF magic.
int gguf_is_gguf(const char *path);

// ----------------------------------------------------------------------------
// metadata. Getters return 0, or -1 with ls_error() naming the file, the key
// and what was expected (a missing key included).

const gguf_kv *gguf_find(const gguf_file *f, const char *key);
// Any integer type, in [lo, hi].
int gguf_get_int(const gguf_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out);
// float32 or float64, finite, in [lo, hi].
int gguf_get_float(const gguf_file *f, const char *key, double lo, double hi, double *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_string(const gguf_file *f, const char *key, gguf_str *out);
// An array whose elements have type elem (any integer type when elem is
// GGUF_INT64, either float type when GGUF_FLOAT64). *kv gets the entry.
int gguf_get_array(const gguf_file *f, const char *key, gguf_type elem, const gguf_kv **kv);
// Element i of a numeric array entry, converted (integers exactly).
int64_t gguf_array_int(const gguf_kv *kv, uint64_t i);
double gguf_array_float(const gguf_kv *kv, uint64_t i);
// 1 if s equals the NUL-terminated text.
int gguf_str_eq(gguf_str s, const char *text);
const char *gguf_type_name(gguf_type t);

// ----------------------------------------------------------------------------
// tensors

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
// The tensor's values as float32, row-major (ne[0] fastest) in a fresh
// malloc'd buffer owned by the caller; NULL with ls_error() naming the file
// and the tensor when a value is not finite.
float *gguf_load_float(const gguf_file *f, const gguf_tensor *t);

#endif
