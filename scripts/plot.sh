#!/usr/bin/env bash
# plot.sh DIR -- from DIR/epochs.csv (written by byznode monitor) draw
#   DIR/accuracy.png   honest test accuracy: mean, with the min-max band
#   DIR/consensus.png  consensus error (eq. 3) over epochs
# The consensus plot uses a log scale when some epoch has a positive error;
# when every value is 0 (one node, a standalone run, identical models) a log
# scale has nothing to show, so it is linear with a note saying why.  Epochs
# without an accuracy (nan: no honest node evaluated) are left out.
set -euo pipefail
dir="${1:?usage: plot.sh RUN_DIR}"
csv="$dir/epochs.csv"
[ -s "$csv" ] || { echo "plot.sh: $csv is missing or empty" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed" >&2; exit 1; }

# Facts about the data that decide the axes: epochs, last epoch, positive
# consensus errors, epochs with a finite accuracy.
# For the log axis: whole decades with a margin, so that no point sits on
# the frame and at least two decades are labelled.
read -r rows last_epoch positive with_acc ylo yhi < <(awk -F, '
    NR == 1 { next }
    { rows++; last = $1
      if ($5 + 0 > 0) { pos++; if (!lo || $5 < lo) lo = $5; if ($5 > hi) hi = $5 }
      if ($2 != "nan" && $2 != "-nan" && $2 != "") acc++ }
    function decade(x, up) { e = log(x) / log(10); f = int(e); if (f > e) f--; if (up && f < e) f++; return f }
    END { if (!pos) { lo = hi = 1 }
          printf "%d %d %d %d 1e%d 1e%d\n", rows, last, pos, acc, decade(lo * 0.9, 0), decade(hi * 1.1, 1) }' "$csv")
[ "$rows" -gt 0 ] || { echo "plot.sh: $csv has no epoch rows" >&2; exit 1; }

# One epoch would give an empty x range: pad the axis by half an epoch.
xrange="set xrange [0.5:$((last_epoch)).5]"
if [ "$positive" -gt 0 ]; then
    cons_axis="set logscale y; set format y \"%.0e\"; set yrange [$ylo:$yhi]"
    cons_note=""
else
    cons_axis="unset logscale y; set yrange [-0.05:1]"
    cons_note="set label 1 \"consensus error is 0 in every epoch\\n(one honest node, or identical models):\\nlinear scale instead of log\" at graph 0.5, graph 0.6 center"
fi
acc_note=""
[ "$with_acc" -gt 0 ] || acc_note="set label 1 \"no epoch has an honest accuracy\" at graph 0.5, graph 0.5 center"

gnuplot <<GP
set datafile separator ","
set datafile missing "nan"
set terminal pngcairo size 800,500 noenhanced
set key bottom right
set grid
set xlabel "epoch"
$xrange
set xtics 1
if ($last_epoch > 20) { set xtics autofreq }

set output "$dir/accuracy.png"
set ylabel "test accuracy (honest nodes)"
set yrange [0:1]
$acc_note
plot "$csv" every ::1 using 1:3:4 with filledcurves lc rgb "#c6dbef" title "min-max", \
     "" every ::1 using 1:2 with linespoints lw 2 pt 7 lc rgb "#08519c" title "mean"
unset label 1

set output "$dir/consensus.png"
set ylabel "consensus error (eq. 3)"
set key top right
set autoscale y
$cons_axis
$cons_note
plot "$csv" every ::1 using 1:($positive > 0 ? (\$5 > 0 ? \$5 : 1/0) : \$5) \
     with linespoints lw 2 pt 7 lc rgb "#a50f15" title "consensus error"
GP
echo "plot.sh: wrote $dir/accuracy.png and $dir/consensus.png"
