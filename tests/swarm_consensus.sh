#!/usr/bin/env bash
# swarm_consensus.sh -- a small honest loopback swarm learns and agrees.
#
# 1. 5 nodes, logreg, rule mean, 2 epochs, p 0.6: the consensus error after
#    the last epoch is < 1e-3, the honest mean accuracy (full test set at the
#    last epoch) is > 0.6 (a swarm that does not learn sits at 0.1 on ten
#    balanced classes), every node is in summary.json and reported epoch 2.
# 2. Static graph: every node's jsonl carries the same topology fingerprint
#    in every epoch, and it is the one `byznode topology` computes for the seed.
# 3. --time-varying: at each epoch all nodes agree on the fingerprint, and the
#    fingerprints of the epochs differ from each other.
# 4. The nodes read swarm.sh's uncompressed copy of the data set by default
#    (scripts/fetch_data.sh --unpack): the same run reading the .gz files
#    themselves (BN_DATA_UNPACKED=off) gives the same figures, bit for bit.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_consensus

n=5; seed=3
common=(--nodes $n --model logreg --rule mean --p 0.6 --seed $seed --batch 600 --eval-subset 1000)

bn_swarm static "${common[@]}" --epochs 2
bn_expect static "epochs closed" "len(s['epochs'])" "v == 2"
bn_expect static "consensus error after the last epoch" "last['consensus_error']" "v < 1e-3"
bn_expect static "honest mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
bn_expect static "honest min accuracy, last epoch" "last['min_accuracy']" "v > 0.5"
bn_expect static "every node reported" "last['honest_reported']" "v == $n"
bn_expect static "node ids in summary.json" "sorted(x['id'] for x in nodes)" "v == list(range($n))"
bn_expect static "nodes failed / not at the last epoch" \
    "[x['id'] for x in nodes if x['failed'] or x['last_epoch'] != 2]" "v == []"
bn_expect static "evaluated on the full test set at the end" \
    "sorted(set(jl(k)[-1]['eval_images'] for k in range($n)))" "v == [10000]"
bn_expect static "topology fingerprints (node x epoch)" \
    "sorted(set(r['topology'] for k in range($n) for r in jl(k)))" "len(v) == 1"
want="$("$BN_BIN" topology --nodes $n --p 0.6 --seed $seed --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')"
bn_expect static "fingerprint equals byznode topology's ($want)" \
    "jl(0)[0]['topology']" "v == '$want'"

bn_swarm tv "${common[@]}" --epochs 3 --time-varying
bn_expect tv "epochs closed" "len(s['epochs'])" "v == 3"
bn_expect tv "distinct fingerprints among nodes, per epoch" \
    "[len(set(jl(k)[e]['topology'] for k in range($n))) for e in range(3)]" "v == [1, 1, 1]"
bn_expect tv "distinct fingerprints across epochs (node 0)" \
    "len(set(r['topology'] for r in jl(0)))" "v == 3"
want="$(for e in 0 1 2; do "$BN_BIN" topology --nodes $n --p 0.6 --seed $seed --epoch $e --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])'; done | paste -sd,)"
bn_expect tv "fingerprints equal byznode topology --epoch 0,1,2" \
    "','.join(r['topology'] for r in jl(0))" "v == '$want'"
bn_expect tv "consensus error after the last epoch" "last['consensus_error']" "v < 1e-3"

unpacked="$(bn_py static "s['config'].get('data', '')")"
bn_expect_true "the nodes read the uncompressed copy (data = $unpacked)" \
    test -f "$unpacked/train-images-idx3-ubyte" -a ! -f "$unpacked/train-images-idx3-ubyte.gz"
BN_DATA_UNPACKED=off bn_swarm gz "${common[@]}" --epochs 2
bn_expect_true "the .gz run read the .gz files" grep -q "\"data\": \"${BN_DATA_DIR:-/usr/share/datasets/fashion-mnist}\"" "$BN_TMP/gz/summary.json"
fields="['epoch', 'mean_accuracy', 'min_accuracy', 'max_accuracy', 'consensus_error', 'honest_reported']"
ref="$(bn_py static "[[e[k] for k in $fields] for e in s['epochs']]")"
bn_expect gz "every epoch's figures equal the uncompressed run's" \
    "[[e[k] for k in $fields] for e in s['epochs']]" "v == $ref"

bn_finish
