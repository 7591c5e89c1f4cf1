#!/bin/sh
# bench_model.sh -- byznode CNN vs PyTorch CNN training/eval throughput, one
# thread, batch 60, in the same run on the same machine.
#
# usage: scripts/bench_model.sh [seconds per phase (default 5)]
# env:   BN_BUILD_DIR (default build-bench), BN_BENCH_BATCH (default 60)
# Installs python3-torch with apt-get if /usr/bin/python3 cannot import torch,
# builds bench/bench_model, runs byznode then PyTorch, prints both and the ratio.
set -eu
cd "$(dirname "$0")/.."
SECONDS_PER_PHASE=${1:-5}
BATCH=${BN_BENCH_BATCH:-60}
BUILD=${BN_BUILD_DIR:-build-bench}
PY=/usr/bin/python3

if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "== installing python3-torch"
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get install -y python3-torch >/dev/null
fi

if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" >/dev/null
fi
ninja -C "$BUILD" bench/bench_model >/dev/null

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
echo "== machine: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //"), $(nproc --all) cpus"
echo "== load before: $(uptime | sed 's/.*load average/load average/')"
OUT_BN=$("$BUILD/bench/bench_model" "$SECONDS_PER_PHASE" "$BATCH" cnn)
echo "$OUT_BN"
OUT_PT=$("$PY" scripts/bench_pytorch.py "$SECONDS_PER_PHASE" "$BATCH")
echo "$OUT_PT"
echo "== load after: $(uptime | sed 's/.*load average/load average/')"

rate() { echo "$1" | awk -v what="$2" '$0 ~ what { for (i = 1; i <= NF; i++) if ($i == "samples/s") print $(i - 1) }'; }
BN_TRAIN=$(rate "$OUT_BN" "train"); BN_EVAL=$(rate "$OUT_BN" "eval")
PT_TRAIN=$(rate "$OUT_PT" "train"); PT_EVAL=$(rate "$OUT_PT" "eval")
awk -v a="$BN_TRAIN" -v b="$PT_TRAIN" -v c="$BN_EVAL" -v d="$PT_EVAL" 'BEGIN {
    printf "== train samples/s: byznode %.0f  pytorch %.0f  ratio %.2fx\n", a, b, a / b;
    printf "== eval  samples/s: byznode %.0f  pytorch %.0f  ratio %.2fx\n", c, d, c / d;
}'
