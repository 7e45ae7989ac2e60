/* sbc_internal.h: what the files of the client library share (not installed, not for
 * applications). The client owns its channels, its command queues and every string in
 * them; a command names its channel by a copy of the name, never by a pointer to the
 * channel, so a channel can go while a command about it is in flight.
 */
#ifndef SWITCHBOARD_SBC_INTERNAL_H
#define SWITCHBOARD_SBC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "switchboard_client.h"

/* One encoded command: LWS_PRE bytes of headroom (lws masks client frames in place),
 * then len bytes of JSON. */
struct sbc_out {
	struct sbc_out *next;
	int64_t id;
	enum sbc_cmd kind;
	char *channel; /* owned copy, or NULL */
	bool recover;  /* subscribe: carries "recover" */
	bool app;      /* sent by the application: a drop reports -ECONNRESET */
	size_t len;
	unsigned char buf[];
};

struct sbc_queue {
	struct sbc_out *head, *tail;
	size_t n;
};

/* A channel of the client and where we are in it. Removed channels are only marked
 * dead and freed by sbc_sweep(), at points where no caller holds a pointer to one. */
struct sbc_chan {
	struct sbc_chan *next;
	char *name; /* owned */
	char epoch[SBC_EPOCH_MAX + 1];
	uint64_t pos;	 /* recover from here */
	uint64_t seen;	 /* highest offset delivered in this epoch (0: none) */
	uint64_t rewind; /* asked on the first successful subscribe */
	bool have_pos;	 /* pos and epoch came from the server */
	bool rewound;	 /* a subscribe of this channel succeeded once */
	bool pending;	 /* a subscribe is in flight on this connection */
	bool subscribed; /* subscribed on this connection */
	bool leaving;	 /* unsubscribe sent */
	bool dead;	 /* removed; freed by sbc_sweep() */
};

/* ws[s]://host[:port][/path], split. */
struct sbc_url {
	char *buf; /* owned: address and path point into it */
	const char *address;
	const char *path;
	char host[300]; /* Host header: address[:port] */
	int port;
	bool tls;
};

struct sbc_client {
	struct sbc_config cfg; /* strings replaced by the copies below */
	char *url;
	char *user;
	json_t *info; /* own reference, or NULL */
	struct sbc_url u;
	struct lws_protocols *protocols; /* ours, then cfg.extra_protocols; owned array */
	struct lws_context *ctx;
	struct lws_client_connect_info ci;
	lws_retry_bo_t keepalive;

	enum sbc_state state;
	bool started;
	bool done;		    /* CLOSED reached */
	bool freeing;		    /* sbc_free() runs: no more callbacks */
	bool closing;		    /* our close is requested or on the wire */
	enum sbc_cause final_cause; /* why the client ends, for CLOSING and CLOSED */
	char final_text[640];
	char final_detail[640];
	unsigned final_http;

	int64_t next_id;
	char *token;		/* owned: what connect sends, or NULL */
	char *refresh_token;	/* owned: in the refresh in flight */
	char *refused_token;	/* owned: the last token refused in refresh */
	struct sbc_chan *chans; /* in subscription order */

	unsigned nconnected; /* connected replies, over all connections */
	unsigned attempt;    /* failures since the last READY */
	uint64_t rng;
	lws_sorted_usec_list_t sul_retry, sul_deadline, sul_refresh, sul_grace, sul_wake;
	bool deadline_armed;

	/* The current connection; sbc_drop_connection() clears it. */
	struct lws *wsi;
	bool active;	       /* an attempt or connection exists (wsi may lag) */
	bool established;      /* the WebSocket is up */
	bool connected;	       /* the connected reply came */
	struct sbc_queue outq; /* encoded, not written yet */
	struct sbc_queue sent; /* written, waiting for the reply */
	char *client_id;       /* owned */
	int64_t expires;
	bool token_expired;
	char *rx;
	size_t rx_len, rx_cap;
	bool rx_binary;
	int close_code;
	char close_reason[128];
};

/* sbc_url.c */
int sbc_url_parse(const char *url, struct sbc_url *u, char *why, size_t why_len);

/* sbc_cmd.c: queues and command encoding. */
void sbc_queue_push(struct sbc_queue *q, struct sbc_out *o);
struct sbc_out *sbc_queue_pop(struct sbc_queue *q);
struct sbc_out *sbc_queue_take(struct sbc_queue *q, int64_t id);
void sbc_out_free(struct sbc_out *o);
/* Queues the JSON text (len bytes) as a command of kind with id; asks for writable. */
int sbc_queue_text(struct sbc_client *c, enum sbc_cmd kind, int64_t id, const char *channel,
		   const char *text, size_t len, struct sbc_out **out);
int sbc_send_connect(struct sbc_client *c);
int sbc_send_subscribe(struct sbc_client *c, struct sbc_chan *ch);
int sbc_send_refresh(struct sbc_client *c, char *token, bool app, int64_t *id);
struct sbc_chan *sbc_chan_find(const struct sbc_client *c, const char *name);
void sbc_sweep(struct sbc_client *c);

/* sbc_frames.c: what the server sends. */
void sbc_on_frame(struct sbc_client *c, char *buf, size_t len);

/* switchboard_client.c: the connection's life, used by the files above. */
void sbc_update_deadline(struct sbc_client *c, bool progress);
void sbc_fail(struct sbc_client *c, enum sbc_cause cause, const char *text);
void sbc_enter(struct sbc_client *c, enum sbc_state state);
void sbc_check_ready(struct sbc_client *c);
void sbc_schedule_refresh(struct sbc_client *c, bool poll);
void sbc_notice(struct sbc_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
