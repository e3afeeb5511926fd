/* SPDX-License-Identifier: MIT */
/*
 * Page contents derived from a key (xorshift64* seeded by it), so a reader can
 * regenerate what a page must hold instead of keeping a copy.
 */
#include <string.h>

#include "bench.h"

#define WORDS (BENCH_PAGE / 8)

static uint64_t seed_of(uint64_t key)
{
	/* splitmix64 step: neighbouring keys get unrelated streams, never 0. */
	uint64_t z = key + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

static inline uint64_t next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

void pattern_fill(void *page, uint64_t key)
{
	uint64_t x = seed_of(key), w[WORDS];
	for (unsigned i = 0; i < WORDS; i++)
		w[i] = next(&x);
	memcpy(page, w, sizeof(w));
}

size_t pattern_check(const void *page, uint64_t key)
{
	uint64_t x = seed_of(key), w[WORDS];
	size_t bad = 0;
	memcpy(w, page, sizeof(w));
	for (unsigned i = 0; i < WORDS; i++)
		bad += w[i] != next(&x);
	return bad;
}

int sample_differs(const void *page, const void *want)
{
	static const size_t off[] = { 0, BENCH_PAGE / 2 - 8, BENCH_PAGE - 8 };
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
		if (memcmp((const uint8_t *)page + off[i], (const uint8_t *)want + off[i], 8))
			return 1;
	return 0;
}
