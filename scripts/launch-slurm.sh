#!/usr/bin/env bash
# launch-slurm.sh -- run a whole swarm inside a Slurm allocation: one node
# per Slurm task, the monitor on the allocation's first host.  Called by
# scripts/slurm/byznode.sbatch (or by hand inside `salloc`).
#
#   sbatch --ntasks 30 [--nodes 3] scripts/slurm/byznode.sbatch [options]
#   scripts/launch-slurm.sh [options]          (inside an allocation)
#
# What it does, in the allocation's batch step (on its first host):
#   1. writes RUN/hosts.txt from the allocation: the hosts of
#      `scontrol show hostnames $SLURM_JOB_NODELIST`, each with its task count
#      (SLURM_TASKS_PER_NODE) as slots and its NodeAddr (scontrol show node)
#      as address;
#   2. `byznode swarm-file` writes RUN/swarm.txt for SLURM_NTASKS nodes (and
#      with --curve the keys in RUN/keys/<host>/): the slots add up to the
#      task count, so node K's endpoint is on the host where Slurm's block
#      distribution puts task K;
#   3. checks with one task per host that every host runs the same byznode
#      version, wire protocol and igraph as this one (igraph may differ with
#      option topology), naming the host that differs;
#   4. starts the monitor here, then `srun byznode node --ids-from-env`
#      (task SLURM_PROCID is node SLURM_PROCID, one process, one BLAS thread);
#   5. when the tasks end, lets the monitor finish and draws the plots.
# RUN must be on a file system every host sees (home or scratch, as usual on
# a cluster), as must the data set (option data) and the byznode build.
# The run directory holds what a local scripts/swarm.sh run holds.
# scancel / Ctrl-C: srun stops the tasks, the monitor is stopped and writes
# what it has.
#
# Options:
#   --out DIR            run directory (default $SLURM_SUBMIT_DIR/runs/slurm-$SLURM_JOB_ID)
#   --build DIR          the byznode build (default build, beside this script)
#   --curve              CURVE keys for every node and the monitor
#   --port-base P        monitor at P, nodes from P+1 on each host (default 7100)
#   --option "NAME VALUE"   a swarm-wide option (repeatable; byznode node --help),
#                        e.g. "data /shared/fashion-mnist" where the hosts have the data
#   --byzantine-attack NAME   the Byzantine nodes (byznode roles) run this attack
#   --node-opt "..."     more options for every node
#   --no-plot  --quiet
set -euo pipefail
main() {
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out=""; build="$here/build"; curve=0; port_base=7100; options=(); attack=""; node_opts=()
plot=1; quiet=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift ;;
        --build) build="$2"; shift ;;
        --curve) curve=1 ;;
        --port-base) port_base="$2"; shift ;;
        --option) options+=(--option "$2"); shift ;;
        --byzantine-attack) attack="$2"; shift ;;
        --node-opt) read -r -a more <<< "$2"; node_opts+=("${more[@]}"); shift ;;
        --no-plot) plot=0 ;;
        --quiet) quiet=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "launch-slurm.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "launch-slurm.sh: $*" >&2; exit 2; }
say() { [ "$quiet" = 1 ] || echo "launch-slurm: $*" >&2; }
[ -n "${SLURM_JOB_ID:-}" ] && [ -n "${SLURM_JOB_NODELIST:-}" ] \
    || die "not inside a Slurm allocation (run it through sbatch scripts/slurm/byznode.sbatch, or in salloc)"
n="${SLURM_NTASKS:-}"
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 ]] || die "SLURM_NTASKS is not set: ask for tasks (sbatch --ntasks N)"
bin="$build/src/byznode"
[ -x "$bin" ] || die "no byznode at $bin (scripts/setup.sh, or --build DIR)"
[ -n "$out" ] || out="${SLURM_SUBMIT_DIR:-$PWD}/runs/slurm-$SLURM_JOB_ID"
mkdir -p "$out/nodes" "$out/logs"
out="$(cd "$out" && pwd)"

# 1. The allocation as a hostfile: name, tasks (slots), NodeAddr.
mapfile -t hosts < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
counts=()
IFS=',' read -r -a groups <<< "${SLURM_TASKS_PER_NODE:-$n}"
for g in "${groups[@]}"; do
    if [[ "$g" =~ ^([0-9]+)\(x([0-9]+)\)$ ]]; then
        for _ in $(seq 1 "${BASH_REMATCH[2]}"); do counts+=("${BASH_REMATCH[1]}"); done
    else
        counts+=("$g")
    fi
done
[ ${#counts[@]} = ${#hosts[@]} ] || die "SLURM_TASKS_PER_NODE=$SLURM_TASKS_PER_NODE does not match ${#hosts[@]} hosts"
: > "$out/hosts.txt"
for i in "${!hosts[@]}"; do
    h="${hosts[$i]}"
    addr="$(scontrol show node "$h" | grep -o 'NodeAddr=[^ ]*' | cut -d= -f2)"
    echo "$h slots=${counts[$i]} addr=${addr:-$h}" >> "$out/hosts.txt"
done
[ "${SLURMD_NODENAME:-${hosts[0]}}" = "${hosts[0]}" ] \
    || die "this batch step runs on ${SLURMD_NODENAME}, not on the first host ${hosts[0]}: the monitor's endpoint is there"

# 2. The swarm file (and keys).
rm -rf "$out/swarm.txt" "$out/summary.json" "$out/epochs.csv" "$out/monitor.journal" "$out"/nodes/*.jsonl "$out"/logs/node-*.log
sf=(swarm-file --hosts "$out/hosts.txt" --nodes "$n" --out "$out/swarm.txt" --port-base "$port_base"
    --name "slurm-$SLURM_JOB_ID" "${options[@]}")
if [ "$curve" = 1 ]; then
    [ ! -e "$out/keys" ] || die "$out/keys exists already: keys are never overwritten; use a new --out"
    sf+=(--curve "$out/keys")
fi
"$bin" "${sf[@]}" 2> >(grep -v '^swarm-file:' >&2)

# 3. The same build on every host: one task per host (task i on host i).
srun --ntasks-per-node=1 --nodes="${#hosts[@]}" --ntasks="${#hosts[@]}" --label "$bin" version \
    > "$out/versions.txt" 2>&1 || die "byznode version failed on a host: $(tail -n 2 "$out/versions.txt")"
pinned="$(awk '$1 == "option" && $2 == "topology"' "$out/swarm.txt")"
for i in "${!hosts[@]}"; do
    for key in byznode protocol igraph; do
        mine="$("$bin" version | awk -v k=$key '$1 == k')"
        theirs="$(sed -n "s/^ *$i: //p" "$out/versions.txt" | awk -v k=$key '$1 == k')"
        [ "$mine" = "$theirs" ] && continue
        if [ "$key" = igraph ] && [ -n "$pinned" ]; then
            say "${hosts[$i]} has ${theirs:-no igraph}, here $mine: fine, option topology pins the graph"
        else
            die "host ${hosts[$i]} differs: '${theirs:-nothing}' there, '$mine' here (run the same byznode and igraph everywhere${pinned:+}, or pin the graph with option topology)"
        fi
    done
done

# 4. Monitor here, nodes everywhere.
monitor_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$monitor_pid" ]; then
        kill -TERM "$monitor_pid" 2>/dev/null || true
        wait "$monitor_pid" 2>/dev/null || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'echo "launch-slurm.sh: interrupted" >&2; exit 130' INT TERM
margs=(monitor --swarm "$out/swarm.txt" --out "$out" --quiet)
[ "$curve" = 1 ] && margs+=(--key "$out/keys/${hosts[0]}/monitor.key")
"$bin" "${margs[@]}" 2> "$out/monitor.log" > "$out/progress.log" &
monitor_pid=$!
say "$n nodes on ${#hosts[@]} host(s) ($(tr '\n' ' ' < "$out/hosts.txt")), monitor on ${hosts[0]} -> $out"
nargs=(node --swarm "$out/swarm.txt" --ids-from-env --out "$out/nodes" --log-dir "$out/logs")
[ -n "$attack" ] && nargs+=(--byzantine-attack "$attack")
nargs+=("${node_opts[@]}")
failed=0
keys=""; [ "$curve" = 1 ] && keys="$out/keys"
# Each task: node SLURM_PROCID, with the keys of its host when CURVE.
srun --ntasks="$n" --kill-on-bad-exit=0 env OPENBLAS_NUM_THREADS=1 bash -c '
    bin="$1" keys="$2"; shift 2
    if [ -n "$keys" ]; then exec "$bin" "$@" --key-dir "$keys/$SLURMD_NODENAME"; else exec "$bin" "$@"; fi' \
    launch "$bin" "$keys" "${nargs[@]}" || failed=1

# 5. The monitor exits once it has every report; then stop it.
for _ in $(seq 1 50); do kill -0 "$monitor_pid" 2>/dev/null || break; sleep 0.2; done
kill -TERM "$monitor_pid" 2>/dev/null || true
wait "$monitor_pid" 2>/dev/null || true
monitor_pid=""
if [ "$plot" = 1 ] && command -v gnuplot >/dev/null && [ -s "$out/epochs.csv" ]; then
    "$here/scripts/plot.sh" "$out" || echo "launch-slurm: plotting failed (results are in $out)" >&2
fi
[ "$failed" = 0 ] || echo "launch-slurm: some node tasks failed: see $out/logs/" >&2
say "done: $out/summary.json"
[ "$failed" = 0 ]
}
main "$@"
