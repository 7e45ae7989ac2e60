/* webhook_queue.c: see webhook_queue.h. The events wait in a fixed ring of max_events
 * slots, each an owned copy; the batch is one owned buffer (headroom, then the body)
 * that stays until its attempts end, so a retry resends the very same bytes. A step is
 * due exactly when has_due is set; every transition that gives step() work sets it, and
 * step() clears it when it acts. It stays pure (no lws, no clock, no crypto): the build
 * makes it a library of its own, which the unit tests link without the net layer. */
#include "webhook_queue.h"
#include "xalloc.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One queued event: its length and its bytes (not NUL-terminated). */
struct qevent {
	size_t len;  /* bytes of text */
	char text[]; /* one serialised JSON value */
};

struct webhook_queue {
	struct webhook_queue_limits lim; /* copied at creation, never changed */

	struct qevent **ring; /* max_events slots; owned events, NULL when free */
	size_t head;	      /* slot of the oldest event */
	size_t len;	      /* events waiting */
	uint64_t overflow;    /* events dropped in the current burst, 0 outside one */

	unsigned char *buf;  /* the batch: lim.headroom bytes, then the body; or NULL */
	size_t body_len;     /* bytes of the body */
	size_t batch_events; /* events in the batch */
	unsigned failures;   /* failed attempts of the batch so far */

	bool sending;	     /* attempt attempt_id is in flight */
	uint64_t attempt_id; /* the latest attempt started (0: none yet) */

	bool has_due;	 /* step() has work at due_ms */
	uint64_t due_ms; /* now_ms clock */

	bool stopped; /* after webhook_queue_shutdown() */
};

struct webhook_queue *
webhook_queue_new(const struct webhook_queue_limits *lim)
{
	struct webhook_queue *q = xcalloc(1, sizeof(*q));

	assert(lim->max_events >= 1 && lim->batch_max >= 1 && lim->backoff_ms >= 1);
	q->lim = *lim;
	q->ring = xcalloc(lim->max_events, sizeof(q->ring[0]));
	return q;
}

/* Frees every waiting event; returns how many there were. */
static size_t
drop_events(struct webhook_queue *q)
{
	size_t n = q->len;

	while (q->len > 0) {
		free(q->ring[q->head]);
		q->ring[q->head] = NULL;
		q->head = (q->head + 1) % q->lim.max_events;
		q->len--;
	}
	return n;
}

static void
drop_batch(struct webhook_queue *q)
{
	free(q->buf);
	q->buf = NULL;
	q->body_len = 0;
	q->batch_events = 0;
	q->failures = 0;
}

void
webhook_queue_free(struct webhook_queue *q)
{
	if (q == NULL)
		return;
	drop_events(q);
	drop_batch(q);
	free(q->ring);
	free(q);
}

enum webhook_queue_pushed
webhook_queue_push(struct webhook_queue *q, const char *text, size_t len, uint64_t now_ms)
{
	struct qevent *e;

	if (q->stopped)
		return WEBHOOK_QUEUE_STOPPED;
	if (q->len == q->lim.max_events)
		return q->overflow++ == 0 ? WEBHOOK_QUEUE_DROPPED_FIRST : WEBHOOK_QUEUE_DROPPED;
	e = xmalloc(sizeof(*e) + len);
	e->len = len;
	memcpy(e->text, text, len);
	q->ring[(q->head + q->len) % q->lim.max_events] = e;
	q->len++;
	/* A batch in flight or waiting for its retry goes first; its end schedules the next. */
	if (q->buf != NULL || q->sending)
		return WEBHOOK_QUEUE_QUEUED;
	if (q->len >= q->lim.batch_max) {
		if (!q->has_due || q->due_ms > now_ms)
			q->due_ms = now_ms;
		q->has_due = true;
	} else if (!q->has_due) {
		/* The first event of a partial batch sets its deadline; later ones keep it. */
		q->due_ms = now_ms + q->lim.flush_ms;
		q->has_due = true;
	}
	return WEBHOOK_QUEUE_QUEUED;
}

bool
webhook_queue_due(const struct webhook_queue *q, uint64_t *at_ms)
{
	if (q->stopped || q->sending || !q->has_due)
		return false;
	*at_ms = q->due_ms;
	return true;
}

/* Takes up to batch_max events (and about batch_bytes) from the head into a new batch.
 * A burst ends once the queue is below half full: the caller logs its count. */
static void
take_batch(struct webhook_queue *q, uint64_t unix_ms, struct webhook_queue_step *st)
{
	char head[48];
	size_t hlen, len, take = 0, n;
	unsigned char *p;

	hlen = (size_t)snprintf(head, sizeof(head), "{\"time_ms\":%" PRIu64 ",\"events\":[",
				unix_ms);
	len = hlen + 2;
	while (take < q->len && take < q->lim.batch_max) {
		size_t l = q->ring[(q->head + take) % q->lim.max_events]->len + 1;

		if (take > 0 && len + l > q->lim.batch_bytes)
			break;
		len += l;
		take++;
	}
	q->buf = xmalloc(q->lim.headroom + len);
	p = q->buf + q->lim.headroom;
	memcpy(p, head, hlen);
	n = hlen;
	for (size_t i = 0; i < take; i++) {
		struct qevent *e = q->ring[q->head];

		if (i > 0)
			p[n++] = ',';
		memcpy(p + n, e->text, e->len);
		n += e->len;
		free(e);
		q->ring[q->head] = NULL;
		q->head = (q->head + 1) % q->lim.max_events;
		q->len--;
	}
	p[n++] = ']';
	p[n++] = '}';
	q->body_len = n;
	q->batch_events = take;
	q->failures = 0;
	if (q->overflow > 0 && q->len < q->lim.max_events / 2) {
		st->burst_ended = q->overflow;
		q->overflow = 0;
	}
}

void
webhook_queue_step(struct webhook_queue *q, uint64_t now_ms, uint64_t unix_ms,
		   struct webhook_queue_step *st)
{
	memset(st, 0, sizeof(*st));
	st->action = WEBHOOK_QUEUE_IDLE;
	if (q->stopped || q->sending)
		return;
	if (q->buf == NULL && q->len == 0) {
		q->has_due = false;
		return;
	}
	if (!q->has_due) {
		/* Every path that leaves work also sets a due time; this is a safety net. */
		q->has_due = true;
		q->due_ms = now_ms;
	}
	if (now_ms < q->due_ms) {
		st->action = WEBHOOK_QUEUE_WAIT;
		st->at_ms = q->due_ms;
		return;
	}
	if (q->buf == NULL)
		take_batch(q, unix_ms, st);
	q->has_due = false;
	q->sending = true;
	q->attempt_id++;
	st->action = WEBHOOK_QUEUE_SEND;
	st->attempt_id = q->attempt_id;
	st->attempt = q->failures + 1;
	st->body = q->buf + q->lim.headroom;
	st->body_len = q->body_len;
	st->events = q->batch_events;
}

/* The step of retry number `retry` (1-based): backoff_ms * 2^(retry-1), at most
 * backoff_max_ms; the delay is in [step/2, step]. */
static uint64_t
backoff_ms(const struct webhook_queue_limits *lim, unsigned retry, uint32_t jitter)
{
	uint64_t d = lim->backoff_ms;

	for (unsigned i = 1; i < retry && d < lim->backoff_max_ms; i++)
		d *= 2;
	if (d > lim->backoff_max_ms)
		d = lim->backoff_max_ms;
	return d / 2 + jitter % (d / 2 + 1);
}

/* The batch is finished (delivered or dropped): the next is due at once if any waits. */
static void
batch_done(struct webhook_queue *q, uint64_t now_ms)
{
	drop_batch(q);
	q->has_due = q->len > 0;
	q->due_ms = now_ms;
}

void
webhook_queue_result(struct webhook_queue *q, uint64_t attempt_id, int status, uint64_t now_ms,
		     uint32_t jitter, struct webhook_queue_result *res)
{
	bool retry;

	memset(res, 0, sizeof(*res));
	res->outcome = WEBHOOK_QUEUE_STALE;
	if (q->stopped || !q->sending || attempt_id != q->attempt_id)
		return;
	q->sending = false;
	res->events = q->batch_events;
	if (status >= 200 && status < 300) {
		res->outcome = WEBHOOK_QUEUE_DELIVERED;
		batch_done(q, now_ms);
		return;
	}
	retry = status == WEBHOOK_QUEUE_NO_STATUS || status == 429 || status >= 500;
	if (retry && q->failures < q->lim.max_retries) {
		q->failures++;
		res->outcome = WEBHOOK_QUEUE_RETRY;
		res->retry = q->failures;
		res->delay_ms = backoff_ms(&q->lim, q->failures, jitter);
		q->has_due = true;
		q->due_ms = now_ms + res->delay_ms;
		return;
	}
	res->outcome = retry ? WEBHOOK_QUEUE_GAVE_UP : WEBHOOK_QUEUE_REFUSED;
	batch_done(q, now_ms);
}

bool
webhook_queue_is_sending(const struct webhook_queue *q)
{
	return q->sending;
}

size_t
webhook_queue_pending(const struct webhook_queue *q)
{
	return q->stopped ? 0 : q->len + q->batch_events;
}

size_t
webhook_queue_shutdown(struct webhook_queue *q, uint64_t *burst)
{
	size_t n;

	if (burst != NULL)
		*burst = q->stopped ? 0 : q->overflow;
	if (q->stopped)
		return 0;
	q->stopped = true;
	q->overflow = 0;
	q->sending = false;
	q->has_due = false;
	n = q->batch_events + drop_events(q);
	drop_batch(q);
	return n;
}
