"""One training step of the paper's baselines (Tables 2, 3), from transformers.

What it writes (under tests/data/methods/; keys in tests/reference/README.md):

  gpt2_tiny3/{config.json, model.safetensors}
      a tiny random GPT2LMHeadModel (d 32, 3 layers, 4 heads, vocab 256,
      64 positions): three layers, so that FT^Top2 leaves layer 0 frozen.
  bert_tiny3/{config.json, model.safetensors}
      a tiny random BertForSequenceClassification (d 32, 3 layers, 4 heads,
      intermediate 64, vocab 100, 40 positions, 3 labels).
  methods_ref.safetensors
      gpt2.tokens, gpt2.targets (B, T); bert.input_ids, bert.attention_mask
      (B, T, right padding), bert.labels (B); for each model and method
      (bitfit, fttop2):
        <model>.<method>.loss             the mean cross-entropy
        <model>.<method>.grad.<name>      d loss / d every trainable tensor
        <model>.<method>.after.<name>     that tensor after one AdamW step
      names are the checkpoints' (= lorascope's canonical names); GPT-2's
      Conv1D weights are stored transposed, (out, in), as lorascope holds them.
      For adapter-h and adapter-l also
        <model>.<method>.init.<name>      the adapters' tensors before the step
      with the adapters' names in lorascope's adapters/model.safetensors:
      <layer prefix>.<l>.adapter_{attn,mlp}.{down,up}.{weight,bias}.
      For prefix-layer the one tensor is PEFT's prompt_embeddings
      (l_p, 2 L C): gpt2.prefix-layer.{init,grad,after}.prompt_embeddings;
      llama.prefix-layer.* the same on the Llama (l_p, 2 L NKV HS).
      For prefix-embed likewise PEFT's prompt_embeddings (l_p, C):
      gpt2.prefix-embed.{init,grad,after}.prompt_embeddings, gpt2.prefix-embed.loss;
      on the BERT classifier (SEQ_CLS) also its classifier, trained beside them:
      bert.prefix-embed.{grad,after}.{prompt_embeddings,classifier.weight,
      classifier.bias}, bert.prefix-embed.init.prompt_embeddings, bert.prefix-embed.loss;
      and PEFT's prefix tuning of the BERT classifier likewise,
      bert.prefix-layer.{init,grad,after}.prompt_embeddings ((l_p, 2 L C),
      generator seed 27), bert.prefix-layer.{grad,after}.classifier.{weight,
      bias}, bert.prefix-layer.loss (transformers 5 names BERT's cache
      argument `cache`: a subclass that only renames it lets PEFT run).
  llama_tiny3/{config.json, model.safetensors}
      a tiny random LlamaForCausalLM (d 32, 3 layers, 4 query / 2 key-value
      heads, intermediate 64, vocab 256, 64 positions, untied head), with
      llama.tokens, llama.targets and adapter-h, adapter-l, prefix-layer as
      above (adapters after self_attn.o_proj and mlp.down_proj, GELU tanh:
      Llama has no adapters of its own; the paper's were on GPT-2).

The methods, as PyTorch users set requires_grad:
  bitfit  every parameter whose name ends in "bias" (linear and LayerNorm
          biases; Ben Zaken et al. 2021) and, for the classifier, the
          classifier (PEFT's modules_to_save);
  fttop2  every parameter of the last two layers (transformer.h.{1,2},
          bert.encoder.layer.{1,2}) and the classifier.
  adapter-h, adapter-l  bottleneck adapters (Houlsby et al. 2019; Lin et al.
          2020), written here independently of lorascope's engine as forward
          hooks: the output y of a sublayer's output projection (GPT-2:
          attn.c_proj, mlp.c_proj; BERT: attention.output.dense, output.dense)
          becomes y + up(act(down(y))), before the dropout and the residual
          add (and BERT's LayerNorm); act = GELU (GPT-2: tanh approximation,
          BERT: erf); r = 4; adapter-h on both sublayers of every layer,
          adapter-l only after the MLP. The base is frozen; the adapters (and
          BERT's classifier) train. Their initial tensors are drawn N(0, 0.1^2)
          (up nonzero, so that every gradient is nonzero).
  prefix-layer  PEFT's PREFIX_TUNING (prefix_projection false) on the GPT-2,
          l_p = 3 virtual tokens, their embedding drawn N(0, 0.5^2); the loss
          through PeftModelForCausalLM (the prefix as past_key_values, the
          real tokens at positions l_p..), one AdamW step of the embedding
          (decayed: it is neither a bias nor a LayerNorm weight).
  prefix-embed  PEFT's PROMPT_TUNING (prompt_tuning_init RANDOM) on the GPT-2,
          l_p = 3 virtual tokens, their embedding drawn N(0, 0.5^2) (own
          generator, seed 25); PeftModelForCausalLM concatenates them before
          the real tokens' word embeddings (inputs_embeds), so they take
          positions 0..l_p-1 and the real tokens l_p..; the loss on the real
          tokens' logits only, one AdamW step of the embedding (decayed).
The step: torch.optim.AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-3, weight decay
0.01 on matrices, 0 on biases and LayerNorm weights as HF Trainer groups
them), no clipping.  eps 1e-3 keeps the update smooth in the gradient, so
that float32 rounding of a near-zero gradient cannot flip its sign's effect.

Run from the repository root:  /opt/refenv/bin/python tests/reference/make_methods_reference.py
Deterministic: fixed seeds, CPU, float64 compute, float32 storage.
"""

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "methods")
DT = torch.float64
B, T = 3, 12
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-3, 0.01
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def trainable(name, method, top_prefixes):
    if name.startswith("classifier."):
        return True
    if method == "bitfit":
        return name.endswith("bias")
    return any(name.startswith(p) for p in top_prefixes)


def no_decay(name):
    return name.endswith("bias") or "LayerNorm" in name or ".ln_" in name


def engine_layout(name, t):
    return t.t() if name.endswith(CONV1D) else t


def step(model, method, top_prefixes, loss_fn, tag, out):
    """Gradients of the trainable tensors, then one AdamW step; records both."""
    params = dict(model.named_parameters())
    train = [n for n in params if trainable(n, method, top_prefixes)]
    for n, p in params.items():
        p.requires_grad_(n in train)
    before = {n: p.detach().clone() for n, p in params.items()}
    loss = loss_fn()
    loss.backward()
    out[f"{tag}.{method}.loss"] = loss.detach().reshape(1).float()
    for n in train:
        out[f"{tag}.{method}.grad.{n}"] = engine_layout(n, params[n].grad).float().contiguous()
    groups = [{"params": [params[n] for n in train if not no_decay(n)], "weight_decay": WD},
              {"params": [params[n] for n in train if no_decay(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=False)
    opt.step()
    for n in train:
        out[f"{tag}.{method}.after.{n}"] = engine_layout(n, params[n].detach()).float().contiguous()
    with torch.no_grad():  # restore for the next method
        for n, p in params.items():
            p.copy_(before[n])
            p.grad = None
    return train


ADAPTER_R = 4


class Bottleneck(torch.nn.Module):
    """y -> y + up(act(down(y)))."""

    def __init__(self, C, r, act, g):
        super().__init__()
        self.down, self.up, self.act = torch.nn.Linear(C, r), torch.nn.Linear(r, C), act
        with torch.no_grad():
            for p in (self.down.weight, self.down.bias, self.up.weight, self.up.bias):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)

    def forward(self, y):
        return y + self.up(self.act(self.down(y)))


def adapter_step(model, method, prefix, sublayers, act, loss_fn, tag, out):
    """Attaches adapters to the sublayers' output projections by forward hooks,
    takes one step of them (and of the classifier), records, detaches."""
    C, L = model.config.hidden_size, model.config.num_hidden_layers
    slots = (("attn", sublayers[0]), ("mlp", sublayers[1])) if method == "adapter-h" else (("mlp", sublayers[1]),)
    g = torch.Generator().manual_seed(21 if method == "adapter-h" else 22)
    adapters, hooks = {}, []
    for layer in range(L):
        for slot, path in slots:
            a = Bottleneck(C, ADAPTER_R, act, g).to(DT)
            adapters[f"{prefix}.{layer}.adapter_{slot}"] = a
            proj = model.get_submodule(f"{prefix}.{layer}.{path}")
            hooks.append(proj.register_forward_hook(lambda mod, inp, y, a=a: a(y)))
    params = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    for n, p in params.items():
        p.requires_grad_(n.startswith("classifier."))
    train = {n: p for n, p in params.items() if p.requires_grad}
    for name, a in adapters.items():
        for n, p in a.named_parameters():
            train[f"{name}.{n}"] = p
            out[f"{tag}.{method}.init.{name}.{n}"] = p.detach().float().contiguous()
    loss = loss_fn()
    loss.backward()
    out[f"{tag}.{method}.loss"] = loss.detach().reshape(1).float()
    for n, p in train.items():
        out[f"{tag}.{method}.grad.{n}"] = p.grad.float().contiguous()
    groups = [{"params": [p for n, p in train.items() if not no_decay(n)], "weight_decay": WD},
              {"params": [p for n, p in train.items() if no_decay(n)], "weight_decay": 0.0}]
    torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=False).step()
    for n, p in train.items():
        out[f"{tag}.{method}.after.{n}"] = p.detach().float().contiguous()
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for n, p in params.items():
            assert n in train or torch.equal(p, before[n]), n  # the base is frozen
            p.copy_(before[n])
            p.grad = None


def prefix_step(model, tokens, targets, out, tag="gpt2", seed=23):
    """One step of PEFT's prefix tuning (l_p = 3) on a copy of the model."""
    import copy

    from peft import PrefixTuningConfig, get_peft_model

    pm = get_peft_model(copy.deepcopy(model).float(), PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    pm = pm.to(DT)
    emb = pm.prompt_encoder["default"].embedding.weight
    with torch.no_grad():
        emb.copy_(torch.randn(emb.shape, generator=torch.Generator().manual_seed(seed), dtype=DT) * 0.5)
    out[f"{tag}.prefix-layer.init.prompt_embeddings"] = emb.detach().float().contiguous()
    logits = pm(input_ids=tokens).logits
    loss = F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1))
    loss.backward()
    out[f"{tag}.prefix-layer.loss"] = loss.detach().reshape(1).float()
    out[f"{tag}.prefix-layer.grad.prompt_embeddings"] = emb.grad.float().contiguous()
    torch.optim.AdamW([emb], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, foreach=False).step()
    out[f"{tag}.prefix-layer.after.prompt_embeddings"] = emb.detach().float().contiguous()


def prompt_step(model, tokens, targets, out):
    """One step of PEFT's prompt tuning (l_p = 3) on a copy of the model."""
    import copy

    from peft import PromptTuningConfig, get_peft_model

    pm = get_peft_model(copy.deepcopy(model).float(), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    pm = pm.to(DT)
    emb = pm.prompt_encoder["default"].embedding.weight
    assert tuple(emb.shape) == (3, 32), emb.shape
    with torch.no_grad():
        emb.copy_(torch.randn(emb.shape, generator=torch.Generator().manual_seed(25), dtype=DT) * 0.5)
    out["gpt2.prefix-embed.init.prompt_embeddings"] = emb.detach().float().contiguous()
    logits = pm(input_ids=tokens).logits
    assert logits.shape[1] == 3 + tokens.shape[1], logits.shape  # the virtual tokens' logits come first
    loss = F.cross_entropy(logits[:, 3:].reshape(-1, 256), targets.reshape(-1))
    loss.backward()
    for n, p in pm.named_parameters():
        assert p.grad is None or n.endswith("embedding.weight"), n  # the base is frozen
    out["gpt2.prefix-embed.loss"] = loss.detach().reshape(1).float()
    out["gpt2.prefix-embed.grad.prompt_embeddings"] = emb.grad.float().contiguous()
    torch.optim.AdamW([emb], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, foreach=False).step()
    out["gpt2.prefix-embed.after.prompt_embeddings"] = emb.detach().float().contiguous()


def seq_cls_step(pm, emb, method, seed, ids, mask, labels, out):
    """One step of PEFT prompt learning `method` on the tiny BERT classifier
    pm (SEQ_CLS): the prompt embedding emb drawn N(0, 0.5^2) (generator seed),
    the classifier trained beside it (PEFT's modules_to_save for SEQ_CLS), the
    base frozen; records bert.<method>.{init,loss,grad,after}."""
    with torch.no_grad():
        emb.copy_(torch.randn(emb.shape, generator=torch.Generator().manual_seed(seed), dtype=DT) * 0.5)
    out[f"bert.{method}.init.prompt_embeddings"] = emb.detach().float().contiguous()
    logits = pm(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    train = {"prompt_embeddings": emb}
    for n, p in pm.named_parameters():
        if p.grad is None:
            continue
        if "classifier" in n:
            train["classifier." + n.split(".")[-1]] = p
        else:
            assert n.endswith("embedding.weight"), n  # the base is frozen
    assert len(train) == 3, list(train)
    out[f"bert.{method}.loss"] = loss.detach().reshape(1).float()
    for n, p in train.items():
        out[f"bert.{method}.grad.{n}"] = p.grad.float().contiguous()
    groups = [{"params": [p for n, p in train.items() if not no_decay(n)], "weight_decay": WD},
              {"params": [p for n, p in train.items() if no_decay(n)], "weight_decay": 0.0}]
    torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=False).step()
    for n, p in train.items():
        out[f"bert.{method}.after.{n}"] = p.detach().float().contiguous()


def bert_prompt_step(model, ids, mask, labels, out):
    """PEFT's prompt tuning (l_p = 3) of the tiny BERT classifier:
    PeftModelForSequenceClassification prepends the virtual tokens to the word
    embeddings (mask 1, token type 0, positions 0..l_p+T-1), the pooler reads
    position 0, the first virtual token."""
    import copy

    from peft import PromptTuningConfig, get_peft_model

    pm = get_peft_model(copy.deepcopy(model).float(), PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=3))
    pm = pm.to(DT)
    emb = pm.prompt_encoder["default"].embedding.weight
    assert tuple(emb.shape) == (3, 32), emb.shape
    seq_cls_step(pm, emb, "prefix-embed", 26, ids, mask, labels, out)


class _BertWithPastKeyValues(BertForSequenceClassification):
    """transformers 5 calls BERT's cache argument `cache`; PEFT's prefix tuning
    looks for `past_key_values` in the forward's signature and refuses a model
    without it. This only renames the argument: the cache then goes where
    transformers puts it (each layer's keys and values after the cache's,
    position ids offset by its length)."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, past_key_values=None, **kwargs):
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, inputs_embeds=inputs_embeds, labels=labels,
                               cache=past_key_values, **kwargs)


def bert_prefix_step(model, ids, mask, labels, out):
    """PEFT's prefix tuning (l_p = 3) of the tiny BERT classifier:
    PeftModelForSequenceClassification passes the prefix as the cache (every
    query attends to its l_p keys and values, mask 1) and the real tokens sit
    at positions l_p..; the pooler reads [CLS]."""
    from peft import PrefixTuningConfig, get_peft_model

    shim = _BertWithPastKeyValues(model.config)
    shim.load_state_dict(model.state_dict())
    pm = get_peft_model(shim.float().eval(), PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=3))
    pm = pm.to(DT)
    emb = pm.prompt_encoder["default"].embedding.weight
    assert tuple(emb.shape) == (3, 2 * 3 * 32), emb.shape
    seq_cls_step(pm, emb, "prefix-layer", 27, ids, mask, labels, out)


def gpt2_case(out):
    torch.manual_seed(11)
    cfg = GPT2Config(vocab_size=256, n_positions=64, n_embd=32, n_layer=3, n_head=4,
                     activation_function="gelu_new", bos_token_id=255, eos_token_id=255, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # non-zero biases and LayerNorm parameters, so that every path counts
        for n, p in model.named_parameters():
            if n.endswith("bias") or ".ln_" in n:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(os.path.join(OUT, "gpt2_tiny3"))
    model = model.to(DT)
    g = torch.Generator().manual_seed(5)
    seq = torch.randint(0, 256, (B, T + 1), generator=g)
    tokens, targets = seq[:, :T].contiguous(), seq[:, 1:].contiguous()
    out["gpt2.tokens"] = tokens.float()
    out["gpt2.targets"] = targets.float()

    def loss_fn():
        logits = model(input_ids=tokens).logits
        return F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1))

    for method in ("bitfit", "fttop2"):
        step(model, method, ("transformer.h.1.", "transformer.h.2."), loss_fn, "gpt2", out)
    for method in ("adapter-h", "adapter-l"):
        adapter_step(model, method, "transformer.h", ("attn.c_proj", "mlp.c_proj"),
                     lambda x: F.gelu(x, approximate="tanh"), loss_fn, "gpt2", out)
    prefix_step(model, tokens, targets, out)
    prompt_step(model, tokens, targets, out)


def bert_case(out):
    torch.manual_seed(12)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=40, type_vocab_size=2, num_labels=3,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, hidden_act="gelu")
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias") or "LayerNorm" in n:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(os.path.join(OUT, "bert_tiny3"))
    model = model.to(DT)
    g = torch.Generator().manual_seed(6)
    ids = torch.randint(1, 100, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    for b, keep in enumerate((T, T - 3, 5)):
        mask[b, keep:] = 0
        ids[b, keep:] = 0
    labels = torch.tensor([0, 2, 1])
    out["bert.input_ids"] = ids.float()
    out["bert.attention_mask"] = mask.float()
    out["bert.labels"] = labels.float()

    def loss_fn():
        logits = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
        return F.cross_entropy(logits, labels)

    for method in ("bitfit", "fttop2"):
        step(model, method, ("bert.encoder.layer.1.", "bert.encoder.layer.2."), loss_fn, "bert", out)
    for method in ("adapter-h", "adapter-l"):
        adapter_step(model, method, "bert.encoder.layer", ("attention.output.dense", "output.dense"), F.gelu,
                     loss_fn, "bert", out)
    bert_prompt_step(model, ids, mask, labels, out)
    bert_prefix_step(model, ids, mask, labels, out)


def llama_case(out):
    torch.manual_seed(13)
    cfg = LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # RMSNorm weights away from 1, so that every path counts
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(os.path.join(OUT, "llama_tiny3"))
    model = model.to(DT)
    g = torch.Generator().manual_seed(7)
    seq = torch.randint(0, 256, (B, T + 1), generator=g)
    tokens, targets = seq[:, :T].contiguous(), seq[:, 1:].contiguous()
    out["llama.tokens"] = tokens.float()
    out["llama.targets"] = targets.float()

    def loss_fn():
        logits = model(input_ids=tokens).logits
        return F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1))

    for method in ("adapter-h", "adapter-l"):
        adapter_step(model, method, "model.layers", ("self_attn.o_proj", "mlp.down_proj"),
                     lambda x: F.gelu(x, approximate="tanh"), loss_fn, "llama", out)
    prefix_step(model, tokens, targets, out, "llama", 24)


def main():
    os.makedirs(OUT, exist_ok=True)
    out = {}
    gpt2_case(out)
    bert_case(out)
    llama_case(out)
    save_file(out, os.path.join(OUT, "methods_ref.safetensors"))
    print(f"wrote {len(out)} tensors to {OUT}")


if __name__ == "__main__":
    main()
