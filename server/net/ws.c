/* ws.c: the WebSocket endpoint ("switchboard.v1"). Translates lws events into hub_/
 * session_ calls: admission at FILTER (admit.c), the session's life from ESTABLISHED to
 * CLOSED, reassembly and decoding of what the client sends, the close handshake. What
 * the hub queues leaves through the write path (wsout.c). A connection belongs to the
 * worker whose vhost accepted it (c->w) and is served only by that worker's loop.
 */
#include "ws.h"
#include "admit.h"
#include "clock.h"
#include "dialect.h"
#include "config.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "proto.h"
#include "session.h"
#include "worker.h"
#include "wsout.h"
#include "xalloc.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

size_t
ws_conn_size(void)
{
	return sizeof(struct ws_conn);
}

/* ---- liveness (ws.h) ---- */

static void
live_remove(struct ws_conn *c)
{
	struct worker *w = c->w;
	unsigned k = c->live_stage;

	if (c->live_prev != NULL)
		c->live_prev->live_next = c->live_next;
	else if (w->live_head[k] == c)
		w->live_head[k] = c->live_next;
	else
		return; /* on no list */
	if (c->live_next != NULL)
		c->live_next->live_prev = c->live_prev;
	else
		w->live_tail[k] = c->live_prev;
	c->live_prev = c->live_next = NULL;
}

/* Appends c to list k: the newest member (QUIET ones join at valid_ms, PINGED ones in
 * the order QUIET ones come due), so both lists stay sorted by valid_ms. */
static void
live_append(struct ws_conn *c, unsigned k)
{
	struct worker *w = c->w;

	c->live_stage = (uint8_t)k;
	c->live_next = NULL;
	c->live_prev = w->live_tail[k];
	if (w->live_tail[k] != NULL)
		w->live_tail[k]->live_next = c;
	else
		w->live_head[k] = c;
	w->live_tail[k] = c;
}

/* A sign of life: quiet again from now. A busy connection moves at most once a second
 * (the timeouts count in seconds), which keeps its place in the list exact enough. */
static void
live_confirm(struct ws_conn *c, uint64_t now)
{
	if (c->live_stage == WS_LIVE_QUIET && now - c->valid_ms < 1000)
		return;
	c->valid_ms = now;
	live_remove(c);
	live_append(c, WS_LIVE_QUIET);
}

void
ws_liveness(struct worker *w, uint64_t now)
{
	struct ws_conn *c;

	if (w->idle_ms == 0)
		return;
	while ((c = w->live_head[WS_LIVE_QUIET]) != NULL && now - c->valid_ms >= w->ping_ms) {
		live_remove(c);
		live_append(c, WS_LIVE_PINGED);
		/* The ping leaves with the next write: at the head of a batch, between whole
		 * frames (wsout.c). */
		c->ping_due = true;
		wsout_wake(c);
	}
	while ((c = w->live_head[WS_LIVE_PINGED]) != NULL && now - c->valid_ms >= w->idle_ms) {
		live_remove(c);
		c->idle_dropped = true;
		log_debug("ws: client=%s silent for %" PRIu64 " ms, dropping",
			  session_client_id(c->s), now - c->valid_ms);
		/* No close frame: a peer this silent is most likely gone. Outside a callback a
		 * connection is ended through its timeout. */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
}

/* ---- session_ops ---- */

/* Decides a close with code and reason (counted now), sent from WRITEABLE: after the
 * queued frames with flush, else at once. */
static void
close_later(struct ws_conn *c, int code, const char *reason, bool flush)
{
	metrics_close(&c->w->metrics, code);
	c->closing = true;
	c->flush_first = flush;
	c->close_code = (uint16_t)code;
	c->close_reason = reason;
	wsout_dirty_remove(c);
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
		wsout_dirty_remove(c);
		return;
	}
	close_later(c, code, reason, flush);
}

static const struct session_ops ws_session_ops = {
	.wake = wsout_wake, /* direct: one indirect call per wake, as before */
	.kick = op_kick,
};

/* ---- events ---- */

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
	c->w = worker_of(wsi);
	c->opened_ms = c->valid_ms = clock_now_ms();
	live_append(c, WS_LIVE_QUIET);
	c->s = hub_session_open(c->w->hub, &dialect_native, &ws_session_ops, c, c->opened_ms);
	take_url_token(c);
	c->established = true;
	c->w->connections++;
	c->w->metrics.ws_opened++;
	admit_count(c->w->srv, c->ip, +1); /* c->ip was set in FILTER */
	log_info("ws: client=%s addr=%s connected", session_client_id(c->s), c->ip);
	return 0;
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
	wsout_dirty_remove(c);
	session_closing(c->s);
	if (closing)
		return 0; /* our own close frame is already on its way */
	if (len == 1 || code >= 5000)
		return wsout_close(c, LWS_CLOSE_STATUS_PROTOCOL_ERR, "invalid close frame");
	if (len > 2 && !proto_utf8_valid((const char *)in + 2, len - 2))
		return wsout_close(c, PROTO_CLOSE_INVALID_UTF8, "invalid UTF-8");
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
	hub_session_receive(c->w->hub, c->s, buf, len, clock_now_ms());
	return 0;
}

/* Remembers this pass's readers for ws_read_more(). */
static void
note_rx(struct ws_conn *c)
{
	struct worker *w = c->w;
	int fd = lws_get_socket_fd(c->wsi);

	if (lws_is_ssl(c->wsi) || (w->nrx_fds > 0 && w->rx_fds[w->nrx_fds - 1] == fd))
		return;
	if (w->nrx_fds < NET_RX_FDS)
		w->rx_fds[w->nrx_fds++] = fd;
}

bool
ws_read_more(struct worker *w, uint64_t until)
{
	int fds[NET_RX_FDS];
	unsigned n = 0;

	if (w->metrics.bytes_in >= until) {
		w->nrx_fds = 0;
		return false;
	}
	for (unsigned i = 0; i < w->nrx_fds; i++) {
		int bytes = 0;

		if (ioctl(w->rx_fds[i], FIONREAD, &bytes) == 0 && bytes > 0)
			fds[n++] = w->rx_fds[i];
	}
	w->nrx_fds = 0;
	/* Only these sockets: a full lws_service() pass would poll() every connection. */
	for (unsigned i = 0; i < n && w->metrics.bytes_in < until; i++) {
		struct lws_pollfd p = { .fd = fds[i], .events = POLLIN, .revents = POLLIN };

		lws_service_fd(w->ctx, &p);
	}
	return n > 0 && w->metrics.bytes_in < until;
}

static int
on_receive(struct ws_conn *c, const char *in, size_t len)
{
	size_t max = c->w->srv->cfg->limits.max_message_size;
	bool complete = lws_is_final_fragment(c->wsi) && lws_remaining_packet_payload(c->wsi) == 0;
	uint64_t now;
	int rc;

	if (c->closing || c->close_sent)
		return 0;
	/* Any traffic proves the peer alive, not only pongs (docs/protocol.md, Liveness). */
	now = clock_now_ms();
	live_confirm(c, now);
	c->w->metrics.bytes_in += len;
	note_rx(c);
	if (complete)
		c->w->metrics.frames_in++;
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
			 c->peer_reason != NULL ? " " : "",
			 c->peer_reason != NULL ? c->peer_reason : "");
	else if (c->write_failed)
		snprintf(how, sizeof(how), "dropped: a write failed");
	else if (lws_get_close_length(c->wsi) >= 2)
		snprintf(how, sizeof(how), "closed by the server: %u protocol violation",
			 (unsigned)lws_get_close_payload(c->wsi)[0] << 8 |
				 lws_get_close_payload(c->wsi)[1]);
	else if (c->idle_dropped)
		snprintf(how, sizeof(how), "dropped: idle timeout (nothing received for %u s)",
			 (unsigned)(c->w->idle_ms / 1000));
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
	struct worker *w = c->w;
	uint64_t now;

	if (!c->established)
		return;
	now = clock_now_ms();
	if (c->idle_dropped)
		w->metrics.idle_timeouts++;
	live_remove(c);
	if (LOG_INFO <= log_level_current)
		log_closed(c, now);
	wsout_dirty_remove(c);
	hub_session_close(w->hub, c->s);
	admit_count(w->srv, c->ip, -1);
	free(c->rx);
	free(c->peer_reason);
	memset(c, 0, sizeof(*c));
	w->connections--;
	/* A drain ends once nobody is left: wake the loop to notice (server.c). */
	if (w->srv->shutting_down && w->connections == 0)
		lws_cancel_service(w->ctx);
}

int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct ws_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return admit_confirm_upgrade(in);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* The per-session data exists from FILTER on (lws 4.1.6 allocates it first)
		 * and the headers only until ESTABLISHED: the address is resolved once, here. */
		return admit_upgrade(worker_of(wsi), wsi, c->ip);
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(c, wsi);
	case LWS_CALLBACK_RECEIVE:
		return on_receive(c, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return wsout_writeable(c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		note_peer_close(c, in, len);
		return on_peer_close(c, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		live_confirm(c, clock_now_ms());
		return 0;
	case LWS_CALLBACK_CLOSED:
		on_closed(c);
		return 0;
	default:
		/* Plain HTTP never reaches here (the "/" and "/api" mounts send it to
		 * http_callback and api_callback), but anything unhandled must still get an
		 * answer rather than hang. */
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
