#!/usr/bin/env bash
# swarm.sh -- spawn a local byznode swarm and its monitor; collect everything
# of the run in one directory; stop every process it started on exit, error
# or Ctrl-C.
#
#   scripts/swarm.sh [options]          (no options: 10 nodes, 3 epochs, mean)
#
# Swarm:    --nodes N (10)  --byzantine B (0)  --attack NAME (dlie)  --omniscient
#           --rule NAME (mean)  --epochs E (3)  --p P (0.6)  --min-degree D
#           --time-varying  --topology EDGES  --seed S (1)
# Learning: --model cnn|mlp|logreg  --batch B  --lr LR  --local-steps T
#           --partition iid|shards|dirichlet  --alpha A  --momentum M
# Rules:    --trim B (default: --byzantine)  --c C  --bucketing S  --lambda L  --clip-tau T
#           --beta F  --krum-m M  --z Z (dlie)   (docs/rules.md, docs/attacks.md)
# Attacks:  --drift-scale S  --drift-direction reverse|random|target  --drift-target ID
#           --dissensus-scale S   (docs/attacks.md)
# Metrics:  --eval-subset N  --eval-every K   (last epoch: full test set)
# Faults:   --fail-nodes K --fail-at-epoch E  (kill K honest nodes after epoch E)
#           --fault-drop P  --fault-delay MS  --round-timeout MS
# Wire:     --transport ipc|tcp (ipc)  --base-port PORT (25600)  --curve
# Other:    --out DIR (runs/<time>)  --node-opt "--name value ..." (passed to every node)
#           --build DIR (build)  --no-plot  --quiet
#
# Output: DIR/summary.json, DIR/epochs.csv, DIR/*.png, DIR/swarm.txt,
# DIR/nodes/node-K.jsonl, DIR/logs/node-K.log, DIR/monitor.log.
set -euo pipefail
# The whole script is one function, called on the last line, so that bash has
# read all of it before it runs any of it: editing the file during a run
# cannot change the running script.
main() {
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

nodes=10; byz=0; attack=dlie; rule=mean; epochs=3; p=0.6; seed=1; out=""
transport=ipc; base_port=25600; curve=0; fail_nodes=0; fail_at=1; plot=1; quiet=0
build="$here/build"; node_opts=(); extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) nodes="$2"; shift ;;
        --byzantine) byz="$2"; shift ;;
        --attack) attack="$2"; shift ;;
        --rule) rule="$2"; shift ;;
        --epochs) epochs="$2"; shift ;;
        --p) p="$2"; shift ;;
        --seed) seed="$2"; shift ;;
        --out) out="$2"; shift ;;
        --transport) transport="$2"; shift ;;
        --base-port) base_port="$2"; shift ;;
        --curve) curve=1 ;;
        --fail-nodes) fail_nodes="$2"; shift ;;
        --fail-at-epoch) fail_at="$2"; shift ;;
        --build) build="$2"; shift ;;
        --no-plot) plot=0 ;;
        --quiet) quiet=1 ;;
        --node-opt) read -r -a more <<< "$2"; node_opts+=("${more[@]}"); shift ;;
        --time-varying|--omniscient) extra+=("${1#--}" true) ;;
        --min-degree|--topology|--model|--batch|--lr|--local-steps|--partition|--alpha|--momentum|\
        --eval-subset|--eval-every|--fault-drop|--fault-delay|--round-timeout|--z|--trim|--c|\
        --bucketing|--lambda|--clip-tau|--beta|--krum-m|--weight-decay|--shards-per-node|\
        --drift-scale|--drift-direction|--drift-target|--dissensus-scale|\
        --checkpoint-every|--data)
            extra+=("${1#--}" "$2"); shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "swarm.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$nodes" =~ ^[0-9]+$ && "$nodes" -ge 1 ]] || { echo "swarm.sh: --nodes must be >= 1" >&2; exit 2; }
[[ "$byz" =~ ^[0-9]+$ && "$byz" -lt "$nodes" ]] || { echo "swarm.sh: --byzantine must be below --nodes" >&2; exit 2; }
[[ "$fail_nodes" =~ ^[0-9]+$ && "$fail_nodes" -le $((nodes - byz)) ]] || { echo "swarm.sh: --fail-nodes must be <= the honest nodes" >&2; exit 2; }

# A killed node costs its neighbours two round timeouts before they stop
# waiting for it; with --fail-nodes a shorter default keeps that to seconds.
if [ "$fail_nodes" -gt 0 ] && [[ " ${extra[*]:-} " != *" round-timeout "* ]]; then
    extra+=(round-timeout 5000)
fi

# Build and data, if not there yet.
if [ ! -x "$build/src/byznode" ]; then
    "$here/scripts/setup.sh" --build "$build" >&2
fi
bin="$build/src/byznode"
# The official data set's checksums (unless --data names another copy).
if [[ " ${extra[*]:-} " != *" data "* ]]; then
    "$here/scripts/fetch_data.sh" 2>/dev/null || "$here/scripts/fetch_data.sh"
fi

[ -n "$out" ] || out="$here/runs/$(date +%Y%m%d-%H%M%S)-n${nodes}-${rule}"
mkdir -p "$out/nodes" "$out/logs"
out="$(cd "$out" && pwd)"
rm -f "$out"/nodes/*.jsonl "$out"/nodes/checkpoint-* "$out/summary.json"
sockdir="$(mktemp -d "${TMPDIR:-/tmp}/bzn.XXXXXX")"

pids=(); monitor_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local all=("${pids[@]}") alive=()
    [ -n "$monitor_pid" ] && all+=("$monitor_pid")
    for pid in "${all[@]}"; do kill -TERM "$pid" 2>/dev/null && alive+=("$pid") || true; done
    for _ in $(seq 1 50); do
        local any=0
        for pid in "${alive[@]}"; do kill -0 "$pid" 2>/dev/null && any=1; done
        [ $any = 0 ] && break
        sleep 0.1
    done
    for pid in "${alive[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$sockdir"
    exit $rc
}
trap cleanup EXIT
trap 'echo "swarm.sh: interrupted" >&2; exit 130' INT TERM

byz_ids="$("$bin" roles --nodes "$nodes" --byzantine "$byz" --seed "$seed")"
is_byz() { [[ " $byz_ids " == *" $1 "* ]]; }

endpoint() {
    if [ "$transport" = tcp ]; then echo "tcp://127.0.0.1:$((base_port + $1 + 1))"
    else echo "ipc://$sockdir/$1"; fi
}
monitor_ep="$( [ "$transport" = tcp ] && echo "tcp://127.0.0.1:$base_port" || echo "ipc://$sockdir/m")"

# Keys (CURVE): one pair per node and one for the monitor, kept in the run dir.
if [ "$curve" = 1 ]; then
    mkdir -p "$out/keys"; chmod 700 "$out/keys"
    for i in $(seq 0 $((nodes - 1))) monitor; do "$bin" keygen --out "$out/keys/$i.key"; done
fi
pubkey() { [ "$curve" = 1 ] && awk '/^public-key/ {print $2}' "$out/keys/$1.key" || true; }

{
    echo "# byznode swarm file written by scripts/swarm.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "swarm local-$seed-$$"
    echo "monitor $monitor_ep $(pubkey monitor)"
    echo "option seed $seed"
    echo "option epochs $epochs"
    echo "option p $p"
    echo "option rule $rule"
    echo "option byzantine $byz"
    [[ " ${extra[*]:-} " == *" data "* ]] || echo "option data ${BN_DATA_DIR:-/usr/share/datasets/fashion-mnist}"
    for ((k = 0; k < ${#extra[@]}; k += 2)); do echo "option ${extra[k]} ${extra[k+1]}"; done
    for i in $(seq 0 $((nodes - 1))); do echo "node $i $(endpoint "$i") $(pubkey "$i")"; done
} > "$out/swarm.txt"

mon_args=(monitor --swarm "$out/swarm.txt" --out "$out")
[ "$curve" = 1 ] && mon_args+=(--key "$out/keys/monitor.key")
[ "$quiet" = 1 ] && mon_args+=(--quiet)
# Process substitution, not a pipe: $! must be the monitor itself (with a
# pipe it is tee's pid, and TERM would never reach the monitor).
"$bin" "${mon_args[@]}" 2> "$out/monitor.log" > >(tee "$out/progress.log") &
monitor_pid=$!

[ "$quiet" = 1 ] || echo "swarm: $nodes nodes (Byzantine: ${byz_ids:-none}${byz_ids:+, attack $attack}), rule $rule, $epochs epochs -> $out" >&2
victims=()
for i in $(seq 0 $((nodes - 1))); do
    args=(node --swarm "$out/swarm.txt" --id "$i" --out "$out/nodes")
    if is_byz "$i"; then args+=(--attack "$attack"); fi
    [ "$curve" = 1 ] && args+=(--key "$out/keys/$i.key")
    "$bin" "${args[@]}" "${node_opts[@]}" > "$out/logs/node-$i.log" 2>&1 &
    pids+=($!)
done
# Victims of --fail-nodes: the last K honest ids.
if [ "$fail_nodes" -gt 0 ]; then
    for ((i = nodes - 1; i >= 0 && ${#victims[@]} < fail_nodes; i--)); do
        is_byz "$i" || victims+=("$i")
    done
    echo "${victims[*]}" > "$out/failed-nodes.txt"
fi

# Wait for the nodes; kill the victims once they have reported epoch fail_at.
failed=0
declare -A killed=()
while :; do
    running=0
    for i in "${!pids[@]}"; do kill -0 "${pids[$i]}" 2>/dev/null && running=1; done
    [ $running = 0 ] && break
    for v in "${victims[@]}"; do
        [ -n "${killed[$v]:-}" ] && continue
        f="$out/nodes/node-$v.jsonl"
        if [ -f "$f" ] && [ "$(wc -l < "$f")" -ge "$fail_at" ]; then
            kill -KILL "${pids[$v]}" 2>/dev/null || true
            killed[$v]=1
            echo "swarm: killed node $v after epoch $fail_at" >&2
        fi
    done
    sleep 0.05
done
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}" 2>/dev/null; then
        if [ -z "${killed[$i]:-}" ]; then
            failed=$((failed + 1))
            echo "swarm: node $i exited with an error; see $out/logs/node-$i.log:" >&2
            tail -n 3 "$out/logs/node-$i.log" >&2 || true
        fi
    fi
done
pids=()
# The monitor closes the last epochs when it has every report; tell it to finish otherwise.
for _ in $(seq 1 10); do kill -0 "$monitor_pid" 2>/dev/null || break; sleep 0.2; done
kill -TERM "$monitor_pid" 2>/dev/null || true
wait "$monitor_pid" 2>/dev/null || true
monitor_pid=""

if [ "$plot" = 1 ] && command -v gnuplot >/dev/null && [ -s "$out/epochs.csv" ]; then
    "$here/scripts/plot.sh" "$out" || echo "swarm: plotting failed (results are in $out)" >&2
fi
[ "$quiet" = 1 ] || echo "swarm: done: $out/summary.json" >&2
[ $failed = 0 ]
}
main "$@"
