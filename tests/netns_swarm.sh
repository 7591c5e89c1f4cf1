#!/usr/bin/env bash
# netns_swarm.sh -- a swarm over real TCP between separate network stacks:
# the closest a single machine gets to separate hosts.
#
#   switch namespace  bnsw$$      bridge br0, one veth end per member
#   node namespaces   bnn$$-K     eth0 = 10.203.77.(10+K)/24, lo up
#   monitor namespace bnm$$       eth0 = 10.203.77.2/24,      lo up
#
# The veth pairs are created inside the switch namespace with their peer
# moved straight into the member namespace, so nothing is ever added to the
# host's own network; 10.203.77.0/24 exists only inside these namespaces and
# no namespace has a default route, so no packet can leave them.  Each node
# and the monitor run under `ip netns exec` with tcp://10.203.77.X:7100
# endpoints (the same port everywhere: separate stacks), sharing nothing but
# the swarm file -- and, as separate hosts would, each a copy of the data set
# (here the same directory).  Two runs: plain TCP, then CURVE (keys made with
# byznode keygen, public keys in the swarm file, one secret key per node).
# Verified: every node in summary.json at the last epoch, consensus error
# < 1e-3, accuracy > 0.6, MODEL bytes really crossed the links.
# Without root / namespace support: exit 77 (skipped) with the reason.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BN_NAME=netns_swarm

command -v ip >/dev/null || bn_skip "the ip command (iproute2) is not installed"
[ "$(id -u)" = 0 ] || bn_skip "creating network namespaces needs root (uid is $(id -u))"
bn_init netns_swarm

n=3; net=10.203.77; port=7100
sw="bnsw$$"; mon="bnm$$"; members=("$mon")
for k in $(seq 0 $((n - 1))); do members+=("bnn$$-$k"); done
bn_netns_lan "$sw" "$net" "${members[@]}"
bn_log "namespaces: ${BN_NS_CREATED[*]}"

# run NAME [curve]: write the swarm file, start monitor + nodes, wait.
run() {
    local name="$1" curve="${2:-}" dir="$BN_TMP/$1" k
    mkdir -p "$dir/nodes" "$dir/keys"
    pub() { [ -n "$curve" ] && awk '/^public-key/ {print $2}' "$dir/keys/$1.key" || true; }
    if [ -n "$curve" ]; then
        for k in $(seq 0 $((n - 1))) monitor; do "$BN_BIN" keygen --out "$dir/keys/$k.key"; done
    fi
    {
        echo "swarm netns-$name-$$"
        echo "monitor tcp://$net.2:$port $(pub monitor)"
        echo "option seed 5"
        echo "option epochs 2"
        echo "option model logreg"
        echo "option rule mean"
        echo "option p 0.6"
        echo "option batch 600"
        echo "option eval-subset 1000"
        echo "option round-timeout 5000"
        echo "option data $BN_DATA"
        for k in $(seq 0 $((n - 1))); do echo "node $k tcp://$net.$((10 + k)):$port $(pub "$k")"; done
    } > "$dir/swarm.txt"

    local margs=(monitor --swarm "$dir/swarm.txt" --out "$dir" --quiet)
    [ -n "$curve" ] && margs+=(--key "$dir/keys/monitor.key")
    ip netns exec "$mon" "$BN_BIN" "${margs[@]}" 2> "$dir/monitor.log" &
    local mpid=$! pids=()
    for k in $(seq 0 $((n - 1))); do
        local nargs=(node --swarm "$dir/swarm.txt" --id "$k" --out "$dir/nodes")
        [ -n "$curve" ] && nargs+=(--key "$dir/keys/$k.key")
        ip netns exec "bnn$$-$k" "$BN_BIN" "${nargs[@]}" > "$dir/node-$k.log" 2>&1 &
        pids+=($!)
    done
    local t0=$SECONDS rc=0
    for k in "${!pids[@]}"; do
        while kill -0 "${pids[$k]}" 2>/dev/null && [ $((SECONDS - t0)) -lt 90 ]; do sleep 0.1; done
        kill -0 "${pids[$k]}" 2>/dev/null && bn_die "$name: node $k still running after 90 s"
        wait "${pids[$k]}" || { rc=$?; bn_log "$name: node $k exited with $rc:"; tail -n 5 "$dir/node-$k.log" >&2; }
    done
    # The monitor exits by itself once it has every report of every epoch.
    for _ in $(seq 1 50); do kill -0 $mpid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $mpid 2>/dev/null; then
        bn_log "$name: monitor still running 5 s after the nodes ended; stopping it"
        kill -TERM $mpid
    fi
    wait $mpid || true
    [ $rc = 0 ] || bn_die "$name: a node failed"
    [ -s "$dir/summary.json" ] || bn_die "$name: no summary.json (see $dir/monitor.log)"
    bn_log "$name: swarm of $((SECONDS - t0)) s over tcp://$net.{10..$((9 + n))}:$port"

    bn_expect "$name" "epochs closed" "len(s['epochs'])" "v == 2"
    bn_expect "$name" "nodes at the last epoch" \
        "sorted(x['id'] for x in nodes if x['last_epoch'] == 2 and not x['failed'])" "v == list(range($n))"
    bn_expect "$name" "honest reports, last epoch" "last['honest_reported']" "v == $n"
    bn_expect "$name" "consensus error, last epoch" "last['consensus_error']" "v < 1e-3"
    bn_expect "$name" "mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
    bn_expect "$name" "MODEL bytes received per node, epoch 1" \
        "[jl(k)[0]['bytes_received'] for k in range($n)]" "min(v) > 0"
    bn_expect "$name" "messages dropped by nodes" \
        "sum(sum(r['dropped'].values()) for k in range($n) for r in jl(k))" "v == 0"
    bn_expect "$name" "reports dropped by the monitor" "s['dropped_reports']" "v == 0"
}

run plain
run curve curve
bn_finish
