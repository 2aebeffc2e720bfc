// The subcommands of `lorascope`. Each takes the arguments after its name
// (argv[0] is the subcommand), returns the process exit code, prints a
// one-line reason to stderr on failure, and answers `--help`.
#ifndef LS_COMMANDS_H
#define LS_COMMANDS_H

#include <stddef.h>

// The shared assets directory (the build sets it; this is the fallback).
#ifndef LS_DEFAULT_ASSETS
#define LS_DEFAULT_ASSETS "../shared/assets"
#endif

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} ls_command;

int cmd_analyze(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_latency(int argc, char **argv); // bench --latency
int cmd_bench_gpu(int argc, char **argv);     // bench --backend cuda
int cmd_run(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

// 1 if argv holds -h or --help.
int cli_wants_help(int argc, char **argv);

// A benchmark's Markdown table (malloc'd; freed here): printed, and written
// atomically to `out` when that is set (then "table: OUT"). Returns the exit
// code: 0, or 1 after a one-line error.
int cli_put_table(char *table, size_t size, const char *out);

// The python the benchmarks run their PyTorch side with: $LORASCOPE_PYTHON, else /usr/bin/python3.
const char *cli_python(void);

#endif
