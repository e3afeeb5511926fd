/* SPDX-License-Identifier: MIT */
/*
 * libspillway internals: the context, regions, the page-location table and
 * the pieces that share them. See docs/libspillway.md for the design.
 *
 * Global page numbers (gpn): every far page of every region has one, from a
 * single 32-bit space; a region takes a 512-aligned range, so a 2 MiB group
 * of a region is one "chunk" (gpn >> 9) and maps to one extent per replica.
 * Tables indexed by gpn or chunk are reserved address space (MAP_NORESERVE),
 * so memory is only spent on the part in use.
 */
#ifndef SPILL_PAGER_H
#define SPILL_PAGER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "client.h"
#include "spillway.h"

#define PG_SIZE        4096u
#define PG_SHIFT       12
#define CHUNK_PAGES    512u          /* one 2 MiB group = one extent */
#define CHUNK_SHIFT    9
#define CHUNK_BYTES    ((size_t)CHUNK_PAGES * PG_SIZE)
#define MAX_GPN_BITS   32            /* 16 TiB of far memory per context */
#define MAX_REPLICAS   4
#define MAX_REGIONS    4096
#define CONNS_PER_SERVER 6           /* 0: control, 1: evictor, 2..: faults */
#define CONN_CTRL      0
#define CONN_EVICT     1
#define CONN_FAULT0    2

/* The page state word (pte), one per far page: states and transitions in
 * page_state.h. The low 32 bits are the futex word a thread sleeps on while
 * another moves the page. */
#include "page_state.h"

/* Where a chunk's copies live: one (server, extent) per replica. Written
 * under the chunk's lock; read without it through chunk_snapshot(), a
 * seqlock, so a reader never pairs one replica's server with another's
 * extent. */
struct chunk_loc {
	atomic_uint seq;                        /* odd while being changed */
	atomic_uchar nrep;                      /* replicas allocated */
	atomic_uchar degraded;                  /* a replica missed a write:
						 * repair copies it (copies.c) */
	atomic_uchar srv[MAX_REPLICAS];
	atomic_uint_fast64_t ext[MAX_REPLICAS]; /* 0: not allocated */
};

struct loc_snap {
	int nrep;
	uint8_t srv[MAX_REPLICAS];
	uint64_t ext[MAX_REPLICAS];
};

struct region {
	uint8_t *base;
	size_t npages;
	uint32_t gpn0;            /* first global page number */
	int advice;               /* enum spill_advice for the whole region */
	int live;
};

struct server;

struct server_conn {
	pthread_mutex_t lock;
	struct client *c;
	atomic_int want_repair;   /* a signal handler asks the service thread */
};

struct server {
	char url[256];
	struct server_conn conn[CONNS_PER_SERVER];
	atomic_int up;
	atomic_int failed_err;            /* why it went down (-errno) */
	atomic_int failure_logged;
	atomic_uint_fast64_t free_bytes;  /* last known, for placement */
	atomic_int draining;              /* it sent Drain: no new copies, move off */
	atomic_int drain_stuck_logged;    /* "nowhere to move" said once per drain */
	atomic_uint_fast64_t refused_until; /* mono_ms(): ALLOC refused (full,
					     * over quota); placement skips it */
	atomic_uint_fast64_t reopen_at;   /* mono_ms(): down, try it again then */
	unsigned reopen_wait;             /* ms between tries (service thread) */
	uint64_t extent_bytes;
	uint8_t token[32];
	int index;
};

/* The recent-fault history the prefetcher votes over. */
#define PREFETCH_HISTORY 8
struct prefetch {
	pthread_mutex_t lock;
	int64_t last[PREFETCH_HISTORY]; /* gpn of recent faults, newest at pos-1 */
	unsigned pos, count;
	int64_t stride;                  /* trend that the window follows      */
	unsigned window;                 /* pages fetched ahead next time      */
	int64_t next_expected;           /* first gpn past the last window     */
};

/* A FIFO of pages (the active or inactive list), linked through
 * spill_ctx.lru_next: a page is on at most one list. */
#define LRU_NONE 0xffffffffu
struct lru_list {
	uint32_t head, tail;      /* head: oldest */
	uint64_t count;
};

struct spill_ctx {
	struct spill_config cfg;
	char namebuf[80];
	char *urls[SPILL_MAX_SERVERS];
	struct auth_psk *psk;
	/* Write versions for every connection to every server (lib/client.h,
	 * write_clock): a page's late write never undoes a newer one. */
	_Atomic uint64_t write_clock;
	int uffd;
	int mode;                 /* SPILL_FAULT_INTHREAD or _HANDLER */
	int has_poison;
	int has_write_hint;       /* SIGBUS context tells writes from reads */

	/* Page-location table and friends (see top comment). */
	_Atomic uint64_t *pte;
	_Atomic uint16_t *cur;    /* by gpn: copies holding the last written
				   * bytes, bit s for server s (copies.c) */
	struct chunk_loc *chunks;
	struct region **chunk_region; /* chunk -> region, for list entries */

	/* Regions, sorted by base address. */
	pthread_rwlock_t regions_lock;
	struct region *regions[MAX_REGIONS];
	int nregions;
	atomic_uint free_pending; /* futex: frees waiting for the write lock */
	uint32_t gpn_next;        /* bump allocator for gpn ranges */
	struct gpn_hole { uint32_t gpn, n; } holes[MAX_REGIONS];
	int nholes;

	/* Residency and the lists. */
	pthread_mutex_t lru_lock;
	struct lru_list active, inactive;
	uint32_t *lru_next;       /* by gpn; reserved like pte */
	atomic_uint_fast64_t resident;     /* pages */
	atomic_uint_fast64_t budget;       /* pages */
	atomic_uint evict_gen;             /* futex: bumped per eviction pass */
	atomic_uint evict_kick;            /* futex: evictor sleeps on it */
	atomic_int evict_stuck;            /* last pass freed nothing */
	atomic_uint_fast64_t room_wanted;  /* pages a waiting fault needs free */
	pthread_t evictor;

	/* Servers. */
	struct server servers[SPILL_MAX_SERVERS];
	int nservers;             /* configured, then discovered; fixed once open */
	int replicas;
	int discover;             /* learn the cluster's other servers at open */
	atomic_uint conn_rr;
	pthread_mutex_t chunk_locks[256];  /* writers of a chunk's copies */

	/* Service thread: reclaim requests, stats refresh, replica repair,
	 * moving copies off draining servers. */
	pthread_t service;
	atomic_int repair_needed;
	atomic_int drain_needed;      /* a server drains: move copies off it */
	atomic_uint conn_repair_gen;  /* futex: bumped when conns are repaired */
	spill_reclaim_fn reclaim_fn;
	void *reclaim_arg;
	pthread_mutex_t reclaim_lock;

	/* Handler threads (SPILL_FAULT_HANDLER). */
	pthread_t handlers[4];
	int nhandlers;
	int stop_fd;              /* eventfd: set once, at close          */
	int wake_fd;              /* eventfd: wakes the service thread    */
	uint8_t *repair_buf;      /* CHUNK_BYTES, service thread only     */
	struct pending_reclaim {
		int server;
		uint64_t id, bytes;
	} reclaim_q[16];
	int reclaim_n;            /* under reclaim_lock */
	atomic_int stopping;

	struct prefetch pf;

	/* Groups to fetch ahead (fetch_ahead.c). */
#define AHEAD_QUEUE 8
	pthread_mutex_t ahead_lock;
	uint32_t ahead_q[AHEAD_QUEUE];
	unsigned ahead_n;
	atomic_uint ahead_kick;
	pthread_t ahead_thread;

	/* Staging for multi-page fetches (2 MiB each) and a zero source. */
#define NBOUNCE 8
	uint8_t *bounce;
	atomic_uint bounce_free;  /* bit i set: bounce buffer i is free */
	uint8_t *zeros;           /* CHUNK_BYTES of zeros, never written */

	/* Counters for spill_stats. */
	struct {
		atomic_uint_fast64_t faults, wp_faults, remote_reads, remote_writes,
			evictions, clean_drops, zero_fills, prefetched, prefetch_hits,
			group_fetches, failovers, rereplicated, lost_pages, reclaims,
			reclaimed_bytes, remote_pages, region_pages, copies_missed,
			repaired;
		atomic_int_fast64_t degraded_groups;
	} st;
};

/* The one context whose regions the fault handlers and wrappers serve. */
extern spill_ctx *_Atomic spill_active_ctx;
/* Set while this thread serves a fault inside the SIGBUS handler: nothing
 * that may allocate or take stdio locks runs then. */
extern __thread int spill_in_signal;

/* Set while a thread runs library code: the system-call wrappers then go
 * straight to the kernel (the library never passes far buffers it has not
 * claimed itself, and may hold locks the wrappers would take). */
extern __thread int spill_in_library;
#define LIB_ENTER() int lib_saved_ = spill_in_library; spill_in_library = 1
#define LIB_LEAVE() (spill_in_library = lib_saved_)

/* munmap without going through our own wrapper (syscall_wrap.c). */
int sys_munmap(void *addr, size_t len);

static inline uint64_t pte_load(spill_ctx *x, uint32_t gpn)
{
	return atomic_load_explicit(&x->pte[gpn], memory_order_acquire);
}

static inline struct chunk_loc *chunk_of(spill_ctx *x, uint32_t gpn)
{
	return &x->chunks[gpn >> CHUNK_SHIFT];
}

static inline void chunk_snapshot(spill_ctx *x, uint32_t chunk, struct loc_snap *o)
{
	struct chunk_loc *l = &x->chunks[chunk];
	for (;;) {
		unsigned s1 = atomic_load_explicit(&l->seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		/* Acquire loads: the second look at seq cannot move before them
		 * (no fences: GCC's TSan does not support them). */
		o->nrep = atomic_load_explicit(&l->nrep, memory_order_acquire);
		for (int i = 0; i < MAX_REPLICAS; i++) {
			o->srv[i] = atomic_load_explicit(&l->srv[i], memory_order_acquire);
			o->ext[i] = atomic_load_explicit(&l->ext[i], memory_order_acquire);
		}
		if (atomic_load_explicit(&l->seq, memory_order_acquire) == s1)
			return;
	}
}

/* Bracket every change of a chunk_loc (its lock held). */
static inline void loc_write_begin(struct chunk_loc *l)
{
	/* acq_rel: the changes that follow cannot move before it. */
	atomic_fetch_add_explicit(&l->seq, 1, memory_order_acq_rel);
}

static inline void loc_write_end(struct chunk_loc *l)
{
	atomic_fetch_add_explicit(&l->seq, 1, memory_order_release);
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static inline uint8_t *page_addr(const struct region *r, uint32_t gpn)
{
	return r->base + (size_t)(gpn - r->gpn0) * PG_SIZE;
}

/*
 * Taking regions_lock for reading where a fault or a call begins. The lock
 * prefers readers (the evictor must get in while faults that wait for it
 * hold the lock), so with faults arriving all the time spill_free could wait
 * for ever: new readers first let a pending free through.
 */
void regions_enter(spill_ctx *x);
static inline void regions_leave(spill_ctx *x)
{
	pthread_rwlock_unlock(&x->regions_lock);
}

/* region.c */
int region_tables_init(spill_ctx *x);
void region_tables_fini(spill_ctx *x);
/* With regions_lock held (read): the region containing addr, or NULL. */
struct region *region_find(spill_ctx *x, const void *addr);
void *region_alloc(spill_ctx *x, size_t bytes);
int region_free(spill_ctx *x, void *base);
size_t region_metadata_bytes(spill_ctx *x);

/* pte.c: state transitions shared by every path. */
/* Set BUSY if the page is not busy; returns the word before, or 0 with
 * *busy = 1 when someone else holds it. */
int pte_try_claim(spill_ctx *x, uint32_t gpn, uint64_t *old);
/* Replace the word (BUSY cleared by the caller's new value) and wake. */
void pte_release(spill_ctx *x, uint32_t gpn, uint64_t new_word);
/* Sleep until BUSY is clear. */
void pte_wait(spill_ctx *x, uint32_t gpn);

/* uffd_ops.c: thin wrappers; 0 or -errno. */
int uffd_copy(spill_ctx *x, void *dst, const void *src, size_t len, int wp);
int uffd_wp(spill_ctx *x, void *addr, size_t len, int on);
int uffd_wake(spill_ctx *x, void *addr, size_t len);
int uffd_poison(spill_ctx *x, void *addr, size_t len);
int uffd_open(spill_ctx *x);

/* fault.c: resolve a fault at addr (in region r, regions_lock held for
 * reading). write: the access was a write. Returns 0 when the access can be
 * retried, -EFAULT when the page is lost (caller raises SIGBUS). */
enum { FAULT_WRITE = 1, FAULT_WP = 2, FAULT_MISSING = 4 };
int fault_resolve(spill_ctx *x, struct region *r, void *addr, int flags);
/* Make [addr, addr+len) resident (writable if write) and pin it against
 * eviction; fault_unpin undoes. For system calls on far buffers. */
int fault_pin(spill_ctx *x, void *addr, size_t len, int write);
void fault_unpin(spill_ctx *x, void *addr, size_t len);
/* Fetch a range now (SPILL_WILLNEED). */
void fault_willneed(spill_ctx *x, struct region *r, uint32_t gpn, uint32_t n);
/* Fetch the 2 MiB group starting at (or, for its tail, containing) first.
 * 0, or -EBUSY when no staging buffer is free. */
int fault_fetch_group(spill_ctx *x, struct region *r, uint32_t first);

/* fetch_ahead.c: a sequential stream's next groups, fetched by a library
 * thread while the program works through the current one. */
int ahead_start(spill_ctx *x);
void ahead_stop(spill_ctx *x);
/* After a group fetch at gpn: queue the groups that follow it. */
void ahead_request(spill_ctx *x, struct region *r, uint32_t gpn);

/* fault_sigbus.c, fault_handler.c: the two ways faults reach fault_resolve. */
int fault_sigbus_install(spill_ctx *x);
void fault_sigbus_remove(spill_ctx *x);
int fault_handlers_start(spill_ctx *x);
void fault_handlers_stop(spill_ctx *x);

/* prefetch.c: record a fault at gpn and plan what to fetch with it. */
#define PREFETCH_MAX 64
struct pf_plan {
	uint32_t gpn[PREFETCH_MAX]; /* pages worth fetching ahead, in order */
	int n;
	int group;                  /* fetch gpn's whole 2 MiB group instead */
};
void prefetch_plan(spill_ctx *x, struct region *r, uint32_t gpn, struct pf_plan *plan);
void prefetch_init(spill_ctx *x);

/* lru.c */
int lru_init(spill_ctx *x);
void lru_fini(spill_ctx *x);
void lru_insert(spill_ctx *x, uint32_t gpn);
/* Up to max victims, oldest first, second chance applied; BUSY claimed. */
int lru_pick_victims(spill_ctx *x, uint32_t *out, int max);
/* Put back a page that could not be evicted. */
void lru_putback(spill_ctx *x, uint32_t gpn);
void lru_forget_range(spill_ctx *x, uint32_t gpn0, uint32_t n);

/* evict.c */
int evictor_start(spill_ctx *x);
void evictor_stop(spill_ctx *x);
void evictor_kick(spill_ctx *x);
/* Block until resident pages are under the budget (or eviction is stuck). */
void evictor_wait_room(spill_ctx *x, unsigned pages);
/* Write back and drop these claimed pages (BUSY held). Returns pages freed. */
int evict_pages(spill_ctx *x, uint32_t *gpns, int n);

/* servers.c */
/* Connect the configured servers (every one must answer), then, unless
 * x->discover is 0, the cluster's other servers that the first one lists
 * (those that fail are skipped). */
int servers_open(spill_ctx *x, char *err, size_t cap);
void servers_close(spill_ctx *x);
/* Lock a connection of server s for this kind of use. */
struct server_conn *server_conn_get(spill_ctx *x, int s, int kind);
void server_conn_put(struct server_conn *sc);
/* Replace a broken connection (sc locked): 0 when it reconnected. From a
 * signal handler the service thread does it (sc unlocked meanwhile). */
int server_conn_repair(spill_ctx *x, int s, struct server_conn *sc);
/* Service thread: reconnect what signal handlers asked for; log failures. */
void servers_service(spill_ctx *x);
/* Mark a server down after an I/O failure (starts repair). */
void server_failed(spill_ctx *x, int s, int err);
/* A server that is down is tried again REOPEN_FIRST_MS after it failed,
 * then at doubling intervals up to REOPEN_MAX_MS (service.c). */
#define REOPEN_FIRST_MS 250u
#define REOPEN_MAX_MS   5000u
/* Service thread, server s down: reconnect every connection of it, as our
 * identity if it still knows it, else as a new registration (it restarted
 * empty). s stays down meanwhile, so no other thread uses its connections.
 * *kept: the ids of the extents it kept for us (malloc'ed, *nkept of them;
 * NULL when it registered us anew). 0 or -errno (err says why). */
int server_reopen(spill_ctx *x, int s, uint64_t **kept, size_t *nkept, char *err, size_t cap);
int servers_up(spill_ctx *x);
/* Give chunk c its replicas (extents), if missing. 0 or -errno.
 * _locked: the caller holds chunk_lock(chunk). */
int placement_ensure(spill_ctx *x, uint32_t chunk);
int placement_ensure_locked(spill_ctx *x, uint32_t chunk);
pthread_mutex_t *chunk_lock(spill_ctx *x, uint32_t chunk);
/* Drop a chunk's copies on dead servers from its list. Lock held. */
void placement_prune(spill_ctx *x, uint32_t chunk);
/* Release every extent of a chunk; _locked with its lock held. */
void placement_release_locked(spill_ctx *x, uint32_t chunk);
/* Add one replica on a server chosen by power of two choices; 0 or -errno.
 * Lock held; the caller copies the pages. *srv gets the server. */
int placement_add(spill_ctx *x, uint32_t chunk, int *srv, uint64_t *ext);
/* Free a chunk's extents on every server. */
void placement_release(spill_ctx *x, uint32_t chunk);
/* The replica of chunk on server s, or -1. Lock held. */
int placement_replica_on(spill_ctx *x, uint32_t chunk, int s);
/* Forget the replica (s, ext) of a chunk, whose extent the server no longer
 * has (revoked): its pages are gone there. Lock held. */
void placement_drop_locked(spill_ctx *x, uint32_t chunk, int s, uint64_t ext);
/* FREE one extent on server s (a refusal is ignored: it is gone). */
void server_free_extent(spill_ctx *x, int s, uint64_t ext);
/* A run of pages inside one chunk, read from any live replica. need: the
 * pages that must be present (a bitmap); present: what the server had. */
struct read_run {
	uint32_t gpn;
	uint16_t n;
	void *buf;
	uint8_t need[SPILL_PRESENT_MAP_BYTES];
	uint8_t present[SPILL_PRESENT_MAP_BYTES];
	struct loc_snap loc;  /* where its chunk lived when the read began */
	int replica;
	int retried;   /* reconnected once on this replica already */
	int status;    /* in: -EAGAIN to read it; out: 0, or -EIO when no
			* replica had every needed page */
};
int remote_read_runs(spill_ctx *x, struct read_run *runs, int nruns, int kind);

/* A run of pages inside one chunk, written to every live replica. The
 * chunks' locks are held. A replica whose extent the server revoked
 * (-ENOENT) is dropped; a run left with no copy then gets a new extent and
 * is written once more. */
struct write_run {
	uint32_t gpn;
	uint16_t n;
	void *buf;
	int copies;    /* replicas that took it */
	uint16_t acked; /* the servers that took it, bit s for server s */
	int revoked;   /* a replica of its chunk was dropped as revoked */
};
int remote_write_runs(spill_ctx *x, struct write_run *runs, int nruns);

/* copies.c: which replicas are current for each page. A page's bits in
 * x->cur count only for servers in its chunk's placement; a server entering
 * a chunk's placement starts with no current page there. Changed only under
 * the chunk's lock. */
static inline uint16_t copies_current(spill_ctx *x, uint32_t gpn)
{
	return atomic_load_explicit(&x->cur[gpn], memory_order_acquire);
}
/* After a WRITE of n pages from gpn (lock held): exactly the servers in
 * acked hold them now; placement replicas that missed it are recorded. */
void copies_written(spill_ctx *x, uint32_t gpn, uint16_t n, uint16_t acked);
/* Some live replica in gpn's placement is current for it. */
int copies_readable(spill_ctx *x, uint32_t gpn);
/* Server s is current for every page r needs. */
int copies_cover(spill_ctx *x, const struct read_run *r, int s);
/* Server s enters chunk's placement (lock held): current for nothing yet. */
void copies_reset_server(spill_ctx *x, uint32_t chunk, int s);
/* Is s current for some page of chunk that no other live replica is
 * current for? Then s's copy must not be given up while s is down: s may
 * come back with it (lock held). */
int copies_only_on(spill_ctx *x, uint32_t chunk, int s);
/* Copy every written page of chunk that (s, ext) is not current for from a
 * current replica, then count it current (lock held). fresh: s is a new
 * replica (counted as rereplicated, else repaired). 0, or -errno. */
int copies_fill(spill_ctx *x, uint32_t chunk, int s, uint64_t ext, int fresh);
/* The chunk's degraded flag, with the stats gauge (lock held). */
void copies_set_degraded(spill_ctx *x, uint32_t chunk, int on);

/* service.c */
/* What servers send unasked on control connections (Reclaim, Drain). */
void service_notify(struct client *c, Spillway__Ctrl *msg, void *arg);
/* Wake the service thread (safe in a signal handler). */
void service_wake(spill_ctx *x);
int service_start(spill_ctx *x);
void service_stop(spill_ctx *x);

/* Futex helpers (futex.c). */
void futex_wait_u32(void *addr, uint32_t val);
void futex_wake_all(void *addr);

#endif
