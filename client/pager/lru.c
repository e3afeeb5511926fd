/* SPDX-License-Identifier: MIT */
/*
 * The LRU approximation: an active and an inactive FIFO of resident pages,
 * with second chance. A page enters the inactive list when it becomes
 * resident. Userspace sees no accessed bits, so "referenced" means the page
 * took a fault since it was last looked at: a first write to it (the
 * write-protect fault) or a prefetched page the program walked over. A
 * referenced page at the inactive tail moves to the active list instead of
 * being evicted; the active list drains back into the inactive one, oldest
 * first, giving its referenced pages one more round.
 *
 * Each resident page is in exactly one list, linked through a 32-bit next
 * index per far page: with the state word, 12 bytes of bookkeeping a page.
 */
#include <errno.h>
#include <sys/mman.h>

#include "pager.h"

#define NEXT_BYTES ((1ull << MAX_GPN_BITS) * sizeof(uint32_t))

static void push(spill_ctx *x, struct lru_list *q, uint32_t g)
{
	x->lru_next[g] = LRU_NONE;
	if (q->count++)
		x->lru_next[q->tail] = g;
	else
		q->head = g;
	q->tail = g;
}

static uint32_t pop(spill_ctx *x, struct lru_list *q)
{
	uint32_t g = q->head;
	q->head = x->lru_next[g];
	if (--q->count == 0)
		q->head = q->tail = LRU_NONE;
	return g;
}

int lru_init(spill_ctx *x)
{
	pthread_mutex_init(&x->lru_lock, NULL);
	x->active = x->inactive = (struct lru_list){ LRU_NONE, LRU_NONE, 0 };
	x->lru_next = mmap(NULL, NEXT_BYTES, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (x->lru_next == MAP_FAILED) {
		x->lru_next = NULL;
		return -ENOMEM;
	}
	madvise(x->lru_next, NEXT_BYTES, MADV_DONTFORK);
	return 0;
}

void lru_fini(spill_ctx *x)
{
	if (x->lru_next)
		sys_munmap(x->lru_next, NEXT_BYTES);
	x->lru_next = NULL;
	pthread_mutex_destroy(&x->lru_lock);
}

void lru_insert(spill_ctx *x, uint32_t gpn)
{
	pthread_mutex_lock(&x->lru_lock);
	push(x, &x->inactive, gpn);
	pthread_mutex_unlock(&x->lru_lock);
}

void lru_putback(spill_ctx *x, uint32_t gpn)
{
	lru_insert(x, gpn);
}

static void filter(spill_ctx *x, struct lru_list *q, uint32_t gpn0, uint32_t n)
{
	uint64_t count = q->count;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t g = pop(x, q);
		if (g - gpn0 >= n)
			push(x, q, g);
	}
}

void lru_forget_range(spill_ctx *x, uint32_t gpn0, uint32_t n)
{
	pthread_mutex_lock(&x->lru_lock);
	filter(x, &x->active, gpn0, n);
	filter(x, &x->inactive, gpn0, n);
	pthread_mutex_unlock(&x->lru_lock);
}

/* Keep the inactive list at least a third of the resident pages: move the
 * active list's oldest pages over, rotating referenced ones once. */
static void balance(spill_ctx *x)
{
	uint64_t budget = x->active.count + 1;
	while (x->inactive.count * 2 < x->active.count && budget--) {
		uint32_t g = pop(x, &x->active);
		uint64_t w = pte_load(x, g);
		if (!(w & PTE_RES))
			continue; /* stale: evicted another way */
		if (w & PTE_REF) {
			pte_order_clear(&x->pte[g], PTE_REF);
			push(x, &x->active, g);
		} else {
			pte_order_clear(&x->pte[g], PTE_ACTIVE);
			push(x, &x->inactive, g);
		}
	}
}

int lru_pick_victims(spill_ctx *x, uint32_t *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&x->lru_lock);
	balance(x);
	if (x->inactive.count == 0) {
		/* Everything is active: take the oldest active pages. */
		while (x->active.count && x->inactive.count < (uint64_t)max) {
			uint32_t g = pop(x, &x->active);
			pte_order_clear(&x->pte[g], PTE_ACTIVE | PTE_REF);
			push(x, &x->inactive, g);
		}
	}
	/* Look at each inactive page at most once per pass. A pass that only
	 * gave referenced pages their second chance (every page fresh from a
	 * fault is referenced) found no victim although those pages are
	 * evictable now: look once more, so the evictor does not take an
	 * empty pick for "nothing can go" and mark itself stuck. */
	int promoted = 0, retried = 0;
	uint64_t look = x->inactive.count;
again:
	while (n < max && look--) {
		uint32_t g = pop(x, &x->inactive);
		uint64_t w = pte_load(x, g);
		if (!(w & PTE_RES))
			continue;
		if (w & (PTE_BUSY | PTE_PIN_MASK)) {
			push(x, &x->inactive, g);
			continue;
		}
		if ((w & PTE_REF) && !(w & PTE_COLD)) {
			pte_order_clear(&x->pte[g], PTE_REF);
			pte_activate(&x->pte[g]);
			push(x, &x->active, g);
			promoted++;
			continue;
		}
		uint64_t old;
		if (!pte_try_claim(x, g, &old)) {
			push(x, &x->inactive, g);
			continue;
		}
		if (!(old & PTE_RES)) {
			pte_release(x, g, old);
			continue;
		}
		if (old & PTE_PIN_MASK) { /* pinned since we looked */
			pte_release(x, g, old);
			push(x, &x->inactive, g);
			continue;
		}
		out[n++] = g;
	}
	if (n == 0 && promoted && !retried) {
		/* The promoted pages sit in the active list, referenced bit
		 * cleared: bring the oldest active ones back as candidates. */
		retried = 1;
		for (int k = 0; k < max && x->active.count; k++) {
			uint32_t g = pop(x, &x->active);
			pte_order_clear(&x->pte[g], PTE_ACTIVE | PTE_REF);
			push(x, &x->inactive, g);
		}
		look = x->inactive.count;
		goto again;
	}
	pthread_mutex_unlock(&x->lru_lock);
	return n;
}
