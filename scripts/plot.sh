#!/usr/bin/env bash
# plot.sh DIR -- accuracy (mean with the honest min-max band) and consensus
# error (log scale) over epochs, from DIR/epochs.csv, as DIR/accuracy.png and
# DIR/consensus.png.
set -euo pipefail
dir="${1:?usage: plot.sh RUN_DIR}"
csv="$dir/epochs.csv"
[ -s "$csv" ] || { echo "plot.sh: $csv is missing or empty" >&2; exit 1; }
gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 800,500 noenhanced
set key bottom right
set grid
set xlabel "epoch"
set output "$dir/accuracy.png"
set ylabel "test accuracy (honest nodes)"
set yrange [0:1]
plot "$csv" every ::1 using 1:3:4 with filledcurves lc rgb "#c6dbef" title "min-max", \
     "" every ::1 using 1:2 with linespoints lw 2 lc rgb "#08519c" title "mean"
set output "$dir/consensus.png"
set ylabel "consensus error (eq. 3)"
set autoscale y
set logscale y
plot "$csv" every ::1 using 1:(\$5 > 0 ? \$5 : 1/0) with linespoints lw 2 lc rgb "#a50f15" title "consensus error"
GP
echo "plot.sh: wrote $dir/accuracy.png and $dir/consensus.png"
