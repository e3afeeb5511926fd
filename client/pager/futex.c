/* SPDX-License-Identifier: MIT */
/* Futex waits: the fault path may run inside a signal handler, where a
 * condition variable is not safe to use; a futex on our own words is. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pager.h"

void futex_wait_u32(void *addr, uint32_t val)
{
	/* Bounded, so a lost wake-up costs a millisecond, never a hang. */
	struct timespec ts = { 0, 1000000 };
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

void futex_wake_all(void *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
