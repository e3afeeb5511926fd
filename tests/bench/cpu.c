/* SPDX-License-Identifier: MIT */
/*
 * Where the two sides run. On a small VM the cost of a round trip depends
 * mostly on whether the two threads share a CPU (a wake-up across vCPUs costs
 * tens of microseconds), so each case pins both sides the same way, or the
 * ratios would compare scheduler luck rather than software.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

struct placement bench_place = { -1, -1 };

int cpu_pin_self(int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int placement_parse(const char *mode, struct placement *p)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (!strcmp(mode, "none"))
		*p = (struct placement){ -1, -1 };
	else if (!strcmp(mode, "same"))
		*p = (struct placement){ 0, 0 };
	else if (!strcmp(mode, "split"))
		*p = ncpu >= 2 ? (struct placement){ 0, 1 } : (struct placement){ 0, 0 };
	else
		return -EINVAL;
	return 0;
}
