/* test_history.c: offsets, epochs and retained messages (docs/protocol.md: subscribe
 * with recover/rewind, history, publish): the subscribed reply's position, recovery of
 * missed messages with no gap and no duplicate (also while messages are being
 * published), refusals of recovery (wrong epoch, evicted or expired messages), rewind,
 * history with limit and since, history_ttl and limits.history_memory.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest.h"
#include "proto.h"

/* Namespaces without presence (no join/leave frames) and with publish "clients", so a
 * publisher need not be subscribed. */
#define CONFIG                                                                                     \
	"{\"namespaces\":{"                                                                        \
	"\"h\":{\"publish\":\"clients\",\"history_size\":100,\"history_ttl\":3600},"               \
	"\"big\":{\"publish\":\"clients\",\"history_size\":1000},"                                 \
	"\"small\":{\"publish\":\"clients\",\"history_size\":10},"                                 \
	"\"ttl\":{\"publish\":\"clients\",\"history_size\":100,\"history_ttl\":1},"                \
	"\"nohist\":{\"publish\":\"clients\"}}}"

TestSuite(recover, .fini = itest_server_down, .timeout = 60);
TestSuite(rewind, .fini = itest_server_down, .timeout = 30);
TestSuite(history, .fini = itest_server_down, .timeout = 30);

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS
#define WRONG_EPOCH "0000000000000000"

/* A subscribe with extra members (JSON text after the channel, may be ""); returns the
 * reply, asserted to be "subscribed" for channel. */
static json_t *
subscribe_with(struct ws_client *c, const char *channel, const char *extra)
{
	json_t *r = sb_request(c, "\"type\":\"subscribe\",\"channel\":\"%s\"%s%s", channel,
			       extra[0] ? "," : "", extra);
	char *s = r != NULL ? json_dumps(r, JSON_COMPACT) : NULL;

	cr_assert_str_eq(json_str(r, "type"), "subscribed", "subscribe %s {%s}: %s", channel, extra,
			 s);
	cr_expect_str_eq(json_str(r, "channel"), channel);
	cr_expect(json_is_integer(json_object_get(r, "offset")), "no offset: %s", s);
	cr_expect(json_is_string(json_object_get(r, "epoch")), "no epoch: %s", s);
	free(s);
	return r;
}

/* Publishes n messages {"n":first..first+n-1}; returns the last offset. */
static json_int_t
publish_n(struct ws_client *c, const char *channel, int first, int n, char *epoch)
{
	json_int_t off = -1;

	for (int i = first; i < first + n; i++) {
		char data[32];

		snprintf(data, sizeof(data), "{\"n\":%d}", i);
		off = sb_publish(c, channel, data, epoch, epoch != NULL ? 64 : 0);
		cr_assert_geq(off, 1, "publish %d to %s", i, channel);
	}
	return off;
}

/* The next frame of c must be the message of channel at offset off with data {"n":n}. */
static void
expect_message(struct ws_client *c, const char *channel, json_int_t off, int n)
{
	json_t *m = ws_client_recv_json(c, WAIT_MS);
	char *s = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;

	cr_assert_not_null(m, "message %lld of %s missing (close code %d)", (long long)off, channel,
			   c->close_code);
	cr_assert_str_eq(json_str(m, "type"), "message", "expected offset %lld, got %s",
			 (long long)off, s);
	cr_assert_str_eq(json_str(m, "channel"), channel, "%s", s);
	cr_assert_eq(json_int(m, "offset"), off, "expected offset %lld, got %s", (long long)off, s);
	if (n >= 0)
		cr_assert_eq(json_int(json_object_get(m, "data"), "n"), n, "%s", s);
	free(s);
	json_decref(m);
}

/* Nothing else is queued for c: a sentinel published now (by pub) is its next frame.
 * Returns the sentinel's offset. */
static json_int_t
expect_only_live(struct ws_client *c, struct ws_client *pub, const char *channel)
{
	json_int_t off = sb_publish(pub, channel, "{\"n\":-1}", NULL, 0);

	cr_assert_geq(off, 1);
	expect_message(c, channel, off, -1);
	return off;
}

/* A history reply (asserted to be one) for the command body after "type". */
static json_t *
history(struct ws_client *c, const char *channel, const char *extra)
{
	json_t *r = sb_request(c, "\"type\":\"history\",\"channel\":\"%s\"%s%s", channel,
			       extra[0] ? "," : "", extra);
	char *s = r != NULL ? json_dumps(r, JSON_COMPACT) : NULL;

	cr_assert_str_eq(json_str(r, "type"), "history", "history %s {%s}: %s", channel, extra, s);
	cr_expect_str_eq(json_str(r, "channel"), channel);
	cr_assert(json_is_array(json_object_get(r, "messages")), "%s", s);
	cr_expect(json_is_integer(json_object_get(r, "offset")), "%s", s);
	cr_expect(json_is_string(json_object_get(r, "epoch")), "%s", s);
	free(s);
	return r;
}

/* Asserts that the history reply holds exactly offsets first..last, oldest first, each
 * with data {"n":offset+delta} and the documented members only. */
static void
expect_history(const json_t *r, json_int_t first, json_int_t last, int delta)
{
	const json_t *msgs = json_object_get(r, "messages");
	size_t i;
	json_t *m;

	cr_assert_eq((json_int_t)json_array_size(msgs), last >= first ? last - first + 1 : 0,
		     "%zu messages, expected offsets %lld..%lld", json_array_size(msgs),
		     (long long)first, (long long)last);
	json_array_foreach(msgs, i, m)
	{
		cr_assert_eq(json_int(m, "offset"), first + (json_int_t)i, "message %zu", i);
		cr_assert_eq(json_int(json_object_get(m, "data"), "n"),
			     first + (json_int_t)i + delta);
		cr_assert(json_is_object(json_object_get(m, "from")), "message %zu has no from", i);
		cr_assert_null(json_object_get(m, "type"), "history elements are not frames");
		cr_assert_null(json_object_get(m, "channel"), "history elements name no channel");
		cr_assert_eq(json_object_size(m), 3, "offset, data, from");
	}
}

/* ---- position in the subscribed reply ---- */

Test(history, subscribed_reply_carries_the_channel_position)
{
	struct ws_client *a, *pub;
	char epoch[64];
	json_t *r;

	itest_start(CONFIG);
	a = sb_connect(itest_port(), "a");
	pub = sb_connect(itest_port(), "pub");
	cr_assert(a && pub);
	r = subscribe_with(a, "h:pos", "");
	cr_expect_eq(json_int(r, "offset"), 0, "a channel with no message is at offset 0");
	cr_expect_null(json_object_get(r, "recovered"), "recovered is only for recover");
	snprintf(epoch, sizeof(epoch), "%s", json_str(r, "epoch"));
	json_decref(r);
	cr_assert_eq(publish_n(pub, "h:pos", 1, 7, NULL), 7);
	r = subscribe_with(pub, "h:pos", "");
	cr_expect_eq(json_int(r, "offset"), 7, "offset of the last message published");
	cr_expect_str_eq(json_str(r, "epoch"), epoch, "same run of offsets");
	json_decref(r);
	/* A plain subscribe replays nothing: the next frame is live. */
	expect_only_live(pub, pub, "h:pos");
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(history, retained_history_keeps_the_channel_state_without_subscribers)
{
	struct ws_client *c;
	char e1[64], e2[64];
	json_t *r;

	itest_start(CONFIG);
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "h:keep"), 0);
	cr_assert_eq(publish_n(c, "h:keep", 1, 2, e1), 2);
	cr_assert_eq(sb_unsubscribe(c, "h:keep"), 0);
	r = subscribe_with(c, "h:keep", "");
	cr_expect_eq(json_int(r, "offset"), 2, "the history kept the channel's offset");
	cr_expect_str_eq(json_str(r, "epoch"), e1);
	json_decref(r);
	cr_expect_eq(sb_publish(c, "h:keep", "{\"n\":3}", e2, sizeof(e2)), 3);
	cr_expect_str_eq(e2, e1);
	ws_client_free(c);
	itest_finish();
}

/* ---- recover ---- */

/* The documented scenario on the built-in default namespace (history_size 100): a client
 * goes away, misses exactly 100 messages, comes back with recover and gets all of them
 * in order, then live messages with no gap and no duplicate. */
Test(recover, a_client_back_after_100_missed_messages_gets_all_of_them)
{
	struct ws_client *a, *pub;
	char epoch[64], recover[160];
	json_int_t last = 0;
	json_t *r;

	itest_start(NULL);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(sb_subscribe(pub, "news"), 0);
	r = subscribe_with(a, "news", "");
	snprintf(epoch, sizeof(epoch), "%s", json_str(r, "epoch"));
	json_decref(r);
	cr_assert_eq(publish_n(pub, "news", 1, 5, NULL), 5);
	for (int n = 1; n <= 5; n++)
		expect_message(a, "news", n, n);
	last = 5;
	cr_expect_eq(ws_client_close(a, WAIT_MS), 1000);

	cr_assert_eq(publish_n(pub, "news", 6, 100, NULL), 105);
	a = sb_connect(itest_port(), "a");
	cr_assert_not_null(a);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":%lld,\"epoch\":\"%s\"}",
		 (long long)last, epoch);
	r = subscribe_with(a, "news", recover);
	cr_expect_eq(json_is_true(json_object_get(r, "recovered")), true, "recovered must be true");
	cr_expect_eq(json_int(r, "offset"), 105);
	cr_expect_str_eq(json_str(r, "epoch"), epoch);
	json_decref(r);
	/* Strictly the next 100 frames: no join/leave, nothing else. */
	for (int n = 6; n <= 105; n++)
		expect_message(a, "news", n, n);
	cr_assert_eq(publish_n(pub, "news", 106, 3, NULL), 108);
	for (int n = 106; n <= 108; n++)
		expect_message(a, "news", n, n);
	cr_expect_eq(expect_only_live(a, pub, "news"), 109, "a duplicate or an extra frame");
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

/* Recovery is race-free: messages published while the recovering subscribe is handled
 * reach the client exactly once, in order, whether they were missed or live. */
Test(recover, messages_published_during_recovery_arrive_exactly_once)
{
	enum { BEFORE = 50, DURING = 300 };
	struct ws_client *a, *pub;
	char epoch[64];
	json_int_t since;
	json_t *r;
	int acks = 0;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	since = publish_n(pub, "big:race", 0, BEFORE, epoch);
	/* Pipelined publishes; the recovering subscribe goes out in the middle of them. */
	for (int i = 0; i < DURING; i++) {
		cr_assert_eq(
			ws_client_sendf(pub,
					"{\"type\":\"publish\",\"id\":%d,\"channel\":\"big:race\","
					"\"data\":{\"n\":%d}}",
					100000 + i, BEFORE + i),
			0);
		if (i == DURING / 2)
			cr_assert_eq(ws_client_sendf(a,
						     "{\"type\":\"subscribe\",\"id\":1,"
						     "\"channel\":\"big:race\",\"recover\":"
						     "{\"offset\":%lld,\"epoch\":\"%s\"}}",
						     (long long)since, epoch),
				     0);
	}
	while (acks < DURING) {
		r = ws_client_recv_json(pub, WAIT_MS);
		cr_assert_not_null(r, "%d acks only", acks);
		cr_assert_str_eq(json_str(r, "type"), "published");
		acks++;
		json_decref(r);
	}
	r = ws_client_recv_json(a, WAIT_MS);
	cr_assert_str_eq(json_str(r, "type"), "subscribed", "a message came before the reply");
	cr_expect(json_is_true(json_object_get(r, "recovered")));
	cr_expect_geq(json_int(r, "offset"), since);
	json_decref(r);
	for (json_int_t off = since + 1; off <= BEFORE + DURING; off++)
		expect_message(a, "big:race", off, (int)off - 1);
	cr_expect_eq(expect_only_live(a, pub, "big:race"), BEFORE + DURING + 1);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(recover, nothing_missed_is_recovered_with_nothing_replayed)
{
	struct ws_client *a, *pub;
	char epoch[64], recover[160];
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(publish_n(pub, "h:none", 1, 4, epoch), 4);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":4,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "h:none", recover);
	cr_expect(json_is_true(json_object_get(r, "recovered")));
	cr_expect_eq(json_int(r, "offset"), 4);
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "h:none"), 5);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(recover, a_wrong_epoch_is_not_recovered_and_nothing_is_replayed)
{
	struct ws_client *a, *pub;
	char epoch[64];
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(publish_n(pub, "h:epoch", 1, 20, epoch), 20);
	cr_assert_str_neq(epoch, WRONG_EPOCH);
	/* rewind is ignored when recover is given. */
	r = subscribe_with(a, "h:epoch",
			   "\"recover\":{\"offset\":10,\"epoch\":\"" WRONG_EPOCH "\"},"
			   "\"rewind\":5");
	cr_assert(json_is_boolean(json_object_get(r, "recovered")), "recovered missing");
	cr_expect(json_is_false(json_object_get(r, "recovered")));
	cr_expect_eq(json_int(r, "offset"), 20, "the reply tells the current position");
	cr_expect_str_eq(json_str(r, "epoch"), epoch, "the reply tells the current epoch");
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "h:epoch"), 21, "missed messages were replayed");
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(recover, evicted_messages_are_not_recovered)
{
	struct ws_client *a, *pub;
	char epoch[64], recover[160];
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	/* history_size 10: 20 missed messages, the first 10 of them evicted. */
	cr_assert_eq(publish_n(pub, "small:x", 1, 5, epoch), 5);
	cr_assert_eq(publish_n(pub, "small:x", 6, 20, NULL), 25);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":5,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "small:x", recover);
	cr_assert(json_is_boolean(json_object_get(r, "recovered")), "recovered missing");
	cr_expect(json_is_false(json_object_get(r, "recovered")), "a gap was recovered");
	cr_expect_eq(json_int(r, "offset"), 25);
	cr_expect_str_eq(json_str(r, "epoch"), epoch);
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "small:x"), 26, "messages replayed with a gap");
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(recover, exactly_history_size_missed_is_recovered)
{
	struct ws_client *a, *pub;
	char epoch[64], recover[160];
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(publish_n(pub, "small:edge", 1, 3, epoch), 3);
	cr_assert_eq(publish_n(pub, "small:edge", 4, 10, NULL), 13);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":3,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "small:edge", recover);
	cr_expect(json_is_true(json_object_get(r, "recovered")));
	json_decref(r);
	for (int n = 4; n <= 13; n++)
		expect_message(a, "small:edge", n, n);
	cr_expect_eq(expect_only_live(a, pub, "small:edge"), 14);
	/* One more missed than retained is a gap: from 14, 15..25 are 11 messages and only
	 * 10 are retained. */
	cr_assert_eq(sb_unsubscribe(a, "small:edge"), 0);
	cr_assert_eq(publish_n(pub, "small:edge", 15, 11, NULL), 25);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":14,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "small:edge", recover);
	cr_expect(json_is_false(json_object_get(r, "recovered")), "11 missed, 10 retained");
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "small:edge"), 26);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(recover, a_namespace_without_history_recovers_only_when_nothing_was_missed)
{
	struct ws_client *a, *pub;
	char epoch[64], recover[160];
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(sb_subscribe(pub, "nohist:x"), 0); /* keeps the channel's state */
	cr_assert_eq(publish_n(pub, "nohist:x", 1, 3, epoch), 3);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":2,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "nohist:x", recover);
	cr_expect(json_is_false(json_object_get(r, "recovered")), "offset 3 was never retained");
	json_decref(r);
	cr_assert_eq(sb_unsubscribe(a, "nohist:x"), 0);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":3,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "nohist:x", recover);
	cr_expect(json_is_true(json_object_get(r, "recovered")), "nothing was missed");
	json_decref(r);
	/* pub is subscribed too: its own copies wait in its queue. */
	cr_expect_eq(expect_only_live(a, pub, "nohist:x"), 4);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

/* ---- rewind ---- */

Test(rewind, rewind_n_delivers_the_last_n_oldest_first)
{
	struct ws_client *a, *pub;
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(publish_n(pub, "h:tick", 1, 20, NULL), 20);
	r = subscribe_with(a, "h:tick", "\"rewind\":5");
	cr_expect_eq(json_int(r, "offset"), 20);
	cr_expect_null(json_object_get(r, "recovered"), "recovered is only for recover");
	json_decref(r);
	for (int n = 16; n <= 20; n++)
		expect_message(a, "h:tick", n, n);
	cr_expect_eq(expect_only_live(a, pub, "h:tick"), 21);
	/* The dashboard case: the latest tick at once. */
	cr_assert_eq(sb_unsubscribe(a, "h:tick"), 0);
	r = subscribe_with(a, "h:tick", "\"rewind\":1");
	json_decref(r);
	expect_message(a, "h:tick", 21, -1);
	cr_expect_eq(expect_only_live(a, pub, "h:tick"), 22);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(rewind, rewind_is_capped_by_what_is_retained)
{
	struct ws_client *a, *pub;
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	/* More than history_size (10) asked: the 10 retained. */
	cr_assert_eq(publish_n(pub, "small:r", 1, 30, NULL), 30);
	r = subscribe_with(a, "small:r", "\"rewind\":500");
	json_decref(r);
	for (int n = 21; n <= 30; n++)
		expect_message(a, "small:r", n, n);
	cr_expect_eq(expect_only_live(a, pub, "small:r"), 31);
	/* More than published: all there is. */
	cr_assert_eq(publish_n(pub, "h:few", 1, 3, NULL), 3);
	r = subscribe_with(a, "h:few", "\"rewind\":50");
	json_decref(r);
	for (int n = 1; n <= 3; n++)
		expect_message(a, "h:few", n, n);
	cr_expect_eq(expect_only_live(a, pub, "h:few"), 4);
	/* rewind 0 is a plain subscribe. */
	r = subscribe_with(a, "h:tick0", "\"rewind\":0");
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "h:tick0"), 1);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(rewind, rewind_without_history_delivers_nothing)
{
	struct ws_client *a, *pub;
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(sb_subscribe(pub, "nohist:r"), 0);
	cr_assert_eq(publish_n(pub, "nohist:r", 1, 5, NULL), 5);
	r = subscribe_with(a, "nohist:r", "\"rewind\":3");
	cr_expect_eq(json_int(r, "offset"), 5);
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "nohist:r"), 6);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

/* ---- history ---- */

Test(history, history_returns_retained_messages_with_limit_and_since)
{
	struct ws_client *pub, *c;
	char epoch[64], since[160];
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	c = sb_connect(itest_port(), "reader");
	cr_assert(pub && c);
	cr_assert_eq(publish_n(pub, "h:log", 1, 20, epoch), 20);

	/* The reader is not subscribed: history needs only the right to subscribe. */
	r = history(c, "h:log", "");
	cr_expect_eq(json_int(r, "offset"), 20);
	cr_expect_str_eq(json_str(r, "epoch"), epoch);
	expect_history(r, 1, 20, 0);
	json_decref(r);

	r = history(c, "h:log", "\"limit\":5");
	expect_history(r, 16, 20, 0);
	json_decref(r);

	/* limit 0 is all retained; more than history_size is history_size. */
	r = history(c, "h:log", "\"limit\":0");
	expect_history(r, 1, 20, 0);
	json_decref(r);
	r = history(c, "h:log", "\"limit\":4294967295");
	expect_history(r, 1, 20, 0);
	json_decref(r);

	snprintf(since, sizeof(since), "\"since\":{\"offset\":15,\"epoch\":\"%s\"}", epoch);
	r = history(c, "h:log", since);
	expect_history(r, 16, 20, 0);
	cr_expect_eq(json_int(r, "offset"), 20);
	json_decref(r);

	snprintf(since, sizeof(since), "\"since\":{\"offset\":10,\"epoch\":\"%s\"},\"limit\":3",
		 epoch);
	r = history(c, "h:log", since);
	expect_history(r, 18, 20, 0);
	json_decref(r);

	snprintf(since, sizeof(since), "\"since\":{\"offset\":20,\"epoch\":\"%s\"}", epoch);
	r = history(c, "h:log", since);
	expect_history(r, 1, 0, 0);
	json_decref(r);

	/* An offset past the channel's last one: none. */
	snprintf(since, sizeof(since), "\"since\":{\"offset\":25,\"epoch\":\"%s\"}", epoch);
	r = history(c, "h:log", since);
	expect_history(r, 1, 0, 0);
	cr_expect_eq(json_int(r, "offset"), 20);
	json_decref(r);

	snprintf(since, sizeof(since), "\"since\":{\"offset\":0,\"epoch\":\"%s\"}", epoch);
	r = history(c, "h:log", since);
	expect_history(r, 1, 20, 0);
	json_decref(r);

	/* Another epoch: the offsets are void; the latest retained messages come instead and
	 * the reply's epoch says so. */
	r = history(c, "h:log", "\"since\":{\"offset\":15,\"epoch\":\"" WRONG_EPOCH "\"}");
	cr_expect_str_eq(json_str(r, "epoch"), epoch);
	expect_history(r, 1, 20, 0);
	json_decref(r);
	r = history(c, "h:log",
		    "\"since\":{\"offset\":15,\"epoch\":\"" WRONG_EPOCH "\"},\"limit\":4");
	expect_history(r, 17, 20, 0);
	json_decref(r);

	/* history_size caps what is kept: 120 published, the newest 100 retained. */
	cr_assert_eq(publish_n(pub, "h:log", 21, 100, NULL), 120);
	r = history(c, "h:log", "");
	expect_history(r, 21, 120, 0);
	json_decref(r);
	r = history(c, "h:log", "\"limit\":1000");
	expect_history(r, 21, 120, 0);
	cr_expect_null(json_object_get(r, "truncated"), "a reply that fits is not truncated");
	json_decref(r);
	ws_client_free(pub);
	ws_client_free(c);
	itest_finish();
}

Test(history, history_messages_keep_data_and_from_exactly)
{
	static const char data[] = "{ \"p\" : 0.10, \"s\":\"caf\\u00e9\" }";
	struct ws_client *pub, *c;
	char client[64], *text, *want;
	json_t *r, *m;
	size_t len;

	itest_start(CONFIG);
	pub = ws_client_open_ok(itest_port());
	cr_assert_not_null(pub);
	r = ws_client_cmd(pub, "{\"type\":\"connect\",\"id\":1,\"user\":\"pub\"}");
	snprintf(client, sizeof(client), "%s", json_str(r, "client"));
	json_decref(r);
	c = sb_connect(itest_port(), "reader");
	cr_assert_not_null(c);
	cr_assert_eq(sb_publish(pub, "h:exact", data, NULL, 0), 1);
	cr_assert_eq(ws_client_send_text(c,
					 "{\"type\":\"history\",\"id\":7,\"channel\":\"h:exact\"}"),
		     0);
	text = ws_client_recv_text(c, WAIT_MS, &len);
	cr_assert_not_null(text);
	cr_assert_geq(asprintf(&want, "\"data\":%s", data), 0);
	cr_expect_not_null(strstr(text, want), "data re-encoded in %s", text);
	free(want);
	r = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	cr_assert_not_null(r, "invalid JSON: %s", text);
	cr_expect_eq(json_int(r, "id"), 7);
	m = json_array_get(json_object_get(r, "messages"), 0);
	cr_expect_eq(json_int(m, "offset"), 1);
	cr_expect_str_eq(json_str(json_object_get(m, "from"), "client"), client);
	cr_expect_str_eq(json_str(json_object_get(m, "from"), "user"), "pub");
	json_decref(r);
	free(text);
	ws_client_free(pub);
	ws_client_free(c);
	itest_finish();
}

Test(history, a_channel_without_messages_has_an_empty_history)
{
	struct ws_client *c;
	json_t *r;

	itest_start(CONFIG);
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	r = history(c, "h:never", "");
	cr_expect_eq(json_int(r, "offset"), 0);
	cr_expect_str_eq(json_str(r, "epoch"), "", "a channel with no state has epoch \"\"");
	expect_history(r, 1, 0, 0);
	json_decref(r);
	r = history(c, "h:never", "\"limit\":1,\"since\":{\"offset\":3,\"epoch\":\"e\"}");
	expect_history(r, 1, 0, 0);
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

Test(history, history_off_and_malformed_requests_are_refused)
{
	struct ws_client *c;

	itest_start(CONFIG);
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"history\",\"channel\":\"nohist:x\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "invalid_channel",
				     "\"type\":\"history\",\"channel\":\"h x\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "bad_request", "\"type\":\"history\""), 0);
	cr_expect_eq(sb_expect_error(c, "bad_request",
				     "\"type\":\"history\",\"channel\":\"h:x\",\"limit\":-1"),
		     0);
	cr_expect_eq(sb_expect_error(c, "bad_request",
				     "\"type\":\"history\",\"channel\":\"h:x\",\"since\":{"
				     "\"offset\":\"1\",\"epoch\":\"e\"}"),
		     0);
	cr_expect_eq(
		sb_expect_error(c, "bad_request",
				"\"type\":\"subscribe\",\"channel\":\"h:x\",\"recover\":[1,\"e\"]"),
		0);
	cr_expect_eq(sb_expect_error(c, "bad_request",
				     "\"type\":\"subscribe\",\"channel\":\"h:x\",\"rewind\":\"3\""),
		     0);
	ws_client_free(c);
	itest_finish();
}

/* history_ttl 1: retained messages disappear about a second later. Polled, with a
 * deadline of 3 s from the publish; no fixed sleep. */
Test(history, messages_expire_after_history_ttl)
{
	struct timespec tick = { 0, 50 * 1000 * 1000 }, t0, t;
	struct ws_client *pub, *a;
	char e1[64], recover[160];
	size_t left = 3;
	long ms = 0;
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(pub && a);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(publish_n(pub, "ttl:x", 1, 3, e1), 3);
	r = history(a, "ttl:x", "");
	expect_history(r, 1, 3, 0);
	json_decref(r);
	while (left > 0 && ms < 3000) {
		nanosleep(&tick, NULL);
		r = history(a, "ttl:x", "");
		left = json_array_size(json_object_get(r, "messages"));
		json_decref(r);
		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
	}
	cr_assert_eq(left, 0, "%zu messages still retained %ld ms after a 1 s ttl", left, ms);
	cr_expect_geq(ms, 900, "messages expired after %ld ms, before the 1 s ttl", ms);
	/* Expired messages cannot be recovered (and the channel, with neither subscribers nor
	 * history, was dropped: subscribing starts it over). */
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":1,\"epoch\":\"%s\"}", e1);
	r = sb_request(a, "\"type\":\"subscribe\",\"channel\":\"ttl:x\",%s", recover);
	cr_assert_str_eq(json_str(r, "type"), "subscribed");
	cr_expect(json_is_false(json_object_get(r, "recovered")), "expired messages recovered");
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "ttl:x"), 1,
		     "no subscriber and no history: the next publish starts over at 1");
	ws_client_free(pub);
	ws_client_free(a);
	itest_finish();
}

/* A channel with neither subscribers nor retained history is dropped: its next publish
 * starts a new epoch at offset 1. */
Test(history, an_expired_channel_starts_a_new_epoch)
{
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	struct ws_client *pub;
	char e1[64], e2[64];
	json_int_t off = -1;
	json_t *r;

	itest_start(CONFIG);
	pub = sb_connect(itest_port(), "pub");
	cr_assert_not_null(pub);
	cr_assert_eq(publish_n(pub, "ttl:gone", 1, 2, e1), 2);
	for (int i = 0; i < 60; i++) {
		nanosleep(&tick, NULL);
		r = history(pub, "ttl:gone", "");
		off = json_int(r, "offset");
		json_decref(r);
		if (off == 0)
			break;
	}
	cr_assert_eq(off, 0, "the channel's state outlived its history by 3 s");
	r = history(pub, "ttl:gone", "");
	cr_expect_str_eq(json_str(r, "epoch"), "", "no state: epoch \"\"");
	expect_history(r, 1, 0, 0);
	json_decref(r);
	cr_expect_eq(sb_publish(pub, "ttl:gone", "{\"n\":1}", e2, sizeof(e2)), 1);
	cr_expect_str_neq(e1, e2, "a new run of offsets must have a new epoch");
	ws_client_free(pub);
	itest_finish();
}

/* limits.history_memory bounds all retained messages together: past it the oldest
 * messages of the least recently published channel go first, and recovery over an
 * evicted message says recovered:false. */
Test(history, history_memory_evicts_least_recently_published_first)
{
	struct ws_client *pub, *a;
	char epoch[64], recover[160], data[256];
	json_int_t first;
	size_t n;
	json_t *r, *msgs;

	itest_start("{\"limits\":{\"history_memory\":4000},"
		    "\"namespaces\":{\"m\":{\"publish\":\"clients\",\"history_size\":1000}}}");
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(pub && a);
	/* About 200 bytes per message frame: 3 of them in m:old, then 60 in m:new. */
	for (int i = 1; i <= 3; i++) {
		snprintf(data, sizeof(data), "{\"n\":%d,\"pad\":\"%0150d\"}", i, 0);
		cr_assert_eq(sb_publish(pub, "m:old", data, NULL, 0), i);
	}
	r = history(a, "m:old", "");
	expect_history(r, 1, 3, 0);
	json_decref(r);
	for (int i = 1; i <= 60; i++) {
		snprintf(data, sizeof(data), "{\"n\":%d,\"pad\":\"%0150d\"}", i, 0);
		cr_assert_eq(sb_publish(pub, "m:new", data, i == 1 ? epoch : NULL, 64), i);
	}
	r = history(a, "m:old", "");
	cr_expect_eq(json_array_size(json_object_get(r, "messages")), 0,
		     "the least recently published channel keeps its messages");
	json_decref(r);
	r = history(a, "m:new", "");
	msgs = json_object_get(r, "messages");
	n = json_array_size(msgs);
	cr_expect_geq(n, 1, "nothing retained at all");
	cr_expect_lt(n, 60, "all 60 retained: history_memory did not bound anything");
	cr_expect_leq(n * 150, 4000, "%zu messages of over 150 bytes retained in 4000 bytes", n);
	first = 60 - (json_int_t)n + 1;
	expect_history(r, first, 60, 0);
	json_decref(r);
	/* Recovery over the evicted messages is refused, over the retained ones granted. */
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":1,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "m:new", recover);
	cr_expect(json_is_false(json_object_get(r, "recovered")), "evicted messages recovered");
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "m:new"), 61);
	cr_assert_eq(sb_unsubscribe(a, "m:new"), 0);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":60,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "m:new", recover);
	cr_expect(json_is_true(json_object_get(r, "recovered")));
	json_decref(r);
	expect_message(a, "m:new", 61, -1);
	cr_expect_eq(expect_only_live(a, pub, "m:new"), 62);
	ws_client_free(pub);
	ws_client_free(a);
	itest_finish();
}

/* Like every frame, a history reply stays within limits.max_message_size: "truncated"
 * with the newest messages that fit, or with since the oldest after it, so a client can
 * page through everything with since. */
Test(history, a_history_too_big_for_a_frame_is_truncated_and_paged_with_since)
{
	enum { N = 30 };
	struct ws_client *pub, *c;
	char epoch[64], data[256], since[160];
	json_int_t next = 1, got = 0;
	const json_t *msgs;
	json_t *r;
	size_t len, n;
	char *text;
	int pages = 0;

	itest_start("{\"limits\":{\"max_message_size\":2048},"
		    "\"namespaces\":{\"h\":{\"publish\":\"clients\",\"history_size\":100}}}");
	pub = sb_connect(itest_port(), "pub");
	c = sb_connect(itest_port(), "reader");
	cr_assert(pub && c);
	for (int i = 1; i <= N; i++) {
		snprintf(data, sizeof(data), "{\"n\":%d,\"pad\":\"%0200d\"}", i, 0);
		cr_assert_eq(sb_publish(pub, "h:big", data, i == 1 ? epoch : NULL, 64), i);
	}
	/* Without since: the newest that fit. */
	cr_assert_eq(ws_client_send_text(c,
					 "{\"type\":\"history\",\"id\":1,\"channel\":\"h:big\"}"),
		     0);
	text = ws_client_recv_text(c, WAIT_MS, &len);
	cr_assert_not_null(text);
	cr_expect_leq(len, 2048, "a history reply of %zu bytes, over max_message_size", len);
	r = json_loadb(text, len, 0, NULL);
	cr_assert_not_null(r, "%.200s", text);
	free(text);
	cr_expect(json_is_true(json_object_get(r, "truncated")),
		  "30 messages of 300 bytes in 2 KiB");
	n = json_array_size(json_object_get(r, "messages"));
	cr_assert_geq(n, 1, "not even one message fitted");
	cr_assert_lt(n, N);
	expect_history(r, N - (json_int_t)n + 1, N, 0);
	json_decref(r);
	/* With since: the oldest after it; paging from 0 collects every message once. */
	while (next <= N && pages++ < N) {
		snprintf(since, sizeof(since), "\"since\":{\"offset\":%lld,\"epoch\":\"%s\"}",
			 (long long)next - 1, epoch);
		r = history(c, "h:big", since);
		msgs = json_object_get(r, "messages");
		n = json_array_size(msgs);
		cr_assert_geq(n, 1, "an empty page after offset %lld", (long long)next - 1);
		expect_history(r, next, next + (json_int_t)n - 1, 0);
		next += (json_int_t)n;
		got += (json_int_t)n;
		cr_expect_eq(json_is_true(json_object_get(r, "truncated")), next <= N,
			     "truncated must say whether more follow (next %lld)", (long long)next);
		json_decref(r);
	}
	cr_expect_eq(got, N, "paging collected %lld messages", (long long)got);
	cr_expect_gt(pages, 1, "everything fitted in one page: nothing was truncated");
	ws_client_free(pub);
	ws_client_free(c);
	itest_finish();
}

/* A replay never gets the subscriber closed as a slow consumer: what does not fit in the
 * send queue is refused (recover) or cut from the oldest end (rewind). */
Test(recover, a_replay_that_does_not_fit_the_send_queue_is_refused_not_kicked)
{
	struct ws_client *a, *pub;
	char epoch[64], recover[160];
	json_int_t first;
	json_t *r, *m;
	int n = 0;

	itest_start("{\"limits\":{\"send_queue_messages\":16},"
		    "\"namespaces\":{\"h\":{\"publish\":\"clients\",\"history_size\":100}}}");
	pub = sb_connect(itest_port(), "pub");
	a = sb_connect(itest_port(), "a");
	cr_assert(a && pub);
	cr_assert_eq(publish_n(pub, "h:q", 1, 5, epoch), 5);
	cr_assert_eq(publish_n(pub, "h:q", 6, 50, NULL), 55);
	snprintf(recover, sizeof(recover), "\"recover\":{\"offset\":5,\"epoch\":\"%s\"}", epoch);
	r = subscribe_with(a, "h:q", recover);
	cr_expect(json_is_false(json_object_get(r, "recovered")),
		  "50 missed messages recovered through a 16-frame send queue");
	json_decref(r);
	cr_expect_eq(expect_only_live(a, pub, "h:q"), 56,
		     "a partial replay, or the connection closed");
	cr_assert_eq(sb_unsubscribe(a, "h:q"), 0);

	/* rewind: the newest that fit, oldest first, contiguous up to the last. */
	cr_assert_eq(ws_client_send_text(a, "{\"type\":\"subscribe\",\"id\":9,\"channel\":\"h:q\","
					    "\"rewind\":50}"),
		     0);
	r = ws_client_recv_json(a, WAIT_MS);
	cr_assert_str_eq(json_str(r, "type"), "subscribed", "closed with %d", a->close_code);
	json_decref(r);
	first = -1;
	for (;;) {
		m = ws_client_recv_json(a, 300);
		if (m == NULL)
			break;
		cr_assert_str_eq(json_str(m, "type"), "message");
		if (first < 0)
			first = json_int(m, "offset");
		cr_assert_eq(json_int(m, "offset"), first + n, "a gap in the rewind");
		n++;
		json_decref(m);
		if (first + n - 1 == 56)
			break;
	}
	cr_expect_eq(a->close_code, WS_CLOSE_NONE, "the rewind closed the connection with %d",
		     a->close_code);
	cr_expect_geq(n, 1, "nothing rewound");
	cr_expect_lt(n, 16, "%d frames rewound through a 16-frame queue", n);
	cr_expect_eq(first + n - 1, 56, "the rewind must end at the newest message");
	cr_expect_eq(expect_only_live(a, pub, "h:q"), 57);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}
