/* SPDX-License-Identifier: MIT */
#include "ctrl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int ctrl_pack(const Spillway__Ctrl *msg, void *buf, size_t cap)
{
	size_t n = spillway__ctrl__get_packed_size(msg);
	if (n > cap || n > SPILL_MAX_CTRL_PAYLOAD)
		return -EMSGSIZE;
	return (int)spillway__ctrl__pack(msg, buf);
}

size_t ctrl_packed_size(const Spillway__Ctrl *msg)
{
	return spillway__ctrl__get_packed_size(msg);
}

int ctrl_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > CTRL_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int ctrl_export_name_valid(const char *name)
{
	return strlen(name) <= CTRL_EXPORT_NAME_MAX && ctrl_name_valid(name);
}

static int bad(const char **why, const char *rule)
{
	if (why)
		*why = rule;
	return -EPROTO;
}

static int priority_ok(int32_t p)
{
	return p >= CTRL_PRIORITY_MIN && p <= CTRL_PRIORITY_MAX;
}

static int text_ok(const char *s, size_t max)
{
	return s && strnlen(s, max + 1) <= max;
}

static int client_stats_ok(const Spillway__ClientStats *c)
{
	return c && ctrl_name_valid(c->name) && priority_ok(c->priority);
}

/* A server as one peer or the arbiter describes it: a URL we could dial. */
static int server_info_ok(const Spillway__ServerInfo *s)
{
	return s && s->url[0] && text_ok(s->url, 512) && text_ok(s->server_id, 256);
}

static int servers_ok(Spillway__ServerInfo *const *v, size_t n)
{
	if (n > CTRL_CLUSTER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!server_info_ok(v[i]))
			return 0;
	return 1;
}

int ctrl_validate(const Spillway__Ctrl *m, const char **why)
{
	switch (m->msg_case) {
	case SPILLWAY__CTRL__MSG__NOT_SET:
		return bad(why, "no message set");
	case SPILLWAY__CTRL__MSG_HELLO:
		if (m->hello->client_nonce.len != CTRL_NONCE_BYTES)
			return bad(why, "hello nonce must be 32 bytes");
		if (!text_ok(m->hello->software, 256))
			return bad(why, "hello software string too long");
		return 0;
	case SPILLWAY__CTRL__MSG_HELLO_REPLY: {
		const Spillway__HelloReply *r = m->hello_reply;
		if (r->server_nonce.len != CTRL_NONCE_BYTES)
			return bad(why, "server nonce must be 32 bytes");
		if (r->max_inflight == 0 || r->max_batch_pages == 0 ||
		    r->max_batch_pages > SPILL_MAX_BATCH_PAGES)
			return bad(why, "hello reply limits out of range");
		if (r->extent_bytes == 0 || r->extent_bytes % SPILL_PAGE_SIZE ||
		    r->extent_bytes / SPILL_PAGE_SIZE > UINT32_MAX)
			return bad(why, "extent size not a page multiple");
		if (!text_ok(r->server_id, 256))
			return bad(why, "server id too long");
		return 0;
	}
	case SPILLWAY__CTRL__MSG_AUTH:
		return m->auth->mac.len == CTRL_MAC_BYTES ? 0 : bad(why, "MAC must be 32 bytes");
	case SPILLWAY__CTRL__MSG_AUTH_REPLY:
		return m->auth_reply->mac.len == CTRL_MAC_BYTES ? 0 : bad(why, "MAC must be 32 bytes");
	case SPILLWAY__CTRL__MSG_REGISTER: {
		const Spillway__Register *r = m->register_;
		if (!ctrl_name_valid(r->name))
			return bad(why, "client name must be 1-64 of [A-Za-z0-9._:-]");
		if (!priority_ok(r->priority))
			return bad(why, "priority outside -1000..1000");
		if (r->token.len != 0 && r->token.len != CTRL_TOKEN_BYTES)
			return bad(why, "token must be empty or 16 bytes");
		if (r->limit_bytes && r->reservation_bytes > r->limit_bytes)
			return bad(why, "reservation above limit");
		return 0;
	}
	case SPILLWAY__CTRL__MSG_REGISTER_REPLY:
		if (m->register_reply->token.len != CTRL_TOKEN_BYTES)
			return bad(why, "token must be 16 bytes");
		return priority_ok(m->register_reply->priority) ? 0 : bad(why, "priority out of range");
	case SPILLWAY__CTRL__MSG_ALLOC_EXTENT:
		if (m->alloc_extent->count == 0 || m->alloc_extent->count > CTRL_ALLOC_MAX)
			return bad(why, "extent count outside 1..64");
		if (m->alloc_extent->node < -1 || m->alloc_extent->node > 1023)
			return bad(why, "node out of range");
		return 0;
	case SPILLWAY__CTRL__MSG_ALLOC_EXTENT_REPLY:
		return m->alloc_extent_reply->n_extents <= CTRL_ALLOC_MAX ? 0 : bad(why, "too many extents");
	case SPILLWAY__CTRL__MSG_FREE_EXTENT:
		if (m->free_extent->n_extent_ids == 0 || m->free_extent->n_extent_ids > 1024)
			return bad(why, "extent id count outside 1..1024");
		return 0;
	case SPILLWAY__CTRL__MSG_STATS_REPLY:
		if (m->stats_reply->self && !client_stats_ok(m->stats_reply->self))
			return bad(why, "bad client stats");
		return 0;
	case SPILLWAY__CTRL__MSG_ADMIN_STATUS_REPLY:
		for (size_t i = 0; i < m->admin_status_reply->n_clients; i++)
			if (!client_stats_ok(m->admin_status_reply->clients[i]))
				return bad(why, "bad client stats");
		return 0;
	case SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET: {
		const Spillway__AdminClientSet *s = m->admin_client_set;
		if (!ctrl_name_valid(s->name))
			return bad(why, "client name must be 1-64 of [A-Za-z0-9._:-]");
		if (s->set_priority && !priority_ok(s->priority))
			return bad(why, "priority outside -1000..1000");
		return 0;
	}
	case SPILLWAY__CTRL__MSG_ADMIN_CLIENT_SET_REPLY:
		return client_stats_ok(m->admin_client_set_reply->client) ? 0 : bad(why, "bad client stats");
	case SPILLWAY__CTRL__MSG_ERROR:
		if (m->error->status == 0 || m->error->status >= SPILL_ST_MAX)
			return bad(why, "error status out of range");
		return text_ok(m->error->message, 1024) ? 0 : bad(why, "error message too long");
	case SPILLWAY__CTRL__MSG_ADMIN_RECLAIM:
		if (!ctrl_name_valid(m->admin_reclaim->name))
			return bad(why, "client name must be 1-64 of [A-Za-z0-9._:-]");
		return m->admin_reclaim->bytes ? 0 : bad(why, "reclaim of zero bytes");
	case SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE: {
		const Spillway__AdminExportCreate *e = m->admin_export_create;
		if (!ctrl_export_name_valid(e->name))
			return bad(why, "export name must be 1-60 of [A-Za-z0-9._:-]");
		if (e->client[0] && !ctrl_name_valid(e->client))
			return bad(why, "client name must be 1-64 of [A-Za-z0-9._:-]");
		if (e->size_bytes == 0 || e->size_bytes % 4096 || e->size_bytes > CTRL_EXPORT_MAX_BYTES)
			return bad(why, "export size must be a multiple of 4096, at most 1 TiB");
		return 0;
	}
	case SPILLWAY__CTRL__MSG_ADMIN_EXPORT_DELETE:
		return ctrl_export_name_valid(m->admin_export_delete->name)
			       ? 0 : bad(why, "export name must be 1-60 of [A-Za-z0-9._:-]");
	case SPILLWAY__CTRL__MSG_ADMIN_EXPORT_CREATE_REPLY:
		if (!m->admin_export_create_reply->info)
			return bad(why, "export info missing");
		return 0;
	case SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST_REPLY:
		for (size_t i = 0; i < m->admin_export_list_reply->n_exports; i++)
			if (!m->admin_export_list_reply->exports[i])
				return bad(why, "export info missing");
		return 0;
	case SPILLWAY__CTRL__MSG_PEER_REPORT: {
		const Spillway__PeerReport *r = m->peer_report;
		if (!server_info_ok(r->server))
			return bad(why, "peer report without a server URL");
		for (size_t i = 0; i < r->n_clients; i++)
			if (!client_stats_ok(r->clients[i]))
				return bad(why, "bad client stats");
		return 0;
	}
	case SPILLWAY__CTRL__MSG_PEER_REPORT_REPLY: {
		const Spillway__PeerReportReply *r = m->peer_report_reply;
		if (!servers_ok(r->servers, r->n_servers))
			return bad(why, "bad server list");
		for (size_t i = 0; i < r->n_budgets; i++)
			if (!ctrl_name_valid(r->budgets[i]->name))
				return bad(why, "bad client name in budgets");
		for (size_t i = 0; i < r->n_actions; i++)
			if (!ctrl_name_valid(r->actions[i]->client) || !r->actions[i]->bytes)
				return bad(why, "bad peer action");
		return 0;
	}
	case SPILLWAY__CTRL__MSG_CLUSTER_INFO_REPLY:
		if (!servers_ok(m->cluster_info_reply->servers, m->cluster_info_reply->n_servers))
			return bad(why, "bad server list");
		return text_ok(m->cluster_info_reply->arbiter_url, 512) ? 0 : bad(why, "arbiter URL too long");
	case SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS_REPLY: {
		const Spillway__AdminClusterStatusReply *r = m->admin_cluster_status_reply;
		if (!servers_ok(r->servers, r->n_servers))
			return bad(why, "bad server list");
		for (size_t i = 0; i < r->n_clients; i++)
			if (!ctrl_name_valid(r->clients[i]->name))
				return bad(why, "bad client name");
		return 0;
	}
	case SPILLWAY__CTRL__MSG_ADMIN_EVENTS_REPLY:
		for (size_t i = 0; i < m->admin_events_reply->n_events; i++)
			if (!text_ok(m->admin_events_reply->events[i]->reason, 1024))
				return bad(why, "event reason too long");
		return 0;
	case SPILLWAY__CTRL__MSG_ADMIN_DRAIN_REPLY:
		return server_info_ok(m->admin_drain_reply->server) ? 0 : bad(why, "bad server info");
	case SPILLWAY__CTRL__MSG_CLUSTER_INFO:
	case SPILLWAY__CTRL__MSG_ADMIN_CLUSTER_STATUS:
	case SPILLWAY__CTRL__MSG_ADMIN_EVENTS:
	case SPILLWAY__CTRL__MSG_ADMIN_DRAIN:
	case SPILLWAY__CTRL__MSG_DRAIN:
	case SPILLWAY__CTRL__MSG_ADMIN_EXPORT_LIST:
	case SPILLWAY__CTRL__MSG_ADMIN_EXPORT_DELETE_REPLY:
	case SPILLWAY__CTRL__MSG_STATS:
	case SPILLWAY__CTRL__MSG_ADMIN_STATUS:
	case SPILLWAY__CTRL__MSG_ADMIN_RECLAIM_REPLY:
	case SPILLWAY__CTRL__MSG_FREE_EXTENT_REPLY:
	case SPILLWAY__CTRL__MSG_RECLAIM:
	case SPILLWAY__CTRL__MSG_RECLAIM_REPLY:
		return 0;
	default:
		return bad(why, "unknown message");
	}
}

/*
 * What protobuf-c may allocate while unpacking one message. Empty
 * sub-messages or unknown fields unpack to over 50 times their packed size
 * (a 1 MiB frame to 56 MiB); no message we send needs more than
 * CTRL_UNPACK_FACTOR times. Memory from here is plain malloc, so
 * ctrl_free (the default allocator) frees it.
 */
struct unpack_budget {
	size_t left;
	int exceeded;
};

static void *budget_alloc(void *data, size_t n)
{
	struct unpack_budget *b = data;
	if (n > b->left) {
		b->exceeded = 1;
		return NULL;
	}
	b->left -= n;
	return malloc(n);
}

static void budget_free(void *data, void *p)
{
	(void)data;
	free(p);
}

Spillway__Ctrl *ctrl_unpack(const void *buf, size_t len, int *err, const char **why)
{
	Spillway__Ctrl *m = NULL;
	if (len == 0 || len > SPILL_MAX_CTRL_PAYLOAD) {
		bad(why, "control payload size out of bounds");
		goto fail;
	}
	struct unpack_budget budget = { len * CTRL_UNPACK_FACTOR + CTRL_UNPACK_SLACK, 0 };
	ProtobufCAllocator alloc = { budget_alloc, budget_free, &budget };
	m = spillway__ctrl__unpack(&alloc, len, buf);
	if (!m) {
		bad(why, budget.exceeded ? "control message unpacks too large" : "undecodable protobuf");
		goto fail;
	}
	if (ctrl_validate(m, why))
		goto fail;
	return m;
fail:
	if (m)
		spillway__ctrl__free_unpacked(m, NULL);
	if (err)
		*err = -EPROTO;
	return NULL;
}

void ctrl_free(Spillway__Ctrl *msg)
{
	if (msg)
		spillway__ctrl__free_unpacked(msg, NULL);
}

const char *ctrl_msg_name(const Spillway__Ctrl *m)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(&spillway__ctrl__descriptor,
							(unsigned)m->msg_case);
	return f ? f->name : "none";
}
