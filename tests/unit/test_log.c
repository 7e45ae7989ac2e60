/* test_log.c: the once-a-second limiter of lines that repeat (struct log_limit), the
 * cleaning of client bytes for a log line, and the two record formats of log_emit. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---- log_limit ---- */

Test(log_limit, the_first_event_is_logged_with_nothing_held)
{
	struct log_limit l = { 0 };
	uint64_t held = 99;

	/* Time 0 is a time like any other: a zeroed limiter has logged nothing yet. */
	cr_expect(log_limit_take(&l, 0, &held));
	cr_expect_eq(held, 0);
}

Test(log_limit, events_within_a_second_are_held_and_counted_with_the_next_line)
{
	struct log_limit l = { 0 };
	uint64_t held = 0;

	cr_assert(log_limit_take(&l, 5000, &held));
	for (uint64_t t = 5000; t < 6000; t += 10)
		cr_expect_not(log_limit_take(&l, t, &held), "logged at %llu",
			      (unsigned long long)t);
	/* A second after the last line: logged, with the 100 held back since. */
	cr_expect(log_limit_take(&l, 6000, &held));
	cr_expect_eq(held, 100, "held %llu", (unsigned long long)held);
	/* The count restarts from there. */
	cr_expect_not(log_limit_take(&l, 6001, &held));
	cr_expect(log_limit_take(&l, 9000, &held));
	cr_expect_eq(held, 1);
}

Test(log_limit, a_steady_flood_gives_one_line_a_second)
{
	struct log_limit l = { 0 };
	uint64_t held = 0, lines = 0, counted = 0;

	/* 1000 events a second for 10 s. */
	for (uint64_t t = 0; t < 10000; t++) {
		if (log_limit_take(&l, t, &held)) {
			lines++;
			counted += held;
		}
	}
	cr_expect_eq(lines, 10, "%llu lines", (unsigned long long)lines);
	/* Every event is either a line or counted in a later one, but the last second's. */
	cr_expect_eq(lines + counted + l.held, 10000);
}

Test(log_limit, flush_reports_what_is_held_once_a_second_has_passed)
{
	struct log_limit l = { 0 };
	uint64_t held = 0;

	cr_expect_eq(log_limit_flush(&l, 100), 0, "nothing logged, nothing to flush");
	cr_assert(log_limit_take(&l, 1000, &held));
	cr_expect_eq(log_limit_flush(&l, 1500), 0, "nothing held");
	cr_expect_not(log_limit_take(&l, 1200, &held));
	cr_expect_not(log_limit_take(&l, 1300, &held));
	cr_expect_eq(log_limit_flush(&l, 1999), 0, "flushed before the second was over");
	cr_expect_eq(log_limit_flush(&l, 2000), 2);
	cr_expect_eq(log_limit_flush(&l, 5000), 0, "flushed twice");
}

Test(log_limit, a_flush_counts_as_the_causes_line)
{
	struct log_limit l = { 0 };
	uint64_t held = 0;

	cr_assert(log_limit_take(&l, 0, &held));
	cr_assert_not(log_limit_take(&l, 10, &held));
	cr_assert_eq(log_limit_flush(&l, 1000), 1);
	/* Within a second of the flushed line: held again. */
	cr_expect_not(log_limit_take(&l, 1500, &held));
	cr_expect(log_limit_take(&l, 2000, &held));
	cr_expect_eq(held, 1);
}

/* ---- log_clean ---- */

static const char *
clean(const char *s, size_t n)
{
	static char out[64];

	return log_clean(out, n, s, strlen(s));
}

Test(log_clean, printable_utf8_passes_unchanged)
{
	cr_expect_str_eq(clean("alice", 64), "alice");
	cr_expect_str_eq(clean("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 64),
			 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	cr_expect_str_eq(clean("", 64), "");
}

Test(log_clean, control_bytes_become_question_marks)
{
	/* A user id with a newline must not start a second log line. */
	cr_expect_str_eq(clean("bob\nE forged line", 64), "bob?E forged line");
	cr_expect_str_eq(clean("a\rb\tc\x1b[31m\x7f", 64), "a?b?c?[31m?");
}

Test(log_clean, invalid_utf8_becomes_question_marks)
{
	cr_expect_str_eq(clean("\xff\xfe", 64), "??");
	cr_expect_str_eq(clean("a\xc3", 64), "a?");		 /* cut sequence */
	cr_expect_str_eq(clean("\xc0\xaf", 64), "??");		 /* overlong '/' */
	cr_expect_str_eq(clean("\xed\xa0\x80", 64), "???");	 /* surrogate */
	cr_expect_str_eq(clean("\xf4\x90\x80\x80", 64), "????"); /* past U+10FFFF */
}

Test(log_clean, the_copy_is_cut_at_a_character_boundary)
{
	char out[8];

	cr_expect_str_eq(clean("abcdefghij", 5), "abcd");
	/* 3 + 3 bytes fit in 7; a third euro sign does not fit whole. */
	cr_expect_str_eq(log_clean(out, sizeof(out), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9),
			 "\xe2\x82\xac\xe2\x82\xac");
	/* len bounds the source: it need not be NUL-terminated. */
	cr_expect_str_eq(log_clean(out, sizeof(out), "abcdef", 3), "abc");
}

/* ---- the record formats ---- */

/* What log_emit writes to stderr for one record, as a new string. */
static char *
emitted(enum log_format format, enum log_level level, const char *text)
{
	char path[] = "/tmp/test_log_XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char *buf = calloc(1, 4096);
	FILE *f;

	cr_assert(fd >= 0 && saved >= 0 && buf != NULL);
	fflush(stderr);
	dup2(fd, 2);
	log_format_current = format;
	log_emit(level, "%s", text);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	rewind(f);
	cr_assert_gt(fread(buf, 1, 4095, f), 0);
	fclose(f);
	unlink(path);
	return buf;
}

Test(log_emit, json_records_are_one_object_a_line_with_time_level_msg)
{
	const char *text = "ws: client=n-1 user=\"q\" \\ back\x01slash";
	char *line = emitted(LOG_FORMAT_JSON, LOG_WARN, text);
	json_error_t err;
	json_t *o;

	cr_assert_eq(strchr(line, '\n'), line + strlen(line) - 1, "not one line: %s", line);
	o = json_loads(line, 0, &err);
	cr_assert_not_null(o, "%s: %s", err.text, line);
	cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "warn");
	cr_expect_str_eq(json_string_value(json_object_get(o, "msg")), text);
	cr_expect_eq(strlen(json_string_value(json_object_get(o, "time"))),
		     strlen("2026-01-01T00:00:00.000Z"));
	json_decref(o);
	free(line);
}

Test(log_emit, text_records_are_time_letter_text)
{
	char *line = emitted(LOG_FORMAT_TEXT, LOG_INFO, "api: key=- 401");

	cr_expect_eq(line[4], '-');
	cr_expect_str_eq(line + strlen("2026-01-01T00:00:00.000Z"), " I api: key=- 401\n");
	free(line);
}

Test(log_emit, json_records_stay_valid_json_with_bytes_that_are_not_utf8)
{
	char *line = emitted(LOG_FORMAT_JSON, LOG_ERROR, "host \"\xff\xfe\" caf\xc3\xa9 \xe2\x82");
	json_error_t err;
	json_t *o = json_loads(line, 0, &err);

	cr_assert_not_null(o, "%s: %s", err.text, line);
	cr_expect_str_eq(json_string_value(json_object_get(o, "msg")),
			 "host \"??\" caf\xc3\xa9 ??");
	json_decref(o);
	free(line);
}
