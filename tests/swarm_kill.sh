#!/usr/bin/env bash
# swarm_kill.sh -- one node is killed (SIGKILL) after it reported epoch 1 of
# 3; the others stop waiting for it (short --round-timeout) and finish.
# summary.json marks the victim "failed": true with last_epoch < 3, the
# survivors report epoch 3 with a sensible accuracy and a small consensus
# error among themselves.  swarm.sh picks the victim: the highest honest id.
# Then the same with omniscient attackers (12 nodes, 3 minmax): the attacker
# that relays the dead node's model to the others tells them it has none
# (an empty COLLUDE), so they do not wait for the relay until the deadline in
# every round after the kill (before that fix: 0.37-0.40 s a round, the
# round timeout, instead of 0.014 s; rounds_timed_out counts such rounds).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_kill

n=5
# batch 60: 200 rounds per epoch, so that an epoch lasts long enough for
# swarm.sh (which polls the jsonl files) to kill the victim during epoch 2.
bn_swarm kill --nodes $n --model logreg --rule mean --epochs 3 --batch 60 --eval-subset 1000 \
    --fail-nodes 1 --fail-at-epoch 1 --round-timeout 400 --seed 1

victim="$(cat "$BN_TMP/kill/failed-nodes.txt")"
bn_expect_true "swarm.sh chose one victim ($victim)" test "$victim" = $((n - 1))
bn_expect kill "epochs closed" "len(s['epochs'])" "v == 3"
bn_expect kill "nodes in summary.json" "len(nodes)" "v == $n"
bn_expect kill "failed nodes" "[x['id'] for x in nodes if x['failed']]" "v == [$victim]"
bn_expect kill "victim's last epoch" "nodes[$victim]['last_epoch']" "1 <= v < 3"
bn_expect kill "survivors' last epochs" \
    "sorted(set(x['last_epoch'] for x in nodes if x['id'] != $victim))" "v == [3]"
bn_expect kill "honest reports in the last epoch" "last['honest_reported']" "v == $((n - 1))"
bn_expect kill "survivors' mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
bn_expect kill "survivors' consensus error, last epoch" "last['consensus_error']" "v < 1e-3"
bn_expect kill "survivors' lines in their jsonl" \
    "[len(jl(k)) for k in range($n) if k != $victim]" "v == [3] * $((n - 1))"

bn_swarm omni --nodes 12 --byzantine 3 --attack minmax --omniscient --model logreg --rule similarity \
    --epochs 3 --batch 60 --eval-subset 1000 --fail-nodes 1 --fail-at-epoch 1 --round-timeout 500 --seed 1
bn_expect omni "honest reports in the last epoch" "last['honest_reported']" "v == 8"
bn_expect omni "attackers' rounds at the deadline, epochs 2-3 (2 to give up the victim)" \
    "[sum(e['rounds_timed_out'] for e in x['epochs'] if e['epoch'] >= 2) for x in nodes if x['role'] == 'byzantine']" \
    "len(v) == 3 and max(v) <= 4"

bn_finish
