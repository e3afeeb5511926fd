/* SPDX-License-Identifier: MIT */
/*
 * numa_alloc URL NAME ctrl|bin COUNT: register NAME at URL and allocate COUNT
 * extents one at a time, asking for "any node" (AllocExtent node -1, or the
 * binary ALLOC with SPILL_NODE_ANY). Prints one line per extent,
 * "extent ID node N" (the binary reply carries no node: "node ?"), then
 * exits without freeing them: they stay lent to NAME for the server's grace
 * period, where `spillctl status` sees them. Exit 1 on any failure.
 * Used by tests/vm/scenarios/numa.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

int main(int argc, char **argv)
{
	if (argc != 5 || (strcmp(argv[3], "ctrl") && strcmp(argv[3], "bin"))) {
		fprintf(stderr, "usage: numa_alloc URL NAME ctrl|bin COUNT\n");
		return 2;
	}
	int count = atoi(argv[4]);
	struct client_opts o = { .name = argv[2] };
	struct client *c;
	char why[256] = "";
	int rc = client_connect(argv[1], &o, &c, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "numa_alloc: connect %s: %s %s\n", argv[1], strerror(-rc), why);
		return 1;
	}
	for (int i = 0; i < count; i++) {
		struct client_extent e;
		if (!strcmp(argv[3], "ctrl")) {
			rc = client_alloc_extents(c, 1, -1, &e);
			if (rc == 0)
				printf("extent %llu node %u\n", (unsigned long long)e.id, e.node);
		} else {
			struct client_req r = { .op = SPILL_OP_ALLOC, .page = SPILL_NODE_ANY }, *done;
			rc = client_submit(c, &r);
			if (rc == 0)
				rc = client_reap(c, &done, 1, 1) == 1 ? r.status : -EIO;
			if (rc == 0)
				printf("extent %llu node ?\n", (unsigned long long)r.extent);
		}
		if (rc) {
			fprintf(stderr, "numa_alloc: allocation %d: %s\n", i + 1, strerror(-rc));
			client_close(c);
			return 1;
		}
	}
	client_close(c);
	return 0;
}
