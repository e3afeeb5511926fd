/* SPDX-License-Identifier: MIT */
/*
 * Fetching ahead of a sequential stream. In-thread fault service fetches
 * synchronously, so on its own a sequential scan alternates between waiting
 * for a group and working through it. After each group fetch the faulting
 * thread queues the next AHEAD_DEPTH groups here, and this thread fetches
 * them (one READ and one UFFDIO_COPY each) while the program works: the
 * program then finds them resident, or waits on their BUSY bits for a
 * transfer already under way.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pager.h"

#define AHEAD_DEPTH 2

/* Only when the budget holds many groups: otherwise fetching ahead would
 * evict what the program is about to read. */
static int worth_it(spill_ctx *x)
{
	return atomic_load(&x->budget) >= 16 * CHUNK_PAGES;
}

void ahead_request(spill_ctx *x, struct region *r, uint32_t gpn)
{
	if (!worth_it(x) || !x->ahead_thread)
		return;
	uint32_t next = (gpn | (CHUNK_PAGES - 1)) + 1;
	int queued = 0;
	pthread_mutex_lock(&x->ahead_lock);
	for (int k = 0; k < AHEAD_DEPTH; k++, next += CHUNK_PAGES) {
		if (next - r->gpn0 >= r->npages)
			break;
		/* Already resident or on its way: nothing to do. */
		uint64_t w = pte_load(x, next);
		if (w & (PTE_RES | PTE_BUSY))
			continue;
		int dup = 0;
		for (unsigned i = 0; i < x->ahead_n; i++)
			dup |= x->ahead_q[i] == next;
		if (!dup && x->ahead_n < AHEAD_QUEUE) {
			x->ahead_q[x->ahead_n++] = next;
			queued = 1;
		}
	}
	pthread_mutex_unlock(&x->ahead_lock);
	if (queued) {
		atomic_fetch_add(&x->ahead_kick, 1);
		futex_wake_all(&x->ahead_kick);
	}
}

static void *ahead_main(void *arg)
{
	spill_ctx *x = arg;
	spill_in_library = 1;
	while (!atomic_load(&x->stopping)) {
		unsigned seen = atomic_load(&x->ahead_kick);
		pthread_mutex_lock(&x->ahead_lock);
		uint32_t gpn = 0;
		int have = x->ahead_n > 0;
		if (have) {
			gpn = x->ahead_q[0];
			for (unsigned i = 1; i < x->ahead_n; i++)
				x->ahead_q[i - 1] = x->ahead_q[i];
			x->ahead_n--;
		}
		pthread_mutex_unlock(&x->ahead_lock);
		if (!have) {
			struct timespec ts = { 0, 100 * 1000000 };
			syscall(SYS_futex, &x->ahead_kick, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
			continue;
		}
		regions_enter(x);
		struct region *r = x->chunk_region[gpn >> CHUNK_SHIFT];
		if (r && r->live &&
		    atomic_load(&x->resident) + CHUNK_PAGES <= atomic_load(&x->budget))
			fault_fetch_group(x, r, gpn);
		pthread_rwlock_unlock(&x->regions_lock);
		evictor_kick(x);
	}
	return NULL;
}

int ahead_start(spill_ctx *x)
{
	pthread_mutex_init(&x->ahead_lock, NULL);
	return -pthread_create(&x->ahead_thread, NULL, ahead_main, x);
}

void ahead_stop(spill_ctx *x)
{
	atomic_fetch_add(&x->ahead_kick, 1);
	futex_wake_all(&x->ahead_kick);
	pthread_join(x->ahead_thread, NULL);
	x->ahead_thread = 0;
}
