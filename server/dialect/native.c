/* native.c: the native v1 protocol (docs/protocol.md) as a dialect of the core.
 *
 * receive() decodes one command (protocol/proto.c), takes it through the rate limits
 * and the grants, and starts the core operation; complete() turns the engine's answers
 * into replies. Every reply is a frame queued to the session alone; messages, join/leave
 * and resets are encoded here once per fan-out and shared. */
#include "dialect.h"
#include "engine.h"
#include "frame.h"
#include "grants.h"
#include "internal.h"
#include "listing.h"
#include "log.h"
#include "map.h"
#include "message.h"
#include "proto.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A new frame of an encoded reply (takes ownership of buf). protocol/ reports out of
 * memory as NULL instead of aborting; the server aborts like xmalloc. The length comes
 * by pointer because it is written by the encoder call in the same argument list. */
static struct frame *
owned(char *buf, const size_t *lenp)
{
	struct frame *f;

	xcheck(buf);
	f = frame_new_text(buf, *lenp);
	free(buf);
	return f;
}

/* Queues an encoded reply to s alone. The length comes by pointer because it is written
 * by the encoder call in the same argument list. */
static bool
reply(struct session *s, char *buf, const size_t *lenp)
{
	xcheck(buf);
	return session_send(s, owned(buf, lenp));
}

static void
refuse(struct session *s, const json_t *id, const struct grant *g)
{
	session_send_error(s, id, g->code, "%s", g->text);
}

/* ---- encodings ---- */

static struct frame *
encode_message(const struct message *m)
{
	size_t clen, dlen, flen, len = 0;
	const char *channel = message_channel(m, &clen), *data = message_data(m, &dlen),
		   *from = message_from(m, &flen);

	return owned(proto_encode_message_n(channel, clen, message_offset(m), data, dlen, from,
					    flen, &len),
		     &len);
}

static struct frame *
encode_join_leave(const char *channel, size_t clen, bool join, const struct engine_member *m)
{
	size_t mlen = 0, len = 0;
	char *member, *buf;

	(void)clen; /* channel is NUL-terminated (the hub's copy) */
	/* Without info: a client's info (up to 4 KiB, its own choice) is not broadcast on
	 * every subscribe; presence has it. */
	member = xcheck(proto_encode_member(m->client, m->user, NULL, 0, &mlen));
	buf = proto_encode_join_leave(join, channel, member, mlen, &len);
	free(member);
	return owned(buf, &len);
}

static struct frame *
encode_reset(const char *channel, size_t clen, uint64_t offset, const char *epoch)
{
	size_t len = 0;

	(void)clen;
	return owned(proto_encode_reset(channel, offset, epoch, &len), &len);
}

static struct frame *
encode_unsubscribed(const char *channel, size_t clen)
{
	size_t len = 0;

	(void)clen;
	return owned(proto_encode_unsubscribed_by_server(channel, &len), &len);
}

static struct frame *
encode_error(const json_t *id, enum proto_errcode code, const char *text)
{
	size_t len = 0;

	return owned(proto_encode_error(id, code, text, &len), &len);
}

/* An engine failure as the client sees it. */
static void
unavailable(struct session *s, const json_t *id, const char *what, int rc)
{
	session_send_error(s, id, PROTO_ERR_UNAVAILABLE,
			   "%s failed: the server cannot reach its engine (%s); retry later", what,
			   strerror(-rc));
}

/* ---- commands ---- */

static void
on_connect(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const char *token = cmd->token != NULL ? cmd->token : s->url_token;
	struct grant g;
	size_t len;

	if (s->connected) {
		session_send_error(s, cmd->id, PROTO_ERR_ALREADY_CONNECTED, "already connected");
		return;
	}
	if (token != NULL) {
		json_t *claims =
			grants_verify(hub, token,
				      cmd->token != NULL ? cmd->token_len : strlen(token), &g);
		int rc = claims != NULL ? grants_adopt(s, claims, &g) : -1;

		json_decref(claims);
		if (rc != 0) {
			refuse(s, cmd->id, &g);
			return;
		}
	} else if (!hub->cfg.anonymous) {
		session_send_error(s, cmd->id, PROTO_ERR_UNAUTHORIZED,
				   "a token is required (anonymous access is disabled)");
		return;
	} else {
		s->user = xstrdup(cmd->user != NULL ? cmd->user : "");
		if (cmd->info_raw != NULL) {
			s->info = xstrndup(cmd->info_raw, cmd->info_len);
			s->info_len = cmd->info_len;
		}
	}
	hub_session_identified(hub, s);
	reply(s, proto_encode_connected(cmd->id, s->client, s->user, hub->server, s->exp, &len),
	      &len);
	events_client(hub, "client_connected", s, NULL, 0);
}

static void
on_refresh(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct grant g;
	json_t *claims;
	const char *sub;
	size_t len;

	if (!s->has_token) {
		session_send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
				   "this connection has no token to refresh");
		return;
	}
	claims = grants_verify(hub, cmd->token, cmd->token_len, &g);
	if (claims == NULL) {
		refuse(s, cmd->id, &g);
		return;
	}
	sub = grants_claim_sub(claims);
	if (sub == NULL || strcmp(sub, s->user) != 0)
		session_send_error(s, cmd->id, PROTO_ERR_FORBIDDEN,
				   "the new token is for another user (its sub must be \"%s\")",
				   s->user);
	else if (grants_adopt(s, claims, &g) == 0)
		reply(s, proto_encode_refreshed(cmd->id, s->exp, &len), &len);
	else
		refuse(s, cmd->id, &g);
	json_decref(claims);
}

static void
on_subscribe(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct engine_history_query q = { 0 };
	const struct ns_policy *ns;
	struct channel *ch = channel_find(hub, cmd->channel, cmd->channel_len);
	struct grant g;

	if (ch != NULL && sub_index(s, ch) >= 0) {
		session_send_error(s, cmd->id, PROTO_ERR_ALREADY_SUBSCRIBED,
				   "already subscribed to %s", cmd->channel);
		return;
	}
	if (s->nsubs >= hub->cfg.limits.max_channels_per_connection) {
		session_send_error(s, cmd->id, PROTO_ERR_LIMIT_EXCEEDED,
				   "at most %zu channels per connection",
				   hub->cfg.limits.max_channels_per_connection);
		return;
	}
	ns = grants_policy(hub, cmd->channel, cmd->channel_len, &g);
	if (ns == NULL || grants_read(hub, s, cmd->channel, cmd->channel_len, ns, cmd->token,
				      cmd->token_len, true, &g) != 0) {
		refuse(s, cmd->id, &g);
		return;
	}
	if (cmd->has_since)
		q = (struct engine_history_query){ .has_since = true,
						   .since_offset = cmd->since_offset,
						   .since_epoch = cmd->since_epoch,
						   .limit = ns->history_size };
	else if (cmd->rewind > 0)
		q.limit = cmd->rewind < ns->history_size ? cmd->rewind : ns->history_size;
	hub_subscribe(hub, s, cmd->id, cmd->channel, cmd->channel_len, ns, &q);
}

/* The wire bytes of m's native frame: the WebSocket header and
 * {"type":"message","channel":"C","offset":N,"data":D[,"from":F]}. */
static size_t
wire_len(const struct message *m)
{
	char digits[24];
	size_t clen, dlen, flen, n;

	message_channel(m, &clen);
	message_data(m, &dlen);
	n = sizeof("{\"type\":\"message\",\"channel\":\"\",\"offset\":,\"data\":}") - 1 + clen +
	    (size_t)snprintf(digits, sizeof(digits), "%" PRIu64, message_offset(m)) + dlen;
	if (message_from(m, &flen) != NULL)
		n += sizeof(",\"from\":") - 1 + flen;
	return n + (n < 126 ? 2 : n < 65536 ? 4 : 10);
}

/* How many of the oldest replayed messages must be left out so that the replay (with
 * the reply before it and what the fan-out kept meanwhile after it, op->nkept frames)
 * fits the session's queue bounds: a requested replay must not get a healthy client
 * closed as a slow consumer. All of them when nothing is replayed. */
static size_t
fit_replay(const struct session *s, const struct pending *op, const struct engine_history *h,
	   int recovered)
{
	size_t first = 0, bytes = 0;

	if (recovered == 0)
		return h->count;
	for (size_t i = 0; i < h->count; i++)
		bytes += wire_len(h->messages[i]);
	while (first < h->count &&
	       !session_has_room(s, h->count - first + 1 + op->nkept, bytes + 512 + op->kept_bytes))
		bytes -= wire_len(h->messages[first++]);
	return first;
}

/* The history answer of a subscribe: the reply, then the replay. */
static void
subscribed(struct hub *hub, struct session *s, const struct pending *op,
	   const struct engine_history *h)
{
	int recovered = op->q.has_since ? (h->recovered ? 1 : 0) : -1;
	size_t first = fit_replay(s, op, h, recovered), len;

	if (first > 0 && recovered == 1)
		recovered = 0; /* a partial replay would be a gap: replay nothing */
	reply(s,
	      proto_encode_subscribed(op->id, op->channel, h->pos.offset, h->pos.epoch, recovered,
				      &len),
	      &len);
	if (recovered != 0)
		hub_replay(hub, s, h->messages + first, h->count - first);
}

static void
on_unsubscribe(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct channel *ch = channel_find(hub, cmd->channel, cmd->channel_len);
	int j = ch != NULL ? sub_index(s, ch) : -1;
	size_t len;

	if (j < 0) {
		session_send_error(s, cmd->id, PROTO_ERR_NOT_SUBSCRIBED, "not subscribed to %s",
				   cmd->channel);
		return;
	}
	hub_leave(hub, s, (uint32_t)j);
	reply(s, proto_encode_unsubscribed(cmd->id, cmd->channel, &len), &len);
}

static void
on_publish(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	struct grant g;
	const struct ns_policy *ns = grants_policy(hub, cmd->channel, cmd->channel_len, &g);
	struct engine_pub p = {
		.channel = cmd->channel,
		.channel_len = cmd->channel_len,
		.data = cmd->data_raw,
		.data_len = cmd->data_len,
		.from = s->from,
		.from_len = s->from_len,
	};
	struct pending *op;

	if (ns == NULL || grants_publish(hub, s, cmd->channel, cmd->channel_len, ns, &g) != 0) {
		refuse(s, cmd->id, &g);
		return;
	}
	if (cmd->data_len > hub->cfg.limits.max_data_size) {
		session_send_error(s, cmd->id, PROTO_ERR_TOO_LARGE,
				   "data is %zu bytes, the limit is %zu", cmd->data_len,
				   hub->cfg.limits.max_data_size);
		return;
	}
	op = hub_op_new(hub, PENDING_PUBLISH, s, cmd->id, cmd->channel, cmd->channel_len);
	if (op == NULL)
		return;
	p.history_size = ns->history_size;
	p.history_ttl_ms = (uint64_t)ns->history_ttl * 1000;
	engine_publish(hub->engine, &p, hub->now_ms, hub_op_complete, op);
}

/* Bytes a presence or history reply may hold besides its list: every frame the server
 * sends stays within limits.max_message_size. */
static size_t
reply_budget(const struct hub *hub, size_t channel_len)
{
	size_t envelope = 256 + channel_len + PROTO_ID_STR_MAX;
	size_t max = hub->cfg.limits.max_message_size;

	return max > envelope * 2 ? max - envelope : max / 2;
}

/* Shared checks of presence and history: the channel's rules, read access, the
 * feature's switch. Returns the rules or NULL after sending the refusal. */
static const struct ns_policy *
readable(struct hub *hub, struct session *s, const struct proto_cmd *cmd, const char *feature)
{
	struct grant g;
	const struct ns_policy *ns = grants_policy(hub, cmd->channel, cmd->channel_len, &g);

	if (ns == NULL ||
	    grants_read(hub, s, cmd->channel, cmd->channel_len, ns, NULL, 0, false, &g) != 0) {
		refuse(s, cmd->id, &g);
		return NULL;
	}
	if (!(feature[0] == 'p' ? ns->presence : ns->history_size > 0)) {
		session_send_error(s, cmd->id, PROTO_ERR_FORBIDDEN, "%s is off in %s%s%s", feature,
				   ns->name[0] ? "namespace \"" : "the default namespace", ns->name,
				   ns->name[0] ? "\"" : "");
		return NULL;
	}
	return ns;
}

static void
on_presence(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	bool stats = cmd->kind == PROTO_KIND_PRESENCE_STATS;
	struct pending *op;

	if (readable(hub, s, cmd, "presence") == NULL)
		return;
	op = hub_op_new(hub, stats ? PENDING_PRESENCE_STATS : PENDING_PRESENCE, s, cmd->id,
			cmd->channel, cmd->channel_len);
	if (op == NULL)
		return;
	if (stats)
		engine_presence_stats(hub->engine, op->channel, op->channel_len, hub_op_complete,
				      op);
	else
		engine_presence(hub->engine, op->channel, op->channel_len, hub_op_complete, op);
}

static void
on_history(struct hub *hub, struct session *s, const struct proto_cmd *cmd)
{
	const struct ns_policy *ns = readable(hub, s, cmd, "history");
	struct engine_history_query q;
	struct pending *op;

	if (ns == NULL)
		return;
	op = hub_op_new(hub, PENDING_HISTORY, s, cmd->id, cmd->channel, cmd->channel_len);
	if (op == NULL)
		return;
	q = (struct engine_history_query){
		.limit = cmd->limit > 0 && cmd->limit < ns->history_size ? cmd->limit
									 : ns->history_size,
		.has_since = cmd->has_since,
		.since_offset = cmd->since_offset,
	};
	op->q = q;
	if (cmd->has_since)
		pending_set_since(op, cmd->since_epoch);
	engine_history(hub->engine, op->channel, op->channel_len, &op->q, hub->now_ms,
		       hub_op_complete, op);
}

static void
on_ping(struct session *s, const struct proto_cmd *cmd)
{
	size_t len;

	reply(s, proto_encode_pong(cmd->id, &len), &len);
}

/* ---- answers ---- */

static void
answer_presence(struct hub *hub, struct session *s, const struct pending *op,
		const struct engine_presence *p)
{
	bool truncated;
	size_t alen, len;
	char *arr = listing_members(p->members, p->count, reply_budget(hub, op->channel_len),
				    &truncated, &alen);

	reply(s, proto_encode_presence(op->id, op->channel, arr, alen, truncated, &len), &len);
	free(arr);
}

static void
answer_history(struct hub *hub, struct session *s, const struct pending *op,
	       const struct engine_history *h)
{
	bool truncated;
	size_t alen, len;
	char *arr = listing_messages(h->messages, h->count, reply_budget(hub, op->channel_len),
				     op->q.has_since && strcmp(h->pos.epoch, op->since_epoch) == 0,
				     &truncated, &alen);

	reply(s,
	      proto_encode_history(op->id, op->channel, h->pos.offset, h->pos.epoch, arr, alen,
				   truncated, &len),
	      &len);
	free(arr);
}

static void
complete(struct hub *hub, struct session *s, struct pending *op, int rc, const void *result)
{
	static const char *const what[] = {
		[PENDING_SUBSCRIBE] = "subscribe",
		[PENDING_PUBLISH] = "publish",
		[PENDING_HISTORY] = "history",
		[PENDING_PRESENCE] = "presence",
		[PENDING_PRESENCE_STATS] = "presence_stats",
	};
	const struct engine_published *pub = result;
	const struct engine_presence_stats *st = result;
	size_t len;

	if (op->cancelled && op->kind == PENDING_SUBSCRIBE) {
		/* The client (or a backend, for its user) unsubscribed before it completed. */
		session_send_error(s, op->id, PROTO_ERR_NOT_SUBSCRIBED,
				   "unsubscribed from %s before the subscription completed",
				   op->channel);
		return;
	}
	if (rc != 0) {
		unavailable(s, op->id,
			    op->kind < sizeof(what) / sizeof(what[0]) && what[op->kind]
				    ? what[op->kind]
				    : "the command",
			    rc);
		return;
	}
	switch (op->kind) {
	case PENDING_SUBSCRIBE:
		subscribed(hub, s, op, result);
		break;
	case PENDING_PUBLISH:
		reply(s,
		      proto_encode_published(op->id, op->channel, message_offset(pub->msg),
					     message_epoch(pub->msg), &len),
		      &len);
		break;
	case PENDING_HISTORY:
		answer_history(hub, s, op, result);
		break;
	case PENDING_PRESENCE:
		answer_presence(hub, s, op, result);
		break;
	case PENDING_PRESENCE_STATS:
		reply(s,
		      proto_encode_presence_stats(op->id, op->channel, st->clients, st->users,
						  &len),
		      &len);
		break;
	case PENDING_CHANNEL:
	case PENDING_BACKEND:
		break;
	}
}

/* ---- receive ---- */

/* Refusals in a row after which a client that keeps sending past its limits is closed. */
#define MAX_REFUSALS 100

/* Token buckets per connection: every frame (even one that does not decode) takes from
 * the command bucket, a publish also from the publish bucket. Returns true after
 * refusing (rate_limited, echoing cmd's id when it has one), or kicking a client that
 * ignores the refusals (4029). The command bucket is taken before decoding: a frame it
 * refuses is decoded into *cmd (which the caller finishes) only to learn that id. */
static bool
rate_limited(struct hub *hub, struct session *s, struct proto_cmd *cmd, const char *buf, size_t len,
	     bool publish)
{
	const struct core_limits *l = &hub->cfg.limits;
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
	session_send_error(s, cmd->id, PROTO_ERR_RATE_LIMITED,
			   "%s rate limit: retry in %" PRIu64 " ms",
			   publish ? "publish" : "command", retry);
	return true;
}

static void
receive(struct hub *hub, struct session *s, const char *buf, size_t len)
{
	struct proto_cmd cmd = { 0 };
	struct proto_error err = { 0 };

	if (rate_limited(hub, s, &cmd, buf, len, false))
		goto out;
	if (proto_decode(buf, len, &cmd, &err) != 0) {
		/* A known command refused for its channel name counts under its type; a
		 * frame that does not decode into a command is "invalid". */
		hub->stats.commands[err.code == PROTO_ERR_INVALID_CHANNEL ? cmd.kind
									  : PROTO_KIND_NONE]++;
		session_send_error(s, cmd.id, err.code, "%s", err.text);
		goto out;
	}
	hub->stats.commands[cmd.kind]++;
	if (!s->connected && cmd.kind != PROTO_KIND_CONNECT && cmd.kind != PROTO_KIND_PING) {
		session_send_error(s, cmd.id, PROTO_ERR_NOT_CONNECTED, "send connect first");
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
		on_publish(hub, s, &cmd);
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

const struct dialect dialect_native = {
	.name = "native",
	.index = 0,
	.receive = receive,
	.encode_message = encode_message,
	.encode_join_leave = encode_join_leave,
	.encode_reset = encode_reset,
	.encode_unsubscribed = encode_unsubscribed,
	.encode_error = encode_error,
	.complete = complete,
};
