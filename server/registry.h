/* SPDX-License-Identifier: MIT */
/*
 * Client identities, their extents, quotas and accounting.
 *
 * Both tables are liburcu lock-free hash tables: the data path looks extents
 * up under rcu_read_lock() and takes no lock. Every change (register,
 * allocate, free, quota, grace expiry) happens under the registry mutex,
 * which is only ever taken by control-plane work.
 *
 * Lifetimes: an extent holds one reference for the table; the data path takes
 * another while it copies. The pool block is returned when the last reference
 * goes, the struct itself after an RCU grace period (a reader may still be
 * looking at its refcount). A client lives while it has connections, then
 * for the grace period; after that its extents are reclaimed.
 *
 * Functions take the mutex themselves unless their name ends in _locked.
 */
#ifndef SPILLWAY_REGISTRY_H
#define SPILLWAY_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include <urcu.h>
#include <urcu/rculfhash.h>

#include "ctrl.h"
#include "pool.h"

struct reg_client {
	struct cds_lfht_node by_name;
	uint64_t id;
	char name[CTRL_NAME_MAX + 1];
	uint8_t token[CTRL_TOKEN_BYTES];
	int priority;
	uint64_t reservation;
	uint64_t limit;            /* 0: none */
	uint64_t used;             /* bytes in extents; under the mutex */
	uint64_t used_elsewhere;   /* on the cluster's other servers (arbiter); mutex */
	unsigned nextents;
	unsigned nconn;
	uint64_t disconnected_ms;  /* monotonic ms of the last disconnect */
	struct reg_extent *extents; /* list through reg_extent.next_of_owner */
	atomic_uint_fast64_t pages_read, pages_written;
	/* The connection Reclaim goes to: the first one of the identity still
	 * open (0: none known). Under the registry mutex. */
	uint64_t ctrl_serial;
	atomic_uint_fast64_t last_reclaim_id, last_reclaim_freed;
	/* RDMA: the protection domain of its connections and extents (NULL
	 * until an RDMA connection registers). Under the registry mutex. */
	struct rdma_domain *rdma_dom;
	struct registry *reg;
	struct rcu_head rcu;
};

struct reg_extent {
	struct cds_lfht_node by_id;
	uint64_t id;
	uint64_t owner_id;
	uint32_t npages;
	atomic_int refs;
	struct pool_block block;
	struct reg_extent *next_of_owner;
	struct registry *reg;
	/* RDMA: the memory region its owner reaches it through (NULL: none);
	 * unlinked once freed, so no region is registered after that. Both
	 * under the registry mutex. onesided: pages may have changed without
	 * the server seeing it, so frame READs checksum memory as it is. */
	struct ibv_mr *mr;
	int unlinked;
	atomic_int onesided;
	struct rcu_head rcu;
	/* crc32c_raw(0, page) of each page as its owner wrote it (valid while
	 * present): READ replies are checksummed from these, so a client checks
	 * its bytes against what it wrote, not against what memory holds now. */
	atomic_uint_least32_t *page_crc;
	/* Bit i set: page i holds data written by its owner. */
	atomic_uint_fast64_t present[];
};

struct reg_quota {
	int has_priority, has_reservation, has_limit;
	int priority;
	uint64_t reservation, limit;
};

struct registry;

/* extent_bytes: a power-of-two multiple of 4 KiB. grace_ms: how long a
 * disconnected identity keeps its pages. */
struct registry *registry_create(struct pool_set *pools, uint64_t extent_bytes,
				 uint64_t grace_ms);
void registry_destroy(struct registry *r);

/* Register on a connection (new identity, or resume/join with its token).
 * -EBUSY: name taken and token absent or wrong; -ENOSPC: reservation does not
 * fit; -ENOENT: a token for an identity that no longer exists. why gets a
 * message for the client. */
int registry_register(struct registry *r, const Spillway__Register *req,
		      struct reg_client **out, int *resumed, const char **why);
/* A connection of c closed. */
/* Offer connection serial as c's control connection (kept if one is set). */
void registry_claim_ctrl(struct registry *r, struct reg_client *c, uint64_t serial);
void registry_release_ctrl(struct registry *r, struct reg_client *c, uint64_t serial);
/* Look a connected identity up: its id and control connection. 0 or -ENOENT. */
int registry_reclaim_target(struct registry *r, const char *name, uint64_t *id,
			    uint64_t *ctrl_serial);
void registry_disconnect(struct registry *r, struct reg_client *c);
/* Reclaim identities whose grace has run out; returns how many. */
int registry_expire(struct registry *r, uint64_t now_ms);

/* Allocate count extents for c. -EDQUOT over its limit, -ENOSPC when the
 * pool, or its unreserved part, cannot hold them. Nothing is allocated on
 * failure. out gets count entries. */
struct reg_extent_info {
	uint64_t id;
	uint32_t npages;
	uint32_t node;
};
int registry_alloc(struct registry *r, struct reg_client *c, unsigned count, int node,
		   struct reg_extent_info *out);
/* Free extents c owns; ids it does not own are skipped. Returns the number freed. */
int registry_free(struct registry *r, struct reg_client *c, const uint64_t *ids, size_t n);

/*
 * Cluster (cluster.c). registry_set_cluster_state: with full, growth beyond
 * a client's reservation is refused (-ENOSPC); draining refuses every
 * allocation (-ENOSPC). registry_set_used_elsewhere: each named client's
 * bytes on the other servers, counted against its limit and reservation
 * (clients not named: 0). registry_revoke: free at least bytes of name's
 * extents now, newest first; returns the bytes freed. registry_on_change:
 * fn runs after every allocation or free that succeeded, outside the lock.
 */
void registry_set_cluster_state(struct registry *r, int full, int draining);
void registry_cluster_state(struct registry *r, int *full, int *draining);
void registry_set_used_elsewhere(struct registry *r, const char *const *names,
				 const uint64_t *bytes, size_t n);
uint64_t registry_revoke(struct registry *r, const char *name, uint64_t bytes);
void registry_on_change(struct registry *r, void (*fn)(void *), void *arg);

/* The extents c owns (malloc'ed array in *out, count in *n). 0 or -ENOMEM. */
int registry_extents_of(struct registry *r, struct reg_client *c,
			struct reg_extent_info **out, size_t *n);

/* Data path: a referenced extent, or NULL. Call under rcu_read_lock. */
struct reg_extent *registry_extent_get(struct registry *r, uint64_t id);
void registry_extent_put(struct reg_extent *e);
/* Another reference to an extent the caller already holds one to. */
void registry_extent_hold(struct reg_extent *e);

/* Quotas from the operator (spillctl client set, config file). Applies to a
 * live identity at once and to one registering later. */
int registry_set_quota(struct registry *r, const char *name, const struct reg_quota *q,
		       const char **why);
/* Replace all configured quotas (SIGHUP). Entries are name/quota pairs. */
int registry_load_quotas(struct registry *r, char **names, const struct reg_quota *q, size_t n);

/*
 * RDMA. registry_rdma_domain: a reference to the domain of the identity
 * whose token this is, made on ctx if it has none yet; NULL when no live
 * identity has that token or its domain is on another device.
 * registry_rdma_adopt: connection domain d registered as c; c adopts d if it
 * has none and no identity has claimed d. Returns 1 when the connection
 * shares c's domain (one-sided access possible), else 0.
 * registry_rdma_key: register e (owned by c) in c's domain d, once, zeroing
 * pages its owner never wrote first; addr and rkey out. 0, -EACCES (not
 * c's, or d is not c's domain), -ENOENT (freed meanwhile), -errno.
 */
struct ibv_context;
struct rdma_domain;
struct rdma_domain *registry_rdma_domain(struct registry *r, const uint8_t *token,
					 struct ibv_context *ctx);
int registry_rdma_adopt(struct registry *r, struct reg_client *c, struct rdma_domain *d);
int registry_rdma_key(struct registry *r, struct reg_client *c, struct reg_extent *e,
		      struct rdma_domain *d, uint64_t *addr, uint32_t *rkey);

/* Reports. Fill protobuf messages; free with registry_free_client_stats. */
Spillway__ClientStats *registry_client_stats_locked(struct registry *r, const struct reg_client *c,
						    uint64_t now_ms);
void registry_free_client_stats(Spillway__ClientStats *s);
/* Every identity, sorted by name; *n set. Caller frees each and the array. */
Spillway__ClientStats **registry_all_client_stats(struct registry *r, size_t *n);
Spillway__ClientStats *registry_one_client_stats(struct registry *r, const char *name);
/* The operator quota stored for a name with no identity yet (unset fields
 * read 0), or NULL. */
Spillway__ClientStats *registry_quota_stats(struct registry *r, const char *name);
void registry_totals(struct registry *r, uint64_t *used, uint64_t *reserved,
		     unsigned *clients);

uint64_t registry_now_ms(void);

#endif
