/* args.c: the command line of switchboard-cli (options, command, channels) and its
 * --help text. Usage errors print one line and the --help hint and give exit code 2.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "proto.h"

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

int
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

int
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
		{ "BTC", 6400000 }, { "ETH", 340000 }, { "SOL", 15000 },
		{ "AAPL", 19000 },  { "EUR", 108 },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i].name) == 0)
			return known[i].cents;
	return 10000;
}

int
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

int
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
		return nargs == 0 ? check_mint(c, a->token != NULL || c->o.token_file != NULL)
				  : usage_error("token: takes options only");
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
int
parse_args(struct cli *c, int argc, char **argv)
{
	struct argv_state a = { .argc = argc, .argv = argv };
	char **pos;
	size_t npos = 0;
	bool options_done = false;
	char why[300];
	int rc;

	c->o = (struct opts){
		.url = DEFAULT_URL,
		.timeout = 5,
		.rate = 10,
		.symbols = "BTC,ETH",
		.reconnect = true,
		.mint = { .ttl = 3600 },
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
	if (rc != 0)
		return rc;
	/* presence and history subscribe to nothing. */
	if (c->o.mode != MODE_PRESENCE && c->o.mode != MODE_HISTORY && c->o.mode != MODE_TOKEN)
		c->o.nsubscribe = c->o.nchannels;
	c->tls = strncmp(c->o.url, "wss://", 6) == 0;
	if (sbc_url_check(c->o.url, why, sizeof(why)) != 0)
		return usage_error("--url: %s", why);
	return 0;
}
