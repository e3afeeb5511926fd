/* SPDX-License-Identifier: MIT */
#include "wire_registry.h"

#include <errno.h>
#include <string.h>

#include "wire_list.h"

/* A message's string into a plain name field, whole or not at all. */
static int name_from(const char *s, char *out, size_t cap)
{
	size_t len = s ? strnlen(s, cap) : cap;
	if (len >= cap)
		return -EPROTO;
	memcpy(out, s, len + 1);
	return 0;
}

int wire_registry_request(const Spillway__Register *m, struct reg_request *out)
{
	*out = (struct reg_request){
		.priority = m->priority,
		.reservation = m->reservation_bytes,
		.limit = m->limit_bytes,
		.has_token = m->token.len != 0,
	};
	if (name_from(m->name, out->name, sizeof(out->name)))
		return -EPROTO;
	if (out->has_token) {
		if (m->token.len != sizeof(out->token))
			return -EPROTO;
		memcpy(out->token, m->token.data, sizeof(out->token));
	}
	return 0;
}

void wire_registry_stats(const struct reg_client_stats *s, Spillway__ClientStats *out)
{
	spillway__client_stats__init(out);
	out->name = (char *)s->name;
	out->client_id = s->client_id;
	out->priority = s->priority;
	out->reservation_bytes = s->reservation;
	out->limit_bytes = s->limit;
	out->used_bytes = s->used;
	out->pinned_bytes = s->pinned;
	out->extents = s->extents;
	out->connections = s->connections;
	out->grace_left_ms = s->grace_left_ms;
	out->pages_read = s->pages_read;
	out->pages_written = s->pages_written;
	out->last_reclaim_id = s->last_reclaim_id;
	out->last_reclaim_freed = s->last_reclaim_freed;
}

Spillway__ClientStats **wire_registry_stats_list(const struct reg_client_stats *v, size_t n)
{
	Spillway__ClientStats **ptrs = wire_list_alloc(n, sizeof(**ptrs));
	if (!ptrs)
		return NULL;
	Spillway__ClientStats *msgs = wire_list_msgs(ptrs, n);
	for (size_t i = 0; i < n; i++) {
		wire_registry_stats(&v[i], &msgs[i]);
		ptrs[i] = &msgs[i];
	}
	return ptrs;
}

int wire_registry_stats_from(const Spillway__ClientStats *m, struct reg_client_stats *out)
{
	*out = (struct reg_client_stats){
		.client_id = m->client_id,
		.priority = m->priority,
		.reservation = m->reservation_bytes,
		.limit = m->limit_bytes,
		.used = m->used_bytes,
		.pinned = m->pinned_bytes,
		.extents = m->extents,
		.connections = m->connections,
		.grace_left_ms = m->grace_left_ms,
		.pages_read = m->pages_read,
		.pages_written = m->pages_written,
		.last_reclaim_id = m->last_reclaim_id,
		.last_reclaim_freed = m->last_reclaim_freed,
	};
	return name_from(m->name, out->name, sizeof(out->name));
}

void wire_registry_extents(const struct reg_extent_info *v, size_t n,
			   Spillway__ExtentInfo *store, Spillway__ExtentInfo **ptrs)
{
	for (size_t i = 0; i < n; i++) {
		spillway__extent_info__init(&store[i]);
		store[i].extent_id = v[i].id;
		store[i].npages = v[i].npages;
		store[i].node = v[i].node;
		ptrs[i] = &store[i];
	}
}
