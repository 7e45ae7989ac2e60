/* message.c: one allocation per message: the struct, then channel, data and from, each
 * NUL-terminated, so that a message costs one malloc and one free. */
#include "message.h"
#include "xalloc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct message {
	atomic_uint refs;
	bool has_from;
	uint64_t offset;
	uint64_t time_ms;
	size_t channel_len, data_len, from_len;
	char epoch[MESSAGE_EPOCH_LEN + 1];
	char bytes[]; /* channel \0 data \0 from \0 */
};

struct message *
message_new(const char *channel, size_t channel_len, const char *data, size_t data_len,
	    const char *from, size_t from_len, uint64_t offset, const char *epoch, uint64_t time_ms)
{
	size_t flen = from != NULL ? from_len : 0;
	struct message *m = xmalloc(sizeof(*m) + channel_len + data_len + flen + 3);
	char *p = m->bytes;

	atomic_init(&m->refs, 1);
	m->has_from = from != NULL;
	m->offset = offset;
	m->time_ms = time_ms;
	m->channel_len = channel_len;
	m->data_len = data_len;
	m->from_len = flen;
	memset(m->epoch, 0, sizeof(m->epoch));
	if (epoch != NULL)
		strncpy(m->epoch, epoch, MESSAGE_EPOCH_LEN);
	memcpy(p, channel, channel_len), p += channel_len, *p++ = '\0';
	memcpy(p, data, data_len), p += data_len, *p++ = '\0';
	if (flen > 0)
		memcpy(p, from, flen);
	p[flen] = '\0';
	return m;
}

struct message *
message_ref(struct message *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void
message_unref(struct message *m)
{
	if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}

const char *
message_channel(const struct message *m, size_t *len)
{
	*len = m->channel_len;
	return m->bytes;
}

const char *
message_data(const struct message *m, size_t *len)
{
	*len = m->data_len;
	return m->bytes + m->channel_len + 1;
}

const char *
message_from(const struct message *m, size_t *len)
{
	*len = m->from_len;
	return m->has_from ? m->bytes + m->channel_len + m->data_len + 2 : NULL;
}

uint64_t
message_offset(const struct message *m)
{
	return m->offset;
}

const char *
message_epoch(const struct message *m)
{
	return m->epoch;
}

uint64_t
message_time_ms(const struct message *m)
{
	return m->time_ms;
}

size_t
message_size(const struct message *m)
{
	return sizeof(*m) + m->channel_len + m->data_len + m->from_len + 3;
}
