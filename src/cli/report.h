// Moved to src/report/report.h; kept only for cmd_run.c's include (it uses
// nothing of it). Delete once that include line goes.
#include "report/report.h"
