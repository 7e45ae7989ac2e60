/* proto.h: the Switchboard wire protocol v1, shared by the server and the C client.
 *
 * Client commands are text frames holding one JSON object. proto_decode() parses and
 * validates one command into a typed struct; the proto_encode_*() functions produce the
 * server frames (and, for the client, the commands). Pure: no I/O, no logging, no
 * allocation failure aborts; failures are reported to the caller. docs/protocol.md is
 * the normative description of every frame.
 */
#ifndef SWITCHBOARD_PROTO_H
#define SWITCHBOARD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PROTO_CHANNEL_MAX 255 /* bytes in a channel name */
#define PROTO_USER_MAX 255    /* bytes in a user id */
#define PROTO_ID_STR_MAX 64   /* bytes in a string command id */
#define PROTO_TOKEN_MAX 8192  /* bytes in a token */
#define PROTO_INFO_MAX 4096   /* bytes of a connect "info" object as sent */
#define PROTO_EPOCH_MAX 64    /* bytes in an epoch string */

/* WebSocket close codes the server uses (documented in docs/protocol.md). */
#define PROTO_CLOSE_NORMAL 1000
#define PROTO_CLOSE_GOING_AWAY 1001	 /* server shutdown */
#define PROTO_CLOSE_UNSUPPORTED 1003	 /* binary frame */
#define PROTO_CLOSE_INVALID_UTF8 1007	 /* text frame that is not UTF-8 */
#define PROTO_CLOSE_TOO_BIG 1009	 /* frame over limits.max_message_size */
#define PROTO_CLOSE_RESTART 4012	 /* graceful drain: reconnect, with jitter */
#define PROTO_CLOSE_TOKEN_EXPIRED 4001	 /* the connection's token expired */
#define PROTO_CLOSE_CONNECT_TIMEOUT 4002 /* no connect command in time */
#define PROTO_CLOSE_DISCONNECTED 4003	 /* disconnected through the HTTP API */
#define PROTO_CLOSE_SLOW_CONSUMER 4008	 /* send queue over its bound (slow reader or flood) */
#define PROTO_CLOSE_RATE_LIMIT 4029	 /* kept sending past its rate limits */

enum proto_kind {
	PROTO_KIND_NONE = 0,
	PROTO_KIND_CONNECT,
	PROTO_KIND_SUBSCRIBE,
	PROTO_KIND_UNSUBSCRIBE,
	PROTO_KIND_PUBLISH,
	PROTO_KIND_PING,
	PROTO_KIND_REFRESH,
	PROTO_KIND_PRESENCE,
	PROTO_KIND_PRESENCE_STATS,
	PROTO_KIND_HISTORY,
};
#define PROTO_KIND_COUNT (PROTO_KIND_HISTORY + 1)

/* Error codes carried by error frames; proto_errcode_name() gives the wire string. */
enum proto_errcode {
	PROTO_ERR_NONE = 0,
	PROTO_ERR_BAD_REQUEST,
	PROTO_ERR_UNKNOWN_TYPE,
	PROTO_ERR_NOT_CONNECTED,
	PROTO_ERR_ALREADY_CONNECTED,
	PROTO_ERR_INVALID_CHANNEL,
	PROTO_ERR_FORBIDDEN,
	PROTO_ERR_TOO_LARGE,
	PROTO_ERR_ALREADY_SUBSCRIBED,
	PROTO_ERR_NOT_SUBSCRIBED,
	PROTO_ERR_LIMIT_EXCEEDED,
	PROTO_ERR_INTERNAL,
	PROTO_ERR_UNAUTHORIZED,
	PROTO_ERR_TOKEN_EXPIRED,
	PROTO_ERR_RATE_LIMITED,
	PROTO_ERR_UNAVAILABLE, /* the engine failed or is overloaded: retry later */
};
#define PROTO_ERR_COUNT (PROTO_ERR_UNAVAILABLE + 1)

/* Why a frame was refused: a code and a human sentence (NUL-terminated). */
struct proto_error {
	enum proto_errcode code;
	char text[96];
};

/* A decoded client command. Every pointer is borrowed from `root` (or, for data_raw,
 * from the input buffer given to proto_decode) and lives until proto_cmd_fini(). */
struct proto_cmd {
	enum proto_kind kind;
	json_t *root;	     /* owned: the parsed object */
	json_t *id;	     /* "id": integer or string, or NULL when absent */
	const char *channel; /* subscribe/unsubscribe/publish: validated name */
	size_t channel_len;
	const char *user;     /* connect: "user" or NULL */
	const char *info_raw; /* connect: exact bytes of the "info" object, or NULL */
	size_t info_len;
	const char *token; /* connect/refresh/subscribe: "token" or NULL */
	size_t token_len;
	json_t *data;	      /* publish: the value of "data" */
	const char *data_raw; /* publish: the exact bytes of "data" in the input */
	size_t data_len;
	/* subscribe: "recover" {offset, epoch}; history: "since" {offset, epoch} */
	bool has_since;
	uint64_t since_offset;
	const char *since_epoch;
	uint64_t rewind; /* subscribe: "rewind", 0 when absent */
	uint64_t limit;	 /* history: "limit", 0 when absent */
};

/* Parses one client frame (buf, len; need not be NUL-terminated) into *cmd.
 * Returns 0, or -1 with *err filled (err may be NULL). Whatever the result, the caller
 * calls proto_cmd_fini(cmd) afterwards; on failure cmd->id is set when the frame had a
 * valid id, so the error reply can echo it. */
int proto_decode(const char *buf, size_t len, struct proto_cmd *cmd, struct proto_error *err);

/* Releases what proto_decode() kept. Safe on a zeroed or already-finished cmd. */
void proto_cmd_fini(struct proto_cmd *cmd);

/* True if name (len bytes) is a valid channel name: 1..255 bytes of [A-Za-z0-9_:.@=-]. */
bool proto_channel_valid(const char *name, size_t len);

/* Length of the namespace part of a channel name: the bytes before the first ':', or 0
 * for a bare name (which belongs to the default namespace). */
size_t proto_channel_ns_len(const char *name, size_t len);

/* True if buf (len bytes) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool proto_utf8_valid(const char *buf, size_t len);

/* Makes the NUL-terminated s valid UTF-8 in place: every byte that is not part of a
 * well-formed sequence (such as a character cut by truncation) becomes '?'. */
void proto_utf8_sanitize(char *s);

/* Wire names. */
const char *proto_errcode_name(enum proto_errcode code);
const char *proto_kind_name(enum proto_kind kind);

/* Fills err (if not NULL) with code and a printf-formatted sentence, made valid UTF-8
 * (it may quote client bytes); returns -1. */
int proto_error_set(struct proto_error *err, enum proto_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Finds the top-level member `key` of the JSON object text in buf and returns the exact
 * byte span of its value in *start and *vlen. The text must already be known to be valid JSON
 * (proto_decode() checks that first). Returns 0, or -1 if the member is absent. */
int proto_find_member(const char *buf, size_t len, const char *key, const char **start,
		      size_t *vlen);

/* Encoders. Each returns a newly malloc'd, NUL-terminated buffer of compact JSON (the
 * caller frees it) and its length in *len, or NULL when out of memory. `id` may be NULL
 * (then the frame has no "id"); it is copied, not kept. */

/* Server frames. */
/* expires: Unix seconds, or 0 to omit. */
char *proto_encode_connected(const json_t *id, const char *client, const char *user,
			     const char *server, int64_t expires, size_t *len);
/* recovered: -1 omits the member, 0 false, 1 true. */
char *proto_encode_subscribed(const json_t *id, const char *channel, uint64_t offset,
			      const char *epoch, int recovered, size_t *len);
char *proto_encode_refreshed(const json_t *id, int64_t expires, size_t *len);
/* {"type":"unsubscribed","channel":...,"reason":"server"}: the server ended it. */
char *proto_encode_unsubscribed_by_server(const char *channel, size_t *len);
/* Encodes o (takes the reference) with one more member key whose value is the JSON
 * text raw, copied verbatim: how caller-built arrays join an object. */
char *proto_encode_with_raw(json_t *o, const char *key, const char *raw, size_t raw_len,
			    size_t *len);
/* members_raw: the JSON text of the members array, built by the caller; truncated adds
 * "truncated":true (not every member fitted in one frame). */
char *proto_encode_presence(const json_t *id, const char *channel, const char *members_raw,
			    size_t members_len, bool truncated, size_t *len);
char *proto_encode_presence_stats(const json_t *id, const char *channel, uint64_t clients,
				  uint64_t users, size_t *len);
/* messages_raw: the JSON text of the messages array, built by the caller. */
char *proto_encode_history(const json_t *id, const char *channel, uint64_t offset,
			   const char *epoch, const char *messages_raw, size_t messages_len,
			   bool truncated, size_t *len);
/* A member object {"client","user"[,"info"]}; info_raw is copied verbatim (or NULL). */
char *proto_encode_member(const char *client, const char *user, const char *info_raw,
			  size_t info_len, size_t *len);
/* join/leave events; member_raw as made by proto_encode_member. */
char *proto_encode_join_leave(bool join, const char *channel, const char *member_raw,
			      size_t member_len, size_t *len);
char *proto_encode_unsubscribed(const json_t *id, const char *channel, size_t *len);
char *proto_encode_published(const json_t *id, const char *channel, uint64_t offset,
			     const char *epoch, size_t *len);
/* {"type":"reset","channel":...,"offset":0,"epoch":...}: the channel's history was
 * dropped and its offsets start again in a new epoch (offset is the last one, 0). */
char *proto_encode_reset(const char *channel, uint64_t offset, const char *epoch, size_t *len);
char *proto_encode_pong(const json_t *id, size_t *len);
char *proto_encode_error(const json_t *id, enum proto_errcode code, const char *message,
			 size_t *len);

/* The "from" object of message frames, {"client":...,"user":...}, encoded once per
 * session so that publishing never re-encodes it. */
char *proto_encode_from(const char *client, const char *user, size_t *len);

/* The message frame fanned out to subscribers. data_raw is the exact JSON text of the
 * data value (already validated) and is copied verbatim; so is from_raw (the output of
 * proto_encode_from, or NULL to omit "from"). */
char *proto_encode_message(const char *channel, uint64_t offset, const char *data_raw,
			   size_t data_len, const char *from_raw, size_t from_len, size_t *len);
/* The same with a channel name of channel_len bytes (not necessarily NUL-terminated). */
char *proto_encode_message_n(const char *channel, size_t channel_len, uint64_t offset,
			     const char *data_raw, size_t data_len, const char *from_raw,
			     size_t from_len, size_t *len);

/* Client commands (used by client-demo and tests). user/data may be NULL. */
char *proto_encode_connect(const json_t *id, const char *user, size_t *len);
/* connect with an optional token (NULL: none) and user (NULL: none). */
char *proto_encode_connect_token(const json_t *id, const char *user, const char *token,
				 size_t *len);
char *proto_encode_subscribe(const json_t *id, const char *channel, size_t *len);
char *proto_encode_unsubscribe(const json_t *id, const char *channel, size_t *len);
char *proto_encode_publish(const json_t *id, const char *channel, const json_t *data, size_t *len);
char *proto_encode_ping(const json_t *id, size_t *len);

#endif
