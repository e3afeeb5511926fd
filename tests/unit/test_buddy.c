/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_rng.h"

#include "buddy.h"

#define TOP_FRAMES (UINT64_C(1) << BUDDY_MAX_ORDER)



/* Reference model: one bit per frame, set while the frame is allocated. */
struct model {
	uint64_t nframes, used;
	uint64_t *bits;
};

static bool model_bit(const struct model *m, uint64_t f)
{
	return m->bits[f >> 6] >> (f & 63) & 1;
}

/* True if every frame of [f, f + 2^order) is free in the model. */
static bool model_range_free(const struct model *m, uint64_t f, unsigned order)
{
	uint64_t n = UINT64_C(1) << order;
	if (order >= 6) {
		for (uint64_t w = f >> 6; w < (f + n) >> 6; w++)
			if (m->bits[w])
				return false;
		return true;
	}
	for (uint64_t i = f; i < f + n; i++)
		if (model_bit(m, i))
			return false;
	return true;
}

static void model_set(struct model *m, uint64_t f, unsigned order, bool used)
{
	for (uint64_t i = f; i < f + (UINT64_C(1) << order); i++) {
		if (used)
			m->bits[i >> 6] |= UINT64_C(1) << (i & 63);
		else
			m->bits[i >> 6] &= ~(UINT64_C(1) << (i & 63));
	}
	if (used)
		m->used += UINT64_C(1) << order;
	else
		m->used -= UINT64_C(1) << order;
}

/* With full coalescing a request fails only if no aligned free run exists. */
static bool model_fits(const struct model *m, unsigned order)
{
	uint64_t n = UINT64_C(1) << order;
	for (uint64_t f = 0; f + n <= m->nframes; f += n)
		if (model_range_free(m, f, order))
			return true;
	return false;
}

static void check_free_lists(const struct buddy *b)
{
	uint64_t sum = 0;
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		sum += buddy_free_blocks(b, k) << k;
	assert_int_equal(sum, buddy_free_frames(b));
}

static void test_order_for(void **state)
{
	(void)state;
	assert_int_equal(buddy_order_for(0), 0);
	assert_int_equal(buddy_order_for(1), 0);
	assert_int_equal(buddy_order_for(2), 1);
	assert_int_equal(buddy_order_for(3), 2);
	assert_int_equal(buddy_order_for(512), 9);
	assert_int_equal(buddy_order_for(513), 10);
	assert_int_equal(buddy_order_for(TOP_FRAMES), BUDDY_MAX_ORDER);
	assert_int_equal(buddy_order_for(TOP_FRAMES + 1), BUDDY_MAX_ORDER + 1);
}

static void test_create_empty(void **state)
{
	(void)state;
	errno = 0;
	assert_null(buddy_create(0));
	assert_int_equal(errno, EINVAL);
	buddy_destroy(NULL);
}

static void test_lowest_address_first(void **state)
{
	(void)state;
	struct buddy *b = buddy_create(64);
	assert_non_null(b);
	uint64_t f;
	assert_int_equal(buddy_alloc(b, 0, &f), 0);
	assert_int_equal(f, 0);
	assert_int_equal(buddy_alloc(b, 1, &f), 0);
	assert_int_equal(f, 2);
	assert_int_equal(buddy_alloc(b, 0, &f), 0);
	assert_int_equal(f, 1);
	assert_int_equal(buddy_alloc(b, 3, &f), 0);
	assert_int_equal(f, 8);
	assert_int_equal(buddy_block_order(b, 8), 3);
	assert_int_equal(buddy_block_order(b, 9), -EINVAL);
	assert_int_equal(buddy_free(b, 0), 0);
	assert_int_equal(buddy_alloc(b, 0, &f), 0);
	assert_int_equal(f, 0);
	buddy_destroy(b);
}

/* Random orders, random frees, every step checked against the model. */
static void test_random_vs_model(void **state)
{
	(void)state;
	/* One top block plus a ragged tail, so tail blocks never merge upward. */
	const uint64_t nframes = TOP_FRAMES + 4096 + 1024 + 300 + 5;
	struct buddy *b = buddy_create(nframes);
	assert_non_null(b);
	struct model m = { .nframes = nframes };
	m.bits = calloc((nframes + 63) / 64 + 1, sizeof(uint64_t));
	struct live { uint64_t frame; unsigned order; } *live = malloc(nframes * sizeof(*live));
	assert_non_null(m.bits);
	assert_non_null(live);
	size_t nlive = 0;
	unsigned enomem = 0;

	rng_state = 0x5eed5eedULL;
	for (int step = 0; step < 60000; step++) {
		/* Alternate filling and draining phases so exhaustion is reached. */
		unsigned alloc_pct = (step / 3000) % 2 ? 30 : 75;
		if (nlive == 0 || rng() % 100 < alloc_pct) {
			unsigned r = (unsigned)(rng() % 100), order;
			if (r < 60)
				order = (unsigned)(rng() % 4);
			else if (r < 92)
				order = 4 + (unsigned)(rng() % 6);
			else
				order = 10 + (unsigned)(rng() % 9);
			uint64_t f = UINT64_MAX;
			int rc = buddy_alloc(b, order, &f);
			if (rc == -ENOMEM) {
				assert_false(model_fits(&m, order));
				enomem++;
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(f & ((UINT64_C(1) << order) - 1), 0);
				assert_true(f + (UINT64_C(1) << order) <= nframes);
				assert_true(model_range_free(&m, f, order));
				assert_int_equal(buddy_block_order(b, f), order);
				model_set(&m, f, order, true);
				live[nlive++] = (struct live){ f, order };
			}
		} else {
			size_t i = (size_t)(rng() % nlive);
			assert_int_equal(buddy_free(b, live[i].frame), 0);
			model_set(&m, live[i].frame, live[i].order, false);
			live[i] = live[--nlive];
		}
		assert_int_equal(buddy_free_frames(b), nframes - m.used);
		if (step % 1000 == 0)
			check_free_lists(b);
	}
	assert_true(enomem > 100); /* the exhaustion path was really exercised */

	while (nlive) {
		nlive--;
		assert_int_equal(buddy_free(b, live[nlive].frame), 0);
	}
	assert_int_equal(buddy_free_frames(b), nframes);
	assert_int_equal(buddy_free_blocks(b, BUDDY_MAX_ORDER), 1);
	assert_int_equal(buddy_free_blocks(b, 12), 1);
	assert_int_equal(buddy_free_blocks(b, 10), 1);
	check_free_lists(b);
	free(live);
	free(m.bits);
	buddy_destroy(b);
}

/* Fill two top blocks with mixed orders, free in random order: all merges. */
static void test_full_coalescing(void **state)
{
	(void)state;
	const uint64_t nframes = 2 * TOP_FRAMES;
	struct buddy *b = buddy_create(nframes);
	assert_non_null(b);
	uint64_t *frames = malloc(nframes * sizeof(*frames));
	assert_non_null(frames);
	size_t n = 0;
	uint64_t f;

	rng_state = 42;
	for (;;) {
		unsigned order = (unsigned)(rng() % 8);
		if (buddy_alloc(b, order, &f) == 0) {
			frames[n++] = f;
		} else if (buddy_alloc(b, 0, &f) == 0) {
			frames[n++] = f;
		} else {
			break;
		}
	}
	assert_int_equal(buddy_free_frames(b), 0);
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		assert_int_equal(buddy_free_blocks(b, k), 0);
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rng() % (i + 1));
		uint64_t t = frames[i];
		frames[i] = frames[j];
		frames[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buddy_free(b, frames[i]), 0);
	assert_int_equal(buddy_free_frames(b), nframes);
	assert_int_equal(buddy_free_blocks(b, BUDDY_MAX_ORDER), 2);
	for (unsigned k = 0; k < BUDDY_MAX_ORDER; k++)
		assert_int_equal(buddy_free_blocks(b, k), 0);
	free(frames);
	buddy_destroy(b);
}

/* The server's two hot shapes: 2 MiB extents and single frames over 1 GiB. */
static void test_extents_and_frames_1gib(void **state)
{
	(void)state;
	struct buddy *b = buddy_create(TOP_FRAMES);
	assert_non_null(b);
	uint64_t *frames = malloc(TOP_FRAMES * sizeof(*frames));
	assert_non_null(frames);
	uint64_t f;

	for (uint64_t i = 0; i < 512; i++) {
		assert_int_equal(buddy_alloc(b, 9, &frames[i]), 0);
		assert_int_equal(frames[i], i << 9); /* lowest address first */
	}
	assert_int_equal(buddy_alloc(b, 9, &f), -ENOMEM);
	assert_int_equal(buddy_alloc(b, 0, &f), -ENOMEM);
	for (uint64_t i = 0; i < 512; i++)
		assert_int_equal(buddy_free(b, frames[i]), 0);
	assert_int_equal(buddy_free_blocks(b, BUDDY_MAX_ORDER), 1);

	for (uint64_t i = 0; i < TOP_FRAMES; i++) {
		assert_int_equal(buddy_alloc(b, 0, &frames[i]), 0);
		assert_int_equal(frames[i], i);
	}
	assert_int_equal(buddy_free_frames(b), 0);
	assert_int_equal(buddy_alloc(b, 0, &f), -ENOMEM);
	/* Free odd frames first (nothing can merge), then even ones. */
	for (uint64_t i = 1; i < TOP_FRAMES; i += 2)
		assert_int_equal(buddy_free(b, frames[i]), 0);
	assert_int_equal(buddy_free_blocks(b, 0), TOP_FRAMES / 2);
	for (uint64_t i = 0; i < TOP_FRAMES; i += 2)
		assert_int_equal(buddy_free(b, frames[i]), 0);
	assert_int_equal(buddy_free_blocks(b, 0), 0);
	assert_int_equal(buddy_free_blocks(b, BUDDY_MAX_ORDER), 1);
	free(frames);
	buddy_destroy(b);
}

static void test_exhaustion(void **state)
{
	(void)state;
	struct buddy *b = buddy_create(16);
	assert_non_null(b);
	uint64_t f[4], g;
	for (int i = 0; i < 4; i++)
		assert_int_equal(buddy_alloc(b, 2, &f[i]), 0);
	assert_int_equal(buddy_alloc(b, 0, &g), -ENOMEM);
	assert_int_equal(buddy_alloc(b, 4, &g), -ENOMEM);
	assert_int_equal(buddy_free(b, f[1]), 0);
	assert_int_equal(buddy_alloc(b, 3, &g), -ENOMEM); /* 4 free, not 8 */
	assert_int_equal(buddy_alloc(b, 2, &g), 0);
	assert_int_equal(g, f[1]);
	assert_int_equal(buddy_alloc(b, 2, &g), -ENOMEM);
	assert_int_equal(buddy_free(b, f[2]), 0);
	assert_int_equal(buddy_alloc(b, 0, &g), 0);
	assert_int_equal(g, f[2]);
	buddy_destroy(b);
}

/* 1 GiB + 6 MiB + 12 KiB: carved as 1 GiB, 4 MiB, 2 MiB, 8 KiB, 4 KiB. */
static void test_ragged_range(void **state)
{
	(void)state;
	const uint64_t nframes = TOP_FRAMES + 1024 + 512 + 3;
	struct buddy *b = buddy_create(nframes);
	assert_non_null(b);
	assert_int_equal(buddy_total_frames(b), nframes);
	assert_int_equal(buddy_free_frames(b), nframes);
	unsigned expect[] = { BUDDY_MAX_ORDER, 10, 9, 1, 0 };
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
		uint64_t want = 0;
		for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
			want += expect[i] == k;
		assert_int_equal(buddy_free_blocks(b, k), want);
	}

	uint64_t f, next = 0;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(buddy_alloc(b, expect[i], &f), 0);
		assert_int_equal(f, next);
		next += UINT64_C(1) << expect[i];
	}
	assert_int_equal(buddy_free_frames(b), 0);
	assert_int_equal(buddy_alloc(b, 0, &f), -ENOMEM);
	next = 0;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		assert_int_equal(buddy_free(b, next), 0);
		next += UINT64_C(1) << expect[i];
	}

	/* Every single frame is reachable (the smallest free block goes first,
	 * so the order-0 tail frame comes out before frame 0), and all of it
	 * merges back. */
	uint8_t *seen = calloc(nframes, 1);
	assert_non_null(seen);
	uint64_t count = 0;
	while (buddy_alloc(b, 0, &f) == 0) {
		assert_true(f < nframes);
		assert_false(seen[f]);
		seen[f] = 1;
		count++;
	}
	assert_int_equal(count, nframes);
	free(seen);
	for (uint64_t i = 0; i < nframes; i++)
		assert_int_equal(buddy_free(b, i), 0);
	assert_int_equal(buddy_free_frames(b), nframes);
	assert_int_equal(buddy_free_blocks(b, BUDDY_MAX_ORDER), 1);
	assert_int_equal(buddy_free_blocks(b, 10), 1);
	assert_int_equal(buddy_free_blocks(b, 0), 1);
	buddy_destroy(b);
}

static void test_bad_free(void **state)
{
	(void)state;
	struct buddy *b = buddy_create(1024);
	assert_non_null(b);
	uint64_t f, g;
	assert_int_equal(buddy_alloc(b, 3, &f), 0);
	assert_int_equal(buddy_alloc(b, 0, &g), 0);
	uint64_t free_before = buddy_free_frames(b);
	uint64_t blocks_before[BUDDY_MAX_ORDER + 1];
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		blocks_before[k] = buddy_free_blocks(b, k);

	assert_int_equal(buddy_free(b, f + 1), -EINVAL);  /* inside, not head */
	assert_int_equal(buddy_free(b, f + 7), -EINVAL);
	assert_int_equal(buddy_free(b, g + 1), -EINVAL);  /* never allocated */
	assert_int_equal(buddy_free(b, 1024), -EINVAL);   /* out of range */
	assert_int_equal(buddy_free(b, UINT64_MAX), -EINVAL);
	assert_int_equal(buddy_free_frames(b), free_before);
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		assert_int_equal(buddy_free_blocks(b, k), blocks_before[k]);

	assert_int_equal(buddy_free(b, g), 0);
	free_before = buddy_free_frames(b);
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		blocks_before[k] = buddy_free_blocks(b, k);
	assert_int_equal(buddy_free(b, g), -EINVAL);      /* double free */
	assert_int_equal(buddy_block_order(b, g), -EINVAL);
	assert_int_equal(buddy_free_frames(b), free_before);
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		assert_int_equal(buddy_free_blocks(b, k), blocks_before[k]);
	assert_int_equal(buddy_free(b, f), 0);
	assert_int_equal(buddy_free_frames(b), 1024);
	buddy_destroy(b);
}

static void test_order_too_large(void **state)
{
	(void)state;
	struct buddy *b = buddy_create(TOP_FRAMES);
	assert_non_null(b);
	uint64_t f = 77;
	assert_int_equal(buddy_alloc(b, BUDDY_MAX_ORDER + 1, &f), -EINVAL);
	assert_int_equal(buddy_alloc(b, 64, &f), -EINVAL);
	assert_int_equal(buddy_alloc(b, UINT32_MAX, &f), -EINVAL);
	assert_int_equal(f, 77);
	assert_int_equal(buddy_free_frames(b), TOP_FRAMES);
	assert_int_equal(buddy_alloc(b, BUDDY_MAX_ORDER, &f), 0);
	assert_int_equal(f, 0);
	assert_int_equal(buddy_free_blocks(b, BUDDY_MAX_ORDER + 1), 0);
	buddy_destroy(b);

	b = buddy_create(TOP_FRAMES - 1); /* too small for a top block */
	assert_non_null(b);
	assert_int_equal(buddy_alloc(b, BUDDY_MAX_ORDER, &f), -ENOMEM);
	assert_int_equal(buddy_alloc(b, BUDDY_MAX_ORDER - 1, &f), 0);
	buddy_destroy(b);
}

/* Two pools (one per NUMA node) are independent instances. */
static void test_independent_pools(void **state)
{
	(void)state;
	struct buddy *a = buddy_create(4096);
	struct buddy *b = buddy_create(2048);
	assert_non_null(a);
	assert_non_null(b);
	uint64_t fa, fb;
	assert_int_equal(buddy_alloc(a, 11, &fa), 0);
	assert_int_equal(buddy_free_frames(a), 2048);
	assert_int_equal(buddy_free_frames(b), 2048);
	assert_int_equal(buddy_free(b, fa), -EINVAL); /* a's block means nothing to b */
	assert_int_equal(buddy_alloc(b, 11, &fb), 0);
	assert_int_equal(fb, 0);
	assert_int_equal(fa, 0);
	assert_int_equal(buddy_alloc(b, 0, &fb), -ENOMEM);
	assert_int_equal(buddy_alloc(a, 11, &fa), 0);
	assert_int_equal(fa, 2048);
	assert_int_equal(buddy_free(a, 0), 0);
	assert_int_equal(buddy_block_order(b, 0), 11);
	assert_int_equal(buddy_free_frames(b), 0);
	assert_int_equal(buddy_free(b, 0), 0);
	assert_int_equal(buddy_free_frames(a), 2048);
	assert_int_equal(buddy_free_frames(b), 2048);
	buddy_destroy(a);
	buddy_destroy(b);
}

static void test_metadata_bytes(void **state)
{
	(void)state;
	struct buddy *b = buddy_create(TOP_FRAMES);
	assert_non_null(b);
	size_t meta = buddy_metadata_bytes(b);
	/* One byte per frame plus about two bits per frame of bitmaps. */
	assert_true(meta >= TOP_FRAMES);
	assert_true(meta < TOP_FRAMES + TOP_FRAMES / 2);
	buddy_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_for),
		cmocka_unit_test(test_create_empty),
		cmocka_unit_test(test_lowest_address_first),
		cmocka_unit_test(test_random_vs_model),
		cmocka_unit_test(test_full_coalescing),
		cmocka_unit_test(test_extents_and_frames_1gib),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_ragged_range),
		cmocka_unit_test(test_bad_free),
		cmocka_unit_test(test_order_too_large),
		cmocka_unit_test(test_independent_pools),
		cmocka_unit_test(test_metadata_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
