/* cidr.c: addresses and CIDR blocks on top of inet_pton/inet_ntop, which are strict
 * (no leading zeros or shorthand in IPv4, no zone ids), so whatever they accept is a
 * plain numeric address. Mapped IPv6 addresses are folded to IPv4 here, once, so that
 * matching and printing never have to think about them. */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Folds ::ffff:a.b.c.d to a.b.c.d. */
static void
unmap(struct cidr_addr *a)
{
	if (a->family == 6 && memcmp(a->bytes, mapped_prefix, 12) == 0) {
		memmove(a->bytes, a->bytes + 12, 4);
		memset(a->bytes + 4, 0, 12);
		a->family = 4;
	}
}

int
cidr_addr_parse(const char *s, size_t len, struct cidr_addr *out)
{
	char buf[CIDR_ADDR_STRLEN];
	struct cidr_addr a = { 0 };

	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, a.bytes) == 1)
		a.family = 4;
	else if (inet_pton(AF_INET6, buf, a.bytes) == 1)
		a.family = 6;
	else
		return -EINVAL;
	unmap(&a);
	*out = a;
	return 0;
}

/* 0-max in decimal without sign, spaces or leading zeros. */
static int
parse_prefix(const char *s, unsigned max, unsigned *out)
{
	unsigned n = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -EINVAL;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 3)
			return -EINVAL;
		n = n * 10 + (unsigned)(s[i] - '0');
	}
	if (n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

/* Clears every bit of a past prefix; returns true if any was set. */
static bool
mask(struct cidr_addr *a, unsigned prefix)
{
	bool dirty = false;

	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
		uint8_t m = (uint8_t)(0xff00u >> keep);

		if (a->bytes[i] & ~m)
			dirty = true;
		a->bytes[i] &= m;
	}
	return dirty;
}

int
cidr_parse(const char *s, struct cidr *out)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	struct cidr c = { 0 };
	unsigned max;
	bool was_mapped;

	/* The address is parsed before folding, to know which prefix range applies. */
	if (cidr_addr_parse(s, alen, &c.addr) != 0)
		return -EINVAL;
	was_mapped = c.addr.family == 4 && memchr(s, ':', alen) != NULL;
	max = c.addr.family == 4 && !was_mapped ? 32 : 128;
	if (slash == NULL)
		c.prefix = max;
	else if (parse_prefix(slash + 1, max, &c.prefix) != 0)
		return -EINVAL;
	if (was_mapped) {
		if (c.prefix < 96) {
			/* A block wider than the mapped range is an IPv6 block. */
			memmove(c.addr.bytes + 12, c.addr.bytes, 4);
			memcpy(c.addr.bytes, mapped_prefix, 12);
			c.addr.family = 6;
		} else {
			c.prefix -= 96;
		}
	}
	if (mask(&c.addr, c.prefix)) {
		*out = c;
		return -EDOM;
	}
	*out = c;
	return 0;
}

int
cidr_addr_from_sockaddr(const struct sockaddr *sa, struct cidr_addr *out)
{
	struct cidr_addr a = { 0 };

	if (sa->sa_family == AF_INET) {
		memcpy(a.bytes, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		a.family = 4;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a.bytes, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		a.family = 6;
		unmap(&a);
	} else {
		return -EAFNOSUPPORT;
	}
	*out = a;
	return 0;
}

bool
cidr_match(const struct cidr *c, const struct cidr_addr *a)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (a->family != c->addr.family || a->family == 0)
		return false;
	if (memcmp(a->bytes, c->addr.bytes, full) != 0)
		return false;
	return rest == 0 || ((a->bytes[full] ^ c->addr.bytes[full]) & (0xff00u >> rest)) == 0;
}

bool
cidr_list_match(const struct cidr *list, size_t n, const struct cidr_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_match(&list[i], a))
			return true;
	return false;
}

bool
cidr_addr_equal(const struct cidr_addr *a, const struct cidr_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, 16) == 0;
}

void
cidr_addr_format(const struct cidr_addr *a, char out[CIDR_ADDR_STRLEN])
{
	out[0] = '\0';
	if (a->family == 4 || a->family == 6)
		inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->bytes, out, CIDR_ADDR_STRLEN);
}

void
cidr_format(const struct cidr *c, char out[CIDR_STRLEN])
{
	char addr[CIDR_ADDR_STRLEN];

	cidr_addr_format(&c->addr, addr);
	snprintf(out, CIDR_STRLEN, "%s/%u", addr, c->prefix);
}
