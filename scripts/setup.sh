#!/bin/sh
# Installs lorascope's build and run dependencies from Debian 12 packages
# (skips apt entirely when they are already there), then configures and
# builds into ./build. Idempotent. (wordnet-base: the synonym stage of METEOR.)
set -eu
cd "$(dirname "$0")/.."

packages="meson ninja-build pkg-config gcc g++ libopenblas-dev liblapacke-dev libcjson-dev libinih-dev gnuplot-nox wordnet-base"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ -f build/build.ninja ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build >/dev/null
fi
ninja -C build >/dev/null
ln -sf src/cli/lorascope build/lorascope
echo "setup: built build/lorascope" >&2
