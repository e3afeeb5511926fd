/* SPDX-License-Identifier: MIT */
/*
 * The public API: opening a context (servers, userfaultfd, threads), regions,
 * advice, the budget, statistics and errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "pager.h"
#include "pager_config.h"

#define API __attribute__((visibility("default")))

spill_ctx *_Atomic spill_active_ctx;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

/* Why the last spill_open failed, for spill_strerror(SPILL_E*). */
static char open_error[256];

static spill_ctx *fail_open(spill_ctx *x, int err);

static spill_ctx *spill_open_impl(const struct spill_config *cfg)
{
	pthread_mutex_lock(&open_lock);
	if (spill_active_ctx) {
		/* One context per process: the SIGBUS handler serves one. */
		pthread_mutex_unlock(&open_lock);
		snprintf(open_error, sizeof(open_error), "a context is already open in this process");
		errno = EBUSY;
		return NULL;
	}
	spill_ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		pthread_mutex_unlock(&open_lock);
		errno = ENOMEM;
		return NULL;
	}
	x->uffd = x->stop_fd = x->wake_fd = -1;
	pthread_mutex_init(&x->reclaim_lock, NULL);
	/* A library speaks up only when something is wrong, unless asked. */
	const char *level = getenv("SPILLWAY_LOG_LEVEL");
	if (!level || log_set_level_name(level))
		log_set_level(LOG_WARN);
	open_error[0] = 0;
	int rc = pager_config_resolve(x, cfg, open_error, sizeof(open_error));
	if (rc)
		return fail_open(x, rc);
	if (x->cfg.psk_file) {
		x->psk = calloc(1, sizeof(*x->psk));
		rc = x->psk ? auth_psk_load(x->cfg.psk_file, x->psk) : -ENOMEM;
		if (rc) {
			snprintf(open_error, sizeof(open_error), "%s: %s", x->cfg.psk_file,
				 auth_psk_strerror(rc));
			return fail_open(x, -SPILL_EBADCONFIG);
		}
	}
	atomic_store(&x->budget, x->cfg.local_budget / PG_SIZE);
	rc = uffd_open(x);
	if (rc) {
		snprintf(open_error, sizeof(open_error),
			 "userfaultfd: %s (needs Linux 5.7+ with write-protect support; "
			 "unprivileged use needs vm.unprivileged_userfaultfd=1)", strerror(-rc));
		return fail_open(x, -SPILL_EUFFD);
	}
	x->bounce = mmap(NULL, NBOUNCE * CHUNK_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x->zeros = mmap(NULL, CHUNK_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (x->bounce == MAP_FAILED || x->zeros == MAP_FAILED || x->stop_fd < 0) {
		x->bounce = x->bounce == MAP_FAILED ? NULL : x->bounce;
		x->zeros = x->zeros == MAP_FAILED ? NULL : x->zeros;
		return fail_open(x, -ENOMEM);
	}
	madvise(x->bounce, NBOUNCE * CHUNK_BYTES, MADV_DONTFORK);
	atomic_store(&x->bounce_free, (1u << NBOUNCE) - 1);
	for (int i = 0; i < 256; i++)
		pthread_mutex_init(&x->chunk_locks[i], NULL);
	prefetch_init(x);
	if ((rc = region_tables_init(x)) || (rc = lru_init(x)))
		return fail_open(x, rc);
	rc = servers_open(x, open_error, sizeof(open_error));
	if (rc)
		return fail_open(x, rc == -SPILL_EBADCONFIG ? rc : -SPILL_ENOSERVERS);
	if ((rc = evictor_start(x)))
		return fail_open(x, rc);
	if ((rc = service_start(x)))
		return fail_open(x, rc);
	if ((rc = ahead_start(x)))
		return fail_open(x, rc);
	if (x->mode == SPILL_FAULT_INTHREAD)
		rc = fault_sigbus_install(x);
	else
		rc = fault_handlers_start(x);
	if (rc)
		return fail_open(x, rc);
	spill_active_ctx = x;
	pthread_mutex_unlock(&open_lock);
	return x;
}

static void teardown(spill_ctx *x)
{
	atomic_store(&x->stopping, 1);
	uint64_t one = 1;
	if (x->stop_fd >= 0 && write(x->stop_fd, &one, sizeof(one)) < 0) {
		/* threads also poll with a timeout */
	}
	if (x->nhandlers)
		fault_handlers_stop(x);
	if (x->ahead_thread)
		ahead_stop(x);
	if (x->evictor)
		evictor_stop(x);
	if (x->service)
		service_stop(x);
	while (x->nregions)
		region_free(x, x->regions[0]->base);
	servers_close(x);
	if (x->pte)
		region_tables_fini(x);
	if (x->lru_next)
		lru_fini(x);
	if (x->bounce)
		sys_munmap(x->bounce, NBOUNCE * CHUNK_BYTES);
	if (x->zeros)
		sys_munmap(x->zeros, CHUNK_BYTES);
	if (x->uffd >= 0)
		close(x->uffd);
	if (x->stop_fd >= 0)
		close(x->stop_fd);
	free(x->psk);
	pager_config_free(x);
	free(x);
}

static spill_ctx *fail_open(spill_ctx *x, int err)
{
	teardown(x);
	pthread_mutex_unlock(&open_lock);
	if (!open_error[0])
		snprintf(open_error, sizeof(open_error), "%s", strerror(-err));
	errno = -err;
	return NULL;
}

API void spill_close(spill_ctx *x)
{
	if (!x)
		return;
	LIB_ENTER();
	pthread_mutex_lock(&open_lock);
	if (x->mode == SPILL_FAULT_INTHREAD)
		fault_sigbus_remove(x);
	/* Stop threads first, then free regions: no fault can be in flight
	 * once the program stopped touching them, which closing implies. */
	spill_active_ctx = NULL;
	teardown(x);
	pthread_mutex_unlock(&open_lock);
	LIB_LEAVE();
}

static void *spill_alloc_impl(spill_ctx *x, size_t bytes)
{
	if (!x) {
		errno = EINVAL;
		return NULL;
	}
	return region_alloc(x, bytes);
}

static int spill_free_impl(spill_ctx *x, void *region)
{
	int rc = x ? region_free(x, region) : -EINVAL;
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}

static int spill_advise_impl(spill_ctx *x, void *addr, size_t len, int advice)
{
	if (!x || advice < SPILL_NORMAL || advice > SPILL_COLD) {
		errno = EINVAL;
		return -1;
	}
	regions_enter(x);
	struct region *r = region_find(x, addr);
	if (!r || (uint8_t *)addr + len > r->base + r->npages * PG_SIZE) {
		pthread_rwlock_unlock(&x->regions_lock);
		errno = EINVAL;
		return -1;
	}
	uint32_t gpn = r->gpn0 + (uint32_t)(((uint8_t *)addr - r->base) / PG_SIZE);
	uint32_t n = (uint32_t)((len + PG_SIZE - 1) / PG_SIZE);
	switch (advice) {
	case SPILL_NORMAL:
	case SPILL_SEQUENTIAL:
	case SPILL_RANDOM:
		/* Advice is per region: the prefetcher looks at the region. */
		r->advice = advice;
		break;
	case SPILL_WILLNEED:
		fault_willneed(x, r, gpn, n);
		break;
	case SPILL_COLD:
		for (uint32_t i = 0; i < n; i++)
			pte_mark_cold(&x->pte[gpn + i]);
		break;
	}
	pthread_rwlock_unlock(&x->regions_lock);
	if (advice == SPILL_COLD)
		evictor_kick(x);
	return 0;
}

static int spill_set_budget_impl(spill_ctx *x, size_t local_bytes)
{
	if (!x || local_bytes < 16 * PG_SIZE) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&x->budget, local_bytes / PG_SIZE);
	atomic_store(&x->evict_stuck, 0);
	/* Evict down to the new budget before returning. */
	evictor_wait_room(x, 0);
	if (atomic_load(&x->resident) > atomic_load(&x->budget)) {
		errno = EBUSY; /* pinned or unwritable pages keep it above */
		return -1;
	}
	return 0;
}

static int spill_stats_impl(spill_ctx *x, struct spill_stats *o)
{
	if (!x || !o) {
		errno = EINVAL;
		return -1;
	}
	memset(o, 0, sizeof(*o));
	o->faults = atomic_load(&x->st.faults);
	o->wp_faults = atomic_load(&x->st.wp_faults);
	o->remote_reads = atomic_load(&x->st.remote_reads);
	o->remote_read_bytes = o->remote_reads * PG_SIZE;
	o->remote_writes = atomic_load(&x->st.remote_writes);
	o->remote_write_bytes = o->remote_writes * PG_SIZE;
	o->evictions = atomic_load(&x->st.evictions);
	o->clean_drops = atomic_load(&x->st.clean_drops);
	o->zero_fills = atomic_load(&x->st.zero_fills);
	o->prefetched = atomic_load(&x->st.prefetched);
	o->prefetch_hits = atomic_load(&x->st.prefetch_hits);
	o->group_fetches = atomic_load(&x->st.group_fetches);
	o->failovers = atomic_load(&x->st.failovers);
	o->rereplicated = atomic_load(&x->st.rereplicated);
	o->lost_pages = atomic_load(&x->st.lost_pages);
	o->copies_missed = atomic_load(&x->st.copies_missed);
	o->repaired = atomic_load(&x->st.repaired);
	int64_t degraded = atomic_load(&x->st.degraded_groups);
	o->degraded_groups = degraded > 0 ? (uint64_t)degraded : 0;
	o->reclaims = atomic_load(&x->st.reclaims);
	o->reclaimed_bytes = atomic_load(&x->st.reclaimed_bytes);
	o->resident_bytes = atomic_load(&x->resident) * PG_SIZE;
	o->remote_bytes = atomic_load(&x->st.remote_pages) * PG_SIZE;
	o->region_bytes = atomic_load(&x->st.region_pages) * PG_SIZE;
	o->local_budget = atomic_load(&x->budget) * PG_SIZE;
	o->metadata_bytes = region_metadata_bytes(x);
	o->servers_up = servers_up(x);
	o->fault_mode = x->mode;
	return 0;
}

API int spill_on_reclaim(spill_ctx *x, spill_reclaim_fn fn, void *arg)
{
	if (!x) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&x->reclaim_lock);
	x->reclaim_fn = fn;
	x->reclaim_arg = arg;
	pthread_mutex_unlock(&x->reclaim_lock);
	return 0;
}

API const char *spill_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case SPILL_ENOSERVERS:
		return open_error[0] ? open_error : "no spillwayd server reachable";
	case SPILL_EBADCONFIG:
		return open_error[0] ? open_error : "invalid libspillway configuration";
	case SPILL_EUFFD:
		return open_error[0] ? open_error : "userfaultfd is not available";
	}
	return strerror(err);
}

API spill_ctx *spill_open(const struct spill_config *cfg)
{
	LIB_ENTER();
	spill_ctx * r = spill_open_impl(cfg);
	int e = errno;
	LIB_LEAVE();
	errno = e;
	return r;
}

API void *spill_alloc(spill_ctx *x, size_t bytes)
{
	LIB_ENTER();
	void * r = spill_alloc_impl(x, bytes);
	int e = errno;
	LIB_LEAVE();
	errno = e;
	return r;
}

API int spill_free(spill_ctx *x, void *region)
{
	LIB_ENTER();
	int r = spill_free_impl(x, region);
	int e = errno;
	LIB_LEAVE();
	errno = e;
	return r;
}

API int spill_advise(spill_ctx *x, void *addr, size_t len, int advice)
{
	LIB_ENTER();
	int r = spill_advise_impl(x, addr, len, advice);
	int e = errno;
	LIB_LEAVE();
	errno = e;
	return r;
}

API int spill_set_budget(spill_ctx *x, size_t local_bytes)
{
	LIB_ENTER();
	int r = spill_set_budget_impl(x, local_bytes);
	int e = errno;
	LIB_LEAVE();
	errno = e;
	return r;
}

API int spill_stats(spill_ctx *x, struct spill_stats *o)
{
	LIB_ENTER();
	int r = spill_stats_impl(x, o);
	int e = errno;
	LIB_LEAVE();
	errno = e;
	return r;
}
