/* loadgen.h - shared declarations of the benchmark load generator (bench/loadgen*.c).
 *
 * loadgen_ws.c    : SHA-1, base64, WebSocket client framing, HTTP upgrade check (pure functions)
 * loadgen_stats.c : clock, latency histogram, /proc sampling
 * loadgen.c       : command line, event loop, connections, workloads, JSON report
 */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- loadgen_ws.c ---- */

void lg_sha1(const void *data, size_t len, uint8_t out[20]);
/* Standard base64 with padding; out must hold 4 * ((len + 2) / 3) + 1 bytes. Returns the length. */
size_t lg_base64(const uint8_t *in, size_t len, char *out);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (24 chars): 28 chars + NUL. */
void lg_ws_accept(const char *key, char out[29]);
/* Client frame header (FIN set, MASK set) for opcode/len, including the 4 mask bytes.
 * dst must have room for 14 bytes. Returns the header length (6, 8 or 14). */
size_t lg_ws_header(uint8_t *dst, unsigned opcode, size_t len, uint32_t mask);
/* XOR p[0..len) with the 4-byte mask (as written in the header, big-endian byte order). */
void lg_ws_mask(uint8_t *p, size_t len, uint32_t mask);
/* Check an HTTP response head (status line through the blank line): 101 status and, when
 * expect_accept is not NULL, a matching Sec-WebSocket-Accept. Returns 0 or -1 with err set. */
int lg_http_check_upgrade(const char *head, size_t len, const char *expect_accept, char *err,
			  size_t errlen);
/* 0 on success, -1 if a built-in test vector fails (used by --self-test). */
int lg_ws_selftest(void);

/* ---- loadgen_stats.c ---- */

int64_t lg_mono_us(void);

/* Log-linear histogram of non-negative integers (microseconds): values below 256 exactly,
 * above that 128 sub-buckets per power of two (relative error < 0.8 %). */
#define LG_HIST_SUB 128u
#define LG_HIST_BUCKETS 7424u
struct lg_hist {
	uint64_t count;
	uint64_t max;
	uint64_t b[LG_HIST_BUCKETS];
};

static inline unsigned
lg_hist_index(uint64_t v)
{
	unsigned e, sh;

	if (v < 2 * LG_HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	sh = e - 7u;
	return sh * LG_HIST_SUB + (unsigned)(v >> sh);
}

static inline void
lg_hist_add(struct lg_hist *h, uint64_t v)
{
	h->b[lg_hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

/* Value at quantile q (0..1): the midpoint of the bucket holding it, at most the max. */
double lg_hist_quantile(const struct lg_hist *h, double q);
int lg_hist_selftest(void);

/* /proc/PID/status VmRSS in KiB, or -1. */
long lg_proc_rss_kb(int pid);
/* utime + stime of /proc/PID/stat in clock ticks; 0 on success, -1 on failure. */
int lg_proc_cpu_ticks(int pid, uint64_t *ticks);

#endif
