// runs: what `lorascope run` reads back from finished training runs, and the
// experiment-level analyses it runs over them (tables, curves, and the
// `lorascope analyze` kinds with adapters chosen by sweep coordinates).
#ifndef LS_RUNS_H
#define LS_RUNS_H

#include "exp/plan.h"

// Runs every [analysis] of e over its runs; outputs under results/<e->name>/.
int run_analyses(const experiment *e, const exp_run *runs, int n_runs, const char *results, int no_plot);

#endif
