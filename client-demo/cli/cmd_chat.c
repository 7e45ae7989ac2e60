/* cmd_chat.c: `switchboard-cli chat CHANNEL` publishes each stdin line as
 * {"text": LINE} and prints the channel's messages as "user: text". At most WINDOW
 * lines are in flight: reading stdin pauses until replies arrive. At the end of input
 * it exits once every line is acknowledged and its echo printed; a refused line makes
 * the exit status 1 but the chat goes on.
 *
 * lws watches a dup of fd 0, never fd 0 itself: lws closes the descriptors it adopts,
 * and a pipe whose writer has gone reports POLLHUP even while reading is paused, which
 * makes lws close the wsi with unread lines still in the pipe. The dup is then simply
 * adopted again when reading resumes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "proto.h"

#define LINE_MAX_BYTES 65536  /* longest stdin line we read */
#define FRAME_MAX_BYTES 65536 /* the server's default limits.max_message_size */

static void adopt_stdin(struct cli *c);

static void
publish_line(struct cli *c, const char *s, size_t n)
{
	json_t *data, *text;
	char *raw;
	size_t len;
	int rc;

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
	if (data == NULL || json_object_set_new(data, "text", text) != 0 ||
	    (raw = json_dumps(data, JSON_COMPACT)) == NULL) {
		json_decref(data);
		out_of_memory(c);
		return;
	}
	json_decref(data);
	len = sbc_publish_size(c->sbc, c->o.channels[0], strlen(raw));
	if (len > FRAME_MAX_BYTES) {
		/* The server would close the connection (1009) rather than refuse it. */
		errmsg("line too long (%zu bytes as a frame, limit %d), not sent", len,
		       FRAME_MAX_BYTES);
		free(raw);
		set_status(c, EXIT_SERVER);
		return;
	}
	rc = sbc_publish(c->sbc, c->o.channels[0], raw, strlen(raw), NULL);
	free(raw);
	if (rc != 0) {
		out_of_memory(c);
		return;
	}
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

	if (c->line == NULL || !cli_running(c))
		return;
	while (c->inflight < WINDOW && cli_running(c)) {
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
	update_echo_deadline(c, false);

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

int
chat_stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct cli *c = sbc_arg(sbc_from_context(lws_get_context(wsi)));

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
	lws_sock_file_fd_type fd = { .filefd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3) };

	if (fd.filefd >= 0)
		c->stdin_wsi =
			lws_adopt_descriptor_vhost(lws_get_vhost_by_name(sbc_context(c->sbc),
									 "default"),
						   LWS_ADOPT_RAW_FILE_DESC, fd, "sb-stdin", NULL);
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

static void
chat_ready(struct cli *c)
{
	start_chat(c);
}

static void
chat_reply(struct cli *c, const struct sbc_reply *r)
{
	if (r->cmd != SBC_CMD_PUBLISH)
		return;
	if (r->has_offset && r->offset > c->last_pub_offset)
		c->last_pub_offset = r->offset;
	pump_stdin(c);
}

/* One refused line does not end an interactive chat; it makes it exit 1, also when a
 * signal ends it. */
static bool
chat_refused(struct cli *c, const struct sbc_reply *r)
{
	(void)r;
	set_status(c, EXIT_SERVER);
	update_echo_deadline(c, true);
	pump_stdin(c);
	return true;
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

static void
chat_message(struct cli *c, const struct sbc_message *m)
{
	if (m->has_offset && m->offset > c->seen_offset)
		c->seen_offset = m->offset;
	print_chat_message(c, m->frame, m->raw, m->raw_len);
	update_echo_deadline(c, true);
	check_drained(c);
}

/* The channel starts again in a new epoch: the echo of every line published before
 * the reset has arrived. */
static void
chat_reset(struct cli *c, const struct sbc_reset *r)
{
	c->seen_offset = c->last_pub_offset = r->offset;
	errmsg("%s was reset by the server: earlier messages are gone, offsets start "
	       "again at %" PRIu64,
	       r->channel, r->offset + 1);
	update_echo_deadline(c, true);
	check_drained(c);
}

void
chat_fini(struct cli *c)
{
	free(c->line);
	c->line = NULL;
}

const struct cli_command cmd_chat = {
	.name = "chat",
	.mode = MODE_CHAT,
	.endless = true,
	.ready = chat_ready,
	.reply = chat_reply,
	.message = chat_message,
	.reset = chat_reset,
	.refused = chat_refused,
};
