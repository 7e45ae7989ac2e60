/* cmd_token.c: `switchboard-cli token` mints a JWT signed with HMAC (HS256, HS384 or
 * HS512) for tests, the way a backend would (docs/tokens.md), and prints it. It never
 * connects: the header and claims are built with jansson, base64url-encoded and signed
 * with OpenSSL's HMAC().
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cli.h"
#include "proto.h"

#define SECRET_FILE_MAX 65536 /* bytes in a --secret-file */
#define TTL_MAX 315360000.0   /* --ttl and --nbf, seconds either way (10 years) */

const struct cli_command cmd_token = { .name = "token", .mode = MODE_TOKEN };

/* Adds a member to an object being built; a failure (out of memory) makes *o NULL. */
static void
add_member(json_t **o, const char *key, json_t *value)
{
	if (*o != NULL && json_object_set_new(*o, key, value) != 0) {
		json_decref(*o);
		*o = NULL;
	} else if (*o == NULL) {
		json_decref(value);
	}
}

/* Splits a comma-separated list of channel patterns (globs of channel characters, `*`
 * and `?`) onto the array *list, created if need be. An empty value adds nothing. */
static int
add_patterns(const char *opt, const char *v, json_t **list)
{
	const char *p = v;

	if (*list == NULL && (*list = json_array()) == NULL)
		return usage_error("out of memory");
	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		if (n == 0 || n > PROTO_CHANNEL_MAX ||
		    strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			      "_:.@=-*?") < n)
			return usage_error("%s: \"%.*s\" is not a channel pattern (1-%d bytes of "
					   "[A-Za-z0-9_:.@=-*?])",
					   opt, (int)n, p, PROTO_CHANNEL_MAX);
		if (json_array_append_new(*list, json_stringn(p, n)) != 0)
			return usage_error("out of memory");
		p += n;
		if (*p == ',' && *++p == '\0')
			return usage_error("%s: a pattern is missing after the last comma", opt);
	}
	return 0;
}

/* --ttl and --nbf: whole seconds from now, either way. */
static int
parse_seconds(const char *opt, const char *v, int64_t *out)
{
	double num = 0;

	if (parse_number(opt, v, -TTL_MAX, TTL_MAX, &num) != 0)
		return EXIT_USAGE;
	if (num != (double)(int64_t)num)
		return usage_error("%s: expected a whole number of seconds, got \"%s\"", opt, v);
	*out = (int64_t)num;
	return 0;
}

/* Parses an option of the token command (name, with its value v). Returns 0, -1 after a
 * usage error, or 1 when name is not a token option. */
int
parse_mint_option(struct mint *m, const char *name, const char *v)
{
	json_error_t jerr;

	if (strcmp(name, "--secret") == 0) {
		m->secret = v;
	} else if (strcmp(name, "--secret-file") == 0) {
		m->secret_file = v;
	} else if (strcmp(name, "--sub") == 0) {
		m->sub = v;
	} else if (strcmp(name, "--ttl") == 0) {
		return parse_seconds(name, v, &m->ttl) != 0 ? -1 : 0;
	} else if (strcmp(name, "--nbf") == 0) {
		m->nbf_set = true;
		return parse_seconds(name, v, &m->nbf) != 0 ? -1 : 0;
	} else if (strcmp(name, "--info") == 0) {
		json_decref(m->info);
		m->info = json_loads(v, JSON_REJECT_DUPLICATES, &jerr);
		if (m->info == NULL) {
			usage_error("--info: invalid JSON: %s", jerr.text);
			return -1;
		}
	} else if (strcmp(name, "--channels") == 0) {
		return add_patterns(name, v, &m->channels) != 0 ? -1 : 0;
	} else if (strcmp(name, "--publish") == 0) {
		return add_patterns(name, v, &m->publish) != 0 ? -1 : 0;
	} else if (strcmp(name, "--channel") == 0) {
		if (check_channel(v) != 0)
			return -1;
		m->channel = v;
	} else if (strcmp(name, "--alg") == 0) {
		m->alg = v;
	} else {
		return 1;
	}
	return 0;
}

/* token: the claims must make a token the server can accept (docs/tokens.md). */
int
check_mint(struct cli *c, bool token_given)
{
	struct mint *m = &c->o.mint;
	static const struct {
		const char *alg;
		const EVP_MD *(*md)(void);
	} algs[] = { { "HS256", EVP_sha256 }, { "HS384", EVP_sha384 }, { "HS512", EVP_sha512 } };
	json_t *sub;
	char *info;
	bool ok;

	if (token_given)
		return usage_error("token: --token and --token-file do not apply (--secret does)");
	if (m->secret != NULL && m->secret_file != NULL)
		return usage_error("--secret and --secret-file are mutually exclusive");
	if (m->sub == NULL)
		m->sub = c->o.user;
	if (m->sub == NULL)
		return usage_error("token: --sub USER is required (the token's user)");
	sub = json_string(m->sub);
	ok = sub != NULL && m->sub[0] != '\0' && strlen(m->sub) <= PROTO_USER_MAX;
	json_decref(sub);
	if (!ok)
		return usage_error("--sub: expected 1-%d bytes of UTF-8", PROTO_USER_MAX);
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]) && m->md == NULL; i++)
		if (strcmp(m->alg != NULL ? m->alg : "HS256", algs[i].alg) == 0) {
			m->alg = algs[i].alg;
			m->md = algs[i].md;
		}
	if (m->md == NULL)
		return usage_error("--alg: expected HS256, HS384 or HS512, got \"%s\"", m->alg);
	if (m->info != NULL) {
		/* The server measures info as jansson writes it compactly. */
		info = json_is_object(m->info) ? json_dumps(m->info, JSON_COMPACT) : NULL;
		ok = info != NULL && strlen(info) <= PROTO_INFO_MAX;
		free(info);
		if (!ok)
			return usage_error("--info: expected a JSON object of at most %d bytes",
					   PROTO_INFO_MAX);
	}
	if (m->channel != NULL && m->ttl == 0)
		return usage_error("--channel: a channel token needs an exp (--ttl other than 0)");
	return 0;
}

/* Writes the base64url form of n bytes, without padding, and a NUL at out, which holds
 * 4 * (n / 3 + 1) + 1 bytes. Returns the length written. */
static size_t
b64url(char *out, const unsigned char *p, size_t n)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = abc[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = abc[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* The HMAC key: --secret, the content of --secret-file without its final line breaks
 * (as the server reads {"file": ...}), or $SWITCHBOARD_JWT_SECRET. Returns a malloc'd
 * copy (*len bytes), or NULL after a message. */
static char *
mint_secret(const struct mint *m, size_t *len)
{
	const char *env = getenv("SWITCHBOARD_JWT_SECRET");
	char why[300], *key;

	if (m->secret_file != NULL) {
		key = read_small_file(m->secret_file, SECRET_FILE_MAX, "a secret", len, why,
				      sizeof(why));
		if (key == NULL) {
			errmsg("--secret-file: %s", why);
			return NULL;
		}
		while (*len > 0 && (key[*len - 1] == '\n' || key[*len - 1] == '\r'))
			key[--*len] = '\0';
		if (strlen(key) != *len) {
			/* The server refuses such a file too: its secret is a C string. */
			errmsg("--secret-file: %s holds a NUL byte", m->secret_file);
			free(key);
			return NULL;
		}
	} else if (m->secret != NULL || env != NULL) {
		key = strdup(m->secret != NULL ? m->secret : env);
		if (key == NULL) {
			errmsg("out of memory");
			return NULL;
		}
		*len = strlen(key);
	} else {
		errmsg("token: no secret: give --secret-file FILE, --secret S or "
		       "SWITCHBOARD_JWT_SECRET (auth.jwt.hmac_secret of the server)");
		return NULL;
	}
	if (*len == 0 || *len > INT32_MAX) {
		errmsg("token: the secret is %s", *len == 0 ? "empty" : "too long");
		free(key);
		return NULL;
	}
	return key;
}

/* The claims: sub and iat, then those the options ask for. NULL when out of memory. */
static json_t *
mint_claims(const struct mint *m, int64_t now)
{
	json_t *o = json_pack("{s:s, s:I}", "sub", m->sub, "iat", (json_int_t)now);

	if (m->nbf_set)
		add_member(&o, "nbf", json_integer((json_int_t)(now + m->nbf)));
	if (m->ttl != 0)
		add_member(&o, "exp", json_integer((json_int_t)(now + m->ttl)));
	if (m->info != NULL)
		add_member(&o, "info", json_incref(m->info));
	if (m->channels != NULL)
		add_member(&o, "channels", json_incref(m->channels));
	if (m->publish != NULL)
		add_member(&o, "publish", json_incref(m->publish));
	if (m->channel != NULL)
		add_member(&o, "channel", json_string(m->channel));
	return o;
}

/* Prints the token: BASE64URL(header).BASE64URL(claims).BASE64URL(HMAC of the two). */
int
mint_token(struct cli *c)
{
	const struct mint *m = &c->o.mint;
	json_t *header = json_pack("{s:s, s:s}", "alg", m->alg, "typ", "JWT");
	json_t *claims = mint_claims(m, (int64_t)time(NULL));
	char *h = header != NULL ? json_dumps(header, JSON_COMPACT) : NULL;
	char *p = claims != NULL ? json_dumps(claims, JSON_COMPACT) : NULL;
	size_t key_len = 0, hl = h != NULL ? strlen(h) : 0, pl = p != NULL ? strlen(p) : 0, n;
	char *key = NULL, *tok = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	int rc = EXIT_USAGE;

	json_decref(header);
	json_decref(claims);
	if (h == NULL || p == NULL ||
	    (tok = malloc(4 * (hl / 3 + pl / 3 + EVP_MAX_MD_SIZE / 3 + 3) + 3)) == NULL) {
		errmsg("out of memory");
		rc = EXIT_SERVER;
		goto out;
	}
	key = mint_secret(m, &key_len);
	if (key == NULL)
		goto out;
	n = b64url(tok, (const unsigned char *)h, hl);
	tok[n++] = '.';
	n += b64url(tok + n, (const unsigned char *)p, pl);
	if (HMAC(m->md(), key, (int)key_len, (const unsigned char *)tok, n, mac, &mac_len) ==
	    NULL) {
		errmsg("token: HMAC failed");
		rc = EXIT_SERVER;
		goto out;
	}
	tok[n++] = '.';
	n += b64url(tok + n, mac, mac_len);
	if (n > TOKEN_MAX) {
		errmsg("token: the token would be %zu bytes; the server accepts at most %d", n,
		       TOKEN_MAX);
		goto out;
	}
	printf("%s\n", tok);
	rc = fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_SERVER;
	if (rc != EXIT_OK)
		errmsg("cannot write to stdout: %s", strerror(errno));
out:
	if (key != NULL)
		OPENSSL_cleanse(key, key_len);
	free(key);
	free(tok);
	free(h);
	free(p);
	return rc;
}
