#!/bin/sh
# run_fuzzer.sh FUZZER SEED_DIR: runs a libFuzzer target for
# $LORASCOPE_FUZZ_SECONDS (default 60) on a scratch copy of the seed corpus.
set -eu
fuzzer=$1
seeds=$2
secs=${LORASCOPE_FUZZ_SECONDS:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/ 2>/dev/null || true
exec "$fuzzer" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 "$work"
