/* SPDX-License-Identifier: MIT */
/*
 * `spillway-bench pager` internals: the workloads, the three kinds of memory
 * they run on (local, libspillway, kernel swap in a memory cgroup), the limit
 * probe, and the report. Functions return 0 on success and -errno on failure
 * unless their comment says otherwise.
 */
#ifndef SPILLWAY_BENCH_PAGER_H
#define SPILLWAY_BENCH_PAGER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "spillway.h"

/* --- rng: fast, incompressible, reproducible ------------------------------ */

static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* splitmix64: one add and a mix per word, every output distinct. */
static inline uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

/* Uniform in [0, n). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}

/* --- pager_work.c: page workloads over a region ---------------------------- */

/*
 * Every page holds random words; word 0 is a tag naming the page and its
 * write generation, the last word its complement. Readers check both, so a
 * zero page, a page served from the wrong place or a stale copy shows up as
 * an error, never as speed. gen[] is local bookkeeping (1 byte per page).
 */
struct region {
	uint8_t *base;
	uint64_t npages;
	uint8_t *gen;
	uint64_t rng;
	uint64_t sink;  /* sums of what was read, so the reads are not elided */
};

enum work_kind { WORK_RANDOM, WORK_SEQ, WORK_ZIPF, WORK_SORT, WORK_N };

struct work_limits {
	double seconds;   /* measured time per workload */
	double warmup_s;  /* unmeasured time first (random, zipf) */
	double sort_cap_s;/* the sort gives up after this long */
};

struct work_result {
	int valid;
	int timed_out;    /* the sort hit its cap: no figure */
	uint64_t ops;     /* page accesses, or records sorted */
	uint64_t bytes;   /* bytes read or written by those ops */
	double seconds;
	uint64_t errors;  /* pages or records that failed their check */
};

const char *work_name(int kind);
double work_ops_per_s(const struct work_result *w);
double work_mb_per_s(const struct work_result *w);

/* gen is allocated here (local memory); base is the caller's. */
int region_init(struct region *r, void *base, uint64_t bytes, uint64_t seed);
void region_fini(struct region *r);
/* Write every page once, in order: the state every workload starts from. */
void region_fill(struct region *r);
/* Uniformly random pages, half read (all 4 KiB, checked), half rewritten. */
void work_random(struct region *r, const struct work_limits *l, struct work_result *out);
/* Whole passes in address order, every page read and checked; at least one. */
void work_seq(struct region *r, const struct work_limits *l, struct work_result *out);
/* Key-value lookups, key ranks Zipf(0.99), a value = one 4 KiB page. */
void work_zipf(struct region *r, const struct work_limits *l, struct work_result *out);

/* --- zipf.c ----------------------------------------------------------------- */

struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half_pow;
};

/* Gray et al.'s generator (as YCSB): rank 0 most popular. O(n) set-up. */
void zipf_init(struct zipf *z, uint64_t n, double theta);
uint64_t zipf_next(const struct zipf *z, uint64_t *rng);

/* --- pager_sort.c: the real algorithm --------------------------------------- */

/* Records of 16 bytes: a random 64-bit key and a payload derived from it. */
#define RECS_BYTES 16

struct recs_sum {
	uint64_t key_sum, key_xor;  /* of the keys written */
};

void recs_fill(void *base, uint64_t n, uint64_t seed, struct recs_sum *sum);
/* In place, by key (introsort). -ETIMEDOUT if deadline_ns (0: none) passed. */
int recs_sort(void *base, uint64_t n, uint64_t deadline_ns);
/* Every record: in key order, payload matching its key, and the same keys
 * as were written. Returns the count of bad records (+1 if keys changed). */
uint64_t recs_verify(const void *base, uint64_t n, const struct recs_sum *sum);
/* Fill, sort and verify bytes of records; ops = records, seconds = the sort
 * alone, which gives up after l->sort_cap_s. */
void work_sort(void *base, uint64_t bytes, uint64_t seed, const struct work_limits *l,
	       struct work_result *out);

/* --- kswap.c: the kernel's own swap, as the baseline ----------------------- */

struct kswap_info {
	int ready;
	char swapfile[128];     /* ours, "" if we use swap that was already on */
	uint64_t swap_bytes;
	char cgroup[192];       /* our memory cgroup directory */
	char note[512];         /* what was found or done, for the report */
	int zswap;              /* 1 on, 0 off, -1 unknown */
};

/* Parent: a swap file of swap_bytes (added at top priority, also when other
 * swap is on) and a child memory cgroup. On failure note says why. */
int kswap_setup(uint64_t swap_bytes, struct kswap_info *k);
/* Child: join the cgroup and cap it at what it uses now + budget. */
int kswap_enter(const struct kswap_info *k, uint64_t budget);
/* The cgroup's OOM kills so far (memory.oom_control oom_kill). */
uint64_t kswap_oom_kills(void);
/* /proc/vmstat pswpin and pswpout (pages, system-wide). */
void kswap_counters(uint64_t *in, uint64_t *out);
/* Remove the cgroup, swapoff and delete the file. Idempotent and
 * async-signal-safe (used from the fatal-signal path). */
void kswap_teardown(void);

/* --- child.c: each case in its own process --------------------------------- */

/*
 * Run fn(arg, out) in a forked child; out (out_bytes, shared with the child)
 * then holds what it reported, fn's own result included. Returns 0 when the
 * child exited, -ETIMEDOUT or -ECHILD when it hung or died (*why says how).
 */
int child_run(int (*fn)(void *arg, void *out), void *arg, void *out, size_t out_bytes,
	      int timeout_ms, char *why, size_t why_cap);
/* Kill and reap the running child, if any (async-signal-safe). */
void child_kill_current(void);

/* --- pager_case.c: one configuration, all its workloads -------------------- */

enum backend { BK_LOCAL, BK_PAGER, BK_KSWAP };

struct case_spec {
	int backend;
	uint64_t bytes;          /* region */
	uint64_t budget;         /* pager local budget / cgroup limit; 0 local */
	unsigned works;          /* bit (1 << WORK_x) */
	struct work_limits lim;
	uint64_t seed;
	/* pager only */
	const char *url;
	int fault_mode;          /* enum spill_fault_mode */
	int no_prefetch;
	const struct kswap_info *ks;  /* kswap only */
};

struct case_out {
	int rc;
	char err[384];
	struct work_result w[WORK_N];
	struct spill_stats st[WORK_N];  /* pager: deltas over each workload */
	uint64_t swpin[WORK_N], swpout[WORK_N]; /* kswap: vmstat deltas */
	struct spill_stats fill_st;     /* pager: over the initial fill */
	double fill_s;
	int fault_mode;                 /* pager: mode the library used */
};

/* Runs in a child (via child_run). */
int case_run(void *spec, void *out);
/* Counter-wise b - a (gauges such as resident_bytes are taken from b). */
void spill_stats_delta(const struct spill_stats *a, const struct spill_stats *b,
		       struct spill_stats *d);
/* Open a pager context for one case (servers = url), or NULL with err set. */
spill_ctx *case_open_pager(const char *url, uint64_t budget, int fault_mode, int no_prefetch,
			   const char *name, char *err, size_t cap);

/* --- pager_fault.c: latency of one remote fault ----------------------------- */

struct fault_spec {
	const char *url;
	int fault_mode;
	uint64_t bytes;          /* region; budget is a quarter of it */
	unsigned samples;
	double max_s;
};

struct fault_out {
	int rc;
	char err[384];
	unsigned n;
	double p50_us, p99_us;
	uint64_t remote_reads;   /* during the measured touches */
	uint64_t faults;
	int fault_mode;
};

/* Runs in a child (via child_run). */
int fault_run(void *spec, void *out);

/* --- uffd_probe.c: the limit a remote fault can reach ----------------------- */

struct probe_out {
	double fault_rtt_p50_us, fault_rtt_p99_us; /* in-thread fault + round trip */
	double fault_p50_us;                        /* in-thread fault, local copy */
	double rtt_p50_us;                          /* the round trip alone */
	unsigned n;
};

/* userfaultfd in SIGBUS mode; each fault's handler asks an echo thread over
 * loopback TCP for the page (16-byte request, 4 KiB reply, the shape of
 * limits/tcp_pingpong.c) and installs it with UFFDIO_COPY. */
int uffd_probe(unsigned samples, struct probe_out *out);

/* --- pager_report.c --------------------------------------------------------- */

enum { CFG_LOCAL, CFG_P25, CFG_P50, CFG_P75, CFG_K25, CFG_K50, CFG_K75, CFG_N };

struct pager_report {
	uint64_t bytes, sort_bytes;
	double seconds;
	int quick;
	const char *placement;           /* --pin mode */
	struct case_out cfg[CFG_N][2];   /* [0]: random/seq/zipf region, [1]: sort */
	int ran[CFG_N][2];               /* 1 ran, 0 skipped */
	unsigned oom_kills[CFG_N][2];    /* kernel swap: attempts the OOM killer ended */
	char skipped[CFG_N][512];        /* why a configuration did not run */
	struct case_out seq_noprefetch;  /* 50%, prefetch off */
	int ran_noprefetch;
	struct case_out mode_random[2];  /* 50% random: [0] INTHREAD, [1] HANDLER */
	int ran_mode[2];
	struct fault_out fault[2];       /* [0] INTHREAD, [1] HANDLER: median round */
	int ran_fault[2];
	int default_mode;                /* what SPILL_FAULT_DEFAULT resolved to */
	struct probe_out probe;          /* median round */
	double raw_stream_mb_per_s;      /* median round, NAN if not measured */
	struct kswap_info ks;
	double total_s;
};

void pager_report_table(FILE *out, const struct pager_report *rep);
void pager_report_json(FILE *out, const struct pager_report *rep);

#endif
