/* respond.c: see respond.h. Our own status line (lws echoes HTTP/1.0 before an upgrade
 * and has no reason phrase for 201, 426 or 429), headers and body in one write. Only
 * HTTP/1.1 is ever spoken (no h2, see worker.c), where a header block is plain bytes. */
#include "respond.h"
#include "worker.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reason phrases (RFC 9110 §15); lws's own table has none for 201, 426 or 429. */
static const char *
reason(unsigned status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return status < 500 ? "Client Error" : "Server Error";
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
	struct worker *w = worker_of(wsi);
	size_t cap = LWS_PRE + 1024 + len;
	unsigned char *buf = malloc(cap), *start, *p, *end;
	char line[64];
	int n, rc;

	if (buf == NULL)
		return -1;
	start = p = buf + LWS_PRE;
	end = buf + cap;
	if (w != NULL && status / 100 < 6)
		w->metrics.http_status[status / 100]++;
	/* The status line is ours: lws echoes HTTP/1.0 before an upgrade and leaves out the
	 * reason phrases it does not know. Only HTTP/1.1 is ever spoken here (no h2, see
	 * server.c), where a header block is plain bytes. */
	n = snprintf(line, sizeof(line), "HTTP/1.1 %u %s", status, reason(status));
	if (lws_add_http_header_by_name(wsi, NULL, (unsigned char *)line, n, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)type, (int)strlen(type), &p, end) ||
	    lws_add_http_header_content_length(wsi, len, &p, end) ||
	    (hname != NULL && lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
							  (const unsigned char *)hvalue,
							  (int)strlen(hvalue), &p, end)) ||
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
				       "malformed request: check the path, its percent-encoding "
				       "and the method",
				       NULL, NULL, HTTP_LINGER | HTTP_CLOSE) != 0;
	if (status == HTTP_STATUS_NOT_FOUND)
		return http_send_error(wsi, 404, "not_found", "no such resource", NULL, NULL,
				       HTTP_LINGER | HTTP_CLOSE) != 0;
	return http_send_error(wsi, status, status < 500 ? "bad_request" : "internal",
			       reason(status), NULL, NULL, HTTP_LINGER | HTTP_CLOSE) != 0;
}
