#!/usr/bin/env bash
# swarm.sh -- spawn a local byznode swarm and its monitor; collect everything
# of the run in one directory; stop every process it started on exit, error
# or Ctrl-C.
#
#   scripts/swarm.sh [options]          (no options: 10 nodes, 3 epochs, mean)
#
# Everything is checked before any process starts: every option and name once
# (one line naming the bad value, the valid choices and a did-you-mean), and
# the swarm's constraints (--byzantine below --nodes, --min-degree below
# --nodes, a topology that can be drawn) with `byznode check`, i.e. the real
# option table.  A node or attacker that exits with an error fails the run at
# once and stops the rest; "done" is printed only with a summary.json.
#
# swarm.sh's own options (default):
#   --nodes N (10)            swarm size, 1..10000
#   --byzantine B (0)         Byzantine nodes, 0..N-1 (which ones: byznode roles)
#   --attack NAME (dlie)      what they send (byznode attacks lists the names)
#   --out DIR (runs/<time>)   run directory; one holding a run is refused
#   --force                   reuse --out DIR: its previous run is deleted
#   --resume                  reuse --out DIR and resume its nodes from their
#                             checkpoints (a run made with --checkpoint-every K)
#   --transport ipc|tcp (ipc) --base-port PORT (25600; nodes use PORT+1..PORT+N)
#   --curve                   CURVE keys for every node and the monitor
#   --fail-nodes K (0)        kill K honest nodes (the last ids) after
#   --fail-at-epoch E (1)     epoch E (1..epochs-1)
#   --node-opt "--NAME V ..." extra arguments on every node's command line
#   --build DIR (build)  --no-plot  --quiet  --help
# Every other --NAME VALUE (or --NAME for a flag) is a node option, written to
# the swarm file for every node: the learning, rule and attack parameters
# (--rule similarity --c 5, --z 1.5, ...), the topology, faults, timeouts.
# swarm.sh's defaults differ from byznode's in: --epochs 3.  The full list,
# with defaults and ranges, follows in --help (from byznode node --help).
#
# Output: DIR/summary.json, DIR/epochs.csv, DIR/*.png, DIR/swarm.txt,
# DIR/nodes/node-K.jsonl, DIR/logs/node-K.log, DIR/monitor.log.
set -euo pipefail
# The whole script is one function, called on the last line, so that bash has
# read all of it before it runs any of it: editing the file during a run
# cannot change the running script.
main() {
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
own_options="nodes byzantine attack out force resume transport base-port curve fail-nodes fail-at-epoch node-opt build no-plot quiet help"

die() { echo "swarm.sh: $*" >&2; exit 2; }

# Levenshtein-closest words of $2... to $1, when close enough to be a typo
# (the rule of bn_options_suggest: 1 edit up to 4 letters, else len/3, >= 2).
suggest() {
    local word="$1"; shift
    printf '%s\n' "$@" | awk -v w="$word" '
        function dist(a, b,   i, j, la, lb, d, c) {
            la = length(a); lb = length(b)
            for (i = 0; i <= la; i++) d[i, 0] = i
            for (j = 0; j <= lb; j++) d[0, j] = j
            for (i = 1; i <= la; i++) for (j = 1; j <= lb; j++) {
                c = d[i-1, j-1] + (substr(a, i, 1) != substr(b, j, 1))
                if (d[i-1, j] + 1 < c) c = d[i-1, j] + 1
                if (d[i, j-1] + 1 < c) c = d[i, j-1] + 1
                d[i, j] = c
            }
            return d[la, lb]
        }
        { n++; name[n] = $0; dd[n] = dist(w, $0); if (n == 1 || dd[n] < best) best = dd[n] }
        END {
            len = length(w); lim = len <= 4 ? 1 : int(len / 3); if (len > 4 && lim < 2) lim = 2
            if (best > lim) exit
            s = ""; for (i = 1; i <= n; i++) if (dd[i] == best) s = s (s == "" ? "" : " or ") name[i]
            print s
        }'
}
hint() { local s; s="$(suggest "$@")"; [ -z "$s" ] || printf ' (did you mean %s?)' "$s"; }
opt_hint() {  # hint over option names, with their dashes
    local s; s="$(suggest "$@")"; [ -z "$s" ] || printf ' (did you mean --%s?)' "${s// or / or --}"; }
uint() {  # uint NAME VALUE MIN MAX
    [[ "$2" =~ ^[0-9]+$ ]] && [ "${#2}" -le 9 ] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] \
        || die "--$1 '$2': not an integer in $3..$4"
}

nodes=10; byz=0; attack=dlie; attack_given=0; out=""; force=0; resume=0
transport=ipc; base_port=25600; curve=0; fail_nodes=0; fail_at=1; plot=1; quiet=0
build="$here/build"; node_opts=(); opts=(); help=0
while [ $# -gt 0 ]; do
    arg="$1"; shift
    case "$arg" in
        --*=*) name="${arg%%=*}"; name="${name#--}"; val="${arg#*=}"; has_val=1 ;;
        --?*)  name="${arg#--}"; val=""; has_val=0 ;;
        -h)    name=help; has_val=0 ;;
        *)     die "unexpected argument '$arg' (options are --name value; see --help)" ;;
    esac
    case "$name" in
        force|resume|curve|no-plot|quiet|help)
            [ "$has_val" = 0 ] || die "--$name takes no value"
            case "$name" in force) force=1 ;; resume) resume=1 ;; curve) curve=1 ;;
                            no-plot) plot=0 ;; quiet) quiet=1 ;; help) help=1 ;; esac ;;
        nodes|byzantine|attack|out|transport|base-port|fail-nodes|fail-at-epoch|node-opt|build)
            if [ "$has_val" = 0 ]; then [ $# -gt 0 ] || die "--$name needs a value"; val="$1"; shift; fi
            case "$name" in
                nodes) nodes="$val" ;; byzantine) byz="$val" ;; attack) attack="$val"; attack_given=1 ;;
                out) out="$val" ;; transport) transport="$val" ;; base-port) base_port="$val" ;;
                fail-nodes) fail_nodes="$val" ;; fail-at-epoch) fail_at="$val" ;; build) build="$val" ;;
                node-opt) read -r -a more <<< "$val"; node_opts+=("${more[@]}") ;;
            esac ;;
        *)  # a node option: a value follows unless the next word is an option
            if [ "$has_val" = 0 ]; then
                if [ $# -gt 0 ] && [[ "$1" != --* ]]; then val="$1"; shift; else val=true; fi
            fi
            [ -n "$val" ] || die "--$name: empty value"
            [[ "$val" != *[[:space:]]* ]] || die "--$name '$val': values cannot contain blanks"
            for ((k = 0; k < ${#opts[@]}; k += 2)); do
                [ "${opts[k]}" != "$name" ] || die "--$name given twice ('${opts[k+1]}' and '$val')"
            done
            opts+=("$name" "$val") ;;
    esac
done

bin="$build/src/byznode"
if [ "$help" = 1 ]; then
    sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    echo
    if [ -x "$bin" ]; then
        echo "Node options (defaults and ranges; [swarm-wide] must agree on every host):"
        "$bin" node --help | grep '^  --'
        echo
        echo "Rules and attacks: $bin rules; $bin attacks"
    else
        echo "(build byznode -- scripts/setup.sh -- to list the node options here)"
    fi
    exit 0
fi

# ---- swarm.sh's own values ------------------------------------------------
uint nodes "$nodes" 1 10000
uint byzantine "$byz" 0 $((nodes - 1))
case "$transport" in ipc|tcp) ;; *) die "--transport '$transport': not ipc or tcp$(hint "$transport" ipc tcp)" ;; esac
uint base-port "$base_port" 1 $((65535 - nodes))
uint fail-nodes "$fail_nodes" 0 $((nodes - byz))
[ "$force" = 0 ] || [ "$resume" = 0 ] || die "--force and --resume exclude each other"
opt_value() {  # the value given for node option $1, else $2
    for ((k = 0; k < ${#opts[@]}; k += 2)); do [ "${opts[k]}" = "$1" ] && { echo "${opts[k+1]}"; return; }; done
    echo "$2"
}
epochs="$(opt_value epochs 3)"
if [ "$fail_nodes" -gt 0 ]; then
    [[ "$epochs" =~ ^[0-9]+$ ]] && [ "$epochs" -ge 2 ] || die "--fail-nodes needs --epochs >= 2 (got '$epochs')"
    uint fail-at-epoch "$fail_at" 1 $((epochs - 1))
fi
# Node options that are swarm.sh's business, not the swarm file's.
for ((k = 0; k < ${#opts[@]}; k += 2)); do
    case "${opts[k]}" in
        id|swarm|key) die "--${opts[k]} is set by swarm.sh for each node" ;;
    esac
done

# ---- the run directory ----------------------------------------------------
[ -n "$out" ] || out="$here/runs/$(date +%Y%m%d-%H%M%S)-n${nodes}-$(opt_value rule mean)"
has_run() { [ -e "$1/swarm.txt" ] || [ -e "$1/summary.json" ] || [ -d "$1/nodes" ]; }
if [ "$resume" = 1 ]; then
    compgen -G "$out/nodes/checkpoint-*.bin" >/dev/null \
        || die "--resume: no checkpoints in $out/nodes (run with --checkpoint-every K to make them)"
elif has_run "$out" && [ "$force" = 0 ]; then
    die "--out $out holds a previous run: --force deletes it, --resume continues it from its checkpoints"
fi

# ---- build and data -------------------------------------------------------
if [ ! -x "$bin" ]; then
    "$here/scripts/setup.sh" --build "$build" >&2
fi
# The official data set's checksums (unless --data names another copy), and
# an uncompressed copy of it the nodes read instead of the .gz files (the
# same bytes, checked; saves each node inflating them: fetch_data.sh).
# BN_DATA_UNPACKED=off reads the .gz files themselves.
data_default="${BN_DATA_DIR:-/usr/share/datasets/fashion-mnist}"
if [ "$(opt_value data "")" = "" ]; then
    "$here/scripts/fetch_data.sh" 2>/dev/null || "$here/scripts/fetch_data.sh"
    unpacked="${BN_DATA_UNPACKED:-$here/data/fashion-mnist-official}"
    if [ "$unpacked" != off ]; then
        unpack_log="$(mktemp)"
        if got="$("$here/scripts/fetch_data.sh" --unpack "$unpacked" "$data_default" 2>"$unpack_log")"; then
            data_default="$got"
        else
            echo "swarm.sh: warning: no uncompressed copy ($(tail -n 1 "$unpack_log")); the nodes read the .gz files" >&2
        fi
        rm -f "$unpack_log"
    fi
fi

# A killed node costs its neighbours two round timeouts before they stop
# waiting for it; with --fail-nodes a shorter default keeps that to seconds.
if [ "$fail_nodes" -gt 0 ] && [ "$(opt_value round-timeout "")" = "" ]; then
    opts+=(round-timeout 5000)
fi
# swarm.sh's defaults where byznode's differ or a run needs one.
[ "$(opt_value epochs "")" != "" ] || opts+=(epochs 3)
[ "$(opt_value data "")" != "" ] || opts+=(data "$data_default")
opts+=(byzantine "$byz")

# Sockets (and the nodes' shared-memory rings, src/shm.h, which go next to
# them on a tmpfs) in /dev/shm when there is one: the cleanup below then
# removes a killed node's ring too.
tmp_root="${TMPDIR:-/tmp}"
[ -n "${TMPDIR:-}" ] || { [ -d /dev/shm ] && [ -w /dev/shm ] && tmp_root=/dev/shm; }
sockdir="$(mktemp -d "$tmp_root/bzn.XXXXXX")"
pids=(); monitor_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local all=("${pids[@]}") alive=()
    [ -n "$monitor_pid" ] && all+=("$monitor_pid")
    for pid in "${all[@]}"; do kill -TERM "$pid" 2>/dev/null && alive+=("$pid") || true; done
    for _ in $(seq 1 50); do
        local any=0
        for pid in "${alive[@]}"; do kill -0 "$pid" 2>/dev/null && any=1; done
        [ $any = 0 ] && break
        sleep 0.1
    done
    for pid in "${alive[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$sockdir"
    exit $rc
}
trap cleanup EXIT
trap 'echo "swarm.sh: interrupted" >&2; exit 130' INT TERM

endpoint() {
    if [ "$transport" = tcp ]; then echo "tcp://127.0.0.1:$((base_port + $1 + 1))"
    else echo "ipc://$sockdir/$1"; fi
}
monitor_ep="$( [ "$transport" = tcp ] && echo "tcp://127.0.0.1:$base_port" || echo "ipc://$sockdir/m")"
# A resumed run keeps its swarm's name (the monitor's journal and the nodes'
# checkpoints belong to that swarm), a new one gets its own.
swarm_name="local-$(opt_value seed 1)-$$"
if [ "$resume" = 1 ] && [ -s "$out/swarm.txt" ]; then
    swarm_name="$(awk '$1 == "swarm" { print $2; exit }' "$out/swarm.txt")"
fi
pubkey() { [ "$curve" = 1 ] && awk '/^public-key/ {print $2}' "$keydir/$1.key" || true; }
swarm_file() {
    echo "# byznode swarm file written by scripts/swarm.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "swarm $swarm_name"
    echo "monitor $monitor_ep $(pubkey monitor)"
    for ((k = 0; k < ${#opts[@]}; k += 2)); do echo "option ${opts[k]} ${opts[k+1]}"; done
    for i in $(seq 0 $((nodes - 1))); do echo "node $i $(endpoint "$i") $(pubkey "$i")"; done
}

# ---- every option and constraint, with the real option table ---------------
# An unknown name: a did-you-mean over swarm.sh's own and the node options.
node_names="$("$bin" node --help | sed -n 's/^  --\([a-z0-9-]*\).*/\1/p')"
for ((k = 0; k < ${#opts[@]}; k += 2)); do
    n="${opts[k]}"
    if ! grep -qx -- "$n" <<< "$node_names"; then
        # shellcheck disable=SC2086
        die "unknown option --$n$(opt_hint "$n" $own_options $node_names) (see --help)"
    fi
done
keydir="$sockdir/nokeys"; curve_real="$curve"; curve=0
swarm_file > "$sockdir/check.txt"
curve="$curve_real"
check() {
    local msg
    if ! msg="$("$bin" check --swarm "$sockdir/check.txt" --id 0 "$@" "${node_opts[@]}" 2>&1 >/dev/null)"; then
        msg="$(head -n 1 <<< "$msg" | sed 's/^byznode check: //; s/^swarm file: //')"
        die "$msg"
    fi
}
check
if [ "$byz" -gt 0 ] || [ "$attack_given" = 1 ]; then
    check --attack "$attack"
fi
byz_ids="$("$bin" roles --nodes "$nodes" --byzantine "$byz" --seed "$(opt_value seed 1)")"
is_byz() { [[ " $byz_ids " == *" $1 "* ]]; }

# ---- from here on processes start --------------------------------------------
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ "$force" = 1 ]; then
    rm -rf "$out/nodes" "$out/logs" "$out/keys" "$out/summary.json" "$out/epochs.csv" "$out/monitor.journal" "$out"/*.png \
           "$out/swarm.txt" "$out/monitor.log" "$out/progress.log" "$out/failed-nodes.txt"
fi
mkdir -p "$out/nodes" "$out/logs"

# Keys (CURVE): one pair per node and one for the monitor, kept in the run dir.
keydir="$out/keys"
if [ "$curve" = 1 ] && { [ "$resume" = 0 ] || [ ! -s "$keydir/monitor.key" ]; }; then
    rm -rf "$keydir"; mkdir -p "$keydir"; chmod 700 "$keydir"
    for i in $(seq 0 $((nodes - 1))) monitor; do "$bin" keygen --out "$keydir/$i.key" >/dev/null; done
fi
swarm_file > "$out/swarm.txt"

mon_args=(monitor --swarm "$out/swarm.txt" --out "$out")
[ "$curve" = 1 ] && mon_args+=(--key "$keydir/monitor.key")
[ "$quiet" = 1 ] && mon_args+=(--quiet)
# Process substitution, not a pipe: $! must be the monitor itself (with a
# pipe it is tee's pid, and TERM would never reach the monitor).
"$bin" "${mon_args[@]}" 2> "$out/monitor.log" > >(tee "$out/progress.log") &
monitor_pid=$!

[ "$quiet" = 1 ] || echo "swarm: $nodes nodes (Byzantine: ${byz_ids:-none}${byz_ids:+, attack $attack}), rule $(opt_value rule mean), $(opt_value epochs 3) epochs -> $out" >&2
victims=()
for i in $(seq 0 $((nodes - 1))); do
    args=(node --swarm "$out/swarm.txt" --id "$i" --out "$out/nodes")
    if is_byz "$i"; then args+=(--attack "$attack"); fi
    [ "$curve" = 1 ] && args+=(--key "$keydir/$i.key")
    "$bin" "${args[@]}" "${node_opts[@]}" > "$out/logs/node-$i.log" 2>&1 &
    pids+=($!)
done
# Victims of --fail-nodes: the last K honest ids.
if [ "$fail_nodes" -gt 0 ]; then
    for ((i = nodes - 1; i >= 0 && ${#victims[@]} < fail_nodes; i--)); do
        is_byz "$i" || victims+=("$i")
    done
    echo "${victims[*]}" > "$out/failed-nodes.txt"
fi

# Wait for the nodes; kill the victims once they have reported epoch fail_at.
# A node that exits with an error (not a victim) fails the run at once.
declare -A killed=() reaped=()
t0=$SECONDS
while :; do
    running=0
    for i in "${!pids[@]}"; do
        [ -n "${reaped[$i]:-}" ] && continue
        if kill -0 "${pids[$i]}" 2>/dev/null; then running=1; continue; fi
        rc=0; wait "${pids[$i]}" 2>/dev/null || rc=$?
        reaped[$i]=1
        if [ "$rc" != 0 ] && [ -z "${killed[$i]:-}" ]; then
            role=honest; is_byz "$i" && role="attacker ($attack)"
            echo "swarm.sh: node $i ($role) exited with code $rc after $((SECONDS - t0)) s: $(grep -v '^\s*$' "$out/logs/node-$i.log" | tail -n 1)" >&2
            echo "swarm.sh: stopping the swarm; logs in $out/logs" >&2
            exit 1
        fi
    done
    [ $running = 0 ] && break
    if [ -n "$monitor_pid" ] && ! kill -0 "$monitor_pid" 2>/dev/null; then
        rc=0; wait "$monitor_pid" 2>/dev/null || rc=$?
        monitor_pid=""
        if [ "$rc" != 0 ]; then
            echo "swarm.sh: the monitor exited with code $rc: $(tail -n 1 "$out/monitor.log")" >&2
            exit 1
        fi
    fi
    for v in "${victims[@]}"; do
        [ -n "${killed[$v]:-}" ] && continue
        f="$out/nodes/node-$v.jsonl"
        if [ -f "$f" ] && [ "$(wc -l < "$f")" -ge "$fail_at" ]; then
            kill -KILL "${pids[$v]}" 2>/dev/null || true
            killed[$v]=1
            echo "swarm: killed node $v after epoch $fail_at" >&2
        fi
    done
    sleep 0.05
done
pids=()
# The monitor closes the last epochs when it has every report; tell it to finish otherwise.
if [ -n "$monitor_pid" ]; then
    for _ in $(seq 1 10); do kill -0 "$monitor_pid" 2>/dev/null || break; sleep 0.2; done
    kill -TERM "$monitor_pid" 2>/dev/null || true
    wait "$monitor_pid" 2>/dev/null || true
    monitor_pid=""
fi

if [ ! -s "$out/summary.json" ]; then
    echo "swarm.sh: no summary.json in $out (monitor.log: $(tail -n 1 "$out/monitor.log" 2>/dev/null))" >&2
    exit 1
fi
if [ "$plot" = 1 ] && command -v gnuplot >/dev/null && [ -s "$out/epochs.csv" ]; then
    "$here/scripts/plot.sh" "$out" || echo "swarm: plotting failed (results are in $out)" >&2
fi
[ "$quiet" = 1 ] || echo "swarm: done: $out/summary.json" >&2
}
main "$@"
