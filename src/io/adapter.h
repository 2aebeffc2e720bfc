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
// 2023). rank_pattern / alpha_pattern override r / alpha per module; their keys
// are regular expressions matched as PEFT's get_pattern_key does:
// re.match(r"(.*\.)?(KEY)$", module name), the first key that matches wins.
//
// Any other PEFT LoRA layout is read too (a "generic" adapter, lora_adapter.generic):
//   base_model.model.<module>.lora_{A,B}[.<adapter name>].weight   linear maps
//   base_model.model.<module>.lora_embedding_{A,B}[.<adapter name>] embeddings
//   base_model.model.<module>.lora_magnitude_vector[...]            DoRA's m
//   any other key                                                    saved whole (listed, not analysed)
// <module> is split as PEFT finds a layer index (tuners_utils.py,
// check_target_module_exists: the first all-digit component with a component
// before and after it): "encoder.block.3.layer.1.EncDecAttention.q" is stack
// "encoder.block", layer 3, path "layer.1.EncDecAttention.q". A module with no
// index (embed_tokens, lm_head) has layer -1. Sites are grouped by (stack,
// layer, path). For an embedding, lora_embedding_A is (r, vocab) and
// lora_embedding_B (dim, r): ΔW = s·B·A is the map one-hot -> dim, i.e. the
// transpose of PEFT's (vocab, dim) delta; its base W is the embedding transposed.
//
// DoRA (Liu et al. 2024, PEFT use_dora): the merged weight is
//   W' = diag(m / n) (W + s·B·A),   n_i = ‖(W + s·B·A)_i,:‖_2 (norm of output row i)
// with m = lora_magnitude_vector (d_out) — PEFT's DoraLinearLayer.get_weight_norm
// over the weight in (out, in) layout, and LoraLayer.merge. lorascope's ΔW of a
// DoRA site is W' - W (adapter_dora_delta), which needs the base W; without it
// only the direction update s·B·A is known.
#ifndef LS_ADAPTER_H
#define LS_ADAPTER_H

#include "io/checkpoint.h"

// The two files of an adapter directory, as PEFT names them (also those of its
// prompt-learning adapters: train/export.h).
#define ADAPTER_CONFIG_FILE "adapter_config.json"
#define ADAPTER_WEIGHTS_FILE "adapter_model.safetensors"

// One adapted site of a loaded adapter: the A/B pair of one module at one layer
// (not to be confused with engine/lora.h's lora_module_id, which names a
// module kind, nor its ls_lora_site, the same pair inside a training model).
typedef struct {
    int layer;         // -1: a module outside the indexed layers (embed_tokens, lm_head)
    char path[200];    // module path inside the layer: "self_attn.q_proj", "attn.c_attn", "mlp.c_fc"
    char stack[96];    // the module name before the layer index: "model.layers", "encoder.block"
    char name[200];    // the whole module name inside the model: "model.layers.0.self_attn.q_proj"
    int embedding;     // 1: lora_embedding_{A,B} (an nn.Embedding, W stored (vocab, dim))
    float *magnitude;  // DoRA's m (d_out), owned, or NULL
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
    int generic;           // 1: not a layout of a lorascope family (family is then meaningless);
                           //    read for the analyses only
    int use_dora;          // adapter_config.json "use_dora"
    int fan_in_fan_out;    // "fan_in_fan_out": the base stores W as (in, out) (Conv1D)
    int n_heads, n_kv_heads; // from the base's config.json (adapter_set_heads), 0: unknown;
                           //    what splits a generic fused q,k,v module into row blocks
    int qkv_per_head;      // 1: query_key_value holds [q_h; k_h; v_h] per head h (GPT-NeoX)
} lora_adapter;

// Loads and validates <dir>/adapter_config.json and <dir>/adapter_model.safetensors:
// each A has its B (and its magnitude under DoRA), the ranks agree with r /
// rank_pattern, shapes agree with each other, every module is matched by
// target_modules (a list: the name or its last components; a string: a regex
// matched whole, as PEFT) and lies in layers_to_transform. The family is
// inferred from the key names; a layout of no family is read as generic.
// adapter_model.bin (a pickle) is never read. Returns 0, or -1 with ls_error() set.
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

// The site of adapter a that --module `name` means at `layer`, for any adapter:
// lorascope's short names (q k v o gate up down fc, and the family's own) or
// the file's module names, matched as the last component ("q_proj", "query",
// "c_attn", "query_key_value", "Wqkv") or several components in order
// ("decoder.EncDecAttention.q", "attention.output.dense"). q, k, v of a fused
// q,k,v module (c_attn, qkv_proj, Wqkv) are its row blocks [q | k | v] sized by
// n_heads / n_kv_heads (adapter_set_heads; equal thirds for gpt2); gate, up of
// gate_up_proj its halves; q, k, v of GPT-NeoX's query_key_value the rows
// [h·3·hd + b·hd, + hd) of every head h (b = 0, 1, 2), as its forward reshapes
// them. Returns the site and its rows, or NULL with ls_error() naming the
// candidates when none or several match.
typedef struct {
    int row0, rows;    // the first group: rows [row0, row0 + rows)
    int n_groups;      // groups of `rows` rows, group g from row0 + g * stride (1: one block)
    int stride;
} adapter_rows;
const adapter_site *adapter_resolve_any(const lora_adapter *a, int layer, const char *name, adapter_rows *sel);

// Row i (0 <= i < n_groups * rows) of a selection: its row in the site.
static inline int adapter_row_at(const adapter_rows *s, int i) {
    return s->row0 + (i / s->rows) * s->stride + i % s->rows;
}

// Heads and key/value heads of the base (config.json), for fused row blocks;
// qkv_per_head: the base is GPT-NeoX (model_type gpt_neox).
void adapter_set_heads(lora_adapter *a, int n_heads, int n_kv_heads, int qkv_per_head);

// The DoRA ΔW = W' - W of site m (see the top of this file) for the rows
// [row0, row0 + rows) given W (d_out x d_in, row-major, all rows: the norm is
// per row so only those rows are needed, but W is indexed by absolute row).
// A fresh (rows x d_in) double matrix.
double *adapter_dora_delta(const adapter_site *m, const float *W, int row0, int rows);

// ΔW = s·B[row0:row0+rows]·A as a fresh (rows x d_in) float matrix (for tests
// and for merging; the analyses never need the dense ΔW).
float *adapter_delta_weight(const adapter_site *m, int row0, int rows);

// The PEFT key prefix of a family: "base_model.model.model.layers" or
// "base_model.model.transformer.h".
const char *adapter_key_prefix(ls_family f);

#endif
