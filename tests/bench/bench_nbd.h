/* SPDX-License-Identifier: MIT */
/* spillway-bench nbd: spillwayd's NBD export against nbdkit's memory plugin. */
#ifndef SPILLWAY_BENCH_NBD_H
#define SPILLWAY_BENCH_NBD_H

#include <stdint.h>

int cmd_nbd(int argc, char **argv);

/* nbd_client.c: a minimal pipelined NBD client for random 4 KiB requests.
 * Returns ops/s, or a negative errno. write: WRITE instead of READ. */
double nbd_random_4k(int port, const char *name, uint64_t size, int write, unsigned depth,
		     double seconds);

#endif
