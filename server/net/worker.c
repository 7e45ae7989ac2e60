/* worker.c: one event loop (worker.h). Its lws context has explicit vhosts: the context's
 * user is the process (struct server, what the HTTP API and the webhooks reach through
 * lws_context_user), the listening vhost's is this worker (worker_of). The vhost serves
 * plain HTTP on "/" (http.c), the HTTP API on "/api" (api.c) and WebSocket upgrades
 * (ws.c) on one port; the webhook clients (webhook.c) run on the same loop.
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
#include <stdlib.h>
#include <string.h>

static void
on_tick(lws_sorted_usec_list_t *sul)
{
	struct worker *w = lws_container_of(sul, struct worker, tick);

	hub_tick(w->hub, clock_now_ms());
	lws_sul_schedule(w->ctx, 0, &w->tick, on_tick, LWS_US_PER_SEC);
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
	w->idle_policy = (lws_retry_bo_t){
		.secs_since_valid_ping = (uint16_t)cfg->ws.ping_interval,
		.secs_since_valid_hangup = (uint16_t)cfg->ws.idle_timeout,
	};
	return w;
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
						  .rx_buffer_size = 1024,
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
	w->ctx = lws_create_context(&info);
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
		return -1;
	}
	lws_sul_schedule(w->ctx, 0, &w->tick, on_tick, LWS_US_PER_SEC);
	return 0;
}

void
worker_service(struct worker *w)
{
	uint64_t until = w->metrics.bytes_in + NET_READ_BUDGET;

	lws_service(w->ctx, 0);
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
	lws_context_destroy(w->ctx); /* closes what is left; CLOSED empties the hub */
	w->ctx = NULL;
	w->vhost = NULL;
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
