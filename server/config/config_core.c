/* config_core.c: the part of the configuration the core needs (core_config.h), so that
 * the core never includes config.h. Plain copies of numbers; the engine name and the
 * policy are borrowed from the configuration, which must outlive every hub made with it. */
#include "config.h"
#include "core_config.h"

void
config_to_core(const struct config *cfg, struct core_config *out)
{
	const struct config_limits *l = &cfg->limits;

	*out = (struct core_config){
		.engine = cfg->engine,
		.anonymous = cfg->anonymous,
		.connect_timeout = cfg->ws.connect_timeout,
		.jwt_leeway = cfg->jwt_leeway,
		.limits = {
			.max_message_size = l->max_message_size,
			.max_data_size = l->max_data_size,
			.max_channels_per_connection = l->max_channels_per_connection,
			.send_queue_messages = l->send_queue_messages,
			.send_queue_bytes = l->send_queue_bytes,
			.history_memory = l->history_memory,
			.publish_per_second = l->publish_per_second,
			.publish_burst = l->publish_burst,
			.commands_per_second = l->commands_per_second,
			.commands_burst = l->commands_burst,
		},
		.policy = cfg->policy,
	};
}
