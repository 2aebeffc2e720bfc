#!/usr/bin/env python3
"""Reference values for lorascope's METEOR (src/eval/meteor.c) from the real
Meteor 1.5 jar, called as e2e-metrics calls it (pycocoevalcap's meteor.py:
`java -jar meteor-1.5.jar - - -stdio -l en -norm`, one SCORE line per segment,
then one EVAL line over all segments' statistics), on the tokens of
pycocoevalcap's PTBTokenizer (Stanford CoreNLP 3.4.1, lowercased, punctuation
dropped), as COCOEvalCap feeds them.

Two module sets:
  full : Meteor's English default (exact stem synonym paraphrase), the official
         number e2e-metrics prints;
  ess  : -m 'exact stem synonym' -w '1.0 0.6 0.8' -p '0.85 0.2 0.6 0.75', what
         lorascope computes (no paraphrase table).

Corpora:
  1. tests/data/eval/score_hyp.txt + score_refs.txt (60 instances) plus a few
     hand-written pairs with stem and synonym matches;
  2. the E2E test set (../shared/assets/data/e2e/test.txt), every MR with at
     least two references, its first reference as the hypothesis (616 MRs).

Writes tests/data/eval/meteor_segments.txt (per segment: the CoreNLP tokens of
the hypothesis and of each reference, and the ess segment score) and
tests/data/eval/meteor_expected.json (the corpus scores of both module sets on
both corpora), and tests/data/eval/meteor_stems.txt: every token of both
corpora (and a list of hard cases) with the stem of the jar's own Snowball
English stemmer (org.tartarus.snowball.ext.englishStemmer, through a small
Java program compiled here with javac).

Run: /opt/refenv/bin/python tests/reference/make_meteor_reference.py
"""
import collections
import json
import os
import subprocess

import tempfile

import pycocoevalcap.meteor.meteor as coco_meteor
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSET = os.path.join(ROOT, "..", "shared", "assets", "data", "e2e", "test.txt")
DATA = os.path.join(ROOT, "tests", "data", "eval")
JAR = os.path.join(os.path.dirname(os.path.abspath(coco_meteor.__file__)), "meteor-1.5.jar")

HAND = [  # (hypothesis, [references]): stem, synonym, order and empty cases
    ("the restaurant serves cheap food", ["the restaurants served inexpensive food"]),
    ("a cheap eatery near the river", ["an inexpensive restaurant by the river"]),
    ("it is located near the centre", ["located in the centre near it"]),
    ("the pub is family friendly", ["the pub is not family-friendly", "a family friendly pub"]),
    ("", ["there is a coffee shop"]),
    ("children are welcome", ["kids are welcome here"]),
]

MODULES = {
    "full": [],
    "ess": ["-m", "exact stem synonym", "-w", "1.0 0.6 0.8", "-p", "0.85 0.2 0.6 0.75"],
}


def read_score_files():
    with open(os.path.join(DATA, "score_hyp.txt"), encoding="utf-8") as f:
        hyps = [l.rstrip("\n") for l in f]
    groups, cur = [], []
    with open(os.path.join(DATA, "score_refs.txt"), encoding="utf-8") as f:
        for l in f:
            l = l.rstrip("\n")
            if l.strip():
                cur.append(l)
            elif cur:
                groups.append(cur)
                cur = []
    if cur:
        groups.append(cur)
    assert len(groups) == len(hyps)
    return list(zip(hyps, groups))


def read_e2e():
    groups = collections.OrderedDict()
    with open(ASSET, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                mr, ref = line.split("||", 1)
                groups.setdefault(mr, []).append(ref.strip())
    return [(g[0], g[1:]) for g in groups.values() if len(g) >= 2]


def tokenize(pairs):
    # COCOEvalCap: the tokenizer sees references and hypotheses as captions
    gts = {i: [{"caption": r} for r in refs] for i, (_, refs) in enumerate(pairs)}
    res = {i: [{"caption": h}] for i, (h, _) in enumerate(pairs)}
    tok = PTBTokenizer()
    gts, res = tok.tokenize(gts), tok.tokenize(res)
    return [(res[i][0], gts[i]) for i in range(len(pairs))]


def meteor(pairs, extra):
    cmd = ["java", "-jar", "-Xmx2G", JAR, "-", "-", "-stdio", "-l", "en", "-norm"] + extra
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, bufsize=1)
    stats = []
    for hyp, refs in pairs:
        hyp = hyp.replace("|||", "").replace("  ", " ")
        p.stdin.write(" ||| ".join(["SCORE", " ||| ".join(refs), hyp]) + "\n")
        p.stdin.flush()
        stats.append(p.stdout.readline().strip())
    p.stdin.write("EVAL ||| " + " ||| ".join(stats) + "\n")
    p.stdin.flush()
    seg = [float(p.stdout.readline()) for _ in pairs]
    total = float(p.stdout.readline())
    p.stdin.close()
    p.wait()
    return seg, total


STEM_JAVA = """
import java.io.*;
import org.tartarus.snowball.ext.englishStemmer;
public class Stem {
  public static void main(String[] a) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
    PrintStream out = new PrintStream(System.out, true, "UTF-8");
    englishStemmer s = new englishStemmer();
    for (String w; (w = in.readLine()) != null;) { s.setCurrent(w); s.stem(); out.println(w + "\\t" + s.getCurrent()); }
  }
}
"""
HARD_WORDS = """caresses ponies ties caress cats feed agreed disabled matting mating meeting milling
messing meetings happy sky skies dying lying tying news innings inning outings canning herring
proceed exceed succeed generously generous communication arsenal consign consigned consigning
consignment consist consisted consistency consistent consistently consisting consists consolation
consolations consolatory console consoled consoles consolidate consolidated consolidating
consoling consolingly consols consonant consort consorted consorting conspicuous conspicuously
conspiracy conspirator conspirators conspire conspired conspiring constable constables constance
constancy constant knack knackeries knacks knag knave knaves knavish kneaded kneading knee
kneel kneeled kneeling kneels knees knell knelt knew knick knif knife knight knightly knights
knit knits knitted knitting knives knob knobs knock knocked knocker knockers knocking knocks
knopp knot knots friendly friendliness families family-friendly restaurants located riverside
centre city eatery eateries cheap cheaper cheapest rated rating ratings serves served serving
offers offered children kids adults price priced pricing range ranges yes yesterday cry by say
fly flying flies abbey abbeys'""".split()


def stems(words):
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "Stem.java"), "w") as f:
        f.write(STEM_JAVA)
    subprocess.run(["javac", "-cp", JAR, "-d", d, os.path.join(d, "Stem.java")], check=True)
    out = subprocess.run(["java", "-cp", JAR + ":" + d, "Stem"], input="\n".join(words) + "\n",
                         capture_output=True, text=True, check=True).stdout
    return [l.split("\t") for l in out.splitlines()]


def main():
    small = tokenize(read_score_files() + HAND)
    e2e = tokenize(read_e2e())
    out = {}
    for name, extra in MODULES.items():
        seg, total = meteor(small, extra)
        out["score_files_and_hand_" + name] = total
        if name == "ess":
            small_seg = seg
        out["e2e_test_first_reference_" + name] = meteor(e2e, extra)[1]
    out["e2e_instances"] = len(e2e)
    out["segments"] = len(small)
    with open(os.path.join(DATA, "meteor_segments.txt"), "w", encoding="utf-8") as f:
        f.write("# hyp TAB ref1 TAB ref2 ... TAB meteor(exact stem synonym); CoreNLP PTB tokens\n")
        for (hyp, refs), s in zip(small, small_seg):
            f.write("\t".join([hyp] + refs + ["%.10f" % s]) + "\n")
    vocab = set(HARD_WORDS)
    for hyp, refs in small + e2e:
        for t in [hyp] + refs:
            vocab.update(w for w in t.split() if w.isascii())
    with open(os.path.join(DATA, "meteor_stems.txt"), "w", encoding="utf-8") as f:
        f.write("# word TAB stem of Meteor 1.5's Snowball English stemmer\n")
        f.write("".join("%s\t%s\n" % (w, st) for w, st in stems(sorted(vocab))))
    with open(os.path.join(DATA, "meteor_expected.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
