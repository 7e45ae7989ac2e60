/* grants.c: tokens, claims and namespace rules as decisions (grants.h). */
#include "grants.h"
#include "glob.h"
#include "internal.h"
#include "policy.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(struct grant *g, enum proto_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
refuse(struct grant *g, enum proto_errcode code, const char *fmt, ...)
{
	va_list ap;

	g->code = code;
	va_start(ap, fmt);
	vsnprintf(g->text, sizeof(g->text), fmt, ap);
	va_end(ap);
	return -1;
}

/* "namespace \"chat\"" or "the default namespace", as three %s arguments. */
#define NS_LABEL(ns)                                                                               \
	(ns)->name[0] ? "namespace \"" : "the default namespace", (ns)->name,                      \
		(ns)->name[0] ? "\"" : ""

static bool
patterns_match(const json_t *patterns, const char *name, size_t len)
{
	size_t i;
	json_t *p;

	json_array_foreach(patterns, i,
			   p) if (glob_match(json_string_value(p), name, len)) return true;
	return false;
}

/* A claims array of pattern strings, or NULL if absent; -1 when malformed. */
static int
claim_patterns(json_t *claims, const char *key, json_t **out)
{
	json_t *v = json_object_get(claims, key);
	size_t i;
	json_t *p;

	*out = NULL; /* also when -1 is returned */
	if (v == NULL)
		return 0;
	if (!json_is_array(v))
		return -1;
	json_array_foreach(v, i,
			   p) if (!json_is_string(p) ||
				  strlen(json_string_value(p)) != json_string_length(p)) return -1;
	*out = json_incref(v);
	return 0;
}

json_t *
grants_verify(struct hub *hub, const char *token, size_t len, struct grant *g)
{
	json_t *claims = NULL;

	/* The verifier's sentence fits 128 bytes (hub.h). */
	g->code = PROTO_ERR_UNAUTHORIZED;
	snprintf(g->text, sizeof(g->text), "tokens are not configured on this server (auth.jwt)");
	if (hub->auth.verify == NULL ||
	    hub->auth.verify(hub->auth.arg, token, len, &claims, g->text, 128) != 0)
		return NULL;
	return claims;
}

const char *
grants_claim_sub(json_t *claims)
{
	json_t *sub = json_object_get(claims, "sub");

	if (!json_is_string(sub) || json_string_length(sub) == 0 ||
	    json_string_length(sub) > PROTO_USER_MAX ||
	    strlen(json_string_value(sub)) != json_string_length(sub))
		return NULL;
	return json_string_value(sub);
}

/* The "exp" claim in Unix seconds, clamped to what int64_t holds; 0 when absent. */
static int64_t
claim_exp(json_t *claims)
{
	json_t *exp = json_object_get(claims, "exp");
	double v;

	if (json_is_integer(exp))
		return json_integer_value(exp) < 1		 ? 1
		       : json_integer_value(exp) > INT64_MAX / 2 ? INT64_MAX / 2
								 : json_integer_value(exp);
	if (!json_is_real(exp))
		return 0;
	v = json_real_value(exp);
	if (v >= 9.0e18)
		return INT64_MAX / 2;
	return v >= 1 ? (int64_t)v : 1;
}

int
grants_adopt(struct session *s, json_t *claims, struct grant *g)
{
	json_t *info = json_object_get(claims, "info"), *chans = NULL, *pubs = NULL;
	const char *sub = grants_claim_sub(claims);
	char *info_raw = NULL;

	if (sub == NULL)
		return refuse(g, PROTO_ERR_UNAUTHORIZED,
			      "the token has no usable \"sub\" (1-%d bytes of text)",
			      PROTO_USER_MAX);
	/* A channel token grants one channel to a connected user; it must not become an
	 * unrestricted connection token. */
	if (json_object_get(claims, "channel") != NULL)
		return refuse(
			g, PROTO_ERR_UNAUTHORIZED,
			"a channel token (with a \"channel\" claim) cannot identify a connection");
	if (claim_patterns(claims, "channels", &chans) != 0 ||
	    claim_patterns(claims, "publish", &pubs) != 0) {
		json_decref(chans); /* set when only "publish" was malformed */
		return refuse(
			g, PROTO_ERR_UNAUTHORIZED,
			"the token's \"channels\" and \"publish\" claims must be lists of strings");
	}
	if (info != NULL &&
	    (!json_is_object(info) || (info_raw = json_dumps(info, JSON_COMPACT)) == NULL ||
	     strlen(info_raw) > PROTO_INFO_MAX)) {
		free(info_raw);
		json_decref(chans);
		json_decref(pubs);
		return refuse(g, PROTO_ERR_UNAUTHORIZED,
			      "the token's \"info\" claim must be an object of at most %d bytes",
			      PROTO_INFO_MAX);
	}
	free(s->user);
	s->user = xstrdup(sub);
	free(s->info);
	s->info = info_raw;
	s->info_len = info_raw != NULL ? strlen(info_raw) : 0;
	json_decref(s->grant_channels);
	json_decref(s->grant_publish);
	s->grant_channels = chans;
	s->grant_publish = pubs;
	s->has_token = true;
	s->exp = claim_exp(claims);
	return 0;
}

const struct ns_policy *
grants_policy(struct hub *hub, const char *channel, size_t len, struct grant *g)
{
	const struct ns_policy *ns = policy_for_channel(hub->cfg.policy, channel, len);
	size_t nslen = proto_channel_ns_len(channel, len);

	if (ns == NULL)
		refuse(g, PROTO_ERR_FORBIDDEN,
		       "namespace \"%.*s\" is not configured and there is no default namespace",
		       (int)nslen, channel);
	return ns;
}

/* A channel token (subscribe "token"): claims sub = this user, channel = this channel,
 * and an exp. Returns 1 if it grants, 0 if absent, -1 with g set. */
static int
channel_token_grants(struct hub *hub, struct session *s, const char *channel, size_t len,
		     const char *token, size_t token_len, struct grant *g)
{
	json_t *claims, *chan;
	const char *sub;
	int rc = 1;

	if (token == NULL)
		return 0;
	/* Its sub is compared with the user; an anonymous user name proves nothing. */
	if (!s->has_token)
		return refuse(g, PROTO_ERR_FORBIDDEN,
			      "channel tokens need a connection identified by a token");
	claims = grants_verify(hub, token, token_len, g);
	if (claims == NULL)
		return -1;
	sub = grants_claim_sub(claims);
	chan = json_object_get(claims, "channel");
	if (sub == NULL || strcmp(sub, s->user) != 0 || !json_is_string(chan) ||
	    json_string_length(chan) != len || memcmp(json_string_value(chan), channel, len) != 0 ||
	    claim_exp(claims) == 0)
		rc = refuse(g, PROTO_ERR_FORBIDDEN,
			    "the channel token must carry sub (this user), channel (%.*s) and exp",
			    (int)len, channel);
	json_decref(claims);
	return rc;
}

int
grants_read(struct hub *hub, struct session *s, const char *channel, size_t len,
	    const struct ns_policy *ns, const char *token, size_t token_len, bool subscribing,
	    struct grant *g)
{
	struct channel *ch = channel_find(hub, channel, len);
	bool granted =
		(s->grant_channels != NULL && patterns_match(s->grant_channels, channel, len)) ||
		(ch != NULL && sub_index(s, ch) >= 0); /* admitted when it subscribed */
	int tok = 0;

	if (!s->has_token && !ns->allow_anonymous)
		return refuse(
			g, PROTO_ERR_FORBIDDEN,
			"%s%s%s does not allow clients without a token (allow_anonymous: false)",
			NS_LABEL(ns));
	if (subscribing && !granted) {
		tok = channel_token_grants(hub, s, channel, len, token, token_len, g);
		if (tok < 0)
			return -1;
	}
	if (granted || tok > 0)
		return 0;
	if (ns->private_ns)
		return refuse(g, PROTO_ERR_FORBIDDEN,
			      "%s%s%s is private: %.*s needs a token whose \"channels\" claim "
			      "matches it, or a channel token",
			      NS_LABEL(ns), (int)len, channel);
	if (s->grant_channels != NULL)
		return refuse(g, PROTO_ERR_FORBIDDEN,
			      "the token's \"channels\" claim does not match %.*s", (int)len,
			      channel);
	return 0;
}

int
grants_publish(struct hub *hub, struct session *s, const char *channel, size_t len,
	       const struct ns_policy *ns, struct grant *g)
{
	struct channel *ch;

	switch (ns->publish) {
	case POLICY_PUBLISH_NONE:
		return refuse(g, PROTO_ERR_FORBIDDEN,
			      "%s%s%s does not allow clients to publish (publish: none)",
			      NS_LABEL(ns));
	case POLICY_PUBLISH_SUBSCRIBERS:
		ch = channel_find(hub, channel, len);
		if (ch == NULL || sub_index(s, ch) < 0)
			return refuse(g, PROTO_ERR_FORBIDDEN,
				      "%s%s%s allows only subscribers to publish (publish: "
				      "subscribers); subscribe to %.*s first",
				      NS_LABEL(ns), (int)len, channel);
		break;
	case POLICY_PUBLISH_CLIENTS:
		break;
	}
	if (!s->has_token && !ns->allow_anonymous)
		return refuse(
			g, PROTO_ERR_FORBIDDEN,
			"%s%s%s does not allow clients without a token (allow_anonymous: false)",
			NS_LABEL(ns));
	if (ns->private_ns && ns->publish == POLICY_PUBLISH_CLIENTS &&
	    grants_read(hub, s, channel, len, ns, NULL, 0, false, g) != 0)
		return -1; /* a private channel is closed to writers without the grant too */
	if (s->grant_publish != NULL && !patterns_match(s->grant_publish, channel, len))
		return refuse(g, PROTO_ERR_FORBIDDEN,
			      "the token's \"publish\" claim does not match %.*s", (int)len,
			      channel);
	return 0;
}
