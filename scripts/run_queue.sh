#!/usr/bin/env bash
# run_queue.sh -- run an experiment queue in the background, committing and
# landing each finished cell's result file as it finishes.
#
#   scripts/run_queue.sh QUEUE --src DIR --repo DIR [--land MAIN] [--work DIR]
#
# QUEUE (e.g. experiments/paper.queue, relative to REPO): lines
# "EXPERIMENT FILTER"; for each, `scripts/experiment.py run EXPERIMENT --only
# FILTER` runs that line's missing cells one at a time with SRC's
# scripts/swarm.sh and SRC/build (a checkout of one byznode commit, so every
# cell of the queue names the same commit).  REPO is a git worktree on a
# branch of its own: its experiment.py and experiment files are used, and
# each new results/cells/*.json is committed there at once.  With --land MAIN
# (the main worktree) the branch is then rebased on main and main
# fast-forwarded to it (retried when main moved meanwhile), so finished cells
# survive whatever stops the queue.  A file WORK/PAUSE holds it between
# cells.  Run it niced under nohup; stop it with
# kill -TERM on its pid (experiment.py stops the running swarm; the cell in
# progress is lost, the finished ones are not).  A cell whose swarm was
# stopped by a signal from outside (swarm.sh exit 130 or 143: someone else's
# cleanup on a shared machine) is retried, up to 2 more times.  Swarm run
# dirs and sockets go under WORK (default ~/.cache/byznode-queue), not /tmp.
set -uo pipefail
# The whole script is one function, called on the last line: the landing
# step rebases REPO, which may change this very file while it runs.
main() {
queue="${1:?usage: run_queue.sh QUEUE --src DIR --repo DIR [--land MAIN]}"; shift
src=""; repo=""; land=""; work="${HOME:-/root}/.cache/byznode-queue"
while [ $# -gt 0 ]; do
    case "$1" in
        --src) src="$2"; shift ;;
        --repo) repo="$2"; shift ;;
        --land) land="$2"; shift ;;
        --work) work="$2"; shift ;;
        *) echo "run_queue.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -d "$src" ] && [ -x "$src/build/src/byznode" ] || { echo "run_queue.sh: --src needs a built checkout" >&2; exit 2; }
[ -d "$repo/.git" ] || [ -f "$repo/.git" ] || { echo "run_queue.sh: --repo must be a git worktree" >&2; exit 2; }
say() { echo "[$(date -u +%H:%M:%S)] run_queue: $*"; }
# The paper's cells are computed with OpenBLAS's Haswell kernels (AVX2 + FMA)
# unless the caller says otherwise: OpenBLAS otherwise picks its kernel per
# CPU, and a cell computed on another CPU would differ in the last bits (and
# up to a few tenths of a point per node after 3 epochs).  With the kernel
# pinned, an Intel Xeon reproduced a cell computed on a Zen 5 bit for bit
# (docs/paper.md, "Where we differ").
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"

land_results() {
    local branch
    branch="$(git -C "$repo" rev-parse --abbrev-ref HEAD)"
    for try in 1 2 3 4 5 6; do
        if git -C "$repo" rebase -q main && git -C "$land" merge -q --ff-only "$branch"; then
            say "landed $(git -C "$repo" log --oneline -1)"
            return 0
        fi
        git -C "$repo" rebase --abort 2>/dev/null || true
        sleep $((try * 5))
    done
    say "could not land on main (left on branch $branch)"
}

commit_new() {
    local f new=0
    for f in "$repo"/results/cells/*.json; do
        [ -e "$f" ] || continue
        if ! git -C "$repo" ls-files --error-unmatch "$f" >/dev/null 2>&1; then
            git -C "$repo" add "$f"
            local msg
            msg="$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("results: cell %s: final accuracy %.2f%%, %.0f s (byznode %s)" % (r["label"],
      100 * r["epochs"][-1]["mean_accuracy"], r["wall_s"], r["byznode_commit"][:10]))' "$f")"
            git -C "$repo" commit -q -m "$msg" -- "$f" && say "committed: $msg" && new=1
        fi
    done
    [ "$new" = 1 ] && [ -n "$land" ] && land_results
    return 0
}

mapfile -t lines < "$repo/$queue"
for line in "${lines[@]}"; do
    read -r exp filter <<< "$line"
    case "$exp" in ''|'#'*) continue ;; esac
    # One cell per call, so that each finished cell is committed at once.
    retries=0
    while :; do
        # A file WORK/PAUSE holds the queue between cells (for a measurement
        # that needs the machine to itself); removing it lets the queue go on.
        if [ -e "$work/PAUSE" ]; then
            say "paused ($work/PAUSE exists)"
            while [ -e "$work/PAUSE" ]; do sleep 10; done
            say "resumed"
        fi
        out="$("$repo/scripts/experiment.py" run "$repo/$exp" --only "$filter" --max-cells 1 \
               --src "$src" --build "$src/build" --results "$repo/results/cells" --work "$work/cells" 2>&1)"
        rc=$?
        echo "$out"
        commit_new
        [ "$rc" -ge 2 ] && { say "stopped (experiment.py exit $rc)"; exit "$rc"; }
        echo "$out" | grep -q ", 0 to run" && break
        if echo "$out" | grep -q "ran 0, failed 1"; then
            if echo "$out" | grep -Eq "swarm.sh exit (130|143)" && [ "$retries" -lt 2 ]; then
                retries=$((retries + 1))
                say "the swarm was stopped from outside; retry $retries"
                continue
            fi
            say "a cell failed; next queue line"
            break
        fi
    done
done
say "queue finished"
}
main "$@"
