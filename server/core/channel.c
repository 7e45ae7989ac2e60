/* channel.c: the channel registry and the two-way subscription index (internal.h).
 *
 * A channel exists while it has at least one local subscriber. Opening one subscribes
 * this node at the engine; until the engine confirms (inline for memory), the channel
 * is not live and its subscribers wait to ask for history (two-phase subscribe). */
#include "engine.h"
#include "internal.h"
#include "log.h"
#include "map.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

struct channel *
channel_find(struct hub *hub, const char *name, size_t len)
{
	return map_find(hub->channels, name, len);
}

struct channel *
channel_open(struct hub *hub, const char *name, size_t len, const struct ns_policy *ns)
{
	struct channel *ch = channel_find(hub, name, len);
	struct pending *op;

	if (ch != NULL)
		return ch;
	ch = xcalloc(1, sizeof(*ch));
	ch->name = xstrndup(name, len);
	ch->name_len = len;
	ch->serial = ++hub->next_channel;
	ch->ns = ns;
	map_add(hub->channels, ch->name, len, ch);
	events_channel(hub, "channel_occupied", ch->name, len);
	/* Not bounded by PENDING_MAX: there is at most one per channel. */
	op = pending_add(hub->pending, PENDING_CHANNEL);
	op->hub = hub;
	op->channel = xstrndup(name, len);
	op->channel_len = len;
	op->channel_serial = ch->serial;
	engine_subscribe(hub->engine, ch->name, len, hub_op_complete, op);
	return ch;
}

void
channel_close_if_empty(struct hub *hub, struct channel *ch)
{
	if (ch->nmembers > 0)
		return;
	/* Every catching-up member cancelled its operation when it left. */
	map_remove(hub->channels, ch->name, ch->name_len);
	engine_unsubscribe(hub->engine, ch->name, ch->name_len);
	events_channel(hub, "channel_vacated", ch->name, ch->name_len);
	free(ch->members);
	free(ch->name);
	free(ch);
}

int
sub_index(const struct session *s, const struct channel *ch)
{
	for (uint32_t j = 0; j < s->nsubs; j++)
		if (s->subs[j].ch == ch)
			return (int)j;
	return -1;
}

uint32_t
sub_add(struct session *s, struct channel *ch, bool catching_up)
{
	if (ch->nmembers == ch->cap) {
		ch->cap = ch->cap ? ch->cap * 2 : 4;
		ch->members = xrealloc(ch->members, ch->cap * sizeof(*ch->members));
	}
	if (s->nsubs == s->capsubs) {
		s->capsubs = s->capsubs ? s->capsubs * 2 : 4;
		s->subs = xrealloc(s->subs, s->capsubs * sizeof(*s->subs));
	}
	ch->members[ch->nmembers] = (struct member){ .s = s,
						     .sub_idx = s->nsubs,
						     .catching_up = catching_up,
						     .dialect = (uint8_t)s->dialect->index };
	s->subs[s->nsubs] = (struct subref){ .ch = ch, .member_idx = ch->nmembers };
	ch->nmembers++;
	s->stats->subscriptions++;
	return s->nsubs++;
}

struct member *
sub_member(struct session *s, uint32_t j)
{
	return &s->subs[j].ch->members[s->subs[j].member_idx];
}

/* Each side swaps its last entry into the hole and fixes that entry's back index. The
 * member moved on the channel side never belongs to s (s has one entry per channel), so
 * the session-side move below still sees a current member_idx. */
void
sub_remove(struct session *s, uint32_t j)
{
	struct channel *ch = s->subs[j].ch;
	uint32_t i = s->subs[j].member_idx;

	ch->nmembers--;
	s->stats->subscriptions--;
	if (i != ch->nmembers) {
		struct member moved = ch->members[ch->nmembers];

		ch->members[i] = moved;
		moved.s->subs[moved.sub_idx].member_idx = i;
	}
	s->nsubs--;
	if (j != s->nsubs) {
		struct subref moved = s->subs[s->nsubs];

		s->subs[j] = moved;
		moved.ch->members[moved.member_idx].sub_idx = j;
	}
}
