// kernels_emu: the CUDA backend's own sources (kernels/*.cu), compiled as C++
// for the CPU emulator of cuda_emu.h. Nothing here re-implements an op: the
// kernels and host code under test are exactly the ones nvcc compiles.
//
// Everything is pulled into one namespace so that no internal symbol clashes
// with the real backend when both libraries link into one program; the public
// entry points keep C linkage under the *_emu names of cuda_backend.h.
// Headers are included first, outside the namespace, so that their include
// guards keep them out of it.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_emu.h"

extern "C" {
#include "engine/backend.h"
#include "base/util.h"
#include "linalg.h"
}
#include "cuda_analysis.h"
#include "cuda_backend.h"

namespace lsc_emu {
#include "../cuda_common.cuh"
#include "../cuda_backend.cu"
#include "../cuda_ops.cu"
#include "../cuda_ops_encoder.cu"
#include "../cuda_attention.cu"
#include "../cuda_attention_tc.cu"
#include "../cuda_analysis.cu"
} // namespace lsc_emu
