#!/usr/bin/env bash
# swarm_liveness.sh -- issue 8's stall and late-restart figures, measured
# one after the other in the same session: the swarm of tests/swarm_stall.sh
# and tests/swarm_restart.sh (4 logreg nodes, batch 6 = 2,500 rounds per
# epoch, 1 s round timeout, 1 ms injected delay per message, a checkpoint
# every epoch, 8 epochs) in each case:
#   undisturbed   nothing happens
#   stall         node 2 SIGSTOPped for 8 s after its epoch 1, then SIGCONT
#   restartS      node 3 SIGKILLed after its epoch-1 checkpoint, restarted
#                 with the same arguments S seconds later (restart2, restart0)
# Per case: the per-node table of tests/liveness_lib.sh and one line
# "ROW {json}": wall time, the victim's and its neighbours' missing models in
# the last 3 epochs, rounds timed out (all nodes), rounds skipped / peers
# given up / restored per node, failed nodes, honest reports per epoch.
# Wall time on a loaded machine is noise: the per-epoch CPU (cpu_process in
# the jsonl, BN_KEEP=1 keeps the runs) tells load from work.
#
# usage: bench/swarm_liveness.sh [CASE ...]   (default: undisturbed stall restart2 restart0)
. "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../tests/liveness_lib.sh"
bn_init swarm_liveness
[ $# -gt 0 ] || set -- undisturbed stall restart2 restart0
n=4; epochs=8
opts=("batch 6" "round-timeout 1000" "fault-delay 1" "checkpoint-every 1")
summary() {
    local tag="$1" victim="$2"
    bn_log "== $tag: wall $LV_WALL s, nodes rc $LV_RC"
    lv_table $n
    python3 - "$LV_RUN" "$victim" "$tag" "$LV_WALL" <<'PY'
import json, os, sys
run, victim, tag, wall = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def jl(k):
    return [json.loads(l) for l in open(os.path.join(run, "nodes", "node-%d.jsonl" % k)) if l.strip()]
def bad(c): raise ValueError(c)
s = json.loads(open(os.path.join(run, "summary.json")).read(), parse_constant=bad)
J = {k: jl(k) for k in range(4)}
row = dict(tag=tag, wall=int(wall),
    victim_missing_last3=[d["missing"] for d in J[victim][-3:]] if victim >= 0 else None,
    neighbours_missing_last3=[d["missing"] for k in J if k != victim for d in J[k][-3:]],
    rounds_timed_out=sum(d["rounds_timed_out"] for k in J for d in J[k]),
    rounds_skipped=[sum(d.get("rounds_skipped", 0) for d in J[k]) for k in J],
    peers_given_up=[sum(d.get("peers_given_up", 0) for d in J[k]) for k in J],
    peers_restored=[sum(d.get("peers_restored", 0) for d in J[k]) for k in J],
    epochs_per_node=[[d["epoch"] for d in J[k]] for k in J],
    last_epoch=[x["last_epoch"] for x in s["nodes"]], failed=[x["id"] for x in s["nodes"] if x["failed"]],
    honest_reported=[e["honest_reported"] for e in s["epochs"]],
    final_mean_acc=s["epochs"][-1]["mean_accuracy"],
    sum_t_epoch=[round(sum(d["t_epoch"] for d in J[k]), 1) for k in J])
print("ROW " + json.dumps(row))
PY
    mv "$LV_RUN" "$BN_TMP/$tag"
}
wait_ck() {
    local t0=$SECONDS
    until [ -s "$LV_RUN/nodes/checkpoint-$1.bin" ]; do
        [ $((SECONDS - t0)) -lt 300 ] || bn_die "no checkpoint"; sleep 0.05; done
}
for sc in "$@"; do
    case "$sc" in
    undisturbed) lv_start $n $epochs "${opts[@]}"; lv_wait_all; summary undisturbed -1 ;;
    stall) lv_start $n $epochs "${opts[@]}"; lv_wait_epochs 2 1
        kill -STOP "${LV_PIDS[2]}"; sleep 8; kill -CONT "${LV_PIDS[2]}"
        lv_wait_all; summary stall 2 ;;
    restart*) down="${sc#restart}"; [[ "$down" =~ ^[0-9]+$ ]] || bn_die "restartS: S is whole seconds"
        lv_start $n $epochs "${opts[@]}"; wait_ck 3
        kill -KILL "${LV_PIDS[3]}"; wait "${LV_PIDS[3]}" 2>/dev/null || true
        sleep "$down"
        # shellcheck disable=SC2046
        "$BN_BIN" $(lv_node_args 3) > "$LV_RUN/logs/node-3.restart.log" 2>&1 &
        LV_PIDS[3]=$!
        lv_wait_all
        grep -h "resumed\|rejoined\|swarm is ahead\|caught up" "$LV_RUN/logs/node-3.restart.log" | head -5 >&2
        summary "$sc" 3 ;;
    *) bn_die "unknown case '$sc' (undisturbed, stall, restartS)" ;;
    esac
done
bn_finish
