#!/usr/bin/python3
"""PyTorch reference for `lorascope bench`: the same training step on the same
shapes and thread counts, in plain torch (Debian's python3-torch, CPU), each
job under the thread layouts that torch allows and reported in the fastest.

One step = zero grads, forward (decoder transformer of the given family),
cross-entropy on a random batch, backward, global-norm clipping to 1.0, one
torch.optim.AdamW step (lr 1e-5, weight decay 0.01). LoRA (Hu et al. 2021):
r = 8, alpha = 16 on q and v of every layer, the base weights frozen
(requires_grad False), so autograd computes no weight gradient for them --
the same work lorascope does. Both sides fuse q,k,v into one matrix and
(llama) gate,up into one, so each is one GEMM. Family "bert": a BERT encoder
(word + position + type embeddings with LayerNorm, post-LN blocks,
bidirectional attention, exact GELU) as a sequence classifier (pooler dense +
tanh on the first token, a 2-way classifier, cross-entropy over the labels);
with LoRA the classifier trains too (PEFT's modules_to_save).

Thread layouts. Debian's torch calls BLAS through the generic interface
(BLAS_INFO=generic, libblas.so.3 -> OpenBLAS, pthread build): its GEMMs run
on OpenBLAS's own thread pool, which torch.set_num_threads() does not reach
(OpenBLAS reads OPENBLAS_NUM_THREADS when it is loaded), while the rest of
torch's ops run on its OpenMP pool. On few cores the two pools, each spinning
while it waits, slow each other down (gpt2-768 LoRA at 2 threads: 40 s of CPU
in 22 s). So a job with N > 1 threads runs, each in a fresh process, as
  omp N + blas N          both pools at N (what torch does by default)
  omp N passive + blas N  the same with OMP_WAIT_POLICY=PASSIVE (idle OpenMP
                          threads sleep instead of spinning)
  omp 1 + blas N          torch's ops single-threaded, GEMMs on N threads
  omp N + blas 1          torch's ops on N threads, GEMMs single-threaded
and the layout with the fastest median step is reported (all are printed).

Usage (lorascope bench calls it this way, one job per call):
  bench_torch.py --spec '[{"name": "llama512", "family": "llama", "dim": 512,
                           "hidden": 1376, "layers": 8, "heads": 8, "kv_heads": 8,
                           "vocab": 32000, "positions": 1024, "tied": false,
                           "B": 4, "T": 256, "mode": "lora", "threads": 1}, ...]'
                 --steps 5
Prints one JSON object per job: {"name", "mode", "threads", "layout" (the
fastest), "step_median_s", "step_min_s", "step_max_s" (over the timed steps
after one warm-up), "tok_s" (B*T / median step), "tok_s_min", "tok_s_max",
"trainable", "layouts": [{"layout", "tok_s"}, ...]}.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time


def layouts(n):
    """(name, torch threads, environment) of each layout for n threads."""
    if n == 1:
        return [("omp 1 + blas 1", 1, {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})]
    s = str(n)
    return [
        (f"omp {s} + blas {s}", n, {"OMP_NUM_THREADS": s, "OPENBLAS_NUM_THREADS": s}),
        (f"omp {s} passive + blas {s}", n,
         {"OMP_NUM_THREADS": s, "OPENBLAS_NUM_THREADS": s, "OMP_WAIT_POLICY": "PASSIVE"}),
        (f"omp 1 + blas {s}", 1, {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": s}),
        (f"omp {s} + blas 1", n, {"OMP_NUM_THREADS": s, "OPENBLAS_NUM_THREADS": "1"}),
    ]


def driver():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True, help="JSON list of jobs")
    ap.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step")
    a = ap.parse_args()
    for job in json.loads(a.spec):
        best, tried = None, []
        for name, torch_threads, env in layouts(job["threads"]):
            cmd = [sys.executable, __file__, "--worker", "--torch-threads", str(torch_threads),
                   "--steps", str(a.steps), "--job", json.dumps(job)]
            base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # each layout sets its own
            out = subprocess.run(cmd, env={**base, **env}, stdout=subprocess.PIPE, check=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["layout"] = name
            tried.append({"layout": name, "tok_s": round(r["tok_s"], 1)})
            print(f"bench_torch.py: {job['name']} {job['mode']} {job['threads']} thr, {name}: "
                  f"{r['tok_s']:.0f} tok/s (median)", file=sys.stderr, flush=True)
            if best is None or r["tok_s"] > best["tok_s"]:
                best = r
        best["layouts"] = tried
        print(json.dumps(best), flush=True)
    return 0


# The driver needs no torch: each layout runs in a worker process (its
# environment must be set before torch and OpenBLAS are loaded).
if __name__ == "__main__" and "--worker" not in sys.argv:
    sys.exit(driver())

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

RANK, ALPHA = 8, 16.0


class LoRA(nn.Module):
    """A (r, d_in), B (d_out, r): adds s (x A^T) B^T to q or v (Eq. 3)."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.A = nn.Parameter(torch.empty(RANK, d_in).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in)))
        self.B = nn.Parameter(torch.zeros(d_out, RANK))
        self.s = ALPHA / RANK


class Block(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        C, H = cfg["dim"], cfg["hidden"]
        self.gpt2 = cfg["family"] == "gpt2"
        self.nh, self.nkv = cfg["heads"], cfg["kv_heads"]
        self.hs = C // self.nh
        qkv = (self.nh + 2 * self.nkv) * self.hs
        bias = self.gpt2
        if self.gpt2:
            self.ln1, self.ln2 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
        else:
            self.ln1_w, self.ln2_w = nn.Parameter(torch.ones(C)), nn.Parameter(torch.ones(C))
        self.qkv = nn.Linear(C, qkv, bias=bias)
        self.o = nn.Linear(C, C, bias=bias)
        self.fc = nn.Linear(C, H if self.gpt2 else 2 * H, bias=bias)
        self.down = nn.Linear(H, C, bias=bias)
        for lin in (self.qkv, self.o, self.fc, self.down):
            nn.init.normal_(lin.weight, std=0.02)
        self.H = H
        self.loras = nn.ModuleList()
        if lora:
            qd, kd = self.nh * self.hs, self.nkv * self.hs
            self.loras.append(LoRA(C, qd))
            self.loras.append(LoRA(C, kd))

    def norm(self, x, which):
        if self.gpt2:
            return (self.ln1 if which == 1 else self.ln2)(x)
        w = self.ln1_w if which == 1 else self.ln2_w
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def forward(self, x, cos, sin, mask):
        Bsz, T, C = x.shape
        h = self.norm(x, 1)
        qkv = self.qkv(h)
        q, k, v = qkv.split([self.nh * self.hs, self.nkv * self.hs, self.nkv * self.hs], dim=-1)
        if len(self.loras):  # q += s (h A_q^T) B_q^T, v likewise
            lq, lv = self.loras
            q = q + (h @ lq.A.t()) @ lq.B.t() * lq.s
            v = v + (h @ lv.A.t()) @ lv.B.t() * lv.s
        q = q.view(Bsz, T, self.nh, self.hs).transpose(1, 2)
        k = k.view(Bsz, T, self.nkv, self.hs).transpose(1, 2)
        v = v.view(Bsz, T, self.nkv, self.hs).transpose(1, 2)
        if not self.gpt2:  # RoPE, split halves
            def rope(t):
                t1, t2 = t[..., : self.hs // 2], t[..., self.hs // 2:]
                return torch.cat([t1 * cos - t2 * sin, t1 * sin + t2 * cos], dim=-1)
            q, k = rope(q), rope(k)
        if self.nkv != self.nh:
            k = k.repeat_interleave(self.nh // self.nkv, dim=1)
            v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs))
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(Bsz, T, C)
        x = x + self.o(y)
        h = self.norm(x, 2)
        f = self.fc(h)
        if self.gpt2:
            a = F.gelu(f, approximate="tanh")
        else:
            g, u = f.split([self.H, self.H], dim=-1)
            a = F.silu(g) * u
        return x + self.down(a)


class Model(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        C, V = cfg["dim"], cfg["vocab"]
        self.gpt2 = cfg["family"] == "gpt2"
        self.wte = nn.Embedding(V, C)
        nn.init.normal_(self.wte.weight, std=0.02)
        if self.gpt2:
            self.wpe = nn.Embedding(cfg["positions"], C)
            self.lnf = nn.LayerNorm(C, eps=1e-5)
        else:
            self.lnf_w = nn.Parameter(torch.ones(C))
        self.blocks = nn.ModuleList(Block(cfg, lora) for _ in range(cfg["layers"]))
        self.head = None if cfg["tied"] else nn.Linear(C, V, bias=False)
        hs = C // cfg["heads"]
        T = cfg["T"]
        inv = 1.0 / (10000.0 ** (torch.arange(0, hs, 2).float() / hs))
        ang = torch.arange(T).float()[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1))

    def forward(self, idx, targets):
        Bsz, T = idx.shape
        x = self.wte(idx)
        if self.gpt2:
            x = x + self.wpe(torch.arange(T))
        for b in self.blocks:
            x = b(x, self.cos[:T], self.sin[:T], self.mask[:T, :T])
        if self.gpt2:
            x = self.lnf(x)
        else:
            x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.lnf_w
        logits = self.head(x) if self.head is not None else x @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


class EncoderBlock(nn.Module):
    """Post-LN BERT block: x = LN(x + o(attn(x))); x = LN(x + down(gelu(fc(x))))."""

    def __init__(self, cfg, lora):
        super().__init__()
        C, H = cfg["dim"], cfg["hidden"]
        self.nh, self.hs = cfg["heads"], C // cfg["heads"]
        self.qkv, self.o = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.down = nn.Linear(C, H), nn.Linear(H, C)
        self.ln1, self.ln2 = nn.LayerNorm(C, eps=1e-12), nn.LayerNorm(C, eps=1e-12)
        for lin in (self.qkv, self.o, self.fc, self.down):
            nn.init.normal_(lin.weight, std=0.02)
        self.loras = nn.ModuleList([LoRA(C, C), LoRA(C, C)] if lora else [])

    def forward(self, x):
        Bsz, T, C = x.shape
        q, k, v = self.qkv(x).split([C, C, C], dim=-1)
        if len(self.loras):
            lq, lv = self.loras
            q = q + (x @ lq.A.t()) @ lq.B.t() * lq.s
            v = v + (x @ lv.A.t()) @ lv.B.t() * lv.s
        q, k, v = (t.view(Bsz, T, self.nh, self.hs).transpose(1, 2) for t in (q, k, v))
        att = ((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs))).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(Bsz, T, C)
        x = self.ln1(x + self.o(y))
        return self.ln2(x + self.down(F.gelu(self.fc(x))))


class Encoder(nn.Module):
    def __init__(self, cfg, lora):
        super().__init__()
        C = cfg["dim"]
        self.wte, self.wpe, self.wtt = nn.Embedding(cfg["vocab"], C), nn.Embedding(cfg["positions"], C), nn.Embedding(2, C)
        self.ln = nn.LayerNorm(C, eps=1e-12)
        self.blocks = nn.ModuleList(EncoderBlock(cfg, lora) for _ in range(cfg["layers"]))
        self.pooler, self.classifier = nn.Linear(C, C), nn.Linear(C, 2)

    def forward(self, idx, labels):
        Bsz, T = idx.shape
        x = self.ln(self.wte(idx) + self.wpe(torch.arange(T)) + self.wtt(torch.zeros_like(idx)))
        for b in self.blocks:
            x = b(x)
        logits = self.classifier(torch.tanh(self.pooler(x[:, 0])))
        return F.cross_entropy(logits, labels)


def run_job(job, steps, torch_threads):
    torch.set_num_threads(torch_threads)
    torch.manual_seed(1234)
    lora = job["mode"] == "lora"
    encoder = job["family"] == "bert"
    model = Encoder(job, lora) if encoder else Model(job, lora)
    if lora:
        for name, p in model.named_parameters():
            p.requires_grad = ".loras." in name or name.startswith("classifier.")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
    B, T, V = job["B"], job["T"], job["vocab"]
    g = torch.Generator().manual_seed(42)
    idx = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, 2, (B,), generator=g) if encoder else torch.roll(idx, -1, dims=1)
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(idx, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if not math.isfinite(loss.item()):
            raise SystemExit(f"{job['name']}: loss is not finite")
        times.append(time.perf_counter() - t0)
    timed = times[1:]  # step 0 is a warm-up, as in lorascope bench
    med = statistics.median(timed)
    return {"name": job["name"], "mode": job["mode"], "threads": job["threads"], "step_median_s": med,
            "step_min_s": min(timed), "step_max_s": max(timed), "tok_s": B * T / med,
            "tok_s_min": B * T / max(timed), "tok_s_max": B * T / min(timed),
            "trainable": sum(p.numel() for p in params)}


def worker():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--torch-threads", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--job", required=True)
    a = ap.parse_args()
    print(json.dumps(run_job(json.loads(a.job), a.steps, a.torch_threads)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(worker())
