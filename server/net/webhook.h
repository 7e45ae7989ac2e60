/* webhook.h: outgoing webhooks (docs/http-api.md, "Webhooks"). The hub's events are
 * queued per configured endpoint and POSTed in signed JSON batches by lws client
 * connections on the server's own loop: nothing here ever blocks, so a slow or dead
 * endpoint cannot delay delivery to WebSocket clients. One request is in flight per
 * endpoint, which keeps each endpoint's events in order across retries.
 */
#ifndef SWITCHBOARD_WEBHOOK_H
#define SWITCHBOARD_WEBHOOK_H

#include <libwebsockets.h>
#include <stddef.h>

#include <jansson.h>

struct server;
struct webhooks;

#define WEBHOOK_BATCH_MAX 100	       /* events in one request */
#define WEBHOOK_BATCH_BYTES (1u << 20) /* body bytes in one request (one event may exceed) */
#define WEBHOOK_FLUSH_MS 50	       /* longest wait before a partial batch is sent */
#define WEBHOOK_QUEUE_MAX 10000	       /* events waiting per endpoint; newer ones are dropped */
#define WEBHOOK_BACKOFF_MS 250	       /* first retry delay, doubled per attempt */
#define WEBHOOK_BACKOFF_MAX_MS 30000

/* Checks the "webhooks" list of the configuration (borrowed; NULL is an empty list).
 * Returns 0, or -1 with a sentence naming the key path in err, e.g.
 * "webhooks[0].timeout_ms: must be an integer from 1 to 600000". */
int webhook_config_check(const json_t *list, char *err, size_t errlen);

/* Validates srv->cfg->webhooks and, if it names any endpoint, sets srv->webhooks and
 * registers with the hub (hub_set_events) so events start flowing. srv->hub must exist;
 * srv->ctx may not exist yet (nothing is sent before the loop runs). Returns 0, or -1
 * after logging the problem (nothing is kept). */
int webhook_init(struct server *srv);

/* After the lws context exists: gives the https endpoints client-only vhosts, one per
 * distinct ca_file (or none), each with its own TLS client context (the system's CA store
 * plus that ca_file).
 * Returns 0, or -1 after logging; webhook_fini() frees what was made either way. */
int webhook_attach(struct server *srv);

/* Before lws_context_destroy(): drops every queued and in-flight batch (one log line
 * with the count), cancels the timers and ignores events from then on. Idempotent. */
void webhook_shutdown(struct server *srv);
/* Events queued or in a batch not yet delivered, over every endpoint (0 without
 * webhooks): a drain waits for them. */
size_t webhook_pending(const struct server *srv);

/* After lws_context_destroy(): frees everything (calls webhook_shutdown() if needed). */
void webhook_fini(struct server *srv);

/* The "hook" protocol callback of the client connections. */
int webhook_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len);

#endif
