#!/bin/sh
# README's test command: set up (scripts/setup.sh), then run the default
# `meson test` suites. Extra arguments go to `meson test` (e.g. --suite io).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
exec meson test -C build --print-errorlogs --num-processes 2 "$@"
