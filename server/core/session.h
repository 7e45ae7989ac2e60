/* session.h: one client connection as the core sees it: protocol state, subscriptions
 * and a bounded queue of shared frames waiting to be written.
 *
 * The transport owns the session's lifetime: it opens it with hub_session_open() when
 * the WebSocket is established and closes it with hub_session_close(). The core asks for
 * I/O only through struct session_ops and never frees a session by itself: when it
 * decides a session must go (queue over its bound, connect timeout, shutdown) it calls
 * ops->kick() and the transport closes the connection later. */
#ifndef SWITCHBOARD_SESSION_H
#define SWITCHBOARD_SESSION_H

#include <stdbool.h>
#include <stddef.h>

struct frame;
struct session;

struct session_ops {
	/* Frames were queued to an empty queue: ask the transport for a write. */
	void (*wake)(void *conn);
	/* Close the connection with this WebSocket close code and reason, asynchronously.
	 * With flush, the frames already queued (such as the error explaining the close)
	 * are written first; without it (a slow consumer) they are dropped. reason is a
	 * string constant (kept by pointer). Called at most once per session. */
	void (*kick)(void *conn, int code, const char *reason, bool flush);
};

/* Queue access for the transport's write path. session_queued() frames are waiting;
 * session_peek(s, i) is the i-th (borrowed); session_pop(s, n) drops the first n. */
size_t session_queued(const struct session *s);
struct frame *session_peek(const struct session *s, size_t i);
void session_pop(struct session *s, size_t n);

/* True once the core has kicked the session: write nothing more to it. */
bool session_is_kicked(const struct session *s);
/* The transport is closing the connection on its own (a protocol error, the peer's
 * close): nothing more is queued, what is queued is released, and kick is not called. */
void session_closing(struct session *s);
/* The client id ("" before connect). */
const char *session_client_id(const struct session *s);
/* The user the client connected as ("" for an anonymous one without a user), or NULL
 * before connect. */
const char *session_user(const struct session *s);

#endif
