/* ws.h: one WebSocket connection (struct ws_conn, lws's per-session data of the
 * "switchboard.v1" protocol) as ws.c (events, receive, close) and wsout.c (the write
 * path) both see it. The connection owns its reassembly buffer and its peer's close
 * reason; the session it carries is the transport's (opened at ESTABLISHED, closed at
 * CLOSED, STYLE.md §4); the worker is borrowed. Only ws.c and wsout.c include this. */
#ifndef SWITCHBOARD_WS_H
#define SWITCHBOARD_WS_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct worker;

struct ws_conn {
	struct lws *wsi;
	struct worker *w; /* borrowed: the loop this connection is on */
	struct session *s;
	struct ws_conn *dirty_prev, *dirty_next; /* on w->dirty while `dirty` (wsout.c) */
	struct ws_conn *live_prev, *live_next;	 /* on w->live_head/live_tail[live_stage] (ws.c) */
	char *rx;				 /* reassembly of a fragmented message, or NULL */
	size_t rx_len, rx_cap;
	uint64_t valid_ms;  /* the peer's last sign of life (upgrade, frame, pong) */
	uint64_t opened_ms; /* ESTABLISHED */
	bool established;   /* CLOSED also fires for upgrades refused in FILTER */
	bool dirty;	    /* frames queued since the last flush */
	bool closing;	    /* kicked: close at the next WRITEABLE */
	bool close_sent;    /* lws may deliver WRITEABLE again while closing */
	bool peer_closed;   /* the peer's close frame arrived: write no more data */
	bool flush_first;   /* write what is queued before the close frame */
	bool write_failed;  /* a write failed: the connection is dropped */
	bool ping_due;	    /* a ping leaves at the head of the next write (wsout.c) */
	bool idle_dropped;  /* silent past websocket.idle_timeout: dropped */
	uint8_t live_stage; /* WS_LIVE_QUIET or WS_LIVE_PINGED (ws.c) */
	uint16_t close_code;
	const char *close_reason; /* a string constant (session_kick callers) */
	uint16_t peer_code;	  /* the peer's close frame: its code, 1005 without one */
	char *peer_reason;	  /* and its reason, cleaned for the log: owned, or NULL
				   * (allocated only then: every connection pays for a
				   * pointer, not for the text) */
	char ip[48];		  /* client address (peer.h), counted by admit.c */
};

/* Liveness (docs/protocol.md): a connection waits on one of two lists of its worker,
 * each in the order its members joined (so both are sorted by deadline and every
 * change is O(1)): QUIET until websocket.ping_interval has passed since its last sign of
 * life, then PINGED until websocket.idle_timeout has. */
enum { WS_LIVE_QUIET, WS_LIVE_PINGED }; /* worker.h sizes its two lists */

/* A close frame is on its way (ours, the peer's, or one lws started on a protocol
 * error, which it does without telling us): no data may follow it. */
static inline bool
ws_closing(const struct ws_conn *c)
{
	return c->close_sent || c->peer_closed || lws_get_close_length(c->wsi) > 0;
}

/* The "switchboard.v1" protocol callback, and the bytes of per-connection state lws
 * must reserve for it. */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		size_t len);
size_t ws_conn_size(void);

/* Reads on from the sockets read during the last pass that have more bytes waiting in
 * the kernel (lws reads at most rx_buffer_size per socket and pass), so one flush
 * batches more messages; stops once w->metrics.bytes_in reaches until. Returns false
 * when none had more (or the budget is spent). TLS connections are not read on: lws
 * reads them a whole record at a time already. */
bool ws_read_more(struct worker *w, uint64_t until);
/* Pings the connections quiet for websocket.ping_interval and drops those silent for
 * websocket.idle_timeout, as of now (ms, clock.h). O(1) when nobody is due. */
void ws_liveness(struct worker *w, uint64_t now);

#endif
