/* SPDX-License-Identifier: MIT */
/*
 * READ, WRITE, INVALIDATE and PING. The extent is found in the RCU hash table
 * and pinned by a reference for the copy. READs take no lock; a WRITE or
 * INVALIDATE (whole and checked: conn.c never lands a payload in an extent)
 * is committed under the extent's commit lock, page by page, by write
 * version (proto/wire.h). Ownership and range are checked before any byte
 * moves. Someone else's extent gets the
 * same answer as a missing one (ENOEXTENT), so a client learns nothing about
 * other clients' ids; only the metrics tell the two apart.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

#include "conn.h"
#include "log.h"
#include "registry.h"
#include "server.h"

static const uint8_t zero_page[SPILL_PAGE_SIZE];

static uint32_t zero_crc;
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static void zero_crc_init(void)
{
	zero_crc = crc32c_raw(0, zero_page, sizeof(zero_page));
}

static uint32_t zero_page_crc(void)
{
	pthread_once(&zero_once, zero_crc_init);
	return zero_crc;
}

static int page_present(struct reg_extent *e, uint32_t page)
{
	uint64_t word = atomic_load_explicit(&e->present[page / 64], memory_order_acquire);
	return (word >> (page % 64)) & 1;
}

/* Set (on) or clear the presence bits of [page, page + n). */
static void mark_pages(struct reg_extent *e, uint32_t page, uint32_t n, int on)
{
	while (n) {
		uint32_t bit = page % 64, take = 64 - bit < n ? 64 - bit : n;
		uint64_t mask = take == 64 ? ~0ull : ((1ull << take) - 1) << bit;
		if (on)
			atomic_fetch_or_explicit(&e->present[page / 64], mask, memory_order_release);
		else
			atomic_fetch_and_explicit(&e->present[page / 64], ~mask, memory_order_release);
		page += take;
		n -= take;
	}
}

/*
 * Apply a whole, checked WRITE (payload: its pages) or an INVALIDATE
 * (payload NULL) to every page whose version is not newer than the frame's;
 * pages already at a newer version keep it. Returns how many were kept.
 *
 * Under the extent's commit lock, so writes of the same pages that came on
 * different connections are applied one after the other, never mixed, and
 * in the order of their versions whatever order they arrived in.
 */
static uint32_t commit(struct reg_extent *e, const struct frame_hdr *h, const uint8_t *payload,
		       const uint32_t *page_crc)
{
	uint32_t kept = 0;
	pthread_mutex_lock(&e->commit_lock);
	for (uint32_t i = 0; i < h->npages;) {
		uint32_t p = h->page + i;
		if (h->wver < atomic_load_explicit(&e->page_ver[p], memory_order_relaxed)) {
			kept++;
			i++;
			continue;
		}
		/* A run of pages this frame may change, applied as one copy. */
		uint32_t n = 1;
		while (i + n < h->npages &&
		       h->wver >= atomic_load_explicit(&e->page_ver[p + n], memory_order_relaxed))
			n++;
		for (uint32_t k = 0; k < n; k++)
			atomic_store_explicit(&e->page_ver[p + k], h->wver, memory_order_relaxed);
		if (!payload) {
			mark_pages(e, p, n, 0);
		} else {
			memcpy(e->block.mem + (size_t)p * SPILL_PAGE_SIZE,
			       payload + (size_t)i * SPILL_PAGE_SIZE, (size_t)n * SPILL_PAGE_SIZE);
			/* The CRCs first: a reader that sees a page present reads
			 * its CRC. A READ racing this WRITE (another connection of
			 * the same client) may pair old and new: its client sees a
			 * checksum error, never silently wrong bytes. */
			for (uint32_t k = 0; k < n; k++)
				atomic_store_explicit(&e->page_crc[p + k], page_crc[i + k],
						      memory_order_relaxed);
			mark_pages(e, p, n, 1);
		}
		i += n;
	}
	pthread_mutex_unlock(&e->commit_lock);
	return kept;
}

static void do_commit(struct conn *c, const struct frame_hdr *h, struct reg_extent *e,
		      const uint8_t *payload)
{
	uint32_t kept = commit(e, h, h->op == SPILL_OP_WRITE ? payload : NULL, c->rx_page_crc);
	if (h->op == SPILL_OP_WRITE) {
		uint64_t applied = h->npages - kept;
		metrics_inc(&server_stats.bytes[STATS_OP_WRITE], applied * SPILL_PAGE_SIZE);
		metrics_inc(&c->client->pages_written, applied);
	}
	if (kept) {
		/* Only a write its client has given up on (a timed-out or cut
		 * connection) can be older than what the pages hold. */
		metrics_inc(&server_stats.errors[STATS_ERR_STALE], kept);
		conn_reply(c, h, SPILL_ST_ESTALE, 0, NULL, 0);
		return;
	}
	conn_reply(c, h, SPILL_ST_OK, 0, NULL, 0);
}

static void do_read(struct conn *c, const struct frame_hdr *h, struct reg_extent *e)
{
	uint8_t *mem = e->block.mem + (size_t)h->page * SPILL_PAGE_SIZE;
	if (atomic_load_explicit(&e->onesided, memory_order_acquire)) {
		/* RDMA writes bypass us: checksum the pages as they are now. A
		 * write racing this read shows as a checksum error at the
		 * client, never as silently mixed bytes. */
		for (uint32_t i = 0; i < h->npages; i++)
			atomic_store_explicit(&e->page_crc[h->page + i],
					      crc32c_raw(0, mem + (size_t)i * SPILL_PAGE_SIZE,
							 SPILL_PAGE_SIZE),
					      memory_order_relaxed);
		mark_pages(e, h->page, h->npages, 1);
	}
	uint8_t map[SPILL_PRESENT_MAP_BYTES] = { 0 };
	int absent = 0;
	for (uint32_t i = 0; i < h->npages; i++) {
		if (page_present(e, h->page + i))
			map[i / 8] |= (uint8_t)(1u << (i % 8));
		else
			absent++;
	}
	if (!absent) {
		conn_reply_pages(c, h, e, mem, (size_t)h->npages * SPILL_PAGE_SIZE);
	} else {
		/* Absent pages go out as zeros, and the map says which they are,
		 * so the client can never take them for data. */
		struct iovec iov[SPILL_MAX_BATCH_PAGES + 1];
		uint32_t raw[SPILL_MAX_BATCH_PAGES];
		iov[0] = (struct iovec){ map, sizeof(map) };
		for (uint32_t i = 0; i < h->npages; i++) {
			int here = map[i / 8] & (1u << (i % 8));
			iov[i + 1] = (struct iovec){
				here ? mem + (size_t)i * SPILL_PAGE_SIZE : (void *)zero_page,
				SPILL_PAGE_SIZE };
			raw[i] = here ? atomic_load_explicit(&e->page_crc[h->page + i],
							     memory_order_relaxed)
				      : zero_page_crc();
		}
		metrics_inc(&server_stats.errors[STATS_ERR_ABSENT], 1);
		conn_reply_absent(c, h, iov, (int)h->npages + 1, raw);
	}
	metrics_inc(&server_stats.bytes[STATS_OP_READ], (uint64_t)h->npages * SPILL_PAGE_SIZE);
	metrics_inc(&c->client->pages_read, h->npages);
}

static void refuse(struct conn *c, const struct frame_hdr *h, uint16_t status,
		   enum stats_err kind)
{
	metrics_inc(&server_stats.errors[kind], 1);
	conn_reply(c, h, status, 0, NULL, 0);
}

/* The binary twins of AllocExtent/FreeExtent (see proto/wire.h). */
static void do_alloc(struct conn *c, const struct frame_hdr *h)
{
	struct reg_extent_info info;
	int node = h->page == SPILL_NODE_ANY ? c->node : (int)h->page; /* any: the conn's node */
	int rc = registry_alloc(c->srv->reg, c->client, 1, node, &info);
	if (rc) {
		refuse(c, h, frame_errno_to_status(rc),
		       rc == -EDQUOT ? STATS_ERR_OVER_LIMIT : STATS_ERR_POOL_FULL);
		return;
	}
	struct frame_hdr r = *h;
	r.extent_id = info.id;
	conn_reply(c, &r, SPILL_ST_OK, 0, NULL, 0);
}

/* RDMA: the remote key of an extent this connection's identity owns. */
static void do_key(struct conn *c, const struct frame_hdr *h, struct reg_extent *e)
{
	if (!c->rdma_dom || !c->onesided) {
		refuse(c, h, SPILL_ST_ENOTSUP, STATS_ERR_PROTOCOL);
		return;
	}
	uint64_t addr;
	uint32_t rkey;
	int rc = registry_rdma_key(c->srv->reg, c->client, e, c->rdma_dom, &addr, &rkey);
	if (rc) {
		log_warn("%s: no remote key for extent %llu: %s", c->peer,
			 (unsigned long long)h->extent_id, strerror(-rc));
		refuse(c, h, frame_errno_to_status(rc), STATS_ERR_NO_EXTENT);
		return;
	}
	struct spill_wire_key k = { htole64(addr), htole32(rkey), htole32(e->npages) };
	struct iovec iov = { &k, sizeof(k) };
	conn_reply(c, h, SPILL_ST_OK, 0, &iov, 1);
}

static void do_free(struct conn *c, const struct frame_hdr *h)
{
	uint64_t id = h->extent_id;
	if (registry_free(c->srv->reg, c->client, &id, 1) == 1)
		conn_reply(c, h, SPILL_ST_OK, 0, NULL, 0);
	else
		refuse(c, h, SPILL_ST_ENOEXTENT, STATS_ERR_NO_EXTENT);
}

void dataplane_handle(struct conn *c, const struct frame_hdr *h, uint8_t *payload)
{
	if (c->state == CONN_HELLO || c->state == CONN_AUTH) {
		conn_fail(c, STATS_ERR_AUTH, "data frame before the handshake finished");
		return;
	}
	if (h->op == SPILL_OP_PING) {
		conn_reply(c, h, SPILL_ST_OK, 0, NULL, 0);
		return;
	}
	if (c->state != CONN_REGISTERED) {
		refuse(c, h, SPILL_ST_ENOREG, STATS_ERR_UNREGISTERED);
		return;
	}
	if (h->op == SPILL_OP_ALLOC) {
		do_alloc(c, h);
		return;
	}
	if (h->op == SPILL_OP_FREE) {
		do_free(c, h);
		return;
	}
	rcu_read_lock();
	struct reg_extent *e = registry_extent_get(c->srv->reg, h->extent_id);
	rcu_read_unlock();
	if (!e) {
		refuse(c, h, SPILL_ST_ENOEXTENT, STATS_ERR_NO_EXTENT);
		return;
	}
	if (e->owner_id != c->client->id) {
		refuse(c, h, SPILL_ST_ENOEXTENT, STATS_ERR_NOT_OWNED);
		goto out;
	}
	if ((uint64_t)h->page + h->npages > e->npages) {
		refuse(c, h, SPILL_ST_ERANGE, STATS_ERR_RANGE);
		goto out;
	}
	switch (h->op) {
	case SPILL_OP_WRITE:
	case SPILL_OP_INVALIDATE:
		do_commit(c, h, e, payload);
		break;
	case SPILL_OP_READ:
		do_read(c, h, e);
		break;
	case SPILL_OP_KEY:
		do_key(c, h, e);
		break;
	}
out:
	registry_extent_put(e);
}
