/* SPDX-License-Identifier: MIT */
/*
 * The service thread: listens on each server's control connection for what
 * servers send unasked (Reclaim, Drain), refreshes free capacity for
 * placement, restores the replica count after a server is lost, tries lost
 * servers again and brings them back holding no copy, repairs replicas that
 * missed writes (copies.c), and moves copies off servers that drain.
 *
 * Reclaim: a server wants bytes back. Groups whose remote pages are all
 * resident only hold duplicates: their extents are freed and the pages marked
 * dirty (written again if evicted later). If that is not enough, remote pages
 * are brought back while the local budget has room, and their groups freed
 * the same way. Then the program's spill_on_reclaim callback runs, and the
 * server gets a ReclaimReply with the bytes freed on it.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pager.h"

/* --- reclaim --------------------------------------------------------------- */

static int chunk_on_server(spill_ctx *x, uint32_t chunk, int s)
{
	struct loc_snap l;
	chunk_snapshot(x, chunk, &l);
	for (int i = 0; i < l.nrep; i++)
		if (l.srv[i] == s && l.ext[i])
			return 1;
	return 0;
}

/* If every remote page of the group is resident, free its extents. Returns
 * 1 when it did. regions_lock held for reading. */
static int drop_duplicates(spill_ctx *x, struct region *r, uint32_t chunk)
{
	uint32_t first = chunk << CHUNK_SHIFT;
	uint64_t old[CHUNK_PAGES];
	int claimed = 0, ok = 1;
	pthread_mutex_t *m = chunk_lock(x, chunk);
	pthread_mutex_lock(m);
	for (; claimed < (int)CHUNK_PAGES; claimed++) {
		if (!pte_try_claim(x, first + (uint32_t)claimed, &old[claimed])) {
			ok = 0;
			break;
		}
		uint64_t w = old[claimed];
		if ((w & PTE_REMOTE) && !(w & PTE_RES)) {
			ok = 0;
			claimed++;
			break;
		}
	}
	uint64_t dropped = 0;
	for (int i = 0; i < claimed; i++) {
		uint64_t w = old[i];
		if (ok) {
			dropped += (w & PTE_REMOTE) != 0;
			w = pte_copies_released(w);
		}
		pte_release(x, first + (uint32_t)i, w);
	}
	if (ok && x->chunks[chunk].nrep)
		placement_release_locked(x, chunk);
	pthread_mutex_unlock(m);
	(void)r;
	if (ok)
		atomic_fetch_sub(&x->st.remote_pages, dropped);
	return ok;
}

static uint64_t reclaim_from(spill_ctx *x, int s, uint64_t want)
{
	uint64_t freed = 0;
	for (int pass = 0; pass < 2 && freed < want; pass++) {
		regions_enter(x);
		for (int i = 0; i < x->nregions && freed < want; i++) {
			struct region *r = x->regions[i];
			for (uint32_t c = r->gpn0 >> CHUNK_SHIFT;
			     c < (r->gpn0 + r->npages) >> CHUNK_SHIFT && freed < want; c++) {
				if (!chunk_on_server(x, c, s))
					continue;
				if (pass == 1) {
					/* Bring the group back if the budget has room. */
					if (atomic_load(&x->resident) + CHUNK_PAGES >
					    atomic_load(&x->budget))
						break;
					fault_willneed(x, r, c << CHUNK_SHIFT, CHUNK_PAGES);
				}
				if (drop_duplicates(x, r, c))
					freed += CHUNK_BYTES;
			}
		}
		pthread_rwlock_unlock(&x->regions_lock);
	}
	return freed;
}

static void answer_reclaim(spill_ctx *x, const struct pending_reclaim *q)
{
	uint64_t freed = reclaim_from(x, q->server, q->bytes);
	atomic_fetch_add(&x->st.reclaims, 1);
	atomic_fetch_add(&x->st.reclaimed_bytes, freed);
	pthread_mutex_lock(&x->reclaim_lock);
	spill_reclaim_fn fn = x->reclaim_fn;
	void *arg = x->reclaim_arg;
	pthread_mutex_unlock(&x->reclaim_lock);
	if (fn)
		fn(x, q->bytes, freed, arg);
	Spillway__ReclaimReply rr = SPILLWAY__RECLAIM_REPLY__INIT;
	rr.reclaim_id = q->id;
	rr.freed_bytes = freed;
	Spillway__Ctrl msg = SPILLWAY__CTRL__INIT;
	msg.msg_case = SPILLWAY__CTRL__MSG_RECLAIM_REPLY;
	msg.reclaim_reply = &rr;
	if (!atomic_load(&x->servers[q->server].up))
		return;
	struct server_conn *sc = server_conn_get(x, q->server, CONN_CTRL);
	int rc = client_send_ctrl(sc->c, &msg);
	server_conn_put(sc);
	if (rc)
		server_failed(x, q->server, rc);
	log_msg(LOG_INFO, "libspillway: reclaim %llu from %s: asked %llu bytes, freed %llu",
		(unsigned long long)q->id, x->servers[q->server].url,
		(unsigned long long)q->bytes, (unsigned long long)freed);
}

void service_wake(spill_ctx *x)
{
	uint64_t one = 1;
	if (x->wake_fd >= 0 && write(x->wake_fd, &one, sizeof(one)) < 0) {
		/* the service thread also wakes on its timer */
	}
}

/* Called from inside client calls on a control connection: only queue. */
void service_notify(struct client *c, Spillway__Ctrl *msg, void *arg)
{
	spill_ctx *x = arg;
	int s;
	for (s = 0; s < x->nservers; s++)
		if (x->servers[s].conn[CONN_CTRL].c == c)
			break;
	if (msg->msg_case == SPILLWAY__CTRL__MSG_DRAIN && s < x->nservers) {
		struct server *sv = &x->servers[s];
		int on = msg->drain->drain != 0;
		if (atomic_exchange(&sv->draining, on) != on)
			log_msg(LOG_INFO, "libspillway: %s %s", sv->url,
				on ? "drains: moving pages off it" : "takes new pages again");
		if (on) {
			atomic_store(&sv->drain_stuck_logged, 0);
			atomic_store(&x->drain_needed, 1);
			service_wake(x);
		}
	}
	if (msg->msg_case == SPILLWAY__CTRL__MSG_RECLAIM) {
		pthread_mutex_lock(&x->reclaim_lock);
		if (s < x->nservers && x->reclaim_n < (int)(sizeof(x->reclaim_q) / sizeof(x->reclaim_q[0])))
			x->reclaim_q[x->reclaim_n++] = (struct pending_reclaim){
				s, msg->reclaim->reclaim_id, msg->reclaim->bytes };
		pthread_mutex_unlock(&x->reclaim_lock);
	}
	ctrl_free(msg);
}

/* --- capacity --------------------------------------------------------------- */

static void refresh_free(spill_ctx *x)
{
	for (int s = 0; s < x->nservers; s++) {
		if (!atomic_load(&x->servers[s].up))
			continue;
		Spillway__Stats st = SPILLWAY__STATS__INIT;
		Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
		req.msg_case = SPILLWAY__CTRL__MSG_STATS;
		req.stats = &st;
		struct server_conn *sc = server_conn_get(x, s, CONN_CTRL);
		int rc = client_ctrl(sc->c, &req, &rep, NULL, 0);
		server_conn_put(sc);
		if (rc) {
			if (client_dead(sc->c))
				server_failed(x, s, rc);
			continue;
		}
		if (rep->msg_case == SPILLWAY__CTRL__MSG_STATS_REPLY) {
			uint64_t cap = rep->stats_reply->capacity_bytes;
			uint64_t used = rep->stats_reply->used_bytes;
			atomic_store(&x->servers[s].free_bytes, cap > used ? cap - used : 0);
		}
		ctrl_free(rep);
	}
}

/* --- replica repair ----------------------------------------------------------- */

/*
 * Restore a group: drop copies on dead servers, add replicas up to the
 * configured count (as many as servers are up), then copy every written
 * page to each replica that is not current for it (copies.c). Lock held.
 * 0 once the group is whole, or -errno (tried again on the next tick).
 */
static int repair_chunk(spill_ctx *x, uint32_t chunk)
{
	struct chunk_loc *l = &x->chunks[chunk];
	placement_prune(x, chunk);
	if (l->nrep == 0)
		return 0; /* nothing stored, or nothing left to copy from */
	int want = x->replicas < servers_up(x) ? x->replicas : servers_up(x);
	uint8_t fresh = 0; /* replica i was added now */
	while (l->nrep < want && l->nrep < MAX_REPLICAS) {
		int dst;
		uint64_t ext;
		if (placement_add(x, chunk, &dst, &ext))
			break;
		copies_reset_server(x, chunk, dst);
		fresh |= (uint8_t)(1u << l->nrep);
		loc_write_begin(l);
		l->srv[l->nrep] = (unsigned char)dst;
		l->ext[l->nrep] = ext;
		l->nrep++;
		loc_write_end(l);
	}
	if (!fresh && !atomic_load(&l->degraded))
		return 0;
	int rc = 0;
	for (int i = 0; i < l->nrep; i++) {
		int r = copies_fill(x, chunk, l->srv[i], l->ext[i], fresh >> i & 1);
		rc = rc ? rc : r;
	}
	if (rc == 0 && l->nrep >= want)
		copies_set_degraded(x, chunk, 0);
	return rc ? rc : l->nrep < want ? -ENOSPC : 0;
}

static void repair(spill_ctx *x)
{
	atomic_store(&x->repair_needed, 0);
	int failed = 0;
	regions_enter(x);
	for (int i = 0; i < x->nregions && !atomic_load(&x->stopping); i++) {
		struct region *r = x->regions[i];
		for (uint32_t c = r->gpn0 >> CHUNK_SHIFT; c < (r->gpn0 + r->npages) >> CHUNK_SHIFT; c++) {
			if (atomic_load(&x->chunks[c].nrep) == 0)
				continue;
			pthread_mutex_t *m = chunk_lock(x, c);
			pthread_mutex_lock(m);
			failed |= repair_chunk(x, c) != 0;
			pthread_mutex_unlock(m);
		}
	}
	pthread_rwlock_unlock(&x->regions_lock);
	if (failed)
		atomic_store(&x->repair_needed, 1); /* try again on the next tick */
}

/* --- draining ---------------------------------------------------------------- */

/*
 * Wait out every read that may still use a group's old location. A reader
 * claims its pages (BUSY) before it looks the group up, and reads only
 * pages it holds: once each page has been seen free after the switch (by a
 * read-modify-write, so a later claim is ordered after the switch), no
 * reader holds the old location. No chunk lock held: the evictor takes
 * chunk locks while holding BUSY pages.
 */
static void chunk_quiesce(spill_ctx *x, uint32_t chunk)
{
	uint32_t first = chunk << CHUNK_SHIFT;
	for (uint32_t i = 0; i < CHUNK_PAGES; i++)
		while (atomic_fetch_or_explicit(&x->pte[first + i], 0, memory_order_acq_rel) & PTE_BUSY)
			pte_wait(x, first + i);
}

/*
 * Move a group's copy off draining server s: copy it to another server,
 * point the group's entry there, then free the old extent once no read can
 * still be using it. Faults keep reading the old copy until the switch and
 * the new one after it; writers (the evictor) are held off by the chunk
 * lock until the switch, so the copy misses none of their writes.
 * 0 (moved, or nothing to move) or -errno.
 */
static int move_chunk(spill_ctx *x, uint32_t chunk, int s)
{
	struct chunk_loc *l = &x->chunks[chunk];
	pthread_mutex_t *m = chunk_lock(x, chunk);
	pthread_mutex_lock(m);
	placement_prune(x, chunk);
	int i = placement_replica_on(x, chunk, s);
	if (i < 0) {
		pthread_mutex_unlock(m);
		return 0;
	}
	uint64_t old = l->ext[i];
	int dst;
	uint64_t ext;
	int rc = placement_add(x, chunk, &dst, &ext) ? -ENOSPC : 0;
	if (!rc) {
		/* Not in the placement yet: its bits count once it is. */
		copies_reset_server(x, chunk, dst);
		rc = copies_fill(x, chunk, dst, ext, 1);
		if (rc && atomic_load(&x->servers[dst].up))
			server_free_extent(x, dst, ext);
	}
	if (rc) {
		pthread_mutex_unlock(m);
		return rc;
	}
	loc_write_begin(l);
	l->srv[i] = (unsigned char)dst;
	l->ext[i] = ext;
	loc_write_end(l);
	pthread_mutex_unlock(m);
	chunk_quiesce(x, chunk);
	server_free_extent(x, s, old);
	return 0;
}

/* Move every group with a copy on a draining server elsewhere. What cannot
 * move now (nowhere to put it) is tried again on the next tick. */
static void drain(spill_ctx *x)
{
	atomic_store(&x->drain_needed, 0);
	uint32_t draining = 0;
	for (int s = 0; s < x->nservers; s++)
		if (atomic_load(&x->servers[s].up) && atomic_load(&x->servers[s].draining))
			draining |= 1u << s;
	if (!draining)
		return;
	uint32_t left = 0;
	regions_enter(x);
	for (int r = 0; r < x->nregions && !atomic_load(&x->stopping); r++) {
		struct region *rg = x->regions[r];
		for (uint32_t c = rg->gpn0 >> CHUNK_SHIFT;
		     c < (rg->gpn0 + rg->npages + CHUNK_PAGES - 1) >> CHUNK_SHIFT &&
		     !atomic_load(&x->stopping); c++) {
			struct loc_snap l;
			chunk_snapshot(x, c, &l);
			for (int k = 0; k < l.nrep; k++) {
				int s = l.srv[k];
				if (!l.ext[k] || !(draining >> s & 1))
					continue;
				int rc = move_chunk(x, c, s);
				if (!rc)
					continue;
				left |= 1u << s;
				if (!atomic_exchange(&x->servers[s].drain_stuck_logged, 1))
					log_msg(LOG_WARN, "libspillway: %s drains but pages cannot move "
						"off it yet (%s); retrying", x->servers[s].url,
						rc == -ENOSPC ? "no other server takes them" : strerror(-rc));
			}
		}
	}
	pthread_rwlock_unlock(&x->regions_lock);
	if (left)
		atomic_store(&x->drain_needed, 1);
	for (int s = 0; s < x->nservers; s++)
		if ((draining & ~left) >> s & 1)
			log_msg(LOG_INFO, "libspillway: every page moved off %s", x->servers[s].url);
}

/* --- servers coming back ------------------------------------------------------ */

/*
 * Server s (down) comes back empty (it restarted, or no longer knows us):
 * take it out of every group's placement and clear its currency bits, so
 * nothing it held before counts again, and mark the groups left short of
 * copies degraded. Then wait out every read that may still hold a group's
 * old location (chunk_quiesce): once s is up, a read that began before the
 * failure could otherwise find s current again, through a new copy, under
 * an extent id of the old one.
 */
static void forget_server(spill_ctx *x, int s)
{
	regions_enter(x);
	for (int i = 0; i < x->nregions && !atomic_load(&x->stopping); i++) {
		struct region *r = x->regions[i];
		for (uint32_t c = r->gpn0 >> CHUNK_SHIFT;
		     c < (r->gpn0 + r->npages + CHUNK_PAGES - 1) >> CHUNK_SHIFT; c++) {
			struct chunk_loc *l = &x->chunks[c];
			pthread_mutex_t *m = chunk_lock(x, c);
			pthread_mutex_lock(m);
			int k = placement_replica_on(x, c, s);
			if (k >= 0) /* kept while down as some page's only copy: gone */
				placement_drop_locked(x, c, s, l->ext[k]);
			placement_prune(x, c);
			copies_reset_server(x, c, s);
			if (l->nrep > 0 && l->nrep < x->replicas)
				copies_set_degraded(x, c, 1);
			pthread_mutex_unlock(m);
			chunk_quiesce(x, c);
		}
	}
	pthread_rwlock_unlock(&x->regions_lock);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Server s (down) comes back as the same identity, with the extents it kept
 * (a stall, a partition). Groups that still place it keep it as it is: its
 * currency bits are exact, since every write while it was down set the
 * pages' masks to the servers that took it, and a write of ours that
 * reaches it late is fenced by its version. Those groups, and the groups
 * left short of copies while it was down, are marked degraded, so repair
 * brings it the pages it missed and gives the others their replica again. Kept extents that no
 * group places any more (dropped while it was down) are moved to the front
 * of kept; their count is returned.
 */
static size_t readmit_server(spill_ctx *x, int s, uint64_t *kept, size_t nkept)
{
	qsort(kept, nkept, sizeof(*kept), cmp_u64);
	uint8_t *used = calloc(nkept ? nkept : 1, 1);
	regions_enter(x);
	for (int i = 0; i < x->nregions && !atomic_load(&x->stopping); i++) {
		struct region *r = x->regions[i];
		for (uint32_t c = r->gpn0 >> CHUNK_SHIFT;
		     c < (r->gpn0 + r->npages + CHUNK_PAGES - 1) >> CHUNK_SHIFT; c++) {
			pthread_mutex_t *m = chunk_lock(x, c);
			pthread_mutex_lock(m);
			struct chunk_loc *l = &x->chunks[c];
			int k = placement_replica_on(x, c, s);
			if (k >= 0) {
				uint64_t ext = l->ext[k];
				uint64_t *hit = bsearch(&ext, kept, nkept, sizeof(*kept), cmp_u64);
				if (hit && used)
					used[hit - kept] = 1;
			}
			/* It may have missed writes; or the group, which dropped
			 * it meanwhile, is short of copies until repair adds one. */
			if (k >= 0 || (l->nrep > 0 && l->nrep < x->replicas))
				copies_set_degraded(x, c, 1);
			pthread_mutex_unlock(m);
		}
	}
	pthread_rwlock_unlock(&x->regions_lock);
	size_t n = 0;
	for (size_t k = 0; k < nkept; k++)
		if (used && !used[k])
			kept[n++] = kept[k];
	free(used);
	return n;
}

/* Try the servers that are down and due again. One that answers as the
 * same identity is taken back with the copies it holds; one that restarted
 * empty comes back holding none. Repair then copies what they miss. */
static void reopen_servers(spill_ctx *x)
{
	for (int s = 0; s < x->nservers && !atomic_load(&x->stopping); s++) {
		struct server *sv = &x->servers[s];
		if (atomic_load(&sv->up) || mono_ms() < atomic_load(&sv->reopen_at))
			continue;
		char err[256];
		uint64_t *kept;
		size_t nkept;
		if (server_reopen(x, s, &kept, &nkept, err, sizeof(err))) {
			sv->reopen_wait = sv->reopen_wait ? sv->reopen_wait * 2 : REOPEN_FIRST_MS;
			if (sv->reopen_wait > REOPEN_MAX_MS)
				sv->reopen_wait = REOPEN_MAX_MS;
			atomic_store(&sv->reopen_at, mono_ms() + sv->reopen_wait);
			log_msg(LOG_DEBUG, "libspillway: %s still down: %s", sv->url, err);
			continue;
		}
		size_t unused = 0;
		int same = kept != NULL;
		if (same)
			unused = readmit_server(x, s, kept, nkept);
		else
			forget_server(x, s);
		sv->reopen_wait = 0;
		atomic_store(&sv->refused_until, 0);
		atomic_store(&sv->failure_logged, 0);
		atomic_store(&sv->up, 1);
		for (size_t k = 0; k < unused; k++)
			server_free_extent(x, s, kept[k]);
		free(kept);
		atomic_store(&x->repair_needed, 1);
		log_msg(LOG_WARN, "libspillway: server %s is back%s; repairing its copies", sv->url,
			same ? "" : " empty");
	}
}

/* Milliseconds until the next server that is down is due (at most ms). */
static int reopen_due_ms(spill_ctx *x, int ms)
{
	uint64_t now = mono_ms();
	for (int s = 0; s < x->nservers; s++) {
		if (atomic_load(&x->servers[s].up))
			continue;
		uint64_t at = atomic_load(&x->servers[s].reopen_at);
		int left = at > now ? (int)(at - now) : 0;
		if (left < ms)
			ms = left;
	}
	return ms;
}

/* --- the thread ------------------------------------------------------------- */

static void *service_main(void *arg)
{
	spill_ctx *x = arg;
	spill_in_library = 1;
	uint64_t next_refresh = 0;
	while (!atomic_load(&x->stopping)) {
		struct pollfd p[SPILL_MAX_SERVERS + 2];
		int map[SPILL_MAX_SERVERS + 2], n = 0;
		p[n] = (struct pollfd){ x->stop_fd, POLLIN, 0 };
		map[n++] = -1;
		p[n] = (struct pollfd){ x->wake_fd, POLLIN, 0 };
		map[n++] = -2;
		for (int s = 0; s < x->nservers; s++)
			if (atomic_load(&x->servers[s].up)) {
				p[n] = (struct pollfd){ client_fd(x->servers[s].conn[CONN_CTRL].c), POLLIN, 0 };
				map[n++] = s;
			}
		poll(p, (nfds_t)n, reopen_due_ms(x, 1000));
		if (p[1].revents & POLLIN) {
			uint64_t v;
			if (read(x->wake_fd, &v, sizeof(v)) < 0) {
				/* nothing to reset */
			}
		}
		servers_service(x);
		reopen_servers(x);
		for (int i = 2; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int s = map[i];
			struct server_conn *sc = server_conn_get(x, s, CONN_CTRL);
			struct client_req *done[4];
			int rc = client_reap(sc->c, done, 4, 0);
			if (rc < 0 && server_conn_repair(x, s, sc))
				server_failed(x, s, rc);
			server_conn_put(sc);
		}
		for (;;) {
			pthread_mutex_lock(&x->reclaim_lock);
			struct pending_reclaim q;
			int have = x->reclaim_n > 0;
			if (have) {
				q = x->reclaim_q[0];
				memmove(&x->reclaim_q[0], &x->reclaim_q[1],
					(size_t)(--x->reclaim_n) * sizeof(q));
			}
			pthread_mutex_unlock(&x->reclaim_lock);
			if (!have)
				break;
			answer_reclaim(x, &q);
		}
		if (atomic_load(&x->repair_needed) && x->replicas > 1)
			repair(x);
		if (atomic_load(&x->drain_needed))
			drain(x);
		if (mono_ms() >= next_refresh) {
			refresh_free(x);
			next_refresh = mono_ms() + 1000;
		}
	}
	return NULL;
}

int service_start(spill_ctx *x)
{
	x->repair_buf = malloc(CHUNK_BYTES);
	x->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!x->repair_buf || x->wake_fd < 0)
		return -ENOMEM;
	return -pthread_create(&x->service, NULL, service_main, x);
}

void service_stop(spill_ctx *x)
{
	pthread_join(x->service, NULL);
	free(x->repair_buf);
	if (x->wake_fd >= 0)
		close(x->wake_fd);
	x->wake_fd = -1;
}
