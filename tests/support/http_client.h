/* http_client.h: a small blocking HTTP/1.1 client for tests of the HTTP API
 * (docs/http-api.md), on top of libcurl. One request per call, each on its own
 * connection to 127.0.0.1:port, with a deadline; no proxy, no Expect: 100-continue.
 * Besides ordinary requests it can send a body the way a test needs it: with
 * Content-Length in one piece, chunked without a length, or trickled a few bytes at a
 * time with a Content-Length (many small TCP segments).
 *
 *	struct http_resp r;
 *	http_call(port, "POST", "/api/v1/channels/chat:a/messages", "sk_test_1",
 *		  "{\"data\":1}", &r);
 *	cr_assert_eq(r.status, 201, "%s", r.body);
 *	http_resp_fini(&r);
 */
#ifndef SWITCHBOARD_TEST_HTTP_CLIENT_H
#define SWITCHBOARD_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define HTTP_DEFAULT_TIMEOUT_MS 5000

enum http_body_mode {
	HTTP_BODY_FIXED,   /* Content-Length, the body in one piece (default) */
	HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked, no Content-Length */
	HTTP_BODY_TRICKLE, /* Content-Length, sent trickle_bytes at a time */
};

struct http_req {
	const char *method;	   /* "GET", "POST", "DELETE", "PUT"...; NULL: "GET" */
	const char *path;	   /* sent as is (already percent-encoded), with its query */
	const char *key;	   /* NULL: no Authorization; else "Bearer <key>" */
	const char *authorization; /* not NULL: the whole Authorization value (overrides key) */
	const char *content_type;  /* NULL: application/json when there is a body;
				    * "": no Content-Type header at all */
	const char *body;	   /* NULL: no body */
	size_t body_len;	   /* 0: strlen(body) */
	enum http_body_mode mode;
	size_t trickle_bytes;	    /* HTTP_BODY_TRICKLE: bytes per piece (0: 1) */
	unsigned trickle_delay_us;  /* HTTP_BODY_TRICKLE: pause between pieces */
	const char *const *headers; /* NULL-terminated extra "Name: value" lines, or NULL */
	int timeout_ms;		    /* <= 0: HTTP_DEFAULT_TIMEOUT_MS */
};

struct http_resp {
	long status; /* 0 when no response came */
	char *head;  /* status line and headers of the final response */
	char *body;  /* NUL-terminated (the NUL is not counted in body_len) */
	size_t body_len;
	json_t *json;	 /* the body parsed (duplicate keys refused), or NULL */
	char error[256]; /* transport failure or JSON parse error, "" when none */
};

/* Sends the request and fills *resp (always initialised, free it with
 * http_resp_fini()). Returns 0 when a response arrived (resp->status set, even if the
 * transfer then failed, e.g. the server closed before reading the whole body: then
 * resp->error says so too), -1 when none did (resp->error says why). */
int http_do(int port, const struct http_req *req, struct http_resp *resp);

/* Shorthand: method and path, key (NULL: none) and an application/json body (NULL:
 * none). */
int http_call(int port, const char *method, const char *path, const char *key, const char *body,
	      struct http_resp *resp);

/* The same with a printf-formatted body. */
int http_callf(int port, const char *method, const char *path, const char *key,
	       struct http_resp *resp, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

void http_resp_fini(struct http_resp *resp);

/* The value of response header `name` (case-insensitive; the first one), trimmed, as a
 * new string; NULL when absent. */
char *http_resp_header(const struct http_resp *resp, const char *name);

/* A raw exchange, for what libcurl would not send (pipelined requests, bodies framed
 * both ways): connects to 127.0.0.1:port, sends the bytes as they are in one write,
 * then reads until `want` complete responses (framed by Content-Length) have come, the
 * server closed the connection, or timeout_ms (<= 0: HTTP_DEFAULT_TIMEOUT_MS) passed. */
#define HTTP_RAW_MAX 8

struct http_raw_result {
	struct http_resp resp[HTTP_RAW_MAX]; /* the complete responses, in order */
	int count;
	bool closed;	 /* the server closed the connection (end of file or reset) */
	size_t extra;	 /* bytes received after the last complete response */
	char error[128]; /* connect or send failure, "" when none */
};

/* Returns 0, or -1 when connecting or sending failed (out->error says why). Free the
 * result with http_raw_fini(). */
int http_raw(int port, const void *bytes, size_t len, int want, int timeout_ms,
	     struct http_raw_result *out);
void http_raw_fini(struct http_raw_result *out);

/* s percent-encoded for a path segment or a query value: every byte but
 * A-Z a-z 0-9 - . _ ~ becomes %XX. New string. */
char *http_escape(const char *s);

#endif
