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
 * Accounting: an extent's bytes stay charged to its owner (its use, its
 * limit, the pool's use) from allocation until its block is back in the
 * pool. A freed extent still referenced (a zero-copy READ reply its client
 * does not read) is "pinned": charged, but no longer the owner's to use. If
 * the owner goes first, the charge stays on the pool as orphaned pinned bytes.
 * So reservations plus everything lent beyond them always fit the pool.
 *
 * Policy (struct reg_policy): what a session may grant itself at Register,
 * and how many identities each principal (the key a session proved) may hold.
 *
 * Cost: nothing on Register, disconnect, expiry or an arbiter's budgets walks
 * all identities; only the reports (all_client_stats, stats_page) do, and
 * they count it in full_walks.
 *
 * Functions take the mutex themselves unless their name ends in _locked.
 *
 * Protocol: none. Requests and reports are the plain structs below
 * (struct reg_request, struct reg_client_stats); server/wire/wire_registry.c
 * converts them to and from control messages at the edge.
 */
#ifndef SPILLWAY_REGISTRY_H
#define SPILLWAY_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <urcu.h>
#include <urcu/rculfhash.h>

#include "ctrl_limits.h"
#include "pool.h"

/* Who is registering: the key its session proved. Each principal has its
 * own identity count; exports are the server's own and bypass the policy. */
enum reg_principal {
	REG_PRINCIPAL_CLIENT,    /* the client key (or no key, not operator) */
	REG_PRINCIPAL_OPERATOR,  /* an operator session */
	REG_PRINCIPAL_EXPORT,    /* nbd_export.c: the only one that owns nbd:* */
	REG_PRINCIPAL_COUNT
};

/* Names that only REG_PRINCIPAL_EXPORT may register. */
#define REG_EXPORT_PREFIX "nbd:"

struct reg_client {
	struct cds_lfht_node by_name;
	struct cds_lfht_node by_token;
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
	/* The newest write version any of its writes carried, counted when
	 * the frame's header arrives, so one still being received counts too
	 * (RegisterReply tells a resuming client, whose clock must start
	 * above it). */
	atomic_uint_fast64_t wver_max;
	/* Of --frame-buffer-max, the bytes its connections' payload buffers
	 * hold now (net/admission.c caps it at --frame-buffer-per-client). */
	atomic_uint_fast64_t frame_buffer_bytes;
	/* The connection Reclaim goes to: the first one of the identity still
	 * open (0: none known). Under the registry mutex. */
	uint64_t ctrl_serial;
	atomic_uint_fast64_t last_reclaim_id, last_reclaim_freed;
	/* RDMA: the protection domain of its connections and extents (NULL
	 * until an RDMA connection registers). Under the registry mutex. */
	struct rdma_domain *rdma_dom;
	struct registry *reg;
	struct rcu_head rcu;
	/* Policy and accounting, all under the registry mutex. */
	enum reg_principal principal;
	uint64_t pinned_bytes;      /* freed extents still referenced (in used) */
	struct reg_extent *pinned;  /* list through reg_extent.pin_next */
	uint64_t elsewhere_gen;     /* used_elsewhere counts if equal to the registry's */
	/* In the registry's idle queue (oldest disconnect first) while nconn is 0. */
	struct reg_client *idle_next, **idle_pprev;
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
	/* Freed while referenced: charged to pin_owner (NULL: the owner is gone,
	 * charged to the pool) until the last reference drops. Under the mutex. */
	struct reg_client *pin_owner;
	struct reg_extent *pin_next, **pin_pprev;
	/* crc32c_raw(0, page) of each page as its owner wrote it (valid while
	 * present): READ replies are checksummed from these, so a client checks
	 * its bytes against what it wrote, not against what memory holds now. */
	atomic_uint_least32_t *page_crc;
	/* The write version each page was last written or invalidated with
	 * (0: never). Changed only under commit_lock. */
	atomic_uint_fast64_t *page_ver;
	/* Serialises WRITE and INVALIDATE of this extent (dataplane_commit), so
	 * two connections' writes never interleave inside a page. */
	pthread_mutex_t commit_lock;
	/* Bit i set: page i holds data written by its owner. */
	atomic_uint_fast64_t present[];
};

struct reg_quota {
	int has_priority, has_reservation, has_limit;
	int priority;
	uint64_t reservation, limit;
};

/*
 * What a session that is not an operator may grant itself at Register,
 * where no operator quota for the name says otherwise: a reservation up to
 * default_reservation, a priority no lower than default_priority, a limit
 * no higher than default_limit (0: none). Operator quotas win; operator
 * sessions and exports get what they ask. Identities per principal and in
 * total are capped (0: no cap); identities in their grace period count.
 */
struct reg_policy {
	uint64_t default_reservation;
	int default_priority;
	uint64_t default_limit;
	unsigned max_identities;
	unsigned max_identities_per_key;
};

/* Counters for /metrics (registry_metrics_register). */
enum reg_refusal {
	REG_REFUSE_PER_KEY,      /* identities of one key at its cap */
	REG_REFUSE_TOTAL,        /* identities at the server's cap */
	REG_REFUSE_EXPORT_NAME,  /* nbd:* from a session */
	REG_REFUSE_COUNT
};
enum reg_clamp { REG_CLAMP_RESERVATION, REG_CLAMP_PRIORITY, REG_CLAMP_LIMIT, REG_CLAMP_COUNT };

struct registry;

/* extent_bytes: a power-of-two multiple of 4 KiB. grace_ms: how long a
 * disconnected identity keeps its pages. */
struct registry *registry_create(struct pool_set *pools, uint64_t extent_bytes,
				 uint64_t grace_ms);
void registry_destroy(struct registry *r);
/* Set once, before serving. */
void registry_set_policy(struct registry *r, const struct reg_policy *p);
struct metrics;
/* Identities, pinned bytes, refusals and clamps by reason, full walks. */
int registry_metrics_register(struct registry *r, struct metrics *m);

/* What a session asks for at Register (a new identity), or the identity it
 * resumes or joins (has_token: token is that identity's). name is 1 to
 * CTRL_NAME_MAX bytes; the control codec has checked what it holds. */
struct reg_request {
	char name[CTRL_NAME_MAX + 1];
	int priority;
	uint64_t reservation;
	uint64_t limit;            /* 0: none */
	int has_token;
	uint8_t token[CTRL_TOKEN_BYTES];
};

/* Register on a connection (new identity, or resume/join with its token).
 * A new identity gets what req asks within the policy for who (see struct
 * reg_policy); the granted values are in (*out)'s fields.
 * -EBUSY: name taken and token absent or wrong; -ENOSPC: reservation does not
 * fit; -ENOENT: a token for an identity that no longer exists; -EDQUOT: too
 * many identities (for who's key, or in all); -EPERM: an nbd:* name from
 * a session. why gets a message for the client. */
int registry_register(struct registry *r, const struct reg_request *req,
		      enum reg_principal who, struct reg_client **out, int *resumed,
		      const char **why);
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

/* A WRITE or INVALIDATE of c with version v has begun to arrive: raise c's
 * newest version (RegisterReply.write_version) to v. Lock-free. */
void registry_note_write_version(struct reg_client *c, uint64_t v);

/* Data path: a referenced extent, or NULL. Call under rcu_read_lock.
 * registry_extent_put: the last reference of a freed extent uncharges it,
 * taking the registry mutex; never call it with that mutex held. */
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
 * pages its owner never wrote first; addr and rkey out. 0, -ENOENT (not
 * c's, or freed meanwhile: the same answer), -EACCES (d is not c's domain),
 * -errno.
 */
struct ibv_context;
struct rdma_domain;
struct rdma_domain *registry_rdma_domain(struct registry *r, const uint8_t *token,
					 struct ibv_context *ctx);
int registry_rdma_adopt(struct registry *r, struct reg_client *c, struct rdma_domain *d);
int registry_rdma_key(struct registry *r, struct reg_client *c, struct reg_extent *e,
		      struct rdma_domain *d, uint64_t *addr, uint32_t *rkey);

/* Reports: one identity as its owner and the operator see it, a snapshot
 * taken under the mutex. */
struct reg_client_stats {
	char name[CTRL_NAME_MAX + 1];
	uint64_t client_id;
	int priority;
	uint64_t reservation;
	uint64_t limit;              /* 0: none */
	uint64_t used;
	uint64_t pinned;             /* of used: freed extents still referenced */
	uint32_t extents;
	uint32_t connections;
	uint64_t grace_left_ms;      /* >0 while disconnected, until reclaimed */
	uint64_t pages_read, pages_written;
	uint64_t last_reclaim_id;    /* the last ReclaimReply it sent */
	uint64_t last_reclaim_freed;
};

/* Every identity, sorted by name, in one array (free() it); *n set. NULL
 * with *n = 0 when out of memory. */
struct reg_client_stats *registry_all_client_stats(struct registry *r, size_t *n);
/* At most max identities whose names sort after after ("" : from the start),
 * sorted by name, in one array (free() it); *more set when others follow.
 * NULL when out of memory. */
struct reg_client_stats *registry_client_stats_page(struct registry *r, const char *after,
						    size_t max, size_t *n, int *more);
/* One identity by name into *out: 0, or -ENOENT. */
int registry_one_client_stats(struct registry *r, const char *name, struct reg_client_stats *out);
/* The operator quota stored for a name with no identity yet, into *out
 * (name, priority, reservation, limit; unset quota fields and the rest read
 * 0): 0, or -ENOENT. */
int registry_quota_stats(struct registry *r, const char *name, struct reg_client_stats *out);
void registry_totals(struct registry *r, uint64_t *used, uint64_t *reserved,
		     unsigned *clients);
/* Bytes of freed extents whose blocks are not back in the pool (in used). */
uint64_t registry_pinned(struct registry *r);

uint64_t registry_now_ms(void);

#endif
