/* SPDX-License-Identifier: MIT */
/*
 * Resolving a fault, whichever thread serves it: a never-written page gets
 * zeros (no network), a remote page is fetched (with whatever the prefetcher
 * or the region's advice adds, a whole 2 MiB group at once when access is
 * sequential), a first write to a clean page lifts its write protection and
 * marks it dirty. A page whose copies are all gone is poisoned: SIGBUS.
 *
 * The caller holds regions_lock for reading, so the region stays mapped.
 * BUSY on a page's word makes concurrent faults on it wait for one fetch.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "pager.h"

/* A 2 MiB staging buffer, or NULL when all are in use. */
static int bounce_get(spill_ctx *x)
{
	unsigned m = atomic_load(&x->bounce_free);
	while (m) {
		int i = __builtin_ctz(m);
		if (atomic_compare_exchange_weak(&x->bounce_free, &m, m & ~(1u << i)))
			return i;
	}
	return -1;
}

static void bounce_put(spill_ctx *x, int i)
{
	atomic_fetch_or(&x->bounce_free, 1u << i);
}

static void install_failed(spill_ctx *x, uint32_t gpn, uint64_t old)
{
	/* The range was unmapped under us (munmap outside spill_free): leave
	 * the word as it was. */
	pte_release(x, gpn, old);
}

/* Mark gpn lost for good and poison it: every later touch is SIGBUS. */
static void mark_lost(spill_ctx *x, struct region *r, uint32_t gpn, uint64_t old)
{
	if (old & PTE_REMOTE)
		atomic_fetch_sub(&x->st.remote_pages, 1);
	atomic_fetch_add(&x->st.lost_pages, 1);
	uffd_poison(x, page_addr(r, gpn), PG_SIZE);
	pte_release(x, gpn, pte_lost(old));
}

/* A resident page faulted: a write to a clean page, a fault that another
 * thread resolved first, or a page the program dropped with madvise. */
static int on_resident(spill_ctx *x, struct region *r, uint32_t gpn, int flags)
{
	uint64_t old;
	if (!pte_try_claim(x, gpn, &old)) {
		pte_wait(x, gpn);
		return 0;
	}
	void *addr = page_addr(r, gpn);
	if (!(old & PTE_RES) || (old & PTE_LOST)) {
		pte_release(x, gpn, old);
		return 0;
	}
	/* A read fault on a resident page is spurious (another thread just
	 * installed it): retry. Should a kernel not report writes, the same
	 * page faulting again at once is taken for a write, never a loop. */
	static __thread uint32_t last_spurious = ~0u;
	int again = x->mode == SPILL_FAULT_INTHREAD && last_spurious == gpn;
	last_spurious = ~0u;
	if ((old & PTE_WP) && !(flags & FAULT_MISSING) &&
	    ((flags & (FAULT_WRITE | FAULT_WP)) || again ||
	     (x->mode == SPILL_FAULT_INTHREAD && !x->has_write_hint))) {
		/* Without a write hint, a fault in-thread on a resident
		 * write-protected page is taken for a write (a read that raced
		 * the install then costs an early dirty bit, nothing else). */
		if (uffd_wp(x, addr, PG_SIZE, 0)) {
			pte_release(x, gpn, old);
			return 0;
		}
		atomic_fetch_add(&x->st.wp_faults, 1);
		pte_release(x, gpn, pte_write_enabled(old));
		return 0;
	}
	/* Mapped after all: a fault another thread resolved first (in
	 * handler mode its event may still be queued). */
	unsigned char vec = 1;
	if (mincore(addr, PG_SIZE, &vec) || (vec & 1)) {
		pte_release(x, gpn, old);
		last_spurious = gpn;
		return 0;
	}
	/* The program dropped the page (MADV_DONTNEED): it reads as zeros now,
	 * as it would have without us. If the copy finds it mapped (EEXIST),
	 * it was not dropped after all: leave it. */
	int wp = !(flags & FAULT_WRITE);
	if (uffd_copy(x, addr, x->zeros, PG_SIZE, wp)) {
		install_failed(x, gpn, old);
		return 0;
	}
	if (old & PTE_REMOTE)
		atomic_fetch_sub(&x->st.remote_pages, 1);
	pte_release(x, gpn, pte_refilled_zeros(old, wp));
	return 0;
}

/* Claim gpn for fetching: not resident, not busy, not lost. */
static int claim_missing(spill_ctx *x, uint32_t gpn, uint64_t *old)
{
	if (!pte_try_claim(x, gpn, old))
		return 0;
	if (*old & (PTE_RES | PTE_LOST)) {
		pte_release(x, gpn, *old);
		return 0;
	}
	return 1;
}

/* The fetch set: the faulting page plus what the plan adds, claimed. */
struct fetch {
	uint32_t gpn[CHUNK_PAGES];
	uint64_t old[CHUNK_PAGES];
	int n;
};

static void add_claimed(struct fetch *f, uint32_t gpn, uint64_t old)
{
	f->gpn[f->n] = gpn;
	f->old[f->n] = old;
	f->n++;
}

static void gather(spill_ctx *x, struct region *r, uint32_t gpn, uint64_t old,
		   const struct pf_plan *plan, struct fetch *f)
{
	f->n = 0;
	if (plan->group) {
		/* From the faulting page to the group's end: a sequential stream
		 * is done with the pages before it. A fault at the group's start
		 * moves the whole group. */
		uint32_t first = gpn, end = (gpn & ~(CHUNK_PAGES - 1)) + CHUNK_PAGES;
		for (uint32_t g = first; g < end; g++) {
			uint64_t o;
			if (g == gpn)
				add_claimed(f, g, old);
			else if (g - r->gpn0 < r->npages && claim_missing(x, g, &o))
				add_claimed(f, g, o);
		}
		return;
	}
	add_claimed(f, gpn, old);
	for (int i = 0; i < plan->n && f->n < PREFETCH_MAX + 1; i++) {
		uint64_t o;
		if (claim_missing(x, plan->gpn[i], &o))
			add_claimed(f, plan->gpn[i], o);
	}
}

/* Sort by page number (small n; insertion sort keeps old[] paired). */
static void sort_fetch(struct fetch *f)
{
	for (int i = 1; i < f->n; i++) {
		uint32_t g = f->gpn[i];
		uint64_t o = f->old[i];
		int j = i;
		for (; j > 0 && f->gpn[j - 1] > g; j--) {
			f->gpn[j] = f->gpn[j - 1];
			f->old[j] = f->old[j - 1];
		}
		f->gpn[j] = g;
		f->old[j] = o;
	}
}

/* Install fetched pages [i, j) of f from src (contiguous pages), then
 * publish their words. The faulting page becomes dirty if written. */
static void install_run(spill_ctx *x, struct region *r, struct fetch *f, int i, int j,
			const uint8_t *src, uint32_t fault_gpn, int write)
{
	void *dst = page_addr(r, f->gpn[i]);
	size_t len = (size_t)(j - i) * PG_SIZE;
	if (uffd_copy(x, dst, src, len, 1)) {
		/* Some page got mapped behind our back: go page by page. */
		for (int k = i; k < j; k++)
			if (uffd_copy(x, page_addr(r, f->gpn[k]), src + (size_t)(k - i) * PG_SIZE,
				      PG_SIZE, 1)) {
				install_failed(x, f->gpn[k], f->old[k]);
				f->old[k] = ~0ull; /* released */
			}
	}
	int installed = 0;
	for (int k = i; k < j; k++) {
		if (f->old[k] == ~0ull)
			continue;
		uint32_t g = f->gpn[k];
		enum pte_fetch_role role = PTE_FETCH_AHEAD;
		if (g == fault_gpn) {
			/* Referenced right now: it must not be the first page the
			 * evictor takes while the program is about to use it. */
			role = write && !uffd_wp(x, page_addr(r, g), PG_SIZE, 0) ? PTE_FETCH_WRITTEN
										 : PTE_FETCH_FAULTED;
		}
		lru_insert(x, g);
		installed++;
		pte_release(x, g, pte_fetched(f->old[k], role));
	}
	atomic_fetch_add(&x->resident, (uint64_t)installed);
}

/* Read the claimed pages and install them. A span is consecutive claimed
 * pages of one 2 MiB group that all have remote copies (one READ; a whole
 * group when none of it is resident), or that all are never-written zero
 * pages (no READ). Returns 0 when the faulting page could not be read from
 * any replica. */
static int fetch_and_install(spill_ctx *x, struct region *r, struct fetch *f,
			     uint32_t fault_gpn, int write, uint8_t *buf)
{
	struct read_run spans[PREFETCH_MAX + 1];
	int first[PREFETCH_MAX + 1], last[PREFETCH_MAX + 1], nspans = 0;
	size_t off = 0;
	for (int i = 0; i < f->n;) {
		/* Only claimed pages are read (a page between them may be under
		 * eviction, and a READ racing its WRITE fails its checksum), and
		 * never-written pages never are: they are zeros, locally. */
		int j = i + 1;
		while (j < f->n && f->gpn[j] == f->gpn[j - 1] + 1 &&
		       (f->gpn[j] >> CHUNK_SHIFT) == (f->gpn[i] >> CHUNK_SHIFT) &&
		       (f->old[j] & PTE_REMOTE) == (f->old[i] & PTE_REMOTE))
			j++;
		if (nspans == PREFETCH_MAX) {
			/* Too fragmented: leave the rest for later faults, but
			 * keep the faulting page as the last span. */
			int keep = -1;
			for (int k = i; k < f->n; k++) {
				if (f->gpn[k] == fault_gpn)
					keep = k;
				else
					pte_release(x, f->gpn[k], f->old[k]);
			}
			if (keep < 0) {
				f->n = i;
				break;
			}
			f->gpn[i] = f->gpn[keep];
			f->old[i] = f->old[keep];
			f->n = i + 1;
			j = i + 1;
		}
		struct read_run *sp = &spans[nspans];
		memset(sp->need, 0, sizeof(sp->need));
		int remote = 0;
		for (int k = i; k < j; k++)
			if (f->old[k] & PTE_REMOTE) {
				uint32_t bit = f->gpn[k] - f->gpn[i];
				sp->need[bit / 8] |= (uint8_t)(1u << (bit % 8));
				remote = 1;
			}
		sp->gpn = f->gpn[i];
		sp->n = (uint16_t)(f->gpn[j - 1] - f->gpn[i] + 1);
		sp->buf = buf + off;
		sp->status = remote ? -EAGAIN : 1; /* 1: zero pages only */
		first[nspans] = i;
		last[nspans] = j;
		off += (size_t)sp->n * PG_SIZE;
		nspans++;
		i = j;
	}
	/* Read the spans that hold remote pages, pipelined. */
	remote_read_runs(x, spans, nspans, CONN_FAULT0);
	for (int i = 0; i < nspans; i++)
		if (spans[i].status == 0)
			atomic_fetch_add(&x->st.remote_reads, spans[i].n);
	int fault_ok = 1;
	for (int i = 0; i < nspans; i++) {
		struct read_run *sp = &spans[i];
		if (sp->status == 1) {
			memset(sp->buf, 0, (size_t)sp->n * PG_SIZE);
			sp->status = 0;
		}
		if (sp->status == 0) {
			/* Install each stretch of consecutive claimed pages. */
			for (int k = first[i]; k < last[i];) {
				int e = k + 1;
				while (e < last[i] && f->gpn[e] == f->gpn[e - 1] + 1)
					e++;
				install_run(x, r, f, k, e,
					    (uint8_t *)sp->buf + (size_t)(f->gpn[k] - sp->gpn) * PG_SIZE,
					    fault_gpn, write);
				k = e;
			}
			continue;
		}
		/* No replica answered for the whole span: release it; the
		 * faulting page is retried alone by the caller. */
		for (int k = first[i]; k < last[i]; k++) {
			if (f->gpn[k] == fault_gpn)
				fault_ok = 0;
			else
				pte_release(x, f->gpn[k], f->old[k]);
		}
	}
	return fault_ok;
}

static int fetch_one(spill_ctx *x, struct region *r, uint32_t gpn, uint64_t old, int write)
{
	uint8_t buf[PG_SIZE] __attribute__((aligned(64)));
	struct fetch f1;
	f1.n = 0;
	add_claimed(&f1, gpn, old);
	if (fetch_and_install(x, r, &f1, gpn, write, buf))
		return 0;
	mark_lost(x, r, gpn, old);
	return -EFAULT;
}

int fault_resolve(spill_ctx *x, struct region *r, void *addr, int flags)
{
	uint32_t gpn = r->gpn0 + (uint32_t)(((uint8_t *)addr - r->base) / PG_SIZE);
	uint64_t w = pte_load(x, gpn);
	if (w & PTE_LOST)
		return -EFAULT;
	if (w & PTE_BUSY) {
		pte_wait(x, gpn);
		return 0;
	}
	if (w & PTE_RES)
		return on_resident(x, r, gpn, flags);

	evictor_wait_room(x, 1);
	uint64_t old;
	if (!claim_missing(x, gpn, &old)) {
		pte_wait(x, gpn);
		return (pte_load(x, gpn) & PTE_LOST) ? -EFAULT : 0;
	}
	int write = (flags & FAULT_WRITE) != 0;
	atomic_fetch_add(&x->st.faults, 1);

	struct pf_plan plan;
	prefetch_plan(x, r, gpn, &plan);
	/* Room for everything this fault installs, not just its own page. */
	if (plan.group || plan.n)
		evictor_wait_room(x, plan.group ? CHUNK_PAGES - (gpn & (CHUNK_PAGES - 1))
						: (unsigned)plan.n + 1);
	if (!(old & PTE_REMOTE) && !plan.group && plan.n == 0) {
		/* Never written: zeros, locally. */
		atomic_fetch_add(&x->st.zero_fills, 1);
		if (uffd_copy(x, page_addr(r, gpn), x->zeros, PG_SIZE, !write)) {
			install_failed(x, gpn, old);
			return 0;
		}
		lru_insert(x, gpn);
		atomic_fetch_add(&x->resident, 1);
		pte_release(x, gpn, pte_zero_filled(old, write));
		evictor_kick(x);
		return 0;
	}
	if (!(old & PTE_REMOTE))
		atomic_fetch_add(&x->st.zero_fills, 1);
	int b = (plan.group || plan.n) ? bounce_get(x) : -1;
	if (b < 0)
		return fetch_one(x, r, gpn, old, write);
	static __thread struct fetch f;
	gather(x, r, gpn, old, &plan, &f);
	sort_fetch(&f);
	if (plan.group && f.n > 1)
		atomic_fetch_add(&x->st.group_fetches, 1);
	atomic_fetch_add(&x->st.prefetched, (uint64_t)(f.n - 1));
	int ok = fetch_and_install(x, r, &f, gpn, write, x->bounce + (size_t)b * CHUNK_BYTES);
	bounce_put(x, b);
	evictor_kick(x);
	if (plan.group)
		ahead_request(x, r, gpn);
	if (ok)
		return 0;
	return fetch_one(x, r, gpn, old, write);
}

int fault_fetch_group(spill_ctx *x, struct region *r, uint32_t first)
{
	uint64_t old;
	if (!claim_missing(x, first, &old))
		return 0;
	int b = bounce_get(x);
	if (b < 0) {
		pte_release(x, first, old);
		return -EBUSY;
	}
	struct pf_plan plan = { .group = 1 };
	static __thread struct fetch f;
	gather(x, r, first, old, &plan, &f);
	sort_fetch(&f);
	atomic_fetch_add(&x->st.prefetched, (uint64_t)f.n);
	if (f.n > 1)
		atomic_fetch_add(&x->st.group_fetches, 1);
	fetch_and_install(x, r, &f, ~0u, 0, x->bounce + (size_t)b * CHUNK_BYTES);
	bounce_put(x, b);
	return 0;
}

void fault_willneed(spill_ctx *x, struct region *r, uint32_t gpn, uint32_t n)
{
	/* Group by group, as a sequential fault would, up to the budget. */
	for (uint32_t g = gpn & ~(CHUNK_PAGES - 1); g < gpn + n; g += CHUNK_PAGES) {
		if (atomic_load(&x->resident) + CHUNK_PAGES > atomic_load(&x->budget))
			break;
		if (fault_fetch_group(x, r, g < gpn ? gpn : g) == -EBUSY)
			break;
	}
	evictor_kick(x);
}
