/* server.h: runs a Switchboard server (one libwebsockets context, HTTP and WebSocket on
 * one port) until SIGINT/SIGTERM. */
#ifndef SWITCHBOARD_SERVER_H
#define SWITCHBOARD_SERVER_H

#include <stddef.h>

#include "engine.h"

struct config;

/* Serves cfg until SIGINT or SIGTERM, then drains (drain_period) and returns 0; returns
 * 1 if the server could not start. SIGHUP reloads cfg->path and updates the reloadable
 * parts of cfg in place (log level and format, API keys and quotas, allowed origins, the
 * TLS certificate and key). When ready_fd >= 0, the real listening port is written to it
 * as a decimal line once the server accepts connections (use port 0 to get a free port),
 * and ready_fd is closed. */
int server_run(struct config *cfg, int ready_fd);
/* Same with the engine made by make instead of the one cfg->engine names (the
 * integration tests run the real server over an engine that answers late). */
int server_run_with_engine(struct config *cfg, int ready_fd, engine_factory_fn make);

/* What the configuration loader leaves unread, checked the same way at start and on
 * SIGHUP: the webhooks entries, the JWT public key file, the TLS certificate and key
 * (they load and belong together). Returns 0, or -1 with a sentence that starts with
 * the configuration key in err. */
int server_config_check(const struct config *cfg, char *err, size_t len);

/* What libwebsockets can bind for host (borrowed): an address literal ("[::1]" loses its
 * brackets), a network interface name, or the first address a host name resolves to
 * (IPv4 first). lws itself takes only the first two and, given anything else, starts
 * with no listening socket, so a start refuses such a host (exit 1) and --check-config
 * too (exit 2). Returns 0 with the result in out (len bytes), or -1 with a sentence in
 * err (errlen bytes) that names the host. May block on name resolution. */
int server_resolve_host(const char *host, char *out, size_t len, char *err, size_t errlen);

#endif
