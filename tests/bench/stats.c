/* SPDX-License-Identifier: MIT */
/* Monotonic time, latency samples and their percentiles. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int lat_init(struct lat_rec *l, size_t cap)
{
	l->n = 0;
	l->cap = cap ? cap : 1;
	l->ns = malloc(l->cap * sizeof(*l->ns));
	return l->ns ? 0 : -ENOMEM;
}

void lat_add(struct lat_rec *l, uint64_t ns)
{
	if (l->n < l->cap)
		l->ns[l->n++] = ns;
}

void lat_free(struct lat_rec *l)
{
	free(l->ns);
	l->ns = NULL;
	l->n = l->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile. */
double lat_percentile_us(struct lat_rec *l, double p)
{
	if (!l->n)
		return -1;
	qsort(l->ns, l->n, sizeof(*l->ns), cmp_u64);
	size_t rank = (size_t)(p / 100.0 * (double)l->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > l->n)
		rank = l->n;
	return (double)l->ns[rank - 1] / 1000.0;
}

double result_ops_per_s(const struct result *r)
{
	return r->seconds > 0 ? (double)r->ops / r->seconds : 0;
}

double result_mb_per_s(const struct result *r)
{
	return result_ops_per_s(r) * (double)r->bytes_per_op / 1e6;
}
