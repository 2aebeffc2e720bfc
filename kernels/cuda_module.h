// cuda_module: the CUDA backend as a shared module, liblorascope_cuda.so.
//
// A lorascope built with CUDA does not link the CUDA libraries: CPU work
// (analyses, the CPU backend, scoring) never loads libcudart, cuBLAS or
// cuSOLVER. `--backend cuda|auto` loads this module with dlopen the first time
// a command needs it (src/engine/cuda_loader.h finds it), and the module
// brings the CUDA libraries with it. ARCHITECTURE.md, Backends.
//
// The module exports one symbol, LS_CUDA_MODULE_SYMBOL, a function returning
// the table below; everything else in it is local (kernels/cuda_module.map),
// including its own copies of base/ and analysis/ (so its errors are read
// through `error` and linalg.error, not the caller's ls_error()).
// `abi` and the sizes let the loader refuse a module built from other
// headers instead of calling into it with the wrong layout.
#ifndef LS_KERNELS_CUDA_MODULE_H
#define LS_KERNELS_CUDA_MODULE_H

#include <stddef.h>

#include "engine/backend.h"
#include "linalg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LS_CUDA_MODULE_FILE "liblorascope_cuda.so"
#define LS_CUDA_MODULE_SYMBOL "ls_cuda_module_v1"
#define LS_CUDA_MODULE_ABI 3

typedef struct {
    int abi;                  // LS_CUDA_MODULE_ABI
    size_t sizeof_backend;    // sizeof(ls_backend), sizeof(an_mat), sizeof(an_svd) as the module saw them
    size_t sizeof_mat;
    size_t sizeof_svd;
    // The module's ls_error(): why available() or backend() failed
    // ("no CUDA device: <reason from the CUDA runtime>").
    const char *(*error)(void);
    // ls_cuda_available, ls_backend_cuda, ls_cuda_device_name (cuda_backend.h).
    int (*available)(void);
    const ls_backend *(*backend)(void);
    const char *(*device_name)(void);
    // an_cuda_qr_thin, an_cuda_svd_thin, an_cuda_delta_svd (cuda_analysis.h)
    // with the module's an_error(), for an_set_linalg_backend.
    an_linalg_backend linalg;
    // The products' precision from a name, fp32 | tf32 | bf16 (ls_cuda_parse_precision,
    // ls_cuda_set_precision): 0, or -1 with error() saying what was expected.
    int (*set_precision)(const char *name);
    // For benchmarks (`lorascope bench --backend cuda`): ls_cuda_memory,
    // ls_cuda_reset_peak, ls_cuda_bf16_gemm_flops (cuda_backend.h).
    void (*memory)(size_t *current_bytes, size_t *peak_bytes);
    void (*reset_peak)(void);
    double (*bf16_gemm_flops)(int n);
} ls_cuda_module;

typedef const ls_cuda_module *(*ls_cuda_module_fn)(void);

// The module's entry point (defined only in liblorascope_cuda.so).
const ls_cuda_module *ls_cuda_module_v1(void);

#ifdef __cplusplus
}
#endif

#endif
