// backend_registry: the op backends this build has, found by name (--backend).
#ifndef LS_BACKEND_REGISTRY_H
#define LS_BACKEND_REGISTRY_H

#include "engine/backend.h"

// "cpu" -> the CPU backend; "cuda" -> the CUDA backend (NULL with ls_error()
// if this build has no CUDA or no GPU is usable); "auto" -> CUDA when a GPU is
// usable, else the CPU. Anything else: NULL with ls_error().
const ls_backend *ls_backend_by_name(const char *name);

#endif
