/* cli.h: switchboard-cli, the reference command-line client, on top of the client
 * library (client-demo/lib/switchboard_client.h).
 *
 * main.c runs one sbc_client and turns what it reports into lines on stdout and
 * stderr and an exit status; args.c parses the command line; each command is one
 * cmd_*.c file with a struct cli_command of hooks called by main.c. All state lives in
 * struct cli, which the library hands back as its callbacks' arg. `token` never
 * connects (cmd_token.c).
 */
#ifndef SWITCHBOARD_CLI_H
#define SWITCHBOARD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/evp.h>

#include "switchboard_client.h"

#define PROG "switchboard-cli"
#define DEFAULT_URL "ws://127.0.0.1:8080/ws"

/* Exit codes, documented in --help. */
#define EXIT_OK 0
#define EXIT_SERVER 1 /* error reply, the server closed the connection, chat refused a line */
#define EXIT_USAGE 2
#define EXIT_CONNECT 3	     /* cannot connect, or no reply within --timeout */
#define EXIT_INTERRUPTED 130 /* SIGINT/SIGTERM before the command's work was done */

#define WINDOW 32 /* publishes queued or awaiting their reply */
#define SYMBOL_MAX 15
#define USEC_PER_SEC 1000000.0
#define TOKEN_MAX 8192	       /* bytes in a token (docs/protocol.md) */
#define COUNT_MAX 1000000000.0 /* --rewind, --limit */
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
	size_t nsubscribe; /* channels to subscribe (presence and history: none) */
	const char *json;  /* pub: the data text, trimmed and validated */
	size_t json_len;
	double rate; /* ticks: messages per second, all symbols together */
	const char *symbols;
	uint64_t count;	 /* ticks: 0 means unlimited */
	uint64_t rewind; /* sub: 0 means none */
	uint64_t limit;	 /* history: 0 means all retained */
	struct mint mint;
};

struct cli;

/* What a command does on the events main.c dispatches; NULL hooks do nothing. */
struct cli_command {
	const char *name;
	enum mode mode;
	bool endless;		      /* runs until interrupted: SIGINT once running is success */
	void (*ready)(struct cli *c); /* every channel subscribed, the first time */
	void (*reply)(struct cli *c, const struct sbc_reply *r); /* success, ours */
	void (*message)(struct cli *c, const struct sbc_message *m);
	void (*presence)(struct cli *c, const struct sbc_presence *p);
	void (*reset)(struct cli *c, const struct sbc_reset *r);
	/* A publish was refused; returns true when the command goes on. */
	bool (*refused)(struct cli *c, const struct sbc_reply *r);
	/* SIGINT/SIGTERM; returns true when the command handled it. */
	bool (*interrupt)(struct cli *c);
	void (*closing)(struct cli *c); /* the run is ending: stop producing */
	void (*done)(struct cli *c);	/* after the loop (the ticks summary) */
};

extern const struct cli_command cmd_sub, cmd_pub, cmd_chat, cmd_ticks, cmd_presence, cmd_history,
	cmd_token;

struct cli {
	struct opts o;
	const struct cli_command *cmd;
	struct sbc_client *sbc;
	int status; /* exit code; the first failure wins */
	bool interrupted;
	bool closing;	   /* the run is ending (our close, or the library's) */
	bool reported;	   /* the failure that ends the run was printed */
	bool ever_running; /* every channel was subscribed at least once */
	bool draining;	   /* chat/ticks: finish what is in flight, then close */
	bool tls;
	char *token; /* owned: the token of the first connect, or NULL */

	/* Publishing. */
	size_t inflight; /* publishes queued or awaiting their reply */
	uint64_t npublished, nacked, nerrors;
	uint64_t last_pub_offset;	 /* chat: offset of our newest acknowledged publish */
	uint64_t seen_offset;		 /* chat: highest message offset received */
	lws_sorted_usec_list_t sul_echo; /* chat: --timeout for the echo of our last line */
	bool echo_armed;

	/* chat: stdin, split into lines. */
	struct lws *stdin_wsi;
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
	lws_sorted_usec_list_t sul_tick;
};

/* main.c */
void set_status(struct cli *c, int status);
/* Ends the run with status: the connection is closed with 1000. */
void cli_close(struct cli *c, int status);
/* Every channel subscribed and the run not ending. */
bool cli_running(const struct cli *c);
/* chat/ticks: once draining, closes when nothing is left in flight. */
void check_drained(struct cli *c);
/* chat: keeps --timeout armed while the echo of our last line is awaited. */
void update_echo_deadline(struct cli *c, bool progress);
void out_of_memory(struct cli *c);
double mono_us(void);
int64_t unix_ms(void);
double rng_unit(struct cli *c);

/* output.c */
void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void put_safe(FILE *f, const char *s, size_t n);
void end_line(struct cli *c);
void print_json_line(struct cli *c, const char *s, size_t n);
/* Prints each element of the reply's array member as one line, as the server wrote
 * it; a reply without one ends the run (1). */
void print_elements(struct cli *c, const struct sbc_reply *r, const char *member);
void print_error_frame(const char *buf, size_t len);
const char *token_problem(const char *t);
char *read_small_file(const char *path, size_t max, const char *what, size_t *len, char *why,
		      size_t why_len);
char *read_token_file(const char *path, char *why, size_t why_len);

/* args.c: 0 to run, -1 after --help/--version, or an exit code. */
int parse_args(struct cli *c, int argc, char **argv);
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int parse_number(const char *opt, const char *s, double min, double max, double *out);
int check_channel(const char *name);

/* cmd_token.c */
/* An option of the token command: 0, -1 after a usage error, 1 when name is not one. */
int parse_mint_option(struct mint *m, const char *name, const char *v);
/* The claims must make a token the server can accept; token_given: --token/--token-file. */
int check_mint(struct cli *c, bool token_given);
int mint_token(struct cli *c);

/* cmd_chat.c, cmd_ticks.c */
int chat_stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len);
void chat_fini(struct cli *c);
int parse_symbols(struct cli *c, const char *list);

#endif
