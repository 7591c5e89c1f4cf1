#!/usr/bin/env bash
# swarm_byzantine.sh -- 10 nodes, 2 Byzantine, mlp, 1 epoch.  Under the
# reverse attack (-mu) plain averaging collapses (honest accuracy < 0.3)
# while the similarity rule keeps learning (> 0.6) and gives the attackers
# almost no weight; the same for the random attack.  Same seed for all runs,
# so the same graph, partition, init and Byzantine set.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_byzantine

n=10; b=2; seed=1
byz="$("$BN_BIN" roles --nodes $n --byzantine $b --seed $seed)"
pylist="[$(echo "$byz" | tr ' ' ',')]"
bn_log "Byzantine nodes: $byz"

for attack in reverse random; do
    for rule in mean similarity; do
        run="$attack-$rule"
        bn_swarm "$run" --nodes $n --byzantine $b --attack $attack --rule $rule --model mlp \
            --epochs 1 --batch 60 --eval-subset 1000 --seed $seed
        bn_expect "$run" "Byzantine ids in summary.json" \
            "[x['id'] for x in nodes if x['role'] == 'byzantine']" "v == $pylist"
        bn_expect "$run" "honest nodes that reported" "last['honest_reported']" "v == $((n - b))"
        if [ $rule = mean ]; then
            bn_expect "$run" "honest mean accuracy (collapses)" "last['mean_accuracy']" "v < 0.3"
        else
            bn_expect "$run" "honest mean accuracy (holds)" "last['mean_accuracy']" "v > 0.6"
            bn_expect "$run" "honest min accuracy" "last['min_accuracy']" "v > 0.5"
            bn_expect "$run" "weight given to Byzantine neighbours" "last['byzantine_weight']" "v < 0.05"
        fi
    done
    # mean with uniform weights: the attackers get their share of the average.
    bn_expect "$attack-mean" "mean's weight on Byzantine neighbours" "last['byzantine_weight']" "v > 0.1"
done

bn_finish
