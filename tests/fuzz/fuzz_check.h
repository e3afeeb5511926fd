/* SPDX-License-Identifier: MIT */
/* Fuzz targets abort on a broken invariant so libFuzzer records the input. */
#ifndef SPILLWAY_FUZZ_CHECK_H
#define SPILLWAY_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
