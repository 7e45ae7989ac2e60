/* sbc_frames.c: what the server sends, turned into callbacks. Replies are matched to
 * their command by id on the `sent` queue; messages advance their channel's position
 * (a second copy of an offset is flagged, not counted); a reset moves the position to
 * the new epoch. After each callback the client's state is looked at again: the
 * application may have closed it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "sbc_internal.h"

static const char *const reply_names[] = {
	[SBC_CMD_CONNECT] = "connected",
	[SBC_CMD_SUBSCRIBE] = "subscribed",
	[SBC_CMD_UNSUBSCRIBE] = "unsubscribed",
	[SBC_CMD_PUBLISH] = "published",
	[SBC_CMD_PRESENCE] = "presence",
	[SBC_CMD_PRESENCE_STATS] = "presence_stats",
	[SBC_CMD_HISTORY] = "history",
	[SBC_CMD_REFRESH] = "refreshed",
	[SBC_CMD_PING] = "pong",
};

static const char *
str_member(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A non-negative integer member. */
static bool
offset_member(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static bool
usable_epoch(json_t *ep)
{
	return json_is_string(ep) && json_string_length(ep) <= SBC_EPOCH_MAX;
}

static void
deliver_reply(struct sbc_client *c, const struct sbc_reply *r)
{
	if (c->cfg.on_reply != NULL)
		c->cfg.on_reply(c, r, c->cfg.arg);
}

static void
on_connected(struct sbc_client *c, struct sbc_reply *r)
{
	const char *id = str_member(r->frame, "client");

	c->nconnected++;
	c->connected = true;
	free(c->client_id);
	c->client_id = id != NULL ? strdup(id) : NULL;
	c->expires = r->expires;
	sbc_schedule_refresh(c, false);
	deliver_reply(c, r);
	if (c->closing || c->done)
		return;
	sbc_enter(c, SBC_STATE_SUBSCRIBING);
	for (struct sbc_chan *ch = c->chans; ch != NULL; ch = ch->next) {
		if (ch->dead || ch->leaving || c->closing || c->done)
			continue;
		if (sbc_send_subscribe(c, ch) != 0) {
			sbc_fail(c, SBC_CAUSE_NOMEM, "out of memory");
			return;
		}
	}
	sbc_check_ready(c);
}

/* Takes the channel's position from a subscribed reply. After a recovery the missed
 * messages follow the reply and the position stays where it was. */
static void
on_subscribed(struct sbc_client *c, struct sbc_reply *r, bool recover)
{
	struct sbc_chan *ch = sbc_chan_find(c, r->channel);
	json_t *ep = json_object_get(r->frame, "epoch");
	uint64_t now = 0;
	bool known = offset_member(r->frame, "offset", &now) && usable_epoch(ep);

	r->reconnect = c->nconnected > 1;
	r->recover_sent = recover;
	r->recovered = recover && json_is_true(json_object_get(r->frame, "recovered"));
	if (ch != NULL && r->recovered) {
		r->missed_known = known && now >= ch->pos;
		r->missed = r->missed_known ? now - ch->pos : 0;
	} else if (ch != NULL) {
		ch->have_pos = known;
		if (known) {
			if (strcmp(ch->epoch, json_string_value(ep)) != 0) {
				/* A new run of offsets: they may start again at 1. */
				ch->seen = 0;
				snprintf(ch->epoch, sizeof(ch->epoch), "%s", json_string_value(ep));
			}
			ch->pos = now;
		}
	}
	if (ch != NULL) {
		ch->pending = false;
		ch->subscribed = true;
		ch->rewound = true;
	}
	deliver_reply(c, r);
	sbc_check_ready(c);
}

static void
on_refreshed(struct sbc_client *c, struct sbc_reply *r)
{
	if (c->refresh_token != NULL) {
		free(c->token);
		c->token = c->refresh_token;
		c->refresh_token = NULL;
	}
	c->expires = r->expires;
	sbc_schedule_refresh(c, false);
	deliver_reply(c, r);
}

static void
fill_position(struct sbc_reply *r)
{
	json_t *ep = json_object_get(r->frame, "epoch");

	r->has_offset = offset_member(r->frame, "offset", &r->offset);
	r->epoch = usable_epoch(ep) ? json_string_value(ep) : NULL;
}

static void
on_reply(struct sbc_client *c, json_t *root, const char *type, char *buf, size_t len)
{
	json_t *id = json_object_get(root, "id"), *exp = json_object_get(root, "expires");
	struct sbc_out *o =
		json_is_integer(id) ? sbc_queue_take(&c->sent, json_integer_value(id)) : NULL;
	struct sbc_reply r;
	char text[160];

	if (o == NULL)
		return; /* not an answer to anything we asked: ignore */
	if (strcmp(type, reply_names[o->kind]) != 0) {
		snprintf(text, sizeof(text), "unexpected \"%.40s\" reply to %s", type,
			 sbc_cmd_name(o->kind));
		sbc_out_free(o);
		sbc_fail(c, SBC_CAUSE_PROTOCOL, text);
		return;
	}
	r = (struct sbc_reply){
		.cmd = o->kind,
		.id = o->id,
		.channel = o->channel,
		.raw = buf,
		.raw_len = len,
		.frame = root,
		.expires = json_is_integer(exp) ? (int64_t)json_integer_value(exp) : 0,
	};
	fill_position(&r);
	switch (o->kind) {
	case SBC_CMD_CONNECT:
		on_connected(c, &r);
		break;
	case SBC_CMD_SUBSCRIBE:
		on_subscribed(c, &r, o->recover);
		break;
	case SBC_CMD_REFRESH:
		on_refreshed(c, &r);
		break;
	case SBC_CMD_UNSUBSCRIBE: {
		struct sbc_chan *ch = sbc_chan_find(c, o->channel);

		if (ch != NULL && ch->leaving)
			ch->dead = true;
		deliver_reply(c, &r);
		break;
	}
	default:
		deliver_reply(c, &r);
		break;
	}
	sbc_out_free(o);
	sbc_update_deadline(c, true);
}

static void
on_error_frame(struct sbc_client *c, json_t *root, char *buf, size_t len)
{
	json_t *id = json_object_get(root, "id");
	struct sbc_out *o =
		json_is_integer(id) ? sbc_queue_take(&c->sent, json_integer_value(id)) : NULL;
	struct sbc_reply r = {
		.cmd = o != NULL ? o->kind : SBC_CMD_NONE,
		.id = o != NULL ? o->id : 0,
		.channel = o != NULL ? o->channel : NULL,
		.error = -EPROTO,
		.code = str_member(root, "code"),
		.message = str_member(root, "message"),
		.raw = buf,
		.raw_len = len,
		.frame = root,
	};
	struct sbc_chan *ch = o != NULL ? sbc_chan_find(c, o->channel) : NULL;

	if (r.code == NULL)
		r.code = "";
	switch (r.cmd) {
	case SBC_CMD_SUBSCRIBE:
		/* Refused: the channel is not ours any more. */
		if (ch != NULL)
			ch->dead = true;
		break;
	case SBC_CMD_UNSUBSCRIBE:
		if (ch != NULL)
			ch->leaving = false;
		break;
	case SBC_CMD_REFRESH:
		/* The current token stays valid until it expires; wait for another one. */
		free(c->refused_token);
		c->refused_token = c->refresh_token;
		c->refresh_token = NULL;
		sbc_schedule_refresh(c, true);
		break;
	case SBC_CMD_NONE:
		if (strcmp(r.code, "token_expired") == 0)
			c->token_expired = true; /* the 4001 close follows */
		break;
	default:
		break;
	}
	deliver_reply(c, &r);
	if (r.cmd == SBC_CMD_CONNECT && !c->closing && !c->done) {
		char text[160];

		snprintf(text, sizeof(text), "the server refused connect (%.60s)", r.code);
		sbc_fail(c, SBC_CAUSE_REFUSED, text);
	}
	sbc_out_free(o);
	sbc_update_deadline(c, true);
	sbc_check_ready(c);
}

/* A message: flags a second copy of an offset, else advances the position. */
static void
on_message(struct sbc_client *c, json_t *root, char *buf, size_t len)
{
	json_t *from = json_object_get(root, "from");
	struct sbc_message m = {
		.channel = str_member(root, "channel"),
		.from_user = str_member(from, "user"),
		.from_client = str_member(from, "client"),
		.raw = buf,
		.raw_len = len,
		.frame = root,
	};
	struct sbc_chan *ch = sbc_chan_find(c, m.channel);

	if (c->closing || c->done)
		return;
	m.has_offset = offset_member(root, "offset", &m.offset);
	if (proto_find_member(buf, len, "data", &m.data, &m.data_len) != 0)
		m.data = NULL;
	if (ch != NULL && m.has_offset) {
		if (ch->seen != 0 && m.offset <= ch->seen) {
			m.duplicate = true;
			m.last_offset = ch->seen;
		} else {
			ch->seen = m.offset;
			if (m.offset > ch->pos)
				ch->pos = m.offset;
		}
	}
	if (c->cfg.on_message != NULL)
		c->cfg.on_message(c, &m, c->cfg.arg);
}

static void
on_join_leave(struct sbc_client *c, json_t *root, bool join, char *buf, size_t len)
{
	json_t *member = json_object_get(root, "member");
	struct sbc_presence p = {
		.join = join,
		.channel = str_member(root, "channel"),
		.client = str_member(member, "client"),
		.user = str_member(member, "user"),
		.raw = buf,
		.raw_len = len,
		.frame = root,
	};

	if (c->closing || c->done || c->cfg.on_presence == NULL)
		return;
	c->cfg.on_presence(c, &p, c->cfg.arg);
}

/* The channel's history was dropped: it goes on in a new epoch whose last offset is
 * the frame's (0: the next message is offset 1). Adopting it lets the next messages
 * through instead of passing for second copies, and a reconnect recovers from there. */
static void
on_reset(struct sbc_client *c, json_t *root, char *buf, size_t len)
{
	struct sbc_chan *ch = sbc_chan_find(c, str_member(root, "channel"));
	json_t *ep = json_object_get(root, "epoch");
	struct sbc_reset r = { .raw = buf, .raw_len = len };

	if (ch == NULL || c->closing || c->done)
		return;
	if (!offset_member(root, "offset", &r.offset) || !usable_epoch(ep)) {
		sbc_notice(c, "ignoring a reset of %s without a usable offset and epoch", ch->name);
		return;
	}
	snprintf(ch->epoch, sizeof(ch->epoch), "%s", json_string_value(ep));
	ch->pos = ch->seen = r.offset;
	ch->have_pos = true;
	r.channel = ch->name;
	r.epoch = ch->epoch;
	if (c->cfg.on_reset != NULL)
		c->cfg.on_reset(c, &r, c->cfg.arg);
}

void
sbc_on_frame(struct sbc_client *c, char *buf, size_t len)
{
	json_t *root = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
	const char *type = str_member(root, "type");

	if (type == NULL)
		sbc_notice(c, "ignoring a frame that is not a protocol message");
	else if (strcmp(type, "message") == 0)
		on_message(c, root, buf, len);
	else if (strcmp(type, "error") == 0)
		on_error_frame(c, root, buf, len);
	else if (strcmp(type, "join") == 0 || strcmp(type, "leave") == 0)
		on_join_leave(c, root, type[0] == 'j', buf, len);
	else if (strcmp(type, "reset") == 0)
		on_reset(c, root, buf, len);
	else
		on_reply(c, root, type, buf, len);
	json_decref(root);
}
