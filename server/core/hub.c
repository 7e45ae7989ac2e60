/* hub.c: sessions, the fan-out, two-phase subscribe and the routing of engine answers.
 *
 * Ownership: the hub owns its channels (channel.c), its engine and its table of pending
 * operations; sessions belong to the transport. A published message is encoded at most
 * once per dialect in on_deliver(), into one frame per dialect; every subscriber's queue
 * takes a reference and the hub drops its own at the end (the guard reference of
 * STYLE §4).
 *
 * Engine answers arrive through hub_op_complete() with the operation as arg, inline or
 * later. The session an operation answers is looked up by serial, so one that closed
 * meanwhile is not found; a subscription that left while catching up cancelled its
 * operation. */
#include "hub.h"
#include "backend.h"
#include "dialect.h"
#include "engine.h"
#include "frame.h"
#include "internal.h"
#include "log.h"
#include "map.h"
#include "message.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- operations ---- */

struct session *
hub_session_find(struct hub *hub, uint64_t serial)
{
	return serial != 0 ? map_find(hub->serials, (const char *)&serial, sizeof(serial)) : NULL;
}

struct pending *
hub_op_new(struct hub *hub, enum pending_kind kind, struct session *s, const json_t *id,
	   const char *channel, size_t len)
{
	struct pending *op;

	if (pending_count(hub->pending) >= PENDING_MAX) {
		if (s != NULL)
			session_send_error(
				s, id, PROTO_ERR_UNAVAILABLE,
				"the server has too many operations in flight; retry later");
		return NULL;
	}
	op = pending_add(hub->pending, kind);
	op->hub = hub;
	if (s != NULL) {
		op->session = s->serial;
		op->dialect = s->dialect;
	}
	op->id = id != NULL ? json_incref((json_t *)id) : NULL;
	if (channel != NULL) {
		op->channel = xstrndup(channel, len);
		op->channel_len = len;
	}
	return op;
}

void
hub_op_done(struct hub *hub, struct pending *op)
{
	pending_remove(hub->pending, op);
}

/* Links op, the subscription s->subs[j] catching up, into its channel's list. */
static void
catchup_link(struct channel *ch, struct session *s, uint32_t j, struct pending *op)
{
	op->prev = NULL;
	op->next = ch->catchups;
	if (ch->catchups != NULL)
		ch->catchups->prev = op;
	ch->catchups = op;
	s->subs[j].catchup = op;
}

/* Unlinks op from ch's list of catching-up subscriptions, and from its subscription
 * (s, when it is still there). */
static void
catchup_unlink(struct channel *ch, struct session *s, struct pending *op)
{
	int j = s != NULL ? sub_index(s, ch) : -1;

	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (ch->catchups == op)
		ch->catchups = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->next = op->prev = NULL;
	if (j >= 0 && s->subs[j].catchup == op)
		s->subs[j].catchup = NULL;
}

/* The channel an operation was made for, if it still exists (not one reopened since). */
static struct channel *
op_channel(struct hub *hub, const struct pending *op)
{
	struct channel *ch = channel_find(hub, op->channel, op->channel_len);

	return ch != NULL && ch->serial == op->channel_serial ? ch : NULL;
}

static void
request_history(struct hub *hub, struct pending *op)
{
	op->requested = true;
	engine_history(hub->engine, op->channel, op->channel_len, &op->q, hub->now_ms,
		       hub_op_complete, op);
}

/* A subscription whose engine side failed: the dialect tells the client, and the
 * session is no longer in the fan-out. The caller closes the channel if it emptied. */
static void
subscribe_failed(struct hub *hub, struct session *s, struct channel *ch, struct pending *op, int rc)
{
	int j = sub_index(s, ch);

	if (j >= 0)
		sub_remove(s, (uint32_t)j);
	if (!s->kicked)
		op->dialect->complete(hub, s, op, rc, NULL);
}

/* The engine confirmed (or refused) this node's subscription to a channel: its
 * subscribers waiting for that ask for history now (or fail). */
static void
on_channel_live(struct hub *hub, struct pending *op, int rc)
{
	struct channel *ch = op_channel(hub, op);
	struct pending *list, *next;

	if (ch == NULL)
		return; /* closed meanwhile: its unsubscribe is on its way */
	if (rc == 0) {
		uint64_t serial = ch->serial, *cookies;
		size_t n = 0;

		ch->live = true;
		/* An answer inline frees its operation and may close the channel: take the
		 * cookies first, then find each again. */
		for (struct pending *w = ch->catchups; w != NULL; w = w->next)
			n++;
		cookies = xmalloc((n ? n : 1) * sizeof(*cookies));
		n = 0;
		for (struct pending *w = ch->catchups; w != NULL; w = w->next)
			if (!w->requested)
				cookies[n++] = w->cookie;
		for (size_t i = 0; i < n; i++) {
			struct pending *w = pending_find(hub->pending, cookies[i]);

			if (w != NULL && !w->requested && !w->cancelled &&
			    w->channel_serial == serial && op_channel(hub, w) != NULL)
				request_history(hub, w);
		}
		free(cookies);
		return;
	}
	log_warn("hub: the engine could not subscribe to %s: %s", ch->name, strerror(-rc));
	ch->engine_rc = rc;
	list = ch->catchups;
	ch->catchups = NULL;
	for (struct pending *w = list; w != NULL; w = next) {
		struct session *s = hub_session_find(hub, w->session);

		next = w->next;
		if (s != NULL)
			subscribe_failed(hub, s, ch, w, rc);
		hub_op_done(hub, w); /* no history call was made: nothing else answers it */
	}
	if (list != NULL)
		channel_close_if_empty(hub, ch);
}

static void
member_of(const struct session *s, struct engine_member *m)
{
	*m = (struct engine_member){ s->client, s->user, s->info, s->info_len };
}

/* Queues what the fan-out kept for op's subscriber while it caught up, after the
 * answer's position: a reset the answer already reflects (to its epoch) and everything
 * kept before it are dropped; then other frames go as they are, and messages go when
 * they are of the current epoch and, in the answer's epoch, after its offset. */
static void
release_kept(struct hub *hub, struct session *s, struct pending *op,
	     const struct engine_position *pos)
{
	struct pending_kept *start = op->kept;
	const char *epoch = pos->epoch;

	for (struct pending_kept *k = op->kept; k != NULL; k = k->next)
		if (k->f != NULL && k->reset && strcmp(k->epoch, pos->epoch) == 0)
			start = k->next;
	for (struct pending_kept *k = start; k != NULL; k = k->next) {
		if (k->f != NULL) {
			if (k->reset)
				epoch = k->epoch; /* a reset after the answer: its epoch goes on */
			else
				hub->stats.join_leave++;
			session_enqueue(s, k->f);
		} else if (strcmp(message_epoch(k->msg), epoch) == 0 &&
			   (epoch != pos->epoch || message_offset(k->msg) > pos->offset)) {
			struct frame *f = replay_frame(hub, s->dialect, k->msg);

			hub->stats.delivered += session_enqueue(s, f);
			frame_unref(f);
		}
	}
}

/* The history answer of a two-phase subscribe. */
static void
on_subscribe_answer(struct hub *hub, struct pending *op, int rc, const struct engine_history *h)
{
	struct channel *ch = op_channel(hub, op);
	struct session *s;
	struct engine_member m;
	int j;

	if (op->cancelled || ch == NULL)
		return;
	s = hub_session_find(hub, op->session);
	catchup_unlink(ch, s, op);
	j = s != NULL ? sub_index(s, ch) : -1;
	if (j < 0)
		return; /* cannot happen: leaving cancels; kept for safety */
	if (rc != 0) {
		subscribe_failed(hub, s, ch, op, rc);
		channel_close_if_empty(hub, ch);
		return;
	}
	if (!s->kicked) {
		op->dialect->complete(hub, s, op, 0, h);
		release_kept(hub, s, op, &h->pos);
	}
	j = sub_index(s, ch);
	sub_member(s, (uint32_t)j)->catching_up = false;
	if (s->kicked) {
		/* Closing already (its queue overflowed): it does not join. */
		sub_remove(s, (uint32_t)j);
		channel_close_if_empty(hub, ch);
		return;
	}
	if (ch->ns->presence) {
		int prc;

		member_of(s, &m);
		prc = engine_presence_add(hub->engine, ch->name, ch->name_len, &m,
					  ch->ns->join_leave);
		if (prc != 0)
			log_warn("hub: client=%s presence in %s not recorded: %s", s->client,
				 ch->name, strerror(-prc));
		events_client(hub, "member_joined", s, ch->name, ch->name_len);
	}
}

void
hub_op_complete(void *arg, int rc, const void *result)
{
	struct pending *op = arg;
	struct hub *hub = op->hub;
	struct session *s;

	switch (op->kind) {
	case PENDING_CHANNEL:
		on_channel_live(hub, op, rc);
		break;
	case PENDING_SUBSCRIBE:
		on_subscribe_answer(hub, op, rc, result);
		break;
	case PENDING_BACKEND:
		backend_complete(hub, op, rc, result);
		return; /* backend.c finishes its operations itself (some take two calls) */
	case PENDING_PUBLISH:
		if (rc == 0)
			hub->stats.published_client++;
		/* fallthrough */
	case PENDING_HISTORY:
	case PENDING_PRESENCE:
	case PENDING_PRESENCE_STATS:
		s = hub_session_find(hub, op->session);
		if (s != NULL && !s->kicked)
			op->dialect->complete(hub, s, op, rc, result);
		break;
	}
	hub_op_done(hub, op);
}

/* ---- subscriptions ---- */

void
hub_subscribe(struct hub *hub, struct session *s, const json_t *id, const char *channel, size_t len,
	      const struct ns_policy *ns, const struct engine_history_query *req)
{
	struct pending *op = hub_op_new(hub, PENDING_SUBSCRIBE, s, id, channel, len);
	struct channel *ch;

	if (op == NULL)
		return;
	op->q = *req;
	if (req->has_since)
		pending_set_since(op, req->since_epoch);
	ch = channel_open(hub, channel, len, ns);
	if (ch->engine_rc != 0) {
		/* The engine refused the channel before anyone joined it. */
		if (!s->kicked)
			op->dialect->complete(hub, s, op, ch->engine_rc, NULL);
		hub_op_done(hub, op);
		channel_close_if_empty(hub, ch);
		return;
	}
	op->channel_serial = ch->serial;
	catchup_link(ch, s, sub_add(s, ch, true), op);
	if (ch->live)
		request_history(hub, op);
}

/* Ends s->subs[j]. A subscription still catching up is cancelled; with answer, its
 * subscribe is answered -ECANCELED (the dialect tells the client it was unsubscribed
 * before it completed); a closing session is told nothing. */
static void
leave(struct hub *hub, struct session *s, uint32_t j, bool answer)
{
	struct channel *ch = s->subs[j].ch;
	bool catching_up = sub_member(s, j)->catching_up;
	struct engine_member m;
	struct pending *op = s->subs[j].catchup;

	if (catching_up && op != NULL) {
		catchup_unlink(ch, s, op);
		op->cancelled = true;
		if (answer && !s->kicked)
			op->dialect->complete(hub, s, op, -ECANCELED, NULL);
		if (!op->requested)
			hub_op_done(hub, op); /* no engine call answers it */
		else
			pending_drop_kept(op); /* not held until the late answer */
	}
	sub_remove(s, j);
	if (!catching_up && ch->ns->presence) {
		member_of(s, &m);
		engine_presence_remove(hub->engine, ch->name, ch->name_len, &m, ch->ns->join_leave);
		events_client(hub, "member_left", s, ch->name, ch->name_len);
	}
	channel_close_if_empty(hub, ch);
}

void
hub_leave(struct hub *hub, struct session *s, uint32_t j)
{
	leave(hub, s, j, true);
}

void
hub_replay(struct hub *hub, struct session *s, struct message *const *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct frame *f = replay_frame(hub, s->dialect, msgs[i]);

		if (session_enqueue(s, f)) {
			hub->stats.replayed++;
			hub->stats.delivered++;
		}
		frame_unref(f);
	}
}

/* ---- fan-out (engine callbacks) ---- */

/* Keeps msg or f for a catching-up subscriber, within its queue's bounds: one that
 * cannot take them is a slow consumer like any other. */
static void
keep(const struct member *mb, struct message *msg, struct frame *f, const char *reset_epoch)
{
	struct session *s = mb->s;
	struct pending *op = s->subs[mb->sub_idx].catchup;
	size_t bytes = msg != NULL ? message_size(msg) : frame_wire_len(f);

	if (op == NULL || s->kicked)
		return;
	if (!session_has_room(s, op->nkept + 1, op->kept_bytes + bytes)) {
		log_warn("session: client=%s queue full while catching up (%zu kept), closing",
			 s->client, op->nkept);
		session_kick(s, PROTO_CLOSE_SLOW_CONSUMER, "slow consumer");
		return;
	}
	pending_keep(op, msg, f, bytes, reset_epoch);
}

/* Fan-out: one reference of the same frame per local subscriber of a dialect. */
static void
on_deliver(void *arg, struct message *msg)
{
	struct hub *hub = arg;
	struct frame *f[DIALECT_MAX] = { NULL };
	struct channel *ch;
	size_t clen;
	const char *name = message_channel(msg, &clen);

	if (hub->events.emit != NULL)
		events_message(hub, msg);
	ch = channel_find(hub, name, clen);
	if (ch == NULL)
		return;
	for (uint32_t i = 0; i < ch->nmembers; i++) {
		struct member *mb = &ch->members[i];

		if (mb->catching_up) {
			keep(mb, msg, NULL, NULL);
			continue;
		}
		if (f[mb->dialect] == NULL)
			f[mb->dialect] = xcheck(mb->s->dialect->encode_message(msg));
		hub->stats.delivered += session_enqueue(mb->s, f[mb->dialect]);
	}
	for (unsigned d = 0; d < DIALECT_MAX; d++)
		frame_unref(f[d]);
}

/* join/leave: to every local subscriber but the member itself. */
static void
on_presence_event(void *arg, const char *channel, size_t clen, bool join,
		  const struct engine_member *m)
{
	struct hub *hub = arg;
	struct channel *ch = channel_find(hub, channel, clen);
	struct frame *f[DIALECT_MAX] = { NULL };

	if (ch == NULL)
		return;
	for (uint32_t i = 0; i < ch->nmembers; i++) {
		struct member *mb = &ch->members[i];

		if (strcmp(mb->s->client, m->client) == 0)
			continue;
		if (f[mb->dialect] == NULL)
			f[mb->dialect] =
				xcheck(mb->s->dialect->encode_join_leave(ch->name, clen, join, m));
		if (mb->catching_up)
			keep(mb, NULL, f[mb->dialect], NULL);
		else
			hub->stats.join_leave += session_enqueue(mb->s, f[mb->dialect]);
	}
	for (unsigned d = 0; d < DIALECT_MAX; d++)
		frame_unref(f[d]);
}

/* A channel's history was dropped: every local subscriber learns the new epoch, in
 * order with its messages, so that offset tracking goes on from offset. */
static void
on_reset_event(void *arg, const char *channel, size_t clen, uint64_t offset, const char *epoch)
{
	struct hub *hub = arg;
	struct channel *ch = channel_find(hub, channel, clen);
	struct frame *f[DIALECT_MAX] = { NULL };

	if (ch == NULL)
		return;
	for (uint32_t i = 0; i < ch->nmembers; i++) {
		struct member *mb = &ch->members[i];

		if (f[mb->dialect] == NULL)
			f[mb->dialect] =
				xcheck(mb->s->dialect->encode_reset(ch->name, clen, offset, epoch));
		if (mb->catching_up)
			keep(mb, NULL, f[mb->dialect], epoch);
		else
			session_enqueue(mb->s, f[mb->dialect]);
	}
	for (unsigned d = 0; d < DIALECT_MAX; d++)
		frame_unref(f[d]);
}

/* ---- sessions ---- */

void
hub_session_receive(struct hub *hub, struct session *s, const char *buf, size_t len,
		    uint64_t now_ms)
{
	if (s->kicked)
		return;
	hub->now_ms = now_ms;
	s->dialect->receive(hub, s, buf, len);
}

struct session *
hub_session_open(struct hub *hub, const struct dialect *d, const struct session_ops *ops,
		 void *conn, uint64_t now_ms)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->ops = ops;
	s->dialect = d;
	s->conn = conn;
	s->stats = &hub->stats;
	s->serial = ++hub->next_serial;
	snprintf(s->client, sizeof(s->client), "%s-%" PRIu64, hub->node, s->serial);
	s->qmax_len = hub->cfg.limits.send_queue_messages;
	s->qmax_bytes = hub->cfg.limits.send_queue_bytes;
	s->opened_ms = now_ms;
	pend_add(hub, s);
	map_add(hub->serials, (const char *)&s->serial, sizeof(s->serial), s);
	hub->nsessions++;
	return s;
}

void
hub_session_identified(struct hub *hub, struct session *s)
{
	s->connected = true;
	free(s->url_token);
	s->url_token = NULL;
	s->from = xcheck(proto_encode_from(s->client, s->user, &s->from_len));
	pend_remove(hub, s);
	map_add(hub->sessions, s->client, strlen(s->client), s);
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
		leave(hub, s, s->nsubs - 1, false);
	pend_remove(hub, s);
	map_remove(hub->serials, (const char *)&s->serial, sizeof(s->serial));
	if (s->connected) {
		map_remove(hub->sessions, s->client, strlen(s->client));
		events_client(hub, "client_disconnected", s, NULL, 0);
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

/* ---- lifecycle ---- */

struct hub *
hub_new_with_engine(const struct core_config *cfg, const uint8_t seed[16], engine_factory_fn make)
{
	struct hub *hub = xcalloc(1, sizeof(*hub));
	struct engine_callbacks cb = {
		.deliver = on_deliver,
		.presence_event = on_presence_event,
		.reset_event = on_reset_event,
		.arg = hub,
	};
	struct engine_config ec = { .history_memory = cfg->limits.history_memory };

	hub->cfg = *cfg;
	hub->engine = make != NULL ? make(&cb, &ec, seed) : engine_new(cfg->engine, &cb, &ec, seed);
	if (hub->engine == NULL) {
		free(hub);
		return NULL;
	}
	hub->channels = map_new(seed);
	hub->sessions = map_new(seed);
	hub->serials = map_new(seed);
	hub->replay = replay_cache_new(seed);
	hub->pending = pending_table_new(seed);
	/* A hash under the seed, not seed bytes: client ids are public, the key is not. */
	snprintf(hub->node, sizeof(hub->node), "%012" PRIx64,
		 (uint64_t)(map_siphash(seed, "node", 4) & 0xffffffffffffu));
	snprintf(hub->server, sizeof(hub->server), "switchboard/%s", SWITCHBOARD_VERSION);
	return hub;
}

struct hub *
hub_new(const struct core_config *cfg, const uint8_t seed[16])
{
	return hub_new_with_engine(cfg, seed, NULL);
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
	/* Sessions are closed by the transport first, which empties every channel. The
	 * engine cancels what is still in flight (a server-side caller still there gets
	 * -ECANCELED), then the table goes. */
	engine_free(hub->engine);
	pending_table_free(hub->pending);
	map_free(hub->channels);
	map_free(hub->sessions);
	map_free(hub->serials);
	replay_cache_free(hub->replay);
	free(hub);
}

static void
expire_token(void *arg, const char *key, size_t len, void *value)
{
	struct hub *hub = arg;
	struct session *s = value;

	(void)key, (void)len;
	/* The verifier accepts a token until exp + leeway: close at the same moment. */
	if (s->exp == 0 || s->exp + (int64_t)hub->cfg.jwt_leeway > hub->now_unix || s->kicked)
		return;
	s->exp = 0;
	log_debug("hub: client=%s user=%s token expired, closing", s->client, s->user);
	session_send_error(s, NULL, PROTO_ERR_TOKEN_EXPIRED,
			   "the token expired; connect again with a new one");
	session_kick(s, PROTO_CLOSE_TOKEN_EXPIRED, "token expired");
}

void
hub_tick(struct hub *hub, uint64_t now_ms)
{
	uint64_t limit = (uint64_t)hub->cfg.connect_timeout * 1000;
	struct session *s;

	hub->now_ms = now_ms;
	/* The list is in open order, so the first young session ends the scan. */
	while ((s = hub->pend_head) != NULL && now_ms - s->opened_ms >= limit) {
		pend_remove(hub, s);
		log_debug("hub: client=%s did not connect within %us, closing", s->client,
			  hub->cfg.connect_timeout);
		session_kick(s, PROTO_CLOSE_CONNECT_TIMEOUT, "connect timeout");
	}
	/* Only token-identified sessions expire, and without a verifier there are none:
	 * skip the scan of every session then. */
	if (hub->auth.verify != NULL && hub->auth.now != NULL) {
		hub->now_unix = hub->auth.now(hub->auth.arg);
		map_foreach(hub->sessions, expire_token, hub);
	}
	engine_tick(hub->engine, now_ms);
	replay_cache_clear(hub->replay);
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

size_t
hub_pending_count(const struct hub *hub)
{
	return pending_count(hub->pending);
}
