/* engine.h: where channel state lives (offsets and epochs now; history and presence
 * later). The hub talks to an engine only through these calls, so a Redis engine can
 * replace the memory engine without a change above this line.
 *
 * Delivery is push-based: the engine hands every published message (from this node or,
 * for a shared engine, from any node) to the deliver callback given at creation, for the
 * channels this node subscribed to. Publishing is asynchronous in form: the completion
 * callback runs once, possibly before engine_publish() returns (the memory engine always
 * does so), and identifies the publisher by an opaque 64-bit cookie, never by a pointer,
 * so a publisher that disconnects meanwhile is simply not found. */
#ifndef SWITCHBOARD_ENGINE_H
#define SWITCHBOARD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

struct engine;

/* One published message. All pointers are borrowed for the duration of the call. */
struct engine_msg {
	const char *channel;
	size_t channel_len;
	const char *data;        /* exact JSON text of the data value */
	size_t data_len;
	const char *from;        /* encoded "from" object, or NULL */
	size_t from_len;
	uint64_t offset;         /* set by the engine */
	const char *epoch;       /* set by the engine */
};

/* A message to deliver to this node's subscribers of msg->channel. */
typedef void (*engine_deliver_fn)(void *arg, const struct engine_msg *msg);
/* Publish completion: rc is 0 (msg->offset and msg->epoch are set) or a negative errno. */
typedef void (*engine_published_fn)(void *arg, uint64_t cookie, int rc, const struct engine_msg *msg);

struct engine_callbacks {
	engine_deliver_fn deliver;
	engine_published_fn published;
	void *arg;
};

struct engine_ops {
	const char *name;
	int (*publish)(struct engine *e, struct engine_msg *msg, uint64_t cookie);
	int (*subscribe)(struct engine *e, const char *channel, size_t len);
	void (*unsubscribe)(struct engine *e, const char *channel, size_t len);
	void (*free)(struct engine *e);
};

/* Common head of every engine; concrete engines embed it first. */
struct engine {
	const struct engine_ops *ops;
	struct engine_callbacks cb;
};

/* Creates the engine called name ("memory"); seed randomises epochs and hashing.
 * Returns NULL for an unknown name. */
struct engine *engine_new(const char *name, const struct engine_callbacks *cb,
			  const uint8_t seed[16]);

/* Publishes msg (offset/epoch are filled in); calls cb.deliver for local subscribers and
 * cb.published with cookie. Returns 0 or a negative errno (then no callback runs). */
int engine_publish(struct engine *e, struct engine_msg *msg, uint64_t cookie);
/* This node now has (or no longer has) subscribers for channel. */
int engine_subscribe(struct engine *e, const char *channel, size_t len);
void engine_unsubscribe(struct engine *e, const char *channel, size_t len);
void engine_free(struct engine *e);                 /* NULL-safe */

/* The memory engine (memory.c). */
struct engine *engine_memory_new(const struct engine_callbacks *cb, const uint8_t seed[16]);

#endif
