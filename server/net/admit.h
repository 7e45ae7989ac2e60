/* admit.h: who may open a WebSocket. An upgrade is admitted only on the endpoint path
 * (/ws or /), from an allowed Origin, within the per-address connection limit and
 * connection rate, and below limits.max_connections while the server is not draining;
 * anything else is refused with a JSON HTTP error before the upgrade, counted in the
 * loop's metrics and logged at most once a second per cause (netlog.h). */
#ifndef SWITCHBOARD_ADMIT_H
#define SWITCHBOARD_ADMIT_H

#include <libwebsockets.h>
#include <stdint.h>

struct server;
struct worker;

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: only "websocket" may upgrade (h2c is refused, so
 * no HTTP/2 connection can carry our raw-framed writes). Returns the callback's result. */
int admit_confirm_upgrade(const char *upgrade);

/* CONFIRM_UPGRADE and FILTER_PROTOCOL_CONNECTION of a protocol that is not a WebSocket
 * one ("http", "api"): a client asking for that subprotocol gets a 404, not a
 * WebSocket. in is the callback's. Returns the callback's result. */
int admit_not_websocket(struct lws *wsi, enum lws_callback_reasons reason, void *in);

/* FILTER_PROTOCOL_CONNECTION of the WebSocket protocol, on worker w: resolves the
 * client address into ip (peer.h; kept by the caller for the connection's life) and
 * admits or refuses the upgrade. Returns 0 to admit, else what FILTER returns after the
 * refusal was answered. Admitting counts nothing: admit_count() does, at ESTABLISHED. */
int admit_upgrade(struct worker *w, struct lws *wsi, char ip[48]);

/* Per-address bookkeeping (process-wide, in srv->ip_conns): delta is +1 when a
 * connection from ip is established, -1 when it closes. */
void admit_count(struct server *srv, const char *ip, int delta);
/* admit_init creates the per-address table (seed keys its hash); admit_gc (1 s tick)
 * drops entries idle for a minute; admit_fini frees it all (NULL-safe, idempotent). */
void admit_init(struct server *srv, const uint8_t seed[16]);
void admit_gc(struct server *srv);
void admit_fini(struct server *srv);

#endif
