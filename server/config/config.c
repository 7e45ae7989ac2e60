/* config.c: strict JSON configuration. Every object is walked key by key against a
 * table of the keys it may hold, so an unknown key or a wrong type is reported with its
 * full path (e.g. "limits.max_message_size: must be a positive integer").
 */
#include "config.h"
#include "proto.h"
#include "xalloc.h"

#include <jansson.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cfgerr {
	char *buf;
	size_t len;
};

static int fail(struct cfgerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct cfgerr *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->buf, e->len, fmt, ap);
	va_end(ap);
	return -1;
}

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = 8080;
	cfg->log_level = LOG_INFO;
	cfg->engine = xstrdup("memory");
	cfg->anonymous = true;
	cfg->limits = (struct config_limits){
		.max_message_size = 65536,
		.max_data_size = 61440, /* data_size_for(65536) */
		.max_channels_per_connection = 128,
		.max_connections = 10000,
		.send_queue_messages = 4096,
		.send_queue_bytes = 1048576,
		.history_memory = 64 << 20,
		.max_http_body = 65536,
		.publish_per_second = 500,
		.publish_burst = 1000,
		.commands_per_second = 1000,
		.commands_burst = 2000,
		.max_connections_per_ip = 1000,
		.connect_rate_per_second = 100,
		.connect_rate_burst = 200,
	};
	cfg->allowed_origins = json_pack("[s]", "*");
	cfg->jwt_leeway = 5;
	cfg->ws = (struct config_websocket){
		.ping_interval = 25,
		.idle_timeout = 60,
		.connect_timeout = 10,
	};
	cfg->policy = policy_new();
	cfg->drain_period = 10;
	cfg->ov.port = -1;
}

void
config_fini(struct config *cfg)
{
	free(cfg->path);
	free(cfg->host);
	free(cfg->engine);
	free(cfg->jwt_secret);
	free(cfg->jwt_public_key);
	for (size_t i = 0; i < cfg->napi_keys; i++) {
		free(cfg->api_keys[i].name);
		free(cfg->api_keys[i].key);
		json_decref(cfg->api_keys[i].channels);
	}
	free(cfg->api_keys);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	json_decref(cfg->allowed_origins);
	free(cfg->trusted_proxies);
	json_decref(cfg->webhooks);
	policy_free(cfg->policy);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- typed getters; path is the dotted key for messages ---- */

static int
get_uint(json_t *v, const char *path, long long min, long long max, long long *out,
	 struct cfgerr *e)
{
	if (!json_is_integer(v))
		return fail(e, "%s: must be an integer", path);
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return fail(e, "%s: must be between %lld and %lld", path, min, max);
	*out = json_integer_value(v);
	return 0;
}

static int
get_size(json_t *v, const char *path, size_t *out, struct cfgerr *e)
{
	long long n = 0;

	if (get_uint(v, path, 1, (long long)1 << 40, &n, e) != 0)
		return -1;
	*out = (size_t)n;
	return 0;
}

static int
get_secs(json_t *v, const char *path, unsigned *out, struct cfgerr *e)
{
	long long n = 0;

	if (get_uint(v, path, 1, 65535, &n, e) != 0)
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int
get_str(json_t *v, const char *path, char **out, struct cfgerr *e)
{
	if (!json_is_string(v))
		return fail(e, "%s: must be a string", path);
	free(*out);
	*out = xstrdup(json_string_value(v));
	return 0;
}

#define SECRET_FILE_MAX 65536

/* The contents of a secret file, without its trailing newlines (as `echo` writes
 * them); NULL with e filled. */
static char *
read_secret_file(const char *file, const char *path, struct cfgerr *e)
{
	FILE *fp = fopen(file, "rb");
	char *buf;
	size_t n;

	if (fp == NULL) {
		fail(e, "%s: cannot read the secret file \"%s\": %m", path, file);
		return NULL;
	}
	buf = xmalloc(SECRET_FILE_MAX + 1);
	n = fread(buf, 1, SECRET_FILE_MAX + 1, fp);
	if (ferror(fp)) {
		fclose(fp);
		free(buf);
		fail(e, "%s: cannot read the secret file \"%s\"", path, file);
		return NULL;
	}
	fclose(fp);
	if (n > SECRET_FILE_MAX) {
		free(buf);
		fail(e, "%s: the secret file \"%s\" is over %d bytes", path, file, SECRET_FILE_MAX);
		return NULL;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (strlen(buf) != n) {
		free(buf);
		fail(e, "%s: the secret file \"%s\" holds a NUL byte", path, file);
		return NULL;
	}
	return xrealloc(buf, n + 1);
}

/* A secret: a string, {"file": "<path>"} (its contents) or {"env": "<VARIABLE>"}. The
 * result is never empty. */
static int
get_secret(json_t *v, const char *path, char **out, struct cfgerr *e)
{
	json_t *file = json_object_get(v, "file"), *env = json_object_get(v, "env");
	char *s;

	if (json_is_string(v)) {
		s = xstrdup(json_string_value(v));
	} else if (json_is_object(v) && json_object_size(v) == 1 && json_is_string(file)) {
		s = read_secret_file(json_string_value(file), path, e);
		if (s == NULL)
			return -1;
	} else if (json_is_object(v) && json_object_size(v) == 1 && json_is_string(env)) {
		const char *val = getenv(json_string_value(env));

		if (val == NULL)
			return fail(e, "%s: the environment variable %s is not set", path,
				    json_string_value(env));
		s = xstrdup(val);
	} else {
		return fail(
			e,
			"%s: must be a string, {\"file\": \"<path>\"} or {\"env\": \"<VARIABLE>\"}",
			path);
	}
	if (s[0] == '\0') {
		free(s);
		return fail(e, "%s: must not be empty", path);
	}
	/* Secrets are compared and shown as JSON text, which is UTF-8: binary bytes (from
	 * `openssl rand`) are refused here rather than failing later. */
	if (!proto_utf8_valid(s, strlen(s))) {
		free(s);
		return fail(e,
			    "%s: must be UTF-8 text (for random bytes, use their hex or base64 "
			    "form)",
			    path);
	}
	free(*out);
	*out = s;
	return 0;
}

static int
get_bool(json_t *v, const char *path, bool *out, struct cfgerr *e)
{
	if (!json_is_boolean(v))
		return fail(e, "%s: must be true or false", path);
	*out = json_is_true(v);
	return 0;
}

static int
need_object(json_t *v, const char *path, struct cfgerr *e)
{
	return json_is_object(v) ? 0 : fail(e, "%s: must be an object", path);
}

/* ---- sections ---- */

#define MAX_MESSAGE_SIZE_CAP (16 << 20)

/* A token bucket: {"<rate_key>": n, "burst": n} (rate_key "per_second" or "per_minute"). */
static int
load_rate(json_t *obj, const char *prefix, const char *rate_key, unsigned *rate, unsigned *burst,
	  struct cfgerr *e)
{
	const char *key;
	json_t *v;
	char path[160];
	long long n = 0;

	if (need_object(obj, prefix, e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		bool is_rate = strcmp(key, rate_key) == 0;

		snprintf(path, sizeof(path), "%s.%s", prefix, key);
		if (!is_rate && strcmp(key, "burst") != 0)
			return fail(e, "%s: unknown key", path);
		if (get_uint(v, path, 1, 1000000, &n, e) != 0)
			return -1;
		*(is_rate ? rate : burst) = (unsigned)n;
	}
	return 0;
}

/* The default max_data_size for a message limit: 4 KiB less (the envelope of a message
 * frame: channel, offset, from), or 15/16 of a small limit. */
static size_t
data_size_for(size_t max_message_size)
{
	return max_message_size >= 65536 ? max_message_size - 4096 : max_message_size / 16 * 15;
}

static int
load_limits(struct config *cfg, json_t *obj, struct cfgerr *e)
{
	struct {
		const char *key;
		size_t *field;
	} keys[] = {
		{ "max_message_size", &cfg->limits.max_message_size },
		{ "max_data_size", &cfg->limits.max_data_size },
		{ "max_channels_per_connection", &cfg->limits.max_channels_per_connection },
		{ "max_connections", &cfg->limits.max_connections },
		{ "send_queue_messages", &cfg->limits.send_queue_messages },
		{ "send_queue_bytes", &cfg->limits.send_queue_bytes },
		{ "history_memory", &cfg->limits.history_memory },
		{ "max_http_body", &cfg->limits.max_http_body },
		{ "max_connections_per_ip", &cfg->limits.max_connections_per_ip },
	};
	const char *key;
	json_t *v;
	char path[128];

	if (need_object(obj, "limits", e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		size_t i;

		snprintf(path, sizeof(path), "limits.%s", key);
		if (strcmp(key, "connection_rate_per_ip") == 0) {
			if (load_rate(v, path, "per_second", &cfg->limits.connect_rate_per_second,
				      &cfg->limits.connect_rate_burst, e) != 0)
				return -1;
			continue;
		}
		if (strcmp(key, "client_publish") == 0 || strcmp(key, "client_commands") == 0) {
			bool pub = key[7] == 'p';

			if (load_rate(v, path, "per_second",
				      pub ? &cfg->limits.publish_per_second
					  : &cfg->limits.commands_per_second,
				      pub ? &cfg->limits.publish_burst
					  : &cfg->limits.commands_burst,
				      e) != 0)
				return -1;
			continue;
		}
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i].key) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0]))
			return fail(e, "%s: unknown key", path);
		if (get_size(v, path, keys[i].field, e) != 0)
			return -1;
	}
	if (cfg->limits.max_message_size > MAX_MESSAGE_SIZE_CAP)
		return fail(e, "limits.max_message_size: must be at most %d", MAX_MESSAGE_SIZE_CAP);
	/* Unless set, max_data_size follows max_message_size, leaving room for the envelope. */
	if (json_object_get(obj, "max_message_size") != NULL &&
	    json_object_get(obj, "max_data_size") == NULL)
		cfg->limits.max_data_size = data_size_for(cfg->limits.max_message_size);
	return 0;
}

static int
load_websocket(struct config *cfg, json_t *obj, struct cfgerr *e)
{
	const char *key;
	json_t *v;
	char path[128];

	if (need_object(obj, "websocket", e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		unsigned *field;

		snprintf(path, sizeof(path), "websocket.%s", key);
		if (strcmp(key, "ping_interval") == 0)
			field = &cfg->ws.ping_interval;
		else if (strcmp(key, "idle_timeout") == 0)
			field = &cfg->ws.idle_timeout;
		else if (strcmp(key, "connect_timeout") == 0)
			field = &cfg->ws.connect_timeout;
		else
			return fail(e, "%s: unknown key", path);
		if (get_secs(v, path, field, e) != 0)
			return -1;
	}
	return 0;
}

static int
load_jwt(struct config *cfg, json_t *obj, struct cfgerr *e)
{
	const char *key;
	json_t *v;
	long long n = 0;

	if (need_object(obj, "auth.jwt", e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		int rc;

		if (strcmp(key, "hmac_secret") == 0) {
			rc = get_secret(v, "auth.jwt.hmac_secret", &cfg->jwt_secret, e);
		} else if (strcmp(key, "public_key") == 0) {
			rc = get_str(v, "auth.jwt.public_key", &cfg->jwt_public_key, e);
		} else if (strcmp(key, "leeway") == 0) {
			rc = get_uint(v, "auth.jwt.leeway", 0, 3600, &n, e);
			if (rc == 0)
				cfg->jwt_leeway = (unsigned)n;
		} else {
			rc = fail(e, "auth.jwt.%s: unknown key", key);
		}
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int
load_auth(struct config *cfg, json_t *obj, struct cfgerr *e)
{
	const char *key;
	json_t *v;

	if (need_object(obj, "auth", e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "anonymous") == 0) {
			if (get_bool(v, "auth.anonymous", &cfg->anonymous, e) != 0)
				return -1;
		} else if (strcmp(key, "jwt") == 0) {
			if (load_jwt(cfg, v, e) != 0)
				return -1;
		} else {
			return fail(e, "auth.%s: unknown key", key);
		}
	}
	return 0;
}

static int
load_ns(struct ns_policy *ns, json_t *obj, const char *prefix, struct cfgerr *e)
{
	const char *key;
	json_t *v;
	char path[384];

	if (need_object(obj, prefix, e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		struct {
			const char *key;
			bool *field;
		} flags[] = {
			{ "private", &ns->private_ns },
			{ "presence", &ns->presence },
			{ "join_leave", &ns->join_leave },
			{ "allow_anonymous", &ns->allow_anonymous },
			{ "message_events", &ns->message_events },
		};
		long long n = 0;
		size_t i;

		snprintf(path, sizeof(path), "%s.%s", prefix, key);
		for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
			if (strcmp(key, flags[i].key) == 0)
				break;
		if (i < sizeof(flags) / sizeof(flags[0])) {
			if (get_bool(v, path, flags[i].field, e) != 0)
				return -1;
		} else if (strcmp(key, "publish") == 0) {
			if (!json_is_string(v) ||
			    policy_publish_parse(json_string_value(v), &ns->publish) != 0)
				return fail(e,
					    "%s: must be \"subscribers\", \"clients\" or \"none\"",
					    path);
		} else if (strcmp(key, "history_size") == 0) {
			if (get_uint(v, path, 0, 100000, &n, e) != 0)
				return -1;
			ns->history_size = (unsigned)n;
		} else if (strcmp(key, "history_ttl") == 0) {
			if (get_uint(v, path, 0, 31536000, &n, e) != 0)
				return -1;
			ns->history_ttl = (unsigned)n;
		} else {
			return fail(e, "%s: unknown key", path);
		}
	}
	if (ns->join_leave && !ns->presence)
		return fail(e, "%s.join_leave: needs \"presence\": true", prefix);
	return 0;
}

static int
load_namespaces(struct config *cfg, json_t *obj, struct cfgerr *e)
{
	const char *name;
	json_t *v;
	char path[320];

	if (need_object(obj, "namespaces", e) != 0)
		return -1;
	json_object_foreach(obj, name, v)
	{
		size_t n = strlen(name);

		snprintf(path, sizeof(path), "namespaces.%s", name);
		if (n == 0 || n > 64 || !proto_channel_valid(name, n) || strchr(name, ':') != NULL)
			return fail(e, "%s: a namespace name is 1-64 bytes of [A-Za-z0-9_.@=-]",
				    path);
		if (load_ns(policy_set_namespace(cfg->policy, name), v, path, e) != 0)
			return -1;
	}
	return 0;
}

static int
load_default_ns(struct config *cfg, json_t *v, struct cfgerr *e)
{
	if (json_is_null(v)) {
		policy_clear_default(cfg->policy);
		return 0;
	}
	return load_ns(policy_reset_default(cfg->policy), v, "default_namespace", e);
}

static int
load_api_key(struct config_api_key *k, json_t *obj, const char *prefix, struct cfgerr *e)
{
	const char *key;
	json_t *v;
	char path[128];

	if (need_object(obj, prefix, e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		size_t i;
		json_t *p;

		snprintf(path, sizeof(path), "%s.%s", prefix, key);
		if (strcmp(key, "name") == 0) {
			if (get_str(v, path, &k->name, e) != 0)
				return -1;
		} else if (strcmp(key, "key") == 0) {
			if (get_secret(v, path, &k->key, e) != 0)
				return -1;
			if (strlen(k->key) > 256)
				return fail(e, "%s: must be 1-256 characters", path);
		} else if (strcmp(key, "channels") == 0) {
			if (!json_is_array(v))
				return fail(e, "%s: must be a list of patterns", path);
			json_array_foreach(v, i, p) if (!json_is_string(p)) return fail(
				e, "%s: must be a list of patterns", path);
			json_decref(k->channels);
			k->channels = json_incref(v);
		} else if (strcmp(key, "quota") == 0) {
			if (load_rate(v, path, "per_minute", &k->per_minute, &k->burst, e) != 0)
				return -1;
		} else {
			return fail(e, "%s: unknown key", path);
		}
	}
	if (k->name == NULL || k->key == NULL)
		return fail(e, "%s: needs \"name\" and \"key\"", prefix);
	return 0;
}

static int
load_api_keys(struct config *cfg, json_t *arr, struct cfgerr *e)
{
	size_t i;
	json_t *v;
	char path[64];

	if (!json_is_array(arr))
		return fail(e, "api_keys: must be a list");
	json_array_foreach(arr, i, v)
	{
		struct config_api_key *k;

		snprintf(path, sizeof(path), "api_keys[%zu]", i);
		cfg->api_keys = xrealloc(cfg->api_keys, (cfg->napi_keys + 1) * sizeof(*k));
		k = &cfg->api_keys[cfg->napi_keys++];
		*k = (struct config_api_key){ .channels = json_pack("[s]", "*"),
					      .per_minute = 600,
					      .burst = 60 };
		if (load_api_key(k, v, path, e) != 0)
			return -1;
		for (size_t j = 0; j + 1 < cfg->napi_keys; j++)
			if (strcmp(cfg->api_keys[j].key, k->key) == 0 ||
			    strcmp(cfg->api_keys[j].name, k->name) == 0)
				return fail(e, "%s: name and key must differ from api_keys[%zu]",
					    path, j);
	}
	return 0;
}

static int
load_tls(struct config *cfg, json_t *obj, struct cfgerr *e)
{
	const char *key;
	json_t *v;

	if (json_is_null(obj))
		return 0;
	if (need_object(obj, "tls", e) != 0)
		return -1;
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "cert") == 0) {
			if (get_str(v, "tls.cert", &cfg->tls_cert, e) != 0)
				return -1;
		} else if (strcmp(key, "key") == 0) {
			if (get_str(v, "tls.key", &cfg->tls_key, e) != 0)
				return -1;
		} else {
			return fail(e, "tls.%s: unknown key", key);
		}
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
		return fail(e, "tls: needs both \"cert\" and \"key\"");
	return 0;
}

static int
load_origins(struct config *cfg, json_t *v, struct cfgerr *e)
{
	size_t i;
	json_t *o;

	if (!json_is_array(v))
		return fail(e, "allowed_origins: must be a list of origins (or \"*\")");
	json_array_foreach(v, i, o) if (!json_is_string(o)) return fail(
		e, "allowed_origins[%zu]: must be a string", i);
	json_decref(cfg->allowed_origins);
	cfg->allowed_origins = json_incref(v);
	return 0;
}

#define MAX_TRUSTED_PROXIES 1024

/* trusted_proxies: addresses and CIDR blocks (util/cidr.h), each checked as it is read. */
static int
load_trusted_proxies(struct config *cfg, json_t *v, struct cfgerr *e)
{
	size_t i;
	json_t *o;

	if (!json_is_array(v))
		return fail(e, "trusted_proxies: must be a list of addresses and CIDRs");
	if (json_array_size(v) > MAX_TRUSTED_PROXIES)
		return fail(e, "trusted_proxies: at most %d entries", MAX_TRUSTED_PROXIES);
	free(cfg->trusted_proxies);
	cfg->trusted_proxies = xcalloc(json_array_size(v) + 1, sizeof(*cfg->trusted_proxies));
	cfg->ntrusted_proxies = 0;
	json_array_foreach(v, i, o)
	{
		const char *s = json_string_value(o);
		char block[CIDR_STRLEN];
		int rc;

		if (s == NULL)
			return fail(e, "trusted_proxies[%zu]: must be a string", i);
		rc = cidr_parse(s, &cfg->trusted_proxies[i]);
		if (rc == -EDOM) {
			cidr_format(&cfg->trusted_proxies[i], block);
			return fail(
				e,
				"trusted_proxies[%zu]: \"%s\" has bits set past its prefix (%s?)",
				i, s, block);
		}
		if (rc != 0)
			return fail(e, "trusted_proxies[%zu]: \"%s\" is not an address or CIDR", i,
				    s);
		cfg->ntrusted_proxies++;
	}
	return 0;
}

/* The webhooks list as given, with every secret given as {"file"} or {"env"} replaced
 * by its value; the entries themselves are checked where webhooks are set up. */
static int
load_webhooks(struct config *cfg, json_t *v, struct cfgerr *e)
{
	json_t *list, *o;
	size_t i;

	if (!json_is_array(v))
		return fail(e, "webhooks: must be a list");
	list = xcheck(json_deep_copy(v));
	json_array_foreach(list, i, o)
	{
		json_t *secret = json_object_get(o, "secret");
		char path[64], *s = NULL;

		if (!json_is_object(secret))
			continue;
		snprintf(path, sizeof(path), "webhooks[%zu].secret", i);
		if (get_secret(secret, path, &s, e) != 0) {
			json_decref(list);
			return -1;
		}
		json_object_set_new(o, "secret", xcheck(json_string(s)));
		free(s);
	}
	json_decref(cfg->webhooks);
	cfg->webhooks = list;
	return 0;
}

static int
load_top(struct config *cfg, json_t *root, struct cfgerr *e)
{
	const char *key;
	json_t *v;
	long long n = 0;

	if (!json_is_object(root))
		return fail(e, "the configuration must be a JSON object");
	json_object_foreach(root, key, v)
	{
		int rc;

		if (strcmp(key, "host") == 0 && json_is_null(v)) {
			free(cfg->host);
			cfg->host = NULL;
			rc = 0;
		} else if (strcmp(key, "host") == 0) {
			rc = get_str(v, "host", &cfg->host, e);
		} else if (strcmp(key, "port") == 0) {
			rc = get_uint(v, "port", 0, 65535, &n, e);
			if (rc == 0)
				cfg->port = (int)n;
		} else if (strcmp(key, "log_level") == 0) {
			rc = json_is_string(v) && log_level_parse(json_string_value(v),
								  &cfg->log_level) == 0
				     ? 0
				     : fail(e, "log_level: must be \"error\", \"warn\", \"info\" "
					       "or \"debug\"");
		} else if (strcmp(key, "engine") == 0) {
			rc = json_is_string(v) && strcmp(json_string_value(v), "memory") == 0
				     ? get_str(v, "engine", &cfg->engine, e)
				     : fail(e, "engine: must be \"memory\"");
		} else if (strcmp(key, "auth") == 0) {
			rc = load_auth(cfg, v, e);
		} else if (strcmp(key, "websocket") == 0) {
			rc = load_websocket(cfg, v, e);
		} else if (strcmp(key, "limits") == 0) {
			rc = load_limits(cfg, v, e);
		} else if (strcmp(key, "namespaces") == 0) {
			rc = load_namespaces(cfg, v, e);
		} else if (strcmp(key, "default_namespace") == 0) {
			rc = load_default_ns(cfg, v, e);
		} else if (strcmp(key, "api_keys") == 0) {
			rc = load_api_keys(cfg, v, e);
		} else if (strcmp(key, "webhooks") == 0) {
			rc = load_webhooks(cfg, v, e);
		} else if (strcmp(key, "log_format") == 0) {
			rc = json_is_string(v) && log_format_parse(json_string_value(v),
								   &cfg->log_format) == 0
				     ? 0
				     : fail(e, "log_format: must be \"text\" or \"json\"");
		} else if (strcmp(key, "drain_period") == 0) {
			rc = get_uint(v, "drain_period", 0, 3600, &n, e);
			if (rc == 0)
				cfg->drain_period = (unsigned)n;
		} else if (strcmp(key, "tls") == 0) {
			rc = load_tls(cfg, v, e);
		} else if (strcmp(key, "allowed_origins") == 0) {
			rc = load_origins(cfg, v, e);
		} else if (strcmp(key, "trusted_proxies") == 0) {
			rc = load_trusted_proxies(cfg, v, e);
		} else {
			rc = fail(e, "%s: unknown key", key);
		}
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* Rules that involve more than one key. */
static int
check(const struct config *cfg, struct cfgerr *e)
{
	if (cfg->ws.idle_timeout <= cfg->ws.ping_interval)
		return fail(
			e,
			"websocket.idle_timeout: must be greater than websocket.ping_interval (%u)",
			cfg->ws.ping_interval);
	if (cfg->limits.max_message_size < 128)
		return fail(e, "limits.max_message_size: must be at least 128");
	if (cfg->limits.max_data_size > cfg->limits.max_message_size)
		return fail(e,
			    "limits.max_data_size: must not exceed limits.max_message_size (%zu)",
			    cfg->limits.max_message_size);
	return 0;
}

int
config_load_string(struct config *cfg, const char *text, char *err, size_t errlen)
{
	struct cfgerr e = { err, errlen };
	json_error_t jerr;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	int rc;

	if (root == NULL)
		return fail(&e, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
			    jerr.text);
	rc = load_top(cfg, root, &e);
	json_decref(root);
	if (rc == 0)
		rc = check(cfg, &e);
	return rc;
}

int
config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct cfgerr e = { err, errlen };
	char inner[256];
	FILE *fp = fopen(path, "rb");
	char *text;
	long size;
	int rc;

	if (fp == NULL)
		return fail(&e, "%s: cannot open: %m", path);
	if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 || size > (1 << 24) ||
	    fseek(fp, 0, SEEK_SET) != 0) {
		fclose(fp);
		return fail(&e, "%s: cannot read (or larger than 16 MiB)", path);
	}
	text = xmalloc((size_t)size + 1);
	if (fread(text, 1, (size_t)size, fp) != (size_t)size) {
		free(text);
		fclose(fp);
		return fail(&e, "%s: cannot read: %m", path);
	}
	fclose(fp);
	text[size] = '\0';
	rc = config_load_string(cfg, text, inner, sizeof(inner));
	free(text);
	if (rc != 0)
		fail(&e, "%s: %s", path, inner);
	return rc;
}

/* ---- the environment and the command line ---- */

static int
apply_port(struct config *cfg, const char *s, const char *what, struct cfgerr *e)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 65535)
		return fail(e, "%s: \"%s\" is not a port number (0-65535)", what, s);
	cfg->port = (int)v;
	return 0;
}

/* One layer of host, port, log level and format (NULL or -1: not given). */
static int
apply_layer(struct config *cfg, const struct config_overrides *l, const char *const what[4],
	    struct cfgerr *e)
{
	if (l->host != NULL && !proto_utf8_valid(l->host, strlen(l->host)))
		return fail(e, "%s: must be UTF-8 text", what[0]);
	if (l->host != NULL) {
		free(cfg->host);
		cfg->host = xstrdup(l->host);
	}
	if (l->port >= 0)
		cfg->port = l->port;
	if (l->log_level != NULL && log_level_parse(l->log_level, &cfg->log_level) != 0)
		return fail(e, "%s: \"%s\" is not error, warn, info or debug", what[2],
			    l->log_level);
	if (l->log_format != NULL && log_format_parse(l->log_format, &cfg->log_format) != 0)
		return fail(e, "%s: \"%s\" is not text or json", what[3], l->log_format);
	return 0;
}

static int
apply_env(struct config *cfg, struct cfgerr *e)
{
	static const char *const what[4] = { "SWITCHBOARD_HOST", "SWITCHBOARD_PORT",
					     "SWITCHBOARD_LOG_LEVEL", "SWITCHBOARD_LOG_FORMAT" };
	struct config_overrides env = {
		.host = getenv(what[0]),
		.port = -1,
		.log_level = getenv(what[2]),
		.log_format = getenv(what[3]),
	};
	const char *port = getenv(what[1]);

	if (port != NULL && apply_port(cfg, port, what[1], e) != 0)
		return -1;
	return apply_layer(cfg, &env, what, e);
}

int
config_load_effective(struct config *cfg, const char *path, const struct config_overrides *ov,
		      char *err, size_t errlen)
{
	static const char *const what[4] = { "--host", "--port", "--log-level", "--log-format" };
	struct cfgerr e = { err, errlen };

	config_defaults(cfg);
	if (path != NULL) {
		cfg->path = xstrdup(path);
		if (config_load_file(cfg, path, err, errlen) != 0)
			return -1;
	}
	if (apply_env(cfg, &e) != 0)
		return -1;
	if (ov != NULL) {
		cfg->ov = *ov;
		if (apply_layer(cfg, ov, what, &e) != 0)
			return -1;
	}
	return 0;
}
