/* policy.c: namespace table. Few namespaces are configured, so a linear list will do;
 * the lookup runs once per subscribe/publish command, not per delivery. */
#include "policy.h"
#include "proto.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

struct policy {
	struct ns_policy *ns; /* configured namespaces */
	size_t n;
	struct ns_policy *def; /* default namespace, or NULL: refuse unknown namespaces */
};

static const char *const publish_names[] = {
	[POLICY_PUBLISH_SUBSCRIBERS] = "subscribers",
	[POLICY_PUBLISH_CLIENTS] = "clients",
	[POLICY_PUBLISH_NONE] = "none",
};

struct policy *
policy_new(void)
{
	struct policy *p = xcalloc(1, sizeof(*p));

	policy_set_default(p);
	return p;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->ns[i].name);
	free(p->ns);
	policy_clear_default(p);
	free(p);
}

static void
ns_defaults(struct ns_policy *ns, const char *name)
{
	*ns = (struct ns_policy){
		.name = xstrdup(name),
		.publish = POLICY_PUBLISH_SUBSCRIBERS,
		.allow_anonymous = true,
	};
}

struct ns_policy *
policy_set_namespace(struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->ns[i].name, name) == 0) {
			free(p->ns[i].name);
			ns_defaults(&p->ns[i], name);
			return &p->ns[i];
		}
	}
	p->ns = xrealloc(p->ns, (p->n + 1) * sizeof(*p->ns));
	ns_defaults(&p->ns[p->n], name);
	return &p->ns[p->n++];
}

struct ns_policy *
policy_set_default(struct policy *p)
{
	if (p->def == NULL) {
		p->def = xcalloc(1, sizeof(*p->def));
		ns_defaults(p->def, "");
		p->def->presence = true;
		p->def->join_leave = true;
		p->def->history_size = 100;
		p->def->history_ttl = 3600;
	}
	return p->def;
}

struct ns_policy *
policy_reset_default(struct policy *p)
{
	policy_clear_default(p);
	p->def = xcalloc(1, sizeof(*p->def));
	ns_defaults(p->def, "");
	return p->def;
}

void
policy_clear_default(struct policy *p)
{
	if (p->def != NULL) {
		free(p->def->name);
		free(p->def);
		p->def = NULL;
	}
}

const struct ns_policy *
policy_for_channel(const struct policy *p, const char *name, size_t len)
{
	size_t nslen = proto_channel_ns_len(name, len);

	if (nslen > 0) {
		for (size_t i = 0; i < p->n; i++)
			if (strlen(p->ns[i].name) == nslen &&
			    memcmp(p->ns[i].name, name, nslen) == 0)
				return &p->ns[i];
	}
	return p->def;
}

size_t
policy_count(const struct policy *p)
{
	return p->n;
}

const struct ns_policy *
policy_at(const struct policy *p, size_t i)
{
	return &p->ns[i];
}

const struct ns_policy *
policy_default(const struct policy *p)
{
	return p->def;
}

int
policy_publish_parse(const char *s, enum policy_publish *out)
{
	for (size_t i = 0; i < sizeof(publish_names) / sizeof(publish_names[0]); i++) {
		if (strcmp(s, publish_names[i]) == 0) {
			*out = (enum policy_publish)i;
			return 0;
		}
	}
	return -1;
}

const char *
policy_publish_name(enum policy_publish v)
{
	return publish_names[v];
}
