/* SPDX-License-Identifier: MIT */
/* `spillway-bench demo`: the sample program it runs through libspillway. */
#ifndef SPILLWAY_BENCH_DEMO_H
#define SPILLWAY_BENCH_DEMO_H

#include <stdint.h>

struct demo_sample_cfg {
	const char *url;
	const char *psk_file;  /* NULL: none */
	uint64_t bytes;        /* records; the local budget is an eighth */
	uint64_t seed;
};

/*
 * Open a pager on url, generate, sort and verify the records in a far region,
 * print the figures and spill_stats; while_open(arg) (if not NULL) runs before
 * the region is freed. 0, or -errno (every failure is explained on stderr).
 */
int demo_sample(const struct demo_sample_cfg *cfg, int (*while_open)(void *arg), void *arg);

#endif
