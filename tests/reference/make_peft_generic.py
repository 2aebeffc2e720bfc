"""Tiny random HF bases of ten architectures, a PEFT LoRA adapter on each, and
PEFT's own dW per adapted module (issue 11: analyse any PEFT adapter).

What it writes, under tests/data/peft_generic/<case>/:

  base/                config.json + model.safetensors (no tokenizer); the
                       "mistral_dora" base is BF16 and sharded
                       (model.safetensors.index.json + shards)
  adapter/             PEFT save_pretrained: adapter_config.json +
                       adapter_model.safetensors
  adapter2/            a second adapter, same config, other seed (for
                       `analyze subspace`)
  delta.safetensors    dW of every adapted module (computed in float64,
                       saved float32), keyed by the
                       module's name inside the model ("encoder.layer.0.
                       attention.self.query"), always in the (out, in)
                       layout of a linear map:
                         LoRA:       get_delta_weight('default'), transposed
                                     back when fan_in_fan_out (Conv1D) and for
                                     embeddings (PEFT returns (vocab, dim))
                         DoRA:       W' - W, with W' the weight PEFT's merge()
                                     writes: m * (W + s B A) / ||W + s B A||
                                     (norm of each output row, PEFT's
                                     DoraLinearLayer.get_weight_norm)
  cases.json           per case: architecture, model class, the config
                       fields that matter, targets, adapted module names

Cases (hidden size 32, 2 layers):

  bert          BertModel (no "bert." prefix), query/key/value,
                attention.output.dense, intermediate.dense, output.dense
  roberta       RobertaForSequenceClassification, target_modules a regex
                string, modules_to_save ["classifier"]
  gpt2          GPT2LMHeadModel, c_attn/c_proj/c_fc (fan_in_fan_out)
  gpt_neox      GPTNeoXForCausalLM, query_key_value (fused, interleaved per
                head), dense, dense_h_to_4h, dense_4h_to_h
  mistral_dora  MistralForCausalLM (GQA), use_dora on q,k,v,o,gate,up,down;
                base weights rounded to BF16 and saved BF16, sharded
  qwen2         Qwen2ForCausalLM, use_rslora, rank_pattern, alpha_pattern,
                LoRA on embed_tokens (lora_embedding_A/B)
  phi3          Phi3ForCausalLM (GQA), fused qkv_proj and gate_up_proj
  opt           OPTForCausalLM, layers_to_transform [1]
  t5            T5ForConditionalGeneration, q,k,v,o,wi,wo (encoder and decoder)
  vit           ViTForImageClassification (transformers 5 names:
                layers.N.attention.q_proj, mlp.fc1), q,v,fc1,fc2,
                modules_to_save ["classifier"]

Every weight is redrawn from a fixed seed, lora_A / lora_B (and DoRA's
magnitude) are set to seeded random values so that dW != 0. Run from the
repository root:

    /opt/refenv/bin/python tests/reference/make_peft_generic.py
"""

import json
import os
import shutil

import torch
from safetensors.torch import save_file

import peft
import transformers
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "peft_generic")

T = transformers


def redraw(model, seed, std=0.2, bf16=False):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                v = torch.randn(p.shape, generator=g) * std
            elif name.endswith("bias"):
                v = torch.randn(p.shape, generator=g) * 0.05
            else:
                v = 1.0 + torch.randn(p.shape, generator=g) * 0.1
            if bf16:
                v = v.to(torch.bfloat16).to(torch.float32)
            p.copy_(v)


def redraw_lora(pm, seed, std=0.3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, mod in pm.named_modules():
            if not isinstance(mod, LoraLayer):
                continue
            for dct in (mod.lora_A, mod.lora_B, mod.lora_embedding_A, mod.lora_embedding_B):
                if "default" in dct:
                    w = dct["default"].weight if hasattr(dct["default"], "weight") else dct["default"]
                    w.copy_(torch.randn(w.shape, generator=g) * std)
            mag = getattr(mod, "lora_magnitude_vector", None)
            if mag is not None and "default" in mag:
                m = mag["default"].weight
                m.copy_(m * (1.0 + 0.2 * torch.randn(m.shape, generator=g)))


def inner_name(name):
    p = "base_model.model."
    return name[len(p):] if name.startswith(p) else name


def deltas_of(pm, cfg):
    """dW in the (out, in) layout, float64, per adapted module."""
    pm = pm.double()
    out = {}
    for name, mod in pm.named_modules():
        if not isinstance(mod, LoraLayer):
            continue
        key = inner_name(name)
        with torch.no_grad():
            if cfg.use_dora:
                w0 = mod.get_base_layer().weight.detach().clone()
                mod.merge(adapter_names=["default"])
                d = mod.get_base_layer().weight.detach().clone() - w0
                mod.unmerge()
            else:
                d = mod.get_delta_weight("default")
        if isinstance(mod.get_base_layer(), torch.nn.Embedding):
            d = d.T  # (vocab, dim) -> the linear map one-hot -> dim
        elif cfg.fan_in_fan_out:
            d = d.T  # Conv1D (in, out) -> (out, in)
        assert d.abs().max() > 1e-3, key
        out[key] = d.to(torch.float32).contiguous().clone()
    return out


def save_dir_clean(path):
    if os.path.isdir(path):
        shutil.rmtree(path)


def save_adapter(pm, path):
    save_dir_clean(path)
    pm.save_pretrained(path, safe_serialization=True)
    card = os.path.join(path, "README.md")
    if os.path.exists(card):
        os.remove(card)
    # PEFT keeps target_modules as a set: sort it so that re-runs write the same file
    cp = os.path.join(path, "adapter_config.json")
    with open(cp) as f:
        c = json.load(f)
    if isinstance(c.get("target_modules"), list):
        c["target_modules"] = sorted(c["target_modules"])
    with open(cp, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)


def save_base(model, path, bf16=False, shard=None):
    save_dir_clean(path)
    m = model.to(torch.bfloat16) if bf16 else model
    kw = {"max_shard_size": shard} if shard else {}
    m.save_pretrained(path, safe_serialization=True, **kw)
    if bf16:
        model.to(torch.float32)
    for extra in ("generation_config.json",):
        p = os.path.join(path, extra)
        if os.path.exists(p):
            os.remove(p)


def make_case(name, model_fn, lora_kw, seed, cases, bf16=False, shard=None, module_names=False):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(seed)
    model = model_fn()
    redraw(model, seed + 1, bf16=bf16)
    model.eval()
    save_base(model, os.path.join(d, "base"), bf16=bf16, shard=shard)
    if module_names:
        # transformers 5 renames ViT's modules on load (vit.layers.N.attention.q_proj)
        # and saves the older layout (vit.encoder.layer.N.attention.attention.query);
        # PEFT names adapter keys after the loaded modules. This base is saved under
        # the loaded names so that the adapter's modules are found in it.
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  os.path.join(d, "base", "model.safetensors"), metadata={"format": "pt"})
    lcfg = LoraConfig(lora_dropout=0.0, **lora_kw)
    pm = get_peft_model(model, lcfg)
    redraw_lora(pm, seed + 2)
    save_adapter(pm, os.path.join(d, "adapter"))
    deltas = deltas_of(pm, lcfg)
    save_file(deltas, os.path.join(d, "delta.safetensors"),
              metadata={"producer": "peft " + peft.__version__})
    # the second adapter: same config on a fresh copy of the base, other seed
    torch.manual_seed(seed)
    model2 = model_fn()
    redraw(model2, seed + 1, bf16=bf16)
    pm2 = get_peft_model(model2, LoraConfig(lora_dropout=0.0, **lora_kw))
    redraw_lora(pm2, seed + 3)
    save_adapter(pm2, os.path.join(d, "adapter2"))
    cases[name] = {"model": type(model).__name__, "modules": sorted(deltas.keys()),
                   "lora": {k: (sorted(v) if isinstance(v, (list, set)) else v)
                            for k, v in lora_kw.items()}}


def main():
    torch.set_num_threads(1)
    cases = {}
    enc = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=64, vocab_size=64, max_position_embeddings=40)
    dec = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=64, vocab_size=64, max_position_embeddings=64)
    make_case("bert", lambda: T.BertModel(T.BertConfig(**enc), add_pooling_layer=False),
              dict(r=4, lora_alpha=8, target_modules=["query", "key", "value", "dense"]),
              100, cases)
    make_case("roberta",
              lambda: T.RobertaForSequenceClassification(T.RobertaConfig(**enc, num_labels=2)),
              dict(r=4, lora_alpha=16, task_type="SEQ_CLS",
                   target_modules=r".*layer\.\d+\.(attention\.self\.(query|value)|intermediate\.dense|output\.dense)"),
              200, cases)
    make_case("gpt2",
              lambda: T.GPT2LMHeadModel(T.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                                      vocab_size=64)),
              dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True),
              300, cases)
    make_case("gpt_neox",
              lambda: T.GPTNeoXForCausalLM(T.GPTNeoXConfig(**dec)),
              dict(r=4, lora_alpha=8,
                   target_modules=["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]),
              400, cases)
    make_case("mistral_dora",
              lambda: T.MistralForCausalLM(T.MistralConfig(**dec, num_key_value_heads=2)),
              dict(r=4, lora_alpha=8, use_dora=True,
                   target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
              500, cases, bf16=True, shard="20KB")
    make_case("qwen2",
              lambda: T.Qwen2ForCausalLM(T.Qwen2Config(**dec, num_key_value_heads=2)),
              dict(r=4, lora_alpha=8, use_rslora=True,
                   target_modules=["q_proj", "v_proj", "down_proj", "embed_tokens"],
                   rank_pattern={"layers.1.self_attn.q_proj": 2, "down_proj": 6},
                   alpha_pattern={r"layers\.0\.self_attn\.v_proj": 3}),
              600, cases)
    make_case("phi3",
              lambda: T.Phi3ForCausalLM(T.Phi3Config(**dec, num_key_value_heads=2, pad_token_id=0)),
              dict(r=4, lora_alpha=8, target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
              700, cases)
    make_case("opt",
              lambda: T.OPTForCausalLM(T.OPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                   ffn_dim=64, vocab_size=64, max_position_embeddings=64,
                                                   word_embed_proj_dim=32)),
              dict(r=4, lora_alpha=8, layers_to_transform=[1],
                   target_modules=["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]),
              800, cases)
    make_case("t5",
              lambda: T.T5ForConditionalGeneration(T.T5Config(d_model=32, d_kv=8, num_heads=4, d_ff=64,
                                                              num_layers=2, num_decoder_layers=2, vocab_size=64)),
              dict(r=4, lora_alpha=8, target_modules=["q", "k", "v", "o", "wi", "wo"]),
              900, cases)
    make_case("vit",
              lambda: T.ViTForImageClassification(T.ViTConfig(hidden_size=32, num_hidden_layers=2,
                                                              num_attention_heads=4, intermediate_size=64,
                                                              image_size=16, patch_size=8, num_labels=3)),
              dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "fc1", "fc2"], modules_to_save=["classifier"]),
              1000, cases, module_names=True)
    meta = {"peft": peft.__version__, "transformers": transformers.__version__,
            "torch": torch.__version__, "cases": cases}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
