/* engine.c: engine selection and the thin dispatch wrappers of engine.h. */
#include "engine.h"

#include <string.h>

struct engine *
engine_new(const char *name, const struct engine_callbacks *cb, const uint8_t seed[16])
{
	if (strcmp(name, "memory") == 0)
		return engine_memory_new(cb, seed);
	return NULL;
}

int
engine_publish(struct engine *e, struct engine_msg *msg, uint64_t cookie)
{
	return e->ops->publish(e, msg, cookie);
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

void
engine_free(struct engine *e)
{
	if (e != NULL)
		e->ops->free(e);
}
