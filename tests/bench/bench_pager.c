/* SPDX-License-Identifier: MIT */
/*
 * `spillway-bench pager`: the same workloads on plain local memory, on
 * libspillway regions with a local budget of 25/50/75% of the working set
 * (against a spillwayd started here on loopback), and on memory the kernel
 * swaps to a local swap file under a memory cgroup with the same budget;
 * beside them the limit probe (an in-thread userfaultfd fault plus one
 * loopback round trip) and the raw loopback streaming limit. Every case runs
 * in its own child process. Exit 0 whatever the figures; 1 if anything broke
 * (a case failed or read back wrong data, a server would not start).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "config.h"
#include "bench_pager.h"

#define FAULT_SAMPLES_QUICK 1000
#define OOM_RETRIES 2
#define ROUNDS      3   /* limit probe and remote-fault latency, alternating */

struct pager_cfg {
	int json, quick;
	const char *pin;
	uint64_t bytes, sort_bytes;
	double seconds;
	struct work_limits lim;
	unsigned fault_samples;
	uint64_t fault_bytes;
};

struct pager_run {
	struct pager_cfg cfg;
	struct pager_report rep;
	char url[64];
	int failed;
};

static int usage(FILE *out, int rc)
{
	fprintf(out,
		"usage: spillway-bench pager [--json] [--size BYTES] [--seconds S] [--quick] [--pin MODE]\n"
		"  --size BYTES   working set of the random, seq and zipf workloads (default 512M;\n"
		"                 the sort uses twice this: 1G)\n"
		"  --seconds S    measured time of each random, seq and zipf case (default 2)\n"
		"  --quick        64M working set (sort 128M), 0.4 s cases: under a minute\n"
		"  --pin MODE     same: the bench, its cases, spillwayd and peer threads all on\n"
		"                CPU 0 (default); split: spillwayd and peer threads on CPU 1;\n"
		"                none: let the scheduler choose\n"
		"  --json         one JSON object on stdout (progress goes to stderr)\n"
		"Runs as root: the kernel-swap baseline adds a swap file under /var/tmp and a\n"
		"memory cgroup, both removed at the end.\n");
	return rc;
}

static int parse_args(int argc, char **argv, struct pager_cfg *cfg)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "size", required_argument, NULL, 'z' },
		{ "seconds", required_argument, NULL, 's' },
		{ "quick", no_argument, NULL, 'q' },
		{ "pin", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 0;
	double seconds = 0;
	int c;
	char *end;
	optind = 1;
	*cfg = (struct pager_cfg){ .pin = "same" };
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			cfg->json = 1;
			break;
		case 'z':
			if (config_parse_size(optarg, &size) || size < (4u << 20)) {
				fprintf(stderr, "spillway-bench pager: bad --size '%s' (at least 4M)\n",
					optarg);
				return 2;
			}
			break;
		case 's':
			seconds = strtod(optarg, &end);
			if (*end || !(seconds > 0))
				return usage(stderr, 2);
			break;
		case 'q':
			cfg->quick = 1;
			break;
		case 'p':
			cfg->pin = optarg;
			break;
		case 'h':
			return usage(stdout, 1);
		default:
			return usage(stderr, 2);
		}
	}
	if (optind < argc || placement_parse(cfg->pin, &bench_place))
		return usage(stderr, 2);
	cfg->bytes = size ? size : cfg->quick ? 64u << 20 : 512u << 20;
	cfg->bytes = (cfg->bytes + (2u << 20) - 1) & ~(uint64_t)((2u << 20) - 1);
	cfg->sort_bytes = 2 * cfg->bytes;
	cfg->seconds = seconds ? seconds : cfg->quick ? 0.4 : 2.0;
	cfg->lim = (struct work_limits){ .seconds = cfg->seconds, .warmup_s = cfg->seconds / 4,
					 .sort_cap_s = cfg->quick ? 8 : 30 };
	cfg->fault_samples = cfg->quick ? FAULT_SAMPLES_QUICK : 4000;
	cfg->fault_bytes = cfg->quick ? 32u << 20 : 64u << 20;
	return 0;
}

static uint64_t t_start;

/* Progress, stamped with the time since the run began. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	fprintf(bench_info, "[%5.1f s] ", (double)(now_ns() - t_start) / 1e9);
	va_start(ap, fmt);
	vfprintf(bench_info, fmt, ap);
	va_end(ap);
	fflush(bench_info);
}

/* A case that broke is reported and fails the run; figures still print. */
static void check_case(struct pager_run *pr, const char *what, int crc, const char *why,
		       const struct case_out *o)
{
	if (crc || o->rc) {
		fprintf(stderr, "spillway-bench pager: %s: %s\n", what,
			crc ? why : o->err[0] ? o->err : strerror(-o->rc));
		pr->failed = 1;
		return;
	}
	for (int k = 0; k < WORK_N; k++)
		if (o->w[k].valid && o->w[k].errors) {
			fprintf(stderr, "spillway-bench pager: %s: %s: %llu pages or records read "
				"back wrong\n", what, work_name(k), (unsigned long long)o->w[k].errors);
			pr->failed = 1;
		}
}

static int case_timeout_ms(const struct pager_cfg *cfg, unsigned works)
{
	double s = 120 + 10 * cfg->seconds;
	if (works & (1u << WORK_SORT))
		s += 3 * cfg->lim.sort_cap_s;
	return (int)(s * 1000);
}

/*
 * A memory cgroup this tight sometimes OOM-kills the workload even though
 * swap has room (the kernel gives up on reclaim while swap-outs are still in
 * flight). That is a fact about the baseline, so it is counted and reported,
 * and the case is tried again rather than failing the run.
 */
static void run_case(struct pager_run *pr, const char *what, struct case_spec *spec,
		     struct case_out *o, int *ran, unsigned *oom_kills)
{
	char why[160];
	int crc;
	say("%s\n", what);
	for (unsigned attempt = 0;; attempt++) {
		uint64_t kills = spec->backend == BK_KSWAP ? kswap_oom_kills() : 0;
		crc = child_run(case_run, spec, o, sizeof(*o), case_timeout_ms(&pr->cfg, spec->works),
				why, sizeof(why));
		int oom = crc == -ECHILD && spec->backend == BK_KSWAP && kswap_oom_kills() != kills;
		*oom_kills += (unsigned)oom;
		if (!oom || attempt == OOM_RETRIES)
			break;
		say("%s: OOM-killed in its memory cgroup; again\n", what);
	}
	check_case(pr, what, crc, why, o);
	*ran = !crc && !o->rc;
}

static const struct {
	const char *name;
	int backend;
	unsigned pct;
} configs[CFG_N] = {
	[CFG_LOCAL] = { "local", BK_LOCAL, 100 },
	[CFG_P25] = { "pager 25%", BK_PAGER, 25 },
	[CFG_P50] = { "pager 50%", BK_PAGER, 50 },
	[CFG_P75] = { "pager 75%", BK_PAGER, 75 },
	[CFG_K25] = { "kernel swap 25%", BK_KSWAP, 25 },
	[CFG_K50] = { "kernel swap 50%", BK_KSWAP, 50 },
	[CFG_K75] = { "kernel swap 75%", BK_KSWAP, 75 },
};

static struct case_spec spec_for(struct pager_run *pr, int cfg, int sort)
{
	uint64_t bytes = sort ? pr->cfg.sort_bytes : pr->cfg.bytes;
	struct case_spec s = {
		.backend = configs[cfg].backend, .bytes = bytes,
		.budget = configs[cfg].backend == BK_LOCAL ? 0 : bytes / 100 * configs[cfg].pct,
		.works = sort ? 1u << WORK_SORT
			      : (1u << WORK_RANDOM) | (1u << WORK_SEQ) | (1u << WORK_ZIPF),
		.lim = pr->cfg.lim, .seed = 0x5eed0000u + (uint64_t)sort, .url = pr->url,
		.ks = &pr->rep.ks,
	};
	s.budget &= ~(uint64_t)(BENCH_PAGE - 1);
	return s;
}

static void run_config(struct pager_run *pr, int cfg)
{
	char what[64];
	for (int sort = 0; sort < 2; sort++) {
		struct case_spec s = spec_for(pr, cfg, sort);
		snprintf(what, sizeof(what), "%s: %s", configs[cfg].name,
			 sort ? "sort" : "random, seq, zipf");
		run_case(pr, what, &s, &pr->rep.cfg[cfg][sort], &pr->rep.ran[cfg][sort],
			 &pr->rep.oom_kills[cfg][sort]);
	}
}

static int by_p50(const void *a, const void *b)
{
	double x = ((const struct fault_out *)a)->p50_us, y = ((const struct fault_out *)b)->p50_us;
	return (x > y) - (x < y);
}

static int by_probe(const void *a, const void *b)
{
	double x = ((const struct probe_out *)a)->fault_rtt_p50_us;
	double y = ((const struct probe_out *)b)->fault_rtt_p50_us;
	return (x > y) - (x < y);
}

static int by_mb(const void *a, const void *b)
{
	double x = result_mb_per_s(a), y = result_mb_per_s(b);
	return (x > y) - (x < y);
}

/*
 * The limit probe and the pager's single-fault latency in both fault modes,
 * alternating for a few rounds; each reports its median round, so drift on a
 * shared machine hits both sides of the ratio alike.
 */
static void fault_rounds(struct pager_run *pr)
{
	struct probe_out probe[ROUNDS];
	struct fault_out f[2][ROUNDS];
	unsigned np = 0, nf[2] = { 0, 0 };
	static const int modes[2] = { SPILL_FAULT_INTHREAD, SPILL_FAULT_HANDLER };
	static const char *const mname[2] = { "in-thread", "handler" };
	for (unsigned r = 0; r < ROUNDS; r++) {
		say("limit probe: uffd fault + round trip, round %u\n", r + 1);
		int rc = uffd_probe(pr->cfg.fault_samples, &probe[np]);
		if (rc) {
			fprintf(stderr, "spillway-bench pager: limit probe: %s\n", strerror(-rc));
			pr->failed = 1;
		} else {
			np++;
		}
		for (int m = 0; m < 2; m++) {
			struct fault_spec fs = { .url = pr->url, .fault_mode = modes[m],
						 .bytes = pr->cfg.fault_bytes,
						 .samples = pr->cfg.fault_samples, .max_s = 10 };
			char why[160], what[64];
			snprintf(what, sizeof(what), "pager remote fault (%s)", mname[m]);
			say("%s, round %u\n", what, r + 1);
			struct fault_out *o = &f[m][nf[m]];
			int crc = child_run(fault_run, &fs, o, sizeof(*o), 120000, why, sizeof(why));
			if (crc || o->rc) {
				fprintf(stderr, "spillway-bench pager: %s: %s\n", what,
					crc ? why : o->err[0] ? o->err : strerror(-o->rc));
				pr->failed = 1;
			} else {
				nf[m]++;
			}
		}
	}
	if (np) {
		qsort(probe, np, sizeof(probe[0]), by_probe);
		pr->rep.probe = probe[np / 2];
	}
	for (int m = 0; m < 2; m++)
		if (nf[m]) {
			qsort(f[m], nf[m], sizeof(f[m][0]), by_p50);
			pr->rep.fault[m] = f[m][nf[m] / 2];
			pr->rep.ran_fault[m] = 1;
		}
}

static void stream_round(struct pager_run *pr, struct result *rounds, unsigned *n)
{
	say("raw TCP stream 2M (limit)\n");
	int rc = raw_stream(pr->cfg.quick ? 64 : 512, 5.0, &rounds[*n]);
	if (rc) {
		fprintf(stderr, "spillway-bench pager: raw stream: %s\n", strerror(-rc));
		pr->failed = 1;
		return;
	}
	(*n)++;
}

static void pager_configs(struct pager_run *pr, struct result *streams, unsigned *ns)
{
	run_config(pr, CFG_P25);
	stream_round(pr, streams, ns);
	run_config(pr, CFG_P50);
	/* Prefetch off, right beside its prefetch-on twin. */
	struct case_spec s = spec_for(pr, CFG_P50, 0);
	s.works = 1u << WORK_SEQ;
	s.no_prefetch = 1;
	unsigned none = 0;
	run_case(pr, "pager 50%: seq, prefetch off", &s, &pr->rep.seq_noprefetch,
		 &pr->rep.ran_noprefetch, &none);
	run_config(pr, CFG_P75);
	static const int modes[2] = { SPILL_FAULT_INTHREAD, SPILL_FAULT_HANDLER };
	static const char *const what[2] = { "pager 50%: random, in-thread faults",
					     "pager 50%: random, handler thread" };
	for (int m = 0; m < 2; m++) {
		s = spec_for(pr, CFG_P50, 0);
		s.works = 1u << WORK_RANDOM;
		s.fault_mode = modes[m];
		run_case(pr, what[m], &s, &pr->rep.mode_random[m], &pr->rep.ran_mode[m], &none);
	}
	if (pr->rep.ran[CFG_P50][0])
		pr->rep.default_mode = pr->rep.cfg[CFG_P50][0].fault_mode;
}

static void kswap_configs(struct pager_run *pr)
{
	/* Room for the largest region whatever the budget, plus slack. */
	int rc = kswap_setup(pr->cfg.sort_bytes + (256u << 20), &pr->rep.ks);
	fprintf(bench_info, "kernel swap: %s%s\n", rc ? "SKIPPED: " : "", pr->rep.ks.note);
	if (pr->rep.ks.zswap == 1)
		fprintf(bench_info, "kernel swap: note zswap is on; pages are incompressible, so it "
				    "should reject them\n");
	if (rc) {
		for (int c = CFG_K25; c <= CFG_K75; c++)
			snprintf(pr->rep.skipped[c], sizeof(pr->rep.skipped[c]), "%s", pr->rep.ks.note);
		return;
	}
	for (int c = CFG_K25; c <= CFG_K75; c++)
		run_config(pr, c);
	kswap_teardown();
}

static int start_server(struct pager_run *pr, struct proc *p)
{
	/* Two of the largest regions: the previous child's extents may still be
	 * on their way back to the pool when the next child allocates. */
	char capacity[32];
	snprintf(capacity, sizeof(capacity), "%lluM",
		 (unsigned long long)((2 * pr->cfg.sort_bytes + (64u << 20)) >> 20));
	static const char *const extra[] = { "--grace", "0", NULL };
	int port, rc = spawn_spillwayd_args(capacity, NULL, extra, p, &port);
	if (rc) {
		fprintf(stderr, "spillway-bench pager: cannot start spillwayd: %s\n", strerror(-rc));
		return rc;
	}
	snprintf(pr->url, sizeof(pr->url), "tcp://127.0.0.1:%d", port);
	fprintf(bench_info, "spillwayd: pid %d on %s, pool %s\n", (int)p->pid, pr->url, capacity);
	return 0;
}

static void announce(const struct pager_cfg *cfg)
{
	fprintf(bench_info,
		"spillway-bench pager: working set %llu MiB (random, seq, zipf), sort %llu MiB;\n"
		"  %.1f s per case (+%.1f s warm-up for random and zipf), sort capped at %.0f s;\n"
		"  local budgets 25/50/75%% for libspillway and for the kernel's swap (memory cgroup);\n"
		"  placement --pin %s\n",
		(unsigned long long)(cfg->bytes >> 20), (unsigned long long)(cfg->sort_bytes >> 20),
		cfg->seconds, cfg->lim.warmup_s, cfg->lim.sort_cap_s, cfg->pin);
}

void pager_cleanup(void)
{
	child_kill_current();
	kswap_teardown();
}

int cmd_pager(int argc, char **argv)
{
	struct pager_run *pr = calloc(1, sizeof(*pr));
	if (!pr)
		return 1;
	int rc = parse_args(argc, argv, &pr->cfg);
	if (rc) {
		free(pr);
		return rc == 1 ? 0 : rc;
	}
	bench_info = pr->cfg.json ? stderr : stdout;
	/* Children inherit this thread's placement; spillwayd and the peer
	 * threads take bench_place.server_cpu. */
	cpu_pin_self(bench_place.client_cpu);
	struct pager_report *rep = &pr->rep;
	*rep = (struct pager_report){ .bytes = pr->cfg.bytes, .sort_bytes = pr->cfg.sort_bytes,
				      .seconds = pr->cfg.seconds, .quick = pr->cfg.quick,
				      .raw_stream_mb_per_s = NAN, .placement = pr->cfg.pin };
	announce(&pr->cfg);
	uint64_t t0 = t_start = now_ns();
	struct proc srv = { 0 };
	struct result streams[3];
	unsigned ns = 0;
	int srv_rc = start_server(pr, &srv);
	if (srv_rc) {
		pr->failed = 1;
		for (int c = CFG_P25; c <= CFG_P75; c++)
			snprintf(rep->skipped[c], sizeof(rep->skipped[c]), "spillwayd did not start");
	} else {
		fault_rounds(pr);
	}
	stream_round(pr, streams, &ns);
	run_config(pr, CFG_LOCAL);
	if (!srv_rc)
		pager_configs(pr, streams, &ns);
	stream_round(pr, streams, &ns);
	kswap_configs(pr);
	if (srv.pid > 0) {
		int status = -1;
		proc_stop(&srv, &status);
		if (status != 0) {
			fprintf(stderr, "spillway-bench pager: spillwayd exited with status %d after "
				"SIGTERM\n", status);
			pr->failed = 1;
		}
	}
	if (ns) {
		qsort(streams, ns, sizeof(streams[0]), by_mb);
		rep->raw_stream_mb_per_s = result_mb_per_s(&streams[ns / 2]);
	}
	rep->total_s = (double)(now_ns() - t0) / 1e9;
	fprintf(bench_info, "all cases done in %.1f s\n", rep->total_s);
	if (pr->cfg.json)
		pager_report_json(stdout, rep);
	else
		pager_report_table(stdout, rep);
	rc = pr->failed;
	free(pr);
	return rc;
}
