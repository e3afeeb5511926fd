/* SPDX-License-Identifier: MIT */
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "buddy.h"
#include "log.h"
#include "metrics.h"
#include "rdma_domain.h"
#include "slab.h"
#include "wire.h"

/* The protocol stays at the edge (server/wire/): no control message here. */
#ifdef PROTOBUF_C_spillway_2eproto__INCLUDED
#error "protobuf reached this file: convert in server/wire/ instead"
#endif

struct quota_entry {
	struct quota_entry *next;
	char name[CTRL_NAME_MAX + 1];
	struct reg_quota q;
};

/* What a spillway_identities gauge reads: one principal's count. */
struct ident_gauge {
	struct registry *r;
	enum reg_principal who;
};

struct registry {
	pthread_mutex_t lock;
	struct pool_set *pools;
	uint64_t extent_bytes;
	unsigned extent_order;
	uint64_t grace_ms;
	struct cds_lfht *clients;   /* by name */
	struct cds_lfht *tokens;    /* the same clients, by token */
	struct cds_lfht *extents;   /* by id */
	struct slab_cache *client_cache, *extent_cache;
	uint64_t next_client_id;
	size_t present_words;       /* bitmap words per extent */
	uint64_t reserved;          /* sum of reservations of live identities */
	uint64_t beyond_reserved;   /* sum over clients of max(0, used - reservation) */
	uint64_t used;
	unsigned nclients;
	struct quota_entry *quotas;
	/* Cluster (cluster.c): the arbiter's verdict and this server's drain. */
	int cluster_full, draining;
	void (*on_change)(void *);
	void *on_change_arg;
	/* Policy; accounting of pinned bytes (see registry.h). */
	struct reg_policy policy;
	unsigned nidents[REG_PRINCIPAL_COUNT];
	uint64_t pinned;            /* all pinned bytes, in used */
	uint64_t orphan_pinned;     /* of those, whose owner is gone */
	struct reg_extent *orphans; /* those extents, through pin_next */
	/* Disconnected identities, oldest first: grace ends in this order. */
	struct reg_client *idle_head, **idle_tail;
	uint64_t elsewhere_gen;     /* registry_set_used_elsewhere's round */
	/* For /metrics. */
	atomic_uint_fast64_t refusals[REG_REFUSE_COUNT];
	atomic_uint_fast64_t clamps[REG_CLAMP_COUNT];
	atomic_uint_fast64_t full_walks;
	struct ident_gauge ident_gauges[REG_PRINCIPAL_COUNT];
};

uint64_t registry_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned long hash_u64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (unsigned long)(x ^ (x >> 31));
}

static unsigned long hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
	return hash_u64(h);
}

static int match_name(struct cds_lfht_node *n, const void *key)
{
	return !strcmp(caa_container_of(n, struct reg_client, by_name)->name, key);
}

static int match_token(struct cds_lfht_node *n, const void *key)
{
	return !CRYPTO_memcmp(caa_container_of(n, struct reg_client, by_token)->token, key,
			      CTRL_TOKEN_BYTES);
}

static unsigned long hash_token(const uint8_t *t)
{
	uint64_t h;
	memcpy(&h, t, sizeof(h)); /* random bytes already */
	return hash_u64(h);
}

static int match_id(struct cds_lfht_node *n, const void *key)
{
	return caa_container_of(n, struct reg_extent, by_id)->id == *(const uint64_t *)key;
}

struct registry *registry_create(struct pool_set *pools, uint64_t extent_bytes,
				 uint64_t grace_ms)
{
	struct registry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->pools = pools;
	r->extent_bytes = extent_bytes;
	r->extent_order = buddy_order_for(extent_bytes / BUDDY_FRAME_SIZE);
	r->grace_ms = grace_ms;
	r->next_client_id = 1;
	r->idle_tail = &r->idle_head;
	uint32_t npages = (uint32_t)(extent_bytes / BUDDY_FRAME_SIZE);
	size_t words = (npages + 63) / 64;
	/* Accounting lets the tables shrink again after a flood of names. */
	r->clients = cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	r->tokens = cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	r->extents = cds_lfht_new(1024, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	r->client_cache = slab_cache_create("client", sizeof(struct reg_client), 64);
	r->present_words = words;
	r->extent_cache = slab_cache_create("extent", sizeof(struct reg_extent) +
					    words * sizeof(atomic_uint_fast64_t) +
					    npages * sizeof(atomic_uint_fast64_t) +
					    npages * sizeof(uint32_t), 64);
	if (!r->clients || !r->tokens || !r->extents || !r->client_cache || !r->extent_cache) {
		registry_destroy(r);
		return NULL;
	}
	return r;
}

static void extent_free_rcu(struct rcu_head *head)
{
	struct reg_extent *e = caa_container_of(head, struct reg_extent, rcu);
	pthread_mutex_destroy(&e->commit_lock);
	slab_free(e->reg->extent_cache, e);
}

static void unlock_and_tell(struct registry *r, int usage_changed);
static void extent_unpin_locked(struct registry *r, struct reg_extent *e);

void registry_extent_put(struct reg_extent *e)
{
	if (atomic_fetch_sub(&e->refs, 1) == 1) {
		/* The table's reference went first (extent_release_locked), so
		 * this extent is pinned and still charged: settle that. Never
		 * reached with the mutex held: the table's own reference is
		 * dropped inside the registry, which settles it there. */
		struct registry *r = e->reg;
		pthread_mutex_lock(&r->lock);
		extent_unpin_locked(r, e);
		unlock_and_tell(r, 1);
	}
}

void registry_extent_hold(struct reg_extent *e)
{
	atomic_fetch_add(&e->refs, 1);
}

struct reg_extent *registry_extent_get(struct registry *r, uint64_t id)
{
	struct cds_lfht_iter it;
	cds_lfht_lookup(r->extents, hash_u64(id), match_id, &id, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	if (!n)
		return NULL;
	struct reg_extent *e = caa_container_of(n, struct reg_extent, by_id);
	int refs = atomic_load(&e->refs);
	do {
		if (refs == 0)
			return NULL; /* being freed */
	} while (!atomic_compare_exchange_weak(&e->refs, &refs, refs + 1));
	return e;
}

/* --- accounting ---------------------------------------------------------- */

static uint64_t beyond(uint64_t used, uint64_t reservation)
{
	return used > reservation ? used - reservation : 0;
}

/* Change c's use by delta bytes, keeping the totals in step. */
static void account_locked(struct registry *r, struct reg_client *c, int64_t delta)
{
	r->beyond_reserved -= beyond(c->used, c->reservation);
	c->used = (uint64_t)((int64_t)c->used + delta);
	r->beyond_reserved += beyond(c->used, c->reservation);
	r->used = (uint64_t)((int64_t)r->used + delta);
}

static void set_reservation_locked(struct registry *r, struct reg_client *c, uint64_t res)
{
	r->beyond_reserved -= beyond(c->used, c->reservation);
	r->reserved -= c->reservation;
	c->reservation = res;
	r->reserved += res;
	r->beyond_reserved += beyond(c->used, c->reservation);
}

/*
 * May c grow by bytes? Its reservation is guaranteed: growth inside it always
 * fits, because unreserved growth is held to capacity minus all reservations.
 */
/* Lent beyond reservations, counting the pinned blocks of owners gone. */
static uint64_t lent_beyond_locked(const struct registry *r)
{
	return r->beyond_reserved + r->orphan_pinned;
}

/* c's bytes on the cluster's other servers, as the arbiter last said. */
static uint64_t elsewhere_locked(const struct registry *r, const struct reg_client *c)
{
	return c->elsewhere_gen == r->elsewhere_gen ? c->used_elsewhere : 0;
}

static int admit_locked(struct registry *r, const struct reg_client *c, uint64_t bytes)
{
	/* The limit and, with the cluster full, the reservation hold for the
	 * client's memory on every server, as the arbiter last counted it. */
	uint64_t cluster_used = c->used + elsewhere_locked(r, c);
	if (c->limit && cluster_used + bytes > c->limit)
		return -EDQUOT;
	if (r->draining || (r->cluster_full && cluster_used + bytes > c->reservation))
		return -ENOSPC;
	uint64_t extra = beyond(c->used + bytes, c->reservation) - beyond(c->used, c->reservation);
	if (lent_beyond_locked(r) + extra > r->pools->capacity - r->reserved)
		return -ENOSPC;
	return 0;
}

/* Drop the lock; if usage changed, tell whoever reports it (outside the
 * lock, with the callback read while it was held). */
static void unlock_and_tell(struct registry *r, int usage_changed)
{
	void (*fn)(void *) = usage_changed ? r->on_change : NULL;
	void *arg = r->on_change_arg;
	pthread_mutex_unlock(&r->lock);
	if (fn)
		fn(arg);
}

/* --- quotas -------------------------------------------------------------- */

static struct quota_entry *quota_find_locked(struct registry *r, const char *name)
{
	for (struct quota_entry *q = r->quotas; q; q = q->next)
		if (!strcmp(q->name, name))
			return q;
	return NULL;
}

static struct reg_client *client_find_locked(struct registry *r, const char *name)
{
	struct cds_lfht_iter it;
	rcu_read_lock();
	cds_lfht_lookup(r->clients, hash_str(name), match_name, name, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	rcu_read_unlock();
	/* Safe after unlock: removal also takes the mutex we hold. */
	return n ? caa_container_of(n, struct reg_client, by_name) : NULL;
}

/* Apply q to c; refuses a reservation that does not fit. */
static int apply_quota_locked(struct registry *r, struct reg_client *c,
			      const struct reg_quota *q, const char **why)
{
	uint64_t res = q->has_reservation ? q->reservation : c->reservation;
	uint64_t limit = q->has_limit ? q->limit : c->limit;
	if (limit && res > limit) {
		*why = "reservation above limit";
		return -EINVAL;
	}
	if (res > r->pools->capacity) {
		*why = "reservation exceeds the pool's capacity";
		return -ENOSPC;
	}
	/* Guaranteed means the memory is there when asked for: reservations plus
	 * what is lent beyond them must fit the pool. */
	uint64_t reserved = r->reserved - c->reservation + res;
	uint64_t lent_beyond = lent_beyond_locked(r) - beyond(c->used, c->reservation) +
			       beyond(c->used, res);
	if (reserved + lent_beyond > r->pools->capacity) {
		*why = "reservation does not fit: the pool is already lent out";
		return -ENOSPC;
	}
	if (q->has_priority)
		c->priority = q->priority;
	c->limit = limit;
	set_reservation_locked(r, c, res);
	return 0;
}

int registry_set_quota(struct registry *r, const char *name, const struct reg_quota *q,
		       const char **why)
{
	if (q->has_reservation && q->reservation > r->pools->capacity) {
		*why = "reservation exceeds the pool's capacity";
		return -ENOSPC;
	}
	if (q->has_reservation && q->has_limit && q->limit && q->reservation > q->limit) {
		*why = "reservation above limit";
		return -EINVAL;
	}
	pthread_mutex_lock(&r->lock);
	int rc = 0;
	struct reg_client *c = client_find_locked(r, name);
	if (c)
		rc = apply_quota_locked(r, c, q, why);
	if (rc == 0) {
		struct quota_entry *e = quota_find_locked(r, name);
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e) {
				pthread_mutex_unlock(&r->lock);
				return -ENOMEM;
			}
			strcpy(e->name, name);
			e->next = r->quotas;
			r->quotas = e;
		}
		if (q->has_priority) {
			e->q.has_priority = 1;
			e->q.priority = q->priority;
		}
		if (q->has_reservation) {
			e->q.has_reservation = 1;
			e->q.reservation = q->reservation;
		}
		if (q->has_limit) {
			e->q.has_limit = 1;
			e->q.limit = q->limit;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int registry_load_quotas(struct registry *r, char **names, const struct reg_quota *q, size_t n)
{
	pthread_mutex_lock(&r->lock);
	while (r->quotas) {
		struct quota_entry *e = r->quotas;
		r->quotas = e->next;
		free(e);
	}
	pthread_mutex_unlock(&r->lock);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const char *why = NULL;
		int e = registry_set_quota(r, names[i], &q[i], &why);
		if (e) {
			log_warn("quota for '%s' not applied: %s", names[i], why ? why : strerror(-e));
			rc = e;
		}
	}
	return rc;
}

/* --- identities ---------------------------------------------------------- */

static void client_free_rcu(struct rcu_head *head)
{
	struct reg_client *c = caa_container_of(head, struct reg_client, rcu);
	slab_free(c->reg->client_cache, c);
}

/* The last reference of a freed extent is gone: uncharge it, return its
 * block; the struct waits for readers that may still test its refcount. */
static void extent_unpin_locked(struct registry *r, struct reg_extent *e)
{
	if (e->pin_next)
		e->pin_next->pin_pprev = e->pin_pprev;
	*e->pin_pprev = e->pin_next;
	if (e->pin_owner) {
		e->pin_owner->pinned_bytes -= r->extent_bytes;
		account_locked(r, e->pin_owner, -(int64_t)r->extent_bytes);
	} else {
		r->orphan_pinned -= r->extent_bytes;
		r->used -= r->extent_bytes;
	}
	r->pinned -= r->extent_bytes;
	pool_free(r->pools, &e->block);
	call_rcu(&e->rcu, extent_free_rcu);
}

/* Unlink one extent from the table; it stays charged to c while a reply
 * still references its block. */
static void extent_release_locked(struct registry *r, struct reg_client *c,
				  struct reg_extent *e)
{
	/* Revoke remote access before the memory can go to anyone else. */
	e->unlinked = 1;
	if (e->mr) {
		ibv_dereg_mr(e->mr);
		e->mr = NULL;
	}
	cds_lfht_del(r->extents, &e->by_id);
	c->nextents--;
	/* Pinned first, then the table's reference dropped: whoever drops
	 * the last one finds it pinned and settles the charge. */
	e->pin_owner = c;
	e->pin_next = c->pinned;
	if (c->pinned)
		c->pinned->pin_pprev = &e->pin_next;
	e->pin_pprev = &c->pinned;
	c->pinned = e;
	c->pinned_bytes += r->extent_bytes;
	r->pinned += r->extent_bytes;
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		extent_unpin_locked(r, e);
}

static void idle_remove_locked(struct registry *r, struct reg_client *c)
{
	if (!c->idle_pprev)
		return;
	if (c->idle_next)
		c->idle_next->idle_pprev = c->idle_pprev;
	else
		r->idle_tail = c->idle_pprev;
	*c->idle_pprev = c->idle_next;
	c->idle_next = NULL;
	c->idle_pprev = NULL;
}

static void idle_append_locked(struct registry *r, struct reg_client *c)
{
	c->idle_next = NULL;
	c->idle_pprev = r->idle_tail;
	*r->idle_tail = c;
	r->idle_tail = &c->idle_next;
}

static void client_destroy_locked(struct registry *r, struct reg_client *c)
{
	rcu_read_lock();
	while (c->extents) {
		struct reg_extent *e = c->extents;
		c->extents = e->next_of_owner;
		extent_release_locked(r, c, e);
	}
	/* Blocks still referenced outlive their owner: the pool keeps them
	 * charged until they come back. */
	while (c->pinned) {
		struct reg_extent *e = c->pinned;
		c->pinned = e->pin_next;
		account_locked(r, c, -(int64_t)r->extent_bytes);
		r->used += r->extent_bytes;
		r->orphan_pinned += r->extent_bytes;
		e->pin_owner = NULL;
		e->pin_next = r->orphans;
		if (r->orphans)
			r->orphans->pin_pprev = &e->pin_next;
		e->pin_pprev = &r->orphans;
		r->orphans = e;
	}
	c->pinned_bytes = 0;
	set_reservation_locked(r, c, 0);
	cds_lfht_del(r->clients, &c->by_name);
	cds_lfht_del(r->tokens, &c->by_token);
	rcu_read_unlock();
	idle_remove_locked(r, c);
	rdma_domain_put(c->rdma_dom);
	c->rdma_dom = NULL;
	r->nclients--;
	r->nidents[c->principal]--;
	call_rcu(&c->rcu, client_free_rcu);
}

/* What a new identity gets: the operator's quota where there is one, else
 * what it asks within the policy (operator sessions and exports: as asked). */
static void grant_locked(struct registry *r, const struct reg_request *req,
			 enum reg_principal who, struct reg_client *c, uint64_t *reservation)
{
	const struct reg_policy *p = &r->policy;
	int bounded = who == REG_PRINCIPAL_CLIENT;
	c->priority = req->priority;
	c->limit = req->limit;
	*reservation = req->reservation;
	if (bounded && *reservation > p->default_reservation) {
		*reservation = p->default_reservation;
		atomic_fetch_add(&r->clamps[REG_CLAMP_RESERVATION], 1);
	}
	if (bounded && c->priority < p->default_priority) {
		c->priority = p->default_priority;
		atomic_fetch_add(&r->clamps[REG_CLAMP_PRIORITY], 1);
	}
	if (bounded && p->default_limit && (!c->limit || c->limit > p->default_limit)) {
		c->limit = p->default_limit;
		atomic_fetch_add(&r->clamps[REG_CLAMP_LIMIT], 1);
	}
	if (bounded && c->limit && *reservation > c->limit)
		*reservation = c->limit; /* the clamped limit bounds what was asked */
	struct quota_entry *cfg = quota_find_locked(r, req->name);
	if (cfg) {
		/* The operator's quota wins over what the client asks for. */
		if (cfg->q.has_priority)
			c->priority = cfg->q.priority;
		if (cfg->q.has_limit)
			c->limit = cfg->q.limit;
		if (cfg->q.has_reservation)
			*reservation = cfg->q.reservation;
	}
}

/* Is name one only exports may have, asked by who? -EPERM with why. */
static int reserved_name(struct registry *r, const char *name, enum reg_principal who,
			 const char **why)
{
	if (who == REG_PRINCIPAL_EXPORT ||
	    strncmp(name, REG_EXPORT_PREFIX, strlen(REG_EXPORT_PREFIX)))
		return 0;
	atomic_fetch_add(&r->refusals[REG_REFUSE_EXPORT_NAME], 1);
	*why = "names nbd:* belong to NBD exports";
	return -EPERM;
}

/* May who make one more identity? 0, or -EDQUOT with why set. */
static int may_create_locked(struct registry *r, enum reg_principal who, const char **why)
{
	const struct reg_policy *p = &r->policy;
	if (who == REG_PRINCIPAL_EXPORT)
		return 0; /* bounded by the operator's exports */
	if (p->max_identities_per_key && r->nidents[who] >= p->max_identities_per_key) {
		atomic_fetch_add(&r->refusals[REG_REFUSE_PER_KEY], 1);
		*why = "too many identities for this key (--max-identities-per-key)";
		return -EDQUOT;
	}
	if (p->max_identities && r->nclients >= p->max_identities) {
		atomic_fetch_add(&r->refusals[REG_REFUSE_TOTAL], 1);
		*why = "too many identities on this server (--max-identities)";
		return -EDQUOT;
	}
	return 0;
}

int registry_register(struct registry *r, const struct reg_request *req,
		      enum reg_principal who, struct reg_client **out, int *resumed,
		      const char **why)
{
	int rc = reserved_name(r, req->name, who, why);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->lock);
	struct reg_client *c = client_find_locked(r, req->name);
	if (c) {
		/* An existing identity: only its token may join or resume it. */
		if (!req->has_token || CRYPTO_memcmp(req->token, c->token, CTRL_TOKEN_BYTES)) {
			*why = "client name in use (resume needs its token)";
			rc = -EBUSY;
			goto out;
		}
		c->nconn++;
		c->disconnected_ms = 0;
		idle_remove_locked(r, c);
		*resumed = 1;
		*out = c;
		goto out;
	}
	if (req->has_token) {
		*why = "unknown identity for this token (grace period over?)";
		rc = -ENOENT;
		goto out;
	}
	if ((rc = may_create_locked(r, who, why)))
		goto out;
	c = slab_zalloc(r->client_cache);
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	c->reg = r;
	c->id = r->next_client_id++;
	c->principal = who;
	strcpy(c->name, req->name);
	if (auth_random(c->token, sizeof(c->token))) {
		slab_free(r->client_cache, c);
		rc = -EIO;
		goto out;
	}
	struct reg_quota q = { .has_reservation = 1 };
	grant_locked(r, req, who, c, &q.reservation);
	rc = apply_quota_locked(r, c, &q, why);
	if (rc) {
		slab_free(r->client_cache, c);
		goto out;
	}
	c->nconn = 1;
	cds_lfht_node_init(&c->by_name);
	cds_lfht_node_init(&c->by_token);
	rcu_read_lock();
	cds_lfht_add(r->clients, hash_str(c->name), &c->by_name);
	cds_lfht_add(r->tokens, hash_token(c->token), &c->by_token);
	rcu_read_unlock();
	r->nclients++;
	r->nidents[who]++;
	*resumed = 0;
	*out = c;
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void registry_claim_ctrl(struct registry *r, struct reg_client *c, uint64_t serial)
{
	pthread_mutex_lock(&r->lock);
	if (!c->ctrl_serial)
		c->ctrl_serial = serial;
	pthread_mutex_unlock(&r->lock);
}

void registry_release_ctrl(struct registry *r, struct reg_client *c, uint64_t serial)
{
	pthread_mutex_lock(&r->lock);
	if (c->ctrl_serial == serial)
		c->ctrl_serial = 0;
	pthread_mutex_unlock(&r->lock);
}

int registry_reclaim_target(struct registry *r, const char *name, uint64_t *id,
			    uint64_t *ctrl_serial)
{
	pthread_mutex_lock(&r->lock);
	struct reg_client *c = client_find_locked(r, name);
	int rc = c && c->nconn ? 0 : -ENOENT;
	if (!rc) {
		*id = c->id;
		*ctrl_serial = c->ctrl_serial;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void registry_disconnect(struct registry *r, struct reg_client *c)
{
	pthread_mutex_lock(&r->lock);
	if (--c->nconn == 0) {
		c->disconnected_ms = registry_now_ms();
		if (r->grace_ms == 0)
			client_destroy_locked(r, c);
		else
			idle_append_locked(r, c);
	}
	pthread_mutex_unlock(&r->lock);
}

int registry_expire(struct registry *r, uint64_t now_ms)
{
	int n = 0;
	pthread_mutex_lock(&r->lock);
	/* Same grace for all, queued in disconnect order: stop at the first
	 * one still inside it. */
	struct reg_client *c;
	while ((c = r->idle_head) && now_ms - c->disconnected_ms >= r->grace_ms) {
		log_info("client '%s' did not return within %llu s: reclaiming %u extents",
			 c->name, (unsigned long long)(r->grace_ms / 1000), c->nextents);
		client_destroy_locked(r, c);
		n++;
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* --- extents ------------------------------------------------------------- */

/* A random id no extent has (0 is never one): ids say nothing about other
 * clients' extents and cannot be guessed. Ids of this call's earlier
 * extents are not in the table yet, so a repeat among them is possible
 * only at 2^-64 odds per pair; the table check covers everything else. */
static int new_extent_id_locked(struct registry *r, uint64_t *id)
{
	for (int tries = 0; tries < 8; tries++) {
		if (auth_random((uint8_t *)id, sizeof(*id)))
			return -EIO;
		if (*id == 0)
			continue;
		struct cds_lfht_iter it;
		rcu_read_lock();
		cds_lfht_lookup(r->extents, hash_u64(*id), match_id, id, &it);
		int taken = cds_lfht_iter_get_node(&it) != NULL;
		rcu_read_unlock();
		if (!taken)
			return 0;
	}
	return -EIO;
}

int registry_alloc(struct registry *r, struct reg_client *c, unsigned count, int node,
		   struct reg_extent_info *out)
{
	pthread_mutex_lock(&r->lock);
	int rc = admit_locked(r, c, (uint64_t)count * r->extent_bytes);
	unsigned done = 0;
	struct reg_extent *made[CTRL_ALLOC_MAX];
	for (; rc == 0 && done < count; done++) {
		struct reg_extent *e = slab_zalloc(r->extent_cache);
		if (!e) {
			rc = -ENOMEM;
			break;
		}
		if (pool_alloc(r->pools, node, r->extent_order, &e->block)) {
			slab_free(r->extent_cache, e);
			rc = -ENOSPC;
			break;
		}
		if ((rc = new_extent_id_locked(r, &e->id))) {
			pool_free(r->pools, &e->block);
			slab_free(r->extent_cache, e);
			break;
		}
		e->owner_id = c->id;
		e->npages = (uint32_t)(r->extent_bytes / BUDDY_FRAME_SIZE);
		e->reg = r;
		e->page_ver = &e->present[r->present_words];
		e->page_crc = (atomic_uint_least32_t *)&e->page_ver[e->npages];
		pthread_mutex_init(&e->commit_lock, NULL);
		/* A release store, not atomic_init: the extent is published through
		 * liburcu's hash table, whose barriers ThreadSanitizer cannot see;
		 * registry_extent_get's load of refs then orders every field set
		 * here before any use on another worker. */
		atomic_store_explicit(&e->refs, 1, memory_order_release);
		made[done] = e;
	}
	if (rc) {
		/* All or nothing: hand back what this call took. */
		for (unsigned i = 0; i < done; i++) {
			pool_free(r->pools, &made[i]->block);
			slab_free(r->extent_cache, made[i]);
		}
		pthread_mutex_unlock(&r->lock);
		return rc;
	}
	rcu_read_lock();
	for (unsigned i = 0; i < count; i++) {
		struct reg_extent *e = made[i];
		e->next_of_owner = c->extents;
		c->extents = e;
		c->nextents++;
		account_locked(r, c, (int64_t)r->extent_bytes);
		cds_lfht_node_init(&e->by_id);
		cds_lfht_add(r->extents, hash_u64(e->id), &e->by_id);
		out[i] = (struct reg_extent_info){ e->id, e->npages,
						   (uint32_t)r->pools->pools[e->block.pool].node };
	}
	rcu_read_unlock();
	unlock_and_tell(r, 1);
	return 0;
}

int registry_free(struct registry *r, struct reg_client *c, const uint64_t *ids, size_t n)
{
	int freed = 0;
	pthread_mutex_lock(&r->lock);
	rcu_read_lock();
	for (size_t i = 0; i < n; i++) {
		for (struct reg_extent **pp = &c->extents; *pp; pp = &(*pp)->next_of_owner) {
			if ((*pp)->id != ids[i])
				continue;
			struct reg_extent *e = *pp;
			*pp = e->next_of_owner;
			extent_release_locked(r, c, e);
			freed++;
			break;
		}
	}
	rcu_read_unlock();
	unlock_and_tell(r, freed != 0);
	return freed;
}

/* --- cluster ---------------------------------------------------------------- */

void registry_on_change(struct registry *r, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&r->lock);
	r->on_change = fn;
	r->on_change_arg = arg;
	pthread_mutex_unlock(&r->lock);
}

void registry_set_cluster_state(struct registry *r, int full, int draining)
{
	pthread_mutex_lock(&r->lock);
	r->cluster_full = full;
	r->draining = draining;
	pthread_mutex_unlock(&r->lock);
}

void registry_cluster_state(struct registry *r, int *full, int *draining)
{
	pthread_mutex_lock(&r->lock);
	*full = r->cluster_full;
	*draining = r->draining;
	pthread_mutex_unlock(&r->lock);
}

void registry_set_used_elsewhere(struct registry *r, const char *const *names,
				 const uint64_t *bytes, size_t n)
{
	pthread_mutex_lock(&r->lock);
	/* A new round: a figure from an older round reads as 0 (see
	 * elsewhere_locked), so clients not named need no visit. */
	r->elsewhere_gen++;
	struct reg_client *c;
	for (size_t i = 0; i < n; i++)
		if ((c = client_find_locked(r, names[i]))) {
			c->used_elsewhere = bytes[i];
			c->elsewhere_gen = r->elsewhere_gen;
		}
	pthread_mutex_unlock(&r->lock);
}

uint64_t registry_revoke(struct registry *r, const char *name, uint64_t bytes)
{
	uint64_t freed = 0;
	pthread_mutex_lock(&r->lock);
	struct reg_client *c = client_find_locked(r, name);
	rcu_read_lock();
	/* Newest extents first: they hold the least settled data. */
	while (c && c->extents && freed < bytes) {
		struct reg_extent *e = c->extents;
		c->extents = e->next_of_owner;
		extent_release_locked(r, c, e);
		freed += r->extent_bytes;
	}
	rcu_read_unlock();
	unlock_and_tell(r, freed != 0);
	return freed;
}

int registry_extents_of(struct registry *r, struct reg_client *c,
			struct reg_extent_info **out, size_t *n)
{
	pthread_mutex_lock(&r->lock);
	*n = 0;
	*out = calloc(c->nextents ? c->nextents : 1, sizeof(**out));
	if (!*out) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	for (struct reg_extent *e = c->extents; e; e = e->next_of_owner)
		(*out)[(*n)++] = (struct reg_extent_info){
			e->id, e->npages, (uint32_t)r->pools->pools[e->block.pool].node };
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* --- reports ------------------------------------------------------------- */

/* c's report into *s. */
static void client_stats_locked(struct registry *r, const struct reg_client *c, uint64_t now_ms,
				struct reg_client_stats *s)
{
	*s = (struct reg_client_stats){
		.client_id = c->id,
		.priority = c->priority,
		.reservation = c->reservation,
		.limit = c->limit,
		.used = c->used,
		.pinned = c->pinned_bytes,
		.extents = c->nextents,
		.connections = c->nconn,
		.pages_read = atomic_load(&c->pages_read),
		.pages_written = atomic_load(&c->pages_written),
		.last_reclaim_id = atomic_load(&c->last_reclaim_id),
		.last_reclaim_freed = atomic_load(&c->last_reclaim_freed),
	};
	memcpy(s->name, c->name, sizeof(s->name));
	if (c->nconn == 0) {
		uint64_t gone = now_ms - c->disconnected_ms;
		s->grace_left_ms = gone < r->grace_ms ? r->grace_ms - gone : 0;
	}
}

static int client_by_name(const void *a, const void *b)
{
	return strcmp((*(struct reg_client *const *)a)->name,
		      (*(struct reg_client *const *)b)->name);
}

/* The identities whose names sort after after, sorted by name, into a
 * malloc'ed array (*k of them); NULL when out of memory. One full walk. */
static struct reg_client **pick_after_locked(struct registry *r, const char *after, size_t *k)
{
	atomic_fetch_add(&r->full_walks, 1);
	struct reg_client **pick = malloc((r->nclients ? r->nclients : 1) * sizeof(*pick));
	*k = 0;
	if (!pick)
		return NULL;
	struct cds_lfht_iter it;
	struct reg_client *c;
	rcu_read_lock();
	cds_lfht_for_each_entry(r->clients, &it, c, by_name)
		if (*k < r->nclients && strcmp(c->name, after) > 0)
			pick[(*k)++] = c;
	rcu_read_unlock();
	qsort(pick, *k, sizeof(*pick), client_by_name);
	return pick;
}

struct reg_client_stats *registry_client_stats_page(struct registry *r, const char *after,
						    size_t max, size_t *n, int *more)
{
	*n = 0;
	*more = 0;
	pthread_mutex_lock(&r->lock);
	/* One walk picks the names after the cursor; only a page of them
	 * becomes reports. */
	size_t k;
	struct reg_client **pick = pick_after_locked(r, after, &k);
	size_t m = k < max ? k : max;
	struct reg_client_stats *v = pick ? calloc(m ? m : 1, sizeof(*v)) : NULL;
	if (v) {
		uint64_t now = registry_now_ms();
		for (size_t i = 0; i < m; i++)
			client_stats_locked(r, pick[i], now, &v[i]);
		*n = m;
		*more = k > max;
	}
	pthread_mutex_unlock(&r->lock);
	free(pick);
	return v;
}

struct reg_client_stats *registry_all_client_stats(struct registry *r, size_t *n)
{
	int more;
	return registry_client_stats_page(r, "", SIZE_MAX, n, &more);
}

int registry_one_client_stats(struct registry *r, const char *name, struct reg_client_stats *out)
{
	pthread_mutex_lock(&r->lock);
	struct reg_client *c = client_find_locked(r, name);
	if (c)
		client_stats_locked(r, c, registry_now_ms(), out);
	pthread_mutex_unlock(&r->lock);
	return c ? 0 : -ENOENT;
}

int registry_quota_stats(struct registry *r, const char *name, struct reg_client_stats *out)
{
	pthread_mutex_lock(&r->lock);
	struct quota_entry *q = quota_find_locked(r, name);
	if (q) {
		*out = (struct reg_client_stats){
			.priority = q->q.priority,
			.reservation = q->q.reservation,
			.limit = q->q.limit,
		};
		memcpy(out->name, q->name, sizeof(out->name));
	}
	pthread_mutex_unlock(&r->lock);
	return q ? 0 : -ENOENT;
}

void registry_totals(struct registry *r, uint64_t *used, uint64_t *reserved, unsigned *clients)
{
	pthread_mutex_lock(&r->lock);
	*used = r->used;
	*reserved = r->reserved;
	*clients = r->nclients;
	pthread_mutex_unlock(&r->lock);
}

uint64_t registry_pinned(struct registry *r)
{
	pthread_mutex_lock(&r->lock);
	uint64_t p = r->pinned;
	pthread_mutex_unlock(&r->lock);
	return p;
}

void registry_set_policy(struct registry *r, const struct reg_policy *p)
{
	pthread_mutex_lock(&r->lock);
	r->policy = *p;
	pthread_mutex_unlock(&r->lock);
}

static uint64_t gauge_pinned(void *arg)
{
	return registry_pinned(arg);
}

static uint64_t gauge_identities(void *arg)
{
	const struct ident_gauge *g = arg;
	pthread_mutex_lock(&g->r->lock);
	uint64_t n = g->r->nidents[g->who];
	pthread_mutex_unlock(&g->r->lock);
	return n;
}

int registry_metrics_register(struct registry *r, struct metrics *m)
{
	static const char *const refusal[REG_REFUSE_COUNT] = {
		"identities_per_key", "identities_total", "export_name",
	};
	static const char *const clamp[REG_CLAMP_COUNT] = { "reservation", "priority", "limit" };
	char labels[64];
	int rc = 0;
	for (int i = 0; i < REG_REFUSE_COUNT; i++) {
		snprintf(labels, sizeof(labels), "reason=\"%s\"", refusal[i]);
		rc |= metrics_add_counter(m, "spillway_register_refused_total", labels,
					  "Registrations refused by policy, by reason",
					  &r->refusals[i]);
	}
	for (int i = 0; i < REG_CLAMP_COUNT; i++) {
		snprintf(labels, sizeof(labels), "field=\"%s\"", clamp[i]);
		rc |= metrics_add_counter(m, "spillway_register_clamped_total", labels,
					  "Registrations granted less than asked, by field",
					  &r->clamps[i]);
	}
	static const char *const principal[REG_PRINCIPAL_COUNT] = { "client", "operator", "export" };
	for (int i = 0; i < REG_PRINCIPAL_COUNT; i++) {
		r->ident_gauges[i] = (struct ident_gauge){ r, (enum reg_principal)i };
		snprintf(labels, sizeof(labels), "key=\"%s\"", principal[i]);
		rc |= metrics_add_gauge(m, "spillway_identities", labels,
					"Identities (grace included) by the key that made them",
					gauge_identities, &r->ident_gauges[i]);
	}
	rc |= metrics_add_gauge(m, "spillway_pinned_bytes", "",
				"Freed extents' bytes still charged: replies not yet sent hold them",
				gauge_pinned, r);
	rc |= metrics_add_counter(m, "spillway_registry_full_walks_total", "",
				  "Walks over every identity (reports and listings only)",
				  &r->full_walks);
	return rc ? -ENOMEM : 0;
}

void registry_destroy(struct registry *r)
{
	if (!r)
		return;
	if (r->clients) {
		pthread_mutex_lock(&r->lock);
		struct cds_lfht_iter it;
		struct reg_client *c;
		rcu_read_lock();
		cds_lfht_for_each_entry(r->clients, &it, c, by_name)
			client_destroy_locked(r, c);
		rcu_read_unlock();
		pthread_mutex_unlock(&r->lock);
	}
	rcu_barrier(); /* every deferred free has run */
	if (r->clients)
		cds_lfht_destroy(r->clients, NULL);
	if (r->tokens)
		cds_lfht_destroy(r->tokens, NULL);
	if (r->extents)
		cds_lfht_destroy(r->extents, NULL);
	while (r->quotas) {
		struct quota_entry *e = r->quotas;
		r->quotas = e->next;
		free(e);
	}
	if (r->client_cache)
		slab_cache_destroy(r->client_cache);
	if (r->extent_cache)
		slab_cache_destroy(r->extent_cache);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* --- RDMA ---------------------------------------------------------------- */

struct rdma_domain *registry_rdma_domain(struct registry *r, const uint8_t *token,
					 struct ibv_context *ctx)
{
	struct rdma_domain *d = NULL;
	struct cds_lfht_iter it;
	pthread_mutex_lock(&r->lock);
	rcu_read_lock();
	cds_lfht_lookup(r->tokens, hash_token(token), match_token, token, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	struct reg_client *c = n ? caa_container_of(n, struct reg_client, by_token) : NULL;
	if (c && !c->rdma_dom && (c->rdma_dom = rdma_domain_new(ctx)))
		c->rdma_dom->claimed = 1;
	if (c && c->rdma_dom && c->rdma_dom->ctx == ctx) {
		d = c->rdma_dom;
		rdma_domain_get(d);
	}
	rcu_read_unlock();
	pthread_mutex_unlock(&r->lock);
	return d;
}

int registry_rdma_adopt(struct registry *r, struct reg_client *c, struct rdma_domain *d)
{
	pthread_mutex_lock(&r->lock);
	/* Only a connection's own fresh domain: one placed by another
	 * identity's token stays that identity's. */
	if (!c->rdma_dom && !d->claimed) {
		rdma_domain_get(d);
		d->claimed = 1;
		c->rdma_dom = d;
	}
	int same = c->rdma_dom == d;
	pthread_mutex_unlock(&r->lock);
	return same;
}

void registry_note_write_version(struct reg_client *c, uint64_t v)
{
	uint64_t seen = atomic_load_explicit(&c->wver_max, memory_order_relaxed);
	while (seen < v && !atomic_compare_exchange_weak_explicit(&c->wver_max, &seen, v,
								  memory_order_relaxed,
								  memory_order_relaxed))
		;
}

int registry_rdma_key(struct registry *r, struct reg_client *c, struct reg_extent *e,
		      struct rdma_domain *d, uint64_t *addr, uint32_t *rkey)
{
	int rc = 0;
	pthread_mutex_lock(&r->lock);
	if (e->owner_id != c->id || e->unlinked) {
		rc = -ENOENT; /* not c's and gone look the same */
	} else if (c->rdma_dom != d) {
		rc = -EACCES;
	} else if (!e->mr) {
		size_t len = (size_t)e->npages * SPILL_PAGE_SIZE;
		/* From now on the server no longer sees writes: pages never
		 * written are zeroed, so no byte of a former owner can be read,
		 * and every page counts as present. Under the commit lock: a
		 * WRITE being committed to a page not yet present must not be
		 * zeroed after its bytes went in (lock order: registry, then
		 * commit). */
		pthread_mutex_lock(&e->commit_lock);
		for (uint32_t p = 0; p < e->npages; p++)
			if (!((atomic_load(&e->present[p / 64]) >> (p % 64)) & 1))
				memset(e->block.mem + (size_t)p * SPILL_PAGE_SIZE, 0, SPILL_PAGE_SIZE);
		pthread_mutex_unlock(&e->commit_lock);
		e->mr = ibv_reg_mr(d->pd, e->block.mem, len,
				   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
					   IBV_ACCESS_REMOTE_WRITE);
		if (!e->mr)
			rc = -errno;
		else
			atomic_store(&e->onesided, 1);
	}
	if (!rc) {
		*addr = (uint64_t)(uintptr_t)e->block.mem;
		*rkey = e->mr->rkey;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}
