/* netaddr.h: addresses written as text in unit tests of util/cidr and util/forwarded,
 * parsed with an assertion so that a typo in a test fails it at once. */
#ifndef SWITCHBOARD_TEST_NETADDR_H
#define SWITCHBOARD_TEST_NETADDR_H

#include "cidr.h"

/* The IPv4 or IPv6 address s (cidr_addr_parse()); asserts that it parses. */
struct cidr_addr netaddr(const char *s);

#endif
