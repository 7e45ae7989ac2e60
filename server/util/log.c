/* log.c: the stderr emitter behind log.h, as text lines or one JSON object a line. */
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

/* Writes text as the inside of a JSON string into out (size n > 0): quotes, backslashes
 * and control bytes escaped. Bytes >= 0x80 pass through; callers log UTF-8 or ASCII
 * (client bytes are sanitized before they reach a log line). */
static void
json_escape(char *out, size_t n, const char *text)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0' && o + 7 < n; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", *p);
		} else {
			out[o++] = (char)*p;
		}
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
