#!/usr/bin/env bash
# swarm_restart.sh -- a node killed (SIGKILL) after epoch 1 and restarted
# with the same arguments 2 s later, in a 4-node logreg swarm with a 1 s
# round timeout: it logs "resumed from checkpoint", carries on from epoch 2,
# finds its neighbours far ahead and skips to where they are
# (docs/protocol.md, "Liveness"), they take its models again, and from then
# on nobody misses a model: the victim and its neighbours miss none in the
# last 3 of 8 epochs.  Its jsonl has one line per epoch, none repeated.
#
# The neighbours gave it up after two timed-out rounds and ran on; batch 6
# and an injected 1 ms delay per message (as in swarm_stall.sh) keep an
# epoch at 2.5 s or more, so that they are still early in the run when it
# comes back.  swarm.sh cannot restart a node: liveness_lib.sh starts the
# monitor and the nodes itself.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/liveness_lib.sh"
bn_init swarm_restart

n=4; victim=3; epochs=8
lv_start $n $epochs "batch 6" "round-timeout 1000" "fault-delay 1" "checkpoint-every 1"

# Kill the victim once its epoch-1 checkpoint is there (written after the
# epoch's jsonl line and report).
t0=$SECONDS
until [ -s "$LV_RUN/nodes/checkpoint-$victim.bin" ]; do
    [ $((SECONDS - t0)) -lt 120 ] || bn_die "node $victim never finished epoch 1"
    kill -0 "${LV_PIDS[$victim]}" 2>/dev/null || bn_die "node $victim exited early"
    sleep 0.05
done
kill -KILL "${LV_PIDS[$victim]}"
wait "${LV_PIDS[$victim]}" 2>/dev/null || true
lines_at_kill="$(lv_lines $victim)"
bn_log "killed node $victim after $lines_at_kill epoch(s); restarting it in 2 s"
bn_expect_true "no temporary checkpoint left" test ! -e "$LV_RUN/nodes/checkpoint-$victim.bin.tmp"
sleep 2
lv_start_node "$victim" "$LV_RUN/logs/node-$victim.restart.log"
lv_wait_all
bn_log "wall time of the swarm: $LV_WALL s"
lv_table $n

bn_expect_true "every node (the restarted one too) exited 0" test "$LV_RC" = 0
bn_expect_true "restarted node logged 'resumed from checkpoint'" \
    grep -q "resumed from checkpoint" "$LV_RUN/logs/node-$victim.restart.log"
bn_expect r "nodes in summary.json" "len(nodes)" "v == $n"
bn_expect r "victim's jsonl: one line per epoch, no repeat" "[l['epoch'] for l in jl($victim)]" \
    "v == list(range(1, $epochs + 1))"
bn_expect r "victim's first line after the restart says resumed" "jl($victim)[$lines_at_kill]['resumed']" "v is True"
bn_expect_true "restarted node caught up with the swarm ('rejoined')" \
    grep -q "rejoined the swarm" "$LV_RUN/logs/node-$victim.restart.log"
lv_rejoin_checks $n $victim $epochs
bn_expect r "mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
bn_finish
