/* test_sign.c: HMAC-SHA256 against the RFC 4231 test vectors (hex, and base64 of the
 * same MACs), the encoders against RFC 4648's examples, messages given in parts, and the
 * constant-time compare. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "leakcheck.h"
#include "sign.h"

/* One RFC 4231 case: key and data as repeated bytes or text, and the expected MAC. */
struct vector {
	const char *name;
	unsigned char key[131];
	size_t keylen;
	unsigned char data[160];
	size_t datalen;
	const char *hex;    /* the MAC, or its first 128 bits for case 5 */
	const char *base64; /* the whole MAC */
};

static void
fill(unsigned char *dst, unsigned char byte, size_t n)
{
	memset(dst, byte, n);
}

static size_t
text(unsigned char *dst, const char *s)
{
	size_t n = strlen(s);

	memcpy(dst, s, n);
	return n;
}

/* Builds the seven cases of RFC 4231 section 4. */
static size_t
vectors(struct vector *v)
{
	memset(v, 0, 7 * sizeof(*v));
	v[0].name = "case 1";
	fill(v[0].key, 0x0b, v[0].keylen = 20);
	v[0].datalen = text(v[0].data, "Hi There");
	v[0].hex = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
	v[0].base64 = "sDRMYdjbOFNcqK/OrwvxK4gdwgDJgz2nJuk3bC4yz/c=";

	v[1].name = "case 2";
	v[1].keylen = text(v[1].key, "Jefe");
	v[1].datalen = text(v[1].data, "what do ya want for nothing?");
	v[1].hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	v[1].base64 = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";

	v[2].name = "case 3";
	fill(v[2].key, 0xaa, v[2].keylen = 20);
	fill(v[2].data, 0xdd, v[2].datalen = 50);
	v[2].hex = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
	v[2].base64 = "dz6pHjaADkaFTbjr0JGBpylZCYs++MEi2WNVFM7VZf4=";

	v[3].name = "case 4";
	for (size_t i = 0; i < 25; i++)
		v[3].key[i] = (unsigned char)(i + 1);
	v[3].keylen = 25;
	fill(v[3].data, 0xcd, v[3].datalen = 50);
	v[3].hex = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
	v[3].base64 = "glWKOJpEPA6kzIGYmfIIOoXw+qPlePgHei4/9GcpZls=";

	v[4].name = "case 5 (truncated to 128 bits)";
	fill(v[4].key, 0x0c, v[4].keylen = 20);
	v[4].datalen = text(v[4].data, "Test With Truncation");
	v[4].hex = "a3b6167473100ee06e0c796c2955552b";
	v[4].base64 = "o7YWdHMQDuBuDHlsKVVVK/pvfApqiu+Lk/hgqrDNIMU=";

	v[5].name = "case 6";
	fill(v[5].key, 0xaa, v[5].keylen = 131);
	v[5].datalen = text(v[5].data, "Test Using Larger Than Block-Size Key - Hash Key First");
	v[5].hex = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
	v[5].base64 = "YOQxWR7gtn8Niiaqy/W3f44LxiE3KMUUBUYEDw7jf1Q=";

	v[6].name = "case 7";
	fill(v[6].key, 0xaa, v[6].keylen = 131);
	v[6].datalen =
		text(v[6].data, "This is a test using a larger than block-size key and a larger "
				"than block-size data. The key needs to be hashed before being "
				"used by the HMAC algorithm.");
	v[6].hex = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
	v[6].base64 = "mwn/pxuUL8snY1+81bDpRL/cY2RPBxOTin9RU1w6NeI=";
	return 7;
}

Test(sign, rfc4231_vectors_in_hex_and_base64)
{
	struct vector v[7];
	size_t n = vectors(v);

	for (size_t i = 0; i < n; i++) {
		char hex[SIGN_HEX_LEN + 1], b64[SIGN_BASE64_LEN + 1];
		struct sign_part part = { v[i].data, v[i].datalen };

		cr_assert_eq(sign_hmac_sha256_hex(v[i].key, v[i].keylen, &part, 1, hex), 0, "%s",
			     v[i].name);
		cr_expect_eq(strlen(hex), SIGN_HEX_LEN, "%s", v[i].name);
		cr_expect(strncmp(hex, v[i].hex, strlen(v[i].hex)) == 0, "%s: %s, want %s",
			  v[i].name, hex, v[i].hex);
		cr_assert_eq(sign_hmac_sha256_base64(v[i].key, v[i].keylen, &part, 1, b64), 0, "%s",
			     v[i].name);
		cr_expect_str_eq(b64, v[i].base64, "%s", v[i].name);
	}
	assert_no_leaks();
}

Test(sign, raw_mac_matches_its_hex)
{
	struct vector v[7];
	unsigned char mac[SIGN_MAC_LEN];
	char hex[SIGN_HEX_LEN + 1];
	struct sign_part part;

	vectors(v);
	part = (struct sign_part){ v[1].data, v[1].datalen };
	cr_assert_eq(sign_hmac_sha256(v[1].key, v[1].keylen, &part, 1, mac), 0);
	sign_hex(mac, sizeof(mac), hex);
	cr_expect_str_eq(hex, v[1].hex);
}

/* "<t>.<body>" as the webhooks sign it: three parts equal one concatenated message,
 * and empty parts (even with a NULL pointer) change nothing. */
Test(sign, parts_are_signed_as_their_concatenation)
{
	static const char key[] = "whsec_change_me";
	static const char whole[] = "1767225600.{\"events\":[]}";
	char one[SIGN_HEX_LEN + 1], three[SIGN_HEX_LEN + 1], padded[SIGN_HEX_LEN + 1];
	struct sign_part w = { whole, strlen(whole) };
	struct sign_part p3[] = { { "1767225600", 10 }, { ".", 1 }, { "{\"events\":[]}", 13 } };
	struct sign_part p5[] = {
		{ NULL, 0 }, { "1767225600", 10 }, { ".", 1 }, { "", 0 }, { "{\"events\":[]}", 13 }
	};

	cr_assert_eq(sign_hmac_sha256_hex(key, strlen(key), &w, 1, one), 0);
	cr_assert_eq(sign_hmac_sha256_hex(key, strlen(key), p3, 3, three), 0);
	cr_assert_eq(sign_hmac_sha256_hex(key, strlen(key), p5, 5, padded), 0);
	cr_expect_str_eq(three, one);
	cr_expect_str_eq(padded, one);
}

/* HMAC-SHA256 with an empty key over an empty message (checked with Python's hmac). */
Test(sign, empty_key_and_message_are_valid)
{
	char hex[SIGN_HEX_LEN + 1], b64[SIGN_BASE64_LEN + 1];

	cr_assert_eq(sign_hmac_sha256_hex("", 0, NULL, 0, hex), 0);
	cr_expect_str_eq(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	cr_assert_eq(sign_hmac_sha256_base64(NULL, 0, NULL, 0, b64), 0);
	cr_expect_str_eq(b64, "thNnmggU2ex3L5XXeMNfxf8Wl8STcVZTxscSFEKSxa0=");
}

Test(sign, hex_is_lowercase_and_terminated)
{
	static const unsigned char in[] = { 0x00, 0x0f, 0xa5, 0xff };
	char out[2 * sizeof(in) + 2];

	memset(out, 'X', sizeof(out));
	cr_expect_eq(sign_hex(in, sizeof(in), out), 2 * sizeof(in));
	cr_expect_str_eq(out, "000fa5ff");
	cr_expect_eq(out[sizeof(out) - 1], 'X', "wrote past 2 * len + 1");
	sign_hex(in, 0, out);
	cr_expect_str_eq(out, "");
}

/* RFC 4648 section 10. */
Test(sign, base64_matches_rfc4648_examples)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const want[] = { "",		"Zg==",	    "Zm8=",    "Zm9v",
					    "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char out[16];
		size_t n = sign_base64((const unsigned char *)in[i], strlen(in[i]), out);

		cr_expect_str_eq(out, want[i], "\"%s\"", in[i]);
		cr_expect_eq(n, strlen(want[i]), "\"%s\"", in[i]);
	}
}

Test(sign, base64_uses_the_whole_alphabet)
{
	static const unsigned char in[] = { 0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83 };
	char out[16];

	sign_base64(in, sizeof(in), out);
	cr_expect_str_eq(out, "+/+/ABCD");
}

Test(sign, equal_is_true_for_the_same_bytes)
{
	cr_expect(sign_equal("5f2c", 4, "5f2c", 4));
	cr_expect(sign_equal("", 0, "", 0));
	cr_expect(sign_equal(NULL, 0, "x", 0));
}

Test(sign, equal_is_false_for_other_bytes)
{
	cr_expect_not(sign_equal("5f2c", 4, "5f2d", 4), "last byte");
	cr_expect_not(sign_equal("5f2c", 4, "4f2c", 4), "first byte");
	cr_expect_not(sign_equal("a\0b", 3, "a\0c", 3), "after a NUL");
}

Test(sign, equal_is_false_when_lengths_differ)
{
	cr_expect_not(sign_equal("5f2c", 4, "5f2", 3));
	cr_expect_not(sign_equal("5f2", 3, "5f2c", 4), "a prefix is not a match");
	cr_expect_not(sign_equal("", 0, "a", 1));
}

/* A signature check as a receiver would write it: recompute, then compare. */
Test(sign, a_recomputed_signature_verifies_and_a_tampered_one_does_not)
{
	static const char key[] = "whsec_change_me";
	struct sign_part body = { "{\"time_ms\":1}", 13 };
	struct sign_part other = { "{\"time_ms\":2}", 13 };
	char sig[SIGN_HEX_LEN + 1], want[SIGN_HEX_LEN + 1];

	cr_assert_eq(sign_hmac_sha256_hex(key, strlen(key), &body, 1, sig), 0);
	cr_assert_eq(sign_hmac_sha256_hex(key, strlen(key), &body, 1, want), 0);
	cr_expect(sign_equal(want, strlen(want), sig, strlen(sig)));
	cr_assert_eq(sign_hmac_sha256_hex(key, strlen(key), &other, 1, want), 0);
	cr_expect_not(sign_equal(want, strlen(want), sig, strlen(sig)));
	cr_expect_not(sign_equal(want, strlen(want), sig, SIGN_HEX_LEN - 1));
}
