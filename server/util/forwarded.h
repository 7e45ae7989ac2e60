/* forwarded.h: the client address of a request that came through reverse proxies,
 * from X-Forwarded-For and Forwarded (RFC 7239). Pure (no sockets, no allocation), so
 * hostile header values can be fed to it directly.
 *
 * Only hops added by trusted proxies can be believed: the client writes whatever it
 * likes on the left of the list, and each proxy appends the address it received the
 * request from. So the list is walked from the right, past trusted proxies, and the
 * first address that is not one is the client. */
#ifndef SWITCHBOARD_FORWARDED_H
#define SWITCHBOARD_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"

/* Hops kept from the right of a header; the ones further left are never needed
 * unless more than this many trusted proxies sit in a row. */
#define FORWARDED_MAX_HOPS 64

/* One hop of a header: an address, or a node that names none ("unknown", an
 * obfuscated "_id", anything unparsable as an address). */
struct forwarded_hop {
	bool known; /* addr is set */
	struct cidr_addr addr;
};

/* A header value: len bytes at s; s NULL when the request has no such header. Several
 * lines of one header are one list: pass them joined with ',' (as lws does). */
struct forwarded_header {
	const char *s;
	size_t len;
};

/* Parses an X-Forwarded-For value into the rightmost hops (at most max, in order, left
 * to right); elements are "addr", "addr:port", "[v6]", "[v6]:port" or anything else
 * (an unknown hop); empty elements are skipped. Returns how many hops it stored. */
size_t forwarded_parse_xff(const char *s, size_t len, struct forwarded_hop *hops, size_t max);

/* Parses a Forwarded value the same way; each element's for= parameter (a token or a
 * quoted string: "[v6]:port", "unknown", "_obf") is its hop, and an element without
 * for= is an unknown hop. Returns how many hops it stored, or -EINVAL when the value is
 * not valid RFC 7239 syntax (an unterminated quote, a pair without '=', a parameter
 * given twice in one element, control characters). */
int forwarded_parse_rfc7239(const char *s, size_t len, struct forwarded_hop *hops, size_t max);

/* The client of one parsed list: walks hops from the right past the trusted ones and
 * returns the first address that is not trusted; if every hop is trusted, the leftmost
 * one. A hop with no address ends the walk there (nothing further left can be
 * believed): then the last trusted address passed is the answer. Returns false when
 * there is none (no hops, or the rightmost names no address). */
bool forwarded_pick(const struct forwarded_hop *hops, size_t n, const struct cidr *trusted,
		    size_t ntrusted, struct cidr_addr *out);

/* The client address of a request from peer. Not from a trusted proxy: peer. From one:
 * the address the headers give (forwarded_pick), else peer: when neither header is
 * there, when one is malformed, when its walk gives no address, or when both are there
 * and disagree (a proxy manages one of them; the client may have written the other). */
void forwarded_client(const struct cidr_addr *peer, const struct cidr *trusted, size_t ntrusted,
		      struct forwarded_header xff, struct forwarded_header fwd,
		      struct cidr_addr *out);

#endif
