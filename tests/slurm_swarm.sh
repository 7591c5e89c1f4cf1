#!/usr/bin/env bash
# slurm_swarm.sh -- one `sbatch` runs a whole swarm on a real Slurm cluster:
# a one-machine cluster started here (munged, slurmctld, slurmd, each in the
# foreground of its own background job, with a slurm.conf generated in the
# work dir: no systemd, nothing in /etc touched), CPUs overcommitted
# (16 declared, SlurmdParameters=config_overrides).
#
# The recipe of docs/deployment.md (Slurm):
#   sbatch --wait --ntasks 10 scripts/slurm/byznode.sbatch --curve --option ...
# scripts/launch-slurm.sh writes the swarm file from the allocation
# (scontrol show hostnames, NodeAddr, SLURM_TASKS_PER_NODE), checks the
# build on every host, starts the monitor on the first host and
# `srun byznode node --ids-from-env`.  Checked on the real engine: the job
# succeeded, every node reported every epoch, consensus error < 1e-3, no
# message dropped (CURVE), keys 0600, one log per node; then the daemons are
# stopped and no process of theirs (slurmstepd included) is left.
# Slurm and munge are installed when missing (scripts/setup-multihost.sh).
# Without root: exit 77.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BN_NAME=slurm_swarm

[ "$(id -u)" = 0 ] || bn_skip "a test cluster's daemons need root (uid is $(id -u))"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    "$BN_SRC/scripts/setup-multihost.sh" --slurm >&2 || bn_die "cannot install slurm-wlm and munge"
fi
bn_init slurm_swarm

n=10
T="$BN_TMP"
host="$(hostname -s)"
steps_before="$(pgrep -x slurmstepd | sort | tr '\n' ' ' || true)"

# Ports: a free block in this test's range (slurmctld, slurmd, srun's range).
listening="$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u | tr '\n' ' ')"
base=""
for b in $(seq 23800 60 23980); do
    clash=0
    for p in $(seq "$b" $((b + 59))); do [[ " $listening " == *" $p "* ]] && clash=1 && break; done
    [ $clash = 0 ] && { base=$b; break; }
done
[ -n "$base" ] || bn_die "no free port block in 23800-24039"

daemon_pids=()
stop_daemons() {
    local p
    for p in "${daemon_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        local alive=0
        for p in "${daemon_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${daemon_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    daemon_pids=()
}
bn_cleanup_hook() { stop_daemons; }

# munge: a fresh key, its own socket.
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/log" "$T/submit"
chmod 700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
munged -F -f --socket="$T/munge/socket" --key-file="$T/munge/munge.key" --log-file="$T/log/munged.log" \
    --pid-file="$T/munge/munged.pid" --seed-file="$T/munge/seed" > "$T/log/munged.out" 2>&1 &
daemon_pids+=($!)
for _ in $(seq 1 50); do [ -S "$T/munge/socket" ] && break; sleep 0.1; done
munge -S "$T/munge/socket" -n | unmunge -S "$T/munge/socket" >/dev/null || bn_die "munged does not answer"

cat > "$T/slurm.conf" <<EOF
ClusterName=bntest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SrunPortRange=$((base + 10))-$((base + 59))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
MinJobAge=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=16 Sockets=1 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=bn Nodes=$host Default=YES MaxTime=30 State=UP
EOF
export SLURM_CONF="$T/slurm.conf"
slurmctld -D -c -f "$T/slurm.conf" > "$T/log/slurmctld.out" 2>&1 &
daemon_pids+=($!)
slurmd -D -f "$T/slurm.conf" > "$T/log/slurmd.out" 2>&1 &
daemon_pids+=($!)
ready=0
for _ in $(seq 1 150); do
    state="$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)"
    [ "$state" = idle ] && { ready=1; break; }
    sleep 0.2
done
[ $ready = 1 ] || { tail -n 5 "$T"/log/*.log >&2; bn_die "the test cluster did not come up (node state '${state:-none}')"; }
bn_log "cluster up: slurmctld :$base, slurmd :$((base + 1)) on $host, 16 CPUs declared"

# The swarm: one sbatch (the recipe of docs/deployment.md).
cd "$T/submit"
t0=$SECONDS
rc=0
BYZNODE_SRC="$BN_SRC" timeout 300 sbatch --wait --ntasks $n --output "$T/submit/job.out" \
    "$BN_SRC/scripts/slurm/byznode.sbatch" --build "$BN_BUILD" --out "$T/run" --curve --port-base $((base + 100)) \
    --option "seed 5" --option "epochs 2" --option "model logreg" --option "rule mean" --option "batch 600" \
    --option "eval-subset 1000" --option "round-timeout 10000" --option "data $BN_DATA" > sbatch.out 2>&1 || rc=$?
cat job.out >&2 || true
[ $rc = 0 ] || { tail -n 20 sbatch.out "$T"/run/logs/node-0.log >&2 || true; bn_die "sbatch --wait exited with $rc"; }
bn_log "run: $n nodes, one sbatch, $((SECONDS - t0)) s"

bn_expect run "epochs closed" "len(s['epochs'])" "v == 2"
bn_expect run "nodes at the last epoch" \
    "sorted(x['id'] for x in nodes if x['last_epoch'] == 2 and not x['failed'])" "v == list(range($n))"
bn_expect run "honest reports, last epoch" "last['honest_reported']" "v == $n"
bn_expect run "consensus error, last epoch" "last['consensus_error']" "v < 1e-3"
bn_expect run "mean accuracy, last epoch" "last['mean_accuracy']" "v > 0.6"
bn_expect run "messages dropped by nodes (auth included)" \
    "sum(sum(r['dropped'].values()) for k in range($n) for r in jl(k))" "v == 0"
bn_expect_true "the swarm file came from the allocation ($(head -n 1 "$T/run/hosts.txt"))" \
    grep -qx "$host slots=$n addr=127.0.0.1" "$T/run/hosts.txt"
bn_expect_true "every node's log" test "$(ls "$T"/run/logs/node-*.log | wc -l)" = $n
bn_expect_true "keys 0600" test "$(find "$T/run/keys" -name '*.key' -perm 0600 | wc -l)" = $((n + 1))

# Stop the cluster: nothing of it may be left.
stop_daemons
left="$(pgrep -x slurmstepd | sort | tr '\n' ' ' || true)"
bn_expect_true "no slurmstepd left ('$left')" test "$left" = "$steps_before"
bn_expect_true "no munged, slurmctld or slurmd of ours left" test -z "$(pgrep -f -- "$T/" || true)"
bn_finish
