/* sbclient.c: protocol steps for integration tests (see sbclient.h). */
#include "sbclient.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_int_t last_id;

json_int_t
sb_next_id(void)
{
	return ++last_id;
}

static void
show(const char *what, const json_t *reply)
{
	char *s = reply != NULL ? json_dumps(reply, JSON_COMPACT) : NULL;

	fprintf(stderr, "sbclient: %s: %s\n", what, s != NULL ? s : "no reply");
	free(s);
}

static json_t *
vrequest(struct ws_client *c, json_int_t id, const char *fmt, va_list ap)
{
	char *body;
	json_t *r;

	if (vasprintf(&body, fmt, ap) < 0)
		return NULL;
	if (ws_client_sendf(c, "{\"id\":%lld,%s}", (long long)id, body) != 0) {
		free(body);
		return NULL;
	}
	free(body);
	r = ws_client_wait_id(c, id, WS_DEFAULT_TIMEOUT_MS);
	return r;
}

json_t *
sb_request(struct ws_client *c, const char *fmt, ...)
{
	va_list ap;
	json_t *r;

	va_start(ap, fmt);
	r = vrequest(c, sb_next_id(), fmt, ap);
	va_end(ap);
	return r;
}

struct ws_client *
sb_connect(int port, const char *user)
{
	struct ws_client *c = ws_client_open_ok(port);
	json_t *r;

	if (c == NULL)
		return NULL;
	if (user != NULL)
		r = sb_request(c, "\"type\":\"connect\",\"user\":\"%s\"", user);
	else
		r = sb_request(c, "\"type\":\"connect\"");
	if (strcmp(json_str(r, "type"), "connected") != 0) {
		show("connect", r);
		json_decref(r);
		ws_client_free(c);
		return NULL;
	}
	json_decref(r);
	return c;
}

struct ws_client *
sb_connect_token(int port, const char *token, json_t **reply)
{
	struct ws_client *c = ws_client_open_ok(port);
	json_t *r;

	if (reply != NULL)
		*reply = NULL;
	if (c == NULL)
		return NULL;
	r = sb_request(c, "\"type\":\"connect\",\"token\":\"%s\"", token);
	if (strcmp(json_str(r, "type"), "connected") != 0) {
		show("connect with a token", r);
		json_decref(r);
		ws_client_free(c);
		return NULL;
	}
	if (reply != NULL)
		*reply = r;
	else
		json_decref(r);
	return c;
}

static int
channel_step(struct ws_client *c, const char *cmd, const char *reply, const char *channel)
{
	json_t *r = sb_request(c, "\"type\":\"%s\",\"channel\":\"%s\"", cmd, channel);
	int rc = strcmp(json_str(r, "type"), reply) == 0 &&
				 strcmp(json_str(r, "channel"), channel) == 0
			 ? 0
			 : -1;

	if (rc != 0)
		show(cmd, r);
	json_decref(r);
	return rc;
}

int
sb_subscribe(struct ws_client *c, const char *channel)
{
	return channel_step(c, "subscribe", "subscribed", channel);
}

int
sb_unsubscribe(struct ws_client *c, const char *channel)
{
	return channel_step(c, "unsubscribe", "unsubscribed", channel);
}

json_int_t
sb_publish(struct ws_client *c, const char *channel, const char *data_raw, char *epoch,
	   size_t epoch_len)
{
	json_t *r = sb_request(c, "\"type\":\"publish\",\"channel\":\"%s\",\"data\":%s", channel,
			       data_raw);
	json_int_t offset = -1;

	if (strcmp(json_str(r, "type"), "published") == 0 &&
	    strcmp(json_str(r, "channel"), channel) == 0)
		offset = json_int(r, "offset");
	else
		show("publish", r);
	if (epoch != NULL && epoch_len > 0)
		snprintf(epoch, epoch_len, "%s", json_str(r, "epoch"));
	json_decref(r);
	return offset;
}

int
sb_expect_error(struct ws_client *c, const char *code, const char *fmt, ...)
{
	json_int_t id = sb_next_id();
	va_list ap;
	json_t *r;
	int rc;

	va_start(ap, fmt);
	r = vrequest(c, id, fmt, ap);
	va_end(ap);
	rc = strcmp(json_str(r, "type"), "error") == 0 && strcmp(json_str(r, "code"), code) == 0 &&
			     json_int(r, "id") == id &&
			     json_is_string(json_object_get(r, "message"))
		     ? 0
		     : -1;
	if (rc != 0) {
		fprintf(stderr, "sbclient: expected error %s for id %lld\n", code, (long long)id);
		show("got", r);
	}
	json_decref(r);
	return rc;
}

json_t *
sb_next_message(struct ws_client *c, int timeout_ms)
{
	json_t *j;

	while ((j = ws_client_recv_json(c, timeout_ms)) != NULL) {
		if (strcmp(json_str(j, "type"), "message") == 0)
			return j;
		show("skipped while waiting for a message", j);
		json_decref(j);
	}
	return NULL;
}

int
sb_is_presence_event(const json_t *frame)
{
	const char *type = json_str(frame, "type");

	return strcmp(type, "join") == 0 || strcmp(type, "leave") == 0;
}

char *
sb_recv_text_skip_events(struct ws_client *c, int timeout_ms, size_t *len)
{
	char *s;
	size_t n;

	while ((s = ws_client_recv_text(c, timeout_ms, &n)) != NULL) {
		json_t *j = json_loadb(s, n, 0, NULL);
		int event = j != NULL && sb_is_presence_event(j);

		json_decref(j);
		if (!event) {
			if (len != NULL)
				*len = n;
			return s;
		}
		free(s);
	}
	return NULL;
}

json_t *
sb_recv_skip_events(struct ws_client *c, int timeout_ms)
{
	json_t *j;

	while ((j = ws_client_recv_json(c, timeout_ms)) != NULL) {
		if (!sb_is_presence_event(j))
			return j;
		json_decref(j);
	}
	return NULL;
}
