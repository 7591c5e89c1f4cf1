#!/usr/bin/env bash
# swarm_checks.sh -- everything swarm.sh and byznode refuse before a process
# starts, each with one clear line and no node started; a node that exits
# early fails the run at once; a finished node is not retrained; a checkpoint
# of another configuration is refused.
#
#  1. swarm.sh fail-fast cases (issue 11): a bad name gets the choices and a
#     did-you-mean (--attack lie, --rule simlarity, --epoch, --model cn),
#     constraints (--byzantine vs --nodes, --min-degree), bad numbers, a
#     changed swarm-wide option, an --out holding a run: exit 2, exactly one
#     line on stderr, no run directory made, no byznode process.
#  2. A node that exits with an error (--data that does not exist): swarm.sh
#     exits 1 at once naming the node, prints no "done", leaves nothing running.
#  3. byznode's own arguments: monitor --grace abc, roles --seed zz, ... exit 2
#     with one line.  rules / attacks / --help list names, defaults, ranges.
#  4. A 3-node, 2-epoch logreg swarm with --checkpoint-every 1; node 0 rerun
#     with the same arguments says "already finished" and leaves its jsonl as it
#     was (before: it retrained the last epoch and logged it twice); rerun
#     with another --lr it refuses the checkpoint and starts afresh.
#  5. swarm.sh --resume of a run stopped after epoch 1: all epochs, none twice.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init swarm_checks
SW="$BN_SRC/scripts/swarm.sh"

# fails_fast NAME WANT swarm.sh-options...: exit 2, one stderr line containing
# WANT, no run dir, nothing started.
fails_fast() {
    local name="$1" want="$2"; shift 2
    local out="$BN_TMP/ff-$name" rc=0 t0=$SECONDS
    timeout 60 "$SW" --build "$BN_BUILD" --no-plot --quiet --out "$out" "$@" \
        > "$BN_TMP/ff-$name.stdout" 2> "$BN_TMP/ff-$name.stderr" || rc=$?
    local lines msg
    lines="$(wc -l < "$BN_TMP/ff-$name.stderr")"
    msg="$(head -n 1 "$BN_TMP/ff-$name.stderr")"
    bn_log "$name ($((SECONDS - t0)) s): $msg"
    bn_expect_true "$name: exit 2 (got $rc)" test "$rc" = 2
    bn_expect_true "$name: one line on stderr (got $lines)" test "$lines" = 1
    bn_expect_true "$name: the line says '$want'" grep -qF -- "$want" "$BN_TMP/ff-$name.stderr"
    bn_expect_true "$name: no run directory" test ! -e "$out"
    bn_expect_true "$name: no byznode process" test -z "$(bn_our_pids)"
}

fails_fast attack-typo "--attack: unknown attack 'lie' (did you mean dlie or alie?); choices: none, dlie" \
    --nodes 8 --byzantine 2 --attack lie
fails_fast rule-typo "--rule: unknown rule 'simlarity' (did you mean similarity?); choices:" \
    --rule simlarity
fails_fast option-typo "unknown option --epoch (did you mean --epochs?)" --epoch 3
fails_fast own-option-typo "unknown option --node (did you mean --nodes?)" --node 4
fails_fast model-typo "unknown model 'cn' (did you mean cnn?)" --model cn
fails_fast byz-degree "--byzantine 2: every node needs 2b+1 = 5 neighbours" --nodes 5 --byzantine 2
fails_fast byz-too-many "--byzantine '5': not an integer in 0..4" --nodes 5 --byzantine 5
fails_fast min-degree "--min-degree 6: impossible in a swarm of 6 nodes" --nodes 6 --min-degree 6
fails_fast bad-number "--lr: 'abc' is not a number" --lr abc
fails_fast bad-range "--c: 0 is outside the accepted range" --rule similarity --c 0
fails_fast bad-transport "--transport 'tpc': not ipc or tcp" --transport tpc
fails_fast no-graph "no G(6, 0.05)" --nodes 6 --p 0.05 --min-degree 2
fails_fast swarm-wide-override "--lr 0.3: the swarm file sets this swarm-wide option to 0.2" \
    --lr 0.2 --node-opt "--lr 0.3"
fails_fast fail-at "--fail-at-epoch '3': not an integer in 1..2" --fail-nodes 1 --fail-at-epoch 3

# An --out that holds a run: refused (not deleted); --resume without checkpoints: refused.
mkdir -p "$BN_TMP/old/nodes"; echo keep > "$BN_TMP/old/summary.json"
rc=0
"$SW" --build "$BN_BUILD" --no-plot --quiet --out "$BN_TMP/old" --nodes 3 2> "$BN_TMP/old.err" || rc=$?
bn_expect_true "existing --out: exit 2 (got $rc)" test "$rc" = 2
bn_expect_true "existing --out: one line naming --force and --resume" \
    bash -c "[ \$(wc -l < '$BN_TMP/old.err') = 1 ] && grep -q 'previous run: --force deletes it, --resume' '$BN_TMP/old.err'"
bn_expect_true "existing --out: the old run is intact" grep -qx keep "$BN_TMP/old/summary.json"
rc=0
"$SW" --build "$BN_BUILD" --no-plot --quiet --out "$BN_TMP/old" --resume 2> "$BN_TMP/old2.err" || rc=$?
bn_expect_true "--resume without checkpoints: exit 2 and says so" \
    bash -c "[ $rc = 2 ] && grep -q 'no checkpoints' '$BN_TMP/old2.err'"

# 2. A node that exits early fails the run at once.
rc=0; t0=$SECONDS
timeout 60 "$SW" --build "$BN_BUILD" --no-plot --out "$BN_TMP/early" --nodes 4 --model logreg \
    --epochs 2 --data "$BN_TMP/no-such-data" > /dev/null 2> "$BN_TMP/early.err" || rc=$?
bn_log "early exit after $((SECONDS - t0)) s: $(grep 'exited with code' "$BN_TMP/early.err" | head -n 1)"
bn_expect_true "early exit: swarm.sh exits 1 (got $rc)" test "$rc" = 1
bn_expect_true "early exit: names the node and its error" \
    grep -q "swarm.sh: node [0-9] (honest) exited with code 1 after .*no-such-data" "$BN_TMP/early.err"
bn_expect_true "early exit: no 'done'" bash -c "! grep -q 'swarm: done' '$BN_TMP/early.err'"
bn_expect_true "early exit: nothing left running" test -z "$(bn_our_pids)"

# 3. byznode's own arguments.
cli_bad() {
    local want="$1"; shift
    local rc=0 err
    err="$("$BN_BIN" "$@" 2>&1 >/dev/null)" || rc=$?
    bn_expect_true "byznode $*: exit 2, one line with '$want' (got $rc: $err)" \
        bash -c "[ $rc = 2 ] && [ \$(printf '%s\n' \"\$1\" | wc -l) = 1 ] && grep -qF -- \"\$2\" <<< \"\$1\"" _ "$err" "$want"
}
cli_bad "--grace 'abc' is not a number" monitor --swarm "$BN_TMP/x" --out "$BN_TMP/y" --grace abc
cli_bad "--grace '-1' is not a number" monitor --swarm "$BN_TMP/x" --out "$BN_TMP/y" --grace -1
cli_bad "unknown argument '--grce' (did you mean --grace?)" monitor --swarm "$BN_TMP/x" --out "$BN_TMP/y" --grce 5
cli_bad "--seed 'zz' is not an integer" roles --nodes 5 --byzantine 1 --seed zz
cli_bad "--byzantine '5' is not an integer in 0..4" roles --nodes 5 --byzantine 5
cli_bad "--nodes '5x' is not an integer" roles --nodes 5x --byzantine 1
cli_bad "bad value 'x' for --nodes" topology --nodes x --p 0.5
cli_bad "unknown command 'nod' (did you mean node?" nod
out="$("$BN_BIN" rules)"
bn_expect_true "byznode rules lists similarity with --c and its default" \
    bash -c "grep -q similarity <<< \"\$1\" && grep -q -- '--c ' <<< \"\$1\"" _ "$out"
out="$("$BN_BIN" attacks)"
bn_expect_true "byznode attacks lists dlie with --z 2" grep -q -- "dlie *--z 2" <<< "$out"
out="$("$SW" --build "$BN_BUILD" --help)"
bn_expect_true "swarm.sh --help: its own defaults" grep -q -- "--nodes N (10)" <<< "$out"
bn_expect_true "swarm.sh --help: node options with defaults, ranges, scope" \
    grep -q -- "--epochs .*\[1..100000\] (default 80) \[swarm-wide\]" <<< "$out"

# docs/deployment.md's list of swarm-wide options is the table's: each
# [swarm-wide] row of byznode node --help is in the list or a rule parameter.
doc_list="$(sed -n '/^### Swarm-wide options/,/^and every rule parameter/p' "$BN_SRC/docs/deployment.md" \
    | grep '^    ' | tr -s ' \n' '\n\n' | grep -v '^$')"
rules_out="$("$BN_BIN" rules)"
help_out="$("$BN_BIN" node --help)"
missing=""
for name in $(grep '^  --.*\[swarm-wide\]$' <<< "$help_out" | sed 's/^  --\([a-z0-9-]*\).*/\1/'); do
    grep -qx -- "$name" <<< "$doc_list" || grep -q -- "--$name " <<< "$rules_out" || missing="$missing $name"
done
extra=""
for name in $doc_list; do
    grep -q -- "^  --$name .*\[swarm-wide\]$" <<< "$help_out" || extra="$extra $name"
done
bn_expect_true "docs/deployment.md lists the swarm-wide options (missing:${missing:- none}; not swarm-wide:${extra:- none})" \
    test -z "$missing$extra"

# 4. Checkpoints: a finished node is not retrained; another configuration's
#    checkpoint is refused.
BN_SWARM_TIMEOUT=120 bn_swarm ck --nodes 3 --model logreg --epochs 2 --p 1 --batch 300 \
    --eval-subset 500 --round-timeout 2000 --checkpoint-every 1 --seed 4
bn_expect ck "epochs in node 0's jsonl" "[l['epoch'] for l in jl(0)]" "v == [1, 2]"
before="$(md5sum < "$BN_TMP/ck/nodes/node-0.jsonl")"
# The same swarm file without the monitor, its sockets (swarm.sh removed
# their directory) in our work dir.
grep -v '^monitor' "$BN_TMP/ck/swarm.txt" | sed "s|ipc://[^ ]*/\([0-9]*\)|ipc://$BN_TMP/ck-sock-\1|" \
    > "$BN_TMP/ck/swarm-again.txt"
rc=0
timeout 30 "$BN_BIN" node --swarm "$BN_TMP/ck/swarm-again.txt" --id 0 --out "$BN_TMP/ck/nodes" \
    > "$BN_TMP/ck-rerun.log" 2>&1 || rc=$?
bn_expect_true "rerun of a finished node: exit 0 (got $rc)" test "$rc" = 0
bn_expect_true "rerun of a finished node: says already finished" grep -q "already finished" "$BN_TMP/ck-rerun.log"
bn_expect_true "rerun of a finished node: did not train" bash -c "! grep -q 'epoch 2: accuracy' '$BN_TMP/ck-rerun.log'"
bn_expect_true "rerun of a finished node: jsonl unchanged" test "$(md5sum < "$BN_TMP/ck/nodes/node-0.jsonl")" = "$before"
# Another --lr (the swarm file leaves lr to the command line; with a batch
# size the file sets, --batch would be refused before the checkpoint is read).
"$BN_BIN" node --swarm "$BN_TMP/ck/swarm-again.txt" --id 0 --out "$BN_TMP/ck/nodes" --lr 0.05 \
    > "$BN_TMP/ck-batch.log" 2>&1 &
pid=$!
t0=$SECONDS
until grep -q "ignoring checkpoint" "$BN_TMP/ck-batch.log" || ! kill -0 "$pid" 2>/dev/null \
        || [ $((SECONDS - t0)) -gt 30 ]; do sleep 0.1; done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
bn_log "other --lr: $(grep -m1 'ignoring checkpoint' "$BN_TMP/ck-batch.log" || tail -n 1 "$BN_TMP/ck-batch.log")"
bn_expect_true "checkpoint of another --lr: refused, fresh start" \
    grep -q "ignoring checkpoint (starting afresh).*another configuration" "$BN_TMP/ck-batch.log"

# 5. swarm.sh --resume: a run stopped after epoch 1 (TERM to swarm.sh) and
#    resumed finishes with every epoch in summary.json and no epoch twice in
#    any jsonl.
res=(--build "$BN_BUILD" --no-plot --quiet --out "$BN_TMP/res" --nodes 3 --model logreg --epochs 3 --p 1
     --batch 300 --eval-subset 500 --checkpoint-every 1 --round-timeout 2000 --seed 5)
"$SW" "${res[@]}" > "$BN_TMP/res1.log" 2>&1 &
pid=$!
t0=$SECONDS
until [ "$(ls "$BN_TMP"/res/nodes/checkpoint-*.bin 2>/dev/null | wc -l)" = 3 ] || ! kill -0 "$pid" 2>/dev/null \
        || [ $((SECONDS - t0)) -gt 60 ]; do sleep 0.05; done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
bn_log "res: stopped after $(wc -l < "$BN_TMP/res/nodes/node-0.jsonl") epoch(s) of node 0"
rc=0
timeout 120 "$SW" "${res[@]}" --resume > "$BN_TMP/res2.log" 2>&1 || rc=$?
bn_expect_true "--resume: exit 0 (got $rc)" test "$rc" = 0
bn_expect res "--resume: every epoch in summary.json" "[e['epoch'] for e in s['epochs']]" "v == [1, 2, 3]"
bn_expect res "--resume: no node failed" "[x['id'] for x in nodes if x['failed']]" "v == []"
bn_expect res "--resume: each jsonl has epochs 1..3 once" "[[l['epoch'] for l in jl(k)] for k in range(3)]" \
    "v == [[1, 2, 3]] * 3"
bn_expect res "--resume: the nodes said so" "sum(1 for k in range(3) for l in jl(k) if l['resumed'])" "v >= 1"


# 6. Roles: `--attack none` with b > 0 is the no-attack baseline of the same
#    honest set (the Byzantine ids train honestly and are reported as
#    Byzantine, attack none, not failed); a node started outside its role is
#    refused with one line.
BN_SWARM_TIMEOUT=120 bn_swarm roles --nodes 6 --byzantine 1 --attack none --model logreg --epochs 1 \
    --train-size 3000 --eval-subset 200 --seed 1
byz_id="$("$BN_BIN" roles --nodes 6 --byzantine 1 --seed 1)"
bn_expect roles "the Byzantine id: role, attack, failed" \
    "[(x['role'], x['attack'], x['failed']) for x in nodes if x['id'] == $byz_id]" "v == [('byzantine', 'none', False)]"
bn_expect roles "no node failed, no report dropped" "([x['id'] for x in nodes if x['failed']], s['dropped_reports'])" \
    "v == ([], 0)"
honest_id=$(( (byz_id + 1) % 6 ))
rc=0
timeout 30 "$BN_BIN" node --swarm "$BN_TMP/roles/swarm.txt" --id "$byz_id" --out "$BN_TMP/roles-x" \
    > "$BN_TMP/roles-byz.log" 2>&1 || rc=$?
bn_log "Byzantine id without --attack: rc $rc: $(grep error "$BN_TMP/roles-byz.log")"
bn_expect_true "a Byzantine id without --attack is refused with one line" \
    bash -c "[ $rc != 0 ] && [ \$(grep -c 'error: node $byz_id is in the swarm.s Byzantine set' '$BN_TMP/roles-byz.log') = 1 ]"
rc=0
timeout 30 "$BN_BIN" node --swarm "$BN_TMP/roles/swarm.txt" --id "$honest_id" --attack dlie --out "$BN_TMP/roles-x" \
    > "$BN_TMP/roles-hon.log" 2>&1 || rc=$?
bn_log "honest id with --attack dlie: rc $rc: $(grep error "$BN_TMP/roles-hon.log")"
bn_expect_true "an honest id given an attack is refused with one line" \
    bash -c "[ $rc != 0 ] && [ \$(grep -c 'error: node $honest_id is honest in this swarm' '$BN_TMP/roles-hon.log') = 1 ]"

bn_finish
