/* SPDX-License-Identifier: MIT */
/*
 * Remote keys of extents, per RDMA connection: a fixed-size direct-mapped
 * cache, so a lookup on the fault path never allocates. A collision only
 * costs another KEY round trip.
 */
#ifndef SPILLWAY_RKEY_CACHE_H
#define SPILLWAY_RKEY_CACHE_H

#include <stdint.h>

#define RKEY_CACHE_SLOTS 4096u

struct rkey_entry {
	uint64_t extent;      /* 0: empty (extent ids start at 1) */
	uint64_t addr;
	uint32_t rkey;
	uint32_t npages;
};

struct rkey_cache {
	struct rkey_entry e[RKEY_CACHE_SLOTS];
};

/* 1 and *out filled when extent is cached, else 0. */
int rkey_cache_get(const struct rkey_cache *c, uint64_t extent, struct rkey_entry *out);
void rkey_cache_put(struct rkey_cache *c, const struct rkey_entry *e);
void rkey_cache_drop(struct rkey_cache *c, uint64_t extent);

#endif
