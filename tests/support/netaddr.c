/* netaddr.c: see netaddr.h. */
#include "netaddr.h"

#include <string.h>

#include <criterion/criterion.h>

struct cidr_addr
netaddr(const char *s)
{
	struct cidr_addr a;

	cr_assert_eq(cidr_addr_parse(s, strlen(s), &a), 0, "%s does not parse", s);
	return a;
}
