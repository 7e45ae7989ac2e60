/* log.h: one-line log records on stderr, filtered by a process-wide level.
 * The macros test the level before formatting anything, so debug logging in a hot path
 * costs one comparison when it is off. The level is the only global in the server. */
#ifndef SWITCHBOARD_LOG_H
#define SWITCHBOARD_LOG_H

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

#define log_at(lvl, ...)                                   \
	do {                                               \
		if ((lvl) <= log_level_current)            \
			log_emit((lvl), __VA_ARGS__);      \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
