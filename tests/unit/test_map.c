/* test_map.c: server/util/map.h: membership, growth, iteration and the SipHash-1-3
 * function it hashes with (checked against reference vectors). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leakcheck.h"
#include "map.h"

static const uint8_t seed[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* Values are addresses of these, so the map can be checked without allocating. */
static int values[10000];

static struct map *
new_map(void)
{
	struct map *m = map_new(seed);

	cr_assert_not_null(m);
	return m;
}

static int
key_of(char *buf, size_t size, int i)
{
	return snprintf(buf, size, "channel:%d", i);
}

Test(map, new_map_is_empty)
{
	struct map *m = new_map();

	cr_expect_eq(map_count(m), 0);
	cr_expect_null(map_find(m, "a", 1));
	cr_expect_null(map_remove(m, "a", 1));
	map_free(m);
	assert_no_leaks();
}

Test(map, added_value_is_found_by_its_key)
{
	struct map *m = new_map();

	cr_assert_eq(map_add(m, "chat:lobby", 10, &values[1]), 0);
	cr_expect_eq(map_find(m, "chat:lobby", 10), &values[1]);
	cr_expect_eq(map_count(m), 1);
	cr_expect_null(map_find(m, "chat:lobb", 9), "a prefix is another key");
	cr_expect_null(map_find(m, "chat:lobby2", 11));
	cr_expect_null(map_find(m, "CHAT:LOBBY", 10), "keys are case-sensitive");
	map_free(m);
	assert_no_leaks();
}

Test(map, adding_an_existing_key_is_eexist_and_keeps_the_first_value)
{
	struct map *m = new_map();

	cr_assert_eq(map_add(m, "k", 1, &values[1]), 0);
	cr_expect_eq(map_add(m, "k", 1, &values[2]), -EEXIST);
	cr_expect_eq(map_find(m, "k", 1), &values[1]);
	cr_expect_eq(map_count(m), 1);
	map_free(m);
	assert_no_leaks();
}

Test(map, remove_returns_the_value_once)
{
	struct map *m = new_map();

	cr_assert_eq(map_add(m, "a", 1, &values[1]), 0);
	cr_assert_eq(map_add(m, "b", 1, &values[2]), 0);
	cr_expect_eq(map_remove(m, "a", 1), &values[1]);
	cr_expect_null(map_remove(m, "a", 1));
	cr_expect_null(map_find(m, "a", 1));
	cr_expect_eq(map_find(m, "b", 1), &values[2]);
	cr_expect_eq(map_count(m), 1);
	cr_expect_eq(map_add(m, "a", 1, &values[3]), 0, "a removed key can be added again");
	cr_expect_eq(map_find(m, "a", 1), &values[3]);
	map_free(m);
	assert_no_leaks();
}

Test(map, keys_are_copied)
{
	struct map *m = new_map();
	char key[] = "mutable";

	cr_assert_eq(map_add(m, key, strlen(key), &values[1]), 0);
	memcpy(key, "changed", 7);
	cr_expect_eq(map_find(m, "mutable", 7), &values[1]);
	cr_expect_null(map_find(m, "changed", 7));
	map_free(m);
	assert_no_leaks();
}

Test(map, keys_are_byte_strings_of_the_given_length)
{
	struct map *m = new_map();

	cr_assert_eq(map_add(m, "a\0b", 3, &values[1]), 0);
	cr_assert_eq(map_add(m, "a\0c", 3, &values[2]), 0);
	cr_assert_eq(map_add(m, "a", 1, &values[3]), 0);
	cr_assert_eq(map_add(m, "", 0, &values[4]), 0);
	cr_assert_eq(map_add(m, "abc", 2, &values[5]), 0, "only len bytes are the key");
	cr_assert_eq(map_add(m, "ab", 2, &values[6]), -EEXIST);
	cr_expect_eq(map_find(m, "a\0b", 3), &values[1]);
	cr_expect_eq(map_find(m, "a\0c", 3), &values[2]);
	cr_expect_eq(map_find(m, "a", 1), &values[3]);
	cr_expect_eq(map_find(m, "", 0), &values[4]);
	cr_expect_eq(map_find(m, "abX", 2), &values[5]);
	map_free(m);
	assert_no_leaks();
}

Test(map, grows_to_ten_thousand_keys_and_finds_every_one)
{
	struct map *m = new_map();
	char key[32];
	int n;

	for (int i = 0; i < 10000; i++) {
		n = key_of(key, sizeof(key), i);
		cr_assert_eq(map_add(m, key, (size_t)n, &values[i]), 0, "%s", key);
	}
	cr_expect_eq(map_count(m), 10000);
	for (int i = 0; i < 10000; i++) {
		n = key_of(key, sizeof(key), i);
		cr_assert_eq(map_find(m, key, (size_t)n), &values[i], "%s", key);
	}
	n = key_of(key, sizeof(key), 10000);
	cr_expect_null(map_find(m, key, (size_t)n));
	/* Remove every other key; the rest must stay reachable. */
	for (int i = 0; i < 10000; i += 2) {
		n = key_of(key, sizeof(key), i);
		cr_assert_eq(map_remove(m, key, (size_t)n), &values[i], "%s", key);
	}
	cr_expect_eq(map_count(m), 5000);
	for (int i = 0; i < 10000; i++) {
		n = key_of(key, sizeof(key), i);
		if (i % 2 == 0)
			cr_assert_null(map_find(m, key, (size_t)n), "%s", key);
		else
			cr_assert_eq(map_find(m, key, (size_t)n), &values[i], "%s", key);
	}
	map_free(m);
	assert_no_leaks();
}

struct visit {
	unsigned seen[10000];
	size_t calls;
	int bad;
};

static void
count_visit(void *arg, const char *key, size_t len, void *value)
{
	struct visit *v = arg;
	int i = (int)((int *)value - values);
	char expect[32];
	int n;

	v->calls++;
	if (i < 0 || i >= 10000) {
		v->bad++;
		return;
	}
	n = key_of(expect, sizeof(expect), i);
	if ((size_t)n != len || memcmp(expect, key, len) != 0)
		v->bad++;
	v->seen[i]++;
}

Test(map, foreach_visits_every_entry_once_with_its_key)
{
	struct map *m = new_map();
	struct visit *v = calloc(1, sizeof(*v));
	char key[32];

	cr_assert_not_null(v);
	for (int i = 0; i < 3000; i++) {
		int n = key_of(key, sizeof(key), i);

		cr_assert_eq(map_add(m, key, (size_t)n, &values[i]), 0);
	}
	for (int i = 0; i < 3000; i += 3) {
		int n = key_of(key, sizeof(key), i);

		cr_assert_not_null(map_remove(m, key, (size_t)n));
	}
	map_foreach(m, count_visit, v);
	cr_expect_eq(v->calls, 2000);
	cr_expect_eq(v->bad, 0, "foreach passed a key that does not match its value");
	for (int i = 0; i < 3000; i++)
		cr_expect_eq(v->seen[i], i % 3 == 0 ? 0u : 1u, "entry %d seen %u times", i,
			     v->seen[i]);
	free(v);
	map_free(m);
	assert_no_leaks();
}

Test(map, foreach_on_an_empty_map_calls_nothing)
{
	struct map *m = new_map();
	struct visit *v = calloc(1, sizeof(*v));

	cr_assert_not_null(v);
	map_foreach(m, count_visit, v);
	cr_expect_eq(v->calls, 0);
	free(v);
	map_free(m);
	assert_no_leaks();
}

Test(map, free_of_null_is_a_no_op)
{
	map_free(NULL);
}

Test(map, free_does_not_touch_values)
{
	struct map *m = new_map();
	char *owned = strdup("value");

	cr_assert_eq(map_add(m, "k", 1, owned), 0);
	map_free(m);
	cr_expect_str_eq(owned, "value");
	free(owned);
	assert_no_leaks();
}

Test(map, maps_with_different_seeds_agree_on_contents)
{
	static const uint8_t other[16] = { 0xff };
	struct map *a = map_new(seed), *b = map_new(other);
	char key[32];

	for (int i = 0; i < 500; i++) {
		int n = key_of(key, sizeof(key), i);

		cr_assert_eq(map_add(a, key, (size_t)n, &values[i]), 0);
		cr_assert_eq(map_add(b, key, (size_t)n, &values[i]), 0);
	}
	for (int i = 0; i < 500; i++) {
		int n = key_of(key, sizeof(key), i);

		cr_assert_eq(map_find(a, key, (size_t)n), map_find(b, key, (size_t)n));
	}
	map_free(a);
	map_free(b);
	assert_no_leaks();
}

/* Reference values from an independent SipHash-1-3 implementation, key 00 01 .. 0f and
 * message 00 01 .. (len-1); the same implementation reproduces the SipHash-2-4
 * reference vectors (0x726fdb47dd0e0e31 for the empty message). */
Test(siphash, matches_siphash_1_3_reference_values)
{
	static const struct {
		size_t len;
		uint64_t hash;
	} vectors[] = {
		{ 0, 0xabac0158050fc4dcULL },  { 1, 0xc9f49bf37d57ca93ULL },
		{ 7, 0xd3927d989bb11140ULL },  { 8, 0x369095118d299a8eULL },
		{ 9, 0x25a48eb36c063de4ULL },  { 15, 0xd320d86d2a519956ULL },
		{ 16, 0xcc4fdd1a7d908b66ULL }, { 63, 0x9d199062b7bbb3a8ULL },
	};
	uint8_t key[16], msg[64];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		cr_expect_eq(map_siphash(key, msg, vectors[i].len), vectors[i].hash,
			     "len %zu: 0x%016llx", vectors[i].len,
			     (unsigned long long)map_siphash(key, msg, vectors[i].len));
}

Test(siphash, zero_key_values_match_other_implementations)
{
	static const uint8_t zero[16];

	cr_expect_eq(map_siphash(zero, "", 0), 0xd1fba762150c532cULL);
	cr_expect_eq(map_siphash(zero, "siphash", 7), 0x8264ceeccb16bcbeULL);
}

Test(siphash, depends_on_the_key)
{
	static const uint8_t other[16] = { 1 };

	cr_expect_neq(map_siphash(seed, "chat:lobby", 10), map_siphash(other, "chat:lobby", 10));
	cr_expect_eq(map_siphash(seed, "chat:lobby", 10), map_siphash(seed, "chat:lobby", 10));
}
