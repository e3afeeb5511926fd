/* SPDX-License-Identifier: MIT */
/*
 * NUMA memory pools: one pool per chosen node, each a single mapping bound to
 * its node, pre-faulted by a thread running on that node (so first-touch puts
 * every page where it belongs), on huge pages when the system has them and
 * optionally mlocked. A buddy allocator per pool hands out blocks of it.
 *
 * Pool calls are thread-safe (one mutex per pool; allocation is control-plane
 * work, never on the data path).
 */
#ifndef SPILLWAY_POOL_H
#define SPILLWAY_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct pool_options {
	uint64_t capacity;     /* bytes across all nodes */
	const char *nodes;     /* "all" or a list like "0,1" or "0-3" */
	uint64_t unit;         /* every pool's size is a multiple of this (extent size) */
	int mlock;             /* lock pools in RAM; failure is an error */
	int hugetlb;           /* try MAP_HUGETLB first (else THP via madvise) */
};

struct pool {
	int node;
	uint8_t *base;
	uint64_t bytes;
	int on_hugetlb;        /* backed by pre-reserved huge pages */
	struct buddy *buddy;
	void *lock;            /* pthread_mutex_t, kept opaque */
	atomic_uint_fast64_t used;
};

struct pool_set {
	struct pool *pools;
	int npools;
	uint64_t capacity;
};

struct pool_block {
	int pool;              /* index into pool_set.pools */
	uint64_t frame;        /* first 4 KiB frame within the pool */
	unsigned order;
	uint8_t *mem;
};

/* 0, or -errno with err (cap bytes) saying what failed. */
int pool_set_create(const struct pool_options *o, struct pool_set **out,
		    char *err, size_t cap);
void pool_set_destroy(struct pool_set *s);

/* Allocate 2^order frames, preferring pref_node (-1: the pool with the most
 * free memory), falling back to any other pool. 0 or -ENOSPC. */
int pool_alloc(struct pool_set *s, int pref_node, unsigned order, struct pool_block *out);
void pool_free(struct pool_set *s, const struct pool_block *b);

/* Parse "all" / "0,2-3" against the nodes this process may use.
 * Fills nodes[] (at most max) and returns the count, or -EINVAL. */
int pool_parse_nodes(const char *spec, int *nodes, int max);

#endif
