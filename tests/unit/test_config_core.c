/* test_config_core.c: config_to_core() (server/config/config.h) copies every field the
 * core needs from a configuration file, and borrows the engine name and the policy. */
#include <criterion/criterion.h>

#include <string.h>
#include <unistd.h>

#include "config.h"
#include "core_config.h"
#include "leakcheck.h"
#include "policy.h"

/* Every key that reaches struct core_config, each away from its default. */
static const char text[] =
	"{\"engine\":\"memory\","
	"\"auth\":{\"anonymous\":false,\"jwt\":{\"hmac_secret\":\"s\",\"leeway\":42}},"
	"\"websocket\":{\"ping_interval\":5,\"idle_timeout\":12,\"connect_timeout\":3},"
	"\"limits\":{\"max_message_size\":32768,\"max_data_size\":30000,"
	"\"max_channels_per_connection\":7,\"send_queue_messages\":33,"
	"\"send_queue_bytes\":8192,\"history_memory\":123456,"
	"\"client_publish\":{\"per_second\":11,\"burst\":22},"
	"\"client_commands\":{\"per_second\":44,\"burst\":55}},"
	"\"namespaces\":{\"chat\":{\"publish\":\"clients\"}},"
	"\"default_namespace\":null}";

/* Loads text from a real file over the defaults. */
static void
load_file(struct config *cfg)
{
	char path[] = "/tmp/switchboard-config-core-XXXXXX";
	char err[256] = "";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	config_defaults(cfg);
	cr_assert_eq(config_load_file(cfg, path, err, sizeof(err)), 0, "%s", err);
	unlink(path);
}

Test(config_core, every_field_comes_from_the_file)
{
	struct config cfg;
	struct core_config cc;
	const struct ns_policy *ns;

	load_file(&cfg);
	memset(&cc, 0xa5, sizeof(cc));
	config_to_core(&cfg, &cc);

	cr_expect_eq(cc.engine, cfg.engine, "the engine name is borrowed");
	cr_expect_str_eq(cc.engine, "memory");
	cr_expect_not(cc.anonymous);
	cr_expect_eq(cc.connect_timeout, 3);
	cr_expect_eq(cc.jwt_leeway, 42);
	cr_expect_eq(cc.limits.max_message_size, 32768);
	cr_expect_eq(cc.limits.max_data_size, 30000);
	cr_expect_eq(cc.limits.max_channels_per_connection, 7);
	cr_expect_eq(cc.limits.send_queue_messages, 33);
	cr_expect_eq(cc.limits.send_queue_bytes, 8192);
	cr_expect_eq(cc.limits.history_memory, 123456);
	cr_expect_eq(cc.limits.publish_per_second, 11);
	cr_expect_eq(cc.limits.publish_burst, 22);
	cr_expect_eq(cc.limits.commands_per_second, 44);
	cr_expect_eq(cc.limits.commands_burst, 55);
	cr_expect_eq(cc.policy, cfg.policy, "the policy is borrowed");
	ns = policy_for_channel(cc.policy, "chat:lobby", strlen("chat:lobby"));
	cr_assert_not_null(ns);
	cr_expect_eq(ns->publish, POLICY_PUBLISH_CLIENTS);
	cr_expect_null(policy_for_channel(cc.policy, "other:x", strlen("other:x")),
		       "default_namespace null reaches the core");
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config_core, defaults_reach_the_core_unchanged)
{
	struct config cfg;
	struct core_config cc;

	config_defaults(&cfg);
	config_to_core(&cfg, &cc);
	cr_expect(cc.anonymous);
	cr_expect_eq(cc.connect_timeout, cfg.ws.connect_timeout);
	cr_expect_eq(cc.jwt_leeway, cfg.jwt_leeway);
	cr_expect_eq(cc.limits.max_message_size, cfg.limits.max_message_size);
	cr_expect_eq(cc.limits.max_data_size, cfg.limits.max_data_size);
	cr_expect_eq(cc.limits.history_memory, cfg.limits.history_memory);
	cr_expect_eq(cc.limits.publish_burst, cfg.limits.publish_burst);
	cr_expect_eq(cc.limits.commands_burst, cfg.limits.commands_burst);
	config_fini(&cfg);
	assert_no_leaks();
}
