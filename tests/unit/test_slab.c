/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slab.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif


static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
	return x < y ? -1 : x > y;
}

static uint64_t in_use(struct slab_cache *c)
{
	struct slab_cache_stats st;
	slab_cache_stats(c, &st);
	return st.objects_in_use;
}

static void test_create_invalid(void **state)
{
	(void)state;
	errno = 0;
	assert_null(slab_cache_create("bad", 32, 24));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(slab_cache_create("bad", 0, 8));
	assert_int_equal(errno, EINVAL);

	struct slab_cache *all[SLAB_MAX_CACHES];
	for (int i = 0; i < SLAB_MAX_CACHES; i++) {
		all[i] = slab_cache_create("fill", 16, 8);
		assert_non_null(all[i]);
	}
	errno = 0;
	assert_null(slab_cache_create("one too many", 16, 8));
	assert_int_equal(errno, ENOSPC);
	for (int i = 0; i < SLAB_MAX_CACHES; i++)
		slab_cache_destroy(all[i]);
	slab_cache_destroy(NULL);
}

static void test_aligned_distinct(void **state)
{
	(void)state;
	enum { N = 5000, SIZE = 40, ALIGN = 64 };
	struct slab_cache *c = slab_cache_create("obj", SIZE, ALIGN);
	assert_non_null(c);
	assert_string_equal(slab_cache_name(c), "obj");
	void **p = malloc(N * sizeof(*p));
	assert_non_null(p);
	for (int i = 0; i < N; i++) {
		p[i] = slab_alloc(c);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % ALIGN, 0);
		memset(p[i], i & 0xff, SIZE);
	}
	for (int i = 0; i < N; i++) {
		const unsigned char *b = p[i];
		for (int k = 0; k < SIZE; k++)
			assert_int_equal(b[k], i & 0xff);
	}
	struct slab_cache_stats st;
	slab_cache_stats(c, &st);
	assert_int_equal(st.objects_in_use, N);
	assert_true(st.slabs >= (N * ALIGN + 65535) / 65536);
	assert_int_equal(st.bytes_reserved, st.slabs * 65536);

	void **s = malloc(N * sizeof(*s));
	assert_non_null(s);
	memcpy(s, p, N * sizeof(*s));
	qsort(s, N, sizeof(*s), cmp_ptr);
	for (int i = 1; i < N; i++)
		assert_true((uintptr_t)s[i] - (uintptr_t)s[i - 1] >= ALIGN);

	for (int i = 0; i < N; i++)
		slab_free(c, p[i]);
	assert_int_equal(in_use(c), 0);
	free(s);
	free(p);
	slab_cache_destroy(c);
}

static void test_reuse(void **state)
{
	(void)state;
	struct slab_cache *c = slab_cache_create("reuse", 24, 8);
	assert_non_null(c);
	void *a = slab_alloc(c), *b = slab_alloc(c);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	slab_free(c, a);
	assert_ptr_equal(slab_alloc(c), a);
	slab_free(c, a);
	slab_free(c, b);
	assert_ptr_equal(slab_alloc(c), b);
	assert_ptr_equal(slab_alloc(c), a);

	memset(a, 0xab, 24);
	slab_free(c, a);
	unsigned char *z = slab_zalloc(c);
	assert_ptr_equal(z, a);
	for (int k = 0; k < 24; k++)
		assert_int_equal(z[k], 0);
	slab_free(c, z);
	slab_free(c, b);
	slab_free(c, NULL);
	assert_int_equal(in_use(c), 0);
	slab_cache_destroy(c);
}

static void test_stats(void **state)
{
	(void)state;
	struct slab_cache *c = slab_cache_create("stats", 100, 16);
	assert_non_null(c);
	struct slab_cache_stats st;
	slab_cache_stats(c, &st);
	assert_int_equal(st.objects_in_use, 0);
	assert_int_equal(st.slabs, 0);
	assert_int_equal(st.bytes_reserved, 0);

	void *p[300];
	for (int i = 0; i < 300; i++) {
		p[i] = slab_alloc(c);
		assert_non_null(p[i]);
		assert_int_equal(in_use(c), i + 1);
	}
	for (int i = 0; i < 300; i++) {
		slab_free(c, p[i]);
		assert_int_equal(in_use(c), 300 - i - 1);
	}
	slab_thread_flush();
	slab_cache_stats(c, &st);
	assert_int_equal(st.objects_in_use, 0);
	assert_int_equal(st.slabs, 1); /* 300 x 112 bytes fit one slab */
	slab_cache_destroy(c);
}

static void test_large_objects(void **state)
{
	(void)state;
	struct slab_cache *c = slab_cache_create("large", 100000, 64);
	assert_non_null(c);
	void *p[3];
	for (int i = 0; i < 3; i++) {
		p[i] = slab_alloc(c);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 64, 0);
		memset(p[i], i, 100000);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(((unsigned char *)p[i])[99999], i);
		slab_free(c, p[i]);
	}
	assert_int_equal(in_use(c), 0);
	slab_cache_destroy(c);
}

#ifdef TEST_ASAN
static void test_asan_poison(void **state)
{
	(void)state;
	struct slab_cache *c = slab_cache_create("poison", 64, 64);
	assert_non_null(c);
	char *p = slab_alloc(c);
	assert_non_null(p);
	assert_false(__asan_region_is_poisoned(p, 64));
	slab_free(c, p);
	assert_true(__asan_address_is_poisoned(p));
	assert_true(__asan_address_is_poisoned(p + 63));
	/* Through the shared list too, where the link lives in the object. */
	slab_thread_flush();
	assert_true(__asan_address_is_poisoned(p));
	assert_true(__asan_address_is_poisoned(p + 32));
	char *q = slab_alloc(c);
	assert_ptr_equal(q, p);
	assert_false(__asan_region_is_poisoned(q, 64));
	slab_free(c, q);
	slab_cache_destroy(c);
}
#endif

struct flush_job {
	struct slab_cache *c;
	void **freed;
	int nfreed;
	bool all_reused;
};

static void *flush_worker(void *arg)
{
	struct flush_job *j = arg;
	void *got[10];
	j->all_reused = true;
	for (int i = 0; i < 10; i++) {
		got[i] = slab_alloc(j->c);
		bool found = false;
		for (int k = 0; k < j->nfreed; k++)
			found |= got[i] == j->freed[k];
		j->all_reused &= found;
	}
	for (int i = 0; i < 10; i++)
		slab_free(j->c, got[i]);
	return NULL;
}

/* Objects freed here and flushed are what another thread gets next. */
static void test_thread_flush(void **state)
{
	(void)state;
	struct slab_cache *c = slab_cache_create("flush", 64, 8);
	assert_non_null(c);
	void *p[10];
	for (int i = 0; i < 10; i++)
		p[i] = slab_alloc(c);
	for (int i = 0; i < 10; i++)
		slab_free(c, p[i]);
	slab_thread_flush();

	struct flush_job j = { c, p, 10, false };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, flush_worker, &j), 0);
	pthread_join(t, NULL);
	assert_true(j.all_reused);
	assert_int_equal(in_use(c), 0);
	slab_cache_destroy(c);
}

static void *exit_worker(void *arg)
{
	struct slab_cache *c = arg;
	void *p[20];
	for (int i = 0; i < 20; i++)
		p[i] = slab_alloc(c);
	for (int i = 0; i < 20; i++)
		slab_free(c, p[i]);
	return NULL; /* its magazine still holds objects */
}

/* A thread's magazine goes back to the cache when the thread exits. */
static void test_thread_exit_returns_magazine(void **state)
{
	(void)state;
	enum { SIZE = 64, PER_SLAB = 65536 / SIZE };
	struct slab_cache *c = slab_cache_create("exit", SIZE, SIZE);
	assert_non_null(c);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, exit_worker, c), 0);
	pthread_join(t, NULL);

	struct slab_cache_stats st;
	slab_cache_stats(c, &st);
	assert_int_equal(st.objects_in_use, 0);
	assert_int_equal(st.slabs, 1);
	/* The whole first slab is usable here only if nothing was stranded. */
	void **p = malloc(PER_SLAB * sizeof(*p));
	assert_non_null(p);
	for (int i = 0; i < PER_SLAB; i++)
		assert_non_null(p[i] = slab_alloc(c));
	slab_cache_stats(c, &st);
	assert_int_equal(st.slabs, 1);
	void *extra = slab_alloc(c);
	slab_cache_stats(c, &st);
	assert_int_equal(st.slabs, 2);
	slab_free(c, extra);
	for (int i = 0; i < PER_SLAB; i++)
		slab_free(c, p[i]);
	assert_int_equal(in_use(c), 0);
	free(p);
	slab_cache_destroy(c);
}

static void test_destroy_recreate(void **state)
{
	(void)state;
	void *keep[8];
	for (int round = 0; round < 3 * SLAB_MAX_CACHES; round++) {
		size_t size = (size_t)16 << (round % 8);
		struct slab_cache *c = slab_cache_create("cycle", size, 16);
		assert_non_null(c);
		for (int i = 0; i < 8; i++) {
			keep[i] = slab_alloc(c);
			assert_non_null(keep[i]);
			assert_int_equal((uintptr_t)keep[i] % 16, 0);
			memset(keep[i], round, size);
		}
		assert_int_equal(in_use(c), 8);
		/* Leave some in this thread's magazine and some still allocated. */
		for (int i = 0; i < 5; i++)
			slab_free(c, keep[i]);
		assert_int_equal(in_use(c), 3);
		slab_cache_destroy(c);
	}
}

struct stale_job {
	struct slab_cache *c;
	pthread_barrier_t *bar;
	void *old[4];
	void *fresh[4];
	uint64_t in_use_seen;
};

static void *stale_worker(void *arg)
{
	struct stale_job *j = arg;
	for (int i = 0; i < 4; i++)
		j->old[i] = slab_alloc(j->c);
	for (int i = 0; i < 4; i++)
		slab_free(j->c, j->old[i]);
	pthread_barrier_wait(j->bar); /* main destroys and recreates */
	pthread_barrier_wait(j->bar);
	for (int i = 0; i < 4; i++) {
		j->fresh[i] = slab_alloc(j->c);
		memset(j->fresh[i], 0x5a, 512);
	}
	j->in_use_seen = in_use(j->c);
	for (int i = 0; i < 4; i++)
		slab_free(j->c, j->fresh[i]);
	return NULL;
}

/* A live thread's magazine for a dead cache must not feed its successor. */
static void test_stale_magazine_other_thread(void **state)
{
	(void)state;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	struct stale_job j = { .bar = &bar };
	j.c = slab_cache_create("old", 32, 32);
	assert_non_null(j.c);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stale_worker, &j), 0);
	pthread_barrier_wait(&bar);
	slab_cache_destroy(j.c);
	/* The lowest free slot is the one just released. */
	j.c = slab_cache_create("new", 512, 512);
	assert_non_null(j.c);
	pthread_barrier_wait(&bar);
	pthread_join(t, NULL);
	/* A stale object (32-byte spacing) would show up misaligned. */
	for (int i = 0; i < 4; i++)
		assert_int_equal((uintptr_t)j.fresh[i] % 512, 0);
	assert_int_equal(j.in_use_seen, 4);
	assert_int_equal(in_use(j.c), 0);
	slab_cache_destroy(j.c);
	pthread_barrier_destroy(&bar);
}

/* --- many threads, cross-thread frees ------------------------------------ */

enum { NTHREADS = 8, STRESS_ITERS = 200000, HOLD = 64, RING = 1024, OBJ_WORDS = 6 };

struct ring {
	pthread_mutex_t lock;
	void *slot[RING];
	size_t head, count;
};

struct stress {
	struct slab_cache *c;
	struct ring ring;
	pthread_barrier_t start;
	int bad;
};

struct stress_arg {
	struct stress *s;
	uint64_t tid;
};

static void stamp(uint64_t *o, uint64_t tag)
{
	for (int k = 0; k < OBJ_WORDS; k++)
		o[k] = tag ^ ((uint64_t)k * UINT64_C(0x9e3779b97f4a7c15));
}

static bool stamp_ok(const uint64_t *o)
{
	for (int k = 1; k < OBJ_WORDS; k++)
		if (o[k] != (o[0] ^ ((uint64_t)k * UINT64_C(0x9e3779b97f4a7c15))))
			return false;
	return true;
}

static bool ring_push(struct ring *r, void *p)
{
	bool ok = false;
	pthread_mutex_lock(&r->lock);
	if (r->count < RING) {
		r->slot[(r->head + r->count++) % RING] = p;
		ok = true;
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static void *ring_pop(struct ring *r)
{
	void *p = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->count) {
		p = r->slot[r->head];
		r->head = (r->head + 1) % RING;
		r->count--;
	}
	pthread_mutex_unlock(&r->lock);
	return p;
}

static void release(struct stress *s, uint64_t *o)
{
	if (!stamp_ok(o))
		__atomic_store_n(&s->bad, 1, __ATOMIC_RELAXED);
	slab_free(s->c, o);
}

static void *stress_worker(void *arg)
{
	struct stress_arg *a = arg;
	struct stress *s = a->s;
	uint64_t rs = 0x1234567ULL + a->tid * 7919, seq = 0;
	uint64_t *hold[HOLD] = { 0 };

	pthread_barrier_wait(&s->start);
	for (int it = 0; it < STRESS_ITERS; it++) {
		uint64_t r = rng_next(&rs);
		unsigned i = (unsigned)(r % HOLD);
		if (hold[i]) {
			/* A quarter of the objects are freed by some other thread. */
			if (((r >> 8) & 3) != 0 || !ring_push(&s->ring, hold[i]))
				release(s, hold[i]);
			hold[i] = NULL;
		}
		uint64_t *o = slab_alloc(s->c);
		if (!o || ((uintptr_t)o & 15)) {
			__atomic_store_n(&s->bad, 1, __ATOMIC_RELAXED);
			break;
		}
		stamp(o, a->tid << 48 | seq++);
		hold[i] = o;
		if (((r >> 12) & 3) == 0) {
			uint64_t *x = ring_pop(&s->ring);
			if (x)
				release(s, x);
		}
	}
	for (unsigned i = 0; i < HOLD; i++)
		if (hold[i])
			release(s, hold[i]);
	return NULL;
}

static void test_many_threads(void **state)
{
	(void)state;
	struct stress s = { 0 };
	s.c = slab_cache_create("stress", OBJ_WORDS * sizeof(uint64_t), 16);
	assert_non_null(s.c);
	pthread_mutex_init(&s.ring.lock, NULL);
	pthread_barrier_init(&s.start, NULL, NTHREADS);
	pthread_t t[NTHREADS];
	struct stress_arg args[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		args[i] = (struct stress_arg){ &s, (uint64_t)i + 1 };
		assert_int_equal(pthread_create(&t[i], NULL, stress_worker, &args[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	void *o;
	while ((o = ring_pop(&s.ring)))
		release(&s, o);
	assert_int_equal(s.bad, 0);

	struct slab_cache_stats st;
	slab_cache_stats(s.c, &st);
	assert_int_equal(st.objects_in_use, 0);
	/* Live objects never exceed threads * HOLD + RING, so memory is bounded. */
	assert_true(st.bytes_reserved <= (uint64_t)65536 * 16);
	pthread_barrier_destroy(&s.start);
	pthread_mutex_destroy(&s.ring.lock);
	slab_cache_destroy(s.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_invalid),
		cmocka_unit_test(test_aligned_distinct),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_large_objects),
#ifdef TEST_ASAN
		cmocka_unit_test(test_asan_poison),
#endif
		cmocka_unit_test(test_thread_flush),
		cmocka_unit_test(test_thread_exit_returns_magazine),
		cmocka_unit_test(test_destroy_recreate),
		cmocka_unit_test(test_stale_magazine_other_thread),
		cmocka_unit_test(test_many_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
