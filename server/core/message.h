/* message.h: one published message, immutable once made: channel, offset, epoch, the
 * exact JSON text of its data, the encoded "from" object and the time it was published.
 * Engines keep messages in history and hand them to the hub; the hub encodes each into a
 * frame per dialect (frame.h). The reference count is atomic, so a message may cross
 * threads; everything else about it is read-only after message_new(). */
#ifndef SWITCHBOARD_MESSAGE_H
#define SWITCHBOARD_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#define MESSAGE_EPOCH_LEN 16

struct message;

/* A new message (one reference) holding copies of every byte given; from may be NULL.
 * epoch is at most MESSAGE_EPOCH_LEN characters. */
struct message *message_new(const char *channel, size_t channel_len, const char *data,
			    size_t data_len, const char *from, size_t from_len, uint64_t offset,
			    const char *epoch, uint64_t time_ms);

struct message *message_ref(struct message *m); /* returns m */
void message_unref(struct message *m);		/* NULL-safe; frees at zero */

/* Read-only views, valid while a reference is held. Strings are NUL-terminated. */
const char *message_channel(const struct message *m, size_t *len);
const char *message_data(const struct message *m, size_t *len);
const char *message_from(const struct message *m, size_t *len); /* NULL: none */
uint64_t message_offset(const struct message *m);
const char *message_epoch(const struct message *m);
uint64_t message_time_ms(const struct message *m);
/* Bytes the message occupies (what history budgets count). */
size_t message_size(const struct message *m);

#endif
