#!/usr/bin/python3
"""PyTorch reference for `lorascope bench`: the same training step on the same
shapes and thread counts, in plain torch (Debian's python3-torch, CPU).

One step = zero grads, forward (decoder transformer of the given family),
cross-entropy on a random batch, backward, global-norm clipping to 1.0, one
torch.optim.AdamW step (lr 1e-5, weight decay 0.01). LoRA (Hu et al. 2021):
r = 8, alpha = 16 on q and v of every layer, the base weights frozen
(requires_grad False), so autograd computes no weight gradient for them --
the same work lorascope does. Both sides fuse q,k,v into one matrix and
(llama) gate,up into one, so each is one GEMM.

Usage (lorascope bench calls it this way):
  bench_torch.py --spec '[{"name": "llama512", "family": "llama", "dim": 512,
                           "hidden": 1376, "layers": 8, "heads": 8, "kv_heads": 8,
                           "vocab": 32000, "positions": 1024, "tied": false,
                           "B": 4, "T": 256, "mode": "lora", "threads": 1}, ...]'
                 --steps 3
All jobs of one call share a thread count (see _pin_blas_threads).
Prints one JSON object per job: {"name", "mode", "threads", "step_s" (fastest timed step),
"step_median_s", "tok_s" (B*T / step_s), "trainable"}.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time


def _pin_blas_threads():
    """Debian's torch calls BLAS through the generic interface (BLAS_INFO=generic,
    libblas.so.3 -> OpenBLAS), and torch.set_num_threads() does not reach
    OpenBLAS's own pool: with it alone, "1 thread" runs every GEMM on all cores
    (measured: torch.mm 2048^3 at 145 GFLOP/s after set_num_threads(1), the
    2-core figure). OpenBLAS reads OPENBLAS_NUM_THREADS when it is loaded, so the
    thread count of the jobs is put there before torch is imported; a spec's
    jobs must therefore share one thread count (lorascope bench runs one job per
    process)."""
    blas = None
    for i, a in enumerate(sys.argv):
        if a == "--blas-threads" and i + 1 < len(sys.argv):
            blas = sys.argv[i + 1]
    for i, a in enumerate(sys.argv):
        if a == "--spec" and i + 1 < len(sys.argv):
            threads = {job["threads"] for job in json.loads(sys.argv[i + 1])}
            if len(threads) != 1:
                raise SystemExit("bench_torch.py: all jobs of one call must use the same thread count")
            n = str(threads.pop())
            os.environ["OPENBLAS_NUM_THREADS"] = blas or n
            os.environ["OMP_NUM_THREADS"] = n


_pin_blas_threads()

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


def run_job(job, steps):
    torch.set_num_threads(job["threads"])
    torch.manual_seed(1234)
    lora = job["mode"] == "lora"
    model = Model(job, lora)
    if lora:
        for name, p in model.named_parameters():
            p.requires_grad = ".loras." in name
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
    B, T, V = job["B"], job["T"], job["vocab"]
    g = torch.Generator().manual_seed(42)
    idx = torch.randint(0, V, (B, T), generator=g)
    targets = torch.roll(idx, -1, dims=1)
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
    step_s = min(times[1:])  # as lorascope bench: the fastest timed step (step 0 is a warm-up)
    return {"name": job["name"], "mode": job["mode"], "threads": job["threads"], "step_s": step_s,
            "step_median_s": statistics.median(times[1:]), "tok_s": B * T / step_s,
            "trainable": sum(p.numel() for p in params)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True, help="JSON list of jobs")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OpenBLAS threads (default: the jobs' thread count); with 2 threads torch's OpenMP "
                         "and OpenBLAS pools can slow each other down, so lorascope bench tries 1 as well")
    a = ap.parse_args()
    for job in json.loads(a.spec):
        r = run_job(job, a.steps)
        r["blas_threads"] = int(os.environ["OPENBLAS_NUM_THREADS"])
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    sys.exit(main())
