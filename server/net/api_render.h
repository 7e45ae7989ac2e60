/* api_render.h: the JSON bodies of the HTTP API's answers (docs/http-api.md), made from
 * what the core's backend_* calls answer (backend.h). No lws and no request state: the
 * request's life stays in api.c. Every argument is borrowed; a returned body is a new
 * malloc'd string the caller frees, and like xmalloc these abort rather than fail. */
#ifndef SWITCHBOARD_API_RENDER_H
#define SWITCHBOARD_API_RENDER_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

struct backend_channel;
struct backend_channel_list;
struct engine_history;
struct engine_position;
struct engine_presence;
struct engine_published;

/* The one maker of an error body with a formatted message: {"error":{"code":code,
 * "message":...}}, the message formatted from fmt and ap, cut to 255 bytes and made valid
 * UTF-8. */
char *render_verror(const char *code, const char *fmt, va_list ap);
/* The error body for an operation backend.h refused with rc (nonzero) on channel, and its
 * status in *status: 403 (-ENOENT, -EPERM), 413 (-EMSGSIZE) or 503 (anything else: the
 * engine, or too many in flight; the answer wants Retry-After). */
char *render_refusal(int rc, const char *channel, unsigned *status);

/* GET messages: {"channel","offset","epoch","messages"[,"truncated":true]} of h, the
 * messages within 1 MiB: when since_epoch (the epoch a since_offset came with, or NULL)
 * is h's current epoch, the oldest after it (the client pages on), else the newest. */
char *render_history(const char *channel, size_t len, const struct engine_history *h,
		     const char *since_epoch);
/* GET channels/{c}: {"channel","subscribers","offset","epoch"[,"presence":{"clients",
 * "users"}]} of c. */
char *render_channel(const char *channel, size_t len, const struct backend_channel *c);
/* GET presence: {"channel","members":[...]} of every member of p. */
char *render_presence(const char *channel, size_t len, const struct engine_presence *p);
/* DELETE messages: {"channel","offset","epoch"} of the new position. */
char *render_position(const char *channel, size_t len, const struct engine_position *pos);
/* POST messages: {"channel","offset","epoch"} of the published message; channel is a
 * valid channel name (a C string, nothing in it to escape). */
char *render_published(const char *channel, const struct engine_published *p);
/* GET channels: {"channels":[{"channel","subscribers"},...][,"truncated":true]} of l. */
char *render_channels(const struct backend_channel_list *l);
/* {"<name>":n}, e.g. {"disconnected":2}. */
char *render_count(const char *name, size_t n);

/* POST publish, one result per channel: {"channel","error":{"code","message"}}. A new
 * reference. */
json_t *render_channel_error(const char *name, size_t len, const char *code, const char *message);
/* The result for a channel published to: {"channel","offset","epoch"} of p when rc is
 * 0, else the channel error for rc (a backend.h code). A new reference. */
json_t *render_publish_result(const char *name, size_t len, int rc,
			      const struct engine_published *p);
/* {"results":results}; takes ownership of results. */
char *render_results(json_t *results);

#endif
