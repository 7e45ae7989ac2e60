/* replay.c: see internal.h. Replays (recover, rewind) and the messages kept for a
 * subscriber catching up are encoded per subscriber, unlike the live fan-out, which
 * encodes once per message. After a deploy, thousands of clients recover the same recent
 * messages within moments of each other: this cache lets them share one frame per message
 * and dialect. It holds a reference to each message it has a frame of (so its address
 * names it for as long as the entry lives) and is emptied at every hub tick (once a
 * second) and whenever an entry would pass its bounds, so it never holds much for long. */
#include "internal.h"
#include "frame.h"
#include "map.h"
#include "message.h"
#include "xalloc.h"

#include <string.h>

#define REPLAY_CACHE_FRAMES 4096
#define REPLAY_CACHE_BYTES (8u << 20)

struct replay_key {
	const struct message *msg;
	unsigned dialect;
};

struct replay_entry {
	struct message *msg; /* a reference */
	struct frame *f;     /* a reference */
};

struct replay_cache {
	uint8_t seed[16];
	struct map *frames; /* struct replay_key -> struct replay_entry */
	size_t bytes;	    /* wire bytes of the frames held */
};

struct replay_cache *
replay_cache_new(const uint8_t seed[16])
{
	struct replay_cache *c = xcalloc(1, sizeof(*c));

	memcpy(c->seed, seed, sizeof(c->seed));
	c->frames = map_new(seed);
	return c;
}

static void
entry_free(void *arg, const char *key, size_t len, void *value)
{
	struct replay_entry *e = value;

	(void)arg, (void)key, (void)len;
	frame_unref(e->f);
	message_unref(e->msg);
	free(e);
}

void
replay_cache_clear(struct replay_cache *c)
{
	if (map_count(c->frames) == 0)
		return;
	map_foreach(c->frames, entry_free, NULL);
	map_free(c->frames);
	c->frames = map_new(c->seed);
	c->bytes = 0;
}

void
replay_cache_free(struct replay_cache *c)
{
	if (c == NULL)
		return;
	replay_cache_clear(c);
	map_free(c->frames);
	free(c);
}

struct frame *
replay_frame(struct hub *hub, const struct dialect *d, struct message *msg)
{
	struct replay_cache *c = hub->replay;
	struct replay_key k;
	struct replay_entry *e;
	struct frame *f;
	size_t bytes;

	memset(&k, 0, sizeof(k)); /* no padding bytes of garbage in the key */
	k.msg = msg;
	k.dialect = d->index;
	e = map_find(c->frames, (const char *)&k, sizeof(k));
	if (e != NULL)
		return frame_ref(e->f);
	f = xcheck(d->encode_message(msg));
	hub->stats.replay_encoded++;
	bytes = frame_wire_len(f);
	if (bytes > REPLAY_CACHE_BYTES / 8)
		return f; /* too big to be worth keeping: this subscriber's alone */
	if (map_count(c->frames) >= REPLAY_CACHE_FRAMES || c->bytes + bytes > REPLAY_CACHE_BYTES)
		replay_cache_clear(c);
	e = xcalloc(1, sizeof(*e));
	e->msg = message_ref(msg);
	e->f = frame_ref(f);
	c->bytes += bytes;
	map_add(c->frames, (const char *)&k, sizeof(k), e); /* not there: cannot fail */
	return f;
}
