/* test_pubsub.c: the real server against docs/protocol.md: connect, subscribe,
 * unsubscribe, publish, ping; ordering and exactly-once delivery; namespace publish
 * rules; byte-exact data; subscription membership under churn (checked against a
 * model). Absence of a delivery is checked with a later sentinel on the same connection
 * (frames to one connection keep their order), never by sleeping.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "proto.h"

TestSuite(connect, .init = itest_server_up, .fini = itest_server_down, .timeout = 20);
TestSuite(pubsub, .init = itest_server_up, .fini = itest_server_down, .timeout = 30);
TestSuite(policy, .fini = itest_server_down, .timeout = 20);
TestSuite(restart, .fini = itest_server_down, .timeout = 20);
TestSuite(churn, .fini = itest_server_down, .timeout = 60);

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS

/* ---- connect ---- */

Test(connect, connected_echoes_id_and_user_and_names_the_server)
{
	struct ws_client *a = ws_client_open_ok(itest_port()), *b = ws_client_open_ok(itest_port());
	json_t *ra, *rb;

	cr_assert_not_null(a);
	cr_assert_not_null(b);
	ra = ws_client_cmd(a, "{\"type\":\"connect\",\"id\":1,\"user\":\"alice\"}");
	rb = ws_client_cmd(b, "{\"type\":\"connect\",\"id\":\"b-1\"}");
	cr_assert_not_null(ra, "no reply to connect");
	cr_assert_not_null(rb, "no reply to connect");
	cr_expect_str_eq(json_str(ra, "type"), "connected");
	cr_expect_eq(json_int(ra, "id"), 1);
	cr_expect(json_is_integer(json_object_get(ra, "id")),
		  "integer id came back as another type");
	cr_expect_str_eq(json_str(ra, "user"), "alice");
	cr_expect_str_eq(json_str(ra, "server"), "switchboard/" SWITCHBOARD_VERSION);
	cr_expect_neq(json_str(ra, "client")[0], '\0', "empty client id");
	cr_expect_str_eq(json_str(rb, "type"), "connected");
	cr_expect_str_eq(json_str(rb, "id"), "b-1");
	cr_expect_str_eq(json_str(rb, "user"), "", "absent user is \"\"");
	cr_expect(json_is_string(json_object_get(rb, "user")), "user member missing");
	cr_expect_str_neq(json_str(ra, "client"), json_str(rb, "client"), "client ids must differ");
	json_decref(ra);
	json_decref(rb);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

Test(connect, client_ids_are_unique_across_many_connections)
{
	enum { N = 20 };
	char *ids[N];

	for (int i = 0; i < N; i++) {
		struct ws_client *c = ws_client_open_ok(itest_port());
		json_t *r;

		cr_assert_not_null(c);
		r = ws_client_cmd(c, "{\"type\":\"connect\",\"id\":1}");
		cr_assert_str_eq(json_str(r, "type"), "connected");
		ids[i] = strdup(json_str(r, "client"));
		json_decref(r);
		/* Closing before the next one opens lets a server that reuses slots show it. */
		ws_client_close(c, WAIT_MS);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(ids[j], ids[i], "connections %d and %d got client %s", j,
					  i, ids[i]);
	}
	for (int i = 0; i < N; i++)
		free(ids[i]);
	itest_finish();
}

Test(connect, ping_works_before_connect)
{
	struct ws_client *c = ws_client_open_ok(itest_port());
	json_t *r;

	cr_assert_not_null(c);
	r = ws_client_cmd(c, "{\"type\":\"ping\",\"id\":5}");
	cr_expect_str_eq(json_str(r, "type"), "pong");
	cr_expect_eq(json_int(r, "id"), 5);
	json_decref(r);
	r = ws_client_cmd(c, "{\"type\":\"ping\",\"id\":\"p\"}");
	cr_expect_str_eq(json_str(r, "type"), "pong");
	cr_expect_str_eq(json_str(r, "id"), "p");
	json_decref(r);
	r = ws_client_cmd(c, "{\"type\":\"connect\",\"id\":6,\"user\":\"late\"}");
	cr_expect_str_eq(json_str(r, "type"), "connected", "connect after ping");
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

Test(connect, ping_without_id_gets_a_pong_without_id)
{
	struct ws_client *c = ws_client_open_ok(itest_port());
	json_t *r;

	cr_assert_not_null(c);
	cr_assert_eq(ws_client_send_text(c, "{\"type\":\"ping\"}"), 0);
	r = ws_client_recv_json(c, WAIT_MS);
	cr_expect_str_eq(json_str(r, "type"), "pong");
	cr_expect_null(json_object_get(r, "id"));
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

Test(connect, other_commands_before_connect_are_not_connected)
{
	struct ws_client *c = ws_client_open_ok(itest_port());
	json_t *r;

	cr_assert_not_null(c);
	cr_expect_eq(sb_expect_error(c, "not_connected",
				     "\"type\":\"subscribe\",\"channel\":\"a\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "not_connected",
				     "\"type\":\"unsubscribe\",\"channel\":\"a\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "not_connected",
				     "\"type\":\"publish\",\"channel\":\"a\",\"data\":1"),
		     0);
	/* Still open, and connect still works. */
	r = sb_request(c, "\"type\":\"connect\",\"user\":\"u\"");
	cr_expect_str_eq(json_str(r, "type"), "connected");
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

Test(connect, second_connect_is_already_connected)
{
	struct ws_client *c = sb_connect(itest_port(), "alice");
	json_t *r;

	cr_assert_not_null(c);
	cr_expect_eq(sb_expect_error(c, "already_connected",
				     "\"type\":\"connect\",\"user\":\"bob\""),
		     0);
	/* The first identity stands: messages still come from alice. */
	cr_assert_eq(sb_subscribe(c, "who"), 0);
	cr_assert_geq(sb_publish(c, "who", "1", NULL, 0), 1);
	r = sb_next_message(c, WAIT_MS);
	cr_expect_str_eq(json_str(json_object_get(r, "from"), "user"), "alice");
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

/* ---- subscribe / publish ---- */

Test(pubsub, subscribe_and_unsubscribe_echo_id_and_channel)
{
	struct ws_client *c = sb_connect(itest_port(), "u");
	json_t *r;

	cr_assert_not_null(c);
	r = ws_client_cmd(c, "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"chat:lobby\"}");
	cr_expect_str_eq(json_str(r, "type"), "subscribed");
	cr_expect_eq(json_int(r, "id"), 2);
	cr_expect_str_eq(json_str(r, "channel"), "chat:lobby");
	json_decref(r);
	r = ws_client_cmd(c, "{\"type\":\"unsubscribe\",\"id\":\"u3\",\"channel\":\"chat:lobby\"}");
	cr_expect_str_eq(json_str(r, "type"), "unsubscribed");
	cr_expect_str_eq(json_str(r, "id"), "u3");
	cr_expect_str_eq(json_str(r, "channel"), "chat:lobby");
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

Test(pubsub, published_reply_has_offset_and_epoch)
{
	struct ws_client *c = sb_connect(itest_port(), "u");
	json_t *r;
	char epoch[64];

	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "chat:lobby"), 0);
	r = ws_client_cmd(c, "{\"type\":\"publish\",\"id\":4,\"channel\":\"chat:lobby\","
			     "\"data\":{\"text\":\"hi\"}}");
	cr_assert_str_eq(json_str(r, "type"), "published");
	cr_expect_eq(json_int(r, "id"), 4);
	cr_expect_str_eq(json_str(r, "channel"), "chat:lobby");
	cr_expect_eq(json_int(r, "offset"), 1, "a new channel starts at offset 1");
	cr_expect_neq(json_str(r, "epoch")[0], '\0', "empty epoch");
	snprintf(epoch, sizeof(epoch), "%s", json_str(r, "epoch"));
	json_decref(r);
	r = ws_client_cmd(c,
			  "{\"type\":\"publish\",\"id\":5,\"channel\":\"chat:lobby\",\"data\":2}");
	cr_expect_eq(json_int(r, "offset"), 2);
	cr_expect_str_eq(json_str(r, "epoch"), epoch, "epoch changed between two publishes");
	json_decref(r);
	ws_client_free(c);
	itest_finish();
}

Test(pubsub, offsets_are_per_channel)
{
	struct ws_client *c = sb_connect(itest_port(), "u");

	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "one"), 0);
	cr_assert_eq(sb_subscribe(c, "two"), 0);
	cr_expect_eq(sb_publish(c, "one", "1", NULL, 0), 1);
	cr_expect_eq(sb_publish(c, "one", "1", NULL, 0), 2);
	cr_expect_eq(sb_publish(c, "two", "1", NULL, 0), 1, "offsets of another channel moved");
	cr_expect_eq(sb_publish(c, "one", "1", NULL, 0), 3);
	ws_client_free(c);
	itest_finish();
}

Test(pubsub, pipelined_publishes_are_acknowledged_in_order)
{
	enum { N = 100 };
	struct ws_client *c = sb_connect(itest_port(), "u");

	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "pipe"), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(ws_client_sendf(c,
					     "{\"type\":\"publish\",\"id\":%d,\"channel\":\"pipe\","
					     "\"data\":%d}",
					     500 + i, i),
			     0);
	for (int i = 0, acks = 0, msgs = 0; acks < N || msgs < N; i++) {
		json_t *r = ws_client_recv_json(c, WAIT_MS);

		cr_assert_not_null(r, "%d acks and %d messages only", acks, msgs);
		if (strcmp(json_str(r, "type"), "published") == 0) {
			cr_assert_eq(json_int(r, "id"), 500 + acks, "acks out of order");
			cr_assert_eq(json_int(r, "offset"), acks + 1);
			acks++;
		} else {
			cr_assert_str_eq(json_str(r, "type"), "message");
			cr_assert_eq(json_int(r, "offset"), msgs + 1, "messages out of order");
			msgs++;
		}
		json_decref(r);
	}
	ws_client_free(c);
	itest_finish();
}

Test(pubsub, message_frame_matches_the_documented_shape)
{
	struct ws_client *c = sb_connect(itest_port(), "alice");
	json_t *r, *m, *from;

	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "chat:lobby"), 0);
	r = ws_client_cmd(c, "{\"type\":\"publish\",\"id\":4,\"channel\":\"chat:lobby\","
			     "\"data\":{\"text\":\"hi\"}}");
	cr_assert_str_eq(json_str(r, "type"), "published");
	m = sb_next_message(c, WAIT_MS);
	cr_assert_not_null(m, "the publisher, subscribed, gets its own message");
	cr_expect_str_eq(json_str(m, "channel"), "chat:lobby");
	cr_expect_eq(json_int(m, "offset"), json_int(r, "offset"));
	cr_expect_null(json_object_get(m, "id"), "message frames carry no id");
	cr_expect(json_is_object(json_object_get(m, "data")));
	cr_expect_str_eq(json_str(json_object_get(m, "data"), "text"), "hi");
	from = json_object_get(m, "from");
	cr_assert(json_is_object(from), "no from object");
	cr_expect_neq(json_str(from, "client")[0], '\0');
	cr_expect_str_eq(json_str(from, "user"), "alice");
	json_decref(r);
	json_decref(m);
	ws_client_free(c);
	itest_finish();
}

Test(pubsub, from_names_the_publishers_client_and_user)
{
	struct ws_client *pub = ws_client_open_ok(itest_port());
	struct ws_client *sub = sb_connect(itest_port(), "sub");
	json_t *r, *m;
	char client[128];

	cr_assert_not_null(pub);
	cr_assert_not_null(sub);
	r = ws_client_cmd(pub, "{\"type\":\"connect\",\"id\":1,\"user\":\"pub\"}");
	snprintf(client, sizeof(client), "%s", json_str(r, "client"));
	json_decref(r);
	cr_assert_eq(sb_subscribe(sub, "room"), 0);
	cr_assert_eq(sb_subscribe(pub, "room"), 0);
	cr_assert_geq(sb_publish(pub, "room", "\"x\"", NULL, 0), 1);
	m = sb_next_message(sub, WAIT_MS);
	cr_assert_not_null(m);
	cr_expect_str_eq(json_str(json_object_get(m, "from"), "client"), client);
	cr_expect_str_eq(json_str(json_object_get(m, "from"), "user"), "pub");
	json_decref(m);
	ws_client_free(pub);
	ws_client_free(sub);
	itest_finish();
}

/* Three subscribers and a subscribed publisher; 200 messages. */
Test(pubsub, every_subscriber_gets_every_message_once_in_order)
{
	enum { SUBS = 3, MSGS = 200 };
	struct ws_client *pub = sb_connect(itest_port(), "pub"), *subs[SUBS];
	json_int_t first = -1;
	char epoch[64] = "", e[64];

	cr_assert_not_null(pub);
	for (int i = 0; i < SUBS; i++) {
		subs[i] = sb_connect(itest_port(), "sub");
		cr_assert_not_null(subs[i]);
		cr_assert_eq(sb_subscribe(subs[i], "feed:order"), 0);
	}
	cr_assert_eq(sb_subscribe(pub, "feed:order"), 0);
	for (int n = 0; n < MSGS; n++) {
		char data[64];
		json_int_t off;

		snprintf(data, sizeof(data), "{\"n\":%d}", n);
		off = sb_publish(pub, "feed:order", data, e, sizeof(e));
		cr_assert_geq(off, 1, "publish %d failed", n);
		if (n == 0) {
			first = off;
			snprintf(epoch, sizeof(epoch), "%s", e);
		}
		cr_assert_eq(off, first + n, "published offsets are not consecutive at %d", n);
		cr_assert_str_eq(e, epoch, "epoch changed at %d", n);
		/* The publisher's own copies wait in its queue; drain them as we go. */
	}
	for (int i = 0; i <= SUBS; i++) {
		struct ws_client *c = i < SUBS ? subs[i] : pub;

		for (int n = 0; n < MSGS; n++) {
			json_t *m = sb_next_message(c, WAIT_MS);

			cr_assert_not_null(m, "client %d: message %d missing", i, n);
			cr_assert_str_eq(json_str(m, "channel"), "feed:order");
			cr_assert_eq(json_int(m, "offset"), first + n,
				     "client %d: offset %lld at %d", i,
				     (long long)json_int(m, "offset"), n);
			cr_assert_eq(json_int(json_object_get(m, "data"), "n"), n,
				     "client %d: data out of order", i);
			json_decref(m);
		}
	}
	/* Exactly once: the next thing each receives is the sentinel, not a repeat. */
	cr_assert_eq(sb_publish(pub, "feed:order", "\"end\"", NULL, 0), first + MSGS);
	for (int i = 0; i <= SUBS; i++) {
		struct ws_client *c = i < SUBS ? subs[i] : pub;
		json_t *m = sb_next_message(c, WAIT_MS);

		cr_assert_not_null(m);
		cr_expect_eq(json_int(m, "offset"), first + MSGS, "client %d: duplicate or extra",
			     i);
		cr_expect_str_eq(json_string_value(json_object_get(m, "data")), "end");
		json_decref(m);
		cr_expect_eq(ws_client_pending(c), 0, "client %d has extra frames", i);
	}
	for (int i = 0; i < SUBS; i++)
		ws_client_free(subs[i]);
	ws_client_free(pub);
	itest_finish();
}

/* Subscribing or unsubscribing while messages stream: delivery starts exactly at the
 * subscribed reply and stops exactly at the unsubscribed reply, with no gap between. */
Test(pubsub, joining_and_leaving_mid_stream_cut_at_the_replies)
{
	enum { N = 400 };
	struct ws_client *pub = sb_connect(itest_port(), "pub");
	struct ws_client *join = sb_connect(itest_port(), "join");
	struct ws_client *leave = sb_connect(itest_port(), "leave");
	json_int_t prev = -1;
	bool replied = false;
	json_t *m;

	cr_assert(pub && join && leave);
	cr_assert_eq(sb_subscribe(pub, "stream"), 0);
	cr_assert_eq(sb_subscribe(leave, "stream"), 0);
	cr_assert_eq(sb_subscribe(leave, "after"), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(ws_client_sendf(pub,
					     "{\"type\":\"publish\",\"channel\":\"stream\","
					     "\"data\":%d}",
					     i),
			     0);
		if (i == N / 2) {
			cr_assert_eq(ws_client_send_text(join, "{\"type\":\"subscribe\",\"id\":1,"
							       "\"channel\":\"stream\"}"),
				     0);
			cr_assert_eq(ws_client_send_text(leave,
							 "{\"type\":\"unsubscribe\",\"id\":2,"
							 "\"channel\":\"stream\"}"),
				     0);
		}
	}
	/* The joiner: the reply, then contiguous offsets up to N (it gets no join of its own). */
	m = ws_client_recv_json(join, WAIT_MS);
	cr_assert_str_eq(json_str(m, "type"), "subscribed", "a message came before the reply");
	json_decref(m);
	while (prev != N) {
		m = sb_next_message(join, WAIT_MS);
		cr_assert_not_null(m, "the joiner stopped at offset %lld", (long long)prev);
		cr_assert(prev < 0 || json_int(m, "offset") == prev + 1, "gap after %lld",
			  (long long)prev);
		prev = json_int(m, "offset");
		json_decref(m);
	}
	/* The leaver: contiguous offsets from 1, then the reply, then nothing of the channel.
	 * The default namespace has join_leave: the joiner's join may come on the way. */
	prev = 0;
	while (!replied) {
		m = sb_recv_skip_events(leave, WAIT_MS);
		cr_assert_not_null(m);
		if (strcmp(json_str(m, "type"), "unsubscribed") == 0) {
			replied = true;
		} else {
			cr_assert_eq(json_int(m, "offset"), prev + 1, "gap after %lld",
				     (long long)prev);
			prev++;
		}
		json_decref(m);
	}
	cr_assert_eq(sb_subscribe(pub, "after"), 0);
	cr_assert_geq(sb_publish(pub, "after", "\"sentinel\"", NULL, 0), 1);
	m = sb_next_message(leave, WAIT_MS);
	cr_expect_str_eq(json_str(m, "channel"), "after", "a message arrived after unsubscribed");
	json_decref(m);
	ws_client_free(pub);
	ws_client_free(join);
	ws_client_free(leave);
	itest_finish();
}

Test(pubsub, unsubscribed_and_other_channel_clients_receive_nothing)
{
	struct ws_client *pub = sb_connect(itest_port(), "pub");
	struct ws_client *sub = sb_connect(itest_port(), "sub");
	struct ws_client *gone = sb_connect(itest_port(), "gone");
	struct ws_client *other = sb_connect(itest_port(), "other");
	json_t *m;

	cr_assert(pub && sub && gone && other);
	cr_assert_eq(sb_subscribe(pub, "news"), 0);
	cr_assert_eq(sb_subscribe(sub, "news"), 0);
	cr_assert_eq(sb_subscribe(gone, "news"), 0);
	cr_assert_eq(sb_unsubscribe(gone, "news"), 0);
	cr_assert_eq(sb_subscribe(gone, "sentinel:gone"), 0);
	cr_assert_eq(sb_subscribe(other, "sports"), 0);
	cr_assert_eq(sb_subscribe(pub, "sentinel:gone"), 0);
	cr_assert_eq(sb_subscribe(pub, "sports"), 0);
	for (int n = 0; n < 50; n++)
		cr_assert_geq(sb_publish(pub, "news", "{\"x\":1}", NULL, 0), 1);
	cr_assert_geq(sb_publish(pub, "sentinel:gone", "\"s1\"", NULL, 0), 1);
	cr_assert_geq(sb_publish(pub, "sports", "\"s2\"", NULL, 0), 1);

	m = sb_next_message(gone, WAIT_MS);
	cr_assert_not_null(m);
	cr_expect_str_eq(json_str(m, "channel"), "sentinel:gone",
			 "an unsubscribed client received a message of the channel it left");
	json_decref(m);
	m = sb_next_message(other, WAIT_MS);
	cr_assert_not_null(m);
	cr_expect_str_eq(json_str(m, "channel"), "sports",
			 "a client received a message of a channel it never subscribed to");
	json_decref(m);
	for (int n = 0; n < 50; n++) {
		m = sb_next_message(sub, WAIT_MS);
		cr_assert_not_null(m, "subscriber lost message %d", n);
		json_decref(m);
	}
	ws_client_free(pub);
	ws_client_free(sub);
	ws_client_free(gone);
	ws_client_free(other);
	itest_finish();
}

Test(pubsub, resubscribing_receives_again)
{
	struct ws_client *c = sb_connect(itest_port(), "u");
	struct ws_client *keep = sb_connect(itest_port(), "keep");
	json_t *m;

	cr_assert(c && keep);
	cr_assert_eq(sb_subscribe(keep, "loop"), 0); /* keeps the channel alive */
	cr_assert_eq(sb_subscribe(c, "loop"), 0);
	cr_assert_eq(sb_unsubscribe(c, "loop"), 0);
	cr_assert_eq(sb_subscribe(c, "loop"), 0);
	cr_assert_geq(sb_publish(c, "loop", "\"again\"", NULL, 0), 1);
	m = sb_next_message(c, WAIT_MS);
	cr_assert_not_null(m);
	cr_expect_str_eq(json_string_value(json_object_get(m, "data")), "again");
	json_decref(m);
	ws_client_free(c);
	ws_client_free(keep);
	itest_finish();
}

/* Without history a channel's state lives only while it has subscribers (the built-in
 * default namespace keeps history, so this server's default namespace has none; the
 * history suite checks that retained history keeps the state). */
Test(policy, epoch_changes_and_offsets_restart_when_a_channel_is_dropped)
{
	struct ws_client *c;
	char e1[64], e2[64];

	itest_start("{\"default_namespace\":{\"publish\":\"subscribers\"}}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "temp"), 0);
	cr_assert_eq(sb_publish(c, "temp", "1", e1, sizeof(e1)), 1);
	cr_assert_eq(sb_publish(c, "temp", "2", NULL, 0), 2);
	cr_assert_eq(sb_unsubscribe(c, "temp"), 0); /* no subscribers left: state dropped */
	cr_assert_eq(sb_subscribe(c, "temp"), 0);
	cr_expect_eq(sb_publish(c, "temp", "3", e2, sizeof(e2)), 1, "offsets restart at 1");
	cr_expect_str_neq(e1, e2, "a new run of offsets must have a new epoch");
	ws_client_free(c);
	itest_finish();
}

Test(restart, a_restarted_server_has_a_new_epoch_and_new_client_ids)
{
	struct ws_client *c;
	char e1[64], e2[64], id1[128];
	json_t *r;

	itest_start(NULL);
	c = ws_client_open_ok(itest_port());
	cr_assert_not_null(c);
	r = ws_client_cmd(c, "{\"type\":\"connect\",\"id\":1}");
	snprintf(id1, sizeof(id1), "%s", json_str(r, "client"));
	json_decref(r);
	cr_assert_eq(sb_subscribe(c, "persist"), 0);
	cr_assert_eq(sb_publish(c, "persist", "1", e1, sizeof(e1)), 1);
	ws_client_free(c);
	cr_assert_eq(server_fixture_stop(&itest_server, 0), 0, "server: %s", itest_server.error);

	itest_start(NULL);
	c = ws_client_open_ok(itest_port());
	cr_assert_not_null(c);
	r = ws_client_cmd(c, "{\"type\":\"connect\",\"id\":1}");
	cr_expect_str_neq(json_str(r, "client"), id1, "client id reused after a restart");
	json_decref(r);
	cr_assert_eq(sb_subscribe(c, "persist"), 0);
	cr_assert_eq(sb_publish(c, "persist", "1", e2, sizeof(e2)), 1);
	cr_expect_str_neq(e1, e2, "same epoch after a restart");
	ws_client_free(c);
	itest_finish();
}

Test(pubsub, a_client_that_disconnects_does_not_disturb_the_others)
{
	struct ws_client *pub = sb_connect(itest_port(), "pub");
	struct ws_client *sub = sb_connect(itest_port(), "sub");
	struct ws_client *quitter = sb_connect(itest_port(), "quit");
	json_t *m;

	cr_assert(pub && sub && quitter);
	cr_assert_eq(sb_subscribe(pub, "c"), 0);
	cr_assert_eq(sb_subscribe(sub, "c"), 0);
	cr_assert_eq(sb_subscribe(quitter, "c"), 0);
	ws_client_free(quitter); /* no close handshake */
	for (int n = 0; n < 20; n++)
		cr_assert_geq(sb_publish(pub, "c", "0", NULL, 0), 1);
	for (int n = 0; n < 20; n++) {
		m = sb_next_message(sub, WAIT_MS);
		cr_assert_not_null(m);
		json_decref(m);
	}
	ws_client_free(pub);
	ws_client_free(sub);
	itest_finish();
}

Test(pubsub, replies_come_in_command_order)
{
	enum { N = 60 };
	struct ws_client *c = sb_connect(itest_port(), "u");

	cr_assert_not_null(c);
	/* Pipelined: every command is sent before any reply is read. */
	for (int i = 0; i < N; i++) {
		switch (i % 3) {
		case 0:
			cr_assert_eq(ws_client_sendf(c, "{\"type\":\"ping\",\"id\":%d}", 1000 + i),
				     0);
			break;
		case 1:
			cr_assert_eq(ws_client_sendf(c,
						     "{\"type\":\"subscribe\",\"id\":%d,"
						     "\"channel\":\"o%d\"}",
						     1000 + i, i),
				     0);
			break;
		default:
			cr_assert_eq(ws_client_sendf(c,
						     "{\"type\":\"unsubscribe\",\"id\":%d,"
						     "\"channel\":\"nope%d\"}",
						     1000 + i, i),
				     0);
			break;
		}
	}
	for (int i = 0; i < N; i++) {
		json_t *r = ws_client_recv_json(c, WAIT_MS);

		cr_assert_not_null(r, "reply %d missing", i);
		cr_assert_eq(json_int(r, "id"), 1000 + i, "reply %d has id %lld", i,
			     (long long)json_int(r, "id"));
		json_decref(r);
	}
	ws_client_free(c);
	itest_finish();
}

/* ---- data passthrough ---- */

static char *
fmt_data(const char *value)
{
	char *s;

	cr_assert_geq(asprintf(&s, "\"data\":%s", value), 0);
	return s;
}

Test(pubsub, data_reaches_subscribers_byte_for_byte)
{
	static const char *const values[] = {
		"{\"p\":0.1,\"n\":1e2}",
		"{ \"spaced\" :  [ 1 ,2 ] }",
		"1E+2",
		"-0",
		"0.10",
		"12345678901234567890e-20",
		"\"caf\\u00e9 \xc3\xa9 \\ud83d\\ude00\"",
		"{\"s\":\"}{][\\\"\\\\\",\"t\":\"\\\\\"}",
		"[true,false,null]",
		"null",
		"\"\"",
		"{}",
	};
	struct ws_client *pub = sb_connect(itest_port(), "pub");
	struct ws_client *sub = sb_connect(itest_port(), "sub");

	cr_assert(pub && sub);
	cr_assert_eq(sb_subscribe(sub, "raw"), 0);
	cr_assert_eq(sb_subscribe(pub, "raw"), 0);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *start;
		size_t len, dlen;
		char *text, *expect;

		cr_assert_geq(sb_publish(pub, "raw", values[i], NULL, 0), 1, "%s", values[i]);
		/* sub got pub's join first (the default namespace has join_leave). */
		text = sb_recv_text_skip_events(sub, WAIT_MS, &len);
		cr_assert_not_null(text);
		cr_assert_eq(proto_find_member(text, len, "data", &start, &dlen), 0, "%s", text);
		cr_expect(dlen == strlen(values[i]) && memcmp(start, values[i], dlen) == 0,
			  "sent %s, subscriber got %.*s", values[i], (int)dlen, start);
		/* The same, without trusting proto_find_member: the exact member text. */
		cr_expect_not_null(strstr(text, expect = fmt_data(values[i])), "%s not in %s",
				   expect, text);
		free(expect);
		free(text);
	}
	ws_client_free(pub);
	ws_client_free(sub);
	itest_finish();
}

Test(pubsub, data_with_an_escaped_nul_is_delivered)
{
	static const char value[] = "{\"s\":\"a\\u0000b\"}";
	struct ws_client *c = sb_connect(itest_port(), "u");
	const char *start;
	size_t len, dlen;
	char *text;

	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "nul"), 0);
	/* Any JSON value may be published, and "\u0000" is valid JSON. */
	cr_assert_eq(sb_publish(c, "nul", value, NULL, 0), 1);
	text = ws_client_recv_text(c, WAIT_MS, &len);
	cr_assert_not_null(text);
	cr_assert_eq(proto_find_member(text, len, "data", &start, &dlen), 0);
	cr_expect(dlen == strlen(value) && memcmp(start, value, dlen) == 0, "got %s", text);
	free(text);
	ws_client_free(c);
	itest_finish();
}

Test(pubsub, large_data_within_limits_is_delivered_intact)
{
	struct ws_client *pub = sb_connect(itest_port(), "pub");
	struct ws_client *sub = sb_connect(itest_port(), "sub");
	size_t n = 61440 - 2, len, dlen; /* a string value of exactly max_data_size bytes */
	char *data = malloc(n + 3), *text;
	const char *start;

	cr_assert(pub && sub && data);
	data[0] = '"';
	for (size_t i = 0; i < n; i++)
		data[1 + i] = (char)('a' + i % 26);
	data[n + 1] = '"';
	data[n + 2] = '\0';
	cr_assert_eq(sb_subscribe(sub, "big"), 0);
	cr_assert_eq(sb_subscribe(pub, "big"), 0);
	cr_assert_geq(sb_publish(pub, "big", data, NULL, 0), 1);
	text = sb_recv_text_skip_events(sub, WAIT_MS, &len); /* after pub's join */
	cr_assert_not_null(text);
	cr_expect_leq(len, 65536, "a delivered frame is over the 64 KiB frame limit");
	cr_assert_eq(proto_find_member(text, len, "data", &start, &dlen), 0);
	cr_expect(dlen == strlen(data) && memcmp(start, data, dlen) == 0, "large data corrupted");
	free(text);
	free(data);
	ws_client_free(pub);
	ws_client_free(sub);
	itest_finish();
}

/* ---- publish rules ---- */

Test(policy, default_rule_lets_only_subscribers_publish)
{
	struct ws_client *c;
	json_t *r;

	itest_start(NULL);
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	r = sb_request(c, "\"type\":\"publish\",\"channel\":\"lobby\",\"data\":1");
	cr_expect_str_eq(json_str(r, "type"), "error");
	cr_expect_str_eq(json_str(r, "code"), "forbidden");
	cr_expect_not_null(strstr(json_str(r, "message"), "subscribers"),
			   "the refusal must name the rule: \"%s\"", json_str(r, "message"));
	json_decref(r);
	r = sb_request(c, "\"type\":\"publish\",\"channel\":\"chat:lobby\",\"data\":1");
	cr_expect_str_eq(json_str(r, "code"), "forbidden",
			 "unconfigured namespaces use the default");
	json_decref(r);
	cr_assert_eq(sb_subscribe(c, "lobby"), 0);
	cr_expect_geq(sb_publish(c, "lobby", "1", NULL, 0), 1, "a subscriber may publish");
	cr_assert_eq(sb_unsubscribe(c, "lobby"), 0);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"lobby\","
				     "\"data\":1"),
		     0, "after unsubscribing, no longer");
	ws_client_free(c);
	itest_finish();
}

Test(policy, clients_rule_lets_anyone_connected_publish)
{
	struct ws_client *pub, *sub;
	json_t *m;

	itest_start("{\"namespaces\":{\"open\":{\"publish\":\"clients\"},"
		    "\"ro\":{\"publish\":\"none\"}}}");
	pub = sb_connect(itest_port(), "pub");
	sub = sb_connect(itest_port(), "sub");
	cr_assert(pub && sub);
	cr_assert_eq(sb_subscribe(sub, "open:x"), 0);
	cr_expect_eq(sb_publish(pub, "open:x", "\"hello\"", NULL, 0), 1,
		     "a non-subscriber may publish");
	m = sb_next_message(sub, WAIT_MS);
	cr_assert_not_null(m);
	cr_expect_str_eq(json_string_value(json_object_get(m, "data")), "hello");
	json_decref(m);
	cr_expect_eq(sb_publish(pub, "open:nobody", "1", NULL, 0), 1,
		     "publishing to a channel with no subscribers is allowed too");
	ws_client_free(pub);
	ws_client_free(sub);
	itest_finish();
}

Test(policy, none_rule_refuses_every_client)
{
	struct ws_client *c;
	json_t *r;

	itest_start("{\"namespaces\":{\"open\":{\"publish\":\"clients\"},"
		    "\"ro\":{\"publish\":\"none\"}}}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "ro:news"), 0, "subscribing to a read-only namespace is fine");
	r = sb_request(c, "\"type\":\"publish\",\"channel\":\"ro:news\",\"data\":1");
	cr_expect_str_eq(json_str(r, "code"), "forbidden", "even a subscriber may not publish");
	cr_expect_not_null(strstr(json_str(r, "message"), "none"),
			   "the refusal must name the rule: \"%s\"", json_str(r, "message"));
	json_decref(r);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"bare\","
				     "\"data\":1"),
		     0, "bare names keep the default rule");
	ws_client_free(c);
	itest_finish();
}

Test(policy, without_default_namespace_unconfigured_namespaces_are_forbidden)
{
	struct ws_client *c;

	itest_start(
		"{\"namespaces\":{\"chat\":{\"publish\":\"clients\"}},\"default_namespace\":null}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"subscribe\",\"channel\":\"other:x\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "forbidden", "\"type\":\"subscribe\",\"channel\":\"bare\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"other:x\","
				     "\"data\":1"),
		     0);
	cr_expect_eq(sb_subscribe(c, "chat:x"), 0);
	cr_expect_eq(sb_publish(c, "chat:y", "1", NULL, 0), 1);
	ws_client_free(c);
	itest_finish();
}

Test(policy, default_namespace_rule_applies_to_unconfigured_namespaces)
{
	struct ws_client *c;

	itest_start("{\"default_namespace\":{\"publish\":\"clients\"},"
		    "\"namespaces\":{\"strict\":{\"publish\":\"subscribers\"}}}");
	c = sb_connect(itest_port(), "u");
	cr_assert_not_null(c);
	cr_expect_eq(sb_publish(c, "anything:x", "1", NULL, 0), 1);
	cr_expect_eq(sb_publish(c, "bare", "1", NULL, 0), 1);
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"strict:x\","
				     "\"data\":1"),
		     0);
	ws_client_free(c);
	itest_finish();
}

Test(policy, anonymous_off_refuses_connect)
{
	struct ws_client *c;

	itest_start("{\"auth\":{\"anonymous\":false}}");
	c = ws_client_open_ok(itest_port());
	cr_assert_not_null(c);
	/* Without a token there is nobody to admit: unauthorized (docs/protocol.md, connect). */
	cr_expect_eq(sb_expect_error(c, "unauthorized", "\"type\":\"connect\",\"user\":\"alice\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "unauthorized", "\"type\":\"connect\""), 0,
		     "the connection stays open and may retry");
	cr_expect_eq(sb_expect_error(c, "not_connected",
				     "\"type\":\"subscribe\",\"channel\":\"a\""),
		     0, "a refused connect leaves the connection unconnected");
	ws_client_free(c);
	itest_finish();
}

/* ---- membership under churn ---- */

/* Reads c's messages up to the sentinel on its own channel; returns the bit set of
 * churn channels (data "ch" member) received, -1 on a repeat or anything unexpected. */
static int
drain_round(struct ws_client *c, const char *self, int round)
{
	int got = 0;

	for (;;) {
		json_t *m = sb_next_message(c, WAIT_MS);
		const json_t *d = json_object_get(m, "data");
		int bit;

		if (m == NULL)
			return -1;
		if (strcmp(json_str(m, "channel"), self) == 0) {
			json_decref(m);
			return got;
		}
		bit = 1 << (int)json_int(d, "ch");
		if (json_int(d, "round") != round || (got & bit)) {
			fprintf(stderr, "churn: unexpected message %s round %lld\n",
				json_str(m, "channel"), (long long)json_int(d, "round"));
			json_decref(m);
			return -1;
		}
		got |= bit;
		json_decref(m);
	}
}

/* Random subscribes and unsubscribes across a few channels; after every few, a message
 * to every channel must reach exactly the connections subscribed to it, as a model of
 * the subscriptions says. Also catches a session left behind in a channel it left. */
Test(churn, random_subscription_churn_keeps_delivery_exact)
{
	enum { CLIENTS = 5, CHANNELS = 4, ROUNDS = 60, OPS = 4 };
	struct ws_client *pub, *c[CLIENTS];
	unsigned model[CLIENTS] = { 0 }, seed = 20261124;
	char name[32];

	itest_start("{\"namespaces\":{\"churn\":{\"publish\":\"clients\"},"
		    "\"self\":{\"publish\":\"clients\"}}}");
	pub = sb_connect(itest_port(), "pub");
	cr_assert_not_null(pub);
	for (int i = 0; i < CLIENTS; i++) {
		c[i] = sb_connect(itest_port(), "churn");
		cr_assert_not_null(c[i]);
		snprintf(name, sizeof(name), "self:%d", i);
		cr_assert_eq(sb_subscribe(c[i], name), 0);
	}
	for (int round = 0; round < ROUNDS; round++) {
		for (int op = 0; op < OPS; op++) {
			int i = (int)(rand_r(&seed) % CLIENTS), k = (int)(rand_r(&seed) % CHANNELS);

			snprintf(name, sizeof(name), "churn:%d", k);
			if (model[i] & (1u << k))
				cr_assert_eq(sb_unsubscribe(c[i], name), 0, "round %d", round);
			else
				cr_assert_eq(sb_subscribe(c[i], name), 0, "round %d", round);
			model[i] ^= 1u << k;
		}
		for (int k = 0; k < CHANNELS; k++) {
			char data[64];

			snprintf(name, sizeof(name), "churn:%d", k);
			snprintf(data, sizeof(data), "{\"round\":%d,\"ch\":%d}", round, k);
			cr_assert_geq(sb_publish(pub, name, data, NULL, 0), 1);
		}
		for (int i = 0; i < CLIENTS; i++) {
			snprintf(name, sizeof(name), "self:%d", i);
			cr_assert_geq(sb_publish(pub, name, "\"end\"", NULL, 0), 1);
		}
		for (int i = 0; i < CLIENTS; i++) {
			int got;

			snprintf(name, sizeof(name), "self:%d", i);
			got = drain_round(c[i], name, round);
			cr_assert_eq(got, (int)model[i],
				     "round %d: client %d subscribed to %#x received %#x", round, i,
				     model[i], got);
		}
	}
	for (int i = 0; i < CLIENTS; i++)
		ws_client_free(c[i]);
	ws_client_free(pub);
	itest_finish();
}

/* The shortest sequence that the churn test above found to break the two-way
 * subscription index (a session leaving its last subscription while another member
 * moves into its slot). */
Test(churn, unsubscribing_in_this_order_keeps_every_member)
{
	struct ws_client *a, *b, *c, *pub;
	json_t *m;

	itest_start("{\"namespaces\":{\"n\":{\"publish\":\"clients\"}}}");
	a = sb_connect(itest_port(), "a");
	b = sb_connect(itest_port(), "b");
	c = sb_connect(itest_port(), "c");
	pub = sb_connect(itest_port(), "pub");
	cr_assert(a && b && c && pub);
	cr_assert_eq(sb_subscribe(c, "n:y"), 0);
	cr_assert_eq(sb_subscribe(b, "n:y"), 0);
	cr_assert_eq(sb_subscribe(a, "n:x"), 0);
	cr_assert_eq(sb_subscribe(b, "n:x"), 0);
	cr_assert_eq(sb_unsubscribe(a, "n:x"), 0);
	cr_assert_eq(sb_unsubscribe(b, "n:x"), 0);
	cr_assert_eq(sb_unsubscribe(b, "n:y"), 0);
	cr_assert_eq(sb_subscribe(b, "n:b"), 0);
	cr_assert_geq(sb_publish(pub, "n:y", "\"to c\"", NULL, 0), 1);
	cr_assert_geq(sb_publish(pub, "n:b", "\"to b\"", NULL, 0), 1);
	m = sb_next_message(c, WAIT_MS);
	cr_expect_str_eq(json_str(m, "channel"), "n:y", "c, still subscribed to n:y, got nothing");
	json_decref(m);
	m = sb_next_message(b, WAIT_MS);
	cr_expect_str_eq(json_str(m, "channel"), "n:b", "b got a message of n:y after leaving it");
	json_decref(m);
	/* If b was left behind in n:y, publishing there after b is gone touches freed memory. */
	ws_client_close(b, WAIT_MS);
	cr_expect_geq(sb_publish(pub, "n:y", "\"again\"", NULL, 0), 1);
	m = sb_next_message(c, WAIT_MS);
	cr_expect_str_eq(json_str(m, "channel"), "n:y");
	json_decref(m);
	ws_client_free(a);
	ws_client_free(c);
	ws_client_free(pub);
	itest_finish();
}
