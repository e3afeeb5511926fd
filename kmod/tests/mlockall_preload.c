/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD=libspill-mlockall.so PROGRAM: lock all of PROGRAM's memory,
 * present and future, as it starts, and mark it an I/O flusher.
 *
 * For the VM tests only. There the spillwayd that serves the swap device
 * runs on the same machine as the swapping kernel: if any page of the
 * server itself (heap, stack, code) were swapped out to the device it
 * serves, bringing it back would need the server, which would be waiting
 * for that very page. spillwayd --mlock locks the pool only. And when the
 * whole machine is short of memory, an allocation of the server must not
 * wait for swap-out either: PR_SET_IO_FLUSHER makes its reclaim GFP_NOIO,
 * as for any userspace block server. (A server on another machine, the
 * real deployment, has neither loop.)
 */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

__attribute__((constructor)) static void lock_everything(void)
{
	/* Not MCL_ONFAULT: a code page first touched later could by then sit
	 * in the swap this process serves (the guest's files live in tmpfs).
	 * Keep thread stacks small (ulimit -s) since they get populated too. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		perror("libspill-mlockall: mlockall");
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		perror("libspill-mlockall: PR_SET_IO_FLUSHER");
}
