/* SPDX-License-Identifier: MIT */
/*
 * Metrics: Prometheus text output for counters, gauges and histograms, and
 * histogram bucket placement. The exact-text tests pin the format; the
 * structural checker validates any output against the exposition rules
 * (HELP/TYPE once per name and before its samples, cumulative buckets ending
 * in +Inf equal to _count).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* Upper bounds of the finite buckets, microseconds (metrics.c). */
static const uint64_t bounds_us[METRICS_HIST_BUCKETS - 1] = {
	5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 100000,
};
static const char *const bounds_le[METRICS_HIST_BUCKETS] = {
	"5e-06", "1e-05", "2e-05", "5e-05", "0.0001", "0.0002", "0.0005",
	"0.001", "0.002", "0.005", "0.01", "0.05", "0.1", "+Inf",
};

static char *render(struct metrics *m)
{
	size_t len = (size_t)-1;
	char *s = metrics_render(m, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	/* len is optional. */
	char *t = metrics_render(m, NULL);
	assert_non_null(t);
	assert_string_equal(s, t);
	free(t);
	return s;
}

/* ---- structural checker ------------------------------------------------- */

#define MAX_NAMES 512

struct seen {
	char name[MAX_NAMES][128];
	char type[MAX_NAMES][16];
	int n;
};

static int seen_find(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->name[i], name))
			return i;
	return -1;
}

static bool name_ok(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     c == ':';
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* The metric family a sample belongs to: histogram series drop their suffix. */
static int family_of(const struct seen *s, const char *sample)
{
	int i = seen_find(s, sample);
	if (i >= 0)
		return i;
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	for (int k = 0; k < 3; k++) {
		size_t n = strlen(sample), l = strlen(sfx[k]);
		if (n > l && !strcmp(sample + n - l, sfx[k])) {
			char base[128];
			snprintf(base, sizeof(base), "%.*s", (int)(n - l), sample);
			i = seen_find(s, base);
			if (i >= 0 && !strcmp(s->type[i], "histogram"))
				return i;
		}
	}
	return -1;
}

/* Validates text; returns the number of sample lines. */
static int check_exposition(const char *text)
{
	struct seen *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	int samples = 0;
	char pending_help[128] = "";
	/* For histograms: last cumulative count within the current series. */
	double last_bucket = -1;
	bool saw_inf = false;
	double inf_value = -1;

	const char *p = text;
	if (*p)
		assert_true(text[strlen(text) - 1] == '\n');
	while (*p) {
		const char *eol = strchr(p, '\n');
		assert_non_null(eol);
		char line[4096];
		size_t n = (size_t)(eol - p);
		assert_true(n < sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		p = eol + 1;

		if (!strncmp(line, "# HELP ", 7)) {
			char *name = line + 7, *sp = strchr(name, ' ');
			assert_non_null(sp);
			*sp = '\0';
			assert_true(name_ok(name, strlen(name)));
			if (seen_find(s, name) >= 0)
				fail_msg("HELP for %s twice", name);
			assert_true(strlen(name) < sizeof(pending_help));
			strcpy(pending_help, name);
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			char *name = line + 7, *sp = strchr(name, ' ');
			assert_non_null(sp);
			*sp = '\0';
			const char *type = sp + 1;
			/* Right after its HELP, once. */
			assert_string_equal(name, pending_help);
			pending_help[0] = '\0';
			assert_true(s->n < MAX_NAMES);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
				    !strcmp(type, "histogram"));
			assert_true(strlen(name) < sizeof(s->name[0]));
			strcpy(s->name[s->n], name);
			strcpy(s->type[s->n], type);
			s->n++;
			last_bucket = -1;
			saw_inf = false;
			continue;
		}
		assert_true(line[0] != '#');
		assert_true(line[0] != '\0');

		/* name[{labels}] value */
		size_t nl = strcspn(line, "{ ");
		assert_true(name_ok(line, nl));
		char sample[128];
		snprintf(sample, sizeof(sample), "%.*s", (int)nl, line);
		int fam = family_of(s, sample);
		if (fam < 0)
			fail_msg("sample %s before its TYPE", sample);
		/* Samples belong to the most recently declared family. */
		assert_int_equal(fam, s->n - 1);
		const char *rest = line + nl;
		char labels[2048] = "";
		if (*rest == '{') {
			const char *close = strchr(rest, '}');
			assert_non_null(close);
			snprintf(labels, sizeof(labels), "%.*s", (int)(close - rest - 1), rest + 1);
			rest = close + 1;
		}
		assert_true(*rest == ' ');
		char *end;
		double v = strtod(rest + 1, &end);
		assert_true(end != rest + 1 && *end == '\0');
		assert_true(v >= 0);
		samples++;

		if (!strcmp(s->type[fam], "histogram")) {
			size_t sl = strlen(sample);
			if (sl > 7 && !strcmp(sample + sl - 7, "_bucket")) {
				const char *le = strstr(labels, "le=\"");
				assert_non_null(le);
				if (last_bucket < 0 || saw_inf) {
					/* A new series starts. */
					last_bucket = -1;
					saw_inf = false;
				}
				assert_true(v >= last_bucket);
				last_bucket = v;
				if (!strcmp(le, "le=\"+Inf\"")) {
					saw_inf = true;
					inf_value = v;
				}
			} else if (sl > 6 && !strcmp(sample + sl - 6, "_count")) {
				assert_true(saw_inf);
				assert_true(v == inf_value);
			} else {
				assert_true(saw_inf);
			}
		}
	}
	assert_string_equal(pending_help, ""); /* every HELP had its TYPE */
	free(s);
	return samples;
}

/* Cumulative count of bucket i of a histogram without labels. */
static uint64_t bucket_value(const char *text, const char *name, int i)
{
	char key[256];
	snprintf(key, sizeof(key), "%s_bucket{le=\"%s\"} ", name, bounds_le[i]);
	const char *p = strstr(text, key);
	if (!p)
		fail_msg("no %s in output", key);
	return strtoull(p + strlen(key), NULL, 10);
}

/* ---- tests -------------------------------------------------------------- */

static void test_empty(void **state)
{
	(void)state;
	struct metrics *m = metrics_create();
	assert_non_null(m);
	size_t len = 99;
	char *s = metrics_render(m, &len);
	assert_non_null(s);
	assert_int_equal(len, 0);
	assert_string_equal(s, "");
	free(s);
	metrics_destroy(m);
	metrics_destroy(NULL);
}

static atomic_uint_fast64_t reads, writes, conns;

static void test_counters(void **state)
{
	(void)state;
	struct metrics *m = metrics_create();
	assert_non_null(m);
	atomic_store(&reads, 5);
	atomic_store(&writes, 7);
	atomic_store(&conns, 0);
	assert_int_equal(metrics_add_counter(m, "spill_pages_total", "op=\"read\"",
					     "Pages moved", &reads), 0);
	assert_int_equal(metrics_add_counter(m, "spill_pages_total", "op=\"write\"",
					     "Pages moved", &writes), 0);
	assert_int_equal(metrics_add_counter(m, "spill_conn_total", "", "Connections accepted",
					     &conns), 0);
	assert_int_equal(metrics_add_counter(m, "spill_other_total", NULL, "NULL labels",
					     &conns), 0);
	char *s = render(m);
	assert_string_equal(s,
		"# HELP spill_pages_total Pages moved\n"
		"# TYPE spill_pages_total counter\n"
		"spill_pages_total{op=\"read\"} 5\n"
		"spill_pages_total{op=\"write\"} 7\n"
		"# HELP spill_conn_total Connections accepted\n"
		"# TYPE spill_conn_total counter\n"
		"spill_conn_total 0\n"
		"# HELP spill_other_total NULL labels\n"
		"# TYPE spill_other_total counter\n"
		"spill_other_total 0\n");
	assert_int_equal(check_exposition(s), 4);
	free(s);

	/* The registry reads the live value each time. */
	metrics_inc(&reads, 10);
	metrics_inc(&conns, UINT64_C(1) << 40);
	s = render(m);
	assert_non_null(strstr(s, "spill_pages_total{op=\"read\"} 15\n"));
	assert_non_null(strstr(s, "spill_conn_total 1099511627776\n"));
	free(s);
	atomic_store(&reads, UINT64_MAX);
	s = render(m);
	assert_non_null(strstr(s, "spill_pages_total{op=\"read\"} 18446744073709551615\n"));
	free(s);
	metrics_destroy(m);
}

static uint64_t gauge_deref(void *arg)
{
	return *(const uint64_t *)arg;
}

static void test_gauges(void **state)
{
	(void)state;
	struct metrics *m = metrics_create();
	uint64_t used = 4096, cap = UINT64_C(1) << 36;
	assert_int_equal(metrics_add_gauge(m, "spill_pool_bytes", "kind=\"used\",node=\"0\"",
					   "Pool bytes", gauge_deref, &used), 0);
	assert_int_equal(metrics_add_gauge(m, "spill_pool_bytes", "kind=\"capacity\",node=\"0\"",
					   "Pool bytes", gauge_deref, &cap), 0);
	char *s = render(m);
	assert_string_equal(s,
		"# HELP spill_pool_bytes Pool bytes\n"
		"# TYPE spill_pool_bytes gauge\n"
		"spill_pool_bytes{kind=\"used\",node=\"0\"} 4096\n"
		"spill_pool_bytes{kind=\"capacity\",node=\"0\"} 68719476736\n");
	assert_int_equal(check_exposition(s), 2);
	free(s);
	/* Read at render time, not at registration. */
	used = 8192;
	s = render(m);
	assert_non_null(strstr(s, "spill_pool_bytes{kind=\"used\",node=\"0\"} 8192\n"));
	free(s);
	metrics_destroy(m);
}

static void test_histogram_text(void **state)
{
	(void)state;
	struct metrics *m = metrics_create();
	static struct metrics_hist h, empty;
	memset(&h, 0, sizeof(h));
	memset(&empty, 0, sizeof(empty));
	assert_int_equal(metrics_add_hist(m, "spill_op_seconds", "op=\"read\"", "Latency", &h), 0);
	assert_int_equal(metrics_add_hist(m, "spill_idle_seconds", "", "Idle", &empty), 0);
	metrics_hist_observe(&h, 0);             /* le 5e-06 */
	metrics_hist_observe(&h, 5000);          /* 5 us: le 5e-06 */
	metrics_hist_observe(&h, 7000);          /* le 1e-05 */
	metrics_hist_observe(&h, 1000000);       /* 1 ms: le 0.001 */
	metrics_hist_observe(&h, 200000000);     /* 200 ms: +Inf */
	char *s = render(m);
	assert_string_equal(s,
		"# HELP spill_op_seconds Latency\n"
		"# TYPE spill_op_seconds histogram\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"5e-06\"} 2\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"1e-05\"} 3\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"2e-05\"} 3\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"5e-05\"} 3\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.0001\"} 3\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.0002\"} 3\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.0005\"} 3\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.001\"} 4\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.002\"} 4\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.005\"} 4\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.01\"} 4\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.05\"} 4\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"0.1\"} 4\n"
		"spill_op_seconds_bucket{op=\"read\",le=\"+Inf\"} 5\n"
		"spill_op_seconds_sum{op=\"read\"} 0.201012000\n"
		"spill_op_seconds_count{op=\"read\"} 5\n"
		"# HELP spill_idle_seconds Idle\n"
		"# TYPE spill_idle_seconds histogram\n"
		"spill_idle_seconds_bucket{le=\"5e-06\"} 0\n"
		"spill_idle_seconds_bucket{le=\"1e-05\"} 0\n"
		"spill_idle_seconds_bucket{le=\"2e-05\"} 0\n"
		"spill_idle_seconds_bucket{le=\"5e-05\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.0001\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.0002\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.0005\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.001\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.002\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.005\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.01\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.05\"} 0\n"
		"spill_idle_seconds_bucket{le=\"0.1\"} 0\n"
		"spill_idle_seconds_bucket{le=\"+Inf\"} 0\n"
		"spill_idle_seconds_sum 0.000000000\n"
		"spill_idle_seconds_count 0\n");
	assert_int_equal(check_exposition(s), 2 * (METRICS_HIST_BUCKETS + 2));
	free(s);
	metrics_destroy(m);
}

/*
 * Prometheus buckets are "less than or equal": an observation exactly on a
 * bound goes in that bucket, one nanosecond more goes in the next.
 */
static void test_histogram_buckets(void **state)
{
	(void)state;
	for (int b = 0; b < METRICS_HIST_BUCKETS - 1; b++) {
		static const int64_t deltas[] = { -1000, -1, 0, 1, 999, 1000 };
		for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
			uint64_t ns = (uint64_t)((int64_t)bounds_us[b] * 1000 + deltas[d]);
			struct metrics_hist h;
			memset(&h, 0, sizeof(h));
			metrics_hist_observe(&h, ns);
			/* The first bucket whose bound is >= the observation. */
			int want = METRICS_HIST_BUCKETS - 1;
			for (int i = 0; i < METRICS_HIST_BUCKETS - 1; i++)
				if (ns <= bounds_us[i] * 1000) {
					want = i;
					break;
				}
			for (int i = 0; i < METRICS_HIST_BUCKETS; i++) {
				uint64_t v = atomic_load(&h.bucket[i]);
				if (v != (uint64_t)(i == want))
					fail_msg("%llu ns: bucket %d (le %s) = %llu, want it in %s",
						 (unsigned long long)ns, i, bounds_le[i],
						 (unsigned long long)v, bounds_le[want]);
			}
			assert_true(atomic_load(&h.count) == 1);
			assert_true(atomic_load(&h.sum_ns) == ns);
		}
	}
	/* Extremes. */
	struct metrics_hist h;
	memset(&h, 0, sizeof(h));
	metrics_hist_observe(&h, 0);
	metrics_hist_observe(&h, UINT64_MAX);
	assert_true(atomic_load(&h.bucket[0]) == 1);
	assert_true(atomic_load(&h.bucket[METRICS_HIST_BUCKETS - 1]) == 1);

	/* Rendered: cumulative over all buckets. */
	struct metrics *m = metrics_create();
	static struct metrics_hist all;
	memset(&all, 0, sizeof(all));
	assert_int_equal(metrics_add_hist(m, "lat", NULL, "x", &all), 0);
	/* One observation per bucket, on the bound; two beyond the last. */
	for (int b = 0; b < METRICS_HIST_BUCKETS - 1; b++)
		metrics_hist_observe(&all, bounds_us[b] * 1000);
	metrics_hist_observe(&all, bounds_us[METRICS_HIST_BUCKETS - 2] * 1000 + 1);
	metrics_hist_observe(&all, UINT64_C(3600) * 1000000000);
	char *s = render(m);
	check_exposition(s);
	for (int i = 0; i < METRICS_HIST_BUCKETS - 1; i++)
		assert_true(bucket_value(s, "lat", i) == (uint64_t)i + 1);
	assert_true(bucket_value(s, "lat", METRICS_HIST_BUCKETS - 1) == METRICS_HIST_BUCKETS + 1);
	assert_non_null(strstr(s, "\nlat_count 15\n"));
	free(s);
	metrics_destroy(m);
}

struct observer {
	struct metrics_hist *h;
	int id;
};

#define OBS_THREADS 4
#define OBS_EACH 20000

static void *observe_many(void *arg)
{
	struct observer *o = arg;
	for (int i = 0; i < OBS_EACH; i++)
		metrics_hist_observe(o->h, (uint64_t)(i % 1000) * 1000 + (uint64_t)o->id);
	return NULL;
}

/* Updates are lock-free atomics: concurrent observers lose nothing. */
static void test_histogram_concurrent(void **state)
{
	(void)state;
	static struct metrics_hist h;
	memset(&h, 0, sizeof(h));
	pthread_t t[OBS_THREADS];
	struct observer o[OBS_THREADS];
	for (int i = 0; i < OBS_THREADS; i++) {
		o[i] = (struct observer){ &h, i };
		assert_int_equal(pthread_create(&t[i], NULL, observe_many, &o[i]), 0);
	}
	for (int i = 0; i < OBS_THREADS; i++)
		pthread_join(t[i], NULL);
	uint64_t total = 0, want_sum = 0;
	for (int i = 0; i < METRICS_HIST_BUCKETS; i++)
		total += atomic_load(&h.bucket[i]);
	for (int id = 0; id < OBS_THREADS; id++)
		for (int i = 0; i < OBS_EACH; i++)
			want_sum += (uint64_t)(i % 1000) * 1000 + (uint64_t)id;
	assert_true(total == OBS_THREADS * OBS_EACH);
	assert_true(atomic_load(&h.count) == OBS_THREADS * OBS_EACH);
	assert_true(atomic_load(&h.sum_ns) == want_sum);
}

/* Many series and long labels: the registry and the output buffer grow. */
static void test_many_series(void **state)
{
	(void)state;
	struct metrics *m = metrics_create();
	enum { N = 300 };
	static atomic_uint_fast64_t vals[N];
	static struct metrics_hist hists[8];
	memset(hists, 0, sizeof(hists));
	char labels[200];
	for (int i = 0; i < N; i++) {
		atomic_store(&vals[i], (uint64_t)i * 1000003);
		snprintf(labels, sizeof(labels),
			 "client=\"client-%03d-with-a-rather-long-name-for-growth\",idx=\"%d\"", i, i);
		/* Five names, 60 series each, registered consecutively. */
		char name[32];
		snprintf(name, sizeof(name), "spill_series_%d_total", i / 60);
		assert_int_equal(metrics_add_counter(m, name, labels, "Series", &vals[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		snprintf(labels, sizeof(labels), "op=\"op%d\"", i);
		for (int k = 0; k <= i; k++)
			metrics_hist_observe(&hists[i], (uint64_t)k * 777777);
		assert_int_equal(metrics_add_hist(m, "spill_lat_seconds", labels, "Lat", &hists[i]),
				 0);
	}
	char *s = render(m);
	assert_true(strlen(s) > 4096 * 4);
	assert_int_equal(check_exposition(s), N + 8 * (METRICS_HIST_BUCKETS + 2));
	for (int i = 0; i < N; i++) {
		char want[300];
		snprintf(want, sizeof(want),
			 "spill_series_%d_total{client=\"client-%03d-with-a-rather-long-name-for-"
			 "growth\",idx=\"%d\"} %llu\n",
			 i / 60, i, i, (unsigned long long)i * 1000003);
		if (!strstr(s, want))
			fail_msg("missing: %s", want);
	}
	for (int i = 0; i < 8; i++) {
		char want[100];
		snprintf(want, sizeof(want), "spill_lat_seconds_count{op=\"op%d\"} %d\n", i, i + 1);
		assert_non_null(strstr(s, want));
	}
	/* HELP/TYPE once per consecutive run of a name. */
	int helps = 0;
	for (const char *p = s; (p = strstr(p, "# HELP ")); p++)
		helps++;
	assert_int_equal(helps, 5 + 1);
	free(s);
	metrics_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_gauges),
		cmocka_unit_test(test_histogram_text),
		cmocka_unit_test(test_histogram_buckets),
		cmocka_unit_test(test_histogram_concurrent),
		cmocka_unit_test(test_many_series),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
