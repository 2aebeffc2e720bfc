// cuda_loader: liblorascope_cuda.so on first use (cuda_loader.h).
#include "engine/cuda_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

#ifdef LS_HAVE_CUDA_MODULE

// ----------------------------------------------------------------------------
// where the module is

// The running executable's directory (symlinks resolved) into dir; 0 or -1.
static int exe_dir(char *dir, size_t size) {
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n <= 0 || (size_t)n >= size - 1) return -1;
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (!slash) return -1;
    slash[slash == dir] = 0; // "/lorascope" -> "/"
    return 0;
}

// The first place of cuda_loader.h's list that has the module, into path;
// 0, or -1 with ls_error() naming the places.
static int find_module(char *path, size_t size) {
    const char *env = getenv("LORASCOPE_CUDA_MODULE");
    if (env && *env) {
        if (access(env, R_OK) != 0)
            return ls_fail("no CUDA module at LORASCOPE_CUDA_MODULE=%s: %s", env, strerror(errno));
        snprintf(path, size, "%s", env);
        return 0;
    }
    char dir[PATH_MAX];
    if (exe_dir(dir, sizeof dir) != 0) snprintf(dir, sizeof dir, "(unknown: /proc/self/exe unreadable)");
    const char *places[][2] = {{dir, ""}, {dir, "/" LS_CUDA_MODULE_INSTALL_REL}, {LS_CUDA_MODULE_BUILD_DIR, ""}};
    for (int i = 0; i < 3; i++) {
        snprintf(path, size, "%s%s/" LS_CUDA_MODULE_FILE, places[i][0], places[i][1]);
        if (access(path, R_OK) == 0) return 0;
    }
    return ls_fail("no CUDA module: expected " LS_CUDA_MODULE_FILE " next to the executable in %s, in %s/"
                   LS_CUDA_MODULE_INSTALL_REL " or in " LS_CUDA_MODULE_BUILD_DIR
                   " (or a path in LORASCOPE_CUDA_MODULE)", dir, dir);
}

// ----------------------------------------------------------------------------
// loading it

static const ls_cuda_module *load(void) {
    char path[PATH_MAX + 128];
    if (find_module(path, sizeof path) != 0) return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        ls_fail("cannot load the CUDA module: %s (expected the CUDA " LS_CUDA_VERSION
                " runtime, cuBLAS and cuSOLVER libraries on the library path)", dlerror());
        return NULL;
    }
    ls_cuda_module_fn entry;
    *(void **)&entry = dlsym(h, LS_CUDA_MODULE_SYMBOL); // POSIX's way to a function pointer
    const ls_cuda_module *m = entry ? entry() : NULL;
    if (!m || m->abi != LS_CUDA_MODULE_ABI || m->sizeof_backend != sizeof(ls_backend) ||
        m->sizeof_mat != sizeof(an_mat) || m->sizeof_svd != sizeof(an_svd)) {
        ls_fail("%s: expected a CUDA module of this lorascope (entry point " LS_CUDA_MODULE_SYMBOL ", ABI %d), "
                "found %s: rebuild both from one tree", path, LS_CUDA_MODULE_ABI,
                !m ? "no entry point" : "another ABI or other struct sizes");
        dlclose(h);
        return NULL;
    }
    return m; // never closed: its backend's buffers live until exit
}

const ls_cuda_module *ls_cuda_module_load(void) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static const ls_cuda_module *loaded;
    static char failure[1024]; // a failed load is not retried
    pthread_mutex_lock(&lock);
    if (!loaded && !failure[0]) {
        loaded = load();
        if (!loaded) snprintf(failure, sizeof failure, "%s", ls_error());
    }
    const ls_cuda_module *m = loaded;
    pthread_mutex_unlock(&lock);
    if (!m) ls_fail("%s", failure);
    return m;
}

#else

const ls_cuda_module *ls_cuda_module_load(void) {
    ls_fail("this lorascope was built without CUDA (configure with -Dcuda=enabled on a machine with the CUDA "
            "toolkit)");
    return NULL;
}

#endif
