// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Moving chunk copies off draining servers, while swap goes on.
 *
 * For every copy whose server drains (notify.c) and that holds an extent
 * there: allocate an extent on another server (reachable, not draining,
 * holding no other copy of the chunk), copy the chunk's written pages into
 * it from a current copy (another copy if one holds the page, else the
 * draining one), switch the copy to the new extent under map_lock, then
 * FREE the old extent through map.c's dead-extent list. Until the switch
 * the old extent is the copy: reads and writes use it as before, and the
 * new extent is read by nobody. A copy without an extent is placed off the
 * draining server by the next write (map.c).
 *
 * Which pages the new extent holds is kept in the page state: PS_COPYING
 * is set on a page under map_lock when it is picked for a copy pass, and
 * becomes PS_MOVED once the page was read and written to the new extent,
 * if nothing touched the page meanwhile. Every write that ends and every
 * free rewrites the state byte (map.c) and so clears both bits: a page
 * rewritten during a pass is copied again by the next one. The switch
 * happens only with no write in flight in the chunk (chunk->writers, so
 * no write still aimed at the old extent can end after it), no ALLOC in
 * flight for the copy, and every written page that has a current copy
 * marked PS_MOVED: the moved copy then holds each page's current data,
 * and it never drops the only current copy of a page. The pass's write
 * version is reserved before it looks at the chunk, as repair.c does:
 * every write that begins later is newer.
 *
 * A reader that picked the old extent just before the switch may find it
 * freed: map.c's spill_map_drop_target sees the copy moved and rw.c reads
 * again from the new one.
 *
 * No lock is held across a network wait; map_lock is held for MOVE_SCAN
 * pages at most.
 * It runs on spill_wq (one work item, never twice at once) with
 * MOVE_RUNS x SPILL_RUN_PAGES bounce pages while it runs, and stops on
 * device removal and for a server undrained. When no target server exists
 * it keeps the old copy, says so (rate-limited) and walks again later,
 * waiting RETRY_MIN, doubling up to RETRY_MAX.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/blkdev.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "spill.h"

#define MOVE_RUNS   4            /* runs copied at once: requests in flight */
#define MOVE_SCAN   256          /* pages looked at per hold of map_lock */
#define MOVE_PASSES 64           /* copy passes per try at one copy */
#define RETRY_MIN   (HZ / 2)     /* a copy could not be moved: walk again */
#define RETRY_MAX   (10 * HZ)
#define RECLAIM_WAIT    (5 * HZ)  /* a Reclaim without a deadline */
#define RECLAIM_MAX     (60 * HZ) /* a deadline farther off counts as this */
#define ANSWER_MARGIN   (HZ / 5)  /* answer this long before the deadline */
#define CTRL_RECLAIM_REPLY 18     /* Ctrl.reclaim_reply: { reclaim_id = 1; freed_bytes = 2; } */

static u64 first_page(const struct spill_dev *dev, u32 c)
{
	return (u64)c * dev->extent_pages;
}

static u64 end_page(const struct spill_dev *dev, u32 c)
{
	return min_t(u64, first_page(dev, c) + dev->extent_pages, dev->npages);
}

/* Targets of chunk c's copies now; *up: those whose server is reachable.
 * Complete with view_cur() under map_lock. */
static void view_copies(struct spill_dev *dev, u32 c, struct spill_target *t,
			unsigned int *up)
{
	unsigned int k;

	*up = 0;
	for (k = 0; k < dev->replicas; k++) {
		t[k].copy = k;
		t[k].server = spill_copy_server(dev, c, k);
		t[k].epoch = spill_server_epoch(dev, t[k].server);
		if (spill_server_up(dev, t[k].server))
			*up |= BIT(k);
	}
}

/* map_lock held: the copies of the view that are current, and their extents. */
static unsigned int view_cur(struct spill_dev *dev, const struct spill_chunk *ch,
			     struct spill_target *t)
{
	unsigned int k, cur = 0;

	for (k = 0; k < dev->replicas; k++) {
		t[k].extent = ch->ext[k];
		if (ch->srv[k] == t[k].server && ch->epoch[k] == t[k].epoch && t[k].epoch)
			cur |= BIT(k);
	}
	return cur;
}

/* map_lock held: copy from->copy is still the extent from names. */
static bool still_from(const struct spill_chunk *ch, const struct spill_target *from)
{
	unsigned int r = from->copy;

	return ch->srv[r] == from->server && ch->ext[r] == from->extent &&
	       ch->epoch[r] == from->epoch;
}

/*
 * One pass over chunk c: copy every written page not yet PS_MOVED that has
 * a current copy into the extent to. 0, or -ESTALE when the copy is no
 * longer from (the chunk was freed, its server's session ended).
 */
static int copy_pass(struct spill_dev *dev, u32 c, const struct spill_target *from,
		     const struct spill_target *to, struct spill_run *run)
{
	struct spill_chunk *ch = &dev->chunks[c];
	u64 p = first_page(dev, c), end = end_page(dev, c);
	unsigned int all = GENMASK(dev->replicas - 1, 0), r = from->copy;

	while (p < end) {
		struct spill_target t[SPILL_MAX_REPLICAS];
		unsigned int up, cur, nr = 0, i;
		u64 wver, stop, q;

		if (READ_ONCE(dev->dying))
			return -ESTALE;
		/* Before the look: every write that begins after it is newer. */
		wver = spill_wver_reserve(dev);
		view_copies(dev, c, t, &up);
		spin_lock(&dev->map_lock);
		if (!still_from(ch, from)) {
			spin_unlock(&dev->map_lock);
			return -ESTALE;
		}
		cur = view_cur(dev, ch, t) & up;
		for (stop = min(end, p + MOVE_SCAN); p < stop; p++) {
			u8 st = dev->pstate[p];
			unsigned int have = st & cur & all, src;
			struct spill_run *last = nr ? &run[nr - 1] : NULL;

			if (!(st & PS_DATA) || (st & PS_MOVED) || !have)
				continue;
			/* Spare the draining server when another copy has it. */
			src = have & ~BIT(r) ? __ffs(have & ~BIT(r)) : r;
			if (last && last->src.copy == src && last->first + last->n == p &&
			    last->n < SPILL_RUN_PAGES) {
				last->n++;
			} else if (nr < MOVE_RUNS) {
				run[nr].first = p;
				run[nr].n = 1;
				run[nr].src = t[src];
				run[nr].dst = *to;
				run[nr].rc = 0;
				nr++;
			} else {
				break;
			}
			dev->pstate[p] = st | PS_COPYING;
		}
		spin_unlock(&dev->map_lock);
		if (!nr)
			continue;

		spill_runs_io(dev, first_page(dev, c), run, nr, SPILL_OP_READ, 0);
		spill_runs_io(dev, first_page(dev, c), run, nr, SPILL_OP_WRITE, wver);
		spin_lock(&dev->map_lock);
		for (i = 0; i < nr; i++) {
			for (q = run[i].first; q < run[i].first + run[i].n; q++) {
				u8 st = dev->pstate[q];

				if (!(st & PS_COPYING))
					continue; /* written or freed since the look */
				st &= ~PS_COPYING;
				if (!run[i].rc)
					st |= PS_MOVED;
				dev->pstate[q] = st;
			}
		}
		spin_unlock(&dev->map_lock);
		cond_resched();
	}
	return 0;
}

/*
 * Make the extent to copy from->copy of chunk c, if every written page with
 * a current copy is in it and no write is in flight. 0 with *moved set,
 * -EAGAIN (not yet), or -ESTALE (the copy changed).
 *
 * The pages are checked MOVE_SCAN at a time under map_lock; no write began
 * meanwhile (chunk->wgen) and none was in flight before, so none ended
 * either and the check holds at the switch. The switch changes only the
 * chunk's copy: every written page that has bit r set is PS_MOVED (copy r
 * was current), so bit r now rightly names the new extent. Pages moved from
 * another copy get bit r afterwards: until then copy r just goes unread
 * for them.
 */
static int try_switch(struct spill_dev *dev, u32 c, const struct spill_target *from,
		      const struct spill_target *to, u64 *moved)
{
	struct spill_chunk *ch = &dev->chunks[c];
	u64 p, first = first_page(dev, c), end = end_page(dev, c), n = 0;
	unsigned int all = GENMASK(dev->replicas - 1, 0), r = from->copy, up, cur, k;
	struct spill_target t[SPILL_MAX_REPLICAS];
	bool ours = true;
	u32 wgen;

	view_copies(dev, c, t, &up);
	if (t[r].epoch != from->epoch)
		return -ESTALE; /* the old server's session ended: its copy is gone */
	/* The new server forgot us since the ALLOC: its extent is gone, and
	 * switching to it would free the only one that holds the pages. */
	if (spill_server_epoch(dev, to->server) != to->epoch || !spill_server_up(dev, to->server))
		return -ESTALE;
	spin_lock(&dev->map_lock);
	if (!still_from(ch, from)) {
		spin_unlock(&dev->map_lock);
		return -ESTALE;
	}
	/* A write placed another copy on the same server meanwhile (off a
	 * draining one): two copies on one server are one. */
	for (k = 0; k < dev->replicas; k++) {
		if (k != r && ch->srv[k] == to->server) {
			spin_unlock(&dev->map_lock);
			return -ESTALE;
		}
	}
	cur = view_cur(dev, ch, t);
	wgen = ch->wgen;
	/* An ALLOC in flight for the copy would install its extent over the moved one. */
	if (ch->writers || (ch->allocating & BIT(r)))
		goto not_yet;
	for (p = first; p < end;) {
		u64 stop = min(end, p + MOVE_SCAN);

		for (; p < stop; p++) {
			u8 st = dev->pstate[p];

			if ((st & PS_DATA) && (st & cur & all) && !(st & PS_MOVED))
				goto not_yet;
		}
		spin_unlock(&dev->map_lock);
		cond_resched();
		spin_lock(&dev->map_lock);
		if (ch->wgen != wgen || !still_from(ch, from))
			goto not_yet;
	}
	if (ch->allocating & BIT(r))
		goto not_yet;
	WRITE_ONCE(ch->srv[r], to->server);
	ch->ext[r] = to->extent;
	ch->epoch[r] = to->epoch;
	spin_unlock(&dev->map_lock);

	/* A write or free since cleared PS_MOVED and set the bits itself. If
	 * the copy changed again meanwhile (a reset, a new ALLOC), the new
	 * extent holds none of these pages: only the marks go. */
	for (p = first; p < end;) {
		u64 stop = min(end, p + MOVE_SCAN);

		spin_lock(&dev->map_lock);
		ours = ours && ch->srv[r] == to->server && ch->ext[r] == to->extent &&
		       ch->epoch[r] == to->epoch;
		for (; p < stop; p++) {
			u8 st = dev->pstate[p];

			if ((st & PS_MOVED) && ours) {
				st |= BIT(r);
				n++;
			}
			dev->pstate[p] = st & ~(PS_MOVED | PS_COPYING);
		}
		spin_unlock(&dev->map_lock);
	}
	*moved = n;
	return 0;
not_yet:
	spin_unlock(&dev->map_lock);
	return -EAGAIN;
}

/* A move given up: no page of chunk c counts as moved. */
static void clear_marks(struct spill_dev *dev, u32 c)
{
	u64 p = first_page(dev, c), end = end_page(dev, c);

	while (p < end) {
		u64 stop = min(end, p + MOVE_SCAN);

		spin_lock(&dev->map_lock);
		for (; p < stop; p++)
			dev->pstate[p] &= ~(PS_MOVED | PS_COPYING);
		spin_unlock(&dev->map_lock);
	}
}

/* ALLOC an extent on to->server (session to->epoch) into to->extent. */
static int alloc_extent(struct spill_dev *dev, struct spill_target *to)
{
	struct spill_cmd *cmd = spill_cmd_alloc(dev);
	int rc;

	cmd->op = SPILL_OP_ALLOC;
	cmd->page = SPILL_NODE_ANY;
	cmd->server = to->server;
	cmd->epoch = to->epoch;
	cmd->copy = to->copy;
	rc = spill_exec(cmd);
	if (!rc) {
		to->extent = cmd->reply_extent;
		atomic64_inc(&dev->srv[to->server].extents);
		atomic64_inc(&dev->st.extents_allocated);
	}
	spill_cmd_free(cmd);
	return rc;
}

static bool any_draining(struct spill_dev *dev)
{
	unsigned int s;

	for (s = 0; s < dev->nservers; s++)
		if (spill_server_draining(dev, s))
			return true;
	return false;
}

/* --- Reclaim ------------------------------------------------------------- */

static u8 *put_varint(u8 *p, u64 v)
{
	while (v >= 0x80) {
		*p++ = (v & 0x7f) | 0x80;
		v >>= 7;
	}
	*p++ = v;
	return p;
}

/* Send ReclaimReply { id, freed } on a connection to server s. */
static void send_reply(struct spill_dev *dev, unsigned int s, u64 id, u64 freed)
{
	u8 body[24], msg[32], *b = body, *m = msg;
	struct spill_conn *conn;
	int rc = -ENOTCONN;

	*b++ = 1 << 3 | 0; /* reclaim_id, varint */
	b = put_varint(b, id);
	*b++ = 2 << 3 | 0; /* freed_bytes, varint */
	b = put_varint(b, freed);
	m = put_varint(m, CTRL_RECLAIM_REPLY << 3 | 2);
	m = put_varint(m, b - body);
	memcpy(m, body, b - body);
	m += b - body;
	conn = spill_conn_get(dev, s, spill_server_epoch(dev, s));
	if (conn) {
		rc = spill_conn_send_ctrl(conn, msg, m - msg);
		spill_conn_put(conn);
	}
	if (rc)
		dev_warn_ratelimited(disk_to_dev(dev->disk),
				     "server %u: reclaim %llu not answered: %d\n", s, id, rc);
	else
		dev_info_ratelimited(disk_to_dev(dev->disk), "server %u: reclaim %llu: freed %llu bytes\n",
				     s, id, freed);
}

/* Answer server s's Reclaim if it is done, or all (the walk ended), or its
 * deadline is near. */
static void answer(struct spill_dev *dev, unsigned int s, bool all)
{
	struct spill_server *srv = &dev->srv[s];
	u64 id = 0, freed = 0;
	bool now = false;

	spin_lock(&dev->map_lock);
	if (srv->reclaim_deadline &&
	    (all || srv->reclaim_freed >= srv->reclaim_bytes ||
	     time_after_eq(jiffies + ANSWER_MARGIN, srv->reclaim_deadline))) {
		now = true;
		id = srv->reclaim_id;
		freed = srv->reclaim_freed;
		srv->reclaim_deadline = 0;
	}
	spin_unlock(&dev->map_lock);
	if (now)
		send_reply(dev, s, id, freed);
}

static void answer_all(struct spill_dev *dev, bool all)
{
	unsigned int s;

	for (s = 0; s < dev->nservers; s++)
		answer(dev, s, all);
}

/* Bytes server s still wants back for its Reclaim (0: none pending). */
static u64 reclaim_left(struct spill_dev *dev, unsigned int s)
{
	struct spill_server *srv = &dev->srv[s];
	u64 left = 0;

	spin_lock(&dev->map_lock);
	if (srv->reclaim_deadline && srv->reclaim_freed < srv->reclaim_bytes)
		left = srv->reclaim_bytes - srv->reclaim_freed;
	spin_unlock(&dev->map_lock);
	return left;
}

static void reclaim_freed(struct spill_dev *dev, unsigned int s, u64 bytes)
{
	spin_lock(&dev->map_lock);
	if (dev->srv[s].reclaim_deadline)
		dev->srv[s].reclaim_freed += bytes;
	spin_unlock(&dev->map_lock);
}

/* Copies on server s are to move: it drains, or wants bytes back. */
static bool wanted_off(struct spill_dev *dev, unsigned int s)
{
	return spill_server_draining(dev, s) || reclaim_left(dev, s);
}

/*
 * Move copy r of chunk c off server old (draining, or asked to reclaim).
 * 0 when it is done (*moved: the pages moved) or there is nothing to move;
 * -EAGAIN when it must be tried again later.
 */
static int move_copy(struct spill_dev *dev, u32 c, unsigned int r, unsigned int old,
		     struct spill_run *run, u64 *moved)
{
	struct spill_chunk *ch = &dev->chunks[c];
	struct spill_target from = { .copy = r, .server = old };
	struct spill_target to = { .copy = r };
	unsigned int pass;
	bool live;
	int s, rc;

	from.epoch = spill_server_epoch(dev, old);
	spin_lock(&dev->map_lock);
	from.extent = ch->ext[r];
	live = from.epoch && ch->srv[r] == old && ch->epoch[r] == from.epoch;
	spin_unlock(&dev->map_lock);
	if (!live)
		return 0; /* no extent there: the next write places the copy */

	s = spill_map_pick_server(dev, c, r);
	if (s < 0) {
		dev_warn_ratelimited(disk_to_dev(dev->disk),
				     "no server to take chunk %u copy %u off server %u: still served from it\n",
				     c, r, old);
		return -EAGAIN;
	}
	to.server = s;
	to.epoch = spill_server_epoch(dev, s);
	if (alloc_extent(dev, &to))
		return -EAGAIN;

	rc = -EAGAIN;
	for (pass = 0; pass < MOVE_PASSES; pass++) {
		if (READ_ONCE(dev->dying) || !wanted_off(dev, old))
			break;
		rc = copy_pass(dev, c, &from, &to, run);
		if (!rc)
			rc = try_switch(dev, c, &from, &to, moved);
		if (rc != -EAGAIN)
			break;
		/* Writes in flight, or pages rewritten: let them end. */
		schedule_timeout_uninterruptible(1);
	}
	if (!rc) {
		spill_map_retire_extent(dev, from.server, from.extent, from.epoch);
		return 0;
	}
	clear_marks(dev, c);
	spill_map_retire_extent(dev, to.server, to.extent, to.epoch);
	return -EAGAIN;
}

/*
 * Server s asks for bytes back by deadline_ms from now (notify.c, on the
 * receive thread): note it, the work moves copies off s and answers. A
 * Reclaim not answered yet is replaced (its server stops waiting for it at
 * its deadline).
 */
void spill_migrate_reclaim(struct spill_dev *dev, unsigned int s, u64 id, u64 bytes,
			   u32 deadline_ms)
{
	struct spill_server *srv = &dev->srv[s];
	unsigned long wait = deadline_ms ? min_t(unsigned long, msecs_to_jiffies(deadline_ms),
						 RECLAIM_MAX) : RECLAIM_WAIT;

	spin_lock(&dev->map_lock);
	srv->reclaim_id = id;
	srv->reclaim_bytes = bytes;
	srv->reclaim_freed = 0;
	srv->reclaim_deadline = (jiffies + wait) | 1;
	spin_unlock(&dev->map_lock);
	dev_info_ratelimited(disk_to_dev(dev->disk), "server %u: reclaim %llu asks for %llu bytes\n",
			     s, id, bytes);
	spill_migrate_kick(dev);
}

static void migrate_work(struct work_struct *work)
{
	struct spill_dev *dev = container_of(to_delayed_work(work), struct spill_dev,
					     migrate_work);
	unsigned int noio;
	struct spill_run *run = NULL;
	bool left = false;
	u64 moved = 0;
	u32 c;

	if (READ_ONCE(dev->dying))
		return; /* queued by a kick that raced removal */
	noio = memalloc_noio_save();
	run = kcalloc(MOVE_RUNS, sizeof(*run), GFP_KERNEL);
	if (!run || spill_runs_alloc(run, MOVE_RUNS)) {
		left = true;
		goto out;
	}
	for (c = 0; c < dev->nchunks && !READ_ONCE(dev->dying); c++) {
		unsigned int r;

		for (r = 0; r < dev->replicas; r++) {
			unsigned int s = spill_copy_server(dev, c, r);
			u64 n = 0;

			if (!wanted_off(dev, s))
				continue;
			if (move_copy(dev, c, r, s, run, &n)) {
				left |= spill_server_draining(dev, s);
				continue;
			}
			moved += n;
			if (spill_copy_server(dev, c, r) != s) /* its extent there is freed */
				reclaim_freed(dev, s, dev->extent_bytes);
		}
		answer_all(dev, false);
		cond_resched();
	}
	if (moved) {
		atomic64_add(moved, &dev->st.migrated);
		dev_info(disk_to_dev(dev->disk), "moved %llu pages off draining or reclaiming servers\n",
			 moved);
	}
out:
	/* The walk is over: whatever was freed is the answer. */
	answer_all(dev, true);
	if (run) {
		spill_runs_free(run, MOVE_RUNS);
		kfree(run);
	}
	if (left && any_draining(dev) && !READ_ONCE(dev->dying)) {
		dev->migrate_delay = dev->migrate_delay ?
				     min_t(unsigned long, 2 * dev->migrate_delay, RETRY_MAX) :
				     RETRY_MIN;
		queue_delayed_work(spill_wq, &dev->migrate_work, dev->migrate_delay);
	} else {
		dev->migrate_delay = 0;
	}
	memalloc_noio_restore(noio);
}

void spill_migrate_init(struct spill_dev *dev)
{
	INIT_DELAYED_WORK(&dev->migrate_work, migrate_work);
}

/* A server drains or undrained: walk now. */
void spill_migrate_kick(struct spill_dev *dev)
{
	if (!READ_ONCE(dev->dying))
		mod_delayed_work(spill_wq, &dev->migrate_work, 0);
}

/* Device removal, before its extents are given back: no move after this. */
void spill_migrate_stop(struct spill_dev *dev)
{
	cancel_delayed_work_sync(&dev->migrate_work);
}
