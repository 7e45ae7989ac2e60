/* pending.c: the table of operations in flight: a map from the cookie's 8 bytes to the
 * operation, which the table owns. */
#include "pending.h"
#include "frame.h"
#include "map.h"
#include "message.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending_table {
	struct map *ops; /* cookie (8 bytes) -> struct pending (owned) */
	uint64_t next_cookie;
};

struct pending_table *
pending_table_new(const uint8_t seed[16])
{
	struct pending_table *t = xcalloc(1, sizeof(*t));

	t->ops = map_new(seed);
	return t;
}

void
pending_drop_kept(struct pending *op)
{
	struct pending_kept *k, *next;

	for (k = op->kept; k != NULL; k = next) {
		next = k->next;
		message_unref(k->msg);
		frame_unref(k->f);
		free(k);
	}
	op->kept = op->kept_tail = NULL;
	op->nkept = 0;
	op->kept_bytes = 0;
}

static void
op_free(struct pending *op)
{
	pending_drop_kept(op);
	json_decref(op->id);
	free(op->channel);
	free(op);
}

static void
free_one(void *arg, const char *key, size_t len, void *value)
{
	(void)arg, (void)key, (void)len;
	op_free(value);
}

void
pending_table_free(struct pending_table *t)
{
	if (t == NULL)
		return;
	map_foreach(t->ops, free_one, NULL);
	map_free(t->ops);
	free(t);
}

struct pending *
pending_add(struct pending_table *t, enum pending_kind kind)
{
	struct pending *op = xcalloc(1, sizeof(*op));

	op->cookie = ++t->next_cookie;
	op->kind = kind;
	map_add(t->ops, (const char *)&op->cookie, sizeof(op->cookie), op);
	return op;
}

struct pending *
pending_find(struct pending_table *t, uint64_t cookie)
{
	return map_find(t->ops, (const char *)&cookie, sizeof(cookie));
}

void
pending_remove(struct pending_table *t, struct pending *op)
{
	map_remove(t->ops, (const char *)&op->cookie, sizeof(op->cookie));
	op_free(op);
}

size_t
pending_count(const struct pending_table *t)
{
	return map_count(t->ops);
}

void
pending_set_since(struct pending *op, const char *epoch)
{
	if (strlen(epoch) > ENGINE_EPOCH_LEN)
		epoch = "-";
	memcpy(op->since_epoch, epoch, strlen(epoch) + 1);
	op->q.since_epoch = op->since_epoch;
}

void
pending_keep(struct pending *op, struct message *msg, struct frame *f, size_t bytes,
	     const char *reset_epoch)
{
	struct pending_kept *k = xcalloc(1, sizeof(*k));

	k->msg = msg != NULL ? message_ref(msg) : NULL;
	k->f = f != NULL ? frame_ref(f) : NULL;
	k->next = NULL;
	if (reset_epoch != NULL) {
		k->reset = true;
		snprintf(k->epoch, sizeof(k->epoch), "%s", reset_epoch);
	}
	if (op->kept_tail != NULL)
		op->kept_tail->next = k;
	else
		op->kept = k;
	op->kept_tail = k;
	op->nkept++;
	op->kept_bytes += bytes;
}
