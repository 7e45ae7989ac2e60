/* test_jwt.c: token verification against tokens minted here with OpenSSL.
 * Keys are generated per test process (criterion runs each test in its own) and their
 * public halves written as PEM to mkstemp files under /tmp, removed by the suite's fini.
 * Test-side buffers are kept in a global list, so LeakSanitizer still sees them as
 * reachable and assert_no_leaks() reports only what jwt.c loses. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "jwt.h"
#include "leakcheck.h"

#define NOW ((int64_t)1700000000)
#define SECRET "test-secret-0123456789abcdef0123"
#define HS256_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS256_HDR "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES256_HDR "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define ALICE "{\"sub\":\"alice\",\"exp\":1700003600}"

/* Everything a test allocated; freed by the suite's fini. */
static void **kept;
static size_t nkept, cap;
static char *files[8]; /* temp files to unlink */
static size_t nfiles;
static EVP_PKEY *rsa_key, *ec_key;
static char *rsa_pub, *ec_pub; /* PEM files of their public halves */

static void *
keep(void *p)
{
	cr_assert_not_null(p);
	if (nkept == cap) {
		cap = cap == 0 ? 256 : 2 * cap;
		kept = realloc(kept, cap * sizeof(*kept));
		cr_assert_not_null(kept);
	}
	kept[nkept++] = p;
	return p;
}

static char *
fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	cr_assert_geq(vasprintf(&s, f, ap), 0);
	va_end(ap);
	return keep(s);
}

static void
cleanup(void)
{
	for (size_t i = 0; i < nfiles; i++)
		unlink(files[i]);
	for (size_t i = 0; i < nkept; i++)
		free(kept[i]);
	free(kept);
	kept = NULL;
	cap = 0;
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	nkept = nfiles = 0;
}

TestSuite(jwt, .fini = cleanup, .timeout = 60);

/* Writes len bytes to a new temp file under /tmp and returns its path. */
static char *
temp_file(const void *data, size_t len)
{
	char *path = fmt("/tmp/switchboard-jwt-XXXXXX");
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_lt(nfiles, sizeof(files) / sizeof(files[0]));
	files[nfiles++] = path;
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Writes the public half of k as a PEM "PUBLIC KEY" block to a temp file. */
static char *
write_pubkey(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long n;

	cr_assert_not_null(b);
	cr_assert_eq(PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &pem);
	pem = temp_file(pem, (size_t)n);
	BIO_free(b);
	return pem;
}

static char *
read_file(const char *path, size_t *len)
{
	char *buf = keep(malloc(65536));
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f);
	*len = fread(buf, 1, 65535, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static EVP_PKEY *
rsa(void)
{
	if (rsa_key == NULL) {
		rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		cr_assert_not_null(rsa_key);
		rsa_pub = write_pubkey(rsa_key);
	}
	return rsa_key;
}

static EVP_PKEY *
ec(void)
{
	if (ec_key == NULL) {
		ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		cr_assert_not_null(ec_key);
		ec_pub = write_pubkey(ec_key);
	}
	return ec_key;
}

static const char *
rsa_path(void)
{
	rsa();
	return rsa_pub;
}

static const char *
ec_path(void)
{
	ec();
	return ec_pub;
}

/* base64url without padding, as JWS wants it. */
static char *
b64url(const void *in, size_t n)
{
	char *out = keep(malloc(4 * ((n + 2) / 3) + 1));
	size_t len;

	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	len = strlen(out);
	while (len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
	for (char *c = out; *c != '\0'; c++) {
		if (*c == '+')
			*c = '-';
		else if (*c == '/')
			*c = '_';
	}
	return out;
}

static char *
b64s(const char *s)
{
	return b64url(s, strlen(s));
}

/* "B64(header).B64(payload)": the bytes a JWS signature covers. */
static char *
signing_input(const char *hdr, const char *payload)
{
	return fmt("%s.%s", b64s(hdr), b64s(payload));
}

static unsigned char *
hmac_sig(const EVP_MD *md, const void *key, size_t keylen, const char *input, size_t *len)
{
	unsigned char *sig = keep(malloc(EVP_MAX_MD_SIZE));
	unsigned int n = 0;

	cr_assert_not_null(
		HMAC(md, key, (int)keylen, (const unsigned char *)input, strlen(input), sig, &n));
	*len = n;
	return sig;
}

/* A SHA-256 signature by k: PKCS#1 v1.5 for RSA; for EC the DER that OpenSSL makes,
 * turned into JWS's raw r||s unless der is set. */
static unsigned char *
pkey_sig_as(EVP_PKEY *k, const char *input, size_t *len, bool der)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const unsigned char *in = (const unsigned char *)input;
	unsigned char *sig;
	const unsigned char *p;
	const BIGNUM *r, *s;
	ECDSA_SIG *es;
	unsigned char *raw;

	cr_assert_not_null(ctx);
	cr_assert_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
	cr_assert_eq(EVP_DigestSign(ctx, NULL, len, in, strlen(input)), 1);
	sig = keep(malloc(*len));
	cr_assert_eq(EVP_DigestSign(ctx, sig, len, in, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	if (EVP_PKEY_get_id(k) != EVP_PKEY_EC || der)
		return sig;
	p = sig;
	es = d2i_ECDSA_SIG(NULL, &p, (long)*len);
	cr_assert_not_null(es);
	ECDSA_SIG_get0(es, &r, &s);
	raw = keep(malloc(64));
	cr_assert_eq(BN_bn2binpad(r, raw, 32), 32);
	cr_assert_eq(BN_bn2binpad(s, raw + 32, 32), 32);
	ECDSA_SIG_free(es);
	*len = 64;
	return raw;
}

static unsigned char *
pkey_sig(EVP_PKEY *k, const char *input, size_t *len)
{
	return pkey_sig_as(k, input, len, false);
}

static char *
with_sig(const char *input, const unsigned char *sig, size_t len)
{
	return fmt("%s.%s", input, b64url(sig, len));
}

static char *
mint_hmac(const EVP_MD *md, const char *secret, const char *hdr, const char *payload)
{
	char *in = signing_input(hdr, payload);
	size_t len;
	unsigned char *sig = hmac_sig(md, secret, strlen(secret), in, &len);

	return with_sig(in, sig, len);
}

static char *
mint_hs256(const char *payload)
{
	return mint_hmac(EVP_sha256(), SECRET, HS256_HDR, payload);
}

static char *
mint_pkey(EVP_PKEY *k, const char *hdr, const char *payload)
{
	char *in = signing_input(hdr, payload);
	size_t len;
	unsigned char *sig = pkey_sig(k, in, &len);

	return with_sig(in, sig, len);
}

static struct jwt_verifier *
verifier(const char *secret, const char *pub, unsigned leeway)
{
	char err[256] = "";
	struct jwt_verifier *v = jwt_verifier_new(secret, pub, leeway, err, sizeof(err));

	cr_assert_not_null(v, "jwt_verifier_new: %s", err);
	return v;
}

/* Verifies token and checks what every answer must satisfy: claims only on success, a
 * message that names the outcome and never repeats token bytes, and no error left in
 * OpenSSL's queue. */
static enum jwt_status
verify_len(const struct jwt_verifier *v, const char *token, size_t len, int64_t now)
{
	json_t *claims = (json_t *)&claims; /* must be overwritten */
	char msg[128];
	enum jwt_status st;

	memset(msg, 'x', sizeof(msg));
	st = jwt_verify(v, token, len, now, &claims, msg, sizeof(msg));
	cr_assert(memchr(msg, '\0', sizeof(msg)) != NULL, "msg not terminated");
	cr_expect_gt(strlen(msg), 0);
	cr_expect_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
	if (st == JWT_OK) {
		cr_expect(json_is_object(claims));
	} else {
		cr_expect_null(claims, "claims returned with %s", jwt_status_name(st));
		for (size_t i = 0; i + 8 <= len; i++)
			cr_assert_null(memmem(msg, strlen(msg), token + i, 8),
				       "msg \"%s\" echoes the token", msg);
	}
	json_decref(st == JWT_OK ? claims : NULL);
	return st;
}

static enum jwt_status
verify_at(const struct jwt_verifier *v, const char *token, int64_t now)
{
	return verify_len(v, token, strlen(token), now);
}

static enum jwt_status
verify(const struct jwt_verifier *v, const char *token)
{
	return verify_at(v, token, NOW);
}

#define expect_status(got, want)                                                                   \
	cr_expect_eq((got), (want), "got %s, want %s", jwt_status_name(got), jwt_status_name(want))

/* ---- valid tokens ---- */

Test(jwt, hs256_token_verifies_and_returns_the_claims)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256("{\"sub\":\"alice\",\"exp\":1700003600,\"info\":{\"n\":1}}");
	json_t *claims = NULL;
	char msg[64];

	expect_status(jwt_verify(v, tok, strlen(tok), NOW, &claims, msg, sizeof(msg)), JWT_OK);
	cr_assert(json_is_object(claims));
	cr_expect_str_eq(json_string_value(json_object_get(claims, "sub")), "alice");
	cr_expect_eq(json_integer_value(json_object_get(claims, "exp")), 1700003600);
	cr_expect(json_is_object(json_object_get(claims, "info")));
	cr_expect_eq(claims->refcount, 1);
	json_decref(claims);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, hs384_and_hs512_tokens_verify)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v, mint_hmac(EVP_sha384(), SECRET, "{\"alg\":\"HS384\"}", ALICE)),
		      JWT_OK);
	expect_status(verify(v, mint_hmac(EVP_sha512(), SECRET, "{\"alg\":\"HS512\"}", ALICE)),
		      JWT_OK);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, rs256_token_verifies_with_an_rsa_public_key)
{
	struct jwt_verifier *v = verifier(NULL, rsa_path(), 0);

	expect_status(verify(v, mint_pkey(rsa(), RS256_HDR, ALICE)), JWT_OK);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, es256_token_verifies_with_an_ec_p256_public_key)
{
	struct jwt_verifier *v = verifier(NULL, ec_path(), 0);

	/* ECDSA signatures are randomised: several runs cover r and s with a high bit set. */
	for (int i = 0; i < 16; i++)
		expect_status(verify(v, mint_pkey(ec(), ES256_HDR, ALICE)), JWT_OK);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, secret_and_public_key_together_accept_both_kinds)
{
	struct jwt_verifier *v = verifier(SECRET, ec_path(), 0);

	expect_status(verify(v, mint_hs256(ALICE)), JWT_OK);
	expect_status(verify(v, mint_pkey(ec(), ES256_HDR, ALICE)), JWT_OK);
	expect_status(verify(v, mint_pkey(rsa(), RS256_HDR, ALICE)), JWT_UNSUPPORTED_ALG);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, token_without_time_claims_verifies)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v, mint_hs256("{\"sub\":\"alice\"}")), JWT_OK);
	expect_status(verify(v, mint_hs256("{}")), JWT_OK);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, typ_may_be_any_string_or_absent)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, "{\"alg\":\"HS256\"}", ALICE)),
		      JWT_OK);
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET,
					  "{\"typ\":\"at+jwt\",\"alg\":\"HS256\"}", ALICE)),
		      JWT_OK);
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, "{\"alg\":\"HS256\",\"typ\":1}",
					  ALICE)),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, "{\"alg\":\"HS256\",\"typ\":null}",
					  ALICE)),
		      JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, token_need_not_be_nul_terminated)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256(ALICE);
	const char *longer = fmt("%s.garbage", tok);

	expect_status(verify_len(v, longer, strlen(tok), NOW), JWT_OK);
	expect_status(verify_len(v, longer, strlen(tok) - 1, NOW), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* ---- algorithms that must be refused ---- */

Test(jwt, alg_none_is_refused_without_and_with_a_signature)
{
	struct jwt_verifier *v = verifier(SECRET, rsa_path(), 0);
	const char *in = signing_input("{\"alg\":\"none\",\"typ\":\"JWT\"}", ALICE);
	size_t len;
	unsigned char *sig = hmac_sig(EVP_sha256(), SECRET, strlen(SECRET), in, &len);

	expect_status(verify(v, fmt("%s.", in)), JWT_UNSUPPORTED_ALG);
	expect_status(verify(v, with_sig(in, sig, len)), JWT_UNSUPPORTED_ALG);
	expect_status(verify(v, fmt("%s.", signing_input("{\"alg\":\"None\"}", ALICE))),
		      JWT_UNSUPPORTED_ALG);
	expect_status(verify(v, fmt("%s.", signing_input("{\"alg\":\"NONE\"}", ALICE))),
		      JWT_UNSUPPORTED_ALG);
	expect_status(verify(v, fmt("%s.", signing_input("{\"alg\":\"\"}", ALICE))),
		      JWT_UNSUPPORTED_ALG);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, unknown_or_misspelt_algorithms_are_refused)
{
	struct jwt_verifier *v = verifier(SECRET, rsa_path(), 0);
	const char *algs[] = { "hs256", "HS256 ", "PS256",  "RS384",   "RS512",
			       "ES384", "EdDSA",  "HS1024", "RSA-OAEP" };

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET,
						  fmt("{\"alg\":\"%s\"}", algs[i]), ALICE)),
			      JWT_UNSUPPORTED_ALG);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, alg_missing_or_not_a_string_is_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, "{\"typ\":\"JWT\"}", ALICE)),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, "{\"alg\":256}", ALICE)),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, "{\"alg\":[\"HS256\"]}", ALICE)),
		      JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* The classic confusion attack: the public key is public, so an attacker signs HS256
 * with the PEM bytes as the HMAC secret, hoping the verifier uses "the key" as given. */
Test(jwt, hs256_signed_with_the_public_key_pem_is_refused)
{
	struct jwt_verifier *v = verifier(NULL, rsa_path(), 0);
	struct jwt_verifier *both = verifier(SECRET, rsa_path(), 0);
	size_t pemlen;
	const char *pem = read_file(rsa_path(), &pemlen);
	const char *in = signing_input(HS256_HDR, ALICE);
	size_t len;
	unsigned char *sig = hmac_sig(EVP_sha256(), pem, pemlen, in, &len);
	const char *tok = with_sig(in, sig, len);

	expect_status(verify(v, tok), JWT_UNSUPPORTED_ALG);
	/* With a secret configured HS256 is accepted, but only with that secret. */
	expect_status(verify(both, tok), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	jwt_verifier_free(both);
	assert_no_leaks();
}

Test(jwt, hs256_with_the_ec_public_key_pem_is_refused)
{
	struct jwt_verifier *v = verifier(NULL, ec_path(), 0);
	size_t pemlen;
	const char *pem = read_file(ec_path(), &pemlen);
	const char *in = signing_input(HS256_HDR, ALICE);
	size_t len;
	unsigned char *sig = hmac_sig(EVP_sha256(), pem, pemlen, in, &len);

	expect_status(verify(v, with_sig(in, sig, len)), JWT_UNSUPPORTED_ALG);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, rs256_token_to_an_ec_key_verifier_is_refused)
{
	struct jwt_verifier *v = verifier(NULL, ec_path(), 0);

	expect_status(verify(v, mint_pkey(rsa(), RS256_HDR, ALICE)), JWT_UNSUPPORTED_ALG);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, es256_token_to_an_rsa_key_verifier_is_refused)
{
	struct jwt_verifier *v = verifier(NULL, rsa_path(), 0);

	expect_status(verify(v, mint_pkey(ec(), ES256_HDR, ALICE)), JWT_UNSUPPORTED_ALG);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, public_key_tokens_to_an_hmac_only_verifier_are_refused)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v, mint_pkey(rsa(), RS256_HDR, ALICE)), JWT_UNSUPPORTED_ALG);
	expect_status(verify(v, mint_pkey(ec(), ES256_HDR, ALICE)), JWT_UNSUPPORTED_ALG);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* The key always comes from the configuration, never from the token. */
Test(jwt, key_carried_in_the_header_is_ignored)
{
	struct jwt_verifier *v = verifier(NULL, ec_path(), 0);
	EVP_PKEY *attacker = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	const char *hdr = "{\"alg\":\"ES256\",\"kid\":\"k1\",\"jku\":\"http://evil/\","
			  "\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\"}}";

	cr_assert_not_null(attacker);
	expect_status(verify(v, mint_pkey(attacker, hdr, ALICE)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, mint_pkey(ec(), hdr, ALICE)), JWT_OK);
	EVP_PKEY_free(attacker);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, crit_header_is_refused)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v,
			     mint_hmac(EVP_sha256(), SECRET,
				       "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", ALICE)),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET,
					  "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}",
					  ALICE)),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, "{\"alg\":\"HS256\",\"crit\":[]}",
					  ALICE)),
		      JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* ---- signatures ---- */

/* Mints with one bit of the signature flipped. */
static char *
flipped(bool hmac, EVP_PKEY *k, const char *hdr, size_t byte, int bit)
{
	const char *in = signing_input(hdr, ALICE);
	size_t len;
	unsigned char *sig = hmac ? hmac_sig(EVP_sha256(), SECRET, strlen(SECRET), in, &len)
				  : pkey_sig(k, in, &len);

	cr_assert_lt(byte, len);
	sig[byte] ^= (unsigned char)(1u << bit);
	return with_sig(in, sig, len);
}

Test(jwt, one_flipped_signature_bit_is_a_bad_signature)
{
	struct jwt_verifier *v = verifier(SECRET, rsa_path(), 0);
	struct jwt_verifier *e = verifier(NULL, ec_path(), 0);

	expect_status(verify(v, flipped(true, NULL, HS256_HDR, 0, 0)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, flipped(true, NULL, HS256_HDR, 31, 7)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, flipped(false, rsa(), RS256_HDR, 0, 7)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, flipped(false, rsa(), RS256_HDR, 255, 0)), JWT_BAD_SIGNATURE);
	expect_status(verify(e, flipped(false, ec(), ES256_HDR, 0, 3)), JWT_BAD_SIGNATURE);
	expect_status(verify(e, flipped(false, ec(), ES256_HDR, 63, 0)), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	jwt_verifier_free(e);
	assert_no_leaks();
}

Test(jwt, changed_payload_is_a_bad_signature)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *good = mint_hs256(ALICE);
	const char *sig = strrchr(good, '.');
	const char *forged = fmt("%s.%s%s", b64s(HS256_HDR),
				 b64s("{\"sub\":\"admin\",\"exp\":1700003600}"), sig);

	expect_status(verify(v, forged), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* Mints with the signature cut to len bytes (or extended by a zero byte if len is larger). */
static char *
resized(bool hmac, EVP_PKEY *k, const char *hdr, size_t newlen)
{
	const char *in = signing_input(hdr, ALICE);
	size_t len;
	unsigned char *sig = hmac ? hmac_sig(EVP_sha256(), SECRET, strlen(SECRET), in, &len)
				  : pkey_sig(k, in, &len);
	unsigned char *out = keep(calloc(1, newlen + 1));

	memcpy(out, sig, newlen < len ? newlen : len);
	return with_sig(in, out, newlen);
}

Test(jwt, truncated_or_extended_signature_is_a_bad_signature)
{
	struct jwt_verifier *v = verifier(SECRET, rsa_path(), 0);
	struct jwt_verifier *e = verifier(NULL, ec_path(), 0);
	const char *hs = mint_hs256(ALICE);

	expect_status(verify(v, resized(true, NULL, HS256_HDR, 31)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, resized(true, NULL, HS256_HDR, 16)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, resized(true, NULL, HS256_HDR, 33)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, resized(false, rsa(), RS256_HDR, 255)), JWT_BAD_SIGNATURE);
	expect_status(verify(v, resized(false, rsa(), RS256_HDR, 257)), JWT_BAD_SIGNATURE);
	expect_status(verify(e, resized(false, ec(), ES256_HDR, 63)), JWT_BAD_SIGNATURE);
	expect_status(verify(e, resized(false, ec(), ES256_HDR, 65)), JWT_BAD_SIGNATURE);
	/* Dropping 3 of 43 characters leaves 30 bytes, canonically encoded. */
	expect_status(verify_len(v, hs, strlen(hs) - 3, NOW), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	jwt_verifier_free(e);
	assert_no_leaks();
}

Test(jwt, empty_signature_is_a_bad_signature)
{
	struct jwt_verifier *v = verifier(SECRET, rsa_path(), 0);
	struct jwt_verifier *e = verifier(NULL, ec_path(), 0);

	expect_status(verify(v, fmt("%s.", signing_input(HS256_HDR, ALICE))), JWT_BAD_SIGNATURE);
	expect_status(verify(v, fmt("%s.", signing_input(RS256_HDR, ALICE))), JWT_BAD_SIGNATURE);
	expect_status(verify(e, fmt("%s.", signing_input(ES256_HDR, ALICE))), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	jwt_verifier_free(e);
	assert_no_leaks();
}

Test(jwt, es256_signature_in_der_form_is_a_bad_signature)
{
	struct jwt_verifier *e = verifier(NULL, ec_path(), 0);
	const char *in = signing_input(ES256_HDR, ALICE);
	size_t len;
	unsigned char *der = pkey_sig_as(ec(), in, &len, true);
	unsigned char zero[64] = { 0 };

	expect_status(verify(e, with_sig(in, der, len)), JWT_BAD_SIGNATURE);
	expect_status(verify(e, with_sig(in, zero, sizeof(zero))), JWT_BAD_SIGNATURE);
	memset(zero, 0xff, sizeof(zero));
	expect_status(verify(e, with_sig(in, zero, sizeof(zero))), JWT_BAD_SIGNATURE);
	jwt_verifier_free(e);
	assert_no_leaks();
}

Test(jwt, wrong_secret_is_a_bad_signature)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v, mint_hmac(EVP_sha256(), "other", HS256_HDR, ALICE)),
		      JWT_BAD_SIGNATURE);
	/* An HS384 signature under an HS256 header has the wrong length. */
	expect_status(verify(v, mint_hmac(EVP_sha384(), SECRET, HS256_HDR, ALICE)),
		      JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, signature_is_checked_before_the_claims)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *bad[] = { "{\"exp\":\"tomorrow\"}", "{\"exp\":1}", "[1,2]", "not json",
			      "{\"a\":1,\"a\":2}" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_status(verify(v, mint_hmac(EVP_sha256(), "other", HS256_HDR, bad[i])),
			      JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* ---- time claims ---- */

static enum jwt_status
with_claims(unsigned leeway, const char *payload)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, leeway);
	enum jwt_status st = verify(v, mint_hs256(payload));

	jwt_verifier_free(v);
	return st;
}

static const char *
claim(const char *name, int64_t t)
{
	return fmt("{\"sub\":\"alice\",\"%s\":%lld}", name, (long long)t);
}

Test(jwt, exp_is_expired_at_exp_without_leeway)
{
	expect_status(with_claims(0, claim("exp", NOW + 1)), JWT_OK);
	expect_status(with_claims(0, claim("exp", NOW)), JWT_EXPIRED);
	expect_status(with_claims(0, claim("exp", NOW - 1)), JWT_EXPIRED);
	expect_status(with_claims(0, claim("exp", 0)), JWT_EXPIRED);
	expect_status(with_claims(0, claim("exp", -5)), JWT_EXPIRED);
	assert_no_leaks();
}

Test(jwt, leeway_extends_exp)
{
	expect_status(with_claims(5, claim("exp", NOW - 4)), JWT_OK);
	expect_status(with_claims(5, claim("exp", NOW - 5)), JWT_EXPIRED);
	expect_status(with_claims(3600, claim("exp", NOW - 3599)), JWT_OK);
	assert_no_leaks();
}

Test(jwt, nbf_is_not_yet_valid_before_nbf_without_leeway)
{
	expect_status(with_claims(0, claim("nbf", NOW)), JWT_OK);
	expect_status(with_claims(0, claim("nbf", NOW - 1)), JWT_OK);
	expect_status(with_claims(0, claim("nbf", NOW + 1)), JWT_NOT_YET_VALID);
	assert_no_leaks();
}

Test(jwt, leeway_advances_nbf)
{
	expect_status(with_claims(5, claim("nbf", NOW + 5)), JWT_OK);
	expect_status(with_claims(5, claim("nbf", NOW + 6)), JWT_NOT_YET_VALID);
	assert_no_leaks();
}

Test(jwt, fractional_times_are_compared_exactly)
{
	expect_status(with_claims(0, "{\"exp\":1700000000.5}"), JWT_OK);
	expect_status(with_claims(0, "{\"exp\":1699999999.5}"), JWT_EXPIRED);
	expect_status(with_claims(0, "{\"exp\":1.7e9}"), JWT_EXPIRED);
	expect_status(with_claims(0, "{\"nbf\":1700000000.5}"), JWT_NOT_YET_VALID);
	expect_status(with_claims(1, "{\"nbf\":1700000000.5}"), JWT_OK);
	expect_status(with_claims(0, "{\"iat\":1699999999.25}"), JWT_OK);
	assert_no_leaks();
}

Test(jwt, extreme_times_do_not_overflow)
{
	expect_status(with_claims(3600, "{\"exp\":9223372036854775807}"), JWT_OK);
	expect_status(with_claims(3600, "{\"nbf\":-9223372036854775808}"), JWT_OK);
	expect_status(with_claims(3600, "{\"exp\":-9223372036854775808}"), JWT_EXPIRED);
	expect_status(with_claims(3600, "{\"nbf\":9223372036854775807}"), JWT_NOT_YET_VALID);
	expect_status(with_claims(0, "{\"exp\":1e300}"), JWT_OK);
	expect_status(with_claims(0, "{\"nbf\":-1e300}"), JWT_OK);
	expect_status(with_claims(0, "{\"exp\":99999999999999999999}"), JWT_MALFORMED);
	assert_no_leaks();
}

Test(jwt, verification_time_is_the_argument)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256("{\"nbf\":100,\"exp\":200}");

	expect_status(verify_at(v, tok, 99), JWT_NOT_YET_VALID);
	expect_status(verify_at(v, tok, 100), JWT_OK);
	expect_status(verify_at(v, tok, 199), JWT_OK);
	expect_status(verify_at(v, tok, 200), JWT_EXPIRED);
	expect_status(verify_at(v, tok, INT64_MAX), JWT_EXPIRED);
	expect_status(verify_at(v, tok, INT64_MIN), JWT_NOT_YET_VALID);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, time_claims_that_are_not_numbers_are_bad_claims)
{
	expect_status(with_claims(0, "{\"exp\":\"1700003600\"}"), JWT_BAD_CLAIMS);
	expect_status(with_claims(0, "{\"exp\":null}"), JWT_BAD_CLAIMS);
	expect_status(with_claims(0, "{\"nbf\":true}"), JWT_BAD_CLAIMS);
	expect_status(with_claims(0, "{\"nbf\":[1]}"), JWT_BAD_CLAIMS);
	expect_status(with_claims(0, "{\"iat\":\"now\"}"), JWT_BAD_CLAIMS);
	expect_status(with_claims(0, "{\"iat\":{}}"), JWT_BAD_CLAIMS);
	/* Type errors win over expiry, whichever claim comes first. */
	expect_status(with_claims(0, "{\"exp\":1,\"iat\":\"x\"}"), JWT_BAD_CLAIMS);
	assert_no_leaks();
}

Test(jwt, other_claims_are_not_interpreted)
{
	expect_status(with_claims(0, "{\"sub\":5,\"channels\":\"x\",\"publish\":null,"
				     "\"aud\":[],\"iss\":{}}"),
		      JWT_OK);
	assert_no_leaks();
}

/* ---- malformed tokens ---- */

Test(jwt, wrong_number_of_parts_is_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256(ALICE);
	const char *in = signing_input(HS256_HDR, ALICE);

	expect_status(verify(v, in), JWT_MALFORMED);
	expect_status(verify(v, b64s(HS256_HDR)), JWT_MALFORMED);
	expect_status(verify(v, fmt("%s.", tok)), JWT_MALFORMED);
	expect_status(verify(v, fmt("%s.e30", tok)), JWT_MALFORMED);
	expect_status(verify(v, fmt("%s.e30.e30", tok)), JWT_MALFORMED);
	expect_status(verify(v, ""), JWT_MALFORMED);
	expect_status(verify(v, "."), JWT_MALFORMED);
	expect_status(verify(v, ".."), JWT_MALFORMED);
	expect_status(verify(v, "..."), JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, empty_header_or_payload_is_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *h = b64s(HS256_HDR), *p = b64s(ALICE);

	expect_status(verify(v, fmt(".%s.c2ln", p)), JWT_MALFORMED);
	expect_status(verify(v, fmt("%s..c2ln", h)), JWT_MALFORMED);
	expect_status(verify(v, fmt("%s.", h)), JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* Replaces the byte at i (negative: from the end) of a valid token with c. */
static const char *
patched(const char *tok, long i, char c)
{
	char *s = fmt("%s", tok);

	s[i < 0 ? (long)strlen(s) + i : i] = c;
	return s;
}

Test(jwt, padding_and_characters_outside_base64url_are_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256(ALICE);	 /* 32-byte signature: 43 characters, no pad */
	const char *hdr = "{\"alg\":\"HS256\"}"; /* 15 bytes: base64 would pad with '=' */
	const char *in = fmt("%s=.%s", b64s(hdr), b64s(ALICE));
	size_t len;
	unsigned char *sig = hmac_sig(EVP_sha256(), SECRET, strlen(SECRET), in, &len);

	expect_status(verify(v, fmt("%s=", tok)), JWT_MALFORMED);
	expect_status(verify(v, with_sig(in, sig, len)), JWT_MALFORMED);
	expect_status(verify(v, patched(tok, 3, '+')), JWT_MALFORMED);
	expect_status(verify(v, patched(tok, -3, '/')), JWT_MALFORMED);
	expect_status(verify(v, patched(tok, 5, ' ')), JWT_MALFORMED);
	expect_status(verify(v, patched(tok, -1, '\n')), JWT_MALFORMED);
	expect_status(verify(v, patched(tok, 10, (char)0xc3)), JWT_MALFORMED);
	expect_status(verify(v, fmt(" %s", tok)), JWT_MALFORMED);
	expect_status(verify(v, fmt("%s\n", tok)), JWT_MALFORMED);
	expect_status(verify_len(v, patched(tok, 7, '\0'), strlen(tok), NOW), JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

static int
b64_value(char c)
{
	const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	return (int)(strchr(alpha, c) - alpha);
}

/* The unused low bits of the last character must be zero, so a token has one spelling. */
Test(jwt, non_canonical_base64url_is_malformed)
{
	const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256(ALICE);
	int last = b64_value(tok[strlen(tok) - 1]);

	cr_assert_eq(last % 4, 0);
	expect_status(verify(v, patched(tok, -1, alpha[last + 1])), JWT_MALFORMED);
	/* 43 + 2 characters: a length of 1 mod 4 cannot be base64 at all. */
	expect_status(verify(v, fmt("%sAA", tok)), JWT_MALFORMED);
	/* 43 + 1 characters is a well-formed 33-byte signature, of the wrong length. */
	expect_status(verify(v, fmt("%sA", tok)), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, header_that_is_not_a_json_object_is_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *hdrs[] = { "not json",
			       "[\"HS256\"]",
			       "\"HS256\"",
			       "{\"alg\":\"HS256\"",
			       "{\"alg\":\"HS256\"} {}",
			       "",
			       "{\"alg\":\"HS\\u0000256\"}" };

	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
		expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET, hdrs[i], ALICE)),
			      JWT_MALFORMED);
	/* Not UTF-8. */
	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET,
					  "{\"alg\":\"HS256\",\"x\":\"\xff\"}", ALICE)),
		      JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, payload_that_is_not_a_json_object_is_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *payloads[] = { "[{\"sub\":\"alice\"}]",
				   "\"alice\"",
				   "42",
				   "null",
				   "not json",
				   "{\"sub\":\"alice\"",
				   "{\"sub\":\"a\\u0000b\"}" };

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++)
		expect_status(verify(v, mint_hs256(payloads[i])), JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, duplicate_keys_are_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);

	expect_status(verify(v, mint_hmac(EVP_sha256(), SECRET,
					  "{\"alg\":\"HS256\",\"alg\":\"none\"}", ALICE)),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hs256("{\"sub\":\"alice\",\"sub\":\"admin\"}")),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hs256("{\"sub\":\"alice\",\"s\\u0075b\":\"admin\"}")),
		      JWT_MALFORMED);
	expect_status(verify(v, mint_hs256("{\"exp\":1,\"exp\":1800000000}")), JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* Mints an HS256 token whose payload carries pad bytes of padding. */
static const char *
padded_token(size_t pad)
{
	char *filler = keep(malloc(pad + 1));

	memset(filler, 'x', pad);
	filler[pad] = '\0';
	return mint_hs256(fmt("{\"sub\":\"alice\",\"pad\":\"%s\"}", filler));
}

Test(jwt, tokens_longer_than_jwt_max_len_are_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = NULL;
	size_t pad = 6000;

	/* The longest token that still fits, then one byte of payload more. */
	cr_assert_leq(strlen(padded_token(pad)), JWT_MAX_LEN);
	while (strlen(padded_token(pad + 1)) <= JWT_MAX_LEN)
		pad++;
	tok = padded_token(pad);
	cr_assert_leq(strlen(tok), JWT_MAX_LEN);
	cr_assert_geq(strlen(tok), JWT_MAX_LEN - 2);
	expect_status(verify(v, tok), JWT_OK);
	tok = padded_token(pad + 1);
	cr_assert_gt(strlen(tok), JWT_MAX_LEN);
	expect_status(verify(v, tok), JWT_MALFORMED);
	expect_status(verify(v, padded_token(100000)), JWT_MALFORMED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, random_garbage_never_verifies, .timeout = 60)
{
	struct jwt_verifier *v = verifier(SECRET, ec_path(), 0);
	const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=";
	const char *tok = mint_hs256(ALICE);
	char buf[256];
	unsigned seed = 12345;

	for (int i = 0; i < 3000; i++) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof(buf);
		for (size_t j = 0; j < n; j++) {
			seed = seed * 1103515245u + 12345u;
			buf[j] = alpha[(seed >> 16) % 66];
		}
		cr_assert_neq(verify_len(v, buf, n, NOW), JWT_OK);
	}
	/* Every truncation of a valid token fails. */
	for (size_t n = 0; n < strlen(tok); n++)
		cr_assert_neq(verify_len(v, tok, n, NOW), JWT_OK);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* ---- messages ---- */

Test(jwt, message_is_optional_and_truncated_safely)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256("{\"exp\":1}");
	json_t *claims;
	char small[6];

	expect_status(jwt_verify(v, tok, strlen(tok), NOW, &claims, NULL, 0), JWT_EXPIRED);
	cr_expect_null(claims);
	memset(small, 'x', sizeof(small));
	expect_status(jwt_verify(v, tok, strlen(tok), NOW, &claims, small, sizeof(small)),
		      JWT_EXPIRED);
	cr_expect_str_eq(small, "token");
	expect_status(jwt_verify(v, tok, strlen(tok), NOW, &claims, small, 0), JWT_EXPIRED);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, messages_differ_by_status_only)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *a = mint_hs256("[1]"), *b = patched(mint_hs256(ALICE), 2, '*');
	json_t *claims;
	char ma[128], mb[128];

	expect_status(jwt_verify(v, a, strlen(a), NOW, &claims, ma, sizeof(ma)), JWT_MALFORMED);
	expect_status(jwt_verify(v, b, strlen(b), NOW, &claims, mb, sizeof(mb)), JWT_MALFORMED);
	cr_expect_str_eq(ma, mb);
	jwt_verifier_free(v);
	assert_no_leaks();
}

Test(jwt, status_names)
{
	cr_expect_str_eq(jwt_status_name(JWT_OK), "ok");
	cr_expect_str_eq(jwt_status_name(JWT_MALFORMED), "malformed");
	cr_expect_str_eq(jwt_status_name(JWT_UNSUPPORTED_ALG), "unsupported_alg");
	cr_expect_str_eq(jwt_status_name(JWT_BAD_SIGNATURE), "bad_signature");
	cr_expect_str_eq(jwt_status_name(JWT_EXPIRED), "expired");
	cr_expect_str_eq(jwt_status_name(JWT_NOT_YET_VALID), "not_yet_valid");
	cr_expect_str_eq(jwt_status_name(JWT_BAD_CLAIMS), "bad_claims");
	cr_expect_str_eq(jwt_status_name((enum jwt_status)99), "unknown");
}

/* ---- verifier construction ---- */

/* jwt_verifier_new must fail, and its message must name what. */
static void
expect_refused(const char *secret, const char *pub, const char *needle)
{
	char err[512] = "";
	struct jwt_verifier *v = jwt_verifier_new(secret, pub, 0, err, sizeof(err));

	cr_expect_null(v);
	jwt_verifier_free(v);
	cr_expect_gt(strlen(err), 0);
	if (needle != NULL)
		cr_expect(strstr(err, needle) != NULL, "\"%s\" does not mention \"%s\"", err,
			  needle);
	cr_expect_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
}

Test(jwt, verifier_needs_a_key)
{
	expect_refused(NULL, NULL, NULL);
	expect_refused("", NULL, "empty");
	expect_refused("", rsa_path(), "empty");
	cr_expect_null(jwt_verifier_new(NULL, NULL, 0, NULL, 0));
	jwt_verifier_free(NULL);
	assert_no_leaks();
}

Test(jwt, missing_key_file_is_named)
{
	const char *path = "/tmp/switchboard-jwt-no-such-file.pem";

	expect_refused(SECRET, path, path);
	expect_refused(NULL, path, "No such file");
	assert_no_leaks();
}

Test(jwt, key_file_that_is_not_pem_is_named)
{
	const char *junk = temp_file("hello, world\n", 13);
	const char *empty = temp_file("", 0);
	const char *cut;
	size_t len;
	const char *pem = read_file(rsa_path(), &len);

	cut = temp_file(pem, len / 2);
	expect_refused(NULL, junk, junk);
	expect_refused(NULL, empty, empty);
	expect_refused(NULL, cut, cut);
	expect_refused(NULL, "/tmp", "/tmp");
	assert_no_leaks();
}

Test(jwt, private_key_file_is_refused)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long n;
	const char *path;

	cr_assert_eq(PEM_write_bio_PrivateKey(b, ec(), NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &pem);
	path = temp_file(pem, (size_t)n);
	BIO_free(b);
	expect_refused(NULL, path, path);
	assert_no_leaks();
}

Test(jwt, rsa_1024_key_is_refused)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	const char *path;

	cr_assert_not_null(k);
	path = write_pubkey(k);
	expect_refused(NULL, path, path);
	expect_refused(NULL, path, "1024");
	expect_refused(SECRET, path, path);
	EVP_PKEY_free(k);
	assert_no_leaks();
}

Test(jwt, ec_p384_key_is_refused)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	const char *path;

	cr_assert_not_null(k);
	path = write_pubkey(k);
	expect_refused(NULL, path, path);
	expect_refused(NULL, path, "P-256");
	EVP_PKEY_free(k);
	assert_no_leaks();
}

/* An RSA-PSS key: usable only for PSS signatures, which RS256 is not. */
static EVP_PKEY *
rsa_pss_key(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
	EVP_PKEY *k = NULL;

	cr_assert_not_null(ctx);
	cr_assert_eq(EVP_PKEY_keygen_init(ctx), 1);
	cr_assert_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
	cr_assert_eq(EVP_PKEY_generate(ctx, &k), 1);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

Test(jwt, other_key_types_are_refused)
{
	EVP_PKEY *keys[] = {
		EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
		rsa_pss_key(),
		EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"),
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *path;

		cr_assert_not_null(keys[i]);
		path = write_pubkey(keys[i]);
		expect_refused(NULL, path, path);
		EVP_PKEY_free(keys[i]);
	}
	assert_no_leaks();
}

Test(jwt, larger_rsa_keys_are_accepted)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	const char *path;
	struct jwt_verifier *v;

	cr_assert_not_null(k);
	path = write_pubkey(k);
	v = verifier(NULL, path, 0);
	expect_status(verify(v, mint_pkey(k, RS256_HDR, ALICE)), JWT_OK);
	expect_status(verify(v, mint_pkey(rsa(), RS256_HDR, ALICE)), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	EVP_PKEY_free(k);
	assert_no_leaks();
}

/* The verifier read the key once: removing the file afterwards changes nothing. */
Test(jwt, key_is_read_once_at_creation)
{
	struct jwt_verifier *v = verifier(NULL, ec_path(), 0);

	cr_assert_eq(unlink(ec_path()), 0);
	expect_status(verify(v, mint_pkey(ec(), ES256_HDR, ALICE)), JWT_OK);
	jwt_verifier_free(v);
	assert_no_leaks();
}

/* ---- allocation failures ---- */

static long fail_at = -1; /* the allocation number to fail, or -1 */
static long allocs;

static void *
failing_malloc(size_t n)
{
	if (allocs++ == fail_at)
		return NULL;
	return malloc(n);
}

/* Every jansson allocation failure while parsing yields JWT_MALFORMED, never a crash or
 * a leak; once enough allocations succeed the token verifies. */
Test(jwt, json_allocation_failures_are_malformed)
{
	struct jwt_verifier *v = verifier(SECRET, NULL, 0);
	const char *tok = mint_hs256("{\"sub\":\"alice\",\"exp\":1700003600,"
				     "\"info\":{\"name\":\"Alice\",\"tags\":[\"a\",\"b\"]}}");
	enum jwt_status st;
	json_t *claims;

	json_set_alloc_funcs(failing_malloc, free);
	for (fail_at = 0;; fail_at++) {
		allocs = 0;
		st = jwt_verify(v, tok, strlen(tok), NOW, &claims, NULL, 0);
		if (allocs <= fail_at)
			break; /* nothing failed this time */
		expect_status(st, JWT_MALFORMED);
		cr_assert_null(claims);
	}
	expect_status(st, JWT_OK);
	json_decref(claims);
	cr_expect_gt(fail_at, 5);
	json_set_alloc_funcs(malloc, free);
	jwt_verifier_free(v);
	assert_no_leaks();
}

static int crypto_hooks; /* 1 if our OpenSSL allocator is installed */
static long crypto_fail_at = -1;
static long crypto_allocs;

static void *
failing_crypto_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	if (crypto_allocs++ == crypto_fail_at)
		return NULL;
	return malloc(n);
}

static void *
crypto_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	if (crypto_allocs++ == crypto_fail_at)
		return NULL;
	return realloc(p, n);
}

static void
crypto_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

/* OpenSSL takes allocator hooks only before its first allocation, so they are set before
 * main for the whole binary; they pass everything through while crypto_fail_at is -1. */
__attribute__((constructor)) static void
install_crypto_allocator(void)
{
	crypto_hooks = CRYPTO_set_mem_functions(failing_crypto_malloc, crypto_realloc, crypto_free);
}

/* Fails each OpenSSL allocation of one verification in turn, until one runs without a
 * failure (which must then give the normal answer). A failure may refuse a valid token
 * (as malformed, or as a bad signature: OpenSSL cannot always tell them apart) and must
 * never crash or accept an invalid one. */
static void
probe_crypto_failures(const struct jwt_verifier *v, const char *tok, enum jwt_status normal)
{
	enum jwt_status st;
	json_t *claims;

	expect_status(verify(v, tok), normal); /* warms OpenSSL's caches of fetched methods */
	for (crypto_fail_at = 0;; crypto_fail_at++) {
		crypto_allocs = 0;
		st = jwt_verify(v, tok, strlen(tok), NOW, &claims, NULL, 0);
		json_decref(claims);
		if (crypto_allocs <= crypto_fail_at)
			break;
		if (normal == JWT_OK)
			cr_expect(st == JWT_OK || st == JWT_MALFORMED || st == JWT_BAD_SIGNATURE,
				  "failing allocation %ld: %s", crypto_fail_at,
				  jwt_status_name(st));
		else
			cr_expect_neq(st, JWT_OK, "failing allocation %ld accepted a bad token",
				      crypto_fail_at);
		cr_expect_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
	}
	crypto_fail_at = -1;
	expect_status(st, normal);
	cr_expect_gt(crypto_allocs, 0);
}

Test(jwt, crypto_allocation_failures_never_crash_or_accept)
{
	struct jwt_verifier *v, *e;

	cr_assert_eq(crypto_hooks, 1, "CRYPTO_set_mem_functions came too late");
	v = verifier(SECRET, rsa_path(), 0);
	e = verifier(NULL, ec_path(), 0);
	probe_crypto_failures(v, mint_hs256(ALICE), JWT_OK);
	probe_crypto_failures(v, flipped(true, NULL, HS256_HDR, 3, 1), JWT_BAD_SIGNATURE);
	probe_crypto_failures(v, mint_pkey(rsa(), RS256_HDR, ALICE), JWT_OK);
	probe_crypto_failures(v, flipped(false, rsa(), RS256_HDR, 100, 1), JWT_BAD_SIGNATURE);
	probe_crypto_failures(e, mint_pkey(ec(), ES256_HDR, ALICE), JWT_OK);
	probe_crypto_failures(e, flipped(false, ec(), ES256_HDR, 40, 1), JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
	jwt_verifier_free(e);
}

/* Failures while loading the key refuse the key with a message, and never crash. */
Test(jwt, crypto_allocation_failures_while_loading_the_key)
{
	struct jwt_verifier *v;
	const char *paths[2];
	char err[256];

	cr_assert_eq(crypto_hooks, 1, "CRYPTO_set_mem_functions came too late");
	paths[0] = rsa_path();
	paths[1] = ec_path();
	for (int k = 0; k < 2; k++) {
		for (crypto_fail_at = 0;; crypto_fail_at++) {
			crypto_allocs = 0;
			err[0] = '\0';
			v = jwt_verifier_new(NULL, paths[k], 0, err, sizeof(err));
			if (crypto_allocs <= crypto_fail_at)
				break;
			if (v == NULL)
				cr_expect(strstr(err, paths[k]) != NULL, "err: %s", err);
			jwt_verifier_free(v);
			cr_expect_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
		}
		crypto_fail_at = -1;
		cr_expect_not_null(v, "%s", err);
		jwt_verifier_free(v);
	}
}
