/* SPDX-License-Identifier: MIT */
/*
 * The demo's sample program: what a data-heavy program does with
 * libspillway. It asks for a region eight times its local budget, fills it
 * with records, sorts them in place and checks every one, touching the region
 * like ordinary memory throughout; the library pages it to spillwayd behind
 * its back. Each phase prints its time and what the pager did during it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "demo.h"
#include "bench_pager.h"

static const char *mode_name(int mode)
{
	return mode == SPILL_FAULT_HANDLER ? "handler thread" : "in-thread (SIGBUS)";
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1 << 20);
}

/* One line per phase: its time and the pager's counters over it. */
static void phase_line(const char *what, uint64_t t0, spill_ctx *ctx, struct spill_stats *last)
{
	struct spill_stats now, d;
	double s = (double)(now_ns() - t0) / 1e9;
	spill_stats(ctx, &now);
	spill_stats_delta(last, &now, &d);
	printf("  %-9s %6.2f s   faults %8llu   read %7.1f MiB   written %7.1f MiB   evicted %8llu\n",
	       what, s, (unsigned long long)d.faults, mib(d.remote_read_bytes),
	       mib(d.remote_write_bytes), (unsigned long long)d.evictions);
	*last = now;
}

static void print_stats(const struct spill_stats *s)
{
	printf("\nspill_stats at the end:\n"
	       "  faults          %llu (%llu on never-written pages, %llu first writes to clean pages)\n"
	       "  remote reads    %llu pages, %.1f MiB\n"
	       "  remote writes   %llu pages, %.1f MiB\n"
	       "  evictions       %llu (%llu clean pages dropped with no write)\n"
	       "  prefetched      %llu pages, %llu used before a fault; %llu 2 MiB groups moved whole\n"
	       "  resident        %.1f MiB of a %.1f MiB region (budget %.1f MiB); %.1f MiB on the server\n"
	       "  metadata        %.1f KiB (%.2f bytes per 4 KiB page)\n"
	       "  fault service   %s; %d server(s) up; lost pages %llu\n",
	       (unsigned long long)s->faults, (unsigned long long)s->zero_fills,
	       (unsigned long long)s->wp_faults, (unsigned long long)s->remote_reads,
	       mib(s->remote_read_bytes), (unsigned long long)s->remote_writes,
	       mib(s->remote_write_bytes), (unsigned long long)s->evictions,
	       (unsigned long long)s->clean_drops, (unsigned long long)s->prefetched,
	       (unsigned long long)s->prefetch_hits, (unsigned long long)s->group_fetches,
	       mib(s->resident_bytes), mib(s->region_bytes), mib(s->local_budget),
	       mib(s->remote_bytes), (double)s->metadata_bytes / 1024,
	       s->region_bytes ? (double)s->metadata_bytes / (double)(s->region_bytes / BENCH_PAGE) : 0,
	       mode_name(s->fault_mode), s->servers_up, (unsigned long long)s->lost_pages);
}

int demo_sample(const struct demo_sample_cfg *cfg, int (*while_open)(void *arg), void *arg)
{
	uint64_t n = cfg->bytes / RECS_BYTES, budget = cfg->bytes / 8;
	struct spill_config sc = {
		.servers = { cfg->url }, .nservers = 1, .psk_file = cfg->psk_file,
		.local_budget = budget, .name = "spillway-demo",
	};
	spill_ctx *ctx = spill_open(&sc);
	if (!ctx) {
		fprintf(stderr, "spillway-bench demo: spill_open(%s): %s\n", cfg->url,
			spill_strerror(errno));
		return -EIO;
	}
	void *recs = spill_alloc(ctx, cfg->bytes);
	if (!recs) {
		fprintf(stderr, "spillway-bench demo: spill_alloc(%.0f MiB): %s\n", mib(cfg->bytes),
			spill_strerror(errno));
		spill_close(ctx);
		return -EIO;
	}
	struct spill_stats st;
	spill_stats(ctx, &st);
	printf("sample program: sort %llu records of %d bytes (%.0f MiB) in a libspillway region,\n"
	       "  local budget %.0f MiB (one eighth), server %s, faults served %s\n",
	       (unsigned long long)n, RECS_BYTES, mib(cfg->bytes), mib(budget), cfg->url,
	       mode_name(st.fault_mode));

	struct recs_sum sum;
	uint64_t t0 = now_ns();
	recs_fill(recs, n, cfg->seed, &sum);
	phase_line("generate", t0, ctx, &st);
	t0 = now_ns();
	recs_sort(recs, n, 0);
	phase_line("sort", t0, ctx, &st);
	t0 = now_ns();
	uint64_t bad = recs_verify(recs, n, &sum);
	phase_line("verify", t0, ctx, &st);
	printf("verified every record: %llu in key order with the payload of its key, and the\n"
	       "  same keys as generated: %llu errors\n", (unsigned long long)n,
	       (unsigned long long)bad);
	print_stats(&st);

	int rc = bad ? -EIO : 0;
	if (while_open) {
		int wrc = while_open(arg);
		rc = rc ? rc : wrc;
	}
	if (spill_free(ctx, recs)) {
		fprintf(stderr, "spillway-bench demo: spill_free: %s\n", spill_strerror(errno));
		rc = rc ? rc : -EIO;
	}
	spill_close(ctx);
	if (bad)
		fprintf(stderr, "spillway-bench demo: %llu records read back wrong\n",
			(unsigned long long)bad);
	return rc;
}
