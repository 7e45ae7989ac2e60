/* server_fixture.h: runs the real server in a child process for integration tests.
 * The child builds a struct config (defaults, 127.0.0.1, port 0, log level warn, then the
 * caller's JSON and callback), calls server_run() and exits with its return code, or
 * with 3 when LeakSanitizer found leaks in it (sanitizer builds). The parent learns the
 * real port from the ready pipe. The child dies with the process that started it, so a
 * test killed by its timeout leaves no server behind.
 *
 * Criterion ignores assertions in .fini, so a test that wants the exit status checked
 * calls server_fixture_stop() (or the SERVER_STOP_OK macro of its file) in its body.
 */
#ifndef SWITCHBOARD_TEST_SERVER_FIXTURE_H
#define SWITCHBOARD_TEST_SERVER_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "engine.h"

struct config;

/* Called in the child after the JSON was applied; may change anything in cfg. */
typedef void (*server_fixture_tweak_fn)(struct config *cfg, void *arg);

struct server_fixture {
	pid_t pid;	 /* the server process, or 0 when none is running */
	int port;	 /* its listening port on 127.0.0.1 */
	int status;	 /* raw wait status once stopped */
	char error[256]; /* why start or stop failed */
};

#define SERVER_FIXTURE_START_MS 10000
#define SERVER_FIXTURE_STOP_MS 10000

/* Starts a server. json (may be NULL) is a configuration text applied with
 * config_load_string(); tweak (may be NULL) runs after it. Returns 0 with f->pid and
 * f->port set, or -1 with f->error set (the child was reaped). */
int server_fixture_start(struct server_fixture *f, const char *json, server_fixture_tweak_fn tweak,
			 void *arg);
/* Same over the engine make makes (an engine_factory_fn, e.g. fake_engine.h's). */
int server_fixture_start_engine(struct server_fixture *f, const char *json,
				server_fixture_tweak_fn tweak, void *arg, engine_factory_fn make);

/* Sends SIGTERM and waits up to timeout_ms (<= 0: SERVER_FIXTURE_STOP_MS) for the exit.
 * Returns the exit code (0 is a clean shutdown with no leaks), or -1 if the server died
 * of a signal or had to be killed after the deadline (f->error says which). Returns -1
 * if no server was running. */
int server_fixture_stop(struct server_fixture *f, int timeout_ms);

/* Sends sig to the server without waiting (e.g. SIGTERM while clients are connected).
 * Then server_fixture_wait() collects the exit status. */
int server_fixture_signal(struct server_fixture *f, int sig);
int server_fixture_wait(struct server_fixture *f, int timeout_ms);

/* SIGKILLs and reaps a server that is still running; for .fini after a failed test. */
void server_fixture_kill(struct server_fixture *f);

/* True while the server process exists and has not been reaped. */
bool server_fixture_running(struct server_fixture *f);

#endif
