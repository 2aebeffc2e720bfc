#!/usr/bin/env bash
# The GPU parity check of both model families: every test of the `cuda`
# suite (tests/cuda/test_cuda.c) on a real GPU — the ops against the CPU
# backend, the decoder models (stories260K, the GPT-2 small shape, SmolLM2
# GGUF) and the encoder models (tiny BERT / RoBERTa training steps,
# all-MiniLM-L6-v2). kernels/README.md, "Running the GPU check", says how.
#
#   scripts/gpu-check.sh pack   here, on a machine without a GPU: builds with
#                               CUDA and packs the binaries with stories260K,
#                               all-MiniLM-L6-v2 and SmolLM2 for a lent GPU
#                               (../shared/tools/gpu-pack.sh), then prints
#                               the device calls to make
#   scripts/gpu-check.sh run [TEST_BINARY]
#                               on the GPU machine (after the unpacking, or in
#                               any CUDA build with a GPU): runs each test in
#                               its own process, prints one line per test and
#                               a summary; exit 0 when all pass, 1 when one
#                               fails, 77 when there is no GPU (all skip)
#   scripts/gpu-check.sh list   the test names it runs
#
# With $OUT set (the device tool's result folder) the per-test table is also
# written to $OUT/gpu-check.tsv and each test's output to $OUT/logs/.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
assets="models/all-MiniLM-L6-v2 models/smollm2-135m-instruct"

# Test names in registration order, from tests/cuda/meson.build (the one list).
test_names() {
    sed -n "/^cuda_test_names = \[/,/^\]/p; /^cuda_model_test_names = \[/,/^\]/p" \
        "$here/tests/cuda/meson.build" | grep -o "'test_[a-zA-Z0-9_]*'" | tr -d "'"
}

pack() {
    cd "$here" || exit 1
    # shellcheck disable=SC2086
    "$here/../shared/tools/gpu-pack.sh" $assets || exit 1
    local last
    last=$(ls -d "$here"/.gpu/c* | sort -V | tail -1 | xargs basename)
    echo
    echo "gpu-check: on the lent GPU, one device call per folder, in order (carry exactly that folder):"
    for d in $(ls -d "$here"/.gpu/c* | sort -V | xargs -n1 basename); do
        if [ "$d" = "$last" ]; then
            echo "  carry [\".gpu/$d\"]  command \"bash .gpu/$d/gpu-unpack.sh && bash /tmp/lsgpu/repo/scripts/gpu-check.sh run\"  (timeout_s 540)"
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
    local logs=${OUT:+$OUT/logs} tsv=${OUT:+$OUT/gpu-check.tsv}
    [ -n "$logs" ] && mkdir -p "$logs"
    [ -n "$tsv" ] && printf 'test\tresult\tseconds\n' > "$tsv"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu-check: GPU: /'
    echo "gpu-check: $exe"
    local n=0 ok=0 skip=0 fail=0 nodev=0 t0 t1 rc secs result out
    out=$(mktemp)
    for name in $(test_names); do
        n=$((n + 1))
        t0=$(date +%s.%N)
        timeout 300 "$exe" "$name" > "$out" 2>&1
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
    done
    rm -f "$out"
    echo "gpu-check: $n tests: $ok passed, $skip skipped, $fail failed"
    [ "$fail" -gt 0 ] && exit 1
    # test_no_device_gives_clear_error passes only where no GPU is usable
    [ "$nodev" = 1 ] && { echo "gpu-check: no usable GPU: nothing was checked" >&2; exit 77; }
    exit 0
}

case ${1:-} in
    pack) pack ;;
    run) shift; run "$@" ;;
    list) test_names ;;
    *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
