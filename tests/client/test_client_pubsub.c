/* test_client_pubsub.c: the client library (client-demo/lib) against the real server:
 * connect, subscribe, publish with its ack, messages byte for byte, history, presence
 * with join/leave, unsubscribe, refresh, and error replies surfacing as codes.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "itest.h"
#include "token.h"

#define SECRET "client-test-secret-0123456789abcdef"
#define CONFIG                                                                                     \
	"{\"namespaces\":{"                                                                        \
	"\"chat\":{\"publish\":\"clients\",\"presence\":true,\"join_leave\":true,"                 \
	"\"history_size\":100},"                                                                   \
	"\"ticks\":{\"publish\":\"none\"},"                                                        \
	"\"priv\":{\"private\":true}},"                                                            \
	"\"auth\":{\"jwt\":{\"hmac_secret\":\"" SECRET "\",\"leeway\":0}}}"

TestSuite(client, .fini = itest_server_down, .timeout = 30);

/* A client of the running server, started and READY once (subscribed to channel when
 * it is not NULL). */
static void
start_client(struct tc *t, const char *user, const char *channel)
{
	struct sbc_config cfg;
	char url[64];

	tc_config(t, &cfg, url, itest_port());
	cfg.user = user;
	tc_new(t, &cfg);
	if (channel != NULL)
		cr_assert_eq(sbc_subscribe(t->c, channel, 0), 0);
	cr_assert_eq(sbc_start(t->c), 0);
	tc_wait_ready(t, 1);
}

static void
close_client(struct tc *t)
{
	cr_assert_eq(sbc_close(t->c), 0);
	tc_wait_state(t, SBC_STATE_CLOSED);
	cr_expect_eq(t->causes[t->nstates - 1], SBC_CAUSE_LOCAL);
	tc_free(t);
}

Test(client, connects_and_closes)
{
	struct tc t;

	itest_start(CONFIG);
	start_client(&t, "alice", NULL);
	cr_expect_eq(t.states[0], SBC_STATE_CONNECTING);
	cr_expect_eq(t.states[1], SBC_STATE_SUBSCRIBING);
	cr_expect_eq(t.states[2], SBC_STATE_READY);
	cr_expect_not_null(sbc_client_id(t.c));
	cr_expect_eq(sbc_connections(t.c), 1);
	cr_expect_str_eq(tc_str(json_array_get(t.replies, 0), "cmd"), "connect");
	close_client(&t);
	itest_finish();
}

Test(client, publish_is_acknowledged_with_its_offset)
{
	static const char *const data[] = { "{\"text\":\"hi\",\"p\":0.1}", "\"two\"", "[3, 0.10]" };
	struct tc t;
	char epoch[SBC_EPOCH_MAX + 1];
	uint64_t pos = 0;

	itest_start(CONFIG);
	start_client(&t, "alice", "chat:a");
	for (int i = 0; i < 3; i++) {
		int64_t id = 0;
		json_t *r;

		cr_assert_eq(sbc_publish(t.c, "chat:a", data[i], strlen(data[i]), &id), 0);
		r = tc_wait_reply(&t, id);
		cr_expect_eq(json_integer_value(json_object_get(r, "error")), 0, "%s",
			     tc_str(r, "raw"));
		cr_expect_str_eq(tc_str(r, "cmd"), "publish");
		cr_expect_eq(json_integer_value(json_object_get(r, "offset")), i + 1, "%s",
			     tc_str(r, "raw"));
		cr_expect_neq(tc_str(r, "epoch")[0], '\0');
	}
	tc_wait_messages(&t, 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *m = json_array_get(t.messages, i);

		cr_expect_eq(tc_int(t.messages, i, "offset"), (json_int_t)i + 1);
		cr_expect_str_eq(tc_str(m, "data"), data[i], "data byte for byte");
		cr_expect_str_eq(tc_str(m, "user"), "alice");
		cr_expect(!json_is_true(json_object_get(m, "duplicate")));
	}
	cr_expect_eq(sbc_position(t.c, "chat:a", &pos, epoch), 0);
	cr_expect_eq(pos, 3);
	close_client(&t);
	itest_finish();
}

Test(client, commands_are_refused_locally_when_not_possible)
{
	struct tc t;
	struct sbc_config cfg;
	char url[64], why[128];

	itest_start(CONFIG);
	tc_config(&t, &cfg, url, itest_port());
	tc_new(&t, &cfg);
	cr_expect_eq(sbc_publish(t.c, "chat:a", "1", 1, NULL), -ENOTCONN, "before connect");
	cr_expect_eq(sbc_subscribe(t.c, "bad channel", 0), -EINVAL);
	cr_expect_eq(sbc_subscribe(t.c, "chat:a", 0), 0);
	cr_expect_eq(sbc_subscribe(t.c, "chat:a", 0), -EEXIST);
	cr_expect_eq(sbc_start(t.c), 0);
	cr_expect_eq(sbc_start(t.c), -EALREADY);
	tc_wait_ready(&t, 1);
	cr_expect_eq(sbc_publish(t.c, "chat:a", "{bad", 4, NULL), -EINVAL, "invalid JSON");
	cr_expect_eq(sbc_publish(t.c, "chat:a", "{\"a\":1,\"a\":2}", 13, NULL), -EINVAL,
		     "duplicate members");
	cr_expect_eq(sbc_history(t.c, "no spaces", 0, 0, NULL, NULL), -EINVAL);
	cr_expect_eq(sbc_url_check("http://x", why, sizeof(why)), -EINVAL);
	cr_expect(strstr(why, "expected ws://") != NULL, "%s", why);
	cr_expect_eq(sbc_url_check("ws://[::1:80/ws", why, sizeof(why)), -EINVAL);
	cr_expect_eq(sbc_url_check("wss://h:99999", why, sizeof(why)), -EINVAL);
	cr_expect_eq(sbc_url_check("wss://example.org:8443/ws?x=1", why, sizeof(why)), 0);
	close_client(&t);
	itest_finish();
}

Test(client, error_replies_come_back_as_codes)
{
	struct tc t;
	int64_t id = 0;
	json_t *r;

	itest_start(CONFIG);
	start_client(&t, "bob", "chat:e");
	/* ticks: publish "none", so the server refuses it. */
	cr_assert_eq(sbc_publish(t.c, "ticks:x", "1", 1, &id), 0);
	r = tc_wait_reply(&t, id);
	cr_expect_eq(json_integer_value(json_object_get(r, "error")), -EPROTO);
	cr_expect_str_eq(tc_str(r, "code"), "forbidden", "%s", tc_str(r, "raw"));
	cr_expect_str_eq(tc_str(r, "cmd"), "publish");
	cr_expect_str_eq(tc_str(r, "channel"), "ticks:x");
	cr_expect_eq(sbc_state(t.c), SBC_STATE_READY, "the connection stays usable");

	/* A subscribe the server refuses (a private namespace without a grant) removes
	 * the channel; the connection goes on. */
	cr_assert_eq(sbc_subscribe(t.c, "priv:x", 0), 0);
	tc_wait_ready(&t, 2);
	r = json_array_get(t.replies, json_array_size(t.replies) - 1);
	cr_expect_str_eq(tc_str(r, "cmd"), "subscribe");
	cr_expect_str_eq(tc_str(r, "code"), "forbidden", "%s", tc_str(r, "raw"));
	cr_expect_eq(sbc_position(t.c, "priv:x", NULL, NULL), -ENOENT);
	cr_expect_eq(sbc_publish(t.c, "chat:e", "1", 1, &id), 0);
	cr_expect_eq(json_integer_value(json_object_get(tc_wait_reply(&t, id), "error")), 0);
	close_client(&t);
	itest_finish();
}

Test(client, a_refused_connect_ends_the_client)
{
	struct tc t;
	struct sbc_config cfg;
	char url[64];

	itest_start(CONFIG);
	tc_config(&t, &cfg, url, itest_port());
	cfg.token = "not.a.token";
	cfg.reconnect = true;
	tc_new(&t, &cfg);
	cr_assert_eq(sbc_start(t.c), 0);
	tc_wait_state(&t, SBC_STATE_CLOSED);
	cr_expect_eq(t.causes[t.nstates - 1], SBC_CAUSE_REFUSED, "%s", t.last_text);
	cr_expect_str_eq(tc_str(json_array_get(t.replies, 0), "code"), "unauthorized");
	cr_expect_eq(t.nretry, 0, "no reconnect after a refusal");
	tc_free(&t);
	itest_finish();
}

Test(client, history_returns_the_retained_messages)
{
	struct tc t;
	int64_t id = 0;
	json_t *r, *frame, *msgs;
	char data[16];

	itest_start(CONFIG);
	start_client(&t, "carol", NULL);
	for (int i = 1; i <= 3; i++) {
		snprintf(data, sizeof(data), "{\"n\":%d}", i);
		cr_assert_eq(sbc_publish(t.c, "chat:h", data, strlen(data), &id), 0);
	}
	tc_wait_reply(&t, id);
	cr_assert_eq(sbc_history(t.c, "chat:h", 2, 0, NULL, &id), 0);
	r = tc_wait_reply(&t, id);
	cr_assert_eq(json_integer_value(json_object_get(r, "error")), 0, "%s", tc_str(r, "raw"));
	cr_expect_eq(json_integer_value(json_object_get(r, "offset")), 3);
	frame = json_loads(tc_str(r, "raw"), 0, NULL);
	msgs = json_object_get(frame, "messages");
	cr_assert_eq(json_array_size(msgs), 2, "%s", tc_str(r, "raw"));
	cr_expect_eq(tc_int(msgs, 0, "offset"), 2);
	cr_expect_eq(tc_int(msgs, 1, "offset"), 3);
	cr_expect(strstr(tc_str(r, "raw"), "\"data\":{\"n\":3}") != NULL, "%s", tc_str(r, "raw"));
	json_decref(frame);

	/* since: only what came after offset 2 of this epoch. */
	cr_assert_eq(sbc_history(t.c, "chat:h", 0, 2, tc_str(r, "epoch"), &id), 0);
	r = tc_wait_reply(&t, id);
	frame = json_loads(tc_str(r, "raw"), 0, NULL);
	cr_expect_eq(json_array_size(json_object_get(frame, "messages")), 1, "%s",
		     tc_str(r, "raw"));
	json_decref(frame);
	close_client(&t);
	itest_finish();
}

static bool
presence_n(struct tc *t, const void *arg)
{
	return json_array_size(t->presence) >= *(const size_t *)arg;
}

/* The last reply is the one to unsubscribe. */
static bool
unsubscribed(struct tc *t, const void *arg)
{
	json_t *r = json_array_get(t->replies, json_array_size(t->replies) - 1);

	(void)arg;
	return strcmp(tc_str(r, "cmd"), "unsubscribe") == 0;
}

Test(client, presence_and_join_leave)
{
	struct tc a, b;
	int64_t id = 0;
	json_t *r, *frame;
	size_t two = 2;

	itest_start(CONFIG);
	start_client(&a, "alice", "chat:p");
	start_client(&b, "bob", "chat:p");
	cr_assert_eq(sbc_presence(a.c, "chat:p", &id), 0);
	r = tc_wait_reply(&a, id);
	frame = json_loads(tc_str(r, "raw"), 0, NULL);
	cr_expect_eq(json_array_size(json_object_get(frame, "members")), 2, "%s", tc_str(r, "raw"));
	json_decref(frame);
	cr_assert_eq(sbc_presence_stats(a.c, "chat:p", &id), 0);
	r = tc_wait_reply(&a, id);
	cr_expect(strstr(tc_str(r, "raw"), "\"clients\":2") != NULL, "%s", tc_str(r, "raw"));
	cr_expect(strstr(tc_str(r, "raw"), "\"users\":2") != NULL, "%s", tc_str(r, "raw"));

	/* bob leaves: alice saw his join, then his leave. */
	cr_assert_eq(sbc_unsubscribe(b.c, "chat:p"), 0);
	cr_assert(tc_wait(&b, unsubscribed, NULL, TC_WAIT_MS), "no unsubscribed reply");
	cr_assert(tc_wait(&a, presence_n, &two, TC_WAIT_MS), "join and leave (%zu)",
		  json_array_size(a.presence));
	cr_expect(json_is_true(json_object_get(json_array_get(a.presence, 0), "join")));
	cr_expect_str_eq(tc_str(json_array_get(a.presence, 0), "user"), "bob");
	cr_expect(json_is_false(json_object_get(json_array_get(a.presence, 1), "join")));
	cr_expect_str_eq(tc_str(json_array_get(b.replies, json_array_size(b.replies) - 1), "cmd"),
			 "unsubscribe");
	cr_expect_eq(sbc_position(b.c, "chat:p", NULL, NULL), -ENOENT, "unsubscribed");
	close_client(&b);
	close_client(&a);
	itest_finish();
}

Test(client, refresh_replaces_the_token)
{
	struct tc t;
	struct sbc_config cfg;
	char url[64];
	char *tok = token_hs256(SECRET, "{\"sub\":\"dora\",\"exp\":%lld}",
				(long long)token_now() + 600);
	char *tok2 = token_hs256(SECRET, "{\"sub\":\"dora\",\"exp\":%lld}",
				 (long long)token_now() + 1200);
	char *other = token_hs256(SECRET, "{\"sub\":\"eve\",\"exp\":%lld}",
				  (long long)token_now() + 1200);
	int64_t id = 0;
	json_t *r;

	itest_start(CONFIG);
	tc_config(&t, &cfg, url, itest_port());
	cfg.token = tok;
	tc_new(&t, &cfg);
	cr_assert_eq(sbc_start(t.c), 0);
	tc_wait_ready(&t, 1);
	cr_assert_eq(sbc_refresh(t.c, other, &id), 0);
	r = tc_wait_reply(&t, id);
	cr_expect_str_eq(tc_str(r, "code"), "forbidden", "another sub: %s", tc_str(r, "raw"));
	cr_expect_str_eq(sbc_token(t.c), tok, "the token stays");
	cr_assert_eq(sbc_refresh(t.c, tok2, &id), 0);
	r = tc_wait_reply(&t, id);
	cr_expect_eq(json_integer_value(json_object_get(r, "error")), 0, "%s", tc_str(r, "raw"));
	cr_expect_str_eq(sbc_token(t.c), tok2);
	close_client(&t);
	free(tok);
	free(tok2);
	free(other);
	itest_finish();
}
