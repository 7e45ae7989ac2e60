/* reload.c: SIGHUP. The configuration file is loaded again, with the same environment and
 * command-line overrides, into a second struct config; only when all of it is valid are
 * the parts that can change in a running server moved into the live configuration:
 *
 *   log_level, log_format     at once
 *   api_keys                  keys and quotas (a key kept under its name keeps its bucket)
 *   allowed_origins           for the next upgrades
 *   tls (same cert/key paths) the certificate and key are read again (a renewal)
 *
 * Every other key (port, limits, namespaces, auth, webhooks, ...) is compared and, when it
 * changed, named in the log as waiting for a restart. A file that does not load changes
 * nothing and the reason is logged.
 *
 * The checks a start makes beyond the loader's live here too, for --check-config to make
 * them as well: server_config_check() and the listen host's resolution.
 */
#include "api.h"
#include "config.h"
#include "jwt.h"
#include "log.h"
#include "net.h"
#include "server.h"
#include "tlsfile.h"
#include "webhook.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* The configuration keys applied by a reload. */
static const char *const reloadable[] = { "log_level", "log_format", "api_keys", "allowed_origins",
					  "tls" };

static bool
is_reloadable(const char *key)
{
	for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++)
		if (strcmp(key, reloadable[i]) == 0)
			return true;
	return false;
}

int
server_config_check(const struct config *cfg, char *err, size_t len)
{
	char inner[384];

	if (webhook_config_check(cfg->webhooks, err, len) != 0)
		return -1;
	if (cfg->jwt_public_key != NULL &&
	    jwt_public_key_check(cfg->jwt_public_key, inner, sizeof(inner)) != 0) {
		snprintf(err, len, "auth.jwt.public_key: %s", inner);
		return -1;
	}
	if (cfg->tls_cert != NULL && tlsfile_check(cfg->tls_cert, cfg->tls_key, err, len) != 0)
		return -1;
	return 0;
}

/* The address of an IPv4 or IPv6 getaddrinfo() result as text in out; false if ai is
 * of another family or out is too small. */
static bool
addr_text(const struct addrinfo *ai, char *out, size_t len)
{
	const void *a =
		ai->ai_family == AF_INET
			? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
			: (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;

	return (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
	       inet_ntop(ai->ai_family, a, out, (socklen_t)len) != NULL;
}

int
server_resolve_host(const char *host, char *out, size_t len, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct in_addr a4;
	struct in6_addr a6;
	size_t n = strlen(host);
	int rc;

	if (n == 0) {
		snprintf(err, errlen,
			 "the host is empty; leave it out (or null) to listen on every interface");
		return -1;
	}
	if (n >= len) {
		snprintf(err, errlen, "the host \"%.64s...\" is too long", host);
		return -1;
	}
	if (host[0] == '[' && host[n - 1] == ']') {
		snprintf(out, len, "%.*s", (int)(n - 2), host + 1);
		if (inet_pton(AF_INET6, out, &a6) == 1)
			return 0;
		snprintf(err, errlen, "host \"%s\" is not an IPv6 address", host);
		return -1;
	}
	snprintf(out, len, "%s", host);
	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1 ||
	    if_nametoindex(host) != 0)
		return 0;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen,
			 "host \"%s\" is not an address, a network interface or a name that "
			 "resolves (%s)",
			 host, gai_strerror(rc));
		return -1;
	}
	/* IPv4 first, as "localhost" users expect 127.0.0.1. */
	for (int family = AF_INET, pass = 0; pass < 2; family = AF_INET6, pass++)
		for (ai = res; ai != NULL; ai = ai->ai_next)
			if (ai->ai_family == family && addr_text(ai, out, len)) {
				freeaddrinfo(res);
				return 0;
			}
	freeaddrinfo(res);
	snprintf(err, errlen, "host \"%s\" resolves to no IPv4 or IPv6 address", host);
	return -1;
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Appends key to list (a ", "-separated line). */
static void
note(char *list, size_t len, const char *key)
{
	size_t n = strlen(list);

	snprintf(list + n, len - n, "%s%s", n > 0 ? ", " : "", key);
}

void
server_reload(struct server *srv)
{
	struct config *cfg = srv->cfg, next;
	char err[512], applied[256] = "", restart[512] = "";
	json_t *before, *after, *v;
	const char *key;

	if (cfg->path == NULL) {
		log_warn("server: SIGHUP: started without a configuration file, nothing to reload");
		return;
	}
	/* Every check a start makes: a file that would not start the server (a key that
	 * waits for the next restart included) is not taken either. */
	if (config_load_effective(&next, cfg->path, &cfg->ov, err, sizeof(err)) != 0 ||
	    server_config_check(&next, err, sizeof(err)) != 0) {
		log_error("server: SIGHUP: %s not reloaded, the running configuration stays: %s",
			  cfg->path, err);
		config_fini(&next);
		return;
	}

	before = config_to_json(cfg, false);
	after = config_to_json(&next, false);
	json_object_foreach(after, key, v)
	{
		if (json_equal(v, json_object_get(before, key)))
			continue;
		if (is_reloadable(key) && (strcmp(key, "tls") != 0 || cfg->tls_cert != NULL) &&
		    (strcmp(key, "tls") != 0 || (same_str(cfg->tls_cert, next.tls_cert) &&
						 same_str(cfg->tls_key, next.tls_key))))
			note(applied, sizeof(applied), key);
		else
			note(restart, sizeof(restart), key);
	}
	json_decref(before);
	json_decref(after);

	cfg->log_level = log_level_current = next.log_level;
	cfg->log_format = log_format_current = next.log_format;
	api_reload(srv, &next);
	json_decref(cfg->allowed_origins);
	cfg->allowed_origins = json_incref(next.allowed_origins);
	/* A renewal writes new files under the same names; lws reads them again for the
	 * vhost that uses them (checked above, so the vhost is never left without). */
	if (cfg->tls_cert != NULL && same_str(cfg->tls_cert, next.tls_cert) &&
	    same_str(cfg->tls_key, next.tls_key)) {
		lws_tls_cert_updated(srv->ctx, cfg->tls_cert, cfg->tls_key, NULL, 0, NULL, 0);
		if (strstr(applied, "tls") == NULL)
			note(applied, sizeof(applied), "tls (certificate read again)");
	}
	config_fini(&next);
	log_info("server: SIGHUP: reloaded %s; applied: %s", cfg->path,
		 applied[0] != '\0' ? applied : "nothing changed");
	if (restart[0] != '\0')
		log_warn("server: SIGHUP: changed in %s but applied only at the next restart: %s",
			 cfg->path, restart);
}
