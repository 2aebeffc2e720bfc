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
exec build/lorascope run experiments/*.ini --threads "${LORASCOPE_THREADS:-$(nproc)}" "$@"
