/* hub.c: channels, subscriptions, command dispatch and fan-out.
 *
 * Ownership: the hub owns its channels and its engine; a channel exists while it has
 * at least one local subscriber and is freed when the last one leaves. Sessions belong
 * to the transport. A published message is encoded once, in on_deliver(), into one
 * frame; every subscriber's queue takes a reference and the hub drops its own at the
 * end (the guard reference of STYLE §4).
 */
#include "hub.h"
#include "config.h"
#include "engine.h"
#include "frame.h"
#include "internal.h"
#include "log.h"
#include "map.h"
#include "proto.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hub {
	const struct config *cfg;
	struct engine *engine;     /* owned */
	struct map *channels;      /* name -> struct channel (owned) */
	struct map *sessions;      /* client id -> struct session (borrowed), after connect */
	size_t nsessions;          /* open sessions, connected or not */
	uint64_t next_serial;
	char node[16];             /* client id prefix */
	char server[32];           /* "switchboard/<version>" */
	struct session *pend_head, *pend_tail;
	/* The id of the publish command being handled, echoed by its completion. The memory
	 * engine completes inside engine_publish(); an engine that completes later will
	 * keep the ids of its outstanding publishes itself, keyed by the cookie. */
	const json_t *publish_id;
};

/* ---- replies ---- */

/* Queues an encoded reply (takes ownership of buf) to s alone. The length comes by
 * pointer because it is written by the encoder call in the same argument list. */
static void
send_owned(struct session *s, char *buf, const size_t *lenp)
{
	struct frame *f;

	/* protocol/ reports OOM instead of aborting; the server aborts like xmalloc. */
	xcheck(buf);
	f = frame_new_text(buf, *lenp);
	free(buf);
	session_enqueue(s, f);
	frame_unref(f);
}

static void
send_error(struct session *s, const json_t *id, enum proto_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
send_error(struct session *s, const json_t *id, enum proto_errcode code, const char *fmt, ...)
{
	char msg[192];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_owned(s, proto_encode_error(id, code, msg, &len), &len);
}

/* ---- pending (not yet connected) sessions ---- */

static void
pend_add(struct hub *hub, struct session *s)
{
	s->pend_prev = hub->pend_tail;
	s->pend_next = NULL;
	if (hub->pend_tail != NULL)
		hub->pend_tail->pend_next = s;
	else
		hub->pend_head = s;
	hub->pend_tail = s;
}

static void
pend_remove(struct hub *hub, struct session *s)
{
	if (s->pend_prev != NULL)
		s->pend_prev->pend_next = s->pend_next;
	else if (hub->pend_head == s)
		hub->pend_head = s->pend_next;
	else
		return; /* not on the list */
	if (s->pend_next != NULL)
		s->pend_next->pend_prev = s->pend_prev;
	else
		hub->pend_tail = s->pend_prev;
	s->pend_prev = s->pend_next = NULL;
}

/* ---- channels and subscriptions ---- */

static struct channel *
channel_find(struct hub *hub, const char *name, size_t len)
{
	return map_find(hub->channels, name, len);
}

static struct channel *
channel_open(struct hub *hub, const char *name, size_t len, const struct ns_policy *ns)
{
	struct channel *ch = channel_find(hub, name, len);

	if (ch != NULL)
		return ch;
	ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrndup(name, len);
	ch->name_len = len;
	ch->ns = ns;
	map_add(hub->channels, ch->name, len, ch);
	engine_subscribe(hub->engine, ch->name, len);
	return ch;
}

static void
channel_close_if_empty(struct hub *hub, struct channel *ch)
{
	if (ch->nmembers > 0)
		return;
	map_remove(hub->channels, ch->name, ch->name_len);
	engine_unsubscribe(hub->engine, ch->name, ch->name_len);
	free(ch->members);
	free(ch->name);
	free(ch);
}

static int
sub_index(const struct session *s, const struct channel *ch)
{
	for (uint32_t j = 0; j < s->nsubs; j++)
		if (s->subs[j].ch == ch)
			return (int)j;
	return -1;
}

static void
sub_add(struct session *s, struct channel *ch)
{
	if (ch->nmembers == ch->cap) {
		ch->cap = ch->cap ? ch->cap * 2 : 4;
		ch->members = xrealloc(ch->members, ch->cap * sizeof(*ch->members));
	}
	if (s->nsubs == s->capsubs) {
		s->capsubs = s->capsubs ? s->capsubs * 2 : 4;
		s->subs = xrealloc(s->subs, s->capsubs * sizeof(*s->subs));
	}
	ch->members[ch->nmembers] = (struct member){ .s = s, .sub_idx = s->nsubs };
	s->subs[s->nsubs] = (struct subref){ .ch = ch, .member_idx = ch->nmembers };
	ch->nmembers++;
	s->nsubs++;
}

/* Removes subscription j of s (both sides of the index); the channel may be freed.
 * Each side swaps its last entry into the hole and fixes that entry's back index. The
 * member moved on the channel side never belongs to s (s has one entry per channel),
 * so the session-side move below still sees a current member_idx. */
static void
sub_remove(struct hub *hub, struct session *s, uint32_t j)
{
	struct channel *ch = s->subs[j].ch;
	uint32_t i = s->subs[j].member_idx;

	ch->nmembers--;
	if (i != ch->nmembers) {
		struct member moved = ch->members[ch->nmembers];

		ch->members[i] = moved;
		moved.s->subs[moved.sub_idx].member_idx = i;
	}
	s->nsubs--;
	if (j != s->nsubs) {
		struct subref moved = s->subs[s->nsubs];

		s->subs[j] = moved;
		moved.ch->members[moved.member_idx].sub_idx = j;
	}
	channel_close_if_empty(hub, ch);
}

/* ---- commands ---- */

static void
on_connect(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	size_t len;

	if (s->connected) {
		send_error(s, cmd->id, PROTO_ERR_ALREADY_CONNECTED, "already connected");
		return;
	}
	if (!hub->cfg->anonymous) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN, "anonymous access is disabled");
		return;
	}
	s->connected = true;
	s->user = xstrdup(cmd->user != NULL ? cmd->user : "");
	s->from = xcheck(proto_encode_from(s->client, s->user, &s->from_len));
	pend_remove(hub, s);
	map_add(hub->sessions, s->client, strlen(s->client), s);
	send_owned(s, proto_encode_connected(cmd->id, s->client, s->user, hub->server, &len), &len);
}

/* The namespace rules for cmd's channel, or NULL after sending the refusal. */
static const struct ns_policy *
channel_policy(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const struct ns_policy *ns = policy_for_channel(hub->cfg->policy, cmd->channel,
							cmd->channel_len);
	size_t nslen = proto_channel_ns_len(cmd->channel, cmd->channel_len);

	if (ns == NULL)
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "namespace \"%.*s\" is not configured and there is no default namespace",
			   (int)nslen, cmd->channel);
	return ns;
}

static void
on_subscribe(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const struct ns_policy *ns;
	struct channel *ch;
	size_t len;

	ch = channel_find(hub, cmd->channel, cmd->channel_len);
	if (ch != NULL && sub_index(s, ch) >= 0) {
		send_error(s, cmd->id, PROTO_ERR_ALREADY_SUBSCRIBED, "already subscribed to %s",
			   cmd->channel);
		return;
	}
	if (s->nsubs >= hub->cfg->limits.max_channels_per_connection) {
		send_error(s, cmd->id, PROTO_ERR_LIMIT_EXCEEDED,
			   "at most %zu channels per connection",
			   hub->cfg->limits.max_channels_per_connection);
		return;
	}
	ns = channel_policy(hub, s, cmd);
	if (ns == NULL)
		return;
	/* The reply is queued before the subscription takes effect, so every message this
	 * session receives for the channel comes after "subscribed". */
	send_owned(s, proto_encode_subscribed(cmd->id, cmd->channel, &len), &len);
	ch = channel_open(hub, cmd->channel, cmd->channel_len, ns);
	sub_add(s, ch);
}

static void
on_unsubscribe(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct channel *ch = channel_find(hub, cmd->channel, cmd->channel_len);
	int j = ch != NULL ? sub_index(s, ch) : -1;
	size_t len;

	if (j < 0) {
		send_error(s, cmd->id, PROTO_ERR_NOT_SUBSCRIBED, "not subscribed to %s", cmd->channel);
		return;
	}
	sub_remove(hub, s, (uint32_t)j);
	send_owned(s, proto_encode_unsubscribed(cmd->id, cmd->channel, &len), &len);
}

/* "namespace \"chat\"" or "the default namespace", as three %s arguments. */
#define NS_LABEL(ns) (ns)->name[0] ? "namespace \"" : "the default namespace", (ns)->name, \
		     (ns)->name[0] ? "\"" : ""

static void
on_publish(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const struct ns_policy *ns = channel_policy(hub, s, cmd);
	struct engine_msg msg = {
		.channel = cmd->channel,
		.channel_len = cmd->channel_len,
		.data = cmd->data_raw,
		.data_len = cmd->data_len,
		.from = s->from,
		.from_len = s->from_len,
	};
	struct channel *ch;
	int rc;

	if (ns == NULL)
		return;
	switch (ns->publish) {
	case POLICY_PUBLISH_NONE:
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "%s%s%s does not allow clients to publish (publish: none)",
			   NS_LABEL(ns));
		return;
	case POLICY_PUBLISH_SUBSCRIBERS:
		ch = channel_find(hub, cmd->channel, cmd->channel_len);
		if (ch == NULL || sub_index(s, ch) < 0) {
			send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
				   "%s%s%s allows only subscribers to publish (publish: subscribers); subscribe to %s first",
				   NS_LABEL(ns), cmd->channel);
			return;
		}
		break;
	case POLICY_PUBLISH_CLIENTS:
		break;
	}
	if (cmd->data_len > hub->cfg->limits.max_data_size) {
		send_error(s, cmd->id, PROTO_ERR_TOO_LARGE, "data is %zu bytes, the limit is %zu",
			   cmd->data_len, hub->cfg->limits.max_data_size);
		return;
	}
	rc = engine_publish(hub->engine, &msg, s->serial);
	if (rc != 0)
		send_error(s, cmd->id, PROTO_ERR_INTERNAL, "publish failed: %s", strerror(-rc));
}

static void
on_published(void *arg, uint64_t cookie, int rc, const struct engine_msg *msg)
{
	struct hub *hub = arg;
	char client[40];
	struct session *s;
	size_t len;

	snprintf(client, sizeof(client), "%s-%" PRIu64, hub->node, cookie);
	s = map_find(hub->sessions, client, strlen(client));
	if (s == NULL)
		return; /* the publisher has gone */
	if (rc != 0) {
		send_error(s, hub->publish_id, PROTO_ERR_INTERNAL, "publish failed: %s",
			   strerror(-rc));
		return;
	}
	send_owned(s, proto_encode_published(hub->publish_id, msg->channel, msg->offset,
					     msg->epoch, &len), &len);
}

/* Fan-out: one encode, one frame, one reference per local subscriber. */
static void
on_deliver(void *arg, const struct engine_msg *msg)
{
	struct hub *hub = arg;
	struct channel *ch = channel_find(hub, msg->channel, msg->channel_len);
	struct frame *f;
	char *buf;
	size_t len = 0;

	if (ch == NULL)
		return;
	buf = xcheck(proto_encode_message(ch->name, msg->offset, msg->data, msg->data_len,
					  msg->from, msg->from_len, &len));
	f = frame_new_text(buf, len);
	free(buf);
	for (uint32_t i = 0; i < ch->nmembers; i++)
		session_enqueue(ch->members[i].s, f);
	frame_unref(f);
}

static void
on_ping(struct session *s, const struct proto_cmd *cmd)
{
	size_t len;

	send_owned(s, proto_encode_pong(cmd->id, &len), &len);
}

void
hub_session_receive(struct hub *hub, struct session *s, const char *buf, size_t len)
{
	struct proto_cmd cmd;
	struct proto_error err = { 0 };

	if (s->kicked)
		return;
	if (proto_decode(buf, len, &cmd, &err) != 0) {
		send_error(s, cmd.id, err.code, "%s", err.text);
		goto out;
	}
	if (!s->connected && cmd.kind != PROTO_KIND_CONNECT && cmd.kind != PROTO_KIND_PING) {
		send_error(s, cmd.id, PROTO_ERR_NOT_CONNECTED, "send connect first");
		goto out;
	}
	switch (cmd.kind) {
	case PROTO_KIND_CONNECT:
		on_connect(hub, s, &cmd);
		break;
	case PROTO_KIND_SUBSCRIBE:
		on_subscribe(hub, s, &cmd);
		break;
	case PROTO_KIND_UNSUBSCRIBE:
		on_unsubscribe(hub, s, &cmd);
		break;
	case PROTO_KIND_PUBLISH:
		hub->publish_id = cmd.id;
		on_publish(hub, s, &cmd);
		hub->publish_id = NULL;
		break;
	case PROTO_KIND_PING:
		on_ping(s, &cmd);
		break;
	case PROTO_KIND_NONE:
		break;
	}
out:
	proto_cmd_fini(&cmd);
}

/* ---- lifecycle ---- */

struct hub *
hub_new(const struct config *cfg, const uint8_t seed[16])
{
	struct hub *hub = xcalloc(1, sizeof(*hub));
	struct engine_callbacks cb = { .deliver = on_deliver, .published = on_published, .arg = hub };

	hub->cfg = cfg;
	hub->engine = engine_new(cfg->engine, &cb, seed);
	if (hub->engine == NULL) {
		free(hub);
		return NULL;
	}
	hub->channels = map_new(seed);
	hub->sessions = map_new(seed);
	/* A hash under the seed, not seed bytes: client ids are public, the key is not. */
	snprintf(hub->node, sizeof(hub->node), "%012" PRIx64,
		 (uint64_t)(map_siphash(seed, "node", 4) & 0xffffffffffffu));
	snprintf(hub->server, sizeof(hub->server), "switchboard/%s", SWITCHBOARD_VERSION);
	return hub;
}

void
hub_free(struct hub *hub)
{
	if (hub == NULL)
		return;
	/* Sessions are closed by the transport first, which empties every channel. */
	map_free(hub->channels);
	map_free(hub->sessions);
	engine_free(hub->engine);
	free(hub);
}

struct session *
hub_session_open(struct hub *hub, const struct session_ops *ops, void *conn, uint64_t now_ms)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->ops = ops;
	s->conn = conn;
	s->serial = ++hub->next_serial;
	snprintf(s->client, sizeof(s->client), "%s-%" PRIu64, hub->node, s->serial);
	s->qmax_len = hub->cfg->limits.send_queue_messages;
	s->qmax_bytes = hub->cfg->limits.send_queue_bytes;
	s->opened_ms = now_ms;
	pend_add(hub, s);
	hub->nsessions++;
	return s;
}

void
hub_session_close(struct hub *hub, struct session *s)
{
	if (s == NULL)
		return;
	while (s->nsubs > 0)
		sub_remove(hub, s, s->nsubs - 1);
	pend_remove(hub, s);
	if (s->connected)
		map_remove(hub->sessions, s->client, strlen(s->client));
	session_queue_clear(s);
	free(s->subs);
	free(s->user);
	free(s->from);
	free(s);
	hub->nsessions--;
}

void
hub_tick(struct hub *hub, uint64_t now_ms)
{
	uint64_t limit = (uint64_t)hub->cfg->ws.connect_timeout * 1000;
	struct session *s;

	/* The list is in open order, so the first young session ends the scan. */
	while ((s = hub->pend_head) != NULL && now_ms - s->opened_ms >= limit) {
		pend_remove(hub, s);
		log_info("hub: client=%s did not connect within %us, closing", s->client,
			 hub->cfg->ws.connect_timeout);
		session_kick(s, PROTO_CLOSE_CONNECT_TIMEOUT, "connect timeout");
	}
}

static void
kick_for_shutdown(void *arg, const char *key, size_t len, void *value)
{
	(void)arg, (void)key, (void)len;
	session_kick(value, PROTO_CLOSE_GOING_AWAY, "server shutdown");
}

void
hub_shutdown(struct hub *hub)
{
	struct session *s;

	map_foreach(hub->sessions, kick_for_shutdown, NULL);
	while ((s = hub->pend_head) != NULL) {
		pend_remove(hub, s);
		session_kick(s, PROTO_CLOSE_GOING_AWAY, "server shutdown");
	}
}

size_t
hub_session_count(const struct hub *hub)
{
	return hub->nsessions;
}

size_t
hub_channel_count(const struct hub *hub)
{
	return map_count(hub->channels);
}
