/* SPDX-License-Identifier: MIT */
/*
 * spillway-bench: `server` measures spillwayd against the machine's limits
 * and memcached; `pager` measures libspillway against local memory and the
 * kernel's swap; `arbiter` simulates the cluster arbiter's policy; `demo` is
 * the README walk-through. Exit 0 success, 1 failure, 2 usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_nbd.h"

FILE *bench_info;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: spillway-bench server [--json] [--ops N] [--seconds S] [--pin same|split|none]\n"
		"       spillway-bench pager [--json] [--size BYTES] [--seconds S] [--quick] [--pin MODE]\n"
		"       spillway-bench demo [--server URL] [--size SIZE] [--psk-file FILE]\n"
		"       spillway-bench nbd [--json] [--size SIZE] [--seconds S]   (vs nbdkit memory)\n"
		"       spillway-bench arbiter [--json] [--clients N] [--servers N] [--steps N] [--seed S]\n"
		"spillwayd and spillctl are looked for next to this program, then in\n"
		"$SPILLWAYD / $SPILLCTL, then on PATH; memcached is $MEMCACHED if set\n"
		"(MEMCACHED=none skips it), else found on PATH.\n");
}

/* Stop the children before dying of a signal. */
static void on_fatal(int sig)
{
	pager_cleanup();
	spawn_kill_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_fatal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	atexit(spawn_kill_all);
	atexit(pager_cleanup); /* runs first: a case's child, then swap and cgroup */
}

int main(int argc, char **argv)
{
	bench_info = stdout;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	install_handlers();
	if (!strcmp(argv[1], "server"))
		return cmd_server(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pager"))
		return cmd_pager(argc - 1, argv + 1);
	if (!strcmp(argv[1], "nbd"))
		return cmd_nbd(argc - 1, argv + 1);
	if (!strcmp(argv[1], "arbiter"))
		return bench_arbiter_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "demo"))
		return cmd_demo(argc - 1, argv + 1);
	fprintf(stderr, "spillway-bench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
