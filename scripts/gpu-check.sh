#!/usr/bin/env bash
# The GPU parity check of both model families: every test of the `cuda`
# suite (tests/cuda/test_cuda.c) on a real GPU — the ops against the CPU
# backend, the decoder models (stories260K, the GPT-2 small shape, SmolLM2
# GGUF) and the encoder models (tiny BERT / RoBERTa training steps,
# all-MiniLM-L6-v2) — and of `analyze --backend cuda` (tests/cuda/
# test_cuda_analyze.c, through the CUDA module liblorascope_cuda.so as the
# command loads it); then `lorascope` itself with --backend cuda (a short
# LoRA run of stories260K; a MiniLM LoRA run in bf16 on the GPU against the
# same run in fp32 on the CPU, validation loss within 1%; issue 14's
# throughput table against HF + PEFT), Table 1's forward latency on the GPU (bench
# --latency --backend cuda: base, merged / unmerged LoRA, Adapter^H / ^L by
# batch size), and the timing of the largest experiment's analyses on
# cuSOLVER against LAPACKE (kernels/bench/bench_analysis.py).
# kernels/README.md, "Running the GPU check", says how.
#
#   scripts/gpu-check.sh pack   here, on a machine without a GPU: builds with
#                               CUDA and packs the binaries with stories260K,
#                               all-MiniLM-L6-v2, SmolLM2 and SST-2 for a lent GPU
#                               (../shared/tools/gpu-pack.sh), then prints
#                               the device calls to make
#   scripts/gpu-check.sh run [TEST_BINARY]
#                               on the GPU machine (after the unpacking, or in
#                               any CUDA build with a GPU): runs each test in
#                               its own process, prints one line per test and
#                               a summary; exit 0 when all pass, 1 when one
#                               fails, 77 when there is no GPU (all skip)
#   scripts/gpu-check.sh bench  after `run`, on the same machine: issue 14's
#                               throughput table, lorascope against HF + PEFT
#                               (lorascope bench --backend cuda), into $OUT/bench-gpu.md
#   scripts/gpu-check.sh list   the test names it runs (binary and name)
#
# With $OUT set (the device tool's result folder) the per-test table is also
# written to $OUT/gpu-check.tsv, each test's output to $OUT/logs/, Table 1 to
# $OUT/table1_gpu.md and the analysis timing to $OUT/bench-analysis.tsv.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
assets="models/all-MiniLM-L6-v2 models/smollm2-135m-instruct data/sst2"

# "binary name" pairs in registration order, from tests/cuda/meson.build (the
# one list): test_cuda's tests, then test_cuda_analyze's.
test_names() {
    sed -n "/^cuda_test_names = \[/,/^\]/p; /^cuda_model_test_names = \[/,/^\]/p" \
        "$here/tests/cuda/meson.build" | grep -o "'test_[a-zA-Z0-9_]*'" | tr -d "'" | sed 's/^/test_cuda /'
    sed -n "/^cuda_analyze_test_names = \[/,/^\]/p" \
        "$here/tests/cuda/meson.build" | grep -o "'test_[a-zA-Z0-9_]*'" | tr -d "'" | sed 's/^/test_cuda_analyze /'
}

# The CUDA module beside the binaries gpu-pack.sh packs (it packs executables,
# not shared objects): added to the payload, in the build tree where
# lorascope looks for it (src/engine/cuda_loader.h).
pack_module() {
    local stage=/tmp/lsgpu/stage/lsgpu/repo mod=build-cuda/kernels/liblorascope_cuda.so
    [ -f "/tmp/lsgpu/repo/$mod" ] || { echo "gpu-check: the CUDA build made no $mod" >&2; exit 1; }
    (cd /tmp/lsgpu/repo && cp --parents "$mod" "$stage/")
    (cd /tmp/lsgpu/stage && tar -cJf "$here/.gpu/c1/payload.tar.xz" lsgpu) || exit 1
    echo "gpu-check: added $mod to .gpu/c1/payload.tar.xz"
}

pack() {
    cd "$here" || exit 1
    # shellcheck disable=SC2086
    "$here/../shared/tools/gpu-pack.sh" $assets || exit 1
    pack_module
    local last
    last=$(ls -d "$here"/.gpu/c* | sort -V | tail -1 | xargs basename)
    echo
    echo "gpu-check: on the lent GPU, one device call per folder, in order (carry exactly that folder):"
    for d in $(ls -d "$here"/.gpu/c* | sort -V | xargs -n1 basename); do
        if [ "$d" = "$last" ]; then
            echo "  carry [\".gpu/$d\"]  command \"bash .gpu/$d/gpu-unpack.sh && bash /tmp/lsgpu/repo/scripts/gpu-check.sh run\"  (timeout_s 540)"
            echo "  then, on the warm machine: command \"bash /tmp/lsgpu/repo/scripts/gpu-check.sh bench\"  (timeout_s 420)"
        else
            echo "  carry [\".gpu/$d\"]  command \"bash .gpu/$d/gpu-unpack.sh\""
        fi
    done
}

run() {
    [ -f /tmp/lsgpu/env.sh ] && . /tmp/lsgpu/env.sh
    local exe=${1:-}
    if [ -z "$exe" ]; then
        for c in "$here/build-cuda/tests/cuda/test_cuda" "$here/build/tests/cuda/test_cuda"; do
            [ -x "$c" ] && { exe=$c; break; }
        done
    fi
    [ -n "$exe" ] && [ -x "$exe" ] || { echo "gpu-check: no test_cuda binary (build with -Dcuda=enabled)" >&2; exit 1; }
    local bindir build
    bindir=$(dirname "$exe")
    build=$(cd "$bindir/../.." && pwd)
    local logs=${OUT:+$OUT/logs} tsv=${OUT:+$OUT/gpu-check.tsv}
    [ -n "$logs" ] && mkdir -p "$logs"
    [ -n "$tsv" ] && printf 'test\tresult\tseconds\n' > "$tsv"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu-check: GPU: /'
    echo "gpu-check: $exe"
    local n=0 ok=0 skip=0 fail=0 nodev=0 t0 t1 rc secs result out
    out=$(mktemp)
    local bin name
    while read -r bin name; do
        n=$((n + 1))
        t0=$(date +%s.%N)
        timeout 300 "$bindir/$bin" "$name" > "$out" 2>&1 < /dev/null
        rc=$?
        t1=$(date +%s.%N)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        case $rc in
            0) result=ok; ok=$((ok + 1))
               [ "$name" = test_no_device_gives_clear_error ] && nodev=1 ;;
            77) result=skip; skip=$((skip + 1)) ;;
            *) result="FAIL($rc)"; fail=$((fail + 1)) ;;
        esac
        printf '%-58s %-9s %6ss\n' "$name" "$result" "$secs"
        [ "$result" = skip ] && grep -m1 '^SKIP' "$out" | sed 's/^/    /'
        [ "$rc" != 0 ] && [ "$rc" != 77 ] && tail -n 15 "$out" | sed 's/^/    /'
        [ -n "$logs" ] && cp "$out" "$logs/$name.log"
        [ -n "$tsv" ] && printf '%s\t%s\t%s\n' "$name" "$result" "$secs" >> "$tsv"
    done < <(test_names)
    rm -f "$out"
    [ "$nodev" = 1 ] || cli_checks "$build" || fail=$((fail + 1))
    echo "gpu-check: $n tests: $ok passed, $skip skipped, $fail failed"
    [ "$fail" -gt 0 ] && exit 1
    # test_no_device_gives_clear_error passes only where no GPU is usable
    [ "$nodev" = 1 ] && { echo "gpu-check: no usable GPU: nothing was checked" >&2; exit 77; }
    exit 0
}

# `lorascope` with --backend cuda (the module as a user's command loads it):
# a short LoRA run of stories260K that must report the cuda backend, and the
# timing of the largest experiment's analyses, cuSOLVER against LAPACKE.
cli_checks() {
    local build=$1 exe=$1/src/cli/lorascope run=/tmp/lsgpu-run rc=0
    local stories=${LORASCOPE_ASSETS:-$here/../shared/assets}/models/stories260K/stories260K.bin
    [ -x "$exe" ] || { echo "gpu-check: no $exe" >&2; return 1; }
    rm -rf "$run"
    if [ -f "$stories" ]; then # the packed assets have no data set: README.md as plain text
        if timeout 120 "$exe" train --backend cuda --model "$stories" --task lm --data "$here/README.md" --lora q,v \
            --rank 4 --steps 20 --seq-len 64 --batch-size 4 --out "$run" > "${OUT:-/tmp}/cli-train.log" 2>&1 &&
            grep -q '"backend":[[:space:]]*"cuda"' "$run/manifest.json"
        then echo "gpu-check: lorascope train --backend cuda: ok ($(tail -n 1 "${OUT:-/tmp}/cli-train.log"))"
        else echo "gpu-check: lorascope train --backend cuda: FAIL"; tail -n 5 "${OUT:-/tmp}/cli-train.log" | sed 's/^/    /'; rc=1
        fi
    fi
    bf16_vs_cpu "$exe" || rc=1
    # Table 1 on the GPU: forward latency of base, merged / unmerged LoRA, Adapter^H / ^L by batch size
    echo "gpu-check: Table 1, lorascope bench --latency --backend cuda (gpt2-768 shape):"
    timeout 180 "$exe" bench --latency --backend cuda --shape gpt2-768 ${OUT:+--out "$OUT/table1_gpu.md"} 2>&1 |
        sed 's/^/    /'
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "gpu-check: bench --latency --backend cuda: FAIL"; rc=1; }
    local py=${LORASCOPE_PYTHON:-python3}
    if "$py" -c 'import numpy' 2>/dev/null; then
        echo "gpu-check: analyses, --backend cpu against cuda (kernels/bench/bench_analysis.py):"
        timeout 300 "$py" "$here/kernels/bench/bench_analysis.py" --lorascope "$exe" \
            ${OUT:+--tsv "$OUT/bench-analysis.tsv"} 2>&1 | sed 's/^/    /'
        [ "${PIPESTATUS[0]}" = 0 ] || { echo "gpu-check: bench_analysis: FAIL"; rc=1; }
    else
        echo "gpu-check: bench_analysis skipped: $py has no numpy"
    fi
    return $rc
}

# Issue 14's precision check: the same LoRA run (experiments/minilm.ini's r = 8:
# all-MiniLM-L6-v2 on SST-2, 200 steps of 16) on this machine's CPU in fp32
# and on the GPU in bf16 (cuBLAS bf16 products, tensor-core attention: head
# size 32, T 64); the GPU's final validation loss within 1% of the CPU's.
bf16_vs_cpu() {
    local exe=$1 a=${LORASCOPE_ASSETS:-$here/../shared/assets} rc=0 l_cpu l_gpu
    local minilm=$a/models/all-MiniLM-L6-v2 sst=$a/data/sst2
    [ -d "$minilm" ] && [ -f "$sst/train.tsv" ] || { echo "gpu-check: bf16 run skipped: no MiniLM or SST-2"; return 0; }
    local common="train --model $minilm --task sst2 --data $sst/train.tsv --val-data $sst/dev.tsv --lora q,v --rank 8
        --alpha 16 --batch-size 16 --seq-len 64 --steps 200 --lr 2e-3 --schedule linear --warmup 20 --eval-every 0"
    rm -rf /tmp/lsgpu-fp32 /tmp/lsgpu-bf16
    # shellcheck disable=SC2086
    timeout 300 "$exe" $common --backend cpu --out /tmp/lsgpu-fp32 > "${OUT:-/tmp}/cli-fp32.log" 2>&1 || rc=1
    # shellcheck disable=SC2086
    timeout 120 "$exe" $common --backend cuda --precision bf16 --out /tmp/lsgpu-bf16 > "${OUT:-/tmp}/cli-bf16.log" 2>&1 || rc=1
    l_cpu=$(grep -o '"val_loss":[0-9.e+-]*' /tmp/lsgpu-fp32/metrics.jsonl 2>/dev/null | tail -n 1 | cut -d: -f2)
    l_gpu=$(grep -o '"val_loss":[0-9.e+-]*' /tmp/lsgpu-bf16/metrics.jsonl 2>/dev/null | tail -n 1 | cut -d: -f2)
    if [ "$rc" = 0 ] && [ -n "$l_cpu" ] && [ -n "$l_gpu" ] &&
        awk -v c="$l_cpu" -v g="$l_gpu" 'BEGIN { d = g - c; if (d < 0) d = -d; exit !(d <= 0.01 * c) }'
    then echo "gpu-check: LoRA run, GPU bf16 val loss $l_gpu vs CPU fp32 $l_cpu: within 1%: ok"
    else echo "gpu-check: LoRA run, GPU bf16 val loss ${l_gpu:-?} vs CPU fp32 ${l_cpu:-?}: FAIL"
        tail -n 3 "${OUT:-/tmp}/cli-fp32.log" "${OUT:-/tmp}/cli-bf16.log" | sed 's/^/    /'; rc=1
    fi
    return $rc
}

# Issue 14's table: `lorascope bench --backend cuda` (src/train/bench_gpu.h)
# runs lorascope's rows and, when this python has torch with CUDA,
# transformers and peft, HF + PEFT's (kernels/bench/bench_peft_gpu.py) right
# after each: GPT-2 and Llama 124M shapes, LoRA and full, bf16, 8 x 1024, 10
# timed steps after 2 warm-up, on the same GPU in one run, with MFU against
# the card's bf16-storage product rate; into $OUT/bench-gpu.md. Timings are
# reported, not checked.
bench_table() {
    local build=$1 py=${LORASCOPE_PYTHON:-python3}
    echo "gpu-check: benchmark, lorascope vs HF + PEFT, bf16, 8 x 1024 (lorascope bench --backend cuda):"
    LORASCOPE_PYTHON=$(command -v "$py" || echo "$py") timeout 400 "$build/src/cli/lorascope" bench --backend cuda \
        --precision bf16 --batch 8 --seq 1024 --steps 10 --warmup 2 --out "${OUT:-/tmp}/bench-gpu.md" 2>&1 |
        sed 's/^/    /'
    [ "${PIPESTATUS[0]}" = 0 ] || echo "gpu-check: bench --backend cuda: FAIL"
    return 0
}

case ${1:-} in
    pack) pack ;;
    run) shift; run "$@" ;;
    bench) [ -f /tmp/lsgpu/env.sh ] && . /tmp/lsgpu/env.sh
        for b in "$here/build-cuda" "$here/build"; do [ -f "$b/kernels/liblorascope_cuda.so" ] && { bench_table "$b"; exit 0; }; done
        echo "gpu-check: no CUDA build (build with -Dcuda=enabled)" >&2; exit 1 ;;
    list) test_names ;;
    *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
