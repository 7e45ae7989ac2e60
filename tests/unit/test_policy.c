/* test_policy.c: server/core/policy.h: which namespace rules a channel name gets. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "leakcheck.h"
#include "policy.h"

static const struct ns_policy *
rules(const struct policy *p, const char *channel)
{
	return policy_for_channel(p, channel, strlen(channel));
}

Test(policy, new_policy_has_a_default_namespace_for_every_channel)
{
	struct policy *p = policy_new();

	cr_assert_not_null(p);
	cr_assert_not_null(rules(p, "lobby"));
	cr_expect_eq(rules(p, "lobby")->publish, POLICY_PUBLISH_SUBSCRIBERS);
	cr_expect_eq(rules(p, "chat:lobby"), rules(p, "lobby"),
		     "unknown namespace uses the default");
	cr_expect_eq(rules(p, ":x"), rules(p, "lobby"));
	policy_free(p);
	assert_no_leaks();
}

Test(policy, configured_namespace_is_the_part_before_the_first_colon)
{
	struct policy *p = policy_new();

	policy_set_namespace(p, "chat")->publish = POLICY_PUBLISH_CLIENTS;
	policy_set_namespace(p, "feed")->publish = POLICY_PUBLISH_NONE;
	cr_expect_eq(rules(p, "chat:lobby")->publish, POLICY_PUBLISH_CLIENTS);
	cr_expect_eq(rules(p, "chat:a:b")->publish, POLICY_PUBLISH_CLIENTS);
	cr_expect_eq(rules(p, "chat:")->publish, POLICY_PUBLISH_CLIENTS);
	cr_expect_eq(rules(p, "feed:x")->publish, POLICY_PUBLISH_NONE);
	cr_expect_str_eq(rules(p, "feed:x")->name, "feed");
	cr_expect_eq(rules(p, "chat")->publish, POLICY_PUBLISH_SUBSCRIBERS,
		     "a bare name is in the default namespace, even if it names a namespace");
	cr_expect_eq(rules(p, "chatter:x")->publish, POLICY_PUBLISH_SUBSCRIBERS, "no prefix match");
	cr_expect_eq(rules(p, "cha:x")->publish, POLICY_PUBLISH_SUBSCRIBERS, "no prefix match");
	cr_expect_eq(rules(p, "x:chat:y")->publish, POLICY_PUBLISH_SUBSCRIBERS);
	policy_free(p);
	assert_no_leaks();
}

Test(policy, only_len_bytes_of_the_name_count)
{
	struct policy *p = policy_new();

	policy_set_namespace(p, "chat")->publish = POLICY_PUBLISH_NONE;
	cr_expect_eq(policy_for_channel(p, "chat:x", 6)->publish, POLICY_PUBLISH_NONE);
	cr_expect_eq(policy_for_channel(p, "chat:x", 4)->publish, POLICY_PUBLISH_SUBSCRIBERS,
		     "\"chat\" (4 bytes) has no colon");
	policy_free(p);
	assert_no_leaks();
}

Test(policy, setting_a_namespace_again_replaces_it)
{
	struct policy *p = policy_new();

	policy_set_namespace(p, "chat")->publish = POLICY_PUBLISH_NONE;
	policy_set_namespace(p, "chat")->publish = POLICY_PUBLISH_CLIENTS;
	cr_expect_eq(rules(p, "chat:x")->publish, POLICY_PUBLISH_CLIENTS);
	policy_free(p);
	assert_no_leaks();
}

Test(policy, cleared_default_refuses_unknown_namespaces)
{
	struct policy *p = policy_new();

	policy_set_namespace(p, "chat");
	policy_clear_default(p);
	cr_expect_null(rules(p, "lobby"));
	cr_expect_null(rules(p, "other:x"));
	cr_expect_null(rules(p, ":x"));
	cr_expect_not_null(rules(p, "chat:x"));
	policy_clear_default(p);
	policy_set_default(p)->publish = POLICY_PUBLISH_CLIENTS;
	cr_expect_eq(rules(p, "other:x")->publish, POLICY_PUBLISH_CLIENTS);
	cr_expect_eq(policy_set_default(p), rules(p, "other:x"),
		     "set_default returns the same entry");
	policy_free(p);
	assert_no_leaks();
}

Test(policy, many_namespaces)
{
	struct policy *p = policy_new();
	char name[32], channel[40];

	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "ns%d", i);
		policy_set_namespace(p, name)->publish = (enum policy_publish)(i % 3);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(channel, sizeof(channel), "ns%d:x", i);
		cr_assert_eq(rules(p, channel)->publish, (enum policy_publish)(i % 3), "%s",
			     channel);
	}
	policy_free(p);
	assert_no_leaks();
}

Test(policy, publish_rule_names_round_trip)
{
	static const char *const names[] = { "subscribers", "clients", "none" };
	enum policy_publish v;

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(policy_publish_parse(names[i], &v), 0, "%s", names[i]);
		cr_expect_str_eq(policy_publish_name(v), names[i]);
	}
	cr_expect_eq(policy_publish_parse("everyone", &v), -1);
	cr_expect_eq(policy_publish_parse("", &v), -1);
	cr_expect_eq(policy_publish_parse("Clients", &v), -1);
}

Test(policy, free_of_null_is_a_no_op)
{
	policy_free(NULL);
}

/* ---- issue 3: the rules beyond publish ---- */

Test(policy, built_in_default_has_presence_join_leave_and_history)
{
	struct policy *p = policy_new();
	const struct ns_policy *ns = rules(p, "lobby");

	cr_expect_str_eq(ns->name, "");
	cr_expect(ns->presence);
	cr_expect(ns->join_leave);
	cr_expect_eq(ns->history_size, 100);
	cr_expect_eq(ns->history_ttl, 3600);
	cr_expect_not(ns->private_ns);
	cr_expect(ns->allow_anonymous);
	policy_free(p);
	assert_no_leaks();
}

Test(policy, configured_namespace_defaults_are_all_off)
{
	struct policy *p = policy_new();
	struct ns_policy *ns = policy_set_namespace(p, "chat");

	cr_expect_str_eq(ns->name, "chat");
	cr_expect_eq(ns->publish, POLICY_PUBLISH_SUBSCRIBERS);
	cr_expect_not(ns->presence);
	cr_expect_not(ns->join_leave);
	cr_expect_eq(ns->history_size, 0);
	cr_expect_eq(ns->history_ttl, 0);
	cr_expect_not(ns->private_ns);
	cr_expect(ns->allow_anonymous);
	/* Setting it again starts over from these defaults. */
	ns->presence = true;
	ns->history_size = 9;
	ns = policy_set_namespace(p, "chat");
	cr_expect_not(ns->presence);
	cr_expect_eq(ns->history_size, 0);
	policy_free(p);
	assert_no_leaks();
}

Test(policy, reset_default_uses_the_configured_namespace_defaults)
{
	struct policy *p = policy_new();
	struct ns_policy *ns = policy_reset_default(p);

	cr_expect_eq(rules(p, "lobby"), ns);
	cr_expect_eq(rules(p, "x:y"), ns);
	cr_expect_not(ns->presence);
	cr_expect_not(ns->join_leave);
	cr_expect_eq(ns->history_size, 0);
	cr_expect(ns->allow_anonymous);
	/* set_default keeps an existing entry as it is. */
	cr_expect_eq(policy_set_default(p), ns);
	cr_expect_not(policy_set_default(p)->presence);
	/* After a clear, set_default creates the built-in one again. */
	policy_clear_default(p);
	cr_expect(policy_set_default(p)->presence);
	cr_expect_eq(policy_set_default(p)->history_size, 100);
	policy_free(p);
	assert_no_leaks();
}
