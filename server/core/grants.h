/* grants.h: who may do what. Tokens (through the hub's verifier), a connection's claims,
 * channel tokens and namespace rules become a decision: 0, or -1 with the refusal in a
 * struct grant {code, text} for the dialect to send in its own words. Nothing here sends
 * or queues anything. */
#ifndef SWITCHBOARD_GRANTS_H
#define SWITCHBOARD_GRANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto.h"

struct hub;
struct ns_policy;
struct session;

/* A refusal: the protocol's error code and a sentence that tells the client what to do. */
struct grant {
	enum proto_errcode code;
	char text[192];
};

/* Verifies token (len bytes). Returns its claims (new reference), or NULL with g set
 * (unauthorized). */
json_t *grants_verify(struct hub *hub, const char *token, size_t len, struct grant *g);

/* Takes the identity (sub, info) and grants (channels, publish, exp) of verified
 * connection claims into s. Returns 0, or -1 with g set and s unchanged. */
int grants_adopt(struct session *s, json_t *claims, struct grant *g);

/* The "sub" claim if it is a usable user id (borrowed from claims), else NULL. */
const char *grants_claim_sub(json_t *claims);

/* The namespace rules for channel, or NULL with g set (forbidden). */
const struct ns_policy *grants_policy(struct hub *hub, const char *channel, size_t len,
				      struct grant *g);

/* May s read channel (subscribe, presence, history) under ns? token is a channel token
 * (subscribe only, NULL: none); a subscription already held counts as a grant. Returns
 * 0, or -1 with g set. */
int grants_read(struct hub *hub, struct session *s, const char *channel, size_t len,
		const struct ns_policy *ns, const char *token, size_t token_len, bool subscribing,
		struct grant *g);

/* May s publish to channel under ns? Returns 0, or -1 with g set. */
int grants_publish(struct hub *hub, struct session *s, const char *channel, size_t len,
		   const struct ns_policy *ns, struct grant *g);

#endif
