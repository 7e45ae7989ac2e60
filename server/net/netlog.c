/* netlog.c: see netlog.h. */
#include "netlog.h"
#include "clock.h"
#include "log.h"
#include "net.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The level of each cause's lines. */
static const enum log_level log_levels[NET_LOG_CAUSES] = {
	[NET_LOG_ORIGIN] = LOG_INFO,	  [NET_LOG_PER_IP_LIMIT] = LOG_WARN,
	[NET_LOG_PER_IP_RATE] = LOG_WARN, [NET_LOG_CAPACITY] = LOG_WARN,
	[NET_LOG_DRAINING] = LOG_INFO,	  [NET_LOG_API_401] = LOG_INFO,
	[NET_LOG_API_429] = LOG_INFO,
};

/* line, and how many more like it were held back (in the second before). */
static void
emit_counted(enum log_level level, const char *line, uint64_t more)
{
	if (more > 0)
		log_emit(level, "%s (and %" PRIu64 " more in the last second)", line, more);
	else
		log_emit(level, "%s", line);
}

static void on_log_timer(lws_sorted_usec_list_t *sul);

/* Wakes on_log_timer when the first cause with lines held back is a second past its
 * last line. Armed when a cause starts holding back, not for every line held. */
static void
log_timer_arm(struct server *srv)
{
	uint64_t now = clock_now_ms(), due = UINT64_MAX;

	for (int i = 0; i < NET_LOG_CAUSES; i++)
		if (srv->log_limits[i].held > 0 && srv->log_limits[i].last_ms + 1000 < due)
			due = srv->log_limits[i].last_ms + 1000;
	if (due != UINT64_MAX)
		lws_sul_schedule(srv->ctx, 0, &srv->log_timer, on_log_timer,
				 (lws_usec_t)((due > now ? due - now : 0) + 1) * 1000);
}

/* Each cause with lines held back for a second: the last of them stands for all. */
static void
on_log_timer(lws_sorted_usec_list_t *sul)
{
	struct server *srv = lws_container_of(sul, struct server, log_timer);
	uint64_t now = clock_now_ms();

	for (int i = 0; i < NET_LOG_CAUSES; i++) {
		uint64_t held = log_limit_flush(&srv->log_limits[i], now);

		if (held > 0)
			emit_counted(log_levels[i], srv->log_held[i], held - 1);
	}
	log_timer_arm(srv);
}

void
net_log_limited(struct server *srv, enum net_log_cause cause, const char *fmt, ...)
{
	struct log_limit *l = &srv->log_limits[cause];
	uint64_t held = 0;
	char line[sizeof(srv->log_held[0])];
	va_list ap;

	if (log_levels[cause] > log_level_current)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_limit_take(l, clock_now_ms(), &held)) {
		emit_counted(log_levels[cause], line, held);
		return;
	}
	memcpy(srv->log_held[cause], line, sizeof(line));
	if (l->held == 1)
		log_timer_arm(srv);
}

void
net_log_fini(struct server *srv)
{
	lws_sul_cancel(&srv->log_timer);
	for (int i = 0; i < NET_LOG_CAUSES; i++)
		if (srv->log_limits[i].held > 0)
			emit_counted(log_levels[i], srv->log_held[i], srv->log_limits[i].held - 1);
}
