/* SPDX-License-Identifier: MIT */
/*
 * SIGSTOP / SIGCONT with a wait for the state change (proc_freeze.h). The
 * wait reads /proc/PID/task/TID/stat until every thread is in the state asked
 * for: the signal is delivered asynchronously and each thread of a
 * multi-threaded server stops on its own, so kill() returning says nothing.
 */
#include "proc_freeze.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int stat_state(const char *path)
{
	char buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -e : -EIO;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses; the last
	 * ')' ends it. */
	char *rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ' || !rp[2])
		return -EIO;
	return (unsigned char)rp[2];
}

int proc_freeze_state(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return stat_state(path);
}

/* 1 if every thread of pid is stopped == (state 'T' or 't'), 0 if not, or
 * -errno. */
static int threads_in_state(pid_t pid, int stopped)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int all = 1;
	struct dirent *e;
	while (all && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sp[96];
		snprintf(sp, sizeof(sp), "/proc/%d/task/%.20s/stat", (int)pid, e->d_name);
		int st = stat_state(sp);
		if (st == -ENOENT)
			continue; /* a thread that just exited */
		if (st < 0) {
			all = st;
			break;
		}
		all = (st == 'T' || st == 't') == stopped;
	}
	closedir(d);
	return all;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Read the threads' states every millisecond until they all match. */
static int wait_state(pid_t pid, int stopped, int timeout_ms)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int rc = threads_in_state(pid, stopped);
		if (rc < 0)
			return rc;
		if (rc)
			return 0;
		if (elapsed_ms(&t0) > timeout_ms)
			return -ETIMEDOUT;
		struct timespec ms = { 0, 1000000L };
		nanosleep(&ms, NULL);
	}
}

int proc_freeze(pid_t pid, int timeout_ms)
{
	if (pid <= 0)
		return -EINVAL;
	if (kill(pid, SIGSTOP))
		return -errno;
	return wait_state(pid, 1, timeout_ms);
}

int proc_thaw(pid_t pid, int timeout_ms)
{
	if (pid <= 0)
		return -EINVAL;
	if (kill(pid, SIGCONT))
		return -errno;
	return wait_state(pid, 0, timeout_ms);
}
