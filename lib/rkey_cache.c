/* SPDX-License-Identifier: MIT */
#include "rkey_cache.h"

static unsigned slot_of(uint64_t extent)
{
	return (unsigned)((extent * 0x9e3779b97f4a7c15ull) >> 52) % RKEY_CACHE_SLOTS;
}

int rkey_cache_get(const struct rkey_cache *c, uint64_t extent, struct rkey_entry *out)
{
	const struct rkey_entry *e = &c->e[slot_of(extent)];
	if (!extent || e->extent != extent)
		return 0;
	*out = *e;
	return 1;
}

void rkey_cache_put(struct rkey_cache *c, const struct rkey_entry *e)
{
	c->e[slot_of(e->extent)] = *e;
}

void rkey_cache_drop(struct rkey_cache *c, uint64_t extent)
{
	struct rkey_entry *e = &c->e[slot_of(extent)];
	if (e->extent == extent)
		e->extent = 0;
}
