/* SPDX-License-Identifier: MIT */
/*
 * Prefetch: find the trend in the recent faults by majority vote over their
 * strides (as Leap does) and fetch ahead along it. The window doubles while
 * the trend holds (up to PREFETCH_MAX pages) and starts small again when it
 * breaks. A unit stride with a full window, or a region advised sequential,
 * turns into whole 2 MiB groups: one network op and one UFFDIO_COPY.
 *
 * Hits: userspace cannot see reads of a resident page, so a prefetched page
 * counts as a hit when the program's next fault along the trend lands past
 * it, meaning the program walked over it without faulting.
 */
#include <string.h>

#include "pager.h"

#define WINDOW_START 4

void prefetch_init(spill_ctx *x)
{
	memset(&x->pf, 0, sizeof(x->pf));
	pthread_mutex_init(&x->pf.lock, NULL);
}

/* Boyer-Moore majority over the strides between recent faults; 0 if none. */
static int64_t majority_stride(const struct prefetch *p)
{
	unsigned n = p->count < PREFETCH_HISTORY ? p->count : PREFETCH_HISTORY;
	if (n < 3)
		return 0;
	int64_t d[PREFETCH_HISTORY];
	unsigned nd = 0;
	for (unsigned i = 1; i < n; i++) {
		unsigned a = (p->pos - n + i - 1) % PREFETCH_HISTORY;
		unsigned b = (p->pos - n + i) % PREFETCH_HISTORY;
		d[nd++] = p->last[b] - p->last[a];
	}
	int64_t cand = 0;
	unsigned votes = 0;
	for (unsigned i = 0; i < nd; i++) {
		if (votes == 0)
			cand = d[i];
		votes += d[i] == cand ? 1 : (unsigned)-1;
	}
	unsigned count = 0;
	for (unsigned i = 0; i < nd; i++)
		count += d[i] == cand;
	return count * 2 > nd ? cand : 0;
}

/* Count the prefetched pages the program walked over since its last fault
 * along the trend: pages between that fault and this one (at most 4096). */
static void count_hits(spill_ctx *x, struct region *r, uint32_t gpn, int64_t stride,
		       int64_t last)
{
	uint64_t hits = 0;
	for (unsigned k = 1; k <= 4096; k++) {
		int64_t g = (int64_t)gpn - stride * (int64_t)k;
		if ((stride > 0 ? g <= last : g >= last) || g < r->gpn0 ||
		    g >= (int64_t)(r->gpn0 + r->npages))
			break;
		uint64_t w = pte_load(x, (uint32_t)g);
		if (!(w & PTE_PREF))
			continue;
		pte_prefetch_consumed(&x->pte[g]);
		hits++;
	}
	if (hits)
		atomic_fetch_add(&x->st.prefetch_hits, hits);
}

void prefetch_plan(spill_ctx *x, struct region *r, uint32_t gpn, struct pf_plan *plan)
{
	plan->n = 0;
	plan->group = 0;
	uint64_t budget = atomic_load(&x->budget);
	/* A group needs room for several of them in the budget. */
	int groups_fit = budget >= 4 * CHUNK_PAGES;
	if (r->advice == SPILL_SEQUENTIAL && groups_fit) {
		plan->group = 1;
		return;
	}
	if (x->cfg.no_prefetch || r->advice == SPILL_RANDOM)
		return;
	struct prefetch *p = &x->pf;
	pthread_mutex_lock(&p->lock);
	int64_t stride;
	int64_t last = p->count ? p->last[(p->pos - 1) % PREFETCH_HISTORY] : -1;
	int ahead_of_trend = p->stride > 0 ? (int64_t)gpn >= p->next_expected
					   : (int64_t)gpn <= p->next_expected;
	if (p->window && p->stride && ahead_of_trend &&
	    ((int64_t)gpn - p->next_expected) % p->stride == 0 &&
	    ((int64_t)gpn - last) / p->stride <= 4096) {
		/* The program walked over the whole window (and whatever was
		 * fetched ahead of it) and faulted after it, on the trend: the
		 * trend holds, and what it walked over was used. */
		stride = p->stride;
		count_hits(x, r, gpn, stride, last);
		p->window = p->window * 2 > PREFETCH_MAX ? PREFETCH_MAX : p->window * 2;
		/* Faults along a followed trend are a window apart; the history
		 * keeps the stride the program actually walks. */
		for (unsigned k = 0; k < PREFETCH_HISTORY; k++)
			p->last[(p->pos + k) % PREFETCH_HISTORY] =
				(int64_t)gpn - stride * (int64_t)(PREFETCH_HISTORY - 1 - k);
		p->pos += PREFETCH_HISTORY;
		p->count = PREFETCH_HISTORY;
	} else {
		p->last[p->pos % PREFETCH_HISTORY] = gpn;
		p->pos++;
		p->count++;
		stride = majority_stride(p);
		if (stride == 0 || stride > (int64_t)CHUNK_PAGES || stride < -(int64_t)CHUNK_PAGES) {
			p->window = 0;
			p->stride = 0;
			pthread_mutex_unlock(&p->lock);
			return;
		}
		if (stride != p->stride || !p->window)
			p->window = WINDOW_START;
	}
	p->stride = stride;
	unsigned window = p->window;
	/* Never more ahead than a quarter of the budget. */
	if (window > budget / 4)
		window = (unsigned)(budget / 4);
	int group = stride == 1 && window == PREFETCH_MAX && groups_fit;
	/* Where the next fault lands if the program uses what we fetch. */
	p->next_expected = group ? (int64_t)((gpn | (CHUNK_PAGES - 1)) + 1)
				 : (int64_t)gpn + stride * (int64_t)(window + 1);
	pthread_mutex_unlock(&p->lock);

	if (group) {
		plan->group = 1;
		return;
	}
	for (unsigned k = 1; k <= window; k++) {
		int64_t g = (int64_t)gpn + stride * (int64_t)k;
		if (g < r->gpn0 || g >= (int64_t)(r->gpn0 + r->npages))
			break;
		uint64_t w = pte_load(x, (uint32_t)g);
		if (w & (PTE_RES | PTE_BUSY | PTE_LOST))
			continue;
		plan->gpn[plan->n++] = (uint32_t)g;
	}
}
