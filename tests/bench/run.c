/* SPDX-License-Identifier: MIT */
/* The pipelined harness every request/response case goes through. */
#include <errno.h>

#include "bench.h"

struct window {
	int free[BENCH_MAX_DEPTH];
	int nfree;
	uint64_t start[BENCH_MAX_DEPTH];
	uint64_t next_seq;
};

/*
 * Run ops requests at depth in flight; record latencies if lat is non-NULL.
 * Returns the number completed (fewer than ops if max_ns ran out) or -errno.
 */
static int64_t run_phase(const struct driver *d, struct window *w, int depth, uint64_t ops,
			 uint64_t max_ns, struct lat_rec *lat)
{
	uint64_t t0 = now_ns(), submitted = 0, done = 0;
	int slots[BENCH_MAX_DEPTH];
	for (;;) {
		int time_up = max_ns && now_ns() - t0 > max_ns;
		while (submitted < ops && !time_up && w->nfree > 0) {
			int s = w->free[--w->nfree];
			w->start[s] = now_ns();
			int rc = d->submit(d->ctx, s, w->next_seq++);
			if (rc)
				return rc;
			submitted++;
		}
		if (done == submitted)
			break;
		int n = d->complete(d->ctx, slots, depth);
		if (n < 0)
			return n;
		uint64_t t = now_ns();
		for (int i = 0; i < n; i++) {
			if (lat)
				lat_add(lat, t - w->start[slots[i]]);
			w->free[w->nfree++] = slots[i];
		}
		done += (uint64_t)n;
	}
	return (int64_t)done;
}

int run_pipelined(const struct driver *d, const struct run_plan *p, struct result *out)
{
	if (p->depth < 1 || p->depth > BENCH_MAX_DEPTH || p->ops == 0)
		return -EINVAL;
	struct window w = { .nfree = p->depth };
	for (int i = 0; i < p->depth; i++)
		w.free[i] = p->depth - 1 - i;
	struct lat_rec lat;
	int rc = lat_init(&lat, p->ops);
	if (rc)
		return rc;
	int64_t n = 0;
	if (p->warmup)
		n = run_phase(d, &w, p->depth, p->warmup, 0, NULL);
	uint64_t t0 = now_ns();
	if (n >= 0)
		n = run_phase(d, &w, p->depth, p->ops, (uint64_t)(p->max_s * 1e9), &lat);
	uint64_t t1 = now_ns();
	if (n < 0) {
		lat_free(&lat);
		return (int)n;
	}
	*out = (struct result){
		.valid = 1, .depth = p->depth, .ops = (uint64_t)n,
		.bytes_per_op = p->bytes_per_op, .seconds = (double)(t1 - t0) / 1e9,
		.p50_us = lat_percentile_us(&lat, 50), .p99_us = lat_percentile_us(&lat, 99),
	};
	lat_free(&lat);
	return 0;
}
