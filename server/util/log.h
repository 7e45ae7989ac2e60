/* log.h: one-line log records on stderr, filtered by a process-wide level.
 * The macros test the level before formatting anything, so debug logging in a hot path
 * costs one comparison when it is off. The level is the only global in the server. */
#ifndef SWITCHBOARD_LOG_H
#define SWITCHBOARD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

extern enum log_level log_level_current;
/* How records are written: "<time> <letter> <text>" or {"time","level","msg"}. Set
 * with the level, at start and on reload. */
extern enum log_format log_format_current;

int log_format_parse(const char *name, enum log_format *out);
const char *log_format_name(enum log_format f);

/* Parses "error" | "warn" | "info" | "debug"; returns 0 or -1. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_emit(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                                           \
	do {                                                                                       \
		if ((lvl) <= log_level_current)                                                    \
			log_emit((lvl), __VA_ARGS__);                                              \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

/* A line that can repeat fast (a refusal per request) is written at most once a second
 * per cause; the ones held back meanwhile are counted and reported by log_limit_flush a
 * second after the last line (or with the next line, if that comes first). Times are
 * the caller's milliseconds, any monotonic clock. Zeroed means nothing logged yet. */
struct log_limit {
	uint64_t last_ms; /* when the last line for this cause was written */
	uint64_t held;	  /* events held back since */
	bool used;	  /* a line was written */
};

/* An event at now_ms: true when its line should be written now, with *held set to the
 * events held back since the previous line (then reset); false when it is held back. */
bool log_limit_take(struct log_limit *l, uint64_t now_ms, uint64_t *held);
/* Once a second has passed since the last line: the events held back since (reset to
 * 0; a line reporting them counts as this cause's line), else 0. */
uint64_t log_limit_flush(struct log_limit *l, uint64_t now_ms);

/* Copies at most len bytes of src (client bytes: a user id, a close reason, a path) into
 * dst (size n > 0) fit for a log line: control bytes and invalid UTF-8 become '?', the
 * copy is cut at a character boundary. Returns dst. */
char *log_clean(char *dst, size_t n, const char *src, size_t len);

#endif
