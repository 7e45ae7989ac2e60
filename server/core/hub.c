/* hub.c: channels, subscriptions, command dispatch and fan-out.
 *
 * Ownership: the hub owns its channels and its engine; a channel exists while it has
 * at least one local subscriber and is freed when the last one leaves. Sessions belong
 * to the transport. A published message is encoded once, in on_deliver(), into one
 * frame; every subscriber's queue takes a reference and the hub drops its own at the
 * end (the guard reference of STYLE §4).
 */
#include "hub.h"
#include "config.h"
#include "engine.h"
#include "frame.h"
#include "internal.h"
#include "log.h"
#include "glob.h"
#include "map.h"
#include "proto.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hub {
	const struct config *cfg;
	struct engine *engine;     /* owned */
	struct map *channels;      /* name -> struct channel (owned) */
	struct map *sessions;      /* client id -> struct session (borrowed), after connect */
	size_t nsessions;          /* open sessions, connected or not */
	uint64_t next_serial;
	char node[16];             /* client id prefix */
	char server[32];           /* "switchboard/<version>" */
	struct session *pend_head, *pend_tail;
	/* The id of the publish command being handled, echoed by its completion. The memory
	 * engine completes inside engine_publish(); an engine that completes later will
	 * keep the ids of its outstanding publishes itself, keyed by the cookie. */
	const json_t *publish_id;
	struct hub_auth auth;      /* token verification and wall clock, or zeroed */
	struct hub_events events;  /* webhook events, or zeroed */
	uint64_t now_ms;           /* monotonic time of the event being handled */
	int server_rc;             /* result of the last server-side publish */
	uint64_t server_offset;
	char server_epoch[ENGINE_EPOCH_LEN + 1];
	int64_t now_unix;          /* wall clock at the last tick */
	struct hub_stats stats;
};

/* ---- replies ---- */

/* Queues an encoded reply (takes ownership of buf) to s alone. The length comes by
 * pointer because it is written by the encoder call in the same argument list. */
static bool
send_owned(struct session *s, char *buf, const size_t *lenp)
{
	struct frame *f;
	bool queued;

	/* protocol/ reports OOM instead of aborting; the server aborts like xmalloc. */
	xcheck(buf);
	f = frame_new_text(buf, *lenp);
	free(buf);
	queued = session_enqueue(s, f);
	frame_unref(f);
	return queued;
}

static void
send_error(struct session *s, const json_t *id, enum proto_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
send_error(struct session *s, const json_t *id, enum proto_errcode code, const char *fmt, ...)
{
	char msg[192];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (send_owned(s, proto_encode_error(id, code, msg, &len), &len) &&
	    (size_t)code < PROTO_ERR_COUNT)
		s->stats->errors[code]++;
}

/* ---- webhook events ---- */

/* Emits {"name":name, ...fields}; fields is a new object (taken) or NULL. */
static void
emit(struct hub *hub, const char *name, json_t *fields)
{
	json_t *ev;

	if (hub->events.emit == NULL) {
		json_decref(fields);
		return;
	}
	ev = xcheck(json_pack("{s:s}", "name", name));
	if (fields != NULL)
		json_object_update(ev, fields);
	json_decref(fields);
	hub->events.emit(hub->events.arg, ev);
}

static void
emit_channel(struct hub *hub, const char *name, const char *channel, size_t len)
{
	if (hub->events.emit != NULL)
		emit(hub, name, xcheck(json_pack("{s:s%}", "channel", channel, len)));
}

static void
emit_client(struct hub *hub, const char *name, const struct session *s, const char *channel,
	    size_t len)
{
	json_t *o;

	if (hub->events.emit == NULL)
		return;
	o = xcheck(json_pack("{s:s,s:s}", "client", s->client, "user", s->user));
	if (channel != NULL)
		json_object_set_new(o, "channel", json_stringn(channel, len));
	emit(hub, name, o);
}

/* ---- pending (not yet connected) sessions ---- */

static void
pend_add(struct hub *hub, struct session *s)
{
	s->pend_prev = hub->pend_tail;
	s->pend_next = NULL;
	if (hub->pend_tail != NULL)
		hub->pend_tail->pend_next = s;
	else
		hub->pend_head = s;
	hub->pend_tail = s;
}

static void
pend_remove(struct hub *hub, struct session *s)
{
	if (s->pend_prev != NULL)
		s->pend_prev->pend_next = s->pend_next;
	else if (hub->pend_head == s)
		hub->pend_head = s->pend_next;
	else
		return; /* not on the list */
	if (s->pend_next != NULL)
		s->pend_next->pend_prev = s->pend_prev;
	else
		hub->pend_tail = s->pend_prev;
	s->pend_prev = s->pend_next = NULL;
}

/* ---- channels and subscriptions ---- */

static struct channel *
channel_find(struct hub *hub, const char *name, size_t len)
{
	return map_find(hub->channels, name, len);
}

static struct channel *
channel_open(struct hub *hub, const char *name, size_t len, const struct ns_policy *ns)
{
	struct channel *ch = channel_find(hub, name, len);

	if (ch != NULL)
		return ch;
	ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrndup(name, len);
	ch->name_len = len;
	ch->ns = ns;
	map_add(hub->channels, ch->name, len, ch);
	engine_subscribe(hub->engine, ch->name, len);
	emit_channel(hub, "channel_occupied", ch->name, len);
	return ch;
}

static void
channel_close_if_empty(struct hub *hub, struct channel *ch)
{
	if (ch->nmembers > 0)
		return;
	map_remove(hub->channels, ch->name, ch->name_len);
	engine_unsubscribe(hub->engine, ch->name, ch->name_len);
	emit_channel(hub, "channel_vacated", ch->name, ch->name_len);
	free(ch->members);
	free(ch->name);
	free(ch);
}

static int
sub_index(const struct session *s, const struct channel *ch)
{
	for (uint32_t j = 0; j < s->nsubs; j++)
		if (s->subs[j].ch == ch)
			return (int)j;
	return -1;
}

static void
sub_add(struct session *s, struct channel *ch)
{
	if (ch->nmembers == ch->cap) {
		ch->cap = ch->cap ? ch->cap * 2 : 4;
		ch->members = xrealloc(ch->members, ch->cap * sizeof(*ch->members));
	}
	if (s->nsubs == s->capsubs) {
		s->capsubs = s->capsubs ? s->capsubs * 2 : 4;
		s->subs = xrealloc(s->subs, s->capsubs * sizeof(*s->subs));
	}
	ch->members[ch->nmembers] = (struct member){ .s = s, .sub_idx = s->nsubs };
	s->subs[s->nsubs] = (struct subref){ .ch = ch, .member_idx = ch->nmembers };
	ch->nmembers++;
	s->nsubs++;
	s->stats->subscriptions++;
}

/* Removes subscription j of s from both sides of the index (the caller closes the
 * channel if it became empty). Each side swaps its last entry into the hole and fixes that entry's back index. The
 * member moved on the channel side never belongs to s (s has one entry per channel),
 * so the session-side move below still sees a current member_idx. */
static void
sub_remove(struct session *s, uint32_t j)
{
	struct channel *ch = s->subs[j].ch;
	uint32_t i = s->subs[j].member_idx;

	ch->nmembers--;
	s->stats->subscriptions--;
	if (i != ch->nmembers) {
		struct member moved = ch->members[ch->nmembers];

		ch->members[i] = moved;
		moved.s->subs[moved.sub_idx].member_idx = i;
	}
	s->nsubs--;
	if (j != s->nsubs) {
		struct subref moved = s->subs[s->nsubs];

		s->subs[j] = moved;
		moved.ch->members[moved.member_idx].sub_idx = j;
	}
}

/* ---- identity and permissions ---- */

/* "namespace \"chat\"" or "the default namespace", as three %s arguments. */
#define NS_LABEL(ns) (ns)->name[0] ? "namespace \"" : "the default namespace", (ns)->name, \
		     (ns)->name[0] ? "\"" : ""

static bool
patterns_match(const json_t *patterns, const char *name, size_t len)
{
	size_t i;
	json_t *p;

	json_array_foreach(patterns, i, p)
		if (glob_match(json_string_value(p), name, len))
			return true;
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
	json_array_foreach(v, i, p)
		if (!json_is_string(p) || strlen(json_string_value(p)) != json_string_length(p))
			return -1;
	*out = json_incref(v);
	return 0;
}

/* Verifies a token; returns its claims (new reference) or NULL after sending the
 * refusal (unauthorized) to s. */
static json_t *
verify_token(struct hub *hub, struct session *s, const json_t *id, const char *token, size_t len)
{
	char msg[128] = "tokens are not configured on this server (auth.jwt)";
	json_t *claims = NULL;

	if (hub->auth.verify == NULL ||
	    hub->auth.verify(hub->auth.arg, token, len, &claims, msg, sizeof(msg)) != 0) {
		send_error(s, id, PROTO_ERR_UNAUTHORIZED, "%s", msg);
		return NULL;
	}
	return claims;
}

/* The "sub" claim if it is a usable user id, else NULL. */
static const char *
claim_sub(json_t *claims)
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
		return json_integer_value(exp) < 1 ? 1
		       : json_integer_value(exp) > INT64_MAX / 2 ? INT64_MAX / 2
								 : json_integer_value(exp);
	if (!json_is_real(exp))
		return 0;
	v = json_real_value(exp);
	if (v >= 9.0e18)
		return INT64_MAX / 2;
	return v >= 1 ? (int64_t)v : 1;
}

/* Takes the identity and grants of verified connection claims. Returns 0, or -1 after
 * sending the refusal. */
static int
adopt_claims(struct session *s, const json_t *id, json_t *claims)
{
	json_t *info = json_object_get(claims, "info"), *chans = NULL, *pubs = NULL;
	const char *sub = claim_sub(claims);
	char *info_raw = NULL;

	if (sub == NULL) {
		send_error(s, id, PROTO_ERR_UNAUTHORIZED,
			   "the token has no usable \"sub\" (1-%d bytes of text)", PROTO_USER_MAX);
		return -1;
	}
	/* A channel token grants one channel to a connected user; it must not become an
	 * unrestricted connection token. */
	if (json_object_get(claims, "channel") != NULL) {
		send_error(s, id, PROTO_ERR_UNAUTHORIZED,
			   "a channel token (with a \"channel\" claim) cannot identify a connection");
		return -1;
	}
	if (claim_patterns(claims, "channels", &chans) != 0 ||
	    claim_patterns(claims, "publish", &pubs) != 0) {
		json_decref(chans); /* set when only "publish" was malformed */
		send_error(s, id, PROTO_ERR_UNAUTHORIZED,
			   "the token's \"channels\" and \"publish\" claims must be lists of strings");
		return -1;
	}
	if (info != NULL && (!json_is_object(info) ||
			     (info_raw = json_dumps(info, JSON_COMPACT)) == NULL ||
			     strlen(info_raw) > PROTO_INFO_MAX)) {
		free(info_raw);
		json_decref(chans);
		json_decref(pubs);
		send_error(s, id, PROTO_ERR_UNAUTHORIZED,
			   "the token's \"info\" claim must be an object of at most %d bytes",
			   PROTO_INFO_MAX);
		return -1;
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

/* The namespace rules for cmd's channel, or NULL after sending the refusal. */
static const struct ns_policy *
channel_policy(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const struct ns_policy *ns = policy_for_channel(hub->cfg->policy, cmd->channel,
							cmd->channel_len);
	size_t nslen = proto_channel_ns_len(cmd->channel, cmd->channel_len);

	if (ns == NULL)
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "namespace \"%.*s\" is not configured and there is no default namespace",
			   (int)nslen, cmd->channel);
	return ns;
}

/* A channel token (subscribe "token"): claims sub = this user, channel = this channel,
 * and an exp. Returns 1 if it grants, 0 if absent, -1 after sending a refusal. */
static int
channel_token_grants(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	json_t *claims, *chan;
	const char *sub;
	int rc = 1;

	if (cmd->token == NULL)
		return 0;
	/* Its sub is compared with the user; an anonymous user name proves nothing. */
	if (!s->has_token) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "channel tokens need a connection identified by a token");
		return -1;
	}
	claims = verify_token(hub, s, cmd->id, cmd->token, cmd->token_len);
	if (claims == NULL)
		return -1;
	sub = claim_sub(claims);
	chan = json_object_get(claims, "channel");
	if (sub == NULL || strcmp(sub, s->user) != 0 || !json_is_string(chan) ||
	    json_string_length(chan) != cmd->channel_len ||
	    memcmp(json_string_value(chan), cmd->channel, cmd->channel_len) != 0 ||
	    claim_exp(claims) == 0) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "the channel token must carry sub (this user), channel (%s) and exp",
			   cmd->channel);
		rc = -1;
	}
	json_decref(claims);
	return rc;
}

/* May s read cmd's channel (subscribe, presence, history)? Returns 0, or -1 after
 * sending the refusal. Only subscribe may present a channel token; a subscription
 * already held counts as a grant. */
static int
check_read(struct hub *hub, struct session *s, const struct proto_cmd *cmd,
	   const struct ns_policy *ns, bool subscribing)
{
	struct channel *ch = channel_find(hub, cmd->channel, cmd->channel_len);
	bool granted = (s->grant_channels != NULL &&
			patterns_match(s->grant_channels, cmd->channel, cmd->channel_len)) ||
		       (ch != NULL && sub_index(s, ch) >= 0); /* admitted when it subscribed */
	int tok = 0;

	if (!s->has_token && !ns->allow_anonymous) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "%s%s%s does not allow clients without a token (allow_anonymous: false)",
			   NS_LABEL(ns));
		return -1;
	}
	if (subscribing && !granted) {
		tok = channel_token_grants(hub, s, cmd);
		if (tok < 0)
			return -1;
	}
	if (granted || tok > 0)
		return 0;
	if (ns->private_ns) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "%s%s%s is private: %s needs a token whose \"channels\" claim matches it, or a channel token",
			   NS_LABEL(ns), cmd->channel);
		return -1;
	}
	if (s->grant_channels != NULL) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "the token's \"channels\" claim does not match %s", cmd->channel);
		return -1;
	}
	return 0;
}

static void
member_of(const struct session *s, struct engine_member *m)
{
	*m = (struct engine_member){ s->client, s->user, s->info, s->info_len };
}

/* ---- commands ---- */

static void
on_connect(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const char *token = cmd->token != NULL ? cmd->token : s->url_token;
	size_t len;

	if (s->connected) {
		send_error(s, cmd->id, PROTO_ERR_ALREADY_CONNECTED, "already connected");
		return;
	}
	if (token != NULL) {
		json_t *claims = verify_token(hub, s, cmd->id, token,
					      cmd->token != NULL ? cmd->token_len : strlen(token));
		int rc = claims != NULL ? adopt_claims(s, cmd->id, claims) : -1;

		json_decref(claims);
		if (rc != 0)
			return;
	} else if (!hub->cfg->anonymous) {
		send_error(s, cmd->id, PROTO_ERR_UNAUTHORIZED,
			   "a token is required (anonymous access is disabled)");
		return;
	} else {
		s->user = xstrdup(cmd->user != NULL ? cmd->user : "");
		if (cmd->info_raw != NULL) {
			s->info = xstrndup(cmd->info_raw, cmd->info_len);
			s->info_len = cmd->info_len;
		}
	}
	s->connected = true;
	free(s->url_token);
	s->url_token = NULL;
	s->from = xcheck(proto_encode_from(s->client, s->user, &s->from_len));
	pend_remove(hub, s);
	map_add(hub->sessions, s->client, strlen(s->client), s);
	send_owned(s, proto_encode_connected(cmd->id, s->client, s->user, hub->server, s->exp, &len),
		   &len);
	emit_client(hub, "client_connected", s, NULL, 0);
}

static void
on_refresh(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	json_t *claims;
	const char *sub;
	size_t len;

	if (!s->has_token) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN, "this connection has no token to refresh");
		return;
	}
	claims = verify_token(hub, s, cmd->id, cmd->token, cmd->token_len);
	if (claims == NULL)
		return;
	sub = claim_sub(claims);
	if (sub == NULL || strcmp(sub, s->user) != 0)
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "the new token is for another user (its sub must be \"%s\")", s->user);
	else if (adopt_claims(s, cmd->id, claims) == 0)
		send_owned(s, proto_encode_refreshed(cmd->id, s->exp, &len), &len);
	json_decref(claims);
}

/* How many of the oldest replay frames must be left out so that the replay (and the
 * reply before it) fits the session's queue bounds: a requested replay must not get a
 * healthy client closed as a slow consumer. All of them when nothing is replayed. */
static size_t
fit_replay(const struct session *s, const struct engine_history *h, int recovered)
{
	size_t first = 0, bytes = 0;

	if (recovered == 0)
		return h->nframes;
	for (size_t i = 0; i < h->nframes; i++)
		bytes += frame_wire_len(h->frames[i]);
	while (first < h->nframes && !session_has_room(s, h->nframes - first + 1, bytes + 512))
		bytes -= frame_wire_len(h->frames[first++]);
	return first;
}

static void
on_subscribe(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct engine_history_query q = { 0 };
	struct engine_history h;
	struct engine_member m;
	const struct ns_policy *ns;
	struct channel *ch;
	int recovered = -1;
	size_t len, first;

	ch = channel_find(hub, cmd->channel, cmd->channel_len);
	if (ch != NULL && sub_index(s, ch) >= 0) {
		send_error(s, cmd->id, PROTO_ERR_ALREADY_SUBSCRIBED, "already subscribed to %s",
			   cmd->channel);
		return;
	}
	if (s->nsubs >= hub->cfg->limits.max_channels_per_connection) {
		send_error(s, cmd->id, PROTO_ERR_LIMIT_EXCEEDED,
			   "at most %zu channels per connection",
			   hub->cfg->limits.max_channels_per_connection);
		return;
	}
	ns = channel_policy(hub, s, cmd);
	if (ns == NULL || check_read(hub, s, cmd, ns, true) != 0)
		return;
	/* Everything below runs without returning to the loop, so no publish can fall
	 * between the history read and the subscription: recovery is exact. */
	ch = channel_open(hub, cmd->channel, cmd->channel_len, ns);
	if (cmd->has_since) {
		q = (struct engine_history_query){ .has_since = true, .since_offset = cmd->since_offset,
						   .since_epoch = cmd->since_epoch,
						   .limit = ns->history_size };
	} else if (cmd->rewind > 0) {
		q.limit = cmd->rewind < ns->history_size ? cmd->rewind : ns->history_size;
	}
	engine_history(hub->engine, ch->name, ch->name_len, &q, &h, hub->now_ms);
	if (cmd->has_since)
		recovered = h.recovered ? 1 : 0;
	first = fit_replay(s, &h, recovered);
	if (first > 0 && recovered == 1)
		recovered = 0; /* a partial replay would be a gap: replay nothing */
	send_owned(s, proto_encode_subscribed(cmd->id, cmd->channel, h.offset, h.epoch, recovered,
					      &len), &len);
	if (recovered != 0)
		for (size_t i = first; i < h.nframes; i++)
			if (session_enqueue(s, h.frames[i])) {
				hub->stats.replayed++;
				hub->stats.delivered++;
			}
	engine_history_fini(&h);
	if (s->kicked) {
		/* Closing already (its queue overflowed): it does not join. */
		channel_close_if_empty(hub, ch);
		return;
	}
	if (ns->presence) {
		member_of(s, &m);
		engine_presence_add(hub->engine, ch->name, ch->name_len, &m, ns->join_leave);
		emit_client(hub, "member_joined", s, ch->name, ch->name_len);
	}
	sub_add(s, ch);
}

/* Leaves subscription j: the fan-out index first, then presence, whose leave event
 * reaches the remaining subscribers; the channel may be freed. */
static void
leave(struct hub *hub, struct session *s, uint32_t j)
{
	struct channel *ch = s->subs[j].ch;
	struct engine_member m;

	sub_remove(s, j);
	if (ch->ns->presence) {
		member_of(s, &m);
		engine_presence_remove(hub->engine, ch->name, ch->name_len, &m, ch->ns->join_leave);
		emit_client(hub, "member_left", s, ch->name, ch->name_len);
	}
	channel_close_if_empty(hub, ch);
}

static void
on_unsubscribe(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct channel *ch = channel_find(hub, cmd->channel, cmd->channel_len);
	int j = ch != NULL ? sub_index(s, ch) : -1;
	size_t len;

	if (j < 0) {
		send_error(s, cmd->id, PROTO_ERR_NOT_SUBSCRIBED, "not subscribed to %s", cmd->channel);
		return;
	}
	leave(hub, s, (uint32_t)j);
	send_owned(s, proto_encode_unsubscribed(cmd->id, cmd->channel, &len), &len);
}

static void
on_publish(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const struct ns_policy *ns = channel_policy(hub, s, cmd);
	struct engine_msg msg = {
		.channel = cmd->channel,
		.channel_len = cmd->channel_len,
		.data = cmd->data_raw,
		.data_len = cmd->data_len,
		.from = s->from,
		.from_len = s->from_len,
	};
	struct channel *ch;
	int rc;

	if (ns == NULL)
		return;
	switch (ns->publish) {
	case POLICY_PUBLISH_NONE:
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "%s%s%s does not allow clients to publish (publish: none)",
			   NS_LABEL(ns));
		return;
	case POLICY_PUBLISH_SUBSCRIBERS:
		ch = channel_find(hub, cmd->channel, cmd->channel_len);
		if (ch == NULL || sub_index(s, ch) < 0) {
			send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
				   "%s%s%s allows only subscribers to publish (publish: subscribers); subscribe to %s first",
				   NS_LABEL(ns), cmd->channel);
			return;
		}
		break;
	case POLICY_PUBLISH_CLIENTS:
		break;
	}
	if (!s->has_token && !ns->allow_anonymous) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "%s%s%s does not allow clients without a token (allow_anonymous: false)",
			   NS_LABEL(ns));
		return;
	}
	if (ns->private_ns && ns->publish == POLICY_PUBLISH_CLIENTS &&
	    check_read(hub, s, cmd, ns, false) != 0)
		return; /* a private channel is closed to writers without the grant too */
	if (s->grant_publish != NULL &&
	    !patterns_match(s->grant_publish, cmd->channel, cmd->channel_len)) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
			   "the token's \"publish\" claim does not match %s", cmd->channel);
		return;
	}
	if (cmd->data_len > hub->cfg->limits.max_data_size) {
		send_error(s, cmd->id, PROTO_ERR_TOO_LARGE, "data is %zu bytes, the limit is %zu",
			   cmd->data_len, hub->cfg->limits.max_data_size);
		return;
	}
	msg.history_size = ns->history_size;
	msg.history_ttl_ms = (uint64_t)ns->history_ttl * 1000;
	rc = engine_publish(hub->engine, &msg, s->serial, hub->now_ms);
	if (rc != 0)
		send_error(s, cmd->id, PROTO_ERR_INTERNAL, "publish failed: %s", strerror(-rc));
}

/* A growing text buffer for JSON arrays built from pre-encoded elements. */
struct jbuf {
	char *p;
	size_t len, cap;
};

static void
jbuf_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Members are collected into a JSON array text up to a byte budget. */
struct member_list {
	struct jbuf b;
	size_t budget;
	bool truncated;
};

static void
add_member(void *arg, const struct engine_member *m)
{
	struct member_list *l = arg;
	size_t len;
	char *one;

	if (l->truncated)
		return;
	one = xcheck(proto_encode_member(m->client, m->user, m->info, m->info_len, &len));
	if (l->b.len + len + 2 > l->budget) {
		l->truncated = true;
	} else {
		jbuf_put(&l->b, l->b.len > 1 ? "," : "", l->b.len > 1 ? 1 : 0);
		jbuf_put(&l->b, one, len);
	}
	free(one);
}

/* Bytes a presence or history reply may hold besides its list: every frame the server
 * sends stays within limits.max_message_size. */
static size_t
reply_budget(const struct hub *hub, size_t channel_len)
{
	size_t envelope = 256 + channel_len + PROTO_ID_STR_MAX;
	size_t max = hub->cfg->limits.max_message_size;

	return max > envelope * 2 ? max - envelope : max / 2;
}

/* Shared checks of presence and history: the channel's rules, read access, the
 * feature's switch. Returns the rules or NULL after sending the refusal. */
static const struct ns_policy *
readable(struct hub *hub, struct session *s, const struct proto_cmd *cmd, const char *feature)
{
	const struct ns_policy *ns = channel_policy(hub, s, cmd);

	if (ns == NULL || check_read(hub, s, cmd, ns, false) != 0)
		return NULL;
	if (!(feature[0] == 'p' ? ns->presence : ns->history_size > 0)) {
		send_error(s, cmd->id, PROTO_ERR_FORBIDDEN, "%s is off in %s%s%s", feature,
			   NS_LABEL(ns));
		return NULL;
	}
	return ns;
}

static void
on_presence(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct member_list l = { .budget = reply_budget(hub, cmd->channel_len) };
	uint64_t clients, users;
	size_t len;

	if (readable(hub, s, cmd, "presence") == NULL)
		return;
	if (cmd->kind == PROTO_KIND_PRESENCE_STATS) {
		engine_presence_stats(hub->engine, cmd->channel, cmd->channel_len, &clients, &users);
		send_owned(s, proto_encode_presence_stats(cmd->id, cmd->channel, clients, users, &len),
			   &len);
		return;
	}
	jbuf_put(&l.b, "[", 1);
	engine_presence(hub->engine, cmd->channel, cmd->channel_len, add_member, &l);
	jbuf_put(&l.b, "]", 1);
	send_owned(s, proto_encode_presence(cmd->id, cmd->channel, l.b.p, l.b.len, l.truncated, &len),
		   &len);
	free(l.b.p);
}

/* Which retained messages a history reply carries within budget bytes: with since, the
 * oldest after it (the client pages on from the last one); otherwise the newest. Sets
 * [*from, *to) and returns whether some were left out. */
static bool
history_window(const struct engine_history *h, size_t skip, size_t budget, bool oldest_first,
	       size_t *from, size_t *to)
{
	size_t used = 0, n = 0;

	for (; n < h->nframes; n++) {
		size_t i = oldest_first ? n : h->nframes - 1 - n;
		size_t plen = frame_wire_len(h->frames[i]) - skip + 2;

		if (used + plen > budget)
			break;
		used += plen;
	}
	*from = oldest_first ? 0 : h->nframes - n;
	*to = oldest_first ? n : h->nframes;
	return n < h->nframes;
}

/* The JSON array text of the messages of h chosen by history_window() within budget
 * bytes, each its message frame minus {"type":"message","channel":"...", ; sets
 * *truncated. The caller frees the text. */
static char *
history_array(const struct engine_history *h, size_t channel_len, size_t budget,
	      bool oldest_first, bool *truncated, size_t *len)
{
	size_t skip = proto_message_prefix_len(channel_len), from, to;
	struct jbuf b = { 0 };

	*truncated = history_window(h, skip, budget, oldest_first, &from, &to);
	jbuf_put(&b, "[", 1);
	for (size_t i = from; i < to; i++) {
		size_t plen;
		const char *p = frame_payload(h->frames[i], &plen);

		jbuf_put(&b, i > from ? ",{" : "{", i > from ? 2 : 1);
		jbuf_put(&b, p + skip, plen - skip);
	}
	jbuf_put(&b, "]", 1);
	*len = b.len;
	return b.p;
}

static void
query_history(struct hub *hub, const struct ns_policy *ns, const char *channel, size_t len,
	      uint64_t limit, const char *since_epoch, uint64_t since_offset,
	      struct engine_history *h)
{
	struct engine_history_query q = {
		.limit = limit > 0 && limit < ns->history_size ? limit : ns->history_size,
		.has_since = since_epoch != NULL,
		.since_offset = since_offset,
		.since_epoch = since_epoch,
	};

	engine_history(hub->engine, channel, len, &q, h, hub->now_ms);
}

static void
on_history(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const struct ns_policy *ns = readable(hub, s, cmd, "history");
	struct engine_history h;
	size_t len, alen;
	bool truncated;
	char *arr;

	if (ns == NULL)
		return;
	query_history(hub, ns, cmd->channel, cmd->channel_len, cmd->limit,
		      cmd->has_since ? cmd->since_epoch : NULL, cmd->since_offset, &h);
	arr = history_array(&h, cmd->channel_len, reply_budget(hub, cmd->channel_len),
			    cmd->has_since && strcmp(h.epoch, cmd->since_epoch) == 0, &truncated,
			    &alen);
	send_owned(s, proto_encode_history(cmd->id, cmd->channel, h.offset, h.epoch, arr, alen,
					   truncated, &len), &len);
	free(arr);
	engine_history_fini(&h);
}

/* ---- engine callbacks ---- */

static void
on_published(void *arg, uint64_t cookie, int rc, const struct engine_msg *msg)
{
	struct hub *hub = arg;
	char client[40];
	struct session *s;
	size_t len;

	if (rc == 0)
		++*(cookie == 0 ? &hub->stats.published_server : &hub->stats.published_client);
	if (cookie == 0) {
		/* A server-side publish (hub_server_publish) waits for this synchronously. */
		hub->server_rc = rc;
		hub->server_offset = msg->offset;
		snprintf(hub->server_epoch, sizeof(hub->server_epoch), "%s",
			 msg->epoch != NULL ? msg->epoch : "");
		return;
	}
	snprintf(client, sizeof(client), "%s-%" PRIu64, hub->node, cookie);
	s = map_find(hub->sessions, client, strlen(client));
	if (s == NULL)
		return; /* the publisher has gone */
	if (rc != 0) {
		send_error(s, hub->publish_id, PROTO_ERR_INTERNAL, "publish failed: %s",
			   strerror(-rc));
		return;
	}
	send_owned(s, proto_encode_published(hub->publish_id, msg->channel, msg->offset,
					     msg->epoch, &len), &len);
}

/* The one encoding of a message: the engine keeps this frame in history and the hub
 * fans the same frame out. */
static struct frame *
on_encode(void *arg, const struct engine_msg *msg)
{
	struct frame *f;
	size_t len = 0;
	char *buf;

	(void)arg;
	buf = xcheck(proto_encode_message_n(msg->channel, msg->channel_len, msg->offset,
					    msg->data, msg->data_len, msg->from, msg->from_len,
					    &len));
	f = frame_new_text(buf, len);
	free(buf);
	return f;
}

/* message_published, for namespaces that opted in (message_events). data and from are
 * the message's own JSON text. */
static void
emit_message(struct hub *hub, const struct engine_msg *msg)
{
	const struct ns_policy *ns = policy_for_channel(hub->cfg->policy, msg->channel,
							msg->channel_len);
	json_t *o, *data, *from = NULL;

	if (ns == NULL || !ns->message_events)
		return;
	data = json_loadb(msg->data, msg->data_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (msg->from != NULL)
		from = json_loadb(msg->from, msg->from_len, 0, NULL);
	o = xcheck(json_pack("{s:s%,s:I,s:s,s:o*,s:o*}", "channel", msg->channel, msg->channel_len,
			     "offset", (json_int_t)msg->offset, "epoch", msg->epoch, "data", data,
			     "from", from));
	emit(hub, "message_published", o);
}

/* Fan-out: one reference of the same frame per local subscriber. */
static void
on_deliver(void *arg, const struct engine_msg *msg, struct frame *f)
{
	struct hub *hub = arg;
	struct channel *ch = channel_find(hub, msg->channel, msg->channel_len);

	if (hub->events.emit != NULL)
		emit_message(hub, msg);
	if (ch == NULL)
		return;
	for (uint32_t i = 0; i < ch->nmembers; i++)
		hub->stats.delivered += session_enqueue(ch->members[i].s, f);
}

/* join/leave: to every local subscriber but the member itself. */
static void
on_presence_event(void *arg, const char *channel, size_t clen, bool join,
		  const struct engine_member *m)
{
	struct hub *hub = arg;
	struct channel *ch = channel_find(hub, channel, clen);
	size_t mlen = 0, len = 0;
	char *member, *buf;
	struct frame *f;

	if (ch == NULL || ch->nmembers == 0)
		return;
	/* Without info: a client's info (up to 4 KiB, its own choice) is not broadcast on
	 * every subscribe; presence has it. */
	member = xcheck(proto_encode_member(m->client, m->user, NULL, 0, &mlen));
	buf = xcheck(proto_encode_join_leave(join, ch->name, member, mlen, &len));
	free(member);
	f = frame_new_text(buf, len);
	free(buf);
	for (uint32_t i = 0; i < ch->nmembers; i++)
		if (strcmp(ch->members[i].s->client, m->client) != 0)
			hub->stats.join_leave += session_enqueue(ch->members[i].s, f);
	frame_unref(f);
}

/* A channel's history was dropped: every local subscriber learns the new epoch, in
 * order with its messages, so that offset tracking goes on from offset. */
static void
on_reset_event(void *arg, const char *channel, size_t clen, uint64_t offset, const char *epoch)
{
	struct hub *hub = arg;
	struct channel *ch = channel_find(hub, channel, clen);
	size_t len = 0;
	char *buf;
	struct frame *f;

	if (ch == NULL || ch->nmembers == 0)
		return;
	buf = xcheck(proto_encode_reset(ch->name, offset, epoch, &len));
	f = frame_new_text(buf, len);
	free(buf);
	for (uint32_t i = 0; i < ch->nmembers; i++)
		session_enqueue(ch->members[i].s, f);
	frame_unref(f);
}

static void
on_ping(struct session *s, const struct proto_cmd *cmd)
{
	size_t len;

	send_owned(s, proto_encode_pong(cmd->id, &len), &len);
}

/* Refusals in a row after which a client that keeps sending past its limits is closed. */
#define MAX_REFUSALS 100

/* Token buckets per connection: every frame (even one that does not decode) takes from
 * the command bucket, a publish also from the publish bucket. Returns true after
 * refusing (rate_limited, echoing cmd's id when it has one), or kicking a client that
 * ignores the refusals (4029). The command bucket is taken before decoding: a frame it
 * refuses is decoded into *cmd (which the caller finishes) only to learn that id. */
static bool
rate_limited(struct hub *hub, struct session *s, struct proto_cmd *cmd, const char *buf,
	     size_t len, bool publish)
{
	const struct config_limits *l = &hub->cfg->limits;
	uint64_t retry = 0;
	bool ok = publish ? bucket_take(&s->pub_bucket, l->publish_per_second, l->publish_burst,
					hub->now_ms, &retry)
			  : bucket_take(&s->cmd_bucket, l->commands_per_second, l->commands_burst,
					hub->now_ms, &retry);

	if (ok)
		return false;
	if (++s->refusals > MAX_REFUSALS) {
		log_warn("hub: client=%s keeps sending past its rate limits, closing", s->client);
		session_kick(s, PROTO_CLOSE_RATE_LIMIT, "rate limit");
		return true;
	}
	if (!publish)
		proto_decode(buf, len, cmd, NULL);
	send_error(s, cmd->id, PROTO_ERR_RATE_LIMITED, "%s rate limit: retry in %" PRIu64 " ms",
		   publish ? "publish" : "command", retry);
	return true;
}

void
hub_session_receive(struct hub *hub, struct session *s, const char *buf, size_t len,
		    uint64_t now_ms)
{
	struct proto_cmd cmd = { 0 };
	struct proto_error err = { 0 };

	if (s->kicked)
		return;
	hub->now_ms = now_ms;
	if (rate_limited(hub, s, &cmd, buf, len, false))
		goto out;
	if (proto_decode(buf, len, &cmd, &err) != 0) {
		/* A known command refused for its channel name counts under its type; a
		 * frame that does not decode into a command is "invalid". */
		hub->stats.commands[err.code == PROTO_ERR_INVALID_CHANNEL ? cmd.kind
									   : PROTO_KIND_NONE]++;
		send_error(s, cmd.id, err.code, "%s", err.text);
		goto out;
	}
	hub->stats.commands[cmd.kind]++;
	if (!s->connected && cmd.kind != PROTO_KIND_CONNECT && cmd.kind != PROTO_KIND_PING) {
		send_error(s, cmd.id, PROTO_ERR_NOT_CONNECTED, "send connect first");
		goto out;
	}
	if (cmd.kind == PROTO_KIND_PUBLISH && rate_limited(hub, s, &cmd, buf, len, true))
		goto out;
	s->refusals = 0; /* an accepted command ends a run of refusals */
	switch (cmd.kind) {
	case PROTO_KIND_CONNECT:
		on_connect(hub, s, &cmd);
		break;
	case PROTO_KIND_REFRESH:
		on_refresh(hub, s, &cmd);
		break;
	case PROTO_KIND_SUBSCRIBE:
		on_subscribe(hub, s, &cmd);
		break;
	case PROTO_KIND_UNSUBSCRIBE:
		on_unsubscribe(hub, s, &cmd);
		break;
	case PROTO_KIND_PUBLISH:
		hub->publish_id = cmd.id;
		on_publish(hub, s, &cmd);
		hub->publish_id = NULL;
		break;
	case PROTO_KIND_PRESENCE:
	case PROTO_KIND_PRESENCE_STATS:
		on_presence(hub, s, &cmd);
		break;
	case PROTO_KIND_HISTORY:
		on_history(hub, s, &cmd);
		break;
	case PROTO_KIND_PING:
		on_ping(s, &cmd);
		break;
	case PROTO_KIND_NONE:
		break;
	}
out:
	proto_cmd_fini(&cmd);
}

/* ---- lifecycle ---- */

struct hub *
hub_new(const struct config *cfg, const uint8_t seed[16])
{
	struct hub *hub = xcalloc(1, sizeof(*hub));
	struct engine_callbacks cb = {
		.encode = on_encode,
		.deliver = on_deliver,
		.published = on_published,
		.presence_event = on_presence_event,
		.reset_event = on_reset_event,
		.arg = hub,
	};
	struct engine_config ec = { .history_memory = cfg->limits.history_memory };

	hub->cfg = cfg;
	hub->engine = engine_new(cfg->engine, &cb, &ec, seed);
	if (hub->engine == NULL) {
		free(hub);
		return NULL;
	}
	hub->channels = map_new(seed);
	hub->sessions = map_new(seed);
	/* A hash under the seed, not seed bytes: client ids are public, the key is not. */
	snprintf(hub->node, sizeof(hub->node), "%012" PRIx64,
		 (uint64_t)(map_siphash(seed, "node", 4) & 0xffffffffffffu));
	snprintf(hub->server, sizeof(hub->server), "switchboard/%s", SWITCHBOARD_VERSION);
	return hub;
}

void
hub_set_events(struct hub *hub, const struct hub_events *ev)
{
	hub->events = *ev;
}

void
hub_set_auth(struct hub *hub, const struct hub_auth *auth)
{
	hub->auth = *auth;
}

void
hub_free(struct hub *hub)
{
	if (hub == NULL)
		return;
	/* Sessions are closed by the transport first, which empties every channel. */
	map_free(hub->channels);
	map_free(hub->sessions);
	engine_free(hub->engine);
	free(hub);
}

struct session *
hub_session_open(struct hub *hub, const struct session_ops *ops, void *conn, uint64_t now_ms)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->ops = ops;
	s->conn = conn;
	s->stats = &hub->stats;
	s->serial = ++hub->next_serial;
	snprintf(s->client, sizeof(s->client), "%s-%" PRIu64, hub->node, s->serial);
	s->qmax_len = hub->cfg->limits.send_queue_messages;
	s->qmax_bytes = hub->cfg->limits.send_queue_bytes;
	s->opened_ms = now_ms;
	pend_add(hub, s);
	hub->nsessions++;
	return s;
}

void
hub_session_set_url_token(struct session *s, const char *token, size_t len)
{
	free(s->url_token);
	s->url_token = xstrndup(token, len);
}

void
hub_session_close(struct hub *hub, struct session *s)
{
	if (s == NULL)
		return;
	while (s->nsubs > 0)
		leave(hub, s, s->nsubs - 1);
	pend_remove(hub, s);
	if (s->connected) {
		map_remove(hub->sessions, s->client, strlen(s->client));
		emit_client(hub, "client_disconnected", s, NULL, 0);
	}
	session_queue_clear(s);
	json_decref(s->grant_channels);
	json_decref(s->grant_publish);
	free(s->subs);
	free(s->user);
	free(s->info);
	free(s->from);
	free(s->url_token);
	free(s);
	hub->nsessions--;
}

static void
expire_token(void *arg, const char *key, size_t len, void *value)
{
	struct hub *hub = arg;
	struct session *s = value;

	(void)key, (void)len;
	/* The verifier accepts a token until exp + leeway: close at the same moment. */
	if (s->exp == 0 || s->exp + (int64_t)hub->cfg->jwt_leeway > hub->now_unix || s->kicked)
		return;
	s->exp = 0;
	log_debug("hub: client=%s user=%s token expired, closing", s->client, s->user);
	send_error(s, NULL, PROTO_ERR_TOKEN_EXPIRED, "the token expired; connect again with a new one");
	session_kick(s, PROTO_CLOSE_TOKEN_EXPIRED, "token expired");
}

void
hub_tick(struct hub *hub, uint64_t now_ms)
{
	uint64_t limit = (uint64_t)hub->cfg->ws.connect_timeout * 1000;
	struct session *s;

	hub->now_ms = now_ms;
	/* The list is in open order, so the first young session ends the scan. */
	while ((s = hub->pend_head) != NULL && now_ms - s->opened_ms >= limit) {
		pend_remove(hub, s);
		log_debug("hub: client=%s did not connect within %us, closing", s->client,
			 hub->cfg->ws.connect_timeout);
		session_kick(s, PROTO_CLOSE_CONNECT_TIMEOUT, "connect timeout");
	}
	/* Only token-identified sessions expire, and without a verifier there are none:
	 * skip the scan of every session then. */
	if (hub->auth.verify != NULL && hub->auth.now != NULL) {
		hub->now_unix = hub->auth.now(hub->auth.arg);
		map_foreach(hub->sessions, expire_token, hub);
	}
	engine_tick(hub->engine, now_ms);
}

static void
kick_for_shutdown(void *arg, const char *key, size_t len, void *value)
{
	(void)arg, (void)key, (void)len;
	session_kick(value, PROTO_CLOSE_GOING_AWAY, "server shutdown");
}

struct drain_op {
	size_t left, kicked;
};

static void
kick_for_drain(void *arg, const char *key, size_t len, void *value)
{
	struct drain_op *op = arg;
	struct session *s = value;

	(void)key, (void)len;
	if (op->left == 0 || s->kicked)
		return;
	session_kick(s, PROTO_CLOSE_RESTART, "server restart");
	op->left--;
	op->kicked++;
}

size_t
hub_drain(struct hub *hub, size_t n)
{
	struct drain_op op = { .left = n };
	struct session *s;

	while (op.left > 0 && (s = hub->pend_head) != NULL) {
		pend_remove(hub, s);
		if (s->kicked)
			continue;
		session_kick(s, PROTO_CLOSE_RESTART, "server restart");
		op.left--;
		op.kicked++;
	}
	map_foreach(hub->sessions, kick_for_drain, &op);
	return op.kicked;
}

void
hub_shutdown(struct hub *hub)
{
	struct session *s;

	map_foreach(hub->sessions, kick_for_shutdown, NULL);
	while ((s = hub->pend_head) != NULL) {
		pend_remove(hub, s);
		session_kick(s, PROTO_CLOSE_GOING_AWAY, "server shutdown");
	}
}

/* ---- the server side (HTTP API) ---- */

/* The rules of a channel named by the server side, or NULL (*rc = -ENOENT). */
static const struct ns_policy *
server_policy(struct hub *hub, const char *channel, size_t len, int *rc)
{
	const struct ns_policy *ns = policy_for_channel(hub->cfg->policy, channel, len);

	*rc = ns != NULL ? 0 : -ENOENT;
	return ns;
}

int
hub_server_publish(struct hub *hub, const char *channel, size_t len, const char *data,
		   size_t data_len, uint64_t now_ms, uint64_t *offset, char epoch[17])
{
	int rc;
	const struct ns_policy *ns = server_policy(hub, channel, len, &rc);
	struct engine_msg msg = {
		.channel = channel,
		.channel_len = len,
		.data = data,
		.data_len = data_len,
	};

	if (ns == NULL)
		return rc;
	if (data_len > hub->cfg->limits.max_data_size)
		return -EMSGSIZE;
	msg.history_size = ns->history_size;
	msg.history_ttl_ms = (uint64_t)ns->history_ttl * 1000;
	hub->now_ms = now_ms;
	hub->server_rc = -EIO;
	rc = engine_publish(hub->engine, &msg, 0, now_ms);
	if (rc == 0)
		rc = hub->server_rc;
	*offset = hub->server_offset;
	memcpy(epoch, hub->server_epoch, sizeof(hub->server_epoch));
	return rc;
}

struct chan_list {
	const char *prefix;
	size_t plen;
	json_t *arr;
};

static void
list_channel(void *arg, const char *key, size_t len, void *value)
{
	struct chan_list *l = arg;
	struct channel *ch = value;

	if (len < l->plen || memcmp(key, l->prefix, l->plen) != 0)
		return;
	json_array_append_new(l->arr, json_pack("{s:s%,s:I}", "channel", key, len, "subscribers",
						(json_int_t)ch->nmembers));
}

static int
by_channel_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "channel")),
		      json_string_value(json_object_get(*(json_t *const *)b, "channel")));
}

char *
hub_channels_json(struct hub *hub, const char *prefix, size_t plen)
{
	struct chan_list l = { prefix, plen, xcheck(json_array()) };
	size_t n, i;
	json_t **items, *sorted = xcheck(json_array());
	char *out;

	map_foreach(hub->channels, list_channel, &l);
	n = json_array_size(l.arr);
	items = xmalloc((n ? n : 1) * sizeof(*items));
	for (i = 0; i < n; i++)
		items[i] = json_array_get(l.arr, i);
	qsort(items, n, sizeof(*items), by_channel_name);
	for (i = 0; i < n && i < HUB_LIST_MAX; i++)
		json_array_append(sorted, items[i]);
	free(items);
	json_decref(l.arr);
	sorted = xcheck(json_pack("{s:o}", "channels", sorted)); /* takes the array */
	if (n > HUB_LIST_MAX) /* a bounded response; narrow it with a prefix */
		json_object_set_new(sorted, "truncated", json_true());
	out = xcheck(json_dumps(sorted, JSON_COMPACT));
	json_decref(sorted);
	return out;
}

char *
hub_channel_json(struct hub *hub, const char *channel, size_t len, uint64_t now_ms, int *rc)
{
	const struct ns_policy *ns = server_policy(hub, channel, len, rc);
	struct channel *ch;
	struct engine_history h;
	struct engine_history_query q = { 0 };
	uint64_t clients, users;
	json_t *o;
	char *out;

	if (ns == NULL)
		return NULL;
	ch = channel_find(hub, channel, len);
	hub->now_ms = now_ms;
	engine_history(hub->engine, channel, len, &q, &h, now_ms);
	o = xcheck(json_pack("{s:s%,s:I,s:I,s:s}", "channel", channel, len, "subscribers",
			     (json_int_t)(ch != NULL ? ch->nmembers : 0), "offset",
			     (json_int_t)h.offset, "epoch", h.epoch));
	engine_history_fini(&h);
	if (ns->presence) {
		engine_presence_stats(hub->engine, channel, len, &clients, &users);
		json_object_set_new(o, "presence", json_pack("{s:I,s:I}", "clients",
							     (json_int_t)clients, "users",
							     (json_int_t)users));
	}
	out = xcheck(json_dumps(o, JSON_COMPACT));
	json_decref(o);
	return out;
}

/* A response object {"channel":...} with raw JSON text joined as key. */
static char *
with_list(const char *channel, size_t len, json_t *extra, const char *key, const char *raw,
	  size_t raw_len)
{
	json_t *o = xcheck(json_pack("{s:s%}", "channel", channel, len));
	size_t out_len;

	if (extra != NULL)
		json_object_update(o, extra);
	json_decref(extra);
	return xcheck(proto_encode_with_raw(o, key, raw, raw_len, &out_len));
}

char *
hub_presence_json(struct hub *hub, const char *channel, size_t len, int *rc)
{
	const struct ns_policy *ns = server_policy(hub, channel, len, rc);
	struct member_list l = { .budget = SIZE_MAX };
	char *out;

	if (ns == NULL)
		return NULL;
	if (!ns->presence) {
		*rc = -EPERM;
		return NULL;
	}
	jbuf_put(&l.b, "[", 1);
	engine_presence(hub->engine, channel, len, add_member, &l);
	jbuf_put(&l.b, "]", 1);
	out = with_list(channel, len, NULL, "members", l.b.p, l.b.len);
	free(l.b.p);
	return out;
}

char *
hub_history_json(struct hub *hub, const char *channel, size_t len, uint64_t limit,
		 const char *since_epoch, uint64_t since_offset, size_t budget, uint64_t now_ms,
		 int *rc)
{
	const struct ns_policy *ns = server_policy(hub, channel, len, rc);
	struct engine_history h;
	size_t alen;
	bool truncated;
	char *arr, *out;
	json_t *extra;

	if (ns == NULL)
		return NULL;
	if (ns->history_size == 0) {
		*rc = -EPERM;
		return NULL;
	}
	hub->now_ms = now_ms;
	query_history(hub, ns, channel, len, limit, since_epoch, since_offset, &h);
	arr = history_array(&h, len, budget, since_epoch != NULL && strcmp(h.epoch, since_epoch) == 0,
			    &truncated, &alen);
	extra = xcheck(json_pack("{s:I,s:s}", "offset", (json_int_t)h.offset, "epoch", h.epoch));
	if (truncated)
		json_object_set_new(extra, "truncated", json_true());
	out = with_list(channel, len, extra, "messages", arr, alen);
	free(arr);
	engine_history_fini(&h);
	return out;
}

char *
hub_reset_json(struct hub *hub, const char *channel, size_t len, int *rc)
{
	char epoch[ENGINE_EPOCH_LEN + 1];
	uint64_t offset;
	json_t *o;
	char *out;

	if (server_policy(hub, channel, len, rc) == NULL)
		return NULL;
	engine_reset(hub->engine, channel, len, &offset, epoch);
	o = xcheck(json_pack("{s:s%,s:I,s:s}", "channel", channel, len, "offset",
			     (json_int_t)offset, "epoch", epoch));
	out = xcheck(json_dumps(o, JSON_COMPACT));
	json_decref(o);
	return out;
}

size_t
hub_disconnect_client(struct hub *hub, const char *client, size_t len)
{
	struct session *s = map_find(hub->sessions, client, len);

	if (s == NULL || s->kicked)
		return 0;
	log_debug("hub: client=%s disconnected through the HTTP API", s->client);
	session_kick(s, PROTO_CLOSE_DISCONNECTED, "disconnected by the server");
	return 1;
}

struct user_op {
	struct hub *hub;
	const char *user, *channel;
	size_t ulen, clen, count;
};

static bool
is_user(const struct session *s, const struct user_op *op)
{
	return !s->kicked && strlen(s->user) == op->ulen && memcmp(s->user, op->user, op->ulen) == 0;
}

static void
disconnect_one(void *arg, const char *key, size_t len, void *value)
{
	struct user_op *op = arg;

	(void)key, (void)len;
	if (!is_user(value, op))
		return;
	session_kick(value, PROTO_CLOSE_DISCONNECTED, "disconnected by the server");
	op->count++;
}

size_t
hub_disconnect_user(struct hub *hub, const char *user, size_t len)
{
	struct user_op op = { .hub = hub, .user = user, .ulen = len };

	map_foreach(hub->sessions, disconnect_one, &op);
	if (op.count > 0)
		log_info("hub: user=%.*s disconnected through the HTTP API (%zu connections)",
			 (int)len, user, op.count);
	return op.count;
}

static void
unsubscribe_one(void *arg, const char *key, size_t len, void *value)
{
	struct user_op *op = arg;
	struct session *s = value;
	struct channel *ch;
	size_t n = 0;
	int j;

	(void)key, (void)len;
	if (!is_user(s, op))
		return;
	ch = channel_find(op->hub, op->channel, op->clen);
	j = ch != NULL ? sub_index(s, ch) : -1;
	if (j < 0)
		return;
	leave(op->hub, s, (uint32_t)j);
	send_owned(s, proto_encode_unsubscribed_by_server(op->channel, &n), &n);
	op->count++;
}

size_t
hub_unsubscribe_user(struct hub *hub, const char *user, size_t len, const char *channel,
		     size_t clen)
{
	char *name = xstrndup(channel, clen); /* the encoder wants a C string */
	struct user_op op = { .hub = hub, .user = user, .ulen = len, .channel = name, .clen = clen };

	map_foreach(hub->sessions, unsubscribe_one, &op);
	free(name);
	return op.count;
}

const struct hub_stats *
hub_stats(const struct hub *hub)
{
	return &hub->stats;
}

size_t
hub_session_count(const struct hub *hub)
{
	return hub->nsessions;
}

size_t
hub_channel_count(const struct hub *hub)
{
	return map_count(hub->channels);
}
