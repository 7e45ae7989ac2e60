/* loadgen_ws.c - the small pieces of a WebSocket client (RFC 6455) that the load generator needs:
 * SHA-1 (FIPS 180-4) and base64 for the Sec-WebSocket-Accept check, masked client frame headers,
 * and validation of the HTTP 101 response. No I/O here. */
#include "loadgen.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static uint32_t
rol32(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32u - n));
}

static void
sha1_block(uint32_t h[5], const uint8_t *blk)
{
	uint32_t w[80], a, b, c, d, e, f, k, t;
	unsigned i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
		       (uint32_t)blk[4 * i + 2] << 8 | (uint32_t)blk[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0];
	b = h[1];
	c = h[2];
	d = h[3];
	e = h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999u;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1u;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDCu;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6u;
		}
		t = rol32(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol32(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void
lg_sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t h[5] = { 0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u };
	const uint8_t *p = data;
	uint64_t bits = (uint64_t)len * 8u;
	uint8_t last[64];
	unsigned i;

	while (len >= 64) {
		sha1_block(h, p);
		p += 64;
		len -= 64;
	}
	memset(last, 0, sizeof last);
	if (len)
		memcpy(last, p, len);
	last[len] = 0x80;
	if (len >= 56) {
		sha1_block(h, last);
		memset(last, 0, sizeof last);
	}
	for (i = 0; i < 8; i++)
		last[63 - i] = (uint8_t)(bits >> (8 * i));
	sha1_block(h, last);
	for (i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

size_t
lg_base64(const uint8_t *in, size_t len, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

void
lg_ws_accept(const char *key, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char buf[128];
	uint8_t dig[20];
	size_t kl = strlen(key);

	if (kl > sizeof buf - sizeof guid)
		kl = sizeof buf - sizeof guid;
	memcpy(buf, key, kl);
	memcpy(buf + kl, guid, sizeof guid - 1);
	lg_sha1(buf, kl + sizeof guid - 1, dig);
	lg_base64(dig, sizeof dig, out);
}

size_t
lg_ws_header(uint8_t *dst, unsigned opcode, size_t len, uint32_t mask)
{
	size_t h;

	dst[0] = (uint8_t)(0x80u | (opcode & 0x0fu));
	if (len < 126) {
		dst[1] = (uint8_t)(0x80u | len);
		h = 2;
	} else if (len < 65536) {
		dst[1] = 0x80u | 126u;
		dst[2] = (uint8_t)(len >> 8);
		dst[3] = (uint8_t)len;
		h = 4;
	} else {
		unsigned i;

		dst[1] = 0x80u | 127u;
		for (i = 0; i < 8; i++)
			dst[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		h = 10;
	}
	dst[h] = (uint8_t)(mask >> 24);
	dst[h + 1] = (uint8_t)(mask >> 16);
	dst[h + 2] = (uint8_t)(mask >> 8);
	dst[h + 3] = (uint8_t)mask;
	return h + 4;
}

void
lg_ws_mask(uint8_t *p, size_t len, uint32_t mask)
{
	uint8_t m[4] = { (uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
			 (uint8_t)mask };
	size_t i;

	for (i = 0; i < len; i++)
		p[i] ^= m[i & 3];
}

/* Find header `name` (case-insensitive) in an HTTP head; returns the trimmed value or NULL. */
static const char *
find_header(const char *head, size_t len, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', len), *end = head + len;

	while (p && p + 1 < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));

		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 &&
		    line[nl] == ':') {
			const char *v = line + nl + 1, *ve = eol;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol < end ? eol : NULL;
	}
	return NULL;
}

int
lg_http_check_upgrade(const char *head, size_t len, const char *expect_accept, char *err,
		      size_t errlen)
{
	const char *eol = memchr(head, '\r', len), *v;
	size_t sl = eol ? (size_t)(eol - head) : len, vl;

	if (sl > 100)
		sl = 100;
	if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
		char line[128];
		size_t i;

		for (i = 0; i < sl; i++)
			line[i] = isprint((unsigned char)head[i]) ? head[i] : '?';
		line[sl] = '\0';
		snprintf(err, errlen, "upgrade refused: \"%s\"", line);
		return -1;
	}
	if (!expect_accept)
		return 0;
	v = find_header(head, len, "Sec-WebSocket-Accept", &vl);
	if (!v) {
		snprintf(err, errlen, "101 response without Sec-WebSocket-Accept");
		return -1;
	}
	if (vl != strlen(expect_accept) || memcmp(v, expect_accept, vl) != 0) {
		snprintf(err, errlen, "wrong Sec-WebSocket-Accept");
		return -1;
	}
	return 0;
}

int
lg_ws_selftest(void)
{
	static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				   "connection: Upgrade\r\nsec-websocket-accept:  "
				   "s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n\r\n";
	uint8_t dig[20], hdr[14];
	char hex[41], acc[29], err[160];
	unsigned i;
	int bad = 0;

	/* FIPS 180 example "abc" and the two-block message. */
	lg_sha1("abc", 3, dig);
	for (i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	bad |= strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") != 0;
	lg_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, dig);
	for (i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	bad |= strcmp(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1") != 0;
	/* RFC 6455 section 1.3 */
	lg_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", acc);
	bad |= strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0;
	bad |= lg_http_check_upgrade(resp, sizeof resp - 1, acc, err, sizeof err) != 0;
	bad |= lg_http_check_upgrade("HTTP/1.1 404 Not Found\r\n\r\n", 26, acc, err, sizeof err) ==
	       0;
	bad |= lg_ws_header(hdr, 1, 125, 0x01020304u) != 6 || hdr[1] != (0x80 | 125) || hdr[5] != 4;
	bad |= lg_ws_header(hdr, 1, 126, 0) != 8 || hdr[1] != (0x80 | 126) || hdr[3] != 126;
	bad |= lg_ws_header(hdr, 2, 70000, 0) != 14 || hdr[1] != (0x80 | 127) ||
	       hdr[9] != (70000 & 0xff);
	return bad ? -1 : 0;
}
