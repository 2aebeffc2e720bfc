#!/usr/bin/env python3
"""Scores of the E2E challenge's official script (tuetschek/e2e-metrics,
measure_scores.py -p) on two file sets, for `lorascope score`'s tests.

  1. tests/data/eval/score_hyp.txt + score_refs.txt (60 instances, written by
     make_score_reference.py);
  2. the E2E test set (../shared/assets/data/e2e/test.txt): every MR with at
     least two references, its first reference as the hypothesis and the
     others as references (the C test builds the same set from the asset).

Writes tests/data/eval/e2e_metrics_expected.json: BLEU, NIST, METEOR, ROUGE_L,
CIDEr of each set as the script prints them (4 decimals).

Setup: a checkout of e2e-metrics (its Java jars are not in git; copy
meteor-1.5.jar, meteor/data/paraphrase-en.gz and stanford-corenlp-3.4.1.jar
from the pip package pycocoevalcap into it), Java, and a Python with numpy,
matplotlib and scikit-image. Run:
  /opt/refenv/bin/python tests/reference/make_e2e_metrics_reference.py /tmp/e2em
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSET = os.path.join(ROOT, "..", "shared", "assets", "data", "e2e", "test.txt")
DATA = os.path.join(ROOT, "tests", "data", "eval")


def e2e_test_set(dirname):
    groups = collections.OrderedDict()
    with open(ASSET, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                mr, ref = line.split("||", 1)
                groups.setdefault(mr, []).append(ref.strip())
    inst = [g for g in groups.values() if len(g) >= 2]
    hyp, refs = os.path.join(dirname, "hyp.txt"), os.path.join(dirname, "refs.txt")
    with open(hyp, "w", encoding="utf-8") as f:
        f.write("".join(g[0] + "\n" for g in inst))
    with open(refs, "w", encoding="utf-8") as f:
        f.write("".join("\n".join(g[1:]) + "\n\n" for g in inst))
    return hyp, refs, len(inst)


def measure(e2e_metrics, refs, hyp):
    out = subprocess.run([sys.executable, "measure_scores.py", "-p", refs, hyp], cwd=e2e_metrics,
                         capture_output=True, text=True, check=True).stdout
    scores = {}
    for line in out.splitlines():
        if ":" in line and line.split(":")[0] in ("BLEU", "NIST", "METEOR", "ROUGE_L", "CIDEr"):
            scores[line.split(":")[0]] = float(line.split(":")[1])
    return scores


def main():
    e2e_metrics = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp()
    hyp, refs, n = e2e_test_set(tmp)
    out = {
        "score_files": measure(e2e_metrics, os.path.join(DATA, "score_refs.txt"), os.path.join(DATA, "score_hyp.txt")),
        "e2e_test_first_reference": dict(measure(e2e_metrics, refs, hyp), instances=n),
    }
    with open(os.path.join(DATA, "e2e_metrics_expected.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
