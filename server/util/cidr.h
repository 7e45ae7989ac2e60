/* cidr.h: IP addresses and CIDR blocks, parsed, matched and printed (trusted_proxies).
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for an
 * IPv4 peer) is stored as the IPv4 address, so it matches IPv4 entries and prints the
 * same way. Pure: no sockets are opened, nothing is allocated. */
#ifndef SWITCHBOARD_CIDR_H
#define SWITCHBOARD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Longest printed address ("ffff:...:255.255.255.255" is 45 bytes) and a CIDR. */
#define CIDR_ADDR_STRLEN 46
#define CIDR_STRLEN 50

/* One address; a value type. */
struct cidr_addr {
	uint8_t family;	   /* 4 or 6; 0 for none */
	uint8_t bytes[16]; /* network order; IPv4 uses the first 4 */
};

/* One block: addr (with every bit past prefix zero) and its prefix length. */
struct cidr {
	struct cidr_addr addr;
	unsigned prefix; /* 0-32 for IPv4, 0-128 for IPv6 */
};

/* Parses an address without brackets, port or zone (len bytes of s, no NUL needed).
 * Returns 0, or -EINVAL (out unchanged). */
int cidr_addr_parse(const char *s, size_t len, struct cidr_addr *out);

/* Parses a NUL-terminated "addr" (a /32 or /128) or "addr/prefix". Returns 0; -EINVAL
 * if it is neither; -EDOM if bits past the prefix are set, with out holding the block
 * they were meant to be (10.0.0.1/8 gives 10.0.0.0/8), for the error message. A mapped
 * ::ffff:a.b.c.d/n is the IPv4 block a.b.c.d/(n-96) (n < 96 has the ffff bits set). */
int cidr_parse(const char *s, struct cidr *out);

/* The address of a socket peer (AF_INET or AF_INET6). Returns 0, or -EAFNOSUPPORT. */
int cidr_addr_from_sockaddr(const struct sockaddr *sa, struct cidr_addr *out);

/* True if a is inside c (always false across families). */
bool cidr_match(const struct cidr *c, const struct cidr_addr *a);

/* True if a is inside any of the n blocks of list. */
bool cidr_list_match(const struct cidr *list, size_t n, const struct cidr_addr *a);

/* True if a and b are the same address. */
bool cidr_addr_equal(const struct cidr_addr *a, const struct cidr_addr *b);

/* Prints a in its canonical form (RFC 5952 for IPv6); "" for family 0. */
void cidr_addr_format(const struct cidr_addr *a, char out[CIDR_ADDR_STRLEN]);

/* Prints c as "addr/prefix". */
void cidr_format(const struct cidr *c, char out[CIDR_STRLEN]);

#endif
