/* webhook_queue.h: the delivery logic of one webhook endpoint (docs/http-api.md,
 * "Retries, ordering and overflow") as a pure state machine: a bounded FIFO of serialised
 * events, at most one batch taken from its head, and that batch's attempts with backoff.
 * It does no I/O and reads no clock and no random source: the caller passes the time and
 * a random number in, sends what webhook_queue_step() tells it to, and reports how each
 * attempt ended. At most one attempt is in flight and a batch is finished (delivered or
 * dropped) before the next is taken, so events leave in the order they were pushed.
 * The queue owns copies of its events and the batch body; nothing it returns is owned by
 * the caller. It never calls back.
 *
 * Two clocks come in: now_ms, a monotonic millisecond clock that every schedule is on
 * (any origin; it must not go backwards), and unix_ms, wall time, which only goes into
 * the body's "time_ms". */
#ifndef SWITCHBOARD_WEBHOOK_QUEUE_H
#define SWITCHBOARD_WEBHOOK_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct webhook_queue;

/* The bounds and the schedule of one queue, copied by webhook_queue_new(). */
struct webhook_queue_limits {
	size_t max_events;	 /* events waiting (the batch not counted); >= 1 */
	size_t batch_max;	 /* events in one batch; >= 1 */
	size_t batch_bytes;	 /* body bytes in one batch (a first event may exceed it) */
	uint64_t flush_ms;	 /* longest wait of a partial batch before it is sent */
	uint64_t backoff_ms;	 /* step of the first retry, doubled per retry; >= 1 */
	uint64_t backoff_max_ms; /* the largest step */
	unsigned max_retries;	 /* retries of one batch after its first attempt */
	size_t headroom;	 /* bytes kept free in front of every body (net/ gives LWS_PRE) */
};

/* What webhook_queue_push() did with an event. */
enum webhook_queue_pushed {
	WEBHOOK_QUEUE_QUEUED,	     /* kept; webhook_queue_due() may have moved earlier */
	WEBHOOK_QUEUE_DROPPED_FIRST, /* the queue is full: dropped, the first of a burst */
	WEBHOOK_QUEUE_DROPPED,	     /* the queue is full: dropped, within a burst */
	WEBHOOK_QUEUE_STOPPED,	     /* after webhook_queue_shutdown(): ignored, not counted */
};

/* The decision of webhook_queue_step(). */
enum webhook_queue_action {
	WEBHOOK_QUEUE_IDLE, /* nothing to do: empty, an attempt in flight, or shut down */
	WEBHOOK_QUEUE_WAIT, /* nothing yet: call webhook_queue_step() again at at_ms */
	WEBHOOK_QUEUE_SEND, /* send the batch now, then report with webhook_queue_result() */
};

/* Filled by webhook_queue_step(); only the members of its action are meaningful, except
 * burst_ended, which always is. */
struct webhook_queue_step {
	enum webhook_queue_action action;
	uint64_t at_ms;	      /* WAIT: when a step is due (now_ms clock) */
	uint64_t attempt_id;  /* SEND: names this attempt to webhook_queue_result() */
	unsigned attempt;     /* SEND: 1 for a batch's first attempt, 2 for its first retry... */
	unsigned char *body;  /* SEND: borrowed, body_len bytes, with the limits' headroom of
			       * writable bytes in front; the same bytes on every attempt of a
			       * batch. Valid until this attempt's result is reported, or the
			       * queue is shut down or freed. */
	size_t body_len;      /* SEND: bytes of body */
	size_t events;	      /* SEND: events in the batch */
	uint64_t burst_ended; /* events dropped by an overflow burst that ended at this step
			       * (taking the batch left the queue below half full), or 0 */
};

/* The meaning of the status given to webhook_queue_result(). */
#define WEBHOOK_QUEUE_NO_STATUS 0 /* no HTTP status: connection error, closed early, timeout */

/* What webhook_queue_result() made of an attempt's result. */
enum webhook_queue_outcome {
	WEBHOOK_QUEUE_DELIVERED, /* 2xx: the batch is done */
	WEBHOOK_QUEUE_RETRY,	 /* retried after delay_ms (webhook_queue_due() says when) */
	WEBHOOK_QUEUE_GAVE_UP,	 /* retryable, but after max_retries retries: dropped */
	WEBHOOK_QUEUE_REFUSED,	 /* a status that is never retried (3xx, 4xx but 429): dropped */
	WEBHOOK_QUEUE_STALE,	 /* not the attempt in flight (its result came already, or the
				  * queue was shut down): ignored, nothing changed */
};

/* Filled by webhook_queue_result(). */
struct webhook_queue_result {
	enum webhook_queue_outcome outcome;
	size_t events;	   /* events of the batch (0 when STALE) */
	unsigned retry;	   /* RETRY: which retry comes next, 1..max_retries */
	uint64_t delay_ms; /* RETRY: from now_ms to that retry */
};

/* A new, empty queue with a copy of *lim. Never NULL (allocation aborts). */
struct webhook_queue *webhook_queue_new(const struct webhook_queue_limits *lim);

/* Frees q, its events and its batch without counting them. NULL-safe. */
void webhook_queue_free(struct webhook_queue *q);

/* Appends a copy of the event text (len bytes, one JSON value) at now_ms. A first event
 * makes a step due flush_ms later; reaching batch_max events makes it due at once; while
 * a batch exists (in flight or waiting for its retry) nothing is scheduled. When
 * max_events are already waiting the event is dropped: the caller counts it. */
enum webhook_queue_pushed webhook_queue_push(struct webhook_queue *q, const char *text, size_t len,
					     uint64_t now_ms);

/* When webhook_queue_step() has something to do: true with *at_ms (possibly already
 * past, meaning as soon as possible), or false when only a push or a result can give it
 * work (empty, an attempt in flight, or shut down). */
bool webhook_queue_due(const struct webhook_queue *q, uint64_t *at_ms);

/* Takes the next step at now_ms. SEND starts an attempt: of the batch waiting for its
 * retry, or of a new batch of up to batch_max events (and about batch_bytes) taken from
 * the head of the queue, wrapped as {"time_ms":<unix_ms>,"events":[...]}. Until its
 * result is reported every step is IDLE. Calling it early is harmless: it answers WAIT. */
void webhook_queue_step(struct webhook_queue *q, uint64_t now_ms, uint64_t unix_ms,
			struct webhook_queue_step *st);

/* Reports how attempt attempt_id ended at now_ms: status is the HTTP status, or
 * WEBHOOK_QUEUE_NO_STATUS. 2xx delivers the batch; no status, 429 and 5xx are retried
 * up to max_retries times, each after a delay in [d/2, d], with d = backoff_ms doubled
 * per retry up to backoff_max_ms, placed by jitter (any random number); any other status
 * drops the batch. After a delivery or a drop the next batch is due at once if events
 * are waiting. A result for any other attempt, or after shutdown, is STALE. */
void webhook_queue_result(struct webhook_queue *q, uint64_t attempt_id, int status, uint64_t now_ms,
			  uint32_t jitter, struct webhook_queue_result *res);

/* True while an attempt is in flight (between SEND and its result). */
bool webhook_queue_is_sending(const struct webhook_queue *q);

/* Events waiting or in the batch, i.e. not yet delivered nor dropped (0 after
 * shutdown). */
size_t webhook_queue_pending(const struct webhook_queue *q);

/* Drops the queued events and the batch (in flight or not) and stops: later pushes are
 * ignored, steps are IDLE and results STALE. Returns the events not delivered, and sets
 * *burst (if not NULL) to the count of an overflow burst still going on, or 0. A second
 * call returns 0. */
size_t webhook_queue_shutdown(struct webhook_queue *q, uint64_t *burst);

#endif
