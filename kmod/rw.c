// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Reads, writes and discards.
 *
 * A request is cut at chunk boundaries (and at 512 pages) into pieces; a
 * piece is one network request per copy, so a 2 MiB huge page swapped out
 * in one bio leaves as one WRITE to each server.
 *
 * Writes are asynchronous: the submitter sends a piece to every reachable
 * copy and returns; the bio (or, through .rw_page, the page's writeback)
 * completes from a receive thread once every copy has answered. A piece
 * succeeds when at least one copy stored it; the copies that did not are
 * recorded as not holding those pages.
 *
 * Reads are synchronous: one copy after the other, clearly faster servers
 * first (spill_read_order), until one returns the pages, waiting (up to reconnect_wait) for spillctl to reconnect when no
 * copy's server is reachable. A range whose pages are current on different
 * copies is read in runs that share one; a copy that answers it lacks some
 * pages of a run is asked again page by page, and loses only those pages.
 * A failed read kills the page's owner, a
 * failed write only keeps the page in memory, so writes wait a second at
 * most. A page never written reads as zeros; a
 * written page that no copy can return fails the read. Never zeros, never
 * stale bytes.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/swap.h>

#include "spill.h"

/* One write from the block layer, until all its pieces are done. */
struct spill_wio {
	struct spill_dev *dev;
	struct bio *bio;        /* a bio, or */
	struct page *page;      /* a page written through .rw_page, */
	struct bio_vec bv;      /* and the bvec table for it */
	atomic_t pending;
	int error;
};

/* The pages of a write inside one chunk, sent to each copy. */
struct spill_piece {
	struct spill_wio *wio;
	u64 first;
	u32 n;
	atomic_t pending;
	unsigned long ok;       /* copies that stored the pages */
};

/* One read bio, until it is complete (asynchronous reads). */
struct spill_rio {
	struct spill_dev *dev;
	struct bio *bio;
	struct work_struct work;   /* the synchronous rules, off the receive thread */
	bool failover;             /* sent to a copy after skipping an unreachable one */
};

int spill_rw_init(struct spill_dev *dev)
{
	dev->cmd_pool = mempool_create_kmalloc_pool(64, sizeof(struct spill_cmd));
	dev->wio_pool = mempool_create_kmalloc_pool(16, sizeof(struct spill_wio));
	dev->piece_pool = mempool_create_kmalloc_pool(16, sizeof(struct spill_piece));
	dev->rio_pool = mempool_create_kmalloc_pool(16, sizeof(struct spill_rio));
	/* Not spill_wq: a read waiting for a reconnect must not hold up the
	 * watchdog or the reaper that brings the reconnect. */
	dev->read_wq = alloc_workqueue("spillway-read", WQ_MEM_RECLAIM, 0);
	if (!dev->cmd_pool || !dev->wio_pool || !dev->piece_pool || !dev->rio_pool ||
	    !dev->read_wq) {
		spill_rw_exit(dev);
		return -ENOMEM;
	}
	return 0;
}

/* Frees what spill_rw_init made, once: safe to call again, or after a
 * failed init (dev_free calls it either way). */
void spill_rw_exit(struct spill_dev *dev)
{
	if (dev->read_wq)
		destroy_workqueue(dev->read_wq);
	dev->read_wq = NULL;
	mempool_destroy(dev->rio_pool);
	dev->rio_pool = NULL;
	mempool_destroy(dev->piece_pool);
	mempool_destroy(dev->wio_pool);
	mempool_destroy(dev->cmd_pool);
	dev->piece_pool = NULL;
	dev->wio_pool = NULL;
	dev->cmd_pool = NULL;
}

static u32 page_in_chunk(const struct spill_dev *dev, u64 page)
{
	u32 rem;

	div_u64_rem(page, dev->extent_pages, &rem);
	return rem;
}

/* Pages of the next piece: up to the chunk's end and the batch limit. */
static u32 piece_pages(const struct spill_dev *dev, u64 first, u32 left)
{
	u32 to_end = dev->extent_pages - page_in_chunk(dev, first);

	return min3(left, to_end, SPILL_MAX_BATCH_PAGES);
}

/* --- writes -------------------------------------------------------------- */

#ifdef SPILL_HAVE_RW_PAGE
static void rw_page_write_done(struct page *page, int err)
{
	if (!err) {
		page_endio(page, true, 0);
	} else if (PageSwapCache(page)) {
		/* As end_swap_bio_write(): keep the page, dirty, and retry later. */
		SetPageError(page);
		set_page_dirty(page);
		ClearPageReclaim(page);
		end_page_writeback(page);
	} else {
		page_endio(page, true, err);
	}
}
#endif

static struct spill_wio *wio_alloc(struct spill_dev *dev)
{
	struct spill_wio *wio = mempool_alloc(dev->wio_pool, GFP_NOIO);

	memset(wio, 0, sizeof(*wio));
	wio->dev = dev;
	atomic_set(&wio->pending, 1);
	spill_io_begin(dev);
	return wio;
}

static void wio_put(struct spill_wio *wio)
{
	struct spill_dev *dev = wio->dev;
	int err;

	if (!atomic_dec_and_test(&wio->pending))
		return;
	err = READ_ONCE(wio->error);
	if (wio->bio) {
		wio->bio->bi_status = errno_to_blk_status(err);
		bio_endio(wio->bio);
	}
#ifdef SPILL_HAVE_RW_PAGE
	else {
		rw_page_write_done(wio->page, err);
	}
#endif
	mempool_free(wio, dev->wio_pool);
	spill_io_end(dev);
}

static void piece_put(struct spill_piece *pc)
{
	struct spill_wio *wio = pc->wio;
	struct spill_dev *dev = wio->dev;
	unsigned int ok;

	if (!atomic_dec_and_test(&pc->pending))
		return;
	ok = READ_ONCE(pc->ok);
	spill_map_end_write(dev, pc->first, pc->n, ok);
	if (!ok) {
		atomic64_add(pc->n, &dev->st.write_errors);
		WRITE_ONCE(wio->error, -EIO);
		dev_err_ratelimited(disk_to_dev(dev->disk), "pages %llu+%u: no copy could be written\n",
				    pc->first, pc->n);
	} else {
		atomic64_add(pc->n, &dev->st.writes);
		if (hweight_long(ok) < dev->replicas)
			atomic64_add(pc->n, &dev->st.degraded_writes);
	}
	mempool_free(pc, dev->piece_pool);
	wio_put(wio);
}

static void piece_cmd_done(struct spill_cmd *cmd)
{
	struct spill_piece *pc = cmd->priv;

	/*
	 * -ESTALE: the server kept, for some of these pages, a write with a
	 * newer version than ours (it applied the others). Only another bio
	 * of this device can be that write, one that overlapped this one
	 * and whose frame was built later but arrived first: the copy then
	 * holds data no older than this bio's, as after any two overlapping
	 * writes, and counts as current. Background work cannot be the newer
	 * one: an INVALIDATE reserves its version before this slot was
	 * written again, and repair.c reserves its version before it looks
	 * at a chunk and leaves alone a chunk with a write in flight, so
	 * every block-layer write it could meet was built after its
	 * reservation. Counted, so an operator can see it happen.
	 */
	if (!cmd->status || cmd->status == -ESTALE) {
		set_bit(cmd->copy, &pc->ok);
		if (cmd->status)
			atomic64_inc(&cmd->dev->st.fenced_writes);
	} else if (cmd->status != -ENOTCONN) {
		atomic64_inc(&cmd->dev->srv[cmd->server].io_errors);
	}
	spill_cmd_free(cmd);
	piece_put(pc);
}

static void write_piece(struct spill_wio *wio, u64 first, u32 n,
			const struct bio_vec *bvec, struct bvec_iter iter)
{
	struct spill_target t[SPILL_MAX_REPLICAS];
	struct spill_dev *dev = wio->dev;
	struct spill_piece *pc;
	int i, nt;

	nt = spill_map_begin_write(dev, first, n, t);
	if (nt < 0) {
		atomic64_add(n, &dev->st.write_errors);
		WRITE_ONCE(wio->error, nt);
		dev_err_ratelimited(disk_to_dev(dev->disk), "pages %llu+%u: %s (%d)\n", first, n,
				    nt == -ENOTCONN ? "no server reachable" :
				    nt == -ENOSPC || nt == -EDQUOT ?
				    "no server has room (device larger than the servers lend?)" :
				    "no server gave an extent", nt);
		return;
	}
	pc = mempool_alloc(dev->piece_pool, GFP_NOIO);
	pc->wio = wio;
	pc->first = first;
	pc->n = n;
	pc->ok = 0;
	atomic_set(&pc->pending, nt + 1);
	atomic_inc(&wio->pending);
	for (i = 0; i < nt; i++) {
		struct spill_cmd *cmd = spill_cmd_alloc(dev);

		cmd->op = SPILL_OP_WRITE;
		cmd->extent = t[i].extent;
		cmd->page = page_in_chunk(dev, first);
		cmd->npages = n;
		cmd->server = t[i].server;
		cmd->epoch = t[i].epoch;
		cmd->copy = t[i].copy;
		cmd->bvec = bvec;
		cmd->iter = iter;
		cmd->done = piece_cmd_done;
		cmd->priv = pc;
		if (spill_submit(cmd)) {
			cmd->status = -ENOTCONN;
			piece_cmd_done(cmd);
		}
	}
	piece_put(pc);
}

static void write_bio(struct spill_dev *dev, struct bio *bio)
{
	struct spill_wio *wio = wio_alloc(dev);
	struct bvec_iter iter = bio->bi_iter;

	wio->bio = bio;
	while (iter.bi_size) {
		u64 first = iter.bi_sector >> (PAGE_SHIFT - SECTOR_SHIFT);
		u32 n = piece_pages(dev, first, iter.bi_size >> PAGE_SHIFT);
		struct bvec_iter piece = iter;

		piece.bi_size = n << PAGE_SHIFT;
		write_piece(wio, first, n, bio->bi_io_vec, piece);
		bio_advance_iter(bio, &iter, piece.bi_size);
	}
	wio_put(wio);
}

/* --- reads --------------------------------------------------------------- */

static void zero_bvec(const struct bio_vec *bvec, struct bvec_iter iter)
{
	struct bvec_iter it;
	struct bio_vec bv;

	for_each_bvec(bv, bvec, it, iter)
		memzero_page(bv.bv_page, bv.bv_offset, bv.bv_len);
}

/* The connection, not the server's answer, failed: worth another try. */
static bool transient(int rc)
{
	return rc == -ENOTCONN || rc == -EPIPE || rc == -ETIMEDOUT;
}

/* The server said it does not hold the pages there (or not for us). */
static bool lacks_pages(int rc)
{
	return rc == -ENOENT || rc == -ENODATA || rc == -ERANGE || rc == -EPERM;
}

/* The part of iter that covers pages [at, at+n) of its range. */
static struct bvec_iter sub_iter(const struct bio_vec *bvec, struct bvec_iter iter,
				 u32 at, u32 n)
{
	bvec_iter_advance(bvec, &iter, at << PAGE_SHIFT);
	iter.bi_size = n << PAGE_SHIFT;
	return iter;
}

/*
 * Can pages [first, first+n) be read as one request: none written (zeros),
 * or all written and current together on some copy? True for a shorter
 * range whenever it is for a longer one.
 */
static bool one_request(struct spill_dev *dev, u64 first, u32 n, bool *diverged)
{
	bool some, all;
	unsigned int copies = spill_map_copies(dev, first, n, &some, &all);

	if (some && !copies)
		*diverged = true;
	return !some || (all && copies);
}

/* The longest run from first (at most n pages, at least one) that
 * one_request() accepts; *diverged if a longer one failed for want of a
 * copy current on all its pages. */
static u32 run_pages(struct spill_dev *dev, u64 first, u32 n, bool *diverged)
{
	u32 lo = 1, hi;

	if (n == 1 || one_request(dev, first, n, diverged))
		return n;
	hi = n - 1;
	while (lo < hi) {
		u32 mid = lo + (hi - lo + 1) / 2;

		if (one_request(dev, first, mid, diverged))
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* A READ of pages [first, first+n) of one chunk from copy t, into iter. */
static struct spill_cmd *read_cmd(struct spill_dev *dev, const struct spill_target *t,
				  u64 first, u32 n, const struct bio_vec *bvec,
				  struct bvec_iter iter)
{
	struct spill_cmd *cmd = spill_cmd_alloc(dev);

	cmd->op = SPILL_OP_READ;
	cmd->extent = t->extent;
	cmd->page = page_in_chunk(dev, first);
	cmd->npages = n;
	cmd->server = t->server;
	cmd->epoch = t->epoch;
	cmd->copy = t->copy;
	cmd->bvec = bvec;
	cmd->iter = iter;
	return cmd;
}

/*
 * Read one run of pages from the first copy that returns it all. -ENODATA
 * (only when n > 1) asks the caller to read the run page by page: a copy
 * answered that it lacks some of the pages (the presence map does not say
 * which to us) or the run stopped being one request meanwhile. A copy is
 * dropped only for pages it is known to lack, so a single absent page
 * costs that copy nothing else. Waits for a reconnect until deadline.
 */
static int read_run(struct spill_dev *dev, u64 first, u32 n,
		    const struct bio_vec *bvec, struct bvec_iter iter,
		    unsigned long deadline)
{
	u32 c = div_u64(first, dev->extent_pages);
	bool some, all, failed = false;

	for (;;) {
		unsigned int copies = spill_map_copies(dev, first, n, &some, &all);
		unsigned long servers = 0;
		bool again = false, backoff = false, moved = false;
		u8 order[SPILL_MAX_REPLICAS];
		unsigned int i, nr;

		if (!some) {
			zero_bvec(bvec, iter);
			atomic64_add(n, &dev->st.zero_reads);
			return 0;
		}
		if (n > 1 && (!all || !copies))
			return -ENODATA;

		nr = spill_read_order(dev, c, copies, order);
		for (i = 0; i < nr; i++) {
			unsigned int r = order[i];
			struct spill_target t;
			struct spill_cmd *cmd;
			int rc;

			if (!spill_map_target(dev, c, r, &t)) {
				/* Its server forgot us since: that copy is gone. */
				spill_map_drop_copy(dev, first, n, r);
				failed = true;
				continue;
			}
			servers |= BIT(t.server);
			cmd = read_cmd(dev, &t, first, n, bvec, iter);
			rc = spill_exec(cmd);
			spill_cmd_free(cmd);
			if (!rc) {
				atomic64_add(n, &dev->st.reads);
				if (failed)
					atomic64_inc(&dev->st.failovers);
				return 0;
			}
			if (rc == -ENODATA && n > 1)
				return -ENODATA;
			failed = true;
			if (rc != -ENOTCONN)
				atomic64_inc(&dev->srv[t.server].io_errors);
			if (transient(rc)) {
				again = true;
				/* A drained server may be gone once its copies moved
				 * off: read from where the copy is now, at once,
				 * rather than wait for the old server. */
				moved |= !spill_map_target_current(dev, c, &t);
				continue;
			}
			if (!lacks_pages(rc)) {
				/* An error that says nothing of the data (the server is
				 * short of memory, busy, ...): keep the copy, try later. */
				again = true;
				backoff = true;
				continue;
			}
			/* The server answered: it does not hold these pages, or
			 * the copy moved off it since (migrate.c): read again. */
			if (!spill_map_drop_target(dev, first, n, &t)) {
				again = true;
				continue;
			}
			dev_err_ratelimited(disk_to_dev(dev->disk), "server %u lacks pages %llu+%u (%d)\n",
					    t.server, first, n, rc);
		}
		if (!again || time_after(jiffies, deadline) ||
		    (!moved && !spill_wait_servers(dev, servers, deadline)))
			break;
		if (backoff)
			schedule_timeout_uninterruptible(HZ / 10);
	}
	atomic64_add(n, &dev->st.read_errors);
	dev_err_ratelimited(disk_to_dev(dev->disk), "pages %llu+%u: no copy could be read\n",
			    first, n);
	return -EIO;
}

/*
 * Read pages [first, first+n) of one chunk into the bytes iter covers: in
 * as few requests as the page states allow. Unwritten pages read as zeros,
 * written ones from a copy current on all of a run; pages whose current
 * copies differ (a copy missed some writes) are read in several runs, and a
 * run a copy partly lacks is read again page by page (read_fallbacks
 * counts both). A written page no copy can return fails the read.
 */
int spill_read_pages(struct spill_dev *dev, u64 first, u32 n,
		     const struct bio_vec *bvec, struct bvec_iter iter)
{
	unsigned long deadline = jiffies + READ_ONCE(spill_reconnect_wait) * HZ;
	bool fallback = false;
	u32 at = 0;
	int rc = 0;

	while (!rc && at < n) {
		u32 len = run_pages(dev, first + at, n - at, &fallback);
		u32 i;

		rc = read_run(dev, first + at, len, bvec, sub_iter(bvec, iter, at, len),
			      deadline);
		if (rc == -ENODATA) {
			fallback = true;
			for (i = 0, rc = 0; !rc && i < len; i++)
				rc = read_run(dev, first + at + i, 1, bvec,
					      sub_iter(bvec, iter, at + i, 1), deadline);
		}
		at += len;
	}
	if (fallback)
		atomic64_inc(&dev->st.read_fallbacks);
	return rc;
}

#if defined(SPILL_HAVE_RW_PAGE) || defined(SPILL_SYNC_SWAP)
/* One page read by the synchronous swap-in path: prefetched pages first. */
static int read_one(struct spill_dev *dev, u64 index, struct page *page)
{
	struct bio_vec bv = { .bv_page = page, .bv_len = PAGE_SIZE, .bv_offset = 0 };
	struct bvec_iter iter = { .bi_size = PAGE_SIZE };
	int rc;

	if (spill_ra_take(dev, index, page)) {
		atomic64_inc(&dev->st.ra_hits);
		spill_ra_note(dev, index);
		return 0;
	}
	rc = spill_read_pages(dev, index, 1, &bv, iter);
	if (!rc)
		spill_ra_note(dev, index);
	return rc;
}
#endif

/* Every piece of a read bio, one after the other, waiting for each. */
static int read_pieces(struct spill_dev *dev, struct bio *bio)
{
	struct bvec_iter iter = bio->bi_iter;
	int rc;

	while (iter.bi_size) {
		u64 first = iter.bi_sector >> (PAGE_SHIFT - SECTOR_SHIFT);
		u32 n = piece_pages(dev, first, iter.bi_size >> PAGE_SHIFT);
		struct bvec_iter piece = iter;

		piece.bi_size = n << PAGE_SHIFT;
		rc = spill_read_pages(dev, first, n, bio->bi_io_vec, piece);
		if (rc)
			return rc;
		bio_advance_iter(bio, &iter, piece.bi_size);
	}
	return 0;
}

#ifdef SPILL_SYNC_SWAP
/* Synchronous swap on 6.3+ (a build option): swap-ins come as bios and
 * skip the kernel's readahead, so they use ours. */
static void read_bio(struct spill_dev *dev, struct bio *bio)
{
	struct bvec_iter iter = bio->bi_iter;
	struct bio_vec bv = bio_iter_iovec(bio, iter);
	int rc;

	if (iter.bi_size == PAGE_SIZE && bv.bv_len == PAGE_SIZE)
		rc = read_one(dev, iter.bi_sector >> (PAGE_SHIFT - SECTOR_SHIFT), bv.bv_page);
	else
		rc = read_pieces(dev, bio);
	bio->bi_status = errno_to_blk_status(rc);
	bio_endio(bio);
}
#else
/*
 * Asynchronous reads. Without SYNCHRONOUS the kernel's swap readahead
 * submits several single-page bios in a row under a plug: a submit_bio
 * that waited for each would pay a round trip per page, one after the
 * other. The common case, a bio inside one chunk whose written pages share
 * a current copy with a live connection, is sent at once and completed by
 * the receive thread. Everything else (unreachable copies, pages current on
 * different copies, a refusal or a dropped connection on the way) goes to
 * a work item that reads the whole bio again by the synchronous rules of
 * spill_read_pages: the receive thread never sends, and never waits.
 */
static void rio_end(struct spill_rio *rio, int rc)
{
	struct spill_dev *dev = rio->dev;

	rio->bio->bi_status = errno_to_blk_status(rc);
	bio_endio(rio->bio);
	mempool_free(rio, dev->rio_pool);
	spill_io_end(dev);
}

static void rio_work(struct work_struct *work)
{
	struct spill_rio *rio = container_of(work, struct spill_rio, work);
	unsigned int noio = memalloc_noio_save();
	int rc = read_pieces(rio->dev, rio->bio);

	memalloc_noio_restore(noio);
	rio_end(rio, rc);
}

/* From the receive thread (or the submitter, if the connection died). The
 * error is counted, and the copy dropped if need be, by the retry. */
static void rio_cmd_done(struct spill_cmd *cmd)
{
	struct spill_rio *rio = cmd->priv;
	struct spill_dev *dev = rio->dev;
	u32 n = cmd->npages;
	int rc = cmd->status;

	spill_cmd_free(cmd);
	if (!rc) {
		atomic64_add(n, &dev->st.reads);
		if (rio->failover)
			atomic64_inc(&dev->st.failovers);
		rio_end(rio, 0);
		return;
	}
	queue_work(dev->read_wq, &rio->work);
}

static void read_bio(struct spill_dev *dev, struct bio *bio)
{
	struct spill_rio *rio = mempool_alloc(dev->rio_pool, GFP_NOIO);
	struct bvec_iter iter = bio->bi_iter;
	u64 first = iter.bi_sector >> (PAGE_SHIFT - SECTOR_SHIFT);
	u32 n = iter.bi_size >> PAGE_SHIFT;
	u32 c = div_u64(first, dev->extent_pages);
	u8 order[SPILL_MAX_REPLICAS];
	unsigned int copies, i, nr;
	struct spill_target t;
	bool some, all;

	spill_io_begin(dev);
	rio->dev = dev;
	rio->bio = bio;
	rio->failover = false;
	INIT_WORK(&rio->work, rio_work);
	if (piece_pages(dev, first, n) != n)
		goto slow;
	copies = spill_map_copies(dev, first, n, &some, &all);
	if (!some) {
		zero_bvec(bio->bi_io_vec, iter);
		atomic64_add(n, &dev->st.zero_reads);
		rio_end(rio, 0);
		return;
	}
	nr = all ? spill_read_order(dev, c, copies, order) : 0;
	for (i = 0; i < nr; i++) {
		unsigned int r = order[i];
		struct spill_cmd *cmd;

		if (!spill_map_target(dev, c, r, &t) || !spill_server_up(dev, t.server)) {
			rio->failover = true; /* a current copy we cannot reach */
			continue;
		}
		cmd = read_cmd(dev, &t, first, n, bio->bi_io_vec, iter);
		cmd->done = rio_cmd_done;
		cmd->priv = rio;
		if (!spill_submit(cmd))
			return;
		spill_cmd_free(cmd);
		break;
	}
slow:
	queue_work(dev->read_wq, &rio->work);
}
#endif

/* --- entry points -------------------------------------------------------- */

void spill_submit_bio(struct bio *bio)
{
	struct spill_dev *dev = bio->bi_bdev->bd_disk->private_data;
	sector_t sector = bio->bi_iter.bi_sector;
	unsigned int size = bio->bi_iter.bi_size;
	int rc = 0;

	if ((sector & (SPILL_SECTORS_PER_PAGE - 1)) || (size & (PAGE_SIZE - 1)) ||
	    sector + (size >> SECTOR_SHIFT) > get_capacity(dev->disk)) {
		rc = -EIO;
		goto out;
	}
	WRITE_ONCE(dev->last_io, jiffies);
	switch (bio_op(bio)) {
	case REQ_OP_READ:
		if (!size)
			break;
		read_bio(dev, bio);
		return;
	case REQ_OP_WRITE:
		if (size) {
			write_bio(dev, bio);
			return;
		}
		break; /* an empty flush: writes are stored once acknowledged */
	case REQ_OP_FLUSH:
		break;
	case REQ_OP_DISCARD:
	case REQ_OP_WRITE_ZEROES:
		spill_map_free_pages(dev, sector >> (PAGE_SHIFT - SECTOR_SHIFT),
				     size >> PAGE_SHIFT);
		break;
	default:
		rc = -EOPNOTSUPP;
	}
out:
	bio->bi_status = errno_to_blk_status(rc);
	bio_endio(bio);
}

#ifdef SPILL_HAVE_RW_PAGE
/*
 * Single-page swap I/O on 6.1: its presence gives the device the
 * synchronous swap path. Writes return once sent and end the page's
 * writeback when the servers answered; reads complete the page here, as
 * not up to date when no copy could be read (the owner gets SIGBUS).
 * Huge pages go the bio path, as one request per copy.
 */
int spill_rw_page(struct block_device *bdev, sector_t sector, struct page *page,
		  enum req_op op)
{
	struct spill_dev *dev = bdev->bd_disk->private_data;
	u64 index = sector >> (PAGE_SHIFT - SECTOR_SHIFT);
	struct spill_wio *wio;

	if (PageTransHuge(page) || (sector & (SPILL_SECTORS_PER_PAGE - 1)) ||
	    index >= dev->npages)
		return -EOPNOTSUPP;
	WRITE_ONCE(dev->last_io, jiffies);
	if (op == REQ_OP_READ) {
		page_endio(page, false, read_one(dev, index, page));
		return 0;
	}
	if (op != REQ_OP_WRITE)
		return -EOPNOTSUPP;
	wio = wio_alloc(dev);
	wio->page = page;
	wio->bv = (struct bio_vec){ .bv_page = page, .bv_len = PAGE_SIZE, .bv_offset = 0 };
	write_piece(wio, index, 1, &wio->bv, (struct bvec_iter){ .bi_size = PAGE_SIZE });
	wio_put(wio);
	return 0;
}
#endif
