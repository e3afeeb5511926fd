/* SPDX-License-Identifier: MIT */
/*
 * Shared by the pager tests. cmocka installs its own SIGBUS handler around
 * every test, which would take the pager's in-thread fault service away:
 * save the pager's handler after spill_open and put it back at the start of
 * each test (a program would install its handlers before spill_open, which
 * libspillway chains to).
 */
#ifndef SPILL_PAGER_TEST_H
#define SPILL_PAGER_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "harness.h"
#include "spillway.h"

static struct sigaction pager_sigbus;

static inline void pager_save_handler(void)
{
	sigaction(SIGBUS, NULL, &pager_sigbus);
}

static inline void pager_rearm(void)
{
	sigaction(SIGBUS, &pager_sigbus, NULL);
}

/* The usual fixture: one spillwayd and a context on it named name. */
static inline int pager_fixture_open(struct srv *server, spill_ctx **ctx, const char *name,
				     size_t budget)
{
	if (srv_start(server, "--capacity", "512M", NULL))
		return -1;
	struct spill_config cfg = { .servers = { server->url }, .local_budget = budget,
				    .name = name };
	*ctx = spill_open(&cfg);
	if (!*ctx) {
		fprintf(stderr, "spill_open: %s\n", spill_strerror(errno));
		return -1;
	}
	pager_save_handler();
	return 0;
}

static inline void pager_fixture_close(struct srv *server, spill_ctx *ctx)
{
	spill_close(ctx);
	srv_stop(server);
}

/* A page's contents: its number and the generation last written. */
static inline uint64_t seed_of(uint32_t page, uint32_t gen)
{
	return ((uint64_t)gen << 32) | page;
}

/* A thread of random reads and writes over pages [first, first + count),
 * every read checked against the generation last written; until *stop. */
struct runner {
	uint8_t *base;
	_Atomic uint32_t *gen;
	uint32_t first, count;
	uint64_t rng;
	atomic_int *stop;
	atomic_long *ops;
	int bad;
};

static inline void *random_rw(void *arg)
{
	struct runner *r = arg;
	while (!atomic_load(r->stop)) {
		r->rng = r->rng * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t p = r->first + (uint32_t)(r->rng >> 33) % r->count;
		uint8_t *pg = r->base + (size_t)p * 4096;
		uint32_t g = atomic_load(&r->gen[p]);
		if ((r->rng >> 20) & 1) {
			fill_page(pg, seed_of(p, g + 1));
			atomic_store(&r->gen[p], g + 1);
		} else {
			r->bad += !check_page(pg, seed_of(p, g));
		}
		atomic_fetch_add(r->ops, 1);
	}
	return NULL;
}

#endif
