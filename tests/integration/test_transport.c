/* test_transport.c: the HTTP side of docs/protocol.md: upgrade paths, subprotocols,
 * max_connections (503), GET /healthz, and WebSocket liveness (server pings, idle
 * hang-up).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "itest.h"

TestSuite(upgrade, .init = itest_server_up, .fini = itest_server_down, .timeout = 20);
TestSuite(transport, .fini = itest_server_down, .timeout = 30);

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS

/* Opens a client on path/subprotocol and checks that it can connect. */
static void
expect_usable(const char *path, const char *subprotocol, const char *echoed)
{
	struct ws_client *c = ws_client_open(itest_port(), path, subprotocol);
	json_t *r;

	cr_assert_not_null(c, "%s: TCP connect failed", path);
	cr_assert(c->upgraded, "%s (subprotocol %s): HTTP %d instead of 101", path,
		  subprotocol ? subprotocol : "none", c->http_status);
	cr_expect_str_eq(c->protocol, echoed, "%s: Sec-WebSocket-Protocol", path);
	r = ws_client_cmd(c, "{\"type\":\"connect\",\"id\":1}");
	cr_expect_str_eq(json_str(r, "type"), "connected", "%s: connect failed", path);
	json_decref(r);
	ws_client_close(c, WAIT_MS);
}

Test(upgrade, ws_path_without_subprotocol_works)
{
	expect_usable("/ws", NULL, "");
	itest_finish();
}

Test(upgrade, root_path_works)
{
	expect_usable("/", NULL, "");
	itest_finish();
}

Test(upgrade, switchboard_v1_subprotocol_is_selected)
{
	expect_usable("/ws", "switchboard.v1", "switchboard.v1");
	expect_usable("/", "switchboard.v1", "switchboard.v1");
	expect_usable("/ws", "other.v9, switchboard.v1", "switchboard.v1");
	itest_finish();
}

Test(upgrade, only_other_subprotocols_are_refused)
{
	struct ws_client *c = ws_client_open(itest_port(), "/ws", "mqtt, chat.v2");

	/* A refusal may be an HTTP error or a closed connection; never an upgrade. */
	cr_expect(c == NULL || !c->upgraded, "upgraded with only foreign subprotocols");
	ws_client_free(c);
	itest_finish();
}

Test(upgrade, other_paths_are_404)
{
	static const char *const paths[] = { "/other", "/wss",	   "/ws/",	 "/ws/x",
					     "/ws2",   "/healthz", "/index.html" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		itest_expect_refused(paths[i], 404);
	expect_usable("/ws", NULL, "");
	itest_finish();
}

Test(upgrade, healthz_answers_200_with_status_ok)
{
	int status;
	char *body;
	json_t *j;

	cr_assert_eq(http_get(itest_port(), "/healthz", &status, &body), 0, "GET /healthz failed");
	cr_expect_eq(status, 200);
	j = json_loads(body, 0, NULL);
	cr_assert_not_null(j, "body is not JSON: %s", body);
	cr_expect_str_eq(json_str(j, "status"), "ok");
	json_decref(j);
	free(body);
	itest_finish();
}

Test(upgrade, healthz_keeps_answering_while_clients_are_connected)
{
	struct ws_client *c = sb_connect(itest_port(), "u");
	int status;
	char *body;

	cr_assert_not_null(c);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(http_get(itest_port(), "/healthz", &status, &body), 0);
		cr_expect_eq(status, 200);
		free(body);
	}
	ws_client_free(c);
	itest_finish();
}

Test(transport, third_upgrade_over_max_connections_is_503)
{
	struct ws_client *a, *b, *c, *d = NULL;
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	itest_start("{\"limits\":{\"max_connections\":2}}");
	a = sb_connect(itest_port(), "a");
	b = sb_connect(itest_port(), "b");
	cr_assert(a && b);
	c = ws_client_open(itest_port(), "/ws", NULL);
	cr_assert_not_null(c);
	cr_expect_not(c->upgraded, "a third connection was upgraded");
	cr_expect_eq(c->http_status, 503, "HTTP %d", c->http_status);
	ws_client_free(c);
	/* The two are still served. */
	cr_expect_eq(sb_subscribe(a, "x"), 0);
	cr_expect_eq(sb_subscribe(b, "x"), 0);
	/* Once one leaves (close handshake done), a new upgrade succeeds. The server frees
	 * the slot when it has processed the close, which we cannot observe directly:
	 * retry with a deadline. */
	cr_expect_eq(ws_client_close(a, WAIT_MS), 1000);
	for (int tries = 0; tries < 100; tries++) {
		d = ws_client_open(itest_port(), "/ws", NULL);
		if (d != NULL && d->upgraded)
			break;
		cr_assert(d == NULL || d->http_status == 503, "HTTP %d", d ? d->http_status : 0);
		ws_client_free(d);
		d = NULL;
		nanosleep(&tick, NULL);
	}
	cr_expect_not_null(d, "the freed connection slot was not reusable within 2 s");
	ws_client_free(d);
	ws_client_free(b);
	itest_finish();
}

Test(transport, server_pings_after_ping_interval_of_silence)
{
	struct ws_client *c;
	struct ws_msg m;

	itest_start("{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":3}}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	c->auto_pong = false;
	cr_assert_eq(ws_client_recv(c, &m, 4000), 1, "no WebSocket ping within 4 s");
	cr_expect_eq(m.opcode, WS_OP_PING, "opcode %d", m.opcode);
	/* docs/protocol.md, Liveness: the ping carries "sb", which the pong echoes. */
	cr_expect(m.len == 2 && memcmp(m.data, "sb", 2) == 0, "ping payload of %zu bytes", m.len);
	cr_assert_eq(ws_client_send_frame(c, WS_OP_PONG, true, m.data, m.len), 0);
	ws_msg_fini(&m);
	ws_client_free(c);
	itest_finish();
}

Test(transport, a_client_answering_pings_stays_connected_past_idle_timeout)
{
	struct ws_client *c;
	struct ws_msg m;
	json_t *r;

	itest_start("{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":2}}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	/* Only answering pings (auto_pong) for 4 s: twice the idle timeout. Nothing but
	 * pings may arrive meanwhile. */
	cr_expect_eq(ws_client_recv(c, &m, 4000), 0, "got opcode %d / close %d while idle",
		     m.opcode, c->close_code);
	ws_msg_fini(&m);
	cr_expect_geq(c->pings, 1, "the server never pinged");
	r = sb_request(c, "\"type\":\"ping\"");
	cr_expect_str_eq(json_str(r, "type"), "pong", "dropped though it answered pings");
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

Test(transport, a_silent_client_is_dropped_after_idle_timeout)
{
	struct ws_client *c;
	int code;

	itest_start("{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":2}}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	c->auto_pong = false; /* pings are returned by recv and never answered */
	code = ws_client_wait_close(c, 6000, NULL);
	cr_expect_neq(code, -1, "still connected 6 s into a 2 s idle timeout");
	ws_client_free(c);
	itest_finish();
}

/* Any frame from the client counts as a sign of life, not only pongs: a client that
 * sends a command every 400 ms and never answers a ping outlives the idle timeout. */
Test(transport, a_client_sending_frames_but_no_pongs_stays_connected)
{
	struct timespec step = { .tv_sec = 0, .tv_nsec = 400L * 1000 * 1000 };
	struct ws_client *c;
	json_t *r;

	itest_start("{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":2}}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	c->auto_pong = false;
	for (int i = 0; i < 12; i++) { /* 4.8 s: more than twice the idle timeout */
		r = sb_request(c, "\"type\":\"ping\"");
		cr_assert_str_eq(json_str(r, "type"), "pong", "dropped after %d commands", i);
		json_decref(r);
		nanosleep(&step, NULL);
	}
	ws_client_free(c);
	itest_finish();
}

/* Review regressions: ways around the WebSocket endpoint's checks. */

Test(upgrade, subprotocol_http_is_refused_and_never_bypasses_the_endpoint)
{
	static const char *const paths[] = { "/ws", "/other" };

	for (size_t i = 0; i < 2; i++) {
		struct ws_client *c = ws_client_open(itest_port(), paths[i], "http");

		cr_expect(c == NULL || !c->upgraded, "%s: upgraded with subprotocol \"http\"",
			  paths[i]);
		ws_client_free(c);
	}
	expect_usable("/ws", NULL, "");
	itest_finish();
}

/* Sends a raw HTTP request, reads until the server closes (or 2 s pass) and returns the
 * first status code (0 when none came); *responses counts the status lines seen and
 * closed_by_server tells whether the server closed the connection. */
static bool closed_by_server;

static int
raw_http_status(const char *request, int *responses)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)itest_port()) };
	struct timeval tv = { .tv_sec = 2 };
	char buf[8192] = "";
	size_t len = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), code = 0;
	ssize_t n = -1;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	closed_by_server = n == 0;
	buf[len] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &code);
	*responses = 0;
	for (const char *p = buf; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
		(*responses)++;
	close(fd);
	return code;
}

Test(upgrade, h2c_upgrade_is_refused)
{
	int responses;
	int code = raw_http_status(
		"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		&responses);

	cr_expect_neq(code, 101, "the server switched to HTTP/2");
	expect_usable("/ws", NULL, "");
	itest_finish();
}

Test(upgrade, a_post_body_is_not_parsed_as_a_second_request)
{
	int responses;
	int code = raw_http_status("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 34\r\n\r\n"
				   "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
				   &responses);

	cr_expect_eq(code, 405);
	cr_expect_eq(responses, 1, "the body was answered as a request of its own");
	/* No route reads bodies yet, so the server answers and closes rather than risk
	 * parsing an unread body as the next request. */
	cr_expect(closed_by_server, "the connection stayed open with an unread body");
	itest_finish();
}
