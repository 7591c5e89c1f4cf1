#!/usr/bin/env bash
# setup.sh -- from a fresh Debian 12 clone to a built byznode with data.
#
#   scripts/setup.sh [--no-data] [--build DIR]
#
# 1. installs the Debian packages byznode needs, only those missing
#    (idempotent: does nothing when all are present; uses sudo when not root);
# 2. checks the official Fashion-MNIST files (Debian's dataset-fashion-mnist,
#    installed in step 1) against their SHA-256 (scripts/fetch_data.sh);
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

# What byznode needs, as "Debian package:check" pairs; a package is installed
# only when its check fails (a command on PATH, or a pkg-config module), so
# tools installed another way (say, Node.js from elsewhere) are left alone.
# Kinds: cmd (a command on PATH), pc (a pkg-config module), file (a path),
# py (a python3 module).  nodejs/npm serve only the npm fallback data
# (scripts/fetch_data.sh --npm).
needs=(build-essential:cmd:cc meson:cmd:meson ninja-build:cmd:ninja pkg-config:cmd:pkg-config
       python3:cmd:python3 nodejs:cmd:node npm:cmd:npm gnuplot-nox:cmd:gnuplot iproute2:cmd:ip
       libzmq3-dev:pc:libzmq libopenblas-dev:pc:openblas libigraph-dev:pc:igraph
       libmsgpack-dev:pc:msgpack libcmocka-dev:pc:cmocka zlib1g-dev:pc:zlib
       dataset-fashion-mnist:file:/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
       python3-matplotlib:py:matplotlib python3-numpy:py:numpy
       gcc-aarch64-linux-gnu:cmd:aarch64-linux-gnu-gcc qemu-user:cmd:qemu-aarch64)
missing=()
for entry in "${needs[@]}"; do
    pkg="${entry%%:*}"; rest="${entry#*:}"; kind="${rest%%:*}"; what="${rest#*:}"
    if [ "$kind" = cmd ]; then
        command -v "$what" >/dev/null 2>&1 || missing+=("$pkg")
    elif [ "$kind" = file ]; then
        [ -e "$what" ] || missing+=("$pkg")
    elif [ "$kind" = py ]; then
        python3 -c "import $what" >/dev/null 2>&1 || missing+=("$pkg")
    else
        { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$what"; } || missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The multi-host launchers' tools (ssh, sshd, Slurm, munge), only when missing.
"$here/scripts/setup-multihost.sh"

if [ "$data" = 1 ]; then
    "$here/scripts/fetch_data.sh"
fi

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$here" >/dev/null
fi
ninja -C "$build" >/dev/null
echo "setup: built $build/src/byznode"
