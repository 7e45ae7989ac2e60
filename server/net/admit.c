/* admit.c: see admit.h. The per-address table (srv->ip_conns: address -> struct
 * ip_entry, owned here) is process-wide, as the limits it enforces are; entries outlive
 * their connections for a minute so that reconnecting does not reset the rate. */
#include "admit.h"
#include "bucket.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "net.h"
#include "netlog.h"
#include "peer.h"
#include "respond.h"
#include "worker.h"
#include "xalloc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
admit_confirm_upgrade(const char *upgrade)
{
	return upgrade != NULL && strcasecmp(upgrade, "websocket") == 0 ? 0 : -1;
}

int
admit_not_websocket(struct lws *wsi, enum lws_callback_reasons reason, void *in)
{
	struct worker *w = worker_of(wsi);

	if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE)
		return admit_confirm_upgrade(in);
	w->metrics.ws_refused[METRICS_REFUSED_PATH]++;
	return net_refuse(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
			  "unknown subprotocol; use switchboard.v1 or none", 0);
}

static bool
path_is_endpoint(struct lws *wsi)
{
	char path[64];
	int n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);

	return n > 0 && (strcmp(path, "/ws") == 0 || strcmp(path, "/") == 0);
}

/* Browsers send Origin; a request without one (not a browser) is not refused here. */
static bool
origin_allowed(struct server *srv, struct lws *wsi, const char *ip)
{
	char origin[256], clean[128];
	size_t i;
	json_t *o;

	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
		return true;
	json_array_foreach(srv->cfg->allowed_origins, i,
			   o) if (strcmp(json_string_value(o), "*") == 0 ||
				  strcasecmp(json_string_value(o), origin) == 0) return true;
	net_log_limited(srv, NET_LOG_ORIGIN,
			"ws: refusing upgrade from %s: origin %s not in "
			"allowed_origins",
			ip, log_clean(clean, sizeof(clean), origin, strlen(origin)));
	return false;
}

/* Per peer address: open WebSocket connections and the upgrade-rate bucket. Entries
 * outlive their connections for a while (ip_gc), or closing and reconnecting would
 * reset the rate limit. */
struct ip_entry {
	size_t conns;
	struct bucket rate;
	uint64_t last_ms;
};

static struct ip_entry *
ip_entry(struct server *srv, const char *ip)
{
	size_t len = strlen(ip);
	struct ip_entry *e = map_find(srv->ip_conns, ip, len);

	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		map_add(srv->ip_conns, ip, len, e);
	}
	e->last_ms = clock_now_ms();
	return e;
}

void
admit_count(struct server *srv, const char *ip, int delta)
{
	struct ip_entry *e = ip_entry(srv, ip);

	e->conns = (size_t)((ptrdiff_t)e->conns + delta);
}

/* Refuses an upgrade from client address ip past limits.max_connections_per_ip (503) or
 * past the address's connection rate (429). Returns 0, or 1 after answering. */
static int
ip_admit(struct worker *w, struct lws *wsi, const char *ip)
{
	struct server *srv = w->srv;
	const struct config_limits *l = &srv->cfg->limits;
	struct ip_entry *e;
	uint64_t retry_ms = 0;

	e = ip_entry(srv, ip);
	if (e->conns >= l->max_connections_per_ip) {
		net_log_limited(
			srv, NET_LOG_PER_IP_LIMIT,
			"ws: refusing upgrade from %s: limits.max_connections_per_ip reached", ip);
		w->metrics.ws_refused[METRICS_REFUSED_PER_IP]++;
		return net_refuse(
			wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "too_many_connections",
			"too many connections from this address (limits.max_connections_per_ip)",
			1);
	}
	if (!bucket_take(&e->rate, l->connect_rate_per_second, l->connect_rate_burst,
			 clock_now_ms(), &retry_ms)) {
		net_log_limited(
			srv, NET_LOG_PER_IP_RATE,
			"ws: refusing upgrade from %s: limits.connection_rate_per_ip reached", ip);
		w->metrics.ws_refused[METRICS_REFUSED_RATE]++;
		return net_refuse(
			wsi, 429, "rate_limited",
			"connecting too fast from this address (limits.connection_rate_per_ip)",
			(unsigned)((retry_ms + 999) / 1000));
	}
	return 0;
}

struct gc {
	struct server *srv;
	uint64_t now;
	char (*dead)[48];
	size_t n, cap;
};

static void
find_idle(void *arg, const char *key, size_t len, void *value)
{
	struct gc *g = arg;
	struct ip_entry *e = value;

	if (e->conns > 0 || g->now - e->last_ms < 60000 || len >= 48)
		return;
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->dead = xrealloc(g->dead, g->cap * sizeof(*g->dead));
	}
	memcpy(g->dead[g->n], key, len);
	g->dead[g->n++][len] = '\0';
}

void
admit_gc(struct server *srv)
{
	struct gc g = { .srv = srv, .now = clock_now_ms() };

	map_foreach(srv->ip_conns, find_idle, &g);
	for (size_t i = 0; i < g.n; i++)
		free(map_remove(srv->ip_conns, g.dead[i], strlen(g.dead[i])));
	free(g.dead);
}

static void
free_entry(void *arg, const char *key, size_t len, void *value)
{
	(void)arg, (void)key, (void)len;
	free(value);
}

void
admit_fini(struct server *srv)
{
	if (srv->ip_conns == NULL)
		return;
	map_foreach(srv->ip_conns, free_entry, NULL);
	map_free(srv->ip_conns);
	srv->ip_conns = NULL;
}

void
admit_init(struct server *srv, const uint8_t seed[16])
{
	srv->ip_conns = map_new(seed);
}

int
admit_upgrade(struct worker *w, struct lws *wsi, char ip[48])
{
	struct server *srv = w->srv;

	/* WebSocket over HTTP/2 would put our raw frames inside h2 DATA frames: refuse. */
	if (lws_get_network_wsi(wsi) != wsi) {
		w->metrics.ws_refused[METRICS_REFUSED_PATH]++;
		return net_refuse(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
				  "WebSocket over HTTP/2 is not supported", 0);
	}
	if (!path_is_endpoint(wsi)) {
		w->metrics.ws_refused[METRICS_REFUSED_PATH]++;
		return net_refuse(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
				  "no WebSocket endpoint here; use /ws", 0);
	}
	/* The headers are there only until ESTABLISHED: the address is resolved now. */
	net_client_addr(srv, wsi, ip);
	if (!origin_allowed(srv, wsi, ip)) {
		w->metrics.ws_refused[METRICS_REFUSED_ORIGIN]++;
		return net_refuse(wsi, HTTP_STATUS_FORBIDDEN, "forbidden",
				  "origin not allowed (allowed_origins)", 0);
	}
	if (ip_admit(w, wsi, ip) != 0)
		return 1;
	if (srv->shutting_down || w->connections >= srv->cfg->limits.max_connections) {
		if (srv->shutting_down)
			net_log_limited(srv, NET_LOG_DRAINING,
					"ws: refusing upgrade from %s: draining", ip);
		else
			net_log_limited(srv, NET_LOG_CAPACITY,
					"ws: refusing upgrade from %s: "
					"limits.max_connections reached (%zu open)",
					ip, w->connections);
		w->metrics.ws_refused[METRICS_REFUSED_CAPACITY]++;
		if (srv->shutting_down)
			return net_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "unavailable",
					  "the server is shutting down; connect to another node",
					  5);
		return net_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "unavailable",
				  "the server is at its connection limit (limits.max_connections)",
				  1);
	}
	return 0;
}
