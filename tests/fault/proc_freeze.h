/* SPDX-License-Identifier: MIT */
/*
 * Freeze and thaw a process (a spillwayd a test started, by its pid in
 * struct srv): SIGSTOP, then wait until the kernel reports it stopped
 * (state 'T' in /proc/PID/stat); SIGCONT, then wait until it no longer is.
 * A frozen server keeps its sockets: the kernel still accepts connections
 * and buffers bytes for it, but nothing answers, as with a stalled machine.
 * Waits are bounded; they fail with -ETIMEDOUT rather than hang.
 */
#ifndef SPILLWAY_PROC_FREEZE_H
#define SPILLWAY_PROC_FREEZE_H

#include <sys/types.h>

/* The state letter of /proc/PID/stat ('R', 'S', 'T', ...), or -errno. */
int proc_freeze_state(pid_t pid);
/* SIGSTOP pid and wait until it is stopped. 0 or -errno. */
int proc_freeze(pid_t pid, int timeout_ms);
/* SIGCONT pid and wait until it runs again. 0 or -errno. */
int proc_thaw(pid_t pid, int timeout_ms);

#endif
