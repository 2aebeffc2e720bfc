# heatmap.gp: panels of normalized subspace similarity φ(i, j) in the style of
# Hu et al. 2021, Fig. 3, 4, 6, 7, 8: i on the vertical axis from the top, one
# colour scale 0-1 shared by every panel (one colour bar, at the right).
#
# Set by the caller (lorascope analyze ... or `gnuplot -e '...' heatmap.gp`):
#   term, out      terminal ('pngcairo' | 'svg') and output file
#   files          whitespace-separated TSV files: "i<TAB>j<TAB>phi", one row of
#                  the grid per block (blank line between values of i)
#   titles         one title per file (quote titles that contain spaces)
#   ncols          panels per row (the caller orders files row by row)
#   xlabel, ylabel axis labels (e.g. 'j (A_{r=64})', 'i (A_{r=8})'); drawn on
#                  the bottom row and the left column only
#   suptitle       title over all panels
#
# A grid with one column (or one row), e.g. r = 1, cannot be drawn as an image
# (gnuplot draws nothing): it is drawn as bars of φ against its other index,
# coloured on the same scale.
n = words(files)
if (!exists("ncols")) ncols = n
nrows = int(ceil(n * 1.0 / ncols))
if (!exists("xlabel")) xlabel = 'j'
if (!exists("ylabel")) ylabel = 'i'
if (!exists("suptitle")) suptitle = ''
pw = 300; ph = 270
left = 70; right = 100; top = 75; bottom = 55
W = ncols * pw + left + right; H = nrows * ph + top + bottom
if (term eq 'svg') { set terminal svg size W, H font 'Sans,11' dynamic }
else { set terminal pngcairo size W, H font 'Sans,10' }
set output out
# viridis
set palette defined (0 '#440154', 0.13 '#482878', 0.25 '#3e4989', 0.38 '#31688e', 0.5 '#26828e', \
                     0.63 '#1f9e89', 0.75 '#35b779', 0.88 '#6ece58', 1 '#fde725')
set cbrange [0:1]
set cbtics 0.2
set tics out nomirror
set key off
# Tick spacing for an axis of n cells: every cell up to 10, then 1 and multiples
# of a step that leaves at most five labels (no two labels collide).
tickstep(n) = n <= 10 ? 1 : n <= 20 ? 5 : n <= 40 ? 10 : n <= 80 ? 16 : n <= 160 ? 32 : 64
set multiplot layout nrows, ncols title suptitle font ',12' \
    margins screen left * 1.0 / W, 1 - right * 1.0 / W, bottom * 1.0 / H, 1 - top * 1.0 / H \
    spacing screen 75.0 / W, 70.0 / H
do for [k = 1:n] {
    f = word(files, k)
    row = int((k - 1) / ncols); col = (k - 1) % ncols
    bottomrow = row == nrows - 1 || k + ncols > n
    set xrange [*:*]; set yrange [*:*]
    stats f using 1:2 nooutput
    imax = int(STATS_max_x); jmax = int(STATS_max_y)
    set title word(titles, k)
    if (k == n) {
        set colorbox user origin screen 1 - 75.0 / W, bottom * 1.0 / H size screen 16.0 / W, 1 - (top + bottom) * 1.0 / H
        set cblabel 'φ'
    } else { unset colorbox }
    if (imax >= 2 && jmax >= 2) {
        set xlabel (bottomrow ? xlabel : '')
        set ylabel (col == 0 ? ylabel : '')
        set xrange [0.5 : jmax + 0.5]
        set yrange [imax + 0.5 : 0.5]   # i = 1 at the top, as in the paper
        set xtics 0, tickstep(jmax); set xtics add (1)
        set ytics 0, tickstep(imax); set ytics add (1)
        plot f using 2:1:3 with image
    } else {
        # One column (j = 1) or one row (i = 1): bars of φ over the other index.
        m = jmax == 1 ? imax : jmax
        set xlabel (bottomrow ? (jmax == 1 ? ylabel : xlabel) : '')
        set ylabel (jmax == 1 ? 'φ(i, 1)' : 'φ(1, j)')
        set xrange [0.5 : m + 0.5]
        set yrange [0 : 1]
        set xtics 0, tickstep(m); set xtics add (1)
        set ytics 0.2
        set boxwidth 0.8
        set style fill solid 1.0 noborder
        if (jmax == 1) { plot f using 1:3:(0.8):3 with boxes lc palette }
        else { plot f using 2:3:(0.8):3 with boxes lc palette }
    }
}
unset multiplot
