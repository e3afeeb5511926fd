/* SPDX-License-Identifier: MIT */
/*
 * server/wire/wire_cluster: every field of the cluster's plain structs
 * survives the trip to protobuf, through ctrl_pack/ctrl_unpack (the bytes a
 * peer sends), and back; the replies the control gate sends carry what the
 * arbiter said; a real arbiter's reply to a report makes the same trip.
 * (Reclaim and Drain notices are packed by server/wire/wire_notify, see
 * test_wire_notify.) The largest report a server sends
 * (PEER_REPORT_CLIENTS_MAX clients, every field at its widest) fits one
 * control frame.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "arbiter.h"
#include "ctrl.h"
#include "peer_report.h"
#include "wire.h"
#include "wire_cluster.h"

/* --- helpers ---------------------------------------------------------------- */

/* m packed and unpacked as a peer would receive it (ctrl_free it). */
static Spillway__Ctrl *over_the_wire(const Spillway__Ctrl *m)
{
	uint8_t *buf = malloc(SPILL_MAX_CTRL_PAYLOAD);
	assert_non_null(buf);
	int len = ctrl_pack(m, buf, SPILL_MAX_CTRL_PAYLOAD);
	assert_true(len > 0);
	int err;
	const char *why = NULL;
	Spillway__Ctrl *out = ctrl_unpack(buf, (size_t)len, &err, &why);
	if (!out)
		fail_msg("unpack: %s", why);
	free(buf);
	return out;
}

static const struct node_usage nodes_a[] = {
	{ .node = 0, .capacity = 1ull << 33, .used = 12345 << 12 },
	{ .node = 3, .capacity = 1ull << 34, .used = (1ull << 34) - 4096 },
};
static const struct node_usage nodes_b[] = { { .node = 7, .capacity = 99 << 21, .used = 1 } };

static struct server_info server_a(void)
{
	struct server_info si = { .capacity = 3ull << 33, .used = 777 << 21,
				  .report_age_ms = 1234, .draining = 1, .up = 1, .arbiter = 0,
				  .nodes = nodes_a, .nnodes = 2 };
	snprintf(si.url, sizeof(si.url), "tcp://10.1.2.3:7707");
	snprintf(si.id, sizeof(si.id), "server-a-0123456789abcdef");
	return si;
}

static struct server_info server_b(void)
{
	struct server_info si = { .capacity = 99 << 21, .used = 0, .report_age_ms = 0,
				  .draining = 0, .up = 0, .arbiter = 1, .nodes = nodes_b,
				  .nnodes = 1 };
	snprintf(si.url, sizeof(si.url), "rdma://[fe80::1]:7708");
	snprintf(si.id, sizeof(si.id), "b");
	return si;
}

static void assert_same_server(const struct server_info *x, const struct server_info *y)
{
	assert_string_equal(x->url, y->url);
	assert_string_equal(x->id, y->id);
	assert_int_equal(x->capacity, y->capacity);
	assert_int_equal(x->used, y->used);
	assert_int_equal(x->report_age_ms, y->report_age_ms);
	assert_int_equal(x->draining, y->draining);
	assert_int_equal(x->up, y->up);
	assert_int_equal(x->arbiter, y->arbiter);
	assert_int_equal(x->nnodes, y->nnodes);
	for (size_t i = 0; i < x->nnodes; i++) {
		assert_int_equal(x->nodes[i].node, y->nodes[i].node);
		assert_int_equal(x->nodes[i].capacity, y->nodes[i].capacity);
		assert_int_equal(x->nodes[i].used, y->nodes[i].used);
	}
}

static void assert_same_pb_server(const Spillway__ServerInfo *p, const struct server_info *x)
{
	assert_string_equal(p->url, x->url);
	assert_string_equal(p->server_id, x->id);
	assert_int_equal(p->capacity_bytes, x->capacity);
	assert_int_equal(p->used_bytes, x->used);
	assert_int_equal(p->report_age_ms, x->report_age_ms);
	assert_int_equal(p->draining, x->draining);
	assert_int_equal(p->up, x->up);
	assert_int_equal(p->arbiter, x->arbiter);
	assert_int_equal(p->n_nodes, x->nnodes);
	for (size_t i = 0; i < x->nnodes; i++) {
		assert_int_equal(p->nodes[i]->node, x->nodes[i].node);
		assert_int_equal(p->nodes[i]->capacity_bytes, x->nodes[i].capacity);
		assert_int_equal(p->nodes[i]->used_bytes, x->nodes[i].used);
	}
}

/* --- the tests --------------------------------------------------------------- */

static void a_peer_report_survives_the_wire(void **state)
{
	(void)state;
	struct client_usage clients[3] = {
		{ .priority = -1000, .reservation = 1ull << 40, .limit = UINT64_MAX,
		  .used = 5ull << 21, .connections = 0 },
		{ .priority = 1000, .reservation = 0, .limit = 1, .used = 0, .connections = 7 },
		{ .priority = 0, .reservation = 3, .limit = 4, .used = 5, .connections = 1 },
	};
	snprintf(clients[0].name, sizeof(clients[0].name), "%s",
		 "a-name-of-sixty-four-characters-0123456789012345678901234567890");
	snprintf(clients[1].name, sizeof(clients[1].name), "nbd:disk.1");
	snprintf(clients[2].name, sizeof(clients[2].name), "x");
	struct peer_report in = { .server = server_a(), .clients = clients, .nclients = 3 };

	struct wire_msg m;
	assert_int_equal(wire_cluster_peer_report(&in, &m), 0);
	Spillway__Ctrl *got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	assert_int_equal(got->msg_case, SPILLWAY__CTRL__MSG_PEER_REPORT);

	struct peer_report out;
	assert_int_equal(wire_cluster_peer_report_from(got->peer_report, &out), 0);
	ctrl_free(got);
	assert_same_server(&out.server, &in.server);
	assert_int_equal(out.nclients, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(out.clients[i].name, clients[i].name);
		assert_int_equal(out.clients[i].priority, clients[i].priority);
		assert_int_equal(out.clients[i].reservation, clients[i].reservation);
		assert_int_equal(out.clients[i].limit, clients[i].limit);
		assert_int_equal(out.clients[i].used, clients[i].used);
		assert_int_equal(out.clients[i].connections, clients[i].connections);
	}
	wire_cluster_peer_report_free(&out);
}

static void an_arbiter_reply_survives_the_wire(void **state)
{
	(void)state;
	struct server_info servers[2] = { server_a(), server_b() };
	struct client_budget budgets[2] = { { .used_elsewhere = 1 },
					    { .used_elsewhere = UINT64_MAX - 1 } };
	snprintf(budgets[0].name, sizeof(budgets[0].name), "alpha");
	snprintf(budgets[1].name, sizeof(budgets[1].name), "beta.2");
	struct peer_action actions[2] = {
		{ .kind = PEER_ACTION_RECLAIM, .bytes = 6ull << 21, .deadline_ms = 1500,
		  .decision_id = 41 },
		{ .kind = PEER_ACTION_REVOKE, .bytes = 4096, .deadline_ms = 0, .decision_id = 42 },
	};
	snprintf(actions[0].client, sizeof(actions[0].client), "alpha");
	snprintf(actions[1].client, sizeof(actions[1].client), "gamma");
	struct arbiter_reply in = { .servers = servers, .nservers = 2, .cluster_full = 1,
				    .budgets = budgets, .nbudgets = 2, .actions = actions,
				    .nactions = 2 };

	struct wire_msg m;
	assert_int_equal(wire_cluster_arbiter_reply(&in, &m), 0);
	Spillway__Ctrl *got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	assert_int_equal(got->msg_case, SPILLWAY__CTRL__MSG_PEER_REPORT_REPLY);

	struct arbiter_reply out;
	assert_int_equal(wire_cluster_arbiter_reply_from(got->peer_report_reply, &out), 0);
	ctrl_free(got);
	assert_int_equal(out.nservers, 2);
	assert_same_server(&out.servers[0], &servers[0]);
	assert_same_server(&out.servers[1], &servers[1]);
	assert_int_equal(out.cluster_full, 1);
	assert_int_equal(out.nbudgets, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(out.budgets[i].name, budgets[i].name);
		assert_int_equal(out.budgets[i].used_elsewhere, budgets[i].used_elsewhere);
	}
	assert_int_equal(out.nactions, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(out.actions[i].kind, actions[i].kind);
		assert_string_equal(out.actions[i].client, actions[i].client);
		assert_int_equal(out.actions[i].bytes, actions[i].bytes);
		assert_int_equal(out.actions[i].deadline_ms, actions[i].deadline_ms);
		assert_int_equal(out.actions[i].decision_id, actions[i].decision_id);
	}
	arbiter_reply_free(&out);
}

static void status_events_and_members_carry_every_field(void **state)
{
	(void)state;
	struct server_info servers[2] = { server_a(), server_b() };
	struct cluster_client cc = { .priority = -5, .reservation = 10, .limit = 20, .used = 30,
				     .pending = 40, .badness = -123456789012ll, .servers = 3 };
	snprintf(cc.name, sizeof(cc.name), "victim");
	struct cluster_status st = { .servers = servers, .nservers = 2, .capacity = 1ull << 40,
				     .used = 1ull << 39, .high_pct = 91, .low_pct = 79,
				     .decisions = 17, .clients = &cc, .nclients = 1 };
	snprintf(st.next_after, sizeof(st.next_after), "victim");
	struct wire_msg m;
	assert_int_equal(wire_cluster_status(&st, &m), 0);
	Spillway__Ctrl *got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	const Spillway__AdminClusterStatusReply *r = got->admin_cluster_status_reply;
	assert_int_equal(r->n_servers, 2);
	assert_same_pb_server(r->servers[0], &servers[0]);
	assert_same_pb_server(r->servers[1], &servers[1]);
	assert_int_equal(r->capacity_bytes, st.capacity);
	assert_int_equal(r->used_bytes, st.used);
	assert_int_equal(r->high_pct, 91);
	assert_int_equal(r->low_pct, 79);
	assert_int_equal(r->decisions, 17);
	assert_string_equal(r->next_after, "victim");
	assert_int_equal(r->n_clients, 1);
	assert_string_equal(r->clients[0]->name, "victim");
	assert_int_equal(r->clients[0]->priority, -5);
	assert_int_equal(r->clients[0]->reservation_bytes, 10);
	assert_int_equal(r->clients[0]->limit_bytes, 20);
	assert_int_equal(r->clients[0]->used_bytes, 30);
	assert_int_equal(r->clients[0]->pending_bytes, 40);
	assert_true(r->clients[0]->badness == -123456789012ll);
	assert_int_equal(r->clients[0]->servers, 3);
	ctrl_free(got);

	struct cluster_event e = { .seq = 5, .time_ms = 1700000000123ull, .bytes = 6,
				   .used = 7, .capacity = 8, .decision_id = 9, .badness = -10 };
	snprintf(e.kind, sizeof(e.kind), "revoke");
	snprintf(e.client, sizeof(e.client), "victim");
	snprintf(e.server, sizeof(e.server), "tcp://10.1.2.3:7707");
	snprintf(e.reason, sizeof(e.reason), "ignored reclaim 9");
	struct cluster_events ev = { .events = &e, .nevents = 1, .last_seq = 11 };
	assert_int_equal(wire_cluster_events(&ev, &m), 0);
	got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	const Spillway__AdminEventsReply *er = got->admin_events_reply;
	assert_int_equal(er->last_seq, 11);
	assert_int_equal(er->n_events, 1);
	const Spillway__Event *pe = er->events[0];
	assert_int_equal(pe->seq, 5);
	assert_int_equal(pe->time_ms, e.time_ms);
	assert_int_equal(pe->bytes, 6);
	assert_int_equal(pe->cluster_used_bytes, 7);
	assert_int_equal(pe->cluster_capacity_bytes, 8);
	assert_int_equal(pe->decision_id, 9);
	assert_true(pe->badness == -10);
	assert_string_equal(pe->kind, "revoke");
	assert_string_equal(pe->client, "victim");
	assert_string_equal(pe->server, e.server);
	assert_string_equal(pe->reason, e.reason);
	ctrl_free(got);

	struct cluster_members cm = { .servers = servers, .nservers = 2, .cluster_full = 1 };
	snprintf(cm.arbiter_url, sizeof(cm.arbiter_url), "tcp://10.9.9.9:1");
	assert_int_equal(wire_cluster_members(&cm, &m), 0);
	got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	assert_int_equal(got->cluster_info_reply->n_servers, 2);
	assert_same_pb_server(got->cluster_info_reply->servers[1], &servers[1]);
	assert_string_equal(got->cluster_info_reply->arbiter_url, cm.arbiter_url);
	assert_int_equal(got->cluster_info_reply->cluster_full, 1);
	ctrl_free(got);

	assert_int_equal(wire_cluster_drain_reply(&servers[0], &m), 0);
	got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	assert_same_pb_server(got->admin_drain_reply->server, &servers[0]);
	ctrl_free(got);
}

static void reclaim_answers(void **state)
{
	(void)state;
	Spillway__ReclaimReply rr = SPILLWAY__RECLAIM_REPLY__INIT;
	rr.reclaim_id = 77;
	rr.freed_bytes = 12345;
	struct reclaim_answer a = wire_cluster_reclaim_answer(&rr);
	assert_int_equal(a.reclaim_id, 77);
	assert_int_equal(a.freed_bytes, 12345);
}

/* Two servers report to a real arbiter through the wire; the second hears
 * the first's bytes as the shared client's budget, and both servers. */
static void an_arbiter_answers_reports_from_the_wire(void **state)
{
	(void)state;
	struct arbiter_config cfg = { .high_pct = 90, .low_pct = 80, .deadline_ms = 1000,
				      .interval_ms = 1000 };
	struct arbiter *arb = arbiter_create(&cfg);
	assert_non_null(arb);
	struct client_usage shared = { .priority = 0, .limit = 1ull << 30, .used = 4ull << 21,
				       .connections = 1 };
	snprintf(shared.name, sizeof(shared.name), "shared");
	struct peer_report reps[2] = {
		{ .server = server_a(), .clients = &shared, .nclients = 1 },
		{ .server = server_b(), .clients = &shared, .nclients = 1 },
	};
	struct arbiter_reply reply = { 0 };
	for (int i = 0; i < 2; i++) {
		struct wire_msg m;
		assert_int_equal(wire_cluster_peer_report(&reps[i], &m), 0);
		Spillway__Ctrl *got = over_the_wire(&m.ctrl);
		wire_cluster_msg_free(&m);
		struct peer_report in;
		assert_int_equal(wire_cluster_peer_report_from(got->peer_report, &in), 0);
		ctrl_free(got);
		arbiter_reply_free(&reply);
		assert_int_equal(arbiter_report(arb, &in, &reply), 0);
		wire_cluster_peer_report_free(&in);
	}
	struct wire_msg m;
	assert_int_equal(wire_cluster_arbiter_reply(&reply, &m), 0);
	Spillway__Ctrl *got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	arbiter_reply_free(&reply);
	assert_int_equal(wire_cluster_arbiter_reply_from(got->peer_report_reply, &reply), 0);
	ctrl_free(got);
	assert_int_equal(reply.nservers, 2);
	assert_string_equal(reply.servers[0].url, "tcp://10.1.2.3:7707");
	assert_int_equal(reply.servers[0].nnodes, 2);
	assert_int_equal(reply.servers[0].nodes[1].node, 3);
	assert_string_equal(reply.servers[1].url, "rdma://[fe80::1]:7708");
	assert_int_equal(reply.servers[1].up, 1);
	assert_int_equal(reply.nbudgets, 1);
	assert_string_equal(reply.budgets[0].name, "shared");
	assert_int_equal(reply.budgets[0].used_elsewhere, 4ull << 21);
	arbiter_reply_free(&reply);
	arbiter_destroy(arb);
}

/* PEER_REPORT_CLIENTS_MAX clients with 64-character names and every number
 * at its widest, from a server with the longest URL and 256 nodes: packed,
 * it fits the frame, and comes back whole. */
static void the_largest_report_fits_one_frame(void **state)
{
	(void)state;
	struct node_usage nodes[256];
	for (int i = 0; i < 256; i++)
		nodes[i] = (struct node_usage){ .node = UINT32_MAX - (uint32_t)i,
						.capacity = UINT64_MAX, .used = UINT64_MAX };
	struct peer_report r = { .server = { .capacity = UINT64_MAX, .used = UINT64_MAX,
					     .report_age_ms = UINT64_MAX, .draining = 1, .up = 1,
					     .arbiter = 1, .nodes = nodes, .nnodes = 256 } };
	memset(r.server.url, 'u', sizeof(r.server.url) - 1);
	memset(r.server.id, 'i', sizeof(r.server.id) - 1);
	struct client_usage *cs = calloc(PEER_REPORT_CLIENTS_MAX, sizeof(*cs));
	assert_non_null(cs);
	for (int i = 0; i < PEER_REPORT_CLIENTS_MAX; i++) {
		cs[i] = (struct client_usage){ .priority = i % 2 ? -1000 : 1000,
					       .reservation = UINT64_MAX, .limit = UINT64_MAX,
					       .used = UINT64_MAX, .connections = UINT32_MAX };
		snprintf(cs[i].name, sizeof(cs[i].name), "%064d", i);
	}
	r.clients = cs;
	r.nclients = PEER_REPORT_CLIENTS_MAX;
	struct wire_msg m;
	assert_int_equal(wire_cluster_peer_report(&r, &m), 0);
	assert_true(ctrl_packed_size(&m.ctrl) <= SPILL_MAX_CTRL_PAYLOAD);
	Spillway__Ctrl *got = over_the_wire(&m.ctrl);
	wire_cluster_msg_free(&m);
	assert_int_equal(got->peer_report->n_clients, PEER_REPORT_CLIENTS_MAX);
	assert_int_equal(got->peer_report->server->n_nodes, 256);
	assert_string_equal(got->peer_report->clients[PEER_REPORT_CLIENTS_MAX - 1]->name,
			    cs[PEER_REPORT_CLIENTS_MAX - 1].name);
	ctrl_free(got);
	free(cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_peer_report_survives_the_wire),
		cmocka_unit_test(an_arbiter_reply_survives_the_wire),
		cmocka_unit_test(status_events_and_members_carry_every_field),
		cmocka_unit_test(reclaim_answers),
		cmocka_unit_test(an_arbiter_answers_reports_from_the_wire),
		cmocka_unit_test(the_largest_report_fits_one_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
