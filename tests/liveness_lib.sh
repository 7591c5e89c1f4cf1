# liveness_lib.sh -- a hand-started swarm for the liveness tests
# (swarm_stall.sh, swarm_restart.sh, swarm_late_start.sh); source it after
# lib.sh.
#
#   lv_start N EPOCHS [extra "option" lines...]   monitor + N nodes into $LV_RUN
#                                                (all but node $LV_HOLD, if set)
#   lv_start_node ID [LOG]                       (re)start node ID in the background
#   lv_wait_epochs ID K                          until node ID's jsonl has K lines
#   lv_wait_all                                  every node exits; sets LV_RC
#   lv_table N                                   per-node figures to the log
#   lv_rejoin_checks N VICTIM EPOCHS             the checks of every rejoin case
#
# Every process has $BN_TMP in its command line (the swarm file lives there),
# so lib.sh's cleanup and leftover check find exactly them.  Wall time of the
# whole run is in LV_WALL after lv_wait_all.
LV_RUN=""
LV_PIDS=()
LV_MON=""
LV_T0=0

lv_node_args() { echo node --swarm "$LV_RUN/swarm.txt" --id "$1" --out "$LV_RUN/nodes"; }

lv_start() {
    local n="$1" epochs="$2"; shift 2
    LV_RUN="$BN_TMP/run"
    ln -sfn "$LV_RUN" "$BN_TMP/r"
    mkdir -p "$LV_RUN/nodes" "$LV_RUN/logs"
    {
        echo "swarm $BN_NAME-$$"
        echo "monitor ipc://$LV_RUN/m"
        echo "option seed 3"
        echo "option epochs $epochs"
        echo "option model logreg"
        echo "option p 1"
        echo "option rule ${BN_LV_RULE:-mean}"   # BN_LV_RULE: try another rule by hand
        echo "option eval-subset 1000"
        echo "option data $BN_DATA"
        for line in "$@"; do echo "option $line"; done
        for i in $(seq 0 $((n - 1))); do echo "node $i ipc://$LV_RUN/$i"; done
    } > "$LV_RUN/swarm.txt"
    LV_T0=$SECONDS
    "$BN_BIN" monitor --swarm "$LV_RUN/swarm.txt" --out "$LV_RUN" --grace 30 --quiet \
        > "$LV_RUN/logs/monitor.log" 2>&1 &
    LV_MON=$!
    LV_PIDS=()
    for i in $(seq 0 $((n - 1))); do
        [ "$i" = "${LV_HOLD:-}" ] || lv_start_node "$i"
    done
}

# Node ID with the swarm's arguments, its output into LOG (default
# logs/node-ID.log); its pid into LV_PIDS[ID].
lv_start_node() {
    local id="$1" log="${2:-$LV_RUN/logs/node-$1.log}"
    # shellcheck disable=SC2046
    "$BN_BIN" $(lv_node_args "$id") > "$log" 2>&1 &
    LV_PIDS[$id]=$!
}

lv_lines() { [ -f "$LV_RUN/nodes/node-$1.jsonl" ] && wc -l < "$LV_RUN/nodes/node-$1.jsonl" || echo 0; }

lv_wait_epochs() {
    local id="$1" k="$2" t0=$SECONDS
    until [ "$(lv_lines "$id")" -ge "$k" ]; do
        [ $((SECONDS - t0)) -lt 120 ] || bn_die "node $id never finished epoch $k"
        kill -0 "${LV_PIDS[$id]}" 2>/dev/null || bn_die "node $id exited early"
        sleep 0.05
    done
}

lv_wait_all() {
    LV_RC=0
    local i
    for i in "${!LV_PIDS[@]}"; do
        for _ in $(seq 1 1500); do kill -0 "${LV_PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
        if ! wait "${LV_PIDS[$i]}"; then
            bn_log "node $i exited with an error:"; tail -n 3 "$LV_RUN/logs/node-$i.log" >&2; LV_RC=1
        fi
    done
    LV_WALL=$((SECONDS - LV_T0))
    for _ in $(seq 1 100); do kill -0 "$LV_MON" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$LV_MON" 2>/dev/null || true
    wait "$LV_MON" 2>/dev/null || true
}

# One line per node: missing models per epoch, and the liveness counters.
lv_table() {
    local n="$1" k
    for k in $(seq 0 $((n - 1))); do
        bn_log "node $k: missing per epoch $(bn_py r "[d['missing'] for d in jl($k)]")," \
            "timed out $(bn_py r "[d['rounds_timed_out'] for d in jl($k)]")," \
            "skipped $(bn_py r "[d.get('rounds_skipped') for d in jl($k)]")," \
            "given up $(bn_py r "[d.get('peers_given_up') for d in jl($k)]")," \
            "restored $(bn_py r "[d.get('peers_restored') for d in jl($k)]")," \
            "t_epoch $(bn_py r "[round(d['t_epoch'], 1) for d in jl($k)]")"
    done
}

# The checks every rejoin case makes: every node ran to the last epoch and
# none is failed; from the catch-up on nobody misses a model (the victim and
# its neighbours miss none in the last 3 epochs); the liveness story
# (lv_liveness_checks); the swarm did not spend its time in timed-out
# rounds; the victim learned; every honest node reported the last epoch.
lv_rejoin_checks() {
    local n="$1" victim="$2" epochs="$3"
    bn_expect r "every node's last epoch" "[x['last_epoch'] for x in nodes]" "v == [$epochs] * $n"
    bn_expect r "no node marked failed" "[x['id'] for x in nodes if x['failed']]" "v == []"
    bn_expect r "victim's missing models, last 3 epochs" "[d['missing'] for d in jl($victim)[-3:]]" "v == [0, 0, 0]"
    bn_expect r "neighbours' missing models, last 3 epochs" \
        "[d['missing'] for k in range($n) if k != $victim for d in jl(k)[-3:]]" "v == [0] * $((3 * (n - 1)))"
    lv_liveness_checks "$n" "$victim"
    bn_expect r "rounds timed out, all nodes (each costs 1 s)" \
        "sum(d['rounds_timed_out'] for k in range($n) for d in jl(k))" "v <= 24"
    bn_expect r "victim's final accuracy" "jl($victim)[-1]['accuracy']" "v > 0.6"
    bn_expect r "honest reports in the last epoch" "last['honest_reported']" "v == $n"
}

# The liveness story in the logs (and in the reports' counters when the
# report codec carries them): the victim skipped ahead, every other node
# gave it up and took it back.
lv_liveness_checks() {
    local n="$1" victim="$2" k logs=("$LV_RUN/logs/node-$2"*.log)
    bn_expect_true "victim logged that it skipped ahead to the swarm" \
        grep -q "the swarm is ahead" "${logs[@]}"
    bn_expect_true "victim logged that it takes part again" \
        grep -q "caught up with the swarm" "${logs[@]}"
    for k in $(seq 0 $((n - 1))); do
        [ "$k" = "$victim" ] && continue
        bn_expect_true "node $k gave node $victim up" grep -q "giving up on node $victim " "$LV_RUN/logs/node-$k.log"
        bn_expect_true "node $k took node $victim back" grep -q "node $victim is back" "$LV_RUN/logs/node-$k.log"
    done
    if [ "$(bn_py r "'rounds_skipped' in jl($victim)[0]")" = true ]; then
        bn_expect r "victim's rounds_skipped" "sum(d['rounds_skipped'] for d in jl($victim))" "v > 0"
        bn_expect r "others' peers_given_up" \
            "[sum(d['peers_given_up'] for d in jl(k)) for k in range($n) if k != $victim]" "min(v) >= 1"
        bn_expect r "others' peers_restored" \
            "[sum(d['peers_restored'] for d in jl(k)) for k in range($n) if k != $victim]" "min(v) >= 1"
    fi
}
