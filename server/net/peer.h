/* peer.h: the address a WebSocket client is counted and logged under: its socket peer,
 * or, when that peer is one of trusted_proxies, the client that X-Forwarded-For or
 * Forwarded names (util/forwarded.h has the rules). */
#ifndef SWITCHBOARD_PEER_H
#define SWITCHBOARD_PEER_H

#include <libwebsockets.h>

struct server;

/* Writes the client address of wsi's request into out ("" when the socket has no IP
 * peer). Reads the request headers, so it works up to ESTABLISHED and not after: call it
 * in FILTER_PROTOCOL_CONNECTION and keep the result for the connection's life. */
void net_client_addr(struct server *srv, struct lws *wsi, char out[48]);

#endif
