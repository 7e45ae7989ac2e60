/* internal.h: struct bodies shared by the core's own .c files and the dialects built on
 * it (server/dialect). Nothing in server/net includes this.
 *
 * Subscriptions form a two-way index: channel->members[i] names a session and the
 * position of the matching entry in that session's subs[], and session->subs[j] names
 * the channel and the position in its members[]. Removing a subscription is O(1) on
 * both sides (swap with the last entry and fix the moved entry's back index).
 *
 * A subscription starts catching up (two-phase subscribe, docs/architecture.md): the
 * session is in the channel's fan-out at once, but what the fan-out brings it is kept
 * by its pending subscribe operation until the engine's history answer arrives; then
 * the dialect replies and replays, and the kept frames newer than the answered position
 * follow. */
#ifndef SWITCHBOARD_CORE_INTERNAL_H
#define SWITCHBOARD_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bucket.h"
#include "core_config.h"
#include "dialect.h"
#include "engine.h"
#include "hub.h"
#include "pending.h"
#include "policy.h"
#include "session.h"

struct frame;
struct map;

struct member {
	struct session *s;
	uint32_t sub_idx; /* index in s->subs */
	bool catching_up; /* subscribed, waiting for the engine's history answer */
	uint8_t dialect;  /* s->dialect->index, read by the fan-out */
};

struct channel {
	char *name; /* owned */
	size_t name_len;
	uint64_t serial; /* unique per hub: tells a reopened channel from the old */
	const struct ns_policy *ns;
	struct member *members;
	uint32_t nmembers, cap;
	bool live;		  /* the engine confirmed the subscription (deliveries flow) */
	int engine_rc;		  /* the engine refused the subscription: a negative errno */
	struct pending *catchups; /* subscribe operations catching up here (linked by next) */
};

struct subref {
	struct channel *ch;
	uint32_t member_idx;	 /* index in ch->members */
	struct pending *catchup; /* its subscribe operation while catching up, else NULL */
};

struct session {
	const struct session_ops *ops;
	const struct dialect *dialect;
	void *conn;
	struct hub_stats *stats; /* the hub's counters */
	uint64_t serial;	 /* unique per hub: how pending operations name it */
	bool connected;
	bool kicked;
	char client[40]; /* "<node>-<serial>" */
	char *user;	 /* owned, after connect */
	char *info;	 /* owned: JSON object text for presence, or NULL */
	size_t info_len;
	char *from; /* owned: encoded "from" object, after connect */
	size_t from_len;
	char *url_token;	/* owned: ?token= of the upgrade request, or NULL */
	bool has_token;		/* connected with a verified token */
	int64_t exp;		/* the token's exp (Unix s), 0: none */
	json_t *grant_channels; /* the token's "channels" patterns (array), or NULL */
	json_t *grant_publish;	/* the token's "publish" patterns (array), or NULL */

	struct subref *subs;
	uint32_t nsubs, capsubs;

	/* Ring of queued frames: q[(qhead + i) & (qcap - 1)], i < qlen; qcap a power of 2. */
	struct frame **q;
	size_t qhead, qlen, qcap;
	size_t qbytes; /* wire bytes queued */
	size_t qmax_len, qmax_bytes;

	/* Rate limits (limits.client_commands, limits.client_publish) and the refusals
	 * counted since the last accepted command: past a bound the client is closed. */
	struct bucket cmd_bucket, pub_bucket;
	unsigned refusals;

	/* Sessions that have not connected yet, oldest first (connect timeout). */
	struct session *pend_prev, *pend_next;
	uint64_t opened_ms;
};

struct hub {
	struct core_config cfg;	       /* copied; cfg.policy and cfg.engine are borrowed */
	struct engine *engine;	       /* owned */
	struct map *channels;	       /* name -> struct channel (owned) */
	struct map *sessions;	       /* client id -> struct session (borrowed), after connect */
	struct map *serials;	       /* serial (8 bytes) -> struct session (borrowed), all */
	struct pending_table *pending; /* operations waiting for the engine (owned) */
	size_t nsessions;	       /* open sessions, connected or not */
	uint64_t next_serial;
	uint64_t next_channel; /* channel serials */
	char node[16];	       /* client id prefix */
	char server[32];       /* "switchboard/<version>" */
	struct session *pend_head, *pend_tail;
	struct hub_auth auth;	  /* token verification and wall clock, or zeroed */
	struct hub_events events; /* webhook events, or zeroed */
	uint64_t now_ms;	  /* monotonic time of the event being handled */
	int64_t now_unix;	  /* wall clock at the last tick */
	struct hub_stats stats;
	struct replay_cache *replay; /* frames of replayed messages (owned) */
};

/* ---- replay.c: frames of replayed messages, shared for a moment ---- */

struct replay_cache *replay_cache_new(const uint8_t seed[16]);
void replay_cache_free(struct replay_cache *c); /* NULL-safe */
/* Drops every entry (hub_tick does, once a second). */
void replay_cache_clear(struct replay_cache *c);
/* The frame of msg in dialect d for a replay or a release of kept messages: a
 * reference the caller releases. The same frame for every session of d that replays msg
 * until the cache is cleared; encoded (and counted in stats.replay_encoded) otherwise. */
struct frame *replay_frame(struct hub *hub, const struct dialect *d, struct message *msg);

/* ---- session.c ---- */

/* Queues one reference to f; wakes the transport when the queue was empty. When the
 * queue would pass its bound the session is kicked with 4008 instead. Returns whether
 * f was queued (not for a kicked session). */
bool session_enqueue(struct session *s, struct frame *f);
/* Queues f (taking its reference, NULL-safe: protocol/ reports out of memory as NULL
 * and the server aborts then). */
bool session_send(struct session *s, struct frame *f);
/* True if frames more frames of bytes wire bytes fit in the queue's bounds now. */
bool session_has_room(const struct session *s, size_t frames, size_t bytes);
/* Kicks once; later calls do nothing. */
void session_kick(struct session *s, int code, const char *reason);
/* Drops every queued frame. */
void session_queue_clear(struct session *s);
/* Sends an error frame in the session's dialect and counts it. */
void session_send_error(struct session *s, const json_t *id, enum proto_errcode code,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- channel.c: the registry and the subscription index ---- */

struct channel *channel_find(struct hub *hub, const char *name, size_t len);
/* The channel, opened (and subscribed at the engine) when it has no local subscriber. */
struct channel *channel_open(struct hub *hub, const char *name, size_t len,
			     const struct ns_policy *ns);
/* Frees ch if it has no member any more (unsubscribing at the engine). */
void channel_close_if_empty(struct hub *hub, struct channel *ch);
/* s's index in ch (its subs[] position), or -1. */
int sub_index(const struct session *s, const struct channel *ch);
/* Adds s to ch's fan-out, catching up or live; returns its subs[] index. */
uint32_t sub_add(struct session *s, struct channel *ch, bool catching_up);
/* Removes subscription j of s from both sides (the caller closes the channel). */
void sub_remove(struct session *s, uint32_t j);
/* The member entry of subscription j of s. */
struct member *sub_member(struct session *s, uint32_t j);

/* ---- hub.c: operations the dialects start ---- */

/* s connected (its identity is set): it leaves the connect-timeout list, gets its
 * encoded "from" and can be found by client id. */
void hub_session_identified(struct hub *hub, struct session *s);
/* The session with this serial, or NULL when it has gone. */
struct session *hub_session_find(struct hub *hub, uint64_t serial);
/* A new operation of kind for s (NULL: the server side), echoing id (a new reference is
 * taken), about channel; NULL after refusing it with unavailable (too many in flight). */
struct pending *hub_op_new(struct hub *hub, enum pending_kind kind, struct session *s,
			   const json_t *id, const char *channel, size_t len);
/* Finishes op: releases it and its kept frames. */
void hub_op_done(struct hub *hub, struct pending *op);
/* The engine completion that routes to op's session and dialect (dialect->complete). */
void hub_op_complete(void *arg, int rc, const void *result);

/* Subscribes s to channel (len bytes) under ns: two-phase, the dialect's complete()
 * gets PENDING_SUBSCRIBE with the struct engine_history answer (or an error, after which
 * the subscription is gone). req is copied. */
void hub_subscribe(struct hub *hub, struct session *s, const json_t *id, const char *channel,
		   size_t len, const struct ns_policy *ns, const struct engine_history_query *req);
/* Leaves subscription j: the fan-out index first, then presence, whose leave event
 * reaches the remaining subscribers; the channel may be freed. */
void hub_leave(struct hub *hub, struct session *s, uint32_t j);
/* Queues the messages msgs[0..n) to s, encoded in its dialect (a replay); counts them. */
void hub_replay(struct hub *hub, struct session *s, struct message *const *msgs, size_t n);

/* ---- backend.c ---- */

/* The engine's answer to a PENDING_BACKEND operation; finishes op when it is complete. */
void backend_complete(struct hub *hub, struct pending *op, int rc, const void *result);

/* ---- events.c: webhook events ---- */

void events_client(struct hub *hub, const char *name, const struct session *s, const char *channel,
		   size_t len);
void events_channel(struct hub *hub, const char *name, const char *channel, size_t len);
void events_message(struct hub *hub, const struct message *m);

#endif
