// generate: `lorascope generate` as one library call. Text from a model (and
// optionally a PEFT adapter merged into its weights) as llama2.c's run.c
// generates it: BOS, the prompt's tokens forced, then argmax (temperature 0)
// or temperature / top-p samples from llama2.c's xorshift stream
// (engine/sampler.h), until `steps` positions or BOS comes out.
//
// The settings are one option table (base/options.h) under the INI section
// [generate]; the prompt is the caller's text, outside the table.
#ifndef LS_TRAIN_GENERATE_H
#define LS_TRAIN_GENERATE_H

#include <stddef.h>

#include "base/options.h"

#define GENERATE_PATH 4096
#define GENERATE_SHORT 64

typedef struct {
    char model[GENERATE_PATH];     // llama2.c .bin or HF dir (required)
    char tokenizer[GENERATE_PATH]; // tokenizer.bin | dir with encoder.json + vocab.bpe | bytes | "" (beside the model)
    char adapter[GENERATE_PATH];   // PEFT adapter dir or run dir holding adapter/; "" = none
    int steps;                     // positions to run, BOS included (at most the model's max_seq_len)
    double temperature;            // 0 = greedy argmax
    double top_p;                  // nucleus mass; 1 = the whole distribution
    long long seed;                // sampler seed (uint64 xorshift state; 0 acts as 1)
    char backend[GENERATE_SHORT];  // cpu | cuda | auto
    int threads;                   // OpenMP threads (0 = OpenMP's default)
    const char *prompt;            // not in the table: the text to continue (may be ""); NULL = not given
} generate_request;

typedef struct {
    char *text;     // the decoded text after BOS, prompt included (malloc'd; generate_report_free)
    size_t len;     // bytes of text (it may hold NULs from byte tokens)
    int tokens;     // positions generated, BOS included
    double seconds; // wall time of generation
} generate_report;

// The option table behind the request ([generate] in INI files, flags as
// `lorascope generate` takes them).
const opt_table *generate_table(void);

// Defaults: steps 256, temperature 0, top_p 0.9, seed 1, backend cpu,
// threads 0, every path "", prompt NULL.
void generate_defaults(generate_request *req);

// The checks that need no file: model and prompt given, the backend usable
// (--backend cuda: a GPU now; auto is resolved when generation starts).
// Returns 0, or -1 with ls_error() naming the flag.
int generate_check(const generate_request *req);

// Loads the model (+ adapter) and tokenizer, encodes the prompt after BOS and
// generates. Prints nothing. Fills *rep (free with generate_report_free).
// Returns 0, or -1 with ls_error() (generate_check's errors included; a
// prompt that does not fit in steps).
int generate_run(const generate_request *req, generate_report *rep);

void generate_report_free(generate_report *rep);

#endif
