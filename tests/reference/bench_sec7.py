#!/usr/bin/env python3
"""The whole Section 7 analysis of a 12-layer d = 768 model, lorascope beside numpy.

    python3 tests/reference/bench_sec7.py --lorascope build/src/cli/lorascope
                                          [--threads 2] [--keep DIR] [--skip-numpy]

Writes, with a fixed seed, a synthetic base (HF llama layout, 12 layers,
d = 768: GPT-2's Wq and Wv shapes, 768 x 768; a small MLP, which no
analysis reads) and four PEFT adapters on q and v (ranks 8 and 64, seeds 1
and 2) into a temporary directory. Then it times, per analysis kind, the
commands a user runs (`lorascope analyze ... --no-plot`, chance bands
included) and the same statistics computed with numpy in the straightforward
way (numpy.linalg.svd of W once per matrix and kind, Haar frames as the Q of
numpy.linalg.qr, numpy.percentile), and prints both side by side with a few
of the values each side found (they agree to rounding, or to Monte Carlo
precision for percentiles: different random streams).

The analysis (issue 12, item 6):
  subspace   A side and B side: r = 8 (seed 1) vs r = 64 (seed 2), and
             r = 64 seed 1 vs seed 2; every layer, Wq and Wv; bands
  amplify    Table 7 for the four adapters; bands per rank
  w-vs-dw    Fig. 8 for the four adapters and the random baseline, imax 64; bands
  spectrum   the four adapters' ΔW spectra

Needs numpy (/opt/refenv/bin/python or Debian's python3-numpy). A meson
benchmark (`meson test -C build --benchmark --suite bench`), not a test:
timings depend on the machine.
"""
import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time

# numpy gets the cores lorascope gets (--threads; read here, before numpy starts its BLAS).
_threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "2"
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads)
os.environ.setdefault("OMP_NUM_THREADS", _threads)

import numpy as np  # noqa: E402

D, LAYERS, VOCAB, FFN = 768, 12, 256, 64
TRIALS = 2000  # AN_CHANCE_TRIALS
ADAPTERS = (("r8_s1", 8, 1), ("r8_s2", 8, 2), ("r64_s1", 64, 1), ("r64_s2", 64, 2))
PAIRS = (("ranks", "r8_s1", "r64_s2"), ("seeds", "r64_s1", "r64_s2"))
IMAX = 64

# ----------------------------------------------------------------------------
# Synthetic inputs (fixed seed)


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def weight(rng, d_out, d_in):
    """A pretrained-looking W: noise plus a decaying low-rank part (σ from ~6 down to the bulk's ~1.2)."""
    w = rng.standard_normal((d_out, d_in)) * 0.02
    u, v = rng.standard_normal((d_out, 48)), rng.standard_normal((d_in, 48))
    s = 0.4 * np.exp(-np.arange(48) / 12.0) / np.sqrt(d_out)
    return (w + (u * s) @ v.T / np.sqrt(d_in) * 8).astype(np.float32)


def make_base(root):
    rng = np.random.default_rng(20211)
    base = os.path.join(root, "base")
    os.makedirs(base)
    t = {"model.embed_tokens.weight": rng.standard_normal((VOCAB, D)) * 0.02,
         "lm_head.weight": rng.standard_normal((VOCAB, D)) * 0.02, "model.norm.weight": np.ones(D)}
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        for m in "qkvo":
            t[p + f"self_attn.{m}_proj.weight"] = weight(rng, D, D)
        t[p + "mlp.gate_proj.weight"] = rng.standard_normal((FFN, D)) * 0.02
        t[p + "mlp.up_proj.weight"] = rng.standard_normal((FFN, D)) * 0.02
        t[p + "mlp.down_proj.weight"] = rng.standard_normal((D, FFN)) * 0.02
        t[p + "input_layernorm.weight"] = np.ones(D)
        t[p + "post_attention_layernorm.weight"] = np.ones(D)
    write_safetensors(os.path.join(base, "model.safetensors"), t)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D,
           "intermediate_size": FFN, "num_attention_heads": 12, "num_key_value_heads": 12,
           "num_hidden_layers": LAYERS, "vocab_size": VOCAB, "max_position_embeddings": 128,
           "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32"}
    with open(os.path.join(base, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return base


def make_adapters(root):
    """Four adapters whose A share a few learned directions (so φ is above chance) beside seed noise."""
    shared = np.random.default_rng(7).standard_normal((LAYERS, 2, 4, D))
    dirs = {}
    for name, r, seed in ADAPTERS:
        rng = np.random.default_rng(1000 + seed * 97 + r)
        t = {}
        for l in range(LAYERS):
            for mi, m in enumerate("qv"):
                a = rng.standard_normal((r, D)) / np.sqrt(D)
                a[: min(r, 4)] += 0.2 * shared[l, mi, : min(r, 4)] / np.sqrt(D) * 4
                b = rng.standard_normal((D, r)) * 0.01
                p = f"base_model.model.model.layers.{l}.self_attn.{m}_proj."
                t[p + "lora_A.weight"], t[p + "lora_B.weight"] = a, b
        d = os.path.join(root, name)
        os.makedirs(d)
        write_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
        cfg = {"peft_type": "LORA", "r": r, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
               "fan_in_fan_out": False, "bias": "none", "use_rslora": False, "lora_dropout": 0.0}
        with open(os.path.join(d, "adapter_config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        dirs[name] = d
    return dirs


# ----------------------------------------------------------------------------
# lorascope


def lorascope_commands(exe, base, dirs, out):
    cmds = {"subspace": [], "amplify": [], "w-vs-dw": [], "spectrum": []}
    for side in "AB":
        for what, a, b in PAIRS:
            cmds["subspace"].append([exe, "analyze", "subspace", "--adapter", dirs[a], "--adapter2", dirs[b],
                                     "--side", side, "--name", f"{what}_{side}"])
    every = [x for n, _, _ in ADAPTERS for x in ("--adapter", dirs[n])]
    cmds["amplify"].append([exe, "analyze", "amplify", "--base", base] + every)
    cmds["w-vs-dw"].append([exe, "analyze", "w-vs-dw", "--base", base, "--imax", str(IMAX)] + every)
    cmds["spectrum"].append([exe, "analyze", "spectrum"] + every)
    for kind in cmds:
        for c in cmds[kind]:
            c += ["--out", out, "--no-plot"]
    return cmds


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_lorascope(exe, base, dirs, out, threads):
    """{kind: (wall s, CPU s)} of the commands a user runs."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    times = {}
    for kind, cmds in lorascope_commands(exe, base, dirs, out).items():
        t0, c0 = time.perf_counter(), children_cpu()
        for c in cmds:
            p = subprocess.run(c, env=env, capture_output=True, text=True)
            if p.returncode:
                sys.exit(f"bench_sec7: {' '.join(c)} failed: {p.stderr.strip()}")
        times[kind] = (time.perf_counter() - t0, children_cpu() - c0)
    return times


def tsv_rows(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip() and not l.startswith("#")]
    return [dict(zip(lines[0], l)) for l in lines[1:]]


# ----------------------------------------------------------------------------
# numpy: the same statistics, the straightforward way


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        blob = f.read()
    return {k: np.frombuffer(blob[v["data_offsets"][0]:v["data_offsets"][1]], "<f4").reshape(v["shape"])
            .astype(np.float64) for k, v in h.items() if k != "__metadata__"}


def haar(rng, n, k):
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diag(r))


def phi_grid(u1, u2):
    m = u1.T @ u2
    p = np.cumsum(np.cumsum(m * m, axis=0), axis=1)
    return p / np.minimum.outer(np.arange(1, u1.shape[1] + 1), np.arange(1, u2.shape[1] + 1))


def phi_band(rng, imax, jmax, n, cache):
    key = (imax, jmax, n)
    if key not in cache:
        s = np.stack([phi_grid(haar(rng, n, imax), haar(rng, n, jmax)) for _ in range(TRIALS)])
        cache[key] = (np.percentile(s, 95, axis=0), np.percentile(s, 99, axis=0))
    return cache[key]


def proj_band(rng, sigma, d, k, r):
    trials = int(min(TRIALS, max(300, 4e8 / (6.0 * k * r * r + 20.0 * k * r))))
    p = len(sigma)
    x = [np.linalg.norm((haar(rng, d, r)[:p] * sigma[:, None]).T @ haar(rng, k, r)[:p]) for _ in range(trials)]
    return np.percentile(x, [5, 95])


def delta_svd(a, b, s):
    qb, rb = np.linalg.qr(b)
    qa, ra = np.linalg.qr(a.T)
    u, sv, vt = np.linalg.svd(s * rb @ ra.T)
    return qb @ u, sv, qa @ vt.T


def numpy_analysis(base, dirs):
    rng = np.random.default_rng(1)
    w = load_safetensors(os.path.join(base, "model.safetensors"))
    ad = {n: load_safetensors(os.path.join(dirs[n], "adapter_model.safetensors")) for n, _, _ in ADAPTERS}
    scale = {n: 16.0 / r for n, r, _ in ADAPTERS}
    ab = lambda n, l, m: (ad[n][f"base_model.model.model.layers.{l}.self_attn.{m}_proj.lora_A.weight"],
                          ad[n][f"base_model.model.model.layers.{l}.self_attn.{m}_proj.lora_B.weight"])
    W = lambda l, m: w[f"model.layers.{l}.self_attn.{m}_proj.weight"]
    times, vals, cache = {}, {}, {}
    clock = lambda: (time.perf_counter(), time.process_time())
    since = lambda t: (time.perf_counter() - t[0], time.process_time() - t[1])
    t0 = clock()
    for side in "AB":
        for what, n1, n2 in PAIRS:
            for l in range(LAYERS):
                for m in "qv":
                    (a1, b1), (a2, b2) = ab(n1, l, m), ab(n2, l, m)
                    x1, x2 = (a1.T, a2.T) if side == "A" else (b1, b2)
                    u1, u2 = np.linalg.svd(x1, full_matrices=False)[0], np.linalg.svd(x2, full_matrices=False)[0]
                    g = phi_grid(u1, u2)
                    phi_grid(haar(rng, x1.shape[0], u1.shape[1]), haar(rng, x1.shape[0], u2.shape[1]))
                    phi_band(rng, u1.shape[1], u2.shape[1], x1.shape[0], cache)
                    if l == 0 and m == "q":
                        vals[f"subspace {what} {side} L0 q φ(1,1)"] = g[0, 0]
    times["subspace"] = since(t0)
    t0 = clock()
    for l in range(LAYERS):
        for m in "qv":
            wm = W(l, m)
            uw, sw, vwt = np.linalg.svd(wm, full_matrices=False)
            bands = {}
            for n, r, _ in ADAPTERS:
                u, s, v = delta_svd(*ab(n, l, m), scale[n])
                proj_dw = np.linalg.norm(u[:, :r].T @ wm @ v[:, :r])
                proj_w = np.linalg.norm(uw[:, :r].T @ wm @ vwt[:r].T)
                np.linalg.norm(haar(rng, D, r).T @ wm @ haar(rng, D, r))
                if r not in bands:
                    bands[r] = proj_band(rng, sw, D, D, r)
                if l == 0 and m == "q":
                    vals[f"amplify {n} L0 q factor"] = np.linalg.norm(s) / proj_dw
                    vals[f"amplify {n} L0 q ‖U_WᵀWV_W‖"] = proj_w
    times["amplify"] = since(t0)
    t0 = clock()
    for l in range(LAYERS):
        for m in "qv":
            uw = np.linalg.svd(W(l, m), full_matrices=False)[0][:, :IMAX]
            for n, r, _ in ADAPTERS:
                g = phi_grid(uw, delta_svd(*ab(n, l, m), scale[n])[0][:, :r])
                phi_band(rng, IMAX, r, D, cache)
                if l == 0 and m == "q":
                    vals[f"w-vs-dw {n} L0 q grid mean"] = g.mean()
            phi_grid(uw, haar(rng, D, max(r for _, r, _ in ADAPTERS)))  # the random panel spans every r
    times["w-vs-dw"] = since(t0)
    t0 = clock()
    for n, r, _ in ADAPTERS:
        for l in range(LAYERS):
            for m in "qv":
                s = delta_svd(*ab(n, l, m), scale[n])[1]
                p = s / s.sum()
                np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())
    times["spectrum"] = since(t0)
    return times, vals


def lorascope_values(out):
    vals = {}
    for side in "AB":
        for what, _, _ in PAIRS:
            for row in tsv_rows(os.path.join(out, f"{what}_{side}.tsv")):
                if row.get("layer") == "0" and row.get("module") == "q":
                    vals[f"subspace {what} {side} L0 q φ(1,1)"] = float(row.get("phi_1_1", "nan"))
    for row in tsv_rows(os.path.join(out, "table7.tsv")):
        if row.get("layer") == "0" and row.get("module") == "q":
            name = os.path.basename(row["adapter"])
            vals[f"amplify {name} L0 q factor"] = float(row["amplification"])
            vals[f"amplify {name} L0 q ‖U_WᵀWV_W‖"] = float(row["proj_W"])
    for row in tsv_rows(os.path.join(out, "w_vs_dw.tsv")):
        if row.get("layer") == "0" and row.get("module") == "q" and row["what"] != "random":
            vals[f"w-vs-dw {os.path.basename(row['what'])} L0 q grid mean"] = float(row["mean_phi"])
    return vals


# ----------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lorascope", required=True, help="the lorascope executable (build/src/cli/lorascope)")
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for lorascope [2]")
    ap.add_argument("--keep", help="write the synthetic model, adapters and tables here (kept)")
    ap.add_argument("--skip-numpy", action="store_true", help="time lorascope only")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_sec7_") as tmp:
        root = a.keep or tmp
        os.makedirs(root, exist_ok=True)
        base, dirs = make_base(root), make_adapters(root)
        out = os.path.join(root, "out")
        print(f"Section 7 analysis: {LAYERS} layers, d = {D}, Wq and Wv, adapters "
              f"{', '.join(n for n, _, _ in ADAPTERS)}; lorascope at {a.threads} threads, "
              f"numpy {np.__version__} ({os.environ.get('OPENBLAS_NUM_THREADS', 'default')} BLAS threads)")
        lt = run_lorascope(a.lorascope, base, dirs, out, a.threads)
        nt, nv = ({}, {}) if a.skip_numpy else numpy_analysis(base, dirs)
        print(f"{'':<12}{'lorascope':>22}{'numpy':>22}")
        print(f"{'analysis':<12}{'wall':>11}{'CPU':>11}{'wall':>11}{'CPU':>11}{'wall ratio':>12}")
        row = lambda k, l, n: print(f"{k:<12}{l[0]:>9.2f} s{l[1]:>9.2f} s" + (
            f"{n[0]:>9.2f} s{n[1]:>9.2f} s{n[0] / l[0]:>11.1f}x" if n else ""))
        for kind in lt:
            row(kind, lt[kind], nt.get(kind))
        tot = lambda t: (sum(v[0] for v in t.values()), sum(v[1] for v in t.values()))
        row("total", tot(lt), tot(nt) if nt else None)
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: on a shared machine wall times "
              "stretch; CPU time is each side's own work)")
        lv = lorascope_values(out)
        if nv:
            print("values (layer 0, Wq)")
            for k in nv:
                print(f"  {k:<44} lorascope {lv.get(k, float('nan')):.10g}   numpy {nv[k]:.10g}")


if __name__ == "__main__":
    main()
