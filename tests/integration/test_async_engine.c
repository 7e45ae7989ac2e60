/* test_async_engine.c: the real server over an engine that answers late (the fake
 * engine completing its calls at each 1 s tick, tests/support/fake_engine.h), as a
 * networked engine will: the HTTP API answers from completions through the writable
 * callback, a request that goes away before its answer costs nothing, WebSocket
 * commands answer when the engine does, and recovery stays exact. */
#include "fake_engine.h"
#include "http_client.h"
#include "itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEY "sk_async"

static void
start(void)
{
	static const char json[] =
		"{\"api_keys\":[{\"name\":\"b\",\"key\":\"" KEY "\",\"channels\":[\"*\"]}],"
		"\"default_namespace\":{\"publish\":\"clients\",\"presence\":true,"
		"\"join_leave\":false,\"history_size\":50}}";

	cr_assert_eq(server_fixture_start_engine(&itest_server, json, NULL, NULL,
						 fake_engine_new_on_tick),
		     0, "%s", itest_server.error);
}

TestSuite(async_engine, .fini = itest_server_down, .timeout = 60);

static json_int_t
jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

Test(async_engine, the_http_api_answers_from_late_completions)
{
	struct http_resp r;
	json_t *first, *res;

	start();
	cr_assert_eq(http_call(itest_port(), "POST", "/api/v1/channels/a/messages", KEY,
			       "{\"data\":{\"n\":1}}", &r),
		     0, "%s", r.error);
	cr_expect_eq(r.status, 201, "%s", r.body);
	cr_expect_eq(jint(r.json, "offset"), 1);
	cr_expect(strstr(r.head, "onnection: close") != NULL, "%s", r.head);
	http_resp_fini(&r);
	cr_assert_eq(http_call(itest_port(), "POST", "/api/v1/publish", KEY,
			       "{\"channels\":[\"a\",\"bad!\",\"b\",\"a\"],\"data\":2}", &r),
		     0);
	cr_expect_eq(r.status, 200, "%s", r.body);
	res = json_object_get(r.json, "results");
	cr_assert_eq(json_array_size(res), 3, "%s", r.body);
	first = json_array_get(res, 0);
	cr_expect_eq(jint(first, "offset"), 2, "%s", r.body);
	cr_expect_str_eq(json_string_value(
				 json_object_get(json_object_get(json_array_get(res, 1), "error"),
						 "code")),
			 "invalid_channel");
	cr_expect_eq(jint(json_array_get(res, 2), "offset"), 1, "%s", r.body);
	http_resp_fini(&r);
	cr_assert_eq(http_call(itest_port(), "GET", "/api/v1/channels/a", KEY, NULL, &r), 0);
	cr_expect_eq(r.status, 200, "%s", r.body);
	cr_expect_eq(jint(r.json, "offset"), 2, "%s", r.body);
	cr_expect_not_null(json_object_get(r.json, "presence"), "%s", r.body);
	http_resp_fini(&r);
	cr_assert_eq(http_call(itest_port(), "GET", "/api/v1/channels/a/messages?limit=5", KEY,
			       NULL, &r),
		     0);
	cr_expect_eq(r.status, 200, "%s", r.body);
	cr_expect_eq(json_array_size(json_object_get(r.json, "messages")), 2, "%s", r.body);
	http_resp_fini(&r);
	cr_assert_eq(http_call(itest_port(), "GET", "/api/v1/channels/a/presence", KEY, NULL, &r),
		     0);
	cr_expect_eq(r.status, 200, "%s", r.body);
	http_resp_fini(&r);
	cr_assert_eq(http_call(itest_port(), "DELETE", "/api/v1/channels/a/messages", KEY, NULL,
			       &r),
		     0);
	cr_expect_eq(r.status, 200, "%s", r.body);
	cr_expect_eq(jint(r.json, "offset"), 0, "%s", r.body);
	http_resp_fini(&r);
	itest_finish();
}

/* Sends a request and closes the socket 100 ms later: the server has read it and waits
 * for the engine (which answers at its next tick, up to 1 s later). */
static void
send_and_vanish(const char *request)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)itest_port()) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	usleep(100 * 1000);
	close(fd);
}

Test(async_engine, a_request_gone_before_its_answer_costs_nothing)
{
	static const char get[] = "GET /api/v1/channels/a HTTP/1.1\r\nHost: x\r\n"
				  "Authorization: Bearer " KEY "\r\n\r\n";
	static const char post[] = "POST /api/v1/publish HTTP/1.1\r\nHost: x\r\n"
				   "Authorization: Bearer " KEY "\r\n"
				   "Content-Type: application/json\r\nContent-Length: 34\r\n\r\n"
				   "{\"channels\":[\"a\",\"b\"],\"data\":true}";
	struct http_resp r;

	start();
	for (int i = 0; i < 5; i++) {
		send_and_vanish(get);
		send_and_vanish(post);
	}
	usleep(2500 * 1000); /* two ticks: every answer came, to nobody */
	cr_assert_eq(http_call(itest_port(), "GET", "/api/v1/channels/a", KEY, NULL, &r), 0);
	cr_expect_eq(r.status, 200, "%s", r.body);
	cr_expect_eq(jint(r.json, "offset"), 5, "the vanished publishes still happened: %s",
		     r.body);
	http_resp_fini(&r);
	itest_finish();
}

Test(async_engine, websocket_commands_answer_when_the_engine_does)
{
	struct ws_client *a, *b;
	char epoch[32];
	json_t *j;
	json_int_t off;

	start();
	a = sb_connect(itest_port(), "alice");
	b = sb_connect(itest_port(), "bob");
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert_eq(sb_subscribe(a, "room"), 0);
	off = sb_publish(b, "room", "{\"n\":1}", epoch, sizeof(epoch));
	cr_expect_eq(off, 1);
	j = ws_client_recv_json(a, 5000);
	cr_assert_not_null(j);
	cr_expect_str_eq(json_string_value(json_object_get(j, "type")), "message");
	json_decref(j);
	for (int i = 2; i <= 4; i++)
		cr_expect_eq(sb_publish(b, "room", "1", NULL, 0), i);
	/* b recovers from offset 1 while a fourth publish is in flight. */
	cr_assert_eq(ws_client_send_text(b,
					 "{\"type\":\"publish\",\"channel\":\"room\",\"data\":5}"),
		     0);
	j = sb_request(b,
		       "\"type\":\"subscribe\",\"channel\":\"room\",\"recover\":{\"offset\":1,"
		       "\"epoch\":\"%s\"}",
		       epoch);
	cr_assert_not_null(j);
	cr_expect(json_is_true(json_object_get(j, "recovered")), "%s", json_dumps(j, 0));
	json_decref(j);
	for (json_int_t want = 2; want <= 5;) {
		j = ws_client_recv_json(b, 5000);
		cr_assert_not_null(j, "waiting for offset %lld", (long long)want);
		if (strcmp(json_string_value(json_object_get(j, "type")), "message") == 0) {
			cr_expect_eq(jint(j, "offset"), want);
			want++;
		}
		json_decref(j);
	}
	j = sb_request(a, "\"type\":\"presence\",\"channel\":\"room\"");
	cr_assert_not_null(j);
	cr_expect_eq(json_array_size(json_object_get(j, "members")), 2);
	json_decref(j);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}
