/* loadgen.c - benchmark load generator for Switchboard (and nchan / a Node `ws` broadcast server /
 * Socket.IO for comparison).
 *
 * One thread, one epoll set (level-triggered), non-blocking sockets, its own WebSocket client.
 * The publisher and the subscribers live in this process, so the payload carries the send time
 * (CLOCK_MONOTONIC microseconds) and latency is receive time - send time.
 *
 * Receive path: one read() of up to 256 KiB per ready socket into a shared buffer, then every
 * complete frame in it is handled in place. Per connection only the incomplete tail is kept
 * ("carry", copied in front of the next read) and fragmented messages are reassembled in a
 * per-connection buffer. Buffers are allocated on first need and reused; nothing is allocated
 * per frame.
 *
 * See bench/loadgen.h for the file layout and `loadgen --help` for the command line.
 *
 * Output: one JSON object on one line on stdout (fields that do not apply are null):
 *   target, tls (--tls: wss://), tls_version and tls_cipher (as negotiated by the first
 *   connection), workload, subs, slow, connected (subscribers set up; churn: cycles completed)
 *   duration_s        measured interval: first publish .. drain complete (or drain timeout, or the
 *                     last progress when stalled); idle: the 2 s settle; churn: the whole phase
 *   published, delivered (deliveries to non-slow subscribers in that interval)
 *   deliveries_per_s  delivered / duration_s
 *   lat_p50/p90/p99/max_ms  receive time - send time, log-linear histogram (< 0.8 % error)
 *   lost              sum over open non-slow subscribers of (published - distinct received),
 *                     counted at the end of the drain (so "not received within 3 s" is lost;
 *                     see drained)
 *   duplicated        seq equal to the previous one; reordered: seq lower than the previous one
 *   errors            protocol errors, unparsable payloads, error replies, subscribers or the
 *                     publisher closed by the server during the run
 *   stalled           fanout: the window did not move for 2 s and the phase was stopped
 *   server_cpu_pct    (utime+stime delta of /proc/PID/stat) / duration; server_rss_kb_*:
 *                     VmRSS at start, end, max (idle: start is before connecting)
 *   rss_per_conn_bytes  idle: (VmRSS 2 s after all subscribed - before connecting) / subs
 *   conn_per_s, churn_failures  churn
 *   slow_closed, slow_close_codes  --slow: slow subscribers the server closed, by close code
 *                     (0: EOF or reset without a close frame)
 *   rss_samples_kb    VmRSS every second during the measured phase
 *   rooms: channels, publishers (connections), rate, deliveries_expected_per_s (rate x
 *                     subscribers per channel), published_expected (due before the end),
 *                     sent_per_s, accepted_per_s and acked (publishes the server acknowledged:
 *                     switchboard, nchan), publish_lag_p50/p99/max_ms (due time -> sent);
 *                     lost, duplicated and reordered are counted per channel
 * Extras: drained (every live subscriber got every message before the drain timeout),
 *   subs_closed, stale (deliveries stamped before this process started, ignored),
 *   published_per_s, setup_s, loadgen_cpu_pct (this process, user+sys), churn_cycle_p50/p99_ms
 *   (connect to close complete).
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define READ_MAX (256u * 1024u)	 /* bytes per read() */
#define CARRY_COPY (64u * 1024u) /* tails up to this are copied in front of the next read */
#define RBUF_SIZE (CARRY_COPY + READ_MAX)
#define MAX_MESSAGE (64u * 1024u * 1024u)
#define MAX_HTTP_HEAD 16384u
#define MAX_EVENTS 1024
#define SETUP_CONCURRENCY 256 /* connections being set up at once */
#define SETUP_RETRIES 3
#define N_SRC_ADDRS 200 /* source addresses 127.0.0.1 .. 127.0.0.200 */
#define SLOW_RCVBUF 4096
#define STALL_US 2000000
#define DRAIN_US 3000000
#define SLOW_DRAIN_US 5000000
#define SLOW_QUIET_US 1000000
#define CHURN_SETUP_US 10000000
#define CHURN_CLOSE_US 2000000
#define RATE_MAX_BURST 4	    /* rate: at most this many messages sent at once */
#define ROOMS_BURST 64		    /* rooms: at most this many messages queued per loop turn */
#define ROOMS_BACKLOG (16u * 1024u) /* rooms: a publisher with this much unsent waits */
#define ROOMS_GRACE_US 1000000	    /* rooms: how long past the end messages due may still go */
#define PUB_BACKLOG_MAX (1u << 20)  /* fanout: stop queueing when the publisher has this unsent */
#define TIMER_TAG UINT64_MAX
#define MAX_CLOSE_CODES 16
#define MAX_LOGGED 10

enum target { T_SWITCHBOARD, T_NCHAN, T_WS, T_SOCKETIO };
enum workload { W_IDLE, W_FANOUT, W_RATE, W_CHURN, W_ROOMS };
enum role { R_SUB, R_SLOW, R_PUB, R_CHURN };
enum state {
	S_FREE,
	S_RETRY,
	S_CONNECTING,
	S_TLS,
	S_HANDSHAKE,
	S_SUBSCRIBING,
	S_READY,
	S_CLOSING,
	S_DEAD
};
enum phase { PH_SETUP, PH_SETTLE, PH_RUN, PH_DRAIN, PH_POST, PH_CHURN };
/* Why a connection ended. */
enum down { D_TRANSPORT, D_EOF, D_CLOSE, D_HTTP, D_PROTO, D_TIMEOUT };

static const char *const target_names[] = { "switchboard", "nchan", "ws", "socketio" };
static const char *const workload_names[] = { "idle", "fanout", "rate", "churn", "rooms" };
static const char *const role_names[] = { "subscriber", "slow subscriber", "publisher", "churn" };

struct conn {
	/* hot: touched for every frame */
	int fd;
	uint8_t role, state;
	uint8_t frag_op; /* opcode of the message being reassembled, 0 if none */
	uint8_t in_epoll;
	uint32_t ev; /* current epoll interest */
	uint64_t last_seq, distinct, dups, reorders;
	uint8_t *carry;
	uint32_t carry_len, carry_cap;
	SSL *ssl; /* --tls: the connection's TLS state, else NULL */
	/* cold */
	uint8_t close_sent, close_rcvd, retries;
	uint16_t close_code; /* code of the close frame received (1005: no code), 0: none */
	uint32_t id;	     /* chooses the source address */
	uint32_t chan;	     /* rooms: a subscriber's channel, or a publisher's number */
	uint8_t *frag;
	uint32_t frag_len, frag_cap;
	uint8_t *out;
	uint32_t out_off, out_len, out_cap;
	int64_t t0_us, deadline_us;
	char accept[29];
};

static struct options {
	enum target target;
	enum workload workload;
	char host[64];
	bool v6, tls;
	int port;
	long subs, slow, window, size, conns, concurrency, channels, publishers;
	double duration, rate, connect_timeout;
	int server_pid;
	char channel[256];
} o = {
	.target = T_SWITCHBOARD,
	.port = -1,
	.subs = 1000,
	.slow = 0,
	.window = 32,
	.size = 100,
	.conns = 20000,
	.concurrency = 64,
	.channels = 1000,
	.publishers = 8,
	.duration = 10,
	.rate = 200,
	.connect_timeout = 60,
	.channel = "bench",
};

static struct {
	int ep, timerfd;
	SSL_CTX *tls;			      /* --tls */
	char tls_version[16], tls_cipher[64]; /* negotiated by the first TLS connection */
	bool timer_fired;
	enum phase phase;
	struct conn *c;
	size_t n;
	size_t pub; /* index of the publisher in c[] */
	struct sockaddr_storage dst;
	socklen_t dstlen;
	char hosthdr[80];
	uint64_t rng;
	int64_t start_us; /* program start: payloads stamped before it are stale */

	/* setup */
	long inprog, ready_subs, ready_slow, ready_total;
	bool pub_ready;
	char setup_err[300];
	uint32_t *retry_q;
	size_t retry_n;
	double setup_s;

	/* publishing and delivery */
	uint64_t published, delivered, errors, dups, reorders, stale;
	long live;		/* ready, open, non-slow subscribers */
	uint64_t live_distinct; /* sum of `distinct` over live subscribers */
	uint32_t *ring;		/* fanout: receipts per seq, indexed by seq & ring_mask */
	uint64_t ring_mask, wm; /* wm: every live subscriber has everything <= wm */
	int64_t last_adv_us, t_first_us, t_pub_end_us, t_end_us;
	bool stalled, pub_dead, drained;
	long subs_closed;
	uint64_t rate_skipped;
	uint8_t *pay; /* message being published */
	size_t pay_prefix, pay_cap;
	struct lg_hist lat;
	int logged;

	/* slow subscribers */
	long slow_closed;
	int64_t slow_last_us;
	struct {
		unsigned code;
		long n;
	} codes[MAX_CLOSE_CODES];
	int ncodes;

	/* rooms: channel k is published by publisher k % npub (one per channel for the targets
	 * that address channels by URL), so each channel's messages leave through one
	 * connection and its subscribers can check the order. */
	uint64_t *chan_pub;	 /* messages published on each channel (its last seq) */
	long *chan_live;	 /* live subscribers of each channel */
	uint64_t live_expect;	 /* sum over live subscribers of their channel's chan_pub */
	long npub;		 /* publishers: c[o.subs .. o.subs + npub) */
	uint64_t pub_expected;	 /* messages the schedule had due before the end */
	struct lg_hist publag;	 /* due time -> queued to the socket, microseconds */
	uint64_t acks, acks_run; /* publish acknowledgements: in all, while publishing */

	/* churn */
	long churn_started, churn_ok, churn_failed;
	struct lg_hist cycle;

	/* server sampling */
	bool have_rss;
	long rss_start, rss_end, rss_max;
	long *rss;
	size_t nrss, rss_cap;
	int64_t next_rss_us;
	uint64_t cpu0;
	bool cpu_ok;
	double cpu_pct;
	double lg_cpu_pct;
	struct rusage ru0;
	int64_t ru0_us;
} g;

static uint8_t rbuf[RBUF_SIZE];

static void conn_down(struct conn *c, enum down kind, const char *why);

/* ---------------------------------------------------------------- utilities */

static void
vnote(const char *fmt, va_list ap)
{
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
}

static void
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
	exit(code);
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die(1, "out of memory");
	return p;
}

static uint64_t
rng64(void)
{
	/* xorshift64* */
	g.rng ^= g.rng >> 12;
	g.rng ^= g.rng << 25;
	g.rng ^= g.rng >> 27;
	return g.rng * 0x2545F4914F6CDD1DULL;
}

static size_t
fmt_u64(char *dst, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

static size_t
conn_index(const struct conn *c)
{
	return (size_t)(c - g.c);
}

/* ---------------------------------------------------------------- epoll and output */

static void
ep_set(struct conn *c, uint32_t events)
{
	struct epoll_event ev;

	if (c->in_epoll && c->ev == events)
		return;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.u64 = conn_index(c);
	if (epoll_ctl(g.ep, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die(1, "epoll_ctl: %s", strerror(errno));
	c->in_epoll = 1;
	c->ev = events;
}

static void
ep_remove(struct conn *c)
{
	if (!c->in_epoll)
		return;
	epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
	c->in_epoll = 0;
	c->ev = 0;
}

static uint8_t *
out_reserve(struct conn *c, size_t n)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if ((size_t)c->out_len + n > c->out_cap) {
		size_t cap;

		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		cap = c->out_cap ? c->out_cap : 1024;
		while (cap < (size_t)c->out_len + n)
			cap *= 2;
		if (cap > UINT32_MAX)
			die(1, "output buffer too large");
		if (cap != c->out_cap) {
			c->out = xrealloc(c->out, cap);
			c->out_cap = (uint32_t)cap;
		}
	}
	return c->out + c->out_len;
}

/* Write what is queued. Returns -1 if the connection went down. */
static int
conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		size_t len = c->out_len - c->out_off;
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, c->out + c->out_off,
					  len > INT32_MAX ? INT32_MAX : (int)len);

			if (r > 0) {
				c->out_off += (uint32_t)r;
				continue;
			}
			switch (SSL_get_error(c->ssl, r)) {
			case SSL_ERROR_WANT_WRITE:
				if (c->in_epoll)
					ep_set(c, c->ev | EPOLLOUT);
				return 0;
			case SSL_ERROR_WANT_READ:
				/* Resumed by the next readable event's flush; not by EPOLLOUT,
				 * which would spin. */
				if (c->in_epoll && (c->ev & EPOLLOUT))
					ep_set(c, c->ev & ~(uint32_t)EPOLLOUT);
				return 0;
			default:
				ERR_clear_error();
				conn_down(c, D_TRANSPORT, "TLS write failed");
				return -1;
			}
		}
		n = send(c->fd, c->out + c->out_off, len, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (uint32_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->in_epoll && c->state != S_CONNECTING)
				ep_set(c, c->ev | EPOLLOUT);
			return 0;
		}
		conn_down(c, D_TRANSPORT, n < 0 ? strerror(errno) : "send returned 0");
		return -1;
	}
	c->out_off = c->out_len = 0;
	if (c->in_epoll && (c->ev & EPOLLOUT) && c->state != S_CONNECTING)
		ep_set(c, c->ev & ~(uint32_t)EPOLLOUT);
	return 0;
}

/* Queue one masked frame (not sent until conn_flush). */
static void
ws_queue(struct conn *c, unsigned op, const void *payload, size_t len)
{
	uint8_t *p = out_reserve(c, len + 14);
	uint32_t mask = (uint32_t)rng64();
	size_t h = lg_ws_header(p, op, len, mask);

	if (len)
		memcpy(p + h, payload, len);
	lg_ws_mask(p + h, len, mask);
	c->out_len += (uint32_t)(h + len);
}

static void
ws_queue_str(struct conn *c, const char *s)
{
	ws_queue(c, 1, s, strlen(s));
}

static void
ws_queue_close(struct conn *c, unsigned code)
{
	uint8_t b[2] = { (uint8_t)(code >> 8), (uint8_t)code };

	ws_queue(c, 8, b, code ? 2 : 0);
	c->close_sent = 1;
}

/* ---------------------------------------------------------------- server sampling */

static void
rss_sample(int64_t now)
{
	long kb;

	if (!o.server_pid || now < g.next_rss_us)
		return;
	g.next_rss_us = now + 1000000;
	kb = lg_proc_rss_kb(o.server_pid);
	if (kb < 0)
		return;
	if (g.nrss == g.rss_cap) {
		g.rss_cap = g.rss_cap ? 2 * g.rss_cap : 64;
		g.rss = xrealloc(g.rss, g.rss_cap * sizeof *g.rss);
	}
	g.rss[g.nrss++] = kb;
	if (kb > g.rss_max)
		g.rss_max = kb;
	g.rss_end = kb;
}

/* Start of a measured phase: server CPU, loadgen CPU, first RSS sample. */
static void
measure_begin(int64_t now)
{
	getrusage(RUSAGE_SELF, &g.ru0);
	g.ru0_us = now;
	if (!o.server_pid)
		return;
	g.cpu_ok = lg_proc_cpu_ticks(o.server_pid, &g.cpu0) == 0;
	g.rss_start = lg_proc_rss_kb(o.server_pid);
	g.have_rss = g.rss_start >= 0;
	g.rss_max = g.rss_start;
	g.rss_end = g.rss_start;
	g.next_rss_us = now;
	rss_sample(now);
}

static double
tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void
measure_end(int64_t now)
{
	struct rusage ru;
	double wall = (double)(now - g.ru0_us) / 1e6;
	uint64_t t1;

	getrusage(RUSAGE_SELF, &ru);
	if (wall > 0)
		g.lg_cpu_pct = (tv_s(ru.ru_utime) + tv_s(ru.ru_stime) - tv_s(g.ru0.ru_utime) -
				tv_s(g.ru0.ru_stime)) /
			       wall * 100.0;
	if (!o.server_pid)
		return;
	if (g.cpu_ok && lg_proc_cpu_ticks(o.server_pid, &t1) == 0 && wall > 0)
		g.cpu_pct = (double)(t1 - g.cpu0) / (double)sysconf(_SC_CLK_TCK) / wall * 100.0;
	else
		g.cpu_ok = false;
	g.next_rss_us = 0;
	rss_sample(now);
}

/* ---------------------------------------------------------------- connections */

/* Channel k of the rooms workload ("room-<k>"); --channel for the other workloads. */
static const char *
chan_name(uint32_t k, char *buf, size_t len)
{
	if (o.workload != W_ROOMS)
		return o.channel;
	snprintf(buf, len, "room-%u", k);
	return buf;
}

static const char *
conn_path(const struct conn *c, char *buf, size_t len)
{
	bool pub = c->role == R_PUB;
	char name[32];

	switch (o.target) {
	case T_SWITCHBOARD:
		snprintf(buf, len, "/ws");
		break;
	case T_WS:
		if (o.workload != W_ROOMS) {
			/* The one broadcast of the Node peer (older peers have no other). */
			snprintf(buf, len, "%s", pub ? "/pub" : "/sub");
			break;
		}
		/* Rooms address channels by URL, as nchan does. */
		/* fallthrough */
	case T_NCHAN:
		snprintf(buf, len, "%s%s", pub ? "/pub/" : "/sub/",
			 chan_name(c->chan, name, sizeof name));
		break;
	case T_SOCKETIO:
		snprintf(buf, len, "/socket.io/?EIO=4&transport=websocket");
		break;
	}
	return buf;
}

static void
conn_reset(struct conn *c)
{
	c->fd = -1;
	c->frag_op = 0;
	c->in_epoll = 0;
	c->ev = 0;
	c->last_seq = c->distinct = c->dups = c->reorders = 0;
	c->carry_len = 0;
	c->ssl = NULL;
	c->close_sent = c->close_rcvd = 0;
	c->close_code = 0;
	c->frag_len = 0;
	c->out_off = c->out_len = 0;
	c->deadline_us = 0;
}

/* Start a non-blocking connect. Returns 0 or -errno. */
static int
conn_open(struct conn *c, int64_t now)
{
	int fd, one = 1, r;

	conn_reset(c);
	fd = socket(o.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (c->role == R_SLOW) {
		int rb = SLOW_RCVBUF;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
	}
	if (!o.v6) {
		struct sockaddr_in src;

		memset(&src, 0, sizeof src);
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(0x7f000000u | (c->id % N_SRC_ADDRS + 1));
		/* Let connect() pick the port per 4-tuple, not bind() per address. */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
			r = -errno;
			close(fd);
			return r;
		}
	}
	if (connect(fd, (struct sockaddr *)&g.dst, g.dstlen) < 0 && errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return r;
	}
	c->fd = fd;
	c->state = S_CONNECTING;
	c->t0_us = now;
	ep_set(c, EPOLLOUT);
	return 0;
}

/* The WebSocket upgrade request, once TCP (and TLS) is up. */
static void
send_upgrade(struct conn *c)
{
	uint8_t rnd[16];
	char key[25], path[300], *req;
	uint64_t r1 = rng64(), r2 = rng64();
	int n;

	memcpy(rnd, &r1, 8);
	memcpy(rnd + 8, &r2, 8);
	lg_base64(rnd, sizeof rnd, key);
	lg_ws_accept(key, c->accept);
	req = (char *)out_reserve(c, 512 + strlen(o.channel));
	n = sprintf(req,
		    "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		    conn_path(c, path, sizeof path), g.hosthdr, key);
	c->out_len += (uint32_t)n;
	c->state = S_HANDSHAKE;
	ep_set(c, EPOLLIN);
	conn_flush(c);
}

/* One step of the TLS handshake (no certificate check: loopback benchmark). */
static void
tls_step(struct conn *c)
{
	int r = SSL_connect(c->ssl);

	if (r == 1) {
		if (!g.tls_version[0]) {
			snprintf(g.tls_version, sizeof g.tls_version, "%s",
				 SSL_get_version(c->ssl));
			snprintf(g.tls_cipher, sizeof g.tls_cipher, "%s",
				 SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)));
		}
		send_upgrade(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		ep_set(c, EPOLLIN);
		break;
	case SSL_ERROR_WANT_WRITE:
		ep_set(c, EPOLLOUT);
		break;
	default:
		ERR_clear_error();
		conn_down(c, D_TRANSPORT, "TLS handshake failed");
	}
}

static void
on_connect_done(struct conn *c)
{
	int err = 0;
	socklen_t l = sizeof err;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		err = errno;
	if (err) {
		conn_down(c, D_TRANSPORT, strerror(err));
		return;
	}
	if (g.tls == NULL) {
		send_upgrade(c);
		return;
	}
	c->ssl = SSL_new(g.tls);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		die(1, "SSL_new failed");
	c->state = S_TLS;
	tls_step(c);
}

static void
record_close_code(unsigned code)
{
	int i;

	for (i = 0; i < g.ncodes; i++)
		if (g.codes[i].code == code) {
			g.codes[i].n++;
			return;
		}
	if (g.ncodes < MAX_CLOSE_CODES) {
		g.codes[g.ncodes].code = code;
		g.codes[g.ncodes].n = 1;
		g.ncodes++;
	}
}

static void
churn_finish(struct conn *c, bool ok, const char *why, int64_t now)
{
	if (ok) {
		g.churn_ok++;
		lg_hist_add(&g.cycle, (uint64_t)(now - c->t0_us));
	} else {
		g.churn_failed++;
		if (g.logged++ < MAX_LOGGED)
			note("churn connection %u failed: %s", c->id, why);
	}
	c->state = S_FREE;
}

/* The connection is finished (EOF, reset, close frame, error, timeout): close it and account. */
static void
conn_down(struct conn *c, enum down kind, const char *why)
{
	enum state prev = (enum state)c->state;
	char msg[200];

	if (c->fd < 0)
		return;
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	c->in_epoll = 0;
	c->ev = 0;
	c->state = S_DEAD;
	c->carry_len = 0;
	c->frag_op = 0;
	c->frag_len = 0;
	c->out_off = c->out_len = 0;

	if (c->close_rcvd)
		snprintf(msg, sizeof msg, "%s (close code %u)", why, c->close_code);
	else
		snprintf(msg, sizeof msg, "%s", why);

	if (c->role == R_CHURN) {
		churn_finish(c,
			     prev == S_CLOSING &&
				     (kind == D_EOF || kind == D_CLOSE || c->close_rcvd),
			     msg, lg_mono_us());
		return;
	}
	if (prev < S_READY) {
		g.inprog--;
		if (g.phase == PH_SETUP && (kind == D_TRANSPORT || kind == D_EOF) &&
		    c->retries < SETUP_RETRIES) {
			c->retries++;
			c->state = S_RETRY;
			g.retry_q[g.retry_n++] = (uint32_t)conn_index(c);
			return;
		}
		if (!g.setup_err[0])
			snprintf(g.setup_err, sizeof g.setup_err, "%s %u: %s", role_names[c->role],
				 c->id, msg);
		return;
	}
	switch (c->role) {
	case R_SUB:
		g.live--;
		g.live_distinct -= c->distinct;
		if (g.chan_live != NULL) {
			g.chan_live[c->chan]--;
			g.live_expect -= g.chan_pub[c->chan];
		}
		if (g.ring) {
			uint64_t s;

			for (s = g.wm + 1; s <= c->last_seq; s++)
				g.ring[s & g.ring_mask]--;
		}
		g.subs_closed++;
		g.errors++;
		if (g.logged++ < MAX_LOGGED)
			note("subscriber %u closed: %s", c->id, msg);
		break;
	case R_SLOW:
		g.slow_closed++;
		record_close_code(c->close_rcvd ? c->close_code : 0);
		break;
	case R_PUB:
		g.pub_dead = true;
		g.errors++;
		note("publisher closed: %s", msg);
		break;
	default:
		break;
	}
}

static void
proto_error(struct conn *c, const char *why)
{
	g.errors++;
	if (g.logged++ < MAX_LOGGED)
		note("%s %u: protocol error: %s", role_names[c->role], c->id, why);
	conn_down(c, D_PROTO, why);
}

static void
on_ready(struct conn *c, int64_t now)
{
	c->state = S_READY;
	switch (c->role) {
	case R_SUB:
		g.inprog--;
		g.ready_total++;
		g.ready_subs++;
		g.live++;
		if (g.chan_live != NULL)
			g.chan_live[c->chan]++;
		break;
	case R_SLOW:
		g.inprog--;
		g.ready_total++;
		g.ready_slow++;
		/* Never read again (until the end of the phase). */
		ep_remove(c);
		break;
	case R_PUB:
		g.inprog--;
		g.ready_total++;
		g.pub_ready = true;
		break;
	case R_CHURN:
		ws_queue_close(c, 1000);
		c->state = S_CLOSING;
		c->deadline_us = now + CHURN_CLOSE_US;
		conn_flush(c);
		break;
	}
}

/* The 101 arrived. */
static void
on_ws_open(struct conn *c, int64_t now)
{
	char buf[400], name[32];

	if (o.target == T_NCHAN || o.target == T_WS) {
		/* nchan and ws: the upgrade is the subscription. */
		on_ready(c, now);
		return;
	}
	c->state = S_SUBSCRIBING;
	if (o.target == T_SOCKETIO)
		return; /* the server speaks first (sio_setup) */
	ws_queue_str(c, "{\"type\":\"connect\"}");
	if (c->role != R_PUB) {
		snprintf(buf, sizeof buf, "{\"type\":\"subscribe\",\"channel\":\"%s\"}",
			 chan_name(c->chan, name, sizeof name));
		ws_queue_str(c, buf);
	}
	conn_flush(c);
}

/* ---------------------------------------------------------------- messages */

static bool
has(const uint8_t *d, size_t len, const char *s)
{
	return memmem(d, len, s, strlen(s)) != NULL;
}

static void
log_frame(const struct conn *c, const char *what, const uint8_t *d, size_t len)
{
	char buf[161];
	size_t i, n = len < 160 ? len : 160;

	if (g.logged++ >= MAX_LOGGED)
		return;
	for (i = 0; i < n; i++)
		buf[i] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
	buf[n] = '\0';
	note("%s %u: %s: %s", role_names[c->role], c->id, what, buf);
}

/* A delivery to a (non-slow) subscriber: the payload is at the first '#':
 * "#<seq>:<send_time_us>#", rooms "#<seq>:<send_time_us>#<channel>#". */
static void
deliver(struct conn *c, const uint8_t *d, size_t len, int64_t now)
{
	const uint8_t *p = memchr(d, '#', len), *e = d + len;
	uint64_t seq = 0, t = 0, top = g.published;
	int64_t lat;
	const uint8_t *q;

	if (g.phase != PH_RUN && g.phase != PH_DRAIN && g.phase != PH_SETTLE)
		return;
	if (!p)
		goto bad;
	for (q = ++p; p < e && (unsigned)(*p - '0') <= 9u; p++)
		seq = seq * 10 + (unsigned)(*p - '0');
	if (p == q || p >= e || *p != ':')
		goto bad;
	for (q = ++p; p < e && (unsigned)(*p - '0') <= 9u; p++)
		t = t * 10 + (unsigned)(*p - '0');
	if (p == q || p >= e || *p != '#')
		goto bad;
	if (o.workload == W_ROOMS) {
		uint64_t k = 0;

		for (q = ++p; p < e && (unsigned)(*p - '0') <= 9u; p++)
			k = k * 10 + (unsigned)(*p - '0');
		if (p == q || p >= e || *p != '#')
			goto bad;
		if (k != c->chan) {
			g.errors++;
			log_frame(c, "delivery of another channel's message", d, len);
			return;
		}
		top = g.chan_pub[k];
	}
	if ((int64_t)t < g.start_us) {
		/* Published before this process started: left over from an earlier run. */
		g.stale++;
		return;
	}
	if (seq == 0 || seq > top) {
		g.errors++;
		log_frame(c, "delivery of a message not published", d, len);
		return;
	}
	lat = now - (int64_t)t;
	lg_hist_add(&g.lat, lat > 0 ? (uint64_t)lat : 0);
	g.delivered++;
	if (seq > c->last_seq) {
		if (g.ring) {
			/* Everything up to seq counts as received for the window (a gap is loss,
			 * found at the end). Only seqs above the watermark are still tracked. */
			uint64_t s = c->last_seq > g.wm ? c->last_seq : g.wm;

			for (s++; s <= seq; s++)
				g.ring[s & g.ring_mask]++;
		}
		c->last_seq = seq;
		c->distinct++;
		g.live_distinct++;
	} else if (seq == c->last_seq) {
		c->dups++;
		g.dups++;
	} else {
		c->reorders++;
		g.reorders++;
		c->distinct++;
		g.live_distinct++;
	}
	return;
bad:
	g.errors++;
	log_frame(c, "unparsable delivery", d, len);
}

/* Is this message to a subscriber a delivery (not a reply or a control packet)? */
static bool
is_delivery(const uint8_t *d, size_t len)
{
	static const char msg_head[] = "{\"type\":\"message\"";
	static const char sio_head[] = "42[\"msg\"";

	switch (o.target) {
	case T_SWITCHBOARD:
		return (len >= sizeof msg_head - 1 &&
			memcmp(d, msg_head, sizeof msg_head - 1) == 0) ||
		       has(d, len, "\"type\":\"message\"");
	case T_SOCKETIO:
		return len >= sizeof sio_head - 1 && memcmp(d, sio_head, sizeof sio_head - 1) == 0;
	default:
		return true;
	}
}

/* Socket.IO setup (Engine.IO v4, Socket.IO v5 over a WebSocket): the server opens with
 * "0{...}", the client connects to the main namespace ("40", answered "40{...}"), then a
 * subscriber sends 42["join","<channel>"] and is ready at 42["joined",...] (the peer's
 * acknowledgement, bench/peers/node/socketio.js); a publisher is ready at "40". */
static void
sio_setup(struct conn *c, const uint8_t *d, size_t len, int64_t now)
{
	char buf[400], name[32];

	if (len >= 2 && d[0] == '0' && d[1] == '{') {
		ws_queue_str(c, "40");
		conn_flush(c);
	} else if (len >= 2 && d[0] == '4' && d[1] == '0') {
		if (c->role == R_PUB) {
			on_ready(c, now);
			return;
		}
		snprintf(buf, sizeof buf, "42[\"join\",\"%s\"]",
			 chan_name(c->chan, name, sizeof name));
		ws_queue_str(c, buf);
		conn_flush(c);
	} else if (has(d, len, "42[\"joined\"")) {
		on_ready(c, now);
	} else if (len >= 2 && d[0] == '4' && d[1] == '4') {
		conn_down(c, D_PROTO, "Socket.IO connect refused");
	}
}

/* Switchboard acknowledges each publish ("published"), nchan answers each published frame
 * with the channel's info; ws and socketio answer nothing. */
static void
on_publisher_reply(struct conn *c, const uint8_t *d, size_t len)
{
	if (o.target == T_SWITCHBOARD && has(d, len, "\"type\":\"error\"")) {
		g.errors++;
		log_frame(c, "error", d, len);
		return;
	}
	if (o.target == T_NCHAN ||
	    (o.target == T_SWITCHBOARD && has(d, len, "\"type\":\"published\""))) {
		g.acks++;
		if (g.phase == PH_RUN)
			g.acks_run++;
	}
}

static void
on_message(struct conn *c, const uint8_t *d, size_t len, int64_t now)
{
	if (o.target == T_SOCKETIO && len == 1 && d[0] == '2') {
		/* Engine.IO ping: pong, or the server drops the connection. */
		ws_queue_str(c, "3");
		conn_flush(c);
		return;
	}
	switch (c->state) {
	case S_READY:
		if (c->role == R_SUB) {
			if (is_delivery(d, len)) {
				deliver(c, d, len, now);
			} else if (has(d, len, "\"type\":\"error\"")) {
				g.errors++;
				log_frame(c, "error", d, len);
			}
		} else if (c->role == R_PUB) {
			on_publisher_reply(c, d, len);
		}
		/* Slow subscribers (read only at the end) and publisher replies: ignored. */
		break;
	case S_SUBSCRIBING:
		if (o.target == T_SOCKETIO) {
			sio_setup(c, d, len, now);
		} else if (has(d, len,
			       c->role == R_PUB ? "\"type\":\"connected\""
						: "\"type\":\"subscribed\"")) {
			on_ready(c, now);
		} else if (has(d, len, "\"type\":\"error\"")) {
			char buf[200];
			size_t i, n = len < 150 ? len : 150;

			for (i = 0; i < n; i++)
				buf[i] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
			buf[n] = '\0';
			conn_down(c, D_PROTO, buf);
		}
		break;
	default:
		break;
	}
}

static int
frag_append(struct conn *c, const uint8_t *p, size_t n)
{
	if ((size_t)c->frag_len + n > MAX_MESSAGE)
		return -1;
	if ((size_t)c->frag_len + n > c->frag_cap) {
		size_t cap = c->frag_cap ? c->frag_cap : 4096;

		while (cap < (size_t)c->frag_len + n)
			cap *= 2;
		c->frag = xrealloc(c->frag, cap);
		c->frag_cap = (uint32_t)cap;
	}
	memcpy(c->frag + c->frag_len, p, n);
	c->frag_len += (uint32_t)n;
	return 0;
}

static void
on_frame(struct conn *c, uint8_t b0, const uint8_t *p, size_t n, int64_t now)
{
	unsigned op = b0 & 0x0fu;
	bool fin = (b0 & 0x80u) != 0;

	if (b0 & 0x70u) {
		proto_error(c, "RSV bits set");
		return;
	}
	switch (op) {
	case 1:
	case 2:
		if (c->frag_op) {
			proto_error(c, "data frame inside a fragmented message");
			return;
		}
		if (fin) {
			on_message(c, p, n, now);
			return;
		}
		c->frag_op = (uint8_t)op;
		c->frag_len = 0;
		if (frag_append(c, p, n) < 0)
			proto_error(c, "message too large");
		return;
	case 0:
		if (!c->frag_op) {
			proto_error(c, "continuation frame without a message");
			return;
		}
		if (frag_append(c, p, n) < 0) {
			proto_error(c, "message too large");
			return;
		}
		if (fin) {
			c->frag_op = 0;
			on_message(c, c->frag, c->frag_len, now);
			c->frag_len = 0;
		}
		return;
	case 8:
		if (!fin || n > 125 || n == 1) {
			proto_error(c, "bad close frame");
			return;
		}
		c->close_rcvd = 1;
		c->close_code = n >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 1005;
		if (!c->close_sent) {
			ws_queue_close(c, n >= 2 ? c->close_code : 0);
			if (conn_flush(c) < 0)
				return;
		}
		/* Close the socket at once, also in churn. Waiting for the server's FIN first
		 * (RFC 6455 7.1.1) was measured slower: it moves TIME_WAIT to the server, where
		 * connect() cannot steer clear of those 4-tuples, and adds lws's close delay. */
		conn_down(c, D_CLOSE, "closed by the server");
		return;
	case 9:
		if (!fin || n > 125) {
			proto_error(c, "bad ping frame");
			return;
		}
		ws_queue(c, 10, p, n);
		conn_flush(c);
		return;
	case 10:
		return;
	default:
		proto_error(c, "unknown opcode");
		return;
	}
}

/* Length of the frame at the start of buf, 0 if its header is not complete yet. */
static uint64_t
frame_total(const uint8_t *b, size_t len)
{
	uint64_t pl;
	size_t h = 2;

	if (len < 2)
		return 0;
	pl = b[1] & 0x7fu;
	if (pl == 126) {
		if (len < 4)
			return 0;
		pl = (uint64_t)b[2] << 8 | b[3];
		h = 4;
	} else if (pl == 127) {
		unsigned i;

		if (len < 10)
			return 0;
		for (pl = 0, i = 0; i < 8; i++)
			pl = pl << 8 | b[2 + i];
		h = 10;
	}
	if (b[1] & 0x80u)
		h += 4;
	return pl > MAX_MESSAGE ? UINT64_MAX : h + pl;
}

/* Handle everything complete in buf. Returns the bytes consumed (the rest is kept). */
static size_t
process(struct conn *c, uint8_t *buf, size_t len, int64_t now)
{
	size_t p = 0;

	if (c->state == S_HANDSHAKE) {
		const uint8_t *e = memmem(buf, len, "\r\n\r\n", 4);
		char err[200];

		if (!e) {
			if (len > MAX_HTTP_HEAD)
				conn_down(c, D_HTTP, "HTTP response head too long");
			return 0;
		}
		p = (size_t)(e + 4 - buf);
		if (lg_http_check_upgrade((const char *)buf, p, c->accept, err, sizeof err) < 0) {
			conn_down(c, D_HTTP, err);
			return 0;
		}
		on_ws_open(c, now);
		if (c->fd < 0)
			return 0;
	}
	while (len - p >= 2) {
		uint8_t b0 = buf[p], b1 = buf[p + 1];
		uint64_t pl = b1 & 0x7fu;
		size_t h = 2;

		if (pl == 126) {
			if (len - p < 4)
				break;
			pl = (uint64_t)buf[p + 2] << 8 | buf[p + 3];
			h = 4;
		} else if (pl == 127) {
			unsigned i;

			if (len - p < 10)
				break;
			for (pl = 0, i = 0; i < 8; i++)
				pl = pl << 8 | buf[p + 2 + i];
			h = 10;
			if (pl > MAX_MESSAGE) {
				proto_error(c, "frame too large");
				return 0;
			}
		}
		if (b1 & 0x80u) {
			proto_error(c, "masked frame from the server");
			return 0;
		}
		if (len - p - h < pl)
			break;
		on_frame(c, b0, buf + p + h, (size_t)pl, now);
		if (c->fd < 0)
			return 0;
		p += h + (size_t)pl;
	}
	return p;
}

static void
conn_read(struct conn *c)
{
	uint8_t *buf;
	size_t have = c->carry_len, want, total, used, left;
	uint64_t need = 0;
	ssize_t n;
	int64_t now;

	if (have && c->state != S_HANDSHAKE)
		need = frame_total(c->carry, have);
	if (need == UINT64_MAX) {
		proto_error(c, "frame too large");
		return;
	}
	if (need <= RBUF_SIZE) {
		/* Common case: the tail (if any) goes in front of a fresh read into the shared
		 * buffer. */
		buf = rbuf;
		if (have)
			memcpy(buf, c->carry, have);
		want = RBUF_SIZE - have < READ_MAX ? RBUF_SIZE - have : READ_MAX;
	} else {
		/* A frame larger than the shared buffer: collect it in the carry buffer. */
		if (c->carry_cap < need + READ_MAX) {
			c->carry = xrealloc(c->carry, need + READ_MAX);
			c->carry_cap = (uint32_t)(need + READ_MAX);
		}
		buf = c->carry;
		want = c->carry_cap - have < READ_MAX ? c->carry_cap - have : READ_MAX;
	}
	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, buf + have, want > INT32_MAX ? INT32_MAX : (int)want);

		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			ERR_clear_error();
			conn_down(c,
				  e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL
					  ? D_EOF
					  : D_TRANSPORT,
				  e == SSL_ERROR_ZERO_RETURN ? "EOF"
				  : e == SSL_ERROR_SYSCALL   ? "EOF (TLS)"
							     : "TLS read failed");
			return;
		}
		n = r;
	} else {
		n = read(c->fd, buf + have, want);
	}
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_down(c, n == 0 ? D_EOF : D_TRANSPORT, n == 0 ? "EOF" : strerror(errno));
		return;
	}
	now = lg_mono_us();
	if (c->role == R_SLOW)
		g.slow_last_us = now;
	total = have + (size_t)n;
	used = process(c, buf, total, now);
	if (c->fd < 0)
		return;
	left = total - used;
	if (buf == rbuf) {
		if (left > c->carry_cap) {
			size_t cap = left < 4096 ? 4096 : left;

			c->carry = xrealloc(c->carry, cap);
			c->carry_cap = (uint32_t)cap;
		}
		if (left)
			memcpy(c->carry, buf + used, left);
	} else if (left && used) {
		memmove(c->carry, c->carry + used, left);
	}
	c->carry_len = (uint32_t)left;
}

static void
on_event(struct conn *c, uint32_t ev)
{
	if (c->state == S_CONNECTING) {
		on_connect_done(c);
		return;
	}
	if (c->state == S_TLS) {
		tls_step(c);
		return;
	}
	if ((ev & EPOLLOUT) && c->out_off < c->out_len) {
		if (conn_flush(c) < 0)
			return;
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		conn_read(c);
		/* TLS may hold decrypted bytes the socket no longer signals. */
		for (int k = 0; k < 64 && c->fd >= 0 && c->ssl != NULL && SSL_pending(c->ssl) > 0;
		     k++)
			conn_read(c);
		if (c->fd >= 0 && c->ssl != NULL && c->out_off < c->out_len && conn_flush(c) < 0)
			return;
	}
}

static void
poll_once(int timeout_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n, i;

	n = epoll_wait(g.ep, ev, MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return;
		die(1, "epoll_wait: %s", strerror(errno));
	}
	for (i = 0; i < n; i++) {
		struct conn *c;

		if (ev[i].data.u64 == TIMER_TAG) {
			g.timer_fired = true;
			continue;
		}
		c = &g.c[ev[i].data.u64];
		if (c->fd >= 0)
			on_event(c, ev[i].events);
	}
}

/* ---------------------------------------------------------------- publishing */

/* Payload layout: "#<seq>:<send_time_us>#" (rooms: "#<seq>:<send_time_us>#<channel>#", the seq
 * counted per channel) then 'x' up to the size.
 * switchboard: the frame is {"type":"publish","channel":"<ch>","data":"<content>"}, and the JSON
 *   string "<content>" including its two quotes is --size bytes (content is size - 2 bytes),
 *   so the `data` value in the delivered message is --size bytes as written.
 * socketio: the frame is 42["pub","<ch>","<content>"], content as for switchboard.
 * nchan, ws: the frame body is the content, --size bytes.
 * When the size is too small for the head, the content is just the head. */
static void
payload_init(void)
{
	g.pay_cap = (size_t)o.size + 512;
	g.pay = xrealloc(NULL, g.pay_cap);
}

/* Queue message seq of channel k (rooms; 0 otherwise) on pub, stamped now. */
static void
publish_msg(struct conn *pub, uint32_t k, uint64_t seq, int64_t now)
{
	bool json = o.target == T_SWITCHBOARD || o.target == T_SOCKETIO;
	size_t content = json ? (o.size >= 2 ? (size_t)o.size - 2 : 0) : (size_t)o.size;
	size_t pre = 0, h = 0;
	char name[32];
	uint8_t *p;

	if (o.target == T_SWITCHBOARD)
		pre = (size_t)sprintf((char *)g.pay,
				      "{\"type\":\"publish\",\"channel\":\"%s\",\"data\":\"",
				      chan_name(k, name, sizeof name));
	else if (o.target == T_SOCKETIO)
		pre = (size_t)sprintf((char *)g.pay, "42[\"pub\",\"%s\",\"",
				      chan_name(k, name, sizeof name));
	p = g.pay + pre;
	if (!g.t_first_us)
		g.t_first_us = now;
	p[h++] = '#';
	h += fmt_u64((char *)p + h, seq);
	p[h++] = ':';
	h += fmt_u64((char *)p + h, (uint64_t)now);
	p[h++] = '#';
	if (o.workload == W_ROOMS) {
		h += fmt_u64((char *)p + h, k);
		p[h++] = '#';
	}
	if (content > h)
		memset(p + h, 'x', content - h);
	else
		content = h;
	if (json) {
		p[content] = '"';
		p[content + 1] = o.target == T_SWITCHBOARD ? '}' : ']';
		content += 2;
	}
	ws_queue(pub, 1, g.pay, pre + content);
}

static void
publish_one(struct conn *pub, int64_t now)
{
	g.published++;
	publish_msg(pub, 0, g.published, now);
}

static void
advance_wm(int64_t now)
{
	while (g.wm < g.published && g.ring[(g.wm + 1) & g.ring_mask] >= (uint64_t)g.live) {
		g.ring[(g.wm + 1) & g.ring_mask] = 0;
		g.wm++;
		g.last_adv_us = now;
	}
}

static bool
drained(void)
{
	struct conn *pub = &g.c[g.pub];

	return g.live_distinct >= g.published * (uint64_t)g.live && pub->out_off == pub->out_len;
}

/* ---------------------------------------------------------------- phases */

/* Connect and subscribe c[0..g.n) (subscribers, slow subscribers, publisher). */
static int
setup_phase(void)
{
	int64_t t0 = lg_mono_us(), now = t0, deadline = t0 + (int64_t)(o.connect_timeout * 1e6);
	int64_t next_note = t0 + 1000000;
	size_t next = 0;
	long total = (long)g.n;

	g.phase = PH_SETUP;
	g.retry_q = xrealloc(NULL, g.n * sizeof *g.retry_q);
	/* The publisher is last in c[], but is connected first. */
	if (g.pub < g.n) {
		int r = conn_open(&g.c[g.pub], now);

		if (r < 0)
			die(1, "publisher: connect: %s", strerror(-r));
		g.inprog++;
	}
	while (g.ready_total < total) {
		while (g.inprog < SETUP_CONCURRENCY && (g.retry_n || next < g.n)) {
			struct conn *c;
			int r;

			if (g.retry_n) {
				c = &g.c[g.retry_q[--g.retry_n]];
			} else {
				if (next == g.pub) {
					next++;
					continue;
				}
				c = &g.c[next++];
			}
			r = conn_open(c, now);
			if (r < 0) {
				snprintf(g.setup_err, sizeof g.setup_err, "%s %u: connect: %s",
					 role_names[c->role], c->id, strerror(-r));
				break;
			}
			g.inprog++;
		}
		if (g.setup_err[0]) {
			note("setup failed: %s", g.setup_err);
			note("%ld of %ld connections ready after %.1f s", g.ready_total, total,
			     (double)(now - t0) / 1e6);
			return -1;
		}
		poll_once(20);
		now = lg_mono_us();
		if (now >= deadline && g.ready_total < total) {
			note("setup failed: only %ld of %ld connections ready (%ld subscribers, "
			     "%ld slow, "
			     "publisher %s) after --connect-timeout %.1f s",
			     g.ready_total, total, g.ready_subs, g.ready_slow,
			     g.pub_ready ? "ready" : "not ready", o.connect_timeout);
			return -1;
		}
		if (now >= next_note) {
			note("setup: %ld/%ld ready", g.ready_total, total);
			next_note = now + 1000000;
		}
	}
	if (g.setup_err[0]) {
		note("setup failed: %s", g.setup_err);
		return -1;
	}
	g.setup_s = (double)(now - t0) / 1e6;
	note("setup: %ld connections ready in %.2f s", total, g.setup_s);
	return 0;
}

/* Run the loop for `us` microseconds (connections answer pings meanwhile). */
static void
settle(int64_t us)
{
	int64_t now = lg_mono_us(), end = now + us;

	while (now < end) {
		int64_t left = (end - now + 999) / 1000;

		poll_once(left > 100 ? 100 : (int)left);
		now = lg_mono_us();
		rss_sample(now);
	}
}

static void
settle_after_setup(void)
{
	g.phase = PH_SETTLE;
	if (o.target == T_NCHAN)
		settle(1000000);
	else if (o.target == T_WS)
		settle(500000);
}

/* The publishing timer (g.timerfd), in the epoll set as TIMER_TAG; g.timer_fired when due. */
static void
timer_open(void)
{
	struct epoll_event ev;

	g.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (g.timerfd < 0)
		die(1, "timerfd_create: %s", strerror(errno));
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.u64 = TIMER_TAG;
	if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.timerfd, &ev) < 0)
		die(1, "epoll_ctl: %s", strerror(errno));
}

static void
timer_stop(void)
{
	struct itimerspec its;

	memset(&its, 0, sizeof its);
	timerfd_settime(g.timerfd, 0, &its, NULL);
}

/* Arm the one-shot timer for time t (monotonic microseconds). */
static void
timer_at(int64_t t)
{
	struct itimerspec its;

	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = t / 1000000;
	its.it_value.tv_nsec = (long)(t % 1000000) * 1000;
	timerfd_settime(g.timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
publish_phase(void)
{
	struct conn *pub = &g.c[g.pub];
	int64_t now = lg_mono_us(), t_stop, drain_end;
	bool fanout = o.workload == W_FANOUT;
	/* rate: timer slots not yet served; beyond 100 ms worth they are skipped (reported). */
	uint64_t debt = 0, debt_max = (uint64_t)(o.rate / 10) > RATE_MAX_BURST
					      ? (uint64_t)(o.rate / 10)
					      : RATE_MAX_BURST;

	if (fanout) {
		uint64_t r = 1;

		while (r < 2 * (uint64_t)o.window)
			r <<= 1;
		g.ring = calloc(r, sizeof *g.ring);
		if (!g.ring)
			die(1, "out of memory");
		g.ring_mask = r - 1;
	} else {
		struct itimerspec its;
		long long period = (long long)(1e9 / o.rate);

		if (period < 1)
			period = 1;
		timer_open();
		memset(&its, 0, sizeof its);
		its.it_value.tv_nsec = 1;
		its.it_interval.tv_sec = period / 1000000000LL;
		its.it_interval.tv_nsec = period % 1000000000LL;
		timerfd_settime(g.timerfd, 0, &its, NULL);
	}
	g.phase = PH_RUN;
	measure_begin(now);
	t_stop = now + (int64_t)(o.duration * 1e6);
	g.last_adv_us = now;
	note("%s: publishing for %.1f s", workload_names[o.workload], o.duration);
	for (;;) {
		if (now >= t_stop || g.pub_dead || g.live == 0)
			break;
		if (fanout) {
			advance_wm(now);
			if (g.published > g.wm && now - g.last_adv_us > STALL_US) {
				g.stalled = true;
				note("fanout stalled: watermark %llu, published %llu, no progress "
				     "for 2 s",
				     (unsigned long long)g.wm, (unsigned long long)g.published);
				break;
			}
			if (g.published < g.wm + (uint64_t)o.window &&
			    pub->out_len - pub->out_off < PUB_BACKLOG_MAX) {
				while (g.published < g.wm + (uint64_t)o.window &&
				       pub->out_len - pub->out_off < PUB_BACKLOG_MAX)
					publish_one(pub, now);
				if (conn_flush(pub) < 0)
					break;
			}
		} else {
			uint64_t exp = 0, burst;

			if (g.timer_fired) {
				g.timer_fired = false;
				if (read(g.timerfd, &exp, sizeof exp) == (ssize_t)sizeof exp)
					debt += exp;
				if (debt > debt_max) {
					g.rate_skipped += debt - debt_max;
					debt = debt_max;
				}
			}
			/* Catch up on missed slots, but at most RATE_MAX_BURST messages at once. */
			if (debt) {
				burst = debt < RATE_MAX_BURST ? debt : RATE_MAX_BURST;
				debt -= burst;
				while (burst--)
					publish_one(pub, now);
				if (conn_flush(pub) < 0)
					break;
			}
		}
		rss_sample(now);
		poll_once(fanout ? 5 : debt ? 0 : 10);
		now = lg_mono_us();
	}
	if (!fanout)
		timer_stop();
	g.t_pub_end_us = now;
	g.phase = PH_DRAIN;
	drain_end = now + DRAIN_US;
	while (!g.stalled && !g.pub_dead && g.live > 0 && !drained() && now < drain_end) {
		if (pub->out_off < pub->out_len && conn_flush(pub) < 0)
			break;
		poll_once(5);
		now = lg_mono_us();
		rss_sample(now);
	}
	g.drained = drained();
	if (!g.drained && !g.stalled)
		note("drain incomplete after %.1f s: messages not received by then count as lost",
		     (double)(now - g.t_pub_end_us) / 1e6);
	/* Stalled: the measured interval ends at the last progress, not 2 s later. */
	g.t_end_us = g.stalled ? g.last_adv_us : now;
	measure_end(now);
	g.phase = PH_POST;
	if (g.rate_skipped)
		note("rate: fell more than 100 ms behind, %llu send slots skipped",
		     (unsigned long long)g.rate_skipped);
}

static bool
rooms_drained(void)
{
	long i;

	for (i = 0; i < g.npub; i++) {
		const struct conn *pub = &g.c[o.subs + i];

		if (pub->fd >= 0 && pub->out_off < pub->out_len)
			return false;
	}
	return g.live_distinct >= g.live_expect;
}

/* Message i is due at t0 + i / rate, each on a random channel, queued on that channel's
 * publisher. A publisher with ROOMS_BACKLOG unsent (the server is not reading it) holds the
 * schedule up: publish_lag measures how late messages go out, and what was due but never
 * sent before the end shows as published < published_expected. */
static void
rooms_phase(void)
{
	int64_t now = lg_mono_us(), t0, t_stop, drain_end;
	double step = 1e6 / o.rate;
	size_t backlog = ROOMS_BACKLOG > 2 * (size_t)o.size ? ROOMS_BACKLOG : 2 * (size_t)o.size;
	uint32_t k = (uint32_t)(rng64() % (uint64_t)o.channels);
	long i;

	timer_open();
	g.phase = PH_RUN;
	measure_begin(now);
	t0 = now;
	t_stop = t0 + (int64_t)(o.duration * 1e6);
	g.pub_expected = (uint64_t)ceil((double)(t_stop - t0) / step);
	note("rooms: %ld subscribers in %ld channels, %ld publishers, %.0f msg/s for %.1f s",
	     o.subs, o.channels, g.npub, o.rate, o.duration);
	/* Until every message due before t_stop is out (or the grace time is over). */
	while (g.published < g.pub_expected && now < t_stop + ROOMS_GRACE_US && !g.pub_dead &&
	       g.live > 0) {
		int64_t due = 0;
		bool held = false;
		int n;

		for (n = 0; n < ROOMS_BURST && g.published < g.pub_expected; n++) {
			struct conn *pub = &g.c[o.subs + k % (uint32_t)g.npub];

			due = t0 + (int64_t)((double)g.published * step);
			if (due > now)
				break;
			if (pub->out_len - pub->out_off >= backlog) {
				held = true;
				break;
			}
			g.published++;
			g.chan_pub[k]++;
			g.live_expect += (uint64_t)g.chan_live[k];
			publish_msg(pub, k, g.chan_pub[k], now);
			lg_hist_add(&g.publag, (uint64_t)(now - due));
			if (conn_flush(pub) < 0)
				break;
			k = (uint32_t)(rng64() % (uint64_t)o.channels);
		}
		if (g.timer_fired) {
			uint64_t exp;

			g.timer_fired = false;
			if (read(g.timerfd, &exp, sizeof exp) < 0 && errno != EAGAIN)
				die(1, "timerfd read: %s", strerror(errno));
		}
		/* Held: the publisher's EPOLLOUT wakes the loop. */
		if (!held && n < ROOMS_BURST)
			timer_at(due);
		rss_sample(now);
		poll_once(n == ROOMS_BURST ? 0 : held ? 5 : 10);
		now = lg_mono_us();
	}
	timer_stop();
	g.t_pub_end_us = now;
	g.phase = PH_DRAIN;
	drain_end = now + DRAIN_US;
	while (!g.pub_dead && g.live > 0 && !rooms_drained() && now < drain_end) {
		for (i = 0; i < g.npub; i++) {
			struct conn *pub = &g.c[o.subs + i];

			if (pub->fd >= 0 && pub->out_off < pub->out_len)
				conn_flush(pub);
		}
		poll_once(5);
		now = lg_mono_us();
		rss_sample(now);
	}
	g.drained = rooms_drained();
	if (!g.drained)
		note("drain incomplete after %.1f s: messages not received by then count as lost",
		     (double)(now - g.t_pub_end_us) / 1e6);
	g.t_end_us = now;
	measure_end(now);
	g.phase = PH_POST;
	if (g.published < g.pub_expected)
		note("rooms: %llu of %llu messages due were not sent (publishers held up 1 s past "
		     "the end)",
		     (unsigned long long)(g.pub_expected - g.published),
		     (unsigned long long)g.pub_expected);
}

/* Read what the slow subscribers have left, for up to 5 s: how many did the server close? */
static void
slow_drain_phase(void)
{
	int64_t now = lg_mono_us(), end = now + SLOW_DRAIN_US;
	size_t i;
	long open = 0;

	g.slow_last_us = now;
	for (i = 0; i < g.n; i++) {
		struct conn *c = &g.c[i];

		if (c->role == R_SLOW && c->fd >= 0) {
			ep_set(c, EPOLLIN);
			open++;
		}
	}
	while (open > g.slow_closed && now < end && now - g.slow_last_us < SLOW_QUIET_US) {
		poll_once(10);
		now = lg_mono_us();
	}
	note("slow subscribers: %ld of %ld closed by the server", g.slow_closed, o.slow);
}

static void
churn_phase(void)
{
	double limit_s = o.duration * 6 < 120 ? o.duration * 6 : 120;
	int64_t now = lg_mono_us(), t0 = now, end = now + (int64_t)(limit_s * 1e6);
	int64_t next_check = now, next_note = now + 1000000;
	size_t i;

	g.phase = PH_CHURN;
	measure_begin(now);
	while (g.churn_ok + g.churn_failed < o.conns && now < end) {
		for (i = 0; i < g.n && g.churn_started < o.conns; i++) {
			struct conn *c = &g.c[i];
			int r;

			if (c->state != S_FREE)
				continue;
			c->id = (uint32_t)g.churn_started++;
			r = conn_open(c, now);
			if (r < 0) {
				c->t0_us = now;
				churn_finish(c, false, strerror(-r), now);
				continue;
			}
			c->deadline_us = now + CHURN_SETUP_US;
		}
		poll_once(10);
		now = lg_mono_us();
		rss_sample(now);
		if (now >= next_check) {
			next_check = now + 50000;
			for (i = 0; i < g.n; i++) {
				struct conn *c = &g.c[i];

				if (c->fd >= 0 && now > c->deadline_us)
					conn_down(c, D_TIMEOUT,
						  c->state == S_CLOSING
							  ? "no close reply within 2 s"
							  : "setup timeout");
			}
		}
		if (now >= next_note) {
			note("churn: %ld done, %ld failed", g.churn_ok, g.churn_failed);
			next_note = now + 1000000;
		}
	}
	for (i = 0; i < g.n; i++)
		if (g.c[i].fd >= 0)
			conn_down(&g.c[i], D_TIMEOUT, "phase time limit");
	g.churn_failed += o.conns - g.churn_started;
	g.t_first_us = t0;
	g.t_end_us = now;
	measure_end(now);
}

/* ---------------------------------------------------------------- report */

static bool jfirst = true;

static void
jkey(const char *k)
{
	printf("%s\"%s\":", jfirst ? "{" : ",", k);
	jfirst = false;
}

/* v: plain ASCII without quotes or backslashes (names and versions), or NULL for null. */
static void
jstr(const char *k, const char *v)
{
	jkey(k);
	if (v != NULL)
		printf("\"%s\"", v);
	else
		fputs("null", stdout);
}

static void
jint(const char *k, long long v, bool ok)
{
	jkey(k);
	if (ok)
		printf("%lld", v);
	else
		fputs("null", stdout);
}

static void
jdbl(const char *k, double v, bool ok, int prec)
{
	jkey(k);
	if (ok && isfinite(v))
		printf("%.*f", prec, v);
	else
		fputs("null", stdout);
}

static void
jbool(const char *k, bool v, bool ok)
{
	jkey(k);
	fputs(!ok ? "null" : v ? "true" : "false", stdout);
}

/* <name>_p50_ms, _p90_ms (if p90), _p99_ms and _max_ms of a histogram of microseconds. */
static void
jhist(const char *name, const struct lg_hist *h, bool p90, bool ok)
{
	static const double q[] = { 0.50, 0.90, 0.99 };
	char k[64];
	int i;

	ok = ok && h->count;
	for (i = 0; i < 3; i++) {
		if (i == 1 && !p90)
			continue;
		snprintf(k, sizeof k, "%s_p%02.0f_ms", name, q[i] * 100);
		jdbl(k, lg_hist_quantile(h, q[i]) / 1e3, ok, 3);
	}
	snprintf(k, sizeof k, "%s_max_ms", name);
	jdbl(k, (double)h->max / 1e3, ok, 3);
}

static void
report(long long rss_per_conn, bool rss_per_conn_ok)
{
	bool rooms = o.workload == W_ROOMS;
	bool pubw = o.workload == W_FANOUT || o.workload == W_RATE || rooms;
	bool churn = o.workload == W_CHURN;
	double pub_s = (double)(g.t_pub_end_us - g.t_first_us) / 1e6;
	bool srv = o.server_pid != 0;
	double dur = (double)(g.t_end_us - g.t_first_us) / 1e6;
	uint64_t lost = 0, dups = 0, reorders = 0;
	size_t i;
	int k;

	for (i = 0; i < g.n; i++) {
		const struct conn *c = &g.c[i];

		uint64_t want;

		if (c->role != R_SUB || c->state != S_READY)
			continue;
		want = rooms ? g.chan_pub[c->chan] : g.published;
		if (want > c->distinct)
			lost += want - c->distinct;
		dups += c->dups;
		reorders += c->reorders;
	}
	jstr("target", target_names[o.target]);
	jbool("tls", o.tls, true);
	jstr("tls_version", o.tls && g.tls_version[0] ? g.tls_version : NULL);
	jstr("tls_cipher", o.tls && g.tls_cipher[0] ? g.tls_cipher : NULL);
	jstr("workload", workload_names[o.workload]);
	jint("subs", churn ? 0 : o.subs, !churn);
	jint("slow", pubw ? o.slow : 0, true);
	jint("connected", churn ? g.churn_ok : g.ready_subs + g.ready_slow, true);
	jdbl("duration_s", dur, true, 3);
	jint("published", (long long)g.published, pubw);
	jint("delivered", (long long)g.delivered, pubw);
	jdbl("deliveries_per_s", dur > 0 ? (double)g.delivered / dur : 0, pubw, 1);
	jhist("lat", &g.lat, true, pubw);
	jint("lost", (long long)lost, pubw);
	jint("duplicated", (long long)dups, pubw);
	jint("reordered", (long long)reorders, pubw);
	jint("errors", (long long)g.errors, true);
	jbool("stalled", g.stalled, o.workload == W_FANOUT);
	jdbl("server_cpu_pct", g.cpu_pct, srv && g.cpu_ok, 1);
	jint("server_rss_kb_start", g.rss_start, srv && g.have_rss);
	jint("server_rss_kb_end", g.rss_end, srv && g.have_rss);
	jint("server_rss_kb_max", g.rss_max, srv && g.have_rss);
	jint("rss_per_conn_bytes", rss_per_conn, rss_per_conn_ok);
	jdbl("conn_per_s", dur > 0 ? (double)g.churn_ok / dur : 0, churn, 1);
	jint("churn_failures", g.churn_failed, churn);
	jint("slow_closed", g.slow_closed, pubw && o.slow > 0);
	jkey("slow_close_codes");
	if (pubw && o.slow > 0) {
		putchar('{');
		for (k = 0; k < g.ncodes; k++)
			printf("%s\"%u\":%ld", k ? "," : "", g.codes[k].code, g.codes[k].n);
		putchar('}');
	} else {
		fputs("null", stdout);
	}
	jkey("rss_samples_kb");
	if (srv && g.nrss) {
		putchar('[');
		for (i = 0; i < g.nrss; i++)
			printf("%s%ld", i ? "," : "", g.rss[i]);
		putchar(']');
	} else {
		fputs("null", stdout);
	}
	/* Extras (not in the original field list). */
	jbool("drained", g.drained, pubw);
	jint("subs_closed", g.subs_closed, !churn);
	jint("stale", (long long)g.stale, pubw);
	jdbl("published_per_s", dur > 0 ? (double)g.published / dur : 0, pubw, 1);
	jdbl("setup_s", g.setup_s, !churn, 3);
	jdbl("loadgen_cpu_pct", g.lg_cpu_pct, true, 1);
	jdbl("churn_cycle_p50_ms", lg_hist_quantile(&g.cycle, 0.50) / 1e3, churn && g.cycle.count,
	     3);
	jdbl("churn_cycle_p99_ms", lg_hist_quantile(&g.cycle, 0.99) / 1e3, churn && g.cycle.count,
	     3);
	/* rooms */
	jint("channels", o.channels, rooms);
	jint("publishers", g.npub, rooms);
	jdbl("rate", o.rate, rooms || o.workload == W_RATE, 1);
	jdbl("deliveries_expected_per_s", o.rate * (double)o.subs / (double)o.channels, rooms, 1);
	jint("published_expected", (long long)g.pub_expected, rooms);
	jdbl("sent_per_s", pub_s > 0 ? (double)g.published / pub_s : 0, rooms, 1);
	jdbl("accepted_per_s", pub_s > 0 ? (double)g.acks_run / pub_s : 0,
	     rooms && (o.target == T_SWITCHBOARD || o.target == T_NCHAN), 1);
	jint("acked", (long long)g.acks,
	     rooms && (o.target == T_SWITCHBOARD || o.target == T_NCHAN));
	jhist("publish_lag", &g.publag, false, rooms);
	puts("}");
	fflush(stdout);
}

/* ---------------------------------------------------------------- command line */

static void
usage(FILE *f)
{
	fputs("usage: loadgen --target switchboard|nchan|ws|socketio --host 127.0.0.1 --port N\n"
	      "               --workload idle|fanout|rate|churn|rooms [options]\n"
	      "  --subs N             subscriber connections (default 1000)\n"
	      "  --slow K             extra subscribers that subscribe, then never read (default "
	      "0)\n"
	      "  --duration S         measurement seconds (default 10)\n"
	      "  --window W           fanout: max messages in flight per subscriber (default 32)\n"
	      "  --rate R             rate, rooms: messages per second, in all (default 200)\n"
	      "  --channels K         rooms: channels room-0 .. room-<K-1>, subscriber i in\n"
	      "                       room-<i %% K> (default 1000)\n"
	      "  --publishers P       rooms: publisher connections, channel k on publisher k %% P\n"
	      "                       (default 8; nchan and ws: one per channel, by URL)\n"
	      "  --size B             payload bytes (default 100)\n"
	      "  --conns N            churn: total connections (default 20000)\n"
	      "  --concurrency C      churn: connections in progress at once (default 64)\n"
	      "  --server-pid PID     sample server CPU and RSS from /proc/PID (idle needs it)\n"
	      "  --channel NAME       channel (default bench)\n"
	      "  --connect-timeout S  give up setting up connections after S s (default 60)\n"
	      "  --tls                wss:// (TLS without certificate checks: loopback only)\n"
	      "Prints one JSON object on stdout. Exit 0: run completed; 1: setup failed;\n"
	      "2: bad arguments.\n",
	      f);
}

static long
arg_long(const char *name, const char *v, long lo, long hi)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		die(2, "--%s: expected an integer from %ld to %ld, got \"%s\"", name, lo, hi, v);
	return x;
}

static double
arg_double(const char *name, const char *v, double lo, double hi)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end || !(x >= lo && x <= hi))
		die(2, "--%s: expected a number from %g to %g, got \"%s\"", name, lo, hi, v);
	return x;
}

static int
pick(const char *name, const char *v, const char *const *names, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	die(2, "--%s: unknown value \"%s\"", name, v);
	return -1;
}

static int
self_test(void)
{
	int bad = 0;

	if (lg_ws_selftest() < 0) {
		fputs("self-test: ws helpers FAILED\n", stderr);
		bad = 1;
	}
	if (lg_hist_selftest() < 0) {
		fputs("self-test: histogram FAILED\n", stderr);
		bad = 1;
	}
	if (!bad)
		fputs("self-test: ok\n", stderr);
	return bad;
}

static void
parse_args(int argc, char **argv)
{
	enum {
		O_TARGET = 256,
		O_HOST,
		O_PORT,
		O_WORKLOAD,
		O_SUBS,
		O_SLOW,
		O_DURATION,
		O_WINDOW,
		O_RATE,
		O_SIZE,
		O_CONNS,
		O_CONC,
		O_PID,
		O_CHANNEL,
		O_CTIMEOUT,
		O_CHANNELS,
		O_PUBLISHERS,
		O_TLS,
		O_SELFTEST,
		O_HELP
	};
	static const struct option opts[] = {
		{ "target", required_argument, NULL, O_TARGET },
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "workload", required_argument, NULL, O_WORKLOAD },
		{ "subs", required_argument, NULL, O_SUBS },
		{ "slow", required_argument, NULL, O_SLOW },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "rate", required_argument, NULL, O_RATE },
		{ "size", required_argument, NULL, O_SIZE },
		{ "conns", required_argument, NULL, O_CONNS },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "server-pid", required_argument, NULL, O_PID },
		{ "channel", required_argument, NULL, O_CHANNEL },
		{ "connect-timeout", required_argument, NULL, O_CTIMEOUT },
		{ "channels", required_argument, NULL, O_CHANNELS },
		{ "publishers", required_argument, NULL, O_PUBLISHERS },
		{ "tls", no_argument, NULL, O_TLS },
		{ "self-test", no_argument, NULL, O_SELFTEST },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool have_workload = false;
	const char *host = "127.0.0.1";
	int ch;
	size_t i;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_TARGET:
			o.target = (enum target)pick("target", optarg, target_names, 4);
			break;
		case O_HOST:
			host = optarg;
			break;
		case O_PORT:
			o.port = (int)arg_long("port", optarg, 1, 65535);
			break;
		case O_WORKLOAD:
			o.workload = (enum workload)pick("workload", optarg, workload_names, 5);
			have_workload = true;
			break;
		case O_SUBS:
			o.subs = arg_long("subs", optarg, 1, 1000000);
			break;
		case O_SLOW:
			o.slow = arg_long("slow", optarg, 0, 1000000);
			break;
		case O_DURATION:
			o.duration = arg_double("duration", optarg, 0.01, 86400);
			break;
		case O_WINDOW:
			o.window = arg_long("window", optarg, 1, 1 << 20);
			break;
		case O_RATE:
			o.rate = arg_double("rate", optarg, 0.01, 1e7);
			break;
		case O_SIZE:
			o.size = arg_long("size", optarg, 1, 16 << 20);
			break;
		case O_CONNS:
			o.conns = arg_long("conns", optarg, 1, 100000000);
			break;
		case O_CONC:
			o.concurrency = arg_long("concurrency", optarg, 1, 100000);
			break;
		case O_PID:
			o.server_pid = (int)arg_long("server-pid", optarg, 1, 1 << 30);
			break;
		case O_CHANNEL:
			if (strlen(optarg) < 1 || strlen(optarg) > 255)
				die(2, "--channel: 1 to 255 bytes");
			for (i = 0; optarg[i]; i++)
				if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					    "0123456789_:.@=-",
					    optarg[i]))
					die(2, "--channel: only [A-Za-z0-9_:.@=-] allowed");
			strcpy(o.channel, optarg);
			break;
		case O_CTIMEOUT:
			o.connect_timeout = arg_double("connect-timeout", optarg, 0.1, 86400);
			break;
		case O_CHANNELS:
			o.channels = arg_long("channels", optarg, 1, 1000000);
			break;
		case O_PUBLISHERS:
			o.publishers = arg_long("publishers", optarg, 1, 100000);
			break;
		case O_TLS:
			o.tls = true;
			break;
		case O_SELFTEST:
			exit(self_test() ? 1 : 0);
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			die(2, "bad option \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die(2, "unexpected argument \"%s\"", argv[optind]);
	if (!have_workload)
		die(2, "--workload is required");
	if (o.port < 0)
		die(2, "--port is required");
	/* Loopback only. */
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	memset(&g.dst, 0, sizeof g.dst);
	if (strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g.dst;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons((uint16_t)o.port);
		g.dstlen = sizeof *a;
		o.v6 = true;
		snprintf(o.host, sizeof o.host, "::1");
		snprintf(g.hosthdr, sizeof g.hosthdr, "[::1]:%d", o.port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&g.dst;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1 ||
		    (ntohl(a->sin_addr.s_addr) >> 24) != 127)
			die(2,
			    "--host: only loopback targets are allowed (127.x.x.x, ::1, "
			    "localhost), "
			    "got \"%s\"",
			    host);
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)o.port);
		g.dstlen = sizeof *a;
		snprintf(o.host, sizeof o.host, "%s", host);
		snprintf(g.hosthdr, sizeof g.hosthdr, "%s:%d", host, o.port);
	}
	if (o.workload == W_IDLE && !o.server_pid)
		die(2, "--workload idle needs --server-pid");
	if (o.slow && (o.workload == W_IDLE || o.workload == W_CHURN || o.workload == W_ROOMS))
		note("--slow is ignored by the %s workload", workload_names[o.workload]);
}

static void
raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)need > rl.rlim_cur)
		die(2, "this run needs about %ld open files, RLIMIT_NOFILE is %llu", need,
		    (unsigned long long)rl.rlim_cur);
}

static void
free_all(void)
{
	size_t i;

	for (i = 0; i < g.n; i++) {
		if (g.c[i].ssl != NULL)
			SSL_free(g.c[i].ssl);
		if (g.c[i].fd >= 0)
			close(g.c[i].fd);
		free(g.c[i].carry);
		free(g.c[i].frag);
		free(g.c[i].out);
	}
	free(g.c);
	free(g.retry_q);
	SSL_CTX_free(g.tls);
	free(g.ring);
	free(g.rss);
	free(g.pay);
	free(g.chan_pub);
	free(g.chan_live);
	if (g.timerfd >= 0)
		close(g.timerfd);
	close(g.ep);
}

int
main(int argc, char **argv)
{
	long long rss_per_conn = 0;
	bool rss_per_conn_ok = false;
	long before_kb = -1;
	size_t i;
	uint64_t seed = 0;

	signal(SIGPIPE, SIG_IGN);
	g.start_us = lg_mono_us();
	g.timerfd = -1;
	parse_args(argc, argv);
	if (o.tls) {
		g.tls = SSL_CTX_new(TLS_client_method());
		if (g.tls == NULL)
			die(1, "SSL_CTX_new failed");
		SSL_CTX_set_verify(g.tls, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(g.tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
						SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	}
	if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
		seed = (uint64_t)g.start_us * 0x9E3779B97F4A7C15ULL;
	g.rng = seed | 1;

	switch (o.workload) {
	case W_IDLE:
		g.n = (size_t)o.subs;
		g.pub = g.n; /* none */
		break;
	case W_FANOUT:
	case W_RATE:
		g.n = (size_t)(o.subs + o.slow + 1);
		g.pub = g.n - 1;
		break;
	case W_CHURN:
		g.n = (size_t)o.concurrency;
		g.pub = g.n;
		break;
	case W_ROOMS:
		o.slow = 0;
		/* nchan and ws take a channel's messages from a publisher of its URL. */
		g.npub = o.target == T_NCHAN || o.target == T_WS ? o.channels
			 : o.publishers < o.channels		 ? o.publishers
								 : o.channels;
		g.n = (size_t)(o.subs + g.npub);
		g.pub = g.n; /* none: publishers are c[o.subs ..] */
		g.chan_pub = calloc((size_t)o.channels, sizeof *g.chan_pub);
		g.chan_live = calloc((size_t)o.channels, sizeof *g.chan_live);
		if (!g.chan_pub || !g.chan_live)
			die(1, "out of memory");
		break;
	}
	raise_nofile((long)g.n + 32);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (g.ep < 0)
		die(1, "epoll_create1: %s", strerror(errno));
	g.c = calloc(g.n, sizeof *g.c);
	if (!g.c)
		die(1, "out of memory");
	for (i = 0; i < g.n; i++) {
		struct conn *c = &g.c[i];

		c->fd = -1;
		c->id = (uint32_t)i;
		c->state = S_FREE;
		if (o.workload == W_CHURN) {
			c->role = R_CHURN;
		} else if (o.workload == W_ROOMS) {
			c->role = (long)i < o.subs ? R_SUB : R_PUB;
			c->chan = (long)i < o.subs ? (uint32_t)(i % (size_t)o.channels)
						   : (uint32_t)(i - (size_t)o.subs);
		} else if (i == g.pub) {
			c->role = R_PUB;
		} else if ((long)i >= o.subs) {
			c->role = R_SLOW;
		} else {
			c->role = R_SUB;
		}
	}
	note("%s %s on %s:%d: %s", target_names[o.target], workload_names[o.workload], o.host,
	     o.port, o.workload == W_CHURN ? "churn" : "connecting");

	switch (o.workload) {
	case W_IDLE:
		before_kb = lg_proc_rss_kb(o.server_pid);
		if (before_kb < 0)
			die(1, "cannot read /proc/%d/status", o.server_pid);
		if (setup_phase() < 0) {
			free_all();
			return 1;
		}
		g.phase = PH_SETTLE;
		g.t_first_us = lg_mono_us();
		measure_begin(g.t_first_us);
		g.rss_start = before_kb;
		settle(2000000);
		g.t_end_us = lg_mono_us();
		measure_end(g.t_end_us);
		if (g.rss_end >= 0) {
			rss_per_conn = (long long)(g.rss_end - before_kb) * 1024 / o.subs;
			rss_per_conn_ok = true;
		}
		if (before_kb > g.rss_max)
			g.rss_max = before_kb;
		break;
	case W_FANOUT:
	case W_RATE:
	case W_ROOMS:
		payload_init();
		if (setup_phase() < 0) {
			free_all();
			return 1;
		}
		settle_after_setup();
		if (o.workload == W_ROOMS)
			rooms_phase();
		else
			publish_phase();
		if (o.slow)
			slow_drain_phase();
		break;
	case W_CHURN:
		churn_phase();
		break;
	}
	report(rss_per_conn, rss_per_conn_ok);
	note("done: %llu published, %llu delivered, %llu errors", (unsigned long long)g.published,
	     (unsigned long long)g.delivered, (unsigned long long)g.errors);
	free_all();
	return 0;
}
