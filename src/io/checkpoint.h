// checkpoint: a pretrained base model's configuration and frozen weights W0.
//
// Reads the llama2.c ".bin" format (header of seven int32, then fp32 tensors;
// layout written next to the reader) and Hugging Face checkpoints (a directory
// with config.json + model.safetensors, GPT-2 or Llama family).
//
// Every tensor is held as float32, row-major, under a canonical name:
//   llama: model.embed_tokens.weight (vocab, dim)
//          model.layers.{i}.input_layernorm.weight (dim)
//          model.layers.{i}.self_attn.{q,k,v,o}_proj.weight (out, in)
//          model.layers.{i}.post_attention_layernorm.weight (dim)
//          model.layers.{i}.mlp.{gate,up,down}_proj.weight (out, in)
//          model.norm.weight (dim), lm_head.weight (vocab, dim) only if untied
//   gpt2:  transformer.wte.weight (vocab, dim), transformer.wpe.weight (seq, dim)
//          transformer.h.{i}.ln_1.{weight,bias}, transformer.h.{i}.ln_2.{weight,bias}
//          transformer.h.{i}.attn.c_attn.{weight,bias} (3*dim, dim): rows q, k, v
//          transformer.h.{i}.attn.c_proj.{weight,bias} (dim, dim)
//          transformer.h.{i}.mlp.c_fc.{weight,bias} (hidden, dim)
//          transformer.h.{i}.mlp.c_proj.{weight,bias} (dim, hidden)
//          transformer.ln_f.{weight,bias}
//   bert / roberta (prefix P = "bert." / "roberta."; files may drop P):
//          P embeddings.{word,position,token_type}_embeddings.weight,
//          P embeddings.LayerNorm.{weight,bias},
//          P encoder.layer.{i}.attention.self.{query,key,value}.{weight,bias},
//          P encoder.layer.{i}.attention.output.{dense,LayerNorm}.{weight,bias},
//          P encoder.layer.{i}.intermediate.dense.{weight,bias},
//          P encoder.layer.{i}.output.{dense,LayerNorm}.{weight,bias};
//          the classification head: bert.pooler.dense.* + classifier.*, or
//          roberta's classifier.dense.* + classifier.out_proj.*. Head tensors
//          a file lacks (a base model has no classifier) are absent here and
//          initialised by the model (engine/model.h). Tensors the model does
//          not use (embeddings.position_ids, MLM heads cls.* / lm_head.*,
//          roberta's pooler) are skipped.
// GPT-2's HF files store Conv1D weights as (in, out); they are transposed on
// load so that every linear weight here is (out, in), as in PEFT's ΔW = B·A.
// llama2.c's w1/w3/w2 are gate/up/down; its RoPE pairs are consecutive
// (rope_interleaved = 1) while HF Llama files use split halves (0).
#ifndef LS_CHECKPOINT_H
#define LS_CHECKPOINT_H

#include <stdint.h>

#include "arch/arch.h"

// ls_family and ls_model_config live in the architecture registry.

typedef struct {
    char *name;
    int ndim;
    int64_t shape[4];
    int64_t numel;
    float *data;        // owned by the checkpoint
} ls_tensor;

typedef struct {
    char *path;
    ls_model_config config;
    int n_tensors;
    ls_tensor *tensors;
} ls_checkpoint;

// Loads a checkpoint: a llama2.c .bin file, a directory holding config.json
// and model.safetensors, a .safetensors file with config.json beside it, or a
// llama-architecture GGUF file (io/gguf_model.h: dequantized weights).
// Validates sizes and shapes against the config. Returns 0, or -1 with
// ls_error() naming the file and what was wrong.
int ckpt_load(ls_checkpoint *ck, const char *path);
void ckpt_free(ls_checkpoint *ck);

// Loads the parameters of a fine-tuned copy of `base` from a safetensors file
// holding every canonical tensor of base (same names, same shapes, layout as
// ckpt_load gives them: lorascope's full fine-tuning output). The config is
// base's; a "rope_interleaved" metadata entry, if present, must agree with it.
// A path that is a checkpoint directory or a llama2.c file is read with
// ckpt_load instead and must match base's config. Returns 0 or -1.
int ckpt_load_like(ls_checkpoint *ck, const char *path, const ls_checkpoint *base);

// Checks that n floats of one tensor are finite (one pass at load). Returns 0,
// or -1 with ls_error() naming the file, the tensor and the first bad element:
// "m.safetensors: tensor 'x': element 17 is inf (expected finite weights)".
// Used for base weights here and for adapters (io/adapter.c).
int ckpt_check_finite(const char *file, const char *tensor, const float *x, int64_t n);

// Limits on the sizes a config.json or llama2.c header controls. They sit far
// above the models this tool is meant for and keep every size product below
// 2^62, so a hostile or corrupt config fails at load, not in malloc.
#define CKPT_MAX_DIM 65536             // hidden size
#define CKPT_MAX_HIDDEN (1 << 20)      // MLP inner size
#define CKPT_MAX_LAYERS 1024
#define CKPT_MAX_HEADS 4096
#define CKPT_MAX_VOCAB (1 << 20)
#define CKPT_MAX_POSITIONS (1 << 20)   // max_position_embeddings / n_positions / seq_len
#define CKPT_MAX_TYPES 1024            // type_vocab_size (encoders)
#define CKPT_MAX_LABELS 65536          // num_labels / id2label (encoders)

// Checks a config's sizes against the limits below and each other (heads
// divide dim, kv heads divide heads, even head size for RoPE, eps in (0, 1)).
// Returns 0, or -1 with ls_error() naming path and the field.
int ckpt_validate_config(const ls_model_config *c, const char *path);

// The tensor with this canonical name, or NULL.
const ls_tensor *ckpt_find(const ls_checkpoint *ck, const char *name);

// Short module names as the registry (arch/arch.h) knows them: llama q k v o
// gate up down; gpt2 c_attn, q k v (row blocks of c_attn), c_proj (attn), c_fc,
// mlp_proj. The frozen weight of one module as a fresh (d_out x d_in) row-major matrix.
// Returns NULL with ls_error() set for an unknown module or layer out of range.
float *ckpt_module_weight(const ls_checkpoint *ck, int layer, const char *module,
                          int *d_out, int *d_in);

// "llama" / "gpt2" (arch_family_name).
const char *ckpt_family_name(ls_family f);

#endif
