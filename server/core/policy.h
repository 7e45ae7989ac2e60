/* policy.h: per-namespace rules. A channel's namespace is the part of its name before
 * the first ':'; unknown namespaces use the default namespace, or are refused when there
 * is none. For now a namespace decides who may publish. */
#ifndef SWITCHBOARD_POLICY_H
#define SWITCHBOARD_POLICY_H

#include <stddef.h>

enum policy_publish {
	POLICY_PUBLISH_SUBSCRIBERS = 0,  /* only subscribers of the channel */
	POLICY_PUBLISH_CLIENTS,          /* any connected client */
	POLICY_PUBLISH_NONE,             /* no client: only the server side */
};

struct ns_policy {
	char *name;                      /* "" for the default namespace */
	enum policy_publish publish;
};

struct policy;

struct policy *policy_new(void);     /* with the built-in default namespace */
void policy_free(struct policy *p);

/* Adds or replaces a namespace; returns the entry to fill (borrowed). */
struct ns_policy *policy_set_namespace(struct policy *p, const char *name);
/* The default namespace entry, creating it when absent (borrowed). */
struct ns_policy *policy_set_default(struct policy *p);
/* Removes the default namespace: unknown namespaces are refused. */
void policy_clear_default(struct policy *p);

/* The rules for a channel name (len bytes), or NULL if its namespace is refused. */
const struct ns_policy *policy_for_channel(const struct policy *p, const char *name, size_t len);

int policy_publish_parse(const char *s, enum policy_publish *out);
const char *policy_publish_name(enum policy_publish v);

#endif
