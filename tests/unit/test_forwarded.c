/* test_forwarded.c: server/util/forwarded.h: X-Forwarded-For and Forwarded parsing, the
 * walk from the right past trusted proxies, and hostile values (spoofed left-most
 * entries, garbage, very long headers, brackets, ports, "unknown", empty elements). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "forwarded.h"
#include "leakcheck.h"
#include "netaddr.h"

static void
expect_hop(const struct forwarded_hop *h, const char *want, const char *what)
{
	char out[CIDR_ADDR_STRLEN];

	if (want == NULL) {
		cr_expect_not(h->known, "%s: hop should be unknown", what);
		return;
	}
	cr_expect(h->known, "%s: hop should be %s, is unknown", what, want);
	cidr_addr_format(&h->addr, out);
	cr_expect_str_eq(out, want, "%s: hop is %s, not %s", what, out, want);
}

/* Parses value as X-Forwarded-For (or, with rfc7239, Forwarded) and compares the hops
 * with want (NULL: an unknown hop). */
static void
expect_hops(bool rfc7239, const char *value, int n, const char *const *want)
{
	struct forwarded_hop hops[FORWARDED_MAX_HOPS];
	int got =
		rfc7239 ? forwarded_parse_rfc7239(value, strlen(value), hops, FORWARDED_MAX_HOPS)
			: (int)forwarded_parse_xff(value, strlen(value), hops, FORWARDED_MAX_HOPS);

	cr_assert_eq(got, n, "\"%s\": %d hops, not %d", value, got, n);
	for (int i = 0; i < n; i++)
		expect_hop(&hops[i], want[i], value);
}

#define expect_xff(value, ...) expect_hops(false, value, __VA_ARGS__)
#define expect_fwd(value, ...) expect_hops(true, value, __VA_ARGS__)

#define HOPS(...)                                                                                  \
	(int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)),                \
		(const char *const[])                                                              \
	{                                                                                          \
		__VA_ARGS__                                                                        \
	}

/* The proxies of these tests: the local nginx, and a 10/8 load-balancer tier, and ::1. */
static struct cidr trusted[3];

static void
setup(void)
{
	cr_assert_eq(cidr_parse("127.0.0.1", &trusted[0]), 0);
	cr_assert_eq(cidr_parse("10.0.0.0/8", &trusted[1]), 0);
	cr_assert_eq(cidr_parse("::1", &trusted[2]), 0);
}

/* forwarded_client() from peer with the given headers (NULL: absent), printed. */
static const char *
client(const char *peer, const char *xff, const char *fwd)
{
	static char out[CIDR_ADDR_STRLEN];
	struct cidr_addr p = netaddr(peer), a;
	struct forwarded_header x = { xff, xff ? strlen(xff) : 0 };
	struct forwarded_header f = { fwd, fwd ? strlen(fwd) : 0 };

	forwarded_client(&p, trusted, 3, x, f, &a);
	cidr_addr_format(&a, out);
	return out;
}

#define expect_client(want, peer, xff, fwd)                                                        \
	cr_expect_str_eq(client(peer, xff, fwd), want,                                             \
			 "peer %s, x-forwarded-for %s, forwarded %s", peer, xff ? xff : "(none)",  \
			 fwd ? fwd : "(none)")

TestSuite(forwarded, .init = setup);

/* ---- X-Forwarded-For ---- */

Test(forwarded, xff_lists_hops_left_to_right)
{
	expect_xff("203.0.113.9", HOPS("203.0.113.9"));
	expect_xff("203.0.113.9, 10.0.0.5", HOPS("203.0.113.9", "10.0.0.5"));
	expect_xff("203.0.113.9,10.0.0.5,\t127.0.0.1",
		   HOPS("203.0.113.9", "10.0.0.5", "127.0.0.1"));
	expect_xff("2001:db8::1, ::ffff:10.0.0.5", HOPS("2001:db8::1", "10.0.0.5"));
}

Test(forwarded, xff_accepts_ports_and_brackets)
{
	expect_xff("203.0.113.9:51234", HOPS("203.0.113.9"));
	expect_xff("[2001:db8::1]:443", HOPS("2001:db8::1"));
	expect_xff("[2001:db8::1]", HOPS("2001:db8::1"));
	expect_xff("[::ffff:1.2.3.4]:80", HOPS("1.2.3.4"));
	expect_xff("1.2.3.4:_obf", HOPS("1.2.3.4"));
}

Test(forwarded, xff_elements_that_are_no_address_are_unknown_hops)
{
	expect_xff("unknown, 1.2.3.4", HOPS(NULL, "1.2.3.4"));
	expect_xff("_hidden", HOPS(NULL));
	expect_xff("garbage", HOPS(NULL));
	expect_xff("[1.2.3.4]", HOPS(NULL));
	expect_xff("1.2.3.4:", HOPS(NULL));
	expect_xff("1.2.3.4:123456", HOPS(NULL));
	expect_xff("1.2.3.4:80:80", HOPS(NULL));
	expect_xff("[::1", HOPS(NULL));
	expect_xff("[::1]x", HOPS(NULL));
	expect_xff("[::1]:", HOPS(NULL));
	expect_xff("[]", HOPS(NULL));
	expect_xff("fe80::1%eth0", HOPS(NULL));
	expect_xff("1.2.3.4 5.6.7.8", HOPS(NULL));
	expect_xff("for=1.2.3.4", HOPS(NULL));
	expect_xff("\"1.2.3.4\"", HOPS(NULL));
	expect_xff("localhost", HOPS(NULL));
}

Test(forwarded, xff_skips_empty_elements)
{
	expect_xff("", 0, NULL);
	expect_xff(" , ,\t,", 0, NULL);
	expect_xff(",,1.2.3.4, ,5.6.7.8,,", HOPS("1.2.3.4", "5.6.7.8"));
}

Test(forwarded, xff_keeps_the_rightmost_hops)
{
	struct forwarded_hop hops[3];
	const char *v = "1.0.0.1, 1.0.0.2, 1.0.0.3, 1.0.0.4, 1.0.0.5";

	cr_assert_eq(forwarded_parse_xff(v, strlen(v), hops, 3), 3);
	expect_hop(&hops[0], "1.0.0.3", "ring");
	expect_hop(&hops[1], "1.0.0.4", "ring");
	expect_hop(&hops[2], "1.0.0.5", "ring");
	cr_expect_eq(forwarded_parse_xff(v, strlen(v), NULL, 0), 0, "room for none stores none");
}

Test(forwarded, xff_of_a_megabyte_costs_one_pass_and_keeps_its_tail)
{
	size_t n = 1 << 20, len = 0;
	char *v = malloc(n + 32);
	struct forwarded_hop hops[FORWARDED_MAX_HOPS];

	while (len + 9 < n) {
		memcpy(v + len, "6.6.6.6, ", 9);
		len += 9;
	}
	len += (size_t)sprintf(v + len, "203.0.113.9");
	cr_assert_eq(forwarded_parse_xff(v, len, hops, FORWARDED_MAX_HOPS), FORWARDED_MAX_HOPS);
	expect_hop(&hops[FORWARDED_MAX_HOPS - 1], "203.0.113.9", "long header");
	expect_hop(&hops[0], "6.6.6.6", "long header");
	free(v);
	assert_no_leaks();
}

/* ---- Forwarded (RFC 7239) ---- */

Test(forwarded, rfc7239_examples_parse)
{
	/* RFC 7239 section 4 and 7.1 examples. */
	expect_fwd("for=\"_gazonk\"", HOPS(NULL));
	expect_fwd("For=\"[2001:db8:cafe::17]:4711\"", HOPS("2001:db8:cafe::17"));
	expect_fwd("for=192.0.2.60;proto=http;by=203.0.113.43", HOPS("192.0.2.60"));
	expect_fwd("for=192.0.2.43, for=198.51.100.17", HOPS("192.0.2.43", "198.51.100.17"));
	expect_fwd("for=192.0.2.43,for=\"[2001:db8:cafe::17]\",for=unknown",
		   HOPS("192.0.2.43", "2001:db8:cafe::17", NULL));
}

Test(forwarded, rfc7239_parameter_names_ignore_case_and_order)
{
	expect_fwd("proto=https;FOR=1.2.3.4;host=example.com", HOPS("1.2.3.4"));
	expect_fwd("by=10.0.0.1;fOr=\"1.2.3.4:5\"", HOPS("1.2.3.4"));
}

Test(forwarded, rfc7239_accepts_common_unquoted_nodes_and_spaces)
{
	expect_fwd("for=[2001:db8::1]:80", HOPS("2001:db8::1"));
	expect_fwd("for=1.2.3.4:80", HOPS("1.2.3.4"));
	expect_fwd("for=1.2.3.4 ; proto=http , for=5.6.7.8", HOPS("1.2.3.4", "5.6.7.8"));
	expect_fwd("for=\"\\[::1\\]\"", HOPS("::1"));
}

Test(forwarded, rfc7239_elements_without_an_address_are_unknown_hops)
{
	expect_fwd("proto=https;by=1.2.3.4", HOPS(NULL));
	expect_fwd("for=unknown", HOPS(NULL));
	expect_fwd("for=_hidden", HOPS(NULL));
	expect_fwd("for=\"_hidden:_port\"", HOPS(NULL));
	expect_fwd("for=\"\"", HOPS(NULL));
	expect_fwd("for=\"1.2.3.4\x80\"", HOPS(NULL));
	expect_fwd(";;", HOPS(NULL));
	expect_fwd("for=\"[2001:db8:0:0:0:0:0:1]:"
		   "65535xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
		   HOPS(NULL));
	expect_fwd("for=1.2.3.4;ext=1;ext=2", HOPS("1.2.3.4"));
}

Test(forwarded, rfc7239_skips_empty_elements)
{
	expect_fwd("", 0, NULL);
	expect_fwd(" , ,", 0, NULL);
	expect_fwd(", ,for=1.2.3.4,,", HOPS("1.2.3.4"));
}

Test(forwarded, rfc7239_syntax_errors_make_the_whole_value_invalid)
{
	const char *bad[] = {
		"for=\"1.2.3.4",   /* unterminated quote */
		"for=\"1.2.3.4\\", /* escape at the end */
		"for",		   /* no '=' */
		"for=",		   /* no value */
		"for=;proto=http",
		"=1.2.3.4",		   /* no name */
		"f(r=1.2.3.4",		   /* not a token */
		"for=1.2.3.4;for=5.6.7.8", /* twice in one element */
		"by=1;BY=2",
		"for=1.2.3.4 junk",
		"for=\"1.2.3.4\"x",
		"for=1.2.3.4\x01",
		"for=\"a\x01\"",
		"for=\"a\x7f\"",
		"for=1.2.3.4, for=\"5.6.7.8",
	};
	struct forwarded_hop hops[4];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(forwarded_parse_rfc7239(bad[i], strlen(bad[i]), hops, 4), -EINVAL,
			     "accepted \"%s\"", bad[i]);
	cr_expect_eq(forwarded_parse_rfc7239("for=1.2.3.4\0x", 13, hops, 4), -EINVAL, "a NUL");
}

Test(forwarded, rfc7239_quoted_commas_do_not_split_elements)
{
	expect_fwd("for=\"_a,b\";by=\"x;y\", for=1.2.3.4", HOPS(NULL, "1.2.3.4"));
}

/* ---- the walk ---- */

Test(forwarded, walk_takes_the_rightmost_untrusted_hop)
{
	struct forwarded_hop hops[] = { { true, netaddr("6.6.6.6") },
					{ true, netaddr("198.51.100.2") },
					{ true, netaddr("10.0.0.7") },
					{ true, netaddr("10.0.0.8") } };
	struct cidr_addr a;

	char out[CIDR_ADDR_STRLEN];

	cr_assert(forwarded_pick(hops, 4, trusted, 3, &a));
	cidr_addr_format(&a, out);
	cr_expect_str_eq(out, "198.51.100.2", "past 10.0.0.8 and 10.0.0.7; 6.6.6.6 never read");
}

Test(forwarded, walk_over_only_trusted_hops_takes_the_leftmost)
{
	struct forwarded_hop hops[] = { { true, netaddr("10.0.0.1") },
					{ true, netaddr("10.0.0.2") } };
	struct cidr_addr a, want = netaddr("10.0.0.1");

	cr_assert(forwarded_pick(hops, 2, trusted, 3, &a));
	cr_expect(cidr_addr_equal(&a, &want));
}

Test(forwarded, walk_stops_at_a_hop_without_an_address)
{
	struct forwarded_hop hops[] = { { true, netaddr("6.6.6.6") },
					{ false, { 0 } },
					{ true, netaddr("10.0.0.2") } };
	struct cidr_addr a, want = netaddr("10.0.0.2");

	cr_assert(forwarded_pick(hops, 3, trusted, 3, &a));
	cr_expect(cidr_addr_equal(&a, &want), "the proxy that did not know its client");
	cr_expect_not(forwarded_pick(hops, 2, trusted, 3, &a), "unknown on the right: no answer");
	cr_expect_not(forwarded_pick(hops, 0, trusted, 3, &a), "no hops: no answer");
}

/* ---- forwarded_client ---- */

Test(forwarded, untrusted_peers_cannot_spoof)
{
	expect_client("198.51.100.7", "198.51.100.7", "1.2.3.4", NULL);
	expect_client("198.51.100.7", "198.51.100.7", NULL, "for=1.2.3.4");
	expect_client("198.51.100.7", "198.51.100.7", "10.0.0.1", "for=10.0.0.1");
	expect_client("2001:db8::7", "2001:db8::7", "1.2.3.4", NULL);
	expect_client("11.0.0.1", "11.0.0.1", "1.2.3.4", NULL);
}

Test(forwarded, trusted_peers_name_their_client)
{
	expect_client("203.0.113.9", "127.0.0.1", "203.0.113.9", NULL);
	expect_client("203.0.113.9", "::ffff:127.0.0.1", "203.0.113.9", NULL);
	expect_client("203.0.113.9", "10.1.2.3", NULL, "for=203.0.113.9;proto=https");
	expect_client("2001:db8::1", "::1", "[2001:db8::1]:1234", NULL);
	expect_client("203.0.113.9", "127.0.0.1", "203.0.113.9, 10.0.0.5", NULL);
}

Test(forwarded, spoofed_leftmost_entries_are_ignored)
{
	expect_client("203.0.113.9", "127.0.0.1", "6.6.6.6, 203.0.113.9", NULL);
	expect_client("203.0.113.9", "127.0.0.1", "127.0.0.1, 6.6.6.6, 203.0.113.9", NULL);
	expect_client("203.0.113.9", "127.0.0.1", "garbage, for=x, \"\", 203.0.113.9", NULL);
	expect_client("203.0.113.9", "127.0.0.1", NULL, "for=6.6.6.6, for=203.0.113.9");
	/* The client claims to be a trusted proxy itself: it is still the client. */
	expect_client("203.0.113.9", "127.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.3", NULL);
}

Test(forwarded, several_lines_count_as_one_list)
{
	/* What lws makes of "X-Forwarded-For: 6.6.6.6" then "X-Forwarded-For: 203.0.113.9". */
	expect_client("203.0.113.9", "127.0.0.1", "6.6.6.6, 203.0.113.9", NULL);
	expect_client("203.0.113.9", "127.0.0.1", "6.6.6.6,203.0.113.9", NULL);
}

Test(forwarded, trusted_peers_without_a_usable_header_are_themselves)
{
	expect_client("127.0.0.1", "127.0.0.1", NULL, NULL);
	expect_client("127.0.0.1", "127.0.0.1", "unknown", NULL);
	expect_client("127.0.0.1", "127.0.0.1", "garbage", NULL);
	expect_client("127.0.0.1", "127.0.0.1", "", NULL);
	expect_client("127.0.0.1", "127.0.0.1", NULL, "for=\"1.2.3.4");
	expect_client("127.0.0.1", "127.0.0.1", NULL, "proto=https");
	expect_client("10.0.0.1", "127.0.0.1", "10.0.0.1", NULL);
}

Test(forwarded, both_headers_must_agree)
{
	expect_client("203.0.113.9", "127.0.0.1", "203.0.113.9", "for=203.0.113.9");
	expect_client("203.0.113.9", "127.0.0.1", "6.6.6.6, 203.0.113.9", "for=203.0.113.9");
	/* One of them the proxy wrote, the other the client may have: neither is believed. */
	expect_client("127.0.0.1", "127.0.0.1", "203.0.113.9", "for=6.6.6.6");
	expect_client("127.0.0.1", "127.0.0.1", "203.0.113.9", "for=unknown");
	/* A malformed header is not taken as absent: the other could be the client's. */
	expect_client("127.0.0.1", "127.0.0.1", "6.6.6.6", "for=\"203.0.113.9");
	/* A header of empty elements only is as good as absent. */
	expect_client("203.0.113.9", "127.0.0.1", " , ", "for=203.0.113.9");
	expect_client("203.0.113.9", "127.0.0.1", "203.0.113.9", ",");
}

/* True if a is one of the hops either parser finds in the value. */
static bool
among_hops(const struct cidr_addr *a, const char *v, size_t len)
{
	struct forwarded_hop hops[FORWARDED_MAX_HOPS];
	size_t n = forwarded_parse_xff(v, len, hops, FORWARDED_MAX_HOPS);
	int m;

	for (size_t k = 0; k < n; k++)
		if (hops[k].known && cidr_addr_equal(&hops[k].addr, a))
			return true;
	m = forwarded_parse_rfc7239(v, len, hops, FORWARDED_MAX_HOPS);
	for (int k = 0; k < m; k++)
		if (hops[k].known && cidr_addr_equal(&hops[k].addr, a))
			return true;
	return false;
}

/* Random bytes, and random mixes of the header's own pieces: the result is always the
 * peer or an address the value names, never anything else, and nothing crashes. */
Test(forwarded, random_values_never_escape_the_rules)
{
	static const char *pieces[] = {
		"for=", "\"",	   "[",	  "]",	      ":",	   ",",	      ";",  " ",
		"\\",	"1.2.3.4", "::1", "10.0.0.1", "127.0.0.1", "unknown", "_x", "2001:db8::9",
		"80",	"By=",	   "=",	  "\t",	      "\x01",	   "\xff"
	};
	uint32_t seed = 12345;
	struct cidr_addr peer = netaddr("127.0.0.1");
	char buf[512];

	for (int iter = 0; iter < 20000; iter++) {
		struct forwarded_header h = { buf, 0 }, none = { 0 };
		struct cidr_addr out;

		while (h.len < sizeof(buf) - 16) {
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 16) % 16 == 0)
				break;
			if (iter % 2 == 0) {
				buf[h.len++] = (char)(seed >> 8);
			} else {
				const char *p =
					pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))];

				memcpy(buf + h.len, p, strlen(p));
				h.len += strlen(p);
			}
		}
		forwarded_client(&peer, trusted, 3, iter % 4 < 2 ? h : none,
				 iter % 4 >= 1 ? h : none, &out);
		cr_assert(out.family == 4 || out.family == 6);
		cr_assert(cidr_addr_equal(&out, &peer) || among_hops(&out, buf, h.len),
			  "iteration %d gave an address the value does not name", iter);
	}
	assert_no_leaks();
}
