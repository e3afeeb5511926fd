/* SPDX-License-Identifier: MIT */
/*
 * Pins: a system call that reads into or writes from a far buffer (read(2),
 * write(2), ...) cannot take our SIGBUS fault in in-thread mode; the kernel
 * returns EFAULT instead. The wrappers in syscall_wrap.c make the buffer
 * resident (and writable, for reads into it) and pin it against eviction
 * for the duration of the call.
 */
#include <errno.h>

#include "pager.h"

int fault_pin(spill_ctx *x, void *addr, size_t len, int write)
{
	if (len == 0)
		return 0;
	uint8_t *start = (uint8_t *)((uintptr_t)addr & ~(uintptr_t)(PG_SIZE - 1));
	uint8_t *end = (uint8_t *)addr + len, *p = start;
	int rc = 0;
	regions_enter(x);
	struct region *r = NULL;
	for (; p < end; p += PG_SIZE) {
		if (!r || p >= r->base + r->npages * PG_SIZE) {
			r = region_find(x, p);
			if (!r)
				break; /* fault_unpin stops at the same place */
		}
		uint32_t gpn = r->gpn0 + (uint32_t)((p - r->base) / PG_SIZE);
		while (!pte_try_pin(&x->pte[gpn], write)) {
			rc = fault_resolve(x, r, p, write ? FAULT_WRITE : 0);
			if (rc)
				goto out;
		}
	}
out:
	pthread_rwlock_unlock(&x->regions_lock);
	if (rc)
		fault_unpin(x, start, (size_t)(p - start));
	return rc;
}

void fault_unpin(spill_ctx *x, void *addr, size_t len)
{
	if (len == 0)
		return;
	uint8_t *p = (uint8_t *)((uintptr_t)addr & ~(uintptr_t)(PG_SIZE - 1));
	uint8_t *end = (uint8_t *)addr + len;
	regions_enter(x);
	struct region *r = NULL;
	for (; p < end; p += PG_SIZE) {
		if (!r || p >= r->base + r->npages * PG_SIZE)
			r = region_find(x, p);
		if (!r)
			break;
		pte_unpin(&x->pte[r->gpn0 + (uint32_t)((p - r->base) / PG_SIZE)]);
	}
	pthread_rwlock_unlock(&x->regions_lock);
}
