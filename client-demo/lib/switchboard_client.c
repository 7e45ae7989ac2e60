/* switchboard_client.c: the life of a client's connections (see switchboard_client.h).
 *
 * One lws context per client, whose context user is the client; timers are lws_sul
 * entries inside it. What belongs to one connection (queues, reassembly, close code,
 * token expiry) is forgotten by drop_connection(); the channels and their positions
 * survive it. A connection given up before its upgrade completed gets no further lws
 * callback, so the client forgets it itself and treats whatever lws still reports
 * about it as stale.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "sbc_internal.h"

#define CLOSE_GRACE_US (2 * LWS_USEC_PER_SEC)
#define US_PER_S 1000000.0

static const char *const cmd_names[] = {
	[SBC_CMD_NONE] = "none",
	[SBC_CMD_CONNECT] = "connect",
	[SBC_CMD_SUBSCRIBE] = "subscribe",
	[SBC_CMD_UNSUBSCRIBE] = "unsubscribe",
	[SBC_CMD_PUBLISH] = "publish",
	[SBC_CMD_PRESENCE] = "presence",
	[SBC_CMD_PRESENCE_STATS] = "presence_stats",
	[SBC_CMD_HISTORY] = "history",
	[SBC_CMD_REFRESH] = "refresh",
	[SBC_CMD_PING] = "ping",
};

static const char *const state_names[] = {
	[SBC_STATE_IDLE] = "idle",
	[SBC_STATE_CONNECTING] = "connecting",
	[SBC_STATE_SUBSCRIBING] = "subscribing",
	[SBC_STATE_READY] = "ready",
	[SBC_STATE_RETRY_WAIT] = "retry_wait",
	[SBC_STATE_CLOSING] = "closing",
	[SBC_STATE_CLOSED] = "closed",
};

static void connect_now(struct sbc_client *c);

const char *
sbc_cmd_name(enum sbc_cmd cmd)
{
	return (unsigned)cmd < sizeof(cmd_names) / sizeof(cmd_names[0]) ? cmd_names[cmd] : "?";
}

const char *
sbc_state_name(enum sbc_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

/* xorshift64*: good enough for jitter. */
static double
rng_unit(struct sbc_client *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (double)((c->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

void
sbc_notice(struct sbc_client *c, const char *fmt, ...)
{
	char text[400];
	va_list ap;

	if (c->freeing || c->cfg.on_notice == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->cfg.on_notice(c, text, c->cfg.arg);
}

/* Enters a state and tells the application; st (may be NULL) carries the cause. */
static void
enter_with(struct sbc_client *c, enum sbc_state state, struct sbc_status *st)
{
	struct sbc_status none = { .cause = SBC_CAUSE_NONE };

	if (st == NULL)
		st = &none;
	st->state = state;
	if (st->text == NULL)
		st->text = "";
	if (st->detail == NULL)
		st->detail = "";
	st->close_code = c->close_code;
	st->close_reason = c->close_reason;
	st->token_expired = c->token_expired;
	st->reconnect = c->nconnected > (state == SBC_STATE_CONNECTING ? 0u : 1u);
	if (st->attempt == 0)
		st->attempt = c->attempt;
	c->state = state;
	if (!c->freeing && c->cfg.on_state != NULL)
		c->cfg.on_state(c, st, c->cfg.arg);
}

void
sbc_enter(struct sbc_client *c, enum sbc_state state)
{
	enter_with(c, state, NULL);
}

static void
final_status(struct sbc_client *c, struct sbc_status *st)
{
	*st = (struct sbc_status){
		.cause = c->final_cause,
		.text = c->final_text,
		.detail = c->final_detail,
		.http_status = c->final_http,
	};
}

/* Reports the application's commands that will get no reply. */
static void
report_lost(struct sbc_client *c, struct sbc_queue *q)
{
	struct sbc_out *o;

	while ((o = sbc_queue_pop(q)) != NULL) {
		struct sbc_reply r = {
			.cmd = o->kind,
			.id = o->id,
			.channel = o->channel,
			.error = -ECONNRESET,
		};

		if (o->app && !c->freeing && c->cfg.on_reply != NULL)
			c->cfg.on_reply(c, &r, c->cfg.arg);
		sbc_out_free(o);
	}
}

/* Forgets everything tied to the connection that ended. */
static void
drop_connection(struct sbc_client *c)
{
	c->wsi = NULL;
	c->active = false;
	c->established = false;
	c->connected = false;
	free(c->client_id);
	c->client_id = NULL;
	c->expires = 0;
	free(c->refresh_token);
	c->refresh_token = NULL;
	c->rx_len = 0;
	lws_sul_cancel(&c->sul_deadline);
	c->deadline_armed = false;
	lws_sul_cancel(&c->sul_refresh);
	for (struct sbc_chan *ch = c->chans; ch != NULL; ch = ch->next) {
		ch->pending = ch->subscribed = false;
		if (ch->leaving)
			ch->dead = true;
	}
	report_lost(c, &c->sent);
	report_lost(c, &c->outq);
}

static void
finish(struct sbc_client *c)
{
	struct sbc_status st;

	if (c->done)
		return;
	c->done = true;
	lws_sul_cancel(&c->sul_deadline);
	lws_sul_cancel(&c->sul_grace);
	lws_sul_cancel(&c->sul_retry);
	lws_sul_cancel(&c->sul_refresh);
	report_lost(c, &c->sent);
	report_lost(c, &c->outq);
	final_status(c, &st);
	enter_with(c, SBC_STATE_CLOSED, &st);
	lws_cancel_service(c->ctx);
}

static void
on_grace(lws_sorted_usec_list_t *sul)
{
	finish(lws_container_of(sul, struct sbc_client, sul_grace));
}

/* Ends the client: a clean close (1000) when the WebSocket is up, then CLOSED at
 * CLIENT_CLOSED or after a grace period. */
static void
close_now(struct sbc_client *c)
{
	struct sbc_status st;

	if (c->closing || c->done)
		return;
	c->closing = true;
	lws_sul_cancel(&c->sul_deadline);
	c->deadline_armed = false;
	lws_sul_cancel(&c->sul_retry);
	lws_sul_cancel(&c->sul_refresh);
	if (c->wsi == NULL || !c->established) {
		finish(c);
		return;
	}
	lws_callback_on_writable(c->wsi);
	lws_sul_schedule(c->ctx, 0, &c->sul_grace, on_grace, CLOSE_GRACE_US);
	final_status(c, &st);
	enter_with(c, SBC_STATE_CLOSING, &st);
}

static void
set_final(struct sbc_client *c, enum sbc_cause cause, const char *text, const char *detail,
	  unsigned http)
{
	c->final_cause = cause;
	snprintf(c->final_text, sizeof(c->final_text), "%s", text != NULL ? text : "");
	snprintf(c->final_detail, sizeof(c->final_detail), "%s", detail != NULL ? detail : "");
	c->final_http = http;
}

void
sbc_fail(struct sbc_client *c, enum sbc_cause cause, const char *text)
{
	if (c->closing || c->done)
		return;
	set_final(c, cause, text, NULL, 0);
	close_now(c);
}

/* The connection ended (or never came up) without our close: reconnect when allowed,
 * else end with the cause. retry_text and final_text say why, for each outcome. */
static bool
can_reconnect(const struct sbc_client *c)
{
	return c->cfg.reconnect && c->nconnected > 0 && !c->closing && !c->done &&
	       !(c->token_expired && c->cfg.token_fn == NULL) &&
	       (c->cfg.max_retries == 0 || c->attempt < c->cfg.max_retries);
}

static void
on_retry(lws_sorted_usec_list_t *sul)
{
	connect_now(lws_container_of(sul, struct sbc_client, sul_retry));
}

/* The wait before the next attempt: backoff_min doubling up to backoff_max, with
 * "equal jitter" (a random point in the upper half) so that clients dropped together
 * do not all come back at the same instant. */
static lws_usec_t
next_backoff(struct sbc_client *c)
{
	lws_usec_t base = (lws_usec_t)c->cfg.backoff_min_ms * 1000;
	lws_usec_t max = (lws_usec_t)c->cfg.backoff_max_ms * 1000;

	for (unsigned i = 0; i < c->attempt && base < max; i++)
		base *= 2;
	if (base > max)
		base = max;
	if (c->attempt < 1000000)
		c->attempt++;
	return base / 2 + (lws_usec_t)(rng_unit(c) * (double)(base / 2));
}

static void
ended(struct sbc_client *c, struct sbc_status *st, const char *final_text)
{
	lws_usec_t delay;

	if (!can_reconnect(c)) {
		set_final(c, st->cause, final_text, st->detail, st->http_status);
		finish(c);
		return;
	}
	delay = next_backoff(c);
	st->delay_ms = (unsigned)(delay / 1000);
	lws_sul_schedule(c->ctx, 0, &c->sul_retry, on_retry, delay);
	enter_with(c, SBC_STATE_RETRY_WAIT, st);
}

/* What the client waits for from the server, or NULL when it is only listening. */
static const char *
waiting_for(const struct sbc_client *c)
{
	if (c->closing || c->done || !c->active)
		return NULL;
	if (!c->established)
		return "the connection";
	if (c->sent.head != NULL)
		return sbc_cmd_name(c->sent.head->kind);
	if (c->outq.head != NULL)
		return sbc_cmd_name(c->outq.head->kind);
	return NULL;
}

static void
on_deadline(lws_sorted_usec_list_t *sul)
{
	struct sbc_client *c = lws_container_of(sul, struct sbc_client, sul_deadline);
	const char *what = waiting_for(c);
	struct sbc_status st = { .cause = SBC_CAUSE_TIMEOUT };
	char text[600];

	c->deadline_armed = false;
	if (what == NULL)
		return;
	if (!c->established)
		snprintf(text, sizeof(text), "cannot connect to %s: timed out after %g s", c->url,
			 c->cfg.timeout_s);
	else
		snprintf(text, sizeof(text), "timed out after %g s waiting for the reply to %s",
			 c->cfg.timeout_s, what);
	if (!can_reconnect(c)) {
		sbc_fail(c, SBC_CAUSE_TIMEOUT, text);
		return;
	}
	if (c->wsi != NULL)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	drop_connection(c);
	st.text = text;
	ended(c, &st, text);
}

void
sbc_update_deadline(struct sbc_client *c, bool progress)
{
	if (waiting_for(c) == NULL) {
		lws_sul_cancel(&c->sul_deadline);
		c->deadline_armed = false;
		return;
	}
	if (c->deadline_armed && !progress)
		return;
	lws_sul_schedule(c->ctx, 0, &c->sul_deadline, on_deadline,
			 (lws_usec_t)(c->cfg.timeout_s * US_PER_S));
	c->deadline_armed = true;
}

void
sbc_check_ready(struct sbc_client *c)
{
	if (c->state != SBC_STATE_SUBSCRIBING || c->closing || c->done)
		return;
	for (const struct sbc_chan *ch = c->chans; ch != NULL; ch = ch->next)
		if (!ch->dead && ch->pending)
			return;
	c->attempt = 0; /* the next drop starts the backoff afresh */
	sbc_enter(c, SBC_STATE_READY);
}

/* ---- token refresh ---- */

static void on_refresh_timer(lws_sorted_usec_list_t *sul);

/* Schedules a refresh before the token expires (poll: ask again soon, the last
 * answer had nothing new). */
void
sbc_schedule_refresh(struct sbc_client *c, bool poll)
{
	int64_t now = (int64_t)time(NULL), left = c->expires - now, delay;

	if (c->cfg.token_fn == NULL || c->expires <= 0 || c->refresh_token != NULL)
		return;
	if (poll)
		delay = c->cfg.refresh_poll_s;
	else if (left > 2 * (int64_t)c->cfg.refresh_margin_s)
		delay = left - c->cfg.refresh_margin_s;
	else
		delay = left / 2;
	if (delay < 0 || now + delay >= c->expires)
		return; /* too late: the server closes with 4001 */
	lws_sul_schedule(c->ctx, 0, &c->sul_refresh, on_refresh_timer,
			 (lws_usec_t)delay * LWS_USEC_PER_SEC);
}

static void
on_refresh_timer(lws_sorted_usec_list_t *sul)
{
	struct sbc_client *c = lws_container_of(sul, struct sbc_client, sul_refresh);
	char *t;

	if (!c->connected || c->closing || c->done)
		return;
	t = c->cfg.token_fn(c, false, c->cfg.arg);
	if (c->closing || c->done || !c->connected) {
		free(t);
		return;
	}
	if (t != NULL && (c->token == NULL || strcmp(t, c->token) != 0) &&
	    (c->refused_token == NULL || strcmp(t, c->refused_token) != 0)) {
		if (sbc_send_refresh(c, t, false, NULL) != 0)
			sbc_fail(c, SBC_CAUSE_NOMEM, "out of memory");
		return;
	}
	free(t);
	sbc_schedule_refresh(c, true);
}

/* ---- connection attempts ---- */

/* Starts a connection attempt (the first one, or a reconnect). */
static void
connect_now(struct sbc_client *c)
{
	struct sbc_status st = { .cause = SBC_CAUSE_CONNECT };

	drop_connection(c);
	c->token_expired = false;
	c->close_code = 0;
	c->close_reason[0] = '\0';
	sbc_sweep(c);
	if (c->cfg.token_fn != NULL && c->nconnected > 0) {
		/* A reconnect uses the application's current token: it may be a new one. */
		char *t = c->cfg.token_fn(c, true, c->cfg.arg);

		if (t != NULL) {
			free(c->token);
			c->token = t;
		}
	}
	if (c->closing || c->done)
		return;
	c->active = true;
	sbc_enter(c, SBC_STATE_CONNECTING);
	if (c->closing || c->done)
		return;
	sbc_update_deadline(c, true);
	if (lws_client_connect_via_info(&c->ci) != NULL || !c->active || c->done)
		return;
	/* Failed at once (no CONNECTION_ERROR callback came). */
	c->active = false;
	c->wsi = NULL;
	lws_sul_cancel(&c->sul_deadline);
	c->deadline_armed = false;
	st.text = "cannot connect: connection failed";
	{
		char text[600];

		snprintf(text, sizeof(text),
			 "cannot connect to %s: connection failed (unknown host?)", c->url);
		ended(c, &st, text);
	}
}

/* A callback about a connection that is no longer ours (an attempt given up). */
static bool
stale(const struct sbc_client *c, const struct lws *wsi)
{
	return !c->active || (c->wsi != NULL && wsi != c->wsi);
}

static void
on_connection_error(struct sbc_client *c, struct lws *wsi, const char *in)
{
	unsigned http = wsi != NULL ? lws_http_client_http_response(wsi) : 0;
	struct sbc_status st = { .cause = http != 0 ? SBC_CAUSE_HTTP : SBC_CAUSE_CONNECT };
	char text[600];

	if (c->closing || c->done) {
		c->wsi = NULL;
		c->active = false;
		finish(c);
		return;
	}
	if (stale(c, wsi))
		return;
	drop_connection(c);
	if (http != 0)
		snprintf(text, sizeof(text),
			 "cannot connect to %s: the server answered HTTP %u instead of upgrading",
			 c->url, http);
	else
		snprintf(text, sizeof(text), "cannot connect to %s: %s", c->url,
			 in != NULL ? in : "unknown error");
	st.text = text;
	st.detail = in != NULL ? in : "";
	st.http_status = http;
	ended(c, &st, text);
}

static void
on_established(struct sbc_client *c, struct lws *wsi)
{
	c->wsi = wsi;
	c->established = true;
	if (sbc_send_connect(c) != 0)
		sbc_fail(c, SBC_CAUSE_NOMEM, "out of memory");
	sbc_update_deadline(c, true);
}

static int
on_receive(struct sbc_client *c, struct lws *wsi, const void *in, size_t len)
{
	if (c->rx_len == 0)
		c->rx_binary = lws_frame_is_binary(wsi);
	if (len > SBC_RX_MAX - c->rx_len) {
		char text[80];

		snprintf(text, sizeof(text), "server message larger than %u bytes", SBC_RX_MAX);
		set_final(c, SBC_CAUSE_PROTOCOL, text, NULL, 0);
		c->closing = true;
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
			sbc_fail(c, SBC_CAUSE_NOMEM, "out of memory");
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
		sbc_notice(c, "ignoring a binary frame");
	else
		sbc_on_frame(c, c->rx, c->rx_len);
	c->rx_len = 0;
	sbc_sweep(c);
	return 0;
}

static int
on_writeable(struct sbc_client *c, struct lws *wsi)
{
	struct sbc_out *o;

	if (c->closing) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	o = sbc_queue_pop(&c->outq);
	if (o == NULL)
		return 0;
	if (lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT) < (int)o->len) {
		sbc_out_free(o);
		set_final(c, SBC_CAUSE_PROTOCOL, "cannot send to the server", NULL, 0);
		c->closing = true;
		return -1;
	}
	sbc_queue_push(&c->sent, o);
	if (c->outq.head != NULL)
		lws_callback_on_writable(wsi);
	sbc_update_deadline(c, false);
	return 0;
}

static void
on_peer_close(struct sbc_client *c, const unsigned char *in, size_t len)
{
	if (len < 2) {
		c->close_code = LWS_CLOSE_STATUS_NO_STATUS;
		return;
	}
	size_t n = len - 2 < sizeof(c->close_reason) - 1 ? len - 2 : sizeof(c->close_reason) - 1;

	c->close_code = in[0] << 8 | in[1];
	/* For humans: control characters become '?'. */
	for (size_t i = 0; i < n; i++)
		c->close_reason[i] = in[2 + i] < 0x20 || in[2 + i] == 0x7f ? '?' : (char)in[2 + i];
	c->close_reason[n] = '\0';
}

static void
on_closed(struct sbc_client *c, struct lws *wsi)
{
	struct sbc_status st;
	char text[300];

	if (c->closing || c->done) {
		c->wsi = NULL;
		c->active = false;
		finish(c);
		return;
	}
	if (stale(c, wsi))
		return;
	if (c->close_code == PROTO_CLOSE_TOKEN_EXPIRED)
		c->token_expired = true;
	if (c->close_code != 0)
		snprintf(text, sizeof(text), "connection closed by server (%d%s%s)", c->close_code,
			 c->close_reason[0] != '\0' ? " " : "", c->close_reason);
	else
		snprintf(text, sizeof(text), "connection to the server lost");
	drop_connection(c);
	st = (struct sbc_status){
		.cause = c->close_code != 0 ? SBC_CAUSE_CLOSED : SBC_CAUSE_LOST,
		.text = text,
	};
	ended(c, &st, text);
}

static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct sbc_client *c = lws_context_user(lws_get_context(wsi));

	(void)user;
	if (c == NULL || c->freeing)
		return 0;
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

/* ---- life ---- */

static int
make_protocols(struct sbc_client *c)
{
	size_t n = 0;

	while (c->cfg.extra_protocols != NULL && c->cfg.extra_protocols[n].name != NULL)
		n++;
	c->protocols = calloc(n + 2, sizeof(*c->protocols));
	if (c->protocols == NULL)
		return -ENOMEM;
	c->protocols[0] = (struct lws_protocols){
		.name = "switchboard.v1",
		.callback = ws_callback,
		.rx_buffer_size = 65536,
	};
	for (size_t i = 0; i < n; i++)
		c->protocols[i + 1] = c->cfg.extra_protocols[i];
	return 0;
}

static int
copy_config(struct sbc_client *c, const struct sbc_config *cfg)
{
	c->cfg = *cfg;
	if (c->cfg.timeout_s <= 0)
		c->cfg.timeout_s = SBC_DEFAULT_TIMEOUT_S;
	if (c->cfg.backoff_min_ms <= 0)
		c->cfg.backoff_min_ms = SBC_DEFAULT_BACKOFF_MIN_MS;
	if (c->cfg.backoff_max_ms <= 0)
		c->cfg.backoff_max_ms = SBC_DEFAULT_BACKOFF_MAX_MS;
	if (c->cfg.backoff_max_ms < c->cfg.backoff_min_ms)
		c->cfg.backoff_max_ms = c->cfg.backoff_min_ms;
	if (c->cfg.refresh_margin_s <= 0)
		c->cfg.refresh_margin_s = SBC_DEFAULT_REFRESH_MARGIN_S;
	if (c->cfg.refresh_poll_s <= 0)
		c->cfg.refresh_poll_s = SBC_DEFAULT_REFRESH_POLL_S;
	c->url = strdup(cfg->url);
	c->user = cfg->user != NULL ? strdup(cfg->user) : NULL;
	c->token = cfg->token != NULL ? strdup(cfg->token) : NULL;
	c->info = cfg->info != NULL ? json_deep_copy(cfg->info) : NULL;
	if (c->url == NULL || (cfg->user != NULL && c->user == NULL) ||
	    (cfg->token != NULL && c->token == NULL) || (cfg->info != NULL && c->info == NULL))
		return -ENOMEM;
	c->cfg.url = c->url;
	c->cfg.user = c->user;
	c->cfg.token = c->token;
	c->cfg.info = c->info;
	return 0;
}

struct sbc_client *
sbc_new(const struct sbc_config *cfg, char *why, size_t why_len)
{
	struct sbc_client *c;
	struct lws_context_creation_info info = { 0 };
	struct timespec ts;

	if (sbc_url_check(cfg->url, why, why_len) != 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL || copy_config(c, cfg) != 0 || make_protocols(c) != 0 ||
	    sbc_url_parse(c->url, &c->u, why, why_len) != 0) {
		snprintf(why, why_len, "out of memory");
		sbc_free(c);
		return NULL;
	}
	c->next_id = 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->rng = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) * 2654435761u ^
		 (uint64_t)getpid() << 32 ^ 0x9e3779b97f4a7c15ull;
	info = (struct lws_context_creation_info){
		.port = CONTEXT_PORT_NO_LISTEN,
		.protocols = c->protocols,
		.user = c,
		.gid = -1,
		.uid = -1,
		.options = c->u.tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0,
		.fd_limit_per_thread = 16,
		.timeout_secs = (unsigned)c->cfg.timeout_s + 1,
		.connect_timeout_secs = (unsigned)c->cfg.timeout_s + 1,
	};
	c->ctx = lws_create_context(&info);
	if (c->ctx == NULL) {
		snprintf(why, why_len, "cannot create the libwebsockets context");
		sbc_free(c);
		return NULL;
	}
	/* A server that vanished without closing (network down) is found by pinging it
	 * when nothing proved the connection alive for a while. */
	c->keepalive = (lws_retry_bo_t){
		.secs_since_valid_ping = (uint16_t)c->cfg.keepalive_s,
		.secs_since_valid_hangup = (uint16_t)(2 * c->cfg.keepalive_s),
	};
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
		.retry_and_idle_policy = c->cfg.keepalive_s > 0 ? &c->keepalive : NULL,
	};
	if (c->u.tls) {
		c->ci.ssl_connection = LCCSCF_USE_SSL;
		if (c->cfg.insecure)
			c->ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
						LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
						LCCSCF_ALLOW_EXPIRED;
	}
	return c;
}

void
sbc_free(struct sbc_client *c)
{
	if (c == NULL)
		return;
	c->freeing = true;
	if (c->ctx != NULL)
		lws_context_destroy(c->ctx);
	c->ctx = NULL;
	while (c->sent.head != NULL)
		sbc_out_free(sbc_queue_pop(&c->sent));
	while (c->outq.head != NULL)
		sbc_out_free(sbc_queue_pop(&c->outq));
	for (struct sbc_chan *ch = c->chans; ch != NULL; ch = ch->next)
		ch->dead = true;
	sbc_sweep(c);
	free(c->protocols);
	free(c->u.buf);
	free(c->url);
	free(c->user);
	json_decref(c->info);
	free(c->token);
	free(c->refresh_token);
	free(c->refused_token);
	free(c->client_id);
	free(c->rx);
	free(c);
}

int
sbc_start(struct sbc_client *c)
{
	if (c->started)
		return -EALREADY;
	c->started = true;
	connect_now(c);
	return 0;
}

static void
on_wake(lws_sorted_usec_list_t *sul)
{
	(void)sul;
}

int
sbc_service(struct sbc_client *c, int timeout_ms)
{
	if (c->done)
		return 0;
	/* lws waits for its next timer; this one bounds the wait. */
	lws_sul_schedule(c->ctx, 0, &c->sul_wake, on_wake,
			 (lws_usec_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000);
	if (lws_service(c->ctx, 0) < 0)
		return -EIO;
	lws_sul_cancel(&c->sul_wake);
	return c->done ? 0 : 1;
}

int
sbc_run(struct sbc_client *c)
{
	while (!c->done)
		if (lws_service(c->ctx, 0) < 0)
			return -EIO;
	return 0;
}

int
sbc_close(struct sbc_client *c)
{
	if (c->closing || c->done)
		return -EALREADY;
	set_final(c, SBC_CAUSE_LOCAL, "", NULL, 0);
	close_now(c);
	return 0;
}

void
sbc_abort(struct sbc_client *c)
{
	if (c->done)
		return;
	if (!c->closing)
		set_final(c, SBC_CAUSE_LOCAL, "", NULL, 0);
	c->closing = true;
	finish(c);
}

enum sbc_state
sbc_state(const struct sbc_client *c)
{
	return c->state;
}

void *
sbc_arg(const struct sbc_client *c)
{
	return c->cfg.arg;
}

struct lws_context *
sbc_context(const struct sbc_client *c)
{
	return c->ctx;
}

struct sbc_client *
sbc_from_context(struct lws_context *ctx)
{
	return lws_context_user(ctx);
}

const char *
sbc_client_id(const struct sbc_client *c)
{
	return c->client_id;
}

const char *
sbc_token(const struct sbc_client *c)
{
	return c->token;
}

unsigned
sbc_connections(const struct sbc_client *c)
{
	return c->nconnected;
}

size_t
sbc_pending(const struct sbc_client *c)
{
	return c->outq.n + c->sent.n;
}
