#!/usr/bin/env bash
# launch-ssh.sh -- run a swarm written by `byznode swarm-file` on its hosts
# over ssh, and gather everything of the run in one local directory.
#
#   scripts/launch-ssh.sh --swarm swarm.txt --hosts HOSTFILE [--curve KEYDIR] [options]
#
# For every host of HOSTFILE (the file given to swarm-file) that runs nodes
# (those whose endpoints carry its address) or the monitor:
#   1. copies what it needs into its remote directory: the byznode binary, the
#      swarm file, its keys (KEYDIR/<host>/ from swarm-file --curve), the data
#      set when `option data` is not there on that host (and the topology file
#      of `option topology` likewise);
#   2. checks that the host runs the same byznode version, wire protocol and
#      igraph as this machine (`byznode version`; igraph may differ when
#      `option topology` pins the graph) and names the host that differs;
#   3. starts the monitor on the host of the monitor's endpoint, then on each
#      host one `byznode node --ids LIST` (one process per node);
#   4. waits, then brings back every node's jsonl and log and the monitor's
#      files, and draws the plots: the run directory holds what a local
#      scripts/swarm.sh run holds (summary.json, epochs.csv, *.png,
#      swarm.txt, nodes/node-K.jsonl, logs/node-K.log, monitor.log,
#      progress.log), plus hosts/HOST.log (each host's ssh session).
# Ctrl-C (or TERM) stops every remote process it started (by the pid each
# remote command recorded), then gathers what there is.
#
# Options:
#   --out DIR           run directory (default runs/<time>-ssh)
#   --build DIR         where the local byznode is (default build)
#   --remote-dir DIR    remote directory per host; {host} is replaced by the
#                       host's name (default /tmp/byznode-<swarm name>/{host})
#   --remote-bin PATH   use this byznode on the hosts instead of copying ours
#   --ssh-config FILE   ssh -F FILE (keys, users, ports of your hosts)
#   --byzantine-attack NAME   the swarm's Byzantine nodes (byznode roles) attack
#   --node-opt "..."    more options for every node (e.g. "--verbose 1")
#   --timeout S         stop everything after S seconds (default: none)
#   --no-plot  --quiet
set -euo pipefail
main() {
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
swarm=""; hosts=""; keydir=""; out=""; build="$here/build"; remote_dir=""; remote_bin=""
ssh_config=""; attack=""; node_opts=(); timeout_s=0; plot=1; quiet=0
while [ $# -gt 0 ]; do
    case "$1" in
        --swarm) swarm="$2"; shift ;;
        --hosts) hosts="$2"; shift ;;
        --curve) keydir="$2"; shift ;;
        --out) out="$2"; shift ;;
        --build) build="$2"; shift ;;
        --remote-dir) remote_dir="$2"; shift ;;
        --remote-bin) remote_bin="$2"; shift ;;
        --ssh-config) ssh_config="$2"; shift ;;
        --byzantine-attack) attack="$2"; shift ;;
        --node-opt) read -r -a more <<< "$2"; node_opts+=("${more[@]}"); shift ;;
        --timeout) timeout_s="$2"; shift ;;
        --no-plot) plot=0 ;;
        --quiet) quiet=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "launch-ssh.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "launch-ssh.sh: $*" >&2; exit 2; }
say() { [ "$quiet" = 1 ] || echo "launch-ssh: $*" >&2; }
[ -n "$swarm" ] && [ -s "$swarm" ] || die "--swarm FILE is required (byznode swarm-file writes it)"
[ -n "$hosts" ] && [ -s "$hosts" ] || die "--hosts HOSTFILE is required (the one given to swarm-file)"
bin="$build/src/byznode"
[ -x "$bin" ] || die "no byznode at $bin (scripts/setup.sh, or --build DIR)"
[ -z "$keydir" ] || [ -d "$keydir" ] || die "--curve $keydir: no such directory"

# The swarm file: name, monitor endpoint, nodes' endpoints, options.
name="$(awk '$1 == "swarm" {print $2; exit}' "$swarm")"
[ -n "$name" ] || die "$swarm: no 'swarm NAME' line"
mon_ep="$(awk '$1 == "monitor" {print $2; exit}' "$swarm")"
[ -n "$mon_ep" ] || die "$swarm: no 'monitor' line: the launcher runs the monitor"
opt() { awk -v k="$1" '$1 == "option" && $2 == k {v = $3} END {print v}' "$swarm"; }
ep_host() { local e="${1#tcp://}"; echo "${e%:*}"; }
mon_addr="$(ep_host "$mon_ep")"
curve=0
grep -qE '^node +[0-9]+ +[^ ]+ +[^ ]{40}' "$swarm" && curve=1
[ "$curve" = 1 ] && [ -z "$keydir" ] && die "$swarm lists CURVE keys: give --curve KEYDIR (swarm-file's)"

# The hostfile: name and address of each host, in order (src/hostfile.h).
mapfile -t host_lines < <(sed 's/#.*//' "$hosts" | awk 'NF {
    h = $1; sub(/:.*/, "", h); a = h
    for (i = 2; i <= NF; i++) if ($i ~ /^addr=/) a = substr($i, 6)
    if (!(h in seen)) { seen[h] = 1; order[++n] = h }
    if (a != h || !(h in addr)) addr[h] = a
} END { for (i = 1; i <= n; i++) print order[i], addr[order[i]] }')
[ ${#host_lines[@]} -gt 0 ] || die "$hosts: no host"
declare -A host_addr=() host_ids=() host_rd=()
host_names=(); mon_host=""
for l in "${host_lines[@]}"; do
    h="${l%% *}"; a="${l#* }"
    # swarm-file wrote the address resolved to IPv4 (ZeroMQ binds no names): resolve alike.
    if ! [[ "$a" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        r="$(getent ahostsv4 "$a" | awk 'NR == 1 {print $1}')"
        [ -n "$r" ] || die "$hosts: host $h: cannot resolve '$a'"
        a="$r"
    fi
    for g in "${host_names[@]}"; do
        [ "${host_addr[$g]}" != "$a" ] || die "$hosts: hosts $g and $h share the address $a: cannot tell their nodes apart"
    done
    host_names+=("$h"); host_addr[$h]="$a"
    [ "$a" = "$mon_addr" ] && [ -z "$mon_host" ] && mon_host="$h"
done
[ -n "$mon_host" ] || die "the monitor's endpoint $mon_ep is on none of the hosts of $hosts"
# Node ids per host, as a list of ranges for --ids.
n_nodes=0
while read -r id ep; do
    a="$(ep_host "$ep")"; found=""
    for h in "${host_names[@]}"; do [ "${host_addr[$h]}" = "$a" ] && found="$h"; done
    [ -n "$found" ] || die "node $id's endpoint $ep is on none of the hosts of $hosts"
    host_ids[$found]+="$id "
    n_nodes=$((n_nodes + 1))
done < <(awk '$1 == "node" {print $2, $3}' "$swarm")
ranges() {
    echo "$1" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '
        NR == 1 {a = b = $1; next}
        $1 == b + 1 {b = $1; next}
        {printf "%s%s", s, (a == b ? a : a "-" b); s = ","; a = b = $1}
        END {if (NR) printf "%s%s\n", s, (a == b ? a : a "-" b)}'
}

ssh_args=(-o BatchMode=yes -o ServerAliveInterval=15)
[ -n "$ssh_config" ] && ssh_args=(-F "$ssh_config" "${ssh_args[@]}")
rsh() { local h="$1"; shift; ssh "${ssh_args[@]}" -n "$h" "$@"; }
rsh_in() { local h="$1"; shift; ssh "${ssh_args[@]}" "$h" "$@"; }
q() { printf '%q' "$1"; }

[ -n "$out" ] || out="$here/runs/$(date +%Y%m%d-%H%M%S)-ssh-n$n_nodes"
mkdir -p "$out/nodes" "$out/logs" "$out/hosts"
out="$(cd "$out" && pwd)"
rm -f "$out"/nodes/*.jsonl "$out"/logs/node-*.log "$out/summary.json" "$out/epochs.csv" "$out/monitor.journal"
cp "$swarm" "$out/swarm.txt"
[ -n "$remote_dir" ] || remote_dir="/tmp/byznode-$name/{host}"
for h in "${host_names[@]}"; do host_rd[$h]="${remote_dir//\{host\}/$h}"; done
active=()
for h in "${host_names[@]}"; do
    [ -n "${host_ids[$h]:-}" ] || [ "$h" = "$mon_host" ] && active+=("$h")
done

# Cleanup: stop every remote process we started (pid files), local ssh too.
started=(); ssh_pids=(); mon_ssh=""; launched=0; finished=0
stop_remote() {
    local h rd
    for h in "${started[@]}"; do
        rd="${host_rd[$h]}"
        rsh "$h" "for f in $(q "$rd")/nodes.pid $(q "$rd")/monitor.pid; do
                      [ -s \"\$f\" ] && kill -TERM \"\$(cat \"\$f\")\" 2>/dev/null
                  done
                  for i in \$(seq 1 100); do
                      alive=0
                      for f in $(q "$rd")/nodes.pid $(q "$rd")/monitor.pid; do
                          [ -s \"\$f\" ] && kill -0 \"\$(cat \"\$f\")\" 2>/dev/null && alive=1
                      done
                      [ \$alive = 0 ] && break; sleep 0.1
                  done
                  for f in $(q "$rd")/nodes.pid $(q "$rd")/monitor.pid; do
                      [ -s \"\$f\" ] && kill -KILL \"\$(cat \"\$f\")\" 2>/dev/null
                  done; true" 2>/dev/null || echo "launch-ssh: could not reach $h to stop its processes" >&2
    done
}
gather() {
    local h rd
    for h in "${started[@]}"; do
        rd="${host_rd[$h]}"
        if [ -n "${host_ids[$h]:-}" ]; then
            rsh "$h" "cd $(q "$rd") && tar cf - nodes logs" 2>/dev/null | tar xf - -C "$out" 2>/dev/null \
                || echo "launch-ssh: could not bring back the nodes' files of $h" >&2
        fi
        if [ "$h" = "$mon_host" ]; then
            rsh "$h" "cd $(q "$rd")/monitor && tar cf - ." 2>/dev/null | tar xf - -C "$out" 2>/dev/null \
                || echo "launch-ssh: could not bring back the monitor's files from $h" >&2
        fi
    done
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$finished" = 0 ] && [ ${#started[@]} -gt 0 ]; then
        stop_remote
        for p in "${ssh_pids[@]}" $mon_ssh; do kill -TERM "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        if [ "$launched" = 1 ]; then
            gather
            echo "launch-ssh: stopped; what there was is in $out" >&2
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'echo "launch-ssh.sh: interrupted" >&2; exit 130' INT TERM

# 1. Copy.
data="$(opt data)"; topo="$(opt topology)"
here_version="$("$bin" version)"
for h in "${active[@]}"; do
    rd="${host_rd[$h]}"
    stage="$(mktemp -d "${TMPDIR:-/tmp}/bn-stage.XXXXXX")"
    mkdir -p "$stage/bin" "$stage/keys" "$stage/nodes" "$stage/logs" "$stage/monitor"
    [ -z "$remote_bin" ] && cp "$bin" "$stage/bin/byznode"
    cp "$swarm" "$stage/swarm.txt"
    if [ "$curve" = 1 ]; then
        [ -d "$keydir/$h" ] || { rm -rf "$stage"; die "no keys for $h in $keydir/$h"; }
        cp -p "$keydir/$h"/*.key "$stage/keys/"
    fi
    chmod 700 "$stage/keys"
    rsh "$h" "mkdir -p $(q "$rd")" || { rm -rf "$stage"; die "cannot reach $h over ssh (ssh ${ssh_args[*]} $h)"; }
    tar cf - -C "$stage" . | rsh_in "$h" "tar xf - -C $(q "$rd") && rm -f $(q "$rd")/nodes/*.jsonl $(q "$rd")/logs/*.log $(q "$rd")/monitor/*" \
        || { rm -rf "$stage"; die "copying to $h failed"; }
    rm -rf "$stage"
    started+=("$h")
done
# 2. Same build everywhere (what draws the graph and speaks the protocol).
for h in "${active[@]}"; do
    rb="${remote_bin:-${host_rd[$h]}/bin/byznode}"
    v="$(rsh "$h" "$(q "$rb") version" 2>&1)" || die "$h cannot run byznode ($rb): $(echo "$v" | tail -n 1)"
    for key in byznode protocol igraph; do
        mine="$(echo "$here_version" | awk -v k=$key '$1 == k')"
        theirs="$(echo "$v" | awk -v k=$key '$1 == k')"
        if [ "$mine" != "$theirs" ]; then
            if [ "$key" = igraph ] && [ -n "$topo" ]; then
                say "$h has ${theirs:-no igraph}, here ${mine}: fine, option topology pins the graph"
            elif [ "$key" = igraph ]; then
                die "$h differs: ${theirs:-no igraph line} there, $mine here; G(n, p) draws may differ: pin the graph (byznode topology ... --out FILE; option topology FILE)"
            else
                die "$h differs: '${theirs:-nothing}' there, '$mine' here: run the same byznode on every host"
            fi
        fi
    done
    say "$h: $(echo "$v" | tr '\n' ' ')"
done
# Data and topology: used where they are, copied where they are not.
declare -A host_extra=()
for h in "${active[@]}"; do
    rd="${host_rd[$h]}"; extra=""
    if [ -n "$data" ] && ! rsh "$h" "test -s $(q "$data")/train-images-idx3-ubyte.gz || test -s $(q "$data")/train-images-idx3-ubyte"; then
        [ -s "$data/train-images-idx3-ubyte.gz" ] || [ -s "$data/train-images-idx3-ubyte" ] \
            || die "option data $data: not on $h, nor here to copy"
        say "$h has no $data: copying the data set"
        tar cf - -C "$data" . | rsh_in "$h" "mkdir -p $(q "$rd")/data && tar xf - -C $(q "$rd")/data" \
            || die "copying the data set to $h failed"
        extra+=" --data $(q "$rd")/data"
    fi
    if [ -n "$topo" ] && ! rsh "$h" "test -s $(q "$topo")"; then
        [ -s "$topo" ] || die "option topology $topo: not on $h, nor here to copy"
        rsh_in "$h" "cat > $(q "$rd")/topology.edges" < "$topo" || die "copying the topology to $h failed"
        extra+=" --topology $(q "$rd")/topology.edges"
    fi
    host_extra[$h]="$extra"
done

# 3. Start: the monitor, then each host's nodes.
t0=$SECONDS; launched=1
rd="${host_rd[$mon_host]}"; rb="${remote_bin:-$rd/bin/byznode}"
margs="--swarm $(q "$rd")/swarm.txt --out $(q "$rd")/monitor --quiet"
[ "$curve" = 1 ] && margs+=" --key $(q "$rd")/keys/monitor.key"
rsh "$mon_host" "echo \$\$ > $(q "$rd")/monitor.pid; exec $(q "$rb") monitor $margs" \
    > "$out/progress.log" 2> "$out/monitor.log" &
mon_ssh=$!
for h in "${active[@]}"; do
    [ -n "${host_ids[$h]:-}" ] || continue
    rd="${host_rd[$h]}"; rb="${remote_bin:-$rd/bin/byznode}"; ids="$(ranges "${host_ids[$h]}")"
    nargs="--swarm $(q "$rd")/swarm.txt --ids $ids --out $(q "$rd")/nodes --log-dir $(q "$rd")/logs"
    [ "$curve" = 1 ] && nargs+=" --key-dir $(q "$rd")/keys"
    [ -n "$attack" ] && nargs+=" --byzantine-attack $(q "$attack")"
    nargs+="${host_extra[$h]}"
    for o in "${node_opts[@]}"; do nargs+=" $(q "$o")"; done
    rsh "$h" "echo \$\$ > $(q "$rd")/nodes.pid; exec env OPENBLAS_NUM_THREADS=1 $(q "$rb") node $nargs" \
        > "$out/hosts/$h.log" 2>&1 &
    ssh_pids+=($!)
    say "$h: nodes $ids"
done
say "$n_nodes nodes on ${#ssh_pids[@]} host(s), monitor on $mon_host -> $out"

# 4. Wait for the nodes (each host command exits when its nodes did).
failed=0
for i in "${!ssh_pids[@]}"; do
    while kill -0 "${ssh_pids[$i]}" 2>/dev/null; do
        if [ "$timeout_s" != 0 ] && [ $((SECONDS - t0)) -ge "$timeout_s" ]; then
            echo "launch-ssh: --timeout $timeout_s s reached" >&2
            exit 124
        fi
        sleep 0.2
    done
    if ! wait "${ssh_pids[$i]}"; then
        failed=$((failed + 1))
        echo "launch-ssh: a host's nodes failed; see $out/hosts/ and $out/logs/:" >&2
        tail -n 3 "$out/hosts/"*.log >&2 || true
    fi
done
# The monitor exits once it has every report; give it a moment, then TERM it.
for _ in $(seq 1 50); do kill -0 "$mon_ssh" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$mon_ssh" 2>/dev/null; then
    rd="${host_rd[$mon_host]}"
    rsh "$mon_host" "kill -TERM \$(cat $(q "$rd")/monitor.pid)" || true
fi
wait "$mon_ssh" 2>/dev/null || true
gather
finished=1
say "done in $((SECONDS - t0)) s"
if [ "$plot" = 1 ] && command -v gnuplot >/dev/null && [ -s "$out/epochs.csv" ]; then
    "$here/scripts/plot.sh" "$out" || echo "launch-ssh: plotting failed (results are in $out)" >&2
fi
[ -s "$out/summary.json" ] || { echo "launch-ssh: no summary.json came back (see $out/monitor.log)" >&2; exit 1; }
[ $failed = 0 ]
}
main "$@"
