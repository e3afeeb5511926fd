/* SPDX-License-Identifier: MIT */
/*
 * A server with more identities than one report could list: 20,000 names
 * with 64 characters, left in their grace period, on a server reporting to
 * an arbiter. Its reports must still reach the arbiter: cluster status
 * shows the server up, with the use of a client that allocates after the
 * flood, and that client's cluster total. (Listing every identity took
 * more than one control frame: the report was refused, and the arbiter
 * counted the server down.)
 */
#include <poll.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"

#define IDENTITIES 20000
#define EXTENT     (2ull * 1024 * 1024)

static void register_named(const struct srv *s, const char *name)
{
	struct client_opts o = { .name = name, .timeout_ms = 20000 };
	struct client *c;
	char err[256] = "";
	if (client_connect(s->url, &o, &c, err, sizeof(err)))
		fail_msg("register %s: %s", name, err);
	client_close(c);
}

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
		register_named(&s, name);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reports_reach_the_arbiter_past_a_frame_of_identities),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
