/* SPDX-License-Identifier: MIT */
/*
 * Copy currency: which replicas of a far page hold the bytes last written to
 * it, and rebuilding the ones that do not.
 *
 * x->cur has one 16-bit mask per page, bit s for server s. A WRITE sets the
 * mask of its pages to exactly the servers that acknowledged it, so a
 * replica that missed the write (cut, timed out, refused) stops counting for
 * those pages at once. Invariants:
 *  - a bit counts only while server s is in the chunk's placement: every
 *    reader intersects the mask with the placement (and with servers up);
 *  - a server entering a chunk's placement starts current for no page
 *    (copies_reset_server), so bits left from an earlier extent there never
 *    count again;
 *  - masks change only under the chunk's lock (the evictor's writes, repair,
 *    placement changes); readers load them without it, after claiming the
 *    page (BUSY), which orders them after the evictor's last write of it.
 * Reads use only current copies; a page with none on a live server and none
 * locally is lost (SIGBUS). Eviction may drop a page once one copy is
 * current; the group is then marked degraded and the service thread copies
 * the missing pages from a current replica (copies_fill).
 */
#include <errno.h>
#include <string.h>

#include "pager.h"

/* Servers of the chunk's placement that are up, as a server mask. */
static uint16_t live_placement(spill_ctx *x, uint32_t chunk)
{
	struct loc_snap l;
	chunk_snapshot(x, chunk, &l);
	uint16_t m = 0;
	for (int i = 0; i < l.nrep; i++)
		if (l.ext[i] && atomic_load(&x->servers[l.srv[i]].up))
			m |= (uint16_t)(1u << l.srv[i]);
	return m;
}

void copies_set_degraded(spill_ctx *x, uint32_t chunk, int on)
{
	if (atomic_exchange(&x->chunks[chunk].degraded, (unsigned char)on) != on)
		atomic_fetch_add(&x->st.degraded_groups, on ? 1 : -1);
}

void copies_written(spill_ctx *x, uint32_t gpn, uint16_t n, uint16_t acked)
{
	for (uint32_t i = 0; i < n; i++)
		atomic_store_explicit(&x->cur[gpn + i], acked, memory_order_release);
	uint32_t chunk = gpn >> CHUNK_SHIFT;
	uint16_t missed = live_placement(x, chunk) & (uint16_t)~acked;
	if (!missed)
		return;
	atomic_fetch_add(&x->st.copies_missed, (uint64_t)n * (uint64_t)__builtin_popcount(missed));
	copies_set_degraded(x, chunk, 1);
	atomic_store(&x->repair_needed, 1);
	service_wake(x);
}

int copies_readable(spill_ctx *x, uint32_t gpn)
{
	return (live_placement(x, gpn >> CHUNK_SHIFT) & copies_current(x, gpn)) != 0;
}

int copies_cover(spill_ctx *x, const struct read_run *r, int s)
{
	uint16_t bit = (uint16_t)(1u << s);
	for (unsigned i = 0; i < r->n; i++)
		if ((r->need[i / 8] >> (i % 8) & 1) && !(copies_current(x, r->gpn + i) & bit))
			return 0;
	return 1;
}

void copies_reset_server(spill_ctx *x, uint32_t chunk, int s)
{
	uint16_t keep = (uint16_t)~(1u << s);
	uint32_t first = chunk << CHUNK_SHIFT;
	for (uint32_t p = 0; p < CHUNK_PAGES; p++)
		atomic_fetch_and_explicit(&x->cur[first + p], keep, memory_order_release);
}

int copies_only_on(spill_ctx *x, uint32_t chunk, int s)
{
	uint16_t bit = (uint16_t)(1u << s), others = live_placement(x, chunk) & (uint16_t)~bit;
	uint32_t first = chunk << CHUNK_SHIFT;
	for (uint32_t p = 0; p < CHUNK_PAGES; p++) {
		uint16_t c = copies_current(x, first + p);
		if ((c & bit) && !(c & others))
			return 1;
	}
	return 0;
}

/* The live servers page gpn can be copied from to server bit, or 0 when it
 * needs no copy (current there already, never written, or lost). */
static uint16_t sources(spill_ctx *x, uint32_t gpn, uint16_t bit, uint16_t live)
{
	uint16_t c = copies_current(x, gpn);
	if ((c & bit) || (pte_load(x, gpn) & PTE_LOST))
		return 0;
	return c & live;
}

/* Write n pages from buf to (s, ext) on the control connection; one
 * reconnection is tried. 0 or -errno. */
static int write_copy(spill_ctx *x, int s, uint64_t ext, uint32_t page, uint16_t n,
		      const void *buf)
{
	struct server_conn *sc = server_conn_get(x, s, CONN_CTRL);
	int rc = client_write(sc->c, ext, page, n, buf);
	if (rc && client_dead(sc->c)) {
		/* Reconnected: the server stays, this copy waits for the next
		 * round. Not reconnected: the server is gone. */
		if (server_conn_repair(x, s, sc))
			server_failed(x, s, rc);
	}
	server_conn_put(sc);
	return rc;
}

int copies_fill(spill_ctx *x, uint32_t chunk, int s, uint64_t ext, int fresh)
{
	uint32_t first = chunk << CHUNK_SHIFT;
	uint16_t bit = (uint16_t)(1u << s);
	uint16_t live = live_placement(x, chunk) & (uint16_t)~bit;
	int rc = 0, failed = 0;
	for (uint32_t p = 0; p < CHUNK_PAGES && !rc;) {
		uint16_t from = sources(x, first + p, bit, live);
		if (!from) {
			p++;
			continue;
		}
		/* A stretch whose pages are current on the same servers: one
		 * READ from any of them, one WRITE to s. */
		uint32_t e = p + 1;
		while (e < CHUNK_PAGES && sources(x, first + e, bit, live) == from)
			e++;
		struct read_run rr = { .gpn = first + p, .n = (uint16_t)(e - p),
				       .buf = x->repair_buf, .status = -EAGAIN };
		memset(rr.need, 0, sizeof(rr.need));
		for (uint32_t i = 0; i < e - p; i++)
			rr.need[i / 8] |= (uint8_t)(1u << (i % 8));
		if (remote_read_runs(x, &rr, 1, CONN_CTRL)) {
			/* No current copy answered: those pages are lost
			 * remotely (a fault finds out); the rest go on. */
			failed = 1;
			p = e;
			continue;
		}
		rc = write_copy(x, s, ext, p, (uint16_t)(e - p), x->repair_buf);
		if (rc)
			break;
		for (uint32_t g = first + p; g < first + e; g++)
			atomic_fetch_or_explicit(&x->cur[g], bit, memory_order_release);
		atomic_fetch_add(fresh ? &x->st.rereplicated : &x->st.repaired, (uint64_t)(e - p));
		p = e;
	}
	if (rc == -ENOENT && placement_replica_on(x, chunk, s) >= 0)
		placement_drop_locked(x, chunk, s, ext); /* revoked: place anew */
	return rc ? rc : failed ? -EIO : 0;
}
