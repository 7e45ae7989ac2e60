/* leakcheck.h: makes LeakSanitizer findings fail a criterion test.
 * LSan reports at process exit, which criterion does not count (lws-4.1-facts §10), so a
 * test body ends with assert_no_leaks(): under SWITCHBOARD_SANITIZE it runs a leak check
 * now and asserts it found nothing; in a normal build it does nothing. Header only, so
 * unit tests can use it without linking anything. */
#ifndef SWITCHBOARD_TEST_LEAKCHECK_H
#define SWITCHBOARD_TEST_LEAKCHECK_H

#include <criterion/criterion.h>

#ifdef SWITCHBOARD_SANITIZE
#include <sanitizer/lsan_interface.h>
#define leakcheck_run() __lsan_do_recoverable_leak_check()
#else
#define leakcheck_run() 0
#endif

/* Asserts that every allocation made so far by this process is still reachable. */
#define assert_no_leaks()                                                                          \
	cr_assert_eq(leakcheck_run(), 0, "LeakSanitizer found leaks (see the report above)")

#endif
