/* switchboard_client.h: a client of the Switchboard protocol v1 (docs/protocol.md).
 *
 * One struct sbc_client is one libwebsockets context and at most one WebSocket
 * connection at a time, driven on the caller's thread by sbc_run() (blocking) or by
 * repeated sbc_service() calls from the application's own loop. The client sends
 * connect, (re)subscribes its channels, matches every reply to its command by id and
 * keeps, per channel, the offset and epoch of the last message delivered, so that after
 * a drop it reconnects (exponential backoff with jitter, bounded) and resubscribes each
 * channel with "recover". A `reset` frame moves that position to the new epoch.
 *
 * It never prints and never exits: everything it has to say comes back through the
 * callbacks of struct sbc_config, as codes and sentences. Callbacks run inside
 * sbc_service()/sbc_run(), or inside the sbc_*() call that caused them where a
 * function says so; they may call any sbc_*() function except sbc_free(). Every
 * pointer in a callback's argument is borrowed and valid only during the call.
 */
#ifndef SWITCHBOARD_CLIENT_H
#define SWITCHBOARD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct sbc_client;
struct lws_context;
struct lws_protocols;

#define SBC_DEFAULT_TIMEOUT_S 5.0
#define SBC_DEFAULT_BACKOFF_MIN_MS 500
#define SBC_DEFAULT_BACKOFF_MAX_MS 10000
#define SBC_DEFAULT_REFRESH_MARGIN_S 60
#define SBC_DEFAULT_REFRESH_POLL_S 5
#define SBC_EPOCH_MAX 64       /* bytes in an epoch string */
#define SBC_RX_MAX (16u << 20) /* largest server frame reassembled */

enum sbc_state {
	SBC_STATE_IDLE,	       /* created; sbc_start() not called yet */
	SBC_STATE_CONNECTING,  /* TCP, TLS, upgrade, then the reply to connect */
	SBC_STATE_SUBSCRIBING, /* connected; waiting for the subscribed replies */
	SBC_STATE_READY,       /* connected and every channel subscribed */
	SBC_STATE_RETRY_WAIT,  /* the connection ended; the next attempt is scheduled */
	SBC_STATE_CLOSING,     /* a close (1000) is requested or on the wire */
	SBC_STATE_CLOSED,      /* final: nothing more happens, sbc_run() returns */
};

/* Why a state was entered. */
enum sbc_cause {
	SBC_CAUSE_NONE,	    /* progress, not a failure */
	SBC_CAUSE_LOCAL,    /* the application called sbc_close() or sbc_abort() */
	SBC_CAUSE_CONNECT,  /* could not connect (refused, DNS, TLS...): see detail */
	SBC_CAUSE_HTTP,	    /* the server answered http_status instead of upgrading */
	SBC_CAUSE_TIMEOUT,  /* no connection, or no reply, within timeout_s */
	SBC_CAUSE_CLOSED,   /* the server closed the connection: see close_code */
	SBC_CAUSE_LOST,	    /* the connection ended without a close frame */
	SBC_CAUSE_REFUSED,  /* the server answered connect with an error (on_reply had it) */
	SBC_CAUSE_PROTOCOL, /* the server broke the protocol, or a write failed */
	SBC_CAUSE_NOMEM,    /* out of memory */
};

/* A state change, for on_state. */
struct sbc_status {
	enum sbc_state state;
	enum sbc_cause cause;
	const char *text;	  /* a sentence for humans ("connection closed by server
				   * (1001 server shutdown)"); "" with SBC_CAUSE_NONE */
	const char *detail;	  /* SBC_CAUSE_CONNECT: libwebsockets' words, else "" */
	int close_code;		  /* SBC_CAUSE_CLOSED: the server's code (1005: none) */
	const char *close_reason; /* SBC_CAUSE_CLOSED: its reason, control chars as '?' */
	unsigned http_status;	  /* SBC_CAUSE_HTTP */
	bool token_expired;	  /* the server said the token expired (4001) */
	unsigned delay_ms;	  /* SBC_STATE_RETRY_WAIT: the wait before the next try */
	unsigned attempt;	  /* SBC_STATE_RETRY_WAIT: failures since the last READY */
	bool reconnect;		  /* CONNECTING..READY: not the first connection */
};

/* The commands; a reply carries the kind of command it answers. */
enum sbc_cmd {
	SBC_CMD_NONE,		/* an error frame that answers none of our commands */
	SBC_CMD_CONNECT,	/* reply "connected" */
	SBC_CMD_SUBSCRIBE,	/* "subscribed" */
	SBC_CMD_UNSUBSCRIBE,	/* "unsubscribed" */
	SBC_CMD_PUBLISH,	/* "published" */
	SBC_CMD_PRESENCE,	/* "presence" */
	SBC_CMD_PRESENCE_STATS, /* "presence_stats" */
	SBC_CMD_HISTORY,	/* "history" */
	SBC_CMD_REFRESH,	/* "refreshed" */
	SBC_CMD_PING,		/* "pong" */
};

/* A reply (or error) to one command, for on_reply. */
struct sbc_reply {
	enum sbc_cmd cmd;
	int64_t id;	     /* the command's id, 0 for SBC_CMD_NONE */
	const char *channel; /* the command's channel, or NULL */
	int error;	     /* 0; -EPROTO: an error reply (code, message);
			      * -ECONNRESET: the connection ended before the reply */
	const char *code;    /* error reply: "forbidden", "too_large"...; else NULL */
	const char *message; /* error reply: the server's sentence, or NULL */
	const char *raw;     /* the frame as received (NUL-terminated), NULL for
			      * -ECONNRESET */
	size_t raw_len;
	json_t *frame;	 /* the frame parsed, or NULL */
	bool has_offset; /* subscribe, publish, history: offset and epoch given */
	uint64_t offset;
	const char *epoch; /* or NULL */
	/* subscribe only */
	bool reconnect;	   /* made after a reconnect */
	bool recover_sent; /* the subscribe carried "recover" */
	bool recovered;	   /* and the server said "recovered":true */
	bool missed_known; /* recovered: missed is the count of messages to follow */
	uint64_t missed;
	/* connect, refresh */
	int64_t expires; /* the token's expiry (Unix s), 0: none */
};

/* A message frame, for on_message. */
struct sbc_message {
	const char *channel;
	bool has_offset;
	uint64_t offset;
	/* The offset is at or below the last one delivered in this epoch: a second copy (a
	 * correct server never sends one). The position is not moved; drop it. */
	bool duplicate;
	uint64_t last_offset; /* duplicate: the highest offset delivered before */
	const char *data;     /* the exact bytes of "data", or NULL */
	size_t data_len;
	const char *from_user; /* "from" member, or NULL */
	const char *from_client;
	const char *raw; /* the frame as received (NUL-terminated) */
	size_t raw_len;
	json_t *frame;
};

/* A join or leave frame, for on_presence. */
struct sbc_presence {
	bool join; /* false: leave */
	const char *channel;
	const char *client; /* member.client, or NULL */
	const char *user;   /* member.user, or NULL */
	const char *raw;
	size_t raw_len;
	json_t *frame;
};

/* A reset frame of a subscribed channel (its position is already the new one). */
struct sbc_reset {
	const char *channel;
	uint64_t offset; /* the new epoch's last offset (0) */
	const char *epoch;
	const char *raw;
	size_t raw_len;
};

typedef void (*sbc_state_fn)(struct sbc_client *c, const struct sbc_status *st, void *arg);
typedef void (*sbc_reply_fn)(struct sbc_client *c, const struct sbc_reply *r, void *arg);
typedef void (*sbc_message_fn)(struct sbc_client *c, const struct sbc_message *m, void *arg);
typedef void (*sbc_presence_fn)(struct sbc_client *c, const struct sbc_presence *p, void *arg);
typedef void (*sbc_reset_fn)(struct sbc_client *c, const struct sbc_reset *r, void *arg);
/* A frame the client ignored (not a protocol message, binary, a reset without a usable
 * position): text says what. */
typedef void (*sbc_notice_fn)(struct sbc_client *c, const char *text, void *arg);
/* Asked for the token to use: before each reconnect (reconnect true) and when a refresh
 * is due (false). Returns a new malloc'd token (the client takes ownership) or NULL to
 * keep the current one. A token equal to the current one, or to the last one the
 * server refused in refresh, is not sent again. */
typedef char *(*sbc_token_fn)(struct sbc_client *c, bool reconnect, void *arg);

/* Given to sbc_new(); every string is copied, nothing is kept. Zero means default. */
struct sbc_config {
	const char *url;       /* ws://HOST[:PORT][/PATH] or wss://... (required) */
	const char *user;      /* connect "user", or NULL for none */
	const json_t *info;    /* connect "info" object, or NULL (copied) */
	const char *token;     /* connect "token", or NULL */
	sbc_token_fn token_fn; /* NULL: the token never changes and is not refreshed */
	double timeout_s;      /* connection (TCP, TLS, upgrade) and each reply */
	bool insecure;	       /* wss: accept self-signed, mismatched, expired */
	bool reconnect;	       /* reconnect after a drop once connect succeeded once */
	int backoff_min_ms;    /* first wait before a reconnect (default 500) */
	int backoff_max_ms;    /* the wait doubles up to this (default 10000) */
	unsigned max_retries;  /* attempts in a row before giving up; 0: no limit */
	int keepalive_s;       /* > 0: ping a silent server after this, drop it after
				* twice this; 0: no keepalive */
	int refresh_margin_s;  /* token_fn: refresh this long before expiry (60) */
	int refresh_poll_s;    /* then ask token_fn again this often (5) */
	const struct lws_protocols
		*extra_protocols; /* borrowed, must outlive the client:
				   * more protocols for the context (e.g. adopted files),
				   * terminated by one with a NULL name; or NULL */
	void *arg;		  /* passed to every callback; sbc_arg() */
	sbc_state_fn on_state;
	sbc_reply_fn on_reply;
	sbc_message_fn on_message;
	sbc_presence_fn on_presence;
	sbc_reset_fn on_reset;
	sbc_notice_fn on_notice;
};

/* Checks a URL the way sbc_new() will. Returns 0, or -EINVAL with a sentence in why
 * (why_len bytes, may be 0). */
int sbc_url_check(const char *url, char *why, size_t why_len);

/* Creates a client and its lws context (nothing is connected yet). Returns a new
 * client, or NULL with the reason in why (a bad URL, no context, out of memory). */
struct sbc_client *sbc_new(const struct sbc_config *cfg, char *why, size_t why_len);

/* Frees the client, its connection and context; NULL-safe. No callback runs. */
void sbc_free(struct sbc_client *c);

/* Starts the first connection attempt. May call on_state (CONNECTING, and CLOSED when
 * the attempt fails at once). Returns 0, or -EALREADY when already started. */
int sbc_start(struct sbc_client *c);

/* One pass of the event loop, waiting at most about timeout_ms. Returns 1 while the
 * client runs, 0 once it is CLOSED, -EIO when lws failed. */
int sbc_service(struct sbc_client *c, int timeout_ms);

/* Runs the loop until the client is CLOSED. Returns 0, or -EIO. */
int sbc_run(struct sbc_client *c);

/* Closes the connection with 1000 (after at most 2 s the client is CLOSED anyway) and
 * cancels any reconnect; may call on_state. Returns 0, or -EALREADY when closing. */
int sbc_close(struct sbc_client *c);

/* Ends at once: the state becomes CLOSED (on_state is called) and sbc_run() returns;
 * the connection is dropped by sbc_free(). */
void sbc_abort(struct sbc_client *c);

enum sbc_state sbc_state(const struct sbc_client *c);
const char *sbc_state_name(enum sbc_state s);
const char *sbc_cmd_name(enum sbc_cmd cmd); /* "connect", "subscribe"... */

/* The arg of the configuration. */
void *sbc_arg(const struct sbc_client *c);
/* The client's lws context (borrowed), to adopt descriptors or schedule lws_sul timers
 * in the same loop; its context user is the client (sbc_from_context()). */
struct lws_context *sbc_context(const struct sbc_client *c);
struct sbc_client *sbc_from_context(struct lws_context *ctx);

/* The server's "client" id of the current connection (borrowed), or NULL. */
const char *sbc_client_id(const struct sbc_client *c);
/* The token connect and a reconnect send (borrowed), or NULL. */
const char *sbc_token(const struct sbc_client *c);
/* Connect replies received so far, over every connection. */
unsigned sbc_connections(const struct sbc_client *c);
/* Commands queued or awaiting their reply on the current connection. */
size_t sbc_pending(const struct sbc_client *c);

/* Adds a channel: subscribed now when connected, else once connected, and again after
 * every reconnect (with "recover" once a position is known). rewind > 0 asks for that
 * many retained messages on the first successful subscribe only. The outcome comes to
 * on_reply; a refused subscribe removes the channel. Returns 0, -EINVAL (bad name),
 * -EEXIST, -ENOMEM. */
int sbc_subscribe(struct sbc_client *c, const char *channel, uint64_t rewind);

/* Removes a channel: sends unsubscribe when connected (on_reply gets the answer);
 * its messages until then are still delivered. Returns 0, -ENOENT, -ENOMEM. */
int sbc_unsubscribe(struct sbc_client *c, const char *channel);

/* The tracked position of a channel: offset of the last message delivered (or of the
 * subscribed/reset frame) and epoch (copied into epoch, SBC_EPOCH_MAX + 1 bytes).
 * Returns 0, -ENOENT (no such channel), -ENODATA (no position known yet). */
int sbc_position(const struct sbc_client *c, const char *channel, uint64_t *offset, char *epoch);

/* The commands below need a connection that got its connected reply (state SUBSCRIBING
 * or READY): else -ENOTCONN. Each stores the command's id in *id (id may be NULL) and
 * returns 0, or -EINVAL (bad channel or argument), -ENOMEM. The reply comes to
 * on_reply with that id; a connection that ends first gives -ECONNRESET there. */

/* Publishes data, data_len bytes of JSON text sent as written (subscribers get these
 * bytes); it must be one valid JSON value (else -EINVAL). */
int sbc_publish(struct sbc_client *c, const char *channel, const char *data, size_t data_len,
		int64_t *id);
/* The size of the publish frame sbc_publish() would send now for data_len bytes. */
size_t sbc_publish_size(const struct sbc_client *c, const char *channel, size_t data_len);
int sbc_presence(struct sbc_client *c, const char *channel, int64_t *id);
int sbc_presence_stats(struct sbc_client *c, const char *channel, int64_t *id);
/* limit 0: everything retained; since_epoch NULL: no "since". */
int sbc_history(struct sbc_client *c, const char *channel, uint64_t limit, uint64_t since_offset,
		const char *since_epoch, int64_t *id);
/* Sends refresh with token (copied); on success it becomes the current token. */
int sbc_refresh(struct sbc_client *c, const char *token, int64_t *id);
int sbc_ping(struct sbc_client *c, int64_t *id);

#endif
