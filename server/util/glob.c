/* glob.c: '*' and '?' matching for channel patterns.
 * The classic iterative matcher: only the most recent '*' is a backtrack point, because a
 * later '*' can absorb anything an earlier one would have. Time is O(pattern x subject)
 * at worst, never exponential; no recursion, no allocation. */
#include "glob.h"

bool
glob_match(const char *pattern, const char *s, size_t len)
{
	const char *p = pattern;
	const char *star = NULL;  /* pattern position just after the last '*' */
	size_t i = 0, resume = 0; /* subject position that '*' currently stops at */

	while (i < len) {
		if (*p == '*') {
			star = ++p;
			resume = i;
		} else if (*p != '\0' && (*p == '?' || *p == s[i])) {
			p++;
			i++;
		} else if (star != NULL) {
			/* Let the last '*' swallow one more byte and retry from there. */
			p = star;
			i = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}
