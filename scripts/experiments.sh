#!/usr/bin/env bash
# experiments.sh -- run a matrix of aggregation rules x attacks on one
# topology (one scripts/swarm.sh run per cell, one after the other) and write
# the table of Fig. 1 (right panel) of Xu & Huang: the best mean honest
# accuracy over the epochs and the consensus error (eq. 3) at that epoch.
#
#   scripts/experiments.sh [options]
#
# Matrix:   --rules "a b c" (similarity mean)  --attacks "x y" (dlie)
#           attack "none" runs the cell with no Byzantine node
# Swarm:    --nodes N (20)  --byzantine B (4)  --epochs E (3)  --p P (0.6)
#           --seed S (1)  --time-varying  --extra "more swarm.sh options"
# Other:    --out ROOT (runs/experiments-<date>)  --build DIR (build-exp if
#           present, else build)  --force (rerun cells already done)
#           --dry-run (print the cell commands only)
#           --table-only (rebuild the tables from the cells already done)
# Recipe:   --single-shard N   instead of a matrix: train node 0 alone
#           (rule standalone) on its 1/N shard for --epochs epochs, without
#           starting the other N-1 nodes; writes ROOT/single-shard-nN/.
#
# Output:   ROOT/cells/<rule>__<attack>[__tv]/  (swarm.sh run dir + command.txt,
#           wall.txt), ROOT/table.md, ROOT/table.csv (one row per cell, with its
#           command). A cell that exited 0 with E epochs in summary.json is skipped
#           (resume after an interruption). Cells run one at a time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

nodes=20; byz=4; epochs=3; p=0.6; seed=1; tv=0; out=""; extra=""
rules="similarity mean"; attacks="dlie"; force=0; dry=0; table_only=0; single=0
build="$here/build-exp"; [ -x "$build/src/byznode" ] || build="$here/build"
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) nodes="$2"; shift ;;
        --byzantine) byz="$2"; shift ;;
        --epochs) epochs="$2"; shift ;;
        --p) p="$2"; shift ;;
        --seed) seed="$2"; shift ;;
        --rules) rules="$2"; shift ;;
        --attacks) attacks="$2"; shift ;;
        --time-varying) tv=1 ;;
        --extra) extra="$2"; shift ;;
        --out) out="$2"; shift ;;
        --build) build="$(cd "$2" && pwd)"; shift ;;
        --force) force=1 ;;
        --dry-run) dry=1 ;;
        --table-only) table_only=1 ;;
        --single-shard) single="$2"; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "experiments.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$epochs" =~ ^[0-9]+$ && "$epochs" -ge 1 ]] || { echo "experiments.sh: --epochs must be >= 1" >&2; exit 2; }
[ -n "$out" ] || out="$here/runs/experiments-$(date +%Y%m%d)"
mkdir -p "$out"; out="$(cd "$out" && pwd)"

# No byznode of ours may outlive a cell: look for processes whose command
# line names the cell directory (other people's swarms are left alone).
leftovers() { pgrep -f -- "$1" || true; }

# ---------------------------------------------------------------- recipe --
# One node alone on a 1/N iid shard: a swarm file with N node lines (so the
# partition is by N) but only node 0 is started, with rule standalone (it
# never sends nor waits). The monitor endpoint is a socket nobody binds;
# reports to it are dropped.
if [ "$single" != 0 ]; then
    [[ "$single" =~ ^[0-9]+$ && "$single" -ge 1 ]] || { echo "experiments.sh: --single-shard must be >= 1" >&2; exit 2; }
    dir="$out/single-shard-n$single"; mkdir -p "$dir/nodes"
    sock="$(mktemp -d "${TMPDIR:-/tmp}/bzx.XXXXXX")"
    {
        echo "# one-node recipe written by scripts/experiments.sh"
        echo "swarm single-$seed-$$"
        echo "monitor ipc://$sock/m"
        echo "option seed $seed"
        echo "option epochs $epochs"
        echo "option rule standalone"
        echo "option data $here/data/fashion-mnist"
        for i in $(seq 0 $((single - 1))); do echo "node $i ipc://$sock/$i"; done
    } > "$dir/swarm.txt"
    read -r -a more <<< "$extra"
    cmd=("$build/src/byznode" node --swarm "$dir/swarm.txt" --id 0 --rule standalone --out "$dir/nodes" "${more[@]}")
    echo "${cmd[*]}" > "$dir/command.txt"
    [ "$dry" = 1 ] && { cat "$dir/command.txt"; rm -rf "$sock"; exit 0; }
    rm -f "$dir/nodes/node-0.jsonl"
    start=$(date +%s.%N)
    "${cmd[@]}" > "$dir/node-0.log" 2>&1 || { echo "experiments.sh: node failed, see $dir/node-0.log" >&2; rm -rf "$sock"; exit 1; }
    end=$(date +%s.%N)
    rm -rf "$sock"
    echo "$start $end" | awk '{printf "%.1f\n", $2 - $1}' > "$dir/wall.txt"
    python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/nodes/node-0.jsonl") if l.strip()]
wall = float(open(d + "/wall.txt").read())
last = rows[-1]
print("single shard: %d epochs, final accuracy %.4f (eval_images %s), best %.4f, wall %.1f s (%.2f s/epoch)"
      % (last["epoch"], last["accuracy"], last.get("eval_images"),
         max(r["accuracy"] for r in rows if r.get("accuracy") is not None), wall, wall / len(rows)))
EOF
    exit 0
fi

# ---------------------------------------------------------------- matrix --
ncells=0; nrun=0; nskip=0; nfail=0
for rule in $rules; do
    for attack in $attacks; do
        ncells=$((ncells + 1))
        name="${rule}__${attack}"; [ "$tv" = 1 ] && name="${name}__tv"
        dir="$out/cells/$name"
        b="$byz"; [ "$attack" = none ] && b=0
        cmd=(scripts/swarm.sh --nodes "$nodes" --byzantine "$b" --rule "$rule" --epochs "$epochs"
             --p "$p" --seed "$seed")
        [ "$attack" = none ] || cmd+=(--attack "$attack")
        [ "$tv" = 1 ] && cmd+=(--time-varying)
        read -r -a more <<< "$extra"
        cmd+=("${more[@]}")
        # The command as a reader would type it (without our bookkeeping options).
        shown="${cmd[*]}"
        if [ "$table_only" = 1 ]; then continue; fi
        if [ "$dry" = 1 ]; then echo "$shown --out $dir"; continue; fi
        if [ "$force" = 0 ] && [ "$(cat "$dir/rc.txt" 2>/dev/null)" = 0 ] && [ -s "$dir/summary.json" ] && python3 - "$dir/summary.json" "$epochs" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if len(s.get("epochs", [])) >= int(sys.argv[2]) else 1)
EOF
        then
            nskip=$((nskip + 1)); echo "experiments: $name done already, skipped" >&2; continue
        fi
        mkdir -p "$dir"
        echo "$shown" > "$dir/command.txt"
        echo "experiments: [$ncells] $name: $shown" >&2
        start=$(date +%s.%N)
        rc=0
        (cd "$here" && "${cmd[@]}" --build "$build" --out "$dir" --no-plot --quiet) > "$dir/swarm.log" 2>&1 || rc=$?
        end=$(date +%s.%N)
        echo "$start $end" | awk '{printf "%.1f\n", $2 - $1}' > "$dir/wall.txt"
        echo "$rc" > "$dir/rc.txt"
        # Keep the cell small: per-node logs are not results.
        [ "$rc" = 0 ] && rm -rf "$dir/logs"
        left="$(leftovers "$dir/")"
        [ -z "$left" ] || echo "experiments: WARNING: processes left by $name: $left" >&2
        if [ "$rc" != 0 ]; then nfail=$((nfail + 1)); echo "experiments: $name failed (rc $rc), see $dir/swarm.log" >&2; fi
        nrun=$((nrun + 1))
        # Write the table after every cell, so nothing is lost.
        python3 "$here/scripts/experiments_table.py" "$out" >/dev/null || true
    done
done
[ "$dry" = 1 ] && exit 0
python3 "$here/scripts/experiments_table.py" "$out"
[ "$table_only" = 1 ] || echo "experiments: $ncells cells, $nrun run, $nskip skipped, $nfail failed -> $out/table.md" >&2
[ "$nfail" = 0 ]
