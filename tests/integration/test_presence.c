/* test_presence.c: presence, presence_stats and join/leave events (docs/protocol.md,
 * "presence") against the real server: who is listed, with which info, and which events
 * the other subscribers get when a connection subscribes, unsubscribes, closes, vanishes
 * with a TCP RST, or stops answering pings. Absence of an event is checked with a later
 * sentinel message on the same connection (frames to one connection keep their order),
 * never by sleeping.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest.h"

/* The built-in default namespace has presence and join_leave; "quiet" has presence
 * without events; "off" has neither. */
#define CONFIG "{\"namespaces\":{\"quiet\":{\"presence\":true},\"off\":{\"publish\":\"clients\"}}}"

TestSuite(presence, .fini = itest_server_down, .timeout = 30);
TestSuite(join_leave, .fini = itest_server_down, .timeout = 30);

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS

/* Asserts that the member object is client/user with info (JSON text, NULL: absent). */
static void
expect_member(const json_t *m, const char *client, const char *user, const char *info)
{
	json_t *want;

	cr_assert(json_is_object(m), "member is not an object");
	cr_expect_str_eq(json_str(m, "client"), client);
	cr_expect_str_eq(json_str(m, "user"), user);
	if (info == NULL) {
		cr_expect_null(json_object_get(m, "info"), "%s has info but connected without",
			       user);
		cr_expect_eq(json_object_size(m), 2, "client and user only");
		return;
	}
	want = json_loads(info, 0, NULL);
	cr_assert_not_null(want);
	cr_expect(json_equal(json_object_get(m, "info"), want), "%s: info differs from %s", user,
		  info);
	json_decref(want);
}

/* The next frame of c must be a join/leave event of channel for client/user. Events
 * carry client and user only, even for a connection with info. */
static void
expect_event(struct ws_client *c, const char *type, const char *channel, const char *client,
	     const char *user)
{
	json_t *e = ws_client_recv_json(c, WAIT_MS);
	char *s = e != NULL ? json_dumps(e, JSON_COMPACT) : NULL;

	cr_assert_not_null(e, "no %s of %s on %s (close code %d)", type, user, channel,
			   c->close_code);
	cr_assert_str_eq(json_str(e, "type"), type, "expected a %s of %s, got %s", type, user, s);
	cr_expect_str_eq(json_str(e, "channel"), channel, "%s", s);
	cr_expect_null(json_object_get(e, "id"), "events carry no id: %s", s);
	expect_member(json_object_get(e, "member"), client, user, NULL);
	cr_expect_eq(json_object_size(e), 3, "type, channel, member: %s", s);
	free(s);
	json_decref(e);
}

/* c publishes a sentinel to channel (which it may publish to) and must receive it next. */
static json_int_t
expect_quiet(struct ws_client *c, const char *channel, const char *who)
{
	json_int_t off = sb_publish(c, channel, "\"sentinel\"", NULL, 0);

	cr_assert_geq(off, 1, "%s: sentinel publish failed", who);
	itest_expect_sentinel(c, NULL, off, who);
	return off;
}

/* Presence members of channel as seen by c (new reference to the array). */
static json_t *
members_of(struct ws_client *c, const char *channel)
{
	json_t *r = sb_request(c, "\"type\":\"presence\",\"channel\":\"%s\"", channel), *m;

	cr_assert_str_eq(json_str(r, "type"), "presence", "presence of %s: %s", channel,
			 json_str(r, "code"));
	cr_expect_str_eq(json_str(r, "channel"), channel);
	m = json_object_get(r, "members");
	cr_assert(json_is_array(m), "members is not an array");
	json_incref(m);
	json_decref(r);
	return m;
}

/* The member of members with this client id, or NULL. */
static json_t *
find_member(json_t *members, const char *client)
{
	size_t i;
	json_t *m;

	json_array_foreach(members, i, m) if (strcmp(json_str(m, "client"), client) == 0) return m;
	return NULL;
}

static void
expect_stats(struct ws_client *c, const char *channel, json_int_t clients, json_int_t users)
{
	json_t *r = sb_request(c, "\"type\":\"presence_stats\",\"channel\":\"%s\"", channel);

	cr_assert_str_eq(json_str(r, "type"), "presence_stats", "%s", json_str(r, "code"));
	cr_expect_str_eq(json_str(r, "channel"), channel);
	cr_expect_eq(json_int(r, "clients"), clients, "%s: clients %lld", channel,
		     (long long)json_int(r, "clients"));
	cr_expect_eq(json_int(r, "users"), users, "%s: users %lld", channel,
		     (long long)json_int(r, "users"));
	json_decref(r);
}

/* Waits up to WAIT_MS for the presence of channel to have n members (a connection
 * that vanished is forgotten when the server sees it go, which no event tells a client
 * in a namespace without join_leave); asserts it gets there. Polls every 20 ms. */
static void
wait_members(struct ws_client *c, const char *channel, size_t n)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	size_t got = 0;

	for (int i = 0; i < WAIT_MS / 20; i++) {
		json_t *m = members_of(c, channel);

		got = json_array_size(m);
		json_decref(m);
		if (got == n)
			return;
		nanosleep(&tick, NULL);
	}
	cr_assert_fail("presence of %s has %zu members, not %zu", channel, got, n);
}

/* ---- presence and presence_stats ---- */

Test(presence, lists_every_subscribed_connection_with_its_info)
{
	char ca[64], cb[64], ca2[64], ce[64];
	struct ws_client *a, *b, *a2, *eve;
	json_t *m;

	itest_start(CONFIG);
	a = itest_peer("alice", "{\"name\":\"Alice\",\"n\":[1,2]}", ca);
	b = itest_peer("bob", NULL, cb);
	a2 = itest_peer("alice", "{\"name\":\"Alice on her phone\"}", ca2);
	eve = itest_peer("eve", NULL, ce);
	cr_assert_eq(sb_subscribe(a, "room"), 0);
	cr_assert_eq(sb_subscribe(b, "room"), 0);
	cr_assert_eq(sb_subscribe(a2, "room"), 0);
	/* eve is not subscribed: presence needs only the right to subscribe. */
	m = members_of(eve, "room");
	cr_expect_eq(json_array_size(m), 3, "one member per subscribed connection");
	cr_assert_not_null(find_member(m, ca));
	cr_assert_not_null(find_member(m, cb));
	cr_assert_not_null(find_member(m, ca2));
	cr_expect_null(find_member(m, ce), "eve is not subscribed");
	expect_member(find_member(m, ca), ca, "alice", "{\"name\":\"Alice\",\"n\":[1,2]}");
	expect_member(find_member(m, cb), cb, "bob", NULL);
	expect_member(find_member(m, ca2), ca2, "alice", "{\"name\":\"Alice on her phone\"}");
	json_decref(m);
	expect_stats(eve, "room", 3, 2);
	expect_stats(a, "room", 3, 2);
	ws_client_free(a);
	ws_client_free(b);
	ws_client_free(a2);
	ws_client_free(eve);
	itest_finish();
}

Test(presence, a_channel_nobody_subscribed_to_is_empty)
{
	char c1[64];
	struct ws_client *c;
	json_t *m;

	itest_start(CONFIG);
	c = itest_peer("u", NULL, c1);
	m = members_of(c, "nobody");
	cr_expect_eq(json_array_size(m), 0);
	json_decref(m);
	expect_stats(c, "nobody", 0, 0);
	/* Subscribing and unsubscribing again leaves it empty. */
	cr_assert_eq(sb_subscribe(c, "nobody"), 0);
	expect_stats(c, "nobody", 1, 1);
	cr_assert_eq(sb_unsubscribe(c, "nobody"), 0);
	expect_stats(c, "nobody", 0, 0);
	m = members_of(c, "nobody");
	cr_expect_eq(json_array_size(m), 0);
	json_decref(m);
	ws_client_free(c);
	itest_finish();
}

Test(presence, presence_off_is_forbidden)
{
	char c1[64];
	struct ws_client *c;

	itest_start(CONFIG);
	c = itest_peer("u", NULL, c1);
	cr_assert_eq(sb_subscribe(c, "off:x"), 0);
	cr_expect_eq(sb_expect_error(c, "forbidden", "\"type\":\"presence\",\"channel\":\"off:x\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"presence_stats\",\"channel\":\"off:x\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "invalid_channel",
				     "\"type\":\"presence\",\"channel\":\"a/b\""),
		     0);
	ws_client_free(c);
	itest_finish();
}

Test(presence, without_a_default_namespace_presence_is_forbidden)
{
	char c1[64];
	struct ws_client *c;

	itest_start("{\"default_namespace\":null,\"namespaces\":{\"p\":{\"presence\":true}}}");
	c = itest_peer("u", NULL, c1);
	cr_expect_eq(sb_expect_error(c, "forbidden", "\"type\":\"presence\",\"channel\":\"bare\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"presence_stats\",\"channel\":\"x:y\""),
		     0);
	expect_stats(c, "p:y", 0, 0);
	ws_client_free(c);
	itest_finish();
}

/* Like every frame, a presence reply stays within limits.max_message_size: the members
 * that fit, and "truncated":true; presence_stats still counts everybody. */
Test(presence, a_presence_reply_too_big_for_a_frame_is_truncated)
{
	enum { N = 12 };
	struct ws_client *c[N], *q;
	char cid[N][64], cq[64], info[320], user[16], *text;
	size_t len, i;
	json_t *r, *m, *members;

	itest_start("{\"limits\":{\"max_message_size\":1024}}");
	memset(info, 0, sizeof(info));
	snprintf(info, sizeof(info), "{\"bio\":\"%0250d\"}", 7);
	for (int k = 0; k < N; k++) {
		snprintf(user, sizeof(user), "user%d", k % 5);
		c[k] = itest_peer(user, info, cid[k]);
		cr_assert_eq(sb_subscribe(c[k], "crowd"), 0);
	}
	q = itest_peer("q", NULL, cq);
	cr_assert_eq(ws_client_send_text(q,
					 "{\"type\":\"presence\",\"id\":1,\"channel\":\"crowd\"}"),
		     0);
	text = ws_client_recv_text(q, WAIT_MS, &len);
	cr_assert_not_null(text);
	cr_expect_leq(len, 1024, "a presence reply of %zu bytes, over max_message_size", len);
	r = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	cr_assert_not_null(r, "invalid JSON: %.200s", text);
	cr_expect_str_eq(json_str(r, "type"), "presence");
	cr_expect(json_is_true(json_object_get(r, "truncated")),
		  "12 members of 300 bytes in 1 KiB");
	members = json_object_get(r, "members");
	cr_assert(json_is_array(members));
	cr_expect_geq(json_array_size(members), 1, "no member fitted at all");
	cr_expect_lt(json_array_size(members), N);
	json_array_foreach(members, i, m)
	{
		bool known = false;

		for (int k = 0; k < N; k++)
			known = known || strcmp(json_str(m, "client"), cid[k]) == 0;
		cr_expect(known, "unknown member %s", json_str(m, "client"));
		expect_member(m, json_str(m, "client"), json_str(m, "user"), info);
	}
	json_decref(r);
	free(text);
	expect_stats(q, "crowd", N, 5);
	/* A reply that fits says nothing of truncation. */
	r = sb_request(q, "\"type\":\"presence\",\"channel\":\"nobody\"");
	cr_expect_null(json_object_get(r, "truncated"));
	json_decref(r);
	for (int k = 0; k < N; k++)
		ws_client_free(c[k]);
	ws_client_free(q);
	itest_finish();
}

/* ---- join and leave ---- */

Test(join_leave, others_get_join_and_the_joiner_does_not)
{
	char ca[64], cb[64], cc[64];
	struct ws_client *a, *b, *c;

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, ca);
	b = itest_peer("bob", NULL, cb);
	c = itest_peer("carol", "{\"name\":\"Carol\"}", cc);
	cr_assert_eq(sb_subscribe(a, "room"), 0);
	cr_assert_eq(sb_subscribe(b, "room"), 0);
	expect_event(a, "join", "room", cb, "bob");
	cr_assert_eq(sb_subscribe(c, "room"), 0);
	expect_event(a, "join", "room", cc, "carol");
	expect_event(b, "join", "room", cc, "carol");
	/* Nothing else is pending anywhere: in particular no join of one's own. */
	{
		json_int_t off = expect_quiet(c, "room", "carol");

		itest_expect_sentinel(b, NULL, off, "bob");
		itest_expect_sentinel(a, NULL, off, "alice");
	}
	ws_client_free(a);
	ws_client_free(b);
	ws_client_free(c);
	itest_finish();
}

Test(join_leave, join_comes_before_the_joiners_first_message)
{
	char ca[64], cb[64];
	struct ws_client *a, *b;
	json_int_t off;
	json_t *m;

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, ca);
	b = itest_peer("bob", NULL, cb);
	cr_assert_eq(sb_subscribe(a, "room"), 0);
	/* Pipelined on b's connection: subscribe, then publish at once. */
	cr_assert_eq(ws_client_send_text(b,
					 "{\"type\":\"subscribe\",\"id\":1,\"channel\":\"room\"}"),
		     0);
	cr_assert_eq(ws_client_send_text(b, "{\"type\":\"publish\",\"id\":2,\"channel\":\"room\","
					    "\"data\":\"hello\"}"),
		     0);
	m = ws_client_wait_id(b, 2, WAIT_MS);
	cr_assert_str_eq(json_str(m, "type"), "published");
	off = json_int(m, "offset");
	json_decref(m);
	expect_event(a, "join", "room", cb, "bob");
	m = ws_client_recv_json(a, WAIT_MS);
	cr_expect_str_eq(json_str(m, "type"), "message");
	cr_expect_eq(json_int(m, "offset"), off);
	json_decref(m);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

Test(join_leave, unsubscribe_sends_leave_and_updates_presence)
{
	char ca[64], cb[64];
	struct ws_client *a, *b;
	json_t *m;

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, ca);
	b = itest_peer("bob", "{\"k\":1}", cb);
	cr_assert_eq(sb_subscribe(a, "room"), 0);
	cr_assert_eq(sb_subscribe(b, "room"), 0);
	expect_event(a, "join", "room", cb, "bob");
	cr_assert_eq(sb_unsubscribe(b, "room"), 0);
	expect_event(a, "leave", "room", cb, "bob");
	m = members_of(a, "room");
	cr_expect_eq(json_array_size(m), 1);
	cr_expect_not_null(find_member(m, ca));
	json_decref(m);
	expect_stats(b, "room", 1, 1);
	/* Subscribing again is a new join. */
	cr_assert_eq(sb_subscribe(b, "room"), 0);
	expect_event(a, "join", "room", cb, "bob");
	expect_quiet(a, "room", "alice");
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

/* Every way a connection can go: a close handshake, a FIN without a close frame, and
 * a TCP RST. The others get a leave each time and presence forgets it. */
Test(join_leave, a_connection_that_goes_away_leaves)
{
	enum { CLOSE, FIN, RST };
	static const char *const how[] = { "close handshake", "FIN without close", "RST" };
	char ca[64], cb[64];
	struct ws_client *a, *b;
	json_t *m;

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, ca);
	cr_assert_eq(sb_subscribe(a, "room"), 0);
	for (int way = CLOSE; way <= RST; way++) {
		b = itest_peer("bob", NULL, cb);
		cr_assert_eq(sb_subscribe(b, "room"), 0);
		expect_event(a, "join", "room", cb, "bob");
		if (way == CLOSE)
			cr_expect_eq(ws_client_close(b, WAIT_MS), 1000);
		else if (way == FIN)
			ws_client_free(b);
		else
			ws_client_abort(b);
		expect_event(a, "leave", "room", cb, "bob");
		m = members_of(a, "room");
		cr_expect_eq(json_array_size(m), 1, "after a %s", how[way]);
		cr_expect_null(find_member(m, cb), "bob still listed after a %s", how[way]);
		json_decref(m);
	}
	expect_quiet(a, "room", "alice");
	ws_client_free(a);
	itest_finish();
}

Test(join_leave, a_connection_leaves_every_channel_it_was_in)
{
	char ca[64], cb[64];
	struct ws_client *a, *b;
	bool left[2] = { false, false };

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, ca);
	b = itest_peer("bob", NULL, cb);
	cr_assert_eq(sb_subscribe(a, "one"), 0);
	cr_assert_eq(sb_subscribe(a, "two"), 0);
	cr_assert_eq(sb_subscribe(b, "one"), 0);
	cr_assert_eq(sb_subscribe(b, "two"), 0);
	cr_assert_eq(sb_subscribe(b, "quiet:x"), 0);
	expect_event(a, "join", "one", cb, "bob");
	expect_event(a, "join", "two", cb, "bob");
	ws_client_abort(b);
	/* The order of the two leaves is not specified. */
	for (int i = 0; i < 2; i++) {
		json_t *e = ws_client_recv_json(a, WAIT_MS);
		int k = strcmp(json_str(e, "channel"), "one") == 0 ? 0 : 1;

		cr_assert_str_eq(json_str(e, "type"), "leave");
		cr_expect_str_eq(json_str(json_object_get(e, "member"), "client"), cb);
		cr_expect_not(left[k], "two leaves of %s", json_str(e, "channel"));
		left[k] = true;
		json_decref(e);
	}
	expect_stats(a, "one", 1, 1);
	expect_stats(a, "two", 1, 1);
	expect_stats(a, "quiet:x", 0, 0);
	expect_quiet(a, "one", "alice");
	ws_client_free(a);
	itest_finish();
}

/* A client that stops answering WebSocket pings is dropped after idle_timeout, and that
 * is a leave like any other. */
Test(join_leave, a_silent_client_is_dropped_and_leaves)
{
	char ca[64], cb[64];
	struct ws_client *a, *b;
	json_t *m;
	int code;

	itest_start("{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":2}}");
	a = itest_peer("alice", NULL, ca);
	b = itest_peer("bob", NULL, cb);
	cr_assert_eq(sb_subscribe(a, "room"), 0);
	cr_assert_eq(sb_subscribe(b, "room"), 0);
	expect_event(a, "join", "room", cb, "bob");
	b->auto_pong = false; /* b reads nothing and answers no ping from now on */
	/* a answers pings while it waits (auto_pong), so only b times out. */
	m = ws_client_recv_json(a, 8000);
	cr_assert_not_null(m, "no leave within 8 s of a 2 s idle timeout");
	cr_expect_str_eq(json_str(m, "type"), "leave");
	cr_expect_str_eq(json_str(m, "channel"), "room");
	cr_expect_str_eq(json_str(json_object_get(m, "member"), "client"), cb);
	json_decref(m);
	m = members_of(a, "room");
	cr_expect_eq(json_array_size(m), 1);
	cr_expect_not_null(find_member(m, ca), "a, which answered pings, was dropped too");
	json_decref(m);
	code = ws_client_wait_close(b, WAIT_MS, NULL);
	cr_expect_neq(code, -1, "the server still holds the silent connection");
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

Test(join_leave, presence_without_join_leave_sends_no_events)
{
	char ca[64], cb[64];
	struct ws_client *a, *b;
	json_t *m;

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, ca);
	b = itest_peer("bob", NULL, cb);
	cr_assert_eq(sb_subscribe(a, "quiet:x"), 0);
	cr_assert_eq(sb_subscribe(b, "quiet:x"), 0);
	m = members_of(a, "quiet:x");
	cr_expect_eq(json_array_size(m), 2, "presence is on");
	json_decref(m);
	expect_quiet(a, "quiet:x", "alice after bob's subscribe");
	cr_assert_eq(sb_unsubscribe(b, "quiet:x"), 0);
	expect_quiet(a, "quiet:x", "alice after bob's unsubscribe");
	cr_assert_eq(sb_subscribe(b, "quiet:x"), 0);
	ws_client_abort(b);
	wait_members(a, "quiet:x", 1);
	expect_quiet(a, "quiet:x", "alice after bob went away");
	ws_client_free(a);
	itest_finish();
}

Test(join_leave, a_namespace_without_presence_sends_no_events)
{
	char ca[64], cb[64];
	struct ws_client *a, *b;

	itest_start(CONFIG);
	a = itest_peer("alice", NULL, ca);
	b = itest_peer("bob", NULL, cb);
	cr_assert_eq(sb_subscribe(a, "off:x"), 0);
	cr_assert_eq(sb_subscribe(b, "off:x"), 0);
	expect_quiet(a, "off:x", "alice after bob's subscribe");
	cr_assert_eq(sb_unsubscribe(b, "off:x"), 0);
	expect_quiet(a, "off:x", "alice after bob's unsubscribe");
	cr_assert_eq(sb_subscribe(b, "off:x"), 0);
	/* Without presence nothing tells when the server has seen b go, so this last check
	 * can only pass vacuously if the server is slow, never fail wrongly. */
	cr_expect_eq(ws_client_close(b, WAIT_MS), 1000);
	expect_quiet(a, "off:x", "alice after bob closed");
	ws_client_free(a);
	itest_finish();
}
