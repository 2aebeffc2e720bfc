#!/usr/bin/python3
"""An independent transcription of the E2E NLG Challenge's BLEU, for checking
src/eval/metrics.c (which emulates the regexes byte by byte in C).

Definition followed: tuetschek/e2e-metrics, measure_scores.py -p, i.e.
metrics/pymteval.py BLEUScore() with its defaults (max_ngram 4, case-insensitive
n-gram matching, no smoothing, closest reference length with ties to the shorter,
mteval-v13a basic tokenization). Written from that definition with Python's re
module, so the regex semantics are Python's own.

Usage: e2e_bleu_reference.py REF_FILE HYP_FILE
  REF_FILE: references one per line, instances separated by an empty line
  HYP_FILE: one hypothesis per line
Prints: BLEU, then hits_1..4, cand_1..4, ref_len, one per line.
"""
import math
import re
import sys


def read_lines(path, multi_ref=False):
    buf = [[]] if multi_ref else []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if multi_ref:
                if not line:
                    buf.append([])
                else:
                    buf[-1].append(line)
            else:
                buf.append(line)
    if multi_ref and not buf[-1]:
        del buf[-1]
    return buf


def tokenize(sent):
    sent = re.sub(r"<skipped>", r"", sent)
    sent = re.sub(r"-\n", r"", sent)
    sent = re.sub(r"\n", r" ", sent)
    sent = re.sub(r"&quot;", r'"', sent)
    sent = re.sub(r"&amp;", r"&", sent)
    sent = re.sub(r"&lt;", r"<", sent)
    sent = re.sub(r"&gt;", r">", sent)
    sent = " " + sent + " "
    sent = re.sub(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", r" \1 ", sent)
    sent = re.sub(r"([^0-9])([\.,])", r"\1 \2 ", sent)
    sent = re.sub(r"([\.,])([^0-9])", r" \1 \2", sent)
    sent = re.sub(r"([0-9])(-)", r"\1 \2 ", sent)
    sent = re.sub(r"\s+", r" ", sent)
    return sent.strip().split(" ")


def ngram_counts(n, sent):
    counts = {}
    low = [t.lower() for t in sent]
    for i in range(len(low) - n + 1):
        g = tuple(low[i:i + n])
        counts[g] = counts.get(g, 0) + 1
    return counts


def main():
    refs = read_lines(sys.argv[1], multi_ref=True)
    hyps = read_lines(sys.argv[2])
    assert len(refs) == len(hyps), (len(refs), len(hyps))
    hits = [0] * 4
    cand = [0] * 4
    ref_len = 0
    for hyp, rs in zip(hyps, refs):
        h = tokenize(hyp)
        rt = [tokenize(r) for r in rs]
        for n in range(1, 5):
            merged = {}
            for r in rt:
                for g, c in ngram_counts(n, r).items():
                    merged[g] = max(merged.get(g, 0), c)
            hits[n - 1] += sum(min(c, merged.get(g, 0)) for g, c in ngram_counts(n, h).items())
            cand[n - 1] += len(h) - n + 1
        ref_len += len(min(rt, key=lambda r: (abs(len(r) - len(h)), len(r))))
    bp = 1.0
    if cand[0] <= ref_len:
        bp = math.exp(1.0 - ref_len / (float(cand[0]) if cand[0] else 1e-5))
    log_sum = sum(math.log(max(hh, 1e-15) / max(cc, 1e-9)) for hh, cc in zip(hits, cand))
    print("%.15g" % (bp * math.exp(log_sum / 4)))
    for v in hits + cand + [ref_len]:
        print(v)


if __name__ == "__main__":
    main()
