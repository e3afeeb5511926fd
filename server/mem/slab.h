/* SPDX-License-Identifier: MIT */
/*
 * Slab allocator: typed caches of fixed-size objects for every small server
 * object (clients, extents, connections, replies).
 *
 * Objects are carved from 64 KiB slabs. Each thread keeps a small magazine of
 * free objects per cache, so the common alloc/free touches no lock; magazines
 * spill to and refill from the cache's shared list under its mutex. A thread's
 * magazines return to their caches when the thread exits.
 *
 * Under ASan, free objects are poisoned so a use after free is still caught.
 */
#ifndef SPILLWAY_SLAB_H
#define SPILLWAY_SLAB_H

#include <stddef.h>
#include <stdint.h>

struct slab_cache;

struct slab_cache_stats {
	uint64_t objects_in_use;  /* allocated and not yet freed          */
	uint64_t slabs;           /* 64 KiB slabs obtained from the system */
	uint64_t bytes_reserved;  /* slabs * slab size                     */
};

/* name is kept for metrics; size is rounded up to align (power of two,
 * at least sizeof(void *)). At most SLAB_MAX_CACHES caches exist at once.
 * Returns NULL with errno set on failure. */
#define SLAB_MAX_CACHES 64
struct slab_cache *slab_cache_create(const char *name, size_t size, size_t align);

/* Destroys the cache and every slab; objects still in use become invalid. */
void slab_cache_destroy(struct slab_cache *c);

/* Returns NULL with errno = ENOMEM when the system is out of memory. */
void *slab_alloc(struct slab_cache *c);
/* Zeroed object. */
void *slab_zalloc(struct slab_cache *c);
void slab_free(struct slab_cache *c, void *obj);

/* Return this thread's magazine for every cache to the shared lists
 * (also done automatically at thread exit). */
void slab_thread_flush(void);

void slab_cache_stats(struct slab_cache *c, struct slab_cache_stats *out);
const char *slab_cache_name(const struct slab_cache *c);

#endif
