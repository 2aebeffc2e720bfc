// parse: the one parser of numbers in text (flags, INI values, list items).
//
// A value is accepted only if the whole text is the number (no trailing
// characters, no empty text), it is finite, and it lies in the range; the
// error names `who` (a flag, "file: [section] key", ...), the range and the
// text found, as "--rank: expected an integer in [1, 65536], found 'x'".
#ifndef LS_PARSE_H
#define LS_PARSE_H

// Integer in [lo, hi] (base 10). Returns 0, or -1 with ls_error() set.
int ls_parse_int64(const char *text, const char *who, long long lo, long long hi, long long *out);
// The same into an int (lo and hi must fit an int).
int ls_parse_int(const char *text, const char *who, int lo, int hi, int *out);

// Open ends of a number's range: LS_OPEN_LO excludes lo, LS_OPEN_HI excludes hi.
enum { LS_CLOSED = 0, LS_OPEN_LO = 1, LS_OPEN_HI = 2 };

// Finite number in the range (open ends as `open` says; written in the error
// as "(lo, hi]" etc.). Returns 0, or -1 with ls_error() set.
int ls_parse_double(const char *text, const char *who, double lo, double hi, int open, double *out);

// Comma-separated integers in [lo, hi], at most max of them, into out.
// Returns the count, or -1 with ls_error() set.
int ls_parse_int_list(const char *text, const char *who, int lo, int hi, int *out, int max);

#endif
