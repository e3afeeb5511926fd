/* SPDX-License-Identifier: MIT */
/*
 * Oversubscription with libspillway as the victim: three servers, one of
 * them the arbiter. A -1000 client and a database (-500) hold memory beside
 * a batch job (+500) paging through libspillway; when the cluster passes
 * its high watermark the arbiter asks the batch job alone (the highest
 * badness, and its excess covers the plan), libspillway gives back what it
 * was asked for before the deadline, and every byte of every client still
 * verifies. The context is given one
 * server's URL and finds the other two itself.
 */
#include <poll.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl.h"
#include "pager_test.h"

#define MB       (1024ull * 1024)
#define PG       4096u
#define REGION   (56 * MB)
#define NPAGES   ((uint32_t)(REGION / PG))
#define NSERVERS 3

static struct srv srv[NSERVERS];

static void fill(uint8_t *base, uint32_t npages, uint32_t gen)
{
	for (uint32_t p = 0; p < npages; p++)
		fill_page(base + (size_t)p * PG, ((uint64_t)gen << 32) | p);
}

static int bad_pages(const uint8_t *base, uint32_t npages, uint32_t gen)
{
	int bad = 0;
	for (uint32_t p = 0; p < npages; p++)
		bad += !check_page(base + (size_t)p * PG, ((uint64_t)gen << 32) | p);
	return bad;
}

static struct client *session(const char *url, const char *name, int priority,
			      uint64_t reservation)
{
	struct client_opts o = { .name = name, .priority = priority, .reservation = reservation,
				 .timeout_ms = 10000 };
	struct client *c;
	char why[256];
	if (client_connect(url, &o, &c, why, sizeof(why)))
		fail_msg("%s: %s", url, why);
	return c;
}

/* Counts of events of kind, for client (NULL: any client). */
static int events(struct client *arb, const char *kind, const char *client)
{
	Spillway__AdminEvents q = SPILLWAY__ADMIN_EVENTS__INIT;
	Spillway__Ctrl *m = ctrl_request(arb, SPILLWAY__CTRL__MSG_ADMIN_EVENTS, &q);
	int n = 0;
	for (size_t i = 0; i < m->admin_events_reply->n_events; i++) {
		const Spillway__Event *e = m->admin_events_reply->events[i];
		n += !strcmp(e->kind, kind) && (!client || !strcmp(e->client, client));
	}
	ctrl_free(m);
	return n;
}

static int servers_up(struct client *arb)
{
	Spillway__AdminClusterStatus q = SPILLWAY__ADMIN_CLUSTER_STATUS__INIT;
	Spillway__Ctrl *m = ctrl_request(arb, SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS, &q);
	int up = 0;
	for (size_t i = 0; i < m->admin_cluster_status_reply->n_servers; i++)
		up += m->admin_cluster_status_reply->servers[i]->up;
	ctrl_free(m);
	return up;
}

/* An extent and the server it lives on (ids are random 64-bit values). */
struct taken {
	uint64_t id;
	int server;
};

/* One extent from whichever server has room, its first page written. 0 when
 * every server refuses. */
static int take_anywhere(struct client *const *on, uint8_t *page, struct taken *t)
{
	for (int s = 0; s < NSERVERS; s++) {
		struct client_extent e;
		if (client_alloc_extents(on[s], 1, -1, &e))
			continue;
		fill_page(page, e.id);
		assert_int_equal(client_write(on[s], e.id, 0, 1, page), 0);
		*t = (struct taken){ e.id, s };
		return 1;
	}
	return 0;
}

static int intact(struct client *const *on, const struct taken *ids, int n)
{
	uint8_t page[PG];
	int ok = 0;
	for (int i = 0; i < n; i++) {
		uint64_t id = ids[i].id;
		if (client_read(on[ids[i].server], id, 0, 1, page, NULL) == 0 && check_page(page, id))
			ok++;
	}
	return ok;
}

static void the_pager_is_asked_first_and_complies(void **state)
{
	(void)state;
	/* Three servers of 32 MiB; server 0 arbitrates. */
	assert_int_equal(srv_start(&srv[0], "--capacity", "32M", POLICY_AS_ASKED, "--arbiter",
				   "--report-interval-ms", "50", "--reclaim-deadline-ms", "20000",
				   NULL), 0);
	for (int i = 1; i < NSERVERS; i++)
		assert_int_equal(srv_start(&srv[i], "--capacity", "32M", POLICY_AS_ASKED, "--arbiter-url", srv[0].url,
					   "--report-interval-ms", "50", NULL), 0);
	struct client *arb = session(srv[0].url, NULL, 0, 0);
	for (int i = 0; i < 1000 && servers_up(arb) < NSERVERS; i++)
		poll(NULL, 0, 20);
	assert_int_equal(servers_up(arb), NSERVERS);

	/* keeper (-1000): 16 MiB on server 0, none of it reserved. */
	struct client *keeper[NSERVERS], *db[NSERVERS];
	for (int s = 0; s < NSERVERS; s++) {
		keeper[s] = session(srv[s].url, "keeper", -1000, 0);
		db[s] = session(srv[s].url, "db", -500, 0);
	}
	uint8_t page[PG];
	struct taken kid[8], did[10];
	for (int i = 0; i < 8; i++)
		assert_true(take_anywhere(keeper, page, &kid[i]));

	/* The batch job, given server 2 alone: it finds 0 and 1 itself. */
	struct spill_config cfg = { .servers = { srv[2].url }, .local_budget = 4 * MB,
				    .name = "batch", .priority = 500 };
	spill_ctx *ctx = spill_open(&cfg);
	assert_non_null(ctx);
	pager_save_handler();
	struct spill_stats st;
	spill_stats(ctx, &st);
	assert_int_equal(st.servers_up, NSERVERS);
	uint8_t *a = spill_alloc(ctx, REGION);
	assert_non_null(a);
	fill(a, NPAGES, 7);
	/* Out to the servers as it goes (16 + ~52 MiB of 96: below 90%);
	 * then room to bring pages back, as for a program whose working set
	 * shrank. */
	assert_int_equal(spill_set_budget(ctx, 64 * MB), 0);

	/* db (-500) grows and takes the cluster past 90%; once the servers
	 * hear it is full they refuse it more (nothing of it is reserved). */
	int nd = 0;
	while (nd < 10 && take_anywhere(db, page, &did[nd]))
		nd++;
	assert_true(nd >= 8);

	for (int i = 0; i < 1500 && !events(arb, "complied", "batch"); i++)
		poll(NULL, 0, 20);
	/* Once, or again if a report still showed the cluster full after
	 * the first answer (a loaded machine): never anyone else, no revoke. */
	assert_true(events(arb, "complied", "batch") >= 1);
	assert_true(events(arb, "reclaim", "batch") >= 1);
	assert_int_equal(events(arb, "reclaim", "keeper"), 0);
	assert_int_equal(events(arb, "reclaim", "db"), 0);
	assert_int_equal(events(arb, "revoke", NULL), 0);

	/* The arbiter may count the pager as complied once its usage drops,
	 * which happens while the pager is still answering the Reclaim (it
	 * frees the groups, then counts and answers): wait for the count. */
	spill_stats(ctx, &st);
	for (int i = 0; i < 1500 && st.reclaims < 1; i++) {
		poll(NULL, 0, 20);
		spill_stats(ctx, &st);
	}
	assert_true(st.reclaims >= 1);
	assert_int_equal(st.lost_pages, 0);
	assert_int_equal(bad_pages(a, NPAGES, 7), 0);
	assert_int_equal(intact(keeper, kid, 8), 8);
	assert_int_equal(intact(db, did, nd), nd);

	assert_int_equal(spill_free(ctx, a), 0);
	spill_close(ctx);
	for (int s = 0; s < NSERVERS; s++) {
		client_close(keeper[s]);
		client_close(db[s]);
	}
	client_close(arb);
	for (int i = 0; i < NSERVERS; i++)
		assert_int_equal(srv_stop(&srv[i]), 0);
}

/* In a child: a context that cannot comply (no room to bring pages back)
 * is revoked; reading its region then ends in SIGBUS, never in zeros.
 * Exit 3: a page read back wrong; 0: nothing was lost (both failures). */
static void victim_child(const struct srv *s, int stage_fd)
{
	/* cmocka's handler would catch the SIGBUS this child must die of. */
	signal(SIGBUS, SIG_DFL);
	struct spill_config cfg = { .servers = { s->url }, .local_budget = 4 * MB,
				    .name = "stubborn", .priority = 500 };
	spill_ctx *ctx = spill_open(&cfg);
	if (!ctx)
		_exit(4);
	uint8_t *a = spill_alloc(ctx, 20 * MB);
	if (!a)
		_exit(4);
	uint32_t n = (uint32_t)(20 * MB / PG);
	fill(a, n, 9);
	if (write(stage_fd, "F", 1) != 1)
		_exit(6);
	struct client *arb = session(s->url, NULL, 0, 0);
	for (int i = 0; i < 1500 && !events(arb, "revoke", "stubborn"); i++)
		poll(NULL, 0, 20);
	if (!events(arb, "revoke", "stubborn"))
		_exit(5);
	if (write(stage_fd, "R", 1) != 1)
		_exit(6);
	for (uint32_t p = 0; p < n; p++)
		if (!check_page(a + (size_t)p * PG, ((uint64_t)9 << 32) | p))
			_exit(3);
	_exit(0);
}

/*
 * One server that is its own arbiter, 32 MiB: a -1000 client holds half,
 * a batch job pages the rest through libspillway with a 4 MiB budget and no
 * room to take pages back. Asked, it cannot give enough; at the deadline
 * the arbiter revokes its newest extents, and the job's next touch of a
 * lost page is SIGBUS. The -1000 client keeps every page.
 */
static void a_victim_that_cannot_comply_gets_sigbus_not_zeros(void **state)
{
	(void)state;
	assert_int_equal(srv_start(&srv[0], "--capacity", "32M", POLICY_AS_ASKED, "--arbiter",
				   "--report-interval-ms", "50", "--reclaim-deadline-ms", "1000",
				   NULL), 0);
	struct client *keeper = session(srv[0].url, "keeper", -1000, 0);
	uint8_t page[PG];
	struct taken kid[8];
	struct client *on[NSERVERS] = { keeper, keeper, keeper };
	for (int i = 0; i < 8; i++)
		assert_true(take_anywhere(on, page, &kid[i]));
	int stage[2];
	assert_int_equal(pipe(stage), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(stage[0]);
		victim_child(&srv[0], stage[1]);
	}
	close(stage[1]);
	/* "F": filled, "R": revoked; then the SIGBUS must come from reading. */
	char got[4] = "";
	ssize_t len = 0, r;
	while (len < 3 && (r = read(stage[0], got + len, (size_t)(3 - len))) > 0)
		len += r;
	close(stage[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_string_equal(got, "FR");
	if (!WIFSIGNALED(st))
		fail_msg("the victim exited with %d instead of dying of SIGBUS", WEXITSTATUS(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
	assert_int_equal(intact(on, kid, 8), 8);
	client_close(keeper);
	assert_int_equal(srv_stop(&srv[0]), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_victim_that_cannot_comply_gets_sigbus_not_zeros),
		cmocka_unit_test(the_pager_is_asked_first_and_complies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
