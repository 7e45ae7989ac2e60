/* backend.c: the server side of the core (backend.h). Each engine operation is one
 * PENDING_BACKEND entry whose state says what to answer and to whom; channel info takes
 * two engine calls (the position, then presence counts) and finishes after the second. */
#include "backend.h"
#include "dialect.h"
#include "frame.h"
#include "internal.h"
#include "log.h"
#include "map.h"
#include "policy.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum backend_kind { BK_PUBLISH, BK_CHANNEL, BK_PRESENCE, BK_HISTORY, BK_RESET };

struct backend_call {
	enum backend_kind kind;
	backend_done_fn done; /* NULL once cancelled */
	void *arg;
	struct backend_channel info; /* BK_CHANNEL, filled over its two steps */
};

/* What an entry point asks for: the operation and the arguments of its engine call. */
struct backend_req {
	enum backend_kind kind;
	const char *channel;
	size_t len;
	uint64_t now_ms; /* becomes hub->now_ms when the operation starts */
	backend_done_fn done;
	void *arg;
	struct engine_pub pub;	       /* BK_PUBLISH */
	struct engine_history_query q; /* BK_CHANNEL, BK_HISTORY */
};

/* A request with no engine arguments yet. */
static struct backend_req
req(enum backend_kind kind, const char *channel, size_t len, uint64_t now_ms, backend_done_fn done,
    void *arg)
{
	return (struct backend_req){ .kind = kind,
				     .channel = channel,
				     .len = len,
				     .now_ms = now_ms,
				     .done = done,
				     .arg = arg };
}

/* The rules of a channel named by the server side, or NULL (refused with -ENOENT). */
static const struct ns_policy *
server_policy(struct hub *hub, const char *channel, size_t len)
{
	return policy_for_channel(hub->cfg.policy, channel, len);
}

/* A new operation, or NULL after answering done with -EAGAIN (too many in flight). */
static struct pending *
call_new(struct hub *hub, const struct backend_req *q)
{
	struct pending *op = hub_op_new(hub, PENDING_BACKEND, NULL, NULL, q->channel, q->len);
	struct backend_call *c;

	if (op == NULL) {
		q->done(q->arg, -EAGAIN, NULL);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->kind = q->kind;
	c->done = q->done;
	c->arg = q->arg;
	op->state = c;
	return op;
}

/* Every entry point's path: refused (rc != 0) or over the bound, done is answered at
 * once; otherwise the engine call starts op. Returns the cookie backend.h describes: op's
 * while it is still in flight after the engine call, 0 once it has finished. */
static uint64_t
call_start(struct hub *hub, const struct backend_req *q, int rc)
{
	struct pending *op;
	uint64_t cookie;

	if (rc != 0) {
		q->done(q->arg, rc, NULL);
		return 0;
	}
	op = call_new(hub, q);
	if (op == NULL)
		return 0;
	hub->now_ms = q->now_ms;
	cookie = op->cookie;
	switch (q->kind) {
	case BK_PUBLISH:
		engine_publish(hub->engine, &q->pub, q->now_ms, hub_op_complete, op);
		break;
	case BK_CHANNEL:
	case BK_HISTORY:
		engine_history(hub->engine, op->channel, q->len, &q->q, q->now_ms, hub_op_complete,
			       op);
		break;
	case BK_PRESENCE:
		engine_presence(hub->engine, op->channel, q->len, hub_op_complete, op);
		break;
	case BK_RESET:
		engine_reset(hub->engine, op->channel, q->len, hub_op_complete, op);
		break;
	}
	/* op may have been answered and freed inline: look it up by cookie. */
	return pending_find(hub->pending, cookie) != NULL ? cookie : 0;
}

static void
call_finish(struct hub *hub, struct pending *op, int rc, const void *result)
{
	struct backend_call *c = op->state;

	if (c->done != NULL)
		c->done(c->arg, rc, rc == 0 ? result : NULL);
	free(c);
	op->state = NULL;
	hub_op_done(hub, op);
}

void
backend_complete(struct hub *hub, struct pending *op, int rc, const void *result)
{
	struct backend_call *c = op->state;
	const struct ns_policy *ns;

	if (c->kind == BK_PUBLISH && rc == 0)
		hub->stats.published_server++;
	if (c->kind != BK_CHANNEL || rc != 0) {
		call_finish(hub, op, rc, result);
		return;
	}
	if (op->step == 0) {
		const struct engine_history *h = result;
		struct channel *ch = channel_find(hub, op->channel, op->channel_len);

		c->info.pos = h->pos;
		c->info.subscribers = ch != NULL ? ch->nmembers : 0;
		ns = server_policy(hub, op->channel, op->channel_len);
		if (ns != NULL && ns->presence && c->done != NULL) {
			c->info.has_presence = true;
			op->step = 1;
			engine_presence_stats(hub->engine, op->channel, op->channel_len,
					      hub_op_complete, op);
			return;
		}
	} else {
		c->info.presence = *(const struct engine_presence_stats *)result;
	}
	call_finish(hub, op, 0, &c->info);
}

uint64_t
backend_publish(struct hub *hub, const char *channel, size_t len, const char *data, size_t data_len,
		uint64_t now_ms, backend_done_fn done, void *arg)
{
	const struct ns_policy *ns = server_policy(hub, channel, len);
	struct backend_req q = req(BK_PUBLISH, channel, len, now_ms, done, arg);

	if (ns == NULL || data_len > hub->cfg.limits.max_data_size)
		return call_start(hub, &q, ns == NULL ? -ENOENT : -EMSGSIZE);
	q.pub = (struct engine_pub){
		.channel = channel,
		.channel_len = len,
		.data = data,
		.data_len = data_len,
		.history_size = ns->history_size,
		.history_ttl_ms = (uint64_t)ns->history_ttl * 1000,
	};
	return call_start(hub, &q, 0);
}

uint64_t
backend_channel(struct hub *hub, const char *channel, size_t len, uint64_t now_ms,
		backend_done_fn done, void *arg)
{
	struct backend_req q = req(BK_CHANNEL, channel, len, now_ms, done, arg);

	return call_start(hub, &q, server_policy(hub, channel, len) != NULL ? 0 : -ENOENT);
}

uint64_t
backend_presence(struct hub *hub, const char *channel, size_t len, backend_done_fn done, void *arg)
{
	const struct ns_policy *ns = server_policy(hub, channel, len);
	/* No time of its own: hub->now_ms stays what it is. */
	struct backend_req q = req(BK_PRESENCE, channel, len, hub->now_ms, done, arg);

	return call_start(hub, &q, ns == NULL ? -ENOENT : ns->presence ? 0 : -EPERM);
}

uint64_t
backend_history(struct hub *hub, const char *channel, size_t len, uint64_t limit,
		const char *since_epoch, uint64_t since_offset, uint64_t now_ms,
		backend_done_fn done, void *arg)
{
	const struct ns_policy *ns = server_policy(hub, channel, len);
	struct backend_req q = req(BK_HISTORY, channel, len, now_ms, done, arg);

	if (ns == NULL || ns->history_size == 0)
		return call_start(hub, &q, ns == NULL ? -ENOENT : -EPERM);
	q.q = (struct engine_history_query){
		.limit = limit > 0 && limit < ns->history_size ? limit : ns->history_size,
		.has_since = since_epoch != NULL,
		.since_offset = since_offset,
		.since_epoch = since_epoch,
	};
	return call_start(hub, &q, 0);
}

uint64_t
backend_reset(struct hub *hub, const char *channel, size_t len, backend_done_fn done, void *arg)
{
	struct backend_req q = req(BK_RESET, channel, len, hub->now_ms, done, arg);

	return call_start(hub, &q, server_policy(hub, channel, len) != NULL ? 0 : -ENOENT);
}

void
backend_cancel(struct hub *hub, uint64_t cookie)
{
	struct pending *op = cookie != 0 ? pending_find(hub->pending, cookie) : NULL;

	if (op != NULL && op->kind == PENDING_BACKEND && op->state != NULL)
		((struct backend_call *)op->state)->done = NULL;
}

/* ---- local ---- */

struct chan_list {
	const char *prefix;
	size_t plen;
	struct backend_channel_entry *v;
	size_t n, cap;
};

static void
list_channel(void *arg, const char *key, size_t len, void *value)
{
	struct chan_list *l = arg;
	struct channel *ch = value;

	if (len < l->plen || memcmp(key, l->prefix, l->plen) != 0)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = (struct backend_channel_entry){ ch->name, ch->name_len, ch->nmembers };
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const struct backend_channel_entry *)a)->name,
		      ((const struct backend_channel_entry *)b)->name);
}

void
backend_channels(struct hub *hub, const char *prefix, size_t plen, struct backend_channel_list *out)
{
	struct chan_list l = { .prefix = prefix, .plen = plen };

	map_foreach(hub->channels, list_channel, &l);
	if (l.n > 0)
		qsort(l.v, l.n, sizeof(*l.v), by_name);
	out->entries = l.v;
	out->truncated = l.n > BACKEND_LIST_MAX; /* a bounded response; narrow it with a prefix */
	out->count = out->truncated ? BACKEND_LIST_MAX : l.n;
}

void
backend_channel_list_fini(struct backend_channel_list *l)
{
	free(l->entries);
	l->entries = NULL;
	l->count = 0;
}

size_t
backend_disconnect_client(struct hub *hub, const char *client, size_t len)
{
	struct session *s = map_find(hub->sessions, client, len);

	if (s == NULL || s->kicked)
		return 0;
	log_debug("hub: client=%s disconnected through the HTTP API", s->client);
	session_kick(s, PROTO_CLOSE_DISCONNECTED, "disconnected by the server");
	return 1;
}

struct user_op {
	struct hub *hub;
	const char *user, *channel;
	size_t ulen, clen, count;
};

static bool
is_user(const struct session *s, const struct user_op *op)
{
	return !s->kicked && strlen(s->user) == op->ulen &&
	       memcmp(s->user, op->user, op->ulen) == 0;
}

static void
disconnect_one(void *arg, const char *key, size_t len, void *value)
{
	struct user_op *op = arg;

	(void)key, (void)len;
	if (!is_user(value, op))
		return;
	session_kick(value, PROTO_CLOSE_DISCONNECTED, "disconnected by the server");
	op->count++;
}

size_t
backend_disconnect_user(struct hub *hub, const char *user, size_t len)
{
	struct user_op op = { .hub = hub, .user = user, .ulen = len };

	map_foreach(hub->sessions, disconnect_one, &op);
	if (op.count > 0)
		log_info("hub: user=%.*s disconnected through the HTTP API (%zu connections)",
			 (int)len, user, op.count);
	return op.count;
}

static void
unsubscribe_one(void *arg, const char *key, size_t len, void *value)
{
	struct user_op *op = arg;
	struct session *s = value;
	struct channel *ch;
	int j;

	(void)key, (void)len;
	if (!is_user(s, op))
		return;
	ch = channel_find(op->hub, op->channel, op->clen);
	j = ch != NULL ? sub_index(s, ch) : -1;
	if (j < 0)
		return;
	hub_leave(op->hub, s, (uint32_t)j);
	session_send(s, s->dialect->encode_unsubscribed(op->channel, op->clen));
	op->count++;
}

size_t
backend_unsubscribe_user(struct hub *hub, const char *user, size_t len, const char *channel,
			 size_t clen)
{
	char *name = xstrndup(channel, clen); /* the encoder wants a C string */
	struct user_op op = {
		.hub = hub, .user = user, .ulen = len, .channel = name, .clen = clen
	};

	map_foreach(hub->sessions, unsubscribe_one, &op);
	free(name);
	return op.count;
}
