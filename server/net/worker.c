/* worker.c: one event loop (worker.h). Its lws context has explicit vhosts: the context's
 * user is the process (struct server, what the HTTP API and the webhooks reach through
 * lws_context_user), the listening vhost's is this worker (worker_of). The vhost serves
 * plain HTTP on "/" (http.c), the HTTP API on "/api" (api.c) and WebSocket upgrades
 * (ws.c) on one port; the webhook clients (webhook.c) run on the same loop.
 *
 * The loop is libev's (epoll), ours, which lws 4.1.6 runs on through its libev plugin
 * (a "foreign loop"): an iteration costs what the ready sockets cost. lws's default
 * loop poll()s every connection on every iteration, which with 10,000 connections in
 * many small rooms was most of the CPU (docs/performance.md). Without the plugin
 * (libwebsockets-evlib-ev) the worker falls back to that loop, and says so.
 *
 * Two lws 4.1.6 plugin facts shape this file. The plugin re-arms its timer only from
 * its own timer and idle callbacks, and calls ev_timer_set() on a running timer there,
 * which libev ignores: a timer scheduled earlier than the one armed would fire late,
 * up to whenever that one is due (idle connections then went unpinged for minutes).
 * The beat, an lws timer every NET_BEAT_US, bounds that: the armed timer is never
 * further away. And pings and the idle hang-up are ours (ws_liveness, on the beat), not
 * lws's: lws keeps one timer per connection in a list it sorts by walking it, so each
 * connect and each pong cost O(connections) (10,000 connects took 4 s).
 */
#include "worker.h"
#include "api.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "net.h"
#include "webhook.h"
#include "ws.h"
#include "wsout.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>

static void
on_tick(lws_sorted_usec_list_t *sul)
{
	struct worker *w = lws_container_of(sul, struct worker, tick);

	hub_tick(w->hub, clock_now_ms());
	lws_sul_schedule(w->ctx, 0, &w->tick, on_tick, LWS_US_PER_SEC);
}

static void
on_beat(lws_sorted_usec_list_t *sul)
{
	struct worker *w = lws_container_of(sul, struct worker, beat);

	ws_liveness(w, clock_now_ms());
	lws_sul_schedule(w->ctx, 0, &w->beat, on_beat, NET_BEAT_US);
}

struct worker *
worker_new(struct server *srv, const uint8_t seed[16])
{
	const struct config *cfg = srv->cfg;
	struct worker *w = xcalloc(1, sizeof(*w));
	struct core_config core;

	w->srv = srv;
	config_to_core(cfg, &core); /* copied by the hub; policy borrowed from cfg */
	w->hub = hub_new_with_engine(&core, seed, srv->make_engine);
	if (w->hub == NULL) {
		free(w);
		return NULL;
	}
	w->batch = xmalloc(NET_BATCH_MAX);
	/* lws's own pings and hang-up stay off (zero): ws_liveness does both. */
	w->idle_policy = (lws_retry_bo_t){ 0 };
	w->ping_ms = (uint64_t)cfg->ws.ping_interval * 1000;
	w->idle_ms = (uint64_t)cfg->ws.idle_timeout * 1000;
	return w;
}

static void
drop_loop(struct worker *w)
{
	if (w->loop != NULL)
		ev_loop_destroy(w->loop);
	w->loop = NULL;
}

struct settle {
	lws_sorted_usec_list_t sul;
	bool done;
};

static void
on_settled(lws_sorted_usec_list_t *sul)
{
	lws_container_of(sul, struct settle, sul)->done = true;
}

/* lws finishes making a context from a timer due 1 µs later (the protocols' init: which
 * protocol serves an upgrade naming none is decided there). On the poll() loop the
 * first pass runs it before any socket; on libev a connection served first would be
 * answered 404. So the loop runs, before anything listens, until a timer due after
 * that one has fired. The beat is scheduled first: the plugin's timer is then armed no
 * further away than the beat from the start (see the file head). */
static void
settle(struct worker *w)
{
	struct settle st = { .done = false };

	lws_sul_schedule(w->ctx, 0, &w->beat, on_beat, NET_BEAT_US);
	lws_sul_schedule(w->ctx, 0, &st.sul, on_settled, 2);
	lws_cancel_service(w->ctx);
	for (int i = 0; i < 1000 && !st.done; i++)
		ev_run(w->loop, EVRUN_ONCE);
	lws_sul_cancel(&st.sul);
}

/* The context on a libev loop of ours, or on lws's poll() loop when the plugin cannot
 * be loaded. */
static struct lws_context *
create_context(struct worker *w, struct lws_context_creation_info *info)
{
	struct lws_context *ctx;
	void *loops[1];

	/* NOENV: LIBEV_FLAGS in the environment must not pick select() behind our back. */
	w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (w->loop != NULL) {
		loops[0] = w->loop;
		info->foreign_loops = loops;
		info->options |= LWS_SERVER_OPTION_LIBEV;
		ctx = lws_create_context(info);
		info->foreign_loops = NULL;
		info->options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
		if (ctx != NULL) {
			log_debug("server: event loop: libev %d.%d, epoll", ev_version_major(),
				  ev_version_minor());
			w->ctx = ctx;
			settle(w);
			return ctx;
		}
		drop_loop(w);
	}
	log_warn("server: no libev event loop (is libwebsockets-evlib-ev installed?): "
		 "running on poll(), whose every iteration visits every connection");
	return lws_create_context(info);
}

int
worker_listen(struct worker *w, const char *iface)
{
	static const struct lws_protocol_vhost_options pvo_default = { .name = "default",
								       .value = "1" };
	static const struct lws_protocol_vhost_options pvo = { .name = "switchboard.v1",
							       .options = &pvo_default,
							       .value = "" };
	/* lws 4.1.6 takes the last CALLBACK mount that matches, not the longest: "/api"
	 * comes after "/". */
	static const struct lws_http_mount api_mount = { .mountpoint = "/api",
							 .mountpoint_len = 4,
							 .origin = "api",
							 .origin_protocol = LWSMPRO_CALLBACK };
	static const struct lws_http_mount mount = { .mount_next = &api_mount,
						     .mountpoint = "/",
						     .mountpoint_len = 1,
						     .origin = "http",
						     .origin_protocol = LWSMPRO_CALLBACK };
	const struct config *cfg = w->srv->cfg;
	struct lws_context_creation_info info;
	struct in_addr a4;

	w->protocols[0] = (struct lws_protocols){ .name = "http", .callback = http_callback };
	w->protocols[1] = (struct lws_protocols){ .name = "switchboard.v1",
						  .callback = ws_callback,
						  .per_session_data_size = ws_conn_size(),
						  .rx_buffer_size = 512,
						  .tx_packet_size = NET_BATCH_MAX + 16 };
	w->protocols[2] = (struct lws_protocols){ .name = "api",
						  .callback = api_callback,
						  .per_session_data_size = api_req_size() };
	w->protocols[3] = (struct lws_protocols){ .name = "hook", .callback = webhook_callback };
	w->protocols[4] = (struct lws_protocols){ NULL, NULL, 0, 0, 0, NULL, 0 };

	memset(&info, 0, sizeof(info));
	info.port = cfg->port;
	info.iface = iface;
	info.protocols = w->protocols;
	info.pvo = &pvo;
	info.mounts = &mount;
	/* TLS is initialised even without tls.cert: https:// webhooks need the client side. */
	/* Without FAIL_UPON_UNABLE_TO_BIND, lws starts with no listening socket when the
	 * address is not (yet) on an interface, and waits for it to appear. */
	info.options =
		LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	if (cfg->tls_cert != NULL) {
		/* wss and https on the same port. HTTP/1.1 only: our raw-framed writes must not
		 * travel inside HTTP/2 (ALPN would otherwise pick h2). */
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		info.alpn = "http/1.1";
	}
	/* lws 4.1 binds an IPv4 address given as iface on its dual-stack socket as "any"
	 * (it listened on *:port): an IPv4 literal must turn IPv6 off to be honoured. */
	if (iface != NULL && inet_pton(AF_INET, iface, &a4) == 1)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.retry_and_idle_policy = &w->idle_policy;
	info.max_http_header_data = 16384;
	info.timeout_secs = 10;
	info.vhost_name = "default";

	/* The same settings make the context (its user: the process) and then the vhost
	 * (its user: this worker). */
	info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.user = w->srv;
	w->ctx = create_context(w, &info);
	if (w->ctx != NULL) {
		info.user = w;
		w->vhost = lws_create_vhost(w->ctx, &info);
	}
	if (w->vhost == NULL) {
		log_error("server: cannot listen on %s:%d (address in use or not available%s)",
			  cfg->host != NULL ? cfg->host : "*", cfg->port,
			  cfg->tls_cert != NULL ? ", or tls.cert/tls.key unusable" : "");
		if (w->ctx != NULL)
			lws_context_destroy(w->ctx);
		w->ctx = NULL;
		drop_loop(w);
		return -1;
	}
	lws_sul_schedule(w->ctx, 0, &w->tick, on_tick, LWS_US_PER_SEC);
	if (w->loop == NULL)
		lws_sul_schedule(w->ctx, 0, &w->beat, on_beat, NET_BEAT_US);
	return 0;
}

void
worker_service(struct worker *w)
{
	uint64_t until = w->metrics.bytes_in + NET_READ_BUDGET;

	if (w->loop != NULL) {
		ev_run(w->loop, EVRUN_ONCE);
		/* Sockets lws must serve without a readiness event (TLS records already
		 * decrypted, buffered input): the plugin does this from an idle watcher,
		 * which libev starves while every iteration has events. */
		if (lws_service_adjust_timeout(w->ctx, 1, 0) == 0)
			_lws_plat_service_forced_tsi(w->ctx, 0);
	} else {
		lws_service(w->ctx, 0);
	}
	/* lws reads at most rx_buffer_size bytes per socket and pass. While a sender (a
	 * publisher) has more waiting, read on (within a byte budget) so that one flush
	 * carries many messages per subscriber. */
	for (int i = 0; i < NET_MAX_EXTRA_PASSES && ws_read_more(w, until); i++)
		;
	w->nrx_fds = 0;
	wsout_flush(w);
}

void
worker_stop(struct worker *w)
{
	if (w->ctx == NULL)
		return;
	lws_sul_cancel(&w->tick);
	lws_sul_cancel(&w->beat);
	lws_context_destroy(w->ctx); /* closes what is left; CLOSED empties the hub */
	w->ctx = NULL;
	w->vhost = NULL;
	drop_loop(w);
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	worker_stop(w);
	hub_free(w->hub);
	free(w->batch);
	free(w);
}
