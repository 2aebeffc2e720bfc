// hf_weights: the weights of any Hugging Face checkpoint, by tensor name, with
// no model code — what the analyses need of a base the registry does not know.
//
// A path is a directory holding config.json and either model.safetensors or
// model.safetensors.index.json (transformers' sharded layout: {"weight_map":
// {tensor name: shard file}}, every shard in the same directory), or a single
// .safetensors file. Tensors may be F32, F16 or BF16 (widened exactly).
// config.json, when present, gives the heads that split fused q,k,v maps
// (num_attention_heads | n_head | num_heads, num_key_value_heads).
//
// An adapter's module "bert.encoder.layer.0.attention.self.query" is looked up
// as "<module>.weight", else as the one tensor whose name and "<module>.weight"
// differ only by leading components (a base saved with or without the task
// model's prefix: "encoder.layer.0..." / "bert.encoder.layer.0...").
#ifndef LS_HF_WEIGHTS_H
#define LS_HF_WEIGHTS_H

#include "io/adapter.h"
#include "io/safetensors.h"

typedef struct {
    char *path;        // as given
    int n_files;
    st_file *files;    // model.safetensors, or the shards in weight_map order of first use
    int n_heads, n_kv_heads; // 0 when config.json does not say
    int qkv_per_head;  // model_type gpt_neox: query_key_value is [q_h; k_h; v_h] per head
} hf_weights;

// Opens every file (shards listed by the index must all exist and hold the
// tensors the index gives them). Returns 0, or -1 with ls_error() naming the
// file and key; on failure *w needs no hf_weights_close.
int hf_weights_open(hf_weights *w, const char *path);
void hf_weights_close(hf_weights *w);

// W of site m of adapter a as a fresh (d_out x d_in) float matrix, row-major:
// transposed from the file when the adapter says fan_in_fan_out (Conv1D) or the
// site is an embedding (stored (vocab, dim)). Returns NULL with ls_error()
// naming the base, the tensor and both shapes when it is missing or its shape
// is not ΔW's.
float *hf_weights_site(const hf_weights *w, const lora_adapter *a, const adapter_site *m);

#endif
