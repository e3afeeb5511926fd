/* SPDX-License-Identifier: MIT */
/*
 * Shared by the pager tests. cmocka installs its own SIGBUS handler around
 * every test, which would take the pager's in-thread fault service away:
 * save the pager's handler after spill_open and put it back at the start of
 * each test (a program would install its handlers before spill_open, which
 * libspillway chains to). Also here: catching the SIGBUS of a lost page
 * during a scan, and page contents by generation.
 */
#ifndef SPILL_PAGER_TEST_H
#define SPILL_PAGER_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* Scanning pages that may be lost: a test's SIGBUS handler, installed
 * before spill_open (the library chains the faults of lost pages to it),
 * jumps back to the sigsetjmp(scan_env, 1) the scan set before each page. */
static sigjmp_buf scan_env;

static inline void scan_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	siglongjmp(scan_env, 1);
}

static inline void scan_catch_sigbus(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = scan_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* A 4 KiB page of zeros (what a lost page must never read back as). */
static inline int all_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < 4096; i++)
		if (p[i])
			return 0;
	return 1;
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
