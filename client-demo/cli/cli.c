/* cli.c: switchboard-cli, the reference command-line client of the Switchboard protocol.
 *
 * One thread, one lws context, one WebSocket connection at a time. All state lives in
 * struct cli, reached from callbacks through lws_context_user() (timers use
 * lws_container_of). Commands are JSON objects built with jansson (publish data is
 * spliced in as written, see send_publish_raw) into a fresh LWS_PRE-headroom buffer
 * each (lws masks client frames in place), queued, and written one per
 * CLIENT_WRITEABLE; a written command moves to the `sent` FIFO, and since the server
 * answers in command order the FIFO matches every reply to its command. SIGINT/SIGTERM
 * arrive through a signalfd and stdin through an adopted RAW file descriptor, so
 * nothing needs a global.
 *
 * `sub` outlives its connection: when the connection drops it waits (exponential
 * backoff with jitter), connects again and resubscribes every channel with "recover"
 * from the last offset and epoch it saw (struct chan), so that the messages missed in
 * between are printed once, in order; a `reset` frame (a backend dropped the channel's
 * history) moves that position to the new epoch. Everything tied to one connection is
 * reset by reset_connection(); what survives reconnects is the run state below it.
 *
 * `token` never connects: it signs a JWT with HMAC (OpenSSL) and prints it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proto.h"

#define PROG "switchboard-cli"
#define DEFAULT_URL "ws://127.0.0.1:8080/ws"

/* Exit codes, documented in --help. */
#define EXIT_OK 0
#define EXIT_SERVER 1 /* error reply, the server closed the connection, chat refused a line */
#define EXIT_USAGE 2
#define EXIT_CONNECT 3	     /* cannot connect, or no reply within --timeout */
#define EXIT_INTERRUPTED 130 /* SIGINT/SIGTERM before the command's work was done */

#define RX_MAX (16u << 20)    /* largest server frame we reassemble */
#define WINDOW 32	      /* publishes queued or awaiting their reply */
#define LINE_MAX_BYTES 65536  /* chat: longest stdin line we read */
#define FRAME_MAX_BYTES 65536 /* chat: the server's default limits.max_message_size */
#define CLOSE_GRACE_US (2 * LWS_USEC_PER_SEC)
#define SYMBOL_MAX 15
#define USEC_PER_SEC 1000000.0
#define TOKEN_MAX 8192	       /* bytes in a token (docs/protocol.md) */
#define TOKEN_FILE_MAX 65536   /* a token file may hold this much, whitespace included */
#define SECRET_FILE_MAX 65536  /* token: bytes in a --secret-file */
#define TTL_MAX 315360000.0    /* token: --ttl and --nbf, seconds either way (10 years) */
#define EPOCH_MAX 64	       /* bytes in an epoch string */
#define COUNT_MAX 1000000000.0 /* --rewind, --limit */
#define RETRY_MIN_US (LWS_USEC_PER_SEC / 2) /* sub: first reconnect backoff */
#define RETRY_MAX_US (10 * LWS_USEC_PER_SEC)
#define REFRESH_MARGIN_S 60 /* --token-file: refresh this long before the token expires */
#define REFRESH_POLL_S 5    /* then look at the file again this often */
#ifndef KEEPALIVE_S
#define KEEPALIVE_S 30 /* sub: ping a silent server after this, drop it after twice this */
#endif

enum mode {
	MODE_SUB,
	MODE_PUB,
	MODE_CHAT,
	MODE_TICKS,
	MODE_PRESENCE,
	MODE_HISTORY,
	MODE_TOKEN,
};

enum phase {
	PHASE_CONNECTING,  /* TCP, TLS, upgrade, then the reply to connect (or a reconnect wait) */
	PHASE_SUBSCRIBING, /* waiting for every subscribed reply */
	PHASE_RUNNING,
	PHASE_CLOSING, /* our close (1000) is requested or on the wire */
	PHASE_DONE,
};

/* The commands we send; the reply to each has the same name but for the noted ones. */
enum cmd_kind {
	CMD_CONNECT,	    /* connected */
	CMD_SUBSCRIBE,	    /* subscribed */
	CMD_PUBLISH,	    /* published */
	CMD_PRESENCE,	    /* presence */
	CMD_PRESENCE_STATS, /* presence_stats */
	CMD_HISTORY,	    /* history */
	CMD_REFRESH,	    /* refreshed */
};

static const char *const cmd_names[] = {
	[CMD_CONNECT] = "connect",
	[CMD_SUBSCRIBE] = "subscribe",
	[CMD_PUBLISH] = "publish",
	[CMD_PRESENCE] = "presence",
	[CMD_PRESENCE_STATS] = "presence_stats",
	[CMD_HISTORY] = "history",
	[CMD_REFRESH] = "refresh",
};

static const char *const reply_names[] = {
	[CMD_CONNECT] = "connected",
	[CMD_SUBSCRIBE] = "subscribed",
	[CMD_PUBLISH] = "published",
	[CMD_PRESENCE] = "presence",
	[CMD_PRESENCE_STATS] = "presence_stats",
	[CMD_HISTORY] = "history",
	[CMD_REFRESH] = "refreshed",
};

/* One encoded command; buf holds LWS_PRE bytes of headroom, then len bytes of JSON. */
struct cmd {
	struct cmd *next;
	json_int_t id;
	enum cmd_kind kind;
	size_t chan; /* subscribe: index in cli.ch */
	size_t len;
	unsigned char buf[];
};

struct cmdq {
	struct cmd *head, *tail;
	size_t n;
};

/* A channel of the command line and, for sub, where we are in it. */
struct chan {
	const char *name;
	char epoch[EPOCH_MAX + 1];
	uint64_t pos;	  /* recover from here: a reply's or reset's offset, then each printed */
	uint64_t printed; /* highest offset printed in this epoch (0: none) */
	bool have_pos;	  /* pos and epoch are known (the server sent them) */
	bool rewound;	  /* --rewind was applied: a subscribe of this channel succeeded */
	bool recovering;  /* the pending subscribe carries "recover" */
};

struct symbol {
	char name[SYMBOL_MAX + 1];
	int64_t cents; /* price in hundredths, so it always prints with 2 decimals */
};

/* token: the key and the claims of the JWT to mint (docs/tokens.md). */
struct mint {
	const char *alg; /* HS256, HS384 or HS512 */
	const EVP_MD *(*md)(void);
	const char *secret;	 /* --secret, or NULL */
	const char *secret_file; /* --secret-file, or NULL */
	const char *sub;	 /* --sub (else --user) */
	int64_t ttl;		 /* exp = now + ttl; 0: no exp */
	int64_t nbf;		 /* nbf = now + nbf, when nbf_set */
	bool nbf_set;
	json_t *info;	     /* owned: the info object, or NULL */
	json_t *channels;    /* owned: the channels patterns, or NULL */
	json_t *publish;     /* owned: the publish patterns, or NULL */
	const char *channel; /* a channel token for this channel, or NULL */
};

struct opts {
	const char *url;
	const char *user;	/* NULL: connect without a user */
	const char *token_file; /* NULL: the token, if any, is fixed */
	double timeout;		/* seconds */
	bool insecure;
	bool reconnect; /* sub: on unless --no-reconnect */
	enum mode mode;
	char **channels; /* sub: deduplicated; otherwise one */
	size_t nchannels;
	const char *json; /* pub: the data text, trimmed and validated */
	size_t json_len;
	double rate; /* ticks: messages per second, all symbols together */
	const char *symbols;
	uint64_t count;	 /* ticks: 0 means unlimited */
	uint64_t rewind; /* sub: 0 means none */
	uint64_t limit;	 /* history: 0 means all retained */
	struct mint mint;
};

struct url {
	char *buf; /* owned: the pieces below point into it */
	const char *address;
	const char *path;
	char host[300]; /* Host header: address[:port] */
	int port;
	bool tls;
};

struct cli {
	struct opts o;
	struct url u;
	struct lws_context *ctx;
	struct lws_client_connect_info ci;
	struct lws *stdin_wsi;
	enum phase phase;
	int status; /* exit code; the first failure wins */
	bool done;
	bool interrupted;
	bool draining; /* chat/ticks: finish what is in flight, then close */
	json_int_t next_id;
	char *token; /* owned: the token connect sends, or NULL */
	struct chan *ch;
	size_t nch;

	/* Reconnection (sub). */
	unsigned nconnected; /* connected replies received, over all connections */
	bool ever_running;   /* every channel was subscribed at least once */
	unsigned attempt;    /* failed attempts since the last full subscription */
	lws_sorted_usec_list_t sul_retry;

	/* The current connection; reset_connection() clears all of this. */
	struct lws *wsi;
	bool active; /* a connection attempt or connection exists (wsi may lag) */
	bool established;
	struct cmdq outq; /* encoded, not yet written */
	struct cmdq sent; /* written, waiting for the reply */
	size_t nsubscribed;
	int64_t expires;     /* token expiry from the connected reply (Unix s), 0: none */
	char *refresh_token; /* owned: sent in the refresh in flight */
	char *refused_token; /* owned: a token the server refused in refresh */
	bool token_expired;  /* the server said token_expired, or closed with 4001 */
	lws_sorted_usec_list_t sul_refresh;

	/* Reassembly of the current server message. */
	char *rx;
	size_t rx_len, rx_cap;
	bool rx_binary;

	/* The server's close frame, for the "closed by server" message. */
	int close_code;
	char close_reason[128];

	lws_sorted_usec_list_t sul_deadline, sul_tick, sul_grace;
	bool deadline_armed;

	/* Publishing. */
	size_t inflight; /* publishes queued or awaiting their reply */
	uint64_t npublished, nacked, nerrors;
	uint64_t last_pub_offset; /* chat: offset of our newest acknowledged publish */
	uint64_t seen_offset;	  /* chat: highest message offset received */

	/* chat: stdin, split into lines. */
	char *line;
	size_t line_len;
	bool line_discard; /* skipping the rest of an overlong line */
	bool stdin_eof;
	bool stdin_paused;
	int stdin_flags; /* fd 0's file status flags before lws made them O_NONBLOCK */

	/* ticks */
	struct symbol *sym;
	size_t nsym, next_sym;
	uint64_t rng;
	double t0_us; /* monotonic start of the schedule */
	double started_us, ended_us;
	bool ticking;
};

static void begin_close(struct cli *c, int status);
static void pump_stdin(struct cli *c);
static void pump_ticks(struct cli *c);
static void connect_now(struct cli *c);
static bool schedule_reconnect(struct cli *c, const char *what);

/* ---- small helpers ---- */

static void __attribute__((format(printf, 1, 2))) errmsg(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
set_status(struct cli *c, int status)
{
	if (c->status == EXIT_OK)
		c->status = status;
}

static double
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * USEC_PER_SEC + (double)ts.tv_nsec / 1000.0;
}

static int64_t
unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: good enough for a synthetic price feed and for jitter. */
static double
rng_unit(struct cli *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (double)((c->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/* Writes s as one terminal-safe line fragment: control characters (C0, DEL, C1) are
 * shown as escapes, so a message cannot move the cursor or split the line. */
static void
put_safe(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\r')
			fputs("\\r", f);
		else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
			 (unsigned char)s[i + 1] <= 0x9f)
			fprintf(f, "\\u%04x", (unsigned char)s[++i]);
		else
			fputc(ch, f);
	}
}

/* Finishes a line on stdout. A closed pipe (`sub ... | head`) ends the run quietly. */
static void
end_line(struct cli *c)
{
	fputc('\n', stdout);
	if (fflush(stdout) == 0 && !ferror(stdout))
		return;
	if (errno != EPIPE)
		errmsg("cannot write to stdout: %s", strerror(errno));
	clearerr(stdout);
	begin_close(c, errno == EPIPE ? EXIT_OK : EXIT_SERVER);
}

/* Prints JSON text (a frame or a value inside one) as one line. A raw CR or LF in
 * valid JSON can only be whitespace between tokens, so a space keeps the JSON equal. */
static void
print_json_line(struct cli *c, char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' || s[i] == '\r')
			s[i] = ' ';
	fwrite(s, 1, n, stdout);
	end_line(c);
}

/* Calls fn for the exact bytes of each element of a JSON array text (already validated
 * by jansson), so that values are printed as the server wrote them. Returns -1 if the
 * text is not an array. */
static int
for_each_element(struct cli *c, char *a, size_t len, void (*fn)(struct cli *, char *, size_t))
{
	char *p = a, *end = a + len, *start = NULL, *stop = NULL;
	int depth = 0;

	while (p < end && strchr(" \t\r\n", *p) != NULL)
		p++;
	if (p == end || *p++ != '[')
		return -1;
	for (; p < end && c->phase < PHASE_CLOSING; p++) {
		char ch = *p;

		if (ch == '"') {
			if (start == NULL)
				start = p;
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
			stop = p + 1;
			continue;
		}
		if (depth == 0 && (ch == ',' || ch == ']')) {
			if (start != NULL)
				fn(c, start, (size_t)(stop - start));
			start = NULL;
			if (ch == ']')
				return 0;
			continue;
		}
		if (strchr(" \t\r\n", ch) != NULL)
			continue;
		if (start == NULL)
			start = p;
		stop = p + 1;
		if (ch == '{' || ch == '[')
			depth++;
		else if (ch == '}' || ch == ']')
			depth--;
	}
	return c->phase < PHASE_CLOSING ? -1 : 0;
}

/* A token is sent as a JSON string: accept what a JWT is made of, printable ASCII. */
static const char *
token_problem(const char *t)
{
	size_t n = strlen(t);

	if (n == 0)
		return "the token is empty";
	if (n > TOKEN_MAX)
		return "the token is longer than 8192 bytes";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return "the token must be printable ASCII without spaces";
	return NULL;
}

/* Reads the whole of path, at most max bytes (what: what the file holds, for the
 * message), into a malloc'd buffer with a NUL after the *len bytes read. Returns it, or
 * NULL with the reason in why. */
static char *
read_small_file(const char *path, size_t max, const char *what, size_t *len, char *why,
		size_t why_len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	bool bad;

	if (f == NULL) {
		snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	bad = ferror(f) != 0;
	fclose(f);
	if (bad || n > max) {
		if (bad)
			snprintf(why, why_len, "cannot read %s", path);
		else
			snprintf(why, why_len, "%s is too large for %s", path, what);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Reads the token in path (surrounding whitespace dropped). Returns a malloc'd string,
 * or NULL with the reason in why. */
static char *
read_token_file(const char *path, char *why, size_t why_len)
{
	size_t n;
	char *buf = read_small_file(path, TOKEN_FILE_MAX, "a token", &n, why, why_len), *s, *e;
	const char *problem;

	if (buf == NULL)
		return NULL;
	for (s = buf; *s != '\0' && strchr(" \t\r\n", *s) != NULL; s++)
		;
	for (e = buf + n; e > s && strchr(" \t\r\n", e[-1]) != NULL; e--)
		;
	*e = '\0';
	problem = token_problem(s);
	if (problem != NULL) {
		snprintf(why, why_len, "%s: %s", path, problem);
		free(buf);
		return NULL;
	}
	memmove(buf, s, (size_t)(e - s) + 1);
	return buf;
}

static struct chan *
find_chan(struct cli *c, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nch; i++)
		if (strcmp(c->ch[i].name, name) == 0)
			return &c->ch[i];
	return NULL;
}

/* ---- command queue ---- */

static void
cmdq_push(struct cmdq *q, struct cmd *cmd)
{
	cmd->next = NULL;
	if (q->tail != NULL)
		q->tail->next = cmd;
	else
		q->head = cmd;
	q->tail = cmd;
	q->n++;
}

static struct cmd *
cmdq_pop(struct cmdq *q)
{
	struct cmd *cmd = q->head;

	if (cmd == NULL)
		return NULL;
	q->head = cmd->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	return cmd;
}

/* Removes and returns the command with this id; replies come in order, so it is
 * normally the head. */
static struct cmd *
cmdq_take(struct cmdq *q, json_int_t id)
{
	struct cmd **pp, *prev = NULL;

	for (pp = &q->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		struct cmd *cmd = *pp;

		if (cmd->id != id)
			continue;
		*pp = cmd->next;
		if (q->tail == cmd)
			q->tail = prev;
		q->n--;
		return cmd;
	}
	return NULL;
}

static void
cmdq_clear(struct cmdq *q)
{
	struct cmd *cmd;

	while ((cmd = cmdq_pop(q)) != NULL)
		free(cmd);
}

static struct cmd *
cmd_new(enum cmd_kind kind, json_int_t id, size_t len)
{
	struct cmd *cmd = malloc(sizeof(*cmd) + LWS_PRE + len + 1);

	if (cmd == NULL)
		return NULL;
	*cmd = (struct cmd){.id = id, .kind = kind, .len = len};
	cmd->buf[LWS_PRE + len] = '\0';
	return cmd;
}

static void
queue_cmd(struct cli *c, struct cmd *cmd)
{
	cmdq_push(&c->outq, cmd);
	if (c->wsi != NULL && c->established)
		lws_callback_on_writable(c->wsi);
}

static void
out_of_memory(struct cli *c)
{
	errmsg("out of memory");
	begin_close(c, EXIT_SERVER);
}

/* Queues a frame made by a proto_encode_*() function (takes ownership of frame). */
static int
queue_encoded(struct cli *c, enum cmd_kind kind, json_int_t id, char *frame, size_t len)
{
	struct cmd *cmd;

	if (frame == NULL) {
		out_of_memory(c);
		return -ENOMEM;
	}
	cmd = cmd_new(kind, id, len);
	if (cmd == NULL) {
		free(frame);
		out_of_memory(c);
		return -ENOMEM;
	}
	memcpy(cmd->buf + LWS_PRE, frame, len);
	free(frame);
	queue_cmd(c, cmd);
	return 0;
}

/* A new command object {"type":type,"id":N}; members are added by the caller. */
static json_t *
new_command(struct cli *c, const char *type, json_int_t *id)
{
	*id = c->next_id++;
	return json_pack("{s:s, s:I}", "type", type, "id", *id);
}

/* Adds a member to a command being built; a failure (out of memory) makes *o NULL. */
static void
add_member(json_t **o, const char *key, json_t *value)
{
	if (*o != NULL && json_object_set_new(*o, key, value) != 0) {
		json_decref(*o);
		*o = NULL;
	} else if (*o == NULL) {
		json_decref(value);
	}
}

/* Encodes and queues a command made by new_command() (takes ownership of o). */
static int
send_command(struct cli *c, enum cmd_kind kind, json_int_t id, size_t chan, json_t *o)
{
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t len = text != NULL ? strlen(text) : 0;
	struct cmd *cmd = text != NULL ? cmd_new(kind, id, len) : NULL;

	json_decref(o);
	if (cmd == NULL) {
		free(text);
		out_of_memory(c);
		return -ENOMEM;
	}
	memcpy(cmd->buf + LWS_PRE, text, len);
	free(text);
	cmd->chan = chan;
	queue_cmd(c, cmd);
	return 0;
}

static int
send_connect(struct cli *c)
{
	json_int_t id;
	json_t *o = new_command(c, "connect", &id);

	if (c->o.user != NULL)
		add_member(&o, "user", json_string(c->o.user));
	if (c->token != NULL)
		add_member(&o, "token", json_string(c->token));
	return send_command(c, CMD_CONNECT, id, 0, o);
}

/* subscribe, resuming from the channel's last known position when there is one (a
 * reconnect), else with --rewind on the first successful subscribe. */
static int
send_subscribe(struct cli *c, size_t i)
{
	struct chan *ch = &c->ch[i];
	json_int_t id;
	json_t *o = new_command(c, "subscribe", &id);

	add_member(&o, "channel", json_string(ch->name));
	ch->recovering = ch->have_pos;
	if (ch->have_pos)
		add_member(
			&o, "recover",
			json_pack("{s:I, s:s}", "offset", (json_int_t)ch->pos, "epoch", ch->epoch));
	else if (!ch->rewound && c->o.rewind != 0)
		add_member(&o, "rewind", json_integer((json_int_t)c->o.rewind));
	return send_command(c, CMD_SUBSCRIBE, id, i, o);
}

static int
send_channel_command(struct cli *c, enum cmd_kind kind)
{
	json_int_t id;
	json_t *o = new_command(c, cmd_names[kind], &id);

	add_member(&o, "channel", json_string(c->o.channels[0]));
	if (kind == CMD_HISTORY && c->o.limit != 0)
		add_member(&o, "limit", json_integer((json_int_t)c->o.limit));
	return send_command(c, kind, id, 0, o);
}

static int
send_refresh(struct cli *c, char *token)
{
	json_int_t id;
	json_t *o = new_command(c, "refresh", &id);

	add_member(&o, "token", json_string(token));
	free(c->refresh_token);
	c->refresh_token = token;
	return send_command(c, CMD_REFRESH, id, 0, o);
}

/* Publishes data given as JSON text (already validated). The codec encodes the command
 * around a null placeholder and the text is spliced in its place: re-encoding it with
 * jansson would rewrite numbers (0.1 becomes 0.10000000000000001), and subscribers are
 * promised the publisher's bytes. */
static int
send_publish_raw(struct cli *c, const char *raw, size_t raw_len)
{
	json_int_t n = c->next_id++;
	json_t *id = json_integer(n);
	size_t len = 0, hole_len, head;
	const char *hole;
	char *tmpl = proto_encode_publish(id, c->o.channels[0], NULL, &len);
	struct cmd *cmd;

	json_decref(id);
	if (tmpl == NULL) {
		out_of_memory(c);
		return -ENOMEM;
	}
	if (proto_find_member(tmpl, len, "data", &hole, &hole_len) != 0) {
		free(tmpl);
		errmsg("internal error: cannot encode publish");
		begin_close(c, EXIT_SERVER);
		return -EINVAL;
	}
	cmd = cmd_new(CMD_PUBLISH, n, len - hole_len + raw_len);
	if (cmd == NULL) {
		free(tmpl);
		out_of_memory(c);
		return -ENOMEM;
	}
	head = (size_t)(hole - tmpl);
	memcpy(cmd->buf + LWS_PRE, tmpl, head);
	memcpy(cmd->buf + LWS_PRE + head, raw, raw_len);
	memcpy(cmd->buf + LWS_PRE + head + raw_len, hole + hole_len, len - head - hole_len);
	free(tmpl);
	queue_cmd(c, cmd);
	c->inflight++;
	c->npublished++;
	return 0;
}

/* ---- timers ---- */

static void
finish(struct cli *c)
{
	if (c->done)
		return;
	c->phase = PHASE_DONE;
	c->done = true;
	lws_sul_cancel(&c->sul_deadline);
	lws_sul_cancel(&c->sul_tick);
	lws_sul_cancel(&c->sul_grace);
	lws_sul_cancel(&c->sul_retry);
	lws_sul_cancel(&c->sul_refresh);
	lws_cancel_service(c->ctx);
}

/* What the client is waiting for from the server, or NULL when it is only listening
 * (or waiting to reconnect). */
static const char *
waiting_for(const struct cli *c)
{
	if (c->phase >= PHASE_CLOSING || !c->active)
		return NULL;
	if (!c->established)
		return "the connection";
	if (c->sent.head != NULL)
		return cmd_names[c->sent.head->kind];
	if (c->outq.head != NULL)
		return cmd_names[c->outq.head->kind];
	if (c->o.mode == MODE_CHAT && c->draining && c->seen_offset < c->last_pub_offset)
		return "the echo of the last message";
	return NULL;
}

/* sub reconnects after a drop, once a connection has been accepted (connected), unless
 * --no-reconnect, or the token expired and there is no file to read a new one from. */
static bool
can_reconnect(const struct cli *c)
{
	return c->o.mode == MODE_SUB && c->o.reconnect && c->nconnected > 0 &&
	       !(c->token_expired && c->o.token_file == NULL);
}

static void
on_deadline(lws_sorted_usec_list_t *sul)
{
	struct cli *c = lws_container_of(sul, struct cli, sul_deadline);
	const char *what = waiting_for(c);
	char msg[200];

	c->deadline_armed = false;
	if (what == NULL)
		return;
	if (!c->established)
		snprintf(msg, sizeof(msg), "cannot connect to %s: timed out after %g s", c->o.url,
			 c->o.timeout);
	else if (strncmp(what, "the ", 4) == 0)
		snprintf(msg, sizeof(msg), "timed out after %g s waiting for %s", c->o.timeout,
			 what);
	else
		snprintf(msg, sizeof(msg), "timed out after %g s waiting for the reply to %s",
			 c->o.timeout, what);
	if (can_reconnect(c)) {
		/* lws reports nothing more about a wsi killed before the upgrade completed:
		 * forget it now. A late CLIENT_CLOSED finds it stale. */
		struct lws *wsi = c->wsi;

		c->wsi = NULL;
		c->active = false;
		c->established = false;
		if (wsi != NULL)
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		schedule_reconnect(c, msg);
		return;
	}
	errmsg("%s", msg);
	begin_close(c, EXIT_CONNECT);
}

/* Keeps the --timeout deadline armed while a reply is awaited. `progress` (a reply
 * arrived) restarts it; otherwise an armed deadline keeps running. */
static void
update_deadline(struct cli *c, bool progress)
{
	if (waiting_for(c) == NULL) {
		lws_sul_cancel(&c->sul_deadline);
		c->deadline_armed = false;
		return;
	}
	if (c->deadline_armed && !progress)
		return;
	lws_sul_schedule(c->ctx, 0, &c->sul_deadline, on_deadline,
			 (lws_usec_t)(c->o.timeout * USEC_PER_SEC));
	c->deadline_armed = true;
}

static void
on_grace(lws_sorted_usec_list_t *sul)
{
	finish(lws_container_of(sul, struct cli, sul_grace));
}

/* Ends the run with `status`: a clean close (1000) when the WebSocket is up, then the
 * loop stops at CLIENT_CLOSED or after a grace period. */
static void
begin_close(struct cli *c, int status)
{
	set_status(c, status);
	if (c->phase >= PHASE_CLOSING)
		return;
	lws_sul_cancel(&c->sul_deadline);
	c->deadline_armed = false;
	lws_sul_cancel(&c->sul_tick);
	lws_sul_cancel(&c->sul_retry);
	lws_sul_cancel(&c->sul_refresh);
	if (c->ticking) {
		c->ended_us = mono_us();
		c->ticking = false;
	}
	if (c->wsi == NULL || !c->established) {
		finish(c);
		return;
	}
	c->phase = PHASE_CLOSING;
	lws_callback_on_writable(c->wsi);
	lws_sul_schedule(c->ctx, 0, &c->sul_grace, on_grace, CLOSE_GRACE_US);
}

/* chat/ticks: once draining, close when nothing is left in flight. */
static void
check_drained(struct cli *c)
{
	if (!c->draining || c->phase != PHASE_RUNNING)
		return;
	if (c->outq.n != 0 || c->sent.n != 0)
		return;
	if (c->o.mode == MODE_CHAT && c->seen_offset < c->last_pub_offset)
		return;
	begin_close(c, c->nerrors != 0 ? EXIT_SERVER : EXIT_OK);
}

/* ---- reconnection (sub) and token refresh ---- */

/* Forgets everything tied to the connection that ended. */
static void
reset_connection(struct cli *c)
{
	c->wsi = NULL;
	c->active = false;
	c->established = false;
	cmdq_clear(&c->outq);
	cmdq_clear(&c->sent);
	c->nsubscribed = 0;
	c->expires = 0;
	free(c->refresh_token);
	c->refresh_token = NULL;
	c->token_expired = false;
	c->rx_len = 0;
	c->close_code = 0;
	c->close_reason[0] = '\0';
	lws_sul_cancel(&c->sul_deadline);
	c->deadline_armed = false;
	lws_sul_cancel(&c->sul_refresh);
	for (size_t i = 0; i < c->nch; i++)
		c->ch[i].recovering = false;
}

static void
on_retry(lws_sorted_usec_list_t *sul)
{
	connect_now(lws_container_of(sul, struct cli, sul_retry));
}

/* The wait before the next attempt: 0.5 s doubling up to 10 s, with "equal jitter"
 * (a random point in the upper half) so that clients dropped together do not all come
 * back at the same instant. */
static lws_usec_t
next_backoff(struct cli *c)
{
	lws_usec_t base = RETRY_MIN_US;

	for (unsigned i = 0; i < c->attempt && base < RETRY_MAX_US; i++)
		base *= 2;
	if (base > RETRY_MAX_US)
		base = RETRY_MAX_US;
	if (c->attempt < 64)
		c->attempt++;
	return base / 2 + (lws_usec_t)(rng_unit(c) * (double)(base / 2));
}

/* The connection ended (or never came up) for a reason other than our own close;
 * what: the reason, for stderr. Returns true when a reconnect was scheduled. */
static bool
schedule_reconnect(struct cli *c, const char *what)
{
	lws_usec_t delay;

	if (!can_reconnect(c))
		return false;
	delay = next_backoff(c);
	errmsg("%s; reconnecting in %.1f s", what, (double)delay / USEC_PER_SEC);
	c->phase = PHASE_CONNECTING;
	lws_sul_schedule(c->ctx, 0, &c->sul_retry, on_retry, delay);
	return true;
}

/* Starts a connection attempt (the first one, or a reconnect). */
static void
connect_now(struct cli *c)
{
	reset_connection(c);
	c->phase = PHASE_CONNECTING;
	if (c->o.token_file != NULL && c->nconnected > 0) {
		/* A reconnect uses the file's current token: it may have been renewed. */
		char why[300], *t = read_token_file(c->o.token_file, why, sizeof(why));

		if (t == NULL) {
			errmsg("--token-file: %s; using the previous token", why);
		} else {
			free(c->token);
			c->token = t;
		}
	}
	c->active = true;
	update_deadline(c, true);
	if (lws_client_connect_via_info(&c->ci) == NULL && c->active && !c->done) {
		c->active = false;
		c->wsi = NULL;
		if (!schedule_reconnect(c, "cannot connect: connection failed")) {
			errmsg("cannot connect to %s: connection failed (unknown host?)", c->o.url);
			set_status(c, EXIT_CONNECT);
			finish(c);
		}
	}
}

static void on_refresh_timer(lws_sorted_usec_list_t *sul);

/* --token-file: schedules a look at the file before the token expires (poll: again
 * soon, the file had nothing new). */
static void
schedule_refresh(struct cli *c, bool poll)
{
	int64_t now = (int64_t)time(NULL), left = c->expires - now, delay;

	if (c->o.token_file == NULL || c->expires <= 0 || c->refresh_token != NULL)
		return;
	if (poll)
		delay = REFRESH_POLL_S;
	else if (left > 2 * REFRESH_MARGIN_S)
		delay = left - REFRESH_MARGIN_S;
	else
		delay = left / 2;
	if (delay < 0 || now + delay >= c->expires)
		return; /* too late: the server closes with 4001, sub reconnects */
	lws_sul_schedule(c->ctx, 0, &c->sul_refresh, on_refresh_timer,
			 (lws_usec_t)delay * LWS_USEC_PER_SEC);
}

/* Sends the file's token in a refresh when it is a new one. */
static void
on_refresh_timer(lws_sorted_usec_list_t *sul)
{
	struct cli *c = lws_container_of(sul, struct cli, sul_refresh);
	char why[300], *t;

	if (!c->established || c->phase < PHASE_SUBSCRIBING || c->phase >= PHASE_CLOSING)
		return;
	t = read_token_file(c->o.token_file, why, sizeof(why));
	if (t == NULL) {
		errmsg("--token-file: %s", why);
	} else if (strcmp(t, c->token) != 0 &&
		   (c->refused_token == NULL || strcmp(t, c->refused_token) != 0)) {
		send_refresh(c, t);
		update_deadline(c, false);
		return;
	}
	free(t);
	schedule_refresh(c, true);
}

/* ---- ticks ---- */

static void
on_tick(lws_sorted_usec_list_t *sul)
{
	pump_ticks(lws_container_of(sul, struct cli, sul_tick));
}

static void
publish_tick(struct cli *c)
{
	struct symbol *s = &c->sym[c->next_sym++ % c->nsym];
	double u = rng_unit(c) * 2.0 - 1.0;
	double walk = (double)s->cents * u * 0.001;
	int64_t step = (int64_t)(walk < 0 ? walk - 0.5 : walk + 0.5);
	char data[128];
	int n;

	if (step == 0)
		step = u < 0 ? -1 : 1;
	s->cents += step;
	if (s->cents < 1)
		s->cents = 1;
	n = snprintf(data, sizeof(data),
		     "{\"symbol\":\"%s\",\"price\":%" PRId64 ".%02" PRId64 ",\"ts\":%" PRId64 "}",
		     s->name, s->cents / 100, s->cents % 100, unix_ms());
	send_publish_raw(c, data, (size_t)n);
}

/* Publishes what the schedule says is due, within the in-flight window, and sets the
 * timer for the next one. Called by the timer and whenever a reply frees the window. */
static void
pump_ticks(struct cli *c)
{
	double now = mono_us(), interval = USEC_PER_SEC / c->o.rate, next;
	uint64_t due;

	if (!c->ticking || c->draining || c->phase != PHASE_RUNNING)
		return;
	due = (uint64_t)((now - c->t0_us) / interval) + 1;
	if (due > c->npublished + (uint64_t)c->o.rate + 1) {
		/* More than a second behind (the window was full): do not burst to catch up. */
		c->t0_us = now - (double)c->npublished * interval;
		due = c->npublished + 1;
	}
	while (c->npublished < due && c->inflight < WINDOW && c->phase == PHASE_RUNNING &&
	       (c->o.count == 0 || c->npublished < c->o.count))
		publish_tick(c);
	update_deadline(c, false);
	if (c->o.count != 0 && c->npublished >= c->o.count) {
		c->draining = true;
		check_drained(c);
		return;
	}
	if (c->inflight >= WINDOW)
		return;
	next = c->t0_us + (double)c->npublished * interval;
	lws_sul_schedule(c->ctx, 0, &c->sul_tick, on_tick,
			 next > now ? (lws_usec_t)(next - now) : 0);
}

static void
start_ticks(struct cli *c)
{
	c->ticking = true;
	c->started_us = c->t0_us = mono_us();
	pump_ticks(c);
}

static void
print_ticks_summary(const struct cli *c)
{
	double secs = ((c->ended_us != 0 ? c->ended_us : mono_us()) - c->started_us) / USEC_PER_SEC;

	printf("ticks: %" PRIu64 " published to %s (%s) in %.2f s, %.1f/s, %" PRIu64
	       " acknowledged, %" PRIu64 " errors\n",
	       c->npublished, c->o.channels[0], c->o.symbols, secs,
	       secs > 0 ? (double)c->npublished / secs : 0.0, c->nacked, c->nerrors);
	fflush(stdout);
}

/* ---- chat: stdin ----
 *
 * lws watches a dup of fd 0, never fd 0 itself: lws closes the descriptors it adopts,
 * and a pipe whose writer has gone reports POLLHUP even while reading is paused, which
 * makes lws close the wsi with unread lines still in the pipe. The dup is then simply
 * adopted again when reading resumes. */

static void adopt_stdin(struct cli *c);

static void
publish_line(struct cli *c, const char *s, size_t n)
{
	json_int_t id = c->next_id;
	json_t *data, *text, *jid;
	size_t len = 0;
	char *frame;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n == 0)
		return;
	text = json_stringn(s, n);
	if (text == NULL) {
		errmsg("line is not valid UTF-8, not sent");
		set_status(c, EXIT_SERVER); /* the chat goes on, and exits 1 */
		return;
	}
	data = json_object();
	jid = json_integer(id);
	if (data == NULL || jid == NULL || json_object_set_new(data, "text", text) != 0) {
		json_decref(data);
		json_decref(jid);
		out_of_memory(c);
		return;
	}
	frame = proto_encode_publish(jid, c->o.channels[0], data, &len);
	json_decref(jid);
	json_decref(data);
	if (frame != NULL && len > FRAME_MAX_BYTES) {
		/* The server would close the connection (1009) rather than refuse it. */
		errmsg("line too long (%zu bytes as a frame, limit %d), not sent", len,
		       FRAME_MAX_BYTES);
		free(frame);
		set_status(c, EXIT_SERVER);
		return;
	}
	c->next_id++;
	if (queue_encoded(c, CMD_PUBLISH, id, frame, len) != 0)
		return;
	c->inflight++;
	c->npublished++;
}

/* Publishes complete lines from the stdin buffer while the window allows, and pauses
 * or resumes reading stdin accordingly. */
static void
pump_stdin(struct cli *c)
{
	size_t off = 0;
	bool want_read;

	if (c->line == NULL || c->phase != PHASE_RUNNING)
		return;
	while (c->inflight < WINDOW && c->phase == PHASE_RUNNING) {
		char *nl = memchr(c->line + off, '\n', c->line_len - off);
		size_t n;

		if (nl == NULL) {
			if (!c->stdin_eof || off == c->line_len)
				break;
			n = c->line_len - off; /* last line without a newline */
			publish_line(c, c->line + off, n);
			off += n;
			break;
		}
		n = (size_t)(nl - (c->line + off));
		publish_line(c, c->line + off, n);
		off += n + 1;
	}
	memmove(c->line, c->line + off, c->line_len - off);
	c->line_len -= off;
	update_deadline(c, false);

	if (c->stdin_eof) {
		if (c->line_len == 0 && !c->draining) {
			c->draining = true;
			check_drained(c);
		}
		return;
	}
	/* A full buffer without a newline is read too: that drops the overlong line. */
	want_read = c->inflight < WINDOW && memchr(c->line, '\n', c->line_len) == NULL;
	if (want_read != c->stdin_paused)
		return;
	c->stdin_paused = !want_read;
	if (c->stdin_wsi != NULL)
		lws_rx_flow_control(c->stdin_wsi, want_read);
	else if (want_read)
		adopt_stdin(c);
}

static void
stdin_ended(struct cli *c)
{
	c->stdin_eof = true;
	if (c->line_discard)
		c->line_len = 0;
	pump_stdin(c);
}

static int
on_stdin_readable(struct cli *c, struct lws *wsi)
{
	ssize_t n;

	if (c->stdin_paused)
		return 0; /* the pause takes effect after this callback */
	if (c->line_len == LINE_MAX_BYTES) {
		/* A full buffer without a newline: drop the line rather than send a frame
		 * over the server's size limit. */
		errmsg("line longer than %d bytes, not sent", LINE_MAX_BYTES);
		set_status(c, EXIT_SERVER);
		c->line_len = 0;
		c->line_discard = true;
	}
	n = read(lws_get_socket_fd(wsi), c->line + c->line_len, LINE_MAX_BYTES - c->line_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		errmsg("cannot read stdin: %s", strerror(errno));
	if (n <= 0) {
		stdin_ended(c);
		return -1; /* lws closes the wsi and our dup */
	}
	if (c->line_discard) {
		char *nl = memchr(c->line + c->line_len, '\n', (size_t)n);

		if (nl == NULL)
			return 0;
		n -= nl + 1 - (c->line + c->line_len);
		memmove(c->line, nl + 1, (size_t)n);
		c->line_discard = false;
	}
	c->line_len += (size_t)n;
	pump_stdin(c);
	return 0;
}

static void
on_stdin_closed(struct cli *c)
{
	c->stdin_wsi = NULL;
	/* Closed by lws while paused: fd 0 may still hold data; adopted again on resume.
	 * Otherwise it was a hangup without data, that is the end of input. */
	if (!c->stdin_eof && !c->stdin_paused)
		stdin_ended(c);
}

static int
stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct cli *c = lws_context_user(lws_get_context(wsi));

	(void)user, (void)in, (void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		return on_stdin_readable(c, wsi);
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		on_stdin_closed(c);
		return 0;
	default:
		return 0;
	}
}

static void
adopt_stdin(struct cli *c)
{
	lws_sock_file_fd_type fd = {.filefd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)};

	if (fd.filefd >= 0)
		c->stdin_wsi = lws_adopt_descriptor_vhost(
			lws_get_vhost(c->wsi), LWS_ADOPT_RAW_FILE_DESC, fd, "sb-stdin", NULL);
	if (c->stdin_wsi != NULL)
		return;
	/* stdin is not readable or not pollable: behave as at the end of input. */
	if (fd.filefd >= 0)
		close(fd.filefd);
	stdin_ended(c);
}

static void
start_chat(struct cli *c)
{
	/* The dup shares fd 0's O_NONBLOCK, which lws sets; run() restores the flags so
	 * that the shell's terminal is not left non-blocking. */
	c->stdin_flags = fcntl(STDIN_FILENO, F_GETFL);
	c->line = malloc(LINE_MAX_BYTES);
	if (c->line == NULL) {
		out_of_memory(c);
		return;
	}
	adopt_stdin(c);
}

/* ---- signals ---- */

static int
on_signal(struct cli *c, struct lws *wsi)
{
	struct signalfd_siginfo si;
	bool endless, running;

	if (read(lws_get_socket_fd(wsi), &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	if (c->interrupted || c->phase >= PHASE_CLOSING) {
		/* Second signal, or the close is stuck: stop now. */
		set_status(c, EXIT_INTERRUPTED);
		finish(c);
		return 0;
	}
	c->interrupted = true;
	if (c->o.mode == MODE_TICKS && c->ticking) {
		/* Stop publishing; close once the messages in flight are acknowledged. */
		lws_sul_cancel(&c->sul_tick);
		c->ended_us = mono_us();
		c->ticking = false;
		c->draining = true;
		check_drained(c);
		return 0;
	}
	/* sub, chat and ticks run until interrupted: that is success once they are
	 * running (sub also while it waits to reconnect). pub, presence and history are
	 * interrupted before their work is done. */
	endless = c->o.mode == MODE_SUB || c->o.mode == MODE_CHAT || c->o.mode == MODE_TICKS;
	running = c->phase == PHASE_RUNNING || (c->o.mode == MODE_SUB && c->ever_running);
	begin_close(c, endless && running ? EXIT_OK : EXIT_INTERRUPTED);
	return 0;
}

static int
signal_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct cli *c = lws_context_user(lws_get_context(wsi));

	(void)user, (void)in, (void)len;
	if (reason == LWS_CALLBACK_RAW_RX_FILE)
		return on_signal(c, wsi);
	return 0;
}

/* ---- server frames ---- */

static void
print_error_frame(const char *buf, size_t len)
{
	fflush(stdout);
	fputs(PROG ": server error: ", stderr);
	put_safe(stderr, buf, len);
	fputc('\n', stderr);
}

static void
on_all_subscribed(struct cli *c)
{
	c->phase = PHASE_RUNNING;
	c->ever_running = true;
	c->attempt = 0; /* the next drop starts the backoff afresh */
	switch (c->o.mode) {
	case MODE_SUB:
	case MODE_TOKEN: /* never connects */
		break;
	case MODE_PUB:
		send_publish_raw(c, c->o.json, c->o.json_len);
		break;
	case MODE_CHAT:
		start_chat(c);
		break;
	case MODE_TICKS:
		start_ticks(c);
		break;
	case MODE_PRESENCE:
		send_channel_command(c, CMD_PRESENCE); /* then presence_stats, on the reply */
		break;
	case MODE_HISTORY:
		send_channel_command(c, CMD_HISTORY);
		break;
	}
}

static void
on_connected(struct cli *c, json_t *root)
{
	json_t *exp = json_object_get(root, "expires");

	c->nconnected++;
	c->expires = json_is_integer(exp) ? (int64_t)json_integer_value(exp) : 0;
	schedule_refresh(c, false);
	c->phase = PHASE_SUBSCRIBING;
	if (c->nch == 0) {
		on_all_subscribed(c);
		return;
	}
	for (size_t i = 0; i < c->nch; i++)
		send_subscribe(c, i);
}

/* Takes the channel's position from a subscribed reply. On a reconnect, tells on
 * stderr whether the messages missed in between will follow. */
static void
on_subscribed(struct cli *c, struct chan *ch, json_t *root)
{
	json_t *off = json_object_get(root, "offset"), *ep = json_object_get(root, "epoch");
	bool known = json_is_integer(off) && json_integer_value(off) >= 0 && json_is_string(ep) &&
		     json_string_length(ep) <= EPOCH_MAX;
	uint64_t now = known ? (uint64_t)json_integer_value(off) : 0;

	if (ch->recovering && json_is_true(json_object_get(root, "recovered"))) {
		/* The missed messages follow the reply; pos stays where we were. */
		if (known && now >= ch->pos)
			errmsg("reconnected; %s recovered %" PRIu64 " missed message%s", ch->name,
			       now - ch->pos, now - ch->pos == 1 ? "" : "s");
		else
			errmsg("reconnected; %s recovered", ch->name);
	} else {
		if (ch->recovering)
			errmsg("reconnected; %s could not be recovered (recovered:false): state "
			       "may be incomplete",
			       ch->name);
		else if (c->nconnected > 1)
			errmsg("reconnected; %s subscribed again without recovery (the server "
			       "gave no offset): state may be incomplete",
			       ch->name);
		ch->have_pos = known;
		if (known) {
			if (strcmp(ch->epoch, json_string_value(ep)) != 0) {
				/* A new run of offsets: they may start again at 1. */
				ch->printed = 0;
				snprintf(ch->epoch, sizeof(ch->epoch), "%s", json_string_value(ep));
			}
			ch->pos = now;
		}
	}
	ch->recovering = false;
	ch->rewound = true;
	if (++c->nsubscribed == c->nch)
		on_all_subscribed(c);
}

static void
on_published(struct cli *c, json_t *root, const char *buf, size_t len)
{
	json_t *off = json_object_get(root, "offset");

	c->inflight--;
	c->nacked++;
	switch (c->o.mode) {
	case MODE_PUB:
		fwrite(buf, 1, len, stdout);
		end_line(c);
		begin_close(c, EXIT_OK);
		break;
	case MODE_CHAT:
		if (json_is_integer(off) && (uint64_t)json_integer_value(off) > c->last_pub_offset)
			c->last_pub_offset = (uint64_t)json_integer_value(off);
		pump_stdin(c);
		break;
	case MODE_TICKS:
		pump_ticks(c);
		break;
	default:
		break;
	}
}

/* presence and history: prints each element of the reply's array member as one line. */
static void
print_elements(struct cli *c, json_t *root, char *buf, size_t len, const char *member)
{
	const char *arr;
	size_t arr_len;

	if (!json_is_array(json_object_get(root, member)) ||
	    proto_find_member(buf, len, member, &arr, &arr_len) != 0 ||
	    for_each_element(c, (char *)arr, arr_len, print_json_line) != 0) {
		errmsg("the %s reply has no \"%s\" array", member, member);
		begin_close(c, EXIT_SERVER);
	}
}

static void
on_refreshed(struct cli *c, json_t *root)
{
	json_t *exp = json_object_get(root, "expires");

	free(c->token);
	c->token = c->refresh_token;
	c->refresh_token = NULL;
	c->expires = json_is_integer(exp) ? (int64_t)json_integer_value(exp) : 0;
	schedule_refresh(c, false);
}

static void
on_reply(struct cli *c, json_t *root, const char *type, char *buf, size_t len)
{
	json_t *id = json_object_get(root, "id");
	struct cmd *cmd = json_is_integer(id) ? cmdq_take(&c->sent, json_integer_value(id)) : NULL;

	if (cmd == NULL)
		return; /* not an answer to anything we asked: ignore */
	if (strcmp(type, reply_names[cmd->kind]) != 0) {
		errmsg("unexpected \"%s\" reply to %s", type, cmd_names[cmd->kind]);
		free(cmd);
		begin_close(c, EXIT_SERVER);
		return;
	}
	switch (cmd->kind) {
	case CMD_CONNECT:
		on_connected(c, root);
		break;
	case CMD_SUBSCRIBE:
		on_subscribed(c, &c->ch[cmd->chan], root);
		break;
	case CMD_PUBLISH:
		on_published(c, root, buf, len);
		break;
	case CMD_PRESENCE:
		print_elements(c, root, buf, len, "members");
		if (c->phase == PHASE_RUNNING)
			send_channel_command(c, CMD_PRESENCE_STATS);
		break;
	case CMD_PRESENCE_STATS:
		print_json_line(c, buf, len);
		begin_close(c, EXIT_OK);
		break;
	case CMD_HISTORY:
		print_elements(c, root, buf, len, "messages");
		begin_close(c, EXIT_OK);
		break;
	case CMD_REFRESH:
		on_refreshed(c, root);
		break;
	}
	free(cmd);
	update_deadline(c, true);
	check_drained(c);
}

static void
on_error_frame(struct cli *c, json_t *root, const char *buf, size_t len)
{
	json_t *id = json_object_get(root, "id");
	const char *code = json_string_value(json_object_get(root, "code"));
	struct cmd *cmd = json_is_integer(id) ? cmdq_take(&c->sent, json_integer_value(id)) : NULL;
	int kind = cmd != NULL ? (int)cmd->kind : -1;

	free(cmd);
	print_error_frame(buf, len);
	if (kind == CMD_PUBLISH) {
		c->inflight--;
		c->nerrors++;
		if (c->o.mode == MODE_CHAT) {
			/* One refused line does not end an interactive chat; it makes it exit
			 * 1, also when a signal ends it. */
			set_status(c, EXIT_SERVER);
			update_deadline(c, true);
			pump_stdin(c);
			check_drained(c);
			return;
		}
	}
	if (kind == CMD_REFRESH) {
		/* The current token stays valid until it expires; wait for another one. */
		free(c->refused_token);
		c->refused_token = c->refresh_token;
		c->refresh_token = NULL;
		update_deadline(c, true);
		schedule_refresh(c, true);
		return;
	}
	if (kind < 0 && code != NULL && strcmp(code, "token_expired") == 0) {
		c->token_expired = true; /* the 4001 close follows */
		return;
	}
	begin_close(c, EXIT_SERVER);
}

static void
print_chat_message(struct cli *c, json_t *root, const char *buf, size_t len)
{
	json_t *from = json_object_get(root, "from");
	json_t *data = json_object_get(root, "data");
	json_t *text = json_object_get(data, "text");
	const char *user = json_string_value(json_object_get(from, "user"));
	const char *raw;
	size_t raw_len;

	if (user == NULL || user[0] == '\0')
		user = json_string_value(json_object_get(from, "client"));
	if (user == NULL)
		user = "?";
	put_safe(stdout, user, strlen(user));
	fputs(": ", stdout);
	if (json_is_string(text))
		put_safe(stdout, json_string_value(text), json_string_length(text));
	else if (proto_find_member(buf, len, "data", &raw, &raw_len) == 0)
		put_safe(stdout, raw, raw_len);
	end_line(c);
}

/* sub: whether to print a message, advancing the channel's position. The server
 * delivers each offset once, also across a recovery; a second copy is reported and
 * dropped rather than printed twice. */
static bool
take_message(struct cli *c, json_t *root)
{
	struct chan *ch = find_chan(c, json_string_value(json_object_get(root, "channel")));
	json_t *off = json_object_get(root, "offset");
	uint64_t o;

	if (ch == NULL || !json_is_integer(off) || json_integer_value(off) < 0)
		return true;
	o = (uint64_t)json_integer_value(off);
	if (ch->printed != 0 && o <= ch->printed) {
		errmsg("ignoring a second copy of %s offset %" PRIu64
		       " (already printed up to %" PRIu64 ")",
		       ch->name, o, ch->printed);
		return false;
	}
	ch->printed = o;
	if (o > ch->pos)
		ch->pos = o;
	return true;
}

static void
on_message(struct cli *c, json_t *root, char *buf, size_t len)
{
	json_t *off = json_object_get(root, "offset");

	if (c->phase >= PHASE_CLOSING)
		return;
	switch (c->o.mode) {
	case MODE_SUB:
		/* The frame as received, on one line. */
		if (take_message(c, root))
			print_json_line(c, buf, len);
		break;
	case MODE_CHAT:
		if (json_is_integer(off) && (uint64_t)json_integer_value(off) > c->seen_offset)
			c->seen_offset = (uint64_t)json_integer_value(off);
		print_chat_message(c, root, buf, len);
		update_deadline(c, true);
		check_drained(c);
		break;
	default:
		break; /* pub, ticks: our own echo */
	}
}

/* The server side dropped the channel's history (DELETE .../messages): the channel goes
 * on in a new epoch whose last offset is the frame's (0: the next message is offset 1).
 * Adopting that position lets the next messages print instead of passing for second
 * copies, and makes a reconnect recover from the new epoch. Frames of the old epoch all
 * came before this one. */
static void
on_reset(struct cli *c, json_t *root, char *buf, size_t len)
{
	struct chan *ch = find_chan(c, json_string_value(json_object_get(root, "channel")));
	json_t *off = json_object_get(root, "offset"), *ep = json_object_get(root, "epoch");

	if (ch == NULL || c->phase >= PHASE_CLOSING)
		return;
	if (!json_is_integer(off) || json_integer_value(off) < 0 || !json_is_string(ep) ||
	    json_string_length(ep) > EPOCH_MAX) {
		errmsg("ignoring a reset of %s without a usable offset and epoch", ch->name);
		return;
	}
	snprintf(ch->epoch, sizeof(ch->epoch), "%s", json_string_value(ep));
	ch->pos = ch->printed = (uint64_t)json_integer_value(off);
	ch->have_pos = true;
	switch (c->o.mode) {
	case MODE_SUB:
		print_json_line(c, buf, len);
		break;
	case MODE_CHAT:
		/* The echo of every line published before the reset has arrived. */
		c->seen_offset = c->last_pub_offset = ch->pos;
		errmsg("%s was reset by the server: earlier messages are gone, offsets start "
		       "again at %" PRIu64,
		       ch->name, ch->pos + 1);
		update_deadline(c, true);
		check_drained(c);
		break;
	default:
		break; /* pub, ticks: offsets are not tracked */
	}
}

static void
on_frame(struct cli *c, char *buf, size_t len)
{
	json_t *root = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
	const char *type = json_string_value(json_object_get(root, "type"));

	if (type == NULL) {
		errmsg("ignoring a frame that is not a protocol message");
	} else if (strcmp(type, "message") == 0) {
		on_message(c, root, buf, len);
	} else if (strcmp(type, "error") == 0) {
		on_error_frame(c, root, buf, len);
	} else if (strcmp(type, "join") == 0 || strcmp(type, "leave") == 0) {
		/* Events of the subscribed channels: sub prints them, the others ignore them. */
		if (c->o.mode == MODE_SUB && c->phase < PHASE_CLOSING)
			print_json_line(c, buf, len);
	} else if (strcmp(type, "reset") == 0) {
		on_reset(c, root, buf, len);
	} else {
		on_reply(c, root, type, buf, len);
	}
	json_decref(root);
}

/* ---- WebSocket callbacks ---- */

static int
on_receive(struct cli *c, struct lws *wsi, const void *in, size_t len)
{
	if (c->rx_len == 0)
		c->rx_binary = lws_frame_is_binary(wsi);
	if (len > RX_MAX - c->rx_len) {
		errmsg("server message larger than %u bytes", RX_MAX);
		set_status(c, EXIT_SERVER);
		c->phase = PHASE_CLOSING;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
		return -1;
	}
	if (c->rx_len + len + 1 > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 4096;
		char *p;

		while (cap < c->rx_len + len + 1)
			cap *= 2;
		p = realloc(c->rx, cap);
		if (p == NULL) {
			out_of_memory(c);
			return 0;
		}
		c->rx = p;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0)
		return 0;
	c->rx[c->rx_len] = '\0';
	if (c->rx_binary)
		errmsg("ignoring a binary frame");
	else
		on_frame(c, c->rx, c->rx_len);
	c->rx_len = 0;
	return 0;
}

static int
on_writeable(struct cli *c, struct lws *wsi)
{
	struct cmd *cmd;

	if (c->phase >= PHASE_CLOSING) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	cmd = cmdq_pop(&c->outq);
	if (cmd == NULL)
		return 0;
	if (lws_write(wsi, cmd->buf + LWS_PRE, cmd->len, LWS_WRITE_TEXT) < (int)cmd->len) {
		free(cmd);
		errmsg("cannot send to the server");
		set_status(c, EXIT_SERVER);
		c->phase = PHASE_CLOSING;
		return -1;
	}
	cmdq_push(&c->sent, cmd);
	if (c->outq.head != NULL)
		lws_callback_on_writable(wsi);
	update_deadline(c, false);
	return 0;
}

static void
on_established(struct cli *c, struct lws *wsi)
{
	c->wsi = wsi;
	c->established = true;
	send_connect(c);
	update_deadline(c, true);
}

/* A callback about a connection that is no longer ours (an attempt already given up). */
static bool
stale(const struct cli *c, const struct lws *wsi)
{
	return !c->active || (c->wsi != NULL && wsi != c->wsi);
}

static void
on_connection_error(struct cli *c, struct lws *wsi, const char *in)
{
	unsigned int http = wsi != NULL ? lws_http_client_http_response(wsi) : 0;
	char what[512];

	if (c->phase >= PHASE_CLOSING) {
		c->wsi = NULL;
		c->active = false;
		finish(c);
		return;
	}
	if (stale(c, wsi))
		return;
	c->wsi = NULL;
	c->active = false;
	lws_sul_cancel(&c->sul_deadline);
	c->deadline_armed = false;
	if (http != 0)
		snprintf(what, sizeof(what),
			 "cannot connect to %s: the server answered HTTP %u instead of upgrading",
			 c->o.url, http);
	else
		snprintf(what, sizeof(what), "cannot connect to %s: %s%s", c->o.url,
			 in != NULL ? in : "unknown error",
			 c->u.tls && !c->o.insecure && in != NULL && strstr(in, "SSL") != NULL
				 ? " (--insecure accepts a self-signed certificate)"
				 : "");
	if (schedule_reconnect(c, what))
		return;
	errmsg("%s", what);
	set_status(c, EXIT_CONNECT);
	finish(c);
}

static void
on_peer_close(struct cli *c, const unsigned char *in, size_t len)
{
	if (len >= 2) {
		size_t n = len - 2 < sizeof(c->close_reason) - 1 ? len - 2
								 : sizeof(c->close_reason) - 1;

		c->close_code = in[0] << 8 | in[1];
		/* Shown on stderr: control characters become '?'. */
		for (size_t i = 0; i < n; i++)
			c->close_reason[i] =
				in[2 + i] < 0x20 || in[2 + i] == 0x7f ? '?' : (char)in[2 + i];
		c->close_reason[n] = '\0';
	} else {
		c->close_code = LWS_CLOSE_STATUS_NO_STATUS;
	}
}

static void
on_closed(struct cli *c, struct lws *wsi)
{
	char what[512];

	if (c->phase >= PHASE_CLOSING) {
		c->wsi = NULL;
		c->active = false;
		finish(c);
		return;
	}
	if (stale(c, wsi))
		return;
	c->wsi = NULL;
	c->active = false;
	c->established = false;
	lws_sul_cancel(&c->sul_deadline);
	c->deadline_armed = false;
	lws_sul_cancel(&c->sul_refresh);
	if (c->close_code == 4001)
		c->token_expired = true;
	if (c->close_code != 0)
		snprintf(what, sizeof(what), "connection closed by server (%d%s%s)", c->close_code,
			 c->close_reason[0] != '\0' ? " " : "", c->close_reason);
	else
		snprintf(what, sizeof(what), "connection to the server lost");
	if (schedule_reconnect(c, what))
		return;
	if (c->o.mode == MODE_SUB && c->o.reconnect && c->token_expired)
		errmsg("%s; not reconnecting: the token expired (with --token-file, a renewed "
		       "token is sent before expiry)",
		       what);
	else
		errmsg("%s", what);
	set_status(c, EXIT_SERVER);
	finish(c);
}

static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct cli *c = lws_context_user(lws_get_context(wsi));

	(void)user;
	/* A connection given up by on_deadline may still be reported until lws kills it. */
	if ((reason == LWS_CALLBACK_CLIENT_RECEIVE || reason == LWS_CALLBACK_CLIENT_WRITEABLE) &&
	    wsi != c->wsi)
		return -1;
	if (reason == LWS_CALLBACK_CLIENT_ESTABLISHED && stale(c, wsi))
		return -1;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		on_connection_error(c, wsi, in);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		on_established(c, wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return on_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		on_peer_close(c, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		on_closed(c, wsi);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{.name = "switchboard.v1", .callback = ws_callback, .rx_buffer_size = 65536},
	{.name = "sb-stdin", .callback = stdin_callback},
	{.name = "sb-signal", .callback = signal_callback},
	{.name = NULL, .callback = NULL},
};

/* ---- command line ---- */

static void
print_help(void)
{
	printf("usage: " PROG " [OPTIONS] COMMAND ARGS...\n"
	       "\n"
	       "Commands:\n"
	       "  sub CHANNEL...        subscribe; print every message, join, leave and reset\n"
	       "                        frame as one JSON line; reconnect and recover after a\n"
	       "                        drop\n"
	       "  pub CHANNEL JSON      publish JSON as data; print the published reply line\n"
	       "  chat CHANNEL          publish each stdin line as {\"text\":LINE}; print\n"
	       "                        messages as \"user: text\"; exit at end of input (1 if\n"
	       "                        a line was refused)\n"
	       "  ticks CHANNEL         publish a synthetic price feed:\n"
	       "                        {\"symbol\":\"BTC\",\"price\":64000.12,\"ts\":UNIX_MS}\n"
	       "  presence CHANNEL      print the channel's members, one JSON line each, then\n"
	       "                        the presence_stats reply line (clients, users)\n"
	       "  history CHANNEL       print the channel's retained messages, one JSON line\n"
	       "                        each ({\"offset\",\"data\",\"from\"}), oldest first\n"
	       "  token                 print a JWT signed with the server's HMAC secret, for\n"
	       "                        tests (needs no server)\n"
	       "\n"
	       "Options:\n"
	       "  --url URL             server, ws:// or wss:// (default " DEFAULT_URL ")\n"
	       "  --user NAME           name shown to other clients (default: none)\n"
	       "  --token JWT           authenticate with a token, sent in connect (the server\n"
	       "                        takes the user from it); other local users can see it\n"
	       "                        in the process list, so prefer --token-file\n"
	       "  --token-file PATH     read the token from PATH, again a minute before it\n"
	       "                        expires (a new token is sent as refresh) and at each\n"
	       "                        reconnect\n"
	       "  --timeout SECONDS     connect and reply timeout (default 5)\n"
	       "  --insecure            wss: accept a self-signed or mismatched certificate\n"
	       "  --help, -h            show this help\n"
	       "  --version             show the version\n"
	       "sub options:\n"
	       "  --rewind N            on the first subscribe, first print up to N of the\n"
	       "                        channel's retained messages\n"
	       "  --no-reconnect        exit 1 when the connection drops\n"
	       "history options:\n"
	       "  --limit N             only the N newest messages\n"
	       "ticks options:\n"
	       "  --rate N              messages per second, all symbols together (default 10)\n"
	       "  --symbols A,B,...     symbols, each 1-15 of [A-Za-z0-9_.-] (default BTC,ETH)\n"
	       "  --count N             stop after N messages (default: until interrupted)\n"
	       "token options (claims: docs/tokens.md):\n"
	       "  --secret-file FILE    the HMAC secret (auth.jwt.hmac_secret): FILE's content\n"
	       "                        without its final line breaks\n"
	       "  --secret S            the secret itself (visible in the process list); with\n"
	       "                        neither, $SWITCHBOARD_JWT_SECRET\n"
	       "  --sub USER            the user (sub claim; default: --user), required\n"
	       "  --ttl SECONDS         exp = now + SECONDS (default 3600; 0: no exp; negative:\n"
	       "                        already expired)\n"
	       "  --nbf SECONDS         nbf = now + SECONDS: not valid before then\n"
	       "  --info JSON           presence info, a JSON object (info claim)\n"
	       "  --channels P,...      channel patterns the user may subscribe to (channels\n"
	       "                        claim; repeatable)\n"
	       "  --publish P,...       channel patterns the user may publish to (publish claim)\n"
	       "  --channel CHANNEL     a channel token for a private namespace (channel claim)\n"
	       "  --alg ALG             HS256 (default), HS384 or HS512\n"
	       "\n"
	       "Commands subscribe before publishing (the server's default namespace only\n"
	       "lets subscribers publish). SIGINT or SIGTERM closes the connection with 1000;\n"
	       "ticks first waits for the replies to the messages in flight and prints a\n"
	       "summary line.\n"
	       "\n"
	       "When its connection drops after it was accepted (server shutdown, network,\n"
	       "ping timeout, slow consumer...), sub waits (a random time in the upper half\n"
	       "of an interval of 0.5 s, doubling up to 10 s), connects again and\n"
	       "resubscribes each channel with \"recover\" from the last offset it saw: the\n"
	       "missed messages are printed like any other, each once, and stderr tells\n"
	       "whether each channel was recovered. sub does not reconnect after an error\n"
	       "reply (unauthorized, forbidden...), nor after its token expired (close 4001)\n"
	       "without --token-file.\n"
	       "\n"
	       "Exit status:\n"
	       "  0    success (sub, chat and ticks also when ended by SIGINT/SIGTERM)\n"
	       "  1    the server replied with an error, or closed the connection (sub: only\n"
	       "       with --no-reconnect, or when its token expired); chat: a line was not\n"
	       "       sent, refused by the server or here (not UTF-8, frame over 64 KiB),\n"
	       "       however the chat ended\n"
	       "  2    usage error (bad option, channel name, JSON or token; token: no secret)\n"
	       "  3    cannot connect, or no reply within --timeout (sub: only before its\n"
	       "       first connection was accepted)\n"
	       "  130  interrupted before the command was done (e.g. pub before its reply)\n"
	       "Errors, notices and server error replies go to stderr as\n"
	       "\"" PROG ": MESSAGE\".\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n"
	      "Try '" PROG " --help' for more information.\n",
	      stderr);
	return EXIT_USAGE;
}

static int
parse_number(const char *opt, const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
		return usage_error("%s: expected a number from %g to %g, got \"%s\"", opt, min, max,
				   s);
	*out = v;
	return 0;
}

static bool
symbol_char_ok(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

static int64_t
start_price(const char *name)
{
	static const struct {
		const char *name;
		int64_t cents;
	} known[] = {
		{"BTC", 6400000}, {"ETH", 340000}, {"SOL", 15000}, {"AAPL", 19000}, {"EUR", 108},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i].name) == 0)
			return known[i].cents;
	return 10000;
}

static int
parse_symbols(struct cli *c, const char *list)
{
	const char *p = list;

	for (;;) {
		size_t n = strcspn(p, ",");
		struct symbol *s, *grown;

		if (n == 0 || n > SYMBOL_MAX)
			return usage_error(
				"--symbols: each symbol must be 1-%d characters, got \"%s\"",
				SYMBOL_MAX, list);
		for (size_t i = 0; i < n; i++)
			if (!symbol_char_ok(p[i]))
				return usage_error(
					"--symbols: \"%.*s\" is not made of [A-Za-z0-9_.-]", (int)n,
					p);
		grown = realloc(c->sym, (c->nsym + 1) * sizeof(*c->sym));
		if (grown == NULL)
			return usage_error("out of memory");
		c->sym = grown;
		s = &c->sym[c->nsym++];
		memcpy(s->name, p, n);
		s->name[n] = '\0';
		s->cents = start_price(s->name);
		if (p[n] == '\0')
			return 0;
		p += n + 1;
	}
}

static int
check_channel(const char *name)
{
	if (!proto_channel_valid(name, strlen(name)))
		return usage_error("invalid channel name \"%s\" (1-%d bytes of [A-Za-z0-9_:.@=-])",
				   name, PROTO_CHANNEL_MAX);
	return 0;
}

/* pub: the data must be one JSON value that the server will accept as is: jansson
 * with the same strictness (duplicate members and "\u0000" refused). Leading and
 * trailing whitespace is dropped. */
static int
check_json(struct cli *c, const char *text)
{
	json_error_t jerr;
	json_t *v;
	size_t len = strlen(text);

	while (len > 0 && strchr(" \t\r\n", text[len - 1]) != NULL)
		len--;
	while (len > 0 && strchr(" \t\r\n", text[0]) != NULL)
		text++, len--;
	v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL) {
		errmsg("invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
		return EXIT_USAGE;
	}
	json_decref(v);
	c->o.json = text;
	c->o.json_len = len;
	return 0;
}

/* Recognises --name and --name=value; returns the value (NULL for a flag). */
static bool
option_is(const char *arg, const char *name, const char **value)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return false;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return true;
	}
	if (arg[n] == '\0') {
		*value = NULL;
		return true;
	}
	return false;
}

/* Splits a comma-separated list of channel patterns (globs of channel characters, `*`
 * and `?`) onto the array *list, created if need be. An empty value adds nothing. */
static int
add_patterns(const char *opt, const char *v, json_t **list)
{
	const char *p = v;

	if (*list == NULL && (*list = json_array()) == NULL)
		return usage_error("out of memory");
	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		if (n == 0 || n > PROTO_CHANNEL_MAX ||
		    strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			      "_:.@=-*?") < n)
			return usage_error("%s: \"%.*s\" is not a channel pattern (1-%d bytes of "
					   "[A-Za-z0-9_:.@=-*?])",
					   opt, (int)n, p, PROTO_CHANNEL_MAX);
		if (json_array_append_new(*list, json_stringn(p, n)) != 0)
			return usage_error("out of memory");
		p += n;
		if (*p == ',' && *++p == '\0')
			return usage_error("%s: a pattern is missing after the last comma", opt);
	}
	return 0;
}

/* --ttl and --nbf: whole seconds from now, either way. */
static int
parse_seconds(const char *opt, const char *v, int64_t *out)
{
	double num = 0;

	if (parse_number(opt, v, -TTL_MAX, TTL_MAX, &num) != 0)
		return EXIT_USAGE;
	if (num != (double)(int64_t)num)
		return usage_error("%s: expected a whole number of seconds, got \"%s\"", opt, v);
	*out = (int64_t)num;
	return 0;
}

/* Parses an option of the token command (name, with its value v). Returns 0, -1 after a
 * usage error, or 1 when name is not a token option. */
static int
parse_mint_option(struct mint *m, const char *name, const char *v)
{
	json_error_t jerr;

	if (strcmp(name, "--secret") == 0) {
		m->secret = v;
	} else if (strcmp(name, "--secret-file") == 0) {
		m->secret_file = v;
	} else if (strcmp(name, "--sub") == 0) {
		m->sub = v;
	} else if (strcmp(name, "--ttl") == 0) {
		return parse_seconds(name, v, &m->ttl) != 0 ? -1 : 0;
	} else if (strcmp(name, "--nbf") == 0) {
		m->nbf_set = true;
		return parse_seconds(name, v, &m->nbf) != 0 ? -1 : 0;
	} else if (strcmp(name, "--info") == 0) {
		json_decref(m->info);
		m->info = json_loads(v, JSON_REJECT_DUPLICATES, &jerr);
		if (m->info == NULL) {
			usage_error("--info: invalid JSON: %s", jerr.text);
			return -1;
		}
	} else if (strcmp(name, "--channels") == 0) {
		return add_patterns(name, v, &m->channels) != 0 ? -1 : 0;
	} else if (strcmp(name, "--publish") == 0) {
		return add_patterns(name, v, &m->publish) != 0 ? -1 : 0;
	} else if (strcmp(name, "--channel") == 0) {
		if (check_channel(v) != 0)
			return -1;
		m->channel = v;
	} else if (strcmp(name, "--alg") == 0) {
		m->alg = v;
	} else {
		return 1;
	}
	return 0;
}

struct argv_state {
	int argc, i;
	char **argv;
	bool rate_set, symbols_set, count_set, rewind_set, limit_set, no_reconnect_set;
	bool mint_set;	   /* an option of the token command */
	const char *token; /* --token */
};

/* The value of an option: after '=' or in the next argument. */
static const char *
option_value(struct argv_state *a, const char *name, const char *inline_value)
{
	if (inline_value != NULL)
		return inline_value;
	if (a->i + 1 >= a->argc) {
		usage_error("option %s needs a value", name);
		return NULL;
	}
	return a->argv[++a->i];
}

/* Parses one option at a->argv[a->i]. Returns 0, EXIT_USAGE, or -1 when --help or
 * --version was handled (exit 0). */
static int
parse_option(struct cli *c, struct argv_state *a)
{
	static const char *const with_value[] = {
		"--url",    "--user",	     "--timeout",    "--rate",	  "--symbols",
		"--count",  "--token",	     "--token-file", "--rewind",  "--limit",
		"--secret", "--secret-file", "--sub",	     "--ttl",	  "--nbf",
		"--info",   "--channels",    "--publish",    "--channel", "--alg",
	};
	const char *arg = a->argv[a->i], *v = NULL;
	double num = 0;
	int rc;

	if (option_is(arg, "--help", &v) && v == NULL) {
		print_help();
		return -1;
	}
	if (option_is(arg, "--version", &v) && v == NULL) {
		printf(PROG " " SWITCHBOARD_VERSION
			    " (protocol v1, libwebsockets %s, jansson %s)\n",
		       lws_get_library_version(), JANSSON_VERSION);
		return -1;
	}
	if (option_is(arg, "--insecure", &v) && v == NULL) {
		c->o.insecure = true;
		return 0;
	}
	if (option_is(arg, "--no-reconnect", &v) && v == NULL) {
		c->o.reconnect = false;
		a->no_reconnect_set = true;
		return 0;
	}
	for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++) {
		const char *name = with_value[k];

		if (!option_is(arg, name, &v))
			continue;
		v = option_value(a, name, v);
		if (v == NULL)
			return EXIT_USAGE;
		rc = parse_mint_option(&c->o.mint, name, v);
		if (rc <= 0) {
			a->mint_set = true;
			return rc == 0 ? 0 : EXIT_USAGE;
		}
		if (strcmp(name, "--url") == 0) {
			c->o.url = v;
		} else if (strcmp(name, "--user") == 0) {
			json_t *s = json_string(v);
			bool ok = s != NULL && strlen(v) <= PROTO_USER_MAX;

			json_decref(s);
			if (!ok)
				return usage_error(
					"--user: expected valid UTF-8 of at most %d bytes",
					PROTO_USER_MAX);
			c->o.user = v;
		} else if (strcmp(name, "--timeout") == 0) {
			if (parse_number(name, v, 0.001, 86400, &c->o.timeout) != 0)
				return EXIT_USAGE;
		} else if (strcmp(name, "--rate") == 0) {
			if (parse_number(name, v, 0.001, 100000, &c->o.rate) != 0)
				return EXIT_USAGE;
			a->rate_set = true;
		} else if (strcmp(name, "--symbols") == 0) {
			c->o.symbols = v;
			a->symbols_set = true;
		} else if (strcmp(name, "--token") == 0) {
			const char *problem = token_problem(v);

			if (problem != NULL)
				return usage_error("--token: %s", problem);
			a->token = v;
		} else if (strcmp(name, "--token-file") == 0) {
			c->o.token_file = v;
		} else if (strcmp(name, "--rewind") == 0 || strcmp(name, "--limit") == 0) {
			if (parse_number(name, v, 1, COUNT_MAX, &num) != 0)
				return EXIT_USAGE;
			if (num != (double)(uint64_t)num)
				return usage_error("%s: expected a whole number, got \"%s\"", name,
						   v);
			if (name[2] == 'r') {
				c->o.rewind = (uint64_t)num;
				a->rewind_set = true;
			} else {
				c->o.limit = (uint64_t)num;
				a->limit_set = true;
			}
		} else {
			if (parse_number(name, v, 1, 1e15, &num) != 0)
				return EXIT_USAGE;
			if (num != (double)(uint64_t)num)
				return usage_error("--count: expected a whole number, got \"%s\"",
						   v);
			c->o.count = (uint64_t)num;
			a->count_set = true;
		}
		return 0;
	}
	return usage_error("unknown option \"%s\"", arg);
}

/* Splits ws[s]://host[:port][/path] into c->u. */
static int
parse_url(struct cli *c)
{
	struct url *u = &c->u;
	char *p, *host, *slash, *colon;
	const char *scheme_end;
	long port;

	if (strncmp(c->o.url, "ws://", 5) == 0) {
		scheme_end = c->o.url + 5;
	} else if (strncmp(c->o.url, "wss://", 6) == 0) {
		scheme_end = c->o.url + 6;
		u->tls = true;
	} else {
		return usage_error(
			"--url: expected ws://HOST[:PORT][/PATH] or wss://..., got \"%s\"",
			c->o.url);
	}
	u->buf = malloc(strlen(scheme_end) + 3);
	if (u->buf == NULL)
		return usage_error("out of memory");
	/* buf holds "host[:port]\0/path": the path gets its own copy of the slash. */
	strcpy(u->buf, scheme_end);
	slash = strpbrk(u->buf, "/?");
	if (slash != NULL) {
		memmove(slash + 1, slash, strlen(slash) + 1);
		*slash++ = '\0';
		if (*slash == '?') {
			memmove(slash + 1, slash, strlen(slash) + 1);
			*slash = '/';
		}
		u->path = slash;
	} else {
		u->path = "/";
	}
	host = u->buf;
	if (strchr(host, '@') != NULL)
		return usage_error("--url: user information is not supported");
	if (host[0] == '[') {
		p = strchr(host, ']');
		if (p == NULL)
			return usage_error("--url: unterminated IPv6 address");
		*p++ = '\0';
		u->address = host + 1;
		colon = *p == ':' ? p : NULL;
		if (*p != '\0' && colon == NULL)
			return usage_error("--url: bad host \"%s\"", c->o.url);
	} else {
		colon = strchr(host, ':');
		u->address = host;
	}
	u->port = u->tls ? 443 : 80;
	if (colon != NULL) {
		char *end;

		*colon = '\0';
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
			return usage_error("--url: bad port in \"%s\"", c->o.url);
		u->port = (int)port;
	}
	if (u->address[0] == '\0')
		return usage_error("--url: missing host in \"%s\"", c->o.url);
	snprintf(u->host, sizeof(u->host), strchr(u->address, ':') ? "[%s]" : "%s", u->address);
	if (u->port != (u->tls ? 443 : 80))
		snprintf(u->host + strlen(u->host), sizeof(u->host) - strlen(u->host), ":%d",
			 u->port);
	return 0;
}

/* The token connect sends: --token, or the content of --token-file. */
static int
parse_token(struct cli *c, const struct argv_state *a)
{
	char why[300];

	if (a->token != NULL && c->o.token_file != NULL)
		return usage_error("--token and --token-file are mutually exclusive");
	if (a->token != NULL) {
		c->token = strdup(a->token);
		if (c->token == NULL)
			return usage_error("out of memory");
	} else if (c->o.token_file != NULL) {
		c->token = read_token_file(c->o.token_file, why, sizeof(why));
		if (c->token == NULL)
			return usage_error("--token-file: %s", why);
	}
	return 0;
}

/* The channels a command subscribes to (presence and history subscribe to none). */
static int
setup_channels(struct cli *c)
{
	if (c->o.mode == MODE_PRESENCE || c->o.mode == MODE_HISTORY || c->o.mode == MODE_TOKEN)
		return 0;
	c->ch = calloc(c->o.nchannels, sizeof(*c->ch));
	if (c->ch == NULL)
		return usage_error("out of memory");
	c->nch = c->o.nchannels;
	for (size_t i = 0; i < c->nch; i++)
		c->ch[i].name = c->o.channels[i];
	return 0;
}

/* token: the claims must make a token the server can accept (docs/tokens.md). */
static int
check_mint(struct cli *c, const struct argv_state *a)
{
	struct mint *m = &c->o.mint;
	static const struct {
		const char *alg;
		const EVP_MD *(*md)(void);
	} algs[] = {{"HS256", EVP_sha256}, {"HS384", EVP_sha384}, {"HS512", EVP_sha512}};
	json_t *sub;
	char *info;
	bool ok;

	if (a->token != NULL || c->o.token_file != NULL)
		return usage_error("token: --token and --token-file do not apply (--secret does)");
	if (m->secret != NULL && m->secret_file != NULL)
		return usage_error("--secret and --secret-file are mutually exclusive");
	if (m->sub == NULL)
		m->sub = c->o.user;
	if (m->sub == NULL)
		return usage_error("token: --sub USER is required (the token's user)");
	sub = json_string(m->sub);
	ok = sub != NULL && m->sub[0] != '\0' && strlen(m->sub) <= PROTO_USER_MAX;
	json_decref(sub);
	if (!ok)
		return usage_error("--sub: expected 1-%d bytes of UTF-8", PROTO_USER_MAX);
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]) && m->md == NULL; i++)
		if (strcmp(m->alg != NULL ? m->alg : "HS256", algs[i].alg) == 0) {
			m->alg = algs[i].alg;
			m->md = algs[i].md;
		}
	if (m->md == NULL)
		return usage_error("--alg: expected HS256, HS384 or HS512, got \"%s\"", m->alg);
	if (m->info != NULL) {
		/* The server measures info as jansson writes it compactly. */
		info = json_is_object(m->info) ? json_dumps(m->info, JSON_COMPACT) : NULL;
		ok = info != NULL && strlen(info) <= PROTO_INFO_MAX;
		free(info);
		if (!ok)
			return usage_error("--info: expected a JSON object of at most %d bytes",
					   PROTO_INFO_MAX);
	}
	if (m->channel != NULL && m->ttl == 0)
		return usage_error("--channel: a channel token needs an exp (--ttl other than 0)");
	return 0;
}

static int
parse_command(struct cli *c, char **pos, size_t npos, const struct argv_state *a)
{
	const char *cmd = pos[0];
	size_t nargs = npos - 1;
	int rc;

	if (strcmp(cmd, "sub") == 0)
		c->o.mode = MODE_SUB;
	else if (strcmp(cmd, "pub") == 0)
		c->o.mode = MODE_PUB;
	else if (strcmp(cmd, "chat") == 0)
		c->o.mode = MODE_CHAT;
	else if (strcmp(cmd, "ticks") == 0)
		c->o.mode = MODE_TICKS;
	else if (strcmp(cmd, "presence") == 0)
		c->o.mode = MODE_PRESENCE;
	else if (strcmp(cmd, "history") == 0)
		c->o.mode = MODE_HISTORY;
	else if (strcmp(cmd, "token") == 0)
		c->o.mode = MODE_TOKEN;
	else
		return usage_error("unknown command \"%s\"", cmd);

	if (c->o.mode == MODE_TOKEN)
		return nargs == 0 ? check_mint(c, a) : usage_error("token: takes options only");
	if (a->mint_set)
		return usage_error(
			"--secret, --secret-file, --sub, --ttl, --nbf, --info, "
			"--channels, --publish, --channel and --alg only apply to token");

	if (c->o.mode != MODE_TICKS && (a->rate_set || a->symbols_set || a->count_set))
		return usage_error("--rate, --symbols and --count only apply to ticks");
	if (c->o.mode != MODE_SUB && (a->rewind_set || a->no_reconnect_set))
		return usage_error("--rewind and --no-reconnect only apply to sub");
	if (c->o.mode != MODE_HISTORY && a->limit_set)
		return usage_error("--limit only applies to history");
	if (c->o.mode == MODE_SUB && nargs == 0)
		return usage_error("sub: expected CHANNEL...");
	if (c->o.mode == MODE_PUB && nargs != 2)
		return usage_error("pub: expected CHANNEL JSON");
	if (c->o.mode != MODE_SUB && c->o.mode != MODE_PUB && nargs != 1)
		return usage_error("%s: expected CHANNEL", cmd);

	/* The channel list, without duplicates (a second subscribe would be refused). */
	c->o.channels = pos + 1;
	c->o.nchannels = 0;
	for (size_t i = 1; i < (c->o.mode == MODE_SUB ? npos : 2); i++) {
		bool dup = false;

		if ((rc = check_channel(pos[i])) != 0)
			return rc;
		for (size_t k = 0; k < c->o.nchannels; k++)
			dup = dup || strcmp(c->o.channels[k], pos[i]) == 0;
		if (!dup)
			c->o.channels[c->o.nchannels++] = pos[i];
	}
	if (c->o.mode == MODE_PUB && (rc = check_json(c, pos[2])) != 0)
		return rc;
	if (c->o.mode == MODE_TICKS && (rc = parse_symbols(c, c->o.symbols)) != 0)
		return rc;
	return parse_token(c, a);
}

/* Returns 0 to run, -1 after --help/--version, or an exit code. */
static int
parse_args(struct cli *c, int argc, char **argv)
{
	struct argv_state a = {.argc = argc, .argv = argv};
	char **pos;
	size_t npos = 0;
	bool options_done = false;
	int rc;

	c->o = (struct opts){
		.url = DEFAULT_URL,
		.timeout = 5,
		.rate = 10,
		.symbols = "BTC,ETH",
		.reconnect = true,
		.mint = {.ttl = 3600},
	};
	/* pos[] reuses argv's pointer array: positional arguments only move down. */
	pos = argv + 1;
	for (a.i = 1; a.i < argc; a.i++) {
		const char *arg = argv[a.i];

		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (!options_done && strcmp(arg, "-h") == 0) {
			print_help();
			return -1;
		} else if (!options_done && strncmp(arg, "--", 2) == 0) {
			rc = parse_option(c, &a);
			if (rc != 0)
				return rc;
		} else {
			pos[npos++] = argv[a.i];
		}
	}
	if (npos == 0)
		return usage_error(
			"missing command (sub, pub, chat, ticks, presence, history or token)");
	rc = parse_command(c, pos, npos, &a);
	if (rc == 0)
		rc = setup_channels(c);
	if (rc != 0)
		return rc;
	return parse_url(c);
}

/* ---- token: mint an HS* JWT for tests (docs/tokens.md) ---- */

/* Writes the base64url form of n bytes, without padding, and a NUL at out, which holds
 * 4 * (n / 3 + 1) + 1 bytes. Returns the length written. */
static size_t
b64url(char *out, const unsigned char *p, size_t n)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = abc[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = abc[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* The HMAC key: --secret, the content of --secret-file without its final line breaks
 * (as the server reads {"file": ...}), or $SWITCHBOARD_JWT_SECRET. Returns a malloc'd
 * copy (*len bytes), or NULL after a message. */
static char *
mint_secret(const struct mint *m, size_t *len)
{
	const char *env = getenv("SWITCHBOARD_JWT_SECRET");
	char why[300], *key;

	if (m->secret_file != NULL) {
		key = read_small_file(m->secret_file, SECRET_FILE_MAX, "a secret", len, why,
				      sizeof(why));
		if (key == NULL) {
			errmsg("--secret-file: %s", why);
			return NULL;
		}
		while (*len > 0 && (key[*len - 1] == '\n' || key[*len - 1] == '\r'))
			key[--*len] = '\0';
		if (strlen(key) != *len) {
			/* The server refuses such a file too: its secret is a C string. */
			errmsg("--secret-file: %s holds a NUL byte", m->secret_file);
			free(key);
			return NULL;
		}
	} else if (m->secret != NULL || env != NULL) {
		key = strdup(m->secret != NULL ? m->secret : env);
		if (key == NULL) {
			errmsg("out of memory");
			return NULL;
		}
		*len = strlen(key);
	} else {
		errmsg("token: no secret: give --secret-file FILE, --secret S or "
		       "SWITCHBOARD_JWT_SECRET (auth.jwt.hmac_secret of the server)");
		return NULL;
	}
	if (*len == 0 || *len > INT32_MAX) {
		errmsg("token: the secret is %s", *len == 0 ? "empty" : "too long");
		free(key);
		return NULL;
	}
	return key;
}

/* The claims: sub and iat, then those the options ask for. NULL when out of memory. */
static json_t *
mint_claims(const struct mint *m, int64_t now)
{
	json_t *o = json_pack("{s:s, s:I}", "sub", m->sub, "iat", (json_int_t)now);

	if (m->nbf_set)
		add_member(&o, "nbf", json_integer((json_int_t)(now + m->nbf)));
	if (m->ttl != 0)
		add_member(&o, "exp", json_integer((json_int_t)(now + m->ttl)));
	if (m->info != NULL)
		add_member(&o, "info", json_incref(m->info));
	if (m->channels != NULL)
		add_member(&o, "channels", json_incref(m->channels));
	if (m->publish != NULL)
		add_member(&o, "publish", json_incref(m->publish));
	if (m->channel != NULL)
		add_member(&o, "channel", json_string(m->channel));
	return o;
}

/* Prints the token: BASE64URL(header).BASE64URL(claims).BASE64URL(HMAC of the two). */
static int
mint_token(struct cli *c)
{
	const struct mint *m = &c->o.mint;
	json_t *header = json_pack("{s:s, s:s}", "alg", m->alg, "typ", "JWT");
	json_t *claims = mint_claims(m, (int64_t)time(NULL));
	char *h = header != NULL ? json_dumps(header, JSON_COMPACT) : NULL;
	char *p = claims != NULL ? json_dumps(claims, JSON_COMPACT) : NULL;
	size_t key_len = 0, hl = h != NULL ? strlen(h) : 0, pl = p != NULL ? strlen(p) : 0, n;
	char *key = NULL, *tok = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	int rc = EXIT_USAGE;

	json_decref(header);
	json_decref(claims);
	if (h == NULL || p == NULL ||
	    (tok = malloc(4 * (hl / 3 + pl / 3 + EVP_MAX_MD_SIZE / 3 + 3) + 3)) == NULL) {
		errmsg("out of memory");
		rc = EXIT_SERVER;
		goto out;
	}
	key = mint_secret(m, &key_len);
	if (key == NULL)
		goto out;
	n = b64url(tok, (const unsigned char *)h, hl);
	tok[n++] = '.';
	n += b64url(tok + n, (const unsigned char *)p, pl);
	if (HMAC(m->md(), key, (int)key_len, (const unsigned char *)tok, n, mac, &mac_len) ==
	    NULL) {
		errmsg("token: HMAC failed");
		rc = EXIT_SERVER;
		goto out;
	}
	tok[n++] = '.';
	n += b64url(tok + n, mac, mac_len);
	if (n > TOKEN_MAX) {
		errmsg("token: the token would be %zu bytes; the server accepts at most %d", n,
		       TOKEN_MAX);
		goto out;
	}
	printf("%s\n", tok);
	rc = fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_SERVER;
	if (rc != EXIT_OK)
		errmsg("cannot write to stdout: %s", strerror(errno));
out:
	if (key != NULL)
		OPENSSL_cleanse(key, key_len);
	free(key);
	free(tok);
	free(h);
	free(p);
	return rc;
}

/* ---- main ---- */

/* A closed stdin, stdout or stderr would be reused by the next open(): lws's random
 * source or the socket would then pass for stdin. Park /dev/null there instead. */
static void
reserve_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int nfd;

		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (nfd >= 0 && nfd != fd) {
			dup2(nfd, fd);
			close(nfd);
		}
	}
}

/* SIGINT and SIGTERM become readable events on a signalfd in the lws loop. */
static int
adopt_signals(struct cli *c)
{
	lws_sock_file_fd_type fd;
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -errno;
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		return -errno;
	fd.filefd = sfd;
	if (lws_adopt_descriptor_vhost(lws_get_vhost_by_name(c->ctx, "default"),
				       LWS_ADOPT_RAW_FILE_DESC, fd, "sb-signal", NULL) == NULL) {
		close(sfd);
		return -EIO;
	}
	return 0;
}

static void
lws_log(int level, const char *line)
{
	(void)level;
	if (strstr(line, "got bad HTTP response") != NULL)
		return; /* on_connection_error() reports the status */
	fflush(stdout);
	fprintf(stderr, PROG ": lws: %s", line);
}

static int
run(struct cli *c)
{
	struct lws_context_creation_info info = {
		.port = CONTEXT_PORT_NO_LISTEN,
		.protocols = protocols,
		.user = c,
		.gid = -1,
		.uid = -1,
		.options = c->u.tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0,
		.fd_limit_per_thread = 16,
		.timeout_secs = (unsigned)c->o.timeout + 1,
		.connect_timeout_secs = (unsigned)c->o.timeout + 1,
	};
	/* sub: a server that vanished without closing (network down) would otherwise keep
	 * sub waiting forever; lws pings when nothing proved the connection alive. */
	static const lws_retry_bo_t keepalive = {
		.secs_since_valid_ping = KEEPALIVE_S,
		.secs_since_valid_hangup = 2 * KEEPALIVE_S,
	};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	int rc;

	sigaction(SIGPIPE, &ign, NULL);
	c->next_id = 1;
	c->rng = (uint64_t)unix_ms() * 2654435761u ^ (uint64_t)getpid() << 32 ^
		 0x9e3779b97f4a7c15ull;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	c->ctx = lws_create_context(&info);
	if (c->ctx == NULL) {
		errmsg("cannot create the libwebsockets context");
		return EXIT_CONNECT;
	}
	rc = adopt_signals(c);
	if (rc != 0)
		errmsg("cannot watch SIGINT/SIGTERM: %s", strerror(-rc));

	c->ci = (struct lws_client_connect_info){
		.context = c->ctx,
		.address = c->u.address,
		.port = c->u.port,
		.path = c->u.path,
		.host = c->u.host,
		.protocol = "switchboard.v1",
		.local_protocol_name = "switchboard.v1",
		.alpn = "http/1.1",
		.pwsi = &c->wsi,
		.retry_and_idle_policy = c->o.mode == MODE_SUB ? &keepalive : NULL,
	};
	if (c->u.tls) {
		c->ci.ssl_connection = LCCSCF_USE_SSL;
		if (c->o.insecure)
			c->ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
						LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
						LCCSCF_ALLOW_EXPIRED;
	}
	connect_now(c);
	while (!c->done)
		if (lws_service(c->ctx, 0) < 0)
			break;
	lws_context_destroy(c->ctx);
	c->ctx = NULL;
	if (c->stdin_flags != -1)
		fcntl(STDIN_FILENO, F_SETFL, c->stdin_flags);
	if (c->o.mode == MODE_TICKS && c->started_us != 0)
		print_ticks_summary(c);
	return c->status;
}

int
main(int argc, char **argv)
{
	struct cli c = {.status = EXIT_OK, .stdin_flags = -1};
	int rc;

	reserve_std_fds();
	rc = parse_args(&c, argc, argv);
	if (rc == 0)
		rc = c.o.mode == MODE_TOKEN ? mint_token(&c) : run(&c);
	else if (rc < 0)
		rc = EXIT_OK;
	cmdq_clear(&c.outq);
	cmdq_clear(&c.sent);
	free(c.token);
	free(c.refresh_token);
	free(c.refused_token);
	free(c.ch);
	free(c.rx);
	free(c.line);
	free(c.sym);
	free(c.u.buf);
	json_decref(c.o.mint.info);
	json_decref(c.o.mint.channels);
	json_decref(c.o.mint.publish);
	return rc;
}
