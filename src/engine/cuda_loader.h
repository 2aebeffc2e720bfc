// cuda_loader: finds and loads the CUDA module (kernels/cuda_module.h) the
// first time something asks for it, so that CPU-only work never loads the
// CUDA libraries (ARCHITECTURE.md, Backends).
#ifndef LS_ENGINE_CUDA_LOADER_H
#define LS_ENGINE_CUDA_LOADER_H

#include "cuda_module.h"

// The module's table, loaded on the first call (dlopen; later calls return
// the same table; thread-safe). Where it looks, first match wins:
//   $LORASCOPE_CUDA_MODULE (a file; then nowhere else),
//   liblorascope_cuda.so next to the running executable (/proc/self/exe),
//   <exe dir>/<bindir to libdir>/lorascope/ (where `meson install` puts it),
//   the build tree's kernels/ (where this build made it).
// NULL with ls_error() set to one line, without a "--backend" prefix, when
// this build has no CUDA, no module is found (the places are named), it does
// not load (dlerror's reason: a missing libcudart.so.13, ...) or it was built
// from other headers. Loading does not touch a GPU: ask its available().
const ls_cuda_module *ls_cuda_module_load(void);

#endif
