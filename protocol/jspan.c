/* jspan.c: finds the exact bytes of a top-level member's value in JSON text.
 * Used so that a published "data" value reaches subscribers byte for byte, without a
 * decode/encode round trip (which would rewrite numbers such as 0.1). The input has
 * already been validated by jansson, so this scanner only has to skip, not to judge.
 */
#include "proto.h"

#include <string.h>

struct scan {
	const char *p, *end;
};

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* s->p at the opening quote; leaves s->p after the closing quote. */
static int
skip_string(struct scan *s)
{
	s->p++;
	while (s->p < s->end) {
		if (*s->p == '\\') {
			s->p += 2;
			continue;
		}
		if (*s->p++ == '"')
			return 0;
	}
	return -1;
}

/* Skips one value of any kind. Nesting is tracked with a counter: brackets inside
 * strings are skipped with the strings. */
static int
skip_value(struct scan *s)
{
	int depth = 0;

	do {
		skip_ws(s);
		if (s->p >= s->end)
			return -1;
		switch (*s->p) {
		case '"':
			if (skip_string(s) != 0)
				return -1;
			break;
		case '{':
		case '[':
			depth++;
			s->p++;
			break;
		case '}':
		case ']':
			depth--;
			s->p++;
			break;
		case ',':
		case ':':
			s->p++;
			break;
		default: /* number, true, false, null */
			while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
				s->p++;
			break;
		}
	} while (depth > 0);
	return depth == 0 ? 0 : -1;
}

/* Compares the raw key token [start, end) (quotes excluded) with key. A key written
 * with escapes is decoded by jansson, which is rare and not on a hot path. */
static bool
key_equals(const char *start, const char *end, const char *key)
{
	size_t n = (size_t)(end - start);
	json_t *decoded;
	bool eq;

	if (memchr(start, '\\', n) == NULL)
		return n == strlen(key) && memcmp(start, key, n) == 0;
	decoded = json_loadb(start - 1, n + 2, JSON_DECODE_ANY, NULL);
	eq = json_is_string(decoded) && json_string_length(decoded) == strlen(key) &&
	     memcmp(json_string_value(decoded), key, strlen(key)) == 0;
	json_decref(decoded);
	return eq;
}

int
proto_find_member(const char *buf, size_t len, const char *key, const char **start, size_t *vlen)
{
	struct scan s = { buf, buf + len };

	skip_ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return -1;
	s.p++;
	for (;;) {
		const char *kstart, *kend, *vstart;

		skip_ws(&s);
		if (s.p >= s.end || *s.p != '"')
			return -1;
		kstart = s.p + 1;
		if (skip_string(&s) != 0)
			return -1;
		kend = s.p - 1;
		skip_ws(&s);
		if (s.p >= s.end || *s.p != ':')
			return -1;
		s.p++;
		skip_ws(&s);
		vstart = s.p;
		if (skip_value(&s) != 0)
			return -1;
		if (key_equals(kstart, kend, key)) {
			*start = vstart;
			*vlen = (size_t)(s.p - vstart);
			return 0;
		}
		skip_ws(&s);
		if (s.p >= s.end || *s.p != ',')
			return -1;
		s.p++;
	}
}
