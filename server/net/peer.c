/* peer.c: lws glue of util/forwarded.c. The peer comes from getpeername() rather than
 * lws_get_peer_simple(), whose text form differs between lws versions, and headers are
 * copied whole: lws caps a request's headers at max_http_header_data (16 KiB), so a
 * request can cost at most that much more here, and only when its peer is trusted.
 *
 * lws 4.1.6 joins repeated lines of a header it knows (X-Forwarded-For) with ',', which
 * is the one list RFC 7230 says they are. Forwarded is not one of its tokens, and its
 * custom-header lookup returns only the first line of a repeated unknown header: a proxy
 * that adds its own Forwarded line after the client's would go unseen. So a proxy in
 * front must either append to X-Forwarded-For (the documented setups) or replace any
 * Forwarded header the client sent (docs/deployment.md). */
#include "peer.h"

#include "cidr.h"
#include "config.h"
#include "forwarded.h"
#include "log.h"
#include "net.h"
#include "xalloc.h"

#include <assert.h>
#include <stdlib.h>
#include <sys/socket.h>

static_assert(CIDR_ADDR_STRLEN <= 48, "net_client_addr() writes into 48 bytes");

/* A header's value as a new string (NULL if absent or empty); h->s and h->len set. */
static char *
copy_xff(struct lws *wsi, struct forwarded_header *h)
{
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR);
	char *buf;

	if (n <= 0)
		return NULL;
	buf = xmalloc((size_t)n + 1);
	if (lws_hdr_copy(wsi, buf, n + 1, WSI_TOKEN_X_FORWARDED_FOR) != n) {
		free(buf);
		return NULL;
	}
	*h = (struct forwarded_header){ buf, (size_t)n };
	return buf;
}

static char *
copy_forwarded(struct lws *wsi, struct forwarded_header *h)
{
	int n = lws_hdr_custom_length(wsi, "forwarded:", 10);
	char *buf;

	if (n <= 0)
		return NULL;
	buf = xmalloc((size_t)n + 1);
	if (lws_hdr_custom_copy(wsi, buf, n + 1, "forwarded:", 10) != n) {
		free(buf);
		return NULL;
	}
	*h = (struct forwarded_header){ buf, (size_t)n };
	return buf;
}

void
net_client_addr(struct server *srv, struct lws *wsi, char out[48])
{
	const struct config *cfg = srv->cfg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct cidr_addr peer, client;
	struct forwarded_header xff = { 0 }, fwd = { 0 };
	char *xbuf, *fbuf;

	out[0] = '\0';
	if (getpeername(lws_get_socket_fd(lws_get_network_wsi(wsi)), (struct sockaddr *)&ss, &sl) !=
		    0 ||
	    cidr_addr_from_sockaddr((struct sockaddr *)&ss, &peer) != 0)
		return;
	if (!cidr_list_match(cfg->trusted_proxies, cfg->ntrusted_proxies, &peer)) {
		cidr_addr_format(&peer, out);
		return;
	}
	xbuf = copy_xff(wsi, &xff);
	fbuf = copy_forwarded(wsi, &fwd);
	forwarded_client(&peer, cfg->trusted_proxies, cfg->ntrusted_proxies, xff, fwd, &client);
	cidr_addr_format(&client, out);
	if (LOG_DEBUG <= log_level_current) {
		char p[CIDR_ADDR_STRLEN];

		cidr_addr_format(&peer, p);
		log_debug("ws: trusted proxy %s: client %s (x-forwarded-for %s, forwarded %s)", p,
			  out, xbuf != NULL ? "given" : "absent",
			  fbuf != NULL ? "given" : "absent");
	}
	free(xbuf);
	free(fbuf);
}
