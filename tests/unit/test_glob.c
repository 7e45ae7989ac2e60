/* test_glob.c: channel patterns of token claims ("channels", "publish"). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"
#include "leakcheck.h"

/* Matches against a NUL-terminated subject. */
static bool
match(const char *pattern, const char *s)
{
	return glob_match(pattern, s, strlen(s));
}

Test(glob, exact_name_matches_only_itself)
{
	cr_expect(match("chat:lobby", "chat:lobby"));
	cr_expect_not(match("chat:lobby", "chat:lobb"));
	cr_expect_not(match("chat:lobby", "chat:lobby2"));
	cr_expect_not(match("chat:lobby", "Chat:lobby"));
	cr_expect_not(match("chat:lobby", ""));
}

Test(glob, star_at_the_end_matches_any_suffix)
{
	cr_expect(match("secret:team-*", "secret:team-a"));
	cr_expect(match("secret:team-*", "secret:team-"));
	cr_expect(match("secret:team-*", "secret:team-a:b:c"));
	cr_expect_not(match("secret:team-*", "secret:team"));
	cr_expect_not(match("secret:team-*", "secret:other-a"));
}

Test(glob, star_at_the_start_matches_any_prefix)
{
	cr_expect(match("*:lobby", "chat:lobby"));
	cr_expect(match("*:lobby", ":lobby"));
	cr_expect(match("*lobby", "lobby"));
	cr_expect_not(match("*:lobby", "chat:lobby2"));
}

Test(glob, star_in_the_middle_matches_any_run)
{
	cr_expect(match("chat:*:room", "chat:a:room"));
	cr_expect(match("chat:*:room", "chat::room"));
	cr_expect(match("chat:*:room", "chat:a:b:room"));
	cr_expect(match("a*b*c", "abc"));
	cr_expect(match("a*b*c", "axxbyyc"));
	cr_expect(match("a*b*c", "abcbc"));
	cr_expect_not(match("a*b*c", "acb"));
	cr_expect_not(match("chat:*:room", "chat:room"));
}

Test(glob, star_crosses_colons)
{
	cr_expect(match("*", "a:b:c"));
	cr_expect(match("chat*", "chat:lobby"));
	cr_expect(match("c*y", "chat:lobby"));
}

Test(glob, lone_star_matches_everything_including_empty)
{
	cr_expect(match("*", ""));
	cr_expect(match("*", "x"));
	cr_expect(match("**", ""));
	cr_expect(match("***", "chat:lobby"));
}

Test(glob, question_mark_matches_exactly_one_byte)
{
	cr_expect(match("chat:room-?", "chat:room-1"));
	cr_expect(match("chat:room-?", "chat:room-:"));
	cr_expect_not(match("chat:room-?", "chat:room-"));
	cr_expect_not(match("chat:room-?", "chat:room-12"));
	cr_expect(match("???", "abc"));
	cr_expect_not(match("???", "ab"));
	cr_expect_not(match("?", ""));
	cr_expect(match("?*", "a"));
	cr_expect_not(match("?*", ""));
	cr_expect(match("*?", "ab"));
	cr_expect(match("a?c*", "abcdef"));
}

Test(glob, empty_pattern_matches_only_the_empty_name)
{
	cr_expect(match("", ""));
	cr_expect_not(match("", "a"));
	cr_expect_not(match("", ":"));
}

Test(glob, subject_is_bounded_by_len_not_by_nul)
{
	const char s[] = "chat:lobby-and-more";

	cr_expect(glob_match("chat:lobby", s, 10));
	cr_expect_not(glob_match("chat:lobby", s, 9));
	cr_expect(glob_match("chat:*", s, 5));
	cr_expect(glob_match("", s, 0));
	cr_expect_not(glob_match("chat:lobby-and-more?", s, strlen(s)));
}

Test(glob, nul_byte_in_subject_is_an_ordinary_byte)
{
	const char s[] = { 'a', '\0', 'b' };

	cr_expect(glob_match("a?b", s, sizeof(s)));
	cr_expect(glob_match("a*", s, sizeof(s)));
	cr_expect(glob_match("*b", s, sizeof(s)));
	cr_expect_not(glob_match("ab", s, sizeof(s)));
	cr_expect_not(glob_match("a", s, sizeof(s)));
}

Test(glob, backtracking_retries_after_a_partial_match)
{
	cr_expect(match("*ab", "aab"));
	cr_expect(match("*aab", "aaab"));
	cr_expect(match("a*ab", "aaab"));
	cr_expect(match("*a?c", "abxabc"));
	cr_expect_not(match("*abd", "abcabc"));
}

/* A recursive matcher takes exponential time here; ours must stay O(n x m). */
Test(glob, pathological_patterns_finish_fast, .timeout = 5)
{
	size_t n = 200000;
	char *s = malloc(n + 2);

	cr_assert_not_null(s);
	memset(s, 'a', n);
	s[n] = '\0';
	cr_expect_not(glob_match("a*a*a*a*a*b", s, n));
	cr_expect_not(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s, n));
	cr_expect_not(glob_match("*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", s, n));
	cr_expect(glob_match("a*a*a*a*a*a", s, n));
	cr_expect(glob_match("*?*?*?*?*?*?*", s, n));
	s[n] = 'b';
	cr_expect(glob_match("a*a*a*a*a*b", s, n + 1));
	cr_expect(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s, n + 1));
	free(s);
	assert_no_leaks();
}
