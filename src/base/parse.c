#include "base/parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int ls_parse_int64(const char *text, const char *who, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno || v < lo || v > hi)
        return ls_fail("%s: expected an integer in [%lld, %lld], found '%s'", who, lo, hi, text);
    *out = v;
    return 0;
}

int ls_parse_int(const char *text, const char *who, int lo, int hi, int *out) {
    long long v;
    if (ls_parse_int64(text, who, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

int ls_parse_double(const char *text, const char *who, double lo, double hi, int open, double *out) {
    char *end;
    double v = strtod(text, &end);
    int ok = *text && !*end && isfinite(v) && (open & LS_OPEN_LO ? v > lo : v >= lo) &&
             (open & LS_OPEN_HI ? v < hi : v <= hi);
    if (!ok)
        return ls_fail("%s: expected a number in %c%g, %g%c, found '%s'", who, open & LS_OPEN_LO ? '(' : '[', lo, hi,
                       open & LS_OPEN_HI ? ')' : ']', text);
    *out = v;
    return 0;
}

int ls_parse_int_list(const char *text, const char *who, int lo, int hi, int *out, int max) {
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < lo || v > hi || n == max || (*end && *end != ',') || (*end == ',' && !end[1]))
            return ls_fail("%s: expected a comma-separated list of up to %d integers in [%d, %d], found '%s'", who, max,
                           lo, hi, text);
        out[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (!n) return ls_fail("%s: expected a comma-separated list of up to %d integers in [%d, %d], found '%s'", who, max, lo, hi, text);
    return n;
}
