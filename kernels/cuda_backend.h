// cuda_backend: the ls_backend of engine/backend.h on an NVIDIA GPU.
//
// Matrix products go through cuBLAS (row-major through the transpose trick);
// everything else is a kernel of kernels/*.cu, with the same semantics as the
// CPU backend (ops_cpu.c): the same accumulate-vs-overwrite conventions, the
// same dropout mask (ls_hash_uniform), and no atomics anywhere, so a given
// GPU, toolkit and problem size always give the same bits.
//
// One deliberate difference: attention_forward does not store the T x T
// probabilities. The `att` buffer receives the per-row logsumexp of the
// scaled scores in its first B*NH*T floats, followed (when T > head size) by
// a copy of the output in (B,NH,T,HS) order; attention_backward recomputes the
// probabilities tile by tile from these (flash attention, Dao et al. 2022).
// attention_sizes says so: att B*NH*T*(1 + HS) floats (B*NH*T when T <= HS),
// datt B*NH*T, where the CPU backend needs B*NH*T*T of each; the model
// reserves what the backend states. Code that reads `att` as probabilities
// works only with the CPU backend.
//
// Errors: a failing CUDA or cuBLAS call inside an op (out of memory, a
// launch failure) prints the call, the error and file:line to stderr and
// exits 1, as the CPU backend does on out-of-memory: the op interface has no
// error return. Bad *configuration* (no device) is reported the library way:
// ls_backend_cuda() returns NULL with ls_error() set.
//
// Threads: the backend keeps one cuBLAS handle and one set of scratch
// buffers; call it from one host thread.
#ifndef LS_KERNELS_CUDA_BACKEND_H
#define LS_KERNELS_CUDA_BACKEND_H

#include <stddef.h>

#include "engine/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// Built with -DLS_CUDA_EMULATE (tests only, see kernels/emu/cuda_emu.h) the
// same API runs the kernels on a CPU emulator, under names of its own so
// that the emulated and the real library can link into one program.
#ifdef LS_CUDA_EMULATE
#define ls_cuda_available ls_cuda_emu_available
#define ls_backend_cuda ls_backend_cuda_emu
#define ls_cuda_set_precision ls_cuda_emu_set_precision
#define ls_cuda_get_precision ls_cuda_emu_get_precision
#define ls_cuda_parse_precision ls_cuda_emu_parse_precision
#define ls_cuda_precision_name ls_cuda_emu_precision_name
#define ls_cuda_set_deterministic ls_cuda_emu_set_deterministic
#define ls_cuda_synchronize ls_cuda_emu_synchronize
#define ls_cuda_memory ls_cuda_emu_memory
#define ls_cuda_reset_peak ls_cuda_emu_reset_peak
#define ls_cuda_device_name ls_cuda_emu_device_name
#define ls_cuda_bf16_gemm_flops ls_cuda_emu_bf16_gemm_flops
#endif

// ----------------------------------------------------------------------------
// device

// 1 if a CUDA device is usable (initialises the backend on first call), else
// 0 with ls_error() saying why.
int ls_cuda_available(void);

// The CUDA backend (a static table), or NULL with ls_error() set to
// "no CUDA device: <reason from the CUDA runtime>" when no device is usable.
// The first successful call picks the current device (CUDA_VISIBLE_DEVICES
// selects it), creates the cuBLAS handle and its workspace.
const ls_backend *ls_backend_cuda(void);

// The device's name ("NVIDIA H100 80GB HBM3"), or "" before a successful
// ls_backend_cuda(). Static storage.
const char *ls_cuda_device_name(void);

// ----------------------------------------------------------------------------
// precision and determinism of the matrix products

// Precision of gemm / matmul_forward / matmul_backward. Inputs and outputs
// stay fp32 in memory in every mode; accumulation is always fp32.
//   FP32: full fp32 products (the default; parity with the CPU backend).
//   TF32: tensor cores on inputs rounded to TF32 (10-bit mantissa).
//   BF16: tensor cores on inputs rounded to BF16 (7-bit mantissa)
//         (cuBLAS CUBLAS_COMPUTE_32F_FAST_16BF).
// Every other op runs in fp32 (row statistics and loss sums in fp64).
typedef enum { LS_CUDA_FP32 = 0, LS_CUDA_TF32 = 1, LS_CUDA_BF16 = 2 } ls_cuda_precision;

void ls_cuda_set_precision(ls_cuda_precision p);
ls_cuda_precision ls_cuda_get_precision(void);
// "fp32" / "tf32" / "bf16" -> *p. Returns 0, or -1 with ls_error() set.
int ls_cuda_parse_precision(const char *s, ls_cuda_precision *p);
const char *ls_cuda_precision_name(ls_cuda_precision p);

// Deterministic mode (on by default): cuBLAS may not use atomics and works in
// a fixed 32 MiB workspace, so its kernel choice does not depend on free
// memory. The backend's own kernels never use atomics in either mode.
void ls_cuda_set_deterministic(int on);

// ----------------------------------------------------------------------------
// timing and memory

// Waits for all queued GPU work (for wall-clock timing).
void ls_cuda_synchronize(void);

// Bytes currently allocated through the backend (alloc/alloc_int plus its
// scratch and the cuBLAS workspace) and the peak since the last reset.
// Either pointer may be NULL.
void ls_cuda_memory(size_t *current_bytes, size_t *peak_bytes);
void ls_cuda_reset_peak(void);

// The card's bf16-storage matrix-product rate, the peak a benchmark's MFU is
// measured against: C (n, n) = A B with A, B and C bf16 in memory, fp32
// accumulation (cuBLAS, as a bf16 framework's matmul), the best of 5 timed
// products after a warm-up. FLOP/s, or -1 before ls_backend_cuda() succeeded.
double ls_cuda_bf16_gemm_flops(int n);

#ifdef __cplusplus
}
#endif

#endif
