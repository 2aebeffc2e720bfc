// gguf_model: a llama-architecture GGUF file (llama.cpp's format) as a base
// checkpoint: hyper-parameters from the `llama.*` metadata, weights
// dequantized to float32 under the canonical names of io/checkpoint.h, Wq and
// Wk rows un-permuted so that the model is Hugging Face's (split-halves RoPE).
#ifndef LS_GGUF_MODEL_H
#define LS_GGUF_MODEL_H

#include "io/checkpoint.h"
#include "io/gguf.h"

// Loads the GGUF file at path into ck (ckpt_free releases it). Returns 0, or
// -1 with ls_error() naming the file, the key or tensor and what was expected.
int gguf_load_checkpoint(ls_checkpoint *ck, const char *path);
// The same from an open file (ck->path is f->path); f stays the caller's.
int gguf_read_checkpoint(ls_checkpoint *ck, const gguf_file *f);

#endif
