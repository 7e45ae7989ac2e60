/* http_client.c: the libcurl-based test client of http_client.h. */
#include "http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mono.h"

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void
buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->failed)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

/* Hands the string over (never NULL unless out of memory). */
static char *
buf_take(struct buf *b)
{
	char *p = b->p != NULL ? b->p : strdup("");

	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	buf_add(arg, data, size * n);
	return size * n;
}

/* Keeps the headers of the last response only (a 100 Continue comes before it). */
static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	if (size * n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		b->len = 0;
	buf_add(b, data, size * n);
	return size * n;
}

struct upload {
	const char *p;
	size_t left;
	size_t piece; /* 0: as much as fits */
	unsigned delay_us;
	bool started;
};

static size_t
on_read(char *out, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t len = size * n;

	if (u->left == 0)
		return 0;
	if (u->piece > 0 && len > u->piece)
		len = u->piece;
	if (len > u->left)
		len = u->left;
	if (u->started && u->delay_us > 0) {
		struct timespec ts = { u->delay_us / 1000000,
				       (long)(u->delay_us % 1000000) * 1000 };

		nanosleep(&ts, NULL);
	}
	u->started = true;
	memcpy(out, u->p, len);
	u->p += len;
	u->left -= len;
	return len;
}

static void
global_init(void)
{
	static bool done;

	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = true;
	}
}

static struct curl_slist *
add_header(struct curl_slist *list, bool *ok, const char *fmt, ...)
{
	struct curl_slist *l;
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		va_end(ap);
		*ok = false;
		return list;
	}
	va_end(ap);
	l = curl_slist_append(list, s);
	free(s);
	if (l == NULL) {
		*ok = false;
		return list;
	}
	return l;
}

int
http_do(int port, const struct http_req *req, struct http_resp *resp)
{
	const char *method = req->method != NULL ? req->method : "GET";
	int timeout = req->timeout_ms > 0 ? req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
	struct buf head = { 0 }, body = { 0 };
	struct curl_slist *hdrs = NULL;
	struct upload up = { 0 };
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	bool ok = true;
	CURLcode rc;
	CURL *h;

	memset(resp, 0, sizeof(*resp));
	global_init();
	h = curl_easy_init();
	if (h == NULL) {
		snprintf(resp->error, sizeof(resp->error), "curl_easy_init failed");
		resp->head = strdup("");
		resp->body = strdup("");
		return -1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, req->path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &head);
	/* The server answers before a client would wait for 100 Continue. */
	hdrs = add_header(hdrs, &ok, "Expect:");
	if (req->authorization != NULL)
		hdrs = add_header(hdrs, &ok, "Authorization: %s", req->authorization);
	else if (req->key != NULL)
		hdrs = add_header(hdrs, &ok, "Authorization: Bearer %s", req->key);

	if (req->body != NULL) {
		size_t len = req->body_len > 0 ? req->body_len : strlen(req->body);

		if (req->content_type == NULL)
			hdrs = add_header(hdrs, &ok, "Content-Type: application/json");
		else if (req->content_type[0] == '\0')
			hdrs = add_header(hdrs, &ok, "Content-Type:"); /* removes curl's own */
		else
			hdrs = add_header(hdrs, &ok, "Content-Type: %s", req->content_type);
		up.p = req->body;
		up.left = len;
		switch (req->mode) {
		case HTTP_BODY_FIXED:
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
			break;
		case HTTP_BODY_CHUNKED:
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, &up);
			hdrs = add_header(hdrs, &ok, "Transfer-Encoding: chunked");
			break;
		case HTTP_BODY_TRICKLE:
			up.piece = req->trickle_bytes > 0 ? req->trickle_bytes : 1;
			up.delay_us = req->trickle_delay_us;
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, &up);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
			break;
		}
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "POST") == 0) {
		/* An empty body: Content-Length: 0, no Content-Type. */
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		hdrs = add_header(hdrs, &ok, "Content-Type:");
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	for (const char *const *x = req->headers; x != NULL && *x != NULL; x++)
		hdrs = add_header(hdrs, &ok, "%s", *x);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	if (!ok) {
		snprintf(resp->error, sizeof(resp->error), "out of memory building the headers");
		rc = CURLE_OUT_OF_MEMORY;
	} else {
		rc = curl_easy_perform(h);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (rc != CURLE_OK)
		snprintf(resp->error, sizeof(resp->error), "%.16s %.80s: %.120s", method, req->path,
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	resp->head = buf_take(&head);
	resp->body_len = body.len;
	resp->body = buf_take(&body);
	if (resp->status > 0 && resp->body_len > 0) {
		json_error_t jerr;

		resp->json = json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, &jerr);
		if (resp->json == NULL && resp->error[0] == '\0')
			snprintf(resp->error, sizeof(resp->error), "body is not JSON: %s",
				 jerr.text);
	}
	return resp->status > 0 ? 0 : -1;
}

int
http_call(int port, const char *method, const char *path, const char *key, const char *body,
	  struct http_resp *resp)
{
	struct http_req req = { .method = method, .path = path, .key = key, .body = body };

	return http_do(port, &req, resp);
}

int
http_callf(int port, const char *method, const char *path, const char *key, struct http_resp *resp,
	   const char *fmt, ...)
{
	va_list ap;
	char *body;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0) {
		va_end(ap);
		memset(resp, 0, sizeof(*resp));
		snprintf(resp->error, sizeof(resp->error), "out of memory");
		return -1;
	}
	va_end(ap);
	rc = http_call(port, method, path, key, body, resp);
	free(body);
	return rc;
}

void
http_resp_fini(struct http_resp *resp)
{
	free(resp->head);
	free(resp->body);
	json_decref(resp->json);
	memset(resp, 0, sizeof(*resp));
}

char *
http_resp_header(const struct http_resp *resp, const char *name)
{
	size_t nlen = strlen(name);
	const char *line = resp->head;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		if (len > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			const char *e = line + len;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && isspace((unsigned char)e[-1]))
				e--;
			return strndup(v, (size_t)(e - v));
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

char *
http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* ---- raw exchanges ---- */

/* Parses one complete response at the start of buf into *r. Returns the bytes it took,
 * or 0 when it is not complete yet (or has no Content-Length: it ends with the
 * connection then, and is taken when `closed`). */
static size_t
parse_response(const char *buf, size_t len, bool closed, struct http_resp *r)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	size_t hlen, blen;
	char *cl;

	if (end == NULL)
		return 0;
	hlen = (size_t)(end - buf) + 4;
	memset(r, 0, sizeof(*r));
	r->head = strndup(buf, hlen);
	if (r->head == NULL)
		return 0;
	cl = http_resp_header(r, "Content-Length");
	if (cl != NULL) {
		blen = (size_t)strtoul(cl, NULL, 10);
		free(cl);
	} else if (closed) {
		blen = len - hlen;
	} else {
		http_resp_fini(r);
		return 0;
	}
	if (len - hlen < blen) {
		http_resp_fini(r);
		return 0;
	}
	sscanf(r->head, "HTTP/%*d.%*d %ld", &r->status);
	r->body = strndup(buf + hlen, blen);
	r->body_len = blen;
	if (blen > 0)
		r->json = json_loadb(r->body, blen, JSON_REJECT_DUPLICATES, NULL);
	return hlen + blen;
}

int
http_raw(int port, const void *bytes, size_t len, int want, int timeout_ms,
	 struct http_raw_result *out)
{
	int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : HTTP_DEFAULT_TIMEOUT_MS);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct buf in = { 0 };
	size_t done = 0;
	int fd;

	memset(out, 0, sizeof(*out));
	if (want > HTTP_RAW_MAX)
		want = HTTP_RAW_MAX;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(out->error, sizeof(out->error), "connect: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (const char *p = bytes; len > 0;) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(out->error, sizeof(out->error), "send: %s", strerror(errno));
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	while (out->count < want && !out->closed) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - mono_ms();
		char chunk[16384];
		ssize_t n;
		size_t took;

		if (left <= 0)
			break;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			out->closed = true;
		else
			buf_add(&in, chunk, (size_t)n);
		while (out->count < HTTP_RAW_MAX && in.len > done &&
		       (took = parse_response(in.p + done, in.len - done, out->closed,
					      &out->resp[out->count])) > 0) {
			done += took;
			out->count++;
		}
	}
	out->extra = in.len - done;
	free(in.p);
	close(fd);
	return 0;
}

void
http_raw_fini(struct http_raw_result *out)
{
	for (int i = 0; i < out->count; i++)
		http_resp_fini(&out->resp[i]);
	out->count = 0;
}
