/* forwarded.c: X-Forwarded-For and Forwarded (RFC 7239) parsing and the walk from the
 * right. Hops are kept in a ring of the rightmost max, so a header of any length costs
 * one pass and no allocation. Node syntax is accepted loosely in both headers ("addr",
 * "addr:port", "[v6]:port", bare v6): leniency on the left, where the client writes,
 * changes nothing, since the walk never believes a hop that no trusted proxy vouched for. */
#include "forwarded.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* The rightmost max hops seen so far: hops[(seen - k) % max] is the k-th from the right. */
struct ring {
	struct forwarded_hop *hops;
	size_t max, seen;
};

static void
ring_push(struct ring *r, const struct forwarded_hop *h)
{
	if (r->max == 0)
		return;
	r->hops[r->seen % r->max] = *h;
	r->seen++;
}

static void
reverse(struct forwarded_hop *h, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		struct forwarded_hop t = h[i];

		h[i] = h[n - 1 - i];
		h[n - 1 - i] = t;
	}
}

/* Puts the kept hops in order, left to right, at the start; returns their count. */
static size_t
ring_finish(struct ring *r)
{
	size_t start;

	if (r->seen <= r->max)
		return r->seen;
	/* A rotation left by start, as three reversals. */
	start = r->seen % r->max;
	reverse(r->hops, start);
	reverse(r->hops + start, r->max - start);
	reverse(r->hops, r->max);
	return r->max;
}

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 7239 node-port: 1-5 digits, or an obfuscated "_" 1*(ALPHA / DIGIT / "." / "_" / "-"). */
static bool
port_valid(const char *s, size_t len)
{
	if (len >= 2 && s[0] == '_') {
		for (size_t i = 1; i < len; i++)
			if (!(is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'z') ||
			      (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '.' || s[i] == '_' ||
			      s[i] == '-'))
				return false;
		return true;
	}
	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* One node: "a.b.c.d", "a.b.c.d:port", "[v6]", "[v6]:port" or a bare v6 address. False
 * for anything else, "unknown" and obfuscated names included. */
static bool
parse_node(const char *s, size_t len, struct cidr_addr *out)
{
	const char *colon;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		size_t alen;

		if (close == NULL)
			return false;
		alen = (size_t)(close - s - 1);
		/* Brackets hold IPv6 text only ("[1.2.3.4]" is not a node). */
		if (memchr(s + 1, ':', alen) == NULL || cidr_addr_parse(s + 1, alen, out) != 0)
			return false;
		len -= alen + 2;
		s = close + 1;
		return len == 0 || (s[0] == ':' && port_valid(s + 1, len - 1));
	}
	colon = memchr(s, ':', len);
	if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
		/* One colon: IPv4 and a port. */
		size_t alen = (size_t)(colon - s);

		return port_valid(colon + 1, len - alen - 1) && memchr(s, ':', alen) == NULL &&
		       cidr_addr_parse(s, alen, out) == 0 && out->family == 4;
	}
	return cidr_addr_parse(s, len, out) == 0;
}

static void
push_node(struct ring *r, const char *s, size_t len)
{
	struct forwarded_hop h = { 0 };

	h.known = parse_node(s, len, &h.addr);
	if (!h.known)
		memset(&h.addr, 0, sizeof(h.addr));
	ring_push(r, &h);
}

size_t
forwarded_parse_xff(const char *s, size_t len, struct forwarded_hop *hops, size_t max)
{
	struct ring r = { hops, max, 0 };
	size_t i = 0;

	while (i < len) {
		size_t start, end;

		while (i < len && is_ows(s[i]))
			i++;
		start = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		while (end > start && is_ows(s[end - 1]))
			end--;
		if (end > start)
			push_node(&r, s + start, end - start);
		i++; /* past the comma */
	}
	return ring_finish(&r);
}

/* RFC 7230 tchar. */
static bool
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A byte of an unquoted value: RFC 7239 says token, but "for=[::1]:80" and
 * "for=1.2.3.4:80" are common unquoted; any visible ASCII but the delimiters. */
static bool
is_value_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != ',' && c != ';' && c != '"' && c != '\\';
}

/* Bytes of a node worth keeping ("[v6]:port" is at most 54). */
#define NODE_MAX 64

struct value {
	char buf[NODE_MAX];
	size_t len;
	bool too_long;
};

static void
value_add(struct value *v, char c)
{
	if (v->len < sizeof(v->buf))
		v->buf[v->len++] = c;
	else
		v->too_long = true;
}

/* A quoted-string at s[*i] (the opening quote), unescaped into v. -EINVAL if it is
 * unterminated or holds a control character. */
static int
parse_quoted(const char *s, size_t len, size_t *i, struct value *v)
{
	for ((*i)++; *i < len; (*i)++) {
		unsigned char c = (unsigned char)s[*i];

		if (c == '"') {
			(*i)++;
			return 0;
		}
		if (c == '\\') {
			if (++*i == len)
				return -EINVAL;
			c = (unsigned char)s[*i];
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EINVAL;
		value_add(v, (char)c);
	}
	return -EINVAL;
}

/* Parameters that may appear once per element; extensions are not checked. */
static const char *const known_params[] = { "for", "by", "proto", "host" };

/* One forwarded-element at s[*i], up to the ',' that ends it (or the end); pushes its
 * hop. Returns 0 or -EINVAL. */
static int
parse_element(const char *s, size_t len, size_t *i, struct ring *r)
{
	struct value node = { 0 };
	unsigned seen = 0;

	for (;;) {
		size_t name, nlen;
		struct value v = { 0 };
		unsigned p;

		while (*i < len && is_ows(s[*i]))
			(*i)++;
		if (*i == len || s[*i] == ',')
			break;
		if (s[*i] == ';') { /* an empty pair */
			(*i)++;
			continue;
		}
		for (name = *i; *i < len && is_tchar((unsigned char)s[*i]); (*i)++)
			;
		nlen = *i - name;
		if (nlen == 0 || *i == len || s[*i] != '=')
			return -EINVAL;
		(*i)++;
		if (*i < len && s[*i] == '"') {
			if (parse_quoted(s, len, i, &v) != 0)
				return -EINVAL;
		} else {
			for (; *i < len && is_value_char((unsigned char)s[*i]); (*i)++)
				value_add(&v, s[*i]);
			if (v.len == 0)
				return -EINVAL;
		}
		for (p = 0; p < sizeof(known_params) / sizeof(known_params[0]); p++)
			if (strlen(known_params[p]) == nlen &&
			    strncasecmp(s + name, known_params[p], nlen) == 0)
				break;
		if (p < sizeof(known_params) / sizeof(known_params[0])) {
			if (seen & (1u << p))
				return -EINVAL;
			seen |= 1u << p;
			if (p == 0)
				node = v;
		}
		while (*i < len && is_ows(s[*i]))
			(*i)++;
		if (*i < len && s[*i] != ';' && s[*i] != ',')
			return -EINVAL;
		if (*i < len && s[*i] == ';')
			(*i)++;
	}
	/* Without a usable for= (none, "", or too long to be an address) the hop is unknown. */
	if (node.len > 0 && !node.too_long) {
		push_node(r, node.buf, node.len);
	} else {
		struct forwarded_hop h = { 0 };

		ring_push(r, &h);
	}
	return 0;
}

int
forwarded_parse_rfc7239(const char *s, size_t len, struct forwarded_hop *hops, size_t max)
{
	struct ring r = { hops, max, 0 };
	size_t i = 0;

	while (i < len) {
		while (i < len && is_ows(s[i]))
			i++;
		if (i == len)
			break;
		if (s[i] == ',') { /* an empty element */
			i++;
			continue;
		}
		if (parse_element(s, len, &i, &r) != 0)
			return -EINVAL;
		if (i < len)
			i++; /* past the comma */
	}
	return (int)ring_finish(&r);
}

bool
forwarded_pick(const struct forwarded_hop *hops, size_t n, const struct cidr *trusted,
	       size_t ntrusted, struct cidr_addr *out)
{
	const struct cidr_addr *last = NULL;

	for (size_t k = n; k-- > 0;) {
		if (!hops[k].known)
			break;
		if (!cidr_list_match(trusted, ntrusted, &hops[k].addr)) {
			*out = hops[k].addr;
			return true;
		}
		last = &hops[k].addr;
	}
	if (last == NULL)
		return false;
	*out = *last;
	return true;
}

/* The client one header names: 1 with out set, 0 when it has no hops (as if absent),
 * -1 when it is there but gives no address (malformed, or no usable hop). */
static int
resolve(struct forwarded_header h, bool rfc7239, const struct cidr *trusted, size_t ntrusted,
	struct cidr_addr *out)
{
	struct forwarded_hop hops[FORWARDED_MAX_HOPS];
	int n;

	if (h.s == NULL)
		return 0;
	if (rfc7239)
		n = forwarded_parse_rfc7239(h.s, h.len, hops, FORWARDED_MAX_HOPS);
	else
		n = (int)forwarded_parse_xff(h.s, h.len, hops, FORWARDED_MAX_HOPS);
	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	return forwarded_pick(hops, (size_t)n, trusted, ntrusted, out) ? 1 : -1;
}

void
forwarded_client(const struct cidr_addr *peer, const struct cidr *trusted, size_t ntrusted,
		 struct forwarded_header xff, struct forwarded_header fwd, struct cidr_addr *out)
{
	struct cidr_addr a, b;
	int ra, rb;

	*out = *peer;
	if (!cidr_list_match(trusted, ntrusted, peer))
		return;
	ra = resolve(xff, false, trusted, ntrusted, &a);
	rb = resolve(fwd, true, trusted, ntrusted, &b);
	if (ra < 0 || rb < 0)
		return;
	if (ra == 1 && rb == 1) {
		if (cidr_addr_equal(&a, &b))
			*out = a;
		return;
	}
	if (ra == 1)
		*out = a;
	else if (rb == 1)
		*out = b;
}
