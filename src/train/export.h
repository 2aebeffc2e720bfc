// export: what a run leaves behind for PEFT, Hugging Face and the analyses.
//
//   adapter    the engine's LoRA sites as a PEFT adapter (io/adapter.h):
//              llama q k v o gate up down -> self_attn.{q,k,v,o}_proj,
//              mlp.{gate,up,down}_proj; gpt2 c_attn c_proj c_fc mlp_proj ->
//              attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj. GPT-2's q/k/v row
//              blocks (loralib's MergedLinear) of one layer fold into one
//              attn.c_attn module of rank r_q + r_k + r_v: A stacked, B
//              block-diagonal in the blocks' rows, the scale kept (export.c,
//              fold_row_blocks), so that PEFT loads every adapter lorascope trains.
//              Rows follow the base checkpoint's layout: an adapter trained on a
//              llama2.c .bin keeps q/k rows in consecutive-pair RoPE order, so
//              that `lorascope analyze --base <the .bin>` sees W and ΔW alike.
//   merged     W0 + ΔW of every weight as a Hugging Face checkpoint directory
//              (config.json + model.safetensors) that transformers and ckpt_load
//              both read: GPT-2 Conv1D weights stored (in, out) again; a Llama
//              model loaded from a llama2.c .bin gets its q and k rows permuted
//              from consecutive-pair RoPE to HF's split halves (the permutation
//              of transformers' convert_llama_weights_to_hf.py: within each
//              head, row 2i -> i and row 2i+1 -> i + HS/2), which leaves q·k and
//              so the model's function unchanged.
//   full       the parameters of full fine-tuning under their canonical names
//              in the engine's layout ((out, in), the base's RoPE order), so
//              that ΔW = W_ft - W0 compares like with like (FT^Top2 too);
//              BitFit's trained tensors alone in the same format.
// The way back in, a PEFT adapter folded into a model, is train/import.h.
#ifndef LS_TRAIN_EXPORT_H
#define LS_TRAIN_EXPORT_H

#include "engine/lora.h"
#include "engine/model.h"
#include "io/adapter.h"

// The adapter's sites as a lora_adapter (A, B copied to host memory; free with
// adapter_free). base_model (may be NULL) goes to base_model_name_or_path.
// PiSSA (init_params = the host copy of lo->params at initialisation, else
// NULL): the base was replaced by the residual W - s B0 A0, so the adapter
// relative to the original W is s (B A - B0 A0), written as PEFT's
// convert-PiSSA-to-LoRA does: rank 2r with A' = [A; A0], B' = [B, -B0] and
// alpha' chosen so that the scale stays s. When every module ends with one
// rank and alpha, those are the adapter's r and lora_alpha. Returns 0.
int export_lora_to_adapter(const ls_lora *lo, const float *init_params, const char *base_model,
                           lora_adapter *out);

// The same with the factors read from `factors`, a host copy of lo's
// parameter buffer (its layout: offset_A, offset_B of each site), instead of
// lo's live parameters: training's initial factors A₀, B₀ in the adapter's
// own layout (q/k/v row blocks folded, PiSSA's [A₀; A₀], [B₀, −B₀]).
int export_lora_factors_to_adapter(const ls_lora *lo, const float *factors, const float *init_params,
                                   const char *base_model, lora_adapter *a);

// Writes the adapter to dir as a whole: into "<dir>.tmp.<pid>", then renamed
// over dir, so that dir is either absent, the old adapter or the new one.
int export_save_adapter(const lora_adapter *a, const char *dir);

// Writes the model's weights, plus ΔW of `lo` if non-NULL and not merged, as
// an HF checkpoint directory (written in "<dir>.tmp.<pid>" and renamed into
// place). Returns 0 or -1.
int export_merged_hf(const ls_model *m, const ls_lora *lo, const char *dir);

// Writes every canonical tensor of the model to one safetensors file
// (atomically), metadata family / rope_interleaved / format. Returns 0 or -1.
int export_full_params(const ls_model *m, const char *path);

// The same for the tensors inside the trainable segments only (BitFit: the
// biases and an encoder's classifier), canonical names, lorascope's format.
int export_trained_params(const ls_model *m, const ls_param_segment *segs, int n_segs, const char *path);

// Prefix-layer tuning as PEFT saves PREFIX_TUNING (engine/prefix.h): dir/
// adapter_model.safetensors with prompt_embeddings (l_p, 2 L C) and
// adapter_config.json (task_type CAUSAL_LM, prefix_projection false), so that
// PeftModel.from_pretrained loads it; base_model (may be NULL) goes to
// base_model_name_or_path. Written in "<dir>.tmp.<pid>", renamed into place. Returns 0 or -1.
struct ls_prefix;
int export_prefix_peft(const struct ls_prefix *pf, const ls_model *m, const char *base_model, const char *dir);

// Prefix-embedding tuning as PEFT saves PROMPT_TUNING (engine/prompt.h): dir/
// adapter_model.safetensors with prompt_embeddings (l_p, C) and
// adapter_config.json (task_type CAUSAL_LM, prompt_tuning_init RANDOM,
// num_virtual_tokens, token_dim, num_transformer_submodules 1), so that
// PeftModel.from_pretrained loads it; base_model as export_prefix_peft.
// Written in "<dir>.tmp.<pid>", renamed into place. Returns 0 or -1.
struct ls_prompt;
int export_prompt_peft(const struct ls_prompt *pr, const ls_model *m, const char *base_model, const char *dir);

// Replaces dir by the directory tmp (removing an old dir first). Returns 0 or -1.
int export_replace_dir(const char *tmp, const char *dir);
// Removes a directory tree (best effort; used on error paths).
void export_remove_tree(const char *dir);

#endif
