/* SPDX-License-Identifier: MIT */
/*
 * Integrity under partial failure, with the fault-injection harness: two
 * real spillwayd servers, replicas 2, every page of a region rewritten with
 * a new generation per round (so a stale page is told from a current one)
 * and every byte checked against the generation last written. Each case
 * prints its tally (ok, stale, zeros, other, SIGBUS) and asserts 0 stale and
 * 0 zeros:
 *  1. the connection to server B cut at every WRITE (each reconnection cut
 *     again) over several rounds: all pages verify; then A killed, or
 *     partitioned: each page is the last generation or SIGBUS, never B's
 *     stale copy;
 *  2. B frozen (SIGSTOP) past the request timeout during rewrites, then
 *     thawed: all pages verify, repair brings every group back to two
 *     current copies, proven on B: it lends exactly the region's extents
 *     (none left over from before), and with A killed every page reads
 *     back from B as last written;
 *  3. the same with a partition (no byte, no FIN, no RST) healed afterwards;
 *  4. B killed and a new, empty spillwayd started on its port: repair fills
 *     it, proven the same way;
 *  5. both servers killed: a page with no local copy raises SIGBUS, nothing
 *     hangs.
 *
 * The pager runs in a child process per case (one context per process; its
 * SIGBUS handler counts lost pages), driven by commands over a pipe; the
 * parent starts, cuts, freezes and kills servers. Nothing sleeps to
 * synchronise: the parent waits for the child's answers, the child for its
 * own spill_stats counters, each wait bounded only to fail instead of
 * hanging. Both fault modes: CMake runs the file again with
 * SPILLWAY_FAULT_MODE=handler.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "fault_proxy.h"
#include "harness.h"
#include "pager_test.h"
#include "proc_freeze.h"
#include "spillway.h"

#define PG 4096u
#define MB (1024u * 1024u)
#define BUDGET (1 * MB)
#define MIN_BUDGET (64u * 1024u) /* the library's minimum: 16 pages */
#define REGION (4 * MB)          /* two 2 MiB groups */
#define NPAGES (REGION / PG)
#define ROUNDS 3                 /* rewrites under each fault */
/* The pager's request timeout: short so that stalls are detected fast, yet
 * long enough for a handshake on a loaded machine. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define TIMEOUT_MS 1500
#else
#define TIMEOUT_MS 400
#endif
#define BOUND_S 40 /* only there to fail instead of hanging */
#define BOUND_MS (BOUND_S * 1000)

/* --- the child: a pager driven over a pipe ---------------------------------- */

enum cmd_op {
	CMD_REWRITE = 'w', /* write generation gen to every page, evict them all */
	CMD_SCAN = 's',    /* check every page against gen */
	CMD_SCAN_FAR = 'f', /* the same with the minimum budget: from the servers */
	CMD_REPAIRED = 'r', /* wait: both servers up, no degraded group, copies made */
	CMD_UP_IS = 'u',    /* wait: exactly gen servers up */
	CMD_QUIT = 'q',
};

struct cmd {
	int op;
	uint32_t gen;
};

/* What a scan of every page found. */
struct tally {
	int ok, stale, zero, other, lost;
};

struct result {
	int rc;                /* 0, or why the command failed */
	struct tally t;
	struct spill_stats st; /* after the command */
	double secs;           /* how long it took */
};

/* Every page against generation gen; stale: any older generation. Each
 * page is copied out first, so it is judged on one read. */
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
		if (check_page(copy, seed_of(p, gen))) {
			t.ok++;
			continue;
		}
		int old = 0;
		for (uint32_t g = 1; g < gen && !old; g++)
			old = check_page(copy, seed_of(p, g));
		if (old) {
			if (t.stale < 4) {
				uint32_t g = 1;
				while (!check_page(copy, seed_of(p, g)))
					g++;
				fprintf(stderr, "page %u is generation %u, not %u\n", (unsigned)p, g,
					gen);
			}
			t.stale++;
		}
		else if (all_zero(copy))
			t.zero++;
		else
			t.other++;
	}
	return t;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Write every dirty page out and keep (almost) none: a budget of 16 pages
 * and a read of 32 others pushes out the last ones, dirty ones included. */
static int evict_all(spill_ctx *ctx, const uint8_t *base)
{
	int rc = spill_set_budget(ctx, MIN_BUDGET);
	for (uint32_t p = 0; p < 32; p++)
		(void)*(volatile const uint8_t *)(base + (size_t)p * PG);
	return spill_set_budget(ctx, BUDGET) || rc ? -1 : 0;
}

/* Until both servers are up, no group waits for repair, and copies were
 * made since base (pages repaired or copied to a new replica). */
static int child_wait_repaired(spill_ctx *ctx, uint64_t base, struct spill_stats *st)
{
	double end = now_s() + BOUND_S;
	for (;;) {
		spill_stats(ctx, st);
		if (st->servers_up == 2 && st->degraded_groups == 0 &&
		    st->repaired + st->rereplicated > base)
			return 0;
		if (now_s() > end)
			return -ETIMEDOUT;
		struct timespec ts = { 0, 10 * 1000000 }; /* pacing a bounded poll */
		nanosleep(&ts, NULL);
	}
}

/* The servers a child opens, sent once it runs (see pager_start). */
struct urls {
	char url[2][64];
};

static void child_main(int in, int out, const char *name)
{
	alarm(BOUND_S);
	scan_catch_sigbus();
	struct urls u;
	if (read(in, &u, sizeof(u)) != (ssize_t)sizeof(u))
		_exit(9);
	struct spill_config cfg = { .servers = { u.url[0], u.url[1] }, .local_budget = BUDGET,
				    .replicas = 2, .name = name, .timeout_ms = TIMEOUT_MS };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		_exit(10);
	uint8_t *base = spill_alloc(ctx, REGION);
	if (!base)
		_exit(11);
	uint64_t copies_base = 0;
	for (;;) {
		struct cmd c;
		if (read(in, &c, sizeof(c)) != (ssize_t)sizeof(c))
			_exit(12);
		if (c.op == CMD_QUIT) {
			spill_close(ctx);
			_exit(0);
		}
		alarm(BOUND_S);
		struct result r = { 0 };
		double t0 = now_s();
		switch (c.op) {
		case CMD_REWRITE:
			for (uint32_t p = 0; p < NPAGES; p++)
				fill_page(base + (size_t)p * PG, seed_of(p, c.gen));
			r.rc = evict_all(ctx, base);
			spill_stats(ctx, &r.st);
			copies_base = r.st.repaired + r.st.rereplicated;
			break;
		case CMD_SCAN_FAR:
			/* Fewer pages than a read-ahead window stay resident. */
			if (spill_set_budget(ctx, MIN_BUDGET))
				r.rc = -errno;
			/* fall through */
		case CMD_SCAN:
			r.t = scan(base, c.gen);
			spill_stats(ctx, &r.st);
			break;
		case CMD_REPAIRED:
			r.rc = child_wait_repaired(ctx, copies_base, &r.st);
			break;
		case CMD_UP_IS:
			for (double end = now_s() + BOUND_S;; ) {
				spill_stats(ctx, &r.st);
				if (r.st.servers_up == (int)c.gen)
					break;
				if (now_s() > end) {
					r.rc = -ETIMEDOUT;
					break;
				}
				struct timespec ts = { 0, 10 * 1000000 }; /* pacing a bounded poll */
				nanosleep(&ts, NULL);
			}
			break;
		default:
			_exit(13);
		}
		r.secs = now_s() - t0;
		alarm(0);
		if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(14);
	}
}

struct pager {
	pid_t pid;
	int to, from; /* the parent's ends */
};

/* Fork the child, which opens nothing until pager_open: the parent forks
 * before it starts any proxy thread (a fork of a threaded process is not
 * for a program that starts threads of its own, and TSan refuses it). */
static void pager_start(struct pager *p, const char *name)
{
	int to[2], from[2];
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		close(to[1]);
		close(from[0]);
		child_main(to[0], from[1], name);
	}
	close(to[0]);
	close(from[1]);
	p->to = to[1];
	p->from = from[0];
}

/* The child opens a context on url_a and url_b, replicas 2. */
static void pager_open(struct pager *p, const char *url_a, const char *url_b)
{
	struct urls u;
	memset(&u, 0, sizeof(u));
	snprintf(u.url[0], sizeof(u.url[0]), "%s", url_a);
	snprintf(u.url[1], sizeof(u.url[1]), "%s", url_b);
	assert_int_equal(write(p->to, &u, sizeof(u)), (ssize_t)sizeof(u));
}

/* Run one command in the child and return its result; the test fails if
 * the child died (its alarm bounds every command). */
static struct result pager_do(struct pager *p, int op, uint32_t gen)
{
	struct cmd c = { op, gen };
	struct result r;
	assert_int_equal(write(p->to, &c, sizeof(c)), (ssize_t)sizeof(c));
	ssize_t got = read(p->from, &r, sizeof(r));
	if (got != (ssize_t)sizeof(r)) {
		int st = 0;
		waitpid(p->pid, &st, 0);
		fail_msg("pager child gone during '%c' (status 0x%x)", op, st);
	}
	return r;
}

static void pager_end(struct pager *p)
{
	struct cmd c = { CMD_QUIT, 0 };
	assert_int_equal(write(p->to, &c, sizeof(c)), (ssize_t)sizeof(c));
	int st;
	assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
	close(p->to);
	close(p->from);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void print_result(const char *what, const struct result *r)
{
	const struct tally *t = &r->t;
	const struct spill_stats *s = &r->st;
	fprintf(stderr,
		"%-28s ok %4d stale %d zeros %d other %d SIGBUS %4d | up %d missed %llu "
		"repaired %llu rereplicated %llu degraded %llu lost %llu failovers %llu "
		"(%s, %.2f s)\n",
		what, t->ok, t->stale, t->zero, t->other, t->lost, s->servers_up,
		(unsigned long long)s->copies_missed, (unsigned long long)s->repaired,
		(unsigned long long)s->rereplicated, (unsigned long long)s->degraded_groups,
		(unsigned long long)s->lost_pages, (unsigned long long)s->failovers,
		s->fault_mode == SPILL_FAULT_HANDLER ? "handler" : "in-thread", r->secs);
}

/* Every page is generation gen. */
static void expect_all_current(const char *what, const struct result *r)
{
	print_result(what, r);
	assert_int_equal(r->t.stale, 0);
	assert_int_equal(r->t.zero, 0);
	assert_int_equal(r->t.other, 0);
	assert_int_equal(r->t.lost, 0);
	assert_int_equal(r->t.ok, NPAGES);
}

/* Every page is generation gen or SIGBUS; at least min_lost SIGBUS. */
static void expect_current_or_lost(const char *what, const struct result *r, int min_lost)
{
	print_result(what, r);
	assert_int_equal(r->t.stale, 0);
	assert_int_equal(r->t.zero, 0);
	assert_int_equal(r->t.other, 0);
	assert_int_equal(r->t.ok + r->t.lost, NPAGES);
	assert_true(r->t.lost >= min_lost);
}

/* Rounds first..last of rewrites, each followed by a scan that must find
 * every page current (A serves what B missed). */
static void rewrite_rounds(struct pager *p, uint32_t first, uint32_t last, const char *what)
{
	for (uint32_t g = first; g <= last; g++) {
		struct result r = pager_do(p, CMD_REWRITE, g);
		print_result(what, &r);
		assert_int_equal(r.rc, 0);
		/* Before any fault, a group is degraded only by a missed copy. */
		if (g == 1)
			assert_true(r.st.copies_missed > 0 || r.st.degraded_groups == 0);
		r = pager_do(p, CMD_SCAN, g);
		expect_all_current(what, &r);
	}
}

/* B lends exactly the region's two extents: the copies repair made, and
 * none left over from before it failed (the old identity's extents freed). */
static void expect_b_holds_region(const struct srv *b)
{
	static const char used[] = "spillway_pool_used_bytes{node=\"0\"}";
	long long v;
	for (int waited = 0; (v = srv_metric(b, used)) != REGION && waited < BOUND_MS;
	     waited += 10) {
		struct timespec ts = { 0, 10 * 1000000 }; /* pacing a bounded poll */
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "B lends %lld bytes\n", v);
	assert_int_equal(v, REGION);
}

/*
 * After repair: B lends the region's extents, and with A killed every page
 * read with the minimum budget (so all but a handful from B) is the last
 * generation: B holds a current copy of everything on its own.
 */
static void expect_all_on_b(struct pager *p, struct srv *a, const struct srv *b, uint32_t gen)
{
	struct result r = pager_do(p, CMD_REPAIRED, 0);
	print_result("repaired", &r);
	assert_int_equal(r.rc, 0);
	expect_b_holds_region(b);
	uint64_t reads = r.st.remote_reads;
	srv_kill(a);
	r = pager_do(p, CMD_SCAN_FAR, gen);
	expect_all_current("A killed, read from B", &r);
	assert_int_equal(r.st.lost_pages, 0);
	assert_true(r.st.remote_reads - reads >= NPAGES - MIN_BUDGET / PG);
}

/* --- the cases ---------------------------------------------------------------- */

/* How the good server goes in case 1. */
enum a_gone {
	A_KILLED,      /* kill -9: its connections reset, everyone notices */
	A_PARTITIONED, /* silence: the first READ that needs it times out */
};

/* (1) B's connection cut at every WRITE: B keeps an old copy of every page
 * and stays up (each reconnection works); it is never read. With A then
 * gone, the pages that were only on A raise SIGBUS. A partitioned rather
 * than killed makes a fault's own READ find A gone and fail over. */
static void cut_at_every_write_then_good_server_gone(enum a_gone how)
{
	struct srv a, b;
	struct fault_proxy *pa = NULL, *pb;
	assert_int_equal(srv_start(&a, "--capacity", "64M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "64M", NULL), 0);
	struct pager p;
	pager_start(&p, how == A_KILLED ? "pager-faults-cut-kill" : "pager-faults-cut-part");
	if (how == A_PARTITIONED)
		assert_int_equal(fault_proxy_start(&pa, a.port), 0);
	assert_int_equal(fault_proxy_start(&pb, b.port), 0);
	pager_open(&p, pa ? fault_proxy_url(pa) : a.url, fault_proxy_url(pb));
	rewrite_rounds(&p, 1, 1, "gen 1 on both");

	/* Half a frame forwarded, then RST: the server never holds the whole
	 * WRITE. Each open connection is cut at its next WRITE (the pager is
	 * idle between commands), every later one at its first. */
	for (int c = 0; c < fault_conns(pb); c++)
		assert_int_equal(fault_cut(pb, c, FAULT_C2S, SPILL_OP_WRITE,
					   (unsigned)fault_frames(pb, c, FAULT_C2S, SPILL_OP_WRITE) + 1,
					   FAULT_KEEP_HALF, FAULT_RST), 0);
	assert_int_equal(fault_cut(pb, FAULT_ALL, FAULT_C2S, SPILL_OP_WRITE, 1, FAULT_KEEP_HALF,
				   FAULT_RST), 0);
	rewrite_rounds(&p, 2, 1 + ROUNDS, "B cut at every WRITE");
	struct result r = pager_do(&p, CMD_SCAN, 1 + ROUNDS);
	assert_int_equal(r.st.servers_up, 2); /* B missed writes, yet stayed */
	assert_true(r.st.copies_missed >= NPAGES);
	assert_true(fault_count(pb, FAULT_EV_CUT, FAULT_ALL) >= ROUNDS);

	if (how == A_KILLED)
		srv_kill(&a);
	else
		assert_int_equal(fault_partition(pa, FAULT_ALL), 0);
	r = pager_do(&p, CMD_SCAN, 1 + ROUNDS);
	expect_current_or_lost(how == A_KILLED ? "A killed, B cut" : "A partitioned, B cut", &r,
			       NPAGES - (int)(BUDGET / PG));
	assert_int_equal(r.st.servers_up, 1);
	pager_end(&p);
	fault_proxy_stop(pb);
	if (pa) {
		fault_proxy_stop(pa);
		srv_stop(&a);
	}
	srv_stop(&b);
}

static void cut_at_every_write_then_good_server_killed(void **state)
{
	(void)state;
	cut_at_every_write_then_good_server_gone(A_KILLED);
}

static void cut_at_every_write_then_good_server_partitioned(void **state)
{
	(void)state;
	cut_at_every_write_then_good_server_gone(A_PARTITIONED);
}

/* (2) B frozen past the request timeout while every page is rewritten,
 * then thawed: repair rebuilds its copies. */
static void stalled_server_is_repaired(void **state)
{
	(void)state;
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "64M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "64M", NULL), 0);
	struct pager p;
	pager_start(&p, "pager-faults-stall");
	pager_open(&p, a.url, b.url);
	rewrite_rounds(&p, 1, 1, "gen 1 on both");

	assert_int_equal(proc_freeze(b.pid, BOUND_MS), 0);
	rewrite_rounds(&p, 2, 1 + ROUNDS, "B frozen");
	struct result r = pager_do(&p, CMD_SCAN, 1 + ROUNDS);
	/* B timed out: declared down, or up with the writes it missed. */
	assert_true(r.st.servers_up == 1 || r.st.copies_missed > 0);
	assert_int_equal(proc_thaw(b.pid, BOUND_MS), 0);

	expect_all_on_b(&p, &a, &b, 1 + ROUNDS);
	pager_end(&p);
	srv_stop(&b);
}

/* (3) B partitioned (everything dropped both ways, no RST) during the
 * rewrites, then healed: repair rebuilds its copies. */
static void partitioned_server_is_repaired(void **state)
{
	(void)state;
	struct srv a, b;
	struct fault_proxy *px;
	assert_int_equal(srv_start(&a, "--capacity", "64M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "64M", NULL), 0);
	struct pager p;
	pager_start(&p, "pager-faults-part");
	assert_int_equal(fault_proxy_start(&px, b.port), 0);
	pager_open(&p, a.url, fault_proxy_url(px));
	rewrite_rounds(&p, 1, 1, "gen 1 on both");

	assert_int_equal(fault_partition(px, FAULT_ALL), 0);
	rewrite_rounds(&p, 2, 1 + ROUNDS, "B partitioned");
	struct result r = pager_do(&p, CMD_SCAN, 1 + ROUNDS);
	assert_true(r.st.servers_up == 1 || r.st.copies_missed > 0);
	assert_true(fault_count(px, FAULT_EV_DROP, FAULT_ALL) > 0);
	assert_int_equal(fault_heal(px, FAULT_ALL, FAULT_HEAL_RESUME), 0);

	expect_all_on_b(&p, &a, &b, 1 + ROUNDS);
	pager_end(&p);
	fault_proxy_stop(px);
	srv_stop(&b);
}

/* (4) B killed, pages rewritten, and a new spillwayd, empty, started on
 * B's port: repair fills it. */
static void server_restarted_empty_is_refilled(void **state)
{
	(void)state;
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "64M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "64M", NULL), 0);
	struct pager p;
	pager_start(&p, "pager-faults-restart");
	pager_open(&p, a.url, b.url);
	rewrite_rounds(&p, 1, 1, "gen 1 on both");

	int port = b.port;
	srv_kill(&b);
	rewrite_rounds(&p, 2, 1 + ROUNDS, "B killed");
	srv_next_port = port;
	assert_int_equal(srv_start(&b, "--capacity", "64M", NULL), 0);
	assert_int_equal(b.port, port);

	expect_all_on_b(&p, &a, &b, 1 + ROUNDS);
	pager_end(&p);
	srv_stop(&b);
}

/* Both servers stall past the request timeout at once (a blip of the
 * pager's own network looks the same) while holding every far page,
 * current, and answer again as the same identity: nothing was lost on
 * either, so every page reads back as last written. A down server that
 * holds a page's only current copy stays in its group's placement, and one
 * that comes back as the same identity keeps its copies (service.c
 * readmit_server); before, each came back "empty" and every page not
 * resident raised SIGBUS for ever. */
static void both_servers_stalled_then_back_keep_pages(void **state)
{
	(void)state;
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "64M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "64M", NULL), 0);
	struct pager p;
	pager_start(&p, "pager-faults-bothstall");
	pager_open(&p, a.url, b.url);
	rewrite_rounds(&p, 1, 1, "gen 1 on both");
	assert_int_equal(proc_freeze(a.pid, BOUND_MS), 0);
	assert_int_equal(proc_freeze(b.pid, BOUND_MS), 0);
	struct result r = pager_do(&p, CMD_UP_IS, 0); /* its free-space poll times out */
	assert_int_equal(r.rc, 0);
	assert_int_equal(proc_thaw(a.pid, BOUND_MS), 0);
	assert_int_equal(proc_thaw(b.pid, BOUND_MS), 0);
	r = pager_do(&p, CMD_UP_IS, 2);
	assert_int_equal(r.rc, 0);
	r = pager_do(&p, CMD_SCAN_FAR, 1);
	expect_all_current("both stalled, back", &r);
	pager_end(&p);
	srv_stop(&a);
	srv_stop(&b);
}

/* (5) Both servers killed: resident pages read fine, every other page
 * raises SIGBUS at once; the scan ends (the child's alarm bounds it). */
static void all_servers_killed_sigbus(void **state)
{
	(void)state;
	struct srv a, b;
	assert_int_equal(srv_start(&a, "--capacity", "64M", NULL), 0);
	assert_int_equal(srv_start(&b, "--capacity", "64M", NULL), 0);
	struct pager p;
	pager_start(&p, "pager-faults-allkilled");
	pager_open(&p, a.url, b.url);
	rewrite_rounds(&p, 1, 2, "before the kill");
	srv_kill(&a);
	srv_kill(&b);
	struct result r = pager_do(&p, CMD_SCAN, 2);
	expect_current_or_lost("all killed", &r, NPAGES - (int)(BUDGET / PG));
	assert_true(r.t.ok > 0); /* resident pages need no server */
	assert_int_equal(r.st.servers_up, 0);
	pager_end(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cut_at_every_write_then_good_server_killed),
		cmocka_unit_test(cut_at_every_write_then_good_server_partitioned),
		cmocka_unit_test(stalled_server_is_repaired),
		cmocka_unit_test(partitioned_server_is_repaired),
		cmocka_unit_test(server_restarted_empty_is_refilled),
		cmocka_unit_test(all_servers_killed_sigbus),
		cmocka_unit_test(both_servers_stalled_then_back_keep_pages),
	};
	if (getenv("SPILL_TEST_FILTER")) /* one case: SPILL_TEST_FILTER=name */
		cmocka_set_test_filter(getenv("SPILL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
