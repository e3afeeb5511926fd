// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The page-location table: which copies of each device page hold its
 * current data (one state byte per page), and for every chunk the extent id
 * of each copy and the server session it belongs to. Remote memory is
 * claimed lazily: a chunk's extents are allocated by its first write and
 * freed once its last page is freed, so an idle swap device costs the
 * servers nothing.
 *
 * Freeing a page (swap slot free notify, discard) must not sleep: it only
 * changes the state byte and queues the chunk. A worker then frees the
 * chunk's extents if it is empty, or sends INVALIDATE for its freed pages.
 * An INVALIDATE frees no server memory (only a whole extent does) and
 * costs a request per run of freed pages, as many as the swap-ins: it waits
 * until the device has been quiet for a moment.
 * It holds the chunk's mutex while doing so, and a writer takes the same
 * mutex (and clears the page's pending invalidation) before writing, so an
 * INVALIDATE can never reach a server after a newer WRITE of the same page.
 *
 * Copies are checked against the server's session (epoch): when a server
 * forgot our identity, spillctl adds the next socket with SPILL_SOCK_RESET,
 * the epoch moves on, and every extent and copy of the old session stops
 * counting at once, without a walk of the table.
 */
#include <linux/bitops.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "spill.h"

#define RECLAIM_DELAY (HZ / 10) /* let frees of neighbouring pages gather */
#define RETRY_DELAY   HZ        /* a server was unreachable, or the device busy */
#define QUIET         (HZ / 5)  /* no I/O this long: time to invalidate */

unsigned int spill_copy_server(const struct spill_dev *dev, u32 chunk, unsigned int copy)
{
	return (chunk + copy) % dev->nservers;
}

static u32 chunk_of(const struct spill_dev *dev, u64 page)
{
	return div_u64(page, dev->extent_pages);
}

static u64 chunk_first(const struct spill_dev *dev, u32 c)
{
	return (u64)c * dev->extent_pages;
}

/* Pages of chunk c (the last chunk may be short). */
static u32 chunk_pages(const struct spill_dev *dev, u32 c)
{
	return min_t(u64, dev->extent_pages, dev->npages - chunk_first(dev, c));
}

int spill_map_init(struct spill_dev *dev)
{
	u32 c;

	dev->pstate = vzalloc(dev->npages);
	dev->chunks = kvcalloc(dev->nchunks, sizeof(*dev->chunks), GFP_KERNEL);
	if (!dev->pstate || !dev->chunks) {
		vfree(dev->pstate);
		kvfree(dev->chunks);
		return -ENOMEM;
	}
	for (c = 0; c < dev->nchunks; c++) {
		mutex_init(&dev->chunks[c].lock);
		INIT_LIST_HEAD(&dev->chunks[c].reclaim);
	}
	spin_lock_init(&dev->map_lock);
	INIT_LIST_HEAD(&dev->reclaim_list);
	INIT_DELAYED_WORK(&dev->reclaim_work, spill_reclaim_work);
	return 0;
}

void spill_map_destroy(struct spill_dev *dev)
{
	u32 c;

	for (c = 0; c < dev->nchunks; c++)
		mutex_destroy(&dev->chunks[c].lock);
	kvfree(dev->chunks);
	vfree(dev->pstate);
}

static bool chunk_has_extent(const struct spill_chunk *ch)
{
	unsigned int r;

	for (r = 0; r < SPILL_MAX_REPLICAS; r++)
		if (ch->epoch[r])
			return true;
	return false;
}

/* map_lock held. Put the chunk on the worker's list; true if it was added. */
static bool chunk_queue(struct spill_dev *dev, struct spill_chunk *ch)
{
	if (ch->queued || READ_ONCE(dev->dying))
		return false;
	if (!ch->pending && (ch->used || ch->writers || !chunk_has_extent(ch)))
		return false;
	ch->queued = true;
	list_add_tail(&ch->reclaim, &dev->reclaim_list);
	return true;
}

static void kick_reclaim(struct spill_dev *dev, unsigned long delay)
{
	queue_delayed_work(spill_wq, &dev->reclaim_work, delay);
}

/* Chunk mutex held: claim an extent on server s for copy r of chunk c. */
static int alloc_extent(struct spill_dev *dev, u32 c, unsigned int r, unsigned int s,
			u32 epoch, u64 *ext)
{
	struct spill_chunk *ch = &dev->chunks[c];
	struct spill_cmd *cmd = spill_cmd_alloc(dev);
	u64 i, first = chunk_first(dev, c), end = first + chunk_pages(dev, c);
	u64 id;
	int rc;

	cmd->op = SPILL_OP_ALLOC;
	cmd->page = SPILL_NODE_ANY;
	cmd->server = s;
	cmd->epoch = epoch;
	cmd->copy = r;
	rc = spill_exec(cmd);
	id = cmd->reply_extent;
	spill_cmd_free(cmd);
	if (rc) {
		if (rc != -ENOTCONN)
			atomic64_inc(&dev->srv[s].io_errors);
		pr_warn_ratelimited("spillway%u: server %u refused an extent: %d\n",
				    dev->index, s, rc);
		return rc;
	}
	spin_lock(&dev->map_lock);
	ch->ext[r] = id;
	ch->epoch[r] = epoch;
	/* A copy bit left from an extent of an earlier session means nothing. */
	for (i = first; i < end; i++)
		dev->pstate[i] &= ~BIT(r);
	spin_unlock(&dev->map_lock);
	atomic64_inc(&dev->srv[s].extents);
	atomic64_inc(&dev->st.extents_allocated);
	*ext = id;
	return 0;
}

/*
 * Before writing pages [first, first+n) of one chunk: wait (a second at
 * most) for a reachable server, make sure each reachable copy has an extent, cancel
 * pending invalidations of these pages, and count the write in flight.
 * Fills t[] and returns how many copies to write, or -errno: -ENOTCONN when
 * no server is reachable, the server's refusal (-ENOSPC, -EDQUOT) when no
 * extent could be had. Every successful call needs a spill_map_end_write().
 */
int spill_map_begin_write(struct spill_dev *dev, u64 first, u32 n, struct spill_target *t)
{
	/*
	 * Wait only long enough to ride over a reconnect: a write that fails
	 * leaves its page in memory, while kswapd or a direct reclaimer held
	 * here for long would stall all of reclaim (and the OOM killer).
	 */
	unsigned long deadline = jiffies + min_t(unsigned long, HZ,
						 READ_ONCE(spill_reconnect_wait) * HZ);
	u32 c = chunk_of(dev, first);
	struct spill_chunk *ch = &dev->chunks[c];
	unsigned long servers = 0;
	unsigned int r, nt = 0;
	int refused = 0;
	u64 i;

	for (r = 0; r < dev->replicas; r++)
		servers |= BIT(spill_copy_server(dev, c, r));
	if (!spill_wait_servers(dev, servers, deadline))
		return -ENOTCONN;

	mutex_lock(&ch->lock);
	for (r = 0; r < dev->replicas; r++) {
		unsigned int s = spill_copy_server(dev, c, r);
		u32 epoch = spill_server_epoch(dev, s);
		bool have;
		u64 ext;

		if (!spill_server_up(dev, s))
			continue;
		spin_lock(&dev->map_lock);
		have = ch->epoch[r] == epoch;
		ext = ch->ext[r];
		spin_unlock(&dev->map_lock);
		if (!have) {
			int rc = alloc_extent(dev, c, r, s, epoch, &ext);

			if (rc) {
				refused = rc;
				continue;
			}
		}
		t[nt++] = (struct spill_target){ .copy = r, .server = s, .extent = ext,
						 .epoch = epoch };
	}
	if (nt) {
		spin_lock(&dev->map_lock);
		ch->writers++;
		ch->wgen++;
		for (i = first; i < first + n; i++) {
			if (dev->pstate[i] & PS_INVAL) {
				dev->pstate[i] &= ~PS_INVAL;
				ch->pending--;
			}
		}
		spin_unlock(&dev->map_lock);
	}
	mutex_unlock(&ch->lock);
	/* Reachable, but no room (ENOSPC, EDQUOT) rather than unreachable. */
	return nt ? nt : refused ? refused : -ENOTCONN;
}

/* After the write: ok is the mask of copies that stored the pages. */
void spill_map_end_write(struct spill_dev *dev, u64 first, u32 n, unsigned int ok)
{
	struct spill_chunk *ch = &dev->chunks[chunk_of(dev, first)];
	bool kick;
	u64 i;

	spin_lock(&dev->map_lock);
	for (i = first; i < first + n; i++) {
		u8 old = dev->pstate[i];

		if (old & PS_INVAL)
			ch->pending--;
		if (ok) {
			if (!(old & PS_DATA)) {
				ch->used++;
				dev->used_pages++;
			}
			dev->pstate[i] = PS_DATA | ok;
		} else if (old & PS_DATA) {
			/* An overwrite failed everywhere: no copy is current. */
			dev->pstate[i] = PS_DATA;
		} else {
			dev->pstate[i] = 0;
		}
	}
	ch->writers--;
	kick = chunk_queue(dev, ch);
	spin_unlock(&dev->map_lock);
	/* A prefetch of these pages may have read what was there before. */
	spill_ra_forget(dev, first, n);
	if (kick)
		kick_reclaim(dev, RECLAIM_DELAY);
	spill_repair_written(dev, first, ok);
}

/*
 * Copies holding every written page of [first, first+n) (one chunk);
 * *some_data: a page is written; *all_data: every page is.
 */
unsigned int spill_map_copies(struct spill_dev *dev, u64 first, u32 n, bool *some_data,
			      bool *all_data)
{
	unsigned int copies = PS_COPIES;
	bool some = false, all = true;
	u64 i;

	spin_lock(&dev->map_lock);
	for (i = first; i < first + n; i++) {
		u8 st = dev->pstate[i];

		if (st & PS_DATA) {
			some = true;
			copies &= st;
		} else {
			all = false;
		}
	}
	spin_unlock(&dev->map_lock);
	*some_data = some;
	*all_data = all;
	return some ? copies & PS_COPIES : 0;
}

/* Where copy r of chunk c lives, if it has an extent of the current session. */
bool spill_map_target(struct spill_dev *dev, u32 c, unsigned int r, struct spill_target *t)
{
	struct spill_chunk *ch = &dev->chunks[c];
	unsigned int s = spill_copy_server(dev, c, r);
	u32 epoch = spill_server_epoch(dev, s);
	bool ok;

	spin_lock(&dev->map_lock);
	ok = ch->epoch[r] == epoch;
	*t = (struct spill_target){ .copy = r, .server = s, .extent = ch->ext[r],
				    .epoch = epoch };
	spin_unlock(&dev->map_lock);
	return ok;
}

/* Copy r does not hold pages [first, first+n) after all. */
void spill_map_drop_copy(struct spill_dev *dev, u64 first, u32 n, unsigned int r)
{
	u64 i;

	spin_lock(&dev->map_lock);
	for (i = first; i < first + n; i++)
		dev->pstate[i] &= ~BIT(r);
	spin_unlock(&dev->map_lock);
	spill_repair_kick(dev);
}

/*
 * Pages [first, first+n) no longer hold data. Called from the swap slot
 * free notification with the swap lock held: no sleeping here.
 */
void spill_map_free_pages(struct spill_dev *dev, u64 first, u64 n)
{
	u64 end = min(first + n, dev->npages), p = first, freed = 0;
	bool kick = false;

	while (p < end) {
		u32 c = chunk_of(dev, p);
		struct spill_chunk *ch = &dev->chunks[c];
		u64 cend = min(end, chunk_first(dev, c) + chunk_pages(dev, c));

		spin_lock(&dev->map_lock);
		for (; p < cend; p++) {
			if (!(dev->pstate[p] & PS_DATA))
				continue;
			dev->pstate[p] = PS_INVAL;
			ch->used--;
			ch->pending++;
			dev->used_pages--;
			freed++;
		}
		kick |= chunk_queue(dev, ch);
		spin_unlock(&dev->map_lock);
	}
	if (first < end)
		spill_ra_forget(dev, first, end - first);
	if (freed)
		atomic64_add(freed, &dev->st.pages_freed);
	if (kick)
		kick_reclaim(dev, RECLAIM_DELAY);
}

static void cmd_done_complete(struct spill_cmd *cmd)
{
	complete(&cmd->wait);
}

/*
 * Chunk mutex held, chunk empty: free its extents. Extents of an old
 * session are simply forgotten (the server dropped them). Returns true if a
 * server could not be reached and the chunk should be retried.
 */
static bool free_extents(struct spill_dev *dev, u32 c)
{
	struct spill_chunk *ch = &dev->chunks[c];
	u64 i, first = chunk_first(dev, c), end = first + chunk_pages(dev, c);
	bool retry = false;
	unsigned int r;

	for (r = 0; r < SPILL_MAX_REPLICAS; r++) {
		unsigned int s = spill_copy_server(dev, c, r);
		struct spill_cmd *cmd;
		u32 epoch;
		u64 ext;
		int rc;

		spin_lock(&dev->map_lock);
		epoch = ch->epoch[r];
		ext = ch->ext[r];
		spin_unlock(&dev->map_lock);
		if (!epoch)
			continue;
		if (epoch == spill_server_epoch(dev, s)) {
			cmd = spill_cmd_alloc(dev);
			cmd->op = SPILL_OP_FREE;
			cmd->extent = ext;
			cmd->server = s;
			cmd->epoch = epoch;
			rc = spill_exec(cmd);
			spill_cmd_free(cmd);
			if (rc && rc != -ENOENT) {
				retry = true;
				continue;
			}
			atomic64_dec(&dev->srv[s].extents);
			atomic64_inc(&dev->st.extents_freed);
		}
		spin_lock(&dev->map_lock);
		ch->epoch[r] = 0;
		ch->ext[r] = 0;
		spin_unlock(&dev->map_lock);
	}
	if (!retry) {
		spin_lock(&dev->map_lock);
		for (i = first; i < end; i++)
			dev->pstate[i] &= ~PS_INVAL;
		ch->pending = 0;
		spin_unlock(&dev->map_lock);
	}
	return retry;
}

#define INVAL_BATCH 16 /* requests in flight per round */

/*
 * Chunk mutex held: send INVALIDATE for the runs of freed pages to every
 * copy, a round of requests at a time, all in flight together.
 */
static void invalidate_freed(struct spill_dev *dev, u32 c)
{
	struct spill_chunk *ch = &dev->chunks[c];
	u64 p, first = chunk_first(dev, c), end = first + chunk_pages(dev, c);
	struct spill_target t[SPILL_MAX_REPLICAS];
	struct spill_cmd *cmds[INVAL_BATCH];
	unsigned int r, nt = 0, i, n;
	bool done = false;

	for (r = 0; r < dev->replicas; r++)
		if (spill_map_target(dev, c, r, &t[nt]) && spill_server_up(dev, t[nt].server))
			nt++;

	for (p = first; !done;) {
		for (n = 0; n + nt <= INVAL_BATCH;) {
			u64 run;
			u32 len = 0;

			spin_lock(&dev->map_lock);
			while (p < end && !(dev->pstate[p] & PS_INVAL))
				p++;
			run = p;
			while (p < end && (dev->pstate[p] & PS_INVAL) &&
			       len < SPILL_MAX_BATCH_PAGES) {
				dev->pstate[p++] &= ~PS_INVAL;
				len++;
			}
			ch->pending -= len;
			spin_unlock(&dev->map_lock);
			if (!len) {
				done = true;
				break;
			}
			for (i = 0; i < nt; i++) {
				struct spill_cmd *cmd = spill_cmd_alloc(dev);

				cmd->op = SPILL_OP_INVALIDATE;
				cmd->extent = t[i].extent;
				cmd->page = run - first;
				cmd->npages = len;
				cmd->server = t[i].server;
				cmd->epoch = t[i].epoch;
				cmd->copy = t[i].copy;
				cmd->done = cmd_done_complete;
				if (spill_submit(cmd))
					complete(&cmd->wait);
				cmds[n++] = cmd;
			}
		}
		for (i = 0; i < n; i++) {
			while (!wait_for_completion_io_timeout(&cmds[i]->wait, HZ))
				;
			atomic64_inc(&dev->st.invalidates);
			spill_cmd_free(cmds[i]);
		}
	}
}

/* invalidate=0: forget the freed pages without telling the servers. */
static void clear_freed(struct spill_dev *dev, u32 c)
{
	struct spill_chunk *ch = &dev->chunks[c];
	u64 p, first = chunk_first(dev, c), end = first + chunk_pages(dev, c);

	spin_lock(&dev->map_lock);
	for (p = first; p < end; p++)
		dev->pstate[p] &= ~PS_INVAL;
	ch->pending = 0;
	spin_unlock(&dev->map_lock);
}

/* Returns true if the chunk must be tried again later. */
static bool reclaim_chunk(struct spill_dev *dev, u32 c)
{
	struct spill_chunk *ch = &dev->chunks[c];
	bool empty, retry = false;

	mutex_lock(&ch->lock);
	spin_lock(&dev->map_lock);
	empty = !ch->used && !ch->writers;
	spin_unlock(&dev->map_lock);
	if (empty)
		retry = free_extents(dev, c);
	else if (!READ_ONCE(spill_invalidate))
		clear_freed(dev, c);
	else if (time_before(jiffies, READ_ONCE(dev->last_io) + QUIET))
		retry = true; /* busy swapping: later */
	else
		invalidate_freed(dev, c);
	mutex_unlock(&ch->lock);
	return retry;
}

void spill_reclaim_work(struct work_struct *work)
{
	struct spill_dev *dev = container_of(to_delayed_work(work), struct spill_dev,
					     reclaim_work);
	unsigned int noio = memalloc_noio_save();
	struct spill_chunk *ch;
	LIST_HEAD(retry);

	for (;;) {
		spin_lock(&dev->map_lock);
		ch = list_first_entry_or_null(&dev->reclaim_list, struct spill_chunk, reclaim);
		if (ch) {
			list_del_init(&ch->reclaim);
			ch->queued = false;
		}
		spin_unlock(&dev->map_lock);
		if (!ch)
			break;
		if (reclaim_chunk(dev, ch - dev->chunks)) {
			spin_lock(&dev->map_lock);
			if (!ch->queued) {
				/* Still queued (to retry), so nobody re-adds it meanwhile. */
				ch->queued = true;
				list_add_tail(&ch->reclaim, &retry);
			}
			spin_unlock(&dev->map_lock);
		}
		cond_resched();
	}
	if (!list_empty(&retry)) {
		spin_lock(&dev->map_lock);
		list_splice_tail(&retry, &dev->reclaim_list);
		spin_unlock(&dev->map_lock);
		if (!READ_ONCE(dev->dying))
			kick_reclaim(dev, RETRY_DELAY);
	}
	memalloc_noio_restore(noio);
}

/* Device removal, after the last I/O: give every extent back. */
void spill_map_release(struct spill_dev *dev)
{
	u32 c;

	for (c = 0; c < dev->nchunks; c++) {
		struct spill_chunk *ch = &dev->chunks[c];

		if (!chunk_has_extent(ch))
			continue;
		mutex_lock(&ch->lock);
		free_extents(dev, c);
		mutex_unlock(&ch->lock);
		cond_resched();
	}
}
