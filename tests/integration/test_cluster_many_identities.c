/* SPDX-License-Identifier: MIT */
/*
 * A server with more identities than one report could list: 20,000 names
 * with 64 characters, left in their grace period, on a server reporting to
 * an arbiter. Its reports must still reach the arbiter: cluster status
 * shows the server up, with the use of a client that allocates after the
 * flood, and that client's cluster total. (Listing every identity took
 * more than one control frame: the report was refused, and the arbiter
 * counted the server down.)
 *
 * And more clients holding memory than one cluster status could list:
 * 16,000 over two servers, every one in `spillctl clients` (cluster totals,
 * which the arbiter sends in pages).
 */
#include <poll.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

#define IDENTITIES 20000
#define EXTENT     (2ull * 1024 * 1024)

/* Does the arbiter's cluster status show url up, using used bytes, and
 * client name holding used over the cluster? */
static int reported(struct client *arb, const char *url, const char *name, uint64_t used)
{
	Spillway__AdminClusterStatus q = SPILLWAY__ADMIN_CLUSTER_STATUS__INIT;
	Spillway__Ctrl *m = ctrl_request(arb, SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS, &q);
	const Spillway__AdminClusterStatusReply *r = m->admin_cluster_status_reply;
	int server = 0, client = 0;
	for (size_t i = 0; i < r->n_servers; i++)
		server |= !strcmp(r->servers[i]->url, url) && r->servers[i]->up &&
			  r->servers[i]->used_bytes == used;
	for (size_t i = 0; i < r->n_clients; i++)
		client |= !strcmp(r->clients[i]->name, name) && r->clients[i]->used_bytes == used;
	ctrl_free(m);
	return server && client;
}

static void reports_reach_the_arbiter_past_a_frame_of_identities(void **state)
{
	(void)state;
	struct srv arb = { 0 }, s = { 0 };
	assert_int_equal(srv_start(&arb, "--capacity", "16M", "--arbiter", "--report-interval-ms",
				   "50", NULL), 0);
	char arbiter_url[64];
	snprintf(arbiter_url, sizeof(arbiter_url), "%s", arb.url);
	assert_int_equal(srv_start(&s, "--capacity", "16M", "--arbiter-url", arbiter_url,
				   "--report-interval-ms", "50", "--grace", "3600",
				   "--max-identities", "30000", "--max-identities-per-key", "30000",
				   NULL), 0);
	for (int i = 0; i < IDENTITIES; i++) {
		char name[80];
		/* Long names, as a flood would use: 64 characters. */
		snprintf(name, sizeof(name), "id-%05d-%055d", i, 0);
		client_close(connect_as(&s, name, NULL));
	}
	assert_int_equal(srv_metric(&s, "spillway_clients"), IDENTITIES);

	/* A client allocates after the flood: only a report made since
	 * tells the arbiter. */
	struct client *holder = connect_as(&s, "holder", NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(holder, 1, -1, &e), 0);
	struct client *admin = connect_to(arb.url, NULL, NULL);
	int ok = 0;
	for (int i = 0; i < 1000 && !ok; i++) { /* 20 s at most */
		ok = reported(admin, s.url, "holder", EXTENT);
		if (!ok)
			poll(NULL, 0, 20);
	}
	if (!ok)
		fail_msg("the arbiter never saw the server's report with 'holder' in it%s",
			 srv_log_has(&s, "report refused") ? " (report refused)" : "");
	client_close(admin);
	client_close(holder);
	assert_int_equal(srv_stop(&s), 0);
	assert_int_equal(srv_stop(&arb), 0);
}

#define HOLDERS_PER_SERVER 8000

/* A client name holding one extent on s, left in its grace period. */
static void hold_one(const struct srv *s, const char *name)
{
	struct client *c = connect_as(s, name, NULL);
	struct client_extent e;
	assert_int_equal(client_alloc_extents(c, 1, -1, &e), 0);
	client_close(c);
}

/* Lines of `spillctl clients --json` through url naming a holder. */
static int holders_listed(const char *url, char *out, size_t cap)
{
	if (run_capture(out, cap, SPILLCTL_PATH, "--server", url, "--json", "clients", NULL))
		fail_msg("spillctl clients: %s", run_stderr);
	int n = 0;
	for (const char *p = out; (p = strstr(p, "\"name\":\"h-")); p++)
		n++;
	return n;
}

static void cluster_clients_are_listed_in_pages(void **state)
{
	(void)state;
	struct srv srv[2] = { 0 };
	assert_int_equal(srv_start(&srv[0], "--capacity", "64M", "--extent-size", "4K", "--grace",
				   "3600", "--max-identities", "20000", "--max-identities-per-key",
				   "20000", "--report-interval-ms", "50", "--arbiter", NULL), 0);
	assert_int_equal(srv_start(&srv[1], "--capacity", "64M", "--extent-size", "4K", "--grace",
				   "3600", "--max-identities", "20000", "--max-identities-per-key",
				   "20000", "--report-interval-ms", "50", "--arbiter-url", srv[0].url,
				   NULL), 0);
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < HOLDERS_PER_SERVER; i++) {
			char name[80];
			snprintf(name, sizeof(name), "h-%d-%05d-%054d", s, i, 0);
			hold_one(&srv[s], name);
		}
	size_t cap = 8u << 20;
	char *out = malloc(cap);
	assert_non_null(out);
	int n = 0;
	/* Until both servers' latest reports are in (100 tries at most). */
	for (int i = 0; i < 100 && n != 2 * HOLDERS_PER_SERVER; i++) {
		if ((n = holders_listed(srv[0].url, out, cap)) != 2 * HOLDERS_PER_SERVER)
			poll(NULL, 0, 200);
	}
	assert_int_equal(n, 2 * HOLDERS_PER_SERVER);
	/* In name order, each once. */
	const char *prev = NULL;
	for (const char *p = out; (p = strstr(p, "\"name\":\"h-")); p++) {
		if (prev)
			assert_true(strncmp(prev, p, 70) < 0);
		prev = p;
	}
	free(out);
	assert_int_equal(srv_stop(&srv[1]), 0);
	assert_int_equal(srv_stop(&srv[0]), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reports_reach_the_arbiter_past_a_frame_of_identities),
		cmocka_unit_test(cluster_clients_are_listed_in_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
