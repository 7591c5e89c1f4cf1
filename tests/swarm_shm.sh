#!/usr/bin/env bash
# swarm_shm.sh -- same-host models through shared memory (src/shm.h) change
# nothing but the path: a seeded 10-node swarm (2 dlie attackers, rule
# similarity, mlp, 2 epochs) run with --shm off, --shm rings (references
# over the sockets) and --shm auto (references through the nodes' FIFOs,
# src/refpipe.h) gives the same accuracy, test and training loss on every
# node in every epoch and the same consensus error; with rings and auto
# every node read its neighbours' models from their rings (shm_received > 0
# on each, no slot dropped), with off none went that way; with auto every
# node wrote its references into FIFOs and read its neighbours' from its
# own, with rings none did; and no ring file or FIFO is left behind.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_shm

n=10
common=(--nodes $n --byzantine 2 --attack dlie --rule similarity --epochs 2 --model mlp --seed 1
        --batch 600 --eval-subset 500)
bn_swarm off "${common[@]}" --shm off
bn_swarm on "${common[@]}" --shm auto
bn_swarm rings "${common[@]}" --shm rings

bn_expect off "models by reference with --shm off" \
    "sum(l['shm_sent'] + l['shm_received'] for k in range($n) for l in jl(k))" "v == 0"
bn_expect on "nodes that read no model from a ring" \
    "[k for k in range($n) if sum(l['shm_received'] for l in jl(k)) == 0]" "v == []"
bn_expect on "references sent, slots read" \
    "(sum(l['shm_sent'] for k in range($n) for l in jl(k)), sum(l['shm_received'] for k in range($n) for l in jl(k)))" \
    "v[0] > 0 and v[0] == v[1]"
bn_expect on "slots dropped (dropped.shm)" \
    "sum(l['dropped'].get('shm', 0) for k in range($n) for l in jl(k))" "v == 0"
bn_expect rings "nodes that read no model from a ring (--shm rings)" \
    "[k for k in range($n) if sum(l['shm_received'] for l in jl(k)) == 0]" "v == []"
# the FIFO counts are in each node's closing log line (node.c)
fifo_counts() {     # DIR: "written read" summed over the nodes' logs
    sed -n 's/.*reference FIFOs: \([0-9]*\) references written.* \([0-9]*\) read from ours.*/\1 \2/p' \
        "$BN_TMP/$1"/logs/node-*.log | awk '{w += $1; r += $2; n++} END {print n + 0, w + 0, r + 0}'
}
read -r fn fw fr <<< "$(fifo_counts on)"
bn_expect_true "--shm auto: every node reported its FIFO ($fn of $n), wrote ($fw) and read ($fr) references through them" \
    test "$fn" = $n -a "$fw" -gt 0 -a "$fw" = "$fr"
read -r rn rw rr <<< "$(fifo_counts rings)"
bn_expect_true "--shm rings: no node used a FIFO ($rn)" test "$rn" = 0
per_node="json.dumps([[[l['accuracy'], l['test_loss'], l['train_loss']] for l in jl(k)] for k in range($n)])"
want="$(bn_py off "$per_node")"
bn_expect on "every node's accuracy, test and train loss per epoch equal --shm off's" \
    "$per_node" "v == '''$want'''"
want_ce="$(bn_py off "[e['consensus_error'] for e in s['epochs']]")"
bn_expect on "consensus error per epoch equals --shm off's ($want_ce)" \
    "[e['consensus_error'] for e in s['epochs']]" "v == $want_ce"
bn_expect rings "every node's accuracy, test and train loss per epoch equal --shm off's (--shm rings)" \
    "$per_node" "v == '''$want'''"
rings="$(sed -n 's/.*same-host models: ring \(.*\.ring\) of .*/\1/p' "$BN_TMP"/on/logs/node-*.log)"
bn_expect_true "every node named its ring in its log" test "$(echo "$rings" | grep -c .)" = $n
left=0; for f in $rings; do [ ! -e "$f" ] || left=$((left + 1)); done
bn_expect_true "ring files left after the run: $left" test $left = 0
fleft=0; for f in $rings; do [ ! -e "${f%.ring}.refs" ] || fleft=$((fleft + 1)); done
bn_expect_true "FIFOs left after the run: $fleft" test $fleft = 0
bn_finish
