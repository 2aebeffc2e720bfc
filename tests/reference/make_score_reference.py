#!/usr/bin/env python3
"""Reference values for `lorascope score` (src/eval/scores.c): NIST and CIDEr.

Corpus: the first 60 meaning representations of the E2E test set
(../shared/assets/data/e2e/test.txt); each instance's first reference is the
hypothesis and the others its references, plus four altered hypotheses (words
reversed, one word, empty, doubled) so that the length penalties and empty
n-gram orders are exercised. Writes tests/data/eval/score_hyp.txt,
score_refs.txt (measure_scores.py's input format) and score_expected.json.

CIDEr: pycocoevalcap's Cider (pip package pycocoevalcap) on the whitespace
tokens of each line — the computation after its tokenizer, which needs Java
(lorascope's PTB tokenization is tested on its own in test_metrics.c).
NIST: an independent transcription written here from the definition of
e2e-metrics' metrics/pymteval.py NISTScore (max n 5, case-insensitive,
mteval-v13a basic tokenization), with Python's re module.

Run: /opt/refenv/bin/python tests/reference/make_score_reference.py
"""
import collections
import json
import math
import os
import re

from pycocoevalcap.cider.cider import Cider

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSET = os.path.join(ROOT, "..", "shared", "assets", "data", "e2e", "test.txt")
OUT = os.path.join(ROOT, "tests", "data", "eval")


def mteval_tokens(s):
    s = s.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    s = s.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    s = " " + s + " "
    s = re.sub(r"([{-~\[-` -&(-+:-@/])", r" \1 ", s)
    s = re.sub(r"([^0-9])([.,])", r"\1 \2 ", s)
    s = re.sub(r"([.,])([^0-9])", r" \1 \2", s)
    s = re.sub(r"([0-9])(-)", r"\1 \2 ", s)
    s = re.sub(r"\s+", " ", s).strip()
    return s.split(" ")


def grams(tokens, n):
    low = [t.lower() for t in tokens]
    return [tuple(low[i:i + n]) for i in range(len(low) - n + 1)]


def nist(hyps, refsets, max_n=5):
    ref_counts = collections.Counter()  # n-gram -> occurrences in all references; () -> tokens
    hits = []                           # per segment: {ngram: clipped hits}
    cand = [0] * max_n
    avg_ref = 0.0
    for hyp, refs in zip(hyps, refsets):
        h = mteval_tokens(hyp)
        rs = [mteval_tokens(r) for r in refs]
        seg = {}
        for n in range(1, max_n + 1):
            cand[n - 1] += len(h) - n + 1
            best = collections.Counter()
            for r in rs:
                for g, c in collections.Counter(grams(r, n)).items():
                    best[g] = max(best[g], c)
                ref_counts.update(grams(r, n))
            for g, c in collections.Counter(grams(h, n)).items():
                if min(c, best[g]) > 0:
                    seg[g] = min(c, best[g])
        hits.append(seg)
        total = sum(len(r) for r in rs)
        ref_counts[()] += total
        avg_ref += total / len(rs)
    info_sum = [0.0] * max_n
    for seg in hits:
        for g, c in seg.items():
            info = math.log(ref_counts[g[:-1]] / ref_counts[g], 2) if ref_counts[g] else 0.0
            info_sum[len(g) - 1] += info * c
    score = sum(i / c for i, c in zip(info_sum, cand) if c > 0)
    ratio = cand[0] / avg_ref
    beta = -math.log(0.5) / math.log(1.5) ** 2
    bp = 1.0 if ratio >= 1 else 0.0 if ratio <= 0 else math.exp(-beta * math.log(ratio) ** 2)
    return bp * score


def main():
    groups = collections.OrderedDict()
    with open(ASSET, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                mr, ref = line.split("||", 1)
                groups.setdefault(mr, []).append(ref.strip())
    inst = [g for g in groups.values() if len(g) >= 3][:60]
    hyps = [g[0] for g in inst]
    refs = [g[1:] for g in inst]
    hyps[1] = " ".join(reversed(hyps[1].split()))
    hyps[2] = hyps[2].split()[0]
    hyps[3] = ""
    hyps[4] = hyps[4] + " " + hyps[4]
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "score_hyp.txt"), "w", encoding="utf-8") as f:
        f.write("".join(h + "\n" for h in hyps))
    with open(os.path.join(OUT, "score_refs.txt"), "w", encoding="utf-8") as f:
        f.write("".join("\n".join(r) + "\n\n" for r in refs))
    cider, _ = Cider().compute_score({i: r for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)})
    out = {"n": len(hyps), "nist": nist(hyps, refs), "cider_whitespace_tokens": float(cider)}
    with open(os.path.join(OUT, "score_expected.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(out)


if __name__ == "__main__":
    main()
