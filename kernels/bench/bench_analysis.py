#!/usr/bin/env python3
"""`lorascope analyze --backend cuda` (cuSOLVER) against `--backend cpu` (LAPACKE): time and agreement.

    python3 kernels/bench/bench_analysis.py --lorascope build/src/cli/lorascope
        [--set smollm2,gpt2] [--backends cpu,cuda] [--threads N] [--keep DIR] [--tsv FILE]

Runs, with each backend, the analyses of the largest experiment on synthetic
adapters of its shapes, and prints one Markdown row per analysis: wall time
per backend, the ratio, and the largest difference between the two backends'
TSV tables (every numeric cell; printed to 6 or more significant digits, so
about 1e-6 relative is rounding).

  smollm2  experiments/full/smollm2_sec7.ini: SmolLM2-135M (the GGUF in the
           assets: 30 layers, Wq 576 x 576, Wv 192 x 576) with LoRA on q, v at
           r = 4 (seed 1), 8 and 64 (seeds 1-3): fig3_ranks, fig4_seeds and
           h2_ranks_B (subspace over seed pairs, every layer), table7 (amplify,
           Wq, every layer), fig8 (w-vs-dw, layer 15). Skipped, with a line,
           when the asset is missing.
  gpt2     tests/reference/bench_sec7.py's synthetic 12-layer d = 768 model
           (GPT-2's Wq, Wv shapes) and its four adapters: amplify, w-vs-dw
           (imax 64), spectrum.

The adapters are random, not trained: the timing and the agreement are what
count. Needs numpy. Exit 0 when every analysis ran with both backends and
agreed to 1e-4 relative; 1 otherwise; 77 when a backend is not usable (no GPU).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import bench_sec7  # noqa: E402  (write_safetensors, make_base, make_adapters)

AGREE = 1e-4  # relative difference allowed between the backends' printed tables

# ----------------------------------------------------------------------------
# inputs


def smollm2_base():
    assets = os.environ.get("LORASCOPE_ASSETS") or os.path.join(ROOT, "..", "shared", "assets")
    p = os.path.join(assets, "models", "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
    return p if os.path.exists(p) else None


def smollm2_adapters(root):
    """LoRA on q (576 x 576) and v (192 x 576) of 30 layers, as smollm2_sec7.ini's runs."""
    dirs = {}
    for r, seed in ((4, 1), (8, 1), (8, 2), (8, 3), (64, 1), (64, 2), (64, 3)):
        rng = np.random.default_rng(100 * r + seed)
        t = {}
        for l in range(30):
            for m, d_out in (("q", 576), ("v", 192)):
                p = f"base_model.model.model.layers.{l}.self_attn.{m}_proj."
                t[p + "lora_A.weight"] = rng.standard_normal((r, 576)) / np.sqrt(576)
                t[p + "lora_B.weight"] = rng.standard_normal((d_out, r)) * 0.01
        d = os.path.join(root, f"r{r}_s{seed}")
        os.makedirs(d)
        bench_sec7.write_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
        cfg = {"peft_type": "LORA", "r": r, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"],
               "fan_in_fan_out": False, "bias": "none", "use_rslora": False, "lora_dropout": 0.0}
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump(cfg, f)
        dirs[(r, seed)] = d
    return dirs


def smollm2_analyses(root):
    base = smollm2_base()
    if not base:
        print("bench_analysis: smollm2 skipped: no SmolLM2-135M-Instruct.Q4_1.gguf in the assets")
        return []
    a = smollm2_adapters(root)
    ranks = [x for s in (1, 2, 3) for x in ("--adapter", a[(8, s)])] + \
            [x for s in (1, 2, 3) for x in ("--adapter", a[(64, s)])]
    across = [x for p in ("1,5", "1,6", "2,4", "2,6", "3,4", "3,5") for x in ("--pair", p)]
    seeds = [x for s in (1, 2, 3) for x in ("--adapter", a[(64, s)])]
    t7 = ["--base", base, "--adapter", a[(4, 1)], "--adapter", a[(64, 1)], "--module", "q"]
    fig8 = ["--base", base] + [x for r in (4, 8, 64) for x in ("--adapter", a[(r, 1)])] + ["--module", "q",
                                                                                         "--layer", "15"]
    return [("smollm2 fig3_ranks", ["subspace"] + ranks + across + ["--module", "q,v"]),
            ("smollm2 fig4_seeds", ["subspace"] + seeds + ["--module", "q,v"]),
            ("smollm2 h2_ranks_B", ["subspace"] + ranks + across + ["--module", "q,v", "--side", "B"]),
            ("smollm2 table7", ["amplify"] + t7),
            ("smollm2 fig8", ["w-vs-dw"] + fig8)]


def gpt2_analyses(root):
    base, dirs = bench_sec7.make_base(root), bench_sec7.make_adapters(root)
    every = [x for n, _, _ in bench_sec7.ADAPTERS for x in ("--adapter", dirs[n])]
    return [("gpt2-768 amplify", ["amplify", "--base", base] + every),
            ("gpt2-768 w-vs-dw", ["w-vs-dw", "--base", base, "--imax", "64"] + every),
            ("gpt2-768 spectrum", ["spectrum"] + every)]


# ----------------------------------------------------------------------------
# running and comparing


def numbers(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            for cell in line.rstrip("\n").split("\t"):
                try:
                    out.append(float(cell))
                except ValueError:
                    out.append(cell)
    return out


def difference(dir_a, dir_b):
    """Largest |a - b| / max(|a|, |b|, 1e-3) over every TSV cell; inf where the tables differ in shape."""
    worst, files = 0.0, 0
    for sub, _, names in os.walk(dir_a):
        for n in names:
            if not n.endswith(".tsv"):
                continue
            pa = os.path.join(sub, n)
            pb = os.path.join(dir_b, os.path.relpath(pa, dir_a))
            if not os.path.exists(pb):
                return float("inf"), files
            xa, xb = numbers(pa), numbers(pb)
            if len(xa) != len(xb):
                return float("inf"), files
            files += 1
            for a, b in zip(xa, xb):
                if isinstance(a, float) and isinstance(b, float):
                    if a != b and not (np.isnan(a) and np.isnan(b)):
                        worst = max(worst, abs(a - b) / max(abs(a), abs(b), 1e-3))
                elif a != b:
                    return float("inf"), files
    return worst, files


def run(exe, args, out, backend, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [exe, "analyze"] + args + ["--backend", backend, "--out", out, "--no-plot"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lorascope", required=True)
    ap.add_argument("--set", default="smollm2,gpt2")
    ap.add_argument("--backends", default="cpu,cuda", help="the two --backend values compared")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", help="write inputs and tables here (kept)")
    ap.add_argument("--tsv", help="also write the rows as TSV here")
    a = ap.parse_args()
    b0, b1 = a.backends.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or tmp
        os.makedirs(root, exist_ok=True)
        todo = []
        for s in a.set.split(","):
            d = os.path.join(root, s)
            os.makedirs(d, exist_ok=True)
            todo += smollm2_analyses(d) if s == "smollm2" else gpt2_analyses(d)
        rows, status = [], 0
        print(f"| analysis | {b0} s | {b1} s | {b0} / {b1} | max rel. diff of the tables |")
        print("|:---|---:|---:|---:|---:|")
        for name, args in todo:
            outs = [os.path.join(root, "out", name.replace(" ", "_"), b) for b in (b0, b1)]
            (t0, p0), (t1, p1) = [run(a.lorascope, args, o, b, a.threads) for o, b in zip(outs, (b0, b1))]
            for p, b in ((p0, b0), (p1, b1)):
                if p.returncode:
                    print(f"bench_analysis: {name} --backend {b}: {p.stderr.strip()}", file=sys.stderr)
                    sys.exit(77 if "--backend" in p.stderr else 1)
            diff, files = difference(*outs)
            ok = diff <= AGREE and files > 0
            status |= not ok
            print(f"| {name} | {t0:.2f} | {t1:.2f} | {t0 / t1:.2f} | {diff:.2g} ({files} tables){'' if ok else ' DIFFER'} |")
            rows.append((name, t0, t1, diff, files))
        if a.tsv:
            with open(a.tsv, "w") as f:
                f.write(f"analysis\t{b0}_s\t{b1}_s\tmax_rel_diff\ttables\n")
                for r in rows:
                    f.write("%s\t%.3f\t%.3f\t%.3g\t%d\n" % r)
    sys.exit(status)


if __name__ == "__main__":
    main()
