/* test_client_reconnect.c: the client library's recovery. A connection the server
 * drops (the HTTP API disconnects the client) is reconnected after a backoff and every
 * channel resubscribed with "recover": the messages published meanwhile (through the
 * HTTP API) arrive once each, in order. A reset frame moves the position to the new
 * epoch. The backoff is bounded, and so is the number of retries when asked.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "http_client.h"
#include "itest.h"

#define KEY "sk_client_test"
#define CONFIG                                                                                     \
	"{\"api_keys\":[{\"name\":\"backend\",\"key\":\"" KEY "\",\"channels\":[\"*\"]}],"         \
	"\"namespaces\":{\"chat\":{\"publish\":\"clients\",\"history_size\":100}}}"

TestSuite(reconnect, .fini = itest_server_down, .timeout = 40);

static void
start_client(struct tc *t, struct sbc_config *cfg, char *url)
{
	tc_config(t, cfg, url, itest_port());
	cfg->user = "sleeper";
	cfg->reconnect = true;
	cfg->backoff_min_ms = 200;
	cfg->backoff_max_ms = 400;
	tc_new(t, cfg);
}

static json_int_t
publish_http(const char *channel, int n)
{
	struct http_resp r;
	char path[128];
	json_int_t off;

	snprintf(path, sizeof(path), "/api/v1/channels/%s/messages", channel);
	cr_assert_eq(http_callf(itest_port(), "POST", path, KEY, &r, "{\"data\":{\"n\":%d}}", n), 0,
		     "%s", r.error);
	cr_assert_eq(r.status, 201, "%s", r.body);
	off = json_integer_value(json_object_get(r.json, "offset"));
	http_resp_fini(&r);
	return off;
}

static void
http_expect(const char *method, const char *path, long status)
{
	struct http_resp r;

	cr_assert_eq(http_call(itest_port(), method, path, KEY, NULL, &r), 0, "%s", r.error);
	cr_assert_eq(r.status, status, "%s %s: %s", method, path, r.body);
	http_resp_fini(&r);
}

static bool
retrying(struct tc *t, const void *arg)
{
	(void)arg;
	return sbc_state(t->c) == SBC_STATE_RETRY_WAIT;
}

Test(reconnect, recovers_every_message_missed_while_disconnected)
{
	struct tc t;
	struct sbc_config cfg;
	char url[64], path[160], epoch[SBC_EPOCH_MAX + 1];
	uint64_t pos = 0;
	json_t *r;

	itest_start(CONFIG);
	start_client(&t, &cfg, url);
	cr_assert_eq(sbc_subscribe(t.c, "chat:rec", 0), 0);
	cr_assert_eq(sbc_subscribe(t.c, "chat:quiet", 0), 0);
	cr_assert_eq(sbc_start(t.c), 0);
	tc_wait_ready(&t, 1);
	cr_assert_eq(publish_http("chat:rec", 0), 1);
	tc_wait_messages(&t, 1);

	/* The backend disconnects the client (4003); while it waits to reconnect (the loop
	 * is not run meanwhile, so it cannot come back early) three messages go out. */
	snprintf(path, sizeof(path), "/api/v1/clients/%s", sbc_client_id(t.c));
	http_expect("DELETE", path, 200);
	cr_assert(tc_wait(&t, retrying, NULL, TC_WAIT_MS), "no reconnect wait (%s)", t.last_text);
	cr_expect_eq(t.causes[t.nstates - 1], SBC_CAUSE_CLOSED);
	cr_expect_eq(t.close_codes[t.nstates - 1], 4003, "%s", t.last_text);
	cr_expect(t.delays[t.nstates - 1] >= 100 && t.delays[t.nstates - 1] <= 200, "delay %u",
		  t.delays[t.nstates - 1]);
	for (int i = 1; i <= 3; i++)
		cr_assert_eq(publish_http("chat:rec", i), i + 1);

	tc_wait_ready(&t, 2);
	tc_wait_messages(&t, 4);
	tc_spin(&t, 200); /* a duplicate would show up now */
	cr_assert_eq(tc_count(t.messages), 4, "each message once");
	for (size_t i = 0; i < 4; i++) {
		char want[16];

		snprintf(want, sizeof(want), "{\"n\":%zu}", i);
		cr_expect_eq(tc_int(t.messages, i, "offset"), (json_int_t)i + 1);
		cr_expect_str_eq(tc_str(json_array_get(t.messages, i), "data"), want);
	}
	/* The subscribed replies of the reconnect: chat:rec recovered 3 messages. */
	for (size_t i = 0; i < tc_count(t.replies); i++) {
		r = json_array_get(t.replies, i);
		if (strcmp(tc_str(r, "cmd"), "subscribe") != 0 ||
		    !json_is_true(json_object_get(r, "recover_sent")) ||
		    strcmp(tc_str(r, "channel"), "chat:rec") != 0)
			continue;
		cr_expect(json_is_true(json_object_get(r, "recovered")), "%s", tc_str(r, "raw"));
		cr_expect_eq(json_integer_value(json_object_get(r, "missed")), 3);
		break;
	}
	cr_expect_eq(sbc_position(t.c, "chat:rec", &pos, epoch), 0);
	cr_expect_eq(pos, 4);
	cr_expect_eq(sbc_connections(t.c), 2);
	cr_assert_eq(sbc_close(t.c), 0);
	tc_wait_state(&t, SBC_STATE_CLOSED);
	tc_free(&t);
	itest_finish();
}

static bool
resets_n(struct tc *t, const void *arg)
{
	return tc_count(t->resets) >= *(const size_t *)arg;
}

Test(reconnect, a_reset_moves_the_position_to_the_new_epoch)
{
	struct tc t;
	struct sbc_config cfg;
	char url[64], path[160], old_epoch[SBC_EPOCH_MAX + 1], epoch[SBC_EPOCH_MAX + 1];
	uint64_t pos = 0;
	size_t one = 1;
	json_t *r;

	itest_start(CONFIG);
	start_client(&t, &cfg, url);
	cr_assert_eq(sbc_subscribe(t.c, "chat:reset", 0), 0);
	cr_assert_eq(sbc_start(t.c), 0);
	tc_wait_ready(&t, 1);
	publish_http("chat:reset", 0);
	publish_http("chat:reset", 1);
	tc_wait_messages(&t, 2);
	cr_assert_eq(sbc_position(t.c, "chat:reset", &pos, old_epoch), 0);
	cr_expect_eq(pos, 2);

	http_expect("DELETE", "/api/v1/channels/chat:reset/messages", 200);
	cr_assert(tc_wait(&t, resets_n, &one, TC_WAIT_MS), "no reset frame");
	r = json_array_get(t.resets, 0);
	cr_expect_eq(tc_int(t.resets, 0, "offset"), 0);
	cr_expect_str_neq(tc_str(r, "epoch"), old_epoch, "a new epoch");
	cr_expect_eq(sbc_position(t.c, "chat:reset", &pos, epoch), 0);
	cr_expect_eq(pos, 0);
	cr_expect_str_eq(epoch, tc_str(r, "epoch"));

	/* The new epoch's offsets 1 and 2 are new messages, not second copies. */
	cr_assert_eq(publish_http("chat:reset", 2), 1);
	cr_assert_eq(publish_http("chat:reset", 3), 2);
	tc_wait_messages(&t, 4);
	cr_expect(!json_is_true(json_object_get(json_array_get(t.messages, 2), "duplicate")));
	cr_expect(!json_is_true(json_object_get(json_array_get(t.messages, 3), "duplicate")));
	cr_expect_eq(tc_int(t.messages, 3, "offset"), 2);

	/* A reconnect recovers from the new epoch. */
	snprintf(path, sizeof(path), "/api/v1/clients/%s", sbc_client_id(t.c));
	http_expect("DELETE", path, 200);
	cr_assert(tc_wait(&t, retrying, NULL, TC_WAIT_MS), "no reconnect wait");
	cr_assert_eq(publish_http("chat:reset", 4), 3);
	tc_wait_ready(&t, 2);
	tc_wait_messages(&t, 5);
	cr_expect_eq(tc_int(t.messages, 4, "offset"), 3);
	cr_expect_str_eq(tc_str(json_array_get(t.messages, 4), "data"), "{\"n\":4}");
	cr_assert_eq(sbc_close(t.c), 0);
	tc_wait_state(&t, SBC_STATE_CLOSED);
	tc_free(&t);
	itest_finish();
}

static bool
closed(struct tc *t, const void *arg)
{
	(void)arg;
	return t->closed;
}

/* The server goes away for good: the waits between attempts double from the minimum
 * and stay within the maximum; after max_retries the client gives up. */
Test(reconnect, backoff_is_bounded_and_retries_end)
{
	struct tc t;
	struct sbc_config cfg;
	char url[64];
	unsigned base = 40, n = 0;

	itest_start(CONFIG);
	tc_config(&t, &cfg, url, itest_port());
	cfg.reconnect = true;
	cfg.backoff_min_ms = 40;
	cfg.backoff_max_ms = 160;
	cfg.max_retries = 6;
	tc_new(&t, &cfg);
	cr_assert_eq(sbc_start(t.c), 0);
	tc_wait_ready(&t, 1);
	cr_assert_eq(server_fixture_stop(&itest_server, 0), 0, "server: %s", itest_server.error);
	cr_assert(tc_wait(&t, closed, NULL, 10000), "the client never gave up (state %s)",
		  sbc_state_name(sbc_state(t.c)));
	for (unsigned i = 0; i < t.nstates; i++) {
		if (t.states[i] != SBC_STATE_RETRY_WAIT)
			continue;
		cr_expect(t.delays[i] >= base / 2 && t.delays[i] <= base,
			  "wait %u: %u ms, expected %u..%u", n, t.delays[i], base / 2, base);
		if (base < 160)
			base *= 2;
		n++;
	}
	cr_expect_eq(n, 6, "6 retries, then the end");
	cr_expect_eq(t.states[t.nstates - 1], SBC_STATE_CLOSED);
	cr_expect_eq(t.causes[t.nstates - 1], SBC_CAUSE_CONNECT, "%s", t.last_text);
	tc_free(&t);
	assert_no_leaks();
}

/* Before the first connect succeeded nothing is retried: an unreachable server ends
 * the client at once. */
Test(reconnect, no_retry_before_the_first_connection)
{
	struct tc t;
	struct sbc_config cfg;
	char url[64];

	itest_start(CONFIG);
	tc_config(&t, &cfg, url, itest_port());
	cr_assert_eq(server_fixture_stop(&itest_server, 0), 0, "server: %s", itest_server.error);
	cfg.reconnect = true;
	tc_new(&t, &cfg);
	cr_assert_eq(sbc_start(t.c), 0);
	cr_assert(tc_wait(&t, closed, NULL, TC_WAIT_MS), "still %s",
		  sbc_state_name(sbc_state(t.c)));
	cr_expect_eq(t.nretry, 0);
	cr_expect_eq(t.causes[t.nstates - 1], SBC_CAUSE_CONNECT, "%s", t.last_text);
	cr_expect(strstr(t.last_text, "cannot connect to ws://127.0.0.1:") != NULL, "%s",
		  t.last_text);
	tc_free(&t);
	assert_no_leaks();
}
