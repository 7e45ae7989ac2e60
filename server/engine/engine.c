/* engine.c: engine selection and the thin dispatch wrappers of engine.h. */
#include "engine.h"

#include <string.h>

struct engine *
engine_new(const char *name, const struct engine_callbacks *cb, const struct engine_config *cfg,
	   const uint8_t seed[16])
{
	if (strcmp(name, "memory") == 0)
		return engine_memory_new(cb, cfg, seed);
	return NULL;
}

void
engine_publish(struct engine *e, const struct engine_pub *p, uint64_t now_ms, engine_done_fn done,
	       void *arg)
{
	e->ops->publish(e, p, now_ms, done, arg);
}

void
engine_subscribe(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	e->ops->subscribe(e, channel, len, done, arg);
}

void
engine_unsubscribe(struct engine *e, const char *channel, size_t len)
{
	e->ops->unsubscribe(e, channel, len);
}

void
engine_history(struct engine *e, const char *channel, size_t len,
	       const struct engine_history_query *q, uint64_t now_ms, engine_done_fn done,
	       void *arg)
{
	e->ops->history(e, channel, len, q, now_ms, done, arg);
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

void
engine_presence(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	e->ops->presence(e, channel, len, done, arg);
}

void
engine_presence_stats(struct engine *e, const char *channel, size_t len, engine_done_fn done,
		      void *arg)
{
	e->ops->presence_stats(e, channel, len, done, arg);
}

void
engine_reset(struct engine *e, const char *channel, size_t len, engine_done_fn done, void *arg)
{
	e->ops->reset(e, channel, len, done, arg);
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
