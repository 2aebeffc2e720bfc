"""References for the encoder family (BERT), from Hugging Face transformers + PEFT.

What it writes (under tests/data/encoder/):

  minilm_ref.safetensors
      all-MiniLM-L6-v2 (../shared/assets) on SENTENCES, tokenized by HF's
      BertTokenizer with padding to the longest: input_ids, token_type_ids,
      attention_mask (B, T) as float32; hidden_2 (output of layer 2 =
      hidden_states[3]) and hidden_last (last_hidden_state), both (B, T, 384);
      a seeded classifier (classifier.weight (2, 384), classifier.bias (2))
      and BertForSequenceClassification's logits (B, 2) with it; mean_pooled
      (B, 384): sentence-transformers' mean pooling of the last hidden states.
      Computed in float64 (the checkpoint's weights converted), stored as float32.
  bert_tiny/{config.json, model.safetensors}
      a tiny random BertForSequenceClassification (d 32, 2 layers, 4 heads,
      intermediate 64, vocab 100, 40 positions, 2 token types, 3 labels),
      keys with the bert. prefix as HF saves them.
  bert_tiny_grads.safetensors
      a padded batch with token types and labels; logits and loss of the
      tiny model; full_grad.<name> = d loss / d every parameter (HF names);
      with LoRA (PEFT, r 4, alpha 8, q and v of both layers, lora_B set to
      seeded values so that every gradient is non-zero, classifier in
      modules_to_save): lora_logits, lora_loss and the gradients of every
      lora_A / lora_B and of the classifier (PEFT names, ".grad" appended).
      float64 compute.
  roberta_tiny/{config.json, model.safetensors}, roberta_tiny_grads.safetensors
      the same for a tiny RobertaForSequenceClassification (pad_token_id 1,
      so positions start at 2; its head is classifier.dense + out_proj on <s>):
      batch, logits, loss and full_grad.<name> of every parameter.

  peft_bert_tiny/{adapter_config.json, adapter_model.safetensors}, peft_bert_tiny_logits.safetensors
      a PEFT adapter of the tiny BERT (q, v, r 4, alpha 8, seeded lora_B and
      classifier in modules_to_save) as PEFT saves it, and its logits on the
      tiny batch.

Check that PEFT loads an adapter lorascope wrote (tests/reference/check_encoder_adapter.py).

Run from the repository root:  /opt/refenv/bin/python tests/reference/make_encoder_reference.py
Deterministic: fixed seeds, CPU, float64.
"""

import os
import sys

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ASSETS = os.environ.get("LORASCOPE_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
MINILM = os.path.join(ASSETS, "models", "all-MiniLM-L6-v2")
OUT = os.path.join(ROOT, "tests", "data", "encoder")
DT = torch.float64

SENTENCES = [
    "A gripping, beautifully shot film.",
    "it 's a charming and often affecting journey .",
    "Dull.",
    "The plot wanders, the jokes fall flat, and the two leads never find a rhythm together.",
]


def minilm_reference():
    tok = BertTokenizer.from_pretrained(MINILM)
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    model = BertModel.from_pretrained(MINILM, attn_implementation="eager").to(DT).eval()
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    # sentence-transformers' mean pooling (1_Pooling/config.json: pooling_mode_mean_tokens)
    m = enc["attention_mask"].unsqueeze(-1).to(DT)
    mean_pooled = (out.last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)
    torch.manual_seed(7)
    cls = BertForSequenceClassification.from_pretrained(MINILM, num_labels=2,
                                                        attn_implementation="eager").to(DT).eval()
    with torch.no_grad():
        cls.classifier.weight.normal_(0.0, 0.02)
        cls.classifier.bias.normal_(0.0, 0.02)
        logits = cls(**enc).logits
    f = lambda x: x.detach().to(torch.float32).contiguous()
    save_file({
        "input_ids": f(enc["input_ids"]), "token_type_ids": f(enc["token_type_ids"]),
        "attention_mask": f(enc["attention_mask"]),
        "hidden_2": f(out.hidden_states[3]), "hidden_last": f(out.last_hidden_state),
        "classifier.weight": f(cls.classifier.weight), "classifier.bias": f(cls.classifier.bias),
        "logits": f(logits), "mean_pooled": f(mean_pooled),
    }, os.path.join(OUT, "minilm_ref.safetensors"))
    print("minilm: ids", enc["input_ids"].shape, "logits", logits)


def tiny_model():
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=40, type_vocab_size=2,
                     num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(1)
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # non-trivial norms and biases, so their gradients and roles are tested
        for n, p in model.named_parameters():
            if "LayerNorm" in n or n.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(OUT, "bert_tiny")
    model.save_pretrained(d, safe_serialization=True)
    return d


def tiny_batch():
    g = torch.Generator().manual_seed(3)
    B, T = 3, 9
    ids = torch.randint(5, 100, (B, T), generator=g)
    lengths = [9, 6, 4]
    mask = torch.zeros(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        ids[b, 0] = 2
        ids[b, n:] = 0
        types[b, n // 2:n] = 1
    labels = torch.tensor([2, 0, 1])
    return ids, types, mask, labels


def tiny_grads(d):
    from peft import LoraConfig, TaskType, get_peft_model
    ids, types, mask, labels = tiny_batch()
    f = lambda x: x.detach().to(torch.float32).contiguous()
    out = {"input_ids": f(ids), "token_type_ids": f(types), "attention_mask": f(mask), "labels": f(labels)}
    model = BertForSequenceClassification.from_pretrained(d, attn_implementation="eager").to(DT)
    model.eval()
    res = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    res.loss.backward()
    out["logits"], out["loss"] = f(res.logits), f(res.loss.reshape(1))
    for n, p in model.named_parameters():
        out["full_grad." + n] = f(p.grad)
    model.zero_grad()
    lcfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=["query", "value"],
                      lora_dropout=0.0)
    pm = get_peft_model(model, lcfg)
    torch.manual_seed(5)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.1)
    pm.eval()
    res = pm(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    res.loss.backward()
    out["lora_logits"], out["lora_loss"] = f(res.logits), f(res.loss.reshape(1))
    for n, p in pm.named_parameters():
        if p.requires_grad:
            out[n] = f(p)
            out[n + ".grad"] = f(p.grad)
    save_file(out, os.path.join(OUT, "bert_tiny_grads.safetensors"))
    print("tiny: loss", res.loss.item(), "trainable", [n for n, p in pm.named_parameters() if p.requires_grad])


def peft_adapter(d):
    from peft import LoraConfig, TaskType, get_peft_model
    ids, types, mask, _ = tiny_batch()
    model = BertForSequenceClassification.from_pretrained(d, attn_implementation="eager")
    pm = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8,
                                          target_modules=["query", "value"], lora_dropout=0.0))
    torch.manual_seed(9)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n or "modules_to_save" in n:
                p.normal_(0.0, 0.2)
    pm.peft_config["default"].base_model_name_or_path = "bert_tiny"  # not this machine's path
    pm.save_pretrained(os.path.join(OUT, "peft_bert_tiny"))
    os.remove(os.path.join(OUT, "peft_bert_tiny", "README.md"))  # PEFT's model card, not a fixture
    pm = pm.to(DT).eval()
    with torch.no_grad():
        logits = pm(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    save_file({"logits": logits.to(torch.float32).contiguous()},
              os.path.join(OUT, "peft_bert_tiny_logits.safetensors"))
    print("peft adapter logits", logits)


def roberta_tiny():
    from transformers import RobertaConfig, RobertaForSequenceClassification
    cfg = RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, type_vocab_size=1,
                        num_labels=2, pad_token_id=1, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    torch.manual_seed(11)
    model = RobertaForSequenceClassification(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "LayerNorm" in n or n.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    d = os.path.join(OUT, "roberta_tiny")
    model.save_pretrained(d, safe_serialization=True)
    ids, _, mask, labels = tiny_batch()
    ids = torch.where(mask.bool(), ids, torch.ones_like(ids))  # RoBERTa pads with id 1
    types = torch.zeros_like(ids)
    labels = labels % 2
    model = RobertaForSequenceClassification.from_pretrained(d, attn_implementation="eager").to(DT).eval()
    res = model(input_ids=ids, attention_mask=mask, labels=labels)
    res.loss.backward()
    f = lambda x: x.detach().to(torch.float32).contiguous()
    out = {"input_ids": f(ids), "token_type_ids": f(types), "attention_mask": f(mask), "labels": f(labels),
           "logits": f(res.logits), "loss": f(res.loss.reshape(1))}
    for n, p in model.named_parameters():
        out["full_grad." + n] = f(p.grad)
    save_file(out, os.path.join(OUT, "roberta_tiny_grads.safetensors"))
    print("roberta tiny: loss", res.loss.item())


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT writes target_modules from a set
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))
    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(True)
    minilm_reference()
    d = tiny_model()
    tiny_grads(d)
    peft_adapter(d)
    roberta_tiny()
