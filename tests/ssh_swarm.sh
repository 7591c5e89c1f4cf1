#!/usr/bin/env bash
# ssh_swarm.sh -- a CURVE swarm over ssh on three "hosts", with nothing but
# `byznode swarm-file` and scripts/launch-ssh.sh, the way docs/deployment.md
# tells a user to run one.
#
#   switch namespace  bnss$$       bridge br0
#   client namespace  bnsc$$       10.203.78.2: where launch-ssh.sh runs
#   host namespaces   bnsh$$-K     10.203.78.(10+K), each with its own sshd
#                                  (a throw-away host key and client key)
# As in tests/netns_swarm.sh, the veth pairs are made inside the switch
# namespace and the /24 exists only there: nothing touches the host's
# network.  The hosts share the file system (as NFS-mounted hosts would), so
# every host gets its own remote directory; the data set is used in place.
#
# Checks, on the real engine: every node reported every epoch, consensus
# error < 1e-3, accuracy, MODEL bytes crossed the links with no message
# dropped (so every CURVE handshake and ZAP check passed), keys 0600, the run
# directory holds the same files as a local scripts/swarm.sh run, a host
# with another igraph is named and refused, Ctrl-C stops every remote
# process; at the end no process is left in any namespace (sshd included).
# BN_SSH_NODES (default 30) nodes.  Without root or namespaces: exit 77.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BN_NAME=ssh_swarm

command -v ip >/dev/null || bn_skip "the ip command (iproute2) is not installed"
[ "$(id -u)" = 0 ] || bn_skip "network namespaces and sshd need root (uid is $(id -u))"
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
    "$BN_SRC/scripts/setup-multihost.sh" --ssh >&2 || bn_die "cannot install openssh-server"
fi
bn_init ssh_swarm

n_nodes="${BN_SSH_NODES:-30}"; n_hosts=3; net=10.203.78
sw="bnss$$"; cl="bnsc$$"; hosts_ns=(); members=("$cl")
for k in $(seq 0 $((n_hosts - 1))); do hosts_ns+=("bnsh$$-$k"); members+=("bnsh$$-$k"); done
bn_netns_lan "$sw" "$net" "${members[@]}"

# sshd per host: throw-away keys, root by public key only, listening on the
# host's address only.
S="$BN_TMP/ssh"
mkdir -p "$S" /run/sshd
chmod 700 "$S"
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key" -C bn-ssh-test-host
ssh-keygen -q -t ed25519 -N '' -f "$S/id" -C bn-ssh-test-client
cp "$S/id.pub" "$S/authorized_keys"
cat > "$S/config" <<EOF
Host *
    User root
    IdentityFile $S/id
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ConnectTimeout 10
EOF
sshd_pids=()
for k in $(seq 0 $((n_hosts - 1))); do
    cat > "$S/sshd-$k.conf" <<EOF
ListenAddress $net.$((10 + k)):22
HostKey $S/host_key
PidFile $S/sshd-$k.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
EOF
    ip netns exec "${hosts_ns[$k]}" /usr/sbin/sshd -D -e -f "$S/sshd-$k.conf" 2> "$S/sshd-$k.log" &
    sshd_pids+=($!)
done
up=0
for _ in $(seq 1 100); do
    up=0
    for k in $(seq 0 $((n_hosts - 1))); do
        ip netns exec "$cl" ssh -F "$S/config" -o BatchMode=yes -n "$net.$((10 + k))" true 2>/dev/null && up=$((up + 1))
    done
    [ $up = $n_hosts ] && break
    sleep 0.2
done
[ $up = $n_hosts ] || { tail -n 5 "$S"/sshd-*.log >&2; bn_die "sshd did not come up in every namespace"; }
bn_log "namespaces ${BN_NS_CREATED[*]}; sshd on $net.10-$((9 + n_hosts)):22"

# The recipe of docs/deployment.md (ssh): a hostfile, swarm-file, launch-ssh.sh.
cd "$BN_TMP"
for k in $(seq 0 $((n_hosts - 1))); do echo "$net.$((10 + k)) slots=$(( (n_nodes + n_hosts - 1) / n_hosts ))"; done > hosts.txt
common_opts=(--option "seed 5" --option "model logreg" --option "rule mean"
             --option "p 0.3" --option "batch 600" --option "eval-subset 1000" --option "round-timeout 10000"
             --option "data $BN_DATA")
"$BN_BIN" swarm-file --hosts hosts.txt --nodes "$n_nodes" --out swarm.txt --curve keys --port-base 23100 \
    "${common_opts[@]}" --option "epochs 2"
bn_expect_true "swarm-file refuses to overwrite keys" \
    bash -c "! '$BN_BIN' swarm-file --hosts hosts.txt --nodes $n_nodes --out again.txt --curve keys 2>/dev/null"
bn_expect_true "every secret key is 0600" \
    test "$(find keys -name '*.key' -perm 0600 | wc -l)" = $((n_nodes + 1))
bn_expect_true "no other key file mode" test -z "$(find keys -name '*.key' ! -perm 0600)"
bn_expect_true "one key directory per host" test "$(find keys -mindepth 1 -maxdepth 1 -type d | wc -l)" = $n_hosts

t0=$SECONDS
rc=0
timeout 300 ip netns exec "$cl" "$BN_SRC/scripts/launch-ssh.sh" --swarm swarm.txt --hosts hosts.txt --curve keys \
    --ssh-config "$S/config" --build "$BN_BUILD" --remote-dir "$BN_TMP/remote/{host}" --out "$BN_TMP/run" \
    > run.out 2>&1 || rc=$?
wall=$((SECONDS - t0))
[ $rc = 0 ] || { tail -n 20 run.out >&2; bn_die "launch-ssh.sh exited with $rc"; }
bn_log "run: $n_nodes nodes on $n_hosts hosts over ssh, CURVE, wall time $wall s (copy, version check, run, gather)"

bn_expect run "epochs closed" "len(s['epochs'])" "v == 2"
bn_expect run "nodes at the last epoch" \
    "sorted(x['id'] for x in nodes if x['last_epoch'] == 2 and not x['failed'])" "v == list(range($n_nodes))"
bn_expect run "honest reports, last epoch" "last['honest_reported']" "v == $n_nodes"
bn_expect run "consensus error, last epoch" "last['consensus_error']" "v < 1e-3"
bn_expect run "mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
bn_expect run "MODEL bytes received, every node, epoch 1" \
    "[jl(k)[0]['bytes_received'] for k in range($n_nodes)]" "min(v) > 0"
bn_expect run "messages dropped by nodes (auth included)" \
    "sum(sum(r['dropped'].values()) for k in range($n_nodes) for r in jl(k))" "v == 0"
bn_expect run "reports dropped by the monitor" "s['dropped_reports']" "v == 0"
bn_expect_true "every node's log came back" test "$(ls run/logs/node-*.log | wc -l)" = "$n_nodes"

# The same files as a local scripts/swarm.sh run (node ids folded to K;
# hosts/ holds the ssh sessions, the launcher's own addition).
bn_swarm_plot() {
    timeout 120 "$BN_SRC/scripts/swarm.sh" --build "$BN_BUILD" --quiet --out "$BN_TMP/local" \
        --nodes 3 --epochs 1 --model logreg --batch 600 --eval-subset 1000 "$@" > local.out 2>&1
}
bn_swarm_plot || { tail -n 20 local.out >&2; bn_die "local swarm.sh failed"; }
files() { (cd "$1" && find . -type f ! -path './hosts/*' ! -path './keys/*' | sed -E 's/node-[0-9]+/node-K/' | sort -u); }
files local > local.files
files run > run.files
bn_expect_true "run dir holds the files of a local swarm.sh run ($(tr '\n' ' ' < local.files))" \
    diff local.files run.files

# A host with another igraph build is named and refused (its byznode wrapped
# to report another version): nothing runs.
mkdir -p fake/src
cat > fake/src/byznode <<EOF
#!/bin/sh
if [ "\$1" = version ] && ip -4 addr show dev eth0 2>/dev/null | grep -q ' $net.11/'; then
    "$BN_BIN" version | sed 's/^igraph .*/igraph 0.9.0/'
else
    exec "$BN_BIN" "\$@"
fi
EOF
chmod +x fake/src/byznode
rc=0
ip netns exec "$cl" "$BN_SRC/scripts/launch-ssh.sh" --swarm swarm.txt --hosts hosts.txt --curve keys \
    --ssh-config "$S/config" --build "$BN_TMP/fake" --remote-dir "$BN_TMP/remote2/{host}" \
    --out "$BN_TMP/differ" --quiet > differ.out 2>&1 || rc=$?
bn_expect_true "a host with another igraph is refused (exit $rc)" test $rc != 0
bn_expect_true "... and named: $(tail -n 1 differ.out)" grep -q "$net.11 differs: igraph 0.9.0" differ.out
bn_expect_true "... before any node ran" test ! -e "$BN_TMP/differ/summary.json"

# Ctrl-C: a long run interrupted once the nodes are training; every remote
# process must be gone.
# (a swarm of 50 epochs: swarm-wide options live in the swarm file only)
"$BN_BIN" swarm-file --hosts hosts.txt --nodes "$n_nodes" --out long.txt --curve keys-long --port-base 23100 \
    "${common_opts[@]}" --option "epochs 50" 2>/dev/null
# Job control on: the launcher gets its own process group that does not
# ignore SIGINT, and the INT goes to the whole group (ssh clients included),
# as a terminal's Ctrl-C does.
set -m
ip netns exec "$cl" "$BN_SRC/scripts/launch-ssh.sh" --swarm long.txt --hosts hosts.txt --curve keys-long \
    --ssh-config "$S/config" --build "$BN_BUILD" --remote-dir "$BN_TMP/remote3/{host}" \
    --out "$BN_TMP/stopped" --no-plot > stopped.out 2>&1 &
lpid=$!
set +m
for _ in $(seq 1 1200); do
    [ "$(pgrep -fc -- "$BN_TMP/remote3/.*byznode node .*--id " || true)" -ge "$n_nodes" ] && break
    kill -0 $lpid 2>/dev/null || break
    sleep 0.1
done
running="$(pgrep -fc -- "$BN_TMP/remote3/.*byznode node .*--id " || true)"
bn_expect_true "all $n_nodes remote nodes were running before Ctrl-C ($running)" test "$running" -ge "$n_nodes"
kill -INT -- -$lpid
rc=0
wait $lpid || rc=$?
bn_expect_true "launch-ssh.sh reports the interruption (exit $rc)" test $rc = 130
left="$(pgrep -f -- "$BN_TMP/remote3/" || true)"
bn_expect_true "no remote process left after Ctrl-C" test -z "$left"

# Stop the sshds; nothing may be left in any namespace.
for p in "${sshd_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${sshd_pids[@]}"; do wait "$p" 2>/dev/null || true; done
sleep 0.2
left=""
for ns in "${BN_NS_CREATED[@]}"; do left+="$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
bn_expect_true "no process left in the namespaces (sshd and its sessions included): '${left// /}'" \
    test -z "${left// /}"
bn_finish
