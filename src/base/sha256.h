// sha256: SHA-256 (FIPS 180-4) of bytes, files and directories — the
// fingerprints a run records of what it read (its model, tokenizer and data),
// so that a run can be checked, and resumed, by content rather than by path.
#ifndef LS_SHA256_H
#define LS_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint8_t block[64];
    size_t used;     // bytes in block
    uint64_t length; // bytes hashed so far
} ls_sha256_ctx;

void ls_sha256_init(ls_sha256_ctx *c);
void ls_sha256_update(ls_sha256_ctx *c, const void *data, size_t n);
// The digest as 64 lowercase hex digits and a NUL into hex.
void ls_sha256_final(ls_sha256_ctx *c, char hex[65]);

// The digest of n bytes, as hex.
void ls_sha256_hex(const void *data, size_t n, char hex[65]);

// The fingerprint of what a path holds, as hex:
// - a file: the SHA-256 of its bytes (what `sha256sum FILE` prints);
// - a directory: the SHA-256 of the lines "<sha256 of file>  <name>\n" of its
//   regular files (not in subdirectories, names not starting with '.') in
//   byte order of their names, that is of what
//     cd DIR && find . -maxdepth 1 -type f ! -name '.*' -printf '%P\0' |
//       LC_ALL=C sort -z | xargs -0 sha256sum
//   prints.
// Returns 0, or -1 with ls_error() naming the path.
int ls_sha256_path(const char *path, char hex[65]);

#endif
