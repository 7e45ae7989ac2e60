/* events.c: the hub's webhook events (docs/http-api.md, Webhooks). The hub hands each
 * event to hub->events.emit as a new JSON object; nothing is built without a receiver. */
#include "internal.h"
#include "message.h"
#include "policy.h"
#include "xalloc.h"

#include <string.h>

/* Emits {"name":name, ...fields}; fields is a new object (taken) or NULL. */
static void
emit(struct hub *hub, const char *name, json_t *fields)
{
	json_t *ev;

	if (hub->events.emit == NULL) {
		json_decref(fields);
		return;
	}
	ev = xcheck(json_pack("{s:s}", "name", name));
	if (fields != NULL)
		json_object_update(ev, fields);
	json_decref(fields);
	hub->events.emit(hub->events.arg, ev);
}

void
events_channel(struct hub *hub, const char *name, const char *channel, size_t len)
{
	if (hub->events.emit != NULL)
		emit(hub, name, xcheck(json_pack("{s:s%}", "channel", channel, len)));
}

void
events_client(struct hub *hub, const char *name, const struct session *s, const char *channel,
	      size_t len)
{
	json_t *o;

	if (hub->events.emit == NULL)
		return;
	o = xcheck(json_pack("{s:s,s:s}", "client", s->client, "user", s->user));
	if (channel != NULL)
		json_object_set_new(o, "channel", json_stringn(channel, len));
	emit(hub, name, o);
}

/* message_published, for namespaces that opted in (message_events). data and from are
 * the message's own JSON text. */
void
events_message(struct hub *hub, const struct message *m)
{
	size_t clen, dlen, flen;
	const char *channel = message_channel(m, &clen), *d = message_data(m, &dlen),
		   *f = message_from(m, &flen);
	const struct ns_policy *ns;
	json_t *o, *data, *from = NULL;

	if (hub->events.emit == NULL)
		return;
	ns = policy_for_channel(hub->cfg.policy, channel, clen);
	if (ns == NULL || !ns->message_events)
		return;
	data = json_loadb(d, dlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (f != NULL)
		from = json_loadb(f, flen, 0, NULL);
	o = xcheck(json_pack("{s:s%,s:I,s:s,s:o*,s:o*}", "channel", channel, clen, "offset",
			     (json_int_t)message_offset(m), "epoch", message_epoch(m), "data", data,
			     "from", from));
	emit(hub, "message_published", o);
}
