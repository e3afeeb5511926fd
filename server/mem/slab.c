/* SPDX-License-Identifier: MIT */
/*
 * Slab caches with per-thread magazines.
 *
 * A cache carves objects lazily from its newest slab (a bump pointer) and
 * keeps freed objects on a shared list linked through their first word, both
 * under the cache mutex. Each thread has one magazine per cache slot; alloc
 * and free use only the magazine until it is empty or full, then move half a
 * magazine from or to the shared side in one locked batch.
 *
 * Slots are reused after a destroy, so every cache gets a unique generation
 * and a magazine remembers the generation it holds objects for. A magazine
 * with another generation belongs to a dead cache: its contents point into
 * freed slabs and are dropped, never handed out.
 *
 * objects_in_use is counted without a shared counter on the hot path: the
 * cache counts, under its mutex, the objects that left the shared side, and
 * the stats call subtracts what sits in magazines, reading every thread's
 * magazine (the threads are on a global list; a magazine's count and
 * generation are atomics for that reason only).
 */
#include "slab.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define slab_poison(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define slab_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define slab_poison(p, n)   ((void)(p), (void)(n))
#define slab_unpoison(p, n) ((void)(p), (void)(n))
#endif

#define SLAB_SIZE  ((size_t)64 << 10)
#define MAG_SIZE   32
#define MAG_BATCH  (MAG_SIZE / 2)
#define SLAB_ALIGN 64

struct slab_mag {
	atomic_uint_fast64_t gen; /* generation of the cache the objects belong to */
	atomic_uint n;
	void *obj[MAG_SIZE];      /* owner thread only */
};

struct slab_tls {
	struct slab_tls *prev, *next; /* on slab_threads, under slab_lock */
	struct slab_mag mag[SLAB_MAX_CACHES];
};

struct slab_cache {
	char name[32];
	size_t size, align, slab_size;
	unsigned id;
	uint64_t gen;

	pthread_mutex_t lock; /* guards everything below */
	void *free_list;
	char *bump, *bump_end;
	void **slabs;
	size_t nslabs, slabs_cap;
	uint64_t out; /* objects neither on free_list nor uncarved */
};

/* slab_lock guards the slot table, the generation counter and the thread
 * list. Lock order: slab_lock, then a cache's lock. */
static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab_cache *slab_slots[SLAB_MAX_CACHES];
static uint64_t slab_next_gen = 1;
static struct slab_tls *slab_threads;

static pthread_once_t slab_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t slab_key;
static int slab_key_err;
static __thread struct slab_tls *slab_self;

static void slab_tls_destroy(void *arg);

static void slab_key_init(void)
{
	slab_key_err = pthread_key_create(&slab_key, slab_tls_destroy);
}

/* The link inside a free object is touched with just that word unpoisoned. */
static void link_set(void *obj, void *next)
{
	slab_unpoison(obj, sizeof(next));
	memcpy(obj, &next, sizeof(next));
	slab_poison(obj, sizeof(next));
}

static void *link_get(void *obj)
{
	void *next;

	slab_unpoison(obj, sizeof(next));
	memcpy(&next, obj, sizeof(next));
	slab_poison(obj, sizeof(next));
	return next;
}

static int slab_grow(struct slab_cache *c)
{
	if (c->nslabs == c->slabs_cap) {
		size_t cap = c->slabs_cap ? c->slabs_cap * 2 : 16;
		void **s = realloc(c->slabs, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		c->slabs = s;
		c->slabs_cap = cap;
	}
	void *p;
	if (posix_memalign(&p, c->align > SLAB_ALIGN ? c->align : SLAB_ALIGN, c->slab_size))
		return -ENOMEM;
	slab_poison(p, c->slab_size);
	c->slabs[c->nslabs++] = p;
	c->bump = p;
	c->bump_end = (char *)p + c->slab_size / c->size * c->size;
	return 0;
}

/* Fill an empty magazine with up to a batch; returns how many it got. */
static unsigned mag_refill(struct slab_cache *c, struct slab_mag *m)
{
	unsigned n = 0;

	pthread_mutex_lock(&c->lock);
	while (n < MAG_BATCH) {
		if (c->free_list) {
			void *o = c->free_list;
			c->free_list = link_get(o);
			m->obj[n++] = o;
		} else if (c->bump != c->bump_end) {
			m->obj[n++] = c->bump;
			c->bump += c->size;
		} else if (n || slab_grow(c)) {
			break;
		}
	}
	c->out += n;
	pthread_mutex_unlock(&c->lock);

	/* Hand out in the order taken: ascending addresses from a fresh slab. */
	for (unsigned i = 0; i < n / 2; i++) {
		void *t = m->obj[i];
		m->obj[i] = m->obj[n - 1 - i];
		m->obj[n - 1 - i] = t;
	}
	return n;
}

/* Move the first cnt objects of a magazine (the coldest) to the shared list. */
static void mag_spill(struct slab_cache *c, struct slab_mag *m, unsigned n, unsigned cnt)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < cnt; i++) {
		link_set(m->obj[i], c->free_list);
		c->free_list = m->obj[i];
	}
	c->out -= cnt;
	pthread_mutex_unlock(&c->lock);
	memmove(m->obj, m->obj + cnt, (n - cnt) * sizeof(m->obj[0]));
	atomic_store_explicit(&m->n, n - cnt, memory_order_relaxed);
}

static struct slab_tls *slab_tls_get(void)
{
	if (slab_self)
		return slab_self;
	struct slab_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (pthread_setspecific(slab_key, t)) {
		free(t);
		return NULL;
	}
	pthread_mutex_lock(&slab_lock);
	t->next = slab_threads;
	if (slab_threads)
		slab_threads->prev = t;
	slab_threads = t;
	pthread_mutex_unlock(&slab_lock);
	slab_self = t;
	return t;
}

/* This thread's magazine for c, emptied first if it was left by a dead cache. */
static struct slab_mag *mag_get(const struct slab_cache *c)
{
	struct slab_tls *t = slab_tls_get();
	if (!t)
		return NULL;
	struct slab_mag *m = &t->mag[c->id];
	if (atomic_load_explicit(&m->gen, memory_order_relaxed) != c->gen) {
		atomic_store_explicit(&m->n, 0, memory_order_relaxed);
		atomic_store_explicit(&m->gen, c->gen, memory_order_relaxed);
	}
	return m;
}

/* Caller holds slab_lock, so no cache can be destroyed meanwhile. */
static void tls_flush_locked(struct slab_tls *t)
{
	for (unsigned i = 0; i < SLAB_MAX_CACHES; i++) {
		struct slab_mag *m = &t->mag[i];
		unsigned n = atomic_load_explicit(&m->n, memory_order_relaxed);
		if (!n)
			continue;
		struct slab_cache *c = slab_slots[i];
		if (c && c->gen == atomic_load_explicit(&m->gen, memory_order_relaxed))
			mag_spill(c, m, n, n);
		else
			atomic_store_explicit(&m->n, 0, memory_order_relaxed);
	}
}

void slab_thread_flush(void)
{
	struct slab_tls *t = slab_self;
	if (!t)
		return;
	pthread_mutex_lock(&slab_lock);
	tls_flush_locked(t);
	pthread_mutex_unlock(&slab_lock);
}

static void slab_tls_destroy(void *arg)
{
	struct slab_tls *t = arg;

	pthread_mutex_lock(&slab_lock);
	tls_flush_locked(t);
	if (t->prev)
		t->prev->next = t->next;
	else
		slab_threads = t->next;
	if (t->next)
		t->next->prev = t->prev;
	pthread_mutex_unlock(&slab_lock);
	free(t);
	slab_self = NULL;
}

struct slab_cache *slab_cache_create(const char *name, size_t size, size_t align)
{
	pthread_once(&slab_key_once, slab_key_init);
	if (slab_key_err) {
		errno = slab_key_err;
		return NULL;
	}
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (size == 0 || (align & (align - 1)) || size > SIZE_MAX / 4 || align > SIZE_MAX / 4) {
		errno = EINVAL;
		return NULL;
	}
	struct slab_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
	c->align = align;
	c->size = (size + align - 1) & ~(align - 1);
	c->slab_size = c->size <= SLAB_SIZE ? SLAB_SIZE
					    : (c->size + SLAB_SIZE - 1) & ~(SLAB_SIZE - 1);
	int rc = pthread_mutex_init(&c->lock, NULL);
	if (rc) {
		free(c);
		errno = rc;
		return NULL;
	}

	pthread_mutex_lock(&slab_lock);
	unsigned id = 0;
	while (id < SLAB_MAX_CACHES && slab_slots[id])
		id++;
	if (id < SLAB_MAX_CACHES) {
		c->id = id;
		c->gen = slab_next_gen++;
		slab_slots[id] = c;
	}
	pthread_mutex_unlock(&slab_lock);
	if (id == SLAB_MAX_CACHES) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		errno = ENOSPC;
		return NULL;
	}
	return c;
}

void slab_cache_destroy(struct slab_cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&slab_lock);
	slab_slots[c->id] = NULL;
	pthread_mutex_unlock(&slab_lock);
	/* Other threads' magazines are dropped lazily by the generation check. */
	if (slab_self) {
		struct slab_mag *m = &slab_self->mag[c->id];
		if (atomic_load_explicit(&m->gen, memory_order_relaxed) == c->gen)
			atomic_store_explicit(&m->n, 0, memory_order_relaxed);
	}
	for (size_t i = 0; i < c->nslabs; i++) {
		/* Stale poison would outlive the memory and hit its next owner. */
		slab_unpoison(c->slabs[i], c->slab_size);
		free(c->slabs[i]);
	}
	free(c->slabs);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void *slab_alloc(struct slab_cache *c)
{
	struct slab_mag *m = mag_get(c);
	if (!m) {
		errno = ENOMEM;
		return NULL;
	}
	unsigned n = atomic_load_explicit(&m->n, memory_order_relaxed);
	if (!n) {
		n = mag_refill(c, m);
		if (!n) {
			errno = ENOMEM;
			return NULL;
		}
	}
	void *obj = m->obj[--n];
	atomic_store_explicit(&m->n, n, memory_order_relaxed);
	slab_unpoison(obj, c->size);
	return obj;
}

void *slab_zalloc(struct slab_cache *c)
{
	void *obj = slab_alloc(c);
	if (obj)
		memset(obj, 0, c->size);
	return obj;
}

void slab_free(struct slab_cache *c, void *obj)
{
	if (!obj)
		return;
	slab_poison(obj, c->size);
	struct slab_mag *m = mag_get(c);
	if (!m) {
		/* No magazine (out of memory for one): straight to the shared list. */
		pthread_mutex_lock(&c->lock);
		link_set(obj, c->free_list);
		c->free_list = obj;
		c->out--;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	unsigned n = atomic_load_explicit(&m->n, memory_order_relaxed);
	if (n == MAG_SIZE) {
		mag_spill(c, m, n, MAG_BATCH);
		n -= MAG_BATCH;
	}
	m->obj[n++] = obj;
	atomic_store_explicit(&m->n, n, memory_order_relaxed);
}

void slab_cache_stats(struct slab_cache *c, struct slab_cache_stats *out)
{
	uint64_t outside, in_mags = 0;

	pthread_mutex_lock(&slab_lock);
	pthread_mutex_lock(&c->lock);
	outside = c->out;
	out->slabs = c->nslabs;
	out->bytes_reserved = (uint64_t)c->nslabs * c->slab_size;
	pthread_mutex_unlock(&c->lock);
	for (struct slab_tls *t = slab_threads; t; t = t->next) {
		struct slab_mag *m = &t->mag[c->id];
		if (atomic_load_explicit(&m->gen, memory_order_relaxed) == c->gen)
			in_mags += atomic_load_explicit(&m->n, memory_order_relaxed);
	}
	pthread_mutex_unlock(&slab_lock);
	/* Magazines are read while their owners run: clamp a torn snapshot. */
	out->objects_in_use = outside > in_mags ? outside - in_mags : 0;
}

const char *slab_cache_name(const struct slab_cache *c)
{
	return c->name;
}
