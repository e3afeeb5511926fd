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

#include <signal.h>
#include <stdint.h>

static struct sigaction pager_sigbus;

static inline void pager_save_handler(void)
{
	sigaction(SIGBUS, NULL, &pager_sigbus);
}

static inline void pager_rearm(void)
{
	sigaction(SIGBUS, &pager_sigbus, NULL);
}

#endif
