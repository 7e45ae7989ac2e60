/* session.c: the bounded per-connection send queue. The queue holds frame references
 * only; the transport writes them out and pops them. */
#include "frame.h"
#include "internal.h"
#include "log.h"
#include "proto.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

size_t
session_queued(const struct session *s)
{
	return s->qlen;
}

struct frame *
session_peek(const struct session *s, size_t i)
{
	return i < s->qlen ? s->q[(s->qhead + i) & (s->qcap - 1)] : NULL;
}

void
session_pop(struct session *s, size_t n)
{
	while (n-- > 0 && s->qlen > 0) {
		struct frame *f = s->q[s->qhead];

		s->qbytes -= frame_wire_len(f);
		frame_unref(f);
		s->qhead = (s->qhead + 1) & (s->qcap - 1);
		s->qlen--;
	}
	/* An idle connection should not keep a large ring around. */
	if (s->qlen == 0 && s->qcap > 64) {
		free(s->q);
		s->q = NULL;
		s->qcap = 0;
		s->qhead = 0;
	}
}

bool
session_is_kicked(const struct session *s)
{
	return s->kicked;
}

const char *
session_client_id(const struct session *s)
{
	return s->client;
}

const char *
session_user(const struct session *s)
{
	return s->connected ? s->user : NULL;
}

bool
session_has_room(const struct session *s, size_t frames, size_t bytes)
{
	return s->qlen + frames <= s->qmax_len && s->qbytes + bytes <= s->qmax_bytes;
}

void
session_closing(struct session *s)
{
	s->kicked = true;
	session_queue_clear(s);
}

void
session_kick(struct session *s, int code, const char *reason)
{
	if (s->kicked)
		return;
	s->kicked = true;
	/* A slow consumer's queue is what it cannot take: only that one is not flushed, and
	 * its frames are released now rather than when the connection is gone. */
	s->ops->kick(s->conn, code, reason, code != PROTO_CLOSE_SLOW_CONSUMER);
	if (code == PROTO_CLOSE_SLOW_CONSUMER)
		session_queue_clear(s);
}

static void
grow(struct session *s)
{
	size_t ncap = s->qcap ? s->qcap * 2 : 8;
	struct frame **nq = xmalloc(ncap * sizeof(*nq));

	for (size_t i = 0; i < s->qlen; i++)
		nq[i] = s->q[(s->qhead + i) & (s->qcap - 1)];
	free(s->q);
	s->q = nq;
	s->qcap = ncap;
	s->qhead = 0;
}

bool
session_enqueue(struct session *s, struct frame *f)
{
	size_t n = frame_wire_len(f);

	if (s->kicked)
		return false;
	if (s->qlen >= s->qmax_len || s->qbytes + n > s->qmax_bytes) {
		log_warn("session: client=%s queue full (%zu frames, %zu bytes), closing",
			 s->client[0] ? s->client : "-", s->qlen, s->qbytes);
		session_kick(s, PROTO_CLOSE_SLOW_CONSUMER, "slow consumer");
		return false;
	}
	if (s->qlen == s->qcap)
		grow(s);
	s->q[(s->qhead + s->qlen) & (s->qcap - 1)] = frame_ref(f);
	s->qlen++;
	s->qbytes += n;
	if (s->qlen == 1)
		s->ops->wake(s->conn);
	return true;
}

void
session_queue_clear(struct session *s)
{
	session_pop(s, s->qlen);
	free(s->q);
	s->q = NULL;
	s->qcap = 0;
	s->qhead = 0;
}

bool
session_send(struct session *s, struct frame *f)
{
	bool queued;

	xcheck(f);
	queued = session_enqueue(s, f);
	frame_unref(f);
	return queued;
}

void
session_send_error(struct session *s, const json_t *id, enum proto_errcode code, const char *fmt,
		   ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (session_send(s, s->dialect->encode_error(id, code, msg)) &&
	    (size_t)code < PROTO_ERR_COUNT)
		s->stats->errors[code]++;
}
