/* http.c: plain HTTP on the WebSocket port: GET /healthz (liveness), /readyz (readiness),
 * /metrics, and JSON errors for everything else, and the one response writer every HTTP
 * answer goes through (the API's, and refusals before a WebSocket upgrade). Mounted on
 * "/" so that every non-upgrade request lands here. */
#include "config.h"
#include "hub.h"
#include "net.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reason phrases (RFC 9110 §15); lws's own table has none for 201, 426 or 429. */
static const char *
reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

static bool
is_head(struct lws *wsi)
{
	char *uri = NULL;
	int ulen = 0;

	return lws_http_get_uri_and_method(wsi, &uri, &ulen) == LWSHUMETH_HEAD;
}

int
http_send(struct lws *wsi, unsigned status, const char *type, const char *body, size_t len,
	  const char *hname, const char *hvalue, unsigned flags)
{
	struct server *srv = lws_context_user(lws_get_context(wsi));
	size_t cap = LWS_PRE + 1024 + len;
	unsigned char *buf = malloc(cap), *start, *p, *end;
	char line[64];
	int n, rc;

	if (buf == NULL)
		return -1;
	start = p = buf + LWS_PRE;
	end = buf + cap;
	if (status / 100 < 6)
		srv->metrics.http_status[status / 100]++;
	/* The status line is ours: lws echoes HTTP/1.0 before an upgrade and leaves out the
	 * reason phrases it does not know. Only HTTP/1.1 is ever spoken here (no h2, see
	 * server.c), where a header block is plain bytes. */
	n = snprintf(line, sizeof(line), "HTTP/1.1 %u %s", status, reason(status));
	if (lws_add_http_header_by_name(wsi, NULL, (unsigned char *)line, n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)type,
					 (int)strlen(type), &p, end) ||
	    lws_add_http_header_content_length(wsi, len, &p, end) ||
	    (hname != NULL &&
	     lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
					 (const unsigned char *)hvalue, (int)strlen(hvalue), &p, end)) ||
	    ((flags & HTTP_CLOSE) &&
	     lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					  5, &p, end)) ||
	    lws_finalize_http_header(wsi, &p, end)) {
		free(buf);
		return -1;
	}
	if (len > 0 && !is_head(wsi)) {
		memcpy(p, body, len);
		p += len;
	}
	/* Headers and body leave in one write. */
	n = (int)(p - start);
	rc = lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP);
	free(buf);
	if (rc < n)
		return -1;
	if (flags & HTTP_REFUSE)
		return 1;
	if (flags & HTTP_LINGER)
		return 0;
	if (flags & HTTP_CLOSE)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
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
http_send_error(struct lws *wsi, unsigned status, const char *code, const char *message,
		const char *hname, const char *hvalue, unsigned flags)
{
	char *body = http_error_body(code, message);
	int rc;

	if (body == NULL)
		return -1;
	rc = http_send(wsi, status, "application/json", body, strlen(body), hname, hvalue, flags);
	free(body);
	return rc;
}

int
http_respond(struct lws *wsi, unsigned status, const char *body, size_t len)
{
	return http_send(wsi, status, "application/json", body, len, NULL, NULL, 0);
}

int
http_respond_error(struct lws *wsi, unsigned status, const char *code, const char *message)
{
	return http_send_error(wsi, status, code, message, NULL, NULL, 0);
}

int
net_refuse(struct lws *wsi, unsigned status, const char *code, const char *message,
	   unsigned retry_after)
{
	char retry[16];

	snprintf(retry, sizeof(retry), "%u", retry_after);
	return http_send_error(wsi, status, code, message, retry_after > 0 ? "retry-after:" : NULL,
			       retry, HTTP_REFUSE | HTTP_CLOSE);
}

/* The level of each cause's lines. */
static const enum log_level log_levels[NET_LOG_CAUSES] = {
	[NET_LOG_ORIGIN] = LOG_INFO,       [NET_LOG_PER_IP_LIMIT] = LOG_WARN,
	[NET_LOG_PER_IP_RATE] = LOG_WARN,  [NET_LOG_CAPACITY] = LOG_WARN,
	[NET_LOG_DRAINING] = LOG_INFO,     [NET_LOG_API_401] = LOG_INFO,
	[NET_LOG_API_429] = LOG_INFO,
};

/* line, and how many more like it were held back (in the second before). */
static void
emit_counted(enum log_level level, const char *line, uint64_t more)
{
	if (more > 0)
		log_emit(level, "%s (and %" PRIu64 " more in the last second)", line, more);
	else
		log_emit(level, "%s", line);
}

static void on_log_timer(lws_sorted_usec_list_t *sul);

/* Wakes on_log_timer when the first cause with lines held back is a second past its
 * last line. Armed when a cause starts holding back, not for every line held. */
static void
log_timer_arm(struct server *srv)
{
	uint64_t now = net_now_ms(), due = UINT64_MAX;

	for (int i = 0; i < NET_LOG_CAUSES; i++)
		if (srv->log_limits[i].held > 0 && srv->log_limits[i].last_ms + 1000 < due)
			due = srv->log_limits[i].last_ms + 1000;
	if (due != UINT64_MAX)
		lws_sul_schedule(srv->ctx, 0, &srv->log_timer, on_log_timer,
				 (lws_usec_t)((due > now ? due - now : 0) + 1) * 1000);
}

/* Each cause with lines held back for a second: the last of them stands for all. */
static void
on_log_timer(lws_sorted_usec_list_t *sul)
{
	struct server *srv = lws_container_of(sul, struct server, log_timer);
	uint64_t now = net_now_ms();

	for (int i = 0; i < NET_LOG_CAUSES; i++) {
		uint64_t held = log_limit_flush(&srv->log_limits[i], now);

		if (held > 0)
			emit_counted(log_levels[i], srv->log_held[i], held - 1);
	}
	log_timer_arm(srv);
}

void
net_log_limited(struct server *srv, enum net_log_cause cause, const char *fmt, ...)
{
	struct log_limit *l = &srv->log_limits[cause];
	uint64_t held = 0;
	char line[sizeof(srv->log_held[0])];
	va_list ap;

	if (log_levels[cause] > log_level_current)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_limit_take(l, net_now_ms(), &held)) {
		emit_counted(log_levels[cause], line, held);
		return;
	}
	memcpy(srv->log_held[cause], line, sizeof(line));
	if (l->held == 1)
		log_timer_arm(srv);
}

void
net_log_fini(struct server *srv)
{
	lws_sul_cancel(&srv->log_timer);
	for (int i = 0; i < NET_LOG_CAUSES; i++)
		if (srv->log_limits[i].held > 0)
			emit_counted(log_levels[i], srv->log_held[i], srv->log_limits[i].held - 1);
}

/* lws answers some malformed requests itself, before any callback of ours: a bad
 * percent-encoding, a path that is not absolute, an unknown method or upgrade (all
 * 403), no protocol for a request (404). Its answer is an HTML page over HTTP/1.0 that
 * clients cannot read as one of our errors. The library makes these calls through its
 * PLT, so this definition in the server takes the place of lws's own for them (the test
 * http_edge_end_to_end checks that it does): the same JSON errors as everywhere else,
 * and the connection closes (lws does not read on after these). */
int
lws_return_http_status(struct lws *wsi, unsigned int code, const char *html_body)
{
	unsigned status = code & LWSAHH_CODE_MASK;

	(void)html_body;
	if (status == HTTP_STATUS_FORBIDDEN)
		return http_send_error(wsi, 400, "bad_request",
				       "malformed request: check the path, its percent-encoding and the method",
				       NULL, NULL, HTTP_LINGER | HTTP_CLOSE) != 0;
	if (status == HTTP_STATUS_NOT_FOUND)
		return http_send_error(wsi, 404, "not_found", "no such resource", NULL, NULL,
				       HTTP_LINGER | HTTP_CLOSE) != 0;
	return http_send_error(wsi, status, status < 500 ? "bad_request" : "internal", reason(status),
			       NULL, NULL, HTTP_LINGER | HTTP_CLOSE) != 0;
}

/* Liveness: 200 while the process serves, draining included. */
static int
on_healthz(struct lws *wsi, struct server *srv)
{
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "{\"status\":\"%s\",\"version\":\"%s\",\"connections\":%zu,\"channels\":%zu}",
			 srv->shutting_down ? "draining" : "ok", SWITCHBOARD_VERSION,
			 hub_session_count(srv->hub), hub_channel_count(srv->hub));

	return http_respond(wsi, HTTP_STATUS_OK, body, (size_t)n);
}

/* Readiness: 503 once a drain has begun, so a load balancer sends no one new. */
static int
on_readyz(struct lws *wsi, struct server *srv)
{
	static const char draining[] = "{\"status\":\"draining\"}", ready[] = "{\"status\":\"ready\"}";

	if (srv->shutting_down)
		return http_send(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "application/json", draining,
				 sizeof(draining) - 1, "retry-after:", "5", 0);
	return http_respond(wsi, HTTP_STATUS_OK, ready, sizeof(ready) - 1);
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
	struct server *srv = lws_context_user(lws_get_context(wsi));
	static const struct {
		const char *path;
		int (*fn)(struct lws *wsi, struct server *srv);
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
			return routes[i].fn(wsi, srv);
		snprintf(msg, sizeof(msg), "%s answers GET and HEAD only", routes[i].path);
		return http_send_error(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed", msg,
				       "allow:", "GET, HEAD", HTTP_CLOSE);
	}
	if (path_is(uri, ulen, "/ws"))
		return http_send_error(wsi, 426, "upgrade_required",
				       "/ws is the WebSocket endpoint: send an Upgrade: websocket request",
				       "upgrade:", "websocket", close);
	return http_send_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
			       "no such resource; the WebSocket endpoint is /ws, the HTTP API /api/v1/",
			       NULL, NULL, close);
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

	return route(wsi, method, uri, ulen);
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
		return net_refuse(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
				  "unknown subprotocol; use switchboard.v1 or none", 0);
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
