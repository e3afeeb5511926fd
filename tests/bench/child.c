/* SPDX-License-Identifier: MIT */
/*
 * Each case of `spillway-bench pager` runs in a child process: the kernel
 * swap case must (the memory cgroup limits a process), and it also gives
 * every case a fresh address space and pager context, and turns a crash of
 * the library under test into a reported failure instead of a dead bench.
 * Results come back in a shared anonymous mapping.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_pager.h"

static volatile pid_t current;

void child_kill_current(void)
{
	pid_t pid = current;
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		current = 0;
	}
}

int child_run(int (*fn)(void *arg, void *out), void *arg, void *out, size_t out_bytes,
	      int timeout_ms, char *why, size_t why_cap)
{
	why[0] = '\0';
	void *shared = mmap(NULL, out_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    -1, 0);
	if (shared == MAP_FAILED)
		return -errno;
	memset(shared, 0, out_bytes);
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		munmap(shared, out_bytes);
		return -e;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		/* The parent's fatal-signal cleanup (stop spillwayd, swapoff) is
		 * not the child's to run. */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		int rc = fn(arg, shared);
		fflush(NULL);
		_exit(rc ? 1 : 0); /* no atexit handlers: they belong to the parent */
	}
	current = pid;
	int pidfd = pidfd_open(pid, 0), rc = 0, ws = 0;
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	if (pidfd >= 0 && poll(&p, 1, timeout_ms) == 0) {
		snprintf(why, why_cap, "timed out after %d s", timeout_ms / 1000);
		kill(pid, SIGKILL);
		rc = -ETIMEDOUT;
	}
	waitpid(pid, &ws, 0);
	current = 0;
	if (pidfd >= 0)
		close(pidfd);
	if (!rc && WIFSIGNALED(ws)) {
		snprintf(why, why_cap, "child killed by signal %d (%s)", WTERMSIG(ws),
			 strsignal(WTERMSIG(ws)));
		rc = -ECHILD;
	} else if (!rc && WEXITSTATUS(ws) == 127) {
		snprintf(why, why_cap, "child did not start");
		rc = -ECHILD;
	}
	memcpy(out, shared, out_bytes);
	munmap(shared, out_bytes);
	return rc;
}
