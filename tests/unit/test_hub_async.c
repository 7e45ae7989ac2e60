/* test_hub_async.c: the hub over an engine whose answers come late, out of order or
 * failing (fake_engine.h): two-phase subscribe keeps recovery exact whatever the timing,
 * an operation whose session went answers nobody, engine failures reach clients as
 * unavailable, and the server side (backend.h) answers from its completions. */
#include "backend.h"
#include "config.h"
#include "fake_engine.h"
#include "fake_session.h"
#include "hub.h"
#include "leakcheck.h"
#include "message.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct config cfg;
static struct core_config core;
static struct hub *hub;
static struct fake_engine *fe;
static const uint8_t seed[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };

/* A default namespace with presence, join/leave and 100 messages of history where any
 * client publishes, over the fake engine, answering only when told. */
static void
setup(void)
{
	char err[256];

	config_defaults(&cfg);
	cr_assert_eq(
		config_load_string(&cfg,
				   "{\"default_namespace\":{\"publish\":\"clients\","
				   "\"presence\":true,\"join_leave\":true,\"history_size\":100}}",
				   err, sizeof(err)),
		0, "%s", err);
	config_to_core(&cfg, &core);
	hub = hub_new_with_engine(&core, seed, fake_engine_new);
	cr_assert_not_null(hub);
	fe = fake_engine_last();
	cr_assert_not_null(fe);
}

static void
teardown(void)
{
	hub_free(hub);
	config_fini(&cfg);
}

TestSuite(async, .init = setup, .fini = teardown, .timeout = 20);

static const char *
str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static json_t *
pop_expect(struct fake_session *f, const char *type)
{
	json_t *j = fake_pop(f);

	cr_assert_not_null(j, "expected a %s frame, the queue is empty", type);
	cr_assert_str_eq(str(j, "type"), type, "got %s", json_dumps(j, JSON_COMPACT));
	return j;
}

static void
connect_as(struct fake_session *f, const char *user)
{
	fake_open(f, hub, 0);
	fake_send(f, hub, "{\"type\":\"connect\",\"id\":1,\"user\":\"%s\"}", user);
	cr_assert_str_eq(fake_pop_type(f), "connected");
}

/* Subscribes and lets every engine call answer. */
static void
subscribe_settled(struct fake_session *f, const char *channel)
{
	fake_send(f, hub, "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"%s\"}", channel);
	fake_engine_settle(fe);
	json_decref(pop_expect(f, "subscribed"));
}

static void
publish_settled(struct fake_session *f, const char *channel, int n)
{
	fake_send(f, hub, "{\"type\":\"publish\",\"id\":3,\"channel\":\"%s\",\"data\":%d}", channel,
		  n);
	fake_engine_settle(fe);
}

/* Pops frames until the queue is empty; returns the data of the message frames in
 * order (n of them), checking their offsets only increase. */
static int
drain_messages(struct fake_session *f, int *data, int max, uint64_t *last_offset)
{
	json_t *j;
	int n = 0;

	while ((j = fake_pop(f)) != NULL) {
		if (strcmp(str(j, "type"), "message") == 0) {
			uint64_t off = (uint64_t)json_integer_value(json_object_get(j, "offset"));

			cr_expect_gt(off, *last_offset, "offset %llu after %llu",
				     (unsigned long long)off, (unsigned long long)*last_offset);
			*last_offset = off;
			if (n < max)
				data[n] = (int)json_integer_value(json_object_get(j, "data"));
			n++;
		}
		json_decref(j);
	}
	return n;
}

/* A subscriber recovering while three publishes are in flight: whatever order the four
 * answers come in (all 24), it gets every message after its position once, in order,
 * and none twice; then the live ones. */
Test(async, recovery_under_concurrent_publish_is_exact_in_every_order)
{
	static const int perms[24][4] = {
		{ 0, 1, 2, 3 }, { 0, 1, 3, 2 }, { 0, 2, 1, 3 }, { 0, 2, 3, 1 }, { 0, 3, 1, 2 },
		{ 0, 3, 2, 1 }, { 1, 0, 2, 3 }, { 1, 0, 3, 2 }, { 1, 2, 0, 3 }, { 1, 2, 3, 0 },
		{ 1, 3, 0, 2 }, { 1, 3, 2, 0 }, { 2, 0, 1, 3 }, { 2, 0, 3, 1 }, { 2, 1, 0, 3 },
		{ 2, 1, 3, 0 }, { 2, 3, 0, 1 }, { 2, 3, 1, 0 }, { 3, 0, 1, 2 }, { 3, 0, 2, 1 },
		{ 3, 1, 0, 2 }, { 3, 1, 2, 0 }, { 3, 2, 0, 1 }, { 3, 2, 1, 0 },
	};

	for (int p = 0; p < 24; p++) {
		struct fake_session pub, r;
		char channel[32], epoch[32];
		json_t *j;
		int data[32], n, seen[16] = { 0 };
		uint64_t last = 0;

		snprintf(channel, sizeof(channel), "room%d", p);
		connect_as(&pub, "pub");
		subscribe_settled(&pub, channel);
		for (int i = 1; i <= 5; i++)
			publish_settled(&pub, channel, i);
		fake_drain(&pub);
		/* r saw up to offset 2 in this epoch, and reconnects. */
		connect_as(&r, "r");
		fake_send(&pub, hub,
			  "{\"type\":\"history\",\"id\":4,\"channel\":\"%s\",\"limit\":1}",
			  channel);
		fake_engine_settle(fe);
		j = pop_expect(&pub, "history");
		snprintf(epoch, sizeof(epoch), "%s", str(j, "epoch"));
		json_decref(j);
		fake_send(&r, hub,
			  "{\"type\":\"subscribe\",\"id\":5,\"channel\":\"%s\",\"recover\":{"
			  "\"offset\":2,\"epoch\":\"%s\"}}",
			  channel, epoch);
		for (int i = 6; i <= 8; i++)
			fake_send(&pub, hub,
				  "{\"type\":\"publish\",\"channel\":\"%s\",\"data\":%d}", channel,
				  i);
		cr_assert_eq(fake_engine_queued(fe), 4, "history + 3 publishes in flight");
		/* Complete the four calls in the order perms[p] gives (indices into the
		 * original queue, which shrinks as calls leave it). */
		{
			int order[4], left[4] = { 0, 1, 2, 3 }, nleft = 4;

			memcpy(order, perms[p], sizeof(order));
			for (int k = 0; k < 4; k++) {
				int pos = 0;

				while (left[pos] != order[k])
					pos++;
				fake_engine_complete(fe, (size_t)pos);
				memmove(&left[pos], &left[pos + 1],
					(size_t)(nleft - pos - 1) * sizeof(int));
				nleft--;
			}
		}
		cr_assert_eq(fake_engine_queued(fe), 0);
		j = pop_expect(&r, "subscribed");
		cr_expect(json_is_true(json_object_get(j, "recovered")), "order %d: not recovered",
			  p);
		json_decref(j);
		n = drain_messages(&r, data, 32, &last);
		cr_expect_eq(n, 6, "order %d: %d messages after offset 2, expected 6", p, n);
		for (int i = 0; i < n && i < 32; i++) {
			cr_assert(data[i] >= 3 && data[i] <= 8, "order %d: data %d", p, data[i]);
			seen[data[i]]++;
		}
		for (int v = 3; v <= 8; v++)
			cr_expect_eq(seen[v], 1, "order %d: data %d seen %d times", p, v, seen[v]);
		cr_expect_eq(last, 8, "order %d: last offset %llu", p, (unsigned long long)last);
		/* Live from now on. */
		publish_settled(&pub, channel, 9);
		n = drain_messages(&r, data, 32, &last);
		cr_expect_eq(n, 1);
		cr_expect_eq(data[0], 9);
		fake_close(&r, hub);
		fake_close(&pub, hub);
	}
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* The history answer comes before the engine has confirmed the channel's subscription:
 * it is not even asked for until then. */
Test(async, history_is_asked_only_once_the_channel_is_live)
{
	struct fake_session a;

	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"c\"}");
	cr_assert_eq(fake_engine_queued(fe), 1);
	cr_expect_str_eq(fake_engine_kind(fe, 0), "subscribe");
	cr_expect_eq(fake_pop(&a), NULL, "answered before the engine did");
	fake_engine_complete(fe, 0);
	cr_assert_eq(fake_engine_queued(fe), 1);
	cr_expect_str_eq(fake_engine_kind(fe, 0), "history");
	fake_engine_complete(fe, 0);
	json_decref(pop_expect(&a, "subscribed"));
	fake_close(&a, hub);
}

/* A publisher that disconnects before its publish completes: the message is published
 * (subscribers get it), the ack goes nowhere. */
Test(async, a_publisher_that_disconnects_before_its_completion)
{
	struct fake_session pub, sub;
	json_t *j;

	connect_as(&sub, "sub");
	subscribe_settled(&sub, "c");
	connect_as(&pub, "pub");
	fake_send(&pub, hub,
		  "{\"type\":\"publish\",\"id\":9,\"channel\":\"c\",\"data\":{\"x\":1}}");
	cr_assert_eq(fake_engine_queued(fe), 1);
	fake_close(&pub, hub);
	fake_engine_settle(fe);
	j = pop_expect(&sub, "message");
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "data"), "x")), 1);
	json_decref(j);
	cr_expect_eq(hub_stats(hub)->published_client, 1);
	cr_expect_eq(hub_pending_count(hub), 0);
	fake_close(&sub, hub);
}

/* Acks may come back in another order than the publishes went: each carries its own id
 * and offset. */
Test(async, acks_out_of_order_keep_their_ids)
{
	struct fake_session a;
	json_t *j;

	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"publish\",\"id\":\"first\",\"channel\":\"c\",\"data\":1}");
	fake_send(&a, hub, "{\"type\":\"publish\",\"id\":\"second\",\"channel\":\"c\",\"data\":2}");
	cr_assert_eq(fake_engine_queued(fe), 2);
	fake_engine_complete(fe, 1);
	fake_engine_complete(fe, 0);
	j = pop_expect(&a, "published");
	cr_expect_str_eq(str(j, "id"), "second");
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 1);
	json_decref(j);
	j = pop_expect(&a, "published");
	cr_expect_str_eq(str(j, "id"), "first");
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 2);
	json_decref(j);
	fake_close(&a, hub);
}

static void
expect_unavailable(struct fake_session *f, int id)
{
	json_t *j = pop_expect(f, "error");

	cr_expect_str_eq(str(j, "code"), "unavailable");
	cr_expect_eq(json_integer_value(json_object_get(j, "id")), id);
	cr_expect(strstr(str(j, "message"), "retry") != NULL, "%s", str(j, "message"));
	json_decref(j);
}

/* Every engine failure reaches the client as an unavailable error answering its
 * command, never silence; a failed subscribe leaves no subscription behind. */
Test(async, failures_become_unavailable)
{
	struct fake_session a, b;
	int i;

	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"publish\",\"id\":11,\"channel\":\"c\",\"data\":1}");
	fake_engine_fail(fe, 0, -EIO);
	expect_unavailable(&a, 11);
	/* The channel's engine subscription fails: its waiting subscriber is told. */
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":12,\"channel\":\"c\"}");
	fake_engine_fail(fe, 0, -EIO);
	expect_unavailable(&a, 12);
	cr_expect_eq(hub_channel_count(hub), 0);
	cr_expect_eq(hub_stats(hub)->subscriptions, 0);
	/* The history answer fails. */
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":13,\"channel\":\"c\"}");
	fake_engine_complete(fe, 0); /* the channel is live */
	i = fake_engine_find(fe, "history", "c");
	cr_assert_geq(i, 0);
	fake_engine_fail(fe, (size_t)i, -ETIMEDOUT);
	expect_unavailable(&a, 13);
	cr_expect_eq(hub_stats(hub)->subscriptions, 0);
	cr_expect_eq(hub_channel_count(hub), 0);
	/* Not subscribed: a message published now does not reach a. */
	connect_as(&b, "b");
	subscribe_settled(&b, "c");
	publish_settled(&b, "c", 5);
	cr_expect_eq(fake_pop(&a), NULL);
	/* presence, presence_stats and history fail too. */
	subscribe_settled(&a, "c");
	fake_drain(&a);
	fake_send(&a, hub, "{\"type\":\"presence\",\"id\":14,\"channel\":\"c\"}");
	fake_engine_fail(fe, 0, -EIO);
	expect_unavailable(&a, 14);
	fake_send(&a, hub, "{\"type\":\"presence_stats\",\"id\":15,\"channel\":\"c\"}");
	fake_engine_fail(fe, 0, -EIO);
	expect_unavailable(&a, 15);
	fake_send(&a, hub, "{\"type\":\"history\",\"id\":16,\"channel\":\"c\"}");
	fake_engine_fail(fe, 0, -EIO);
	expect_unavailable(&a, 16);
	cr_expect_eq(hub_stats(hub)->errors[PROTO_ERR_UNAVAILABLE], 6);
	fake_close(&a, hub);
	fake_close(&b, hub);
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* The answer to a subscribe ended by an unsubscribe before it completed. */
static void
expect_cancelled(struct fake_session *f, int id)
{
	json_t *j = pop_expect(f, "error");

	cr_expect_str_eq(str(j, "code"), "not_subscribed");
	cr_expect_eq(json_integer_value(json_object_get(j, "id")), id);
	cr_expect(strstr(str(j, "message"), "before the subscription completed") != NULL, "%s",
		  str(j, "message"));
	json_decref(j);
}

/* Leaving while catching up cancels the subscription's operation and answers its
 * subscribe; its late answer answers nobody, and a new subscription in between is not
 * confused with it. */
Test(async, unsubscribing_while_catching_up_cancels_and_resubscribing_works)
{
	struct fake_session a, b;
	json_t *j;
	int first;

	connect_as(&b, "b");
	subscribe_settled(&b, "c");
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":20,\"channel\":\"c\"}");
	first = fake_engine_find(fe, "history", "c");
	cr_assert_geq(first, 0);
	fake_send(&a, hub, "{\"type\":\"unsubscribe\",\"id\":21,\"channel\":\"c\"}");
	/* The subscribe is answered (once, before the unsubscribe's reply). */
	expect_cancelled(&a, 20);
	j = pop_expect(&a, "unsubscribed");
	cr_expect_eq(json_integer_value(json_object_get(j, "id")), 21);
	json_decref(j);
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":22,\"channel\":\"c\"}");
	cr_assert_eq(fake_engine_queued(fe), 2);
	/* The cancelled one's answer comes first: nothing for a yet. */
	fake_engine_complete(fe, (size_t)first);
	cr_expect_eq(fake_pop(&a), NULL);
	fake_engine_complete(fe, 0);
	j = pop_expect(&a, "subscribed");
	cr_expect_eq(json_integer_value(json_object_get(j, "id")), 22);
	json_decref(j);
	/* b was told of a's join once (the second subscription), not of the first. */
	j = pop_expect(&b, "join");
	json_decref(j);
	cr_expect_eq(fake_pop(&b), NULL);
	fake_close(&a, hub);
	fake_close(&b, hub);
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* The first subscriber of a channel unsubscribes while the engine has not yet
 * confirmed the channel: its subscribe is answered, and the engine's unsubscribe waits
 * behind the subscribe (as a networked engine keeps them in order), so the engine
 * holds no subscription once both ran. */
Test(async, unsubscribing_before_the_channel_is_live)
{
	struct fake_session a;

	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":30,\"channel\":\"c\"}");
	cr_assert_eq(fake_engine_find(fe, "subscribe", "c"), 0);
	fake_send(&a, hub, "{\"type\":\"unsubscribe\",\"id\":31,\"channel\":\"c\"}");
	expect_cancelled(&a, 30);
	json_decref(pop_expect(&a, "unsubscribed"));
	cr_expect_eq(hub_channel_count(hub), 0);
	cr_expect_eq(fake_engine_subscriptions(fe), 0);
	fake_engine_settle(fe); /* the subscribe runs, then the unsubscribe behind it */
	cr_expect_eq(fake_engine_subscriptions(fe), 0, "the unsubscribe overtook the subscribe");
	cr_expect_eq(fake_pop(&a), NULL, "a second answer to the subscribe");
	/* A new subscription works from scratch. */
	subscribe_settled(&a, "c");
	cr_expect_eq(fake_engine_subscriptions(fe), 1);
	fake_close(&a, hub);
	cr_expect_eq(fake_engine_subscriptions(fe), 0);
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* The HTTP API unsubscribing a user whose subscription is catching up: the client's
 * subscribe is answered, then it is told it was unsubscribed. */
Test(async, a_backend_unsubscribe_while_catching_up_answers_the_subscribe)
{
	struct fake_session b, a;

	connect_as(&b, "b");
	subscribe_settled(&b, "c");
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":40,\"channel\":\"c\"}");
	cr_assert_geq(fake_engine_find(fe, "history", "c"), 0);
	cr_expect_eq(backend_unsubscribe_user(hub, "a", 1, "c", 1), 1);
	expect_cancelled(&a, 40);
	json_decref(pop_expect(&a, "unsubscribed"));
	fake_engine_settle(fe);
	cr_expect_eq(fake_pop(&a), NULL);
	cr_expect_eq(fake_pop(&b), NULL, "a join for a member that never joined");
	fake_close(&a, hub);
	fake_close(&b, hub);
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* Many subscribers catching up at once, some leaving from anywhere in the channel's
 * list: each one that stays gets the kept messages once, in order, after its reply;
 * none that left gets anything more. */
Test(async, many_catching_up_subscribers_leaving_in_any_order)
{
	enum { N = 64 };
	static struct fake_session s[N];
	struct fake_session pub;
	char user[16];

	connect_as(&pub, "pub");
	subscribe_settled(&pub, "c");
	for (int i = 0; i < N; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		connect_as(&s[i], user);
		fake_send(&s[i], hub, "{\"type\":\"subscribe\",\"id\":%d,\"channel\":\"c\"}",
			  100 + i);
	}
	for (int m = 1; m <= 3; m++) {
		fake_send(&pub, hub, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":%d}", m);
		fake_engine_complete(fe, (size_t)fake_engine_find(fe, "publish", "c"));
	}
	/* Every third leaves: u0 (the list's tail), u63 (its head) and many in between. */
	for (int i = 0; i < N; i += 3) {
		fake_send(&s[i], hub, "{\"type\":\"unsubscribe\",\"id\":9,\"channel\":\"c\"}");
		expect_cancelled(&s[i], 100 + i);
		json_decref(pop_expect(&s[i], "unsubscribed"));
	}
	/* The history answers come in reverse order of the subscribes. */
	while (fake_engine_queued(fe) > 0)
		fake_engine_complete(fe, fake_engine_queued(fe) - 1);
	for (int i = 0; i < N; i++) {
		json_t *j;
		uint64_t last = 0;
		int data[8], n;

		if (i % 3 == 0) {
			cr_expect_eq(fake_pop(&s[i]), NULL, "u%d left but got more", i);
			continue;
		}
		j = pop_expect(&s[i], "subscribed");
		cr_expect_eq(json_integer_value(json_object_get(j, "id")), 100 + i);
		json_decref(j);
		n = drain_messages(&s[i], data, 8, &last);
		/* A subscribe with no position starts at the answer's position: the three
		 * were published before it, so they are in history, not replayed, and not
		 * released either (at or below the answered offset). */
		cr_expect_eq(n, 0, "u%d got %d messages", i, n);
	}
	/* Live now: one more reaches every subscriber that stayed, once. */
	publish_settled(&pub, "c", 4);
	for (int i = 0; i < N; i++) {
		uint64_t last = 0;
		int data[8], n = drain_messages(&s[i], data, 8, &last);
		bool stayed = i % 3 != 0;

		cr_expect_eq(n, stayed ? 1 : 0, "u%d got %d", i, n);
		if (stayed && n == 1)
			cr_expect_eq(data[0], 4);
	}
	for (int i = 0; i < N; i++)
		fake_close(&s[i], hub);
	fake_close(&pub, hub);
	cr_expect_eq(hub_pending_count(hub), 0);
	cr_expect_eq(fake_engine_subscriptions(fe), 0);
}

/* An engine that cancels a subscribe itself (it went away) fails it like any other error:
 * unavailable, not the not_subscribed of a subscription the client ended. */
Test(async, an_engine_cancelling_a_subscribe_is_unavailable)
{
	struct fake_session a;
	int i;

	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":50,\"channel\":\"c\"}");
	fake_engine_complete(fe, 0); /* the channel is live */
	i = fake_engine_find(fe, "history", "c");
	cr_assert_geq(i, 0);
	fake_engine_fail(fe, (size_t)i, -ECANCELED);
	expect_unavailable(&a, 50);
	cr_expect_eq(hub_stats(hub)->subscriptions, 0);
	fake_close(&a, hub);
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* A session that closes while its subscribe is in flight: the answer finds nobody. */
Test(async, a_session_closed_while_catching_up)
{
	struct fake_session a, b;

	connect_as(&b, "b");
	subscribe_settled(&b, "c");
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"c\"}");
	fake_send(&b, hub, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":1}");
	fake_engine_complete(fe, (size_t)fake_engine_find(fe, "publish", "c")); /* kept for a */
	fake_drain(&b);
	fake_close(&a, hub);
	fake_engine_settle(fe);
	cr_expect_eq(fake_pop(&b), NULL, "a leave or join for a member that never joined");
	cr_expect_eq(hub_pending_count(hub), 0);
	fake_close(&b, hub);
}

/* What the fan-out keeps for a catching-up subscriber counts against its queue: past
 * the bound it is a slow consumer. */
Test(async, a_catching_up_subscriber_is_bounded_like_its_queue)
{
	struct fake_session pub, a;

	hub_free(hub);
	cfg.limits.send_queue_messages = 8;
	config_to_core(&cfg, &core);
	hub = hub_new_with_engine(&core, seed, fake_engine_new);
	fe = fake_engine_last();
	connect_as(&pub, "pub");
	subscribe_settled(&pub, "c");
	connect_as(&a, "a");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"c\"}");
	for (int i = 0; i < 20; i++) {
		fake_send(&pub, hub, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":%d}", i);
		fake_engine_complete(fe, (size_t)fake_engine_find(fe, "publish", "c"));
		fake_drain(&pub);
		if (a.kicks > 0)
			break;
	}
	cr_expect_eq(a.kicks, 1);
	cr_expect_eq(a.kick_code, 4008);
	fake_close(&a, hub);
	fake_engine_settle(fe);
	fake_close(&pub, hub);
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* ---- the server side ---- */

struct answer {
	int calls, rc;
	uint64_t offset;
	char epoch[24];
};

static void
on_published(void *arg, int rc, const void *result)
{
	struct answer *a = arg;
	const struct engine_published *p = result;

	a->calls++;
	a->rc = rc;
	if (rc == 0) {
		a->offset = message_offset(p->msg);
		snprintf(a->epoch, sizeof(a->epoch), "%s", message_epoch(p->msg));
	}
}

Test(async, backend_publish_answers_from_its_completion_and_can_be_cancelled)
{
	struct answer x = { 0 }, y = { 0 }, z = { 0 };
	uint64_t cx, cy, cz;

	cx = backend_publish(hub, "c", 1, "1", 1, 0, on_published, &x);
	cy = backend_publish(hub, "c", 1, "2", 1, 0, on_published, &y);
	cr_expect_neq(cx, 0);
	cr_expect_neq(cy, 0);
	cr_expect_eq(x.calls + y.calls, 0, "answered before the engine did");
	backend_cancel(hub, cy);
	fake_engine_settle(fe);
	cr_expect_eq(x.calls, 1);
	cr_expect_eq(x.rc, 0);
	cr_expect_eq(x.offset, 1);
	cr_expect_eq(y.calls, 0, "a cancelled caller was answered");
	cr_expect_eq(hub_stats(hub)->published_server, 2, "the cancelled publish still happened");
	/* A failure is an engine error, for the caller to turn into 503. */
	cz = backend_publish(hub, "c", 1, "3", 1, 0, on_published, &z);
	cr_expect_neq(cz, 0);
	fake_engine_fail(fe, 0, -EIO);
	cr_expect_eq(z.calls, 1);
	cr_expect_eq(z.rc, -EIO);
	/* A refusal answers at once, with cookie 0. */
	{
		size_t n = core.limits.max_data_size + 1;
		char *big = malloc(n);

		memset(big, '1', n);
		cr_expect_eq(backend_publish(hub, "c", 1, big, n, 0, on_published, &z), 0);
		cr_expect_eq(z.calls, 2);
		cr_expect_eq(z.rc, -EMSGSIZE);
		free(big);
	}
	cr_expect_eq(hub_pending_count(hub), 0);
}

/* Operations still in flight when the hub goes are cancelled, and answer nobody. */
Test(async, freeing_the_hub_cancels_what_is_in_flight)
{
	struct answer x = { 0 };

	cr_expect_neq(backend_publish(hub, "c", 1, "1", 1, 0, on_published, &x), 0);
	hub_free(hub);
	cr_expect_eq(x.calls, 1);
	cr_expect_eq(x.rc, -ECANCELED);
	hub = NULL;
}

/* Review findings, each failing before its fix. */

/* The engine subscribe answers late and then history answers inline: every waiting
 * subscriber is answered (the loop over them survives answers that free them). */
Test(async, history_answered_inline_after_a_late_channel_subscribe)
{
	struct fake_session a, b;

	connect_as(&a, "a");
	connect_as(&b, "b");
	fake_send(&a, hub, "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"c\"}");
	fake_send(&b, hub, "{\"type\":\"subscribe\",\"id\":3,\"channel\":\"c\"}");
	cr_assert_eq(fake_engine_queued(fe), 1);
	fake_engine_set_automatic(fe, true);
	fake_engine_complete(fe, 0);
	cr_expect_str_eq(fake_pop_type(&a), "subscribed");
	cr_expect_str_eq(fake_pop_type(&b), "subscribed");
	fake_close(&a, hub);
	fake_close(&b, hub);
}

static void
count_done(void *arg, int rc, const void *result)
{
	(void)result;
	*(int *)arg = rc + 1000;
}

/* A message of the old epoch and the reset the answer already reflects are not released
 * after a subscribed reply in the new epoch. */
Test(async, nothing_of_an_old_epoch_follows_a_subscribed_in_the_new_one)
{
	struct fake_session pub, r;
	json_t *j;
	int done = 0;

	connect_as(&pub, "pub");
	subscribe_settled(&pub, "c");
	for (int i = 1; i <= 3; i++)
		publish_settled(&pub, "c", i);
	fake_drain(&pub);
	connect_as(&r, "r");
	fake_send(&r, hub, "{\"type\":\"subscribe\",\"id\":5,\"channel\":\"c\"}");
	fake_send(&pub, hub, "{\"type\":\"publish\",\"channel\":\"c\",\"data\":4}");
	fake_engine_complete(fe, 1); /* e1:4, kept for r */
	backend_reset(hub, "c", 1, count_done, &done);
	fake_engine_complete(fe, 1); /* the reset, kept for r */
	fake_engine_complete(fe, 0); /* r's history: (e2, 0) */
	cr_expect_eq(done, 1000);
	j = pop_expect(&r, "subscribed");
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 0);
	json_decref(j);
	cr_expect_null(fake_pop(&r), "something kept from before the answer was released");
	publish_settled(&pub, "c", 5);
	j = pop_expect(&r, "message");
	cr_expect_eq(json_integer_value(json_object_get(j, "offset")), 1);
	json_decref(j);
	fake_close(&r, hub);
	fake_close(&pub, hub);
}

/* A replay sized to the queue leaves room for what was kept meanwhile. */
Test(async, replay_and_kept_frames_fit_the_queue_together)
{
	struct fake_session pub, r, c;

	hub_free(hub);
	cfg.limits.send_queue_messages = 8;
	config_to_core(&cfg, &core);
	hub = hub_new_with_engine(&core, seed, fake_engine_new);
	fe = fake_engine_last();
	connect_as(&pub, "pub");
	subscribe_settled(&pub, "c");
	for (int i = 1; i <= 10; i++) {
		publish_settled(&pub, "c", i);
		fake_drain(&pub);
	}
	connect_as(&r, "r");
	fake_send(&r, hub, "{\"type\":\"subscribe\",\"id\":5,\"channel\":\"c\",\"rewind\":7}");
	connect_as(&c, "c");
	fake_send(&c, hub, "{\"type\":\"subscribe\",\"id\":6,\"channel\":\"c\"}");
	fake_engine_complete(fe, 1); /* c joins; the join is kept for r */
	fake_engine_complete(fe, 0); /* r: reply and replay, then the join */
	cr_expect_eq(r.kicks, 0, "kicked with %d", r.kick_code);
	fake_close(&r, hub);
	fake_close(&c, hub);
	fake_close(&pub, hub);
}
