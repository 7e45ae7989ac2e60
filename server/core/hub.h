/* hub.h: one loop's pub/sub core: sessions, channels and the fan-out. Dialects
 * (dialect.h) turn each session's text messages into core operations; the hub fans every
 * message the engine delivers out to the local subscribers of its channel: the message
 * is encoded once per dialect into one frame whose references go to every subscriber's
 * queue of that dialect.
 *
 * The hub owns its channels, its engine and the operations waiting for the engine
 * (pending.h); sessions are owned by the transport (see session.h). Time is passed in,
 * never read. The server side (HTTP API) is in backend.h. */
#ifndef SWITCHBOARD_HUB_H
#define SWITCHBOARD_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "core_config.h"
#include "engine.h"
#include "proto.h"
#include "session.h"

#include <jansson.h>

struct dialect;
struct hub;

/* Token verification and wall-clock time, provided by the caller (the core has no crypto
 * and never reads the clock). */
struct hub_auth {
	/* Verifies token (len bytes). Returns 0 with *claims a new reference to the claims
	 * object, or -1 with a sentence for the client in msg (at most 128 bytes). */
	int (*verify)(void *arg, const char *token, size_t len, json_t **claims, char *msg,
		      size_t msglen);
	int64_t (*now)(void *arg); /* Unix seconds */
	void *arg;
};

/* A new hub serving cfg (copied; cfg->policy and cfg->engine are borrowed and must
 * outlive the hub), with the engine named by cfg->engine, which the hub owns. seed (16
 * random bytes from the caller) keys hashing and makes client ids and epochs unique
 * across restarts. NULL for an unknown engine. */
struct hub *hub_new(const struct core_config *cfg, const uint8_t seed[16]);
/* Same with the engine made by make (tests: the fake engine). */
struct hub *hub_new_with_engine(const struct core_config *cfg, const uint8_t seed[16],
				engine_factory_fn make);
/* Every session must be closed first. Operations still in flight are cancelled:
 * server-side callers that have not cancelled theirs get -ECANCELED. */
void hub_free(struct hub *hub);

/* Webhook events (docs/http-api.md, Webhooks): the hub calls emit with a new JSON object
 * {"name":..., "time_ms":..., and the event's members}; emit takes the reference. */
struct hub_events {
	void (*emit)(void *arg, json_t *event);
	void *arg;
};
void hub_set_events(struct hub *hub, const struct hub_events *ev);

/* Enables tokens (auth is copied). Without it every token is refused. */
void hub_set_auth(struct hub *hub, const struct hub_auth *auth);

/* A new session speaking dialect d (borrowed, static) for a transport connection `conn`
 * (passed back to ops). */
struct session *hub_session_open(struct hub *hub, const struct dialect *d,
				 const struct session_ops *ops, void *conn, uint64_t now_ms);
/* Leaves every channel and frees the session and its queue; its operations still in
 * flight answer nobody. */
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

/* Counters for GET /metrics (all since the hub started, except those marked "now"). */
struct hub_stats {
	uint64_t commands[PROTO_KIND_COUNT]; /* by type; [PROTO_KIND_NONE]: undecodable */
	uint64_t errors[PROTO_ERR_COUNT];    /* error frames sent, by code */
	uint64_t published_client;	     /* messages published by clients */
	uint64_t published_server;	     /* ... through the HTTP API */
	uint64_t delivered;		     /* message frames queued to subscribers */
	uint64_t replayed;		     /* ... of them by recover/rewind */
	uint64_t replay_encoded;	     /* frames encoded for replays (the rest shared) */
	uint64_t join_leave;		     /* join/leave frames queued */
	uint64_t subscriptions;		     /* now */
};
const struct hub_stats *hub_stats(const struct hub *hub);

size_t hub_session_count(const struct hub *hub);
size_t hub_channel_count(const struct hub *hub);
/* Operations waiting for the engine (now). */
size_t hub_pending_count(const struct hub *hub);

#endif
