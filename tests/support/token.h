/* token.h: JSON Web Tokens minted by the tests themselves (RFC 7515 compact form:
 * base64url(header).base64url(payload).base64url(signature)), signed with HMAC-SHA256
 * through OpenSSL. The header and payload are given as JSON text and encoded as is, so a
 * test can also build what a real issuer never would (alg "none", a forged signature,
 * claims of the wrong type).
 */
#ifndef SWITCHBOARD_TEST_TOKEN_H
#define SWITCHBOARD_TEST_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* base64url of len bytes, without padding (new string, free() it), or NULL. */
char *token_b64url(const void *data, size_t len);

/* header_json.payload_json signed with HMAC-SHA256 under secret, whatever the header's
 * "alg" says; secret NULL gives an empty signature ("a.b."). New string, or NULL. */
char *token_sign(const char *header_json, const char *payload_json, const char *secret);

/* An HS256 token ({"alg":"HS256","typ":"JWT"}) with the printf-formatted payload. */
char *token_hs256(const char *secret, const char *payload_fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The wall clock in Unix seconds, the time base of "exp", "nbf" and "expires". */
int64_t token_now(void);

#endif
