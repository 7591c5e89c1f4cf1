#!/usr/bin/env bash
# swarm_restart.sh -- kill a node after epoch 1 and restart it with the same
# arguments: it logs "resumed from checkpoint", carries on from epoch 2,
# skips ahead to where its neighbours are ("rejoined the swarm"), exchanges
# models with them again, and the run ends with every node of summary.json
# at the last epoch.
#
# swarm.sh cannot restart a node, so this script starts the monitor and the
# nodes itself (4 nodes, logreg, 3 epochs, --checkpoint-every 1), all with
# $BN_TMP in their command line so that lib.sh's cleanup and leftover check
# find exactly them.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_restart

n=4; victim=3; epochs=3
run="$BN_TMP/restart"
mkdir -p "$run/nodes" "$run/logs"
{
    echo "swarm restart-test-$$"
    echo "monitor ipc://$run/m"
    echo "option seed 3"
    echo "option epochs $epochs"
    echo "option model logreg"
    echo "option batch 60"
    echo "option p 1"
    echo "option rule mean"
    echo "option eval-subset 1000"
    echo "option round-timeout 300"
    echo "option checkpoint-every 1"
    echo "option data $BN_DATA"
    for i in $(seq 0 $((n - 1))); do echo "node $i ipc://$run/$i"; done
} > "$run/swarm.txt"

"$BN_BIN" monitor --swarm "$run/swarm.txt" --out "$run" --grace 30 --quiet > "$run/logs/monitor.log" 2>&1 &
mon=$!
node_args() { echo node --swarm "$run/swarm.txt" --id "$1" --out "$run/nodes"; }
pids=()
for i in $(seq 0 $((n - 1))); do
    # shellcheck disable=SC2046
    "$BN_BIN" $(node_args "$i") > "$run/logs/node-$i.log" 2>&1 &
    pids[$i]=$!
done

# Kill the victim once its epoch-1 checkpoint is there (written after the
# epoch's jsonl line and report).
t0=$SECONDS
until [ -s "$run/nodes/checkpoint-$victim.bin" ]; do
    [ $((SECONDS - t0)) -lt 60 ] || bn_die "node $victim never finished epoch 1"
    kill -0 "${pids[$victim]}" 2>/dev/null || bn_die "node $victim exited early"
    sleep 0.05
done
kill -KILL "${pids[$victim]}"
wait "${pids[$victim]}" 2>/dev/null || true
lines_at_kill="$(wc -l < "$run/nodes/node-$victim.jsonl")"
bn_log "killed node $victim after $lines_at_kill epoch(s)"
bn_expect_true "no temporary checkpoint left" test ! -e "$run/nodes/checkpoint-$victim.bin.tmp"

# Restart it with exactly the same arguments.
# shellcheck disable=SC2046
"$BN_BIN" $(node_args "$victim") > "$run/logs/node-$victim.restart.log" 2>&1 &
pids[$victim]=$!

rc_all=0
for i in $(seq 0 $((n - 1))); do
    # A node that hangs is caught by meson's timeout; give each a bound anyway.
    for _ in $(seq 1 600); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    if ! wait "${pids[$i]}"; then
        bn_log "node $i exited with an error:"; tail -n 3 "$run/logs/node-$i.log" >&2; rc_all=1
    fi
done
bn_expect_true "every node (the restarted one too) exited 0" test "$rc_all" = 0
for _ in $(seq 1 50); do kill -0 "$mon" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$mon" 2>/dev/null || true
wait "$mon" 2>/dev/null || true

bn_expect_true "restarted node logged 'resumed from checkpoint'" \
    grep -q "resumed from checkpoint" "$run/logs/node-$victim.restart.log"
cp "$run/logs"/*.log "$BN_TMP/" 2>/dev/null || true
ln -s "$run" "$BN_TMP/r" 2>/dev/null || true
bn_expect r "nodes in summary.json" "len(nodes)" "v == $n"
bn_expect r "every node's last epoch" "[x['last_epoch'] for x in nodes]" "v == [$epochs] * $n"
bn_expect r "no node marked failed" "[x['id'] for x in nodes if x['failed']]" "v == []"
bn_expect r "victim's jsonl: one line per epoch, no repeat" "[l['epoch'] for l in jl($victim)]" \
    "v == list(range(1, $epochs + 1))"
bn_expect r "victim's first line after the restart says resumed" "jl($victim)[$lines_at_kill]['resumed']" "v is True"
bn_expect_true "restarted node caught up with the swarm ('rejoined')" \
    grep -q "rejoined the swarm" "$run/logs/node-$victim.restart.log"
bn_expect r "victim's missing neighbour models in the last epoch (of 3 x 250)" "jl($victim)[-1]['missing']" "v < 75"
bn_expect r "survivors' missing models from the victim in the last epoch" \
    "[jl(k)[-1]['missing'] for k in range($n) if k != $victim]" "max(v) < 25"
bn_expect r "victim's final accuracy" "jl($victim)[-1]['accuracy']" "v > 0.6"
bn_expect r "honest reports in the last epoch" "last['honest_reported']" "v == $n"
bn_expect r "mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
bn_finish
