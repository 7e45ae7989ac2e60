/* test_hub.c: the hub with fake sessions: commands, subscriptions, fan-out, limits,
 * queue bounds, connect timeout and shutdown, with no sockets and a caller's clock. */
#include "config.h"
#include "fake_session.h"
#include "frame.h"
#include "hub.h"
#include "leakcheck.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static struct config cfg;
static struct core_config core;
static struct hub_auth auth_used; /* given to every new hub when set (tokens suite) */
static struct hub *hub;
static const uint8_t seed[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* The fan-out tests count frames: their default namespace has no presence events. */
static void
setup(void)
{
	char err[256];

	config_defaults(&cfg);
	cr_assert_eq(config_load_string(&cfg,
					"{\"default_namespace\":{\"publish\":\"subscribers\"}}",
					err, sizeof(err)),
		     0, "%s", err);
	config_to_core(&cfg, &core);
	hub = hub_new(&core, seed);
	cr_assert_not_null(hub);
}

/* The hub copies its configuration: a test that changes cfg makes a new hub (with no
 * session open). */
static void
rehub(void)
{
	hub_free(hub);
	config_to_core(&cfg, &core);
	hub = hub_new(&core, seed);
	cr_assert_not_null(hub);
	if (auth_used.verify != NULL)
		hub_set_auth(hub, &auth_used);
}

/* The built-in defaults: presence, join/leave, 100 messages of history for an hour. */
static void
setup_builtin(void)
{
	config_defaults(&cfg);
	config_to_core(&cfg, &core);
	hub = hub_new(&core, seed);
	cr_assert_not_null(hub);
}

static void
teardown(void)
{
	hub_free(hub);
	config_fini(&cfg);
	auth_used = (struct hub_auth){ 0 };
}

TestSuite(hub, .init = setup, .fini = teardown, .timeout = 10);
TestSuite(regress, .init = setup, .fini = teardown, .timeout = 30);
TestSuite(state, .init = setup_builtin, .fini = teardown, .timeout = 10);

static void
connect_as(struct fake_session *f, const char *user)
{
	fake_open(f, hub, 0);
	fake_send(f, hub, "{\"type\":\"connect\",\"id\":1,\"user\":\"%s\"}", user);
	cr_assert_str_eq(fake_pop_type(f), "connected");
}

static void
subscribe(struct fake_session *f, const char *channel)
{
	fake_send(f, hub, "{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
	cr_assert_str_eq(fake_pop_type(f), "subscribed");
}

static json_t *
pop_expect(struct fake_session *f, const char *type)
{
	json_t *j = fake_pop(f);

	cr_assert_not_null(j, "expected a %s frame, the queue is empty", type);
	cr_assert_str_eq(json_string_value(json_object_get(j, "type")), type);
	return j;
}

Test(hub, connect_assigns_unique_client_ids_and_echoes_the_user)
{
	struct fake_session a, b;
	json_t *ja, *jb;

	fake_open(&a, hub, 0);
	fake_open(&b, hub, 0);
	fake_send(&a, hub, "{\"type\":\"connect\",\"id\":7,\"user\":\"alice\"}");
	fake_send(&b, hub, "{\"type\":\"connect\",\"id\":\"x\"}");
	ja = pop_expect(&a, "connected");
	jb = pop_expect(&b, "connected");
	cr_expect_eq(json_integer_value(json_object_get(ja, "id")), 7);
	cr_expect_str_eq(json_string_value(json_object_get(jb, "id")), "x");
	cr_expect_str_eq(json_string_value(json_object_get(ja, "user")), "alice");
	cr_expect_str_eq(json_string_value(json_object_get(jb, "user")), "");
	cr_expect_str_neq(json_string_value(json_object_get(ja, "client")),
			  json_string_value(json_object_get(jb, "client")));
	cr_expect_str_eq(json_string_value(json_object_get(ja, "server")),
			 "switchboard/" SWITCHBOARD_VERSION);
	cr_expect_eq(a.wakes, 1);
	json_decref(ja);
	json_decref(jb);
	fake_close(&a, hub);
	fake_close(&b, hub);
	cr_expect_eq(hub_session_count(hub), 0);
	assert_no_leaks();
}

Test(hub, commands_before_connect_are_refused_except_ping)
{
	struct fake_session a;
	json_t *j;

	fake_open(&a, hub, 0);
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":3,\"channel\":\"c\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "not_connected");
	cr_expect_eq(json_integer_value(json_object_get(j, "id")), 3);
	json_decref(j);
	fake_send(&a, hub, "{\"type\":\"ping\",\"id\":4}");
	cr_expect_str_eq(fake_pop_type(&a), "pong");
	fake_send(&a, hub, "{\"type\":\"connect\"}");
	cr_expect_str_eq(fake_pop_type(&a), "connected");
	fake_send(&a, hub, "{\"type\":\"connect\",\"id\":5}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "already_connected");
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(hub, publish_reaches_every_subscriber_once_with_increasing_offsets)
{
	struct fake_session subs[5], pub, other;
	uint64_t first = 0;

	for (int i = 0; i < 5; i++) {
		connect_as(&subs[i], "s");
		subscribe(&subs[i], "chat:lobby");
	}
	connect_as(&other, "o");
	subscribe(&other, "chat:other");
	connect_as(&pub, "p");
	subscribe(&pub, "chat:lobby");
	for (int m = 0; m < 10; m++)
		fake_send(&pub, hub,
			  "{\"type\":\"publish\",\"id\":%d,\"channel\":\"chat:lobby\",\"data\":{"
			  "\"n\":%d}}",
			  m, m);
	for (int i = 0; i < 5; i++) {
		for (int m = 0; m < 10; m++) {
			json_t *j = pop_expect(&subs[i], "message");
			uint64_t off = (uint64_t)json_integer_value(json_object_get(j, "offset"));

			if (m == 0 && i == 0)
				first = off;
			cr_expect_eq(off, first + (uint64_t)m);
			cr_expect_eq(json_integer_value(
					     json_object_get(json_object_get(j, "data"), "n")),
				     m);
			cr_expect_str_eq(json_string_value(
						 json_object_get(json_object_get(j, "from"),
								 "user")),
					 "p");
			json_decref(j);
		}
		cr_expect_null(fake_pop(&subs[i]), "subscriber %d got an extra frame", i);
	}
	cr_expect_eq(first, 1);
	/* The publisher is subscribed too: it gets its message and its ack for each. */
	cr_expect_eq(fake_drain(&pub), 20);
	cr_expect_null(fake_pop(&other));
	for (int i = 0; i < 5; i++)
		fake_close(&subs[i], hub);
	fake_close(&pub, hub);
	fake_close(&other, hub);
	cr_expect_eq(hub_channel_count(hub), 0);
	assert_no_leaks();
}

Test(hub, one_frame_is_shared_by_every_subscriber)
{
	struct fake_session a, b;

	connect_as(&a, "a");
	connect_as(&b, "b");
	subscribe(&a, "c");
	subscribe(&b, "c");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":1}");
	cr_expect_eq(session_peek(a.s, 0), session_peek(b.s, 0), "the message was encoded twice");
	fake_close(&a, hub);
	fake_close(&b, hub);
	assert_no_leaks();
}

Test(hub, unsubscribe_stops_delivery_and_unknown_unsubscribe_is_an_error)
{
	struct fake_session a, b;
	json_t *j;

	connect_as(&a, "a");
	connect_as(&b, "b");
	subscribe(&a, "c");
	subscribe(&b, "c");
	fake_send(&a, hub, "{\"type\":\"unsubscribe\",\"id\":1,\"channel\":\"c\"}");
	cr_expect_str_eq(fake_pop_type(&a), "unsubscribed");
	fake_send(&b, hub, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":1}");
	cr_expect_null(fake_pop(&a));
	fake_send(&a, hub, "{\"type\":\"unsubscribe\",\"id\":2,\"channel\":\"c\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "not_subscribed");
	json_decref(j);
	fake_close(&a, hub);
	fake_close(&b, hub);
	assert_no_leaks();
}

Test(hub, double_subscribe_and_channel_limit_are_refused)
{
	struct fake_session a;
	json_t *j;

	cfg.limits.max_channels_per_connection = 2;
	rehub();
	connect_as(&a, "a");
	subscribe(&a, "c1");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"channel\":\"c1\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "already_subscribed");
	json_decref(j);
	subscribe(&a, "c2");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"channel\":\"c3\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "limit_exceeded");
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(hub, namespace_publish_rules_are_enforced)
{
	struct fake_session a;
	char err[256];
	json_t *j;

	cr_assert_eq(config_load_string(&cfg,
					"{\"namespaces\":{\"open\":{\"publish\":\"clients\"},"
					"\"feed\":{\"publish\":\"none\"}}}",
					err, sizeof(err)),
		     0, "%s", err);
	rehub();
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"open:x\",\"data\":1}");
	cr_expect_str_eq(fake_pop_type(&a), "published");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"feed:x\",\"data\":1}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "forbidden");
	cr_expect(strstr(json_string_value(json_object_get(j, "message")), "none") != NULL);
	json_decref(j);
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"lobby\",\"data\":1}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "forbidden");
	cr_expect(strstr(json_string_value(json_object_get(j, "message")), "subscribers") != NULL);
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(hub, unknown_namespace_is_refused_without_a_default)
{
	struct fake_session a;
	char err[256];
	json_t *j;

	cr_assert_eq(config_load_string(&cfg,
					"{\"namespaces\":{\"chat\":{}},\"default_namespace\":null}",
					err, sizeof(err)),
		     0, "%s", err);
	rehub();
	connect_as(&a, "a");
	subscribe(&a, "chat:x");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"channel\":\"game:x\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "forbidden");
	cr_expect(strstr(json_string_value(json_object_get(j, "message")), "game") != NULL);
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(hub, data_over_the_limit_is_too_large)
{
	struct fake_session a;
	json_t *j;

	cfg.limits.max_data_size = 10;
	rehub();
	connect_as(&a, "a");
	subscribe(&a, "c");
	fake_send(&a, hub,
		  "{\"type\":\"publish\",\"id\":1,\"channel\":\"c\",\"data\":\"0123456789\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "too_large");
	json_decref(j);
	fake_send(&a, hub,
		  "{\"type\":\"publish\",\"id\":2,\"channel\":\"c\",\"data\":\"01234567\"}");
	cr_expect_str_eq(fake_pop_type(&a), "message");
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(hub, a_full_queue_kicks_only_that_session_with_4008)
{
	struct fake_session slow, fast, pub;

	cfg.limits.send_queue_messages = 8;
	rehub();
	connect_as(&slow, "slow");
	connect_as(&fast, "fast");
	connect_as(&pub, "pub");
	subscribe(&slow, "c");
	subscribe(&fast, "c");
	subscribe(&pub, "c");
	for (int m = 0; m < 20; m++) {
		fake_send(&pub, hub, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":%d}", m);
		fake_drain(&pub);
		cr_expect_eq(fake_drain(&fast), 1);
	}
	cr_expect_eq(slow.kicks, 1);
	cr_expect_eq(slow.kick_code, PROTO_CLOSE_SLOW_CONSUMER);
	cr_expect_not(slow.kick_flush, "a slow consumer's backlog must not be flushed");
	cr_expect_eq(session_queued(slow.s), 0, "a kicked slow consumer's frames are released");
	cr_expect(session_is_kicked(slow.s));
	cr_expect_eq(fast.kicks, 0);
	fake_close(&slow, hub);
	fake_close(&fast, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

Test(hub, a_session_that_does_not_connect_in_time_is_kicked)
{
	struct fake_session late, ok;

	cfg.ws.connect_timeout = 5;
	rehub();
	fake_open(&late, hub, 1000);
	fake_open(&ok, hub, 1000);
	fake_send(&ok, hub, "{\"type\":\"connect\"}");
	hub_tick(hub, 5999);
	cr_expect_eq(late.kicks, 0);
	hub_tick(hub, 6000);
	cr_expect_eq(late.kicks, 1);
	cr_expect_eq(late.kick_code, PROTO_CLOSE_CONNECT_TIMEOUT);
	cr_expect_eq(ok.kicks, 0);
	fake_close(&late, hub);
	fake_close(&ok, hub);
	assert_no_leaks();
}

Test(hub, shutdown_kicks_everyone_with_1001)
{
	struct fake_session a, b;

	connect_as(&a, "a");
	fake_open(&b, hub, 0);
	hub_shutdown(hub);
	cr_expect_eq(a.kick_code, PROTO_CLOSE_GOING_AWAY);
	cr_expect(a.kick_flush);
	cr_expect_eq(b.kick_code, PROTO_CLOSE_GOING_AWAY);
	fake_close(&a, hub);
	fake_close(&b, hub);
	assert_no_leaks();
}

Test(hub, offsets_are_per_channel)
{
	struct fake_session a;
	json_t *j;

	connect_as(&a, "a");
	subscribe(&a, "x");
	subscribe(&a, "y");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"x\",\"data\":1}");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"x\",\"data\":1}");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"y\",\"data\":1}");
	fake_drain(&a);
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"y\",\"data\":1}");
	j = pop_expect(&a, "message");
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 2);
	json_decref(j);
	j = pop_expect(&a, "published");
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 2);
	cr_expect_eq(strlen(json_string_value(json_object_get(j, "epoch"))), 16);
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(hub, closing_a_subscriber_in_the_middle_keeps_the_index_consistent)
{
	struct fake_session s[4];

	for (int i = 0; i < 4; i++) {
		connect_as(&s[i], "u");
		subscribe(&s[i], "a");
		subscribe(&s[i], "b");
	}
	fake_close(&s[1], hub);
	fake_send(&s[0], hub, "{\"type\":\"unsubscribe\",\"channel\":\"a\"}");
	fake_drain(&s[0]);
	fake_send(&s[3], hub, "{\"type\":\"publish\",\"channel\":\"a\",\"data\":1}");
	fake_send(&s[3], hub, "{\"type\":\"publish\",\"channel\":\"b\",\"data\":2}");
	cr_expect_eq(fake_drain(&s[0]), 1);
	cr_expect_eq(fake_drain(&s[2]), 2);
	cr_expect_eq(fake_drain(&s[3]), 4);
	fake_close(&s[0], hub);
	fake_close(&s[2], hub);
	fake_close(&s[3], hub);
	cr_expect_eq(hub_channel_count(hub), 0);
	assert_no_leaks();
}

/* Random subscribe/unsubscribe/disconnect against a model of who is subscribed where;
 * after every step a publish must reach exactly the model's subscribers. This is the
 * regression test of a broken back index in sub_remove() that sent messages to the
 * wrong sessions and, after a disconnect, to a freed one. */
Test(regress, random_churn_keeps_the_subscription_index_exact)
{
	enum { NS = 6, NC = 5, STEPS = 3000 };
	struct fake_session s[NS];
	bool model[NS][NC] = { { false } };
	unsigned seedv = 12345;

	cfg.limits.send_queue_messages = 1000000;
	rehub();
	for (int k = 0; k < NS; k++)
		connect_as(&s[k], "u");
	for (int step = 0; step < STEPS; step++) {
		int k = (int)((seedv = seedv * 1103515245u + 12345u) >> 16) % NS;
		int c = (int)((seedv = seedv * 1103515245u + 12345u) >> 16) % NC;
		int op = (int)((seedv = seedv * 1103515245u + 12345u) >> 16) % 10;

		if (op == 0) {
			fake_close(&s[k], hub);
			connect_as(&s[k], "u");
			memset(model[k], 0, sizeof(model[k]));
		} else if (!model[k][c]) {
			fake_send(&s[k], hub, "{\"type\":\"subscribe\",\"channel\":\"ch%d\"}", c);
			cr_assert_str_eq(fake_pop_type(&s[k]), "subscribed");
			model[k][c] = true;
		} else {
			fake_send(&s[k], hub, "{\"type\":\"unsubscribe\",\"channel\":\"ch%d\"}", c);
			cr_assert_str_eq(fake_pop_type(&s[k]), "unsubscribed");
			model[k][c] = false;
		}
		c = (int)((seedv = seedv * 1103515245u + 12345u) >> 16) % NC;
		for (int p = 0; p < NS; p++) {
			if (!model[p][c])
				continue;
			fake_send(&s[p], hub,
				  "{\"type\":\"publish\",\"channel\":\"ch%d\",\"data\":%d}", c,
				  step);
			for (int q = 0; q < NS; q++) {
				size_t want = model[q][c] ? 1 : 0;

				if (q == p)
					want++; /* its ack */
				cr_assert_eq(fake_drain(&s[q]), want, "step %d: session %d on ch%d",
					     step, q, c);
			}
			break;
		}
	}
	for (int k = 0; k < NS; k++)
		fake_close(&s[k], hub);
	cr_expect_eq(hub_channel_count(hub), 0);
	assert_no_leaks();
}

/* A crafted frame made the error text quote half a UTF-8 character; encoding the error
 * frame then failed and the server aborted (review finding 1). */
Test(regress, error_text_that_quotes_client_bytes_is_valid_utf8)
{
	static const char *const frames[] = {
		"\"\\\xc3\xa9\"",						  /* "\é" */
		"{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\"}", /* cut at 40 */
		"{\"type\":\"subscribe\",\"channel\":\"\xc3\xa9\"}",
		"\xc3\xa9\xc3",
	};
	struct fake_session a;

	fake_open(&a, hub, 0);
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		json_t *j;

		hub_session_receive(hub, a.s, frames[i], strlen(frames[i]), 0);
		j = pop_expect(&a, "error");
		cr_expect_not_null(json_object_get(j, "message"), "frame %zu", i);
		json_decref(j);
	}
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(regress, utf8_validation_follows_rfc_3629)
{
	cr_expect(proto_utf8_valid("a\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", 10));
	cr_expect_not(proto_utf8_valid("\xc0\xaf", 2), "overlong /");
	cr_expect_not(proto_utf8_valid("\xed\xa0\x80", 3), "surrogate");
	cr_expect_not(proto_utf8_valid("\xf4\x90\x80\x80", 4), "above U+10FFFF");
	cr_expect_not(proto_utf8_valid("\xe2\x9c", 2), "truncated");
	cr_expect_not(proto_utf8_valid("\xff", 1));
}

/* ---- presence, history, recovery (built-in default namespace) ---- */

static const char *
str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

Test(state, join_and_leave_reach_the_others_but_not_the_member_itself)
{
	struct fake_session a, b;
	json_t *j;

	connect_as(&a, "alice");
	connect_as(&b, "bob");
	subscribe(&a, "room");
	subscribe(&b, "room");
	cr_expect_null(fake_pop(&b), "bob got his own join");
	j = pop_expect(&a, "join");
	cr_expect_str_eq(str(json_object_get(j, "member"), "user"), "bob");
	json_decref(j);
	fake_close(&b, hub);
	j = pop_expect(&a, "leave");
	cr_expect_str_eq(str(json_object_get(j, "member"), "user"), "bob");
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(state, presence_lists_members_with_info_and_stats_count_users)
{
	struct fake_session a, b, c;
	json_t *j, *members;

	fake_open(&a, hub, 0);
	fake_send(&a, hub,
		  "{\"type\":\"connect\",\"user\":\"alice\",\"info\":{\"name\":\"Alice\"}}");
	cr_assert_str_eq(fake_pop_type(&a), "connected");
	connect_as(&b, "bob");
	connect_as(&c, "bob");
	subscribe(&a, "room");
	subscribe(&b, "room");
	subscribe(&c, "room");
	fake_drain(&a);
	fake_drain(&b);
	fake_send(&c, hub, "{\"type\":\"presence\",\"id\":1,\"channel\":\"room\"}");
	j = pop_expect(&c, "presence");
	members = json_object_get(j, "members");
	cr_expect_eq(json_array_size(members), 3);
	for (size_t i = 0; i < json_array_size(members); i++) {
		json_t *m = json_array_get(members, i);

		if (strcmp(str(m, "user"), "alice") == 0)
			cr_expect_str_eq(str(json_object_get(m, "info"), "name"), "Alice");
		else
			cr_expect_null(json_object_get(m, "info"));
	}
	json_decref(j);
	fake_send(&c, hub, "{\"type\":\"presence_stats\",\"id\":2,\"channel\":\"room\"}");
	j = pop_expect(&c, "presence_stats");
	cr_expect_eq(json_integer_value(json_object_get(j, "clients")), 3);
	cr_expect_eq(json_integer_value(json_object_get(j, "users")), 2);
	json_decref(j);
	fake_close(&a, hub);
	fake_close(&b, hub);
	fake_close(&c, hub);
	assert_no_leaks();
}

/* Publishes n messages to channel as p (subscribed), dropping what p receives. */
static void
publish_n(struct fake_session *p, const char *channel, int from, int n)
{
	for (int i = from; i < from + n; i++)
		fake_send(p, hub, "{\"type\":\"publish\",\"channel\":\"%s\",\"data\":%d}", channel,
			  i);
	fake_drain(p);
}

Test(state, recover_replays_exactly_the_missed_messages_before_live_ones)
{
	struct fake_session pub, a;
	json_t *j;
	char epoch[32];

	connect_as(&pub, "p");
	subscribe(&pub, "feed");
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"channel\":\"feed\"}");
	j = pop_expect(&a, "subscribed");
	snprintf(epoch, sizeof(epoch), "%s", str(j, "epoch"));
	json_decref(j);
	fake_drain(&pub);
	publish_n(&pub, "feed", 1, 5);
	fake_drain(&a); /* saw offsets 1..5 */
	fake_send(&a, hub, "{\"type\":\"unsubscribe\",\"channel\":\"feed\"}");
	fake_drain(&a);
	fake_drain(&pub);
	publish_n(&pub, "feed", 6, 40); /* missed 6..45 */
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"feed\",\"recover\":{\"offset\":5,"
		  "\"epoch\":\"%s\"}}",
		  epoch);
	j = pop_expect(&a, "subscribed");
	cr_expect(json_is_true(json_object_get(j, "recovered")));
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 45);
	json_decref(j);
	for (int off = 6; off <= 45; off++) {
		j = pop_expect(&a, "message");
		cr_expect_eq(json_integer_value(json_object_get(j, "offset")), off);
		json_decref(j);
	}
	cr_expect_null(fake_pop(&a));
	publish_n(&pub, "feed", 46, 1);
	j = pop_expect(&a, "message");
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 46);
	json_decref(j);
	fake_close(&a, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

Test(state, recover_with_another_epoch_or_evicted_messages_is_not_recovered)
{
	struct fake_session pub, a;
	json_t *j;
	char err[256], epoch[32];

	cr_assert_eq(config_load_string(&cfg, "{\"namespaces\":{\"small\":{\"history_size\":10}}}",
					err, sizeof(err)),
		     0, "%s", err);
	rehub();
	connect_as(&pub, "p");
	subscribe(&pub, "small:x");
	publish_n(&pub, "small:x", 1, 30);
	connect_as(&a, "a");
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"small:x\",\"recover\":{\"offset\":3,"
		  "\"epoch\":\"other\"}}");
	j = pop_expect(&a, "subscribed");
	cr_expect(json_is_false(json_object_get(j, "recovered")));
	snprintf(epoch, sizeof(epoch), "%s", str(j, "epoch"));
	json_decref(j);
	cr_expect_null(fake_pop(&a), "messages replayed without recovery");
	fake_send(&a, hub, "{\"type\":\"unsubscribe\",\"channel\":\"small:x\"}");
	fake_drain(&a);
	/* Offsets 1..20 were evicted by history_size 10. */
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"small:x\",\"recover\":{\"offset\":15,"
		  "\"epoch\":\"%s\"}}",
		  epoch);
	j = pop_expect(&a, "subscribed");
	cr_expect(json_is_false(json_object_get(j, "recovered")));
	json_decref(j);
	cr_expect_null(fake_pop(&a));
	fake_close(&a, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

/* A reconnect storm replays the same recent messages to many subscribers: within a
 * second they share one frame per message; after a tick the cache starts again. */
Test(state, replays_of_the_same_messages_share_their_frames)
{
	enum { N = 20 };
	static struct fake_session s[N];
	struct fake_session pub;
	char user[16];
	uint64_t before;

	connect_as(&pub, "p");
	subscribe(&pub, "t");
	publish_n(&pub, "t", 1, 5);
	before = hub_stats(hub)->replay_encoded;
	for (int i = 0; i < N; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		connect_as(&s[i], user);
		fake_send(&s[i], hub, "{\"type\":\"subscribe\",\"channel\":\"t\",\"rewind\":5}");
		cr_expect_str_eq(fake_pop_type(&s[i]), "subscribed");
		for (int off = 1; off <= 5; off++) {
			json_t *j = pop_expect(&s[i], "message");

			cr_expect_eq(json_integer_value(json_object_get(j, "offset")), off);
			cr_expect_eq(json_integer_value(json_object_get(j, "data")), off);
			json_decref(j);
		}
	}
	cr_expect_eq(hub_stats(hub)->replay_encoded - before, 5, "encoded %llu times",
		     (unsigned long long)(hub_stats(hub)->replay_encoded - before));
	hub_tick(hub, 1000);
	fake_close(&s[0], hub);
	connect_as(&s[0], "again");
	fake_send(&s[0], hub, "{\"type\":\"subscribe\",\"channel\":\"t\",\"rewind\":2}");
	cr_expect_str_eq(fake_pop_type(&s[0]), "subscribed");
	cr_expect_eq(fake_drain(&s[0]), 2);
	cr_expect_eq(hub_stats(hub)->replay_encoded - before, 7, "the tick kept the cache");
	for (int i = 0; i < N; i++)
		fake_close(&s[i], hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

Test(state, rewind_and_history_return_the_newest_messages_oldest_first)
{
	struct fake_session pub, a;
	json_t *j, *msgs;

	connect_as(&pub, "p");
	subscribe(&pub, "t");
	publish_n(&pub, "t", 1, 8);
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"channel\":\"t\",\"rewind\":3}");
	cr_expect_str_eq(fake_pop_type(&a), "subscribed");
	for (int off = 6; off <= 8; off++) {
		j = pop_expect(&a, "message");
		cr_expect_eq(json_integer_value(json_object_get(j, "offset")), off);
		json_decref(j);
	}
	fake_send(&a, hub, "{\"type\":\"history\",\"id\":1,\"channel\":\"t\",\"limit\":2}");
	j = pop_expect(&a, "history");
	msgs = json_object_get(j, "messages");
	cr_assert_eq(json_array_size(msgs), 2);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(msgs, 0), "offset")), 7);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(msgs, 0), "data")), 7);
	cr_expect_str_eq(str(json_object_get(json_array_get(msgs, 1), "from"), "user"), "p");
	cr_expect_null(json_object_get(json_array_get(msgs, 1), "type"));
	json_decref(j);
	fake_close(&a, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

Test(state, history_expires_after_its_ttl_and_the_channel_state_goes)
{
	struct fake_session pub, a;
	json_t *j;
	char err[256], epoch[32];

	cr_assert_eq(config_load_string(
			     &cfg,
			     "{\"namespaces\":{\"short\":{\"history_size\":5,\"history_ttl\":2}}}",
			     err, sizeof(err)),
		     0, "%s", err);
	rehub();
	connect_as(&pub, "p");
	fake_send(&pub, hub, "{\"type\":\"subscribe\",\"channel\":\"short:x\"}");
	j = pop_expect(&pub, "subscribed");
	snprintf(epoch, sizeof(epoch), "%s", str(j, "epoch"));
	json_decref(j);
	publish_n(&pub, "short:x", 1, 3);
	fake_send(&pub, hub, "{\"type\":\"unsubscribe\",\"channel\":\"short:x\"}");
	fake_drain(&pub);
	hub_tick(hub, 1999);
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"history\",\"id\":1,\"channel\":\"short:x\"}");
	j = pop_expect(&a, "history");
	cr_expect_eq(json_array_size(json_object_get(j, "messages")), 3);
	cr_expect_str_eq(str(j, "epoch"), epoch);
	json_decref(j);
	hub_tick(hub, 2000);
	fake_send(&a, hub, "{\"type\":\"history\",\"id\":2,\"channel\":\"short:x\"}");
	j = pop_expect(&a, "history");
	cr_expect_eq(json_array_size(json_object_get(j, "messages")), 0);
	cr_expect_str_neq(str(j, "epoch"), epoch, "the expired channel kept its epoch");
	json_decref(j);
	fake_close(&a, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

Test(state, history_memory_evicts_the_least_recently_published_channel_first)
{
	struct fake_session pub, a;
	json_t *j;

	cfg.limits.history_memory = 2000; /* a few dozen small frames */
	rehub();
	connect_as(&pub, "p");
	fake_send(&pub, hub, "{\"type\":\"publish\",\"channel\":\"old\",\"data\":0}");
	fake_drain(&pub);
	subscribe(&pub, "new");
	publish_n(&pub, "new", 1, 40);
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"history\",\"id\":1,\"channel\":\"old\"}");
	j = pop_expect(&a, "history");
	cr_expect_eq(json_array_size(json_object_get(j, "messages")), 0, "old kept its history");
	json_decref(j);
	fake_send(&a, hub, "{\"type\":\"history\",\"id\":2,\"channel\":\"new\"}");
	j = pop_expect(&a, "history");
	cr_expect_gt(json_array_size(json_object_get(j, "messages")), 0);
	cr_expect_lt(json_array_size(json_object_get(j, "messages")), 40);
	json_decref(j);
	fake_close(&a, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

/* ---- tokens, with a fake verifier: the token text is the claims JSON ---- */

static int64_t fake_now = 1000000;

static int
fake_verify(void *arg, const char *token, size_t len, json_t **claims, char *msg, size_t msglen)
{
	(void)arg;
	*claims = json_loadb(token, len, 0, NULL);
	if (*claims == NULL) {
		snprintf(msg, msglen, "bad token");
		return -1;
	}
	return 0;
}

static int64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static void
setup_tokens(void)
{
	struct hub_auth auth = { .verify = fake_verify, .now = fake_clock };

	setup_builtin();
	cfg.jwt_leeway = 0;
	auth_used = auth;
	rehub();
}

TestSuite(tokens, .init = setup_tokens, .fini = teardown, .timeout = 10);

Test(tokens, an_expired_token_gets_token_expired_then_a_flushed_4001_kick)
{
	struct fake_session a;
	json_t *j;

	fake_open(&a, hub, 0);
	fake_send(
		&a, hub,
		"{\"type\":\"connect\",\"token\":\"{\\\"sub\\\":\\\"alice\\\",\\\"exp\\\":%lld}\"}",
		(long long)fake_now + 10);
	j = pop_expect(&a, "connected");
	cr_expect_str_eq(str(j, "user"), "alice");
	cr_expect_eq(json_integer_value(json_object_get(j, "expires")), fake_now + 10);
	json_decref(j);
	fake_now += 9;
	hub_tick(hub, 1000);
	cr_expect_eq(a.kicks, 0);
	fake_now += 1;
	hub_tick(hub, 2000);
	j = pop_expect(&a, "error");
	cr_expect_str_eq(str(j, "code"), "token_expired");
	json_decref(j);
	cr_expect_eq(a.kick_code, PROTO_CLOSE_TOKEN_EXPIRED);
	cr_expect(a.kick_flush, "the token_expired error must be written before the close");
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(tokens, refresh_moves_the_expiry_and_another_sub_is_forbidden)
{
	struct fake_session a;
	json_t *j;

	fake_open(&a, hub, 0);
	fake_send(
		&a, hub,
		"{\"type\":\"connect\",\"token\":\"{\\\"sub\\\":\\\"alice\\\",\\\"exp\\\":%lld}\"}",
		(long long)fake_now + 10);
	cr_assert_str_eq(fake_pop_type(&a), "connected");
	fake_send(&a, hub,
		  "{\"type\":\"refresh\",\"id\":1,\"token\":\"{\\\"sub\\\":\\\"mallory\\\","
		  "\\\"exp\\\":%lld}\"}",
		  (long long)fake_now + 100);
	j = pop_expect(&a, "error");
	cr_expect_str_eq(str(j, "code"), "forbidden");
	json_decref(j);
	fake_send(&a, hub,
		  "{\"type\":\"refresh\",\"id\":2,\"token\":\"{\\\"sub\\\":\\\"alice\\\","
		  "\\\"exp\\\":%lld}\"}",
		  (long long)fake_now + 100);
	j = pop_expect(&a, "refreshed");
	cr_expect_eq(json_integer_value(json_object_get(j, "expires")), fake_now + 100);
	json_decref(j);
	fake_now += 50;
	hub_tick(hub, 1000);
	cr_expect_eq(a.kicks, 0, "closed at the old expiry");
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(tokens, private_namespaces_need_a_channels_grant_or_a_channel_token)
{
	struct fake_session a;
	char err[256];
	json_t *j;

	cr_assert_eq(config_load_string(&cfg,
					"{\"namespaces\":{\"secret\":{\"private\":true,"
					"\"presence\":true,\"history_size\":5}}}",
					err, sizeof(err)),
		     0, "%s", err);
	rehub();
	fake_open(&a, hub, 0);
	fake_send(&a, hub,
		  "{\"type\":\"connect\",\"token\":\"{\\\"sub\\\":\\\"alice\\\",\\\"channels\\\":["
		  "\\\"secret:team-*\\\"]}\"}");
	cr_assert_str_eq(fake_pop_type(&a), "connected");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"channel\":\"secret:team-a\"}");
	cr_expect_str_eq(fake_pop_type(&a), "subscribed");
	fake_send(&a, hub, "{\"type\":\"presence\",\"channel\":\"secret:other\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(str(j, "code"), "forbidden");
	json_decref(j);
	fake_send(&a, hub, "{\"type\":\"history\",\"channel\":\"secret:other\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(str(j, "code"), "forbidden");
	json_decref(j);
	/* A channel token for another user, then for another channel, then the right one. */
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"secret:other\",\"token\":\"{\\\"sub\\\":"
		  "\\\"bob\\\",\\\"channel\\\":\\\"secret:other\\\",\\\"exp\\\":%lld}\"}",
		  (long long)fake_now + 60);
	cr_expect_str_eq(fake_pop_type(&a), "error");
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"secret:other\",\"token\":\"{\\\"sub\\\":"
		  "\\\"alice\\\",\\\"channel\\\":\\\"secret:x\\\",\\\"exp\\\":%lld}\"}",
		  (long long)fake_now + 60);
	cr_expect_str_eq(fake_pop_type(&a), "error");
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"secret:other\",\"token\":\"{\\\"sub\\\":"
		  "\\\"alice\\\",\\\"channel\\\":\\\"secret:other\\\",\\\"exp\\\":%lld}\"}",
		  (long long)fake_now + 60);
	cr_expect_str_eq(fake_pop_type(&a), "subscribed");
	fake_close(&a, hub);
	assert_no_leaks();
}

/* Review findings on the issue 3 change. */

Test(tokens, a_channel_token_cannot_identify_a_connection)
{
	struct fake_session a;
	json_t *j;

	fake_open(&a, hub, 0);
	fake_send(&a, hub,
		  "{\"type\":\"connect\",\"token\":\"{\\\"sub\\\":\\\"alice\\\",\\\"channel\\\":"
		  "\\\"secret:x\\\",\\\"exp\\\":%lld}\"}",
		  (long long)fake_now + 60);
	j = pop_expect(&a, "error");
	cr_expect_str_eq(str(j, "code"), "unauthorized");
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(tokens, an_anonymous_connection_cannot_use_a_channel_token)
{
	struct fake_session a;
	char err[256];
	json_t *j;

	cr_assert_eq(config_load_string(&cfg, "{\"namespaces\":{\"secret\":{\"private\":true}}}",
					err, sizeof(err)),
		     0, "%s", err);
	rehub();
	connect_as(&a, "alice"); /* anonymous, claims to be alice */
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"secret:x\",\"token\":\"{\\\"sub\\\":"
		  "\\\"alice\\\",\\\"channel\\\":\\\"secret:x\\\",\\\"exp\\\":%lld}\"}",
		  (long long)fake_now + 60);
	j = pop_expect(&a, "error");
	cr_expect_str_eq(str(j, "code"), "forbidden");
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(tokens, a_huge_integer_exp_neither_overflows_nor_expires)
{
	struct fake_session a;

	fake_open(&a, hub, 0);
	fake_send(&a, hub,
		  "{\"type\":\"connect\",\"token\":\"{\\\"sub\\\":\\\"alice\\\",\\\"exp\\\":"
		  "9223372036854775807}\"}");
	cr_assert_str_eq(fake_pop_type(&a), "connected");
	hub_tick(hub, 1000);
	cr_expect_eq(a.kicks, 0);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(tokens, publishing_into_a_private_clients_namespace_needs_the_grant)
{
	struct fake_session a;
	char err[256];
	json_t *j;

	cr_assert_eq(
		config_load_string(
			&cfg,
			"{\"namespaces\":{\"psec\":{\"private\":true,\"publish\":\"clients\"}}}",
			err, sizeof(err)),
		0, "%s", err);
	rehub();
	connect_as(&a, "anon");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"psec:x\",\"data\":1}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(str(j, "code"), "forbidden");
	json_decref(j);
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(state, a_replay_larger_than_the_send_queue_is_not_recovered_and_does_not_kick)
{
	struct fake_session pub, a;
	json_t *j;
	char epoch[32];

	cfg.limits.send_queue_messages = 20;
	rehub();
	connect_as(&pub, "p");
	fake_send(&pub, hub, "{\"type\":\"subscribe\",\"channel\":\"big\"}");
	j = pop_expect(&pub, "subscribed");
	snprintf(epoch, sizeof(epoch), "%s", str(j, "epoch"));
	json_decref(j);
	for (int i = 0; i < 50; i++) {
		fake_send(&pub, hub, "{\"type\":\"publish\",\"channel\":\"big\",\"data\":%d}", i);
		fake_drain(&pub);
	}
	connect_as(&a, "a");
	fake_send(&a, hub,
		  "{\"type\":\"subscribe\",\"channel\":\"big\",\"recover\":{\"offset\":0,\"epoch\":"
		  "\"%s\"}}",
		  epoch);
	j = pop_expect(&a, "subscribed");
	cr_expect(json_is_false(json_object_get(j, "recovered")));
	json_decref(j);
	cr_expect_eq(a.kicks, 0, "the replay closed the client as a slow consumer");
	cr_expect_null(fake_pop(&a));
	fake_send(&a, hub, "{\"type\":\"unsubscribe\",\"channel\":\"big\"}");
	fake_drain(&a);
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"channel\":\"big\",\"rewind\":50}");
	cr_expect_str_eq(fake_pop_type(&a), "subscribed");
	cr_expect_eq(fake_drain(&a), 19, "rewind should keep the newest that fit");
	cr_expect_eq(a.kicks, 0);
	fake_close(&a, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

Test(state, a_history_reply_stays_within_max_message_size_and_says_truncated)
{
	struct fake_session pub, a;
	json_t *j, *msgs;
	char pad[600];

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	cfg.limits.max_message_size = 4096;
	rehub();
	connect_as(&pub, "p");
	subscribe(&pub, "h");
	for (int i = 0; i < 20; i++) {
		fake_send(&pub, hub, "{\"type\":\"publish\",\"channel\":\"h\",\"data\":\"%s\"}",
			  pad);
		fake_drain(&pub);
	}
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"history\",\"id\":1,\"channel\":\"h\"}");
	j = pop_expect(&a, "history");
	msgs = json_object_get(j, "messages");
	cr_expect(json_is_true(json_object_get(j, "truncated")));
	cr_expect_gt(json_array_size(msgs), 0);
	cr_expect_lt(json_array_size(msgs), 20);
	cr_expect_eq(json_integer_value(
			     json_object_get(json_array_get(msgs, json_array_size(msgs) - 1),
					     "offset")),
		     20, "without since the newest are kept");
	{
		char *text = json_dumps(j, JSON_COMPACT);

		cr_expect_leq(strlen(text), 4096);
		free(text);
	}
	json_decref(j);
	fake_close(&a, hub);
	fake_close(&pub, hub);
	assert_no_leaks();
}

/* ---- webhook events ---- */

static json_t *events_seen;

static void
collect_event(void *arg, json_t *ev)
{
	(void)arg;
	json_array_append_new(events_seen, ev);
}

static const char *
event_name(size_t i)
{
	return json_string_value(json_object_get(json_array_get(events_seen, i), "name"));
}

Test(state, the_hub_emits_lifecycle_and_opted_in_message_events)
{
	struct hub_events ev = { .emit = collect_event };
	struct fake_session a;
	char err[256];

	cr_assert_eq(
		config_load_string(
			&cfg,
			"{\"namespaces\":{\"log\":{\"presence\":true,\"message_events\":true}}}",
			err, sizeof(err)),
		0, "%s", err);
	rehub();
	events_seen = json_array();
	hub_set_events(hub, &ev);
	connect_as(&a, "alice");
	subscribe(&a, "log:x");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"log:x\",\"data\":{\"v\":0.1}}");
	fake_drain(&a);
	subscribe(&a, "quiet");
	fake_send(&a, hub, "{\"type\":\"publish\",\"channel\":\"quiet\",\"data\":1}");
	fake_close(&a, hub);
	cr_assert_eq(json_array_size(events_seen), 11, "%zu events", json_array_size(events_seen));
	cr_expect_str_eq(event_name(0), "client_connected");
	cr_expect_str_eq(event_name(1), "channel_occupied");
	cr_expect_str_eq(event_name(2), "member_joined");
	cr_expect_str_eq(event_name(3), "message_published");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(events_seen, 3), "offset")),
		     1);
	cr_expect_str_eq(event_name(4), "channel_occupied"); /* quiet: no message event */
	cr_expect_str_eq(event_name(5), "member_joined");
	/* close: leaves quiet (last subscription first), then log:x, then the client */
	cr_expect_str_eq(event_name(6), "member_left");
	cr_expect_str_eq(event_name(7), "channel_vacated");
	cr_expect_str_eq(event_name(10), "client_disconnected");
	json_decref(events_seen);
	assert_no_leaks();
}
