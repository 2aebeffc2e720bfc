#!/usr/bin/env python3
"""WordPiece reference ids for tests/text/test_wordpiece.c, made with Hugging
Face transformers (AutoTokenizer = BertTokenizer, backed by the `tokenizers`
library in transformers >= 5) on all-MiniLM-L6-v2's tokenizer
(../shared/assets/models/all-MiniLM-L6-v2: vocab.txt + tokenizer_config.json).

    /opt/refenv/bin/python tests/reference/make_wordpiece_reference.py

writes tests/data/text/wordpiece_reference.jsonl, one case a line:
  {"name", "text", "pair" (or null), "special", "max_length" (0: none),
   "pad", "ids", "type_ids", "attention_mask", "legacy_agrees"}
and tests/data/text/wordpiece_sst2_dev.jsonl: {"line", "ids"} for every
sentence of ../shared/assets/data/sst2/dev.tsv (the texts stay in the asset;
the test reads them from there).

No text holds a NUL character: the C interface takes NUL-terminated text.
HF drops NUL (clean_text), which main() checks, so a C caller loses nothing. "legacy_agrees" records whether the slow
Python tokenizer (BertTokenizerLegacy) gives the same ids; the C tokenizer
follows the fast one, which is what transformers 5 runs for BertTokenizer.
"""
import json
import os
import random
import sys

import tokenizers
import transformers
from transformers import AutoTokenizer
from transformers.models.bert import BertTokenizerLegacy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETS = os.path.join(ROOT, "..", "shared", "assets")
MODEL = os.path.join(ASSETS, "models", "all-MiniLM-L6-v2")
OUT = os.path.join(ROOT, "tests", "data", "text")

TEXTS = [
    ("plain", "The quick brown fox jumps over the lazy dog."),
    ("empty", ""),
    ("only_spaces", "   \t  \n "),
    ("casing", "HeLLo WoRLD, THIS is MiXeD CaSe; iPhone McDonald's"),
    ("accents", "Café naïve résumé façade Ångström Øresund Straße coöperate déjà vu"),
    ("accents_combining", "Cafe\u0301 n\u0303o e\u0300 a\u0308b\u0327c"),
    ("greek_final_sigma", "ΟΔΟΣ Σίσυφος ΣΑΣ"),
    ("turkish_dotted_i", "İstanbul ıı İİ"),
    ("cyrillic", "Привет, мир! Ёлка ёж"),
    ("cjk", "我爱北京天安门。今日は良い天気ですね、東京"),
    ("cjk_mixed", "BERT是一个模型model2019年"),
    ("cjk_ext_b", "\U00020000\U0002A6D6\U0002B820\U0002B920 x"),
    ("cjk_compat", "\uF900\uFA0E\U0002F800"),
    ("hangul", "안녕하세요 세계 한국어"),
    ("arabic_hebrew", "مرحبا بالعالم שלום עולם"),
    ("devanagari_thai", "नमस्ते दुनिया สวัสดีชาวโลก"),
    ("punctuation", "Hello!!! What?! (yes) [no] {maybe} a-b_c/d\\e \"quoted\" 'single' `tick` ~tilde^ $5 & 50% @user #tag"),
    ("unicode_punct", "«guillemets» „quotes“ —dash– …ellipsis ¿qué? ¡sí! 「括弧」 『二重』 ‹x›"),
    ("symbols", "€100 £5 ¥3 © ® ™ ° ± × ÷ ∑ ∞ → ≠ ♥ ★"),
    ("numbers", "3.14159 1,000,000 2nd 3rd 42nd 007 1e-5 0x1F"),
    ("contractions", "don't can't won't it's y'all I'm we've"),
    ("long_word_100", "a" * 100),
    ("long_word_101", "a" * 101),
    ("long_word_mixed", "super" + "cali" * 30 + " ok " + "x" * 99 + "é"),
    ("long_multibyte_word", "é" * 100 + " " + "é" * 101),
    ("unknown_pieces", "qzxqzxqzx ☃☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 zzzzzzzzzzzzzzzzzzzz"),
    ("control_chars", "a\x01b\x02c\x07d\x1be\x7ff\u200bg\u200dh\ufeffi\ufffdj\u00adk"),
    ("whitespace_kinds", "a\tb\nc\rd\u00a0e\u2003f\u3000g\u2028h\u0085i\x0bj\x0ck"),
    ("multiple_spaces", "  leading    and   trailing   spaces   "),
    ("emoji", "I love it 😀😂🥰 👍🏽 👨‍👩‍👧 🇫🇷 ❤️ ok"),
    ("special_in_text", "hello [SEP] world [CLS][MASK]x[PAD] [UNK] [sep] [ SEP ] [SEP"),
    ("private_use_and_unassigned", "a\ue000b\U000f0000c\u0378d\U000E0001e"),
    ("new_unicode", "\U0001FA77 \u0898 \u2E5D \uA7CB x"),
    ("html_url_code", "<b>bold</b> https://example.com/a?b=c&d=e#f user@example.org x+=1; f(x)->y"),
    ("sst2_style", "it 's a charming and often affecting journey . "),
    ("newlines_paragraphs", "First line.\n\nSecond paragraph\r\nthird\n"),
]

PAIRS = [
    ("pair_basic", "How old are you?", "I am six years old."),
    ("pair_empty_second", "Just one sentence.", ""),
    ("pair_empty_first", "", "Only the second."),
    ("pair_cjk_accents", "Café 北京", "naïve ÜBER"),
]

# (name, a, b, max_length, pad)
TRUNCATIONS = [
    ("trunc_single", "The quick brown fox jumps over the lazy dog again and again.", None, 8, False),
    ("trunc_single_pad", "short text", None, 10, True),
    ("trunc_single_exact", "one two three", None, 5, False),
    ("trunc_single_only_specials", "anything at all", None, 2, True),
    ("trunc_pair_first_longer", "one two three four five six seven eight nine ten eleven", "a b c", 12, False),
    ("trunc_pair_second_longer", "a b", "one two three four five six seven eight nine ten eleven", 12, False),
    ("trunc_pair_both_long_even", "one two three four five six seven eight", "alpha beta gamma delta epsilon zeta eta theta", 13, False),
    ("trunc_pair_both_long_odd", "one two three four five six seven eight", "alpha beta gamma delta epsilon zeta eta theta", 12, False),
    ("trunc_pair_equal_long", "one two three four five six", "uno dos tres cuatro cinco seis", 10, False),
    ("trunc_pair_first_longer_both_cut", "one two three four five six seven eight nine", "alpha beta gamma delta epsilon", 9, False),
    ("trunc_pair_pad", "left side", "right side", 16, True),
    ("trunc_pair_no_cut", "a b", "c d", 16, False),
    ("trunc_pair_wordpieces_cut", "unbelievably tokenization", "antidisestablishmentarianism", 9, False),
]

# Random strings over a pool of interesting characters (fixed seed).
POOL = ("aAbBzZ09 é É ñ ß ø Ω σ ς Σ я Я 中 文 한 글 ㄱ ا ב ि ् ั "
        ".,!?;:'\"()[]{}-_/\\@#$%^&*+=<>|~` \t\n\u00a0\u2003\u3000\u200b\u00ad\x01\x7f"
        "\u0301\u0308\u0327 😀 👍 🏽 \u200d ☃ € © ½ ² ① Ⅻ ﬁ ﬀ Å Ǆ ǅ ǆ İ ı ẞ ͅ ϐ ϑ ᾳ ᾼ ῼ ﬓ")


def random_texts(n, seed):
    rng = random.Random(seed)
    chars = [c for c in POOL if c != " "] + [" "] * 6
    return [("random_%02d" % i, "".join(rng.choice(chars) for _ in range(rng.randint(1, 40)))) for i in range(n)]


def case(tok, legacy, name, a, b, special=True, max_length=0, pad=False):
    kw = dict(add_special_tokens=special)
    if max_length:
        kw.update(truncation="longest_first", max_length=max_length)
        if pad:
            kw.update(padding="max_length")
    enc = tok(a, b, **kw) if b is not None else tok(a, **kw)
    try:
        old = legacy(a, b, **kw) if b is not None else legacy(a, **kw)
        agrees = old["input_ids"] == enc["input_ids"]
    except Exception:  # the slow tokenizer refuses some truncations
        agrees = False
    return {"name": name, "text": a, "pair": b, "special": special, "max_length": max_length, "pad": pad,
            "ids": enc["input_ids"], "type_ids": enc["token_type_ids"], "attention_mask": enc["attention_mask"],
            "legacy_agrees": agrees}


def main():
    tok = AutoTokenizer.from_pretrained(MODEL)
    legacy = BertTokenizerLegacy.from_pretrained(MODEL)
    assert tok("a\x00b")["input_ids"] == tok("ab")["input_ids"], "HF no longer drops NUL"
    cases = []
    for name, text in TEXTS + random_texts(40, 20261127):
        cases.append(case(tok, legacy, name, text, None))
    for name, text in TEXTS[:6]:
        cases.append(case(tok, legacy, name + "_no_special", text, None, special=False))
    for name, a, b in PAIRS:
        cases.append(case(tok, legacy, name, a, b))
    for name, a, b, m, pad in TRUNCATIONS:
        cases.append(case(tok, legacy, name, a, b, max_length=m, pad=pad))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "wordpiece_reference.jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=True) + "\n")
    n_sst = 0
    with open(os.path.join(ASSETS, "data", "sst2", "dev.tsv"), encoding="utf-8") as src, \
            open(os.path.join(OUT, "wordpiece_sst2_dev.jsonl"), "w", encoding="utf-8") as f:
        for lineno, line in enumerate(src, 1):
            if lineno == 1:
                continue  # header
            sentence = line.rstrip("\n").split("\t")[0]
            f.write(json.dumps({"line": lineno, "ids": tok(sentence)["input_ids"]}) + "\n")
            n_sst += 1
    print(f"{len(cases)} cases ({sum(not c['legacy_agrees'] for c in cases)} where the slow tokenizer differs), "
          f"{n_sst} SST-2 dev sentences; transformers {transformers.__version__}, tokenizers {tokenizers.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
