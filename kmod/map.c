// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The page-location table: which copies of each device page hold its
 * current data (one state byte per page), and for every chunk the server,
 * the extent id of each copy and the server session it belongs to. Remote memory is
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
 *
 * No lock is held across a network round trip: the writers are kswapd and
 * direct reclaim, and a hung server must stall only the requests sent to
 * it. Everything here is under the spinlock map_lock, held for MAP_BATCH
 * pages at most at a time.
 *  - ALLOC: at most one in flight per chunk and copy (chunk->allocating).
 *    A writer that finds a copy without an extent of its server's current
 *    session sends one, or finds one in flight, and waits for it (a second
 *    at most: it needs that extent to write that copy). A copy still
 *    without an extent then is left out of that write; when a writer gave
 *    up on an allocation (alloc_slow) later ones do not wait for it. The
 *    reply installs the extent whenever it comes. Refusals (ENOSPC,
 *    EDQUOT) make further allocations on that server fail at once for a
 *    while (1 s, doubling to 30 s; a success, an acknowledged FREE, or a
 *    new connection or session ends it).
 *  - FREE: the extents of an empty chunk (no page in use, no write and no
 *    ALLOC in flight) are taken off it under the lock, then FREE is sent
 *    with no lock held; a write that begins meanwhile claims a new extent.
 *    A FREE not acknowledged (timeout, connection lost) keeps its extent
 *    on dev->dead_extents, retried by the worker until the server answers
 *    (ENOENT too) or its session ends (the server dropped it with it).
 *    A repeat cannot free a newer extent: ids are random 64-bit values
 *    (protocol.md), so an id is not handed out twice.
 *  - INVALIDATE: a run of freed pages is taken (PS_INVAL cleared) after a
 *    write version was reserved, both under map_lock, and the requests are
 *    sent with no lock held. A write of one of those pages that begins
 *    after the page was taken takes its version later still (no earlier
 *    than spill_map_begin_write returns: rw.c's rule), so it is newer: an
 *    INVALIDATE that reaches the server after that write is answered
 *    ESTALE instead of erasing the new data. A write that began before
 *    cleared the page's PS_INVAL (spill_map_begin_write), so the page was
 *    not taken.
 *
 * Placement: copy r of a chunk lives on ch->srv[r], (c + r) % nservers
 * at first and again whenever the chunk is emptied. A write that finds a
 * copy without an extent on a draining server places it elsewhere first
 * (place_off_draining); migrate.c moves copies with extents. Two copies of
 * a chunk are never on one server. Code that read ch->srv[] without the
 * lock checks it again under it before it relies on an extent.
 *
 * Copies are checked against the server's session (epoch): when a server
 * forgot our identity, spillctl adds the next socket with SPILL_SOCK_RESET,
 * the epoch moves on, and every extent and copy of the old session stops
 * counting at once, without a walk of the table.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "spill.h"

#define RECLAIM_DELAY (HZ / 10) /* let frees of neighbouring pages gather */
#define RETRY_DELAY   HZ        /* a server was unreachable, or the device busy */
#define QUIET         (HZ / 5)  /* no I/O this long: time to invalidate */
#define MAP_BATCH     64        /* pages per hold of map_lock */
#define ALLOC_WAIT    HZ        /* a writer waits this long for an extent */
#define REFUSE_MIN    HZ        /* back-off after a refused ALLOC, */
#define REFUSE_MAX    (30 * HZ) /* doubling up to this */

/* An extent taken off an empty chunk, until its server acknowledges FREE. */
struct dead_extent {
	struct list_head node;  /* dev->dead_extents, while not in flight */
	u64 ext;
	u32 epoch;
	unsigned int server;
};

/*
 * The server of copy r of a chunk: (chunk + copy) % nservers at first,
 * moved off draining servers (place_off_draining, migrate.c). Without
 * map_lock a caller gets a value that may be changing: whoever relies on
 * it checks ch->srv[] again under the lock.
 */
unsigned int spill_copy_server(const struct spill_dev *dev, u32 chunk, unsigned int copy)
{
	return READ_ONCE(dev->chunks[chunk].srv[copy]);
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

	spin_lock_init(&dev->map_lock);
	INIT_LIST_HEAD(&dev->reclaim_list);
	INIT_LIST_HEAD(&dev->dead_extents);
	init_waitqueue_head(&dev->alloc_wq);
	INIT_DELAYED_WORK(&dev->reclaim_work, spill_reclaim_work);
	dev->pstate = vzalloc(dev->npages);
	dev->chunks = kvcalloc(dev->nchunks, sizeof(*dev->chunks), GFP_KERNEL);
	if (!dev->pstate || !dev->chunks) {
		spill_map_destroy(dev);
		return -ENOMEM;
	}
	for (c = 0; c < dev->nchunks; c++) {
		unsigned int r;

		INIT_LIST_HEAD(&dev->chunks[c].reclaim);
		for (r = 0; r < dev->replicas; r++)
			dev->chunks[c].srv[r] = (c + r) % dev->nservers;
	}
	return 0;
}

/* Frees the table; may run twice (the pointers are cleared). */
void spill_map_destroy(struct spill_dev *dev)
{
	struct dead_extent *d, *tmp;

	list_for_each_entry_safe(d, tmp, &dev->dead_extents, node) {
		list_del(&d->node);
		kfree(d);
	}
	dev->ndead_extents = 0;
	kvfree(dev->chunks);
	dev->chunks = NULL;
	vfree(dev->pstate);
	dev->pstate = NULL;
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

/* --- placement ----------------------------------------------------------- */

/* Server s asked for its extents back (Drain): no new extent goes there. */
bool spill_server_draining(const struct spill_dev *dev, unsigned int s)
{
	return READ_ONCE(dev->srv[s].draining);
}

/*
 * A server for copy r of chunk c other than its own: reachable, not
 * draining, holding no other copy of the chunk, not refusing extents; the
 * one with the fewest of ours. -1 if there is none. Checked without
 * map_lock: the caller checks ch->srv[] again under it.
 */
int spill_map_pick_server(struct spill_dev *dev, u32 c, unsigned int r)
{
	unsigned long taken = 0;
	s64 best_n = S64_MAX;
	int best = -1;
	unsigned int s, k;

	for (k = 0; k < dev->replicas; k++)
		taken |= BIT(spill_copy_server(dev, c, k));
	for (s = 0; s < dev->nservers; s++) {
		struct spill_server *srv = &dev->srv[s];
		s64 n;

		if ((taken & BIT(s)) || spill_server_draining(dev, s) || !spill_server_up(dev, s))
			continue;
		if (READ_ONCE(srv->refuse_backoff) &&
		    time_before(jiffies, READ_ONCE(srv->refused_until)))
			continue;
		n = atomic64_read(&srv->extents);
		if (n < best_n) {
			best_n = n;
			best = s;
		}
	}
	return best;
}

/*
 * Copy r of chunk c is placed on draining server old: if it holds no
 * extent there (none, or one of a session the server forgot), place it on
 * another server, where the next write allocates its extent. A copy with
 * a live extent stays: migrate.c moves it with its pages.
 */
static void place_off_draining(struct spill_dev *dev, u32 c, unsigned int r, unsigned int old)
{
	struct spill_chunk *ch = &dev->chunks[c];
	u32 epoch = spill_server_epoch(dev, old);
	int to = spill_map_pick_server(dev, c, r);
	unsigned int k;
	bool free = to >= 0;

	if (!free)
		return;
	spin_lock(&dev->map_lock);
	for (k = 0; k < dev->replicas; k++)
		if (ch->srv[k] == to)
			free = false;
	/* Epochs only grow: an older one is of a session the server ended. */
	if (free && ch->srv[r] == old && !(ch->allocating & BIT(r)) &&
	    (!ch->epoch[r] || (s32)(ch->epoch[r] - epoch) < 0)) {
		WRITE_ONCE(ch->srv[r], to);
		ch->epoch[r] = 0;
		ch->ext[r] = 0;
	}
	spin_unlock(&dev->map_lock);
}

/* --- allocation ---------------------------------------------------------- */

/* map_lock held: does server s (in session epoch) refuse extents for now? */
static bool refusing_locked(struct spill_dev *dev, unsigned int s, u32 epoch)
{
	struct spill_server *srv = &dev->srv[s];

	if (!srv->refuse_backoff)
		return false;
	if (srv->refused_epoch != epoch ||
	    srv->refused_socks != atomic64_read(&srv->sockets_added)) {
		srv->refuse_backoff = 0; /* a new connection or session: ask again */
		return false;
	}
	return time_before(jiffies, srv->refused_until);
}

/* map_lock held: server s refused an extent; back off (doubling). */
static void refusal_note_locked(struct spill_dev *dev, unsigned int s, u32 epoch)
{
	struct spill_server *srv = &dev->srv[s];

	srv->refuse_backoff = srv->refuse_backoff ?
			      min_t(unsigned long, 2 * srv->refuse_backoff, REFUSE_MAX) :
			      REFUSE_MIN;
	srv->refused_until = jiffies + srv->refuse_backoff;
	srv->refused_epoch = epoch;
	srv->refused_socks = atomic64_read(&srv->sockets_added);
}

/*
 * The reply to an ALLOC for copy r of a chunk (from the receive thread, or
 * the sender when it could not be sent): install the extent, end the
 * allocation, wake the writers waiting for it.
 */
static void alloc_done(struct spill_cmd *cmd)
{
	struct spill_dev *dev = cmd->dev;
	struct spill_chunk *ch = cmd->priv;
	u32 c = ch - dev->chunks;
	u64 p = chunk_first(dev, c), end = p + chunk_pages(dev, c);
	unsigned int r = cmd->copy, s = cmd->server;
	int rc = cmd->status;
	unsigned long backoff = 0;
	bool kick = false;

	/*
	 * A copy bit left from an extent of an earlier session means nothing.
	 * No write sets bit r meanwhile: copy r has no extent of this session
	 * until the end of this.
	 */
	while (!rc && p < end) {
		u64 stop = min_t(u64, end, p + MAP_BATCH);

		spin_lock(&dev->map_lock);
		for (; p < stop; p++)
			dev->pstate[p] &= ~BIT(r);
		spin_unlock(&dev->map_lock);
	}
	spin_lock(&dev->map_lock);
	if (!rc) {
		ch->ext[r] = cmd->reply_extent;
		ch->epoch[r] = cmd->epoch;
		dev->srv[s].refuse_backoff = 0;
	} else if (rc == -ENOSPC || rc == -EDQUOT) {
		refusal_note_locked(dev, s, cmd->epoch);
		backoff = dev->srv[s].refuse_backoff;
	}
	/*
	 * A writer gave up on it, or it failed: no write may follow, and an
	 * empty chunk was not freed while this was in flight. Let the worker
	 * look at it. (The writer waiting for a success begins its write now.)
	 */
	if (rc || (ch->alloc_slow & BIT(r)))
		kick = chunk_queue(dev, ch);
	ch->allocating &= ~BIT(r);
	ch->alloc_slow &= ~BIT(r);
	spin_unlock(&dev->map_lock);
	wake_up_all(&dev->alloc_wq);

	if (rc && rc != -ENOTCONN)
		atomic64_inc(&dev->srv[s].io_errors);
	if (backoff) {
		dev_warn_ratelimited(disk_to_dev(dev->disk),
				     "server %u refused an extent: %d (not asked again for %u ms)\n",
				     s, rc, jiffies_to_msecs(backoff));
	} else if (rc) {
		dev_warn_ratelimited(disk_to_dev(dev->disk), "server %u: no extent allocated: %d\n",
				     s, rc);
	} else {
		atomic64_inc(&dev->srv[s].extents);
		atomic64_inc(&dev->st.extents_allocated);
	}
	/* Before the cmd goes: until then the device cannot be removed. */
	if (kick)
		kick_reclaim(dev, RECLAIM_DELAY);
	spill_cmd_free(cmd);
}

/* Send an ALLOC for copy r of chunk ch (its allocating bit is set). */
static void alloc_send(struct spill_dev *dev, struct spill_chunk *ch, unsigned int r,
		       unsigned int s, u32 epoch)
{
	struct spill_cmd *cmd = spill_cmd_alloc(dev);

	cmd->op = SPILL_OP_ALLOC;
	cmd->page = SPILL_NODE_ANY;
	cmd->server = s;
	cmd->epoch = epoch;
	cmd->copy = r;
	cmd->priv = ch;
	cmd->done = alloc_done;
	if (spill_submit(cmd)) {
		cmd->status = -ENOTCONN;
		alloc_done(cmd);
	}
}

/*
 * Before writing pages [first, first+n) of one chunk: wait (a second at
 * most) for a reachable server, make sure each reachable copy has an
 * extent (waiting a second at most for it), cancel pending invalidations
 * of these pages, and count the write in flight. Fills t[] and returns how
 * many copies to write, or -errno: -EIO when none of the chunk's servers
 * has been reachable for longer than reconnect_wait (io.c), -ENOTCONN
 * when none is reachable now, the server's refusal (-ENOSPC) when no extent
 * could be had. Every successful call needs a spill_map_end_write().
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
	unsigned int srv[SPILL_MAX_REPLICAS];
	u32 epoch[SPILL_MAX_REPLICAS];
	unsigned long servers = 0, up = 0, start = 0, wait = 0;
	unsigned int r, nt = 0;
	int refused = 0;
	u64 p, end = first + n;

	for (r = 0; r < dev->replicas; r++) {
		srv[r] = spill_copy_server(dev, c, r);
		if (spill_server_draining(dev, srv[r])) {
			place_off_draining(dev, c, r, srv[r]);
			srv[r] = spill_copy_server(dev, c, r);
		}
		servers |= BIT(srv[r]);
	}
	if (!spill_wait_servers(dev, servers, deadline))
		return spill_servers_lost(dev, servers) ? -EIO : -ENOTCONN;
	for (r = 0; r < dev->replicas; r++) {
		epoch[r] = spill_server_epoch(dev, srv[r]);
		if (spill_server_up(dev, srv[r]))
			up |= BIT(r);
	}

	spin_lock(&dev->map_lock);
	for_each_set_bit(r, &up, SPILL_MAX_REPLICAS) {
		if (ch->epoch[r] == epoch[r] || ch->srv[r] != srv[r])
			continue; /* it has its extent, or it moved meanwhile */
		if (ch->allocating & BIT(r)) {
			if (!(ch->alloc_slow & BIT(r)))
				wait |= BIT(r);
		} else if (!refusing_locked(dev, srv[r], epoch[r])) {
			ch->allocating |= BIT(r);
			start |= BIT(r);
		}
	}
	spin_unlock(&dev->map_lock);

	for_each_set_bit(r, &start, SPILL_MAX_REPLICAS)
		alloc_send(dev, ch, r, srv[r], epoch[r]);
	wait |= start;
	if (wait && !wait_event_timeout(dev->alloc_wq, !(READ_ONCE(ch->allocating) & wait),
					ALLOC_WAIT)) {
		spin_lock(&dev->map_lock);
		ch->alloc_slow |= ch->allocating & wait;
		spin_unlock(&dev->map_lock);
	}

	spin_lock(&dev->map_lock);
	for_each_set_bit(r, &up, SPILL_MAX_REPLICAS) {
		if (ch->epoch[r] != epoch[r] || ch->srv[r] != srv[r]) {
			if (refusing_locked(dev, srv[r], epoch[r]))
				refused = -ENOSPC;
			continue;
		}
		t[nt++] = (struct spill_target){ .copy = r, .server = srv[r],
						 .extent = ch->ext[r], .epoch = epoch[r] };
	}
	if (nt) {
		ch->writers++;
		ch->wgen++;
	}
	spin_unlock(&dev->map_lock);
	if (!nt)
		/* Reachable, but no room (ENOSPC, EDQUOT) rather than unreachable. */
		return refused ? refused : -ENOTCONN;

	/* The chunk keeps its extents from here (writers). */
	for (p = first; p < end;) {
		u64 stop = min(end, p + MAP_BATCH);

		spin_lock(&dev->map_lock);
		for (; p < stop; p++) {
			if (dev->pstate[p] & PS_INVAL) {
				dev->pstate[p] &= ~PS_INVAL;
				ch->pending--;
			}
		}
		spin_unlock(&dev->map_lock);
	}
	return nt;
}

/* After the write: ok is the mask of copies that stored the pages. */
void spill_map_end_write(struct spill_dev *dev, u64 first, u32 n, unsigned int ok)
{
	struct spill_chunk *ch = &dev->chunks[chunk_of(dev, first)];
	u64 p = first, end = first + n;
	bool kick = false;

	/* At least once: n may be 0 (repair.c claims extents that way). */
	do {
		u64 stop = min(end, p + MAP_BATCH);

		spin_lock(&dev->map_lock);
		for (; p < stop; p++) {
			u8 old = dev->pstate[p];

			if (old & PS_INVAL)
				ch->pending--;
			if (ok) {
				if (!(old & PS_DATA)) {
					ch->used++;
					dev->used_pages++;
				}
				dev->pstate[p] = PS_DATA | ok;
			} else if (old & PS_DATA) {
				/* An overwrite failed everywhere: no copy is current. */
				dev->pstate[p] = PS_DATA;
			} else {
				dev->pstate[p] = 0;
			}
		}
		if (p == end) {
			/* The last batch: the chunk may be freed from here on. */
			ch->writers--;
			kick = chunk_queue(dev, ch);
		}
		spin_unlock(&dev->map_lock);
	} while (p < end);
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
	u64 p = first, end = first + n;

	while (p < end) {
		u64 stop = min(end, p + MAP_BATCH);

		spin_lock(&dev->map_lock);
		for (; p < stop; p++) {
			u8 st = dev->pstate[p];

			if (st & PS_DATA) {
				some = true;
				copies &= st;
			} else {
				all = false;
			}
		}
		spin_unlock(&dev->map_lock);
	}
	*some_data = some;
	*all_data = all;
	return some ? copies & PS_COPIES : 0;
}

/* Where copy r of chunk c lives, if it has an extent of the current session. */
bool spill_map_target(struct spill_dev *dev, u32 c, unsigned int r, struct spill_target *t)
{
	struct spill_chunk *ch = &dev->chunks[c];
	unsigned int s;
	u32 epoch;
	bool ok;

	/* Again if the copy moved (migrate.c) between the two looks: false
	 * must mean its extent is of an ended session, never "it moved". */
	for (;;) {
		s = spill_copy_server(dev, c, r);
		epoch = spill_server_epoch(dev, s);
		spin_lock(&dev->map_lock);
		if (ch->srv[r] == s)
			break;
		spin_unlock(&dev->map_lock);
	}
	ok = ch->epoch[r] == epoch;
	*t = (struct spill_target){ .copy = r, .server = s, .extent = ch->ext[r],
				    .epoch = epoch };
	spin_unlock(&dev->map_lock);
	return ok;
}

/* Copy r does not hold pages [first, first+n) after all. */
void spill_map_drop_copy(struct spill_dev *dev, u64 first, u32 n, unsigned int r)
{
	u64 p = first, end = first + n;

	while (p < end) {
		u64 stop = min(end, p + MAP_BATCH);

		spin_lock(&dev->map_lock);
		for (; p < stop; p++)
			dev->pstate[p] &= ~BIT(r);
		spin_unlock(&dev->map_lock);
	}
	spill_repair_kick(dev);
}

/*
 * The copy t said it lacks pages [first, first+n): drop it for them, unless
 * it moved to another extent meanwhile (migrate.c freed the one t names).
 * False if it moved: read the pages again from where they are now.
 */
bool spill_map_drop_target(struct spill_dev *dev, u64 first, u32 n,
			   const struct spill_target *t)
{
	bool same = spill_map_target_current(dev, chunk_of(dev, first), t);

	if (same)
		spill_map_drop_copy(dev, first, n, t->copy);
	return same;
}

/* Does copy t->copy of chunk c still name t's extent (server, extent,
 * session)? False once migrate.c switched it to another one. */
bool spill_map_target_current(struct spill_dev *dev, u32 c, const struct spill_target *t)
{
	struct spill_chunk *ch = &dev->chunks[c];
	bool same;

	spin_lock(&dev->map_lock);
	same = ch->srv[t->copy] == t->server && ch->ext[t->copy] == t->extent &&
	       ch->epoch[t->copy] == t->epoch;
	spin_unlock(&dev->map_lock);
	return same;
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

		while (p < cend) {
			u64 stop = min(cend, p + MAP_BATCH);

			spin_lock(&dev->map_lock);
			for (; p < stop; p++) {
				if (!(dev->pstate[p] & PS_DATA))
					continue;
				dev->pstate[p] = PS_INVAL;
				ch->used--;
				ch->pending++;
				dev->used_pages--;
				freed++;
			}
			if (p == cend)
				kick |= chunk_queue(dev, ch);
			spin_unlock(&dev->map_lock);
		}
	}
	if (first < end)
		spill_ra_forget(dev, first, end - first);
	if (freed)
		atomic64_add(freed, &dev->st.pages_freed);
	if (kick)
		kick_reclaim(dev, RECLAIM_DELAY);
}

/* --- freeing ------------------------------------------------------------- */

/* Forget the freed pages of chunk c: its extents are gone, or invalidate=0.
 * (Forgetting one too many only leaves stale bytes on a server for a page
 * the table says is free: they are never read.) */
static void clear_freed(struct spill_dev *dev, u32 c)
{
	struct spill_chunk *ch = &dev->chunks[c];
	u64 p = chunk_first(dev, c), end = p + chunk_pages(dev, c);

	while (p < end) {
		u64 stop = min_t(u64, end, p + MAP_BATCH);

		spin_lock(&dev->map_lock);
		for (; p < stop && ch->pending; p++) {
			if (dev->pstate[p] & PS_INVAL) {
				dev->pstate[p] &= ~PS_INVAL;
				ch->pending--;
			}
		}
		if (!ch->pending)
			p = end;
		spin_unlock(&dev->map_lock);
	}
}

/* The reply to a FREE: done, or the extent waits on the list for a retry. */
static void free_done(struct spill_cmd *cmd)
{
	struct spill_dev *dev = cmd->dev;
	struct dead_extent *d = cmd->priv;
	int rc = cmd->status;
	bool kick = false;

	spin_lock(&dev->map_lock);
	if (!rc || rc == -ENOENT) {
		dev->ndead_extents--;
		dev->srv[d->server].refuse_backoff = 0; /* it has room again */
	} else {
		list_add_tail(&d->node, &dev->dead_extents);
		kick = !READ_ONCE(dev->dying);
	}
	spin_unlock(&dev->map_lock);
	if (!rc || rc == -ENOENT) {
		atomic64_dec(&dev->srv[d->server].extents);
		atomic64_inc(&dev->st.extents_freed);
		kfree(d);
	} else if (rc != -ENOTCONN) {
		atomic64_inc(&dev->srv[d->server].io_errors);
	}
	if (kick)
		kick_reclaim(dev, RETRY_DELAY);
	spill_cmd_free(cmd);
}

static void free_send(struct spill_dev *dev, struct dead_extent *d)
{
	struct spill_cmd *cmd = spill_cmd_alloc(dev);

	cmd->op = SPILL_OP_FREE;
	cmd->extent = d->ext;
	cmd->server = d->server;
	cmd->epoch = d->epoch;
	cmd->priv = d;
	cmd->done = free_done;
	if (spill_submit(cmd)) {
		cmd->status = -ENOTCONN;
		free_done(cmd);
	}
}

/* Device removal: FREE one extent and wait for the answer. */
static void release_extent(struct spill_dev *dev, unsigned int s, u64 ext, u32 epoch)
{
	struct spill_cmd *cmd;
	int rc;

	if (epoch != spill_server_epoch(dev, s))
		return; /* the server dropped it with the session */
	cmd = spill_cmd_alloc(dev);
	cmd->op = SPILL_OP_FREE;
	cmd->extent = ext;
	cmd->server = s;
	cmd->epoch = epoch;
	rc = spill_exec(cmd);
	spill_cmd_free(cmd);
	if (!rc || rc == -ENOENT) {
		atomic64_dec(&dev->srv[s].extents);
		atomic64_inc(&dev->st.extents_freed);
	}
}

/*
 * An extent no chunk uses any more (migrate.c moved its copy): FREE it in
 * the background as an empty chunk's, retried until acknowledged. Without
 * memory for that, FREE it now and wait.
 */
void spill_map_retire_extent(struct spill_dev *dev, unsigned int s, u64 ext, u32 epoch)
{
	struct dead_extent *d = kmalloc(sizeof(*d), GFP_NOIO | __GFP_NOWARN);

	if (!d) {
		release_extent(dev, s, ext, epoch);
		return;
	}
	*d = (struct dead_extent){ .server = s, .epoch = epoch, .ext = ext };
	spin_lock(&dev->map_lock);
	dev->ndead_extents++;
	spin_unlock(&dev->map_lock);
	free_send(dev, d);
}

/*
 * Chunk c looked empty: take its extents off it and send FREE for those of
 * the current session (the server dropped the others). Returns true if the
 * chunk must be tried again later.
 */
static bool free_extents(struct spill_dev *dev, u32 c)
{
	struct spill_chunk *ch = &dev->chunks[c];
	struct dead_extent *d[SPILL_MAX_REPLICAS] = {};
	u32 epoch[SPILL_MAX_REPLICAS];
	unsigned long send = 0;
	bool taken = false, retry = false;
	unsigned int r;

	for (r = 0; r < dev->replicas; r++) {
		unsigned int s = spill_copy_server(dev, c, r);

		epoch[r] = spill_server_epoch(dev, s);
		d[r] = kmalloc(sizeof(*d[r]), GFP_NOIO | __GFP_NOWARN);
		if (!d[r])
			retry = true;
		else
			*d[r] = (struct dead_extent){ .server = s, .epoch = epoch[r] };
	}
	spin_lock(&dev->map_lock);
	if (!retry && dev->ndead_extents + dev->replicas > dev->nchunks * dev->replicas)
		retry = true; /* as many unfreed extents as can be: free those first */
	for (r = 0; r < dev->replicas; r++)
		if (d[r] && ch->srv[r] != d[r]->server)
			retry = true; /* a copy moved since: look again */
	if (!retry && !ch->used && !ch->writers && !ch->allocating) {
		taken = true;
		for (r = 0; r < dev->replicas; r++) {
			if (ch->epoch[r] && ch->epoch[r] == epoch[r]) {
				d[r]->ext = ch->ext[r];
				dev->ndead_extents++;
				send |= BIT(r);
			}
			ch->epoch[r] = 0;
			ch->ext[r] = 0;
			/* Empty: back to its home server (migrate.c moved it). */
			WRITE_ONCE(ch->srv[r], (c + r) % dev->nservers);
		}
	}
	spin_unlock(&dev->map_lock);

	for (r = 0; r < dev->replicas; r++) {
		if (send & BIT(r))
			free_send(dev, d[r]);
		else
			kfree(d[r]);
	}
	if (taken)
		clear_freed(dev, c);
	return retry;
}

/* Send FREE again for the extents whose FREE was not acknowledged. */
static void retry_dead_extents(struct spill_dev *dev)
{
	struct dead_extent *d, *tmp;
	LIST_HEAD(todo);

	spin_lock(&dev->map_lock);
	list_splice_init(&dev->dead_extents, &todo);
	spin_unlock(&dev->map_lock);
	list_for_each_entry_safe(d, tmp, &todo, node) {
		list_del(&d->node);
		if (d->epoch != spill_server_epoch(dev, d->server)) {
			/* The server dropped it with the session. */
			spin_lock(&dev->map_lock);
			dev->ndead_extents--;
			spin_unlock(&dev->map_lock);
			kfree(d);
		} else if (!spill_server_up(dev, d->server)) {
			spin_lock(&dev->map_lock);
			list_add_tail(&d->node, &dev->dead_extents);
			spin_unlock(&dev->map_lock);
		} else {
			free_send(dev, d);
		}
	}
}

/* --- invalidation -------------------------------------------------------- */

/*
 * Take the next run of freed pages of a chunk from *p on (before end), at
 * most SPILL_MAX_BATCH_PAGES, clearing their PS_INVAL; *wver is reserved
 * before its first page is taken. map_lock is held for MAP_BATCH pages at
 * a time. Returns the run's length (0: none left) and its start in *run.
 */
static u32 take_run(struct spill_dev *dev, struct spill_chunk *ch, u64 *p, u64 end,
		    u64 *run, u64 *wver)
{
	u64 q = *p, stop;
	u32 len = 0;
	bool more;

	do {
		spin_lock(&dev->map_lock);
		stop = min(end, q + MAP_BATCH);
		if (!len) {
			while (q < stop && !(dev->pstate[q] & PS_INVAL))
				q++;
			if (q < stop) {
				*run = q;
				*wver = spill_wver_reserve(dev);
			}
		}
		while (q < stop && (dev->pstate[q] & PS_INVAL) && len < SPILL_MAX_BATCH_PAGES) {
			dev->pstate[q++] &= ~PS_INVAL;
			ch->pending--;
			len++;
		}
		spin_unlock(&dev->map_lock);
		/* On while the run (or the search for one) reached this hold's end. */
		more = q == stop && q < end && len < SPILL_MAX_BATCH_PAGES;
	} while (more);
	*p = q;
	return len;
}

static void cmd_done_complete(struct spill_cmd *cmd)
{
	complete(&cmd->wait);
}

#define INVAL_BATCH 16 /* requests in flight per round */

/*
 * Send INVALIDATE for the runs of freed pages to every copy, a round of
 * requests at a time, all in flight together, with no lock held. ESTALE
 * is fine: a newer write of the page reached that copy first.
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
			u64 run = 0, wver = 0;
			u32 len = take_run(dev, ch, &p, end, &run, &wver);

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
				cmd->wver = wver;
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

/* Returns true if the chunk must be tried again later. */
static bool reclaim_chunk(struct spill_dev *dev, u32 c)
{
	struct spill_chunk *ch = &dev->chunks[c];
	bool empty;

	spin_lock(&dev->map_lock);
	empty = !ch->used && !ch->writers;
	spin_unlock(&dev->map_lock);
	if (empty)
		return free_extents(dev, c);
	if (!READ_ONCE(spill_invalidate))
		clear_freed(dev, c);
	else if (time_before(jiffies, READ_ONCE(dev->last_io) + QUIET))
		return true; /* busy swapping: later */
	else
		invalidate_freed(dev, c);
	return false;
}

void spill_reclaim_work(struct work_struct *work)
{
	struct spill_dev *dev = container_of(to_delayed_work(work), struct spill_dev,
					     reclaim_work);
	unsigned int noio = memalloc_noio_save();
	struct spill_chunk *ch;
	LIST_HEAD(retry);
	bool again;

	retry_dead_extents(dev);
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
	spin_lock(&dev->map_lock);
	list_splice_tail(&retry, &dev->reclaim_list);
	again = !list_empty(&dev->reclaim_list) || !list_empty(&dev->dead_extents);
	spin_unlock(&dev->map_lock);
	if (again && !READ_ONCE(dev->dying))
		kick_reclaim(dev, RETRY_DELAY);
	memalloc_noio_restore(noio);
}

/*
 * Device removal, after the last I/O and request (dev->active is 0) and
 * with the worker stopped: give every extent back, one at a time.
 */
void spill_map_release(struct spill_dev *dev)
{
	struct dead_extent *d, *tmp;
	LIST_HEAD(dead);
	unsigned int r;
	u32 c;

	for (c = 0; c < dev->nchunks; c++) {
		struct spill_chunk *ch = &dev->chunks[c];

		for (r = 0; r < dev->replicas; r++) {
			if (ch->epoch[r])
				release_extent(dev, spill_copy_server(dev, c, r), ch->ext[r],
					       ch->epoch[r]);
			ch->epoch[r] = 0;
			ch->ext[r] = 0;
		}
		cond_resched();
	}
	spin_lock(&dev->map_lock);
	list_splice_init(&dev->dead_extents, &dead);
	dev->ndead_extents = 0;
	spin_unlock(&dev->map_lock);
	list_for_each_entry_safe(d, tmp, &dead, node) {
		release_extent(dev, d->server, d->ext, d->epoch);
		list_del(&d->node);
		kfree(d);
	}
}
