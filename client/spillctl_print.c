/* SPDX-License-Identifier: MIT */
/*
 * spillctl output. JSON field names are stable (scripts depend on them):
 * sizes are *_bytes integers, durations *_ms. Every string from a server
 * goes through spillctl_escape.h, in text and in JSON.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "spillctl.h"

void human_size(uint64_t b, char *buf, size_t cap)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%" PRIu64 " B", b);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

void human_limit(uint64_t limit, char *buf, size_t cap)
{
	if (limit)
		human_size(limit, buf, cap);
	else
		snprintf(buf, cap, "-");
}

double percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

void ctl_json_client(FILE *out, const Spillway__ClientStats *c)
{
	fprintf(out, "{\"name\":");
	escape_json(out, c->name);
	fprintf(out,
		",\"client_id\":%" PRIu64 ",\"priority\":%d,\"reservation_bytes\":%" PRIu64
		",\"limit_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64 ",\"extents\":%u"
		",\"connections\":%u,\"grace_left_ms\":%" PRIu64 ",\"pages_read\":%" PRIu64
		",\"pages_written\":%" PRIu64 ",\"last_reclaim_id\":%" PRIu64
		",\"last_reclaim_freed_bytes\":%" PRIu64 ",\"pinned_bytes\":%" PRIu64 "}",
		c->client_id, c->priority, c->reservation_bytes, c->limit_bytes, c->used_bytes,
		c->extents, c->connections, c->grace_left_ms, c->pages_read, c->pages_written,
		c->last_reclaim_id, c->last_reclaim_freed, c->pinned_bytes);
}

static void client_state(const Spillway__ClientStats *c, char *buf, size_t cap)
{
	if (c->connections)
		snprintf(buf, cap, "connected");
	else if (c->client_id)
		snprintf(buf, cap, "grace %" PRIu64 "s", (c->grace_left_ms + 999) / 1000);
	else
		snprintf(buf, cap, "not connected");
	if (c->last_reclaim_id) {
		char freed[32];
		human_size(c->last_reclaim_freed, freed, sizeof(freed));
		size_t len = strlen(buf);
		snprintf(buf + len, cap - len, ", reclaim %" PRIu64 " freed %s", c->last_reclaim_id,
			 freed);
	}
}

void ctl_json_array(FILE *out, const void *const *v, size_t n,
		    void (*each)(FILE *out, const void *elem))
{
	fputc('[', out);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', out);
		each(out, v[i]);
	}
	fputc(']', out);
}

static void json_client_elem(FILE *out, const void *c)
{
	ctl_json_client(out, c);
}

static void json_clients(FILE *out, Spillway__ClientStats *const *c, size_t n)
{
	ctl_json_array(out, (const void *const *)c, n, json_client_elem);
}

void print_clients(FILE *out, Spillway__ClientStats *const *c, size_t n, int json)
{
	if (json) {
		json_clients(out, c, n);
		fputc('\n', out);
		return;
	}
	fprintf(out, "%-24s %6s %5s %10s %10s %10s %7s %5s  %s\n", "NAME", "ID", "PRIO",
		"RESERVED", "LIMIT", "USED", "EXTENTS", "CONNS", "STATE");
	for (size_t i = 0; i < n; i++) {
		char res[32], lim[32], used[32], state[96];
		human_size(c[i]->reservation_bytes, res, sizeof(res));
		human_limit(c[i]->limit_bytes, lim, sizeof(lim));
		human_size(c[i]->used_bytes, used, sizeof(used));
		client_state(c[i], state, sizeof(state));
		fprintf(out, "%-24s %6" PRIu64 " %5d %10s %10s %10s %7u %5u  %s\n",
			escape_text(c[i]->name),
			c[i]->client_id, c[i]->priority, res, lim, used, c[i]->extents,
			c[i]->connections, state);
	}
}

void print_client(FILE *out, const Spillway__ClientStats *c, int json)
{
	if (json) {
		ctl_json_client(out, c);
		fputc('\n', out);
	} else {
		print_clients(out, (Spillway__ClientStats *const *)&c, 1, 0);
	}
}

/* What the node's pool can still lend (used never exceeds capacity, but a
 * reply is untrusted input). */
static uint64_t node_free(const Spillway__NodeStats *n)
{
	return n->used_bytes < n->capacity_bytes ? n->capacity_bytes - n->used_bytes : 0;
}

void print_status(FILE *out, const Spillway__AdminStatusReply *r, int json)
{
	if (json) {
		fprintf(out, "{\"server_id\":");
		escape_json(out, r->server_id);
		fprintf(out, ",\"version\":");
		escape_json(out, r->version);
		fprintf(out,
			",\"uptime_ms\":%" PRIu64 ",\"capacity_bytes\":%" PRIu64
			",\"used_bytes\":%" PRIu64 ",\"reserved_bytes\":%" PRIu64
			",\"extent_bytes\":%" PRIu64 ",\"pinned_bytes\":%" PRIu64
			",\"clients_total\":%u,\"nodes\":[",
			r->uptime_ms, r->capacity_bytes, r->used_bytes, r->reserved_bytes,
			r->extent_bytes, r->pinned_bytes, r->clients_total);
		for (size_t i = 0; i < r->n_nodes; i++)
			fprintf(out,
				"%s{\"node\":%u,\"capacity_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
				",\"free_bytes\":%" PRIu64 "}",
				i ? "," : "", r->nodes[i]->node, r->nodes[i]->capacity_bytes,
				r->nodes[i]->used_bytes, node_free(r->nodes[i]));
		fprintf(out, "],\"clients\":");
		json_clients(out, r->clients, r->n_clients);
		fputs("}\n", out);
		return;
	}
	char cap[32], used[32], res[32], ext[32];
	human_size(r->capacity_bytes, cap, sizeof(cap));
	human_size(r->used_bytes, used, sizeof(used));
	human_size(r->reserved_bytes, res, sizeof(res));
	human_size(r->extent_bytes, ext, sizeof(ext));
	uint64_t up = r->uptime_ms / 1000;
	fprintf(out, "server    %s (spillwayd %s, up %" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s)\n",
		escape_text(r->server_id), escape_text(r->version), up / 3600, up / 60 % 60,
		up % 60);
	fprintf(out, "capacity  %s, used %s (%.1f%%), reserved %s, extents of %s\n", cap, used,
		percent(r->used_bytes, r->capacity_bytes), res, ext);
	if (r->pinned_bytes) {
		/* Freed by clients, but replies still being sent hold them. */
		human_size(r->pinned_bytes, used, sizeof(used));
		fprintf(out, "pinned    %s of used: freed extents unread replies still hold\n", used);
	}
	fprintf(out, "\n%-6s %12s %12s %12s %7s\n", "NODE", "CAPACITY", "USED", "FREE", "USE%");
	for (size_t i = 0; i < r->n_nodes; i++) {
		char free_s[32];
		human_size(r->nodes[i]->capacity_bytes, cap, sizeof(cap));
		human_size(r->nodes[i]->used_bytes, used, sizeof(used));
		human_size(node_free(r->nodes[i]), free_s, sizeof(free_s));
		fprintf(out, "%-6u %12s %12s %12s %6.1f%%\n", r->nodes[i]->node, cap, used, free_s,
			percent(r->nodes[i]->used_bytes, r->nodes[i]->capacity_bytes));
	}
	fprintf(out, "\n");
	if (r->n_clients)
		print_clients(out, r->clients, r->n_clients, 0);
	else
		fprintf(out, "no clients\n");
}
