/* token.c: see token.h. */
#include "token.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

char *
token_b64url(const void *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = malloc(len / 3 * 4 + 5), *o = out;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i + 3 <= len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i == 1) {
		unsigned v = (unsigned)p[i] << 16;

		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
	} else if (len - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;

		*o++ = alphabet[v >> 18 & 63];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
	}
	*o = '\0';
	return out;
}

char *
token_sign(const char *header_json, const char *payload_json, const char *secret)
{
	char *h = token_b64url(header_json, strlen(header_json));
	char *p = token_b64url(payload_json, strlen(payload_json));
	char *input = NULL, *sig = NULL, *out = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned mlen = 0;

	if (h == NULL || p == NULL || asprintf(&input, "%s.%s", h, p) < 0) {
		input = NULL;
		goto done;
	}
	if (secret != NULL) {
		if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)input,
			 strlen(input), mac, &mlen) == NULL)
			goto done;
		sig = token_b64url(mac, mlen);
	} else {
		sig = strdup("");
	}
	if (sig != NULL && asprintf(&out, "%s.%s", input, sig) < 0)
		out = NULL;
done:
	free(h);
	free(p);
	free(input);
	free(sig);
	return out;
}

char *
token_hs256(const char *secret, const char *payload_fmt, ...)
{
	va_list ap;
	char *payload, *t;
	int n;

	va_start(ap, payload_fmt);
	n = vasprintf(&payload, payload_fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	t = token_sign("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, secret);
	free(payload);
	return t;
}

int64_t
token_now(void)
{
	return (int64_t)time(NULL);
}
