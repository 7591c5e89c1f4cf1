#!/usr/bin/env bash
# swarm_curve.sh -- `scripts/swarm.sh --curve` (CURVE keys for every node and
# the monitor, ZAP accepting only the listed keys) trains exactly like the
# same swarm in plain text: same seed, so the same accuracy, and no message
# dropped for authentication.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_curve

n=4
common=(--nodes $n --model logreg --rule mean --epochs 2 --batch 300 --eval-subset 1000 --seed 2)
bn_swarm curve "${common[@]}" --curve
bn_swarm plain "${common[@]}"

bn_expect_true "swarm file lists a CURVE key per node" \
    test "$(grep -cE '^node [0-9]+ ipc://[^ ]+ [^ ]{40}$' "$BN_TMP/curve/swarm.txt")" = $n
bn_expect_true "monitor has a CURVE key" grep -qE '^monitor [^ ]+ [^ ]{40}$' "$BN_TMP/curve/swarm.txt"
bn_expect curve "epochs closed" "len(s['epochs'])" "v == 2"
bn_expect curve "every node reached the last epoch" "[x['last_epoch'] for x in nodes]" "v == [2] * $n"
bn_expect curve "honest reports in the last epoch" "last['honest_reported']" "v == $n"
bn_expect curve "mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
acc_plain="$(bn_py plain "last['mean_accuracy']")"
bn_expect curve "same accuracy as plain ($acc_plain)" "last['mean_accuracy']" "abs(v - $acc_plain) < 1e-9"
bn_expect curve "no message dropped (auth or other)" \
    "sum(sum(d['dropped'].values()) for k in range($n) for d in jl(k))" "v == 0"
bn_expect curve "no timed-out round" "sum(d['rounds_timed_out'] for k in range($n) for d in jl(k))" "v == 0"
bn_finish
