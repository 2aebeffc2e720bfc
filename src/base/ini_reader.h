// ini_reader: the one INI reader (libinih underneath) for training configs,
// config.ini files and experiment files.
//
// Syntax: `[section]` headers, `key = value` lines, whole-line comments
// starting with ; or #, and trailing comments after whitespace (`rank = 8
// ; the paper's`). Lines are at most LS_INI_MAX_LINE characters; leading
// whitespace is ignored (no continuation lines). Every error names the file
// and the line.
#ifndef LS_INI_READER_H
#define LS_INI_READER_H

#define LS_INI_MAX_LINE 198

// Called at each `[section]` header, before the keys under it (may be NULL).
typedef int (*ls_ini_section_fn)(void *ctx, const char *section, int line);
// Called for each key; section is "" before the first header. Callbacks
// return 0, or -1 with ls_error() set (the message should name path and line).
typedef int (*ls_ini_entry_fn)(void *ctx, const char *section, const char *key, const char *value, int line);

// Reads the INI file at path. Returns 0, or -1 with ls_error() set: the
// callback's message, or "<path>:<line>: syntax error ...", a line that is
// too long, a file that cannot be opened or is not a regular file.
int ls_ini_read(const char *path, ls_ini_section_fn on_section, ls_ini_entry_fn on_entry, void *ctx);

#endif
