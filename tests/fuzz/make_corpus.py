#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (small valid inputs) under tests/fuzz/corpus/.

Run once: python3 tests/fuzz/make_corpus.py. Standard library only. Reads
tests/data; writes every seed itself (E2E and SST-2 lines in those formats,
tokenizers built here: nothing of ../shared/assets is copied into the
repository), and the fixed tokenizers the text targets encode with into
tests/fuzz/fixtures/. Crash inputs kept as regression seeds are named
regress-* and are not written here.
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
    # generic layouts: T5's two stacks with an adapter name, DoRA, an embedding, regex patterns
    pre = "base_model.model."
    st = safetensors({pre + "encoder.block.0.layer.0.SelfAttention.q.lora_A.default.weight": ("F32", [r, d], [0.1] * (r * d)),
                      pre + "encoder.block.0.layer.0.SelfAttention.q.lora_B.default.weight": ("F32", [d, r], [0.2] * (r * d)),
                      pre + "decoder.block.0.layer.1.EncDecAttention.q.lora_A.default.weight": ("F32", [r, d], [0.1] * (r * d)),
                      pre + "decoder.block.0.layer.1.EncDecAttention.q.lora_B.default.weight": ("F32", [d, r], [0.2] * (r * d)),
                      pre + "model.embed_tokens.lora_embedding_A.default": ("F32", [r, 8], [0.3] * (r * 8)),
                      pre + "model.embed_tokens.lora_embedding_B.default": ("F32", [d, r], [0.4] * (r * d)),
                      pre + "lm_head.weight": ("F32", [8, d], [0.5] * (8 * d))})
    cfg = json.dumps({"r": r, "lora_alpha": 4, "target_modules": r".*(q|embed_tokens)",
                      "rank_pattern": {r"block\.0\..*\.q": 2}, "alpha_pattern": {"EncDecAttention.q": 3}}).encode()
    write("fuzz_adapter", "t5_generic_adapter", cfg + b"\xff" + st)
    pre = "base_model.model.model.layers.0.self_attn.qkv_proj."
    st = safetensors({pre + "lora_A.weight": ("F32", [r, d], [0.1] * (r * d)),
                      pre + "lora_B.weight": ("F32", [3 * d, r], [0.2] * (3 * r * d)),
                      pre + "lora_magnitude_vector": ("F32", [3 * d], [1.0] * (3 * d))})
    cfg = json.dumps({"r": r, "lora_alpha": 8, "target_modules": ["qkv_proj"], "use_dora": True,
                      "layers_to_transform": [0]}).encode()
    write("fuzz_adapter", "phi3_dora_adapter", cfg + b"\xff" + st)
    write("fuzz_adapter", "llama2c.bin", llama2c())


def bytes_to_unicode():
    """GPT-2's byte-to-unicode alphabet (openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def gpt2_tiny():
    """A tiny GPT-2 tokenizer: the 256 byte symbols, a few merges, <|endoftext|>."""
    b2u = bytes_to_unicode()
    sp = b2u[ord(" ")]
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), (sp, "w"), ("o", "r"), (sp + "w", "or"),
              ("l", "d"), (sp + "wor", "ld"), (sp, "t"), ("i", "n"), (sp + "t", "he")]
    vocab = [b2u[b] for b in range(256)] + [a + b for a, b in merges]
    enc = {t: i for i, t in enumerate(vocab)}
    enc["<|endoftext|>"] = len(enc)
    bpe = "#version: 0.2\n" + "".join("%s %s\n" % m for m in merges)
    return json.dumps(enc, ensure_ascii=False).encode(), bpe.encode()


def llama2c_tokenizer(pieces, max_len=None):
    """llama2.c tokenizer.bin: int32 max_token_length, then (float32 score, int32 len, bytes) per token."""
    pieces = [p.encode() if isinstance(p, str) else p for p in pieces]
    out = struct.pack("<i", max_len or max(len(p) for p in pieces))
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(p)) + p
    return out


def more_corpora():
    root = os.path.normpath(os.path.join(HERE, "..", ".."))
    fixtures = os.path.join(HERE, "fixtures")
    enc, bpe = gpt2_tiny()
    with open(os.path.join(fixtures, "gpt2_encoder.json"), "wb") as f:
        f.write(enc)
    with open(os.path.join(fixtures, "gpt2_vocab.bpe"), "wb") as f:
        f.write(bpe)
    for sub in ("fuzz_tokenizer_llama2c", "fuzz_tokenizer_gpt2", "fuzz_dataset", "fuzz_train_config",
                "fuzz_experiment", "fuzz_hf_config"):
        os.makedirs(os.path.join(HERE, "corpus", sub), exist_ok=True)
    # llama2.c tokenizer: a minimal valid one (<unk>, BOS, EOS, 256 byte
    # pieces, a few merges), also the fixed tokenizer of the text mode
    # (fixtures/llama2c_minimal.bin), and text.
    minimal = llama2c_tokenizer(["<unk>", "\n<s>\n", "\n</s>\n"] + [b"<0x%02X>" % b for b in range(256)] +
                                ["\u2581", "\u2581t", "he", "\u2581the", "\u2581a"])
    write("fuzz_tokenizer_llama2c", "minimal.bin", b"\x00" + minimal)
    with open(os.path.join(fixtures, "llama2c_minimal.bin"), "wb") as f:
        f.write(minimal)
    write("fuzz_tokenizer_llama2c", "minimal-vocab.bin", b"\x02" + bytes([(259 + 5) // 3]) + minimal)
    write("fuzz_tokenizer_llama2c", "text", b"\x01Once upon a time, there was a little girl named Lily. caf\xc3\xa9 \xf0\x9f\x98\x80\n")
    # GPT-2: the fixture files, and text.
    write("fuzz_tokenizer_gpt2", "tiny", b"\x00" + enc + b"\xff" + bpe)
    write("fuzz_tokenizer_gpt2", "text", b"\x01Hello world, it's the 1234th <|endoftext|> caf\xc3\xa9 \xf0\x9f\x98\x80\n\n  x")
    # datasets: a few lines of E2E valid, SST-2 dev, a JSONL file, text.
    # written here in the data sets' formats (the assets are never copied into the repository)
    e2e = (b'name : The Copper Kettle | eatType : coffee shop | area : riverside||The Copper Kettle is a coffee shop by the river .\nname : The Copper Kettle | eatType : coffee shop | area : riverside||By the river there is a coffee shop , The Copper Kettle .\nname : Blue Lantern | food : Italian | priceRange : cheap | familyFriendly : yes||Blue Lantern serves cheap Italian food and welcomes families .\nname : Blue Lantern | food : Italian | priceRange : cheap | familyFriendly : yes||For cheap Italian food with children , try Blue Lantern .\n')
    sst2 = (b'sentence\tlabel\na warm , funny and quietly moving film . \t1\nthe plot drags and the jokes fall flat . \t0\nan easy recommendation for anyone who loves music . \t1\ntedious from start to finish . \t0\n')
    jsonl = (json.dumps({"context": "Translate: cat", "completion": " chat"}) + "\n\n" +
             json.dumps({"context": "x", "completion": " y", "extra": 1}) + "\n").encode()
    text = b"Once upon a time.\n\nThere was a cat. It sat.\n\nThe end.\n"
    write("fuzz_dataset", "e2e", bytes([0, 40]) + e2e)
    write("fuzz_dataset", "sst2", bytes([1, 60]) + sst2)
    write("fuzz_dataset", "jsonl", bytes([2, 20]) + jsonl)
    write("fuzz_dataset", "text", bytes([3 | (7 << 2), 0]) + text)
    write("fuzz_dataset", "text-docsep", bytes([3 | (3 << 2) | 64, 0]) + text)
    # INI files.
    write("fuzz_train_config", "train.ini", b"""; a training config
[model]
path = stories260K.bin
tokenizer = tok512.bin
[data]
task = e2e
train = valid.txt
val = test.txt
val_frac = 0.1
doc_sep = <|endoftext|>
eval_max = 8
seq_len = 64
[lora]
rank = 4
alpha = 8
modules = q,v
rslora = true
init_std = 0.02
dropout = 0.1
init = gaussian
layers = 0,1
[optim]
steps = 10
batch_size = 4
grad_accum = 2
lr = 3e-3
schedule = cosine
warmup = 2
weight_decay = 0.01
clip = 1.0
eps = 1e-8
label_smoothing = 0.1
seed = 42
[run]
eval_every = 5
threads = 1
backend = cpu
out = runs/x
save_every = 5
log_every = 1
merged_out = merged
""")
    for name in ("tiny.ini", "repro.ini"):
        with open(os.path.join(root, "tests", "data", "experiments", name), "rb") as f:
            ini = f.read()
        write("fuzz_experiment", name, ini)
    # HF config.json: the llama_tiny base's (matches the fixed model.safetensors), GPT-2's.
    for fam in ("llama_tiny", "gpt2_tiny"):
        with open(os.path.join(root, "tests", "data", "peft", fam, "base", "config.json"), "rb") as f:
            write("fuzz_hf_config", fam + ".json", f.read())
    write("fuzz_hf_config", "llama2c.bin", llama2c())


WORDPIECE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "un", "##aff", "##able", "hello", "world",
                   "##s", "a", "##a", "cafe", "\u4e2d", "\u6587", ",", "!", ".", "'", "##ing", "run", "##n", "e", "##e"]


def wordpiece_corpora():
    """WordPiece: a small vocabulary (also the fixed tokenizer of the text
    mode, fixtures/wordpiece_vocab.txt), configs, texts and pairs."""
    os.makedirs(os.path.join(HERE, "corpus", "fuzz_tokenizer_wordpiece"), exist_ok=True)
    vocab = ("\n".join(WORDPIECE_VOCAB) + "\n").encode()
    with open(os.path.join(HERE, "fixtures", "wordpiece_vocab.txt"), "wb") as f:
        f.write(vocab)
    cfg = json.dumps({"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True,
                      "unk_token": "[UNK]", "cls_token": {"content": "[CLS]"}, "model_max_length": 512}).encode()
    w = lambda name, data: write("fuzz_tokenizer_wordpiece", name, data)
    w("vocab", b"\x00" + vocab)
    w("vocab-config", b"\x00" + vocab + b"\xff" + cfg)
    w("vocab-cased", b"\x00" + vocab + b"\xff" + b'{"do_lower_case": false, "tokenize_chinese_chars": false}')
    w("text", b"\x01Hello, WORLD! Unaffable caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 [SEP] running \xf0\x9f\x98\x80\t\x01x")
    w("pair", b"\x21the a a a a\xffhello world's end.")
    w("pair-pad", b"\x41un\xffaff")
    w("long-word", b"\x05" + b"a" * 120 + b" " + b"\xc3\xa9" * 101)
    w("roberta", b"\x03Hello <s> world </s><mask> it's")


if __name__ == "__main__":
    main()
    more_corpora()
    wordpiece_corpora()
