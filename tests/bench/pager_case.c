/* SPDX-License-Identifier: MIT */
/*
 * One configuration of `spillway-bench pager`, run in its own child process:
 * get the region from the backend under test (plain memory, libspillway, or
 * plain memory inside a memory cgroup that swaps), fill it, run the chosen
 * workloads in order, and record each one's result and the pager's or the
 * kernel's paging counters over it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pager.h"

void spill_stats_delta(const struct spill_stats *a, const struct spill_stats *b,
		       struct spill_stats *d)
{
	*d = *b;
#define SUB(f) d->f = b->f - a->f
	SUB(faults);
	SUB(wp_faults);
	SUB(remote_reads);
	SUB(remote_read_bytes);
	SUB(remote_writes);
	SUB(remote_write_bytes);
	SUB(evictions);
	SUB(clean_drops);
	SUB(zero_fills);
	SUB(prefetched);
	SUB(prefetch_hits);
	SUB(group_fetches);
	SUB(failovers);
	SUB(rereplicated);
	SUB(lost_pages);
	SUB(reclaims);
	SUB(reclaimed_bytes);
#undef SUB
}

spill_ctx *case_open_pager(const char *url, uint64_t budget, int fault_mode, int no_prefetch,
			   const char *name, char *err, size_t cap)
{
	struct spill_config cfg = {
		.servers = { url }, .nservers = 1, .local_budget = budget, .name = name,
		.replicas = 1, .fault_mode = (enum spill_fault_mode)fault_mode,
		.no_prefetch = no_prefetch,
	};
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		snprintf(err, cap, "spill_open(%s): %s", url, spill_strerror(errno));
	return ctx;
}

struct mem {
	spill_ctx *ctx;
	void *base;
	uint64_t bytes;
};

static void snap(const struct case_spec *s, struct mem *m, struct spill_stats *st,
		 uint64_t *in, uint64_t *out)
{
	if (s->backend == BK_PAGER)
		spill_stats(m->ctx, st);
	else if (s->backend == BK_KSWAP)
		kswap_counters(in, out);
}

static int get_memory(const struct case_spec *s, struct mem *m, struct case_out *o)
{
	m->bytes = s->bytes;
	if (s->backend == BK_PAGER) {
		char name[64];
		snprintf(name, sizeof(name), "spillway-bench-%d", (int)getpid());
		m->ctx = case_open_pager(s->url, s->budget, s->fault_mode, s->no_prefetch, name,
					 o->err, sizeof(o->err));
		if (!m->ctx)
			return -EIO;
		m->base = spill_alloc(m->ctx, s->bytes);
		if (!m->base) {
			int e = errno;
			snprintf(o->err, sizeof(o->err), "spill_alloc(%llu): %s",
				 (unsigned long long)s->bytes, spill_strerror(e));
			return -e;
		}
		struct spill_stats st;
		if (!spill_stats(m->ctx, &st))
			o->fault_mode = st.fault_mode;
		return 0;
	}
	if (s->backend == BK_KSWAP) {
		int rc = kswap_enter(s->ks, s->budget);
		if (rc) {
			snprintf(o->err, sizeof(o->err), "joining memory cgroup %s: %s", s->ks->cgroup,
				 strerror(-rc));
			return rc;
		}
	}
	m->base = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->base == MAP_FAILED) {
		int e = errno;
		m->base = NULL;
		snprintf(o->err, sizeof(o->err), "mmap(%llu): %s", (unsigned long long)s->bytes,
			 strerror(e));
		return -e;
	}
	/* 4 KiB pages everywhere: the pager moves 4 KiB pages, and a THP would
	 * make the kernel swap case split or move 2 MiB at a time. */
	madvise(m->base, s->bytes, MADV_NOHUGEPAGE);
	return 0;
}

static void put_memory(const struct case_spec *s, struct mem *m)
{
	if (s->backend == BK_PAGER) {
		if (m->base)
			spill_free(m->ctx, m->base);
		if (m->ctx)
			spill_close(m->ctx);
	} else if (m->base) {
		munmap(m->base, m->bytes);
	}
}

static void run_one(const struct case_spec *s, struct mem *m, struct region *r, int kind,
		    struct case_out *o)
{
	struct spill_stats a = { 0 }, b = { 0 };
	uint64_t in0 = 0, out0 = 0, in1 = 0, out1 = 0;
	snap(s, m, &a, &in0, &out0);
	switch (kind) {
	case WORK_RANDOM:
		work_random(r, &s->lim, &o->w[kind]);
		break;
	case WORK_SEQ:
		work_seq(r, &s->lim, &o->w[kind]);
		break;
	case WORK_ZIPF:
		work_zipf(r, &s->lim, &o->w[kind]);
		break;
	case WORK_SORT:
		work_sort(m->base, m->bytes, s->seed, &s->lim, &o->w[kind]);
		break;
	}
	snap(s, m, &b, &in1, &out1);
	spill_stats_delta(&a, &b, &o->st[kind]);
	o->swpin[kind] = in1 - in0;
	o->swpout[kind] = out1 - out0;
}

int case_run(void *spec, void *out)
{
	const struct case_spec *s = spec;
	struct case_out *o = out;
	struct mem m = { 0 };
	struct region r = { 0 };
	int page_works = s->works & ~(1u << WORK_SORT);
	int rc = get_memory(s, &m, o);
	if (!rc && page_works)
		rc = region_init(&r, m.base, s->bytes, s->seed);
	if (!rc && page_works) {
		struct spill_stats a = { 0 }, b = { 0 };
		uint64_t x, y;
		snap(s, &m, &a, &x, &y);
		uint64_t t0 = now_ns();
		region_fill(&r);
		o->fill_s = (double)(now_ns() - t0) / 1e9;
		snap(s, &m, &b, &x, &y);
		spill_stats_delta(&a, &b, &o->fill_st);
	}
	for (int k = 0; !rc && k < WORK_N; k++)
		if (s->works & (1u << k))
			run_one(s, &m, &r, k, o);
	region_fini(&r);
	put_memory(s, &m);
	o->rc = rc;
	return rc;
}
