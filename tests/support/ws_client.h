/* ws_client.h: a small blocking WebSocket client over a raw POSIX socket, for tests.
 * It speaks just enough of RFC 6455 to drive the server, and can also send what a real
 * client never would (binary frames, oversized messages, raw bytes). Every wait has a
 * deadline in milliseconds; nothing sleeps. A client has one owner and no threads.
 *
 * Received text messages that a wait skips (ws_client_wait_reply()) are kept, in order,
 * and handed out by the next receive, so a test never loses a frame it did not expect.
 */
#ifndef SWITCHBOARD_TEST_WS_CLIENT_H
#define SWITCHBOARD_TEST_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xa

#define WS_CLOSE_NONE (-1)	/* close_code before any close */
#define WS_CLOSE_NO_STATUS 1005 /* a close frame without a code */
#define WS_CLOSE_ABNORMAL 1006	/* the connection ended without a close frame */

#define WS_DEFAULT_TIMEOUT_MS 5000

/* One received message: a whole (reassembled) data message or one control frame. */
struct ws_msg {
	int opcode; /* WS_OP_TEXT, WS_OP_BINARY, WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG */
	char *data; /* owned, NUL-terminated (the NUL is not counted in len) */
	size_t len;
};

void ws_msg_fini(struct ws_msg *m); /* frees data; safe on a zeroed msg */

struct ws_pending;

struct ws_client {
	int fd;		     /* -1 once the socket is closed */
	int http_status;     /* status of the upgrade reply: 101, 404, 503...; 0: no reply */
	bool upgraded;	     /* 101 with a correct Sec-WebSocket-Accept */
	char protocol[64];   /* Sec-WebSocket-Protocol of the reply, "" when absent */
	bool auto_pong;	     /* answer pings with pongs (default); false: recv returns them */
	bool return_pongs;   /* recv returns pongs (default false: they are dropped) */
	unsigned pings;	     /* pings received from the server */
	unsigned violations; /* frames the server must not send (masked, RSV bits, bad opcode) */
	int close_code;	     /* WS_CLOSE_NONE until the server closed or the socket ended */
	char close_reason[124];
	bool close_sent; /* we sent a close frame */
	bool eof;	 /* the socket reached end of file (or failed) */

	/* private */
	unsigned char *rbuf;
	size_t rlen, rcap;
	unsigned char *frag; /* data message being reassembled */
	size_t frag_len;
	int frag_op; /* opcode of that message, or -1 */
	struct ws_pending *head, *tail;
};

struct ws_open_opts {
	int port;
	const char *path;	 /* NULL: "/ws" */
	const char *subprotocol; /* NULL: no Sec-WebSocket-Protocol header */
	int rcvbuf;		 /* > 0: SO_RCVBUF set before connecting (slow readers) */
	int timeout_ms;		 /* <= 0: WS_DEFAULT_TIMEOUT_MS */
};

/* Connects to 127.0.0.1:port and sends the upgrade request. Returns a new client, or NULL
 * when the TCP connection failed. A client is returned even when the upgrade was refused:
 * check c->upgraded / c->http_status (then the socket is already closed). */
struct ws_client *ws_client_open_opts(const struct ws_open_opts *o);
struct ws_client *ws_client_open(int port, const char *path, const char *subprotocol);

/* Shorthand: upgrades on /ws with no subprotocol; NULL unless the upgrade succeeded. */
struct ws_client *ws_client_open_ok(int port);

/* Closes the socket at once (no close handshake) and frees c. NULL-safe. */
void ws_client_free(struct ws_client *c);

/* Aborts the connection: the socket is closed with SO_LINGER 0, so the kernel sends a
 * TCP RST instead of a FIN (a crashed client or a dropped network path), then frees c.
 * NULL-safe. */
void ws_client_abort(struct ws_client *c);

/* Sends close 1000 unless a close was already exchanged, waits up to timeout_ms for the
 * server's close (or end of file), then frees c. Returns the server's close code, or -1
 * if none came in time. NULL-safe (returns -1). */
int ws_client_close(struct ws_client *c, int timeout_ms);

/* Sending. Client frames are masked with a fresh random key, as RFC 6455 requires.
 * Each returns 0, or -1 when the socket failed or stayed full past the default deadline
 * (sending to a server that already closed is an expected -1 in some tests). */
int ws_client_send_frame(struct ws_client *c, int opcode, bool fin, const void *data, size_t len);
int ws_client_send_text(struct ws_client *c, const char *text); /* strlen(text) bytes */
int ws_client_send_textn(struct ws_client *c, const void *data, size_t len);
int ws_client_sendf(struct ws_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int ws_client_send_binary(struct ws_client *c, const void *data, size_t len);
/* One message of `opcode` split into nfrags frames (the first carries the opcode, the
 * others are continuations; nfrags is capped at len, minimum 1). */
int ws_client_send_fragmented(struct ws_client *c, int opcode, const void *data, size_t len,
			      unsigned nfrags);
int ws_client_send_close(struct ws_client *c, int code, const char *reason); /* code < 0: none */
int ws_client_send_raw(struct ws_client *c, const void *bytes, size_t len);  /* as is */

/* Receives the next message into *m (kept text messages first). Pings are answered and
 * skipped when auto_pong is set, pongs skipped unless return_pongs. A close frame is
 * returned once (opcode WS_OP_CLOSE, code in c->close_code) and answered with a close.
 * Returns 1 with *m filled, 0 on timeout, -1 when the connection is over (then
 * c->close_code is set: the server's code, or WS_CLOSE_ABNORMAL). */
int ws_client_recv(struct ws_client *c, struct ws_msg *m, int timeout_ms);

/* The next text message as a new NUL-terminated string (len in *len if not NULL), or NULL
 * on timeout, close, or a non-text message (which is consumed). */
char *ws_client_recv_text(struct ws_client *c, int timeout_ms, size_t *len);

/* The next text message parsed (new reference), or NULL on timeout, close, or invalid
 * JSON (reported on stderr). */
json_t *ws_client_recv_json(struct ws_client *c, int timeout_ms);

/* Waits for the message whose "id" equals id (json_equal: 1 and "1" differ); messages
 * received meanwhile are kept for later receives. New reference, or NULL on timeout or
 * close. */
json_t *ws_client_wait_reply(struct ws_client *c, const json_t *id, int timeout_ms);
json_t *ws_client_wait_id(struct ws_client *c, json_int_t id, int timeout_ms);

/* Sends the printf-formatted JSON command and returns its reply: the message with the
 * same "id" if the command has one, else the next message. Default deadline. */
json_t *ws_client_cmd(struct ws_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reads and drops messages until the connection closes; returns the close code
 * (WS_CLOSE_ABNORMAL when the socket ended without one), or -1 on timeout. *dropped
 * (if not NULL) counts the data messages dropped. */
int ws_client_wait_close(struct ws_client *c, int timeout_ms, unsigned *dropped);

/* Number of received messages kept for later receives. */
size_t ws_client_pending(const struct ws_client *c);

/* A plain HTTP/1.1 GET on 127.0.0.1:port (Connection: close). Returns 0 with *status and
 * *body (new, NUL-terminated, free() it) filled, or -1 on failure or after the default
 * deadline. Handles Content-Length, chunked and close-delimited bodies. */
int http_get(int port, const char *path, int *status, char **body);

/* Small accessors for assertions: the string member (or "" when absent or not a string)
 * and the integer member (or -1). */
const char *json_str(const json_t *obj, const char *key);
json_int_t json_int(const json_t *obj, const char *key);

#endif
