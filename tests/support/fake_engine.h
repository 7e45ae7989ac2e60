/* fake_engine.h: an engine for unit tests of the core whose answers come when the test
 * says: late, out of order, or failing. The channel state is real: each call is queued
 * and, when completed, runs against an embedded memory engine at that moment (as a
 * networked engine's command takes effect when its server runs it) and then answers;
 * deliveries and join/leave from the inner engine reach the hub at once. Calls that do
 * not answer (unsubscribe, presence add/remove, tick) pass straight through. */
#ifndef SWITCHBOARD_FAKE_ENGINE_H
#define SWITCHBOARD_FAKE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct fake_engine;

/* An engine_factory_fn for hub_new_with_engine(); the engine it made last is
 * fake_engine_last() (tests run one hub at a time). */
struct engine *fake_engine_new(const struct engine_callbacks *cb, const struct engine_config *cfg,
			       const uint8_t seed[16]);
struct fake_engine *fake_engine_last(void);

/* An engine_factory_fn whose engine completes every waiting call at each engine tick
 * (the hub ticks once a second): the real server over an engine that answers late. */
struct engine *fake_engine_new_on_tick(const struct engine_callbacks *cb,
				       const struct engine_config *cfg, const uint8_t seed[16]);

/* With automatic on, every call completes inline like the memory engine. */
void fake_engine_set_automatic(struct fake_engine *fe, bool on);

/* Subscriptions the embedded engine holds: subscribes it ran minus unsubscribes it ran
 * (an unsubscribe waits behind a subscribe of its channel still queued, and goes with
 * it when that one fails). 0 once every subscription of the hub has ended. */
long fake_engine_subscriptions(const struct fake_engine *fe);

/* Calls waiting, oldest first: how many, and the kind of the i-th ("publish",
 * "subscribe", "history", "presence", "presence_stats", "reset") and its channel. */
size_t fake_engine_queued(const struct fake_engine *fe);
const char *fake_engine_kind(const struct fake_engine *fe, size_t i);
const char *fake_engine_channel(const struct fake_engine *fe, size_t i);
/* The index of the oldest waiting call of kind (on channel, if not NULL), or -1. */
int fake_engine_find(const struct fake_engine *fe, const char *kind, const char *channel);

/* Runs the i-th call now and answers it (removing it from the queue). */
void fake_engine_complete(struct fake_engine *fe, size_t i);
/* Answers the i-th call with rc (a negative errno) without running it. */
void fake_engine_fail(struct fake_engine *fe, size_t i, int rc);
/* Completes waiting calls, oldest first, until none is left (answers may queue more). */
void fake_engine_settle(struct fake_engine *fe);

#endif
