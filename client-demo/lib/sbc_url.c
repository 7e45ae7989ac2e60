/* sbc_url.c: splits ws[s]://host[:port][/path][?query] into what lws's client connect
 * needs. The pieces point into one owned buffer laid out as "host[:port]\0/path".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbc_internal.h"

static int
bad(char *why, size_t why_len, const char *fmt, const char *url)
{
	if (why_len > 0)
		snprintf(why, why_len, fmt, url);
	return -EINVAL;
}

/* Moves the path into place after the host: buf holds "host[:port]\0/path". */
static void
split_path(struct sbc_url *u)
{
	char *slash = strpbrk(u->buf, "/?");

	if (slash == NULL) {
		u->path = "/";
		return;
	}
	memmove(slash + 1, slash, strlen(slash) + 1);
	*slash++ = '\0';
	if (*slash == '?') {
		/* A query without a path: the path is "/" followed by the query. */
		memmove(slash + 1, slash, strlen(slash) + 1);
		*slash = '/';
	}
	u->path = slash;
}

static int
parse_host(struct sbc_url *u, const char *url, char *why, size_t why_len)
{
	char *host = u->buf, *colon, *end;
	long port;

	if (strchr(host, '@') != NULL)
		return bad(why, why_len, "user information is not supported%s", "");
	if (host[0] == '[') {
		char *p = strchr(host, ']');

		if (p == NULL)
			return bad(why, why_len, "unterminated IPv6 address%s", "");
		*p++ = '\0';
		u->address = host + 1;
		colon = *p == ':' ? p : NULL;
		if (*p != '\0' && colon == NULL)
			return bad(why, why_len, "bad host \"%s\"", url);
	} else {
		colon = strchr(host, ':');
		u->address = host;
	}
	u->port = u->tls ? 443 : 80;
	if (colon != NULL) {
		*colon = '\0';
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
			return bad(why, why_len, "bad port in \"%s\"", url);
		u->port = (int)port;
	}
	if (u->address[0] == '\0')
		return bad(why, why_len, "missing host in \"%s\"", url);
	return 0;
}

int
sbc_url_parse(const char *url, struct sbc_url *u, char *why, size_t why_len)
{
	const char *rest;
	size_t n;
	int rc;

	*u = (struct sbc_url){ 0 };
	if (url != NULL && strncmp(url, "ws://", 5) == 0) {
		rest = url + 5;
	} else if (url != NULL && strncmp(url, "wss://", 6) == 0) {
		rest = url + 6;
		u->tls = true;
	} else {
		return bad(why, why_len,
			   "expected ws://HOST[:PORT][/PATH] or wss://..., got \"%s\"",
			   url != NULL ? url : "");
	}
	u->buf = malloc(strlen(rest) + 3);
	if (u->buf == NULL)
		return bad(why, why_len, "out of memory%s", "");
	strcpy(u->buf, rest);
	split_path(u);
	rc = parse_host(u, url, why, why_len);
	if (rc != 0) {
		free(u->buf);
		u->buf = NULL;
		return rc;
	}
	snprintf(u->host, sizeof(u->host), strchr(u->address, ':') ? "[%s]" : "%s", u->address);
	n = strlen(u->host);
	if (u->port != (u->tls ? 443 : 80))
		snprintf(u->host + n, sizeof(u->host) - n, ":%d", u->port);
	return 0;
}

int
sbc_url_check(const char *url, char *why, size_t why_len)
{
	struct sbc_url u;
	int rc = sbc_url_parse(url, &u, why, why_len);

	free(u.buf);
	return rc;
}
