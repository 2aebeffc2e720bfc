#include "engine/backend_registry.h"

#include <string.h>

#include "base/util.h"

#ifdef LS_HAVE_CUDA
#include "cuda_backend.h"
#endif

const ls_backend *ls_backend_by_name(const char *name) {
    if (!strcmp(name, "cpu")) return ls_backend_cpu();
    if (!strcmp(name, "cuda") || !strcmp(name, "auto")) {
#ifdef LS_HAVE_CUDA
        if (!strcmp(name, "auto") && !ls_cuda_available()) return ls_backend_cpu();
        const ls_backend *be = ls_backend_cuda();
        if (!be) ls_fail_prefix("--backend cuda");
        return be;
#else
        if (!strcmp(name, "auto")) return ls_backend_cpu();
        ls_fail("--backend cuda: this lorascope was built without CUDA (configure with -Dcuda=enabled on a "
                "machine with the CUDA toolkit)");
        return NULL;
#endif
    }
    ls_fail("--backend: expected cpu, cuda or auto, found '%s'", name);
    return NULL;
}
