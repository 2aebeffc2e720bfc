// quant: ggml tensor types and their dequantization to float32.
//
// A GGUF tensor's bytes are rows of blocks; a block holds `block_size`
// consecutive values of a row in `type_size` bytes (ggml-common.h). Layouts,
// all little-endian, f16 = IEEE binary16 (written down once, here):
//   F32  1 value, 4 B          F16 1 value, 2 B          BF16 1 value, 2 B
//   Q4_0 32 values, 18 B: f16 d, 16 B qs          x = d * ((q & 15) - 8)
//   Q4_1 32 values, 20 B: f16 d, f16 m, 16 B qs   x = d * (q & 15) + m
//   Q5_0 32 values, 22 B: f16 d, u32 qh, 16 B qs  x = d * ((q | h << 4) - 16)
//   Q5_1 32 values, 24 B: f16 d, f16 m, u32 qh, 16 B qs   x = d * (q | h << 4) + m
//   Q8_0 32 values, 34 B: f16 d, 32 int8 qs       x = d * q
//     (4-bit types: value j < 16 is qs[j] & 15, value j + 16 is qs[j] >> 4;
//      the fifth bit of value j is bit j of qh)
//   K-quants, 256 values per super-block of 16 or 8 sub-blocks:
//   Q2_K  84 B: 16 B scales (4-bit scale | 4-bit min), 64 B qs (2-bit), f16 d, f16 dmin
//   Q3_K 110 B: 32 B hmask, 64 B qs (2-bit), 12 B scales (6-bit signed), f16 d
//   Q4_K 144 B: f16 d, f16 dmin, 12 B scales (8 x 6-bit scale + min), 128 B qs (4-bit)
//   Q5_K 176 B: f16 d, f16 dmin, 12 B scales, 32 B qh, 128 B qs (4-bit)
//   Q6_K 210 B: 128 B ql (4-bit), 64 B qh (2-bit), 16 int8 scales, f16 d
// The arithmetic is float32 in the order gguf-py's quants.py uses (products
// of the f16 scales with the sub-block scale first, then with q), so the
// results are bit-identical to gguf-py's and therefore to what Hugging Face
// transformers loads from a GGUF file.
//
// Memory: nothing here allocates; callers own src and dst.
#ifndef LS_QUANT_H
#define LS_QUANT_H

#include <stddef.h>
#include <stdint.h>

// ggml's type ids as stored in GGUF tensor infos (ggml.h's enum ggml_type).
typedef enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3,
    GGML_Q5_0 = 6, GGML_Q5_1 = 7, GGML_Q8_0 = 8,
    GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12, GGML_Q5_K = 13, GGML_Q6_K = 14,
    GGML_BF16 = 30,
} ggml_type;

// Values per block of a supported type, 0 for any other id (unknown, or a
// ggml type lorascope does not dequantize).
int quant_block_size(uint32_t type);
// Bytes per block of a supported type, 0 otherwise.
size_t quant_type_size(uint32_t type);
// "Q4_1"; ggml's name for the types lorascope knows of but does not
// dequantize ("IQ2_XXS"); "unknown" otherwise. Static storage.
const char *quant_type_name(uint32_t type);
// The supported types' names, comma-separated (for messages). Static storage.
const char *quant_supported_names(void);

// Dequantizes n values (a multiple of the type's block size) from src, which
// holds n / block_size * type_size bytes, into dst. The type must be supported.
void quant_dequantize(uint32_t type, const void *src, int64_t n, float *dst);

// IEEE binary16 -> float32, exact (subnormals, inf and nan included).
float quant_f16_to_float(uint16_t h);

#endif
