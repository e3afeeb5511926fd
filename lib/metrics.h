/* SPDX-License-Identifier: MIT */
/*
 * Metrics registry rendered in the Prometheus text format. Counters and
 * histograms are atomics owned by whoever updates them; the registry only
 * points at them, so updating costs one relaxed atomic add and no lock.
 * Gauges are read through a callback at render time.
 *
 * Register every series of one metric name consecutively: HELP and TYPE are
 * written once per run of equal names.
 */
#ifndef SPILLWAY_METRICS_H
#define SPILLWAY_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_HIST_BUCKETS 14

/* Latency histogram, bucket bounds in microseconds (last is +Inf). */
struct metrics_hist {
	atomic_uint_fast64_t bucket[METRICS_HIST_BUCKETS];
	atomic_uint_fast64_t sum_ns;
	atomic_uint_fast64_t count;
};

struct metrics;
typedef uint64_t (*metrics_gauge_fn)(void *arg);

struct metrics *metrics_create(void);
void metrics_destroy(struct metrics *m);

/* labels: "" or e.g. "op=\"read\"" (without braces). Strings are copied.
 * Each returns 0 or -ENOMEM. */
int metrics_add_counter(struct metrics *m, const char *name, const char *labels,
			const char *help, atomic_uint_fast64_t *value);
int metrics_add_gauge(struct metrics *m, const char *name, const char *labels,
		      const char *help, metrics_gauge_fn fn, void *arg);
int metrics_add_hist(struct metrics *m, const char *name, const char *labels,
		     const char *help, struct metrics_hist *h);

void metrics_hist_observe(struct metrics_hist *h, uint64_t ns);

/* Render everything; returns a malloc'ed NUL-terminated string or NULL. */
char *metrics_render(struct metrics *m, size_t *len);

static inline void metrics_inc(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif
