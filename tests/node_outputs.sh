#!/usr/bin/env bash
# node_outputs.sh -- a node that cannot keep its results, and a node asked to
# stop while an injected 60 s delay still holds messages.
#
#   1. --out below a regular file (cannot be created): one error line, exit != 0
#   2. --out on a full filesystem (every write fails, ENOSPC): one error
#      line, exit != 0 once the first epoch's line cannot be flushed
#   3. --fault-delay 60000 and SIGTERM during the final drain: the node exits
#      within a few seconds (it waited the whole 60 s before)
# A 2-node swarm (logreg, train-size 1200: R = 10 rounds of batch 60) whose
# node 1 never runs: node 0 gives it up after two 100 ms rounds.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init node_outputs

run="$BN_TMP/run"
mkdir -p "$run"
{
    echo "swarm node-outputs-$$"
    echo "monitor ipc://$run/m"
    echo "option seed 3"
    echo "option epochs 2"
    echo "option model logreg"
    echo "option train-size 1200"
    echo "option p 1"
    echo "option eval-subset 200"
    echo "option data $BN_DATA"
    echo "node 0 ipc://$run/0"
    echo "node 1 ipc://$run/1"
} > "$run/swarm.txt"

node0() { "$BN_BIN" node --swarm "$run/swarm.txt" --id 0 --round-timeout 100 "$@"; }

# 1. --out cannot be created
touch "$run/afile"
rc=0; node0 --out "$run/afile/out" > "$run/1.log" 2>&1 || rc=$?
bn_expect_true "unwritable --out: exit status non-zero ($rc)" test "$rc" != 0
bn_expect_true "unwritable --out: the error names it" grep -q "afile/out" "$run/1.log"
bn_expect_true "unwritable --out: no node ran" bash -c "! grep -q 'epoch 1:' '$run/1.log'"

# 2. the jsonl cannot be written (disk full): --out is a 4 KB tmpfs already
# filled up, in a mount namespace of its own (skipped where there is none).
mkdir -p "$run/full"
if unshare -m true 2>/dev/null; then
    rc=0
    unshare -m sh -c 'mount -t tmpfs -o size=4k none "$1" && head -c 4096 /dev/zero > "$1/filler" 2>/dev/null;
                      shift; exec "$@"' sh "$run/full" \
        "$BN_BIN" node --swarm "$run/swarm.txt" --id 0 --round-timeout 100 --out "$run/full" \
        > "$run/2.log" 2>&1 || rc=$?
    bn_expect_true "jsonl on a full disk: exit status non-zero ($rc)" test "$rc" != 0
    bn_expect_true "jsonl on a full disk: one line says so" \
        test "$(grep -c "cannot write .*node-0.jsonl" "$run/2.log")" = 1
    bn_expect_true "jsonl on a full disk: it stopped after epoch 1" bash -c "! grep -q 'epoch 2:' '$run/2.log'"
else
    bn_log "no mount namespace here: the full-disk case is not run"
fi

# 3. SIGTERM while 60 s of injected delay still hold messages
mkdir -p "$run/delay"
"$BN_BIN" node --swarm "$run/swarm.txt" --id 0 --round-timeout 100 --out "$run/delay" \
    --fault-delay 60000 > "$run/3.log" 2>&1 &
pid=$!
t0=$SECONDS
until [ "$(cat "$run/delay/node-0.jsonl" 2>/dev/null | wc -l)" -ge 2 ]; do
    [ $((SECONDS - t0)) -lt 60 ] || bn_die "node 0 never finished its 2 epochs"
    kill -0 "$pid" 2>/dev/null || bn_die "node 0 exited early"
    sleep 0.1
done
sleep 0.5
bn_expect_true "node 0 is still draining its delayed messages" kill -0 "$pid"
kill -TERM "$pid"
t1=$SECONDS
rc=0
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; rc=killed; fi
if [ "$rc" != killed ]; then wait "$pid" 2>/dev/null || rc=$?; fi
bn_log "SIGTERM to exit: $((SECONDS - t1)) s"
bn_expect_true "SIGTERM during a 60 s fault-delay drain: exited within 10 s ($rc)" test "$rc" != killed
bn_expect_true "and exited 0 ($rc)" test "$rc" = 0
bn_finish
