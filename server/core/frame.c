/* frame.c: see frame.h. Layout of buf: [up to 10 header bytes][payload]['\0']; the
 * header is right-aligned against the payload so the wire bytes are contiguous. */
#include "frame.h"
#include "xalloc.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HDR_MAX 10

struct frame {
	unsigned refs;
	unsigned char hdr_len;
	size_t len;
	unsigned char buf[];
};

struct frame *
frame_new_text(const char *payload, size_t len)
{
	struct frame *f = xmalloc(sizeof(*f) + HDR_MAX + len + 1);
	unsigned char *h;

	f->refs = 1;
	f->len = len;
	memcpy(f->buf + HDR_MAX, payload, len);
	f->buf[HDR_MAX + len] = '\0';
	if (len < 126) {
		f->hdr_len = 2;
		h = f->buf + HDR_MAX - 2;
		h[1] = (unsigned char)len;
	} else if (len <= 0xffff) {
		f->hdr_len = 4;
		h = f->buf + HDR_MAX - 4;
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
	} else {
		f->hdr_len = 10;
		h = f->buf;
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	h[0] = 0x81; /* FIN | text */
	return f;
}

const unsigned char *
frame_wire(const struct frame *f, size_t *len)
{
	*len = f->hdr_len + f->len;
	return f->buf + HDR_MAX - f->hdr_len;
}

size_t
frame_wire_len(const struct frame *f)
{
	return f->hdr_len + f->len;
}

const char *
frame_payload(const struct frame *f, size_t *len)
{
	if (len != NULL)
		*len = f->len;
	return (const char *)f->buf + HDR_MAX;
}

struct frame *
frame_ref(struct frame *f)
{
	f->refs++;
	return f;
}

void
frame_unref(struct frame *f)
{
	if (f == NULL)
		return;
	assert(f->refs > 0);
	if (--f->refs == 0)
		free(f);
}
