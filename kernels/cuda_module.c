// cuda_module: the entry point of liblorascope_cuda.so (cuda_module.h).
#include "cuda_module.h"

#include "base/util.h"
#include "cuda_analysis.h"
#include "cuda_backend.h"

static int set_precision(const char *name) {
    ls_cuda_precision p;
    if (ls_cuda_parse_precision(name, &p)) return -1;
    ls_cuda_set_precision(p);
    return 0;
}

static const ls_cuda_module module = {
    .abi = LS_CUDA_MODULE_ABI,
    .sizeof_backend = sizeof(ls_backend),
    .sizeof_mat = sizeof(an_mat),
    .sizeof_svd = sizeof(an_svd),
    .error = ls_error,
    .available = ls_cuda_available,
    .backend = ls_backend_cuda,
    .device_name = ls_cuda_device_name,
    .linalg = {"cuda", an_cuda_qr_thin, an_cuda_svd_thin, an_cuda_delta_svd, an_error},
    .set_precision = set_precision,
    .memory = ls_cuda_memory,
    .reset_peak = ls_cuda_reset_peak,
    .bf16_gemm_flops = ls_cuda_bf16_gemm_flops,
};

const ls_cuda_module *ls_cuda_module_v1(void) { return &module; }
