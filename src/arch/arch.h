// arch: the architecture registry — one table per model family.
//
// Everything that names or shapes a family's tensors lives here, once:
//   - the family and its configuration (ls_family, ls_model_config);
//   - the LoRA-adaptable modules of a layer: short name as on the command line
//     ("q", "c_attn"), the HF/PEFT path of the tensor holding the weight inside
//     a layer ("self_attn.q_proj", "attn.c_attn"), the GGUF tensor name
//     ("blk.N.attn_q"), the shape as a function of the config, and, for a row
//     block of a fused tensor (GPT-2's q, k, v inside c_attn), which block;
//   - the layer prefix of checkpoint names ("model.layers") and of PEFT keys
//     ("base_model.model.model.layers");
//   - the canonical tensors of a checkpoint (io/checkpoint.h), per layer in
//     the order that checkpoints, the model's views and saved files use.
// Adding an architecture is one ARCH_FAMILIES entry (arch.c) and its model code.
//
// Memory: every table and string returned here is static; nothing is owned by
// the caller and nothing needs freeing. Functions that fail return NULL or -1
// and set no error: the caller words the message (its own context).
#ifndef LS_ARCH_H
#define LS_ARCH_H

#include <stddef.h>
#include <stdint.h>

// Enums only grow at the end (STYLE.md).
// bert and roberta are the encoder family: one model (engine/encoder.c), two
// naming schemes (bert.* / roberta.*, their classification heads).
typedef enum { LS_FAMILY_LLAMA = 0, LS_FAMILY_GPT2 = 1, LS_FAMILY_BERT = 2, LS_FAMILY_ROBERTA = 3 } ls_family;
#define LS_N_FAMILIES 4

// How an encoder pools its last hidden states for classification.
typedef enum {
    LS_POOL_CLS = 0,  // the first token ([CLS] / <s>), then dense + tanh, then the classifier
    LS_POOL_MEAN = 1, // the mean over the kept tokens, then the classifier (no dense)
} ls_pooling;

typedef struct {
    ls_family family;
    int dim;            // model width d
    int hidden_dim;     // MLP width
    int n_layers;
    int n_heads;
    int n_kv_heads;     // = n_heads for gpt2
    int vocab_size;
    int max_seq_len;
    float norm_eps;     // RMSNorm / LayerNorm epsilon
    float rope_theta;   // llama only
    int rope_interleaved; // 1: consecutive pairs (llama2.c), 0: split halves (HF)
    int tied_embeddings;  // LM head shares the token embedding
    // encoder family only (0 elsewhere)
    int type_vocab_size;  // token types (segments A/B)
    int num_labels;       // classifier outputs
    int position_offset;  // position of token t is t + offset (roberta: padding_idx + 1)
    ls_pooling pooling;
    float init_range;     // std of the normal init of a head absent from the checkpoint (HF initializer_range)
} ls_model_config;

// What a module does in a layer, the same across families (GPT-2's c_proj is
// ARCH_O, its mlp.c_proj ARCH_DOWN). The values are engine/lora.h's
// lora_module_id, whose bitmasks select modules.
typedef enum {
    ARCH_Q = 0, ARCH_K, ARCH_V, ARCH_O, ARCH_GATE, ARCH_UP, ARCH_DOWN,
    ARCH_QKV,   // the fused q, k, v map as a whole (gpt2 attn.c_attn)
    ARCH_FC,    // the MLP input map of a non-gated MLP (gpt2 mlp.c_fc)
} arch_role;
#define ARCH_N_ROLES 9

// A width of a config, the terms of the shape rules (head_dim = dim / n_heads).
typedef enum {
    ARCH_DIM_MODEL = 0, // dim
    ARCH_DIM_Q,         // n_heads * head_dim
    ARCH_DIM_KV,        // n_kv_heads * head_dim
    ARCH_DIM_QKV,       // (n_heads + 2 n_kv_heads) * head_dim
    ARCH_DIM_HIDDEN,    // hidden_dim
} arch_dim;

// One LoRA-adaptable module of a layer.
typedef struct {
    arch_role role;
    const char *name;   // short name: "q", "c_attn", "mlp_proj"
    const char *alias;  // a second accepted short name ("o" for gpt2 c_proj) or NULL
    const char *path;   // HF/PEFT path, inside a layer, of the tensor holding the weight
    const char *gguf;   // GGUF tensor inside blk.N ("attn_q"), or NULL
    arch_dim d_out, d_in; // the module's shape (its block's, for a row block)
    int block;          // -1: the whole tensor at path; b >= 0: row block b of
    int n_blocks;       //   n_blocks equal row blocks of it (no PEFT form)
} arch_module;

// What a canonical per-layer tensor holds.
typedef enum {
    ARCH_T_NORM1_W = 0, ARCH_T_NORM1_B, // the norm before attention
    ARCH_T_NORM2_W, ARCH_T_NORM2_B,     // the norm before the MLP
    ARCH_T_WEIGHT,                      // the weight of the module of `role`
    ARCH_T_BIAS,                        // its bias
} arch_tensor_kind;

typedef struct {
    const char *suffix; // name after "<layer_prefix>.<i>.": "self_attn.q_proj.weight"
    arch_tensor_kind kind;
    arch_role role;     // ARCH_T_WEIGHT / ARCH_T_BIAS: whose
} arch_tensor;

typedef struct {
    ls_family family;
    const char *name;          // "llama", "gpt2"
    const char *layer_prefix;  // checkpoint names: "model.layers" / "transformer.h"
    const char *peft_prefix;   // PEFT keys: "base_model.model.model.layers"
    int conv1d;                // 1: HF files store linear weights as Conv1D (in, out)
                               //    (GPT-2; PEFT's fan_in_fan_out), 0: (out, in)
    // the canonical tensors outside the layers (NULL: the family has none)
    const char *tok_embedding; // (vocab, dim)
    const char *pos_embedding; // (max_seq_len, dim)
    const char *final_norm_w, *final_norm_b; // (dim)
    const char *lm_head;       // (vocab, dim), only when the head is untied
    int n_modules;
    const arch_module *modules;      // in the order of messages and "all"
    int n_layer_tensors;
    const arch_tensor *layer_tensors; // canonical order within a layer
    // encoder family (NULL / 0 for decoders)
    int encoder;               // 1: bidirectional, post-LN, classification heads
    const char *model_prefix;  // "bert.": what a base-model file's names may lack
    const char *type_embedding;          // (type_vocab_size, dim)
    const char *emb_norm_w, *emb_norm_b; // (dim): LayerNorm after the embeddings
    const char *head_dense_w, *head_dense_b; // (dim, dim), (dim): pooler / head dense
    const char *head_out_w, *head_out_b;     // (num_labels, dim), (num_labels): classifier
    const char *modules_to_save;         // PEFT's SEQ_CLS module trained in full: "classifier"
    int dense_in_modules_to_save;        // 1: the head dense is inside it (roberta)
} arch_family;

// ----------------------------------------------------------------------------
// families

// The registry entry of family f, or NULL for a value outside ls_family.
const arch_family *arch_family_of(ls_family f);

// 1 for the encoder family (bert, roberta), 0 otherwise.
int arch_is_encoder(ls_family f);

// "llama" / "gpt2"; "unknown" outside ls_family.
const char *arch_family_name(ls_family f);

// The family whose PEFT key prefix starts `key` followed by '.', or NULL.
// *rest (may be NULL) gets the text after that '.'.
const arch_family *arch_family_by_peft_key(const char *key, const char **rest);

// ----------------------------------------------------------------------------
// modules

// The module of family f with this short name, alias or PEFT path (of a whole
// tensor), or a path's last component where only one module ends in it
// ("q_proj"); NULL if none.
const arch_module *arch_module_by_name(ls_family f, const char *name);

// The whole-tensor module whose PEFT path is `path` ("attn.c_attn"), or NULL.
const arch_module *arch_module_by_path(ls_family f, const char *path);

// The module of family f playing `role`, or NULL if the family has none.
const arch_module *arch_module_by_role(ls_family f, arch_role role);

// Bitmask (1u << role) of "all": every whole-tensor module of the family
// (gpt2: c_attn, c_proj, c_fc, mlp_proj; its q/k/v row blocks are not).
uint32_t arch_all_modules(ls_family f);

// The PEFT module path of a module, or NULL for a row block (no PEFT form).
const char *arch_peft_path(const arch_module *m);

// PEFT's target_modules entry of a whole-tensor module: the last component of
// its path ("q_proj"), or the whole path where another module's path ends in
// the same component (gpt2 "attn.c_proj" / "mlp.c_proj"). Static storage.
const char *arch_peft_target(ls_family f, const arch_module *m);

// (d_out, d_in) of module m in a model of config c.
void arch_module_shape(const arch_module *m, const ls_model_config *c, int *d_out, int *d_in);

// A width of config c (see arch_dim).
int64_t arch_dim_of(arch_dim d, const ls_model_config *c);

// The short names of family f in table order, joined by sep, the last two by
// last_sep ("q k v" with " ", " "; "q, k or v" with ", ", " or "), into buf
// (NUL-terminated, truncated to size). Returns buf.
char *arch_module_names(ls_family f, const char *sep, const char *last_sep, char *buf, size_t size);

// ----------------------------------------------------------------------------
// canonical tensors of a layer

// Shape of per-layer tensor t of family f in config c: *ndim 1 (d0) or 2 (d0, d1).
void arch_tensor_shape(ls_family f, const arch_tensor *t, const ls_model_config *c, int *ndim,
                       int64_t *d0, int64_t *d1);

#endif
