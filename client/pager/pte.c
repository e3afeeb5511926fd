/* SPDX-License-Identifier: MIT */
/* Claiming and releasing a page's state word: BUSY is the per-page lock that
 * makes two threads faulting the same page cause one fetch. */
#include "pager.h"

int pte_try_claim(spill_ctx *x, uint32_t gpn, uint64_t *old)
{
	uint64_t o = pte_load(x, gpn);
	while (!(o & PTE_BUSY)) {
		if (atomic_compare_exchange_weak_explicit(&x->pte[gpn], &o, o | PTE_BUSY,
							  memory_order_acq_rel,
							  memory_order_acquire)) {
			*old = o;
			return 1;
		}
	}
	*old = o;
	return 0;
}

void pte_release(spill_ctx *x, uint32_t gpn, uint64_t new_word)
{
	uint64_t o = atomic_exchange_explicit(&x->pte[gpn], new_word & ~(uint64_t)(PTE_BUSY | PTE_WAIT),
					      memory_order_acq_rel);
	if (o & PTE_WAIT)
		futex_wake_all((void *)&x->pte[gpn]); /* low half on little endian */
}

void pte_wait(spill_ctx *x, uint32_t gpn)
{
	for (;;) {
		uint64_t o = pte_load(x, gpn);
		if (!(o & PTE_BUSY))
			return;
		if (!(o & PTE_WAIT) &&
		    !atomic_compare_exchange_weak(&x->pte[gpn], &o, o | PTE_WAIT))
			continue;
		futex_wait_u32((void *)&x->pte[gpn], (uint32_t)(o | PTE_WAIT));
	}
}
