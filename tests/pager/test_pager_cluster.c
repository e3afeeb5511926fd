/* SPDX-License-Identifier: MIT */
/*
 * The pager in a cluster (docs/arbiter.md). Discovery: a context given one
 * server's URL spreads its pages over the servers that one knows. Drain: an
 * operator drains a server in the middle of a random read/write run; the
 * library moves every page off it while the run goes on, and every byte
 * still verifies. Admission: a server that refuses extents (full) leaves
 * pages resident, never lost.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "pager_test.h"
#include "spillway.h"

#define PG 4096u
#define MB (1024u * 1024u)

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Between polls of a server's state (a poll, bounded by its caller). */
static void pause_ms(long ms)
{
	struct timespec t = { 0, ms * 1000000 };
	nanosleep(&t, NULL);
}

/* Bytes the server holds for client name (AdminStatus), 0 if unknown. */
static uint64_t used_by(const struct srv *s, const char *name)
{
	struct client *c = connect_as(s, NULL, NULL);
	Spillway__Ctrl *rep = admin_status(c);
	uint64_t used = 0;
	const Spillway__AdminStatusReply *r = rep->admin_status_reply;
	for (size_t i = 0; i < r->n_clients; i++)
		if (!strcmp(r->clients[i]->name, name))
			used = r->clients[i]->used_bytes;
	ctrl_free(rep);
	client_close(c);
	return used;
}

/* Servers that ClusterInfo on s lists as up (registers as name to ask). */
static int cluster_up(const struct srv *s, const char *name)
{
	struct client *c = connect_as(s, name, NULL);
	Spillway__ClusterInfo ci = SPILLWAY__CLUSTER_INFO__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_CLUSTER_INFO;
	req.cluster_info = &ci;
	int up = -1;
	if (client_ctrl(c, &req, &rep, NULL, 0) == 0) {
		up = 0;
		if (rep->msg_case == SPILLWAY__CTRL__MSG_CLUSTER_INFO_REPLY)
			for (size_t i = 0; i < rep->cluster_info_reply->n_servers; i++)
				up += rep->cluster_info_reply->servers[i]->up;
		ctrl_free(rep);
	}
	client_close(c);
	return up;
}

static void admin_drain(const struct srv *s, int on)
{
	struct client *c = connect_to(s->admin_url, NULL, NULL); /* operator: the admin socket */
	Spillway__AdminDrain d = SPILLWAY__ADMIN_DRAIN__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	d.drain = on;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_DRAIN;
	req.admin_drain = &d;
	char err[256] = "";
	int rc = client_ctrl(c, &req, &rep, err, sizeof(err));
	if (rc)
		fail_msg("AdminDrain on %s: %s (%d)", s->url, err, rc);
	assert_int_equal(rep->msg_case, SPILLWAY__CTRL__MSG_ADMIN_DRAIN_REPLY);
	ctrl_free(rep);
	client_close(c);
}

/* --- discovery ----------------------------------------------------------- */

#define DISC_BUDGET (4 * MB)
#define DISC_REGION (48 * MB)

static void one_url_spreads_over_the_cluster(void **state)
{
	(void)state;
	/* Peers need each other's URLs, and ports are chosen at start: the
	 * first server gets --peer for the two others, started before it. */
	struct srv s[3];
	assert_int_equal(srv_start(&s[1], "--capacity", "256M", NULL), 0);
	assert_int_equal(srv_start(&s[2], "--capacity", "256M", NULL), 0);
	assert_int_equal(srv_start(&s[0], "--capacity", "256M", "--peer", s[1].url,
				   "--peer", s[2].url, NULL), 0);
	/* Bounded poll: the first server learns its peers in the background. */
	int up = 0;
	for (uint64_t end = now_ms() + 15000; now_ms() < end && up < 3; pause_ms(50))
		up = cluster_up(&s[0], "cluster-probe");
	if (up < 3)
		fail_msg("ClusterInfo on %s lists %d servers up, wanted 3", s[0].url, up);

	struct spill_config cfg = { .servers = { s[0].url }, .local_budget = DISC_BUDGET,
				    .name = "pager-disc" };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		fail_msg("spill_open: %s", spill_strerror(errno));
	pager_save_handler();
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_int_equal(st.servers_up, 3);

	uint32_t npages = DISC_REGION / PG;
	uint8_t *base = spill_alloc(ctx, DISC_REGION);
	assert_non_null(base);
	for (uint32_t gen = 1; gen <= 2; gen++)
		for (uint32_t p = 0; p < npages; p++)
			fill_page(base + (size_t)p * PG, seed_of(p, gen));
	int bad = 0;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t p = 0; p < npages; p++)
			bad += !check_page(base + (size_t)p * PG, seed_of(p, 2));
	assert_int_equal(bad, 0);
	spill_stats(ctx, &st);
	assert_int_equal(st.lost_pages, 0);

	int holding = 0;
	for (int i = 0; i < 3; i++)
		holding += used_by(&s[i], "pager-disc") > 0;
	assert_true(holding > 1);

	assert_int_equal(spill_free(ctx, base), 0);
	spill_close(ctx);
	for (int i = 0; i < 3; i++)
		srv_stop(&s[i]);
}

/* --- drain under load ------------------------------------------------------ */

#define DRAIN_BUDGET (8 * MB)
#define DRAIN_REGION (64 * MB)
#define DRAIN_NPAGES (DRAIN_REGION / PG)

static void drain_moves_pages_off_under_load(void **state)
{
	(void)state;
	struct srv s[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(srv_start(&s[i], "--capacity", "256M", NULL), 0);
	struct spill_config cfg = { .servers = { s[0].url, s[1].url, s[2].url },
				    .local_budget = DRAIN_BUDGET, .name = "pager-drain" };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		fail_msg("spill_open: %s", spill_strerror(errno));
	pager_save_handler();
	uint8_t *base = spill_alloc(ctx, DRAIN_REGION);
	assert_non_null(base);
	_Atomic uint32_t *gen = calloc(DRAIN_NPAGES, sizeof(*gen));
	for (uint32_t p = 0; p < DRAIN_NPAGES; p++) {
		fill_page(base + (size_t)p * PG, seed_of(p, 1));
		gen[p] = 1;
	}
	/* Everything was written once: the middle server holds part of it. */
	assert_true(used_by(&s[1], "pager-drain") > 0);

	atomic_int stop = 0;
	atomic_long ops = 0;
	struct runner r[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		r[i] = (struct runner){ base, gen, (uint32_t)i * DRAIN_NPAGES / 2, DRAIN_NPAGES / 2,
					(uint64_t)i + 11, &stop, &ops, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, random_rw, &r[i]), 0);
	}
	while (atomic_load(&ops) < 5000)
		sched_yield();
	admin_drain(&s[1], 1);
	long at_drain = atomic_load(&ops);
	/* Bounded poll while the run goes on: the library empties s[1]. */
	uint64_t left = 1;
	for (uint64_t end = now_ms() + 60000; now_ms() < end && left; pause_ms(50))
		left = used_by(&s[1], "pager-drain");
	long at_empty = atomic_load(&ops);
	/* More work after the move: nothing new lands on the drained server. */
	while (atomic_load(&ops) < at_empty + 20000)
		sched_yield();
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	if (left)
		fail_msg("%s still holds %llu bytes of ours after 60 s of draining", s[1].url,
			 (unsigned long long)left);
	assert_true(at_empty > at_drain); /* the run went on during the move */
	assert_int_equal(used_by(&s[1], "pager-drain"), 0);

	int bad = 0;
	for (uint32_t p = 0; p < DRAIN_NPAGES; p++)
		bad += !check_page(base + (size_t)p * PG, seed_of(p, gen[p]));
	assert_int_equal(bad, 0);
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_int_equal(st.lost_pages, 0);
	assert_true(st.rereplicated > 0); /* moved pages count there */
	assert_int_equal(st.servers_up, 3);

	assert_int_equal(spill_free(ctx, base), 0);
	spill_close(ctx);
	free(gen);
	for (int i = 0; i < 3; i++)
		srv_stop(&s[i]);
}

/* --- admission ---------------------------------------------------------------- */

static void refused_extents_keep_pages_local(void **state)
{
	(void)state;
	/* Room for four 2 MiB extents: the rest of the region cannot go out. */
	struct srv s;
	assert_int_equal(srv_start(&s, "--capacity", "8M", NULL), 0);
	struct spill_config cfg = { .servers = { s.url }, .local_budget = 4 * MB,
				    .name = "pager-full" };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		fail_msg("spill_open: %s", spill_strerror(errno));
	pager_save_handler();
	uint32_t npages = 24 * MB / PG;
	uint8_t *base = spill_alloc(ctx, 24 * MB);
	assert_non_null(base);
	for (uint32_t p = 0; p < npages; p++)
		fill_page(base + (size_t)p * PG, seed_of(p, 1));
	int bad = 0;
	for (uint32_t p = 0; p < npages; p++)
		bad += !check_page(base + (size_t)p * PG, seed_of(p, 1));
	assert_int_equal(bad, 0);
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_int_equal(st.lost_pages, 0);
	/* What the server would not take stayed here, over the budget. */
	assert_true(st.resident_bytes > st.local_budget);
	assert_true(st.remote_bytes <= 8 * MB);
	assert_int_equal(spill_free(ctx, base), 0);
	spill_close(ctx);
	srv_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refused_extents_keep_pages_local),
		cmocka_unit_test(one_url_spreads_over_the_cluster),
		cmocka_unit_test(drain_moves_pages_off_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
