/* worker.h: one event loop and what only it touches: its lws context and listening
 * vhost, its hub (channels and sessions), its write path (dirty list, batch buffer), its
 * read-ahead state and its counters. A worker is served by one thread, so nothing here
 * is locked; what the whole process shares (configuration, API keys and quotas,
 * webhooks, TLS, signals, the drain, per-address limits) is struct server (net.h), which
 * a worker borrows. Today the process runs one worker.
 *
 * Callbacks find their worker with worker_of(): the listening vhost's user pointer is
 * its worker, the context's is the process (struct server). */
#ifndef SWITCHBOARD_WORKER_H
#define SWITCHBOARD_WORKER_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct hub;
struct server;
struct ws_conn;
struct ev_loop;

/* Most bytes one raw write carries: frames queued for a socket are copied together up
 * to this size and leave in one send(). */
#define NET_BATCH_MAX 65536
/* Sockets remembered per loop pass to see whether their sender has more queued. */
#define NET_RX_FDS 16
/* Extra reads made before a flush while input is still waiting (ws_read_more), and
 * the most client bytes one loop iteration takes in before it flushes: a publish can
 * grow several times into the frames it queues for every subscriber, and nothing is
 * written until the flush, so the budget keeps one flush's output near one batch. */
#define NET_MAX_EXTRA_PASSES 16
#define NET_READ_BUDGET 8192
/* How often the worker wakes by itself at most (µs): its liveness sweep (ws_liveness)
 * and an upper bound on how late an lws timer can fire on the libev loop (worker.c). */
#define NET_BEAT_US 50000
/* Batches wsout_flush() writes to one connection in a row while the kernel takes them. */
#define NET_FLUSH_BATCHES 4

struct worker {
	struct server *srv;		   /* borrowed: the process */
	struct hub *hub;		   /* owned */
	struct lws_context *ctx;	   /* owned, NULL until worker_listen() */
	struct lws_vhost *vhost;	   /* the listening vhost (its user is this worker) */
	struct lws_protocols protocols[5]; /* the vhost's (lws keeps pointing at them) */
	struct ev_loop *loop;		   /* owned: libev, or NULL on lws's poll() loop */
	lws_retry_bo_t idle_policy;	   /* lws's own pings: off (lws keeps a pointer) */
	uint64_t ping_ms, idle_ms;	   /* websocket.ping_interval, idle_timeout */
	struct ws_conn *live_head[2];	   /* liveness lists, oldest first (ws.h) */
	struct ws_conn *live_tail[2];
	unsigned char *batch;	/* owned: NET_BATCH_MAX bytes, shared by every write */
	struct ws_conn *dirty;	/* connections with frames to flush (wsout.c) */
	int rx_fds[NET_RX_FDS]; /* sockets read during this loop pass (ws.c) */
	unsigned nrx_fds;
	size_t connections;	     /* established WebSocket connections */
	struct metrics metrics;	     /* this loop's counters (metrics.h) */
	lws_sorted_usec_list_t tick; /* 1 s: hub_tick */
	lws_sorted_usec_list_t beat; /* NET_BEAT_US: ws_liveness */
};

/* A worker of srv (borrowed; srv->cfg must be set) with a new hub (seed keys its
 * hashes), not yet listening. Returns NULL if the hub cannot be made (unknown engine). */
struct worker *worker_new(struct server *srv, const uint8_t seed[16]);
/* Creates the lws context (its user is w->srv) and the listening vhost on iface (NULL:
 * every interface; an address or interface name lws can bind) and srv->cfg's port and
 * TLS, and starts the 1 s tick. Returns 0, or -1 after logging (w->ctx is then NULL). */
int worker_listen(struct worker *w, const char *iface);
/* One loop iteration: a pass of the loop (libev's, or lws_service()), reading on while senders have
 * more (ws_read_more), then one flush of what that produced (wsout_flush). */
void worker_service(struct worker *w);
/* Stops the tick and destroys the context: the connections left close, and their
 * CLOSED empties the hub. Idempotent. */
void worker_stop(struct worker *w);
/* Stops w if needed and frees it with its hub (NULL-safe). */
void worker_free(struct worker *w);

/* The worker serving wsi (borrowed), or NULL for a connection of a vhost no worker
 * owns (the webhook clients' own vhosts). */
static inline struct worker *
worker_of(struct lws *wsi)
{
	return lws_vhost_user(lws_get_vhost(wsi));
}

#endif
