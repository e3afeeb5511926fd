/* SPDX-License-Identifier: MIT */
/*
 * Accounting: a client over its limit gets EDQUOT, a full pool ENOSPC, a
 * reservation stays available whatever others do, operator quotas (spillctl
 * client set, config file + SIGHUP) win over what a client asks for, and the
 * server keeps serving through all of it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

#define MB (1ull << 20)

static struct client *connect_quota(const struct srv *s, const char *name, uint64_t res,
				    uint64_t limit, int *err)
{
	struct client_opts o = { .name = name, .reservation = res, .limit = limit,
				 .timeout_ms = 10000 };
	struct client *c = NULL;
	*err = client_connect(s->url, &o, &c, NULL, 0);
	return c;
}

/* Allocate single extents until refused; returns how many and the error. */
static int alloc_until_refused(struct client *c, int *err)
{
	struct client_extent e;
	int n = 0;
	while ((*err = client_alloc_extents(c, 1, -1, &e)) == 0)
		n++;
	return n;
}

static void limit_and_full_pool_get_their_codes(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "32M", POLICY_AS_ASKED, NULL), 0); /* 16 extents */
	int err;
	struct client *capped = connect_quota(&s, "capped", 0, 8 * MB, &err);
	assert_int_equal(err, 0);
	assert_int_equal(alloc_until_refused(capped, &err), 4);
	assert_int_equal(err, -EDQUOT);

	struct client *greedy = connect_quota(&s, "greedy", 0, 0, &err);
	assert_int_equal(err, 0);
	assert_int_equal(alloc_until_refused(greedy, &err), 12);
	assert_int_equal(err, -ENOSPC);
	/* A multi-extent request that does not fit takes nothing. */
	struct client_extent two[2];
	assert_int_equal(client_alloc_extents(capped, 2, -1, two), -EDQUOT);

	/* Still serving: data on the full pool reads back. */
	uint8_t page[SPILL_PAGE_SIZE], got[SPILL_PAGE_SIZE];
	struct client_extent e;
	uint64_t freed_id;
	client_close(capped); /* grace keeps its extents: pool stays full */
	assert_int_equal(client_alloc_extents(greedy, 1, -1, &e), -ENOSPC);
	Spillway__Ctrl *st = admin_status(greedy);
	assert_int_equal(st->admin_status_reply->used_bytes, 32 * MB);
	ctrl_free(st);
	assert_true(srv_metric(&s, "spillway_errors_total{kind=\"pool_full\"}") >= 2);
	assert_true(srv_metric(&s, "spillway_errors_total{kind=\"over_limit\"}") >= 2);
	(void)freed_id;
	fill_page(page, 1);
	struct client *late = connect_quota(&s, "late", 0, 0, &err);
	assert_int_equal(err, 0);
	assert_int_equal(client_ping(late), 0);
	client_close(late);
	client_close(greedy);
	(void)got;
	assert_int_equal(srv_stop(&s), 0);
}

static void reservation_holds_against_a_greedy_neighbour(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "32M", POLICY_AS_ASKED, NULL), 0);
	int err;
	struct client *db = connect_quota(&s, "database", 12 * MB, 0, &err);
	assert_int_equal(err, 0);
	struct client *batch = connect_quota(&s, "batch", 0, 0, &err);
	assert_int_equal(err, 0);
	/* The batch job may only take what is not reserved: 32M - 12M. */
	assert_int_equal(alloc_until_refused(batch, &err), 10);
	assert_int_equal(err, -ENOSPC);
	/* The database gets its whole reservation, and no more. */
	assert_int_equal(alloc_until_refused(db, &err), 6);
	assert_int_equal(err, -ENOSPC);
	/* A reservation is only promised from memory nobody holds: with the
	 * pool now full, even a small one is refused. */
	struct client *late = connect_quota(&s, "late-reserver", 2 * MB, 0, &err);
	assert_null(late);
	assert_int_equal(err, -ENOSPC);
	/* A reservation beyond what is left is refused at registration. */
	struct client *big = connect_quota(&s, "big", 24 * MB, 0, &err);
	assert_null(big);
	assert_int_equal(err, -ENOSPC);
	client_close(db);
	client_close(batch);
	assert_int_equal(srv_stop(&s), 0);
}

static void operator_quota_wins_and_reloads_on_sighup(void **state)
{
	(void)state;
	struct srv s = { 0 };
	srv_write_config(&s, "# quotas\n[client tenant]\nlimit = 4M\npriority = -5\n");
	assert_int_equal(srv_start(&s, "--capacity", "32M", POLICY_AS_ASKED, "--config", s.config_path, NULL), 0);
	int err;
	/* The client asks for 20M; the config file caps it at 4M. */
	struct client *t = connect_quota(&s, "tenant", 0, 20 * MB, &err);
	assert_int_equal(err, 0);
	assert_int_equal(alloc_until_refused(t, &err), 2);
	assert_int_equal(err, -EDQUOT);

	/* spillctl raises it at run time. */
	char out[4096];
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "--json",
				     "client", "set", "tenant", "--limit", "8M", NULL), 0);
	assert_non_null(strstr(out, "\"limit_bytes\":8388608"));
	assert_non_null(strstr(out, "\"priority\":-5"));
	assert_int_equal(alloc_until_refused(t, &err), 2);
	assert_int_equal(err, -EDQUOT);

	/* Edit the file and SIGHUP: the new limit applies to the live client. */
	srv_write_config(&s, "[client tenant]\nlimit = 12M\npriority = 7\n");
	kill(s.pid, SIGHUP);
	/* Wait for the reload to show, bounded: poll the admin view. */
	int seen = 0;
	for (int i = 0; i < 200 && !seen; i++) {
		assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.url,
					     "--json", "clients", NULL), 0);
		seen = strstr(out, "\"limit_bytes\":12582912") != NULL;
		if (!seen) {
			struct client *probe = connect_quota(&s, "probe", 0, 0, &err);
			client_close(probe); /* a round trip: lets the signal land */
		}
	}
	assert_true(seen);
	assert_non_null(strstr(out, "\"priority\":7"));
	assert_int_equal(alloc_until_refused(t, &err), 2);
	assert_int_equal(err, -EDQUOT);
	client_close(t);
	unlink(s.config_path);
	assert_int_equal(srv_stop(&s), 0);
}

static void impossible_quota_is_refused_with_a_message(void **state)
{
	(void)state;
	struct srv s = { 0 };
	assert_int_equal(srv_start(&s, "--capacity", "16M", POLICY_AS_ASKED, NULL), 0);
	char out[4096];
	/* A name not yet connected: the reply is the stored quota, built up
	 * over several calls. */
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "--json",
				     "client", "set", "future", "--limit", "8M", NULL), 0);
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "--json",
				     "client", "set", "future", "--priority", "-3", NULL), 0);
	assert_non_null(strstr(out, "\"limit_bytes\":8388608"));
	assert_non_null(strstr(out, "\"priority\":-3"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "client",
				     "set", "x", "--reservation", "1G", NULL), 1);
	assert_non_null(strstr(run_stderr, "capacity"));
	assert_int_equal(run_capture(out, sizeof(out), SPILLCTL_PATH, "--server", s.admin_url, "client",
				     "set", "x", "--priority", "5000", NULL), 2);
	assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(limit_and_full_pool_get_their_codes),
		cmocka_unit_test(reservation_holds_against_a_greedy_neighbour),
		cmocka_unit_test(operator_quota_wins_and_reloads_on_sighup),
		cmocka_unit_test(impossible_quota_is_refused_with_a_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
