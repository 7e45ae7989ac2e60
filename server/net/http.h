/* http.h: plain HTTP on the WebSocket port, the "http" protocol of the "/" mount:
 * GET /healthz, /readyz, /metrics, and JSON errors (426 for /ws, 404) for every other
 * path outside "/api". */
#ifndef SWITCHBOARD_HTTP_H
#define SWITCHBOARD_HTTP_H

#include <libwebsockets.h>
#include <stddef.h>

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len);

#endif
