/* SPDX-License-Identifier: MIT */
/* Deterministic xorshift64* for unit tests: same seed, same run. */
#ifndef SPILLWAY_TEST_RNG_H
#define SPILLWAY_TEST_RNG_H

#include <stdint.h>

static uint64_t rng_state;

static inline uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * UINT64_C(2685821657736338717);
}

#endif
