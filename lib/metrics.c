/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t hist_bounds_us[METRICS_HIST_BUCKETS - 1] = {
	5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 100000,
};

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HIST };

struct metric {
	enum metric_kind kind;
	char *name, *labels, *help;
	atomic_uint_fast64_t *counter;
	metrics_gauge_fn gauge;
	void *gauge_arg;
	struct metrics_hist *hist;
};

struct metrics {
	struct metric *v;
	size_t n, cap;
};

struct metrics *metrics_create(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics_destroy(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].labels);
		free(m->v[i].help);
	}
	free(m->v);
	free(m);
}

static struct metric *add(struct metrics *m, enum metric_kind kind, const char *name,
			  const char *labels, const char *help)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct metric *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		m->v = v;
		m->cap = cap;
	}
	struct metric *e = &m->v[m->n];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->name = strdup(name);
	e->labels = strdup(labels ? labels : "");
	e->help = strdup(help);
	if (!e->name || !e->labels || !e->help) {
		free(e->name);
		free(e->labels);
		free(e->help);
		return NULL;
	}
	m->n++;
	return e;
}

int metrics_add_counter(struct metrics *m, const char *name, const char *labels,
			const char *help, atomic_uint_fast64_t *value)
{
	struct metric *e = add(m, KIND_COUNTER, name, labels, help);
	if (!e)
		return -ENOMEM;
	e->counter = value;
	return 0;
}

int metrics_add_gauge(struct metrics *m, const char *name, const char *labels,
		      const char *help, metrics_gauge_fn fn, void *arg)
{
	struct metric *e = add(m, KIND_GAUGE, name, labels, help);
	if (!e)
		return -ENOMEM;
	e->gauge = fn;
	e->gauge_arg = arg;
	return 0;
}

int metrics_add_hist(struct metrics *m, const char *name, const char *labels,
		     const char *help, struct metrics_hist *h)
{
	struct metric *e = add(m, KIND_HIST, name, labels, help);
	if (!e)
		return -ENOMEM;
	e->hist = h;
	return 0;
}

void metrics_hist_observe(struct metrics_hist *h, uint64_t ns)
{
	uint64_t us = ns / 1000 + (ns % 1000 != 0); /* round up: le is inclusive */
	int b = 0;
	while (b < METRICS_HIST_BUCKETS - 1 && us > hist_bounds_us[b])
		b++;
	metrics_inc(&h->bucket[b], 1);
	metrics_inc(&h->sum_ns, ns);
	metrics_inc(&h->count, 1);
}

/* Growable string for rendering. */
struct sbuf {
	char *p;
	size_t len, cap;
	int failed;
};

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n) * 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void render_hist(struct sbuf *b, const struct metric *e)
{
	const char *sep = e->labels[0] ? "," : "";
	uint64_t cum = 0;
	for (int i = 0; i < METRICS_HIST_BUCKETS; i++) {
		cum += atomic_load_explicit(&e->hist->bucket[i], memory_order_relaxed);
		if (i < METRICS_HIST_BUCKETS - 1)
			sb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", e->name, e->labels, sep,
				  (double)hist_bounds_us[i] / 1e6, (unsigned long long)cum);
		else
			sb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", e->name, e->labels,
				  sep, (unsigned long long)cum);
	}
	double sum = (double)atomic_load(&e->hist->sum_ns) / 1e9;
	const char *lb = e->labels[0] ? "{" : "", *rb = e->labels[0] ? "}" : "";
	sb_printf(b, "%s_sum%s%s%s %.9f\n", e->name, lb, e->labels, rb, sum);
	sb_printf(b, "%s_count%s%s%s %llu\n", e->name, lb, e->labels, rb,
		  (unsigned long long)atomic_load(&e->hist->count));
}

char *metrics_render(struct metrics *m, size_t *len)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	struct sbuf b = { .p = malloc(4096), .cap = 4096 };
	if (!b.p)
		return NULL;
	b.p[0] = '\0';
	for (size_t i = 0; i < m->n; i++) {
		const struct metric *e = &m->v[i];
		if (i == 0 || strcmp(m->v[i - 1].name, e->name))
			sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", e->name, e->help,
				  e->name, type_names[e->kind]);
		const char *lb = e->labels[0] ? "{" : "", *rb = e->labels[0] ? "}" : "";
		switch (e->kind) {
		case KIND_COUNTER:
			sb_printf(&b, "%s%s%s%s %llu\n", e->name, lb, e->labels, rb,
				  (unsigned long long)atomic_load_explicit(e->counter,
									   memory_order_relaxed));
			break;
		case KIND_GAUGE:
			sb_printf(&b, "%s%s%s%s %llu\n", e->name, lb, e->labels, rb,
				  (unsigned long long)e->gauge(e->gauge_arg));
			break;
		case KIND_HIST:
			render_hist(&b, e);
			break;
		}
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}
