/* jwt.h: verification of compact JWS tokens (RFC 7515/7519) with OpenSSL.
 * Accepted algorithms: HS256/HS384/HS512 with the configured shared secret, RS256 with a
 * configured RSA public key, ES256 with a configured EC P-256 public key. Everything else
 * is refused, in particular "none" and an HS* token when only a public key is configured
 * (algorithm confusion). The verifier is immutable after creation. */
#ifndef SWITCHBOARD_JWT_H
#define SWITCHBOARD_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define JWT_MAX_LEN 8192 /* longer tokens are refused as malformed */

struct jwt_verifier;

enum jwt_status {
	JWT_OK = 0,
	JWT_MALFORMED,	     /* not three base64url parts, bad JSON, not objects, too long */
	JWT_UNSUPPORTED_ALG, /* none, unknown, or no key configured for this algorithm */
	JWT_BAD_SIGNATURE,
	JWT_EXPIRED,	   /* exp + leeway <= now */
	JWT_NOT_YET_VALID, /* nbf - leeway > now */
	JWT_BAD_CLAIMS,	   /* exp/nbf/iat present but not numbers */
};

/* A verifier for the given keys; either may be NULL, not both. public_key_path names a
 * PEM file with an RSA or EC P-256 public key. leeway: seconds of clock skew allowed for
 * exp and nbf. Returns NULL with a sentence in err when a key cannot be used. */
struct jwt_verifier *jwt_verifier_new(const char *hmac_secret, const char *public_key_path,
				      unsigned leeway, char *err, size_t errlen);
void jwt_verifier_free(struct jwt_verifier *v); /* NULL-safe */

/* Checks that the PEM file at public_key_path loads as jwt_verifier_new() loads it (an
 * RSA key of at least 2048 bits or an EC P-256 key). Returns 0, or -1 with a sentence in
 * err (which names the path). */
int jwt_public_key_check(const char *public_key_path, char *err, size_t errlen);

/* Verifies token (len bytes, not necessarily NUL-terminated) at time now (Unix seconds).
 * On JWT_OK, *claims is a new reference to the payload object. Otherwise *claims is NULL
 * and msg (if not NULL) holds a short sentence for the client, which never echoes the
 * token. */
enum jwt_status jwt_verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now,
			   json_t **claims, char *msg, size_t msglen);

const char *jwt_status_name(enum jwt_status s);

#endif
