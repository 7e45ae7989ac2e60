/* api.h: the HTTP API for backends (docs/http-api.md), served on its own "/api" mount
 * by the "api" protocol. Its state (a quota bucket per API key) is process-wide and
 * owned by struct server (srv->api); a request's state is the protocol's per-session
 * data, zeroed by lws. */
#ifndef SWITCHBOARD_API_H
#define SWITCHBOARD_API_H

#include <libwebsockets.h>
#include <stddef.h>

struct config;
struct server;

/* The "api" protocol callback (the "/api" mount's), and the size of its per-request
 * state. */
int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		 size_t len);
size_t api_req_size(void);
/* Creates srv->api (one quota bucket per key of srv->cfg); api_fini frees it (NULL-safe). */
int api_init(struct server *srv);
void api_fini(struct server *srv);
/* SIGHUP: the API keys of next replace the running ones (next gets the old ones, to be
 * freed with it); a key kept under the same name keeps its quota bucket. */
void api_reload(struct server *srv, struct config *next);

#endif
