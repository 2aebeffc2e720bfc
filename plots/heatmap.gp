# heatmap.gp: panels of normalized subspace similarity φ(i, j) in the style of
# Hu et al. 2021, Fig. 3, 4, 6, 7, 8 (colour bar 0-1, i on the vertical axis).
#
# Set by the caller (lorascope analyze ... or `gnuplot -e '...' heatmap.gp`):
#   term, out      terminal ('pngcairo' | 'svg') and output file
#   files          whitespace-separated TSV files: "i<TAB>j<TAB>phi", one row of
#                  the grid per block (blank line between values of i)
#   titles         one title per file (quote titles that contain spaces)
#   ncols          panels per row
#   xlabel, ylabel axis labels (e.g. 'j (A_{r=64})', 'i (A_{r=8})')
#   suptitle       title over all panels
n = words(files)
if (!exists("ncols")) ncols = n
nrows = int(ceil(n * 1.0 / ncols))
if (!exists("xlabel")) xlabel = 'j'
if (!exists("ylabel")) ylabel = 'i'
if (!exists("suptitle")) suptitle = ''
pw = 360; ph = 300
if (term eq 'svg') { set terminal svg size ncols * pw, nrows * ph + 40 font 'Sans,11' dynamic }
else { set terminal pngcairo size ncols * pw, nrows * ph + 40 font 'Sans,10' }
set output out
# viridis
set palette defined (0 '#440154', 0.13 '#482878', 0.25 '#3e4989', 0.38 '#31688e', 0.5 '#26828e', \
                     0.63 '#1f9e89', 0.75 '#35b779', 0.88 '#6ece58', 1 '#fde725')
set cbrange [0:1]
set cbtics 0.2
set xlabel xlabel
set ylabel ylabel
set tics out nomirror
set key off
set multiplot layout nrows, ncols title suptitle font ',12'
do for [k = 1:n] {
    f = word(files, k)
    set xrange [*:*]; set yrange [*:*]
    stats f using 1:2 nooutput
    imax = STATS_max_x; jmax = STATS_max_y
    set xrange [0.5 : jmax + 0.5]
    set yrange [imax + 0.5 : 0.5]   # i = 1 at the top, as in the paper
    xstep = jmax <= 10 ? 1 : jmax <= 20 ? 2 : jmax <= 40 ? 4 : 8
    ystep = imax <= 10 ? 1 : imax <= 20 ? 2 : imax <= 40 ? 4 : 8
    set xtics xstep
    set xtics add (1)
    set ytics ystep
    set ytics add (1)
    set title word(titles, k)
    plot f using 2:1:3 with image
}
unset multiplot
