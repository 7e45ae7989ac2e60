/* sbclient.h: Switchboard protocol steps on top of ws_client, for integration tests.
 * Each step sends one command with a fresh integer id and waits (default deadline) for
 * the reply with that id; frames received meanwhile stay queued in the client. On an
 * unexpected reply the step prints it on stderr and fails, so assertions stay short.
 */
#ifndef SWITCHBOARD_TEST_SBCLIENT_H
#define SWITCHBOARD_TEST_SBCLIENT_H

#include <jansson.h>

#include "ws_client.h"

/* A fresh command id (1, 2, 3... within this process). */
json_int_t sb_next_id(void);

/* Upgrades on /ws and sends connect with user (NULL: no "user" member). Returns the
 * client once "connected" arrived, else NULL. */
struct ws_client *sb_connect(int port, const char *user);

/* Upgrades on /ws and sends connect with token (JSON-escaped by the caller if needed).
 * Returns the client once "connected" arrived, else NULL; the reply is stored in
 * *reply (new reference) when reply is not NULL. */
struct ws_client *sb_connect_token(int port, const char *token, json_t **reply);

/* Sends a command and returns its reply (new reference) or NULL. fmt is the JSON text
 * after the id, e.g. sb_request(c, "\"type\":\"subscribe\",\"channel\":\"a\""): the
 * command sent is {"id":N,<fmt>}. */
json_t *sb_request(struct ws_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 0 when the reply is "subscribed" / "unsubscribed" for channel, else -1. */
int sb_subscribe(struct ws_client *c, const char *channel);
int sb_unsubscribe(struct ws_client *c, const char *channel);

/* Publishes data_raw (JSON text, sent as is). Returns the offset of the "published"
 * reply, or -1. epoch (if not NULL, >= 17 bytes) receives the reply's epoch. */
json_int_t sb_publish(struct ws_client *c, const char *channel, const char *data_raw, char *epoch,
		      size_t epoch_len);

/* Sends a command ({"id":N,<fmt>}) and checks that the reply is an error with the given
 * code that echoes N. Returns 0, or -1 (the reply is printed on stderr). */
int sb_expect_error(struct ws_client *c, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The next frame of type "message" (new reference); frames of any other type received
 * first are dropped with a note on stderr. NULL on timeout or close. */
json_t *sb_next_message(struct ws_client *c, int timeout_ms);

/* True for the frames of docs/protocol.md that no command asked for and that say who
 * came or went: "join" and "leave". */
int sb_is_presence_event(const json_t *frame);

/* The next frame that is not a join/leave event (new reference); events received first
 * are dropped silently, anything else is returned. NULL on timeout, close or invalid
 * JSON. For tests about something else than presence, on servers with join_leave on. */
json_t *sb_recv_skip_events(struct ws_client *c, int timeout_ms);

/* The same as text (exact bytes, new string, length in *len if not NULL). */
char *sb_recv_text_skip_events(struct ws_client *c, int timeout_ms, size_t *len);

#endif
