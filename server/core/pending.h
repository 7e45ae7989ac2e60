/* pending.h: operations waiting for the engine, in one table keyed by cookie.
 *
 * Each engine call the hub makes is one operation: what it is (kind), whom it answers
 * (the session's serial and the command's id, or a server-side caller), and about which
 * channel. The engine's completion gets the operation as its arg; the hub then looks the
 * session up by serial, so a session that closed meanwhile is simply not found and the
 * answer is dropped. A server-side caller (the HTTP API) holds the cookie instead of a
 * pointer and may cancel: the completion then runs and answers nobody.
 *
 * The table is bounded (PENDING_MAX, checked by hub_op_new()): past it, new operations
 * of sessions and of the server side are refused with unavailable rather than queued
 * without limit. */
#ifndef SWITCHBOARD_PENDING_H
#define SWITCHBOARD_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "engine.h"

#define PENDING_MAX 65536

enum pending_kind {
	PENDING_CHANNEL,   /* engine subscribe of a channel that got its first member */
	PENDING_SUBSCRIBE, /* a session's history answer (two-phase subscribe) */
	PENDING_PUBLISH,
	PENDING_HISTORY,
	PENDING_PRESENCE,
	PENDING_PRESENCE_STATS,
	PENDING_BACKEND, /* a server-side operation (backend.c) */
};

struct frame;
struct message;
struct hub;

/* A frame or message kept for a catching-up subscriber, oldest first. */
struct pending_kept {
	struct message *msg; /* a message (one reference), or NULL */
	struct frame *f;     /* another frame for the channel (one reference), or NULL */
	bool reset;	     /* f is a reset to epoch */
	char epoch[ENGINE_EPOCH_LEN + 1];
	struct pending_kept *next;
};

struct pending {
	uint64_t cookie; /* unique per table, never 0 */
	enum pending_kind kind;
	struct hub *hub;	       /* whose operation it is */
	uint64_t session;	       /* serial of the session it answers; 0: none */
	const struct dialect *dialect; /* whose complete() answers it (session ops) */
	json_t *id;		       /* the command's id (own reference), or NULL */
	char *channel;		       /* owned copy, NUL-terminated */
	size_t channel_len;
	uint64_t channel_serial; /* PENDING_CHANNEL, PENDING_SUBSCRIBE: which channel */

	/* PENDING_SUBSCRIBE */
	struct engine_history_query q; /* q.since_epoch points at since_epoch */
	char since_epoch[ENGINE_EPOCH_LEN + 1];
	bool requested; /* the history call was made */
	bool cancelled; /* the subscription went before the answer */
	struct pending_kept *kept, *kept_tail;
	size_t nkept, kept_bytes;
	struct pending *next, *prev; /* in its channel's catchups list */

	/* PENDING_BACKEND (backend.c) */
	int step;    /* which engine call of the operation is in flight */
	void *state; /* the operation's own state (owned by backend.c) */
};

struct pending_table;

struct pending_table *pending_table_new(const uint8_t seed[16]);
/* Frees the table and every operation still in it (the engine completed or cancelled
 * them first). */
void pending_table_free(struct pending_table *t);
/* A new zeroed operation of kind with a fresh cookie (the caller checks the bound). */
struct pending *pending_add(struct pending_table *t, enum pending_kind kind);
/* The operation with this cookie (borrowed), or NULL. */
struct pending *pending_find(struct pending_table *t, uint64_t cookie);
/* Removes and frees op, its id, channel copy and kept frames (not op->state). */
void pending_remove(struct pending_table *t, struct pending *op);
size_t pending_count(const struct pending_table *t);
/* Copies a client's since epoch into op->since_epoch and points op->q.since_epoch at
 * it. One longer than any epoch becomes "-", which matches none (never a prefix). */
void pending_set_since(struct pending *op, const char *epoch);
/* Releases everything op kept. */
void pending_drop_kept(struct pending *op);
/* Keeps msg or f (a new reference is taken) at the end of op's kept list; reset_epoch
 * (not NULL) says f is a reset to that epoch. */
void pending_keep(struct pending *op, struct message *msg, struct frame *f, size_t bytes,
		  const char *reset_epoch);

#endif
