/* net.h: the process's state as net/ sees it (struct server): what every worker shares
 * and what happens once per process (configuration, JWT verifier, API keys and quotas,
 * webhooks, per-address limits, signals, the drain, rate-limited log lines). Per-loop
 * state (lws context, hub, write path, counters) is struct worker (worker.h). Only net/
 * includes this. The lws context's user pointer is the struct server.
 *
 * One worker runs today. Process-wide code that still runs on a loop (the timers here,
 * the webhook clients, the HTTP API until it takes a struct worker) reaches that worker's
 * context, vhost and hub through the borrowed ctx, vhost and hub below. */
#ifndef SWITCHBOARD_NET_H
#define SWITCHBOARD_NET_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "netlog.h"

struct api_state;
struct config;
struct hub;
struct jwt_verifier;
struct map;
struct webhooks;
struct worker;

struct server {
	struct config *cfg;		 /* borrowed; SIGHUP updates its reloadable parts */
	struct worker *worker;		 /* owned: the one loop */
	struct hub *hub;		 /* borrowed: worker->hub */
	engine_factory_fn make_engine;	 /* NULL: the engine cfg->engine names */
	struct lws_context *ctx;	 /* borrowed: worker->ctx (the timers below, webhooks) */
	struct lws_vhost *vhost;	 /* borrowed: worker->vhost (plain-http webhook clients) */
	bool shutting_down;		 /* a drain (or a stop) has begun: no new upgrades */
	bool stopping;			 /* closing everyone at once (a second signal) */
	uint64_t drain_start, drain_end; /* ms: clients are closed spread over this span */
	size_t drain_total, drain_kicked;
	uint64_t deadline;		    /* ms: the loop ends by then whatever is left */
	lws_sorted_usec_list_t drain_timer; /* 100 ms steps of a drain */
	lws_sorted_usec_list_t tick;	    /* 1 s process housekeeping (admit_gc) */
	struct jwt_verifier *jwt;	    /* owned, or NULL without auth.jwt */
	struct api_state *api;		    /* owned: HTTP API state (api.c) */
	struct webhooks *webhooks;	    /* owned: outgoing webhooks (webhook.c), or NULL */
	struct map *ip_conns;		    /* owned: peer address -> struct ip_entry (admit.c) */
	struct metrics_process metrics;	    /* the process's counters (webhooks) */
	struct log_limit log_limits[NET_LOG_CAUSES]; /* net_log_limited (netlog.c) */
	char log_held[NET_LOG_CAUSES][256];	     /* the last line each held back */
	lws_sorted_usec_list_t log_timer; /* writes held-back lines a second on (netlog.c) */
};

/* SIGHUP (reload.c): loads cfg->path again and applies what can change while running;
 * a file that does not load changes nothing. Logs what changed. */
void server_reload(struct server *srv);

#endif
