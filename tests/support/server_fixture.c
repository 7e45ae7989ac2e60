/* server_fixture.c: fork, configure, serve; SIGTERM, wait, report.
 * The child writes either the decimal port (server_run() does that) or a line
 * "error: ..." when the configuration was refused, then the pipe closes.
 */
#include "server_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "leakcheck.h"
#include "mono.h"

#define CHILD_CONFIG_ERROR 2
#define CHILD_LEAKS 3

static void
write_line(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n <= 0 && errno != EINTR)
			return;
		if (n > 0) {
			s += n;
			len -= (size_t)n;
		}
	}
}

/* The child: never returns. */
static void
child_main(int ready_fd, pid_t parent, const char *json, server_fixture_tweak_fn tweak, void *arg,
	   engine_factory_fn make)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGPIPE, SIGSEGV, SIGBUS,
				    SIGABRT, SIGFPE, SIGILL,  SIGHUP,  SIGCHLD };
	struct config cfg;
	char err[256], line[300];
	const char *level;
	sigset_t none;
	int rc;

	/* Die with the test process (criterion SIGKILLs it on timeout). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* Criterion's handlers and our parent's descriptors are none of the server's business. */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (ready_fd > 3)
		close_range(3, (unsigned)ready_fd - 1, 0);
	close_range((unsigned)ready_fd + 1, ~0U, 0);

	config_defaults(&cfg);
	free(cfg.host);
	cfg.host = strdup("127.0.0.1");
	cfg.port = 0;
	cfg.log_level = LOG_WARN;
	/* SIGTERM at the end of a test closes everyone at once (1001), as the tests of
	 * other things expect; the drain tests set drain_period themselves. */
	cfg.drain_period = 0;
	/* SWITCHBOARD_TEST_LOG=debug makes a failing test talkative. */
	level = getenv("SWITCHBOARD_TEST_LOG");
	if (level != NULL)
		log_level_parse(level, &cfg.log_level);
	if (json != NULL && config_load_string(&cfg, json, err, sizeof(err)) != 0) {
		snprintf(line, sizeof(line), "error: %s\n", err);
		write_line(ready_fd, line);
		config_fini(&cfg);
		_exit(CHILD_CONFIG_ERROR);
	}
	if (tweak != NULL)
		tweak(&cfg, arg);
	log_level_current = cfg.log_level;
	rc = server_run_with_engine(&cfg, ready_fd, make);
	config_fini(&cfg);
	if (leakcheck_run() != 0)
		_exit(CHILD_LEAKS);
	_exit(rc);
}

/* Reads the ready line: the port, or an error. Returns 0 or -1 (f->error set). */
static int
read_ready(struct server_fixture *f, int fd)
{
	int64_t deadline = mono_ms() + SERVER_FIXTURE_START_MS;
	char buf[300];
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (memchr(buf, '\n', len) != NULL)
			break;
		if (left <= 0) {
			snprintf(f->error, sizeof(f->error), "no port from the server within %d ms",
				 SERVER_FIXTURE_START_MS);
			return -1;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -1;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || len + (size_t)n >= sizeof(buf) - 1) {
			if (n > 0)
				len += (size_t)n;
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (sscanf(buf, "%d", &f->port) == 1 && f->port > 0 && f->port < 65536)
		return 0;
	snprintf(f->error, sizeof(f->error), "server did not start: %.200s",
		 len > 0 ? buf : "(it closed the ready pipe without a port)");
	return -1;
}

int
server_fixture_start(struct server_fixture *f, const char *json, server_fixture_tweak_fn tweak,
		     void *arg)
{
	return server_fixture_start_engine(f, json, tweak, arg, NULL);
}

int
server_fixture_start_engine(struct server_fixture *f, const char *json,
			    server_fixture_tweak_fn tweak, void *arg, engine_factory_fn make)
{
	pid_t parent = getpid();
	int fds[2];

	memset(f, 0, sizeof(*f));
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(f->error, sizeof(f->error), "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	f->pid = fork();
	if (f->pid < 0) {
		snprintf(f->error, sizeof(f->error), "fork: %s", strerror(errno));
		f->pid = 0;
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (f->pid == 0) {
		close(fds[0]);
		child_main(fds[1], parent, json, tweak, arg, make);
	}
	close(fds[1]);
	if (read_ready(f, fds[0]) != 0) {
		close(fds[0]);
		server_fixture_kill(f);
		return -1;
	}
	close(fds[0]);
	return 0;
}

int
server_fixture_signal(struct server_fixture *f, int sig)
{
	if (f->pid <= 0)
		return -1;
	return kill(f->pid, sig);
}

/* Waits until the child can be reaped or the deadline passes: a pidfd becomes readable
 * when the process exits; without pidfds, waitpid(WNOHANG) is polled every 5 ms. */
static pid_t
reap(struct server_fixture *f, int64_t deadline)
{
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	int pfd = (int)syscall(SYS_pidfd_open, f->pid, 0);
	pid_t r;

	while ((r = waitpid(f->pid, &f->status, WNOHANG)) == 0 && mono_ms() < deadline) {
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, (int)(deadline - mono_ms()));
		} else {
			nanosleep(&tick, NULL);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return r;
}

int
server_fixture_wait(struct server_fixture *f, int timeout_ms)
{
	int ms = timeout_ms > 0 ? timeout_ms : SERVER_FIXTURE_STOP_MS;
	pid_t r;

	if (f->pid <= 0) {
		snprintf(f->error, sizeof(f->error), "no server running");
		return -1;
	}
	r = reap(f, mono_ms() + ms);
	if (r == 0) {
		snprintf(f->error, sizeof(f->error), "server still running %d ms after the signal",
			 ms);
		server_fixture_kill(f);
		return -1;
	}
	f->pid = 0;
	if (r < 0) {
		snprintf(f->error, sizeof(f->error), "waitpid: %s", strerror(errno));
		return -1;
	}
	if (WIFSIGNALED(f->status)) {
		snprintf(f->error, sizeof(f->error), "server died of signal %d (%s)",
			 WTERMSIG(f->status), strsignal(WTERMSIG(f->status)));
		return -1;
	}
	if (WEXITSTATUS(f->status) == CHILD_LEAKS)
		snprintf(f->error, sizeof(f->error),
			 "server leaked memory (LeakSanitizer report above)");
	else if (WEXITSTATUS(f->status) != 0)
		snprintf(f->error, sizeof(f->error), "server exited with %d",
			 WEXITSTATUS(f->status));
	return WEXITSTATUS(f->status);
}

int
server_fixture_stop(struct server_fixture *f, int timeout_ms)
{
	if (f->pid <= 0) {
		snprintf(f->error, sizeof(f->error), "no server running");
		return -1;
	}
	server_fixture_signal(f, SIGTERM);
	return server_fixture_wait(f, timeout_ms);
}

void
server_fixture_kill(struct server_fixture *f)
{
	if (f->pid <= 0)
		return;
	kill(f->pid, SIGKILL);
	while (waitpid(f->pid, &f->status, 0) < 0 && errno == EINTR)
		;
	f->pid = 0;
}

bool
server_fixture_running(struct server_fixture *f)
{
	if (f->pid <= 0)
		return false;
	if (waitpid(f->pid, &f->status, WNOHANG) == 0)
		return true;
	f->pid = 0;
	return false;
}
