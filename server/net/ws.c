/* ws.c: the WebSocket endpoint. Translates lws events into hub_/session_ calls and
 * writes each session's queued frames.
 *
 * Write path: frames carry their own WebSocket header (frame.h), so everything queued
 * for a socket is copied into one batch and written with a single LWS_WRITE_RAW, i.e.
 * one send() for many messages (../shared/notes/lws-coalescing.md, variant (a)).
 *
 * Writes happen from the loop, not from WRITEABLE (variant (f)): a session whose queue
 * becomes non-empty goes on the server's dirty list, and after each lws_service() pass
 * ws_flush() writes every dirty session once. That batches exactly what one loop
 * iteration produced and saves a poll() round trip per wake. A direct write is made only
 * when lws holds no unsent tail of an earlier write (lws_partial_buffered) and the
 * connection is not closing; otherwise, and when frames are left over after a full
 * batch, the session falls back to WRITEABLE, where lws guarantees its tail has drained.
 * We never mix lws-framed data writes with raw ones on a connection. Control frames
 * (ping, pong, close) are left to lws, which sends them only between our writes.
 */
#include "frame.h"
#include "hub.h"
#include "bucket.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "net.h"
#include "peer.h"
#include "proto.h"
#include "xalloc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/ioctl.h>

struct ws_conn {
	struct lws *wsi;
	struct server *srv;
	struct session *s;
	struct ws_conn *dirty_prev, *dirty_next; /* on srv->dirty while `dirty` */
	char *rx;                 /* reassembly of a fragmented message, or NULL */
	size_t rx_len, rx_cap;
	uint64_t valid_ms;        /* when lws was last told the peer is alive */
	uint64_t opened_ms;       /* ESTABLISHED */
	bool established;         /* CLOSED also fires for upgrades refused in FILTER */
	bool dirty;               /* frames queued since the last flush */
	bool closing;             /* kicked: close at the next WRITEABLE */
	bool close_sent;          /* lws may deliver WRITEABLE again while closing */
	bool peer_closed;         /* the peer's close frame arrived: write no more data */
	bool flush_first;         /* write what is queued before the close frame */
	bool write_failed;        /* a write failed: the connection is dropped */
	uint16_t close_code;
	const char *close_reason; /* a string constant (session_kick callers) */
	uint16_t peer_code;       /* the peer's close frame: its code, 1005 without one */
	char *peer_reason;        /* and its reason, cleaned for the log: owned, or NULL
				   * (allocated only then: every connection pays for a
				   * pointer, not for the text) */
	char ip[48];              /* client address (peer.h), counted in srv->ip_conns */
};

size_t
ws_conn_size(void)
{
	return sizeof(struct ws_conn);
}

static struct server *
server_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* ---- session_ops ---- */

static void
dirty_add(struct ws_conn *c)
{
	struct server *srv = c->srv;

	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_prev = NULL;
	c->dirty_next = srv->dirty;
	if (srv->dirty != NULL)
		srv->dirty->dirty_prev = c;
	srv->dirty = c;
}

static void
dirty_remove(struct ws_conn *c)
{
	if (!c->dirty)
		return;
	if (c->dirty_prev != NULL)
		c->dirty_prev->dirty_next = c->dirty_next;
	else
		c->srv->dirty = c->dirty_next;
	if (c->dirty_next != NULL)
		c->dirty_next->dirty_prev = c->dirty_prev;
	c->dirty = false;
	c->dirty_prev = c->dirty_next = NULL;
}

/* The queue became non-empty: write it after this loop pass (ws_flush). */
static void
op_wake(void *conn)
{
	dirty_add(conn);
}

/* A close frame is on its way (ours, the peer's, or one lws started on a protocol
 * error, which it does without telling us): no data may follow it. */
static bool
ws_closing(struct ws_conn *c)
{
	return c->close_sent || c->peer_closed || lws_get_close_length(c->wsi) > 0;
}

/* Decides a close with code and reason (counted now), sent from WRITEABLE: after the
 * queued frames with flush, else at once. */
static void
close_later(struct ws_conn *c, int code, const char *reason, bool flush)
{
	metrics_close(&c->srv->metrics, code);
	c->closing = true;
	c->flush_first = flush;
	c->close_code = (uint16_t)code;
	c->close_reason = reason;
	dirty_remove(c);
	lws_callback_on_writable(c->wsi);
	/* A peer that stopped reading never makes the socket writable again: give the close
	 * a few seconds, then drop the connection without a close frame. */
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 3);
}

static void
op_kick(void *conn, int code, const char *reason, bool flush)
{
	struct ws_conn *c = conn;

	if (ws_closing(c)) {
		/* Already closing for another reason: that close is the one counted. */
		c->closing = true;
		dirty_remove(c);
		return;
	}
	close_later(c, code, reason, flush);
}

static const struct session_ops ws_session_ops = {
	.wake = op_wake,
	.kick = op_kick,
};

/* ---- events ---- */

static bool
path_is_endpoint(struct lws *wsi)
{
	char path[64];
	int n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);

	return n > 0 && (strcmp(path, "/ws") == 0 || strcmp(path, "/") == 0);
}

/* Browsers send Origin; a request without one (not a browser) is not refused here. */
static bool
origin_allowed(struct server *srv, struct lws *wsi, const char *ip)
{
	char origin[256], clean[128];
	size_t i;
	json_t *o;

	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
		return true;
	json_array_foreach(srv->cfg->allowed_origins, i, o)
		if (strcmp(json_string_value(o), "*") == 0 ||
		    strcasecmp(json_string_value(o), origin) == 0)
			return true;
	net_log_limited(srv, NET_LOG_ORIGIN, "ws: refusing upgrade from %s: origin %s not in "
			"allowed_origins", ip, log_clean(clean, sizeof(clean), origin, strlen(origin)));
	return false;
}

/* Per peer address: open WebSocket connections and the upgrade-rate bucket. Entries
 * outlive their connections for a while (ip_gc), or closing and reconnecting would
 * reset the rate limit. */
struct ip_entry {
	size_t conns;
	struct bucket rate;
	uint64_t last_ms;
};

static struct ip_entry *
ip_entry(struct server *srv, const char *ip)
{
	size_t len = strlen(ip);
	struct ip_entry *e = map_find(srv->ip_conns, ip, len);

	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		map_add(srv->ip_conns, ip, len, e);
	}
	e->last_ms = net_now_ms();
	return e;
}

static void
ip_adjust(struct server *srv, const char *ip, int delta)
{
	struct ip_entry *e = ip_entry(srv, ip);

	e->conns = (size_t)((ptrdiff_t)e->conns + delta);
}

/* Refuses an upgrade from client address ip past limits.max_connections_per_ip (503) or
 * past the address's connection rate (429). Returns 0, or 1 after answering. */
static int
ip_admit(struct server *srv, struct lws *wsi, const char *ip)
{
	const struct config_limits *l = &srv->cfg->limits;
	struct ip_entry *e;
	uint64_t retry_ms = 0;

	e = ip_entry(srv, ip);
	if (e->conns >= l->max_connections_per_ip) {
		net_log_limited(srv, NET_LOG_PER_IP_LIMIT,
				"ws: refusing upgrade from %s: limits.max_connections_per_ip reached", ip);
		srv->metrics.ws_refused[METRICS_REFUSED_PER_IP]++;
		return net_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "too_many_connections",
				  "too many connections from this address (limits.max_connections_per_ip)",
				  1);
	}
	if (!bucket_take(&e->rate, l->connect_rate_per_second, l->connect_rate_burst, net_now_ms(),
			 &retry_ms)) {
		net_log_limited(srv, NET_LOG_PER_IP_RATE,
				"ws: refusing upgrade from %s: limits.connection_rate_per_ip reached", ip);
		srv->metrics.ws_refused[METRICS_REFUSED_RATE]++;
		return net_refuse(wsi, 429, "rate_limited",
				  "connecting too fast from this address (limits.connection_rate_per_ip)",
				  (unsigned)((retry_ms + 999) / 1000));
	}
	return 0;
}

struct gc {
	struct server *srv;
	uint64_t now;
	char (*dead)[48];
	size_t n, cap;
};

static void
find_idle(void *arg, const char *key, size_t len, void *value)
{
	struct gc *g = arg;
	struct ip_entry *e = value;

	if (e->conns > 0 || g->now - e->last_ms < 60000 || len >= 48)
		return;
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->dead = xrealloc(g->dead, g->cap * sizeof(*g->dead));
	}
	memcpy(g->dead[g->n], key, len);
	g->dead[g->n++][len] = '\0';
}

void
ws_ip_gc(struct server *srv)
{
	struct gc g = { .srv = srv, .now = net_now_ms() };

	map_foreach(srv->ip_conns, find_idle, &g);
	for (size_t i = 0; i < g.n; i++)
		free(map_remove(srv->ip_conns, g.dead[i], strlen(g.dead[i])));
	free(g.dead);
}

static void
free_entry(void *arg, const char *key, size_t len, void *value)
{
	(void)arg, (void)key, (void)len;
	free(value);
}

void
ws_ip_fini(struct server *srv)
{
	map_foreach(srv->ip_conns, free_entry, NULL);
}

static int
on_filter(struct ws_conn *c, struct server *srv, struct lws *wsi)
{
	/* WebSocket over HTTP/2 would put our raw frames inside h2 DATA frames: refuse. */
	if (lws_get_network_wsi(wsi) != wsi) {
		srv->metrics.ws_refused[METRICS_REFUSED_PATH]++;
		return net_refuse(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
				  "WebSocket over HTTP/2 is not supported", 0);
	}
	if (!path_is_endpoint(wsi)) {
		srv->metrics.ws_refused[METRICS_REFUSED_PATH]++;
		return net_refuse(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
				  "no WebSocket endpoint here; use /ws", 0);
	}
	/* The per-session data exists from FILTER on (lws 4.1.6 allocates it first) and the
	 * headers only until ESTABLISHED: the client address is resolved once, here. */
	net_client_addr(srv, wsi, c->ip);
	if (!origin_allowed(srv, wsi, c->ip)) {
		srv->metrics.ws_refused[METRICS_REFUSED_ORIGIN]++;
		return net_refuse(wsi, HTTP_STATUS_FORBIDDEN, "forbidden",
				  "origin not allowed (allowed_origins)", 0);
	}
	if (ip_admit(srv, wsi, c->ip) != 0)
		return 1;
	if (srv->shutting_down || srv->connections >= srv->cfg->limits.max_connections) {
		if (srv->shutting_down)
			net_log_limited(srv, NET_LOG_DRAINING,
					"ws: refusing upgrade from %s: draining", c->ip);
		else
			net_log_limited(srv, NET_LOG_CAPACITY, "ws: refusing upgrade from %s: "
					"limits.max_connections reached (%zu open)", c->ip,
					srv->connections);
		srv->metrics.ws_refused[METRICS_REFUSED_CAPACITY]++;
		if (srv->shutting_down)
			return net_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "unavailable",
					  "the server is shutting down; connect to another node", 5);
		return net_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "unavailable",
				  "the server is at its connection limit (limits.max_connections)", 1);
	}
	return 0;
}

/* Browsers cannot set headers on a WebSocket: a token may come as ?token=. The headers
 * are gone after ESTABLISHED, so it is copied now. */
static void
take_url_token(struct ws_conn *c)
{
	char *buf = xmalloc(PROTO_TOKEN_MAX + 8);
	const char *v = lws_get_urlarg_by_name(c->wsi, "token=", buf, PROTO_TOKEN_MAX + 8);

	/* A token too long to keep is kept empty: connect then fails as unauthorized instead
	 * of connecting anonymously. */
	if (v != NULL && strlen(v) > 0)
		hub_session_set_url_token(c->s, v, strlen(v) <= PROTO_TOKEN_MAX ? strlen(v) : 0);
	free(buf);
}

static int
on_established(struct ws_conn *c, struct lws *wsi)
{
	c->wsi = wsi;
	c->srv = server_of(wsi);
	c->opened_ms = c->valid_ms = net_now_ms(); /* lws counts validity from here too */
	c->s = hub_session_open(c->srv->hub, &ws_session_ops, c, c->opened_ms);
	take_url_token(c);
	c->established = true;
	c->srv->connections++;
	c->srv->metrics.ws_opened++;
	ip_adjust(c->srv, c->ip, +1); /* c->ip was set in FILTER */
	log_info("ws: client=%s addr=%s connected", session_client_id(c->s), c->ip);
	return 0;
}

static int
close_with(struct ws_conn *c, int code, const char *reason)
{
	if (c->close_sent)
		return -1;
	c->close_sent = true; /* counted when the close was decided (op_kick, close_soon) */
	log_debug("ws: client=%s closing %d %s", session_client_id(c->s), code, reason);
	lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason,
			 strlen(reason));
	return -1;
}

/* Closes for a client error found while receiving. The close is made from WRITEABLE,
 * like a kick, rather than by returning -1 here: with the rest of a large frame still
 * arriving, lws 4.1.6 sometimes never sent the close frame asked for from RECEIVE (the
 * client then waited for lws's 5 s close timeout). Returns what RECEIVE returns. */
static int
close_soon(struct ws_conn *c, int code, const char *reason)
{
	if (c->closing || ws_closing(c))
		return 0;
	session_closing(c->s);
	close_later(c, code, reason, false);
	return 0;
}

/* The peer's close frame; in/len is its payload, which lws 4.1.6 echoes as its reply
 * unless we return -1, and then it sends the close reason set here instead. lws has
 * already replaced a code below 1000, 1004-1006 or 1012-2999 with 1002 in place, but it
 * echoes a 1-byte payload, a code of 5000 and above and a reason that is not UTF-8:
 * RFC 6455 (5.5.1, 7.4) makes each a protocol error. */
static int
on_peer_close(struct ws_conn *c, const unsigned char *in, size_t len)
{
	bool closing = ws_closing(c);
	unsigned code = len >= 2 ? (unsigned)in[0] << 8 | in[1] : 0;

	/* lws answers the close itself; data written now would follow our close reply. */
	c->peer_closed = true;
	dirty_remove(c);
	session_closing(c->s);
	if (closing)
		return 0; /* our own close frame is already on its way */
	if (len == 1 || code >= 5000)
		return close_with(c, LWS_CLOSE_STATUS_PROTOCOL_ERR, "invalid close frame");
	if (len > 2 && !proto_utf8_valid((const char *)in + 2, len - 2))
		return close_with(c, PROTO_CLOSE_INVALID_UTF8, "invalid UTF-8");
	return 0;
}

/* One complete text message. RFC 6455 requires failing the connection on invalid
 * UTF-8; we check it here rather than with lws's VALIDATE_UTF8, whose close we would not
 * see (and would keep writing after). */
static int
deliver(struct ws_conn *c, const char *buf, size_t len)
{
	if (!proto_utf8_valid(buf, len))
		return close_soon(c, PROTO_CLOSE_INVALID_UTF8, "invalid UTF-8");
	hub_session_receive(c->srv->hub, c->s, buf, len, net_now_ms());
	return 0;
}

/* Remembers this pass's readers for ws_read_more(). */
static void
note_rx(struct ws_conn *c)
{
	struct server *srv = c->srv;
	int fd = lws_get_socket_fd(c->wsi);

	if (lws_is_ssl(c->wsi) || (srv->nrx_fds > 0 && srv->rx_fds[srv->nrx_fds - 1] == fd))
		return;
	if (srv->nrx_fds < NET_RX_FDS)
		srv->rx_fds[srv->nrx_fds++] = fd;
}

bool
ws_read_more(struct server *srv, uint64_t until)
{
	int fds[NET_RX_FDS];
	unsigned n = 0;

	if (srv->metrics.bytes_in >= until) {
		srv->nrx_fds = 0;
		return false;
	}
	for (unsigned i = 0; i < srv->nrx_fds; i++) {
		int bytes = 0;

		if (ioctl(srv->rx_fds[i], FIONREAD, &bytes) == 0 && bytes > 0)
			fds[n++] = srv->rx_fds[i];
	}
	srv->nrx_fds = 0;
	/* Only these sockets: a full lws_service() pass would poll() every connection. */
	for (unsigned i = 0; i < n && srv->metrics.bytes_in < until; i++) {
		struct lws_pollfd p = { .fd = fds[i], .events = POLLIN, .revents = POLLIN };

		lws_service_fd(srv->ctx, &p);
	}
	return n > 0 && srv->metrics.bytes_in < until;
}

static int
on_receive(struct ws_conn *c, const char *in, size_t len)
{
	size_t max = c->srv->cfg->limits.max_message_size;
	bool complete = lws_is_final_fragment(c->wsi) && lws_remaining_packet_payload(c->wsi) == 0;
	uint64_t now;
	int rc;

	if (c->closing || c->close_sent)
		return 0;
	/* Any traffic proves the peer alive, not only pongs (docs/protocol.md, Liveness).
	 * Telling lws re-inserts the connection's timer into a list sorted over every
	 * connection (O(connections)), so a busy publisher does it once a second at most:
	 * the ping and idle timeouts count in seconds anyway. */
	now = net_now_ms();
	if (now - c->valid_ms >= 1000) {
		c->valid_ms = now;
		lws_validity_confirmed(c->wsi);
	}
	c->srv->metrics.bytes_in += len;
	note_rx(c);
	if (complete)
		c->srv->metrics.frames_in++;
	if (lws_frame_is_binary(c->wsi))
		return close_soon(c, PROTO_CLOSE_UNSUPPORTED, "binary frames are not supported");
	if (c->rx_len + len + lws_remaining_packet_payload(c->wsi) > max)
		return close_soon(c, PROTO_CLOSE_TOO_BIG, "message too big");
	if (complete && c->rx == NULL)
		return deliver(c, in, len); /* the common case: decoded in place */
	/* Sized for the whole frame at once when lws says how much of it remains, never
	 * past the largest message (want is at most max after the check above). */
	if (c->rx == NULL || c->rx_len + len > c->rx_cap) {
		size_t want = c->rx_len + len + lws_remaining_packet_payload(c->wsi);

		c->rx_cap = want > c->rx_cap * 2 ? want : c->rx_cap * 2;
		if (c->rx_cap > max)
			c->rx_cap = max;
		c->rx = xrealloc(c->rx, c->rx_cap > 0 ? c->rx_cap : 1);
	}
	if (len > 0)
		memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!complete)
		return 0;
	rc = deliver(c, c->rx, c->rx_len);
	free(c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
	return rc;
}

/* Writes what is queued: one raw write of as many whole frames as fit in a batch, or
 * the first frame alone (from its own buffer) when it is larger than a batch. Returns
 * -1 if the connection failed, else 0; frames may be left for a later write. */
static int
write_batch(struct ws_conn *c)
{
	struct session *s = c->s;
	struct server *srv = c->srv;
	size_t qlen = session_queued(s), n = 0, count = 0;
	unsigned char *out = srv->batch;
	int rc;

	for (; count < qlen; count++) {
		size_t flen;
		const unsigned char *wire = frame_wire(session_peek(s, count), &flen);

		if (n + flen > NET_BATCH_MAX)
			break;
		memcpy(out + n, wire, flen);
		n += flen;
	}
	if (count == 0) {
		out = (unsigned char *)frame_wire(session_peek(s, 0), &n);
		count = 1;
	}
	rc = lws_write(c->wsi, out, n, LWS_WRITE_RAW);
	if (rc < (int)n) {
		log_debug("ws: client=%s write failed, closing", session_client_id(s));
		c->write_failed = true;
		return -1;
	}
	metrics_write(&srv->metrics, qlen, count, n);
	session_pop(s, count);
	return 0;
}

static int
on_writeable(struct ws_conn *c)
{
	size_t qlen;

	/* lws keeps calling WRITEABLE while it awaits the peer's close reply: write nothing
	 * after our close frame, and do not return -1, which would drop the connection with
	 * the client's unread data (an RST that can discard the close frame itself). */
	if (ws_closing(c))
		return 0;
	qlen = session_queued(c->s);
	if (c->closing && (!c->flush_first || qlen == 0))
		return close_with(c, c->close_code, c->close_reason);
	if (qlen == 0)
		return 0;
	if (write_batch(c) != 0)
		return -1;
	if (session_queued(c->s) > 0 || c->closing)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* After each lws_service() pass: one direct write per session that got frames. */
void
ws_flush(struct server *srv)
{
	struct ws_conn *c;

	while ((c = srv->dirty) != NULL) {
		dirty_remove(c);
		if (c->closing || session_queued(c->s) == 0)
			continue;
		if (ws_closing(c)) {
			session_closing(c->s);
			continue;
		}
		/* More than one batch while the kernel takes each whole: a burst of input must
		 * not leave queues growing behind one batch per loop iteration. */
		for (int b = 0; b < NET_FLUSH_BATCHES && session_queued(c->s) > 0 &&
				!lws_partial_buffered(c->wsi); b++) {
			if (write_batch(c) != 0) {
				/* Outside a callback a connection is dropped through its timeout. */
				c->close_sent = true;
				lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
				break;
			}
		}
		if (!c->close_sent && session_queued(c->s) > 0)
			lws_callback_on_writable(c->wsi);
	}
}

/* Keeps the code and reason of the peer's close frame for the disconnect line (lws has
 * replaced some codes the peer may not send by 1002 in place). */
static void
note_peer_close(struct ws_conn *c, const unsigned char *in, size_t len)
{
	c->peer_code = len >= 2 ? (uint16_t)(in[0] << 8 | in[1]) : 1005;
	if (len <= 2 || c->peer_reason != NULL)
		return;
	c->peer_reason = xmalloc(64);
	log_clean(c->peer_reason, 64, (const char *)in + 2, len - 2);
}

/* lws 4.1.6 ends a connection silent past websocket.idle_timeout from its validity
 * timer (lws_validity_cb: a ping at ping_interval, then __lws_close_free_wsi with
 * LWS_CLOSE_STATUS_NOSTATUS, no close frame) and tells us nothing but CLOSED. valid_ms
 * follows every sign of life lws counts (the upgrade, our lws_validity_confirmed calls,
 * pongs), so a connection that ends with no close frame either way once that much time
 * has passed since is the idle timeout. */
static bool
idle_timed_out(struct ws_conn *c, uint64_t now)
{
	uint64_t idle_ms = (uint64_t)c->srv->idle_policy.secs_since_valid_hangup * 1000;

	return idle_ms > 0 && !c->closing && !c->close_sent && !c->peer_closed &&
	       !c->write_failed && lws_get_close_length(c->wsi) == 0 &&
	       now - c->valid_ms + 50 >= idle_ms;
}

/* The disconnect line: who ended the connection, with which code, and why. */
static void
log_closed(struct ws_conn *c, uint64_t now)
{
	const char *user = session_user(c->s);
	char how[200], ucopy[64];

	if (c->closing && c->close_code != 0)
		snprintf(how, sizeof(how), "closed by the server: %u %s%s", c->close_code,
			 c->close_reason, c->close_sent ? "" : " (its close frame was not sent)");
	else if (c->peer_closed)
		snprintf(how, sizeof(how), "closed by the peer: %u%s%s", c->peer_code,
			 c->peer_reason != NULL ? " " : "", c->peer_reason != NULL ? c->peer_reason : "");
	else if (c->write_failed)
		snprintf(how, sizeof(how), "dropped: a write failed");
	else if (lws_get_close_length(c->wsi) >= 2)
		snprintf(how, sizeof(how), "closed by the server: %u protocol violation",
			 (unsigned)lws_get_close_payload(c->wsi)[0] << 8 |
				 lws_get_close_payload(c->wsi)[1]);
	else if (idle_timed_out(c, now))
		snprintf(how, sizeof(how), "dropped: idle timeout (nothing received for %u s)",
			 (unsigned)c->srv->idle_policy.secs_since_valid_hangup);
	else
		snprintf(how, sizeof(how), "lost: the connection ended without a close frame");
	log_info("ws: client=%s addr=%s user=%s disconnected after %.1f s, %s",
		 session_client_id(c->s), c->ip,
		 user != NULL ? log_clean(ucopy, sizeof(ucopy), user, strlen(user)) : "-",
		 (double)(now - c->opened_ms) / 1000.0, how);
}

static void
on_closed(struct ws_conn *c)
{
	struct server *srv = c->srv;
	uint64_t now;

	if (!c->established)
		return;
	now = net_now_ms();
	if (idle_timed_out(c, now))
		srv->metrics.idle_timeouts++;
	if (LOG_INFO <= log_level_current)
		log_closed(c, now);
	dirty_remove(c);
	hub_session_close(srv->hub, c->s);
	ip_adjust(srv, c->ip, -1);
	free(c->rx);
	free(c->peer_reason);
	memset(c, 0, sizeof(*c));
	srv->connections--;
	if (srv->shutting_down && srv->connections == 0)
		lws_cancel_service(srv->ctx);
}

int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct ws_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return net_confirm_upgrade(in);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return on_filter(c, server_of(wsi), wsi);
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(c, wsi);
	case LWS_CALLBACK_RECEIVE:
		return on_receive(c, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		note_peer_close(c, in, len);
		return on_peer_close(c, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		c->valid_ms = net_now_ms(); /* lws confirmed validity itself */
		return 0;
	case LWS_CALLBACK_CLOSED:
		on_closed(c);
		return 0;
	default:
		/* Plain HTTP never reaches here (the "/" mount sends it to http_callback), but
		 * anything unhandled must still get an answer rather than hang. */
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
