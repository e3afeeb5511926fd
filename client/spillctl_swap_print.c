/* SPDX-License-Identifier: MIT */
/*
 * spillctl swap status output: a table per attachment, or one JSON line
 * {"devices":[...]} with stable field names (sizes in *_bytes, counts of
 * 4 KiB pages in pages_*).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "spillctl.h"
#include "spillctl_swap.h"

/* The kernel's fixed-size, maybe unterminated name and label fields, as C
 * strings for the escaper (they were given to spillway.ko by an earlier
 * spillctl, but print them as carefully as any server string). */
#define FIELD(buf, f) field_str(buf, sizeof(buf), f, sizeof(f))
static const char *field_str(char *buf, size_t cap, const char *f, size_t len)
{
	snprintf(buf, cap, "%.*s", (int)len, f);
	return buf;
}

/* up: at least one live connection; down: none (its copies are unreachable). */
static const char *srv_state(const struct spill_srv_status *s)
{
	return s->conns ? "up" : "down";
}

static void json_device(FILE *out, const struct spill_ioc_status *st)
{
	fprintf(out, "{\"device\":\"/dev/" SPILL_DISK_PREFIX "%u\",\"index\":%u,\"id\":%" PRIu64
		",\"name\":", st->index, st->index, (uint64_t)st->id);
	char text[sizeof(st->name) + 1];
	escape_json(out, FIELD(text, st->name));
	fprintf(out,
		",\"size_bytes\":%" PRIu64 ",\"extent_bytes\":%" PRIu64 ",\"replicas\":%u"
		",\"open\":%s,\"removing\":%s,\"pages_remote\":%" PRIu64 ",\"pages_read\":%" PRIu64
		",\"pages_written\":%" PRIu64 ",\"pages_zero_read\":%" PRIu64
		",\"read_errors\":%" PRIu64 ",\"write_errors\":%" PRIu64 ",\"failovers\":%" PRIu64
		",\"degraded_writes\":%" PRIu64 ",\"pages_freed\":%" PRIu64
		",\"invalidates\":%" PRIu64 ",\"extents_allocated\":%" PRIu64
		",\"extents_freed\":%" PRIu64 ",\"readahead_pages\":%" PRIu64
		",\"readahead_hits\":%" PRIu64 ",\"servers\":[",
		(uint64_t)st->size, (uint64_t)st->extent_bytes, st->replicas,
		st->opens ? "true" : "false", st->flags & SPILL_STATUS_DYING ? "true" : "false",
		(uint64_t)st->pages_remote, (uint64_t)st->reads, (uint64_t)st->writes,
		(uint64_t)st->zero_reads, (uint64_t)st->read_errors, (uint64_t)st->write_errors,
		(uint64_t)st->failovers, (uint64_t)st->degraded_writes, (uint64_t)st->pages_freed,
		(uint64_t)st->invalidates, (uint64_t)st->extents_allocated,
		(uint64_t)st->extents_freed, (uint64_t)st->ra_pages, (uint64_t)st->ra_hits);
	for (unsigned i = 0; i < st->nservers && i < SPILL_MAX_SERVERS; i++) {
		const struct spill_srv_status *s = &st->srv[i];
		fprintf(out, "%s{\"index\":%u,\"url\":", i ? "," : "", i);
		char label[sizeof(s->label) + 1];
		escape_json(out, FIELD(label, s->label));
		fprintf(out,
			",\"state\":\"%s\",\"connections\":%u,\"session\":%u,\"sockets_added\":%" PRIu64
			",\"reconnects\":%" PRIu64 ",\"connection_failures\":%" PRIu64
			",\"resets\":%" PRIu64 ",\"io_errors\":%" PRIu64 ",\"extents\":%" PRIu64 "}",
			srv_state(s), s->conns, s->epoch, (uint64_t)s->sockets_added,
			(uint64_t)s->reconnects, (uint64_t)s->conn_failures, (uint64_t)s->resets,
			(uint64_t)s->io_errors, (uint64_t)s->extents);
	}
	fputs("]}", out);
}

static void table_device(FILE *out, const struct spill_ioc_status *st)
{
	char size[32], ext[32], remote[32], name[sizeof(st->name) + 1];
	human_size(st->size, size, sizeof(size));
	human_size(st->extent_bytes, ext, sizeof(ext));
	human_size(st->pages_remote * 4096, remote, sizeof(remote));
	fprintf(out, "/dev/" SPILL_DISK_PREFIX "%u  %s  %s, %u cop%s, extents of %s%s%s\n",
		st->index, escape_text(FIELD(name, st->name)), size, st->replicas,
		st->replicas == 1 ? "y" : "ies", ext, st->opens ? ", in use" : "",
		st->flags & SPILL_STATUS_DYING ? ", removing" : "");
	fprintf(out, "  remote    %" PRIu64 " pages (%s)\n", (uint64_t)st->pages_remote, remote);
	fprintf(out, "  pages     read %" PRIu64 ", written %" PRIu64 ", freed %" PRIu64
		", never-written reads %" PRIu64 "\n", (uint64_t)st->reads, (uint64_t)st->writes,
		(uint64_t)st->pages_freed, (uint64_t)st->zero_reads);
	fprintf(out, "  failover  %" PRIu64 " reads from another copy, %" PRIu64
		" page writes missed a copy\n", (uint64_t)st->failovers,
		(uint64_t)st->degraded_writes);
	fprintf(out, "  errors    read %" PRIu64 " pages, write %" PRIu64 " pages\n",
		(uint64_t)st->read_errors, (uint64_t)st->write_errors);
	fprintf(out, "  extents   %" PRIu64 " allocated, %" PRIu64 " freed; %" PRIu64
		" invalidates; readahead %" PRIu64 " pages, %" PRIu64 " hits\n",
		(uint64_t)st->extents_allocated, (uint64_t)st->extents_freed,
		(uint64_t)st->invalidates, (uint64_t)st->ra_pages, (uint64_t)st->ra_hits);
	fprintf(out, "  %-6s %-28s %-5s %5s %7s %10s %8s %7s %7s\n", "SERVER", "URL", "STATE",
		"CONNS", "EXTENTS", "RECONNECTS", "FAILURES", "ERRORS", "RESETS");
	for (unsigned i = 0; i < st->nservers && i < SPILL_MAX_SERVERS; i++) {
		const struct spill_srv_status *s = &st->srv[i];
		char label[sizeof(s->label) + 1];
		fprintf(out, "  %-6u %-28s %-5s %5u %7" PRIu64 " %10" PRIu64 " %8" PRIu64
			" %7" PRIu64 " %7" PRIu64 "\n", i, escape_text(FIELD(label, s->label)),
			srv_state(s), s->conns, (uint64_t)s->extents, (uint64_t)s->reconnects,
			(uint64_t)s->conn_failures, (uint64_t)s->io_errors, (uint64_t)s->resets);
	}
}

void swap_print(FILE *out, const struct spill_ioc_status *st, size_t n, int json)
{
	if (json) {
		fputs("{\"devices\":[", out);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputc(',', out);
			json_device(out, &st[i]);
		}
		fputs("]}\n", out);
		return;
	}
	if (!n)
		fprintf(out, "no swap attachments\n");
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc('\n', out);
		table_device(out, &st[i]);
	}
}
