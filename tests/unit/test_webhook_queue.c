/* test_webhook_queue.c: the webhook delivery state machine, driven by hand. The clock is
 * a number the test moves; each event is {"n":<i>} so a body tells which events it holds
 * and in which order. Limits are small where the real ones would only make tests slow. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leakcheck.h"
#include "webhook_queue.h"

#define T0 1000000	    /* the queue clock at the start of every test */
#define WALL 1767225600123u /* the wall clock given to steps */
#define HEADROOM 16

static const struct webhook_queue_limits real = {
	.max_events = 10000,
	.batch_max = 100,
	.batch_bytes = 1u << 20,
	.flush_ms = 50,
	.backoff_ms = 250,
	.backoff_max_ms = 30000,
	.max_retries = 5,
	.headroom = HEADROOM,
};

static enum webhook_queue_pushed
push(struct webhook_queue *q, int n, uint64_t now)
{
	char ev[32];
	int len = snprintf(ev, sizeof(ev), "{\"n\":%d}", n);

	return webhook_queue_push(q, ev, (size_t)len, now);
}

/* Pushes events first .. first + count - 1, each expected to be kept. */
static void
push_range(struct webhook_queue *q, int first, int count, uint64_t now)
{
	for (int i = first; i < first + count; i++)
		cr_assert_eq(push(q, i, now), WEBHOOK_QUEUE_QUEUED, "event %d", i);
}

/* A step at now that must be SEND; returns it. */
static struct webhook_queue_step
send_at(struct webhook_queue *q, uint64_t now)
{
	struct webhook_queue_step st;

	webhook_queue_step(q, now, WALL, &st);
	cr_assert_eq(st.action, WEBHOOK_QUEUE_SEND, "no SEND at %llu (action %d, at %llu)",
		     (unsigned long long)now, st.action, (unsigned long long)st.at_ms);
	cr_assert_not_null(st.body);
	return st;
}

static struct webhook_queue_result
result(struct webhook_queue *q, uint64_t id, int status, uint64_t now, uint32_t jitter)
{
	struct webhook_queue_result res;

	webhook_queue_result(q, id, status, now, jitter, &res);
	return res;
}

/* Checks that the body of st holds exactly events first .. first + count - 1. */
static void
expect_events(const struct webhook_queue_step *st, int first, int count)
{
	char *want = malloc(64 + (size_t)count * 16), *p = want;

	p += sprintf(p, "{\"time_ms\":%llu,\"events\":[", (unsigned long long)WALL);
	for (int i = 0; i < count; i++)
		p += sprintf(p, "%s{\"n\":%d}", i > 0 ? "," : "", first + i);
	strcpy(p, "]}");
	cr_expect_eq(st->events, (size_t)count);
	cr_expect(st->body_len == strlen(want) && memcmp(st->body, want, st->body_len) == 0,
		  "body %.*s\nwant %s", (int)st->body_len, (const char *)st->body, want);
	free(want);
}

static uint64_t
due(const struct webhook_queue *q)
{
	uint64_t at = 0;

	cr_assert(webhook_queue_due(q, &at), "nothing is due");
	return at;
}

Test(webhook_queue, an_empty_queue_has_nothing_to_do)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st;
	uint64_t at;

	cr_expect_not(webhook_queue_due(q, &at));
	webhook_queue_step(q, T0, WALL, &st);
	cr_expect_eq(st.action, WEBHOOK_QUEUE_IDLE);
	cr_expect_eq(webhook_queue_pending(q), 0);
	cr_expect_not(webhook_queue_is_sending(q));
	webhook_queue_free(q);
	webhook_queue_free(NULL);
	assert_no_leaks();
}

/* A partial batch waits flush_ms from its first event; later events do not extend it. */
Test(webhook_queue, a_partial_batch_waits_flush_ms_from_its_first_event)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st;

	push_range(q, 0, 1, T0);
	cr_expect_eq(due(q), T0 + 50);
	push_range(q, 1, 2, T0 + 30);
	cr_expect_eq(due(q), T0 + 50, "a later event moved the flush");
	webhook_queue_step(q, T0 + 49, WALL, &st);
	cr_expect_eq(st.action, WEBHOOK_QUEUE_WAIT, "sent before the flush");
	cr_expect_eq(st.at_ms, T0 + 50);
	st = send_at(q, T0 + 50);
	expect_events(&st, 0, 3);
	cr_expect_eq(st.attempt, 1);
	webhook_queue_free(q);
	assert_no_leaks();
}

Test(webhook_queue, a_full_batch_is_due_at_once)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st;

	push_range(q, 0, 99, T0);
	cr_expect_eq(due(q), T0 + 50);
	push_range(q, 99, 1, T0 + 10);
	cr_expect_eq(due(q), T0 + 10, "the 100th event did not make it due");
	st = send_at(q, T0 + 10);
	expect_events(&st, 0, 100);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* Events leave in push order, in batches of at most batch_max, one batch at a time. */
Test(webhook_queue, events_leave_in_order_in_batches_of_batch_max)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st, idle;
	struct webhook_queue_result res;
	uint64_t now = T0;
	int first = 0;

	push_range(q, 0, 250, now);
	cr_expect_eq(webhook_queue_pending(q), 250);
	for (int k = 0; k < 3; k++) {
		int n = k < 2 ? 100 : 50;

		st = send_at(q, now);
		expect_events(&st, first, n);
		cr_expect_eq(webhook_queue_pending(q), (size_t)(250 - first));
		webhook_queue_step(q, now, WALL, &idle);
		cr_expect_eq(idle.action, WEBHOOK_QUEUE_IDLE, "a second request in flight");
		now += 7;
		res = result(q, st.attempt_id, 200, now, 0);
		cr_expect_eq(res.outcome, WEBHOOK_QUEUE_DELIVERED);
		cr_expect_eq(res.events, (size_t)n);
		first += n;
		if (first < 250)
			cr_expect_eq(due(q), now, "the next batch is not due at once");
	}
	cr_expect_eq(webhook_queue_pending(q), 0);
	cr_expect_not(webhook_queue_due(q, &now));
	webhook_queue_free(q);
	assert_no_leaks();
}

/* The byte bound closes a batch early; an event bigger than the bound goes alone. */
Test(webhook_queue, batch_bytes_closes_a_batch_and_a_big_event_goes_alone)
{
	struct webhook_queue_limits lim = real;
	struct webhook_queue *q;
	struct webhook_queue_step st;
	char big[200];
	size_t envelope;

	/* {"time_ms":WALL,"events":[ ... ]}: 27 + 13 digits + 2 bytes around the events. */
	envelope = strlen("{\"time_ms\":1767225600123,\"events\":[]}");
	/* Room for three 7-byte events ({"n":N}) and their commas, not four. */
	lim.batch_bytes = envelope + 3 * 8;
	q = webhook_queue_new(&lim);
	push_range(q, 0, 5, T0);
	st = send_at(q, T0 + 50);
	expect_events(&st, 0, 3);
	cr_expect_leq(st.body_len, lim.batch_bytes);
	cr_assert_eq(result(q, st.attempt_id, 200, T0 + 51, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	memset(big, 'x', sizeof(big));
	big[0] = '"';
	big[sizeof(big) - 1] = '"';
	cr_assert_eq(webhook_queue_push(q, big, sizeof(big), T0 + 51), WEBHOOK_QUEUE_QUEUED);
	st = send_at(q, T0 + 51);
	expect_events(&st, 3, 2);
	cr_assert_eq(result(q, st.attempt_id, 200, T0 + 52, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	st = send_at(q, T0 + 52);
	cr_expect_eq(st.events, 1, "the big event did not go alone");
	cr_expect_gt(st.body_len, lim.batch_bytes);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* The body has headroom the caller may write (lws puts its framing there). */
Test(webhook_queue, the_body_has_writable_headroom)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st;

	push_range(q, 0, 2, T0);
	st = send_at(q, T0 + 50);
	memset(st.body - HEADROOM, 0xee, HEADROOM);
	expect_events(&st, 0, 2);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* Retries wait d/2..d with d = 250 ms doubling up to 30 s, and resend the same bytes. */
Test(webhook_queue, retries_follow_the_backoff_schedule_with_the_same_body)
{
	static const uint64_t steps[] = { 250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
	struct webhook_queue_limits lim = real;
	struct webhook_queue *q;
	struct webhook_queue_step st, first;
	struct webhook_queue_result res;
	uint64_t now = T0;
	char *body;
	size_t n = sizeof(steps) / sizeof(steps[0]);

	lim.max_retries = (unsigned)n;
	q = webhook_queue_new(&lim);
	push_range(q, 0, 3, now);
	now += 50;
	first = send_at(q, now);
	body = malloc(first.body_len);
	memcpy(body, first.body, first.body_len);
	st = first;
	for (size_t i = 0; i < n; i++) {
		/* Odd retries with the smallest jitter, even ones with the largest. */
		uint32_t jitter = i % 2 == 0 ? 0 : (uint32_t)(steps[i] / 2);
		uint64_t want = i % 2 == 0 ? steps[i] / 2 : steps[i];

		res = result(q, st.attempt_id, 503, now, jitter);
		cr_assert_eq(res.outcome, WEBHOOK_QUEUE_RETRY, "retry %zu", i + 1);
		cr_expect_eq(res.retry, i + 1);
		cr_expect_eq(res.delay_ms, want, "retry %zu: %llu ms, want %llu", i + 1,
			     (unsigned long long)res.delay_ms, (unsigned long long)want);
		cr_expect_eq(due(q), now + want);
		cr_expect_eq(webhook_queue_pending(q), 3, "a waiting retry is still pending");
		webhook_queue_step(q, now + want - 1, WALL + 1, &st);
		cr_expect_eq(st.action, WEBHOOK_QUEUE_WAIT, "retry %zu came early", i + 1);
		now += want;
		st = send_at(q, now);
		cr_expect_eq(st.attempt, i + 2);
		cr_expect_neq(st.attempt_id, first.attempt_id);
		cr_expect(st.body_len == first.body_len && memcmp(st.body, body, st.body_len) == 0,
			  "retry %zu has another body (the wall clock moved)", i + 1);
	}
	free(body);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* Whatever the jitter, a delay stays within [d/2, d]. */
Test(webhook_queue, jitter_keeps_the_delay_between_half_and_all_of_the_step)
{
	static const uint32_t jitters[] = { 0, 1, 124, 125, 126, 4095, 0x7fffffff, UINT32_MAX };

	for (size_t j = 0; j < sizeof(jitters) / sizeof(jitters[0]); j++) {
		struct webhook_queue *q = webhook_queue_new(&real);
		struct webhook_queue_step st;
		struct webhook_queue_result res;

		push_range(q, 0, 1, T0);
		st = send_at(q, T0 + 50);
		res = result(q, st.attempt_id, 0, T0 + 60, jitters[j]);
		cr_assert_eq(res.outcome, WEBHOOK_QUEUE_RETRY);
		cr_expect(res.delay_ms >= 125 && res.delay_ms <= 250, "jitter %u: %llu ms",
			  jitters[j], (unsigned long long)res.delay_ms);
		webhook_queue_free(q);
	}
	assert_no_leaks();
}

/* Each status of a first attempt: 2xx delivers; no status, 429 and 5xx are retried; any
 * other (1xx, 3xx, 4xx but 429) is refused. */
Test(webhook_queue, each_status_delivers_retries_or_refuses)
{
	static const struct {
		int status;
		enum webhook_queue_outcome outcome;
	} cases[] = {
		{ 200, WEBHOOK_QUEUE_DELIVERED },
		{ 201, WEBHOOK_QUEUE_DELIVERED },
		{ 204, WEBHOOK_QUEUE_DELIVERED },
		{ 299, WEBHOOK_QUEUE_DELIVERED },
		{ WEBHOOK_QUEUE_NO_STATUS, WEBHOOK_QUEUE_RETRY },
		{ 429, WEBHOOK_QUEUE_RETRY },
		{ 500, WEBHOOK_QUEUE_RETRY },
		{ 503, WEBHOOK_QUEUE_RETRY },
		{ 599, WEBHOOK_QUEUE_RETRY },
		{ 100, WEBHOOK_QUEUE_REFUSED },
		{ 301, WEBHOOK_QUEUE_REFUSED },
		{ 302, WEBHOOK_QUEUE_REFUSED },
		{ 400, WEBHOOK_QUEUE_REFUSED },
		{ 401, WEBHOOK_QUEUE_REFUSED },
		{ 404, WEBHOOK_QUEUE_REFUSED },
		{ 413, WEBHOOK_QUEUE_REFUSED },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct webhook_queue *q = webhook_queue_new(&real);
		struct webhook_queue_step st;
		struct webhook_queue_result res;

		push_range(q, 0, 2, T0);
		st = send_at(q, T0 + 50);
		res = result(q, st.attempt_id, cases[i].status, T0 + 60, 0);
		cr_expect_eq(res.outcome, cases[i].outcome, "status %d: outcome %d",
			     cases[i].status, res.outcome);
		cr_expect_eq(res.events, 2, "status %d", cases[i].status);
		cr_expect_eq(webhook_queue_pending(q),
			     cases[i].outcome == WEBHOOK_QUEUE_RETRY ? 2u : 0u, "status %d",
			     cases[i].status);
		webhook_queue_free(q);
	}
	assert_no_leaks();
}

/* A refused batch is dropped at once, and the next batch goes out without waiting. */
Test(webhook_queue, a_refused_batch_lets_the_next_one_go_at_once)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st;
	struct webhook_queue_result res;

	push_range(q, 0, 105, T0);
	st = send_at(q, T0);
	res = result(q, st.attempt_id, 400, T0 + 5, 0);
	cr_expect_eq(res.outcome, WEBHOOK_QUEUE_REFUSED);
	cr_expect_eq(res.events, 100);
	cr_expect_eq(webhook_queue_pending(q), 5);
	cr_expect_eq(due(q), T0 + 5);
	st = send_at(q, T0 + 5);
	expect_events(&st, 100, 5);
	cr_expect_eq(st.attempt, 1);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* After max_retries retries the batch is given up, and the next one is not held back. */
Test(webhook_queue, the_batch_is_given_up_after_max_retries)
{
	struct webhook_queue_limits lim = real;
	struct webhook_queue *q;
	struct webhook_queue_step st;
	struct webhook_queue_result res;
	uint64_t now = T0;

	lim.max_retries = 2;
	q = webhook_queue_new(&lim);
	push_range(q, 0, 5, now);
	now += 50;
	st = send_at(q, now);
	push_range(q, 5, 3, now); /* while the first batch is in flight */
	for (unsigned i = 1; i <= 2; i++) {
		res = result(q, st.attempt_id, 500, now, 0);
		cr_assert_eq(res.outcome, WEBHOOK_QUEUE_RETRY);
		now = due(q);
		st = send_at(q, now);
		expect_events(&st, 0, 5);
		cr_expect_eq(st.attempt, i + 1);
	}
	res = result(q, st.attempt_id, 500, now, 0);
	cr_expect_eq(res.outcome, WEBHOOK_QUEUE_GAVE_UP);
	cr_expect_eq(res.events, 5);
	cr_expect_eq(webhook_queue_pending(q), 3);
	cr_expect_eq(due(q), now);
	st = send_at(q, now);
	expect_events(&st, 5, 3);
	cr_expect_eq(st.attempt, 1, "the next batch inherited failed attempts");
	webhook_queue_free(q);
	assert_no_leaks();
}

Test(webhook_queue, with_no_retries_the_first_failure_gives_up)
{
	struct webhook_queue_limits lim = real;
	struct webhook_queue *q;
	struct webhook_queue_step st;
	uint64_t at;

	lim.max_retries = 0;
	q = webhook_queue_new(&lim);
	push_range(q, 0, 1, T0);
	st = send_at(q, T0 + 50);
	cr_expect_eq(result(q, st.attempt_id, WEBHOOK_QUEUE_NO_STATUS, T0 + 60, 0).outcome,
		     WEBHOOK_QUEUE_GAVE_UP);
	cr_expect_not(webhook_queue_due(q, &at));
	cr_expect_eq(webhook_queue_pending(q), 0);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* While a batch is in flight or waiting to be retried, new events schedule nothing. */
Test(webhook_queue, a_batch_in_flight_or_retrying_holds_back_new_events)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st;
	uint64_t at;

	push_range(q, 0, 1, T0);
	st = send_at(q, T0 + 50);
	cr_expect(webhook_queue_is_sending(q));
	push_range(q, 1, 150, T0 + 60);
	cr_expect_not(webhook_queue_due(q, &at), "due while a request is in flight");
	cr_assert_eq(result(q, st.attempt_id, 500, T0 + 70, 0).outcome, WEBHOOK_QUEUE_RETRY);
	cr_expect_eq(due(q), T0 + 70 + 125);
	push_range(q, 151, 1, T0 + 80);
	cr_expect_eq(due(q), T0 + 70 + 125, "a new event cut the backoff short");
	st = send_at(q, T0 + 195);
	expect_events(&st, 0, 1);
	cr_assert_eq(result(q, st.attempt_id, 200, T0 + 200, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	st = send_at(q, T0 + 200);
	expect_events(&st, 1, 100);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* max_events wait besides the batch; newer events are dropped, the first of a burst
 * flagged, and the burst's count comes out once the queue is below half full. */
Test(webhook_queue, a_full_queue_drops_new_events_and_reports_the_burst)
{
	struct webhook_queue_limits lim = real;
	struct webhook_queue *q;
	struct webhook_queue_step st;
	uint64_t now = T0;

	lim.max_events = 10;
	lim.batch_max = 3;
	q = webhook_queue_new(&lim);
	push_range(q, 0, 1, now);
	st = send_at(q, now + 50); /* event 0 in flight: not counted in the bound */
	push_range(q, 1, 10, now + 50);
	cr_expect_eq(webhook_queue_pending(q), 11);
	cr_expect_eq(push(q, 11, now + 50), WEBHOOK_QUEUE_DROPPED_FIRST);
	cr_expect_eq(push(q, 12, now + 50), WEBHOOK_QUEUE_DROPPED);
	cr_expect_eq(push(q, 13, now + 50), WEBHOOK_QUEUE_DROPPED);
	cr_expect_eq(webhook_queue_pending(q), 11, "a dropped event was kept");
	/* 10 waiting -> 7 after a batch: not below half, the burst goes on. */
	cr_assert_eq(result(q, st.attempt_id, 200, now + 60, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	st = send_at(q, now + 60);
	expect_events(&st, 1, 3);
	cr_expect_eq(st.burst_ended, 0);
	cr_expect_eq(push(q, 14, now + 60), WEBHOOK_QUEUE_QUEUED);
	cr_expect_eq(push(q, 15, now + 60), WEBHOOK_QUEUE_QUEUED);
	cr_expect_eq(push(q, 16, now + 60), WEBHOOK_QUEUE_QUEUED);
	cr_expect_eq(push(q, 17, now + 60), WEBHOOK_QUEUE_DROPPED, "a new burst began mid-burst");
	/* 10 -> 7 -> 4: below half, the burst of 4 ends. */
	cr_assert_eq(result(q, st.attempt_id, 200, now + 70, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	st = send_at(q, now + 70);
	expect_events(&st, 4, 3);
	cr_expect_eq(st.burst_ended, 0);
	cr_assert_eq(result(q, st.attempt_id, 200, now + 80, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	st = send_at(q, now + 80);
	expect_events(&st, 7, 3);
	cr_expect_eq(st.burst_ended, 4);
	/* The next overflow is a new burst. */
	push_range(q, 20, 6, now + 80);
	cr_expect_eq(push(q, 26, now + 80), WEBHOOK_QUEUE_DROPPED_FIRST);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* Exactly half full is not below half: the burst goes on until the next batch. */
Test(webhook_queue, a_burst_goes_on_at_exactly_half_full)
{
	struct webhook_queue_limits lim = real;
	struct webhook_queue *q;
	struct webhook_queue_step st;

	lim.max_events = 10;
	lim.batch_max = 5;
	q = webhook_queue_new(&lim);
	push_range(q, 0, 1, T0);
	st = send_at(q, T0 + 50);
	push_range(q, 1, 10, T0 + 50);
	cr_expect_eq(push(q, 11, T0 + 50), WEBHOOK_QUEUE_DROPPED_FIRST);
	cr_assert_eq(result(q, st.attempt_id, 200, T0 + 60, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	st = send_at(q, T0 + 60);
	expect_events(&st, 1, 5);
	cr_expect_eq(st.burst_ended, 0, "the burst ended with the queue half full");
	cr_expect_eq(push(q, 12, T0 + 60), WEBHOOK_QUEUE_QUEUED);
	cr_assert_eq(result(q, st.attempt_id, 200, T0 + 70, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	st = send_at(q, T0 + 70);
	cr_expect_eq(st.burst_ended, 1);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* A result that is not for the attempt in flight changes nothing: an old attempt's late
 * answer, a second answer to the same attempt, or one before anything was sent. */
Test(webhook_queue, results_for_other_attempts_are_stale)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step a, b;
	struct webhook_queue_result res;

	res = result(q, 1, 200, T0, 0);
	cr_expect_eq(res.outcome, WEBHOOK_QUEUE_STALE, "a result before any attempt");
	push_range(q, 0, 2, T0);
	a = send_at(q, T0 + 50);
	cr_expect_eq(result(q, a.attempt_id + 1, 200, T0 + 55, 0).outcome, WEBHOOK_QUEUE_STALE,
		     "a result for a future attempt");
	cr_expect(webhook_queue_is_sending(q));
	cr_assert_eq(result(q, a.attempt_id, WEBHOOK_QUEUE_NO_STATUS, T0 + 60, 0).outcome,
		     WEBHOOK_QUEUE_RETRY); /* e.g. our timeout */
	res = result(q, a.attempt_id, 200, T0 + 61, 0);
	cr_expect_eq(res.outcome, WEBHOOK_QUEUE_STALE, "the timed-out attempt answered late");
	cr_expect_eq(res.events, 0);
	cr_expect_eq(due(q), T0 + 60 + 125, "a stale result moved the schedule");
	b = send_at(q, T0 + 185);
	cr_expect_eq(b.attempt, 2);
	cr_expect_eq(result(q, a.attempt_id, 500, T0 + 186, 0).outcome, WEBHOOK_QUEUE_STALE,
		     "the old attempt's answer counted for the retry");
	cr_expect(webhook_queue_is_sending(q));
	cr_expect_eq(result(q, b.attempt_id, 200, T0 + 190, 0).outcome, WEBHOOK_QUEUE_DELIVERED);
	cr_expect_eq(result(q, b.attempt_id, 200, T0 + 191, 0).outcome, WEBHOOK_QUEUE_STALE,
		     "delivered twice");
	cr_expect_eq(webhook_queue_pending(q), 0);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* Shutdown counts what was not delivered (queue and batch) and an open burst, then
 * everything is ignored. */
Test(webhook_queue, shutdown_drops_everything_and_ignores_what_follows)
{
	struct webhook_queue_limits lim = real;
	struct webhook_queue *q;
	struct webhook_queue_step st;
	uint64_t burst = 99, at;

	lim.max_events = 20;
	lim.batch_max = 5;
	q = webhook_queue_new(&lim);
	push_range(q, 0, 5, T0);
	st = send_at(q, T0);
	push_range(q, 5, 20, T0 + 1);
	cr_expect_eq(push(q, 25, T0 + 1), WEBHOOK_QUEUE_DROPPED_FIRST);
	cr_expect_eq(push(q, 26, T0 + 1), WEBHOOK_QUEUE_DROPPED);
	cr_expect_eq(webhook_queue_shutdown(q, &burst), 25);
	cr_expect_eq(burst, 2);
	cr_expect_not(webhook_queue_is_sending(q));
	cr_expect_eq(webhook_queue_pending(q), 0);
	cr_expect_eq(result(q, st.attempt_id, 200, T0 + 2, 0).outcome, WEBHOOK_QUEUE_STALE,
		     "the request in flight answered after shutdown");
	cr_expect_eq(push(q, 27, T0 + 3), WEBHOOK_QUEUE_STOPPED);
	cr_expect_not(webhook_queue_due(q, &at));
	webhook_queue_step(q, T0 + 1000, WALL, &st);
	cr_expect_eq(st.action, WEBHOOK_QUEUE_IDLE);
	cr_expect_eq(webhook_queue_shutdown(q, &burst), 0, "a second shutdown counted again");
	cr_expect_eq(burst, 0);
	cr_expect_eq(webhook_queue_shutdown(q, NULL), 0);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* A batch waiting for its retry is counted at shutdown like one in flight. */
Test(webhook_queue, shutdown_counts_a_batch_waiting_for_its_retry)
{
	struct webhook_queue *q = webhook_queue_new(&real);
	struct webhook_queue_step st;

	push_range(q, 0, 4, T0);
	st = send_at(q, T0 + 50);
	cr_assert_eq(result(q, st.attempt_id, 429, T0 + 60, 0).outcome, WEBHOOK_QUEUE_RETRY);
	push_range(q, 4, 2, T0 + 61);
	cr_expect_eq(webhook_queue_pending(q), 6);
	cr_expect_eq(webhook_queue_shutdown(q, NULL), 6);
	webhook_queue_free(q);
	assert_no_leaks();
}

/* Freeing a queue with events, a batch and an attempt in flight leaks nothing. */
Test(webhook_queue, free_releases_a_busy_queue)
{
	struct webhook_queue *q = webhook_queue_new(&real);

	push_range(q, 0, 150, T0);
	send_at(q, T0);
	webhook_queue_free(q);
	assert_no_leaks();
}
