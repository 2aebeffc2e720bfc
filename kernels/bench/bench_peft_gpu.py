#!/usr/bin/env python3
"""Training throughput of HF transformers (+ PEFT for LoRA) on one GPU: the
baseline that lorascope's CUDA backend is compared with (kernels/README.md).

Builds the same randomly initialised shapes as kernels/bench/bench_train.c,
runs forward + backward + AdamW steps on random tokens (each step timed
after a device synchronisation; the median is reported), and prints one TSV
row per run in bench_train's format (compare.py joins the two), or with
--json the record tests/reference/bench_torch.py prints for `lorascope bench`:

    impl device shape mode precision batch seq params trainable tokens_per_s
    step_ms peak_mem_mib model_tflops peak_tflops mfu

Shapes: gpt2-124m (GPT-2 small: 12 x 768, 12 heads, vocab 50257, tied head),
llama-124m (Llama layout: 12 x 768, 12 query / 4 kv heads, SwiGLU 2048,
vocab 32000, untied head), tiny (a few layers, for a dry run on a CPU).

Modes: lora (PEFT LoraConfig r=8, alpha=16, dropout 0, on c_attn for GPT-2 --
PEFT cannot adapt q and v separately inside GPT-2's fused projection, so run
bench_train with --lora c_attn for the same work -- and on q_proj, v_proj for
Llama), full (every parameter trainable).

Precision (the same meaning as lorascope's --precision):
  fp32  fp32 matmuls (TF32 disabled)
  tf32  torch.backends.cuda.matmul.allow_tf32 = True
  bf16  fp32 weights, autocast to bf16 for the matmuls (fp32 accumulation);
        unlike lorascope, autocast also keeps some activations in bf16.

Model FLOPs per token, as bench_train: full 6N + 12 L T d, LoRA 4N + 12 L T d
(N = parameters of the matrix products, LM head included); MFU divides by a
measured square-matmul peak (size 4096) at the same precision on the same
device. Peak memory is torch.cuda.max_memory_allocated over the timed steps
(weights, gradients, optimizer state, activations; not the CUDA context).

Usage (on the GPU machine):
    python3 kernels/bench/bench_peft_gpu.py --shape gpt2-124m --mode lora \\
        --precision bf16 --batch 8 --seq 1024 --steps 20 --header
"""

import argparse
import json
import resource
import statistics
import sys
import time

import torch


def shape_config(name):
    from transformers import GPT2Config, LlamaConfig

    if name == "gpt2-124m":
        return GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024,
                          vocab_size=50257, n_inner=3072, resid_pdrop=0.0,
                          embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                          activation_function="gelu_new", tie_word_embeddings=True)
    if name == "llama-124m":
        return LlamaConfig(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                           num_key_value_heads=4, intermediate_size=2048,
                           vocab_size=32000, max_position_embeddings=1024,
                           rms_norm_eps=1e-5, rope_theta=10000.0,
                           tie_word_embeddings=False)
    if name == "tiny":
        return LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=8,
                           num_key_value_heads=4, intermediate_size=172, vocab_size=512,
                           max_position_embeddings=256, rms_norm_eps=1e-5,
                           tie_word_embeddings=True)
    raise SystemExit(f"--shape: expected gpt2-124m, llama-124m or tiny, found {name!r}")


def geometry(cfg):
    """(layers, width, hidden, heads, kv heads, vocab, gated MLP)"""
    if cfg.model_type == "gpt2":
        return cfg.n_layer, cfg.n_embd, cfg.n_inner or 4 * cfg.n_embd, cfg.n_head, \
            cfg.n_head, cfg.vocab_size, False
    return cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, \
        cfg.num_attention_heads, cfg.num_key_value_heads, cfg.vocab_size, True


def flops_per_token(cfg, seq, full):
    L, C, H, nh, nkv, V, gated = geometry(cfg)
    hs = C // nh
    qkv = (nh + 2 * nkv) * hs
    F = 2 * H if gated else H
    n_mm = L * (qkv * C + C * C + F * C + C * H) + V * C
    return (6.0 if full else 4.0) * n_mm + 12.0 * L * seq * nh * hs


def build_model(cfg, attn):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_config(cfg, attn_implementation=attn), attn
    except (ValueError, ImportError) as e:  # e.g. no SDPA for GPT-2 in this version
        print(f"# attn_implementation={attn} unavailable ({e}); using eager", file=sys.stderr)
        return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager"), "eager"


def set_precision(precision):
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_peak(device, precision, n):
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.rand(n, n, device=device, dtype=dtype) - 0.5
    b = torch.rand(n, n, device=device, dtype=dtype) - 0.5
    torch.matmul(a, b)
    sync(device)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="gpt2-124m")
    ap.add_argument("--mode", choices=["lora", "full"], default="lora")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa, eager, ...)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--header", action="store_true")
    ap.add_argument("--json", action="store_true",
                    help="one JSON record (bench_torch.py's keys) instead of a TSV row")
    args = ap.parse_args()

    import transformers

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to PyTorch")
    set_precision(args.precision)
    torch.manual_seed(1)
    cfg = shape_config(args.shape)
    model, attn = build_model(cfg, args.attn)
    params = sum(p.numel() for p in model.parameters())
    impl = f"hf-{transformers.__version__}-{attn}"
    if args.mode == "lora":
        import peft
        from peft import LoraConfig, get_peft_model

        gpt2 = cfg.model_type == "gpt2"
        lc = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, bias="none",
                        target_modules=["c_attn"] if gpt2 else ["q_proj", "v_proj"],
                        fan_in_fan_out=gpt2, task_type="CAUSAL_LM")
        model = get_peft_model(model, lc)
        impl += f"+peft-{peft.__version__}"
    model.to(device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    L, C, H, nh, nkv, V, gated = geometry(cfg)
    gen = torch.Generator().manual_seed(2)
    tok = torch.randint(0, V, (args.batch, args.seq), generator=gen).to(device)

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                            enabled=args.precision == "bf16"):
            loss = model(input_ids=tok, labels=tok).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
        name = torch.cuda.get_device_name()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        name = "cpu"

    tok_s = args.batch * args.seq / step_s
    model_flops = flops_per_token(cfg, args.seq, args.mode == "full") * tok_s
    peak_flops = measure_peak(device, args.precision, 4096 if device.type == "cuda" else 1024)
    if args.json:  # the record of tests/reference/bench_torch.py, plus memory and precision
        print(json.dumps({"name": args.shape, "mode": args.mode, "precision": args.precision,
                          "device": name, "impl": impl, "layout": "default",
                          "step_median_s": step_s, "step_min_s": min(times), "step_max_s": max(times),
                          "tok_s": tok_s, "tok_s_min": args.batch * args.seq / max(times),
                          "tok_s_max": args.batch * args.seq / min(times),
                          "trainable": n_train, "peak_mem_mib": peak / 1048576,
                          "model_tflops": model_flops / 1e12,
                          "peak_tflops": peak_flops / 1e12}))
        return
    if args.header:
        print("impl\tdevice\tshape\tmode\tprecision\tbatch\tseq\tparams\ttrainable\t"
              "tokens_per_s\tstep_ms\tpeak_mem_mib\tmodel_tflops\tpeak_tflops\tmfu")
    print(f"{impl}\t{name}\t{args.shape}\t{args.mode}\t{args.precision}\t{args.batch}\t"
          f"{args.seq}\t{params}\t{n_train}\t{tok_s:.1f}\t{1e3 * step_s:.2f}\t"
          f"{peak / 1048576:.1f}\t{model_flops / 1e12:.3f}\t{peak_flops / 1e12:.3f}\t"
          f"{model_flops / peak_flops:.4f}")


if __name__ == "__main__":
    main()
