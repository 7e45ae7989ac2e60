/* server.c: the process (struct server, net.h): configuration, authentication, the HTTP
 * API's keys, webhooks, per-address limits, and the one worker (worker.c: the lws
 * context serving HTTP and WebSocket on one port, default poll loop) it runs; the
 * configuration reload on SIGHUP, and the graceful drain on SIGINT/SIGTERM: upgrades are refused
 * and /readyz fails at once, clients are closed with 4012 spread over drain_period seconds, webhook
 * queues are flushed, then the loop ends and the context is destroyed. A second signal (or
 * drain_period 0) closes everyone at once with 1001 and ends the loop within 2 s.
 */
#include "server.h"
#include "admit.h"
#include "api.h"
#include "clock.h"
#include "config.h"
#include "hub.h"
#include "jwt.h"
#include "log.h"
#include "net.h"
#include "netlog.h"
#include "webhook.h"
#include "worker.h"

#include <math.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_MS 2000
#define DRAIN_STEP_US (100 * 1000)
/* File descriptors kept beyond limits.max_connections: the listener, HTTP API clients,
 * webhook requests, configuration and log files. */
#define FD_RESERVE 1024

/* Signal handlers can reach nothing else: these are the only process-wide state. */
static volatile sig_atomic_t got_signal, signal_count, got_hup;
static struct lws_context *volatile signal_ctx;

static void
on_signal(int sig)
{
	if (sig == SIGHUP) {
		got_hup = 1;
	} else {
		got_signal = sig;
		signal_count++;
	}
	if (signal_ctx != NULL)
		lws_cancel_service(signal_ctx);
}

/* struct hub_auth over the JWT verifier. */
static int
auth_verify(void *arg, const char *token, size_t len, json_t **claims, char *msg, size_t msglen)
{
	return jwt_verify(arg, token, len, clock_wall_s(), claims, msg, msglen) == JWT_OK ? 0 : -1;
}

static int64_t
auth_now(void *arg)
{
	(void)arg;
	return clock_wall_s();
}

/* Tokens are verified only when auth.jwt has a key; the clock is always wired (for
 * token expiry). Returns 0, or -1 if a key cannot be loaded. */
static int
setup_auth(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	struct hub_auth auth = { .now = auth_now };
	char err[256];

	if (cfg->jwt_secret != NULL || cfg->jwt_public_key != NULL) {
		srv->jwt = jwt_verifier_new(cfg->jwt_secret, cfg->jwt_public_key, cfg->jwt_leeway,
					    err, sizeof(err));
		if (srv->jwt == NULL) {
			log_error("server: auth.jwt: %s", err);
			return -1;
		}
		auth.verify = auth_verify;
		auth.arg = srv->jwt;
		if (cfg->jwt_secret != NULL && strlen(cfg->jwt_secret) < 32)
			log_warn("server: auth.jwt.hmac_secret is %zu bytes; RFC 7518 asks for at "
				 "least 32 (HS256)",
				 strlen(cfg->jwt_secret));
	}
	if (srv->jwt == NULL && !cfg->anonymous)
		log_warn("server: auth.anonymous is false and auth.jwt has no key: no client can "
			 "connect");
	hub_set_auth(srv->hub, &auth);
	return 0;
}

/* Process housekeeping, on the worker's loop. */
static void
on_tick(lws_sorted_usec_list_t *sul)
{
	struct server *srv = lws_container_of(sul, struct server, tick);

	admit_gc(srv);
	lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, LWS_US_PER_SEC);
}

/* lws's own log lines go through our emitter, at a level matching ours. Its warning
 * for every upgrade we refuse on purpose (404, 503) is noise: that goes to debug. */
static void
lws_emit(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && line[n - 1] == '\n')
		n--;
	if (level & LLL_ERR)
		log_error("lws: %.*s", (int)n, line);
	else if ((level & LLL_WARN) && strstr(line, "User code denied connection") == NULL)
		log_warn("lws: %.*s", (int)n, line);
	else if (strncmp(line, "elops_", 6) != 0) /* the libev plugin: a line per I/O change */
		log_debug("lws: %.*s", (int)n, line);
}

static int
lws_log_mask(enum log_level level)
{
	switch (level) {
	case LOG_ERROR:
		return LLL_ERR;
	case LOG_WARN:
	case LOG_INFO:
		return LLL_ERR | LLL_WARN;
	case LOG_DEBUG:
		return LLL_ERR | LLL_WARN | LLL_NOTICE;
	}
	return LLL_ERR;
}

static void
install_signals(struct lws_context *ctx)
{
	struct sigaction sa = { .sa_handler = on_signal };

	signal_ctx = ctx;
	got_signal = signal_count = got_hup = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void
report_ready(int ready_fd, int port)
{
	char line[16];
	int n;

	if (ready_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%d\n", port);
	if (write(ready_fd, line, (size_t)n) != n)
		log_warn("server: cannot report the port on fd %d", ready_fd);
	close(ready_fd);
}

/* Sizes the open-file limit to the configuration before lws sizes its fd table from it:
 * a soft limit of 1024 (a common default) would refuse connections long before
 * limits.max_connections, and a far larger one only makes lws's tables bigger. Never
 * past the hard limit; a warning if that is too low. */
static void
fit_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->limits.max_connections + FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
		log_warn("server: the hard open-file limit (%llu) is below limits.max_connections "
			 "(%zu) + %d; connections may be refused before max_connections "
			 "(raise it with ulimit -Hn)",
			 (unsigned long long)rl.rlim_max, cfg->limits.max_connections, FD_RESERVE);
		want = rl.rlim_max;
	}
	if (want == rl.rlim_cur)
		return;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("server: cannot set the open-file limit to %llu",
			 (unsigned long long)want);
}

static void on_drain_step(lws_sorted_usec_list_t *sul);

/* Everyone still open is closed now with 1001; the loop ends within the grace period. */
static void
stop_now(struct server *srv)
{
	log_info("server: signal %d, closing %zu connections now", (int)got_signal,
		 srv->worker->connections);
	srv->shutting_down = srv->stopping = true;
	hub_shutdown(srv->worker->hub);
	srv->deadline = clock_now_ms() + SHUTDOWN_GRACE_MS;
	/* Wake the loop at the deadline even if no socket moves. */
	lws_sul_schedule(srv->ctx, 0, &srv->drain_timer, on_drain_step, SHUTDOWN_GRACE_MS * 1000);
}

/* One step of a drain (every 100 ms): the clients open at its start are closed (4012)
 * at an even pace, the k-th of n at the first step past (k-1)/n of drain_period, so the
 * first (or a lone client) goes at the first step after the start and the last well
 * before the end; whoever is left at the end goes then. */
static void
on_drain_step(lws_sorted_usec_list_t *sul)
{
	struct server *srv = lws_container_of(sul, struct server, drain_timer);
	uint64_t now = clock_now_ms();
	size_t due =
		now >= srv->drain_end
			? SIZE_MAX
			: (size_t)ceil((double)srv->drain_total * (double)(now - srv->drain_start) /
				       (double)(srv->drain_end - srv->drain_start));

	if (!srv->stopping && due > srv->drain_kicked)
		srv->drain_kicked += hub_drain(srv->worker->hub, due - srv->drain_kicked);
	lws_sul_schedule(srv->ctx, 0, &srv->drain_timer, on_drain_step, DRAIN_STEP_US);
}

static void
start_drain(struct server *srv)
{
	uint64_t now = clock_now_ms();

	if (srv->cfg->drain_period == 0) {
		stop_now(srv);
		return;
	}
	srv->shutting_down = true;
	srv->drain_total = hub_session_count(srv->worker->hub);
	srv->drain_start = now;
	srv->drain_end = now + (uint64_t)srv->cfg->drain_period * 1000;
	srv->deadline = srv->drain_end + SHUTDOWN_GRACE_MS;
	log_info("server: signal %d, draining %zu connections over %u s (a second signal stops "
		 "at once)",
		 (int)got_signal, srv->drain_total, srv->cfg->drain_period);
	on_drain_step(&srv->drain_timer);
}

/* A drain is done once every client is gone and every webhook event delivered; a stop
 * once every client is gone. Either ends at its deadline. */
static bool
finished(struct server *srv)
{
	if (clock_now_ms() >= srv->deadline)
		return true;
	if (srv->worker->connections > 0)
		return false;
	return srv->stopping || webhook_pending(srv) == 0;
}

/* Runs the loop until a signal, then drains (see the file head). */
static void
serve(struct server *srv)
{
	for (;;) {
		worker_service(srv->worker);
		if (got_hup) {
			got_hup = 0;
			server_reload(srv);
			lws_set_log_level(lws_log_mask(srv->cfg->log_level), lws_emit);
		}
		if (signal_count > 0 && !srv->shutting_down)
			start_drain(srv);
		else if (signal_count > 1 && !srv->stopping)
			stop_now(srv);
		if (srv->shutting_down && finished(srv))
			break;
	}
}

int
server_run(struct config *cfg, int ready_fd)
{
	return server_run_with_engine(cfg, ready_fd, NULL);
}

int
server_run_with_engine(struct config *cfg, int ready_fd, engine_factory_fn make)
{
	struct server srv = { .cfg = cfg, .make_engine = make };
	struct worker *w;
	char iface[256], err[512];
	uint8_t seed[16];
	int rc = 1;

	log_level_current = cfg->log_level;
	log_format_current = cfg->log_format;
	lws_set_log_level(lws_log_mask(cfg->log_level), lws_emit);
	if (RAND_bytes(seed, sizeof(seed)) != 1) {
		log_error("server: no randomness available");
		return 1;
	}
	if (cfg->host != NULL) {
		if (server_resolve_host(cfg->host, iface, sizeof(iface), err, sizeof(err)) != 0) {
			log_error("server: %s", err);
			if (ready_fd >= 0)
				close(ready_fd);
			return 1;
		}
		if (strcmp(iface, cfg->host) != 0)
			log_info("server: host %s is %s", cfg->host, iface);
	}
	w = srv.worker = worker_new(&srv, seed);
	if (w == NULL) {
		log_error("server: unknown engine \"%s\"", cfg->engine);
		return 1;
	}
	srv.hub = w->hub;
	if (setup_auth(&srv) != 0) {
		worker_free(w);
		return 1;
	}
	api_init(&srv);
	if (webhook_init(&srv) != 0) {
		log_error("server: refusing to start: bad webhooks configuration");
		api_fini(&srv);
		worker_free(w);
		jwt_verifier_free(srv.jwt);
		if (ready_fd >= 0)
			close(ready_fd);
		return 1;
	}
	fit_fd_limit(cfg);
	admit_init(&srv, seed);

	if (worker_listen(w, cfg->host != NULL ? iface : NULL) != 0)
		goto out;
	srv.ctx = w->ctx;
	srv.vhost = w->vhost;
	if (webhook_attach(&srv) != 0) {
		log_error("server: refusing to start: bad webhooks configuration");
		worker_stop(w);
		goto out;
	}
	install_signals(srv.ctx);
	lws_sul_schedule(srv.ctx, 0, &srv.tick, on_tick, LWS_US_PER_SEC);
	log_info("server: switchboard %s listening on %s:%d (engine %s%s)", SWITCHBOARD_VERSION,
		 cfg->host != NULL ? cfg->host : "*", lws_get_vhost_listen_port(w->vhost),
		 cfg->engine, cfg->tls_cert != NULL ? ", tls" : "");
	report_ready(ready_fd, lws_get_vhost_listen_port(w->vhost));
	ready_fd = -1; /* closed */

	serve(&srv);
	rc = 0;

	signal_ctx = NULL;
	lws_sul_cancel(&srv.tick);
	lws_sul_cancel(&srv.drain_timer);
	net_log_fini(&srv);
	webhook_shutdown(&srv); /* drops pending deliveries before their connections go */
	worker_stop(w);		/* closes what is left; CLOSED empties the hub */
	log_info("server: stopped");
out:
	if (ready_fd >= 0)
		close(ready_fd);
	srv.ctx = NULL;
	srv.vhost = NULL;
	srv.hub = NULL;
	worker_free(w);
	jwt_verifier_free(srv.jwt);
	api_fini(&srv);
	webhook_fini(&srv);
	admit_fini(&srv);
	return rc;
}
