/* test_http_api.c: the HTTP API for backends (docs/http-api.md) against the real server:
 * every route's success shape, publishes over HTTP seen by WebSocket subscribers (same
 * offsets, byte-exact data, no "from"), history and its drop, disconnecting clients and
 * users, unsubscribing a user, every error status with its JSON body, the per-key
 * quota, and bodies that arrive chunked or in many small pieces.
 *
 * Requests go through tests/support/http_client (libcurl) to 127.0.0.1; WebSocket
 * peers through sbclient. Absence of a delivery is checked with a later sentinel on the
 * same connection, never by sleeping; the quota refill is polled with a deadline.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_client.h"
#include "itest.h"
#include "mono.h"

#define KEY "sk_test_1"	   /* "backend": channels ["*"], 600/min, burst 60 */
#define CHAT_KEY "sk_chat" /* "chat-only": channels ["chat:*"], 60/min, burst 3 */

#define API_KEYS                                                                                   \
	"\"api_keys\":["                                                                           \
	"{\"name\":\"backend\",\"key\":\"" KEY "\",\"channels\":[\"*\"],"                          \
	"\"quota\":{\"per_minute\":600,\"burst\":60}},"                                            \
	"{\"name\":\"chat-only\",\"key\":\"" CHAT_KEY "\",\"channels\":[\"chat:*\"],"              \
	"\"quota\":{\"per_minute\":60,\"burst\":3}}]"

/* ticks: server-side publishing only, history 10, no presence. chat: anyone connected may
 * publish, presence without join/leave events (no extra frames), history 100. plain:
 * neither presence nor history. Bare names use the built-in default namespace. */
#define NAMESPACES                                                                                 \
	"\"namespaces\":{"                                                                         \
	"\"ticks\":{\"publish\":\"none\",\"history_size\":10},"                                    \
	"\"chat\":{\"publish\":\"clients\",\"presence\":true,\"history_size\":100},"               \
	"\"plain\":{\"publish\":\"clients\"}}"

#define CONFIG "{" API_KEYS "," NAMESPACES "}"

TestSuite(http_api, .fini = itest_server_down, .timeout = 30);
TestSuite(http_errors, .fini = itest_server_down, .timeout = 30);

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS
#define WRONG_EPOCH "0000000000000000"

/* ---- HTTP helpers ---- */

/* Fails the test when no response came (freeing what the client kept first). */
static void
assert_response(struct http_resp *r, const char *method, const char *path)
{
	char error[sizeof(r->error)];

	if (r->status > 0)
		return;
	memcpy(error, r->error, sizeof(error));
	http_resp_fini(r);
	cr_assert_fail("%s %s: no response: %s", method, path, error);
}

/* Sends the request (asserting that a response came) into *r. */
static void
call(struct http_resp *r, const char *method, const char *path, const char *key, const char *body)
{
	http_call(itest_port(), method, path, key, body, r);
	assert_response(r, method, path);
}

static void callf(struct http_resp *r, const char *method, const char *path, const char *key,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
callf(struct http_resp *r, const char *method, const char *path, const char *key, const char *fmt,
      ...)
{
	va_list ap;
	char *body;

	va_start(ap, fmt);
	cr_assert_geq(vasprintf(&body, fmt, ap), 0);
	va_end(ap);
	call(r, method, path, key, body);
	free(body);
}

static void
send_req(struct http_resp *r, const struct http_req *req)
{
	http_do(itest_port(), req, r);
	assert_response(r, req->method, req->path);
}

/* The Content-Type of every answer is JSON. */
static void
expect_json_type(const struct http_resp *r, const char *what)
{
	char *ct = http_resp_header(r, "Content-Type");

	cr_expect(ct != NULL && strncasecmp(ct, "application/json", 16) == 0,
		  "%s: Content-Type %s, expected application/json", what, ct ? ct : "(none)");
	free(ct);
}

/* The response is `status` with a JSON object body. */
static void
expect_ok(const struct http_resp *r, long status, const char *what)
{
	cr_assert_eq(r->status, status, "%s: status %ld, expected %ld: %s", what, r->status, status,
		     r->body);
	cr_assert(json_is_object(r->json), "%s: body is not a JSON object: %s (%s)", what, r->body,
		  r->error);
	expect_json_type(r, what);
}

/* The response is `status` with exactly {"error":{"code":code,"message":"..."}}. */
static void
expect_error(const struct http_resp *r, long status, const char *code, const char *what)
{
	const json_t *e = json_object_get(r->json, "error");

	cr_assert_eq(r->status, status, "%s: status %ld, expected %ld (%s): %s", what, r->status,
		     status, code, r->body);
	cr_assert(json_is_object(e), "%s: %ld without an error object: %s (%s)", what, status,
		  r->body, r->error);
	cr_expect_str_eq(json_str(e, "code"), code, "%s: %s", what, r->body);
	cr_expect(json_is_string(json_object_get(e, "message")) &&
			  json_string_length(json_object_get(e, "message")) > 0,
		  "%s: error without a message: %s", what, r->body);
	cr_expect_eq(json_object_size(r->json), 1, "%s: members besides error: %s", what, r->body);
	cr_expect_eq(json_object_size(e), 2, "%s: code and message: %s", what, r->body);
	expect_json_type(r, what);
}

/* POST /api/v1/channels/{channel}/messages with data_raw (JSON text, sent as is).
 * Asserts 201 {"channel","offset","epoch"}; returns the offset, epoch (64 bytes) if not
 * NULL receives the epoch. */
static json_int_t
publish_http(const char *channel, const char *data_raw, char *epoch)
{
	struct http_resp r;
	char path[512];
	json_int_t off;

	snprintf(path, sizeof(path), "/api/v1/channels/%s/messages", channel);
	callf(&r, "POST", path, KEY, "{\"data\":%s}", data_raw);
	expect_ok(&r, 201, path);
	cr_expect_str_eq(json_str(r.json, "channel"), channel, "%s", r.body);
	cr_expect(json_is_integer(json_object_get(r.json, "offset")), "%s", r.body);
	cr_expect(json_is_string(json_object_get(r.json, "epoch")) &&
			  json_str(r.json, "epoch")[0] != '\0',
		  "no epoch: %s", r.body);
	cr_expect_eq(json_object_size(r.json), 3, "channel, offset, epoch: %s", r.body);
	off = json_int(r.json, "offset");
	if (epoch != NULL)
		snprintf(epoch, 64, "%s", json_str(r.json, "epoch"));
	http_resp_fini(&r);
	return off;
}

/* GET path with KEY; asserts 200 and returns the body (new reference). */
static json_t *
get_json(const char *path)
{
	struct http_resp r;
	json_t *j;

	call(&r, "GET", path, KEY, NULL);
	expect_ok(&r, 200, path);
	j = json_incref(r.json);
	http_resp_fini(&r);
	return j;
}

/* Polls GET path (KEY) every 20 ms until the integer member `key` equals want, for up to
 * 3 s (a closed connection leaves the server a moment later); returns the body of the
 * last answer (new reference). */
static json_t *
poll_json(const char *path, const char *key, json_int_t want)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	json_t *j = NULL;

	for (int i = 0; i < 150; i++) {
		json_decref(j);
		j = get_json(path);
		if (json_int(j, key) == want)
			break;
		nanosleep(&tick, NULL);
	}
	return j;
}

/* ---- WebSocket helpers ---- */

/* Subscribes c to channel; returns the subscribed reply (new reference). */
static json_t *
subscribe(struct ws_client *c, const char *channel, const char *extra)
{
	json_t *r = sb_request(c, "\"type\":\"subscribe\",\"channel\":\"%s\"%s%s", channel,
			       extra != NULL ? "," : "", extra != NULL ? extra : "");

	cr_assert_str_eq(json_str(r, "type"), "subscribed", "subscribe %s: %s %s", channel,
			 json_str(r, "code"), json_str(r, "message"));
	return r;
}

static void
sub(struct ws_client *c, const char *channel)
{
	json_decref(subscribe(c, channel, NULL));
}

/* The next frame of c, as text and parsed: a message of channel at offset off. Returns
 * the text (free it); *frame (if not NULL) receives the parsed frame. */
static char *
expect_message(struct ws_client *c, const char *channel, json_int_t off, json_t **frame)
{
	size_t len;
	char *text = ws_client_recv_text(c, WAIT_MS, &len);
	json_t *m;

	cr_assert_not_null(text, "message %lld of %s missing (close code %d)", (long long)off,
			   channel, c->close_code);
	m = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	cr_assert_not_null(m, "invalid JSON: %s", text);
	cr_assert_str_eq(json_str(m, "type"), "message", "expected offset %lld of %s, got %s",
			 (long long)off, channel, text);
	cr_assert_str_eq(json_str(m, "channel"), channel, "%s", text);
	cr_assert_eq(json_int(m, "offset"), off, "expected offset %lld, got %s", (long long)off,
		     text);
	if (frame != NULL)
		*frame = m;
	else
		json_decref(m);
	return text;
}

/* The next frame of c is a message of channel at offset off that came from the server
 * side: no "from", data byte for byte data_raw. */
static void
expect_server_message(struct ws_client *c, const char *channel, json_int_t off,
		      const char *data_raw)
{
	json_t *m;
	char *text = expect_message(c, channel, off, &m), *want;

	cr_expect_null(json_object_get(m, "from"), "a message published over HTTP has a from: %s",
		       text);
	cr_expect_null(json_object_get(m, "id"), "%s", text);
	cr_expect_eq(json_object_size(m), 4, "type, channel, offset, data: %s", text);
	if (data_raw != NULL) {
		cr_assert_geq(asprintf(&want, "\"data\":%s", data_raw), 0);
		cr_expect_not_null(strstr(text, want), "data re-encoded: sent %s, got %s", data_raw,
				   text);
		free(want);
	}
	json_decref(m);
	free(text);
}

/* Nothing else is queued for c on any channel: the next frame is the sentinel now
 * published (over HTTP) to channel, which c must be subscribed to. */
static void
expect_nothing_before_sentinel(struct ws_client *c, const char *channel, const char *who)
{
	itest_expect_sentinel(c, channel, publish_http(channel, "\"sentinel\"", NULL), who);
}

/* ---- health ---- */

Test(http_api, healthz_answers_without_a_key)
{
	struct ws_client *a, *b;
	struct http_resp r;

	itest_start(CONFIG);
	call(&r, "GET", "/healthz", NULL, NULL);
	expect_ok(&r, 200, "healthz");
	cr_expect_str_eq(json_str(r.json, "status"), "ok");
	cr_expect_str_eq(json_str(r.json, "version"), "0.1.0");
	cr_expect_eq(json_int(r.json, "connections"), 0, "%s", r.body);
	cr_expect_eq(json_int(r.json, "channels"), 0, "%s", r.body);
	cr_expect_eq(json_object_size(r.json), 4, "status, version, connections, channels: %s",
		     r.body);
	http_resp_fini(&r);

	a = itest_peer("a", NULL, NULL);
	b = itest_peer("b", NULL, NULL);
	sub(a, "chat:one");
	sub(b, "chat:one");
	sub(b, "plain:two");
	call(&r, "GET", "/healthz", NULL, NULL);
	expect_ok(&r, 200, "healthz");
	cr_expect_eq(json_int(r.json, "connections"), 2, "%s", r.body);
	cr_expect_eq(json_int(r.json, "channels"), 2, "%s", r.body);
	http_resp_fini(&r);
	/* A key is not needed, and a key is not refused either. */
	call(&r, "GET", "/healthz", KEY, NULL);
	expect_ok(&r, 200, "healthz with a key");
	http_resp_fini(&r);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

/* ---- publish ---- */

Test(http_api, publish_to_one_channel_answers_201_with_channel_offset_epoch)
{
	struct ws_client *s;
	struct http_resp r;
	char epoch[64];
	json_t *sr;

	itest_start(CONFIG);
	s = itest_peer("s", NULL, NULL);
	sr = subscribe(s, "chat:lobby", NULL);
	cr_assert_eq(publish_http("chat:lobby", "{\"text\":\"hi\"}", epoch), 1);
	cr_expect_str_eq(epoch, json_str(sr, "epoch"), "the epoch of the subscribed reply");
	json_decref(sr);
	expect_server_message(s, "chat:lobby", 1, "{\"text\":\"hi\"}");
	cr_assert_eq(publish_http("chat:lobby", "2", NULL), 2);
	expect_server_message(s, "chat:lobby", 2, "2");

	/* Channel names in paths are URL-decoded: %3A is ':'. */
	call(&r, "POST", "/api/v1/channels/chat%3Alobby/messages", KEY, "{\"data\":[3]}");
	expect_ok(&r, 201, "publish to chat%3Alobby");
	cr_expect_str_eq(json_str(r.json, "channel"), "chat:lobby", "%s", r.body);
	cr_expect_eq(json_int(r.json, "offset"), 3, "%s", r.body);
	cr_expect_str_eq(json_str(r.json, "epoch"), epoch);
	http_resp_fini(&r);
	expect_server_message(s, "chat:lobby", 3, "[3]");

	/* Every JSON value is data. */
	cr_expect_eq(publish_http("chat:lobby", "null", NULL), 4);
	expect_server_message(s, "chat:lobby", 4, "null");
	cr_expect_eq(publish_http("chat:lobby", "\"str\"", NULL), 5);
	expect_server_message(s, "chat:lobby", 5, "\"str\"");
	cr_expect_eq(publish_http("chat:lobby", "false", NULL), 6);
	expect_server_message(s, "chat:lobby", 6, "false");
	ws_client_free(s);
	itest_finish();
}

/* HTTP and WebSocket publishes to one channel share one run of offsets: alternating,
 * they go up by exactly one; the subscriber gets every message once, in order, HTTP
 * ones without "from" and with their data byte for byte. */
Test(http_api, http_and_websocket_publishes_share_one_run_of_offsets)
{
	enum { N = 24 };
	struct ws_client *s, *p;
	char epoch[64], e[64], pub_client[64], data[256];
	json_int_t off;

	itest_start(CONFIG);
	s = itest_peer("s", NULL, NULL);
	p = itest_peer("p", NULL, pub_client);
	sub(s, "chat:mix");
	epoch[0] = '\0';
	for (int i = 0; i < N; i++) {
		snprintf(data, sizeof(data),
			 "{ \"i\" : %d, \"p\" : 0.10, \"e\":1E+2, \"s\":\"caf\\u00e9 \\\"q\\\"\", "
			 "\"a\":[ 1 ,2 ] }",
			 i);
		if (i % 3 != 1)
			off = publish_http("chat:mix", data, e);
		else
			off = sb_publish(p, "chat:mix", data, e, sizeof(e));
		cr_assert_eq(off, i + 1, "publish %d (%s) got offset %lld", i,
			     i % 3 != 1 ? "HTTP" : "WebSocket", (long long)off);
		if (i == 0)
			snprintf(epoch, sizeof(epoch), "%s", e);
		cr_expect_str_eq(e, epoch, "publish %d changed the epoch", i);
	}
	for (int i = 0; i < N; i++) {
		snprintf(data, sizeof(data),
			 "{ \"i\" : %d, \"p\" : 0.10, \"e\":1E+2, \"s\":\"caf\\u00e9 \\\"q\\\"\", "
			 "\"a\":[ 1 ,2 ] }",
			 i);
		if (i % 3 != 1) {
			expect_server_message(s, "chat:mix", i + 1, data);
		} else {
			json_t *m, *from;
			char *text = expect_message(s, "chat:mix", i + 1, &m), *want;

			from = json_object_get(m, "from");
			cr_expect_str_eq(json_str(from, "client"), pub_client, "%s", text);
			cr_expect_str_eq(json_str(from, "user"), "p", "%s", text);
			cr_assert_geq(asprintf(&want, "\"data\":%s", data), 0);
			cr_expect_not_null(strstr(text, want), "%s", text);
			free(want);
			free(text);
			json_decref(m);
		}
	}
	expect_nothing_before_sentinel(s, "chat:mix", "subscriber");
	ws_client_free(s);
	ws_client_free(p);
	itest_finish();
}

/* The same while WebSocket publishes are in flight: the publisher pipelines its publishes
 * without waiting while HTTP publishes go in between. Every offset 1..N is used once,
 * and each reply (published or 201) names the offset at which the subscriber saw that
 * very message. */
Test(http_api, concurrent_http_and_websocket_publishes_get_distinct_consecutive_offsets)
{
	enum { WS = 60, HTTP = 20, N = WS + HTTP };
	json_int_t ws_off[WS], http_off[HTTP];
	struct ws_client *s, *p;
	char data[64];
	bool seen[N + 1] = { false };
	json_t *m;

	itest_start(CONFIG);
	s = itest_peer("s", NULL, NULL);
	p = itest_peer("p", NULL, NULL);
	sub(s, "chat:race");
	for (int i = 0; i < WS; i++) {
		cr_assert_eq(
			ws_client_sendf(p,
					"{\"type\":\"publish\",\"id\":%d,\"channel\":\"chat:race\","
					"\"data\":{\"ws\":%d}}",
					1000 + i, i),
			0);
		if (i % 3 == 0 && i / 3 < HTTP) {
			snprintf(data, sizeof(data), "{\"http\":%d}", i / 3);
			http_off[i / 3] = publish_http("chat:race", data, NULL);
		}
	}
	for (int i = 0; i < WS; i++) {
		json_t *r = ws_client_wait_id(p, 1000 + i, WAIT_MS);

		cr_assert_str_eq(json_str(r, "type"), "published", "publish %d", i);
		ws_off[i] = json_int(r, "offset");
		json_decref(r);
	}
	for (int n = 1; n <= N; n++) {
		const json_t *d;
		json_int_t off;

		m = ws_client_recv_json(s, WAIT_MS);
		cr_assert_not_null(m, "message %d of %d missing", n, N);
		cr_assert_str_eq(json_str(m, "type"), "message");
		off = json_int(m, "offset");
		cr_assert_eq(off, n, "offsets out of order or with a gap: %lld after %d",
			     (long long)off, n - 1);
		cr_assert(!seen[off]);
		seen[off] = true;
		d = json_object_get(m, "data");
		if (json_object_get(d, "http") != NULL) {
			cr_expect_null(json_object_get(m, "from"), "offset %d", n);
			cr_expect_eq(http_off[json_int(d, "http")], off,
				     "HTTP publish %lld was answered with offset %lld, delivered "
				     "at %lld",
				     (long long)json_int(d, "http"),
				     (long long)http_off[json_int(d, "http")], (long long)off);
		} else {
			cr_expect_not_null(json_object_get(m, "from"), "offset %d", n);
			cr_expect_eq(ws_off[json_int(d, "ws")], off,
				     "WebSocket publish %lld was answered with offset %lld, "
				     "delivered at %lld",
				     (long long)json_int(d, "ws"),
				     (long long)ws_off[json_int(d, "ws")], (long long)off);
		}
		json_decref(m);
	}
	expect_nothing_before_sentinel(s, "chat:race", "subscriber");
	ws_client_free(s);
	ws_client_free(p);
	itest_finish();
}

/* "publish":"none" means no client; the server side publishes all the same. */
Test(http_api, publish_over_http_to_a_publish_none_namespace)
{
	struct ws_client *s;
	json_t *h, *msgs;

	itest_start(CONFIG);
	s = itest_peer("s", NULL, NULL);
	sub(s, "ticks:btc");
	cr_expect_eq(sb_expect_error(s, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"ticks:btc\","
				     "\"data\":1"),
		     0, "a client published to ticks");
	cr_assert_eq(publish_http("ticks:btc", "{\"price\":64123.50}", NULL), 1);
	expect_server_message(s, "ticks:btc", 1, "{\"price\":64123.50}");
	cr_assert_eq(publish_http("ticks:btc", "{\"price\":64124}", NULL), 2);
	expect_server_message(s, "ticks:btc", 2, "{\"price\":64124}");
	/* Without a subscriber too; history_size 10 keeps the last 10. */
	for (int i = 3; i <= 12; i++)
		cr_assert_eq(publish_http("ticks:eth", "1", NULL), i - 2);
	h = get_json("/api/v1/channels/ticks:eth/messages");
	msgs = json_object_get(h, "messages");
	cr_expect_eq(json_array_size(msgs), 10);
	cr_expect_eq(json_int(json_array_get(msgs, 0), "offset"), 1);
	json_decref(h);
	cr_assert_eq(publish_http("ticks:eth", "1", NULL), 11);
	h = get_json("/api/v1/channels/ticks:eth/messages");
	msgs = json_object_get(h, "messages");
	cr_expect_eq(json_array_size(msgs), 10, "history_size 10");
	cr_expect_eq(json_int(json_array_get(msgs, 0), "offset"), 2);
	json_decref(h);
	ws_client_free(s);
	itest_finish();
}

/* POST /api/v1/publish: one result per channel, in order; a forbidden channel gets an
 * error result and does not stop the others. */
Test(http_api, publish_to_several_channels_reports_each_result_in_order)
{
	struct ws_client *s;
	struct http_resp r;
	const json_t *res, *x;
	char ea[64], eb[64];

	itest_start(CONFIG);
	s = itest_peer("s", NULL, NULL);
	sub(s, "chat:a");
	sub(s, "chat:b");
	sub(s, "ticks:x");
	cr_assert_eq(publish_http("chat:b", "0", eb), 1);
	expect_server_message(s, "chat:b", 1, "0");

	/* The chat-only key may not publish to ticks:x. */
	call(&r, "POST", "/api/v1/publish", CHAT_KEY,
	     "{\"channels\":[\"chat:a\",\"ticks:x\",\"chat:b\"],\"data\":{\"k\" : 1.0}}");
	expect_ok(&r, 200, "publish to three channels");
	res = json_object_get(r.json, "results");
	cr_assert(json_is_array(res), "%s", r.body);
	cr_assert_eq(json_array_size(res), 3, "%s", r.body);
	cr_expect_eq(json_object_size(r.json), 1, "results only: %s", r.body);
	x = json_array_get(res, 0);
	cr_expect_str_eq(json_str(x, "channel"), "chat:a", "%s", r.body);
	cr_expect_eq(json_int(x, "offset"), 1, "%s", r.body);
	cr_expect(json_str(x, "epoch")[0] != '\0', "%s", r.body);
	cr_expect_null(json_object_get(x, "error"), "%s", r.body);
	snprintf(ea, sizeof(ea), "%s", json_str(x, "epoch"));
	x = json_array_get(res, 1);
	cr_expect_str_eq(json_str(x, "channel"), "ticks:x", "%s", r.body);
	cr_expect_str_eq(json_str(json_object_get(x, "error"), "code"), "forbidden", "%s", r.body);
	cr_expect(json_is_string(json_object_get(json_object_get(x, "error"), "message")), "%s",
		  r.body);
	cr_expect_null(json_object_get(x, "offset"), "%s", r.body);
	x = json_array_get(res, 2);
	cr_expect_str_eq(json_str(x, "channel"), "chat:b", "%s", r.body);
	cr_expect_eq(json_int(x, "offset"), 2, "%s", r.body);
	cr_expect_str_eq(json_str(x, "epoch"), eb, "%s", r.body);
	http_resp_fini(&r);
	expect_server_message(s, "chat:a", 1, "{\"k\" : 1.0}");
	expect_server_message(s, "chat:b", 2, "{\"k\" : 1.0}");

	/* The backend key may publish to all of them. */
	call(&r, "POST", "/api/v1/publish", KEY,
	     "{\"channels\":[\"ticks:x\",\"chat:a\"],\"data\":\"both\"}");
	expect_ok(&r, 200, "publish to two channels");
	res = json_object_get(r.json, "results");
	cr_assert_eq(json_array_size(res), 2, "%s", r.body);
	cr_expect_str_eq(json_str(json_array_get(res, 0), "channel"), "ticks:x");
	cr_expect_eq(json_int(json_array_get(res, 0), "offset"), 1, "%s", r.body);
	cr_expect_str_eq(json_str(json_array_get(res, 1), "channel"), "chat:a");
	cr_expect_eq(json_int(json_array_get(res, 1), "offset"), 2, "%s", r.body);
	cr_expect_str_eq(json_str(json_array_get(res, 1), "epoch"), ea, "%s", r.body);
	http_resp_fini(&r);
	expect_server_message(s, "ticks:x", 1, "\"both\"");
	expect_server_message(s, "chat:a", 2, "\"both\"");
	expect_nothing_before_sentinel(s, "chat:b", "subscriber");
	ws_client_free(s);
	itest_finish();
}

/* Issue 9 defect 11: in POST /api/v1/publish an invalid channel name is an error result
 * (invalid_channel), not a 400 for the whole request, and a channel listed twice is
 * published once: one result per distinct channel, in the order first given. */
Test(http_api, issue_9_multi_publish_invalid_names_and_duplicates)
{
	static const char *const want[] = { "chat:a", "bad name", "chat:b", "x/y" };
	struct ws_client *s;
	struct http_resp r;
	const json_t *res, *x;
	json_t *h;

	itest_start(CONFIG);
	s = itest_peer("s", NULL, NULL);
	sub(s, "chat:a");
	sub(s, "chat:b");
	call(&r, "POST", "/api/v1/publish", KEY,
	     "{\"channels\":[\"chat:a\",\"bad name\",\"chat:b\",\"chat:a\",\"bad name\",\"x/y\","
	     "\"chat:b\"],\"data\":7}");
	expect_ok(&r, 200, "an invalid name does not refuse the request");
	res = json_object_get(r.json, "results");
	cr_assert_eq(json_array_size(res), 4, "one result per distinct channel: %s", r.body);
	for (size_t i = 0; i < 4; i++) {
		x = json_array_get(res, i);
		cr_expect_str_eq(json_str(x, "channel"), want[i], "result %zu: %s", i, r.body);
		if (i == 0 || i == 2) {
			cr_expect_eq(json_int(x, "offset"), 1, "%s", r.body);
			cr_expect_null(json_object_get(x, "error"), "%s", r.body);
		} else {
			cr_expect_str_eq(json_str(json_object_get(x, "error"), "code"),
					 "invalid_channel", "%s", r.body);
			cr_expect_null(json_object_get(x, "offset"), "%s", r.body);
		}
	}
	http_resp_fini(&r);
	expect_server_message(s, "chat:a", 1, "7");
	expect_server_message(s, "chat:b", 1, "7");
	expect_nothing_before_sentinel(s, "chat:a", "subscriber");
	h = get_json("/api/v1/channels/chat:b/messages");
	cr_expect_eq(json_int(h, "offset"), 1, "chat:b was published once");
	json_decref(h);
	ws_client_free(s);
	itest_finish();
}

/* ---- channels ---- */

/* Asserts that the list body is exactly {"channels":[...]} with these names and counts
 * (want: "name=count" strings, NULL-terminated), in this order. */
static void
expect_channel_list(const json_t *j, const char *const *want, const char *what)
{
	const json_t *list = json_object_get(j, "channels");
	char *s = json_dumps(j, JSON_COMPACT);
	size_t n = 0;

	cr_assert(json_is_array(list), "%s: %s", what, s);
	cr_expect_eq(json_object_size(j), 1, "%s: channels only: %s", what, s);
	for (; want[n] != NULL; n++) {
		const json_t *x = json_array_get(list, n);
		char name[300];
		int count;

		cr_assert_eq(sscanf(want[n], "%299[^=]=%d", name, &count), 2);
		cr_assert_not_null(x, "%s: %s missing: %s", what, name, s);
		cr_expect_str_eq(json_str(x, "channel"), name, "%s: entry %zu: %s", what, n, s);
		cr_expect_eq(json_int(x, "subscribers"), count, "%s: %s: %s", what, name, s);
		cr_expect_eq(json_object_size(x), 2, "%s: channel and subscribers: %s", what, s);
	}
	cr_expect_eq(json_array_size(list), n, "%s: %s", what, s);
	free(s);
}

Test(http_api, list_channels_with_and_without_prefix)
{
	static const char *const all[] = { "chat:a=2", "chat:b=1", "plain:z=1", "ticks:t=1", NULL };
	static const char *const chat[] = { "chat:a=2", "chat:b=1", NULL };
	static const char *const after[] = { "chat:a=1", NULL };
	static const char *const none[] = { NULL };
	struct ws_client *a, *b;
	json_t *j;

	itest_start(CONFIG);
	j = get_json("/api/v1/channels");
	expect_channel_list(j, none, "no channel yet");
	json_decref(j);
	a = itest_peer("a", NULL, NULL);
	b = itest_peer("b", NULL, NULL);
	sub(a, "ticks:t");
	sub(a, "chat:b");
	sub(a, "plain:z");
	sub(a, "chat:a");
	sub(b, "chat:a");
	/* A channel with retained history and no subscriber is not active. */
	cr_assert_eq(publish_http("chat:history-only", "1", NULL), 1);

	j = get_json("/api/v1/channels");
	expect_channel_list(j, all, "all");
	json_decref(j);
	j = get_json("/api/v1/channels?prefix=chat:");
	expect_channel_list(j, chat, "prefix chat:");
	json_decref(j);
	j = get_json("/api/v1/channels?prefix=chat%3A");
	expect_channel_list(j, chat, "prefix chat%3A");
	json_decref(j);
	j = get_json("/api/v1/channels?prefix=zzz");
	expect_channel_list(j, none, "prefix zzz");
	json_decref(j);
	j = get_json("/api/v1/channels?prefix=");
	expect_channel_list(j, all, "empty prefix");
	json_decref(j);

	cr_assert_eq(sb_unsubscribe(b, "chat:a"), 0);
	cr_assert_eq(sb_unsubscribe(a, "chat:b"), 0);
	j = get_json("/api/v1/channels?prefix=chat");
	expect_channel_list(j, after, "after unsubscribing");
	json_decref(j);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

Test(http_api, channel_info_with_and_without_presence)
{
	struct ws_client *a1, *a2, *b, *t;
	const json_t *p;
	char epoch[64];
	json_t *j, *sr;

	itest_start(CONFIG);
	a1 = itest_peer("alice", "{\"name\":\"Alice\"}", NULL);
	a2 = itest_peer("alice", NULL, NULL);
	b = itest_peer("bob", NULL, NULL);
	t = itest_peer("t", NULL, NULL);
	sub(a1, "chat:lobby");
	sub(a2, "chat:lobby");
	sub(b, "chat:lobby");
	cr_assert_eq(publish_http("chat:lobby", "1", NULL), 1);
	cr_assert_eq(publish_http("chat:lobby", "2", epoch), 2);

	j = get_json("/api/v1/channels/chat:lobby");
	cr_expect_str_eq(json_str(j, "channel"), "chat:lobby");
	cr_expect_eq(json_int(j, "subscribers"), 3);
	p = json_object_get(j, "presence");
	cr_assert(json_is_object(p), "chat has presence");
	cr_expect_eq(json_int(p, "clients"), 3);
	cr_expect_eq(json_int(p, "users"), 2);
	cr_expect_eq(json_object_size(p), 2, "clients and users");
	cr_expect_eq(json_int(j, "offset"), 2);
	cr_expect_str_eq(json_str(j, "epoch"), epoch);
	cr_expect_eq(json_object_size(j), 5, "channel, subscribers, presence, offset, epoch");
	json_decref(j);

	/* ticks has no presence: no "presence" member. */
	sr = subscribe(t, "ticks:info", NULL);
	j = get_json("/api/v1/channels/ticks%3Ainfo");
	cr_expect_str_eq(json_str(j, "channel"), "ticks:info");
	cr_expect_eq(json_int(j, "subscribers"), 1);
	cr_expect_null(json_object_get(j, "presence"), "ticks has no presence");
	cr_expect_eq(json_int(j, "offset"), 0);
	cr_expect_str_eq(json_str(j, "epoch"), json_str(sr, "epoch"), "the subscribed epoch");
	cr_expect_eq(json_object_size(j), 4, "channel, subscribers, offset, epoch");
	json_decref(j);
	json_decref(sr);

	/* A channel nobody uses. */
	j = get_json("/api/v1/channels/plain:unused");
	cr_expect_str_eq(json_str(j, "channel"), "plain:unused");
	cr_expect_eq(json_int(j, "subscribers"), 0);
	cr_expect_eq(json_int(j, "offset"), 0);
	cr_expect_str_eq(json_str(j, "epoch"), "");
	cr_expect_null(json_object_get(j, "presence"));
	json_decref(j);
	j = get_json("/api/v1/channels/chat:unused");
	cr_expect_eq(json_int(j, "subscribers"), 0);
	cr_expect_eq(json_int(j, "offset"), 0);
	cr_expect_str_eq(json_str(j, "epoch"), "");
	p = json_object_get(j, "presence");
	cr_expect(p == NULL || (json_int(p, "clients") == 0 && json_int(p, "users") == 0));
	json_decref(j);

	/* Leaving updates the counts. */
	cr_expect_eq(ws_client_close(a2, WAIT_MS), 1000);
	cr_expect_eq(sb_unsubscribe(b, "chat:lobby"), 0);
	j = poll_json("/api/v1/channels/chat:lobby", "subscribers", 1);
	cr_expect_eq(json_int(j, "subscribers"), 1, "after a close and an unsubscribe");
	p = json_object_get(j, "presence");
	cr_expect_eq(json_int(p, "clients"), 1);
	cr_expect_eq(json_int(p, "users"), 1);
	json_decref(j);
	ws_client_free(a1);
	ws_client_free(b);
	ws_client_free(t);
	itest_finish();
}

Test(http_api, presence_lists_members_and_is_refused_without_presence)
{
	char ca[64], cb[64], path[128];
	struct ws_client *a, *b, *c;
	const json_t *members, *m;
	struct http_resp r;
	json_t *j, *info;
	size_t i;
	int seen = 0;

	itest_start(CONFIG);
	a = itest_peer("alice", "{\"name\":\"Alice\",\"n\":1}", ca);
	b = itest_peer("bob", NULL, cb);
	c = itest_peer("carol", NULL, NULL);
	sub(a, "chat:p");
	sub(b, "chat:p");
	sub(c, "chat:other");
	j = get_json("/api/v1/channels/chat:p/presence");
	cr_expect_str_eq(json_str(j, "channel"), "chat:p");
	cr_expect_eq(json_object_size(j), 2, "channel and members");
	members = json_object_get(j, "members");
	cr_assert(json_is_array(members));
	cr_expect_eq(json_array_size(members), 2);
	info = json_pack("{s:s,s:i}", "name", "Alice", "n", 1);
	json_array_foreach(members, i, m)
	{
		if (strcmp(json_str(m, "client"), ca) == 0) {
			cr_expect_str_eq(json_str(m, "user"), "alice");
			cr_expect(json_equal(json_object_get(m, "info"), info), "alice's info");
			cr_expect_eq(json_object_size(m), 3, "client, user, info");
			seen |= 1;
		} else if (strcmp(json_str(m, "client"), cb) == 0) {
			cr_expect_str_eq(json_str(m, "user"), "bob");
			cr_expect_null(json_object_get(m, "info"), "bob connected without info");
			cr_expect_eq(json_object_size(m), 2, "client and user");
			seen |= 2;
		}
	}
	cr_expect_eq(seen, 3, "alice and bob must both be members");
	json_decref(info);
	json_decref(j);

	j = get_json("/api/v1/channels/chat:empty/presence");
	cr_expect_eq(json_array_size(json_object_get(j, "members")), 0);
	cr_expect(json_is_array(json_object_get(j, "members")));
	json_decref(j);

	/* Namespaces without presence. */
	call(&r, "GET", "/api/v1/channels/plain:x/presence", KEY, NULL);
	expect_error(&r, 403, "forbidden", "presence of plain:x");
	http_resp_fini(&r);
	snprintf(path, sizeof(path), "/api/v1/channels/ticks:x/presence");
	call(&r, "GET", path, KEY, NULL);
	expect_error(&r, 403, "forbidden", "presence of ticks:x");
	http_resp_fini(&r);
	ws_client_free(a);
	ws_client_free(b);
	ws_client_free(c);
	itest_finish();
}

/* ---- history ---- */

/* The history body for channel: its offset, and exactly offsets first..last (none when
 * last < first), each {"offset","data"} with data {"n":offset} for HTTP messages. */
static void
expect_history(const json_t *j, const char *channel, json_int_t offset, const char *epoch,
	       json_int_t first, json_int_t last, const char *what)
{
	const json_t *msgs = json_object_get(j, "messages"), *m;
	char *s = json_dumps(j, JSON_COMPACT);
	size_t i;

	cr_expect_str_eq(json_str(j, "channel"), channel, "%s", what);
	cr_expect_eq(json_int(j, "offset"), offset, "%s: offset", what);
	cr_expect_str_eq(json_str(j, "epoch"), epoch, "%s: epoch", what);
	cr_assert(json_is_array(msgs), "%s: %s", what, s);
	cr_expect_null(json_object_get(j, "truncated"), "%s: %s", what, s);
	cr_assert_eq((json_int_t)json_array_size(msgs), last >= first ? last - first + 1 : 0,
		     "%s: expected offsets %lld..%lld: %s", what, (long long)first, (long long)last,
		     s);
	json_array_foreach(msgs, i, m)
	{
		json_int_t off = first + (json_int_t)i;

		cr_expect_eq(json_int(m, "offset"), off, "%s: element %zu: %s", what, i, s);
		if (json_object_get(m, "from") == NULL) {
			cr_expect_eq(json_int(json_object_get(m, "data"), "n"), off, "%s", what);
			cr_expect_eq(json_object_size(m), 2, "%s: offset and data: %s", what, s);
		}
	}
	free(s);
}

Test(http_api, history_with_limit_since_offset_and_epoch)
{
	char epoch[64], path[256], client[64], data[32];
	static const char raw[] = "{ \"p\" : 0.10, \"s\":\"caf\\u00e9\" }";
	const json_t *m;
	struct ws_client *p;
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	p = itest_peer("p", NULL, client);
	for (int i = 1; i <= 20; i++) {
		snprintf(data, sizeof(data), "{\"n\":%d}", i);
		cr_assert_eq(publish_http("chat:h", data, i == 1 ? epoch : NULL), i);
	}
	/* One from a client: it keeps its "from". */
	cr_assert_eq(sb_publish(p, "chat:h", "{\"n\":21}", NULL, 0), 21);

	j = get_json("/api/v1/channels/chat:h/messages");
	expect_history(j, "chat:h", 21, epoch, 1, 21, "all");
	cr_expect_eq(json_object_size(j), 4, "channel, offset, epoch, messages");
	for (int i = 0; i < 20; i++)
		cr_expect_null(json_object_get(json_array_get(json_object_get(j, "messages"), i),
					       "from"),
			       "message %d came from the server side", i + 1);
	m = json_array_get(json_object_get(j, "messages"), 20);
	cr_expect_str_eq(json_str(json_object_get(m, "from"), "client"), client);
	cr_expect_str_eq(json_str(json_object_get(m, "from"), "user"), "p");
	json_decref(j);

	j = get_json("/api/v1/channels/chat:h/messages?limit=5");
	expect_history(j, "chat:h", 21, epoch, 17, 21, "limit=5");
	json_decref(j);
	j = get_json("/api/v1/channels/chat:h/messages?limit=0");
	expect_history(j, "chat:h", 21, epoch, 1, 21, "limit=0");
	json_decref(j);
	j = get_json("/api/v1/channels/chat:h/messages?limit=1000");
	expect_history(j, "chat:h", 21, epoch, 1, 21, "limit=1000");
	json_decref(j);

	snprintf(path, sizeof(path), "/api/v1/channels/chat:h/messages?since_offset=15&epoch=%s",
		 epoch);
	j = get_json(path);
	expect_history(j, "chat:h", 21, epoch, 16, 21, "since 15");
	json_decref(j);
	snprintf(path, sizeof(path),
		 "/api/v1/channels/chat:h/messages?limit=3&since_offset=10&epoch=%s", epoch);
	j = get_json(path);
	expect_history(j, "chat:h", 21, epoch, 19, 21, "since 10, limit 3");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/channels/chat:h/messages?since_offset=21&epoch=%s",
		 epoch);
	j = get_json(path);
	expect_history(j, "chat:h", 21, epoch, 1, 0, "since the last");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/channels/chat:h/messages?since_offset=30&epoch=%s",
		 epoch);
	j = get_json(path);
	expect_history(j, "chat:h", 21, epoch, 1, 0, "since past the last");
	json_decref(j);
	/* Another epoch: the offsets are void, the latest come as without since. */
	j = get_json("/api/v1/channels/chat:h/messages?since_offset=15&epoch=" WRONG_EPOCH);
	expect_history(j, "chat:h", 21, epoch, 1, 21, "wrong epoch");
	json_decref(j);
	j = get_json("/api/v1/channels/chat:h/messages?since_offset=15&epoch=" WRONG_EPOCH
		     "&limit=2");
	expect_history(j, "chat:h", 21, epoch, 20, 21, "wrong epoch, limit 2");
	json_decref(j);

	/* A channel with no state. */
	j = get_json("/api/v1/channels/chat:never/messages");
	expect_history(j, "chat:never", 0, "", 1, 0, "no state");
	json_decref(j);

	/* Data byte for byte in history. */
	cr_assert_eq(publish_http("chat:exact", raw, NULL), 1);
	call(&r, "GET", "/api/v1/channels/chat:exact/messages", KEY, NULL);
	expect_ok(&r, 200, "history of chat:exact");
	{
		char *want;

		cr_assert_geq(asprintf(&want, "\"data\":%s", raw), 0);
		cr_expect_not_null(strstr(r.body, want), "data re-encoded in %s", r.body);
		free(want);
	}
	http_resp_fini(&r);

	/* No history in plain; none kept is 403. */
	call(&r, "GET", "/api/v1/channels/plain:x/messages", KEY, NULL);
	expect_error(&r, 403, "forbidden", "history of plain:x");
	http_resp_fini(&r);
	ws_client_free(p);
	itest_finish();
}

/* DELETE .../messages: history gone, a new epoch, recover answers recovered:false. */
Test(http_api, drop_history_starts_a_new_epoch_and_recovery_fails)
{
	char e1[64], e2[64], e3[64], recover[160];
	struct ws_client *a, *b;
	struct http_resp r;
	json_t *j, *sr;

	itest_start(CONFIG);
	a = itest_peer("a", NULL, NULL);
	b = itest_peer("b", NULL, NULL);
	sub(a, "chat:d");
	for (int i = 1; i <= 3; i++) {
		char data[16];

		snprintf(data, sizeof(data), "{\"n\":%d}", i);
		cr_assert_eq(publish_http("chat:d", data, e1), i);
		expect_server_message(a, "chat:d", i, data);
	}
	call(&r, "DELETE", "/api/v1/channels/chat:d/messages", KEY, NULL);
	expect_ok(&r, 200, "drop history");
	cr_expect_str_eq(json_str(r.json, "channel"), "chat:d", "%s", r.body);
	cr_expect_eq(json_int(r.json, "offset"), 0, "%s", r.body);
	snprintf(e2, sizeof(e2), "%s", json_str(r.json, "epoch"));
	cr_expect(e2[0] != '\0', "no new epoch: %s", r.body);
	cr_expect_str_neq(e2, e1, "the epoch did not change: %s", r.body);
	cr_expect_eq(json_object_size(r.json), 3, "channel, offset, epoch: %s", r.body);
	http_resp_fini(&r);
	/* The live subscriber is told (issue 9): without it, an offset-tracking client
	 * would take the new epoch's offsets 1, 2, 3 for duplicates. */
	j = ws_client_recv_json(a, WAIT_MS);
	cr_assert_not_null(j, "no reset frame after the drop");
	cr_expect_str_eq(json_str(j, "type"), "reset");
	cr_expect_str_eq(json_str(j, "channel"), "chat:d");
	cr_expect_eq(json_int(j, "offset"), 0);
	cr_expect_str_eq(json_str(j, "epoch"), e2);
	cr_expect_eq(json_object_size(j), 4, "type, channel, offset, epoch");
	json_decref(j);

	j = get_json("/api/v1/channels/chat:d/messages");
	expect_history(j, "chat:d", 0, e2, 1, 0, "after the drop");
	json_decref(j);
	j = get_json("/api/v1/channels/chat:d");
	cr_expect_eq(json_int(j, "offset"), 0);
	cr_expect_str_eq(json_str(j, "epoch"), e2);
	json_decref(j);

	/* A client that saw offset 3 of the old epoch cannot recover. */
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":3,\"epoch\":\"%s\"}", e1);
	sr = subscribe(b, "chat:d", recover);
	cr_expect(json_is_false(json_object_get(sr, "recovered")),
		  "recovered over a dropped history");
	cr_expect_eq(json_int(sr, "offset"), 0);
	cr_expect_str_eq(json_str(sr, "epoch"), e2);
	json_decref(sr);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":0,\"epoch\":\"%s\"}", e1);
	cr_assert_eq(sb_unsubscribe(b, "chat:d"), 0);
	sr = subscribe(b, "chat:d", recover);
	cr_expect(json_is_false(json_object_get(sr, "recovered")), "the old epoch recovered");
	json_decref(sr);

	/* The new epoch starts at 1, for subscribers old and new. */
	cr_assert_eq(publish_http("chat:d", "{\"n\":1}", e3), 1);
	cr_expect_str_eq(e3, e2, "the first publish after the drop changed the epoch again");
	expect_server_message(a, "chat:d", 1, "{\"n\":1}");
	expect_server_message(b, "chat:d", 1, "{\"n\":1}");
	/* a, subscribed since the old epoch, cannot recover from it either. */
	cr_assert_eq(sb_unsubscribe(a, "chat:d"), 0);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":3,\"epoch\":\"%s\"}", e1);
	sr = subscribe(a, "chat:d", recover);
	cr_expect(json_is_false(json_object_get(sr, "recovered")), "the old epoch recovered");
	cr_expect_eq(json_int(sr, "offset"), 1);
	json_decref(sr);
	expect_nothing_before_sentinel(a, "chat:d", "a");
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

/* ---- disconnect and unsubscribe ---- */

Test(http_api, disconnect_client_closes_that_connection_with_4003)
{
	char c1[64], c2[64], path[256], *esc;
	struct ws_client *a, *b;
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, c1);
	b = itest_peer("alice", NULL, c2);
	sub(a, "chat:k");
	sub(b, "chat:k");
	esc = http_escape(c1);
	snprintf(path, sizeof(path), "/api/v1/clients/%s", esc);
	free(esc);
	call(&r, "DELETE", path, KEY, NULL);
	expect_ok(&r, 200, path);
	cr_expect_eq(json_int(r.json, "disconnected"), 1, "%s", r.body);
	cr_expect_eq(json_object_size(r.json), 1, "%s", r.body);
	http_resp_fini(&r);
	itest_expect_close(a, 4003, "disconnected by the server", "the disconnected client");
	ws_client_free(a);
	/* The other connection of the same user stays. */
	itest_expect_alive(b, "the other connection");
	j = poll_json("/api/v1/channels/chat:k", "subscribers", 1);
	cr_expect_eq(json_int(j, "subscribers"), 1, "the disconnected client left chat:k");
	json_decref(j);

	/* Nobody matched: 0. */
	call(&r, "DELETE", path, KEY, NULL);
	expect_ok(&r, 200, "the same client again");
	cr_expect_eq(json_int(r.json, "disconnected"), 0, "%s", r.body);
	http_resp_fini(&r);
	call(&r, "DELETE", "/api/v1/clients/no-such-client-1", KEY, NULL);
	expect_ok(&r, 200, "an unknown client");
	cr_expect_eq(json_int(r.json, "disconnected"), 0, "%s", r.body);
	http_resp_fini(&r);
	itest_expect_alive(b, "the other connection");
	cr_expect_str_neq(c1, c2);
	ws_client_free(b);
	itest_finish();
}

Test(http_api, disconnect_user_closes_all_its_connections)
{
	struct ws_client *e1, *e2, *bob;
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	e1 = itest_peer("eve smith", NULL, NULL);
	e2 = itest_peer("eve smith", NULL, NULL);
	bob = itest_peer("bob", NULL, NULL);
	sub(e1, "chat:u");
	sub(bob, "chat:u");
	/* The user name is URL-decoded. */
	call(&r, "DELETE", "/api/v1/users/eve%20smith", KEY, NULL);
	expect_ok(&r, 200, "disconnect eve smith");
	cr_expect_eq(json_int(r.json, "disconnected"), 2, "%s", r.body);
	cr_expect_eq(json_object_size(r.json), 1, "%s", r.body);
	http_resp_fini(&r);
	itest_expect_close(e1, 4003, "disconnected by the server", "eve's first connection");
	itest_expect_close(e2, 4003, "disconnected by the server", "eve's second connection");
	ws_client_free(e1);
	ws_client_free(e2);
	itest_expect_alive(bob, "bob");
	j = poll_json("/healthz", "connections", 1);
	cr_expect_eq(json_int(j, "connections"), 1, "only bob is left");
	json_decref(j);

	call(&r, "DELETE", "/api/v1/users/eve%20smith", KEY, NULL);
	expect_ok(&r, 200, "disconnect eve smith again");
	cr_expect_eq(json_int(r.json, "disconnected"), 0, "%s", r.body);
	http_resp_fini(&r);
	call(&r, "DELETE", "/api/v1/users/nobody", KEY, NULL);
	expect_ok(&r, 200, "disconnect nobody");
	cr_expect_eq(json_int(r.json, "disconnected"), 0, "%s", r.body);
	http_resp_fini(&r);
	itest_expect_alive(bob, "bob");
	ws_client_free(bob);
	itest_finish();
}

Test(http_api, unsubscribe_user_sends_unsubscribed_and_stops_delivery)
{
	struct ws_client *a1, *a2, *bob;
	struct http_resp r;
	json_t *u, *want;
	json_int_t off;

	itest_start(CONFIG);
	a1 = itest_peer("alice", NULL, NULL);
	a2 = itest_peer("alice", NULL, NULL);
	bob = itest_peer("bob", NULL, NULL);
	sub(a1, "chat:u");
	sub(a2, "chat:u");
	sub(a1, "chat:v");
	sub(a2, "chat:v");
	sub(bob, "chat:u");

	call(&r, "POST", "/api/v1/users/alice/unsubscribe", KEY, "{\"channel\":\"chat:u\"}");
	expect_ok(&r, 200, "unsubscribe alice");
	cr_expect_eq(json_int(r.json, "unsubscribed"), 2, "%s", r.body);
	cr_expect_eq(json_object_size(r.json), 1, "%s", r.body);
	http_resp_fini(&r);
	want = json_pack("{s:s,s:s,s:s}", "type", "unsubscribed", "channel", "chat:u", "reason",
			 "server");
	u = ws_client_recv_json(a1, WAIT_MS);
	cr_expect(json_equal(u, want), "a1 got %s", u ? json_dumps(u, JSON_COMPACT) : "nothing");
	json_decref(u);
	u = ws_client_recv_json(a2, WAIT_MS);
	cr_expect(json_equal(u, want), "a2 got %s", u ? json_dumps(u, JSON_COMPACT) : "nothing");
	json_decref(u);
	json_decref(want);

	/* chat:u now reaches bob only; chat:v still reaches alice. */
	cr_assert_eq(publish_http("chat:u", "\"after\"", NULL), 1);
	expect_server_message(bob, "chat:u", 1, "\"after\"");
	off = publish_http("chat:v", "\"sentinel\"", NULL);
	itest_expect_sentinel(a1, "chat:v", off, "a1");
	itest_expect_sentinel(a2, "chat:v", off, "a2");
	/* She left for real: subscribing again works. */
	sub(a1, "chat:u");
	cr_assert_eq(publish_http("chat:u", "\"again\"", NULL), 2);
	expect_server_message(a1, "chat:u", 2, "\"again\"");
	expect_server_message(bob, "chat:u", 2, "\"again\"");

	/* Nobody subscribed: 0, and nothing is sent. */
	call(&r, "POST", "/api/v1/users/alice/unsubscribe", KEY, "{\"channel\":\"chat:none\"}");
	expect_ok(&r, 200, "unsubscribe alice from a channel she is not in");
	cr_expect_eq(json_int(r.json, "unsubscribed"), 0, "%s", r.body);
	http_resp_fini(&r);
	expect_nothing_before_sentinel(a2, "chat:v", "a2");
	ws_client_free(a1);
	ws_client_free(a2);
	ws_client_free(bob);
	itest_finish();
}

/* ---- errors ---- */

Test(http_errors, missing_wrong_or_non_bearer_credentials_are_401)
{
	static const char *const paths[] = { "/api/v1/channels", "/api/v1/channels/chat:x",
					     "/api/v1/channels/chat:x/messages", NULL };
	struct http_req req = { .method = "GET" };
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	for (size_t i = 0; paths[i] != NULL; i++) {
		req.path = paths[i];
		req.key = NULL;
		req.authorization = NULL;
		send_req(&r, &req);
		expect_error(&r, 401, "unauthorized", "no Authorization");
		http_resp_fini(&r);
		req.key = "sk_wrong_1";
		send_req(&r, &req);
		expect_error(&r, 401, "unauthorized", "an unknown key");
		http_resp_fini(&r);
		/* base64("sk_test_1:") */
		req.authorization = "Basic c2tfdGVzdF8xOg==";
		send_req(&r, &req);
		expect_error(&r, 401, "unauthorized", "Basic");
		http_resp_fini(&r);
		req.authorization = "sk_test_1";
		send_req(&r, &req);
		expect_error(&r, 401, "unauthorized", "the key without a scheme");
		http_resp_fini(&r);
		req.authorization = "Bearer ";
		send_req(&r, &req);
		expect_error(&r, 401, "unauthorized", "Bearer without a key");
		http_resp_fini(&r);
		req.authorization = "Bearer sk_test_1x";
		send_req(&r, &req);
		expect_error(&r, 401, "unauthorized", "a key with a suffix");
		http_resp_fini(&r);
	}
	/* Refused requests had no effect. */
	call(&r, "POST", "/api/v1/channels/chat:x/messages", NULL, "{\"data\":1}");
	expect_error(&r, 401, "unauthorized", "publish without a key");
	http_resp_fini(&r);
	call(&r, "POST", "/api/v1/channels/chat:x/messages", "sk_chat_nope", "{\"data\":1}");
	expect_error(&r, 401, "unauthorized", "publish with an unknown key");
	http_resp_fini(&r);
	j = get_json("/api/v1/channels/chat:x/messages");
	cr_expect_eq(json_int(j, "offset"), 0, "a refused publish was published");
	json_decref(j);
	itest_finish();
}

Test(http_errors, a_key_whose_channels_do_not_match_is_403)
{
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	/* Three requests: the chat-only key's burst. */
	call(&r, "POST", "/api/v1/channels/ticks:x/messages", CHAT_KEY, "{\"data\":1}");
	expect_error(&r, 403, "forbidden", "chat-only key publishing to ticks:x");
	http_resp_fini(&r);
	call(&r, "GET", "/api/v1/channels", CHAT_KEY, NULL);
	expect_error(&r, 403, "forbidden", "chat-only key listing channels");
	http_resp_fini(&r);
	call(&r, "DELETE", "/api/v1/users/alice", CHAT_KEY, NULL);
	expect_error(&r, 403, "forbidden", "chat-only key disconnecting a user");
	http_resp_fini(&r);
	j = get_json("/api/v1/channels/ticks:x/messages");
	cr_expect_eq(json_int(j, "offset"), 0, "the forbidden publish was published");
	json_decref(j);
	itest_finish();
}

Test(http_errors, a_chat_only_key_works_on_chat_and_nowhere_else)
{
	struct ws_client *a;
	struct http_resp r;
	char client[64], path[256], *esc;

	itest_start(CONFIG);
	a = itest_peer("a", NULL, client);
	call(&r, "POST", "/api/v1/channels/chat:ok/messages", CHAT_KEY, "{\"data\":1}");
	expect_ok(&r, 201, "chat-only key publishing to chat:ok");
	cr_expect_eq(json_int(r.json, "offset"), 1, "%s", r.body);
	http_resp_fini(&r);
	esc = http_escape(client);
	snprintf(path, sizeof(path), "/api/v1/clients/%s", esc);
	free(esc);
	call(&r, "DELETE", path, CHAT_KEY, NULL);
	expect_error(&r, 403, "forbidden", "chat-only key disconnecting a client");
	http_resp_fini(&r);
	call(&r, "GET", "/api/v1/channels/ticks:x", CHAT_KEY, NULL);
	expect_error(&r, 403, "forbidden", "chat-only key reading ticks:x");
	http_resp_fini(&r);
	itest_expect_alive(a, "the client the chat-only key tried to disconnect");
	ws_client_free(a);
	itest_finish();
}

/* A channel in a namespace that is not configured, with default_namespace null. */
Test(http_errors, an_unconfigured_namespace_is_403_even_for_the_server_side)
{
	struct http_resp r;
	const json_t *res;

	itest_start("{" API_KEYS "," NAMESPACES ",\"default_namespace\":null}");
	call(&r, "POST", "/api/v1/channels/zzz:x/messages", KEY, "{\"data\":1}");
	expect_error(&r, 403, "forbidden", "publish to zzz:x");
	http_resp_fini(&r);
	call(&r, "POST", "/api/v1/channels/lobby/messages", KEY, "{\"data\":1}");
	expect_error(&r, 403, "forbidden", "publish to a bare name");
	http_resp_fini(&r);
	call(&r, "POST", "/api/v1/publish", KEY,
	     "{\"channels\":[\"zzz:x\",\"chat:x\"],\"data\":1}");
	expect_ok(&r, 200, "publish to zzz:x and chat:x");
	res = json_object_get(r.json, "results");
	cr_assert_eq(json_array_size(res), 2, "%s", r.body);
	cr_expect_str_eq(json_str(json_object_get(json_array_get(res, 0), "error"), "code"),
			 "forbidden", "%s", r.body);
	cr_expect_eq(json_int(json_array_get(res, 1), "offset"), 1, "%s", r.body);
	http_resp_fini(&r);
	itest_finish();
}

Test(http_errors, unknown_routes_are_404)
{
	static const char *const paths[] = { "/api/v1/nope",
					     "/api/v2/channels",
					     "/api/v1/users",
					     "/api/v1/clients",
					     "/api/v1",
					     "/api/v1/",
					     NULL };
	/* Under channels/, what is not a known suffix is part of the channel name (lws has
	 * decoded %2F into '/' by then, so "chat%2Fx" and "chat:x/nope" look the same): the
	 * name is invalid, 400 (docs/http-api.md). */
	static const char *const bad_names[] = { "/api/v1/channels/chat:x/nope",
						 "/api/v1/channels/chat:x/messages/1", NULL };
	struct http_resp r;

	itest_start(CONFIG);
	for (size_t i = 0; paths[i] != NULL; i++) {
		call(&r, "GET", paths[i], KEY, NULL);
		expect_error(&r, 404, "not_found", paths[i]);
		http_resp_fini(&r);
	}
	for (size_t i = 0; bad_names[i] != NULL; i++) {
		call(&r, "GET", bad_names[i], KEY, NULL);
		expect_error(&r, 400, "bad_request", bad_names[i]);
		http_resp_fini(&r);
	}
	itest_finish();
}

/* Asserts that Allow lists every method of want (comma-separated) and not `method`. */
static void
expect_allow(const struct http_resp *r, const char *method, const char *want, const char *what)
{
	char *allow = http_resp_header(r, "Allow"), *copy, *tok, *save;

	cr_assert_not_null(allow, "%s: 405 without Allow", what);
	copy = strdup(want);
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		bool found = false;
		char *a = strdup(allow), *t, *s2;

		for (t = strtok_r(a, ", ", &s2); t != NULL; t = strtok_r(NULL, ", ", &s2))
			found |= strcmp(t, tok) == 0;
		free(a);
		cr_expect(found, "%s: Allow: %s lacks %s", what, allow, tok);
	}
	{
		char *a = strdup(allow), *t, *s2;

		for (t = strtok_r(a, ", ", &s2); t != NULL; t = strtok_r(NULL, ", ", &s2))
			cr_expect_str_neq(t, method, "%s: Allow: %s lists the refused method", what,
					  allow);
		free(a);
	}
	free(copy);
	free(allow);
}

Test(http_errors, a_route_with_other_methods_is_405_with_allow)
{
	static const struct {
		const char *method, *path, *allow;
	} cases[] = {
		{ "PUT", "/api/v1/channels/chat:x/messages", "GET,POST,DELETE" },
		{ "PATCH", "/api/v1/channels/chat:x/messages", "GET,POST,DELETE" },
		{ "GET", "/api/v1/publish", "POST" },
		{ "DELETE", "/api/v1/publish", "POST" },
		{ "POST", "/api/v1/channels", "GET" },
		{ "DELETE", "/api/v1/channels", "GET" },
		{ "POST", "/api/v1/channels/chat:x", "GET" },
		{ "DELETE", "/api/v1/channels/chat:x", "GET" },
		{ "POST", "/api/v1/channels/chat:x/presence", "GET" },
		{ "GET", "/api/v1/clients/abc-1", "DELETE" },
		{ "POST", "/api/v1/clients/abc-1", "DELETE" },
		{ "GET", "/api/v1/users/alice", "DELETE" },
		{ "GET", "/api/v1/users/alice/unsubscribe", "POST" },
		{ "DELETE", "/api/v1/users/alice/unsubscribe", "POST" },
		{ "POST", "/healthz", "GET" },
	};
	struct http_resp r;
	char what[160];

	itest_start(CONFIG);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(what, sizeof(what), "%s %s", cases[i].method, cases[i].path);
		call(&r, cases[i].method, cases[i].path, KEY, NULL);
		expect_error(&r, 405, "method_not_allowed", what);
		expect_allow(&r, cases[i].method, cases[i].allow, what);
		http_resp_fini(&r);
	}
	itest_finish();
}

/* A chunked body (no Content-Length) is refused with 411, and has no effect. */
Test(http_errors, a_chunked_body_is_411)
{
	struct http_req req = { .method = "POST", .key = KEY, .mode = HTTP_BODY_CHUNKED };
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	req.path = "/api/v1/channels/chat:x/messages";
	req.body = "{\"data\":{\"chunked\":true}}";
	send_req(&r, &req);
	expect_error(&r, 411, "length_required", "chunked publish");
	http_resp_fini(&r);
	req.path = "/api/v1/publish";
	req.body = "{\"channels\":[\"chat:x\"],\"data\":1}";
	send_req(&r, &req);
	expect_error(&r, 411, "length_required", "chunked multi-publish");
	http_resp_fini(&r);
	req.path = "/api/v1/users/alice/unsubscribe";
	req.body = "{\"channel\":\"chat:x\"}";
	send_req(&r, &req);
	expect_error(&r, 411, "length_required", "chunked unsubscribe");
	http_resp_fini(&r);
	j = get_json("/api/v1/channels/chat:x/messages");
	cr_expect_eq(json_int(j, "offset"), 0, "a refused chunked publish was published");
	json_decref(j);
	/* The server still answers. */
	cr_expect_eq(publish_http("chat:x", "1", NULL), 1);
	itest_finish();
}

/* A body of len bytes: {"data":<data_len bytes of string>} padded with spaces before
 * the closing brace. */
static char *
sized_body(size_t len, size_t data_len)
{
	char *b = malloc(len + 1);
	size_t n;

	cr_assert_not_null(b);
	cr_assert_geq(data_len, 2);
	n = (size_t)sprintf(b, "{\"data\":\"");
	memset(b + n, 'x', data_len - 2);
	n += data_len - 2;
	b[n++] = '"';
	cr_assert_leq(n + 1, len, "body too small for its data");
	memset(b + n, ' ', len - n - 1);
	b[len - 1] = '}';
	b[len] = '\0';
	return b;
}

Test(http_errors, bodies_over_max_http_body_and_data_over_max_data_size_are_413)
{
	struct ws_client *s;
	struct http_resp r;
	char *body;
	json_t *j;

	itest_start("{" API_KEYS "," NAMESPACES
		    ",\"limits\":{\"max_http_body\":1024,\"max_data_size\":512}}");
	s = itest_peer("s", NULL, NULL);
	sub(s, "chat:big");
	/* Exactly max_http_body: accepted. One byte more: refused. */
	body = sized_body(1024, 100);
	call(&r, "POST", "/api/v1/channels/chat:big/messages", KEY, body);
	expect_ok(&r, 201, "a body of exactly max_http_body");
	cr_expect_eq(json_int(r.json, "offset"), 1, "%s", r.body);
	http_resp_fini(&r);
	free(body);
	body = sized_body(1025, 100);
	call(&r, "POST", "/api/v1/channels/chat:big/messages", KEY, body);
	expect_error(&r, 413, "too_large", "a body of max_http_body + 1");
	http_resp_fini(&r);
	free(body);
	body = sized_body(4000, 100);
	call(&r, "POST", "/api/v1/publish", KEY, body);
	expect_error(&r, 413, "too_large", "a multi-publish body of 4000 bytes");
	http_resp_fini(&r);
	free(body);
	body = sized_body(65536, 100);
	call(&r, "POST", "/api/v1/channels/chat:big/messages", KEY, body);
	expect_error(&r, 413, "too_large", "a body of 64 KiB");
	http_resp_fini(&r);
	free(body);

	/* data of exactly max_data_size (as written): accepted; one byte more: refused. */
	body = sized_body(600, 512);
	call(&r, "POST", "/api/v1/channels/chat:big/messages", KEY, body);
	expect_ok(&r, 201, "data of exactly max_data_size");
	cr_expect_eq(json_int(r.json, "offset"), 2, "%s", r.body);
	http_resp_fini(&r);
	free(body);
	body = sized_body(600, 513);
	call(&r, "POST", "/api/v1/channels/chat:big/messages", KEY, body);
	expect_error(&r, 413, "too_large", "data of max_data_size + 1");
	http_resp_fini(&r);
	free(body);
	/* Only the two accepted ones were delivered, and the server still serves. */
	free(expect_message(s, "chat:big", 1, NULL));
	free(expect_message(s, "chat:big", 2, NULL));
	expect_nothing_before_sentinel(s, "chat:big", "subscriber");
	j = get_json("/api/v1/channels/chat:big");
	cr_expect_eq(json_int(j, "offset"), 3);
	json_decref(j);
	ws_client_free(s);
	/* The same data limit on the multi-channel route: the whole request is 413. */
	{
		char data[600];

		memset(data, 'y', 511);
		data[511] = '\0';
		callf(&r, "POST", "/api/v1/publish", KEY,
		      "{\"channels\":[\"chat:big\"],\"data\":\"%s\"}", data);
		expect_error(&r, 413, "too_large", "multi-publish data of max_data_size + 1");
		http_resp_fini(&r);
	}
	j = get_json("/api/v1/channels/chat:big");
	cr_expect_eq(json_int(j, "offset"), 3, "data over max_data_size was published");
	json_decref(j);
	itest_finish();
}

Test(http_errors, a_body_that_is_not_application_json_is_415)
{
	struct http_req req = { .method = "POST",
				.key = KEY,
				.path = "/api/v1/channels/chat:x/messages",
				.body = "{\"data\":1}" };
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	req.content_type = "text/plain";
	send_req(&r, &req);
	expect_error(&r, 415, "unsupported_media_type", "text/plain");
	http_resp_fini(&r);
	req.content_type = "application/x-www-form-urlencoded";
	send_req(&r, &req);
	expect_error(&r, 415, "unsupported_media_type", "form");
	http_resp_fini(&r);
	req.content_type = "";
	send_req(&r, &req);
	expect_error(&r, 415, "unsupported_media_type", "no Content-Type");
	http_resp_fini(&r);
	req.content_type = "application/jsonx";
	send_req(&r, &req);
	expect_error(&r, 415, "unsupported_media_type", "application/jsonx");
	http_resp_fini(&r);
	req.path = "/api/v1/publish";
	req.body = "{\"channels\":[\"chat:x\"],\"data\":1}";
	req.content_type = "text/json";
	send_req(&r, &req);
	expect_error(&r, 415, "unsupported_media_type", "multi-publish as text/json");
	http_resp_fini(&r);
	j = get_json("/api/v1/channels/chat:x/messages");
	cr_expect_eq(json_int(j, "offset"), 0, "a refused publish was published");
	json_decref(j);

	/* application/json with a charset parameter is application/json. */
	req.path = "/api/v1/channels/chat:x/messages";
	req.body = "{\"data\":1}";
	req.content_type = "application/json; charset=utf-8";
	send_req(&r, &req);
	expect_ok(&r, 201, "application/json; charset=utf-8");
	http_resp_fini(&r);
	itest_finish();
}

Test(http_errors, malformed_requests_are_400)
{
	static const struct {
		const char *method, *path, *body, *what;
	} cases[] = {
		{ "POST", "/api/v1/channels/chat:x/messages", "{\"data\":", "truncated JSON" },
		{ "POST", "/api/v1/channels/chat:x/messages", "not json", "not JSON" },
		{ "POST", "/api/v1/channels/chat:x/messages", "{}", "no data" },
		{ "POST", "/api/v1/channels/chat:x/messages", "{\"dat\":1}", "no data (typo)" },
		{ "POST", "/api/v1/channels/chat:x/messages", "[1]", "not an object" },
		{ "POST", "/api/v1/channels/chat:x/messages", "", "an empty body" },
		{ "POST", "/api/v1/channels/chat:x/messages", "{\"data\":1} x",
		  "trailing garbage" },
		{ "POST", "/api/v1/channels/bad%20name/messages", "{\"data\":1}",
		  "a space in the channel" },
		{ "GET", "/api/v1/channels/bad%20name", NULL, "channel info of an invalid name" },
		{ "GET", "/api/v1/channels/bad%20name/messages", NULL,
		  "history of an invalid name" },
		{ "GET", "/api/v1/channels/bad%20name/presence", NULL,
		  "presence of an invalid name" },
		{ "DELETE", "/api/v1/channels/bad%20name/messages", NULL,
		  "drop of an invalid name" },
		{ "GET", "/api/v1/channels/chat:x/messages?limit=abc", NULL, "limit=abc" },
		{ "GET", "/api/v1/channels/chat:x/messages?limit=-1", NULL, "limit=-1" },
		{ "GET", "/api/v1/channels/chat:x/messages?limit=1.5", NULL, "limit=1.5" },
		{ "GET", "/api/v1/channels/chat:x/messages?limit=", NULL, "limit empty" },
		{ "GET", "/api/v1/channels/chat:x/messages?since_offset=x&epoch=e", NULL,
		  "since_offset=x" },
		{ "GET", "/api/v1/channels/chat:x/messages?since_offset=3", NULL,
		  "since_offset without epoch" },
		{ "POST", "/api/v1/publish", "{\"data\":1}", "multi-publish without channels" },
		{ "POST", "/api/v1/publish", "{\"channels\":\"chat:x\",\"data\":1}",
		  "channels not a list" },
		{ "POST", "/api/v1/publish", "{\"channels\":[1],\"data\":1}",
		  "a channel not a string" },
		{ "POST", "/api/v1/publish", "{\"channels\":[\"chat:x\"]}",
		  "multi-publish without data" },
		{ "POST", "/api/v1/users/alice/unsubscribe", "{}", "unsubscribe without channel" },
		{ "POST", "/api/v1/users/alice/unsubscribe", "{\"channel\":7}",
		  "channel not a string" },
		{ "POST", "/api/v1/users/alice/unsubscribe", "{\"channel\":\"bad name\"}",
		  "unsubscribe from an invalid name" },
	};
	struct http_resp r;
	char path[400], name[300], body[16384];
	json_t *j;
	size_t n;

	itest_start(CONFIG);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_req req = { .method = cases[i].method,
					.path = cases[i].path,
					.key = KEY,
					.body = cases[i].body };

		send_req(&r, &req);
		expect_error(&r, 400, "bad_request", cases[i].what);
		http_resp_fini(&r);
	}
	/* A name of 256 bytes is invalid; 255 is fine. */
	memset(name, 'a', 256);
	name[256] = '\0';
	snprintf(path, sizeof(path), "/api/v1/channels/%s/messages", name);
	call(&r, "POST", path, KEY, "{\"data\":1}");
	expect_error(&r, 400, "bad_request", "a channel of 256 bytes");
	http_resp_fini(&r);
	name[255] = '\0';
	cr_expect_eq(publish_http(name, "1", NULL), 1, "a channel of 255 bytes");

	/* More than 100 channels in one publish. */
	n = (size_t)snprintf(body, sizeof(body), "{\"data\":1,\"channels\":[");
	for (int i = 0; i < 101; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"chat:c%d\"", i ? "," : "",
				      i);
	snprintf(body + n, sizeof(body) - n, "]}");
	call(&r, "POST", "/api/v1/publish", KEY, body);
	expect_error(&r, 400, "bad_request", "101 channels");
	http_resp_fini(&r);
	j = get_json("/api/v1/channels/chat:c0/messages");
	cr_expect_eq(json_int(j, "offset"), 0, "a refused multi-publish published");
	json_decref(j);
	/* 100 is the most, and fine. */
	n = (size_t)snprintf(body, sizeof(body), "{\"data\":1,\"channels\":[");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"chat:c%d\"", i ? "," : "",
				      i);
	snprintf(body + n, sizeof(body) - n, "]}");
	call(&r, "POST", "/api/v1/publish", KEY, body);
	expect_ok(&r, 200, "100 channels");
	cr_expect_eq(json_array_size(json_object_get(r.json, "results")), 100);
	http_resp_fini(&r);
	/* Nothing above was published to chat:x. */
	j = get_json("/api/v1/channels/chat:x/messages");
	cr_expect_eq(json_int(j, "offset"), 0, "a refused publish was published");
	json_decref(j);
	itest_finish();
}

/* ---- quota ---- */

/* The chat-only key: a burst of 3, then 429 with Retry-After; one more request per
 * second after that. */
Test(http_errors, a_key_past_its_quota_is_429_until_the_bucket_refills)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	int64_t t429, waited;
	struct http_resp r;
	char *ra;
	long retry;

	itest_start(CONFIG);
	for (int i = 0; i < 3; i++) {
		call(&r, "GET", "/api/v1/channels/chat:q", CHAT_KEY, NULL);
		expect_ok(&r, 200, "within the burst");
		http_resp_fini(&r);
	}
	call(&r, "GET", "/api/v1/channels/chat:q", CHAT_KEY, NULL);
	t429 = mono_ms();
	expect_error(&r, 429, "rate_limited", "past the burst");
	ra = http_resp_header(&r, "Retry-After");
	cr_assert_not_null(ra, "429 without Retry-After");
	retry = strtol(ra, NULL, 10);
	cr_expect(retry >= 1 && retry <= 2, "Retry-After: %s, 60/min refills one per second", ra);
	free(ra);
	http_resp_fini(&r);
	/* A publish is refused too and has no effect. */
	call(&r, "POST", "/api/v1/channels/chat:q/messages", CHAT_KEY, "{\"data\":1}");
	expect_error(&r, 429, "rate_limited", "a publish past the burst");
	http_resp_fini(&r);
	/* Other keys have their own bucket. */
	call(&r, "GET", "/api/v1/channels/chat:q", KEY, NULL);
	expect_ok(&r, 200, "the backend key meanwhile");
	cr_expect_eq(json_int(r.json, "offset"), 0, "the refused publish was published");
	http_resp_fini(&r);

	/* Poll until the refill, with a deadline. */
	for (;;) {
		nanosleep(&tick, NULL);
		call(&r, "GET", "/api/v1/channels/chat:q", CHAT_KEY, NULL);
		waited = mono_ms() - t429;
		if (r.status != 429)
			break;
		expect_error(&r, 429, "rate_limited", "before the refill");
		http_resp_fini(&r);
		cr_assert_lt(waited, 4000, "still 429 %lld ms later (one token per second)",
			     (long long)waited);
	}
	expect_ok(&r, 200, "after the refill");
	http_resp_fini(&r);
	cr_expect_geq(waited, 500, "refilled after %lld ms, faster than one per second",
		      (long long)waited);
	/* One token came back, not the whole burst. */
	call(&r, "GET", "/api/v1/channels/chat:q", CHAT_KEY, NULL);
	expect_error(&r, 429, "rate_limited", "right after the refill");
	http_resp_fini(&r);
	itest_finish();
}

/* ---- bodies in pieces ---- */

/* A body with Content-Length sent one byte per TCP write (with a pause between them) is
 * reassembled; so is one in small pieces to the multi-publish route. */
Test(http_api, a_body_arriving_one_byte_at_a_time_is_handled)
{
	static const char raw[] = "{ \"text\" : \"sent one byte at a time\", \"n\" : [1, 2.50, 3],"
				  " \"s\":\"caf\\u00e9\" }";
	struct http_req req = { .method = "POST",
				.key = KEY,
				.mode = HTTP_BODY_TRICKLE,
				.trickle_bytes = 1,
				.trickle_delay_us = 2000,
				.timeout_ms = 10000 };
	struct ws_client *s;
	struct http_resp r;
	char body[512];

	itest_start(CONFIG);
	s = itest_peer("s", NULL, NULL);
	sub(s, "chat:slow");
	snprintf(body, sizeof(body), "{\"data\":%s}", raw);
	req.path = "/api/v1/channels/chat:slow/messages";
	req.body = body;
	send_req(&r, &req);
	expect_ok(&r, 201, "a body in 1-byte pieces");
	cr_expect_eq(json_int(r.json, "offset"), 1, "%s", r.body);
	cr_expect_str_eq(json_str(r.json, "channel"), "chat:slow", "%s", r.body);
	http_resp_fini(&r);
	expect_server_message(s, "chat:slow", 1, raw);

	snprintf(body, sizeof(body), "{\"channels\":[\"chat:slow\",\"chat:other\"],\"data\":%s}",
		 raw);
	req.path = "/api/v1/publish";
	req.trickle_bytes = 3;
	req.trickle_delay_us = 1000;
	send_req(&r, &req);
	expect_ok(&r, 200, "a multi-publish body in 3-byte pieces");
	cr_expect_eq(json_int(json_array_get(json_object_get(r.json, "results"), 0), "offset"), 2,
		     "%s", r.body);
	http_resp_fini(&r);
	expect_server_message(s, "chat:slow", 2, raw);
	ws_client_free(s);
	itest_finish();
}

/* ---- paths ---- */

/* Names in paths are URL-decoded: a user name with a '/' (any string is a user name) is
 * reachable as %2F, and a channel name with one is invalid (400), not another route. */
Test(http_api, an_encoded_slash_in_a_path_name_is_part_of_the_name)
{
	struct ws_client *t, *t2;
	struct http_resp r;

	itest_start(CONFIG);
	t = itest_peer("team/a", NULL, NULL);
	t2 = itest_peer("team/a", NULL, NULL);
	sub(t, "chat:s");
	call(&r, "POST", "/api/v1/channels/bad%2Fname/messages", KEY, "{\"data\":1}");
	expect_error(&r, 400, "bad_request", "a channel name with an encoded slash");
	http_resp_fini(&r);
	call(&r, "POST", "/api/v1/users/team%2Fa/unsubscribe", KEY, "{\"channel\":\"chat:s\"}");
	expect_ok(&r, 200, "unsubscribe user team/a");
	cr_expect_eq(json_int(r.json, "unsubscribed"), 1, "%s", r.body);
	http_resp_fini(&r);
	call(&r, "DELETE", "/api/v1/users/team%2Fa", KEY, NULL);
	expect_ok(&r, 200, "disconnect user team/a");
	cr_expect_eq(json_int(r.json, "disconnected"), 2, "%s", r.body);
	http_resp_fini(&r);
	itest_expect_close(t, 4003, "disconnected by the server", "team/a");
	itest_expect_close(t2, 4003, "disconnected by the server", "team/a");
	ws_client_free(t);
	ws_client_free(t2);
	itest_finish();
}

/* The path is normalised before routing ("//" becomes "/"), and names are decoded after:
 * an encoded slash stays in the name. */
Test(http_api, the_path_is_normalised_before_routing)
{
	struct http_resp r;
	json_t *j;

	itest_start(CONFIG);
	cr_assert_eq(publish_http("chat:norm", "1", NULL), 1);
	j = get_json("/api/v1//channels//chat:norm");
	cr_expect_str_eq(json_str(j, "channel"), "chat:norm");
	cr_expect_eq(json_int(j, "offset"), 1);
	json_decref(j);
	j = get_json("/api/v1/channels//messages");
	cr_expect_str_eq(json_str(j, "channel"), "messages",
			 "// is /: this is the channel \"messages\"");
	json_decref(j);
	/* An encoded slash stays in the name, which is then invalid on every channel route. */
	call(&r, "GET", "/api/v1/channels/chat%2Fnorm/presence", KEY, NULL);
	expect_error(&r, 400, "bad_request", "GET /api/v1/channels/chat%2Fnorm/presence");
	http_resp_fini(&r);
	call(&r, "DELETE", "/api/v1/channels/chat%2Fnorm/messages", KEY, NULL);
	expect_error(&r, 400, "bad_request", "DELETE /api/v1/channels/chat%2Fnorm/messages");
	http_resp_fini(&r);
	call(&r, "GET", "/api/v1/channels/chat%2Fnorm", KEY, NULL);
	expect_error(&r, 400, "bad_request", "GET /api/v1/channels/chat%2Fnorm");
	http_resp_fini(&r);
	itest_finish();
}

/* ---- HTTP/1.1 framing ---- */

static char *
raw_post(const char *path, const char *key, const char *body)
{
	char *req;

	cr_assert_geq(asprintf(&req,
			       "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       path, key, strlen(body), body),
		      0);
	return req;
}

/* Requests pipelined on one connection (sent in one write): GETs are answered in order
 * on a connection kept alive; the response to a POST closes the connection, so what was
 * pipelined after it is never taken for a request (docs/http-api.md, end of "Errors").
 * Either way the server keeps serving others and stops cleanly. */
Test(http_api, pipelined_requests_get_or_after_a_post)
{
	static const char get2[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
				   "GET /api/v1/channels/chat:pipe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				   "Authorization: Bearer " KEY "\r\n\r\n";
	struct http_raw_result x;
	struct http_resp r;
	char *a, *b, *both;
	json_t *j;

	itest_start(CONFIG);
	/* Two GETs: both answered, in order. */
	cr_assert_eq(http_raw(itest_port(), get2, strlen(get2), 2, 3000, &x), 0, "%s", x.error);
	cr_assert_eq(x.count, 2, "%d answers to two pipelined GETs (closed: %d)", x.count,
		     x.closed);
	cr_expect_eq(x.resp[0].status, 200, "%s", x.resp[0].head);
	cr_expect_str_eq(json_str(x.resp[0].json, "status"), "ok", "%s", x.resp[0].body);
	cr_expect_eq(x.resp[1].status, 200, "%s", x.resp[1].head);
	cr_expect_str_eq(json_str(x.resp[1].json, "channel"), "chat:pipe", "%s", x.resp[1].body);
	http_raw_fini(&x);

	a = raw_post("/api/v1/channels/chat:pipe/messages", KEY, "{\"data\":\"one\"}");
	b = raw_post("/api/v1/channels/chat:pipe/messages", KEY, "{\"data\":\"two\"}");
	/* A POST, then a GET: the POST is answered and the connection closes. */
	cr_assert_geq(asprintf(&both, "%sGET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", a), 0);
	cr_assert_eq(http_raw(itest_port(), both, strlen(both), 2, 3000, &x), 0, "%s", x.error);
	free(both);
	cr_assert_geq(x.count, 1, "no answer to a POST followed by a pipelined GET");
	cr_expect_eq(x.resp[0].status, 201, "%s", x.resp[0].body);
	cr_expect_eq(json_int(x.resp[0].json, "offset"), 1, "%s", x.resp[0].body);
	cr_expect_eq(x.count, 1, "the GET pipelined after a POST was answered: %s",
		     x.count > 1 ? x.resp[1].head : "");
	cr_expect(x.closed, "the connection stayed open after the response to a POST");
	http_raw_fini(&x);

	/* Two POSTs: only the first is run. */
	cr_assert_geq(asprintf(&both, "%s%s", a, b), 0);
	cr_assert_eq(http_raw(itest_port(), both, strlen(both), 2, 3000, &x), 0, "%s", x.error);
	free(both);
	cr_assert_geq(x.count, 1, "no answer to two pipelined POSTs");
	cr_expect_eq(x.resp[0].status, 201, "%s", x.resp[0].body);
	cr_expect_eq(json_int(x.resp[0].json, "offset"), 2, "%s", x.resp[0].body);
	cr_expect_eq(x.count, 1, "the POST pipelined after a POST was answered: %s%s",
		     x.count > 1 ? x.resp[1].head : "", x.count > 1 ? x.resp[1].body : "");
	cr_expect(x.closed, "the connection stayed open after the response to a POST");
	http_raw_fini(&x);
	free(a);
	free(b);

	/* The server still serves (bounded: curl's own deadline), and ran the first only. */
	http_call(itest_port(), "GET", "/api/v1/channels/chat:pipe/messages", KEY, NULL, &r);
	cr_assert_eq(r.status, 200, "the server stopped answering after pipelined POSTs: %s",
		     r.error);
	j = r.json;
	cr_expect_eq(json_int(j, "offset"), 2, "a request pipelined after a POST was run: %s",
		     r.body);
	http_resp_fini(&r);
	itest_finish();
}

/* A body the server refuses to frame (chunked, or chunked and Content-Length at once)
 * gets 411 and nothing else: the rest of that body must not be read as another request
 * (it would be answered, or worse, executed). */
Test(http_errors, the_rest_of_a_refused_chunked_body_is_not_a_request)
{
	static const char *const reqs[] = {
		"POST /api/v1/channels/chat:x/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Authorization: Bearer " KEY "\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\n\r\n"
		"a\r\n{\"data\":1}\r\n0\r\n\r\n",
		"POST /api/v1/channels/chat:x/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Authorization: Bearer " KEY "\r\nContent-Type: application/json\r\n"
		"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
		"a\r\n{\"data\":1}\r\n0\r\n\r\n",
		/* A smuggled request inside the chunked body. */
		"POST /api/v1/channels/chat:x/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Authorization: Bearer " KEY "\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\n\r\n"
		"0\r\n\r\n"
		"POST /api/v1/channels/chat:x/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Authorization: Bearer " KEY "\r\nContent-Type: application/json\r\n"
		"Content-Length: 10\r\n\r\n{\"data\":1}",
		NULL
	};
	struct http_raw_result x;
	json_t *j;

	itest_start(CONFIG);
	for (size_t i = 0; reqs[i] != NULL; i++) {
		cr_assert_eq(http_raw(itest_port(), reqs[i], strlen(reqs[i]), 2, 1000, &x), 0, "%s",
			     x.error);
		cr_assert_geq(x.count, 1, "request %zu: no answer", i);
		cr_expect_eq(x.resp[0].status, 411, "request %zu: %s", i, x.resp[0].head);
		cr_expect_str_eq(json_str(json_object_get(x.resp[0].json, "error"), "code"),
				 "length_required", "request %zu: %s", i, x.resp[0].body);
		cr_expect_eq(x.count, 1,
			     "request %zu: the chunked body was read as a request, "
			     "answered %ld: %s%s",
			     i, x.count > 1 ? x.resp[1].status : 0L,
			     x.count > 1 ? x.resp[1].head : "", x.count > 1 ? x.resp[1].body : "");
		http_raw_fini(&x);
	}
	j = get_json("/api/v1/channels/chat:x/messages");
	cr_expect_eq(json_int(j, "offset"), 0, "a request inside a refused chunked body was run");
	json_decref(j);
	itest_finish();
}

/* A POST with neither Content-Length nor Transfer-Encoding: 411. */
Test(http_errors, a_post_without_any_length_is_411)
{
	static const char req[] =
		"POST /api/v1/channels/chat:x/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Authorization: Bearer " KEY "\r\nContent-Type: application/json\r\n\r\n";
	struct http_raw_result x;

	itest_start(CONFIG);
	cr_assert_eq(http_raw(itest_port(), req, strlen(req), 1, 3000, &x), 0, "%s", x.error);
	cr_assert_eq(x.count, 1, "no answer (closed: %d)", x.closed);
	cr_expect_eq(x.resp[0].status, 411, "%s", x.resp[0].head);
	cr_expect_str_eq(json_str(json_object_get(x.resp[0].json, "error"), "code"),
			 "length_required", "%s", x.resp[0].body);
	http_raw_fini(&x);
	itest_finish();
}
