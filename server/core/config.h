/* config.h: the server configuration, from embedded defaults, a JSON file (jansson) and
 * command-line overrides. Parsing is strict: an unknown key or a wrong type is an error
 * that names the key. docs/configuration.md documents every key. */
#ifndef SWITCHBOARD_CONFIG_H
#define SWITCHBOARD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "log.h"
#include "policy.h"

struct config_limits {
	size_t max_message_size;            /* bytes of one inbound WebSocket message */
	size_t max_data_size;               /* bytes of a published data value */
	size_t max_channels_per_connection;
	size_t max_connections;
	size_t send_queue_messages;         /* frames queued to one connection */
	size_t send_queue_bytes;            /* bytes queued to one connection */
	size_t history_memory;              /* bytes of history kept for all channels */
	size_t max_http_body;               /* bytes of an HTTP API request body */
	unsigned publish_per_second;        /* client_publish.per_second */
	unsigned publish_burst;             /* client_publish.burst */
	unsigned commands_per_second;       /* client_commands.per_second */
	unsigned commands_burst;            /* client_commands.burst */
	size_t max_connections_per_ip;
	unsigned connect_rate_per_second;   /* connection_rate_per_ip.per_second */
	unsigned connect_rate_burst;        /* connection_rate_per_ip.burst */
};

/* One backend key of the HTTP API. */
struct config_api_key {
	char *name;
	char *key;
	json_t *channels;                   /* array of glob patterns (new reference) */
	unsigned per_minute;                /* quota refill */
	unsigned burst;                     /* quota bucket size */
};

struct config_websocket {
	unsigned ping_interval;             /* s of silence before the server pings */
	unsigned idle_timeout;              /* s of silence before the server hangs up */
	unsigned connect_timeout;           /* s allowed before a successful connect */
};

struct config {
	char *host;                         /* NULL: every interface */
	int port;                           /* 0: any free port */
	enum log_level log_level;
	char *engine;                       /* "memory" */
	bool anonymous;                     /* auth.anonymous */
	char *jwt_secret;                   /* auth.jwt.hmac_secret, or NULL */
	char *jwt_public_key;               /* auth.jwt.public_key (a PEM path), or NULL */
	unsigned jwt_leeway;                /* auth.jwt.leeway, seconds */
	struct config_limits limits;
	struct config_websocket ws;
	struct policy *policy;              /* owned: namespaces and default namespace */
	struct config_api_key *api_keys;    /* owned */
	size_t napi_keys;
	char *tls_cert;                     /* tls.cert (PEM path), or NULL: plain HTTP */
	char *tls_key;                      /* tls.key */
	json_t *allowed_origins;            /* array of origins or "*" (new reference) */
	json_t *webhooks;                   /* the "webhooks" list as given, validated by
					     * net/webhook.c at startup, or NULL */
};

/* Fills cfg with the embedded defaults (port 8080, memory engine, anonymous on). */
void config_defaults(struct config *cfg);

/* Applies the JSON file at path over cfg. Returns 0, or -1 with a sentence naming the
 * file, the key and the problem in err. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Same, from JSON text (used by the file loader and by tests). */
int config_load_string(struct config *cfg, const char *text, char *err, size_t errlen);

void config_fini(struct config *cfg);

#endif
