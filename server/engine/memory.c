/* memory.c: the embedded single-node engine. Per channel it keeps the last offset and
 * the epoch, for as long as this node has subscribers for the channel; a channel without
 * subscribers has no state, so its next publish starts a new epoch at offset 1. */
#include "engine.h"
#include "map.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct mchan {
	uint64_t offset;
	unsigned subscribers;   /* subscribe() calls not yet matched by unsubscribe() */
	char epoch[17];
};

struct memory_engine {
	struct engine base;     /* first: the engine.h view */
	struct map *channels;   /* name -> struct mchan */
	uint8_t seed[16];
	uint64_t epochs;        /* epochs handed out */
};

/* Epochs are 64-bit keyed hashes of a counter: unique within a run, unpredictable, and
 * different across restarts because the seed is random. */
static void
new_epoch(struct memory_engine *m, struct mchan *c)
{
	uint64_t n = ++m->epochs;

	snprintf(c->epoch, sizeof(c->epoch), "%016" PRIx64, map_siphash(m->seed, &n, sizeof(n)));
}

static struct mchan *
chan_get(struct memory_engine *m, const char *name, size_t len)
{
	struct mchan *c = map_find(m->channels, name, len);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		new_epoch(m, c);
		map_add(m->channels, name, len, c);
	}
	return c;
}

static void
chan_put(struct memory_engine *m, const char *name, size_t len, struct mchan *c)
{
	if (c->subscribers == 0) {
		map_remove(m->channels, name, len);
		free(c);
	}
}

static int
mem_publish(struct engine *e, struct engine_msg *msg, uint64_t cookie)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = chan_get(m, msg->channel, msg->channel_len);

	msg->offset = ++c->offset;
	msg->epoch = c->epoch;
	e->cb.deliver(e->cb.arg, msg);
	e->cb.published(e->cb.arg, cookie, 0, msg);
	/* The callbacks may have unsubscribed the last subscriber; look the channel up again. */
	c = map_find(m->channels, msg->channel, msg->channel_len);
	if (c != NULL)
		chan_put(m, msg->channel, msg->channel_len, c);
	msg->epoch = NULL;
	return 0;
}

static int
mem_subscribe(struct engine *e, const char *channel, size_t len)
{
	struct memory_engine *m = (struct memory_engine *)e;

	chan_get(m, channel, len)->subscribers++;
	return 0;
}

static void
mem_unsubscribe(struct engine *e, const char *channel, size_t len)
{
	struct memory_engine *m = (struct memory_engine *)e;
	struct mchan *c = map_find(m->channels, channel, len);

	if (c == NULL || c->subscribers == 0)
		return;
	c->subscribers--;
	chan_put(m, channel, len, c);
}

static void
free_chan(void *arg, const char *key, size_t len, void *value)
{
	(void)arg, (void)key, (void)len;
	free(value);
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
	.free = mem_free,
};

struct engine *
engine_memory_new(const struct engine_callbacks *cb, const uint8_t seed[16])
{
	struct memory_engine *m = xcalloc(1, sizeof(*m));

	m->base.ops = &memory_ops;
	m->base.cb = *cb;
	for (int i = 0; i < 16; i++)
		m->seed[i] = seed[i] ^ 0x5c;
	m->channels = map_new(seed);
	return &m->base;
}
