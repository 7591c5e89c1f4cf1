#!/usr/bin/env bash
# swarm_monitor.sh -- forged and malformed REPORTs sent to a running swarm's
# monitor leave summary.json complete and correct (issue 8):
#   plain: a report with a 1-float model and one with t_epoch NaN in an
#          honest node's name, and the last epoch's report of the attacker
#          sent before the swarm has started;
#   CURVE: the attacker, a listed member with its own key, sends a report
#          in an honest node's name, one as itself claiming to be honest,
#          and its last-epoch report early.
# Each run's epochs must equal those of the same swarm without forgeries
# (same seed: the same figures), no node is failed, summary.json is valid
# JSON (no NaN: bn_json_strict), and the monitor exits by itself.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_monitor
FORGE="$BN_BUILD/tests/monitor_forge"
[ -x "$FORGE" ] || bn_die "no $FORGE"

n=4; E=3
common=(--nodes $n --byzantine 1 --attack gaussian --model logreg --rule trimmed-mean --epochs $E
        --batch 300 --eval-subset 1000 --seed 5)
byz="$("$BN_BIN" roles --nodes $n --byzantine 1 --seed 5)"
honest=0; [ "$byz" = 0 ] && honest=1

# forged_swarm RUN "SWARM.SH OPTIONS" FORGE-ARGS...: the swarm in the
# background, the forger as soon as the swarm file exists.
forged_swarm() {
    local run="$1" opts="$2"; shift 2
    local t0=$SECONDS
    # shellcheck disable=SC2086
    timeout 120 "$BN_SRC/scripts/swarm.sh" --build "$BN_BUILD" --no-plot --quiet \
        --out "$BN_TMP/$run" "${common[@]}" $opts > "$BN_TMP/$run.out" 2>&1 &
    local pid=$!
    local f="$BN_TMP/$run/swarm.txt"
    for _ in $(seq 1 400); do
        [ "$(grep -c '^node ' "$f" 2>/dev/null)" = $n ] && break; sleep 0.05
    done
    [ "$(grep -c '^node ' "$f" 2>/dev/null)" = $n ] || bn_die "$run: no complete swarm file"
    "$FORGE" --swarm "$BN_TMP/$run/swarm.txt" "$@" || bn_die "$run: the forger failed"
    wait "$pid" || { tail -n 20 "$BN_TMP/$run.out" >&2; bn_die "$run: swarm.sh failed"; }
    bn_log "$run: swarm of $((SECONDS - t0)) s"
}

bn_swarm clean "${common[@]}"
forged_swarm plain "" tiny:$honest:1 nantime:$honest:2 genuine:$byz:$E
forged_swarm curve "--curve" --key "$BN_TMP/curve/keys/$byz.key" \
    genuine:$honest:1 role:$byz:1 genuine:$byz:$E

fields="['epoch', 'mean_accuracy', 'min_accuracy', 'max_accuracy', 'consensus_error', 'byzantine_weight', 'honest_reported', 'models']"
ref="$(bn_py clean "[[e[k] for k in $fields] for e in s['epochs']]")"
bn_expect clean "epochs closed" "len(s['epochs'])" "v == $E"
for run in plain curve; do
    bn_expect_true "$run: summary.json is valid JSON" bn_json_strict "$BN_TMP/$run/summary.json"
    bn_expect $run "every epoch, the genuine figures" "[[e[k] for k in $fields] for e in s['epochs']]" "v == $ref"
    bn_expect $run "no node failed" "[x['id'] for x in nodes if x['failed']]" "v == []"
    bn_expect $run "every node finished" "[x['state'] for x in nodes]" "v == ['finished'] * $n"
    bn_expect_true "$run: the monitor exited by itself" grep -q "every node finished or failed: done" "$BN_TMP/$run/monitor.log"
    bn_expect $run "honest nodes' records are their own" \
        "[r['accuracy'] == 0.99 for x in honest for r in x['epochs']]" "not any(v)"
done
bn_expect plain "report drops" "s['report_drops']" "v == {'dim': 1, 'metrics': 1, 'duplicate': 1}"
bn_expect curve "report drops" "s['report_drops']" "v == {'auth': 1, 'role': 1, 'duplicate': 1}"
bn_finish
