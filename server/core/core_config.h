/* core_config.h: what the core needs from the configuration: a small struct filled by
 * server/config (config_to_core()), so that the core never includes the server's
 * configuration header. Everything here is plain data; policy is borrowed and must
 * outlive every hub made with it. */
#ifndef SWITCHBOARD_CORE_CONFIG_H
#define SWITCHBOARD_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct policy;

struct core_limits {
	size_t max_message_size; /* bytes of one inbound message (reply budgets) */
	size_t max_data_size;	 /* bytes of a published data value */
	size_t max_channels_per_connection;
	size_t send_queue_messages;  /* frames queued to one connection */
	size_t send_queue_bytes;     /* bytes queued to one connection */
	size_t history_memory;	     /* bytes of history kept for all channels */
	unsigned publish_per_second; /* client_publish.per_second */
	unsigned publish_burst;
	unsigned commands_per_second; /* client_commands.per_second */
	unsigned commands_burst;
};

struct core_config {
	const char *engine;	  /* "memory" (borrowed) */
	bool anonymous;		  /* auth.anonymous */
	unsigned connect_timeout; /* websocket.connect_timeout, seconds */
	unsigned jwt_leeway;	  /* auth.jwt.leeway, seconds */
	struct core_limits limits;
	const struct policy *policy; /* borrowed: namespaces and default namespace */
};

#endif
