/* SPDX-License-Identifier: MIT */
/*
 * The evictor: a background thread that keeps resident pages under the local
 * budget. It wakes above the high watermark and works down to the low one,
 * taking victims from the inactive list in batches. A clean page with a
 * current copy (copies.c) on a live server is dropped with no network write;
 * a clean page never written is dropped too (it is zeros). Dirty pages are
 * write-protected first, so the bytes sent are the bytes dropped, then
 * written in runs (a run of consecutive pages of one 2 MiB group is one
 * WRITE) to every replica. One acknowledged copy is enough to drop a page;
 * the replicas that missed the write are recorded and repaired later.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "pager.h"

#define EVICT_BATCH 256

static uint64_t high_wm(uint64_t budget)
{
	uint64_t gap = budget / 16 > 16 ? budget / 16 : 16;
	return budget > gap ? budget - gap : 0;
}

static uint64_t low_wm(uint64_t budget)
{
	uint64_t gap = budget / 8 > 32 ? budget / 8 : 32;
	return budget > gap ? budget - gap : 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Keep a page resident after all (its write failed): still dirty. */
static void keep(spill_ctx *x, uint32_t gpn, uint64_t old)
{
	lru_putback(x, gpn);
	pte_release(x, gpn, pte_evict_aborted(old));
}

int evict_pages(spill_ctx *x, uint32_t *gpns, int n)
{
	uint64_t old[EVICT_BATCH];
	int write[EVICT_BATCH], ok[EVICT_BATCH];
	qsort(gpns, (size_t)n, sizeof(*gpns), cmp_u32);
	for (int i = 0; i < n; i++) {
		old[i] = pte_load(x, gpns[i]);
		int clean = !(old[i] & PTE_DIRTY) &&
			    (!(old[i] & PTE_REMOTE) || copies_readable(x, gpns[i]));
		write[i] = !clean;
		ok[i] = clean;
	}
	/* Write-protect the dirty pages, a run at a time, before reading them. */
	for (int i = 0; i < n;) {
		if (!write[i] || (old[i] & PTE_WP)) {
			i++;
			continue;
		}
		int j = i + 1;
		while (j < n && write[j] && !(old[j] & PTE_WP) && gpns[j] == gpns[j - 1] + 1 &&
		       x->chunk_region[gpns[j] >> CHUNK_SHIFT] == x->chunk_region[gpns[i] >> CHUNK_SHIFT])
			j++;
		struct region *r = x->chunk_region[gpns[i] >> CHUNK_SHIFT];
		uffd_wp(x, page_addr(r, gpns[i]), (size_t)(j - i) * PG_SIZE, 1);
		i = j;
	}
	/* Hold the groups' locks from placement to the last write, so a replica
	 * being rebuilt (service.c) cannot miss one of these writes. Ascending
	 * order: everyone else takes one lock at a time. */
	uint8_t stripes[256] = { 0 };
	for (int i = 0; i < n; i++)
		if (write[i])
			stripes[(gpns[i] >> CHUNK_SHIFT) % 256] = 1;
	for (int k = 0; k < 256; k++)
		if (stripes[k])
			pthread_mutex_lock(&x->chunk_locks[k]);
	/* Runs of consecutive dirty pages inside one group. */
	struct write_run runs[EVICT_BATCH];
	int run_first[EVICT_BATCH], nruns = 0;
	for (int i = 0; i < n;) {
		if (!write[i]) {
			i++;
			continue;
		}
		int j = i + 1;
		while (j < n && write[j] && gpns[j] == gpns[j - 1] + 1 &&
		       (gpns[j] >> CHUNK_SHIFT) == (gpns[i] >> CHUNK_SHIFT))
			j++;
		uint32_t chunk = gpns[i] >> CHUNK_SHIFT;
		if (placement_ensure_locked(x, chunk) == 0) {
			struct region *r = x->chunk_region[chunk];
			runs[nruns] = (struct write_run){ gpns[i], (uint16_t)(j - i),
							  page_addr(r, gpns[i]), 0 };
			run_first[nruns++] = i;
		}
		i = j;
	}
	if (nruns)
		remote_write_runs(x, runs, nruns);
	for (int k = 255; k >= 0; k--)
		if (stripes[k])
			pthread_mutex_unlock(&x->chunk_locks[k]);
	for (int k = 0; k < nruns; k++) {
		if (runs[k].copies > 0)
			for (int i = run_first[k]; i < run_first[k] + runs[k].n; i++)
				ok[i] = 1;
		/* A server revoked an extent of this group: the clean pages
		 * taken for dropping may have had their only copy there. */
		if (runs[k].revoked)
			for (int i = 0; i < n; i++)
				if (!write[i] && (gpns[i] >> CHUNK_SHIFT) == (runs[k].gpn >> CHUNK_SHIFT))
					ok[i] = 0;
	}
	/* Drop what is safe to drop, a contiguous stretch per madvise. */
	for (int i = 0; i < n;) {
		if (!ok[i]) {
			i++;
			continue;
		}
		int j = i + 1;
		while (j < n && ok[j] && gpns[j] == gpns[j - 1] + 1 &&
		       x->chunk_region[gpns[j] >> CHUNK_SHIFT] == x->chunk_region[gpns[i] >> CHUNK_SHIFT])
			j++;
		struct region *r = x->chunk_region[gpns[i] >> CHUNK_SHIFT];
		madvise(page_addr(r, gpns[i]), (size_t)(j - i) * PG_SIZE, MADV_DONTNEED);
		i = j;
	}
	int freed = 0;
	uint64_t clean_drops = 0, new_remote = 0;
	for (int i = 0; i < n; i++) {
		if (!ok[i]) {
			keep(x, gpns[i], old[i]);
			continue;
		}
		if (write[i])
			new_remote += !(old[i] & PTE_REMOTE);
		else
			clean_drops++;
		pte_release(x, gpns[i], pte_evicted(old[i], write[i]));
		freed++;
	}
	atomic_fetch_sub(&x->resident, (uint64_t)freed);
	atomic_fetch_add(&x->st.evictions, (uint64_t)freed);
	atomic_fetch_add(&x->st.clean_drops, clean_drops);
	atomic_fetch_add(&x->st.remote_pages, new_remote);
	return freed;
}

/* One pass down to target pages. Returns pages freed. */
static uint64_t evict_down_to(spill_ctx *x, uint64_t target)
{
	uint64_t total = 0;
	uint32_t victims[EVICT_BATCH];
	while (atomic_load(&x->resident) > target && !atomic_load(&x->stopping)) {
		uint64_t excess = atomic_load(&x->resident) - target;
		int want = excess < EVICT_BATCH ? (int)excess : EVICT_BATCH;
		pthread_rwlock_rdlock(&x->regions_lock);
		int n = lru_pick_victims(x, victims, want);
		int freed = n ? evict_pages(x, victims, n) : 0;
		pthread_rwlock_unlock(&x->regions_lock);
		atomic_fetch_add(&x->evict_gen, 1);
		futex_wake_all(&x->evict_gen);
		if (freed == 0)
			break;
		total += (uint64_t)freed;
	}
	return total;
}

static void *evictor_main(void *arg)
{
	spill_ctx *x = arg;
	spill_in_library = 1;
	while (!atomic_load(&x->stopping)) {
		unsigned seen = atomic_load(&x->evict_kick);
		uint64_t budget = atomic_load(&x->budget);
		/* A fault about to install a whole group needs that much room. */
		uint64_t room = atomic_exchange(&x->room_wanted, 0);
		uint64_t cap = budget > room ? budget - room : 0;
		uint64_t high = high_wm(budget) < cap ? high_wm(budget) : cap;
		uint64_t low = low_wm(budget) < cap ? low_wm(budget) : cap;
		if (atomic_load(&x->resident) > high) {
			uint64_t freed = evict_down_to(x, low);
			/* Nothing could go (servers down or full, pages pinned):
			 * faults stop waiting for room and run over budget. */
			atomic_store(&x->evict_stuck, freed == 0);
			atomic_fetch_add(&x->evict_gen, 1);
			futex_wake_all(&x->evict_gen);
			if (freed)
				continue;
		}
		/* Sleep until kicked; a periodic look as a safety net. */
		struct timespec ts = { 0, 100 * 1000000 };
		syscall(SYS_futex, &x->evict_kick, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
	}
	return NULL;
}

void evictor_kick(spill_ctx *x)
{
	if (atomic_load(&x->resident) > high_wm(atomic_load(&x->budget))) {
		atomic_fetch_add(&x->evict_kick, 1);
		futex_wake_all(&x->evict_kick);
	}
}

void evictor_wait_room(spill_ctx *x, unsigned pages)
{
	while (atomic_load(&x->resident) + pages > atomic_load(&x->budget) &&
	       !atomic_load(&x->evict_stuck) && !atomic_load(&x->stopping)) {
		unsigned gen = atomic_load(&x->evict_gen);
		uint64_t want = atomic_load(&x->room_wanted);
		while (want < pages && !atomic_compare_exchange_weak(&x->room_wanted, &want, pages))
			;
		atomic_fetch_add(&x->evict_kick, 1);
		futex_wake_all(&x->evict_kick);
		if (atomic_load(&x->resident) + pages > atomic_load(&x->budget))
			futex_wait_u32(&x->evict_gen, gen);
	}
}

int evictor_start(spill_ctx *x)
{
	return -pthread_create(&x->evictor, NULL, evictor_main, x);
}

void evictor_stop(spill_ctx *x)
{
	atomic_fetch_add(&x->evict_kick, 1);
	futex_wake_all(&x->evict_kick);
	pthread_join(x->evictor, NULL);
}
