// sha256: FIPS 180-4, section 6.2, one 64-byte block at a time.
#include "base/sha256.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "base/util.h"

// ----------------------------------------------------------------------------
// the hash

// The first 32 bits of the fractional parts of the cube roots of the first
// 64 primes (FIPS 180-4, 4.2.2).
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void compress(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void ls_sha256_init(ls_sha256_ctx *c) {
    // the first 32 bits of the fractional parts of the square roots of the first 8 primes (5.3.3)
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, H0, sizeof H0);
    c->used = 0;
    c->length = 0;
}

void ls_sha256_update(ls_sha256_ctx *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->length += n;
    if (c->used) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used < 64) return;
        compress(c->h, c->block);
        c->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) compress(c->h, p);
    memcpy(c->block, p, n);
    c->used = n;
}

void ls_sha256_final(ls_sha256_ctx *c, char hex[65]) {
    // padding (5.1.1): a 1 bit, zeros to 56 mod 64 bytes, the length in bits as 64-bit big-endian
    uint64_t bits = c->length * 8;
    uint8_t pad[72] = {0x80};
    size_t npad = (c->used < 56 ? 56 : 120) - c->used;
    for (int i = 0; i < 8; i++) pad[npad + i] = (uint8_t)(bits >> (56 - 8 * i));
    ls_sha256_update(c, pad, npad + 8);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", (c->h[i / 4] >> (24 - 8 * (i % 4))) & 0xff);
}

void ls_sha256_hex(const void *data, size_t n, char hex[65]) {
    ls_sha256_ctx c;
    ls_sha256_init(&c);
    ls_sha256_update(&c, data, n);
    ls_sha256_final(&c, hex);
}

// ----------------------------------------------------------------------------
// files and directories

static int sha256_file(const char *path, char hex[65]) {
    void *map;
    size_t size;
    if (ls_map_file(path, &map, &size)) return -1;
    ls_sha256_hex(map ? map : "", size, hex);
    if (map) munmap(map, size);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int sha256_dir(const char *path, char hex[65]) {
    DIR *d = opendir(path);
    if (!d) return ls_fail("%s: cannot read the directory", path);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *full = ls_path_join(path, e->d_name);
        struct stat st;
        int regular = !stat(full, &st) && S_ISREG(st.st_mode); // follows links: a Hugging Face snapshot's files are links
        free(full);
        if (!regular) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = ls_malloc(cap * sizeof *grown);
            if (n) memcpy(grown, names, n * sizeof *names);
            free(names);
            names = grown;
        }
        names[n++] = ls_strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    ls_sha256_ctx c;
    ls_sha256_init(&c);
    for (size_t i = 0; i < n && !rc; i++) {
        char *full = ls_path_join(path, names[i]), file_hex[65];
        rc = sha256_file(full, file_hex);
        free(full);
        if (rc) break;
        ls_sha256_update(&c, file_hex, 64);
        ls_sha256_update(&c, "  ", 2);
        ls_sha256_update(&c, names[i], strlen(names[i]));
        ls_sha256_update(&c, "\n", 1);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!rc) ls_sha256_final(&c, hex);
    return rc;
}

int ls_sha256_path(const char *path, char hex[65]) {
    if (!ls_exists(path)) return ls_fail("%s: does not exist", path);
    return ls_is_dir(path) ? sha256_dir(path, hex) : sha256_file(path, hex);
}
