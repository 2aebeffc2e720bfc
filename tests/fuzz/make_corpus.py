#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (small valid inputs) under tests/fuzz/corpus/.

Run once: python3 tests/fuzz/make_corpus.py. Standard library only.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, values) in tensors.items():
        fmt = {"F32": "<%df", "F16": "<%de", "BF16": None}[dtype]
        if dtype == "BF16":
            data = b"".join(struct.pack("<f", v)[2:] for v in values)
        else:
            data = struct.pack(fmt % len(values), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def llama2c(dim=4, hidden=6, layers=1, heads=2, kv=1, vocab=5, seq=3):
    head = dim // heads
    kvd = dim // heads * kv
    n = vocab * dim + layers * (dim + dim * dim + 2 * kvd * dim + dim * dim + dim + 3 * hidden * dim) + dim + seq * head
    return struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) + struct.pack("<%df" % n, *[0.01 * i for i in range(n)])


def write(sub, name, data):
    with open(os.path.join(HERE, "corpus", sub, name), "wb") as f:
        f.write(data)


def main():
    write("fuzz_safetensors", "f32.safetensors", safetensors({"a": ("F32", [2, 3], [1, 2, 3, 4, 5, 6])}, {"format": "pt"}))
    write("fuzz_safetensors", "mixed.safetensors", safetensors({
        "h": ("F16", [4], [0.5, -1, 2, 65504]), "b": ("BF16", [2, 2], [1, 2, 3, 4]), "e": ("F32", [0], [])}))
    r, d = 2, 4
    pre = "base_model.model.model.layers.0.self_attn."
    st = safetensors({pre + "q_proj.lora_A.weight": ("F32", [r, d], [0.1] * (r * d)),
                      pre + "q_proj.lora_B.weight": ("F32", [d, r], [0.2] * (r * d))})
    cfg = json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": 4, "target_modules": ["q_proj"],
                      "rank_pattern": {"q_proj": 2}, "alpha_pattern": {}, "use_rslora": True}).encode()
    write("fuzz_adapter", "llama_adapter", cfg + b"\xff" + st)
    pre = "base_model.model.transformer.h.1.attn.c_attn."
    st = safetensors({pre + "lora_A.weight": ("F32", [r, d], [0.1] * (r * d)),
                      pre + "lora_B.weight": ("F32", [3 * d, r], [0.2] * (3 * r * d))})
    cfg = json.dumps({"r": r, "lora_alpha": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True}).encode()
    write("fuzz_adapter", "gpt2_adapter", cfg + b"\xff" + st)
    write("fuzz_adapter", "llama2c.bin", llama2c())


if __name__ == "__main__":
    main()
