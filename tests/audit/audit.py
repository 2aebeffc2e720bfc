#!/usr/bin/env python3
"""Malformed-input audit: every reader and command fed wrong input.

Each case builds one malformed input in a scratch directory (a copy of a small
real file with one thing wrong, or a flag with a wrong value), runs the
lorascope binary on it and classifies what happened:

  clean error  exit 1 or 2; the last line of stderr is the one error line
               ("lorascope <command>: ..."), it names what the case says it
               must (the file, the key or flag), and the command wrote nothing
               into its output path;
  crash        killed by a signal, or a sanitizer report on stderr;
  hang         still running after the time limit;
  accepted     exit 0 on wrong input (silently accepted);
  unclear      non-zero exit but a message that misses what it must name,
               more than one error line, or partial output left behind.

Prints a Markdown table (category, cases, clean error, crash, hang, silently
accepted, unclear) and exits 1 if any case is not a clean error.

usage: audit.py LORASCOPE_BIN [--assets DIR] [--timeout S] [--verbose] [--only CATEGORY]
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
LLAMA_BASE = os.path.join(TESTS, "data/peft/llama_tiny/base")
LLAMA_ADAPTER = os.path.join(TESTS, "data/peft/llama_tiny/adapter")

CASES = []


def case(category, name, args, names=(), setup=None, out=None):
    """One case: args (list; '{D}' is the scratch directory), the substrings
    its error must contain, a setup(D) that writes the malformed input, and
    the output path (relative to D) that must stay empty."""
    CASES.append(dict(category=category, name=name, args=args, names=list(names), setup=setup, out=out))


# ----------------------------------------------------------------------------
# builders

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy_dir(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True)


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(path, header, data, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    write(path, struct.pack("<Q", len(h)) + h + data)


def st_edit(rel, fn):
    """A setup that copies the tiny llama base to D/m and lets fn(header, data)
    return the new (header, data) of model.safetensors."""
    def setup(d):
        copy_dir(LLAMA_BASE, d + "/m")
        h, data = read_st(d + "/m/model.safetensors")
        h, data = fn(h, bytearray(data))
        write_st(d + "/m/" + rel, h, bytes(data))
    return setup


def cfg_edit(fn):
    def setup(d):
        copy_dir(LLAMA_BASE, d + "/m")
        c = json.load(open(d + "/m/config.json"))
        out = fn(c)
        write(d + "/m/config.json", out if isinstance(out, (str, bytes)) else json.dumps(out))
    return setup


def adapter_cfg_edit(fn):
    def setup(d):
        copy_dir(LLAMA_ADAPTER, d + "/a")
        c = json.load(open(d + "/a/adapter_config.json"))
        out = fn(c)
        write(d + "/a/adapter_config.json", out if isinstance(out, (str, bytes)) else json.dumps(out))
    return setup


def adapter_st_edit(fn):
    def setup(d):
        copy_dir(LLAMA_ADAPTER, d + "/a")
        h, data = read_st(d + "/a/adapter_model.safetensors")
        h, data = fn(h, bytearray(data))
        write_st(d + "/a/adapter_model.safetensors", h, bytes(data))
    return setup


def poke_float(key, value, index=0):
    """Sets element `index` of tensor `key` (F32) to value."""
    def fn(h, data):
        off = h[key]["data_offsets"][0] + 4 * index
        data[off:off + 4] = struct.pack("<f", value)
        return h, data
    return fn


def set_field(key, field, value):
    def fn(h, data):
        h[key][field] = value
        return h, data
    return fn


def drop_key(key):
    def fn(h, data):
        del h[key]
        return h, data
    return fn


def setc(**kv):
    def fn(c):
        for k, v in kv.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c
    return fn


def text_file(rel, content):
    return lambda d: write(d + "/" + rel, content)


GEN = ["generate", "--model", "{D}/m", "--tokenizer", "bytes", "--prompt", "hi", "--steps", "4"]


def train_args(*extra, data="{D}/data.txt", task="lm", model=LLAMA_BASE):
    return ["train", "--model", model, "--tokenizer", "bytes", "--task", task, "--data", data,
            "--out", "{D}/out", "--steps", "2", "--batch-size", "2", "--seq-len", "16"] + list(extra)


LM_TEXT = "Once upon a time there was a lighthouse keeper who loved the sea.\n\n" * 20


def lm_data(d):
    write(d + "/data.txt", LM_TEXT)


# ----------------------------------------------------------------------------
# cases: HF config.json

def config_cases():
    cat = "HF config.json"
    bad = [
        ("not JSON", "{hidden_size: 64", ["config.json"]),
        ("empty file", "", ["config.json"]),
        ("a JSON array", "[1, 2]", ["config.json"]),
    ]
    for name, text, names in bad:
        case(cat, name, GEN, names, cfg_edit(lambda c, t=text: t))
    fields = [
        ("hidden_size missing", dict(hidden_size=None), ["config.json", "hidden_size"]),
        ("hidden_size 0", dict(hidden_size=0), ["config.json", "hidden_size"]),
        ("hidden_size negative", dict(hidden_size=-64), ["config.json", "hidden_size"]),
        ("hidden_size a string", dict(hidden_size="64"), ["config.json", "hidden_size"]),
        ("hidden_size 1e30", dict(hidden_size=1e30), ["config.json", "hidden_size"]),
        ("hidden_size 64.5", dict(hidden_size=64.5), ["config.json", "hidden_size"]),
        ("heads do not divide hidden", dict(num_attention_heads=5), ["config.json"]),
        ("kv heads do not divide heads", dict(num_key_value_heads=3), ["config.json"]),
        ("kv heads 0", dict(num_key_value_heads=0), ["config.json", "num_key_value_heads"]),
        ("layers 0", dict(num_hidden_layers=0), ["config.json", "num_hidden_layers"]),
        ("layers 1e9", dict(num_hidden_layers=1000000000), ["config.json", "num_hidden_layers"]),
        ("vocab 0", dict(vocab_size=0), ["config.json", "vocab_size"]),
        ("vocab 2^40", dict(vocab_size=2**40), ["config.json", "vocab_size"]),
        ("max positions 1.67e33", dict(max_position_embeddings=1.67e33), ["config.json", "max_position_embeddings"]),
        ("max positions 0", dict(max_position_embeddings=0), ["config.json", "max_position_embeddings"]),
        ("rope_theta 0", dict(rope_theta=0), ["config.json", "rope_theta"]),
        ("rope_theta negative", dict(rope_theta=-10000.0), ["config.json", "rope_theta"]),
        ("rms_norm_eps negative", dict(rms_norm_eps=-1e-6), ["config.json", "rms_norm_eps"]),
        ("intermediate_size 0", dict(intermediate_size=0), ["config.json", "intermediate_size"]),
        ("odd head size", dict(hidden_size=60, num_attention_heads=4), ["config.json"]),
        ("model_type unknown", dict(model_type="t5"), ["config.json", "model_type"]),
        ("model_type missing", dict(model_type=None), ["config.json", "model_type"]),
        ("tie_word_embeddings a string", dict(tie_word_embeddings="yes"), ["config.json", "tie_word_embeddings"]),
    ]
    for name, kv, names in fields:
        case(cat, name, GEN, names, cfg_edit(setc(**kv)))
    case(cat, "config.json a directory", GEN, ["config.json"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"), os.remove(d + "/m/config.json"), os.mkdir(d + "/m/config.json")))
    case(cat, "config.json missing", GEN, ["{D}/m"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"), os.remove(d + "/m/config.json")))


# ----------------------------------------------------------------------------
# cases: safetensors weights

def safetensors_cases():
    cat = "safetensors weights"
    emb = "model.embed_tokens.weight"
    q = "model.layers.0.self_attn.q_proj.weight"
    case(cat, "empty file", GEN, ["model.safetensors"], lambda d: (copy_dir(LLAMA_BASE, d + "/m"),
                                                                  write(d + "/m/model.safetensors", b"")))
    case(cat, "7 bytes", GEN, ["model.safetensors"], lambda d: (copy_dir(LLAMA_BASE, d + "/m"),
                                                               write(d + "/m/model.safetensors", b"\x10\0\0\0\0\0\0")))
    case(cat, "header length 2^60", GEN, ["model.safetensors"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"),
                    write(d + "/m/model.safetensors", struct.pack("<Q", 2**60) + b"{}")))
    case(cat, "header not JSON", GEN, ["model.safetensors"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"),
                    write_st(d + "/m/model.safetensors", None, b"\0" * 64, raw_header=b"{\"a\": [1, 2")))
    case(cat, "header a JSON array", GEN, ["model.safetensors"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"), write_st(d + "/m/model.safetensors", None, b"", raw_header=b"[]")))
    case(cat, "truncated data", GEN, ["model.safetensors"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"), os.truncate(d + "/m/model.safetensors",
                                                                os.path.getsize(d + "/m/model.safetensors") - 100)))
    case(cat, "unknown dtype", GEN, ["model.safetensors", q], st_edit("model.safetensors", set_field(q, "dtype", "Q9")))
    case(cat, "I64 weight", GEN, ["model.safetensors", q], st_edit("model.safetensors", set_field(q, "dtype", "I64")))
    case(cat, "tensor missing", GEN, ["model.safetensors", q], st_edit("model.safetensors", drop_key(q)))
    case(cat, "wrong shape", GEN, [q], st_edit("model.safetensors", set_field(q, "shape", [32, 128])))
    case(cat, "negative dim", GEN, ["model.safetensors", q], st_edit("model.safetensors", set_field(q, "shape", [-64, -64])))
    case(cat, "dims product overflows", GEN, ["model.safetensors", q],
         st_edit("model.safetensors", set_field(q, "shape", [2**62, 2**62])))
    case(cat, "offsets past the end", GEN, ["model.safetensors", q],
         st_edit("model.safetensors", set_field(q, "data_offsets", [0, 2**40])))
    case(cat, "offsets reversed", GEN, ["model.safetensors", q],
         st_edit("model.safetensors", set_field(q, "data_offsets", [16384, 0])))
    def short_by_one_float(h, data):
        begin, end = h[q]["data_offsets"]
        h[q]["data_offsets"] = [begin, end - 4]
        return h, data
    case(cat, "offsets do not match the shape", GEN, ["model.safetensors", q],
         st_edit("model.safetensors", short_by_one_float))
    case(cat, "offsets a string", GEN, ["model.safetensors", q],
         st_edit("model.safetensors", set_field(q, "data_offsets", "0-16")))
    case(cat, "NaN in a weight", GEN, [q], st_edit("model.safetensors", poke_float(q, float("nan"), 7)))
    case(cat, "inf in a weight", GEN, [emb], st_edit("model.safetensors", poke_float(emb, float("inf"), 3)))
    case(cat, "-inf in a norm", GEN, ["model.norm.weight"],
         st_edit("model.safetensors", poke_float("model.norm.weight", float("-inf"), 0)))
    case(cat, "model.safetensors a directory", GEN, ["model.safetensors"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"), os.remove(d + "/m/model.safetensors"), os.mkdir(d + "/m/model.safetensors")))
    case(cat, "model.safetensors missing", GEN, ["{D}/m"],
         lambda d: (copy_dir(LLAMA_BASE, d + "/m"), os.remove(d + "/m/model.safetensors")))
    case(cat, "tensor entry not an object", GEN, ["model.safetensors", q],
         st_edit("model.safetensors", lambda h, x: (dict(h, **{q: 5}), x)))


# ----------------------------------------------------------------------------
# cases: llama2.c checkpoint and tokenizer

def llama2c_cases(assets):
    cat = "llama2.c checkpoint"
    src = os.path.join(assets, "models/stories260K/stories260K.bin") if assets else None
    tok = os.path.join(assets, "models/stories260K/tok512.bin") if assets else None
    if not src or not os.path.exists(src):
        return
    args = ["generate", "--model", "{D}/m.bin", "--tokenizer", tok, "--prompt", "hi", "--steps", "4"]

    def header_edit(index, value):
        def setup(d):
            b = bytearray(open(src, "rb").read())
            b[4 * index:4 * index + 4] = struct.pack("<i", value)
            write(d + "/m.bin", bytes(b))
        return setup

    def truncated(n):
        return lambda d: write(d + "/m.bin", open(src, "rb").read()[:n])

    for name, idx, val in [("dim 0", 0, 0), ("dim negative", 0, -64), ("hidden negative", 1, -1),
                           ("layers 0", 2, 0), ("layers 2^30", 2, 2**30), ("heads 0", 3, 0),
                           ("heads do not divide dim", 3, 7), ("kv heads 3", 4, 3), ("vocab 0", 5, 0),
                           ("seq_len 0", 6, 0), ("dim 2^30", 0, 2**30)]:
        case(cat, name, args, ["m.bin"], header_edit(idx, val))
    case(cat, "empty file", args, ["m.bin"], truncated(0))
    case(cat, "header only", args, ["m.bin"], truncated(28))
    case(cat, "truncated weights", args, ["m.bin"], truncated(500000))

    def nan_weight(d):
        b = bytearray(open(src, "rb").read())
        b[28 + 4 * 1000:28 + 4 * 1001] = struct.pack("<f", float("nan"))
        write(d + "/m.bin", bytes(b))
    case(cat, "NaN in the token embedding", args, ["m.bin", "nan"], nan_weight)
    case(cat, "a directory", args, ["m.bin"], lambda d: os.mkdir(d + "/m.bin"))
    case(cat, "/dev/zero", ["generate", "--model", "/dev/zero", "--tokenizer", tok, "--prompt", "hi"], ["/dev/zero"])

    cat = "tokenizers"
    targs = ["generate", "--model", src, "--tokenizer", "{D}/t.bin", "--prompt", "hi", "--steps", "4"]
    tb = open(tok, "rb").read()

    def tok_edit(fn):
        return lambda d: write(d + "/t.bin", fn(bytearray(tb)))
    case(cat, "tok512 empty", targs, ["t.bin"], tok_edit(lambda b: b""))
    case(cat, "tok512 truncated", targs, ["t.bin"], tok_edit(lambda b: bytes(b[:2000])))
    case(cat, "tok512 max_token_length negative", targs, ["t.bin"],
         tok_edit(lambda b: struct.pack("<i", -1) + bytes(b[4:])))
    case(cat, "tok512 first length 2^30", targs, ["t.bin"],
         tok_edit(lambda b: bytes(b[:8]) + struct.pack("<i", 2**30) + bytes(b[12:])))
    case(cat, "tok512 first length negative", targs, ["t.bin"],
         tok_edit(lambda b: bytes(b[:8]) + struct.pack("<i", -5) + bytes(b[12:])))
    case(cat, "tok512 NaN score", targs, ["t.bin"],
         tok_edit(lambda b: bytes(b[:4]) + struct.pack("<f", float("nan")) + bytes(b[8:])))
    case(cat, "tok512 a directory", targs, ["t.bin"], lambda d: os.mkdir(d + "/t.bin"))
    case(cat, "tokenizer missing", targs, ["t.bin"])
    case(cat, "tokenizer /dev/zero", ["generate", "--model", src, "--tokenizer", "/dev/zero", "--prompt", "hi"],
         ["/dev/zero"])
    fix = os.path.join(TESTS, "fuzz/fixtures")
    gargs = ["generate", "--model", LLAMA_BASE, "--tokenizer", "{D}/g", "--prompt", "hi", "--steps", "4"]

    def gpt2_dir(enc=None, bpe=None):
        def setup(d):
            write(d + "/g/encoder.json", enc if enc is not None else open(fix + "/gpt2_encoder.json", "rb").read())
            write(d + "/g/vocab.bpe", bpe if bpe is not None else open(fix + "/gpt2_vocab.bpe", "rb").read())
        return setup
    case(cat, "encoder.json not JSON", gargs, ["encoder.json"], gpt2_dir(enc="{\"a\": 1"))
    case(cat, "encoder.json an array", gargs, ["encoder.json"], gpt2_dir(enc="[1,2,3]"))
    case(cat, "encoder.json id a string", gargs, ["encoder.json"], gpt2_dir(enc="{\"a\": \"x\"}"))
    case(cat, "encoder.json id negative", gargs, ["encoder.json"], gpt2_dir(enc="{\"a\": -4}"))
    case(cat, "encoder.json empty object", gargs, ["encoder.json"], gpt2_dir(enc="{}"))
    case(cat, "vocab.bpe merge of one token", gargs, ["vocab.bpe"], gpt2_dir(bpe="#version: 0.2\nabc\n"))
    case(cat, "vocab.bpe missing", gargs, ["vocab.bpe"],
         lambda d: write(d + "/g/encoder.json", open(fix + "/gpt2_encoder.json", "rb").read()))
    minilm = os.path.join(assets, "models/all-MiniLM-L6-v2")
    if os.path.isdir(minilm):
        vocab = open(os.path.join(minilm, "vocab.txt"), "rb").read()
        tcfg = open(os.path.join(minilm, "tokenizer_config.json"), "rb").read()
        wargs = ["tokenize", "--model", "{D}/w", "--", "Hello, world!"]

        def wordpiece(v=None, c=None):
            def setup(d):
                write(d + "/w/vocab.txt", vocab if v is None else v)
                write(d + "/w/tokenizer_config.json", tcfg if c is None else c)
            return setup
        case(cat, "vocab.txt empty", wargs, ["vocab.txt"], wordpiece(v=b""))
        case(cat, "vocab.txt without [UNK]", wargs, ["vocab.txt", "[UNK]"], wordpiece(v=vocab.replace(b"[UNK]\n", b"[UNQ]\n")))
        case(cat, "vocab.txt without [CLS]", wargs, ["vocab.txt", "[CLS]"], wordpiece(v=vocab.replace(b"[CLS]\n", b"[CLZ]\n")))
        case(cat, "vocab.txt without [SEP]", wargs, ["vocab.txt", "[SEP]"], wordpiece(v=vocab.replace(b"[SEP]\n", b"[SEQ]\n")))
        case(cat, "vocab.txt duplicate token", wargs, ["vocab.txt"], wordpiece(v=vocab + b"the\n"))
        case(cat, "vocab.txt line of 2000 bytes", wargs, ["vocab.txt"], wordpiece(v=vocab + b"x" * 2000 + b"\n"))
        case(cat, "vocab.txt invalid UTF-8", wargs, ["vocab.txt"], wordpiece(v=vocab + b"caf\xe9\n"))
        case(cat, "tokenizer_config.json not JSON", wargs, ["tokenizer_config.json"], wordpiece(c=b"{\"do_lower_case\": "))
        case(cat, "do_lower_case a string", wargs, ["tokenizer_config.json", "do_lower_case"],
             wordpiece(c=b"{\"do_lower_case\": \"yes\"}"))
        case(cat, "vocab.txt a directory", wargs, ["vocab.txt"], lambda d: os.makedirs(d + "/w/vocab.txt"))


# ----------------------------------------------------------------------------
# cases: PEFT adapters

def adapter_cases():
    cat = "PEFT adapters"
    args = ["analyze", "spectrum", "--adapter", "{D}/a", "--out", "{D}/out"]
    a0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    b0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
    cfgs = [
        ("r missing", dict(r=None), ["adapter_config.json", "'r'"]),
        ("r a string", dict(r="four"), ["adapter_config.json", "'r'"]),
        ("r 0", dict(r=0), ["adapter_config.json", "'r'"]),
        ("r negative", dict(r=-4), ["adapter_config.json", "'r'"]),
        ("r 1e300", dict(r=1e300), ["adapter_config.json", "'r'"]),
        ("r disagrees with lora_A", dict(r=8), ["adapter_model.safetensors"]),
        ("lora_alpha a string", dict(lora_alpha="8"), ["adapter_config.json", "lora_alpha"]),
        ("lora_alpha 1e999", dict(lora_alpha=float("inf")), ["adapter_config.json"]),
        ("lora_alpha missing", dict(lora_alpha=None), ["adapter_config.json", "lora_alpha"]),
        ("alpha_pattern value 1e300", dict(alpha_pattern={"q_proj": 1e300}), ["adapter_config.json", "alpha_pattern"]),
        ("alpha_pattern value a string", dict(alpha_pattern={"q_proj": "x"}), ["adapter_config.json", "alpha_pattern"]),
        ("alpha_pattern not an object", dict(alpha_pattern=[1, 2]), ["adapter_config.json", "alpha_pattern"]),
        ("rank_pattern value 1e300", dict(rank_pattern={"q_proj": 1e300}), ["adapter_config.json", "rank_pattern"]),
        ("rank_pattern value 0", dict(rank_pattern={"q_proj": 0}), ["adapter_config.json", "rank_pattern"]),
        ("rank_pattern value 2.5", dict(rank_pattern={"q_proj": 2.5}), ["adapter_config.json", "rank_pattern"]),
        ("use_rslora a number", dict(use_rslora=3), ["adapter_config.json", "use_rslora"]),
        ("fan_in_fan_out a string", dict(fan_in_fan_out="x"), ["adapter_config.json", "fan_in_fan_out"]),
        ("peft_type PREFIX_TUNING", dict(peft_type="PREFIX_TUNING"), ["adapter_config.json", "peft_type"]),
    ]
    for name, kv, names in cfgs:
        case(cat, name, args, names, adapter_cfg_edit(setc(**kv)), out="out")
    case(cat, "adapter_config.json not JSON", args, ["adapter_config.json"], adapter_cfg_edit(lambda c: "{\"r\": 4,"), out="out")
    case(cat, "adapter_config.json missing", args, ["{D}/a"],
         lambda d: (copy_dir(LLAMA_ADAPTER, d + "/a"), os.remove(d + "/a/adapter_config.json")), out="out")
    case(cat, "adapter_model.safetensors missing", args, ["{D}/a"],
         lambda d: (copy_dir(LLAMA_ADAPTER, d + "/a"), os.remove(d + "/a/adapter_model.safetensors")), out="out")
    case(cat, "only a pickled adapter_model.bin", args, ["adapter_model.bin"],
         lambda d: (copy_dir(LLAMA_ADAPTER, d + "/a"), os.remove(d + "/a/adapter_model.safetensors"),
                    write(d + "/a/adapter_model.bin", b"\x80\x02}q\0.")), out="out")
    case(cat, "NaN in lora_B", args, [b0], adapter_st_edit(poke_float(b0, float("nan"), 5)), out="out")
    case(cat, "inf in lora_A", args, [a0], adapter_st_edit(poke_float(a0, float("inf"), 0)), out="out")
    case(cat, "lora_B missing", args, ["lora_B"], adapter_st_edit(drop_key(b0)), out="out")
    case(cat, "lora_A missing", args, ["lora_A"], adapter_st_edit(drop_key(a0)), out="out")
    case(cat, "lora_A wrong rank", args, ["lora_A"], adapter_st_edit(set_field(a0, "shape", [2, 128])), out="out")
    case(cat, "unknown key", args, ["adapter_model.safetensors", "something.else.weight"],
         adapter_st_edit(lambda h, x: (dict(h, **{"something.else.weight": h[a0]}), x)), out="out")
    case(cat, "layer index past the model", args, ["layers.99"],
         adapter_st_edit(lambda h, x: (dict(h, **{a0.replace("layers.0", "layers.99"): h[a0],
                                                  b0.replace("layers.0", "layers.99"): h[b0]}), x)), out="out")
    case(cat, "truncated adapter file", args, ["adapter_model.safetensors"],
         lambda d: (copy_dir(LLAMA_ADAPTER, d + "/a"), os.truncate(d + "/a/adapter_model.safetensors", 300)), out="out")
    case(cat, "F16 tensor with an F32 byte count", args, ["adapter_model.safetensors"],
         adapter_st_edit(set_field(a0, "dtype", "F16")), out="out")
    case(cat, "adapter directory is a file", args, ["{D}/a"], text_file("a", "x"), out="out")


# ----------------------------------------------------------------------------
# cases: PEFT adapters of any architecture and their Hugging Face bases

GENERIC = os.path.join(TESTS, "data/peft_generic")


def rename_key(old, new):
    def fn(h, data):
        h[new] = h.pop(old)
        return h, data
    return fn


def generic_cases():
    cat = "PEFT adapters, any architecture"
    spec = ["analyze", "spectrum", "--adapter", "{D}/a", "--out", "{D}/out"]
    q0 = "base_model.model.encoder.layer.0.attention.self.query.lora_A.weight"

    def adapter(name):
        return lambda d: copy_dir(os.path.join(GENERIC, name, "adapter"), d + "/a")

    def cfg(name, **kv):
        def setup(d):
            copy_dir(os.path.join(GENERIC, name, "adapter"), d + "/a")
            c = json.load(open(d + "/a/adapter_config.json"))
            c.update(kv)
            write(d + "/a/adapter_config.json", json.dumps(c))
        return setup

    def st(name, fn):
        def setup(d):
            copy_dir(os.path.join(GENERIC, name, "adapter"), d + "/a")
            h, data = read_st(d + "/a/adapter_model.safetensors")
            h, data = fn(h, bytearray(data))
            write_st(d + "/a/adapter_model.safetensors", h, bytes(data))
        return setup

    case(cat, "LoRA key that cannot be grouped", spec, ["adapter_model.safetensors", "lora_A.x.y.weight", "grouped"],
         st("bert", rename_key(q0, q0.replace("lora_A.weight", "lora_A.x.y.weight"))), out="out")
    case(cat, "two adapter names in one file", spec, ["adapter_model.safetensors", "second adapter name"],
         st("bert", rename_key(q0, q0.replace("lora_A.weight", "lora_A.other.weight"))), out="out")
    case(cat, "target_modules regex matching nothing", spec, ["adapter_config.json", "target_modules", "matches none"],
         cfg("roberta", target_modules=r".*\.nothing"), out="out")
    case(cat, "target_modules regex with a lookahead", spec, ["adapter_config.json", "target_modules"],
         cfg("roberta", target_modules=r".*(?=query)query"), out="out")
    case(cat, "target_modules list missing a module", spec, ["adapter_model.safetensors", "not selected by target_modules"],
         cfg("bert", target_modules=["query"]), out="out")
    case(cat, "layers_to_transform excluding a layer", spec, ["adapter_model.safetensors", "layers_to_transform"],
         cfg("opt", layers_to_transform=[0]), out="out")
    case(cat, "rank_pattern contradicting the tensors", spec, ["adapter_model.safetensors", "rank_pattern", "down_proj"],
         cfg("qwen2", rank_pattern={"down_proj": 5}), out="out")
    case(cat, "use_dora without magnitudes", spec, ["adapter_model.safetensors", "lora_magnitude_vector is missing"],
         cfg("bert", use_dora=True), out="out")
    case(cat, "magnitudes without use_dora", spec, ["adapter_model.safetensors", "use_dora is not true"],
         cfg("mistral_dora", use_dora=False), out="out")
    case(cat, "ambiguous module name", spec[:4] + ["--module", "q"] + spec[4:], ["{D}/a", "'q' is ambiguous"],
         adapter("t5"), out="out")
    case(cat, "fused q without the base's heads", spec[:4] + ["--module", "q"] + spec[4:], ["{D}/a", "qkv_proj"],
         adapter("phi3"), out="out")
    amp = ["analyze", "amplify", "--adapter", os.path.join(GENERIC, "mistral_dora", "adapter"), "--base", "{D}/b",
           "--out", "{D}/out"]

    def base(name, fn=None, rm=None, index_fn=None):
        def setup(d):
            copy_dir(os.path.join(GENERIC, name, "base"), d + "/b")
            if rm:
                os.remove(d + "/b/" + rm)
            if fn:
                h, data = read_st(d + "/b/model.safetensors")
                h, data = fn(h, bytearray(data))
                write_st(d + "/b/model.safetensors", h, bytes(data))
            if index_fn:
                f = d + "/b/model.safetensors.index.json"
                write(f, json.dumps(index_fn(json.load(open(f)))))
        return setup

    def remap(ix):
        k = "model.layers.1.self_attn.q_proj.weight"
        ix["weight_map"][k] = "model-00001-of-00003.safetensors" if ix["weight_map"][k] != "model-00001-of-00003.safetensors" else "model-00003-of-00003.safetensors"
        return ix

    case(cat, "shard missing from the index", amp, ["model.safetensors.index.json", "weight_map.", "is missing"],
         base("mistral_dora", rm="model-00002-of-00003.safetensors"), out="out")
    case(cat, "index maps a tensor to the wrong shard", amp, ["model.safetensors.index.json", "model.layers.1.self_attn.q_proj.weight"],
         base("mistral_dora", index_fn=remap), out="out")
    case(cat, "index weight_map not an object", amp, ["model.safetensors.index.json", "weight_map"],
         base("mistral_dora", index_fn=lambda ix: dict(ix, weight_map=[])), out="out")
    qamp = ["analyze", "amplify", "--adapter", os.path.join(GENERIC, "qwen2", "adapter"), "--base", "{D}/b",
            "--out", "{D}/out"]
    case(cat, "base tensor shape not ΔW's", qamp, ["model.safetensors", "model.layers.0.self_attn.q_proj.weight", "(32, 32)"],
         base("qwen2", fn=set_field("model.layers.0.self_attn.q_proj.weight", "shape", [16, 64])), out="out")
    case(cat, "base tensor missing", qamp, ["{D}/b", "model.layers.1.mlp.down_proj.weight"],
         base("qwen2", fn=drop_key("model.layers.1.mlp.down_proj.weight")), out="out")


# ----------------------------------------------------------------------------
# cases: data files

def data_cases():
    cat = "data files"
    e2e = lambda text: text_file("d.txt", text)
    ea = lambda: train_args(task="e2e", data="{D}/d.txt")
    case(cat, "e2e: a|||b", ea(), ["d.txt:1"], e2e("a|||b\n"), out="out")
    case(cat, "e2e: no separator", ea(), ["d.txt:2"], e2e("name : x||ref one\nname : y ref two\n"), out="out")
    case(cat, "e2e: empty MR", ea(), ["d.txt:1"], e2e("||a reference\n"), out="out")
    case(cat, "e2e: empty reference", ea(), ["d.txt:1"], e2e("name : x||\n"), out="out")
    case(cat, "e2e: binary bytes", ea(), ["d.txt"], e2e(b"\x00\x01\xff\xfe||\x80\n"), out="out")
    case(cat, "e2e: empty file", ea(), ["d.txt"], e2e(""), out="out")
    sa = lambda: train_args(task="sst2", data="{D}/d.txt")
    case(cat, "sst2: label 2", sa(), ["d.txt:2"], e2e("sentence\tlabel\ngood film\t2\n"), out="out")
    case(cat, "sst2: label a word", sa(), ["d.txt:2"], e2e("sentence\tlabel\ngood film\tpositive\n"), out="out")
    case(cat, "sst2: no tab", sa(), ["d.txt:2"], e2e("sentence\tlabel\ngood film 1\n"), out="out")
    case(cat, "sst2: header only", sa(), ["d.txt"], e2e("sentence\tlabel\n"), out="out")
    case(cat, "sst2: no header", sa(), ["d.txt:1"], e2e("good film\t1\nbad film\t0\n"), out="out")
    ja = lambda: train_args(task="jsonl", data="{D}/d.txt")
    case(cat, "jsonl: not JSON", ja(), ["d.txt:1"], e2e("{context: 1}\n"), out="out")
    case(cat, "jsonl: an array", ja(), ["d.txt:1"], e2e("[1, 2]\n"), out="out")
    case(cat, "jsonl: no completion", ja(), ["d.txt:1", "completion"], e2e("{\"context\": \"a\"}\n"), out="out")
    case(cat, "jsonl: context a number", ja(), ["d.txt:2", "context"],
         e2e("{\"context\": \"a\", \"completion\": \"b\"}\n{\"context\": 5, \"completion\": \"b\"}\n"), out="out")
    case(cat, "jsonl: trailing garbage", ja(), ["d.txt:1"], e2e("{\"context\": \"a\", \"completion\": \"b\"} x\n"), out="out")
    la = lambda: train_args(task="lm", data="{D}/d.txt")
    case(cat, "lm: empty file", la(), ["d.txt"], e2e(""), out="out")
    case(cat, "lm: too short for one window", la(), ["d.txt"], e2e("hi\n"), out="out")
    case(cat, "data /dev/zero", train_args(data="/dev/zero"), ["/dev/zero"], out="out")
    case(cat, "data a directory", train_args(data="{D}"), ["{D}"], out="out")
    case(cat, "data missing", train_args(data="{D}/none.txt"), ["none.txt"], out="out")
    case(cat, "val-data empty", train_args("--val-data", "{D}/v.txt"), ["v.txt"],
         lambda d: (lm_data(d), write(d + "/v.txt", "")), out="out")
    case(cat, "eval: data missing", ["eval", "--model", LLAMA_BASE, "--tokenizer", "bytes", "--task", "lm",
                                     "--data", "{D}/none.txt"], ["none.txt"])


# ----------------------------------------------------------------------------
# cases: training options and INI configs

def train_option_cases():
    cat = "train options"
    bad = [
        ("--rank", "0"), ("--rank", "65"), ("--rank", "x"), ("--alpha", "nan"), ("--alpha", "inf"),
        ("--alpha", "-1"), ("--lr", "-1"), ("--lr", "nan"), ("--lr", "1e400"), ("--batch-size", "0"),
("--steps", "-1"), ("--steps", "1e3"), ("--lora-dropout", "1.5"),
        ("--seed", "-1"), ("--threads", "-2"), ("--seq-len", "0"), ("--seq-len", "1000000"),
        ("--grad-accum", "0"), ("--beta1", "1"), ("--beta2", "-0.1"), ("--adam-eps", "0"), ("--clip", "-1"),
        ("--label-smoothing", "1.5"), ("--warmup", "-1"), ("--schedule", "bogus"), ("--init", "bogus"),
        ("--lora", "bogus"), ("--lora", "c_attn"), ("--layers", "7"), ("--layers", "0,x"), ("--task", "bogus"),
        ("--val-frac", "1.5"), ("--weight-decay", "nan"), ("--init-std", "-1"), ("--eval-every", "-1"),
        ("--full", "maybe"),
    ]
    for flag, value in bad:
        case(cat, f"{flag} {value}", train_args(flag, value), [flag], lm_data, out="out")
    case(cat, "--batch-size 65536 x --seq-len 128", train_args("--batch-size", "65536", "--seq-len", "128"),
         ["batch"], lm_data, out="out")
    case(cat, "--backend cuda without a GPU", train_args("--backend", "cuda"), ["cuda"], lm_data, out="out")
    case(cat, "--out missing", ["train", "--model", LLAMA_BASE, "--tokenizer", "bytes", "--task", "lm",
                                "--data", "{D}/data.txt", "--steps", "2"], ["--out"], lm_data)
    case(cat, "--model missing", ["train", "--tokenizer", "bytes", "--task", "lm", "--data", "{D}/data.txt",
                                  "--out", "{D}/out"], ["model"], lm_data, out="out")
    case(cat, "--bogus option", train_args("--bogus"), ["--bogus"], lm_data, out="out")
    case(cat, "--rank without a value", train_args("--rank"), ["--rank"], lm_data, out="out")
    case(cat, "--resume with no run", ["train", "--resume", "--out", "{D}/out"], ["{D}/out"])

    cat = "INI configs"
    base = ("[model]\npath = %s\ntokenizer = bytes\n[data]\ntask = lm\ntrain = {D}/data.txt\n"
            "[optim]\nsteps = 2\nbatch_size = 2\n[data]\n" % LLAMA_BASE)

    def ini(text):
        def setup(d):
            lm_data(d)
            write(d + "/c.ini", text.replace("{D}", d))
        return setup
    cargs = ["train", "--config", "{D}/c.ini", "--out", "{D}/out"]
    good = ("[model]\npath = %s\ntokenizer = bytes\n[data]\ntask = lm\ntrain = {D}/data.txt\nseq_len = 16\n"
            "[optim]\nsteps = 2\nbatch_size = 2\n" % LLAMA_BASE)
    inis = [
        ("duplicate key", good + "steps = 3\n", ["c.ini", "steps"]),
        ("duplicate section key across repeats", base + "task = e2e\n", ["c.ini", "task"]),
        ("unknown key", good + "stepz = 3\n", ["c.ini", "stepz"]),
        ("unknown section", good + "[lorra]\nrank = 4\n", ["c.ini", "lorra"]),
        ("key outside a section", "steps = 2\n" + good, ["c.ini"]),
        ("line without '='", good + "rank 4\n", ["c.ini"]),
        ("bad number", good + "[lora]\nrank = four\n", ["c.ini", "rank"]),
        ("bad boolean", good + "[lora]\nrslora = perhaps\n", ["c.ini", "rslora"]),
        ("line over 198 characters", good + "[lora]\nlayers = " + "1," * 120 + "1\n", ["c.ini"]),
        ("NUL byte", good + "[lora]\nrank\0 = 4\n", ["c.ini"]),
        ("empty file", "", ["c.ini"]),
    ]
    for name, text, names in inis:
        case(cat, name, cargs, names, ini(text), out="out")
    case(cat, "config /dev/zero", ["train", "--config", "/dev/zero", "--out", "{D}/out"], ["/dev/zero"], out="out")
    case(cat, "config a directory", ["train", "--config", "{D}", "--out", "{D}/out"], ["{D}"], out="out")
    case(cat, "config missing", ["train", "--config", "{D}/none.ini", "--out", "{D}/out"], ["none.ini"], out="out")


# ----------------------------------------------------------------------------
# cases: experiment files

def experiment_cases():
    cat = "experiment files"
    head = ("[experiment]\nname = audit\n[train]\nmodel = %s\ntokenizer = bytes\ntask = lm\ndata = {D}/data.txt\n"
            "steps = 2\nbatch-size = 2\nseq-len = 16\n" % LLAMA_BASE)

    def exp(text):
        def setup(d):
            lm_data(d)
            write(d + "/e.ini", text.replace("{D}", d))
        return setup
    eargs = ["run", "{D}/e.ini", "--results", "{D}/res"]
    exps = [
        ("zip of an axis with itself", head + "[sweep]\nrank = 2 | 4\nzip = rank, rank\n", ["e.ini", "zip"]),
        ("zip cycle", head + "[sweep]\nrank = 2 | 4\nalpha = 4 | 8\nzip = rank, alpha\nzip = alpha, rank\n", ["e.ini", "zip"]),
        ("sweep of 10^6 runs", head + "[sweep]\n" + "".join(
            "%s = %s\n" % (axis, " | ".join(fmt % i for i in range(1, 11)))
            for axis, fmt in [("rank", "%d"), ("seed", "%d"), ("alpha", "%d"), ("lr", "%de-4"),
                              ("lora-dropout", "0.0%d"), ("weight-decay", "0.0%d")]), ["e.ini", "runs"]),
        ("analysis selector value not swept", head + "[sweep]\nrank = 2 | 4\n[analysis x]\nkind = subspace\n"
         "a = rank=3\nb = rank=4\n", ["e.ini", "rank"]),
        ("analysis unknown kind", head + "[sweep]\nrank = 2 | 4\n[analysis x]\nkind = eigen\n", ["e.ini", "eigen"]),
        ("analysis unknown key", head + "[sweep]\nrank = 2 | 4\n[analysis x]\nkind = subspace\na = rank=2\n"
         "b = rank=4\ncolour = red\n", ["e.ini", "colour"]),
        ("analysis 17 adapters", head + "[sweep]\nseed = " + " | ".join(str(i) for i in range(1, 18)) +
         "\n[analysis x]\nkind = amplify\nadapters = " + " | ".join("seed=%d" % i for i in range(1, 18)) + "\n",
         ["e.ini", "adapters"]),
        ("duplicate key in [eval]", head + "[eval]\ngenerate = 2\ngenerate = 3\n", ["e.ini", "generate"]),
        ("duplicate key in [train]", head + "steps = 4\n", ["e.ini", "steps"]),
        ("unknown section", head + "[sweeep]\nrank = 2\n", ["e.ini", "sweeep"]),
        ("unknown [experiment] key", head.replace("name = audit", "name = audit\nowner = me"), ["e.ini", "owner"]),
        ("sweep value not a number", head + "[sweep]\nrank = 2 | four\n", ["e.ini", "rank"]),
        ("sweep axis with no values", head + "[sweep]\nrank =\n", ["e.ini", "rank"]),
        ("sweep unknown axis", head + "[sweep]\nrankk = 2 | 4\n", ["e.ini", "rankk"]),
        ("empty file", "", ["e.ini"]),
        ("no [experiment] name", head.replace("name = audit\n", ""), ["e.ini", "name"]),
    ]
    for name, text, names in exps:
        case(cat, name, eargs + ["--list"], names, exp(text), out="res")
    case(cat, "experiment /dev/zero", ["run", "/dev/zero", "--list"], ["/dev/zero"])
    case(cat, "experiment a directory", ["run", "{D}", "--list"], ["{D}"])
    case(cat, "experiment missing", ["run", "{D}/none.ini", "--list"], ["none.ini"])


# ----------------------------------------------------------------------------
# cases: other commands' flags

def command_cases():
    cat = "command flags"
    g = ["generate", "--model", LLAMA_BASE, "--tokenizer", "bytes", "--prompt", "hi"]
    for flag, value in [("--temperature", "-1"), ("--temperature", "nan"), ("--top-p", "0"), ("--top-p", "1.5"),
                        ("--steps", "0"), ("--steps", "1000000000"), ("--seed", "-1"), ("--threads", "-1"),
                        ("--backend", "tpu")]:
        case(cat, f"generate {flag} {value}", g + [flag, value], [flag])
    case(cat, "generate without --prompt", g[:5], ["--prompt"])
    case(cat, "generate --adapter of another shape", g + ["--adapter", os.path.join(TESTS, "data/peft/gpt2_tiny/adapter")],
         ["adapter"])
    e = ["eval", "--model", LLAMA_BASE, "--tokenizer", "bytes", "--task", "lm", "--data", "{D}/data.txt"]
    for flag, value in [("--batch-size", "0"), ("--max-items", "-1"), ("--beam", "0"), ("--generate", "-2"),
                        ("--seq-len", "0"), ("--max-new", "0")]:
        case(cat, f"eval {flag} {value}", e + [flag, value], [flag], lm_data)
    case(cat, "eval --out into a missing directory", e + ["--out", "{D}/no/such/dir/r.json"], ["r.json"], lm_data)
    a = ["analyze", "spectrum", "--adapter", LLAMA_ADAPTER, "--out", "{D}/out"]
    for flag, value in [("--rank", "0"), ("--layer", "-1"), ("--module", "zzz"), ("--layer", "x")]:
        case(cat, f"analyze {flag} {value}", a + [flag, value], [flag if flag != "--module" else "zzz"], out="out")
    case(cat, "analyze unknown analysis", ["analyze", "eigen", "--out", "{D}/out"], ["eigen"], out="out")
    case(cat, "analyze subspace with one adapter", ["analyze", "subspace", "--adapter", LLAMA_ADAPTER, "--out", "{D}/out"],
         ["--adapter2"], out="out")
    for flag, value in [("--shape", "bogus"), ("--threads", "0"), ("--steps", "0"), ("--mode", "x")]:
        case(cat, f"bench {flag} {value}", ["bench", "--no-torch", flag, value], [flag if flag != "--shape" else "bogus"])
    sc = ["score", "--hyp", "{D}/h.txt", "--refs", "{D}/r.txt"]

    def score_files(hyp, refs):
        return lambda d: (write(d + "/h.txt", hyp), write(d + "/r.txt", refs))
    case(cat, "score: more hypotheses than groups", sc, ["h.txt", "r.txt"], score_files("a\nb\n", "x\n\n"))
    case(cat, "score: two blank lines", sc, ["r.txt:3"], score_files("a\nb\n", "x\n\n\ny\n"))
    case(cat, "score: NUL in the references", sc, ["r.txt"], score_files("a\n", "x\0y\n"))
    case(cat, "score: no references", sc, ["r.txt"], score_files("a\n", "\n"))
    case(cat, "score: --refs missing", sc[:3], ["--refs"], score_files("a\n", "x\n"))
    case(cat, "score: /dev/zero", ["score", "--hyp", "/dev/zero", "--refs", "/dev/zero"], ["/dev/zero"])
    case(cat, "unknown command", ["frobnicate"], ["frobnicate"])
    case(cat, "run --threads -1", ["run", os.path.join(TESTS, "data/experiments/tiny.ini"), "--threads", "-1", "--list"],
         ["--threads"])
    case(cat, "run --backend gpu", ["run", os.path.join(TESTS, "data/experiments/tiny.ini"), "--backend", "gpu", "--list"],
         ["--backend", "gpu"])


# ----------------------------------------------------------------------------
# cases: run records on resume

def record_cases():
    cat = "run records"
    first = train_args("--save-every", "1")

    def trained(fn):
        def setup(d):
            lm_data(d)
            args = [a.replace("{D}", d) for a in first]
            r = subprocess.run([BIN] + args, capture_output=True)
            if r.returncode != 0:
                raise RuntimeError("setup training failed: " + r.stderr.decode(errors="replace"))
            fn(d + "/out")
        return setup
    res = ["train", "--resume", "--out", "{D}/out"]
    case(cat, "config.ini damaged", res, ["config.ini"],
         trained(lambda o: write(o + "/config.ini", open(o + "/config.ini").read().replace("[optim]", "[optim\n"))))
    case(cat, "config.ini missing", res, ["config.ini"], trained(lambda o: os.remove(o + "/config.ini")))
    case(cat, "metrics.jsonl line damaged", res, ["metrics.jsonl"],
         trained(lambda o: write(o + "/metrics.jsonl", damage_line(open(o + "/metrics.jsonl").read(), 1))))
    case(cat, "state.safetensors truncated", res, ["state.safetensors"],
         trained(lambda o: os.truncate(o + "/checkpoint/state.safetensors", 200)))
    case(cat, "state.safetensors NaN", res, ["state.safetensors"],
         trained(lambda o: corrupt_state_nan(o + "/checkpoint/state.safetensors")))
    case(cat, "resume changing the rank", res + ["--rank", "4"], ["rank"], trained(lambda o: None))
    case(cat, "fresh run into a finished run's directory", first, ["{D}/out"], trained(lambda o: None))


def damage_line(text, index):
    """Cuts line `index` of text in half (a record damaged in the middle of the file)."""
    lines = text.split("\n")
    lines[index] = lines[index][:len(lines[index]) // 2]
    return "\n".join(lines)


def corrupt_state_nan(path):
    h, data = read_st(path)
    key = next(k for k, v in h.items() if k != "__metadata__" and v.get("dtype") == "F32")
    off = h[key]["data_offsets"][0]
    data = bytearray(data)
    data[off:off + 4] = struct.pack("<f", float("nan"))
    write_st(path, h, bytes(data))



# ----------------------------------------------------------------------------
# cases: GGUF models

GGUF_FIXTURE = os.path.join(TESTS, "data/gguf/tiny_llama.gguf")
GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def gguf_layout(b):
    """Offsets of a GGUF v3 file's fields: {key: (key_len_off, type_off, value_off)} and
    a list of tensor infos (name, name_len_off, n_dims_off, type_off, offset_off)."""
    n_tensors, n_kv = struct.unpack("<QQ", b[8:24])
    off, kv, tensors = 24, {}, []

    def skip_str(o):
        return o + 8 + struct.unpack("<Q", b[o:o + 8])[0]
    for _ in range(n_kv):
        start = off
        key_end = skip_str(off)
        key = b[off + 8:key_end].decode()
        t = struct.unpack("<I", b[key_end:key_end + 4])[0]
        voff = key_end + 4
        if t == 8:
            off = skip_str(voff)
        elif t == 9:
            at, n = struct.unpack("<IQ", b[voff:voff + 12])
            off = voff + 12
            for _ in range(n):
                off = skip_str(off) if at == 8 else off + GGUF_SIZES[at]
        else:
            off = voff + GGUF_SIZES[t]
        kv[key] = (start, key_end, voff)
    for _ in range(n_tensors):
        name_end = skip_str(off)
        n_dims = struct.unpack("<I", b[name_end:name_end + 4])[0]
        type_off = name_end + 4 + 8 * n_dims
        tensors.append((b[off + 8:name_end].decode(), off, name_end, type_off, type_off + 4))
        off = type_off + 12
    return kv, tensors


def gguf_case(fn):
    def setup(d):
        b = bytearray(open(GGUF_FIXTURE, "rb").read())
        kv, tensors = gguf_layout(bytes(b))
        write(d + "/m.gguf", bytes(fn(b, kv, tensors)))
    return setup


def patch(b, off, fmt, value):
    b[off:off + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return b


def gguf_cases():
    cat = "GGUF models"
    args = ["generate", "--model", "{D}/m.gguf", "--prompt", "hi", "--steps", "4"]
    t0 = lambda t: t[0]
    cases = [
        ("empty file", lambda b, kv, t: b"", ["m.gguf"]),
        ("wrong magic", lambda b, kv, t: b"GGUX" + b[4:], ["m.gguf"]),
        ("version 1", lambda b, kv, t: patch(b, 4, "<I", 1), ["m.gguf", "version"]),
        ("version 4", lambda b, kv, t: patch(b, 4, "<I", 4), ["m.gguf", "version"]),
        ("tensor count 2^40", lambda b, kv, t: patch(b, 8, "<Q", 2**40), ["m.gguf"]),
        ("metadata count 2^40", lambda b, kv, t: patch(b, 16, "<Q", 2**40), ["m.gguf"]),
        ("cut at 100 bytes", lambda b, kv, t: b[:100], ["m.gguf"]),
        ("cut in the tensor data", lambda b, kv, t: b[:-100], ["m.gguf"]),
        ("key length 2^40", lambda b, kv, t: patch(b, 24, "<Q", 2**40), ["m.gguf"]),
        ("unknown value type", lambda b, kv, t: patch(b, kv["general.architecture"][1], "<I", 99), ["m.gguf"]),
        ("string length 2^50", lambda b, kv, t: patch(b, kv["general.architecture"][2], "<Q", 2**50), ["m.gguf"]),
        ("array of 2^60 strings", lambda b, kv, t: patch(b, kv["tokenizer.ggml.tokens"][2] + 4, "<Q", 2**60),
         ["m.gguf"]),
        ("unknown tensor type", lambda b, kv, t: patch(b, t0(t)[3], "<I", 77), ["m.gguf", "token_embd.weight"]),
        ("misaligned tensor offset", lambda b, kv, t: patch(b, t[1][4], "<Q", struct.unpack("<Q", bytes(b[t[1][4]:t[1][4] + 8]))[0] + 1),
         ["m.gguf"]),
        ("tensor offset past the end", lambda b, kv, t: patch(b, t0(t)[4], "<Q", 2**40), ["m.gguf", "token_embd.weight"]),
        ("tensor dims overflow", lambda b, kv, t: patch(patch(b, t0(t)[2] + 4, "<Q", 2**62), t0(t)[2] + 12, "<Q", 2**62),
         ["m.gguf", "token_embd.weight"]),
        ("tensor with 9 dims", lambda b, kv, t: patch(b, t0(t)[2], "<I", 9), ["m.gguf"]),
        ("required key missing", lambda b, kv, t: b.replace(b"llama.block_count", b"llama.block_cnt__"),
         ["m.gguf", "llama.block_count"]),
        ("unsupported architecture", lambda b, kv, t: b.replace(b"\x05\x00\x00\x00\x00\x00\x00\x00llama", b"\x05\x00\x00\x00\x00\x00\x00\x00bloom", 1),
         ["m.gguf"]),
        ("head count 0", lambda b, kv, t: patch(b, kv["llama.attention.head_count"][2], "<I", 0),
         ["m.gguf", "head_count"]),
        ("rope base NaN", lambda b, kv, t: patch(b, kv["llama.rope.freq_base"][2], "<f", float("nan")),
         ["m.gguf", "freq_base"]),
        ("bos id past the vocabulary", lambda b, kv, t: patch(b, kv["tokenizer.ggml.bos_token_id"][2], "<I", 99999),
         ["m.gguf", "bos_token_id"]),
    ]
    for name, fn, names in cases:
        case(cat, name, args, names, gguf_case(fn))

# ----------------------------------------------------------------------------
# running

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def classify(c, rc, err, d, timed_out):
    if timed_out:
        return "hang", "still running after the time limit"
    if rc < 0 or rc >= 128 or any(m in err for m in SANITIZER_MARKS):
        return "crash", "signal %d" % -rc if rc < 0 else err.strip().splitlines()[-1:] or ["?"]
    if rc == 0:
        return "accepted", "exit 0"
    lines = [l for l in err.strip().splitlines() if l]
    errors = [l for l in lines if l.startswith("lorascope")]
    last = lines[-1] if lines else ""
    if rc not in (1, 2) or len(errors) != 1 or not last.startswith("lorascope"):
        return "unclear", "exit %d, %d error lines, last: %s" % (rc, len(errors), last)
    missing = [n.replace("{D}", d) for n in c["names"] if n.replace("{D}", d) not in last]
    if missing:
        return "unclear", "message does not name %s: %s" % (missing, last)
    if c["out"]:
        out = os.path.join(d, c["out"])
        left = [os.path.join(r, f) for r, _, fs in os.walk(out) for f in fs] if os.path.isdir(out) else []
        if left or os.path.isfile(out):
            return "unclear", "left %d files in %s" % (len(left) or 1, c["out"])
    return "clean", last


def run_case(c, timeout):
    d = tempfile.mkdtemp(prefix="ls_audit_")
    try:
        if c["setup"]:
            c["setup"](d)
        args = [a.replace("{D}", d) for a in c["args"]]
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        try:
            r = subprocess.run([BIN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=timeout, env=env, cwd=d)
            return classify(c, r.returncode, r.stderr.decode(errors="replace"), d, False)
        except subprocess.TimeoutExpired:
            return classify(c, 0, "", d, True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--assets", default=os.environ.get("LORASCOPE_ASSETS", os.path.join(ROOT, "../shared/assets")))
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--only")
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    config_cases()
    safetensors_cases()
    if os.path.isdir(a.assets):
        llama2c_cases(a.assets)
    else:
        print("audit: assets not found at %s: the llama2.c and tokenizer cases are skipped" % a.assets)
    adapter_cases()
    generic_cases()
    data_cases()
    train_option_cases()
    experiment_cases()
    command_cases()
    record_cases()
    gguf_cases()
    kinds = ["clean", "crash", "hang", "accepted", "unclear"]
    table, bad = {}, []
    for c in CASES:
        if a.only and c["category"] != a.only:
            continue
        kind, why = run_case(c, a.timeout)
        row = table.setdefault(c["category"], dict.fromkeys(kinds, 0))
        row[kind] += 1
        if kind != "clean":
            bad.append("%s / %s: %s: %s" % (c["category"], c["name"], kind, why))
        if a.verbose:
            print("%-8s %s / %s: %s" % (kind, c["category"], c["name"], why), flush=True)
    print("| category | cases | clean error | crash | hang | silently accepted | unclear error |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    total = dict.fromkeys(kinds, 0)
    for cat, row in table.items():
        for k in kinds:
            total[k] += row[k]
        print("| %s | %d | %s |" % (cat, sum(row.values()), " | ".join(str(row[k]) for k in kinds)))
    print("| **all** | **%d** | %s |" % (sum(total.values()), " | ".join("**%d**" % total[k] for k in kinds)))
    for b in bad:
        print("NOT CLEAN: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
