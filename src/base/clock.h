// clock: the one monotonic clock, wall-clock time stamps, and durations as
// people read them in progress lines ("1h05m", "3m07s", "42s").
#ifndef LS_CLOCK_H
#define LS_CLOCK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" { // also called from the CUDA sources (kernels/)
#endif

// Seconds on the monotonic clock (only differences mean anything).
double ls_now(void);
// The current UTC time as ISO 8601 ("2026-11-27T18:21:47Z") into buf.
void ls_utc_iso(char *buf, size_t size);
// s seconds, rounded to the nearest second: "42s", "3m07s", "1h05m".
// A negative or non-finite s prints as "0s".
void ls_fmt_duration(char *buf, size_t size, double s);

#ifdef __cplusplus
}
#endif

#endif
