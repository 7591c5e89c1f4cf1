#!/usr/bin/env bash
# swarm_stall.sh -- a node that stalls (SIGSTOP for 8 s, then SIGCONT) in a
# 4-node logreg swarm with a 1 s round timeout catches up with the swarm
# (docs/protocol.md, "Liveness"): it skips ahead to the round its neighbours
# are at, they take its models again, and from then on nobody misses a
# model.  Checked: the victim and its neighbours miss no model in the last 3
# of 8 epochs, the victim skipped rounds, its neighbours gave it up and took
# it back, and the swarm did not spend its time in timed-out rounds.
#
# "The last 3 epochs" must come after the catch-up, so the neighbours must
# not finish most of the run during the 8 s stall, however fast the machine:
# batch 6 (2,500 rounds per epoch) and an injected 1 ms delay on every
# message make an epoch last at least 2.5 s, so they get at most 2.4 epochs
# further meanwhile (2 s of it go to timed-out rounds).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/liveness_lib.sh"
bn_init swarm_stall

n=4; victim=2; epochs=8
lv_start $n $epochs "batch 6" "round-timeout 1000" "fault-delay 1"
lv_wait_epochs $victim 1
kill -STOP "${LV_PIDS[$victim]}"
bn_log "stopped node $victim after epoch 1 for 8 s"
sleep 8
kill -CONT "${LV_PIDS[$victim]}"
lv_wait_all
bn_log "wall time of the swarm: $LV_WALL s"
lv_table $n

bn_expect_true "every node exited 0" test "$LV_RC" = 0
lv_rejoin_checks $n $victim $epochs
bn_finish
