/* itest.h: the shape shared by the integration tests: one server per test, started by
 * .init with the default configuration (or by the test with its own), stopped by the
 * test body itself so that its exit status counts (criterion ignores assertions in
 * .fini, which only cleans up after a failed test).
 *
 *	TestSuite(pubsub, .init = itest_server_up, .fini = itest_server_down, .timeout = 20);
 *	Test(pubsub, something) { ...; itest_finish(); }
 */
#ifndef SWITCHBOARD_TEST_ITEST_H
#define SWITCHBOARD_TEST_ITEST_H

#include <criterion/criterion.h>

#include "leakcheck.h"
#include "sbclient.h"
#include "server_fixture.h"
#include "ws_client.h"

/* The server of the running test. */
extern struct server_fixture itest_server;

/* .init: starts a server with the default configuration (asserts it started). */
void itest_server_up(void);
/* .fini: kills a server the test left running. */
void itest_server_down(void);
/* In a test body (suite without .init): starts a server with this JSON configuration. */
void itest_start(const char *json);

/* The port of the running server. */
#define itest_port() (itest_server.port)

/* Ends a test: SIGTERM, a clean exit (status 0: orderly shutdown and, under ASan, no
 * leaks in the server), then no leaks in the test process either. Clients must have
 * been freed before. */
#define itest_finish()                                                                    \
	do {                                                                               \
		cr_assert_eq(server_fixture_stop(&itest_server, 0), 0, "server: %s",      \
			     itest_server.error);                                          \
		assert_no_leaks();                                                         \
	} while (0)

#endif
