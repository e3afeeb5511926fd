/* SPDX-License-Identifier: MIT */
/*
 * libspillway against a real spillwayd: a region eight times the local budget
 * survives random reads and writes (1 and 8 threads), a sequential scan and a
 * mixed workload, with every byte verified against a per-page checksum.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "spillway.h"
#include "pager_test.h"

#define PG 4096u
#define BUDGET (8u << 20)
#define REGION (8u * BUDGET)
#define NPAGES (REGION / PG)

static struct srv server;
static spill_ctx *ctx;

/* Each page: 8-byte generation and page number header, then bytes derived
 * from both; check_page-style verification of every byte. */
static void write_page(uint8_t *p, uint32_t page, uint32_t gen)
{
	uint64_t seed = ((uint64_t)gen << 32) | page;
	fill_page(p, seed);
}

static int page_ok(const uint8_t *p, uint32_t page, uint32_t gen)
{
	return check_page(p, ((uint64_t)gen << 32) | page);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct worker {
	uint8_t *base;
	_Atomic uint32_t *gen;     /* per page: generation last written */
	uint32_t first, count;     /* pages this worker owns */
	int ops;
	uint64_t seed;
	int errors;
};

/* Random reads and writes over the worker's own pages. */
static void *random_worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->ops; i++) {
		uint32_t page = w->first + (uint32_t)(rng_next(&w->seed) % w->count);
		uint8_t *p = w->base + (size_t)page * PG;
		uint32_t g = atomic_load(&w->gen[page]);
		if (rng_next(&w->seed) & 1) {
			write_page(p, page, g + 1);
			atomic_store(&w->gen[page], g + 1);
		} else if (g && !page_ok(p, page, g)) {
			w->errors++;
		} else if (!g) {
			/* Never written: zeros, read locally. */
			for (unsigned k = 0; k < PG; k += 512)
				if (p[k])
					w->errors++;
		}
	}
	return NULL;
}

static int verify_all(uint8_t *base, _Atomic uint32_t *gen)
{
	int errors = 0;
	for (uint32_t page = 0; page < NPAGES; page++) {
		uint32_t g = atomic_load(&gen[page]);
		const uint8_t *p = base + (size_t)page * PG;
		if (g) {
			errors += !page_ok(p, page, g);
		} else {
			for (unsigned k = 0; k < PG; k++)
				if (p[k]) {
					errors++;
					break;
				}
		}
	}
	return errors;
}

static void run_random(int threads, int ops_per_thread)
{
	uint8_t *base = spill_alloc(ctx, REGION);
	assert_non_null(base);
	_Atomic uint32_t *gen = calloc(NPAGES, sizeof(*gen));
	/* Fill everything first so most of it must live remotely. */
	for (uint32_t page = 0; page < NPAGES; page++) {
		write_page(base + (size_t)page * PG, page, 1);
		gen[page] = 1;
	}
	struct worker w[8];
	pthread_t t[8];
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ base, gen, NPAGES / (uint32_t)threads * (uint32_t)i,
					NPAGES / (uint32_t)threads, ops_per_thread,
					0x1234567ull * (uint64_t)(i + 1), 0 };
		assert_int_equal(pthread_create(&t[i], NULL, random_worker, &w[i]), 0);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].errors, 0);
	}
	assert_int_equal(verify_all(base, gen), 0);
	struct spill_stats st;
	assert_int_equal(spill_stats(ctx, &st), 0);
	/* The region really went remote and came back. */
	assert_true(st.remote_writes > 0);
	assert_true(st.remote_reads > 0);
	assert_true(st.evictions > 0);
	assert_true(st.resident_bytes <= st.local_budget + 2u * 1024 * 1024);
	assert_true(st.metadata_bytes <= (REGION / PG) * 16 + 64 * 1024);
	free(gen);
	assert_int_equal(spill_free(ctx, base), 0);
}

static void random_one_thread(void **state)
{
	(void)state;
	pager_rearm();
	run_random(1, 20000);
}

static void random_eight_threads(void **state)
{
	(void)state;
	pager_rearm();
	run_random(8, 4000);
}

static void sequential_scan_uses_groups_and_verifies(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *base = spill_alloc(ctx, REGION);
	assert_non_null(base);
	for (uint32_t page = 0; page < NPAGES; page++)
		write_page(base + (size_t)page * PG, page, 7);
	struct spill_stats before, after;
	spill_stats(ctx, &before);
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t page = 0; page < NPAGES; page++)
			assert_true(page_ok(base + (size_t)page * PG, page, 7));
	spill_stats(ctx, &after);
	/* The prefetcher saw the trend: far fewer faults than pages read. */
	assert_true(after.remote_reads - before.remote_reads > NPAGES);
	assert_true(after.faults - before.faults < (after.remote_reads - before.remote_reads) / 4);
	assert_true(after.group_fetches > before.group_fetches);
	assert_true(after.prefetch_hits > before.prefetch_hits);
	assert_int_equal(spill_free(ctx, base), 0);
}

static void advised_sequential_region_moves_whole_groups(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *base = spill_alloc(ctx, REGION);
	assert_non_null(base);
	assert_int_equal(spill_advise(ctx, base, REGION, SPILL_SEQUENTIAL), 0);
	for (uint32_t page = 0; page < NPAGES; page++)
		write_page(base + (size_t)page * PG, page, 3);
	struct spill_stats before, after;
	spill_stats(ctx, &before);
	for (uint32_t page = 0; page < NPAGES; page++)
		assert_true(page_ok(base + (size_t)page * PG, page, 3));
	spill_stats(ctx, &after);
	/* About one fault per 2 MiB group. */
	assert_true(after.faults - before.faults <= NPAGES / 512 + 8);
	assert_int_equal(spill_free(ctx, base), 0);
}

static void mixed_workload_with_zero_pages_and_rewrites(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *base = spill_alloc(ctx, REGION);
	assert_non_null(base);
	_Atomic uint32_t *gen = calloc(NPAGES, sizeof(*gen));
	uint64_t s = 99;
	/* Write a third of the pages, leave the rest never written. */
	for (uint32_t page = 0; page < NPAGES; page += 3) {
		write_page(base + (size_t)page * PG, page, 1);
		gen[page] = 1;
	}
	struct spill_stats before;
	spill_stats(ctx, &before);
	for (int i = 0; i < 30000; i++) {
		uint32_t page = (uint32_t)(rng_next(&s) % NPAGES);
		uint8_t *p = base + (size_t)page * PG;
		switch (rng_next(&s) % 4) {
		case 0: /* rewrite */
			write_page(p, page, gen[page] + 1);
			gen[page]++;
			break;
		case 1: /* sequential burst */
			for (uint32_t k = page; k < page + 64 && k < NPAGES; k++)
				if (gen[k])
					assert_true(page_ok(base + (size_t)k * PG, k, gen[k]));
			break;
		default:
			if (gen[page])
				assert_true(page_ok(p, page, gen[page]));
			else
				assert_int_equal(p[PG - 1], 0);
		}
	}
	assert_int_equal(verify_all(base, gen), 0);
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_true(st.zero_fills > 0);
	assert_true(st.clean_drops > before.clean_drops);
	/* Never-written pages never crossed the network: remote copies exist
	 * only for pages that were written. */
	uint64_t written = 0;
	for (uint32_t page = 0; page < NPAGES; page++)
		written += gen[page] != 0;
	assert_true(st.remote_bytes <= written * PG);
	free(gen);
	assert_int_equal(spill_free(ctx, base), 0);
}

struct same_page {
	pthread_barrier_t *go;
	volatile uint8_t *p;
	uint32_t page;
	int ok;
};

static void *touch_same(void *arg)
{
	struct same_page *a = arg;
	pthread_barrier_wait(a->go);
	a->ok = page_ok((const uint8_t *)a->p, a->page, 5);
	return NULL;
}

static void threads_faulting_one_page_cause_one_fetch(void **state)
{
	(void)state;
	pager_rearm();
	uint8_t *base = spill_alloc(ctx, REGION);
	assert_non_null(base);
	for (uint32_t page = 0; page < NPAGES; page++)
		write_page(base + (size_t)page * PG, page, 5);
	for (int round = 0; round < 4; round++) {
		uint32_t page = 100 + (uint32_t)round * 1000; /* long evicted */
		struct spill_stats before, after;
		spill_stats(ctx, &before);
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 8);
		struct same_page a[8];
		pthread_t t[8];
		for (int i = 0; i < 8; i++) {
			a[i] = (struct same_page){ &go, base + (size_t)page * PG, page, 0 };
			assert_int_equal(pthread_create(&t[i], NULL, touch_same, &a[i]), 0);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(t[i], NULL);
			assert_true(a[i].ok);
		}
		pthread_barrier_destroy(&go);
		spill_stats(ctx, &after);
		/* One thread fetched; the others waited for it. */
		assert_int_equal(after.faults - before.faults, 1);
		assert_true(after.remote_reads > before.remote_reads);
	}
	assert_int_equal(spill_free(ctx, base), 0);
}

static int setup(void **state)
{
	(void)state;
	return pager_fixture_open(&server, &ctx, "pager-data", BUDGET);
}

static int teardown(void **state)
{
	(void)state;
	pager_fixture_close(&server, ctx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_one_thread),
		cmocka_unit_test(random_eight_threads),
		cmocka_unit_test(sequential_scan_uses_groups_and_verifies),
		cmocka_unit_test(advised_sequential_region_moves_whole_groups),
		cmocka_unit_test(mixed_workload_with_zero_pages_and_rewrites),
		cmocka_unit_test(threads_faulting_one_page_cause_one_fetch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
