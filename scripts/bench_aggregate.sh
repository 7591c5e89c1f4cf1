#!/bin/sh
# bench_aggregate.sh -- build and run the aggregation-rule benchmark
# (bench/bench_aggregate.c): per-node, per-round time of every rule on
# d = 80,202 with k = 29, 59, 119, 179 neighbours (ER p = 0.6 at n = 50, 100,
# 200, 300), against the time to read the same bytes once.
#
# usage: scripts/bench_aggregate.sh [n ...]          (default: 50 100 200 300)
# env:   BUILD=<meson build dir>  (default build-bench; never ./build)
#        BN_KERNELS=portable|sse4|avx2|avx512  forces the rules' kernel set (default: the
#                                 best; sse4 runs the rules' portable loops)
# Times are the thread's CPU time per call (the bench's header says so).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
if [ ! -d "$BUILD" ]; then
    meson setup "$BUILD" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" bench/bench_aggregate >/dev/null
echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC')  host: $(uname -n)"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
OPENBLAS_NUM_THREADS=1 "$BUILD/bench/bench_aggregate" "$@"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
