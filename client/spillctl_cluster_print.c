/* SPDX-License-Identifier: MIT */
/*
 * Output of spillctl's cluster commands. Same rules as spillctl_print.c:
 * JSON field names are stable, sizes are *_bytes integers, durations *_ms,
 * and every string from a server goes through spillctl_escape.h.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "spillctl_cluster.h"

static const char *yes_no(int b)
{
	return b ? "yes" : "no";
}

static const char *json_bool(int b)
{
	return b ? "true" : "false";
}

static void json_server(FILE *out, const void *elem)
{
	const Spillway__ServerInfo *s = elem;
	fprintf(out, "{\"url\":");
	escape_json(out, s->url);
	fprintf(out, ",\"server_id\":");
	escape_json(out, s->server_id);
	fprintf(out,
		",\"arbiter\":%s,\"up\":%s,\"draining\":%s,\"report_age_ms\":%" PRIu64
		",\"capacity_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64 ",\"nodes\":[",
		json_bool(s->arbiter), json_bool(s->up), json_bool(s->draining), s->report_age_ms,
		s->capacity_bytes, s->used_bytes);
	for (size_t i = 0; i < s->n_nodes; i++)
		fprintf(out, "%s{\"node\":%u,\"capacity_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64 "}",
			i ? "," : "", s->nodes[i]->node, s->nodes[i]->capacity_bytes,
			s->nodes[i]->used_bytes);
	fprintf(out, "]}");
}

static void json_servers(FILE *out, Spillway__ServerInfo *const *s, size_t n)
{
	ctl_json_array(out, (const void *const *)s, n, json_server);
}

/* "0:4.0 MiB/256.0 MiB 1:..." */
static void node_list(const Spillway__ServerInfo *s, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < s->n_nodes && len < cap; i++) {
		char used[32], c[32];
		human_size(s->nodes[i]->used_bytes, used, sizeof(used));
		human_size(s->nodes[i]->capacity_bytes, c, sizeof(c));
		len += (size_t)snprintf(buf + len, cap - len, "%s%u:%s/%s", i ? " " : "",
					s->nodes[i]->node, used, c);
	}
}

static void print_servers(FILE *out, Spillway__ServerInfo *const *s, size_t n)
{
	fprintf(out, "%-28s %-20s %-9s %-8s %10s %10s %6s  %s\n", "URL", "ID", "UP", "DRAINING",
		"CAPACITY", "USED", "USE%", "NODES (used/capacity)");
	for (size_t i = 0; i < n; i++) {
		char cap[32], used[32], up[32], nodes[512];
		human_size(s[i]->capacity_bytes, cap, sizeof(cap));
		human_size(s[i]->used_bytes, used, sizeof(used));
		if (s[i]->up)
			snprintf(up, sizeof(up), "yes");
		else
			snprintf(up, sizeof(up), "no %" PRIu64 "s", s[i]->report_age_ms / 1000);
		node_list(s[i], nodes, sizeof(nodes));
		fprintf(out, "%-28s %-20s %-9s %-8s %10s %10s %5.1f%%  %s%s\n",
			escape_text(s[i]->url), escape_text(s[i]->server_id), up, yes_no(s[i]->draining), cap, used,
			percent(s[i]->used_bytes, s[i]->capacity_bytes), nodes,
			s[i]->arbiter ? "  (arbiter)" : "");
	}
}

static size_t count_up(Spillway__ServerInfo *const *s, size_t n)
{
	size_t up = 0;
	for (size_t i = 0; i < n; i++)
		up += s[i]->up != 0;
	return up;
}

static void json_cluster_client(FILE *out, const void *elem)
{
	const Spillway__ClusterClient *c = elem;
	fprintf(out, "{\"name\":");
	escape_json(out, c->name);
	fprintf(out,
		",\"priority\":%d,\"reservation_bytes\":%" PRIu64 ",\"limit_bytes\":%" PRIu64
		",\"used_bytes\":%" PRIu64 ",\"pending_bytes\":%" PRIu64 ",\"badness\":%" PRId64
		",\"servers\":%u}",
		c->priority, c->reservation_bytes, c->limit_bytes, c->used_bytes, c->pending_bytes,
		c->badness, c->servers);
}

void cluster_print_clients(FILE *out, Spillway__ClusterClient *const *c, size_t n, int json)
{
	if (json) {
		ctl_json_array(out, (const void *const *)c, n, json_cluster_client);
		fputc('\n', out);
		return;
	}
	fprintf(out, "%-24s %8s %10s %10s %10s %10s %9s %7s\n", "NAME", "PRIORITY", "RESERVED",
		"LIMIT", "USED", "PENDING", "BADNESS", "SERVERS");
	for (size_t i = 0; i < n; i++) {
		char res[32], lim[32], used[32], pend[32];
		human_size(c[i]->reservation_bytes, res, sizeof(res));
		human_limit(c[i]->limit_bytes, lim, sizeof(lim));
		human_size(c[i]->used_bytes, used, sizeof(used));
		human_size(c[i]->pending_bytes, pend, sizeof(pend));
		fprintf(out, "%-24s %8d %10s %10s %10s %10s %9" PRId64 " %7u\n",
			escape_text(c[i]->name),
			c[i]->priority, res, lim, used, pend, c[i]->badness, c[i]->servers);
	}
}

void cluster_print_status(FILE *out, const Spillway__AdminClusterStatusReply *r,
			  const char *arbiter_url, int json)
{
	/* As the arbiter decides it: at or above the high watermark. */
	int full = r->capacity_bytes &&
		   (unsigned __int128)r->used_bytes * 100 >=
			   (unsigned __int128)r->capacity_bytes * r->high_pct;
	if (json) {
		fprintf(out, "{\"arbiter_url\":");
		escape_json(out, arbiter_url);
		fprintf(out,
			",\"capacity_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
			",\"use_pct\":%.1f,\"high_pct\":%u,\"low_pct\":%u,\"cluster_full\":%s"
			",\"decisions\":%" PRIu64 ",\"servers\":",
			r->capacity_bytes, r->used_bytes, percent(r->used_bytes, r->capacity_bytes),
			r->high_pct, r->low_pct, json_bool(full), r->decisions);
		json_servers(out, r->servers, r->n_servers);
		fprintf(out, ",\"clients\":");
		ctl_json_array(out, (const void *const *)r->clients, r->n_clients,
			       json_cluster_client);
		fputs("}\n", out);
		return;
	}
	char cap[32], used[32];
	human_size(r->capacity_bytes, cap, sizeof(cap));
	human_size(r->used_bytes, used, sizeof(used));
	fprintf(out, "arbiter    %s\n", escape_text(arbiter_url));
	fprintf(out, "servers    %zu up of %zu\n", count_up(r->servers, r->n_servers), r->n_servers);
	fprintf(out, "capacity   %s, used %s (%.1f%%)\n", cap, used,
		percent(r->used_bytes, r->capacity_bytes));
	fprintf(out, "watermarks high %u%%, low %u%%: %s\n", r->high_pct, r->low_pct,
		full ? "at or above high, reclaiming" : "below high");
	fprintf(out, "decisions  %" PRIu64 "\n\n", r->decisions);
	print_servers(out, r->servers, r->n_servers);
}

void cluster_print_info(FILE *out, const Spillway__ClusterInfoReply *r, int json)
{
	uint64_t cap = 0, used = 0;
	for (size_t i = 0; i < r->n_servers; i++) {
		cap += r->servers[i]->capacity_bytes;
		used += r->servers[i]->used_bytes;
	}
	if (json) {
		fprintf(out,
			"{\"arbiter_url\":\"\",\"capacity_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
			",\"use_pct\":%.1f,\"cluster_full\":%s,\"servers\":",
			cap, used, percent(used, cap), json_bool(r->cluster_full));
		json_servers(out, r->servers, r->n_servers);
		fputs("}\n", out);
		return;
	}
	char cap_s[32], used_s[32];
	human_size(cap, cap_s, sizeof(cap_s));
	human_size(used, used_s, sizeof(used_s));
	fprintf(out, "arbiter    none (no spillwayd --arbiter-url): no watermarks, no decisions\n");
	fprintf(out, "servers    %zu\n", r->n_servers);
	fprintf(out, "capacity   %s, used %s (%.1f%%)\n\n", cap_s, used_s, percent(used, cap));
	print_servers(out, r->servers, r->n_servers);
}

void cluster_print_server(FILE *out, const Spillway__ServerInfo *s, int json)
{
	if (json) {
		json_server(out, s);
		fputc('\n', out);
	} else {
		print_servers(out, (Spillway__ServerInfo *const *)&s, 1);
	}
}

/* 2024-05-01T12:00:00.123Z */
static void iso_time(uint64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t len = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + len, cap - len, ".%03uZ", (unsigned)(ms % 1000));
}

static const char *or_dash(const char *s)
{
	return s && s[0] ? escape_text(s) : "-";
}

void cluster_print_events_header(FILE *out)
{
	fprintf(out, "%-24s %-11s %-20s %-24s %10s %8s %6s  %s\n", "TIME", "KIND", "CLIENT",
		"SERVER", "BYTES", "BADNESS", "USE%", "REASON");
}

void cluster_print_event(FILE *out, const Spillway__Event *e, int json)
{
	char when[40];
	iso_time(e->time_ms, when, sizeof(when));
	double use = percent(e->cluster_used_bytes, e->cluster_capacity_bytes);
	if (json) {
		fprintf(out, "{\"seq\":%" PRIu64 ",\"time_ms\":%" PRIu64 ",\"time\":\"%s\",\"kind\":",
			e->seq, e->time_ms, when);
		escape_json(out, e->kind);
		fprintf(out, ",\"client\":");
		escape_json(out, e->client);
		fprintf(out, ",\"server\":");
		escape_json(out, e->server);
		fprintf(out,
			",\"bytes\":%" PRIu64 ",\"badness\":%" PRId64 ",\"cluster_used_bytes\":%" PRIu64
			",\"cluster_capacity_bytes\":%" PRIu64 ",\"cluster_use_pct\":%.1f"
			",\"decision_id\":%" PRIu64 ",\"reason\":",
			e->bytes, e->badness, e->cluster_used_bytes, e->cluster_capacity_bytes, use,
			e->decision_id);
		escape_json(out, e->reason);
		fputs("}\n", out);
		return;
	}
	char bytes[32] = "-", badness[24] = "-";
	if (e->bytes)
		human_size(e->bytes, bytes, sizeof(bytes));
	if (e->badness)
		snprintf(badness, sizeof(badness), "%" PRId64, e->badness);
	fprintf(out, "%-24s %-11s %-20s %-24s %10s %8s %5.1f%%  %s\n", when, or_dash(e->kind),
		or_dash(e->client), or_dash(e->server), bytes, badness, use, escape_text(e->reason));
}

void cluster_print_set(FILE *out, const char *name, const struct set_result *r, size_t n,
		       int json)
{
	if (json) {
		fprintf(out, "{\"name\":");
		escape_json(out, name);
		fprintf(out, ",\"servers\":[");
		for (size_t i = 0; i < n; i++) {
			fprintf(out, "%s{\"server\":", i ? "," : "");
			escape_json(out, r[i].server);
			fprintf(out, ",\"ok\":%s,", json_bool(r[i].client != NULL));
			if (r[i].client) {
				fprintf(out, "\"client\":");
				ctl_json_client(out, r[i].client);
			} else {
				fprintf(out, "\"error\":");
				escape_json(out, r[i].err);
			}
			fputc('}', out);
		}
		fputs("]}\n", out);
		return;
	}
	fprintf(out, "%-28s %5s %10s %10s %10s  %s\n", "SERVER", "PRIO", "RESERVED", "LIMIT",
		"USED", "RESULT");
	for (size_t i = 0; i < n; i++) {
		const Spillway__ClientStats *c = r[i].client;
		if (!c) {
			fprintf(out, "%-28s %5s %10s %10s %10s  error: %s\n", escape_text(r[i].server),
				"-", "-", "-", "-", r[i].err); /* escaped by ctl_open/ctl_call */
			continue;
		}
		char res[32], lim[32], used[32];
		human_size(c->reservation_bytes, res, sizeof(res));
		human_limit(c->limit_bytes, lim, sizeof(lim));
		human_size(c->used_bytes, used, sizeof(used));
		fprintf(out, "%-28s %5d %10s %10s %10s  ok\n", escape_text(r[i].server), c->priority,
			res, lim, used);
	}
}

/* "1m05s", or "?" when unknown. */
static void duration(int64_t s, char *buf, size_t cap)
{
	if (s < 0)
		snprintf(buf, cap, "?");
	else if (s < 3600)
		snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else
		snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
}

void cluster_print_drain(FILE *out, const struct drain_progress *p, int bar)
{
	uint64_t moved = p->total - p->used;
	double pct = p->total ? percent(moved, p->total) : 100.0;
	double rate = p->elapsed_ms ? (double)moved * 1000.0 / (double)p->elapsed_ms : 0.0;
	int64_t eta = p->done ? 0 : rate > 0 ? (int64_t)((double)p->used / rate + 0.5) : -1;
	int final = p->done || p->timed_out;
	if (!bar) {
		fprintf(out, "{\"server\":");
		escape_json(out, p->server);
		if (final)
			fprintf(out, ",\"drained\":%s", json_bool(p->done));
		fprintf(out,
			",\"used_bytes\":%" PRIu64 ",\"moved_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64
			",\"percent\":%.1f,",
			p->used, moved, p->total, pct);
		if (final)
			fprintf(out, "\"elapsed_ms\":%" PRIu64 "}\n", p->elapsed_ms);
		else if (eta < 0)
			fprintf(out, "\"eta_s\":null}\n");
		else
			fprintf(out, "\"eta_s\":%" PRId64 "}\n", eta);
		return;
	}
	enum { WIDTH = 30 };
	char line[WIDTH + 1], moved_s[32], total_s[32], rate_s[32], eta_s[32];
	int fill = (int)(pct * WIDTH / 100.0);
	for (int i = 0; i < WIDTH; i++)
		line[i] = i < fill ? '#' : '-';
	line[WIDTH] = '\0';
	human_size(moved, moved_s, sizeof(moved_s));
	human_size(p->total, total_s, sizeof(total_s));
	human_size((uint64_t)rate, rate_s, sizeof(rate_s));
	duration(final ? (int64_t)(p->elapsed_ms / 1000) : eta, eta_s, sizeof(eta_s));
	/* \033[K clears what a longer earlier line left. */
	fprintf(out, "\r[%s] %s / %s %5.1f%%  %s/s  %s %s\033[K", line, moved_s, total_s, pct,
		rate_s, final ? "took" : "ETA", eta_s);
	if (final)
		fprintf(out, "\n%s %s\n", escape_text(p->server),
			p->done ? "drained" : "not drained (timeout)");
}
