#!/usr/bin/env bash
# swarm_faults.sh -- injected link faults: every node drops 10 % of its
# outgoing messages and delays the rest by 20 ms (seeded, fault.h).  Training
# still progresses (accuracy well above chance, close to a run without
# faults), and the reports count what happened: injected drops and delays,
# rounds that timed out, neighbour models missing at aggregation.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_faults

n=4
# batch 300: 50 rounds per epoch, so that 20 ms of delay per round and the
# timeouts of rounds whose message was dropped keep the run to a few seconds.
common=(--nodes $n --model logreg --rule mean --epochs 2 --batch 300 --eval-subset 1000 --seed 1)
bn_swarm faults "${common[@]}" --fault-drop 0.1 --fault-delay 20 --round-timeout 100
bn_swarm clean "${common[@]}" --round-timeout 5000

sum() { echo "sum(d['$1'] for k in range($n) for d in jl(k))"; }
bn_expect faults "epochs closed" "len(s['epochs'])" "v == 2"
bn_expect faults "no node failed" "[x['id'] for x in nodes if x['failed']]" "v == []"
bn_expect faults "every node reached the last epoch" "[x['last_epoch'] for x in nodes]" "v == [2] * $n"
bn_expect faults "mean accuracy, last epoch (chance: 0.1)" "last['mean_accuracy']" "v > 0.6"
acc_clean="$(bn_py clean "last['mean_accuracy']")"
bn_expect faults "accuracy within 5 points of the run without faults ($acc_clean)" \
    "last['mean_accuracy']" "v > $acc_clean - 0.05"
bn_expect faults "injected drops, all nodes" "$(sum fault_dropped)" "v > 0"
# Attempted sends: injected drops, sends made, and sends a full high-water
# mark refused (send_dropped: a peer that does not read, on a loaded machine).
bn_log "faults: sends a full high-water mark refused: $(bn_py faults "$(sum send_dropped)"), made: $(bn_py faults "$(sum msgs_sent)"), injected drops: $(bn_py faults "$(sum fault_dropped)")"
bn_expect faults "injected drop rate (of attempted sends)" \
    "$(sum fault_dropped) / ($(sum fault_dropped) + $(sum msgs_sent) + $(sum send_dropped))" "0.05 < v < 0.15"
bn_expect faults "injected delays, all nodes" "$(sum fault_delayed)" "v > 0"
bn_expect faults "rounds timed out, all nodes" "$(sum rounds_timed_out)" "v > 0"
bn_expect faults "missing neighbour models, all nodes" "$(sum missing)" "v > 0"
bn_expect faults "every node's final accuracy" "[x['accuracy'] for x in nodes]" "all(a > 0.6 for a in v)"
bn_expect clean "no injected faults without the options" "$(sum fault_dropped) + $(sum fault_delayed)" "v == 0"
bn_expect clean "no timed-out round without faults" "$(sum rounds_timed_out)" "v == 0"
bn_finish
