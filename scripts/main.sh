#!/bin/sh
# README's main job: set up (scripts/setup.sh), then analyse the pretrained
# stories260K weights (singular spectra of Wq and Wv per layer; Fig. 8-style
# similarity of W's top directions with a random matrix's). Outputs go to
# results/stories260K_weights/. Assets: $LORASCOPE_ASSETS or ../shared/assets.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
assets=${LORASCOPE_ASSETS:-../shared/assets}
base="$assets/models/stories260K/stories260K.bin"
if [ ! -f "$base" ]; then
    echo "main: $base not found (set LORASCOPE_ASSETS to the assets directory)" >&2
    exit 1
fi
out=results/stories260K_weights
build/lorascope analyze spectrum --base "$base" --module q,k,v,o --out "$out"
build/lorascope analyze w-vs-dw --base "$base" --module q,v --rank 8 --out "$out"
echo "main: tables and figures in $out/" >&2
