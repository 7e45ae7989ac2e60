/* metrics.h: the transport's counters and the Prometheus text exposition of
 * GET /metrics (docs/http-api.md, Metrics). The core's counters live in struct hub_stats;
 * this file adds what only the transport sees: per loop (struct metrics in struct
 * worker: connections, bytes, writes, closes, HTTP) and per process (struct
 * metrics_process in struct server: webhooks), and renders them all. Counters are plain
 * integers, each written by one thread only. */
#ifndef SWITCHBOARD_METRICS_H
#define SWITCHBOARD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct server;

/* Upper bounds of the send-queue depth histogram (frames queued when a write happens). */
#define METRICS_QUEUE_BUCKETS 13

/* Close codes counted separately; anything else lands in the last slot. */
enum metrics_close {
	METRICS_CLOSE_1001,
	METRICS_CLOSE_1003,
	METRICS_CLOSE_1007,
	METRICS_CLOSE_1009,
	METRICS_CLOSE_4001,
	METRICS_CLOSE_4002,
	METRICS_CLOSE_4003,
	METRICS_CLOSE_4008,
	METRICS_CLOSE_4012,
	METRICS_CLOSE_4029,
	METRICS_CLOSE_OTHER,
	METRICS_CLOSE_COUNT
};

/* Reasons an upgrade was refused before it became a WebSocket. */
enum metrics_refusal {
	METRICS_REFUSED_PATH,
	METRICS_REFUSED_ORIGIN,
	METRICS_REFUSED_PER_IP,
	METRICS_REFUSED_RATE,
	METRICS_REFUSED_CAPACITY,
	METRICS_REFUSED_COUNT
};

/* One loop's counters (struct worker). */
struct metrics {
	uint64_t ws_opened; /* WebSocket connections established */
	uint64_t ws_refused[METRICS_REFUSED_COUNT];
	uint64_t ws_closes[METRICS_CLOSE_COUNT]; /* closes the server initiated, by code */
	uint64_t idle_timeouts;			 /* hung up by lws after websocket.idle_timeout */
	uint64_t frames_in, bytes_in;		 /* client messages and their payload bytes */
	uint64_t writes, frames_out, bytes_out;	 /* raw writes, frames and bytes in them */
	uint64_t queue_hist[METRICS_QUEUE_BUCKETS + 1]; /* last: +Inf */
	uint64_t queue_sum;
	uint64_t http_status[6]; /* HTTP responses by class: [2] = 2xx ... */
};

/* The process's counters: the webhooks are shared by every worker. */
struct metrics_process {
	uint64_t webhook_delivered, webhook_failed, webhook_dropped; /* events */
	uint64_t webhook_requests;
};

/* One raw write of `frames` frames (`bytes` bytes) when `queued` were waiting. */
void metrics_write(struct metrics *m, size_t queued, size_t frames, size_t bytes);
void metrics_close(struct metrics *m, int code);

/* The exposition text of the process srv and its workers (malloc'd, *len bytes), or NULL
 * if out of memory. */
char *metrics_render(struct server *srv, size_t *len);

#endif
