/* SPDX-License-Identifier: MIT */
/*
 * The cluster arbiter with three real servers on loopback: one --arbiter,
 * two reporting to it. Clients here use the core library directly, so each
 * one does exactly what the test needs: ignore a Reclaim, sit at -1000, or
 * stay inside its reservation. (The pager complying with a Reclaim is
 * tests/pager/test_pager_arbiter.c.) Every wait is a bounded poll.
 */
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl.h"
#include "harness.h"

#define MIB      (1024ull * 1024)
#define EXTENT   (2 * MIB)
#define NSERVERS 3

static struct srv srv[NSERVERS];
static char arbiter_url[64];

/* A loopback port nobody listens on now, for a listener that must keep its
 * URL across a restart. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void start_arbiter(struct srv *s, const char *listen)
{
	assert_int_equal(srv_start(s, "--capacity", "32M", POLICY_AS_ASKED, "--arbiter", "--listen", listen,
				   "--report-interval-ms", "50", "--reclaim-deadline-ms", "1500",
				   NULL), 0);
}

/* Three servers of 32 MiB (16 extents each): 0 arbitrates, 1 and 2 report. */
static void cluster_start(void)
{
	snprintf(arbiter_url, sizeof(arbiter_url), "tcp://127.0.0.1:%d", free_port());
	start_arbiter(&srv[0], arbiter_url);
	for (int i = 1; i < NSERVERS; i++)
		assert_int_equal(srv_start(&srv[i], "--capacity", "32M", POLICY_AS_ASKED, "--arbiter-url",
					   arbiter_url, "--report-interval-ms", "50", NULL), 0);
}

static void cluster_stop(void)
{
	for (int i = 0; i < NSERVERS; i++)
		assert_int_equal(srv_stop(&srv[i]), 0);
}

static struct client *admin_session(const char *url)
{
	struct client_opts o = { .timeout_ms = 10000 };
	struct client *c;
	char why[256];
	if (client_connect(url, &o, &c, why, sizeof(why)))
		fail_msg("admin session to %s: %s", url, why);
	return c;
}

static Spillway__Ctrl *cluster_status(struct client *arb)
{
	Spillway__AdminClusterStatus q = SPILLWAY__ADMIN_CLUSTER_STATUS__INIT;
	return ctrl_request(arb, SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS, &q);
}

static int servers_up(struct client *arb)
{
	Spillway__Ctrl *m = cluster_status(arb);
	int up = 0;
	for (size_t i = 0; i < m->admin_cluster_status_reply->n_servers; i++)
		up += m->admin_cluster_status_reply->servers[i]->up;
	ctrl_free(m);
	return up;
}

/* Poll (20 ms steps, at most 20 s) until cond(arb, arg) holds. */
static void wait_for(int (*cond)(struct client *, const void *), struct client *arb,
		     const void *arg, const char *what)
{
	for (int i = 0; i < 1000; i++) {
		if (cond(arb, arg))
			return;
		poll(NULL, 0, 20);
	}
	fail_msg("timed out waiting for %s", what);
}

static int all_up(struct client *arb, const void *arg)
{
	(void)arg;
	return servers_up(arb) == NSERVERS;
}

/* cluster_start, then an admin session on the arbiter once all report. */
static struct client *cluster_up(void)
{
	cluster_start();
	struct client *arb = admin_session(srv[0].url);
	wait_for(all_up, arb, NULL, "three servers up");
	return arb;
}

struct want_event {
	const char *kind, *client;
};

/* The first event of kind for client, copied into out (reason, badness). */
static int find_event(struct client *arb, const char *kind, const char *client,
		      char *reason, size_t cap)
{
	Spillway__AdminEvents q = SPILLWAY__ADMIN_EVENTS__INIT;
	Spillway__Ctrl *m = ctrl_request(arb, SPILLWAY__CTRL__MSG_ADMIN_EVENTS, &q);
	int found = 0;
	for (size_t i = 0; i < m->admin_events_reply->n_events && !found; i++) {
		const Spillway__Event *e = m->admin_events_reply->events[i];
		if (!strcmp(e->kind, kind) && (!client || !strcmp(e->client, client))) {
			found = 1;
			if (reason)
				snprintf(reason, cap, "%s", e->reason);
		}
	}
	ctrl_free(m);
	return found;
}

static int has_event(struct client *arb, const void *arg)
{
	const struct want_event *w = arg;
	return find_event(arb, w->kind, w->client, NULL, 0);
}

/* A client of one server, with its quota. */
static struct client *client_on(const struct srv *s, const char *name, int priority,
				uint64_t reservation, uint64_t limit)
{
	struct client_opts o = { .name = name, .priority = priority, .reservation = reservation,
				 .limit = limit, .timeout_ms = 10000 };
	struct client *c;
	char why[256];
	if (client_connect(s->url, &o, &c, why, sizeof(why)))
		fail_msg("%s on %s: %s", name, s->url, why);
	return c;
}

/* count extents for c, each with a known first page; ids appended to ids. */
static void take(struct client *c, unsigned count, uint64_t *ids, unsigned *n)
{
	struct client_extent e[16];
	assert_true(count <= 16);
	assert_int_equal(client_alloc_extents(c, count, -1, e), 0);
	uint8_t page[4096];
	for (unsigned i = 0; i < count; i++) {
		fill_page(page, e[i].id);
		assert_int_equal(client_write(c, e[i].id, 0, 1, page), 0);
		ids[(*n)++] = e[i].id;
	}
}

/* How many of the extents still read back their page; the others must be
 * gone (ENOENT), never zeros or someone else's bytes. */
static unsigned intact(struct client *c, const uint64_t *ids, unsigned n)
{
	uint8_t page[4096];
	unsigned ok = 0;
	for (unsigned i = 0; i < n; i++) {
		int rc = client_read(c, ids[i], 0, 1, page, NULL);
		if (rc == 0) {
			assert_true(check_page(page, ids[i]));
			ok++;
		} else {
			assert_int_equal(rc, -ENOENT);
		}
	}
	return ok;
}

struct holding {
	const char *name;
	uint64_t bytes;
};

/* The arbiter counts name at or below bytes over the cluster. */
static int holds_at_most(struct client *arb, const void *arg)
{
	const struct holding *h = arg;
	Spillway__Ctrl *m = cluster_status(arb);
	const Spillway__AdminClusterStatusReply *r = m->admin_cluster_status_reply;
	int ok = 0;
	for (size_t i = 0; i < r->n_clients; i++)
		if (!strcmp(r->clients[i]->name, h->name))
			ok = r->clients[i]->used_bytes <= h->bytes;
	ctrl_free(m);
	return ok;
}

/*
 * The cluster passes its high watermark. The only client eligible is the
 * one above its reservation with a priority above -1000: it is asked,
 * ignores the request, and loses what it was asked for when the deadline
 * passes. A -1000 client with plenty beyond its (zero) reservation and a
 * client inside its reservation are never asked, and keep every page.
 */
static void an_ignored_reclaim_is_revoked_and_only_the_victim_pays(void **state)
{
	(void)state;
	struct client *arb = cluster_up();

	/* The victim first, while the cluster is empty: 26 extents (52 MiB). */
	uint64_t vid[32], kid[16], did[16];
	unsigned nv = 0, nk = 0, nd = 0;
	struct client *v[NSERVERS];
	v[0] = client_on(&srv[0], "batch", 500, 0, 0);
	v[1] = client_on(&srv[1], "batch", 500, 0, 0);
	v[2] = client_on(&srv[2], "batch", 500, 0, 0);
	unsigned vn0 = 0, vn1 = 0;
	take(v[0], 8, vid, &nv);
	vn0 = nv;
	take(v[1], 6, vid, &nv);
	vn1 = nv;
	take(v[2], 12, vid, &nv);
	/* -1000: 16 MiB, none of it reserved. */
	struct client *k = client_on(&srv[0], "keeper", -1000, 0, 0);
	take(k, 8, kid, &nk);
	/* Inside its reservation: admitted even once the cluster is full. */
	struct client *d = client_on(&srv[1], "db", 0, 20 * MIB, 0);
	take(d, 10, did, &nd);
	/* 88 MiB of 96: past 90%. */

	struct want_event revoke = { "revoke", "batch" };
	wait_for(has_event, arb, &revoke, "the revocation of batch");
	char why[256];
	assert_true(find_event(arb, "reclaim", "batch", why, sizeof(why)));
	assert_non_null(strstr(why, "high watermark"));
	assert_true(find_event(arb, "revoke", "batch", why, sizeof(why)));
	assert_non_null(strstr(why, "ignored reclaim"));
	assert_false(find_event(arb, "reclaim", "keeper", NULL, 0));
	assert_false(find_event(arb, "reclaim", "db", NULL, 0));
	assert_false(find_event(arb, "revoke", "keeper", NULL, 0));
	assert_false(find_event(arb, "revoke", "db", NULL, 0));

	/* The revocation reaches the servers with their next reports. */
	wait_for(holds_at_most, arb, &(struct holding){ "batch", 40 * MIB },
		 "batch's extents to be taken back");
	/* Asked for down to 80% (76.8 MiB): at least 12 MiB went. */
	unsigned left = intact(v[0], vid, vn0) + intact(v[1], vid + vn0, vn1 - vn0) +
			intact(v[2], vid + vn1, nv - vn1);
	assert_true(left <= nv - 6);
	assert_true(left > 0); /* only what was asked, not everything */
	assert_int_equal(intact(k, kid, nk), nk);
	assert_int_equal(intact(d, did, nd), nd);

	for (int i = 0; i < NSERVERS; i++)
		client_close(v[i]);
	client_close(k);
	client_close(d);
	client_close(arb);
	cluster_stop();
}

static int cluster_full(struct client *arb, const void *arg)
{
	(void)arg;
	Spillway__ClusterInfo q = SPILLWAY__CLUSTER_INFO__INIT;
	Spillway__Ctrl *m = ctrl_request(arb, SPILLWAY__CTRL__MSG_CLUSTER_INFO, &q);
	int full = m->cluster_info_reply->cluster_full;
	ctrl_free(m);
	return full;
}

/*
 * When only reserved or -1000 memory is left, nobody is asked; the cluster
 * stays full, and admission holds it there: growth beyond a reservation is
 * refused with ENOSPC even on a server with room, growth inside one is
 * admitted.
 */
static void a_full_cluster_admits_only_reservations(void **state)
{
	(void)state;
	struct client *arb = cluster_up();
	uint64_t ids[64];
	unsigned n = 0;
	/* Servers 0 and 1 full of -1000 memory; db within its reservation on
	 * server 2, which has 4 extents free: 88 MiB of 96, past 90%. */
	struct client *k0 = client_on(&srv[0], "keeper", -1000, 0, 0);
	struct client *k1 = client_on(&srv[1], "keeper", -1000, 0, 0);
	take(k0, 16, ids, &n);
	take(k1, 16, ids, &n);
	struct client *d = client_on(&srv[2], "db", 0, 30 * MIB, 0);
	take(d, 12, ids, &n);

	/* Server 2 learns from the arbiter that the cluster is full. */
	struct client *s2 = admin_session(srv[2].url);
	wait_for(cluster_full, s2, NULL, "server 2 to see the cluster full");
	struct client *fresh = client_on(&srv[2], "newcomer", 0, 0, 0);
	struct client_extent e[4];
	assert_int_equal(client_alloc_extents(fresh, 1, -1, e), -ENOSPC);
	/* db still has 6 MiB of reservation: admitted. */
	assert_int_equal(client_alloc_extents(d, 1, -1, e), 0);

	/* Nobody was asked for anything: -1000 and reservations hold. */
	assert_false(find_event(arb, "reclaim", NULL, NULL, 0));
	assert_int_equal(intact(k0, ids, 16), 16);
	assert_int_equal(intact(k1, ids + 16, 16), 16);
	assert_int_equal(intact(d, ids + 32, 12), 12);
	client_close(fresh);
	client_close(d);
	client_close(k0);
	client_close(k1);
	client_close(s2);
	client_close(arb);
	cluster_stop();
}

/*
 * A client's limit counts its memory on every server: with 20 MiB here and
 * a 24 MiB limit, 4 extents more anywhere are refused with EDQUOT.
 */
static int sees_elsewhere(struct client *c, const void *arg)
{
	(void)arg;
	struct client_extent e[3];
	int rc = client_alloc_extents(c, 3, -1, e);
	if (rc == 0) { /* not yet: give them back and look again */
		uint64_t ids[3] = { e[0].id, e[1].id, e[2].id };
		assert_int_equal(client_free_extents(c, ids, 3), 0);
	}
	return rc == -EDQUOT;
}

static void a_limit_holds_across_servers(void **state)
{
	(void)state;
	struct client *arb = cluster_up();
	uint64_t ids[32];
	unsigned n = 0;
	struct client *a = client_on(&srv[1], "capped", 0, 0, 24 * MIB);
	struct client *b = client_on(&srv[2], "capped", 0, 0, 24 * MIB);
	take(a, 10, ids, &n); /* 20 MiB on server 1 */
	/* Server 2 alone would admit 12 more; once it hears of server 1's 20
	 * MiB, 3 more (6 MiB) pass the 24 MiB limit. */
	wait_for(sees_elsewhere, b, NULL, "server 2 to count server 1's 20 MiB");
	struct client_extent e[2];
	assert_int_equal(client_alloc_extents(b, 2, -1, e), 0); /* 24 MiB: at the limit */
	client_close(a);
	client_close(b);
	client_close(arb);
	cluster_stop();
}

static int servers_up_and_client(struct client *arb, const void *arg)
{
	const char *name = arg;
	Spillway__Ctrl *m = cluster_status(arb);
	const Spillway__AdminClusterStatusReply *r = m->admin_cluster_status_reply;
	int up = 0, seen = 0;
	for (size_t i = 0; i < r->n_servers; i++)
		up += r->servers[i]->up;
	for (size_t i = 0; i < r->n_clients; i++)
		seen |= !strcmp(r->clients[i]->name, name) && r->clients[i]->used_bytes == 20 * MIB;
	ctrl_free(m);
	return up == NSERVERS && seen;
}

/*
 * kill -9 of the arbiter: the servers go on serving (nothing a client
 * holds depends on it), and the restarted arbiter rebuilds the cluster's
 * state from their reports alone.
 */
static void killing_and_restarting_the_arbiter_loses_nothing(void **state)
{
	(void)state;
	struct client *arb = cluster_up();
	uint64_t ids[32];
	unsigned n = 0;
	struct client *a = client_on(&srv[1], "steady", 0, 0, 0);
	struct client *b = client_on(&srv[2], "steady", 0, 0, 0);
	take(a, 4, ids, &n);
	take(b, 6, ids, &n);
	wait_for(servers_up_and_client, arb, "steady", "the arbiter to count steady");
	client_close(arb);

	srv_kill(&srv[0]);
	/* Meanwhile the data path does not notice. */
	uint64_t more[8];
	unsigned m = 0;
	take(a, 2, more, &m);
	assert_int_equal(intact(a, ids, 4), 4);
	assert_int_equal(intact(b, ids + 4, 6), 6);
	struct client_extent e[1];
	assert_int_equal(client_alloc_extents(b, 1, -1, e), 0);
	uint64_t gone = e[0].id;
	assert_int_equal(client_free_extents(b, &gone, 1), 0);
	assert_int_equal(client_free_extents(a, more, 2), 0);

	/* The same URL again: the servers find it and report. */
	start_arbiter(&srv[0], arbiter_url);
	arb = admin_session(srv[0].url);
	wait_for(servers_up_and_client, arb, "steady", "the new arbiter to rebuild the totals");
	assert_int_equal(intact(a, ids, 4), 4);
	assert_int_equal(intact(b, ids + 4, 6), 6);
	client_close(a);
	client_close(b);
	client_close(arb);
	cluster_stop();
}

/* Arbiter requests elsewhere are refused with the arbiter's address. */
static void other_servers_point_at_the_arbiter(void **state)
{
	(void)state;
	cluster_start();
	struct client *s1 = admin_session(srv[1].url);
	Spillway__AdminEvents q = SPILLWAY__ADMIN_EVENTS__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *reply = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_ADMIN_EVENTS;
	req.admin_events = &q;
	char why[256] = "";
	assert_int_equal(client_ctrl(s1, &req, &reply, why, sizeof(why)), -EOPNOTSUPP);
	assert_non_null(strstr(why, arbiter_url));
	Spillway__ClusterInfo ci = SPILLWAY__CLUSTER_INFO__INIT;
	Spillway__Ctrl *m = ctrl_request(s1, SPILLWAY__CTRL__MSG_CLUSTER_INFO, &ci);
	assert_string_equal(m->cluster_info_reply->arbiter_url, arbiter_url);
	ctrl_free(m);
	client_close(s1);
	cluster_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_ignored_reclaim_is_revoked_and_only_the_victim_pays),
		cmocka_unit_test(a_full_cluster_admits_only_reservations),
		cmocka_unit_test(a_limit_holds_across_servers),
		cmocka_unit_test(killing_and_restarting_the_arbiter_loses_nothing),
		cmocka_unit_test(other_servers_point_at_the_arbiter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
