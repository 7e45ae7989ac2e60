/* engine.c: engine selection and the thin dispatch wrappers of engine.h. */
#include "engine.h"
#include "frame.h"

#include <stdlib.h>
#include <string.h>

struct engine *
engine_new(const char *name, const struct engine_callbacks *cb, const struct engine_config *cfg,
	   const uint8_t seed[16])
{
	if (strcmp(name, "memory") == 0)
		return engine_memory_new(cb, cfg, seed);
	return NULL;
}

int
engine_publish(struct engine *e, struct engine_msg *msg, uint64_t cookie, uint64_t now_ms)
{
	return e->ops->publish(e, msg, cookie, now_ms);
}

int
engine_subscribe(struct engine *e, const char *channel, size_t len)
{
	return e->ops->subscribe(e, channel, len);
}

void
engine_unsubscribe(struct engine *e, const char *channel, size_t len)
{
	e->ops->unsubscribe(e, channel, len);
}

int
engine_history(struct engine *e, const char *channel, size_t len,
	       const struct engine_history_query *q, struct engine_history *out, uint64_t now_ms)
{
	memset(out, 0, sizeof(*out));
	return e->ops->history(e, channel, len, q, out, now_ms);
}

void
engine_history_fini(struct engine_history *h)
{
	for (size_t i = 0; i < h->nframes; i++)
		frame_unref(h->frames[i]);
	free(h->frames);
	h->frames = NULL;
	h->nframes = 0;
}

int
engine_presence_add(struct engine *e, const char *channel, size_t len,
		    const struct engine_member *m, bool notify)
{
	return e->ops->presence_add(e, channel, len, m, notify);
}

void
engine_presence_remove(struct engine *e, const char *channel, size_t len,
		       const struct engine_member *m, bool notify)
{
	e->ops->presence_remove(e, channel, len, m, notify);
}

int
engine_presence(struct engine *e, const char *channel, size_t len,
		void (*fn)(void *arg, const struct engine_member *m), void *arg)
{
	return e->ops->presence(e, channel, len, fn, arg);
}

int
engine_presence_stats(struct engine *e, const char *channel, size_t len, uint64_t *clients,
		      uint64_t *users)
{
	return e->ops->presence_stats(e, channel, len, clients, users);
}

int
engine_reset(struct engine *e, const char *channel, size_t len, uint64_t *offset,
	     char epoch[ENGINE_EPOCH_LEN + 1])
{
	*offset = 0;
	epoch[0] = '\0';
	return e->ops->reset(e, channel, len, offset, epoch);
}

void
engine_tick(struct engine *e, uint64_t now_ms)
{
	e->ops->tick(e, now_ms);
}

void
engine_free(struct engine *e)
{
	if (e != NULL)
		e->ops->free(e);
}
