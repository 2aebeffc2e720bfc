#!/usr/bin/env python3
"""RoBERTa tokenizer reference for tests/text/test_wordpiece.c: Hugging Face's
RobertaTokenizer (transformers >= 5, `tokenizers` backend) built from GPT-2's
vocabulary and merges (../shared/assets/tokenizers/gpt2). That vocabulary has
none of RoBERTa's special tokens, so HF appends them: <s> 50257, </s> 50258,
<unk> 50259, <pad> 50260, <mask> 50261 -- the C tokenizer must do the same.

    /opt/refenv/bin/python tests/reference/make_roberta_reference.py

writes tests/data/text/roberta_reference.jsonl in the format of
wordpiece_reference.jsonl (token type ids are all 0: RoBERTa has none).
"""
import json
import os
import sys

import transformers
from transformers import RobertaTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPT2 = os.path.join(ROOT, "..", "shared", "assets", "tokenizers", "gpt2")
OUT = os.path.join(ROOT, "tests", "data", "text", "roberta_reference.jsonl")

TEXTS = [
    ("plain", "The quick brown fox jumps over the lazy dog."),
    ("empty", ""),
    ("spaces", "  two  spaces   and\ttabs\n"),
    ("accents_cjk_emoji", "Café naïve 北京 😀 👍🏽"),
    ("contractions_digits", "don't I'll 1234567 3.14"),
    ("specials_in_text", "a <mask> b</s>c<s> <pad><unk> <|endoftext|> <S> </s"),
    ("sst2_style", "it 's a charming and often affecting journey . "),
]
PAIRS = [
    ("pair_basic", "How old are you?", "I am six years old."),
    ("pair_empty_first", "", "Only the second."),
]
TRUNCATIONS = [
    ("trunc_single", "The quick brown fox jumps over the lazy dog again.", None, 6, False),
    ("trunc_single_pad", "hi there", None, 8, True),
    ("trunc_pair_first_longer", "one two three four five six seven eight nine ten", "a b", 10, False),
    ("trunc_pair_both_long", "one two three four five six seven", "alpha beta gamma delta epsilon zeta", 11, False),
    ("trunc_pair_pad", "left", "right", 12, True),
]


def main():
    vocab = json.load(open(os.path.join(GPT2, "encoder.json"), encoding="utf-8"))
    lines = open(os.path.join(GPT2, "vocab.bpe"), encoding="utf-8").read().split("\n")
    merges = [tuple(l.split(" ")) for l in lines[1:] if l]
    tok = RobertaTokenizer(vocab=vocab, merges=merges)
    assert [tok.bos_token_id, tok.eos_token_id, tok.unk_token_id, tok.pad_token_id, tok.mask_token_id] == \
        [50257, 50258, 50259, 50260, 50261], "HF appends the special tokens in another order"
    cases = []

    def add(name, a, b, special=True, max_length=0, pad=False):
        kw = dict(add_special_tokens=special)
        if max_length:
            kw.update(truncation="longest_first", max_length=max_length)
            if pad:
                kw.update(padding="max_length")
        enc = tok(a, b, **kw) if b is not None else tok(a, **kw)
        cases.append({"name": name, "text": a, "pair": b, "special": special, "max_length": max_length,
                      "pad": pad, "ids": enc["input_ids"], "type_ids": [0] * len(enc["input_ids"]),
                      "attention_mask": enc["attention_mask"]})

    for name, text in TEXTS:
        add(name, text, None)
        add(name + "_no_special", text, None, special=False)
    for name, a, b in PAIRS:
        add(name, a, b)
    for name, a, b, m, pad in TRUNCATIONS:
        add(name, a, b, max_length=m, pad=pad)
    with open(OUT, "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=True) + "\n")
    print(f"{len(cases)} cases; transformers {transformers.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
