/* sign.c: see sign.h. HMAC through OpenSSL 3's EVP_MAC interface, which takes the
 * message in pieces; a context lives for one call only, so there is no state to share
 * or to wipe between calls. Hex and base64 are written here rather than with OpenSSL's
 * encoders, whose lengths are ints and whose base64 may add line breaks. */
#include "sign.h"

#include <errno.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

int
sign_hmac_sha256(const void *key, size_t keylen, const struct sign_part *parts, size_t nparts,
		 unsigned char mac[SIGN_MAC_LEN])
{
	static const unsigned char none[1];
	OSSL_PARAM params[2];
	EVP_MAC *m;
	EVP_MAC_CTX *ctx = NULL;
	size_t outl = 0;
	int rc = -EIO;

	if (keylen > INT_MAX)
		return -EINVAL;
	m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (m == NULL)
		goto out_clear;
	ctx = EVP_MAC_CTX_new(m);
	if (ctx == NULL)
		goto out_free_mac;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	/* An empty key is valid HMAC; OpenSSL wants a non-NULL pointer for it. */
	if (EVP_MAC_init(ctx, keylen > 0 ? key : none, keylen, params) != 1)
		goto out_free_ctx;
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].len > 0 && EVP_MAC_update(ctx, parts[i].data, parts[i].len) != 1)
			goto out_free_ctx;
	if (EVP_MAC_final(ctx, mac, &outl, SIGN_MAC_LEN) != 1 || outl != SIGN_MAC_LEN)
		goto out_free_ctx;
	rc = 0;

out_free_ctx:
	EVP_MAC_CTX_free(ctx);
out_free_mac:
	EVP_MAC_free(m);
out_clear:
	if (rc != 0)
		ERR_clear_error();
	return rc;
}

/* Signs, then writes the MAC into out with enc (NUL-terminated); out is "" on failure. */
static int
sign_encoded(const void *key, size_t keylen, const struct sign_part *parts, size_t nparts,
	     size_t (*enc)(const unsigned char *, size_t, char *), char *out)
{
	unsigned char mac[SIGN_MAC_LEN];
	int rc = sign_hmac_sha256(key, keylen, parts, nparts, mac);

	out[0] = '\0';
	if (rc != 0)
		return rc;
	enc(mac, sizeof(mac), out);
	return 0;
}

int
sign_hmac_sha256_hex(const void *key, size_t keylen, const struct sign_part *parts, size_t nparts,
		     char out[SIGN_HEX_LEN + 1])
{
	return sign_encoded(key, keylen, parts, nparts, sign_hex, out);
}

int
sign_hmac_sha256_base64(const void *key, size_t keylen, const struct sign_part *parts,
			size_t nparts, char out[SIGN_BASE64_LEN + 1])
{
	return sign_encoded(key, keylen, parts, nparts, sign_base64, out);
}

size_t
sign_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
	return 2 * len;
}

size_t
sign_base64(const unsigned char *in, size_t len, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *start = out;
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		unsigned long v =
			(unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];

		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = alphabet[v & 63];
	}
	if (len - i == 1) {
		unsigned long v = (unsigned long)in[i] << 16;

		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (len - i == 2) {
		unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;

		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
	return (size_t)(out - start);
}

bool
sign_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	if (alen == 0)
		return true;
	return CRYPTO_memcmp(a, b, alen) == 0;
}
