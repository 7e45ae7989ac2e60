/* clock.h: the server's clocks, read only by net/ and main (the core is given time as an
 * argument, so its tests control it). Monotonic time measures intervals (timeouts, rate
 * buckets, the core's notion of now); wall time is for what leaves the process (token
 * expiry, webhook timestamps). */
#ifndef SWITCHBOARD_CLOCK_H
#define SWITCHBOARD_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC), the core's notion of time. */
uint64_t clock_now_ms(void);
/* Monotonic microseconds, for durations logged with a fraction of a millisecond. */
uint64_t clock_now_us(void);
/* Wall-clock seconds since the Unix epoch (time(NULL)). */
int64_t clock_wall_s(void);

#endif
