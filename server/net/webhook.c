/* webhook.c: see webhook.h. The lws client side of the webhooks: configuration, TLS
 * client vhosts, and the requests. What to send and when (FIFO, batches, retries with
 * backoff, the bound and its drops) is each endpoint's webhook_queue, which this file
 * drives: events go in, its timer asks the queue for the next step, and every request's
 * end is reported back. Signatures come from sign.h.
 *
 * Request identity: the client wsi carries its endpoint as opaque user data, and a
 * callback counts only while that wsi is the endpoint's current request (ep->wsi), so a
 * request ends exactly once whichever of COMPLETED, CONNECTION_ERROR, CLOSED or our own
 * timeout comes first; later callbacks of the same wsi are ignored.
 */
#include "webhook.h"
#include "webhook_queue.h"
#include "config.h"
#include "hub.h"
#include "log.h"
#include "net.h"
#include "sign.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS_DEFAULT 5000
#define TIMEOUT_MS_MAX 600000
#define RETRIES_DEFAULT 5
#define RETRIES_MAX 100

static const char *const event_names[] = {
	"channel_occupied",  "channel_vacated",	 "member_joined",	"member_left",
	"message_published", "client_connected", "client_disconnected",
};
#define NEVENTS (sizeof(event_names) / sizeof(event_names[0]))

struct endpoint {
	struct webhooks *wh;
	size_t index; /* in the configuration list, for log lines */
	char *url;
	char *secret;
	unsigned events; /* bit i: event_names[i] */
	unsigned timeout_ms;
	unsigned max_retries;
	bool tls;
	int port;
	char *host;		 /* owned */
	char *path;		 /* owned, starts with '/' */
	char *hosthdr;		 /* owned: the Host header, host[:port] */
	char *ca_file;		 /* owned, or NULL: CAs trusted besides the system store */
	char vhost_name[32];	 /* of the client vhost it made (https) */
	struct lws_vhost *vhost; /* https: a client-only vhost for its ca_file; http: NULL */
	SSL_CTX *ssl_ctx;	 /* the trust of that vhost, if this endpoint made it */

	struct webhook_queue *q; /* owned: the events and the batch, and their schedule */
	uint64_t timer_at;	 /* when timer is set for (queue clock), if it is set */

	/* The attempt in flight, while webhook_queue_is_sending(q): */
	uint64_t attempt_id; /* the queue's name for it */
	unsigned char *body; /* borrowed from q: body_len bytes, LWS_PRE free in front */
	size_t body_len;
	char sig[128];	 /* its Switchboard-Signature */
	char clen[24];	 /* its Content-Length */
	struct lws *wsi; /* its connection, or NULL */
	bool connecting; /* inside lws_client_connect_via_info() */
	bool body_sent;
	int status;			 /* HTTP status of the response, 0 before */
	lws_sorted_usec_list_t timer;	 /* flush or retry */
	lws_sorted_usec_list_t deadline; /* request timeout */
	lws_sorted_usec_list_t patience; /* body sent: tell lws to wait for the answer */
};

struct webhooks {
	struct server *srv;
	struct endpoint *eps;
	size_t neps;
	bool stopped;
};

/* ---- configuration ---- */

static int
event_index(const char *name)
{
	for (size_t i = 0; i < NEVENTS; i++)
		if (strcmp(event_names[i], name) == 0)
			return (int)i;
	return -1;
}

/* Splits an http:// or https:// URL. Returns 0 (host and path new strings), or -1. */
static int
parse_url(const char *url, bool *tls, char **host, int *port, char **path)
{
	const char *p, *h, *end;
	size_t hlen;
	long n = -1;

	if (strncmp(url, "http://", 7) == 0) {
		*tls = false;
		p = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		*tls = true;
		p = url + 8;
	} else {
		return -1;
	}
	h = p;
	hlen = strcspn(h, ":/?#");
	if (hlen == 0 || hlen > 253)
		return -1;
	for (size_t i = 0; i < hlen; i++)
		if (h[i] == '@' || h[i] == ' ' || h[i] == '[')
			return -1;
	p = h + hlen;
	if (*p == ':') {
		char *e;

		if (p[1] < '0' || p[1] > '9')
			return -1;
		n = strtol(p + 1, &e, 10);
		if (n < 1 || n > 65535 || (*e != '\0' && *e != '/' && *e != '?'))
			return -1;
		p = e;
	}
	if (*p == '#')
		return -1;
	for (end = p; *end != '\0'; end++)
		if ((unsigned char)*end <= ' ' || *end == '#')
			return -1;
	*port = n > 0 ? (int)n : (*tls ? 443 : 80);
	*host = xstrndup(h, hlen);
	if (*p == '/') {
		*path = xstrdup(p);
	} else {
		*path = xmalloc(strlen(p) + 2);
		(*path)[0] = '/';
		strcpy(*path + 1, p);
	}
	return 0;
}

/* ca_file must be a regular file that OpenSSL's loader (the one the client context uses)
 * reads whole, with at least one certificate: checked at startup, so a wrong file is a
 * configuration error rather than failed deliveries later. A FIFO or a device is refused
 * before anything reads it (opening a FIFO would block). */
static int
check_ca_file(const char *path, size_t i, char *err, size_t errlen)
{
	struct stat st;
	X509_STORE *store;
	bool ok;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "webhooks[%zu].ca_file: cannot read \"%s\": %s", i, path,
			 strerror(errno));
		return -1;
	}
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	if (!ok) {
		snprintf(err, errlen, "webhooks[%zu].ca_file: \"%s\" is not a regular file", i,
			 path);
		return -1;
	}
	store = X509_STORE_new();
	ok = store != NULL && X509_STORE_load_file(store, path) == 1 &&
	     sk_X509_OBJECT_num(X509_STORE_get0_objects(store)) > 0;
	X509_STORE_free(store);
	ERR_clear_error();
	if (!ok) {
		snprintf(err, errlen,
			 "webhooks[%zu].ca_file: \"%s\" is not a PEM file of certificates (or a "
			 "part of it is damaged)",
			 i, path);
		return -1;
	}
	return 0;
}

static int
check_entry(const json_t *o, size_t i, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	bool tls = false;
	char *host, *path;
	int port;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "webhooks[%zu]: must be an object", i);
		return -1;
	}
	json_object_foreach((json_t *)o, key, v)
	{
		if (strcmp(key, "url") == 0) {
			if (!json_is_string(v) ||
			    parse_url(json_string_value(v), &tls, &host, &port, &path) != 0) {
				snprintf(err, errlen,
					 "webhooks[%zu].url: must be an http:// or https:// URL "
					 "with a host",
					 i);
				return -1;
			}
			free(host);
			free(path);
		} else if (strcmp(key, "events") == 0) {
			size_t j;
			json_t *e;

			if (!json_is_array(v) || json_array_size(v) == 0) {
				snprintf(err, errlen,
					 "webhooks[%zu].events: must be a non-empty list of event "
					 "names",
					 i);
				return -1;
			}
			json_array_foreach(v, j, e)
			{
				if (!json_is_string(e) || event_index(json_string_value(e)) < 0) {
					snprintf(err, errlen,
						 "webhooks[%zu].events[%zu]: must be one of "
						 "channel_occupied, channel_vacated, "
						 "member_joined, member_left, message_published, "
						 "client_connected, client_disconnected",
						 i, j);
					return -1;
				}
			}
		} else if (strcmp(key, "secret") == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0) {
				snprintf(err, errlen,
					 "webhooks[%zu].secret: must be a non-empty string", i);
				return -1;
			}
		} else if (strcmp(key, "timeout_ms") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > TIMEOUT_MS_MAX) {
				snprintf(
					err, errlen,
					"webhooks[%zu].timeout_ms: must be an integer from 1 to %d",
					i, TIMEOUT_MS_MAX);
				return -1;
			}
		} else if (strcmp(key, "max_retries") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > RETRIES_MAX) {
				snprintf(err, errlen,
					 "webhooks[%zu].max_retries: must be an integer from 0 to "
					 "%d",
					 i, RETRIES_MAX);
				return -1;
			}
		} else if (strcmp(key, "ca_file") == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0) {
				snprintf(err, errlen,
					 "webhooks[%zu].ca_file: must be the path of a PEM file of "
					 "CA certificates",
					 i);
				return -1;
			}
		} else {
			snprintf(err, errlen, "webhooks[%zu].%s: unknown key", i, key);
			return -1;
		}
	}
	if (json_object_get(o, "url") == NULL)
		snprintf(err, errlen, "webhooks[%zu].url: is required", i);
	else if (json_object_get(o, "events") == NULL)
		snprintf(err, errlen, "webhooks[%zu].events: is required", i);
	else if (json_object_get(o, "secret") == NULL)
		snprintf(err, errlen, "webhooks[%zu].secret: is required", i);
	else if ((v = json_object_get(o, "ca_file")) == NULL)
		return 0;
	else if (!tls)
		snprintf(err, errlen, "webhooks[%zu].ca_file: only for an https:// url", i);
	else
		return check_ca_file(json_string_value(v), i, err, errlen);
	return -1;
}

int
webhook_config_check(const json_t *list, char *err, size_t errlen)
{
	size_t i;
	json_t *o;

	if (list == NULL)
		return 0;
	if (!json_is_array(list)) {
		snprintf(err, errlen, "webhooks: must be a list");
		return -1;
	}
	json_array_foreach((json_t *)list, i, o)
	{
		if (check_entry(o, i, err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* Fills ep from a checked entry. */
static void
endpoint_init(struct endpoint *ep, struct webhooks *wh, size_t i, const json_t *o)
{
	json_t *v, *e;
	size_t j;

	ep->wh = wh;
	ep->index = i;
	ep->url = xstrdup(json_string_value(json_object_get(o, "url")));
	ep->secret = xstrdup(json_string_value(json_object_get(o, "secret")));
	json_array_foreach(json_object_get(o, "events"), j, e) ep->events |=
		1u << event_index(json_string_value(e));
	v = json_object_get(o, "timeout_ms");
	ep->timeout_ms = v != NULL ? (unsigned)json_integer_value(v) : TIMEOUT_MS_DEFAULT;
	v = json_object_get(o, "max_retries");
	ep->max_retries = v != NULL ? (unsigned)json_integer_value(v) : RETRIES_DEFAULT;
	v = json_object_get(o, "ca_file");
	ep->ca_file = v != NULL ? xstrdup(json_string_value(v)) : NULL;
	parse_url(ep->url, &ep->tls, &ep->host, &ep->port, &ep->path);
	ep->hosthdr = xmalloc(strlen(ep->host) + 8);
	if (ep->port == (ep->tls ? 443 : 80))
		strcpy(ep->hosthdr, ep->host);
	else
		sprintf(ep->hosthdr, "%s:%d", ep->host, ep->port);
	ep->q = webhook_queue_new(&(struct webhook_queue_limits){
		.max_events = WEBHOOK_QUEUE_MAX,
		.batch_max = WEBHOOK_BATCH_MAX,
		.batch_bytes = WEBHOOK_BATCH_BYTES,
		.flush_ms = WEBHOOK_FLUSH_MS,
		.backoff_ms = WEBHOOK_BACKOFF_MS,
		.backoff_max_ms = WEBHOOK_BACKOFF_MAX_MS,
		.max_retries = ep->max_retries,
		.headroom = LWS_PRE,
	});
}

/* ---- driving the queue ---- */

static uint64_t
unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The queue's schedule clock: lws's monotonic one, which its timers are on too. */
static uint64_t
mono_ms(void)
{
	return (uint64_t)lws_now_usecs() / LWS_US_PER_MS;
}

static struct lws_context *
ep_ctx(const struct endpoint *ep)
{
	return ep->wh->srv->ctx;
}

static void on_timer(lws_sorted_usec_list_t *sul);
static void on_deadline(lws_sorted_usec_list_t *sul);
static void request_done(struct endpoint *ep, int status, const char *why);

/* Sets the timer to when the queue next has a step to take, unless it is set for then
 * already. Never sends from here: the hub's emit and lws callbacks call this, and the
 * request starts from the timer, outside them. */
static void
arm_timer(struct endpoint *ep, uint64_t now)
{
	uint64_t at;

	if (ep_ctx(ep) == NULL || !webhook_queue_due(ep->q, &at))
		return;
	if (!lws_dll2_is_detached(&ep->timer.list) && ep->timer_at == at)
		return;
	ep->timer_at = at;
	lws_sul_schedule(ep_ctx(ep), 0, &ep->timer, on_timer,
			 at > now ? (lws_usec_t)(at - now) * LWS_US_PER_MS : 1);
}

/* Ends an overflow burst of n events: its count is logged and the next overflow warns
 * again (the queue says when: drained below half, or at shutdown). */
static void
overflow_end(struct endpoint *ep, uint64_t n)
{
	log_warn("webhook: [%zu] %s: %" PRIu64 " events were dropped (queue full)", ep->index,
		 ep->url, n);
}

/* A random number for the backoff's jitter. */
static uint32_t
jitter(void)
{
	uint32_t r = 0;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	return r;
}

/* Switchboard-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>. */
static void
sign_attempt(struct endpoint *ep)
{
	char t[24], v1[SIGN_HEX_LEN + 1];
	size_t tlen = (size_t)snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
	const struct sign_part msg[] = { { t, tlen }, { ".", 1 }, { ep->body, ep->body_len } };
	int rc = sign_hmac_sha256_hex(ep->secret, strlen(ep->secret), msg, 3, v1);

	if (rc != 0) {
		/* Only OpenSSL running out of memory: treated as any allocation failure. */
		log_error("webhook: [%zu] cannot sign a request: %s", ep->index, strerror(-rc));
		abort();
	}
	snprintf(ep->sig, sizeof(ep->sig), "t=%s,v1=%s", t, v1);
	snprintf(ep->clen, sizeof(ep->clen), "%zu", ep->body_len);
}

/* ---- requests ---- */

/* Starts the attempt the queue just handed out (st is SEND). */
static void
start_request(struct endpoint *ep, const struct webhook_queue_step *st)
{
	struct lws_client_connect_info ci;
	struct lws *wsi;

	ep->attempt_id = st->attempt_id;
	ep->body = st->body;
	ep->body_len = st->body_len;
	sign_attempt(ep);
	memset(&ci, 0, sizeof(ci));
	ci.context = ep_ctx(ep);
	ci.vhost = ep->tls ? ep->vhost : ep->wh->srv->vhost;
	ci.address = ep->host;
	ci.port = ep->port;
	ci.path = ep->path;
	ci.host = ep->hosthdr;
	ci.method = "POST";
	ci.protocol = "hook";
	ci.local_protocol_name = "hook";
	/* No redirects: a 3xx is an answer (dropped, as documented), never a hop to another
	 * host, nor from https to http with the signature in clear. */
	ci.ssl_connection = (ep->tls ? LCCSCF_USE_SSL : 0) | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
	ci.opaque_user_data = ep;
	ep->wh->srv->metrics.webhook_requests++;
	ep->connecting = true;
	ep->body_sent = false;
	ep->status = 0;
	ep->wsi = NULL;
	lws_sul_schedule(ep_ctx(ep), 0, &ep->deadline, on_deadline,
			 (lws_usec_t)ep->timeout_ms * LWS_US_PER_MS);
	log_debug("webhook: [%zu] POST %s (%zu events, attempt %u)", ep->index, ep->url, st->events,
		  st->attempt);
	wsi = lws_client_connect_via_info(&ci);
	ep->connecting = false;
	if (!webhook_queue_is_sending(ep->q))
		return; /* it failed inside the call and was handled */
	if (wsi == NULL) {
		request_done(ep, WEBHOOK_QUEUE_NO_STATUS, "cannot start the connection");
		return;
	}
	ep->wsi = wsi;
}

/* The current request ended: status is the HTTP status, or WEBHOOK_QUEUE_NO_STATUS when
 * there was none (connection error, closed early, timeout: why says which). Called once
 * per request. */
static void
request_done(struct endpoint *ep, int status, const char *why)
{
	struct webhook_queue_result res;
	uint64_t now = mono_ms();

	webhook_queue_result(ep->q, ep->attempt_id, status, now, jitter(), &res);
	if (res.outcome == WEBHOOK_QUEUE_STALE)
		return;
	ep->wsi = NULL;
	ep->body = NULL;
	ep->body_len = 0;
	lws_sul_cancel(&ep->deadline);
	lws_sul_cancel(&ep->patience);
	switch (res.outcome) {
	case WEBHOOK_QUEUE_DELIVERED:
		log_debug("webhook: [%zu] %s: %d (%zu events)", ep->index, ep->url, status,
			  res.events);
		ep->wh->srv->metrics.webhook_delivered += res.events;
		break;
	case WEBHOOK_QUEUE_RETRY:
		if (status != WEBHOOK_QUEUE_NO_STATUS)
			log_info("webhook: [%zu] %s: HTTP %d, retry %u/%u in %" PRIu64 " ms",
				 ep->index, ep->url, status, res.retry, ep->max_retries,
				 res.delay_ms);
		else
			log_info("webhook: [%zu] %s: %s, retry %u/%u in %" PRIu64 " ms", ep->index,
				 ep->url, why, res.retry, ep->max_retries, res.delay_ms);
		break;
	case WEBHOOK_QUEUE_GAVE_UP:
	case WEBHOOK_QUEUE_REFUSED:
		if (status != WEBHOOK_QUEUE_NO_STATUS)
			log_warn("webhook: [%zu] %s: HTTP %d%s, dropping a batch of %zu events",
				 ep->index, ep->url, status,
				 res.outcome == WEBHOOK_QUEUE_GAVE_UP ? " after every retry" : "",
				 res.events);
		else
			log_warn("webhook: [%zu] %s: %s after every retry, dropping a batch of %zu "
				 "events",
				 ep->index, ep->url, why, res.events);
		ep->wh->srv->metrics.webhook_failed += res.events;
		break;
	case WEBHOOK_QUEUE_STALE:
		break;
	}
	arm_timer(ep, now);
}

static void
on_timer(lws_sorted_usec_list_t *sul)
{
	struct endpoint *ep = lws_container_of(sul, struct endpoint, timer);
	struct webhook_queue_step st;
	uint64_t now = mono_ms();

	if (ep->wh->stopped)
		return;
	webhook_queue_step(ep->q, now, unix_ms(), &st);
	if (st.burst_ended > 0)
		overflow_end(ep, st.burst_ended);
	switch (st.action) {
	case WEBHOOK_QUEUE_SEND:
		start_request(ep, &st);
		break;
	case WEBHOOK_QUEUE_WAIT:
		arm_timer(ep, now);
		break;
	case WEBHOOK_QUEUE_IDLE:
		break;
	}
}

static void
on_deadline(lws_sorted_usec_list_t *sul)
{
	struct endpoint *ep = lws_container_of(sul, struct endpoint, deadline);
	struct lws *wsi = ep->wsi;

	if (!webhook_queue_is_sending(ep->q))
		return;
	request_done(ep, WEBHOOK_QUEUE_NO_STATUS, "timed out");
	/* Its later callbacks no longer match ep->wsi and are ignored. */
	if (wsi != NULL)
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ---- events from the hub ---- */

static void
endpoint_push(struct endpoint *ep, const char *text, size_t len, uint64_t now)
{
	switch (webhook_queue_push(ep->q, text, len, now)) {
	case WEBHOOK_QUEUE_QUEUED:
		arm_timer(ep, now);
		break;
	case WEBHOOK_QUEUE_DROPPED_FIRST:
		log_warn("webhook: [%zu] %s: queue full (%d events), dropping new events",
			 ep->index, ep->url, WEBHOOK_QUEUE_MAX);
		ep->wh->srv->metrics.webhook_dropped++;
		break;
	case WEBHOOK_QUEUE_DROPPED:
		ep->wh->srv->metrics.webhook_dropped++;
		break;
	case WEBHOOK_QUEUE_STOPPED:
		break;
	}
}

static void
on_event(void *arg, json_t *ev)
{
	struct webhooks *wh = arg;
	const char *name = json_string_value(json_object_get(ev, "name"));
	int i = name != NULL ? event_index(name) : -1;
	char *text = NULL;
	size_t len = 0;
	uint64_t now = 0;

	if (wh->stopped || i < 0) {
		json_decref(ev);
		return;
	}
	for (size_t k = 0; k < wh->neps; k++) {
		if (!(wh->eps[k].events & (1u << i)))
			continue;
		if (text == NULL) {
			json_object_set_new(ev, "time_ms", json_integer((json_int_t)unix_ms()));
			text = xcheck(json_dumps(ev, JSON_COMPACT | JSON_ENCODE_ANY));
			len = strlen(text);
			now = mono_ms();
		}
		endpoint_push(&wh->eps[k], text, len, now);
	}
	free(text);
	json_decref(ev);
}

/* ---- the lws client protocol ---- */

static int
on_append_headers(struct endpoint *ep, struct lws *wsi, void *in, size_t len)
{
	unsigned char **p = in, *end = *p + len;

	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)"application/json", 16, p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
					 (const unsigned char *)ep->clen, (int)strlen(ep->clen), p,
					 end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"switchboard-signature:",
					(const unsigned char *)ep->sig, (int)strlen(ep->sig), p,
					end))
		return -1;
	lws_client_http_body_pending(wsi, 1);
	lws_callback_on_writable(wsi);
	return 0;
}

static void
on_patience(lws_sorted_usec_list_t *sul)
{
	struct endpoint *ep = lws_container_of(sul, struct endpoint, patience);

	/* Our deadline (on_deadline) ends the request at timeout_ms; lws's only backs it up. */
	if (webhook_queue_is_sending(ep->q) && ep->wsi != NULL && !ep->wh->stopped)
		lws_set_timeout(ep->wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE,
				(int)(ep->timeout_ms / 1000 + 2));
}

static int
on_writeable(struct endpoint *ep, struct lws *wsi)
{
	if (ep->body_sent)
		return 0;
	ep->body_sent = true;
	lws_client_http_body_pending(wsi, 0);
	if (lws_write(wsi, ep->body, ep->body_len, LWS_WRITE_HTTP_FINAL) != (int)ep->body_len)
		return -1;
	/* lws now arms its own response timeout (the context's 10 s) when this callback
	 * returns; on_patience() replaces it so that timeout_ms alone decides. */
	lws_sul_schedule(ep_ctx(ep), 0, &ep->patience, on_patience, 1);
	return 0;
}

static int
on_receive(struct lws *wsi)
{
	char buf[LWS_PRE + 1024], *px = buf + LWS_PRE;
	int lenx = (int)sizeof(buf) - LWS_PRE;

	/* The response body is read and ignored. */
	return lws_http_client_read(wsi, &px, &lenx) < 0 ? -1 : 0;
}

/* Why a connection failed, for the log: a refused certificate by OpenSSL's reason (lws
 * reports those only as "connect SSL err 1: error:00000001:lib(0)::reason(1)"). */
static const char *
connection_error(const struct endpoint *ep, struct lws *wsi, const void *in, char *buf, size_t len)
{
	SSL *ssl = ep->tls ? lws_get_ssl(wsi) : NULL;
	long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (vr != X509_V_OK) {
		snprintf(buf, len, "certificate refused: %s", X509_verify_cert_error_string(vr));
		return buf;
	}
	return in != NULL ? (const char *)in : "connection error";
}

int
webhook_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		 size_t len)
{
	struct endpoint *ep = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
	char why[200];
	bool mine;

	(void)user;
	if (ep == NULL)
		return 0;
	mine = !ep->wh->stopped && webhook_queue_is_sending(ep->q) &&
	       (ep->wsi == wsi || (ep->connecting && ep->wsi == NULL));
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		return mine ? on_append_headers(ep, wsi, in, len) : -1;
	case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
		return mine ? on_writeable(ep, wsi) : -1;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		if (mine)
			ep->status = (int)lws_http_client_http_response(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		return on_receive(wsi);
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		return 0;
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		if (mine)
			request_done(ep, ep->status, "no response");
		return -1; /* no keep-alive: the next batch opens its own connection */
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (mine)
			request_done(ep, 0, connection_error(ep, wsi, in, why, sizeof(why)));
		return 0;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		/* Only COMPLETED reports a status: a close before the response is complete
		 * (even after a 200 status line) is a failure, retried. */
		if (mine)
			request_done(ep, 0, "closed without a complete response");
		return 0;
	default:
		return 0;
	}
}

/* ---- lifetime ---- */

int
webhook_init(struct server *srv)
{
	const json_t *list = srv->cfg->webhooks;
	struct hub_events hev;
	struct webhooks *wh;
	char err[320];
	size_t i;
	json_t *o;

	if (webhook_config_check(list, err, sizeof(err)) != 0) {
		log_error("server: %s", err);
		return -1;
	}
	if (list == NULL || json_array_size(list) == 0)
		return 0;
	wh = xcalloc(1, sizeof(*wh));
	wh->srv = srv;
	wh->neps = json_array_size(list);
	wh->eps = xcalloc(wh->neps, sizeof(wh->eps[0]));
	json_array_foreach((json_t *)list, i, o) endpoint_init(&wh->eps[i], wh, i, o);
	srv->webhooks = wh;
	hev = (struct hub_events){ .emit = on_event, .arg = wh };
	hub_set_events(srv->hub, &hev);
	for (i = 0; i < wh->neps; i++)
		log_info("webhook: [%zu] %s (timeout %u ms, %u retries)", i, wh->eps[i].url,
			 wh->eps[i].timeout_ms, wh->eps[i].max_retries);
	return 0;
}

/* The protocols of the client-only vhosts of https endpoints. */
static const struct lws_protocols hook_protocols[] = {
	{ .name = "hook", .callback = webhook_callback, .per_session_data_size = 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* The client TLS context of an https endpoint: the system's CA store (OpenSSL's default
 * paths, which SSL_CERT_FILE / SSL_CERT_DIR override) plus its ca_file. Ours rather than
 * lws's, whose default also trusts hashed certificates in "../share" relative to the
 * working directory. lws still sets, per connection, peer verification and the host name
 * check (DNS name, or IP address for an IP URL). */
static SSL_CTX *
client_ctx(const struct endpoint *ep)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
	    (ep->ca_file != NULL && SSL_CTX_load_verify_file(ctx, ep->ca_file) != 1)) {
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	return ctx;
}

int
webhook_attach(struct server *srv)
{
	struct webhooks *wh = srv->webhooks;
	struct lws_context_creation_info info;

	if (wh == NULL)
		return 0;
	for (size_t i = 0; i < wh->neps; i++) {
		struct endpoint *ep = &wh->eps[i];

		if (!ep->tls)
			continue;
		/* Endpoints with the same ca_file (or none) share a vhost: each context holds
		 * its own copy of the system's CA store, about 0.9 MB on Debian. */
		for (size_t j = 0; j < i && ep->vhost == NULL; j++)
			if (wh->eps[j].tls &&
			    (ep->ca_file == NULL
				     ? wh->eps[j].ca_file == NULL
				     : wh->eps[j].ca_file != NULL &&
					       strcmp(ep->ca_file, wh->eps[j].ca_file) == 0))
				ep->vhost = wh->eps[j].vhost;
		if (ep->vhost != NULL)
			continue;
		ep->ssl_ctx = client_ctx(ep);
		if (ep->ssl_ctx == NULL) {
			log_error("server: webhooks[%zu]: cannot set up TLS%s%s", i,
				  ep->ca_file != NULL ? " with ca_file " : "",
				  ep->ca_file != NULL ? ep->ca_file : "");
			return -1;
		}
		/* lws takes the client TLS context per vhost. */
		snprintf(ep->vhost_name, sizeof(ep->vhost_name), "webhook-%zu", i);
		memset(&info, 0, sizeof(info));
		info.port = CONTEXT_PORT_NO_LISTEN;
		info.protocols = hook_protocols;
		info.vhost_name = ep->vhost_name;
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.provided_client_ssl_ctx = ep->ssl_ctx;
		ep->vhost = lws_create_vhost(srv->ctx, &info);
		if (ep->vhost == NULL) {
			log_error("server: webhooks[%zu]: cannot create its client vhost", i);
			return -1;
		}
	}
	return 0;
}

void
webhook_shutdown(struct server *srv)
{
	struct webhooks *wh = srv->webhooks;
	size_t events = 0;
	uint64_t burst;

	if (wh == NULL || wh->stopped)
		return;
	wh->stopped = true;
	for (size_t i = 0; i < wh->neps; i++) {
		struct endpoint *ep = &wh->eps[i];

		lws_sul_cancel(&ep->timer);
		lws_sul_cancel(&ep->deadline);
		lws_sul_cancel(&ep->patience);
		events += webhook_queue_shutdown(ep->q, &burst);
		if (burst > 0)
			overflow_end(ep, burst);
		ep->body = NULL;
		ep->body_len = 0;
		if (ep->wsi != NULL)
			lws_set_timeout(ep->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		ep->wsi = NULL;
	}
	if (events > 0)
		log_warn("webhook: shutdown, dropping %zu undelivered events", events);
}

size_t
webhook_pending(const struct server *srv)
{
	const struct webhooks *wh = srv->webhooks;
	size_t n = 0;

	if (wh == NULL || wh->stopped)
		return 0;
	for (size_t i = 0; i < wh->neps; i++)
		n += webhook_queue_pending(wh->eps[i].q);
	return n;
}

void
webhook_fini(struct server *srv)
{
	struct webhooks *wh = srv->webhooks;

	if (wh == NULL)
		return;
	webhook_shutdown(srv);
	for (size_t i = 0; i < wh->neps; i++) {
		free(wh->eps[i].url);
		free(wh->eps[i].secret);
		free(wh->eps[i].host);
		free(wh->eps[i].path);
		free(wh->eps[i].hosthdr);
		free(wh->eps[i].ca_file);
		SSL_CTX_free(wh->eps[i].ssl_ctx); /* lws leaves a provided context to us */
		webhook_queue_free(wh->eps[i].q);
	}
	free(wh->eps);
	free(wh);
	srv->webhooks = NULL;
}
