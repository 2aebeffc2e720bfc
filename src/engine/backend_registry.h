// backend_registry: the op backends, and the analyses' factorisations, found
// by name (--backend cpu|cuda|auto).
//
// The CUDA ones live in a module loaded on first use (engine/cuda_loader.h):
// "cpu" never loads it, "cuda" and "auto" load it when they are resolved, so
// a command that only checks its options or runs on the CPU never loads the
// CUDA libraries. "auto" without a usable module or GPU says so once per
// process on stderr ("lorascope: --backend auto: <why>; running on the CPU")
// and gives the CPU's.
#ifndef LS_BACKEND_REGISTRY_H
#define LS_BACKEND_REGISTRY_H

#include "engine/backend.h"
#include "linalg.h"

// "cpu" -> the CPU backend; "cuda" -> the CUDA backend, or NULL with
// ls_error() = "--backend cuda: <why>" (this build has no CUDA, no module,
// no GPU: one line naming what was expected); "auto" -> CUDA when it is
// usable, else the CPU (with the note above). Anything else: NULL with
// ls_error().
const ls_backend *ls_backend_by_name(const char *name);

// The checks of a request that does not run yet: "cpu" and "auto" need
// nothing (auto is resolved when the work starts); "cuda" loads the module
// and asks for a GPU, so that a run that cannot have one stops before any
// work. Returns 0, or -1 with ls_error() as ls_backend_by_name's.
int ls_backend_check_name(const char *name);

// The precision of be's products, --precision fp32 | tf32 | bf16: the CUDA
// backend's cuBLAS compute mode and, at bf16, its tensor-core attention
// (kernels/README.md); the CPU computes in fp32 only. Returns 0, or -1 with
// ls_error() naming what was expected.
int ls_backend_set_precision(const ls_backend *be, const char *precision);

// The device behind a CUDA backend, for benchmarks (`bench --backend cuda`).
typedef struct {
    const char *name;                                           // "NVIDIA H200"
    void (*memory)(size_t *current_bytes, size_t *peak_bytes);  // bytes the backend holds, and their peak
    void (*reset_peak)(void);
    double (*bf16_gemm_flops)(int n); // bf16-storage (n, n) product rate, FLOP/s (kernels/cuda_backend.h)
} ls_backend_device;

// be's device: 0, or -1 with ls_error() for a backend without one (the CPU).
int ls_backend_device_of(const ls_backend *be, ls_backend_device *out);

// The analyses' QR and SVDs for --backend NAME, for an_set_linalg_backend:
// "cpu" -> *out = NULL (LAPACKE); "cuda" -> cuSOLVER (kernels/cuda_analysis.h),
// or -1 with ls_error() as above; "auto" -> cuSOLVER when usable, else NULL
// with the note. Returns 0 or -1.
int ls_linalg_by_name(const char *name, const an_linalg_backend **out);

#endif
