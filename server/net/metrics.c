/* metrics.c: Prometheus text format 0.0.4 for GET /metrics. Everything is read at
 * scrape time from counters the loop already keeps, plus /proc/self for the process. */
#include "metrics.h"
#include "hub.h"
#include "net.h"
#include "worker.h"
#include "proto.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const int close_codes[METRICS_CLOSE_COUNT] = { 1001, 1003, 1007, 1009, 4001, 4002,
						      4003, 4008, 4012, 4029, 0 };
static const size_t queue_bounds[METRICS_QUEUE_BUCKETS] = { 1,	 2,   4,   8,	 16,   32,  64,
							    128, 256, 512, 1024, 2048, 4096 };

void
metrics_write(struct metrics *m, size_t queued, size_t frames, size_t bytes)
{
	size_t b = 0;

	while (b < METRICS_QUEUE_BUCKETS && queued > queue_bounds[b])
		b++;
	m->queue_hist[b]++;
	m->queue_sum += queued;
	m->writes++;
	m->frames_out += frames;
	m->bytes_out += bytes;
}

void
metrics_close(struct metrics *m, int code)
{
	size_t i = 0;

	while (i < METRICS_CLOSE_OTHER && close_codes[i] != code)
		i++;
	m->ws_closes[i]++;
}

static void
header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
one(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	header(f, name, type, help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

/* One sample of a labelled family: name{key="value"} v. */
static void
labelled(FILE *f, const char *name, const char *key, const char *value, uint64_t v)
{
	fprintf(f, "%s{%s=\"%s\"} %llu\n", name, key, value, (unsigned long long)v);
}

/* process_* from /proc/self: CPU seconds, resident and virtual memory, open fds. */
static void
process_metrics(FILE *f)
{
	unsigned long long utime = 0, stime = 0, vsize = 0, rss_pages = 0, start = 0;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char buf[1024], *p;
	size_t fds = 0;
	FILE *st = fopen("/proc/self/stat", "r");
	DIR *d;

	if (st != NULL) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, st);

		buf[n] = '\0';
		fclose(st);
		/* Fields after the command name (which may hold spaces) start past its ')'. */
		p = strrchr(buf, ')');
		if (p != NULL &&
		    sscanf(p + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
			   "%*d %*d %*d %*d %llu %llu %llu",
			   &utime, &stime, &start, &vsize, &rss_pages) != 5)
			utime = stime = vsize = rss_pages = start = 0;
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		struct dirent *e;

		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				fds++;
		closedir(d);
		fds--; /* the directory stream's own */
	}
	header(f, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
	fprintf(f, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)tck);
	one(f, "process_resident_memory_bytes", "gauge", "Resident memory size.",
	    rss_pages * (unsigned long long)page);
	one(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size.", vsize);
	one(f, "process_open_fds", "gauge", "Open file descriptors.", fds);
	(void)start;
}

static void
render(FILE *f, struct server *srv)
{
	const struct worker *w = srv->worker;
	const struct hub_stats *hs = hub_stats(w->hub);
	const struct metrics *m = &w->metrics;
	const struct metrics_process *pm = &srv->metrics;
	static const char *const refusals[METRICS_REFUSED_COUNT] = { "path", "origin",
								     "per_ip_limit", "per_ip_rate",
								     "capacity" };
	uint64_t cum = 0;

	header(f, "switchboard_build_info", "gauge", "Version of the running server.");
	fprintf(f, "switchboard_build_info{version=\"%s\"} 1\n", SWITCHBOARD_VERSION);
	one(f, "switchboard_connections", "gauge", "WebSocket connections open now.",
	    w->connections);
	one(f, "switchboard_connections_total", "counter", "WebSocket connections established.",
	    m->ws_opened);
	header(f, "switchboard_connections_refused_total", "counter",
	       "WebSocket upgrades refused, by reason.");
	for (size_t i = 0; i < METRICS_REFUSED_COUNT; i++)
		labelled(f, "switchboard_connections_refused_total", "reason", refusals[i],
			 m->ws_refused[i]);
	header(f, "switchboard_closes_total", "counter",
	       "Connections the server closed, by WebSocket close code (4008: slow consumer).");
	for (size_t i = 0; i < METRICS_CLOSE_COUNT; i++) {
		char code[8] = "other";

		if (i != METRICS_CLOSE_OTHER)
			snprintf(code, sizeof(code), "%d", close_codes[i]);
		labelled(f, "switchboard_closes_total", "code", code, m->ws_closes[i]);
	}
	one(f, "switchboard_slow_consumer_closes_total", "counter",
	    "Connections closed because their send queue passed its bound (4008).",
	    m->ws_closes[METRICS_CLOSE_4008]);
	one(f, "switchboard_idle_timeouts_total", "counter",
	    "Connections dropped after websocket.idle_timeout without traffic (no close frame).",
	    m->idle_timeouts);
	one(f, "switchboard_subscriptions", "gauge", "Subscriptions held now.", hs->subscriptions);
	one(f, "switchboard_channels", "gauge", "Channels with at least one local subscriber now.",
	    hub_channel_count(w->hub));
	one(f, "switchboard_engine_operations", "gauge",
	    "Operations waiting for the engine's answer now.", hub_pending_count(w->hub));
	header(f, "switchboard_messages_published_total", "counter",
	       "Messages published, by source (client or the HTTP API).");
	labelled(f, "switchboard_messages_published_total", "source", "client",
		 hs->published_client);
	labelled(f, "switchboard_messages_published_total", "source", "api", hs->published_server);
	one(f, "switchboard_messages_delivered_total", "counter",
	    "Message frames queued to subscribers (fan-out and replays).", hs->delivered);
	one(f, "switchboard_messages_replayed_total", "counter",
	    "Message frames queued by recover and rewind.", hs->replayed);
	one(f, "switchboard_join_leave_events_total", "counter", "join and leave frames queued.",
	    hs->join_leave);
	header(f, "switchboard_commands_total", "counter",
	       "Client commands received, by type (\"invalid\": not decodable).");
	for (size_t k = 0; k < PROTO_KIND_COUNT; k++)
		labelled(f, "switchboard_commands_total", "type",
			 k == PROTO_KIND_NONE ? "invalid" : proto_kind_name((enum proto_kind)k),
			 hs->commands[k]);
	header(f, "switchboard_errors_total", "counter", "Error frames sent to clients, by code.");
	for (size_t e = 1; e < PROTO_ERR_COUNT; e++)
		labelled(f, "switchboard_errors_total", "code",
			 proto_errcode_name((enum proto_errcode)e), hs->errors[e]);
	one(f, "switchboard_received_messages_total", "counter",
	    "WebSocket messages received from clients.", m->frames_in);
	one(f, "switchboard_received_bytes_total", "counter",
	    "Payload bytes of WebSocket messages received from clients.", m->bytes_in);
	one(f, "switchboard_sent_frames_total", "counter", "WebSocket frames written to clients.",
	    m->frames_out);
	one(f, "switchboard_sent_bytes_total", "counter",
	    "Bytes written to WebSocket clients (frame headers included).", m->bytes_out);
	one(f, "switchboard_writes_total", "counter",
	    "Socket writes carrying those frames (one write holds many frames).", m->writes);
	header(f, "switchboard_send_queue_depth", "histogram",
	       "Frames waiting in a connection's send queue when it is written.");
	for (size_t b = 0; b <= METRICS_QUEUE_BUCKETS; b++) {
		char le[24] = "+Inf";

		cum += m->queue_hist[b];
		if (b < METRICS_QUEUE_BUCKETS)
			snprintf(le, sizeof(le), "%zu", queue_bounds[b]);
		labelled(f, "switchboard_send_queue_depth_bucket", "le", le, cum);
	}
	fprintf(f, "switchboard_send_queue_depth_sum %llu\n", (unsigned long long)m->queue_sum);
	fprintf(f, "switchboard_send_queue_depth_count %llu\n", (unsigned long long)cum);
	header(f, "switchboard_http_responses_total", "counter",
	       "HTTP responses (API, /healthz, /metrics, errors), by status class.");
	for (int c = 2; c <= 5; c++) {
		char class[8];

		snprintf(class, sizeof(class), "%dxx", c);
		labelled(f, "switchboard_http_responses_total", "class", class, m->http_status[c]);
	}
	header(f, "switchboard_webhook_events_total", "counter",
	       "Webhook events by outcome: delivered (2xx), failed (dropped after an error or "
	       "every retry), dropped (queue full or shutdown).");
	labelled(f, "switchboard_webhook_events_total", "outcome", "delivered",
		 pm->webhook_delivered);
	labelled(f, "switchboard_webhook_events_total", "outcome", "failed", pm->webhook_failed);
	labelled(f, "switchboard_webhook_events_total", "outcome", "dropped", pm->webhook_dropped);
	one(f, "switchboard_webhook_requests_total", "counter", "Webhook HTTP requests made.",
	    pm->webhook_requests);
	process_metrics(f);
}

char *
metrics_render(struct server *srv, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (f == NULL)
		return NULL;
	render(f, srv);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
