/* test_metrics.c: GET /metrics (docs/http-api.md, Metrics) against the real server: the
 * whole body parsed as Prometheus text format 0.0.4 by a small strict parser below
 * (names, labels, HELP and TYPE before the samples, no duplicate series, histograms
 * cumulative), other methods refused, and every counter family moved by the traffic
 * that should move it, by exactly as much as it should: connections, subscriptions,
 * publishes by source, fan-out deliveries, commands by type, error frames by code,
 * closes by code (1003, the 4008 of a slow consumer), refused upgrades by reason, the
 * gauges back to zero once clients leave, and the process_* family.
 *
 * Every check compares two scrapes of the same server (deltas), so nothing depends on
 * what the server counted before the test's own traffic. A scrape is plain HTTP without
 * an API key, through tests/support/http_client (libcurl).
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_client.h"
#include "itest.h"

#define KEY "sk_metrics_1"

#define CONFIG                                                                                     \
	"{\"api_keys\":[{\"name\":\"backend\",\"key\":\"" KEY "\",\"channels\":[\"*\"],"           \
	"\"quota\":{\"per_minute\":600,\"burst\":60}}],"                                           \
	"\"namespaces\":{\"room\":{\"publish\":\"subscribers\"}}}"

#define WAIT_MS WS_DEFAULT_TIMEOUT_MS

TestSuite(metrics, .fini = itest_server_down, .timeout = 60);

/* ---- a Prometheus text format 0.0.4 parser ---- */

#define MAX_FAMILIES 128

struct family {
	char name[128];
	char type[16]; /* "" until its # TYPE line */
	bool help;     /* its # HELP line was seen */
	bool started;  /* a sample of it was seen */
};

#define LABEL_VALUE_MAX 128

struct series {
	char *key;		  /* name{label="value",...}, labels sorted by name */
	char *name;		  /* the sample name alone */
	char le[LABEL_VALUE_MAX]; /* the le label of a histogram bucket, else "" */
	double value;
	const struct family *fam;
};

struct scrape {
	struct family fam[MAX_FAMILIES];
	size_t nfam;
	struct series *s;
	size_t n, cap;
	char *body; /* the whole body as received */
};

static bool
is_name_start(int c, bool colon)
{
	return isalpha(c) || c == '_' || (colon && c == ':');
}

static bool
is_name_char(int c, bool colon)
{
	return isalnum(c) || c == '_' || (colon && c == ':');
}

/* Length of the metric (colon true) or label name at p, 0 when there is none. */
static size_t
name_len(const char *p, bool colon)
{
	size_t n = 0;

	if (!is_name_start((unsigned char)p[0], colon))
		return 0;
	while (is_name_char((unsigned char)p[n], colon))
		n++;
	return n;
}

static bool
valid_name(const char *s, bool colon)
{
	size_t n = name_len(s, colon);

	return n > 0 && s[n] == '\0';
}

static struct family *
family_find(struct scrape *sc, const char *name, size_t len)
{
	for (size_t i = 0; i < sc->nfam; i++)
		if (strlen(sc->fam[i].name) == len && memcmp(sc->fam[i].name, name, len) == 0)
			return &sc->fam[i];
	return NULL;
}

static struct family *
family_get(struct scrape *sc, const char *name, unsigned line)
{
	struct family *f = family_find(sc, name, strlen(name));

	if (f != NULL)
		return f;
	cr_assert_lt(sc->nfam, MAX_FAMILIES, "line %u: too many metric families", line);
	cr_assert_lt(strlen(name), sizeof(f->name), "line %u: name too long: %s", line, name);
	f = &sc->fam[sc->nfam++];
	memset(f, 0, sizeof(*f));
	strcpy(f->name, name);
	return f;
}

/* The family a sample name belongs to: its own, or for a histogram (summary) the one
 * it is the _bucket, _sum or _count of. NULL when no # TYPE declared one. */
static struct family *
family_of_sample(struct scrape *sc, const char *name)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	size_t len = strlen(name);
	struct family *f = family_find(sc, name, len);

	if (f != NULL && f->type[0] != '\0' && strcmp(f->type, "histogram") != 0 &&
	    strcmp(f->type, "summary") != 0)
		return f;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]);

		if (len <= sl || strcmp(name + len - sl, suffixes[i]) != 0)
			continue;
		f = family_find(sc, name, len - sl);
		if (f == NULL)
			continue;
		if (strcmp(f->type, "histogram") == 0 || (strcmp(f->type, "summary") == 0 && i > 0))
			return f;
	}
	return NULL;
}

/* "# HELP name text" or "# TYPE name type"; any other comment is ignored. */
static void
parse_comment(struct scrape *sc, char *line, unsigned lineno)
{
	static const char *const types[] = { "counter", "gauge", "histogram", "summary",
					     "untyped" };
	bool help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
	char *name = line + 7, *rest;
	struct family *f;
	bool known = false;

	if (!help && !type)
		return;
	rest = strchr(name, ' ');
	cr_assert_not_null(rest, "line %u: %s without a name and text: %s", lineno,
			   help ? "HELP" : "TYPE", line);
	*rest++ = '\0';
	cr_assert(valid_name(name, true), "line %u: bad metric name \"%s\"", lineno, name);
	f = family_get(sc, name, lineno);
	cr_assert_not(f->started, "line %u: # %s of %s after its samples", lineno,
		      help ? "HELP" : "TYPE", name);
	if (help) {
		cr_assert_not(f->help, "line %u: a second # HELP for %s", lineno, name);
		cr_assert(rest[0] != '\0', "line %u: empty # HELP for %s", lineno, name);
		f->help = true;
		return;
	}
	cr_assert(f->type[0] == '\0', "line %u: a second # TYPE for %s", lineno, name);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		known = known || strcmp(rest, types[i]) == 0;
	cr_assert(known, "line %u: unknown type \"%s\" for %s", lineno, rest, name);
	strcpy(f->type, rest);
}

struct label {
	char name[64];
	char value[LABEL_VALUE_MAX]; /* as written, escapes included */
};

static int
label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* name{l="v",...} value [timestamp] */
static void
parse_sample(struct scrape *sc, char *line, unsigned lineno)
{
	struct label labels[16];
	size_t nl = 0, n = name_len(line, true), klen;
	char name[128], *p = line + n, *end, *key;
	struct family *f;
	struct series *s;
	double v;

	cr_assert_gt(n, 0, "line %u: not a sample (bad metric name): %s", lineno, line);
	cr_assert_lt(n, sizeof(name), "line %u: name too long", lineno);
	memcpy(name, line, n);
	name[n] = '\0';
	if (*p == '{') {
		p++;
		while (*p != '}') {
			size_t ln = name_len(p, false), vn = 0;
			struct label *l;

			cr_assert_lt(nl, sizeof(labels) / sizeof(labels[0]),
				     "line %u: too many labels", lineno);
			l = &labels[nl++];
			cr_assert(ln > 0 && ln < sizeof(l->name),
				  "line %u: bad label name at \"%s\"", lineno, p);
			memcpy(l->name, p, ln);
			l->name[ln] = '\0';
			cr_assert(strncmp(l->name, "__", 2) != 0, "line %u: reserved label name %s",
				  lineno, l->name);
			p += ln;
			cr_assert(p[0] == '=' && p[1] == '"', "line %u: label %s without =\"",
				  lineno, l->name);
			p += 2;
			while (*p != '"') {
				cr_assert(*p != '\0', "line %u: unterminated label value", lineno);
				if (*p == '\\') {
					cr_assert(p[1] == '\\' || p[1] == '"' || p[1] == 'n',
						  "line %u: bad escape \\%c in a label value",
						  lineno, p[1]);
					cr_assert_lt(vn + 2, sizeof(l->value),
						     "line %u: label too long", lineno);
					l->value[vn++] = *p++;
				}
				cr_assert_lt(vn + 1, sizeof(l->value), "line %u: label too long",
					     lineno);
				l->value[vn++] = *p++;
			}
			l->value[vn] = '\0';
			p++;
			cr_assert(*p == ',' || *p == '}', "line %u: expected , or } after label %s",
				  lineno, l->name);
			if (*p == ',')
				p++;
		}
		p++;
		cr_assert_gt(nl, 0, "line %u: empty label set {}", lineno);
	}
	cr_assert(*p == ' ', "line %u: no space before the value: %s", lineno, line);
	p++;
	v = strtod(p, &end);
	cr_assert(end != p && (*end == '\0' || *end == ' '),
		  "line %u: value \"%s\" is not a number", lineno, p);
	if (*end == ' ') { /* an optional integer timestamp */
		char *tend;

		(void)strtoll(end + 1, &tend, 10);
		cr_assert(tend != end + 1 && *tend == '\0', "line %u: bad timestamp \"%s\"", lineno,
			  end + 1);
	}
	qsort(labels, nl, sizeof(labels[0]), label_cmp);
	for (size_t i = 1; i < nl; i++)
		cr_assert(strcmp(labels[i - 1].name, labels[i].name) != 0,
			  "line %u: label %s twice in one sample", lineno, labels[i].name);

	f = family_of_sample(sc, name);
	cr_assert_not_null(f, "line %u: sample %s before (or without) a # TYPE of its family",
			   lineno, name);
	cr_assert(f->help, "line %u: sample %s before (or without) a # HELP of %s", lineno, name,
		  f->name);
	/* All samples of a family form one group: a family seen before may not come back. */
	if (!f->started) {
		f->started = true;
	} else {
		cr_assert(sc->n > 0 && sc->s[sc->n - 1].fam == f,
			  "line %u: samples of %s are not grouped together", lineno, f->name);
	}
	if (strcmp(f->type, "counter") == 0)
		cr_expect(v >= 0, "line %u: counter %s is negative: %g", lineno, name, v);

	klen = strlen(name) + 3;
	for (size_t i = 0; i < nl; i++)
		klen += strlen(labels[i].name) + strlen(labels[i].value) + 4;
	key = malloc(klen);
	cr_assert_not_null(key);
	strcpy(key, name);
	for (size_t i = 0; i < nl; i++) {
		strcat(key, i == 0 ? "{" : ",");
		strcat(key, labels[i].name);
		strcat(key, "=\"");
		strcat(key, labels[i].value);
		strcat(key, "\"");
	}
	if (nl > 0)
		strcat(key, "}");
	for (size_t i = 0; i < sc->n; i++)
		cr_assert(strcmp(sc->s[i].key, key) != 0, "line %u: duplicate series %s", lineno,
			  key);
	if (sc->n == sc->cap) {
		sc->cap = sc->cap ? sc->cap * 2 : 64;
		sc->s = realloc(sc->s, sc->cap * sizeof(*sc->s));
		cr_assert_not_null(sc->s);
	}
	s = &sc->s[sc->n++];
	memset(s, 0, sizeof(*s));
	s->key = key;
	s->name = strdup(name);
	cr_assert_not_null(s->name);
	s->value = v;
	s->fam = f;
	for (size_t i = 0; i < nl; i++)
		if (strcmp(labels[i].name, "le") == 0)
			memcpy(s->le, labels[i].value, sizeof(s->le));
}

static double
value_of(const struct scrape *sc, const char *key)
{
	for (size_t i = 0; i < sc->n; i++)
		if (strcmp(sc->s[i].key, key) == 0)
			return sc->s[i].value;
	cr_assert_fail("no series %s in the scrape:\n%s", key, sc->body);
	return 0;
}

/* A histogram: buckets in increasing le order, cumulative, ending with +Inf equal to
 * _count; _sum and _count present. */
static void
check_histogram(const struct scrape *sc, const struct family *f)
{
	char bucket[160], key[200];
	double prev_le = -INFINITY, prev = 0;
	size_t nb = 0;
	bool inf = false;

	snprintf(bucket, sizeof(bucket), "%s_bucket", f->name);
	for (size_t i = 0; i < sc->n; i++) {
		const struct series *s = &sc->s[i];
		double le;
		char *end;

		if (s->fam != f || strcmp(s->name, bucket) != 0)
			continue;
		cr_assert(s->le[0] != '\0', "%s without an le label", s->key);
		cr_assert_not(inf, "%s after the +Inf bucket", s->key);
		le = strtod(s->le, &end);
		cr_assert(end != s->le && *end == '\0', "%s: le is not a number", s->key);
		cr_assert_gt(le, prev_le, "%s: le not increasing", s->key);
		cr_assert_geq(s->value, prev, "%s: buckets not cumulative (%g after %g)", s->key,
			      s->value, prev);
		inf = isinf(le) && le > 0;
		prev_le = le;
		prev = s->value;
		nb++;
	}
	cr_assert_gt(nb, 1, "histogram %s has no buckets besides +Inf", f->name);
	cr_assert(inf, "histogram %s has no +Inf bucket", f->name);
	snprintf(key, sizeof(key), "%s_count", f->name);
	cr_assert_eq(value_of(sc, key), prev, "%s: +Inf bucket %g != _count %g", f->name, prev,
		     value_of(sc, key));
	snprintf(key, sizeof(key), "%s_sum", f->name);
	cr_assert_geq(value_of(sc, key), 0, "%s", key);
}

static void
parse_body(struct scrape *sc)
{
	char *copy, *line, *next;
	unsigned lineno = 0;

	cr_assert(sc->body != NULL && sc->body[0] != '\0', "empty /metrics body");
	cr_assert(sc->body[strlen(sc->body) - 1] == '\n', "the body does not end with a newline");
	copy = strdup(sc->body);
	cr_assert_not_null(copy);
	for (line = copy; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		lineno++;
		cr_assert(strchr(line, '\r') == NULL, "line %u: carriage return", lineno);
		cr_assert(line[0] != '\0', "line %u: empty line", lineno);
		if (line[0] == '#')
			parse_comment(sc, line, lineno);
		else
			parse_sample(sc, line, lineno);
	}
	free(copy);
	for (size_t i = 0; i < sc->nfam; i++) {
		const struct family *f = &sc->fam[i];

		cr_expect(f->type[0] != '\0', "%s has a # HELP but no # TYPE", f->name);
		cr_expect(f->started, "%s has no samples", f->name);
		if (strcmp(f->type, "counter") == 0)
			cr_expect(strlen(f->name) > 6 &&
					  strcmp(f->name + strlen(f->name) - 6, "_total") == 0,
				  "counter %s does not end in _total", f->name);
		if (strcmp(f->type, "histogram") == 0)
			check_histogram(sc, f);
	}
}

static void
scrape_fini(struct scrape *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		free(sc->s[i].key);
		free(sc->s[i].name);
	}
	free(sc->s);
	free(sc->body);
	memset(sc, 0, sizeof(*sc));
}

/* GET /metrics without a key: 200, the 0.0.4 content type, a body that parses. */
static void
scrape(struct scrape *sc)
{
	struct http_req req = { .method = "GET", .path = "/metrics" };
	struct http_resp r;
	char *ct;

	memset(sc, 0, sizeof(*sc));
	http_do(itest_port(), &req, &r);
	cr_assert_eq(r.status, 200, "GET /metrics: %ld (%s): %s", r.status, r.error,
		     r.body ? r.body : "");
	ct = http_resp_header(&r, "Content-Type");
	cr_assert(ct != NULL && strncmp(ct, "text/plain; version=0.0.4", 25) == 0,
		  "GET /metrics: Content-Type %s", ct ? ct : "(none)");
	free(ct);
	cr_assert_eq(strlen(r.body), r.body_len, "a NUL byte in the body");
	sc->body = r.body;
	r.body = NULL;
	http_resp_fini(&r);
	parse_body(sc);
}

/* The growth of a series between two scrapes. */
static double
delta(const struct scrape *a, const struct scrape *b, const char *key)
{
	return value_of(b, key) - value_of(a, key);
}

/* The sum of every series of a family (all its label values). */
static double
family_sum(const struct scrape *sc, const char *name)
{
	double sum = 0;

	for (size_t i = 0; i < sc->n; i++)
		if (strcmp(sc->s[i].name, name) == 0)
			sum += sc->s[i].value;
	return sum;
}

#define expect_delta(a, b, key, want)                                                              \
	cr_expect_eq(delta(a, b, key), (double)(want), "%s grew by %g, expected %g", key,          \
		     delta(a, b, key), (double)(want))

/* Scrapes every 20 ms, for up to 5 s, until series key has value want; the last scrape
 * stays in *sc. */
static void
scrape_until(struct scrape *sc, const char *key, double want)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	for (int i = 0; i < 250; i++) {
		scrape(sc);
		if (value_of(sc, key) == want)
			return;
		scrape_fini(sc);
		nanosleep(&tick, NULL);
	}
	scrape(sc);
}

/* ---- helpers ---- */

static struct ws_client *
connected(const char *user)
{
	struct ws_client *c = sb_connect(itest_port(), user);

	cr_assert_not_null(c, "connect as %s failed", user);
	return c;
}

/* ---- format ---- */

Test(metrics, scrape_is_valid_prometheus_text_and_needs_no_key)
{
	struct scrape a, b;
	struct http_resp h;
	char key[128];

	/* API keys are configured; the scrape (in scrape()) sends none. */
	itest_start(CONFIG);
	scrape(&a);
	scrape(&b);

	/* Every family metrics.c renders, with its type. */
	static const char *const families[][2] = {
		{ "switchboard_build_info", "gauge" },
		{ "switchboard_connections", "gauge" },
		{ "switchboard_connections_total", "counter" },
		{ "switchboard_connections_refused_total", "counter" },
		{ "switchboard_closes_total", "counter" },
		{ "switchboard_slow_consumer_closes_total", "counter" },
		{ "switchboard_idle_timeouts_total", "counter" },
		{ "switchboard_subscriptions", "gauge" },
		{ "switchboard_channels", "gauge" },
		{ "switchboard_engine_operations", "gauge" },
		{ "switchboard_messages_published_total", "counter" },
		{ "switchboard_messages_delivered_total", "counter" },
		{ "switchboard_messages_replayed_total", "counter" },
		{ "switchboard_join_leave_events_total", "counter" },
		{ "switchboard_commands_total", "counter" },
		{ "switchboard_errors_total", "counter" },
		{ "switchboard_received_messages_total", "counter" },
		{ "switchboard_received_bytes_total", "counter" },
		{ "switchboard_sent_frames_total", "counter" },
		{ "switchboard_sent_bytes_total", "counter" },
		{ "switchboard_writes_total", "counter" },
		{ "switchboard_send_queue_depth", "histogram" },
		{ "switchboard_http_responses_total", "counter" },
		{ "switchboard_webhook_events_total", "counter" },
		{ "switchboard_webhook_requests_total", "counter" },
		{ "process_cpu_seconds_total", "counter" },
		{ "process_resident_memory_bytes", "gauge" },
		{ "process_virtual_memory_bytes", "gauge" },
		{ "process_open_fds", "gauge" },
	};
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family *f = family_find(&a, families[i][0], strlen(families[i][0]));

		cr_expect_not_null(f, "family %s missing", families[i][0]);
		if (f != NULL)
			cr_expect_str_eq(f->type, families[i][1], "type of %s", f->name);
	}
	cr_expect_eq(a.nfam, sizeof(families) / sizeof(families[0]),
		     "%zu families, expected %zu: update this list and the docs", a.nfam,
		     sizeof(families) / sizeof(families[0]));

	/* Every label value of the labelled families is there, at 0 on a fresh server. */
	static const char *const zero[] = {
		"switchboard_connections_refused_total{reason=\"path\"}",
		"switchboard_connections_refused_total{reason=\"origin\"}",
		"switchboard_connections_refused_total{reason=\"per_ip_limit\"}",
		"switchboard_connections_refused_total{reason=\"per_ip_rate\"}",
		"switchboard_connections_refused_total{reason=\"capacity\"}",
		"switchboard_closes_total{code=\"1001\"}",
		"switchboard_closes_total{code=\"1003\"}",
		"switchboard_closes_total{code=\"1007\"}",
		"switchboard_closes_total{code=\"1009\"}",
		"switchboard_closes_total{code=\"4001\"}",
		"switchboard_closes_total{code=\"4002\"}",
		"switchboard_closes_total{code=\"4003\"}",
		"switchboard_closes_total{code=\"4008\"}",
		"switchboard_closes_total{code=\"4012\"}",
		"switchboard_closes_total{code=\"4029\"}",
		"switchboard_closes_total{code=\"other\"}",
		"switchboard_messages_published_total{source=\"client\"}",
		"switchboard_messages_published_total{source=\"api\"}",
		"switchboard_commands_total{type=\"invalid\"}",
		"switchboard_commands_total{type=\"connect\"}",
		"switchboard_commands_total{type=\"subscribe\"}",
		"switchboard_commands_total{type=\"unsubscribe\"}",
		"switchboard_commands_total{type=\"publish\"}",
		"switchboard_commands_total{type=\"ping\"}",
		"switchboard_commands_total{type=\"refresh\"}",
		"switchboard_commands_total{type=\"presence\"}",
		"switchboard_commands_total{type=\"presence_stats\"}",
		"switchboard_commands_total{type=\"history\"}",
		"switchboard_errors_total{code=\"bad_request\"}",
		"switchboard_errors_total{code=\"unknown_type\"}",
		"switchboard_errors_total{code=\"not_connected\"}",
		"switchboard_errors_total{code=\"already_connected\"}",
		"switchboard_errors_total{code=\"invalid_channel\"}",
		"switchboard_errors_total{code=\"forbidden\"}",
		"switchboard_errors_total{code=\"too_large\"}",
		"switchboard_errors_total{code=\"already_subscribed\"}",
		"switchboard_errors_total{code=\"not_subscribed\"}",
		"switchboard_errors_total{code=\"limit_exceeded\"}",
		"switchboard_errors_total{code=\"internal\"}",
		"switchboard_errors_total{code=\"unauthorized\"}",
		"switchboard_errors_total{code=\"token_expired\"}",
		"switchboard_errors_total{code=\"rate_limited\"}",
		"switchboard_errors_total{code=\"unavailable\"}",
		"switchboard_http_responses_total{class=\"3xx\"}",
		"switchboard_http_responses_total{class=\"4xx\"}",
		"switchboard_http_responses_total{class=\"5xx\"}",
		"switchboard_webhook_events_total{outcome=\"delivered\"}",
		"switchboard_webhook_events_total{outcome=\"failed\"}",
		"switchboard_webhook_events_total{outcome=\"dropped\"}",
		"switchboard_connections",
		"switchboard_connections_total",
		"switchboard_idle_timeouts_total",
		"switchboard_subscriptions",
		"switchboard_channels",
		"switchboard_engine_operations",
		"switchboard_messages_delivered_total",
		"switchboard_received_messages_total",
		"switchboard_sent_frames_total",
		"switchboard_writes_total",
		"switchboard_send_queue_depth_count",
	};
	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		cr_expect_eq(value_of(&a, zero[i]), 0, "%s = %g on a fresh server", zero[i],
			     value_of(&a, zero[i]));

	/* The first scrape's own response is counted by the second one, exactly once. */
	cr_expect_eq(value_of(&a, "switchboard_http_responses_total{class=\"2xx\"}"), 0);
	expect_delta(&a, &b, "switchboard_http_responses_total{class=\"2xx\"}", 1);

	/* build_info carries the version /healthz reports. */
	http_call(itest_port(), "GET", "/healthz", NULL, NULL, &h);
	cr_assert_eq(h.status, 200, "%s", h.error);
	snprintf(key, sizeof(key), "switchboard_build_info{version=\"%s\"}",
		 json_str(h.json, "version"));
	cr_expect_eq(value_of(&a, key), 1, "%s", key);
	http_resp_fini(&h);

	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

Test(metrics, other_methods_are_405_with_allow_get_and_head)
{
	static const char *const methods[] = { "POST", "PUT", "DELETE" };
	struct scrape a, b;

	itest_start(NULL);
	scrape(&a);
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		struct http_resp r;
		char *allow, *ct;

		http_call(itest_port(), methods[i], "/metrics", NULL, NULL, &r);
		cr_assert_eq(r.status, 405, "%s /metrics: %ld (%s)", methods[i], r.status, r.error);
		allow = http_resp_header(&r, "Allow");
		cr_expect(allow != NULL && strcmp(allow, "GET, HEAD") == 0,
			  "%s /metrics: Allow: %s", methods[i], allow ? allow : "(none)");
		free(allow);
		ct = http_resp_header(&r, "Content-Type");
		cr_expect(ct != NULL && strncasecmp(ct, "application/json", 16) == 0,
			  "%s /metrics: Content-Type %s", methods[i], ct ? ct : "(none)");
		free(ct);
		cr_expect_str_eq(json_str(json_object_get(r.json, "error"), "code"),
				 "method_not_allowed", "%s /metrics: %s", methods[i], r.body);
		http_resp_fini(&r);
	}
	scrape(&b);
	expect_delta(&a, &b, "switchboard_http_responses_total{class=\"4xx\"}", 3);
	expect_delta(&a, &b, "switchboard_http_responses_total{class=\"2xx\"}", 1);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

/* ---- counters ---- */

Test(metrics, traffic_moves_the_counters)
{
	enum { N = 7 };
	static const char channel[] = "room:metrics-secret-channel";
	struct ws_client *c[3];
	struct scrape a, b;
	struct http_resp r;
	size_t text_bytes = 0;
	unsigned frames = 0;

	itest_start(CONFIG);
	scrape(&a);
	for (int i = 0; i < 3; i++) {
		c[i] = connected(i == 0 ? "metrics-secret-user" : "u");
		cr_assert_eq(sb_subscribe(c[i], channel), 0);
	}
	for (int n = 0; n < N; n++)
		cr_assert_eq(sb_publish(c[0], channel, "{\"n\":1}", NULL, 0), n + 1, "publish %d",
			     n);
	http_call(itest_port(), "POST", "/api/v1/channels/room:metrics-secret-channel/messages",
		  KEY, "{\"data\":\"from the api\"}", &r);
	cr_assert_eq(r.status, 201, "API publish: %ld %s", r.status, r.body);
	http_resp_fini(&r);
	/* Every subscriber, the publisher too, gets N + 1 messages. */
	for (int i = 0; i < 3; i++)
		for (int n = 0; n < N + 1; n++) {
			size_t len = 0;
			char *t = ws_client_recv_text(c[i], WAIT_MS, &len);

			cr_assert_not_null(t, "client %d: message %d missing", i, n);
			cr_assert(strstr(t, "\"type\":\"message\"") != NULL, "client %d: %s", i, t);
			text_bytes += len;
			frames++;
			free(t);
		}
	scrape(&b);

	cr_expect_eq(value_of(&b, "switchboard_connections"), 3);
	expect_delta(&a, &b, "switchboard_connections_total", 3);
	cr_expect_eq(value_of(&b, "switchboard_subscriptions"), 3);
	cr_expect_eq(value_of(&b, "switchboard_channels"), 1);
	expect_delta(&a, &b, "switchboard_messages_published_total{source=\"client\"}", N);
	expect_delta(&a, &b, "switchboard_messages_published_total{source=\"api\"}", 1);
	/* Fan-out counts every local subscriber of every message. */
	expect_delta(&a, &b, "switchboard_messages_delivered_total", 3 * (N + 1));
	expect_delta(&a, &b, "switchboard_messages_replayed_total", 0);
	expect_delta(&a, &b, "switchboard_join_leave_events_total", 0);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"connect\"}", 3);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"subscribe\"}", 3);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"publish\"}", N);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"invalid\"}", 0);
	cr_expect_eq(family_sum(&b, "switchboard_errors_total") -
			     family_sum(&a, "switchboard_errors_total"),
		     0, "error frames were counted");
	/* Received: 3 connects, 3 subscribes, N publishes (pongs and closes are not messages). */
	expect_delta(&a, &b, "switchboard_received_messages_total", 3 + 3 + N);
	cr_expect_geq(delta(&a, &b, "switchboard_received_bytes_total"), N * strlen("{\"n\":1}"));
	/* Sent: 3 connected, 3 subscribed, N published replies, 3 (N + 1) messages. */
	expect_delta(&a, &b, "switchboard_sent_frames_total", 3 + 3 + N + 3 * (N + 1));
	cr_expect_geq(delta(&a, &b, "switchboard_sent_bytes_total"), text_bytes + 2 * frames,
		      "sent bytes grew by %g, but the messages alone were %zu bytes in %u frames",
		      delta(&a, &b, "switchboard_sent_bytes_total"), text_bytes, frames);
	cr_expect_gt(delta(&a, &b, "switchboard_writes_total"), 0);
	cr_expect_leq(delta(&a, &b, "switchboard_writes_total"),
		      delta(&a, &b, "switchboard_sent_frames_total"), "more writes than frames");
	/* One histogram observation per write. */
	cr_expect_gt(delta(&a, &b, "switchboard_send_queue_depth_count"), 0);
	cr_expect_eq(value_of(&b, "switchboard_send_queue_depth_count"),
		     value_of(&b, "switchboard_writes_total"));
	cr_expect_geq(value_of(&b, "switchboard_send_queue_depth_sum"),
		      value_of(&b, "switchboard_send_queue_depth_count"),
		      "a write happens with at least one frame queued");
	cr_expect_geq(value_of(&b, "switchboard_send_queue_depth_sum"),
		      value_of(&b, "switchboard_sent_frames_total"),
		      "every frame written was queued when its write happened");
	cr_expect_eq(value_of(&b, "switchboard_send_queue_depth_bucket{le=\"+Inf\"}"),
		     value_of(&b, "switchboard_send_queue_depth_count"));
	/* Aggregates only: no channel or user names. */
	cr_expect_null(strstr(b.body, "metrics-secret"), "a name leaked into /metrics:\n%s",
		       b.body);

	for (int i = 0; i < 3; i++)
		ws_client_free(c[i]);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

Test(metrics, errors_and_invalid_commands_are_counted_by_code)
{
	struct ws_client *c, *fresh;
	struct scrape a, b;

	itest_start(CONFIG);
	scrape(&a);
	fresh = ws_client_open_ok(itest_port());
	cr_assert_not_null(fresh);
	/* Decoded, refused: counted under its type and its error code. */
	cr_expect_eq(sb_expect_error(fresh, "not_connected",
				     "\"type\":\"subscribe\",\"channel\":\"x\""),
		     0);
	c = connected("e");
	/* Not decodable: an unknown type, and text that is not JSON. */
	cr_expect_eq(sb_expect_error(c, "unknown_type", "\"type\":\"rpc\""), 0);
	cr_assert_eq(ws_client_send_text(c, "this is not json"), 0);
	{
		json_t *e = ws_client_recv_json(c, WAIT_MS);

		cr_expect_str_eq(json_str(e, "code"), "bad_request", "reply to non-JSON text");
		json_decref(e);
	}
	/* publish "subscribers": a publish without subscribing is forbidden. */
	cr_expect_eq(sb_expect_error(c, "forbidden",
				     "\"type\":\"publish\",\"channel\":\"room:2\",\"data\":1"),
		     0);
	/* Not an error. */
	json_decref(sb_request(c, "\"type\":\"ping\""));
	scrape(&b);

	expect_delta(&a, &b, "switchboard_errors_total{code=\"not_connected\"}", 1);
	expect_delta(&a, &b, "switchboard_errors_total{code=\"unknown_type\"}", 1);
	expect_delta(&a, &b, "switchboard_errors_total{code=\"bad_request\"}", 1);
	expect_delta(&a, &b, "switchboard_errors_total{code=\"forbidden\"}", 1);
	cr_expect_eq(family_sum(&b, "switchboard_errors_total") -
			     family_sum(&a, "switchboard_errors_total"),
		     4, "other error codes moved");
	expect_delta(&a, &b, "switchboard_commands_total{type=\"invalid\"}", 2);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"subscribe\"}", 1);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"connect\"}", 1);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"publish\"}", 1);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"ping\"}", 1);
	cr_expect_eq(family_sum(&b, "switchboard_commands_total") -
			     family_sum(&a, "switchboard_commands_total"),
		     6, "one count per command received");
	expect_delta(&a, &b, "switchboard_messages_published_total{source=\"client\"}", 0);
	ws_client_free(fresh);
	ws_client_free(c);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

/* ---- closes ---- */

/* Issue 9 defect 11: a subscribe or publish that decodes but names an invalid channel is
 * counted under its type (with its invalid_channel error), not as "invalid"; a missing
 * channel still makes the frame invalid. */
Test(metrics, issue_9_an_invalid_channel_counts_under_the_command_type)
{
	struct ws_client *c;
	struct scrape a, b;

	itest_start(CONFIG);
	c = connected("ic");
	scrape(&a);
	cr_expect_eq(sb_expect_error(c, "invalid_channel",
				     "\"type\":\"subscribe\",\"channel\":\"bad channel!\""),
		     0);
	cr_expect_eq(sb_expect_error(c, "invalid_channel",
				     "\"type\":\"publish\",\"channel\":\"a/b\",\"data\":1"),
		     0);
	cr_expect_eq(sb_expect_error(c, "bad_request", "\"type\":\"subscribe\""), 0);
	scrape(&b);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"subscribe\"}", 1);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"publish\"}", 1);
	expect_delta(&a, &b, "switchboard_commands_total{type=\"invalid\"}", 1);
	expect_delta(&a, &b, "switchboard_errors_total{code=\"invalid_channel\"}", 2);
	ws_client_free(c);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

Test(metrics, binary_frame_close_is_counted_1003)
{
	struct ws_client *bad;
	struct scrape a, b;

	struct ws_client *pub;

	/* A small send queue: fan-out that kept queueing for the closing connection would
	 * overflow it and count a second close, 4008. */
	itest_start("{\"limits\":{\"send_queue_messages\":8}}");
	scrape(&a);
	bad = connected("bad");
	pub = connected("pub");
	cr_assert_eq(sb_subscribe(bad, "busy"), 0);
	cr_assert_eq(sb_subscribe(pub, "busy"), 0);
	bad->auto_pong = false;
	cr_assert_eq(ws_client_send_binary(bad, "{\"type\":\"ping\"}", 15), 0);
	for (int i = 0; i < 40; i++)
		cr_assert_gt(sb_publish(pub, "busy", "1", NULL, 0), 0);
	cr_expect_eq(ws_client_wait_close(bad, WAIT_MS, NULL), 1003, "close code %d",
		     bad->close_code);
	ws_client_free(bad);
	ws_client_free(pub);
	scrape(&b);
	expect_delta(&a, &b, "switchboard_closes_total{code=\"1003\"}", 1);
	cr_expect_eq(family_sum(&b, "switchboard_closes_total") -
			     family_sum(&a, "switchboard_closes_total"),
		     1, "other close codes moved");
	expect_delta(&a, &b, "switchboard_slow_consumer_closes_total", 0);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

/* As test_errors.c slow_consumer_is_closed_4008_and_others_get_everything: a subscriber
 * with a tiny receive buffer that never reads, and a publisher of 16 kB messages. */
Test(metrics, slow_consumer_close_is_counted_4008)
{
	enum { MSGS = 480, SIZE = 16000 };
	struct ws_open_opts o = { .rcvbuf = 4096 };
	struct ws_client *pub, *slow;
	struct scrape a, b;
	char *data = malloc(SIZE + 1);
	json_t *r;

	cr_assert_not_null(data);
	memset(data, 'x', SIZE);
	data[0] = data[SIZE - 1] = '"';
	data[SIZE] = '\0';
	itest_start("{\"namespaces\":{\"load\":{\"publish\":\"clients\"}},"
		    "\"limits\":{\"send_queue_messages\":64,\"send_queue_bytes\":262144}}");
	scrape(&a);
	o.port = itest_port();
	pub = connected("pub");
	slow = ws_client_open_opts(&o);
	cr_assert(slow != NULL && slow->upgraded);
	r = ws_client_cmd(slow, "{\"type\":\"connect\",\"id\":1}");
	cr_assert_str_eq(json_str(r, "type"), "connected");
	json_decref(r);
	cr_assert_eq(sb_subscribe(slow, "load:x"), 0);
	for (int n = 0; n < MSGS; n++)
		cr_assert_geq(sb_publish(pub, "load:x", data, NULL, 0), 1, "publish %d failed", n);
	/* The kick is counted when it happens, before the close frame leaves. */
	scrape_until(&b, "switchboard_closes_total{code=\"4008\"}", 1);
	expect_delta(&a, &b, "switchboard_closes_total{code=\"4008\"}", 1);
	expect_delta(&a, &b, "switchboard_slow_consumer_closes_total", 1);
	cr_expect_eq(family_sum(&b, "switchboard_closes_total") -
			     family_sum(&a, "switchboard_closes_total"),
		     1, "other close codes moved");
	cr_expect_eq(ws_client_wait_close(slow, 10000, NULL), 4008, "slow consumer closed with %d",
		     slow->close_code);
	scrape_fini(&b);
	/* Its close handshake completing does not count it a second time. */
	scrape_until(&b, "switchboard_connections", 1);
	expect_delta(&a, &b, "switchboard_closes_total{code=\"4008\"}", 1);
	expect_delta(&a, &b, "switchboard_slow_consumer_closes_total", 1);
	expect_delta(&a, &b, "switchboard_messages_published_total{source=\"client\"}", MSGS);
	/* Only frames that entered a queue count: not those for a session already kicked. */
	cr_expect_lt(value_of(&b, "switchboard_messages_delivered_total") -
			     value_of(&a, "switchboard_messages_delivered_total"),
		     MSGS, "delivered counts frames for the kicked subscriber");
	free(data);
	ws_client_free(pub);
	ws_client_free(slow);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

/* ---- refusals and gauges ---- */

Test(metrics, refused_upgrades_are_counted_by_reason)
{
	static const char *const paths[] = { "/nope", "/metrics", "/ws/x" };
	struct ws_client *proto_http;
	struct ws_client *ok[2], *over;
	struct scrape a, b;

	itest_start("{\"limits\":{\"max_connections\":2}}");
	scrape(&a);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		itest_expect_refused(paths[i], 404);
	/* Subprotocol "http" names the plain-HTTP protocol: refused like a wrong path. */
	proto_http = ws_client_open(itest_port(), "/ws", "http");
	cr_assert_not_null(proto_http);
	cr_expect_not(proto_http->upgraded, "subprotocol http was upgraded");
	ws_client_free(proto_http);
	ok[0] = connected("a");
	ok[1] = connected("b");
	over = ws_client_open(itest_port(), "/ws", NULL);
	cr_assert_not_null(over);
	cr_expect_not(over->upgraded, "a third connection past max_connections 2 was upgraded");
	cr_expect_eq(over->http_status, 503, "HTTP %d", over->http_status);
	ws_client_free(over);
	scrape(&b);
	expect_delta(&a, &b, "switchboard_connections_refused_total{reason=\"path\"}", 4);
	expect_delta(&a, &b, "switchboard_connections_refused_total{reason=\"capacity\"}", 1);
	cr_expect_eq(family_sum(&b, "switchboard_connections_refused_total") -
			     family_sum(&a, "switchboard_connections_refused_total"),
		     5, "other refusal reasons moved");
	expect_delta(&a, &b, "switchboard_connections_total", 2);
	cr_expect_eq(value_of(&b, "switchboard_connections"), 2);
	ws_client_free(ok[0]);
	ws_client_free(ok[1]);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

Test(metrics, gauges_return_to_zero_after_disconnect)
{
	struct ws_client *c[3];
	struct scrape a, b, z;

	itest_start(NULL);
	scrape(&a);
	for (int i = 0; i < 3; i++) {
		c[i] = connected("g");
		cr_assert_eq(sb_subscribe(c[i], "one"), 0);
		cr_assert_eq(sb_subscribe(c[i], i == 0 ? "two" : "three"), 0);
	}
	scrape(&b);
	cr_expect_eq(value_of(&b, "switchboard_connections"), 3);
	cr_expect_eq(value_of(&b, "switchboard_subscriptions"), 6);
	cr_expect_eq(value_of(&b, "switchboard_channels"), 3);
	/* Three ways to leave: a close handshake, a FIN without one, a reset. */
	cr_expect_eq(ws_client_close(c[0], WAIT_MS), 1000);
	ws_client_free(c[1]);
	ws_client_abort(c[2]);
	scrape_until(&z, "switchboard_connections", 0);
	cr_expect_eq(value_of(&z, "switchboard_connections"), 0);
	cr_expect_eq(value_of(&z, "switchboard_subscriptions"), 0);
	cr_expect_eq(value_of(&z, "switchboard_channels"), 0);
	/* Counters do not go down, and closes the clients initiated are not the server's. */
	expect_delta(&a, &z, "switchboard_connections_total", 3);
	cr_expect_eq(family_sum(&z, "switchboard_closes_total") -
			     family_sum(&a, "switchboard_closes_total"),
		     0, "client-initiated closes counted as the server's");
	expect_delta(&a, &z, "switchboard_commands_total{type=\"subscribe\"}", 6);
	scrape_fini(&a);
	scrape_fini(&b);
	scrape_fini(&z);
	itest_finish();
}

/* A client that connects and then answers nothing, not even pings, is dropped after
 * idle_timeout and counted; one that answers pings, one that closes and one whose socket
 * just ends are not. */
Test(metrics, idle_timeout_drops_are_counted)
{
	struct ws_client *silent, *alive, *closer, *gone;
	struct scrape a, b;
	struct ws_msg m;

	itest_start("{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":2}}");
	scrape(&a);
	cr_expect_eq(value_of(&a, "switchboard_idle_timeouts_total"), 0);
	silent = connected("silent");
	silent->auto_pong = false; /* pings are returned by recv and never answered */
	alive = connected("alive");
	closer = connected("closer");
	gone = connected("gone");
	cr_expect_eq(ws_client_close(closer, WAIT_MS), 1000);
	ws_client_free(gone);
	/* Wait for silent's drop while alive keeps reading, so that it answers every ping
	 * (auto_pong answers inside recv: a client that is not read for longer than the
	 * idle timeout would be dropped as well). */
	int silent_rc = -1, alive_rc = 0;
	for (int i = 0; i < 60 && silent_rc == -1 && alive_rc == 0; i++) {
		alive_rc = ws_client_recv(alive, &m, 50);
		if (alive_rc != 0)
			cr_expect_eq(alive_rc, 0, "alive got opcode %d / close %d", m.opcode,
				     alive->close_code);
		ws_msg_fini(&m);
		silent_rc = ws_client_wait_close(silent, 50, NULL);
	}
	cr_expect_neq(silent_rc, -1, "still connected 6 s into a 2 s idle timeout");
	/* Meanwhile alive answered pings (auto_pong) and stays. */
	cr_expect_eq(ws_client_recv(alive, &m, 200), 0, "alive got opcode %d / close %d", m.opcode,
		     alive->close_code);
	ws_msg_fini(&m);
	scrape_until(&b, "switchboard_connections", 1);
	expect_delta(&a, &b, "switchboard_idle_timeouts_total", 1);
	/* An idle drop sends no close frame: it is no close code of the server's. */
	cr_expect_eq(family_sum(&b, "switchboard_closes_total") -
			     family_sum(&a, "switchboard_closes_total"),
		     0, "the idle drop or a client's close counted as a server close");
	ws_client_free(silent);
	ws_client_free(alive);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}

/* ---- process ---- */

Test(metrics, process_metrics_describe_the_server)
{
	struct ws_client *c[3];
	struct scrape a, b;

	itest_start(NULL);
	scrape(&a);
	cr_expect_gt(value_of(&a, "process_resident_memory_bytes"), 0);
	cr_expect_geq(value_of(&a, "process_virtual_memory_bytes"),
		      value_of(&a, "process_resident_memory_bytes"));
	cr_expect_gt(value_of(&a, "process_open_fds"), 0);
	cr_expect_geq(value_of(&a, "process_cpu_seconds_total"), 0);
	/* Open descriptors are the server's: each WebSocket connection holds one. */
	for (int i = 0; i < 3; i++)
		c[i] = connected("p");
	scrape(&b);
	cr_expect_geq(delta(&a, &b, "process_open_fds"), 3, "open fds %g -> %g with 3 more sockets",
		      value_of(&a, "process_open_fds"), value_of(&b, "process_open_fds"));
	cr_expect_geq(delta(&a, &b, "process_cpu_seconds_total"), 0);
	for (int i = 0; i < 3; i++)
		ws_client_free(c[i]);
	scrape_fini(&a);
	scrape_fini(&b);
	itest_finish();
}
