/* fake_session.h: a transport for unit tests of the core. It implements session_ops,
 * counts wakes and kicks, and reads the frames the hub queued (as JSON). */
#ifndef SWITCHBOARD_FAKE_SESSION_H
#define SWITCHBOARD_FAKE_SESSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct hub;
struct session;

struct fake_session {
	struct session *s;
	int wakes;
	int kicks;
	int kick_code;
	char kick_reason[64];
	bool kick_flush;
	unsigned long long now_ms; /* the time fake_send() passes to the hub */
};

/* Opens a session on hub at time now_ms. */
void fake_open(struct fake_session *f, struct hub *hub, unsigned long long now_ms);
void fake_close(struct fake_session *f, struct hub *hub);

/* Sends one text message (a printf format) to the hub as this client. */
void fake_send(struct fake_session *f, struct hub *hub, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Pops the oldest queued frame, parsed; NULL if the queue is empty. New reference. */
json_t *fake_pop(struct fake_session *f);
/* Pops the oldest frame and returns its "type" (static storage until the next call),
 * or "" when the queue is empty. */
const char *fake_pop_type(struct fake_session *f);
/* Drops every queued frame; returns how many there were. */
size_t fake_drain(struct fake_session *f);

#endif
