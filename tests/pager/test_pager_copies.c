/* SPDX-License-Identifier: MIT */
/*
 * Copy currency with 2 replicas: a replica that misses writes is never read
 * for those pages, repair copies them back, and with the good server gone a
 * page reads back as last written or raises SIGBUS, never stale, never
 * zeros.
 *
 * How a replica misses writes while staying up: the test runs in its own
 * network namespace and drops every IPv4 packet of 4 KiB or more sent to
 * that server's port (tc u32 on lo into a class whose queue holds nothing).
 * A WRITE frame carries at least a page, so it stalls and times out; the
 * client reconnects (the handshake's frames are small) and the retry stalls
 * too. READs, whose requests are small, still work, so before copy currency
 * the stale copy was read back with status OK. Without root (no namespace)
 * the tests are skipped.
 *
 * All servers stalled (SIGSTOP, no RST): every touch of a far page raises
 * SIGBUS within the request timeout's bound; nothing hangs.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "pager_test.h"
#include "spillway.h"

#define PG 4096u
#define MB (1024u * 1024u)
#define BUDGET (4 * MB)
#define REGION (8 * MB)
#define NPAGES (REGION / PG)
#define TIMEOUT_MS 300
#define BOUND_S 60 /* only there to fail instead of hanging */

static int in_netns; /* main() entered a namespace of our own */

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Drop what is sent to port in IPv4 packets of 4 KiB and more. */
static void big_frames_drop(int port)
{
	for (int k = 1; k < 16; k++)
		assert_int_equal(sh("tc filter add dev lo parent 1: protocol ip prio 1 u32 "
				    "match ip dport %d 0xffff match u16 0x%x000 0xf000 at 2 "
				    "flowid 1:20 >/dev/null 2>&1", port, k), 0);
}

static void big_frames_pass(void)
{
	assert_int_equal(sh("tc filter del dev lo parent 1: prio 1 >/dev/null 2>&1"), 0);
}

static int netns_enter(void)
{
	if (unshare(CLONE_NEWNET))
		return -1;
	return sh("ip link set lo up && "
		  "tc qdisc add dev lo root handle 1: htb default 10 && "
		  "tc class add dev lo parent 1: classid 1:10 htb rate 100gbit && "
		  "tc class add dev lo parent 1: classid 1:20 htb rate 8bit && "
		  "tc qdisc add dev lo parent 1:20 handle 20: pfifo limit 0") ? -1 : 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Poll the stats until done() holds, up to BOUND_S. */
static int wait_stats(spill_ctx *ctx, struct spill_stats *st, int (*done)(const struct spill_stats *))
{
	double end = now_s() + BOUND_S;
	for (;;) {
		spill_stats(ctx, st);
		if (done(st))
			return 1;
		if (now_s() > end)
			return 0;
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
	}
}

static int repaired_all(const struct spill_stats *st)
{
	return st->repaired > 0 && st->degraded_groups == 0;
}

static spill_ctx *open_two(struct srv *a, struct srv *b, const char *name)
{
	struct spill_config cfg = { .servers = { a->url, b->url }, .local_budget = BUDGET,
				    .replicas = 2, .name = name, .timeout_ms = TIMEOUT_MS };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		fprintf(stderr, "spill_open: %s\n", spill_strerror(errno));
	return ctx;
}

static void fill_all(uint8_t *base, uint32_t gen)
{
	for (uint32_t p = 0; p < NPAGES; p++)
		fill_page(base + (size_t)p * PG, seed_of(p, gen));
}

/*
 * Write every dirty page out (to both servers) and keep none: then every
 * WRITE sent while frames are dropped carries the last generation. A frame
 * that timed out is retransmitted by the kernel once the drop ends; the
 * server fences it if a newer write of its pages came first (write
 * versions, test_srv_write_order), and otherwise it rewrites the same bytes.
 */
static int evict_all(spill_ctx *ctx, const uint8_t *base)
{
	if (spill_set_budget(ctx, 64 * 1024))
		return -1;
	/* Reading twice the small budget's worth pushes out the last pages
	 * left, dirty ones included, and brings only clean ones in. */
	for (uint32_t p = 0; p < 32; p++)
		(void)*(volatile const uint8_t *)(base + (size_t)p * PG);
	return spill_set_budget(ctx, BUDGET) ? -1 : 0;
}

/* What a scan of every page found. */
struct tally {
	int ok, stale, zero, other, lost;
};

/* Every page against generation gen (stale: gen - 1), a SIGBUS counted as
 * lost. Copies each page out first, so a page is judged on one read. */
static struct tally scan(uint8_t *base, uint32_t gen)
{
	static uint8_t copy[PG];
	struct tally t = { 0 };
	for (volatile uint32_t p = 0; p < NPAGES; p++) {
		if (sigsetjmp(scan_env, 1)) {
			t.lost++;
			continue;
		}
		memcpy(copy, base + (size_t)p * PG, PG);
		if (check_page(copy, seed_of(p, gen)))
			t.ok++;
		else if (check_page(copy, seed_of(p, gen - 1)))
			t.stale++;
		else if (all_zero(copy))
			t.zero++;
		else
			t.other++;
	}
	return t;
}

static void print_tally(const char *what, const struct tally *t)
{
	fprintf(stderr, "%s: ok %d, stale %d, zeros %d, other %d, SIGBUS %d\n", what, t->ok,
		t->stale, t->zero, t->other, t->lost);
}

/* (a) Both servers up: the copies b missed are never read, and repair
 * brings them back: with a then killed, every page still reads from b. */
static void missed_writes_are_not_read_and_are_repaired(void **state)
{
	(void)state;
	if (!in_netns)
		skip();
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "256M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "256M", NULL), 0);
	spill_ctx *ctx = open_two(&a, &b, "pager-copies-up");
	assert_non_null(ctx);
	pager_save_handler();
	uint8_t *base = spill_alloc(ctx, REGION);
	assert_non_null(base);
	fill_all(base, 1);
	assert_int_equal(evict_all(ctx, base), 0); /* all of it on both servers */

	big_frames_drop(b.port);
	fill_all(base, 2); /* evictions now reach a only */
	struct spill_stats st;
	spill_stats(ctx, &st);
	big_frames_pass();
	fprintf(stderr, "missed copies %llu, servers up %d\n",
		(unsigned long long)st.copies_missed, st.servers_up);
	assert_int_equal(st.servers_up, 2); /* b missed writes, yet stayed */
	assert_true(st.copies_missed > 0);

	struct tally t = scan(base, 2);
	print_tally("both up", &t);
	assert_int_equal(t.stale, 0);
	assert_int_equal(t.zero, 0);
	assert_int_equal(t.ok, NPAGES);

	assert_true(wait_stats(ctx, &st, repaired_all));
	fprintf(stderr, "repaired %llu\n", (unsigned long long)st.repaired);
	assert_true(st.repaired > 0);

	/* The repaired copies are on b: with a gone, every page that is not
	 * resident is read from b (a sequential scan over twice the budget
	 * finds none of its pages resident). */
	srv_kill(&a);
	uint64_t reads_before = st.remote_reads;
	t = scan(base, 2);
	print_tally("a killed", &t);
	spill_stats(ctx, &st);
	assert_int_equal(t.ok, NPAGES);
	assert_int_equal(st.lost_pages, 0);
	assert_true(st.remote_reads - reads_before >= NPAGES / 2);
	assert_int_equal(spill_free(ctx, base), 0);
	spill_close(ctx);
	srv_stop(&b);
}

/* Run body in a child whose SIGBUS handler counts lost pages; it reports
 * a tally through the pipe. */
struct child {
	pid_t pid;
	int to[2], from[2];
};

static void child_step(struct child *c)
{
	char m = 's';
	if (write(c->from[1], &m, 1) != 1 || read(c->to[0], &m, 1) != 1)
		_exit(11);
}

static void parent_wait_step(struct child *c)
{
	char m;
	assert_int_equal(read(c->from[0], &m, 1), 1);
}

static void parent_go(struct child *c)
{
	char m = 'g';
	assert_int_equal(write(c->to[1], &m, 1), 1);
}

static struct tally parent_result(struct child *c)
{
	struct tally t;
	assert_int_equal(read(c->from[0], &t, sizeof(t)), (ssize_t)sizeof(t));
	int status;
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return t;
}

/* Child: open on a and b, write generation 1, step; write generation 2,
 * step; scan and report. */
static void child_run(struct child *c, struct srv *a, struct srv *b, const char *name)
{
	alarm(BOUND_S);
	scan_catch_sigbus();
	spill_ctx *ctx = open_two(a, b, name);
	if (!ctx)
		_exit(10);
	uint8_t *base = spill_alloc(ctx, REGION);
	if (!base)
		_exit(12);
	fill_all(base, 1);
	if (evict_all(ctx, base))
		_exit(14);
	child_step(c);
	fill_all(base, 2);
	child_step(c);
	struct tally t = scan(base, 2);
	if (write(c->from[1], &t, sizeof(t)) != (ssize_t)sizeof(t))
		_exit(13);
	_exit(0);
}

static void child_start(struct child *c, struct srv *a, struct srv *b, const char *name)
{
	assert_int_equal(pipe(c->to), 0);
	assert_int_equal(pipe(c->from), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0)
		child_run(c, a, b, name);
}

/* (b) b misses the second generation's writes and a is killed before any
 * repair could reach b (its writes are still dropped): each page is the
 * second generation or SIGBUS. */
static void missed_writes_then_good_server_killed(void **state)
{
	(void)state;
	if (!in_netns)
		skip();
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "256M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "256M", NULL), 0);
	struct child c;
	child_start(&c, &a, &b, "pager-copies-kill");
	parent_wait_step(&c);       /* generation 1 on both */
	big_frames_drop(b.port);
	parent_go(&c);
	parent_wait_step(&c);       /* generation 2 on a only */
	srv_kill(&a);
	parent_go(&c);
	struct tally t = parent_result(&c);
	big_frames_pass();
	print_tally("a killed, b missed writes", &t);
	assert_int_equal(t.stale, 0);
	assert_int_equal(t.zero, 0);
	assert_int_equal(t.other, 0);
	assert_int_equal(t.ok + t.lost, NPAGES);
	assert_true(t.lost > 0); /* the evicted second generation was on a only */
	srv_stop(&b);
}

/* All servers stalled (no RST): every touch of a page with no local copy
 * raises SIGBUS, bounded by the request timeout; resident pages read fine. */
static void all_servers_stalled_sigbus(void **state)
{
	(void)state;
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "256M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "256M", NULL), 0);
	struct child c;
	child_start(&c, &a, &b, "pager-copies-stall");
	parent_wait_step(&c);
	parent_go(&c);
	parent_wait_step(&c);       /* generation 2 written, half evicted */
	kill(a.pid, SIGSTOP);
	kill(b.pid, SIGSTOP);
	parent_go(&c);
	struct tally t = parent_result(&c);
	print_tally("all stalled", &t);
	assert_int_equal(t.stale, 0);
	assert_int_equal(t.zero, 0);
	assert_int_equal(t.other, 0);
	assert_int_equal(t.ok + t.lost, NPAGES);
	assert_true(t.lost >= (int)(NPAGES - BUDGET / PG));
	srv_kill(&a); /* SIGKILL ends a stopped process too */
	srv_kill(&b);
}

int main(void)
{
	in_netns = netns_enter() == 0;
	if (!in_netns)
		fprintf(stderr, "no network namespace of our own (not root?): "
			"the dropped-frame tests are skipped\n");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(missed_writes_are_not_read_and_are_repaired),
		cmocka_unit_test(missed_writes_then_good_server_killed),
		cmocka_unit_test(all_servers_stalled_sigbus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
