/* test_cidr.c: server/util/cidr.h: parsing addresses and blocks (strictly), matching
 * across IPv4, IPv6 and IPv4-mapped IPv6, printing. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "cidr.h"
#include "leakcheck.h"
#include "netaddr.h"

static struct cidr
block(const char *s)
{
	struct cidr c;

	cr_assert_eq(cidr_parse(s, &c), 0, "%s does not parse", s);
	return c;
}

static bool
in(const char *blk, const char *a)
{
	struct cidr c = block(blk);
	struct cidr_addr x = netaddr(a);

	return cidr_match(&c, &x);
}

static void
expect_printed(const char *in_text, const char *want)
{
	struct cidr_addr a = netaddr(in_text);
	char out[CIDR_ADDR_STRLEN];

	cidr_addr_format(&a, out);
	cr_expect_str_eq(out, want, "%s printed as %s, not %s", in_text, out, want);
}

Test(cidr, addresses_of_both_families_parse)
{
	cr_expect_eq(netaddr("127.0.0.1").family, 4);
	cr_expect_eq(netaddr("0.0.0.0").family, 4);
	cr_expect_eq(netaddr("255.255.255.255").family, 4);
	cr_expect_eq(netaddr("::1").family, 6);
	cr_expect_eq(netaddr("::").family, 6);
	cr_expect_eq(netaddr("2001:DB8::Cafe").family, 6);
	cr_expect_eq(netaddr("fd00:1:2:3:4:5:6:7").family, 6);
}

Test(cidr, ipv4_mapped_ipv6_is_stored_as_ipv4)
{
	struct cidr_addr a = netaddr("::ffff:127.0.0.1"), b = netaddr("127.0.0.1");

	cr_expect_eq(a.family, 4);
	cr_expect(cidr_addr_equal(&a, &b));
	cr_expect(cidr_addr_equal(&(struct cidr_addr){ 0 }, &(struct cidr_addr){ 0 }));
	a = netaddr("::ffff:7f00:2");
	b = netaddr("127.0.0.2");
	cr_expect(cidr_addr_equal(&a, &b), "the hex form of a mapped address too");
	/* IPv4-compatible (::a.b.c.d, deprecated) is a plain IPv6 address. */
	cr_expect_eq(netaddr("::127.0.0.1").family, 6);
}

Test(cidr, anything_else_is_not_an_address)
{
	const char *bad[] = { "",
			      " 127.0.0.1",
			      "127.0.0.1 ",
			      "127.0.0",
			      "127.0.0.1.1",
			      "127.1",
			      "256.0.0.1",
			      "1.2.3.-4",
			      "01.2.3.4",
			      "0x7f.0.0.1",
			      "1.2.3.4:80",
			      "[::1]",
			      "::1%lo",
			      "fe80::1%eth0",
			      ":::",
			      "1::2::3",
			      "12345::",
			      "localhost",
			      "unknown",
			      "_hidden",
			      "::ffff:1.2.3.4.5",
			      "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255x" };
	struct cidr_addr a = { .family = 9 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(cidr_addr_parse(bad[i], strlen(bad[i]), &a), -EINVAL,
			     "accepted \"%s\"", bad[i]);
	cr_expect_eq(a.family, 9, "out is left alone on failure");
	/* A NUL inside the given length is not the end of the address. */
	cr_expect_eq(cidr_addr_parse("1.2.3.4\0x", 9, &a), -EINVAL);
	cr_expect_eq(cidr_addr_parse("1.2.3.4\0x", 7, &a), 0, "len bytes only");
}

Test(cidr, blocks_parse_with_or_without_prefix)
{
	struct cidr c = block("10.0.0.0/8");

	cr_expect_eq(c.addr.family, 4);
	cr_expect_eq(c.prefix, 8);
	cr_expect_eq(block("127.0.0.1").prefix, 32, "a bare address is a /32");
	cr_expect_eq(block("::1").prefix, 128, "a bare IPv6 address is a /128");
	cr_expect_eq(block("0.0.0.0/0").prefix, 0);
	cr_expect_eq(block("::/0").prefix, 0);
	cr_expect_eq(block("fd00::/8").prefix, 8);
	cr_expect_eq(block("1.2.3.4/32").prefix, 32);
	cr_expect_eq(block("2001:db8::/128").prefix, 128);
}

Test(cidr, mapped_blocks_become_ipv4_blocks)
{
	struct cidr c = block("::ffff:10.0.0.0/104");

	cr_expect_eq(c.addr.family, 4);
	cr_expect_eq(c.prefix, 8);
	cr_expect_eq(block("::ffff:127.0.0.1").prefix, 32);
	cr_expect_eq(block("::ffff:0:0/96").prefix, 0, "every IPv4 address");

	char out[CIDR_STRLEN];

	/* Wider than the mapped range, the ffff bits lie past the prefix. */
	cr_assert_eq(cidr_parse("::ffff:0:0/80", &c), -EDOM);
	cidr_format(&c, out);
	cr_expect_str_eq(out, "::/80");
}

Test(cidr, bad_blocks_are_refused)
{
	const char *bad[] = { "10.0.0.0/33",
			      "::/129",
			      "10.0.0.0/",
			      "10.0.0.0/-1",
			      "10.0.0.0/+8",
			      "10.0.0.0/08",
			      "10.0.0.0/8/8",
			      "10.0.0.0/ 8",
			      "10.0.0.0 /8",
			      "/8",
			      "10.0.0.0/8x",
			      "10.0.0.0/0x8",
			      "10.0.0.0/1000",
			      "::ffff:0.0.0.0/129",
			      "10/8",
			      "[::1]/128",
			      "" };
	struct cidr c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(cidr_parse(bad[i], &c), -EINVAL, "accepted \"%s\"", bad[i]);
}

Test(cidr, host_bits_past_the_prefix_are_refused_with_the_intended_block)
{
	struct cidr c;
	char out[CIDR_STRLEN];

	cr_assert_eq(cidr_parse("10.1.2.3/8", &c), -EDOM);
	cidr_format(&c, out);
	cr_expect_str_eq(out, "10.0.0.0/8");
	cr_assert_eq(cidr_parse("fd00::1/8", &c), -EDOM);
	cidr_format(&c, out);
	cr_expect_str_eq(out, "fd00::/8");
	cr_assert_eq(cidr_parse("192.168.1.128/25", &c), 0);
	cr_assert_eq(cidr_parse("192.168.1.129/25", &c), -EDOM);
	cidr_format(&c, out);
	cr_expect_str_eq(out, "192.168.1.128/25");
}

Test(cidr, matching_follows_the_prefix_to_the_bit)
{
	cr_expect(in("10.0.0.0/8", "10.255.255.255"));
	cr_expect(in("10.0.0.0/8", "10.0.0.0"));
	cr_expect_not(in("10.0.0.0/8", "11.0.0.0"));
	cr_expect_not(in("10.0.0.0/8", "9.255.255.255"));
	cr_expect(in("192.168.1.128/25", "192.168.1.255"));
	cr_expect_not(in("192.168.1.128/25", "192.168.1.127"));
	cr_expect(in("172.16.0.0/12", "172.31.0.1"));
	cr_expect_not(in("172.16.0.0/12", "172.32.0.1"));
	cr_expect(in("127.0.0.1", "127.0.0.1"));
	cr_expect_not(in("127.0.0.1", "127.0.0.2"));
	cr_expect(in("0.0.0.0/0", "203.0.113.9"));
	cr_expect(in("fd00::/8", "fdff:ffff::1"));
	cr_expect_not(in("fd00::/8", "fe00::1"));
	cr_expect(in("2001:db8::/33", "2001:db8:7fff::1"));
	cr_expect_not(in("2001:db8::/33", "2001:db8:8000::1"));
	cr_expect(in("::1", "::1"));
	cr_expect_not(in("::1", "::2"));
}

Test(cidr, families_never_match_each_other_but_mapped_peers_match_ipv4)
{
	cr_expect_not(in("::/0", "127.0.0.1"), "IPv4 peers are not in an IPv6 block");
	cr_expect_not(in("0.0.0.0/0", "::1"));
	cr_expect(in("127.0.0.1", "::ffff:127.0.0.1"), "a dual-stack peer matches its IPv4 entry");
	cr_expect(in("10.0.0.0/8", "::ffff:10.9.8.7"));
	cr_expect(in("::ffff:127.0.0.1", "127.0.0.1"));
	cr_expect(in("::ffff:0:0/96", "192.0.2.1"));
}

Test(cidr, lists_match_any_entry)
{
	struct cidr list[] = { block("10.0.0.0/8"), block("::1"), block("192.168.0.0/16") };
	struct cidr_addr a = netaddr("192.168.3.4"), b = netaddr("::1"), c = netaddr("11.0.0.1"),
			 none = { 0 };

	cr_expect(cidr_list_match(list, 3, &a));
	cr_expect(cidr_list_match(list, 3, &b));
	cr_expect_not(cidr_list_match(list, 3, &c));
	cr_expect_not(cidr_list_match(list, 0, &a), "an empty list trusts nobody");
	cr_expect_not(cidr_list_match(NULL, 0, &a));
	cr_expect_not(cidr_list_match(list, 3, &none), "no address matches nothing");
	assert_no_leaks();
}

Test(cidr, printing_is_canonical)
{
	expect_printed("127.0.0.1", "127.0.0.1");
	expect_printed("::ffff:127.0.0.1", "127.0.0.1");
	expect_printed("2001:DB8:0:0:0:0:0:1", "2001:db8::1");
	expect_printed("::1", "::1");
	expect_printed("fd00:0:0:1::", "fd00:0:0:1::");

	char out[CIDR_ADDR_STRLEN];

	cidr_addr_format(&(struct cidr_addr){ 0 }, out);
	cr_expect_str_eq(out, "", "no address prints empty");
	struct cidr_addr a = netaddr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	cidr_addr_format(&a, out);
	cr_expect_str_eq(out, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "the longest form fits");
}

Test(cidr, socket_addresses_convert)
{
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr sun = { .sa_family = AF_UNIX };
	struct cidr_addr a, want;

	inet_pton(AF_INET, "198.51.100.7", &s4.sin_addr);
	cr_assert_eq(cidr_addr_from_sockaddr((struct sockaddr *)&s4, &a), 0);
	want = netaddr("198.51.100.7");
	cr_expect(cidr_addr_equal(&a, &want));
	inet_pton(AF_INET6, "::ffff:198.51.100.7", &s6.sin6_addr);
	cr_assert_eq(cidr_addr_from_sockaddr((struct sockaddr *)&s6, &a), 0);
	cr_expect(cidr_addr_equal(&a, &want), "a dual-stack socket's IPv4 peer is IPv4");
	inet_pton(AF_INET6, "2001:db8::5", &s6.sin6_addr);
	cr_assert_eq(cidr_addr_from_sockaddr((struct sockaddr *)&s6, &a), 0);
	want = netaddr("2001:db8::5");
	cr_expect(cidr_addr_equal(&a, &want));
	cr_expect_eq(cidr_addr_from_sockaddr(&sun, &a), -EAFNOSUPPORT);
}
