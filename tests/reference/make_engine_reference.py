"""Forward/backward references for the C engine, from an independent torch model.

What it writes (under tests/data/engine/, every key and shape is listed in
tests/reference/README.md):

  stories260k_lora_ref.safetensors
      stories260K (llama2.c checkpoint from ../shared/assets) with LoRA on
      q and v of every layer (r=4, alpha=8, s=alpha/r=2): tokens, targets,
      LoRA A/B (PEFT key names), logits, loss, loss_base, d loss/d A and
      d loss/d B, and full-parameter gradients of loss_base for a few base
      weights.
  gpt2_tiny_lora_ref.safetensors
      the same kinds of entries for the tiny GPT-2 of
      tests/data/peft/gpt2_tiny/base (LoRA on the fused c_attn).

The forward passes are written here in plain torch (no transformers), in
float64, from the file formats alone.  They are validated before anything
is written:
  * stories260K: greedy decoding of every prompt in
    ../shared/assets/models/stories260K/reference_greedy.tsv (llama2.c's
    run.c output) must match exactly, text and so tokens; logits, loss and
    LoRA gradients must agree with transformers' LlamaForCausalLM + PEFT on
    the same weights (q/k rows permuted to HF's RoPE layout).
  * gpt2: logits must agree with transformers' GPT2LMHeadModel (max abs
    diff < 1e-4), and LoRA logits, loss and gradients with PEFT.
  * both: float64 central finite differences on a few LoRA and base entries.

Run from the repository root, after make_peft_adapters.py (it reads the
GPT-2 base written there):

    PYTHONPATH=/opt/peftenv /usr/bin/python3 tests/reference/make_engine_reference.py

Needs ../shared/assets (or LORASCOPE_ASSETS=<dir>).  Deterministic: fixed
seeds, CPU, float64 compute; outputs are stored as float32.
"""

import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ASSETS = os.environ.get("LORASCOPE_ASSETS",
                        os.path.join(ROOT, "..", "shared", "assets"))
OUT = os.path.join(ROOT, "tests", "data", "engine")
GPT2_BASE = os.path.join(ROOT, "tests", "data", "peft", "gpt2_tiny", "base")

B, T = 2, 32          # reference batch
R, ALPHA = 4, 8.0     # LoRA rank and alpha; scale s = ALPHA / R
SCALE = ALPHA / R
DT = torch.float64


def seeded_batch(seed, vocab):
    """(tokens, targets): a seeded (B, T+1) id sequence, shifted by one."""
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, vocab, (B, T + 1), generator=g)
    return seq[:, :T].contiguous(), seq[:, 1:].contiguous()


def seeded_lora(seed, shapes, std):
    """A (r, in), B (out, r) ~ N(0, std) in float64, in the order of `shapes`."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, (d_out, d_in) in shapes:
        a = torch.randn((R, d_in), generator=g, dtype=DT) * std
        b = torch.randn((d_out, R), generator=g, dtype=DT) * std
        out[key + ".lora_A.weight"] = a
        out[key + ".lora_B.weight"] = b
    return out


def cross_entropy(logits, targets):
    """Mean over all B*T positions of -log softmax(logits)[target]."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           targets.reshape(-1), reduction="mean")


def lora_linear(x, w, lora, key):
    """y = x W^T + s (x A^T) B^T, W (out, in); `lora` may be None."""
    y = x @ w.t()
    if lora is not None and key + ".lora_A.weight" in lora:
        a = lora[key + ".lora_A.weight"]
        b = lora[key + ".lora_B.weight"]
        y = y + SCALE * ((x @ a.t()) @ b.t())
    return y


def causal_attention(q, k, v, n_heads, n_kv_heads):
    """q (B,T,H,hs), k/v (B,T,KV,hs) -> (B,T,H*hs); GQA: head h uses kv h // (H/KV)."""
    bsz, t, _, hs = q.shape
    rep = n_heads // n_kv_heads
    k = k.repeat_interleave(rep, dim=2)
    v = v.repeat_interleave(rep, dim=2)
    q, k, v = (z.transpose(1, 2) for z in (q, k, v))          # (B,H,T,hs)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    return (att @ v).transpose(1, 2).reshape(bsz, t, n_heads * hs)


def finite_diff_check(loss_fn, tensors, picks, what, tol=1e-6):
    """Compare autograd grads of loss_fn() with float64 central differences."""
    loss = loss_fn()
    grads = torch.autograd.grad(loss, [tensors[k] for k, _ in picks])
    h = 1e-6
    for (k, idx), g in zip(picks, grads):
        t = tensors[k]
        with torch.no_grad():
            old = t[idx].item()
            t[idx] = old + h
            lp = loss_fn().item()
            t[idx] = old - h
            lm = loss_fn().item()
            t[idx] = old
        fd = (lp - lm) / (2 * h)
        an = g[idx].item()
        err = abs(fd - an) / max(1e-3, abs(an))
        assert err < tol, f"{what}: finite diff {k}{idx}: fd {fd} autograd {an}"


def save_ref(tensors, path, meta):
    """safetensors with one metadata entry, "info": a sorted JSON object.

    (safetensors orders several metadata entries by a randomly seeded hash
    map, which would make the file bytes differ from run to run.)
    """
    save_file(tensors, path, metadata={"info": json.dumps(meta, sort_keys=True)})


def f32(t):
    return t.detach().to(torch.float32).contiguous()


# ----------------------------------------------------------------------------
# stories260K (llama2.c format)

def read_llama2c(path):
    """Header + weights of a llama2.c v0 checkpoint, as float64 tensors."""
    with open(path, "rb") as f:
        dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("7i", f.read(28))
        shared = vocab > 0
        vocab = abs(vocab)
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    kv_dim = dim * n_kv // n_heads
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads,
               n_kv_heads=n_kv, vocab=vocab, seq_len=seq_len, kv_dim=kv_dim)
    off = 0

    def take(*shape):
        nonlocal off
        n = 1
        for s in shape:
            n *= s
        t = data[off:off + n].reshape(shape).to(DT).clone()
        off += n
        return t

    w = {}
    w["tok"] = take(vocab, dim)
    w["rms_att"] = take(n_layers, dim)
    w["wq"] = take(n_layers, dim, dim)
    w["wk"] = take(n_layers, kv_dim, dim)
    w["wv"] = take(n_layers, kv_dim, dim)
    w["wo"] = take(n_layers, dim, dim)
    w["rms_ffn"] = take(n_layers, dim)
    w["w1"] = take(n_layers, hidden, dim)
    w["w2"] = take(n_layers, dim, hidden)
    w["w3"] = take(n_layers, hidden, dim)
    w["rms_final"] = take(dim)
    head_size = dim // n_heads
    rest = data.numel() - off
    assert rest == seq_len * head_size, (rest, seq_len * head_size)  # freq_cis real+imag
    assert shared
    return cfg, w


def rmsnorm_l2c(x, g, eps=1e-5):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * g


def rope_l2c(x, n_heads, head_size, pos0=0):
    """llama2.c RoPE: pairs (x[2j], x[2j+1]) of each head rotated by pos*theta^(-2j/hs)."""
    bsz, t, _ = x.shape
    x = x.reshape(bsz, t, n_heads, head_size // 2, 2)
    i = torch.arange(0, head_size, 2, dtype=DT)
    freq = 1.0 / (10000.0 ** (i / head_size))
    pos = torch.arange(pos0, pos0 + t, dtype=DT)
    ang = pos[:, None] * freq[None, :]                          # (T, hs/2)
    c = torch.cos(ang)[None, :, None, :]
    s = torch.sin(ang)[None, :, None, :]
    x0, x1 = x[..., 0], x[..., 1]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return out.reshape(bsz, t, n_heads * head_size)


def stories_forward(cfg, w, tokens, lora=None):
    """logits (B,T,V) of the llama2.c model; LoRA keys are PEFT's module paths."""
    nh, nkv, dim = cfg["n_heads"], cfg["n_kv_heads"], cfg["dim"]
    hs = dim // nh
    bsz, t = tokens.shape
    x = w["tok"][tokens]
    for l in range(cfg["n_layers"]):
        p = f"base_model.model.model.layers.{l}.self_attn."
        h = rmsnorm_l2c(x, w["rms_att"][l])
        q = lora_linear(h, w["wq"][l], lora, p + "q_proj")
        k = lora_linear(h, w["wk"][l], None, p + "k_proj")
        v = lora_linear(h, w["wv"][l], lora, p + "v_proj")
        q = rope_l2c(q, nh, hs)
        k = rope_l2c(k, nkv, hs)
        a = causal_attention(q.reshape(bsz, t, nh, hs), k.reshape(bsz, t, nkv, hs),
                             v.reshape(bsz, t, nkv, hs), nh, nkv)
        x = x + a @ w["wo"][l].t()
        h = rmsnorm_l2c(x, w["rms_ffn"][l])
        x = x + (F.silu(h @ w["w1"][l].t()) * (h @ w["w3"][l].t())) @ w["w2"][l].t()
    x = rmsnorm_l2c(x, w["rms_final"])
    return x @ w["tok"].t()


# ---- llama2.c tokenizer (tok512.bin), only to validate against run.c -------

def read_tokenizer(path, vocab_size):
    vocab, scores = [], []
    with open(path, "rb") as f:
        (max_len,) = struct.unpack("i", f.read(4))
        for _ in range(vocab_size):
            score, n = struct.unpack("fi", f.read(8))
            vocab.append(f.read(n))
            scores.append(score)
    return vocab, scores


def encode_l2c(text, vocab, scores):
    """llama2.c encode(text, bos=1, eos=0)."""
    lookup = {piece: i for i, piece in enumerate(vocab)}
    ids = [1]
    if text:
        ids.append(lookup[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup:
            ids.append(lookup[b])
        else:
            ids.extend(x + 3 for x in b)
    body = ids[1:]
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for i in range(len(body) - 1):
            j = lookup.get(vocab[body[i]] + vocab[body[i + 1]])
            if j is not None and scores[j] > best:
                best, best_id, best_i = scores[j], j, i
        if best_i < 0:
            break
        body[best_i:best_i + 2] = [best_id]
    return [1] + body


def decode_piece(prev, tok, vocab):
    piece = vocab[tok]
    if prev == 1 and piece.startswith(b" "):
        piece = piece[1:]
    if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
        piece = bytes([int(piece[3:5], 16)])
    # run.c's safe_printf drops single non-printable, non-space bytes
    if len(piece) == 1 and not (32 <= piece[0] < 127 or piece[0] in b" \t\n\r\x0b\x0c") \
            and piece[0] < 128:
        return b""
    return piece


def greedy_l2c(cfg, w, vocab, scores, prompt, steps=120):
    prompt_ids = encode_l2c(prompt, vocab, scores)
    seq = [prompt_ids[0]]
    out = b""
    token = seq[0]
    for pos in range(steps):
        if pos < len(prompt_ids) - 1:
            nxt = prompt_ids[pos + 1]
        else:
            with torch.no_grad():
                logits = stories_forward(cfg, w, torch.tensor([seq]))
            nxt = int(logits[0, -1].argmax())
        if nxt == 1:
            break
        out += decode_piece(token, nxt, vocab)
        seq.append(nxt)
        token = nxt
    return out.decode("utf-8", errors="replace"), seq


def validate_stories_greedy(cfg, w):
    d = os.path.join(ASSETS, "models", "stories260K")
    vocab, scores = read_tokenizer(os.path.join(d, "tok512.bin"), cfg["vocab"])
    n = 0
    with open(os.path.join(d, "reference_greedy.tsv"), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            prompt, expected = line.rstrip("\n").split("\t", 1)
            expected = json.loads(expected)
            got, seq = greedy_l2c(cfg, w, vocab, scores, prompt)
            assert got == expected, f"greedy mismatch for {prompt!r}:\n{got!r}\n{expected!r}"
            n += 1
            print(f"  greedy ok: {prompt!r} ({len(seq) - 1} tokens after BOS)", file=sys.stderr)
    assert n >= 1


def hf_permute(w, n_heads):
    """llama2.c row order -> HF rotate_half order (transformers' convert script)."""
    d1, d2 = w.shape
    return w.view(n_heads, d1 // n_heads // 2, 2, d2).transpose(1, 2).reshape(d1, d2)


def crosscheck_stories_hf(cfg, w, tokens, targets, lora, logits_mine, loss_mine, grads_mine):
    """Same weights in transformers' LlamaForCausalLM + PEFT (float32)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    nh, nkv = cfg["n_heads"], cfg["n_kv_heads"]
    hcfg = LlamaConfig(hidden_size=cfg["dim"], intermediate_size=cfg["hidden"],
                       num_hidden_layers=cfg["n_layers"], num_attention_heads=nh,
                       num_key_value_heads=nkv, vocab_size=cfg["vocab"],
                       max_position_embeddings=cfg["seq_len"], rms_norm_eps=1e-5,
                       rope_theta=10000.0, tie_word_embeddings=True)
    m = LlamaForCausalLM(hcfg).to(torch.float32)
    sd = {"model.embed_tokens.weight": w["tok"], "model.norm.weight": w["rms_final"],
          "lm_head.weight": w["tok"]}
    for l in range(cfg["n_layers"]):
        p = f"model.layers.{l}."
        sd[p + "input_layernorm.weight"] = w["rms_att"][l]
        sd[p + "post_attention_layernorm.weight"] = w["rms_ffn"][l]
        sd[p + "self_attn.q_proj.weight"] = hf_permute(w["wq"][l], nh)
        sd[p + "self_attn.k_proj.weight"] = hf_permute(w["wk"][l], nkv)
        sd[p + "self_attn.v_proj.weight"] = w["wv"][l]
        sd[p + "self_attn.o_proj.weight"] = w["wo"][l]
        sd[p + "mlp.gate_proj.weight"] = w["w1"][l]
        sd[p + "mlp.down_proj.weight"] = w["w2"][l]
        sd[p + "mlp.up_proj.weight"] = w["w3"][l]
    m.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()}, strict=False)
    pm = get_peft_model(m, LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                                      target_modules=["q_proj", "v_proj"]))
    params = dict(pm.named_parameters())
    with torch.no_grad():
        for k, v in lora.items():
            pk = k.replace(".weight", ".default.weight")
            if "q_proj.lora_B" in k:      # ΔW rows follow the permuted q rows
                v = hf_permute(v, nh)
            params[pk].copy_(v.to(torch.float32))
    pm.eval()
    logits = pm(input_ids=tokens).logits
    loss = cross_entropy(logits, targets)
    loss.backward()
    dl = (logits.double() - logits_mine).abs().max().item()
    assert dl < 1e-4, f"stories vs HF Llama+PEFT: logits max abs diff {dl}"
    assert abs(loss.item() - loss_mine) < 1e-5, (loss.item(), loss_mine)
    for k, g in grads_mine.items():
        gh = params[k.replace(".weight", ".default.weight")].grad.double()
        if "q_proj.lora_B" in k:
            g = hf_permute(g, nh)
        rel = (gh - g).abs().max().item() / g.abs().max().item()
        assert rel < 1e-4, f"stories grad {k} vs PEFT: rel {rel}"
    print(f"  HF Llama+PEFT cross-check ok (logits max abs diff {dl:.2e})", file=sys.stderr)


def make_stories():
    path = os.path.join(ASSETS, "models", "stories260K", "stories260K.bin")
    cfg, w = read_llama2c(path)
    print("stories260K:", cfg, file=sys.stderr)
    validate_stories_greedy(cfg, w)

    tokens, targets = seeded_batch(260, cfg["vocab"])
    shapes = []
    for l in range(cfg["n_layers"]):
        p = f"base_model.model.model.layers.{l}.self_attn."
        shapes.append((p + "q_proj", (cfg["dim"], cfg["dim"])))
        shapes.append((p + "v_proj", (cfg["kv_dim"], cfg["dim"])))
    lora = seeded_lora(261, shapes, std=0.1)
    for v in lora.values():
        v.requires_grad_(True)

    logits = stories_forward(cfg, w, tokens, lora)
    loss = cross_entropy(logits, targets)
    keys = sorted(lora)
    grads = dict(zip(keys, torch.autograd.grad(loss, [lora[k] for k in keys])))

    # Full-parameter gradients of the base loss (no LoRA): full fine-tuning.
    full = {"model.layers.0.self_attn.q_proj.weight": ("wq", 0),
            "model.embed_tokens.weight": ("tok", None),
            "model.layers.0.input_layernorm.weight": ("rms_att", 0),
            "model.norm.weight": ("rms_final", None)}
    wg = {k: v.clone().requires_grad_(k in ("wq", "tok", "rms_att", "rms_final"))
          for k, v in w.items()}
    logits_base = stories_forward(cfg, wg, tokens)
    loss_base = cross_entropy(logits_base, targets)
    gb = dict(zip(["wq", "tok", "rms_att", "rms_final"],
                  torch.autograd.grad(loss_base, [wg["wq"], wg["tok"], wg["rms_att"], wg["rms_final"]])))
    grad_full = {name: (gb[src][i] if i is not None else gb[src]) for name, (src, i) in full.items()}

    # Checks: finite differences (float64) and transformers + PEFT (float32).
    finite_diff_check(lambda: cross_entropy(stories_forward(cfg, w, tokens, lora), targets),
                      lora, [(keys[0], (1, 5)), (keys[1], (7, 2)), (keys[-1], (3, 0)),
                             (keys[-2], (0, 63))], "stories lora")
    finite_diff_check(lambda: cross_entropy(stories_forward(cfg, wg, tokens), targets),
                      wg, [("wq", (0, 3, 17)), ("tok", (int(tokens[0, 0]), 9)),
                           ("rms_att", (0, 11)), ("rms_final", (40,))], "stories full")
    crosscheck_stories_hf(cfg, w, tokens, targets, {k: v.detach() for k, v in lora.items()},
                          logits.detach(), loss.item(), grads)

    out = {"tokens": tokens.to(torch.float32), "targets": targets.to(torch.float32),
           "logits": f32(logits), "loss": f32(loss.reshape(1)),
           "loss_base": f32(loss_base.reshape(1))}
    for k in keys:
        out[k] = f32(lora[k])
        out["grad." + k] = f32(grads[k])
    for k, v in grad_full.items():
        out["grad_full." + k] = f32(v)
    meta = {"model": "stories260K.bin", "lora_r": str(R), "lora_alpha": str(ALPHA),
            "lora_scale": str(SCALE), "lora_targets": "q_proj,v_proj",
            "loss": "mean cross-entropy over B*T positions",
            "grad_full": "gradients of loss_base (no LoRA)"}
    save_ref(out, os.path.join(OUT, "stories260k_lora_ref.safetensors"), meta)
    print(f"  loss {loss.item():.6f} loss_base {loss_base.item():.6f}", file=sys.stderr)


# ----------------------------------------------------------------------------
# tiny GPT-2 (HF checkpoint with Conv1D weights)

def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layernorm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b


def gpt2_forward(cfg, w, tokens, lora=None):
    """logits (B,T,V).  Conv1D weights are (in, out): y = x W + b."""
    c, nh, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    hs = c // nh
    bsz, t = tokens.shape
    x = w["transformer.wte.weight"][tokens] + w["transformer.wpe.weight"][:t][None]
    for l in range(cfg["n_layer"]):
        p = f"transformer.h.{l}."
        h = layernorm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = lora_linear(h, w[p + "attn.c_attn.weight"].t(), lora,
                          "base_model.model." + p + "attn.c_attn") + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(c, dim=-1)
        a = causal_attention(q.reshape(bsz, t, nh, hs), k.reshape(bsz, t, nh, hs),
                             v.reshape(bsz, t, nh, hs), nh, nh)
        x = x + a @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = layernorm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        m = gelu_tanh(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layernorm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].t()


def make_gpt2():
    with open(os.path.join(GPT2_BASE, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["activation_function"] == "gelu_new" and cfg["n_inner"] is None
    w = {k: v.to(DT) for k, v in load_file(os.path.join(GPT2_BASE, "model.safetensors")).items()}
    print("gpt2_tiny:", {k: cfg[k] for k in ("n_embd", "n_layer", "n_head", "n_positions",
                                            "vocab_size")}, file=sys.stderr)
    c = cfg["n_embd"]

    tokens, targets = seeded_batch(2, cfg["vocab_size"])
    shapes = [(f"base_model.model.transformer.h.{l}.attn.c_attn", (3 * c, c))
              for l in range(cfg["n_layer"])]
    lora = seeded_lora(3, shapes, std=0.1)
    for v in lora.values():
        v.requires_grad_(True)
    logits = gpt2_forward(cfg, w, tokens, lora)
    loss = cross_entropy(logits, targets)
    keys = sorted(lora)
    grads = dict(zip(keys, torch.autograd.grad(loss, [lora[k] for k in keys])))

    full_src = ["transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias",
                "transformer.ln_f.weight"]
    wg = {k: v.clone().requires_grad_(k in full_src) for k, v in w.items()}
    logits_base = gpt2_forward(cfg, wg, tokens)
    loss_base = cross_entropy(logits_base, targets)
    gb = dict(zip(full_src, torch.autograd.grad(loss_base, [wg[k] for k in full_src])))
    grad_full = {k: (g.t() if k.endswith("c_attn.weight") else g) for k, g in gb.items()}

    # transformers' GPT2LMHeadModel on the same file, then PEFT on top.
    from transformers import GPT2LMHeadModel
    from peft import LoraConfig, get_peft_model
    hf = GPT2LMHeadModel.from_pretrained(GPT2_BASE).to(torch.float32).eval()
    with torch.no_grad():
        hl = hf(input_ids=tokens).logits
    dl = (hl.double() - logits_base).abs().max().item()
    assert dl < 1e-4, f"gpt2 vs transformers: logits max abs diff {dl}"
    pm = get_peft_model(hf, LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                                       target_modules=["c_attn"], fan_in_fan_out=True))
    params = dict(pm.named_parameters())
    with torch.no_grad():
        for k, v in lora.items():
            params[k.replace(".weight", ".default.weight")].copy_(v.detach().to(torch.float32))
    pl = pm(input_ids=tokens).logits
    ploss = cross_entropy(pl, targets)
    ploss.backward()
    dl2 = (pl.double() - logits).abs().max().item()
    assert dl2 < 1e-4, f"gpt2 lora vs PEFT: logits max abs diff {dl2}"
    assert abs(ploss.item() - loss.item()) < 1e-5
    for k, g in grads.items():
        gh = params[k.replace(".weight", ".default.weight")].grad.double()
        rel = (gh - g).abs().max().item() / g.abs().max().item()
        assert rel < 1e-4, f"gpt2 grad {k} vs PEFT: rel {rel}"
    print(f"  transformers cross-check ok (logits max abs diff {dl:.2e}, with PEFT LoRA {dl2:.2e})",
          file=sys.stderr)
    finite_diff_check(lambda: cross_entropy(gpt2_forward(cfg, w, tokens, lora), targets),
                      lora, [(keys[0], (0, 0)), (keys[1], (191, 3)), (keys[2], (2, 40)),
                             (keys[3], (100, 1))], "gpt2 lora")
    finite_diff_check(lambda: cross_entropy(gpt2_forward(cfg, wg, tokens), targets),
                      wg, [("transformer.h.0.attn.c_attn.weight", (5, 150)),
                           ("transformer.h.0.attn.c_attn.bias", (70,)),
                           ("transformer.ln_f.weight", (33,))], "gpt2 full")

    out = {"tokens": tokens.to(torch.float32), "targets": targets.to(torch.float32),
           "logits": f32(logits), "loss": f32(loss.reshape(1)),
           "loss_base": f32(loss_base.reshape(1))}
    for k in keys:
        out[k] = f32(lora[k])
        out["grad." + k] = f32(grads[k])
    for k, v in grad_full.items():
        out["grad_full." + k] = f32(v)
    meta = {"model": "tests/data/peft/gpt2_tiny/base", "lora_r": str(R),
            "lora_alpha": str(ALPHA), "lora_scale": str(SCALE), "lora_targets": "c_attn",
            "loss": "mean cross-entropy over B*T positions",
            "grad_full": "gradients of loss_base (no LoRA); c_attn.weight grad in (out, in)"}
    save_ref(out, os.path.join(OUT, "gpt2_tiny_lora_ref.safetensors"), meta)
    print(f"  loss {loss.item():.6f} loss_base {loss_base.item():.6f}", file=sys.stderr)


def main():
    torch.set_num_threads(1)
    if not os.path.exists(os.path.join(ASSETS, "models", "stories260K", "stories260K.bin")):
        sys.exit(f"assets not found under {ASSETS} (set LORASCOPE_ASSETS)")
    if not os.path.exists(os.path.join(GPT2_BASE, "model.safetensors")):
        sys.exit("run tests/reference/make_peft_adapters.py first (needs its gpt2_tiny/base)")
    os.makedirs(OUT, exist_ok=True)
    make_stories()
    make_gpt2()


if __name__ == "__main__":
    main()
