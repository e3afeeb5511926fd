/* SPDX-License-Identifier: MIT */
/*
 * Control messages, checked against the connection's state:
 *   HELLO      -> Hello
 *   AUTH       -> Auth
 *   READY      -> Register, AdminStatus, AdminClientSet
 *   REGISTERED -> AllocExtent, FreeExtent, Stats, ReclaimReply, admin requests
 * Anything before authentication other than the handshake closes the
 * connection; a misplaced request afterwards gets an Error reply.
 *
 * Which message is accepted in which state, with which privilege, and on
 * which server, is the table at the end of this file; control_gate.c checks
 * it before any handler runs, and sets the roles a session holds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbiter.h"
#include "cluster.h"
#include "config.h"
#include "conn.h"
#include "control_gate.h"
#include "log.h"
#include "nbd_export.h"
#include "rdma_access.h"
#include "reclaim.h"
#include "registry.h"
#include "server.h"
#include "wire_cluster.h"
#include "wire_nbd.h"
#include "wire_registry.h"

static uint16_t status_of(int err)
{
	return frame_errno_to_status(err);
}

static void send_reply(struct conn *c, const struct frame_hdr *h,
		       Spillway__Ctrl__MsgCase kind, void *msg)
{
	Spillway__Ctrl m = SPILLWAY__CTRL__INIT;
	m.msg_case = kind;
	m.hello = msg; /* every case is a pointer in the same union */
	conn_reply_ctrl(c, h, &m);
}

static void on_hello(struct conn *c, const struct frame_hdr *h, const Spillway__Hello *m)
{
	struct server *s = c->srv;
	if (m->version != SPILL_WIRE_VERSION) {
		conn_reply_error(c, h, SPILL_ST_EPROTO, "unsupported protocol version");
		conn_fail(c, STATS_ERR_PROTOCOL, "unsupported protocol version");
		return;
	}
	memcpy(c->client_nonce, m->client_nonce.data, sizeof(c->client_nonce));
	if (auth_random(c->server_nonce, sizeof(c->server_nonce))) {
		conn_reply_error(c, h, SPILL_ST_EINTERNAL, "no randomness");
		conn_fail(c, STATS_ERR_PROTOCOL, "no randomness for a nonce");
		return;
	}
	Spillway__HelloReply r = SPILLWAY__HELLO_REPLY__INIT;
	r.version = SPILL_WIRE_VERSION;
	int need_auth = control_gate_role_hello(c);
	r.auth_required = need_auth;
	r.server_nonce.data = c->server_nonce;
	r.server_nonce.len = sizeof(c->server_nonce);
	r.max_inflight = s->opt.max_inflight;
	r.max_batch_pages = SPILL_MAX_BATCH_PAGES;
	r.extent_bytes = s->opt.extent_size;
	r.server_id = s->server_id;
	send_reply(c, h, SPILLWAY__CTRL__MSG_HELLO_REPLY, &r);
	c->state = need_auth ? CONN_AUTH : CONN_READY;
}

static void on_auth(struct conn *c, const struct frame_hdr *h, const Spillway__Auth *m)
{
	struct server *s = c->srv;
	const struct auth_psk *key = NULL;
	if (!auth_check(&s->psk, AUTH_ROLE_CLIENT, c->server_nonce, c->client_nonce, m->mac.data)) {
		key = &s->psk;
	} else if (s->have_admin_psk && !auth_check(&s->admin_psk, AUTH_ROLE_CLIENT, c->server_nonce,
						     c->client_nonce, m->mac.data)) {
		key = &s->admin_psk;
	}
	if (!key) {
		conn_reply_error(c, h, SPILL_ST_EAUTH, "authentication failed");
		conn_fail(c, STATS_ERR_AUTH, "authentication failed (wrong pre-shared key)");
		return;
	}
	control_gate_role_auth(c, key == &s->admin_psk);
	uint8_t mac[AUTH_MAC_BYTES];
	auth_mac(key, AUTH_ROLE_SERVER, c->server_nonce, c->client_nonce, mac);
	Spillway__AuthReply r = SPILLWAY__AUTH_REPLY__INIT;
	r.mac.data = mac;
	r.mac.len = sizeof(mac);
	send_reply(c, h, SPILLWAY__CTRL__MSG_AUTH_REPLY, &r);
	c->state = CONN_READY;
}

static void on_register(struct conn *c, const struct frame_hdr *h, const Spillway__Register *m)
{
	if (c->state == CONN_REGISTERED) {
		conn_reply_error(c, h, SPILL_ST_EINVAL, "connection already registered");
		return;
	}
	const char *why = NULL;
	int resumed = 0;
	struct reg_client *rc_client;
	enum reg_principal who = (c->roles & GATE_ROLE_OPERATOR) ? REG_PRINCIPAL_OPERATOR
								 : REG_PRINCIPAL_CLIENT;
	struct reg_request req;
	int rc = wire_registry_request(m, &req);
	if (rc)
		why = "client name too long or token not 16 bytes";
	else
		rc = registry_register(c->srv->reg, &req, who, &rc_client, &resumed, &why);
	if (rc) {
		conn_reply_error(c, h, status_of(rc), why ? why : strerror(-rc));
		return;
	}
	c->client = rc_client;
	c->state = CONN_REGISTERED;
	rdma_access_registered(c);
	registry_claim_ctrl(c->srv->reg, rc_client, c->serial);

	struct reg_extent_info *ext = NULL;
	size_t n = 0;
	if (resumed && registry_extents_of(c->srv->reg, rc_client, &ext, &n))
		n = 0;
	Spillway__ExtentInfo *infos = calloc(n ? n : 1, sizeof(*infos));
	Spillway__ExtentInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!infos || !ptrs)
		n = 0;
	wire_registry_extents(ext, n, infos, ptrs);
	Spillway__RegisterReply r = SPILLWAY__REGISTER_REPLY__INIT;
	r.client_id = rc_client->id;
	r.token.data = rc_client->token;
	r.token.len = sizeof(rc_client->token);
	r.resumed = resumed;
	r.n_extents = n;
	r.extents = ptrs;
	r.priority = rc_client->priority;
	r.reservation_bytes = rc_client->reservation;
	r.limit_bytes = rc_client->limit;
	r.write_version = atomic_load(&rc_client->wver_max);
	send_reply(c, h, SPILLWAY__CTRL__MSG_REGISTER_REPLY, &r);
	cluster_client_registered(c->srv, rc_client->name);
	log_info("%s: client '%s' %s (id %llu, %zu extents)", c->peer, rc_client->name,
		 resumed ? "resumed" : "registered", (unsigned long long)rc_client->id, n);
	free(infos);
	free(ptrs);
	free(ext);
}

static void on_alloc(struct conn *c, const struct frame_hdr *h, const Spillway__AllocExtent *m)
{
	struct reg_extent_info out[CTRL_ALLOC_MAX];
	/* "Any" (-1) means the node of the device the connection came in on. */
	int node = m->node >= 0 ? m->node : c->node;
	int rc = registry_alloc(c->srv->reg, c->client, m->count, node, out);
	if (rc) {
		enum stats_err kind = rc == -EDQUOT ? STATS_ERR_OVER_LIMIT : STATS_ERR_POOL_FULL;
		metrics_inc(&server_stats.errors[kind], 1);
		int full, draining;
		registry_cluster_state(c->srv->reg, &full, &draining);
		conn_reply_error(c, h, status_of(rc),
				 rc == -EDQUOT ? "client limit reached (over the cluster)"
				 : rc != -ENOSPC ? strerror(-rc)
				 : draining ? "server draining: place extents elsewhere"
				 : full ? "cluster above its high watermark: only reservations are admitted"
					: "pool full (or only reserved memory left)");
		return;
	}
	Spillway__ExtentInfo infos[CTRL_ALLOC_MAX], *ptrs[CTRL_ALLOC_MAX];
	wire_registry_extents(out, m->count, infos, ptrs);
	Spillway__AllocExtentReply r = SPILLWAY__ALLOC_EXTENT_REPLY__INIT;
	r.n_extents = m->count;
	r.extents = ptrs;
	send_reply(c, h, SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY, &r);
}

static void on_free(struct conn *c, const struct frame_hdr *h, const Spillway__FreeExtent *m)
{
	Spillway__FreeExtentReply r = SPILLWAY__FREE_EXTENT_REPLY__INIT;
	r.freed = (uint32_t)registry_free(c->srv->reg, c->client, m->extent_ids, m->n_extent_ids);
	send_reply(c, h, SPILLWAY__CTRL__MSG_FREE_EXTENT_REPLY, &r);
}

static void on_stats(struct conn *c, const struct frame_hdr *h)
{
	struct server *s = c->srv;
	Spillway__NodeStats store[s->pools->npools], *nodes[s->pools->npools];
	struct node_usage usage[s->pools->npools];
	Spillway__StatsReply r = SPILLWAY__STATS_REPLY__INIT;
	uint64_t reserved;
	unsigned nclients;
	registry_totals(s->reg, &r.used_bytes, &reserved, &nclients);
	r.capacity_bytes = s->pools->capacity;
	r.n_nodes = wire_cluster_node_stats(usage, cluster_node_usage(s, usage), store, nodes);
	r.nodes = nodes;
	struct reg_client_stats self;
	Spillway__ClientStats self_msg;
	if (!registry_one_client_stats(s->reg, c->client->name, &self)) {
		wire_registry_stats(&self, &self_msg);
		r.self = &self_msg;
	}
	send_reply(c, h, SPILLWAY__CTRL__MSG_STATS_REPLY, &r);
}

/* Clients per AdminStatus reply at most: 1000 of the largest fit a control
 * frame several times over. */
#define ADMIN_STATUS_PAGE_MAX 1000

static void on_admin_status(struct conn *c, const struct frame_hdr *h, const Spillway__AdminStatus *m)
{
	struct server *s = c->srv;
	Spillway__NodeStats store[s->pools->npools], *nodes[s->pools->npools];
	struct node_usage usage[s->pools->npools];
	Spillway__AdminStatusReply r = SPILLWAY__ADMIN_STATUS_REPLY__INIT;
	unsigned nclients;
	r.server_id = s->server_id;
	r.version = SPILL_VERSION;
	r.uptime_ms = registry_now_ms() - s->start_ms;
	r.capacity_bytes = s->pools->capacity;
	r.extent_bytes = s->opt.extent_size;
	registry_totals(s->reg, &r.used_bytes, &r.reserved_bytes, &nclients);
	r.n_nodes = wire_cluster_node_stats(usage, cluster_node_usage(s, usage), store, nodes);
	r.nodes = nodes;
	r.clients_total = nclients;
	r.pinned_bytes = registry_pinned(s->reg);
	size_t max = m->max_clients && m->max_clients < ADMIN_STATUS_PAGE_MAX ? m->max_clients
									    : ADMIN_STATUS_PAGE_MAX;
	int more;
	size_t n = 0;
	struct reg_client_stats *page =
		registry_client_stats_page(s->reg, m->after_name, max, &n, &more);
	r.clients = page ? wire_registry_stats_list(page, n) : NULL;
	if (!r.clients) {
		free(page);
		conn_reply_error(c, h, SPILL_ST_EINTERNAL, "out of memory");
		return;
	}
	r.n_clients = n;
	r.next_after = more && n ? page[n - 1].name : "";
	send_reply(c, h, SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY, &r);
	free(r.clients);
	free(page);
}

static void on_admin_client_set(struct conn *c, const struct frame_hdr *h,
				const Spillway__AdminClientSet *m)
{
	struct reg_quota q = {
		.has_priority = m->set_priority, .priority = m->priority,
		.has_reservation = m->set_reservation, .reservation = m->reservation_bytes,
		.has_limit = m->set_limit, .limit = m->limit_bytes,
	};
	const char *why = NULL;
	int rc = registry_set_quota(c->srv->reg, m->name, &q, &why);
	if (rc) {
		conn_reply_error(c, h, status_of(rc), why ? why : strerror(-rc));
		return;
	}
	log_info("%s: quota for '%s' set by operator", c->peer, m->name);
	struct reg_client_stats now;
	if (registry_one_client_stats(c->srv->reg, m->name, &now) &&
	    registry_quota_stats(c->srv->reg, m->name, &now)) { /* else: the quota it will get */
		conn_reply_error(c, h, SPILL_ST_EINTERNAL,
				 "quota gone meanwhile (configuration reloaded)");
		return;
	}
	Spillway__ClientStats msg;
	wire_registry_stats(&now, &msg);
	Spillway__AdminClientSetReply r = SPILLWAY__ADMIN_CLIENT_SET_REPLY__INIT;
	r.client = &msg;
	send_reply(c, h, SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY, &r);
}

static void on_admin_reclaim(struct conn *c, const struct frame_hdr *h,
			     const Spillway__AdminReclaim *m)
{
	uint64_t id;
	int rc = reclaim_send(c->srv, m->name, m->bytes, m->deadline_ms, &id);
	if (rc) {
		conn_reply_error(c, h, status_of(rc),
				 rc == -ENOENT ? "no connected client by that name" : strerror(-rc));
		return;
	}
	log_info("%s: operator asks '%s' for %llu bytes (reclaim %llu)", c->peer, m->name,
		 (unsigned long long)m->bytes, (unsigned long long)id);
	Spillway__AdminReclaimReply r = SPILLWAY__ADMIN_RECLAIM_REPLY__INIT;
	r.reclaim_id = id;
	send_reply(c, h, SPILLWAY__CTRL__MSG_ADMIN_RECLAIM_REPLY, &r);
}

/* --- cluster (cluster.c, arbiter.c) ------------------------------------------ */

/* Replies built by wire_cluster from plain structs (the out-of-memory
 * answer for a failed build included). */
static void send_built(struct conn *c, const struct frame_hdr *h, int rc, struct wire_msg *w)
{
	if (rc)
		conn_reply_error(c, h, SPILL_ST_EINTERNAL, "out of memory");
	else
		conn_reply_ctrl(c, h, &w->ctrl);
	wire_cluster_msg_free(w);
}

static void on_cluster_info(struct conn *c, const struct frame_hdr *h)
{
	struct cluster_members r;
	struct wire_msg w = { .mem = NULL };
	int rc = cluster_info(c->srv, &r);
	if (!rc)
		rc = wire_cluster_members(&r, &w);
	send_built(c, h, rc, &w);
	cluster_info_free(&r);
}

static void on_cluster(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	struct server *s = c->srv;
	struct wire_msg w = { .mem = NULL };
	int rc;
	switch (m->msg_case) {
	case SPILLWAY__CTRL__MSG_PEER_REPORT: {
		struct peer_report in;
		struct arbiter_reply r;
		if ((rc = wire_cluster_peer_report_from(m->peer_report, &in)))
			break;
		if (!(rc = arbiter_report(s->arbiter, &in, &r)))
			rc = wire_cluster_arbiter_reply(&r, &w);
		send_built(c, h, rc, &w);
		arbiter_reply_free(&r);
		wire_cluster_peer_report_free(&in);
		return;
	}
	case SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS: {
		struct cluster_status r;
		if (!(rc = arbiter_status(s->arbiter, m->admin_cluster_status->after_name,
					  m->admin_cluster_status->max_clients, &r)))
			rc = wire_cluster_status(&r, &w);
		send_built(c, h, rc, &w);
		arbiter_status_free(&r);
		return;
	}
	default: {
		struct cluster_events r;
		if (!(rc = arbiter_events(s->arbiter, m->admin_events->after_seq,
					  m->admin_events->max, &r)))
			rc = wire_cluster_events(&r, &w);
		send_built(c, h, rc, &w);
		arbiter_events_free(&r);
		return;
	}
	}
	send_built(c, h, rc, &w);
}

static void on_admin_drain(struct conn *c, const struct frame_hdr *h, const Spillway__AdminDrain *m)
{
	struct server *s = c->srv;
	log_info("%s: operator %s this server", c->peer, m->drain ? "drains" : "undrains");
	cluster_set_draining(s, m->drain);
	struct node_usage nodes[s->pools->npools];
	struct server_info self;
	cluster_self_info(s, &self, nodes);
	struct wire_msg w = { .mem = NULL };
	send_built(c, h, wire_cluster_drain_reply(&self, &w), &w);
}

/* NBD exports (nbd_export.c): create and delete need operator privilege
 * (the gate checks it). */
static const struct nbd_export_info *export_info(const char *name, struct nbd_export_info **all,
						 size_t *n)
{
	*all = nbd_export_list(n);
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*all)[i].name, name))
			return &(*all)[i];
	return NULL;
}

static void on_admin_export(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	const char *why = NULL;
	struct nbd_export_info *all = NULL;
	size_t n = 0;
	int rc = 0;
	if (m->msg_case == SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST) {
		Spillway__AdminExportListReply r = SPILLWAY__ADMIN_EXPORT_LIST_REPLY__INIT;
		all = nbd_export_list(&n);
		r.exports = wire_nbd_export_list(all, n);
		r.n_exports = r.exports ? n : 0;
		send_reply(c, h, SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST_REPLY, &r);
		free(r.exports);
		nbd_export_list_free(all);
		return;
	}
	if (m->msg_case == SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE) {
		const Spillway__AdminExportCreate *q = m->admin_export_create;
		rc = nbd_export_create(q->name, q->size_bytes, q->client, &why);
		const struct nbd_export_info *x = NULL;
		if (!rc && !(x = export_info(q->name, &all, &n)))
			rc = -ENOENT; /* deleted at once by someone else */
		if (!rc) {
			Spillway__ExportInfo info;
			wire_nbd_export(x, &info);
			Spillway__AdminExportCreateReply r = SPILLWAY__ADMIN_EXPORT_CREATE_REPLY__INIT;
			r.info = &info;
			send_reply(c, h, SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE_REPLY, &r);
		}
	} else {
		rc = nbd_export_delete(m->admin_export_delete->name, &why);
		Spillway__AdminExportDeleteReply r = SPILLWAY__ADMIN_EXPORT_DELETE_REPLY__INIT;
		if (!rc)
			send_reply(c, h, SPILLWAY__CTRL__MSG_ADMIN_EXPORT_DELETE_REPLY, &r);
	}
	if (rc)
		conn_reply_error(c, h, rc == -EEXIST ? SPILL_ST_EBUSY : status_of(rc),
				 why ? why : strerror(-rc));
	nbd_export_list_free(all);
}

/* --- the table --------------------------------------------------------------
 * One row per message a client may send; control_gate.c checks state,
 * privilege and "arbiter only" before the handler runs. Handlers that take
 * the message body get it through these one-line adapters. */

static void do_hello(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_hello(c, h, m->hello);
}
static void do_auth(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_auth(c, h, m->auth);
}
static void do_register(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_register(c, h, m->register_);
}
static void do_alloc(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_alloc(c, h, m->alloc_extent);
}
static void do_free(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_free(c, h, m->free_extent);
}
static void do_stats(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	(void)m;
	on_stats(c, h);
}
static void do_reclaim_reply(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	(void)h;
	if (c->state == CONN_REGISTERED) { /* an answer: never replied to */
		struct reclaim_answer a = wire_cluster_reclaim_answer(m->reclaim_reply);
		reclaim_answered(c, &a);
	}
}
static void do_admin_status(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_admin_status(c, h, m->admin_status);
}
static void do_admin_client_set(struct conn *c, const struct frame_hdr *h,
				const Spillway__Ctrl *m)
{
	on_admin_client_set(c, h, m->admin_client_set);
}
static void do_admin_reclaim(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_admin_reclaim(c, h, m->admin_reclaim);
}
static void do_cluster_info(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	(void)m;
	on_cluster_info(c, h);
}
static void do_admin_drain(struct conn *c, const struct frame_hdr *h, const Spillway__Ctrl *m)
{
	on_admin_drain(c, h, m->admin_drain);
}

/* One row per message: the states it is accepted in (AFTER_AUTH = READY or
 * REGISTERED), the privilege it needs, whether only the arbiter serves it,
 * its handler, and the action a refusal names. */
#define MSG(k) SPILLWAY__CTRL__MSG_##k
#define AFTER_AUTH GATE_AFTER_AUTH
#define REGISTERED GATE_IN(CONN_REGISTERED)
static const struct gate_rule control_table[] = {
	{ MSG(HELLO),                 GATE_IN(CONN_HELLO), GATE_ANYONE,   0, do_hello, "Hello" },
	{ MSG(AUTH),                  GATE_IN(CONN_AUTH),  GATE_ANYONE,   0, do_auth, "Auth" },
	{ MSG(REGISTER),              AFTER_AUTH,          GATE_ANYONE,   0, do_register, "registering" },
	{ MSG(ALLOC_EXTENT),          REGISTERED,          GATE_ANYONE,   0, do_alloc, "allocating" },
	{ MSG(FREE_EXTENT),           REGISTERED,          GATE_ANYONE,   0, do_free, "freeing" },
	{ MSG(STATS),                 REGISTERED,          GATE_ANYONE,   0, do_stats, "stats" },
	{ MSG(RECLAIM_REPLY),         AFTER_AUTH,          GATE_ANYONE,   0, do_reclaim_reply, "reclaim reply" },
	{ MSG(ADMIN_STATUS),          AFTER_AUTH,          GATE_ANYONE,   0, do_admin_status, "status" },
	{ MSG(ADMIN_CLIENT_SET),      AFTER_AUTH,          GATE_OPERATOR, 0, do_admin_client_set, "changing quotas" },
	{ MSG(ADMIN_RECLAIM),         AFTER_AUTH,          GATE_OPERATOR, 0, do_admin_reclaim, "asking for reclaim" },
	{ MSG(ADMIN_DRAIN),           AFTER_AUTH,          GATE_OPERATOR, 0, do_admin_drain, "draining" },
	{ MSG(ADMIN_EXPORT_LIST),     AFTER_AUTH,          GATE_ANYONE,   0, on_admin_export, "listing exports" },
	{ MSG(ADMIN_EXPORT_CREATE),   AFTER_AUTH,          GATE_OPERATOR, 0, on_admin_export, "changing exports" },
	{ MSG(ADMIN_EXPORT_DELETE),   AFTER_AUTH,          GATE_OPERATOR, 0, on_admin_export, "changing exports" },
	{ MSG(CLUSTER_INFO),          AFTER_AUTH,          GATE_ANYONE,   0, do_cluster_info, "cluster info" },
	{ MSG(PEER_REPORT),           AFTER_AUTH,          GATE_PEER,     1, on_cluster, "reporting to the arbiter" },
	{ MSG(ADMIN_CLUSTER_STATUS),  AFTER_AUTH,          GATE_ANYONE,   1, on_cluster, "cluster status" },
	{ MSG(ADMIN_EVENTS),          AFTER_AUTH,          GATE_ANYONE,   1, on_cluster, "events" },
};
#undef MSG
#undef AFTER_AUTH
#undef REGISTERED

void control_handle(struct conn *c, const struct frame_hdr *h, const uint8_t *payload)
{
	int err;
	const char *why;
	Spillway__Ctrl *m = ctrl_unpack(payload, h->payload_len, &err, &why);
	if (!m) {
		conn_reply_error(c, h, SPILL_ST_EPROTO, why);
		conn_fail(c, STATS_ERR_PROTOCOL, why);
		return;
	}
	const struct gate_rule *r;
	if (control_gate_pass(c, h, m, control_table,
			      sizeof(control_table) / sizeof(control_table[0]), &r))
		r->handler(c, h, m);
	ctrl_free(m);
}
