/* listing.c: JSON arrays built from pre-encoded elements, within a byte budget. */
#include "listing.h"
#include "engine.h"
#include "message.h"
#include "proto.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer. */
struct jbuf {
	char *p;
	size_t len, cap;
};

static void
jbuf_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

char *
listing_members(const struct engine_member *members, size_t n, size_t budget, bool *truncated,
		size_t *len)
{
	struct jbuf b = { 0 };

	*truncated = false;
	jbuf_put(&b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		const struct engine_member *m = &members[i];
		size_t mlen;
		char *one = xcheck(
			proto_encode_member(m->client, m->user, m->info, m->info_len, &mlen));

		if (b.len + mlen + 2 > budget) {
			*truncated = true;
			free(one);
			break;
		}
		if (b.len > 1)
			jbuf_put(&b, ",", 1);
		jbuf_put(&b, one, mlen);
		free(one);
	}
	jbuf_put(&b, "]", 1);
	*len = b.len;
	return b.p;
}

/* {"offset":N,"data":D[,"from":F]}: the message frame's members after the channel. */
static size_t
item_head(const struct message *m, char *buf, size_t size)
{
	return (size_t)snprintf(buf, size, "{\"offset\":%" PRIu64 ",\"data\":", message_offset(m));
}

static size_t
item_len(const struct message *m)
{
	char head[48];
	size_t dlen, flen;

	message_data(m, &dlen);
	return item_head(m, head, sizeof(head)) + dlen +
	       (message_from(m, &flen) != NULL ? sizeof(",\"from\":") - 1 + flen : 0) + 1;
}

static void
put_item(struct jbuf *b, const struct message *m)
{
	char head[48];
	size_t hlen = item_head(m, head, sizeof(head)), dlen, flen;
	const char *data = message_data(m, &dlen), *from = message_from(m, &flen);

	jbuf_put(b, head, hlen);
	jbuf_put(b, data, dlen);
	if (from != NULL) {
		jbuf_put(b, ",\"from\":", sizeof(",\"from\":") - 1);
		jbuf_put(b, from, flen);
	}
	jbuf_put(b, "}", 1);
}

char *
listing_messages(struct message *const *msgs, size_t n, size_t budget, bool oldest_first,
		 bool *truncated, size_t *len)
{
	struct jbuf b = { 0 };
	size_t used = 2, k = 0, from, to;

	for (; k < n; k++) {
		size_t one = item_len(msgs[oldest_first ? k : n - 1 - k]) + 1;

		if (used + one > budget)
			break;
		used += one;
	}
	from = oldest_first ? 0 : n - k;
	to = oldest_first ? k : n;
	*truncated = k < n;
	jbuf_put(&b, "[", 1);
	for (size_t i = from; i < to; i++) {
		if (i > from)
			jbuf_put(&b, ",", 1);
		put_item(&b, msgs[i]);
	}
	jbuf_put(&b, "]", 1);
	*len = b.len;
	return b.p;
}
