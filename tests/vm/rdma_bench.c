/* SPDX-License-Identifier: MIT */
/*
 * The client side of the rdma_bench scenario (tests/vm/scenarios/rdma_bench.sh):
 * the same measurements over one URL, printed as `bench KEY=VALUE` lines the
 * scenario turns into ratios (rdma:// against tcp://, and against perftest on
 * the same rxe device). Not a test: it fails only when data does not verify.
 *
 *   rdma_bench URL
 *
 *   op_read_4k_us     one synchronous 4 KiB client_read, mean over 2000
 *                     (ib_read_lat -s 4096 is its floor)
 *   op_read_2m_MBps   synchronous 2 MiB client_reads (one RDMA READ each)
 *   op_write_2m_MBps  synchronous 2 MiB client_writes
 *   pager_fault_us    libspillway, one thread: mean time per remote fault,
 *                     random reads over a region 8x its 16 MiB budget
 *   pager_mixed_ops   libspillway, 4 threads, random reads and writes:
 *                     page operations per second
 * MBps is 2^20 bytes per second, as perftest prints it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "spillway.h"

#define PAGE        4096u
#define EXTENT_PAGE 512u
#define BUDGET      (16u << 20)
#define THREADS     4

static void die(const char *what)
{
	fprintf(stderr, "rdma_bench: FAIL: %s\n", what);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Every page carries its number and a generation in its first word. */
static uint64_t stamp(size_t page, uint32_t gen)
{
	return (uint64_t)page << 32 | gen;
}

/* --- the client library directly ------------------------------------------ */

/* One identity per transport and part, so runs over both URLs can share a
 * server: "rdma-bench-ops-rdma", "rdma-bench-pager-tcp", ... */
static const char *identity(const char *part, const char *url)
{
	static char name[64];
	snprintf(name, sizeof(name), "rdma-bench-%s-%.*s", part, (int)strcspn(url, ":"), url);
	return name;
}

static void bench_ops(const char *url)
{
	char why[512];
	struct client_opts o = { .name = identity("ops", url), .timeout_ms = 30000 };
	struct client *reg, *c;
	if (client_connect(url, &o, &reg, why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		die("connect");
	}
	/* As libspillway does: the registering connection allocates and a
	 * joined one moves the data. */
	struct client_extent e;
	if (client_alloc_extents(reg, 1, -1, &e))
		die("alloc");
	o.token = client_token(reg);
	if (client_connect(url, &o, &c, why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		die("connect with the token");
	}
	uint8_t *buf = aligned_alloc(PAGE, (size_t)EXTENT_PAGE * PAGE);
	uint8_t *back = aligned_alloc(PAGE, (size_t)EXTENT_PAGE * PAGE);
	if (!buf || !back)
		die("out of memory");
	for (size_t p = 0; p < EXTENT_PAGE; p++)
		*(uint64_t *)(buf + p * PAGE) = stamp(p, 1);

	enum { WRITES_2M = 10, READS_2M = 10, READS_4K = 2000 };
	double t0 = now_s();
	for (int i = 0; i < WRITES_2M; i++)
		if (client_write(c, e.id, 0, EXTENT_PAGE, buf))
			die("2 MiB write");
	double w2m = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i < READS_2M; i++)
		if (client_read(c, e.id, 0, EXTENT_PAGE, back, NULL))
			die("2 MiB read");
	double r2m = now_s() - t0;
	if (memcmp(buf, back, (size_t)EXTENT_PAGE * PAGE))
		die("2 MiB read-back differs");
	uint64_t x = 0x9e3779b97f4a7c15ull;
	t0 = now_s();
	for (int i = 0; i < READS_4K; i++) {
		size_t p = xorshift(&x) % EXTENT_PAGE;
		if (client_read(c, e.id, (uint32_t)p, 1, back, NULL))
			die("4 KiB read");
		if (*(uint64_t *)back != stamp(p, 1))
			die("4 KiB read-back differs");
	}
	double r4k = now_s() - t0;
	double mib = (double)EXTENT_PAGE * PAGE / (1 << 20);
	printf("bench op_read_4k_us=%.1f\n", r4k / READS_4K * 1e6);
	printf("bench op_read_2m_MBps=%.1f\n", mib * READS_2M / r2m);
	printf("bench op_write_2m_MBps=%.1f\n", mib * WRITES_2M / w2m);
	client_free_extents(reg, &e.id, 1);
	client_close(c);
	client_close(reg);
	free(buf);
	free(back);
}

/* --- the pager ------------------------------------------------------------ */

struct mixed {
	uint8_t *region;
	size_t pages;
	unsigned ops;
	pthread_mutex_t *locks; /* per 64 pages */
	uint32_t *gen;
	int bad;
};

static void *mixed_worker(void *arg)
{
	struct mixed *m = arg;
	uint64_t x = (uint64_t)(uintptr_t)&x | 1;
	for (unsigned n = 0; n < m->ops; n++) {
		size_t p = xorshift(&x) % m->pages;
		pthread_mutex_lock(&m->locks[p / 64]);
		uint64_t *w = (uint64_t *)(m->region + p * PAGE);
		if (*w != stamp(p, m->gen[p]))
			__atomic_store_n(&m->bad, 1, __ATOMIC_RELAXED);
		if (x & 2)
			*w = stamp(p, ++m->gen[p]);
		pthread_mutex_unlock(&m->locks[p / 64]);
	}
	return NULL;
}

static void bench_pager(const char *url)
{
	struct spill_config cfg = { .local_budget = BUDGET, .name = identity("pager", url),
				    .nservers = 1 };
	cfg.servers[0] = url;
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx) {
		fprintf(stderr, "spill_open: %s\n", spill_strerror(errno));
		die("spill_open");
	}
	struct mixed m = { .pages = (size_t)BUDGET * 8 / PAGE };
	m.region = spill_alloc(ctx, m.pages * PAGE);
	m.gen = calloc(m.pages, sizeof(*m.gen));
	m.locks = calloc(m.pages / 64 + 1, sizeof(*m.locks));
	if (!m.region || !m.gen || !m.locks)
		die("spill_alloc");
	for (size_t l = 0; l < m.pages / 64 + 1; l++)
		pthread_mutex_init(&m.locks[l], NULL);
	for (size_t p = 0; p < m.pages; p++) {
		m.gen[p] = 1;
		*(uint64_t *)(m.region + p * PAGE) = stamp(p, 1);
	}

	/* One thread, random reads: nearly every touch is a remote fault. */
	struct spill_stats a, b;
	spill_stats(ctx, &a);
	uint64_t x = 12345;
	double t0 = now_s();
	for (size_t n = 0; n < m.pages; n++) {
		size_t p = xorshift(&x) % m.pages;
		if (*(volatile uint64_t *)(m.region + p * PAGE) != stamp(p, 1))
			die("pager read-back differs");
	}
	double dt = now_s() - t0;
	spill_stats(ctx, &b);
	uint64_t faults = b.faults - a.faults;
	if (!faults)
		die("no remote faults: the budget held everything");
	printf("bench pager_fault_us=%.1f\n", dt / (double)faults * 1e6);

	m.ops = (unsigned)(m.pages * 2 / THREADS);
	pthread_t t[THREADS];
	t0 = now_s();
	for (int k = 0; k < THREADS; k++)
		pthread_create(&t[k], NULL, mixed_worker, &m);
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	dt = now_s() - t0;
	if (m.bad)
		die("pager data did not verify");
	printf("bench pager_mixed_ops=%.0f\n", (double)m.ops * THREADS / dt);
	spill_close(ctx);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: rdma_bench URL\n");
		return 2;
	}
	bench_ops(argv[1]);
	bench_pager(argv[1]);
	return 0;
}
