/* fake_session.c: see fake_session.h. */
#include "fake_session.h"
#include "dialect.h"
#include "frame.h"
#include "hub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
fake_wake(void *conn)
{
	((struct fake_session *)conn)->wakes++;
}

static void
fake_kick(void *conn, int code, const char *reason, bool flush)
{
	struct fake_session *f = conn;

	f->kicks++;
	f->kick_code = code;
	f->kick_flush = flush;
	snprintf(f->kick_reason, sizeof(f->kick_reason), "%s", reason);
}

static const struct session_ops fake_ops = {
	.wake = fake_wake,
	.kick = fake_kick,
};

void
fake_open(struct fake_session *f, struct hub *hub, unsigned long long now_ms)
{
	memset(f, 0, sizeof(*f));
	f->now_ms = now_ms;
	f->s = hub_session_open(hub, &dialect_native, &fake_ops, f, now_ms);
}

void
fake_close(struct fake_session *f, struct hub *hub)
{
	hub_session_close(hub, f->s);
	f->s = NULL;
}

void
fake_send(struct fake_session *f, struct hub *hub, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	hub_session_receive(hub, f->s, buf, (size_t)n, f->now_ms);
}

json_t *
fake_pop(struct fake_session *f)
{
	struct frame *fr = session_peek(f->s, 0);
	size_t len;
	const char *p;
	json_t *j;

	if (fr == NULL)
		return NULL;
	p = frame_payload(fr, &len);
	j = json_loadb(p, len, 0, NULL);
	session_pop(f->s, 1);
	return j;
}

const char *
fake_pop_type(struct fake_session *f)
{
	static char type[32];
	json_t *j = fake_pop(f);

	type[0] = '\0';
	if (j != NULL)
		snprintf(type, sizeof(type), "%s", json_string_value(json_object_get(j, "type")));
	json_decref(j);
	return type;
}

size_t
fake_drain(struct fake_session *f)
{
	size_t n = session_queued(f->s);

	session_pop(f->s, n);
	return n;
}
