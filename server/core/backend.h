/* backend.h: the server side (HTTP API) of the core: no session, the caller has checked
 * the API key. Operations return plain structs; rendering them (JSON, status codes) is
 * the caller's (server/net/api.c).
 *
 * Every call that reaches the engine completes through done exactly once, inline or
 * later, and returns a cookie: nonzero while the answer is outstanding (a caller that
 * goes away first passes it to backend_cancel(), and done is then never called), 0 when
 * done has already run. rc is 0, -ENOENT (the channel's namespace is refused), -EPERM
 * (presence or history is off in its namespace), -EMSGSIZE (data over
 * limits.max_data_size), or an engine error (-EIO, -EAGAIN, -ECANCELED, ...: the server
 * is unavailable). result is borrowed for the duration of done, NULL when rc != 0. */
#ifndef SWITCHBOARD_BACKEND_H
#define SWITCHBOARD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct hub;

typedef void (*backend_done_fn)(void *arg, int rc, const void *result);

/* Publishes data (the exact JSON text of a value) to channel as the server: the
 * namespace's publish rule does not apply. Answers struct engine_published. */
uint64_t backend_publish(struct hub *hub, const char *channel, size_t len, const char *data,
			 size_t data_len, uint64_t now_ms, backend_done_fn done, void *arg);

/* What backend_channel() answers. */
struct backend_channel {
	uint64_t subscribers; /* on this node */
	struct engine_position pos;
	bool has_presence;		       /* presence is on in its namespace */
	struct engine_presence_stats presence; /* if has_presence */
};
uint64_t backend_channel(struct hub *hub, const char *channel, size_t len, uint64_t now_ms,
			 backend_done_fn done, void *arg);

/* Answers struct engine_presence. */
uint64_t backend_presence(struct hub *hub, const char *channel, size_t len, backend_done_fn done,
			  void *arg);

/* Answers struct engine_history: limit 0 is every retained message; since_epoch NULL:
 * no since. */
uint64_t backend_history(struct hub *hub, const char *channel, size_t len, uint64_t limit,
			 const char *since_epoch, uint64_t since_offset, uint64_t now_ms,
			 backend_done_fn done, void *arg);

/* Drops the channel's history; answers the new struct engine_position. */
uint64_t backend_reset(struct hub *hub, const char *channel, size_t len, backend_done_fn done,
		       void *arg);

/* The caller of the operation with this cookie has gone: done is not called. */
void backend_cancel(struct hub *hub, uint64_t cookie);

/* ---- local (this node's sessions and channels), answered at once ---- */

#define BACKEND_LIST_MAX 10000

struct backend_channel_entry {
	const char *name; /* borrowed until the list's fini */
	size_t len;
	uint64_t subscribers;
};

struct backend_channel_list {
	struct backend_channel_entry *entries; /* owned, sorted by name */
	size_t count;
	bool truncated; /* more than BACKEND_LIST_MAX matched */
};

/* This node's channels whose name starts with prefix (plen bytes; 0: all). The list
 * borrows the channel names: use it before the hub changes. */
void backend_channels(struct hub *hub, const char *prefix, size_t plen,
		      struct backend_channel_list *out);
void backend_channel_list_fini(struct backend_channel_list *l);

/* Closes (4003) the connection with this client id, or every connection of user;
 * returns how many. */
size_t backend_disconnect_client(struct hub *hub, const char *client, size_t len);
size_t backend_disconnect_user(struct hub *hub, const char *user, size_t len);
/* Every connection of user leaves channel and is told so; returns how many. */
size_t backend_unsubscribe_user(struct hub *hub, const char *user, size_t len, const char *channel,
				size_t clen);

#endif
