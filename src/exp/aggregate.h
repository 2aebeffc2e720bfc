// aggregate: the experiment-level [analysis] kinds that read finished runs'
// records (metrics.jsonl, eval.json, manifest.json) rather than their weights.
//
//   table  one row per combination of the `rows` axes, `metrics` as mean ±
//          sample std over the `over` axis (seeds), with the mean's 95%
//          Student-t interval; every other axis must have a single value;
//          optional figure `plot_x` (e.g. rank) vs the first metric, one line
//          per `plot_series` value, error bars = std; optional `compare =
//          METRIC` (one of the metrics): Welch's t-test of its mean between
//          every two rows, <output or NAME>_compare.{tsv,md}. Without
//          `rows`, one row ("all") over the `over` axis. `median = yes`
//          adds each cell's median (<metric>_median in the TSV). A metric is
//          val_loss, base_val_loss, train_loss, best_KEY (the best
//          evaluation after step 0: the paper's "best epoch") or a key of a
//          run's records (aggregate.c, run_metric).
//          Writes <out_dir>/<output or NAME>.{tsv,md}[,.png,.svg], the
//          figure's data in <out_dir>/data/<output or NAME>/.
//   curve  a metric (default val_loss) against step for the runs picked by
//          `runs` (selectors separated by '|'), from step `from` (default 0:
//          the base model's evaluation too); writes <out_dir>/NAME.png,.svg
//          and one TSV a run in <out_dir>/data/NAME/.
#ifndef LS_EXP_AGGREGATE_H
#define LS_EXP_AGGREGATE_H

#include "exp/plan.h"

// Return 0, or -1 with ls_error() naming the experiment file and section.
int exp_table(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out_dir,
              int no_plot);
int exp_curve(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out_dir,
              int no_plot);

// The same sections checked before anything trains: known keys, axes that
// exist, selectors that resolve. Return 0, or -1 with ls_error().
int exp_table_check(const experiment *e, const exp_analysis *an);
int exp_curve_check(const experiment *e, const exp_analysis *an, const exp_run *runs, int n);

#endif
