/* output.c: what switchboard-cli writes (stdout lines, stderr notices) and the small
 * files it reads (tokens, secrets). Frames are printed as the server wrote them: JSON
 * values are never re-encoded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "proto.h"

#define TOKEN_FILE_MAX 65536 /* a token file may hold this much, whitespace included */

void
errmsg(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Writes s as one terminal-safe line fragment: control characters (C0, DEL, C1) are
 * shown as escapes, so a message cannot move the cursor or split the line. */
void
put_safe(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\r')
			fputs("\\r", f);
		else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
			 (unsigned char)s[i + 1] <= 0x9f)
			fprintf(f, "\\u%04x", (unsigned char)s[++i]);
		else
			fputc(ch, f);
	}
}

/* Finishes a line on stdout. A closed pipe (`sub ... | head`) ends the run quietly. */
void
end_line(struct cli *c)
{
	fputc('\n', stdout);
	if (fflush(stdout) == 0 && !ferror(stdout))
		return;
	if (errno != EPIPE)
		errmsg("cannot write to stdout: %s", strerror(errno));
	clearerr(stdout);
	cli_close(c, errno == EPIPE ? EXIT_OK : EXIT_SERVER);
}

/* Prints JSON text (a frame or a value inside one) as one line. A raw CR or LF in
 * valid JSON can only be whitespace between tokens, so a space keeps the JSON equal. */
/* Prints JSON text (a frame or a value inside one) as one line. A raw CR or LF in
 * valid JSON can only be whitespace between tokens, so a space keeps the JSON equal. */
void
print_json_line(struct cli *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fputc(s[i] == '\n' || s[i] == '\r' ? ' ' : s[i], stdout);
	end_line(c);
}

/* Calls print_json_line for the exact bytes of each element of a JSON array text
 * (already validated by jansson). Returns -1 if the text is not an array. */
static int
for_each_element(struct cli *c, const char *a, size_t len)
{
	const char *p = a, *end = a + len, *start = NULL, *stop = NULL;
	int depth = 0;

	while (p < end && strchr(" \t\r\n", *p) != NULL)
		p++;
	if (p == end || *p++ != '[')
		return -1;
	for (; p < end && !c->closing; p++) {
		char ch = *p;

		if (ch == '"') {
			if (start == NULL)
				start = p;
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
			stop = p + 1;
			continue;
		}
		if (depth == 0 && (ch == ',' || ch == ']')) {
			if (start != NULL)
				print_json_line(c, start, (size_t)(stop - start));
			start = NULL;
			if (ch == ']')
				return 0;
			continue;
		}
		if (strchr(" \t\r\n", ch) != NULL)
			continue;
		if (start == NULL)
			start = p;
		stop = p + 1;
		if (ch == '{' || ch == '[')
			depth++;
		else if (ch == '}' || ch == ']')
			depth--;
	}
	return c->closing ? 0 : -1;
}

void
print_elements(struct cli *c, const struct sbc_reply *r, const char *member)
{
	const char *arr;
	size_t arr_len;

	if (!json_is_array(json_object_get(r->frame, member)) ||
	    proto_find_member(r->raw, r->raw_len, member, &arr, &arr_len) != 0 ||
	    for_each_element(c, arr, arr_len) != 0) {
		errmsg("the %s reply has no \"%s\" array", member, member);
		cli_close(c, EXIT_SERVER);
	}
}

void
print_error_frame(const char *buf, size_t len)
{
	fflush(stdout);
	fputs(PROG ": server error: ", stderr);
	put_safe(stderr, buf, len);
	fputc('\n', stderr);
}

/* A token is sent as a JSON string: accept what a JWT is made of, printable ASCII. */
const char *
token_problem(const char *t)
{
	size_t n = strlen(t);

	if (n == 0)
		return "the token is empty";
	if (n > TOKEN_MAX)
		return "the token is longer than 8192 bytes";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return "the token must be printable ASCII without spaces";
	return NULL;
}

/* Reads the whole of path, at most max bytes (what: what the file holds, for the
 * message), into a malloc'd buffer with a NUL after the *len bytes read. Returns it, or
 * NULL with the reason in why. */
char *
read_small_file(const char *path, size_t max, const char *what, size_t *len, char *why,
		size_t why_len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	bool bad;

	if (f == NULL) {
		snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	bad = ferror(f) != 0;
	fclose(f);
	if (bad || n > max) {
		if (bad)
			snprintf(why, why_len, "cannot read %s", path);
		else
			snprintf(why, why_len, "%s is too large for %s", path, what);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Reads the token in path (surrounding whitespace dropped). Returns a malloc'd string,
 * or NULL with the reason in why. */
char *
read_token_file(const char *path, char *why, size_t why_len)
{
	size_t n;
	char *buf = read_small_file(path, TOKEN_FILE_MAX, "a token", &n, why, why_len), *s, *e;
	const char *problem;

	if (buf == NULL)
		return NULL;
	for (s = buf; *s != '\0' && strchr(" \t\r\n", *s) != NULL; s++)
		;
	for (e = buf + n; e > s && strchr(" \t\r\n", e[-1]) != NULL; e--)
		;
	*e = '\0';
	problem = token_problem(s);
	if (problem != NULL) {
		snprintf(why, why_len, "%s: %s", path, problem);
		free(buf);
		return NULL;
	}
	memmove(buf, s, (size_t)(e - s) + 1);
	return buf;
}
