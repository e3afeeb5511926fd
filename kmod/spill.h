/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * spillway.ko internals: a swap block device whose pages live in the RAM of
 * one or more spillwayd servers, reached over TCP sockets that spillctl
 * connected, authenticated and registered in userspace.
 *
 * Layout of the device: it is cut into chunks of one server extent each
 * (2 MiB by default). Copy r of chunk c lives on server (c + r) % nservers
 * until a drain moves it (chunk->srv[]), in an extent allocated there on the first write to the chunk and freed
 * when the last page of the chunk is freed (swap slot free or discard). The
 * page-location table is one state byte per device page (which copies hold
 * the current data) plus, per chunk, the extent id of every copy.
 *
 * Files: wire.c frames and CRC; conn.c sockets, receive threads, request
 * table; io.c requests on behalf of the block layer (choose a connection,
 * wait for one); map.c the page-location table, extent allocation and the
 * deferred invalidate/free work; rw.c reads, writes and discards; ra.c
 * prefetch for sequential swap-ins; repair.c copies pages back onto copies
 * that lost them; notify.c control messages from servers (Drain);
 * migrate.c moves chunk copies off draining servers; dev.c the gendisk;
 * ctl.c the control device; main.c module parameters, init and exit.
 */
#ifndef SPILL_H
#define SPILL_H

#include <linux/atomic.h>
#include <linux/blk_types.h>
#include <linux/bvec.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "spillway_ioctl.h"
#include "wire.h"

#define SPILL_SECTORS_PER_PAGE (SPILL_PAGE_SIZE >> SECTOR_SHIFT)
#define SPILL_MAX_WINDOW       512  /* requests in flight per connection */

/* Module parameters (main.c). */
extern unsigned int spill_io_timeout;
extern unsigned int spill_reconnect_wait;
extern unsigned int spill_readahead;
extern bool spill_invalidate;
extern bool spill_repair;

extern struct workqueue_struct *spill_wq;

/*
 * Workqueues beside spill_wq, which runs background work that may wait on
 * the network (map.c reclaim, repair). Each has its own rescuer, so work
 * blocked there can never hold these up under memory pressure (main.c).
 */
extern struct workqueue_struct *spill_timeout_wq;  /* the watchdog: never blocks */
extern struct workqueue_struct *spill_reap_wq;     /* unlinks dead connections */

/* Page state: one byte per device page, changed under dev->map_lock. */
#define PS_COPIES  0x0f  /* bit r: copy r holds the page's current data */
#define PS_MOVED   0x10  /* migrate.c: copied to the move's new extent, unchanged since */
#define PS_COPYING 0x20  /* migrate.c: being copied; a write or free clears it */
#define PS_INVAL   0x40  /* freed; its remote copies are still to be invalidated */
#define PS_DATA    0x80  /* written since it was last freed */

struct spill_cmd;
typedef void (*spill_done_fn)(struct spill_cmd *cmd);

/* One network request (one frame out, one reply back). */
struct spill_cmd {
	struct list_head node;       /* conn->inflight, oldest first */
	struct spill_dev *dev;
	struct spill_conn *conn;     /* while queued on a connection (a reference) */
	u64 req_id;
	unsigned long start;         /* jiffies, when queued */
	u16 op;                      /* SPILL_OP_* */
	u16 npages;
	u32 page;
	u64 extent;
	u32 epoch;                   /* server session the extent belongs to */
	u8 server;
	u8 copy;
	const struct bio_vec *bvec;  /* READ/WRITE data: a bvec table and */
	struct bvec_iter iter;       /* the part of it this request covers */
	struct bio_vec one;          /* the table of single-page users */
	int status;                  /* 0 or -errno, set before done() */
	u64 reply_extent;            /* ALLOC: the new extent */
	u64 wver;                    /* WRITE/INVALIDATE: a version reserved in
				      * advance (spill_wver_reserve), or 0 to
				      * take one from the clock as the frame is
				      * built */
	spill_done_fn done;          /* called once, from the receive thread or
				      * the submitter; may free the cmd */
	void *priv;
	struct completion wait;      /* spill_exec() */
};

struct spill_slot {
	struct spill_cmd *cmd;
	u32 gen;
	bool sending;                /* the request has not fully left yet */
};

/* One TCP connection to one server. */
struct spill_conn {
	struct kref ref;
	struct spill_dev *dev;
	struct socket *sock;
	unsigned int server;
	unsigned int pos;            /* index in srv->conns[] */
	u32 epoch;
	u32 window;

	struct mutex tx_lock;        /* one frame at a time on the stream */
	spinlock_t lock;             /* everything below */
	bool dead;
	unsigned int senders;        /* between taking a slot and the end of its send */
	wait_queue_head_t wq;        /* a slot came free, a send ended */
	struct spill_slot *slots;    /* req_id = gen << 16 | slot */
	u32 *free;
	u32 nfree;
	struct list_head inflight;

	struct completion rx_done;   /* the receive thread is gone */
	struct work_struct reap;     /* unlinks the connection after it */
	void *scratch;               /* PAGE_SIZE: presence maps, unwanted payloads */
};

struct spill_server {
	struct spill_conn *conns[SPILL_MAX_CONNS];  /* dev->conn_lock */
	u32 epoch;                                    /* dev->conn_lock */
	unsigned int rr;
	char label[SPILL_LABEL_BYTES];
	atomic64_t sockets_added;
	atomic64_t reconnects;
	atomic64_t conn_failures;
	atomic64_t resets;
	atomic64_t io_errors;
	atomic64_t extents;
	/* map.c, under dev->map_lock: ALLOC refusals (ENOSPC, EDQUOT)
	 * remembered, so that allocations on the server fail at once until
	 * refused_until, or until a new connection or session */
	unsigned long refused_until;  /* jiffies */
	unsigned long refuse_backoff; /* jiffies; 0: no refusal remembered */
	u64 refused_socks;            /* sockets_added when refused */
	u32 refused_epoch;            /* the session that refused */
	/* io.c: smoothed latency of its requests in microseconds (jiffies
	 * resolution; unlocked, approximate), which orders the copies a
	 * read tries (spill_read_order) */
	unsigned long srtt_us;
	bool draining;                /* notify.c: it asked for its extents back */
	/* migrate.c, under dev->map_lock: the server's last Reclaim, not yet
	 * answered (reclaim_deadline 0: none), and the bytes freed for it */
	u64 reclaim_id;
	u64 reclaim_bytes;
	u64 reclaim_freed;
	unsigned long reclaim_deadline; /* jiffies: answer before */
};

struct spill_chunk {
	u64 ext[SPILL_MAX_REPLICAS];    /* map_lock (map.c's header says */
	u32 epoch[SPILL_MAX_REPLICAS];  /* who changes them); epoch 0: none */
	u32 used;                       /* map_lock: pages with PS_DATA */
	u32 pending;                    /* map_lock: pages with PS_INVAL */
	u32 writers;                    /* map_lock: writes in flight */
	bool queued;                    /* map_lock: on dev->reclaim_list */
	u32 wgen;                       /* map_lock: bumped by every write that
					 * begins, so that background work can
					 * tell whether the chunk was written
					 * while it was copying */
	struct list_head reclaim;
	/* map.c, under map_lock: claiming extents without a sleeping lock */
	u8 allocating;                  /* copies whose ALLOC is in flight */
	u8 alloc_slow;                  /* ... and a writer gave up waiting */
	/* Placement (map.c, migrate.c): the server of each copy, changed
	 * only under map_lock, by migrate.c's switch or, for a copy without
	 * an extent, by map.c placing it off a draining server. Two copies
	 * of a chunk are never on one server. */
	u8 srv[SPILL_MAX_REPLICAS];
};

/* Readahead: a few pages prefetched after sequential swap-ins (ra.c). */
#define SPILL_RA_SLOTS 64
#define SPILL_RA_MAX   32
#define SPILL_RA_REQS  2

struct spill_ra_slot {
	u64 index;
	struct page *page;
	u8 state;                    /* RA_EMPTY, RA_PENDING, RA_READY */
	bool stale;                  /* freed or rewritten while pending */
};

struct spill_ra_req {
	bool busy;
	unsigned int n;
	u8 slot[SPILL_RA_MAX];
	struct bio_vec bvec[SPILL_RA_MAX];
};

struct spill_ra {
	spinlock_t lock;
	wait_queue_head_t wq;
	struct spill_ra_slot slot[SPILL_RA_SLOTS];
	unsigned int busy;           /* slots not empty */
	u64 last;                    /* last page read synchronously */
	u64 next;                    /* first page not yet prefetched */
	unsigned int streak;
	struct spill_ra_req req[SPILL_RA_REQS];
};

struct spill_stats {
	atomic64_t reads;
	atomic64_t writes;
	atomic64_t zero_reads;
	atomic64_t read_errors;
	atomic64_t write_errors;
	atomic64_t failovers;
	atomic64_t degraded_writes;
	atomic64_t pages_freed;
	atomic64_t invalidates;
	atomic64_t extents_allocated;
	atomic64_t extents_freed;
	atomic64_t ra_pages;
	atomic64_t ra_hits;
	atomic64_t fenced_writes;    /* a copy answered ESTALE: it kept a newer write */
	atomic64_t timeouts;         /* connections closed for a request past io_timeout */
	atomic64_t repairs;          /* pages copied back onto a copy that had lost them */
	atomic64_t fast_fails;       /* I/O failed at once: no server reachable for long */
	atomic64_t read_fallbacks;   /* multi-page reads retried page by page */
	atomic64_t migrated;         /* migrate.c: pages moved off a draining server */
};

struct spill_dev {
	unsigned int index;
	u64 id;
	char name[SPILL_NAME_BYTES];
	u64 size;
	u64 npages;
	u64 extent_bytes;
	u32 extent_pages;
	u32 nchunks;
	unsigned int nservers;
	unsigned int replicas;
	/* Write versions (wire header wver): one clock for all the device's
	 * connections, so a server orders a late write from a timed-out
	 * connection before a newer one that came on another. */
	atomic64_t wver_clock;

	struct gendisk *disk;
	spinlock_t open_lock;
	unsigned int opens;
	bool dying;

	spinlock_t map_lock;
	u8 *pstate;
	struct spill_chunk *chunks;
	u64 used_pages;
	struct list_head reclaim_list;
	struct delayed_work reclaim_work;

	spinlock_t conn_lock;
	struct spill_server srv[SPILL_MAX_SERVERS];
	wait_queue_head_t conn_wq;   /* connections came or went */

	unsigned long last_io;       /* jiffies of the last read or write */
	atomic_t active;             /* cmds allocated and writes in flight */
	wait_queue_head_t idle_wq;
	mempool_t *cmd_pool;
	mempool_t *wio_pool;
	mempool_t *piece_pool;
	struct delayed_work watchdog;
	struct spill_ra ra;
	struct spill_stats st;

	/* map.c: allocations in flight ended (chunk->allocating); extents
	 * taken from empty chunks whose FREE is not yet acknowledged,
	 * retried by the reclaim work (map_lock; at most nchunks x replicas) */
	wait_queue_head_t alloc_wq;
	struct list_head dead_extents;
	u32 ndead_extents;
	/* io.c: when each server was first found without a live connection
	 * (0: up), and which ones were reported lost (fast failures) */
	unsigned long down_since[SPILL_MAX_SERVERS];
	unsigned long lost_servers;

	/* Background repair of copies (repair.c); NULL with one copy. */
	struct spill_repair *repair;

	/* Asynchronous reads (rw.c): their pool, and the workqueue that
	 * finishes the ones the receive thread cannot (failover, waits). */
	mempool_t *rio_pool;
	struct workqueue_struct *read_wq;

	/* Moving chunk copies off draining servers (migrate.c). */
	struct delayed_work migrate_work;
	unsigned long migrate_delay;  /* back-off while no target server exists */
};

/* wire.c */
void spill_wire_request(struct spill_wire_hdr *h, const struct spill_cmd *cmd,
			u32 payload_len);
u32 spill_crc_begin(const struct spill_wire_hdr *h);
u32 spill_crc_bvec(u32 state, const struct bio_vec *bvec, struct bvec_iter iter);
static inline u32 spill_crc_end(u32 state) { return ~state; }
int spill_wire_status_errno(u16 status);
u64 spill_wver_reserve(struct spill_dev *dev);
int spill_wire_selftest(void);

/* conn.c */
int spill_conn_add(struct spill_dev *dev, const struct spill_ioc_sock *arg);
struct spill_conn *spill_conn_get(struct spill_dev *dev, unsigned int server, u32 epoch);
void spill_conn_put(struct spill_conn *conn);
int spill_conn_queue(struct spill_conn *conn, struct spill_cmd *cmd);
void spill_conn_kill(struct spill_conn *conn, const char *why);
void spill_conns_stop(struct spill_dev *dev);
void spill_conns_check_timeouts(struct spill_dev *dev);
bool spill_server_up(struct spill_dev *dev, unsigned int server);
u32 spill_server_epoch(struct spill_dev *dev, unsigned int server);

/* io.c */
struct spill_cmd *spill_cmd_alloc(struct spill_dev *dev);
void spill_cmd_free(struct spill_cmd *cmd);
int spill_submit(struct spill_cmd *cmd);
int spill_exec(struct spill_cmd *cmd);
bool spill_wait_servers(struct spill_dev *dev, unsigned long servers,
			unsigned long deadline);
bool spill_servers_lost(struct spill_dev *dev, unsigned long servers);
void spill_server_note(struct spill_dev *dev, unsigned int server);
void spill_io_begin(struct spill_dev *dev);
void spill_io_end(struct spill_dev *dev);
void spill_note_latency(struct spill_cmd *cmd);
unsigned int spill_read_order(struct spill_dev *dev, u32 chunk, unsigned int copies,
			      u8 *order);

/* map.c */
struct spill_target {
	unsigned int copy;
	unsigned int server;
	u64 extent;
	u32 epoch;
};

int spill_map_init(struct spill_dev *dev);
void spill_map_destroy(struct spill_dev *dev);
unsigned int spill_copy_server(const struct spill_dev *dev, u32 chunk, unsigned int copy);
int spill_map_begin_write(struct spill_dev *dev, u64 first, u32 n,
			  struct spill_target *t);
void spill_map_end_write(struct spill_dev *dev, u64 first, u32 n, unsigned int ok);
unsigned int spill_map_copies(struct spill_dev *dev, u64 first, u32 n, bool *some_data,
			      bool *all_data);
bool spill_map_target(struct spill_dev *dev, u32 chunk, unsigned int copy,
		      struct spill_target *t);
void spill_map_drop_copy(struct spill_dev *dev, u64 first, u32 n, unsigned int copy);
void spill_map_free_pages(struct spill_dev *dev, u64 first, u64 n);
void spill_map_release(struct spill_dev *dev);
void spill_reclaim_work(struct work_struct *work);

/* rw.c */
int spill_rw_init(struct spill_dev *dev);
void spill_rw_exit(struct spill_dev *dev);
void spill_submit_bio(struct bio *bio);
#ifdef SPILL_HAVE_RW_PAGE
int spill_rw_page(struct block_device *bdev, sector_t sector, struct page *page,
		  enum req_op op);
#endif
int spill_read_pages(struct spill_dev *dev, u64 first, u32 n,
		     const struct bio_vec *bvec, struct bvec_iter iter);

/* ra.c */
int spill_ra_init(struct spill_dev *dev);
void spill_ra_destroy(struct spill_dev *dev);
bool spill_ra_take(struct spill_dev *dev, u64 index, struct page *page);
void spill_ra_note(struct spill_dev *dev, u64 index);
void spill_ra_forget(struct spill_dev *dev, u64 first, u64 n);

/* repair.c */
struct spill_repair;
int spill_repair_init(struct spill_dev *dev);
void spill_repair_stop(struct spill_dev *dev);
void spill_repair_destroy(struct spill_dev *dev);
void spill_repair_kick(struct spill_dev *dev);
void spill_repair_written(struct spill_dev *dev, u64 first, unsigned int ok);
u64 spill_repair_degraded(struct spill_dev *dev);

/* repair.c: pages [first, first+n) of one chunk copied from one extent to
 * another through bounce pages (repair.c and migrate.c). */
#define SPILL_RUN_PAGES 16
struct spill_run {
	u64 first;
	u32 n;
	struct spill_target src;
	struct spill_target dst;
	int rc;
	struct spill_cmd *cmd;
	struct bio_vec bvec[SPILL_RUN_PAGES];
};
int spill_runs_alloc(struct spill_run *run, unsigned int nr);
void spill_runs_free(struct spill_run *run, unsigned int nr);
void spill_runs_io(struct spill_dev *dev, u64 chunk_first, struct spill_run *run,
		   unsigned int nr, u16 op, u64 wver);

/* map.c, for migrate.c: placement and extents given back */
bool spill_server_draining(const struct spill_dev *dev, unsigned int server);
int spill_map_pick_server(struct spill_dev *dev, u32 c, unsigned int copy);
void spill_map_retire_extent(struct spill_dev *dev, unsigned int server, u64 ext, u32 epoch);
bool spill_map_target_current(struct spill_dev *dev, u32 c, const struct spill_target *t);
bool spill_map_drop_target(struct spill_dev *dev, u64 first, u32 n,
			   const struct spill_target *t);

/* notify.c: control messages a server sends unasked */
int spill_notify_ctrl(struct spill_conn *conn, const u8 *buf, u32 len, const char **why);

/* migrate.c */
void spill_migrate_init(struct spill_dev *dev);
void spill_migrate_kick(struct spill_dev *dev);
void spill_migrate_reclaim(struct spill_dev *dev, unsigned int server, u64 id, u64 bytes,
			   u32 deadline_ms);
/* conn.c, for migrate.c: a control frame that gets no reply */
int spill_conn_send_ctrl(struct spill_conn *conn, const void *buf, u32 len);
void spill_migrate_stop(struct spill_dev *dev);

/* dev.c */
struct spill_dev *spill_dev_create(struct spill_ioc_add *arg);
void spill_dev_discard(struct spill_dev *dev);
int spill_dev_publish(struct spill_dev *dev);
int spill_dev_remove(const struct spill_ioc_remove *arg);
struct spill_dev *spill_dev_lookup(unsigned int index, u64 id);
void spill_dev_status(struct spill_dev *dev, struct spill_ioc_status *st);
void spill_devs_remove_all(void);
extern struct mutex spill_devs_lock;
int spill_blk_init(void);
void spill_blk_exit(void);

/* conn.c, for status and sysfs */
unsigned int spill_server_conns(struct spill_dev *dev, unsigned int server, u32 *epoch);

/* sysfs.c: /sys/block/spillwayN/spillway/, added with the disk */
extern const struct attribute_group *spill_sysfs_groups[];

/* ctl.c */
void spill_ctl_event(void);
int spill_ctl_init(void);
void spill_ctl_exit(void);

#endif
