// safetensors: reader (mmap, validated) and writer (atomic).
//
// File layout (huggingface/safetensors): 8-byte little-endian u64 N, then N
// bytes of UTF-8 JSON, then the data buffer. The JSON maps each tensor name to
// {"dtype": "F32"|"F16"|"BF16", "shape": [..], "data_offsets": [begin, end]}
// with offsets relative to the start of the data buffer; the optional key
// "__metadata__" maps strings to strings. Everything is checked before use:
// header length bound, valid JSON, known dtype, shape x dtype size == span,
// spans inside the data buffer and non-overlapping.
#ifndef LS_SAFETENSORS_H
#define LS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u * 1024u * 1024u) // same bound as the reference library

// I64 / I32 are read (integer buffers such as BERT's embeddings.position_ids)
// but are not weights: loaders refuse them where a weight is expected.
typedef enum { ST_F32 = 0, ST_F16 = 1, ST_BF16 = 2, ST_I64 = 3, ST_I32 = 4 } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    size_t offset; // byte offset into the data buffer
    size_t nbytes;
} st_tensor;

typedef struct {
    char *path;           // as given to st_open (for messages)
    void *map;            // mmap of the whole file (NULL for st_open_memory)
    size_t map_size;
    const uint8_t *data;  // start of the data buffer
    size_t data_size;
    int n_tensors;
    st_tensor *tensors;   // in file order
    int n_meta;
    char **meta_keys;     // __metadata__ entries
    char **meta_values;
} st_file;

// Maps and validates a file. Returns 0, or -1 with ls_error() naming the file,
// the key and what was wrong. On failure *f needs no st_close.
int st_open(st_file *f, const char *path);
// Same checks over a buffer the caller keeps alive (fuzzing, tests).
int st_open_memory(st_file *f, const void *buf, size_t size, const char *name);
void st_close(st_file *f);

// The tensor called name, or NULL.
const st_tensor *st_find(const st_file *f, const char *name);
// A __metadata__ value, or NULL.
const char *st_metadata(const st_file *f, const char *key);
// Decodes a tensor into out (numel floats); F16/BF16 are widened exactly,
// I64/I32 converted (exact up to 2^24).
void st_to_float(const st_file *f, const st_tensor *t, float *out);
// Same, into a fresh malloc'd buffer owned by the caller.
float *st_load_float(const st_file *f, const st_tensor *t);

// Half-precision conversions (round to nearest even on narrowing).
float st_f16_to_float(uint16_t h);
float st_bf16_to_float(uint16_t h);
uint16_t st_float_to_f16(float x);
uint16_t st_float_to_bf16(float x);
size_t st_dtype_size(st_dtype dt);
// 1 for F32, F16, BF16.
int st_dtype_is_float(st_dtype dt);
const char *st_dtype_name(st_dtype dt);

// ----------------------------------------------------------------------------
// writer

typedef struct {
    const char *name;
    st_dtype dtype;       // the dtype stored in the file (data is always float)
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data;    // numel floats, row-major
} st_entry;

// Writes the entries (in the order given) and optional metadata pairs
// (meta[2k] = key, meta[2k+1] = value) atomically. Returns 0 or -1.
int st_write(const char *path, const st_entry *entries, int n,
             const char *const *meta, int n_meta);

#endif
