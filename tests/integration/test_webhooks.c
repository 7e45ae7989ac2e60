/* test_webhooks.c: outgoing webhooks (docs/http-api.md, "Webhooks") against the real
 * server and a real HTTP receiver on 127.0.0.1:0 run by this test on a thread. The
 * receiver records every request and answers 200, or a configured status for the first
 * N requests, or never answers at all (until the test releases the requests it holds).
 * Signatures are checked with OpenSSL here. Counters are read from GET /metrics, and
 * some tests capture the server's log (its stderr) in a file. Every wait has a deadline.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"
#include "itest.h"
#include "mono.h"
#include "webhook.h"

#define SECRET "s3cret-for-tests"
#define MAX_REQS 512
#define MAX_CONNS 64

TestSuite(webhooks, .fini = itest_server_down, .timeout = 60);

/* ---- the receiver ---- */

struct rreq {
	char *head; /* request line and headers */
	char *body;
	size_t body_len;
	int answered; /* status sent, 0: none */
};

struct rconn {
	int fd;
	char *buf;
	size_t len;
	bool done; /* request recorded; waiting for EOF (hang mode) */
	int req;   /* once done: its index in reqs, -1 when not recorded */
};

struct receiver {
	int lfd, port;
	int stop[2];
	pthread_t th;
	pthread_mutex_t mu;
	int fail_status; /* answered to the first fail_count requests */
	int fail_count;
	int hang_count;	    /* the first hang_count requests get no answer (-1: all) */
	int release_status; /* receiver_release(): the answer to the held requests */
	struct rreq reqs[MAX_REQS];
	size_t nreqs;
	struct rconn conns[MAX_CONNS];
};

static void
conn_close(struct rconn *c)
{
	close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Answers the request of c with status and closes the connection. */
static void
conn_answer(struct rconn *c, int status)
{
	char resp[160];
	int n;

	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
		     "Connection: close\r\n\r\nok",
		     status);
	if (write(c->fd, resp, (size_t)n) != n)
		fprintf(stderr, "receiver: short write\n");
	conn_close(c);
}

/* A whole request is in c->buf: record it and answer (or not). */
static void
conn_complete(struct receiver *r, struct rconn *c, size_t hlen, size_t blen)
{
	int status = 0, idx = -1;

	pthread_mutex_lock(&r->mu);
	if (r->nreqs < MAX_REQS) {
		struct rreq *q = &r->reqs[r->nreqs];

		q->head = strndup(c->buf, hlen);
		q->body = strndup(c->buf + hlen, blen);
		q->body_len = blen;
		if (r->hang_count >= 0 && r->nreqs >= (size_t)r->hang_count)
			status = r->nreqs < (size_t)r->hang_count + (size_t)r->fail_count
					 ? r->fail_status
					 : 200;
		q->answered = status;
		idx = (int)r->nreqs;
		r->nreqs++;
	}
	pthread_mutex_unlock(&r->mu);
	c->done = true;
	c->req = idx;
	if (status != 0)
		conn_answer(c, status);
}

/* On the receiver thread: answers every request held open with release_status, and
 * every later one with 200. */
static void
release_held(struct receiver *r)
{
	int status;

	pthread_mutex_lock(&r->mu);
	status = r->release_status;
	r->hang_count = (int)r->nreqs;
	r->fail_count = 0;
	for (int i = 0; i < MAX_CONNS; i++)
		if (r->conns[i].fd >= 0 && r->conns[i].done && r->conns[i].req >= 0)
			r->reqs[r->conns[i].req].answered = status;
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < MAX_CONNS; i++)
		if (r->conns[i].fd >= 0 && r->conns[i].done)
			conn_answer(&r->conns[i], status);
}

static void
conn_read(struct receiver *r, struct rconn *c)
{
	char tmp[65536];
	ssize_t n = read(c->fd, tmp, sizeof(tmp));
	char *end, *cl;
	size_t hlen, blen = 0;

	if (n <= 0) {
		conn_close(c);
		return;
	}
	if (c->done)
		return; /* hang mode: ignore anything more */
	c->buf = realloc(c->buf, c->len + (size_t)n + 1);
	memcpy(c->buf + c->len, tmp, (size_t)n);
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (end == NULL)
		return;
	hlen = (size_t)(end - c->buf) + 4;
	cl = strcasestr(c->buf, "\r\ncontent-length:");
	if (cl != NULL && cl < end)
		blen = strtoul(cl + 17, NULL, 10);
	if (c->len >= hlen + blen)
		conn_complete(r, c, hlen, blen);
}

static void *
receiver_main(void *arg)
{
	struct receiver *r = arg;

	for (;;) {
		struct pollfd p[MAX_CONNS + 2];
		int idx[MAX_CONNS + 2];
		nfds_t n = 0;

		p[n] = (struct pollfd){ .fd = r->stop[0], .events = POLLIN };
		idx[n++] = -1;
		p[n] = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
		idx[n++] = -2;
		for (int i = 0; i < MAX_CONNS; i++)
			if (r->conns[i].fd >= 0) {
				p[n] = (struct pollfd){ .fd = r->conns[i].fd, .events = POLLIN };
				idx[n++] = i;
			}
		if (poll(p, n, 1000) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			char cmd = 'x';

			/* 'x': stop; 'r': receiver_release(). */
			if (read(r->stop[0], &cmd, 1) != 1 || cmd != 'r')
				break;
			release_held(r);
			continue;
		}
		if (p[1].revents & POLLIN) {
			int fd = accept(r->lfd, NULL, NULL);

			for (int i = 0; fd >= 0 && i < MAX_CONNS; i++)
				if (r->conns[i].fd < 0) {
					r->conns[i].fd = fd;
					fd = -1;
				}
			if (fd >= 0)
				close(fd);
		}
		for (nfds_t k = 2; k < n; k++)
			if (p[k].revents)
				conn_read(r, &r->conns[idx[k]]);
	}
	return NULL;
}

static struct receiver *
receiver_start(int fail_status, int fail_count, int hang_count)
{
	struct receiver *r = calloc(1, sizeof(*r));
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	cr_assert_not_null(r);
	r->fail_status = fail_status;
	r->fail_count = fail_count;
	r->hang_count = hang_count;
	for (int i = 0; i < MAX_CONNS; i++)
		r->conns[i].fd = -1;
	pthread_mutex_init(&r->mu, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(r->lfd >= 0);
	cr_assert_eq(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(r->lfd, 64), 0);
	cr_assert_eq(getsockname(r->lfd, (struct sockaddr *)&a, &alen), 0);
	r->port = ntohs(a.sin_port);
	cr_assert_eq(pipe(r->stop), 0);
	return r;
}

/* Starts answering. Called after the server was forked: a thread running at fork time
 * would confuse LeakSanitizer in the server process. Until then, connections wait in
 * the listen backlog. */
static void
receiver_run(struct receiver *r)
{
	cr_assert_eq(pthread_create(&r->th, NULL, receiver_main, r), 0);
}

/* Makes the receiver answer the requests it holds open with status, and every later
 * request with 200 (the endpoint recovers). */
static void
receiver_release(struct receiver *r, int status)
{
	pthread_mutex_lock(&r->mu);
	r->release_status = status;
	pthread_mutex_unlock(&r->mu);
	cr_assert_eq(write(r->stop[1], "r", 1), 1);
}

static void
receiver_free(struct receiver *r)
{
	if (write(r->stop[1], "x", 1) != 1)
		fprintf(stderr, "receiver: cannot stop\n");
	pthread_join(r->th, NULL);
	for (int i = 0; i < MAX_CONNS; i++)
		if (r->conns[i].fd >= 0)
			conn_close(&r->conns[i]);
	for (size_t i = 0; i < r->nreqs; i++) {
		free(r->reqs[i].head);
		free(r->reqs[i].body);
	}
	close(r->lfd);
	close(r->stop[0]);
	close(r->stop[1]);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static size_t
receiver_count(struct receiver *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->nreqs;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Waits until at least n requests arrived; returns the count. */
static size_t
receiver_wait(struct receiver *r, size_t n, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	size_t got;

	while ((got = receiver_count(r)) < n && mono_ms() < deadline)
		mono_sleep_ms(10);
	return got;
}

/* ---- checking requests ---- */

/* The value of header name (lower case, with colon) in head, copied to out. */
static bool
header(const char *head, const char *name, char *out, size_t outlen)
{
	const char *p = strcasestr(head, name);
	size_t n;

	if (p == NULL)
		return false;
	p += strlen(name);
	while (*p == ' ')
		p++;
	n = strcspn(p, "\r\n");
	snprintf(out, outlen, "%.*s", (int)n, p);
	return true;
}

/* Checks method, path, content type and signature; returns the parsed body (new ref). */
static json_t *
check_request(const struct rreq *q, const char *path)
{
	char sig[200], ctype[100], expect[65], line[300];
	unsigned char mac[EVP_MAX_MD_SIZE], *msg;
	unsigned int maclen = 0;
	long long t;
	size_t tlen;
	json_t *body;

	snprintf(line, sizeof(line), "POST %s HTTP/1.1\r\n", path);
	cr_assert_eq(strncmp(q->head, line, strlen(line)), 0, "request line: %.60s", q->head);
	cr_assert(header(q->head, "\ncontent-type:", ctype, sizeof(ctype)), "%s", q->head);
	cr_expect_str_eq(ctype, "application/json");
	cr_assert(header(q->head, "\nswitchboard-signature:", sig, sizeof(sig)), "%s", q->head);
	cr_assert_eq(sscanf(sig, "t=%lld,v1=%64s", &t, expect), 2, "signature %s", sig);
	cr_expect(llabs((long long)time(NULL) - t) < 60, "t=%lld is not now", t);
	tlen = (size_t)(strchr(sig, ',') - sig) - 2;
	msg = malloc(tlen + 1 + q->body_len);
	memcpy(msg, sig + 2, tlen);
	msg[tlen] = '.';
	memcpy(msg + tlen + 1, q->body, q->body_len);
	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), msg, tlen + 1 + q->body_len, mac, &maclen);
	free(msg);
	cr_assert_eq(maclen, 32);
	for (unsigned i = 0; i < maclen; i++) {
		char h[3];

		snprintf(h, sizeof(h), "%02x", mac[i]);
		cr_assert(expect[2 * i] == h[0] && expect[2 * i + 1] == h[1],
			  "signature does not verify: %s", sig);
	}
	body = json_loadb(q->body, q->body_len, 0, NULL);
	cr_assert_not_null(body, "body is not JSON: %s", q->body);
	cr_assert(json_is_integer(json_object_get(body, "time_ms")), "%s", q->body);
	cr_assert(json_is_array(json_object_get(body, "events")), "%s", q->body);
	cr_assert(json_array_size(json_object_get(body, "events")) > 0, "%s", q->body);
	return body;
}

/* A configuration: extra (top-level keys, each followed by a comma) and one webhook
 * entry, ending with entry (keys, each preceded by a comma; NULL: a 10 s timeout when
 * messages are among the events). */
static char *
config_entry(int port, const char *path, const char *events, const char *extra, const char *entry)
{
	char *s = NULL;

	if (entry == NULL)
		entry = strstr(events, "message_published") != NULL ? ",\"timeout_ms\":10000" : "";
	cr_assert(asprintf(&s,
			   "{%s\"webhooks\":[{\"url\":\"http://127.0.0.1:%d%s\",\"events\":[%s],"
			   "\"secret\":\"" SECRET "\"%s}]}",
			   extra != NULL ? extra : "", port, path, events, entry) > 0);
	return s;
}

static char *
config(int port, const char *path, const char *events, const char *extra)
{
	return config_entry(port, path, events, extra, NULL);
}

/* Appends the events of request q (with a checked signature) to all. */
static void
collect(const struct rreq *q, json_t *all)
{
	json_t *body = check_request(q, "/hook");

	json_array_extend(all, json_object_get(body, "events"));
	json_decref(body);
}

static bool
has_event(const json_t *all, const char *name)
{
	size_t i;
	json_t *e;

	json_array_foreach(all, i, e) if (strcmp(json_str(e, "name"), name) == 0) return true;
	return false;
}

/* Ends a test: the server's clean exit first (its requests may still be open), then the
 * receiver thread, then the leak check of this process (with no thread running). */
static void
finish(struct receiver *r)
{
	cr_assert_eq(server_fixture_stop(&itest_server, 0), 0, "server: %s", itest_server.error);
	receiver_free(r);
	assert_no_leaks();
}

/* The t of the Switchboard-Signature of request q. */
static long long
sig_time(const struct rreq *q)
{
	char sig[200];
	long long t = -1;

	cr_assert(header(q->head, "\nswitchboard-signature:", sig, sizeof(sig)), "%s", q->head);
	cr_assert_eq(sscanf(sig, "t=%lld,", &t), 1, "signature %s", sig);
	return t;
}

/* ---- counters, the HTTP API and the server log ---- */

#define DELIVERED "switchboard_webhook_events_total{outcome=\"delivered\"}"
#define FAILED "switchboard_webhook_events_total{outcome=\"failed\"}"
#define DROPPED "switchboard_webhook_events_total{outcome=\"dropped\"}"
#define REQUESTS "switchboard_webhook_requests_total"

/* The value of one sample of GET /metrics of the running server, e.g. REQUESTS. */
static long long
metric(const char *sample)
{
	size_t n = strlen(sample);
	char *body = NULL, *line;
	long long v = -1;
	int status = 0;

	cr_assert_eq(http_get(itest_port(), "/metrics", &status, &body), 0, "GET /metrics failed");
	cr_assert_eq(status, 200, "GET /metrics: %d", status);
	for (line = body; line != NULL; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	}
	free(body);
	cr_assert_geq(v, 0, "no sample %s in /metrics", sample);
	return v;
}

/* Polls the sample until it equals want or timeout_ms passed; returns the last value. */
static long long
metric_wait(const char *sample, long long want, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	long long v;

	while ((v = metric(sample)) != want && mono_ms() < deadline)
		mono_sleep_ms(20);
	return v;
}

/* The HTTP API key and the namespace "f", whose messages are webhook events. */
#define KEY "sk_hooks_1"
#define API_AND_EVENTS                                                                             \
	"\"api_keys\":[{\"name\":\"backend\",\"key\":\"" KEY "\",\"channels\":[\"*\"],"            \
	"\"quota\":{\"per_minute\":1000000,\"burst\":100000}}],"                                   \
	"\"namespaces\":{\"f\":{\"publish\":\"clients\",\"message_events\":true}},"

/* One POST /api/v1/publish of data_raw to f:<prefix>0 ... f:<prefix><n-1>: n
 * message_published events, produced in that order. */
static void
api_publish(const char *prefix, int n, const char *data_raw)
{
	char body[4096];
	size_t len;
	struct http_resp resp;
	json_t *results;

	len = (size_t)snprintf(body, sizeof(body), "{\"channels\":[");
	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(body + len, sizeof(body) - len, "%s\"f:%s%d\"",
					i > 0 ? "," : "", prefix, i);
		cr_assert_lt(len, sizeof(body) - 100);
	}
	snprintf(body + len, sizeof(body) - len, "],\"data\":%s}", data_raw);
	cr_assert_eq(http_call(itest_port(), "POST", "/api/v1/publish", KEY, body, &resp), 0,
		     "publish: %s", resp.error);
	cr_assert_eq(resp.status, 200, "publish: %ld %s", resp.status, resp.body);
	results = json_object_get(resp.json, "results");
	cr_assert_eq(json_array_size(results), (size_t)n, "publish: %s", resp.body);
	for (int i = 0; i < n; i++)
		cr_assert(json_is_integer(
				  json_object_get(json_array_get(results, (size_t)i), "offset")),
			  "publish: %s", resp.body);
	http_resp_fini(&resp);
}

/* Tests that read the server's log start it with start_logged(): in the server process
 * (the fixture's tweak), stderr goes to the file log_path. Their .fini, logged_down(),
 * copies the file to stderr (where the log would have gone) and removes it. */
static char log_path[256];

static void
log_to_file(struct config *cfg, void *arg)
{
	int fd = open(arg, O_WRONLY | O_APPEND | O_CLOEXEC);

	(void)cfg;
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

static void
start_logged(const char *json)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(log_path, sizeof(log_path), "%s/sb-webhooks-log-XXXXXX",
		 dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	fd = mkstemp(log_path);
	cr_assert(fd >= 0, "mkstemp %s: %s", log_path, strerror(errno));
	close(fd);
	cr_assert_eq(server_fixture_start(&itest_server, json, log_to_file, log_path), 0, "%s",
		     itest_server.error);
}

/* The server log so far (new string). */
static char *
read_log(void)
{
	FILE *f = fopen(log_path, "r");
	char *s = NULL;
	size_t len = 0, n;
	char buf[4096];

	cr_assert_not_null(f, "%s: %s", log_path, strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		s = realloc(s, len + n + 1);
		memcpy(s + len, buf, n);
		len += n;
	}
	fclose(f);
	s = realloc(s, len + 1);
	s[len] = '\0';
	return s;
}

static size_t
count_str(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
logged_down(void)
{
	FILE *f;
	char buf[4096];
	size_t n;

	itest_server_down();
	if (log_path[0] == '\0')
		return;
	f = fopen(log_path, "r");
	while (f != NULL && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	if (f != NULL)
		fclose(f);
	unlink(log_path);
	log_path[0] = '\0';
}

/* ---- tests ---- */

Test(webhooks, events_arrive_signed_and_in_order)
{
	struct receiver *r = receiver_start(0, 0, 0);
	char *cfg = config(r->port, "/hook",
			   "\"client_connected\",\"channel_occupied\",\"member_joined\","
			   "\"client_disconnected\"",
			   NULL);
	const char *want[] = { "client_connected", "channel_occupied", "member_joined",
			       "client_disconnected" };
	json_t *all = json_array(), *e;
	struct ws_client *c;
	int64_t deadline;
	size_t i;

	itest_start(cfg);
	free(cfg);
	receiver_run(r);
	c = sb_connect(itest_port(), "alice");
	cr_assert_not_null(c);
	cr_assert_eq(sb_subscribe(c, "room"), 0);
	ws_client_close(c, WS_DEFAULT_TIMEOUT_MS);
	deadline = mono_ms() + 5000;
	for (size_t seen = 0; !has_event(all, "client_disconnected") && mono_ms() < deadline;) {
		size_t n = receiver_wait(r, seen + 1, (int)(deadline - mono_ms()));

		pthread_mutex_lock(&r->mu);
		for (; seen < n; seen++)
			collect(&r->reqs[seen], all);
		pthread_mutex_unlock(&r->mu);
	}
	cr_assert_eq(json_array_size(all), 4, "events: %s", json_dumps(all, JSON_COMPACT));
	json_array_foreach(all, i, e)
	{
		cr_expect_str_eq(json_str(e, "name"), want[i]);
		cr_expect(json_is_integer(json_object_get(e, "time_ms")),
			  "event %zu has no time_ms", i);
		if (i != 1)
			cr_expect_str_eq(json_str(e, "user"), "alice");
		if (i == 1 || i == 2)
			cr_expect_str_eq(json_str(e, "channel"), "room");
	}
	json_decref(all);
	finish(r);
}

Test(webhooks, retries_after_500_deliver_once_in_order)
{
	struct receiver *r = receiver_start(500, 2, 0);
	char *cfg = config(r->port, "/hook", "\"client_connected\"", NULL);
	struct ws_client *c[3];
	json_t *all = json_array(), *e;
	int64_t deadline;
	size_t i, n;

	itest_start(cfg);
	free(cfg);
	receiver_run(r);
	for (i = 0; i < 3; i++) {
		char user[24];

		snprintf(user, sizeof(user), "u%zu", i);
		c[i] = sb_connect(itest_port(), user);
		cr_assert_not_null(c[i]);
	}
	deadline = mono_ms() + 8000;
	while (json_array_size(all) < 3 && mono_ms() < deadline) {
		n = receiver_wait(r, 3, 100);
		json_array_clear(all);
		pthread_mutex_lock(&r->mu);
		for (i = 0; i < n; i++)
			if (r->reqs[i].answered == 200)
				collect(&r->reqs[i], all);
		pthread_mutex_unlock(&r->mu);
		if (json_array_size(all) < 3)
			receiver_wait(r, n + 1, (int)(deadline - mono_ms()));
	}
	/* Nothing more may come (no duplicate of a batch that succeeded). */
	mono_sleep_ms(600);
	n = receiver_count(r);
	cr_assert(n >= 3, "requests: %zu", n);
	cr_expect_eq(r->reqs[0].answered, 500);
	cr_expect_eq(r->reqs[1].answered, 500);
	/* The retried batch is the same body, sent again before anything newer. */
	cr_expect_str_eq(r->reqs[1].body, r->reqs[0].body);
	cr_expect_str_eq(r->reqs[2].body, r->reqs[0].body);
	json_array_clear(all);
	for (i = 0; i < n; i++) {
		cr_expect(i < 2 || r->reqs[i].answered == 200);
		if (r->reqs[i].answered == 200)
			collect(&r->reqs[i], all);
	}
	cr_assert_eq(json_array_size(all), 3, "events: %s", json_dumps(all, JSON_COMPACT));
	json_array_foreach(all, i, e)
	{
		char user[24];

		snprintf(user, sizeof(user), "u%zu", i);
		cr_expect_str_eq(json_str(e, "user"), user, "event %zu out of order", i);
	}
	for (i = 0; i < 3; i++)
		ws_client_free(c[i]);
	json_decref(all);
	finish(r);
}

Test(webhooks, a_4xx_is_not_retried)
{
	struct receiver *r = receiver_start(400, 1, 0);
	char *cfg = config(r->port, "/hook", "\"client_connected\"", NULL);
	struct ws_client *a, *b;
	json_t *body;

	itest_start(cfg);
	free(cfg);
	receiver_run(r);
	a = sb_connect(itest_port(), "a");
	cr_assert_not_null(a);
	cr_assert_eq(receiver_wait(r, 1, 5000), 1);
	b = sb_connect(itest_port(), "b");
	cr_assert_not_null(b);
	cr_assert_eq(receiver_wait(r, 2, 5000), 2);
	mono_sleep_ms(700); /* a retry would come within 250 ms */
	cr_assert_eq(receiver_count(r), 2);
	cr_expect_eq(r->reqs[0].answered, 400);
	body = check_request(&r->reqs[1], "/hook");
	cr_assert_eq(json_array_size(json_object_get(body, "events")), 1);
	cr_expect_str_eq(json_str(json_array_get(json_object_get(body, "events"), 0), "user"), "b");
	json_decref(body);
	ws_client_free(a);
	ws_client_free(b);
	finish(r);
}

Test(webhooks, a_timed_out_request_is_retried)
{
	struct receiver *r = receiver_start(0, 0, 1);
	char *cfg = config(r->port, "/hook", "\"client_connected\"", NULL);
	struct ws_client *a;
	int64_t start;
	json_t *body;

	/* config() gives no timeout: set a short one. */
	char *p = strstr(cfg, "\"secret\"");
	char *cfg2 = NULL;

	cr_assert_not_null(p);
	cr_assert(asprintf(&cfg2, "%.*s\"timeout_ms\":300,%s", (int)(p - cfg), cfg, p) > 0);
	free(cfg);
	itest_start(cfg2);
	free(cfg2);
	receiver_run(r);
	start = mono_ms();
	a = sb_connect(itest_port(), "a");
	cr_assert_not_null(a);
	cr_assert_eq(receiver_wait(r, 2, 5000), 2);
	cr_expect_geq(mono_ms() - start, 300, "the retry came before the timeout");
	cr_expect_eq(r->reqs[0].answered, 0);
	cr_expect_eq(r->reqs[1].answered, 200);
	cr_expect_str_eq(r->reqs[1].body, r->reqs[0].body);
	body = check_request(&r->reqs[1], "/hook");
	cr_expect_str_eq(json_str(json_array_get(json_object_get(body, "events"), 0), "user"), "a");
	json_decref(body);
	ws_client_free(a);
	finish(r);
}

#define SUBSCRIBERS 100
#define MESSAGES 200

Test(webhooks, a_hung_endpoint_does_not_slow_delivery)
{
	struct receiver *r = receiver_start(0, 0, -1);
	char *cfg = config(r->port, "/hook",
			   "\"client_connected\",\"member_joined\",\"message_published\"",
			   "\"default_namespace\":{\"publish\":\"clients\",\"presence\":true,"
			   "\"join_leave\":false,"
			   "\"message_events\":true},");
	struct ws_client *subs[SUBSCRIBERS], *pub;
	int64_t start, elapsed;

	itest_start(cfg);
	free(cfg);
	receiver_run(r);
	for (int i = 0; i < SUBSCRIBERS; i++) {
		subs[i] = sb_connect(itest_port(), "sub");
		cr_assert_not_null(subs[i]);
		cr_assert_eq(sb_subscribe(subs[i], "news"), 0);
	}
	pub = sb_connect(itest_port(), "pub");
	cr_assert_not_null(pub);
	/* The endpoint holds a request open and answers nothing. */
	cr_assert_eq(receiver_wait(r, 1, 5000), 1);
	start = mono_ms();
	for (int m = 0; m < MESSAGES; m++) {
		char data[32];

		snprintf(data, sizeof(data), "{\"n\":%d}", m);
		cr_assert(sb_publish(pub, "news", data, NULL, 0) >= 0, "publish %d", m);
	}
	for (int i = 0; i < SUBSCRIBERS; i++)
		for (int m = 0; m < MESSAGES; m++) {
			json_t *msg = sb_next_message(subs[i], 3000);

			cr_assert_not_null(msg, "subscriber %d: message %d missing", i, m);
			cr_assert_eq(json_int(json_object_get(msg, "data"), "n"), m);
			json_decref(msg);
		}
	elapsed = mono_ms() - start;
	/* The webhook timeout is 10 s: delivery gated on it would take that long. */
	cr_expect_lt(elapsed, 3000, "delivery of %d x %d took %lld ms", SUBSCRIBERS, MESSAGES,
		     (long long)elapsed);
	cr_expect_eq(receiver_count(r), 1, "one request in flight at a time");
	for (int i = 0; i < SUBSCRIBERS; i++)
		ws_client_free(subs[i]);
	ws_client_free(pub);
	/* Shutdown with a request in flight and a full queue is quick and clean. */
	finish(r);
}

struct bad_case {
	const char *entry;
	const char *msg;
};

Test(webhooks, bad_entries_refuse_startup_naming_the_key)
{
	static const struct bad_case cases[] = {
		{ "1", "webhooks[0]: must be an object" },
		{ "{\"url\":\"ftp://x\",\"events\":[\"member_left\"],\"secret\":\"s\"}",
		  "webhooks[0].url:" },
		{ "{\"url\":\"http://\",\"events\":[\"member_left\"],\"secret\":\"s\"}",
		  "webhooks[0].url:" },
		{ "{\"url\":\"http://h:99999/\",\"events\":[\"member_left\"],\"secret\":\"s\"}",
		  "webhooks[0].url:" },
		{ "{\"url\":\"http://h/\",\"events\":[],\"secret\":\"s\"}", "webhooks[0].events:" },
		{ "{\"url\":\"http://h/\",\"events\":[\"member_left\",\"nope\"],\"secret\":\"s\"}",
		  "webhooks[0].events[1]:" },
		{ "{\"url\":\"http://h/\",\"events\":[\"member_left\"],\"secret\":\"\"}",
		  "webhooks[0].secret:" },
		{ "{\"url\":\"http://h/\",\"events\":[\"member_left\"]}",
		  "webhooks[0].secret: is required" },
		{ "{\"url\":\"http://h/"
		  "\",\"events\":[\"member_left\"],\"secret\":\"s\",\"timeout_ms\":0}",
		  "webhooks[0].timeout_ms: must be" },
		{ "{\"url\":\"http://h/"
		  "\",\"events\":[\"member_left\"],\"secret\":\"s\",\"timeout_ms\":\"5\"}",
		  "webhooks[0].timeout_ms: must be" },
		{ "{\"url\":\"http://h/"
		  "\",\"events\":[\"member_left\"],\"secret\":\"s\",\"max_retries\":-1}",
		  "webhooks[0].max_retries: must be" },
		{ "{\"url\":\"http://h/"
		  "\",\"events\":[\"member_left\"],\"secret\":\"s\",\"retries\":1}",
		  "webhooks[0].retries: unknown key" },
	};
	char err[320], *json;
	json_t *list;
	struct server_fixture f = { 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert(asprintf(&json, "[%s]", cases[i].entry) > 0);
		list = json_loads(json, 0, NULL);
		cr_assert_not_null(list, "%s", json);
		err[0] = '\0';
		cr_expect_eq(webhook_config_check(list, err, sizeof(err)), -1, "%s accepted", json);
		cr_expect(strstr(err, cases[i].msg) == err, "%s: got \"%s\", want \"%s...\"", json,
			  err, cases[i].msg);
		json_decref(list);
		free(json);
	}
	/* A second, valid entry does not hide a bad first one; the server refuses to start. */
	cr_assert_eq(server_fixture_start(&f,
					  "{\"webhooks\":[{\"url\":\"http://127.0.0.1:1/"
					  "\",\"events\":[\"member_left\"],"
					  "\"secret\":\"s\",\"timeout_ms\":-5}]}",
					  NULL, NULL),
		     -1, "a server started with timeout_ms -5");
	cr_expect(strstr(f.error, "did not start") != NULL, "%s", f.error);
	/* A valid list is accepted. */
	list = json_loads(
		"[{\"url\":\"https://example.com:8443/x?y=1\",\"events\":[\"member_left\"],"
		"\"secret\":\"s\",\"timeout_ms\":100,\"max_retries\":0}]",
		0, NULL);
	cr_expect_eq(webhook_config_check(list, err, sizeof(err)), 0, "%s", err);
	json_decref(list);
	assert_no_leaks();
}

#define RETRIES 2 /* max_retries of the endpoint below */
#define STR_(x) #x
#define STR(x) STR_(x)

/* An endpoint that answers 500 to the first 1 + RETRIES requests, then 200: the first
 * batch is tried 1 + RETRIES times (same body, signed each time), counted as failed and
 * dropped with one log line; the next batch goes out and is delivered. */
Test(webhooks, retries_run_out_then_the_batch_is_dropped, .fini = logged_down)
{
	struct receiver *r = receiver_start(500, 1 + RETRIES, 0);
	char *cfg = config_entry(r->port, "/hook", "\"message_published\"", API_AND_EVENTS,
				 ",\"max_retries\":" STR(RETRIES));
	long long failed0, delivered0, dropped0, requests0, t, t_prev = 0;
	const struct rreq *q;
	json_t *body, *events, *e;
	char *log;
	size_t i;

	start_logged(cfg);
	free(cfg);
	receiver_run(r);
	failed0 = metric(FAILED);
	delivered0 = metric(DELIVERED);
	dropped0 = metric(DROPPED);
	requests0 = metric(REQUESTS);
	/* Batch A: 5 events produced at once, so they travel together. */
	api_publish("a", 5, "\"A\"");
	cr_assert_eq(receiver_wait(r, 1 + RETRIES, 5000), 1 + RETRIES,
		     "attempts of the first batch");
	cr_assert_eq(metric_wait(FAILED, failed0 + 5, 3000), failed0 + 5,
		     "the batch was not counted as failed after %d retries", RETRIES);
	for (i = 0; i < 1 + RETRIES; i++) {
		q = &r->reqs[i];
		cr_expect_eq(q->answered, 500, "attempt %zu", i + 1);
		/* Byte-identical, each signed again (check_request verifies the signature). */
		cr_assert(q->body_len == r->reqs[0].body_len &&
				  memcmp(q->body, r->reqs[0].body, q->body_len) == 0,
			  "attempt %zu has another body:\n%s\n%s", i + 1, q->body, r->reqs[0].body);
		body = check_request(q, "/hook");
		json_decref(body);
		t = sig_time(q);
		cr_expect(i == 0 || t >= t_prev, "attempt %zu: t=%lld before t=%lld", i + 1, t,
			  t_prev);
		t_prev = t;
	}
	body = check_request(&r->reqs[0], "/hook");
	events = json_object_get(body, "events");
	cr_assert_eq(json_array_size(events), 5, "%s", r->reqs[0].body);
	json_array_foreach(events, i, e)
	{
		char ch[32];

		snprintf(ch, sizeof(ch), "f:a%zu", i);
		cr_expect_str_eq(json_str(e, "name"), "message_published");
		cr_expect_str_eq(json_str(e, "channel"), ch);
	}
	json_decref(body);
	/* Batch B, produced after A was dropped, is the very next request (A is not sent
	 * again) and is delivered. */
	api_publish("b", 3, "\"B\"");
	cr_assert_eq(receiver_wait(r, 2 + RETRIES, 5000), 2 + RETRIES, "the next batch");
	cr_assert_eq(metric_wait(DELIVERED, delivered0 + 3, 3000), delivered0 + 3);
	q = &r->reqs[1 + RETRIES];
	cr_expect_eq(q->answered, 200);
	body = check_request(q, "/hook");
	events = json_object_get(body, "events");
	cr_assert_eq(json_array_size(events), 3, "not batch B: %s", q->body);
	json_array_foreach(events, i, e)
	{
		char ch[32];

		snprintf(ch, sizeof(ch), "f:b%zu", i);
		cr_expect_str_eq(json_str(e, "channel"), ch, "not batch B: %s", q->body);
		cr_expect_str_eq(json_str(e, "data"), "B");
	}
	json_decref(body);
	mono_sleep_ms(300); /* nothing else comes */
	cr_assert_eq(receiver_count(r), 2 + RETRIES);
	cr_expect_eq(metric(REQUESTS), requests0 + 2 + RETRIES, "every attempt is a request");
	cr_expect_eq(metric(FAILED), failed0 + 5);
	cr_expect_eq(metric(DELIVERED), delivered0 + 3);
	cr_expect_eq(metric(DROPPED), dropped0);
	finish(r);
	/* One log line for the dropped batch. */
	log = read_log();
	cr_expect_eq(count_str(log, "dropping a batch"), 1, "log:\n%s", log);
	cr_expect_eq(count_str(log,
			       "/hook: HTTP 500 after every retry, dropping a batch of 5 events"),
		     1, "log:\n%s", log);
	free(log);
}

#define QUEUE_MAX 10000		/* events waiting per endpoint (docs/http-api.md) */
#define FLOOD (QUEUE_MAX + 237) /* events produced while the endpoint hangs */
#define PER_REQUEST 100		/* events per API publish, and per webhook batch */

/* An endpoint that holds its first request open: the queue fills, newer events are
 * dropped (counted exactly, one warning for the burst) while WebSocket clients are
 * served as usual; when the endpoint answers, the oldest events arrive in order and the
 * count of the burst is logged. */
Test(webhooks, a_full_queue_drops_the_newest_events, .fini = logged_down)
{
	struct receiver *r = receiver_start(0, 0, -1);
	char *cfg = config_entry(r->port, "/hook", "\"message_published\"", API_AND_EVENTS,
				 ",\"timeout_ms\":60000");
	struct ws_client *sub, *pub;
	long long produced, inflight, dropped, elapsed;
	int64_t start;
	json_t *body, *all, *e, *msg;
	char data[24], want[160], *log;
	int nreq;
	size_t i, n;

	start_logged(cfg);
	free(cfg);
	receiver_run(r);
	sub = sb_connect(itest_port(), "sub");
	cr_assert_not_null(sub);
	cr_assert_eq(sb_subscribe(sub, "f:c0"), 0);
	pub = sb_connect(itest_port(), "pub");
	cr_assert_not_null(pub);
	/* One event, alone in a batch: the endpoint holds that request open. */
	api_publish("c", 1, "0");
	produced = 1;
	cr_assert_eq(receiver_wait(r, 1, 5000), 1);
	body = check_request(&r->reqs[0], "/hook");
	inflight = (long long)json_array_size(json_object_get(body, "events"));
	json_decref(body);
	cr_assert_eq(inflight, 1, "%s", r->reqs[0].body);
	/* More events than the queue holds; publish j carries data j. */
	for (nreq = 1; produced < 1 + FLOOD; nreq++) {
		int k = 1 + FLOOD - produced < PER_REQUEST ? (int)(1 + FLOOD - produced)
							   : PER_REQUEST;

		snprintf(data, sizeof(data), "%d", nreq);
		api_publish("c", k, data);
		produced += k;
	}
	/* Meanwhile WebSocket clients are served: the subscriber of f:c0 has every message,
	 * and a new one goes through at once. */
	for (int m = 0; m < nreq; m++) {
		msg = sb_next_message(sub, 3000);
		cr_assert_not_null(msg, "message %d missing", m);
		cr_assert_eq(json_integer_value(json_object_get(msg, "data")), m);
		json_decref(msg);
	}
	start = mono_ms();
	cr_assert(sb_publish(pub, "f:c0", "-1", NULL, 0) >= 0);
	produced++;
	msg = sb_next_message(sub, 3000);
	elapsed = mono_ms() - start;
	cr_assert_not_null(msg, "no message with a full webhook queue");
	cr_assert_eq(json_integer_value(json_object_get(msg, "data")), -1);
	json_decref(msg);
	cr_expect_lt(elapsed, 1000, "a publish took %lld ms with a full webhook queue", elapsed);
	/* Every event beyond the queue and the batch in flight was dropped; nothing else
	 * was sent. */
	dropped = produced - QUEUE_MAX - inflight;
	cr_assert_eq(metric(DROPPED), dropped, "produced %lld, queue %d, in flight %lld", produced,
		     QUEUE_MAX, inflight);
	cr_expect_eq(metric(REQUESTS), 1);
	cr_expect_eq(metric(DELIVERED), 0);
	cr_expect_eq(metric(FAILED), 0);
	cr_expect_eq(receiver_count(r), 1, "one request in flight at a time");
	/* The endpoint recovers: the batch in flight, then the queue, oldest first. */
	receiver_release(r, 200);
	cr_assert_eq(metric_wait(DELIVERED, QUEUE_MAX + inflight, 20000), QUEUE_MAX + inflight);
	n = receiver_wait(r, 1 + QUEUE_MAX / PER_REQUEST, 1000);
	cr_assert_eq(n, 1 + QUEUE_MAX / PER_REQUEST, "requests: %zu", n);
	all = json_array();
	pthread_mutex_lock(&r->mu);
	for (i = 0; i < n; i++) {
		cr_expect_eq(r->reqs[i].answered, 200, "request %zu", i);
		collect(&r->reqs[i], all);
	}
	pthread_mutex_unlock(&r->mu);
	cr_assert_eq(json_array_size(all), (size_t)(QUEUE_MAX + inflight));
	json_array_foreach(all, i, e)
	{
		/* Event 0: publish 0 to f:c0; then publish j, one event per channel in order. */
		json_int_t wn = i == 0 ? 0 : 1 + (json_int_t)(i - 1) / PER_REQUEST;
		char ch[32];

		snprintf(ch, sizeof(ch), "f:c%zu", i == 0 ? 0 : (i - 1) % PER_REQUEST);
		cr_assert(strcmp(json_str(e, "channel"), ch) == 0 &&
				  json_integer_value(json_object_get(e, "data")) == wn,
			  "event %zu is not the one produced %zu-th: %s (want %s, data %lld)", i, i,
			  json_dumps(e, JSON_COMPACT), ch, (long long)wn);
	}
	json_decref(all);
	mono_sleep_ms(200);
	cr_expect_eq(receiver_count(r), n, "requests after the queue drained");
	cr_expect_eq(metric(DROPPED), dropped);
	cr_expect_eq(metric(REQUESTS), (long long)n);
	ws_client_free(sub);
	ws_client_free(pub);
	finish(r);
	/* One warning when the burst began, and its count once the queue drained. */
	log = read_log();
	cr_expect_eq(count_str(log, "queue full"), 2, "log:\n%s", log);
	cr_expect_eq(count_str(log, "/hook: queue full (10000 events), dropping new events"), 1,
		     "log:\n%s", log);
	snprintf(want, sizeof(want), "/hook: %lld events were dropped (queue full)", dropped);
	cr_expect_eq(count_str(log, want), 1, "want \"%s\" in the log:\n%s", want, log);
	free(log);
}

/* A burst still going on at shutdown: its count is logged then (there is no drain to log
 * it), with the shutdown's own count of what was not delivered. */
Test(webhooks, a_burst_open_at_shutdown_is_logged, .fini = logged_down)
{
	struct receiver *r = receiver_start(0, 0, -1);
	char *cfg = config_entry(r->port, "/hook", "\"message_published\"", API_AND_EVENTS,
				 ",\"timeout_ms\":60000");
	long long produced = 1;
	char want[160], *log;

	start_logged(cfg);
	free(cfg);
	receiver_run(r);
	api_publish("c", 1, "0");
	cr_assert_eq(receiver_wait(r, 1, 5000), 1); /* that one event is held in flight */
	while (produced < 1 + QUEUE_MAX + 7) {
		int k = 1 + QUEUE_MAX + 7 - produced < PER_REQUEST
				? (int)(1 + QUEUE_MAX + 7 - produced)
				: PER_REQUEST;

		api_publish("c", k, "1");
		produced += k;
	}
	cr_assert_eq(metric(DROPPED), 7);
	finish(r);
	log = read_log();
	cr_expect_eq(count_str(log, "/hook: 7 events were dropped (queue full)"), 1, "log:\n%s",
		     log);
	snprintf(want, sizeof(want), "dropping %d undelivered events", QUEUE_MAX + 1);
	cr_expect_eq(count_str(log, want), 1, "want \"%s\" in the log:\n%s", want, log);
	free(log);
}
