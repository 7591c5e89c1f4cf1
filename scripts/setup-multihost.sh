#!/usr/bin/env bash
# setup-multihost.sh -- the Debian packages the multi-host launchers and their
# tests use, installed only when missing (idempotent; sudo when not root):
#
#   scripts/setup-multihost.sh [--ssh] [--slurm]     (no option: both)
#
#   --ssh    openssh-client (ssh, scp, ssh-keygen) and openssh-server (sshd:
#            tests/ssh_swarm.sh runs one per network namespace)
#   --slurm  slurm-wlm (slurmctld, slurmd, sbatch, srun, scontrol) and munge
#            (tests/slurm_swarm.sh runs a one-machine cluster)
# Nothing is started or enabled here: the tests start the daemons they need
# themselves and stop them (a package's own service start, if any, is not
# relied on).  scripts/setup.sh calls this.
set -euo pipefail
want_ssh=0; want_slurm=0
[ $# = 0 ] && { want_ssh=1; want_slurm=1; }
while [ $# -gt 0 ]; do
    case "$1" in
        --ssh) want_ssh=1 ;;
        --slurm) want_slurm=1 ;;
        *) echo "setup-multihost.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if [ $want_ssh = 1 ]; then
    have ssh && have ssh-keygen || missing+=(openssh-client)
    have sshd || missing+=(openssh-server)
fi
if [ $want_slurm = 1 ]; then
    have slurmctld && have slurmd && have sbatch && have srun || missing+=(slurm-wlm)
    have munged || missing+=(munge)
fi
[ ${#missing[@]} = 0 ] && exit 0
echo "setup-multihost: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
# policy-rc.d 101: a package's maintainer scripts must not start its service
# here (no systemd in CI; the tests run the daemons themselves).
rc_d=/usr/sbin/policy-rc.d; made_rc_d=0
if [ ! -e "$rc_d" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$rc_d" >/dev/null && $sudo chmod +x "$rc_d" && made_rc_d=1
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { [ $made_rc_d = 1 ] && $sudo rm -f "$rc_d"; exit 1; }
[ $made_rc_d = 1 ] && $sudo rm -f "$rc_d"
exit 0
