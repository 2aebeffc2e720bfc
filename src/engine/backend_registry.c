#include "engine/backend_registry.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "engine/cuda_loader.h"

static int known_name(const char *name) {
    if (!strcmp(name, "cpu") || !strcmp(name, "cuda") || !strcmp(name, "auto")) return 1;
    ls_fail("--backend: expected cpu, cuda or auto, found '%s'", name);
    return 0;
}

// The CUDA module with a usable GPU, or NULL with ls_error() = "--backend NAME: <why>".
static const ls_cuda_module *usable_module(const char *name) {
    const ls_cuda_module *m = ls_cuda_module_load();
    if (m && !m->available()) {
        ls_fail("%s", m->error()); // "no CUDA device: <reason>", from the module's own ls_error()
        m = NULL;
    }
    if (!m) ls_fail_prefix("--backend %s", name);
    return m;
}

// --backend auto found no GPU: ls_error() says why; said once per process.
static void note_cpu_fallback(void) {
    static int noted;
    if (!noted) fprintf(stderr, "lorascope: %s; running on the CPU\n", ls_error());
    noted = 1;
}

const ls_backend *ls_backend_by_name(const char *name) {
    if (!known_name(name)) return NULL;
    if (!strcmp(name, "cpu")) return ls_backend_cpu();
    const ls_cuda_module *m = usable_module(name);
    const ls_backend *be = m ? m->backend() : NULL;
    if (m && !be) {
        ls_fail("%s", m->error());
        ls_fail_prefix("--backend %s", name);
    }
    if (be || strcmp(name, "auto")) return be;
    note_cpu_fallback();
    return ls_backend_cpu();
}

int ls_backend_check_name(const char *name) {
    if (!known_name(name)) return -1;
    return !strcmp(name, "cuda") && !usable_module(name) ? -1 : 0;
}

int ls_backend_set_precision(const ls_backend *be, const char *precision) {
    if (strcmp(precision, "fp32") && strcmp(precision, "tf32") && strcmp(precision, "bf16"))
        return ls_fail("expected fp32, tf32 or bf16, found '%s'", precision);
    if (be->kind != LS_BACKEND_CUDA)
        return strcmp(precision, "fp32") ? ls_fail("expected fp32 on the %s backend (tf32 and bf16 need "
                                                   "--backend cuda), found %s", be->name, precision)
                                         : 0;
    const ls_cuda_module *m = ls_cuda_module_load(); // loaded already: be came from it
    if (!m || m->set_precision(precision)) return ls_fail("%s", m ? m->error() : ls_error());
    return 0;
}

int ls_backend_device_of(const ls_backend *be, ls_backend_device *out) {
    if (be->kind != LS_BACKEND_CUDA) return ls_fail("the %s backend has no device to measure", be->name);
    const ls_cuda_module *m = ls_cuda_module_load(); // loaded already: be came from it
    if (!m) return -1;
    *out = (ls_backend_device){m->device_name(), m->memory, m->reset_peak, m->bf16_gemm_flops};
    return 0;
}

int ls_linalg_by_name(const char *name, const an_linalg_backend **out) {
    *out = NULL;
    if (!known_name(name)) return -1;
    if (!strcmp(name, "cpu")) return 0;
    const ls_cuda_module *m = usable_module(name);
    if (m) *out = &m->linalg;
    else if (!strcmp(name, "auto")) note_cpu_fallback();
    else return -1;
    return 0;
}
