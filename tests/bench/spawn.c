/* SPDX-License-Identifier: MIT */
/*
 * Child processes: spillwayd, memcached and spillctl. Every child is tracked
 * until it is reaped, so any exit path (including a fatal signal) can stop it;
 * PR_SET_PDEATHSIG covers the bench dying without running its handlers.
 * Waits are bounded and sleep in poll() on a pidfd or a pipe, never in a loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_LIVE 8
#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 10000
#define MEMCACHED_TIMEOUT_MS 5000

static struct proc live[MAX_LIVE];

static void track(const struct proc *p)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i].pid == 0) {
			live[i] = *p;
			return;
		}
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i].pid == pid)
			live[i].pid = 0;
}

/* Wait up to timeout_ms for p to exit and reap it. 0, or -ETIMEDOUT. */
static int reap(struct proc *p, int timeout_ms, int *status)
{
	struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
	if (p->pidfd >= 0 && poll(&pfd, 1, timeout_ms) == 0)
		return -ETIMEDOUT;
	int ws = 0;
	if (waitpid(p->pid, &ws, p->pidfd >= 0 ? WNOHANG : 0) <= 0)
		return -ETIMEDOUT;
	if (status)
		*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	untrack(p->pid);
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pid = 0;
	p->pidfd = -1;
	return 0;
}

int proc_stop(struct proc *p, int *status)
{
	if (p->pid <= 0)
		return -ESRCH;
	kill(p->pid, SIGTERM);
	int rc = reap(p, STOP_TIMEOUT_MS, status);
	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "spillway-bench: %s (pid %d) ignored SIGTERM for %d s; killing it\n",
			p->name, (int)p->pid, STOP_TIMEOUT_MS / 1000);
		kill(p->pid, SIGKILL);
		reap(p, STOP_TIMEOUT_MS, status);
	}
	return rc;
}

/* Async-signal-safe: fatal-signal and atexit paths. */
void spawn_kill_all(void)
{
	for (int i = 0; i < MAX_LIVE; i++) {
		if (live[i].pid <= 0)
			continue;
		kill(live[i].pid, SIGTERM);
		struct pollfd pfd = { .fd = live[i].pidfd, .events = POLLIN };
		if (live[i].pidfd < 0 || poll(&pfd, 1, 2000) == 0)
			kill(live[i].pid, SIGKILL);
		waitpid(live[i].pid, NULL, 0);
		live[i].pid = 0;
	}
}

static int executable(const char *path)
{
	return access(path, X_OK) == 0;
}

void spawn_find_tool(const char *name, const char *env, char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, cap, "%s/%s", self, name);
			if (executable(out))
				return;
		}
	}
	const char *e = env ? getenv(env) : NULL;
	snprintf(out, cap, "%s", e && *e ? e : name);
}

/* fork + exec argv; keep_fd (or -1) stays open across exec. */
static int start(char *const argv[], int keep_fd, const char *name, struct proc *p)
{
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		if (keep_fd >= 0)
			fcntl(keep_fd, F_SETFD, 0);
		if (bench_place.server_cpu >= 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(bench_place.server_cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		if (strchr(argv[0], '/'))
			execv(argv[0], argv);
		else
			execvp(argv[0], argv);
		_exit(127);
	}
	*p = (struct proc){ .pid = pid, .pidfd = pidfd_open(pid, 0) };
	snprintf(p->name, sizeof(p->name), "%s", name);
	track(p);
	return 0;
}

static void explain_exit(struct proc *p, const char *path)
{
	int status = -1;
	if (reap(p, 1000, &status) == 0) {
		if (status == 127)
			fprintf(stderr, "spillway-bench: cannot execute %s\n", path);
		else
			fprintf(stderr, "spillway-bench: %s exited with status %d before it was ready\n",
				path, status);
	} else {
		proc_stop(p, NULL);
	}
}

/* Read "tcp=PORT ..." from the ready pipe, bounded by READY_TIMEOUT_MS. */
static int read_ready(int fd, int *port)
{
	char line[128];
	size_t len = 0;
	uint64_t deadline = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
	while (len < sizeof(line) - 1) {
		uint64_t now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		len += (size_t)n;
		line[len] = '\0';
		if (strchr(line, '\n'))
			return sscanf(line, "tcp=%d", port) == 1 && *port > 0 ? 0 : -EPROTO;
	}
	return -EPROTO;
}

int spawn_spillwayd(const char *capacity, const char *psk_file, struct proc *p, int *port)
{
	return spawn_spillwayd_args(capacity, psk_file, NULL, p, port);
}

int spawn_spillwayd_args(const char *capacity, const char *psk_file, const char *const *extra,
			 struct proc *p, int *port)
{
	char path[PATH_MAX], fdtext[16];
	spawn_find_tool("spillwayd", "SPILLWAYD", path, sizeof(path));
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	snprintf(fdtext, sizeof(fdtext), "%d", pipefd[1]);
	char *argv[24] = { path, "--capacity", (char *)capacity,
			   "--listen", "tcp://127.0.0.1:0", "--metrics", "none",
			   "--ready-fd", fdtext, "--log-level", "warn",
			   /* not the host's default admin socket; extra may name one */
			   "--admin-socket", "none" };
	int argc = 13;
	if (psk_file) {
		argv[argc++] = "--psk-file";
		argv[argc++] = (char *)psk_file;
	}
	for (; extra && *extra && argc < 23; extra++)
		argv[argc++] = (char *)*extra;
	argv[argc] = NULL;
	int rc = start(argv, pipefd[1], "spillwayd", p);
	close(pipefd[1]);
	if (!rc) {
		rc = read_ready(pipefd[0], port);
		if (rc)
			explain_exit(p, path);
	}
	close(pipefd[0]);
	return rc;
}

const char *memcached_path(void)
{
	static char path[PATH_MAX];
	const char *e = getenv("MEMCACHED");
	if (e)
		return executable(e) ? e : NULL; /* set but unusable (e.g. "none"): skip */
	const char *dirs = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", dirs && *dirs ? dirs : "/usr/local/bin:/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/memcached", d);
		if (executable(path))
			return path;
	}
	return executable("/usr/bin/memcached") ? "/usr/bin/memcached" : NULL;
}

/* Retry connecting while p is alive, backing off 1, 2, 4 ... 64 ms. */
static int await_listener(struct proc *p, int port)
{
	uint64_t deadline = now_ns() + (uint64_t)MEMCACHED_TIMEOUT_MS * 1000000u;
	int backoff = 1;
	for (;;) {
		int fd = tcp_connect_loopback(port);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (fd != -ECONNREFUSED)
			return fd;
		if (now_ns() >= deadline)
			return -ETIMEDOUT;
		/* The pidfd turns readable if the child dies, ending the wait early. */
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
		if (poll(&pfd, p->pidfd >= 0 ? 1 : 0, backoff) > 0)
			return -ECHILD;
		if (backoff < 64)
			backoff *= 2;
	}
}

int spawn_memcached(const char *path, struct proc *p, int *port)
{
	char ptext[16];
	int fp = free_tcp_port();
	if (fp < 0)
		return fp;
	snprintf(ptext, sizeof(ptext), "%d", fp);
	char *argv[20] = { (char *)path, "-l", "127.0.0.1", "-p", ptext, "-U", "0",
			   "-t", "2", "-m", "1024", "-I", "2m" };
	int argc = 13;
	if (geteuid() == 0) {
		/* memcached refuses to run as root without -u. */
		argv[argc++] = "-u";
		argv[argc++] = "nobody";
	}
	argv[argc] = NULL;
	int rc = start(argv, -1, "memcached", p);
	if (rc)
		return rc;
	rc = await_listener(p, fp);
	if (rc) {
		explain_exit(p, path);
		return rc;
	}
	*port = fp;
	return 0;
}

int spawn_run(char *const argv[], int timeout_ms)
{
	struct proc p;
	int status = -1;
	int rc = start(argv, -1, argv[0], &p);
	if (rc)
		return rc;
	if (reap(&p, timeout_ms, &status)) {
		proc_stop(&p, NULL);
		return -ETIMEDOUT;
	}
	return status;
}

long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	long kib = -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
