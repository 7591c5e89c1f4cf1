# lib.sh -- helpers shared by the swarm shell tests (source it, do not run it).
#
#   . "$(dirname "$0")/lib.sh"
#   bn_init swarm_consensus            # work dir, traps, binary and data checks
#   bn_swarm run1 --nodes 5 ...        # scripts/swarm.sh into $BN_TMP/run1
#   bn_expect run1 "what" "PY-VALUE" "PY-CONDITION on v"
#   bn_finish                          # no byznode left; exit 0, or 1 on any failure
#
# Conventions: exit 77 means "skipped" (meson), never 0 for a test that did
# not run.  Every process a test starts has $BN_TMP in its command line (the
# swarm file lives there), so the leftover check and the cleanup find exactly
# our processes and nobody else's on this shared machine.  The work dir is
# removed on success and kept (path printed) on failure; BN_KEEP=1 keeps it.
set -euo pipefail

BN_SRC="${BN_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
BN_BUILD="${BN_BUILD_ROOT:-$BN_SRC/build}"
BN_BIN="$BN_BUILD/src/byznode"
# The data: $BN_DATA_DIR, else the official files of Debian's dataset-fashion-mnist.
BN_DATA="${BN_DATA_DIR:-/usr/share/datasets/fashion-mnist}"
export BN_DATA_DIR="$BN_DATA"
export OPENBLAS_NUM_THREADS=1
BN_TMP=""
BN_FAILURES=0
BN_NAME=""

bn_log() { echo "[$BN_NAME] $*" >&2; }
bn_skip() { bn_log "SKIP: $*"; exit 77; }
bn_die() { bn_log "FAIL: $*"; exit 1; }

# Our processes: those whose command line names our work dir.
bn_our_pids() { [ -n "$BN_TMP" ] && pgrep -f -- "$BN_TMP/" || true; }

# Stop whatever we left running (TERM, then KILL), by pid.
bn_kill_ours() {
    local pids
    pids="$(bn_our_pids)"
    [ -z "$pids" ] && return 0
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 30); do
        pids="$(bn_our_pids)"
        [ -z "$pids" ] && return 0
        sleep 0.1
    done
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}

# A test may define bn_cleanup_hook (e.g. to unmount something); it runs
# after our processes are stopped, and before the namespaces of
# bn_netns_lan are deleted.
bn_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    bn_kill_ours
    if declare -F bn_cleanup_hook >/dev/null; then bn_cleanup_hook || true; fi
    bn_netns_cleanup
    if [ -n "$BN_TMP" ] && [ -d "$BN_TMP" ]; then
        if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then
            [ "${BN_KEEP:-0}" = 1 ] && bn_log "kept $BN_TMP" || rm -rf "$BN_TMP"
        else
            bn_log "work dir kept for inspection: $BN_TMP"
        fi
    fi
    exit "$rc"
}

bn_init() {
    BN_NAME="$1"
    command -v python3 >/dev/null || bn_skip "python3 is needed to read summary.json"
    [ -x "$BN_BIN" ] || bn_die "no byznode binary at $BN_BIN (set BN_BUILD_ROOT)"
    [ -s "$BN_DATA/train-images-idx3-ubyte.gz" ] || [ -s "$BN_DATA/train-images-idx3-ubyte" ] \
        || bn_die "no data set in $BN_DATA (scripts/setup.sh installs dataset-fashion-mnist; or set BN_DATA_DIR)"
    BN_TMP="$(mktemp -d "${TMPDIR:-/tmp}/bn-$BN_NAME.XXXXXX")"
    trap bn_cleanup EXIT
    trap 'bn_log "interrupted"; exit 130' INT TERM
}

# bn_swarm RUN [swarm.sh options]: a local swarm into $BN_TMP/RUN, bounded
# by BN_SWARM_TIMEOUT seconds (default 90; swarm.sh stops its processes on
# TERM).  Fails the test when swarm.sh fails.
bn_swarm() {
    local run="$1"; shift
    local t0=$SECONDS rc=0
    timeout "${BN_SWARM_TIMEOUT:-90}" "$BN_SRC/scripts/swarm.sh" --build "$BN_BUILD" --no-plot --quiet \
        --out "$BN_TMP/$run" "$@" > "$BN_TMP/$run.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        tail -n 20 "$BN_TMP/$run.out" >&2 || true
        bn_die "swarm.sh $* exited with $rc"
    fi
    [ -s "$BN_TMP/$run/summary.json" ] || bn_die "$run: no summary.json"
    bn_log "$run: swarm of $((SECONDS - t0)) s: $*"
}

# Python prelude of bn_py / bn_expect (argv: run dir, expression, ...).
BN_PY_PRELUDE='import json, os, sys
run, expr = sys.argv[1], sys.argv[2]
s = json.load(open(os.path.join(run, "summary.json")))
last = s["epochs"][-1] if s["epochs"] else {}
nodes = s["nodes"]
honest = [n for n in nodes if n["role"] == "honest"]
def jl(k):
    with open(os.path.join(run, "nodes", "node-%d.jsonl" % k)) as f:
        return [json.loads(line) for line in f if line.strip()]'

# bn_py RUN EXPR: evaluate a Python expression over the run's results and
# print it.  Names: s (summary.json), last (last closed epoch), nodes
# (summary nodes), honest (honest summary nodes), jl(k) (node k's jsonl as a
# list of dicts), run (the run dir).
bn_py() {
    python3 -c "$BN_PY_PRELUDE
v = eval(expr)
print(v if isinstance(v, str) else json.dumps(v))" "$BN_TMP/$1" "$2"
}

# bn_expect RUN WHAT VALUE CONDITION: VALUE is evaluated as by bn_py, then
# CONDITION (Python, on v) decides.  Prints one ok/FAIL line; counts failures.
bn_expect() {
    local run="$1" what="$2" value="$3" cond="$4" out
    if ! out="$(python3 -c "$BN_PY_PRELUDE
cond = sys.argv[3]
try:
    v = eval(expr)
    ok = bool(eval(cond, {'v': v}))
except Exception as e:
    v, ok = 'error: %s' % e, False
print(('ok  ' if ok else 'FAIL') + ' %s = %s   (%s)' % (expr, json.dumps(v), cond))
sys.exit(0 if ok else 1)" "$BN_TMP/$run" "$value" "$cond")"; then
        BN_FAILURES=$((BN_FAILURES + 1))
    fi
    bn_log "$run: $what: $out"
}

# bn_expect_true WHAT SHELL-CONDITION...: a plain shell check.
bn_expect_true() {
    local what="$1"; shift
    if "$@"; then bn_log "ok   $what"
    else bn_log "FAIL $what"; BN_FAILURES=$((BN_FAILURES + 1)); fi
}

# ---- network namespaces (netns_swarm.sh, ssh_swarm.sh) -------------------
# bn_netns_lan SWITCH NET MEMBER...: a namespace SWITCH with a bridge and,
# for each MEMBER, a namespace with lo up and eth0 on the bridge: the first
# member NET.2/24, the k-th after it NET.(10+k-1)/24.  The veth pairs are
# made inside SWITCH with their peer moved straight into the member, so
# nothing is added to the host's own network, and no namespace has a route
# but the /24 (checked).  Returns when every eth0 is up.  Every namespace
# made is in BN_NS_CREATED; bn_cleanup kills what runs in them and deletes
# them.  The first that cannot be made skips the test (exit 77).
BN_NS_CREATED=()

bn_netns_add() {
    local err
    if ! err="$(ip netns add "$1" 2>&1)"; then
        [ ${#BN_NS_CREATED[@]} = 0 ] && bn_skip "cannot create a network namespace: $err"
        bn_die "ip netns add $1: $err"
    fi
    BN_NS_CREATED+=("$1")
    ip -n "$1" link set lo up
}

bn_netns_lan() {
    local sw="$1" net="$2" i=0 ns addr routes down; shift 2
    bn_netns_add "$sw"
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    for ns in "$@"; do
        bn_netns_add "$ns"
        ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns"
        ip -n "$sw" link set "p$i" master br0
        ip -n "$sw" link set "p$i" up
        if [ $i = 0 ]; then addr="$net.2"; else addr="$net.$((10 + i - 1))"; fi
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
        i=$((i + 1))
    done
    for ns in "$@"; do
        routes="$(ip -n "$ns" route show | grep -v "^$net.0/24 " || true)"
        [ -z "$routes" ] || bn_die "unexpected route in $ns: $routes"
    done
    # The carrier of the veth pairs takes a moment.
    for _ in $(seq 1 50); do
        down=0
        for ns in "$@"; do ip -n "$ns" link show eth0 | grep -q "state UP" || down=1; done
        [ $down = 0 ] && return 0
        sleep 0.1
    done
}

bn_netns_cleanup() {
    local ns p
    for ns in "${BN_NS_CREATED[@]}"; do
        # Anything still running in one of our namespaces is ours.
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || bn_log "could not delete namespace $ns"
    done
    BN_NS_CREATED=()
}

# bn_json_strict FILE: FILE is UTF-8 JSON with no NaN / Infinity (which
# python's json module, and so json.tool, accepts by default).
bn_json_strict() {
    python3 -c 'import json, sys
def bad(c):
    raise ValueError("non-finite number %s" % c)
json.loads(open(sys.argv[1], encoding="utf-8", errors="strict").read(), parse_constant=bad)' "$1"
}

# bn_no_leftovers: no process of ours may outlive its swarm.
bn_no_leftovers() {
    local left
    left="$(bn_our_pids)"
    if [ -n "$left" ]; then
        bn_log "FAIL processes left behind:"
        ps -o pid,cmd -p $left >&2 || true
        BN_FAILURES=$((BN_FAILURES + 1))
    else
        bn_log "ok   no byznode process left"
    fi
}

bn_finish() {
    bn_no_leftovers
    if [ "$BN_FAILURES" != 0 ]; then
        bn_log "$BN_FAILURES check(s) failed"
        exit 1
    fi
    bn_log "all checks passed"
    exit 0
}
