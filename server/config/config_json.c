/* config_json.c: the effective configuration in the configuration file's own format
 * (config_to_json: --check-config, and the SIGHUP reload's comparison). Loading what it
 * gives yields the same configuration (tests/unit/test_config_order.c checks it). */
#include "config.h"
#include "xalloc.h"

#include <jansson.h>

#define MASK "********"

static json_t *
secret_json(const char *s, bool mask)
{
	return json_string(mask ? MASK : s);
}

/* auth.jwt with the keys that are set (a key given as null would not load back). */
static json_t *
jwt_json(const struct config *cfg, bool mask)
{
	json_t *o = xcheck(json_pack("{s:i}", "leeway", (int)cfg->jwt_leeway));

	if (cfg->jwt_secret != NULL)
		json_object_set_new(o, "hmac_secret", secret_json(cfg->jwt_secret, mask));
	if (cfg->jwt_public_key != NULL)
		json_object_set_new(o, "public_key", json_string(cfg->jwt_public_key));
	return o;
}

static json_t *
ns_json(const struct ns_policy *ns)
{
	return xcheck(json_pack("{s:s,s:b,s:b,s:b,s:b,s:i,s:i,s:b}", "publish",
				policy_publish_name(ns->publish), "private", ns->private_ns,
				"presence", ns->presence, "join_leave", ns->join_leave,
				"allow_anonymous", ns->allow_anonymous, "history_size",
				(int)ns->history_size, "history_ttl", (int)ns->history_ttl,
				"message_events", ns->message_events));
}

static json_t *
limits_json(const struct config_limits *l)
{
	return xcheck(json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:{s:i,s:i},s:{s:i,s:i},s:{s:i,s:i}}",
		"max_message_size", (json_int_t)l->max_message_size, "max_data_size",
		(json_int_t)l->max_data_size, "max_channels_per_connection",
		(json_int_t)l->max_channels_per_connection, "max_connections",
		(json_int_t)l->max_connections, "send_queue_messages",
		(json_int_t)l->send_queue_messages, "send_queue_bytes",
		(json_int_t)l->send_queue_bytes, "history_memory", (json_int_t)l->history_memory,
		"max_http_body", (json_int_t)l->max_http_body, "max_connections_per_ip",
		(json_int_t)l->max_connections_per_ip, "client_publish", "per_second",
		(int)l->publish_per_second, "burst", (int)l->publish_burst, "client_commands",
		"per_second", (int)l->commands_per_second, "burst", (int)l->commands_burst,
		"connection_rate_per_ip", "per_second", (int)l->connect_rate_per_second, "burst",
		(int)l->connect_rate_burst));
}

static json_t *
api_keys_json(const struct config *cfg, bool mask)
{
	json_t *arr = xcheck(json_array());

	for (size_t i = 0; i < cfg->napi_keys; i++) {
		const struct config_api_key *k = &cfg->api_keys[i];

		json_array_append_new(arr,
				      xcheck(json_pack("{s:s,s:o,s:O,s:{s:i,s:i}}", "name", k->name,
						       "key", secret_json(k->key, mask), "channels",
						       k->channels, "quota", "per_minute",
						       (int)k->per_minute, "burst",
						       (int)k->burst)));
	}
	return arr;
}

static json_t *
webhooks_json(const json_t *list, bool mask)
{
	json_t *copy, *o;
	size_t i;

	if (list == NULL)
		return json_array();
	copy = xcheck(json_deep_copy(list));
	json_array_foreach(copy, i, o) if (mask && json_is_string(json_object_get(o, "secret")))
		json_object_set_new(o, "secret", json_string(MASK));
	return copy;
}

static json_t *
trusted_proxies_json(const struct config *cfg)
{
	json_t *arr = xcheck(json_array());
	char s[CIDR_STRLEN];

	for (size_t i = 0; i < cfg->ntrusted_proxies; i++) {
		cidr_format(&cfg->trusted_proxies[i], s);
		json_array_append_new(arr, xcheck(json_string(s)));
	}
	return arr;
}

json_t *
config_to_json(const struct config *cfg, bool mask)
{
	const struct ns_policy *def = policy_default(cfg->policy);
	json_t *nss = xcheck(json_object()), *o;

	for (size_t i = 0; i < policy_count(cfg->policy); i++)
		json_object_set_new(nss, policy_at(cfg->policy, i)->name,
				    ns_json(policy_at(cfg->policy, i)));
	o = json_pack(
		"{s:o,s:i,s:s,s:s,s:s,s:i,s:{s:b,s:o},s:{s:i,s:i,s:i},s:o,s:o,s:o,s:o,s:o,s:O,s:o}",
		"host", cfg->host != NULL ? json_string(cfg->host) : json_null(), "port", cfg->port,
		"log_level", log_level_name(cfg->log_level), "log_format",
		log_format_name(cfg->log_format), "engine", cfg->engine, "drain_period",
		(int)cfg->drain_period, "auth", "anonymous", cfg->anonymous, "jwt",
		jwt_json(cfg, mask), "websocket", "ping_interval", (int)cfg->ws.ping_interval,
		"idle_timeout", (int)cfg->ws.idle_timeout, "connect_timeout",
		(int)cfg->ws.connect_timeout, "limits", limits_json(&cfg->limits), "namespaces",
		nss, "default_namespace", def != NULL ? ns_json(def) : json_null(), "api_keys",
		api_keys_json(cfg, mask), "tls",
		cfg->tls_cert != NULL
			? json_pack("{s:s,s:s}", "cert", cfg->tls_cert, "key", cfg->tls_key)
			: json_null(),
		"allowed_origins", cfg->allowed_origins, "webhooks",
		webhooks_json(cfg->webhooks, mask));
	xcheck(o);
	json_object_set_new(o, "trusted_proxies", trusted_proxies_json(cfg));
	return o;
}
