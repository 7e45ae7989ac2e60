/* listing.h: presence and history lists as JSON array text within a byte budget, shared
 * by the native replies and the HTTP API, so that a reply never exceeds what a client
 * or a proxy accepts. */
#ifndef SWITCHBOARD_LISTING_H
#define SWITCHBOARD_LISTING_H

#include <stdbool.h>
#include <stddef.h>

struct engine_member;
struct message;

/* [{"client","user"[,"info"]},...] of members[0..n) while it fits budget bytes; sets
 * *truncated when some were left out. A new malloc'd text of *len bytes. */
char *listing_members(const struct engine_member *members, size_t n, size_t budget, bool *truncated,
		      size_t *len);

/* [{"offset","data"[,"from"]},...] of msgs[0..n) (oldest first) within budget bytes:
 * with oldest_first the oldest that fit (a client paging on with since), otherwise the
 * newest; always in offset order. Sets *truncated when some were left out. A new
 * malloc'd text of *len bytes. */
char *listing_messages(struct message *const *msgs, size_t n, size_t budget, bool oldest_first,
		       bool *truncated, size_t *len);

#endif
