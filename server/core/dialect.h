/* dialect.h: a client protocol over the shared core. The native v1 protocol
 * (server/dialect/native.c, docs/protocol.md) is the first; a second one (Pusher) plugs
 * in beside it without a change to the core.
 *
 * A dialect turns a client's text messages into core operations (hub_subscribe(),
 * engine calls through hub_op_new(), grants), and the core's events into its own frames:
 * messages, join/leave, resets, errors and the answers of the operations it started.
 * Each encoding is a new frame reference. The fan-out encodes a message once per dialect
 * present among a channel's subscribers (index names its slot), and every subscriber of
 * that dialect gets a reference to the same frame. */
#ifndef SWITCHBOARD_DIALECT_H
#define SWITCHBOARD_DIALECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto.h"

struct engine_member;
struct frame;
struct hub;
struct message;
struct pending;
struct session;

#define DIALECT_MAX 4

struct dialect {
	const char *name;
	unsigned index; /* < DIALECT_MAX, unique among the dialects of a process */
	/* One complete text message from the client, at hub->now_ms. */
	void (*receive)(struct hub *hub, struct session *s, const char *buf, size_t len);
	/* A published message, as subscribers receive it (live and replayed). */
	struct frame *(*encode_message)(const struct message *m);
	/* member joined (join) or left channel. */
	struct frame *(*encode_join_leave)(const char *channel, size_t len, bool join,
					   const struct engine_member *m);
	/* channel's history was dropped: offsets go on after offset in epoch. */
	struct frame *(*encode_reset)(const char *channel, size_t len, uint64_t offset,
				      const char *epoch);
	/* The server ended s's subscription to channel (HTTP API). */
	struct frame *(*encode_unsubscribed)(const char *channel, size_t len);
	/* An error, answering id (NULL: none). */
	struct frame *(*encode_error)(const json_t *id, enum proto_errcode code, const char *text);
	/* The answer of an operation this dialect started for s (op->kind says which; rc 0
	 * or a negative errno; result as engine.h says, NULL when rc != 0). For
	 * PENDING_SUBSCRIBE with rc 0 it replies and replays; the core then releases what
	 * the fan-out kept meanwhile and makes s a live subscriber. A PENDING_SUBSCRIBE
	 * with op->cancelled set (rc -ECANCELED) ended before it completed (unsubscribed by
	 * the client or the HTTP API): the subscription is already gone. An engine's own
	 * -ECANCELED (it went away) is an engine failure like any other. */
	void (*complete)(struct hub *hub, struct session *s, struct pending *op, int rc,
			 const void *result);
};

/* The native v1 protocol (server/dialect/native.c). */
extern const struct dialect dialect_native;

#endif
