#!/usr/bin/env python3
"""Writes src/text/wordpiece_tables.h: the per-character tables of HF's
BertTokenizer (BertNormalizer + BertPreTokenizer of the `tokenizers` library,
which transformers >= 5 runs for BertTokenizer and AutoTokenizer).

The tables are measured on the reference implementation itself, one code point
at a time, rather than derived from Python's unicodedata: the Rust library
classifies with its own (older) Unicode category tables and keeps unassigned
code points that unicodedata calls Cn, so unicodedata-derived tables would
disagree on ~830,000 code points (see the report printed at the end).

    /opt/refenv/bin/python tests/reference/make_wordpiece_tables.py > src/text/wordpiece_tables.h

Each table is a property of one character, which is sound because every step
is per character: clean_text (drop NUL, U+FFFD and "control" characters, map
whitespace to ' '), CJK padding, accent stripping (NFD, drop Mn; composed
sequences do not reorder once the marks are gone), lowercasing (Rust's
char::to_lowercase, no final-sigma rule), then the pre-tokenizer's split on
whitespace and punctuation.
"""
import sys
import unicodedata

import tokenizers
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def hangul_nfd(cp):
    s = cp - HANGUL_FIRST
    out = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
    if s % 28:
        out.append(0x11A7 + s % 28)
    return "".join(map(chr, out))


def probe():
    clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    strip = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    cjk = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    pre = BertPreTokenizer()
    t = {"control": set(), "space": set(), "split_space": set(), "punct": set(), "cjk": set()}
    strip_map, lower_map = {}, {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # not representable in UTF-8 text
        c = chr(cp)
        r = clean.normalize_str(c)
        if r == "":
            t["control"].add(cp)
        elif r == " " and c != " ":
            t["space"].add(cp)
        elif r != c:
            sys.exit(f"clean_text maps U+{cp:04X} to {r!r}: not a per-character drop or space")
        pieces = pre.pre_tokenize_str("a" + c + "a")
        if len(pieces) == 2:
            t["split_space"].add(cp)
        elif len(pieces) == 3:
            t["punct"].add(cp)
        if cjk.normalize_str(c) != c:
            t["cjk"].add(cp)
        r = strip.normalize_str(c)
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            if r != hangul_nfd(cp):
                sys.exit(f"U+{cp:04X}: Hangul decomposition differs from the algorithm")
        elif r != c:
            strip_map[cp] = r
        r = lower.normalize_str(c)
        if r != c:
            lower_map[cp] = r
    return t, strip_map, lower_map


def ranges(cps):
    out, start, prev = [], None, None
    for c in sorted(cps):
        if start is None:
            start = prev = c
        elif c == prev + 1:
            prev = c
        else:
            out.append((start, prev))
            start = prev = c
    if start is not None:
        out.append((start, prev))
    return out


def emit_ranges(name, cps):
    rs = ranges(cps)
    print(f"static const uint32_t {name}[][2] = {{  // {len(rs)} ranges")
    line = ""
    for lo, hi in rs:
        item = f"{{0x{lo:X}, 0x{hi:X}}}, "
        if len(line) + len(item) > 100:
            print("    " + line.rstrip())
            line = ""
        line += item
    if line:
        print("    " + line.rstrip())
    print("};")


def emit_map(name, m):
    # code point -> replacement (UTF-8, possibly empty): {cp, offset, length} into one string pool
    pool, rows = b"", []
    for cp in sorted(m):
        b = m[cp].encode("utf-8")
        rows.append((cp, len(pool), len(b)))
        pool += b
    print(f"static const wp_map_entry {name}[] = {{  // {len(rows)} code points")
    line = ""
    for cp, off, n in rows:
        item = f"{{0x{cp:X}, {off}, {n}}}, "
        if len(line) + len(item) > 100:
            print("    " + line.rstrip())
            line = ""
        line += item
    if line:
        print("    " + line.rstrip())
    print("};")
    print(f"static const char {name}_pool[] =")
    for i in range(0, len(pool), 24):
        print('    "' + "".join(f"\\x{x:02x}" for x in pool[i:i + 24]) + '"')
    print(";")


def unicodedata_disagreements(t):
    n = 0
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        py_control = c not in "\t\n\r" and (cp == 0 or cp == 0xFFFD or unicodedata.category(c).startswith("C"))
        n += py_control != (cp in t["control"])
    return n


def main():
    t, strip_map, lower_map = probe()
    print("// Generated by tests/reference/make_wordpiece_tables.py: HF BertTokenizer's per-character")
    print(f"// behaviour measured on tokenizers {tokenizers.__version__} (BertNormalizer, BertPreTokenizer).")
    print("// Do not edit; rerun the script.")
    print("#ifndef LS_TEXT_WORDPIECE_TABLES_H")
    print("#define LS_TEXT_WORDPIECE_TABLES_H")
    print()
    print("#include <stdint.h>")
    print()
    print("typedef struct {")
    print("    uint32_t cp;")
    print("    uint16_t offset, length;  // bytes of the replacement in the pool")
    print("} wp_map_entry;")
    print()
    print("// clean_text drops these (NUL, U+FFFD, the library's \"other\" categories but \\t \\n \\r)")
    emit_ranges("wp_control", t["control"])
    print("// clean_text maps these to ' '")
    emit_ranges("wp_space", t["space"])
    print("// the pre-tokenizer splits on these and drops them")
    emit_ranges("wp_split_space", t["split_space"])
    print("// the pre-tokenizer isolates these as one-character words")
    emit_ranges("wp_punct", t["punct"])
    print("// handle_chinese_chars puts ' ' on both sides of these")
    emit_ranges("wp_cjk", t["cjk"])
    print("// strip_accents: NFD with Mn removed (Hangul syllables are decomposed by the algorithm)")
    emit_map("wp_strip", strip_map)
    print("// lowercase: char::to_lowercase")
    emit_map("wp_lower", lower_map)
    print()
    print("#endif")
    print(f"unicodedata-derived control class would differ on {unicodedata_disagreements(t)} code points",
          file=sys.stderr)


if __name__ == "__main__":
    main()
