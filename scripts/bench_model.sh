#!/usr/bin/env bash
# bench_model.sh -- byznode's CNN vs PyTorch's, one thread, batch 60, side by
# side in one run, for every kernel set this CPU supports; optionally the
# one-node whole-process epoch too.
#
# usage: scripts/bench_model.sh [seconds per phase (5)] [rounds (3)]
# env:   BN_BUILD_DIR     build directory (default build-bench; configured if missing)
#        BN_BENCH_BATCH   batch (default 60)
#        BN_BENCH_PATHS   kernel sets to measure (default: every one the CPU runs,
#                         of "portable sse4 avx2 avx512 neon"); a name outside that
#                         list is refused before any measurement
#        BN_BENCH_EPOCH   rounds of the one-node epoch (default 0 = skip): a swarm of
#                         one, `byznode node --rule standalone --epochs 1` on the whole
#                         training set, whole process, against
#                         `bench_pytorch.py --epoch` (same data, batch, lr, wd), timed
#                         the same way (wall clock around the process)
#        BN_DATA          Fashion-MNIST directory for the epoch (default: Debian's
#                         dataset-fashion-mnist, /usr/share/datasets/fashion-mnist)
#
# Each round runs, for each kernel set in turn, byznode then PyTorch, so the two
# sides of a row see the same machine load; the summary gives per set the
# medians over the rounds of the samples/s (wall clock), of the samples per CPU
# second (steadier when the machine is shared: time spent waiting for a core is
# not counted), and of the per-round ratios.
#
# Emulating a smaller CPU on a bigger one: with BN_KERNELS=avx2, sse4 or
# portable both sides are held to that class of CPU -- OpenBLAS through
# OPENBLAS_CORETYPE (Haswell / Nehalem / Nehalem), PyTorch's ATen and oneDNN
# through ATEN_CPU_CAPABILITY (avx2 / default / default) and
# ONEDNN_MAX_CPU_ISA (AVX2 / SSE41 / SSE41) -- so that neither side keeps AVX
# code the emulated CPU would not have.  sse4 and portable get the same
# PyTorch and OpenBLAS: the CPU class of sse4 (SSE4.2, no AVX: Nehalem, the
# Goldmont Plus Celerons) is the one the portable row was already held to.
# This is NOT a measurement on such a CPU (memory system, clocks and the
# width of the vector units stay this machine's).
#
# Installs python3-torch with apt-get if /usr/bin/python3 cannot import torch.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_PHASE=${1:-5}
ROUNDS=${2:-3}
BATCH=${BN_BENCH_BATCH:-60}
BUILD=${BN_BUILD_DIR:-build-bench}
EPOCH_ROUNDS=${BN_BENCH_EPOCH:-0}
PY=/usr/bin/python3

if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "== installing python3-torch"
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get install -y python3-torch >/dev/null
fi
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" >/dev/null
fi
ninja -C "$BUILD" bench/bench_model src/byznode >/dev/null

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
BENCH="$BUILD/bench/bench_model"

# Which sets this CPU runs: ask the bench itself (it refuses the others).
ALL_PATHS="portable sse4 avx2 avx512 neon"
if [ -n "${BN_BENCH_PATHS:-}" ]; then
    read -r -a PATHS <<< "$BN_BENCH_PATHS"
    for k in "${PATHS[@]}"; do
        case " $ALL_PATHS " in
            *" $k "*) ;;
            *) echo "bench_model.sh: BN_BENCH_PATHS: '$k' is not a kernel set ($ALL_PATHS)" >&2; exit 2 ;;
        esac
    done
else
    PATHS=()
    for k in $ALL_PATHS; do
        if BN_KERNELS=$k "$BENCH" 0.01 1 none >/dev/null 2>&1; then PATHS+=("$k"); fi
    done
fi

# The environment that holds both sides to kernel set $1's class of CPU.
emulate() {
    case "$1" in
        avx2)     echo "OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2" ;;
        sse4|portable) echo "OPENBLAS_CORETYPE=Nehalem ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 DNNL_MAX_CPU_ISA=SSE41" ;;
        *)        echo "" ;;
    esac
}

cpu_model=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //")
cpu_fam=$(grep -m1 "cpu family" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
cpu_mod=$(grep -m1 "^model\s*:" /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
simd=$(grep -m1 "^flags" /proc/cpuinfo | tr ' ' '\n' | grep -E '^(sse4_1|sse4_2|avx|avx2|fma|avx512f|avx512bw|avx512vl|asimd)$' | tr '\n' ' ')
echo "== machine: $cpu_model (family $cpu_fam model $cpu_mod), $(nproc --all) cpus; SIMD flags: $simd"
echo "== kernel sets measured: ${PATHS[*]}; $ROUNDS round(s) of $SECONDS_PER_PHASE s per phase, batch $BATCH"
echo "== $("$PY" -c 'import torch; print("pytorch", torch.__version__)')"
echo "== load before: $(uptime | sed 's/.*load average/load average/')"

TSV=$(mktemp)
EPOCH_DIR=$(mktemp -d)
trap 'rm -rf "$TSV" "$EPOCH_DIR"' EXIT
# field = the number before "samples/s" or "samples/cpu-s" on the line matching $2
field() { echo "$1" | awk -v what="$2" -v unit="$3" '$0 ~ what { for (i = 1; i <= NF; i++) if ($i == unit) print $(i - 1) }'; }

for r in $(seq 1 "$ROUNDS"); do
    for k in "${PATHS[@]}"; do
        env_k=$(emulate "$k")
        OUT_BN=$(env $env_k BN_KERNELS="$k" "$BENCH" "$SECONDS_PER_PHASE" "$BATCH" cnn 2>/dev/null)
        OUT_PT=$(env $env_k "$PY" scripts/bench_pytorch.py "$SECONDS_PER_PHASE" "$BATCH")
        echo "-- round $r, $k ${env_k:+($env_k)}"
        echo "$OUT_BN" | grep "cnn"
        echo "$OUT_PT" | grep "cnn"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$r" "$k" \
            "$(field "$OUT_BN" train samples/s)" "$(field "$OUT_BN" eval samples/s)" \
            "$(field "$OUT_PT" train samples/s)" "$(field "$OUT_PT" eval samples/s)" \
            "$(field "$OUT_BN" train samples/cpu-s)" "$(field "$OUT_BN" eval samples/cpu-s)" \
            "$(field "$OUT_PT" train samples/cpu-s)" "$(field "$OUT_PT" eval samples/cpu-s)" >> "$TSV"
    done
done

if [ "$EPOCH_ROUNDS" -gt 0 ]; then
    data="${BN_DATA:-/usr/share/datasets/fashion-mnist}"
    sock="$EPOCH_DIR/s"; mkdir -p "$sock" "$EPOCH_DIR/nodes"
    {
        echo "# one node alone on the whole training set (scripts/bench_model.sh)"
        echo "swarm bench-epoch-$$"
        echo "monitor ipc://$sock/m"
        echo "option epochs 1"
        echo "option rule standalone"
        echo "option data $data"
        echo "node 0 ipc://$sock/0"
    } > "$EPOCH_DIR/swarm.txt"
    for r in $(seq 1 "$EPOCH_ROUNDS"); do
        for k in "${PATHS[@]}"; do
            env_k=$(emulate "$k")
            rm -f "$EPOCH_DIR/nodes/node-0.jsonl"
            # bash's time: wall seconds, then user + system CPU seconds of the process
            TIMEFORMAT="%R %U %S"
            { time env $env_k BN_KERNELS="$k" "$BUILD/src/byznode" node --swarm "$EPOCH_DIR/swarm.txt" \
                --id 0 --rule standalone --out "$EPOCH_DIR/nodes" > "$EPOCH_DIR/node.log" 2>&1 ; } 2> "$EPOCH_DIR/t_bn"
            acc=$("$PY" -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]; print("%.4f" % r["accuracy"])' "$EPOCH_DIR/nodes/node-0.jsonl")
            { time env $env_k "$PY" scripts/bench_pytorch.py --epoch "$data" 1 "$BATCH" > "$EPOCH_DIR/pt.log" 2>&1 ; } 2> "$EPOCH_DIR/t_pt"
            OUT_PT=$(cat "$EPOCH_DIR/pt.log")
            read -r bn_s bn_u bn_y < "$EPOCH_DIR/t_bn"
            read -r pt_s pt_u pt_y < "$EPOCH_DIR/t_pt"
            bn_c=$(echo "$bn_u $bn_y" | awk '{printf "%.1f", $1 + $2}')
            pt_c=$(echo "$pt_u $pt_y" | awk '{printf "%.1f", $1 + $2}')
            echo "-- epoch round $r, $k: byznode $bn_s s wall, $bn_c s CPU (test accuracy $acc); pytorch $pt_s s wall, $pt_c s CPU ($OUT_PT)"
            printf "E\t%s\t%s\t%s\t%s\t%s\t%s\n" "$r" "$k" "$bn_s" "$pt_s" "$bn_c" "$pt_c" >> "$TSV"
        done
    done
fi
echo "== load after: $(uptime | sed 's/.*load average/load average/')"

"$PY" - "$TSV" <<'PY'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
tp = [r for r in rows if r[0] != "E"]
ep = [r for r in rows if r[0] == "E"]
med = st.median
if tp:
    print("== medians over %d round(s); ratio = median of the per-round byznode/PyTorch ratios"
          % len({r[0] for r in tp}))
if tp:
    print("%-9s %28s %28s   %s" % ("kernels", "train samples/s (bn | pt | x)", "eval samples/s (bn | pt | x)",
                               "per CPU-second: train x, eval x"))
for k in dict.fromkeys(r[1] for r in tp):
    rs = [list(map(float, r[2:])) for r in tp if r[1] == k]
    c = list(zip(*rs))
    print("%-9s %9.0f | %7.0f | %5.2fx %9.0f | %7.0f | %5.2fx   %5.2fx, %5.2fx" % (
        k, med(c[0]), med(c[2]), med(a / b for a, b in zip(c[0], c[2])),
        med(c[1]), med(c[3]), med(a / b for a, b in zip(c[1], c[3])),
        med(a / b for a, b in zip(c[4], c[6])), med(a / b for a, b in zip(c[5], c[7]))))
if ep:
    print("== one-node epoch, whole process (median wall seconds; fraction = median of per-round byznode/PyTorch)")
    for k in dict.fromkeys(r[2] for r in ep):
        bn = [float(r[3]) for r in ep if r[2] == k]
        pt = [float(r[4]) for r in ep if r[2] == k]
        bc = [float(r[5]) for r in ep if r[2] == k]
        pc = [float(r[6]) for r in ep if r[2] == k]
        print("%-9s byznode %6.1f s   pytorch %6.1f s   fraction %.2f   (CPU s: %.1f vs %.1f, fraction %.2f)" % (
            k, med(bn), med(pt), med(a / b for a, b in zip(bn, pt)),
            med(bc), med(pc), med(a / b for a, b in zip(bc, pc))))
PY
