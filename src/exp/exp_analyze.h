// exp_analyze: one [analysis NAME] section of kind subspace, amplify,
// w-vs-dw, spectrum or intruders, run over an experiment's finished runs
// through analyze_run (src/analyze/analyze.h).
//
// Keys: `a` and `b` (subspace: one selector each; with `pairs = seeds`, each
// may select several runs and every pair of runs of different seeds is
// compared: analyze.h on pairs), `adapters` (the others:
// selectors separated by '|'; a run trained with --full true gives its full
// fine-tuning checkpoint, the others their adapter), and the options of
// `lorascope analyze`: module, layer, side, rank, imax, top-k, eps, energy,
// seed. The base is the first selected run's --model.
#ifndef LS_EXP_ANALYZE_H
#define LS_EXP_ANALYZE_H

#include "exp/plan.h"

// Runs an (kind other than table or curve) over runs[0..n) of e, writing
// <out>/<NAME>.{tsv,md,png,svg} and <out>/data/<NAME>/ (figures unless no_plot). Prints the equivalent
// `lorascope analyze` command line to stderr first, and the files written to
// stdout after. Returns 0, or -1 with ls_error() naming the file and section
// (an analysis that failed once started has printed its reason to stderr).
int exp_analyze(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, const char *out,
                int no_plot);

// The same section checked without running it, before anything trains: its
// keys, its selectors (each resolves to exactly one run), the request's
// options and size (at most ANALYZE_MAX_ADAPTERS inputs); with need_weights,
// also that every input it selects is here (an adapter directory's weights
// file, a fine-tuned checkpoint): for `run --gather` over a clone, whose
// records outnumber its weights, so that an analysis runs over the runs it
// names or not at all. Returns 0, or -1 with ls_error() naming the file and
// the section, or the missing weights ("needs the weights of ...").
int exp_analyze_check(const experiment *e, const exp_analysis *an, const exp_run *runs, int n, int need_weights);

// Every [analysis] section of e checked as above (table and curve sections by
// exp_table_check / exp_curve_check). Returns 0, or -1 with ls_error().
int exp_validate_analyses(const experiment *e, const exp_run *runs, int n);

#endif
