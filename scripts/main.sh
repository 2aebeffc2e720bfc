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
# (default: the cores / threads). The runs still to do go out as their own
# `lorascope train` commands (`run --list`: resumable, each locking its run
# directory), then a second listing holds their evaluations, run the same way;
# `lorascope run` then finds them complete and evaluated, and analyses.
threads=${LORASCOPE_THREADS:-1}
jobs=${LORASCOPE_JOBS:-$(($(nproc) / threads))}
[ "$jobs" -ge 1 ] || jobs=1
for _pass in train eval; do
    build/lorascope run experiments/*.ini --threads "$threads" "$@" --list |
        xargs -r -d '\n' -P "$jobs" -I{} sh -c '{}'
done
exec build/lorascope run experiments/*.ini --threads "$threads" "$@"
