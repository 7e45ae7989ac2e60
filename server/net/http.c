/* http.c: plain HTTP on the WebSocket port: GET /healthz, GET /metrics, and JSON errors for
 * everything else. Mounted on "/" so that every non-upgrade request lands here. */
#include "config.h"
#include "hub.h"
#include "net.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
http_respond_with(struct lws *wsi, unsigned status, const char *body, size_t len,
		  const char *hname, const char *hvalue)
{
	return http_respond_full(wsi, status, body, len, hname, hvalue, true);
}

static int
respond(struct lws *wsi, unsigned status, const char *type, const char *body, size_t len,
	const char *hname, const char *hvalue, bool complete)
{
	struct server *srv = lws_context_user(lws_get_context(wsi));
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
					   *end = buf + sizeof(buf);
	unsigned char *out;
	int rc;

	if (status / 100 < 6)
		srv->metrics.http_status[status / 100]++;
	if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
	    (hname != NULL &&
	     lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
					 (const unsigned char *)hvalue, (int)strlen(hvalue), &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	out = malloc(LWS_PRE + len);
	if (out == NULL)
		return -1;
	memcpy(out + LWS_PRE, body, len);
	rc = lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
	free(out);
	if (rc < (int)len)
		return -1;
	if (!complete)
		return -1; /* the caller closes the connection */
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int
http_respond_full(struct lws *wsi, unsigned status, const char *body, size_t len,
		  const char *hname, const char *hvalue, bool complete)
{
	return respond(wsi, status, "application/json", body, len, hname, hvalue, complete);
}

int
http_respond_typed(struct lws *wsi, unsigned status, const char *type, const char *body,
		   size_t len)
{
	return respond(wsi, status, type, body, len, NULL, NULL, true);
}

int
http_respond(struct lws *wsi, unsigned status, const char *body, size_t len)
{
	return http_respond_with(wsi, status, body, len, NULL, NULL);
}

char *
http_error_body(const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return body;
}

int
http_respond_error_with(struct lws *wsi, unsigned status, const char *code, const char *message,
			const char *hname, const char *hvalue)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc;

	json_decref(o);
	if (body == NULL)
		return -1;
	rc = http_respond_with(wsi, status, body, strlen(body), hname, hvalue);
	free(body);
	return rc;
}

int
http_respond_error(struct lws *wsi, unsigned status, const char *code, const char *message)
{
	return http_respond_error_with(wsi, status, code, message, NULL, NULL);
}

static int
on_healthz(struct lws *wsi, struct server *srv)
{
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "{\"status\":\"%s\",\"version\":\"%s\",\"connections\":%zu,\"channels\":%zu}",
			 srv->shutting_down ? "stopping" : "ok", SWITCHBOARD_VERSION,
			 hub_session_count(srv->hub), hub_channel_count(srv->hub));

	return http_respond(wsi, srv->shutting_down ? HTTP_STATUS_SERVICE_UNAVAILABLE : HTTP_STATUS_OK,
			    body, (size_t)n);
}

int
net_confirm_upgrade(const char *upgrade)
{
	return upgrade != NULL && strcasecmp(upgrade, "websocket") == 0 ? 0 : -1;
}

/* Prometheus text exposition (metrics.c). */
static int
on_metrics(struct lws *wsi, struct server *srv)
{
	size_t len = 0;
	char *body = metrics_render(srv, &len);
	int rc;

	if (body == NULL)
		return http_respond_error(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal",
					  "out of memory");
	rc = http_respond_typed(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
				body, len);
	free(body);
	return rc;
}

static int
route(struct lws *wsi, int method, const char *uri, int ulen)
{
	struct server *srv = lws_context_user(lws_get_context(wsi));

	if (uri != NULL && ulen == 8 && memcmp(uri, "/metrics", 8) == 0) {
		if (method != LWSHUMETH_GET)
			return http_respond_error_with(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED,
						       "method_not_allowed", "/metrics answers GET only",
						       "allow:", "GET");
		return on_metrics(wsi, srv);
	}

	if (uri != NULL && ulen == 8 && memcmp(uri, "/healthz", 8) == 0) {
		if (method != LWSHUMETH_GET)
			return http_respond_error_with(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED,
						       "method_not_allowed", "/healthz answers GET only",
						       "allow:", "GET");
		return on_healthz(wsi, srv);
	}
	return http_respond_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
				  "no such resource; the WebSocket endpoint is /ws, the HTTP API /api/v1/");
}

static bool
is_api(struct lws *wsi)
{
	char *uri = NULL;
	int ulen = 0;

	return lws_http_get_uri_and_method(wsi, &uri, &ulen) >= 0 && uri != NULL && ulen >= 5 &&
	       memcmp(uri, "/api/", 5) == 0;
}

static int
on_http(struct lws *wsi)
{
	char *uri = NULL;
	int ulen = 0, method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	int rc = route(wsi, method, uri, ulen);

	/* No route here reads a request body, so a request that may carry one is answered
	 * and the connection closed: its unread body must not be parsed as a request. */
	return method == LWSHUMETH_GET ? rc : -1;
}

int
http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return net_confirm_upgrade(in);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* A client asking for subprotocol "http" must not get a WebSocket. */
		((struct server *)lws_context_user(lws_get_context(wsi)))
			->metrics.ws_refused[METRICS_REFUSED_PATH]++;
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "unknown subprotocol");
		return 1;
	case LWS_CALLBACK_HTTP:
		/* The HTTP API shares this protocol (its per-request state is this
		 * protocol's per-session data) and takes every callback of its requests. */
		if (is_api(wsi))
			return api_callback(wsi, reason, user, in, len);
		return on_http(wsi);
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		return api_callback(wsi, reason, user, in, len);
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
