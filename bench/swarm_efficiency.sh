#!/usr/bin/env bash
# swarm_efficiency.sh -- the swarm-scale figures of issue 9 (points 3 and 4):
# whole one-epoch swarms on this machine, each reported as the share of the
# machine that went to learning (summary.json `efficiency`, docs/metrics.md),
# its wall time, its memory and its results, as markdown rows for
# docs/performance.md.
#
# usage: bench/swarm_efficiency.sh [CASE ...]      (default: 50 100 300)
#   50   --nodes 50  --byzantine 10, --batch 60: 60,000 / 50 = 1,200 images a
#        node, 20 rounds
#   100  --nodes 100 --byzantine 20, --batch 30: 600 images a node, 20 rounds
#   300  the issue's check: --nodes 300 --byzantine 60 --batch 10 (200 images
#        a node, 20 rounds); needs ~15 GB and the whole machine: run it on a
#        quiet machine only
#   Every case: --model cnn --rule similarity --attack dlie (b = n/5, as in
#   the paper), --epochs 1, --eval-subset 200 (the one epoch is the last, so
#   each honest node evaluates the whole test set at its end).
# env: BUILD (build)                 the meson build dir swarm.sh uses
#      BN_CHECK_NODES (300)          n of the "300" case (b = n/5), to try the
#                                    script on a smaller swarm (e.g. 60)
#      BN_BENCH_OUT (/tmp/swarm-efficiency-<time>)  run directories
#      BN_SWARM_OPTS ("")            more swarm.sh options for every case,
#                                    e.g. "--shm off" (the socket path)
#
# Memory: "sum of peaks" is summary.json's sum_node_rss_mb (each node's peak
# RSS, added up: shared library pages count once per process, so it is an
# upper bound); "sampled" is the largest total, over samples taken every
# second, of the proportional set size (/proc/PID/smaps_rollup Pss, shared
# pages divided among the processes that share them) of every node and the
# monitor: what the swarm held at once.  "machine used" is MemTotal -
# MemAvailable of /proc/meminfo just before the case and its largest 1 s
# sample during it (everything: the swarm, the kernel's socket buffers and
# slab, other processes), with the largest Shmem sample beside it (tmpfs:
# the same-host rings, which no node maps, so no Pss counts them); the
# 300 check counts sampled Pss + that Shmem peak as the swarm's memory.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
check_n=${BN_CHECK_NODES:-300}
stamp=$(date -u +%Y%m%d-%H%M%S)
outroot=${BN_BENCH_OUT:-/tmp/swarm-efficiency-$stamp}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(50 100 300)
for c in "${cases[@]}"; do
    case "$c" in 50|100|300) ;; *) echo "swarm_efficiency.sh: unknown case '$c' (50, 100, 300)" >&2; exit 2 ;; esac
done
[ -x "$build/src/byznode" ] || { echo "swarm_efficiency.sh: no $build/src/byznode (meson setup $build && ninja -C $build)" >&2; exit 2; }
mkdir -p "$outroot"
cores=$(nproc)

# Largest sampled Pss / Rss totals (kB) of the byznode processes below $1
# (the nodes and the monitor), one sample a second; one pgrep and one awk
# per sample, so that sampling 300 processes costs the swarm little.
meminfo_used_shmem() {      # "USED_KB SHMEM_KB" now
    awk '/^MemTotal:/ {t = $2} /^MemAvailable:/ {a = $2} /^Shmem:/ {s = $2} END {print t - a, s}' /proc/meminfo
}
sample_memory() {
    local parent=$1 file=$2 max_pss=0 max_rss=0 max_used=0 max_shmem=0 pss rss used shmem files
    while kill -0 "$parent" 2>/dev/null; do
        read -r used shmem < <(meminfo_used_shmem)
        [ "$used" -gt "$max_used" ] && max_used=$used
        [ "$shmem" -gt "$max_shmem" ] && max_shmem=$shmem
        files=()
        for pid in $(pgrep -P "$parent" -x byznode 2>/dev/null); do
            files+=("/proc/$pid/smaps_rollup")
        done
        if [ ${#files[@]} -gt 0 ]; then
            # cat goes on past a process that has just exited
            read -r pss rss < <(cat "${files[@]}" 2>/dev/null \
                                | awk '/^Pss:/ {p += $2} /^Rss:/ {r += $2} END {print p + 0, r + 0}')
            [ "$pss" -gt "$max_pss" ] && max_pss=$pss
            [ "$rss" -gt "$max_rss" ] && max_rss=$rss
        fi
        echo "$max_pss $max_rss $max_used $max_shmem" > "$file"
        sleep 1
    done
}

echo "# bench/swarm_efficiency.sh ${cases[*]}: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host $(uname -n), byznode $(git rev-parse --short=10 HEAD 2>/dev/null || echo '?')"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) online CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB"
echo "# runs in $outroot"
echo
echo "| case | command | load before / after | whole run wall | epoch wall | learning CPU / nodes' CPU | **efficiency** | peak memory: sum of node peaks / sampled Pss (Rss) | machine used: before / peak (Shmem peak) | max node RSS | honest reported | consensus error | mean accuracy |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
    case "$c" in
        50)  n=50;  batch=60 ;;
        100) n=100; batch=30 ;;
        300) n=$check_n; batch=10 ;;
    esac
    b=$((n / 5))
    dir="$outroot/n$n"
    args=(--nodes "$n" --byzantine "$b" --attack dlie --rule similarity --epochs 1 --batch "$batch"
          --eval-subset 200)
    [ "$c" = 300 ] || args+=(--model cnn)
    read -r -a more <<< "${BN_SWARM_OPTS:-}"
    args+=("${more[@]}")
    load0=$(cut -d' ' -f1 /proc/loadavg)
    read -r used0 _ < <(meminfo_used_shmem)
    t0=$(date +%s.%N)
    rc=0
    scripts/swarm.sh "${args[@]}" --build "$build" --out "$dir" --force --no-plot --quiet \
        > "$outroot/n$n.out" 2>&1 &
    swarm_pid=$!
    sample_memory "$swarm_pid" "$outroot/n$n.mem" &
    sampler=$!
    wait "$swarm_pid" || rc=$?
    t1=$(date +%s.%N)
    wait "$sampler" 2>/dev/null || true
    load1=$(cut -d' ' -f1 /proc/loadavg)
    read -r pss rss used shmem < "$outroot/n$n.mem" 2>/dev/null || { pss=0; rss=0; used=0; shmem=0; }
    if [ "$rc" != 0 ] || [ ! -s "$dir/summary.json" ]; then
        echo "| n = $n | \`scripts/swarm.sh ${args[*]}\` | $load0 / $load1 | FAILED (exit $rc: $(tail -n 1 "$outroot/n$n.out")) | | | | | | | | | |"
        continue
    fi
    python3 - "$dir/summary.json" "$n" "$b" "$c" "$load0" "$load1" "$t0" "$t1" "$pss" "$rss" "${args[*]}" "$used0" "$used" "$shmem" <<'EOF'
import json, sys
path, n, b, case, load0, load1, t0, t1, pss, rss, args, used0, used, shmem = sys.argv[1:]
s = json.load(open(path))
ep = s["epochs"][-1] if s["epochs"] else {}
m = ep.get("machine") or {}
honest = int(n) - int(b)
eff = ep.get("efficiency")
target = {"50": 0.70, "100": 0.60}.get(case)
def f(x, fmt):
    return "null" if x is None else fmt % x
cons = ep.get("consensus_error")
eff_s = f(None if eff is None else 100 * eff, "%.1f%%")
if target is not None and eff is not None:
    eff_s += " (target >= %d%%: %s)" % (100 * target, "met" if eff >= target else "NOT met")
mem_s = "%s / %.2f GB (%.2f GB)" % (f(None if ep.get("sum_node_rss_mb") is None else ep["sum_node_rss_mb"] / 1024, "%.2f GB"),
                                     int(pss) / 1048576, int(rss) / 1048576)
mach_s = "%.2f / %.2f GB (%.2f GB)" % (int(used0) / 1048576, int(used) / 1048576, int(shmem) / 1048576)
rep = "%d of %d" % (ep.get("honest_reported", 0), honest)
if case == "300":
    ok = (ep.get("honest_reported") == honest and cons is not None and cons < 1e-3
          and ep.get("sum_node_rss_mb") is not None and (int(pss) + int(shmem)) / 1048576 < 16)
    rep += " (check: %s)" % ("met" if ok else "NOT met")
print("| n = %s, b = %s | `scripts/swarm.sh %s` | %s / %s | %.1f s | %s s | %s / %s s | **%s** | %s | %s | %s MB | %s | %s | %s |" % (
    n, b, args, load0, load1, float(t1) - float(t0), f(m.get("wall_seconds"), "%.1f"),
    f(m.get("cpu_learning"), "%.1f"), f(m.get("cpu_nodes"), "%.1f"), eff_s, mem_s, mach_s,
    f(ep.get("max_node_rss_mb"), "%.1f"), rep, f(cons, "%.3g"), f(ep.get("mean_accuracy"), "%.4f")))
EOF
done
echo
echo "# efficiency = the nodes' CPU seconds in compute + aggregate + encode + eval over (epoch wall x $cores cores), docs/metrics.md;"
echo "# epoch wall: from the last node's epoch start to the last report; whole run wall: swarm.sh from start to exit (start-up included)."
echo "# load average (1 min) before and after each case: with more than $cores, other processes shared the machine and the figures are provisional."
