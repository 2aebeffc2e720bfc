#!/usr/bin/env python3
"""References for lorascope's GGUF support (issue 10), written to tests/data/gguf/.

1. quant/<TYPE>.gguf, one small synthetic GGUF v3 file per tensor type that
   lorascope dequantizes. Each holds the tensor "w" (4 x 256) of that type and
   the tensor "expected" (F32, same shape): gguf-py's dequantization of "w".
   Types gguf-py can quantize (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0) are
   quantized from Gaussian values; the K-quants, which it cannot quantize, get
   random block bytes whose f16 scales are finite (drawn as f16 values).
2. smollm2_reference.json, from Hugging Face transformers loading the SmolLM2
   GGUF (it dequantizes through gguf-py, then undoes the Wq/Wk permutation):
   per tensor an FNV-1a hash of its float32 bytes plus a few values; for a few
   prompts the last position's logits (first 64, argmax, max |logit|); HF's
   greedy continuation of the lighthouse prompt (30 new tokens).
3. tokenizer_reference.json: ids of varied texts from HF's tokenizer for the
   GGUF (transformers builds it from the metadata), and from the same
   vocabulary with each pre-tokenizer lorascope implements (smollm as the
   original SmolLM2 tokenizer.json and llama.cpp split text: digits one by one).

Run from the repository root, with the venv that has torch, transformers>=5
and gguf:  /opt/refenv/bin/python tests/reference/make_gguf_reference.py
Deterministic (fixed seeds, CPU, one thread).
"""
import json
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "gguf")
ASSETS = os.environ.get("LORASCOPE_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
GGUF_DIR = os.path.join(ASSETS, "models", "smollm2-135m-instruct")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

QUANTIZABLE = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
K_QUANTS = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
# byte offsets of the f16 scales inside a K-quant block (ggml-common.h layouts)
K_F16_OFFSETS = {"Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}
ROWS, COLS = 4, 256


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def fnv1a64_np(a: np.ndarray) -> str:
    # vectorised FNV-1a is sequential; do it in chunks of python ints (fast enough for ~40 MB? no):
    # hash at most the first 1 MiB and the last 1 MiB plus the length, as the C test does.
    b = np.ascontiguousarray(a, dtype="<f4").tobytes()
    head, tail = b[: 1 << 20], b[-(1 << 20):] if len(b) > (1 << 20) else b""
    return fnv1a64(len(b).to_bytes(8, "little") + head + tail)


def write_quant_files():
    rng = np.random.default_rng(10)
    os.makedirs(os.path.join(OUT, "quant"), exist_ok=True)
    for name in QUANTIZABLE + K_QUANTS:
        qt = QT[name]
        block, size = gguf.GGML_QUANT_SIZES[qt]
        if name in QUANTIZABLE:
            x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
            raw = gguf.quants.quantize(x, qt)
        else:
            nb = ROWS * COLS // block
            raw = rng.integers(0, 256, (nb, size), dtype=np.uint8)
            for off in K_F16_OFFSETS[name]:
                scale = (rng.standard_normal(nb) * 0.05).astype(np.float16)
                raw[:, off:off + 2] = scale.view(np.uint8).reshape(nb, 2)
            raw = raw.reshape(ROWS, -1)
        expected = gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(ROWS, COLS)
        assert np.all(np.isfinite(expected)), name
        w = gguf.GGUFWriter(os.path.join(OUT, "quant", name + ".gguf"), "lorascope-test")
        w.add_uint32("test.rows", ROWS)
        w.add_string("test.type", name)
        if name == "F32":
            w.add_tensor("w", raw.reshape(ROWS, COLS))
        else:
            w.add_tensor("w", raw, raw_dtype=qt)
        w.add_tensor("expected", expected)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        print("quant", name, raw.nbytes, "bytes")


TENSORS = [  # (GGUF name, HF name)
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
    ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight"),
    ("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight"),
    ("blk.29.attn_output.weight", "model.layers.29.self_attn.o_proj.weight"),
    ("blk.7.ffn_gate.weight", "model.layers.7.mlp.gate_proj.weight"),
    ("blk.7.ffn_up.weight", "model.layers.7.mlp.up_proj.weight"),
    ("blk.7.ffn_down.weight", "model.layers.7.mlp.down_proj.weight"),
    ("blk.3.attn_norm.weight", "model.layers.3.input_layernorm.weight"),
    ("blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"),
    ("output_norm.weight", "model.norm.weight"),
]

PROMPTS = [
    "Here is a short story about a lighthouse keeper:",
    "The capital of France is",
    "def fibonacci(n):\n    ",
]
GREEDY_PROMPT = PROMPTS[0]
GREEDY_NEW = 30


def unpermute(w, n_head):
    # llama.cpp's convert permutes Wq/Wk rows for its interleaved RoPE; HF undoes it so
    d = w.shape[0] // n_head // 2
    return w.reshape(n_head, d, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def model_reference():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    path = os.path.join(GGUF_DIR, GGUF_NAME)
    tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME, dtype=torch.float32)
    model.eval()
    cfg = model.config
    sd = model.state_dict()

    reader = gguf.GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    tensors = []
    for gname, hname in TENSORS:
        t = by_name[gname]
        ours = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if "attn_q" in gname:
            ours = unpermute(ours, cfg.num_attention_heads)
        if "attn_k" in gname:
            ours = unpermute(ours, cfg.num_key_value_heads)
        hf = sd[hname].detach().numpy().astype(np.float32)
        assert hf.shape == ours.shape, (gname, hf.shape, ours.shape)
        assert np.array_equal(hf.view(np.uint32), ours.view(np.uint32)), gname + ": HF differs from gguf-py"
        tensors.append({
            "name": hname, "gguf": gname, "type": t.tensor_type.name, "shape": list(hf.shape),
            "fnv1a64": fnv1a64_np(hf), "sum": float(hf.astype(np.float64).sum()),
            "row0": hf.reshape(hf.shape[0], -1)[0, :8].tolist() if hf.ndim == 2 else hf[:8].tolist(),
            "row_last": hf[-1, -8:].tolist() if hf.ndim == 2 else hf[-8:].tolist(),
        })
        print("tensor", gname, t.tensor_type.name, "bit-identical to gguf-py")

    logits = []
    with torch.no_grad():
        for p in PROMPTS:
            ids = tok(p, add_special_tokens=True)["input_ids"]
            out = model(torch.tensor([ids])).logits[0, -1].numpy().astype(np.float32)
            logits.append({"prompt": p, "ids": ids, "first64": out[:64].tolist(), "argmax": int(out.argmax()),
                           "max_abs": float(np.abs(out).max()), "fnv1a64": fnv1a64_np(out)})
            print("logits", repr(p), "argmax", int(out.argmax()))
        ids = tok(GREEDY_PROMPT, add_special_tokens=True)["input_ids"]
        gen = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_NEW, do_sample=False,
                             attention_mask=torch.ones(1, len(ids), dtype=torch.long))[0].tolist()
    new = gen[len(ids):]
    greedy = {"prompt": GREEDY_PROMPT, "prompt_ids": ids, "new_ids": new,
              "text": tok.decode(gen, skip_special_tokens=False), "new_text": tok.decode(new)}
    print("greedy", json.dumps(greedy["text"]))
    ref = {
        "model": "models/smollm2-135m-instruct/" + GGUF_NAME,
        "config": {"hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_hidden_layers,
                   "num_attention_heads": cfg.num_attention_heads, "num_key_value_heads": cfg.num_key_value_heads,
                   "intermediate_size": cfg.intermediate_size, "vocab_size": cfg.vocab_size,
                   "rms_norm_eps": cfg.rms_norm_eps, "max_position_embeddings": cfg.max_position_embeddings,
                   "tie_word_embeddings": bool(cfg.tie_word_embeddings)},
        "tensors": tensors, "logits": logits, "greedy": greedy,
    }
    with open(os.path.join(OUT, "smollm2_reference.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return tok


TEXTS = [
    "Hello world! How are you doing today?",
    "Here is a short story about a lighthouse keeper:",
    "Numbers: 1234567890, 3.14159, 2026-11-27 and 1,000,000.",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\n\n\nand   many    spaces\r\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "int main(void) { printf(\"%d\\n\", x[42]); return 0; }",
    "Ça va très bien, merci! Größe, naïve café, Øresund.",
    "Москва — столица России. Привет, мир!",
    "日本語のテキストと中文文本，还有한국어 텍스트.",
    "مرحبا بالعالم، هذا نص عربي.",
    "Emoji: 😀🎉👍🏽 and 🇫🇷 flags, ❤️ hearts.",
    "I'm sure they've said it's John's, we'll see, I'd say, you're RIGHT, IT'S fine.",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after the end<|endoftext|>",
    "",
    " ",
    "a",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "x" * 300,
    "12345678901234567890",
    "Unicode numbers: ٣٤٥ ²³ ½ Ⅻ 10⁶ and x²+y²",
    "NELline and ﻿BOM, ZWSP​here",
    "CAPS'LL 'Re 'VE DON'T we'RE",
    "bytes without a token: a\x04b !\x04! \x06\x13",
    "\r\n\r\n  \n x \n\t\ny  \r\n",
    "  \n\n  def f():\n\treturn {'a': [1, 22, 333, 4444]}  # done!!!\n",
]


def tokenizer_reference(hf_tok):
    from transformers.integrations.gguf.gguf_tokenizer_mapping import (
        GGUF_PRE_TOKENIZER_SPLITS, convert_gguf_tokenizer, get_gguf_tokenizer)
    from tokenizers import Tokenizer, pre_tokenizers

    arch, tdict, _ = get_gguf_tokenizer(os.path.join(GGUF_DIR, GGUF_NAME))
    assert tdict["pre_tokenizer_type"] == "smollm"
    variants = {}
    variants["hf_gguf"] = hf_tok.backend_tokenizer if hasattr(hf_tok, "backend_tokenizer") else hf_tok._tokenizer
    # the original SmolLM2 tokenizer.json's pre-tokenizer, which llama.cpp's "smollm" reproduces
    smollm = Tokenizer.from_str(variants["hf_gguf"].to_str())
    smollm.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    variants["smollm"] = smollm
    for pre in ["llama-bpe", "qwen2"]:
        assert pre in GGUF_PRE_TOKENIZER_SPLITS
        backend, _ = convert_gguf_tokenizer(arch, dict(tdict, pre_tokenizer_type=pre))
        variants[pre] = backend
    gpt2, _ = convert_gguf_tokenizer(arch, dict(tdict, pre_tokenizer_type="gpt2"))
    variants["gpt2"] = gpt2  # no split regex in HF's table: GPT2Tokenizer's own (GPT-2's regex)
    cases = []
    for text in TEXTS:
        row = {"text": text}
        for k, t in variants.items():
            row[k] = t.encode(text, add_special_tokens=True).ids
        cases.append(row)
    ref = {"model": "models/smollm2-135m-instruct/" + GGUF_NAME,
           "note": "hf_gguf: transformers' tokenizer for the GGUF; smollm: SmolLM2's own pre-tokenizer "
                   "(Digits individual + ByteLevel), as llama.cpp's 'smollm'; llama-bpe, qwen2, gpt2: "
                   "the same vocabulary and merges with that pre-tokenizer as transformers builds it",
           "cases": cases}
    differ = sum(1 for c in cases if c["hf_gguf"] != c["smollm"])
    print("tokenizer: hf_gguf differs from smollm on", differ, "of", len(cases), "texts")
    with open(os.path.join(OUT, "tokenizer_reference.json"), "w") as f:
        json.dump(ref, f, ensure_ascii=False)
        f.write("\n")


SPM_CORPUS = (
    "the lighthouse keeper lived alone on the rock and kept the lamp burning every night "
    "she wrote letters to the mainland about storms ships gulls and the long winter "
    "once upon a time there was a little girl who loved the sea"
)
SPM_TEXTS = [
    "the lighthouse keeper",
    "Once upon a time, there was a little girl.",
    "  two leading spaces and   three inside",
    "lines\nwith\n\nnewlines\tand tabs",
    "unknown words: xylophone quizzically",
    "Unicode: café naïve 日本 😀",
    "<s>the sea</s> and <s> again",
    "",
    " ",
    "a",
]


def write_spm_reference():
    """A synthetic SentencePiece-style vocabulary (tokenizer.ggml.model "llama":
    pieces with U+2581 for spaces, scores, byte-fallback pieces <0xXX>) in a
    small GGUF, and transformers' ids for texts (its LlamaTokenizer from GGUF
    metadata: BPE with merges derived from the scores, byte fallback)."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer, get_gguf_tokenizer
    rng = np.random.default_rng(12)
    pieces = {}
    for word in SPM_CORPUS.split():
        w = "\u2581" + word
        for i in range(len(w)):
            for j in range(i + 1, min(len(w), i + 7) + 1):
                pieces[w[i:j]] = pieces.get(w[i:j], 0) + 1
    ordered = sorted(pieces, key=lambda p: (-pieces[p] * len(p), p))
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ordered
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) - float(rng.random()) * 0.5 for i in range(len(ordered))]
    types = [2, 3, 3] + [6] * 256 + [1] * len(ordered)
    path = os.path.join(OUT, "spm_tiny.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    arch, tdict, _ = get_gguf_tokenizer(path)
    backend, _ = convert_gguf_tokenizer(arch, tdict)
    cases = []
    for text in SPM_TEXTS:
        enc = backend.encode(text, add_special_tokens=False)
        cases.append({"text": text, "ids": enc.ids, "decoded": backend.decode(enc.ids, skip_special_tokens=False)})
    with open(os.path.join(OUT, "spm_reference.json"), "w") as f:
        json.dump({"file": "spm_tiny.gguf", "note": "transformers' tokenizer for spm_tiny.gguf, "
                   "encode(add_special_tokens=False)", "cases": cases}, f, ensure_ascii=False)
        f.write("\n")
    print("spm:", len(tokens), "tokens")
    seeds = os.path.join(ROOT, "tests", "fuzz", "corpus", "fuzz_gguf")
    os.makedirs(seeds, exist_ok=True)
    import shutil
    shutil.copy(path, os.path.join(seeds, "spm_tiny.gguf"))


def write_fuzz_seeds():
    """tiny_llama.gguf (also a seed for tests/fuzz/fuzz_gguf.c): a tiny llama
    (dim 32, 1 layer, Q8_0 and F32 tensors) with a byte-level BPE vocabulary in
    its metadata; the per-type files above are seeds too."""
    import shutil
    seeds = os.path.join(ROOT, "tests", "fuzz", "corpus", "fuzz_gguf")
    os.makedirs(seeds, exist_ok=True)
    rng = np.random.default_rng(11)
    w = gguf.GGUFWriter(os.path.join(OUT, "tiny_llama.gguf"), "llama")
    w.add_context_length(64)
    w.add_embedding_length(32)
    w.add_feed_forward_length(64)
    w.add_block_count(1)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    alphabet = bytes_to_unicode()
    tokens = ["<|endoftext|>", "<|im_start|>"] + [alphabet[b] for b in range(256)] + ["\u0120t", "he", "\u0120the"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3, 3] + [1] * (len(tokens) - 2))
    w.add_token_merges(["\u0120 t", "h e", "\u0120t he"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(0)
    w.add_add_bos_token(False)
    V, d, h, kv = len(tokens), 32, 64, 16
    shapes = [("token_embd.weight", (V, d)), ("blk.0.attn_norm.weight", (d,)), ("blk.0.attn_q.weight", (d, d)),
              ("blk.0.attn_k.weight", (kv, d)), ("blk.0.attn_v.weight", (kv, d)), ("blk.0.attn_output.weight", (d, d)),
              ("blk.0.ffn_norm.weight", (d,)), ("blk.0.ffn_gate.weight", (h, d)), ("blk.0.ffn_up.weight", (h, d)),
              ("blk.0.ffn_down.weight", (d, h)), ("output_norm.weight", (d,))]
    for name, shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        if len(shape) == 2:
            w.add_tensor(name, gguf.quants.quantize(x, QT.Q8_0), raw_dtype=QT.Q8_0)
        else:
            w.add_tensor(name, x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    shutil.copy(os.path.join(OUT, "tiny_llama.gguf"), os.path.join(seeds, "tiny_llama.gguf"))
    for name in QUANTIZABLE + K_QUANTS:
        shutil.copy(os.path.join(OUT, "quant", name + ".gguf"), os.path.join(seeds, name + ".gguf"))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_quant_files()
    write_fuzz_seeds()
    if "--quant-only" in sys.argv:
        return
    write_spm_reference()
    if "--tokenizer-only" in sys.argv:
        from transformers import AutoTokenizer
        tokenizer_reference(AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME))
        return
    tok = model_reference()
    tokenizer_reference(tok)


if __name__ == "__main__":
    main()
