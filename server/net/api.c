/* api.c: the HTTP API for backends (docs/http-api.md), on the "/api/" mount.
 *
 * A request is authenticated (Bearer key, constant-time compare), charged to its key's
 * token bucket, routed, and, when it has a body, answered only once the whole body has
 * arrived (bodies come in any number of LWS_CALLBACK_HTTP_BODY pieces). The channel
 * logic lives in the core (backend.h); this file translates HTTP into backend_* calls
 * and keeps each request until its answer, whose body api_render.c makes.
 *
 * An answer that needs the engine comes through a completion, inline (the memory
 * engine) or later: the request keeps the answer ready (struct api_answer) and sends it
 * at once when the completion ran inside the handler, or asks lws for a writable
 * callback and sends it from there. A request that closes before its answer cancels
 * the operations it started (backend_cancel()).
 */
#include "api.h"
#include "admit.h"
#include "api_render.h"
#include "backend.h"
#include "bucket.h"
#include "clock.h"
#include "config.h"
#include "glob.h"
#include "hub.h"
#include "log.h"
#include "net.h"
#include "netlog.h"
#include "proto.h"
#include "respond.h"
#include "xalloc.h"

#include "peer.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PUBLISH_MAX_CHANNELS 100
/* The answer to a POST says "Connection: close" and ends the connection: lws 4.1.6
 * misreads a request pipelined behind a body (it takes the next request's head for its
 * body, then spins on what is left), so no request may follow one with a body. Pooled
 * clients see the announced close and open a new connection.
 *
 * A POST answered before its body was read (a refusal) still has its body read and
 * dropped, so that the client, which may still be sending, reads the answer rather than
 * a reset (RFC 9112 §9.6): the connection closes at the end of the body, after
 * LINGER_MAX bytes, or LINGER_MS after the answer, whichever comes first. */
#define LINGER_MAX (4u << 20)
#define LINGER_MS 5000

enum route {
	R_NONE = 0,
	R_CHANNELS,	    /* GET  /api/v1/channels */
	R_CHANNEL,	    /* GET  /api/v1/channels/{c} */
	R_PRESENCE,	    /* GET  /api/v1/channels/{c}/presence */
	R_MESSAGES,	    /* GET, POST, DELETE /api/v1/channels/{c}/messages */
	R_PUBLISH,	    /* POST /api/v1/publish */
	R_CLIENT,	    /* DELETE /api/v1/clients/{id} */
	R_USER,		    /* DELETE /api/v1/users/{u} */
	R_USER_UNSUBSCRIBE, /* POST /api/v1/users/{u}/unsubscribe */
};

/* An answer made ready by a completion, sent by send_answer(). */
struct api_answer {
	bool ready;
	unsigned status;
	char *body;		    /* owned */
	const char *hname, *hvalue; /* one extra header (string constants), or NULL */
};

/* One channel of POST /api/v1/publish in flight. */
struct pub_slot {
	struct api_req *r;
	size_t index;	 /* in r->results */
	uint64_t cookie; /* while in flight */
};

/* Per-request state, zeroed by lws (the "http" protocol's per-session data). */
struct api_req {
	enum route route;
	int method;
	const struct config_api_key *key;
	char arg[PROTO_CHANNEL_MAX + 64]; /* the channel, client or user of the path */
	size_t arg_len;
	char *body; /* being received, or NULL */
	size_t body_len, body_max;
	bool body_too_large;
	unsigned early;	       /* POST: http_send() flags of an answer made before the
				* body (HTTP_LINGER unless there is no Content-Length) */
	bool discard;	       /* answered early: the body is read and dropped */
	size_t discard_left;   /* bytes still dropped before closing */
	uint64_t linger_until; /* when dropping stops and the connection closes */
	uint64_t start_us;     /* the request's head arrived (the access log's time) */
	char key_name[64];     /* the key's name, "" without a valid key */
	char path[160];	       /* the request path, cleaned for the log */
	char ip[48];	       /* the client address (peer.h) */
	uint64_t gen;	       /* api_state.gen when the key was found */

	struct lws *wsi; /* for a completion that arrives later */
	bool has_since;	 /* GET messages: since_offset and epoch were given */
	char since_epoch[128];
	bool in_handler; /* a completion now runs inside the handler */
	uint64_t cookie; /* the backend operation in flight, or 0 */
	struct api_answer ans;
	/* POST /api/v1/publish: one slot per distinct channel published to. */
	json_t *results;	/* the results list being filled (own reference) */
	struct pub_slot *slots; /* owned */
	size_t nslots, outstanding;
};

/* One token bucket per configured key, in configuration order. */
struct api_state {
	struct bucket *quota;
	uint64_t gen; /* bumped when a reload replaces the keys */
};

size_t
api_req_size(void)
{
	return sizeof(struct api_req);
}

/* ---- responses ---- */

static const char *
method_name(int m)
{
	static const char *const names[] = { "GET",   "POST",	"OPTIONS", "PUT",
					     "PATCH", "DELETE", "CONNECT", "HEAD" };

	return m >= 0 && m < (int)(sizeof(names) / sizeof(names[0])) ? names[m] : "-";
}

/* The access log: one line per answered request (401 and 429 at most once a second). */
static void
log_access(struct lws *wsi, const struct api_req *r, unsigned status)
{
	struct server *srv = lws_context_user(lws_get_context(wsi));
	double ms = r != NULL ? (double)(clock_now_us() - r->start_us) / 1000.0 : 0;
	const char *key = r != NULL && r->key_name[0] != '\0' ? r->key_name : "-";
	const char *addr = r != NULL && r->ip[0] != '\0' ? r->ip : "-";
	const char *method = r != NULL ? method_name(r->method) : "-";
	const char *path = r != NULL && r->path[0] != '\0' ? r->path : "-";

	if (status == 401 || status == 429)
		net_log_limited(srv, status == 401 ? NET_LOG_API_401 : NET_LOG_API_429,
				"api: key=%s addr=%s %s %s %u %.1f ms", key, addr, method, path,
				status, ms);
	else
		log_info("api: key=%s addr=%s %s %s %u %.1f ms", key, addr, method, path, status,
			 ms);
}

/* Every API answer. One made to a POST closes the connection; before its body arrived it
 * lingers first (see LINGER_MAX): the body is dropped as it comes. */
static int
respond(struct lws *wsi, unsigned status, const char *body, size_t len, const char *hname,
	const char *hvalue)
{
	struct api_req *r = lws_wsi_user(wsi);
	unsigned flags = r != NULL && r->method == LWSHUMETH_POST ? HTTP_CLOSE : 0;

	if (r != NULL && r->early != 0) {
		r->discard = (r->early & HTTP_LINGER) != 0;
		r->linger_until = clock_now_ms() + LINGER_MS;
		flags |= r->early;
		/* A client that stops sending is dropped after LINGER_MS too, not after lws's
		 * own 10 s body timeout. */
		if (r->discard)
			lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, LINGER_MS / 1000);
	}
	/* Before the write: a completed transaction may reset r for the next request. */
	log_access(wsi, r, status);
	return http_send(wsi, status, "application/json", body, len, hname, hvalue, flags);
}

static int
respond_error(struct lws *wsi, unsigned status, const char *code, const char *message,
	      const char *hname, const char *hvalue)
{
	char *body = http_error_body(code, message);
	int rc;

	if (body == NULL)
		return -1;
	rc = respond(wsi, status, body, strlen(body), hname, hvalue);
	free(body);
	return rc;
}

/* ---- routing ---- */

/* The methods each route takes: a bit per LWSHUMETH_*, and the same as an Allow header. */
#define M(m) (1u << LWSHUMETH_##m)
static const struct {
	unsigned methods;
	const char *allow;
} route_methods[] = {
	[R_NONE] = { 0, "" },
	[R_CHANNELS] = { M(GET), "GET" },
	[R_CHANNEL] = { M(GET), "GET" },
	[R_PRESENCE] = { M(GET), "GET" },
	[R_MESSAGES] = { M(GET) | M(POST) | M(DELETE), "GET, POST, DELETE" },
	[R_PUBLISH] = { M(POST), "POST" },
	[R_CLIENT] = { M(DELETE), "DELETE" },
	[R_USER] = { M(DELETE), "DELETE" },
	[R_USER_UNSUBSCRIBE] = { M(POST), "POST" },
};
#undef M

static bool
method_ok(enum route r, int m)
{
	return m >= 0 && m < 32 && (route_methods[r].methods & (1u << m)) != 0;
}

static bool
set_arg(struct api_req *r, const char *p, size_t n)
{
	if (n == 0 || n >= sizeof(r->arg))
		n = n == 0 ? 0 : sizeof(r->arg) - 1; /* too long: kept cut, refused as invalid */
	memcpy(r->arg, p, n);
	r->arg[n] = '\0';
	r->arg_len = n;
	return n > 0;
}

static bool
ends_with(const char *p, size_t n, const char *suffix, size_t *head)
{
	size_t sl = strlen(suffix);

	if (n <= sl || memcmp(p + n - sl, suffix, sl) != 0)
		return false;
	*head = n - sl;
	return true;
}

/* Splits path (already URL-decoded by lws, so "%2F" arrives as '/') into a route and its
 * one argument: what lies between the collection and a known suffix, slashes included.
 * A channel name with a '/' is then refused as invalid (400); a user id may hold one. */
static enum route
route_of(const char *path, size_t len, struct api_req *r)
{
	static const char base[] = "/api/v1/";
	const char *p;
	size_t n, head;

	if (len < sizeof(base) - 1 || memcmp(path, base, sizeof(base) - 1) != 0)
		return R_NONE;
	p = path + sizeof(base) - 1;
	n = len - (sizeof(base) - 1);
	if (n == 8 && memcmp(p, "channels", 8) == 0)
		return R_CHANNELS;
	if (n == 7 && memcmp(p, "publish", 7) == 0)
		return R_PUBLISH;
	if (n > 9 && memcmp(p, "channels/", 9) == 0) {
		p += 9, n -= 9;
		if (ends_with(p, n, "/messages", &head))
			return set_arg(r, p, head) ? R_MESSAGES : R_NONE;
		if (ends_with(p, n, "/presence", &head))
			return set_arg(r, p, head) ? R_PRESENCE : R_NONE;
		/* The rest is the channel name; with a '/' in it, it is refused as invalid. */
		return set_arg(r, p, n) ? R_CHANNEL : R_NONE;
	}
	if (n > 8 && memcmp(p, "clients/", 8) == 0)
		return set_arg(r, p + 8, n - 8) ? R_CLIENT : R_NONE;
	if (n > 6 && memcmp(p, "users/", 6) == 0) {
		p += 6, n -= 6;
		if (ends_with(p, n, "/unsubscribe", &head))
			return set_arg(r, p, head) ? R_USER_UNSUBSCRIBE : R_NONE;
		/* A user id may hold a '/' (sent as %2F): the rest of the path is the id. */
		return set_arg(r, p, n) ? R_USER : R_NONE;
	}
	return R_NONE;
}

static bool
route_names_channel(enum route r)
{
	return r == R_CHANNEL || r == R_PRESENCE || r == R_MESSAGES;
}

/* ---- authentication and quota ---- */

/* The key named by "Authorization: Bearer <key>", compared in constant time against
 * every configured key, or NULL. */
static const struct config_api_key *
find_key(struct lws *wsi, const struct config *cfg)
{
	char hdr[512];
	const struct config_api_key *found = NULL;
	int n = lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION);
	const char *tok;
	size_t tlen;

	if (n <= 7 || strncasecmp(hdr, "Bearer ", 7) != 0)
		return NULL;
	tok = hdr + 7;
	tlen = strlen(tok);
	for (size_t i = 0; i < cfg->napi_keys; i++) {
		const struct config_api_key *k = &cfg->api_keys[i];

		if (strlen(k->key) == tlen && CRYPTO_memcmp(k->key, tok, tlen) == 0)
			found = k;
	}
	return found;
}

static bool
key_allows(const struct config_api_key *k, const char *channel, size_t len)
{
	size_t i;
	json_t *p;

	json_array_foreach(k->channels, i,
			   p) if (glob_match(json_string_value(p), channel, len)) return true;
	return false;
}

/* Keys that may act beyond one channel (list, disconnect) need "*". */
static bool
key_is_global(const struct config_api_key *k)
{
	size_t i;
	json_t *p;

	json_array_foreach(k->channels, i,
			   p) if (strcmp(json_string_value(p), "*") == 0) return true;
	return false;
}

static int
charge(struct lws *wsi, struct server *srv, const struct config_api_key *k)
{
	struct bucket *b = &srv->api->quota[k - srv->cfg->api_keys];
	uint64_t retry_ms = 0;
	char retry[24];

	if (bucket_take(b, k->per_minute / 60.0, k->burst, clock_now_ms(), &retry_ms))
		return 0;
	snprintf(retry, sizeof(retry), "%" PRIu64, (retry_ms + 999) / 1000);
	return respond_error(wsi, 429, "rate_limited", "the API key's quota is used up",
			     "retry-after:", retry) == 0
		       ? 1
		       : -1;
}

/* ---- answers ---- */

static void
answer(struct api_req *r, unsigned status, char *body, const char *hname, const char *hvalue)
{
	free(r->ans.body);
	r->ans = (struct api_answer){ true, status, xcheck(body), hname, hvalue };
}

/* Sends the ready answer (then forgets it); 0 while none is ready. */
static int
send_answer(struct lws *wsi, struct api_req *r)
{
	struct api_answer a = r->ans;
	int rc;

	if (!a.ready)
		return 0;
	r->ans = (struct api_answer){ 0 };
	rc = respond(wsi, a.status, a.body, strlen(a.body), a.hname, a.hvalue);
	free(a.body);
	return rc;
}

static int fail(struct lws *wsi, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Answers the request now with an error. */
static int
fail(struct lws *wsi, unsigned status, const char *code, const char *fmt, ...)
{
	struct api_req *r = lws_wsi_user(wsi);
	va_list ap;

	va_start(ap, fmt);
	answer(r, status, render_verror(code, fmt, ap), NULL, NULL);
	va_end(ap);
	return send_answer(wsi, r);
}

/* A completion made the answer ready: outside the handler, the writable callback sends
 * it. */
static void
answer_ready(struct api_req *r)
{
	if (!r->in_handler)
		lws_callback_on_writable(r->wsi);
}

/* The body of a request's answer from what its one backend operation answered. */
static char *
render(const struct api_req *r, const void *result)
{
	if (r->route == R_CHANNEL)
		return render_channel(r->arg, r->arg_len, result);
	if (r->route == R_PRESENCE)
		return render_presence(r->arg, r->arg_len, result);
	/* R_MESSAGES: read, published to, or reset */
	if (r->method == LWSHUMETH_GET)
		return render_history(r->arg, r->arg_len, result,
				      r->has_since ? r->since_epoch : NULL);
	if (r->method == LWSHUMETH_POST)
		return render_published(r->arg, result);
	return render_position(r->arg, r->arg_len, result);
}

/* The completion of a request's one backend operation (r->cookie). */
static void
on_done(void *arg, int rc, const void *result)
{
	struct api_req *r = arg;
	unsigned status;
	char *body;

	r->cookie = 0;
	if (rc != 0) { /* refused: rc is what backend.h lists */
		body = render_refusal(rc, r->arg, &status);
		answer(r, status, body, status == 503 ? "retry-after:" : NULL,
		       status == 503 ? "1" : NULL);
	} else { /* a POST here published a message: 201 */
		answer(r, r->method == LWSHUMETH_POST ? 201 : 200, render(r, result), NULL, NULL);
	}
	answer_ready(r);
}

/* Starts one backend operation whose completion fills r->ans, and answers now if it
 * completed inline. */
#define START(r, wsi, call)                                                                        \
	do {                                                                                       \
		(r)->wsi = (wsi);                                                                  \
		(r)->in_handler = true;                                                            \
		(r)->cookie = (call);                                                              \
		(r)->in_handler = false;                                                           \
	} while (0)

/* ---- handlers ---- */

/* Query argument name (with its '='), or NULL; buf holds it. */
static const char *
query(struct lws *wsi, const char *name, char *buf, int len)
{
	return lws_get_urlarg_by_name(wsi, name, buf, len);
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
get_history(struct lws *wsi, struct server *srv, struct api_req *r)
{
	char b1[64], b2[64], b3[128];
	const char *limit = query(wsi, "limit=", b1, sizeof(b1));
	const char *since = query(wsi, "since_offset=", b2, sizeof(b2));
	const char *epoch = query(wsi, "epoch=", b3, sizeof(b3));
	uint64_t lim = 0, off = 0;

	if ((limit != NULL && parse_u64(limit, &lim) != 0) ||
	    (since != NULL && parse_u64(since, &off) != 0) || ((since == NULL) != (epoch == NULL)))
		return fail(wsi, 400, "bad_request",
			    "limit and since_offset are whole numbers; since_offset and epoch go "
			    "together");
	snprintf(r->since_epoch, sizeof(r->since_epoch), "%s", epoch != NULL ? epoch : "");
	r->has_since = epoch != NULL;
	START(r, wsi,
	      backend_history(srv->hub, r->arg, r->arg_len, lim, epoch, off, clock_now_ms(),
			      on_done, r));
	return send_answer(wsi, r);
}

/* GET channels: this node's channels whose name starts with prefix (NULL: all). */
static char *
list_channels(struct server *srv, const char *prefix)
{
	struct backend_channel_list l;
	char *body;

	backend_channels(srv->hub, prefix != NULL ? prefix : "",
			 prefix != NULL ? strlen(prefix) : 0, &l);
	body = render_channels(&l);
	backend_channel_list_fini(&l);
	return body;
}

static int
on_get_or_delete(struct lws *wsi, struct server *srv, struct api_req *r)
{
	char buf[300];
	size_t n;

	switch (r->route) {
	case R_CHANNELS:
		answer(r, 200, list_channels(srv, query(wsi, "prefix=", buf, sizeof(buf))), NULL,
		       NULL);
		break;
	case R_CHANNEL:
		START(r, wsi,
		      backend_channel(srv->hub, r->arg, r->arg_len, clock_now_ms(), on_done, r));
		break;
	case R_PRESENCE:
		START(r, wsi, backend_presence(srv->hub, r->arg, r->arg_len, on_done, r));
		break;
	case R_MESSAGES:
		if (r->method == LWSHUMETH_GET)
			return get_history(wsi, srv, r);
		START(r, wsi, backend_reset(srv->hub, r->arg, r->arg_len, on_done, r));
		break;
	case R_CLIENT:
		n = backend_disconnect_client(srv->hub, r->arg, r->arg_len);
		answer(r, 200, render_count("disconnected", n), NULL, NULL);
		break;
	case R_USER:
		n = backend_disconnect_user(srv->hub, r->arg, r->arg_len);
		answer(r, 200, render_count("disconnected", n), NULL, NULL);
		break;
	default:
		return fail(wsi, 404, "not_found", "no such route");
	}
	return send_answer(wsi, r);
}

/* The exact bytes of body member "data", or NULL after answering 400. */
static const char *
body_data(struct lws *wsi, struct api_req *r, json_t *root, size_t *len, int *rc)
{
	const char *raw;

	if (json_object_get(root, "data") == NULL) {
		*rc = fail(wsi, 400, "bad_request", "missing member \"data\"");
		return NULL;
	}
	if (proto_find_member(r->body, r->body_len, "data", &raw, len) != 0) {
		*rc = fail(wsi, 400, "bad_request", "cannot locate \"data\"");
		return NULL;
	}
	return raw;
}

static int
post_message(struct lws *wsi, struct server *srv, struct api_req *r, json_t *root)
{
	size_t dlen;
	int rc = 0;
	const char *data = body_data(wsi, r, root, &dlen, &rc);

	if (data == NULL)
		return rc;
	START(r, wsi,
	      backend_publish(srv->hub, r->arg, r->arg_len, data, dlen, clock_now_ms(), on_done,
			      r));
	return send_answer(wsi, r);
}

/* True if an entry of chans before index i equals chans[i]. */
static bool
listed_before(const json_t *chans, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (json_equal(json_array_get(chans, j), json_array_get(chans, i)))
			return true;
	return false;
}

/* The results list is complete: it becomes the answer. */
static void
publish_finished(struct api_req *r)
{
	char *body = render_results(r->results); /* takes the list */

	r->results = NULL;
	free(r->slots);
	r->slots = NULL;
	r->nslots = 0;
	answer(r, 200, body, NULL, NULL);
	answer_ready(r);
}

static void
on_published_one(void *arg, int rc, const void *result)
{
	struct pub_slot *slot = arg;
	struct api_req *r = slot->r;
	json_t *item = json_array_get(r->results, slot->index);
	const char *name = json_string_value(json_object_get(item, "channel"));

	slot->cookie = 0;
	json_array_set_new(r->results, slot->index,
			   render_publish_result(name, strlen(name), rc, result));
	if (--r->outstanding == 0 && !r->in_handler)
		publish_finished(r);
}

/* A list of channels: one result per distinct channel, in the order first given. A
 * channel that is invalid, not covered by the key or refused by the hub gets an error
 * result and does not stop the others; only a body that is not such a list is a 400. */
static int
post_publish(struct lws *wsi, struct server *srv, struct api_req *r, json_t *root)
{
	json_t *chans = json_object_get(root, "channels"), *c;
	size_t dlen, i;
	int rc = 0;
	const char *data;

	if (!json_is_array(chans) || json_array_size(chans) == 0 ||
	    json_array_size(chans) > PUBLISH_MAX_CHANNELS)
		return fail(wsi, 400, "bad_request",
			    "\"channels\" must be a list of 1-%d channel names",
			    PUBLISH_MAX_CHANNELS);
	json_array_foreach(chans, i,
			   c) if (!json_is_string(c)) return fail(wsi, 400, "bad_request",
								  "channels[%zu] is not a string",
								  i);
	data = body_data(wsi, r, root, &dlen, &rc);
	if (data == NULL)
		return rc;
	if (dlen > srv->cfg->limits.max_data_size)
		return fail(wsi, 413, "too_large",
			    "data is %zu bytes, over limits.max_data_size (%zu)", dlen,
			    srv->cfg->limits.max_data_size);
	r->results = xcheck(json_array());
	r->slots = xcalloc(json_array_size(chans), sizeof(*r->slots));
	r->wsi = wsi;
	/* Inside the loop, completions only fill their slot; the answer is made after it. */
	r->in_handler = true;
	r->outstanding = 1;
	json_array_foreach(chans, i, c)
	{
		const char *name = json_string_value(c);
		size_t nlen = json_string_length(c);
		struct pub_slot *slot;

		if (listed_before(chans, i))
			continue;
		if (!proto_channel_valid(name, nlen)) {
			json_array_append_new(
				r->results,
				render_channel_error(
					name, nlen, "invalid_channel",
					"channel must be 1-255 bytes of [A-Za-z0-9_:.@=-]"));
			continue;
		}
		if (!key_allows(r->key, name, nlen)) {
			json_array_append_new(
				r->results,
				render_channel_error(
					name, nlen, "forbidden",
					"the API key's channels do not cover this channel"));
			continue;
		}
		slot = &r->slots[r->nslots++];
		*slot = (struct pub_slot){ r, json_array_size(r->results), 0 };
		json_array_append_new(r->results, json_pack("{s:s%}", "channel", name, nlen));
		r->outstanding++;
		slot->cookie = backend_publish(srv->hub, name, nlen, data, dlen, clock_now_ms(),
					       on_published_one, slot);
	}
	r->in_handler = false;
	if (--r->outstanding == 0)
		publish_finished(r);
	return send_answer(wsi, r);
}

static int
post_unsubscribe(struct lws *wsi, struct server *srv, struct api_req *r, json_t *root)
{
	json_t *c = json_object_get(root, "channel");
	size_t n;

	if (!json_is_string(c) || !proto_channel_valid(json_string_value(c), json_string_length(c)))
		return fail(wsi, 400, "bad_request", "\"channel\" must be a valid channel name");
	if (!key_allows(r->key, json_string_value(c), json_string_length(c)))
		return fail(wsi, 403, "forbidden", "the API key's channels do not cover %s",
			    json_string_value(c));
	n = backend_unsubscribe_user(srv->hub, r->arg, r->arg_len, json_string_value(c),
				     json_string_length(c));
	answer(r, 200, render_count("unsubscribed", n), NULL, NULL);
	return send_answer(wsi, r);
}

/* The request is over (answered, or its connection closed): what it started and has not
 * heard back from answers nobody. */
static void
req_fini(struct server *srv, struct api_req *r)
{
	if (r->cookie != 0)
		backend_cancel(srv->hub, r->cookie);
	r->cookie = 0;
	for (size_t i = 0; i < r->nslots; i++)
		if (r->slots[i].cookie != 0)
			backend_cancel(srv->hub, r->slots[i].cookie);
	free(r->slots);
	r->slots = NULL;
	r->nslots = 0;
	json_decref(r->results);
	r->results = NULL;
	free(r->ans.body);
	r->ans = (struct api_answer){ 0 };
	free(r->body);
	r->body = NULL;
}

static int
on_body_complete(struct lws *wsi, struct server *srv, struct api_req *r)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	if (r->body_too_large)
		return fail(wsi, 413, "too_large",
			    "the body is over limits.max_http_body (%zu bytes)",
			    srv->cfg->limits.max_http_body);
	/* r->key belonged to keys a SIGHUP replaced while the body arrived. */
	if (r->gen != srv->api->gen)
		return respond_error(
			wsi, 503, "unavailable",
			"the API keys were reloaded while this request arrived; send it again",
			"retry-after:", "1");
	root = json_loadb(r->body != NULL ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES,
			  &jerr);
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(wsi, 400, "bad_request", "the body must be a JSON object (%s)",
			    jerr.text);
	}
	switch (r->route) {
	case R_MESSAGES:
		rc = post_message(wsi, srv, r, root);
		break;
	case R_PUBLISH:
		rc = post_publish(wsi, srv, r, root);
		break;
	case R_USER_UNSUBSCRIBE:
		rc = post_unsubscribe(wsi, srv, r, root);
		break;
	default:
		rc = fail(wsi, 404, "not_found", "no such route");
		break;
	}
	json_decref(root);
	return rc;
}

/* The request's Content-Length: 0, -1 when there is none (or the body is chunked, which
 * lws does not decode), -2 when it is not one decimal number. */
static int
content_length(struct lws *wsi, unsigned long long *n)
{
	char buf[32], *end;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 ||
	    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return -1;
	if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
	    lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 1) > 0)
		return -2;
	errno = 0;
	*n = strtoull(buf, &end, 10);
	return buf[0] >= '0' && buf[0] <= '9' && *end == '\0' && errno == 0 ? 0 : -2;
}

/* How an answer to this POST made before its body ends (see LINGER_MAX). */
static void
plan_early(struct lws *wsi, struct api_req *r)
{
	unsigned long long n = 0;

	if (content_length(wsi, &n) != 0) {
		r->early = HTTP_CLOSE; /* where the body ends is unknown: close at once */
		return;
	}
	r->early = HTTP_LINGER;
	r->discard_left = n > LINGER_MAX ? LINGER_MAX : (size_t)n;
}

/* Checks a body's headers before it arrives; returns 0 to read it, or what the
 * callback returns after answering. */
static int
expect_body(struct lws *wsi, struct server *srv, struct api_req *r)
{
	char buf[128];
	unsigned long long n = 0;
	int rc = content_length(wsi, &n);

	if (rc == -1)
		return fail(
			wsi, 411, "length_required",
			"send the body with a Content-Length (chunked bodies are not accepted)");
	if (rc != 0)
		return fail(wsi, 400, "bad_request", "Content-Length must be one decimal number");
	if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0 ||
	    strncasecmp(buf, "application/json", 16) != 0 ||
	    (buf[16] != '\0' && buf[16] != ';' && buf[16] != ' '))
		return fail(wsi, 415, "unsupported_media_type",
			    "the body must be application/json");
	if (n > srv->cfg->limits.max_http_body)
		return fail(wsi, 413, "too_large",
			    "the body is over limits.max_http_body (%zu bytes)",
			    srv->cfg->limits.max_http_body);
	r->body_max = (size_t)n;
	r->early = 0; /* the body is read: the answer comes at its end */
	return 0;
}

static int
on_http(struct lws *wsi, struct api_req *r)
{
	struct server *srv = lws_context_user(lws_get_context(wsi));
	char *uri = NULL;
	int ulen = 0, rc;

	req_fini(srv, r); /* a request before it on the same connection */
	memset(r, 0, sizeof(*r));
	r->start_us = clock_now_us();
	r->method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	if (uri != NULL)
		log_clean(r->path, sizeof(r->path), uri, (size_t)ulen);
	net_client_addr(srv, wsi, r->ip);
	if (r->method == LWSHUMETH_POST)
		plan_early(wsi, r);
	r->route = uri != NULL ? route_of(uri, (size_t)ulen, r) : R_NONE;
	if (r->route == R_NONE)
		return fail(wsi, 404, "not_found", "no such route (see docs/http-api.md)");
	r->key = find_key(wsi, srv->cfg);
	if (r->key != NULL)
		log_clean(r->key_name, sizeof(r->key_name), r->key->name, strlen(r->key->name));
	r->gen = srv->api->gen;
	if (r->key == NULL)
		return fail(wsi, 401, "unauthorized", "send Authorization: Bearer <api key>");
	if (route_names_channel(r->route) && !proto_channel_valid(r->arg, r->arg_len))
		return fail(wsi, 400, "bad_request", "invalid channel name in the path");
	if (!method_ok(r->route, r->method))
		return respond_error(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed",
				     "this route does not take that method",
				     "allow:", route_methods[r->route].allow);
	if (route_names_channel(r->route)
		    ? !key_allows(r->key, r->arg, r->arg_len)
		    : (r->route != R_PUBLISH && r->route != R_USER_UNSUBSCRIBE &&
		       !key_is_global(r->key)))
		return fail(wsi, 403, "forbidden", "the API key \"%s\" does not cover this",
			    r->key->name);
	rc = charge(wsi, srv, r->key);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	if (r->method == LWSHUMETH_POST)
		return expect_body(wsi, srv, r);
	return on_get_or_delete(wsi, srv, r);
}

static int
on_body(struct api_req *r, const char *in, size_t len)
{
	if (r->discard) {
		/* Answered already: drop, within the linger bounds. */
		if (clock_now_ms() > r->linger_until)
			return -1;
		if (len >= r->discard_left)
			return -1;
		r->discard_left -= len;
		return 0;
	}
	if (len == 0)
		return 0; /* an empty body still gets one empty BODY callback */
	if (r->body_too_large || r->body_len + len > r->body_max) {
		r->body_too_large = true; /* answered at completion, not by dropping */
		return 0;
	}
	if (r->body == NULL)
		r->body = xmalloc(r->body_max + 1);
	memcpy(r->body + r->body_len, in, len);
	r->body_len += len;
	return 0;
}

/* The whole body is in: answer it, or, when it was answered early and dropped, close. */
static int
on_body_end(struct lws *wsi, struct api_req *r)
{
	int rc;

	if (r->discard)
		return -1;
	rc = on_body_complete(wsi, lws_context_user(lws_get_context(wsi)), r);
	free(r->body);
	r->body = NULL;
	return rc;
}

int
api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct api_req *r = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return admit_not_websocket(wsi, reason, in);
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, r);
	case LWS_CALLBACK_HTTP_BODY:
		return on_body(r, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return on_body_end(wsi, r);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		/* An answer a later completion made ready. */
		return r != NULL ? send_answer(wsi, r) : 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (r != NULL)
			req_fini(lws_context_user(lws_get_context(wsi)), r);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

int
api_init(struct server *srv)
{
	srv->api = xcalloc(1, sizeof(*srv->api));
	srv->api->quota =
		xcalloc(srv->cfg->napi_keys ? srv->cfg->napi_keys : 1, sizeof(*srv->api->quota));
	return 0;
}

static bool
keys_equal(const struct config_api_key *a, size_t na, const struct config_api_key *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].name, b[i].name) != 0 || strcmp(a[i].key, b[i].key) != 0 ||
		    !json_equal(a[i].channels, b[i].channels) ||
		    a[i].per_minute != b[i].per_minute || a[i].burst != b[i].burst)
			return false;
	return true;
}

void
api_reload(struct server *srv, struct config *next)
{
	struct config *cfg = srv->cfg;
	struct bucket *quota = xcalloc(next->napi_keys ? next->napi_keys : 1, sizeof(*quota));
	struct config_api_key *keys = cfg->api_keys;
	size_t n = cfg->napi_keys;

	/* A key kept under its name keeps its bucket: a reload refills no quota. */
	for (size_t i = 0; i < next->napi_keys; i++)
		for (size_t j = 0; j < n; j++)
			if (strcmp(next->api_keys[i].name, keys[j].name) == 0)
				quota[i] = srv->api->quota[j];
	free(srv->api->quota);
	srv->api->quota = quota;
	/* Requests whose body is still arriving hold a key of the old set: they are answered
	 * 503 only if the set changed (an unchanged reload, e.g. a certificate renewal,
	 * fails nothing). */
	if (!keys_equal(keys, n, next->api_keys, next->napi_keys))
		srv->api->gen++;
	cfg->api_keys = next->api_keys;
	cfg->napi_keys = next->napi_keys;
	next->api_keys = keys;
	next->napi_keys = n;
}

void
api_fini(struct server *srv)
{
	if (srv->api == NULL)
		return;
	free(srv->api->quota);
	free(srv->api);
	srv->api = NULL;
}
