"""Checks that what `lorascope train` writes is read by Hugging Face as meant.

Not run by `meson test` (it needs transformers and PEFT); run it by hand after
a change to src/train/export.c:

    ninja -C build-train
    PYTHONPATH=/opt/peftenv /usr/bin/python3 tests/reference/check_train_exports.py build-train/src/cli/lorascope

1. Merged export of a llama2.c checkpoint (stories260K). `lorascope train
   --merged-out` writes config.json + model.safetensors with q/k rows permuted
   from llama2.c's consecutive-pair RoPE to HF's split halves. transformers'
   LlamaForCausalLM on that directory must give the logits of an independent
   float64 llama2.c forward pass (make_engine_reference.py's, validated there
   against run.c's greedy output) on the original .bin plus the run's adapter.
2. PEFT adapter on an HF base (tests/data/peft/llama_tiny/base) and GPT-2
   (tests/data/peft/gpt2_tiny/base): PeftModel.from_pretrained(base, run/adapter)
   must give the logits of LlamaForCausalLM / GPT2LMHeadModel on the run's
   merged export.
Prints the largest differences and exits non-zero if one exceeds 1e-4 of the
logits' scale.
"""

import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
import make_engine_reference as ref  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOL = 1e-4


def lorascope(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"lorascope {' '.join(args)}: {r.stderr.strip()}")


def rel_diff(a, b):
    return (a - b).abs().max().item() / a.abs().max().item()


def check_stories(binary, tmp):
    from transformers import LlamaForCausalLM

    model = os.path.join(ref.ASSETS, "models", "stories260K", "stories260K.bin")
    data = os.path.join(ref.ASSETS, "data", "e2e", "valid.txt")
    run, merged = os.path.join(tmp, "stories"), os.path.join(tmp, "stories_hf")
    lorascope(binary, "train", "--model", model, "--task", "e2e", "--data", data, "--val-frac", "0",
              "--seq-len", "64", "--steps", "20", "--lr", "1e-2", "--lora", "q,k,v,o", "--threads", "1",
              "--out", run, "--merged-out", merged)
    cfg, w = ref.read_llama2c(model)
    ad = load_file(os.path.join(run, "adapter", "adapter_model.safetensors"))
    acfg = json.load(open(os.path.join(run, "adapter", "adapter_config.json")))
    s = acfg["lora_alpha"] / acfg["r"]
    # W + s B A in the llama2.c layout, then the float64 llama2.c forward pass
    names = {"wq": "q_proj", "wk": "k_proj", "wv": "v_proj", "wo": "o_proj"}
    w = {k: v.clone() if torch.is_tensor(v) else v for k, v in w.items()}
    for key, proj in names.items():
        for layer in range(cfg["n_layers"]):
            pre = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            delta = s * ad[pre + ".lora_B.weight"].double() @ ad[pre + ".lora_A.weight"].double()
            w[key][layer] = w[key][layer] + delta.to(w[key].dtype)
    tokens, _ = ref.seeded_batch(3, cfg["vocab"])
    mine = ref.stories_forward(cfg, w, tokens)
    hf = LlamaForCausalLM.from_pretrained(merged, torch_dtype=torch.float64).eval()
    with torch.no_grad():
        theirs = hf(tokens).logits
    d = rel_diff(mine.double(), theirs.double())
    print(f"stories260K + adapter: llama2.c forward vs HF on the merged export: max rel diff {d:.2e}")
    return d


def check_peft(binary, tmp, family):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = os.path.join(ROOT, "tests", "data", "peft", f"{family}_tiny", "base")
    data = os.path.join(tmp, "data.jsonl")
    with open(data, "w") as f:
        for i in range(40):
            f.write(json.dumps({"context": f"name {i} |", "completion": f" the number is {i * 7 % 13}."}) + "\n")
    run, merged = os.path.join(tmp, family), os.path.join(tmp, family + "_merged")
    modules = "q,v,o,down" if family == "llama" else "c_attn,c_proj,c_fc,mlp_proj"
    lorascope(binary, "train", "--model", base, "--tokenizer", "bytes", "--task", "jsonl", "--data", data,
              "--val-frac", "0", "--seq-len", "48", "--steps", "20", "--lr", "1e-2", "--lora", modules,
              "--threads", "1", "--out", run, "--merged-out", merged)
    tokens = torch.randint(0, 250, (2, 24), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        peft = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float64), os.path.join(run, "adapter")).eval()
        a = peft(tokens).logits
        b = AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float64).eval()(tokens).logits
        base_logits = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float64).eval()(tokens).logits
    d = rel_diff(a, b)
    moved = rel_diff(a, base_logits)
    print(f"{family}: PEFT(base, adapter) vs HF(merged export): max rel diff {d:.2e} "
          f"(the adapter moves the logits by {moved:.2e})")
    return d if moved > 100 * TOL else float("inf")


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-train", "src", "cli",
                                                                                 "lorascope"))
    with tempfile.TemporaryDirectory() as tmp:
        worst = max(check_stories(binary, tmp), check_peft(binary, tmp, "llama"), check_peft(binary, tmp, "gpt2"))
    print("ok" if worst <= TOL else "FAILED")
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    sys.exit(main())
