/* wsout.c: the WebSocket write path (wsout.h).
 *
 * Write path: frames carry their own WebSocket header (frame.h), so everything queued
 * for a socket is copied into one batch and written with a single LWS_WRITE_RAW, i.e.
 * one send() for many messages (../shared/notes/lws-coalescing.md, variant (a)).
 *
 * Writes happen from the loop, not from WRITEABLE (variant (f)): a session whose queue
 * becomes non-empty goes on the worker's dirty list, and after each lws_service() pass
 * wsout_flush() writes every dirty session once. That batches exactly what one loop
 * iteration produced and saves a poll() round trip per wake. A direct write is made only
 * when lws holds no unsent tail of an earlier write (lws_partial_buffered) and the
 * connection is not closing; otherwise, and when frames are left over after a full
 * batch, the session falls back to WRITEABLE, where lws guarantees its tail has drained.
 * We never mix lws-framed data writes with raw ones on a connection. Our pings (ws.c,
 * liveness) lead a batch, between whole frames; the other control frames (pong, close)
 * are left to lws, which sends them only between our writes.
 */
#include "wsout.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "worker.h"
#include "ws.h"

#include <string.h>

static void
dirty_add(struct ws_conn *c)
{
	struct worker *w = c->w;

	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_prev = NULL;
	c->dirty_next = w->dirty;
	if (w->dirty != NULL)
		w->dirty->dirty_prev = c;
	w->dirty = c;
}

void
wsout_dirty_remove(struct ws_conn *c)
{
	if (!c->dirty)
		return;
	if (c->dirty_prev != NULL)
		c->dirty_prev->dirty_next = c->dirty_next;
	else
		c->w->dirty = c->dirty_next;
	if (c->dirty_next != NULL)
		c->dirty_next->dirty_prev = c->dirty_prev;
	c->dirty = false;
	c->dirty_prev = c->dirty_next = NULL;
}

/* The queue became non-empty: write it after this loop pass (wsout_flush). */
void
wsout_wake(void *conn)
{
	dirty_add(conn);
}

int
wsout_close(struct ws_conn *c, int code, const char *reason)
{
	if (c->close_sent)
		return -1;
	c->close_sent = true; /* counted when the close was decided (op_kick, close_soon) */
	log_debug("ws: client=%s closing %d %s", session_client_id(c->s), code, reason);
	lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason,
			 strlen(reason));
	return -1;
}

/* Writes what is queued: one raw write of as many whole frames as fit in a batch, or
 * the first frame alone (from its own buffer) when it is larger than a batch. Returns
 * -1 if the connection failed, else 0; frames may be left for a later write. */
static int
write_batch(struct ws_conn *c)
{
	/* An unmasked ping (RFC 6455 §5.5.2). With a payload: lws 4.1.6 never reports a
	 * pong without one (ops-ws.c skips the callback), and the pong is what ws.c counts. */
	static const unsigned char ping[4] = { 0x89, 0x02, 's', 'b' };
	struct session *s = c->s;
	struct worker *w = c->w;
	size_t qlen = session_queued(s), n = 0, count = 0;
	unsigned char *out = w->batch;
	int rc;

	if (c->ping_due) {
		c->ping_due = false;
		memcpy(out, ping, sizeof(ping));
		n = sizeof(ping);
	}
	for (; count < qlen; count++) {
		size_t flen;
		const unsigned char *wire = frame_wire(session_peek(s, count), &flen);

		if (n + flen > NET_BATCH_MAX)
			break;
		memcpy(out + n, wire, flen);
		n += flen;
	}
	/* A frame larger than a batch leaves alone, from its own buffer (after the ping,
	 * if one is due: that write is the ping alone). */
	if (count == 0 && qlen > 0 && n == 0) {
		out = (unsigned char *)frame_wire(session_peek(s, 0), &n);
		count = 1;
	}
	rc = lws_write(c->wsi, out, n, LWS_WRITE_RAW);
	if (rc < (int)n)
		goto failed;
	if (count > 0) {
		metrics_write(&w->metrics, qlen, count, n);
		session_pop(s, count);
	}
	return 0;
failed:
	log_debug("ws: client=%s write failed, closing", session_client_id(s));
	c->write_failed = true;
	return -1;
}

int
wsout_writeable(struct ws_conn *c)
{
	size_t qlen;

	/* lws keeps calling WRITEABLE while it awaits the peer's close reply: write nothing
	 * after our close frame, and do not return -1, which would drop the connection with
	 * the client's unread data (an RST that can discard the close frame itself). */
	if (ws_closing(c))
		return 0;
	qlen = session_queued(c->s);
	if (c->closing && (!c->flush_first || qlen == 0))
		return wsout_close(c, c->close_code, c->close_reason);
	if (qlen == 0 && !c->ping_due)
		return 0;
	if (write_batch(c) != 0)
		return -1;
	if (session_queued(c->s) > 0 || c->closing)
		lws_callback_on_writable(c->wsi);
	return 0;
}

void
wsout_flush(struct worker *w)
{
	struct ws_conn *c;

	while ((c = w->dirty) != NULL) {
		wsout_dirty_remove(c);
		if (c->closing || (session_queued(c->s) == 0 && !c->ping_due))
			continue;
		if (ws_closing(c)) {
			session_closing(c->s);
			continue;
		}
		/* More than one batch while the kernel takes each whole: a burst of input must
		 * not leave queues growing behind one batch per loop iteration. */
		for (int b = 0;
		     b < NET_FLUSH_BATCHES && (session_queued(c->s) > 0 || c->ping_due) &&
		     !lws_partial_buffered(c->wsi);
		     b++) {
			if (write_batch(c) != 0) {
				/* Outside a callback a connection is dropped through its timeout.
				 */
				c->close_sent = true;
				lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND,
						LWS_TO_KILL_ASYNC);
				break;
			}
		}
		if (!c->close_sent && (session_queued(c->s) > 0 || c->ping_due))
			lws_callback_on_writable(c->wsi);
	}
}
