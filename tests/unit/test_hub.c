/* test_hub.c: the hub with fake sessions: commands, subscriptions, fan-out, limits,
 * queue bounds, connect timeout and shutdown, with no sockets and a caller's clock. */
#include "config.h"
#include "fake_session.h"
#include "frame.h"
#include "hub.h"
#include "leakcheck.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <string.h>

static struct config cfg;
static struct hub *hub;
static const uint8_t seed[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static void
setup(void)
{
	config_defaults(&cfg);
	hub = hub_new(&cfg, seed);
	cr_assert_not_null(hub);
}

static void
teardown(void)
{
	hub_free(hub);
	config_fini(&cfg);
}

TestSuite(hub, .init = setup, .fini = teardown, .timeout = 10);
TestSuite(regress, .init = setup, .fini = teardown, .timeout = 30);

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
	cr_expect_str_eq(json_string_value(json_object_get(ja, "server")), "switchboard/" SWITCHBOARD_VERSION);
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
		fake_send(&pub, hub, "{\"type\":\"publish\",\"id\":%d,\"channel\":\"chat:lobby\",\"data\":{\"n\":%d}}", m, m);
	for (int i = 0; i < 5; i++) {
		for (int m = 0; m < 10; m++) {
			json_t *j = pop_expect(&subs[i], "message");
			uint64_t off = (uint64_t)json_integer_value(json_object_get(j, "offset"));

			if (m == 0 && i == 0)
				first = off;
			cr_expect_eq(off, first + (uint64_t)m);
			cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "data"), "n")), m);
			cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "from"), "user")), "p");
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

	cr_assert_eq(config_load_string(&cfg, "{\"namespaces\":{\"open\":{\"publish\":\"clients\"},"
					      "\"feed\":{\"publish\":\"none\"}}}", err, sizeof(err)), 0, "%s", err);
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

	cr_assert_eq(config_load_string(&cfg, "{\"namespaces\":{\"chat\":{}},\"default_namespace\":null}",
					err, sizeof(err)), 0, "%s", err);
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
	connect_as(&a, "a");
	subscribe(&a, "c");
	fake_send(&a, hub, "{\"type\":\"publish\",\"id\":1,\"channel\":\"c\",\"data\":\"0123456789\"}");
	j = pop_expect(&a, "error");
	cr_expect_str_eq(json_string_value(json_object_get(j, "code")), "too_large");
	json_decref(j);
	fake_send(&a, hub, "{\"type\":\"publish\",\"id\":2,\"channel\":\"c\",\"data\":\"01234567\"}");
	cr_expect_str_eq(fake_pop_type(&a), "message");
	fake_close(&a, hub);
	assert_no_leaks();
}

Test(hub, a_full_queue_kicks_only_that_session_with_4008)
{
	struct fake_session slow, fast, pub;

	cfg.limits.send_queue_messages = 8;
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
	cr_expect_eq(session_queued(slow.s), 8);
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
			fake_send(&s[p], hub, "{\"type\":\"publish\",\"channel\":\"ch%d\",\"data\":%d}", c, step);
			for (int q = 0; q < NS; q++) {
				size_t want = model[q][c] ? 1 : 0;

				if (q == p)
					want++; /* its ack */
				cr_assert_eq(fake_drain(&s[q]), want, "step %d: session %d on ch%d", step, q, c);
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
		"\"\\\xc3\xa9\"",                                               /* "\é" */
		"{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\"}",  /* cut at 40 */
		"{\"type\":\"subscribe\",\"channel\":\"\xc3\xa9\"}",
		"\xc3\xa9\xc3",
	};
	struct fake_session a;

	fake_open(&a, hub, 0);
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		json_t *j;

		hub_session_receive(hub, a.s, frames[i], strlen(frames[i]));
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
