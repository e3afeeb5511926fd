/* SPDX-License-Identifier: MIT */
/*
 * The servers a context lends from: their connections, where each 2 MiB
 * group's copies go (power of two choices on free capacity), and reading and
 * writing pages with failover between replicas. A read goes only to a
 * replica that is current for every page it needs (copies.c); a write
 * records which replicas took it.
 *
 * Each server gets CONNS_PER_SERVER connections of one identity: one for
 * control (the service thread), one for the evictor and the rest for faulting
 * threads, which take whichever is free. A connection that fails marks its
 * server down; the service thread then restores the replica count, and tries
 * the server again until it answers (server_reopen): it comes back holding
 * no copy, and repair gives it the groups' copies anew.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pager.h"

/* Errors that are a server's answer, not a broken connection. -ESTALE
 * (the server kept a newer write of those pages) cannot happen while one
 * write of a page is in flight at a time, as here; were it to, the copy
 * counts as missed and repair rewrites it with a newer version. */
static int is_refusal(int rc)
{
	return rc == -ENODATA || rc == -ENOENT || rc == -EACCES || rc == -ERANGE ||
	       rc == -ENOSPC || rc == -EDQUOT || rc == -EINVAL || rc == -ESTALE;
}

/* Connect connection i of server s as the identity token names (NULL:
 * register a new one). */
static int conn_open_as(spill_ctx *x, int s, int i, const uint8_t *token, char *err, size_t cap)
{
	struct server *sv = &x->servers[s];
	struct client_opts o = {
		.psk = x->psk, .name = x->cfg.name, .priority = x->cfg.priority,
		.reservation = x->cfg.reservation, .limit = x->cfg.limit,
		.timeout_ms = x->cfg.timeout_ms, .token = token,
		.write_clock = &x->write_clock,
	};
	char why[160] = "";
	struct client *c;
	int rc = client_connect(sv->url, &o, &c, why, sizeof(why));
	if (rc) {
		snprintf(err, cap, "%s: %s%s%s", sv->url, strerror(-rc), why[0] ? ": " : "", why);
		return rc;
	}
	/* Before the service thread runs, too: a Drain sent right after
	 * registration is queued until the thread starts, not dropped. */
	if (i == CONN_CTRL)
		client_set_notify(c, service_notify, x);
	if (sv->conn[i].c)
		client_close(sv->conn[i].c);
	sv->conn[i].c = c;
	return 0;
}

/* Connect connection i of server s: the first registers the identity, the
 * others (and reconnections) join it with its token. */
static int conn_open(spill_ctx *x, int s, int i, char *err, size_t cap)
{
	struct server *sv = &x->servers[s];
	return conn_open_as(x, s, i, sv->conn[0].c || i > 0 ? sv->token : NULL, err, cap);
}

/* The control connection of a server that came back is open: take its
 * token (new if it registered us anew), check its extent size, and list the
 * extents it kept for us (the caller frees those no group uses). */
static int reopened(spill_ctx *x, int s, struct client *c, uint64_t **kept, size_t *nkept,
		    char *err, size_t cap)
{
	struct server *sv = &x->servers[s];
	if (client_extent_bytes(c) != CHUNK_BYTES) {
		snprintf(err, cap, "%s: extents are %llu bytes; libspillway needs 2 MiB extents",
			 sv->url, (unsigned long long)client_extent_bytes(c));
		return -SPILL_EBADCONFIG;
	}
	memcpy(sv->token, client_token(c), CTRL_TOKEN_BYTES);
	*kept = NULL;
	*nkept = 0;
	if (!client_resumed(c))
		return 0;
	size_t n = 0;
	const struct client_extent *e = client_resumed_extents(c, &n);
	if (!(*kept = malloc((n ? n : 1) * sizeof(**kept)))) {
		snprintf(err, cap, "%s: out of memory", sv->url);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++)
		(*kept)[k] = e[k].id;
	*nkept = n;
	return 0;
}

int server_reopen(spill_ctx *x, int s, uint64_t **kept, size_t *nkept, char *err, size_t cap)
{
	struct server *sv = &x->servers[s];
	int rc = 0;
	*kept = NULL;
	*nkept = 0;
	/* A Drain it sent before is its past; registering, it says again. */
	atomic_store(&sv->draining, 0);
	for (int i = 0; i < CONNS_PER_SERVER && !rc; i++) {
		struct server_conn *sc = &sv->conn[i];
		pthread_mutex_lock(&sc->lock);
		rc = conn_open_as(x, s, i, sv->token, err, cap);
		if (rc == -ENOENT && i == CONN_CTRL) /* it forgot us (restarted) */
			rc = conn_open_as(x, s, i, NULL, err, cap);
		if (!rc && i == CONN_CTRL)
			rc = reopened(x, s, sc->c, kept, nkept, err, cap);
		pthread_mutex_unlock(&sc->lock);
	}
	if (rc) {
		free(*kept);
		*kept = NULL;
		*nkept = 0;
	}
	return rc;
}

/* Connect every connection of server s (x->urls[s]). */
static int server_open(spill_ctx *x, int s, char *err, size_t cap)
{
	struct server *sv = &x->servers[s];
	sv->index = s;
	snprintf(sv->url, sizeof(sv->url), "%s", x->urls[s]);
	for (int i = 0; i < CONNS_PER_SERVER; i++)
		pthread_mutex_init(&sv->conn[i].lock, NULL);
	for (int i = 0; i < CONNS_PER_SERVER; i++) {
		int rc = conn_open(x, s, i, err, cap);
		if (rc)
			return rc;
		if (i == 0) {
			memcpy(sv->token, client_token(sv->conn[0].c), CTRL_TOKEN_BYTES);
			sv->extent_bytes = client_extent_bytes(sv->conn[0].c);
			if (sv->extent_bytes != CHUNK_BYTES) {
				snprintf(err, cap, "%s: extents are %llu bytes; libspillway "
					 "needs 2 MiB extents (spillwayd --extent-size 2M)",
					 sv->url, (unsigned long long)sv->extent_bytes);
				return -SPILL_EBADCONFIG;
			}
		}
	}
	atomic_store(&sv->up, 1);
	return 0;
}

static void server_close(spill_ctx *x, int s)
{
	for (int i = 0; i < CONNS_PER_SERVER; i++) {
		if (x->servers[s].conn[i].c)
			client_close(x->servers[s].conn[i].c);
		x->servers[s].conn[i].c = NULL;
		pthread_mutex_destroy(&x->servers[s].conn[i].lock);
	}
}

static int server_by_url(spill_ctx *x, const char *url)
{
	for (int s = 0; s < x->nservers; s++)
		if (!strcmp(x->urls[s], url))
			return s;
	return -1;
}

/* Add the servers the cluster lists that are up, not draining and not ours
 * yet. One reached under another URL refuses a second registration of our
 * name, so it is skipped too. Never fatal. */
static void discover(spill_ctx *x)
{
	struct server *first = &x->servers[0];
	Spillway__ClusterInfo ci = SPILLWAY__CLUSTER_INFO__INIT;
	Spillway__Ctrl req = SPILLWAY__CTRL__INIT, *rep = NULL;
	req.msg_case = SPILLWAY__CTRL__MSG_CLUSTER_INFO;
	req.cluster_info = &ci;
	char why[160] = "";
	int rc = client_ctrl(first->conn[CONN_CTRL].c, &req, &rep, why, sizeof(why));
	if (rc || rep->msg_case != SPILLWAY__CTRL__MSG_CLUSTER_INFO_REPLY) {
		log_msg(LOG_INFO, "libspillway: %s: no cluster information: %s", first->url,
			rc ? (why[0] ? why : strerror(-rc)) : "unexpected reply");
		if (!rc)
			ctrl_free(rep);
		/* A server without clusters may have dropped the connection. */
		char err[256];
		if (client_dead(first->conn[CONN_CTRL].c) &&
		    conn_open(x, 0, CONN_CTRL, err, sizeof(err)))
			log_msg(LOG_WARN, "libspillway: reconnecting: %s", err);
		return;
	}
	const Spillway__ClusterInfoReply *r = rep->cluster_info_reply;
	for (size_t i = 0; i < r->n_servers && x->nservers < SPILL_MAX_SERVERS; i++) {
		const Spillway__ServerInfo *si = r->servers[i];
		int s = server_by_url(x, si->url);
		if (s >= 0 && si->draining) {
			/* Its Drain may have come before we listened for it. */
			atomic_store(&x->servers[s].draining, 1);
			atomic_store(&x->drain_needed, 1);
		}
		if (s >= 0 || !si->up || si->draining || !si->url[0] ||
		    strlen(si->url) >= sizeof(first->url))
			continue;
		s = x->nservers;
		char err[256];
		if (!(x->urls[s] = strdup(si->url)))
			break;
		if ((rc = server_open(x, s, err, sizeof(err)))) {
			log_msg(LOG_WARN, "libspillway: skipping discovered server %s", err);
			server_close(x, s);
			memset(&x->servers[s], 0, sizeof(x->servers[s]));
			free(x->urls[s]);
			x->urls[s] = NULL;
			continue;
		}
		x->nservers++;
		log_msg(LOG_INFO, "libspillway: discovered %s", si->url);
	}
	ctrl_free(rep);
}

int servers_open(spill_ctx *x, char *err, size_t cap)
{
	for (int s = 0; s < x->nservers; s++) {
		int rc = server_open(x, s, err, cap);
		if (rc)
			return rc;
	}
	if (x->discover)
		discover(x);
	if (x->replicas > x->nservers) {
		snprintf(err, cap, "replicas %d but only %d server(s) configured%s", x->replicas,
			 x->nservers, x->discover ? " or discovered" : "");
		return -SPILL_EBADCONFIG;
	}
	return 0;
}

int server_conn_repair(spill_ctx *x, int s, struct server_conn *sc)
{
	if (!atomic_load(&x->servers[s].up))
		return -ENOTCONN;
	if (spill_in_signal) {
		/* Connecting allocates: hand it to the service thread and wait,
		 * bounded by the request timeout. */
		unsigned gen = atomic_load(&x->conn_repair_gen);
		atomic_store(&sc->want_repair, 1);
		service_wake(x);
		pthread_mutex_unlock(&sc->lock);
		for (int waited = 0; atomic_load(&sc->want_repair) && waited < x->cfg.timeout_ms &&
				     atomic_load(&x->servers[s].up) && !atomic_load(&x->stopping);
		     waited++) {
			futex_wait_u32(&x->conn_repair_gen, gen);
			gen = atomic_load(&x->conn_repair_gen);
		}
		pthread_mutex_lock(&sc->lock);
		return client_dead(sc->c) ? -ENOTCONN : 0;
	}
	char err[256];
	int rc = conn_open(x, s, (int)(sc - x->servers[s].conn), err, sizeof(err));
	if (rc)
		log_msg(LOG_WARN, "libspillway: reconnecting: %s", err);
	else
		log_msg(LOG_INFO, "libspillway: reconnected to %s", x->servers[s].url);
	return rc;
}

void servers_service(spill_ctx *x)
{
	int repaired = 0;
	for (int s = 0; s < x->nservers; s++) {
		struct server *sv = &x->servers[s];
		for (int i = 0; i < CONNS_PER_SERVER; i++) {
			struct server_conn *sc = &sv->conn[i];
			if (!atomic_load(&sc->want_repair))
				continue;
			pthread_mutex_lock(&sc->lock);
			if (client_dead(sc->c) && server_conn_repair(x, s, sc))
				server_failed(x, s, client_dead(sc->c));
			atomic_store(&sc->want_repair, 0);
			pthread_mutex_unlock(&sc->lock);
			repaired = 1;
		}
		if (!atomic_load(&sv->up) && !atomic_exchange(&sv->failure_logged, 1))
			log_msg(LOG_WARN, "libspillway: server %s failed (%s); serving from replicas",
				sv->url, strerror(-atomic_load(&sv->failed_err)));
	}
	if (repaired) {
		atomic_fetch_add(&x->conn_repair_gen, 1);
		futex_wake_all(&x->conn_repair_gen);
	}
}

void servers_close(spill_ctx *x)
{
	for (int s = 0; s < x->nservers; s++)
		server_close(x, s);
}

struct server_conn *server_conn_get(spill_ctx *x, int s, int kind)
{
	struct server *sv = &x->servers[s];
	if (kind == CONN_CTRL || kind == CONN_EVICT) {
		pthread_mutex_lock(&sv->conn[kind].lock);
		return &sv->conn[kind];
	}
	unsigned n = CONNS_PER_SERVER - CONN_FAULT0;
	unsigned start = atomic_fetch_add_explicit(&x->conn_rr, 1, memory_order_relaxed);
	for (unsigned i = 0; i < n; i++) {
		struct server_conn *sc = &sv->conn[CONN_FAULT0 + (start + i) % n];
		if (pthread_mutex_trylock(&sc->lock) == 0)
			return sc;
	}
	struct server_conn *sc = &sv->conn[CONN_FAULT0 + start % n];
	pthread_mutex_lock(&sc->lock);
	return sc;
}

void server_conn_put(struct server_conn *sc)
{
	pthread_mutex_unlock(&sc->lock);
}

void server_failed(spill_ctx *x, int s, int err)
{
	/* May run in a signal handler: no logging here (servers_service logs). */
	atomic_store(&x->servers[s].failed_err, err ? err : -EIO);
	if (atomic_exchange(&x->servers[s].up, 0)) {
		atomic_store(&x->servers[s].reopen_at, mono_ms() + REOPEN_FIRST_MS);
		atomic_store(&x->repair_needed, 1);
		service_wake(x);
		/* Whoever waits for a repair of this server's connections stops. */
		atomic_fetch_add(&x->conn_repair_gen, 1);
		futex_wake_all(&x->conn_repair_gen);
	}
}

int servers_up(spill_ctx *x)
{
	int n = 0;
	for (int s = 0; s < x->nservers; s++)
		n += atomic_load(&x->servers[s].up);
	return n;
}

/* --- placement ------------------------------------------------------------- */

static uint32_t rnd(void)
{
	static __thread uint64_t state;
	if (!state)
		state = (uint64_t)(uintptr_t)&state ^ 0x9e3779b97f4a7c15ull;
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (uint32_t)state;
}

static int holds(const struct chunk_loc *l, int s)
{
	for (int i = 0; i < l->nrep; i++)
		if (l->srv[i] == s && l->ext[i])
			return 1;
	return 0;
}

/* Can server s take a new extent: up, not draining, not refusing lately? */
static int placeable(spill_ctx *x, int s, uint64_t now)
{
	struct server *sv = &x->servers[s];
	return atomic_load(&sv->up) && !atomic_load(&sv->draining) &&
	       atomic_load(&sv->refused_until) <= now;
}

/* Power of two choices among servers that take extents and do not hold this
 * chunk yet. */
static int choose_server(spill_ctx *x, const struct chunk_loc *l, uint32_t tried)
{
	int cand[SPILL_MAX_SERVERS], n = 0;
	uint64_t now = mono_ms();
	for (int s = 0; s < x->nservers; s++)
		if (placeable(x, s, now) && !holds(l, s) && !(tried & (1u << s)))
			cand[n++] = s;
	if (n == 0)
		return -1;
	int a = cand[rnd() % (unsigned)n], b = cand[rnd() % (unsigned)n];
	return atomic_load(&x->servers[a].free_bytes) >= atomic_load(&x->servers[b].free_bytes)
		       ? a : b;
}

pthread_mutex_t *chunk_lock(spill_ctx *x, uint32_t chunk)
{
	return &x->chunk_locks[chunk % 256];
}

/* Drop replicas on dead servers from the list (their memory is gone). */
/* Drop the replicas on servers that are down, except one that holds the
 * only current copy of some page: the server may come back with it
 * (reopen_servers), and until then nothing else could serve that page. */
static void prune_dead(spill_ctx *x, struct chunk_loc *l)
{
	if (l->nrep == 0)
		return;
	uint32_t chunk = (uint32_t)(l - x->chunks);
	uint8_t keep[MAX_REPLICAS];
	for (int i = 0; i < l->nrep; i++)
		keep[i] = l->ext[i] && (atomic_load(&x->servers[l->srv[i]].up) ||
					copies_only_on(x, chunk, l->srv[i]));
	loc_write_begin(l);
	int k = 0;
	for (int i = 0; i < l->nrep; i++) {
		if (keep[i]) {
			l->srv[k] = l->srv[i];
			l->ext[k] = l->ext[i];
			k++;
		}
	}
	for (int i = k; i < l->nrep; i++)
		l->ext[i] = 0;
	l->nrep = (unsigned char)k;
	loc_write_end(l);
}

#define ALLOC_BACKOFF_MS 1000

static int alloc_on(spill_ctx *x, int s, uint64_t *ext)
{
	struct server_conn *sc = server_conn_get(x, s, CONN_CTRL);
	struct client_extent e;
	int rc = client_alloc_extents(sc->c, 1, -1, &e);
	if (rc && !is_refusal(rc) && server_conn_repair(x, s, sc) == 0)
		rc = client_alloc_extents(sc->c, 1, -1, &e);
	server_conn_put(sc);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		/* Full, or over our limit (on it or cluster-wide): skip it for a
		 * while rather than asking on every eviction. */
		atomic_store(&x->servers[s].free_bytes, 0);
		atomic_store(&x->servers[s].refused_until, mono_ms() + ALLOC_BACKOFF_MS);
	}
	if (rc) {
		if (!is_refusal(rc))
			server_failed(x, s, rc);
		return rc;
	}
	*ext = e.id;
	uint64_t fb = atomic_load(&x->servers[s].free_bytes);
	atomic_store(&x->servers[s].free_bytes, fb > CHUNK_BYTES ? fb - CHUNK_BYTES : 0);
	return 0;
}

/* With the chunk lock held: add replicas until there are enough. */
static int ensure_locked(spill_ctx *x, struct chunk_loc *l)
{
	int want = x->replicas, up = servers_up(x);
	if (want > up)
		want = up;
	uint32_t tried = 0;
	int last = -EIO, had = l->nrep;
	while (l->nrep < want) {
		int s = choose_server(x, l, tried);
		if (s < 0)
			break;
		uint64_t ext;
		int rc = alloc_on(x, s, &ext);
		if (rc) {
			tried |= 1u << s;
			last = rc;
			continue;
		}
		uint32_t chunk = (uint32_t)(l - x->chunks);
		copies_reset_server(x, chunk, s);
		if (had > 0) { /* its pages are not on the new replica yet */
			copies_set_degraded(x, chunk, 1);
			atomic_store(&x->repair_needed, 1);
			service_wake(x);
		}
		loc_write_begin(l);
		l->srv[l->nrep] = (unsigned char)s;
		l->ext[l->nrep] = ext;
		l->nrep++;
		loc_write_end(l);
	}
	return l->nrep > 0 ? 0 : last;
}

int placement_ensure_locked(spill_ctx *x, uint32_t chunk)
{
	struct chunk_loc *l = &x->chunks[chunk];
	prune_dead(x, l);
	return ensure_locked(x, l);
}

int placement_ensure(spill_ctx *x, uint32_t chunk)
{
	pthread_mutex_t *m = chunk_lock(x, chunk);
	pthread_mutex_lock(m);
	int rc = placement_ensure_locked(x, chunk);
	pthread_mutex_unlock(m);
	return rc;
}

void placement_prune(spill_ctx *x, uint32_t chunk)
{
	prune_dead(x, &x->chunks[chunk]);
}

int placement_add(spill_ctx *x, uint32_t chunk, int *srv, uint64_t *ext)
{
	struct chunk_loc *l = &x->chunks[chunk];
	uint32_t tried = 0;
	for (;;) {
		int s = choose_server(x, l, tried);
		if (s < 0)
			return -ENOSPC;
		if (alloc_on(x, s, ext) == 0) {
			*srv = s;
			return 0;
		}
		tried |= 1u << s;
	}
}

void server_free_extent(spill_ctx *x, int s, uint64_t id)
{
	if (!atomic_load(&x->servers[s].up))
		return;
	struct server_conn *sc = server_conn_get(x, s, CONN_CTRL);
	int rc = client_free_extents(sc->c, &id, 1);
	if (rc && !is_refusal(rc) && server_conn_repair(x, s, sc) == 0)
		rc = client_free_extents(sc->c, &id, 1);
	server_conn_put(sc);
	if (rc && !is_refusal(rc))
		server_failed(x, s, rc);
	else
		atomic_fetch_add(&x->servers[s].free_bytes, CHUNK_BYTES);
}

int placement_replica_on(spill_ctx *x, uint32_t chunk, int s)
{
	struct chunk_loc *l = &x->chunks[chunk];
	for (int i = 0; i < l->nrep; i++)
		if (l->srv[i] == s && l->ext[i])
			return i;
	return -1;
}

void placement_drop_locked(spill_ctx *x, uint32_t chunk, int s, uint64_t ext)
{
	struct chunk_loc *l = &x->chunks[chunk];
	int i = placement_replica_on(x, chunk, s);
	if (i < 0 || l->ext[i] != ext)
		return;
	loc_write_begin(l);
	for (int k = i; k + 1 < l->nrep; k++) {
		l->srv[k] = l->srv[k + 1];
		l->ext[k] = l->ext[k + 1];
	}
	l->ext[l->nrep - 1] = 0;
	l->nrep--;
	loc_write_end(l);
	/* Resident clean pages may have had their only copy there: make them
	 * dirty, so eviction writes them again instead of dropping them. A
	 * busy one is the evictor's (it checks revoked runs itself) or a
	 * write fault's (it makes the page dirty anyway). */
	uint32_t first = chunk << CHUNK_SHIFT;
	for (uint32_t p = 0; p < CHUNK_PAGES; p++)
		pte_copy_dropped(&x->pte[first + p]);
	/* Restore the replica count elsewhere (service thread). */
	atomic_store(&x->repair_needed, 1);
}

void placement_release_locked(spill_ctx *x, uint32_t chunk)
{
	struct chunk_loc *l = &x->chunks[chunk];
	for (int i = 0; i < l->nrep; i++) {
		if (l->ext[i])
			server_free_extent(x, l->srv[i], l->ext[i]);
		loc_write_begin(l);
		l->ext[i] = 0;
		loc_write_end(l);
	}
	loc_write_begin(l);
	l->nrep = 0;
	loc_write_end(l);
	copies_set_degraded(x, chunk, 0); /* no copy left to repair */
}

void placement_release(spill_ctx *x, uint32_t chunk)
{
	pthread_mutex_t *m = chunk_lock(x, chunk);
	pthread_mutex_lock(m);
	placement_release_locked(x, chunk);
	pthread_mutex_unlock(m);
}

/* --- reads ----------------------------------------------------------------- */

/* Submit n requests on one connection, all in flight at once, and wait for
 * every one that went out (*sent). 0, or the error that stopped it. */
static int pipeline(struct client *c, struct client_req *reqs, int n, int *sent)
{
	int rc = 0, s = 0;
	for (; s < n && !rc; s++)
		rc = client_submit(c, &reqs[s]);
	if (rc)
		s--;
	*sent = s;
	for (int got = 0; got < s;) {
		struct client_req *done[64];
		int k = client_reap(c, done, 64, 1);
		if (k <= 0)
			return k ? k : -EIO;
		got += k;
	}
	return rc;
}

static int map_has_all(const uint8_t *present, const uint8_t *need, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if ((need[i / 8] >> (i % 8) & 1) && !(present[i / 8] >> (i % 8) & 1))
			return 0;
	return 1;
}

/* The replica r points at exists, is up and is current for every page r
 * needs. */
static int replica_usable(spill_ctx *x, const struct read_run *r)
{
	const struct loc_snap *l = &r->loc;
	int s = l->srv[r->replica];
	return l->ext[r->replica] && atomic_load(&x->servers[s].up) && copies_cover(x, r, s);
}

int remote_read_runs(spill_ctx *x, struct read_run *runs, int nruns, int kind)
{
	/* Runs to read come in with status -EAGAIN (others are skipped). Each
	 * starts at its first replica; failures move it to the next. */
	int pending = 0, failovers = 0;
	for (int i = 0; i < nruns; i++) {
		runs[i].replica = 0;
		runs[i].retried = 0;
		if (runs[i].status != -EAGAIN)
			continue;
		chunk_snapshot(x, runs[i].gpn >> CHUNK_SHIFT, &runs[i].loc);
		pending++;
	}
	while (pending) {
		/* Point every pending run at a live replica, or give up on it. */
		for (int i = 0; i < nruns; i++) {
			struct read_run *r = &runs[i];
			if (r->status != -EAGAIN)
				continue;
			while (r->replica < r->loc.nrep && !replica_usable(x, r))
				r->replica++;
			if (r->replica >= r->loc.nrep) {
				r->status = -EIO;
				pending--;
			}
		}
		/* One server at a time: submit its runs pipelined, then reap. */
		for (int s = 0; s < x->nservers && pending; s++) {
			struct client_req reqs[64];
			int idx[64], n = 0;
			for (int i = 0; i < nruns && n < 64; i++) {
				struct read_run *r = &runs[i];
				const struct loc_snap *l = &r->loc;
				/* Checked again: a run that failed over on an
				 * earlier server of this pass points at a replica
				 * nobody looked at yet (current? up?). */
				if (r->status != -EAGAIN || r->replica >= l->nrep ||
				    l->srv[r->replica] != s || !replica_usable(x, r))
					continue;
				reqs[n] = (struct client_req){
					.op = SPILL_OP_READ, .extent = l->ext[r->replica],
					.page = r->gpn & (CHUNK_PAGES - 1), .npages = r->n,
					.buf = r->buf, .present = r->present,
				};
				idx[n++] = i;
			}
			if (n == 0)
				continue;
			struct server_conn *sc = server_conn_get(x, s, kind);
			int sent, rc = pipeline(sc->c, reqs, n, &sent);
			/* A broken stream (a checksum error, a reset) costs a new
			 * connection, not the server: failed runs retry once. */
			int reconnected = client_dead(sc->c) && server_conn_repair(x, s, sc) == 0;
			server_conn_put(sc);
			for (int j = 0; j < n; j++) {
				struct read_run *r = &runs[idx[j]];
				int st = j < sent && reqs[j].done ? reqs[j].status : (rc ? rc : -EIO);
				if (st == -ENODATA || st == 0) {
					if (st == 0)
						memset(r->present, 0xff, SPILL_PRESENT_MAP_BYTES);
					if (map_has_all(r->present, r->need, r->n)) {
						r->status = 0;
						pending--;
						continue;
					}
					/* The server forgot pages we gave it: try a copy. */
				} else if (!is_refusal(st)) {
					if (reconnected && !r->retried) {
						r->retried = 1;
						continue;
					}
					server_failed(x, s, st);
				}
				r->replica++;
				r->retried = 0;
				failovers++;
			}
		}
	}
	int failed = 0;
	for (int i = 0; i < nruns; i++)
		failed |= runs[i].status == -EIO;
	if (failovers)
		atomic_fetch_add(&x->st.failovers, (uint64_t)failovers);
	return failed ? -EIO : 0;
}

/* --- writes ---------------------------------------------------------------- */

/* Write the runs that have a replica on server s; count copies. Returns 1
 * when the connection broke. */
static int write_to(spill_ctx *x, int s, struct write_run *runs, int nruns, uint8_t *done_on)
{
	struct client_req reqs[128];
	int idx[128], n = 0;
	for (int i = 0; i < nruns && n < 128; i++) {
		if (done_on[i])
			continue;
		struct chunk_loc *l = chunk_of(x, runs[i].gpn);
		for (int k = 0; k < l->nrep; k++) {
			if (l->srv[k] != s || !l->ext[k])
				continue;
			reqs[n] = (struct client_req){
				.op = SPILL_OP_WRITE, .extent = l->ext[k],
				.page = runs[i].gpn & (CHUNK_PAGES - 1), .npages = runs[i].n,
				.buf = runs[i].buf,
			};
			idx[n++] = i;
		}
	}
	if (n == 0)
		return 0;
	struct server_conn *sc = server_conn_get(x, s, CONN_EVICT);
	int sent;
	pipeline(sc->c, reqs, n, &sent);
	int broken = client_dead(sc->c) != 0;
	if (broken && server_conn_repair(x, s, sc))
		server_failed(x, s, client_dead(sc->c));
	server_conn_put(sc);
	for (int j = 0; j < n; j++) {
		struct write_run *r = &runs[idx[j]];
		if (j < sent && reqs[j].done && reqs[j].status == 0) {
			r->copies++;
			r->acked |= (uint16_t)(1u << s);
			done_on[idx[j]] = 1;
			atomic_fetch_add(&x->st.remote_writes, reqs[j].npages);
		} else if (j < sent && reqs[j].done && reqs[j].status == -ENOENT) {
			/* The server took the extent back (the cluster revoked it). */
			r->revoked = 1;
			done_on[idx[j]] = 1;
			placement_drop_locked(x, r->gpn >> CHUNK_SHIFT, s, reqs[j].extent);
		}
	}
	return broken;
}

int remote_write_runs(spill_ctx *x, struct write_run *runs, int nruns)
{
	uint8_t skip[256], done_on[256];
	for (int i = 0; i < nruns; i++) {
		runs[i].copies = 0;
		runs[i].acked = 0;
		runs[i].revoked = 0;
		skip[i] = 0;
	}
	for (int round = 0; round < 2; round++) {
		for (int s = 0; s < x->nservers; s++) {
			memcpy(done_on, skip, (size_t)nruns);
			/* Once more after a reconnection; then the server is down. */
			for (int attempt = 0; attempt < 2 && atomic_load(&x->servers[s].up); attempt++)
				if (!write_to(x, s, runs, nruns, done_on))
					break;
		}
		/* A run that lost its only copies to revocation gets a new
		 * extent and one more try; without one its pages stay local. */
		int again = 0;
		for (int i = 0; i < nruns; i++) {
			skip[i] = runs[i].copies > 0 || !runs[i].revoked ||
				  placement_ensure_locked(x, runs[i].gpn >> CHUNK_SHIFT) != 0;
			again |= !skip[i];
		}
		if (!again)
			break;
	}
	/* The copies that took a run are its current ones now; a run no
	 * replica took stays dirty and resident, its old copies unchanged. */
	for (int i = 0; i < nruns; i++)
		if (runs[i].acked)
			copies_written(x, runs[i].gpn, runs[i].n, runs[i].acked);
	return 0;
}
