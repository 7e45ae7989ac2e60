/* policy.h: per-namespace rules. A channel's namespace is the part of its name before
 * the first ':'; unknown namespaces use the default namespace, or are refused when there
 * is none. A namespace decides who may publish, whether subscribing needs a token grant,
 * presence and join/leave events, and how much history its channels keep. */
#ifndef SWITCHBOARD_POLICY_H
#define SWITCHBOARD_POLICY_H

#include <stdbool.h>
#include <stddef.h>

enum policy_publish {
	POLICY_PUBLISH_SUBSCRIBERS = 0, /* only subscribers of the channel */
	POLICY_PUBLISH_CLIENTS,		/* any connected client */
	POLICY_PUBLISH_NONE,		/* no client: only the server side */
};

struct ns_policy {
	char *name; /* "" for the default namespace */
	enum policy_publish publish;
	bool private_ns;       /* subscribing needs a token grant */
	bool presence;	       /* presence and presence_stats answer */
	bool join_leave;       /* subscribers get join/leave events */
	bool allow_anonymous;  /* clients without a token may subscribe/publish */
	unsigned history_size; /* messages kept per channel; 0: no history */
	unsigned history_ttl;  /* seconds a message is kept; 0: until evicted */
	bool message_events;   /* webhooks receive message_published */
};

struct policy;

struct policy *policy_new(void); /* with the built-in default namespace */
void policy_free(struct policy *p);

/* Adds or replaces a namespace with the defaults of a configured namespace (publish
 * subscribers, no presence, no history, public, anonymous allowed); returns the entry
 * to fill (borrowed). */
struct ns_policy *policy_set_namespace(struct policy *p, const char *name);
/* The default namespace entry, creating it when absent with the built-in defaults
 * (presence, join/leave, 100 messages of history for 3600 s) (borrowed). */
struct ns_policy *policy_set_default(struct policy *p);
/* Replaces the default namespace by one with the defaults of a configured namespace
 * (for a "default_namespace" object in the configuration) (borrowed). */
struct ns_policy *policy_reset_default(struct policy *p);
/* Removes the default namespace: unknown namespaces are refused. */
void policy_clear_default(struct policy *p);

/* The rules for a channel name (len bytes), or NULL if its namespace is refused. */
const struct ns_policy *policy_for_channel(const struct policy *p, const char *name, size_t len);

/* The configured namespaces in configuration order (i < policy_count()), and the default
 * namespace or NULL (borrowed). */
size_t policy_count(const struct policy *p);
const struct ns_policy *policy_at(const struct policy *p, size_t i);
const struct ns_policy *policy_default(const struct policy *p);

int policy_publish_parse(const char *s, enum policy_publish *out);
const char *policy_publish_name(enum policy_publish v);

#endif
