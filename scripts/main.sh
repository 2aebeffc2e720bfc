#!/bin/sh
# README's main job: set up (scripts/setup.sh), then run the default
# experiment set end to end — every training run the paper's Section 7
# artefacts need on stories260K (E2E, SST-2), their evaluations, analyses,
# tables and figures — into results/. Finished runs are skipped and killed ones
# resumed, so the command can be re-run at any time.
# Assets: $LORASCOPE_ASSETS, else ../shared/assets.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
# Each run trains on LORASCOPE_THREADS threads (default 1: the committed runs'
# setting, so that a rerun gives their bits), LORASCOPE_JOBS runs at a time
# (default: the cores / threads): `lorascope run --jobs` starts each run still
# to do as its own `lorascope train` command (as `run --list` prints it:
# resumable, locking its run directory; its output in results/logs/), then
# their evaluations the same way, then analyses.
threads=${LORASCOPE_THREADS:-1}
jobs=${LORASCOPE_JOBS:-$(($(nproc) / threads))}
[ "$jobs" -ge 1 ] || jobs=1
exec build/lorascope run experiments/*.ini --threads "$threads" --jobs "$jobs" "$@"
