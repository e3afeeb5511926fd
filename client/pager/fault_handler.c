/* SPDX-License-Identifier: MIT */
/*
 * Handler-thread fault service (SPILL_FAULT_HANDLER): library threads read
 * fault events from the userfaultfd and resolve them while the faulting
 * thread sleeps in the kernel. Slower per fault than in-thread service (a
 * thread wake-up each way), but the kernel's own accesses to far memory
 * (read(2) into a far buffer, ...) fault like any other.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "pager.h"

static void serve(spill_ctx *x, const struct uffd_msg *m)
{
	void *addr = (void *)(uintptr_t)(m->arg.pagefault.address & ~(uint64_t)(PG_SIZE - 1));
	uint64_t f = m->arg.pagefault.flags;
	int flags = (f & UFFD_PAGEFAULT_FLAG_WRITE) ? FAULT_WRITE : 0;
	flags |= (f & UFFD_PAGEFAULT_FLAG_WP) ? FAULT_WP : FAULT_MISSING;
	regions_enter(x);
	struct region *r = region_find(x, addr);
	int rc = r ? fault_resolve(x, r, addr, flags) : -ENOENT;
	pthread_rwlock_unlock(&x->regions_lock);
	if (rc == -EFAULT && !x->has_poison) {
		/* Lost page and no UFFDIO_POISON: the thread gets its SIGBUS
		 * from us. */
		syscall(SYS_tgkill, getpid(), (pid_t)m->arg.pagefault.feat.ptid, SIGBUS);
	}
	/* Whatever happened, let the thread retry: it faults again if the page
	 * is still not there. */
	uffd_wake(x, addr, PG_SIZE);
}

static void *handler_main(void *arg)
{
	spill_ctx *x = arg;
	spill_in_library = 1;
	struct pollfd p[2] = { { x->uffd, POLLIN, 0 }, { x->stop_fd, POLLIN, 0 } };
	while (!atomic_load(&x->stopping)) {
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		struct uffd_msg m[8];
		ssize_t n = read(x->uffd, m, sizeof(m));
		if (n <= 0)
			continue;
		for (size_t i = 0; i < (size_t)n / sizeof(m[0]); i++)
			if (m[i].event == UFFD_EVENT_PAGEFAULT)
				serve(x, &m[i]);
	}
	return NULL;
}

int fault_handlers_start(spill_ctx *x)
{
	x->nhandlers = 2;
	for (int i = 0; i < x->nhandlers; i++) {
		int rc = pthread_create(&x->handlers[i], NULL, handler_main, x);
		if (rc) {
			x->nhandlers = i;
			return -rc;
		}
	}
	return 0;
}

void fault_handlers_stop(spill_ctx *x)
{
	for (int i = 0; i < x->nhandlers; i++)
		pthread_join(x->handlers[i], NULL);
	x->nhandlers = 0;
}
