// import: a PEFT adapter (io/adapter.h) folded into a model's weights, so that
// eval and generate run base + adapter at no extra cost (Sec. 4.1). The
// opposite direction, the engine's adapter written out for PEFT, is
// train/export.h.
#ifndef LS_TRAIN_IMPORT_H
#define LS_TRAIN_IMPORT_H

#include "engine/model.h"
#include "io/adapter.h"

// W <- W + s·B·A for every site of a loaded PEFT adapter (lora_merge_into, on a
// host copy of each weight). Checks family, layers and shapes against the
// model before changing anything; an encoder's saved head (modules_to_save)
// replaces the model's (model_head_from_adapter). The adapter stays the caller's. Returns 0,
// or -1 with ls_error() set.
int import_adapter(ls_model *m, const lora_adapter *a);

// Loads the PEFT adapter in dir (or in dir/adapter, a run directory), applies
// it with import_adapter and frees it. A run directory without adapter/ but
// with full/model.safetensors (full fine-tuning, FT^Top2) or
// bitfit/model.safetensors (BitFit), or such a file itself, is read with
// import_params; one with adapters/model.safetensors (Adapter^H / ^L), or
// that file itself, with import_adapters; one with prefix/ (prefix-layer), or
// a PREFIX_TUNING directory itself, with import_prefix; one with prompt/
// (prefix-embed), or a PROMPT_TUNING directory itself, with import_prompt.
// Returns 0 or -1.
int import_adapter_dir(ls_model *m, const char *dir);

// Copies the tensors of a lorascope-canonical safetensors file (train/export.h:
// every tensor, or BitFit's trained ones) over the model's by name, after
// checking the family, every name and shape. Returns 0, or -1 with ls_error().
int import_params(ls_model *m, const char *path);

// Attaches the bottleneck adapters of an adapters_save file (engine/adapters.h)
// to the model, which owns them from then on (owns_adapters; model_free frees
// them), and copies an encoder's trained classifier from head.safetensors
// beside the file when there is one (import_params). They stay layers of
// their own: adapters do not merge into W. Returns 0, or -1 with ls_error()
// (a model with adapters already attached is refused).
int import_adapters(ls_model *m, const char *path);

// Attaches the prefix of a PEFT PREFIX_TUNING adapter directory (adapter_config.json:
// peft_type PREFIX_TUNING, prefix_projection false, num_layers and token_dim
// the model's; prompt_embeddings (l_p, 2 L C)) to the model, which owns it
// (owns_prefix). Returns 0, or -1 with ls_error() naming the file and field.
int import_prefix(ls_model *m, const char *dir);

// Attaches the virtual token embeddings of a PEFT PROMPT_TUNING adapter
// directory (adapter_config.json: peft_type PROMPT_TUNING, token_dim the
// model's width, num_transformer_submodules 1; prompt_embeddings (l_p, C)) to
// the model (engine/prompt.h), which owns them (owns_prompt). Returns 0, or
// -1 with ls_error() naming the file and field.
int import_prompt(ls_model *m, const char *dir);

#endif
