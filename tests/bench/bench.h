/* SPDX-License-Identifier: MIT */
/*
 * spillway-bench internals. Every function returns 0 (or a count) on success
 * and -errno on failure unless its comment says otherwise.
 */
#ifndef SPILLWAY_BENCH_H
#define SPILLWAY_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#define BENCH_PAGE     4096u
#define BENCH_BATCH    512u              /* pages in one 2 MiB batch */
#define BENCH_MAX_DEPTH 64

/* Human-readable progress: stdout, or stderr when stdout carries JSON. */
extern FILE *bench_info;

/* --- cpu.c: which CPU each side runs on ------------------------------------ */

struct placement {
	int client_cpu;   /* the bench's own thread; -1 unpinned */
	int server_cpu;   /* peer threads and spawned servers; -1 unpinned */
};

extern struct placement bench_place;

/* "split" (client CPU 0, servers CPU 1), "same" (all on CPU 0) or "none". */
int placement_parse(const char *mode, struct placement *p);
/* Pin the calling thread (cpu -1: leave it). */
int cpu_pin_self(int cpu);

/* --- stats.c: clock and latency samples ------------------------------------ */

uint64_t now_ns(void);

struct lat_rec {
	uint64_t *ns;
	size_t n, cap;
};

int lat_init(struct lat_rec *l, size_t cap);
void lat_add(struct lat_rec *l, uint64_t ns);
void lat_free(struct lat_rec *l);
/* Sorts the samples; p in [0, 100]. Returns microseconds, or -1 if empty. */
double lat_percentile_us(struct lat_rec *l, double p);

/* One measured case. */
struct result {
	int valid;            /* 0: skipped or not run */
	int depth;            /* requests in flight */
	uint64_t ops;
	uint64_t bytes_per_op;
	double seconds;
	double p50_us, p99_us; /* -1 when not measured per request */
};

double result_ops_per_s(const struct result *r);
double result_mb_per_s(const struct result *r);

/* --- run.c: the pipelined request harness ---------------------------------- */

/*
 * A driver keeps up to depth requests in flight. submit() starts request seq
 * in slot; complete() blocks until at least one request is done and returns
 * the slots of those done (in any order), or -errno. Latency is measured per
 * request, from just before submit() to the return of the complete() that
 * handed its slot back.
 */
struct driver {
	void *ctx;
	int (*submit)(void *ctx, int slot, uint64_t seq);
	int (*complete)(void *ctx, int *slots, int max);
};

struct run_plan {
	uint64_t ops;          /* measured requests */
	uint64_t warmup;       /* unmeasured requests run first */
	int depth;             /* 1..BENCH_MAX_DEPTH */
	double max_s;          /* stop submitting after this long (0: no cap) */
	uint64_t bytes_per_op;
};

int run_pipelined(const struct driver *d, const struct run_plan *p, struct result *out);

/* --- pattern.c: page contents that can be checked -------------------------- */

void pattern_fill(void *page, uint64_t key);
/* 0 if every byte is right, else the count of wrong 8-byte words. */
size_t pattern_check(const void *page, uint64_t key);
/* Cheap check against a known copy: three words of the page. 0 if equal. */
int sample_differs(const void *page, const void *want);

/* --- netio.c: a socket with a non-blocking send queue ---------------------- */

struct netio {
	int fd;
	uint8_t *tx, *rx;
	size_t tx_off, tx_len, tx_cap;
	size_t rx_off, rx_len, rx_cap;
};

int netio_init(struct netio *n, int fd, size_t tx_cap, size_t rx_cap);
void netio_free(struct netio *n); /* the caller closes fd */
/* Append to the send queue; it leaves at the next netio_fill. */
int netio_queue(struct netio *n, const struct iovec *iov, int cnt);
/* Wait for more received bytes, sending queued ones meanwhile. */
int netio_fill(struct netio *n);
static inline size_t netio_avail(const struct netio *n) { return n->rx_len - n->rx_off; }
static inline const uint8_t *netio_data(const struct netio *n) { return n->rx + n->rx_off; }
static inline void netio_consume(struct netio *n, size_t k) { n->rx_off += k; }

/* Loopback TCP helpers. */
int tcp_listen_loopback(int *port);
int tcp_connect_loopback(int port);
int free_tcp_port(void);

/* --- spawn.c: child processes ---------------------------------------------- */

struct proc {
	pid_t pid;
	int pidfd;
	char name[32];
};

/* Resolve a tool: next to this executable, else $env, else the bare name
 * (for PATH lookup). Always succeeds. */
void spawn_find_tool(const char *name, const char *env, char *out, size_t cap);
/* Start spillwayd on a free loopback port; waits for its ready line. */
int spawn_spillwayd(const char *capacity, const char *psk_file, struct proc *p, int *port);
/* The same with more options (NULL-terminated), e.g. { "--grace", "0", NULL }. */
int spawn_spillwayd_args(const char *capacity, const char *psk_file, const char *const *extra,
			 struct proc *p, int *port);
/* Start memcached on a free loopback port; waits until it accepts. */
int spawn_memcached(const char *path, struct proc *p, int *port);
/* Run a command to completion; returns its exit status (0..255) or -errno. */
int spawn_run(char *const argv[], int timeout_ms);
/* SIGTERM, bounded wait, then SIGKILL. *status gets the exit code (or 128+signal). */
int proc_stop(struct proc *p, int *status);
/* VmRSS in KiB, or -errno. */
long proc_rss_kib(pid_t pid);
/* $MEMCACHED if set (NULL if not executable), else memcached on PATH, else NULL. */
const char *memcached_path(void);
/* Kill every child still running (exit paths, signal handlers). */
void spawn_kill_all(void);

/* --- bench_raw.c: physical limits ------------------------------------------ */

/* Request of req_bytes, 4 KiB reply, through an in-process echo thread. */
int raw_pingpong(const struct run_plan *p, size_t req_bytes, struct result *out);
/* One-way stream of 2 MiB writes into an in-process sink thread. */
int raw_stream(uint64_t batches, double max_s, struct result *out);
/* The echo thread on its own: *fd is a connected socket; each req_bytes
 * written to it is answered with one 4 KiB page. Close with raw_echo_close. */
struct raw_echo;
int raw_echo_open(size_t req_bytes, struct raw_echo **out, int *fd);
int raw_echo_close(struct raw_echo *e);

/* --- bench_spillway.c: spillwayd through the client library --------------- */

struct sw_bench;

/* Connect, register, allocate nextents extents and pre-write them all. */
int sw_open(const char *url, unsigned nextents, struct sw_bench **out);
void sw_close(struct sw_bench *b);
/* op SPILL_OP_READ or _WRITE; npages 1 or BENCH_BATCH. */
int sw_measure(struct sw_bench *b, uint16_t op, uint16_t npages, const struct run_plan *p,
	       struct result *out);

/* --- bench_memcached.c ---------------------------------------------------- */

struct mc_bench;

/* Connect to memcached on port, set nkeys 4 KiB values. */
int mc_open(int port, uint64_t nkeys, struct mc_bench **out);
void mc_close(struct mc_bench *m);
const char *mc_version(const struct mc_bench *m);
int mc_measure(struct mc_bench *m, int is_set, const struct run_plan *p, struct result *out);

/* --- report.c: the `server` subcommand's table and JSON ------------------- */

enum bench_case {
	RAW_ECHO_1, RAW_ECHO_32,       /* 4 KiB request, 4 KiB reply */
	RAW_SMALL_1, RAW_SMALL_32,     /* 16-byte request, 4 KiB reply (the probe's shape) */
	RAW_STREAM,
	SW_WRITE_1, SW_WRITE_32, SW_READ_1, SW_READ_32,
	SW_BATCH_WRITE, SW_BATCH_READ,
	MC_SET_1, MC_SET_32, MC_GET_1, MC_GET_32,
	BENCH_NCASES
};

struct server_report {
	struct result r[BENCH_NCASES];
	uint64_t ops, batch_ops;
	double seconds_cap;
	uint64_t pool_bytes;
	const char *placement;             /* --pin mode */
	long rss_ready_kib, rss_after_kib; /* spillwayd VmRSS; -1 unknown */
	char mc_version[64];               /* "" when memcached did not run */
};

void report_table(FILE *out, const struct server_report *rep);
void report_json(FILE *out, const struct server_report *rep);

/* --- subcommands ------------------------------------------------------------ */

int cmd_server(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_pager(int argc, char **argv);
/* bench_arbiter.c: the cluster arbiter's policy on a simulated cluster. */
int bench_arbiter_main(int argc, char **argv);
/* Undo what `pager` set up on the host (child, swap file, cgroup);
 * async-signal-safe, for the fatal-signal and exit paths. */
void pager_cleanup(void);

#endif
