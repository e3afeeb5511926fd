/* SPDX-License-Identifier: MIT */
/*
 * The resident half of spillctl swap attach. The module cannot connect or
 * authenticate by itself, so this process stays (locked in memory, never
 * chosen by the OOM killer, an I/O flusher) and brings a new socket whenever one of the
 * device's connections dies. It waits on the control device, which becomes
 * readable on every connection change, and checks once a second anyway.
 * Reconnects to a server back off from 0.2 s to 5 s while it is down.
 *
 * It exits 0 once its device is gone (spillctl swap detach), or on SIGTERM
 * or SIGINT, leaving the device attached.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "spillctl_swap.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

#define BACKOFF_MIN 0.2
#define BACKOFF_MAX 5.0

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int daemonized;

static void say(int prio, const char *fmt, const char *a, const char *b)
{
	char line[768];
	snprintf(line, sizeof(line), fmt, a, b);
	if (daemonized)
		syslog(prio, "%s", line);
	else
		fprintf(stderr, "spillctl: %s\n", line);
}

/* Tell systemd (Type=notify) the device is ready, if it asked. */
static void sd_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d", (int)getpid());
	sendto(fd, msg, (size_t)n, 0, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
}

/* Detach from the terminal; the parent has printed the device already. */
static int go_background(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/")) {
		/* not fatal */
	}
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	openlog("spillctl", LOG_PID, LOG_DAEMON);
	daemonized = 1;
	return 0;
}

/*
 * Swap depends on this process: keep it in RAM, out of the OOM killer's
 * reach, and out of swap-out when it allocates (an I/O flusher's reclaim is
 * GFP_NOIO: it must not wait for the device it is repairing).
 */
static void protect_self(void)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		say(LOG_WARNING, "mlockall: %s%s", strerror(errno), "");
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		say(LOG_WARNING, "PR_SET_IO_FLUSHER: %s%s", strerror(errno), "");
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "-1000", 5) != 5)
			say(LOG_WARNING, "oom_score_adj: %s%s", strerror(errno), "");
		close(fd);
	}
}

static void reconnect(struct swap_attach *a, const struct spill_ioc_status *st, double t)
{
	for (unsigned i = 0; i < a->nservers; i++) {
		struct swap_server *s = &a->srv[i];
		char err[512];
		if (st->srv[i].conns >= a->conns || t < s->next_try)
			continue;
		int rc = swap_add_connection(a, i, SPILL_SOCK_RECONNECT, 0, err, sizeof(err));
		if (rc) {
			if (s->backoff < BACKOFF_MIN * 2)
				say(LOG_WARNING, "reconnect %s", err, "");
			s->backoff = s->backoff ? s->backoff * 2 : BACKOFF_MIN;
			if (s->backoff > BACKOFF_MAX)
				s->backoff = BACKOFF_MAX;
			s->next_try = t + s->backoff;
		} else {
			if (s->backoff)
				say(LOG_INFO, "reconnected to %s%s", s->url, "");
			s->backoff = 0;
			s->next_try = 0;
		}
	}
}

int swap_resident(struct swap_attach *a)
{
	if (!a->foreground && go_background())
		return 1;
	protect_self();
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sd_ready();

	while (!stop) {
		struct spill_ioc_status st;
		int rc = swap_status(a->ctl, a->index, &st);
		if (rc == -ENODEV || (!rc && st.id != a->id)) {
			say(LOG_INFO, "%s detached%s", a->dev_path, "");
			return 0;
		}
		if (!rc && !(st.flags & SPILL_STATUS_DYING))
			reconnect(a, &st, now_s());
		struct pollfd p = { .fd = a->ctl, .events = POLLIN };
		int n = poll(&p, 1, 1000);
		if (n > 0 && (p.revents & POLLIN)) {
			uint64_t seq;
			if (read(a->ctl, &seq, sizeof(seq)) < 0 && errno != EINTR)
				break;
		}
	}
	return 0;
}
