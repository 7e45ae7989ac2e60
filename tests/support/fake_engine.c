/* fake_engine.c: see fake_engine.h. */
#include "fake_engine.h"
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum call_kind { C_PUBLISH, C_SUBSCRIBE, C_HISTORY, C_PRESENCE, C_PRESENCE_STATS, C_RESET };

static const char *const kind_names[] = { "publish",  "subscribe",	"history",
					  "presence", "presence_stats", "reset" };

struct call {
	enum call_kind kind;
	char *channel;
	size_t len;
	char *data, *from; /* publish */
	size_t data_len, from_len;
	unsigned history_size;
	uint64_t history_ttl_ms;
	struct engine_history_query q; /* history; q.since_epoch points at since */
	char since[ENGINE_EPOCH_LEN + 8];
	uint64_t now_ms;
	engine_done_fn done;
	void *arg;
	unsigned unsubs_after; /* subscribe: unsubscribes of its channel that came after it */
};

struct fake_engine {
	struct engine base;   /* first: the engine.h view */
	struct engine *inner; /* the memory engine holding the state */
	bool automatic;
	bool on_tick; /* settle at every tick */
	struct call *q;
	size_t n, cap;
	long subscriptions; /* subscribes the inner engine holds (run minus unsubscribes run) */
};

static struct fake_engine *last;

struct fake_engine *
fake_engine_last(void)
{
	return last;
}

/* The inner engine's callbacks go to the hub as they are. */
static void
fwd_deliver(void *arg, struct message *msg)
{
	struct fake_engine *fe = arg;

	fe->base.cb.deliver(fe->base.cb.arg, msg);
}

static void
fwd_presence(void *arg, const char *channel, size_t len, bool join, const struct engine_member *m)
{
	struct fake_engine *fe = arg;

	fe->base.cb.presence_event(fe->base.cb.arg, channel, len, join, m);
}

static void
fwd_reset(void *arg, const char *channel, size_t len, uint64_t offset, const char *epoch)
{
	struct fake_engine *fe = arg;

	if (fe->base.cb.reset_event != NULL)
		fe->base.cb.reset_event(fe->base.cb.arg, channel, len, offset, epoch);
}

static void
run(struct fake_engine *fe, struct call *c)
{
	struct engine *in = fe->inner;
	struct engine_pub p;

	switch (c->kind) {
	case C_PUBLISH:
		p =
			(struct engine_pub){ c->channel,      c->len,		c->data,
					     c->data_len,     c->from,		c->from_len,
					     c->history_size, c->history_ttl_ms };
		in->ops->publish(in, &p, c->now_ms, c->done, c->arg);
		break;
	case C_SUBSCRIBE:
		fe->subscriptions++;
		in->ops->subscribe(in, c->channel, c->len, c->done, c->arg);
		/* In order, as a networked engine keeps one channel's commands: the
		 * unsubscribes that came after it run after it. */
		for (; c->unsubs_after > 0; c->unsubs_after--) {
			fe->subscriptions--;
			in->ops->unsubscribe(in, c->channel, c->len);
		}
		break;
	case C_HISTORY:
		in->ops->history(in, c->channel, c->len, &c->q, c->now_ms, c->done, c->arg);
		break;
	case C_PRESENCE:
		in->ops->presence(in, c->channel, c->len, c->done, c->arg);
		break;
	case C_PRESENCE_STATS:
		in->ops->presence_stats(in, c->channel, c->len, c->done, c->arg);
		break;
	case C_RESET:
		in->ops->reset(in, c->channel, c->len, c->done, c->arg);
		break;
	}
}

static void
call_fini(struct call *c)
{
	free(c->channel);
	free(c->data);
	free(c->from);
}

/* Takes the i-th call out of the queue into *out. */
static void
take(struct fake_engine *fe, size_t i, struct call *out)
{
	*out = fe->q[i];
	memmove(&fe->q[i], &fe->q[i + 1], (fe->n - i - 1) * sizeof(*fe->q));
	fe->n--;
	if (out->q.has_since)
		out->q.since_epoch = out->since;
}

static void
queue(struct fake_engine *fe, struct call *c)
{
	if (fe->automatic) {
		if (c->q.has_since)
			c->q.since_epoch = c->since;
		run(fe, c);
		call_fini(c);
		return;
	}
	if (fe->n == fe->cap) {
		fe->cap = fe->cap ? fe->cap * 2 : 16;
		fe->q = realloc(fe->q, fe->cap * sizeof(*fe->q));
	}
	fe->q[fe->n++] = *c;
}

static struct call
call_of(enum call_kind kind, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct call c = { .kind = kind, .len = len, .done = done, .arg = arg };

	c.channel = malloc(len + 1);
	memcpy(c.channel, channel, len);
	c.channel[len] = '\0';
	return c;
}

static char *
dup_bytes(const char *p, size_t n)
{
	char *d = malloc(n + 1);

	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static void
f_publish(struct engine *e, const struct engine_pub *p, uint64_t now_ms, engine_done_fn done,
	  void *arg)
{
	struct call c = call_of(C_PUBLISH, p->channel, p->channel_len, done, arg);

	c.data = dup_bytes(p->data, p->data_len);
	c.data_len = p->data_len;
	if (p->from != NULL) {
		c.from = dup_bytes(p->from, p->from_len);
		c.from_len = p->from_len;
	}
	c.history_size = p->history_size;
	c.history_ttl_ms = p->history_ttl_ms;
	c.now_ms = now_ms;
	queue((struct fake_engine *)e, &c);
}

static void
f_subscribe(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct call c = call_of(C_SUBSCRIBE, channel, len, done, arg);

	queue((struct fake_engine *)e, &c);
}

/* An unsubscribe does not overtake a subscribe of its channel still waiting: it runs
 * right after that one does (or not at all if that one fails, as the pair then leaves
 * nothing on a real engine). */
static void
f_unsubscribe(struct engine *e, const char *channel, size_t len)
{
	struct fake_engine *fe = (struct fake_engine *)e;

	for (size_t i = fe->n; i-- > 0;)
		if (fe->q[i].kind == C_SUBSCRIBE && fe->q[i].len == len &&
		    memcmp(fe->q[i].channel, channel, len) == 0) {
			fe->q[i].unsubs_after++;
			return;
		}
	fe->subscriptions--;
	fe->inner->ops->unsubscribe(fe->inner, channel, len);
}

static void
f_history(struct engine *e, const char *channel, size_t len, const struct engine_history_query *q,
	  uint64_t now_ms, engine_done_fn done, void *arg)
{
	struct call c = call_of(C_HISTORY, channel, len, done, arg);

	c.q = *q;
	if (q->has_since) {
		strncpy(c.since, q->since_epoch, sizeof(c.since) - 1);
		c.q.since_epoch = NULL; /* set when it runs: the call moves in the queue */
	}
	c.now_ms = now_ms;
	queue((struct fake_engine *)e, &c);
}

static int
f_presence_add(struct engine *e, const char *channel, size_t len, const struct engine_member *m,
	       bool notify)
{
	struct engine *in = ((struct fake_engine *)e)->inner;

	return in->ops->presence_add(in, channel, len, m, notify);
}

static void
f_presence_remove(struct engine *e, const char *channel, size_t len, const struct engine_member *m,
		  bool notify)
{
	struct engine *in = ((struct fake_engine *)e)->inner;

	in->ops->presence_remove(in, channel, len, m, notify);
}

static void
f_presence(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct call c = call_of(C_PRESENCE, channel, len, done, arg);

	queue((struct fake_engine *)e, &c);
}

static void
f_presence_stats(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct call c = call_of(C_PRESENCE_STATS, channel, len, done, arg);

	queue((struct fake_engine *)e, &c);
}

static void
f_reset(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	struct call c = call_of(C_RESET, channel, len, done, arg);

	queue((struct fake_engine *)e, &c);
}

static void
f_tick(struct engine *e, uint64_t now_ms)
{
	struct fake_engine *fe = (struct fake_engine *)e;

	if (fe->on_tick)
		fake_engine_settle(fe);
	fe->inner->ops->tick(fe->inner, now_ms);
}

/* Like a networked engine going away: what is in flight is cancelled. */
static void
f_free(struct engine *e)
{
	struct fake_engine *fe = (struct fake_engine *)e;

	while (fe->n > 0)
		fake_engine_fail(fe, 0, -ECANCELED);
	engine_free(fe->inner);
	free(fe->q);
	if (last == fe)
		last = NULL;
	free(fe);
}

static const struct engine_ops fake_ops = {
	.name = "fake",
	.publish = f_publish,
	.subscribe = f_subscribe,
	.unsubscribe = f_unsubscribe,
	.history = f_history,
	.presence_add = f_presence_add,
	.presence_remove = f_presence_remove,
	.presence = f_presence,
	.presence_stats = f_presence_stats,
	.reset = f_reset,
	.tick = f_tick,
	.free = f_free,
};

struct engine *
fake_engine_new(const struct engine_callbacks *cb, const struct engine_config *cfg,
		const uint8_t seed[16])
{
	struct fake_engine *fe = calloc(1, sizeof(*fe));
	struct engine_callbacks inner_cb = {
		.deliver = fwd_deliver,
		.presence_event = fwd_presence,
		.reset_event = fwd_reset,
		.arg = fe,
	};

	fe->base.ops = &fake_ops;
	fe->base.cb = *cb;
	fe->inner = engine_memory_new(&inner_cb, cfg, seed);
	last = fe;
	return &fe->base;
}

struct engine *
fake_engine_new_on_tick(const struct engine_callbacks *cb, const struct engine_config *cfg,
			const uint8_t seed[16])
{
	struct engine *e = fake_engine_new(cb, cfg, seed);

	((struct fake_engine *)e)->on_tick = true;
	return e;
}

void
fake_engine_set_automatic(struct fake_engine *fe, bool on)
{
	fe->automatic = on;
}

long
fake_engine_subscriptions(const struct fake_engine *fe)
{
	return fe->subscriptions;
}

size_t
fake_engine_queued(const struct fake_engine *fe)
{
	return fe->n;
}

const char *
fake_engine_kind(const struct fake_engine *fe, size_t i)
{
	return i < fe->n ? kind_names[fe->q[i].kind] : NULL;
}

const char *
fake_engine_channel(const struct fake_engine *fe, size_t i)
{
	return i < fe->n ? fe->q[i].channel : NULL;
}

int
fake_engine_find(const struct fake_engine *fe, const char *kind, const char *channel)
{
	for (size_t i = 0; i < fe->n; i++)
		if (strcmp(kind_names[fe->q[i].kind], kind) == 0 &&
		    (channel == NULL || strcmp(fe->q[i].channel, channel) == 0))
			return (int)i;
	return -1;
}

void
fake_engine_complete(struct fake_engine *fe, size_t i)
{
	struct call c;

	if (i >= fe->n)
		return;
	take(fe, i, &c);
	run(fe, &c);
	call_fini(&c);
}

void
fake_engine_fail(struct fake_engine *fe, size_t i, int rc)
{
	struct call c;

	if (i >= fe->n)
		return;
	take(fe, i, &c);
	c.done(c.arg, rc, NULL);
	call_fini(&c);
}

void
fake_engine_settle(struct fake_engine *fe)
{
	while (fe->n > 0)
		fake_engine_complete(fe, 0);
}
