/* ws_client.c: the blocking test client of ws_client.h.
 * The socket is non-blocking and every read or write goes through poll() with the
 * caller's deadline, so a silent or stalled server makes a test fail, never hang.
 */
#include "ws_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mono.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_FRAME (64u << 20) /* larger frames from the server are a violation */
#define HTTP_MAX_HEAD 16384

struct ws_pending {
	struct ws_pending *next;
	struct ws_msg msg;
};

/* ---- time and raw I/O ---- */

static int
left_ms(int64_t deadline)
{
	int64_t left = deadline - mono_ms();

	return left < 0 ? 0 : (int)left;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	for (;;) {
		rc = poll(&p, 1, left_ms(deadline));
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static int
send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) != 1)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

static int
tcp_connect(int port, int rcvbuf, int64_t deadline)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, one = 1, err = 0;
	socklen_t elen = sizeof(err);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	if (wait_fd(fd, POLLOUT, deadline) != 1)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)
		goto fail;
	return fd;

fail:
	close(fd);
	return -1;
}

/* Reads what is available into c->rbuf, waiting until deadline.
 * 1: bytes added, 0: timed out, -1: end of file or error (c->eof set). */
static int
fill(struct ws_client *c, int64_t deadline)
{
	ssize_t n;

	if (c->fd < 0 || c->eof)
		return -1;
	if (c->rcap - c->rlen < 65536) {
		size_t cap = c->rcap * 2 > c->rlen + 65536 ? c->rcap * 2 : c->rlen + 65536;
		unsigned char *p = realloc(c->rbuf, cap);

		if (p == NULL)
			return -1;
		c->rbuf = p;
		c->rcap = cap;
	}
	for (;;) {
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n > 0) {
			c->rlen += (size_t)n;
			return 1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c->fd, POLLIN, deadline);

			if (rc == 1)
				continue;
			if (rc == 0)
				return 0;
		}
		c->eof = true;
		return -1;
	}
}

static void
consume(struct ws_client *c, size_t n)
{
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	c->rlen -= n;
}

/* ---- handshake ---- */

static void
base64(const unsigned char *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void
random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n <= 0)
			continue;
		p += n;
		len -= (size_t)n;
	}
}

/* Finds header `name` in the head block (status line + headers, NUL-terminated) and
 * copies its value, trimmed, into out. Returns 0, or -1 when absent. */
static int
header_value(const char *head, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *line = strstr(head, "\r\n");

	while (line != NULL && line[2] != '\0') {
		const char *p = line + 2, *end = strstr(p, "\r\n");

		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			size_t vlen;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			vlen = (size_t)(end - v);
			while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		line = *end != '\0' ? end : NULL;
	}
	return -1;
}

/* Reads until the end of the HTTP head; returns its length (including the blank line)
 * with the head NUL-terminated in a copy *head, or -1. Bytes after it stay in rbuf. */
static int
read_head(struct ws_client *c, int64_t deadline, char **head)
{
	for (;;) {
		unsigned char *end = c->rlen >= 4 ? memmem(c->rbuf, c->rlen, "\r\n\r\n", 4) : NULL;

		if (end != NULL) {
			size_t n = (size_t)(end - c->rbuf) + 4;

			*head = strndup((char *)c->rbuf, n);
			return *head != NULL ? (int)n : -1;
		}
		if (c->rlen > HTTP_MAX_HEAD || fill(c, deadline) != 1)
			return -1;
	}
}

static int
parse_status(const char *head)
{
	int status;

	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
		return 0;
	return status;
}

static void
handshake(struct ws_client *c, int port, const char *path, const char *subprotocol,
	  int64_t deadline)
{
	unsigned char key_raw[16], digest[EVP_MAX_MD_SIZE];
	char key[32], expect[64], got[128], req[1024], *head = NULL;
	char concat[sizeof(key) + sizeof(WS_GUID)];
	unsigned dlen = 0;
	int n, hlen;

	random_bytes(key_raw, sizeof(key_raw));
	base64(key_raw, sizeof(key_raw), key);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\n"
		     "Host: 127.0.0.1:%d\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "%s%s%s"
		     "\r\n",
		     path, port, key, subprotocol ? "Sec-WebSocket-Protocol: " : "",
		     subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req) || send_all(c->fd, req, (size_t)n, deadline) != 0)
		return;
	hlen = read_head(c, deadline, &head);
	if (hlen < 0)
		return;
	consume(c, (size_t)hlen);
	c->http_status = parse_status(head);
	if (header_value(head, "Sec-WebSocket-Protocol", c->protocol, sizeof(c->protocol)) != 0)
		c->protocol[0] = '\0';
	snprintf(concat, sizeof(concat), "%s%s", key, WS_GUID);
	EVP_Digest(concat, strlen(concat), digest, &dlen, EVP_sha1(), NULL);
	base64(digest, dlen, expect);
	c->upgraded = c->http_status == 101 &&
		      header_value(head, "Sec-WebSocket-Accept", got, sizeof(got)) == 0 &&
		      strcmp(got, expect) == 0;
	if (c->http_status == 101 && !c->upgraded)
		fprintf(stderr, "ws_client: bad Sec-WebSocket-Accept in:\n%s", head);
	free(head);
}

struct ws_client *
ws_client_open_opts(const struct ws_open_opts *o)
{
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : WS_DEFAULT_TIMEOUT_MS;
	int64_t deadline = mono_ms() + timeout;
	struct ws_client *c;
	int fd;

	fd = tcp_connect(o->port, o->rcvbuf, deadline);
	if (fd < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->auto_pong = true;
	c->close_code = WS_CLOSE_NONE;
	c->frag_op = -1;
	handshake(c, o->port, o->path != NULL ? o->path : "/ws", o->subprotocol, deadline);
	if (!c->upgraded) {
		close(c->fd);
		c->fd = -1;
		c->eof = true;
	}
	return c;
}

struct ws_client *
ws_client_open(int port, const char *path, const char *subprotocol)
{
	struct ws_open_opts o = { .port = port, .path = path, .subprotocol = subprotocol };

	return ws_client_open_opts(&o);
}

struct ws_client *
ws_client_open_ok(int port)
{
	struct ws_client *c = ws_client_open(port, "/ws", NULL);

	if (c != NULL && !c->upgraded) {
		fprintf(stderr, "ws_client: upgrade refused with HTTP %d\n", c->http_status);
		ws_client_free(c);
		return NULL;
	}
	return c;
}

void
ws_msg_fini(struct ws_msg *m)
{
	if (m == NULL)
		return;
	free(m->data);
	memset(m, 0, sizeof(*m));
}

void
ws_client_free(struct ws_client *c)
{
	struct ws_pending *p, *next;

	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	for (p = c->head; p != NULL; p = next) {
		next = p->next;
		ws_msg_fini(&p->msg);
		free(p);
	}
	free(c->rbuf);
	free(c->frag);
	free(c);
}

void
ws_client_abort(struct ws_client *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (c == NULL)
		return;
	if (c->fd >= 0)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	ws_client_free(c);
}

/* ---- sending ---- */

int
ws_client_send_raw(struct ws_client *c, const void *bytes, size_t len)
{
	if (c == NULL || c->fd < 0)
		return -1;
	return send_all(c->fd, bytes, len, mono_ms() + WS_DEFAULT_TIMEOUT_MS);
}

int
ws_client_send_frame(struct ws_client *c, int opcode, bool fin, const void *data, size_t len)
{
	const unsigned char *src = data;
	unsigned char *f, mask[4];
	size_t h = 2;
	int rc;

	if (c == NULL || c->fd < 0)
		return -1;
	f = malloc(len + 14);
	if (f == NULL)
		return -1;
	f[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		f[1] = (unsigned char)(0x80 | len);
	} else if (len <= 0xffff) {
		f[1] = 0x80 | 126;
		f[2] = (unsigned char)(len >> 8);
		f[3] = (unsigned char)len;
		h = 4;
	} else {
		f[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			f[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		h = 10;
	}
	random_bytes(mask, sizeof(mask));
	memcpy(f + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		f[h + i] = src[i] ^ mask[i & 3];
	rc = send_all(c->fd, f, h + len, mono_ms() + WS_DEFAULT_TIMEOUT_MS);
	free(f);
	return rc;
}

int
ws_client_send_textn(struct ws_client *c, const void *data, size_t len)
{
	return ws_client_send_frame(c, WS_OP_TEXT, true, data, len);
}

int
ws_client_send_text(struct ws_client *c, const char *text)
{
	return ws_client_send_textn(c, text, strlen(text));
}

int
ws_client_sendf(struct ws_client *c, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	rc = ws_client_send_textn(c, s, (size_t)n);
	free(s);
	return rc;
}

int
ws_client_send_binary(struct ws_client *c, const void *data, size_t len)
{
	return ws_client_send_frame(c, WS_OP_BINARY, true, data, len);
}

int
ws_client_send_fragmented(struct ws_client *c, int opcode, const void *data, size_t len,
			  unsigned nfrags)
{
	const unsigned char *p = data;
	size_t chunk, off = 0;

	if (nfrags == 0)
		nfrags = 1;
	if (len > 0 && nfrags > len)
		nfrags = (unsigned)len;
	chunk = len / nfrags;
	for (unsigned i = 0; i < nfrags; i++) {
		size_t n = i + 1 == nfrags ? len - off : chunk;

		if (ws_client_send_frame(c, i == 0 ? opcode : WS_OP_CONT, i + 1 == nfrags, p + off,
					 n) != 0)
			return -1;
		off += n;
	}
	return 0;
}

int
ws_client_send_close(struct ws_client *c, int code, const char *reason)
{
	unsigned char b[125];
	size_t n = 0, rlen = reason != NULL ? strlen(reason) : 0;

	if (code >= 0) {
		if (rlen > sizeof(b) - 2)
			rlen = sizeof(b) - 2;
		b[0] = (unsigned char)(code >> 8);
		b[1] = (unsigned char)code;
		memcpy(b + 2, reason != NULL ? reason : "", rlen);
		n = 2 + rlen;
	}
	c->close_sent = true;
	return ws_client_send_frame(c, WS_OP_CLOSE, true, b, n);
}

/* ---- receiving ---- */

/* Parses one frame at the head of rbuf. Returns 1 with the frame described (payload
 * unmasked in place, at rbuf + *hdr), 0 when more bytes are needed, -1 when the frame
 * is unacceptable. */
static int
parse_frame(struct ws_client *c, int *op, bool *fin, size_t *hdr, size_t *plen)
{
	const unsigned char *b = c->rbuf;
	size_t h = 2;
	uint64_t len;
	bool masked;

	if (c->rlen < 2)
		return 0;
	*fin = b[0] & 0x80;
	*op = b[0] & 0x0f;
	if (b[0] & 0x70)
		c->violations++;
	masked = b[1] & 0x80;
	len = b[1] & 0x7f;
	if (len == 126) {
		if (c->rlen < 4)
			return 0;
		len = (uint64_t)b[2] << 8 | b[3];
		h = 4;
	} else if (len == 127) {
		if (c->rlen < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | b[2 + i];
		h = 10;
	}
	if (len > WS_MAX_FRAME) {
		c->violations++;
		return -1;
	}
	if (masked) {
		c->violations++; /* servers must not mask */
		h += 4;
	}
	if (c->rlen < h + len)
		return 0;
	if (masked)
		for (size_t i = 0; i < len; i++)
			c->rbuf[h + i] ^= b[h - 4 + (i & 3)];
	*hdr = h;
	*plen = (size_t)len;
	return 1;
}

static int
msg_set(struct ws_msg *m, int opcode, const void *data, size_t len)
{
	m->opcode = opcode;
	m->data = malloc(len + 1);
	if (m->data == NULL)
		return -1;
	if (len > 0)
		memcpy(m->data, data, len);
	m->data[len] = '\0';
	m->len = len;
	return 0;
}

/* Handles one complete frame. Returns 1 when it completes a message for the caller
 * (filled into *m), 0 when it was absorbed (ping answered, fragment kept). */
static int
on_frame(struct ws_client *c, int op, bool fin, const unsigned char *p, size_t len,
	 struct ws_msg *m)
{
	if (op >= 0x8) {
		if (!fin || len > 125)
			c->violations++;
		switch (op) {
		case WS_OP_PING:
			c->pings++;
			if (c->auto_pong) {
				ws_client_send_frame(c, WS_OP_PONG, true, p, len);
				return 0;
			}
			return msg_set(m, op, p, len) == 0;
		case WS_OP_PONG:
			return c->return_pongs ? msg_set(m, op, p, len) == 0 : 0;
		case WS_OP_CLOSE:
			if (c->close_code == WS_CLOSE_NONE) {
				size_t rlen = len > 2 ? len - 2 : 0;

				if (len == 1)
					c->violations++;
				c->close_code = len >= 2 ? (p[0] << 8 | p[1]) : WS_CLOSE_NO_STATUS;
				if (rlen >= sizeof(c->close_reason))
					rlen = sizeof(c->close_reason) - 1;
				if (rlen > 0)
					memcpy(c->close_reason, p + 2, rlen);
				c->close_reason[rlen] = '\0';
			}
			if (!c->close_sent)
				ws_client_send_close(c,
						     c->close_code == WS_CLOSE_NO_STATUS
							     ? -1
							     : c->close_code,
						     NULL);
			return msg_set(m, op, c->close_reason, strlen(c->close_reason)) == 0;
		default:
			c->violations++;
			return 0;
		}
	}
	if (op == WS_OP_TEXT || op == WS_OP_BINARY) {
		if (c->frag_op != -1) {
			c->violations++; /* a new message inside a fragmented one */
			free(c->frag);
			c->frag = NULL;
			c->frag_len = 0;
			c->frag_op = -1;
		}
		if (fin)
			return msg_set(m, op, p, len) == 0;
		c->frag_op = op;
	} else if (op != WS_OP_CONT || c->frag_op == -1) {
		c->violations++;
		return 0;
	}
	if (len > 0) {
		unsigned char *n = realloc(c->frag, c->frag_len + len);

		if (n == NULL)
			return 0;
		c->frag = n;
		memcpy(c->frag + c->frag_len, p, len);
		c->frag_len += len;
	}
	if (!fin)
		return 0;
	m->opcode = c->frag_op;
	m->data = malloc(c->frag_len + 1);
	if (m->data != NULL) {
		if (c->frag_len > 0)
			memcpy(m->data, c->frag, c->frag_len);
		m->data[c->frag_len] = '\0';
		m->len = c->frag_len;
	}
	free(c->frag);
	c->frag = NULL;
	c->frag_len = 0;
	c->frag_op = -1;
	return m->data != NULL;
}

/* Receives from the socket only (the kept messages are not looked at). */
static int
recv_wire(struct ws_client *c, struct ws_msg *m, int64_t deadline)
{
	memset(m, 0, sizeof(*m));
	if (c->close_code != WS_CLOSE_NONE)
		return -1;
	for (;;) {
		int op = 0, rc;
		bool fin = false;
		size_t hdr = 0, len = 0;

		rc = parse_frame(c, &op, &fin, &hdr, &len);
		if (rc < 0) {
			c->eof = true;
			c->close_code = WS_CLOSE_ABNORMAL;
			return -1;
		}
		if (rc == 1) {
			rc = on_frame(c, op, fin, c->rbuf + hdr, len, m);
			consume(c, hdr + len);
			if (rc == 1)
				return 1;
			continue;
		}
		rc = fill(c, deadline);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			if (c->close_code == WS_CLOSE_NONE)
				c->close_code = WS_CLOSE_ABNORMAL;
			return -1;
		}
	}
}

static void
keep(struct ws_client *c, struct ws_msg *m)
{
	struct ws_pending *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		ws_msg_fini(m);
		return;
	}
	p->msg = *m;
	memset(m, 0, sizeof(*m));
	if (c->tail != NULL)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
}

size_t
ws_client_pending(const struct ws_client *c)
{
	size_t n = 0;

	for (const struct ws_pending *p = c->head; p != NULL; p = p->next)
		n++;
	return n;
}

int
ws_client_recv(struct ws_client *c, struct ws_msg *m, int timeout_ms)
{
	if (c->head != NULL) {
		struct ws_pending *p = c->head;

		c->head = p->next;
		if (c->head == NULL)
			c->tail = NULL;
		*m = p->msg;
		free(p);
		return 1;
	}
	return recv_wire(c, m, mono_ms() + timeout_ms);
}

char *
ws_client_recv_text(struct ws_client *c, int timeout_ms, size_t *len)
{
	struct ws_msg m;
	char *s;

	if (ws_client_recv(c, &m, timeout_ms) != 1)
		return NULL;
	if (m.opcode != WS_OP_TEXT) {
		fprintf(stderr, "ws_client: expected a text message, got opcode %d\n", m.opcode);
		ws_msg_fini(&m);
		return NULL;
	}
	s = m.data;
	if (len != NULL)
		*len = m.len;
	return s;
}

static json_t *
parse_json(const char *s, size_t len)
{
	json_error_t e;
	json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &e);

	if (j == NULL)
		fprintf(stderr, "ws_client: invalid JSON from the server (%s): %.200s\n", e.text,
			s);
	return j;
}

json_t *
ws_client_recv_json(struct ws_client *c, int timeout_ms)
{
	size_t len;
	char *s = ws_client_recv_text(c, timeout_ms, &len);
	json_t *j;

	if (s == NULL)
		return NULL;
	j = parse_json(s, len);
	free(s);
	return j;
}

/* The parsed message if it is a text message replying to id, else NULL. */
static json_t *
match_id(const struct ws_msg *m, const json_t *id)
{
	json_t *j;

	if (m->opcode != WS_OP_TEXT)
		return NULL;
	j = json_loadb(m->data, m->len, 0, NULL);
	if (j != NULL && json_equal(json_object_get(j, "id"), id))
		return j;
	json_decref(j);
	return NULL;
}

json_t *
ws_client_wait_reply(struct ws_client *c, const json_t *id, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct ws_pending *p, *prev = NULL;
	struct ws_msg m;
	json_t *j;

	for (p = c->head; p != NULL; prev = p, p = p->next) {
		j = match_id(&p->msg, id);
		if (j == NULL)
			continue;
		if (prev != NULL)
			prev->next = p->next;
		else
			c->head = p->next;
		if (c->tail == p)
			c->tail = prev;
		ws_msg_fini(&p->msg);
		free(p);
		return j;
	}
	while (recv_wire(c, &m, deadline) == 1) {
		if (m.opcode == WS_OP_CLOSE) {
			ws_msg_fini(&m);
			return NULL;
		}
		j = match_id(&m, id);
		if (j != NULL) {
			ws_msg_fini(&m);
			return j;
		}
		keep(c, &m);
	}
	return NULL;
}

json_t *
ws_client_wait_id(struct ws_client *c, json_int_t id, int timeout_ms)
{
	json_t *jid = json_integer(id), *r;

	r = ws_client_wait_reply(c, jid, timeout_ms);
	json_decref(jid);
	return r;
}

json_t *
ws_client_cmd(struct ws_client *c, const char *fmt, ...)
{
	va_list ap;
	json_t *sent, *r;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if (ws_client_send_textn(c, s, (size_t)n) != 0) {
		free(s);
		return NULL;
	}
	sent = json_loadb(s, (size_t)n, 0, NULL);
	free(s);
	if (sent != NULL && json_object_get(sent, "id") != NULL)
		r = ws_client_wait_reply(c, json_object_get(sent, "id"), WS_DEFAULT_TIMEOUT_MS);
	else
		r = ws_client_recv_json(c, WS_DEFAULT_TIMEOUT_MS);
	json_decref(sent);
	return r;
}

int
ws_client_wait_close(struct ws_client *c, int timeout_ms, unsigned *dropped)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct ws_msg m;
	unsigned n = 0;
	int rc;

	for (;;) {
		rc = ws_client_recv(c, &m, left_ms(deadline));
		if (rc == 1 && m.opcode == WS_OP_CLOSE)
			rc = -1;
		else if (rc == 1 && (m.opcode == WS_OP_TEXT || m.opcode == WS_OP_BINARY))
			n++;
		ws_msg_fini(&m);
		if (rc == 1)
			continue;
		if (dropped != NULL)
			*dropped = n;
		return rc == 0 ? -1 : c->close_code;
	}
}

int
ws_client_close(struct ws_client *c, int timeout_ms)
{
	int code;

	if (c == NULL)
		return -1;
	if (c->fd >= 0 && !c->close_sent && c->close_code == WS_CLOSE_NONE)
		ws_client_send_close(c, 1000, NULL);
	code = c->close_code != WS_CLOSE_NONE ? c->close_code
					      : ws_client_wait_close(c, timeout_ms, NULL);
	ws_client_free(c);
	return code;
}

/* ---- HTTP ---- */

/* Decodes a complete chunked body in place (it ends with the last, empty chunk);
 * returns its length, or -1 while it is incomplete. Nothing is changed until then. */
static long
dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0;

	if (len < 5 || memcmp(b + len - 5, "0\r\n\r\n", 5) != 0)
		return -1;
	for (;;) {
		char *crlf = memmem(b + in, len - in, "\r\n", 2);
		unsigned long n;

		if (crlf == NULL)
			return -1;
		n = strtoul(b + in, NULL, 16);
		in = (size_t)(crlf - b) + 2;
		if (n == 0)
			return (long)out;
		if (in + n + 2 > len)
			return -1;
		memmove(b + out, b + in, n);
		out += n;
		in += n + 2;
	}
}

int
http_get(int port, const char *path, int *status, char **body)
{
	int64_t deadline = mono_ms() + WS_DEFAULT_TIMEOUT_MS;
	struct ws_client c = { .fd = -1 };
	char req[512], *head = NULL, value[64];
	long clen = -1, blen;
	bool chunked;
	int hlen, n, rc = -1;

	*status = 0;
	*body = NULL;
	c.fd = tcp_connect(port, 0, deadline);
	if (c.fd < 0)
		return -1;
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path,
		     port);
	if (send_all(c.fd, req, (size_t)n, deadline) != 0)
		goto out;
	hlen = read_head(&c, deadline, &head);
	if (hlen < 0)
		goto out;
	consume(&c, (size_t)hlen);
	*status = parse_status(head);
	if (header_value(head, "Content-Length", value, sizeof(value)) == 0)
		clen = strtol(value, NULL, 10);
	chunked = header_value(head, "Transfer-Encoding", value, sizeof(value)) == 0 &&
		  strcasecmp(value, "chunked") == 0;
	for (;;) {
		if (clen >= 0 && c.rlen >= (size_t)clen) {
			blen = clen;
			break;
		}
		if (chunked && (blen = dechunk((char *)c.rbuf, c.rlen)) >= 0)
			break;
		n = fill(&c, deadline);
		if (n == 0)
			goto out;
		if (n < 0) {
			if (clen >= 0 || chunked)
				goto out;
			blen = (long)c.rlen; /* delimited by the end of the connection */
			break;
		}
	}
	*body = strndup(c.rbuf != NULL ? (char *)c.rbuf : "", (size_t)blen);
	rc = *body != NULL ? 0 : -1;
out:
	free(head);
	free(c.rbuf);
	close(c.fd);
	return rc;
}

/* ---- JSON accessors ---- */

const char *
json_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

json_int_t
json_int(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}
