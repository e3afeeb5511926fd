/* SPDX-License-Identifier: MIT */
/*
 * In-thread fault service (the default): userfaultfd with UFFD_FEATURE_SIGBUS
 * turns every fault on a far region into a SIGBUS in the faulting thread, and
 * the handler resolves it right there: no handler-thread wake-up, which is
 * most of a fault's cost on these machines (design.md; spillway-bench pager
 * measures both modes).
 *
 * A SIGBUS that is not ours (or a page lost for good) goes to whatever
 * handler the program had, or kills the process as SIGBUS would have.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "pager.h"

static struct sigaction previous;
__thread int spill_in_signal;

static void pass_on(int sig, siginfo_t *si, void *uc)
{
	if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
		previous.sa_sigaction(sig, si, uc);
		return;
	}
	if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
		return;
	}
	/* Default action: let the access fault again with SIGBUS at its
	 * default disposition, so the process dies of SIGBUS. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGBUS, &dfl, NULL);
}

/* x86-64 puts the page-fault error code in the signal context: bit 1 = write. */
static int was_write(void *uc)
{
#if defined(__x86_64__)
	const ucontext_t *u = uc;
	return (u->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
	(void)uc;
	return 0; /* a write then takes a second, write-protect fault */
#endif
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	spill_ctx *x = spill_active_ctx;
	int saved = errno;
	if (!x || si->si_code == BUS_MCEERR_AR || si->si_code == BUS_MCEERR_AO) {
		pass_on(sig, si, uc);
		errno = saved;
		return;
	}
	LIB_ENTER();
	int was_in_signal = spill_in_signal;
	spill_in_signal = 1;
	regions_enter(x);
	struct region *r = region_find(x, si->si_addr);
	int rc = r ? fault_resolve(x, r, si->si_addr, was_write(uc) ? FAULT_WRITE : 0) : -ENOENT;
	pthread_rwlock_unlock(&x->regions_lock);
	spill_in_signal = was_in_signal;
	LIB_LEAVE();
	if (rc)
		pass_on(sig, si, uc);
	errno = saved;
}

int fault_sigbus_install(spill_ctx *x)
{
#if defined(__x86_64__)
	x->has_write_hint = 1;
#endif
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, &previous) ? -errno : 0;
}

void fault_sigbus_remove(spill_ctx *x)
{
	(void)x;
	sigaction(SIGBUS, &previous, NULL);
}
