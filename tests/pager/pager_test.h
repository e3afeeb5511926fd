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

#endif
