# lines.gp: line plots in panels (singular spectra, intruder cosines,
# amplification factor per layer).
#
# Set by the caller:
#   term, out      terminal ('pngcairo' | 'svg') and output file
#   files          whitespace-separated TSV files; column 1 is x, column `ycol` is y
#   titles         one legend entry per file (quoted if they contain spaces)
#   panels         one panel number (1-based) per file
#   panel_titles   one title per panel
#   ncols          panels per row
#   xlabel, ylabel axis labels; logy = 1 for a logarithmic y axis
#   ycol           the y column (default 2); hline = a horizontal reference line
#   ymin, ymax     optional fixed y range
#   errorbars = 1  columns x, mean, std: points with error bars (rank sweeps)
#   logx = 1       logarithmic x axis (ranks 1, 2, 4, ...)
#   xstep          x tic spacing (1 for layers)
if (!exists("ycol")) ycol = 2
if (!exists("logy")) logy = 0
if (!exists("logx")) logx = 0
if (!exists("errorbars")) errorbars = 0
if (!exists("xlabel")) xlabel = ''
if (!exists("ylabel")) ylabel = ''
np = words(panel_titles)
if (!exists("ncols")) ncols = np
nrows = int(ceil(np * 1.0 / ncols))
pw = (np == 1 ? 620 : 420); ph = 320
if (term eq 'svg') { set terminal svg size ncols * pw, nrows * ph font 'Sans,11' dynamic }
else { set terminal pngcairo size ncols * pw, nrows * ph font 'Sans,10' }
set output out
set xlabel xlabel
set ylabel ylabel
set grid lc rgb '#dddddd'
set tics out nomirror
set key top right font ',8' samplen 2
if (logy) { set logscale y; set format y '10^{%T}' }
if (exists("ymin") && exists("ymax")) { set yrange [ymin:ymax] }
if (logx) { set logscale x 2; set xtics 2 }
if (exists("xstep")) { set xtics xstep }
set multiplot layout nrows, ncols
do for [p = 1:np] {
    pf = ''; pt = ''
    do for [k = 1:words(files)] {
        if (word(panels, k) + 0 == p) { pf = pf . ' ' . word(files, k); pt = pt . ' "' . word(titles, k) . '"' }
    }
    set title word(panel_titles, p)
    if (errorbars) {
        plot for [k = 1:words(pf)] word(pf, k) using 1:2:3 with yerrorlines pt 7 ps 0.6 title word(pt, k)
    } else { if (exists("hline")) {
        plot for [k = 1:words(pf)] word(pf, k) using 1:ycol with linespoints pt 7 ps 0.5 title word(pt, k), \
             hline with lines dt 2 lc rgb '#888888' title sprintf('ε = %g', hline)
    } else {
        plot for [k = 1:words(pf)] word(pf, k) using 1:ycol with linespoints pt 7 ps 0.5 title word(pt, k)
    } }
}
unset multiplot
