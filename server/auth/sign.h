/* sign.h: HMAC-SHA256 request signatures (OpenSSL), shared by the webhooks' signature
 * header and, later, Pusher-style request signatures. The key and the message are
 * borrowed for the call only; nothing is kept between calls and nothing is allocated
 * that the caller must free. The message may be given in parts, which are signed as
 * their concatenation, so "<t>.<body>" needs no copy of the body. */
#ifndef SWITCHBOARD_SIGN_H
#define SWITCHBOARD_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#define SIGN_MAC_LEN 32				       /* bytes of an HMAC-SHA256 */
#define SIGN_HEX_LEN (2 * SIGN_MAC_LEN)		       /* its lowercase hex, without the NUL */
#define SIGN_BASE64_LEN (4 * ((SIGN_MAC_LEN + 2) / 3)) /* its padded base64 (44), no NUL */

/* One piece of the message to sign; the data is borrowed. */
struct sign_part {
	const void *data; /* may be NULL when len is 0 */
	size_t len;
};

/* Computes HMAC-SHA256 with key (keylen bytes, may be empty) over the concatenation of
 * the nparts parts, into mac. Returns 0, or -EINVAL when keylen does not fit OpenSSL's
 * int, or -EIO when OpenSSL fails (out of memory); mac is then undefined. */
int sign_hmac_sha256(const void *key, size_t keylen, const struct sign_part *parts, size_t nparts,
		     unsigned char mac[SIGN_MAC_LEN]);

/* As sign_hmac_sha256(), then writes the MAC as lowercase hex into out, NUL-terminated
 * (SIGN_HEX_LEN + 1 bytes). Returns 0 or the same codes; out is then "". */
int sign_hmac_sha256_hex(const void *key, size_t keylen, const struct sign_part *parts,
			 size_t nparts, char out[SIGN_HEX_LEN + 1]);

/* As sign_hmac_sha256(), then writes the MAC in base64 (RFC 4648 alphabet, with '='
 * padding) into out, NUL-terminated (SIGN_BASE64_LEN + 1 bytes). Returns 0 or the same
 * codes; out is then "". */
int sign_hmac_sha256_base64(const void *key, size_t keylen, const struct sign_part *parts,
			    size_t nparts, char out[SIGN_BASE64_LEN + 1]);

/* Writes len bytes of in as lowercase hex into out (2 * len + 1 bytes, NUL-terminated).
 * Returns the number of characters written, without the NUL (2 * len). */
size_t sign_hex(const unsigned char *in, size_t len, char *out);

/* Writes len bytes of in as padded base64 into out (4 * ((len + 2) / 3) + 1 bytes,
 * NUL-terminated). Returns the number of characters written, without the NUL. */
size_t sign_base64(const unsigned char *in, size_t len, char *out);

/* Compares a (alen bytes) and b (blen bytes) for verifying a signature: true when they
 * are the same length and the same bytes. When the lengths match, the time taken does
 * not depend on where they differ; a length mismatch returns false at once (the length
 * of a signature is not a secret). */
bool sign_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif
