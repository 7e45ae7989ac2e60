/* frame.h: an encoded, immutable server message, shared by every receiver.
 * The WebSocket header (unmasked text frame) is built once, right in front of the
 * payload, so that any number of frames queued for one socket can be written with one
 * raw write (see docs/architecture.md). A frame is created with one reference; whoever
 * keeps it takes another. No transport types here: the header is plain RFC 6455. */
#ifndef SWITCHBOARD_FRAME_H
#define SWITCHBOARD_FRAME_H

#include <stddef.h>

struct frame;

/* A new frame (one reference) holding a copy of the payload (len bytes of JSON text). */
struct frame *frame_new_text(const char *payload, size_t len);

/* The bytes to put on the wire: the WebSocket header followed by the payload. */
const unsigned char *frame_wire(const struct frame *f, size_t *len);
/* The payload alone (NUL-terminated for convenience). */
const char *frame_payload(const struct frame *f, size_t *len);
size_t frame_wire_len(const struct frame *f);

struct frame *frame_ref(struct frame *f); /* returns f */
void frame_unref(struct frame *f);	  /* NULL-safe; frees at zero */

#endif
