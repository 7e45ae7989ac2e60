/* jwt.c: verification of compact JWS tokens with OpenSSL.
 * Order of checks: shape and base64url of all three parts, header (alg, crit, typ), then
 * the signature over the token's first two parts, and only then the payload and its time
 * claims, so no claim of an unsigned token is ever looked at. The verifier owns its copy
 * of the secret (wiped on free) and one EVP_PKEY; it is never modified after creation.
 * jwt_verify() allocates nothing that outlives the call except the claims it returns,
 * and every allocation failure is reported as JWT_MALFORMED. */
#include "jwt.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define JWT_RSA_MIN_BITS 2048
#define ES256_COORD_LEN 32 /* bytes of r and of s in a raw P-256 signature */

enum key_kind {
	KEY_NONE = 0,
	KEY_RSA,
	KEY_EC_P256,
};

struct jwt_verifier {
	unsigned char *secret; /* HMAC key, or NULL when HS* is not accepted */
	size_t secret_len;
	EVP_PKEY *pkey;	    /* public key, or NULL */
	enum key_kind kind; /* what pkey is, which decides RS256 vs ES256 */
	unsigned leeway;    /* seconds of clock skew allowed for exp and nbf */
};

/* What the token's "alg" asks for, once it is known to match a configured key. */
struct alg {
	const char *name;
	enum key_kind kind; /* KEY_NONE for HMAC */
	const EVP_MD *(*md)(void);
};

static const struct alg algs[] = {
	{ "HS256", KEY_NONE, EVP_sha256 },    { "HS384", KEY_NONE, EVP_sha384 },
	{ "HS512", KEY_NONE, EVP_sha512 },    { "RS256", KEY_RSA, EVP_sha256 },
	{ "ES256", KEY_EC_P256, EVP_sha256 },
};

/* The only texts a client ever sees: one fixed sentence per status, never token bytes. */
static const char *const status_text[] = {
	[JWT_OK] = "token is valid",
	[JWT_MALFORMED] = "token is malformed",
	[JWT_UNSUPPORTED_ALG] = "token algorithm is not accepted",
	[JWT_BAD_SIGNATURE] = "token signature is invalid",
	[JWT_EXPIRED] = "token has expired",
	[JWT_NOT_YET_VALID] = "token is not yet valid",
	[JWT_BAD_CLAIMS] = "token time claims must be numbers",
};

static const char *const status_names[] = {
	[JWT_OK] = "ok",
	[JWT_MALFORMED] = "malformed",
	[JWT_UNSUPPORTED_ALG] = "unsupported_alg",
	[JWT_BAD_SIGNATURE] = "bad_signature",
	[JWT_EXPIRED] = "expired",
	[JWT_NOT_YET_VALID] = "not_yet_valid",
	[JWT_BAD_CLAIMS] = "bad_claims",
};

const char *
jwt_status_name(enum jwt_status s)
{
	if ((unsigned)s >= sizeof(status_names) / sizeof(status_names[0]))
		return "unknown";
	return status_names[s];
}

/* Refuses to prompt on the terminal should OpenSSL ever ask for a passphrase. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Checks that pkey is a key we can verify with and says which kind it is.
 * Returns 0, or -1 with a sentence naming path in err. */
static int
classify_key(EVP_PKEY *pkey, const char *path, enum key_kind *kind, char *err, size_t errlen)
{
	char group[64];
	const char *name;
	size_t glen = 0;
	int bits;

	/* By name, not legacy id: "RSA" excludes RSA-PSS keys, "EC" excludes SM2. */
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < JWT_RSA_MIN_BITS) {
			snprintf(err, errlen,
				 "public key %s: RSA key of %d bits is too short (at least %d)",
				 path, bits, JWT_RSA_MIN_BITS);
			return -1;
		}
		*kind = KEY_RSA;
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "EC")) {
		/* Keys with explicit curve parameters have no group name and are refused. */
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), &glen) != 1) {
			snprintf(err, errlen,
				 "public key %s: EC key without a named curve (P-256 is required)",
				 path);
			return -1;
		}
		if (OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
			snprintf(err, errlen,
				 "public key %s: EC curve %s is not supported (P-256 is required)",
				 path, group);
			return -1;
		}
		*kind = KEY_EC_P256;
		return 0;
	}
	name = EVP_PKEY_get0_type_name(pkey);
	snprintf(err, errlen,
		 "public key %s: %s keys are not supported (RSA or EC P-256 is required)", path,
		 name != NULL ? name : "such");
	return -1;
}

/* Reads the first public key of the PEM file at path. Returns it (new), or NULL with a
 * sentence naming path in err. */
static EVP_PKEY *
load_public_key(const char *path, enum key_kind *kind, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "public key %s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	pkey = PEM_read_PUBKEY(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (pkey == NULL) {
		snprintf(err, errlen,
			 "public key %s: no PEM public key found (expected a "
			 "\"BEGIN PUBLIC KEY\" block, as written by `openssl pkey -pubout`)",
			 path);
		return NULL;
	}
	if (classify_key(pkey, path, kind, err, errlen) != 0) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

struct jwt_verifier *
jwt_verifier_new(const char *hmac_secret, const char *public_key_path, unsigned leeway, char *err,
		 size_t errlen)
{
	struct jwt_verifier *v;
	char dummy[1];

	/* Callers may pass no error buffer; the messages then go nowhere. */
	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (hmac_secret == NULL && public_key_path == NULL) {
		snprintf(err, errlen, "JWT: neither an HMAC secret nor a public key is configured");
		return NULL;
	}
	if (hmac_secret != NULL && hmac_secret[0] == '\0') {
		snprintf(err, errlen, "JWT: the HMAC secret must not be empty");
		return NULL;
	}
	/* HMAC() takes the key length as an int. */
	if (hmac_secret != NULL && strlen(hmac_secret) > INT_MAX) {
		snprintf(err, errlen, "JWT: the HMAC secret is too long");
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		goto out_oom;
	v->leeway = leeway;
	if (hmac_secret != NULL) {
		v->secret_len = strlen(hmac_secret);
		v->secret = malloc(v->secret_len);
		if (v->secret == NULL)
			goto out_oom;
		memcpy(v->secret, hmac_secret, v->secret_len);
	}
	if (public_key_path != NULL) {
		v->pkey = load_public_key(public_key_path, &v->kind, err, errlen);
		if (v->pkey == NULL)
			goto out_free;
	}
	ERR_clear_error();
	return v;

out_oom:
	snprintf(err, errlen, "JWT: out of memory");
out_free:
	/* OpenSSL's queue is per thread and shared with TLS: leave nothing behind in it. */
	ERR_clear_error();
	jwt_verifier_free(v);
	return NULL;
}

int
jwt_public_key_check(const char *public_key_path, char *err, size_t errlen)
{
	struct jwt_verifier *v = jwt_verifier_new(NULL, public_key_path, 0, err, errlen);

	if (v == NULL)
		return -1;
	jwt_verifier_free(v);
	return 0;
}

void
jwt_verifier_free(struct jwt_verifier *v)
{
	if (v == NULL)
		return;
	if (v->secret != NULL) {
		OPENSSL_cleanse(v->secret, v->secret_len);
		free(v->secret);
	}
	EVP_PKEY_free(v->pkey);
	free(v);
}

/* Value of a base64url character, or -1 for anything else (including '=' and NUL). */
static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes unpadded base64url in[0..n) into out (room for n * 3 / 4 bytes) and sets
 * *outlen. Only the canonical encoding is accepted: a length of 1 mod 4, or unused bits
 * that are not zero in the last character, make it fail, so one signature has one
 * spelling. Returns 0 or -1. */
static int
b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int val = b64url_value((unsigned char)in[i]);

		if (val < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)val;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* the leftover 2 or 4 bits must be zero */
		return -1;
	*outlen = o;
	return 0;
}

/* Parses in[0..n) as a JSON object (duplicate keys refused). Returns a new reference, or
 * NULL if it is not JSON, not an object, or memory ran out. */
static json_t *
parse_object(const unsigned char *in, size_t n)
{
	json_error_t jerr;
	json_t *obj;

	obj = json_loadb((const char *)in, n, JSON_REJECT_DUPLICATES, &jerr);
	if (obj != NULL && !json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* True if the JSON string s is exactly the C string want (no embedded NUL tricks). */
static bool
json_string_is(const json_t *s, const char *want)
{
	return json_string_length(s) == strlen(want) && strcmp(json_string_value(s), want) == 0;
}

/* Checks the header and picks the algorithm it names, which must match a configured key.
 * Fields we do not act on ("kid", "jku", "x5u", "jwk", ...) are ignored: the key is
 * always the configured one, never one named or carried by the token. */
static enum jwt_status
check_header(const struct jwt_verifier *v, const json_t *hdr, const struct alg **out)
{
	const json_t *alg = json_object_get(hdr, "alg");
	const json_t *typ = json_object_get(hdr, "typ");

	if (!json_is_string(alg))
		return JWT_MALFORMED;
	/* We understand no extension, so any critical one makes the token unusable. */
	if (json_object_get(hdr, "crit") != NULL)
		return JWT_MALFORMED;
	if (typ != NULL && !json_is_string(typ))
		return JWT_MALFORMED;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		if (!json_string_is(alg, algs[i].name))
			continue;
		/* An HS* token is only checked against the configured secret, never against
		 * public key material: that is the algorithm-confusion attack. */
		if (algs[i].kind == KEY_NONE ? v->secret == NULL : v->kind != algs[i].kind)
			return JWT_UNSUPPORTED_ALG;
		*out = &algs[i];
		return JWT_OK;
	}
	return JWT_UNSUPPORTED_ALG;
}

static enum jwt_status
verify_hmac(const struct jwt_verifier *v, const struct alg *a, const char *input, size_t n,
	    const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	const EVP_MD *md = a->md();

	if (siglen != (size_t)EVP_MD_get_size(md))
		return JWT_BAD_SIGNATURE;
	if (HMAC(md, v->secret, (int)v->secret_len, (const unsigned char *)input, n, mac,
		 &maclen) == NULL)
		return JWT_MALFORMED; /* out of memory */
	if (maclen != siglen || CRYPTO_memcmp(mac, sig, siglen) != 0)
		return JWT_BAD_SIGNATURE;
	return JWT_OK;
}

/* Verifies a DER (ECDSA) or PKCS#1 v1.5 (RSA) signature with the public key. */
static enum jwt_status
verify_pkey(const struct jwt_verifier *v, const struct alg *a, const char *input, size_t n,
	    const unsigned char *sig, size_t siglen)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx;
	enum jwt_status st = JWT_BAD_SIGNATURE;
	int rc;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return JWT_MALFORMED;
	if (EVP_DigestVerifyInit(ctx, &pctx, a->md(), NULL, v->pkey) != 1) {
		st = JWT_MALFORMED;
		goto out;
	}
	if (a->kind == KEY_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
		st = JWT_MALFORMED;
		goto out;
	}
	/* 1 is a valid signature; 0 a wrong one; < 0 an unusable one (or an internal
	 * failure, which we cannot tell apart and refuse all the same). */
	rc = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input, n);
	if (rc == 1)
		st = JWT_OK;
out:
	EVP_MD_CTX_free(ctx);
	return st;
}

static enum jwt_status
verify_rsa(const struct jwt_verifier *v, const struct alg *a, const char *input, size_t n,
	   const unsigned char *sig, size_t siglen)
{
	/* RFC 7518 3.3: the signature is exactly as long as the modulus. */
	if (siglen != (size_t)EVP_PKEY_get_size(v->pkey))
		return JWT_BAD_SIGNATURE;
	return verify_pkey(v, a, input, n, sig, siglen);
}

/* JWS carries ECDSA signatures as raw r||s (RFC 7518 3.4); OpenSSL wants DER. */
static enum jwt_status
verify_ecdsa(const struct jwt_verifier *v, const struct alg *a, const char *input, size_t n,
	     const unsigned char *sig, size_t siglen)
{
	unsigned char *der = NULL;
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	enum jwt_status st;
	int derlen;

	if (siglen != 2 * ES256_COORD_LEN)
		return JWT_BAD_SIGNATURE;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, ES256_COORD_LEN, NULL);
	s = BN_bin2bn(sig + ES256_COORD_LEN, ES256_COORD_LEN, NULL);
	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return JWT_MALFORMED;
	}
	/* es owns r and s from here on. */
	derlen = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (derlen <= 0)
		return JWT_MALFORMED;
	st = verify_pkey(v, a, input, n, der, (size_t)derlen);
	OPENSSL_free(der);
	return st;
}

static enum jwt_status
verify_signature(const struct jwt_verifier *v, const struct alg *a, const char *input, size_t n,
		 const unsigned char *sig, size_t siglen)
{
	switch (a->kind) {
	case KEY_NONE:
		return verify_hmac(v, a, input, n, sig, siglen);
	case KEY_RSA:
		return verify_rsa(v, a, input, n, sig, siglen);
	case KEY_EC_P256:
		return verify_ecdsa(v, a, input, n, sig, siglen);
	}
	return JWT_UNSUPPORTED_ALG;
}

/* True if the time claim c, plus add, is <= now; exact for integers, without overflow.
 * add may be negative (it is +-leeway). */
static bool
claim_plus_le(const json_t *c, int64_t add, int64_t now)
{
	if (json_is_integer(c)) {
		json_int_t t = json_integer_value(c);

		if (add > 0 && t > INT64_MAX - add)
			return false; /* t + add is past every int64 now */
		if (add < 0 && t < INT64_MIN - add)
			return true; /* t + add is before every int64 now */
		return t + add <= now;
	}
	/* A real: NumericDate may have fractions. jansson never yields NaN or infinity. */
	return json_real_value(c) + (double)add <= (double)now;
}

/* Checks exp and nbf against now; iat only has to be a number. */
static enum jwt_status
check_times(const struct jwt_verifier *v, const json_t *claims, int64_t now)
{
	const json_t *exp = json_object_get(claims, "exp");
	const json_t *nbf = json_object_get(claims, "nbf");
	const json_t *iat = json_object_get(claims, "iat");
	int64_t leeway = v->leeway;

	if ((exp != NULL && !json_is_number(exp)) || (nbf != NULL && !json_is_number(nbf)) ||
	    (iat != NULL && !json_is_number(iat)))
		return JWT_BAD_CLAIMS;
	if (exp != NULL && claim_plus_le(exp, leeway, now))
		return JWT_EXPIRED;
	/* nbf - leeway > now is the negation of nbf - leeway <= now. */
	if (nbf != NULL && !claim_plus_le(nbf, -leeway, now))
		return JWT_NOT_YET_VALID;
	return JWT_OK;
}

/* Splits token into header, payload and signature at its two dots, checks the shape,
 * and decodes all three parts into buf (room for len bytes). The part lengths and
 * decoded slices are returned through the arrays: [0] header, [1] payload, [2] sig. */
static enum jwt_status
split_and_decode(const char *token, size_t len, unsigned char *buf, const unsigned char *part[3],
		 size_t partlen[3], size_t *signed_len)
{
	size_t start[3], end[3], np = 0, o = 0;

	start[0] = 0;
	for (size_t i = 0; i < len; i++) {
		if (token[i] != '.')
			continue;
		if (np == 2)
			return JWT_MALFORMED; /* a fourth part (or a JWE) */
		end[np++] = i;
		start[np] = i + 1;
	}
	if (np != 2)
		return JWT_MALFORMED;
	end[2] = len;
	/* An empty signature is a shape we accept; it then fails verification. */
	if (end[0] == start[0] || end[1] == start[1])
		return JWT_MALFORMED;
	for (int k = 0; k < 3; k++) {
		part[k] = buf + o;
		if (b64url_decode(token + start[k], end[k] - start[k], buf + o, &partlen[k]) != 0)
			return JWT_MALFORMED;
		o += partlen[k];
	}
	*signed_len = end[1];
	return JWT_OK;
}

/* The steps of jwt_verify, in the order that keeps unsigned data uninterpreted. */
static enum jwt_status
verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now, json_t **claims)
{
	const unsigned char *part[3];
	size_t partlen[3], signed_len;
	const struct alg *a = NULL;
	unsigned char *buf;
	json_t *hdr, *payload = NULL;
	enum jwt_status st;

	if (token == NULL || len == 0 || len > JWT_MAX_LEN)
		return JWT_MALFORMED;
	buf = malloc(len); /* decoded parts are shorter than their encoding */
	if (buf == NULL)
		return JWT_MALFORMED;
	st = split_and_decode(token, len, buf, part, partlen, &signed_len);
	if (st != JWT_OK)
		goto out_buf;
	hdr = parse_object(part[0], partlen[0]);
	if (hdr == NULL) {
		st = JWT_MALFORMED;
		goto out_buf;
	}
	st = check_header(v, hdr, &a);
	json_decref(hdr);
	if (st != JWT_OK)
		goto out_buf;
	st = verify_signature(v, a, token, signed_len, part[2], partlen[2]);
	if (st != JWT_OK)
		goto out_buf;
	payload = parse_object(part[1], partlen[1]);
	if (payload == NULL) {
		st = JWT_MALFORMED;
		goto out_buf;
	}
	st = check_times(v, payload, now);
	if (st != JWT_OK) {
		json_decref(payload);
		goto out_buf;
	}
	*claims = payload;
out_buf:
	free(buf);
	return st;
}

enum jwt_status
jwt_verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now,
	   json_t **claims, char *msg, size_t msglen)
{
	enum jwt_status st;

	*claims = NULL;
	st = verify(v, token, len, now, claims);
	/* A failed verification may leave errors in OpenSSL's per-thread queue, which
	 * lws would later mistake for a TLS error on this thread. */
	ERR_clear_error();
	if (msg != NULL && msglen > 0)
		snprintf(msg, msglen, "%s", status_text[st]);
	return st;
}
