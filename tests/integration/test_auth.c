/* test_auth.c: tokens and permissions (docs/protocol.md: connect, refresh, private
 * namespaces, publish rules) against the real server with tokens minted here
 * (tests/support/token.h): identity from the token, refusals of tokens that do not
 * verify, ?token= in the URL, private namespaces admitted by a "channels" claim or a
 * channel token, the "publish" claim, allow_anonymous, publish "none", and the expiry
 * of a connection's token (error token_expired, close 4001) with and without refresh.
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "token.h"

#define SECRET "switchboard-test-secret-0123456789"
#define OTHER_SECRET "not-the-secret"

/* leeway 0: expiry is exact to the second. */
#define JWT "\"auth\":{\"jwt\":{\"hmac_secret\":\"" SECRET "\",\"leeway\":0}}"
#define NAMESPACES                                                                                 \
	"\"namespaces\":{"                                                                         \
	"\"secret\":{\"publish\":\"clients\",\"private\":true,\"presence\":true,"                  \
	"\"history_size\":10},"                                                                    \
	"\"members\":{\"publish\":\"clients\",\"allow_anonymous\":false,\"presence\":true,"        \
	"\"history_size\":5},"                                                                     \
	"\"ro\":{\"publish\":\"none\"},"                                                           \
	"\"chat\":{\"publish\":\"clients\",\"presence\":true,\"join_leave\":true},"                \
	"\"news\":{\"publish\":\"clients\"}}"
#define CONFIG "{" JWT "," NAMESPACES "}"

TestSuite(token, .fini = itest_server_down, .timeout = 30);
TestSuite(grants, .fini = itest_server_down, .timeout = 30);
TestSuite(expiry, .fini = itest_server_down, .timeout = 30);

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS

/* An HS256 token under SECRET with the printf-formatted claims (free() it). */
#define TOK(...) must(token_hs256(SECRET, __VA_ARGS__))

static char *
must(char *token)
{
	cr_assert_not_null(token, "cannot mint a token");
	return token;
}

/* The reply to connect with token (new reference). */
static json_t *
connect_with(struct ws_client *c, const char *token)
{
	return sb_request(c, "\"type\":\"connect\",\"token\":\"%s\"", token);
}

/* A client connected with token; the connected reply goes to *reply if not NULL. */
static struct ws_client *
token_client(const char *token, json_t **reply)
{
	struct ws_client *c = sb_connect_token(itest_port(), token, reply);

	cr_assert_not_null(c, "connect with a valid token failed");
	return c;
}

/* The reply to a subscribe with a channel token (new reference). */
static json_t *
subscribe_token(struct ws_client *c, const char *channel, const char *token)
{
	return sb_request(c, "\"type\":\"subscribe\",\"channel\":\"%s\",\"token\":\"%s\"", channel,
			  token);
}

static void
expect_type(json_t *r, const char *type, const char *what)
{
	char *s = r != NULL ? json_dumps(r, JSON_COMPACT) : NULL;

	cr_expect_str_eq(json_str(r, "type"), type, "%s: %s", what, s != NULL ? s : "no reply");
	free(s);
}

static void
expect_code(json_t *r, const char *code, const char *what)
{
	char *s = r != NULL ? json_dumps(r, JSON_COMPACT) : NULL;

	cr_expect_str_eq(json_str(r, "type"), "error", "%s: %s", what, s != NULL ? s : "no reply");
	cr_expect_str_eq(json_str(r, "code"), code, "%s: %s", what, s != NULL ? s : "no reply");
	cr_expect(json_is_integer(json_object_get(r, "id")), "%s: the id was not echoed", what);
	free(s);
}

/* ---- connect with a token ---- */

Test(token, the_token_decides_user_and_info)
{
	int64_t exp = token_now() + 3600;
	char *t = TOK("{\"sub\":\"alice\",\"exp\":%lld,\"info\":{\"name\":\"Alice\",\"roles\":["
		      "\"admin\"]}}",
		      (long long)exp);
	struct ws_client *a, *b;
	json_t *r, *m, *want;
	char client[64];

	itest_start(CONFIG);
	a = ws_client_open_ok(itest_port());
	cr_assert_not_null(a);
	/* The command's own user and info are ignored when a token is present. */
	r = sb_request(a,
		       "\"type\":\"connect\",\"user\":\"mallory\",\"info\":{\"name\":\"M\"},"
		       "\"token\":\"%s\"",
		       t);
	expect_type(r, "connected", "connect with a token");
	cr_expect_str_eq(json_str(r, "user"), "alice", "user is the token's sub");
	cr_expect(json_is_integer(json_object_get(r, "expires")), "no expires with an exp claim");
	cr_expect_eq(json_int(r, "expires"), exp);
	snprintf(client, sizeof(client), "%s", json_str(r, "client"));
	json_decref(r);
	cr_assert_eq(sb_subscribe(a, "chat:room"), 0);
	b = sb_connect(itest_port(), "bob");
	cr_assert_not_null(b);
	r = sb_request(b, "\"type\":\"presence\",\"channel\":\"chat:room\"");
	m = json_array_get(json_object_get(r, "members"), 0);
	cr_expect_str_eq(json_str(m, "client"), client);
	cr_expect_str_eq(json_str(m, "user"), "alice");
	want = json_loads("{\"name\":\"Alice\",\"roles\":[\"admin\"]}", 0, NULL);
	cr_expect(json_equal(json_object_get(m, "info"), want), "info is the token's info claim");
	json_decref(want);
	json_decref(r);
	/* Messages name the token's user too. */
	cr_assert_geq(sb_publish(a, "chat:room", "1", NULL, 0), 1);
	m = sb_next_message(a, WAIT_MS);
	cr_expect_str_eq(json_str(json_object_get(m, "from"), "user"), "alice");
	json_decref(m);
	cr_expect_eq(sb_expect_error(a, "already_connected",
				     "\"type\":\"connect\",\"token\":\"%s\"", t),
		     0);
	free(t);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

Test(token, without_exp_there_is_no_expires)
{
	char *t = TOK("{\"sub\":\"alice\"}");
	json_t *r;
	struct ws_client *c;

	itest_start(CONFIG);
	c = token_client(t, &r);
	cr_expect_str_eq(json_str(r, "user"), "alice");
	cr_expect_null(json_object_get(r, "expires"));
	json_decref(r);
	free(t);
	ws_client_free(c);
	itest_finish();
}

Test(token, claims_at_their_limits_are_accepted)
{
	int64_t exp = token_now() + 600;
	char sub[256], info[4200];
	struct ws_client *c;
	char *t;
	json_t *r;

	/* sub of 255 bytes; info of exactly 4096 bytes as compact JSON; a fractional exp;
	 * claims Switchboard does not use. */
	memset(sub, 's', 255), sub[255] = '\0';
	memset(info, 'i', 4096 - 8), info[4096 - 8] = '\0';
	t = TOK("{\"sub\":\"%s\",\"info\":{\"k\":\"%s\"},\"exp\":%lld.5,\"iat\":%lld,"
		"\"iss\":\"backend\",\"aud\":[\"x\"]}",
		sub, info, (long long)exp, (long long)exp - 600);
	itest_start(CONFIG);
	c = token_client(t, &r);
	cr_expect_str_eq(json_str(r, "user"), sub);
	cr_expect_eq(json_int(r, "expires"), exp, "expires of exp %lld.5", (long long)exp);
	json_decref(r);
	free(t);
	ws_client_free(c);
	itest_finish();
}

/* Every way a token can fail verification: unauthorized, with the id, and the connection
 * stays open for another try. */
Test(token, tokens_that_do_not_verify_are_unauthorized)
{
	int64_t now = token_now();
	char *bad[20], big[4200], sub256[257];
	size_t n = 0;
	struct ws_client *c;
	char *good;
	json_t *r;

	bad[n++] = must(token_hs256(OTHER_SECRET, "{\"sub\":\"alice\",\"exp\":%lld}",
				    (long long)now + 600));
	bad[n++] =
		must(token_sign("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}", NULL));
	bad[n++] = must(token_sign("{\"alg\":\"none\"}", "{\"sub\":\"alice\"}", SECRET));
	bad[n++] = must(
		token_sign("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}", SECRET));
	bad[n++] = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)now - 60);   /* expired */
	bad[n++] = TOK("{\"sub\":\"alice\",\"nbf\":%lld}", (long long)now + 3600); /* not yet */
	bad[n++] = TOK("{\"sub\":\"alice\",\"exp\":\"tomorrow\"}");
	bad[n++] = TOK("{\"exp\":%lld}", (long long)now + 600); /* no sub */
	bad[n++] = TOK("{\"sub\":42}");
	bad[n++] = TOK("{\"sub\":\"\"}");
	memset(sub256, 's', 256), sub256[256] = '\0';
	bad[n++] = TOK("{\"sub\":\"%s\"}", sub256); /* > 255 bytes */
	memset(big, 'i', sizeof(big) - 1), big[sizeof(big) - 1] = '\0';
	bad[n++] = TOK("{\"sub\":\"alice\",\"info\":{\"k\":\"%s\"}}", big); /* info > 4 KiB */
	bad[n++] = TOK("{\"sub\":\"alice\",\"publish\":[\"chat:*\",7]}");
	bad[n++] = TOK("{\"sub\":\"alice\",\"info\":\"Alice\"}");
	bad[n++] = TOK("{\"sub\":\"alice\",\"channels\":\"secret:*\"}");
	bad[n++] = TOK("[\"sub\",\"alice\"]");
	bad[n++] = strdup("not-a-token");
	bad[n++] = strdup("a.b.c");
	bad[n++] = strdup("");

	itest_start(CONFIG);
	c = ws_client_open_ok(itest_port());
	cr_assert_not_null(c);
	cr_assert_leq(n, sizeof(bad) / sizeof(bad[0]));
	for (size_t i = 0; i < n; i++) {
		cr_assert_not_null(bad[i]);
		r = connect_with(c, bad[i]);
		expect_code(r, "unauthorized", bad[i]);
		cr_expect_neq(json_str(r, "message")[0], '\0');
		json_decref(r);
		free(bad[i]);
	}
	cr_expect_eq(sb_expect_error(c, "not_connected",
				     "\"type\":\"subscribe\",\"channel\":\"news:x\""),
		     0, "a refused connect must not connect");
	good = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)now + 600);
	r = connect_with(c, good);
	expect_type(r, "connected", "a good token after bad ones");
	cr_expect_str_eq(json_str(r, "user"), "alice");
	json_decref(r);
	free(good);
	ws_client_free(c);
	itest_finish();
}

Test(token, the_token_may_come_in_the_url)
{
	char *alice = TOK("{\"sub\":\"alice\"}"), *bob = TOK("{\"sub\":\"bob\"}");
	char *forged = must(token_hs256(OTHER_SECRET, "{\"sub\":\"alice\"}"));
	char path[1024];
	struct ws_client *c;
	json_t *r;

	itest_start(CONFIG);
	snprintf(path, sizeof(path), "/ws?token=%s", alice);
	c = ws_client_open(itest_port(), path, NULL);
	cr_assert(c != NULL && c->upgraded, "upgrade with ?token= refused");
	r = sb_request(c, "\"type\":\"connect\",\"user\":\"mallory\"");
	expect_type(r, "connected", "connect with the URL token");
	cr_expect_str_eq(json_str(r, "user"), "alice");
	json_decref(r);
	ws_client_free(c);

	/* A token in connect wins over the URL's. */
	c = ws_client_open(itest_port(), path, NULL);
	cr_assert(c != NULL && c->upgraded);
	r = connect_with(c, bob);
	cr_expect_str_eq(json_str(r, "user"), "bob");
	json_decref(r);
	ws_client_free(c);

	/* Other query members and the root path are fine too. */
	snprintf(path, sizeof(path), "/?v=1&token=%s", alice);
	c = ws_client_open(itest_port(), path, NULL);
	cr_assert(c != NULL && c->upgraded);
	r = sb_request(c, "\"type\":\"connect\"");
	cr_expect_str_eq(json_str(r, "user"), "alice");
	json_decref(r);
	ws_client_free(c);

	/* A URL token that does not verify: unauthorized, and a good token still works. */
	snprintf(path, sizeof(path), "/ws?token=%s", forged);
	c = ws_client_open(itest_port(), path, NULL);
	cr_assert(c != NULL && c->upgraded);
	cr_expect_eq(sb_expect_error(c, "unauthorized", "\"type\":\"connect\",\"user\":\"alice\""),
		     0);
	r = connect_with(c, bob);
	expect_type(r, "connected", "a good token after a bad URL token");
	json_decref(r);
	ws_client_free(c);
	free(alice), free(bob), free(forged);
	itest_finish();
}

Test(token, without_auth_jwt_every_token_is_unauthorized)
{
	char *t = TOK("{\"sub\":\"alice\"}");
	struct ws_client *c;
	json_t *r;

	itest_start(NULL);
	c = ws_client_open_ok(itest_port());
	cr_assert_not_null(c);
	r = connect_with(c, t);
	expect_code(r, "unauthorized", "no auth.jwt configured");
	json_decref(r);
	r = sb_request(c, "\"type\":\"connect\",\"user\":\"anon\"");
	expect_type(r, "connected", "anonymous connect still works");
	json_decref(r);
	free(t);
	ws_client_free(c);
	itest_finish();
}

Test(token, anonymous_off_admits_only_tokens)
{
	char *t = TOK("{\"sub\":\"alice\"}");
	struct ws_client *c;
	json_t *r;

	itest_start("{\"auth\":{\"anonymous\":false,\"jwt\":{\"hmac_secret\":\"" SECRET "\"}}}");
	c = ws_client_open_ok(itest_port());
	cr_assert_not_null(c);
	cr_expect_eq(sb_expect_error(c, "unauthorized", "\"type\":\"connect\""), 0);
	cr_expect_eq(sb_expect_error(c, "unauthorized", "\"type\":\"connect\",\"user\":\"alice\""),
		     0);
	r = connect_with(c, t);
	expect_type(r, "connected", "a token with anonymous access off");
	cr_expect_str_eq(json_str(r, "user"), "alice");
	json_decref(r);
	free(t);
	ws_client_free(c);
	itest_finish();
}

Test(token, a_public_key_that_cannot_be_loaded_stops_the_server)
{
	struct server_fixture f;

	cr_expect_neq(server_fixture_start(&f,
					   "{\"auth\":{\"jwt\":{\"public_key\":"
					   "\"/nonexistent/switchboard-jwt.pem\"}}}",
					   NULL, NULL),
		      0, "the server started without its public key");
	server_fixture_kill(&f);
}

/* ---- private namespaces ---- */

Test(grants, a_private_namespace_refuses_clients_without_a_grant)
{
	char *plain = TOK("{\"sub\":\"alice\"}");
	struct ws_client *anon, *tok;

	itest_start(CONFIG);
	anon = sb_connect(itest_port(), "anon");
	tok = token_client(plain, NULL);
	cr_assert_not_null(anon);
	for (int i = 0; i < 2; i++) {
		struct ws_client *c = i == 0 ? anon : tok;

		cr_expect_eq(sb_expect_error(c, "forbidden",
					     "\"type\":\"subscribe\",\"channel\":\"secret:x\""),
			     0);
		cr_expect_eq(sb_expect_error(c, "forbidden",
					     "\"type\":\"presence\",\"channel\":\"secret:x\""),
			     0);
		cr_expect_eq(
			sb_expect_error(c, "forbidden",
					"\"type\":\"presence_stats\",\"channel\":\"secret:x\""),
			0);
		cr_expect_eq(sb_expect_error(c, "forbidden",
					     "\"type\":\"history\",\"channel\":\"secret:x\""),
			     0);
		cr_expect_eq(sb_subscribe(c, "news:x"), 0, "public namespaces are unaffected");
	}
	free(plain);
	ws_client_free(anon);
	ws_client_free(tok);
	itest_finish();
}

Test(grants, a_channels_claim_admits_matching_channels_only)
{
	char *t = TOK(
		"{\"sub\":\"alice\",\"channels\":[\"secret:team-*\",\"secret:r?\",\"news:*\"]}");
	char *wide = TOK("{\"sub\":\"bob\",\"channels\":[\"secret:*\"]}");
	struct ws_client *a, *b;
	json_t *r;

	itest_start(CONFIG);
	a = token_client(t, NULL);
	b = token_client(wide, NULL);
	cr_expect_eq(sb_subscribe(a, "secret:team-a"), 0);
	cr_expect_eq(sb_subscribe(a, "secret:team-"), 0, "* matches the empty run");
	cr_expect_eq(sb_subscribe(a, "secret:r1"), 0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"subscribe\",\"channel\":\"secret:r12\""),
		     0, "? is one character");
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"subscribe\",\"channel\":\"secret:other\""),
		     0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"subscribe\",\"channel\":\"secret:team\""),
		     0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"presence\",\"channel\":\"secret:other\""),
		     0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"history\",\"channel\":\"secret:other\""),
		     0);
	/* A channels claim that does not match is refused in public namespaces too. */
	cr_expect_eq(sb_subscribe(a, "news:x"), 0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"subscribe\",\"channel\":\"chat:x\""),
		     0);
	/* presence and history need the same grant, and have it. */
	r = sb_request(a, "\"type\":\"presence_stats\",\"channel\":\"secret:team-a\"");
	expect_type(r, "presence_stats", "presence with a channels grant");
	cr_expect_eq(json_int(r, "clients"), 1);
	json_decref(r);
	cr_expect_geq(sb_publish(a, "secret:team-a", "{\"n\":1}", NULL, 0), 1);
	r = sb_request(a, "\"type\":\"history\",\"channel\":\"secret:team-a\"");
	expect_type(r, "history", "history with a channels grant");
	cr_expect_eq(json_array_size(json_object_get(r, "messages")), 1);
	json_decref(r);
	/* * matches ':' too. */
	cr_expect_eq(sb_subscribe(b, "secret:a:b"), 0);
	cr_expect_eq(sb_subscribe(b, "secret:team-a"), 0);
	free(t), free(wide);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

Test(grants, a_channel_token_admits_its_channel_only)
{
	int64_t now = token_now();
	char *conn = TOK("{\"sub\":\"alice\"}");
	char *ok = TOK("{\"sub\":\"alice\",\"channel\":\"secret:room1\",\"exp\":%lld}",
		       (long long)now + 600);
	char *other_channel = TOK("{\"sub\":\"alice\",\"channel\":\"secret:room2\",\"exp\":%lld}",
				  (long long)now + 600);
	char *other_user = TOK("{\"sub\":\"bob\",\"channel\":\"secret:room1\",\"exp\":%lld}",
			       (long long)now + 600);
	char *no_exp = TOK("{\"sub\":\"alice\",\"channel\":\"secret:room1\"}");
	char *expired = TOK("{\"sub\":\"alice\",\"channel\":\"secret:room1\",\"exp\":%lld}",
			    (long long)now - 60);
	char *forged = must(token_hs256(OTHER_SECRET,
					"{\"sub\":\"alice\",\"channel\":\"secret:room1\","
					"\"exp\":%lld}",
					(long long)now + 600));
	char *pattern = TOK("{\"sub\":\"alice\",\"channel\":\"secret:*\",\"exp\":%lld}",
			    (long long)now + 600);
	char *carol = TOK("{\"sub\":\"carol\",\"channel\":\"secret:room1\",\"exp\":%lld}",
			  (long long)now + 600);
	struct ws_client *a, *anon;
	json_t *r;

	itest_start(CONFIG);
	a = token_client(conn, NULL);
	anon = sb_connect(itest_port(), "carol");
	cr_assert_not_null(anon);
	r = subscribe_token(a, "secret:room1", other_channel);
	expect_code(r, "forbidden", "a channel token of another channel");
	json_decref(r);
	r = subscribe_token(a, "secret:room1", other_user);
	expect_code(r, "forbidden", "a channel token of another user");
	json_decref(r);
	r = subscribe_token(a, "secret:room1", no_exp);
	expect_code(r, "forbidden", "a channel token without exp");
	json_decref(r);
	r = subscribe_token(a, "secret:room1", expired);
	expect_code(r, "unauthorized", "an expired channel token");
	json_decref(r);
	r = subscribe_token(a, "secret:room1", forged);
	expect_code(r, "unauthorized", "a forged channel token");
	json_decref(r);
	r = subscribe_token(a, "secret:room1", pattern);
	expect_code(r, "forbidden", "a channel token's channel is a name, not a pattern");
	json_decref(r);
	r = subscribe_token(a, "secret:room1", ok);
	expect_type(r, "subscribed", "a good channel token");
	json_decref(r);
	r = subscribe_token(a, "secret:room2", ok);
	expect_code(r, "forbidden", "a channel token used for another channel");
	json_decref(r);
	/* An anonymous client could claim any user: channel tokens need a connection that
	 * was itself identified by a token. */
	r = subscribe_token(anon, "secret:room1", carol);
	expect_code(r, "forbidden", "an anonymous client with a channel token");
	json_decref(r);
	/* The subscription is a grant for presence and history of that channel only. */
	r = sb_request(a, "\"type\":\"presence\",\"channel\":\"secret:room1\"");
	expect_type(r, "presence", "presence on the channel of a channel token");
	cr_expect_eq(json_array_size(json_object_get(r, "members")), 1);
	json_decref(r);
	cr_expect_geq(sb_publish(a, "secret:room1", "{\"n\":1}", NULL, 0), 1);
	r = sb_request(a, "\"type\":\"history\",\"channel\":\"secret:room1\"");
	expect_type(r, "history", "history on the channel of a channel token");
	json_decref(r);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"presence\",\"channel\":\"secret:room2\""),
		     0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"history\",\"channel\":\"secret:room2\""),
		     0);
	/* After unsubscribing the grant is gone. */
	cr_assert_eq(sb_unsubscribe(a, "secret:room1"), 0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"presence\",\"channel\":\"secret:room1\""),
		     0);
	/* A channel token is not a connection token. */
	r = sb_request(a, "\"type\":\"refresh\",\"token\":\"%s\"", ok);
	expect_code(r, "unauthorized", "refresh with a channel token");
	json_decref(r);
	free(conn), free(ok), free(other_channel), free(other_user), free(no_exp), free(expired);
	free(forged), free(carol), free(pattern);
	ws_client_free(a);
	ws_client_free(anon);
	itest_finish();
}

Test(grants, a_channel_token_cannot_connect)
{
	char *t = TOK("{\"sub\":\"alice\",\"channel\":\"secret:room1\",\"exp\":%lld}",
		      (long long)token_now() + 600);
	char path[1024];
	struct ws_client *c;
	json_t *r;

	itest_start(CONFIG);
	c = ws_client_open_ok(itest_port());
	cr_assert_not_null(c);
	r = connect_with(c, t);
	expect_code(r, "unauthorized", "connect with a channel token");
	json_decref(r);
	ws_client_free(c);
	snprintf(path, sizeof(path), "/ws?token=%s", t);
	c = ws_client_open(itest_port(), path, NULL);
	cr_assert(c != NULL && c->upgraded);
	cr_expect_eq(sb_expect_error(c, "unauthorized", "\"type\":\"connect\""), 0,
		     "a channel token in the URL");
	free(t);
	ws_client_free(c);
	itest_finish();
}

/* In a private namespace whose publish is "clients", publishing needs the grant too. */
Test(grants, publishing_to_a_private_namespace_needs_the_grant)
{
	char *plain = TOK("{\"sub\":\"alice\"}");
	char *granted = TOK("{\"sub\":\"bob\",\"channels\":[\"secret:x\"]}");
	char *chan = TOK("{\"sub\":\"carol\",\"channel\":\"secret:y\",\"exp\":%lld}",
			 (long long)token_now() + 600);
	char *carol = TOK("{\"sub\":\"carol\"}");
	struct ws_client *anon, *a, *b, *c;
	json_t *r;

	itest_start(CONFIG);
	anon = sb_connect(itest_port(), "anon");
	a = token_client(plain, NULL);
	b = token_client(granted, NULL);
	c = token_client(carol, NULL);
	cr_assert_not_null(anon);
	cr_expect_eq(sb_expect_error(anon, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"secret:x\",\"data\":1"),
		     0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"secret:x\",\"data\":1"),
		     0);
	cr_expect_eq(sb_publish(b, "secret:x", "1", NULL, 0), 1, "a channels grant may publish");
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"secret:y\",\"data\":1"),
		     0);
	r = subscribe_token(c, "secret:y", chan);
	expect_type(r, "subscribed", "carol's channel token");
	json_decref(r);
	cr_expect_eq(sb_publish(c, "secret:y", "1", NULL, 0), 1, "a subscription is a grant");
	free(plain), free(granted), free(chan), free(carol);
	ws_client_free(anon);
	ws_client_free(a);
	ws_client_free(b);
	ws_client_free(c);
	itest_finish();
}

Test(grants, a_refresh_with_narrower_grants_keeps_existing_subscriptions)
{
	char *wide = TOK("{\"sub\":\"alice\",\"channels\":[\"secret:*\"]}");
	char *narrow = TOK("{\"sub\":\"alice\",\"channels\":[\"secret:b\"]}");
	char *pubtok = TOK("{\"sub\":\"pub\",\"channels\":[\"secret:*\"]}");
	struct ws_client *a, *pub;
	json_t *r, *m;

	itest_start(CONFIG);
	a = token_client(wide, NULL);
	pub = token_client(pubtok, NULL);
	cr_assert_eq(sb_subscribe(a, "secret:a"), 0);
	r = sb_request(a, "\"type\":\"refresh\",\"token\":\"%s\"", narrow);
	expect_type(r, "refreshed", "refresh with narrower grants");
	json_decref(r);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"subscribe\",\"channel\":\"secret:c\""),
		     0, "the new grants apply to new subscriptions");
	cr_expect_eq(sb_subscribe(a, "secret:b"), 0);
	cr_assert_eq(sb_publish(pub, "secret:a", "\"still here\"", NULL, 0), 1);
	m = sb_next_message(a, WAIT_MS);
	cr_expect_str_eq(json_str(m, "channel"), "secret:a", "the old subscription ended");
	cr_expect_str_eq(json_string_value(json_object_get(m, "data")), "still here");
	json_decref(m);
	free(wide), free(narrow), free(pubtok);
	ws_client_free(a);
	ws_client_free(pub);
	itest_finish();
}

Test(grants, a_publish_claim_restricts_publishing)
{
	char *t = TOK("{\"sub\":\"alice\",\"publish\":[\"chat:*\",\"ro:*\"]}");
	char *free_pub = TOK("{\"sub\":\"bob\"}");
	struct ws_client *a, *b;
	json_t *r;

	itest_start(CONFIG);
	a = token_client(t, NULL);
	b = token_client(free_pub, NULL);
	cr_expect_geq(sb_publish(a, "chat:x", "1", NULL, 0), 1);
	r = sb_request(a, "\"type\":\"publish\",\"channel\":\"news:x\",\"data\":1");
	expect_code(r, "forbidden", "publish outside the publish claim");
	cr_expect_not_null(strstr(json_str(r, "message"), "publish"),
			   "the refusal must name the rule: %s", json_str(r, "message"));
	json_decref(r);
	/* Subscribing is not what the claim restricts. */
	cr_expect_eq(sb_subscribe(a, "news:x"), 0);
	/* A claim cannot open a namespace where no client may publish. */
	r = sb_request(a, "\"type\":\"publish\",\"channel\":\"ro:x\",\"data\":1");
	expect_code(r, "forbidden", "publish none with a matching publish claim");
	json_decref(r);
	cr_expect_geq(sb_publish(b, "news:x", "1", NULL, 0), 1, "no claim, no restriction");
	free(t), free(free_pub);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

Test(grants, allow_anonymous_false_needs_a_token)
{
	char *t = TOK("{\"sub\":\"alice\"}");
	struct ws_client *anon, *a;
	json_t *m;

	itest_start(CONFIG);
	anon = sb_connect(itest_port(), "anon");
	a = token_client(t, NULL);
	cr_assert_not_null(anon);
	cr_expect_eq(sb_expect_error(anon, "forbidden",
				     "\"type\":\"subscribe\",\"channel\":\"members:x\""),
		     0);
	cr_expect_eq(sb_expect_error(anon, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"members:x\",\"data\":1"),
		     0);
	cr_expect_eq(sb_expect_error(anon, "forbidden",
				     "\"type\":\"presence\",\"channel\":\"members:x\""),
		     0, "presence needs the right to subscribe");
	cr_expect_eq(sb_expect_error(anon, "forbidden",
				     "\"type\":\"history\",\"channel\":\"members:x\""),
		     0, "history needs the right to subscribe");
	cr_expect_eq(sb_subscribe(a, "members:x"), 0);
	cr_expect_eq(sb_publish(a, "members:x", "\"hi\"", NULL, 0), 1);
	m = sb_next_message(a, WAIT_MS);
	cr_expect_str_eq(json_string_value(json_object_get(m, "data")), "hi");
	json_decref(m);
	m = sb_request(a, "\"type\":\"history\",\"channel\":\"members:x\"");
	expect_type(m, "history", "history with a token");
	cr_expect_eq(json_array_size(json_object_get(m, "messages")), 1);
	json_decref(m);
	m = sb_request(a, "\"type\":\"presence_stats\",\"channel\":\"members:x\"");
	expect_type(m, "presence_stats", "presence with a token");
	cr_expect_eq(json_int(m, "clients"), 1);
	json_decref(m);
	cr_expect_eq(sb_subscribe(anon, "news:x"), 0,
		     "other namespaces still admit anonymous clients");
	free(t);
	ws_client_free(anon);
	ws_client_free(a);
	itest_finish();
}

Test(grants, publish_none_refuses_clients_with_tokens_too)
{
	char *t = TOK("{\"sub\":\"alice\",\"channels\":[\"ro:*\"]}");
	struct ws_client *a;

	itest_start(CONFIG);
	a = token_client(t, NULL);
	cr_expect_eq(sb_subscribe(a, "ro:feed"), 0);
	cr_expect_eq(sb_expect_error(a, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"ro:feed\",\"data\":1"),
		     0);
	free(t);
	ws_client_free(a);
	itest_finish();
}

/* ---- expiry and refresh ---- */

/* Waits (up to 8 s) for what the server sends when the token expires: first the error
 * token_expired without an id, then (checked by the caller) the 4001 close. Neither may
 * come before exp. */
static void
expect_token_expired(struct ws_client *c, int64_t exp)
{
	json_t *r = ws_client_recv_json(c, 8000);

	cr_assert(r != NULL || c->close_code != WS_CLOSE_NONE,
		  "neither token_expired nor a close within 6 s of exp");
	cr_expect_geq(token_now(), exp, "the server acted before the token's exp");
	cr_expect_not_null(r, "no error token_expired before the close (close code %d)",
			   c->close_code);
	if (r == NULL)
		return;
	cr_expect_str_eq(json_str(r, "type"), "error");
	cr_expect_str_eq(json_str(r, "code"), "token_expired");
	cr_expect_null(json_object_get(r, "id"), "token_expired answers no command");
	json_decref(r);
}

/* The connection's token expires: error token_expired (no id), then close 4001, and the
 * other subscribers see it leave. */
Test(expiry, an_expired_token_closes_the_connection_with_4001)
{
	int64_t exp = token_now() + 2;
	char *t = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp);
	struct ws_client *a, *b;
	char client[64];
	json_t *r;
	int code;

	itest_start(CONFIG);
	b = sb_connect(itest_port(), "bob");
	cr_assert_not_null(b);
	cr_assert_eq(sb_subscribe(b, "chat:room"), 0);
	a = token_client(t, &r);
	cr_expect_eq(json_int(r, "expires"), exp);
	snprintf(client, sizeof(client), "%s", json_str(r, "client"));
	json_decref(r);
	cr_assert_eq(sb_subscribe(a, "chat:room"), 0);
	r = ws_client_recv_json(b, WAIT_MS);
	cr_expect_str_eq(json_str(r, "type"), "join");
	json_decref(r);

	expect_token_expired(a, exp);
	code = ws_client_wait_close(a, WAIT_MS, NULL);
	cr_expect_eq(code, 4001, "close code %d", code);
	cr_expect_str_eq(a->close_reason, "token expired");

	r = ws_client_recv_json(b, WAIT_MS);
	cr_expect_str_eq(json_str(r, "type"), "leave");
	cr_expect_str_eq(json_str(json_object_get(r, "member"), "client"), client);
	json_decref(r);
	free(t);
	ws_client_free(a);
	ws_client_free(b);
	itest_finish();
}

/* A refresh before exp keeps the connection open past the first exp. */
Test(expiry, a_refreshed_connection_stays_open_past_the_first_exp)
{
	int64_t exp1 = token_now() + 2, exp2 = exp1 + 3600;
	char *t1 = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp1);
	char *t2 = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp2);
	struct ws_client *a;
	struct ws_msg m;
	json_t *r;

	itest_start(CONFIG);
	a = token_client(t1, NULL);
	r = sb_request(a, "\"type\":\"refresh\",\"token\":\"%s\"", t2);
	expect_type(r, "refreshed", "refresh with the same sub");
	cr_expect_eq(json_int(r, "expires"), exp2);
	cr_expect(json_is_integer(json_object_get(r, "id")), "refreshed echoes the id");
	json_decref(r);
	/* Two seconds past the first exp: nothing may arrive (bounded waits of 250 ms). */
	while (token_now() < exp1 + 2) {
		int rc = ws_client_recv(a, &m, 250);

		cr_assert_eq(rc, 0, "got %s (close code %d) after a refresh",
			     rc == 1 ? m.data : "nothing", a->close_code);
	}
	r = sb_request(a, "\"type\":\"ping\"");
	expect_type(r, "pong", "still open past the first exp");
	json_decref(r);
	free(t1), free(t2);
	ws_client_free(a);
	itest_finish();
}

/* refresh replaces the expiry, also with an earlier one. */
Test(expiry, a_refresh_to_an_earlier_exp_expires_then)
{
	int64_t exp = token_now() + 2;
	char *t1 = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp + 3600);
	char *t2 = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)exp);
	struct ws_client *a;
	json_t *r;

	itest_start(CONFIG);
	a = token_client(t1, NULL);
	r = sb_request(a, "\"type\":\"refresh\",\"token\":\"%s\"", t2);
	cr_expect_eq(json_int(r, "expires"), exp);
	json_decref(r);
	expect_token_expired(a, exp);
	cr_expect_eq(ws_client_wait_close(a, WAIT_MS, NULL), 4001);
	free(t1), free(t2);
	ws_client_free(a);
	itest_finish();
}

Test(expiry, refresh_refusals)
{
	int64_t now = token_now();
	char *t = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)now + 3600);
	char *bob = TOK("{\"sub\":\"bob\",\"exp\":%lld}", (long long)now + 7200);
	char *expired = TOK("{\"sub\":\"alice\",\"exp\":%lld}", (long long)now - 60);
	char *forged = must(token_hs256(OTHER_SECRET, "{\"sub\":\"alice\",\"exp\":%lld}",
					(long long)now + 7200));
	struct ws_client *a, *anon;
	json_t *r;

	itest_start(CONFIG);
	a = token_client(t, NULL);
	anon = sb_connect(itest_port(), "anon");
	cr_assert_not_null(anon);
	r = sb_request(a, "\"type\":\"refresh\",\"token\":\"%s\"", bob);
	expect_code(r, "forbidden", "refresh with another sub");
	json_decref(r);
	r = sb_request(a, "\"type\":\"refresh\",\"token\":\"%s\"", expired);
	expect_code(r, "unauthorized", "refresh with an expired token");
	json_decref(r);
	r = sb_request(a, "\"type\":\"refresh\",\"token\":\"%s\"", forged);
	expect_code(r, "unauthorized", "refresh with a forged token");
	json_decref(r);
	cr_expect_eq(sb_expect_error(a, "bad_request", "\"type\":\"refresh\""), 0);
	cr_expect_eq(sb_expect_error(a, "bad_request", "\"type\":\"refresh\",\"token\":7"), 0);
	r = sb_request(anon, "\"type\":\"refresh\",\"token\":\"%s\"", t);
	expect_code(r, "forbidden", "refresh on a connection without a token");
	json_decref(r);
	/* The refused refreshes changed nothing: still alice, still open. */
	cr_expect_eq(sb_subscribe(a, "chat:x"), 0);
	cr_expect_geq(sb_publish(a, "chat:x", "1", NULL, 0), 1);
	r = sb_next_message(a, WAIT_MS);
	cr_expect_str_eq(json_str(json_object_get(r, "from"), "user"), "alice");
	json_decref(r);
	free(t), free(bob), free(expired), free(forged);
	ws_client_free(a);
	ws_client_free(anon);
	itest_finish();
}
