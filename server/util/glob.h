/* glob.h: channel-name patterns of token claims ("channels", "publish").
 * '*' matches any run of bytes (including ':' and the empty run), '?' exactly one byte,
 * every other byte itself. Matching is linear-time backtracking (no exponential cases). */
#ifndef SWITCHBOARD_GLOB_H
#define SWITCHBOARD_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* True if the NUL-terminated pattern matches s (len bytes). */
bool glob_match(const char *pattern, const char *s, size_t len);

#endif
