/* test_proto.c: protocol/ against docs/protocol.md: decoding of every command and every
 * refusal, byte-exact "data", the encoders (checked by parsing their output), channel
 * names, the corpus in tests/corpus/proto and allocation failures.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "leakcheck.h"
#include "proto.h"

/* ---- helpers ---- */

/* Decodes a NUL-terminated frame; the copy has no NUL after it, so ASan catches any read
 * past len. */
static int
decode(const char *text, struct proto_cmd *cmd, struct proto_error *err)
{
	size_t len = strlen(text);
	char *buf = malloc(len > 0 ? len : 1);
	int rc;

	cr_assert_not_null(buf);
	memcpy(buf, text, len);
	memset(err, 0, sizeof(*err));
	rc = proto_decode(buf, len, cmd, err);
	/* data_raw points into the input: check it while buf lives, by copying it out. */
	if (rc == 0 && cmd->data_raw != NULL) {
		cr_assert(cmd->data_raw >= buf && cmd->data_raw + cmd->data_len <= buf + len,
			  "data_raw is not inside the input buffer");
		cmd->data_raw = text + (cmd->data_raw - buf);
	}
	free(buf);
	return rc;
}

/* Asserts that text decodes to an error with code; returns nothing, frees everything. */
static void
expect_refused(const char *text, enum proto_errcode code)
{
	struct proto_cmd cmd;
	struct proto_error err;
	int rc = decode(text, &cmd, &err);

	cr_expect_eq(rc, -1, "accepted %s", text);
	cr_expect_eq(err.code, code, "%s: code %s, expected %s (%s)", text,
		     proto_errcode_name(err.code), proto_errcode_name(code), err.text);
	cr_expect_neq(err.text[0], '\0', "%s: empty error text", text);
	proto_cmd_fini(&cmd);
}

/* Asserts that text decodes; the caller checks cmd and calls proto_cmd_fini. */
static void
expect_ok(const char *text, struct proto_cmd *cmd)
{
	struct proto_error err;
	int rc = decode(text, cmd, &err);

	cr_assert_eq(rc, 0, "refused %s: %s %s", text, proto_errcode_name(err.code), err.text);
}

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A frame built with printf; free() it. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	cr_assert_geq(vasprintf(&s, f, ap), 0);
	va_end(ap);
	return s;
}

/* Parses an encoder's output, checking that *lenp matches and that it is one object. */
static json_t *
parse_frame(char *s, const size_t *lenp)
{
	size_t len = *lenp; /* read after the encoder ran: arguments have no order */
	json_error_t e;
	json_t *j;

	cr_assert_not_null(s, "encoder returned NULL");
	cr_assert_eq(strlen(s), len, "len %zu but strlen %zu", len, strlen(s));
	j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &e);
	cr_assert_not_null(j, "encoder produced invalid JSON (%s): %s", e.text, s);
	cr_assert(json_is_object(j), "encoder produced a non-object: %s", s);
	free(s);
	return j;
}

static void
expect_member_str(const json_t *o, const char *key, const char *value)
{
	const json_t *v = json_object_get(o, key);

	cr_expect(json_is_string(v), "\"%s\" is not a string", key);
	if (json_is_string(v))
		cr_expect_str_eq(json_string_value(v), value, "\"%s\"", key);
}

/* ---- connect ---- */

Test(decode, connect_with_user_and_integer_id)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"connect\",\"id\":1,\"user\":\"alice\"}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_CONNECT);
	cr_expect(json_is_integer(cmd.id));
	cr_expect_eq(json_integer_value(cmd.id), 1);
	cr_expect_str_eq(cmd.user, "alice");
	cr_expect_null(cmd.channel);
	cr_expect_null(cmd.data);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, connect_without_user_has_null_user)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"connect\"}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_CONNECT);
	cr_expect_null(cmd.user);
	cr_expect_null(cmd.id);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, connect_with_empty_user_is_accepted)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"connect\",\"user\":\"\"}", &cmd);
	cr_expect_str_eq(cmd.user, "");
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, user_of_255_bytes_is_accepted_and_256_refused)
{
	char *u255 = repeat('u', 255), *u256 = repeat('u', 256);
	char *ok = fmt("{\"type\":\"connect\",\"user\":\"%s\"}", u255);
	char *bad = fmt("{\"type\":\"connect\",\"user\":\"%s\"}", u256);
	struct proto_cmd cmd;

	expect_ok(ok, &cmd);
	cr_expect_eq(strlen(cmd.user), 255);
	proto_cmd_fini(&cmd);
	expect_refused(bad, PROTO_ERR_BAD_REQUEST);
	free(u255), free(u256), free(ok), free(bad);
	assert_no_leaks();
}

Test(decode, user_of_255_bytes_counts_bytes_not_characters)
{
	/* 128 two-byte characters are 256 bytes. */
	char user[257 * 2] = "";
	char *bad;

	for (int i = 0; i < 128; i++)
		strcat(user, "\xc3\xa9");
	bad = fmt("{\"type\":\"connect\",\"user\":\"%s\"}", user);
	expect_refused(bad, PROTO_ERR_BAD_REQUEST);
	free(bad);
	assert_no_leaks();
}

Test(decode, user_with_nul_is_refused)
{
	expect_refused("{\"type\":\"connect\",\"user\":\"al\\u0000ice\"}", PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

Test(decode, user_with_nul_keeps_the_id_for_the_reply)
{
	struct proto_cmd cmd;
	struct proto_error err;

	/* The frame is valid JSON ("\u0000" is allowed by RFC 8259) with a valid id: the
	 * refusal is about the user, and the reply must echo the id. */
	cr_expect_eq(decode("{\"type\":\"connect\",\"id\":3,\"user\":\"al\\u0000ice\"}", &cmd,
			    &err),
		     -1);
	cr_expect_eq(err.code, PROTO_ERR_BAD_REQUEST);
	cr_expect(json_is_integer(cmd.id), "the id of a valid frame was lost (%s)", err.text);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, data_may_contain_an_escaped_nul)
{
	static const char *const values[] = { "\"a\\u0000b\"", "{\"k\":\"\\u0000\"}",
					      "[\"\\u0000\"]" };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char *frame =
			fmt("{\"type\":\"publish\",\"channel\":\"a\",\"data\":%s}", values[i]);
		struct proto_cmd cmd;
		struct proto_error err;
		int rc = decode(frame, &cmd, &err);

		/* "data ... may be any JSON value" (docs/protocol.md). */
		cr_expect_eq(rc, 0, "%s refused: %s", values[i], err.text);
		if (rc == 0)
			cr_expect(cmd.data_len == strlen(values[i]) &&
					  memcmp(cmd.data_raw, values[i], cmd.data_len) == 0,
				  "%s", values[i]);
		proto_cmd_fini(&cmd);
		free(frame);
	}
	assert_no_leaks();
}

Test(decode, user_that_is_not_a_string_is_refused)
{
	static const char *const frames[] = {
		"{\"type\":\"connect\",\"user\":1}",
		"{\"type\":\"connect\",\"user\":null}",
		"{\"type\":\"connect\",\"user\":true}",
		"{\"type\":\"connect\",\"user\":[\"a\"]}",
		"{\"type\":\"connect\",\"user\":{\"name\":\"a\"}}",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		expect_refused(frames[i], PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

/* ---- subscribe, unsubscribe, ping ---- */

Test(decode, subscribe_sets_channel_and_length)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"subscribe\",\"id\":2,\"channel\":\"chat:lobby\"}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_SUBSCRIBE);
	cr_expect_str_eq(cmd.channel, "chat:lobby");
	cr_expect_eq(cmd.channel_len, 10);
	cr_expect_eq(json_integer_value(cmd.id), 2);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, unsubscribe_sets_channel)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"unsubscribe\",\"id\":3,\"channel\":\"chat:lobby\"}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_UNSUBSCRIBE);
	cr_expect_str_eq(cmd.channel, "chat:lobby");
	cr_expect_eq(cmd.channel_len, 10);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, ping_with_and_without_id)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"ping\",\"id\":5}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_PING);
	cr_expect_eq(json_integer_value(cmd.id), 5);
	proto_cmd_fini(&cmd);
	expect_ok("{\"type\":\"ping\"}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_PING);
	cr_expect_null(cmd.id);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, members_a_command_does_not_use_are_ignored)
{
	struct proto_cmd cmd;

	expect_ok(
		"{\"type\":\"ping\",\"id\":1,\"channel\":5,\"data\":[1,2],\"future\":{\"x\":null}}",
		&cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_PING);
	proto_cmd_fini(&cmd);
	/* Members of other commands: "since"/"limit" belong to history, "recover"/"rewind"
	 * to subscribe, "token" to connect/refresh/subscribe, "data" to publish. */
	expect_ok("{\"type\":\"subscribe\",\"channel\":\"a\",\"since\":{\"offset\":1},"
		  "\"limit\":\"x\",\"user\":7,\"info\":[1]}",
		  &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_SUBSCRIBE);
	cr_expect_not(cmd.has_since, "history's \"since\" taken for \"recover\"");
	cr_expect_eq(cmd.limit, 0);
	cr_expect_null(cmd.user);
	cr_expect_null(cmd.info_raw);
	proto_cmd_fini(&cmd);
	expect_ok("{\"type\":\"history\",\"channel\":\"a\",\"recover\":5,\"rewind\":\"x\","
		  "\"token\":1}",
		  &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_HISTORY);
	cr_expect_not(cmd.has_since);
	cr_expect_eq(cmd.rewind, 0);
	cr_expect_null(cmd.token);
	proto_cmd_fini(&cmd);
	expect_ok("{\"type\":\"publish\",\"channel\":\"a\",\"data\":1,\"token\":[],\"since\":0}",
		  &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_PUBLISH);
	cr_expect_null(cmd.token);
	proto_cmd_fini(&cmd);
	expect_ok("{\"type\":\"unsubscribe\",\"channel\":\"a\",\"recover\":null,\"token\":5}",
		  &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_UNSUBSCRIBE);
	proto_cmd_fini(&cmd);
	expect_ok("{\"type\":\"presence\",\"channel\":\"a\",\"token\":5,\"limit\":-1}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_PRESENCE);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, member_order_does_not_matter)
{
	struct proto_cmd cmd;

	expect_ok("{\"channel\":\"x\",\"data\":[1],\"id\":\"a\",\"type\":\"publish\"}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_PUBLISH);
	cr_expect_str_eq(cmd.channel, "x");
	cr_expect_eq(cmd.data_len, 3);
	cr_expect_eq(memcmp(cmd.data_raw, "[1]", 3), 0);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, whitespace_around_tokens_is_accepted)
{
	struct proto_cmd cmd;

	expect_ok(" \r\n\t{ \"type\" : \"subscribe\" ,\n \"channel\" :\t\"a\" } \n", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_SUBSCRIBE);
	cr_expect_str_eq(cmd.channel, "a");
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

/* ---- malformed frames ---- */

Test(decode, invalid_json_is_bad_request)
{
	static const char *const frames[] = {
		"",
		" ",
		"{",
		"}",
		"{\"type\":",
		"{\"type\":\"ping\"",
		"{\"type\":\"ping\",}",
		"{'type':'ping'}",
		"{type:\"ping\"}",
		"{\"type\":\"ping\"} x",
		"{\"type\":\"ping\"}{\"type\":\"ping\"}",
		"{\"type\":\"ping\",\"id\":01}",
		"{\"type\":\"ping\",\"id\":NaN}",
		"{\"type\":\"ping\",\"x\":\"\\x41\"}",
		"{\"type\":\"ping\",\"x\":\"tab\there\"}",
		"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}",
		"{\"type\":\"ping\",\"x\":\"\xc3\"}",
		"{\"type\":\"ping\",\"x\":\"\\ud800\"}",
		"nul",
		"\xef\xbb\xbf{\"type\":\"ping\"}",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		expect_refused(frames[i], PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

Test(decode, frame_with_a_nul_byte_is_bad_request)
{
	static const char frame[] = "{\"type\":\"ping\"}\0";
	struct proto_cmd cmd;
	struct proto_error err = { 0 };

	cr_expect_eq(proto_decode(frame, sizeof(frame) - 1, &cmd, &err), -1);
	cr_expect_eq(err.code, PROTO_ERR_BAD_REQUEST);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, input_is_read_only_up_to_len)
{
	static const char buf[] = "{\"type\":\"ping\",\"id\":9}GARBAGE";
	struct proto_cmd cmd;
	struct proto_error err;

	cr_assert_eq(proto_decode(buf, strlen("{\"type\":\"ping\",\"id\":9}"), &cmd, &err), 0);
	cr_expect_eq(cmd.kind, PROTO_KIND_PING);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, value_that_is_not_an_object_is_bad_request)
{
	static const char *const frames[] = {
		"[]", "[{\"type\":\"ping\"}]", "1", "-2.5", "\"ping\"", "null", "true", "false",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		expect_refused(frames[i], PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

Test(decode, missing_or_ill_typed_type_is_bad_request)
{
	static const char *const frames[] = {
		"{}",
		"{\"id\":1}",
		"{\"Type\":\"ping\"}",
		"{\"type\":1}",
		"{\"type\":null}",
		"{\"type\":true}",
		"{\"type\":[\"ping\"]}",
		"{\"type\":{\"name\":\"ping\"}}",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		expect_refused(frames[i], PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

Test(decode, type_that_is_not_a_command_is_unknown_type)
{
	static const char *const frames[] = {
		"{\"type\":\"\"}",
		"{\"type\":\"pong\"}",
		"{\"type\":\"message\"}",
		"{\"type\":\"connected\"}",
		"{\"type\":\"error\"}",
		"{\"type\":\"PING\"}",
		"{\"type\":\"ping \"}",
		"{\"type\":\"rpc\",\"channel\":\"a\"}",
		/* Server frame types are not commands either. */
		"{\"type\":\"subscribed\",\"channel\":\"a\"}",
		"{\"type\":\"refreshed\",\"token\":\"t\"}",
		"{\"type\":\"join\",\"channel\":\"a\"}",
		"{\"type\":\"leave\",\"channel\":\"a\"}",
		"{\"type\":\"presence-stats\",\"channel\":\"a\"}",
		"{\"type\":\"History\",\"channel\":\"a\"}",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		expect_refused(frames[i], PROTO_ERR_UNKNOWN_TYPE);
	assert_no_leaks();
}

Test(decode, type_with_a_nul_is_not_a_command)
{
	struct proto_cmd cmd;
	struct proto_error err;

	/* "ping\u0000" is not "ping": strcmp() would say it is. */
	cr_expect_eq(decode("{\"type\":\"ping\\u0000\",\"id\":1}", &cmd, &err), -1,
		     "\"ping\\u0000\" was taken for ping");
	cr_expect(err.code == PROTO_ERR_UNKNOWN_TYPE || err.code == PROTO_ERR_BAD_REQUEST,
		  "code %s", proto_errcode_name(err.code));
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, duplicate_members_are_bad_request)
{
	static const char *const frames[] = {
		"{\"type\":\"ping\",\"type\":\"ping\"}",
		"{\"type\":\"ping\",\"id\":1,\"id\":2}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"channel\":\"b\",\"data\":1}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"data\":1,\"data\":2}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"data\":{\"k\":1,\"k\":2}}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"data\":[{\"x\":{\"k\":1,\"k\":1}}]}",
		"{\"type\":\"ping\",\"t\\u0079pe\":\"ping\"}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"data\":1,\"d\\u0061ta\":2}",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		expect_refused(frames[i], PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

Test(decode, deep_nesting_is_refused_without_crashing)
{
	size_t depth = 100000;
	char *open = repeat('[', depth), *close = repeat(']', depth);
	char *frame = fmt("{\"type\":\"publish\",\"channel\":\"a\",\"data\":%s%s}", open, close);

	expect_refused(frame, PROTO_ERR_BAD_REQUEST);
	free(open), free(close), free(frame);
	assert_no_leaks();
}

/* ---- id ---- */

Test(decode, integer_ids_are_accepted)
{
	static const char *const ids[] = {
		"0", "-1", "1", "9007199254740993", "9223372036854775807", "-9223372036854775808",
	};
	static const json_int_t values[] = {
		0, -1, 1, 9007199254740993LL, INT64_MAX, INT64_MIN,
	};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char *frame = fmt("{\"type\":\"ping\",\"id\":%s}", ids[i]);
		struct proto_cmd cmd;

		expect_ok(frame, &cmd);
		cr_expect(json_is_integer(cmd.id), "%s", ids[i]);
		cr_expect_eq(json_integer_value(cmd.id), values[i], "%s", ids[i]);
		proto_cmd_fini(&cmd);
		free(frame);
	}
	assert_no_leaks();
}

Test(decode, string_ids_up_to_64_bytes_are_accepted)
{
	char *s64 = repeat('i', 64);
	const char *ids[] = { "", "a", "7", "req-1", "\xc3\xa9t\xc3\xa9", s64 };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char *frame = fmt("{\"type\":\"ping\",\"id\":\"%s\"}", ids[i]);
		struct proto_cmd cmd;

		expect_ok(frame, &cmd);
		cr_expect(json_is_string(cmd.id), "%s", ids[i]);
		cr_expect_str_eq(json_string_value(cmd.id), ids[i]);
		proto_cmd_fini(&cmd);
		free(frame);
	}
	free(s64);
	assert_no_leaks();
}

Test(decode, invalid_ids_are_bad_request_and_not_kept)
{
	char *s65 = repeat('i', 65);
	char *long_id = fmt("\"%s\"", s65);
	const char *ids[] = {
		"1.5", "1.0",	    "1e3", "-0.0", "true",	    "false", "null",
		"{}",  "{\"n\":1}", "[]",  "[1]",  "\"a\\u0000b\"", long_id, "18446744073709551616",
	};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char *frame = fmt("{\"type\":\"ping\",\"id\":%s}", ids[i]);
		struct proto_cmd cmd;
		struct proto_error err;

		cr_expect_eq(decode(frame, &cmd, &err), -1, "id %s accepted", ids[i]);
		cr_expect_eq(err.code, PROTO_ERR_BAD_REQUEST, "id %s: %s", ids[i],
			     proto_errcode_name(err.code));
		cr_expect_null(cmd.id, "invalid id %s kept for the reply", ids[i]);
		proto_cmd_fini(&cmd);
		free(frame);
	}
	free(s65), free(long_id);
	assert_no_leaks();
}

Test(decode, a_refused_command_keeps_its_valid_id)
{
	static const struct {
		const char *frame;
		enum proto_errcode code;
		json_int_t id;
	} cases[] = {
		{ "{\"type\":\"nope\",\"id\":7}", PROTO_ERR_UNKNOWN_TYPE, 7 },
		{ "{\"id\":8}", PROTO_ERR_BAD_REQUEST, 8 },
		{ "{\"type\":3,\"id\":9}", PROTO_ERR_BAD_REQUEST, 9 },
		{ "{\"type\":\"subscribe\",\"id\":10}", PROTO_ERR_BAD_REQUEST, 10 },
		{ "{\"type\":\"subscribe\",\"id\":11,\"channel\":\"a b\"}",
		  PROTO_ERR_INVALID_CHANNEL, 11 },
		{ "{\"type\":\"publish\",\"id\":12,\"channel\":\"a\"}", PROTO_ERR_BAD_REQUEST, 12 },
		{ "{\"type\":\"connect\",\"id\":13,\"user\":5}", PROTO_ERR_BAD_REQUEST, 13 },
		{ "{\"channel\":\"a\",\"type\":\"publish\",\"id\":14}", PROTO_ERR_BAD_REQUEST, 14 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proto_cmd cmd;
		struct proto_error err;

		cr_expect_eq(decode(cases[i].frame, &cmd, &err), -1, "%s", cases[i].frame);
		cr_expect_eq(err.code, cases[i].code, "%s: %s", cases[i].frame,
			     proto_errcode_name(err.code));
		cr_expect(json_is_integer(cmd.id), "%s: id not kept", cases[i].frame);
		cr_expect_eq(json_integer_value(cmd.id), cases[i].id, "%s", cases[i].frame);
		proto_cmd_fini(&cmd);
	}
	assert_no_leaks();
}

Test(decode, a_refused_command_keeps_its_string_id)
{
	struct proto_cmd cmd;
	struct proto_error err;

	cr_expect_eq(decode("{\"type\":\"subscribe\",\"id\":\"s-1\",\"channel\":\"\"}", &cmd, &err),
		     -1);
	cr_expect_eq(err.code, PROTO_ERR_INVALID_CHANNEL);
	cr_assert(json_is_string(cmd.id));
	cr_expect_str_eq(json_string_value(cmd.id), "s-1");
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

/* ---- channel ---- */

Test(decode, missing_or_ill_typed_channel_is_bad_request)
{
	static const char *const types[] = { "subscribe", "unsubscribe", "publish" };
	static const char *const channels[] = { "",
						",\"channel\":1",
						",\"channel\":null",
						",\"channel\":[\"a\"]",
						",\"channel\":{}",
						",\"channel\":true",
						",\"Channel\":\"a\"" };

	for (size_t t = 0; t < 3; t++) {
		for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
			char *frame = fmt("{\"type\":\"%s\"%s,\"data\":1}", types[t], channels[i]);

			expect_refused(frame, PROTO_ERR_BAD_REQUEST);
			free(frame);
		}
	}
	assert_no_leaks();
}

Test(decode, channel_outside_the_grammar_is_invalid_channel)
{
	char *c256 = repeat('c', 256);
	const char *channels[] = {
		"",	    " ",     "a b", "a/b", "a#b",  "chat*",   "a,b", "a\\\"b",
		"\xc3\xa9", "a\\tb", "a+b", "a?b", "a[0]", "\\u00e9", c256,
	};
	static const char *const types[] = { "subscribe", "unsubscribe", "publish" };

	for (size_t t = 0; t < 3; t++) {
		for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
			char *frame = fmt("{\"type\":\"%s\",\"channel\":\"%s\",\"data\":1}",
					  types[t], channels[i]);

			expect_refused(frame, PROTO_ERR_INVALID_CHANNEL);
			free(frame);
		}
	}
	free(c256);
	assert_no_leaks();
}

Test(decode, channel_with_a_nul_is_refused)
{
	static const char *const types[] = { "subscribe", "unsubscribe", "publish" };

	for (size_t t = 0; t < 3; t++) {
		char *frame =
			fmt("{\"type\":\"%s\",\"channel\":\"a\\u0000b\",\"data\":1}", types[t]);
		struct proto_cmd cmd;
		struct proto_error err;

		cr_expect_eq(decode(frame, &cmd, &err), -1, "%s", frame);
		cr_expect(err.code == PROTO_ERR_INVALID_CHANNEL ||
				  err.code == PROTO_ERR_BAD_REQUEST,
			  "%s: %s", frame, proto_errcode_name(err.code));
		proto_cmd_fini(&cmd);
		free(frame);
	}
	assert_no_leaks();
}

Test(decode, channel_of_255_bytes_with_every_allowed_character_is_accepted)
{
	static const char allowed[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:.@=-";
	char name[256];
	char *frame;
	struct proto_cmd cmd;

	for (size_t i = 0; i < 255; i++)
		name[i] = allowed[i % (sizeof(allowed) - 1)];
	name[255] = '\0';
	frame = fmt("{\"type\":\"subscribe\",\"channel\":\"%s\"}", name);
	expect_ok(frame, &cmd);
	cr_expect_eq(cmd.channel_len, 255);
	cr_expect_str_eq(cmd.channel, name);
	proto_cmd_fini(&cmd);
	free(frame);
	assert_no_leaks();
}

Test(decode, channel_written_with_escapes_is_decoded_before_the_check)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"subscribe\",\"channel\":\"chat\\u003alobby\"}", &cmd);
	cr_expect_str_eq(cmd.channel, "chat:lobby");
	cr_expect_eq(cmd.channel_len, 10);
	proto_cmd_fini(&cmd);
	expect_refused("{\"type\":\"subscribe\",\"channel\":\"a\\/b\"}", PROTO_ERR_INVALID_CHANNEL);
	assert_no_leaks();
}

Test(channel, valid_names_follow_the_grammar)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
		{ "a", true },	   { "chat:lobby", true },  { ":x", true },
		{ "x:", true },	   { "a.b@c=d-e_f", true }, { "::", true },
		{ "", false },	   { "a b", false },	    { "a/b", false },
		{ "a\nb", false }, { "\x80", false },	    { "a*", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(proto_channel_valid(cases[i].name, strlen(cases[i].name)), cases[i].ok,
			     "\"%s\"", cases[i].name);
	cr_expect_not(proto_channel_valid(NULL, 0));
	cr_expect_not(proto_channel_valid("a\0b", 3), "NUL inside a name");
	cr_expect(proto_channel_valid("ab*", 2), "only len bytes are looked at");
}

Test(channel, length_limit_is_255_bytes)
{
	char name[257];

	memset(name, 'x', sizeof(name));
	cr_expect(proto_channel_valid(name, 255));
	cr_expect_not(proto_channel_valid(name, 256));
	cr_expect_not(proto_channel_valid(name, 0));
}

Test(channel, namespace_is_the_part_before_the_first_colon)
{
	static const struct {
		const char *name;
		size_t ns_len;
	} cases[] = {
		{ "chat:lobby", 4 },
		{ "lobby", 0 },
		{ ":x", 0 },
		{ "a:b:c", 1 },
		{ "chat:", 4 },
		{ "x", 0 },
		{ "long.name@x=y:z", 13 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(proto_channel_ns_len(cases[i].name, strlen(cases[i].name)),
			     cases[i].ns_len, "\"%s\"", cases[i].name);
	cr_expect_eq(proto_channel_ns_len("abc:def", 3), 0, "a colon past len does not count");
	cr_expect_eq(proto_channel_ns_len("abc:def", 4), 3);
}

/* ---- publish and data ---- */

Test(decode, publish_without_data_is_bad_request)
{
	expect_refused("{\"type\":\"publish\",\"channel\":\"a\"}", PROTO_ERR_BAD_REQUEST);
	expect_refused("{\"type\":\"publish\",\"channel\":\"a\",\"Data\":1}",
		       PROTO_ERR_BAD_REQUEST);
	expect_refused("{\"type\":\"publish\",\"channel\":\"a\",\"meta\":{\"data\":1}}",
		       PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

/* Each data value must come back in data_raw exactly as written. */
static const char *const data_values[] = {
	"{\"text\":\"hi\"}",
	"{}",
	"[]",
	"[1,2,3]",
	"\"a string\"",
	"\"\"",
	"0",
	"-0",
	"0.1",
	"1e2",
	"1E+2",
	"-1.50e-10",
	"123456789012345678",
	"9223372036854775807",
	"-9223372036854775808",
	"3.141592653589793238462643383279",
	"true",
	"false",
	"null",
	"{\"p\":0.1,\"n\":1e2}",
	"{\"s\":\"}{][,:\"}",
	"{\"s\":\"say \\\"hi\\\" {\"}",
	"{\"s\":\"ends with a backslash\\\\\"}",
	"[\"\\\\\",\"\\\"\",\"\\\\\\\"\"]",
	"{\"data\":{\"data\":1}}",
	"{\"u\":\"\\u00e9\\ud83d\\ude00\",\"raw\":\"\xc3\xa9\xf0\x9f\x98\x80\"}",
	"{ \"spaced\" : [ 1 , 2 ] }",
	"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
	"{\"a\":{\"b\":{\"c\":[{},[],\"}\",\"]\"]}}}",
};

Test(decode, data_of_every_json_type_is_kept_byte_for_byte)
{
	for (size_t i = 0; i < sizeof(data_values) / sizeof(data_values[0]); i++) {
		char *frame = fmt(
			"{\"type\":\"publish\",\"id\":4,\"channel\":\"chat:lobby\",\"data\":%s}",
			data_values[i]);
		struct proto_cmd cmd;

		expect_ok(frame, &cmd);
		cr_expect_eq(cmd.kind, PROTO_KIND_PUBLISH);
		cr_expect_not_null(cmd.data, "%s", data_values[i]);
		cr_expect_eq(cmd.data_len, strlen(data_values[i]), "%s: data_len %zu",
			     data_values[i], cmd.data_len);
		cr_expect(cmd.data_raw != NULL && cmd.data_len == strlen(data_values[i]) &&
				  memcmp(cmd.data_raw, data_values[i], cmd.data_len) == 0,
			  "data_raw \"%.*s\" differs from \"%s\"", (int)cmd.data_len,
			  cmd.data_raw != NULL ? cmd.data_raw : "", data_values[i]);
		proto_cmd_fini(&cmd);
		free(frame);
	}
	assert_no_leaks();
}

Test(decode, data_first_middle_or_last_is_found)
{
	static const char *const frames[] = {
		"{\"data\":%s,\"type\":\"publish\",\"channel\":\"a\"}",
		"{\"type\":\"publish\",\"data\":%s,\"channel\":\"a\"}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"data\":%s}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"data\" :\n\t%s\n}",
		"{\"type\":\"publish\",\"x\":{\"data\":0},\"y\":[\"data\",{\"data\":2}],"
		"\"channel\":\"a\",\"data\":%s}",
		"{\"type\":\"publish\",\"note\":\"\\\"data\\\":0\",\"channel\":\"a\",\"data\":%s}",
	};

	for (size_t f = 0; f < sizeof(frames) / sizeof(frames[0]); f++) {
		for (size_t i = 0; i < sizeof(data_values) / sizeof(data_values[0]); i++) {
			char *frame = fmt(frames[f], data_values[i]);
			struct proto_cmd cmd;

			expect_ok(frame, &cmd);
			cr_expect(cmd.data_len == strlen(data_values[i]) &&
					  memcmp(cmd.data_raw, data_values[i], cmd.data_len) == 0,
				  "in %s: data_raw \"%.*s\"", frame, (int)cmd.data_len,
				  cmd.data_raw);
			proto_cmd_fini(&cmd);
			free(frame);
		}
	}
	assert_no_leaks();
}

Test(decode, data_key_written_with_escapes_is_found)
{
	static const char *const frames[] = {
		"{\"type\":\"publish\",\"channel\":\"a\",\"d\\u0061ta\":{\"x\":0.10}}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"\\u0064\\u0061\\u0074\\u0061\":{\"x\":0."
		"10}}",
		"{\"t\\u0079pe\":\"publish\",\"ch\\u0061nnel\":\"a\",\"data\":{\"x\":0.10}}",
		"{\"type\":\"publish\",\"channel\":\"a\",\"dat\\u0061x\":1,\"data\":{\"x\":0.10}}",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		struct proto_cmd cmd;

		expect_ok(frames[i], &cmd);
		cr_expect_eq(cmd.kind, PROTO_KIND_PUBLISH, "%s", frames[i]);
		cr_expect(cmd.data_len == 10 && memcmp(cmd.data_raw, "{\"x\":0.10}", 10) == 0,
			  "%s: data_raw \"%.*s\"", frames[i], (int)cmd.data_len, cmd.data_raw);
		proto_cmd_fini(&cmd);
	}
	assert_no_leaks();
}

Test(decode, data_value_is_the_parsed_json)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"publish\",\"channel\":\"a\",\"data\":{\"n\":[1,\"two\",null]}}",
		  &cmd);
	cr_assert(json_is_object(cmd.data));
	cr_expect_eq(json_array_size(json_object_get(cmd.data, "n")), 3);
	proto_cmd_fini(&cmd);
	expect_ok("{\"type\":\"publish\",\"channel\":\"a\",\"data\":null}", &cmd);
	cr_expect(json_is_null(cmd.data), "null data is present, not missing");
	cr_expect_eq(cmd.data_len, 4);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, integer_data_that_does_not_fit_64_bits_is_bad_request)
{
	expect_refused("{\"type\":\"publish\",\"channel\":\"a\",\"data\":9223372036854775808}",
		       PROTO_ERR_BAD_REQUEST);
	expect_refused("{\"type\":\"publish\",\"channel\":\"a\",\"data\":[-9223372036854775809]}",
		       PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

Test(decode, error_argument_may_be_null)
{
	struct proto_cmd cmd;

	cr_expect_eq(proto_decode("[", 1, &cmd, NULL), -1);
	proto_cmd_fini(&cmd);
	cr_expect_eq(proto_decode("{\"type\":\"ping\"}", 15, &cmd, NULL), 0);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, fini_is_safe_on_zeroed_and_finished_commands)
{
	struct proto_cmd cmd = { 0 };

	proto_cmd_fini(&cmd);
	proto_cmd_fini(NULL);
	cr_assert_eq(proto_decode("{\"type\":\"ping\"}", 15, &cmd, NULL), 0);
	proto_cmd_fini(&cmd);
	proto_cmd_fini(&cmd);
	cr_expect_null(cmd.root);
	assert_no_leaks();
}

/* ---- find_member ---- */

Test(find_member, returns_the_exact_span_of_top_level_members)
{
	static const char doc[] =
		"{ \"a\" : 1 , \"b\":{\"a\":2}, \"c\" :[\"a\"] ,\"d\":\"x\\\"}\"}";
	const char *start;
	size_t len;

	cr_assert_eq(proto_find_member(doc, strlen(doc), "a", &start, &len), 0);
	cr_expect_eq(len, 1);
	cr_expect_eq(*start, '1');
	cr_assert_eq(proto_find_member(doc, strlen(doc), "b", &start, &len), 0);
	cr_expect_eq(len, 7);
	cr_expect_eq(memcmp(start, "{\"a\":2}", 7), 0);
	cr_assert_eq(proto_find_member(doc, strlen(doc), "c", &start, &len), 0);
	cr_expect_eq(memcmp(start, "[\"a\"]", len), 0);
	cr_assert_eq(proto_find_member(doc, strlen(doc), "d", &start, &len), 0);
	cr_expect_eq(len, 6);
	cr_expect_eq(memcmp(start, "\"x\\\"}\"", 6), 0);
	cr_expect_eq(proto_find_member(doc, strlen(doc), "e", &start, &len), -1);
	cr_expect_eq(proto_find_member("{}", 2, "a", &start, &len), -1);
	assert_no_leaks();
}

/* ---- encoders ---- */

static json_t *
id_int(json_int_t v)
{
	json_t *id = json_integer(v);

	cr_assert_not_null(id);
	return id;
}

static json_t *
id_str(const char *s)
{
	json_t *id = json_string(s);

	cr_assert_not_null(id);
	return id;
}

/* Checks the "id" member of a frame against id (NULL: no member). */
static void
expect_id(const json_t *frame, const json_t *id)
{
	const json_t *got = json_object_get(frame, "id");

	if (id == NULL) {
		cr_expect_null(got, "frame has an id but none was given");
		return;
	}
	cr_expect(json_equal(got, id), "id not echoed with the same type and value");
}

/* Every reply frame, with an integer id, a string id and no id. */
Test(encode, replies_echo_integer_string_and_absent_ids)
{
	json_t *ids[] = { id_int(1),	 id_int(-5), id_int(INT64_MAX),
			  id_str("abc"), id_str(""), id_str("with \"quotes\" and \\"),
			  NULL };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const json_t *id = ids[i];
		size_t len = 0;
		json_t *f;

		f = parse_frame(proto_encode_connected(id, "c-1", "alice", "switchboard/0.1.0", 0,
						       &len),
				&len);
		expect_member_str(f, "type", "connected");
		expect_id(f, id);
		json_decref(f);

		f = parse_frame(proto_encode_subscribed(id, "chat:lobby", 0, "e", -1, &len), &len);
		expect_member_str(f, "type", "subscribed");
		expect_id(f, id);
		json_decref(f);

		f = parse_frame(proto_encode_unsubscribed(id, "chat:lobby", &len), &len);
		expect_member_str(f, "type", "unsubscribed");
		expect_id(f, id);
		json_decref(f);

		f = parse_frame(proto_encode_published(id, "chat:lobby", 7, "7c1e40a2b9f35d10",
						       &len),
				&len);
		expect_member_str(f, "type", "published");
		expect_id(f, id);
		json_decref(f);

		f = parse_frame(proto_encode_pong(id, &len), &len);
		expect_member_str(f, "type", "pong");
		expect_id(f, id);
		json_decref(f);

		f = parse_frame(proto_encode_error(id, PROTO_ERR_FORBIDDEN, "no", &len), &len);
		expect_member_str(f, "type", "error");
		expect_id(f, id);
		json_decref(f);
	}
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		json_decref(ids[i]);
	assert_no_leaks();
}

Test(encode, connected_has_client_user_and_server)
{
	json_t *id = id_int(1), *f;
	size_t len;

	f = parse_frame(proto_encode_connected(id, "5f0c2a9e81d4-1", "alice", "switchboard/0.1.0",
					       0, &len),
			&len);
	expect_member_str(f, "type", "connected");
	expect_member_str(f, "client", "5f0c2a9e81d4-1");
	expect_member_str(f, "user", "alice");
	expect_member_str(f, "server", "switchboard/0.1.0");
	cr_expect_eq(json_integer_value(json_object_get(f, "id")), 1);
	cr_expect_eq(json_object_size(f), 5);
	json_decref(f);
	json_decref(id);
	assert_no_leaks();
}

Test(encode, connected_without_user_says_empty_user)
{
	size_t len;
	json_t *f = parse_frame(proto_encode_connected(NULL, "c", NULL, "s", 0, &len), &len);

	expect_member_str(f, "user", "");
	json_decref(f);
	assert_no_leaks();
}

Test(encode, strings_are_escaped)
{
	static const char user[] = "a\"b\\c\n\t\xc3\xa9</script>";
	size_t len;
	json_t *f = parse_frame(proto_encode_connected(NULL, "c", user, "s", 0, &len), &len);

	expect_member_str(f, "user", user);
	json_decref(f);
	f = parse_frame(proto_encode_error(NULL, PROTO_ERR_BAD_REQUEST, "field \"x\" \\ bad", &len),
			&len);
	expect_member_str(f, "message", "field \"x\" \\ bad");
	json_decref(f);
	assert_no_leaks();
}

Test(encode, subscribed_and_unsubscribed_name_the_channel)
{
	size_t len;
	json_t *id = id_str("s"), *f;

	f = parse_frame(proto_encode_subscribed(id, "chat:lobby", 0, "e", -1, &len), &len);
	expect_member_str(f, "channel", "chat:lobby");
	cr_expect_eq(json_object_size(f), 5, "type, id, channel, offset, epoch");
	json_decref(f);
	f = parse_frame(proto_encode_unsubscribed(id, "chat:lobby", &len), &len);
	expect_member_str(f, "type", "unsubscribed");
	expect_member_str(f, "channel", "chat:lobby");
	json_decref(f);
	json_decref(id);
	assert_no_leaks();
}

Test(encode, published_has_offset_and_epoch)
{
	static const uint64_t offsets[] = { 1, 7, 9007199254740993ULL, INT64_MAX };

	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		size_t len;
		json_t *id = id_int(4);
		json_t *f = parse_frame(proto_encode_published(id, "chat:lobby", offsets[i],
							       "7c1e40a2b9f35d10", &len),
					&len);

		expect_member_str(f, "type", "published");
		expect_member_str(f, "channel", "chat:lobby");
		expect_member_str(f, "epoch", "7c1e40a2b9f35d10");
		cr_expect(json_is_integer(json_object_get(f, "offset")));
		cr_expect_eq((uint64_t)json_integer_value(json_object_get(f, "offset")),
			     offsets[i]);
		json_decref(f);
		json_decref(id);
	}
	assert_no_leaks();
}

Test(encode, pong_is_type_and_id_only)
{
	size_t len;
	json_t *id = id_int(5);
	json_t *f = parse_frame(proto_encode_pong(id, &len), &len);

	expect_member_str(f, "type", "pong");
	cr_expect_eq(json_object_size(f), 2);
	json_decref(f);
	json_decref(id);
	f = parse_frame(proto_encode_pong(NULL, &len), &len);
	cr_expect_eq(json_object_size(f), 1);
	json_decref(f);
	assert_no_leaks();
}

Test(encode, reset_names_channel_offset_and_new_epoch)
{
	size_t len;
	json_t *f =
		parse_frame(proto_encode_reset("chat:lobby", 0, "b71f0c2d99a4e613", &len), &len);

	expect_member_str(f, "type", "reset");
	expect_member_str(f, "channel", "chat:lobby");
	expect_member_str(f, "epoch", "b71f0c2d99a4e613");
	cr_expect_eq(json_integer_value(json_object_get(f, "offset")), 0);
	cr_expect_eq(json_object_size(f), 4);
	json_decref(f);
	assert_no_leaks();
}

Test(encode, error_carries_the_wire_code_and_message)
{
	static const struct {
		enum proto_errcode code;
		const char *name;
	} codes[] = {
		{ PROTO_ERR_BAD_REQUEST, "bad_request" },
		{ PROTO_ERR_UNKNOWN_TYPE, "unknown_type" },
		{ PROTO_ERR_NOT_CONNECTED, "not_connected" },
		{ PROTO_ERR_ALREADY_CONNECTED, "already_connected" },
		{ PROTO_ERR_INVALID_CHANNEL, "invalid_channel" },
		{ PROTO_ERR_FORBIDDEN, "forbidden" },
		{ PROTO_ERR_TOO_LARGE, "too_large" },
		{ PROTO_ERR_ALREADY_SUBSCRIBED, "already_subscribed" },
		{ PROTO_ERR_NOT_SUBSCRIBED, "not_subscribed" },
		{ PROTO_ERR_LIMIT_EXCEEDED, "limit_exceeded" },
		{ PROTO_ERR_INTERNAL, "internal" },
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		size_t len;
		json_t *id = id_int(2);
		json_t *f = parse_frame(proto_encode_error(id, codes[i].code, "why", &len), &len);

		cr_expect_str_eq(proto_errcode_name(codes[i].code), codes[i].name);
		expect_member_str(f, "type", "error");
		expect_member_str(f, "code", codes[i].name);
		expect_member_str(f, "message", "why");
		cr_expect_eq(json_integer_value(json_object_get(f, "id")), 2);
		json_decref(f);
		json_decref(id);
	}
	assert_no_leaks();
}

Test(encode, wire_names_of_kinds_and_out_of_range_codes)
{
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_CONNECT), "connect");
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_SUBSCRIBE), "subscribe");
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_UNSUBSCRIBE), "unsubscribe");
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_PUBLISH), "publish");
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_PING), "ping");
	cr_expect_not_null(proto_kind_name((enum proto_kind)99));
	cr_expect_not_null(proto_errcode_name((enum proto_errcode)99));
}

Test(encode, id_is_copied_not_kept)
{
	json_t *id = json_string("mutable"), *f;
	size_t len;
	char *s = proto_encode_pong(id, &len);

	json_string_set(id, "changed");
	f = parse_frame(s, &len);
	expect_member_str(f, "id", "mutable");
	cr_expect_eq(id->refcount, 1, "the encoder kept a reference to id");
	json_decref(f);
	json_decref(id);
	assert_no_leaks();
}

Test(encode, from_has_client_and_user)
{
	size_t len;
	json_t *f = parse_frame(proto_encode_from("5f0c2a9e81d4-1", "alice", &len), &len);

	expect_member_str(f, "client", "5f0c2a9e81d4-1");
	expect_member_str(f, "user", "alice");
	cr_expect_eq(json_object_size(f), 2);
	json_decref(f);
	f = parse_frame(proto_encode_from("c", NULL, &len), &len);
	expect_member_str(f, "user", "");
	json_decref(f);
	assert_no_leaks();
}

Test(encode, message_copies_data_and_from_verbatim)
{
	size_t flen, len;
	char *from = proto_encode_from("5f0c2a9e81d4-1", "alice", &flen);
	char *s;
	const char *start;
	size_t dlen;
	json_t *f;

	cr_assert_not_null(from);
	for (size_t i = 0; i < sizeof(data_values) / sizeof(data_values[0]); i++) {
		const char *d = data_values[i];

		s = proto_encode_message("chat:lobby", 7, d, strlen(d), from, flen, &len);
		cr_assert_not_null(s);
		cr_expect_eq(proto_find_member(s, len, "data", &start, &dlen), 0, "%s", s);
		cr_expect(dlen == strlen(d) && memcmp(start, d, dlen) == 0, "data rewritten: %s",
			  s);
		cr_expect_eq(proto_find_member(s, len, "from", &start, &dlen), 0, "%s", s);
		cr_expect(dlen == flen && memcmp(start, from, flen) == 0, "from rewritten: %s", s);
		f = parse_frame(s, &len);
		expect_member_str(f, "type", "message");
		expect_member_str(f, "channel", "chat:lobby");
		cr_expect_eq(json_integer_value(json_object_get(f, "offset")), 7);
		cr_expect_null(json_object_get(f, "id"), "message frames have no id");
		expect_member_str(json_object_get(f, "from"), "client", "5f0c2a9e81d4-1");
		expect_member_str(json_object_get(f, "from"), "user", "alice");
		json_decref(f);
	}
	free(from);
	assert_no_leaks();
}

Test(encode, message_with_the_documented_example_is_exact)
{
	static const char expect_prefix[] = "{\"type\":\"message\",\"channel\":\"chat:lobby\","
					    "\"offset\":7,\"data\":{\"p\":0.1,\"n\":1e2}";
	static const char data[] = "{\"p\":0.1,\"n\":1e2}TRAILING";
	size_t len, flen;
	char *from = proto_encode_from("c-1", "alice", &flen);
	char *s = proto_encode_message("chat:lobby", 7, data, strlen("{\"p\":0.1,\"n\":1e2}"), from,
				       flen, &len);
	json_t *f;

	cr_assert_not_null(s);
	cr_expect_eq(strncmp(s, expect_prefix, strlen(expect_prefix)), 0, "got %s", s);
	cr_expect_null(strstr(s, "TRAILING"), "data_len not respected: %s", s);
	f = parse_frame(s, &len);
	json_decref(f);
	s = proto_encode_message("x", 1, "1", 1, NULL, 0, &len);
	f = parse_frame(s, &len);
	cr_expect_null(json_object_get(f, "from"), "from omitted when from_raw is NULL");
	json_decref(f);
	free(from);
	assert_no_leaks();
}

/* The client encoders must produce what proto_decode accepts. */
Test(encode, client_commands_decode_back)
{
	json_t *id = id_int(42), *sid = id_str("q"), *data;
	struct proto_cmd cmd;
	size_t len;
	char *s;

	s = proto_encode_connect(id, "bob", &len);
	cr_assert_not_null(s);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_eq(cmd.kind, PROTO_KIND_CONNECT);
	cr_expect_str_eq(cmd.user, "bob");
	cr_expect(json_equal(cmd.id, id));
	proto_cmd_fini(&cmd);
	free(s);

	s = proto_encode_connect(NULL, NULL, &len);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_null(cmd.user);
	cr_expect_null(cmd.id);
	proto_cmd_fini(&cmd);
	free(s);

	s = proto_encode_subscribe(sid, "chat:lobby", &len);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_eq(cmd.kind, PROTO_KIND_SUBSCRIBE);
	cr_expect_str_eq(cmd.channel, "chat:lobby");
	cr_expect(json_equal(cmd.id, sid));
	proto_cmd_fini(&cmd);
	free(s);

	s = proto_encode_unsubscribe(id, "chat:lobby", &len);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_eq(cmd.kind, PROTO_KIND_UNSUBSCRIBE);
	cr_expect_str_eq(cmd.channel, "chat:lobby");
	proto_cmd_fini(&cmd);
	free(s);

	data = json_pack("{s:s, s:[i, b, n]}", "text", "hi", "list", 1, 1);
	s = proto_encode_publish(id, "chat:lobby", data, &len);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_eq(cmd.kind, PROTO_KIND_PUBLISH);
	cr_expect(json_equal(cmd.data, data));
	proto_cmd_fini(&cmd);
	free(s);
	json_decref(data);

	s = proto_encode_publish(NULL, "a", NULL, &len);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect(json_is_null(cmd.data), "NULL data is published as null");
	proto_cmd_fini(&cmd);
	free(s);

	s = proto_encode_ping(id, &len);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_eq(cmd.kind, PROTO_KIND_PING);
	proto_cmd_fini(&cmd);
	free(s);

	json_decref(id);
	json_decref(sid);
	assert_no_leaks();
}

Test(error, set_fills_code_and_truncates_text)
{
	struct proto_error err;
	char *longtext = repeat('x', 500);

	cr_expect_eq(proto_error_set(&err, PROTO_ERR_TOO_LARGE, "data is %d bytes", 70000), -1);
	cr_expect_eq(err.code, PROTO_ERR_TOO_LARGE);
	cr_expect_str_eq(err.text, "data is 70000 bytes");
	cr_expect_eq(proto_error_set(&err, PROTO_ERR_INTERNAL, "%s", longtext), -1);
	cr_expect_eq(strlen(err.text), sizeof(err.text) - 1);
	cr_expect_eq(proto_error_set(NULL, PROTO_ERR_INTERNAL, "ignored"), -1);
	free(longtext);
	assert_no_leaks();
}

/* ---- issue 3: tokens, info, recover/rewind, presence, history ---- */

/* {"k":"xxx..."} of exactly n bytes as written (n >= 8). */
static char *
info_of(size_t n)
{
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	cr_assert_geq(n, 8);
	memcpy(s, "{\"k\":\"", 6);
	memset(s + 6, 'x', n - 8);
	memcpy(s + n - 2, "\"}", 3);
	return s;
}

Test(decode, connect_with_token_and_info_keeps_both)
{
	static const char frame[] =
		"{\"type\":\"connect\",\"id\":1,\"token\":\"aaa.bbb.ccc\","
		"\"info\": { \"name\" : \"Alice\", \"n\":1.50 } ,\"user\":\"alice\"}";
	static const char info[] = "{ \"name\" : \"Alice\", \"n\":1.50 }";
	struct proto_cmd cmd;
	char *copy;

	/* info_raw points into the input: decode a copy that stays alive. */
	copy = strdup(frame);
	cr_assert_not_null(copy);
	memset(&cmd, 0, sizeof(cmd));
	cr_assert_eq(proto_decode(copy, strlen(copy), &cmd, NULL), 0);
	cr_expect_eq(cmd.kind, PROTO_KIND_CONNECT);
	cr_expect_str_eq(cmd.user, "alice");
	cr_assert_not_null(cmd.token);
	cr_expect_eq(cmd.token_len, 11);
	cr_expect_str_eq(cmd.token, "aaa.bbb.ccc");
	cr_assert_not_null(cmd.info_raw);
	cr_expect(cmd.info_raw >= copy && cmd.info_raw + cmd.info_len <= copy + strlen(copy),
		  "info_raw is not inside the input");
	cr_expect(cmd.info_len == strlen(info) && memcmp(cmd.info_raw, info, cmd.info_len) == 0,
		  "info not kept byte for byte: %.*s", (int)cmd.info_len, cmd.info_raw);
	proto_cmd_fini(&cmd);
	free(copy);
	expect_ok("{\"type\":\"connect\"}", &cmd);
	cr_expect_null(cmd.token);
	cr_expect_null(cmd.info_raw);
	cr_expect_eq(cmd.info_len, 0);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, info_of_4096_bytes_is_accepted_and_4097_refused)
{
	char *i4096 = info_of(4096), *i4097 = info_of(4097), *i8 = info_of(8);
	char *ok = fmt("{\"type\":\"connect\",\"id\":3,\"info\":%s}", i4096);
	char *bad = fmt("{\"type\":\"connect\",\"id\":3,\"info\":%s}", i4097);
	char *small = fmt("{\"type\":\"connect\",\"info\":%s}", i8);
	/* The limit is on the object as sent: whitespace counts. */
	char *spaced = fmt("{\"type\":\"connect\",\"info\":{%4096s}}", "");
	struct proto_cmd cmd;
	struct proto_error err;

	expect_ok(ok, &cmd);
	cr_expect_eq(cmd.info_len, 4096);
	proto_cmd_fini(&cmd);
	expect_ok(small, &cmd);
	cr_expect_eq(cmd.info_len, 8);
	proto_cmd_fini(&cmd);
	expect_refused(bad, PROTO_ERR_BAD_REQUEST);
	expect_refused(spaced, PROTO_ERR_BAD_REQUEST);
	/* The refusal keeps the id for the reply. */
	cr_expect_eq(decode(bad, &cmd, &err), -1);
	cr_expect_eq(json_integer_value(cmd.id), 3);
	proto_cmd_fini(&cmd);
	free(i4096), free(i4097), free(i8), free(ok), free(bad), free(small), free(spaced);
	assert_no_leaks();
}

Test(decode, info_that_is_not_an_object_is_refused)
{
	static const char *const frames[] = {
		"{\"type\":\"connect\",\"info\":\"Alice\"}",
		"{\"type\":\"connect\",\"info\":[\"Alice\"]}",
		"{\"type\":\"connect\",\"info\":null}",
		"{\"type\":\"connect\",\"info\":1}",
		"{\"type\":\"connect\",\"info\":true}",
		"{\"type\":\"connect\",\"info\":{\"a\":1,\"a\":2}}",
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
		expect_refused(frames[i], PROTO_ERR_BAD_REQUEST);
	assert_no_leaks();
}

Test(decode, tokens_are_strings_of_at_most_8192_bytes)
{
	char *t8192 = repeat('t', PROTO_TOKEN_MAX), *t8193 = repeat('t', PROTO_TOKEN_MAX + 1);
	static const char *const kinds[] = { "connect", "refresh" };
	struct proto_cmd cmd;

	for (size_t k = 0; k < 2; k++) {
		char *ok = fmt("{\"type\":\"%s\",\"token\":\"%s\"}", kinds[k], t8192);
		char *bad = fmt("{\"type\":\"%s\",\"token\":\"%s\"}", kinds[k], t8193);
		char *nul = fmt("{\"type\":\"%s\",\"token\":\"a.b\\u0000.c\"}", kinds[k]);
		char *num = fmt("{\"type\":\"%s\",\"token\":12}", kinds[k]);
		char *nil = fmt("{\"type\":\"%s\",\"token\":null}", kinds[k]);

		expect_ok(ok, &cmd);
		cr_expect_eq(cmd.token_len, PROTO_TOKEN_MAX, "%s", kinds[k]);
		proto_cmd_fini(&cmd);
		expect_refused(bad, PROTO_ERR_BAD_REQUEST);
		expect_refused(nul, PROTO_ERR_BAD_REQUEST);
		expect_refused(num, PROTO_ERR_BAD_REQUEST);
		expect_refused(nil, PROTO_ERR_BAD_REQUEST);
		free(ok), free(bad), free(nul), free(num), free(nil);
	}
	free(t8192), free(t8193);
	assert_no_leaks();
}

Test(decode, refresh_needs_a_token)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"refresh\",\"id\":9,\"token\":\"x.y.z\"}", &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_REFRESH);
	cr_expect_str_eq(cmd.token, "x.y.z");
	cr_expect_eq(cmd.token_len, 5);
	cr_expect_eq(json_integer_value(cmd.id), 9);
	proto_cmd_fini(&cmd);
	expect_refused("{\"type\":\"refresh\",\"id\":9}", PROTO_ERR_BAD_REQUEST);
	expect_refused("{\"type\":\"refresh\",\"token\":[\"x\"]}", PROTO_ERR_BAD_REQUEST);
	/* An empty string is a string: whether it verifies is the server's business. */
	expect_ok("{\"type\":\"refresh\",\"token\":\"\"}", &cmd);
	cr_expect_eq(cmd.token_len, 0);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, subscribe_with_recover_rewind_and_token)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"subscribe\",\"id\":2,\"channel\":\"chat:lobby\","
		  "\"recover\":{\"offset\":41,\"epoch\":\"7c1e40a2b9f35d10\"}}",
		  &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_SUBSCRIBE);
	cr_expect(cmd.has_since);
	cr_expect_eq(cmd.since_offset, 41);
	cr_expect_str_eq(cmd.since_epoch, "7c1e40a2b9f35d10");
	cr_expect_eq(cmd.rewind, 0);
	cr_expect_null(cmd.token);
	proto_cmd_fini(&cmd);

	expect_ok("{\"type\":\"subscribe\",\"channel\":\"a\",\"rewind\":5,\"token\":\"c.t.k\"}",
		  &cmd);
	cr_expect_not(cmd.has_since);
	cr_expect_eq(cmd.rewind, 5);
	cr_expect_str_eq(cmd.token, "c.t.k");
	proto_cmd_fini(&cmd);

	/* Both may be sent (the server ignores rewind then); offset 0 is "nothing seen". */
	expect_ok("{\"type\":\"subscribe\",\"channel\":\"a\",\"rewind\":4294967295,"
		  "\"recover\":{\"epoch\":\"\",\"offset\":0,\"future\":1}}",
		  &cmd);
	cr_expect(cmd.has_since);
	cr_expect_eq(cmd.since_offset, 0);
	cr_expect_str_eq(cmd.since_epoch, "");
	cr_expect_eq(cmd.rewind, 4294967295ULL);
	proto_cmd_fini(&cmd);

	expect_ok("{\"type\":\"subscribe\",\"channel\":\"a\",\"rewind\":0,"
		  "\"recover\":{\"offset\":9223372036854775807,\"epoch\":\"e\"}}",
		  &cmd);
	cr_expect_eq(cmd.since_offset, (uint64_t)INT64_MAX);
	cr_expect_eq(cmd.rewind, 0);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, malformed_recover_and_since_are_bad_request)
{
	static const char *const bodies[] = {
		"5",
		"\"41\"",
		"null",
		"[41,\"e\"]",
		"{}",
		"{\"offset\":1}",
		"{\"epoch\":\"e\"}",
		"{\"offset\":-1,\"epoch\":\"e\"}",
		"{\"offset\":1.5,\"epoch\":\"e\"}",
		"{\"offset\":\"1\",\"epoch\":\"e\"}",
		"{\"offset\":1,\"epoch\":7}",
		"{\"offset\":1,\"epoch\":null}",
		"{\"offset\":1,\"epoch\":\"a\\u0000b\"}",
		"{\"offset\":1,\"epoch\":\"e\",\"offset\":2}",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char *sub =
			fmt("{\"type\":\"subscribe\",\"channel\":\"a\",\"recover\":%s}", bodies[i]);
		char *hist =
			fmt("{\"type\":\"history\",\"channel\":\"a\",\"since\":%s}", bodies[i]);

		expect_refused(sub, PROTO_ERR_BAD_REQUEST);
		expect_refused(hist, PROTO_ERR_BAD_REQUEST);
		free(sub), free(hist);
	}
	assert_no_leaks();
}

Test(decode, epochs_are_at_most_64_bytes)
{
	char *e64 = repeat('e', PROTO_EPOCH_MAX), *e65 = repeat('e', PROTO_EPOCH_MAX + 1);
	char *ok = fmt("{\"type\":\"history\",\"channel\":\"a\",\"since\":{\"offset\":1,\"epoch\":"
		       "\"%s\"}}",
		       e64);
	char *bad = fmt("{\"type\":\"subscribe\",\"channel\":\"a\",\"recover\":{\"offset\":1,"
			"\"epoch\":\"%s\"}}",
			e65);
	struct proto_cmd cmd;

	expect_ok(ok, &cmd);
	cr_expect_eq(strlen(cmd.since_epoch), PROTO_EPOCH_MAX);
	proto_cmd_fini(&cmd);
	expect_refused(bad, PROTO_ERR_BAD_REQUEST);
	free(e64), free(e65), free(ok), free(bad);
	assert_no_leaks();
}

Test(decode, rewind_and_limit_are_counts)
{
	static const char *const bad[] = { "-1",   "1.5", "\"5\"",	"true",
					   "null", "[5]", "4294967296", "9223372036854775807" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *sub = fmt("{\"type\":\"subscribe\",\"channel\":\"a\",\"rewind\":%s}", bad[i]);
		char *hist = fmt("{\"type\":\"history\",\"channel\":\"a\",\"limit\":%s}", bad[i]);

		expect_refused(sub, PROTO_ERR_BAD_REQUEST);
		expect_refused(hist, PROTO_ERR_BAD_REQUEST);
		free(sub), free(hist);
	}
	assert_no_leaks();
}

Test(decode, history_with_limit_and_since)
{
	struct proto_cmd cmd;

	expect_ok("{\"type\":\"history\",\"id\":8,\"channel\":\"chat:lobby\",\"limit\":50,"
		  "\"since\":{\"offset\":10,\"epoch\":\"7c1e40a2b9f35d10\"}}",
		  &cmd);
	cr_expect_eq(cmd.kind, PROTO_KIND_HISTORY);
	cr_expect_str_eq(cmd.channel, "chat:lobby");
	cr_expect_eq(cmd.limit, 50);
	cr_expect(cmd.has_since);
	cr_expect_eq(cmd.since_offset, 10);
	cr_expect_str_eq(cmd.since_epoch, "7c1e40a2b9f35d10");
	proto_cmd_fini(&cmd);
	expect_ok("{\"type\":\"history\",\"channel\":\"x\"}", &cmd);
	cr_expect_eq(cmd.limit, 0, "absent limit is 0 (all retained)");
	cr_expect_not(cmd.has_since);
	proto_cmd_fini(&cmd);
	assert_no_leaks();
}

Test(decode, presence_history_and_refresh_need_their_members)
{
	static const char *const kinds[] = { "presence", "presence_stats", "history" };
	struct proto_cmd cmd;

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char *ok =
			fmt("{\"type\":\"%s\",\"id\":\"q\",\"channel\":\"chat:lobby\"}", kinds[k]);
		char *none = fmt("{\"type\":\"%s\",\"id\":\"q\"}", kinds[k]);
		char *num = fmt("{\"type\":\"%s\",\"channel\":5}", kinds[k]);
		char *bad = fmt("{\"type\":\"%s\",\"channel\":\"a/b\"}", kinds[k]);
		char *empty = fmt("{\"type\":\"%s\",\"channel\":\"\"}", kinds[k]);

		expect_ok(ok, &cmd);
		cr_expect_str_eq(proto_kind_name(cmd.kind), kinds[k]);
		cr_expect_str_eq(cmd.channel, "chat:lobby");
		cr_expect_eq(cmd.channel_len, 10);
		cr_expect_str_eq(json_string_value(cmd.id), "q");
		proto_cmd_fini(&cmd);
		expect_refused(none, PROTO_ERR_BAD_REQUEST);
		expect_refused(num, PROTO_ERR_BAD_REQUEST);
		expect_refused(bad, PROTO_ERR_INVALID_CHANNEL);
		expect_refused(empty, PROTO_ERR_INVALID_CHANNEL);
		free(ok), free(none), free(num), free(bad), free(empty);
	}
	assert_no_leaks();
}

Test(encode, wire_names_of_the_new_kinds_and_codes)
{
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_REFRESH), "refresh");
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_PRESENCE), "presence");
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_PRESENCE_STATS), "presence_stats");
	cr_expect_str_eq(proto_kind_name(PROTO_KIND_HISTORY), "history");
	cr_expect_str_eq(proto_errcode_name(PROTO_ERR_UNAUTHORIZED), "unauthorized");
	cr_expect_str_eq(proto_errcode_name(PROTO_ERR_TOKEN_EXPIRED), "token_expired");
	cr_expect_eq(PROTO_CLOSE_TOKEN_EXPIRED, 4001);
}

Test(encode, error_frames_for_the_token_codes)
{
	size_t len;
	json_t *f = parse_frame(proto_encode_error(NULL, PROTO_ERR_TOKEN_EXPIRED, "expired", &len),
				&len);

	expect_member_str(f, "code", "token_expired");
	cr_expect_null(json_object_get(f, "id"), "token_expired answers no command");
	json_decref(f);
	f = parse_frame(proto_encode_error(NULL, PROTO_ERR_UNAUTHORIZED, "bad signature", &len),
			&len);
	expect_member_str(f, "code", "unauthorized");
	json_decref(f);
	assert_no_leaks();
}

Test(encode, connected_carries_expires_only_when_given)
{
	json_t *id = id_int(1), *f;
	size_t len;

	f = parse_frame(proto_encode_connected(id, "c-1", "alice", "switchboard/0.1.0", 1795000000,
					       &len),
			&len);
	cr_expect(json_is_integer(json_object_get(f, "expires")));
	cr_expect_eq(json_integer_value(json_object_get(f, "expires")), 1795000000);
	expect_member_str(f, "user", "alice");
	cr_expect_eq(json_object_size(f), 6);
	json_decref(f);
	f = parse_frame(proto_encode_connected(id, "c-1", "alice", "s", 0, &len), &len);
	cr_expect_null(json_object_get(f, "expires"), "expires 0 must be omitted");
	json_decref(f);
	json_decref(id);
	assert_no_leaks();
}

Test(encode, subscribed_has_offset_epoch_and_optional_recovered)
{
	static const struct {
		int recovered;
		const char *want; /* NULL: absent */
	} cases[] = { { -1, NULL }, { 0, "false" }, { 1, "true" } };
	json_t *id = id_int(2);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		json_t *f = parse_frame(proto_encode_subscribed(id, "chat:lobby", 41,
								"7c1e40a2b9f35d10",
								cases[i].recovered, &len),
					&len);
		json_t *r = json_object_get(f, "recovered");

		expect_member_str(f, "type", "subscribed");
		expect_member_str(f, "channel", "chat:lobby");
		expect_member_str(f, "epoch", "7c1e40a2b9f35d10");
		cr_expect(json_is_integer(json_object_get(f, "offset")));
		cr_expect_eq(json_integer_value(json_object_get(f, "offset")), 41);
		if (cases[i].want == NULL) {
			cr_expect_null(r, "recovered -1 must be omitted");
			cr_expect_eq(json_object_size(f), 5);
		} else {
			cr_expect(json_is_boolean(r), "recovered is not a boolean");
			cr_expect_eq(json_is_true(r), cases[i].recovered == 1, "recovered %s",
				     cases[i].want);
			cr_expect_eq(json_object_size(f), 6);
		}
		json_decref(f);
	}
	json_decref(id);
	assert_no_leaks();
}

Test(encode, subscribed_to_a_channel_with_no_state_has_offset_0)
{
	size_t len;
	json_t *f = parse_frame(proto_encode_subscribed(NULL, "a", 0, NULL, -1, &len), &len);

	cr_expect_eq(json_integer_value(json_object_get(f, "offset")), 0);
	cr_expect(json_is_string(json_object_get(f, "epoch")), "epoch must stay a string");
	json_decref(f);
	assert_no_leaks();
}

Test(encode, refreshed_has_expires)
{
	json_t *id = id_str("r"), *f;
	size_t len;

	f = parse_frame(proto_encode_refreshed(id, 1795003600, &len), &len);
	expect_member_str(f, "type", "refreshed");
	expect_id(f, id);
	cr_expect_eq(json_integer_value(json_object_get(f, "expires")), 1795003600);
	cr_expect_eq(json_object_size(f), 3);
	json_decref(f);
	f = parse_frame(proto_encode_refreshed(NULL, 0, &len), &len);
	cr_expect_null(json_object_get(f, "expires"));
	cr_expect_eq(json_object_size(f), 1);
	json_decref(f);
	json_decref(id);
	assert_no_leaks();
}

Test(encode, member_has_client_user_and_info_verbatim)
{
	static const char info[] = "{\"name\" : \"Alice\",\"n\":1.50}";
	const char *start;
	size_t len, vlen;
	char *s;
	json_t *f;

	s = proto_encode_member("5f0c2a9e81d4-1", "alice", info, strlen(info), &len);
	cr_assert_not_null(s);
	cr_expect_eq(proto_find_member(s, len, "info", &start, &vlen), 0, "%s", s);
	cr_expect(vlen == strlen(info) && memcmp(start, info, vlen) == 0, "info rewritten: %s", s);
	f = parse_frame(s, &len);
	expect_member_str(f, "client", "5f0c2a9e81d4-1");
	expect_member_str(f, "user", "alice");
	expect_member_str(json_object_get(f, "info"), "name", "Alice");
	cr_expect_eq(json_object_size(f), 3);
	json_decref(f);
	f = parse_frame(proto_encode_member("c", NULL, NULL, 0, &len), &len);
	expect_member_str(f, "user", "");
	cr_expect_null(json_object_get(f, "info"), "no info, no member");
	cr_expect_eq(json_object_size(f), 2);
	json_decref(f);
	/* info_len is respected: nothing after it is copied. */
	f = parse_frame(proto_encode_member("c", "u", "{}TRAILING", 2, &len), &len);
	cr_expect(json_is_object(json_object_get(f, "info")));
	cr_expect_eq(json_object_size(json_object_get(f, "info")), 0);
	json_decref(f);
	assert_no_leaks();
}

Test(encode, join_and_leave_carry_the_member_and_no_id)
{
	size_t mlen, len;
	char *member = proto_encode_member("5f0c2a9e81d4-2", "bob", NULL, 0, &mlen);
	const char *start;
	size_t vlen;
	char *s;
	json_t *f;

	cr_assert_not_null(member);
	for (int join = 0; join < 2; join++) {
		s = proto_encode_join_leave(join, "chat:lobby", member, mlen, &len);
		cr_assert_not_null(s);
		cr_expect_eq(proto_find_member(s, len, "member", &start, &vlen), 0, "%s", s);
		cr_expect(vlen == mlen && memcmp(start, member, mlen) == 0, "member rewritten: %s",
			  s);
		f = parse_frame(s, &len);
		expect_member_str(f, "type", join ? "join" : "leave");
		expect_member_str(f, "channel", "chat:lobby");
		expect_member_str(json_object_get(f, "member"), "client", "5f0c2a9e81d4-2");
		expect_member_str(json_object_get(f, "member"), "user", "bob");
		cr_expect_null(json_object_get(f, "id"), "events carry no id");
		cr_expect_eq(json_object_size(f), 3);
		json_decref(f);
	}
	free(member);
	assert_no_leaks();
}

Test(encode, presence_and_presence_stats)
{
	static const char members[] = "[{\"client\":\"5f0c2a9e81d4-1\",\"user\":\"alice\",\"info\":"
				      "{\"name\":\"Alice\"}}]";
	json_t *id = id_int(6), *f, *m;
	const char *start;
	size_t len, vlen;
	char *s;

	s = proto_encode_presence(id, "chat:lobby", members, strlen(members), false, &len);
	cr_assert_not_null(s);
	cr_expect_eq(proto_find_member(s, len, "members", &start, &vlen), 0, "%s", s);
	cr_expect(vlen == strlen(members) && memcmp(start, members, vlen) == 0, "%s", s);
	f = parse_frame(s, &len);
	expect_member_str(f, "type", "presence");
	expect_member_str(f, "channel", "chat:lobby");
	expect_id(f, id);
	m = json_object_get(f, "members");
	cr_assert(json_is_array(m));
	cr_expect_eq(json_array_size(m), 1);
	expect_member_str(json_array_get(m, 0), "user", "alice");
	json_decref(f);
	f = parse_frame(proto_encode_presence(NULL, "a", "[]", 2, false, &len), &len);
	cr_expect_eq(json_array_size(json_object_get(f, "members")), 0);
	cr_expect_null(json_object_get(f, "id"));
	cr_expect_null(json_object_get(f, "truncated"), "truncated only when true");
	cr_expect_eq(json_object_size(f), 3);
	json_decref(f);
	f = parse_frame(proto_encode_presence(id, "a", "[]", 2, true, &len), &len);
	cr_expect(json_is_true(json_object_get(f, "truncated")), "truncated must be true");
	cr_expect_eq(json_array_size(json_object_get(f, "members")), 0);
	json_decref(f);

	f = parse_frame(proto_encode_presence_stats(id, "chat:lobby", 3, 2, &len), &len);
	expect_member_str(f, "type", "presence_stats");
	expect_member_str(f, "channel", "chat:lobby");
	expect_id(f, id);
	cr_expect_eq(json_integer_value(json_object_get(f, "clients")), 3);
	cr_expect_eq(json_integer_value(json_object_get(f, "users")), 2);
	cr_expect_eq(json_object_size(f), 5);
	json_decref(f);
	json_decref(id);
	assert_no_leaks();
}

Test(encode, history_has_position_and_messages_verbatim)
{
	static const char msgs[] =
		"[{\"offset\":11,\"data\":{\"text\":\"hi\"},\"from\":{\"client\":\"c-1\",\"user\":"
		"\"alice\"}},"
		"{\"offset\":12,\"data\":1.50,\"from\":{\"client\":\"c-2\",\"user\":\"bob\"}}]";
	json_t *id = id_int(8), *f;
	const char *start;
	size_t len, vlen;
	char *s;

	s = proto_encode_history(id, "chat:lobby", 12, "7c1e40a2b9f35d10", msgs, strlen(msgs),
				 false, &len);
	cr_assert_not_null(s);
	cr_expect_eq(proto_find_member(s, len, "messages", &start, &vlen), 0, "%s", s);
	cr_expect(vlen == strlen(msgs) && memcmp(start, msgs, vlen) == 0, "messages rewritten: %s",
		  s);
	f = parse_frame(s, &len);
	expect_member_str(f, "type", "history");
	expect_member_str(f, "channel", "chat:lobby");
	expect_member_str(f, "epoch", "7c1e40a2b9f35d10");
	expect_id(f, id);
	cr_expect_eq(json_integer_value(json_object_get(f, "offset")), 12);
	cr_expect_eq(json_array_size(json_object_get(f, "messages")), 2);
	cr_expect_eq(json_object_size(f), 6);
	json_decref(f);
	f = parse_frame(proto_encode_history(NULL, "a", 0, NULL, "[]", 2, false, &len), &len);
	cr_expect_eq(json_integer_value(json_object_get(f, "offset")), 0);
	cr_expect(json_is_string(json_object_get(f, "epoch")));
	cr_expect_eq(json_array_size(json_object_get(f, "messages")), 0);
	cr_expect_null(json_object_get(f, "truncated"), "truncated only when true");
	json_decref(f);
	f = parse_frame(proto_encode_history(id, "a", 3, "e", "[]", 2, true, &len), &len);
	cr_expect(json_is_true(json_object_get(f, "truncated")), "truncated must be true");
	cr_expect_eq(json_array_size(json_object_get(f, "messages")), 0);
	expect_id(f, id);
	json_decref(f);
	json_decref(id);
	assert_no_leaks();
}

Test(encode, message_n_reads_only_channel_len_bytes)
{
	size_t len;
	char *s = proto_encode_message_n("chat:lobbyGARBAGE", 10, 3, "1", 1, NULL, 0, &len);
	json_t *f;

	cr_assert_not_null(s);
	cr_expect_null(strstr(s, "GARBAGE"), "%s", s);
	f = parse_frame(s, &len);
	expect_member_str(f, "channel", "chat:lobby");
	cr_expect_eq(json_integer_value(json_object_get(f, "offset")), 3);
	json_decref(f);
	assert_no_leaks();
}

Test(encode, connect_with_token_decodes_back)
{
	json_t *id = id_int(7);
	struct proto_cmd cmd;
	size_t len;
	char *s;

	s = proto_encode_connect_token(id, NULL, "aaa.bbb.ccc", &len);
	cr_assert_not_null(s);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_eq(cmd.kind, PROTO_KIND_CONNECT);
	cr_expect_str_eq(cmd.token, "aaa.bbb.ccc");
	cr_expect_null(cmd.user);
	cr_expect(json_equal(cmd.id, id));
	proto_cmd_fini(&cmd);
	free(s);
	s = proto_encode_connect_token(NULL, "bob", NULL, &len);
	cr_assert_eq(proto_decode(s, len, &cmd, NULL), 0, "%s", s);
	cr_expect_str_eq(cmd.user, "bob");
	cr_expect_null(cmd.token);
	proto_cmd_fini(&cmd);
	free(s);
	json_decref(id);
	assert_no_leaks();
}

/* ---- UTF-8 (RFC 3629), used on every inbound text frame ---- */

Test(utf8, valid_sequences_at_every_boundary)
{
	static const struct {
		const char *s;
		size_t len;
		const char *what;
	} ok[] = {
		{ "", 0, "empty" },
		{ "plain ascii {}", 14, "ascii" },
		{ "a\0b", 3, "NUL is a valid character" },
		{ "\x7f", 1, "U+007F" },
		{ "\xc2\x80", 2, "U+0080" },
		{ "\xdf\xbf", 2, "U+07FF" },
		{ "\xe0\xa0\x80", 3, "U+0800" },
		{ "\xed\x9f\xbf", 3, "U+D7FF" },
		{ "\xee\x80\x80", 3, "U+E000" },
		{ "\xef\xbf\xbf", 3, "U+FFFF" },
		{ "\xf0\x90\x80\x80", 4, "U+10000" },
		{ "\xf4\x8f\xbf\xbf", 4, "U+10FFFF" },
		{ "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80!", 15, "mixed" },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_expect(proto_utf8_valid(ok[i].s, ok[i].len), "%s refused", ok[i].what);
	assert_no_leaks();
}

Test(utf8, malformed_sequences_are_refused)
{
	static const struct {
		const char *s;
		size_t len;
		const char *what;
	} bad[] = {
		{ "\x80", 1, "lone continuation" },
		{ "a\xbf", 2, "continuation after ascii" },
		{ "\xc0\x80", 2, "overlong NUL" },
		{ "\xc1\xbf", 2, "overlong U+007F" },
		{ "\xe0\x80\x80", 3, "overlong 3-byte" },
		{ "\xe0\x9f\xbf", 3, "overlong U+07FF" },
		{ "\xf0\x80\x80\x80", 4, "overlong 4-byte" },
		{ "\xf0\x8f\xbf\xbf", 4, "overlong U+FFFF" },
		{ "\xed\xa0\x80", 3, "surrogate U+D800" },
		{ "\xed\xbf\xbf", 3, "surrogate U+DFFF" },
		{ "\xf4\x90\x80\x80", 4, "U+110000" },
		{ "\xf5\x80\x80\x80", 4, "F5" },
		{ "\xf8\x88\x80\x80\x80", 5, "5-byte form" },
		{ "\xfe", 1, "FE" },
		{ "\xff", 1, "FF" },
		{ "\xc3", 1, "truncated 2-byte" },
		{ "\xe2\x9c", 2, "truncated 3-byte" },
		{ "\xf0\x9f\x98", 3, "truncated 4-byte" },
		{ "\xc3\x28", 2, "bad continuation" },
		{ "\xe2\x28\xa1", 3, "bad second byte" },
		{ "\xe2\x82\x28", 3, "bad third byte" },
		{ "\xf0\x9f\x98\x28", 4, "bad fourth byte" },
		{ "ok\xc3\xa9\xc3", 5, "valid then truncated" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_not(proto_utf8_valid(bad[i].s, bad[i].len), "%s accepted", bad[i].what);
	assert_no_leaks();
}

Test(utf8, only_len_bytes_are_read)
{
	/* A valid prefix followed by garbage outside len. */
	cr_expect(proto_utf8_valid("ab\xff", 2));
	cr_expect(proto_utf8_valid("\xc3\xa9\xc3", 2));
	/* A sequence cut by len is truncated even if the bytes after it would complete it. */
	cr_expect_not(proto_utf8_valid("\xc3\xa9", 1));
	cr_expect_not(proto_utf8_valid("\xf0\x9f\x98\x80", 3));
	assert_no_leaks();
}

Test(utf8, sanitize_replaces_only_broken_bytes)
{
	char s1[] = "ok \xc3\xa9 \xff x \xe2\x9c";
	char s2[] = "caf\xc3\xa9";

	proto_utf8_sanitize(s1);
	cr_expect_str_eq(s1, "ok \xc3\xa9 ? x ??");
	cr_expect(proto_utf8_valid(s1, strlen(s1)));
	proto_utf8_sanitize(s2);
	cr_expect_str_eq(s2, "caf\xc3\xa9", "valid text must not change");
	assert_no_leaks();
}

/* ---- corpus: tests/corpus/proto/{valid,invalid}/<case>/ ---- */

static char *
read_file(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static const char *
member_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static void
trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* expect is a JSON object: "kind" (wire name), and when they apply "id", "channel",
 * "user" (string or null) and "data_raw" (the exact text of data). */
static void
check_valid_case(const char *name, const char *dir)
{
	size_t ilen, elen;
	char *input = read_file(dir, "input", &ilen), *expect = read_file(dir, "expect", &elen);
	struct proto_cmd cmd;
	struct proto_error err = { 0 };
	json_t *e, *v;

	cr_assert_not_null(input, "%s: no input", name);
	cr_assert_not_null(expect, "%s: no expect", name);
	e = json_loadb(expect, elen, 0, NULL);
	cr_assert_not_null(e, "%s: expect is not JSON", name);
	if (proto_decode(input, ilen, &cmd, &err) != 0) {
		cr_expect_fail("valid/%s: refused with %s (%s)", name, proto_errcode_name(err.code),
			       err.text);
		goto out;
	}
	cr_expect_str_eq(proto_kind_name(cmd.kind), member_str(e, "kind"), "valid/%s: kind", name);
	v = json_object_get(e, "id");
	cr_expect(v == NULL ? cmd.id == NULL : json_equal(cmd.id, v), "valid/%s: id", name);
	v = json_object_get(e, "channel");
	if (v != NULL)
		cr_expect(cmd.channel != NULL && strcmp(cmd.channel, json_string_value(v)) == 0,
			  "valid/%s: channel %s", name, cmd.channel);
	v = json_object_get(e, "user");
	if (json_is_null(v))
		cr_expect_null(cmd.user, "valid/%s: user", name);
	else if (v != NULL)
		cr_expect(cmd.user != NULL && strcmp(cmd.user, json_string_value(v)) == 0,
			  "valid/%s: user %s", name, cmd.user);
	v = json_object_get(e, "data_raw");
	if (v != NULL)
		cr_expect(cmd.data_raw != NULL && cmd.data_len == json_string_length(v) &&
				  memcmp(cmd.data_raw, json_string_value(v), cmd.data_len) == 0,
			  "valid/%s: data_raw \"%.*s\"", name, (int)cmd.data_len,
			  cmd.data_raw != NULL ? cmd.data_raw : "");
out:
	proto_cmd_fini(&cmd);
	json_decref(e);
	free(input);
	free(expect);
}

static void
check_invalid_case(const char *name, const char *dir)
{
	size_t ilen, elen;
	char *input = read_file(dir, "input", &ilen), *expect = read_file(dir, "error", &elen);
	struct proto_cmd cmd;
	struct proto_error err = { 0 };
	int rc;

	cr_assert_not_null(input, "%s: no input", name);
	cr_assert_not_null(expect, "%s: no error file", name);
	trim(expect);
	rc = proto_decode(input, ilen, &cmd, &err);
	cr_expect_eq(rc, -1, "invalid/%s: accepted", name);
	if (rc == -1)
		cr_expect_str_eq(proto_errcode_name(err.code), expect, "invalid/%s: %s", name,
				 err.text);
	proto_cmd_fini(&cmd);
	free(input);
	free(expect);
}

static int
walk(const char *sub, void (*check)(const char *, const char *))
{
	char root[4096], dir[4096 + 256];
	struct dirent **names;
	int n, cases = 0;

	snprintf(root, sizeof(root), "%s/proto/%s", SWITCHBOARD_CORPUS_DIR, sub);
	n = scandir(root, &names, NULL, alphasort);
	cr_assert_geq(n, 0, "cannot read %s: %s", root, strerror(errno));
	for (int i = 0; i < n; i++) {
		struct stat st;

		snprintf(dir, sizeof(dir), "%s/%s", root, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			check(names[i]->d_name, dir);
			cases++;
		}
		free(names[i]);
	}
	free(names);
	return cases;
}

Test(corpus, every_valid_case_decodes_as_expected)
{
	cr_expect_gt(walk("valid", check_valid_case), 0, "empty corpus");
	assert_no_leaks();
}

Test(corpus, every_invalid_case_is_refused_with_its_code)
{
	cr_expect_gt(walk("invalid", check_invalid_case), 0, "empty corpus");
	assert_no_leaks();
}

/* ---- allocation failures (jansson test_chaos.c) ---- */

static int fail_after;

static void *
chaos_malloc(size_t n)
{
	if (fail_after-- <= 0)
		return NULL;
	return malloc(n);
}

static void
chaos_free(void *p)
{
	free(p);
}

/* Runs every decoder and encoder path with the Nth allocation failing, N = 0, 1, 2...
 * until a run sees no failure. Nothing may crash or leak; results are either success or
 * a reported failure. */
Test(chaos, allocation_failures_are_reported_not_fatal, .timeout = 60)
{
	static const char *const frames[] = {
		"{\"type\":\"connect\",\"id\":1,\"user\":\"alice\"}",
		"{\"type\":\"subscribe\",\"id\":\"x\",\"channel\":\"chat:lobby\"}",
		"{\"type\":\"publish\",\"id\":4,\"channel\":\"a\",\"d\\u0061ta\":{\"k\":[1,2.5,"
		"\"s\"]}}",
		"{\"type\":\"nope\",\"id\":4}",
		"{\"type\":\"ping\",\"type\":\"ping\"}",
		"[1,2,3]",
		"{\"type\":\"connect\",\"id\":1,\"token\":\"a.b.c\",\"info\":{\"n\":[1,{\"x\":2}]}"
		"}",
		"{\"type\":\"refresh\",\"id\":2,\"token\":\"a.b.c\"}",
		"{\"type\":\"subscribe\",\"channel\":\"a\",\"recover\":{\"offset\":4,\"epoch\":"
		"\"e\"},\"rewind\":3}",
		"{\"type\":\"history\",\"channel\":\"a\",\"since\":{\"offset\":4,\"epoch\":\"e\"},"
		"\"limit\":3}",
		"{\"type\":\"presence_stats\",\"channel\":\"a\"}",
	};
	bool clean = false;

	for (int n = 0; !clean && n < 10000; n++) {
		json_t *id;
		size_t len;
		char *s;

		json_set_alloc_funcs(chaos_malloc, chaos_free);
		fail_after = n;
		id = json_integer(1);
		for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
			struct proto_cmd cmd;
			struct proto_error err;

			if (proto_decode(frames[i], strlen(frames[i]), &cmd, &err) != 0)
				cr_expect_neq(err.code, PROTO_ERR_NONE);
			proto_cmd_fini(&cmd);
		}
		free(proto_encode_connected(id, "c", "u", "s", 0, &len));
		free(proto_encode_subscribed(id, "a", 0, "e", -1, &len));
		free(proto_encode_unsubscribed(id, "a", &len));
		free(proto_encode_published(id, "a", 1, "e", &len));
		free(proto_encode_pong(id, &len));
		free(proto_encode_error(id, PROTO_ERR_FORBIDDEN, "m", &len));
		free(proto_encode_from("c", "u", &len));
		free(proto_encode_connect(id, "u", &len));
		free(proto_encode_subscribe(id, "a", &len));
		free(proto_encode_unsubscribe(id, "a", &len));
		free(proto_encode_publish(id, "a", id, &len));
		free(proto_encode_connected(id, "c", "u", "s", 1795000000, &len));
		free(proto_encode_subscribed(id, "a", 4, "e", 1, &len));
		free(proto_encode_refreshed(id, 1795000000, &len));
		free(proto_encode_presence(id, "a", "[]", 2, true, &len));
		free(proto_encode_presence_stats(id, "a", 1, 1, &len));
		free(proto_encode_history(id, "a", 4, "e", "[]", 2, true, &len));
		free(proto_encode_member("c", "u", "{}", 2, &len));
		free(proto_encode_join_leave(true, "a", "{}", 2, &len));
		free(proto_encode_connect_token(id, "u", "a.b.c", &len));
		s = proto_encode_ping(id, &len);
		clean = fail_after > 0;
		free(s);
		json_decref(id);
		json_set_alloc_funcs(malloc, free);
	}
	cr_expect(clean, "never ran without an allocation failure");
	assert_no_leaks();
}
