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
 * Each resident page is in exactly one list. The lists are rings of 32-bit
 * page numbers sized to every far page, so they never overflow.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pager.h"

static uint64_t ring_count(const struct lru_ring *q)
{
	return q->head - q->tail;
}

static void ring_push(struct lru_ring *q, uint32_t gpn)
{
	q->slot[q->head++ & (q->cap - 1)] = gpn;
}

static uint32_t ring_pop(struct lru_ring *q)
{
	return q->slot[q->tail++ & (q->cap - 1)];
}

static int ring_resize(struct lru_ring *q, uint64_t cap)
{
	uint32_t *s = mmap(NULL, cap * sizeof(uint32_t), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s == MAP_FAILED)
		return -ENOMEM;
	madvise(s, cap * sizeof(uint32_t), MADV_DONTFORK);
	uint64_t n = ring_count(q);
	for (uint64_t i = 0; i < n; i++)
		s[i] = q->slot[(q->tail + i) & (q->cap - 1)];
	if (q->slot)
		sys_munmap(q->slot, q->cap * sizeof(uint32_t));
	q->slot = s;
	q->cap = cap;
	q->tail = 0;
	q->head = n;
	return 0;
}

int lru_init(spill_ctx *x)
{
	pthread_mutex_init(&x->lru_lock, NULL);
	if (ring_resize(&x->active, 1024) || ring_resize(&x->inactive, 1024))
		return -ENOMEM;
	return 0;
}

void lru_fini(spill_ctx *x)
{
	if (x->active.slot)
		sys_munmap(x->active.slot, x->active.cap * sizeof(uint32_t));
	if (x->inactive.slot)
		sys_munmap(x->inactive.slot, x->inactive.cap * sizeof(uint32_t));
	pthread_mutex_destroy(&x->lru_lock);
}

int lru_reserve(spill_ctx *x, uint64_t total_pages)
{
	uint64_t cap = x->active.cap;
	while (cap < total_pages)
		cap <<= 1;
	if (cap == x->active.cap)
		return 0;
	pthread_mutex_lock(&x->lru_lock);
	int rc = ring_resize(&x->active, cap);
	if (!rc)
		rc = ring_resize(&x->inactive, cap);
	pthread_mutex_unlock(&x->lru_lock);
	return rc;
}

void lru_insert(spill_ctx *x, uint32_t gpn)
{
	pthread_mutex_lock(&x->lru_lock);
	ring_push(&x->inactive, gpn);
	pthread_mutex_unlock(&x->lru_lock);
}

void lru_putback(spill_ctx *x, uint32_t gpn)
{
	lru_insert(x, gpn);
}

static void ring_filter(struct lru_ring *q, uint32_t gpn0, uint32_t n)
{
	uint64_t count = ring_count(q), kept = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t g = q->slot[(q->tail + i) & (q->cap - 1)];
		if (g - gpn0 >= n)
			q->slot[(q->tail + kept++) & (q->cap - 1)] = g;
	}
	q->head = q->tail + kept;
}

void lru_forget_range(spill_ctx *x, uint32_t gpn0, uint32_t n)
{
	pthread_mutex_lock(&x->lru_lock);
	ring_filter(&x->active, gpn0, n);
	ring_filter(&x->inactive, gpn0, n);
	pthread_mutex_unlock(&x->lru_lock);
}

/* Clear a flag unless the word changed under us in a way that matters. */
static void pte_clear(spill_ctx *x, uint32_t gpn, uint64_t flags)
{
	atomic_fetch_and(&x->pte[gpn], ~flags);
}

/* Keep the inactive list at least a third of the resident pages: move the
 * active list's oldest pages over, rotating referenced ones once. */
static void balance(spill_ctx *x)
{
	uint64_t budget = ring_count(&x->active) + 1;
	while (ring_count(&x->inactive) * 2 < ring_count(&x->active) && budget--) {
		uint32_t g = ring_pop(&x->active);
		uint64_t w = pte_load(x, g);
		if (!(w & PTE_RES))
			continue; /* stale: evicted another way */
		if (w & PTE_REF) {
			pte_clear(x, g, PTE_REF);
			ring_push(&x->active, g);
		} else {
			pte_clear(x, g, PTE_ACTIVE);
			ring_push(&x->inactive, g);
		}
	}
}

int lru_pick_victims(spill_ctx *x, uint32_t *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&x->lru_lock);
	balance(x);
	/* Look at each inactive page at most once per call. */
	uint64_t look = ring_count(&x->inactive);
	if (look == 0 && ring_count(&x->active)) {
		/* Everything is active: take the oldest active pages. */
		while (ring_count(&x->active) && ring_count(&x->inactive) < (uint64_t)max) {
			uint32_t g = ring_pop(&x->active);
			pte_clear(x, g, PTE_ACTIVE | PTE_REF);
			ring_push(&x->inactive, g);
		}
		look = ring_count(&x->inactive);
	}
	while (n < max && look--) {
		uint32_t g = ring_pop(&x->inactive);
		uint64_t w = pte_load(x, g);
		if (!(w & PTE_RES))
			continue;
		if ((w & (PTE_BUSY | PTE_PIN_MASK))) {
			ring_push(&x->inactive, g);
			continue;
		}
		if ((w & PTE_REF) && !(w & PTE_COLD)) {
			pte_clear(x, g, PTE_REF);
			atomic_fetch_or(&x->pte[g], PTE_ACTIVE);
			ring_push(&x->active, g);
			continue;
		}
		uint64_t old;
		if (!pte_try_claim(x, g, &old)) {
			ring_push(&x->inactive, g);
			continue;
		}
		if (!(old & PTE_RES)) {
			pte_release(x, g, old);
			continue;
		}
		if (old & PTE_PIN_MASK) { /* pinned since we looked */
			pte_release(x, g, old);
			ring_push(&x->inactive, g);
			continue;
		}
		out[n++] = g;
	}
	pthread_mutex_unlock(&x->lru_lock);
	return n;
}
