// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Readahead for the synchronous swap path, which skips the kernel's own:
 * after two swap-ins of consecutive slots, the next pages of the chunk are
 * fetched in one request into a small cache of the device's own pages
 * (SPILL_RA_SLOTS, allocated with the device: nothing is allocated here),
 * and later swap-ins of those slots are served by a copy. That path is
 * .rw_page on 6.1-6.2, and 6.3+ only when built with SPILL_SYNC_SWAP
 * (compat.h); otherwise swap-ins go through the swap cache and the
 * kernel's own readahead, nothing is noted here, and the cache stays empty
 * (its pages are not even allocated).
 *
 * A cached page must never be older than the device's data: every write
 * acknowledgement and every free of a page drops its cache entry, or marks
 * an entry still being fetched stale so that its data is thrown away. An
 * entry is created before the page's state is checked, so a free or write
 * that lands after the check always finds it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/mm.h>

#include "spill.h"

enum { RA_EMPTY, RA_PENDING, RA_READY };

int spill_ra_init(struct spill_dev *dev)
{
	struct spill_ra *ra = &dev->ra;
	unsigned int i;

	spin_lock_init(&ra->lock);
	init_waitqueue_head(&ra->wq);
	ra->last = U64_MAX;
#if !defined(SPILL_HAVE_RW_PAGE) && !defined(SPILL_SYNC_SWAP)
	return 0;
#endif
	for (i = 0; i < SPILL_RA_SLOTS; i++) {
		ra->slot[i].page = alloc_page(GFP_KERNEL);
		if (!ra->slot[i].page) {
			spill_ra_destroy(dev);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Frees the cache pages, once: safe to call again, or after a failed
 * spill_ra_init (dev_free calls it either way). */
void spill_ra_destroy(struct spill_dev *dev)
{
	unsigned int i;

	for (i = 0; i < SPILL_RA_SLOTS; i++) {
		if (dev->ra.slot[i].page)
			__free_page(dev->ra.slot[i].page);
		dev->ra.slot[i].page = NULL;
	}
}

/* ra->lock held: the live (not stale) entry for a page. */
static struct spill_ra_slot *ra_find(struct spill_ra *ra, u64 index)
{
	unsigned int i;

	for (i = 0; i < SPILL_RA_SLOTS; i++) {
		struct spill_ra_slot *s = &ra->slot[i];

		if (s->state != RA_EMPTY && !s->stale && s->index == index)
			return s;
	}
	return NULL;
}

static bool ra_settled(struct spill_ra_slot *s, u64 index)
{
	return READ_ONCE(s->state) != RA_PENDING || READ_ONCE(s->stale) ||
	       READ_ONCE(s->index) != index;
}

/* Copy a prefetched page into page; false if it is not in the cache. */
bool spill_ra_take(struct spill_dev *dev, u64 index, struct page *page)
{
	struct spill_ra *ra = &dev->ra;
	struct spill_ra_slot *s;

	spin_lock(&ra->lock);
	while (ra->busy && (s = ra_find(ra, index))) {
		if (s->state == RA_READY) {
			copy_highpage(page, s->page);
			s->state = RA_EMPTY;
			ra->busy--;
			spin_unlock(&ra->lock);
			return true;
		}
		/* On its way: wait for it rather than ask a second time. */
		spin_unlock(&ra->lock);
		wait_event_timeout(ra->wq, ra_settled(s, index), HZ);
		spin_lock(&ra->lock);
	}
	spin_unlock(&ra->lock);
	return false;
}

/* Pages [first, first+n) changed or were freed. Does not sleep. */
void spill_ra_forget(struct spill_dev *dev, u64 first, u64 n)
{
	struct spill_ra *ra = &dev->ra;
	unsigned int i;

	spin_lock(&ra->lock);
	for (i = 0; ra->busy && i < SPILL_RA_SLOTS; i++) {
		struct spill_ra_slot *s = &ra->slot[i];

		if (s->state == RA_EMPTY || s->index < first || s->index - first >= n)
			continue;
		if (s->state == RA_READY) {
			s->state = RA_EMPTY;
			ra->busy--;
		} else {
			s->stale = true;
		}
	}
	spin_unlock(&ra->lock);
}

/* ra->lock held: a slot for a new entry. Entries the stream has passed, or
 * far ahead of it (an abandoned stream), may be reused. */
static struct spill_ra_slot *ra_slot(struct spill_ra *ra, u64 at)
{
	struct spill_ra_slot *victim = NULL;
	unsigned int i;

	for (i = 0; i < SPILL_RA_SLOTS; i++) {
		struct spill_ra_slot *s = &ra->slot[i];

		if (s->state == RA_EMPTY)
			return s;
		if (s->state == RA_READY && (s->index < at || s->index > at + 2 * SPILL_RA_MAX))
			victim = s;
	}
	if (victim) {
		victim->state = RA_EMPTY;
		ra->busy--;
	}
	return victim;
}

static void ra_finish(struct spill_dev *dev, struct spill_ra_req *req, bool ok)
{
	struct spill_ra *ra = &dev->ra;
	unsigned int i;

	spin_lock(&ra->lock);
	for (i = 0; i < req->n; i++) {
		struct spill_ra_slot *s = &ra->slot[req->slot[i]];

		if (ok && !s->stale) {
			s->state = RA_READY;
		} else {
			s->state = RA_EMPTY;
			ra->busy--;
		}
	}
	req->busy = false;
	spin_unlock(&ra->lock);
	wake_up_all(&ra->wq);
	if (ok)
		atomic64_add(req->n, &dev->st.ra_pages);
}

static void ra_done(struct spill_cmd *cmd)
{
	ra_finish(cmd->dev, cmd->priv, !cmd->status);
	spill_cmd_free(cmd);
}

/* Fetch pages [start, end) (one chunk) into the cache, asynchronously;
 * at is the next page the stream will ask for. */
static void ra_issue(struct spill_dev *dev, u64 at, u64 start, u64 end)
{
	struct spill_ra *ra = &dev->ra;
	struct spill_ra_req *req = NULL;
	u32 c = div_u64(start, dev->extent_pages);
	unsigned int i, k = 0, copies, nr, r = 0;
	u8 order[SPILL_MAX_REPLICAS];
	struct spill_target t;
	struct spill_cmd *cmd;
	bool some, all;
	u64 p;

	spin_lock(&ra->lock);
	for (i = 0; i < SPILL_RA_REQS && !req; i++)
		if (!ra->req[i].busy)
			req = &ra->req[i];
	for (p = start; req && p < end; p++) {
		struct spill_ra_slot *s;

		if (ra_find(ra, p))
			break;
		s = ra_slot(ra, at);
		if (!s)
			break;
		s->state = RA_PENDING;
		s->index = p;
		s->stale = false;
		ra->busy++;
		req->slot[k] = s - ra->slot;
		req->bvec[k] = (struct bio_vec){ .bv_page = s->page, .bv_len = PAGE_SIZE };
		k++;
	}
	if (k) {
		req->busy = true;
		req->n = k;
		ra->next = start + k;
	}
	spin_unlock(&ra->lock);
	if (!k)
		return;

	/* The entries exist: a free or write from now on marks them stale. */
	copies = spill_map_copies(dev, start, k, &some, &all);
	nr = all ? spill_read_order(dev, c, copies, order) : 0;
	for (i = 0; i < nr; i++) {
		r = order[i];
		if (spill_map_target(dev, c, r, &t) && spill_server_up(dev, t.server))
			break;
	}
	if (i == nr) {
		ra_finish(dev, req, false);
		return;
	}
	cmd = spill_cmd_alloc(dev);
	cmd->op = SPILL_OP_READ;
	cmd->extent = t.extent;
	cmd->page = start - (u64)c * dev->extent_pages;
	cmd->npages = k;
	cmd->server = t.server;
	cmd->epoch = t.epoch;
	cmd->copy = r;
	cmd->bvec = req->bvec;
	cmd->iter = (struct bvec_iter){ .bi_size = k * PAGE_SIZE };
	cmd->done = ra_done;
	cmd->priv = req;
	if (spill_submit(cmd)) {
		cmd->status = -ENOTCONN;
		ra_done(cmd);
	}
}

/* A swap-in of page index succeeded: follow a sequential stream. */
void spill_ra_note(struct spill_dev *dev, u64 index)
{
	unsigned int window = min_t(unsigned int, READ_ONCE(spill_readahead), SPILL_RA_MAX);
	struct spill_ra *ra = &dev->ra;
	u64 start, end, chunk_end;

	if (!window)
		return;
	spin_lock(&ra->lock);
	if (index != ra->last + 1) {
		ra->last = index;
		ra->streak = 0;
		ra->next = 0;
		spin_unlock(&ra->lock);
		return;
	}
	ra->last = index;
	ra->streak++;
	start = max(index + 1, ra->next);
	/* From the second sequential read on; top up when half is used. */
	if (ra->streak < 2 || start > index + window / 2) {
		spin_unlock(&ra->lock);
		return;
	}
	spin_unlock(&ra->lock);
	chunk_end = (div_u64(index, dev->extent_pages) + 1) * (u64)dev->extent_pages;
	end = min3(index + 1 + window, chunk_end, dev->npages);
	if (start < end)
		ra_issue(dev, index + 1, start, end);
}
