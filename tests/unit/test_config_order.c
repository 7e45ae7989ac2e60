/* test_config_order.c: a configuration means the same whatever the order of its keys
 * (issue 9: "webhooks" before "allowed_origins" was a use-after-free), the effective
 * configuration (config_to_json, --check-config) loads back to itself, secrets may come
 * from a file or the environment, and the environment and command line apply over the
 * file in that order. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "leakcheck.h"

/* Every section and nearly every key, nested objects included. */
static const char full[] =
	"{\"host\":\"127.0.0.1\",\"port\":9001,\"log_level\":\"debug\",\"log_format\":\"json\","
	"\"engine\":\"memory\",\"drain_period\":7,"
	"\"auth\":{\"anonymous\":false,\"jwt\":{\"hmac_secret\":"
	"\"0123456789abcdef0123456789abcdef\","
	"\"leeway\":3}},"
	"\"websocket\":{\"ping_interval\":11,\"idle_timeout\":33,\"connect_timeout\":4},"
	"\"limits\":{\"max_message_size\":32768,\"max_channels_per_connection\":9,"
	"\"max_connections\":500,\"send_queue_messages\":100,\"send_queue_bytes\":200000,"
	"\"history_memory\":1000000,\"max_http_body\":2048,\"max_connections_per_ip\":50,"
	"\"client_publish\":{\"per_second\":5,\"burst\":6},"
	"\"client_commands\":{\"burst\":8,\"per_second\":7},"
	"\"connection_rate_per_ip\":{\"per_second\":9,\"burst\":10}},"
	"\"namespaces\":{\"chat\":{\"publish\":\"clients\",\"presence\":true,\"join_leave\":true,"
	"\"history_size\":20,\"history_ttl\":60,\"allow_anonymous\":false,\"message_events\":true},"
	"\"secret\":{\"private\":true,\"presence\":true,\"join_leave\":true},"
	"\"ticks\":{\"publish\":\"none\",\"history_size\":5}},"
	"\"default_namespace\":{\"join_leave\":true,\"presence\":true,\"history_size\":3},"
	"\"api_keys\":[{\"name\":\"backend\",\"key\":\"sk_1\",\"channels\":[\"*\"],"
	"\"quota\":{\"per_minute\":60,\"burst\":10}},"
	"{\"quota\":{\"burst\":2,\"per_minute\":6},\"channels\":[\"chat:*\",\"ticks:*\"],"
	"\"key\":\"sk_2\",\"name\":\"chat\"}],"
	"\"webhooks\":[{\"url\":\"http://127.0.0.1:1/hook\",\"events\":[\"channel_occupied\"],"
	"\"secret\":\"whsec\",\"timeout_ms\":500,\"max_retries\":2}],"
	"\"tls\":{\"cert\":\"/etc/ssl/c.pem\",\"key\":\"/etc/ssl/k.pem\"},"
	"\"allowed_origins\":[\"https://a.example\",\"https://b.example\"],"
	"\"trusted_proxies\":[\"127.0.0.1\",\"10.0.0.0/8\",\"::ffff:192.168.0.0/112\",\"fd00::/"
	"8\"]}";

static uint64_t rng;

static uint64_t
next_rand(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return rng >> 33;
}

/* A copy of v whose objects, at every depth, hold their keys in another order: mode 0
 * reversed, 1 rotated by one, else shuffled. Arrays keep their order (it has meaning). */
static json_t *
reorder(json_t *v, int mode)
{
	if (json_is_object(v)) {
		size_t n = json_object_size(v), i = 0;
		const char **keys = calloc(n ? n : 1, sizeof(*keys));
		json_t *out = json_object(), *x;
		const char *k;

		json_object_foreach(v, k, x) keys[i++] = k;
		for (i = 0; i < n; i++) {
			size_t j = mode == 0 ? n - 1 - i : mode == 1 ? (i + 1) % n : i;

			if (mode > 1 && i + 1 < n) {
				size_t r = i + next_rand() % (n - i);
				const char *t = keys[i];

				keys[i] = keys[r];
				keys[r] = t;
				j = i;
			}
			json_object_set_new(out, keys[j],
					    reorder(json_object_get(v, keys[j]), mode));
		}
		free(keys);
		return out;
	}
	if (json_is_array(v)) {
		json_t *out = json_array(), *x;
		size_t i;

		json_array_foreach(v, i, x) json_array_append_new(out, reorder(x, mode));
		return out;
	}
	return json_incref(v);
}

/* The effective configuration of text (asserting it loads). */
static json_t *
effective(const char *text)
{
	struct config cfg;
	char err[256] = "";
	json_t *o;

	config_defaults(&cfg);
	cr_assert_eq(config_load_string(&cfg, text, err, sizeof(err)), 0, "refused: %s\n%s", err,
		     text);
	o = config_to_json(&cfg, false);
	config_fini(&cfg);
	return o;
}

Test(config_order, issue_9_webhooks_before_allowed_origins)
{
	static const char *const texts[] = {
		"{\"webhooks\":[],\"allowed_origins\":[\"https://a.example\"]}",
		"{\"allowed_origins\":[\"https://a.example\"],\"webhooks\":[]}",
	};

	for (size_t i = 0; i < 2; i++) {
		struct config cfg;
		char err[256] = "";

		config_defaults(&cfg);
		cr_assert_eq(config_load_string(&cfg, texts[i], err, sizeof(err)), 0, "%s: %s",
			     texts[i], err);
		cr_expect(json_is_array(cfg.webhooks) && json_array_size(cfg.webhooks) == 0, "%s",
			  texts[i]);
		cr_expect_str_eq(json_string_value(json_array_get(cfg.allowed_origins, 0)),
				 "https://a.example");
		config_fini(&cfg);
	}
	assert_no_leaks();
}

Test(config_order, every_key_order_gives_the_same_configuration)
{
	json_error_t jerr;
	json_t *root = json_loads(full, 0, &jerr), *want = effective(full);
	int runs = 0;

	cr_assert_not_null(root, "%s", jerr.text);
	/* The full text really is far from the defaults: spot checks. */
	cr_expect_eq(json_integer_value(json_object_get(want, "port")), 9001);
	cr_expect_eq(json_array_size(json_object_get(want, "webhooks")), 1);
	cr_expect_eq(json_object_size(json_object_get(want, "namespaces")), 3);
	rng = 42;
	for (int mode = 0; mode < 202; mode++) {
		json_t *perm = reorder(root, mode), *got;
		char *text = json_dumps(perm, JSON_COMPACT | JSON_PRESERVE_ORDER);

		got = effective(text);
		cr_expect(json_equal(got, want), "key order changed the configuration:\n%s", text);
		runs++;
		json_decref(got);
		json_decref(perm);
		free(text);
	}
	cr_expect_eq(runs, 202);
	json_decref(root);
	json_decref(want);
	assert_no_leaks();
}

Test(config_order, the_effective_configuration_loads_back_to_itself)
{
	static const char *const texts[] = { "{}", full,
					     "{\"default_namespace\":null,\"tls\":null}" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_t *once = effective(texts[i]), *twice;
		char *text = json_dumps(once, JSON_COMPACT);

		twice = effective(text);
		cr_expect(json_equal(once, twice), "not a fixed point: %s", text);
		json_decref(once);
		json_decref(twice);
		free(text);
	}
	assert_no_leaks();
}

Test(config_order, masking_hides_every_secret_and_nothing_else)
{
	struct config cfg;
	char err[256] = "", *text;
	json_t *o;

	config_defaults(&cfg);
	cr_assert_eq(config_load_string(&cfg, full, err, sizeof(err)), 0, "%s", err);
	o = config_to_json(&cfg, true);
	text = json_dumps(o, JSON_COMPACT);
	cr_expect_null(strstr(text, "0123456789abcdef"), "jwt secret shown: %s", text);
	cr_expect_null(strstr(text, "sk_1"), "api key shown: %s", text);
	cr_expect_null(strstr(text, "sk_2"), "api key shown: %s", text);
	cr_expect_null(strstr(text, "whsec"), "webhook secret shown: %s", text);
	cr_expect_not_null(strstr(text, "\"name\":\"backend\""), "%s", text);
	cr_expect_not_null(strstr(text, "http://127.0.0.1:1/hook"), "%s", text);
	cr_expect_not_null(strstr(text, "\"hmac_secret\":\"********\""), "%s", text);
	free(text);
	json_decref(o);
	config_fini(&cfg);
	assert_no_leaks();
}

/* ---- secrets from a file or the environment ---- */

static char *
temp_file(const char *contents)
{
	char *path = strdup("/tmp/sb-secret-XXXXXX");
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, contents, strlen(contents)), (ssize_t)strlen(contents));
	close(fd);
	return path;
}

static int
load_text(struct config *cfg, const char *text, char *err, size_t len)
{
	config_defaults(cfg);
	err[0] = '\0';
	return config_load_string(cfg, text, err, len);
}

Test(config_order, secrets_come_from_a_file_or_the_environment)
{
	char *path = temp_file("from-a-file-0123456789abcdef0123\n");
	char text[1024], err[256];
	struct config cfg;

	setenv("SB_TEST_KEY", "sk_from_env", 1);
	setenv("SB_TEST_HOOK", "whsec_env", 1);
	snprintf(text, sizeof(text),
		 "{\"auth\":{\"jwt\":{\"hmac_secret\":{\"file\":\"%s\"}}},"
		 "\"api_keys\":[{\"name\":\"b\",\"key\":{\"env\":\"SB_TEST_KEY\"}}],"
		 "\"webhooks\":[{\"url\":\"http://127.0.0.1:1/\",\"events\":[\"member_joined\"],"
		 "\"secret\":{\"env\":\"SB_TEST_HOOK\"}}]}",
		 path);
	cr_assert_eq(load_text(&cfg, text, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cfg.jwt_secret, "from-a-file-0123456789abcdef0123", "newline kept");
	cr_expect_str_eq(cfg.api_keys[0].key, "sk_from_env");
	cr_expect_str_eq(json_string_value(
				 json_object_get(json_array_get(cfg.webhooks, 0), "secret")),
			 "whsec_env");
	config_fini(&cfg);
	unlink(path);
	free(path);
	assert_no_leaks();
}

Test(config_order, bad_secret_sources_are_named)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "{\"auth\":{\"jwt\":{\"hmac_secret\":{\"env\":\"SB_TEST_UNSET_VAR\"}}}}",
		  "auth.jwt.hmac_secret: the environment variable SB_TEST_UNSET_VAR is not set" },
		{ "{\"auth\":{\"jwt\":{\"hmac_secret\":{\"file\":\"/nonexistent/secret\"}}}}",
		  "auth.jwt.hmac_secret: cannot read the secret file \"/nonexistent/secret\"" },
		{ "{\"auth\":{\"jwt\":{\"hmac_secret\":{\"file\":\"/a\",\"env\":\"B\"}}}}",
		  "auth.jwt.hmac_secret: must be a string, {\"file\"" },
		{ "{\"auth\":{\"jwt\":{\"hmac_secret\":\"\"}}}",
		  "auth.jwt.hmac_secret: must not be empty" },
		{ "{\"api_keys\":[{\"name\":\"b\",\"key\":{\"env\":\"SB_TEST_EMPTY\"}}]}",
		  "api_keys[0].key: must not be empty" },
		{ "{\"api_keys\":[{\"name\":\"b\",\"key\":7}]}",
		  "api_keys[0].key: must be a string" },
		/* Binary secrets would abort later, where they are shown or compared as JSON. */
		{ "{\"api_keys\":[{\"name\":\"b\",\"key\":{\"env\":\"SB_TEST_BINARY\"}}]}",
		  "api_keys[0].key: must be UTF-8 text" },
		{ "{\"webhooks\":[{\"secret\":{\"env\":\"SB_TEST_BINARY\"}}]}",
		  "webhooks[0].secret: must be UTF-8 text" },
		{ "{\"webhooks\":[{\"secret\":{\"env\":\"SB_TEST_UNSET_VAR\"}}]}",
		  "webhooks[0].secret: the environment variable SB_TEST_UNSET_VAR is not set" },
	};

	unsetenv("SB_TEST_UNSET_VAR");
	setenv("SB_TEST_EMPTY", "", 1);
	setenv("SB_TEST_BINARY", "\xff\xfe\x01", 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char err[256];

		cr_expect_eq(load_text(&cfg, cases[i].text, err, sizeof(err)), -1, "accepted %s",
			     cases[i].text);
		cr_expect_not_null(strstr(err, cases[i].want), "%s: got \"%s\", want \"%s\"",
				   cases[i].text, err, cases[i].want);
		config_fini(&cfg);
	}
	assert_no_leaks();
}

/* ---- precedence: flags > environment > file > defaults ---- */

Test(config_order, flags_override_the_environment_which_overrides_the_file)
{
	char *path = temp_file("{\"host\":\"10.0.0.1\",\"port\":7000,\"log_level\":\"warn\"}");
	struct config_overrides ov = { .port = -1 };
	struct config cfg;
	char err[256] = "";

	unsetenv("SWITCHBOARD_HOST");
	unsetenv("SWITCHBOARD_LOG_FORMAT");
	setenv("SWITCHBOARD_PORT", "7001", 1);
	setenv("SWITCHBOARD_LOG_LEVEL", "error", 1);
	cr_assert_eq(config_load_effective(&cfg, path, &ov, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cfg.host, "10.0.0.1", "the file's host");
	cr_expect_eq(cfg.port, 7001, "the environment's port");
	cr_expect_eq(cfg.log_level, LOG_ERROR, "the environment's level");
	cr_expect_str_eq(cfg.path, path);
	config_fini(&cfg);

	ov = (struct config_overrides){
		.host = "127.0.0.2", .port = 7002, .log_level = "debug", .log_format = "json"
	};
	cr_assert_eq(config_load_effective(&cfg, path, &ov, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cfg.host, "127.0.0.2");
	cr_expect_eq(cfg.port, 7002);
	cr_expect_eq(cfg.log_level, LOG_DEBUG);
	cr_expect_eq(cfg.log_format, LOG_FORMAT_JSON);
	config_fini(&cfg);

	cr_assert_eq(config_load_effective(&cfg, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.port, 7001, "the environment over the defaults");
	cr_expect_null(cfg.path);
	config_fini(&cfg);
	unlink(path);
	free(path);
	assert_no_leaks();
}

Test(config_order, bad_environment_values_are_named)
{
	static const char *const cases[][3] = {
		{ "SWITCHBOARD_PORT", "70000", "SWITCHBOARD_PORT: \"70000\" is not a port number" },
		{ "SWITCHBOARD_PORT", "", "SWITCHBOARD_PORT: \"\" is not a port number" },
		{ "SWITCHBOARD_LOG_LEVEL", "loud", "SWITCHBOARD_LOG_LEVEL: \"loud\" is not error" },
		{ "SWITCHBOARD_LOG_FORMAT", "xml",
		  "SWITCHBOARD_LOG_FORMAT: \"xml\" is not text or json" },
		{ "SWITCHBOARD_HOST", "\xff", "SWITCHBOARD_HOST: must be UTF-8 text" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char err[256] = "";

		unsetenv("SWITCHBOARD_PORT");
		unsetenv("SWITCHBOARD_HOST");
		unsetenv("SWITCHBOARD_LOG_LEVEL");
		unsetenv("SWITCHBOARD_LOG_FORMAT");
		setenv(cases[i][0], cases[i][1], 1);
		cr_expect_eq(config_load_effective(&cfg, NULL, NULL, err, sizeof(err)), -1);
		cr_expect_not_null(strstr(err, cases[i][2]), "got \"%s\", want \"%s\"", err,
				   cases[i][2]);
		config_fini(&cfg);
	}
	assert_no_leaks();
}

Test(config_order, drain_period_and_log_format_are_checked)
{
	struct config cfg;
	char err[256];

	cr_expect_eq(load_text(&cfg, "{\"drain_period\":0,\"log_format\":\"text\"}", err,
			       sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(cfg.drain_period, 0);
	config_fini(&cfg);
	cr_expect_eq(load_text(&cfg, "{\"drain_period\":3601}", err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "drain_period: must be between 0 and 3600"), "%s", err);
	config_fini(&cfg);
	cr_expect_eq(load_text(&cfg, "{\"log_format\":\"xml\"}", err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "log_format: must be \"text\" or \"json\""), "%s", err);
	config_fini(&cfg);
	config_defaults(&cfg);
	cr_expect_eq(cfg.drain_period, 10, "the documented default");
	cr_expect_eq(cfg.log_format, LOG_FORMAT_TEXT);
	config_fini(&cfg);
	assert_no_leaks();
}
