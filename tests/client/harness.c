/* harness.c: see harness.h. */
#include "harness.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
append(json_t *records, json_t *o)
{
	cr_assert_not_null(o, "out of memory");
	cr_assert_eq(json_array_append_new(records, o), 0);
}

static void
on_state(struct sbc_client *c, const struct sbc_status *st, void *arg)
{
	struct tc *t = arg;

	(void)c;
	if (t->nstates < TC_MAX_STATES) {
		t->states[t->nstates] = st->state;
		t->causes[t->nstates] = st->cause;
		t->close_codes[t->nstates] = st->close_code;
		t->delays[t->nstates] = st->delay_ms;
		t->nstates++;
	}
	if (st->cause != SBC_CAUSE_NONE)
		snprintf(t->last_text, sizeof(t->last_text), "%s", st->text);
	t->nready += st->state == SBC_STATE_READY;
	t->nretry += st->state == SBC_STATE_RETRY_WAIT;
	t->closed = t->closed || st->state == SBC_STATE_CLOSED;
}

static void
on_reply(struct sbc_client *c, const struct sbc_reply *r, void *arg)
{
	struct tc *t = arg;

	(void)c;
	append(t->replies,
	       json_pack("{s:s, s:I, s:i, s:s?, s:I, s:s?, s:b, s:b, s:I, s:s?, s:s?}", "cmd",
			 sbc_cmd_name(r->cmd), "id", (json_int_t)r->id, "error", r->error, "code",
			 r->code, "offset", r->has_offset ? (json_int_t)r->offset : -1, "epoch",
			 r->epoch, "recovered", r->recovered, "recover_sent", r->recover_sent,
			 "missed", r->missed_known ? (json_int_t)r->missed : -1, "raw", r->raw,
			 "channel", r->channel));
}

static void
on_message(struct sbc_client *c, const struct sbc_message *m, void *arg)
{
	struct tc *t = arg;

	(void)c;
	append(t->messages,
	       json_pack("{s:s?, s:I, s:s#, s:b, s:s?}", "channel", m->channel, "offset",
			 m->has_offset ? (json_int_t)m->offset : -1, "data",
			 m->data != NULL ? m->data : "", m->data != NULL ? (int)m->data_len : 0,
			 "duplicate", m->duplicate, "user", m->from_user));
}

static void
on_presence(struct sbc_client *c, const struct sbc_presence *p, void *arg)
{
	struct tc *t = arg;

	(void)c;
	append(t->presence, json_pack("{s:b, s:s?, s:s?}", "join", p->join, "channel", p->channel,
				      "user", p->user));
}

static void
on_reset(struct sbc_client *c, const struct sbc_reset *r, void *arg)
{
	struct tc *t = arg;

	(void)c;
	append(t->resets, json_pack("{s:s, s:I, s:s}", "channel", r->channel, "offset",
				    (json_int_t)r->offset, "epoch", r->epoch));
}

static void
on_notice(struct sbc_client *c, const char *text, void *arg)
{
	struct tc *t = arg;

	(void)c;
	append(t->notices, json_string(text));
}

void
tc_config(struct tc *t, struct sbc_config *cfg, char *url, int port)
{
	*t = (struct tc){
		.replies = json_array(),
		.messages = json_array(),
		.presence = json_array(),
		.resets = json_array(),
		.notices = json_array(),
	};
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	snprintf(url, 64, "ws://127.0.0.1:%d/ws", port);
	*cfg = (struct sbc_config){
		.url = url,
		.timeout_s = 2,
		.arg = t,
		.on_state = on_state,
		.on_reply = on_reply,
		.on_message = on_message,
		.on_presence = on_presence,
		.on_reset = on_reset,
		.on_notice = on_notice,
	};
}

void
tc_new(struct tc *t, const struct sbc_config *cfg)
{
	char why[256] = "";

	t->c = sbc_new(cfg, why, sizeof(why));
	cr_assert_not_null(t->c, "sbc_new: %s", why);
}

void
tc_free(struct tc *t)
{
	sbc_free(t->c);
	t->c = NULL;
	json_decref(t->replies);
	json_decref(t->messages);
	json_decref(t->presence);
	json_decref(t->resets);
	json_decref(t->notices);
}

bool
tc_wait(struct tc *t, bool (*cond)(struct tc *t, const void *arg), const void *arg, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (!cond(t, arg) && now_ms() < end)
		if (sbc_service(t->c, 20) <= 0 && !cond(t, arg))
			return false;
	return cond(t, arg);
}

void
tc_spin(struct tc *t, int ms)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end && sbc_service(t->c, 20) > 0)
		;
}

static bool
ready_n(struct tc *t, const void *arg)
{
	return t->nready >= *(const unsigned *)arg;
}

void
tc_wait_ready(struct tc *t, unsigned n)
{
	cr_assert(tc_wait(t, ready_n, &n, TC_WAIT_MS), "READY %u times: only %u (state %s, %s)", n,
		  t->nready, sbc_state_name(sbc_state(t->c)), t->last_text);
}

static bool
messages_n(struct tc *t, const void *arg)
{
	return json_array_size(t->messages) >= *(const size_t *)arg;
}

void
tc_wait_messages(struct tc *t, size_t n)
{
	cr_assert(tc_wait(t, messages_n, &n, TC_WAIT_MS), "%zu messages expected, got %zu", n,
		  json_array_size(t->messages));
}

static json_t *
find_reply(struct tc *t, int64_t id)
{
	size_t i;
	json_t *r;

	json_array_foreach(t->replies, i,
			   r) if (json_integer_value(json_object_get(r, "id")) == id) return r;
	return NULL;
}

static bool
has_reply(struct tc *t, const void *arg)
{
	return find_reply(t, *(const int64_t *)arg) != NULL;
}

json_t *
tc_wait_reply(struct tc *t, int64_t id)
{
	cr_assert(tc_wait(t, has_reply, &id, TC_WAIT_MS), "no reply to command %lld",
		  (long long)id);
	return find_reply(t, id);
}

static bool
in_state(struct tc *t, const void *arg)
{
	for (unsigned i = 0; i < t->nstates; i++)
		if (t->states[i] == *(const enum sbc_state *)arg)
			return true;
	return false;
}

void
tc_wait_state(struct tc *t, enum sbc_state s)
{
	cr_assert(tc_wait(t, in_state, &s, TC_WAIT_MS), "state %s never entered (now %s, %s)",
		  sbc_state_name(s), sbc_state_name(sbc_state(t->c)), t->last_text);
}

size_t
tc_count(const json_t *records)
{
	return json_array_size(records);
}

json_int_t
tc_int(const json_t *records, size_t i, const char *key)
{
	json_t *v = json_object_get(json_array_get(records, i), key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

const char *
tc_str(const json_t *record, const char *key)
{
	const char *s = json_string_value(json_object_get(record, key));

	return s != NULL ? s : "";
}
