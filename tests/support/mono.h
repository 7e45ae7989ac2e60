/* mono.h: the monotonic clock in milliseconds, for the deadlines of tests and their
 * helpers (never the wall clock: a clock step must not end or stretch a wait). */
#ifndef SWITCHBOARD_TEST_MONO_H
#define SWITCHBOARD_TEST_MONO_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC; only differences between two calls mean anything. */
int64_t mono_ms(void);

/* Sleeps ms milliseconds (once: a signal may end it early). */
void mono_sleep_ms(int ms);

#endif
