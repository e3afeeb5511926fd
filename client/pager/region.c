/* SPDX-License-Identifier: MIT */
/*
 * Far regions: reserving address space and page numbers, registering with
 * userfaultfd, looking an address up (through a small per-thread TLB), and
 * tearing a region down while other threads may be faulting on it.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "pager.h"

#define GPN_SPACE   (1ull << MAX_GPN_BITS)
#define CHUNK_SPACE (GPN_SPACE >> CHUNK_SHIFT)

/* What the lookup TLBs (below) are valid for: the process's, not a
 * context's, and it only grows. */
static atomic_uint region_gen;

static void *reserve(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Bookkeeping is library memory: a child process has no use for it. */
	madvise(p, bytes, MADV_DONTFORK);
	return p;
}

int region_tables_init(spill_ctx *x)
{
	x->pte = reserve(GPN_SPACE * sizeof(*x->pte));
	x->cur = reserve(GPN_SPACE * sizeof(*x->cur));
	x->chunks = reserve(CHUNK_SPACE * sizeof(*x->chunks));
	x->chunk_region = reserve(CHUNK_SPACE * sizeof(*x->chunk_region));
	if (!x->pte || !x->cur || !x->chunks || !x->chunk_region)
		return -ENOMEM;
	pthread_rwlock_init(&x->regions_lock, NULL);
	/* A new context: whatever any thread cached for an earlier one is
	 * stale (its regions are freed), even at the same addresses. */
	atomic_fetch_add_explicit(&region_gen, 1, memory_order_release);
	return 0;
}

void region_tables_fini(spill_ctx *x)
{
	if (x->pte)
		sys_munmap(x->pte, GPN_SPACE * sizeof(*x->pte));
	if (x->cur)
		sys_munmap(x->cur, GPN_SPACE * sizeof(*x->cur));
	if (x->chunks)
		sys_munmap(x->chunks, CHUNK_SPACE * sizeof(*x->chunks));
	if (x->chunk_region)
		sys_munmap(x->chunk_region, CHUNK_SPACE * sizeof(*x->chunk_region));
	pthread_rwlock_destroy(&x->regions_lock);
}

/* Resident kernel pages behind the tables: what the bookkeeping really costs. */
size_t region_metadata_bytes(spill_ctx *x)
{
	size_t total = 0;
	regions_enter(x);
	for (int i = 0; i < x->nregions; i++) {
		struct region *r = x->regions[i];
		size_t chunks = (r->npages + CHUNK_PAGES - 1) / CHUNK_PAGES;
		total += r->npages * (sizeof(*x->pte) + sizeof(*x->cur) + sizeof(*x->lru_next)) +
			 chunks * (sizeof(*x->chunks) + sizeof(*x->chunk_region)) + sizeof(*r);
	}
	pthread_rwlock_unlock(&x->regions_lock);
	return total;
}

void regions_enter(spill_ctx *x)
{
	for (;;) {
		unsigned pending = atomic_load(&x->free_pending);
		if (!pending)
			break;
		futex_wait_u32(&x->free_pending, pending);
	}
	pthread_rwlock_rdlock(&x->regions_lock);
}

/* --- lookup ---------------------------------------------------------------- */

/* The TLB: recent 2 MiB groups this thread touched, and their region.
 *
 * An entry is good while region_gen is what it was when the entry was made.
 * The generation is the process's, not a context's, and only grows: a thread
 * outlives contexts (the program's main thread, or a forked child's, which
 * inherits the forking thread's entries), so entries from a context since
 * closed must never match one opened later, whose regions may sit at the
 * same addresses while the old struct region is freed memory. It is bumped
 * whenever a region is freed and whenever a context's tables are set up. */
#define TLB_ENTRIES 8
static __thread struct {
	uintptr_t group;
	struct region *r;
	unsigned gen;
} tlb[TLB_ENTRIES];

struct region *region_find(spill_ctx *x, const void *addr)
{
	uintptr_t a = (uintptr_t)addr, group = a >> 21;
	unsigned gen = atomic_load_explicit(&region_gen, memory_order_acquire);
	unsigned slot = (unsigned)(group % TLB_ENTRIES);
	if (tlb[slot].r && tlb[slot].group == group && tlb[slot].gen == gen)
		return tlb[slot].r;
	int lo = 0, hi = x->nregions - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		struct region *r = x->regions[mid];
		if (a < (uintptr_t)r->base)
			hi = mid - 1;
		else if (a >= (uintptr_t)r->base + r->npages * PG_SIZE)
			lo = mid + 1;
		else {
			tlb[slot].group = group;
			tlb[slot].r = r;
			tlb[slot].gen = gen;
			return r;
		}
	}
	return NULL;
}

/* --- page-number ranges ---------------------------------------------------- */

static int gpn_take(spill_ctx *x, uint32_t n, uint32_t *out)
{
	for (int i = 0; i < x->nholes; i++) {
		if (x->holes[i].n >= n) {
			*out = x->holes[i].gpn;
			x->holes[i].gpn += n;
			x->holes[i].n -= n;
			if (x->holes[i].n == 0)
				x->holes[i] = x->holes[--x->nholes];
			return 0;
		}
	}
	if ((uint64_t)x->gpn_next + n > GPN_SPACE)
		return -ENOMEM;
	*out = x->gpn_next;
	x->gpn_next += n;
	return 0;
}

static void gpn_give(spill_ctx *x, uint32_t gpn, uint32_t n)
{
	if (gpn + n == x->gpn_next) {
		x->gpn_next = gpn;
		return;
	}
	if (x->nholes < MAX_REGIONS)
		x->holes[x->nholes++] = (struct gpn_hole){ gpn, n };
	/* else the range is leaked: harmless, it is only numbering. */
}

/* --- alloc / free ------------------------------------------------------------ */

void *region_alloc(spill_ctx *x, size_t bytes)
{
	if (bytes == 0 || bytes > (GPN_SPACE / 2) * PG_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	/* Whole 2 MiB groups, aligned, so a group is one extent and one copy. */
	size_t len = (bytes + CHUNK_BYTES - 1) & ~(CHUNK_BYTES - 1);
	uint8_t *raw = mmap(NULL, len + CHUNK_BYTES, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uint8_t *base = (uint8_t *)(((uintptr_t)raw + CHUNK_BYTES - 1) & ~(CHUNK_BYTES - 1));
	if (base > raw)
		sys_munmap(raw, (size_t)(base - raw));
	sys_munmap(base + len, (size_t)(raw + len + CHUNK_BYTES - (base + len)));
	/* userfaultfd fills 4 KiB pages; a transparent huge page would bypass
	 * the missing-page faults we rely on. No fork inheritance: see header. */
	madvise(base, len, MADV_NOHUGEPAGE);
	madvise(base, len, MADV_DONTFORK);
	struct uffdio_register reg = {
		.range = { (uintptr_t)base, len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};
	if (ioctl(x->uffd, UFFDIO_REGISTER, &reg)) {
		int e = errno;
		sys_munmap(base, len);
		errno = e;
		return NULL;
	}
	struct region *r = calloc(1, sizeof(*r));
	if (!r) {
		sys_munmap(base, len);
		errno = ENOMEM;
		return NULL;
	}
	r->base = base;
	r->npages = len / PG_SIZE;
	r->live = 1;

	pthread_rwlock_wrlock(&x->regions_lock);
	int err = x->nregions == MAX_REGIONS ? -ENOMEM : gpn_take(x, (uint32_t)r->npages, &r->gpn0);
	if (err) {
		pthread_rwlock_unlock(&x->regions_lock);
		sys_munmap(base, len);
		free(r);
		errno = -err;
		return NULL;
	}
	/* Fresh page numbers start at zero: a previous owner's words were
	 * cleared when it was freed. */
	for (size_t c = 0; c < r->npages / CHUNK_PAGES; c++)
		x->chunk_region[(r->gpn0 >> CHUNK_SHIFT) + c] = r;
	int i = x->nregions;
	while (i > 0 && x->regions[i - 1]->base > base) {
		x->regions[i] = x->regions[i - 1];
		i--;
	}
	x->regions[i] = r;
	x->nregions++;
	atomic_fetch_add(&x->st.region_pages, r->npages);
	pthread_rwlock_unlock(&x->regions_lock);
	return base;
}

static void free_done(spill_ctx *x)
{
	atomic_fetch_sub(&x->free_pending, 1);
	futex_wake_all(&x->free_pending);
}

int region_free(spill_ctx *x, void *base)
{
	atomic_fetch_add(&x->free_pending, 1);
	pthread_rwlock_wrlock(&x->regions_lock);
	int i;
	for (i = 0; i < x->nregions; i++)
		if (x->regions[i]->base == base)
			break;
	if (i == x->nregions) {
		pthread_rwlock_unlock(&x->regions_lock);
		free_done(x);
		return -EINVAL;
	}
	struct region *r = x->regions[i];
	memmove(&x->regions[i], &x->regions[i + 1],
		(size_t)(x->nregions - i - 1) * sizeof(x->regions[0]));
	x->nregions--;
	atomic_fetch_add_explicit(&region_gen, 1, memory_order_release);
	r->live = 0;

	/* No fault or eviction runs now (both hold the lock for reading), so
	 * every word is stable: count, then clear for the next owner. */
	uint64_t res = 0, remote = 0;
	for (size_t p = 0; p < r->npages; p++) {
		uint64_t w = pte_load(x, r->gpn0 + (uint32_t)p);
		res += (w & PTE_RES) != 0;
		remote += (w & PTE_REMOTE) != 0;
		pte_forget(&x->pte[r->gpn0 + p]);
	}
	lru_forget_range(x, r->gpn0, (uint32_t)r->npages);
	for (size_t c = 0; c < r->npages / CHUNK_PAGES; c++) {
		uint32_t chunk = (r->gpn0 >> CHUNK_SHIFT) + (uint32_t)c;
		placement_release(x, chunk);
		x->chunk_region[chunk] = NULL;
	}
	atomic_fetch_sub(&x->resident, res);
	atomic_fetch_sub(&x->st.remote_pages, remote);
	atomic_fetch_sub(&x->st.region_pages, r->npages);
	gpn_give(x, r->gpn0, (uint32_t)r->npages);
	struct uffdio_range range = { (uintptr_t)r->base, r->npages * PG_SIZE };
	ioctl(x->uffd, UFFDIO_UNREGISTER, &range);
	sys_munmap(r->base, r->npages * PG_SIZE);
	pthread_rwlock_unlock(&x->regions_lock);
	free_done(x);
	free(r);
	/* Threads waiting for room may proceed now. */
	atomic_fetch_add(&x->evict_gen, 1);
	futex_wake_all(&x->evict_gen);
	return 0;
}
