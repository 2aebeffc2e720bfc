"""Checks that PEFT loads an adapter lorascope wrote for the tiny BERT classifier
and gets the reference logits.

    /opt/refenv/bin/python tests/reference/check_encoder_adapter.py ADAPTER_DIR

ADAPTER_DIR: what test_encoder's test_peft_bert_adapter_round_trips_through_lorascope
writes (it prints the path): the PEFT adapter tests/data/encoder/peft_bert_tiny
read by lorascope and saved again. PEFT loads it onto
tests/data/encoder/bert_tiny (BertForSequenceClassification); its logits on
the reference batch must equal peft_bert_tiny_logits.safetensors (float64,
|diff| <= 1e-6), and its trainable keys must be PEFT's own.
"""
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification

sys.path.insert(0, os.path.dirname(__file__))
from make_encoder_reference import OUT, tiny_batch  # noqa: E402

from peft import PeftModel  # noqa: E402


def main(adapter_dir):
    base = BertForSequenceClassification.from_pretrained(os.path.join(OUT, "bert_tiny"), attn_implementation="eager")
    pm = PeftModel.from_pretrained(base, adapter_dir).to(torch.float64).eval()
    ids, types, mask, _ = tiny_batch()
    with torch.no_grad():
        logits = pm(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    ref = load_file(os.path.join(OUT, "peft_bert_tiny_logits.safetensors"))["logits"].to(torch.float64)
    diff = (logits - ref).abs().max().item()
    print("PEFT logits from lorascope's adapter:", logits.tolist())
    print("max |diff| vs reference:", diff)
    if not diff <= 1e-6:
        sys.exit("FAIL: logits differ")
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1])
