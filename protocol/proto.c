/* proto.c: decoding of client commands and encoding of protocol v1 frames.
 * Every check a peer can fail ends in a struct proto_error, never in an abort.
 */
#include "proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const errcode_names[] = {
	[PROTO_ERR_NONE] = "none",
	[PROTO_ERR_BAD_REQUEST] = "bad_request",
	[PROTO_ERR_UNKNOWN_TYPE] = "unknown_type",
	[PROTO_ERR_NOT_CONNECTED] = "not_connected",
	[PROTO_ERR_ALREADY_CONNECTED] = "already_connected",
	[PROTO_ERR_INVALID_CHANNEL] = "invalid_channel",
	[PROTO_ERR_FORBIDDEN] = "forbidden",
	[PROTO_ERR_TOO_LARGE] = "too_large",
	[PROTO_ERR_ALREADY_SUBSCRIBED] = "already_subscribed",
	[PROTO_ERR_NOT_SUBSCRIBED] = "not_subscribed",
	[PROTO_ERR_LIMIT_EXCEEDED] = "limit_exceeded",
	[PROTO_ERR_INTERNAL] = "internal",
	[PROTO_ERR_UNAUTHORIZED] = "unauthorized",
	[PROTO_ERR_TOKEN_EXPIRED] = "token_expired",
	[PROTO_ERR_RATE_LIMITED] = "rate_limited",
	[PROTO_ERR_UNAVAILABLE] = "unavailable",
};

static const char *const kind_names[] = {
	[PROTO_KIND_NONE] = "",
	[PROTO_KIND_CONNECT] = "connect",
	[PROTO_KIND_SUBSCRIBE] = "subscribe",
	[PROTO_KIND_UNSUBSCRIBE] = "unsubscribe",
	[PROTO_KIND_PUBLISH] = "publish",
	[PROTO_KIND_PING] = "ping",
	[PROTO_KIND_REFRESH] = "refresh",
	[PROTO_KIND_PRESENCE] = "presence",
	[PROTO_KIND_PRESENCE_STATS] = "presence_stats",
	[PROTO_KIND_HISTORY] = "history",
};

const char *
proto_errcode_name(enum proto_errcode code)
{
	if ((size_t)code >= sizeof(errcode_names) / sizeof(errcode_names[0]))
		return "internal";
	return errcode_names[code];
}

const char *
proto_kind_name(enum proto_kind kind)
{
	if ((size_t)kind >= sizeof(kind_names) / sizeof(kind_names[0]))
		return "";
	return kind_names[kind];
}

int
proto_error_set(struct proto_error *err, enum proto_errcode code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	proto_utf8_sanitize(err->text);
	return -1;
}

/* Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	/* The second byte's range rules out overlongs, surrogates and > U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

bool
proto_utf8_valid(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;

	while (i < len) {
		/* Fast path over ASCII, which is nearly all JSON. */
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = utf8_seq(p + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

void
proto_utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);

		if (n == 0) {
			p[i++] = '?';
			continue;
		}
		i += n;
	}
}

static bool
channel_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == ':' || c == '.' || c == '@' || c == '=' || c == '-';
}

bool
proto_channel_valid(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len > PROTO_CHANNEL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!channel_char_ok((unsigned char)name[i]))
			return false;
	return true;
}

size_t
proto_channel_ns_len(const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);

	return colon == NULL ? 0 : (size_t)(colon - name);
}

void
proto_cmd_fini(struct proto_cmd *cmd)
{
	if (cmd == NULL)
		return;
	json_decref(cmd->root);
	memset(cmd, 0, sizeof(*cmd));
}

static enum proto_kind
kind_from_name(const char *s)
{
	for (size_t k = PROTO_KIND_CONNECT; k < sizeof(kind_names) / sizeof(kind_names[0]); k++)
		if (strcmp(s, kind_names[k]) == 0)
			return (enum proto_kind)k;
	return PROTO_KIND_NONE;
}

/* A string member that must not hide a NUL (jansson allows "\u0000"). */
static int
get_string(json_t *root, const char *key, bool required, size_t max, const char **out,
	   size_t *out_len, struct proto_error *err)
{
	json_t *v = json_object_get(root, key);
	size_t n;

	*out = NULL;
	if (v == NULL) {
		if (required)
			return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "missing field \"%s\"",
					       key);
		return 0;
	}
	if (!json_is_string(v))
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "field \"%s\" must be a string",
				       key);
	n = json_string_length(v);
	if (strlen(json_string_value(v)) != n)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "field \"%s\" contains a NUL",
				       key);
	if (n > max)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
				       "field \"%s\" is longer than %zu bytes", key, max);
	*out = json_string_value(v);
	if (out_len != NULL)
		*out_len = n;
	return 0;
}

static int
decode_id(struct proto_cmd *cmd, struct proto_error *err)
{
	json_t *id = json_object_get(cmd->root, "id");

	if (id == NULL)
		return 0;
	if (json_is_integer(id)) {
		cmd->id = id;
		return 0;
	}
	if (json_is_string(id) && json_string_length(id) <= PROTO_ID_STR_MAX &&
	    strlen(json_string_value(id)) == json_string_length(id)) {
		cmd->id = id;
		return 0;
	}
	return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
			       "field \"id\" must be an integer or a string of at most %d bytes",
			       PROTO_ID_STR_MAX);
}

static int
decode_channel(struct proto_cmd *cmd, struct proto_error *err)
{
	json_t *v = json_object_get(cmd->root, "channel");

	if (v == NULL)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "missing field \"channel\"");
	if (!json_is_string(v))
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
				       "field \"channel\" must be a string");
	if (!proto_channel_valid(json_string_value(v), json_string_length(v)) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return proto_error_set(err, PROTO_ERR_INVALID_CHANNEL,
				       "channel must be 1-%d bytes of [A-Za-z0-9_:.@=-]",
				       PROTO_CHANNEL_MAX);
	cmd->channel = json_string_value(v);
	cmd->channel_len = json_string_length(v);
	return 0;
}

/* An optional non-negative integer member; *out stays 0 when absent. */
static int
get_count(json_t *root, const char *key, uint64_t max, uint64_t *out, struct proto_error *err)
{
	json_t *v = json_object_get(root, key);

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
				       "field \"%s\" must be an integer from 0 to %llu", key,
				       (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* "recover" / "since": {"offset": integer >= 0, "epoch": string}. */
static int
decode_position(struct proto_cmd *cmd, const char *key, struct proto_error *err)
{
	json_t *v = json_object_get(cmd->root, key);
	json_t *off, *ep;

	if (v == NULL)
		return 0;
	off = json_object_get(v, "offset");
	ep = json_object_get(v, "epoch");
	if (!json_is_object(v) || !json_is_integer(off) || json_integer_value(off) < 0 ||
	    !json_is_string(ep) || json_string_length(ep) > PROTO_EPOCH_MAX ||
	    strlen(json_string_value(ep)) != json_string_length(ep))
		return proto_error_set(
			err, PROTO_ERR_BAD_REQUEST,
			"field \"%s\" must be {\"offset\": integer >= 0, \"epoch\": string}", key);
	cmd->has_since = true;
	cmd->since_offset = (uint64_t)json_integer_value(off);
	cmd->since_epoch = json_string_value(ep);
	return 0;
}

static int
decode_token(struct proto_cmd *cmd, bool required, struct proto_error *err)
{
	return get_string(cmd->root, "token", required, PROTO_TOKEN_MAX, &cmd->token,
			  &cmd->token_len, err);
}

static int
decode_connect(struct proto_cmd *cmd, const char *buf, size_t len, struct proto_error *err)
{
	json_t *info = json_object_get(cmd->root, "info");

	if (get_string(cmd->root, "user", false, PROTO_USER_MAX, &cmd->user, NULL, err) != 0 ||
	    decode_token(cmd, false, err) != 0)
		return -1;
	if (info == NULL)
		return 0;
	if (!json_is_object(info))
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
				       "field \"info\" must be an object");
	if (proto_find_member(buf, len, "info", &cmd->info_raw, &cmd->info_len) != 0)
		return proto_error_set(err, PROTO_ERR_INTERNAL, "cannot locate \"info\"");
	if (cmd->info_len > PROTO_INFO_MAX)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
				       "field \"info\" is longer than %d bytes", PROTO_INFO_MAX);
	return 0;
}

static int
decode_body(struct proto_cmd *cmd, const char *buf, size_t len, struct proto_error *err)
{
	switch (cmd->kind) {
	case PROTO_KIND_CONNECT:
		return decode_connect(cmd, buf, len, err);
	case PROTO_KIND_REFRESH:
		return decode_token(cmd, true, err);
	case PROTO_KIND_SUBSCRIBE:
		if (decode_channel(cmd, err) != 0 || decode_token(cmd, false, err) != 0 ||
		    decode_position(cmd, "recover", err) != 0)
			return -1;
		return get_count(cmd->root, "rewind", UINT32_MAX, &cmd->rewind, err);
	case PROTO_KIND_UNSUBSCRIBE:
	case PROTO_KIND_PRESENCE:
	case PROTO_KIND_PRESENCE_STATS:
		return decode_channel(cmd, err);
	case PROTO_KIND_HISTORY:
		if (decode_channel(cmd, err) != 0 || decode_position(cmd, "since", err) != 0)
			return -1;
		return get_count(cmd->root, "limit", UINT32_MAX, &cmd->limit, err);
	case PROTO_KIND_PUBLISH:
		if (decode_channel(cmd, err) != 0)
			return -1;
		cmd->data = json_object_get(cmd->root, "data");
		if (cmd->data == NULL)
			return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
					       "missing field \"data\"");
		if (proto_find_member(buf, len, "data", &cmd->data_raw, &cmd->data_len) != 0)
			return proto_error_set(err, PROTO_ERR_INTERNAL, "cannot locate \"data\"");
		return 0;
	case PROTO_KIND_PING:
	case PROTO_KIND_NONE:
		return 0;
	}
	return 0;
}

int
proto_decode(const char *buf, size_t len, struct proto_cmd *cmd, struct proto_error *err)
{
	json_error_t jerr;
	json_t *type;
	const char *tname;

	memset(cmd, 0, sizeof(*cmd));
	if (len == 0)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "empty frame");
	/* JSON_ALLOW_NUL: "\u0000" is valid JSON inside data; the fields we read as C
	 * strings are checked for embedded NULs one by one. */
	cmd->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
			       &jerr);
	if (cmd->root == NULL)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "invalid JSON at byte %d: %s",
				       jerr.position, jerr.text);
	if (!json_is_object(cmd->root))
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "frame must be a JSON object");
	if (decode_id(cmd, err) != 0)
		return -1;
	type = json_object_get(cmd->root, "type");
	if (type == NULL)
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST, "missing field \"type\"");
	if (!json_is_string(type))
		return proto_error_set(err, PROTO_ERR_BAD_REQUEST,
				       "field \"type\" must be a string");
	tname = json_string_value(type);
	cmd->kind =
		strlen(tname) == json_string_length(type) ? kind_from_name(tname) : PROTO_KIND_NONE;
	if (cmd->kind == PROTO_KIND_NONE)
		return proto_error_set(err, PROTO_ERR_UNKNOWN_TYPE,
				       "unknown command type \"%.40s\"", tname);
	return decode_body(cmd, buf, len, err);
}

/* ---- encoding ---- */

static char *
dump(json_t *obj, size_t *len)
{
	char *s;

	if (obj == NULL)
		return NULL;
	s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(obj);
	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}

/* A new object {"type":type[,"id":id]}, or NULL. */
static json_t *
reply(const char *type, const json_t *id)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (json_object_set_new(o, "type", json_string(type)) != 0 ||
	    (id != NULL && json_object_set_new(o, "id", json_deep_copy(id)) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Adds key:string; on failure frees o and returns NULL. */
static json_t *
with_str(json_t *o, const char *key, const char *value)
{
	if (o == NULL)
		return NULL;
	if (value != NULL && json_object_set_new(o, key, json_string(value)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
with_int(json_t *o, const char *key, uint64_t value)
{
	if (o == NULL)
		return NULL;
	if (json_object_set_new(o, key, json_integer((json_int_t)value)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *
proto_encode_connected(const json_t *id, const char *client, const char *user, const char *server,
		       int64_t expires, size_t *len)
{
	json_t *o = reply("connected", id);

	o = with_str(o, "client", client);
	o = with_str(o, "user", user != NULL ? user : "");
	o = with_str(o, "server", server);
	if (expires > 0)
		o = with_int(o, "expires", (uint64_t)expires);
	return dump(o, len);
}

char *
proto_encode_subscribed(const json_t *id, const char *channel, uint64_t offset, const char *epoch,
			int recovered, size_t *len)
{
	json_t *o = with_str(reply("subscribed", id), "channel", channel);

	o = with_int(o, "offset", offset);
	o = with_str(o, "epoch", epoch != NULL ? epoch : "");
	if (recovered >= 0 && o != NULL &&
	    json_object_set_new(o, "recovered", json_boolean(recovered)) != 0) {
		json_decref(o);
		o = NULL;
	}
	return dump(o, len);
}

char *
proto_encode_refreshed(const json_t *id, int64_t expires, size_t *len)
{
	json_t *o = reply("refreshed", id);

	if (expires > 0)
		o = with_int(o, "expires", (uint64_t)expires);
	return dump(o, len);
}

char *
proto_encode_presence_stats(const json_t *id, const char *channel, uint64_t clients, uint64_t users,
			    size_t *len)
{
	json_t *o = with_str(reply("presence_stats", id), "channel", channel);

	o = with_int(o, "clients", clients);
	return dump(with_int(o, "users", users), len);
}

/* Encodes o (without its closing brace), then appends ,"key":<raw>} : the way to put
 * caller-built JSON text (already valid) into a frame without re-encoding it. */
static char *
dump_with_raw(json_t *o, const char *key, const char *raw, size_t raw_len, size_t *len)
{
	size_t head_len, klen = strlen(key), total;
	char *head = dump(o, &head_len), *s;

	if (head == NULL)
		return NULL;
	total = head_len - 1 + 4 + klen + raw_len + 1;
	s = malloc(total + 1);
	if (s != NULL) {
		size_t n = head_len - 1;

		memcpy(s, head, n);
		s[n++] = ',';
		s[n++] = '"';
		memcpy(s + n, key, klen), n += klen;
		s[n++] = '"';
		s[n++] = ':';
		memcpy(s + n, raw, raw_len), n += raw_len;
		s[n++] = '}';
		s[n] = '\0';
		*len = n;
	}
	free(head);
	return s;
}

/* Adds "truncated":true when t; on failure frees o and returns NULL. */
static json_t *
with_truncated(json_t *o, bool t)
{
	if (o != NULL && t && json_object_set_new(o, "truncated", json_true()) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *
proto_encode_with_raw(json_t *o, const char *key, const char *raw, size_t raw_len, size_t *len)
{
	return dump_with_raw(o, key, raw, raw_len, len);
}

char *
proto_encode_unsubscribed_by_server(const char *channel, size_t *len)
{
	return dump(with_str(with_str(reply("unsubscribed", NULL), "channel", channel), "reason",
			     "server"),
		    len);
}

char *
proto_encode_presence(const json_t *id, const char *channel, const char *members_raw,
		      size_t members_len, bool truncated, size_t *len)
{
	json_t *o = with_truncated(with_str(reply("presence", id), "channel", channel), truncated);

	return dump_with_raw(o, "members", members_raw, members_len, len);
}

char *
proto_encode_history(const json_t *id, const char *channel, uint64_t offset, const char *epoch,
		     const char *messages_raw, size_t messages_len, bool truncated, size_t *len)
{
	json_t *o = with_str(reply("history", id), "channel", channel);

	o = with_int(o, "offset", offset);
	o = with_str(o, "epoch", epoch != NULL ? epoch : "");
	o = with_truncated(o, truncated);
	return dump_with_raw(o, "messages", messages_raw, messages_len, len);
}

char *
proto_encode_member(const char *client, const char *user, const char *info_raw, size_t info_len,
		    size_t *len)
{
	json_t *o = json_object();

	o = with_str(o, "client", client);
	o = with_str(o, "user", user != NULL ? user : "");
	if (info_raw == NULL)
		return dump(o, len);
	return dump_with_raw(o, "info", info_raw, info_len, len);
}

char *
proto_encode_join_leave(bool join, const char *channel, const char *member_raw, size_t member_len,
			size_t *len)
{
	json_t *o = with_str(reply(join ? "join" : "leave", NULL), "channel", channel);

	return dump_with_raw(o, "member", member_raw, member_len, len);
}

char *
proto_encode_unsubscribed(const json_t *id, const char *channel, size_t *len)
{
	return dump(with_str(reply("unsubscribed", id), "channel", channel), len);
}

char *
proto_encode_published(const json_t *id, const char *channel, uint64_t offset, const char *epoch,
		       size_t *len)
{
	json_t *o = with_str(reply("published", id), "channel", channel);

	o = with_int(o, "offset", offset);
	o = with_str(o, "epoch", epoch);
	return dump(o, len);
}

char *
proto_encode_reset(const char *channel, uint64_t offset, const char *epoch, size_t *len)
{
	json_t *o = with_str(reply("reset", NULL), "channel", channel);

	o = with_int(o, "offset", offset);
	o = with_str(o, "epoch", epoch);
	return dump(o, len);
}

char *
proto_encode_pong(const json_t *id, size_t *len)
{
	return dump(reply("pong", id), len);
}

char *
proto_encode_error(const json_t *id, enum proto_errcode code, const char *message, size_t *len)
{
	json_t *o = with_str(reply("error", id), "code", proto_errcode_name(code));
	char *clean = strdup(message);
	char *out;

	/* The message may quote client bytes; json_string() refuses invalid UTF-8. */
	if (clean == NULL) {
		json_decref(o);
		return NULL;
	}
	proto_utf8_sanitize(clean);
	out = dump(with_str(o, "message", clean), len);
	free(clean);
	return out;
}

char *
proto_encode_from(const char *client, const char *user, size_t *len)
{
	json_t *o = json_object();

	o = with_str(o, "client", client);
	o = with_str(o, "user", user != NULL ? user : "");
	return dump(o, len);
}

static const char message_head[] = "{\"type\":\"message\",\"channel\":\"";

char *
proto_encode_message(const char *channel, uint64_t offset, const char *data_raw, size_t data_len,
		     const char *from_raw, size_t from_len, size_t *len)
{
	return proto_encode_message_n(channel, strlen(channel), offset, data_raw, data_len,
				      from_raw, from_len, len);
}

char *
proto_encode_message_n(const char *channel, size_t clen, uint64_t offset, const char *data_raw,
		       size_t data_len, const char *from_raw, size_t from_len, size_t *len)
{
	const char *head = message_head;
	char mid[64];
	size_t mlen, total;
	char *s, *p;

	/* The channel name was validated: it needs no escaping. */
	mlen = (size_t)snprintf(mid, sizeof(mid), "\",\"offset\":%" PRIu64 ",\"data\":", offset);
	total = sizeof(message_head) - 1 + clen + mlen + data_len + 1;
	if (from_raw != NULL)
		total += sizeof(",\"from\":") - 1 + from_len;
	s = malloc(total + 1);
	if (s == NULL)
		return NULL;
	p = s;
	memcpy(p, head, sizeof(message_head) - 1), p += sizeof(message_head) - 1;
	memcpy(p, channel, clen), p += clen;
	memcpy(p, mid, mlen), p += mlen;
	memcpy(p, data_raw, data_len), p += data_len;
	if (from_raw != NULL) {
		memcpy(p, ",\"from\":", sizeof(",\"from\":") - 1), p += sizeof(",\"from\":") - 1;
		memcpy(p, from_raw, from_len), p += from_len;
	}
	*p++ = '}';
	*p = '\0';
	*len = total;
	return s;
}

char *
proto_encode_connect(const json_t *id, const char *user, size_t *len)
{
	return dump(with_str(reply("connect", id), "user", user), len);
}

char *
proto_encode_connect_token(const json_t *id, const char *user, const char *token, size_t *len)
{
	return dump(with_str(with_str(reply("connect", id), "user", user), "token", token), len);
}

char *
proto_encode_subscribe(const json_t *id, const char *channel, size_t *len)
{
	return dump(with_str(reply("subscribe", id), "channel", channel), len);
}

char *
proto_encode_unsubscribe(const json_t *id, const char *channel, size_t *len)
{
	return dump(with_str(reply("unsubscribe", id), "channel", channel), len);
}

char *
proto_encode_publish(const json_t *id, const char *channel, const json_t *data, size_t *len)
{
	json_t *o = with_str(reply("publish", id), "channel", channel);

	if (o != NULL &&
	    json_object_set_new(o, "data", data != NULL ? json_deep_copy(data) : json_null()) !=
		    0) {
		json_decref(o);
		return NULL;
	}
	return dump(o, len);
}

char *
proto_encode_ping(const json_t *id, size_t *len)
{
	return dump(reply("ping", id), len);
}
