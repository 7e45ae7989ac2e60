/* wsout.h: the WebSocket write path. Frames carry their own WebSocket header
 * (frame.h), so everything queued for a socket is copied into the worker's one batch
 * buffer and leaves in a single LWS_WRITE_RAW: one send() for many messages, each
 * shared frame copied once per socket, never re-encoded. A session whose queue becomes
 * non-empty goes on its worker's dirty list; after each lws_service() pass wsout_flush()
 * writes every dirty session. The dirty list holds borrowed connections: a connection
 * leaves it (wsout_dirty_remove) before it closes. */
#ifndef SWITCHBOARD_WSOUT_H
#define SWITCHBOARD_WSOUT_H

struct worker;
struct ws_conn;

/* session_ops.wake: conn (a struct ws_conn) has frames queued; it is written after
 * this loop pass. Never writes or frees anything itself. */
void wsout_wake(void *conn);
/* Takes c off its worker's dirty list (no-op if it is not on it). */
void wsout_dirty_remove(struct ws_conn *c);
/* After each lws_service() pass: one direct write (up to NET_FLUSH_BATCHES batches)
 * per session that got frames; what cannot be written now waits for WRITEABLE. A
 * connection whose write fails is dropped through its timeout. */
void wsout_flush(struct worker *w);
/* LWS_CALLBACK_SERVER_WRITEABLE: the rest of the queue, or the close frame of a
 * connection that is closing. Returns the callback's result. */
int wsout_writeable(struct ws_conn *c);
/* Sends the close frame with code and reason (a string constant) once: sets the close
 * reason and returns -1 (lws then closes); later calls only return -1. */
int wsout_close(struct ws_conn *c, int code, const char *reason);

#endif
