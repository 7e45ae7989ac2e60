/* hub.h: the channel registry and the command dispatcher. It turns decoded client
 * commands into replies, subscriptions and publishes, and fans every message the
 * engine delivers out to the local subscribers of its channel: the message is encoded
 * once into one frame whose references go to every subscriber's queue.
 *
 * The hub owns its channels and borrows the engine; sessions are owned by the transport
 * (see session.h). Time is passed in, never read. */
#ifndef SWITCHBOARD_HUB_H
#define SWITCHBOARD_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "session.h"

#include <jansson.h>

struct config;
struct hub;

/* Token verification and wall-clock time, provided by the caller (the core has no crypto
 * and never reads the clock). */
struct hub_auth {
	/* Verifies token (len bytes). Returns 0 with *claims a new reference to the claims
	 * object, or -1 with a sentence for the client in msg. */
	int (*verify)(void *arg, const char *token, size_t len, json_t **claims, char *msg,
		      size_t msglen);
	int64_t (*now)(void *arg);   /* Unix seconds */
	void *arg;
};

/* A new hub serving cfg (borrowed: it must outlive the hub), with the engine named by
 * cfg->engine, which the hub owns. seed (16 random bytes from the caller) keys hashing
 * and makes client ids and epochs unique across restarts. NULL for an unknown engine. */
struct hub *hub_new(const struct config *cfg, const uint8_t seed[16]);
void hub_free(struct hub *hub);              /* every session must be closed first */

/* Webhook events (docs/http-api.md, Webhooks): the hub calls emit with a new JSON object
 * {"name":..., "time_ms":..., and the event's members}; emit takes the reference. */
struct hub_events {
	void (*emit)(void *arg, json_t *event);
	void *arg;
};
void hub_set_events(struct hub *hub, const struct hub_events *ev);

/* Enables tokens (auth is copied). Without it every token is refused. */
void hub_set_auth(struct hub *hub, const struct hub_auth *auth);

/* A new session for a transport connection `conn` (passed back to ops). */
struct session *hub_session_open(struct hub *hub, const struct session_ops *ops, void *conn,
				 uint64_t now_ms);
/* Leaves every channel and frees the session and its queue. */
void hub_session_close(struct hub *hub, struct session *s);

/* Handles one complete text message from the client at time now_ms. May queue replies,
 * wake or kick sessions (this one or others); never frees a session. */
void hub_session_receive(struct hub *hub, struct session *s, const char *buf, size_t len,
			 uint64_t now_ms);

/* The token given in the upgrade URL (?token=), used by a connect without one (copied). */
void hub_session_set_url_token(struct session *s, const char *token, size_t len);

/* Periodic work: kicks sessions that did not connect within the timeout, closes those
 * whose token expired (4001), expires retained messages. */
void hub_tick(struct hub *hub, uint64_t now_ms);

/* Kicks every session with 1001 "server shutdown". */
void hub_shutdown(struct hub *hub);
/* A graceful drain's step: kicks up to n sessions not kicked yet with 4012 "server
 * restart", those that have not connected first. Returns how many it kicked. */
size_t hub_drain(struct hub *hub, size_t n);

/* ---- The server side (HTTP API): no session; the caller has checked the API key. ----
 * The *_json functions return a new malloc'd JSON object text (the response body), or
 * NULL with *rc = -ENOENT (the channel's namespace is refused), -EPERM (presence or
 * history is off in its namespace). */

/* Publishes data (the exact JSON text of a value) to channel as the server: the
 * namespace's publish rule does not apply. Returns 0 with *offset and epoch set,
 * -ENOENT (namespace refused) or -EMSGSIZE (over limits.max_data_size). */
int hub_server_publish(struct hub *hub, const char *channel, size_t len, const char *data,
		       size_t data_len, uint64_t now_ms, uint64_t *offset, char epoch[17]);
/* {"channels":[{"channel","subscribers"}...]} of this node, sorted, name starting with
 * prefix (plen bytes; 0: all): at most HUB_LIST_MAX, then "truncated":true. */
#define HUB_LIST_MAX 10000
char *hub_channels_json(struct hub *hub, const char *prefix, size_t plen);
char *hub_channel_json(struct hub *hub, const char *channel, size_t len, uint64_t now_ms, int *rc);
char *hub_presence_json(struct hub *hub, const char *channel, size_t len, int *rc);
/* limit 0: all retained; since_epoch NULL: no since. At most budget bytes of messages. */
char *hub_history_json(struct hub *hub, const char *channel, size_t len, uint64_t limit,
		       const char *since_epoch, uint64_t since_offset, size_t budget,
		       uint64_t now_ms, int *rc);
/* Drops the channel's history: {"channel","offset":0,"epoch":<new>}. */
char *hub_reset_json(struct hub *hub, const char *channel, size_t len, int *rc);
/* Closes (4003) the connection with this client id, or every connection of user;
 * returns how many. */
size_t hub_disconnect_client(struct hub *hub, const char *client, size_t len);
size_t hub_disconnect_user(struct hub *hub, const char *user, size_t len);
/* Every connection of user leaves channel and is told so; returns how many. */
size_t hub_unsubscribe_user(struct hub *hub, const char *user, size_t len, const char *channel,
			    size_t clen);

/* Counters for GET /metrics (all since the hub started, except those marked "now"). */
struct hub_stats {
	uint64_t commands[PROTO_KIND_COUNT];   /* by type; [PROTO_KIND_NONE]: undecodable */
	uint64_t errors[PROTO_ERR_COUNT];      /* error frames sent, by code */
	uint64_t published_client;             /* messages published by clients */
	uint64_t published_server;             /* ... through the HTTP API */
	uint64_t delivered;                    /* message frames queued to subscribers */
	uint64_t replayed;                     /* ... of them by recover/rewind */
	uint64_t join_leave;                   /* join/leave frames queued */
	uint64_t subscriptions;                /* now */
};
const struct hub_stats *hub_stats(const struct hub *hub);

size_t hub_session_count(const struct hub *hub);
size_t hub_channel_count(const struct hub *hub);

#endif
