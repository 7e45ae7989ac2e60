/* netlog.h: log lines that can repeat as fast as requests arrive (refused upgrades, API
 * 401 and 429), written at most once a second per cause. Process-wide: the counts and
 * the held-back lines live in struct server (net.h), the timer that writes them runs on
 * its main loop. One thread today; several workers will need a lock here (this is never
 * on the per-delivery path). */
#ifndef SWITCHBOARD_NETLOG_H
#define SWITCHBOARD_NETLOG_H

struct server;

enum net_log_cause {
	NET_LOG_ORIGIN,
	NET_LOG_PER_IP_LIMIT,
	NET_LOG_PER_IP_RATE,
	NET_LOG_CAPACITY,
	NET_LOG_DRAINING,
	NET_LOG_API_401,
	NET_LOG_API_429,
	NET_LOG_CAUSES
};

/* Logs the printf-formatted line of cause (at the cause's level) unless one was logged
 * less than a second ago. Lines held back are counted, and a second after the line
 * before them the last one is written with "(and N more in the last second)". */
void net_log_limited(struct server *srv, enum net_log_cause cause, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* At shutdown: writes what is still held back, stops the timer. */
void net_log_fini(struct server *srv);

#endif
