/* server.h: runs a Switchboard server (one libwebsockets context, HTTP and WebSocket on
 * one port) until SIGINT/SIGTERM. */
#ifndef SWITCHBOARD_SERVER_H
#define SWITCHBOARD_SERVER_H

struct config;

/* Serves cfg until SIGINT or SIGTERM, then drains (drain_period) and returns 0; returns
 * 1 if the server could not start. SIGHUP reloads cfg->path and updates the reloadable
 * parts of cfg in place (log level and format, API keys and quotas, allowed origins, the
 * TLS certificate and key). When ready_fd >= 0, the real listening port is written to it
 * as a decimal line once the server accepts connections (use port 0 to get a free port),
 * and ready_fd is closed. */
int server_run(struct config *cfg, int ready_fd);

#endif
