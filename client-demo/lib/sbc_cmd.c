/* sbc_cmd.c: the commands the client sends and the channels it keeps. A command is
 * encoded once into its own buffer, queued on outq, written one per CLIENT_WRITEABLE
 * and then waits on `sent` for the reply with its id (the server answers in command
 * order, so that is normally the head).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "sbc_internal.h"

void
sbc_queue_push(struct sbc_queue *q, struct sbc_out *o)
{
	o->next = NULL;
	if (q->tail != NULL)
		q->tail->next = o;
	else
		q->head = o;
	q->tail = o;
	q->n++;
}

struct sbc_out *
sbc_queue_pop(struct sbc_queue *q)
{
	struct sbc_out *o = q->head;

	if (o == NULL)
		return NULL;
	q->head = o->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	return o;
}

struct sbc_out *
sbc_queue_take(struct sbc_queue *q, int64_t id)
{
	struct sbc_out **pp, *prev = NULL;

	for (pp = &q->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		struct sbc_out *o = *pp;

		if (o->id != id)
			continue;
		*pp = o->next;
		if (q->tail == o)
			q->tail = prev;
		q->n--;
		return o;
	}
	return NULL;
}

void
sbc_out_free(struct sbc_out *o)
{
	if (o == NULL)
		return;
	free(o->channel);
	free(o);
}

static struct sbc_out *
out_new(enum sbc_cmd kind, int64_t id, const char *channel, size_t len)
{
	struct sbc_out *o = malloc(sizeof(*o) + LWS_PRE + len + 1);

	if (o == NULL)
		return NULL;
	*o = (struct sbc_out){ .id = id, .kind = kind, .len = len };
	o->buf[LWS_PRE + len] = '\0';
	if (channel != NULL && (o->channel = strdup(channel)) == NULL) {
		free(o);
		return NULL;
	}
	return o;
}

static void
enqueue(struct sbc_client *c, struct sbc_out *o)
{
	sbc_queue_push(&c->outq, o);
	if (c->wsi != NULL && c->established)
		lws_callback_on_writable(c->wsi);
	sbc_update_deadline(c, false);
}

int
sbc_queue_text(struct sbc_client *c, enum sbc_cmd kind, int64_t id, const char *channel,
	       const char *text, size_t len, struct sbc_out **out)
{
	struct sbc_out *o = out_new(kind, id, channel, len);

	if (o == NULL)
		return -ENOMEM;
	memcpy(o->buf + LWS_PRE, text, len);
	if (out != NULL)
		*out = o;
	enqueue(c, o);
	return 0;
}

/* A new command object {"type":type,"id":N}, the id taken from the client. */
static json_t *
command_new(struct sbc_client *c, const char *type, int64_t *id)
{
	*id = c->next_id++;
	return json_pack("{s:s, s:I}", "type", type, "id", (json_int_t)*id);
}

/* Adds a member to a command being built; a failure (out of memory) makes *o NULL. */
static void
add_member(json_t **o, const char *key, json_t *value)
{
	if (*o != NULL && json_object_set_new(*o, key, value) != 0) {
		json_decref(*o);
		*o = NULL;
	} else if (*o == NULL) {
		json_decref(value);
	}
}

/* Encodes and queues o (takes the reference). */
static int
send_object(struct sbc_client *c, enum sbc_cmd kind, int64_t id, const char *channel, json_t *o,
	    struct sbc_out **out)
{
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc;

	json_decref(o);
	if (text == NULL)
		return -ENOMEM;
	rc = sbc_queue_text(c, kind, id, channel, text, strlen(text), out);
	free(text);
	return rc;
}

int
sbc_send_connect(struct sbc_client *c)
{
	int64_t id;
	json_t *o = command_new(c, "connect", &id);

	if (c->user != NULL)
		add_member(&o, "user", json_string(c->user));
	if (c->info != NULL)
		add_member(&o, "info", json_incref(c->info));
	if (c->token != NULL)
		add_member(&o, "token", json_string(c->token));
	return send_object(c, SBC_CMD_CONNECT, id, NULL, o, NULL);
}

/* subscribe, resuming from the channel's position when one is known (a reconnect),
 * else with rewind on the first successful subscribe. */
int
sbc_send_subscribe(struct sbc_client *c, struct sbc_chan *ch)
{
	struct sbc_out *out = NULL;
	int64_t id;
	json_t *o = command_new(c, "subscribe", &id);
	int rc;

	add_member(&o, "channel", json_string(ch->name));
	if (ch->have_pos)
		add_member(&o, "recover",
			   json_pack("{s:I, s:s}", "offset", (json_int_t)ch->pos, "epoch",
				     ch->epoch));
	else if (!ch->rewound && ch->rewind != 0)
		add_member(&o, "rewind", json_integer((json_int_t)ch->rewind));
	rc = send_object(c, SBC_CMD_SUBSCRIBE, id, ch->name, o, &out);
	if (rc == 0) {
		out->recover = ch->have_pos;
		ch->pending = true;
	}
	return rc;
}

/* Takes ownership of token. */
int
sbc_send_refresh(struct sbc_client *c, char *token, bool app, int64_t *id)
{
	struct sbc_out *out = NULL;
	int64_t n;
	json_t *o = command_new(c, "refresh", &n);
	int rc;

	add_member(&o, "token", json_string(token));
	rc = send_object(c, SBC_CMD_REFRESH, n, NULL, o, &out);
	if (rc != 0) {
		free(token);
		return rc;
	}
	out->app = app;
	free(c->refresh_token);
	c->refresh_token = token;
	if (id != NULL)
		*id = n;
	return 0;
}

struct sbc_chan *
sbc_chan_find(const struct sbc_client *c, const char *name)
{
	if (name == NULL)
		return NULL;
	for (struct sbc_chan *ch = c->chans; ch != NULL; ch = ch->next)
		if (!ch->dead && strcmp(ch->name, name) == 0)
			return ch;
	return NULL;
}

void
sbc_sweep(struct sbc_client *c)
{
	struct sbc_chan **pp = &c->chans;

	while (*pp != NULL) {
		struct sbc_chan *ch = *pp;

		if (!ch->dead) {
			pp = &ch->next;
			continue;
		}
		*pp = ch->next;
		free(ch->name);
		free(ch);
	}
}

/* ---- the application's commands ---- */

int
sbc_subscribe(struct sbc_client *c, const char *channel, uint64_t rewind)
{
	struct sbc_chan *ch, **pp;

	if (channel == NULL || !proto_channel_valid(channel, strlen(channel)))
		return -EINVAL;
	if (sbc_chan_find(c, channel) != NULL)
		return -EEXIST;
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL || (ch->name = strdup(channel)) == NULL) {
		free(ch);
		return -ENOMEM;
	}
	ch->rewind = rewind;
	for (pp = &c->chans; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = ch;
	if (!c->connected || c->closing || c->done)
		return 0;
	if (sbc_send_subscribe(c, ch) != 0) {
		ch->dead = true;
		return -ENOMEM;
	}
	if (c->state == SBC_STATE_READY)
		sbc_enter(c, SBC_STATE_SUBSCRIBING);
	return 0;
}

int
sbc_unsubscribe(struct sbc_client *c, const char *channel)
{
	struct sbc_chan *ch = sbc_chan_find(c, channel);
	int64_t id;
	json_t *o;

	if (ch == NULL || ch->leaving)
		return -ENOENT;
	if (!c->connected || c->closing || c->done || (!ch->subscribed && !ch->pending)) {
		ch->dead = true;
		return 0;
	}
	o = command_new(c, "unsubscribe", &id);
	add_member(&o, "channel", json_string(channel));
	ch->leaving = true;
	if (send_object(c, SBC_CMD_UNSUBSCRIBE, id, channel, o, NULL) != 0) {
		ch->dead = true; /* forgotten here; the server may still send its messages */
		return -ENOMEM;
	}
	c->outq.tail->app = true;
	return 0;
}

int
sbc_position(const struct sbc_client *c, const char *channel, uint64_t *offset, char *epoch)
{
	const struct sbc_chan *ch = sbc_chan_find(c, channel);

	if (ch == NULL)
		return -ENOENT;
	if (!ch->have_pos)
		return -ENODATA;
	if (offset != NULL)
		*offset = ch->pos;
	if (epoch != NULL)
		memcpy(epoch, ch->epoch, sizeof(ch->epoch));
	return 0;
}

static int
can_send(const struct sbc_client *c, const char *channel)
{
	if (!c->connected || c->closing || c->done)
		return -ENOTCONN;
	if (channel != NULL && !proto_channel_valid(channel, strlen(channel)))
		return -EINVAL;
	return 0;
}

/* Queues an application command (takes the reference to o). */
static int
send_app(struct sbc_client *c, enum sbc_cmd kind, int64_t n, const char *channel, json_t *o,
	 int64_t *id)
{
	struct sbc_out *out = NULL;
	int rc = send_object(c, kind, n, channel, o, &out);

	if (rc != 0)
		return rc;
	out->app = true;
	if (id != NULL)
		*id = n;
	return 0;
}

static int
channel_command(struct sbc_client *c, enum sbc_cmd kind, const char *channel, int64_t *id)
{
	int64_t n;
	json_t *o;
	int rc = can_send(c, channel);

	if (rc != 0)
		return rc;
	o = command_new(c, sbc_cmd_name(kind), &n);
	add_member(&o, "channel", json_string(channel));
	return send_app(c, kind, n, channel, o, id);
}

int
sbc_presence(struct sbc_client *c, const char *channel, int64_t *id)
{
	return channel_command(c, SBC_CMD_PRESENCE, channel, id);
}

int
sbc_presence_stats(struct sbc_client *c, const char *channel, int64_t *id)
{
	return channel_command(c, SBC_CMD_PRESENCE_STATS, channel, id);
}

int
sbc_history(struct sbc_client *c, const char *channel, uint64_t limit, uint64_t since_offset,
	    const char *since_epoch, int64_t *id)
{
	int64_t n;
	json_t *o;
	int rc = can_send(c, channel);

	if (rc != 0)
		return rc;
	o = command_new(c, "history", &n);
	add_member(&o, "channel", json_string(channel));
	if (limit != 0)
		add_member(&o, "limit", json_integer((json_int_t)limit));
	if (since_epoch != NULL)
		add_member(&o, "since",
			   json_pack("{s:I, s:s}", "offset", (json_int_t)since_offset, "epoch",
				     since_epoch));
	return send_app(c, SBC_CMD_HISTORY, n, channel, o, id);
}

int
sbc_ping(struct sbc_client *c, int64_t *id)
{
	int64_t n;
	json_t *o;
	int rc = can_send(c, NULL);

	if (rc != 0)
		return rc;
	o = command_new(c, "ping", &n);
	return send_app(c, SBC_CMD_PING, n, NULL, o, id);
}

int
sbc_refresh(struct sbc_client *c, const char *token, int64_t *id)
{
	char *t;
	int rc = can_send(c, NULL);

	if (rc != 0)
		return rc;
	if (token == NULL || token[0] == '\0')
		return -EINVAL;
	if (c->refresh_token != NULL)
		return -EBUSY;
	t = strdup(token);
	if (t == NULL)
		return -ENOMEM;
	return sbc_send_refresh(c, t, true, id);
}

/* The publish command around a null placeholder: the data text is spliced in its
 * place, because re-encoding it with jansson would rewrite numbers (0.1 becomes
 * 0.10000000000000001) and subscribers are promised the publisher's bytes. */
static char *
publish_template(int64_t n, const char *channel, size_t *len, const char **hole, size_t *hole_len)
{
	json_t *id = json_integer((json_int_t)n);
	char *t = id != NULL ? proto_encode_publish(id, channel, NULL, len) : NULL;

	json_decref(id);
	if (t != NULL && proto_find_member(t, *len, "data", hole, hole_len) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

size_t
sbc_publish_size(const struct sbc_client *c, const char *channel, size_t data_len)
{
	size_t len = 0, hole_len = 0;
	const char *hole;
	char *t = publish_template(c->next_id, channel, &len, &hole, &hole_len);

	free(t);
	return t != NULL ? len - hole_len + data_len : 0;
}

int
sbc_publish(struct sbc_client *c, const char *channel, const char *data, size_t data_len,
	    int64_t *id)
{
	size_t len = 0, hole_len = 0, head;
	const char *hole;
	struct sbc_out *o;
	json_t *v;
	char *t;
	int rc = can_send(c, channel);

	if (rc != 0)
		return rc;
	v = data != NULL
		    ? json_loadb(data, data_len,
				 JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL)
		    : NULL;
	if (v == NULL)
		return -EINVAL;
	json_decref(v);
	t = publish_template(c->next_id, channel, &len, &hole, &hole_len);
	if (t == NULL)
		return -ENOMEM;
	o = out_new(SBC_CMD_PUBLISH, c->next_id, channel, len - hole_len + data_len);
	if (o == NULL) {
		free(t);
		return -ENOMEM;
	}
	head = (size_t)(hole - t);
	memcpy(o->buf + LWS_PRE, t, head);
	memcpy(o->buf + LWS_PRE + head, data, data_len);
	memcpy(o->buf + LWS_PRE + head + data_len, hole + hole_len, len - head - hole_len);
	free(t);
	o->app = true;
	if (id != NULL)
		*id = c->next_id;
	c->next_id++;
	enqueue(c, o);
	return 0;
}
