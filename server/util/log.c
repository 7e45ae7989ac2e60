/* log.c: the stderr emitter behind log.h, as text lines or one JSON object a line; the
 * once-a-second limiter for lines that repeat fast, and the cleaning of client bytes. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_level_current = LOG_INFO;
enum log_format log_format_current = LOG_FORMAT_TEXT;

static const char *const names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "json" };
static const char letters[] = "EWID";

int
log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i <= LOG_DEBUG; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return names[level];
}

int
log_format_parse(const char *name, enum log_format *out)
{
	for (int i = 0; i <= LOG_FORMAT_JSON; i++) {
		if (strcmp(name, format_names[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_format_name(enum log_format f)
{
	return format_names[f];
}

static size_t utf8_char(const unsigned char *p, size_t n);

/* Writes text as the inside of a JSON string into out (size n > 0): quotes, backslashes
 * and control bytes escaped, a byte that is not part of a well-formed UTF-8 character
 * (a path or a name from the environment may hold any) written as '?', so that every
 * line is valid JSON. */
static void
json_escape(char *out, size_t n, const char *text)
{
	size_t o = 0, left = strlen(text);

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0' && o + 7 < n;) {
		size_t c = *p >= 0x80 ? utf8_char(p, left) : 1;

		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", *p);
		} else if (c == 0) {
			out[o++] = '?';
			c = 1;
		} else {
			memcpy(out + o, p, c);
			o += c;
		}
		p += c;
		left -= c;
	}
	out[o] = '\0';
}

void
log_emit(enum log_level level, const char *fmt, ...)
{
	char stamp[40], text[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (log_format_current == LOG_FORMAT_JSON) {
		char esc[sizeof(text) * 2];

		json_escape(esc, sizeof(esc), text);
		fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", stamp,
			names[level], esc);
	} else {
		fprintf(stderr, "%s %c %s\n", stamp, letters[level], text);
	}
}

bool
log_limit_take(struct log_limit *l, uint64_t now_ms, uint64_t *held)
{
	if (l->used && now_ms - l->last_ms < 1000) {
		l->held++;
		return false;
	}
	*held = l->held;
	l->held = 0;
	l->last_ms = now_ms;
	l->used = true;
	return true;
}

uint64_t
log_limit_flush(struct log_limit *l, uint64_t now_ms)
{
	uint64_t held = l->held;

	if (held == 0 || now_ms - l->last_ms < 1000)
		return 0;
	l->held = 0;
	l->last_ms = now_ms;
	return held;
}

/* Bytes in the well-formed UTF-8 character at p (n bytes left), 0 when it is not one:
 * no overlongs, surrogates or code points past U+10FFFF. */
static size_t
utf8_char(const unsigned char *p, size_t n)
{
	size_t len = p[0] < 0xc2 ? 0 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : p[0] < 0xf5 ? 4 : 0;
	unsigned lo = p[0] == 0xe0 ? 0xa0 : p[0] == 0xf0 ? 0x90 : 0x80;
	unsigned hi = p[0] == 0xed ? 0x9f : p[0] == 0xf4 ? 0x8f : 0xbf;

	if (len == 0 || n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

char *
log_clean(char *dst, size_t n, const char *src, size_t len)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t o = 0, i = 0;

	while (i < len && p[i] != '\0') {
		size_t c = p[i] >= 0x80 ? utf8_char(p + i, len - i) : 1;

		if (o + (c > 0 ? c : 1) >= n)
			break;
		if (c == 0 || p[i] < 0x20 || p[i] == 0x7f) {
			dst[o++] = '?';
			i += c > 0 ? c : 1;
			continue;
		}
		memcpy(dst + o, p + i, c);
		o += c;
		i += c;
	}
	dst[o] = '\0';
	return dst;
}
