#!/usr/bin/env python3
"""The chance bands of analysis/chance.h in numpy, timed beside the C library.

    /usr/bin/python3 tests/reference/bench_chance.py [--bin build/tests/analysis/bench_chance]
                                                      [d r_small r_large layers]

Computes, with numpy and the straightforward method (Haar frames as the Q of
numpy.linalg.qr of a Gaussian matrix, signs fixed; percentiles by
numpy.percentile), the same bands as bench_chance (tests/analysis/bench_chance.c):
the φ bands of a ranks grid (r_small x r_large) and a seeds grid
(r_large x r_large) in R^d, and the ‖UᵀWV‖_F bands for 2 x layers matrices
of rank r_small and of r_large, W with the spectrum σ_a = 1/√(a + 1). Then it
runs the C benchmark (if --bin names it) and prints both side by side: time,
and the band values, which agree to Monte Carlo precision (different random
streams: p95 to about ±0.5 points of level with 2,000 draws).

Needs numpy only (Debian's python3-numpy). Not run by CI: timings depend on
the machine.
"""
import argparse
import re
import subprocess
import time

import numpy as np

TRIALS = 2000  # AN_CHANCE_TRIALS


def proj_trials(k, r):
    """an_projected_norm_chance_trials: AN_CHANCE_FLOP_BUDGET 4e8, AN_CHANCE_MIN_TRIALS 300."""
    return int(min(TRIALS, max(300, 4e8 / (6.0 * k * r * r + 20.0 * k * r))))


def haar(rng, n, k):
    """An n x k Haar frame: Q of a Gaussian matrix's QR with R's diagonal positive."""
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diag(r))


def phi_band(rng, imax, jmax, n):
    """Bands of φ(i, j) for random i- and j-dim subspaces of R^n: (mean, p95, p99) grids."""
    samples = np.empty((TRIALS, imax, jmax))
    for t in range(TRIALS):
        m = haar(rng, n, imax).T @ haar(rng, n, jmax)  # imax x jmax
        p = np.cumsum(np.cumsum(m * m, axis=0), axis=1)
        mins = np.minimum.outer(np.arange(1, imax + 1), np.arange(1, jmax + 1))
        samples[t] = p / mins
    mean = np.maximum.outer(np.arange(1, imax + 1), np.arange(1, jmax + 1)) / n
    return mean, np.percentile(samples, 95, axis=0), np.percentile(samples, 99, axis=0)


def proj_band(rng, sigma, d, k, r):
    """Band of ‖UᵀWV‖_F for Haar r-frames U, V and W = diag(σ) (d x k)."""
    p, trials = len(sigma), proj_trials(k, r)
    x = np.empty(trials)
    for t in range(trials):
        u, v = haar(rng, d, r), haar(rng, k, r)
        x[t] = np.linalg.norm((u[:p] * sigma[:, None]).T @ v[:p])
    chance = r * np.sqrt((sigma ** 2).sum() / (d * k))
    return chance, np.percentile(x, 5), np.percentile(x, 95), trials


def numpy_rows(d, rs, rl, layers):
    rng = np.random.default_rng(1)
    rows = []
    for what, (i, j) in (("ranks", (rs, rl)), ("seeds", (rl, rl))):
        t0 = time.perf_counter()
        mean, p95, p99 = phi_band(rng, i, j, d)
        rows.append((f"phi band {i}x{j} ({what}), n={d}", time.perf_counter() - t0,
                     f"phi(1,{j}): mean {mean[0, j - 1]:.4f} p95 {p95[0, j - 1]:.4f} p99 {p99[0, j - 1]:.4f}"))
    sigma = 1.0 / np.sqrt(np.arange(d) + 1.0)
    for r in (rs, rl):
        t0 = time.perf_counter()
        for _ in range(2 * layers):
            chance, p05, p95, trials = proj_band(rng, sigma, d, d, r)
        rows.append((f"proj bands r={r} (x{2 * layers}), {d}x{d}", time.perf_counter() - t0,
                     f"‖UᵀWV‖: chance {chance:.4f} p05 {p05:.4f} p95 {p95:.4f} ({trials} draws)"))
    return rows


def c_rows(binary, d, rs, rl, layers):
    out = subprocess.run([binary, str(d), str(rs), str(rl), str(layers)], check=True,
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines()[1:]:
        m = re.match(r"(.{34}) +([0-9.]+) s +(.*)", line)
        if m:
            rows.append((m.group(1).strip(), float(m.group(2)), m.group(3)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", help="build/tests/analysis/bench_chance, run beside numpy")
    ap.add_argument("shape", nargs="*", type=int, default=[768, 8, 64, 12], help="d r_small r_large layers")
    a = ap.parse_args()
    d, rs, rl, layers = (a.shape + [768, 8, 64, 12][len(a.shape):])[:4]
    print(f"chance bands, d = {d}, ranks {rs} and {rl}, {layers} layers x {{Wq, Wv}}, {TRIALS} draws per φ band")
    c = c_rows(a.bin, d, rs, rl, layers) if a.bin else []
    py = numpy_rows(d, rs, rl, layers)
    for k, (name, t, vals) in enumerate(py):
        print(f"{name}")
        if k < len(c):
            print(f"  lorascope  {c[k][1]:8.3f} s   {c[k][2]}")
        print(f"  numpy      {t:8.3f} s   {vals}")
        if k < len(c) and c[k][1] > 0:
            print(f"  speed-up   {t / c[k][1]:8.1f}x")


if __name__ == "__main__":
    main()
