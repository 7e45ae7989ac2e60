/* internal.h: struct bodies shared by the core's own .c files (hub.c, session.c).
 * Nothing outside server/core includes this.
 *
 * Subscriptions form a two-way index: channel->members[i] names a session and the
 * position of the matching entry in that session's subs[], and session->subs[j] names
 * the channel and the position in its members[]. Removing a subscription is O(1) on
 * both sides (swap with the last entry and fix the moved entry's back index). */
#ifndef SWITCHBOARD_CORE_INTERNAL_H
#define SWITCHBOARD_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bucket.h"
#include "policy.h"
#include "session.h"

struct member {
	struct session *s;
	uint32_t sub_idx;          /* index in s->subs */
};

struct channel {
	char *name;                /* owned */
	size_t name_len;
	const struct ns_policy *ns;
	struct member *members;
	uint32_t nmembers, cap;
};

struct subref {
	struct channel *ch;
	uint32_t member_idx;       /* index in ch->members */
};

struct session {
	const struct session_ops *ops;
	void *conn;
	struct hub_stats *stats;   /* the hub's counters */
	uint64_t serial;           /* unique per hub; the publish cookie */
	bool connected;
	bool kicked;
	char client[40];           /* "<node>-<serial>" */
	char *user;                /* owned, after connect */
	char *info;                /* owned: JSON object text for presence, or NULL */
	size_t info_len;
	char *from;                /* owned: encoded "from" object, after connect */
	size_t from_len;
	char *url_token;           /* owned: ?token= of the upgrade request, or NULL */
	bool has_token;            /* connected with a verified token */
	int64_t exp;               /* the token's exp (Unix s), 0: none */
	json_t *grant_channels;    /* the token's "channels" patterns (array), or NULL */
	json_t *grant_publish;     /* the token's "publish" patterns (array), or NULL */

	struct subref *subs;
	uint32_t nsubs, capsubs;

	/* Ring of queued frames: q[(qhead + i) & (qcap - 1)], i < qlen; qcap a power of 2. */
	struct frame **q;
	size_t qhead, qlen, qcap;
	size_t qbytes;             /* wire bytes queued */
	size_t qmax_len, qmax_bytes;

	/* Rate limits (limits.client_commands, limits.client_publish) and the refusals
	 * counted since the last accepted command: past a bound the client is closed. */
	struct bucket cmd_bucket, pub_bucket;
	unsigned refusals;

	/* Sessions that have not connected yet, oldest first (connect timeout). */
	struct session *pend_prev, *pend_next;
	uint64_t opened_ms;
};

/* Queues one reference to f; wakes the transport when the queue was empty. When the
 * queue would pass its bound the session is kicked with 4008 instead. Returns whether
 * f was queued (not for a kicked session). */
bool session_enqueue(struct session *s, struct frame *f);
/* True if frames more frames of bytes wire bytes fit in the queue's bounds now. */
bool session_has_room(const struct session *s, size_t frames, size_t bytes);
/* Kicks once; later calls do nothing. */
void session_kick(struct session *s, int code, const char *reason);
/* Drops every queued frame. */
void session_queue_clear(struct session *s);

#endif
