/* harness.h: drives a struct sbc_client in a test and records what its callbacks saw.
 * Every wait runs the client's loop in slices of at most 20 ms until a condition holds
 * or a deadline passes; nothing sleeps. Records are JSON (new references owned by the
 * harness) so that assertions can print them.
 */
#ifndef SWITCHBOARD_TEST_CLIENT_HARNESS_H
#define SWITCHBOARD_TEST_CLIENT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "switchboard_client.h"

#define TC_WAIT_MS 5000
#define TC_MAX_STATES 256

struct tc {
	struct sbc_client *c;
	/* Every state change, in order: state, cause, close code and retry delay. */
	enum sbc_state states[TC_MAX_STATES];
	enum sbc_cause causes[TC_MAX_STATES];
	int close_codes[TC_MAX_STATES];
	unsigned delays[TC_MAX_STATES];
	unsigned nstates;
	unsigned nready;     /* READY entered */
	unsigned nretry;     /* RETRY_WAIT entered */
	bool closed;	     /* CLOSED entered */
	char last_text[512]; /* text of the last state with a cause */
	json_t *replies;     /* [{"cmd","id","error","code","offset","epoch",
			      *   "recovered","recover_sent","missed","raw"}] */
	json_t *messages;    /* [{"channel","offset","data","duplicate","user"}] */
	json_t *presence;    /* [{"join","channel","user"}] */
	json_t *resets;	     /* [{"channel","offset","epoch"}] */
	json_t *notices;     /* [text] */
};

/* Fills *cfg with the harness's callbacks and arg, the URL of 127.0.0.1:port (the url
 * buffer holds it, 64 bytes) and a 2 s timeout. */
void tc_config(struct tc *t, struct sbc_config *cfg, char *url, int port);
/* Creates the client from cfg (asserts); t->c. */
void tc_new(struct tc *t, const struct sbc_config *cfg);
/* Frees the client and the records. */
void tc_free(struct tc *t);

/* Runs the loop until cond(t, arg) or timeout_ms; returns cond's last value. */
bool tc_wait(struct tc *t, bool (*cond)(struct tc *t, const void *arg), const void *arg,
	     int timeout_ms);
/* Runs the loop for ms, whatever happens. */
void tc_spin(struct tc *t, int ms);

/* Waits until READY was entered n times in all (asserts). */
void tc_wait_ready(struct tc *t, unsigned n);
/* Waits for n messages recorded in all (asserts). */
void tc_wait_messages(struct tc *t, size_t n);
/* Waits for the reply to command id and returns it (borrowed; asserts it came). */
json_t *tc_wait_reply(struct tc *t, int64_t id);
/* Waits until state s has been entered (asserts). */
void tc_wait_state(struct tc *t, enum sbc_state s);

/* Counts of the records. */
size_t tc_count(const json_t *records);
/* The integer member key of records[i], or -1. */
json_int_t tc_int(const json_t *records, size_t i, const char *key);
/* The string member key of a record, or "". */
const char *tc_str(const json_t *record, const char *key);

#endif
