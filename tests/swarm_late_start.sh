#!/usr/bin/env bash
# swarm_late_start.sh -- a node started for the first time late: nodes 0-2
# and the monitor start together, node 3 only once node 0 has finished
# epoch LATE (default 1) -- not a restart: no checkpoint, its first round is
# 0 while its neighbours are past round LATE * R.  They gave it up after its
# first round's deadlines; it must find them ahead, skip to where they are
# (docs/protocol.md, "Liveness") and be taken back, so that from then on
# nobody misses a model: the late node and its neighbours miss none in the
# last 3 of 8 epochs, and it reports every epoch (the skipped ones too).
#
# Same swarm as swarm_restart.sh (4 logreg nodes, round timeout 1 s, batch
# 6 and an injected 1 ms delay per message so that an epoch lasts 2.5 s or
# more).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/liveness_lib.sh"
bn_init swarm_late_start

n=4; late=3; epochs=8; after="${BN_LATE_EPOCHS:-1}"
# Start all but the late node: lv_start starts every node, so start it
# with the late node's command replaced by a no-op.
lv_node_args_real() { echo node --swarm "$LV_RUN/swarm.txt" --id "$1" --out "$LV_RUN/nodes"; }
lv_node_args() {
    if [ "$1" = "$late" ] && [ -z "${LV_LATE_GO:-}" ]; then
        echo --version
    else
        lv_node_args_real "$1"
    fi
}
lv_start $n $epochs "batch 6" "round-timeout 1000" "fault-delay 1"
wait "${LV_PIDS[$late]}" 2>/dev/null || true
lv_wait_epochs 0 "$after"
bn_log "node 0 finished epoch $after (line $(lv_lines 0)); starting node $late for the first time"
bn_expect_true "node $late has no jsonl yet" test ! -e "$LV_RUN/nodes/node-$late.jsonl"
LV_LATE_GO=1
# shellcheck disable=SC2046
"$BN_BIN" $(lv_node_args "$late") > "$LV_RUN/logs/node-$late.log" 2>&1 &
LV_PIDS[$late]=$!
lv_wait_all
bn_log "wall time of the swarm: $LV_WALL s"
lv_table $n

bn_expect_true "every node exited 0" test "$LV_RC" = 0
bn_expect r "nodes in summary.json" "len(nodes)" "v == $n"
bn_expect r "every node's last epoch" "[x['last_epoch'] for x in nodes]" "v == [$epochs] * $n"
bn_expect r "no node marked failed" "[x['id'] for x in nodes if x['failed']]" "v == []"
bn_expect r "late node's jsonl: one line per epoch" "[l['epoch'] for l in jl($late)]" \
    "v == list(range(1, $epochs + 1))"
bn_expect r "late node's missing models, last 3 epochs" "[d['missing'] for d in jl($late)[-3:]]" "v == [0, 0, 0]"
bn_expect r "neighbours' missing models, last 3 epochs" \
    "[d['missing'] for k in range($n) if k != $late for d in jl(k)[-3:]]" "v == [0] * 9"
bn_expect r "late node skipped rounds" "sum(d['rounds_skipped'] for d in jl($late))" "v > 0"
bn_expect r "late node's final accuracy" "jl($late)[-1]['accuracy']" "v > 0.6"
bn_expect r "honest reports in the last epoch" "last['honest_reported']" "v == $n"
bn_finish
