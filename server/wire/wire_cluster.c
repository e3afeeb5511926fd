/* SPDX-License-Identifier: MIT */
#include "wire_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"

_Static_assert(CLUSTER_NAME_MAX == CTRL_NAME_MAX, "client names: one limit");
_Static_assert(CLUSTER_SERVERS_MAX == CTRL_CLUSTER_MAX, "servers per cluster: one limit");

/* Everything a built message points into: a list of blocks. */
struct wire_mem {
	struct wire_mem *next;
	max_align_t data[];
};

/* n zeroed bytes that live as long as m. */
static void *msg_alloc(struct wire_msg *m, size_t n)
{
	struct wire_mem *b = calloc(1, sizeof(*b) + (n ? n : 1));
	if (!b)
		return NULL;
	b->next = m->mem;
	m->mem = b;
	return b->data;
}

static void msg_init(struct wire_msg *m)
{
	spillway__ctrl__init(&m->ctrl);
	m->mem = NULL;
}

void wire_cluster_msg_free(struct wire_msg *m)
{
	while (m->mem) {
		struct wire_mem *b = m->mem;
		m->mem = b->next;
		free(b);
	}
	spillway__ctrl__init(&m->ctrl);
}

/* n message structs of size each, and n pointers to them, as protobuf-c's
 * repeated fields want them; *v is the pointer array. 0 or -ENOMEM. */
static int msg_array(struct wire_msg *m, size_t n, size_t each, void ***v, void **items)
{
	*v = msg_alloc(m, n * sizeof(void *));
	*items = msg_alloc(m, n * each);
	if (!*v || !*items)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		(*v)[i] = (char *)*items + i * each;
	return 0;
}

/* --- plain -> protobuf ---------------------------------------------------------- */

size_t wire_cluster_node_stats(const struct node_usage *u, size_t n, Spillway__NodeStats *store,
			       Spillway__NodeStats **ptrs)
{
	for (size_t i = 0; i < n; i++) {
		spillway__node_stats__init(&store[i]);
		store[i].node = u[i].node;
		store[i].capacity_bytes = u[i].capacity;
		store[i].used_bytes = u[i].used;
		ptrs[i] = &store[i];
	}
	return n;
}

/* The one ServerInfo builder. */
static int server_info_pb(struct wire_msg *m, const struct server_info *si,
			  Spillway__ServerInfo *out)
{
	spillway__server_info__init(out);
	out->url = (char *)si->url;
	out->server_id = (char *)si->id;
	out->capacity_bytes = si->capacity;
	out->used_bytes = si->used;
	out->draining = si->draining;
	out->up = si->up;
	out->report_age_ms = si->report_age_ms;
	out->arbiter = si->arbiter;
	if (!si->nnodes)
		return 0;
	Spillway__NodeStats *store = msg_alloc(m, si->nnodes * sizeof(*store));
	out->nodes = msg_alloc(m, si->nnodes * sizeof(*out->nodes));
	if (!store || !out->nodes)
		return -ENOMEM;
	out->n_nodes = wire_cluster_node_stats(si->nodes, si->nnodes, store, out->nodes);
	return 0;
}

static int servers_pb(struct wire_msg *m, const struct server_info *v, size_t n,
		      Spillway__ServerInfo ***out, size_t *nout)
{
	Spillway__ServerInfo *items;
	if (msg_array(m, n, sizeof(*items), (void ***)out, (void **)&items))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (server_info_pb(m, &v[i], &items[i]))
			return -ENOMEM;
	*nout = n;
	return 0;
}

int wire_cluster_peer_report(const struct peer_report *r, struct wire_msg *m)
{
	msg_init(m);
	Spillway__PeerReport *pr = msg_alloc(m, sizeof(*pr));
	Spillway__ServerInfo *si = msg_alloc(m, sizeof(*si));
	Spillway__ClientStats *cs;
	if (!pr || !si)
		return -ENOMEM;
	spillway__peer_report__init(pr);
	m->ctrl.msg_case = SPILLWAY__CTRL__MSG_PEER_REPORT;
	m->ctrl.peer_report = pr;
	pr->server = si;
	if (server_info_pb(m, &r->server, si) ||
	    msg_array(m, r->nclients, sizeof(*cs), (void ***)&pr->clients, (void **)&cs))
		return -ENOMEM;
	for (size_t i = 0; i < r->nclients; i++) {
		const struct client_usage *u = &r->clients[i];
		spillway__client_stats__init(&cs[i]);
		cs[i].name = (char *)u->name;
		cs[i].priority = u->priority;
		cs[i].reservation_bytes = u->reservation;
		cs[i].limit_bytes = u->limit;
		cs[i].used_bytes = u->used;
		cs[i].connections = u->connections;
	}
	pr->n_clients = r->nclients;
	return 0;
}

int wire_cluster_arbiter_reply(const struct arbiter_reply *r, struct wire_msg *m)
{
	msg_init(m);
	Spillway__PeerReportReply *rep = msg_alloc(m, sizeof(*rep));
	Spillway__ClientBudget *b;
	Spillway__PeerAction *a;
	if (!rep)
		return -ENOMEM;
	spillway__peer_report_reply__init(rep);
	m->ctrl.msg_case = SPILLWAY__CTRL__MSG_PEER_REPORT_REPLY;
	m->ctrl.peer_report_reply = rep;
	rep->cluster_full = r->cluster_full;
	if (servers_pb(m, r->servers, r->nservers, &rep->servers, &rep->n_servers) ||
	    msg_array(m, r->nbudgets, sizeof(*b), (void ***)&rep->budgets, (void **)&b) ||
	    msg_array(m, r->nactions, sizeof(*a), (void ***)&rep->actions, (void **)&a))
		return -ENOMEM;
	for (size_t i = 0; i < r->nbudgets; i++) {
		spillway__client_budget__init(&b[i]);
		b[i].name = (char *)r->budgets[i].name;
		b[i].used_elsewhere = r->budgets[i].used_elsewhere;
	}
	rep->n_budgets = r->nbudgets;
	for (size_t i = 0; i < r->nactions; i++) {
		const struct peer_action *pa = &r->actions[i];
		spillway__peer_action__init(&a[i]);
		a[i].kind = pa->kind == PEER_ACTION_REVOKE ? SPILLWAY__PEER_ACTION__KIND__REVOKE
							   : SPILLWAY__PEER_ACTION__KIND__RECLAIM;
		a[i].client = (char *)pa->client;
		a[i].bytes = pa->bytes;
		a[i].deadline_ms = pa->deadline_ms;
		a[i].decision_id = pa->decision_id;
	}
	rep->n_actions = r->nactions;
	return 0;
}

int wire_cluster_status(const struct cluster_status *st, struct wire_msg *m)
{
	msg_init(m);
	Spillway__AdminClusterStatusReply *r = msg_alloc(m, sizeof(*r));
	Spillway__ClusterClient *cc;
	if (!r)
		return -ENOMEM;
	spillway__admin_cluster_status_reply__init(r);
	m->ctrl.msg_case = SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS_REPLY;
	m->ctrl.admin_cluster_status_reply = r;
	r->capacity_bytes = st->capacity;
	r->used_bytes = st->used;
	r->high_pct = st->high_pct;
	r->low_pct = st->low_pct;
	r->decisions = st->decisions;
	r->next_after = (char *)st->next_after;
	if (servers_pb(m, st->servers, st->nservers, &r->servers, &r->n_servers) ||
	    msg_array(m, st->nclients, sizeof(*cc), (void ***)&r->clients, (void **)&cc))
		return -ENOMEM;
	for (size_t i = 0; i < st->nclients; i++) {
		const struct cluster_client *c = &st->clients[i];
		spillway__cluster_client__init(&cc[i]);
		cc[i].name = (char *)c->name;
		cc[i].priority = c->priority;
		cc[i].reservation_bytes = c->reservation;
		cc[i].limit_bytes = c->limit;
		cc[i].used_bytes = c->used;
		cc[i].pending_bytes = c->pending;
		cc[i].badness = c->badness;
		cc[i].servers = c->servers;
	}
	r->n_clients = st->nclients;
	return 0;
}

int wire_cluster_events(const struct cluster_events *ev, struct wire_msg *m)
{
	msg_init(m);
	Spillway__AdminEventsReply *r = msg_alloc(m, sizeof(*r));
	Spillway__Event *e;
	if (!r)
		return -ENOMEM;
	spillway__admin_events_reply__init(r);
	m->ctrl.msg_case = SPILLWAY__CTRL__MSG_ADMIN_EVENTS_REPLY;
	m->ctrl.admin_events_reply = r;
	r->last_seq = ev->last_seq;
	if (msg_array(m, ev->nevents, sizeof(*e), (void ***)&r->events, (void **)&e))
		return -ENOMEM;
	for (size_t i = 0; i < ev->nevents; i++) {
		const struct cluster_event *x = &ev->events[i];
		spillway__event__init(&e[i]);
		e[i].seq = x->seq;
		e[i].time_ms = x->time_ms;
		e[i].kind = (char *)x->kind;
		e[i].client = (char *)x->client;
		e[i].server = (char *)x->server;
		e[i].bytes = x->bytes;
		e[i].badness = x->badness;
		e[i].cluster_used_bytes = x->used;
		e[i].cluster_capacity_bytes = x->capacity;
		e[i].decision_id = x->decision_id;
		e[i].reason = (char *)x->reason;
	}
	r->n_events = ev->nevents;
	return 0;
}

int wire_cluster_members(const struct cluster_members *cm, struct wire_msg *m)
{
	msg_init(m);
	Spillway__ClusterInfoReply *r = msg_alloc(m, sizeof(*r));
	if (!r)
		return -ENOMEM;
	spillway__cluster_info_reply__init(r);
	m->ctrl.msg_case = SPILLWAY__CTRL__MSG_CLUSTER_INFO_REPLY;
	m->ctrl.cluster_info_reply = r;
	r->arbiter_url = (char *)cm->arbiter_url;
	r->cluster_full = cm->cluster_full;
	return servers_pb(m, cm->servers, cm->nservers, &r->servers, &r->n_servers);
}

int wire_cluster_drain_reply(const struct server_info *si, struct wire_msg *m)
{
	msg_init(m);
	Spillway__AdminDrainReply *r = msg_alloc(m, sizeof(*r));
	Spillway__ServerInfo *pb = msg_alloc(m, sizeof(*pb));
	if (!r || !pb)
		return -ENOMEM;
	spillway__admin_drain_reply__init(r);
	m->ctrl.msg_case = SPILLWAY__CTRL__MSG_ADMIN_DRAIN_REPLY;
	m->ctrl.admin_drain_reply = r;
	r->server = pb;
	return server_info_pb(m, si, pb);
}

/* --- protobuf -> plain ---------------------------------------------------------- */

/* si's fields, with its nodes copied into nodes (si->n_nodes entries). */
static void server_info_from(const Spillway__ServerInfo *si, struct server_info *out,
			     struct node_usage *nodes)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->url, sizeof(out->url), "%s", si->url);
	snprintf(out->id, sizeof(out->id), "%s", si->server_id);
	out->capacity = si->capacity_bytes;
	out->used = si->used_bytes;
	out->report_age_ms = si->report_age_ms;
	out->draining = si->draining;
	out->up = si->up;
	out->arbiter = si->arbiter;
	for (size_t i = 0; i < si->n_nodes; i++)
		nodes[i] = (struct node_usage){ .node = si->nodes[i]->node,
						.capacity = si->nodes[i]->capacity_bytes,
						.used = si->nodes[i]->used_bytes };
	out->nodes = si->n_nodes ? nodes : NULL;
	out->nnodes = si->n_nodes;
}

int wire_cluster_peer_report_from(const Spillway__PeerReport *m, struct peer_report *r)
{
	memset(r, 0, sizeof(*r));
	const Spillway__ServerInfo *si = m->server;
	struct node_usage *nodes = malloc((si->n_nodes ? si->n_nodes : 1) * sizeof(*nodes));
	struct client_usage *cs = malloc((m->n_clients ? m->n_clients : 1) * sizeof(*cs));
	if (!nodes || !cs) {
		free(nodes);
		free(cs);
		return -ENOMEM;
	}
	server_info_from(si, &r->server, nodes);
	r->server.nodes = nodes; /* owned even when empty */
	for (size_t i = 0; i < m->n_clients; i++) {
		const Spillway__ClientStats *c = m->clients[i];
		cs[i] = (struct client_usage){ .priority = c->priority,
					       .reservation = c->reservation_bytes,
					       .limit = c->limit_bytes, .used = c->used_bytes,
					       .connections = c->connections };
		snprintf(cs[i].name, sizeof(cs[i].name), "%s", c->name);
	}
	r->clients = cs;
	r->nclients = m->n_clients;
	return 0;
}

void wire_cluster_peer_report_free(struct peer_report *r)
{
	free((void *)r->server.nodes);
	free((void *)r->clients);
	memset(r, 0, sizeof(*r));
}

int wire_cluster_arbiter_reply_from(const Spillway__PeerReportReply *m, struct arbiter_reply *r)
{
	memset(r, 0, sizeof(*r));
	size_t nnodes = 0;
	for (size_t i = 0; i < m->n_servers; i++)
		nnodes += m->servers[i]->n_nodes;
	r->servers = malloc((m->n_servers ? m->n_servers : 1) * sizeof(*r->servers));
	r->node_store = malloc((nnodes ? nnodes : 1) * sizeof(*r->node_store));
	r->budgets = malloc((m->n_budgets ? m->n_budgets : 1) * sizeof(*r->budgets));
	r->actions = malloc((m->n_actions ? m->n_actions : 1) * sizeof(*r->actions));
	if (!r->servers || !r->node_store || !r->budgets || !r->actions) {
		free(r->servers);
		free(r->node_store);
		free(r->budgets);
		free(r->actions);
		memset(r, 0, sizeof(*r));
		return -ENOMEM;
	}
	nnodes = 0;
	for (size_t i = 0; i < m->n_servers; i++) {
		server_info_from(m->servers[i], &r->servers[i], r->node_store + nnodes);
		nnodes += m->servers[i]->n_nodes;
	}
	r->nservers = m->n_servers;
	r->cluster_full = m->cluster_full;
	for (size_t i = 0; i < m->n_budgets; i++) {
		snprintf(r->budgets[i].name, sizeof(r->budgets[i].name), "%s", m->budgets[i]->name);
		r->budgets[i].used_elsewhere = m->budgets[i]->used_elsewhere;
	}
	r->nbudgets = m->n_budgets;
	for (size_t i = 0; i < m->n_actions; i++) {
		const Spillway__PeerAction *a = m->actions[i];
		struct peer_action *pa = &r->actions[i];
		*pa = (struct peer_action){
			.kind = a->kind == SPILLWAY__PEER_ACTION__KIND__REVOKE ? PEER_ACTION_REVOKE
									     : PEER_ACTION_RECLAIM,
			.bytes = a->bytes, .deadline_ms = a->deadline_ms,
			.decision_id = a->decision_id };
		snprintf(pa->client, sizeof(pa->client), "%s", a->client);
	}
	r->nactions = m->n_actions;
	return 0;
}

struct reclaim_answer wire_cluster_reclaim_answer(const Spillway__ReclaimReply *m)
{
	return (struct reclaim_answer){ .reclaim_id = m->reclaim_id, .freed_bytes = m->freed_bytes };
}
