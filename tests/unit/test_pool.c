/* SPDX-License-Identifier: MIT */
/*
 * pool_alloc's choice of pool: the preferred node first, then any other
 * pool when that one is full; with no preference (or a node without a
 * pool), the pool with the most free bytes. Two pools are built by hand
 * with made-up node numbers, so this runs on a machine with one node.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "buddy.h"
#include "pool.h"

#define ORDER 3                                   /* blocks of 8 frames */
#define BLOCK ((uint64_t)BUDDY_FRAME_SIZE << ORDER)
#define BLOCKS 4                                  /* per pool */

static pthread_mutex_t locks[2];

/* Pools on nodes 0 and 1 (in the order given), BLOCKS blocks each. */
static struct pool_set *fake_set(int node_a, int node_b)
{
	struct pool_set *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->pools = calloc(2, sizeof(*s->pools));
	assert_non_null(s->pools);
	int nodes[2] = { node_a, node_b };
	for (int i = 0; i < 2; i++) {
		struct pool *p = &s->pools[i];
		p->node = nodes[i];
		p->bytes = BLOCK * BLOCKS;
		p->base = calloc(1, p->bytes);
		p->buddy = buddy_create(p->bytes / BUDDY_FRAME_SIZE);
		assert_non_null(p->base);
		assert_non_null(p->buddy);
		pthread_mutex_init(&locks[i], NULL);
		p->lock = &locks[i];
		s->capacity += p->bytes;
	}
	s->npools = 2;
	return s;
}

static void free_set(struct pool_set *s)
{
	for (int i = 0; i < s->npools; i++) {
		buddy_destroy(s->pools[i].buddy);
		free(s->pools[i].base);
	}
	free(s->pools);
	free(s);
}

static int node_of(const struct pool_set *s, const struct pool_block *b)
{
	return s->pools[b->pool].node;
}

static void test_preferred_then_fallback(void **state)
{
	(void)state;
	struct pool_set *s = fake_set(0, 1);
	struct pool_block b[2 * BLOCKS];
	/* Node 1 until it is full, then node 0, then nothing. */
	for (int i = 0; i < BLOCKS; i++) {
		assert_int_equal(pool_alloc(s, 1, ORDER, &b[i]), 0);
		assert_int_equal(node_of(s, &b[i]), 1);
		assert_ptr_equal(b[i].mem, s->pools[1].base + b[i].frame * BUDDY_FRAME_SIZE);
	}
	assert_int_equal(atomic_load(&s->pools[1].used), BLOCK * BLOCKS);
	for (int i = BLOCKS; i < 2 * BLOCKS; i++) {
		assert_int_equal(pool_alloc(s, 1, ORDER, &b[i]), 0);
		assert_int_equal(node_of(s, &b[i]), 0);
	}
	struct pool_block extra;
	assert_int_equal(pool_alloc(s, 1, ORDER, &extra), -ENOSPC);
	assert_int_equal(pool_alloc(s, 0, ORDER, &extra), -ENOSPC);
	assert_int_equal(pool_alloc(s, -1, ORDER, &extra), -ENOSPC);

	/* A block freed on the preferred node is used again before the other. */
	pool_free(s, &b[0]);
	pool_free(s, &b[BLOCKS]);
	assert_int_equal(atomic_load(&s->pools[0].used), BLOCK * (BLOCKS - 1));
	assert_int_equal(atomic_load(&s->pools[1].used), BLOCK * (BLOCKS - 1));
	assert_int_equal(pool_alloc(s, 1, ORDER, &b[0]), 0);
	assert_int_equal(node_of(s, &b[0]), 1);
	assert_int_equal(pool_alloc(s, 1, ORDER, &b[BLOCKS]), 0);
	assert_int_equal(node_of(s, &b[BLOCKS]), 0);
	free_set(s);
}

/* The preference is by node number, not by index in the set. */
static void test_prefers_node_not_index(void **state)
{
	(void)state;
	struct pool_set *s = fake_set(3, 2);
	struct pool_block b;
	assert_int_equal(pool_alloc(s, 2, ORDER, &b), 0);
	assert_int_equal(node_of(s, &b), 2);
	assert_int_equal(pool_alloc(s, 3, ORDER, &b), 0);
	assert_int_equal(node_of(s, &b), 3);
	free_set(s);
}

/* No preference, or a node without a pool: the pool with the most free
 * bytes (the first on a tie). */
static void test_any_takes_most_free(void **state)
{
	(void)state;
	struct pool_set *s = fake_set(0, 1);
	struct pool_block b;
	assert_int_equal(pool_alloc(s, -1, ORDER, &b), 0);
	assert_int_equal(node_of(s, &b), 0);
	assert_int_equal(pool_alloc(s, -1, ORDER, &b), 0);
	assert_int_equal(node_of(s, &b), 1);
	assert_int_equal(pool_alloc(s, 7, ORDER, &b), 0);
	assert_int_equal(node_of(s, &b), 0);
	assert_int_equal(pool_alloc(s, 0, ORDER, &b), 0);
	assert_int_equal(node_of(s, &b), 0);
	/* Node 0 has 1 block left, node 1 has 3. */
	assert_int_equal(pool_alloc(s, -1, ORDER, &b), 0);
	assert_int_equal(node_of(s, &b), 1);
	free_set(s);
}

/* A real pool set on this machine's nodes: sizes add up and it fills. */
static void test_real_set(void **state)
{
	(void)state;
	struct pool_options o = { .capacity = 4u << 20, .nodes = "all", .unit = 2u << 20 };
	struct pool_set *s;
	char err[256];
	int rc = pool_set_create(&o, &s, err, sizeof(err));
	if (rc == -EINVAL) /* more nodes than 2 MiB shares: nothing to check here */
		skip();
	assert_int_equal(rc, 0);
	uint64_t total = 0;
	for (int i = 0; i < s->npools; i++)
		total += s->pools[i].bytes;
	assert_int_equal(total, s->capacity);
	struct pool_block b;
	int n = 0;
	while (pool_alloc(s, -1, 9, &b) == 0)
		n++;
	assert_int_equal((uint64_t)n * (2u << 20), s->capacity);
	pool_set_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preferred_then_fallback),
		cmocka_unit_test(test_prefers_node_not_index),
		cmocka_unit_test(test_any_takes_most_free),
		cmocka_unit_test(test_real_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
