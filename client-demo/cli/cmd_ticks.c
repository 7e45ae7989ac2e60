/* cmd_ticks.c: `switchboard-cli ticks CHANNEL` publishes a synthetic price feed,
 * {"symbol":..,"price":..,"ts":..}, --rate times per second (all symbols taking
 * turns), a random walk per symbol in cents. At most WINDOW publishes are in flight:
 * the schedule waits for replies rather than flooding the server. At --count or SIGINT
 * it waits for the replies in flight, then prints one summary line.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

static void pump_ticks(struct cli *c);

static void
on_tick(lws_sorted_usec_list_t *sul)
{
	pump_ticks(lws_container_of(sul, struct cli, sul_tick));
}

static void
publish_tick(struct cli *c)
{
	struct symbol *s = &c->sym[c->next_sym++ % c->nsym];
	double u = rng_unit(c) * 2.0 - 1.0;
	double walk = (double)s->cents * u * 0.001;
	int64_t step = (int64_t)(walk < 0 ? walk - 0.5 : walk + 0.5);
	char data[128];
	int n;

	if (step == 0)
		step = u < 0 ? -1 : 1;
	s->cents += step;
	if (s->cents < 1)
		s->cents = 1;
	n = snprintf(data, sizeof(data),
		     "{\"symbol\":\"%s\",\"price\":%" PRId64 ".%02" PRId64 ",\"ts\":%" PRId64 "}",
		     s->name, s->cents / 100, s->cents % 100, unix_ms());
	if (sbc_publish(c->sbc, c->o.channels[0], data, (size_t)n, NULL) != 0) {
		out_of_memory(c);
		return;
	}
	c->inflight++;
	c->npublished++;
}

/* Publishes what the schedule says is due, within the in-flight window, and sets the
 * timer for the next one. Called by the timer and whenever a reply frees the window. */
static void
pump_ticks(struct cli *c)
{
	double now = mono_us(), interval = USEC_PER_SEC / c->o.rate, next;
	uint64_t due;

	if (!c->ticking || c->draining || !cli_running(c))
		return;
	due = (uint64_t)((now - c->t0_us) / interval) + 1;
	if (due > c->npublished + (uint64_t)c->o.rate + 1) {
		/* More than a second behind (the window was full): do not burst to catch up. */
		c->t0_us = now - (double)c->npublished * interval;
		due = c->npublished + 1;
	}
	while (c->npublished < due && c->inflight < WINDOW && cli_running(c) &&
	       (c->o.count == 0 || c->npublished < c->o.count))
		publish_tick(c);
	if (c->o.count != 0 && c->npublished >= c->o.count) {
		c->draining = true;
		check_drained(c);
		return;
	}
	if (c->inflight >= WINDOW)
		return;
	next = c->t0_us + (double)c->npublished * interval;
	lws_sul_schedule(sbc_context(c->sbc), 0, &c->sul_tick, on_tick,
			 next > now ? (lws_usec_t)(next - now) : 0);
}

static void
start_ticks(struct cli *c)
{
	c->ticking = true;
	c->started_us = c->t0_us = mono_us();
	pump_ticks(c);
}

static void
print_ticks_summary(const struct cli *c)
{
	double secs = ((c->ended_us != 0 ? c->ended_us : mono_us()) - c->started_us) / USEC_PER_SEC;

	printf("ticks: %" PRIu64 " published to %s (%s) in %.2f s, %.1f/s, %" PRIu64
	       " acknowledged, %" PRIu64 " errors\n",
	       c->npublished, c->o.channels[0], c->o.symbols, secs,
	       secs > 0 ? (double)c->npublished / secs : 0.0, c->nacked, c->nerrors);
	fflush(stdout);
}

/* ---- chat: stdin ----
 *
 * lws watches a dup of fd 0, never fd 0 itself: lws closes the descriptors it adopts,
 * and a pipe whose writer has gone reports POLLHUP even while reading is paused, which
 * makes lws close the wsi with unread lines still in the pipe. The dup is then simply
 * adopted again when reading resumes. */

static void
ticks_ready(struct cli *c)
{
	start_ticks(c);
}

static void
ticks_reply(struct cli *c, const struct sbc_reply *r)
{
	if (r->cmd == SBC_CMD_PUBLISH)
		pump_ticks(c);
}

/* Stops publishing; the run closes once the messages in flight are acknowledged. */
static bool
ticks_interrupt(struct cli *c)
{
	if (!c->ticking)
		return false;
	lws_sul_cancel(&c->sul_tick);
	c->ended_us = mono_us();
	c->ticking = false;
	c->draining = true;
	check_drained(c);
	return true;
}

static void
ticks_closing(struct cli *c)
{
	if (c->sbc != NULL)
		lws_sul_cancel(&c->sul_tick);
	if (c->ticking) {
		c->ended_us = mono_us();
		c->ticking = false;
	}
}

static void
ticks_done(struct cli *c)
{
	if (c->started_us != 0)
		print_ticks_summary(c);
}

const struct cli_command cmd_ticks = {
	.name = "ticks",
	.mode = MODE_TICKS,
	.endless = true,
	.ready = ticks_ready,
	.reply = ticks_reply,
	.interrupt = ticks_interrupt,
	.closing = ticks_closing,
	.done = ticks_done,
};
