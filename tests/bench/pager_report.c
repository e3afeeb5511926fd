/* SPDX-License-Identifier: MIT */
/* The `pager` subcommand's output: tables and ratios, or one JSON object. */
#include <math.h>
#include <unistd.h>

#include "bench.h"
#include "bench_pager.h"

static const struct {
	const char *key, *label;
} cfgs[CFG_N] = {
	[CFG_LOCAL] = { "local", "local" },
	[CFG_P25] = { "pager25", "pager 25%" },
	[CFG_P50] = { "pager50", "pager 50%" },
	[CFG_P75] = { "pager75", "pager 75%" },
	[CFG_K25] = { "kswap25", "kswap 25%" },
	[CFG_K50] = { "kswap50", "kswap 50%" },
	[CFG_K75] = { "kswap75", "kswap 75%" },
};

static const char *const mode_key[3] = { "default", "inthread", "handler" };

enum { AT_MOST, AT_LEAST };

struct ratio {
	const char *key;
	double value; /* NAN: not measured */
	double target;
	int kind;
};

enum { NRATIOS = 3 };

static const struct work_result *wr(const struct pager_report *rep, int cfg, int kind)
{
	int sort = kind == WORK_SORT;
	if (!rep->ran[cfg][sort] || !rep->cfg[cfg][sort].w[kind].valid)
		return NULL;
	return &rep->cfg[cfg][sort].w[kind];
}

static double quotient(double a, double b)
{
	return a > 0 && b > 0 ? a / b : NAN;
}

/* ops/s, NAN when not run or timed out. */
static double ops(const struct pager_report *rep, int cfg, int kind)
{
	const struct work_result *w = wr(rep, cfg, kind);
	return w && !w->timed_out ? work_ops_per_s(w) : NAN;
}

static double mbs(const struct pager_report *rep, int cfg, int kind)
{
	const struct work_result *w = wr(rep, cfg, kind);
	return w && !w->timed_out ? work_mb_per_s(w) : NAN;
}

/* A case stopped at its cap ran slower than ops/seconds: an upper bound. */
static double ops_below(const struct pager_report *rep, int cfg, int kind)
{
	const struct work_result *w = wr(rep, cfg, kind);
	return w && w->timed_out && w->seconds > 0 ? (double)w->ops / w->seconds : NAN;
}

/*
 * a over b, where either may have been stopped at the cap: *bound is 0 for
 * an exact ratio, 1 when the true one is higher, -1 when lower.
 */
static double ratio_bounded(const struct pager_report *rep, int ca, int cb, int kind, int *bound)
{
	double a = ops(rep, ca, kind), b = ops(rep, cb, kind);
	double a_lt = ops_below(rep, ca, kind), b_lt = ops_below(rep, cb, kind);
	*bound = 0;
	if (!isnan(a) && !isnan(b_lt)) {
		*bound = 1;
		return quotient(a, b_lt);
	}
	if (!isnan(a_lt) && !isnan(b)) {
		*bound = -1;
		return quotient(a_lt, b);
	}
	return quotient(a, b);
}

/* The first write of the page-workload region, which pushes most of it out. */
static double fill_mbs(const struct pager_report *rep, int cfg)
{
	const struct case_out *o = &rep->cfg[cfg][0];
	return rep->ran[cfg][0] && o->fill_s > 0 ? (double)rep->bytes / o->fill_s / 1e6 : NAN;
}

static void cell(FILE *out, double v, int bound, int decimals)
{
	char text[32];
	if (isnan(v))
		snprintf(text, sizeof(text), "-");
	else
		snprintf(text, sizeof(text), "%s%.*f", bound > 0 ? ">" : bound < 0 ? "<" : "",
			 decimals, v);
	fprintf(out, " %10s", text);
}

static double fault_p50(const struct pager_report *rep, int mode)
{
	int m = mode == SPILL_FAULT_HANDLER ? 1 : 0; /* DEFAULT is in-thread */
	return rep->ran_fault[m] ? rep->fault[m].p50_us : NAN;
}

static void compute(const struct pager_report *rep, struct ratio r[NRATIOS])
{
	int bound;
	r[0] = (struct ratio){ "random50_vs_kernel_swap",
			       ratio_bounded(rep, CFG_P50, CFG_K50, WORK_RANDOM, &bound), 2, AT_LEAST };
	r[1] = (struct ratio){ "seq_bw_fraction",
			       quotient(mbs(rep, CFG_P50, WORK_SEQ), rep->raw_stream_mb_per_s), 0.6,
			       AT_LEAST };
	r[2] = (struct ratio){ "fault_p50_vs_limit",
			       quotient(fault_p50(rep, rep->default_mode), rep->probe.fault_rtt_p50_us),
			       1.3, AT_MOST };
}

static int met(const struct ratio *r)
{
	if (isnan(r->value))
		return -1;
	return r->kind == AT_MOST ? r->value <= r->target : r->value >= r->target;
}

static void num(FILE *out, double v, const char *fmt)
{
	if (isnan(v))
		fprintf(out, " %10s", "-");
	else
		fprintf(out, fmt, v);
}

static double seq_mbs(const struct case_out *o, int ran)
{
	return ran && o->w[WORK_SEQ].valid ? work_mb_per_s(&o->w[WORK_SEQ]) : NAN;
}

static void table_throughput(FILE *out, const struct pager_report *rep)
{
	static const char *const unit[WORK_N] = { "ops/s", "MB/s", "ops/s", "rec/s" };
	fprintf(out, "\n%-16s", "throughput");
	for (int c = 0; c < CFG_N; c++)
		fprintf(out, " %10s", cfgs[c].label);
	fputc('\n', out);
	for (int k = 0; k < WORK_N; k++) {
		char label[32];
		snprintf(label, sizeof(label), "%s %s", work_name(k), unit[k]);
		fprintf(out, "  %-14s", label);
		for (int c = 0; c < CFG_N; c++) {
			double below = ops_below(rep, c, k);
			if (!isnan(below))
				cell(out, below, -1, 0);
			else
				cell(out, k == WORK_SEQ ? mbs(rep, c, k) : ops(rep, c, k), 0, 0);
		}
		fputc('\n', out);
		fprintf(out, "  %-14s", "  vs local");
		for (int c = 0; c < CFG_N; c++) {
			int bound;
			double v = ratio_bounded(rep, c, CFG_LOCAL, k, &bound);
			cell(out, v, bound, 3);
		}
		fputc('\n', out);
	}
	fprintf(out, "  %-14s", "fill MB/s");
	for (int c = 0; c < CFG_N; c++)
		cell(out, fill_mbs(rep, c), 0, 0);
	fprintf(out, "\n  (fill: the first write of the random/seq/zipf region, in address order)\n");
	fprintf(out, "\npager over kernel swap, same budget\n  %-14s %10s %10s %10s\n", "", "25%",
		"50%", "75%");
	for (int k = 0; k < WORK_N; k++) {
		fprintf(out, "  %-14s", work_name(k));
		for (int b = 0; b < 3; b++) {
			int bound;
			double v = ratio_bounded(rep, CFG_P25 + b, CFG_K25 + b, k, &bound);
			cell(out, v, bound, 2);
		}
		fputc('\n', out);
	}
	int capped = 0;
	for (int c = 0; c < CFG_N; c++)
		capped |= !isnan(ops_below(rep, c, WORK_SORT));
	if (capped)
		fputs("  (< and >: a sort stopped at its time cap, so the true figure lies beyond)\n",
		      out);
	for (int c = 0; c < CFG_N; c++) {
		if (rep->skipped[c][0])
			fprintf(out, "  %s skipped: %s\n", cfgs[c].label, rep->skipped[c]);
		for (int sort = 0; sort < 2; sort++)
			if (rep->oom_kills[c][sort])
				fprintf(out, "  %s %s: the kernel OOM-killed %u attempt(s) in the memory "
					"cgroup (swap had room); figure from the next attempt\n",
					cfgs[c].label, sort ? "sort" : "random/seq/zipf",
					rep->oom_kills[c][sort]);
	}
}

static void table_stats(FILE *out, const struct pager_report *rep)
{
	fprintf(out, "\nlibspillway counters per workload (spill_stats deltas; pages)\n"
		"  %-18s %9s %9s %9s %9s %9s %9s %9s %8s\n", "case", "faults", "rd remote",
		"wr remote", "evicted", "clean drop", "prefetch", "pf hits", "2M groups");
	for (int c = CFG_P25; c <= CFG_P75; c++)
		for (int k = -1; k < WORK_N; k++) {
			int sort = k == WORK_SORT;
			const struct case_out *o = &rep->cfg[c][sort];
			if (!rep->ran[c][sort] || (k >= 0 && !o->w[k].valid))
				continue;
			const struct spill_stats *s = k < 0 ? &o->fill_st : &o->st[k];
			char label[32];
			snprintf(label, sizeof(label), "%s %s", cfgs[c].label,
				 k < 0 ? "fill" : work_name(k));
			fprintf(out, "  %-18s %9llu %9llu %9llu %9llu %9llu %9llu %9llu %8llu\n", label,
				(unsigned long long)s->faults, (unsigned long long)s->remote_reads,
				(unsigned long long)s->remote_writes, (unsigned long long)s->evictions,
				(unsigned long long)s->clean_drops, (unsigned long long)s->prefetched,
				(unsigned long long)s->prefetch_hits,
				(unsigned long long)s->group_fetches);
		}
	fprintf(out, "kernel swap counters per workload (/proc/vmstat deltas; pages)\n"
		"  %-18s %9s %9s\n", "case", "swap-ins", "swap-outs");
	for (int c = CFG_K25; c <= CFG_K75; c++)
		for (int k = 0; k < WORK_N; k++) {
			int sort = k == WORK_SORT;
			if (!rep->ran[c][sort] || !rep->cfg[c][sort].w[k].valid)
				continue;
			char label[32];
			snprintf(label, sizeof(label), "%s %s", cfgs[c].label, work_name(k));
			fprintf(out, "  %-18s %9llu %9llu\n", label,
				(unsigned long long)rep->cfg[c][sort].swpin[k],
				(unsigned long long)rep->cfg[c][sort].swpout[k]);
		}
}

static void table_choices(FILE *out, const struct pager_report *rep)
{
	const struct case_out *on = &rep->cfg[CFG_P50][0], *off = &rep->seq_noprefetch;
	double mb_on = seq_mbs(on, rep->ran[CFG_P50][0]), mb_off = seq_mbs(off, rep->ran_noprefetch);
	fprintf(out, "\nprefetch, seq scan at 50%%: on %.0f MB/s (%llu prefetched, %llu hits, "
		"%llu faults), off %.0f MB/s (%llu faults): on/off %.2f\n",
		mb_on, (unsigned long long)on->st[WORK_SEQ].prefetched,
		(unsigned long long)on->st[WORK_SEQ].prefetch_hits,
		(unsigned long long)on->st[WORK_SEQ].faults, mb_off,
		(unsigned long long)off->st[WORK_SEQ].faults, quotient(mb_on, mb_off));
	fprintf(out, "fault service mode (the library's default is %s):\n",
		mode_key[rep->default_mode >= 0 && rep->default_mode <= 2 ? rep->default_mode : 0]);
	static const char *const label[2] = { "in-thread (SIGBUS)", "handler thread" };
	for (int m = 0; m < 2; m++) {
		const struct fault_out *f = &rep->fault[m];
		fprintf(out, "  %-20s remote fault p50", label[m]);
		num(out, rep->ran_fault[m] ? f->p50_us : NAN, " %6.1f");
		fprintf(out, " us, p99");
		num(out, rep->ran_fault[m] ? f->p99_us : NAN, " %6.1f");
		fprintf(out, " us (%u touches, %llu remote reads); random 50%%",
			rep->ran_fault[m] ? f->n : 0,
			(unsigned long long)(rep->ran_fault[m] ? f->remote_reads : 0));
		num(out, rep->ran_mode[m] ? work_ops_per_s(&rep->mode_random[m].w[WORK_RANDOM]) : NAN,
		    " %8.0f");
		fprintf(out, " ops/s\n");
	}
}

void pager_report_table(FILE *out, const struct pager_report *rep)
{
	fprintf(out, "\nworking set %llu MiB, sort %llu MiB, %.1f s per case%s, --pin %s\n",
		(unsigned long long)(rep->bytes >> 20), (unsigned long long)(rep->sort_bytes >> 20),
		rep->seconds, rep->quick ? " (--quick)" : "", rep->placement);
	table_throughput(out, rep);
	table_stats(out, rep);
	fprintf(out, "\nlimits measured in this run: in-thread uffd fault + loopback round trip "
		"p50 %.1f us (p99 %.1f; fault alone %.1f, round trip alone %.1f);\n"
		"  raw loopback stream %.0f MB/s\n",
		rep->probe.fault_rtt_p50_us, rep->probe.fault_rtt_p99_us, rep->probe.fault_p50_us,
		rep->probe.rtt_p50_us, rep->raw_stream_mb_per_s);
	table_choices(out, rep);
	if (rep->ks.note[0])
		fprintf(out, "kernel swap: %s; zswap %s\n", rep->ks.note,
			rep->ks.zswap == 1 ? "ON" : rep->ks.zswap == 0 ? "off" : "unknown");

	struct ratio r[NRATIOS];
	compute(rep, r);
	static const char *const verdict[] = { "not measured", "missed", "met" };
	fprintf(out, "\n  %-26s %10s %8s\n", "ratio", "value", "target");
	for (int i = 0; i < NRATIOS; i++) {
		char value[32] = "-", target[16];
		if (!isnan(r[i].value))
			snprintf(value, sizeof(value), "%.2f", r[i].value);
		snprintf(target, sizeof(target), "%s %.1f", r[i].kind == AT_MOST ? "<=" : ">=",
			 r[i].target);
		fprintf(out, "  %-26s %10s %8s  %s\n", r[i].key, value, target, verdict[met(&r[i]) + 1]);
	}
}

static void json_num(FILE *out, double v, int decimals)
{
	if (isnan(v) || isinf(v))
		fputs("null", out);
	else
		fprintf(out, "%.*f", decimals, v);
}

static void json_str(FILE *out, const char *text)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

static void json_stats(FILE *out, const struct spill_stats *s)
{
	fprintf(out, "{\"faults\":%llu,\"wp_faults\":%llu,\"remote_reads\":%llu,"
		"\"remote_read_bytes\":%llu,\"remote_writes\":%llu,\"remote_write_bytes\":%llu,"
		"\"evictions\":%llu,\"clean_drops\":%llu,\"zero_fills\":%llu,\"prefetched\":%llu,"
		"\"prefetch_hits\":%llu,\"group_fetches\":%llu,\"resident_bytes\":%llu,"
		"\"remote_bytes\":%llu,\"metadata_bytes\":%llu}",
		(unsigned long long)s->faults, (unsigned long long)s->wp_faults,
		(unsigned long long)s->remote_reads, (unsigned long long)s->remote_read_bytes,
		(unsigned long long)s->remote_writes, (unsigned long long)s->remote_write_bytes,
		(unsigned long long)s->evictions, (unsigned long long)s->clean_drops,
		(unsigned long long)s->zero_fills, (unsigned long long)s->prefetched,
		(unsigned long long)s->prefetch_hits, (unsigned long long)s->group_fetches,
		(unsigned long long)s->resident_bytes, (unsigned long long)s->remote_bytes,
		(unsigned long long)s->metadata_bytes);
}

static void json_work(FILE *out, const struct pager_report *rep, int c, int k)
{
	const struct work_result *w = wr(rep, c, k);
	if (!w) {
		fputs("null", out);
		return;
	}
	const struct case_out *o = &rep->cfg[c][k == WORK_SORT];
	fprintf(out, "{\"ops\":%llu,\"seconds\":%.4f,\"timed_out\":%s,\"errors\":%llu,\"ops_per_s\":",
		(unsigned long long)w->ops, w->seconds, w->timed_out ? "true" : "false",
		(unsigned long long)w->errors);
	json_num(out, ops(rep, c, k), 0);
	if (w->timed_out) {
		fputs(",\"ops_per_s_below\":", out);
		json_num(out, ops_below(rep, c, k), 0);
	}
	fputs(",\"mb_per_s\":", out);
	json_num(out, mbs(rep, c, k), 1);
	fputs(",\"vs_local\":", out);
	json_num(out, quotient(ops(rep, c, k), ops(rep, CFG_LOCAL, k)), 4);
	if (c >= CFG_P25 && c <= CFG_P75) {
		int bound;
		double v = ratio_bounded(rep, c, c + CFG_K25 - CFG_P25, k, &bound);
		fputs(",\"vs_kernel_swap\":", out);
		json_num(out, bound ? NAN : v, 3);
		if (bound)
			fprintf(out, ",\"vs_kernel_swap_%s\":", bound > 0 ? "above" : "below");
		if (bound)
			json_num(out, v, 3);
		fputs(",\"stats\":", out);
		json_stats(out, &o->st[k]);
	} else if (c >= CFG_K25) {
		fprintf(out, ",\"swap_ins\":%llu,\"swap_outs\":%llu,\"oom_kills\":%u",
			(unsigned long long)o->swpin[k], (unsigned long long)o->swpout[k],
			rep->oom_kills[c][k == WORK_SORT]);
	}
	fputc('}', out);
}

static void json_fault(FILE *out, const struct pager_report *rep, int m)
{
	const struct fault_out *f = &rep->fault[m];
	fputs("{\"fault_p50_us\":", out);
	json_num(out, rep->ran_fault[m] ? f->p50_us : NAN, 2);
	fputs(",\"fault_p99_us\":", out);
	json_num(out, rep->ran_fault[m] ? f->p99_us : NAN, 2);
	fprintf(out, ",\"touches\":%u,\"remote_reads\":%llu,\"random50_ops_per_s\":",
		rep->ran_fault[m] ? f->n : 0,
		(unsigned long long)(rep->ran_fault[m] ? f->remote_reads : 0));
	json_num(out, rep->ran_mode[m] ? work_ops_per_s(&rep->mode_random[m].w[WORK_RANDOM]) : NAN,
		 0);
	fputc('}', out);
}

void pager_report_json(FILE *out, const struct pager_report *rep)
{
	fprintf(out, "{\"cpus\":%ld,\"placement\":\"%s\",\"quick\":%s,\"bytes\":%llu,"
		"\"sort_bytes\":%llu,\"seconds\":%.2f,\"total_seconds\":%.1f,\"workloads\":{",
		sysconf(_SC_NPROCESSORS_ONLN), rep->placement, rep->quick ? "true" : "false",
		(unsigned long long)rep->bytes, (unsigned long long)rep->sort_bytes, rep->seconds,
		rep->total_s);
	for (int k = 0; k < WORK_N; k++) {
		fprintf(out, "%s\"%s\":{", k ? "," : "", work_name(k));
		for (int c = 0; c < CFG_N; c++) {
			fprintf(out, "%s\"%s\":", c ? "," : "", cfgs[c].key);
			json_work(out, rep, c, k);
		}
		fputc('}', out);
	}
	fputs("},\"fill_mb_per_s\":{", out);
	for (int c = 0; c < CFG_N; c++) {
		fprintf(out, "%s\"%s\":", c ? "," : "", cfgs[c].key);
		json_num(out, fill_mbs(rep, c), 1);
	}
	fputs("},\"fill_stats\":{", out);
	for (int c = CFG_P25; c <= CFG_P75; c++) {
		fprintf(out, "%s\"%s\":", c > CFG_P25 ? "," : "", cfgs[c].key);
		if (rep->ran[c][0])
			json_stats(out, &rep->cfg[c][0].fill_st);
		else
			fputs("null", out);
	}
	fputs("},\"limits\":{\"fault_rtt_p50_us\":", out);
	json_num(out, rep->probe.n ? rep->probe.fault_rtt_p50_us : NAN, 2);
	fputs(",\"fault_rtt_p99_us\":", out);
	json_num(out, rep->probe.n ? rep->probe.fault_rtt_p99_us : NAN, 2);
	fputs(",\"uffd_fault_p50_us\":", out);
	json_num(out, rep->probe.n ? rep->probe.fault_p50_us : NAN, 2);
	fputs(",\"rtt_p50_us\":", out);
	json_num(out, rep->probe.n ? rep->probe.rtt_p50_us : NAN, 2);
	fputs(",\"raw_stream_mb_per_s\":", out);
	json_num(out, rep->raw_stream_mb_per_s, 0);
	fputs("},\"prefetch\":{\"seq50_on_mb_per_s\":", out);
	double on = seq_mbs(&rep->cfg[CFG_P50][0], rep->ran[CFG_P50][0]);
	double off = seq_mbs(&rep->seq_noprefetch, rep->ran_noprefetch);
	json_num(out, on, 1);
	fputs(",\"seq50_off_mb_per_s\":", out);
	json_num(out, off, 1);
	fputs(",\"on_over_off\":", out);
	json_num(out, quotient(on, off), 3);
	fputs(",\"off_stats\":", out);
	if (rep->ran_noprefetch)
		json_stats(out, &rep->seq_noprefetch.st[WORK_SEQ]);
	else
		fputs("null", out);
	fprintf(out, "},\"fault_modes\":{\"default\":\"%s\",\"inthread\":",
		mode_key[rep->default_mode >= 0 && rep->default_mode <= 2 ? rep->default_mode : 0]);
	json_fault(out, rep, 0);
	fputs(",\"handler\":", out);
	json_fault(out, rep, 1);
	fputs("},\"pager_fault_p50_us\":", out);
	json_num(out, fault_p50(rep, rep->default_mode), 2);
	fputs(",\"kernel_swap\":{\"note\":", out);
	json_str(out, rep->ks.note);
	fprintf(out, ",\"zswap\":%s}",
		rep->ks.zswap == 1 ? "true" : rep->ks.zswap == 0 ? "false" : "null");

	struct ratio r[NRATIOS];
	compute(rep, r);
	for (int i = 0; i < NRATIOS; i++) {
		fprintf(out, ",\"%s\":", r[i].key);
		json_num(out, r[i].value, 3);
	}
	fputs(",\"targets\":{", out);
	static const char *const json_met[] = { "null", "false", "true" };
	for (int i = 0; i < NRATIOS; i++) {
		fprintf(out, "%s\"%s\":{\"target\":\"%s %.1f\",\"value\":", i ? "," : "", r[i].key,
			r[i].kind == AT_MOST ? "<=" : ">=", r[i].target);
		json_num(out, r[i].value, 3);
		fprintf(out, ",\"met\":%s}", json_met[met(&r[i]) + 1]);
	}
	fputs("}}\n", out);
}
