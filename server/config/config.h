/* config.h: the server configuration, from embedded defaults, a JSON file (jansson) and
 * command-line overrides. Parsing is strict: an unknown key or a wrong type is an error
 * that names the key. docs/configuration.md documents every key. */
#ifndef SWITCHBOARD_CONFIG_H
#define SWITCHBOARD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cidr.h"
#include "log.h"
#include "policy.h"

struct core_config;

struct config_limits {
	size_t max_message_size; /* bytes of one inbound WebSocket message */
	size_t max_data_size;	 /* bytes of a published data value */
	size_t max_channels_per_connection;
	size_t max_connections;
	size_t send_queue_messages;   /* frames queued to one connection */
	size_t send_queue_bytes;      /* bytes queued to one connection */
	size_t history_memory;	      /* bytes of history kept for all channels */
	size_t max_http_body;	      /* bytes of an HTTP API request body */
	unsigned publish_per_second;  /* client_publish.per_second */
	unsigned publish_burst;	      /* client_publish.burst */
	unsigned commands_per_second; /* client_commands.per_second */
	unsigned commands_burst;      /* client_commands.burst */
	size_t max_connections_per_ip;
	unsigned connect_rate_per_second; /* connection_rate_per_ip.per_second */
	unsigned connect_rate_burst;	  /* connection_rate_per_ip.burst */
};

/* One backend key of the HTTP API. */
struct config_api_key {
	char *name;
	char *key;
	json_t *channels;    /* array of glob patterns (new reference) */
	unsigned per_minute; /* quota refill */
	unsigned burst;	     /* quota bucket size */
};

struct config_websocket {
	unsigned ping_interval;	  /* s of silence before the server pings */
	unsigned idle_timeout;	  /* s of silence before the server hangs up */
	unsigned connect_timeout; /* s allowed before a successful connect */
};

/* Settings given on the command line, applied over the file and the environment. The
 * strings are borrowed and must outlive every configuration loaded with them (argv). */
struct config_overrides {
	const char *host;      /* NULL: not given */
	int port;	       /* -1: not given */
	const char *log_level; /* NULL: not given */
	const char *log_format;
};

struct config {
	char *path;		    /* the file it was loaded from, or NULL */
	struct config_overrides ov; /* what config_load_effective() applied last */
	char *host;		    /* NULL: every interface */
	int port;		    /* 0: any free port */
	enum log_level log_level;
	enum log_format log_format; /* text or one JSON object per line */
	unsigned drain_period;	    /* s over which SIGTERM closes clients; 0: at once */
	char *engine;		    /* "memory" */
	bool anonymous;		    /* auth.anonymous */
	char *jwt_secret;	    /* auth.jwt.hmac_secret, or NULL */
	char *jwt_public_key;	    /* auth.jwt.public_key (a PEM path), or NULL */
	unsigned jwt_leeway;	    /* auth.jwt.leeway, seconds */
	struct config_limits limits;
	struct config_websocket ws;
	struct policy *policy;		 /* owned: namespaces and default namespace */
	struct config_api_key *api_keys; /* owned */
	size_t napi_keys;
	char *tls_cert;		      /* tls.cert (PEM path), or NULL: plain HTTP */
	char *tls_key;		      /* tls.key */
	json_t *allowed_origins;      /* array of origins or "*" (new reference) */
	struct cidr *trusted_proxies; /* owned: peers whose X-Forwarded-For and
				       * Forwarded headers are believed */
	size_t ntrusted_proxies;
	json_t *webhooks; /* the "webhooks" list as given, validated by
			   * net/webhook.c at startup, or NULL */
};

/* Fills cfg with the embedded defaults (port 8080, memory engine, anonymous on). */
void config_defaults(struct config *cfg);

/* Applies the JSON file at path over cfg. Returns 0, or -1 with a sentence naming the
 * file, the key and the problem in err. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Same, from JSON text (used by the file loader and by tests). */
int config_load_string(struct config *cfg, const char *text, char *err, size_t errlen);

/* The whole configuration as the server runs it, in order of precedence: the embedded
 * defaults, the file at path (if not NULL), the environment (SWITCHBOARD_HOST,
 * SWITCHBOARD_PORT, SWITCHBOARD_LOG_LEVEL, SWITCHBOARD_LOG_FORMAT), then ov (if not
 * NULL). cfg is initialised here; call config_fini() on it whatever the result. Returns
 * 0, or -1 with a sentence naming the file or variable, the key and the problem. */
int config_load_effective(struct config *cfg, const char *path, const struct config_overrides *ov,
			  char *err, size_t errlen);

/* cfg in the configuration file's own format (a new reference): loading it gives the
 * same configuration. With mask, every secret (auth.jwt.hmac_secret, api_keys[].key,
 * webhooks[].secret) is replaced by "********". */
json_t *config_to_json(const struct config *cfg, bool mask);

/* Fills out with what the core needs from cfg (core_config.h). out->engine and
 * out->policy are borrowed from cfg: cfg must outlive every hub made with out. */
void config_to_core(const struct config *cfg, struct core_config *out);

void config_fini(struct config *cfg);

#endif
