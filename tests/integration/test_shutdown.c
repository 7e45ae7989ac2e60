/* test_shutdown.c: SIGTERM and SIGINT stop the server in order (docs/protocol.md, close
 * codes). With drain_period 0 (the fixture's default) every WebSocket client gets 1001
 * "server shutdown" and the process exits 0, also when some clients do not cooperate;
 * with a drain_period, clients get 4012 "server restart" spread over it, and a second
 * signal closes the rest at once.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itest.h"
#include "mono.h"

TestSuite(shutdown, .init = itest_server_up, .fini = itest_server_down, .timeout = 30);

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS

/* Sends sig and asserts that the server exits 0 within 10 s. */
static void
stop_with(int sig)
{
	cr_assert_eq(server_fixture_signal(&itest_server, sig), 0);
	cr_assert_eq(server_fixture_wait(&itest_server, 10000), 0, "server: %s",
		     itest_server.error);
}

Test(shutdown, sigterm_closes_every_client_with_1001_and_exits_0)
{
	struct ws_client *sub = sb_connect(itest_port(), "sub");
	struct ws_client *plain = sb_connect(itest_port(), "plain");
	struct ws_client *fresh = ws_client_open_ok(itest_port()); /* never sent connect */

	cr_assert(sub && plain && fresh);
	cr_assert_eq(sb_subscribe(sub, "a"), 0);
	cr_assert_eq(sb_subscribe(sub, "b"), 0);
	cr_assert_eq(server_fixture_signal(&itest_server, SIGTERM), 0);
	itest_expect_close(sub, 1001, "server shutdown", "subscribed client");
	itest_expect_close(plain, 1001, "server shutdown", "connected client");
	itest_expect_close(fresh, 1001, "server shutdown", "client before connect");
	cr_assert_eq(server_fixture_wait(&itest_server, 10000), 0, "server: %s",
		     itest_server.error);
	ws_client_free(sub);
	ws_client_free(plain);
	ws_client_free(fresh);
	assert_no_leaks();
}

Test(shutdown, sigint_does_the_same)
{
	struct ws_client *c = sb_connect(itest_port(), "u");

	cr_assert_not_null(c);
	cr_assert_eq(server_fixture_signal(&itest_server, SIGINT), 0);
	itest_expect_close(c, 1001, "server shutdown", "client");
	cr_assert_eq(server_fixture_wait(&itest_server, 10000), 0, "server: %s",
		     itest_server.error);
	ws_client_free(c);
	assert_no_leaks();
}

Test(shutdown, idle_server_exits_0)
{
	stop_with(SIGTERM);
	assert_no_leaks();
}

Test(shutdown, many_clients_all_get_1001)
{
	enum { N = 50 };
	struct ws_client *c[N];

	for (int i = 0; i < N; i++) {
		c[i] = sb_connect(itest_port(), "many");
		cr_assert_not_null(c[i], "client %d", i);
		cr_assert_eq(sb_subscribe(c[i], i % 2 ? "odd" : "even"), 0);
	}
	cr_assert_eq(server_fixture_signal(&itest_server, SIGTERM), 0);
	for (int i = 0; i < N; i++) {
		char who[32];

		snprintf(who, sizeof(who), "client %d", i);
		itest_expect_close(c[i], 1001, "server shutdown", who);
	}
	cr_assert_eq(server_fixture_wait(&itest_server, 10000), 0, "server: %s",
		     itest_server.error);
	for (int i = 0; i < N; i++)
		ws_client_free(c[i]);
	assert_no_leaks();
}

/* Clients that do not play along must not hold the server up: one never answers the
 * close (it never reads), one has a full socket, one is a bare TCP connection that
 * never sent a request. */
Test(shutdown, uncooperative_clients_do_not_block_the_exit)
{
	struct ws_open_opts o = { .port = itest_port(), .rcvbuf = 4096 };
	struct ws_client *deaf = sb_connect(itest_port(), "deaf");
	struct ws_client *full = ws_client_open_opts(&o);
	struct ws_client *pub = sb_connect(itest_port(), "pub");
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)itest_port()) };
	char *data = malloc(16002);
	int bare;
	json_t *r;

	cr_assert(deaf && full && full->upgraded && pub && data);
	r = ws_client_cmd(full, "{\"type\":\"connect\",\"id\":1}");
	cr_assert_str_eq(json_str(r, "type"), "connected");
	json_decref(r);
	cr_assert_eq(sb_subscribe(full, "fill"), 0);
	cr_assert_eq(sb_subscribe(pub, "fill"), 0);
	memset(data, 'x', 16001);
	data[0] = data[16000] = '"';
	data[16001] = '\0';
	/* Fill the kernel buffers towards `full` without crossing the default queue bounds:
	 * the publisher reads its own copies as it goes. */
	for (int n = 0; n < 40; n++) {
		json_t *m;

		cr_assert_geq(sb_publish(pub, "fill", data, NULL, 0), 1);
		m = sb_next_message(pub, WAIT_MS);
		json_decref(m);
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bare = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(bare, 0);
	cr_assert_eq(connect(bare, (struct sockaddr *)&sa, sizeof(sa)), 0);
	stop_with(SIGTERM);
	close(bare);
	free(data);
	ws_client_free(deaf);
	ws_client_free(full);
	ws_client_free(pub);
	assert_no_leaks();
}

Test(shutdown, no_new_upgrade_is_accepted_while_stopping)
{
	/* A client that never answers the close keeps the server in its grace period;
	 * meanwhile a new upgrade must be refused (or the port already closed). */
	struct ws_client *deaf = sb_connect(itest_port(), "deaf"), *late;

	cr_assert_not_null(deaf);
	cr_assert_eq(server_fixture_signal(&itest_server, SIGTERM), 0);
	late = ws_client_open(itest_port(), "/ws", NULL);
	if (late != NULL && late->upgraded) {
		/* Accepted in the instant before the signal was handled: it must then be
		 * closed like everyone else. */
		cr_expect_eq(ws_client_wait_close(late, WAIT_MS, NULL), 1001);
	}
	ws_client_free(late);
	cr_assert_eq(server_fixture_wait(&itest_server, 10000), 0, "server: %s",
		     itest_server.error);
	ws_client_free(deaf);
	assert_no_leaks();
}

/* ---- graceful drain (issue 9): drain_period set ---- */

TestSuite(drain, .fini = itest_server_down, .timeout = 30);

Test(drain, sigterm_closes_clients_with_4012_over_the_period_and_refuses_upgrades)
{
	enum { N = 4 };
	struct ws_client *c[N], *late;
	int64_t t0, last = 0;
	int status = 0;
	char *body = NULL;

	itest_start("{\"drain_period\":2}");
	for (int i = 0; i < N; i++) {
		char user[8];

		snprintf(user, sizeof(user), "u%d", i);
		c[i] = sb_connect(itest_port(), user);
		cr_assert_not_null(c[i]);
	}
	t0 = mono_ms();
	cr_assert_eq(server_fixture_signal(&itest_server, SIGTERM), 0);
	/* Readiness fails and upgrades are refused while the clients are still open. */
	for (int tries = 0; tries < 50 && status != 503; tries++) {
		free(body);
		body = NULL;
		cr_assert_eq(http_get(itest_port(), "/readyz", &status, &body), 0);
		if (status != 503)
			usleep(20 * 1000);
	}
	cr_expect_eq(status, 503, "/readyz during a drain: %d %s", status, body ? body : "");
	cr_expect_str_eq(body != NULL ? body : "", "{\"status\":\"draining\"}");
	free(body);
	late = ws_client_open(itest_port(), "/ws", NULL);
	cr_expect(late != NULL && !late->upgraded && late->http_status == 503,
		  "an upgrade during the drain: %d", late ? late->http_status : -1);
	ws_client_free(late);
	for (int i = 0; i < N; i++) {
		int code = ws_client_wait_close(c[i], 5000, NULL);

		cr_expect_eq(code, 4012, "client %d: close code %d", i, code);
		cr_expect_str_eq(c[i]->close_reason, "server restart", "client %d", i);
		if (mono_ms() - t0 > last)
			last = mono_ms() - t0;
	}
	/* At an even pace over 2 s: the last of 4 goes at 3/4 of it, not at once. */
	cr_expect_geq(last, 1200, "every client was closed within %lld ms", (long long)last);
	cr_assert_eq(server_fixture_wait(&itest_server, 5000), 0, "server: %s", itest_server.error);
	for (int i = 0; i < N; i++)
		ws_client_free(c[i]);
	assert_no_leaks();
}

Test(drain, a_second_signal_closes_everyone_at_once_with_1001)
{
	struct ws_client *a = NULL, *b = NULL;
	int64_t t0;
	int ca, cb;

	itest_start("{\"drain_period\":30}");
	a = sb_connect(itest_port(), "a");
	b = sb_connect(itest_port(), "b");
	cr_assert(a && b);
	cr_assert_eq(server_fixture_signal(&itest_server, SIGTERM), 0);
	/* One of the two goes at once (4012); the other would wait 15 s. */
	usleep(300 * 1000);
	t0 = mono_ms();
	cr_assert_eq(server_fixture_signal(&itest_server, SIGTERM), 0);
	ca = ws_client_wait_close(a, 5000, NULL);
	cb = ws_client_wait_close(b, 5000, NULL);
	cr_expect((ca == 4012 && cb == 1001) || (ca == 1001 && cb == 4012), "codes %d and %d", ca,
		  cb);
	cr_assert_eq(server_fixture_wait(&itest_server, 5000), 0, "server: %s", itest_server.error);
	cr_expect_leq(mono_ms() - t0, 4500, "the second signal took %lld ms",
		      (long long)(mono_ms() - t0));
	ws_client_free(a);
	ws_client_free(b);
	assert_no_leaks();
}
