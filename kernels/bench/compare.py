#!/usr/bin/env python3
"""Joins bench_train (lorascope) and bench_peft_gpu.py (HF + PEFT) TSV rows of
the same shape, mode, precision, batch and sequence length, and prints a
Markdown table with the ratios: tokens/s lorascope / HF (higher is better for
lorascope) and peak memory lorascope / HF (lower is better).

    python3 kernels/bench/compare.py results.tsv [more.tsv ...]

Rows may come from several files; header lines are skipped.
"""

import sys

FIELDS = ["impl", "device", "shape", "mode", "precision", "batch", "seq", "params",
          "trainable", "tokens_per_s", "step_ms", "peak_mem_mib", "model_tflops",
          "peak_tflops", "mfu"]


def read_rows(paths):
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != len(FIELDS) or parts[0] == "impl" or line.startswith("#"):
                    continue
                rows.append(dict(zip(FIELDS, parts)))
    return rows


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    rows = read_rows(sys.argv[1:])
    key = lambda r: (r["shape"], r["mode"], r["precision"], r["batch"], r["seq"])
    groups = {}
    for r in rows:
        side = "ls" if r["impl"].startswith("lorascope") else "hf"
        groups.setdefault(key(r), {})[side] = r
    print("| shape | mode | precision | B x T | lorascope tok/s | HF tok/s | ratio | "
          "lorascope peak MiB | HF peak MiB | mem ratio | lorascope MFU | HF MFU |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in sorted(groups):
        g = groups[k]
        ls, hf = g.get("ls"), g.get("hf")
        f = lambda r, c: float(r[c]) if r else float("nan")
        ratio = f(ls, "tokens_per_s") / f(hf, "tokens_per_s") if ls and hf else float("nan")
        mem = f(ls, "peak_mem_mib") / f(hf, "peak_mem_mib") if ls and hf else float("nan")
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} x {k[4]} | {f(ls, 'tokens_per_s'):.0f} | "
              f"{f(hf, 'tokens_per_s'):.0f} | {ratio:.2f} | {f(ls, 'peak_mem_mib'):.0f} | "
              f"{f(hf, 'peak_mem_mib'):.0f} | {mem:.2f} | {f(ls, 'mfu'):.3f} | "
              f"{f(hf, 'mfu'):.3f} |")


if __name__ == "__main__":
    main()
