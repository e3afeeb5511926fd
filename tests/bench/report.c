/* SPDX-License-Identifier: MIT */
/* The `server` subcommand's output: a table and ratios, or one JSON object. */
#include <math.h>
#include <unistd.h>

#include "bench.h"

static const struct {
	const char *key, *label;
} cases[BENCH_NCASES] = {
	[RAW_ECHO_1] = { "raw_echo_4k_1", "raw TCP echo 4K" },
	[RAW_ECHO_32] = { "raw_echo_4k_32", "raw TCP echo 4K" },
	[RAW_SMALL_1] = { "raw_16b_to_4k_1", "raw TCP 16B->4K" },
	[RAW_SMALL_32] = { "raw_16b_to_4k_32", "raw TCP 16B->4K" },
	[RAW_STREAM] = { "raw_stream_2m", "raw TCP stream 2M" },
	[SW_WRITE_1] = { "spillway_write_4k_1", "spillway WRITE 4K" },
	[SW_WRITE_32] = { "spillway_write_4k_32", "spillway WRITE 4K" },
	[SW_READ_1] = { "spillway_read_4k_1", "spillway READ 4K" },
	[SW_READ_32] = { "spillway_read_4k_32", "spillway READ 4K" },
	[SW_BATCH_WRITE] = { "spillway_write_2m", "spillway WRITE 2M" },
	[SW_BATCH_READ] = { "spillway_read_2m", "spillway READ 2M" },
	[MC_SET_1] = { "memcached_set_4k_1", "memcached set 4K" },
	[MC_SET_32] = { "memcached_set_4k_32", "memcached set 4K" },
	[MC_GET_1] = { "memcached_get_4k_1", "memcached get 4K" },
	[MC_GET_32] = { "memcached_get_4k_32", "memcached get 4K" },
};

enum { AT_MOST, AT_LEAST, NO_TARGET };

struct ratio {
	const char *key;
	double value;  /* NAN: not measured */
	double target;
	int kind;
};

enum { NRATIOS = 7 };

static double quotient(double a, double b)
{
	return a > 0 && b > 0 ? a / b : NAN;
}

static double p50(const struct server_report *rep, int c)
{
	return rep->r[c].valid ? rep->r[c].p50_us : NAN;
}

static double ops(const struct server_report *rep, int c)
{
	return rep->r[c].valid ? result_ops_per_s(&rep->r[c]) : NAN;
}

static double mbs(const struct server_report *rep, int c)
{
	return rep->r[c].valid ? result_mb_per_s(&rep->r[c]) : NAN;
}

/* Spillwayd's resident memory beyond its (pre-faulted) pool, per GiB of pool. */
static double overhead_mib_per_gib(const struct server_report *rep)
{
	if (rep->rss_after_kib < 0 || !rep->pool_bytes)
		return NAN;
	double pool_mib = (double)rep->pool_bytes / (1 << 20);
	return ((double)rep->rss_after_kib / 1024 - pool_mib) / (pool_mib / 1024);
}

static void compute(const struct server_report *rep, struct ratio r[NRATIOS])
{
	r[0] = (struct ratio){ "latency_vs_raw", quotient(p50(rep, SW_READ_1), p50(rep, RAW_ECHO_1)),
			       1.3, AT_MOST };
	r[1] = (struct ratio){ "latency_vs_raw_small_request",
			       quotient(p50(rep, SW_READ_1), p50(rep, RAW_SMALL_1)), 0, NO_TARGET };
	r[2] = (struct ratio){ "batch_bw_fraction",
			       quotient(mbs(rep, SW_BATCH_READ), mbs(rep, RAW_STREAM)), 0.7, AT_LEAST };
	r[3] = (struct ratio){ "batch_write_bw_fraction",
			       quotient(mbs(rep, SW_BATCH_WRITE), mbs(rep, RAW_STREAM)), 0, NO_TARGET };
	r[4] = (struct ratio){ "ops_vs_memcached", quotient(ops(rep, SW_READ_32), ops(rep, MC_GET_32)),
			       1.5, AT_LEAST };
	r[5] = (struct ratio){ "write_ops_vs_memcached",
			       quotient(ops(rep, SW_WRITE_32), ops(rep, MC_SET_32)), 0, NO_TARGET };
	r[6] = (struct ratio){ "server_overhead_mib_per_gib", overhead_mib_per_gib(rep), 0, NO_TARGET };
}

/* 1 met, 0 missed, -1 no target or not measured. */
static int met(const struct ratio *r)
{
	if (r->kind == NO_TARGET || isnan(r->value))
		return -1;
	return r->kind == AT_MOST ? r->value <= r->target : r->value >= r->target;
}

static const char *verdict(const struct ratio *r)
{
	static const char *const text[] = { "not measured", "missed", "met" };
	return r->kind == NO_TARGET ? "" : text[met(r) + 1];
}

static void table_row(FILE *out, const struct server_report *rep, int c)
{
	const struct result *r = &rep->r[c];
	if (!r->valid) {
		fprintf(out, "  %-20s %9s  skipped\n", cases[c].label, "");
		return;
	}
	fprintf(out, "  %-20s %9d %9llu %10.0f %9.1f", cases[c].label, r->depth,
		(unsigned long long)r->ops, result_ops_per_s(r), result_mb_per_s(r));
	if (r->p50_us >= 0)
		fprintf(out, " %9.1f %9.1f\n", r->p50_us, r->p99_us);
	else
		fprintf(out, " %9s %9s\n", "-", "-");
}

static void table_section(FILE *out, const struct server_report *rep, const char *title,
			  int first, int last)
{
	fprintf(out, "%s\n", title);
	for (int c = first; c <= last; c++)
		table_row(out, rep, c);
}

void report_table(FILE *out, const struct server_report *rep)
{
	char mc[128];
	if (rep->mc_version[0])
		snprintf(mc, sizeof(mc), "memcached %s (text protocol, one connection)",
			 rep->mc_version);
	else
		snprintf(mc, sizeof(mc), "memcached (skipped)");
	fprintf(out, "\n  %-20s %9s %9s %10s %9s %9s %9s\n", "case", "in flight", "ops", "ops/s",
		"MB/s", "p50 us", "p99 us");
	table_section(out, rep, "physical limits (loopback TCP, in-process peer thread)",
		      RAW_ECHO_1, RAW_STREAM);
	table_section(out, rep, "spillwayd (core client library, one connection)",
		      SW_WRITE_1, SW_BATCH_READ);
	table_section(out, rep, mc, MC_SET_1, MC_GET_32);

	if (rep->rss_ready_kib >= 0)
		fprintf(out, "\nspillwayd RSS: %.1f MiB when up, %.1f MiB after the workload "
			"(pool %llu MiB, pre-faulted)\n",
			(double)rep->rss_ready_kib / 1024, (double)rep->rss_after_kib / 1024,
			(unsigned long long)(rep->pool_bytes >> 20));

	struct ratio r[NRATIOS];
	compute(rep, r);
	fprintf(out, "\n  %-30s %10s %8s\n", "ratio", "value", "target");
	for (int i = 0; i < NRATIOS; i++) {
		char value[32] = "-", target[16] = "";
		if (!isnan(r[i].value))
			snprintf(value, sizeof(value), "%.2f", r[i].value);
		if (r[i].kind == NO_TARGET) {
			fprintf(out, "  %-30s %10s\n", r[i].key, value);
			continue;
		}
		snprintf(target, sizeof(target), "%s %.1f", r[i].kind == AT_MOST ? "<=" : ">=",
			 r[i].target);
		fprintf(out, "  %-30s %10s %8s  %s\n", r[i].key, value, target, verdict(&r[i]));
	}
}

static void json_num(FILE *out, double v, int decimals)
{
	if (isnan(v) || isinf(v))
		fputs("null", out);
	else
		fprintf(out, "%.*f", decimals, v);
}

static void json_case(FILE *out, const struct result *r)
{
	if (!r->valid) {
		fputs("null", out);
		return;
	}
	fprintf(out, "{\"in_flight\":%d,\"ops\":%llu,\"bytes_per_op\":%llu,\"seconds\":%.4f,"
		"\"ops_per_s\":%.0f,\"mb_per_s\":%.1f,\"p50_us\":",
		r->depth, (unsigned long long)r->ops, (unsigned long long)r->bytes_per_op,
		r->seconds, result_ops_per_s(r), result_mb_per_s(r));
	json_num(out, r->p50_us >= 0 ? r->p50_us : NAN, 2);
	fputs(",\"p99_us\":", out);
	json_num(out, r->p99_us >= 0 ? r->p99_us : NAN, 2);
	fputc('}', out);
}

void report_json(FILE *out, const struct server_report *rep)
{
	fprintf(out, "{\"cpus\":%ld,\"placement\":\"%s\",\"ops\":%llu,\"batch_ops\":%llu,"
		"\"seconds_cap\":%.1f,\"pool_bytes\":%llu,\"cases\":{",
		sysconf(_SC_NPROCESSORS_ONLN), rep->placement, (unsigned long long)rep->ops,
		(unsigned long long)rep->batch_ops, rep->seconds_cap,
		(unsigned long long)rep->pool_bytes);
	for (int c = 0; c < BENCH_NCASES; c++) {
		fprintf(out, "%s\"%s\":", c ? "," : "", cases[c].key);
		json_case(out, &rep->r[c]);
	}
	fputs("},\"memcached_version\":", out);
	if (rep->mc_version[0])
		fprintf(out, "\"%s\"", rep->mc_version);
	else
		fputs("null", out);
	fputs(",\"server_rss_ready_mib\":", out);
	json_num(out, rep->rss_ready_kib >= 0 ? (double)rep->rss_ready_kib / 1024 : NAN, 1);
	fputs(",\"server_rss_after_mib\":", out);
	json_num(out, rep->rss_after_kib >= 0 ? (double)rep->rss_after_kib / 1024 : NAN, 1);

	struct ratio r[NRATIOS];
	compute(rep, r);
	for (int i = 0; i < NRATIOS; i++) {
		fprintf(out, ",\"%s\":", r[i].key);
		json_num(out, r[i].value, 3);
	}
	fputs(",\"targets\":{", out);
	int first = 1;
	for (int i = 0; i < NRATIOS; i++) {
		if (r[i].kind == NO_TARGET)
			continue;
		fprintf(out, "%s\"%s\":{\"target\":\"%s %.1f\",\"value\":", first ? "" : ",",
			r[i].key, r[i].kind == AT_MOST ? "<=" : ">=", r[i].target);
		json_num(out, r[i].value, 3);
		static const char *const json_met[] = { "null", "false", "true" };
		fprintf(out, ",\"met\":%s}", json_met[met(&r[i]) + 1]);
		first = 0;
	}
	fputs("}}\n", out);
}
