"""HF + PEFT logits of GPT-2 q,v row-block LoRA written as PEFT's c_attn.

lorascope trains GPT-2's q, k, v as row blocks of the fused c_attn (loralib's
MergedLinear); PEFT adapts c_attn whole. src/train/export.c writes such an
adapter as one c_attn module of rank R = r_q + r_v: A' = [A_q; A_v] stacked,
B' (3d x R) block-diagonal (B_q in rows [0, d) and columns [0, r_q), B_v in
rows [2d, 3d) and columns [r_q, R)), lora_alpha chosen so that s = alpha/R
keeps the blocks' scale.

This script builds that adapter from the same closed-form A and B that
tests/train/test_train.c gives lorascope's q and v sites (rank 4, alpha 8,
s = 2; the formula is in site_value below), loads it with PEFT on
tests/data/peft/gpt2_tiny/base, and writes, to
tests/data/peft/gpt2_qv_export/expected.safetensors:

  tokens                    (1, 16) ids, as float32
  logits                    (1, 16, 256) HF + PEFT logits (float64 pass, saved float32)
  logits_base               the base's logits (to show the adapter matters)
  transformer.h.{0,1}.attn.c_attn.lora_A   (8, 64)   A'
  transformer.h.{0,1}.attn.c_attn.lora_B   (192, 8)  B'

Run from the repository root:

    /opt/refenv/bin/python tests/reference/make_gpt2_qv_export_reference.py
"""

import math
import os

import torch
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel

import peft
from peft import LoraConfig, get_peft_model

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BASE = os.path.join(ROOT, "tests", "data", "peft", "gpt2_tiny", "base")
OUT = os.path.join(ROOT, "tests", "data", "peft", "gpt2_qv_export")
D, R, ALPHA, T = 64, 4, 8.0, 16
TOKENS = [(7 * t * t + 3 * t + 1) % 256 for t in range(T)]


def site_value(side, layer, block, i, k):
    """The closed form shared with test_train.c: side 'A' (i < r, k < d_in), 'B' (i < d_out, k < r)."""
    if side == "A":
        return 0.1 * math.sin(0.37 * (i + 1) + 0.11 * k + 1.3 * layer + 0.5 * block)
    return 0.1 * math.cos(0.23 * (i + 1) + 0.71 * k + 0.9 * layer + 0.5 * block)


def factors(layer, block):
    A = torch.tensor([[site_value("A", layer, block, i, k) for k in range(D)] for i in range(R)], dtype=torch.float32)
    B = torch.tensor([[site_value("B", layer, block, i, k) for k in range(R)] for i in range(D)], dtype=torch.float32)
    return A, B


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    model = GPT2LMHeadModel.from_pretrained(BASE).double().eval()
    tokens = torch.tensor([TOKENS])
    with torch.no_grad():
        logits_base = model(input_ids=tokens).logits
    cfg = LoraConfig(r=2 * R, lora_alpha=2 * ALPHA, target_modules=["c_attn"], fan_in_fan_out=True,
                     lora_dropout=0.0)
    pm = get_peft_model(model, cfg).double().eval()
    tensors = {}
    for layer in range(2):
        Aq, Bq = factors(layer, 0)  # block 0: q
        Av, Bv = factors(layer, 2)  # block 2: v
        A = torch.cat([Aq, Av], 0)
        B = torch.zeros(3 * D, 2 * R)
        B[0:D, 0:R] = Bq
        B[2 * D:3 * D, R:2 * R] = Bv
        mod = pm.base_model.model.transformer.h[layer].attn.c_attn
        with torch.no_grad():
            mod.lora_A["default"].weight.copy_(A.double())
            mod.lora_B["default"].weight.copy_(B.double())
        tensors[f"transformer.h.{layer}.attn.c_attn.lora_A"] = A.contiguous()
        tensors[f"transformer.h.{layer}.attn.c_attn.lora_B"] = B.contiguous()
    with torch.no_grad():
        logits = pm(input_ids=tokens).logits
    assert (logits - logits_base).abs().max() > 1e-2
    tensors["tokens"] = tokens.to(torch.float32)
    tensors["logits"] = logits.to(torch.float32).contiguous()
    tensors["logits_base"] = logits_base.to(torch.float32).contiguous()
    save_file(tensors, os.path.join(OUT, "expected.safetensors"), metadata={"producer": "peft " + peft.__version__})


if __name__ == "__main__":
    main()
