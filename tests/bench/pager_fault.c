/* SPDX-License-Identifier: MIT */
/*
 * The latency of one remote fault through libspillway, prefetch off: fill a
 * region four times the budget, read it through once so every page has a
 * remote copy and the resident ones are clean, then touch pages from the
 * first half (long since evicted, and never fetched again by the touches:
 * each touch evicts the clean tail of the scan, a drop with no write) one at
 * a time in a scrambled order, timing each touch. The remote-read counter
 * over the touches tells whether they really were remote.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pager.h"

int fault_run(void *spec, void *out)
{
	const struct fault_spec *s = spec;
	struct fault_out *o = out;
	char name[64];
	snprintf(name, sizeof(name), "spillway-bench-fault-%d", (int)getpid());
	uint64_t npages = s->bytes / BENCH_PAGE, half = npages / 2;
	spill_ctx *ctx = case_open_pager(s->url, s->bytes / 4, s->fault_mode, 1, name, o->err,
					 sizeof(o->err));
	if (!ctx)
		return o->rc = -EIO;
	volatile uint64_t *base = spill_alloc(ctx, s->bytes);
	struct lat_rec lat = { 0 };
	int rc = base ? lat_init(&lat, s->samples) : -errno;
	if (!base)
		snprintf(o->err, sizeof(o->err), "spill_alloc: %s", spill_strerror(errno));
	if (!rc) {
		const size_t w = BENCH_PAGE / 8;
		for (uint64_t i = 0; i < npages; i++)
			for (size_t k = 0; k < w; k++)
				base[i * w + k] = mix64(i * w + k);
		uint64_t bad = 0;
		for (uint64_t i = 0; i < npages; i++)
			bad += base[i * w] != mix64(i * w);
		struct spill_stats a, b;
		spill_stats(ctx, &a);
		uint64_t t_end = now_ns() + (uint64_t)(s->max_s * 1e9);
		/* Odd multiplier over a power-of-two range covering the first half. */
		uint64_t span = 1;
		while (span < half)
			span <<= 1;
		for (uint64_t seq = 0; lat.n < s->samples && seq < span && now_ns() < t_end; seq++) {
			uint64_t i = (seq * 0x9e3779b1u) & (span - 1);
			if (i >= half)
				continue;
			uint64_t t0 = now_ns();
			uint64_t v = base[i * w];
			lat_add(&lat, now_ns() - t0);
			bad += v != mix64(i * w);
		}
		spill_stats(ctx, &b);
		o->n = (unsigned)lat.n;
		o->p50_us = lat_percentile_us(&lat, 50);
		o->p99_us = lat_percentile_us(&lat, 99);
		o->remote_reads = b.remote_reads - a.remote_reads;
		o->faults = b.faults - a.faults;
		o->fault_mode = b.fault_mode;
		if (bad) {
			snprintf(o->err, sizeof(o->err), "%llu pages read back wrong",
				 (unsigned long long)bad);
			rc = -EIO;
		}
	}
	lat_free(&lat);
	if (base)
		spill_free(ctx, (void *)base);
	spill_close(ctx);
	return o->rc = rc;
}
