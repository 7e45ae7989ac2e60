/* main.c: switchboard-cli's run: one sbc_client (client-demo/lib) whose callbacks are
 * turned into lines on stdout and stderr and an exit status, and dispatched to the
 * command's hooks (cmd_*.c). SIGINT/SIGTERM arrive through a signalfd adopted into the
 * client's lws loop, and chat's stdin the same way, so nothing needs a global.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const struct cli_command *const commands[] = {
	[MODE_SUB] = &cmd_sub,	   [MODE_PUB] = &cmd_pub,	    [MODE_CHAT] = &cmd_chat,
	[MODE_TICKS] = &cmd_ticks, [MODE_PRESENCE] = &cmd_presence, [MODE_HISTORY] = &cmd_history,
	[MODE_TOKEN] = &cmd_token,
};

void
set_status(struct cli *c, int status)
{
	if (c->status == EXIT_OK)
		c->status = status;
}

double
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * USEC_PER_SEC + (double)ts.tv_nsec / 1000.0;
}

int64_t
unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: good enough for a synthetic price feed. */
double
rng_unit(struct cli *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (double)((c->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

void
out_of_memory(struct cli *c)
{
	errmsg("out of memory");
	cli_close(c, EXIT_SERVER);
}

bool
cli_running(const struct cli *c)
{
	return !c->closing && c->sbc != NULL && sbc_state(c->sbc) == SBC_STATE_READY;
}

/* The run is ending: the command stops producing, no deadline of ours is left. */
static void
stop_producing(struct cli *c)
{
	if (c->sbc != NULL)
		lws_sul_cancel(&c->sul_echo);
	c->echo_armed = false;
	if (c->cmd->closing != NULL)
		c->cmd->closing(c);
}

void
cli_close(struct cli *c, int status)
{
	set_status(c, status);
	if (c->closing)
		return;
	c->closing = true;
	stop_producing(c);
	if (c->sbc != NULL)
		sbc_close(c->sbc);
}

void
check_drained(struct cli *c)
{
	if (!c->draining || !cli_running(c))
		return;
	if (sbc_pending(c->sbc) != 0)
		return;
	if (c->o.mode == MODE_CHAT && c->seen_offset < c->last_pub_offset)
		return;
	cli_close(c, c->nerrors != 0 ? EXIT_SERVER : EXIT_OK);
}

/* chat at the end of input: every reply came, the echo of the last line has not. */
static bool
waiting_for_echo(const struct cli *c)
{
	return c->o.mode == MODE_CHAT && c->draining && !c->closing &&
	       c->seen_offset < c->last_pub_offset && sbc_pending(c->sbc) == 0;
}

static void
on_echo_deadline(lws_sorted_usec_list_t *sul)
{
	struct cli *c = lws_container_of(sul, struct cli, sul_echo);

	c->echo_armed = false;
	if (!waiting_for_echo(c))
		return;
	errmsg("timed out after %g s waiting for the echo of the last message", c->o.timeout);
	cli_close(c, EXIT_CONNECT);
}

/* `progress` (something arrived) restarts the deadline; otherwise an armed one runs. */
void
update_echo_deadline(struct cli *c, bool progress)
{
	if (!waiting_for_echo(c)) {
		lws_sul_cancel(&c->sul_echo);
		c->echo_armed = false;
		return;
	}
	if (c->echo_armed && !progress)
		return;
	lws_sul_schedule(sbc_context(c->sbc), 0, &c->sul_echo, on_echo_deadline,
			 (lws_usec_t)(c->o.timeout * USEC_PER_SEC));
	c->echo_armed = true;
}

/* ---- what the library reports ---- */

static const char *
ssl_hint(const struct cli *c, const struct sbc_status *st)
{
	if (st->cause == SBC_CAUSE_CONNECT && c->tls && !c->o.insecure &&
	    strstr(st->detail, "SSL") != NULL)
		return " (--insecure accepts a self-signed certificate)";
	return "";
}

/* The failure that ends the run, once: on stderr, and as the exit status. */
static void
report_end(struct cli *c, const struct sbc_status *st)
{
	int status = EXIT_SERVER;

	if (c->reported || st->cause == SBC_CAUSE_NONE || st->cause == SBC_CAUSE_LOCAL)
		return;
	c->reported = true;
	if (st->cause == SBC_CAUSE_REFUSED) {
		set_status(c, EXIT_SERVER); /* the error reply is printed already */
		return;
	}
	if (st->cause == SBC_CAUSE_TIMEOUT || st->cause == SBC_CAUSE_CONNECT ||
	    st->cause == SBC_CAUSE_HTTP)
		status = EXIT_CONNECT;
	if ((st->cause == SBC_CAUSE_CLOSED || st->cause == SBC_CAUSE_LOST) &&
	    c->o.mode == MODE_SUB && c->o.reconnect && st->token_expired)
		errmsg("%s; not reconnecting: the token expired (with --token-file, a renewed "
		       "token is sent before expiry)",
		       st->text);
	else
		errmsg("%s%s", st->text, ssl_hint(c, st));
	set_status(c, status);
}

static void
on_state(struct sbc_client *s, const struct sbc_status *st, void *arg)
{
	struct cli *c = arg;

	(void)s;
	switch (st->state) {
	case SBC_STATE_READY:
		if (c->closing || c->ever_running)
			return;
		c->ever_running = true;
		if (c->cmd->ready != NULL)
			c->cmd->ready(c);
		return;
	case SBC_STATE_RETRY_WAIT:
		errmsg("%s%s; reconnecting in %.1f s", st->text, ssl_hint(c, st),
		       st->delay_ms / 1000.0);
		return;
	case SBC_STATE_CLOSING:
	case SBC_STATE_CLOSED:
		if (!c->closing) {
			c->closing = true;
			stop_producing(c);
		}
		report_end(c, st);
		return;
	default:
		return;
	}
}

/* On a reconnect, whether the messages missed in between follow. */
static void
report_subscribed(const struct sbc_reply *r)
{
	if (r->recovered && r->missed_known)
		errmsg("reconnected; %s recovered %" PRIu64 " missed message%s", r->channel,
		       r->missed, r->missed == 1 ? "" : "s");
	else if (r->recovered)
		errmsg("reconnected; %s recovered", r->channel);
	else if (r->recover_sent)
		errmsg("reconnected; %s could not be recovered (recovered:false): state "
		       "may be incomplete",
		       r->channel);
	else if (r->reconnect)
		errmsg("reconnected; %s subscribed again without recovery (the server "
		       "gave no offset): state may be incomplete",
		       r->channel);
}

/* An error reply: printed; a refused publish may let the command go on, a refused
 * refresh keeps the current token, token_expired announces the 4001 close. Anything
 * else ends the run. */
static void
on_refused(struct cli *c, const struct sbc_reply *r)
{
	print_error_frame(r->raw, r->raw_len);
	if (r->cmd == SBC_CMD_PUBLISH) {
		c->inflight--;
		c->nerrors++;
		if (c->cmd->refused != NULL && c->cmd->refused(c, r)) {
			check_drained(c);
			return;
		}
	}
	if (r->cmd == SBC_CMD_REFRESH)
		return;
	if (r->cmd == SBC_CMD_NONE && strcmp(r->code, "token_expired") == 0)
		return;
	cli_close(c, EXIT_SERVER);
}

static void
on_reply(struct sbc_client *s, const struct sbc_reply *r, void *arg)
{
	struct cli *c = arg;

	(void)s;
	if (r->error == -ECONNRESET)
		return; /* the run is ending anyway, or sub resubscribes */
	if (r->error != 0) {
		on_refused(c, r);
		return;
	}
	if (r->cmd == SBC_CMD_SUBSCRIBE)
		report_subscribed(r);
	if (r->cmd == SBC_CMD_PUBLISH) {
		c->inflight--;
		c->nacked++;
	}
	if (c->cmd->reply != NULL)
		c->cmd->reply(c, r);
	update_echo_deadline(c, true);
	check_drained(c);
}

static void
on_message(struct sbc_client *s, const struct sbc_message *m, void *arg)
{
	struct cli *c = arg;

	(void)s;
	if (!c->closing && c->cmd->message != NULL)
		c->cmd->message(c, m);
}

static void
on_presence(struct sbc_client *s, const struct sbc_presence *p, void *arg)
{
	struct cli *c = arg;

	(void)s;
	if (!c->closing && c->cmd->presence != NULL)
		c->cmd->presence(c, p);
}

static void
on_reset(struct sbc_client *s, const struct sbc_reset *r, void *arg)
{
	struct cli *c = arg;

	(void)s;
	if (!c->closing && c->cmd->reset != NULL)
		c->cmd->reset(c, r);
}

static void
on_notice(struct sbc_client *s, const char *text, void *arg)
{
	(void)s, (void)arg;
	errmsg("%s", text);
}

/* --token-file: read again at each reconnect and when a refresh is due. */
static char *
next_token(struct sbc_client *s, bool reconnect, void *arg)
{
	struct cli *c = arg;
	char why[300], *t;

	(void)s;
	t = read_token_file(c->o.token_file, why, sizeof(why));
	if (t == NULL && reconnect)
		errmsg("--token-file: %s; using the previous token", why);
	else if (t == NULL)
		errmsg("--token-file: %s", why);
	return t;
}

/* ---- signals ---- */

static int
on_signal(struct cli *c, struct lws *wsi)
{
	struct signalfd_siginfo si;
	bool running;

	if (read(lws_get_socket_fd(wsi), &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	if (c->interrupted || c->closing) {
		/* Second signal, or the close is stuck: stop now. */
		set_status(c, EXIT_INTERRUPTED);
		sbc_abort(c->sbc);
		return 0;
	}
	c->interrupted = true;
	if (c->cmd->interrupt != NULL && c->cmd->interrupt(c))
		return 0;
	/* sub, chat and ticks run until interrupted: that is success once they are
	 * running (sub also while it waits to reconnect). pub, presence and history are
	 * interrupted before their work is done. */
	running = cli_running(c) || (c->o.mode == MODE_SUB && c->ever_running);
	cli_close(c, c->cmd->endless && running ? EXIT_OK : EXIT_INTERRUPTED);
	return 0;
}

static int
signal_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct cli *c = sbc_arg(sbc_from_context(lws_get_context(wsi)));

	(void)user, (void)in, (void)len;
	if (reason == LWS_CALLBACK_RAW_RX_FILE)
		return on_signal(c, wsi);
	return 0;
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
	if (lws_adopt_descriptor_vhost(lws_get_vhost_by_name(sbc_context(c->sbc), "default"),
				       LWS_ADOPT_RAW_FILE_DESC, fd, "sb-signal", NULL) == NULL) {
		close(sfd);
		return -EIO;
	}
	return 0;
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

static void
lws_log(int level, const char *line)
{
	(void)level;
	if (strstr(line, "got bad HTTP response") != NULL)
		return; /* the library's connection error reports the status */
	fflush(stdout);
	fprintf(stderr, PROG ": lws: %s", line);
}

static const struct lws_protocols extra_protocols[] = {
	{ .name = "sb-stdin", .callback = chat_stdin_callback },
	{ .name = "sb-signal", .callback = signal_callback },
	{ .name = NULL, .callback = NULL },
};

static int
run(struct cli *c)
{
	struct sbc_config cfg = {
		.url = c->o.url,
		.user = c->o.user,
		.token = c->token,
		.token_fn = c->o.token_file != NULL ? next_token : NULL,
		.timeout_s = c->o.timeout,
		.insecure = c->o.insecure,
		.reconnect = c->o.mode == MODE_SUB && c->o.reconnect,
		/* sub: a server that vanished without closing (network down) would otherwise
		 * keep sub waiting forever. */
		.keepalive_s = c->o.mode == MODE_SUB ? KEEPALIVE_S : 0,
		.extra_protocols = extra_protocols,
		.arg = c,
		.on_state = on_state,
		.on_reply = on_reply,
		.on_message = on_message,
		.on_presence = on_presence,
		.on_reset = on_reset,
		.on_notice = on_notice,
	};
	struct sigaction ign = { .sa_handler = SIG_IGN };
	char why[300];
	int rc;

	sigaction(SIGPIPE, &ign, NULL);
	c->rng = (uint64_t)unix_ms() * 2654435761u ^ (uint64_t)getpid() << 32 ^
		 0x9e3779b97f4a7c15ull;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	c->sbc = sbc_new(&cfg, why, sizeof(why));
	if (c->sbc == NULL) {
		errmsg("%s", why);
		return EXIT_CONNECT;
	}
	rc = adopt_signals(c);
	if (rc != 0)
		errmsg("cannot watch SIGINT/SIGTERM: %s", strerror(-rc));
	for (size_t i = 0; i < c->o.nsubscribe; i++)
		if (sbc_subscribe(c->sbc, c->o.channels[i], c->o.rewind) != 0)
			out_of_memory(c);
	if (!c->closing)
		sbc_start(c->sbc);
	sbc_run(c->sbc);
	sbc_free(c->sbc);
	c->sbc = NULL;
	if (c->stdin_flags != -1)
		fcntl(STDIN_FILENO, F_SETFL, c->stdin_flags);
	if (c->cmd->done != NULL)
		c->cmd->done(c);
	return c->status;
}

int
main(int argc, char **argv)
{
	struct cli c = { .status = EXIT_OK, .stdin_flags = -1 };
	int rc;

	reserve_std_fds();
	rc = parse_args(&c, argc, argv);
	if (rc == 0) {
		c.cmd = commands[c.o.mode];
		rc = c.o.mode == MODE_TOKEN ? mint_token(&c) : run(&c);
	} else if (rc < 0) {
		rc = EXIT_OK;
	}
	free(c.token);
	chat_fini(&c);
	free(c.sym);
	json_decref(c.o.mint.info);
	json_decref(c.o.mint.channels);
	json_decref(c.o.mint.publish);
	return rc;
}
