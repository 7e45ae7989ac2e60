/* test_config.c: server/config/config.h against docs/configuration.md: embedded defaults,
 * strict parsing (every error names its key), and that valid configurations land in
 * the right fields. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "leakcheck.h"
#include "policy.h"

/* Applies text over the defaults; returns the config_load_string result, err filled. */
static int
load(struct config *cfg, const char *text, char *err, size_t errlen)
{
	config_defaults(cfg);
	err[0] = '\0';
	return config_load_string(cfg, text, err, errlen);
}

/* Asserts that text is refused with an error that mentions key. */
static void
expect_refused(const char *text, const char *key)
{
	struct config cfg;
	char err[256];

	cr_expect_eq(load(&cfg, text, err, sizeof(err)), -1, "accepted %s", text);
	cr_expect_neq(err[0], '\0', "%s: empty error", text);
	cr_expect_not_null(strstr(err, key), "%s: error \"%s\" does not name %s", text, err, key);
	config_fini(&cfg);
}

static void
expect_loaded(struct config *cfg, const char *text)
{
	char err[256];

	cr_assert_eq(load(cfg, text, err, sizeof(err)), 0, "refused %s: %s", text, err);
}

static enum policy_publish
publish_rule(const struct config *cfg, const char *channel)
{
	const struct ns_policy *ns = policy_for_channel(cfg->policy, channel, strlen(channel));

	cr_assert_not_null(ns, "%s has no policy", channel);
	return ns->publish;
}

/* ---- defaults ---- */

Test(config, defaults_match_the_documentation)
{
	struct config cfg;

	config_defaults(&cfg);
	cr_expect_eq(cfg.port, 8080);
	cr_expect_null(cfg.host, "every interface by default");
	cr_expect_eq(cfg.log_level, LOG_INFO);
	cr_expect_str_eq(cfg.engine, "memory");
	cr_expect(cfg.anonymous);
	cr_expect_eq(cfg.limits.max_message_size, 65536);
	cr_expect_eq(cfg.limits.max_data_size, 61440);
	cr_expect_eq(cfg.limits.max_channels_per_connection, 128);
	cr_expect_eq(cfg.limits.max_connections, 10000);
	cr_expect_eq(cfg.limits.send_queue_messages, 4096);
	cr_expect_eq(cfg.limits.send_queue_bytes, 1048576);
	cr_expect_eq(cfg.ws.ping_interval, 25);
	cr_expect_eq(cfg.ws.idle_timeout, 60);
	cr_expect_eq(cfg.ws.connect_timeout, 10);
	cr_assert_not_null(cfg.policy);
	cr_expect_eq(publish_rule(&cfg, "lobby"), POLICY_PUBLISH_SUBSCRIBERS,
		     "the default publish rule is subscribers");
	cr_expect_eq(publish_rule(&cfg, "chat:lobby"), POLICY_PUBLISH_SUBSCRIBERS,
		     "unconfigured namespaces use the default namespace");
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, empty_object_keeps_the_defaults)
{
	struct config cfg;

	expect_loaded(&cfg, "{}");
	cr_expect_eq(cfg.port, 8080);
	cr_expect_eq(cfg.limits.max_message_size, 65536);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, fini_twice_is_safe)
{
	struct config cfg;

	config_defaults(&cfg);
	config_fini(&cfg);
	config_fini(&cfg);
	assert_no_leaks();
}

/* ---- valid configurations ---- */

Test(config, every_key_sets_its_field)
{
	static const char text[] =
		"{\"host\":\"127.0.0.1\",\"port\":9001,\"log_level\":\"debug\",\"engine\":"
		"\"memory\","
		"\"auth\":{\"anonymous\":false},"
		"\"websocket\":{\"ping_interval\":5,\"idle_timeout\":12,\"connect_timeout\":3},"
		"\"limits\":{\"max_message_size\":32768,\"max_data_size\":30000,"
		"\"max_channels_per_connection\":3,\"max_connections\":2,"
		"\"send_queue_messages\":16,\"send_queue_bytes\":4096},"
		"\"namespaces\":{\"chat\":{\"publish\":\"clients\"},\"feed\":{\"publish\":\"none\"}"
		","
		"\"room\":{\"publish\":\"subscribers\"}},"
		"\"default_namespace\":{\"publish\":\"clients\"}}";
	struct config cfg;

	expect_loaded(&cfg, text);
	cr_expect_str_eq(cfg.host, "127.0.0.1");
	cr_expect_eq(cfg.port, 9001);
	cr_expect_eq(cfg.log_level, LOG_DEBUG);
	cr_expect_str_eq(cfg.engine, "memory");
	cr_expect_not(cfg.anonymous);
	cr_expect_eq(cfg.ws.ping_interval, 5);
	cr_expect_eq(cfg.ws.idle_timeout, 12);
	cr_expect_eq(cfg.ws.connect_timeout, 3);
	cr_expect_eq(cfg.limits.max_message_size, 32768);
	cr_expect_eq(cfg.limits.max_data_size, 30000);
	cr_expect_eq(cfg.limits.max_channels_per_connection, 3);
	cr_expect_eq(cfg.limits.max_connections, 2);
	cr_expect_eq(cfg.limits.send_queue_messages, 16);
	cr_expect_eq(cfg.limits.send_queue_bytes, 4096);
	cr_expect_eq(publish_rule(&cfg, "chat:lobby"), POLICY_PUBLISH_CLIENTS);
	cr_expect_eq(publish_rule(&cfg, "feed:prices"), POLICY_PUBLISH_NONE);
	cr_expect_eq(publish_rule(&cfg, "room:1"), POLICY_PUBLISH_SUBSCRIBERS);
	cr_expect_eq(publish_rule(&cfg, "other:x"), POLICY_PUBLISH_CLIENTS, "default namespace");
	cr_expect_eq(publish_rule(&cfg, "bare"), POLICY_PUBLISH_CLIENTS, "bare names are default");
	cr_expect_eq(publish_rule(&cfg, ":x"), POLICY_PUBLISH_CLIENTS, "':x' is in the default");
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, every_log_level_is_accepted)
{
	static const struct {
		const char *name;
		enum log_level level;
	} levels[] = {
		{ "error", LOG_ERROR },
		{ "warn", LOG_WARN },
		{ "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < 4; i++) {
		struct config cfg;
		char text[64];

		snprintf(text, sizeof(text), "{\"log_level\":\"%s\"}", levels[i].name);
		expect_loaded(&cfg, text);
		cr_expect_eq(cfg.log_level, levels[i].level, "%s", levels[i].name);
		config_fini(&cfg);
	}
	assert_no_leaks();
}

Test(config, port_bounds_are_accepted)
{
	struct config cfg;

	expect_loaded(&cfg, "{\"port\":0}");
	cr_expect_eq(cfg.port, 0, "port 0 asks for any free port");
	config_fini(&cfg);
	expect_loaded(&cfg, "{\"port\":65535}");
	cr_expect_eq(cfg.port, 65535);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, default_namespace_null_refuses_unconfigured_namespaces)
{
	struct config cfg;

	expect_loaded(&cfg, "{\"namespaces\":{\"chat\":{\"publish\":\"clients\"}},"
			    "\"default_namespace\":null}");
	cr_expect_null(policy_for_channel(cfg.policy, "other:x", 7));
	cr_expect_null(policy_for_channel(cfg.policy, "bare", 4));
	cr_expect_null(policy_for_channel(cfg.policy, ":x", 2));
	cr_expect_eq(publish_rule(&cfg, "chat:x"), POLICY_PUBLISH_CLIENTS);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, namespace_without_publish_uses_subscribers)
{
	struct config cfg;

	expect_loaded(&cfg, "{\"namespaces\":{\"chat\":{}}}");
	cr_expect_eq(publish_rule(&cfg, "chat:x"), POLICY_PUBLISH_SUBSCRIBERS);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, a_second_load_applies_over_the_first)
{
	struct config cfg;
	char err[256];

	expect_loaded(&cfg, "{\"port\":1234,\"limits\":{\"max_connections\":7}}");
	cr_assert_eq(config_load_string(&cfg, "{\"port\":4321}", err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.port, 4321);
	cr_expect_eq(cfg.limits.max_connections, 7);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, host_may_be_replaced)
{
	struct config cfg;
	char err[256];

	expect_loaded(&cfg, "{\"host\":\"::1\"}");
	cr_assert_eq(config_load_string(&cfg, "{\"host\":\"0.0.0.0\"}", err, sizeof(err)), 0);
	cr_expect_str_eq(cfg.host, "0.0.0.0");
	config_fini(&cfg);
	assert_no_leaks();
}

/* ---- refusals name the key ---- */

Test(config, invalid_json_is_refused)
{
	static const char *const texts[] = {
		"", "{", "{\"port\":}", "{\"port\":1,}", "nope", "{\"port\":1,\"port\":2}"
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct config cfg;
		char err[256];

		cr_expect_eq(load(&cfg, texts[i], err, sizeof(err)), -1, "accepted \"%s\"",
			     texts[i]);
		cr_expect_neq(err[0], '\0');
		config_fini(&cfg);
	}
	assert_no_leaks();
}

Test(config, top_level_must_be_an_object)
{
	static const char *const texts[] = { "[]", "1", "\"port\"", "null", "true" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct config cfg;
		char err[256];

		cr_expect_eq(load(&cfg, texts[i], err, sizeof(err)), -1, "accepted %s", texts[i]);
		config_fini(&cfg);
	}
	assert_no_leaks();
}

Test(config, unknown_keys_are_named_at_every_level)
{
	expect_refused("{\"bogus\":1}", "bogus");
	expect_refused("{\"Port\":1}", "Port");
	expect_refused("{\"auth\":{\"anon\":true}}", "anon");
	expect_refused("{\"websocket\":{\"ping\":5}}", "ping");
	expect_refused("{\"limits\":{\"max_msg_size\":5}}", "max_msg_size");
	expect_refused("{\"namespaces\":{\"chat\":{\"publsh\":\"clients\"}}}", "publsh");
	expect_refused("{\"namespaces\":{\"chat\":{\"presense\":true}}}", "presense");
	expect_refused("{\"namespaces\":{\"chat\":{\"history\":10}}}", "history");
	expect_refused("{\"default_namespace\":{\"history\":10}}", "history");
	expect_refused("{\"default_namespace\":{\"ttl\":10}}", "ttl");
	expect_refused("{\"auth\":{\"jwt\":{\"secret\":\"x\"}}}", "secret");
	expect_refused("{\"auth\":{\"token\":{}}}", "token");
	expect_refused("{\"limits\":{\"history_bytes\":5}}", "history_bytes");
	assert_no_leaks();
}

Test(config, wrong_types_are_named)
{
	expect_refused("{\"host\":5}", "host");
	expect_refused("{\"host\":[\"a\"]}", "host");
	expect_refused("{\"port\":\"80\"}", "port");
	expect_refused("{\"port\":80.5}", "port");
	expect_refused("{\"port\":true}", "port");
	expect_refused("{\"log_level\":2}", "log_level");
	expect_refused("{\"engine\":1}", "engine");
	expect_refused("{\"auth\":true}", "auth");
	expect_refused("{\"auth\":{\"anonymous\":\"yes\"}}", "anonymous");
	expect_refused("{\"auth\":{\"anonymous\":1}}", "anonymous");
	expect_refused("{\"websocket\":[]}", "websocket");
	expect_refused("{\"websocket\":{\"ping_interval\":1.5}}", "ping_interval");
	expect_refused("{\"websocket\":{\"idle_timeout\":\"60\"}}", "idle_timeout");
	expect_refused("{\"websocket\":{\"connect_timeout\":null}}", "connect_timeout");
	expect_refused("{\"limits\":5}", "limits");
	expect_refused("{\"limits\":{\"max_message_size\":\"big\"}}", "max_message_size");
	expect_refused("{\"limits\":{\"max_data_size\":1e3}}", "max_data_size");
	expect_refused("{\"limits\":{\"max_channels_per_connection\":true}}",
		       "max_channels_per_connection");
	expect_refused("{\"limits\":{\"max_connections\":[1]}}", "max_connections");
	expect_refused("{\"limits\":{\"send_queue_messages\":{}}}", "send_queue_messages");
	expect_refused("{\"limits\":{\"send_queue_bytes\":null}}", "send_queue_bytes");
	expect_refused("{\"namespaces\":[]}", "namespaces");
	expect_refused("{\"namespaces\":{\"chat\":\"clients\"}}", "chat");
	expect_refused("{\"namespaces\":{\"chat\":{\"publish\":1}}}", "publish");
	expect_refused("{\"default_namespace\":\"clients\"}", "default_namespace");
	expect_refused("{\"default_namespace\":{\"publish\":true}}", "publish");
	assert_no_leaks();
}

Test(config, bad_values_are_named)
{
	expect_refused("{\"log_level\":\"loud\"}", "log_level");
	expect_refused("{\"log_level\":\"WARN\"}", "log_level");
	expect_refused("{\"engine\":\"redis\"}", "engine");
	expect_refused("{\"namespaces\":{\"chat\":{\"publish\":\"everyone\"}}}", "publish");
	expect_refused("{\"namespaces\":{\"chat\":{\"publish\":\"\"}}}", "publish");
	expect_refused("{\"default_namespace\":{\"publish\":\"Clients\"}}", "publish");
	assert_no_leaks();
}

Test(config, out_of_range_values_are_named)
{
	expect_refused("{\"port\":70000}", "port");
	expect_refused("{\"port\":65536}", "port");
	expect_refused("{\"port\":-1}", "port");
	expect_refused("{\"limits\":{\"max_message_size\":-5}}", "max_message_size");
	expect_refused("{\"limits\":{\"max_data_size\":-1}}", "max_data_size");
	expect_refused("{\"limits\":{\"max_data_size\":0}}", "max_data_size");
	expect_refused("{\"limits\":{\"max_channels_per_connection\":0}}",
		       "max_channels_per_connection");
	expect_refused("{\"limits\":{\"max_connections\":-3}}", "max_connections");
	expect_refused("{\"limits\":{\"send_queue_messages\":0}}", "send_queue_messages");
	expect_refused("{\"limits\":{\"send_queue_bytes\":-4096}}", "send_queue_bytes");
	expect_refused("{\"websocket\":{\"ping_interval\":-1}}", "ping_interval");
	expect_refused("{\"websocket\":{\"connect_timeout\":-10}}", "connect_timeout");
	assert_no_leaks();
}

Test(config, websocket_seconds_are_1_to_65535)
{
	struct config cfg;

	expect_refused("{\"websocket\":{\"ping_interval\":0}}", "ping_interval");
	expect_refused("{\"websocket\":{\"connect_timeout\":0}}", "connect_timeout");
	expect_refused("{\"websocket\":{\"connect_timeout\":65536}}", "connect_timeout");
	expect_refused("{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":65536}}",
		       "idle_timeout");
	expect_loaded(&cfg, "{\"websocket\":{\"ping_interval\":65534,\"idle_timeout\":65535,"
			    "\"connect_timeout\":65535}}");
	cr_expect_eq(cfg.ws.idle_timeout, 65535);
	cr_expect_eq(cfg.ws.connect_timeout, 65535);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, message_and_data_sizes_are_consistent)
{
	struct config cfg;

	expect_refused("{\"limits\":{\"max_message_size\":127,\"max_data_size\":100}}",
		       "max_message_size");
	expect_refused("{\"limits\":{\"max_data_size\":65537}}", "max_data_size");
	expect_refused("{\"limits\":{\"max_message_size\":1000,\"max_data_size\":1001}}",
		       "max_data_size");
	expect_refused("{\"limits\":{\"max_message_size\":16777217}}", "max_message_size");
	expect_loaded(&cfg, "{\"limits\":{\"max_message_size\":128,\"max_data_size\":128}}");
	cr_expect_eq(cfg.limits.max_message_size, 128);
	cr_expect_eq(cfg.limits.max_data_size, 128);
	config_fini(&cfg);
	/* Unless given, max_data_size follows max_message_size (docs/configuration.md). */
	expect_loaded(&cfg, "{\"limits\":{\"max_message_size\":1000}}");
	cr_expect_eq(cfg.limits.max_data_size, 930);
	config_fini(&cfg);
	expect_loaded(&cfg, "{\"limits\":{\"max_message_size\":1048576}}");
	cr_expect_eq(cfg.limits.max_data_size, 1048576 - 4096);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, namespace_names_are_1_to_64_bytes_without_colon)
{
	char text[256], name[66];
	struct config cfg;

	expect_refused("{\"namespaces\":{\"a:b\":{}}}", "a:b");
	expect_refused("{\"namespaces\":{\"\":{}}}", "namespaces");
	expect_refused("{\"namespaces\":{\"sp ace\":{}}}", "sp ace");
	memset(name, 'n', 65), name[65] = '\0';
	snprintf(text, sizeof(text), "{\"namespaces\":{\"%s\":{}}}", name);
	expect_refused(text, name);
	name[64] = '\0';
	snprintf(text, sizeof(text), "{\"namespaces\":{\"%s\":{\"publish\":\"none\"}}}", name);
	expect_loaded(&cfg, text);
	config_fini(&cfg);
	expect_loaded(&cfg, "{\"namespaces\":{\"A-z_0.9@x=y\":{\"publish\":\"none\"}}}");
	cr_expect_eq(publish_rule(&cfg, "A-z_0.9@x=y:chan"), POLICY_PUBLISH_NONE);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, host_null_means_every_interface)
{
	struct config cfg;

	expect_loaded(&cfg, "{\"host\":\"127.0.0.1\"}");
	cr_assert_eq(config_load_string(&cfg, "{\"host\":null}", (char[64]){ 0 }, 64), 0);
	cr_expect_null(cfg.host);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, idle_timeout_must_exceed_ping_interval)
{
	struct config cfg;
	char err[256];

	expect_refused("{\"websocket\":{\"ping_interval\":30,\"idle_timeout\":30}}",
		       "idle_timeout");
	expect_refused("{\"websocket\":{\"ping_interval\":30,\"idle_timeout\":10}}",
		       "idle_timeout");
	/* Against the default idle timeout (60) too; either key may be named. */
	cr_expect_eq(load(&cfg, "{\"websocket\":{\"ping_interval\":90}}", err, sizeof(err)), -1);
	cr_expect(strstr(err, "ping_interval") != NULL || strstr(err, "idle_timeout") != NULL,
		  "error \"%s\" names neither key", err);
	config_fini(&cfg);
	expect_loaded(&cfg, "{\"websocket\":{\"ping_interval\":1,\"idle_timeout\":2}}");
	cr_expect_eq(cfg.ws.ping_interval, 1);
	cr_expect_eq(cfg.ws.idle_timeout, 2);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, errors_name_the_full_key_path)
{
	struct config cfg;
	char err[256];

	cr_expect_eq(load(&cfg, "{\"limits\":{\"max_message_size\":-5}}", err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "limits.max_message_size"), "%s", err);
	config_fini(&cfg);
	cr_expect_eq(load(&cfg, "{\"namespaces\":{\"chat\":{\"publish\":\"x\"}}}", err,
			  sizeof(err)),
		     -1);
	cr_expect_not_null(strstr(err, "namespaces.chat.publish"), "%s", err);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, a_short_error_buffer_is_not_overrun)
{
	struct config cfg;
	char err[16];

	memset(err, 'x', sizeof(err));
	cr_expect_eq(load(&cfg, "{\"limits\":{\"max_channels_per_connection\":\"many\"}}", err, 8),
		     -1);
	cr_expect_lt(strlen(err), 8u, "error not NUL-terminated within errlen");
	cr_expect_eq(err[8], 'x', "wrote past errlen");
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, a_refused_config_can_still_be_finished_without_leaks)
{
	static const char *const texts[] = {
		"{\"host\":\"h\",\"namespaces\":{\"a\":{\"publish\":\"clients\"}},\"bogus\":1}",
		"{\"namespaces\":{\"a\":{\"publish\":\"clients\"},\"b\":{\"publish\":\"nope\"}}}",
		"{\"engine\":\"memory\",\"default_namespace\":{\"publish\":\"nope\"}}",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct config cfg;
		char err[256];

		cr_expect_eq(load(&cfg, texts[i], err, sizeof(err)), -1, "accepted %s", texts[i]);
		config_fini(&cfg);
	}
	assert_no_leaks();
}

/* ---- issue 3: auth.jwt, namespace rules, history memory ---- */

static const struct ns_policy *
ns_of(const struct config *cfg, const char *channel)
{
	const struct ns_policy *ns = policy_for_channel(cfg->policy, channel, strlen(channel));

	cr_assert_not_null(ns, "%s has no policy", channel);
	return ns;
}

Test(config, auth_and_history_defaults)
{
	struct config cfg;

	config_defaults(&cfg);
	cr_expect_null(cfg.jwt_secret, "no HMAC secret unless configured");
	cr_expect_null(cfg.jwt_public_key, "no public key unless configured");
	cr_expect_eq(cfg.jwt_leeway, 5);
	cr_expect_eq(cfg.limits.history_memory, (size_t)64 << 20);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, built_in_default_namespace_has_presence_join_leave_and_history)
{
	struct config cfg;
	const struct ns_policy *ns;

	config_defaults(&cfg);
	ns = ns_of(&cfg, "lobby");
	cr_expect_eq(ns->publish, POLICY_PUBLISH_SUBSCRIBERS);
	cr_expect(ns->presence);
	cr_expect(ns->join_leave);
	cr_expect_eq(ns->history_size, 100);
	cr_expect_eq(ns->history_ttl, 3600);
	cr_expect_not(ns->private_ns);
	cr_expect(ns->allow_anonymous);
	cr_expect_eq(ns_of(&cfg, "chat:x"), ns, "unconfigured namespaces use the default");
	config_fini(&cfg);
	/* {} changes nothing. */
	expect_loaded(&cfg, "{}");
	cr_expect(ns_of(&cfg, "lobby")->join_leave);
	cr_expect_eq(ns_of(&cfg, "lobby")->history_size, 100);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, a_configured_namespace_starts_with_everything_off)
{
	struct config cfg;
	const struct ns_policy *ns;

	expect_loaded(&cfg, "{\"namespaces\":{\"chat\":{}},"
			    "\"default_namespace\":{\"publish\":\"subscribers\"}}");
	for (int i = 0; i < 2; i++) {
		ns = ns_of(&cfg, i == 0 ? "chat:x" : "bare");
		cr_expect_eq(ns->publish, POLICY_PUBLISH_SUBSCRIBERS);
		cr_expect_not(ns->presence, "%d", i);
		cr_expect_not(ns->join_leave, "%d", i);
		cr_expect_eq(ns->history_size, 0, "%d", i);
		cr_expect_eq(ns->history_ttl, 0, "%d", i);
		cr_expect_not(ns->private_ns, "%d", i);
		cr_expect(ns->allow_anonymous, "%d", i);
	}
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, every_new_key_sets_its_field)
{
	static const char text[] =
		"{\"auth\":{\"anonymous\":false,\"jwt\":{\"hmac_secret\":\"s3cret\","
		"\"public_key\":\"/etc/switchboard/jwt.pem\",\"leeway\":30}},"
		"\"limits\":{\"history_memory\":1048576},"
		"\"namespaces\":{\"secret\":{\"publish\":\"clients\",\"private\":true,\"presence\":"
		"true,"
		"\"join_leave\":true,\"history_size\":50,\"history_ttl\":600,"
		"\"allow_anonymous\":false}},"
		"\"default_namespace\":{\"publish\":\"none\",\"presence\":true,\"join_leave\":"
		"false,"
		"\"history_size\":7,\"history_ttl\":0,\"private\":false,\"allow_anonymous\":true}}";
	struct config cfg;
	const struct ns_policy *ns;

	expect_loaded(&cfg, text);
	cr_expect_not(cfg.anonymous);
	cr_expect_str_eq(cfg.jwt_secret, "s3cret");
	cr_expect_str_eq(cfg.jwt_public_key, "/etc/switchboard/jwt.pem");
	cr_expect_eq(cfg.jwt_leeway, 30);
	cr_expect_eq(cfg.limits.history_memory, 1048576);
	ns = ns_of(&cfg, "secret:team-a");
	cr_expect_str_eq(ns->name, "secret");
	cr_expect_eq(ns->publish, POLICY_PUBLISH_CLIENTS);
	cr_expect(ns->private_ns);
	cr_expect(ns->presence);
	cr_expect(ns->join_leave);
	cr_expect_eq(ns->history_size, 50);
	cr_expect_eq(ns->history_ttl, 600);
	cr_expect_not(ns->allow_anonymous);
	ns = ns_of(&cfg, "other:x");
	cr_expect_eq(ns->publish, POLICY_PUBLISH_NONE);
	cr_expect(ns->presence);
	cr_expect_not(ns->join_leave);
	cr_expect_eq(ns->history_size, 7);
	cr_expect_eq(ns->history_ttl, 0);
	cr_expect_not(ns->private_ns);
	cr_expect(ns->allow_anonymous);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, new_keys_accept_their_bounds)
{
	struct config cfg;

	expect_loaded(&cfg, "{\"namespaces\":{\"a\":{\"history_size\":0,\"history_ttl\":0},"
			    "\"b\":{\"history_size\":100000,\"history_ttl\":31536000}},"
			    "\"auth\":{\"jwt\":{\"hmac_secret\":\"x\",\"leeway\":0}}}");
	cr_expect_eq(ns_of(&cfg, "a:x")->history_size, 0);
	cr_expect_eq(ns_of(&cfg, "b:x")->history_size, 100000);
	cr_expect_eq(ns_of(&cfg, "b:x")->history_ttl, 31536000);
	cr_expect_eq(cfg.jwt_leeway, 0);
	config_fini(&cfg);
	expect_loaded(&cfg, "{\"auth\":{\"jwt\":{\"public_key\":\"k.pem\",\"leeway\":3600}},"
			    "\"limits\":{\"history_memory\":1}}");
	cr_expect_eq(cfg.jwt_leeway, 3600);
	cr_expect_null(cfg.jwt_secret);
	cr_expect_eq(cfg.limits.history_memory, 1);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, join_leave_needs_presence_in_either_order)
{
	struct config cfg;

	expect_refused("{\"namespaces\":{\"chat\":{\"join_leave\":true}}}", "join_leave");
	expect_refused("{\"namespaces\":{\"chat\":{\"join_leave\":true,\"presence\":false}}}",
		       "join_leave");
	expect_refused("{\"default_namespace\":{\"join_leave\":true}}", "join_leave");
	/* A default_namespace object starts from the configured-namespace defaults, so the
	 * built-in default's presence does not carry over. */
	expect_refused("{\"default_namespace\":{\"join_leave\":true,\"history_size\":5}}",
		       "join_leave");
	expect_loaded(&cfg, "{\"namespaces\":{\"chat\":{\"join_leave\":true,\"presence\":true}}}");
	cr_expect(ns_of(&cfg, "chat:x")->join_leave, "key order must not matter");
	config_fini(&cfg);
	expect_loaded(&cfg, "{\"namespaces\":{\"chat\":{\"presence\":true,\"join_leave\":false}}}");
	cr_expect(ns_of(&cfg, "chat:x")->presence);
	cr_expect_not(ns_of(&cfg, "chat:x")->join_leave);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, new_keys_refuse_wrong_types_and_ranges)
{
	expect_refused("{\"auth\":{\"jwt\":true}}", "jwt");
	expect_refused("{\"auth\":{\"jwt\":{\"hmac_secret\":5}}}", "hmac_secret");
	expect_refused("{\"auth\":{\"jwt\":{\"hmac_secret\":\"\"}}}", "hmac_secret");
	expect_refused("{\"auth\":{\"jwt\":{\"hmac_secret\":null}}}", "hmac_secret");
	expect_refused("{\"auth\":{\"jwt\":{\"public_key\":[\"k.pem\"]}}}", "public_key");
	expect_refused("{\"auth\":{\"jwt\":{\"leeway\":-1}}}", "leeway");
	expect_refused("{\"auth\":{\"jwt\":{\"leeway\":3601}}}", "leeway");
	expect_refused("{\"auth\":{\"jwt\":{\"leeway\":\"5\"}}}", "leeway");
	expect_refused("{\"auth\":{\"jwt\":{\"leeway\":1.5}}}", "leeway");
	expect_refused("{\"limits\":{\"history_memory\":0}}", "history_memory");
	expect_refused("{\"limits\":{\"history_memory\":-1}}", "history_memory");
	expect_refused("{\"limits\":{\"history_memory\":\"1M\"}}", "history_memory");
	expect_refused("{\"namespaces\":{\"c\":{\"private\":\"yes\"}}}", "private");
	expect_refused("{\"namespaces\":{\"c\":{\"private\":1}}}", "private");
	expect_refused("{\"namespaces\":{\"c\":{\"presence\":null}}}", "presence");
	expect_refused("{\"namespaces\":{\"c\":{\"join_leave\":\"true\"}}}", "join_leave");
	expect_refused("{\"namespaces\":{\"c\":{\"allow_anonymous\":0}}}", "allow_anonymous");
	expect_refused("{\"namespaces\":{\"c\":{\"history_size\":-1}}}", "history_size");
	expect_refused("{\"namespaces\":{\"c\":{\"history_size\":100001}}}", "history_size");
	expect_refused("{\"namespaces\":{\"c\":{\"history_size\":1.5}}}", "history_size");
	expect_refused("{\"namespaces\":{\"c\":{\"history_size\":\"10\"}}}", "history_size");
	expect_refused("{\"namespaces\":{\"c\":{\"history_ttl\":-1}}}", "history_ttl");
	expect_refused("{\"namespaces\":{\"c\":{\"history_ttl\":31536001}}}", "history_ttl");
	expect_refused("{\"namespaces\":{\"c\":{\"history_ttl\":true}}}", "history_ttl");
	expect_refused("{\"default_namespace\":{\"private\":\"no\"}}", "private");
	expect_refused("{\"default_namespace\":{\"history_size\":100001}}", "history_size");
	expect_refused("{\"default_namespace\":{\"history_ttl\":-5}}", "history_ttl");
	assert_no_leaks();
}

Test(config, new_errors_name_the_full_key_path)
{
	struct config cfg;
	char err[256];

	cr_expect_eq(load(&cfg, "{\"auth\":{\"jwt\":{\"leeway\":-1}}}", err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "auth.jwt.leeway"), "%s", err);
	config_fini(&cfg);
	cr_expect_eq(load(&cfg, "{\"namespaces\":{\"chat\":{\"history_ttl\":-1}}}", err,
			  sizeof(err)),
		     -1);
	cr_expect_not_null(strstr(err, "namespaces.chat.history_ttl"), "%s", err);
	config_fini(&cfg);
	cr_expect_eq(load(&cfg, "{\"namespaces\":{\"chat\":{\"join_leave\":true}}}", err,
			  sizeof(err)),
		     -1);
	cr_expect_not_null(strstr(err, "namespaces.chat.join_leave"), "%s", err);
	config_fini(&cfg);
	cr_expect_eq(load(&cfg, "{\"default_namespace\":{\"history_size\":-1}}", err, sizeof(err)),
		     -1);
	cr_expect_not_null(strstr(err, "default_namespace.history_size"), "%s", err);
	config_fini(&cfg);
	cr_expect_eq(load(&cfg, "{\"limits\":{\"history_memory\":0}}", err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "limits.history_memory"), "%s", err);
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, refused_auth_and_namespace_configs_finish_without_leaks)
{
	static const char *const texts[] = {
		"{\"auth\":{\"jwt\":{\"hmac_secret\":\"a\",\"public_key\":\"p\",\"leeway\":-1}}}",
		"{\"auth\":{\"jwt\":{\"hmac_secret\":\"a\",\"bogus\":1}}}",
		"{\"namespaces\":{\"a\":{\"presence\":true},\"b\":{\"join_leave\":true}}}",
		"{\"default_namespace\":{\"presence\":true,\"history_size\":-1}}",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct config cfg;
		char err[256];

		cr_expect_eq(load(&cfg, texts[i], err, sizeof(err)), -1, "accepted %s", texts[i]);
		config_fini(&cfg);
	}
	assert_no_leaks();
}

Test(config, jwt_keys_may_be_replaced_by_a_second_load)
{
	struct config cfg;
	char err[256];

	expect_loaded(&cfg, "{\"auth\":{\"jwt\":{\"hmac_secret\":\"one\"}}}");
	cr_assert_eq(config_load_string(&cfg, "{\"auth\":{\"jwt\":{\"hmac_secret\":\"two\"}}}", err,
					sizeof(err)),
		     0, "%s", err);
	cr_expect_str_eq(cfg.jwt_secret, "two");
	config_fini(&cfg);
	assert_no_leaks();
}

/* ---- files ---- */

Test(config, file_is_loaded)
{
	char path[] = "/tmp/switchboard-config-XXXXXX";
	static const char text[] = "{\"port\":7777,\"limits\":{\"max_connections\":9}}";
	struct config cfg;
	char err[256];
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	config_defaults(&cfg);
	cr_expect_eq(config_load_file(&cfg, path, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.port, 7777);
	cr_expect_eq(cfg.limits.max_connections, 9);
	config_fini(&cfg);
	unlink(path);
	assert_no_leaks();
}

Test(config, file_errors_name_the_file_and_the_key)
{
	char path[] = "/tmp/switchboard-config-XXXXXX";
	static const char text[] = "{\"limits\":{\"max_connections\":0}}";
	struct config cfg;
	char err[256];
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	config_defaults(&cfg);
	cr_expect_eq(config_load_file(&cfg, path, err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, path), "%s", err);
	cr_expect_not_null(strstr(err, "max_connections"), "%s", err);
	config_fini(&cfg);
	unlink(path);
	assert_no_leaks();
}

Test(config, missing_file_is_an_error_naming_it)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	cr_expect_eq(config_load_file(&cfg, "/nonexistent/switchboard.json", err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "/nonexistent/switchboard.json"), "%s", err);
	config_fini(&cfg);
	assert_no_leaks();
}

/* ---- trusted_proxies ---- */

Test(config, trusted_proxies_are_parsed_into_blocks)
{
	struct config cfg;
	char s[CIDR_STRLEN];

	config_defaults(&cfg);
	cr_expect_eq(cfg.ntrusted_proxies, 0, "no proxy is trusted by default");
	config_fini(&cfg);
	expect_loaded(&cfg, "{\"trusted_proxies\":[\"127.0.0.1\",\"10.0.0.0/8\",\"::1\","
			    "\"fd00::/8\",\"::ffff:172.16.0.0/108\"]}");
	cr_assert_eq(cfg.ntrusted_proxies, 5);
	cidr_format(&cfg.trusted_proxies[0], s);
	cr_expect_str_eq(s, "127.0.0.1/32");
	cidr_format(&cfg.trusted_proxies[1], s);
	cr_expect_str_eq(s, "10.0.0.0/8");
	cidr_format(&cfg.trusted_proxies[2], s);
	cr_expect_str_eq(s, "::1/128");
	cidr_format(&cfg.trusted_proxies[3], s);
	cr_expect_str_eq(s, "fd00::/8");
	cidr_format(&cfg.trusted_proxies[4], s);
	cr_expect_str_eq(s, "172.16.0.0/12", "a mapped block is an IPv4 block");
	config_fini(&cfg);
	assert_no_leaks();
}

Test(config, trusted_proxies_errors_name_the_index_and_the_entry)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{ "{\"trusted_proxies\":[\"127.0.0.1\",\"::1\",\"10.0.0.0/33\"]}",
		  "trusted_proxies[2]: \"10.0.0.0/33\" is not an address or CIDR" },
		{ "{\"trusted_proxies\":[\"localhost\"]}",
		  "trusted_proxies[0]: \"localhost\" is not an address or CIDR" },
		{ "{\"trusted_proxies\":[\"10.0.0.0/8 \"]}",
		  "trusted_proxies[0]: \"10.0.0.0/8 \" is not an address or CIDR" },
		{ "{\"trusted_proxies\":[\"\"]}",
		  "trusted_proxies[0]: \"\" is not an address or CIDR" },
		{ "{\"trusted_proxies\":[\"::/129\"]}", "trusted_proxies[0]: \"::/129\" is not" },
		{ "{\"trusted_proxies\":[\"[::1]\"]}", "trusted_proxies[0]: \"[::1]\" is not" },
		{ "{\"trusted_proxies\":[\"10.1.2.3/8\"]}",
		  "trusted_proxies[0]: \"10.1.2.3/8\" has bits set past its prefix (10.0.0.0/8?)" },
		{ "{\"trusted_proxies\":[\"fd00::1/8\"]}", "(fd00::/8?)" },
		{ "{\"trusted_proxies\":[\"::1\",5]}", "trusted_proxies[1]: must be a string" },
		{ "{\"trusted_proxies\":\"127.0.0.1\"}",
		  "trusted_proxies: must be a list of addresses and CIDRs" },
		{ "{\"trusted_proxies\":null}", "trusted_proxies: must be a list" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_refused(cases[i].text, cases[i].error);
	assert_no_leaks();
}

Test(config, trusted_proxies_are_bounded)
{
	size_t n = 1025, len = 0;
	char *text = malloc(n * 12 + 64);

	len += (size_t)sprintf(text, "{\"trusted_proxies\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "%s\"::%zx\"", i ? "," : "", i + 1);
	strcpy(text + len, "]}");
	expect_refused(text, "trusted_proxies: at most 1024 entries");
	strcpy(text + len - strlen(",\"::401\""), "]}");
	struct config cfg;
	expect_loaded(&cfg, text);
	cr_expect_eq(cfg.ntrusted_proxies, 1024);
	config_fini(&cfg);
	free(text);
	assert_no_leaks();
}
