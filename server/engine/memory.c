/* memory.c: the embedded single-node engine.
 *
 * Per channel it keeps the last offset, the epoch, a ring of retained messages
 * (history_size of the channel's namespace, each kept history_ttl) and the presence
 * members. A channel's state lives while it has subscribers or retained messages; once
 * it has neither it is dropped, so its next publish starts a new epoch at offset 1.
 *
 * Memory is bounded twice: per channel by history_size, and for all channels together
 * by history_memory (bytes of retained messages). Past that budget the oldest
 * messages of the least recently published channel are evicted first; recovery over an
 * evicted message answers recovered:false, never a gap.
 *
 * Every call completes inline: done runs before the call returns.
 */
#include "engine.h"
#include "map.h"
#include "message.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hist_entry {
	struct message *m; /* one reference */
	uint64_t offset;
	uint64_t expires_ms; /* 0: never */
};

struct pmember {
	char *client, *user, *info; /* owned; info may be NULL */
	size_t info_len;
};

struct mchan {
	char *name; /* owned copy (the map copies its own key too) */
	size_t len;
	uint64_t offset;
	unsigned subscribers; /* subscribe() calls not yet matched by unsubscribe() */
	char epoch[ENGINE_EPOCH_LEN + 1];

	struct hist_entry *ring; /* ring[(head + i) % cap], i < count: oldest first */
	size_t head, count, cap;

	struct map *members; /* client -> struct pmember, or NULL */
	struct map *users;   /* user -> count (as a pointer-sized integer), or NULL */

	struct mchan *lru_prev, *lru_next; /* channels with history, least recent first */
	bool in_lru;
};

struct memory_engine {
	struct engine base;   /* first: the engine.h view */
	struct map *channels; /* name -> struct mchan */
	uint8_t seed[16];
	uint8_t epoch_key[16];
	uint64_t epochs; /* epochs handed out */
	size_t hist_bytes, hist_budget;
	struct mchan *lru_head, *lru_tail;
};

/* ---- channel state ---- */

/* Epochs are keyed hashes of a counter: unique within a run, unpredictable, and
 * different across restarts because the key is random. */
static void
new_epoch(struct memory_engine *m, struct mchan *c)
{
	uint64_t n = ++m->epochs;

	snprintf(c->epoch, sizeof(c->epoch), "%016" PRIx64,
		 map_siphash(m->epoch_key, &n, sizeof(n)));
}

static struct mchan *
chan_get(struct memory_engine *m, const char *name, size_t len)
{
	struct mchan *c = map_find(m->channels, name, len);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->name = xstrndup(name, len);
		c->len = len;
		new_epoch(m, c);
		map_add(m->channels, name, len, c);
	}
	return c;
}

static void
lru_unlink(struct memory_engine *m, struct mchan *c)
{
	if (!c->in_lru)
		return;
	if (c->lru_prev != NULL)
		c->lru_prev->lru_next = c->lru_next;
	else
		m->lru_head = c->lru_next;
	if (c->lru_next != NULL)
		c->lru_next->lru_prev = c->lru_prev;
	else
		m->lru_tail = c->lru_prev;
	c->lru_prev = c->lru_next = NULL;
	c->in_lru = false;
}

static void
lru_touch(struct memory_engine *m, struct mchan *c)
{
	lru_unlink(m, c);
	c->lru_prev = m->lru_tail;
	if (m->lru_tail != NULL)
		m->lru_tail->lru_next = c;
	else
		m->lru_head = c;
	m->lru_tail = c;
	c->in_lru = true;
}

/* What history_memory counts: a retained message with its ring slot and allocation, and
 * a channel that holds history with its two name copies and map entry. */
static size_t
entry_cost(const struct message *msg)
{
	return message_size(msg) + sizeof(struct hist_entry) + 16;
}

static size_t
chan_cost(const struct mchan *c)
{
	return sizeof(*c) + 2 * c->len + 96;
}

static void
hist_pop_oldest(struct memory_engine *m, struct mchan *c)
{
	struct hist_entry *e = &c->ring[c->head];

	m->hist_bytes -= entry_cost(e->m);
	if (c->count == 1)
		m->hist_bytes -= chan_cost(c);
	message_unref(e->m);
	c->head = (c->head + 1) % c->cap;
	c->count--;
	if (c->count == 0) {
		/* An emptied ring goes too: a subscribed channel may idle for a long time. */
		free(c->ring);
		c->ring = NULL;
		c->cap = 0;
		c->head = 0;
		lru_unlink(m, c);
	}
}

static void
chan_free(struct memory_engine *m, struct mchan *c)
{
	while (c->count > 0)
		hist_pop_oldest(m, c);
	lru_unlink(m, c);
	map_remove(m->channels, c->name, c->len);
	map_free(c->members);
	map_free(c->users);
	free(c->ring);
	free(c->name);
	free(c);
}

/* Drops c when nothing keeps it: no subscribers, no history, no presence. */
static void
chan_put(struct memory_engine *m, struct mchan *c)
{
	if (c->subscribers == 0 && c->count == 0 &&
	    (c->members == NULL || map_count(c->members) == 0))
		chan_free(m, c);
}

static void
hist_push(struct memory_engine *m, struct mchan *c, struct message *msg, unsigned size,
	  uint64_t expires_ms)
{
	while (c->count >= size && c->count > 0)
		hist_pop_oldest(m, c);
	if (c->count == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 4;
		struct hist_entry *r;

		if (ncap > size)
			ncap = size;
		r = xmalloc(ncap * sizeof(*r));
		for (size_t i = 0; i < c->count; i++)
			r[i] = c->ring[(c->head + i) % c->cap];
		free(c->ring);
		c->ring = r;
		c->cap = ncap;
		c->head = 0;
	}
	c->ring[(c->head + c->count) % c->cap] = (struct hist_entry){ .m = message_ref(msg),
								      .offset = message_offset(msg),
								      .expires_ms = expires_ms };
	if (c->count == 0)
		m->hist_bytes += chan_cost(c);
	c->count++;
	m->hist_bytes += entry_cost(msg);
	lru_touch(m, c);
}

/* Evicts the oldest messages of the least recently published channels until history
 * fits its budget. keep is the channel being published to: it may lose messages but is
 * not dropped here (its caller still uses it). */
static void
enforce_budget(struct memory_engine *m, struct mchan *keep)
{
	while (m->hist_bytes > m->hist_budget && m->lru_head != NULL) {
		struct mchan *c = m->lru_head;

		hist_pop_oldest(m, c);
		if (c != keep)
			chan_put(m, c);
	}
}

static void
expire(struct memory_engine *m, struct mchan *c, uint64_t now_ms)
{
	while (c->count > 0 && c->ring[c->head].expires_ms != 0 &&
	       c->ring[c->head].expires_ms <= now_ms)
		hist_pop_oldest(m, c);
}

/* ---- engine ops ---- */

static void
mem_publish(struct engine *e, const struct engine_pub *p, uint64_t now_ms, engine_done_fn done,
	    void *arg)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = chan_get(m, p->channel, p->channel_len);
	struct message *msg = message_new(p->channel, p->channel_len, p->data, p->data_len, p->from,
					  p->from_len, ++c->offset, c->epoch, now_ms);
	struct engine_published r = { msg };

	if (p->history_size > 0) {
		hist_push(m, c, msg, p->history_size,
			  p->history_ttl_ms ? now_ms + p->history_ttl_ms : 0);
		enforce_budget(m, c);
	}
	e->cb.deliver(e->cb.arg, msg);
	done(arg, 0, &r);
	message_unref(msg);
	/* The callbacks cannot remove channel state (unsubscribing is deferred to the
	 * transport), but look it up again rather than trust that. */
	c = map_find(m->channels, p->channel, p->channel_len);
	if (c != NULL)
		chan_put(m, c);
}

static void
position_of(const struct mchan *c, struct engine_position *pos)
{
	pos->offset = c->offset;
	memcpy(pos->epoch, c->epoch, sizeof(pos->epoch));
}

static void
mem_subscribe(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = chan_get(m, channel, len);
	struct engine_position pos;

	c->subscribers++;
	position_of(c, &pos);
	done(arg, 0, &pos);
}

static void
mem_unsubscribe(struct engine *e, const char *channel, size_t len)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = map_find(m->channels, channel, len);

	if (c == NULL || c->subscribers == 0)
		return;
	c->subscribers--;
	chan_put(m, c);
}

static void
mem_history(struct engine *e, const char *channel, size_t len, const struct engine_history_query *q,
	    uint64_t now_ms, engine_done_fn done, void *arg)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = map_find(m->channels, channel, len);
	struct engine_history h = { 0 };
	struct message **msgs = NULL;
	size_t first = 0, n;

	if (c == NULL) {
		done(arg, 0, &h); /* no state: offset 0, empty epoch, nothing retained */
		return;
	}
	expire(m, c, now_ms);
	position_of(c, &h.pos);
	if (q->has_since && strcmp(q->since_epoch, c->epoch) == 0) {
		uint64_t oldest = c->count ? c->ring[c->head].offset : c->offset + 1;

		/* An offset past the last one is not a position of this epoch. */
		h.recovered = q->since_offset <= c->offset && oldest <= q->since_offset + 1;
		while (first < c->count &&
		       c->ring[(c->head + first) % c->cap].offset <= q->since_offset)
			first++;
	}
	n = c->count - first;
	if (n > q->limit)
		first += n - (size_t)q->limit, n = (size_t)q->limit;
	if (n > 0) {
		/* References, so that nothing done does can free them under it. */
		msgs = xmalloc(n * sizeof(*msgs));
		for (size_t i = 0; i < n; i++)
			msgs[i] = message_ref(c->ring[(c->head + first + i) % c->cap].m);
	}
	h.messages = msgs;
	h.count = n;
	chan_put(m, c); /* expiry may have emptied an unsubscribed channel */
	done(arg, 0, &h);
	for (size_t i = 0; i < n; i++)
		message_unref(msgs[i]);
	free(msgs);
}

static void
pmember_free(struct pmember *p)
{
	free(p->client);
	free(p->user);
	free(p->info);
	free(p);
}

static void
users_adjust(struct mchan *c, const char *user, int delta)
{
	size_t len = strlen(user);
	uintptr_t n = (uintptr_t)map_find(c->users, user, len);

	map_remove(c->users, user, len);
	n = (uintptr_t)((intptr_t)n + delta);
	if (n > 0)
		map_add(c->users, user, len, (void *)n);
}

static int
mem_presence_add(struct engine *e, const char *channel, size_t len, const struct engine_member *mb,
		 bool notify)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = chan_get(m, channel, len);
	struct pmember *p;

	if (c->members == NULL) {
		c->members = map_new(m->seed);
		c->users = map_new(m->seed);
	}
	if (map_find(c->members, mb->client, strlen(mb->client)) != NULL)
		return -EEXIST;
	p = xcalloc(1, sizeof(*p));
	p->client = xstrdup(mb->client);
	p->user = xstrdup(mb->user);
	if (mb->info != NULL) {
		p->info = xstrndup(mb->info, mb->info_len);
		p->info_len = mb->info_len;
	}
	map_add(c->members, p->client, strlen(p->client), p);
	users_adjust(c, p->user, +1);
	if (notify)
		e->cb.presence_event(e->cb.arg, channel, len, true, mb);
	return 0;
}

static void
mem_presence_remove(struct engine *e, const char *channel, size_t len,
		    const struct engine_member *mb, bool notify)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = map_find(m->channels, channel, len);
	struct pmember *p;

	if (c == NULL || c->members == NULL)
		return;
	p = map_remove(c->members, mb->client, strlen(mb->client));
	if (p == NULL)
		return;
	users_adjust(c, p->user, -1);
	if (notify) {
		struct engine_member gone = { p->client, p->user, p->info, p->info_len };

		e->cb.presence_event(e->cb.arg, channel, len, false, &gone);
	}
	pmember_free(p);
	chan_put(m, c);
}

struct visit {
	struct engine_member *members;
	size_t n;
};

static void
visit_member(void *arg, const char *key, size_t len, void *value)
{
	struct visit *v = arg;
	struct pmember *p = value;

	(void)key, (void)len;
	v->members[v->n++] = (struct engine_member){ p->client, p->user, p->info, p->info_len };
}

static void
mem_presence(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = map_find(m->channels, channel, len);
	size_t n = c != NULL && c->members != NULL ? map_count(c->members) : 0;
	struct visit v = { n > 0 ? xmalloc(n * sizeof(*v.members)) : NULL, 0 };
	struct engine_presence r;

	if (n > 0)
		map_foreach(c->members, visit_member, &v);
	r = (struct engine_presence){ v.members, v.n };
	done(arg, 0, &r);
	free(v.members);
}

static void
mem_presence_stats(struct engine *e, const char *channel, size_t len, engine_done_fn done,
		   void *arg)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = map_find(m->channels, channel, len);
	struct engine_presence_stats r = {
		.clients = c != NULL && c->members != NULL ? map_count(c->members) : 0,
		.users = c != NULL && c->users != NULL ? map_count(c->users) : 0,
	};

	done(arg, 0, &r);
}

static void
mem_reset(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = map_find(m->channels, channel, len);
	struct engine_position pos = { 0 };

	if (c == NULL) {
		done(arg, 0, &pos);
		return;
	}
	while (c->count > 0)
		hist_pop_oldest(m, c);
	c->offset = 0;
	new_epoch(m, c);
	position_of(c, &pos);
	if (e->cb.reset_event != NULL)
		e->cb.reset_event(e->cb.arg, channel, len, 0, pos.epoch);
	chan_put(m, c);
	done(arg, 0, &pos);
}

static void
mem_tick(struct engine *e, uint64_t now_ms)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = m->lru_head, *next;

	for (; c != NULL; c = next) {
		next = c->lru_next;
		expire(m, c, now_ms);
		chan_put(m, c);
	}
}

static void
free_chan(void *arg, const char *key, size_t len, void *value)
{
	struct mchan *c = value;

	(void)arg, (void)key, (void)len;
	for (size_t i = 0; i < c->count; i++)
		message_unref(c->ring[(c->head + i) % c->cap].m);
	free(c->ring);
	map_free(c->members); /* empty: every session left before the engine is freed */
	map_free(c->users);
	free(c->name);
	free(c);
}

static void
mem_free(struct engine *e)
{
	struct memory_engine *m = (struct memory_engine *)e;

	map_foreach(m->channels, free_chan, NULL);
	map_free(m->channels);
	free(m);
}

static const struct engine_ops memory_ops = {
	.name = "memory",
	.publish = mem_publish,
	.subscribe = mem_subscribe,
	.unsubscribe = mem_unsubscribe,
	.history = mem_history,
	.presence_add = mem_presence_add,
	.presence_remove = mem_presence_remove,
	.presence = mem_presence,
	.presence_stats = mem_presence_stats,
	.reset = mem_reset,
	.tick = mem_tick,
	.free = mem_free,
};

struct engine *
engine_memory_new(const struct engine_callbacks *cb, const struct engine_config *cfg,
		  const uint8_t seed[16])
{
	struct memory_engine *m = xcalloc(1, sizeof(*m));

	m->base.ops = &memory_ops;
	m->base.cb = *cb;
	memcpy(m->seed, seed, sizeof(m->seed));
	for (int i = 0; i < 16; i++)
		m->epoch_key[i] = seed[i] ^ 0x5c;
	m->hist_budget = cfg->history_memory;
	m->channels = map_new(seed);
	return &m->base;
}
