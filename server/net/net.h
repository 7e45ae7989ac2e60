/* net.h: state shared by the libwebsockets glue (server.c, ws.c, http.c). Only net/
 * includes this. One struct server per context, reached from callbacks through
 * lws_context_user(). */
#ifndef SWITCHBOARD_NET_H
#define SWITCHBOARD_NET_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "log.h"

struct config;
struct hub;
struct jwt_verifier;
struct api_state;
struct ws_conn;

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
/* Batches ws_flush() writes to one connection in a row while the kernel takes them. */
#define NET_FLUSH_BATCHES 4

/* Log lines that can repeat as fast as requests arrive: at most one a second per cause
 * (net_log_limited). */
enum net_log_cause {
	NET_LOG_ORIGIN, NET_LOG_PER_IP_LIMIT, NET_LOG_PER_IP_RATE, NET_LOG_CAPACITY,
	NET_LOG_DRAINING, NET_LOG_API_401, NET_LOG_API_429, NET_LOG_CAUSES
};

struct server {
	struct config *cfg;            /* borrowed; SIGHUP updates its reloadable parts */
	struct hub *hub;
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	unsigned char *batch;          /* NET_BATCH_MAX bytes, shared by every write */
	size_t connections;            /* established WebSocket connections */
	bool shutting_down;            /* a drain (or a stop) has begun: no new upgrades */
	bool stopping;                 /* closing everyone at once (a second signal) */
	uint64_t drain_start, drain_end; /* ms: clients are closed spread over this span */
	size_t drain_total, drain_kicked;
	uint64_t deadline;             /* ms: the loop ends by then whatever is left */
	lws_sorted_usec_list_t drain_timer; /* 100 ms steps of a drain */
	lws_sorted_usec_list_t tick;   /* 1 s housekeeping timer */
	lws_retry_bo_t idle_policy;    /* ping / hang-up timing */
	struct jwt_verifier *jwt;      /* owned, or NULL without auth.jwt */
	struct api_state *api;         /* owned: HTTP API state (api.c) */
	struct webhooks *webhooks;     /* owned: outgoing webhooks (webhook.c), or NULL */
	struct map *ip_conns;          /* owned: peer address -> struct ip_entry (ws.c) */
	struct ws_conn *dirty;         /* connections with frames to flush (ws.c) */
	int rx_fds[NET_RX_FDS];        /* sockets read during this loop pass (ws.c) */
	unsigned nrx_fds;
	struct metrics metrics;        /* GET /metrics (metrics.c) */
	struct log_limit log_limits[NET_LOG_CAUSES]; /* net_log_limited (http.c) */
	char log_held[NET_LOG_CAUSES][256]; /* the last line each held back */
	lws_sorted_usec_list_t log_timer; /* writes held-back lines a second on (http.c) */
};

/* Monotonic milliseconds, the core's notion of time. */
uint64_t net_now_ms(void);

/* The WebSocket protocol callback (ws.c) and the plain HTTP one (http.c). */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		size_t len);
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len);

/* Writes every connection that got frames during the last lws_service() pass. */
void ws_flush(struct server *srv);
/* Reads on from the sockets read during the last pass that have more bytes waiting in
 * the kernel (lws reads at most rx_buffer_size per socket and pass), so one flush
 * batches more messages; stops once metrics.bytes_in reaches until. Returns false when
 * none had more (or the budget is spent). TLS connections are not read on: lws reads
 * them a whole record at a time already. */
bool ws_read_more(struct server *srv, uint64_t until);

/* Drops per-address entries idle for a minute (1 s tick); frees them all at the end. */
void ws_ip_gc(struct server *srv);
void ws_ip_fini(struct server *srv);

/* Bytes of per-connection state lws must reserve for ws_callback. */
size_t ws_conn_size(void);

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: only "websocket" may upgrade (h2c is refused, so
 * no HTTP/2 connection can carry our raw-framed writes). Returns the callback's result. */
int net_confirm_upgrade(const char *upgrade);

/* How http_send() ends: HTTP_CLOSE says "Connection: close" and the callback returns
 * -1; HTTP_LINGER leaves the connection to the caller (it returns 0 and must end the
 * transaction or the connection itself later); HTTP_REFUSE is for a refusal made in
 * FILTER_PROTOCOL_CONNECTION, before an upgrade (returns 1, lws closes). Without a flag
 * the transaction completes and the connection is kept alive. */
#define HTTP_CLOSE 1u
#define HTTP_LINGER 2u
#define HTTP_REFUSE 4u

/* Sends a complete HTTP/1.1 response (status line with its reason phrase, Content-Type,
 * Content-Length, one more header hname:hvalue unless hname is NULL; hname ends with
 * ':'), headers and body in one write, the body left out for HEAD. Returns what the
 * callback should return (see the flags). */
int http_send(struct lws *wsi, unsigned status, const char *type, const char *body, size_t len,
	      const char *hname, const char *hvalue, unsigned flags);
/* The same with {"error":{"code":code,"message":message}}. */
int http_send_error(struct lws *wsi, unsigned status, const char *code, const char *message,
		    const char *hname, const char *hvalue, unsigned flags);
/* A JSON response, kept alive. */
int http_respond(struct lws *wsi, unsigned status, const char *body, size_t len);
int http_respond_error(struct lws *wsi, unsigned status, const char *code, const char *message);
/* A new malloc'd {"error":{"code":code,"message":message}}, or NULL. */
char *http_error_body(const char *code, const char *message);
/* Refuses a WebSocket upgrade from FILTER_PROTOCOL_CONNECTION with a JSON error (and
 * Retry-After: retry_after seconds unless 0); returns what FILTER returns. */
int net_refuse(struct lws *wsi, unsigned status, const char *code, const char *message,
	       unsigned retry_after);

/* Logs the printf-formatted line of cause (at the cause's level) unless one was logged
 * less than a second ago. Lines held back are counted, and a second after the line
 * before them the last one is written with "(and N more in the last second)". */
void net_log_limited(struct server *srv, enum net_log_cause cause, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* At shutdown: writes what is still held back, stops the timer. */
void net_log_fini(struct server *srv);

/* The HTTP API (api.c): its protocol callback, per-request state size, and the state
 * it keeps in struct server (key quotas). */
int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		 size_t len);
size_t api_req_size(void);
int api_init(struct server *srv);
void api_fini(struct server *srv);
/* SIGHUP: the API keys of next replace the running ones (next gets the old ones, to be
 * freed with it); a key kept under the same name keeps its quota bucket. */
void api_reload(struct server *srv, struct config *next);

/* SIGHUP (reload.c): loads cfg->path again and applies what can change while running;
 * a file that does not load changes nothing. Logs what changed. */
void server_reload(struct server *srv);

#endif
