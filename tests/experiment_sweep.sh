#!/usr/bin/env bash
# experiment_sweep.sh -- the experiment layer end to end (scripts/experiment.py):
# a two-seed, two-rule, one-epoch MLP sweep of 6 nodes (1 Byzantine, D-LIE)
#   1. is interrupted (SIGTERM) after its first finished cell: the finished
#      cells keep their result files, no process is left behind;
#   2. rerun, it runs only the missing cells (the finished files are untouched);
#   3. on a "fresh clone" (the result files copied elsewhere) it runs nothing;
#   4. a new seed adds exactly its cells, a changed fixed option makes every
#      cell new (dry runs);
#   5. the report has a mean +- std table (Markdown and CSV, 2 seeds per
#      entry) and figures with titles.
. "$(dirname "$0")/lib.sh"
bn_init experiment_sweep
/usr/bin/python3 -c "import matplotlib" 2>/dev/null \
    || bn_die "python3-matplotlib is missing (scripts/setup.sh installs it)"
X="$BN_SRC/scripts/experiment.py"
exp="$BN_TMP/sweep.exp"
cat > "$exp" <<'EXP'
title   test sweep
item    Test
option  nodes 6
option  byzantine 1
option  attack dlie
option  model mlp
option  epochs 1
option  eval-subset 500
grid    rule mean similarity
grid    seed 1 2
report  table rule attack final_accuracy
report  paper rule=similarity final_accuracy 80
report  figure curves accuracy
report  figure bars
EXP
res="$BN_TMP/results"
run() { "$X" run "$@" --results "$res" --work "$BN_TMP/work" --build "$BN_BUILD"; }
count() { find "$1" -name '*.json' 2>/dev/null | wc -l; }
# fake_cells EXP RESULTS EPOCH SEED TABLE: made-up result files in RESULTS for
# the cells of experiments/EXP whose (rule, attack) TABLE names (a Python dict
# literal of (mean, min, consensus) fractions), one epoch numbered EPOCH; only
# seed SEED's cells unless SEED is empty.
fake_cells() {
    mkdir -p "$2"
    /usr/bin/python3 - "$BN_SRC" "$@" <<'PY'
import ast, importlib.util, json, os, sys
src, exp, res, epoch, seed, table = sys.argv[1:7]
sp = importlib.util.spec_from_file_location("x", os.path.join(src, "scripts", "experiment.py"))
x = importlib.util.module_from_spec(sp)
sp.loader.exec_module(x)
fake = ast.literal_eval(table)
for c in x.expand_cells(x.load_experiment(os.path.join(src, "experiments", exp))):
    v = fake.get((c["rule"], c["attack"]))
    if v is None or (seed and c["seed"] != seed):
        continue
    ep = {"epoch": int(epoch), "mean_accuracy": v[0], "min_accuracy": v[1], "consensus_error": v[2],
          "byzantine_weight": 0.01}
    json.dump({"key": x.cell_key(c), "options": c, "epochs": [ep], "wall_s": 60.0,
               "byznode_commit": "0" * 40, "byznode_dirty": False}, open(x.cell_file(res, c), "w"))
PY
}

# 1. Interrupted after the first finished cell.
"$X" run "$exp" --results "$res" --work "$BN_TMP/work" --build "$BN_BUILD" > "$BN_TMP/run1.out" 2>&1 &
xpid=$!
for _ in $(seq 1 1200); do
    [ "$(count "$res")" -ge 1 ] && break
    kill -0 "$xpid" 2>/dev/null || break
    sleep 0.1
done
kill -TERM "$xpid" 2>/dev/null || true
wait "$xpid" || true
first=$(count "$res")
bn_log "interrupted with $first finished cell(s)"
bn_expect_true "interrupted run kept 1..3 finished cells ($first)" test "$first" -ge 1 -a "$first" -le 3
bn_expect_true "no partial result file" test -z "$(find "$res" -name '*.tmp')"
sleep 1
bn_no_leftovers
sums_before="$(cd "$res" && sha256sum ./*.json | sort)"

# 2. Rerun: only the missing cells.
run "$exp" > "$BN_TMP/run2.out" 2>&1 || { cat "$BN_TMP/run2.out" >&2; bn_die "rerun failed"; }
missing=$((4 - first))
bn_expect_true "rerun planned $missing cells" grep -q "4 cells, $first done, $missing to run" "$BN_TMP/run2.out"
bn_expect_true "rerun ran exactly $missing" grep -q "ran $missing, failed 0, skipped $first" "$BN_TMP/run2.out"
bn_expect_true "4 result files" test "$(count "$res")" = 4
kept="$(cd "$res" && sha256sum ./*.json | sort | grep -F -f <(echo "$sums_before") | wc -l)"
bn_expect_true "the $first earlier result files are untouched" test "$kept" = "$first"

# 3. A fresh clone with the committed results runs nothing.
cp -r "$res" "$BN_TMP/clone-results"
"$X" run "$exp" --results "$BN_TMP/clone-results" --work "$BN_TMP/work" --build "$BN_BUILD" \
    > "$BN_TMP/run3.out" 2>&1
bn_expect_true "fresh clone: nothing to run" grep -q "4 cells, 4 done, 0 to run" "$BN_TMP/run3.out"

# 4. New seed -> 2 new cells; changed fixed option -> 4 new cells.
sed 's/^grid    seed 1 2$/grid    seed 1 2 3/' "$exp" > "$BN_TMP/seed3.exp"
"$X" run "$BN_TMP/seed3.exp" --results "$res" --dry-run > "$BN_TMP/run4.out" 2>&1
bn_expect_true "seed 3 adds exactly 2 cells" grep -q "6 cells, 4 done, 2 to run" "$BN_TMP/run4.out"
bn_expect_true "the new cells are seed 3" test "$(grep -c 'would run .*-s3 ' "$BN_TMP/run4.out")" = 2
sed 's/^option  eval-subset 500$/option  eval-subset 400/' "$exp" > "$BN_TMP/changed.exp"
"$X" run "$BN_TMP/changed.exp" --results "$res" --dry-run > "$BN_TMP/run5.out" 2>&1
bn_expect_true "a changed option makes 4 new cells" grep -q "4 cells, 0 done, 4 to run" "$BN_TMP/run5.out"

# Errors in an experiment file name the line, before anything runs.
printf 'option nodes 6\ngird rule mean\n' > "$BN_TMP/typo.exp"
rc=0; "$X" run "$BN_TMP/typo.exp" --results "$res" --dry-run > "$BN_TMP/typo.out" 2>&1 || rc=$?
bn_expect_true "a misspelt keyword is refused with its line (exit $rc)" \
    test "$rc" = 2 -a -n "$(grep -F "typo.exp:2: unknown keyword 'gird'" "$BN_TMP/typo.out")"
printf 'option nodes 6\ngrid seed 1\nreport table seed - best_acc\n' > "$BN_TMP/typo.exp"
rc=0; "$X" run "$BN_TMP/typo.exp" --results "$res" --dry-run > "$BN_TMP/typo.out" 2>&1 || rc=$?
bn_expect_true "an unknown metric is refused with its line (exit $rc)" \
    test "$rc" = 2 -a -n "$(grep -F "typo.exp:3: unknown metric 'best_acc'" "$BN_TMP/typo.out")"

# 5. Tables and figures.
"$X" report "$exp" --results "$res" --out "$BN_TMP/report" > "$BN_TMP/report.out" 2>&1 \
    || { cat "$BN_TMP/report.out" >&2; bn_die "report failed"; }
md="$BN_TMP/report/table.md"
bn_expect_true "Markdown table: D-PSGD row with mean ± std over 2 seeds" \
    grep -Eq '^\| D-PSGD \| [0-9.]+ ± [0-9.]+ \[[0-9.]+, [0-9.]+\] \(2/2 seeds\)' "$md"
bn_expect_true "Markdown table: ours row with the paper's number beside it" \
    grep -Eq '^\| ours \| [0-9.]+ ± [0-9.]+ .*\(2/2 seeds\); paper 80.00' "$md"
bn_expect_true "CSV: two rows of 2 seeds with a numeric std" test "$(/usr/bin/python3 -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(sum(1 for r in rows if r['seeds'] == '2' and float(r['std']) >= 0 and 0 < float(r['mean']) <= 100))
" "$BN_TMP/report/table.csv")" = 2
for f in sweep-accuracy.png sweep-bars.png; do
    bn_expect_true "figure $f written" test "$(stat -c %s "$BN_TMP/report/$f" 2>/dev/null || echo 0)" -gt 10000
done
# 6. A swarm that finished but lost an honest node is not a result: a fake
#    swarm.sh writes summaries that mark a failed honest node or an epoch
#    with fewer honest reports than honest nodes (a failed Byzantine node is
#    its attack's business), then a real swarm with --fail-nodes 1.
fake="$BN_TMP/fakesrc"
mkdir -p "$fake/scripts"
cat > "$fake/scripts/swarm.sh" <<'SH'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do [ "$1" = --out ] && out="$2"; shift; done
mkdir -p "$out"
/usr/bin/python3 - "$out/summary.json" "$FAKE_CASE" <<'PY'
import json, sys
case = sys.argv[2]
ep = {"epoch": 1, "mean_accuracy": 0.7, "min_accuracy": 0.6, "max_accuracy": 0.8,
      "consensus_error": 1e-4, "byzantine_weight": 0.01, "honest_reported": 3, "models": 3}
nodes = [{"id": i, "role": "byzantine" if i == 3 else "honest", "state": "finished",
          "failed": False, "epochs": [{"epoch": 1, "accuracy": 0.7, "rounds": 10}]} for i in range(4)]
if case == "honest-failed":
    nodes[1].update(state="failed", failed=True)
if case == "byz-failed":
    nodes[3].update(state="failed", failed=True, epochs=[])
if case == "reports-short":
    ep["honest_reported"] = 2
if case == "honest-missing":
    del nodes[2]
json.dump({"config": {"nodes": 4, "byzantine": 1, "epochs": 1}, "epochs": [ep], "nodes": nodes},
          open(sys.argv[1], "w"))
PY
SH
chmod +x "$fake/scripts/swarm.sh"
for case in ok honest-failed reports-short honest-missing byz-failed; do
    printf 'option nodes 4\noption byzantine 1\noption epochs 1\noption tag %s\n' "$case" > "$BN_TMP/fake-$case.exp"
    rc=0
    FAKE_CASE=$case "$X" run "$BN_TMP/fake-$case.exp" --src "$fake" --build "$BN_BUILD" \
        --results "$BN_TMP/fake-results" --work "$BN_TMP/fake-work" > "$BN_TMP/fake-$case.out" 2>&1 || rc=$?
    n=$(find "$BN_TMP/fake-results" -name "*.json" 2>/dev/null | wc -l)
    case $case in
    ok|byz-failed)
        bn_expect_true "fake $case: recorded (exit $rc)" test "$rc" = 0 -a -n "$(grep 'ran 1, failed 0' "$BN_TMP/fake-$case.out")" ;;
    *)
        bn_expect_true "fake $case: FAIL, not recorded (exit $rc)" \
            test "$rc" = 1 -a -n "$(grep 'FAIL .*not recorded' "$BN_TMP/fake-$case.out")" ;;
    esac
done
bn_expect_true "fake: exactly the ok and byz-failed cells have result files" \
    test "$(find "$BN_TMP/fake-results" -name '*.json' | wc -l)" = 2
grep -h FAIL "$BN_TMP"/fake-*.out | sed 's/; see .*//' | while read -r l; do bn_log "$l"; done || true

sed -e 's/^option  epochs 1$/option  epochs 2\noption  fail-nodes 1/' -e 's/^grid    rule mean similarity$/grid    rule mean/' \
    -e 's/^grid    seed 1 2$/grid    seed 1/' "$exp" > "$BN_TMP/failnode.exp"
rc=0; run "$BN_TMP/failnode.exp" --results "$BN_TMP/fail-results" > "$BN_TMP/failnode.out" 2>&1 || rc=$?
bn_expect_true "a real swarm with a killed honest node: FAIL, not recorded (exit $rc)" \
    test "$rc" = 1 -a -n "$(grep -E 'FAIL .*honest node\(s\) [0-9]+ failed' "$BN_TMP/failnode.out")" \
    -a "$(count "$BN_TMP/fail-results")" = 0
grep FAIL "$BN_TMP/failnode.out" | sed 's/; see .*//' | while read -r l; do bn_log "$l"; done || true
# 7. docs/paper.md's Adaptive section (scripts/experiment.py paper) on made-up
#    result files for some of experiments/adaptive.exp's cells: each criterion
#    of issue 12 is evaluated on the cells present, "not run yet" elsewhere.
fres="$BN_TMP/paper-results"
fake_cells adaptive.exp "$fres" 80 "" '{
    ("robust-similarity", "none"): (0.89, 0.88, 2e-4),
    ("robust-similarity", "random"): (0.8800, 0.8700, 2e-4),
    ("robust-similarity", "reverse"): (0.8500, 0.8400, 2e-4),
    ("robust-similarity", "echo"): (0.8700, 0.8600, 2e-4),
    ("robust-similarity", "drift"): (0.8500, 0.8400, 2e-4),
    ("similarity", "drift"): (0.8300, 0.8200, 2e-4),
    ("similarity", "echo"): (0.8800, 0.8700, 2e-4)}'
"$X" paper --results "$fres" --out "$BN_TMP/paper.md" --report-dir "$BN_TMP/paper-rep" \
    > "$BN_TMP/paper.out" 2>&1 || { cat "$BN_TMP/paper.out" >&2; bn_die "paper failed"; }
pm="$BN_TMP/paper.md"
bn_expect_true "paper.md has the Adaptive section" grep -q '^## Adaptive' "$pm"
bn_expect_true "random: 88.00 vs Table 3's 87.91 holds" \
    grep -q 'robust-similarity under random: 88.00% over 1 seed(s).*87.91%, difference +0.09 points -> holds' "$pm"
bn_expect_true "reverse: 85.00 vs 87.72 does not hold" \
    grep -q 'robust-similarity under reverse: 85.00%.*difference -2.72 points -> DOES NOT hold' "$pm"
bn_expect_true "D-LIE: not run yet" grep -q 'robust-similarity under D-LIE: not run yet' "$pm"
bn_expect_true "echo: -2 points from no attack holds, similarity beside" \
    grep -q 'robust-similarity under echo: 87.00% over 1 seed(s), -2.00 points from no attack -> holds (within 3); similarity (the paper.s rule) 88.00%' "$pm"
bn_expect_true "drift: -4 points does not hold" \
    grep -q 'robust-similarity under drift: 85.00% over 1 seed(s), -4.00 points from no attack -> DOES NOT hold' "$pm"
bn_expect_true "minmax: not run yet" grep -q 'robust-similarity under minmax: not run yet; similarity not run yet' "$pm"
bn_expect_true "the strongest adaptive attack against similarity is drift" \
    grep -q 'strongest adaptive attack against similarity among those run: drift (similarity 83.00%, robust-similarity 85.00%)' "$pm"
bn_expect_true "7 of 14 cells counted" grep -q '7 of 14 cells of experiments/adaptive.exp finished' "$pm"
# 8. 'report check issue12-small' (experiments/adaptive20.exp) on made-up seed-1
#    cells: each bound of issue 12's first Done-when, met and missed.
cres="$BN_TMP/check-results"
fake_cells adaptive20.exp "$cres" 3 1 '{
    ("robust-similarity", "none"): (0.8100, 0.8000, 5e-5),
    ("robust-similarity", "echo"): (0.8050, 0.7900, 5e-5),       # -0.5 / -1.0: holds
    ("robust-similarity", "drift"): (0.7950, 0.7900, 5e-5),      # -1.5: mean misses
    ("robust-similarity", "dissensus"): (0.8100, 0.8000, 2e-3),  # consensus misses
    ("robust-similarity", "dlie"): (0.8090, 0.7750, 5e-5),       # -2.5: min misses
    ("robust-similarity", "random"): (0.8120, 0.8000, 5e-5),
    ("similarity", "random"): (0.8000, 0.7900, 5e-5),            # +1.2: misses
    ("similarity", "dlie"): (0.8050, 0.7900, 5e-5)}'             # +0.4: holds
"$X" report "$BN_SRC/experiments/adaptive20.exp" --results "$cres" --out "$BN_TMP/check-rep" \
    > "$BN_TMP/check.out" 2>&1 || { cat "$BN_TMP/check.out" >&2; bn_die "report failed"; }
cm="$BN_TMP/check-rep/table.md"
bn_expect_true "check: echo holds (-0.50, -1.00)" \
    grep -q 'under echo: mean 80.50% (-0.50 points: holds within 1), min 79.00% (-1.00: holds within 2), consensus 5e-05 (holds < 1e-3)' "$cm"
bn_expect_true "check: drift's mean misses" grep -q 'under drift: mean 79.50% (-1.50 points: DOES NOT hold within 1)' "$cm"
bn_expect_true "check: dissensus's consensus misses" grep -q 'under dissensus: .*consensus 0.002 (DOES NOT hold < 1e-3)' "$cm"
bn_expect_true "check: D-LIE's minimum misses" grep -q 'under dlie: mean 80.90% .*min 77.50% (-2.50: DOES NOT hold within 2)' "$cm"
bn_expect_true "check: random vs similarity +1.20 misses" \
    grep -q 'similarity under random: 81.20% vs 80.00% (+1.20 points: DOES NOT hold within 1; robust-similarity is the higher, so it pays nothing)' "$cm"
bn_expect_true "check: D-LIE vs similarity holds" grep -q 'similarity under D-LIE: 80.90% vs 80.50% (+0.40 points: holds within 1)' "$cm"
bn_expect_true "check: reverse not run yet" grep -q 'similarity under reverse: not run yet' "$cm"
bn_expect_true "check: the table row for echo" grep -q '^| echo | 80.50 (1) | 79.00 (1) | 5e-05 (1) | 0.010 (1) | not run' "$cm"
bn_finish
