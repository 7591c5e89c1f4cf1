#!/usr/bin/env bash
# monitor_limits.sh -- the monitor on its own, fed by tests/monitor_forge:
#   * a node that never sends its reports: the monitor exits by itself once
#     that node's deadline passed (R round timeouts + grace per epoch), with
#     the node failed and every epoch closed from the others' reports;
#   * one 200 MB frame: refused by libzmq before it is buffered (the
#     monitor's peak RSS stays far below it), and the run goes on;
#   * the monitor killed after epoch 1 and restarted: both epochs in its
#     summary (journal replay), with the figures of case 2 (the same reports,
#     no restart);
#   * the monitor stopped (SIGTERM) while every report is still on its way:
#     it reads them all before it writes its summary;
#   * disk full (a 40 KB tmpfs this test mounts): the monitor says so on one
#     line and exits non-zero, summary.json keeps its last good content;
#   * an --out that cannot be written: one line, exit non-zero.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bn_init monitor_limits
FORGE="$BN_BUILD/tests/monitor_forge"
[ -x "$FORGE" ] || bn_die "no $FORGE"

n=4
swarm="$BN_TMP/swarm.txt"
{
    echo "swarm limits-$$"
    echo "monitor ipc://$BN_TMP/m"
    echo "option model logreg"
    echo "option epochs 2"
    echo "option seed 1"
    echo "option round-timeout 100"
    echo "option train-size 800"
    echo "option batch 100"
    for i in $(seq 0 $((n - 1))); do echo "node $i ipc://$BN_TMP/n$i"; done
} > "$swarm"

# monitor DIR [args]: starts the monitor in the background; $mon_pid.
monitor() {
    local dir="$1"; shift
    "$BN_BIN" monitor --swarm "$swarm" --out "$dir" --quiet "$@" 2> "$BN_TMP/$(basename "$dir").log" &
    mon_pid=$!
}
# wait_exit SECONDS: rc = the monitor's exit status, or 124 if it is still
# running after SECONDS (it is then left to the cleanup).
wait_exit() {
    rc=124
    for _ in $(seq 1 $(($1 * 10))); do
        if ! kill -0 "$mon_pid" 2>/dev/null; then
            rc=0; wait "$mon_pid" || rc=$?; return 0
        fi
        sleep 0.1
    done
}
reports() { local e="$1"; shift; for i in "$@"; do echo "genuine:$i:$e"; done; }

# 1. node 3 never reports: R = 2, budget 0.2 + 1 s, deadline of its last
#    epoch ~2.6 s after the start.
monitor "$BN_TMP/silent" --grace 1
t0=$SECONDS
"$FORGE" --swarm "$swarm" $(reports 1 0 1 2) $(reports 2 0 1 2) || bn_die "forger failed"
wait_exit 30
bn_expect_true "silent node: the monitor exited by itself with 0 (got $rc after $((SECONDS - t0)) s)" test "$rc" = 0
bn_expect silent "epochs closed" "len(s['epochs'])" "v == 2"
bn_expect silent "honest reports per epoch" "[e['honest_reported'] for e in s['epochs']]" "v == [3, 3]"
bn_expect silent "node states" "[x['state'] for x in nodes]" "v == ['finished'] * 3 + ['failed']"
bn_expect_true "silent: summary.json is valid JSON" bn_json_strict "$BN_TMP/silent/summary.json"

# 2. a 200 MB frame, then the genuine reports (a long grace: sending 200 MB
#    takes a while on a loaded machine)
monitor "$BN_TMP/big" --grace 60
"$FORGE" --swarm "$swarm" big:0:200 || bn_die "forger failed (big)"
sleep 1
hwm_kb="$(awk '/^VmHWM/ {print $2}' "/proc/$mon_pid/status" 2>/dev/null || echo 0)"
bn_log "monitor peak RSS after a 200 MB frame: $((hwm_kb / 1024)) MB"
bn_expect_true "200 MB frame: the monitor's peak RSS stays below 100 MB ($((hwm_kb / 1024)) MB)" \
    test "$hwm_kb" -gt 0 -a "$hwm_kb" -lt 102400
"$FORGE" --swarm "$swarm" $(reports 1 0 1 2 3) $(reports 2 0 1 2 3) || bn_die "forger failed"
wait_exit 30
bn_expect_true "200 MB frame: the run went on, exit 0 (got $rc)" test "$rc" = 0
bn_expect big "every report of both epochs" "[e['honest_reported'] for e in s['epochs']]" "v == [4, 4]"

# 2b. the monitor killed (SIGKILL) after epoch 1 and started again on the
#     same directory: its summary has both epochs (journal replay)
monitor "$BN_TMP/restart" --grace 60
"$FORGE" --swarm "$swarm" $(reports 1 0 1 2 3) || bn_die "forger failed"
for _ in $(seq 1 100); do
    grep -q '"epoch": 1,' "$BN_TMP/restart/summary.json" 2>/dev/null && break; sleep 0.1
done
kill -KILL "$mon_pid"; wait "$mon_pid" 2>/dev/null || true
monitor "$BN_TMP/restart" --grace 60
"$FORGE" --swarm "$swarm" $(reports 2 0 1 2 3) || bn_die "forger failed"
wait_exit 30
bn_expect_true "restart: the second monitor exited by itself with 0 (got $rc)" test "$rc" = 0
bn_expect_true "restart: it resumed from its journal" grep -q "resumed from" "$BN_TMP/restart.log"
bn_expect restart "both epochs, every report" "[e['honest_reported'] for e in s['epochs']]" "v == [4, 4]"
bn_expect restart "every node's two reports" "[len(x['epochs']) for x in nodes]" "v == [2] * $n"
# The same genuine reports as case 2 (which had no restart): the same figures.
fields="['epoch', 'mean_accuracy', 'min_accuracy', 'max_accuracy', 'consensus_error', 'byzantine_weight', 'honest_reported', 'models']"
ref="$(bn_py big "[[e[k] for k in $fields] for e in s['epochs']]")"
bn_expect restart "every epoch, the figures of the run without a restart" \
    "[[e[k] for k in $fields] for e in s['epochs']]" "v == $ref"
bn_expect_true "restart: summary.json is valid JSON" bn_json_strict "$BN_TMP/restart/summary.json"

# 2c. stopped (SIGTERM) with reports on their way: it reads them before it
#     writes its summary.  The monitor is frozen (SIGSTOP) while the forger
#     sends every report of both epochs, so none has been read when the
#     SIGTERM arrives; it is woken with both pending.  Without the drain it
#     would stop after at most the one read it was in.
monitor "$BN_TMP/drain" --grace 600
for _ in $(seq 1 100); do [ -s "$BN_TMP/drain/summary.json" ] && break; sleep 0.1; done
kill -STOP "$mon_pid"
"$FORGE" --swarm "$swarm" --linger 30000 $(reports 1 0 1 2 3) $(reports 2 0 1 2 3) &
forge_pid=$!
sleep 0.5
kill -TERM "$mon_pid"
kill -CONT "$mon_pid"
wait_exit 30
frc=0; wait "$forge_pid" || frc=$?
bn_expect_true "drain: the forger's reports were flushed (exit $frc)" test "$frc" = 0
bn_expect_true "drain: the stopped monitor exited with 0 (got $rc)" test "$rc" = 0
bn_expect_true "drain: it says what it read after the stop" grep -q "already on their way" "$BN_TMP/drain.log"
bn_expect drain "every report of both epochs, read after the stop" \
    "[e['honest_reported'] for e in s['epochs']]" "v == [4, 4]"
bn_expect drain "no node failed" "[x['state'] for x in nodes]" "v == ['finished'] * $n"

# 3. an --out that cannot be written
touch "$BN_TMP/plainfile"
for out in "$BN_TMP/plainfile" "$BN_TMP/plainfile/sub"; do
    rc=0
    timeout 20 "$BN_BIN" monitor --swarm "$swarm" --out "$out" --quiet 2> "$BN_TMP/unwritable.log" || rc=$?
    bn_expect_true "unwritable --out $out: exit non-zero (got $rc), one line" \
        test "$rc" != 0 -a "$rc" != 124 -a "$(wc -l < "$BN_TMP/unwritable.log")" = 1
done

# 4. disk full (last: it may skip), twice: (a) no byte left: the journal append fails first,
#    or, when pages the monitor was still freeing (the summary.json it had just
#    replaced) come back after the filler, the result file does: either is one
#    clear line (seen under load, 2 Dec 2026);
#    (b) one 4 KB page left: the journal's epoch-2 records (~2.3 KB, its
#    second page) still fit, the new summary.json (~9 KB) does not, so the
#    failure is the result file's own (src/outfile.c).
disk_full() {
    local case="$1" leave_kb="$2" what="$3"
    mkdir -p "$BN_TMP/full"
    mount -t tmpfs -o size=40k tmpfs "$BN_TMP/full" || bn_die "mount -t tmpfs failed"
    monitor "$BN_TMP/full" --grace 60
    "$FORGE" --swarm "$swarm" $(reports 1 0 1 2 3) || bn_die "forger failed"
    for _ in $(seq 1 100); do
        grep -q '"epoch": 1,' "$BN_TMP/full/summary.json" 2>/dev/null && break; sleep 0.1
    done
    cp "$BN_TMP/full/summary.json" "$BN_TMP/good.json"
    local avail
    avail="$(df -k --output=avail "$BN_TMP/full" | tail -n 1 | tr -d ' ')"
    dd if=/dev/zero of="$BN_TMP/full/filler" bs=1k count=$((avail - leave_kb)) 2>/dev/null || true
    "$FORGE" --swarm "$swarm" $(reports 2 0 1 2 3) || bn_die "forger failed"
    wait_exit 30
    bn_expect_true "disk full ($case): the monitor exits non-zero (got $rc)" test "$rc" != 0 -a "$rc" != 124
    bn_expect_true "disk full ($case): one error line, $what: $(tr '\n' ' ' < "$BN_TMP/full.log")" \
        test "$(grep -c 'No space left on device' "$BN_TMP/full.log")" = 1 -a \
             "$(grep -c "$what" "$BN_TMP/full.log")" = 1
    bn_expect_true "disk full ($case): summary.json is the last good one" cmp -s "$BN_TMP/good.json" "$BN_TMP/full/summary.json"
    bn_expect_true "disk full ($case): summary.json is valid JSON" bn_json_strict "$BN_TMP/full/summary.json"
    bn_expect_true "disk full ($case): no temporary file left" \
        test -z "$(ls "$BN_TMP/full" | grep -E '\.[A-Za-z0-9]{6}$')"
    umount "$BN_TMP/full"
}
mkdir -p "$BN_TMP/probe"
if ! mount -t tmpfs -o size=40k tmpfs "$BN_TMP/probe" 2>/dev/null; then
    if [ "$BN_FAILURES" = 0 ]; then bn_skip "cannot mount a tmpfs here (the disk-full cases need it)"; fi
    bn_finish
fi
umount "$BN_TMP/probe"
bn_cleanup_hook() { umount "$BN_TMP/full" 2>/dev/null || true; }
disk_full "no byte left" 0 "monitor.journal: write failed\\|summary.json: write failed"
disk_full "one page left" 4 "summary.json: write failed"

bn_finish
