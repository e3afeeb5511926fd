/* SPDX-License-Identifier: MIT */
/*
 * server/cluster/arbiter_policy.c: nothing is planned below the high watermark; the
 * worst client goes first; priority -1000 and reservations are never
 * touched; pending reclaims count; a plan reaches its target when there is
 * excess enough and says how short it is when not; admission refuses with
 * the documented codes; the same input gives the same plan. A seeded random
 * run checks the invariants on 2000 clusters.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arbiter_policy.h"
#include "test_rng.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)
#define MAXC 64

static struct arb_client mk(const char *name, int prio, uint64_t res, uint64_t used)
{
	struct arb_client c = { .priority = prio, .reservation = res, .used = used };
	snprintf(c.name, sizeof(c.name), "%s", name);
	return c;
}

/* Capacity 100 GiB, used the sum of the clients'. */
static struct arb_cluster cluster_of(const struct arb_client *cs, size_t n)
{
	struct arb_cluster cl = { .capacity = 100 * GiB };
	for (size_t i = 0; i < n; i++)
		cl.used += cs[i].used;
	return cl;
}

static size_t plan(const struct arb_cluster *cl, const struct arb_client *cs, size_t n,
		   struct arb_victim *v, uint64_t *shortfall)
{
	struct arb_rank scratch[MAXC];
	assert_true(n <= MAXC);
	return arb_plan(cl, cs, n, v, MAXC, scratch, shortfall);
}

static uint64_t asked(const struct arb_victim *v, size_t nv)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < nv; i++)
		sum += v[i].bytes;
	return sum;
}

/* Victim k of a plan is client idx, asked for bytes. */
static void expect_victim(const struct arb_victim *v, size_t k, size_t idx, uint64_t bytes)
{
	assert_int_equal(v[k].idx, idx);
	assert_int_equal(v[k].bytes, bytes);
}

static void test_watermarks(void **state)
{
	(void)state;
	struct arb_cluster cl = { .capacity = 1000 };
	assert_int_equal(arb_high_bytes(&cl), 900);
	assert_int_equal(arb_low_bytes(&cl), 800);
	cl.high_pct = 70;
	cl.low_pct = 75; /* above high: high */
	assert_int_equal(arb_low_bytes(&cl), 700);
	cl.high_pct = 150;
	assert_int_equal(arb_high_bytes(&cl), 1000);
	/* No overflow near the top of the range. */
	assert_true(arb_watermark(UINT64_MAX, 100) == UINT64_MAX);
	assert_true(arb_watermark(UINT64_MAX, 50) == UINT64_MAX / 2);
}

static void test_below_watermark_nothing(void **state)
{
	(void)state;
	struct arb_client cs[] = { mk("a", 1000, 0, 45 * GiB), mk("b", 0, 0, 44 * GiB) };
	struct arb_cluster cl = cluster_of(cs, 2); /* 89% */
	struct arb_victim v[MAXC];
	uint64_t sf = 1;
	assert_int_equal(plan(&cl, cs, 2, v, &sf), 0);
	assert_int_equal(sf, 0);
	assert_int_equal(arb_reclaim_target(&cl, cs, 2), 0);
	cs[1].used += GiB; /* 90%: at the watermark */
	cl = cluster_of(cs, 2);
	assert_int_equal(arb_reclaim_target(&cl, cs, 2), 10 * GiB);
	assert_true(plan(&cl, cs, 2, v, &sf) > 0);
}

static void test_badness_order(void **state)
{
	(void)state;
	uint64_t cap = 100 * GiB;
	struct arb_client a = mk("a", 0, 10 * GiB, 20 * GiB);
	struct arb_client b = mk("b", 0, 10 * GiB, 30 * GiB);
	/* More excess, higher score; higher priority, higher score. */
	assert_true(arb_badness(&b, cap) > arb_badness(&a, cap));
	a.priority = 1;
	b.priority = 0;
	b.used = a.used;
	assert_true(arb_badness(&a, cap) > arb_badness(&b, cap));
	/* The formula: excess 10% = 100000 ppm, priority 0. */
	b.used = 20 * GiB;
	assert_int_equal(arb_badness(&b, cap), 100000 + 1000 * 1000);
	/* Not eligible: no excess, or -1000 whatever it holds. */
	b.used = b.reservation;
	assert_int_equal(arb_badness(&b, cap), 0);
	b.used = 90 * GiB;
	b.priority = -1000;
	assert_int_equal(arb_badness(&b, cap), 0);
	b.priority = -5000; /* clamped */
	assert_int_equal(arb_badness(&b, cap), 0);
	b.priority = 5000;
	assert_int_equal(arb_badness(&b, cap), 800000 + 1000 * 2000);
	/* Pending bytes are no longer excess. */
	b.priority = 0;
	b.pending = 80 * GiB;
	assert_int_equal(arb_badness(&b, cap), 0);
	assert_int_equal(arb_excess(&b), 0);
}

/* The table in docs/arbiter.md. */
static void test_doc_example(void **state)
{
	(void)state;
	uint64_t cap = 10240 * GiB;
	struct arb_client batch = mk("batch-7", 500, 0, 100 * GiB);
	struct arb_client web = mk("web-3", 0, 20 * GiB, 220 * GiB);
	struct arb_client db = mk("db-1", -500, 2048 * GiB, 4096 * GiB);
	struct arb_client ledger = mk("ledger", -1000, 1024 * GiB, 3072 * GiB);
	assert_int_equal(arb_badness(&batch, cap), 1509765);
	assert_int_equal(arb_badness(&web, cap), 1019531);
	assert_int_equal(arb_badness(&db, cap), 700000);
	assert_int_equal(arb_badness(&ledger, cap), 0);
}

static void test_worst_first(void **state)
{
	(void)state;
	/* batch +500 holds least, db -500 most: batch still goes first. */
	struct arb_client cs[] = {
		mk("db", -500, 20 * GiB, 50 * GiB),
		mk("svc", 0, 5 * GiB, 25 * GiB),
		mk("batch", 500, 0, 18 * GiB),
	};
	struct arb_cluster cl = cluster_of(cs, 3); /* 93%: free 13 GiB */
	struct arb_victim v[MAXC];
	uint64_t sf;
	size_t nv = plan(&cl, cs, 3, v, &sf);
	assert_int_equal(nv, 1);
	expect_victim(v, 0, 2, 13 * GiB);
	assert_int_equal(v[0].score, arb_badness(&cs[2], cl.capacity));
	assert_int_equal(sf, 0);
	/* Needing more: all of batch's excess, then svc. */
	cs[0].used = 56 * GiB; /* 99%: free 19 GiB */
	cl = cluster_of(cs, 3);
	nv = plan(&cl, cs, 3, v, &sf);
	assert_int_equal(nv, 2);
	expect_victim(v, 0, 2, 18 * GiB);
	expect_victim(v, 1, 1, GiB);
	assert_true(v[0].score > v[1].score);
	assert_int_equal(sf, 0);
}

static void test_never_minus_1000(void **state)
{
	(void)state;
	struct arb_client cs[] = {
		mk("precious", -1000, 0, 80 * GiB),
		mk("small", 0, 0, 5 * GiB),
		mk("reserved", 1000, 10 * GiB, 10 * GiB),
	};
	struct arb_cluster cl = cluster_of(cs, 3); /* 95%: free 15 GiB */
	struct arb_victim v[MAXC];
	uint64_t sf;
	size_t nv = plan(&cl, cs, 3, v, &sf);
	assert_int_equal(nv, 1);
	expect_victim(v, 0, 1, 5 * GiB);
	assert_int_equal(sf, 10 * GiB); /* reported short, not taken elsewhere */
	/* Only the -1000 client has excess: an empty plan, all of it short. */
	cs[1].used = 0;
	cs[0].used = 85 * GiB;
	cl = cluster_of(cs, 3);
	assert_int_equal(plan(&cl, cs, 3, v, &sf), 0);
	assert_int_equal(sf, 15 * GiB);
}

static void test_reservation_holds(void **state)
{
	(void)state;
	/* Excesses that are not page multiples: asks stay within them. */
	struct arb_client cs[] = {
		mk("a", 500, 40 * GiB + 100, 45 * GiB),
		mk("b", 400, 3 * MiB + 5000, 6 * MiB),
		mk("c", 100, 30 * GiB, 49 * GiB),
	};
	struct arb_cluster cl = cluster_of(cs, 3);
	struct arb_victim v[MAXC];
	uint64_t sf;
	size_t nv = plan(&cl, cs, 3, v, &sf);
	assert_int_equal(nv, 3);
	for (size_t i = 0; i < nv; i++) {
		const struct arb_client *c = &cs[v[i].idx];
		assert_true(v[i].bytes <= c->used - c->reservation);
		assert_int_equal(v[i].bytes % ARB_PAGE, 0);
	}
	assert_int_equal(v[0].bytes, 5 * GiB - ARB_PAGE); /* rounded down */
	assert_int_equal(v[1].bytes, 3 * MiB - 8192);
	/* Target 14 GiB + 6 MiB; the remainder is asked of c, in extents. */
	assert_int_equal(v[2].bytes, 9 * GiB + 4 * MiB);
	assert_true(asked(v, nv) >= cl.used - arb_low_bytes(&cl));
	assert_int_equal(sf, 0);
	/* A client below its reservation is never a victim. */
	cs[2].used = 29 * GiB;
	cs[0].used = 65 * GiB;
	cl = cluster_of(cs, 3);
	nv = plan(&cl, cs, 3, v, &sf);
	assert_true(nv > 0);
	for (size_t i = 0; i < nv; i++)
		assert_int_not_equal(v[i].idx, 2);
}

static void test_reaches_target_in_extents(void **state)
{
	(void)state;
	struct arb_client cs[] = {
		mk("a", 0, 0, 30 * GiB), mk("b", 0, 0, 30 * GiB), mk("c", 0, 0, 31 * GiB + 4096),
	};
	struct arb_cluster cl = cluster_of(cs, 3);
	uint64_t target = arb_reclaim_target(&cl, cs, 3);
	assert_int_equal(target, 11 * GiB + 4096);
	struct arb_victim v[MAXC];
	uint64_t sf;
	size_t nv = plan(&cl, cs, 3, v, &sf);
	assert_int_equal(sf, 0);
	assert_true(asked(v, nv) >= target);
	/* Rounded up to one extent at most beyond the target. */
	assert_true(asked(v, nv) < target + ARB_EXTENT);
	expect_victim(v, 0, 2, 11 * GiB + ARB_EXTENT);
	/* Too small a plan array: short by what did not fit. */
	cs[0].used = cs[1].used = 10 * GiB;
	cs[2] = mk("c", -1000, 0, 80 * GiB + 4096);
	cl = cluster_of(cs, 3);
	struct arb_rank scratch[3];
	assert_int_equal(arb_plan(&cl, cs, 3, v, 1, scratch, &sf), 1);
	expect_victim(v, 0, 0, 10 * GiB); /* all of the first one */
	assert_int_equal(sf, 10 * GiB + 4096);
	/* Under the high watermark nothing is planned, whatever the array. */
	cs[2].used = 60 * GiB;
	cl = cluster_of(cs, 3);
	assert_int_equal(arb_plan(&cl, cs, 3, v, 1, scratch, &sf), 0);
	assert_int_equal(sf, 0);
}

static void test_pending_counts(void **state)
{
	(void)state;
	struct arb_client cs[] = { mk("a", 0, 0, 50 * GiB), mk("b", 0, 0, 45 * GiB) };
	struct arb_cluster cl = cluster_of(cs, 2); /* 95%: 15 GiB */
	cs[0].pending = 10 * GiB;
	assert_int_equal(arb_reclaim_target(&cl, cs, 2), 5 * GiB);
	struct arb_victim v[MAXC];
	uint64_t sf;
	size_t nv = plan(&cl, cs, 2, v, &sf);
	/* b has more excess once a's pending bytes are out. */
	assert_int_equal(nv, 1);
	expect_victim(v, 0, 1, 5 * GiB);
	/* Enough pending already: nothing more to ask. */
	cs[1].pending = 5 * GiB;
	assert_int_equal(plan(&cl, cs, 2, v, &sf), 0);
	assert_int_equal(sf, 0);
	/* Pending beyond what a client holds counts as what it holds. */
	cs[1].pending = 0;
	cs[0].pending = 500 * GiB;
	assert_int_equal(arb_reclaim_target(&cl, cs, 2), 0);
	cs[0].pending = 0;
	cs[0].used = 0;
	cs[1].used = 95 * GiB;
	cs[1].pending = 200 * GiB;
	assert_int_equal(arb_excess(&cs[1]), 0);
	assert_int_equal(plan(&cl, cs, 2, v, &sf), 0);
}

static void test_admit(void **state)
{
	(void)state;
	struct arb_client c = mk("c", 0, 10 * GiB, 5 * GiB);
	c.limit = 20 * GiB;
	struct arb_cluster cl = { .capacity = 100 * GiB, .used = 50 * GiB };
	assert_int_equal(arb_admit(&cl, &c, 0), 0);
	assert_int_equal(arb_admit(&cl, &c, 15 * GiB), 0);        /* up to the limit */
	assert_int_equal(arb_admit(&cl, &c, 15 * GiB + 1), -EDQUOT);
	c.used = 25 * GiB;                                        /* already over */
	assert_int_equal(arb_admit(&cl, &c, 1), -EDQUOT);
	c.used = 5 * GiB;
	/* At the high watermark: within the reservation yes, beyond no. */
	cl.used = 90 * GiB;
	assert_int_equal(arb_admit(&cl, &c, 5 * GiB), 0);
	assert_int_equal(arb_admit(&cl, &c, 5 * GiB + 4096), -ENOSPC);
	c.used = 12 * GiB;
	assert_int_equal(arb_admit(&cl, &c, 4096), -ENOSPC);
	/* Just under it, beyond the reservation is fine. */
	cl.used = 90 * GiB - 1;
	assert_int_equal(arb_admit(&cl, &c, 4096), 0);
	/* Capacity exhausted: refused even within the reservation. */
	c.used = 0;
	cl.used = 99 * GiB;
	assert_int_equal(arb_admit(&cl, &c, GiB), 0);
	assert_int_equal(arb_admit(&cl, &c, 2 * GiB), -ENOSPC);
	/* No limit: 0 means none. */
	c.limit = 0;
	c.used = 500 * GiB;
	cl.used = 10 * GiB;
	assert_int_equal(arb_admit(&cl, &c, GiB), 0);
}

/* Equal scores: larger excess first, then name, then index; the input
 * order does not matter. */
static void test_ties(void **state)
{
	(void)state;
	struct arb_client cs[] = {
		mk("zeta", 0, 0, 20 * GiB), mk("alpha", 0, 0, 20 * GiB),
		mk("mid", 0, 0, 20 * GiB), mk("alpha", 0, 0, 20 * GiB),
		mk("pad", -1000, 0, 15 * GiB),
	};
	struct arb_cluster cl = cluster_of(cs, 5); /* 95%: 15 GiB */
	struct arb_victim v[MAXC];
	uint64_t sf;
	assert_int_equal(plan(&cl, cs, 5, v, &sf), 1);
	assert_int_equal(v[0].idx, 1);
	cl.used += 10 * GiB; /* 105%: 25 GiB, two victims */
	size_t nv = plan(&cl, cs, 5, v, &sf);
	assert_int_equal(nv, 2);
	assert_int_equal(v[0].idx, 1);
	assert_int_equal(v[1].idx, 3);
	cl.used += 20 * GiB; /* 125%: 45 GiB: alpha, alpha, mid */
	nv = plan(&cl, cs, 5, v, &sf);
	assert_int_equal(nv, 3);
	assert_int_equal(v[2].idx, 2);
	/* Same score bucket, a few bytes more excess: that one first. */
	cs[0].used += 4096;
	nv = plan(&cl, cs, 5, v, &sf);
	assert_int_equal(v[0].idx, 0);
}

/* Invariants on random clusters: only eligible clients, each at most once,
 * asks in whole pages within the excess, in non-increasing score; the
 * target met unless every eligible client was drained; nothing below the
 * high watermark. */
static void test_random_invariants(void **state)
{
	(void)state;
	rng_state = 0x5eed5eedULL;
	static const int prios[] = { -1000, -999, -500, 0, 0, 1, 500, 1000 };
	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + rng() % MAXC;
		struct arb_client cs[MAXC];
		struct arb_cluster cl = { .high_pct = (unsigned)(rng() % 3 ? 0 : 50 + rng() % 50),
					  .low_pct = (unsigned)(rng() % 3 ? 0 : 30 + rng() % 60),
					  .extent_bytes = rng() % 2 ? 0 : ARB_PAGE << (rng() % 10) };
		uint64_t unit = rng() % 2 ? GiB : 4096;
		for (size_t i = 0; i < n; i++) {
			char name[16];
			snprintf(name, sizeof(name), "c%u", (unsigned)(rng() % 40));
			cs[i] = mk(name, prios[rng() % 8], (rng() % 20) * unit + rng() % 9000,
				   (rng() % 30) * unit + rng() % 5000);
			cs[i].pending = rng() % 4 ? 0 : (rng() % 10) * unit;
			cl.used += cs[i].used;
		}
		cl.capacity = cl.used / 100 * (60 + rng() % 60) + rng() % 100;
		struct arb_victim v[MAXC];
		uint64_t sf;
		size_t nv = plan(&cl, cs, n, v, &sf);
		uint64_t target = arb_reclaim_target(&cl, cs, n);
		if (cl.used < arb_high_bytes(&cl))
			assert_int_equal(nv, 0);
		int seen[MAXC] = { 0 };
		for (size_t i = 0; i < nv; i++) {
			const struct arb_client *c = &cs[v[i].idx];
			assert_true(v[i].idx < n);
			assert_false(seen[v[i].idx]++);
			assert_true(c->priority > -1000);
			assert_true(v[i].bytes > 0);
			assert_int_equal(v[i].bytes % ARB_PAGE, 0);
			assert_true(v[i].bytes <= arb_excess(c));
			assert_true(c->used - (c->pending < c->used ? c->pending : c->used) -
					    v[i].bytes >= c->reservation);
			assert_int_equal(v[i].score, arb_badness(c, cl.capacity));
			if (i)
				assert_true(v[i].score <= v[i - 1].score);
		}
		uint64_t a = asked(v, nv);
		if (sf == 0) {
			assert_true(a >= target);
		} else {
			assert_int_equal(sf + (a < target ? a : target), target);
			/* Short only when every eligible client was asked. */
			for (size_t i = 0; i < n; i++)
				if (arb_badness(&cs[i], cl.capacity) > 0 && arb_excess(&cs[i]) >= ARB_PAGE)
					assert_true(seen[i]);
		}
		/* Same input, same plan. */
		struct arb_victim w[MAXC];
		uint64_t sf2;
		assert_int_equal(plan(&cl, cs, n, w, &sf2), nv);
		assert_memory_equal(v, w, nv * sizeof(*v));
		assert_int_equal(sf, sf2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watermarks),
		cmocka_unit_test(test_below_watermark_nothing),
		cmocka_unit_test(test_badness_order),
		cmocka_unit_test(test_doc_example),
		cmocka_unit_test(test_worst_first),
		cmocka_unit_test(test_never_minus_1000),
		cmocka_unit_test(test_reservation_holds),
		cmocka_unit_test(test_reaches_target_in_extents),
		cmocka_unit_test(test_pending_counts),
		cmocka_unit_test(test_admit),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_random_invariants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
