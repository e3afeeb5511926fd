// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Background repair: brings every written page back to dev->replicas
 * current copies, by reading it from a current copy into the device's own
 * bounce pages and writing it to the copy that lacks it.
 *
 * A copy lacks a page when a write reached only some copies, when a read
 * found the copy without it, or when its server forgot us (a session
 * reset: the chunk's extent there no longer counts; a new one is claimed
 * through spill_map_begin_write, as a write would). Those events and every
 * new connection kick a walk over the chunks. It copies runs of pages that
 * share a source and a missing copy, REPAIR_RUNS requests in flight, and
 * skips pages whose source or missing copy's server is down: the
 * connection that brings it back kicks the next walk.
 *
 * Against writes of the same pages:
 * - a chunk with a write in flight is left for a later walk;
 * - the repair's write version is reserved before the chunk is looked at,
 *   so every write that begins after the look, before or after the source
 *   is read, is newer and wins on the server whatever the order of
 *   arrival, and a late write older than the copied data is fenced;
 * - the missing copy's bit is set only if no write began in the chunk
 *   since the look (chunk->wgen), the page is still written and its source
 *   still holds it; ESTALE (the copy kept a newer write) sets nothing.
 * This file reads the page table, and adds a copy bit under those
 * conditions, itself under map_lock; it changes nothing else in it.
 *
 * Its run copier (spill_runs_io: READs from a source, WRITEs to a
 * destination, through bounce pages) also serves migrate.c.
 *
 * It never starves swap: while the device has had I/O in the last QUIET it
 * copies one batch per BUSY_DELAY. It runs on spill_wq (never twice at
 * once: a work item does not run concurrently with itself), and stops
 * when the device is being removed.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "spill.h"

#define REPAIR_RUNS 4           /* runs copied at once: requests in flight */
#define REPAIR_RUN  SPILL_RUN_PAGES /* pages per run: REPAIR_RUNS * REPAIR_RUN bounce pages */
#define KICK_DELAY  (HZ / 5)    /* let events of one failure gather */
#define QUIET       (HZ / 5)    /* no swap I/O this long: copy without pause */
#define BUSY_DELAY  (HZ / 4)    /* otherwise one batch this often */
#define RETRY_DELAY HZ          /* a chunk had writes in flight */
#define ERROR_DELAY (5 * HZ)    /* a read, write or extent allocation failed */

#define REPAIR_KICKED 0         /* rep->flags: an event since the walk began */

/* A chunk's copies at one look. */
struct repair_view {
	unsigned int srv[SPILL_MAX_REPLICAS];  /* the server of each copy */
	u32 epoch[SPILL_MAX_REPLICAS];     /* the session of each copy's server */
	u64 ext[SPILL_MAX_REPLICAS];
	unsigned int up;                   /* copies whose server is reachable */
	unsigned int cur;                  /* copies with an extent of that session */
	u32 wgen;
};

struct spill_repair {
	struct spill_dev *dev;
	struct delayed_work work;
	unsigned long flags;
	u32 cursor;                        /* the walk's next chunk */
	u64 repaired;                      /* pages repaired in this walk */
	unsigned long alloc_after;         /* jiffies: no extent claims before (refused) */
	unsigned long again;               /* walk again after this delay; 0: on a kick */
	struct spill_run run[REPAIR_RUNS];
};

static unsigned int all_copies(const struct spill_dev *dev)
{
	return GENMASK(dev->replicas - 1, 0);
}

static bool dev_busy(const struct spill_dev *dev)
{
	return time_before(jiffies, READ_ONCE(dev->last_io) + QUIET);
}

static void walk_later(struct spill_repair *rep, unsigned long delay)
{
	if (!rep->again || delay < rep->again)
		rep->again = delay;
}

/* Sessions and reachability of chunk c's copies (conn_lock, not map_lock).
 * A copy moved since (migrate.c) has another extent id: view_chunk_locked
 * then finds it not current. */
static void view_servers(struct spill_dev *dev, u32 c, struct repair_view *v)
{
	unsigned int r;

	v->up = 0;
	for (r = 0; r < dev->replicas; r++) {
		unsigned int s = spill_copy_server(dev, c, r);

		v->srv[r] = s;
		v->epoch[r] = spill_server_epoch(dev, s);
		if (spill_server_up(dev, s))
			v->up |= BIT(r);
	}
}

/* map_lock held: the chunk's extents, which of them count, and its wgen. */
static void view_chunk_locked(struct spill_dev *dev, const struct spill_chunk *ch,
			      struct repair_view *v)
{
	unsigned int r;

	v->cur = 0;
	for (r = 0; r < dev->replicas; r++) {
		v->ext[r] = ch->ext[r];
		if (ch->epoch[r] == v->epoch[r] && ch->srv[r] == v->srv[r])
			v->cur |= BIT(r);
	}
	v->wgen = ch->wgen;
}

static struct spill_target view_target(const struct repair_view *v, unsigned int r)
{
	return (struct spill_target){ .copy = r, .server = v->srv[r], .extent = v->ext[r],
				      .epoch = v->epoch[r] };
}

/*
 * map_lock held: up to REPAIR_RUNS runs to copy among pages [*from, end) of
 * one chunk; *from moves past the pages looked at. *need_ext gets the
 * copies a page lacks whose server is up but holds no extent of its
 * session yet.
 */
static unsigned int find_runs(struct spill_dev *dev, const struct repair_view *v, u64 *from,
			      u64 end, struct spill_run *run, unsigned int *need_ext)
{
	unsigned int nr = 0;
	u64 p;

	for (p = *from; p < end; p++) {
		u8 st = dev->pstate[p];
		unsigned int have = st & v->cur & all_copies(dev), missing, src, dst;
		struct spill_run *last = nr ? &run[nr - 1] : NULL;

		if (!(st & PS_DATA) || !(have & v->up))
			continue;
		missing = all_copies(dev) & ~have & v->up;
		*need_ext |= missing & ~v->cur;
		missing &= v->cur;
		if (!missing)
			continue;
		src = __ffs(have & v->up);
		dst = __ffs(missing);
		if (last && last->src.copy == src && last->dst.copy == dst &&
		    last->first + last->n == p && last->n < REPAIR_RUN) {
			last->n++;
			continue;
		}
		if (nr == REPAIR_RUNS)
			break;
		run[nr].first = p;
		run[nr].n = 1;
		run[nr].src = view_target(v, src);
		run[nr].dst = view_target(v, dst);
		run[nr].rc = 0;
		nr++;
	}
	*from = p;
	return nr;
}

/*
 * Claim extents for the copies of chunk c that have none, as a write does;
 * true if each copy of want (a mask) has one now.
 */
static bool alloc_extents(struct spill_dev *dev, u32 c, unsigned int want)
{
	struct spill_target t[SPILL_MAX_REPLICAS];
	u64 first = (u64)c * dev->extent_pages;
	int i, nt;

	/* No pages: counts a writer of the chunk, and its end uncounts it. */
	nt = spill_map_begin_write(dev, first, 0, t);
	if (nt <= 0)
		return false;
	spill_map_end_write(dev, first, 0, 0);
	for (i = 0; i < nt; i++)
		want &= ~BIT(t[i].copy);
	return !want;
}

static void run_cmd_done(struct spill_cmd *cmd)
{
	complete(&cmd->wait);
}

/*
 * Send op for every run without an error so far, a READ from its source or
 * a WRITE (with version wver) to its destination, all in flight together;
 * wait for them and leave each one's status in run->rc. chunk_first: the
 * chunk's first page.
 */
void spill_runs_io(struct spill_dev *dev, u64 chunk_first, struct spill_run *run,
		   unsigned int nr, u16 op, u64 wver)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		const struct spill_target *t = op == SPILL_OP_READ ? &run[i].src : &run[i].dst;
		struct spill_cmd *cmd;

		run[i].cmd = NULL;
		if (run[i].rc)
			continue;
		cmd = spill_cmd_alloc(dev);
		cmd->op = op;
		cmd->extent = t->extent;
		cmd->page = run[i].first - chunk_first;
		cmd->npages = run[i].n;
		cmd->server = t->server;
		cmd->epoch = t->epoch;
		cmd->copy = t->copy;
		cmd->bvec = run[i].bvec;
		cmd->iter = (struct bvec_iter){ .bi_size = run[i].n << PAGE_SHIFT };
		if (op == SPILL_OP_WRITE)
			cmd->wver = wver;
		cmd->done = run_cmd_done;
		if (spill_submit(cmd)) {
			cmd->status = -ENOTCONN;
			complete(&cmd->wait);
		}
		run[i].cmd = cmd;
	}
	for (i = 0; i < nr; i++) {
		struct spill_cmd *cmd = run[i].cmd;

		if (!cmd)
			continue;
		/* Connections time out, so this ends; waking keeps it off the hung-task list. */
		while (!wait_for_completion_io_timeout(&cmd->wait, HZ))
			;
		run[i].rc = cmd->status;
		if (cmd->status && cmd->status != -ENOTCONN && cmd->status != -ESTALE)
			atomic64_inc(&dev->srv[cmd->server].io_errors);
		spill_cmd_free(cmd);
	}
}

/* Bounce pages for nr runs; -ENOMEM leaves none (spill_runs_free is safe). */
int spill_runs_alloc(struct spill_run *run, unsigned int nr)
{
	unsigned int i, k;

	for (i = 0; i < nr; i++) {
		for (k = 0; k < SPILL_RUN_PAGES; k++) {
			struct page *page = alloc_page(GFP_KERNEL);

			if (!page) {
				spill_runs_free(run, nr);
				return -ENOMEM;
			}
			run[i].bvec[k] = (struct bio_vec){ .bv_page = page, .bv_len = PAGE_SIZE };
		}
	}
	return 0;
}

/* Free the bounce pages spill_runs_alloc left (any part of them). */
void spill_runs_free(struct spill_run *run, unsigned int nr)
{
	unsigned int i, k;

	for (i = 0; i < nr; i++) {
		for (k = 0; k < SPILL_RUN_PAGES; k++) {
			if (run[i].bvec[k].bv_page)
				__free_page(run[i].bvec[k].bv_page);
			run[i].bvec[k].bv_page = NULL;
		}
	}
}

/* The run's missing copy now holds what its source held at the look: mark
 * the pages nothing changed since. Returns the pages marked. */
static u32 commit_run(struct spill_dev *dev, const struct spill_chunk *ch,
		      const struct repair_view *v, const struct spill_run *run)
{
	unsigned int src = run->src.copy, dst = run->dst.copy;
	u32 marked = 0;
	u64 p;

	spin_lock(&dev->map_lock);
	if (ch->wgen == v->wgen && ch->epoch[dst] == v->epoch[dst] &&
	    ch->ext[dst] == v->ext[dst] && ch->epoch[src] == v->epoch[src] &&
	    ch->ext[src] == v->ext[src]) {
		for (p = run->first; p < run->first + run->n; p++) {
			u8 st = dev->pstate[p];

			if ((st & PS_DATA) && (st & BIT(src)) && !(st & BIT(dst))) {
				dev->pstate[p] = st | BIT(dst);
				marked++;
			}
		}
	}
	spin_unlock(&dev->map_lock);
	return marked;
}

/*
 * Repair what can be repaired now in chunk c. False when the walk must stop
 * here: the device is busy and *budget (batches allowed) is spent, or it is
 * being removed.
 */
static bool repair_chunk(struct spill_repair *rep, u32 c, unsigned int *budget)
{
	struct spill_dev *dev = rep->dev;
	struct spill_chunk *ch = &dev->chunks[c];
	u64 from = (u64)c * dev->extent_pages;
	u64 end = min_t(u64, from + dev->extent_pages, dev->npages);
	bool tried_alloc = false;
	struct repair_view v;

	while (from < end) {
		unsigned int nr, i, need_ext = 0;
		u64 wver, next = from;

		if (READ_ONCE(dev->dying))
			return false;
		/* Before the look: every write that begins after it is newer. */
		wver = spill_wver_reserve(dev);
		view_servers(dev, c, &v);
		if (hweight32(v.up) < 2)
			return true; /* no two reachable copies to copy between */
		spin_lock(&dev->map_lock);
		if (ch->writers) {
			spin_unlock(&dev->map_lock);
			walk_later(rep, RETRY_DELAY);
			return true;
		}
		view_chunk_locked(dev, ch, &v);
		nr = ch->used ? find_runs(dev, &v, &next, end, rep->run, &need_ext) : 0;
		spin_unlock(&dev->map_lock);

		if (need_ext) {
			/* One claim per chunk and walk, none for a while after a refusal. */
			if (!tried_alloc && time_after_eq(jiffies, rep->alloc_after)) {
				tried_alloc = true;
				if (!alloc_extents(dev, c, need_ext))
					rep->alloc_after = jiffies + ERROR_DELAY;
				continue; /* look again with the new extents */
			}
			walk_later(rep, ERROR_DELAY);
		}
		if (!nr)
			return true;
		if (dev_busy(dev)) {
			if (!*budget)
				return false;
			(*budget)--;
		}
		spill_runs_io(dev, (u64)c * dev->extent_pages, rep->run, nr, SPILL_OP_READ, 0);
		spill_runs_io(dev, (u64)c * dev->extent_pages, rep->run, nr, SPILL_OP_WRITE, wver);
		for (i = 0; i < nr; i++) {
			int rc = rep->run[i].rc;

			if (!rc) {
				u32 n = commit_run(dev, ch, &v, &rep->run[i]);

				rep->repaired += n;
				atomic64_add(n, &dev->st.repairs);
			} else if (rc == -ESTALE) {
				/* The copy kept a newer write: that write's end decides. */
				atomic64_inc(&dev->st.fenced_writes);
			} else {
				walk_later(rep, ERROR_DELAY);
			}
		}
		from = next;
		cond_resched();
	}
	return true;
}

static void repair_work(struct work_struct *work)
{
	struct spill_repair *rep = container_of(to_delayed_work(work), struct spill_repair,
						work);
	struct spill_dev *dev = rep->dev;
	unsigned int noio = memalloc_noio_save();
	unsigned int budget = 1; /* batches while swap I/O goes on */
	unsigned long delay = 0;

	if (!rep->cursor)
		clear_bit(REPAIR_KICKED, &rep->flags);
	/* repair=0: leave copies as they are (a kick after repair=1 resumes). */
	while (rep->cursor < dev->nchunks && !READ_ONCE(dev->dying) && READ_ONCE(spill_repair)) {
		if (!repair_chunk(rep, rep->cursor, &budget)) {
			delay = BUSY_DELAY;
			break;
		}
		rep->cursor++;
		cond_resched();
	}
	if (rep->cursor == dev->nchunks) {
		if (rep->repaired)
			dev_info(disk_to_dev(dev->disk),
				 "repaired %llu pages; %llu written pages lack a copy\n",
				 rep->repaired, spill_repair_degraded(dev));
		rep->cursor = 0;
		rep->repaired = 0;
		delay = rep->again;
		rep->again = 0;
		if (test_bit(REPAIR_KICKED, &rep->flags))
			delay = KICK_DELAY; /* something changed behind the walk */
	}
	if (delay && !READ_ONCE(dev->dying))
		queue_delayed_work(spill_wq, &rep->work, delay);
	memalloc_noio_restore(noio);
}

/* A copy may have lost pages, or a server came back: walk soon. */
void spill_repair_kick(struct spill_dev *dev)
{
	struct spill_repair *rep = dev->repair;

	if (!rep || READ_ONCE(dev->dying))
		return;
	set_bit(REPAIR_KICKED, &rep->flags);
	queue_delayed_work(spill_wq, &rep->work, KICK_DELAY);
}

/*
 * A write of pages from first (one chunk) was stored on copies ok: kick if
 * it missed a copy that could be repaired now (one whose server is up; when
 * a server comes back, its connection kicks).
 */
void spill_repair_written(struct spill_dev *dev, u64 first, unsigned int ok)
{
	unsigned long missed = all_copies(dev) & ~ok;
	u32 c = div_u64(first, dev->extent_pages);
	unsigned int r;

	if (!dev->repair || !ok || !missed)
		return;
	for_each_set_bit(r, &missed, SPILL_MAX_REPLICAS) {
		if (spill_server_up(dev, spill_copy_server(dev, c, r))) {
			spill_repair_kick(dev);
			return;
		}
	}
}

/* Written pages that lack one of their copies now (a scan of the table). */
u64 spill_repair_degraded(struct spill_dev *dev)
{
	u64 lacking = 0;
	u32 c;

	for (c = 0; c < dev->nchunks; c++) {
		struct spill_chunk *ch = &dev->chunks[c];
		u64 p = (u64)c * dev->extent_pages;
		u64 end = min_t(u64, p + dev->extent_pages, dev->npages);
		struct repair_view v;

		view_servers(dev, c, &v);
		spin_lock(&dev->map_lock);
		view_chunk_locked(dev, ch, &v);
		if (!ch->used)
			p = end;
		for (; p < end; p++) {
			u8 st = dev->pstate[p];

			if ((st & PS_DATA) && (st & v.cur & all_copies(dev)) != all_copies(dev))
				lacking++;
		}
		spin_unlock(&dev->map_lock);
		cond_resched();
	}
	return lacking;
}

/* With the device: its bounce pages. Nothing to repair with one copy. */
int spill_repair_init(struct spill_dev *dev)
{
	struct spill_repair *rep;

	if (dev->replicas < 2)
		return 0;
	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return -ENOMEM;
	rep->dev = dev;
	rep->alloc_after = jiffies;
	INIT_DELAYED_WORK(&rep->work, repair_work);
	dev->repair = rep;
	if (spill_runs_alloc(rep->run, REPAIR_RUNS)) {
		spill_repair_destroy(dev);
		return -ENOMEM;
	}
	return 0;
}

/* Device removal, before its extents are given back: no walk after this. */
void spill_repair_stop(struct spill_dev *dev)
{
	if (dev->repair)
		cancel_delayed_work_sync(&dev->repair->work);
}

/* Free what spill_repair_init allocated (any part of it); dev->repair is NULL after. */
void spill_repair_destroy(struct spill_dev *dev)
{
	struct spill_repair *rep = dev->repair;

	if (!rep)
		return;
	cancel_delayed_work_sync(&rep->work);
	spill_runs_free(rep->run, REPAIR_RUNS);
	kfree(rep);
	dev->repair = NULL;
}
