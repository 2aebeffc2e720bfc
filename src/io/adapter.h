// adapter: LoRA adapters in PEFT's on-disk layout.
//
// A directory with adapter_model.safetensors and adapter_config.json. Keys:
//   llama: base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
//          base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
//   gpt2:  base_model.model.transformer.h.{i}.attn.c_attn.lora_{A,B}.weight (fused q,k,v)
//          base_model.model.transformer.h.{i}.attn.c_proj..., mlp.c_fc..., mlp.c_proj...
//   bert / roberta: base_model.model.{bert|roberta}.encoder.layer.{i}.attention.self.{query,key,value}...,
//          attention.output.dense, intermediate.dense, output.dense; and PEFT's
//          modules_to_save of a SEQ_CLS task, saved whole under the model's own
//          names: base_model.model.classifier.{weight,bias} (bert) or
//          base_model.model.classifier.{dense,out_proj}.{weight,bias} (roberta).
// lora_A is (r, d_in), lora_B is (d_out, r), and ΔW = s·B·A is (d_out, d_in)
// with s = lora_alpha / r, or lora_alpha / sqrt(r) when use_rslora (Kalajdzievski
// 2023). rank_pattern / alpha_pattern override r / alpha per module; PEFT
// matches their keys against the end of the module name.
#ifndef LS_ADAPTER_H
#define LS_ADAPTER_H

#include "io/checkpoint.h"

// One adapted site of a loaded adapter: the A/B pair of one module at one layer
// (not to be confused with engine/lora.h's lora_module_id, which names a
// module kind, nor its ls_lora_site, the same pair inside a training model).
typedef struct {
    int layer;
    char path[64];     // module path inside the layer: "self_attn.q_proj", "attn.c_attn", "mlp.c_fc"
    int r;
    float alpha;
    float scale;       // s = alpha / r, or alpha / sqrt(r) (rsLoRA)
    int d_out, d_in;
    float *A;          // (r, d_in), row-major, owned
    float *B;          // (d_out, r), row-major, owned
} adapter_site;

// A tensor saved whole (PEFT's modules_to_save), under the model's name.
typedef struct {
    char name[96];     // "classifier.weight" (the key without "base_model.model.")
    int ndim;
    int64_t shape[2];
    float *data;       // owned
} adapter_tensor;

typedef struct {
    char *dir;
    ls_family family;
    int r;                 // default rank (adapter_config.json "r")
    float alpha;           // default alpha ("lora_alpha")
    int use_rslora;
    int n_targets;
    char **target_modules; // as in the config (e.g. "q_proj", "c_attn")
    char *base_model;      // "base_model_name_or_path", may be NULL
    int n_modules;
    adapter_site *modules; // sorted by (layer, path)
    int n_saved;           // modules_to_save tensors (encoder heads), in file order
    adapter_tensor *saved;
} lora_adapter;

// Loads and validates <dir>/adapter_config.json and <dir>/adapter_model.safetensors:
// every tensor is a lora_A/lora_B of a known module, each A has its B, the
// ranks agree with r / rank_pattern, shapes agree with each other. The family
// is inferred from the key names. Returns 0, or -1 with ls_error() set.
int adapter_load(lora_adapter *a, const char *dir);
void adapter_free(lora_adapter *a);

// Checks every module's shape against the base model's weight of that module.
int adapter_check_base(const lora_adapter *a, const ls_checkpoint *base);

// Writes <dir>/adapter_model.safetensors and <dir>/adapter_config.json (PEFT
// 0.x fields), each atomically; creates dir. An encoder's adapter is written
// with task_type SEQ_CLS and, when it has saved tensors, modules_to_save
// ["classifier"]. Returns 0 or -1.
int adapter_save(const lora_adapter *a, const char *dir);

// The initial factors of a trained adapter, A₀ and B₀ (issue 12: φ of A − A₀,
// the at-initialisation baseline): one safetensors file, conventionally
// <run>/adapter_init.safetensors beside <run>/adapter/, with the adapter's
// PEFT keys (…lora_A.weight, …lora_B.weight). B₀ is written only for modules
// where it is nonzero (PiSSA); a missing lora_B key reads as B₀ = 0.
#define ADAPTER_INIT_FILE "adapter_init.safetensors"

// Writes a's A's (and the nonzero B's) to path, atomically. Returns 0 or -1.
int adapter_init_save(const lora_adapter *a, const char *path);

// Reads the initial factors of `like` (a loaded adapter) from path into
// *init: the same modules, ranks and shapes, A and B from the file (B zero
// where absent). Every module of like needs its lora_A key with its shape.
// Returns 0, or -1 with ls_error() naming the file and the key.
int adapter_init_load(const lora_adapter *like, const char *path, lora_adapter *init);

// Appends a copy of a tensor saved whole (name without "base_model.model.").
void adapter_add_saved(lora_adapter *a, const char *name, int ndim, const int64_t *shape, const float *data);

// The saved tensor called name, or NULL.
const adapter_tensor *adapter_find_saved(const lora_adapter *a, const char *name);

// The module at (layer, path), or NULL.
const adapter_site *adapter_find(const lora_adapter *a, int layer, const char *path);

// Resolves a short module name (q k v o gate up down | c_attn c_proj c_fc mlp_proj)
// to the adapter's module at `layer`, and which rows of its B belong to that name
// (GPT-2's fused c_attn: q, k, v are row blocks [0,d), [d,2d), [2d,3d) of B, so
// ΔWq = s·B[0:d]·A). Returns the module or NULL with ls_error() set.
const adapter_site *adapter_resolve(const lora_adapter *a, int layer, const char *short_name,
                                   int *row0, int *rows);

// ΔW = s·B[row0:row0+rows]·A as a fresh (rows x d_in) float matrix (for tests
// and for merging; the analyses never need the dense ΔW).
float *adapter_delta_weight(const adapter_site *m, int row0, int rows);

// The PEFT key prefix of a family: "base_model.model.model.layers" or
// "base_model.model.transformer.h".
const char *adapter_key_prefix(ls_family f);

#endif
