/* respond.h: the one HTTP answer writer. Every HTTP response of the server goes through
 * http_send(): the API's, /healthz and friends, refusals of a WebSocket upgrade, and the
 * answers lws makes itself to malformed requests (lws_return_http_status, defined in
 * respond.c). A leaf of net/: it calls nothing else of net/, only counts each answer in
 * its loop's metrics. Nothing here keeps a pointer past the call. */
#ifndef SWITCHBOARD_RESPOND_H
#define SWITCHBOARD_RESPOND_H

#include <libwebsockets.h>
#include <stddef.h>

/* How http_send() ends: HTTP_CLOSE says "Connection: close" and the callback returns
 * -1; HTTP_LINGER leaves the connection to the caller (it returns 0 and must end the
 * transaction or the connection itself later); HTTP_REFUSE is for a refusal made in
 * FILTER_PROTOCOL_CONNECTION, before an upgrade (returns 1, lws closes). Without a flag
 * the transaction completes and the connection is kept alive. */
#define HTTP_CLOSE 1u
#define HTTP_LINGER 2u
#define HTTP_REFUSE 4u

/* Sends a complete HTTP/1.1 response (status line with its reason phrase, Content-Type,
 * Content-Length, one more header hname:hvalue unless hname is NULL; hname ends with
 * ':'), headers and body in one write, the body left out for HEAD. All strings are
 * borrowed. Returns what the callback should return (see the flags). */
int http_send(struct lws *wsi, unsigned status, const char *type, const char *body, size_t len,
	      const char *hname, const char *hvalue, unsigned flags);
/* The same with {"error":{"code":code,"message":message}}. */
int http_send_error(struct lws *wsi, unsigned status, const char *code, const char *message,
		    const char *hname, const char *hvalue, unsigned flags);
/* A JSON response, kept alive. */
int http_respond(struct lws *wsi, unsigned status, const char *body, size_t len);
int http_respond_error(struct lws *wsi, unsigned status, const char *code, const char *message);
/* {"error":{"code":code,"message":message}} as a new malloc'd string (the caller frees
 * it), or NULL. */
char *http_error_body(const char *code, const char *message);
/* Refuses a WebSocket upgrade from FILTER_PROTOCOL_CONNECTION with a JSON error (and
 * Retry-After: retry_after seconds unless 0); returns what FILTER returns. */
int net_refuse(struct lws *wsi, unsigned status, const char *code, const char *message,
	       unsigned retry_after);

#endif
