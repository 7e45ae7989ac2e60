/* api_render.c: the HTTP API's answer bodies (api_render.h). Lists of messages and
 * members come as JSON text from listing.c and are spliced in verbatim
 * (proto_encode_with_raw), so published data is never re-serialised. */
#include "api_render.h"
#include "backend.h"
#include "listing.h"
#include "message.h"
#include "proto.h"
#include "respond.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_RESPONSE_BUDGET (1u << 20) /* bytes of history in one response */

static char *render_error(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

char *
render_verror(const char *code, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	proto_utf8_sanitize(msg);
	return xcheck(http_error_body(code, msg));
}

static char *
render_error(const char *code, const char *fmt, ...)
{
	va_list ap;
	char *body;

	va_start(ap, fmt);
	body = render_verror(code, fmt, ap);
	va_end(ap);
	return body;
}

char *
render_refusal(int rc, const char *channel, unsigned *status)
{
	*status = rc == -ENOENT || rc == -EPERM ? 403 : rc == -EMSGSIZE ? 413 : 503;
	if (rc == -ENOENT)
		return render_error("forbidden", "the namespace of %s is not configured", channel);
	if (rc == -EPERM)
		return render_error("forbidden", "that feature is off in the namespace of %s",
				    channel);
	if (rc == -EMSGSIZE)
		return render_error("too_large", "data is over limits.max_data_size");
	return xcheck(http_error_body(
		"unavailable", rc == -EAGAIN
				       ? "the server has too many operations in flight; retry later"
				       : "the server cannot reach its engine; retry later"));
}

/* {"channel":..., extra's members..., key: raw} (extra taken, may be NULL). */
static char *
with_list(const char *channel, size_t len, json_t *extra, const char *key, const char *raw,
	  size_t raw_len)
{
	json_t *o = xcheck(json_pack("{s:s%}", "channel", channel, len));
	size_t out_len;

	if (extra != NULL)
		json_object_update(o, extra);
	json_decref(extra);
	return xcheck(proto_encode_with_raw(o, key, raw, raw_len, &out_len));
}

static char *
dump_owned(json_t *o)
{
	char *out = xcheck(json_dumps(o, JSON_COMPACT));

	json_decref(o);
	return out;
}

char *
render_history(const char *channel, size_t len, const struct engine_history *h,
	       const char *since_epoch)
{
	bool truncated;
	size_t alen;
	char *arr, *out;
	json_t *extra;

	arr = listing_messages(h->messages, h->count, HTTP_RESPONSE_BUDGET,
			       since_epoch != NULL && strcmp(h->pos.epoch, since_epoch) == 0,
			       &truncated, &alen);
	extra = xcheck(
		json_pack("{s:I,s:s}", "offset", (json_int_t)h->pos.offset, "epoch", h->pos.epoch));
	if (truncated)
		json_object_set_new(extra, "truncated", json_true());
	out = with_list(channel, len, extra, "messages", arr, alen);
	free(arr);
	return out;
}

char *
render_channel(const char *channel, size_t len, const struct backend_channel *c)
{
	json_t *o = xcheck(json_pack("{s:s%,s:I,s:I,s:s}", "channel", channel, len, "subscribers",
				     (json_int_t)c->subscribers, "offset",
				     (json_int_t)c->pos.offset, "epoch", c->pos.epoch));

	if (c->has_presence)
		json_object_set_new(o, "presence",
				    json_pack("{s:I,s:I}", "clients",
					      (json_int_t)c->presence.clients, "users",
					      (json_int_t)c->presence.users));
	return dump_owned(o);
}

char *
render_presence(const char *channel, size_t len, const struct engine_presence *p)
{
	bool truncated;
	size_t alen;
	char *arr = listing_members(p->members, p->count, SIZE_MAX, &truncated, &alen);
	char *out = with_list(channel, len, NULL, "members", arr, alen);

	free(arr);
	return out;
}

char *
render_position(const char *channel, size_t len, const struct engine_position *pos)
{
	return dump_owned(xcheck(json_pack("{s:s%,s:I,s:s}", "channel", channel, len, "offset",
					   (json_int_t)pos->offset, "epoch", pos->epoch)));
}

char *
render_published(const char *channel, const struct engine_published *p)
{
	char body[400];

	snprintf(body, sizeof(body), "{\"channel\":\"%s\",\"offset\":%" PRIu64 ",\"epoch\":\"%s\"}",
		 channel, message_offset(p->msg), message_epoch(p->msg));
	return xstrdup(body);
}

char *
render_channels(const struct backend_channel_list *l)
{
	json_t *arr = xcheck(json_array()), *o;

	for (size_t i = 0; i < l->count; i++)
		json_array_append_new(arr, json_pack("{s:s%,s:I}", "channel", l->entries[i].name,
						     l->entries[i].len, "subscribers",
						     (json_int_t)l->entries[i].subscribers));
	o = xcheck(json_pack("{s:o}", "channels", arr)); /* takes the array */
	if (l->truncated) /* a bounded response; narrow it with a prefix */
		json_object_set_new(o, "truncated", json_true());
	return dump_owned(o);
}

char *
render_count(const char *name, size_t n)
{
	char body[96];

	snprintf(body, sizeof(body), "{\"%s\":%zu}", name, n);
	return xstrdup(body);
}

json_t *
render_channel_error(const char *name, size_t len, const char *code, const char *message)
{
	return json_pack("{s:s%,s:{s:s,s:s}}", "channel", name, len, "error", "code", code,
			 "message", message);
}

json_t *
render_publish_result(const char *name, size_t len, int rc, const struct engine_published *p)
{
	if (rc == -ENOENT || rc == -EMSGSIZE)
		return render_channel_error(name, len, rc == -ENOENT ? "forbidden" : "too_large",
					    rc == -ENOENT ? "namespace not configured"
							  : "data too large");
	if (rc != 0)
		return render_channel_error(name, len, "unavailable",
					    "the server cannot reach its engine; retry later");
	return json_pack("{s:s,s:I,s:s}", "channel", name, "offset",
			 (json_int_t)message_offset(p->msg), "epoch", message_epoch(p->msg));
}

char *
render_results(json_t *results)
{
	return dump_owned(xcheck(json_pack("{s:o}", "results", results))); /* takes the list */
}
