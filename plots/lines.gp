# lines.gp: line plots in panels (singular spectra, intruder cosines,
# amplification factor per layer, statistics per layer with their chance band,
# rank sweeps).
#
# Set by the caller:
#   term, out      terminal ('pngcairo' | 'svg') and output file
#   files          whitespace-separated TSV files; column 1 is x, column `ycol` is y
#   titles         one legend entry per file (quoted if they contain spaces;
#                  an empty title "" gives the file no legend entry)
#   panels         one panel number (1-based) per file
#   panel_titles   one title per panel
#   ncols          panels per row
#   xlabel, ylabel axis labels; logy = 1 for a logarithmic y axis
#   ycol           the y column (default 2); hline = a horizontal reference line
#   hline_title    its legend entry (default 'ε = <hline>')
#   ymin, ymax     optional fixed y range (the same for every panel)
#   bandlo, bandhi columns of a band drawn shaded behind each file's line, in
#                  its colour (e.g. a chance band: chance mean to p99)
#   band_title     legend entry of the bands (default 'chance band')
#   refcol         with bandlo and hline: a column drawn dotted in each file's
#                  colour (e.g. where the paper's value would put that file),
#                  legend entry ref_title
#   colors         one colour index per file (default: its place in the panel);
#                  files of one colour are one series (e.g. one per layer)
#   errorbars = 1  columns x, mean, std: points with error bars (rank sweeps)
#   hlines         with errorbars: reference values drawn across the panel
#                  (e.g. the base model's and full fine-tuning's, Table 6), one
#                  legend entry each from hline_titles
#   logx = 1       logarithmic x axis (ranks 1, 2, 4, ...)
#   xstep          x tic spacing (1 for layers: integer ticks only)
#   xfix = 1       x range exactly the data's (no padding to the next tic)
# The legend sits below each panel, off the data.
if (!exists("ycol")) ycol = 2
if (!exists("logy")) logy = 0
if (!exists("logx")) logx = 0
if (!exists("errorbars")) errorbars = 0
if (!exists("xlabel")) xlabel = ''
if (!exists("ylabel")) ylabel = ''
if (!exists("band_title")) band_title = 'chance band'
if (!exists("xfix")) xfix = 0
nh = exists("hlines") ? words(hlines) : 0
np = words(panel_titles)
if (!exists("ncols")) ncols = np
nrows = int(ceil(np * 1.0 / ncols))
pw = (np == 1 ? 640 : 480); ph = 380
if (term eq 'svg') { set terminal svg size ncols * pw, nrows * ph font 'Sans,11' dynamic }
else { set terminal pngcairo size ncols * pw, nrows * ph font 'Sans,10' }
set output out
set xlabel xlabel
set ylabel ylabel
set grid lc rgb '#dddddd'
set tics out nomirror
set key outside below center horizontal maxrows 3 font ',8' samplen 2 spacing 1.1 width 1
if (logy) { set logscale y; set format y '10^{%T}' }
if (exists("ymin") && exists("ymax")) { set yrange [ymin:ymax] }
if (logx) { set logscale x 2; set xtics 2 }
if (exists("xstep")) { set xtics xstep; set format x '%.0f'; set mxtics 1 }
if (xfix) { set autoscale xfix }
set style fill transparent solid 0.18 noborder
set multiplot layout nrows, ncols
do for [p = 1:np] {
    pf = ''; pt = ''; pc = ''
    do for [k = 1:words(files)] {
        if (word(panels, k) + 0 == p) {
            pf = pf . ' ' . word(files, k); pt = pt . ' "' . word(titles, k) . '"'
            pc = pc . ' ' . (exists("colors") ? word(colors, k) : sprintf('%d', words(pf)))
        }
    }
    set title word(panel_titles, p)
    if (exists("xstep")) {
        # Integer ticks only: a panel of few x values would otherwise get 0.5 steps.
        # stats takes a lone column as y: free of the y range and scale while it
        # reads the x values (a single layer 15 lay outside a y range of 0.06-4.4).
        set autoscale y; unset logscale y
        stats word(pf, 1) using 1 nooutput
        if (logy) { set logscale y }
        if (exists("ymin") && exists("ymax")) { set yrange [ymin:ymax] }
        if (STATS_max - STATS_min < 1) { set xrange [STATS_min - 0.5 : STATS_max + 0.5] } else { set xrange [*:*] }
    }
    if (errorbars) {
        # Ticks at the x values measured (a rank sweep 1, 4, 16 has no 2 or 8),
        # none on the frame (error bars there would be hidden).
        set offsets graph 0.06, graph 0.06, 0, 0
        if (nh > 0) {
            plot for [k = 1:words(pf)] word(pf, k) using 1:2:3:xtic(1) with yerrorlines pt 7 ps 0.6 \
                     lc word(pc, k) + 0 title word(pt, k), \
                 for [h = 1:nh] word(hlines, h) + 0 with lines dt h + 1 lc rgb '#444444' title word(hline_titles, h)
        } else {
            plot for [k = 1:words(pf)] word(pf, k) using 1:2:3:xtic(1) with yerrorlines pt 7 ps 0.6 \
                 lc word(pc, k) + 0 title word(pt, k)
        }
    } else { if (exists("bandlo") && exists("hline")) {
        # refcol's lines are an iteration that is empty without it (its column
        # read through value(), which gnuplot evaluates only when plotting)
        plot for [k = 1:words(pf)] word(pf, k) using 1:bandlo:bandhi with filledcurves lc word(pc, k) + 0 \
                 title (k == 1 ? band_title : ''), \
             for [k = 1:(exists("refcol") ? words(pf) : 0)] word(pf, k) using 1:(column(value("refcol"))) \
                 with lines dt 3 lw 1.5 lc word(pc, k) + 0 title (k == 1 ? ref_title : ''), \
             for [k = 1:words(pf)] word(pf, k) using 1:ycol with linespoints pt 7 ps 0.5 lc word(pc, k) + 0 \
                 title word(pt, k), \
             hline with lines dt 2 lc rgb '#555555' title (exists("hline_title") ? hline_title : '')
    } else { if (exists("bandlo")) {
        plot for [k = 1:words(pf)] word(pf, k) using 1:bandlo:bandhi with filledcurves lc word(pc, k) + 0 \
                 title (k == 1 ? band_title : ''), \
             for [k = 1:words(pf)] word(pf, k) using 1:ycol with linespoints pt 7 ps 0.5 lc word(pc, k) + 0 \
                 title word(pt, k)
    } else { if (exists("hline")) {
        plot for [k = 1:words(pf)] word(pf, k) using 1:ycol with linespoints pt 7 ps 0.5 lc word(pc, k) + 0 \
                 title word(pt, k), \
             hline with lines dt 2 lc rgb '#888888' \
                 title (exists("hline_title") ? hline_title : sprintf('ε = %g', hline))
    } else {
        plot for [k = 1:words(pf)] word(pf, k) using 1:ycol with linespoints pt 7 ps 0.5 lc word(pc, k) + 0 \
             title word(pt, k)
    } } } }
}
unset multiplot
