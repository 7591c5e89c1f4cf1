#!/usr/bin/env bash
# swarm_attacks.sh -- every attack added in issue 12 runs end to end: the
# attackers' vectors are sent, received and aggregated (plain `mean` gives
# the Byzantine neighbours their uniform share of the weight), and they hurt
# `mean` against a run of the same seed in which nobody attacks (the same
# ids run `none`: same graph, partition, init and Byzantine set; runs are
# deterministic given the seed).  10 nodes, 2 Byzantine, omniscient, mlp,
# 1 epoch, 2000 test images.  The margins are several times the spread
# between seeds (about 0.5 point of accuracy, a factor < 1.3 in consensus
# error), so a no-op attack cannot pass.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_attacks

n=10; b=2; seed=1
common=(--nodes $n --byzantine $b --rule mean --model mlp --epochs 1 --batch 60
        --eval-subset 2000 --seed $seed --omniscient)

bn_swarm base "${common[@]}" --attack none
base_acc="$(bn_py base "last['mean_accuracy']")"
base_cons="$(bn_py base "last['consensus_error']")"
bn_log "no attack: mean accuracy $base_acc, consensus error $base_cons"

# run NAME ATTACK [options]: the swarm, then "sent, received, aggregated".
run() {
    local name="$1" attack="$2"; shift 2
    bn_swarm "$name" "${common[@]}" --attack "$attack" "$@"
    bn_expect "$name" "honest nodes that reported" "last['honest_reported']" "v == $((n - b))"
    bn_expect "$name" "attackers' vectors aggregated by mean" "last['byzantine_weight']" "v > 0.15"
}
# hurts_acc NAME POINTS: the honest mean accuracy drops by more than POINTS.
hurts_acc() {
    bn_expect "$1" "mean accuracy drop > $2 points" "last['mean_accuracy']" "v < $base_acc - $2 / 100"
}
# hurts_cons NAME FACTOR: consensus error grows by more than FACTOR.
hurts_cons() {
    bn_expect "$1" "consensus error x > $2" "last['consensus_error']" "v > $2 * $base_cons"
}

# Adaptive, per-victim attacks.  echo carries no information, so under
# mean it only slows mixing: its harm is consensus (2.2-2.5x measured).
run echo echo
hurts_cons echo 1.5
run drift drift --drift-scale 2                   # reverse: -5.9 points
hurts_acc drift 2
run drift-target drift --drift-direction target --drift-scale 3
hurts_acc drift-target 1
run dissensus dissensus                           # scale 1: consensus x9
hurts_cons dissensus 5
run minmax minmax                                 # consensus x3.4
hurts_cons minmax 2
run minsum minsum
hurts_cons minsum 2

# The seed papers' remaining attacks.  model-negation and gradient-scale
# run with small constants (1 and 30): with the papers' 1e10 mean's models
# overflow to non-finite values within a few rounds; neighbours then drop
# their messages and wait two round timeouts for each such node, which
# would take minutes (the 1e10 vectors themselves are unit-tested).
run random-sign-flip random-sign-flip            # rsf-std 10: -3.6 points
hurts_acc random-sign-flip 2
run ofom ofom                                     # -1.6 points, consensus x100
hurts_acc ofom 1
hurts_cons ofom 10
run paf paf                                       # -0.8 points, consensus x2.5
hurts_cons paf 2
# model-negation feeds on itself (-9 to -27 points over repeated runs: the
# swarm's dynamics amplify timing differences), hence the wide margin.
run model-negation model-negation --negation-scale 1 --round-timeout 1000
hurts_acc model-negation 5
run gradient-scale gradient-scale --gradient-scale 30 --round-timeout 1000   # -10 points
hurts_acc gradient-scale 5
run normalized-mean normalized-mean               # -14 points
hurts_acc normalized-mean 5
# mixed: each attacker its own attack, by rank among the Byzantine ids.
run mixed mixed --attack-mix label-flip,random-sign-flip    # consensus x3.5
hurts_cons mixed 2
bn_expect mixed "each attacker ran its own attack" \
    "sorted(x['attack'] for x in nodes if x['role'] == 'byzantine')" "v == ['label-flip', 'random-sign-flip']"
# mimic2 on non-iid shards against its own no-attack run.  It sends the
# mean of a cluster of honest models, which lies inside the honest hull:
# at this scale it measurably hurts neither mean nor median (docs/attacks.md),
# so only its delivery is checked here.
run mimic2 mimic2 --partition shards

bn_finish
