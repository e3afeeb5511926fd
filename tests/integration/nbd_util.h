/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the NBD tests: start spillwayd with an NBD listener on a
 * free loopback port, create exports with spillctl, run external clients.
 * Header-only: the integration build compiles each test_*.c with harness.c.
 */
#ifndef SPILLWAY_TEST_NBD_UTIL_H
#define SPILLWAY_TEST_NBD_UTIL_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The bound NBD port, from the start-up log line (written before the ready
 * line, so it is there once srv_start returns). 0 if absent. */
static inline int nbd_port_of(const struct srv *s)
{
	FILE *f = fopen(s->log_path, "r");
	char line[1024];
	int port = 0;
	while (f && !port && fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "nbd: listening on ");
		if (p)
			p = strstr(p, " port ");
		if (p)
			sscanf(p, " port %d", &port);
	}
	if (f)
		fclose(f);
	return port;
}

/* Start with --nbd 127.0.0.1:0 plus up to four extra arguments (NULL-ended). */
static inline int nbd_srv_start(struct srv *s, const char *capacity, const char *a1,
				 const char *a2)
{
	int rc = srv_start(s, "--capacity", capacity, "--nbd", "127.0.0.1:0", "--grace", "0",
			   a1, a2, NULL);
	return rc ? rc : (nbd_port_of(s) > 0 ? 0 : -EIO);
}

static inline void nbd_uri(const struct srv *s, const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "nbd://127.0.0.1:%d/%s", nbd_port_of(s), name);
}

static inline int have_tool(const char *path)
{
	return access(path, X_OK) == 0;
}

#endif
