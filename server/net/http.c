/* http.c: plain HTTP on the WebSocket port: GET /healthz (liveness), /readyz (readiness),
 * /metrics, and JSON errors for everything else. Mounted on "/", so that every
 * non-upgrade request outside the API's "/api" mount (api.c) lands here; answers go
 * through http_send() (respond.c). */
#include "http.h"
#include "admit.h"
#include "hub.h"
#include "metrics.h"
#include "net.h"
#include "respond.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Liveness: 200 while the process serves, draining included. */
static int
on_healthz(struct lws *wsi, struct worker *w)
{
	char body[256];
	int n = snprintf(
		body, sizeof(body),
		"{\"status\":\"%s\",\"version\":\"%s\",\"connections\":%zu,\"channels\":%zu}",
		w->srv->shutting_down ? "draining" : "ok", SWITCHBOARD_VERSION,
		hub_session_count(w->hub), hub_channel_count(w->hub));

	return http_respond(wsi, HTTP_STATUS_OK, body, (size_t)n);
}

/* Readiness: 503 once a drain has begun, so a load balancer sends no one new. */
static int
on_readyz(struct lws *wsi, struct worker *w)
{
	static const char draining[] = "{\"status\":\"draining\"}",
			  ready[] = "{\"status\":\"ready\"}";

	if (w->srv->shutting_down)
		return http_send(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "application/json", draining,
				 sizeof(draining) - 1, "retry-after:", "5", 0);
	return http_respond(wsi, HTTP_STATUS_OK, ready, sizeof(ready) - 1);
}

/* Prometheus text exposition (metrics.c). */
static int
on_metrics(struct lws *wsi, struct worker *w)
{
	size_t len = 0;
	char *body = metrics_render(w->srv, &len);
	int rc;

	if (body == NULL)
		return http_respond_error(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal",
					  "out of memory");
	rc = http_send(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
		       NULL, NULL, 0);
	free(body);
	return rc;
}

static bool
path_is(const char *uri, int ulen, const char *path)
{
	return uri != NULL && (size_t)ulen == strlen(path) && memcmp(uri, path, (size_t)ulen) == 0;
}

/* GET and HEAD only; anything else is answered 405 and the connection closed (its body,
 * if any, is never read). */
static int
route(struct lws *wsi, int method, const char *uri, int ulen)
{
	struct worker *w = worker_of(wsi);
	static const struct {
		const char *path;
		int (*fn)(struct lws *wsi, struct worker *w);
	} routes[] = {
		{ "/healthz", on_healthz },
		{ "/readyz", on_readyz },
		{ "/metrics", on_metrics },
	};
	bool get = method == LWSHUMETH_GET || method == LWSHUMETH_HEAD;
	unsigned close = get ? 0 : HTTP_CLOSE;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		char msg[64];

		if (!path_is(uri, ulen, routes[i].path))
			continue;
		if (get)
			return routes[i].fn(wsi, w);
		snprintf(msg, sizeof(msg), "%s answers GET and HEAD only", routes[i].path);
		return http_send_error(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed",
				       msg, "allow:", "GET, HEAD", HTTP_CLOSE);
	}
	if (path_is(uri, ulen, "/ws"))
		return http_send_error(
			wsi, 426, "upgrade_required",
			"/ws is the WebSocket endpoint: send an Upgrade: websocket request",
			"upgrade:", "websocket", close);
	return http_send_error(
		wsi, HTTP_STATUS_NOT_FOUND, "not_found",
		"no such resource; the WebSocket endpoint is /ws, the HTTP API /api/v1/", NULL,
		NULL, close);
}

static int
on_http(struct lws *wsi)
{
	char *uri = NULL;
	int ulen = 0, method = lws_http_get_uri_and_method(wsi, &uri, &ulen);

	return route(wsi, method, uri, ulen);
}

int
http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* A client asking for subprotocol "http" must not get a WebSocket. */
		return admit_not_websocket(wsi, reason, in);
	case LWS_CALLBACK_HTTP:
		return on_http(wsi);
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
