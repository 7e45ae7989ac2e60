/* test_listing.c: presence and history lists within a byte budget. A history element
 * is the message frame's members after the channel: {"offset","data"[,"from"]}, the very
 * bytes a subscriber got, data untouched. */
#include "engine.h"
#include "leakcheck.h"
#include "listing.h"
#include "message.h"
#include "proto.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct message *
msg(const char *channel, uint64_t offset, const char *data, const char *from)
{
	return message_new(channel, strlen(channel), data, strlen(data), from,
			   from != NULL ? strlen(from) : 0, offset, "0123456789abcdef", 0);
}

Test(listing, history_elements_are_the_message_frame_after_its_channel)
{
	static const char *const channels[] = { "a", "chat:lobby", "x:y:z", ":x" };
	size_t flen;
	char *from = proto_encode_from("c-1", "alice", &flen);

	cr_assert_not_null(from);
	for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
		struct message *m = msg(channels[i], 12, "{\"text\":\"hi\",\"n\":1.50}", from);
		size_t len, alen, head;
		char *frame = proto_encode_message(channels[i], 12, "{\"text\":\"hi\",\"n\":1.50}",
						   22, from, flen, &len);
		bool truncated = true;
		char *arr = listing_messages(&m, 1, 1 << 20, false, &truncated, &alen);
		char *want;

		head = strlen("{\"type\":\"message\",\"channel\":\"") + strlen(channels[i]) + 2;
		want = malloc(len - head + 4);
		snprintf(want, len - head + 4, "[{%s]", frame + head);
		cr_expect_str_eq(arr, want);
		cr_expect_eq(alen, strlen(want));
		cr_expect_not(truncated);
		free(want);
		free(arr);
		free(frame);
		message_unref(m);
	}
	free(from);
	assert_no_leaks();
}

Test(listing, the_budget_keeps_the_newest_or_with_since_the_oldest)
{
	struct message *m[5];
	bool truncated;
	size_t len;
	char *arr;
	json_t *j;

	for (int i = 0; i < 5; i++)
		m[i] = msg("c", (uint64_t)i + 1, "\"0123456789\"", NULL);
	/* Each element is {"offset":N,"data":"0123456789"} = 34 bytes, plus a comma. */
	arr = listing_messages(m, 5, 2 + 3 * 35, false, &truncated, &len);
	j = json_loads(arr, 0, NULL);
	cr_assert_not_null(j, "%s", arr);
	cr_expect(truncated);
	cr_expect_eq(json_array_size(j), 3);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(j, 0), "offset")), 3);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(j, 2), "offset")), 5);
	cr_expect_leq(len, 2 + 3 * 35);
	json_decref(j);
	free(arr);
	arr = listing_messages(m, 5, 2 + 3 * 35, true, &truncated, &len);
	j = json_loads(arr, 0, NULL);
	cr_expect(truncated);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(j, 0), "offset")), 1);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(j, 2), "offset")), 3);
	json_decref(j);
	free(arr);
	arr = listing_messages(m, 5, 1 << 20, true, &truncated, &len);
	cr_expect_not(truncated);
	free(arr);
	arr = listing_messages(m, 0, 100, false, &truncated, &len);
	cr_expect_str_eq(arr, "[]");
	free(arr);
	for (int i = 0; i < 5; i++)
		message_unref(m[i]);
	assert_no_leaks();
}

Test(listing, members_stop_at_the_budget)
{
	struct engine_member mb[3] = {
		{ "n-1", "alice", "{\"k\":1}", 7 },
		{ "n-2", "bob", NULL, 0 },
		{ "n-3", "eve", NULL, 0 },
	};
	bool truncated;
	size_t len;
	char *arr = listing_members(mb, 3, 1000, &truncated, &len);
	json_t *j = json_loads(arr, 0, NULL);

	cr_assert_not_null(j, "%s", arr);
	cr_expect_not(truncated);
	cr_expect_eq(json_array_size(j), 3);
	cr_expect_eq(json_integer_value(
			     json_object_get(json_object_get(json_array_get(j, 0), "info"), "k")),
		     1);
	json_decref(j);
	free(arr);
	arr = listing_members(mb, 3, 60, &truncated, &len);
	cr_expect(truncated);
	cr_expect_leq(len, 60);
	free(arr);
	assert_no_leaks();
}

Test(message, keeps_every_byte_and_counts_references)
{
	struct message *m = message_new("ch", 2, "{\"a\":\"\\u0000\"}", 14, NULL, 0, 7, "e", 99);
	size_t len;

	cr_expect_str_eq(message_channel(m, &len), "ch");
	cr_expect_eq(len, 2);
	cr_expect_eq(memcmp(message_data(m, &len), "{\"a\":\"\\u0000\"}", 14), 0);
	cr_expect_eq(len, 14);
	cr_expect_null(message_from(m, &len));
	cr_expect_eq(message_offset(m), 7);
	cr_expect_str_eq(message_epoch(m), "e");
	cr_expect_eq(message_time_ms(m), 99);
	cr_expect_eq(message_ref(m), m);
	message_unref(m);
	message_unref(m);
	message_unref(NULL);
	assert_no_leaks();
}
