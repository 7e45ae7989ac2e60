/* engine.h: where channel state lives: offsets, epochs, history and presence. The hub
 * talks to an engine only through these calls, so a Redis engine can replace the memory
 * engine without a change above this line.
 *
 * The contract is asynchronous. Every call that answers (publish, subscribe, history,
 * presence, presence_stats, reset) completes through its done callback exactly once:
 * inline, before the call returns, for the memory engine; later, from the network, for
 * a networked engine. rc is 0 or a negative errno (-EAGAIN, -EIO, -ECANCELED when the
 * engine is freed first, ...); the result is borrowed for the duration of done and is
 * NULL when rc != 0. The caller keeps whatever identifies the operation (the hub keeps a
 * table of operations keyed by cookie, see pending.h) and passes it as arg; nothing the
 * engine is given is expected to outlive the call except arg.
 *
 * Delivery is push-based: the engine hands every published message (from this node or,
 * for a shared engine, from any node) and every join/leave to the callbacks given at
 * creation, for the channels this node subscribed to. A published message is an
 * immutable, refcounted struct message (message.h); the engine keeps the same message in
 * history, and the hub encodes it once per dialect.
 *
 * Ordering, which exact recovery rests on (two-phase subscribe, docs/architecture.md):
 * after subscribe() answers, every message of the channel is delivered, in offset order;
 * and every message at or below the position a history() answer reports is delivered
 * before that answer, never after it. The hub keeps what arrives between a subscription
 * and its history answer and releases only what lies beyond the answered position. */
#ifndef SWITCHBOARD_ENGINE_H
#define SWITCHBOARD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

struct engine;

#define ENGINE_EPOCH_LEN MESSAGE_EPOCH_LEN

/* Completion of one call: arg as given, rc 0 or a negative errno, result (borrowed, the
 * call's own result type below) or NULL when rc != 0. */
typedef void (*engine_done_fn)(void *arg, int rc, const void *result);

/* What publish() is given. All pointers are borrowed for the duration of the call. */
struct engine_pub {
	const char *channel;
	size_t channel_len;
	const char *data; /* exact JSON text of the data value */
	size_t data_len;
	const char *from; /* encoded "from" object, or NULL */
	size_t from_len;
	unsigned history_size;	 /* messages to retain for the channel (namespace) */
	uint64_t history_ttl_ms; /* how long to retain them; 0: until evicted */
};

/* A channel's position: its last offset and its epoch ("" for a channel without state). */
struct engine_position {
	uint64_t offset;
	char epoch[ENGINE_EPOCH_LEN + 1];
};

/* publish() answers the message as stored (offset and epoch assigned). */
struct engine_published {
	struct message *msg; /* borrowed: take a reference to keep it */
};

/* A presence member: one subscribed connection. Borrowed for the call. */
struct engine_member {
	const char *client;
	const char *user;
	const char *info; /* JSON object text, or NULL */
	size_t info_len;
};

/* presence() answers every member (borrowed). */
struct engine_presence {
	const struct engine_member *members;
	size_t count;
};

/* presence_stats() answers the counts. */
struct engine_presence_stats {
	uint64_t clients; /* subscribed connections */
	uint64_t users;	  /* distinct users among them */
};

/* What history() is asked. */
struct engine_history_query {
	bool has_since; /* only messages after since_offset, if since_epoch is current */
	uint64_t since_offset;
	const char *since_epoch;
	uint64_t limit; /* at most this many (the newest); 0: none, just the position */
};

/* What history() answers: the position and messages[] (borrowed), oldest first. */
struct engine_history {
	struct engine_position pos;
	bool recovered; /* has_since: epoch matched and nothing is missing */
	struct message *const *messages;
	size_t count;
};

struct engine_callbacks {
	/* Fan-out of msg (borrowed) to this node's subscribers of its channel. */
	void (*deliver)(void *arg, struct message *msg);
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
	size_t history_memory; /* bytes of retained messages, all channels together */
};

struct engine_ops {
	const char *name;
	void (*publish)(struct engine *e, const struct engine_pub *p, uint64_t now_ms,
			engine_done_fn done, void *arg);
	void (*subscribe)(struct engine *e, const char *channel, size_t len, engine_done_fn done,
			  void *arg);
	void (*unsubscribe)(struct engine *e, const char *channel, size_t len);
	void (*history)(struct engine *e, const char *channel, size_t len,
			const struct engine_history_query *q, uint64_t now_ms, engine_done_fn done,
			void *arg);
	int (*presence_add)(struct engine *e, const char *channel, size_t len,
			    const struct engine_member *m, bool notify);
	void (*presence_remove)(struct engine *e, const char *channel, size_t len,
				const struct engine_member *m, bool notify);
	void (*presence)(struct engine *e, const char *channel, size_t len, engine_done_fn done,
			 void *arg);
	void (*presence_stats)(struct engine *e, const char *channel, size_t len,
			       engine_done_fn done, void *arg);
	void (*reset)(struct engine *e, const char *channel, size_t len, engine_done_fn done,
		      void *arg);
	void (*tick)(struct engine *e, uint64_t now_ms);
	void (*free)(struct engine *e);
};

/* Common head of every engine; concrete engines embed it first. */
struct engine {
	const struct engine_ops *ops;
	struct engine_callbacks cb;
};

/* Makes an engine (a concrete engine's constructor has this type). */
typedef struct engine *(*engine_factory_fn)(const struct engine_callbacks *cb,
					    const struct engine_config *cfg,
					    const uint8_t seed[16]);

/* Creates the engine called name ("memory"); seed randomises epochs and hashing.
 * Returns NULL for an unknown name. */
struct engine *engine_new(const char *name, const struct engine_callbacks *cb,
			  const struct engine_config *cfg, const uint8_t seed[16]);

/* Publishes p: assigns the next offset in the channel's epoch, retains the message,
 * calls cb.deliver on every node with subscribers, then done with struct
 * engine_published. */
void engine_publish(struct engine *e, const struct engine_pub *p, uint64_t now_ms,
		    engine_done_fn done, void *arg);
/* This node now has subscribers for channel: deliveries for it start before done runs,
 * and done answers the channel's position (struct engine_position; the channel's state
 * exists from now on: an epoch). Every subscribe is matched by one unsubscribe, also
 * one whose done reported an error. */
void engine_subscribe(struct engine *e, const char *channel, size_t len, engine_done_fn done,
		      void *arg);
void engine_unsubscribe(struct engine *e, const char *channel, size_t len);
/* Answers struct engine_history. */
void engine_history(struct engine *e, const char *channel, size_t len,
		    const struct engine_history_query *q, uint64_t now_ms, engine_done_fn done,
		    void *arg);
/* Adds or removes one member; notify: the channel's subscribers get join/leave
 * (cb.presence_event). Returns 0, or a negative errno (-EEXIST: already a member) that
 * the caller logs: presence is advisory and its failure does not refuse a subscribe. */
int engine_presence_add(struct engine *e, const char *channel, size_t len,
			const struct engine_member *m, bool notify);
void engine_presence_remove(struct engine *e, const char *channel, size_t len,
			    const struct engine_member *m, bool notify);
/* Answers struct engine_presence. */
void engine_presence(struct engine *e, const char *channel, size_t len, engine_done_fn done,
		     void *arg);
/* Answers struct engine_presence_stats. */
void engine_presence_stats(struct engine *e, const char *channel, size_t len, engine_done_fn done,
			   void *arg);
/* Drops history and starts a new epoch at offset 0, calls cb.reset_event, then answers
 * the new struct engine_position. A channel without state stays without: offset 0,
 * empty epoch, no event. */
void engine_reset(struct engine *e, const char *channel, size_t len, engine_done_fn done,
		  void *arg);
/* Expiry of retained messages (history_ttl). */
void engine_tick(struct engine *e, uint64_t now_ms);
/* Completes every call still in flight with -ECANCELED, then frees. NULL-safe. */
void engine_free(struct engine *e);

/* The memory engine (memory.c). */
struct engine *engine_memory_new(const struct engine_callbacks *cb, const struct engine_config *cfg,
				 const uint8_t seed[16]);

#endif
