/* engine.h: where channel state lives: offsets, epochs, history and presence. The hub
 * talks to an engine only through these calls, so a Redis engine can replace the memory
 * engine without a change above this line.
 *
 * Delivery is push-based: the engine hands every published message (from this node or,
 * for a shared engine, from any node) and every join/leave to the callbacks given at
 * creation, for the channels this node subscribed to. Publishing is asynchronous in form:
 * the completion callback runs once, possibly before engine_publish() returns (the memory
 * engine always does so), and names the publisher by an opaque 64-bit cookie, never by a
 * pointer, so a publisher that disconnects meanwhile is simply not found. Queries
 * (history, presence) answer synchronously here; a networked engine will answer them
 * through the same structs from its own replies.
 *
 * Encoded frames are made by the hub (cb.encode) so that the engine can keep the very
 * frame it fans out in history: a recovered message is the same bytes, shared. */
#ifndef SWITCHBOARD_ENGINE_H
#define SWITCHBOARD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;
struct frame;

#define ENGINE_EPOCH_LEN 16

/* One published message. All pointers are borrowed for the duration of the call. */
struct engine_msg {
	const char *channel;
	size_t channel_len;
	const char *data;        /* exact JSON text of the data value */
	size_t data_len;
	const char *from;        /* encoded "from" object, or NULL */
	size_t from_len;
	unsigned history_size;   /* publish: messages to retain for the channel (namespace) */
	uint64_t history_ttl_ms; /* publish: how long to retain them; 0: until evicted */
	uint64_t offset;         /* set by the engine */
	const char *epoch;       /* set by the engine */
};

/* A presence member: one subscribed connection. Borrowed for the call. */
struct engine_member {
	const char *client;
	const char *user;
	const char *info;        /* JSON object text, or NULL */
	size_t info_len;
};

struct engine_callbacks {
	/* Encodes msg (offset and epoch set) into a frame: a new reference. */
	struct frame *(*encode)(void *arg, const struct engine_msg *msg);
	/* Fan-out of msg, encoded as f (borrowed), to this node's subscribers. */
	void (*deliver)(void *arg, const struct engine_msg *msg, struct frame *f);
	/* Publish completion: rc is 0 (msg->offset and msg->epoch are set) or a negative errno. */
	void (*published)(void *arg, uint64_t cookie, int rc, const struct engine_msg *msg);
	/* A member joined or left channel (only for presence changes made with notify). */
	void (*presence_event)(void *arg, const char *channel, size_t len, bool join,
			       const struct engine_member *m);
	/* The channel's history was dropped (engine_reset): offsets start again after
	 * offset in the new epoch. For channels this node subscribed to. */
	void (*reset_event)(void *arg, const char *channel, size_t len, uint64_t offset,
			    const char *epoch);
	void *arg;
};

struct engine_config {
	size_t history_memory;   /* bytes of retained messages, all channels together */
};

/* What history() is asked. */
struct engine_history_query {
	bool has_since;          /* only messages after since_offset, if since_epoch is current */
	uint64_t since_offset;
	const char *since_epoch;
	uint64_t limit;          /* at most this many (the newest); 0: none, just the position */
};

/* What history() answers. frames[] are new references, oldest first. */
struct engine_history {
	uint64_t offset;                      /* the channel's last offset */
	char epoch[ENGINE_EPOCH_LEN + 1];
	bool recovered;                       /* has_since: epoch matched and nothing is missing */
	struct frame **frames;
	size_t nframes;
};

struct engine_ops {
	const char *name;
	int (*publish)(struct engine *e, struct engine_msg *msg, uint64_t cookie, uint64_t now_ms);
	int (*subscribe)(struct engine *e, const char *channel, size_t len);
	void (*unsubscribe)(struct engine *e, const char *channel, size_t len);
	int (*history)(struct engine *e, const char *channel, size_t len,
		       const struct engine_history_query *q, struct engine_history *out,
		       uint64_t now_ms);
	int (*presence_add)(struct engine *e, const char *channel, size_t len,
			    const struct engine_member *m, bool notify);
	void (*presence_remove)(struct engine *e, const char *channel, size_t len,
				const struct engine_member *m, bool notify);
	/* Calls fn for each member; returns the count, or a negative errno. */
	int (*presence)(struct engine *e, const char *channel, size_t len,
			void (*fn)(void *arg, const struct engine_member *m), void *arg);
	int (*presence_stats)(struct engine *e, const char *channel, size_t len,
			      uint64_t *clients, uint64_t *users);
	/* Drops the channel's retained messages and starts a new epoch at offset 0. */
	int (*reset)(struct engine *e, const char *channel, size_t len, uint64_t *offset,
		     char epoch[ENGINE_EPOCH_LEN + 1]);
	void (*tick)(struct engine *e, uint64_t now_ms);
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
			  const struct engine_config *cfg, const uint8_t seed[16]);

/* Publishes msg (offset/epoch are filled in); calls cb.encode, cb.deliver for local
 * subscribers and cb.published with cookie. Returns 0 or a negative errno (then no
 * callback runs). */
int engine_publish(struct engine *e, struct engine_msg *msg, uint64_t cookie, uint64_t now_ms);
/* This node now has (or no longer has) subscribers for channel. subscribe() makes the
 * channel's state exist (an epoch) so that a subscriber learns its position. */
int engine_subscribe(struct engine *e, const char *channel, size_t len);
void engine_unsubscribe(struct engine *e, const char *channel, size_t len);
/* Fills out; the caller releases it with engine_history_fini(). */
int engine_history(struct engine *e, const char *channel, size_t len,
		   const struct engine_history_query *q, struct engine_history *out, uint64_t now_ms);
void engine_history_fini(struct engine_history *h);
int engine_presence_add(struct engine *e, const char *channel, size_t len,
			const struct engine_member *m, bool notify);
void engine_presence_remove(struct engine *e, const char *channel, size_t len,
			    const struct engine_member *m, bool notify);
int engine_presence(struct engine *e, const char *channel, size_t len,
		    void (*fn)(void *arg, const struct engine_member *m), void *arg);
int engine_presence_stats(struct engine *e, const char *channel, size_t len,
			  uint64_t *clients, uint64_t *users);
/* Drops history and starts a new epoch (offset 0), then calls cb.reset_event. A channel
 * without state stays without: offset 0, empty epoch, no event. */
int engine_reset(struct engine *e, const char *channel, size_t len, uint64_t *offset,
		 char epoch[ENGINE_EPOCH_LEN + 1]);
/* Expiry of retained messages (history_ttl). */
void engine_tick(struct engine *e, uint64_t now_ms);
void engine_free(struct engine *e);                 /* NULL-safe */

/* The memory engine (memory.c). */
struct engine *engine_memory_new(const struct engine_callbacks *cb,
				 const struct engine_config *cfg, const uint8_t seed[16]);

#endif
