"""An adapter that lorascope trained, loaded by PEFT: the reference that
closes the loop "lorascope writes, PEFT loads, same logits" on a real model.

What it does (from the repository root, with the project built):

  1. `build/lorascope train --task sst2` on all-MiniLM-L6-v2 (../shared/assets)
     for 8 steps: LoRA on q and v at r 4 and the new classifier trained (PEFT's
     modules_to_save); the run's adapter directory is copied to
     tests/data/encoder/lorascope_minilm_adapter/ exactly as lorascope wrote it.
     Then the same with the pooler trained too (`--modules-to-save
     classifier,pooler`, PEFT's modules_to_save = ["classifier", "pooler"]) into
     tests/data/encoder/lorascope_minilm_adapter_pooler/.
  2. transformers' BertForSequenceClassification (2 labels) with PEFT's
     PeftModel.from_pretrained(that directory): PEFT must load every tensor of
     the file (the LoRA factors into q and v, the classifier from
     modules_to_save; checked against the file), then its logits on the
     sentences of minilm_ref.safetensors (the same input_ids, token_type_ids,
     attention_mask), in float64, are saved as
     tests/data/encoder/lorascope_minilm_adapter_logits.safetensors ("logits"),
     and with the pooler adapter lorascope_minilm_adapter_pooler_logits.safetensors.

tests/engine/test_encoder.c loads the committed adapter onto the same model
and checks its logits against PEFT's.

    /opt/refenv/bin/python tests/reference/make_minilm_adapter_reference.py
"""
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import BertForSequenceClassification

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ASSETS = os.environ.get("LORASCOPE_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
MINILM = os.path.join(ASSETS, "models", "all-MiniLM-L6-v2")
OUT = os.path.join(ROOT, "tests", "data", "encoder")
VARIANTS = [("lorascope_minilm_adapter", "classifier"), ("lorascope_minilm_adapter_pooler", "classifier,pooler")]


def train(tmp, name, modules_to_save):
    adapter = os.path.join(OUT, name)
    run = os.path.join(tmp, name)
    cmd = [os.path.join(ROOT, "build", "lorascope"), "train", "--task", "sst2", "--model", MINILM,
           "--data", os.path.join(ASSETS, "data", "sst2", "train.tsv"), "--lora", "q,v", "--rank", "4",
           "--alpha", "8", "--batch-size", "8", "--seq-len", "64", "--lr", "5e-3", "--steps", "8",
           "--seed", "7", "--eval-every", "0", "--val-data", os.path.join(ASSETS, "data", "sst2", "dev.tsv"),
           "--eval-max", "32", "--threads", "1", "--modules-to-save", modules_to_save, "--out", run]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(adapter, ignore_errors=True)
    shutil.copytree(os.path.join(run, "adapter"), adapter)


def peft_logits(variant):
    adapter = os.path.join(OUT, variant)
    base = BertForSequenceClassification.from_pretrained(MINILM, num_labels=2, attn_implementation="eager")
    pm = PeftModel.from_pretrained(base, adapter).to(torch.float64).eval()
    saved = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    params = dict(pm.named_parameters())
    for key, value in saved.items():
        # PEFT's own name of the tensor in the model: LoRA factors gain the adapter
        # name, modules_to_save copies live under modules_to_save.default
        name = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        name = name.replace("classifier.", "classifier.modules_to_save.default.")
        name = name.replace("bert.pooler.", "bert.pooler.modules_to_save.default.")
        if name not in params:
            sys.exit(f"FAIL: {key}: PEFT has no parameter {name}")
        if not torch.equal(params[name].detach().to(torch.float32), value.to(torch.float32)):
            sys.exit(f"FAIL: {key}: PEFT loaded other values")
    ref = load_file(os.path.join(OUT, "minilm_ref.safetensors"))
    ids, types, mask = (ref[k].to(torch.long) for k in ("input_ids", "token_type_ids", "attention_mask"))
    with torch.no_grad():
        logits = pm(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    save_file({"logits": logits.to(torch.float32).contiguous()},
              os.path.join(OUT, variant + "_logits.safetensors"))
    print(f"{variant}: PEFT loaded {len(saved)} tensors of lorascope's adapter; logits {tuple(logits.shape)}:", logits.tolist())


def main():
    torch.manual_seed(0)
    for name, modules_to_save in VARIANTS:
        with tempfile.TemporaryDirectory() as tmp:
            train(tmp, name, modules_to_save)
        peft_logits(name)


if __name__ == "__main__":
    main()
