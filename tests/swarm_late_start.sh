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
LV_HOLD=$late lv_start $n $epochs "batch 6" "round-timeout 1000" "fault-delay 1"
lv_wait_epochs 0 "$after"
bn_log "node 0 finished epoch $after (line $(lv_lines 0)); starting node $late for the first time"
bn_expect_true "node $late has no jsonl yet" test ! -e "$LV_RUN/nodes/node-$late.jsonl"
lv_start_node "$late"
lv_wait_all
bn_log "wall time of the swarm: $LV_WALL s"
lv_table $n

bn_expect_true "every node exited 0" test "$LV_RC" = 0
bn_expect r "nodes in summary.json" "len(nodes)" "v == $n"
bn_expect r "late node's jsonl: one line per epoch" "[l['epoch'] for l in jl($late)]" \
    "v == list(range(1, $epochs + 1))"
lv_rejoin_checks $n $late $epochs
bn_finish
