/* loadgen_stats.c - clock, latency histogram and /proc sampling for the load generator. */
#include "loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
lg_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Lowest value and width of bucket i (inverse of lg_hist_index). */
static void
bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
	unsigned sh;

	if (i < 2 * LG_HIST_SUB) {
		*lo = i;
		*width = 1;
		return;
	}
	sh = i / LG_HIST_SUB - 1;
	*lo = (uint64_t)(i - sh * LG_HIST_SUB) << sh;
	*width = (uint64_t)1 << sh;
}

double
lg_hist_quantile(const struct lg_hist *h, double q)
{
	uint64_t rank, cum = 0, lo, width;
	unsigned i;

	if (!h->count)
		return 0;
	if (q >= 1)
		return (double)h->max;
	rank = (uint64_t)(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < LG_HIST_BUCKETS; i++) {
		cum += h->b[i];
		if (cum >= rank) {
			double mid;

			bucket_range(i, &lo, &width);
			mid = (double)lo + (double)(width - 1) / 2.0;
			return mid > (double)h->max ? (double)h->max : mid;
		}
	}
	return (double)h->max;
}

int
lg_hist_selftest(void)
{
	static struct lg_hist h;
	uint64_t v, lo, width;
	unsigned i, prev = 0;
	double p50;

	/* Indexes are monotonic, within range, and each value lies in its bucket. */
	for (v = 0; v < 5000000; v += 1 + v / 50) {
		i = lg_hist_index(v);
		if (i >= LG_HIST_BUCKETS || i < prev)
			return -1;
		bucket_range(i, &lo, &width);
		if (v < lo || v >= lo + width || (v >= 256 && (double)width / (double)lo > 0.0079))
			return -1;
		prev = i;
	}
	if (lg_hist_index(UINT64_MAX) >= LG_HIST_BUCKETS)
		return -1;
	memset(&h, 0, sizeof h);
	for (v = 1; v <= 1000; v++)
		lg_hist_add(&h, v * 1000);
	p50 = lg_hist_quantile(&h, 0.5);
	if (p50 < 495000 || p50 > 505000 || lg_hist_quantile(&h, 1.0) != 1000000.0)
		return -1;
	return 0;
}

long
lg_proc_rss_kb(int pid)
{
	char path[64], line[256];
	FILE *f;
	long kb = -1;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

int
lg_proc_cpu_ticks(int pid, uint64_t *ticks)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may contain spaces and ')': fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* After ')': state(3) ppid(4) pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime(14) stime(15). */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	*ticks = ut + st;
	return 0;
}
