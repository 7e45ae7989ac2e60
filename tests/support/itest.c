/* itest.c: see itest.h. */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>

struct server_fixture itest_server;

void
itest_start(const char *json)
{
	cr_assert_eq(server_fixture_start(&itest_server, json, NULL, NULL), 0, "%s",
		     itest_server.error);
}

void
itest_server_up(void)
{
	itest_start(NULL);
}

void
itest_server_down(void)
{
	server_fixture_kill(&itest_server);
}

struct ws_client *
itest_peer(const char *user, const char *info, char *client)
{
	struct ws_client *c = ws_client_open_ok(itest_port());
	json_t *r;

	cr_assert_not_null(c, "WebSocket upgrade failed");
	if (info != NULL)
		r = sb_request(c, "\"type\":\"connect\",\"user\":\"%s\",\"info\":%s", user, info);
	else
		r = sb_request(c, "\"type\":\"connect\",\"user\":\"%s\"", user);
	cr_assert_str_eq(json_str(r, "type"), "connected", "connect as %s", user);
	if (client != NULL)
		snprintf(client, 64, "%s", json_str(r, "client"));
	json_decref(r);
	return c;
}

void
itest_expect_alive(struct ws_client *c, const char *who)
{
	json_t *r = sb_request(c, "\"type\":\"ping\"");

	cr_expect_str_eq(json_str(r, "type"), "pong",
			 "%s: connection no longer answers (close code %d)", who, c->close_code);
	json_decref(r);
}

void
itest_expect_sentinel(struct ws_client *c, const char *channel, json_int_t off, const char *who)
{
	json_t *m = ws_client_recv_json(c, WS_DEFAULT_TIMEOUT_MS);
	char *s = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;

	cr_assert_not_null(m, "%s: sentinel not delivered (close code %d)", who, c->close_code);
	cr_expect_str_eq(json_str(m, "type"), "message", "%s got %s before the sentinel", who, s);
	if (channel != NULL)
		cr_expect_str_eq(json_str(m, "channel"), channel, "%s got %s before the sentinel",
				 who, s);
	cr_expect_eq(json_int(m, "offset"), off, "%s: %s", who, s);
	free(s);
	json_decref(m);
}

void
itest_expect_close(struct ws_client *c, int code, const char *reason, const char *who)
{
	int got = ws_client_wait_close(c, WS_DEFAULT_TIMEOUT_MS, NULL);

	cr_expect_eq(got, code, "%s: close code %d, expected %d", who, got, code);
	cr_expect_str_eq(c->close_reason, reason, "%s", who);
}

void
itest_expect_refused(const char *path, int status)
{
	struct ws_client *c = ws_client_open(itest_port(), path, NULL);

	cr_assert_not_null(c, "%s: TCP connect failed", path);
	cr_expect_not(c->upgraded, "%s was upgraded", path);
	cr_expect_eq(c->http_status, status, "%s: HTTP %d", path, c->http_status);
	ws_client_free(c);
}
