"""Generate tiny HF base checkpoints, PEFT LoRA adapters and PEFT's own dW.

What it writes (under tests/data/peft/, see tests/reference/README.md for
every key and shape):

  gpt2_tiny/base/           random GPT-2 (HF save_pretrained, safetensors)
  gpt2_tiny/adapter/        PEFT LoRA on c_attn (fan_in_fan_out=True)
  gpt2_tiny/delta.safetensors   PEFT get_delta_weight() per LoRA module
  gpt2_tiny/logits.safetensors  HF logits of base and base+adapter
  llama_tiny/...            the same for a random Llama (GQA), LoRA on
                            q, v, o, gate, down
  llama_tiny_rslora/...     a second adapter on llama_tiny/base with
                            use_rslora=True, rank_pattern and alpha_pattern
                            (no base/ of its own)
  trainable_params.json     PEFT's print_trainable_parameters() line and
                            the two numbers, per adapter

The base weights are redrawn (seeded) at a larger scale than HF's 0.02 init
so that logits are far from uniform; lora_A and lora_B are overwritten with
seeded Gaussian values so that dW != 0.

Run from the repository root (needs peft/transformers, see README.md):

    PYTHONPATH=/opt/peftenv /usr/bin/python3 tests/reference/make_peft_adapters.py

Deterministic: fixed seeds, CPU, float32.  Re-running rewrites the same
tensors (safetensors bytes are identical; JSON files too).
"""

import contextlib
import io
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

import peft
import transformers
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "peft")

# Inputs of the logits check: one sequence of 16 seeded token ids.
LOGIT_T = 16


def redraw_base(model, seed, std=0.1):
    """Overwrite every parameter with seeded values (deterministic, non-trivial).

    Matrices and embeddings ~ N(0, std); norm gains ~ 1 + N(0, 0.1);
    biases ~ N(0, 0.05).  Parameter order is the module's own (stable).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif "ln" in name or "norm" in name:
                if name.endswith("bias"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.05)
                else:
                    p.copy_(1.0 + torch.randn(p.shape, generator=g) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def redraw_lora(peft_model, seed, std=0.1):
    """Give every lora_A / lora_B a seeded Gaussian value so dW != 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in peft_model.named_modules():
            if isinstance(mod, LoraLayer):
                a = mod.lora_A["default"].weight
                b = mod.lora_B["default"].weight
                a.copy_(torch.randn(a.shape, generator=g) * std)
                b.copy_(torch.randn(b.shape, generator=g) * std)


def trainable_line(peft_model):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        peft_model.print_trainable_parameters()
    trainable, total = peft_model.get_nb_trainable_parameters()
    return {"line": buf.getvalue().rstrip("\n"), "trainable": trainable,
            "all": total}


def save_adapter(peft_model, path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    peft_model.save_pretrained(path, safe_serialization=True)
    # PEFT also writes a model card (README.md) full of boilerplate; it is
    # not part of the adapter format and would only bloat the fixtures.
    card = os.path.join(path, "README.md")
    if os.path.exists(card):
        os.remove(card)


def save_base(model, path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    model.save_pretrained(path, safe_serialization=True)


def save_deltas(peft_model, path):
    """PEFT's own module.get_delta_weight('default'), float32, as PEFT returns it.

    Key: the module path without the 'base_model.model.' prefix, e.g.
    'transformer.h.0.attn.c_attn'.  Shape exactly as returned (for
    fan_in_fan_out=True that is the Conv1D layout (in, out)).
    """
    deltas = {}
    prefix = "base_model.model."
    for name, mod in peft_model.named_modules():
        if isinstance(mod, LoraLayer):
            key = name[len(prefix):] if name.startswith(prefix) else name
            with torch.no_grad():
                d = mod.get_delta_weight("default")
            deltas[key] = d.detach().to(torch.float32).contiguous().clone()
    save_file(deltas, path, metadata={"producer": "peft " + peft.__version__ +
                                      " LoraLayer.get_delta_weight('default')"})
    return deltas


def logits_of(model, tokens):
    model.eval()
    with torch.no_grad():
        return model(input_ids=tokens).logits.detach().to(torch.float32).contiguous()


def seeded_tokens(seed, vocab):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (1, LOGIT_T), generator=g)


# ----------------------------------------------------------------------------
# GPT-2

def make_gpt2(info):
    d = os.path.join(OUT, "gpt2_tiny")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(1000)
    cfg = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128,
                     vocab_size=256, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, bos_token_id=255, eos_token_id=255)
    model = GPT2LMHeadModel(cfg)
    redraw_base(model, seed=1001)
    model.eval()
    save_base(model, os.path.join(d, "base"))

    tokens = seeded_tokens(1002, cfg.vocab_size)
    logits_base = logits_of(model, tokens)

    lcfg = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"],
                      fan_in_fan_out=True, lora_dropout=0.0)
    pm = get_peft_model(model, lcfg)
    redraw_lora(pm, seed=1003)
    info["gpt2_tiny"] = trainable_line(pm)
    save_adapter(pm, os.path.join(d, "adapter"))
    deltas = save_deltas(pm, os.path.join(d, "delta.safetensors"))
    logits_adapter = logits_of(pm, tokens)
    save_file({"tokens": tokens.to(torch.float32), "logits_base": logits_base,
               "logits_adapter": logits_adapter},
              os.path.join(d, "logits.safetensors"))
    # Sanity: the delta is non-zero and Conv1D-shaped (in, out).
    for k, v in deltas.items():
        assert v.shape == (64, 192), (k, v.shape)
        assert v.abs().max() > 1e-3
    assert (logits_adapter - logits_base).abs().max() > 1e-3


# ----------------------------------------------------------------------------
# Llama

LLAMA_CFG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=256,
                 max_position_embeddings=128)


def llama_base():
    torch.manual_seed(2000)
    cfg = LlamaConfig(**LLAMA_CFG)
    model = LlamaForCausalLM(cfg)
    redraw_base(model, seed=2001)
    model.eval()
    return cfg, model


def make_llama(info):
    d = os.path.join(OUT, "llama_tiny")
    os.makedirs(d, exist_ok=True)
    cfg, model = llama_base()
    save_base(model, os.path.join(d, "base"))
    tokens = seeded_tokens(2002, cfg.vocab_size)
    logits_base = logits_of(model, tokens)

    lcfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                      target_modules=["q_proj", "v_proj", "o_proj",
                                      "gate_proj", "down_proj"])
    pm = get_peft_model(model, lcfg)
    redraw_lora(pm, seed=2003)
    info["llama_tiny"] = trainable_line(pm)
    save_adapter(pm, os.path.join(d, "adapter"))
    deltas = save_deltas(pm, os.path.join(d, "delta.safetensors"))
    logits_adapter = logits_of(pm, tokens)
    save_file({"tokens": tokens.to(torch.float32), "logits_base": logits_base,
               "logits_adapter": logits_adapter},
              os.path.join(d, "logits.safetensors"))
    assert len(deltas) == 10
    assert deltas["model.layers.0.self_attn.v_proj"].shape == (32, 64)
    assert deltas["model.layers.1.mlp.down_proj"].shape == (64, 128)
    for k, v in deltas.items():
        assert abs(float(v.abs().max())) > 1e-3, k


# PEFT 0.10 picks ONE pattern key per module (the first key of
# rank_pattern then alpha_pattern that matches r".*\.{key}$") and looks
# both r and alpha up under that key, so a module must not be matched by a
# rank_pattern key and a different alpha_pattern key.  The patterns below
# never overlap, so every PEFT version resolves them the same way.
RSLORA_RANK_PATTERN = {"q_proj": 2, "layers.1.self_attn.o_proj": 4}
RSLORA_ALPHA_PATTERN = {"v_proj": 4, "k_proj": 32}


def make_llama_rslora(info):
    d = os.path.join(OUT, "llama_tiny_rslora")
    os.makedirs(d, exist_ok=True)
    cfg, model = llama_base()   # identical to llama_tiny/base (same seeds)
    tokens = seeded_tokens(2002, cfg.vocab_size)
    lcfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, use_rslora=True,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      rank_pattern=dict(RSLORA_RANK_PATTERN),
                      alpha_pattern=dict(RSLORA_ALPHA_PATTERN))
    pm = get_peft_model(model, lcfg)
    redraw_lora(pm, seed=3003)
    info["llama_tiny_rslora"] = trainable_line(pm)
    save_adapter(pm, os.path.join(d, "adapter"))
    deltas = save_deltas(pm, os.path.join(d, "delta.safetensors"))
    logits_adapter = logits_of(pm, tokens)
    save_file({"tokens": tokens.to(torch.float32),
               "logits_adapter": logits_adapter},
              os.path.join(d, "logits.safetensors"))

    # The per-module (r, alpha, scale) PEFT resolved; the C loader must agree.
    import math
    expect = {}
    for i in range(2):
        p = f"model.layers.{i}.self_attn."
        expect[p + "q_proj"] = (2, 16)
        expect[p + "k_proj"] = (8, 32)
        expect[p + "v_proj"] = (8, 4)
        expect[p + "o_proj"] = (4, 16) if i == 1 else (8, 16)
    resolved = {}
    for name, mod in pm.named_modules():
        if isinstance(mod, LoraLayer):
            key = name[len("base_model.model."):]
            r = mod.r["default"]
            alpha = mod.lora_alpha["default"]
            s = mod.scaling["default"]
            assert (r, alpha) == expect[key], (key, r, alpha)
            assert abs(s - alpha / math.sqrt(r)) < 1e-12, (key, s)
            resolved[key] = {"r": r, "alpha": alpha, "scale": s}
    info["llama_tiny_rslora"]["resolved"] = resolved


def main():
    # PEFT stores target_modules from a Python set, whose order depends on
    # string hashing; fix the hash seed so adapter_config.json is stable.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    print("torch", torch.__version__, "transformers", transformers.__version__,
          "peft", peft.__version__, file=sys.stderr)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    info = {"peft_version": peft.__version__,
            "transformers_version": transformers.__version__}
    make_gpt2(info)
    make_llama(info)
    make_llama_rslora(info)
    with open(os.path.join(OUT, "trainable_params.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    for k in ("gpt2_tiny", "llama_tiny", "llama_tiny_rslora"):
        print(k + ": " + info[k]["line"])


if __name__ == "__main__":
    main()
