// options: one table of options per command, serving its command-line flags,
// its INI files (libinih) and the config.ini a run writes alike.
//
// A command describes its options once, as an array of opt_spec pointing into
// its own request struct (offsetof). Every option has an INI section and key
// ("[lora] rank = 8") and a flag (--rank 8); values are parsed by one parser
// (base/parse.h) with the option's range, so the command line, INI files and
// experiment files give the same errors:
//
//   --rank: expected an integer in [1, 65536], found 'x'
//   run.ini:3: [lora] rank: expected an integer in [1, 65536], found 'x'
#ifndef LS_OPTIONS_H
#define LS_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef enum { OPT_INT, OPT_LLONG, OPT_FLOAT, OPT_BOOL, OPT_STR, OPT_CHOICE } opt_type;

typedef struct {
    const char *section, *key, *flag; // INI [section] key; flag without "--"
    opt_type type;
    size_t offset, size;    // into the request struct; size of a char[] for OPT_STR / OPT_CHOICE
    double lo, hi;          // inclusive range of numbers (ints and floats)
    int open;               // LS_OPEN_LO / LS_OPEN_HI (base/parse.h): the range excludes that end
    const char *choices;    // OPT_CHOICE: "a|b|c"
    int run_control;        // may change on --resume (not part of what a run computes)
    int hidden;             // not in --help nor in a written config
    const char *help;
} opt_spec;

typedef struct {
    const opt_spec *specs;
    int n;
    const char *sections;   // for messages: "model, data, lora, optim or run"
    const char *command;    // for messages: "lorascope train"
} opt_table;

// Table-building helpers: OPT_STR_(S, section, key, flag, field, run_control, help) etc.,
// where S is the request struct's type.
#define OPT_OFF_(S, f) offsetof(S, f)
#define OPT_SZ_(S, f) sizeof(((S *)0)->f)
#define OPT_STR_(S, sec, key, flag, f, rc, help) \
    {sec, key, flag, OPT_STR, OPT_OFF_(S, f), OPT_SZ_(S, f), 0, 0, 0, NULL, rc, 0, help}
#define OPT_CHOICE_(S, sec, key, flag, f, ch, help) \
    {sec, key, flag, OPT_CHOICE, OPT_OFF_(S, f), OPT_SZ_(S, f), 0, 0, 0, ch, 0, 0, help}
#define OPT_INT_(S, sec, key, flag, f, lo, hi, rc, help) \
    {sec, key, flag, OPT_INT, OPT_OFF_(S, f), 0, lo, hi, 0, NULL, rc, 0, help}
#define OPT_LLONG_(S, sec, key, flag, f, lo, hi, rc, help) \
    {sec, key, flag, OPT_LLONG, OPT_OFF_(S, f), 0, lo, hi, 0, NULL, rc, 0, help}
#define OPT_FLOAT_(S, sec, key, flag, f, lo, hi, open, help) \
    {sec, key, flag, OPT_FLOAT, OPT_OFF_(S, f), 0, lo, hi, open, NULL, 0, 0, help}
#define OPT_BOOL_(S, sec, key, flag, f, help) \
    {sec, key, flag, OPT_BOOL, OPT_OFF_(S, f), 0, 0, 1, 0, NULL, 0, 0, help}

// The option with this INI section and key (section NULL: any section), or
// with this flag; NULL if none.
const opt_spec *opt_find(const opt_table *t, const char *section, const char *key);
const opt_spec *opt_find_flag(const opt_table *t, const char *flag);

// Sets one option of obj from its text. `who` names the source in messages
// ("--rank", "run.ini:3: [lora] rank"). Booleans take true/false, yes/no,
// on/off, 1/0. Returns 0, or -1 with ls_error() set.
int opt_set(const opt_table *t, void *obj, const opt_spec *o, const char *value, const char *who);
// By key ("rank", or "lora.rank" when section is NULL) or by [section] key;
// unknown sections and keys are errors naming them.
int opt_set_key(const opt_table *t, void *obj, const char *section, const char *key, const char *value,
                const char *who);
// By flag (without "--"); value NULL sets a boolean to true.
int opt_set_flag(const opt_table *t, void *obj, const char *flag, const char *value);

// Reads an INI file (libinih) over obj. Errors name the file and the line.
int opt_load_ini(const opt_table *t, void *obj, const char *path);

// Flags a command takes beside its table (--config FILE, --resume, a
// repeatable --adapter DIR): the flag without "--" and whether it takes a value.
typedef struct {
    const char *flag;
    int takes_value;
} opt_extra;

// Parses argv[1..argc): --flag VALUE, --flag=VALUE, a bare boolean --flag or
// --flag true|false. Table flags are set on obj; flags in `extras` (an array
// ended by {NULL, 0}; may be NULL) go to on_extra(ctx, flag, value or NULL);
// other arguments go to on_positional(ctx, arg) (NULL: they are errors).
// Callbacks return 0, or -1 with ls_error() set. Returns 0, or -1 with
// ls_error() naming the flag.
int opt_parse_argv(const opt_table *t, void *obj, int argc, char **argv, const opt_extra *extras,
                   int (*on_extra)(void *ctx, const char *flag, const char *value),
                   int (*on_positional)(void *ctx, const char *arg), void *ctx);

// The value of an option as text (the shortest text that reads back as the
// same double for floats; true/false for booleans) into buf.
void opt_format(const opt_spec *o, const void *obj, char *buf, size_t size);

// obj as INI text, every option that is not hidden, under its [section];
// malloc'd, caller frees.
char *opt_to_ini(const opt_table *t, const void *obj);

// The first option (not run_control, not among skip's "section.key" names, a
// NULL-ended list or NULL) whose value differs between a and b: sets
// ls_error() ("[lora] rank (--rank): the run was started with '8', found
// '16' ...") and returns -1; 0 when all are equal.
int opt_compare(const opt_table *t, const void *a, const void *b, const char *const *skip);

// Prints the table for --help: flag, INI key, help, [default from defaults].
void opt_print_help(const opt_table *t, const void *defaults, FILE *fp);

#endif
