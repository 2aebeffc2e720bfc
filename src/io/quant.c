// quant: dequantization of ggml's block types (layouts in quant.h).
#include "io/quant.h"

#include <string.h>

#include "base/util.h"

// ----------------------------------------------------------------------------
// type table

typedef struct {
    uint32_t id;
    const char *name;
    int block_size;   // 0: known to ggml, not dequantized here
    size_t type_size;
} type_info;

static const type_info TYPES[] = {
    {GGML_F32, "F32", 1, 4},          {GGML_F16, "F16", 1, 2},
    {GGML_Q4_0, "Q4_0", 32, 18},      {GGML_Q4_1, "Q4_1", 32, 20},
    {4, "Q4_2", 0, 0},                {5, "Q4_3", 0, 0},
    {GGML_Q5_0, "Q5_0", 32, 22},      {GGML_Q5_1, "Q5_1", 32, 24},
    {GGML_Q8_0, "Q8_0", 32, 34},      {9, "Q8_1", 0, 0},
    {GGML_Q2_K, "Q2_K", 256, 84},     {GGML_Q3_K, "Q3_K", 256, 110},
    {GGML_Q4_K, "Q4_K", 256, 144},    {GGML_Q5_K, "Q5_K", 256, 176},
    {GGML_Q6_K, "Q6_K", 256, 210},    {15, "Q8_K", 0, 0},
    {16, "IQ2_XXS", 0, 0},            {17, "IQ2_XS", 0, 0},
    {18, "IQ3_XXS", 0, 0},            {19, "IQ1_S", 0, 0},
    {20, "IQ4_NL", 0, 0},             {21, "IQ3_S", 0, 0},
    {22, "IQ2_S", 0, 0},              {23, "IQ4_XS", 0, 0},
    {24, "I8", 0, 0},                 {25, "I16", 0, 0},
    {26, "I32", 0, 0},                {27, "I64", 0, 0},
    {28, "F64", 0, 0},                {29, "IQ1_M", 0, 0},
    {GGML_BF16, "BF16", 1, 2},        {34, "TQ1_0", 0, 0},
    {35, "TQ2_0", 0, 0},              {39, "MXFP4", 0, 0},
};
#define N_TYPES (int)(sizeof TYPES / sizeof TYPES[0])

static const type_info *type_of(uint32_t id) {
    for (int i = 0; i < N_TYPES; i++)
        if (TYPES[i].id == id) return &TYPES[i];
    return NULL;
}

int quant_block_size(uint32_t type) {
    const type_info *t = type_of(type);
    return t ? t->block_size : 0;
}

size_t quant_type_size(uint32_t type) {
    const type_info *t = type_of(type);
    return t ? t->type_size : 0;
}

const char *quant_type_name(uint32_t type) {
    const type_info *t = type_of(type);
    return t ? t->name : "unknown";
}

const char *quant_supported_names(void) {
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K";
}

// ----------------------------------------------------------------------------
// scalars

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float quant_f16_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13)); // inf / nan
    if (exp == 0) {
        if (man == 0) return bits_to_float(sign);
        float v = (float)man * 0x1p-24f; // subnormal: exact in float
        return sign ? -v : v;
    }
    return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}

static float f16_at(const uint8_t *p) { return quant_f16_to_float((uint16_t)(p[0] | p[1] << 8)); }

static uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// ----------------------------------------------------------------------------
// 32-value blocks

// Q4_0 / Q4_1 / Q5_0 / Q5_1: the 4 low bits of value j (j < 32) and, with qh, its fifth bit.
static int low_nibble(const uint8_t *qs, int j) { return j < 16 ? qs[j] & 15 : qs[j - 16] >> 4; }

static void dequant_q4_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(low_nibble(b + 2, j) - 8);
}

static void dequant_q4_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)low_nibble(b + 4, j) + m;
}

static void dequant_q5_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    uint32_t qh = u32_at(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)((low_nibble(b + 6, j) | (int)((qh >> j) & 1) << 4) - 16);
}

static void dequant_q5_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = u32_at(b + 4);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(low_nibble(b + 8, j) | (int)((qh >> j) & 1) << 4) + m;
}

static void dequant_q8_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

// ----------------------------------------------------------------------------
// K-quants: 256 values per super-block. Value e lies in half h = e / 128 and,
// inside it, in the 32-value group s = (e % 128) / 32 at lane l = e % 32.

static void dequant_q2_k(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *qs = b + 16;
    float d = f16_at(b + 80), dmin = f16_at(b + 82);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, s = (e % 128) / 32, l = e % 32, sub = e / 16;
        float dl = d * (float)(scales[sub] & 15), ml = dmin * (float)(scales[sub] >> 4);
        int q = (qs[h * 32 + l] >> (2 * s)) & 3;
        y[e] = dl * (float)q - ml;
    }
}

static void dequant_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    float d = f16_at(b + 108), dl[16];
    // 16 6-bit scales: the low 4 bits in sc[0..8) (two per byte), the high 2 in sc[8..12)
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? sc[i] & 15 : sc[i - 8] >> 4;
        int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
        dl[i] = d * (float)((int8_t)(lo | hi << 4) - 32);
    }
    for (int e = 0; e < 256; e++) {
        int h = e / 128, s = (e % 128) / 32, l = e % 32;
        int low = (qs[h * 32 + l] >> (2 * s)) & 3;
        int high_clear = ((hmask[l] >> (e / 32)) & 1) ^ 1; // a clear hmask bit subtracts 4
        y[e] = dl[e / 16] * (float)(low - (high_clear << 2));
    }
}

// Q4_K / Q5_K: 8 scales and 8 mins of 6 bits packed in 12 bytes.
static void k_scale_min(const uint8_t *sc, int j, int *scale, int *min) {
    if (j < 4) {
        *scale = sc[j] & 63;
        *min = sc[j + 4] & 63;
    } else {
        *scale = (sc[j + 4] & 15) | ((sc[j - 4] >> 2) & 0x30);
        *min = (sc[j + 4] >> 4) | ((sc[j] >> 2) & 0x30);
    }
}

// Q4_K (qh == NULL) and Q5_K: value e is in sub-block e / 32; its 4 low bits
// are nibble (e / 32) % 2 of qs[(e / 64) * 32 + e % 32].
static void dequant_q45_k(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    for (int sub = 0; sub < 8; sub++) {
        int scale, min;
        k_scale_min(b + 4, sub, &scale, &min);
        float ds = d * (float)scale, dm = dmin * (float)min;
        for (int l = 0; l < 32; l++) {
            int q = (qs[(sub / 2) * 32 + l] >> (4 * (sub % 2))) & 15;
            if (qh) q |= ((qh[l] >> sub) & 1) << 4;
            y[sub * 32 + l] = ds * (float)q - dm;
        }
    }
}

static void dequant_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, nib = (e % 128) / 64, s = (e % 128) / 32, l64 = e % 64, l = e % 32;
        int low = (ql[h * 64 + l64] >> (4 * nib)) & 15;
        int high = (qh[h * 32 + l] >> (2 * s)) & 3;
        float ds = d * (float)scales[e / 16];
        y[e] = ds * (float)((int8_t)(low | high << 4) - 32);
    }
}

// ----------------------------------------------------------------------------

void quant_dequantize(uint32_t type, const void *src, int64_t n, float *dst) {
    const type_info *t = type_of(type);
    ls_assert(t != NULL && t->block_size > 0 && n % t->block_size == 0);
    const uint8_t *p = src;
    int64_t nb = n / t->block_size;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b = p + (size_t)i * t->type_size;
        float *y = dst + i * t->block_size;
        switch (type) {
        case GGML_F32: memcpy(y, b, 4); break;
        case GGML_F16: *y = f16_at(b); break;
        case GGML_BF16: *y = bits_to_float((uint32_t)(b[0] | b[1] << 8) << 16); break;
        case GGML_Q4_0: dequant_q4_0(b, y); break;
        case GGML_Q4_1: dequant_q4_1(b, y); break;
        case GGML_Q5_0: dequant_q5_0(b, y); break;
        case GGML_Q5_1: dequant_q5_1(b, y); break;
        case GGML_Q8_0: dequant_q8_0(b, y); break;
        case GGML_Q2_K: dequant_q2_k(b, y); break;
        case GGML_Q3_K: dequant_q3_k(b, y); break;
        case GGML_Q4_K: dequant_q45_k(b, NULL, b + 16, y); break;
        case GGML_Q5_K: dequant_q45_k(b, b + 16, b + 48, y); break;
        case GGML_Q6_K: dequant_q6_k(b, y); break;
        default: ls_assert(!"unsupported type");
        }
    }
}
