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

/* A client of the running server connected as user, with info (the JSON text of the
 * connect "info", NULL: none); asserts the upgrade and the connected reply. Its client
 * id goes to client (64 bytes) when client is not NULL. The caller owns the client. */
struct ws_client *itest_peer(const char *user, const char *info, char *client);

/* Expects c to still answer a ping command (who names c in the failure). */
void itest_expect_alive(struct ws_client *c, const char *who);

/* Expects the next frame of c to be the message at offset off (of channel; NULL: any
 * channel), so that nothing else was queued for c before it. Asserts that it came. */
void itest_expect_sentinel(struct ws_client *c, const char *channel, json_int_t off,
			   const char *who);

/* Expects the server to close c within the default deadline with code and reason. */
void itest_expect_close(struct ws_client *c, int code, const char *reason, const char *who);

/* Expects an upgrade on path (no subprotocol) to be refused with HTTP status. */
void itest_expect_refused(const char *path, int status);

/* Ends a test: SIGTERM, a clean exit (status 0: orderly shutdown and, under ASan, no
 * leaks in the server), then no leaks in the test process either. Clients must have
 * been freed before. */
#define itest_finish()                                                                             \
	do {                                                                                       \
		cr_assert_eq(server_fixture_stop(&itest_server, 0), 0, "server: %s",               \
			     itest_server.error);                                                  \
		assert_no_leaks();                                                                 \
	} while (0)

#endif
