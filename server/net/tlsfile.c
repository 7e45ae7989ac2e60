/* tlsfile.c: tls.cert and tls.key checked with OpenSSL before lws reads them. A file that
 * cannot be opened is reported with errno's text, one that does not parse with OpenSSL's
 * first reason; nothing is kept. */
#include "tlsfile.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* An encrypted key is refused instead of asking for a passphrase on the terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf, (void)size, (void)rwflag, (void)arg;
	return 0;
}

/* Why path could not be used, into buf: errno's text when it cannot be opened for
 * reading, else OpenSSL's earliest queued reason with its detail ("no start line
 * (Expecting: TRUSTED CERTIFICATE)"). Returns buf. */
static const char *
reason(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	const char *r, *data = NULL;
	unsigned long e;
	int flags = 0;

	if (f == NULL) {
		snprintf(buf, len, "%s", strerror(errno));
		return buf;
	}
	fclose(f);
	e = ERR_peek_error_data(&data, &flags);
	r = ERR_reason_error_string(e);
	if (data != NULL && (flags & ERR_TXT_STRING) && data[0] != '\0')
		snprintf(buf, len, "%s (%s)", r != NULL ? r : "not usable", data);
	else
		snprintf(buf, len, "%s", r != NULL ? r : "not usable");
	return buf;
}

/* A context for one check, or NULL. */
static SSL_CTX *
scratch_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx != NULL)
		SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	return ctx;
}

/* True if key loads on its own: then a refusal next to the certificate is a mismatch. */
static bool
key_loads(const char *key)
{
	SSL_CTX *ctx = scratch_ctx();
	bool ok = ctx != NULL && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1;

	SSL_CTX_free(ctx);
	return ok;
}

int
tlsfile_check(const char *cert, const char *key, char *err, size_t len)
{
	SSL_CTX *ctx = scratch_ctx();
	char r[200];
	int rc = -1;

	if (ctx == NULL) {
		snprintf(err, len, "tls: no TLS context (out of memory)");
		return -1;
	}
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, len, "tls.cert: cannot load \"%s\": %s", cert,
			 reason(cert, r, sizeof(r)));
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		reason(key, r, sizeof(r)); /* before the second load queues errors of its own */
		ERR_clear_error();
		if (key_loads(key))
			snprintf(err, len, "tls.key: \"%s\" does not match tls.cert \"%s\": %s",
				 key, cert, r);
		else
			snprintf(err, len, "tls.key: cannot load \"%s\": %s", key, r);
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}
